//! PriorityClasses (scheduling.k8s.io).

use ironkube_machinery::field::{FieldError, Path};
use serde_json::{Value, json};

use super::Strategy;
use super::object::{default_ptr, meta, str_at};

/// Largest value of a user-defined priority class.
const HIGHEST_USER_PRIORITY: i64 = 1_000_000_000;
/// Built-in classes: name, value (their globalDefault is false).
const SYSTEM_CLASSES: [(&str, i64); 2] = [
    ("system-node-critical", 2_000_001_000),
    ("system-cluster-critical", 2_000_000_000),
];

pub struct PriorityClassStrategy;

impl Strategy for PriorityClassStrategy {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        if let Some(o) = obj.as_object_mut() {
            default_ptr(o, "preemptionPolicy", json!("PreemptLowerPriority"));
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let name = str_at(meta(obj), "name");
        let value = obj.get("value").and_then(Value::as_i64).unwrap_or(0);
        let global = obj
            .get("globalDefault")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if name.starts_with("system-") {
            let problem = match SYSTEM_CLASSES.iter().find(|(n, _)| *n == name) {
                None => Some(format!("{name} is not a known system priority class")),
                Some((_, v)) if *v != value => {
                    Some(format!("value of {name} PriorityClass must be {v}"))
                }
                Some(_) if global => Some(format!(
                    "globalDefault of {name} PriorityClass must be false"
                )),
                Some(_) => None,
            };
            if let Some(p) = problem {
                errs.push(FieldError::forbidden(
                    Path::new("metadata").child("name"),
                    format!("priority class names with 'system-' prefix are reserved for system use only. error: {p}"),
                ));
            }
        } else if value > HIGHEST_USER_PRIORITY {
            errs.push(FieldError::forbidden(
                "value",
                format!(
                    "maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}"
                ),
            ));
        }
        match str_at(obj, "preemptionPolicy") {
            "PreemptLowerPriority" | "Never" => {}
            "" => errs.push(FieldError::required("preemptionPolicy", "")),
            other => errs.push(FieldError::not_supported(
                "preemptionPolicy",
                other.into(),
                &["PreemptLowerPriority", "Never"],
            )),
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if new.get("value") != old.get("value") {
            errs.push(FieldError::forbidden(
                "value",
                "may not be changed in an update.",
            ));
        }
        if new.get("preemptionPolicy") != old.get("preemptionPolicy") {
            errs.push(FieldError::invalid(
                "preemptionPolicy",
                new.get("preemptionPolicy").cloned().unwrap_or(Value::Null),
                ironkube_machinery::validation::FIELD_IMMUTABLE_ERROR_MSG,
            ));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        let mut pc = json!({"metadata": {"name": "high"}, "value": 2_000_000_000i64});
        PriorityClassStrategy.default(&mut pc);
        assert_eq!(pc["preemptionPolicy"], json!("PreemptLowerPriority"));
        let errs: Vec<String> = PriorityClassStrategy
            .validate(&pc)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "value: Forbidden: maximum allowed value of a user defined priority is 1000000000"
            ]
        );
        let sys =
            json!({"metadata": {"name": "system-foo"}, "value": 1, "preemptionPolicy": "Never"});
        let errs: Vec<String> = PriorityClassStrategy
            .validate(&sys)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-foo is not a known system priority class"
            ]
        );
    }
}
