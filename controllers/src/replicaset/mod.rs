//! The ReplicaSet controller: keeps `spec.replicas` pods matching each ReplicaSet's
//! selector, adopting matching orphans and releasing owned pods that stopped matching
//! (controllerRefs with `controller` and `blockOwnerDeletion`), creating in slow-start
//! batches and deleting the pods [`ranking`] picks, with expectations guarding against a
//! lagging cache; and reports replicas, fullyLabeledReplicas, readyReplicas,
//! availableReplicas (after `minReadySeconds`) and observedGeneration.
//!
//! The same sync serves ReplicationControllers (`crate::replication`): it is generic over
//! [`PodSet`], which says what differs between the two kinds.

pub mod pod_set;
pub mod ranking;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::join_all;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use ironkube_machinery::selectors::label::Selector;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, instrument, warn};

use crate::controller_ref::{self, Claim};
use crate::expectations::{self, Expectations};
use crate::informer::{self, Change};
use crate::recorder::Recorder;
pub use pod_set::PodSet;

/// The controller's name in `--controllers`.
pub const NAME: &str = <ReplicaSet as PodSet>::CONTROLLER;
/// The most pods one sync creates or deletes (upstream's `BurstReplicas`).
pub const BURST_REPLICAS: usize = 500;
/// The first slow-start batch (upstream's `SlowStartInitialBatchSize`).
pub const SLOW_START_INITIAL_BATCH: usize = 1;

/// What went wrong syncing one ReplicaSet (or ReplicationController).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("the pod cache stopped: {0}")]
    Cache(String),
    #[error("can't adopt Pod {namespace}/{name}: {why}")]
    Adopt { namespace: String, name: String, why: String },
    #[error("{0}")]
    Several(String),
}

impl Error {
    /// The message a ReplicaFailure condition carries (upstream's `err.Error()`).
    pub fn message(&self) -> String {
        match self {
            Error::Api(e) => informer::message(e),
            other => other.to_string(),
        }
    }
}

impl informer::Conflict for Error {
    fn is_conflict(&self) -> bool {
        matches!(self, Error::Api(e) if informer::is_conflict(e))
    }
}

struct Ctx<K: PodSet> {
    client: kube::Client,
    owners: Store<K>,
    pods: Store<Pod>,
    expectations: Arc<Expectations>,
    recorder: Recorder,
}

/// `namespace/name`.
pub fn key(meta: &ObjectMeta) -> String {
    format!("{}/{}", meta.namespace.as_deref().unwrap_or(""), meta.name.as_deref().unwrap_or(""))
}

/// Upstream's `IsPodActive`: not finished and not being deleted.
pub fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    phase != Some("Succeeded") && phase != Some("Failed") && pod.metadata.deletion_timestamp.is_none()
}

fn ready_condition(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready")
}

/// Whether the pod's Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// When a ready pod counts as available (ready for `min_ready_seconds`); None if not ready.
pub fn available_at(pod: &Pod, min_ready_seconds: i32) -> Option<Timestamp> {
    let c = ready_condition(pod).filter(|c| c.status == "True")?;
    if min_ready_seconds <= 0 {
        return Some(Timestamp::MIN);
    }
    let since = c.last_transition_time.as_ref()?.0;
    since.checked_add(jiff::SignedDuration::from_secs(i64::from(min_ready_seconds))).ok()
}

/// Upstream's `IsPodAvailable`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    available_at(pod, min_ready_seconds).is_some_and(|at| min_ready_seconds <= 0 || at < now)
}

fn labels(meta: &ObjectMeta) -> BTreeMap<String, String> {
    meta.labels.clone().unwrap_or_default()
}

/// The owner a controllerRef names, if it is in the store with that UID.
fn resolve<K: PodSet>(store: &Store<K>, meta: &ObjectMeta) -> Option<Arc<K>> {
    controller_ref::resolve(store, &K::kind(&()), meta)
}

/// The owners whose selector matches an orphan pod.
fn matching<K: PodSet>(store: &Store<K>, pod: &Pod) -> Vec<ObjectRef<K>> {
    let ns = pod.metadata.namespace.as_deref();
    let pod_labels = labels(&pod.metadata);
    store
        .state()
        .iter()
        .filter(|rs| rs.meta().namespace.as_deref() == ns)
        .filter(|rs| rs.selector().is_some_and(|s| !s.is_empty() && s.matches(&pod_labels)))
        .map(|rs| ObjectRef::from_obj(&**rs))
        .collect()
}

