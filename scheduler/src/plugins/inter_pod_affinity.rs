//! InterPodAffinity: required pod affinity/anti-affinity (the incoming pod's and the
//! existing pods' anti-affinity) filter topology domains; preferred terms (both ways) and
//! existing pods' required affinity (at `hardPodAffinityWeight`) score them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ironkube_machinery::selectors::label::Selector;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde::Deserialize;

use crate::framework::cycle_state::CycleState;
use crate::framework::interface::{ActionType, ClusterEvent, EventObject, EventResource, FilterPlugin, Handle, MAX_NODE_SCORE, NodeScore, Plugin, PreFilterPlugin, PreFilterResult, PreScorePlugin, QueueingHint, ScorePlugin};
use crate::framework::node_info::{AffinityTerm, NodeExt, NodeInfo, PodExt, PodInfo};
use crate::framework::status::Status;

pub const NAME: &str = "InterPodAffinity";
pub const ERR_REASON_EXISTING_ANTI_AFFINITY: &str = "node(s) didn't satisfy existing pods anti-affinity rules";
pub const ERR_REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const ERR_REASON_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
const PRE_FILTER_KEY: &str = "PreFilterInterPodAffinity";
const PRE_SCORE_KEY: &str = "PreScoreInterPodAffinity";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Args {
    #[serde(default = "default_hard_weight")]
    hard_pod_affinity_weight: i32,
    #[serde(default)]
    ignore_preferred_terms_of_existing_pods: bool,
}

fn default_hard_weight() -> i32 {
    1
}

impl Default for Args {
    fn default() -> Self {
        Args { hard_pod_affinity_weight: 1, ignore_preferred_terms_of_existing_pods: false }
    }
}

type TopologyPair = (String, String);
type Counts = HashMap<TopologyPair, i64>;

fn bump(m: &mut Counts, node: &Node, key: &str, value: i64) {
    if let Some(v) = node.labels().get(key) {
        let pair = (key.to_string(), v.clone());
        let e = m.entry(pair.clone()).or_insert(0);
        *e += value;
        if *e == 0 {
            m.remove(&pair);
        }
    }
}

/// Whether `pod` matches every term (false when there are none).
pub fn matches_all_terms(terms: &[AffinityTerm], pod: &Pod) -> bool {
    !terms.is_empty() && terms.iter().all(|t| t.matches(pod, None))
}

#[derive(Clone)]
struct PreFilterState {
    existing_anti_affinity: Counts,
    affinity: Counts,
    anti_affinity: Counts,
    pod: Arc<PodInfo>,
    namespace_labels: Arc<BTreeMap<String, String>>,
}

impl PreFilterState {
    fn update_with_pod(&mut self, other: &PodInfo, node: &Node, mult: i64) {
        for t in &other.required_anti_affinity_terms {
            if t.matches(&self.pod.pod, Some(&self.namespace_labels)) {
                bump(&mut self.existing_anti_affinity, node, &t.topology_key, mult);
            }
        }
        if matches_all_terms(&self.pod.required_affinity_terms, &other.pod) {
            for t in &self.pod.required_affinity_terms {
                bump(&mut self.affinity, node, &t.topology_key, mult);
            }
        }
        for t in &self.pod.required_anti_affinity_terms {
            if t.matches(&other.pod, None) {
                bump(&mut self.anti_affinity, node, &t.topology_key, mult);
            }
        }
    }
}

#[derive(Clone)]
struct PreScoreState {
    topology_score: Arc<HashMap<String, HashMap<String, i64>>>,
}

pub struct InterPodAffinity {
    args: Args,
    handle: Arc<Handle>,
}

impl InterPodAffinity {
    pub fn new(args: Option<&serde_json::Value>, handle: &Arc<Handle>) -> Result<Arc<dyn Plugin>, String> {
        let args: Args = match args {
            Some(v) if !v.is_null() => serde_json::from_value(v.clone()).map_err(|e| format!("decoding InterPodAffinityArgs: {e}"))?,
            _ => Args::default(),
        };
        if !(0..=100).contains(&args.hard_pod_affinity_weight) {
            return Err(format!("hardPodAffinityWeight: Invalid value: {}: not in valid range [0-100]", args.hard_pod_affinity_weight));
        }
        Ok(Arc::new(InterPodAffinity { args, handle: handle.clone() }))
    }

