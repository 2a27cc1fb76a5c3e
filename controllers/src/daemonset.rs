//! The DaemonSet controller: one pod of each DaemonSet on every node that should run it
//! (node selector, required node affinity, taints the template does not tolerate), placed
//! through the scheduler with node affinity on the node's name as upstream does; failed
//! and surplus pods replaced; template revisions kept as ControllerRevisions
//! (`<name>-<hash>`, the hash also on each pod as `controller-revision-hash`); RollingUpdate
//! within maxUnavailable, OnDelete left to the user; and the status counts upstream reports.
//!
//! Not done yet: maxSurge (surge updates), the failed-pod backoff, adoption of orphaned
//! pods and revisions, a ControllerRevision informer (revisions are listed per sync).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::join_all;
use ironkube_machinery::scheduling::node_selector::RequiredNodeAffinity;
use ironkube_machinery::scheduling::taints::{self, NO_EXECUTE, NO_SCHEDULE};
use ironkube_machinery::selectors::label::Selector;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, Pod, PodTemplateSpec, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, instrument, warn};

use crate::controller_ref;
use crate::history::{self, same_data};
use crate::deployment::template_hash;
use crate::deployment::util::scaled;
use crate::expectations::{self, Expectations};
use crate::informer::{self, Change};
use crate::recorder::Recorder;
use crate::replicaset::{is_available, is_ready, key, slow_start_batch};

pub const NAME: &str = "daemonset";
const EVENT_SOURCE: &str = "daemonset-controller";
/// The label naming a pod's template revision.
pub const REVISION_HASH_LABEL: &str = "controller-revision-hash";
/// The deprecated label carrying the DaemonSet's generation.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";
const BURST_REPLICAS: usize = 250;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("the caches stopped: {0}")]
    Cache(String),
    #[error("encoding the template: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("controller revision {0} exists with another template (hash collision)")]
    Collision(String),
}

impl informer::Conflict for Error {
    fn is_conflict(&self) -> bool {
        matches!(self, Error::Api(e) if informer::is_conflict(e))
    }
}

struct Ctx {
    client: kube::Client,
    pods: Store<Pod>,
    nodes: Store<Node>,
    expectations: Arc<Expectations>,
    recorder: Recorder,
}

fn template(ds: &DaemonSet) -> PodTemplateSpec {
    ds.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default()
}

fn min_ready_seconds(ds: &DaemonSet) -> i32 {
    ds.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0)
}

/// Adds a toleration unless one with the same key and effect is there (upstream's
/// `AddOrUpdateTolerationInPodSpec`, which replaces such a toleration).
fn add_or_update_toleration(list: &mut Vec<Toleration>, key: &str, effect: &str) {
    let t = Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Default::default()
    };
    match list.iter_mut().find(|o| o.key.as_deref() == Some(key) && o.effect.as_deref() == Some(effect)) {
        Some(existing) => *existing = t,
        None => list.push(t),
    }
}

/// Upstream's `CreatePodTemplate`: the tolerations every daemon pod gets (node problems
/// must not evict it), the generation and the revision hash labels.
pub fn daemon_pod_template(ds: &DaemonSet, hash: &str) -> PodTemplateSpec {
    let mut t = template(ds);
    let spec = t.spec.get_or_insert_with(Default::default);
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    add_or_update_toleration(tolerations, "node.kubernetes.io/not-ready", NO_EXECUTE);
    add_or_update_toleration(tolerations, "node.kubernetes.io/unreachable", NO_EXECUTE);
    for key in [
        "node.kubernetes.io/disk-pressure",
        "node.kubernetes.io/memory-pressure",
        "node.kubernetes.io/pid-pressure",
        "node.kubernetes.io/unschedulable",
    ] {
        add_or_update_toleration(tolerations, key, NO_SCHEDULE);
    }
    if spec.host_network == Some(true) {
        add_or_update_toleration(tolerations, "node.kubernetes.io/network-unavailable", NO_SCHEDULE);
    }
    let labels = t.metadata.get_or_insert_with(Default::default).labels.get_or_insert_with(BTreeMap::new);
    if let Some(g) = ds.metadata.generation {
        labels.insert(TEMPLATE_GENERATION_LABEL.into(), g.to_string());
    }
    if !hash.is_empty() {
        labels.insert(REVISION_HASH_LABEL.into(), hash.into());
    }
    t
}

