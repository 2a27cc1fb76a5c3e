//! A StatefulSet's revisions (upstream's `getStatefulSetRevisions`, `truncateHistory`,
//! `newRevision`, `ApplyRevision`): each template the set had is a ControllerRevision named
//! `<set>-<hash>` whose data is the patch putting that template back; the update revision
//! is the one holding the current template (an older equal revision is renumbered to come
//! last, which is what `kubectl rollout undo` relies on), the current revision is the one
//! `status.currentRevision` names.

use std::collections::HashSet;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::Value;

use super::Error;
use super::identity;
use crate::controller_ref;
use crate::history;

fn template(set: &StatefulSet) -> PodTemplateSpec {
    set.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default()
}

/// The revision data recording the set's template.
pub fn patch(set: &StatefulSet) -> Result<Value, serde_json::Error> {
    history::template_patch(&template(set))
}

/// Upstream's `newRevision`: numbered `number`, named from the hash of the data and the
/// collision count, labelled with the template's labels and the hash, annotated with the
/// set's annotations.
pub fn new_revision(set: &StatefulSet, number: i64, collision_count: i32) -> Result<ControllerRevision, serde_json::Error> {
    let data = patch(set)?;
    let hash = history::hash(history::go_json(&data).as_bytes(), Some(collision_count));
    let mut labels = template(set).metadata.and_then(|m| m.labels).unwrap_or_default();
    labels.insert(history::HASH_LABEL.into(), hash.clone());
    Ok(ControllerRevision {
        metadata: ObjectMeta {
            name: Some(history::revision_name(set.metadata.name.as_deref().unwrap_or(""), &hash)),
            namespace: set.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: Some(set.metadata.annotations.clone().unwrap_or_default()),
            owner_references: Some(vec![controller_ref::new_controller_ref("apps/v1", "StatefulSet", &set.metadata)]),
            ..Default::default()
        },
        data: Some(RawExtension(data)),
        revision: number,
    })
}

/// Upstream's `ApplyRevision`: the set with the template a revision recorded.
pub fn apply(set: &StatefulSet, revision: &ControllerRevision) -> Result<StatefulSet, serde_json::Error> {
    let mut out = set.clone();
    let recorded = revision.data.as_ref().and_then(|d| d.0.pointer("/spec/template")).cloned();
    if let (Some(mut t), Some(spec)) = (recorded, out.spec.as_mut()) {
        if let Some(m) = t.as_object_mut() {
            m.remove("$patch");
        }
        spec.template = serde_json::from_value(t)?;
    }
    Ok(out)
}

/// What the update revision is, given the set's sorted revisions.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateRevision {
    /// The newest revision already holds the template.
    Latest(Arc<ControllerRevision>),
    /// An older revision holds it: it becomes the newest under this number.
    Renumber(Arc<ControllerRevision>, i64),
    /// No revision holds it: create this one.
    Create(Box<ControllerRevision>),
}

/// The first half of upstream's `getStatefulSetRevisions`, without the writes.
pub fn choose_update(set: &StatefulSet, sorted: &[Arc<ControllerRevision>], collision_count: i32) -> Result<UpdateRevision, serde_json::Error> {
    let wanted = new_revision(set, history::next_revision(sorted), collision_count)?;
    let data = wanted.data.as_ref().map(|d| d.0.clone()).unwrap_or(Value::Null);
    let equal: Vec<&Arc<ControllerRevision>> = sorted.iter().filter(|r| history::same_data(r, &data)).collect();
    Ok(match (equal.last(), sorted.last()) {
        (Some(found), Some(latest)) if Arc::ptr_eq(found, latest) => UpdateRevision::Latest((*found).clone()),
        (Some(found), _) => UpdateRevision::Renumber((*found).clone(), wanted.revision),
        (None, _) => UpdateRevision::Create(Box::new(wanted)),
    })
}

