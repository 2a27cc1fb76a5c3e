//! Namespaces: the `kubernetes.io/metadata.name` label, the `kubernetes` finalizer and
//! `Active` phase on create, `Terminating` once deleted, and the phase rules of status
//! updates.

use ironkube_machinery::field::{FieldError, Path};
use ironkube_machinery::validation::meta::{validate_finalizer_name, validate_kube_finalizer_name};
use ironkube_machinery::validation::names::dns1123_label;
use serde_json::{Value, json};

use super::Strategy;
use super::object::{child_obj, meta, str_at};

/// The label every namespace carries with its own name.
const NAME_LABEL: &str = "kubernetes.io/metadata.name";

pub struct NamespaceStrategy;

fn set_name_label(obj: &mut Value) {
    let name = str_at(meta(obj), "name").to_string();
    if name.is_empty() {
        return;
    }
    if let Some(labels) = obj
        .as_object_mut()
        .and_then(|o| child_obj(o, "metadata"))
        .and_then(|m| child_obj(m, "labels"))
    {
        labels.insert(NAME_LABEL.into(), json!(name));
    }
}

fn spec_finalizers(obj: &Value) -> Vec<String> {
    obj["spec"]
        .get("finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

impl Strategy for NamespaceStrategy {
    fn validate_name(&self, name: &str) -> Vec<String> {
        dns1123_label(name)
    }

    fn default(&self, obj: &mut Value) {
        set_name_label(obj);
    }

    fn keeps_status_on_create(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        let mut finalizers = spec_finalizers(obj);
        if !finalizers.iter().any(|f| f == "kubernetes") {
            finalizers.push("kubernetes".into());
        }
        if let Some(o) = obj.as_object_mut() {
            if let Some(spec) = child_obj(o, "spec") {
                spec.insert("finalizers".into(), json!(finalizers));
            }
            o.insert("status".into(), json!({"phase": "Active"}));
        }
        set_name_label(obj);
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        if let Some(spec) = new.as_object_mut().and_then(|o| child_obj(o, "spec")) {
            match old["spec"].get("finalizers") {
                Some(f) => spec.insert("finalizers".into(), f.clone()),
                None => spec.remove("finalizers"),
            };
        }
        if let Some(o) = new.as_object_mut() {
            match old.get("status") {
                Some(s) => o.insert("status".into(), s.clone()),
                None => o.remove("status"),
            };
        }
        set_name_label(new);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let path = Path::new("spec").child("finalizers");
        spec_finalizers(obj)
            .iter()
            .flat_map(|f| {
                let mut e = validate_finalizer_name(f, &path);
                e.extend(validate_kube_finalizer_name(f, &path));
                e
            })
            .collect()
    }

    fn validate_update(&self, _new: &Value, _old: &Value) -> Vec<FieldError> {
        Vec::new()
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> Vec<FieldError> {
        let phase = str_at(new.get("status").unwrap_or(&Value::Null), "phase");
        let deleting = new["metadata"]
            .get("deletionTimestamp")
            .is_some_and(|v| !v.is_null());
        let p = Path::new("status").child("Phase");
        if !deleting && phase != "Active" {
            vec![FieldError::invalid(
                p,
                phase.into(),
                "may only be 'Active' if `deletionTimestamp` is empty",
            )]
        } else if deleting && phase != "Terminating" {
            vec![FieldError::invalid(
                p,
                phase.into(),
                "may only be 'Terminating' if `deletionTimestamp` is not empty",
            )]
        } else {
            Vec::new()
        }
    }

    fn field_labels(&self, obj: &Value) -> Vec<(&'static str, String)> {
        vec![(
            "status.phase",
            str_at(obj.get("status").unwrap_or(&Value::Null), "phase").to_string(),
        )]
    }

    fn deletion_in_progress(&self) -> Option<&'static str> {
        Some("The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system.")
    }

    fn holds_deletion(&self, obj: &Value) -> bool {
        !spec_finalizers(obj).is_empty()
    }

    fn prepare_for_delete(&self, obj: &mut Value) {
        if let Some(status) = obj.as_object_mut().and_then(|o| child_obj(o, "status")) {
            status.insert("phase".into(), json!("Terminating"));
        }
    }

    fn return_deleted_object(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create() {
        let mut ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}, "status": {"phase": "Terminating"}});
        NamespaceStrategy.default(&mut ns);
        NamespaceStrategy.prepare_for_create(&mut ns);
        assert_eq!(
            ns,
            json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "team-a", "labels": {"kubernetes.io/metadata.name": "team-a"}},
                "status": {"phase": "Active"},
                "spec": {"finalizers": ["kubernetes"]}
            })
        );
        assert!(NamespaceStrategy.validate_name("Team").len() == 1);
        assert!(
            NamespaceStrategy.validate_name("a.b") == vec!["must not contain dots".to_string()]
        );
    }

    #[test]
    fn status_phase() {
        let ns = json!({"metadata": {"name": "a"}, "status": {"phase": "Terminating"}});
        let errs: Vec<String> = NamespaceStrategy
            .validate_status_update(&ns, &ns)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "status.Phase: Invalid value: \"Terminating\": may only be 'Active' if `deletionTimestamp` is empty"
            ]
        );
    }
}
