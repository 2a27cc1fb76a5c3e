//! PodDisruptionBudget rules shared by the disruption controller and the API server's
//! eviction subresource: the `DisruptionAllowed` condition (upstream's
//! `component-helpers/apps/poddisruptionbudget`), `metav1.Condition` bookkeeping
//! (`apimeta.SetStatusCondition`), and `intstr.GetScaledValueFromIntOrPercent` with its
//! errors.

use jiff::Timestamp;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The condition type on a PDB's status.
pub const DISRUPTION_ALLOWED: &str = "DisruptionAllowed";
/// Reason when the controller could not compute the status.
pub const SYNC_FAILED: &str = "SyncFailed";
/// Reason when disruptions are allowed.
pub const SUFFICIENT_PODS: &str = "SufficientPods";
/// Reason when no disruption is allowed.
pub const INSUFFICIENT_PODS: &str = "InsufficientPods";
/// The `StatusCause` type of an eviction refused by a budget.
pub const DISRUPTION_BUDGET_CAUSE: &str = "DisruptionBudget";
/// `unhealthyPodEvictionPolicy` value letting unready pods go whatever the budget says.
pub const ALWAYS_ALLOW: &str = "AlwaysAllow";

/// `apimeta.SetStatusCondition`: adds `new` or updates the condition of its type, moving
/// `lastTransitionTime` to `now` only when the status changes. Returns whether anything
/// changed.
pub fn set_status_condition(conditions: &mut Vec<Condition>, new: Condition, now: Timestamp) -> bool {
    let unset = |t: &Time| t.0 == Timestamp::UNIX_EPOCH;
    let Some(existing) = conditions.iter_mut().find(|c| c.type_ == new.type_) else {
        let mut new = new;
        if unset(&new.last_transition_time) {
            new.last_transition_time = Time(now);
        }
        conditions.push(new);
        return true;
    };
    let mut changed = false;
    if existing.status != new.status {
        existing.status = new.status;
        existing.last_transition_time = if unset(&new.last_transition_time) { Time(now) } else { new.last_transition_time };
        changed = true;
    }
    if existing.reason != new.reason {
        existing.reason = new.reason;
        changed = true;
    }
    if existing.message != new.message {
        existing.message = new.message;
        changed = true;
    }
    if existing.observed_generation.unwrap_or(0) != new.observed_generation.unwrap_or(0) {
        existing.observed_generation = new.observed_generation;
        changed = true;
    }
    changed
}

/// A `DisruptionAllowed` condition (no transition time: [`set_status_condition`] sets it).
pub fn disruption_allowed(status: &str, reason: &str, message: String, observed_generation: Option<i64>) -> Condition {
    Condition {
        type_: DISRUPTION_ALLOWED.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: observed_generation.filter(|g| *g != 0),
        last_transition_time: Time(Timestamp::UNIX_EPOCH),
    }
}

/// Upstream's `UpdateDisruptionAllowedCondition`: True/SufficientPods while disruptions
/// are allowed, False/InsufficientPods otherwise.
pub fn update_disruption_allowed_condition(status: &mut PodDisruptionBudgetStatus, now: Timestamp) {
    let condition = if status.disruptions_allowed > 0 {
        disruption_allowed("True", SUFFICIENT_PODS, String::new(), status.observed_generation)
    } else {
        disruption_allowed("False", INSUFFICIENT_PODS, String::new(), status.observed_generation)
    };
    set_status_condition(status.conditions.get_or_insert_with(Vec::new), condition, now);
}

/// Upstream's `ConditionsAreUpToDate`: the condition agrees with `disruptionsAllowed`
/// for the current generation.
pub fn conditions_are_up_to_date(pdb: &PodDisruptionBudget) -> bool {
    let Some(status) = pdb.status.as_ref() else { return false };
    let Some(c) = status.conditions.iter().flatten().find(|c| c.type_ == DISRUPTION_ALLOWED) else { return false };
    if status.observed_generation.unwrap_or(0) != pdb.metadata.generation.unwrap_or(0) {
        return false;
    }
    if status.disruptions_allowed > 0 {
        c.status == "True" && c.reason == SUFFICIENT_PODS
    } else {
        c.status == "False" && c.reason == INSUFFICIENT_PODS
    }
}

