//! The node lifecycle controller: watches the heartbeats kubelets post (the Ready
//! condition's lastHeartbeatTime and the node's Lease in kube-node-lease), each observed on
//! this controller's own clock like upstream's nodeHealthData; when a node posts nothing for
//! --node-monitor-grace-period (--node-startup-grace-period if it never posted), its
//! Ready/MemoryPressure/DiskPressure/PIDPressure conditions go Unknown and its pods NotReady.
//!
//! Taints: NoExecute node.kubernetes.io/not-ready (Ready False) or node.kubernetes.io/unreachable
//! (Ready Unknown), swapped in one write and added at most --node-eviction-rate nodes per
//! second per zone (none while a small zone is partially disrupted, and none at all while every
//! zone is fully disrupted), so the taint eviction controller does the evicting; NoSchedule
//! taints for the node's conditions and for spec.unschedulable on every node change. The beta
//! OS and arch labels follow the stable ones.
//!
//! Left out: the per-node workers run one after another rather than eight at a time; the
//! taint queue is tried once per monitor period rather than every 100 ms.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, ObjectReference, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, instrument, warn};

use ironkube_machinery::node_status::LEASE_NAMESPACE;
use ironkube_machinery::scheduling::taints::{NO_EXECUTE, NO_SCHEDULE, TAINT_NODE_UNSCHEDULABLE};

use crate::informer::{self, Change};
use crate::recorder::Recorder;

pub const NAME: &str = "node-lifecycle-controller";
const EVENT_SOURCE: &str = "node-controller";
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// Condition types -> the NoSchedule taint each status stands for.
const CONDITION_TAINTS: &[(&str, &str, &str)] = &[
    ("Ready", "False", TAINT_NOT_READY),
    ("Ready", "Unknown", TAINT_UNREACHABLE),
    ("MemoryPressure", "True", "node.kubernetes.io/memory-pressure"),
    ("DiskPressure", "True", "node.kubernetes.io/disk-pressure"),
    ("NetworkUnavailable", "True", "node.kubernetes.io/network-unavailable"),
    ("PIDPressure", "True", "node.kubernetes.io/pid-pressure"),
];
/// The conditions that go Unknown when the kubelet stops posting (NetworkUnavailable is the
/// control plane's).
const KUBELET_CONDITIONS: &[&str] = &["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];
/// (stable, beta) labels kept equal.
const LABEL_PAIRS: &[(&str, &str)] = &[("kubernetes.io/os", "beta.kubernetes.io/os"), ("kubernetes.io/arch", "beta.kubernetes.io/arch")];
/// Nodes carrying this label do not count in their zone's health.
const EXCLUDE_DISRUPTION: &str = "node.kubernetes.io/exclude-disruption";
/// Upstream's NodeHealthUpdateRetry and taint write retries.
const RETRIES: usize = 5;

/// The controller's flags (kube-controller-manager's names and defaults are in `Options`).
#[derive(Debug, Clone)]
pub struct Config {
    pub monitor_period: Duration,
    pub monitor_grace_period: Duration,
    pub startup_grace_period: Duration,
    pub eviction_rate: f32,
    pub secondary_eviction_rate: f32,
    pub large_cluster_threshold: i32,
    pub unhealthy_zone_threshold: f32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            monitor_period: Duration::from_secs(5),
            monitor_grace_period: Duration::from_secs(50),
            startup_grace_period: Duration::from_secs(60),
            eviction_rate: 0.1,
            secondary_eviction_rate: 0.01,
            large_cluster_threshold: 50,
            unhealthy_zone_threshold: 0.55,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing the status of node {node}: {source}")]
    Status { node: String, #[source] source: kube::Error },
    #[error("writing the taints of node {node}: {source}")]
    Taints { node: String, #[source] source: kube::Error },
    #[error("writing the labels of node {node}: {source}")]
    Labels { node: String, #[source] source: kube::Error },
    #[error("marking pod {pod} not ready: {source}")]
    Pod { pod: String, #[source] source: kube::Error },
}

impl informer::Conflict for Error {
    fn is_conflict(&self) -> bool {
        matches!(self, Error::Status { source, .. } | Error::Taints { source, .. } | Error::Labels { source, .. } | Error::Pod { source, .. } if informer::is_conflict(source))
    }
}

// ---- pure pieces -------------------------------------------------------------------------

fn conditions(node: &Node) -> &[NodeCondition] {
    node.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default()
}

pub fn condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    conditions(node).iter().find(|c| c.type_ == type_)
}

fn taints(node: &Node) -> &[Taint] {
    node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default()
}

fn has_taint(node: &Node, key: &str, effect: &str) -> bool {
    taints(node).iter().any(|t| t.key == key && t.effect == effect)
}

fn template(key: &str, effect: &str) -> Taint {
    Taint { key: key.into(), effect: effect.into(), value: None, time_added: None }
}

/// Upstream's GetZoneKey: region and zone, "" when the node has neither.
pub fn zone_key(node: &Node) -> String {
    let labels = node.metadata.labels.as_ref();
    let get = |stable: &str, beta: &str| labels.and_then(|l| l.get(stable).or_else(|| l.get(beta))).cloned().unwrap_or_default();
    let region = get("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region");
    let zone = get("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone");
    if region.is_empty() && zone.is_empty() { String::new() } else { format!("{region}:\x00:{zone}") }
}

/// What this controller remembers of a node's heartbeats (upstream's nodeHealthData).
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// When a heartbeat (a new Ready heartbeat time or a renewed Lease) was last seen.
    pub probe: Timestamp,
    pub ready_transition: Timestamp,
    /// The Ready condition as last seen.
    pub ready: Option<NodeCondition>,
    /// The Lease renewTime as last seen.
    pub lease_renew: Option<Timestamp>,
}

/// One look at a node (upstream's tryUpdateNodeHealth).
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub health: Health,
    /// The Ready condition as the node had it (a made-up Unknown one if it never posted).
    pub observed_ready: NodeCondition,
    /// The Ready condition after this look.
    pub current_ready: Option<NodeCondition>,
    /// The node with its conditions gone Unknown, when that must be written.
    pub write: Option<Node>,
}

fn since(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)).unwrap_or(Timestamp::MAX)
}

