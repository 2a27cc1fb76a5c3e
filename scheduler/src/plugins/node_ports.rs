//! NodePorts: a pod's host ports must be free on the node.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::framework::cycle_state::CycleState;
use crate::framework::interface::{ActionType, ClusterEvent, EventObject, EventResource, FilterPlugin, Handle, Plugin, PreFilterPlugin, PreFilterResult, QueueingHint};
use crate::framework::node_info::{HostPortInfo, NodeInfo, PodExt, PodInfo, host_ports};
use crate::framework::status::Status;

pub const NAME: &str = "NodePorts";
pub const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";
const PRE_FILTER_KEY: &str = "PreFilterNodePorts";

type WantPorts = Vec<(String, String, i32)>;

pub struct NodePorts;

impl NodePorts {
    pub fn new(_args: Option<&serde_json::Value>, _handle: &Arc<Handle>) -> Result<Arc<dyn Plugin>, String> {
        Ok(Arc::new(NodePorts))
    }
}

/// Whether none of `want` clashes with the ports in use.
pub fn fits_ports(want: &[(String, String, i32)], used: &HostPortInfo) -> bool {
    !want.iter().any(|(ip, proto, port)| used.check_conflict(ip, proto, *port))
}

pub fn fits(pod: &Pod, node: &NodeInfo) -> bool {
    fits_ports(&host_ports(pod), &node.used_ports)
}

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        NAME
    }

    fn events_to_register(&self) -> Option<Vec<ClusterEvent>> {
        Some(vec![ClusterEvent::new(EventResource::Pod, ActionType::DELETE), ClusterEvent::new(EventResource::Node, ActionType::ADD)])
    }

    fn queueing_hint(&self, _event: &ClusterEvent, pod: &Pod, old: Option<&EventObject>, new: Option<&EventObject>) -> QueueingHint {
        if new.is_some() {
            return QueueingHint::Queue;
        }
        let Some(deleted) = old.and_then(EventObject::pod) else { return QueueingHint::Queue };
        if deleted.node_name().is_empty() && deleted.nominated_node_name().is_empty() {
            return QueueingHint::QueueSkip;
        }
        let mut freed = HostPortInfo::default();
        for (ip, proto, port) in host_ports(deleted) {
            freed.add(&ip, &proto, port);
        }
        if freed.is_empty() || fits_ports(&host_ports(pod), &freed) { QueueingHint::QueueSkip } else { QueueingHint::Queue }
    }

    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl PreFilterPlugin for NodePorts {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo) -> (PreFilterResult, Status) {
        let ports = host_ports(&pod.pod);
        if ports.is_empty() {
            return (PreFilterResult::all_nodes(), Status::skip());
        }
        state.write::<WantPorts>(PRE_FILTER_KEY, ports);
        (PreFilterResult::all_nodes(), Status::success())
    }
}

impl FilterPlugin for NodePorts {
    fn filter(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(want) = state.read::<WantPorts>(PRE_FILTER_KEY) else {
            return Status::error(format!("reading {PRE_FILTER_KEY:?} from cycleState: not found"));
        };
        if fits_ports(want, &node.used_ports) { Status::success() } else { Status::unschedulable(ERR_REASON) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, node_info, pod, snapshot, state};
    use serde_json::json;

    #[test]
    fn filter_table() {
        let cases = [
            ("no ports", pod("p"), vec![pod("e").node("n").host_port(80).build()], Status::success()),
            ("free port", pod("p").host_port(8080), vec![pod("e").node("n").host_port(80).build()], Status::success()),
            ("taken port", pod("p").host_port(80), vec![pod("e").node("n").host_port(80).build()], Status::unschedulable(ERR_REASON)),
            (
                "same port other protocol",
                pod("p").spec("containers", json!([{"name": "c", "ports": [{"containerPort": 53, "hostPort": 53, "protocol": "UDP"}]}])),
                vec![pod("e").node("n").host_port(53).build()],
                Status::success(),
            ),
            (
                "sidecar port counts",
                pod("p").host_port(9000),
                vec![pod("e").node("n").spec("initContainers", json!([{"name": "s", "restartPolicy": "Always", "ports": [{"containerPort": 9000, "hostPort": 9000}]}])).build()],
                Status::unschedulable(ERR_REASON),
            ),
        ];
        for (name, p, existing, want) in cases {
            let n = node("n").build();
            let snap = snapshot(vec![n.clone()], existing.clone());
            let mut st = state(&snap);
            let info = p.info();
            let (_, s) = NodePorts.pre_filter(&mut st, &info);
            let got = if s.is_skip() { Status::success() } else { NodePorts.filter(&st, &info, &node_info(n, existing)) };
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn hint_on_delete_of_conflicting_pod() {
        let p = pod("p").host_port(80).build();
        let ev = ClusterEvent::ASSIGNED_POD_DELETE;
        let holder = EventObject::Pod(Arc::new(pod("e").node("n").host_port(80).build()));
        let other = EventObject::Pod(Arc::new(pod("o").node("n").host_port(81).build()));
        assert_eq!(NodePorts.queueing_hint(&ev, &p, Some(&holder), None), QueueingHint::Queue);
        assert_eq!(NodePorts.queueing_hint(&ev, &p, Some(&other), None), QueueingHint::QueueSkip);
    }
}
