//! containerStatuses / initContainerStatuses from what the runtime reports, as upstream's
//! `convertToAPIContainerStatuses` builds them: every container of the spec gets a status
//! (ContainerCreating or PodInitializing until the runtime knows it), the newest runtime
//! instance gives `state` and the one before it `lastState`, a container the runtime lost
//! becomes ContainerStatusUnknown, and a container waiting to be (re)started carries the
//! reason its last start failed (CrashLoopBackOff, ErrImagePull, ...).
//!
//! `ready` and `started` are the prober's to set afterwards.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, Pod,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::cri::api;
use crate::kuberuntime::container::{CONTAINER_NAME_LABEL, RESTART_COUNT_ANNOTATION};

pub const CONTAINER_CREATING: &str = "ContainerCreating";
pub const POD_INITIALIZING: &str = "PodInitializing";
pub const CONTAINER_STATUS_UNKNOWN: &str = "ContainerStatusUnknown";

/// A container's state as the runtime reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Created,
    Running,
    Exited,
    Unknown,
}

/// One container instance the runtime knows of (upstream's kubecontainer.Status).
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeContainer {
    pub name: String,
    /// `<runtime>://<id>`.
    pub id: String,
    pub state: State,
    pub restart_count: i32,
    pub image: String,
    pub image_ref: String,
    pub created_at: Option<jiff::Timestamp>,
    pub started_at: Option<jiff::Timestamp>,
    pub finished_at: Option<jiff::Timestamp>,
    pub exit_code: i32,
    pub reason: String,
    pub message: String,
}

fn from_nanos(ns: i64) -> Option<jiff::Timestamp> {
    if ns <= 0 {
        return None;
    }
    jiff::Timestamp::from_nanosecond(i128::from(ns)).ok()
}

impl RuntimeContainer {
    /// From a CRI ContainerStatus; `runtime` is the runtime's name (`containerd`).
    pub fn from_cri(s: &api::ContainerStatus, runtime: &str) -> Self {
        let state = match api::ContainerState::try_from(s.state) {
            Ok(api::ContainerState::ContainerCreated) => State::Created,
            Ok(api::ContainerState::ContainerRunning) => State::Running,
            Ok(api::ContainerState::ContainerExited) => State::Exited,
            _ => State::Unknown,
        };
        let name = s
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .or_else(|| s.labels.get(CONTAINER_NAME_LABEL).cloned())
            .unwrap_or_default();
        RuntimeContainer {
            name,
            id: format!("{runtime}://{}", s.id),
            state,
            restart_count: s.annotations.get(RESTART_COUNT_ANNOTATION).and_then(|c| c.parse().ok()).unwrap_or(0),
            image: s.image.as_ref().map(|i| i.image.clone()).unwrap_or_default(),
            image_ref: s.image_ref.clone(),
            created_at: from_nanos(s.created_at),
            started_at: from_nanos(s.started_at),
            finished_at: from_nanos(s.finished_at),
            exit_code: s.exit_code,
            reason: s.reason.clone(),
            message: s.message.clone(),
        }
    }
}

/// Why a container is waiting to be (re)started: the kubelet's reason cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingReason {
    pub reason: String,
    pub message: String,
}

/// metav1.Time keeps whole seconds (Go truncates when it serializes).
fn time(ts: Option<jiff::Timestamp>) -> Option<Time> {
    ts.map(|t| Time(jiff::Timestamp::from_second(t.as_second()).unwrap_or(t)))
}

fn waiting(reason: &str) -> ContainerState {
    ContainerState { waiting: Some(ContainerStateWaiting { reason: Some(reason.into()).filter(|r: &String| !r.is_empty()), message: None }), ..Default::default() }
}

