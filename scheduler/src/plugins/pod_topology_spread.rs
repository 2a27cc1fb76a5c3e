//! PodTopologySpread: `topologySpreadConstraints` with DoNotSchedule filter nodes whose
//! domain would exceed `maxSkew` over the least loaded domain; ScheduleAnyway constraints
//! (and, for pods without constraints, the system defaults: hostname skew 3, zone skew 5,
//! over the pods of the same Services/ReplicaSet/StatefulSet/ReplicationController) score.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use ironkube_machinery::selectors::label::Selector;
use k8s_openapi::api::core::v1::{Node, Pod, TopologySpreadConstraint};
use serde::Deserialize;

use crate::framework::cycle_state::CycleState;
use crate::framework::interface::{ActionType, ClusterEvent, EventObject, EventResource, FilterPlugin, Handle, MAX_NODE_SCORE, NodeScore, Plugin, PreFilterPlugin, PreFilterResult, PreScorePlugin, QueueingHint, ScorePlugin};
use crate::framework::listers::Listers;
use crate::framework::node_info::{NodeExt, NodeInfo, PodExt, PodInfo};
use crate::framework::node_selector::RequiredNodeAffinity;
use crate::framework::status::Status;
use crate::framework::taints::{do_not_schedule, find_untolerated_taint};

pub const NAME: &str = "PodTopologySpread";
pub const ERR_REASON_CONSTRAINTS_NOT_MATCH: &str = "node(s) didn't match pod topology spread constraints";
pub const ERR_REASON_NODE_LABEL_NOT_MATCH: &str = "node(s) didn't match pod topology spread constraints (missing required label)";
pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
pub const LABEL_TOPOLOGY_ZONE: &str = "topology.kubernetes.io/zone";
const PRE_FILTER_KEY: &str = "PreFilterPodTopologySpread";
const PRE_SCORE_KEY: &str = "PreScorePodTopologySpread";
const DO_NOT_SCHEDULE: &str = "DoNotSchedule";
const SCHEDULE_ANYWAY: &str = "ScheduleAnyway";

