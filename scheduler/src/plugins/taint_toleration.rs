//! TaintToleration: a node's NoSchedule/NoExecute taints must be tolerated (filter), and
//! nodes with fewer untolerated PreferNoSchedule taints score higher.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};

use super::default_normalize_score;
use crate::framework::cycle_state::CycleState;
use crate::framework::interface::{ActionType, ClusterEvent, EventObject, EventResource, FilterPlugin, Handle, MAX_NODE_SCORE, NodeScore, Plugin, PreScorePlugin, QueueingHint, ScorePlugin};
use crate::framework::node_info::{NodeInfo, PodExt, PodInfo};
use crate::framework::status::Status;
use crate::framework::taints::{PREFER_NO_SCHEDULE, do_not_schedule, find_untolerated_taint, tolerations_tolerate_taint};

pub const NAME: &str = "TaintToleration";
pub const ERR_REASON_NOT_MATCH: &str = "node(s) had taints that the pod didn't tolerate";
const PRE_SCORE_KEY: &str = "PreScoreTaintToleration";

pub struct TaintToleration;

impl TaintToleration {
    pub fn new(_args: Option<&serde_json::Value>, _handle: &Arc<Handle>) -> Result<Arc<dyn Plugin>, String> {
        Ok(Arc::new(TaintToleration))
    }
}

fn taints(node: &Node) -> &[Taint] {
    node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default()
}

fn tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or_default()
}

/// The first NoSchedule/NoExecute taint of the node the pod does not tolerate.
pub fn untolerated_taint<'a>(pod: &Pod, node: &'a Node) -> Option<&'a Taint> {
    find_untolerated_taint(taints(node), tolerations(pod), do_not_schedule)
}

/// How many PreferNoSchedule taints of the node the tolerations leave untolerated.
pub fn count_intolerable_prefer_no_schedule(taints: &[Taint], tolerations: &[Toleration]) -> i64 {
    taints.iter().filter(|t| t.effect == PREFER_NO_SCHEDULE && !tolerations_tolerate_taint(tolerations, t)).count() as i64
}

#[derive(Clone)]
struct PreScoreState {
    tolerations_prefer_no_schedule: Vec<Toleration>,
}

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        NAME
    }

    fn events_to_register(&self) -> Option<Vec<ClusterEvent>> {
        Some(vec![
            ClusterEvent::new(EventResource::Node, ActionType::ADD | ActionType::UPDATE_NODE_TAINT),
            ClusterEvent::new(EventResource::Pod, ActionType::UPDATE_POD_TOLERATION),
        ])
    }

    fn queueing_hint(&self, _event: &ClusterEvent, pod: &Pod, old: Option<&EventObject>, new: Option<&EventObject>) -> QueueingHint {
        if let Some(modified) = new.and_then(EventObject::pod) {
            return if modified.uid() == pod.uid() { QueueingHint::Queue } else { QueueingHint::QueueSkip };
        }
        let Some(modified) = new.and_then(EventObject::node) else { return QueueingHint::Queue };
        let was_untolerated = old.and_then(EventObject::node).is_none_or(|o| untolerated_taint(pod, o).is_some());
        if was_untolerated && untolerated_taint(pod, modified).is_none() { QueueingHint::Queue } else { QueueingHint::QueueSkip }
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

impl FilterPlugin for TaintToleration {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        match untolerated_taint(&pod.pod, node.node()) {
            None => Status::success(),
            Some(t) => Status::unresolvable(format!("node(s) had untolerated taint {{{}: {}}}", t.key, t.value.as_deref().unwrap_or(""))),
        }
    }
}

impl PreScorePlugin for TaintToleration {
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, _nodes: &[Arc<NodeInfo>]) -> Status {
        let prefer = tolerations(&pod.pod).iter().filter(|t| t.effect.as_deref().is_none_or(|e| e.is_empty() || e == PREFER_NO_SCHEDULE)).cloned().collect();
        state.write(PRE_SCORE_KEY, PreScoreState { tolerations_prefer_no_schedule: prefer });
        Status::success()
    }
}

impl ScorePlugin for TaintToleration {
    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let s = state.read::<PreScoreState>(PRE_SCORE_KEY).ok_or_else(|| Status::error(format!("failed to read {PRE_SCORE_KEY:?} from cycleState")))?;
        Ok(count_intolerable_prefer_no_schedule(taints(node.node()), &s.tolerations_prefer_no_schedule))
    }

    fn normalize_score(&self, _state: &CycleState, _pod: &PodInfo, scores: &mut [NodeScore]) -> Status {
        default_normalize_score(MAX_NODE_SCORE, true, scores);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod, snapshot, state};

    #[test]
    fn filter_table() {
        let cases = [
            ("no taints", pod("p"), node("n"), None),
            ("untolerated NoSchedule", pod("p"), node("n").taint("dedicated", "gpu", "NoSchedule"), Some("node(s) had untolerated taint {dedicated: gpu}")),
            ("control plane taint without value", pod("p"), node("n").taint("node-role.kubernetes.io/control-plane", "", "NoSchedule"), Some("node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }")),
            ("tolerated", pod("p").toleration("dedicated", "Equal", "gpu", "NoSchedule"), node("n").taint("dedicated", "gpu", "NoSchedule"), None),
            ("PreferNoSchedule never filters", pod("p"), node("n").taint("k", "v", "PreferNoSchedule"), None),
            ("NoExecute filters", pod("p"), node("n").taint("k", "v", "NoExecute"), Some("node(s) had untolerated taint {k: v}")),
            ("value mismatch", pod("p").toleration("dedicated", "Equal", "cpu", "NoSchedule"), node("n").taint("dedicated", "gpu", "NoSchedule"), Some("node(s) had untolerated taint {dedicated: gpu}")),
        ];
        for (name, p, n, want) in cases {
            let n = n.build();
            let snap = snapshot(vec![n.clone()], vec![]);
            let got = TaintToleration.filter(&state(&snap), &p.info(), &NodeInfo::new(n));
            assert_eq!(got, want.map(Status::unresolvable).unwrap_or_default(), "{name}");
        }
    }

    #[test]
    fn score_prefers_fewer_intolerable_taints() {
        // Upstream's table: 0 intolerable -> 100, the most -> 0.
        let nodes = vec![
            node("n0").build(),
            node("n1").taint("a", "1", "PreferNoSchedule").build(),
            node("n2").taint("a", "1", "PreferNoSchedule").taint("b", "2", "PreferNoSchedule").build(),
            node("n3").taint("a", "1", "PreferNoSchedule").taint("c", "3", "PreferNoSchedule").build(),
        ];
        let p = pod("p").toleration("c", "Equal", "3", "PreferNoSchedule").info();
        let snap = snapshot(nodes.clone(), vec![]);
        let mut st = state(&snap);
        let infos: Vec<_> = nodes.into_iter().map(|n| Arc::new(NodeInfo::new(n))).collect();
        assert!(TaintToleration.pre_score(&mut st, &p, &infos).is_success());
        let mut scores: Vec<NodeScore> = infos.iter().map(|n| NodeScore { name: n.name().into(), score: TaintToleration.score(&st, &p, n).expect("score") }).collect();
        TaintToleration.normalize_score(&st, &p, &mut scores);
        assert_eq!(scores.iter().map(|s| s.score).collect::<Vec<_>>(), vec![100, 50, 0, 50]);
    }
}