/// Upstream's `ReplaceDaemonSetPodNodeNameNodeAffinity`: required node affinity on exactly
/// `node` (by `metadata.name`), replacing any required terms.
fn pin_to_node(spec: &mut k8s_openapi::api::core::v1::PodSpec, node: &str) -> Result<(), serde_json::Error> {
    let mut affinity = serde_json::to_value(spec.affinity.take().unwrap_or_default())?;
    let term = json!({"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]});
    match affinity.get_mut("nodeAffinity") {
        Some(na) if na.is_object() => {
            na["requiredDuringSchedulingIgnoredDuringExecution"] = term;
        }
        _ => affinity["nodeAffinity"] = json!({"requiredDuringSchedulingIgnoredDuringExecution": term}),
    }
    spec.affinity = Some(serde_json::from_value(affinity)?);
    Ok(())
}

/// The daemon pod `ds` would put on `node`.
fn new_pod(ds: &DaemonSet, template: &PodTemplateSpec, node: &str) -> Result<Pod, serde_json::Error> {
    let meta = template.metadata.clone().unwrap_or_default();
    let mut spec = template.spec.clone().unwrap_or_default();
    pin_to_node(&mut spec, node)?;
    let name = ds.metadata.name.clone().unwrap_or_default();
    Ok(Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![controller_ref::new_controller_ref("apps/v1", "DaemonSet", &ds.metadata)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    })
}

/// Upstream's `NodeShouldRunDaemonPod`: (should run a new pod, may keep a running one).
pub fn should_run(ds: &DaemonSet, node: &Node) -> (bool, bool) {
    let node_name = node.metadata.name.as_deref().unwrap_or("");
    let t = daemon_pod_template(ds, "");
    let Ok(pod) = new_pod(ds, &t, node_name) else { return (false, false) };
    let spec = pod.spec.as_ref();
    let wanted = spec.and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty());
    if wanted.is_some_and(|n| n != node_name) {
        return (false, false);
    }
    if !RequiredNodeAffinity::of(&pod).matches(node) {
        return (false, false);
    }
    let node_taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    let tolerations = spec.and_then(|s| s.tolerations.clone()).unwrap_or_default();
    let blocks = taints::find_untolerated_taint(&node_taints, &tolerations, |t| t.effect == NO_EXECUTE || t.effect == NO_SCHEDULE);
    if blocks.is_none() {
        return (true, true);
    }
    let evicts = taints::find_untolerated_taint(&node_taints, &tolerations, |t| t.effect == NO_EXECUTE);
    (false, evicts.is_none())
}

/// One node and what [`should_run`] says of it, worked out once per sync.
struct Eligibility<'a> {
    name: &'a str,
    /// A new daemon pod belongs there.
    run: bool,
    /// A running daemon pod may stay.
    keep: bool,
}

/// Upstream's `GetTargetNodeName`: the node a daemon pod is for.
pub fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(n.to_string());
    }
    let terms = &spec.affinity.as_ref()?.node_affinity.as_ref()?.required_during_scheduling_ignored_during_execution.as_ref()?.node_selector_terms;
    terms.iter().flat_map(|t| t.match_fields.iter().flatten()).find(|r| r.key == "metadata.name" && r.operator == "In").and_then(|r| r.values.as_ref()?.first().cloned())
}

