//! `GET /containerLogs/{namespace}/{pod}/{container}`: a container's log, by PodLogOptions
//! in the query (upstream's getContainerLogs and GetKubeletContainerLogs). The container's
//! instances are found through the runtime by the pod's labels; their statuses are built as
//! the kubelet reports them ([`crate::status::containers`]) and the instance to read is
//! chosen from those as upstream's validateContainerLogStatus does, with its messages.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use tokio_stream::StreamExt as _;

use super::{Kubelet, text};
use crate::cri::streaming::Streaming;
use crate::cri::{Runtime, api};
use crate::kuberuntime::container::CONTAINER_NAME_LABEL;
use crate::kuberuntime::sandbox::{POD_NAME_LABEL, POD_NAMESPACE_LABEL, POD_UID_LABEL};
use crate::logs;
use crate::status::containers::{self, RuntimeContainer};

/// The runtime name the statuses' container IDs carry here (only the ID after it is used).
const RUNTIME: &str = "cri";

/// PodLogOptions as the kubelet's query carries them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogQuery {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<i64>,
    pub limit_bytes: Option<i64>,
    pub since_seconds: Option<i64>,
    pub since_time: Option<jiff::Timestamp>,
}

/// A boolean query parameter as Kubernetes' parameter codec reads it: anything but `0` or
/// `false` (any case) is true.
fn query_bool(value: &str) -> bool {
    !(value == "0" || value.eq_ignore_ascii_case("false"))
}

impl LogQuery {
    /// Decodes the query (the first value of each parameter counts; `tail` is the legacy
    /// name of `tailLines`, `tail=all` meaning no limit). `Err` when a value does not parse.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, ()> {
        let first = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let int = |name: &str| -> Result<Option<i64>, ()> { first(name).map(|v| v.parse::<i64>().map_err(|_| ())).transpose() };
        let mut q = LogQuery {
            follow: first("follow").is_some_and(query_bool),
            previous: first("previous").is_some_and(query_bool),
            timestamps: first("timestamps").is_some_and(query_bool),
            tail_lines: int("tailLines")?,
            limit_bytes: int("limitBytes")?,
            since_seconds: int("sinceSeconds")?,
            since_time: match first("sinceTime").filter(|v| !v.is_empty() && *v != "null") {
                Some(v) => Some(v.parse().map_err(|_| ())?),
                None => None,
            },
        };
        match first("tail") {
            Some("all") => q.tail_lines = None,
            Some(v) if !v.is_empty() => q.tail_lines = Some(v.parse().map_err(|_| ())?),
            _ => {}
        }
        Ok(q)
    }

    /// Upstream's ValidatePodLogOptions.
    pub fn is_valid(&self) -> bool {
        let positive = |v: Option<i64>| v.is_none_or(|n| n >= 1);
        self.tail_lines.is_none_or(|n| n >= 0)
            && positive(self.limit_bytes)
            && !(self.since_seconds.is_some() && self.since_time.is_some())
            && positive(self.since_seconds)
    }
}

/// The ID of the container instance whose log to read, from the container's status (upstream's
/// validateContainerLogStatus); the error is the message the kubelet answers with.
pub fn log_container_id(pod: &str, container: &str, previous: bool, statuses: &[ContainerStatus]) -> Result<String, String> {
    let Some(status) = statuses.iter().find(|s| s.name == container) else {
        return Err(format!("container {container:?} in pod {pod:?} is not available"));
    };
    let state = status.state.clone().unwrap_or_default();
    let last = status.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    let last_id = last.and_then(|t| t.container_id.clone()).filter(|id| !id.is_empty());
    let terminated = || format!("container {container:?} in pod {pod:?} is terminated");
    let id = if previous {
        last_id.ok_or_else(|| format!("previous terminated container {container:?} in pod {pod:?} not found"))?
    } else if state.running.is_some() {
        status.container_id.clone().unwrap_or_default()
    } else if let Some(t) = &state.terminated {
        match t.container_id.clone().filter(|id| !id.is_empty()) {
            Some(id) => id,
            None => last_id.ok_or_else(terminated)?,
        }
    } else if last.is_some() {
        last_id.ok_or_else(terminated)?
    } else if let Some(w) = &state.waiting {
        let reason = w.reason.clone().unwrap_or_default();
        return Err(match reason.as_str() {
            "ErrImagePull" => format!("container {container:?} in pod {pod:?} is waiting to start: image can't be pulled"),
            "ImagePullBackOff" => format!("container {container:?} in pod {pod:?} is waiting to start: trying and failing to pull image"),
            _ => format!("container {container:?} in pod {pod:?} is waiting to start: {reason}"),
        });
    } else {
        return Err(format!("container {container:?} in pod {pod:?} is waiting to start - no logs yet"));
    };
    Ok(id.split_once("://").map(|(_, id)| id.to_string()).unwrap_or(id))
}