/// `intstr.GetScaledValueFromIntOrPercent`, with upstream's error texts: an integer as
/// is, `"N%"` of `total` rounded up or down, anything else an error.
pub fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    let s = match value {
        IntOrString::Int(i) => return Ok(*i),
        IntOrString::String(s) => s,
    };
    let Some(digits) = s.strip_suffix('%') else {
        return Err("invalid value for IntOrString: invalid type: string is not a percentage".into());
    };
    let percent: i64 = digits.parse().map_err(|_| {
        format!("invalid value for IntOrString: invalid value {s:?}: strconv.Atoi: parsing {digits:?}: invalid syntax")
    })?;
    let product = percent * i64::from(total);
    let scaled = if round_up { product.div_euclid(100) + i64::from(product.rem_euclid(100) != 0) } else { product.div_euclid(100) };
    Ok(i32::try_from(scaled).unwrap_or(if scaled < 0 { i32::MIN } else { i32::MAX }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn scaled_values_like_intstr() {
        let cases: &[(IntOrString, i32, bool, Result<i32, String>)] = &[
            (IntOrString::Int(2), 10, true, Ok(2)),
            (IntOrString::String("90%".into()), 10, true, Ok(9)),
            (IntOrString::String("10%".into()), 10, true, Ok(1)),
            (IntOrString::String("10%".into()), 3, true, Ok(1)),
            (IntOrString::String("10%".into()), 3, false, Ok(0)),
            (IntOrString::String("50%".into()), 3, true, Ok(2)),
            (IntOrString::String("1%".into()), 0, true, Ok(0)),
            (IntOrString::String("5".into()), 10, true, Err("invalid value for IntOrString: invalid type: string is not a percentage".into())),
            (
                IntOrString::String("x%".into()),
                10,
                true,
                Err("invalid value for IntOrString: invalid value \"x%\": strconv.Atoi: parsing \"x\": invalid syntax".into()),
            ),
        ];
        for (value, total, up, want) in cases {
            assert_eq!(&scaled_value(value, *total, *up), want, "{value:?} of {total}");
        }
    }

    #[test]
    fn condition_transitions_only_on_status_change() {
        let mut conds = Vec::new();
        assert!(set_status_condition(&mut conds, disruption_allowed("False", INSUFFICIENT_PODS, String::new(), Some(1)), t(10)));
        assert_eq!(conds[0].last_transition_time.0, t(10));
        assert!(!set_status_condition(&mut conds, disruption_allowed("False", INSUFFICIENT_PODS, String::new(), Some(1)), t(20)));
        assert!(set_status_condition(&mut conds, disruption_allowed("False", SYNC_FAILED, "boom".into(), Some(1)), t(30)));
        assert_eq!(conds[0].last_transition_time.0, t(10));
        assert!(set_status_condition(&mut conds, disruption_allowed("True", SUFFICIENT_PODS, String::new(), Some(2)), t(40)));
        assert_eq!((conds[0].last_transition_time.0, conds[0].message.as_str(), conds[0].observed_generation), (t(40), "", Some(2)));
        assert_eq!(conds.len(), 1);
    }

    #[test]
    fn up_to_date_follows_disruptions_allowed() {
        let mut pdb = PodDisruptionBudget::default();
        pdb.metadata.generation = Some(2);
        let mut status = PodDisruptionBudgetStatus { disruptions_allowed: 1, observed_generation: Some(2), ..Default::default() };
        update_disruption_allowed_condition(&mut status, t(5));
        pdb.status = Some(status.clone());
        assert!(conditions_are_up_to_date(&pdb));
        status.disruptions_allowed = 0;
        pdb.status = Some(status.clone());
        assert!(!conditions_are_up_to_date(&pdb));
        update_disruption_allowed_condition(&mut status, t(6));
        pdb.status = Some(status.clone());
        assert!(conditions_are_up_to_date(&pdb));
        pdb.metadata.generation = Some(3);
        assert!(!conditions_are_up_to_date(&pdb));
    }
}