/// Creation time, then phase, like upstream's `podByCreationTimestampAndPhase`.
fn sort_pods(pods: &mut [Arc<Pod>]) {
    pods.sort_by(|a, b| {
        let t = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
        t(a).cmp(&t(b)).then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
}

/// Upstream's `getPatch`: the revision's data, a patch replacing `spec.template`.
fn revision_patch(ds: &DaemonSet) -> Result<Value, serde_json::Error> {
    history::template_patch(&template(ds))
}

/// The current revision's hash, creating or renumbering its ControllerRevision, and
/// dropping old revisions past `revisionHistoryLimit` that no pod uses.
async fn sync_history(ctx: &Ctx, ds: &DaemonSet, pods: &[Arc<Pod>]) -> Result<String, Error> {
    let ns = ds.metadata.namespace.clone().unwrap_or_default();
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &ns);
    let uid = ds.metadata.uid.clone().unwrap_or_default();
    let mut owned: Vec<ControllerRevision> = api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|r| controller_ref::is_controlled_by(&r.metadata, &uid))
        .collect();
    owned.sort_by_key(|r| r.revision);
    let patch = revision_patch(ds)?;
    let collision = ds.status.as_ref().and_then(|s| s.collision_count);
    let template_json = serde_json::to_value(template(ds))?;
    let hash = template_hash::compute_hash(&template_json, collision);
    let max_revision = owned.last().map_or(0, |r| r.revision);
    let current = owned.iter().find(|r| same_data(r, &patch));
    match current {
        Some(r) if r.revision < max_revision => {
            let name = r.metadata.name.clone().unwrap_or_default();
            api.patch(&name, &PatchParams::default(), &Patch::Merge(json!({"revision": max_revision + 1}))).await?;
        }
        Some(_) => {}
        None => {
            let name = format!("{}-{hash}", ds.metadata.name.as_deref().unwrap_or(""));
            let mut labels = template(ds).metadata.and_then(|m| m.labels).unwrap_or_default();
            labels.insert(REVISION_HASH_LABEL.into(), hash.clone());
            let revision = ControllerRevision {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(ns.clone()),
                    labels: Some(labels),
                    annotations: ds.metadata.annotations.clone(),
                    owner_references: Some(vec![controller_ref::new_controller_ref("apps/v1", "DaemonSet", &ds.metadata)]),
                    ..Default::default()
                },
                data: Some(RawExtension(patch.clone())),
                revision: max_revision + 1,
            };
            match api.create(&PostParams::default(), &revision).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    let existing = api.get(&name).await?;
                    let same = same_data(&existing, &patch);
                    if !same || !controller_ref::is_controlled_by(&existing.metadata, &uid) {
                        bump_collision_count(ctx, ds).await?;
                        return Err(Error::Collision(name));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    // Old revisions beyond the history limit, oldest first, unless a pod still uses them.
    let limit = ds.spec.as_ref().and_then(|s| s.revision_history_limit).unwrap_or(10).max(0) as usize;
    let in_use: Vec<&str> = pods.iter().filter_map(|p| p.metadata.labels.as_ref()?.get(REVISION_HASH_LABEL).map(String::as_str)).collect();
    let old: Vec<&ControllerRevision> = owned
        .iter()
        .filter(|r| !same_data(r, &patch))
        .filter(|r| !r.metadata.labels.as_ref().and_then(|l| l.get(REVISION_HASH_LABEL)).is_some_and(|h| in_use.contains(&h.as_str())))
        .collect();
    if old.len() > limit {
        for r in &old[..old.len() - limit] {
            let name = r.metadata.name.clone().unwrap_or_default();
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if informer::is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(hash)
}

async fn bump_collision_count(ctx: &Ctx, ds: &DaemonSet) -> Result<(), Error> {
    let api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), ds.metadata.namespace.as_deref().unwrap_or(""));
    let mut updated = ds.clone();
    let status = updated.status.get_or_insert_with(Default::default);
    status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
    api.replace_status(ds.metadata.name.as_deref().unwrap_or(""), &PostParams::default(), &updated).await?;
    Ok(())
}

/// Upstream's `podsShouldBeOnNode` (without surge): the nodes that need a pod and the pods
/// to delete.
fn plan(nodes: &[Eligibility], by_node: &HashMap<String, Vec<Arc<Pod>>>) -> (Vec<String>, Vec<Arc<Pod>>, Vec<String>) {
    let mut create = Vec::new();
    let mut delete = Vec::new();
    let mut events = Vec::new();
    for &Eligibility { name, run, keep } in nodes {
        let name = name.to_string();
        let pods = by_node.get(&name);
        match pods {
            None if run => create.push(name.clone()),
            Some(pods) if keep => {
                let mut running = Vec::new();
                for pod in pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
                    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
                        Some("Failed") => {
                            events.push(format!("Found failed daemon pod {}/{} on node {name}, will try to kill it", pod.metadata.namespace.as_deref().unwrap_or(""), pod.metadata.name.as_deref().unwrap_or("")));
                            delete.push(pod.clone());
                        }
                        Some("Succeeded") => delete.push(pod.clone()),
                        _ => running.push(pod.clone()),
                    }
                }
                sort_pods(&mut running);
                delete.extend(running.iter().skip(1).cloned());
            }
            Some(pods) if !keep => delete.extend(pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()).cloned()),
            _ => {}
        }
    }
    (create, delete, events)
}

