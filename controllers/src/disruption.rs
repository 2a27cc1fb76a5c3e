//! The disruption controller: the status of every PodDisruptionBudget. For each budget,
//! the pods its selector matches in its namespace; the expected count (the pods
//! themselves for an integer `minAvailable`, else the summed `spec.replicas` of their
//! controllers: Deployment through its ReplicaSet, ReplicaSet, ReplicationController,
//! StatefulSet, or any workload's `scale` subresource); `currentHealthy` (ready, not being
//! deleted, not just approved for eviction), `desiredHealthy`, `disruptionsAllowed`,
//! `disruptedPods` (entries expire after two minutes), `observedGeneration` and the
//! `DisruptionAllowed` condition, written through the status subresource. When a sync
//! fails, the budget is closed (upstream's fail-safe: no disruption allowed, `SyncFailed`).
//!
//! It also turns a `DisruptionTarget` condition back to False when the pod it was set on
//! was still not being deleted two minutes later (an eviction or preemption that did not
//! happen).
//!
//! Left out: the `MultiplePodDisruptionBudgets` warning event on pods.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ironkube_machinery::disruption_budget as budget;
use ironkube_machinery::selectors::label::Selector;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodCondition, ReplicationController};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DynamicObject, GroupVersionKind, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, instrument};

use crate::controller_ref;
use crate::informer::{self, Change};
use crate::recorder::Recorder;
use crate::replicaset::{is_ready, key};

pub const NAME: &str = "disruption";
/// Upstream's disruption controller records events as the controller manager.
const EVENT_SOURCE: &str = "controllermanager";
/// How long an eviction approved in `disruptedPods` keeps its pod out of the healthy
/// count while the pod is not seen being deleted (upstream's `DeletionTimeout`).
pub const DELETION_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a `DisruptionTarget` condition may stay on a pod that is not being deleted.
pub const STALE_POD_DISRUPTION_TIMEOUT: Duration = Duration::from_secs(120);
/// The pod condition set on pods about to be disrupted.
pub const DISRUPTION_TARGET: &str = "DisruptionTarget";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("the caches stopped: {0}")]
    Cache(String),
    /// The budget's selector does not parse.
    #[error("{0}")]
    Selector(String),
    #[error("found no controllers for pod {0:?}")]
    NoControllers(String),
    /// Reading a workload's `scale` subresource failed.
    #[error("{0}")]
    Scale(String),
    /// `minAvailable`/`maxUnavailable` is not an integer or a percentage.
    #[error("{0}")]
    IntOrPercent(String),
}

impl informer::Conflict for Error {
    fn is_conflict(&self) -> bool {
        matches!(self, Error::Api(e) if informer::is_conflict(e))
    }
}

struct Ctx {
    client: kube::Client,
    pods: Store<Pod>,
    replica_sets: Store<ReplicaSet>,
    deployments: Store<Deployment>,
    stateful_sets: Store<StatefulSet>,
    replication_controllers: Store<ReplicationController>,
    recorder: Recorder,
}

/// Where the replica counts of pods' controllers come from.
trait ScaleSource {
    /// The controller `owner` names (its UID and `spec.replicas`), None when it does not
    /// exist (or is another object by now).
    fn scale_of(&self, owner: &OwnerReference, namespace: &str) -> impl Future<Output = Result<Option<(String, i32)>, Error>> + Send;
}

fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(g, _)| g)
}

/// Upstream's `verifyGroupKind`.
fn is_kind(owner: &OwnerReference, kind: &str, groups: &[&str]) -> bool {
    owner.kind == kind && groups.contains(&group_of(&owner.api_version))
}

fn get<K>(store: &Store<K>, namespace: &str, name: &str, uid: &str) -> Option<Arc<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    store.get(&ObjectRef::new(name).within(namespace)).filter(|o| o.meta().uid.as_deref() == Some(uid))
}