/// Upstream's tryUpdateNodeHealth as a pure function of what was saved, the node, its Lease's
/// renewTime and now.
pub fn observe(saved: Option<&Health>, node: &Node, lease_renew: Option<Timestamp>, config: &Config, now: Timestamp) -> Observation {
    let created = node.metadata.creation_timestamp.as_ref().map(|t| t.0).unwrap_or(now);
    let current = condition(node, "Ready").cloned();
    let (observed_ready, grace, mut health) = match &current {
        None => {
            let fake = NodeCondition {
                type_: "Ready".into(),
                status: "Unknown".into(),
                last_heartbeat_time: Some(Time(created)),
                last_transition_time: Some(Time(created)),
                ..Default::default()
            };
            let health = match saved {
                Some(h) => Health { ready: None, ..h.clone() },
                None => Health { probe: created, ready_transition: created, ready: None, lease_renew: None },
            };
            (fake, config.startup_grace_period, health)
        }
        Some(ready) => {
            let fresh = Health { probe: now, ready_transition: now, ready: current.clone(), lease_renew: saved.and_then(|h| h.lease_renew) };
            let health = match saved.map(|h| (h, &h.ready)) {
                None | Some((_, None)) => fresh,
                Some((h, Some(before))) if before.last_heartbeat_time != ready.last_heartbeat_time => Health {
                    probe: now,
                    ready_transition: if before.last_transition_time != ready.last_transition_time { now } else { h.ready_transition },
                    ready: current.clone(),
                    lease_renew: h.lease_renew,
                },
                Some((h, Some(_))) => Health { ready: current.clone(), ..h.clone() },
            };
            (ready.clone(), config.monitor_grace_period, health)
        }
    };
    // A renewed Lease is a heartbeat too.
    if let Some(renew) = lease_renew
        && health.lease_renew.is_none_or(|before| before < renew)
    {
        health.lease_renew = Some(renew);
        health.probe = now;
    }
    let mut current_ready = current;
    let mut write = None;
    if now > since(health.probe, grace) {
        let mut updated = node.clone();
        let status = updated.status.get_or_insert_with(Default::default);
        let list = status.conditions.get_or_insert_with(Vec::new);
        for type_ in KUBELET_CONDITIONS {
            match list.iter_mut().find(|c| c.type_ == *type_) {
                None => list.push(NodeCondition {
                    type_: (*type_).into(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: Some(Time(created)),
                    last_transition_time: Some(Time(now)),
                }),
                Some(c) if c.status != "Unknown" => {
                    c.status = "Unknown".into();
                    c.reason = Some("NodeStatusUnknown".into());
                    c.message = Some("Kubelet stopped posting node status.".into());
                    c.last_transition_time = Some(Time(now));
                }
                Some(_) => {}
            }
        }
        current_ready = list.iter().find(|c| c.type_ == "Ready").cloned();
        if current_ready.as_ref() != Some(&observed_ready) {
            health.ready = current_ready.clone();
            health.ready_transition = now;
            write = Some(updated);
        }
    }
    Observation { health, observed_ready, current_ready, write }
}

/// The NoSchedule taints a node's conditions and spec.unschedulable ask for.
pub fn wanted_no_schedule(node: &Node) -> Vec<Taint> {
    let mut wanted: Vec<Taint> = conditions(node)
        .iter()
        .filter_map(|c| CONDITION_TAINTS.iter().find(|(t, s, _)| *t == c.type_ && *s == c.status).map(|(_, _, key)| template(key, NO_SCHEDULE)))
        .collect();
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        wanted.push(template(TAINT_NODE_UNSCHEDULABLE, NO_SCHEDULE));
    }
    wanted
}

/// The NoSchedule taints this controller owns that the node has.
fn owned_no_schedule(node: &Node) -> Vec<Taint> {
    taints(node)
        .iter()
        .filter(|t| t.effect == NO_SCHEDULE && (t.key == TAINT_NODE_UNSCHEDULABLE || CONDITION_TAINTS.iter().any(|(_, _, k)| *k == t.key)))
        .cloned()
        .collect()
}

