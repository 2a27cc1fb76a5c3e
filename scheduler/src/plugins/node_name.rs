//! NodeName: a pod naming a node in `spec.nodeName` fits only there.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::framework::cycle_state::CycleState;
use crate::framework::interface::{ActionType, ClusterEvent, EventResource, FilterPlugin, Handle, Plugin};
use crate::framework::node_info::{NodeInfo, PodExt, PodInfo};
use crate::framework::status::Status;

pub const NAME: &str = "NodeName";
pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

pub struct NodeName;

impl NodeName {
    pub fn new(_args: Option<&serde_json::Value>, _handle: &Arc<Handle>) -> Result<Arc<dyn Plugin>, String> {
        Ok(Arc::new(NodeName))
    }
}

pub fn fits(pod: &Pod, node_name: &str) -> bool {
    pod.node_name().is_empty() || pod.node_name() == node_name
}

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        NAME
    }

    fn events_to_register(&self) -> Option<Vec<ClusterEvent>> {
        Some(vec![ClusterEvent::new(EventResource::Node, ActionType::ADD)])
    }

    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl FilterPlugin for NodeName {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if fits(&pod.pod, node.name()) { Status::success() } else { Status::unresolvable(ERR_REASON) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod, snapshot, state};

    #[test]
    fn filter_table() {
        let cases = [("no node name", pod("p"), true), ("same node", pod("p").node("n1"), true), ("other node", pod("p").node("n2"), false)];
        let n = node("n1").build();
        let snap = snapshot(vec![n.clone()], vec![]);
        for (name, p, fit) in cases {
            let got = NodeName.filter(&state(&snap), &p.info(), &NodeInfo::new(n.clone()));
            assert_eq!(got, if fit { Status::success() } else { Status::unresolvable(ERR_REASON) }, "{name}");
        }
    }
}
