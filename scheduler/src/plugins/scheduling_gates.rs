//! SchedulingGates: a pod with `spec.schedulingGates` waits outside the active queue.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::framework::interface::{ActionType, ClusterEvent, EventObject, EventResource, Handle, Plugin, PreEnqueuePlugin, QueueingHint};
use crate::framework::node_info::PodExt;
use crate::framework::status::Status;

pub const NAME: &str = "SchedulingGates";

pub struct SchedulingGates;

impl SchedulingGates {
    pub fn new(_args: Option<&serde_json::Value>, _handle: &Arc<Handle>) -> Result<Arc<dyn Plugin>, String> {
        Ok(Arc::new(SchedulingGates))
    }
}

pub fn gates(pod: &Pod) -> Vec<String> {
    pod.spec.as_ref().and_then(|s| s.scheduling_gates.as_ref()).into_iter().flatten().map(|g| g.name.clone()).collect()
}

impl Plugin for SchedulingGates {
    fn name(&self) -> &'static str {
        NAME
    }

    fn events_to_register(&self) -> Option<Vec<ClusterEvent>> {
        Some(vec![ClusterEvent::new(EventResource::Pod, ActionType::UPDATE_POD_SCHEDULING_GATES_ELIMINATED)])
    }

    fn queueing_hint(&self, _event: &ClusterEvent, pod: &Pod, _old: Option<&EventObject>, new: Option<&EventObject>) -> QueueingHint {
        match new.and_then(EventObject::pod) {
            Some(m) if m.uid() == pod.uid() => QueueingHint::Queue,
            _ => QueueingHint::QueueSkip,
        }
    }

    fn as_pre_enqueue(&self) -> Option<&dyn PreEnqueuePlugin> {
        Some(self)
    }
}

impl PreEnqueuePlugin for SchedulingGates {
    fn pre_enqueue(&self, pod: &Pod) -> Status {
        let g = gates(pod);
        if g.is_empty() { Status::success() } else { Status::unresolvable(format!("waiting for scheduling gates: [{}]", g.join(" "))) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pod;
    use serde_json::json;

    #[test]
    fn gated_pods_wait() {
        assert!(SchedulingGates.pre_enqueue(&pod("p").build()).is_success());
        let gated = pod("p").spec("schedulingGates", json!([{"name": "a"}, {"name": "b"}])).build();
        assert_eq!(SchedulingGates.pre_enqueue(&gated), Status::unresolvable("waiting for scheduling gates: [a b]"));
    }
}