impl Ctx {
    /// Upstream's finders from the caches, in its order: ReplicationController, the
    /// Deployment of a ReplicaSet, a ReplicaSet no Deployment controls, StatefulSet.
    fn scale_from_caches(&self, owner: &OwnerReference, ns: &str) -> Option<(String, i32)> {
        if is_kind(owner, "ReplicationController", &[""])
            && let Some(rc) = get(&self.replication_controllers, ns, &owner.name, &owner.uid)
        {
            return Some((owner.uid.clone(), rc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)));
        }
        if is_kind(owner, "ReplicaSet", &["apps", "extensions"])
            && let Some(rs) = get(&self.replica_sets, ns, &owner.name, &owner.uid)
        {
            match controller_ref::controller_of(&rs.metadata) {
                Some(d) if is_kind(d, "Deployment", &["apps", "extensions"]) => {
                    if let Some(deployment) = get(&self.deployments, ns, &d.name, &d.uid) {
                        return Some((d.uid.clone(), deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)));
                    }
                }
                Some(d) if d.kind == "Deployment" => {}
                _ => return Some((owner.uid.clone(), rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1))),
            }
        }
        if is_kind(owner, "StatefulSet", &["apps"])
            && let Some(ss) = get(&self.stateful_sets, ns, &owner.name, &owner.uid)
        {
            return Some((owner.uid.clone(), ss.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)));
        }
        None
    }

    /// Upstream's `getScaleController`: the owner's `scale` subresource, found through
    /// discovery.
    async fn scale_from_subresource(&self, owner: &OwnerReference, ns: &str) -> Result<Option<(String, i32)>, Error> {
        let (group, version) = match owner.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", owner.api_version.as_str()),
        };
        let gvk = GroupVersionKind::gvk(group, version, &owner.kind);
        let (resource, caps) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .map_err(|_| Error::Scale(format!("no matches for kind {:?} in version {:?}", owner.kind, owner.api_version)))?;
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &resource);
        match api.get_subresource("scale", &owner.name).await {
            Ok(scale) => {
                if scale.metadata.uid.as_deref() != Some(owner.uid.as_str()) {
                    return Ok(None);
                }
                let replicas = scale.data["spec"]["replicas"].as_i64().and_then(|r| i32::try_from(r).ok()).unwrap_or(0);
                Ok(Some((owner.uid.clone(), replicas)))
            }
            Err(e) if informer::is_not_found(&e) => {
                let has_scale = caps.subresources.iter().any(|(sub, _)| sub.plural == "scale" || sub.plural.ends_with("/scale"));
                if has_scale {
                    Ok(None)
                } else {
                    let gr = if group.is_empty() { resource.plural.clone() } else { format!("{}.{group}", resource.plural) };
                    Err(Error::Scale(format!("{gr} does not implement the scale subresource")))
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl ScaleSource for Ctx {
    async fn scale_of(&self, owner: &OwnerReference, ns: &str) -> Result<Option<(String, i32)>, Error> {
        match self.scale_from_caches(owner, ns) {
            Some(found) => Ok(Some(found)),
            None => self.scale_from_subresource(owner, ns).await,
        }
    }
}

/// The budget's selector (none selects nothing, an empty one everything).
fn selector_of(pdb: &PodDisruptionBudget) -> Result<Selector, Error> {
    Selector::from_label_selector(pdb.spec.as_ref().and_then(|s| s.selector.as_ref())).map_err(|e| Error::Selector(e.to_string()))
}

/// Whether `pdb` covers `pod` (same namespace, selector matches).
fn covers(pdb: &PodDisruptionBudget, pod: &Pod) -> bool {
    pdb.metadata.namespace == pod.metadata.namespace
        && selector_of(pdb).is_ok_and(|s| s.matches(pod.metadata.labels.as_ref().unwrap_or(&BTreeMap::new())))
}

/// Upstream's `getExpectedScale`: the summed replicas of the pods' controllers, and the
/// names of pods without a controller.
async fn expected_scale<S: ScaleSource>(source: &S, pods: &[Arc<Pod>]) -> Result<(i32, Vec<String>), Error> {
    let mut scales: HashMap<String, i32> = HashMap::new();
    let mut unmanaged = Vec::new();
    for pod in pods {
        let Some(owner) = controller_ref::controller_of(&pod.metadata) else {
            unmanaged.push(pod.metadata.name.clone().unwrap_or_default());
            continue;
        };
        if scales.contains_key(&owner.uid) {
            continue;
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        match source.scale_of(owner, ns).await? {
            Some((uid, scale)) => {
                scales.insert(uid, scale);
            }
            None => return Err(Error::NoControllers(pod.metadata.name.clone().unwrap_or_default())),
        }
    }
    Ok((scales.values().fold(0i32, |sum, s| sum.saturating_add(*s)), unmanaged))
}

/// The budget's expected pod count and desired healthy count (upstream's
/// `getExpectedPodCount`), with the unmanaged pods found on the way.
async fn expected_pod_count<S: ScaleSource>(source: &S, pdb: &PodDisruptionBudget, pods: &[Arc<Pod>]) -> Result<(i32, i32, Vec<String>), Error> {
    let spec = pdb.spec.clone().unwrap_or_default();
    if let Some(max_unavailable) = &spec.max_unavailable {
        let (expected, unmanaged) = expected_scale(source, pods).await?;
        let max = budget::scaled_value(max_unavailable, expected, true).map_err(Error::IntOrPercent)?;
        return Ok((expected, expected.saturating_sub(max).max(0), unmanaged));
    }
    match &spec.min_available {
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => Ok((i32::try_from(pods.len()).unwrap_or(i32::MAX), *n, Vec::new())),
        Some(percent) => {
            let (expected, unmanaged) = expected_scale(source, pods).await?;
            let min = budget::scaled_value(percent, expected, true).map_err(Error::IntOrPercent)?;
            Ok((expected, min, unmanaged))
        }
        None => Ok((0, 0, Vec::new())),
    }
}

fn plus(t: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d).ok().and_then(|d| t.checked_add(d).ok()).unwrap_or(Timestamp::MAX)
}

/// What became of the budget's `disruptedPods` (upstream's `buildDisruptedPodMap`):
/// entries still waiting for their pod's deletion, when to look again, and the pods
/// whose eviction never turned into a deletion.
fn disrupted_pod_map(pdb: &PodDisruptionBudget, pods: &[Arc<Pod>], now: Timestamp) -> (BTreeMap<String, Time>, Option<Timestamp>, Vec<Arc<Pod>>) {
    let mut kept = BTreeMap::new();
    let mut recheck: Option<Timestamp> = None;
    let mut not_deleted = Vec::new();
    let Some(disrupted) = pdb.status.as_ref().and_then(|s| s.disrupted_pods.as_ref()) else {
        return (kept, recheck, not_deleted);
    };
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(at) = disrupted.get(&name) else { continue };
        let expected_deletion = plus(at.0, DELETION_TIMEOUT);
        if expected_deletion < now {
            not_deleted.push(pod.clone());
        } else {
            recheck = Some(recheck.map_or(expected_deletion, |r| r.min(expected_deletion)));
            kept.insert(name, at.clone());
        }
    }
    (kept, recheck, not_deleted)
}

/// Upstream's `countHealthyPods`: ready pods that are neither being deleted nor approved
/// for eviction in the last two minutes.
fn count_healthy(pods: &[Arc<Pod>], disrupted: &BTreeMap<String, Time>, now: Timestamp) -> i32 {
    let healthy = pods.iter().filter(|pod| {
        if pod.metadata.deletion_timestamp.is_some() {
            return false;
        }
        let name = pod.metadata.name.as_deref().unwrap_or("");
        if disrupted.get(name).is_some_and(|at| plus(at.0, DELETION_TIMEOUT) > now) {
            return false;
        }
        is_ready(pod)
    });
    i32::try_from(healthy.count()).unwrap_or(i32::MAX)
}

/// The counts a sync found.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Counts {
    current_healthy: i32,
    desired_healthy: i32,
    expected: i32,
    disrupted: BTreeMap<String, Time>,
}

/// Upstream's `updatePdbStatus`: the new status, or None when the stored one is current.
fn new_status(pdb: &PodDisruptionBudget, counts: Counts, now: Timestamp) -> Option<PodDisruptionBudgetStatus> {
    let mut allowed = counts.current_healthy - counts.desired_healthy;
    if counts.expected <= 0 || allowed <= 0 {
        allowed = 0;
    }
    let old = pdb.status.clone().unwrap_or_default();
    let generation = pdb.metadata.generation;
    let old_disrupted = old.disrupted_pods.clone().unwrap_or_default();
    if old.current_healthy == counts.current_healthy
        && old.desired_healthy == counts.desired_healthy
        && old.expected_pods == counts.expected
        && old.disruptions_allowed == allowed
        && old_disrupted == counts.disrupted
        && old.observed_generation.unwrap_or(0) == generation.unwrap_or(0)
        && budget::conditions_are_up_to_date(pdb)
    {
        return None;
    }
    let mut status = PodDisruptionBudgetStatus {
        current_healthy: counts.current_healthy,
        desired_healthy: counts.desired_healthy,
        expected_pods: counts.expected,
        disruptions_allowed: allowed,
        disrupted_pods: Some(counts.disrupted).filter(|d| !d.is_empty()),
        observed_generation: generation,
        conditions: old.conditions,
    };
    budget::update_disruption_allowed_condition(&mut status, now);
    Some(status)
}

/// Go's `%v` of a `*metav1.LabelSelector` (its generated `String()`), as upstream's
/// UnmanagedPods event prints it.
fn go_selector_string(selector: Option<&LabelSelector>) -> String {
    let Some(s) = selector else { return "nil".into() };
    let labels: String = s.match_labels.iter().flatten().map(|(k, v)| format!("{k}: {v},")).collect();
    let expressions: String = s
        .match_expressions
        .iter()
        .flatten()
        .map(|e| format!("LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},", e.key, e.operator, e.values.clone().unwrap_or_default().join(" ")))
        .collect();
    format!("&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]LabelSelectorRequirement{{{expressions}}},}}")
}

async fn write_status(ctx: &Ctx, pdb: &PodDisruptionBudget, status: PodDisruptionBudgetStatus) -> Result<(), Error> {
    let api: Api<PodDisruptionBudget> = Api::namespaced(ctx.client.clone(), pdb.metadata.namespace.as_deref().unwrap_or(""));
    let mut updated = pdb.clone();
    updated.status = Some(status);
    match api.replace_status(pdb.metadata.name.as_deref().unwrap_or(""), &PostParams::default(), &updated).await {
        Ok(_) => Ok(()),
        Err(e) if informer::is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Upstream's `trySync`: the status from the pods; the requeue when an entry of
/// `disruptedPods` expires.
async fn try_sync(ctx: &Ctx, pdb: &PodDisruptionBudget) -> Result<Action, Error> {
    let ns = pdb.metadata.namespace.clone().unwrap_or_default();
    let selector = match selector_of(pdb) {
        Ok(s) => s,
        Err(e) => {
            ctx.recorder.warning(pdb, "NoPods", format!("Failed to get pods: {e}"));
            return Err(e);
        }
    };
    let mut pods: Vec<Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()) && selector.matches(p.metadata.labels.as_ref().unwrap_or(&BTreeMap::new())))
        .collect();
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    if pods.is_empty() {
        ctx.recorder.normal(pdb, "NoPods", "No matching pods found".into());
    }
    let (expected, desired_healthy, unmanaged) = match expected_pod_count(ctx, pdb, &pods).await {
        Ok(found) => found,
        Err(e) => {
            ctx.recorder.warning(pdb, "CalculateExpectedPodCountFailed", format!("Failed to calculate the number of expected pods: {e}"));
            return Err(e);
        }
    };
    if !unmanaged.is_empty() {
        debug!(pods = ?unmanaged, "found unmanaged pods associated with this PDB");
        ctx.recorder.warning(
            pdb,
            "UnmanagedPods",
            format!(
                "Pods selected by this PodDisruptionBudget (selector: {}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value.",
                go_selector_string(pdb.spec.as_ref().and_then(|s| s.selector.as_ref()))
            ),
        );
    }
    let now = Timestamp::now();
    let (disrupted, recheck, not_deleted) = disrupted_pod_map(pdb, &pods, now);
    for pod in &not_deleted {
        info!(pod = %key(&pod.metadata), "pod was expected to be deleted but it wasn't, updating PDB");
        // Upstream names the budget's namespace twice.
        ctx.recorder.warning(&**pod, "NotDeleted", format!("Pod was expected by PDB {ns}/{ns} to be deleted but it wasn't"));
    }
    let current_healthy = count_healthy(&pods, &disrupted, now);
    let counts = Counts { current_healthy, desired_healthy, expected, disrupted };
    if let Some(status) = new_status(pdb, counts, now) {
        write_status(ctx, pdb, status).await?;
    }
    Ok(match recheck {
        Some(at) => Action::requeue(Duration::try_from(at.duration_since(now)).unwrap_or_default() + Duration::from_millis(100)),
        None => Action::await_change(),
    })
}

/// Upstream's `failSafe`: no disruption allowed, and a `SyncFailed` condition saying why.
async fn fail_safe(ctx: &Ctx, pdb: &PodDisruptionBudget, err: &Error) -> Result<(), Error> {
    let mut status = pdb.status.clone().unwrap_or_default();
    status.disruptions_allowed = 0;
    let condition = budget::disruption_allowed("False", budget::SYNC_FAILED, err.to_string(), status.observed_generation);
    budget::set_status_condition(status.conditions.get_or_insert_with(Vec::new), condition, Timestamp::now());
    write_status(ctx, pdb, status).await
}

#[instrument(skip_all, fields(controller = NAME, key = %key(&pdb.metadata)))]
async fn reconcile(pdb: Arc<PodDisruptionBudget>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    for (store_ready, what) in [
        (ctx.pods.wait_until_ready().await, "pods"),
        (ctx.replica_sets.wait_until_ready().await, "replicasets"),
        (ctx.deployments.wait_until_ready().await, "deployments"),
        (ctx.stateful_sets.wait_until_ready().await, "statefulsets"),
        (ctx.replication_controllers.wait_until_ready().await, "replicationcontrollers"),
    ] {
        store_ready.map_err(|e| Error::Cache(format!("{what}: {e}")))?;
    }
    match try_sync(&ctx, &pdb).await {
        Ok(action) => Ok(action),
        Err(e) if informer::Conflict::is_conflict(&e) => Err(e),
        Err(e) => {
            info!(error = %e, "failed to sync PDB");
            fail_safe(&ctx, &pdb, &e).await?;
            Ok(Action::await_change())
        }
    }
}

/// How long until a `DisruptionTarget` condition on `pod` is stale (zero: it is), None
/// when it has none that can go stale (upstream's
/// `nonTerminatingPodHasStaleDisruptionCondition`).
fn stale_disruption_in(pod: &Pod, now: Timestamp) -> Option<Duration> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = pod.status.as_ref()?;
    let c = status.conditions.iter().flatten().find(|c| c.type_ == DISRUPTION_TARGET)?;
    let terminal = matches!(status.phase.as_deref(), Some("Succeeded" | "Failed"));
    if c.status != "True" || c.reason.as_deref() == Some("TerminationByKubelet") || terminal {
        return None;
    }
    let since = c.last_transition_time.as_ref().map_or(Timestamp::UNIX_EPOCH, |t| t.0);
    Some(Duration::try_from(plus(since, STALE_POD_DISRUPTION_TIMEOUT).duration_since(now)).unwrap_or_default())
}