fn pod_hash(pod: &Pod) -> Option<&str> {
    pod.metadata.labels.as_ref()?.get(REVISION_HASH_LABEL).map(String::as_str)
}

fn is_updated(ds: &DaemonSet, pod: &Pod, hash: &str) -> bool {
    let generation = ds.metadata.generation.map(|g| g.to_string());
    let pod_gen = pod.metadata.labels.as_ref().and_then(|l| l.get(TEMPLATE_GENERATION_LABEL));
    pod_hash(pod) == Some(hash) || (pod_hash(pod).is_none() && pod_gen.is_some() && pod_gen == generation.as_ref())
}

/// Upstream's `rollingUpdate` without surge: old pods to delete within maxUnavailable.
fn rolling_update(ds: &DaemonSet, nodes: &[Eligibility], by_node: &HashMap<String, Vec<Arc<Pod>>>, hash: &str, now: Timestamp) -> Vec<Arc<Pod>> {
    let desired = nodes.iter().filter(|n| n.run).count() as i32;
    let ru = ds.spec.as_ref().and_then(|s| s.update_strategy.as_ref()).and_then(|s| s.rolling_update.as_ref());
    let mut max_unavailable = scaled(ru.and_then(|r| r.max_unavailable.as_ref()), desired, true);
    if max_unavailable == 0 {
        max_unavailable = 1;
    }
    let min_ready = min_ready_seconds(ds);
    let mut unavailable = 0;
    let mut replace = Vec::new();
    let mut candidates = Vec::new();
    for pods in by_node.values() {
        let live: Vec<&Arc<Pod>> = pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect();
        let new: Vec<&&Arc<Pod>> = live.iter().filter(|p| is_updated(ds, p, hash)).collect();
        let old: Vec<&&Arc<Pod>> = live.iter().filter(|p| !is_updated(ds, p, hash)).collect();
        if new.len() > 1 || old.len() > 1 {
            unavailable += 1;
            continue;
        }
        match (new.first(), old.first()) {
            (None, None) | (Some(_), Some(_)) => unavailable += 1,
            (Some(n), None) => {
                if !is_available(n, min_ready, now) {
                    unavailable += 1;
                }
            }
            (None, Some(o)) => {
                if !is_available(o, min_ready, now) {
                    replace.push((**o).clone());
                } else if unavailable < max_unavailable {
                    candidates.push((**o).clone());
                }
            }
        }
    }
    let room = usize::try_from((max_unavailable - unavailable).max(0)).unwrap_or(0).min(candidates.len());
    replace.extend(candidates.into_iter().take(room));
    replace
}

async fn create_pods(ctx: &Ctx, ds: &DaemonSet, nodes: Vec<String>, hash: &str) -> Result<(), Error> {
    let ds_key = key(&ds.metadata);
    let ns = ds.metadata.namespace.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let template = daemon_pod_template(ds, hash);
    let nodes: Vec<String> = nodes.into_iter().take(BURST_REPLICAS).collect();
    let count = nodes.len();
    ctx.expectations.expect_creations(&ds_key, count);
    let queue = std::sync::Mutex::new(nodes.into_iter());
    let (created, err) = slow_start_batch(count, 1, || {
        let node = queue.lock().ok().and_then(|mut q| q.next());
        let (api, template) = (api.clone(), template.clone());
        async move {
            let Some(node) = node else { return Ok(()) };
            let pod = new_pod(ds, &template, &node).map_err(Error::Encode)?;
            match api.create(&PostParams::default(), &pod).await {
                Ok(p) => {
                    ctx.recorder.normal(ds, "SuccessfulCreate", format!("Created pod: {}", p.metadata.name.as_deref().unwrap_or("")));
                    Ok(())
                }
                Err(kube::Error::Api(e)) if e.code == 403 && e.message.contains("being terminated") => Ok(()),
                Err(e) => {
                    ctx.recorder.warning(ds, "FailedCreate", format!("Error creating: {e}"));
                    Err(Error::Api(e))
                }
            }
        }
    })
    .await;
    for _ in created..count {
        ctx.expectations.creation_observed(&ds_key);
    }
    err.map_or(Ok(()), Err)
}