fn same_taint(a: &Taint, b: &Taint) -> bool {
    a.key == b.key && a.effect == b.effect
}

/// (to add, to remove) to go from `have` to `want`, by key and effect (upstream's TaintSetDiff).
pub fn taint_diff(want: &[Taint], have: &[Taint]) -> (Vec<Taint>, Vec<Taint>) {
    let add = want.iter().filter(|w| !have.iter().any(|h| same_taint(h, w))).cloned().collect();
    let remove = have.iter().filter(|h| !want.iter().any(|w| same_taint(h, w))).cloned().collect();
    (add, remove)
}

/// The node's taints with `remove` gone and `add` added (stamped `now`), or None if that
/// changes nothing.
pub fn swapped(current: &[Taint], add: &[Taint], remove: &[Taint], now: Timestamp) -> Option<Vec<Taint>> {
    let mut out: Vec<Taint> = current.iter().filter(|t| !remove.iter().any(|r| same_taint(r, t))).cloned().collect();
    for a in add {
        if out.iter().any(|t| same_taint(t, a) && t.value == a.value) {
            continue;
        }
        out.retain(|t| !same_taint(t, a));
        out.push(Taint { time_added: Some(Time(now)), ..a.clone() });
    }
    (out != current).then_some(out)
}

/// The beta labels to set so they follow the stable ones.
pub fn labels_to_update(node: &Node) -> BTreeMap<String, String> {
    let Some(labels) = node.metadata.labels.as_ref() else { return BTreeMap::new() };
    LABEL_PAIRS
        .iter()
        .filter_map(|(stable, beta)| {
            let value = labels.get(*stable)?;
            (labels.get(*beta) != Some(value)).then(|| ((*beta).to_string(), value.clone()))
        })
        .collect()
}

/// A zone's health (upstream's ZoneState).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneState {
    Initial,
    Normal,
    PartialDisruption,
    FullDisruption,
}

/// Upstream's ComputeZoneState over the zone's Ready statuses ("True" counts as ready).
pub fn zone_state(ready: &[Option<&str>], unhealthy_threshold: f32) -> ZoneState {
    let ready_nodes = ready.iter().filter(|s| **s == Some("True")).count();
    let not_ready = ready.len() - ready_nodes;
    #[allow(clippy::cast_precision_loss)]
    let fraction = not_ready as f32 / ready.len().max(1) as f32;
    if ready_nodes == 0 && not_ready > 0 {
        ZoneState::FullDisruption
    } else if not_ready > 2 && fraction >= unhealthy_threshold {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

/// A token bucket with a burst of one (upstream's eviction limiter); rate 0 never accepts.
#[derive(Debug)]
struct Limiter {
    qps: f32,
    tokens: f64,
    last: Instant,
}

impl Limiter {
    fn new(qps: f32) -> Self {
        Limiter { qps, tokens: 1.0, last: Instant::now() }
    }

    fn try_accept(&mut self) -> bool {
        if self.qps <= 0.0 {
            return false;
        }
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * f64::from(self.qps)).min(1.0);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn swap(&mut self, qps: f32) {
        if (self.qps - qps).abs() > f32::EPSILON {
            *self = Limiter::new(qps);
        }
    }
}

/// Nodes waiting for their NoExecute taint in one zone (upstream's RateLimitedTimedQueue):
/// a node stays a member after it was tainted, so it is not queued again until removed.
#[derive(Debug)]
struct Tainter {
    queue: VecDeque<String>,
    members: HashSet<String>,
    limiter: Limiter,
}

impl Tainter {
    fn new(qps: f32) -> Self {
        Tainter { queue: VecDeque::new(), members: HashSet::new(), limiter: Limiter::new(qps) }
    }

    fn add(&mut self, node: &str) -> bool {
        if !self.members.insert(node.to_string()) {
            return false;
        }
        self.queue.push_back(node.to_string());
        true
    }

    fn remove(&mut self, node: &str) -> bool {
        self.queue.retain(|n| n != node);
        self.members.remove(node)
    }
}

// ---- API writes ----------------------------------------------------------------------------

/// Takes the taints of `node` from `current` to `swapped(current, add, remove)` in one write
/// guarded by the resourceVersion, reading the node again after a conflict.
pub async fn swap_taints(api: &Api<Node>, node: &Node, add: &[Taint], remove: &[Taint]) -> Result<(), Error> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let err = |source| Error::Taints { node: name.clone(), source };
    let mut node = node.clone();
    for attempt in 0..RETRIES {
        let now = Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_else(|_| Timestamp::now());
        let Some(new) = swapped(taints(&node), add, remove, now) else { return Ok(()) };
        let value = if new.is_empty() { serde_json::Value::Null } else { serde_json::to_value(&new).unwrap_or_default() };
        let patch = json!({"metadata": {"resourceVersion": node.metadata.resource_version}, "spec": {"taints": value}});
        match api.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await {
            Ok(_) => {
                debug!(node = %name, ?add, ?remove, "swapped taints");
                return Ok(());
            }
            Err(e) if informer::is_conflict(&e) && attempt + 1 < RETRIES => node = api.get(&name).await.map_err(err)?,
            Err(e) if informer::is_not_found(&e) => return Ok(()),
            Err(e) => return Err(err(e)),
        }
    }
    Ok(())
}

/// Upstream's MarkPodsNotReady: Ready=False on the pods of `node` that have a Ready condition
/// saying otherwise, each followed by a NodeNotReady warning.
async fn mark_pods_not_ready(client: &kube::Client, recorder: &Recorder, pods: &[Arc<Pod>], node: &str) -> Result<(), Error> {
    let mut first_error = None;
    for pod in pods.iter().filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node)) {
        let ready = pod.status.as_ref().and_then(|s| s.conditions.as_ref()).and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
        if ready.is_none_or(|c| c.status == "False") {
            continue;
        }
        let (Some(ns), Some(name)) = (pod.metadata.namespace.as_deref(), pod.metadata.name.as_deref()) else { continue };
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let patch = json!({
            "metadata": {"uid": pod.metadata.uid},
            "status": {"conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": ironkube_machinery::node_status::time(Timestamp::now())}]},
        });
        debug!(pod = %format!("{ns}/{name}"), node, "marking pod not ready");
        match api.patch_status(name, &PatchParams::default(), &Patch::Strategic(patch)).await {
            Ok(_) => recorder.warning(&**pod, "NodeNotReady", "Node is not ready".into()),
            Err(e) if informer::is_not_found(&e) => {}
            Err(source) => {
                warn!(pod = %format!("{ns}/{name}"), error = %source, "marking pod not ready failed");
                first_error.get_or_insert(Error::Pod { pod: format!("{ns}/{name}"), source });
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn node_reference(node: &Node) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Node".into()),
        name: node.metadata.name.clone(),
        uid: node.metadata.uid.clone(),
        ..Default::default()
    }
}

