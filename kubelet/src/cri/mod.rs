//! The Container Runtime Interface as the kubelet uses it.
//!
//! [`Runtime`] is our own trait over CRI `runtime.v1`'s RuntimeService and ImageService:
//! pod workers talk to it, so they can be unit-tested against a fake; [`remote::RemoteRuntime`]
//! implements it with tonic over the runtime's unix socket. Messages are the CRI's own
//! (re-exported as [`api`]), so nothing is translated twice.

pub mod containerd;
pub mod remote;
pub mod streaming;

use std::future::Future;

/// The CRI v1 messages (`runtime.v1`).
pub use k8s_cri::v1 as api;

/// What failed talking to the runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connecting to the container runtime at {endpoint}: {source}")]
    Connect {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("CRI {call}: {status}")]
    Call {
        call: &'static str,
        #[source]
        status: tonic::Status,
    },
}

impl Error {
    /// The gRPC code of a failed call (`None` when connecting failed).
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            Error::Connect { .. } => None,
            Error::Call { status, .. } => Some(status.code()),
        }
    }

    /// Whether the runtime said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(tonic::Code::NotFound)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// The CRI calls the kubelet makes. Each takes the CRI request message and returns the
/// interesting part of the response.
pub trait Runtime: Send + Sync {
    /// `Version`: the runtime's name, version and CRI version.
    fn version(&self) -> impl Future<Output = Result<api::VersionResponse>> + Send;
    /// `Status`: whether the runtime and its network are ready.
    fn status(&self) -> impl Future<Output = Result<api::RuntimeStatus>> + Send;

    /// `RunPodSandbox`: returns the sandbox ID.
    fn run_pod_sandbox(&self, config: api::PodSandboxConfig) -> impl Future<Output = Result<String>> + Send;
    fn stop_pod_sandbox(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    fn remove_pod_sandbox(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    fn pod_sandbox_status(&self, id: &str) -> impl Future<Output = Result<api::PodSandboxStatus>> + Send;
    fn list_pod_sandboxes(&self, filter: Option<api::PodSandboxFilter>) -> impl Future<Output = Result<Vec<api::PodSandbox>>> + Send;

    /// `CreateContainer` in a sandbox: returns the container ID.
    fn create_container(
        &self,
        sandbox_id: &str,
        config: api::ContainerConfig,
        sandbox_config: api::PodSandboxConfig,
    ) -> impl Future<Output = Result<String>> + Send;
    fn start_container(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    /// `StopContainer`: SIGTERM (or the image's stop signal), SIGKILL after `timeout_seconds`.
    fn stop_container(&self, id: &str, timeout_seconds: i64) -> impl Future<Output = Result<()>> + Send;
    fn remove_container(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    fn container_status(&self, id: &str) -> impl Future<Output = Result<api::ContainerStatus>> + Send;
    fn list_containers(&self, filter: Option<api::ContainerFilter>) -> impl Future<Output = Result<Vec<api::Container>>> + Send;
    /// `ExecSync`: runs `cmd` in the container and returns its exit code, stdout and stderr.
    fn exec_sync(&self, id: &str, cmd: Vec<String>, timeout_seconds: i64) -> impl Future<Output = Result<api::ExecSyncResponse>> + Send;

    /// `ImageStatus`: the image if the runtime has it.
    fn image_status(&self, image: &str) -> impl Future<Output = Result<Option<api::Image>>> + Send;
    /// `PullImage`: returns the image reference the runtime stored.
    fn pull_image(&self, image: &str, sandbox_config: Option<api::PodSandboxConfig>) -> impl Future<Output = Result<String>> + Send;
}
