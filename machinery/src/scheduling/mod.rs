//! Scheduling helpers every component shares (upstream's component-helpers/scheduling):
//! node selectors and required node affinity as the scheduler, the DaemonSet controller
//! and the kubelet's admission match them, and taints against tolerations.

pub mod node_selector;
pub mod taints;
