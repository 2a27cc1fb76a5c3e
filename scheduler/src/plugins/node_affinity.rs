//! NodeAffinity: `nodeSelector` and required node affinity filter nodes; preferred node
//! affinity scores them. Args: `addedAffinity`, applied to every pod of the profile.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{NodeAffinity as ApiNodeAffinity, Pod};
use serde::Deserialize;

use super::default_normalize_score;
use crate::framework::cycle_state::CycleState;
use crate::framework::interface::{ActionType, ClusterEvent, EventObject, EventResource, FilterPlugin, Handle, MAX_NODE_SCORE, NodeScore, Plugin, PreFilterPlugin, PreFilterResult, PreScorePlugin, QueueingHint, ScorePlugin};
use crate::framework::node_info::{NodeInfo, PodInfo};
use crate::framework::node_selector::{NodeSelectorMatcher, OBJECT_NAME_FIELD, PreferredTerms, RequiredNodeAffinity};
use crate::framework::status::Status;

pub const NAME: &str = "NodeAffinity";
pub const ERR_REASON_POD: &str = "node(s) didn't match Pod's node affinity/selector";
pub const ERR_REASON_ENFORCED: &str = "node(s) didn't match scheduler-enforced node affinity";
pub const ERR_REASON_CONFLICT: &str = "pod affinity terms conflict";
const PRE_FILTER_KEY: &str = "PreFilterNodeAffinity";
const PRE_SCORE_KEY: &str = "PreScoreNodeAffinity";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Args {
    #[serde(default)]
    added_affinity: Option<ApiNodeAffinity>,
}

pub struct NodeAffinity {
    added_node_selector: Option<NodeSelectorMatcher>,
    added_preferred: Option<PreferredTerms>,
}

impl NodeAffinity {
    pub fn new(args: Option<&serde_json::Value>, _handle: &Arc<Handle>) -> Result<Arc<dyn Plugin>, String> {
        let args: Args = match args {
            Some(v) if !v.is_null() => serde_json::from_value(v.clone()).map_err(|e| format!("decoding NodeAffinityArgs: {e}"))?,
            _ => Args::default(),
        };
        let added = args.added_affinity.unwrap_or_default();
        let added_node_selector = match added.required_during_scheduling_ignored_during_execution.as_ref() {
            Some(ns) => {
                let m = NodeSelectorMatcher::new(ns);
                if let Some(e) = m.error() {
                    return Err(format!("parsing addedAffinity.requiredDuringSchedulingIgnoredDuringExecution: {e}"));
                }
                Some(m)
            }
            None => None,
        };
        let added_preferred = match added.preferred_during_scheduling_ignored_during_execution.as_deref() {
            Some(t) if !t.is_empty() => Some(PreferredTerms::new(t).map_err(|e| format!("parsing addedAffinity.preferredDuringSchedulingIgnoredDuringExecution: {e}"))?),
            _ => None,
        };
        Ok(Arc::new(NodeAffinity { added_node_selector, added_preferred }))
    }
}

fn required_terms_present(pod: &Pod) -> bool {
    pod.spec.as_ref().and_then(|s| s.affinity.as_ref()).and_then(|a| a.node_affinity.as_ref()).is_some_and(|na| na.required_during_scheduling_ignored_during_execution.is_some())
}

fn preferred(pod: &Pod) -> Result<Option<PreferredTerms>, String> {
    match pod.spec.as_ref().and_then(|s| s.affinity.as_ref()).and_then(|a| a.node_affinity.as_ref()).and_then(|na| na.preferred_during_scheduling_ignored_during_execution.as_deref()) {
        Some(terms) => PreferredTerms::new(terms).map(Some),
        None => Ok(None),
    }
}

/// The node names the pod's required terms pin it to via `matchFields` on
/// `metadata.name` (upstream's PreFilter narrowing); `None` if any term does not pin.
pub fn pinned_node_names(pod: &Pod) -> Option<BTreeSet<String>> {
    let terms = &pod.spec.as_ref()?.affinity.as_ref()?.node_affinity.as_ref()?.required_during_scheduling_ignored_during_execution.as_ref()?.node_selector_terms;
    if terms.is_empty() {
        return None;
    }
    let mut names = BTreeSet::new();
    for t in terms {
        let mut term_names: Option<BTreeSet<String>> = None;
        for r in t.match_fields.iter().flatten().filter(|r| r.key == OBJECT_NAME_FIELD && r.operator == "In") {
            let s: BTreeSet<String> = r.values.clone().unwrap_or_default().into_iter().collect();
            term_names = Some(match term_names {
                None => s,
                Some(prev) => prev.intersection(&s).cloned().collect(),
            });
        }
        names.extend(term_names?);
    }
    Some(names)
}

