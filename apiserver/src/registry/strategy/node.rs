//! Nodes: status kept on create, allocatable defaulted from capacity, taints, pod CIDRs
//! and the fields an update may not change.

use std::collections::BTreeSet;

use ironkube_machinery::field::{ErrorKind, FieldError, Path};
use ironkube_machinery::validation::core::{parse_ip_sloppy, validate_cidr};
use ironkube_machinery::validation::go_repr;
use ironkube_machinery::validation::labels::{label_value, validate_label_name};
use ironkube_machinery::validation::quantity::Quantity;
use k8s_openapi::api::core::v1::Taint;
use serde_json::Value;

use super::Strategy;
use super::object::{canonicalize_resource_list, child_obj, decode, existing_obj, str_at};
use super::pod_spec::validate_resource_quantity;

pub struct NodeStrategy;

impl Strategy for NodeStrategy {
    fn keeps_status_on_create(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        let Some(status) = obj.as_object_mut().and_then(|o| existing_obj(o, "status")) else {
            return;
        };
        canonicalize_resource_list(status, "capacity");
        canonicalize_resource_list(status, "allocatable");
        if status.get("allocatable").is_none_or(Value::is_null)
            && let Some(cap) = status.get("capacity").filter(|c| c.is_object()).cloned()
        {
            status.insert("allocatable".into(), cap);
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        // A node always serializes a spec.
        if let Some(o) = obj.as_object_mut() {
            child_obj(o, "spec");
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = validate_taints(obj);
        errs.extend(validate_node_resources(obj));
        errs.extend(validate_pod_cidrs(obj));
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        validate_node_update(new, old)
    }

    fn validate_status_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        validate_node_update(new, old)
    }

    fn field_labels(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let unschedulable = obj["spec"]
            .get("unschedulable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        vec![("spec.unschedulable", unschedulable.to_string())]
    }
}

fn validate_taints(obj: &Value) -> Vec<FieldError> {
    let taints: Vec<Taint> = match decode(obj["spec"].get("taints"), "spec.taints") {
        Ok(t) => t,
        Err(e) => return vec![e],
    };
    // Upstream reports node taint errors under `metadata.taints`.
    let path = Path::new("metadata").child("taints");
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, t) in taints.iter().enumerate() {
        let p = path.index(i);
        errs.extend(validate_label_name(&t.key, &p.child("key")));
        let value = t.value.as_deref().unwrap_or("");
        let msgs = label_value(value);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                p.child("value"),
                value.into(),
                msgs.join(";"),
            ));
        }
        match t.effect.as_str() {
            "" => errs.push(FieldError::required(p.child("effect"), "")),
            "NoSchedule" | "PreferNoSchedule" | "NoExecute" => {}
            other => errs.push(FieldError::not_supported(
                p.child("effect"),
                other.into(),
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            )),
        }
        if !seen.insert((t.effect.clone(), t.key.clone())) {
            errs.push(go_repr::error_with_repr(
                ErrorKind::Duplicate,
                &p,
                &format!(
                    "core.Taint{{Key:{:?}, Value:{:?}, Effect:{:?}, TimeAdded:<nil>}}",
                    t.key, value, t.effect
                ),
                "taints must be unique by key and effect pair",
            ));
        }
    }
    errs
}

fn validate_node_resources(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for list in ["capacity", "allocatable"] {
        for (k, v) in obj["status"]
            .get(list)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let p = Path::new("status").child(list).child(k);
            match v.as_str().map(Quantity::parse) {
                Some(Ok(q)) => errs.extend(validate_resource_quantity(k, &q, &p)),
                Some(Err(e)) => errs.push(FieldError::invalid(&p, v.clone(), e.to_string())),
                None => {}
            }
        }
    }
    errs
}

