//! What the workload controllers' resources share: a label selector that must select the
//! pod template, the template rules of controllers that keep pods running, int-or-percent
//! rollout parameters and non-negative status counters.

use ironkube_machinery::field::{FieldError, Path};
use ironkube_machinery::validation::core::percent;
use ironkube_machinery::validation::go_repr;
use ironkube_machinery::validation::selector::{Selector, as_selector, validate_label_selector};
use ironkube_machinery::validation::validate_nonnegative;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::object::decode;

/// The selector of `spec.selector`, `None` when absent (a typed decode cannot tell absent
/// from empty, and upstream treats them differently).
pub fn raw_selector(obj: &Value) -> Result<Option<LabelSelector>, FieldError> {
    match obj.get("spec").and_then(|s| s.get("selector")) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => decode::<LabelSelector>(Some(v), "spec.selector").map(Some),
    }
}

/// `spec.selector` checks of Deployments, ReplicaSets and StatefulSets: required, valid, not
/// empty. `kind` names the resource in the empty-selector message (upstream says
/// "deployment" for ReplicaSets too).
pub fn validate_required_selector(
    sel: Option<&LabelSelector>,
    kind: &str,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match sel {
        None => errs.push(FieldError::required(path, "")),
        Some(s) => {
            errs.extend(validate_label_selector(Some(s), path));
            if s.match_labels.as_ref().map_or(0, |m| m.len())
                + s.match_expressions.as_ref().map_or(0, Vec::len)
                == 0
            {
                errs.push(go_repr::invalid_repr(
                    path,
                    &go_repr::label_selector(s),
                    &format!("empty selector is invalid for {kind}"),
                ));
            }
        }
    }
    errs
}

/// `selector` must select the template's labels (unless it selects everything).
pub fn validate_selector_matches_template(
    selector: &Selector,
    template: &PodTemplateSpec,
    labels_path: &Path,
) -> Vec<FieldError> {
    let labels = template.metadata.as_ref().and_then(|m| m.labels.clone());
    if !selector.is_empty() && !selector.matches(&labels.clone().unwrap_or_default()) {
        vec![go_repr::invalid_repr(
            labels_path,
            &go_repr::string_map(labels.as_ref()),
            "`selector` does not match template `labels`",
        )]
    } else {
        Vec::new()
    }
}

/// The compiled selector, or the `invalid label selector` error.
pub fn compile_selector(
    sel: Option<&LabelSelector>,
    path: &Path,
    message: &str,
) -> Result<Selector, FieldError> {
    as_selector(sel).map_err(|_| {
        go_repr::invalid_repr(
            path,
            &sel.map(go_repr::label_selector)
                .unwrap_or_else(|| "\"null\"".into()),
            message,
        )
    })
}

/// Templates of controllers that keep pods running: `restartPolicy: Always`, no
/// `activeDeadlineSeconds`.
pub fn validate_always_restart(
    template: &PodTemplateSpec,
    path: &Path,
    kind: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = template.spec.clone().unwrap_or_default();
    let rp = spec.restart_policy.as_deref().unwrap_or("");
    if rp != "Always" {
        errs.push(FieldError::not_supported(
            path.child("spec").child("restartPolicy"),
            rp.into(),
            &["Always"],
        ));
    }
    if spec.active_deadline_seconds.is_some() {
        errs.push(FieldError::forbidden(
            path.child("spec").child("activeDeadlineSeconds"),
            format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
    errs
}

/// `ValidatePositiveIntOrPercent`.
pub fn validate_positive_int_or_percent(v: &IntOrString, path: &Path) -> Vec<FieldError> {
    match v {
        IntOrString::String(s) => percent(s)
            .into_iter()
            .map(|m| go_repr::invalid_repr(path, &go_repr::int_or_string(v), &m))
            .collect(),
        IntOrString::Int(i) => validate_nonnegative(i64::from(*i), path),
    }
}

/// `getIntOrPercentValue`: the number, or the percentage's number.
pub fn int_or_percent_value(v: &IntOrString) -> i64 {
    match v {
        IntOrString::Int(i) => i64::from(*i),
        IntOrString::String(s) => s
            .strip_suffix('%')
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    }
}

/// `IsNotMoreThan100Percent`.
pub fn not_more_than_100_percent(v: &IntOrString, path: &Path) -> Vec<FieldError> {
    match v {
        IntOrString::String(s) if s.ends_with('%') && int_or_percent_value(v) > 100 => {
            vec![go_repr::invalid_repr(
                path,
                &go_repr::int_or_string(v),
                "must not be greater than 100%",
            )]
        }
        _ => Vec::new(),
    }
}

/// Non-negative status counters, and counters that may not exceed another.
pub fn validate_status_counts(
    status: &Value,
    nonnegative: &[&str],
    at_most: &[(&str, &str, &str)],
    path: &Path,
) -> Vec<FieldError> {
    let get = |k: &str| status.get(k).and_then(Value::as_i64).unwrap_or(0);
    let mut errs = Vec::new();
    for f in nonnegative {
        errs.extend(validate_nonnegative(get(f), &path.child(f)));
    }
    for (field, limit, msg) in at_most {
        if get(field) > get(limit) {
            errs.push(FieldError::invalid(
                path.child(field),
                get(field).into(),
                *msg,
            ));
        }
    }
    errs
}

/// `status.collisionCount` may not go down.
pub fn validate_collision_count(new: &Value, old: &Value) -> Vec<FieldError> {
    let get = |v: &Value| {
        v.get("status")
            .and_then(|s| s.get("collisionCount"))
            .and_then(Value::as_i64)
    };
    match (get(new), get(old)) {
        (n, Some(o)) if n.is_none_or(|n| n < o) => vec![FieldError::invalid(
            Path::new("status").child("collisionCount"),
            n.unwrap_or(0).into(),
            "cannot be decremented",
        )],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn selector_mismatch_message() {
        let sel = LabelSelector {
            match_labels: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
            match_expressions: None,
        };
        let compiled = as_selector(Some(&sel)).unwrap_or(Selector::Nothing);
        let template = PodTemplateSpec {
            metadata: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                labels: Some(BTreeMap::from([("app".to_string(), "api".to_string())])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let errs = validate_selector_matches_template(
            &compiled,
            &template,
            &Path::new("spec")
                .child("template")
                .child("metadata")
                .child("labels"),
        );
        assert_eq!(
            errs[0].to_string(),
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"api\"}: `selector` does not match template `labels`"
        );
    }

    #[test]
    fn percents() {
        let p = Path::new("x");
        assert!(
            validate_positive_int_or_percent(&IntOrString::String("25%".into()), &p).is_empty()
        );
        assert_eq!(
            validate_positive_int_or_percent(&IntOrString::String("abc".into()), &p)[0].to_string(),
            "x: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"abc\"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"
        );
        assert_eq!(
            not_more_than_100_percent(&IntOrString::String("150%".into()), &p).len(),
            1
        );
    }
}
