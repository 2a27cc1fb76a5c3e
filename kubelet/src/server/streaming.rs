//! `/exec`, `/attach` and `/portForward`: the runtime answers `Exec`, `Attach` or
//! `PortForward` with a URL on its streaming server, and the client's upgrade request is
//! proxied there ([`super::proxy`]), as upstream's getExec, getAttach and getPortForward do.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::response::Response;
use http::StatusCode;
use k8s_openapi::api::core::v1::Pod;

use super::{Kubelet, proxy, text};
use crate::cri::streaming::Streaming;
use crate::cri::{Runtime, api};
use crate::kuberuntime::container::CONTAINER_NAME_LABEL;
use crate::kuberuntime::sandbox::{POD_NAME_LABEL, POD_NAMESPACE_LABEL, POD_UID_LABEL};

/// Which streams a command wants (upstream's remotecommand Options, from `input`, `output`,
/// `error` and `tty` set to `1`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl StreamOptions {
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, String> {
        let on = |name: &str| pairs.iter().find(|(k, _)| k == name).is_some_and(|(_, v)| v == "1");
        let tty = on("tty");
        let opts = StreamOptions { stdin: on("input"), stdout: on("output"), stderr: on("error") && !tty, tty };
        if !opts.stdin && !opts.stdout && !opts.stderr {
            return Err("you must specify at least 1 of stdin, stdout, stderr".into());
        }
        Ok(opts)
    }
}

/// The ports of a port-forward query (`port=80,443` or repeated), if any.
pub fn ports(pairs: &[(String, String)]) -> Result<Vec<i32>, String> {
    let mut out = Vec::new();
    for (_, value) in pairs.iter().filter(|(k, _)| k == "port" || k == "ports") {
        for p in value.split(',').filter(|p| !p.is_empty()) {
            let port: u16 = p.trim().parse().map_err(|_| format!("unable to parse {p:?} as a port: invalid syntax"))?;
            if port == 0 {
                return Err(format!("port {p:?} must be > 0"));
            }
            out.push(i32::from(port));
        }
    }
    Ok(out)
}

/// `<name>_<namespace>`, the kubelet's full pod name.
fn full_name(namespace: &str, pod: &str) -> String {
    format!("{pod}_{namespace}")
}

/// A CRI failure as the runtime's streaming errors answer (upstream's streaming.WriteError).
fn runtime_error(e: &crate::cri::Error) -> Response {
    let code = match e.code() {
        Some(tonic::Code::NotFound) => StatusCode::NOT_FOUND,
        Some(tonic::Code::ResourceExhausted) => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let message = match e {
        crate::cri::Error::Call { status, .. } => format!("rpc error: code = {:?} desc = {}", status.code(), status.message()),
        other => other.to_string(),
    };
    text(code, message)
}

fn labels_of(pod: &Pod) -> HashMap<String, String> {
    HashMap::from([
        (POD_NAMESPACE_LABEL.to_string(), pod.metadata.namespace.clone().unwrap_or_default()),
        (POD_NAME_LABEL.to_string(), pod.metadata.name.clone().unwrap_or_default()),
    ])
}

fn same_pod(labels: &HashMap<String, String>, uid: &str) -> bool {
    uid.is_empty() || labels.get(POD_UID_LABEL).is_none_or(|u| u == uid)
}

/// The newest running instance of `container` in the pod (upstream's findContainer).
async fn running_container<R: Runtime>(runtime: &R, pod: &Pod, uid: &str, container: &str) -> Result<Option<String>, crate::cri::Error> {
    let mut selector = labels_of(pod);
    selector.insert(CONTAINER_NAME_LABEL.into(), container.into());
    let filter = api::ContainerFilter {
        state: Some(api::ContainerStateValue { state: api::ContainerState::ContainerRunning as i32 }),
        label_selector: selector,
        ..Default::default()
    };
    let mut found = runtime.list_containers(Some(filter)).await?;
    found.retain(|c| same_pod(&c.labels, uid));
    found.sort_by_key(|c| std::cmp::Reverse(c.created_at));
    Ok(found.into_iter().next().map(|c| c.id))
}

/// The pod's ready sandbox.
async fn ready_sandbox<R: Runtime>(runtime: &R, pod: &Pod, uid: &str) -> Result<Option<String>, crate::cri::Error> {
    let filter = api::PodSandboxFilter {
        state: Some(api::PodSandboxStateValue { state: api::PodSandboxState::SandboxReady as i32 }),
        label_selector: labels_of(pod),
        ..Default::default()
    };
    let mut found = runtime.list_pod_sandboxes(Some(filter)).await?;
    found.retain(|s| same_pod(&s.labels, uid));
    found.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    Ok(found.into_iter().next().map(|s| s.id))
}

/// Proxies `req` to the runtime's streaming URL.
async fn to_runtime(req: Request, url: &str) -> Response {
    let target: http::Uri = match url.parse() {
        Ok(u) => u,
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("the runtime returned an invalid streaming URL {url:?}: {e}")),
    };
    if !proxy::is_upgrade(req.headers()) {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "Upgrade request required");
    }
    match proxy::forward(req, &target).await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::error!(error = %e, "error while proxying request");
            text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exec,
    Attach,
}

