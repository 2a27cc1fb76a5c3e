//! PrioritySort: the queue order (higher `spec.priority` first, then earlier enqueued). The
//! queue implements it; the plugin exists so configurations naming it resolve.

use std::sync::Arc;

use crate::framework::interface::{Handle, Plugin};

pub const NAME: &str = "PrioritySort";

pub struct PrioritySort;

impl PrioritySort {
    pub fn new(_args: Option<&serde_json::Value>, _handle: &Arc<Handle>) -> Result<Arc<dyn Plugin>, String> {
        Ok(Arc::new(PrioritySort))
    }
}

impl Plugin for PrioritySort {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Option<Vec<crate::framework::interface::ClusterEvent>> {
        Some(Vec::new())
    }
}