    /// Resolves a term's namespace selector into namespace names (upstream's
    /// `mergeAffinityTermNamespacesIfNotEmpty`).
    fn merge_namespaces(&self, term: &mut AffinityTerm) {
        if term.namespace_selector.is_empty() {
            return;
        }
        for ns in self.handle.listers.namespaces() {
            let labels = ns.metadata.labels.clone().unwrap_or_default();
            if term.namespace_selector.matches(&labels) {
                term.namespaces.insert(ns.metadata.name.clone().unwrap_or_default());
            }
        }
        term.namespace_selector = Selector::nothing();
    }

    fn namespace_labels(&self, ns: &str) -> BTreeMap<String, String> {
        self.handle.listers.namespace_labels(ns).unwrap_or_default()
    }
}

fn term_score(m: &mut HashMap<String, HashMap<String, i64>>, term: &AffinityTerm, weight: i64, pod: &Pod, ns_labels: Option<&BTreeMap<String, String>>, node: &Node) {
    if term.matches(pod, ns_labels) {
        if let Some(v) = node.labels().get(&term.topology_key) {
            *m.entry(term.topology_key.clone()).or_default().entry(v.clone()).or_insert(0) += weight;
        }
    }
}

impl Plugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        NAME
    }

    fn events_to_register(&self) -> Option<Vec<ClusterEvent>> {
        Some(vec![
            ClusterEvent::new(EventResource::Pod, ActionType::ADD | ActionType::UPDATE_POD_LABEL | ActionType::DELETE),
            ClusterEvent::new(EventResource::Node, ActionType::ADD | ActionType::UPDATE_NODE_LABEL),
        ])
    }

    fn queueing_hint(&self, _event: &ClusterEvent, pod: &Pod, old: Option<&EventObject>, new: Option<&EventObject>) -> QueueingHint {
        let info = PodInfo::new(pod.clone());
        let q = |b: bool| if b { QueueingHint::Queue } else { QueueingHint::QueueSkip };
        if let (Some(EventObject::Node(_)), _) | (_, Some(EventObject::Node(_))) = (old, new) {
            let (original, modified) = (old.and_then(EventObject::node), new.and_then(EventObject::node));
            let Some(modified) = modified else { return QueueingHint::Queue };
            for t in &info.required_affinity_terms {
                let m = modified.labels().get(&t.topology_key);
                match original {
                    None if m.is_some() => return QueueingHint::Queue,
                    Some(o) => {
                        let ov = o.labels().get(&t.topology_key);
                        if (ov.is_none() && m.is_some()) || (ov.is_some() && m.is_some() && ov != m) {
                            return QueueingHint::Queue;
                        }
                    }
                    None => {}
                }
            }
            for t in &info.required_anti_affinity_terms {
                let Some(o) = original else { return QueueingHint::Queue };
                let (ov, mv) = (o.labels().get(&t.topology_key), modified.labels().get(&t.topology_key));
                if (ov.is_some() && mv.is_none()) || (ov.is_some() && mv.is_some() && ov != mv) {
                    return QueueingHint::Queue;
                }
            }
            return QueueingHint::QueueSkip;
        }
        let (original, modified) = (old.and_then(EventObject::pod), new.and_then(EventObject::pod));
        if modified.is_some_and(|p| p.node_name().is_empty()) || original.is_some_and(|p| p.node_name().is_empty()) {
            return QueueingHint::QueueSkip;
        }
        let (terms, anti) = (&info.required_affinity_terms, &info.required_anti_affinity_terms);
        match (original, modified) {
            (Some(o), Some(m)) => q((!matches_all_terms(terms, o) && matches_all_terms(terms, m)) || (matches_all_terms(anti, o) && !matches_all_terms(anti, m))),
            (None, Some(m)) => q(matches_all_terms(terms, m)),
            (Some(o), None) => q(matches_all_terms(anti, o)),
            (None, None) => QueueingHint::Queue,
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

impl PreFilterPlugin for InterPodAffinity {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo) -> (PreFilterResult, Status) {
        if let Some(e) = &pod.parse_error {
            return (PreFilterResult::all_nodes(), Status::unresolvable(format!("parsing pod: {e}")));
        }
        let mut info = pod.clone();
        for t in info.required_affinity_terms.iter_mut().chain(info.required_anti_affinity_terms.iter_mut()) {
            self.merge_namespaces(t);
        }
        let namespace_labels = Arc::new(self.namespace_labels(pod.pod.namespace()));
        let snapshot = state.snapshot().clone();
        let mut existing_anti_affinity = Counts::new();
        for node in snapshot.have_pods_with_required_anti_affinity() {
            for existing in &node.pods_with_required_anti_affinity {
                for t in &existing.required_anti_affinity_terms {
                    if t.matches(&pod.pod, Some(&namespace_labels)) {
                        bump(&mut existing_anti_affinity, node.node(), &t.topology_key, 1);
                    }
                }
            }
        }
        let (mut affinity, mut anti_affinity) = (Counts::new(), Counts::new());
        if !info.required_affinity_terms.is_empty() || !info.required_anti_affinity_terms.is_empty() {
            for node in snapshot.list() {
                for existing in &node.pods {
                    if matches_all_terms(&info.required_affinity_terms, &existing.pod) {
                        for t in &info.required_affinity_terms {
                            bump(&mut affinity, node.node(), &t.topology_key, 1);
                        }
                    }
                    for t in &info.required_anti_affinity_terms {
                        if t.matches(&existing.pod, None) {
                            bump(&mut anti_affinity, node.node(), &t.topology_key, 1);
                        }
                    }
                }
            }
        }
        if existing_anti_affinity.is_empty() && info.required_affinity_terms.is_empty() && info.required_anti_affinity_terms.is_empty() {
            return (PreFilterResult::all_nodes(), Status::skip());
        }
        state.write(PRE_FILTER_KEY, PreFilterState { existing_anti_affinity, affinity, anti_affinity, pod: Arc::new(info), namespace_labels });
        (PreFilterResult::all_nodes(), Status::success())
    }

    fn add_pod(&self, state: &mut CycleState, _pod: &PodInfo, to_add: &Arc<PodInfo>, node: &NodeInfo) -> Status {
        match state.read_mut::<PreFilterState>(PRE_FILTER_KEY) {
            Some(s) => {
                s.update_with_pod(to_add, node.node(), 1);
                Status::success()
            }
            None => Status::error(format!("error reading {PRE_FILTER_KEY:?} from cycleState: not found")),
        }
    }

    fn remove_pod(&self, state: &mut CycleState, _pod: &PodInfo, to_remove: &Arc<PodInfo>, node: &NodeInfo) -> Status {
        match state.read_mut::<PreFilterState>(PRE_FILTER_KEY) {
            Some(s) => {
                s.update_with_pod(to_remove, node.node(), -1);
                Status::success()
            }
            None => Status::error(format!("error reading {PRE_FILTER_KEY:?} from cycleState: not found")),
        }
    }
}

fn satisfies_affinity(s: &PreFilterState, node: &Node) -> bool {
    let mut pods_exist = true;
    for t in &s.pod.required_affinity_terms {
        match node.labels().get(&t.topology_key) {
            Some(v) => {
                if s.affinity.get(&(t.topology_key.clone(), v.clone())).copied().unwrap_or(0) <= 0 {
                    pods_exist = false;
                }
            }
            None => return false,
        }
    }
    // The first pod of a group that matches its own affinity may go anywhere the
    // topology keys exist.
    pods_exist || (s.affinity.is_empty() && matches_all_terms(&s.pod.required_affinity_terms, &s.pod.pod))
}

fn satisfies_anti_affinity(s: &PreFilterState, node: &Node) -> bool {
    if s.anti_affinity.is_empty() {
        return true;
    }
    !s.pod.required_anti_affinity_terms.iter().any(|t| node.labels().get(&t.topology_key).is_some_and(|v| s.anti_affinity.get(&(t.topology_key.clone(), v.clone())).copied().unwrap_or(0) > 0))
}

fn satisfies_existing_anti_affinity(s: &PreFilterState, node: &Node) -> bool {
    if s.existing_anti_affinity.is_empty() {
        return true;
    }
    !node.labels().iter().any(|(k, v)| s.existing_anti_affinity.get(&(k.clone(), v.clone())).copied().unwrap_or(0) > 0)
}

impl FilterPlugin for InterPodAffinity {
    fn filter(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>(PRE_FILTER_KEY) else {
            return Status::error(format!("error reading {PRE_FILTER_KEY:?} from cycleState: not found"));
        };
        if !satisfies_affinity(s, node.node()) {
            return Status::unresolvable(ERR_REASON_AFFINITY);
        }
        if !satisfies_anti_affinity(s, node.node()) {
            return Status::unschedulable(ERR_REASON_ANTI_AFFINITY);
        }
        if !satisfies_existing_anti_affinity(s, node.node()) {
            return Status::unschedulable(ERR_REASON_EXISTING_ANTI_AFFINITY);
        }
        Status::success()
    }
}

impl PreScorePlugin for InterPodAffinity {
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, _nodes: &[Arc<NodeInfo>]) -> Status {
        let has_constraints = !pod.preferred_affinity_terms.is_empty() || !pod.preferred_anti_affinity_terms.is_empty();
        if self.args.ignore_preferred_terms_of_existing_pods && !has_constraints {
            return Status::skip();
        }
        let mut info = pod.clone();
        for t in info.preferred_affinity_terms.iter_mut().chain(info.preferred_anti_affinity_terms.iter_mut()) {
            self.merge_namespaces(&mut t.term);
        }
        let ns_labels = self.namespace_labels(pod.pod.namespace());
        let snapshot = state.snapshot().clone();
        let nodes: Vec<&Arc<NodeInfo>> = if has_constraints { snapshot.list().iter().collect() } else { snapshot.have_pods_with_affinity().collect() };
        let mut scores: HashMap<String, HashMap<String, i64>> = HashMap::new();
        for node in nodes {
            let n = node.node();
            if n.labels().is_empty() {
                continue;
            }
            let pods = if has_constraints { &node.pods } else { &node.pods_with_affinity };
            for existing in pods {
                for t in &info.preferred_affinity_terms {
                    term_score(&mut scores, &t.term, i64::from(t.weight), &existing.pod, None, n);
                }
                for t in &info.preferred_anti_affinity_terms {
                    term_score(&mut scores, &t.term, -i64::from(t.weight), &existing.pod, None, n);
                }
                if self.args.hard_pod_affinity_weight > 0 {
                    for t in &existing.required_affinity_terms {
                        term_score(&mut scores, t, i64::from(self.args.hard_pod_affinity_weight), &pod.pod, Some(&ns_labels), n);
                    }
                }
                for t in &existing.preferred_affinity_terms {
                    term_score(&mut scores, &t.term, i64::from(t.weight), &pod.pod, Some(&ns_labels), n);
                }
                for t in &existing.preferred_anti_affinity_terms {
                    term_score(&mut scores, &t.term, -i64::from(t.weight), &pod.pod, Some(&ns_labels), n);
                }
            }
        }
        if scores.is_empty() {
            return Status::skip();
        }
        state.write(PRE_SCORE_KEY, PreScoreState { topology_score: Arc::new(scores) });
        Status::success()
    }
}

