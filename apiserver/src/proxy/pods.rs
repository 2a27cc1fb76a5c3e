//! pods/log, pods/exec, pods/attach and pods/portforward (upstream's
//! pkg/registry/core/pod/rest/log.go and subresources.go, locations from
//! pkg/registry/core/pod/strategy.go).
//!
//! - `log`: PodLogOptions from the query, validated; the container defaults to the only one;
//!   an unscheduled pod has no log (204); otherwise the kubelet's
//!   `/containerLogs/{ns}/{pod}/{container}` is streamed back as `text/plain`, a kubelet error
//!   becoming a Status as upstream's GenericHttpResponseChecker makes it; a WebSocket
//!   request gets the log as messages instead (`binary.k8s.io`, `base64.binary.k8s.io`).
//! - `exec`, `attach`, `portforward`: GET or POST upgrade requests, proxied to the kubelet's
//!   `/exec|attach/{ns}/{pod}/{container}` (`input`, `output`, `error`, `tty`, `command`) or
//!   `/portForward/{ns}/{pod}` (`port`).
//!
//! Port-forward's SPDY-over-WebSocket tunnel (kubectl 1.31+) is unwrapped here, as upstream
//! does ([`super::tunnel`]). kubectl 1.30+ asks for exec/attach over WebSocket
//! `v5.channel.k8s.io` first, which upstream translates into SPDY for the kubelet; here that
//! request travels to the runtime unchanged, containerd 1.6 refuses it (403: it speaks
//! WebSocket only up to `v4.channel.k8s.io`), and kubectl falls back to SPDY
//! (`v4.channel.k8s.io`), which every hop passes through (measured: ironkube/tests/streaming.rs).

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::StatusCode;
use http_body_util::BodyExt as _;
use ironkube_machinery::{ApiError, FieldError, GroupResource, Reason};
use serde_json::{Value, json};

use super::{KubeletClient, Location, is_upgrade, node_location};
use crate::http::AppState;
use crate::http::query::Query;

/// Most of a kubelet error body kept for the Status message (upstream's maxReadLength).
const MAX_ERROR_BODY: usize = 50_000;

/// PodLogOptions, as the query carries them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub container: Option<String>,
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub since_seconds: Option<i64>,
    /// As given (RFC 3339), checked to parse.
    pub since_time: Option<jiff::Timestamp>,
    pub tail_lines: Option<i64>,
    pub limit_bytes: Option<i64>,
    pub stream: Option<String>,
}

impl LogOptions {
    pub fn parse(q: &Query) -> Result<Self, ApiError> {
        let bad = ApiError::bad_request;
        let since_time = match q.get("sinceTime").filter(|s| !s.is_empty()) {
            Some(s) => Some(s.parse::<jiff::Timestamp>().map_err(|_| {
                bad(format!("parsing time {s:?} as \"2006-01-02T15:04:05Z07:00\": cannot parse {s:?} as \"2006\""))
            })?),
            None => None,
        };
        Ok(LogOptions {
            container: q.get("container").filter(|c| !c.is_empty()).map(str::to_string),
            follow: q.bool("follow").map_err(bad)?.unwrap_or(false),
            previous: q.bool("previous").map_err(bad)?.unwrap_or(false),
            timestamps: q.bool("timestamps").map_err(bad)?.unwrap_or(false),
            since_seconds: q.int("sinceSeconds").map_err(bad)?,
            since_time,
            tail_lines: q.int("tailLines").map_err(bad)?,
            limit_bytes: q.int("limitBytes").map_err(bad)?,
            stream: q.get("stream").map(str::to_string),
        })
    }

    /// Upstream's ValidatePodLogOptions (the PodLogsQuerySplitStreams gate is off in v1.33,
    /// so `stream` may not be given).
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if let Some(n) = self.tail_lines.filter(|n| *n < 0) {
            errs.push(FieldError::invalid("tailLines", json!(n), "must be greater than or equal to 0"));
        }
        if let Some(n) = self.limit_bytes.filter(|n| *n < 1) {
            errs.push(FieldError::invalid("limitBytes", json!(n), "must be greater than 0"));
        }
        match (self.since_seconds, self.since_time) {
            (Some(_), Some(_)) => errs.push(FieldError::forbidden("", "at most one of `sinceTime` or `sinceSeconds` may be specified")),
            (Some(n), None) if n < 1 => errs.push(FieldError::invalid("sinceSeconds", json!(n), "must be greater than 0")),
            _ => {}
        }
        if self.stream.is_some() {
            errs.push(FieldError::forbidden("stream", "may not be specified"));
        }
        errs
    }

    /// The kubelet's query (upstream's LogLocation params, in url.Values' sorted order).
    pub fn kubelet_query(&self) -> String {
        let mut params: Vec<(&str, String)> = Vec::new();
        if self.follow {
            params.push(("follow", "true".into()));
        }
        if let Some(n) = self.limit_bytes {
            params.push(("limitBytes", n.to_string()));
        }
        if self.previous {
            params.push(("previous", "true".into()));
        }
        if let Some(n) = self.since_seconds {
            params.push(("sinceSeconds", n.to_string()));
        }
        if let Some(t) = self.since_time {
            params.push(("sinceTime", t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()));
        }
        if let Some(n) = self.tail_lines {
            params.push(("tailLines", n.to_string()));
        }
        if self.timestamps {
            params.push(("timestamps", "true".into()));
        }
        encode(&params)
    }
}