/// Records a pod deletion against its owner's expectations; returns the owner to sync.
fn pod_gone<K: PodSet>(store: &Store<K>, exp: &Expectations, pod: &Pod) -> Option<ObjectRef<K>> {
    let rs = resolve(store, &pod.metadata)?;
    exp.deletion_observed(&key(rs.meta()), &key(&pod.metadata));
    Some(ObjectRef::from_obj(&*rs))
}

/// Upstream's pod event handlers: which owners a pod change concerns, lowering
/// expectations on the way.
fn pod_triggers<K: PodSet>(change: Change<Pod>, store: &Store<K>, exp: &Expectations) -> Vec<ObjectRef<K>> {
    match change {
        Change::Added(pod) => {
            if pod.metadata.deletion_timestamp.is_some() {
                return pod_gone(store, exp, &pod).into_iter().collect();
            }
            if controller_ref::controller_of(&pod.metadata).is_some() {
                return match resolve(store, &pod.metadata) {
                    Some(rs) => {
                        exp.creation_observed(&key(rs.meta()));
                        vec![ObjectRef::from_obj(&*rs)]
                    }
                    None => Vec::new(),
                };
            }
            matching(store, &pod)
        }
        Change::Updated { old, new } => {
            if old.metadata.resource_version == new.metadata.resource_version {
                return Vec::new();
            }
            let labels_changed = old.metadata.labels != new.metadata.labels;
            let mut out = Vec::new();
            if new.metadata.deletion_timestamp.is_some() {
                out.extend(pod_gone(store, exp, &new));
                if labels_changed {
                    out.extend(pod_gone(store, exp, &old));
                }
                return out;
            }
            let (old_ref, new_ref) = (controller_ref::controller_of(&old.metadata), controller_ref::controller_of(&new.metadata));
            let ref_changed = old_ref != new_ref;
            if ref_changed && old_ref.is_some() {
                out.extend(resolve(store, &old.metadata).map(|rs| ObjectRef::from_obj(&*rs)));
            }
            if new_ref.is_some() {
                out.extend(resolve(store, &new.metadata).map(|rs| ObjectRef::from_obj(&*rs)));
                return out;
            }
            if labels_changed || ref_changed {
                out.extend(matching(store, &new));
            }
            out
        }
        Change::Deleted(pod) => pod_gone(store, exp, &pod).into_iter().collect(),
    }
}

/// A controllerRef to `owner`, naming its kind.
fn owner_ref<K: PodSet>(owner: &K) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
    controller_ref::new_controller_ref(&K::api_version(&()), &K::kind(&()), owner.meta())
}

