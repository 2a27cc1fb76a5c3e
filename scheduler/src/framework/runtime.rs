//! A profile's plugins wired to the extension points, and the code that runs them in
//! upstream's order: PreFilter (Skip and node narrowing), Filter (first rejection wins, with
//! nominated pods), PostFilter, PreScore, Score (normalize, weight), Reserve, Bind.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use super::cycle_state::CycleState;
use super::interface::{ClusterEvent, Handle, MAX_NODE_SCORE, MIN_NODE_SCORE, NodeScore, Plugin, PostFilterResult, PreFilterResult};
use super::node_info::{NodeInfo, PodExt, PodInfo};
use super::status::{Code, Status};
use crate::cache::Snapshot;
use crate::config::Profile;

/// Why a profile could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{extension_point} plugin {name:?} does not exist")]
    UnknownPlugin { extension_point: &'static str, name: String },
    #[error("plugin {name:?} does not extend {extension_point} plugin")]
    NotExtending { extension_point: &'static str, name: String },
    #[error("plugin {name:?} already registered as {extension_point:?}")]
    DoubleRegistration { extension_point: &'static str, name: String },
    #[error("initializing plugin {name:?}: {message}")]
    Init { name: String, message: String },
    #[error("at least one bind plugin is needed for profile with scheduler name {0:?}")]
    NoBinder(String),
}

/// The status of every node a pod was filtered against, and the status of those not tried.
#[derive(Debug, Clone)]
pub struct NodeToStatus {
    map: HashMap<String, Status>,
    absent: Status,
}

impl Default for NodeToStatus {
    fn default() -> Self {
        NodeToStatus { map: HashMap::new(), absent: Status::new(Code::UnschedulableAndUnresolvable, Vec::<String>::new()) }
    }
}

impl NodeToStatus {
    pub fn get(&self, node: &str) -> &Status {
        self.map.get(node).unwrap_or(&self.absent)
    }

    pub fn set(&mut self, node: String, status: Status) {
        self.map.insert(node, status);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn set_absent(&mut self, status: Status) {
        self.absent = status;
    }

    pub fn absent(&self) -> &Status {
        &self.absent
    }

    pub fn explicit(&self) -> impl Iterator<Item = (&String, &Status)> {
        self.map.iter()
    }

    /// The nodes of `snapshot` whose status has `code` (absent nodes count with the absent
    /// status), in snapshot order.
    pub fn nodes_for_code(&self, snapshot: &Snapshot, code: Code) -> Vec<Arc<NodeInfo>> {
        if self.absent.code() == code {
            snapshot.list().iter().filter(|n| self.map.get(n.name()).is_none_or(|s| s.code() == code)).cloned().collect()
        } else {
            snapshot.list().iter().filter(|n| self.map.get(n.name()).is_some_and(|s| s.code() == code)).cloned().collect()
        }
    }
}

/// Why a pod did not fit, node by node.
#[derive(Debug, Clone, Default)]
pub struct Diagnosis {
    pub node_to_status: NodeToStatus,
    pub unschedulable_plugins: BTreeSet<&'static str>,
    pub pre_filter_msg: String,
    pub post_filter_msg: String,
}

impl Diagnosis {
    pub fn add_plugin_status(&mut self, status: &Status) {
        if let Some(plugin) = status.plugin() {
            if status.is_rejected() {
                self.unschedulable_plugins.insert(plugin);
            }
        }
    }
}

/// No node fits the pod (upstream's `FitError`); its message is what users read in the
/// FailedScheduling event and the PodScheduled condition.
#[derive(Debug, Clone)]
pub struct FitError {
    pub num_all_nodes: usize,
    pub diagnosis: Diagnosis,
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0/{} nodes are available:", self.num_all_nodes)?;
        let d = &self.diagnosis;
        if !d.pre_filter_msg.is_empty() {
            write!(f, " {}.", d.pre_filter_msg)?;
        } else {
            let mut reasons: HashMap<&str, usize> = HashMap::new();
            for (_, status) in d.node_to_status.explicit() {
                for r in status.reasons() {
                    *reasons.entry(r).or_insert(0) += 1;
                }
            }
            if d.node_to_status.len() < self.num_all_nodes {
                let absent = self.num_all_nodes - d.node_to_status.len();
                for r in d.node_to_status.absent().reasons() {
                    *reasons.entry(r).or_insert(0) += absent;
                }
            }
            let mut lines: Vec<String> = reasons.into_iter().map(|(r, n)| format!("{n} {r}")).collect();
            lines.sort();
            if !lines.is_empty() {
                write!(f, " {}.", lines.join(", "))?;
            }
        }
        if !d.post_filter_msg.is_empty() {
            write!(f, " {}", d.post_filter_msg)?;
        }
        Ok(())
    }
}

/// One node's scores, per plugin (weighted) and in total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePluginScores {
    pub name: String,
    pub scores: Vec<(&'static str, i64)>,
    pub total: i64,
}

/// A scheduling profile: its plugins at each extension point, ready to run.
pub struct Framework {
    profile_name: String,
    percentage_of_nodes_to_score: Option<i32>,
    plugins: Vec<Arc<dyn Plugin>>,
    pre_enqueue: Vec<Arc<dyn Plugin>>,
    pre_filter: Vec<Arc<dyn Plugin>>,
    filter: Vec<Arc<dyn Plugin>>,
    post_filter: Vec<Arc<dyn Plugin>>,
    pre_score: Vec<Arc<dyn Plugin>>,
    score: Vec<(Arc<dyn Plugin>, i64)>,
    reserve: Vec<Arc<dyn Plugin>>,
    bind: Vec<Arc<dyn Plugin>>,
    handle: Arc<Handle>,
}

/// How to make a plugin from its args.
pub type Constructor = fn(Option<&serde_json::Value>, &Arc<Handle>) -> Result<Arc<dyn Plugin>, String>;

/// Plugin names and their constructors.
pub type Registry = Vec<(&'static str, Constructor)>;

/// The plugins of one extension point, as upstream's `expandMultiPointPlugins` orders them:
/// plugins also configured explicitly at this point first (in that order), then the
/// MultiPoint ones implementing it, then the rest of the explicit ones. Score weights come
/// from the explicit entry, else from MultiPoint; an unset or zero weight counts as 1.
fn expand_extension_point(
    profile: &Profile,
    instances: &HashMap<String, Arc<dyn Plugin>>,
    point: &'static str,
    implements: fn(&dyn Plugin) -> bool,
) -> Result<Vec<(Arc<dyn Plugin>, i64)>, Error> {
    let set = profile.plugins.point(point);
    let lookup = |name: &str| instances.get(name).cloned().ok_or_else(|| Error::UnknownPlugin { extension_point: point, name: name.to_string() });
    let weight = |w: Option<i32>| i64::from(w.filter(|w| *w != 0).unwrap_or(1));
    let mut explicit: Vec<(Arc<dyn Plugin>, i64)> = Vec::new();
    for p in &set.enabled {
        let plugin = lookup(&p.name)?;
        if !implements(plugin.as_ref()) {
            return Err(Error::NotExtending { extension_point: point, name: p.name.clone() });
        }
        if explicit.iter().any(|(q, _)| q.name() == plugin.name()) {
            return Err(Error::DoubleRegistration { extension_point: point, name: p.name.clone() });
        }
        explicit.push((plugin, weight(p.weight)));
    }
    if set.disabled.iter().any(|d| d.name == "*") {
        return Ok(explicit);
    }
    let mut overrides: Vec<&str> = Vec::new();
    let mut multi_point: Vec<(Arc<dyn Plugin>, i64)> = Vec::new();
    for p in &profile.plugins.multi_point.enabled {
        let plugin = lookup(&p.name)?;
        if !implements(plugin.as_ref()) || set.disabled.iter().any(|d| d.name == p.name) {
            continue;
        }
        if set.enabled.iter().any(|e| e.name == p.name) {
            overrides.push(plugin.name());
            continue;
        }
        if multi_point.iter().any(|(q, _)| q.name() == plugin.name()) {
            return Err(Error::DoubleRegistration { extension_point: point, name: p.name.clone() });
        }
        multi_point.push((plugin, weight(p.weight)));
    }
    let (first, rest): (Vec<_>, Vec<_>) = explicit.into_iter().partition(|(p, _)| overrides.contains(&p.name()));
    Ok(first.into_iter().chain(multi_point).chain(rest).collect())
}

impl Framework {
    /// Instantiates the plugins `profile` names and wires them up.
    pub fn new(profile: &Profile, registry: &Registry, handle: Arc<Handle>) -> Result<Framework, Error> {
        let mut instances: HashMap<String, Arc<dyn Plugin>> = HashMap::new();
        for name in profile.plugin_names() {
            let Some((_, ctor)) = registry.iter().find(|(n, _)| *n == name) else {
                return Err(Error::UnknownPlugin { extension_point: "Plugin", name });
            };
            let plugin = ctor(profile.plugin_args(&name), &handle).map_err(|message| Error::Init { name: name.clone(), message })?;
            instances.insert(name, plugin);
        }
        let ext = |point: &'static str, implements: fn(&dyn Plugin) -> bool| -> Result<Vec<(Arc<dyn Plugin>, i64)>, Error> {
            expand_extension_point(profile, &instances, point, implements)
        };
        let strip = |v: Vec<(Arc<dyn Plugin>, i64)>| v.into_iter().map(|(p, _)| p).collect::<Vec<_>>();
        let fw = Framework {
            profile_name: profile.scheduler_name.clone(),
            percentage_of_nodes_to_score: profile.percentage_of_nodes_to_score,
            pre_enqueue: strip(ext("PreEnqueue", |p| p.as_pre_enqueue().is_some())?),
            pre_filter: strip(ext("PreFilter", |p| p.as_pre_filter().is_some())?),
            filter: strip(ext("Filter", |p| p.as_filter().is_some())?),
            post_filter: strip(ext("PostFilter", |p| p.as_post_filter().is_some())?),
            pre_score: strip(ext("PreScore", |p| p.as_pre_score().is_some())?),
            score: ext("Score", |p| p.as_score().is_some())?,
            reserve: strip(ext("Reserve", |p| p.as_reserve().is_some())?),
            bind: strip(ext("Bind", |p| p.as_bind().is_some())?),
            plugins: {
                let mut all: Vec<_> = instances.into_values().collect();
                all.sort_by_key(|p| p.name());
                all
            },
            handle,
        };
        if fw.bind.is_empty() {
            return Err(Error::NoBinder(fw.profile_name));
        }
        Ok(fw)
    }

    pub fn profile_name(&self) -> &str {
        &self.profile_name
    }

    pub fn percentage_of_nodes_to_score(&self) -> Option<i32> {
        self.percentage_of_nodes_to_score
    }

    pub fn handle(&self) -> &Arc<Handle> {
        &self.handle
    }

    pub fn has_filter_plugins(&self) -> bool {
        !self.filter.is_empty()
    }

    pub fn has_score_plugins(&self) -> bool {
        !self.score.is_empty()
    }

    pub fn has_post_filter_plugins(&self) -> bool {
        !self.post_filter.is_empty()
    }

    /// Every plugin with the events it registered (`None`: any event), for the queue.
    pub fn enqueue_extensions(&self) -> Vec<(Arc<dyn Plugin>, Option<Vec<ClusterEvent>>)> {
        self.plugins.iter().map(|p| (p.clone(), p.events_to_register())).collect()
    }

    pub fn bind_plugins(&self) -> &[Arc<dyn Plugin>] {
        &self.bind
    }

    /// Whether the pod may enter the active queue; the first rejection carries its plugin.
    pub fn run_pre_enqueue(&self, pod: &Pod) -> Status {
        for p in &self.pre_enqueue {
            if let Some(pe) = p.as_pre_enqueue() {
                let s = pe.pre_enqueue(pod);
                if !s.is_success() {
                    return s.with_plugin(p.name());
                }
            }
        }
        Status::success()
    }

    /// Runs every PreFilter plugin: Skip marks its Filter skipped; UnschedulableAndUnresolvable
    /// stops at once; Unschedulable lets the others run (preemption needs their state);
    /// node restrictions intersect. Returns the plugins that restricted nodes.
    pub fn run_pre_filter(&self, state: &mut CycleState, pod: &PodInfo) -> (PreFilterResult, Status, BTreeSet<&'static str>) {
        let mut result = PreFilterResult::all_nodes();
        let mut with_nodes = BTreeSet::new();
        let mut returned = Status::success();
        for p in &self.pre_filter {
            let Some(pf) = p.as_pre_filter() else { continue };
            let (r, mut s) = pf.pre_filter(state, pod);
            if s.is_skip() {
                state.skip_filter_plugins.insert(p.name());
                continue;
            }
            if !s.is_success() {
                s.set_plugin(p.name());
                match s.code() {
                    Code::UnschedulableAndUnresolvable => return (PreFilterResult::all_nodes(), s, BTreeSet::new()),
                    Code::Unschedulable => {
                        returned = s;
                        continue;
                    }
                    _ => return (PreFilterResult::all_nodes(), Status::error(format!("running PreFilter plugin {:?}: {}", p.name(), s.message())).with_plugin(p.name()), BTreeSet::new()),
                }
            }
            if !r.is_all_nodes() {
                with_nodes.insert(p.name());
            }
            result = result.merge(r);
            if result.node_names.as_ref().is_some_and(BTreeSet::is_empty) {
                let names: Vec<_> = with_nodes.iter().copied().collect();
                let msg = if names.len() == 1 { format!("node(s) didn't satisfy plugin {}", names[0]) } else { format!("node(s) didn't satisfy plugin(s) [{}] simultaneously", names.join(" ")) };
                return (result, Status::unresolvable(msg), with_nodes);
            }
        }
        (result, returned, with_nodes)
    }

    pub fn run_pre_filter_add_pod(&self, state: &mut CycleState, pod: &PodInfo, to_add: &Arc<PodInfo>, node: &NodeInfo) -> Status {
        for p in &self.pre_filter {
            if state.skip_filter_plugins.contains(p.name()) {
                continue;
            }
            if let Some(pf) = p.as_pre_filter() {
                let s = pf.add_pod(state, pod, to_add, node);
                if !s.is_success() {
                    return Status::error(format!("running AddPod on PreFilter plugin {:?}: {}", p.name(), s.message()));
                }
            }
        }
        Status::success()
    }

    pub fn run_pre_filter_remove_pod(&self, state: &mut CycleState, pod: &PodInfo, to_remove: &Arc<PodInfo>, node: &NodeInfo) -> Status {
        for p in &self.pre_filter {
            if state.skip_filter_plugins.contains(p.name()) {
                continue;
            }
            if let Some(pf) = p.as_pre_filter() {
                let s = pf.remove_pod(state, pod, to_remove, node);
                if !s.is_success() {
                    return Status::error(format!("running RemovePod on PreFilter plugin {:?}: {}", p.name(), s.message()));
                }
            }
        }
        Status::success()
    }

    /// Runs the Filter plugins on one node; the first one that does not pass decides.
    pub fn run_filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        for p in &self.filter {
            if state.skip_filter_plugins.contains(p.name()) {
                continue;
            }
            let Some(f) = p.as_filter() else { continue };
            let s = f.filter(state, pod, node);
            if !s.is_success() {
                let s = if s.is_rejected() { s } else { Status::error(format!("running {:?} filter plugin: {}", p.name(), s.message())) };
                return s.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Filters with the pods nominated to the node at equal or higher priority counted as
    /// running, then (if that passed and some were added) without them.
    pub fn run_filter_with_nominated_pods(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let nominated = match &self.handle.nominator {
            Some(n) => n.nominated_pods_for_node(node.name()),
            None => Vec::new(),
        };
        let priority = pod.pod.priority();
        let relevant: Vec<_> = nominated.into_iter().filter(|p| p.pod.priority() >= priority && p.uid() != pod.uid()).collect();
        if relevant.is_empty() {
            return self.run_filter(state, pod, node);
        }
        let mut state_with = state.clone();
        let mut node_with = node.clone();
        for p in &relevant {
            node_with.add_pod_info(p.clone());
            let s = self.run_pre_filter_add_pod(&mut state_with, pod, p, &node_with);
            if !s.is_success() {
                return s;
            }
        }
        let s = self.run_filter(&state_with, pod, &node_with);
        if !s.is_success() {
            return s;
        }
        self.run_filter(state, pod, node)
    }

    /// Runs PostFilter plugins until one succeeds; otherwise the last rejection's message.
    pub fn run_post_filter(&self, state: &CycleState, pod: &PodInfo, statuses: &NodeToStatus) -> (Option<PostFilterResult>, Status) {
        let mut reasons = Vec::new();
        let mut result = None;
        for p in &self.post_filter {
            let Some(pf) = p.as_post_filter() else { continue };
            let (r, s) = pf.post_filter(state, pod, statuses, self);
            if s.is_success() {
                return (r, s);
            }
            if s.code() == Code::UnschedulableAndUnresolvable {
                return (r, s.with_plugin(p.name()));
            }
            if !s.is_rejected() {
                return (None, s.with_plugin(p.name()));
            }
            reasons.extend(s.reasons().iter().cloned());
            if r.is_some() {
                result = r;
            }
        }
        (result, Status::new(Code::Unschedulable, reasons))
    }

    pub fn run_pre_score(&self, state: &mut CycleState, pod: &PodInfo, nodes: &[Arc<NodeInfo>]) -> Status {
        for p in &self.pre_score {
            let Some(ps) = p.as_pre_score() else { continue };
            let s = ps.pre_score(state, pod, nodes);
            if s.is_skip() {
                state.skip_score_plugins.insert(p.name());
                continue;
            }
            if !s.is_success() {
                return Status::error(format!("running PreScore plugin {:?}: {}", p.name(), s.message())).with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Scores every node with every (non-skipped) Score plugin, normalizes per plugin,
    /// checks the range and applies the weights.
    pub fn run_score(&self, state: &CycleState, pod: &PodInfo, nodes: &[Arc<NodeInfo>]) -> Result<Vec<NodePluginScores>, Status> {
        let plugins: Vec<_> = self.score.iter().filter(|(p, _)| !state.skip_score_plugins.contains(p.name())).collect();
        let mut per_plugin: Vec<Vec<NodeScore>> = Vec::with_capacity(plugins.len());
        for (p, _) in &plugins {
            let Some(sp) = p.as_score() else { continue };
            let mut scores = Vec::with_capacity(nodes.len());
            for n in nodes {
                let score = sp.score(state, pod, n).map_err(|s| Status::error(format!("running Score plugins: plugin {:?} failed with: {}", p.name(), s.message())))?;
                scores.push(NodeScore { name: n.name().to_string(), score });
            }
            let s = sp.normalize_score(state, pod, &mut scores);
            if !s.is_success() {
                return Err(Status::error(format!("running Normalize on Score plugins: plugin {:?} failed with: {}", p.name(), s.message())));
            }
            per_plugin.push(scores);
        }
        let mut out = Vec::with_capacity(nodes.len());
        for (i, n) in nodes.iter().enumerate() {
            let mut entry = NodePluginScores { name: n.name().to_string(), scores: Vec::with_capacity(plugins.len()), total: 0 };
            for ((p, weight), scores) in plugins.iter().zip(&per_plugin) {
                let score = scores[i].score;
                if !(MIN_NODE_SCORE..=MAX_NODE_SCORE).contains(&score) {
                    return Err(Status::error(format!(
                        "applying score defaultWeights on Score plugins: plugin {:?} returns an invalid score {score}, it should in the range of [{MIN_NODE_SCORE}, {MAX_NODE_SCORE}] after normalizing",
                        p.name()
                    )));
                }
                entry.scores.push((p.name(), score * weight));
                entry.total += score * weight;
            }
            out.push(entry);
        }
        Ok(out)
    }

    pub fn run_reserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) -> Status {
        for p in &self.reserve {
            if let Some(r) = p.as_reserve() {
                let s = r.reserve(state, pod, node);
                if !s.is_success() {
                    let s = if s.is_rejected() { s } else { Status::error(format!("running Reserve plugin {:?}: {}", p.name(), s.message())) };
                    return s.with_plugin(p.name());
                }
            }
        }
        Status::success()
    }

    pub fn run_unreserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) {
        for p in self.reserve.iter().rev() {
            if let Some(r) = p.as_reserve() {
                r.unreserve(state, pod, node);
            }
        }
    }

    /// Runs the bind plugins until one does not Skip.
    pub async fn run_bind(bind: Vec<Arc<dyn Plugin>>, pod: Arc<Pod>, node: String) -> Status {
        for p in bind {
            let Some(b) = p.as_bind() else { continue };
            let s = b.bind(pod.clone(), node.clone()).await;
            if s.is_skip() {
                continue;
            }
            if !s.is_success() {
                return Status::error(format!("running Bind plugin {:?}: {}", p.name(), s.message())).with_plugin(p.name());
            }
            return s;
        }
        Status::error("no bind plugin bound the pod")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit_error(statuses: &[(&str, Status)], all: usize) -> FitError {
        let mut d = Diagnosis::default();
        for (n, s) in statuses {
            d.node_to_status.set(n.to_string(), s.clone());
        }
        FitError { num_all_nodes: all, diagnosis: d }
    }

    #[test]
    fn fit_error_message_like_upstream() {
        let e = fit_error(
            &[
                ("n1", Status::unresolvable("node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }")),
                ("n2", Status::unschedulable("Insufficient cpu")),
                ("n3", Status::unschedulable("Insufficient cpu")),
            ],
            3,
        );
        assert_eq!(e.to_string(), "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu.");
        let mut with_post = e.clone();
        with_post.diagnosis.post_filter_msg = "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.".into();
        assert!(with_post.to_string().ends_with("2 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."));
        let mut pre = fit_error(&[], 2);
        pre.diagnosis.pre_filter_msg = "pod affinity terms conflict".into();
        assert_eq!(pre.to_string(), "0/2 nodes are available: pod affinity terms conflict.");
        let mut absent = fit_error(&[("n1", Status::unschedulable("Too many pods"))], 3);
        absent.diagnosis.node_to_status.set_absent(Status::unresolvable("Preemption is not helpful for scheduling"));
        assert_eq!(absent.to_string(), "0/3 nodes are available: 1 Too many pods, 2 Preemption is not helpful for scheduling.");
    }
}