#[derive(Clone)]
struct PreScoreState {
    preferred: Option<Arc<PreferredTerms>>,
}

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        NAME
    }

    fn events_to_register(&self) -> Option<Vec<ClusterEvent>> {
        Some(vec![ClusterEvent::new(EventResource::Node, ActionType::ADD | ActionType::UPDATE_NODE_LABEL)])
    }

    fn queueing_hint(&self, _event: &ClusterEvent, pod: &Pod, old: Option<&EventObject>, new: Option<&EventObject>) -> QueueingHint {
        let Some(modified) = new.and_then(EventObject::node) else { return QueueingHint::Queue };
        if self.added_node_selector.as_ref().is_some_and(|s| !s.matches(modified)) {
            return QueueingHint::QueueSkip;
        }
        let required = RequiredNodeAffinity::of(pod);
        if !required.matches(modified) {
            return QueueingHint::QueueSkip;
        }
        match old.and_then(EventObject::node) {
            Some(original) if required.matches(original) => QueueingHint::QueueSkip,
            _ => QueueingHint::Queue,
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

impl PreFilterPlugin for NodeAffinity {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo) -> (PreFilterResult, Status) {
        let has_selector = pod.pod.spec.as_ref().is_some_and(|s| s.node_selector.is_some());
        if !required_terms_present(&pod.pod) && self.added_node_selector.is_none() && !has_selector {
            return (PreFilterResult::all_nodes(), Status::skip());
        }
        state.write(PRE_FILTER_KEY, Arc::new(RequiredNodeAffinity::of(&pod.pod)));
        match pinned_node_names(&pod.pod) {
            Some(names) if names.is_empty() => (PreFilterResult::all_nodes(), Status::unresolvable(ERR_REASON_CONFLICT)),
            Some(names) => (PreFilterResult::nodes(names), Status::success()),
            None => (PreFilterResult::all_nodes(), Status::success()),
        }
    }
}

impl FilterPlugin for NodeAffinity {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if self.added_node_selector.as_ref().is_some_and(|s| !s.matches(node.node())) {
            return Status::unresolvable(ERR_REASON_ENFORCED);
        }
        let matches = match state.read::<Arc<RequiredNodeAffinity>>(PRE_FILTER_KEY) {
            Some(required) => required.matches(node.node()),
            None => RequiredNodeAffinity::of(&pod.pod).matches(node.node()),
        };
        if matches { Status::success() } else { Status::unresolvable(ERR_REASON_POD) }
    }
}

impl PreScorePlugin for NodeAffinity {
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, _nodes: &[Arc<NodeInfo>]) -> Status {
        let preferred = match preferred(&pod.pod) {
            Ok(p) => p,
            Err(e) => return Status::error(e),
        };
        if preferred.is_none() && self.added_preferred.is_none() {
            return Status::skip();
        }
        state.write(PRE_SCORE_KEY, PreScoreState { preferred: preferred.map(Arc::new) });
        Status::success()
    }
}

