//! [`Runtime`] over gRPC: tonic clients of CRI v1's RuntimeService and ImageService on the
//! runtime's unix socket (the kubelet's `--container-runtime-endpoint`, `unix:///path`).

use std::path::PathBuf;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint, Uri};

use super::{Error, Result, Runtime, api};

/// How long a single CRI call may take (the kubelet's --runtime-request-timeout, 2m).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The CRI clients of one runtime socket. Cloning is cheap (one shared HTTP/2 connection).
#[derive(Clone)]
pub struct RemoteRuntime {
    pub(super) runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

/// `unix:///run/x.sock` or a bare path -> the socket path.
pub fn socket_path(endpoint: &str) -> PathBuf {
    PathBuf::from(endpoint.strip_prefix("unix://").unwrap_or(endpoint))
}

impl RemoteRuntime {
    /// Connects to the runtime at `endpoint` (`unix:///path` or a path).
    pub async fn connect(endpoint: &str) -> Result<Self> {
        let path = socket_path(endpoint);
        // The URI is a placeholder: the connector ignores it and dials the socket.
        let channel = Endpoint::from_static("http://cri.invalid")
            .timeout(REQUEST_TIMEOUT)
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?)) }
            }))
            .await
            .map_err(|source| Error::Connect { endpoint: endpoint.to_string(), source })?;
        Ok(RemoteRuntime { runtime: RuntimeServiceClient::new(channel.clone()), images: ImageServiceClient::new(channel) })
    }
}

fn call(name: &'static str) -> impl FnOnce(tonic::Status) -> Error {
    move |status| Error::Call { call: name, status }
}

impl Runtime for RemoteRuntime {
    async fn version(&self) -> Result<api::VersionResponse> {
        let req = api::VersionRequest { version: "v1".into() };
        Ok(self.runtime.clone().version(req).await.map_err(call("Version"))?.into_inner())
    }

    async fn status(&self) -> Result<api::RuntimeStatus> {
        let req = api::StatusRequest { verbose: false };
        let resp = self.runtime.clone().status(req).await.map_err(call("Status"))?.into_inner();
        Ok(resp.status.unwrap_or_default())
    }

    async fn run_pod_sandbox(&self, config: api::PodSandboxConfig) -> Result<String> {
        let req = api::RunPodSandboxRequest { config: Some(config), runtime_handler: String::new() };
        Ok(self.runtime.clone().run_pod_sandbox(req).await.map_err(call("RunPodSandbox"))?.into_inner().pod_sandbox_id)
    }

    async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        let req = api::StopPodSandboxRequest { pod_sandbox_id: id.into() };
        self.runtime.clone().stop_pod_sandbox(req).await.map_err(call("StopPodSandbox"))?;
        Ok(())
    }

    async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        let req = api::RemovePodSandboxRequest { pod_sandbox_id: id.into() };
        self.runtime.clone().remove_pod_sandbox(req).await.map_err(call("RemovePodSandbox"))?;
        Ok(())
    }

    async fn pod_sandbox_status(&self, id: &str) -> Result<api::PodSandboxStatus> {
        let req = api::PodSandboxStatusRequest { pod_sandbox_id: id.into(), verbose: false };
        let resp = self.runtime.clone().pod_sandbox_status(req).await.map_err(call("PodSandboxStatus"))?.into_inner();
        Ok(resp.status.unwrap_or_default())
    }

    async fn list_pod_sandboxes(&self, filter: Option<api::PodSandboxFilter>) -> Result<Vec<api::PodSandbox>> {
        let req = api::ListPodSandboxRequest { filter };
        Ok(self.runtime.clone().list_pod_sandbox(req).await.map_err(call("ListPodSandbox"))?.into_inner().items)
    }

    async fn create_container(&self, sandbox_id: &str, config: api::ContainerConfig, sandbox_config: api::PodSandboxConfig) -> Result<String> {
        let req = api::CreateContainerRequest {
            pod_sandbox_id: sandbox_id.into(),
            config: Some(config),
            sandbox_config: Some(sandbox_config),
        };
        Ok(self.runtime.clone().create_container(req).await.map_err(call("CreateContainer"))?.into_inner().container_id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        let req = api::StartContainerRequest { container_id: id.into() };
        self.runtime.clone().start_container(req).await.map_err(call("StartContainer"))?;
        Ok(())
    }

    async fn stop_container(&self, id: &str, timeout_seconds: i64) -> Result<()> {
        let req = api::StopContainerRequest { container_id: id.into(), timeout: timeout_seconds };
        self.runtime.clone().stop_container(req).await.map_err(call("StopContainer"))?;
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        let req = api::RemoveContainerRequest { container_id: id.into() };
        self.runtime.clone().remove_container(req).await.map_err(call("RemoveContainer"))?;
        Ok(())
    }

    async fn container_status(&self, id: &str) -> Result<api::ContainerStatus> {
        let req = api::ContainerStatusRequest { container_id: id.into(), verbose: false };
        let resp = self.runtime.clone().container_status(req).await.map_err(call("ContainerStatus"))?.into_inner();
        Ok(resp.status.unwrap_or_default())
    }

    async fn list_containers(&self, filter: Option<api::ContainerFilter>) -> Result<Vec<api::Container>> {
        let req = api::ListContainersRequest { filter };
        Ok(self.runtime.clone().list_containers(req).await.map_err(call("ListContainers"))?.into_inner().containers)
    }

    async fn exec_sync(&self, id: &str, cmd: Vec<String>, timeout_seconds: i64) -> Result<api::ExecSyncResponse> {
        let req = api::ExecSyncRequest { container_id: id.into(), cmd, timeout: timeout_seconds };
        Ok(self.runtime.clone().exec_sync(req).await.map_err(call("ExecSync"))?.into_inner())
    }

    async fn image_status(&self, image: &str) -> Result<Option<api::Image>> {
        let req = api::ImageStatusRequest { image: Some(image_spec(image)), verbose: false };
        Ok(self.images.clone().image_status(req).await.map_err(call("ImageStatus"))?.into_inner().image)
    }

    async fn pull_image(&self, image: &str, sandbox_config: Option<api::PodSandboxConfig>) -> Result<String> {
        let req = api::PullImageRequest { image: Some(image_spec(image)), auth: None, sandbox_config };
        Ok(self.images.clone().pull_image(req).await.map_err(call("PullImage"))?.into_inner().image_ref)
    }
}

fn image_spec(image: &str) -> api::ImageSpec {
    api::ImageSpec { image: image.into(), ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_name_sockets() {
        assert_eq!(socket_path("unix:///run/containerd/containerd.sock"), PathBuf::from("/run/containerd/containerd.sock"));
        assert_eq!(socket_path("/tmp/c.sock"), PathBuf::from("/tmp/c.sock"));
    }
}