/// The pod's container instances as the runtime knows them, with their log paths.
async fn instances<R: Runtime>(runtime: &R, pod: &Pod) -> Result<(Vec<RuntimeContainer>, HashMap<String, String>), crate::cri::Error> {
    let meta = &pod.metadata;
    let selector = HashMap::from([
        (POD_NAMESPACE_LABEL.to_string(), meta.namespace.clone().unwrap_or_default()),
        (POD_NAME_LABEL.to_string(), meta.name.clone().unwrap_or_default()),
    ]);
    let listed = runtime.list_containers(Some(api::ContainerFilter { label_selector: selector, ..Default::default() })).await?;
    let uid = meta.uid.clone().unwrap_or_default();
    let mut found = Vec::new();
    let mut paths = HashMap::new();
    for c in listed {
        if c.labels.get(POD_UID_LABEL).is_some_and(|u| !uid.is_empty() && *u != uid) {
            continue;
        }
        let status = match runtime.container_status(&c.id).await {
            Ok(s) => s,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        let mut instance = RuntimeContainer::from_cri(&status, RUNTIME);
        if instance.name.is_empty() {
            instance.name = c.labels.get(CONTAINER_NAME_LABEL).cloned().unwrap_or_default();
        }
        paths.insert(c.id.clone(), status.log_path.clone());
        found.push(instance);
    }
    Ok((found, paths))
}

/// The statuses the kubelet would report for the pod's containers and init containers.
fn statuses(pod: &Pod, runtime: &[RuntimeContainer]) -> Vec<ContainerStatus> {
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let init = spec.init_containers.unwrap_or_default();
    let reasons = HashMap::new();
    let mut all = containers::convert_all(&containers::Inputs {
        pod,
        containers: &spec.containers,
        runtime,
        previous: status.container_statuses.as_deref().unwrap_or_default(),
        has_init_containers: !init.is_empty(),
        is_init: false,
        reasons: &reasons,
    });
    all.extend(containers::convert_all(&containers::Inputs {
        pod,
        containers: &init,
        runtime,
        previous: status.init_container_statuses.as_deref().unwrap_or_default(),
        has_init_containers: !init.is_empty(),
        is_init: true,
        reasons: &reasons,
    }));
    all
}

fn has_container(pod: &Pod, name: &str) -> bool {
    let Some(spec) = pod.spec.as_ref() else { return false };
    spec.containers.iter().any(|c| c.name == name)
        || spec.init_containers.iter().flatten().any(|c| c.name == name)
        || spec.ephemeral_containers.iter().flatten().any(|c| c.name == name)
}

pub async fn get<R>(
    State(kubelet): State<Arc<Kubelet<R>>>,
    Path((namespace, pod_name, container)): Path<(String, String, String)>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response
where
    R: Runtime + Streaming + Clone + 'static,
{
    let Ok(q) = LogQuery::parse(&pairs) else {
        return text(StatusCode::BAD_REQUEST, r#"{"message": "Unable to decode query."}"#);
    };
    if !q.is_valid() {
        return text(StatusCode::UNPROCESSABLE_ENTITY, r#"{"message": "Invalid request."}"#);
    }
    let Some(pod) = kubelet.pod(&namespace, &pod_name).await else {
        return text(StatusCode::NOT_FOUND, format!("pod {pod_name:?} does not exist"));
    };
    if !has_container(&pod, &container) {
        return text(StatusCode::NOT_FOUND, format!("container {container:?} not found in pod {pod_name:?}"));
    }
    let (runtime_containers, paths) = match instances(&kubelet.runtime, &pod).await {
        Ok(found) => found,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let id = match log_container_id(&pod_name, &container, q.previous, &statuses(&pod, &runtime_containers)) {
        Ok(id) => id,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    let path = paths.get(&id).cloned().unwrap_or_default();
    let opts = logs::Options::new(q.tail_lines, q.limit_bytes, q.since_seconds, q.since_time, q.follow, q.timestamps, jiff::Timestamp::now());

    // Like upstream, the answer is committed (200, chunked) before the file is read: a
    // failure to read it ends up as text in the body.
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let runtime = kubelet.runtime.clone();
    tokio::spawn(async move {
        let running = || {
            let runtime = runtime.clone();
            let id = id.clone();
            async move {
                runtime.container_status(&id).await.is_ok_and(|s| s.state == api::ContainerState::ContainerRunning as i32)
            }
        };
        if let Err(e) = logs::read(std::path::Path::new(&path), &opts, running, tx.clone()).await {
            let _ = tx.send(Bytes::from(e.to_string())).await;
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, std::convert::Infallible>));
    let mut resp = Response::new(body);
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting};

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn queries_decode_and_validate_as_upstream() {
        let q = LogQuery::parse(&pairs(&[("follow", "true"), ("tailLines", "5"), ("timestamps", "1"), ("previous", "false")])).expect("parses");
        assert_eq!(q, LogQuery { follow: true, tail_lines: Some(5), timestamps: true, ..Default::default() });
        assert!(q.is_valid());
        let q = LogQuery::parse(&pairs(&[("tail", "all"), ("tailLines", "3")])).expect("parses");
        assert_eq!(q.tail_lines, None);
        let q = LogQuery::parse(&pairs(&[("sinceTime", "2024-01-01T00:00:00Z")])).expect("parses");
        assert_eq!(q.since_time, Some("2024-01-01T00:00:00Z".parse().expect("ts")));
        assert!(LogQuery::parse(&pairs(&[("tailLines", "x")])).is_err());
        assert!(LogQuery::parse(&pairs(&[("sinceTime", "yesterday")])).is_err());
        let invalid = [
            LogQuery { tail_lines: Some(-1), ..Default::default() },
            LogQuery { limit_bytes: Some(0), ..Default::default() },
            LogQuery { since_seconds: Some(0), ..Default::default() },
            LogQuery { since_seconds: Some(5), since_time: Some(jiff::Timestamp::UNIX_EPOCH), ..Default::default() },
        ];
        for q in invalid {
            assert!(!q.is_valid(), "{q:?}");
        }
    }

    fn status(state: ContainerState, last: Option<&str>) -> ContainerStatus {
        let id = state
            .running
            .as_ref()
            .map(|_| "cri://run".to_string())
            .or_else(|| state.terminated.as_ref().and_then(|t| t.container_id.clone()));
        ContainerStatus {
            name: "c".into(),
            container_id: id,
            state: Some(state),
            last_state: last.map(|id| ContainerState {
                terminated: Some(ContainerStateTerminated { container_id: Some(id.into()), ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_instance_to_read_is_chosen_as_upstream() {
        let running = ContainerState { running: Some(ContainerStateRunning::default()), ..Default::default() };
        let exited = ContainerState {
            terminated: Some(ContainerStateTerminated { container_id: Some("cri://done".into()), ..Default::default() }),
            ..Default::default()
        };
        let waiting = |reason: &str| ContainerState {
            waiting: Some(ContainerStateWaiting { reason: Some(reason.into()), ..Default::default() }),
            ..Default::default()
        };
        let cases: Vec<(ContainerStatus, bool, Result<&str, &str>)> = vec![
            (status(running.clone(), None), false, Ok("run")),
            (status(running.clone(), Some("cri://old")), true, Ok("old")),
            (status(running.clone(), None), true, Err(r#"previous terminated container "c" in pod "p" not found"#)),
            (status(exited.clone(), None), false, Ok("done")),
            (status(waiting("CrashLoopBackOff"), Some("cri://old")), false, Ok("old")),
            (status(waiting("ContainerCreating"), None), false, Err(r#"container "c" in pod "p" is waiting to start: ContainerCreating"#)),
            (status(waiting("ErrImagePull"), None), false, Err(r#"container "c" in pod "p" is waiting to start: image can't be pulled"#)),
            (status(ContainerState::default(), None), false, Err(r#"container "c" in pod "p" is waiting to start - no logs yet"#)),
        ];
        for (s, previous, want) in cases {
            let got = log_container_id("p", "c", previous, std::slice::from_ref(&s));
            assert_eq!(got.as_deref().map_err(String::as_str), want, "{s:?} previous={previous}");
        }
        assert_eq!(log_container_id("p", "x", false, &[]).expect_err("no status"), r#"container "x" in pod "p" is not available"#);
    }
}
