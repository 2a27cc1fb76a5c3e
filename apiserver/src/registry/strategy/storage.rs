//! PersistentVolumeClaims and PersistentVolumes: defaults, the claim spec checks, the
//! immutability of a claim's spec, and DELETE answering with the object.

use ironkube_machinery::field::{FieldError, Path};
use ironkube_machinery::validation::quantity::Quantity;
use k8s_openapi::api::core::v1::PersistentVolumeClaimSpec;
use serde_json::{Value, json};

use super::Strategy;
use crate::registry::store::now_rfc3339;
use super::object::{
    canonicalize_resource_list, child_obj, decode, default_field, default_ptr, existing_obj,
};
use super::pod_spec::validate_pvc_spec_basics;

pub struct PersistentVolumeClaimStrategy;

impl Strategy for PersistentVolumeClaimStrategy {
    fn default(&self, obj: &mut Value) {
        let Some(o) = obj.as_object_mut() else { return };
        if let Some(spec) = child_obj(o, "spec") {
            default_ptr(spec, "volumeMode", json!("Filesystem"));
            if let Some(res) = existing_obj(spec, "resources") {
                canonicalize_resource_list(res, "requests");
                canonicalize_resource_list(res, "limits");
            }
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(o) = obj.as_object_mut() {
            o.insert("status".into(), json!({"phase": "Pending"}));
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        match decode::<PersistentVolumeClaimSpec>(obj.get("spec"), "spec") {
            Ok(spec) => validate_pvc_spec_basics(&spec, &Path::new("spec")),
            Err(e) => vec![e],
        }
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        let mut n = new.get("spec").cloned().unwrap_or(json!({}));
        let mut o = old.get("spec").cloned().unwrap_or(json!({}));
        // The volume name may be set once; a bound claim may change its storage request.
        if o.get("volumeName")
            .is_none_or(|v| v.as_str().unwrap_or("").is_empty())
        {
            match (n.get("volumeName").cloned(), o.as_object_mut()) {
                (Some(name), _) => super::object::set(&mut o, "volumeName", name),
                (None, Some(spec)) => {
                    spec.remove("volumeName");
                }
                (None, None) => {}
            }
        }
        let bound = old["status"].get("phase").and_then(Value::as_str) == Some("Bound");
        if bound {
            for spec in [&mut n, &mut o] {
                if let Some(req) = spec
                    .get_mut("resources")
                    .and_then(|r| r.get_mut("requests"))
                    .and_then(Value::as_object_mut)
                {
                    req.remove("storage");
                }
            }
        }
        if n != o {
            errs.push(FieldError::forbidden(
                Path::new("spec"),
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
            ));
        }
        let storage = |v: &Value| {
            v["spec"]["resources"]["requests"]
                .get("storage")
                .and_then(Value::as_str)
                .and_then(|s| Quantity::parse(s).ok())
        };
        if let (Some(ns), Some(os)) = (storage(new), storage(old))
            && ns < os
        {
            errs.push(FieldError::forbidden(
                Path::new("spec")
                    .child("resources")
                    .child("requests")
                    .child("storage"),
                "field can not be less than previous value",
            ));
        }
        errs
    }

    fn return_deleted_object(&self) -> bool {
        true
    }
}

pub struct PersistentVolumeStrategy;

/// A volume's `status.lastPhaseTransitionTime` on a status write, as upstream's status
/// strategy sets it: kept when the phase stays and none is given; `now` when the phase
/// changes and the writer gave none or only carried the old one over.
fn stamp_phase_transition(new: &mut Value, old: &Value, now: &str) {
    let phase = |v: &Value| v["status"].get("phase").and_then(Value::as_str).unwrap_or("").to_string();
    let stamp = |v: &Value| v["status"].get("lastPhaseTransitionTime").filter(|t| !t.is_null()).cloned();
    let (new_stamp, old_stamp) = (stamp(new), stamp(old));
    let value = if phase(new) == phase(old) {
        match (new_stamp, old_stamp) {
            (None, Some(kept)) => kept,
            _ => return,
        }
    } else if new_stamp.is_none() || new_stamp == old_stamp {
        json!(now)
    } else {
        return;
    };
    if !new.get("status").is_some_and(Value::is_object) {
        new["status"] = json!({});
    }
    new["status"]["lastPhaseTransitionTime"] = value;
}

impl Strategy for PersistentVolumeStrategy {
    fn default(&self, obj: &mut Value) {
        let Some(o) = obj.as_object_mut() else { return };
        if let Some(spec) = child_obj(o, "spec") {
            default_field(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
            default_ptr(spec, "volumeMode", json!("Filesystem"));
            canonicalize_resource_list(spec, "capacity");
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(o) = obj.as_object_mut() {
            o.insert("status".into(), json!({"phase": "Pending", "lastPhaseTransitionTime": now_rfc3339()}));
        }
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        stamp_phase_transition(new, old, &now_rfc3339());
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let path = Path::new("spec");
        let mut errs = Vec::new();
        let modes: Vec<&str> = spec
            .get("accessModes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if modes.is_empty() {
            errs.push(FieldError::required(path.child("accessModes"), ""));
        }
        let capacity = spec.get("capacity").and_then(Value::as_object);
        if capacity.is_none_or(serde_json::Map::is_empty) {
            errs.push(FieldError::required(path.child("capacity"), ""));
        }
        let policy = spec
            .get("persistentVolumeReclaimPolicy")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !policy.is_empty() && !["Delete", "Recycle", "Retain"].contains(&policy) {
            errs.push(FieldError::not_supported(
                path.child("persistentVolumeReclaimPolicy"),
                policy.into(),
                &["Delete", "Recycle", "Retain"],
            ));
        }
        errs
    }

    fn return_deleted_object(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(spec: Value) -> Value {
        let mut c = json!({"metadata": {"name": "data", "namespace": "d"}, "spec": spec});
        PersistentVolumeClaimStrategy.default(&mut c);
        PersistentVolumeClaimStrategy.prepare_for_create(&mut c);
        c
    }

    #[test]
    fn volume_phase_transition_times() {
        let now = "2025-06-01T00:00:00Z";
        let vol = |phase: &str, at: Option<&str>| match at {
            Some(t) => json!({"status": {"phase": phase, "lastPhaseTransitionTime": t}}),
            None => json!({"status": {"phase": phase}}),
        };
        let old_t = "2025-01-01T00:00:00Z";
        let mine = "2025-03-03T00:00:00Z";
        let cases = [
            ("same phase, none given: kept", vol("Available", None), vol("Available", Some(old_t)), Some(old_t)),
            ("same phase, own given: kept", vol("Available", Some(mine)), vol("Available", Some(old_t)), Some(mine)),
            ("new phase, none given: now", vol("Bound", None), vol("Available", Some(old_t)), Some(now)),
            ("new phase, old carried over: now", vol("Bound", Some(old_t)), vol("Available", Some(old_t)), Some(now)),
            ("new phase, own given: kept", vol("Bound", Some(mine)), vol("Available", Some(old_t)), Some(mine)),
            ("never stamped, same phase", vol("Pending", None), vol("Pending", None), None),
        ];
        for (what, mut new, old, want) in cases {
            stamp_phase_transition(&mut new, &old, now);
            assert_eq!(new["status"].get("lastPhaseTransitionTime").and_then(Value::as_str), want, "{what}");
        }
        let mut created = json!({"spec": {}});
        PersistentVolumeStrategy.prepare_for_create(&mut created);
        assert_eq!(created["status"]["phase"], json!("Pending"));
        assert!(created["status"]["lastPhaseTransitionTime"].is_string());
    }

    #[test]
    fn claims() {
        let c = claim(
            json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1024Mi"}}}),
        );
        assert_eq!(c["spec"]["volumeMode"], json!("Filesystem"));
        assert_eq!(c["spec"]["resources"]["requests"]["storage"], json!("1Gi"));
        assert_eq!(c["status"], json!({"phase": "Pending"}));
        assert!(PersistentVolumeClaimStrategy.validate(&c).is_empty());
        let bad = claim(json!({"resources": {"requests": {}}}));
        let errs: Vec<String> = PersistentVolumeClaimStrategy
            .validate(&bad)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "spec.accessModes: Required value: at least 1 access mode is required",
                "spec.resources[storage]: Required value"
            ]
        );
        // An unchanged pending claim (no volumeName) may be written again, e.g. to drop a
        // finalizer; so may one getting its volumeName.
        assert!(PersistentVolumeClaimStrategy.validate_update(&c.clone(), &c).is_empty());
        let mut named = c.clone();
        named["spec"]["volumeName"] = json!("pv1");
        assert!(PersistentVolumeClaimStrategy.validate_update(&named, &c).is_empty());
        let mut changed = c.clone();
        changed["spec"]["accessModes"] = json!(["ReadWriteMany"]);
        let errs: Vec<String> = PersistentVolumeClaimStrategy
            .validate_update(&changed, &c)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"
            ]
        );
    }
}