// ---- the monitor ---------------------------------------------------------------------------

struct Monitor {
    client: kube::Client,
    config: Config,
    nodes: Store<Node>,
    leases: Store<Lease>,
    pods: Store<Pod>,
    recorder: Recorder,
    health: Arc<Mutex<HashMap<String, Health>>>,
    known: HashMap<String, Arc<Node>>,
    retry: HashSet<String>,
    zones: HashMap<String, ZoneState>,
    tainters: HashMap<String, Tainter>,
}

impl Monitor {
    fn nodes_api(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    fn saved(&self, name: &str) -> Option<Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }

    fn save(&self, name: &str, health: Health) {
        self.health.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), health);
    }

    fn lease_renew(&self, name: &str) -> Option<Timestamp> {
        self.leases.get(&ObjectRef::new(name).within(LEASE_NAMESPACE))?.spec.as_ref()?.renew_time.as_ref().map(|t| t.0)
    }

    fn tainter(&mut self, zone: &str) -> &mut Tainter {
        let qps = self.config.eviction_rate;
        self.zones.entry(zone.to_string()).or_insert(ZoneState::Initial);
        self.tainters.entry(zone.to_string()).or_insert_with(|| Tainter::new(qps))
    }

    fn pods_on(&self, node: &str) -> Vec<Arc<Pod>> {
        self.pods.state().into_iter().filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node)).collect()
    }

    /// Upstream's markNodeAsReachable: no NoExecute not-ready/unreachable taint, out of the queue.
    async fn mark_reachable(&mut self, node: &Node) -> Result<bool, Error> {
        let remove = [template(TAINT_UNREACHABLE, NO_EXECUTE), template(TAINT_NOT_READY, NO_EXECUTE)];
        swap_taints(&self.nodes_api(), node, &[], &remove).await?;
        let name = node.metadata.name.as_deref().unwrap_or_default();
        Ok(self.tainter(&zone_key(node)).remove(name))
    }

    /// One look at one node, retrying with a fresh read after a failed write.
    async fn update_health(&mut self, node: &Node) -> Result<(Node, Observation), Error> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let mut node = node.clone();
        let mut attempt = 0;
        loop {
            let obs = observe(self.saved(&name).as_ref(), &node, self.lease_renew(&name), &self.config, Timestamp::now());
            let Some(updated) = &obs.write else {
                self.save(&name, obs.health.clone());
                return Ok((node, obs));
            };
            match self.nodes_api().replace_status(&name, &PostParams::default(), updated).await {
                Ok(written) => {
                    info!(node = %name, "node stopped posting status; conditions now Unknown");
                    self.save(&name, obs.health.clone());
                    return Ok((written, obs));
                }
                Err(source) if attempt + 1 < RETRIES => {
                    debug!(node = %name, error = %source, "node status write failed; reading it again");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    node = self.nodes_api().get(&name).await.map_err(|source| Error::Status { node: name.clone(), source })?;
                }
                Err(source) => return Err(Error::Status { node: name, source }),
            }
        }
    }

    /// Upstream's processTaintBaseEviction.
    async fn taint_based_eviction(&mut self, node: &Node, observed: &NodeCondition) -> Result<(), Error> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let (taint, opposite) = match observed.status.as_str() {
            "False" => (TAINT_NOT_READY, TAINT_UNREACHABLE),
            "Unknown" => (TAINT_UNREACHABLE, TAINT_NOT_READY),
            _ => {
                if self.mark_reachable(node).await? {
                    info!(node = %name, "node is healthy again; removed its NoExecute taint");
                }
                return Ok(());
            }
        };
        if has_taint(node, opposite, NO_EXECUTE) {
            // Already evicting: switch the taint straight away.
            return swap_taints(&self.nodes_api(), node, &[template(taint, NO_EXECUTE)], &[template(opposite, NO_EXECUTE)]).await;
        }
        let tainter = self.tainter(&zone_key(node));
        if !has_taint(node, taint, NO_EXECUTE) {
            tainter.remove(&name);
        }
        if tainter.add(&name) {
            debug!(node = %name, status = %observed.status, "adding the node to the taint queue");
        }
        Ok(())
    }

    async fn monitor_node(&mut self, node: &Node) -> Result<Option<Option<String>>, Error> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let (node, obs) = self.update_health(node).await?;
        let current = obs.current_ready.as_ref().map(|c| c.status.clone());
        if let Some(current_status) = &current {
            self.taint_based_eviction(&node, &obs.observed_ready).await?;
            let pods = self.pods_on(&name);
            let went_down = current_status != "True" && obs.observed_ready.status == "True";
            if went_down {
                self.recorder.publish(node_reference(&node), "Normal", "NodeNotReady", format!("Node {name} status is now: NodeNotReady"));
            }
            if (went_down || (self.retry.contains(&name) && obs.observed_ready.status != "True"))
                && let Err(e) = mark_pods_not_ready(&self.client, &self.recorder, &pods, &name).await
            {
                self.retry.insert(name);
                return Err(e);
            }
        }
        self.retry.remove(&name);
        let excluded = node.metadata.labels.as_ref().is_some_and(|l| l.contains_key(EXCLUDE_DISRUPTION));
        Ok((!excluded).then_some(current))
    }

    /// Upstream's monitorNodeHealth: one pass over every node.
    async fn pass(&mut self) {
        let nodes = self.nodes.state();
        let names: HashSet<String> = nodes.iter().filter_map(|n| n.metadata.name.clone()).collect();
        for node in &nodes {
            let Some(name) = node.metadata.name.clone() else { continue };
            if self.known.contains_key(&name) {
                continue;
            }
            info!(node = %name, "controller observed a new node");
            self.recorder.publish(node_reference(node), "Normal", "RegisteredNode", format!("Node {name} event: Registered Node {name} in Controller"));
            self.known.insert(name, node.clone());
            self.tainter(&zone_key(node));
            if let Err(e) = self.mark_reachable(node).await {
                warn!(error = %e, "removing NoExecute taints from a new node");
            }
        }
        let gone: Vec<String> = self.known.keys().filter(|k| !names.contains(*k)).cloned().collect();
        for name in gone {
            if let Some(node) = self.known.remove(&name) {
                info!(node = %name, "controller observed a node deletion");
                self.recorder.publish(node_reference(&node), "Normal", "RemovingNode", format!("Node {name} event: Removing Node {name} from Controller"));
            }
            self.health.lock().unwrap_or_else(|p| p.into_inner()).remove(&name);
            self.retry.remove(&name);
            for tainter in self.tainters.values_mut() {
                tainter.remove(&name);
            }
        }
        let mut zone_ready: HashMap<String, Vec<Option<String>>> = HashMap::new();
        for node in &nodes {
            let span = tracing::info_span!("reconcile", controller = NAME, key = node.metadata.name.as_deref().unwrap_or(""));
            let _enter = span.enter();
            match self.monitor_node(node).await {
                Ok(Some(ready)) => zone_ready.entry(zone_key(node)).or_default().push(ready),
                Ok(None) => {}
                Err(e) => warn!(error = %e, "updating node health failed; no pods will be evicted this pass"),
            }
        }
        self.handle_disruption(&zone_ready, &nodes).await;
        self.tainting_pass().await;
    }

    /// Upstream's handleDisruption: zone states decide the taint rate.
    async fn handle_disruption(&mut self, zone_ready: &HashMap<String, Vec<Option<String>>>, nodes: &[Arc<Node>]) {
        let new_states: HashMap<String, (ZoneState, usize)> = zone_ready
            .iter()
            .map(|(zone, ready)| {
                let statuses: Vec<Option<&str>> = ready.iter().map(|s| s.as_deref()).collect();
                (zone.clone(), (zone_state(&statuses, self.config.unhealthy_zone_threshold), ready.len()))
            })
            .collect();
        for zone in new_states.keys() {
            self.zones.entry(zone.clone()).or_insert(ZoneState::Initial);
        }
        self.zones.retain(|zone, _| new_states.contains_key(zone));
        let all_are_full = new_states.values().all(|(s, _)| *s == ZoneState::FullDisruption);
        let all_were_full = self.zones.values().all(|s| *s == ZoneState::FullDisruption);
        if all_are_full && all_were_full {
            return;
        }
        if all_are_full {
            info!("every node is not ready; entering master disruption mode");
            for node in nodes {
                if let Err(e) = self.mark_reachable(node).await {
                    warn!(error = %e, "removing NoExecute taints");
                }
            }
            for zone in self.zones.keys().cloned().collect::<Vec<_>>() {
                self.tainter(&zone).limiter.swap(0.0);
                self.zones.insert(zone, ZoneState::FullDisruption);
            }
            return;
        }
        if all_were_full {
            info!("some nodes are ready; exiting master disruption mode");
            let now = Timestamp::now();
            for health in self.health.lock().unwrap_or_else(|p| p.into_inner()).values_mut() {
                health.probe = now;
                health.ready_transition = now;
            }
        }
        for (zone, (state, size)) in new_states {
            if !all_were_full && self.zones.get(&zone) == Some(&state) {
                continue;
            }
            let qps = match state {
                ZoneState::PartialDisruption if i32::try_from(size).unwrap_or(i32::MAX) > self.config.large_cluster_threshold => self.config.secondary_eviction_rate,
                ZoneState::PartialDisruption => 0.0,
                _ => self.config.eviction_rate,
            };
            info!(zone = %zone, ?state, "zone is in a new state");
            self.tainter(&zone).limiter.swap(qps);
            self.zones.insert(zone, state);
        }
    }

    /// Upstream's doNoExecuteTaintingPass: NoExecute taints for the queued nodes, as the
    /// zone's limiter allows.
    async fn tainting_pass(&mut self) {
        let zones: Vec<String> = self.tainters.keys().cloned().collect();
        for zone in zones {
            while let Some(tainter) = self.tainters.get_mut(&zone) {
                let Some(name) = tainter.queue.front().cloned() else { break };
                if !tainter.limiter.try_accept() {
                    break;
                }
                let Some(node) = self.nodes.get(&ObjectRef::new(&name)) else {
                    tainter.remove(&name);
                    continue;
                };
                let (taint, opposite) = match condition(&node, "Ready").map(|c| c.status.as_str()) {
                    Some("False") => (TAINT_NOT_READY, TAINT_UNREACHABLE),
                    Some("Unknown") => (TAINT_UNREACHABLE, TAINT_NOT_READY),
                    // No Ready condition yet: try again on the next pass.
                    None => break,
                    // Ready again: nothing to do.
                    Some(_) => {
                        tainter.queue.pop_front();
                        continue;
                    }
                };
                match swap_taints(&self.nodes_api(), &node, &[template(taint, NO_EXECUTE)], &[template(opposite, NO_EXECUTE)]).await {
                    Ok(()) => {
                        info!(node = %name, taint, "node tainted for eviction");
                        if let Some(t) = self.tainters.get_mut(&zone) {
                            t.queue.pop_front();
                        }
                    }
                    Err(e) => {
                        warn!(node = %name, error = %e, "adding the NoExecute taint failed; will retry");
                        break;
                    }
                }
            }
        }
    }
}

