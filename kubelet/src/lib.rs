//! ironkube's kubelet: the node agent that runs pods through the Container Runtime
//! Interface. So far: the CRI layer ([`cri`]) — our [`cri::Runtime`] trait, its tonic client
//! over containerd's socket, and the node's private containerd set-up.

pub mod cri;