/// Upstream's system default constraints.
pub fn system_default_constraints() -> Vec<TopologySpreadConstraint> {
    vec![
        TopologySpreadConstraint { topology_key: LABEL_HOSTNAME.into(), when_unsatisfiable: SCHEDULE_ANYWAY.into(), max_skew: 3, ..Default::default() },
        TopologySpreadConstraint { topology_key: LABEL_TOPOLOGY_ZONE.into(), when_unsatisfiable: SCHEDULE_ANYWAY.into(), max_skew: 5, ..Default::default() },
    ]
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Args {
    #[serde(default)]
    default_constraints: Vec<TopologySpreadConstraint>,
    #[serde(default)]
    defaulting_type: Option<String>,
}

/// A constraint ready to evaluate.
#[derive(Debug, Clone)]
pub struct Constraint {
    pub max_skew: i32,
    pub topology_key: String,
    pub selector: Selector,
    pub min_domains: i32,
    pub node_affinity_honor: bool,
    pub node_taints_honor: bool,
}

impl Constraint {
    fn includes_node(&self, pod: &Pod, node: &Node, required: &RequiredNodeAffinity) -> bool {
        if self.node_affinity_honor && !required.matches(node) {
            return false;
        }
        if self.node_taints_honor {
            let taints = node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default();
            let tolerations = pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or_default();
            if find_untolerated_taint(taints, tolerations, do_not_schedule).is_some() {
                return false;
            }
        }
        true
    }
}

/// Builds the constraints of one `whenUnsatisfiable` action, merging `matchLabelKeys`.
pub fn filter_constraints(constraints: &[TopologySpreadConstraint], pod_labels: &BTreeMap<String, String>, action: &str) -> Result<Vec<Constraint>, String> {
    let mut out = Vec::new();
    for c in constraints.iter().filter(|c| c.when_unsatisfiable == action) {
        let mut selector = Selector::from_label_selector(c.label_selector.as_ref()).map_err(|e| e.to_string())?;
        let keys = c.match_label_keys.as_deref().unwrap_or_default();
        if !keys.is_empty() {
            let set: BTreeMap<String, String> = keys.iter().filter_map(|k| pod_labels.get(k).map(|v| (k.clone(), v.clone()))).collect();
            if !set.is_empty() && !selector.matches_nothing() {
                let mut merged = Selector::from_set(&set);
                merged.extend(selector.requirements().iter().cloned());
                selector = merged;
            }
        }
        out.push(Constraint {
            max_skew: c.max_skew,
            topology_key: c.topology_key.clone(),
            selector,
            min_domains: c.min_domains.unwrap_or(1),
            node_affinity_honor: c.node_affinity_policy.as_deref() != Some("Ignore"),
            node_taints_honor: c.node_taints_policy.as_deref() == Some("Honor"),
        });
    }
    Ok(out)
}

/// The selector of the pod's Services and controller (upstream's `DefaultSelector`).
pub fn default_selector(pod: &Pod, listers: &dyn Listers) -> Selector {
    let mut set: BTreeMap<String, String> = BTreeMap::new();
    for svc in listers.services(pod.namespace()) {
        let Some(sel) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()) else { continue };
        if sel.iter().all(|(k, v)| pod.labels().get(k) == Some(v)) {
            set.extend(sel.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    let mut selector = Selector::from_set(&set);
    let Some(owner) = pod.metadata.owner_references.iter().flatten().find(|o| o.controller == Some(true)) else {
        return selector;
    };
    match (owner.api_version.as_str(), owner.kind.as_str()) {
        ("v1", "ReplicationController") => {
            if let Some(rc) = listers.replication_controller(pod.namespace(), &owner.name) {
                set.extend(rc.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default());
                selector = Selector::from_set(&set);
            }
        }
        ("apps/v1", "ReplicaSet") => {
            if let Some(rs) = listers.replica_set(pod.namespace(), &owner.name) {
                if let Ok(other) = Selector::from_label_selector(rs.spec.as_ref().map(|s| &s.selector)) {
                    selector.extend(other.requirements().iter().cloned());
                }
            }
        }
        ("apps/v1", "StatefulSet") => {
            if let Some(ss) = listers.stateful_set(pod.namespace(), &owner.name) {
                if let Ok(other) = Selector::from_label_selector(ss.spec.as_ref().map(|s| &s.selector)) {
                    selector.extend(other.requirements().iter().cloned());
                }
            }
        }
        _ => {}
    }
    selector
}

/// Pods on the node in `namespace` matching `selector`, not terminating.
pub fn count_pods_match_selector(pods: &[Arc<PodInfo>], selector: &Selector, namespace: &str) -> i32 {
    if selector.is_empty() {
        return 0;
    }
    pods.iter().filter(|p| !p.pod.is_terminating() && p.pod.namespace() == namespace && selector.matches(p.pod.labels())).count() as i32
}

fn node_has_all_keys(node: &Node, constraints: &[Constraint]) -> bool {
    constraints.iter().all(|c| node.labels().contains_key(&c.topology_key))
}

/// The two domains with the fewest matching pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CriticalPaths([(usize, i32); 2]);

const NO_DOMAIN: usize = usize::MAX;

impl CriticalPaths {
    fn new() -> Self {
        CriticalPaths([(NO_DOMAIN, i32::MAX), (NO_DOMAIN, i32::MAX)])
    }

    fn update(&mut self, domain: usize, num: i32) {
        let p = &mut self.0;
        let i = if domain == p[0].0 {
            Some(0)
        } else if domain == p[1].0 {
            Some(1)
        } else {
            None
        };
        match i {
            Some(i) => {
                p[i].1 = num;
                if p[0].1 > p[1].1 {
                    p.swap(0, 1);
                }
            }
            None => {
                if num < p[0].1 {
                    p[1] = p[0];
                    p[0] = (domain, num);
                } else if num < p[1].1 {
                    p[1] = (domain, num);
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
struct PreFilterState {
    constraints: Arc<Vec<Constraint>>,
    /// Per constraint: domain value -> index, and the count per index.
    domains: Vec<HashMap<String, usize>>,
    counts: Vec<Vec<i32>>,
    critical: Vec<CriticalPaths>,
}

impl PreFilterState {
    fn domain_index(&mut self, i: usize, value: &str) -> usize {
        if let Some(&d) = self.domains[i].get(value) {
            return d;
        }
        let d = self.counts[i].len();
        self.domains[i].insert(value.to_string(), d);
        self.counts[i].push(0);
        d
    }

    fn min_match_num(&self, i: usize, min_domains: i32) -> i32 {
        if (self.domains[i].len() as i32) < min_domains { 0 } else { self.critical[i].0[0].1 }
    }
}

#[derive(Debug, Clone)]
struct PreScoreState {
    constraints: Arc<Vec<Constraint>>,
    ignored_nodes: Arc<HashSet<String>>,
    counts: Arc<Vec<HashMap<String, i64>>>,
    weights: Vec<f64>,
}

pub struct PodTopologySpread {
    default_constraints: Vec<TopologySpreadConstraint>,
    system_defaulted: bool,
    handle: Arc<Handle>,
}

impl PodTopologySpread {
    pub fn new(args: Option<&serde_json::Value>, handle: &Arc<Handle>) -> Result<Arc<dyn Plugin>, String> {
        let args: Args = match args {
            Some(v) if !v.is_null() => serde_json::from_value(v.clone()).map_err(|e| format!("decoding PodTopologySpreadArgs: {e}"))?,
            _ => Args::default(),
        };
        let system = match args.defaulting_type.as_deref().unwrap_or("System") {
            "System" => true,
            "List" => false,
            other => return Err(format!("defaultingType: Unsupported value: {other:?}: supported values: \"System\", \"List\"")),
        };
        if system && !args.default_constraints.is_empty() {
            return Err("defaultConstraints: Invalid value: when .defaultingType is \"System\", .defaultConstraints must be empty".into());
        }
        let default_constraints = if system { system_default_constraints() } else { args.default_constraints };
        Ok(Arc::new(PodTopologySpread { default_constraints, system_defaulted: system, handle: handle.clone() }))
    }

    fn default_constraints_for(&self, pod: &Pod, action: &str) -> Result<Vec<Constraint>, String> {
        let mut constraints = filter_constraints(&self.default_constraints, pod.labels(), action)?;
        if constraints.is_empty() {
            return Ok(constraints);
        }
        let selector = default_selector(pod, self.handle.listers.as_ref());
        if selector.is_empty() {
            return Ok(Vec::new());
        }
        for c in &mut constraints {
            c.selector = selector.clone();
        }
        Ok(constraints)
    }

    fn constraints(&self, pod: &Pod, action: &str) -> Result<Vec<Constraint>, String> {
        let own = pod.spec.as_ref().and_then(|s| s.topology_spread_constraints.as_deref()).unwrap_or_default();
        if own.is_empty() { self.default_constraints_for(pod, action) } else { filter_constraints(own, pod.labels(), action) }
    }

    fn update_with_pod(state: &mut PreFilterState, updated: &Pod, preemptor: &Pod, node: &Node, delta: i32) {
        if updated.namespace() != preemptor.namespace() || !node_has_all_keys(node, &state.constraints) {
            return;
        }
        let required = RequiredNodeAffinity::of(preemptor);
        let constraints = state.constraints.clone();
        for (i, c) in constraints.iter().enumerate() {
            if !c.selector.matches(updated.labels()) || !c.includes_node(preemptor, node, &required) {
                continue;
            }
            let value = node.labels().get(&c.topology_key).cloned().unwrap_or_default();
            let d = state.domain_index(i, &value);
            state.counts[i][d] += delta;
            let n = state.counts[i][d];
            state.critical[i].update(d, n);
        }
    }
}

fn topology_normalizing_weight(size: usize) -> f64 {
    ((size + 2) as f64).ln()
}

fn score_for_count(count: i64, max_skew: i32, weight: f64) -> f64 {
    count as f64 * weight + f64::from(max_skew - 1)
}

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }

    fn events_to_register(&self) -> Option<Vec<ClusterEvent>> {
        Some(vec![
            ClusterEvent::new(EventResource::Pod, ActionType::ADD | ActionType::UPDATE_POD_LABEL | ActionType::UPDATE_POD_TOLERATION | ActionType::DELETE),
            ClusterEvent::new(EventResource::Node, ActionType::ADD | ActionType::DELETE | ActionType::UPDATE_NODE_LABEL | ActionType::UPDATE_NODE_TAINT),
        ])
    }

    fn queueing_hint(&self, _event: &ClusterEvent, pod: &Pod, old: Option<&EventObject>, new: Option<&EventObject>) -> QueueingHint {
        let Ok(constraints) = self.constraints(pod, DO_NOT_SCHEDULE) else { return QueueingHint::Queue };
        let q = |b: bool| if b { QueueingHint::Queue } else { QueueingHint::QueueSkip };
        match (old, new) {
            (o @ (Some(EventObject::Pod(_)) | None), n @ (Some(EventObject::Pod(_)) | None)) => {
                let (original, modified) = (o.and_then(EventObject::pod), n.and_then(EventObject::pod));
                let involved = |p: &Pod| p.uid() == pod.uid() || (!p.node_name().is_empty() && p.namespace() == pod.namespace());
                if modified.is_some_and(|p| !involved(p)) || original.is_some_and(|p| !involved(p)) {
                    return QueueingHint::QueueSkip;
                }
                let matches_any = |p: &Pod| constraints.iter().any(|c| c.selector.matches(p.labels()));
                match (original, modified) {
                    (Some(o), Some(m)) => {
                        let tolerations = |p: &Pod| p.spec.as_ref().and_then(|s| s.tolerations.clone());
                        if pod.uid() == m.uid() && tolerations(m) != tolerations(o) && constraints.iter().any(|c| c.node_taints_honor) {
                            return QueueingHint::Queue;
                        }
                        if m.labels() == o.labels() {
                            return QueueingHint::QueueSkip;
                        }
                        q(constraints.iter().any(|c| c.selector.matches(o.labels()) != c.selector.matches(m.labels())))
                    }
                    (None, Some(m)) => q(matches_any(m)),
                    (Some(o), None) => q(matches_any(o)),
                    (None, None) => QueueingHint::Queue,
                }
            }
            (o, n) => {
                let (original, modified) = (o.and_then(EventObject::node), n.and_then(EventObject::node));
                let om = original.is_some_and(|x| node_has_all_keys(x, &constraints));
                let mm = modified.is_some_and(|x| node_has_all_keys(x, &constraints));
                match (original, modified) {
                    (Some(o), Some(m)) => {
                        if om != mm {
                            return QueueingHint::Queue;
                        }
                        let keys_changed = constraints.iter().any(|c| o.labels().get(&c.topology_key) != m.labels().get(&c.topology_key));
                        let taints = |x: &Node| x.spec.as_ref().and_then(|s| s.taints.clone());
                        q(mm && (keys_changed || taints(o) != taints(m)))
                    }
                    (None, Some(_)) => q(mm),
                    (Some(_), None) => q(om),
                    (None, None) => QueueingHint::Queue,
                }
            }
        }
    }

    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreFilterPlugin for PodTopologySpread {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo) -> (PreFilterResult, Status) {
        let constraints = match self.constraints(&pod.pod, DO_NOT_SCHEDULE) {
            Ok(c) => c,
            Err(e) => return (PreFilterResult::all_nodes(), Status::error(format!("get constraints from pod: {e}"))),
        };
        if constraints.is_empty() {
            return (PreFilterResult::all_nodes(), Status::skip());
        }
        let n = constraints.len();
        let mut s = PreFilterState { constraints: Arc::new(constraints), domains: vec![HashMap::new(); n], counts: vec![Vec::new(); n], critical: vec![CriticalPaths::new(); n] };
        let required = RequiredNodeAffinity::of(&pod.pod);
        let constraints = s.constraints.clone();
        for node in state.snapshot().list() {
            if !node_has_all_keys(node.node(), &constraints) {
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if !c.includes_node(&pod.pod, node.node(), &required) {
                    continue;
                }
                let value = node.node().labels().get(&c.topology_key).cloned().unwrap_or_default();
                let count = count_pods_match_selector(&node.pods, &c.selector, pod.pod.namespace());
                let d = s.domain_index(i, &value);
                s.counts[i][d] += count;
            }
        }
        for i in 0..n {
            for d in 0..s.counts[i].len() {
                let num = s.counts[i][d];
                s.critical[i].update(d, num);
            }
        }
        state.write(PRE_FILTER_KEY, s);
        (PreFilterResult::all_nodes(), Status::success())
    }

    fn add_pod(&self, state: &mut CycleState, pod: &PodInfo, to_add: &Arc<PodInfo>, node: &NodeInfo) -> Status {
        match state.read_mut::<PreFilterState>(PRE_FILTER_KEY) {
            Some(s) => {
                Self::update_with_pod(s, &to_add.pod, &pod.pod, node.node(), 1);
                Status::success()
            }
            None => Status::error(format!("reading {PRE_FILTER_KEY:?} from cycleState: not found")),
        }
    }

    fn remove_pod(&self, state: &mut CycleState, pod: &PodInfo, to_remove: &Arc<PodInfo>, node: &NodeInfo) -> Status {
        match state.read_mut::<PreFilterState>(PRE_FILTER_KEY) {
            Some(s) => {
                Self::update_with_pod(s, &to_remove.pod, &pod.pod, node.node(), -1);
                Status::success()
            }
            None => Status::error(format!("reading {PRE_FILTER_KEY:?} from cycleState: not found")),
        }
    }
}

impl FilterPlugin for PodTopologySpread {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>(PRE_FILTER_KEY) else {
            return Status::error(format!("reading {PRE_FILTER_KEY:?} from cycleState: not found"));
        };
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(value) = node.node().labels().get(&c.topology_key) else {
                return Status::unresolvable(ERR_REASON_NODE_LABEL_NOT_MATCH);
            };
            let min_match = s.min_match_num(i, c.min_domains);
            let self_match = i32::from(c.selector.matches(pod.pod.labels()));
            let match_num = s.domains[i].get(value).map(|&d| s.counts[i][d]).unwrap_or(0);
            let skew = i64::from(match_num) + i64::from(self_match) - i64::from(min_match);
            if skew > i64::from(c.max_skew) {
                return Status::unschedulable(ERR_REASON_CONSTRAINTS_NOT_MATCH);
            }
        }
        Status::success()
    }
}

impl PreScorePlugin for PodTopologySpread {
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, filtered: &[Arc<NodeInfo>]) -> Status {
        let snapshot = state.snapshot().clone();
        if snapshot.is_empty() {
            return Status::skip();
        }
        let own = pod.pod.spec.as_ref().and_then(|s| s.topology_spread_constraints.as_deref()).unwrap_or_default();
        let require_all_topologies = !own.is_empty() || !self.system_defaulted;
        let constraints = match self.constraints(&pod.pod, SCHEDULE_ANYWAY) {
            Ok(c) => c,
            Err(e) => return Status::error(format!("calculating preScoreState: {e}")),
        };
        if constraints.is_empty() {
            return Status::skip();
        }
        let mut ignored = HashSet::new();
        let mut counts: Vec<HashMap<String, i64>> = vec![HashMap::new(); constraints.len()];
        for n in filtered {
            if require_all_topologies && !node_has_all_keys(n.node(), &constraints) {
                ignored.insert(n.name().to_string());
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if c.topology_key == LABEL_HOSTNAME {
                    continue;
                }
                let value = n.node().labels().get(&c.topology_key).cloned().unwrap_or_default();
                counts[i].entry(value).or_insert(0);
            }
        }
        let weights = constraints
            .iter()
            .enumerate()
            .map(|(i, c)| topology_normalizing_weight(if c.topology_key == LABEL_HOSTNAME { filtered.len() - ignored.len() } else { counts[i].len() }))
            .collect();
        let required = RequiredNodeAffinity::of(&pod.pod);
        for node in snapshot.list() {
            if require_all_topologies && !node_has_all_keys(node.node(), &constraints) {
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if !c.includes_node(&pod.pod, node.node(), &required) {
                    continue;
                }
                let value = node.node().labels().get(&c.topology_key).cloned().unwrap_or_default();
                if let Some(count) = counts[i].get_mut(&value) {
                    *count += i64::from(count_pods_match_selector(&node.pods, &c.selector, pod.pod.namespace()));
                }
            }
        }
        state.write(PRE_SCORE_KEY, PreScoreState { constraints: Arc::new(constraints), ignored_nodes: Arc::new(ignored), counts: Arc::new(counts), weights });
        Status::success()
    }
}

impl ScorePlugin for PodTopologySpread {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let s = state.read::<PreScoreState>(PRE_SCORE_KEY).ok_or_else(|| Status::error(format!("error reading {PRE_SCORE_KEY:?} from cycleState")))?;
        if s.ignored_nodes.contains(node.name()) {
            return Ok(0);
        }
        let mut score = 0.0;
        for (i, c) in s.constraints.iter().enumerate() {
            if let Some(value) = node.node().labels().get(&c.topology_key) {
                let count = if c.topology_key == LABEL_HOSTNAME {
                    i64::from(count_pods_match_selector(&node.pods, &c.selector, pod.pod.namespace()))
                } else {
                    s.counts[i].get(value).copied().unwrap_or(0)
                };
                score += score_for_count(count, c.max_skew, s.weights[i]);
            }
        }
        Ok(score.round() as i64)
    }

    fn normalize_score(&self, state: &CycleState, _pod: &PodInfo, scores: &mut [NodeScore]) -> Status {
        let Some(s) = state.read::<PreScoreState>(PRE_SCORE_KEY) else {
            return Status::error(format!("error reading {PRE_SCORE_KEY:?} from cycleState"));
        };
        let (mut min, mut max) = (i64::MAX, 0i64);
        for sc in scores.iter() {
            if s.ignored_nodes.contains(&sc.name) {
                continue;
            }
            min = min.min(sc.score);
            max = max.max(sc.score);
        }
        for sc in scores.iter_mut() {
            if s.ignored_nodes.contains(&sc.name) {
                sc.score = 0;
                continue;
            }
            sc.score = if max == 0 { MAX_NODE_SCORE } else { MAX_NODE_SCORE * (max + min - sc.score) / max };
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::listers::StaticListers;
    use crate::testing::{node, pod, snapshot, state};
    use k8s_openapi::api::apps::v1::ReplicaSet;
    use serde_json::json;

    fn plugin(listers: StaticListers) -> Arc<dyn Plugin> {
        PodTopologySpread::new(None, &Handle::for_tests(Arc::new(listers))).expect("plugin")
    }

    fn zone_nodes() -> Vec<Node> {
        vec![node("a1").zone("a").build(), node("a2").zone("a").build(), node("b1").zone("b").build(), node("b2").zone("b").build(), node("c1").build()]
    }

    fn filter_all(pl: &dyn Plugin, p: &PodInfo, nodes: Vec<Node>, pods: Vec<Pod>) -> Vec<(String, Status)> {
        let snap = snapshot(nodes, pods);
        let mut st = state(&snap);
        let (_, s) = pl.as_pre_filter().expect("pf").pre_filter(&mut st, p);
        snap.list().iter().map(|n| (n.name().to_string(), if s.is_skip() { Status::success() } else { pl.as_filter().expect("f").filter(&st, p, n) })).collect()
    }

    #[test]
    fn filter_table() {
        let pl = plugin(StaticListers::default());
        let existing = vec![pod("x1").label("app", "web").node("a1").build(), pod("x2").label("app", "web").node("a2").build(), pod("x3").label("app", "web").node("b1").build()];
        let ok = Status::success();
        let skew = Status::unschedulable(ERR_REASON_CONSTRAINTS_NOT_MATCH);
        let label = Status::unresolvable(ERR_REASON_NODE_LABEL_NOT_MATCH);
        let cases = [
            // zone a has 2, b has 1: with maxSkew 1 only zone b fits.
            ("zone skew 1", pod("p").label("app", "web").spread(1, LABEL_TOPOLOGY_ZONE, DO_NOT_SCHEDULE, json!({"app": "web"})), vec![skew.clone(), skew.clone(), ok.clone(), ok.clone(), label.clone()]),
            ("zone skew 2", pod("p").label("app", "web").spread(2, LABEL_TOPOLOGY_ZONE, DO_NOT_SCHEDULE, json!({"app": "web"})), vec![ok.clone(), ok.clone(), ok.clone(), ok.clone(), label.clone()]),
            // The incoming pod does not match its own selector: no self count.
            ("self not matching", pod("p").spread(1, LABEL_TOPOLOGY_ZONE, DO_NOT_SCHEDULE, json!({"app": "web"})), vec![ok.clone(), ok.clone(), ok.clone(), ok.clone(), label.clone()]),
            ("soft constraints do not filter", pod("p").label("app", "web").spread(1, LABEL_TOPOLOGY_ZONE, SCHEDULE_ANYWAY, json!({"app": "web"})), vec![ok.clone(); 5]),
            ("hostname skew", pod("p").label("app", "web").spread(1, LABEL_HOSTNAME, DO_NOT_SCHEDULE, json!({"app": "web"})), vec![skew.clone(), skew.clone(), skew.clone(), ok.clone(), ok.clone()]),
        ];
        for (name, p, want) in cases {
            let got: Vec<Status> = filter_all(pl.as_ref(), &p.info(), zone_nodes(), existing.clone()).into_iter().map(|(_, s)| s).collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn min_domains_forces_spreading() {
        let pl = plugin(StaticListers::default());
        let existing = vec![pod("x1").label("app", "web").node("a1").build()];
        let p = pod("p")
            .label("app", "web")
            .spec("topologySpreadConstraints", json!([{"maxSkew": 1, "topologyKey": LABEL_TOPOLOGY_ZONE, "whenUnsatisfiable": DO_NOT_SCHEDULE, "minDomains": 3, "labelSelector": {"matchLabels": {"app": "web"}}}]));
        // Only zones a and b exist (< 3 domains), so the global minimum counts as 0.
        let got = filter_all(pl.as_ref(), &p.info(), zone_nodes()[..4].to_vec(), existing);
        let fits: Vec<&str> = got.iter().filter(|(_, s)| s.is_success()).map(|(n, _)| n.as_str()).collect();
        assert_eq!(fits, vec!["b1", "b2"]);
    }

    fn scores(pl: &dyn Plugin, p: &PodInfo, nodes: Vec<Node>, pods: Vec<Pod>) -> Option<Vec<i64>> {
        let snap = snapshot(nodes, pods);
        let mut st = state(&snap);
        let filtered = snap.list().to_vec();
        if pl.as_pre_score().expect("ps").pre_score(&mut st, p, &filtered).is_skip() {
            return None;
        }
        let sp = pl.as_score().expect("s");
        let mut out: Vec<NodeScore> = filtered.iter().map(|n| NodeScore { name: n.name().into(), score: sp.score(&st, p, n).expect("score") }).collect();
        sp.normalize_score(&st, p, &mut out);
        Some(out.into_iter().map(|s| s.score).collect())
    }

    #[test]
    fn scoring_prefers_emptier_domains() {
        let pl = plugin(StaticListers::default());
        let nodes = vec![node("n1").build(), node("n2").build(), node("n3").build()];
        let existing = vec![pod("x1").label("app", "web").node("n1").build(), pod("x2").label("app", "web").node("n1").build(), pod("x3").label("app", "web").node("n2").build()];
        let p = pod("p").label("app", "web").spread(1, LABEL_HOSTNAME, SCHEDULE_ANYWAY, json!({"app": "web"})).info();
        // weight ln(5); raw: n1 2*1.609=3.2->3, n2 1.6->2, n3 0; normalized 100*(3+0-s)/3.
        assert_eq!(scores(pl.as_ref(), &p, nodes, existing), Some(vec![0, 33, 100]));
    }

    #[test]
    fn system_defaults_use_the_replica_set_selector() {
        let rs: ReplicaSet = serde_json::from_value(json!({"metadata": {"name": "web-1", "namespace": "default"}, "spec": {"selector": {"matchLabels": {"app": "web"}}}})).expect("rs");
        let pl = plugin(StaticListers { replica_sets: vec![Arc::new(rs)], ..Default::default() });
        let nodes = vec![node("n1").zone("a").build(), node("n2").zone("a").build(), node("n3").zone("b").build()];
        let existing = vec![pod("x1").label("app", "web").node("n1").build(), pod("x2").label("app", "web").node("n1").build(), pod("x3").label("app", "web").node("n2").build()];
        let p = pod("p").label("app", "web").owner("ReplicaSet", "web-1").info();
        let got = scores(pl.as_ref(), &p, nodes.clone(), existing.clone()).expect("scored");
        assert!(got[2] > got[1] && got[1] > got[0], "{got:?}");
        // Without an owner or service there is nothing to spread.
        assert_eq!(scores(pl.as_ref(), &pod("q").label("app", "web").info(), nodes, existing), None);
    }
}