fn terminated_unknown(message: &str) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: 137,
            reason: Some(CONTAINER_STATUS_UNKNOWN.into()),
            message: Some(message.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn convert(c: &RuntimeContainer, old: Option<&ContainerStatus>) -> ContainerStatus {
    let mut status = ContainerStatus {
        name: c.name.clone(),
        restart_count: c.restart_count,
        image: c.image.clone(),
        image_id: c.image_ref.clone(),
        container_id: Some(c.id.clone()),
        volume_mounts: old.and_then(|o| o.volume_mounts.clone()),
        ..Default::default()
    };
    let old_running = old.and_then(|o| o.state.as_ref()).and_then(|s| s.running.as_ref()).is_some();
    status.state = Some(match c.state {
        State::Running => ContainerState { running: Some(ContainerStateRunning { started_at: time(c.started_at) }), ..Default::default() },
        State::Exited => ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: c.exit_code,
                reason: Some(c.reason.clone()).filter(|r| !r.is_empty()),
                message: Some(c.message.clone()).filter(|m| !m.is_empty()),
                started_at: time(c.started_at),
                finished_at: time(c.finished_at),
                container_id: Some(c.id.clone()),
                signal: None,
            }),
            ..Default::default()
        },
        State::Unknown if old_running => {
            status.restart_count = old.map(|o| o.restart_count).unwrap_or(0) + 1;
            terminated_unknown("The container could not be located when the pod was terminated")
        }
        State::Created | State::Unknown => ContainerState { waiting: Some(ContainerStateWaiting::default()), ..Default::default() },
    });
    status
}

/// Whether the kubelet would start a container of `pod` (again), given the container's newest
/// runtime instance.
pub fn should_restart(pod: &Pod, newest: Option<&RuntimeContainer>) -> bool {
    if pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let Some(s) = newest else { return true };
    match s.state {
        State::Running => false,
        State::Unknown | State::Created => true,
        State::Exited => match pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) {
            Some("Never") => false,
            Some("OnFailure") => s.exit_code != 0,
            _ => true,
        },
    }
}

/// What one list of containers (the init containers or the regular ones) reports.
pub struct Inputs<'a> {
    pub pod: &'a Pod,
    pub containers: &'a [Container],
    /// Every container instance of the pod the runtime knows, any order.
    pub runtime: &'a [RuntimeContainer],
    /// The statuses reported last time for these containers.
    pub previous: &'a [ContainerStatus],
    pub has_init_containers: bool,
    pub is_init: bool,
    /// Why a container's last start failed, by container name.
    pub reasons: &'a HashMap<String, WaitingReason>,
}