/// Upstream's `GetPodFromTemplate`: the pod a ReplicaSet creates.
fn pod_from_template<K: PodSet>(rs: &K) -> Pod {
    let template = rs.template().cloned().unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let name = rs.meta().name.clone().unwrap_or_default();
    // The dash makes names prettier, when the name leaves room for it.
    let prefix = if name.len() < 253 { format!("{name}-") } else { name };
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(prefix),
            labels: Some(meta.labels.unwrap_or_default()),
            annotations: Some(meta.annotations.unwrap_or_default()),
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner_ref(rs)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// Calls `f` `count` times in batches of 1, 2, 4... while whole batches succeed; returns
/// how many calls succeeded and the first error.
pub async fn slow_start_batch<F, Fut, E>(count: usize, initial: usize, mut f: F) -> (usize, Option<E>)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
{
    let mut remaining = count;
    let mut successes = 0;
    let mut batch = remaining.min(initial);
    while batch > 0 {
        let results = join_all((0..batch).map(|_| f())).await;
        let mut first_error = None;
        for result in results {
            match result {
                Ok(()) => successes += 1,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if first_error.is_some() {
            return (successes, first_error);
        }
        remaining -= batch;
        batch = (2 * batch).min(remaining);
    }
    (successes, None)
}

fn is_namespace_terminating(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(e) if e.code == 403 && e.message.contains("because it is being terminated"))
}

/// Adopts and releases; returns the active pods this owner owns.
async fn claim_pods<K: PodSet>(ctx: &Ctx<K>, rs: &K, selector: &Selector, candidates: Vec<Arc<Pod>>) -> Result<Vec<Arc<Pod>>, Error> {
    let meta = rs.meta();
    let ns = meta.namespace.clone().unwrap_or_default();
    let rs_name = meta.name.clone().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let owner = owner_ref(rs);
    let rs_uid = owner.uid.clone();
    let mut can_adopt: Option<Result<(), String>> = None;
    let mut claimed = Vec::new();
    let mut errors = Vec::new();
    for pod in candidates {
        let matches = selector.matches(&labels(&pod.metadata));
        let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        match controller_ref::claim(meta, &pod.metadata, matches) {
            Claim::Owned => claimed.push(pod),
            Claim::Ignore => {}
            Claim::Adopt => {
                // Recheck with a live read that the owner is not being deleted.
                if can_adopt.is_none() {
                    let owners: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
                    let kind = K::kind(&());
                    can_adopt = Some(match owners.get_opt(&rs_name).await? {
                        Some(fresh) if fresh.meta().uid.as_deref() != Some(rs_uid.as_str()) => Err(format!("original {kind} {ns}/{rs_name} is gone")),
                        Some(fresh) if fresh.meta().deletion_timestamp.is_some() => Err(format!("{ns}/{rs_name} has just been deleted")),
                        Some(_) => Ok(()),
                        None => Err(format!("the {kind} is gone")),
                    });
                }
                if let Some(Err(why)) = &can_adopt {
                    errors.push(Error::Adopt { namespace: ns.clone(), name, why: why.clone() }.to_string());
                    continue;
                }
                match pods.patch(&name, &PatchParams::default(), &Patch::Strategic(controller_ref::adopt_patch(&owner, &pod_uid))).await {
                    Ok(_) => claimed.push(pod),
                    Err(e) if informer::is_not_found(&e) => {}
                    Err(e) => errors.push(e.to_string()),
                }
            }
            Claim::Release => match pods.patch(&name, &PatchParams::default(), &Patch::Strategic(controller_ref::release_patch(&rs_uid, &pod_uid))).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 422 => {}
                Err(e) => errors.push(e.to_string()),
            },
        }
    }
    if errors.is_empty() { Ok(claimed) } else { Err(Error::Several(errors.join("; "))) }
}

/// Pods of every object of the kind with the same controller (for spreading deletions).
fn related_pods<K: PodSet>(ctx: &Ctx<K>, rs: &K, all: &[Arc<Pod>]) -> Vec<Arc<Pod>> {
    let ns = rs.meta().namespace.as_deref();
    let siblings: Vec<Arc<K>> = match controller_ref::controller_of(rs.meta()) {
        Some(owner) => ctx
            .owners
            .state()
            .into_iter()
            .filter(|other| other.meta().namespace.as_deref() == ns && controller_ref::is_controlled_by(other.meta(), &owner.uid))
            .collect(),
        None => vec![Arc::new(rs.clone())],
    };
    let mut seen = HashSet::new();
    let mut related = Vec::new();
    for sibling in siblings {
        let Some(selector) = sibling.selector() else { continue };
        for pod in all {
            if selector.matches(&labels(&pod.metadata)) && seen.insert(pod.metadata.uid.clone()) {
                related.push(pod.clone());
            }
        }
    }
    related
}

/// Creates or deletes pods so that `active` moves towards `spec.replicas`.
async fn manage_replicas<K: PodSet>(ctx: &Ctx<K>, rs: &K, active: &[Arc<Pod>], all: &[Arc<Pod>]) -> Result<(), Error> {
    let rs_key = key(rs.meta());
    let ns = rs.meta().namespace.clone().unwrap_or_default();
    let want = usize::try_from(rs.replicas()).unwrap_or(0);
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    if active.len() < want {
        let count = (want - active.len()).min(BURST_REPLICAS);
        ctx.expectations.expect_creations(&rs_key, count);
        debug!(owner = %rs_key, need = want, creating = count, "too few replicas");
        let template = pod_from_template(rs);
        let (created, err) = slow_start_batch(count, SLOW_START_INITIAL_BATCH, || {
            let (pods, template) = (pods.clone(), template.clone());
            async move {
                match pods.create(&PostParams::default(), &template).await {
                    Ok(pod) => {
                        ctx.recorder.normal(rs, "SuccessfulCreate", format!("Created pod: {}", pod.metadata.name.as_deref().unwrap_or("")));
                        Ok(())
                    }
                    Err(e) if is_namespace_terminating(&e) => Ok(()),
                    Err(e) => {
                        ctx.recorder.warning(rs, "FailedCreate", format!("Error creating: {}", informer::message(&e)));
                        Err(e)
                    }
                }
            }
        })
        .await;
        for _ in created..count {
            // Skipped or failed creations will never be observed.
            ctx.expectations.creation_observed(&rs_key);
        }
        return err.map_or(Ok(()), |e| Err(Error::Api(e)));
    }
    if active.len() > want {
        let count = (active.len() - want).min(BURST_REPLICAS);
        debug!(owner = %rs_key, need = want, deleting = count, "too many replicas");
        let related = related_pods(ctx, rs, all);
        let doomed = ranking::pods_to_delete(active, &related, count, Timestamp::now());
        ctx.expectations.expect_deletions(&rs_key, doomed.iter().map(|p| key(&p.metadata)));
        let results = join_all(doomed.iter().map(|pod| {
            let pods = pods.clone();
            let rs_key = rs_key.clone();
            async move {
                let name = pod.metadata.name.clone().unwrap_or_default();
                match pods.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => {
                        ctx.recorder.normal(rs, "SuccessfulDelete", format!("Deleted pod: {name}"));
                        Ok(())
                    }
                    Err(e) => {
                        ctx.expectations.deletion_observed(&rs_key, &key(&pod.metadata));
                        if informer::is_not_found(&e) {
                            Ok(())
                        } else {
                            ctx.recorder.warning(rs, "FailedDelete", format!("Error deleting: {}", informer::message(&e)));
                            Err(e)
                        }
                    }
                }
            }
        }))
        .await;
        if let Some(e) = results.into_iter().find_map(Result::err) {
            return Err(Error::Api(e));
        }
    }
    Ok(())
}