async fn delete_pods(ctx: &Ctx, ds: &DaemonSet, doomed: Vec<Arc<Pod>>) -> Result<(), Error> {
    if doomed.is_empty() {
        return Ok(());
    }
    let ds_key = key(&ds.metadata);
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ds.metadata.namespace.as_deref().unwrap_or(""));
    ctx.expectations.expect_deletions(&ds_key, doomed.iter().map(|p| key(&p.metadata)));
    let results = join_all(doomed.iter().map(|pod| {
        let api = api.clone();
        let ds_key = ds_key.clone();
        async move {
            let name = pod.metadata.name.clone().unwrap_or_default();
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {
                    ctx.recorder.normal(ds, "SuccessfulDelete", format!("Deleted pod: {name}"));
                    Ok(())
                }
                Err(e) => {
                    ctx.expectations.deletion_observed(&ds_key, &key(&pod.metadata));
                    if informer::is_not_found(&e) { Ok(()) } else { Err(e) }
                }
            }
        }
    }))
    .await;
    results.into_iter().find_map(Result::err).map_or(Ok(()), |e| Err(Error::Api(e)))
}

/// Upstream's `updateDaemonSetStatus` counts.
fn calculate_status(ds: &DaemonSet, nodes: &[Eligibility], by_node: &HashMap<String, Vec<Arc<Pod>>>, hash: &str, now: Timestamp) -> DaemonSetStatus {
    let (mut desired, mut scheduled, mut misscheduled, mut ready, mut updated, mut available) = (0, 0, 0, 0, 0, 0);
    let min_ready = min_ready_seconds(ds);
    for &Eligibility { name, run, .. } in nodes {
        let pods = by_node.get(name).filter(|p| !p.is_empty());
        if run {
            desired += 1;
            if let Some(pods) = pods {
                scheduled += 1;
                let mut pods = pods.clone();
                sort_pods(&mut pods);
                let pod = &pods[0];
                if is_ready(pod) {
                    ready += 1;
                    if is_available(pod, min_ready, now) {
                        available += 1;
                    }
                }
                if is_updated(ds, pod, hash) {
                    updated += 1;
                }
            }
        } else if pods.is_some() {
            misscheduled += 1;
        }
    }
    let mut status = ds.status.clone().unwrap_or_default();
    status.desired_number_scheduled = desired;
    status.current_number_scheduled = scheduled;
    status.number_misscheduled = misscheduled;
    status.number_ready = ready;
    let nonzero = |n: i32| (n > 0).then_some(n);
    status.updated_number_scheduled = nonzero(updated);
    status.number_available = nonzero(available);
    status.number_unavailable = nonzero(desired - available);
    status.observed_generation = ds.metadata.generation;
    status
}

