//! A stateful pod's identity: its ordinal (the number after the set's name), its name and
//! labels, hostname and subdomain, the PersistentVolumeClaims made for it from the set's
//! `volumeClaimTemplates` (`<claim>-<set>-<ordinal>`) and the ownerReferences those claims
//! carry under the set's `persistentVolumeClaimRetentionPolicy`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::controller_ref;

/// The label naming the pod (upstream's `StatefulSetPodNameLabel`).
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label holding the pod's ordinal (upstream's `PodIndexLabel`).
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
/// The label naming the pod's revision (upstream's `StatefulSetRevisionLabel`).
pub const REVISION_LABEL: &str = "controller-revision-hash";

const RETAIN: &str = "Retain";
const DELETE: &str = "Delete";

/// The set's name and the ordinal in a pod name (upstream's `(.*)-([0-9]+)$`); the
/// ordinal is None when the digits do not fit an int32.
pub fn parent_and_ordinal(pod_name: &str) -> Option<(&str, Option<i32>)> {
    let (parent, digits) = pod_name.rsplit_once('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parent, digits.parse().ok()))
}

/// The ordinal of a pod, if its name has one.
pub fn ordinal(pod: &Pod) -> Option<i32> {
    parent_and_ordinal(pod.metadata.name.as_deref().unwrap_or("")).and_then(|(_, o)| o)
}

/// Whether the pod's name makes it one of `set`'s (upstream's `isMemberOf`).
pub fn is_member(set: &StatefulSet, pod: &Pod) -> bool {
    parent_and_ordinal(pod.metadata.name.as_deref().unwrap_or("")).is_some_and(|(parent, _)| Some(parent) == set.metadata.name.as_deref())
}

fn name(set: &StatefulSet) -> &str {
    set.metadata.name.as_deref().unwrap_or("")
}

/// `spec.replicas` (1 when unset, as the API server defaults it).
pub fn replicas(set: &StatefulSet) -> i32 {
    set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// The first ordinal (`spec.ordinals.start`, 0 by default).
pub fn start_ordinal(set: &StatefulSet) -> i32 {
    set.spec.as_ref().and_then(|s| s.ordinals.as_ref()).and_then(|o| o.start).unwrap_or(0)
}

/// Whether `ordinal` is one the set should run now.
pub fn in_range(set: &StatefulSet, ordinal: i32) -> bool {
    let start = start_ordinal(set);
    ordinal >= start && i64::from(ordinal) < i64::from(start) + i64::from(replicas(set))
}

/// `<set>-<ordinal>`.
pub fn pod_name(set: &StatefulSet, ordinal: i32) -> String {
    format!("{}-{ordinal}", name(set))
}

/// `<claim>-<set>-<ordinal>`.
pub fn claim_name(set: &StatefulSet, template: &PersistentVolumeClaim, ordinal: i32) -> String {
    format!("{}-{}-{ordinal}", template.metadata.name.as_deref().unwrap_or(""), name(set))
}

fn claim_templates(set: &StatefulSet) -> &[PersistentVolumeClaim] {
    set.spec.as_ref().and_then(|s| s.volume_claim_templates.as_deref()).unwrap_or(&[])
}

fn labels(meta: &ObjectMeta) -> Option<&BTreeMap<String, String>> {
    meta.labels.as_ref()
}

/// The pod's revision label ("" without one).
pub fn revision(pod: &Pod) -> &str {
    labels(&pod.metadata).and_then(|l| l.get(REVISION_LABEL)).map_or("", String::as_str)
}

/// Upstream's `identityMatches`.
pub fn identity_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let pod_name_ = pod.metadata.name.as_deref().unwrap_or("");
    let Some((parent, Some(ord))) = parent_and_ordinal(pod_name_) else { return false };
    ord >= 0
        && parent == name(set)
        && pod_name_ == self::pod_name(set, ord)
        && pod.metadata.namespace == set.metadata.namespace
        && labels(&pod.metadata).and_then(|l| l.get(POD_NAME_LABEL)).map(String::as_str) == Some(pod_name_)
}

/// Upstream's `storageMatches`: every claim template has its volume on the pod.
pub fn storage_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let Some(ord) = ordinal(pod) else { return false };
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_deref()).unwrap_or(&[]);
    claim_templates(set).iter().all(|t| {
        let want = claim_name(set, t, ord);
        volumes
            .iter()
            .find(|v| Some(v.name.as_str()) == t.metadata.name.as_deref())
            .and_then(|v| v.persistent_volume_claim.as_ref())
            .is_some_and(|c| c.claim_name == want)
    })
}