/// The statuses of `inputs.containers`: init containers in spec order, regular ones by name.
pub fn convert_all(inputs: &Inputs<'_>) -> Vec<ContainerStatus> {
    let old: HashMap<&str, &ContainerStatus> = inputs.previous.iter().map(|s| (s.name.as_str(), s)).collect();
    let default_reason = if inputs.has_init_containers { POD_INITIALIZING } else { CONTAINER_CREATING };
    let mut statuses: HashMap<String, ContainerStatus> = HashMap::new();
    for c in inputs.containers {
        let mut status = ContainerStatus {
            name: c.name.clone(),
            image: c.image.clone().unwrap_or_default(),
            state: Some(waiting(default_reason)),
            ..Default::default()
        };
        if let Some(o) = old.get(c.name.as_str()) {
            if o.state.as_ref().and_then(|s| s.terminated.as_ref()).is_some() {
                status = (*o).clone();
            } else {
                status.restart_count = o.restart_count;
                status.last_state = o.last_state.clone();
            }
        }
        statuses.insert(c.name.clone(), status);
    }

    // A container that ran before but that the runtime no longer has.
    for c in inputs.containers {
        if inputs.runtime.iter().any(|r| r.name == c.name) {
            continue;
        }
        let Some(o) = old.get(c.name.as_str()) else { continue };
        let o_state = o.state.as_ref();
        if o_state.and_then(|s| s.terminated.as_ref()).is_some() || o_state.and_then(|s| s.running.as_ref()).is_none() {
            continue;
        }
        let Some(status) = statuses.get_mut(&c.name) else { continue };
        let is_default = status.state.as_ref().and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.as_deref()) == Some(default_reason);
        if !is_default || status.last_state.as_ref().and_then(|s| s.terminated.as_ref()).is_some() {
            continue;
        }
        status.last_state = Some(terminated_unknown("The container could not be located when the pod was deleted.  The container used to be Running"));
        if inputs.pod.metadata.deletion_timestamp.is_none() {
            status.restart_count += 1;
        }
    }

    // The newest instance gives the state, the one before it the last state.
    let mut newest_first: Vec<&RuntimeContainer> = inputs.runtime.iter().collect();
    newest_first.sort_by_key(|r| std::cmp::Reverse(r.created_at));
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for r in newest_first {
        if !statuses.contains_key(&r.name) {
            continue;
        }
        let count = seen.entry(r.name.as_str()).or_insert(0);
        if *count >= 2 {
            continue;
        }
        let converted = convert(r, old.get(r.name.as_str()).copied());
        if *count == 0 {
            statuses.insert(r.name.clone(), converted);
        } else if let Some(s) = statuses.get_mut(&r.name) {
            s.last_state = converted.state;
        }
        *count += 1;
    }

    // Containers waiting for a restart show why the last start failed.
    for c in inputs.containers {
        let newest = inputs
            .runtime
            .iter()
            .filter(|r| r.name == c.name)
            .max_by(|a, b| a.created_at.cmp(&b.created_at));
        if inputs.is_init && newest.is_some_and(|n| n.state == State::Exited && n.exit_code == 0) {
            continue;
        }
        if !should_restart(inputs.pod, newest) {
            continue;
        }
        let (Some(reason), Some(status)) = (inputs.reasons.get(&c.name), statuses.get_mut(&c.name)) else { continue };
        if status.state.as_ref().and_then(|s| s.terminated.as_ref()).is_some() {
            status.last_state = status.state.clone();
        }
        status.state = Some(ContainerState {
            waiting: Some(ContainerStateWaiting { reason: Some(reason.reason.clone()), message: Some(reason.message.clone()).filter(|m| !m.is_empty()) }),
            ..Default::default()
        });
    }

    if inputs.is_init {
        inputs.containers.iter().filter_map(|c| statuses.remove(&c.name)).collect()
    } else {
        let mut out: Vec<ContainerStatus> = statuses.into_values().collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(restart_policy: &str) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"restartPolicy": restart_policy, "containers": [{"name": "b", "image": "busybox"}, {"name": "a", "image": "busybox:1.36"}]}}))
            .expect("pod")
    }

    fn at(s: &str) -> Option<jiff::Timestamp> {
        s.parse().ok()
    }

    fn instance(name: &str, state: State, restart: i32, created: &str) -> RuntimeContainer {
        RuntimeContainer {
            name: name.into(),
            id: format!("containerd://{name}-{restart}"),
            state,
            restart_count: restart,
            image: "docker.io/library/busybox:1.36".into(),
            image_ref: "sha256:abc".into(),
            created_at: at(created),
            started_at: at(created),
            finished_at: if state == State::Exited { at("2026-01-01T00:01:00Z") } else { None },
            exit_code: if state == State::Exited { 1 } else { 0 },
            reason: if state == State::Exited { "Error".into() } else { String::new() },
            message: String::new(),
        }
    }

    fn convert_for(p: &Pod, runtime: &[RuntimeContainer], previous: &[ContainerStatus], reasons: &HashMap<String, WaitingReason>) -> Vec<ContainerStatus> {
        let containers = p.spec.as_ref().map(|s| s.containers.clone()).unwrap_or_default();
        convert_all(&Inputs { pod: p, containers: &containers, runtime, previous, has_init_containers: false, is_init: false, reasons })
    }

    #[test]
    fn unknown_containers_are_creating_and_sorted_by_name() {
        let p = pod("Always");
        let out = convert_for(&p, &[], &[], &HashMap::new());
        let names: Vec<&str> = out.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(out[0].image, "busybox:1.36", "the spec's image until the runtime reports one");
        assert_eq!(out[0].state.as_ref().and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.as_deref()), Some(CONTAINER_CREATING));
    }

    #[test]
    fn newest_instance_is_state_and_previous_is_last_state() {
        let p = pod("Always");
        let runtime = [
            instance("a", State::Exited, 0, "2026-01-01T00:00:00Z"),
            instance("a", State::Running, 1, "2026-01-01T00:02:00Z"),
            instance("b", State::Running, 0, "2026-01-01T00:00:00Z"),
        ];
        let out = convert_for(&p, &runtime, &[], &HashMap::new());
        let a = &out[0];
        assert_eq!((a.restart_count, a.container_id.as_deref()), (1, Some("containerd://a-1")));
        assert_eq!(a.image_id, "sha256:abc");
        assert!(a.state.as_ref().and_then(|s| s.running.as_ref()).is_some());
        let last = a.last_state.as_ref().and_then(|s| s.terminated.as_ref()).expect("last state");
        assert_eq!((last.exit_code, last.reason.as_deref()), (1, Some("Error")));
        assert_eq!(last.finished_at.as_ref().map(|t| t.0.to_string()), Some("2026-01-01T00:01:00Z".into()));
    }

    #[test]
    fn crash_loop_reason_replaces_the_terminated_state() {
        let p = pod("Always");
        let runtime = [instance("a", State::Exited, 2, "2026-01-01T00:00:00Z"), instance("b", State::Running, 0, "2026-01-01T00:00:00Z")];
        let reasons = HashMap::from([("a".to_string(), WaitingReason { reason: "CrashLoopBackOff".into(), message: "back-off 20s restarting failed container=a pod=p_(u)".into() })]);
        let out = convert_for(&p, &runtime, &[], &reasons);
        let a = &out[0];
        assert_eq!(a.state.as_ref().and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.as_deref()), Some("CrashLoopBackOff"));
        assert_eq!(a.last_state.as_ref().and_then(|s| s.terminated.as_ref()).map(|t| t.exit_code), Some(1));
        assert_eq!(a.restart_count, 2);
        // With restartPolicy Never nothing restarts: the terminated state stays.
        let never = convert_for(&pod("Never"), &runtime, &[], &reasons);
        assert!(never[0].state.as_ref().and_then(|s| s.terminated.as_ref()).is_some());
    }

    #[test]
    fn a_lost_running_container_is_status_unknown() {
        let p = pod("Always");
        let previous: Vec<ContainerStatus> = serde_json::from_value(json!([{"name": "a", "image": "busybox:1.36", "imageID": "", "ready": true, "restartCount": 4, "state": {"running": {}}}])).expect("statuses");
        let out = convert_for(&p, &[], &previous, &HashMap::new());
        let a = &out[0];
        assert_eq!(a.restart_count, 5);
        let last = a.last_state.as_ref().and_then(|s| s.terminated.as_ref()).expect("last state");
        assert_eq!((last.exit_code, last.reason.as_deref()), (137, Some(CONTAINER_STATUS_UNKNOWN)));
    }

    #[test]
    fn from_cri_reads_name_restart_count_and_times() {
        let cri = api::ContainerStatus {
            id: "abc".into(),
            metadata: Some(api::ContainerMetadata { name: "a".into(), attempt: 3 }),
            state: api::ContainerState::ContainerExited as i32,
            created_at: 1_700_000_000_000_000_000,
            started_at: 1_700_000_001_600_000_000,
            finished_at: 0,
            exit_code: 2,
            annotations: HashMap::from([(RESTART_COUNT_ANNOTATION.to_string(), "3".to_string())]),
            ..Default::default()
        };
        let r = RuntimeContainer::from_cri(&cri, "containerd");
        assert_eq!((r.name.as_str(), r.id.as_str(), r.state, r.restart_count, r.exit_code), ("a", "containerd://abc", State::Exited, 3, 2));
        assert_eq!(r.finished_at, None);
        assert_eq!(time(r.started_at).map(|t| t.0.to_string()), Some("2023-11-14T22:13:21Z".into()));
    }
}