async fn update_status(ctx: &Ctx, ds: &DaemonSet, status: DaemonSetStatus) -> Result<(), Error> {
    if ds.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), ds.metadata.namespace.as_deref().unwrap_or(""));
    let name = ds.metadata.name.clone().unwrap_or_default();
    let mut updated = ds.clone();
    updated.status = Some(status.clone());
    match api.replace_status(&name, &PostParams::default(), &updated).await {
        Ok(_) => Ok(()),
        Err(e) if informer::is_conflict(&e) => {
            let Some(mut fresh) = api.get_opt(&name).await? else { return Ok(()) };
            if fresh.metadata.uid != ds.metadata.uid {
                return Ok(());
            }
            let collision = fresh.status.as_ref().and_then(|s| s.collision_count);
            fresh.status = Some(DaemonSetStatus { collision_count: collision, observed_generation: fresh.metadata.generation.min(status.observed_generation), ..status });
            api.replace_status(&name, &PostParams::default(), &fresh).await?;
            Ok(())
        }
        Err(e) if informer::is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[instrument(skip_all, fields(controller = NAME, key = %key(&ds.metadata)))]
async fn reconcile(ds: Arc<DaemonSet>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    ctx.pods.wait_until_ready().await.map_err(|e| Error::Cache(e.to_string()))?;
    ctx.nodes.wait_until_ready().await.map_err(|e| Error::Cache(e.to_string()))?;
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ds_key = key(&ds.metadata);
    let uid = ds.metadata.uid.clone().unwrap_or_default();
    let Ok(selector) = Selector::from_label_selector(ds.spec.as_ref().map(|s| &s.selector)) else {
        warn!(daemon_set = %ds_key, "invalid selector; ignoring");
        return Ok(Action::await_change());
    };
    let ns = ds.metadata.namespace.as_deref();
    let owned: Vec<Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == ns && controller_ref::is_controlled_by(&p.metadata, &uid))
        .filter(|p| selector.matches(p.metadata.labels.as_ref().unwrap_or(&BTreeMap::new())))
        .collect();
    let mut by_node: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
    for pod in &owned {
        if let Some(node) = target_node(pod) {
            by_node.entry(node).or_default().push(pod.clone());
        }
    }
    let node_list = ctx.nodes.state();
    let nodes: Vec<Eligibility> = node_list
        .iter()
        .map(|n| {
            let (run, keep) = should_run(&ds, n);
            Eligibility { name: n.metadata.name.as_deref().unwrap_or(""), run, keep }
        })
        .collect();
    let hash = sync_history(&ctx, &ds, &owned).await?;
    let now = Timestamp::now();
    if ctx.expectations.satisfied(&ds_key) {
        let (create, mut delete, failures) = plan(&nodes, &by_node);
        for msg in failures {
            ctx.recorder.warning(&*ds, "FailedDaemonPod", msg);
        }
        let rolling = ds.spec.as_ref().and_then(|s| s.update_strategy.as_ref()).and_then(|s| s.type_.as_deref()).unwrap_or("RollingUpdate") == "RollingUpdate";
        if rolling {
            for pod in rolling_update(&ds, &nodes, &by_node, &hash, now) {
                if !delete.iter().any(|d| d.metadata.uid == pod.metadata.uid) {
                    delete.push(pod);
                }
            }
        }
        debug!(daemon_set = %ds_key, create = create.len(), delete = delete.len(), "syncing nodes");
        let deleted = delete_pods(&ctx, &ds, delete).await;
        let created = create_pods(&ctx, &ds, create, &hash).await;
        deleted?;
        created?;
    }
    let status = calculate_status(&ds, &nodes, &by_node, &hash, now);
    update_status(&ctx, &ds, status).await?;
    // Availability after minReadySeconds is only seen by looking again.
    let min_ready = min_ready_seconds(&ds);
    if min_ready > 0 {
        return Ok(Action::requeue(Duration::from_secs(u64::try_from(min_ready).unwrap_or(1))));
    }
    Ok(Action::await_change())
}

/// Which DaemonSet a pod change concerns (its controller), lowering expectations.
fn pod_trigger(change: Change<Pod>, store: &Store<DaemonSet>, exp: &Expectations) -> Option<ObjectRef<DaemonSet>> {
    let ds = controller_ref::resolve(store, "DaemonSet", &change.object().metadata)?;
    exp.observe(&key(&ds.metadata), &change);
    Some(ObjectRef::from_obj(&*ds))
}

