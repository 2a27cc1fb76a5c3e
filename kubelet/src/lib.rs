//! ironkube's kubelet: the node agent that runs pods through the Container Runtime
//! Interface. So far: the CRI layer ([`cri`]) — our [`cri::Runtime`] trait, its tonic client
//! over containerd's socket, and the node's private containerd set-up — and the translation
//! of Pods into CRI configs ([`kuberuntime`]) and the pod phase and conditions the kubelet
//! reports ([`status`]); its Node's registration, status and Lease ([`node`]).

pub mod cri;
pub mod kuberuntime;
pub mod lifecycle;
pub mod logs;
pub mod node;
pub mod probes;
pub mod server;
pub mod status;
pub mod agent;
pub mod events;
pub mod pods;
pub mod volumes;
pub mod env;
pub mod downward;