fn now_time() -> Time {
    Time(Timestamp::now())
}

/// Upstream's `calculateStatus`, with when the next pod becomes available (for a resync).
fn calculate_status<K: PodSet>(rs: &K, active: &[Arc<Pod>], manage_error: Option<&Error>, now: Timestamp) -> (ReplicaSetStatus, Option<Timestamp>) {
    let mut status = rs.status();
    let template_labels = rs.template().and_then(|t| t.metadata.as_ref()).and_then(|m| m.labels.clone()).unwrap_or_default();
    let min_ready = rs.min_ready_seconds();
    let (mut fully_labeled, mut ready, mut available) = (0, 0, 0);
    let mut next_available: Option<Timestamp> = None;
    for pod in active {
        let pod_labels = labels(&pod.metadata);
        if template_labels.iter().all(|(k, v)| pod_labels.get(k) == Some(v)) {
            fully_labeled += 1;
        }
        if is_ready(pod) {
            ready += 1;
            if is_available(pod, min_ready, now) {
                available += 1;
            } else if let Some(at) = available_at(pod, min_ready) {
                next_available = Some(next_available.map_or(at, |n| n.min(at)));
            }
        }
    }
    let failure = status.conditions.iter().flatten().any(|c| c.type_ == "ReplicaFailure");
    match manage_error {
        Some(err) if !failure => {
            let want = i64::from(rs.replicas());
            let diff = active.len() as i64 - want;
            let reason = if diff < 0 { "FailedCreate" } else if diff > 0 { "FailedDelete" } else { "" };
            status.conditions.get_or_insert_with(Vec::new).push(ReplicaSetCondition {
                type_: "ReplicaFailure".into(),
                status: "True".into(),
                last_transition_time: Some(now_time()),
                reason: Some(reason.into()),
                message: Some(err.message()),
            });
        }
        None if failure => {
            if let Some(cs) = status.conditions.as_mut() {
                cs.retain(|c| c.type_ != "ReplicaFailure");
            }
        }
        _ => {}
    }
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    // Like upstream's omitempty fields, zeros are left out.
    let nonzero = |n: usize| (n > 0).then(|| count(n));
    status.replicas = count(active.len());
    status.fully_labeled_replicas = nonzero(fully_labeled);
    status.ready_replicas = nonzero(ready);
    status.available_replicas = nonzero(available);
    (status, next_available)
}