/// The claims the pod with `ordinal` uses, with their template names (upstream's
/// `getPersistentVolumeClaims`): the template renamed, in the set's namespace, labelled
/// with the set's selector `matchLabels`.
pub fn claims(set: &StatefulSet, ordinal: i32) -> Vec<(String, PersistentVolumeClaim)> {
    let match_labels = set.spec.as_ref().and_then(|s| s.selector.match_labels.clone()).unwrap_or_default();
    claim_templates(set)
        .iter()
        .map(|t| {
            let mut claim = t.clone();
            claim.metadata.name = Some(claim_name(set, t, ordinal));
            claim.metadata.namespace = set.metadata.namespace.clone();
            let labels = claim.metadata.labels.get_or_insert_with(BTreeMap::new);
            labels.extend(match_labels.clone());
            claim.status = None;
            (t.metadata.name.clone().unwrap_or_default(), claim)
        })
        .collect()
}

/// Upstream's `updateStorage`: a PVC volume per claim template, then the pod's other
/// volumes.
pub fn update_storage(set: &StatefulSet, pod: &mut Pod, ordinal: i32) {
    let claims = claims(set, ordinal);
    let spec = pod.spec.get_or_insert_with(Default::default);
    let current = spec.volumes.take().unwrap_or_default();
    let mut volumes: Vec<Volume> = claims
        .iter()
        .map(|(template, claim)| Volume {
            name: template.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource { claim_name: claim.metadata.name.clone().unwrap_or_default(), read_only: None }),
            ..Default::default()
        })
        .collect();
    volumes.extend(current.into_iter().filter(|v| !claims.iter().any(|(t, _)| *t == v.name)));
    spec.volumes = (!volumes.is_empty()).then_some(volumes);
}

/// Upstream's `updateIdentity`: name, namespace, pod-name and pod-index labels.
pub fn update_identity(set: &StatefulSet, pod: &mut Pod, ordinal: i32) {
    let name = pod_name(set, ordinal);
    pod.metadata.namespace = set.metadata.namespace.clone();
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    pod.metadata.name = Some(name);
}

/// Upstream's `newStatefulSetPod`: the pod `template` gives for `ordinal`, controlled by
/// `set`, with its identity (hostname and subdomain too) and storage.
pub fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, ordinal: i32) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    let mut pod = Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", name(set))),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![controller_ref::new_controller_ref("apps/v1", "StatefulSet", &set.metadata)]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    };
    update_identity(set, &mut pod, ordinal);
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.hostname = pod.metadata.name.clone();
    spec.subdomain = set.spec.as_ref().and_then(|s| s.service_name.clone()).filter(|s| !s.is_empty());
    update_storage(set, &mut pod, ordinal);
    pod
}

/// `(whenDeleted, whenScaled)`, Retain by default.
fn retention(set: &StatefulSet) -> (&str, &str) {
    let policy = set.spec.as_ref().and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
    (
        policy.and_then(|p| p.when_deleted.as_deref()).unwrap_or(RETAIN),
        policy.and_then(|p| p.when_scaled.as_deref()).unwrap_or(RETAIN),
    )
}

/// Whether the set deletes claims of pods it scales away.
pub fn deletes_when_scaled(set: &StatefulSet) -> bool {
    retention(set).1 == DELETE
}

fn refs(claim: &PersistentVolumeClaim) -> &[OwnerReference] {
    claim.metadata.owner_references.as_deref().unwrap_or(&[])
}

fn names(r: &OwnerReference, api_version: &str, kind: &str, meta: &ObjectMeta) -> bool {
    r.api_version == api_version && r.kind == kind && Some(r.name.as_str()) == meta.name.as_deref()
}

fn names_set(r: &OwnerReference, set: &StatefulSet) -> bool {
    names(r, "apps/v1", "StatefulSet", &set.metadata)
}

fn names_pod(r: &OwnerReference, pod: &Pod) -> bool {
    names(r, "v1", "Pod", &pod.metadata)
}

fn uid(meta: &ObjectMeta) -> &str {
    meta.uid.as_deref().unwrap_or("")
}

fn has_ref(claim: &PersistentVolumeClaim, owner: &ObjectMeta) -> bool {
    refs(claim).iter().any(|r| r.uid == uid(owner))
}

/// A reference naming `owner` under another UID: left by an earlier namesake.
fn has_stale_ref(claim: &PersistentVolumeClaim, matches: impl Fn(&OwnerReference) -> bool, owner: &ObjectMeta) -> bool {
    refs(claim).iter().find(|r| matches(r)).is_some_and(|r| r.uid != uid(owner))
}