#[instrument(skip_all, fields(controller = NAME, key = %key(&pod.metadata)))]
async fn clear_stale_disruption(pod: Arc<Pod>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let now = Timestamp::now();
    match stale_disruption_in(&pod, now) {
        None => return Ok(Action::await_change()),
        Some(wait) if !wait.is_zero() => return Ok(Action::requeue(wait)),
        Some(_) => {}
    }
    let mut updated = (*pod).clone();
    let Some(conditions) = updated.status.as_mut().and_then(|s| s.conditions.as_mut()) else { return Ok(Action::await_change()) };
    let Some(c) = conditions.iter_mut().find(|c| c.type_ == DISRUPTION_TARGET) else { return Ok(Action::await_change()) };
    *c = PodCondition { type_: DISRUPTION_TARGET.into(), status: "False".into(), last_transition_time: Some(Time(now)), ..Default::default() };
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), pod.metadata.namespace.as_deref().unwrap_or(""));
    match api.replace_status(pod.metadata.name.as_deref().unwrap_or(""), &PostParams::default(), &updated).await {
        Ok(_) => info!("reset stale DisruptionTarget condition to False"),
        Err(e) if informer::is_not_found(&e) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Action::await_change())
}

pub async fn run(client: kube::Client, stop: CancellationToken) {
    let (budgets, budget_changes) = informer::informer(Api::<PodDisruptionBudget>::all(client.clone()), watcher::Config::default(), "poddisruptionbudgets");
    let (pods, pod_changes) = informer::informer(Api::<Pod>::all(client.clone()), watcher::Config::default(), "pods");
    let (replica_sets, rs_changes) = informer::informer(Api::<ReplicaSet>::all(client.clone()), watcher::Config::default(), "replicasets");
    let (deployments, d_changes) = informer::informer(Api::<Deployment>::all(client.clone()), watcher::Config::default(), "deployments");
    let (stateful_sets, ss_changes) = informer::informer(Api::<StatefulSet>::all(client.clone()), watcher::Config::default(), "statefulsets");
    let (replication_controllers, rc_changes) =
        informer::informer(Api::<ReplicationController>::all(client.clone()), watcher::Config::default(), "replicationcontrollers");
    // The workload caches only answer scale questions; their changes trigger nothing.
    for drain in [rs_changes.map(|_| ()).boxed(), d_changes.map(|_| ()).boxed(), ss_changes.map(|_| ()).boxed(), rc_changes.map(|_| ()).boxed()] {
        let stop = stop.clone();
        tokio::spawn(async move { drain.take_until(stop.cancelled_owned()).for_each(|()| async {}).await });
    }

    // A pod's change concerns the budgets covering it, before and after; a pod with a
    // DisruptionTarget condition may need it cleared later.
    let (stale_tx, stale_rx) = futures::channel::mpsc::unbounded::<ObjectRef<Pod>>();
    let budgets_for_pods = budgets.clone();
    let pod_triggers = pod_changes.flat_map(move |change| {
        let mut touched: Vec<&Arc<Pod>> = vec![change.object()];
        if let Change::Updated { old, .. } = &change {
            touched.push(old);
        }
        if !matches!(change, Change::Deleted(_)) && stale_disruption_in(change.object(), Timestamp::now()).is_some() {
            let _ = stale_tx.unbounded_send(ObjectRef::from_obj(&**change.object()));
        }
        let mut refs: Vec<ObjectRef<PodDisruptionBudget>> = Vec::new();
        for pdb in budgets_for_pods.state() {
            if touched.iter().any(|pod| covers(&pdb, pod)) {
                refs.push(ObjectRef::from_obj(&*pdb));
            }
        }
        futures::stream::iter(refs)
    });
    let budget_triggers = informer::live_changes(budget_changes);
    let triggers = futures::stream::select(budget_triggers, pod_triggers).boxed();
    let ctx = Arc::new(Ctx {
        recorder: Recorder::new(client.clone(), EVENT_SOURCE),
        client,
        pods: pods.clone(),
        replica_sets,
        deployments,
        stateful_sets,
        replication_controllers,
    });
    info!("starting the disruption controller");
    let stale = informer::run(NAME, pods, stale_rx.boxed(), ctx.clone(), clear_stale_disruption, informer::Retry::default(), stop.clone());
    let budgets_loop = informer::run(NAME, budgets, triggers, ctx, reconcile, informer::Retry::default(), stop);
    futures::future::join(budgets_loop, stale).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodStatus;
    use k8s_openapi::api::policy::v1::PodDisruptionBudgetSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn pod(name: &str, owner: Option<&str>, ready: bool) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                labels: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
                owner_references: owner.map(|uid| vec![OwnerReference { api_version: "apps/v1".into(), kind: "ReplicaSet".into(), name: uid.into(), uid: uid.into(), controller: Some(true), ..Default::default() }]),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                phase: Some("Running".into()),
                conditions: Some(vec![PodCondition { type_: "Ready".into(), status: if ready { "True" } else { "False" }.into(), ..Default::default() }]),
                ..Default::default()
            }),
        })
    }

    fn pdb(min: Option<IntOrString>, max: Option<IntOrString>) -> PodDisruptionBudget {
        PodDisruptionBudget {
            metadata: ObjectMeta { name: Some("b".into()), namespace: Some("ns".into()), generation: Some(1), ..Default::default() },
            spec: Some(PodDisruptionBudgetSpec {
                min_available: min,
                max_unavailable: max,
                selector: Some(LabelSelector { match_labels: Some(BTreeMap::from([("app".to_string(), "web".to_string())])), ..Default::default() }),
                ..Default::default()
            }),
            status: None,
        }
    }

    /// Controllers by UID with their replicas.
    struct Scales(HashMap<&'static str, i32>);

    impl ScaleSource for Scales {
        async fn scale_of(&self, owner: &OwnerReference, _: &str) -> Result<Option<(String, i32)>, Error> {
            Ok(self.0.get(owner.uid.as_str()).map(|n| (owner.uid.clone(), *n)))
        }
    }

    #[tokio::test]
    async fn expected_and_desired_counts() {
        let scales = Scales(HashMap::from([("rs1", 10), ("rs2", 4)]));
        let three = vec![pod("a", Some("rs1"), true), pod("b", Some("rs1"), true), pod("c", Some("rs2"), false)];
        let int = IntOrString::Int;
        let pct = |s: &str| IntOrString::String(s.into());
        /// A budget, its pods, and (expected, desired, unmanaged) or the error.
        type Case = (PodDisruptionBudget, Vec<Arc<Pod>>, Result<(i32, i32, Vec<String>), String>);
        let cases: Vec<Case> = vec![
            // Integer minAvailable counts the pods themselves, controllers or not.
            (pdb(Some(int(2)), None), vec![pod("a", None, true), pod("b", None, true), pod("c", None, true)], Ok((3, 2, vec![]))),
            // Percentages and maxUnavailable use the controllers' replicas (each once).
            (pdb(Some(pct("90%")), None), three.clone(), Ok((14, 13, vec![]))),
            (pdb(None, Some(pct("10%"))), three.clone(), Ok((14, 12, vec![]))),
            (pdb(None, Some(int(1))), three.clone(), Ok((14, 13, vec![]))),
            (pdb(None, Some(int(20))), three.clone(), Ok((14, 0, vec![]))),
            // Unmanaged pods are reported, not an error.
            (pdb(None, Some(int(1))), vec![pod("a", Some("rs2"), true), pod("x", None, true)], Ok((4, 3, vec!["x".into()]))),
            (pdb(None, Some(int(1))), vec![pod("a", Some("gone"), true)], Err("found no controllers for pod \"a\"".into())),
            (pdb(Some(pct("5")), None), three.clone(), Err("invalid value for IntOrString: invalid type: string is not a percentage".into())),
            (pdb(None, None), three.clone(), Ok((0, 0, vec![]))),
        ];
        for (i, (budget, pods, want)) in cases.into_iter().enumerate() {
            let got = expected_pod_count(&scales, &budget, &pods).await.map_err(|e| e.to_string());
            assert_eq!(got, want, "case {i}");
        }
    }

    #[test]
    fn healthy_pods_exclude_deleting_and_recently_disrupted() {
        let now = at(1000);
        let mut deleting = (*pod("d", None, true)).clone();
        deleting.metadata.deletion_timestamp = Some(Time(now));
        let pods = vec![pod("a", None, true), pod("b", None, true), pod("c", None, false), Arc::new(deleting), pod("e", None, true)];
        let disrupted = BTreeMap::from([("b".to_string(), Time(at(990))), ("e".to_string(), Time(at(800)))]);
        // b was approved 10 s ago; e's approval expired, so it counts again.
        assert_eq!(count_healthy(&pods, &disrupted, now), 2);
    }

    #[test]
    fn disrupted_pods_expire_after_the_deletion_timeout() {
        let now = at(1000);
        let mut budget = pdb(Some(IntOrString::Int(1)), None);
        budget.status = Some(PodDisruptionBudgetStatus {
            disrupted_pods: Some(BTreeMap::from([
                ("fresh".to_string(), Time(at(950))),
                ("old".to_string(), Time(at(100))),
                ("gone".to_string(), Time(at(990))),
            ])),
            ..Default::default()
        });
        let pods = vec![pod("fresh", None, true), pod("old", None, true)];
        let (kept, recheck, not_deleted) = disrupted_pod_map(&budget, &pods, now);
        assert_eq!(kept.keys().collect::<Vec<_>>(), vec!["fresh"]);
        assert_eq!(recheck, Some(at(950 + 120)));
        assert_eq!(not_deleted.iter().map(|p| p.metadata.name.clone().unwrap_or_default()).collect::<Vec<_>>(), vec!["old"]);
    }

    #[test]
    fn status_and_condition() {
        let now = at(0);
        let budget = pdb(Some(IntOrString::Int(2)), None);
        let counts = |current, desired, expected| Counts { current_healthy: current, desired_healthy: desired, expected, disrupted: BTreeMap::new() };
        let status = new_status(&budget, counts(3, 2, 3), now);
        let Some(status) = status else { panic!("a new budget needs a status") };
        assert_eq!((status.current_healthy, status.desired_healthy, status.expected_pods, status.disruptions_allowed), (3, 2, 3, 1));
        assert_eq!(status.observed_generation, Some(1));
        let c = &status.conditions.clone().unwrap_or_default()[0];
        assert_eq!((c.type_.as_str(), c.status.as_str(), c.reason.as_str(), c.message.as_str()), (budget::DISRUPTION_ALLOWED, "True", "SufficientPods", ""));
        // Written once, the same counts write nothing.
        let mut synced = budget.clone();
        synced.status = Some(status);
        assert_eq!(new_status(&synced, counts(3, 2, 3), now), None);
        // No expected pods: nothing allowed whatever the health.
        let closed = new_status(&synced, counts(3, 2, 0), now).unwrap_or_default();
        assert_eq!(closed.disruptions_allowed, 0);
        let c = &closed.conditions.unwrap_or_default()[0];
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "InsufficientPods"));
    }

    #[test]
    fn stale_disruption_targets() {
        let now = at(1000);
        let with = |reason: &str, status: &str, since: i64, phase: &str| {
            let mut p = (*pod("p", None, true)).clone();
            if let Some(s) = p.status.as_mut() {
                s.phase = Some(phase.into());
                s.conditions.get_or_insert_with(Vec::new).push(PodCondition {
                    type_: DISRUPTION_TARGET.into(),
                    status: status.into(),
                    reason: Some(reason.into()),
                    last_transition_time: Some(Time(at(since))),
                    ..Default::default()
                });
            }
            p
        };
        assert_eq!(stale_disruption_in(&with("EvictionByEvictionAPI", "True", 700, "Running"), now), Some(Duration::ZERO));
        assert_eq!(stale_disruption_in(&with("EvictionByEvictionAPI", "True", 950, "Running"), now), Some(Duration::from_secs(70)));
        assert_eq!(stale_disruption_in(&with("TerminationByKubelet", "True", 700, "Running"), now), None);
        assert_eq!(stale_disruption_in(&with("EvictionByEvictionAPI", "False", 700, "Running"), now), None);
        assert_eq!(stale_disruption_in(&with("EvictionByEvictionAPI", "True", 700, "Failed"), now), None);
        assert_eq!(stale_disruption_in(&pod("p", None, true), now), None);
    }

    #[test]
    fn selector_printed_like_go() {
        let s = LabelSelector { match_labels: Some(BTreeMap::from([("foo".to_string(), "bar".to_string())])), ..Default::default() };
        assert_eq!(go_selector_string(Some(&s)), "&LabelSelector{MatchLabels:map[string]string{foo: bar,},MatchExpressions:[]LabelSelectorRequirement{},}");
    }

    #[test]
    fn coverage_by_namespace_and_selector() {
        let budget = pdb(Some(IntOrString::Int(1)), None);
        assert!(covers(&budget, &pod("a", None, true)));
        let mut elsewhere = (*pod("a", None, true)).clone();
        elsewhere.metadata.namespace = Some("other".into());
        assert!(!covers(&budget, &elsewhere));
        let mut no_selector = budget.clone();
        if let Some(s) = no_selector.spec.as_mut() {
            s.selector = None;
        }
        assert!(!covers(&no_selector, &pod("a", None, true)));
    }
}
