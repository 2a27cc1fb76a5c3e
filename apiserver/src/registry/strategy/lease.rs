//! Leases (coordination.k8s.io).

use ironkube_machinery::field::{FieldError, Path};
use serde_json::Value;

use super::Strategy;
use super::object::str_at;

pub struct LeaseStrategy;

impl Strategy for LeaseStrategy {
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let path = Path::new("spec");
        let mut errs = Vec::new();
        if let Some(d) = spec.get("leaseDurationSeconds").and_then(Value::as_i64)
            && d <= 0
        {
            errs.push(FieldError::invalid(
                path.child("leaseDurationSeconds"),
                d.into(),
                "must be greater than 0",
            ));
        }
        if let Some(t) = spec.get("leaseTransitions").and_then(Value::as_i64)
            && t < 0
        {
            errs.push(FieldError::invalid(
                path.child("leaseTransitions"),
                t.into(),
                "must be greater than or equal to 0",
            ));
        }
        let strategy = str_at(spec, "strategy");
        if spec.get("strategy").is_some_and(|s| !s.is_null())
            && strategy != "OldestEmulationVersion"
        {
            errs.push(FieldError::not_supported(
                path.child("strategy"),
                strategy.into(),
                &["OldestEmulationVersion"],
            ));
        }
        if !str_at(spec, "preferredHolder").is_empty() && strategy.is_empty() {
            errs.push(FieldError::forbidden(
                path.child("preferredHolder"),
                "may only be specified if `strategy` is defined",
            ));
        }
        errs
    }

    fn allow_create_on_update(&self) -> bool {
        true
    }

    fn allow_unconditional_update(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations() {
        let l = json!({"spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1}});
        let errs: Vec<String> = LeaseStrategy
            .validate(&l)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
                "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
            ]
        );
    }
}