/// Upstream's `PodClaimIsStale` for one claim: it still points at an earlier pod.
pub fn claim_is_stale(claim: &PersistentVolumeClaim, pod: &Pod) -> bool {
    has_stale_ref(claim, |r| names_pod(r, pod), &pod.metadata)
}

/// Upstream's `hasUnexpectedController`.
pub fn has_unexpected_controller(claim: &PersistentVolumeClaim, set: &StatefulSet, pod: &Pod) -> bool {
    if retention(set) == (RETAIN, RETAIN) {
        return false;
    }
    for r in refs(claim) {
        if names_set(r, set) {
            if r.uid != uid(&set.metadata) {
                return true;
            }
            continue;
        }
        if names_pod(r, pod) {
            if r.uid != uid(&pod.metadata) {
                return true;
            }
            continue;
        }
        if r.controller == Some(true) {
            return true;
        }
    }
    false
}

/// Upstream's `isClaimOwnerUpToDate`: whether the claim's ownerReferences are what the
/// retention policy asks for the pod (`scaled_down`: out of the set's ordinal range).
pub fn claim_owners_up_to_date(claim: &PersistentVolumeClaim, set: &StatefulSet, pod: &Pod) -> bool {
    if has_stale_ref(claim, |r| names_set(r, set), &set.metadata) || claim_is_stale(claim, pod) {
        return true;
    }
    if has_unexpected_controller(claim, set, pod) {
        return !(has_ref(claim, &set.metadata) || has_ref(claim, &pod.metadata));
    }
    let (set_uid, pod_uid) = (uid(&set.metadata), uid(&pod.metadata));
    if refs(claim).iter().any(|r| (r.uid == set_uid || r.uid == pod_uid) && r.controller != Some(true)) {
        return false;
    }
    let (want_set, want_pod) = wanted_owners(set, pod);
    has_ref(claim, &set.metadata) == want_set && has_ref(claim, &pod.metadata) == want_pod
}

/// Which of (set, pod) should own the pod's claims under the retention policy.
fn wanted_owners(set: &StatefulSet, pod: &Pod) -> (bool, bool) {
    let scaled_down = !ordinal(pod).is_some_and(|o| in_range(set, o));
    match retention(set) {
        (DELETE, RETAIN) => (true, false),
        (RETAIN, DELETE) => (false, scaled_down),
        (DELETE, DELETE) => (!scaled_down, scaled_down),
        _ => (false, false),
    }
}