fn pod_cidrs(obj: &Value) -> Vec<String> {
    obj["spec"]
        .get("podCIDRs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn validate_pod_cidrs(obj: &Value) -> Vec<FieldError> {
    let cidrs = pod_cidrs(obj);
    let path = Path::new("spec").child("podCIDRs");
    let mut errs = Vec::new();
    for (i, c) in cidrs.iter().enumerate() {
        errs.extend(validate_cidr(c, &path.index(i)));
    }
    if cidrs.len() > 1 {
        let families: Vec<bool> = cidrs
            .iter()
            .filter_map(|c| c.split_once('/').and_then(|(ip, _)| parse_ip_sloppy(ip)))
            .map(|ip| ip.is_ipv4())
            .collect();
        let dual = families.len() == 2 && families[0] != families[1];
        if !dual || cidrs.len() > 2 {
            errs.push(go_repr::invalid_repr(
                &path,
                &go_repr::string_slice(Some(&cidrs)),
                "may specify no more than one CIDR for each IP family",
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, c) in cidrs.iter().enumerate() {
            if !seen.insert(c.clone()) {
                errs.push(FieldError::duplicate(path.index(i), c.as_str().into()));
            }
        }
    }
    errs
}

fn validate_node_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = validate_node_resources(new);
    let mut seen = BTreeSet::new();
    for (i, a) in new["status"]
        .get("addresses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let key = (
            str_at(a, "type").to_string(),
            str_at(a, "address").to_string(),
        );
        if !seen.insert(key.clone()) {
            errs.push(go_repr::error_with_repr(
                ErrorKind::Duplicate,
                Path::new("status").child("addresses").index(i),
                &format!("core.NodeAddress{{Type:{:?}, Address:{:?}}}", key.0, key.1),
                "",
            ));
        }
    }
    let (old_cidrs, new_cidrs) = (pod_cidrs(old), pod_cidrs(new));
    if !old_cidrs.is_empty() && old_cidrs != new_cidrs {
        let changed = old_cidrs.len() != new_cidrs.len()
            || old_cidrs.iter().zip(&new_cidrs).any(|(a, b)| a != b);
        if changed {
            errs.push(FieldError::forbidden(
                Path::new("spec").child("podCIDRs"),
                "node updates may not change podCIDR except from \"\" to valid",
            ));
        }
    }
    let (op, np) = (
        str_at(&old["spec"], "providerID"),
        str_at(&new["spec"], "providerID"),
    );
    if !op.is_empty() && op != np {
        errs.push(FieldError::forbidden(
            Path::new("spec").child("providerID"),
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    errs.extend(validate_taints(new));
    if str_at(&new["spec"], "externalID") != str_at(&old["spec"], "externalID") {
        errs.push(FieldError::forbidden(
            Path::new("spec").child("externalID"),
            "may not be updated",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn allocatable_defaults_to_capacity() {
        let mut n = json!({"metadata": {"name": "n1"}, "status": {"capacity": {"cpu": "4", "memory": "8192Mi"}}});
        NodeStrategy.default(&mut n);
        assert_eq!(
            n["status"]["allocatable"],
            json!({"cpu": "4", "memory": "8Gi"})
        );
        assert_eq!(
            NodeStrategy.field_labels(&n),
            vec![("spec.unschedulable", "false".to_string())]
        );
    }

    #[test]
    fn taints() {
        let n = json!({"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}, {"key": "a", "effect": "NoSchedule"}, {"key": "b"}]}});
        let errs: Vec<String> = NodeStrategy
            .validate(&n)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "metadata.taints[1]: Duplicate value: core.Taint{Key:\"a\", Value:\"\", Effect:\"NoSchedule\", TimeAdded:<nil>}: taints must be unique by key and effect pair",
                "metadata.taints[2].effect: Required value",
            ]
        );
    }

    #[test]
    fn pod_cidr_is_fixed_once_set() {
        let old = json!({"spec": {"podCIDRs": ["10.244.0.0/24"]}});
        let new = json!({"spec": {"podCIDRs": ["10.244.1.0/24"]}});
        let errs: Vec<String> = NodeStrategy
            .validate_update(&new, &old)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid"
            ]
        );
    }
}
