//! ReplicationControllers: selector and labels defaulted from the template, upstream's
//! `ValidateReplicationController`.

use std::collections::BTreeMap;

use ironkube_machinery::field::{FieldError, Path};
use ironkube_machinery::validation::selector::{Op, Requirement, Selector};
use ironkube_machinery::validation::validate_nonnegative;
use k8s_openapi::api::core::v1::ReplicationControllerSpec;
use serde_json::{Value, json};

use super::Strategy;
use super::apps::replica_status_errors;
use super::object::{child_obj, decode, default_ptr};
use super::pod_spec::{PodSpecOptions, default_pod_template, validate_pod_template_spec};
use super::workload::{validate_always_restart, validate_selector_matches_template};

pub struct ReplicationControllerStrategy;

impl Strategy for ReplicationControllerStrategy {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        let labels = obj["spec"]["template"]["metadata"]
            .get("labels")
            .filter(|l| l.is_object())
            .cloned();
        if let Some(labels) = labels {
            let empty = |v: Option<&Value>| {
                v.and_then(Value::as_object)
                    .is_none_or(serde_json::Map::is_empty)
            };
            if empty(obj["spec"].get("selector")) {
                if let Some(spec) = obj.get_mut("spec") {
                    super::object::set(spec, "selector", labels.clone());
                }
            }
            if empty(obj["metadata"].get("labels")) {
                if let Some(meta) = obj.get_mut("metadata") {
                    super::object::set(meta, "labels", labels);
                }
            }
        }
        let Some(spec) = obj.as_object_mut().and_then(|o| child_obj(o, "spec")) else {
            return;
        };
        default_ptr(spec, "replicas", json!(1));
        if let Some(t) = spec.get_mut("template").and_then(Value::as_object_mut) {
            default_pod_template(t);
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        validate_rc(obj)
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> Vec<FieldError> {
        replica_status_errors(new.get("status").unwrap_or(&Value::Null))
    }

    fn field_labels(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let replicas = obj["status"]
            .get("replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        vec![("status.replicas", replicas.to_string())]
    }
}

fn validate_rc(obj: &Value) -> Vec<FieldError> {
    let spec: ReplicationControllerSpec = match decode(obj.get("spec"), "spec") {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    let path = Path::new("spec");
    let mut errs = validate_nonnegative(
        i64::from(spec.min_ready_seconds.unwrap_or(0)),
        &path.child("minReadySeconds"),
    );
    let selector_map: BTreeMap<String, String> = spec.selector.clone().unwrap_or_default();
    if selector_map.is_empty() {
        errs.push(FieldError::required(path.child("selector"), ""));
    }
    errs.extend(validate_nonnegative(
        i64::from(spec.replicas.unwrap_or(0)),
        &path.child("replicas"),
    ));
    let tp = path.child("template");
    match &spec.template {
        None => errs.push(FieldError::required(&tp, "")),
        Some(template) => {
            let selector = if selector_map.is_empty() {
                Selector::Everything
            } else {
                Selector::Requirements(
                    selector_map
                        .iter()
                        .map(|(k, v)| Requirement {
                            key: k.clone(),
                            op: Op::In,
                            values: vec![v.clone()],
                        })
                        .collect(),
                )
            };
            errs.extend(validate_selector_matches_template(
                &selector,
                template,
                &tp.child("metadata").child("labels"),
            ));
            errs.extend(validate_pod_template_spec(
                template,
                &tp,
                PodSpecOptions::default(),
            ));
            errs.extend(validate_always_restart(
                template,
                &tp,
                "ReplicationController",
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_and_labels_come_from_the_template() {
        let mut rc = json!({"metadata": {"name": "web", "namespace": "d"}, "spec": {
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}
        }});
        ReplicationControllerStrategy.default(&mut rc);
        assert_eq!(rc["spec"]["selector"], json!({"app": "web"}));
        assert_eq!(rc["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(rc["spec"]["replicas"], json!(1));
        assert!(ReplicationControllerStrategy.validate(&rc).is_empty());
        rc["spec"]["selector"] = json!({"app": "other"});
        let errs: Vec<String> = ReplicationControllerStrategy
            .validate(&rc)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"
            ]
        );
    }
}