impl ScorePlugin for InterPodAffinity {
    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let s = state.read::<PreScoreState>(PRE_SCORE_KEY).ok_or_else(|| Status::error(format!("failed to read {PRE_SCORE_KEY:?} from cycleState")))?;
        let labels = node.node().labels();
        Ok(s.topology_score.iter().filter_map(|(k, values)| labels.get(k).and_then(|v| values.get(v))).sum())
    }

    fn normalize_score(&self, state: &CycleState, _pod: &PodInfo, scores: &mut [NodeScore]) -> Status {
        let Some(s) = state.read::<PreScoreState>(PRE_SCORE_KEY) else {
            return Status::error(format!("failed to read {PRE_SCORE_KEY:?} from cycleState"));
        };
        if s.topology_score.is_empty() {
            return Status::success();
        }
        let min = scores.iter().map(|s| s.score).min().unwrap_or(0);
        let max = scores.iter().map(|s| s.score).max().unwrap_or(0);
        let diff = max - min;
        for sc in scores.iter_mut() {
            sc.score = if diff > 0 { (MAX_NODE_SCORE as f64 * ((sc.score - min) as f64 / diff as f64)) as i64 } else { 0 };
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::listers::StaticListers;
    use crate::testing::{node, pod, snapshot, state};
    use serde_json::{Value, json};

    fn plugin() -> Arc<dyn Plugin> {
        InterPodAffinity::new(None, &Handle::for_tests(Arc::new(StaticListers::default()))).expect("plugin")
    }

    fn term(labels: Value, key: &str) -> Value {
        json!({"labelSelector": {"matchLabels": labels}, "topologyKey": key})
    }

    fn filter_all(p: &PodInfo, nodes: Vec<Node>, pods: Vec<Pod>) -> Vec<Status> {
        let pl = plugin();
        let snap = snapshot(nodes, pods);
        let mut st = state(&snap);
        let (_, s) = pl.as_pre_filter().expect("pf").pre_filter(&mut st, p);
        snap.list().iter().map(|n| if s.is_skip() { Status::success() } else { pl.as_filter().expect("f").filter(&st, p, n) }).collect()
    }

    #[test]
    fn filter_table() {
        let zone = "topology.kubernetes.io/zone";
        let nodes = || vec![node("a1").zone("a").build(), node("b1").zone("b").build(), node("x").build()];
        let db = || vec![pod("db").label("app", "db").node("a1").build()];
        let ok = Status::success();
        let aff = Status::unresolvable(ERR_REASON_AFFINITY);
        let anti = Status::unschedulable(ERR_REASON_ANTI_AFFINITY);
        let existing = Status::unschedulable(ERR_REASON_EXISTING_ANTI_AFFINITY);
        let cases = [
            ("affinity to db zone", pod("p").affinity("podAffinity", json!({"requiredDuringSchedulingIgnoredDuringExecution": [term(json!({"app": "db"}), zone)]})), db(), vec![ok.clone(), aff.clone(), aff.clone()]),
            ("affinity without matching pods", pod("p").affinity("podAffinity", json!({"requiredDuringSchedulingIgnoredDuringExecution": [term(json!({"app": "cache"}), zone)]})), db(), vec![aff.clone(), aff.clone(), aff.clone()]),
            (
                "first pod of a self-affine group",
                pod("p").label("app", "web").affinity("podAffinity", json!({"requiredDuringSchedulingIgnoredDuringExecution": [term(json!({"app": "web"}), zone)]})),
                db(),
                vec![ok.clone(), ok.clone(), aff.clone()],
            ),
            ("anti-affinity to db zone", pod("p").affinity("podAntiAffinity", json!({"requiredDuringSchedulingIgnoredDuringExecution": [term(json!({"app": "db"}), zone)]})), db(), vec![anti.clone(), ok.clone(), ok.clone()]),
            (
                "existing pod's anti-affinity",
                pod("p").label("app", "web"),
                vec![pod("db").label("app", "db").node("a1").affinity("podAntiAffinity", json!({"requiredDuringSchedulingIgnoredDuringExecution": [term(json!({"app": "web"}), zone)]})).build()],
                vec![existing.clone(), ok.clone(), ok.clone()],
            ),
            ("other namespace does not count", pod("p").namespace("other").affinity("podAntiAffinity", json!({"requiredDuringSchedulingIgnoredDuringExecution": [term(json!({"app": "db"}), zone)]})), db(), vec![ok.clone(), ok.clone(), ok.clone()]),
        ];
        for (name, p, pods, want) in cases {
            assert_eq!(filter_all(&p.info(), nodes(), pods), want, "{name}");
        }
    }

    #[test]
    fn preferred_scores() {
        let pl = plugin();
        let zone = "topology.kubernetes.io/zone";
        let nodes = vec![node("a1").zone("a").build(), node("b1").zone("b").build(), node("c1").zone("c").build()];
        let pods = vec![pod("db").label("app", "db").node("a1").build(), pod("web").label("app", "web").node("b1").build()];
        let p = pod("p")
            .affinity("podAffinity", json!({"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "podAffinityTerm": term(json!({"app": "db"}), zone)}]}))
            .affinity("podAntiAffinity", json!({"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 5, "podAffinityTerm": term(json!({"app": "web"}), zone)}]}))
            .info();
        let snap = snapshot(nodes, pods);
        let mut st = state(&snap);
        let list = snap.list().to_vec();
        assert!(pl.as_pre_score().expect("ps").pre_score(&mut st, &p, &list).is_success());
        let sp = pl.as_score().expect("s");
        let mut scores: Vec<NodeScore> = list.iter().map(|n| NodeScore { name: n.name().into(), score: sp.score(&st, &p, n).expect("score") }).collect();
        assert_eq!(scores.iter().map(|s| s.score).collect::<Vec<_>>(), vec![10, -5, 0]);
        sp.normalize_score(&st, &p, &mut scores);
        assert_eq!(scores.iter().map(|s| s.score).collect::<Vec<_>>(), vec![100, 0, 33]);
        // Nothing with affinity anywhere and no preferences: skip.
        let mut st = state(&snap);
        assert!(pl.as_pre_score().expect("ps").pre_score(&mut st, &pod("q").info(), &list).is_skip());
    }
}