pub async fn run(client: kube::Client, stop: CancellationToken) {
    let (daemon_sets, ds_changes) = informer::informer(Api::<DaemonSet>::all(client.clone()), watcher::Config::default(), "daemonsets");
    let (pods, pod_changes) = informer::informer(Api::<Pod>::all(client.clone()), watcher::Config::default(), "pods");
    let (nodes, node_changes) = informer::informer(Api::<Node>::all(client.clone()), watcher::Config::default(), "nodes");
    let expectations = Arc::new(Expectations::default());
    let ds_triggers = expectations::owner_triggers(ds_changes, expectations.clone());
    let pod_triggers = {
        let (exp, store) = (expectations.clone(), daemon_sets.clone());
        pod_changes.filter_map(move |change| futures::future::ready(pod_trigger(change, &store, &exp)))
    };
    // Any node change may change where daemon pods belong.
    let node_triggers = {
        let store = daemon_sets.clone();
        node_changes.flat_map(move |_| futures::stream::iter(store.state().iter().map(|ds| ObjectRef::from_obj(&**ds)).collect::<Vec<_>>()))
    };
    let triggers = futures::stream::select(futures::stream::select(ds_triggers, pod_triggers), node_triggers).boxed();
    let ctx = Arc::new(Ctx {
        recorder: Recorder::new(client.clone(), EVENT_SOURCE),
        client,
        pods,
        nodes,
        expectations,
    });
    info!("starting the DaemonSet controller");
    informer::run(NAME, daemon_sets, triggers, ctx, reconcile, informer::Retry::default(), stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(spec_extra: Value) -> DaemonSet {
        let mut spec = json!({
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
        });
        if let (Some(s), Some(extra)) = (spec["template"]["spec"].as_object_mut(), spec_extra.as_object()) {
            s.extend(extra.clone());
        }
        serde_json::from_value(json!({"metadata": {"name": "agent", "namespace": "ns", "uid": "ds-uid", "generation": 3}, "spec": spec})).expect("ds")
    }

    fn node(name: &str, labels: Value, taints: Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}})).expect("node")
    }

    #[test]
    fn which_nodes_run_a_daemon_pod() {
        let plain = ds(json!({}));
        assert_eq!(should_run(&plain, &node("a", json!({}), json!([]))), (true, true));
        // Tolerated by every daemon pod: unschedulable, not-ready.
        assert_eq!(should_run(&plain, &node("b", json!({}), json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]))), (true, true));
        // A NoSchedule taint keeps new pods off but lets a running one stay; NoExecute evicts.
        assert_eq!(should_run(&plain, &node("c", json!({}), json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]))), (false, true));
        assert_eq!(should_run(&plain, &node("d", json!({}), json!([{"key": "dedicated", "value": "db", "effect": "NoExecute"}]))), (false, false));
        let selective = ds(json!({"nodeSelector": {"disk": "ssd"}}));
        assert_eq!(should_run(&selective, &node("e", json!({"disk": "ssd"}), json!([]))), (true, true));
        assert_eq!(should_run(&selective, &node("f", json!({"disk": "hdd"}), json!([]))), (false, false));
    }

    #[test]
    fn daemon_pods_are_pinned_by_node_affinity_and_labelled() {
        let d = ds(json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "x", "operator": "Exists"}]}]}}}}));
        let t = daemon_pod_template(&d, "5d4f8b");
        let labels = t.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
        assert_eq!(labels.get(REVISION_HASH_LABEL).map(String::as_str), Some("5d4f8b"));
        assert_eq!(labels.get(TEMPLATE_GENERATION_LABEL).map(String::as_str), Some("3"));
        let pod = new_pod(&d, &t, "node-1").expect("pod");
        assert_eq!(target_node(&pod).as_deref(), Some("node-1"));
        let v = serde_json::to_value(&pod).expect("json");
        assert_eq!(
            v["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"],
            json!({"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-1"]}]}]})
        );
        let keys: Vec<&str> = v["spec"]["tolerations"].as_array().into_iter().flatten().filter_map(|t| t["key"].as_str()).collect();
        assert_eq!(keys, ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable", "node.kubernetes.io/disk-pressure", "node.kubernetes.io/memory-pressure", "node.kubernetes.io/pid-pressure", "node.kubernetes.io/unschedulable"]);
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("agent-"));
    }

    #[test]
    fn revision_patch_replaces_the_template_with_sorted_keys() {
        let p = revision_patch(&ds(json!({}))).expect("patch");
        let text = serde_json::to_string(&p).expect("text");
        assert!(text.starts_with(r#"{"spec":{"template":{"$patch":"replace","metadata":{"creationTimestamp":null,"labels":{"app":"agent"}},"spec":{"containers":"#), "{text}");
    }
}
