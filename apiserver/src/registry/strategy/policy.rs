//! PodDisruptionBudgets (policy/v1): upstream's ValidatePodDisruptionBudget — at most one
//! of minAvailable and maxUnavailable, each a non-negative int or a percentage of at most
//! 100%, a valid label selector, a known unhealthyPodEvictionPolicy — and non-negative
//! status counters.

use ironkube_machinery::field::{FieldError, Path};
use ironkube_machinery::validation::go_repr;
use ironkube_machinery::validation::selector::validate_label_selector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::Strategy;
use super::object::decode;
use super::workload::{not_more_than_100_percent, validate_positive_int_or_percent, validate_status_counts};

const EVICTION_POLICIES: [&str; 2] = ["IfHealthyBudget", "AlwaysAllow"];

pub struct PodDisruptionBudgetStrategy;

/// Go's `%#v` of a pointer field: its type and, when set, an address (upstream's message
/// prints the address of each pointer inside the spec, which differs on every request).
fn pointer(type_: &str, set: bool) -> String {
    if set { format!("(*{type_})(0xc000a1b2c0)") } else { format!("(*{type_})(nil)") }
}

fn validate_spec(obj: &Value) -> Vec<FieldError> {
    let path = Path::new("spec");
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let mut errs = Vec::new();
    let int_or_percent = |field: &str, errs: &mut Vec<FieldError>| -> bool {
        match spec.get(field) {
            None | Some(Value::Null) => false,
            Some(v) => {
                match decode::<IntOrString>(Some(v), &format!("spec.{field}")) {
                    Ok(v) => {
                        errs.extend(validate_positive_int_or_percent(&v, &path.child(field)));
                        errs.extend(not_more_than_100_percent(&v, &path.child(field)));
                    }
                    Err(e) => errs.push(e),
                }
                true
            }
        }
    };
    let mut field_errs = Vec::new();
    let min = int_or_percent("minAvailable", &mut field_errs);
    let max = int_or_percent("maxUnavailable", &mut field_errs);
    let selector = spec.get("selector").filter(|s| !s.is_null());
    if min && max {
        let policy = spec.get("unhealthyPodEvictionPolicy").is_some_and(|p| !p.is_null());
        let repr = format!(
            "policy.PodDisruptionBudgetSpec{{MinAvailable:{}, Selector:{}, MaxUnavailable:{}, UnhealthyPodEvictionPolicy:{}}}",
            pointer("intstr.IntOrString", true),
            pointer("v1.LabelSelector", selector.is_some()),
            pointer("intstr.IntOrString", true),
            pointer("policy.UnhealthyPodEvictionPolicyType", policy),
        );
        errs.push(go_repr::invalid_repr(path.clone(), &repr, "minAvailable and maxUnavailable cannot be both set"));
    }
    errs.extend(field_errs);
    if let Some(sel) = selector {
        match decode(Some(sel), "spec.selector") {
            Ok(sel) => errs.extend(validate_label_selector(Some(&sel), &path.child("selector"))),
            Err(e) => errs.push(e),
        }
    }
    if let Some(p) = spec.get("unhealthyPodEvictionPolicy").and_then(Value::as_str)
        && !EVICTION_POLICIES.contains(&p)
    {
        errs.push(FieldError::not_supported(path.child("unhealthyPodEvictionPolicy"), p.into(), &EVICTION_POLICIES));
    }
    errs
}

fn validate_status(obj: &Value) -> Vec<FieldError> {
    let status = obj.get("status").cloned().unwrap_or(Value::Null);
    validate_status_counts(&status, &["disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods"], &[], &Path::new("status"))
}

impl Strategy for PodDisruptionBudgetStrategy {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        validate_spec(obj)
    }

    fn validate_update(&self, new: &Value, _old: &Value) -> Vec<FieldError> {
        validate_spec(new)
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> Vec<FieldError> {
        validate_status(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(spec: Value) -> Vec<String> {
        validate_spec(&json!({"spec": spec})).iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn budgets_validate_like_upstream() {
        assert!(errors(json!({"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}})).is_empty());
        assert!(errors(json!({"maxUnavailable": "30%"})).is_empty());
        let both = errors(json!({"minAvailable": 1, "maxUnavailable": 1}));
        assert_eq!(both.len(), 1, "{both:?}");
        assert!(both[0].starts_with("spec: Invalid value: policy.PodDisruptionBudgetSpec{MinAvailable:(*intstr.IntOrString)(0x"), "{both:?}");
        assert!(both[0].ends_with("UnhealthyPodEvictionPolicy:(*policy.UnhealthyPodEvictionPolicyType)(nil)}: minAvailable and maxUnavailable cannot be both set"), "{both:?}");
        let negative = errors(json!({"minAvailable": -1}));
        assert_eq!(negative, vec!["spec.minAvailable: Invalid value: -1: must be greater than or equal to 0"]);
        let over = errors(json!({"maxUnavailable": "150%"}));
        assert_eq!(over.len(), 1, "{over:?}");
        assert!(over[0].contains("must not be greater than 100%"), "{over:?}");
        let policy = errors(json!({"minAvailable": 1, "unhealthyPodEvictionPolicy": "Sometimes"}));
        assert_eq!(policy, vec![r#"spec.unhealthyPodEvictionPolicy: Unsupported value: "Sometimes": supported values: "IfHealthyBudget", "AlwaysAllow""#]);
        let selector = errors(json!({"minAvailable": 1, "selector": {"matchLabels": {"bad key!": "x"}}}));
        assert_eq!(selector.len(), 1, "{selector:?}");
        assert!(selector[0].starts_with("spec.selector.matchLabels: Invalid value: \"bad key!\""), "{selector:?}");
    }

    #[test]
    fn status_counters_are_not_negative() {
        let errs = validate_status(&json!({"status": {"disruptionsAllowed": -1, "expectedPods": 3}}));
        assert_eq!(errs.iter().map(|e| e.to_string()).collect::<Vec<_>>(), vec!["status.disruptionsAllowed: Invalid value: -1: must be greater than or equal to 0"]);
    }
}
