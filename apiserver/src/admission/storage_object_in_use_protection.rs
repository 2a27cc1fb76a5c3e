//! StorageObjectInUseProtection: every new PersistentVolumeClaim carries the
//! `kubernetes.io/pvc-protection` finalizer and every new PersistentVolume the
//! `kubernetes.io/pv-protection` one, so that neither goes while in use; the pvc-protection
//! and pv-protection controllers remove them once it is safe. Creates only, as upstream.

use futures::FutureExt;
use futures::future::BoxFuture;
use ironkube_machinery::ApiError;
use ironkube_machinery::resources::ResourceInfo;
use serde_json::{Value, json};

use crate::registry::store::Admission;

pub const PVC_PROTECTION_FINALIZER: &str = "kubernetes.io/pvc-protection";
pub const PV_PROTECTION_FINALIZER: &str = "kubernetes.io/pv-protection";

pub struct StorageObjectInUseProtection;

/// The finalizer a new object of this resource gets, if any.
fn finalizer_for(info: &ResourceInfo) -> Option<&'static str> {
    match (info.group, info.plural) {
        ("", "persistentvolumeclaims") => Some(PVC_PROTECTION_FINALIZER),
        ("", "persistentvolumes") => Some(PV_PROTECTION_FINALIZER),
        _ => None,
    }
}

/// Appends `finalizer` to the object's finalizers unless it is there already.
fn add_finalizer(obj: &mut Value, finalizer: &str) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else { return };
    let list = meta.entry("finalizers").or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    let Some(list) = list.as_array_mut() else { return };
    if !list.iter().any(|f| f.as_str() == Some(finalizer)) {
        list.push(json!(finalizer));
    }
}

impl Admission for StorageObjectInUseProtection {
    fn admit_create<'a>(&'a self, info: &'static ResourceInfo, _namespace: Option<&'a str>, obj: &'a mut Value) -> BoxFuture<'a, Result<(), ApiError>> {
        if let Some(finalizer) = finalizer_for(info) {
            add_finalizer(obj, finalizer);
        }
        async { Ok(()) }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_the_finalizer_once() {
        let cases = [
            ("none yet", json!({"metadata": {"name": "a"}}), json!([PVC_PROTECTION_FINALIZER])),
            ("others kept", json!({"metadata": {"finalizers": ["x/y"]}}), json!(["x/y", PVC_PROTECTION_FINALIZER])),
            ("already there", json!({"metadata": {"finalizers": [PVC_PROTECTION_FINALIZER]}}), json!([PVC_PROTECTION_FINALIZER])),
        ];
        for (what, mut obj, want) in cases {
            add_finalizer(&mut obj, PVC_PROTECTION_FINALIZER);
            assert_eq!(obj["metadata"]["finalizers"], want, "{what}");
        }
    }
}