// ---- per-node NoSchedule taints and labels -------------------------------------------------

struct NodeCtx {
    client: kube::Client,
}

#[instrument(skip_all, fields(controller = NAME, key = node.metadata.name.as_deref().unwrap_or("")))]
async fn reconcile_node(node: Arc<Node>, ctx: Arc<NodeCtx>) -> Result<Action, Error> {
    let api: Api<Node> = Api::all(ctx.client.clone());
    let (add, remove) = taint_diff(&wanted_no_schedule(&node), &owned_no_schedule(&node));
    if !add.is_empty() || !remove.is_empty() {
        swap_taints(&api, &node, &add, &remove).await?;
    }
    let labels = labels_to_update(&node);
    if !labels.is_empty() {
        let name = node.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": labels}})))
            .await
            .map_err(|source| Error::Labels { node: name, source })?;
    }
    Ok(Action::await_change())
}

/// Pods newly bound to a node that is not Ready are marked NotReady (upstream's processPod).
async fn process_pods(client: kube::Client, recorder: Recorder, health: Arc<Mutex<HashMap<String, Health>>>, mut changes: futures::stream::BoxStream<'static, Change<Pod>>, stop: CancellationToken) {
    loop {
        let change = tokio::select! {
            _ = stop.cancelled() => return,
            c = changes.next() => match c { Some(c) => c, None => return },
        };
        let node_of = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty());
        let (pod, moved) = match &change {
            Change::Added(p) => (p.clone(), node_of(p).is_some()),
            Change::Updated { old, new } => (new.clone(), node_of(new).is_some() && node_of(old) != node_of(new)),
            Change::Deleted(_) => continue,
        };
        let Some(node) = node_of(&pod).filter(|_| moved) else { continue };
        let ready = health.lock().unwrap_or_else(|p| p.into_inner()).get(&node).and_then(|h| h.ready.as_ref().map(|c| c.status.clone()));
        if ready.is_some_and(|s| s != "True")
            && let Err(e) = mark_pods_not_ready(&client, &recorder, &[pod], &node).await
        {
            warn!(error = %e, "marking a pod on a not-ready node");
        }
    }
}

