//! The Deployment controller's pieces. For now: the `pod-template-hash` label computed as
//! upstream computes it, so ReplicaSets a Deployment owns carry the names upstream gives.

mod go_types;
pub mod template_hash;