/// Percent-encodes a query as Go's url.Values.Encode does (keys kept in the given order).
fn encode(params: &[(&str, String)]) -> String {
    let escape = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    params.iter().map(|(k, v)| format!("{}={}", escape(k), escape(v))).collect::<Vec<_>>().join("&")
}

/// The names of every container of a pod spec: init, regular, ephemeral (upstream's
/// VisitContainers order).
fn container_names(pod: &Value) -> Vec<String> {
    let spec = &pod["spec"];
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|list| spec[list].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

/// The container a request is for (upstream's validateContainer).
pub fn choose_container(pod: &Value, requested: Option<&str>) -> Result<String, ApiError> {
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    match requested.filter(|c| !c.is_empty()) {
        Some(c) if container_names(pod).iter().any(|n| n == c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::bad_request(format!("container {c} is not valid for pod {name}"))),
        None => {
            let regular = pod["spec"]["containers"].as_array().cloned().unwrap_or_default();
            match regular.as_slice() {
                [only] => Ok(only["name"].as_str().unwrap_or("").to_string()),
                [] => Err(ApiError::bad_request(format!("a container name must be specified for pod {name}"))),
                _ => Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    container_names(pod).join(" ")
                ))),
            }
        }
    }
}

async fn pod(state: &AppState, namespace: Option<&str>, name: &str) -> Result<Value, ApiError> {
    let pods = state.registry.store("", "v1", "pods").ok_or_else(ApiError::path_not_found)?;
    pods.get(namespace, name, None).await
}

/// The kubelet of a node.
pub async fn kubelet_of(state: &AppState, kubelet: &KubeletClient, node: &str) -> Result<Location, ApiError> {
    let nodes = state.registry.store("", "v1", "nodes").ok_or_else(ApiError::path_not_found)?;
    let node = nodes.get(None, node, None).await?;
    node_location(&node, &kubelet.preferred_address_types)
}

/// A kubelet's error answer as a Status (upstream's GenericHttpResponseChecker).
pub fn kubelet_error(code: u16, body: &str, name: &str) -> ApiError {
    let gr = GroupResource::new("", "pods/log");
    match code {
        400 => ApiError::bad_request(body),
        500 => ApiError::internal(body),
        _ => {
            let (reason, message) = match code {
                404 => (Reason::NotFound, "the server could not find the requested resource".to_string()),
                401 => (Reason::Unauthorized, "the server has asked for the client to provide credentials".to_string()),
                403 => (Reason::Forbidden, body.to_string()),
                409 => (Reason::Conflict, "the server reported a conflict".to_string()),
                405 => (Reason::MethodNotAllowed, "the server does not allow this method on the requested resource".to_string()),
                422 => (Reason::Invalid, "the server rejected our request due to an error in our request".to_string()),
                429 => (Reason::TooManyRequests, "the server has received too many requests and has asked us to try again later".to_string()),
                504 => (Reason::Timeout, "the server was unable to return a response in the time allotted, but may still be processing the request".to_string()),
                c if c >= 500 => (Reason::InternalError, format!("an error on the server ({body:?}) has prevented the request from succeeding")),
                c => (Reason::Unknown, format!("the server responded with the status code {c} but did not return more information")),
            };
            let mut e = ApiError::new(code, reason, format!("{message} ( {gr} {name})"));
            e.details = Some(ironkube_machinery::error::Details { name: name.to_string(), kind: gr.resource.clone(), ..Default::default() });
            e
        }
    }
}

