//! NodeUnschedulable: nodes with `spec.unschedulable` only take pods tolerating the
//! `node.kubernetes.io/unschedulable:NoSchedule` taint.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Taint};

use crate::framework::cycle_state::CycleState;
use crate::framework::interface::{ActionType, ClusterEvent, EventObject, EventResource, FilterPlugin, Handle, Plugin, QueueingHint};
use crate::framework::node_info::{NodeInfo, PodExt, PodInfo};
use crate::framework::status::Status;
use crate::framework::taints::{NO_SCHEDULE, TAINT_NODE_UNSCHEDULABLE, tolerations_tolerate_taint};

pub const NAME: &str = "NodeUnschedulable";
pub const ERR_REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";

pub struct NodeUnschedulable;

impl NodeUnschedulable {
    pub fn new(_args: Option<&serde_json::Value>, _handle: &Arc<Handle>) -> Result<Arc<dyn Plugin>, String> {
        Ok(Arc::new(NodeUnschedulable))
    }
}

fn unschedulable(node: &Node) -> bool {
    node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false)
}

fn tolerates_unschedulable(pod: &Pod) -> bool {
    let taint = Taint { key: TAINT_NODE_UNSCHEDULABLE.into(), effect: NO_SCHEDULE.into(), ..Default::default() };
    tolerations_tolerate_taint(pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or_default(), &taint)
}

/// Whether the pod may go to the node as far as `spec.unschedulable` goes.
pub fn fits(pod: &Pod, node: &Node) -> bool {
    !unschedulable(node) || tolerates_unschedulable(pod)
}

impl Plugin for NodeUnschedulable {
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
            return if modified.uid() == pod.uid() && tolerates_unschedulable(modified) { QueueingHint::Queue } else { QueueingHint::QueueSkip };
        }
        let Some(modified) = new.and_then(EventObject::node) else { return QueueingHint::Queue };
        match old.and_then(EventObject::node) {
            Some(original) if unschedulable(original) && !unschedulable(modified) => QueueingHint::Queue,
            None if !unschedulable(modified) => QueueingHint::Queue,
            _ => QueueingHint::QueueSkip,
        }
    }

    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl FilterPlugin for NodeUnschedulable {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if fits(&pod.pod, node.node()) { Status::success() } else { Status::unresolvable(ERR_REASON_UNSCHEDULABLE) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod, snapshot, state};

    #[test]
    fn filter_table() {
        let cases = [
            ("schedulable node", pod("p"), node("n").build(), Status::success()),
            ("unschedulable node", pod("p"), node("n").unschedulable().build(), Status::unresolvable(ERR_REASON_UNSCHEDULABLE)),
            ("tolerated", pod("p").toleration(TAINT_NODE_UNSCHEDULABLE, "Exists", "", "NoSchedule"), node("n").unschedulable().build(), Status::success()),
            ("tolerate everything", pod("p").toleration("", "Exists", "", ""), node("n").unschedulable().build(), Status::success()),
            ("wrong effect", pod("p").toleration(TAINT_NODE_UNSCHEDULABLE, "Exists", "", "NoExecute"), node("n").unschedulable().build(), Status::unresolvable(ERR_REASON_UNSCHEDULABLE)),
        ];
        for (name, p, n, want) in cases {
            let snap = snapshot(vec![n.clone()], vec![]);
            let info = NodeInfo::new(n);
            assert_eq!(NodeUnschedulable.filter(&state(&snap), &p.info(), &info), want, "{name}");
        }
    }

    #[test]
    fn hints() {
        let p = pod("p").build();
        let ev = ClusterEvent::new(EventResource::Node, ActionType::UPDATE_NODE_TAINT);
        let was = EventObject::Node(Arc::new(node("n").unschedulable().build()));
        let now = EventObject::Node(Arc::new(node("n").build()));
        assert_eq!(NodeUnschedulable.queueing_hint(&ev, &p, Some(&was), Some(&now)), QueueingHint::Queue);
        assert_eq!(NodeUnschedulable.queueing_hint(&ev, &p, Some(&now), Some(&was)), QueueingHint::QueueSkip);
        assert_eq!(NodeUnschedulable.queueing_hint(&ev, &p, None, Some(&now)), QueueingHint::Queue);
    }
}
