//! Pods in CRI terms: how a Pod becomes the sandbox and container configs the runtime is
//! asked for (upstream's kuberuntime manager), kept pure so each rule is a table test.

pub mod container;
pub mod dns;
pub mod linux;
pub mod sandbox;