/// `GET pods/{name}/log`.
pub async fn log(state: &AppState, kubelet: &KubeletClient, namespace: Option<&str>, name: &str, mut req: Request) -> Result<Response, ApiError> {
    let q = Query::parse(req.uri().query());
    let opts = LogOptions::parse(&q)?;
    let errs = opts.validate();
    if !errs.is_empty() {
        return Err(ApiError::invalid("", "PodLogOptions", name, &errs));
    }
    let pod = pod(state, namespace, name).await?;
    let container = choose_container(&pod, opts.container.as_deref())?;
    let Some(node) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) else {
        // No node, no log: upstream streams nothing.
        return Ok(empty(StatusCode::NO_CONTENT));
    };
    let at = kubelet_of(state, kubelet, node).await?;
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("");
    let mut path = format!("/containerLogs/{ns}/{name}/{container}");
    let query = opts.kubelet_query();
    if !query.is_empty() {
        path = format!("{path}?{query}");
    }
    let get = http::Request::builder().method(http::Method::GET).uri(&path).body(Body::empty()).map_err(ApiError::internal)?;
    let url = format!("https://{}{path}", at.authority());
    let resp = kubelet.forward(get, &at, &path).await.map_err(|e| ApiError::internal(format!("Get {url:?}: {e}")))?;
    let status = resp.status().as_u16();
    if !(200..=206).contains(&status) {
        let body = http_body_util::Limited::new(resp.into_body(), MAX_ERROR_BODY).collect().await.map(|c| c.to_bytes()).unwrap_or_default();
        return Err(kubelet_error(status, &String::from_utf8_lossy(&body), name));
    }
    if super::websocket::is_websocket(req.headers()) {
        return Ok(super::websocket::stream_body(&mut req, resp.into_body()));
    }
    let (mut parts, body) = resp.into_parts();
    parts.headers.clear();
    parts.headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
    Ok(Response::from_parts(parts, body))
}

fn empty(code: StatusCode) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = code;
    resp
}

/// Which streaming subresource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connect {
    Exec,
    Attach,
    PortForward,
}

/// The kubelet path and query of an exec, attach or port-forward (upstream's streamParams).
pub fn kubelet_stream_path(kind: Connect, q: &Query, namespace: &str, pod: &str, container: &str) -> Result<String, ApiError> {
    let bad = ApiError::bad_request;
    let mut params: Vec<(&str, String)> = Vec::new();
    match kind {
        Connect::Exec | Connect::Attach => {
            for (flag, param) in [("stdin", "input"), ("stdout", "output"), ("stderr", "error"), ("tty", "tty")] {
                if q.bool(flag).map_err(bad)?.unwrap_or(false) {
                    params.push((param, "1".into()));
                }
            }
            if kind == Connect::Exec {
                params.extend(q.all("command").into_iter().map(|c| ("command", c)));
            }
            // url.Values.Encode sorts by key, keeping each key's values in order.
            params.sort_by_key(|(k, _)| *k);
        }
        Connect::PortForward => {
            let mut ports = Vec::new();
            for p in q.all("ports") {
                for one in p.split(',').filter(|s| !s.is_empty()) {
                    let n: i32 = one.trim().parse().map_err(|_| bad(format!("strconv.ParseInt: parsing {one:?}: invalid syntax")))?;
                    ports.push(n.to_string());
                }
            }
            if !ports.is_empty() {
                params.push(("port", ports.join(",")));
            }
        }
    }
    let path = match kind {
        Connect::Exec => format!("/exec/{namespace}/{pod}/{container}"),
        Connect::Attach => format!("/attach/{namespace}/{pod}/{container}"),
        Connect::PortForward => format!("/portForward/{namespace}/{pod}"),
    };
    Ok(if params.is_empty() { path } else { format!("{path}?{}", encode(&params)) })
}