/// Upstream's `truncateHistory` choice: revisions neither current, update nor used by a
/// pod, oldest first, beyond `revisionHistoryLimit`.
pub fn to_delete(set: &StatefulSet, sorted: &[Arc<ControllerRevision>], pods: &[Arc<Pod>], live: &[&str]) -> Vec<Arc<ControllerRevision>> {
    let mut in_use: HashSet<&str> = live.iter().copied().collect();
    in_use.extend(pods.iter().map(|p| identity::revision(p)));
    let old: Vec<&Arc<ControllerRevision>> = sorted.iter().filter(|r| !in_use.contains(r.metadata.name.as_deref().unwrap_or(""))).collect();
    let limit = set.spec.as_ref().and_then(|s| s.revision_history_limit).unwrap_or(10);
    let Ok(limit) = usize::try_from(limit) else { return Vec::new() };
    if old.len() <= limit {
        return Vec::new();
    }
    old[..old.len() - limit].iter().map(|r| (*r).clone()).collect()
}

fn api(client: &kube::Client, set: &StatefulSet) -> Api<ControllerRevision> {
    Api::namespaced(client.clone(), set.metadata.namespace.as_deref().unwrap_or(""))
}

/// Upstream's `CreateControllerRevision`: on a name taken by other data, counts a
/// collision and tries the next name. Returns the revision and the collision count.
pub async fn create(client: &kube::Client, set: &StatefulSet, mut revision: ControllerRevision, mut collision_count: i32) -> Result<(Arc<ControllerRevision>, i32), Error> {
    let api = api(client, set);
    let data = revision.data.as_ref().map(|d| d.0.clone()).unwrap_or(Value::Null);
    loop {
        let created = api.create(&PostParams::default(), &revision).await;
        match created {
            Ok(r) => return Ok((Arc::new(r), collision_count)),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                let name = revision.metadata.name.clone().unwrap_or_default();
                let existing = api.get(&name).await.map_err(|source| Error::Revision { name: name.clone(), source })?;
                if history::same_data(&existing, &data) {
                    return Ok((Arc::new(existing), collision_count));
                }
                collision_count = collision_count.saturating_add(1);
                revision = new_revision(set, revision.revision, collision_count)?;
            }
            Err(source) => return Err(Error::Revision { name: revision.metadata.name.clone().unwrap_or_default(), source }),
        }
    }
}

/// Gives `revision` a new number (upstream's `UpdateControllerRevision`).
pub async fn renumber(client: &kube::Client, set: &StatefulSet, revision: &ControllerRevision, number: i64) -> Result<Arc<ControllerRevision>, Error> {
    let name = revision.metadata.name.clone().unwrap_or_default();
    let patch = serde_json::json!({"revision": number});
    let updated = api(client, set).patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await.map_err(|source| Error::Revision { name, source })?;
    Ok(Arc::new(updated))
}

/// Deletes old revisions; one already gone is fine.
pub async fn delete(client: &kube::Client, set: &StatefulSet, revisions: &[Arc<ControllerRevision>]) -> Result<(), Error> {
    let api = api(client, set);
    for r in revisions {
        let name = r.metadata.name.clone().unwrap_or_default();
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if crate::informer::is_not_found(&e) => {}
            Err(source) => return Err(Error::Revision { name, source }),
        }
    }
    Ok(())
}

