//! The Deployment controller ([`controller`]), its rollout arithmetic ([`util`]) and the
//! `pod-template-hash` label computed as upstream computes it ([`template_hash`]), so the
//! ReplicaSets a Deployment owns carry the names upstream gives.

pub mod controller;
mod go_types;
pub mod template_hash;
pub mod util;
