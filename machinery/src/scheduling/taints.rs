//! Taints and tolerations, as `v1helper` and `Toleration.ToleratesTaint` decide them.

use k8s_openapi::api::core::v1::{Taint, Toleration};

pub const NO_SCHEDULE: &str = "NoSchedule";
pub const PREFER_NO_SCHEDULE: &str = "PreferNoSchedule";
pub const NO_EXECUTE: &str = "NoExecute";
/// The taint `spec.unschedulable` stands for.
pub const TAINT_NODE_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// Whether `toleration` tolerates `taint`: same effect (or any), same key (or any with
/// Exists), and for Equal (the default operator) the same value.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref().filter(|e| !e.is_empty()) {
        if effect != taint.effect {
            return false;
        }
    }
    if let Some(key) = toleration.key.as_deref().filter(|k| !k.is_empty()) {
        if key != taint.key {
            return false;
        }
    }
    match toleration.operator.as_deref().unwrap_or("") {
        "" | "Equal" => toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        "Exists" => true,
        _ => false,
    }
}

pub fn tolerations_tolerate_taint(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

/// The taints the scheduler enforces: NoSchedule and NoExecute.
pub fn do_not_schedule(taint: &Taint) -> bool {
    taint.effect == NO_SCHEDULE || taint.effect == NO_EXECUTE
}

/// The first taint passing `filter` that no toleration tolerates.
pub fn find_untolerated_taint<'a>(taints: &'a [Taint], tolerations: &[Toleration], filter: impl Fn(&Taint) -> bool) -> Option<&'a Taint> {
    taints.iter().filter(|t| filter(t)).find(|t| !tolerations_tolerate_taint(tolerations, t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: &str, effect: &str) -> Taint {
        Taint { key: key.into(), value: Some(value.into()).filter(|v: &String| !v.is_empty()), effect: effect.into(), time_added: None }
    }

    fn tol(key: &str, op: &str, value: &str, effect: &str) -> Toleration {
        let some = |s: &str| Some(s.to_string()).filter(|v| !v.is_empty());
        Toleration { key: some(key), operator: some(op), value: some(value), effect: some(effect), toleration_seconds: None }
    }

    #[test]
    fn toleration_table() {
        let cases = [
            ("equal matches", tol("k", "Equal", "v", "NoSchedule"), taint("k", "v", "NoSchedule"), true),
            ("default operator is Equal", tol("k", "", "v", ""), taint("k", "v", "NoExecute"), true),
            ("value differs", tol("k", "Equal", "w", ""), taint("k", "v", "NoSchedule"), false),
            ("exists ignores value", tol("k", "Exists", "", ""), taint("k", "v", "NoSchedule"), true),
            ("empty key with exists tolerates all", tol("", "Exists", "", ""), taint("any", "x", "NoExecute"), true),
            ("effect differs", tol("k", "Exists", "", "NoExecute"), taint("k", "", "NoSchedule"), false),
            ("key differs", tol("j", "Exists", "", ""), taint("k", "", "NoSchedule"), false),
            ("unknown operator", tol("k", "Gt", "1", ""), taint("k", "2", "NoSchedule"), false),
        ];
        for (name, t, taint, want) in cases {
            assert_eq!(tolerates(&t, &taint), want, "{name}");
        }
    }

    #[test]
    fn finds_first_untolerated() {
        let taints = [taint("a", "", "PreferNoSchedule"), taint("b", "", "NoSchedule"), taint("c", "", "NoExecute")];
        let tols = [tol("b", "Exists", "", "")];
        let found = find_untolerated_taint(&taints, &tols, do_not_schedule).map(|t| t.key.as_str());
        assert_eq!(found, Some("c"));
    }
}
