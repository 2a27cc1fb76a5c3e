//! Node selectors and node affinity matching: shared with the controllers (machinery).

pub use ironkube_machinery::scheduling::node_selector::*;
