//! The protection controllers (upstream's `pvcprotection` and `pvprotection`): a claim being
//! deleted keeps `kubernetes.io/pvc-protection` while a scheduled pod uses it (its volumes
//! name the claim, or a generic ephemeral volume of the pod made it); a volume being deleted
//! keeps `kubernetes.io/pv-protection` while it is Bound. Objects that lack their finalizer
//! (created before the admission plugin) get it.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, instrument};

use super::{PV_PROTECTION_FINALIZER, PVC_PROTECTION_FINALIZER, is_deletion_candidate, needs_finalizer};
use crate::informer::{self, Change, Conflict};
use crate::replicaset::key;

pub const PVC_NAME: &str = "pvc-protection";
pub const PV_NAME: &str = "pv-protection";

/// What a reconcile fails with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("updating the finalizers of {what} {key}: {source}")]
    Update { what: &'static str, key: String, #[source] source: kube::Error },
    #[error("listing the pods of namespace {namespace}: {source}")]
    ListPods { namespace: String, #[source] source: kube::Error },
}

impl Conflict for Error {
    fn is_conflict(&self) -> bool {
        matches!(self, Error::Update { source, .. } if informer::is_conflict(source))
    }
}

fn with_finalizer(meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, finalizer: &str, present: bool) {
    let list = meta.finalizers.get_or_insert_with(Vec::new);
    list.retain(|f| f != finalizer);
    if present {
        list.push(finalizer.into());
    }
}

/// The claim a pod volume names: a claim by name, or the `<pod>-<volume>` claim of a
/// generic ephemeral volume.
fn claim_names(pod: &Pod) -> Vec<String> {
    let pod_name = pod.metadata.name.as_deref().unwrap_or("");
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| match (&v.persistent_volume_claim, &v.ephemeral) {
            (Some(pvc), _) => Some(pvc.claim_name.clone()),
            (None, Some(_)) => Some(format!("{pod_name}-{}", v.name)),
            _ => None,
        })
        .collect()
}

/// Upstream's `podIsShutDown`: the kubelet is done with it, or it was force-deleted.
fn pod_is_shut_down(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some() && pod.metadata.deletion_grace_period_seconds == Some(0)
}

/// Whether `pod` uses `claim` (upstream's `podUsesPVC`): only scheduled pods count, since the
/// kubelet will not start a pod whose claim is being deleted.
pub fn pod_uses_claim(pod: &Pod, claim: &PersistentVolumeClaim) -> bool {
    let Some(spec) = pod.spec.as_ref() else { return false };
    if spec.node_name.as_deref().unwrap_or("").is_empty() || pod.metadata.namespace != claim.metadata.namespace {
        return false;
    }
    let claim_name = claim.metadata.name.as_deref().unwrap_or("");
    let pod_name = pod.metadata.name.as_deref().unwrap_or("");
    spec.volumes.iter().flatten().any(|v| {
        if let Some(pvc) = &v.persistent_volume_claim {
            return pvc.claim_name == claim_name;
        }
        v.ephemeral.is_some()
            && !pod_is_shut_down(pod)
            && format!("{pod_name}-{}", v.name) == claim_name
            && crate::controller_ref::controller_of(&claim.metadata).is_some_and(|o| Some(&o.uid) == pod.metadata.uid.as_ref())
    })
}

/// Upstream's `IsPodTerminated`.
fn pod_terminated(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        return true;
    }
    let not_running = |list: Option<&Vec<k8s_openapi::api::core::v1::ContainerStatus>>| {
        list.into_iter().flatten().all(|c| c.state.as_ref().is_none_or(|s| s.terminated.is_some() || s.waiting.is_some()))
    };
    pod.metadata.deletion_timestamp.is_some()
        && not_running(status.and_then(|s| s.init_container_statuses.as_ref()))
        && not_running(status.and_then(|s| s.container_statuses.as_ref()))
        && not_running(status.and_then(|s| s.ephemeral_container_statuses.as_ref()))
}

/// Claims to look at after a pod changed: those it names, once it can no longer hold them
/// (gone, finished, or never scheduled).
fn claims_for_pod(change: &Change<Pod>) -> Vec<ObjectRef<PersistentVolumeClaim>> {
    let pod = change.object();
    let deleted = matches!(change, Change::Deleted(_));
    let unscheduled = pod.spec.as_ref().is_none_or(|s| s.node_name.as_deref().unwrap_or("").is_empty());
    if !deleted && !pod_terminated(pod) && !unscheduled {
        return Vec::new();
    }
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    claim_names(pod).into_iter().map(|name| ObjectRef::new(&name).within(ns)).collect()
}