/// The container a command is for: `/{namespace}/{pod}[/{uid}]/{container}`.
struct Target<'a> {
    namespace: &'a str,
    pod: &'a str,
    uid: &'a str,
    container: &'a str,
}

async fn command<R>(kubelet: &Kubelet<R>, kind: Kind, target: Target<'_>, pairs: &[(String, String)], req: Request) -> Response
where
    R: Runtime + Streaming + Clone + 'static,
{
    let Target { namespace, pod: pod_name, uid, container } = target;
    let opts = match StreamOptions::parse(pairs) {
        Ok(o) => o,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let Some(pod) = kubelet.pod(namespace, pod_name).await else {
        return text(StatusCode::NOT_FOUND, "pod does not exist");
    };
    let id = match running_container(&kubelet.runtime, &pod, uid, container).await {
        Ok(Some(id)) => id,
        Ok(None) if kind == Kind::Exec => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("container not found ({container:?})")),
        Ok(None) => {
            let message = format!("container {container} not found in pod {}", full_name(namespace, pod_name));
            return text(StatusCode::INTERNAL_SERVER_ERROR, message);
        }
        Err(e) => return runtime_error(&e),
    };
    let url = match kind {
        Kind::Exec => {
            let cmd: Vec<String> = pairs.iter().filter(|(k, _)| k == "command").map(|(_, v)| v.clone()).collect();
            let request =
                api::ExecRequest { container_id: id, cmd, tty: opts.tty, stdin: opts.stdin, stdout: opts.stdout, stderr: opts.stderr };
            kubelet.runtime.exec(request).await
        }
        Kind::Attach => {
            // Whether the process has a terminal was fixed when the container started.
            let tty = pod.spec.iter().flat_map(|s| s.containers.iter()).find(|c| c.name == container).and_then(|c| c.tty).unwrap_or(false);
            let request = api::AttachRequest { container_id: id, stdin: opts.stdin, tty, stdout: opts.stdout, stderr: opts.stderr };
            kubelet.runtime.attach(request).await
        }
    };
    match url {
        Ok(url) => to_runtime(req, &url).await,
        Err(e) => runtime_error(&e),
    }
}

type Query4 = Query<Vec<(String, String)>>;

pub async fn exec<R>(State(k): State<Arc<Kubelet<R>>>, Path((ns, pod, c)): Path<(String, String, String)>, Query(q): Query4, req: Request) -> Response
where
    R: Runtime + Streaming + Clone + 'static,
{
    command(&k, Kind::Exec, Target { namespace: &ns, pod: &pod, uid: "", container: &c }, &q, req).await
}

pub async fn exec_uid<R>(
    State(k): State<Arc<Kubelet<R>>>,
    Path((ns, pod, uid, c)): Path<(String, String, String, String)>,
    Query(q): Query4,
    req: Request,
) -> Response
where
    R: Runtime + Streaming + Clone + 'static,
{
    command(&k, Kind::Exec, Target { namespace: &ns, pod: &pod, uid: &uid, container: &c }, &q, req).await
}

pub async fn attach<R>(State(k): State<Arc<Kubelet<R>>>, Path((ns, pod, c)): Path<(String, String, String)>, Query(q): Query4, req: Request) -> Response
where
    R: Runtime + Streaming + Clone + 'static,
{
    command(&k, Kind::Attach, Target { namespace: &ns, pod: &pod, uid: "", container: &c }, &q, req).await
}

pub async fn attach_uid<R>(
    State(k): State<Arc<Kubelet<R>>>,
    Path((ns, pod, uid, c)): Path<(String, String, String, String)>,
    Query(q): Query4,
    req: Request,
) -> Response
where
    R: Runtime + Streaming + Clone + 'static,
{
    command(&k, Kind::Attach, Target { namespace: &ns, pod: &pod, uid: &uid, container: &c }, &q, req).await
}

async fn forward_ports<R>(kubelet: &Kubelet<R>, namespace: &str, pod_name: &str, uid: &str, pairs: &[(String, String)], req: Request) -> Response
where
    R: Runtime + Streaming + Clone + 'static,
{
    let port = match ports(pairs) {
        Ok(p) => p,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let Some(pod) = kubelet.pod(namespace, pod_name).await else {
        return text(StatusCode::NOT_FOUND, "pod does not exist");
    };
    if !uid.is_empty() && pod.metadata.uid.as_deref() != Some(uid) {
        return text(StatusCode::NOT_FOUND, "pod not found");
    }
    let sandbox = match ready_sandbox(&kubelet.runtime, &pod, uid).await {
        Ok(Some(id)) => id,
        Ok(None) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("pod not found ({:?})", full_name(namespace, pod_name))),
        Err(e) => return runtime_error(&e),
    };
    match kubelet.runtime.port_forward(api::PortForwardRequest { pod_sandbox_id: sandbox, port }).await {
        Ok(url) => to_runtime(req, &url).await,
        Err(e) => runtime_error(&e),
    }
}

pub async fn port_forward<R>(State(k): State<Arc<Kubelet<R>>>, Path((ns, pod)): Path<(String, String)>, Query(q): Query4, req: Request) -> Response
where
    R: Runtime + Streaming + Clone + 'static,
{
    forward_ports(&k, &ns, &pod, "", &q, req).await
}

pub async fn port_forward_uid<R>(
    State(k): State<Arc<Kubelet<R>>>,
    Path((ns, pod, uid)): Path<(String, String, String)>,
    Query(q): Query4,
    req: Request,
) -> Response
where
    R: Runtime + Streaming + Clone + 'static,
{
    forward_ports(&k, &ns, &pod, &uid, &q, req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// A query, and the options (or the error) it gives.
    type Case<'a> = (&'a [(&'a str, &'a str)], Result<StreamOptions, &'a str>);

    #[test]
    fn stream_options_as_upstream() {
        let cases: &[Case<'_>] = &[
            (&[("output", "1"), ("error", "1")], Ok(StreamOptions { stdout: true, stderr: true, ..Default::default() })),
            (&[("input", "1"), ("output", "1"), ("error", "1"), ("tty", "1")], Ok(StreamOptions { stdin: true, stdout: true, tty: true, stderr: false })),
            (&[("output", "true")], Err("you must specify at least 1 of stdin, stdout, stderr")),
            (&[], Err("you must specify at least 1 of stdin, stdout, stderr")),
        ];
        for (q, want) in cases {
            assert_eq!(StreamOptions::parse(&pairs(q)), want.map_err(str::to_string), "{q:?}");
        }
    }

    #[test]
    fn port_lists_parse() {
        assert_eq!(ports(&pairs(&[("port", "80,8080")])), Ok(vec![80, 8080]));
        assert_eq!(ports(&pairs(&[("port", "80"), ("port", "81")])), Ok(vec![80, 81]));
        assert_eq!(ports(&[]), Ok(vec![]));
        assert!(ports(&pairs(&[("port", "http")])).is_err());
        assert!(ports(&pairs(&[("port", "0")])).is_err());
    }
}