pub async fn run(client: kube::Client, config: Config, stop: CancellationToken) {
    let (nodes, node_changes) = informer::informer(Api::<Node>::all(client.clone()), watcher::Config::default(), "nodes");
    let (leases, lease_changes) = informer::informer(Api::<Lease>::namespaced(client.clone(), LEASE_NAMESPACE), watcher::Config::default(), "leases");
    let (pods, pod_changes) = informer::informer(Api::<Pod>::all(client.clone()), watcher::Config::default(), "pods");
    let recorder = Recorder::new(client.clone(), EVENT_SOURCE);
    let health = Arc::new(Mutex::new(HashMap::new()));
    let mut tasks = tokio::task::JoinSet::new();
    // Leases only need their store filled.
    tasks.spawn(lease_changes.take_until(stop.clone().cancelled_owned()).for_each(|_| async {}));
    tasks.spawn(process_pods(client.clone(), recorder.clone(), health.clone(), pod_changes, stop.clone()));
    tasks.spawn(informer::run(NAME, nodes.clone(), informer::live_changes(node_changes).boxed(), Arc::new(NodeCtx { client: client.clone() }), reconcile_node, informer::Retry::default(), stop.clone()));
    info!(?config, "starting the node lifecycle controller");
    let ready = async {
        informer::synced(&nodes).await?;
        informer::synced(&leases).await?;
        informer::synced(&pods).await?;
        debug!("caches synced");
        Ok::<(), informer::ReconcileError>(())
    };
    let synced = tokio::select! {
        _ = stop.cancelled() => false,
        r = ready => r.is_ok(),
    };
    if synced {
        let period = config.monitor_period;
        let mut monitor = Monitor {
            client,
            config,
            nodes,
            leases,
            pods,
            recorder,
            health,
            known: HashMap::new(),
            retry: HashSet::new(),
            zones: HashMap::new(),
            tainters: HashMap::new(),
        };
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => monitor.pass().await,
            }
        }
    }
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).expect("timestamp")
    }

    fn node(value: serde_json::Value) -> Node {
        serde_json::from_value(value).expect("node")
    }

    fn ready_node(heartbeat: i64, status: &str) -> Node {
        let t = |s: i64| ironkube_machinery::node_status::time(at(s));
        node(json!({
            "metadata": {"name": "n1", "creationTimestamp": t(0)},
            "status": {"conditions": [
                {"type": "MemoryPressure", "status": "False", "lastHeartbeatTime": t(heartbeat), "lastTransitionTime": t(0), "reason": "KubeletHasSufficientMemory"},
                {"type": "Ready", "status": status, "lastHeartbeatTime": t(heartbeat), "lastTransitionTime": t(0), "reason": "KubeletReady"},
            ]},
        }))
    }

    fn taint(key: &str, effect: &str) -> Taint {
        template(key, effect)
    }

    #[test]
    fn heartbeats_move_the_probe_time() {
        let config = Config::default();
        // First look: now is the probe time.
        let first = observe(None, &ready_node(10, "True"), None, &config, at(12));
        assert_eq!(first.health.probe, at(12));
        assert!(first.write.is_none());
        // Same heartbeat later: the probe stays.
        let same = observe(Some(&first.health), &ready_node(10, "True"), None, &config, at(30));
        assert_eq!(same.health.probe, at(12));
        // A renewed lease is a heartbeat.
        let leased = observe(Some(&same.health), &ready_node(10, "True"), Some(at(40)), &config, at(41));
        assert_eq!(leased.health.probe, at(41));
        let again = observe(Some(&leased.health), &ready_node(10, "True"), Some(at(40)), &config, at(45));
        assert_eq!(again.health.probe, at(41), "the same renewTime is no heartbeat");
        // A new Ready heartbeat is one too.
        let posted = observe(Some(&again.health), &ready_node(60, "True"), Some(at(40)), &config, at(61));
        assert_eq!(posted.health.probe, at(61));
    }

    #[test]
    fn silence_past_the_grace_period_makes_conditions_unknown() {
        let config = Config::default();
        let first = observe(None, &ready_node(10, "True"), None, &config, at(10));
        // 50 s is the grace period: at 60 still fine, after it Unknown.
        assert!(observe(Some(&first.health), &ready_node(10, "True"), None, &config, at(60)).write.is_none());
        let late = observe(Some(&first.health), &ready_node(10, "True"), None, &config, at(61));
        let written = late.write.expect("status write");
        let ready = condition(&written, "Ready").expect("ready");
        assert_eq!((ready.status.as_str(), ready.reason.as_deref(), ready.message.as_deref()), ("Unknown", Some("NodeStatusUnknown"), Some("Kubelet stopped posting node status.")));
        assert_eq!(ready.last_transition_time, Some(Time(at(61))));
        assert_eq!(ready.last_heartbeat_time, Some(Time(at(10))), "the heartbeat time is the kubelet's");
        assert_eq!(condition(&written, "MemoryPressure").map(|c| c.status.as_str()), Some("Unknown"));
        let never = condition(&written, "DiskPressure").expect("added");
        assert_eq!((never.reason.as_deref(), never.message.as_deref()), (Some("NodeStatusNeverUpdated"), Some("Kubelet never posted node status.")));
        assert_eq!(late.observed_ready.status, "True");
        assert_eq!(late.current_ready.map(|c| c.status), Some("Unknown".into()));
        // Once written (and seen back), nothing more to write.
        let seen = observe(Some(&late.health), &written, None, &config, at(70));
        assert!(seen.write.is_none());
        assert_eq!(seen.observed_ready.status, "Unknown");
    }

    #[test]
    fn a_node_that_never_posted_gets_the_startup_grace_period() {
        let config = Config::default();
        let bare = node(json!({"metadata": {"name": "n1", "creationTimestamp": ironkube_machinery::node_status::time(at(0))}}));
        assert!(observe(None, &bare, None, &config, at(60)).write.is_none());
        let late = observe(None, &bare, None, &config, at(61));
        let written = late.write.expect("write");
        let ready = condition(&written, "Ready").expect("ready");
        assert_eq!((ready.status.as_str(), ready.reason.as_deref()), ("Unknown", Some("NodeStatusNeverUpdated")));
        assert_eq!(ready.last_heartbeat_time, Some(Time(at(0))));
        assert_eq!(conditions(&written).len(), 4);
        // A lease keeps it healthy though.
        assert!(observe(None, &bare, Some(at(59)), &config, at(61)).write.is_none());
    }

    #[test]
    fn no_schedule_taints_follow_conditions() {
        let sick = node(json!({
            "metadata": {"name": "n1"},
            "spec": {"unschedulable": true, "taints": [
                {"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule"},
                {"key": "example.com/mine", "effect": "NoSchedule"},
                {"key": TAINT_UNREACHABLE, "effect": "NoExecute"},
            ]},
            "status": {"conditions": [
                {"type": "Ready", "status": "Unknown"},
                {"type": "DiskPressure", "status": "True"},
                {"type": "MemoryPressure", "status": "False"},
            ]},
        }));
        let want = wanted_no_schedule(&sick);
        let keys: Vec<&str> = want.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, [TAINT_UNREACHABLE, "node.kubernetes.io/disk-pressure", TAINT_NODE_UNSCHEDULABLE]);
        let (add, remove) = taint_diff(&want, &owned_no_schedule(&sick));
        assert_eq!(add.len(), 3);
        assert_eq!(remove, vec![taint("node.kubernetes.io/memory-pressure", NO_SCHEDULE)], "only our own taints are removed");
    }

    #[test]
    fn swapping_taints_is_one_list() {
        let now = at(5);
        let current = vec![taint("a", NO_SCHEDULE), taint(TAINT_NOT_READY, NO_EXECUTE)];
        let new = swapped(&current, &[taint(TAINT_UNREACHABLE, NO_EXECUTE)], &[taint(TAINT_NOT_READY, NO_EXECUTE)], now).expect("changed");
        assert_eq!(new.len(), 2);
        assert_eq!(new[1].key, TAINT_UNREACHABLE);
        assert_eq!(new[1].time_added, Some(Time(now)));
        assert_eq!(swapped(&new, &[taint(TAINT_UNREACHABLE, NO_EXECUTE)], &[], at(9)), None, "present already: untouched");
        assert_eq!(swapped(&current, &[], &[taint("zzz", NO_EXECUTE)], now), None);
    }

    #[test]
    fn zone_states() {
        let t = Some("True");
        let f = Some("False");
        let cases: [(&str, Vec<Option<&str>>, ZoneState); 5] = [
            ("all ready", vec![t, t, t], ZoneState::Normal),
            ("none ready", vec![f, None], ZoneState::FullDisruption),
            ("two of three down is not enough nodes", vec![t, f, f], ZoneState::Normal),
            ("three of four down", vec![t, f, f, None], ZoneState::PartialDisruption),
            ("three of ten down", vec![t, t, t, t, t, t, t, f, f, f], ZoneState::Normal),
        ];
        for (name, ready, want) in cases {
            assert_eq!(zone_state(&ready, 0.55), want, "{name}");
        }
    }

    #[test]
    fn zone_keys_and_labels() {
        let plain = node(json!({"metadata": {"name": "n", "labels": {"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "beta.kubernetes.io/arch": "arm64"}}}));
        assert_eq!(zone_key(&plain), "");
        let labels = labels_to_update(&plain);
        assert_eq!(labels.get("beta.kubernetes.io/os").map(String::as_str), Some("linux"));
        assert_eq!(labels.get("beta.kubernetes.io/arch").map(String::as_str), Some("amd64"));
        let zoned = node(json!({"metadata": {"name": "n", "labels": {"topology.kubernetes.io/region": "r", "topology.kubernetes.io/zone": "z"}}}));
        assert_eq!(zone_key(&zoned), "r:\u{0}:z");
    }

    #[test]
    fn tainted_nodes_stay_members_until_removed() {
        let mut t = Tainter::new(1.0);
        assert!(t.add("a"));
        assert!(!t.add("a"));
        t.queue.pop_front();
        assert!(!t.add("a"), "processed but not removed: not queued again");
        assert!(t.remove("a"));
        assert!(t.add("a"));
        assert_eq!(t.queue.len(), 1);
    }

    #[test]
    fn limiter_allows_one_then_waits() {
        let mut l = Limiter::new(0.1);
        assert!(l.try_accept());
        assert!(!l.try_accept());
        let mut stopped = Limiter::new(0.0);
        assert!(!stopped.try_accept());
    }
}