struct ClaimCtx {
    client: kube::Client,
    pods: Store<Pod>,
}

#[instrument(skip_all, fields(controller = PVC_NAME, key = %key(&claim.metadata)))]
async fn reconcile_claim(claim: Arc<PersistentVolumeClaim>, ctx: Arc<ClaimCtx>) -> Result<Action, Error> {
    let claim_key = key(&claim.metadata);
    let namespace = claim.metadata.namespace.clone().unwrap_or_default();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &namespace);
    let name = claim.metadata.name.clone().unwrap_or_default();
    if is_deletion_candidate(&claim.metadata, PVC_PROTECTION_FINALIZER) {
        if ctx.pods.state().iter().any(|p| pod_uses_claim(p, &claim)) {
            debug!(claim = %claim_key, "still used by a pod");
            return Ok(Action::await_change());
        }
        // The cache may be behind: ask the API server before letting the claim go.
        let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
        let live = pods.list(&ListParams::default()).await.map_err(|source| Error::ListPods { namespace: namespace.clone(), source })?;
        if live.items.iter().any(|p| pod_uses_claim(p, &claim)) {
            debug!(claim = %claim_key, "still used by a pod");
            return Ok(Action::await_change());
        }
        let mut released = (*claim).clone();
        with_finalizer(&mut released.metadata, PVC_PROTECTION_FINALIZER, false);
        match api.replace(&name, &PostParams::default(), &released).await {
            Ok(_) => info!(claim = %claim_key, "removed the protection finalizer"),
            Err(e) if informer::is_not_found(&e) => {}
            Err(source) => return Err(Error::Update { what: "PersistentVolumeClaim", key: claim_key, source }),
        }
        return Ok(Action::await_change());
    }
    if needs_finalizer(&claim.metadata, PVC_PROTECTION_FINALIZER) {
        let mut protected = (*claim).clone();
        with_finalizer(&mut protected.metadata, PVC_PROTECTION_FINALIZER, true);
        match api.replace(&name, &PostParams::default(), &protected).await {
            Ok(_) => {}
            Err(e) if informer::is_not_found(&e) => {}
            Err(source) => return Err(Error::Update { what: "PersistentVolumeClaim", key: claim_key, source }),
        }
    }
    Ok(Action::await_change())
}

pub async fn run_pvc_protection(client: kube::Client, stop: CancellationToken) {
    let (claims, claim_changes) = informer::informer(Api::<PersistentVolumeClaim>::all(client.clone()), watcher::Config::default(), "persistentvolumeclaims");
    let (pods, pod_changes) = informer::informer(Api::<Pod>::all(client.clone()), watcher::Config::default(), "pods");
    let claim_triggers = claim_changes.filter_map(|change| {
        let claim = change.object();
        let wanted = !matches!(change, Change::Deleted(_))
            && (needs_finalizer(&claim.metadata, PVC_PROTECTION_FINALIZER) || is_deletion_candidate(&claim.metadata, PVC_PROTECTION_FINALIZER));
        futures::future::ready(wanted.then(|| ObjectRef::from_obj(&**claim)))
    });
    let pod_triggers = pod_changes.flat_map(|change| futures::stream::iter(claims_for_pod(&change)));
    let triggers = futures::stream::select(claim_triggers, pod_triggers).boxed();
    info!("starting the PVC protection controller");
    informer::run(PVC_NAME, claims, triggers, Arc::new(ClaimCtx { client, pods }), reconcile_claim, informer::Retry::default(), stop).await;
}

struct VolumeCtx {
    client: kube::Client,
}

/// Upstream's `isBeingUsed` for volumes: a Bound volume is in use.
fn volume_in_use(volume: &PersistentVolume) -> bool {
    volume.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
}

#[instrument(skip_all, fields(controller = PV_NAME, key = %volume.metadata.name.as_deref().unwrap_or("")))]
async fn reconcile_volume(volume: Arc<PersistentVolume>, ctx: Arc<VolumeCtx>) -> Result<Action, Error> {
    let name = volume.metadata.name.clone().unwrap_or_default();
    let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let present = if is_deletion_candidate(&volume.metadata, PV_PROTECTION_FINALIZER) {
        if volume_in_use(&volume) {
            return Ok(Action::await_change());
        }
        false
    } else if needs_finalizer(&volume.metadata, PV_PROTECTION_FINALIZER) {
        true
    } else {
        return Ok(Action::await_change());
    };
    let mut updated = (*volume).clone();
    with_finalizer(&mut updated.metadata, PV_PROTECTION_FINALIZER, present);
    match api.replace(&name, &PostParams::default(), &updated).await {
        Ok(_) => debug!(volume = %name, present, "protection finalizer"),
        Err(e) if informer::is_not_found(&e) => {}
        Err(source) => return Err(Error::Update { what: "PersistentVolume", key: name, source }),
    }
    Ok(Action::await_change())
}