/// Upstream's `updateClaimOwnerRefForSetAndPod`: the claim's ownerReferences with the
/// set's and pod's replaced by what the policy asks (none beside an unexpected controller).
pub fn claim_owners(claim: &PersistentVolumeClaim, set: &StatefulSet, pod: &Pod) -> Vec<OwnerReference> {
    let unexpected = has_unexpected_controller(claim, set, pod);
    let mut out: Vec<OwnerReference> = refs(claim).iter().filter(|r| !names_set(r, set) && !names_pod(r, pod)).cloned().collect();
    if unexpected {
        return out;
    }
    let (want_set, want_pod) = wanted_owners(set, pod);
    if want_set && !out.iter().any(|r| r.uid == uid(&set.metadata)) {
        out.push(controller_ref::new_controller_ref("apps/v1", "StatefulSet", &set.metadata));
    }
    if want_pod && !out.iter().any(|r| r.uid == uid(&pod.metadata)) {
        out.push(controller_ref::new_controller_ref("v1", "Pod", &pod.metadata));
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::{Value, json};

    pub(crate) fn set(extra: Value) -> StatefulSet {
        let mut v = json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid", "generation": 1},
            "spec": {
                "replicas": 3, "serviceName": "nginx",
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
            },
        });
        if let (Some(spec), Some(extra)) = (v["spec"].as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        serde_json::from_value(v).expect("set")
    }

    #[test]
    fn ordinals_come_from_the_last_dash() {
        let cases = [
            ("web-0", Some(("web", Some(0)))),
            ("my-web-12", Some(("my-web", Some(12)))),
            ("web-", None),
            ("web", None),
            ("web-1a", None),
            ("web-99999999999", Some(("web", None))),
        ];
        for (name, want) in cases {
            assert_eq!(parent_and_ordinal(name), want, "{name}");
        }
    }

    #[test]
    fn ordinal_ranges_follow_ordinals_start() {
        let plain = set(json!({}));
        assert!(in_range(&plain, 0) && in_range(&plain, 2) && !in_range(&plain, 3));
        let shifted = set(json!({"ordinals": {"start": 5}}));
        assert!(!in_range(&shifted, 0) && in_range(&shifted, 5) && in_range(&shifted, 7) && !in_range(&shifted, 8));
    }

    #[test]
    fn new_pods_carry_identity_storage_and_a_controller_ref() {
        let s = set(json!({"volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]}));
        let template = s.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
        let pod = new_pod(&s, &template, 2);
        assert_eq!(pod.metadata.name.as_deref(), Some("web-2"));
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("web-"));
        let l = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(l.get(POD_NAME_LABEL).map(String::as_str), Some("web-2"));
        assert_eq!(l.get(POD_INDEX_LABEL).map(String::as_str), Some("2"));
        assert_eq!(l.get("app").map(String::as_str), Some("web"));
        let spec = pod.spec.clone().unwrap_or_default();
        assert_eq!((spec.hostname.as_deref(), spec.subdomain.as_deref()), (Some("web-2"), Some("nginx")));
        let vol = &spec.volumes.unwrap_or_default()[0];
        assert_eq!((vol.name.as_str(), vol.persistent_volume_claim.as_ref().map(|c| c.claim_name.as_str())), ("www", Some("www-web-2")));
        assert!(identity_matches(&s, &pod) && storage_matches(&s, &pod));
        let owner = &pod.metadata.owner_references.clone().unwrap_or_default()[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str(), owner.controller), ("StatefulSet", "set-uid", Some(true)));
        let claims = claims(&s, 2);
        assert_eq!(claims[0].1.metadata.name.as_deref(), Some("www-web-2"));
        assert_eq!(claims[0].1.metadata.labels.as_ref().and_then(|l| l.get("app")).map(String::as_str), Some("web"));

        let mut renamed = pod.clone();
        renamed.metadata.labels = None;
        assert!(!identity_matches(&s, &renamed));
    }

    fn pod(name: &str, uid: &str) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "ns", "uid": uid}})).expect("pod")
    }

    fn claim(owners: Value) -> PersistentVolumeClaim {
        serde_json::from_value(json!({"metadata": {"name": "www-web-1", "namespace": "ns", "ownerReferences": owners}})).expect("claim")
    }

    #[test]
    fn claim_owners_follow_the_retention_policy() {
        let set_ref = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "set-uid", "controller": true, "blockOwnerDeletion": true});
        let pod_ref = json!({"apiVersion": "v1", "kind": "Pod", "name": "web-4", "uid": "pod-uid", "controller": true, "blockOwnerDeletion": true});
        let policy = |deleted: &str, scaled: &str| set(json!({"persistentVolumeClaimRetentionPolicy": {"whenDeleted": deleted, "whenScaled": scaled}}));
        let live = pod("web-1", "pod-uid");
        let gone = pod("web-4", "pod-uid");
        // (set, pod, claim owners, up to date, owner kinds after fixing)
        let cases = [
            (policy("Retain", "Retain"), &live, json!([]), true, vec![]),
            (policy("Retain", "Retain"), &live, json!([set_ref.clone()]), false, vec![]),
            (policy("Delete", "Retain"), &live, json!([]), false, vec!["StatefulSet"]),
            (policy("Delete", "Retain"), &live, json!([set_ref.clone()]), true, vec!["StatefulSet"]),
            (policy("Retain", "Delete"), &live, json!([]), true, vec![]),
            (policy("Retain", "Delete"), &gone, json!([]), false, vec!["Pod"]),
            (policy("Delete", "Delete"), &gone, json!([set_ref.clone()]), false, vec!["Pod"]),
            (policy("Delete", "Delete"), &gone, json!([pod_ref.clone()]), true, vec!["Pod"]),
        ];
        for (i, (s, p, owners, up_to_date, kinds)) in cases.into_iter().enumerate() {
            let c = claim(owners);
            assert_eq!(claim_owners_up_to_date(&c, &s, p), up_to_date, "case {i}");
            let fixed: Vec<String> = claim_owners(&c, &s, p).into_iter().map(|r| r.kind).collect();
            assert_eq!(fixed, kinds, "case {i}");
        }
        // A claim still owned by an earlier pod of the same name is stale and left alone.
        let stale = claim(json!([{"apiVersion": "v1", "kind": "Pod", "name": "web-4", "uid": "old", "controller": true}]));
        assert!(claim_is_stale(&stale, &gone));
        assert!(claim_owners_up_to_date(&stale, &policy("Delete", "Delete"), &gone));
    }
}