/// `pods/{name}/exec`, `attach`, `portforward` (GET or POST upgrade requests).
pub async fn connect(
    state: &AppState,
    kubelet: &KubeletClient,
    kind: Connect,
    namespace: Option<&str>,
    name: &str,
    req: Request,
) -> Result<Response, ApiError> {
    let q = Query::parse(req.uri().query());
    let pod = pod(state, namespace, name).await?;
    let container = match kind {
        Connect::PortForward => String::new(),
        _ => choose_container(&pod, q.get("container"))?,
    };
    let Some(node) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) else {
        return Err(ApiError::bad_request(format!("pod {name} does not have a host assigned")));
    };
    let at = kubelet_of(state, kubelet, node).await?;
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("");
    let path = kubelet_stream_path(kind, &q, ns, name, &container)?;
    if !is_upgrade(req.headers()) {
        return Err(ApiError::bad_request("Upgrade request required"));
    }
    if kind == Connect::PortForward && super::tunnel::is_tunneling(req.headers()) {
        return super::tunnel::serve(kubelet, req, &at, &path).await;
    }
    kubelet.forward(req, &at, &path).await.map_err(|e| ApiError::internal(format!("error dialing backend: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_containers() -> Value {
        json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {
            "initContainers": [{"name": "init"}],
            "containers": [{"name": "a"}, {"name": "b"}],
        }})
    }

    #[test]
    fn containers_are_chosen_as_upstream() {
        let pod = two_containers();
        assert_eq!(choose_container(&pod, Some("b")).expect("b"), "b");
        assert_eq!(choose_container(&pod, Some("init")).expect("init"), "init");
        let cases = [
            (None, "a container name must be specified for pod p, choose one of: [init a b]"),
            (Some("zz"), "container zz is not valid for pod p"),
        ];
        for (requested, want) in cases {
            let e = choose_container(&pod, requested).expect_err("refused");
            assert_eq!((e.code, e.message.as_str()), (400, want));
        }
        let one = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "only"}]}});
        assert_eq!(choose_container(&one, None).expect("only"), "only");
        let none = json!({"metadata": {"name": "p"}, "spec": {"containers": []}});
        assert_eq!(choose_container(&none, None).expect_err("none").message, "a container name must be specified for pod p");
    }

    #[test]
    fn log_options_parse_validate_and_pass_on() {
        let q = Query::parse(Some("container=a&follow=true&tailLines=10&timestamps=true&sinceSeconds=5"));
        let opts = LogOptions::parse(&q).expect("parses");
        assert!(opts.validate().is_empty());
        assert_eq!(opts.kubelet_query(), "follow=true&sinceSeconds=5&tailLines=10&timestamps=true");
        let q = Query::parse(Some("sinceTime=2024-01-02T03:04:05Z&previous=true&limitBytes=7"));
        assert_eq!(LogOptions::parse(&q).expect("parses").kubelet_query(), "limitBytes=7&previous=true&sinceTime=2024-01-02T03%3A04%3A05Z");

        let invalid = |query: &str| -> Vec<String> {
            LogOptions::parse(&Query::parse(Some(query))).expect("parses").validate().iter().map(|e| e.to_string()).collect()
        };
        assert_eq!(invalid("tailLines=-1"), ["tailLines: Invalid value: -1: must be greater than or equal to 0"]);
        assert_eq!(invalid("limitBytes=0"), ["limitBytes: Invalid value: 0: must be greater than 0"]);
        assert_eq!(invalid("sinceSeconds=0"), ["sinceSeconds: Invalid value: 0: must be greater than 0"]);
        assert_eq!(invalid("sinceSeconds=1&sinceTime=2024-01-02T03:04:05Z").len(), 1);
        assert_eq!(invalid("stream=Stdout"), ["stream: Forbidden: may not be specified"]);
        assert_eq!(LogOptions::parse(&Query::parse(Some("tailLines=x"))).expect_err("bad").code, 400);
    }

    #[test]
    fn stream_paths_carry_upstream_params() {
        let q = Query::parse(Some("command=cat&command=%2Fetc%2Fhostname&container=a&stderr=true&stdout=true&stdin=true"));
        assert_eq!(
            kubelet_stream_path(Connect::Exec, &q, "d", "p", "a").expect("path"),
            "/exec/d/p/a?command=cat&command=%2Fetc%2Fhostname&error=1&input=1&output=1"
        );
        let q = Query::parse(Some("container=a&stdin=true&stdout=true&tty=true"));
        assert_eq!(kubelet_stream_path(Connect::Attach, &q, "d", "p", "a").expect("path"), "/attach/d/p/a?input=1&output=1&tty=1");
        let q = Query::parse(Some("ports=8080&ports=9090"));
        assert_eq!(kubelet_stream_path(Connect::PortForward, &q, "d", "p", "").expect("path"), "/portForward/d/p?port=8080%2C9090");
        assert_eq!(kubelet_stream_path(Connect::PortForward, &Query::parse(None), "d", "p", "").expect("path"), "/portForward/d/p");
    }

    #[test]
    fn kubelet_errors_become_statuses() {
        let e = kubelet_error(400, "previous terminated container \"c\" in pod \"p\" not found", "p");
        assert_eq!((e.code, e.reason, e.message.as_str()), (400, Reason::BadRequest, "previous terminated container \"c\" in pod \"p\" not found"));
        let e = kubelet_error(404, "pod \"p\" does not exist", "p");
        assert_eq!((e.code, e.message.as_str()), (404, "the server could not find the requested resource ( pods/log p)"));
        assert_eq!(kubelet_error(500, "boom", "p").message, "Internal error occurred: boom");
    }
}