/// Writes `status` unless nothing changed (one retry with a fresh read on conflict).
async fn update_status<K: PodSet>(ctx: &Ctx<K>, rs: &K, mut status: ReplicaSetStatus) -> Result<(), Error> {
    let current = rs.status();
    let generation = rs.meta().generation.unwrap_or(0);
    let same = current.replicas == status.replicas
        && current.fully_labeled_replicas.unwrap_or(0) == status.fully_labeled_replicas.unwrap_or(0)
        && current.ready_replicas.unwrap_or(0) == status.ready_replicas.unwrap_or(0)
        && current.available_replicas.unwrap_or(0) == status.available_replicas.unwrap_or(0)
        && current.observed_generation.unwrap_or(0) == generation
        && current.conditions.clone().unwrap_or_default() == status.conditions.clone().unwrap_or_default();
    if same {
        return Ok(());
    }
    status.observed_generation = Some(generation);
    let api: Api<K> = Api::namespaced(ctx.client.clone(), rs.meta().namespace.as_deref().unwrap_or(""));
    let name = rs.meta().name.clone().unwrap_or_default();
    let mut updated = rs.clone();
    updated.set_status(status.clone());
    match api.replace_status(&name, &PostParams::default(), &updated).await {
        Ok(_) => Ok(()),
        Err(e) if informer::is_conflict(&e) => {
            let Some(mut fresh) = api.get_opt(&name).await? else { return Ok(()) };
            if fresh.meta().uid != rs.meta().uid {
                return Ok(());
            }
            status.observed_generation = Some(fresh.meta().generation.unwrap_or(0).min(generation));
            fresh.set_status(status);
            api.replace_status(&name, &PostParams::default(), &fresh).await?;
            Ok(())
        }
        Err(e) if informer::is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[instrument(skip_all, fields(controller = K::CONTROLLER, key = %key(rs.meta())))]
async fn reconcile<K: PodSet>(rs: Arc<K>, ctx: Arc<Ctx<K>>) -> Result<Action, Error> {
    ctx.pods.wait_until_ready().await.map_err(|e| Error::Cache(e.to_string()))?;
    let rs_key = key(rs.meta());
    let needs_sync = ctx.expectations.satisfied(&rs_key);
    let Some(selector) = rs.selector() else {
        warn!(owner = %rs_key, "invalid selector; ignoring");
        return Ok(Action::await_change());
    };
    let ns = rs.meta().namespace.as_deref();
    let all: Vec<Arc<Pod>> = ctx.pods.state().into_iter().filter(|p| p.metadata.namespace.as_deref() == ns).collect();
    let candidates: Vec<Arc<Pod>> = all.iter().filter(|p| is_active(p)).cloned().collect();
    let active = claim_pods(&ctx, &rs, &selector, candidates).await?;
    let manage_error = if needs_sync && rs.meta().deletion_timestamp.is_none() {
        manage_replicas(&ctx, &rs, &active, &all).await.err()
    } else {
        None
    };
    let now = Timestamp::now();
    let (status, next_available) = calculate_status(&*rs, &active, manage_error.as_ref(), now);
    update_status(&ctx, &rs, status).await?;
    if let Some(err) = manage_error {
        return Err(err);
    }
    // Look again when the next ready pod has been ready for minReadySeconds.
    if let Some(at) = next_available {
        let wait = Duration::try_from(at.duration_since(now)).unwrap_or_default() + Duration::from_millis(100);
        return Ok(Action::requeue(wait));
    }
    Ok(Action::await_change())
}

/// Runs the ReplicaSet controller.
pub async fn run(client: kube::Client, stop: CancellationToken) {
    run_for::<ReplicaSet>(client, stop).await;
}

/// Runs the controller of the kind `K` until `stop`.
pub async fn run_for<K: PodSet>(client: kube::Client, stop: CancellationToken) {
    let (owners, owner_changes) = informer::informer(Api::<K>::all(client.clone()), watcher::Config::default(), K::RESOURCE);
    let (pods, pod_changes) = informer::informer(Api::<Pod>::all(client.clone()), watcher::Config::default(), "pods");
    let expectations = Arc::new(Expectations::default());
    let owner_triggers = expectations::owner_triggers(owner_changes, expectations.clone());
    let pod_triggers = {
        let (exp, store) = (expectations.clone(), owners.clone());
        pod_changes.flat_map(move |change| futures::stream::iter(pod_triggers(change, &store, &exp)))
    };
    let triggers = futures::stream::select(owner_triggers, pod_triggers).boxed();
    let ctx = Arc::new(Ctx {
        recorder: Recorder::new(client.clone(), K::EVENT_SOURCE),
        client,
        owners: owners.clone(),
        pods,
        expectations,
    });
    info!(kind = %K::kind(&()), "starting the controller");
    informer::run(K::CONTROLLER, owners, triggers, ctx, reconcile::<K>, informer::Retry::default(), stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ReplicationController;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn slow_start_doubles_batches_and_stops_at_the_first_failing_batch() {
        let calls = AtomicUsize::new(0);
        let (ok, err) = slow_start_batch(10, 1, || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<(), ()>(()) }
        })
        .await;
        assert_eq!((ok, err), (10, None));
        assert_eq!(calls.load(Ordering::SeqCst), 10);

        // Batches 1, 2, 4: the 5th call fails, so the batch of 4 completes and nothing more.
        let calls = AtomicUsize::new(0);
        let (ok, err) = slow_start_batch(20, 1, || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move { if n == 4 { Err("quota") } else { Ok(()) } }
        })
        .await;
        assert_eq!((ok, err), (6, Some("quota")));
        assert_eq!(calls.load(Ordering::SeqCst), 7);
    }

    fn rs(spec: serde_json::Value) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web-abc", "namespace": "ns", "uid": "rs-uid", "generation": 2},
            "spec": spec,
        }))
        .expect("rs")
    }

    fn pod(name: &str, labels: serde_json::Value, ready_since: Option<&str>) -> Arc<Pod> {
        let mut v = json!({"metadata": {"name": name, "namespace": "ns", "uid": name, "labels": labels}, "status": {"phase": "Running"}});
        if let Some(since) = ready_since {
            v["status"]["conditions"] = json!([{"type": "Ready", "status": "True", "lastTransitionTime": since}]);
        }
        Arc::new(serde_json::from_value(v).expect("pod"))
    }

    #[test]
    fn status_counts_labels_readiness_and_availability() {
        let rs = rs(json!({
            "replicas": 3, "minReadySeconds": 10,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}}},
        }));
        let now: Timestamp = "2025-01-01T00:01:00Z".parse().expect("now");
        let active = vec![
            pod("a", json!({"app": "web", "tier": "fe"}), Some("2025-01-01T00:00:00Z")),
            pod("b", json!({"app": "web"}), Some("2025-01-01T00:00:55Z")),
            pod("c", json!({"app": "web", "tier": "fe"}), None),
        ];
        let (status, next) = calculate_status(&rs, &active, None, now);
        assert_eq!(status.replicas, 3);
        assert_eq!(status.fully_labeled_replicas, Some(2));
        assert_eq!(status.ready_replicas, Some(2));
        assert_eq!(status.available_replicas, Some(1));
        assert_eq!(next, "2025-01-01T00:01:05Z".parse().ok());

        let err = Error::Several("boom".into());
        let (failed, _) = calculate_status(&rs, &active[..1], Some(&err), now);
        let cond = failed.conditions.as_ref().and_then(|c| c.first()).expect("ReplicaFailure");
        assert_eq!((cond.type_.as_str(), cond.reason.as_deref()), ("ReplicaFailure", Some("FailedCreate")));
        let mut recovered = rs.clone();
        recovered.status = Some(failed);
        let (ok, _) = calculate_status(&recovered, &active, None, now);
        assert!(ok.conditions.unwrap_or_default().is_empty());
    }

    #[test]
    fn pods_come_from_the_template_with_a_controller_ref() {
        let rs = rs(json!({
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
        }));
        let pod = pod_from_template(&rs);
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("web-abc-"));
        let owner = &pod.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str(), owner.controller, owner.block_owner_deletion), ("ReplicaSet", "rs-uid", Some(true), Some(true)));
        assert_eq!(pod.metadata.annotations.as_ref().and_then(|a| a.get("a")).map(String::as_str), Some("b"));
        assert_eq!(pod.spec.as_ref().map(|s| s.containers.len()), Some(1));
    }

    fn rc(spec: serde_json::Value) -> ReplicationController {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "rc-uid", "generation": 2},
            "spec": spec,
        }))
        .expect("rc")
    }

    #[test]
    fn both_kinds_make_pods_naming_their_kind() {
        let template = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
        let from_rs = pod_from_template(&rs(json!({"selector": {"matchLabels": {"app": "web"}}, "template": template})));
        let from_rc = pod_from_template(&rc(json!({"selector": {"app": "web"}, "template": template})));
        // (pod, generateName, apiVersion, kind, uid)
        let cases = [(&from_rs, "web-abc-", "apps/v1", "ReplicaSet", "rs-uid"), (&from_rc, "web-", "v1", "ReplicationController", "rc-uid")];
        for (pod, prefix, api_version, kind, uid) in cases {
            let owner = &pod.metadata.owner_references.as_ref().expect("owner")[0];
            assert_eq!(pod.metadata.generate_name.as_deref(), Some(prefix));
            assert_eq!((owner.api_version.as_str(), owner.kind.as_str(), owner.uid.as_str()), (api_version, kind, uid));
            assert_eq!((owner.controller, owner.block_owner_deletion), (Some(true), Some(true)));
            assert_eq!(pod.metadata.labels.as_ref().and_then(|l| l.get("app")).map(String::as_str), Some("web"));
        }
    }

    #[test]
    fn replication_controller_status_and_failure_condition() {
        let rc = rc(json!({
            "replicas": 3,
            "selector": {"app": "web"},
            "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}}},
        }));
        let now: Timestamp = "2025-01-01T00:01:00Z".parse().expect("now");
        let active = vec![pod("a", json!({"app": "web", "tier": "fe"}), Some("2025-01-01T00:00:00Z")), pod("b", json!({"app": "web"}), None)];
        let message = "pods \"web-x\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2";
        let err = Error::Api(kube::Error::Api(kube::core::Status::failure(message, "Forbidden").with_code(403).boxed()));
        let (status, _) = calculate_status(&rc, &active, Some(&err), now);
        assert_eq!((status.replicas, status.fully_labeled_replicas, status.ready_replicas, status.available_replicas), (2, Some(1), Some(1), Some(1)));
        let cond = status.conditions.as_ref().and_then(|c| c.first()).expect("ReplicaFailure");
        assert_eq!((cond.type_.as_str(), cond.status.as_str(), cond.reason.as_deref()), ("ReplicaFailure", "True", Some("FailedCreate")));
        assert_eq!(cond.message.as_deref(), Some(message));

        // Written back in the RC's own shape, and cleared once a sync succeeds.
        let mut failed = rc.clone();
        failed.set_status(status);
        let rc_cond = failed.status.as_ref().and_then(|s| s.conditions.as_ref()).and_then(|c| c.first()).expect("RC condition");
        assert_eq!(rc_cond.reason.as_deref(), Some("FailedCreate"));
        let (ok, _) = calculate_status(&failed, &active, None, now);
        assert!(ok.conditions.unwrap_or_default().is_empty());
    }

    #[test]
    fn orphans_wake_the_owners_whose_selector_matches() {
        let (reader, mut writer) = kube::runtime::reflector::store::<ReplicationController>();
        let mut other = rc(json!({"selector": {"app": "db"}}));
        other.metadata.name = Some("db".into());
        other.metadata.uid = Some("db-uid".into());
        for obj in [rc(json!({"selector": {"app": "web"}})), other.clone()] {
            writer.apply_watcher_event(&watcher::Event::Apply(obj));
        }
        let exp = Expectations::default();
        let names = |refs: Vec<ObjectRef<ReplicationController>>| refs.into_iter().map(|r| r.name).collect::<Vec<_>>();
        let orphan = pod("o", json!({"app": "web"}), None);
        assert_eq!(names(pod_triggers(Change::Added(orphan.clone()), &reader, &exp)), vec!["web".to_string()]);
        // A pod controlled by an RC wakes that RC only (and counts as a creation seen).
        let mut owned = (*orphan).clone();
        owned.metadata.owner_references = Some(vec![controller_ref::new_controller_ref("v1", "ReplicationController", &other.metadata)]);
        exp.expect_creations("ns/db", 1);
        assert_eq!(names(pod_triggers(Change::Added(Arc::new(owned.clone())), &reader, &exp)), vec!["db".to_string()]);
        assert!(exp.satisfied("ns/db"));
        // A ReplicaSet's controllerRef with the same name is not the RC's.
        owned.metadata.owner_references = Some(vec![controller_ref::new_controller_ref("apps/v1", "ReplicaSet", &other.metadata)]);
        assert!(pod_triggers(Change::Added(Arc::new(owned)), &reader, &exp).is_empty());
    }
}
