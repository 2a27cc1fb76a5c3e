//! The scheduling framework: statuses, cycle state, one trait per extension point, the
//! node/pod view plugins work on, and the runtime that runs a profile's plugins.

pub mod cycle_state;
pub mod interface;
pub mod listers;
pub mod node_info;
pub mod node_selector;
pub mod resource;
pub mod runtime;
pub mod status;
pub mod taints;

pub use cycle_state::CycleState;
pub use interface::{Handle, Plugin};
pub use node_info::{NodeInfo, PodInfo};
pub use runtime::{Framework, Registry};
pub use status::{Code, Status};
