//! The CRI calls behind the kubelet's streaming endpoints: `Exec`, `Attach` and
//! `PortForward` answer with a URL on the runtime's own streaming server (the kubelet then
//! proxies the client's upgrade request to it), and `ReopenContainerLog` asks the runtime to
//! reopen a container's log file after it was rotated.
//!
//! A trait of its own, beside [`super::Runtime`], so fakes of the runtime need not grow;
//! [`RemoteRuntime`] implements both.

use std::future::Future;

use super::remote::RemoteRuntime;
use super::{Error, Result, api};

/// The runtime's streaming calls.
pub trait Streaming: Send + Sync {
    /// `Exec`: the URL serving the command's streams.
    fn exec(&self, request: api::ExecRequest) -> impl Future<Output = Result<String>> + Send;
    /// `Attach`: the URL serving the container's (PID 1's) streams.
    fn attach(&self, request: api::AttachRequest) -> impl Future<Output = Result<String>> + Send;
    /// `PortForward`: the URL serving forwarded connections into the sandbox's network namespace.
    fn port_forward(&self, request: api::PortForwardRequest) -> impl Future<Output = Result<String>> + Send;
    /// `ReopenContainerLog`: the runtime reopens the container's log file at its path.
    fn reopen_container_log(&self, container_id: &str) -> impl Future<Output = Result<()>> + Send;
}

fn call(name: &'static str) -> impl FnOnce(tonic::Status) -> Error {
    move |status| Error::Call { call: name, status }
}

impl Streaming for RemoteRuntime {
    async fn exec(&self, request: api::ExecRequest) -> Result<String> {
        Ok(self.runtime.clone().exec(request).await.map_err(call("Exec"))?.into_inner().url)
    }

    async fn attach(&self, request: api::AttachRequest) -> Result<String> {
        Ok(self.runtime.clone().attach(request).await.map_err(call("Attach"))?.into_inner().url)
    }

    async fn port_forward(&self, request: api::PortForwardRequest) -> Result<String> {
        Ok(self.runtime.clone().port_forward(request).await.map_err(call("PortForward"))?.into_inner().url)
    }

    async fn reopen_container_log(&self, container_id: &str) -> Result<()> {
        let request = api::ReopenContainerLogRequest { container_id: container_id.into() };
        self.runtime.clone().reopen_container_log(request).await.map_err(call("ReopenContainerLog"))?;
        Ok(())
    }
}
