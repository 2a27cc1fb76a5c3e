//! Container probes, as upstream's kubelet runs them (pkg/kubelet/prober, pkg/probe/...):
//! one probe attempt of any kind ([`run_once`]: [`exec`] through the CRI, [`http`], [`tcp`]
//! and [`grpc`] to the pod IP), and the [`Manager`] that runs a worker per container and
//! probe kind on its own task, applies periods, delays and thresholds, and keeps the results
//! the pod worker reads (readiness, startup, containers to restart).
//!
//! [`http`] also serves the lifecycle hooks' HTTP handler (crate::lifecycle).

pub mod exec;
pub mod grpc;
pub mod http;
pub mod manager;
pub mod messages;
pub mod port;
pub mod tcp;

#[cfg(test)]
pub(crate) mod fake_runtime;

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};

use crate::cri::Runtime;
use crate::kuberuntime::container::expand;

pub use manager::{Config, KillReason, KillRequest, Manager, ProbeEvent, ProbeResult};

/// The three kinds of probe a container may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

impl ProbeKind {
    /// As upstream writes it in events: `Liveness`, `Readiness`, `Startup`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Startup => "Startup",
        }
    }

    /// The container's probe of this kind.
    pub fn of(self, container: &Container) -> Option<&Probe> {
        match self {
            ProbeKind::Liveness => container.liveness_probe.as_ref(),
            ProbeKind::Readiness => container.readiness_probe.as_ref(),
            ProbeKind::Startup => container.startup_probe.as_ref(),
        }
    }
}

/// The outcome of one probe attempt (upstream's probe.Result with its output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// A success with something to tell (an HTTP redirect that was not followed); upstream
    /// records a `ProbeWarning` event with it.
    Warning(String),
    /// A failure with upstream's message (the text after `Liveness probe failed: `).
    Failure(String),
    /// The probe could not be run (an error, not an answer); upstream retries it up to three
    /// times and then throws the result away.
    Unknown(String),
}

/// Where a probe goes: exec through the CRI to the container, the network probes to the pod.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    pub pod_ip: String,
    /// The CRI container ID, without the `containerd://` prefix.
    pub container_id: String,
}

/// A probe's timeout (`timeoutSeconds`, 1 by default).
pub fn timeout_seconds(probe: &Probe) -> i64 {
    i64::from(probe.timeout_seconds.filter(|t| *t > 0).unwrap_or(1))
}

/// The exec probe's command with `$(VAR)` expanded from the container's own `env` values
/// (upstream's ExpandContainerCommandOnlyStatic: `valueFrom` variables expand to nothing).
pub fn exec_command(command: &[String], container: &Container) -> Vec<String> {
    let env: HashMap<&str, &str> =
        container.env.iter().flatten().map(|e| (e.name.as_str(), e.value.as_deref().unwrap_or_default())).collect();
    let lookup = |name: &str| env.get(name).map(|v| v.to_string());
    command.iter().map(|c| expand(c, &lookup)).collect()
}

fn no_pod_ip() -> Outcome {
    Outcome::Unknown("the pod has no IP address yet".into())
}

/// Runs `probe` once against `container` (upstream's prober.runProbe).
pub async fn run_once<R: Runtime>(probe: &Probe, container: &Container, target: &Target, runtime: &R) -> Outcome {
    let timeout = timeout_seconds(probe);
    if let Some(exec) = &probe.exec {
        let command = exec_command(exec.command.as_deref().unwrap_or_default(), container);
        return exec::probe(runtime, &target.container_id, command, timeout).await;
    }
    if let Some(action) = &probe.http_get {
        if action.host.as_deref().unwrap_or_default().is_empty() && target.pod_ip.is_empty() {
            return no_pod_ip();
        }
        return match http::Request::for_action(action, container, &target.pod_ip, http::Purpose::Probe) {
            Ok(req) => http::probe(&req, Duration::from_secs(timeout.unsigned_abs())).await,
            Err(e) => Outcome::Unknown(e),
        };
    }
    if let Some(action) = &probe.tcp_socket {
        let port = match port::resolve(&action.port, container) {
            Ok(p) => p,
            Err(e) => return Outcome::Unknown(e),
        };
        let host = action.host.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| target.pod_ip.clone());
        if host.is_empty() {
            return no_pod_ip();
        }
        return tcp::probe(&host, port, Duration::from_secs(timeout.unsigned_abs())).await;
    }
    if let Some(action) = &probe.grpc {
        if target.pod_ip.is_empty() {
            return no_pod_ip();
        }
        let Ok(port) = u16::try_from(action.port) else {
            return Outcome::Unknown(format!("invalid port number: {}", action.port));
        };
        return grpc::probe(&target.pod_ip, port, action.service.as_deref().unwrap_or_default(), timeout).await;
    }
    Outcome::Unknown(format!("missing probe handler for container {}", container.name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ExecAction, ObjectFieldSelector, TCPSocketAction};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    use fake_runtime::FakeRuntime;

    #[test]
    fn exec_commands_expand_only_static_env() {
        let container = Container {
            name: "c".into(),
            env: Some(vec![
                EnvVar { name: "DIR".into(), value: Some("/tmp".into()), ..Default::default() },
                EnvVar {
                    name: "NODE".into(),
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector { field_path: "spec.nodeName".into(), ..Default::default() }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        let cmd: Vec<String> = ["cat", "$(DIR)/ready", "[$(NODE)]", "$(UNSET)", "$$(DIR)"].iter().map(|s| s.to_string()).collect();
        assert_eq!(exec_command(&cmd, &container), ["cat", "/tmp/ready", "[]", "$(UNSET)", "$(DIR)"]);
    }

    #[tokio::test]
    async fn run_once_picks_the_handler() {
        let rt = FakeRuntime::exits(1, "not yet", "");
        let container = Container { name: "c".into(), ..Default::default() };
        let target = Target { pod_ip: "127.0.0.1".into(), container_id: "abc".into() };

        let exec = Probe { exec: Some(ExecAction { command: Some(vec!["check".into()]) }), timeout_seconds: Some(3), ..Default::default() };
        assert_eq!(run_once(&exec, &container, &target, &rt).await, Outcome::Failure("not yet".into()));
        assert_eq!(rt.execs(), vec![("abc".to_string(), vec!["check".to_string()], 3)]);

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let tcp = Probe { tcp_socket: Some(TCPSocketAction { port: IntOrString::Int(i32::from(port)), host: None }), ..Default::default() };
        assert_eq!(run_once(&tcp, &container, &target, &rt).await, Outcome::Success);
        let no_ip = Target { pod_ip: String::new(), ..target.clone() };
        assert!(matches!(run_once(&tcp, &container, &no_ip, &rt).await, Outcome::Unknown(_)));

        let named =
            Probe { tcp_socket: Some(TCPSocketAction { port: IntOrString::String("web".into()), host: None }), ..Default::default() };
        assert_eq!(
            run_once(&named, &container, &target, &rt).await,
            Outcome::Unknown(r#"strconv.Atoi: parsing "web": invalid syntax"#.into())
        );
        assert_eq!(
            run_once(&Probe::default(), &container, &target, &rt).await,
            Outcome::Unknown("missing probe handler for container c".into())
        );
    }
}