pub async fn run_pv_protection(client: kube::Client, stop: CancellationToken) {
    let (volumes, volume_changes) = informer::informer(Api::<PersistentVolume>::all(client.clone()), watcher::Config::default(), "persistentvolumes");
    let triggers = volume_changes
        .filter_map(|change| {
            let volume = change.object();
            let wanted = !matches!(change, Change::Deleted(_))
                && (needs_finalizer(&volume.metadata, PV_PROTECTION_FINALIZER) || is_deletion_candidate(&volume.metadata, PV_PROTECTION_FINALIZER));
            futures::future::ready(wanted.then(|| ObjectRef::from_obj(&**volume)))
        })
        .boxed();
    info!("starting the PV protection controller");
    informer::run(PV_NAME, volumes, triggers, Arc::new(VolumeCtx { client }), reconcile_volume, informer::Retry::default(), stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn pod(node: Option<&str>, volumes: Value, phase: &str) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "ns", "uid": "pod-uid"},
            "spec": {"nodeName": node, "containers": [], "volumes": volumes}, "status": {"phase": phase}}))
        .expect("pod")
    }

    fn claim(name: &str, owner: Option<&str>) -> PersistentVolumeClaim {
        let owners = owner.map(|uid| json!([{"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": uid, "controller": true}]));
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "ns", "ownerReferences": owners}, "spec": {}})).expect("claim")
    }

    #[test]
    fn pods_using_claims() {
        let by_name = json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]);
        let ephemeral = json!([{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}]);
        let cases = [
            ("scheduled pod naming it", pod(Some("n1"), by_name.clone(), "Running"), claim("data", None), true),
            ("finished pods still count until gone", pod(Some("n1"), by_name.clone(), "Succeeded"), claim("data", None), true),
            ("unscheduled pod", pod(None, by_name.clone(), "Pending"), claim("data", None), false),
            ("other claim", pod(Some("n1"), by_name, "Running"), claim("other", None), false),
            ("ephemeral claim of the pod", pod(Some("n1"), ephemeral.clone(), "Running"), claim("web-scratch", Some("pod-uid")), true),
            ("ephemeral claim of another pod", pod(Some("n1"), ephemeral, "Running"), claim("web-scratch", Some("x")), false),
        ];
        for (what, p, c, want) in cases {
            assert_eq!(pod_uses_claim(&p, &c), want, "{what}");
        }
    }

    #[test]
    fn pod_changes_wake_claims() {
        let vols = json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}, {"name": "s", "ephemeral": {}}]);
        let running = Arc::new(pod(Some("n1"), vols.clone(), "Running"));
        assert!(claims_for_pod(&Change::Updated { old: running.clone(), new: running.clone() }).is_empty());
        let names = |c: Change<Pod>| claims_for_pod(&c).into_iter().map(|r| r.name).collect::<Vec<_>>();
        assert_eq!(names(Change::Deleted(running)), vec!["data", "web-s"]);
        assert_eq!(names(Change::Added(Arc::new(pod(Some("n1"), vols.clone(), "Failed")))), vec!["data", "web-s"]);
        assert_eq!(names(Change::Added(Arc::new(pod(None, vols, "Pending")))), vec!["data", "web-s"]);
    }

    #[test]
    fn finalizer_edits() {
        let mut meta = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta { finalizers: Some(vec!["a".into()]), ..Default::default() };
        with_finalizer(&mut meta, PV_PROTECTION_FINALIZER, true);
        with_finalizer(&mut meta, PV_PROTECTION_FINALIZER, true);
        assert_eq!(meta.finalizers.clone().unwrap_or_default(), vec!["a".to_string(), PV_PROTECTION_FINALIZER.into()]);
        with_finalizer(&mut meta, PV_PROTECTION_FINALIZER, false);
        assert_eq!(meta.finalizers.unwrap_or_default(), vec!["a".to_string()]);
    }
}