impl ScorePlugin for NodeAffinity {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let mut count = self.added_preferred.as_ref().map(|p| p.score(node.node())).unwrap_or(0);
        let preferred = match state.read::<PreScoreState>(PRE_SCORE_KEY) {
            Some(s) => s.preferred.clone(),
            None => preferred(&pod.pod).map_err(Status::error)?.map(Arc::new),
        };
        if let Some(p) = preferred {
            count += p.score(node.node());
        }
        Ok(count)
    }

    fn normalize_score(&self, _state: &CycleState, _pod: &PodInfo, scores: &mut [NodeScore]) -> Status {
        default_normalize_score(MAX_NODE_SCORE, false, scores);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::listers::StaticListers;
    use crate::testing::{node, pod, snapshot, state};
    use serde_json::json;

    fn plugin(args: Option<serde_json::Value>) -> Arc<dyn Plugin> {
        NodeAffinity::new(args.as_ref(), &Handle::for_tests(Arc::new(StaticListers::default()))).expect("plugin")
    }

    fn run_filter(pl: &dyn Plugin, p: &PodInfo, n: k8s_openapi::api::core::v1::Node) -> Status {
        let snap = snapshot(vec![n.clone()], vec![]);
        let mut st = state(&snap);
        let (_, s) = pl.as_pre_filter().expect("prefilter").pre_filter(&mut st, p);
        if s.is_skip() {
            return Status::success();
        }
        if !s.is_success() {
            return s;
        }
        pl.as_filter().expect("filter").filter(&st, p, &NodeInfo::new(n))
    }

    fn required(expr: serde_json::Value) -> serde_json::Value {
        json!({"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": expr}]}})
    }

    #[test]
    fn filter_table() {
        let pl = plugin(None);
        let n = || node("n1").label("zone", "a").label("disk", "ssd").build();
        let cases = [
            ("nothing", pod("p"), Status::success()),
            ("selector matches", pod("p").node_selector("zone", "a"), Status::success()),
            ("selector misses", pod("p").node_selector("zone", "b"), Status::unresolvable(ERR_REASON_POD)),
            ("required In", pod("p").affinity("nodeAffinity", required(json!([{"key": "disk", "operator": "In", "values": ["ssd"]}]))), Status::success()),
            ("required NotIn", pod("p").affinity("nodeAffinity", required(json!([{"key": "disk", "operator": "NotIn", "values": ["ssd"]}]))), Status::unresolvable(ERR_REASON_POD)),
            ("selector and affinity both needed", pod("p").node_selector("zone", "b").affinity("nodeAffinity", required(json!([{"key": "disk", "operator": "Exists"}]))), Status::unresolvable(ERR_REASON_POD)),
            (
                "conflicting matchFields",
                pod("p").affinity("nodeAffinity", json!({"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": ["n1"]}, {"key": "metadata.name", "operator": "In", "values": ["n2"]}]}]}})),
                Status::unresolvable(ERR_REASON_CONFLICT),
            ),
        ];
        for (name, p, want) in cases {
            assert_eq!(run_filter(pl.as_ref(), &p.info(), n()), want, "{name}");
        }
        let enforced = plugin(Some(json!({"addedAffinity": required(json!([{"key": "zone", "operator": "In", "values": ["b"]}]))})));
        assert_eq!(run_filter(enforced.as_ref(), &pod("p").info(), n()), Status::unresolvable(ERR_REASON_ENFORCED));
    }

    #[test]
    fn prefilter_pins_nodes_by_name() {
        let p = pod("p").affinity("nodeAffinity", json!({"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1", "n2"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n3"]}]}]}}));
        assert_eq!(pinned_node_names(&p.build()), Some(["n1", "n2", "n3"].iter().map(|s| s.to_string()).collect()));
        let unpinned = pod("p").affinity("nodeAffinity", required(json!([{"key": "a", "operator": "Exists"}])));
        assert_eq!(pinned_node_names(&unpinned.build()), None);
    }

    #[test]
    fn score_normalizes_preferred_weights() {
        let pl = plugin(None);
        let p = pod("p")
            .affinity(
                "nodeAffinity",
                json!({"preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 2, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
                    {"weight": 8, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}),
            )
            .info();
        let nodes = vec![node("n1").label("zone", "a").build(), node("n2").label("disk", "ssd").build(), node("n3").label("zone", "a").label("disk", "ssd").build(), node("n4").build()];
        let snap = snapshot(nodes.clone(), vec![]);
        let mut st = state(&snap);
        let infos: Vec<_> = nodes.into_iter().map(|n| Arc::new(NodeInfo::new(n))).collect();
        assert!(pl.as_pre_score().expect("prescore").pre_score(&mut st, &p, &infos).is_success());
        let sp = pl.as_score().expect("score");
        let mut scores: Vec<NodeScore> = infos.iter().map(|n| NodeScore { name: n.name().into(), score: sp.score(&st, &p, n).expect("score") }).collect();
        sp.normalize_score(&st, &p, &mut scores);
        assert_eq!(scores.iter().map(|s| s.score).collect::<Vec<_>>(), vec![20, 80, 100, 0]);
        let plain = pod("q").info();
        assert!(pl.as_pre_score().expect("prescore").pre_score(&mut st, &plain, &infos).is_skip());
    }
}
