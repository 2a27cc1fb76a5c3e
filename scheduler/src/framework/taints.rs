//! Taints and tolerations: shared with the controllers (machinery).

pub use ironkube_machinery::scheduling::taints::*;