/// Adopts an orphaned revision (upstream's `AdoptControllerRevision`).
pub async fn adopt(client: &kube::Client, set: &StatefulSet, revision: &ControllerRevision) -> Result<Arc<ControllerRevision>, Error> {
    let name = revision.metadata.name.clone().unwrap_or_default();
    let owner = controller_ref::new_controller_ref("apps/v1", "StatefulSet", &set.metadata);
    let patch = controller_ref::adopt_patch(&owner, revision.metadata.uid.as_deref().unwrap_or(""));
    let adopted = api(client, set).patch(&name, &PatchParams::default(), &Patch::Strategic(patch)).await.map_err(|source| Error::Revision { name, source })?;
    Ok(Arc::new(adopted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statefulset::identity::tests::set;
    use serde_json::json;

    fn with_image(image: &str) -> StatefulSet {
        let mut s = set(json!({}));
        if let Some(spec) = s.spec.as_mut().and_then(|sp| sp.template.spec.as_mut()) {
            spec.containers[0].image = Some(image.into());
        }
        s
    }

    fn stored(set: &StatefulSet, number: i64) -> Arc<ControllerRevision> {
        let mut r = new_revision(set, number, 0).expect("revision");
        r.metadata.name = Some(format!("{}-{number}", r.metadata.name.unwrap_or_default()));
        Arc::new(r)
    }

    #[test]
    fn revisions_are_named_labelled_and_owned() {
        let s = with_image("nginx:1");
        let r = new_revision(&s, 1, 0).expect("revision");
        let name = r.metadata.name.clone().unwrap_or_default();
        let hash = r.metadata.labels.as_ref().and_then(|l| l.get(history::HASH_LABEL)).cloned().unwrap_or_default();
        assert_eq!(name, format!("web-{hash}"));
        assert_eq!(r.metadata.labels.as_ref().and_then(|l| l.get("app")).map(String::as_str), Some("web"));
        assert_eq!(r.metadata.owner_references.as_ref().map(|o| o[0].kind.as_str()), Some("StatefulSet"));
        // Another collision count gives another name; another template another hash.
        assert_ne!(new_revision(&s, 1, 1).expect("r").metadata.name, r.metadata.name);
        assert_ne!(new_revision(&with_image("nginx:2"), 1, 0).expect("r").metadata.name, r.metadata.name);
        // Applying a revision restores its template.
        let back = apply(&with_image("nginx:2"), &r).expect("apply");
        assert_eq!(back.spec.as_ref().and_then(|s| s.template.spec.as_ref()).and_then(|p| p.containers[0].image.as_deref()), Some("nginx:1"));
    }

    #[test]
    fn the_update_revision_is_found_renumbered_or_created() {
        let (one, two) = (with_image("nginx:1"), with_image("nginx:2"));
        let history = vec![stored(&one, 1), stored(&two, 2)];
        assert!(matches!(choose_update(&two, &history, 0), Ok(UpdateRevision::Latest(r)) if r.revision == 2));
        assert!(matches!(choose_update(&one, &history, 0), Ok(UpdateRevision::Renumber(r, 3)) if r.revision == 1));
        assert!(matches!(choose_update(&with_image("nginx:3"), &history, 0), Ok(UpdateRevision::Create(r)) if r.revision == 3));
        assert!(matches!(choose_update(&one, &[], 0), Ok(UpdateRevision::Create(r)) if r.revision == 1));
    }

    #[test]
    fn history_keeps_live_revisions_and_the_limit() {
        let mut s = with_image("nginx:1");
        if let Some(spec) = s.spec.as_mut() {
            spec.revision_history_limit = Some(1);
        }
        let history: Vec<Arc<ControllerRevision>> = (1..=4).map(|n| stored(&with_image(&format!("nginx:{n}")), n)).collect();
        let names: Vec<String> = history.iter().filter_map(|r| r.metadata.name.clone()).collect();
        let pod: Arc<Pod> = Arc::new(serde_json::from_value(json!({"metadata": {"name": "web-0", "labels": {"controller-revision-hash": names[0]}}})).expect("pod"));
        let doomed = to_delete(&s, &history, &[pod], &[&names[3], &names[3]]);
        let doomed: Vec<&str> = doomed.iter().filter_map(|r| r.metadata.name.as_deref()).collect();
        // Live: 1 (a pod) and 4 (current and update); of 2 and 3 one is kept.
        assert_eq!(doomed, [names[1].as_str()]);
        if let Some(spec) = s.spec.as_mut() {
            spec.revision_history_limit = Some(10);
        }
        assert!(to_delete(&s, &history, &[], &[]).is_empty());
    }
}
