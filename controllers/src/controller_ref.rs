//! ControllerRefs: which object controls another (the one ownerReference with
//! `controller: true`), and upstream's claim rules for adopting matching orphans and
//! releasing owned objects that stopped matching.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::{Value, json};

/// The controllerRef of an object, if it has one.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references.iter().flatten().find(|r| r.controller == Some(true))
}

/// Whether `meta` is controlled by the object with `uid`.
pub fn is_controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_of(meta).is_some_and(|r| r.uid == uid)
}

/// The controller of `dependent` if it is a `kind` that `store` holds under the same UID
/// (a controllerRef to a deleted and re-created namesake resolves to nothing).
pub fn resolve<K>(store: &Store<K>, kind: &str, dependent: &ObjectMeta) -> Option<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let r = controller_of(dependent)?;
    if r.kind != kind {
        return None;
    }
    let owner = store.get(&ObjectRef::new(&r.name).within(dependent.namespace.as_deref().unwrap_or("")))?;
    (owner.meta().uid.as_deref() == Some(r.uid.as_str())).then_some(owner)
}

/// A controllerRef to `owner` (`controller` and `blockOwnerDeletion` set, as controllers
/// write them).
pub fn new_controller_ref(api_version: &str, kind: &str, owner: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: owner.name.clone().unwrap_or_default(),
        uid: owner.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The strategic merge patch that adopts an object (upstream's `ownerRefControllerPatch`);
/// the UID makes it fail on a re-created object of the same name.
pub fn adopt_patch(owner: &OwnerReference, dependent_uid: &str) -> Value {
    json!({"metadata": {"ownerReferences": [owner], "uid": dependent_uid}})
}

/// The strategic merge patch that drops `owner_uid`'s ownerReference from an object.
pub fn release_patch(owner_uid: &str, dependent_uid: &str) -> Value {
    json!({"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner_uid}], "uid": dependent_uid}})
}

/// What a controller does with a candidate object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Already ours and still matching.
    Owned,
    /// An orphan that matches: adopt it.
    Adopt,
    /// Ours but no longer matching: release it.
    Release,
    /// Someone else's, or not for us.
    Ignore,
}

/// Upstream's `ClaimObject` rules for `dependent`, given whether it `matches` the
/// controller's selector.
pub fn claim(controller: &ObjectMeta, dependent: &ObjectMeta, matches: bool) -> Claim {
    let controller_uid = controller.uid.as_deref().unwrap_or("");
    let deleting = controller.deletion_timestamp.is_some();
    if let Some(r) = controller_of(dependent) {
        if r.uid != controller_uid {
            return Claim::Ignore;
        }
        if matches {
            return Claim::Owned;
        }
        // A controller being deleted does not release (the GC is about to act).
        return if deleting { Claim::Ignore } else { Claim::Release };
    }
    if deleting || !matches || dependent.deletion_timestamp.is_some() {
        return Claim::Ignore;
    }
    if controller.namespace.is_some() && controller.namespace != dependent.namespace {
        return Claim::Ignore;
    }
    Claim::Adopt
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn meta(uid: &str, owner: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some(uid.into()),
            namespace: Some("ns".into()),
            uid: Some(uid.into()),
            owner_references: owner.map(|o| vec![OwnerReference { uid: o.into(), controller: Some(true), ..Default::default() }]),
            ..Default::default()
        }
    }

    #[test]
    fn claim_rules() {
        let rs = meta("rs", None);
        assert_eq!(claim(&rs, &meta("p", Some("rs")), true), Claim::Owned);
        assert_eq!(claim(&rs, &meta("p", Some("rs")), false), Claim::Release);
        assert_eq!(claim(&rs, &meta("p", Some("other")), true), Claim::Ignore);
        assert_eq!(claim(&rs, &meta("p", None), true), Claim::Adopt);
        assert_eq!(claim(&rs, &meta("p", None), false), Claim::Ignore);
        let mut deleting = rs.clone();
        deleting.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        assert_eq!(claim(&deleting, &meta("p", Some("rs")), false), Claim::Ignore);
        assert_eq!(claim(&deleting, &meta("p", None), true), Claim::Ignore);
        let mut elsewhere = meta("p", None);
        elsewhere.namespace = Some("other".into());
        assert_eq!(claim(&rs, &elsewhere, true), Claim::Ignore);
    }

    #[test]
    fn patches_name_the_dependent() {
        let r = new_controller_ref("apps/v1", "ReplicaSet", &meta("rs", None));
        assert_eq!(r.block_owner_deletion, Some(true));
        assert_eq!(adopt_patch(&r, "p")["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
        assert_eq!(release_patch("rs", "p")["metadata"]["ownerReferences"][0]["$patch"], "delete");
    }
}
