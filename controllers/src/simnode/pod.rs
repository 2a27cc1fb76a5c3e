//! What a kubelet reports about the pods bound to it, without running anything: a pod moves
//! to Running with every container running and ready (after the longest readiness-probe
//! initial delay), and, when it carries [`EXIT_CODE_ANNOTATION`], completes after
//! [`RUN_DURATION_ANNOTATION`] (default: at once) with that exit code. A pod being deleted
//! is confirmed gone with a grace-0 delete, as a kubelet does once its containers stopped.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{Value, json};

use super::node::time;

/// Opt-in: the exit code every container of the pod ends with (`"0"`: the pod Succeeds,
/// anything else: it Fails).
pub const EXIT_CODE_ANNOTATION: &str = "ironkube.dev/simulated-exit-code";
/// With [`EXIT_CODE_ANNOTATION`]: how long the pod runs first, as a Go duration (`"5s"`,
/// `"1m30s"`); by default it completes right after it was reported Running.
pub const RUN_DURATION_ANNOTATION: &str = "ironkube.dev/simulated-run-duration";

/// The conditions the kubelet owns, in the order it writes them.
const KUBELET_CONDITIONS: [&str; 4] = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"];

/// Where a pod runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub host_ip: String,
    pub pod_ip: String,
}

/// What the pod should look like now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Running since `started`; containers ready or not yet.
    Running { ready: bool },
    /// Every container exited with this code at `finished`.
    Exited { code: i32 },
}

/// How the simulated kubelet wants a pod to move next.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The status to write, if it differs from the current one.
    pub status: Option<Value>,
    /// When to look again.
    pub requeue: Option<Duration>,
}

/// The exit code a pod asked for, if any.
pub fn exit_code(pod: &Pod) -> Option<i32> {
    let annotations = pod.metadata.annotations.as_ref()?;
    annotations.get(EXIT_CODE_ANNOTATION)?.trim().parse().ok()
}

/// How long a pod with an exit code runs.
pub fn run_duration(pod: &Pod) -> Duration {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(RUN_DURATION_ANNOTATION))
        .and_then(|s| crate::parse_duration(s.trim()).ok())
        .unwrap_or_default()
}

/// How long after starting the pod becomes ready: the longest readiness (or startup) probe
/// initial delay among its containers.
pub fn ready_delay(pod: &Pod) -> Duration {
    let spec = pod.spec.as_ref();
    let delay = spec
        .into_iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| [c.readiness_probe.as_ref(), c.startup_probe.as_ref()])
        .flatten()
        .filter_map(|p| p.initial_delay_seconds)
        .max()
        .unwrap_or(0);
    Duration::from_secs(u64::try_from(delay).unwrap_or(0))
}

/// `busybox:1.36` -> `docker.io/library/busybox:1.36`, as containerd reports images.
pub fn normalize_image(image: &str) -> String {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let (domain, rest) = match name.split_once('/') {
        Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => (first.to_string(), rest.to_string()),
        _ => ("docker.io".to_string(), name.to_string()),
    };
    let rest = if domain == "docker.io" && !rest.contains('/') { format!("library/{rest}") } else { rest };
    let last = rest.rsplit('/').next().unwrap_or("");
    match digest {
        Some(d) => format!("{domain}/{rest}@{d}"),
        None if last.contains(':') => format!("{domain}/{rest}"),
        None => format!("{domain}/{rest}:latest"),
    }
}

/// 64 hex digits derived from `seed` (FNV-1a, stretched): stable fake digests.
pub fn hex64(seed: &str) -> String {
    let mut out = String::with_capacity(64);
    for round in 0u64..4 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ round.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for b in seed.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out
}

/// The image ID containerd would report: the repository with a digest.
pub fn image_id(image: &str) -> String {
    let normalized = normalize_image(image);
    if normalized.contains('@') {
        return normalized;
    }
    let repo = match normalized.rfind(':') {
        Some(i) if i > normalized.rfind('/').unwrap_or(0) => &normalized[..i],
        _ => normalized.as_str(),
    };
    format!("{repo}@sha256:{}", hex64(&normalized))
}

fn new_container_id() -> String {
    format!("containerd://{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

fn current_status(pod: &Pod) -> Value {
    pod.status.as_ref().and_then(|s| serde_json::to_value(s).ok()).unwrap_or_else(|| json!({}))
}

/// The previous status of container `name` in the `field` list.
fn previous<'a>(status: &'a Value, field: &str, name: &str) -> Option<&'a Value> {
    status[field].as_array()?.iter().find(|c| c["name"] == name)
}

fn volume_mounts(c: &Container) -> Option<Value> {
    let mounts = c.volume_mounts.as_ref().filter(|m| !m.is_empty())?;
    Some(Value::Array(
        mounts
            .iter()
            .map(|m| {
                let mut v = json!({"name": m.name, "mountPath": m.mount_path});
                if m.read_only == Some(true) {
                    v["readOnly"] = json!(true);
                    v["recursiveReadOnly"] = json!(m.recursive_read_only.clone().unwrap_or_else(|| "Disabled".into()));
                }
                v
            })
            .collect(),
    ))
}

/// One container's status; `state` is `running` or `terminated`.
fn container_status(c: &Container, prev: Option<&Value>, started: &str, stage: Stage, now: &str, init: bool) -> Value {
    let container_id = prev
        .and_then(|p| p["containerID"].as_str())
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .unwrap_or_else(new_container_id);
    let image = c.image.clone().unwrap_or_default();
    let sidecar = init && c.restart_policy.as_deref() == Some("Always");
    let (state, ready, running) = if init && !sidecar {
        // Init containers ran to completion before the others started.
        (exited(0, started, started, &container_id, prev), true, false)
    } else {
        match stage {
            Stage::Exited { code } => (exited(code, started, now, &container_id, prev), false, false),
            Stage::Running { ready } => (json!({"running": {"startedAt": started}}), ready, true),
        }
    };
    let mut status = json!({
        "name": c.name,
        "state": state,
        "lastState": {},
        "ready": ready,
        "restartCount": 0,
        "image": normalize_image(&image),
        "imageID": image_id(&image),
        "containerID": container_id,
        "started": running,
    });
    if let Some(resources) = c.resources.as_ref().and_then(|r| serde_json::to_value(r).ok()) {
        if let Some(requests) = resources.get("requests").filter(|r| r.as_object().is_some_and(|m| !m.is_empty())) {
            status["allocatedResources"] = requests.clone();
        }
        status["resources"] = resources;
    }
    if let Some(mounts) = volume_mounts(c) {
        status["volumeMounts"] = mounts;
    }
    status
}

fn exited(code: i32, started: &str, finished: &str, container_id: &str, prev: Option<&Value>) -> Value {
    // Keep the first finish time we reported.
    let finished = prev
        .and_then(|p| p["state"]["terminated"]["finishedAt"].as_str())
        .unwrap_or(finished)
        .to_string();
    json!({"terminated": {
        "exitCode": code,
        "reason": if code == 0 { "Completed" } else { "Error" },
        "startedAt": started,
        "finishedAt": finished,
        "containerID": container_id,
    }})
}

/// A kubelet condition, keeping its lastTransitionTime while its status holds.
fn condition(status: &Value, kind: &str, value: bool, reason: Option<&str>, now: &str) -> Value {
    let value = if value { "True" } else { "False" };
    let since = status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind && c["status"] == value))
        .and_then(|c| c["lastTransitionTime"].as_str())
        .unwrap_or(now);
    let mut c = json!({"type": kind, "status": value, "lastProbeTime": null, "lastTransitionTime": since});
    if let Some(reason) = reason {
        c["reason"] = json!(reason);
    }
    c
}

/// The status a kubelet reports for `pod` at `stage`, `started` being when it started.
pub fn desired_status(pod: &Pod, placement: &Placement, stage: Stage, started: &str, now: &str) -> Value {
    let current = current_status(pod);
    let spec = pod.spec.clone().unwrap_or_default();
    let (phase, ready, sandbox) = match stage {
        Stage::Running { ready } => ("Running", ready, true),
        Stage::Exited { code: 0 } => ("Succeeded", false, false),
        Stage::Exited { .. } => ("Failed", false, false),
    };
    let gates_ready = spec.readiness_gates.iter().flatten().all(|g| {
        current["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == g.condition_type.as_str() && c["status"] == "True"))
    });
    let not_ready_reason = match stage {
        Stage::Exited { .. } => Some("PodCompleted"),
        Stage::Running { ready: false } => Some("ContainersNotReady"),
        Stage::Running { ready: true } => None,
    };
    let pod_ready = ready && gates_ready;
    let pod_reason = if pod_ready {
        None
    } else if ready {
        Some("ReadinessGatesNotReady")
    } else {
        not_ready_reason
    };
    let mut conditions = vec![
        condition(&current, KUBELET_CONDITIONS[0], sandbox, None, now),
        condition(&current, KUBELET_CONDITIONS[1], true, None, now),
        condition(&current, KUBELET_CONDITIONS[2], pod_ready, pod_reason, now),
        condition(&current, KUBELET_CONDITIONS[3], ready, not_ready_reason.filter(|_| !ready), now),
    ];
    let mut scheduled = false;
    for c in current["conditions"].as_array().into_iter().flatten() {
        let kind = c["type"].as_str().unwrap_or("");
        if KUBELET_CONDITIONS.contains(&kind) {
            continue;
        }
        scheduled |= kind == "PodScheduled";
        conditions.push(c.clone());
    }
    if !scheduled {
        conditions.push(condition(&current, "PodScheduled", true, None, now));
    }
    let mut containers: Vec<Value> = spec
        .containers
        .iter()
        .map(|c| container_status(c, previous(&current, "containerStatuses", &c.name), started, stage, now, false))
        .collect();
    containers.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let mut status = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": placement.host_ip,
        "hostIPs": [{"ip": placement.host_ip}],
        "podIP": placement.pod_ip,
        "podIPs": [{"ip": placement.pod_ip}],
        "startTime": started,
        "containerStatuses": containers,
    });
    if let Some(init) = spec.init_containers.as_ref().filter(|i| !i.is_empty()) {
        status["initContainerStatuses"] = Value::Array(
            init.iter()
                .map(|c| container_status(c, previous(&current, "initContainerStatuses", &c.name), started, stage, now, true))
                .collect(),
        );
    }
    status
}

/// `v` without null members (typed objects drop them when they serialize).
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), without_nulls(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Whether writing `want` would change anything in `pod`'s status.
pub fn differs(pod: &Pod, want: &Value) -> bool {
    let current = without_nulls(&current_status(pod));
    let Value::Object(fields) = without_nulls(want) else { return false };
    fields.iter().any(|(k, v)| current.get(k) != Some(v))
}

/// Exit code of a container killed on deletion (128 + SIGKILL).
pub const KILLED_EXIT_CODE: i32 = 137;

/// The terminal status a kubelet reports for a pod being deleted before it finished: its
/// containers were killed, so it Failed. `None` once it is terminal.
pub fn killed_status(pod: &Pod, placement: &Placement, now: jiff::Timestamp) -> Option<Value> {
    let status = pod.status.as_ref();
    if matches!(status.and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed")) {
        return None;
    }
    let started = status.and_then(|s| s.start_time.as_ref()).map_or(now, |t| t.0);
    Some(desired_status(pod, placement, Stage::Exited { code: KILLED_EXIT_CODE }, &time(started), &time(now)))
}

/// The next step for a pod bound to a simulated node.
pub fn plan(pod: &Pod, placement: &Placement, now: jiff::Timestamp) -> Plan {
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
    if phase == "Succeeded" || phase == "Failed" {
        return Plan { status: None, requeue: None };
    }
    let now_s = time(now);
    let started_at = status
        .filter(|_| phase == "Running")
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0)
        .unwrap_or(now);
    let started = time(started_at);
    let elapsed = Duration::try_from(now.duration_since(started_at)).unwrap_or_default();
    if phase == "Running"
        && let Some(code) = exit_code(pod)
    {
        let run = run_duration(pod);
        if elapsed >= run {
            let want = desired_status(pod, placement, Stage::Exited { code }, &started, &now_s);
            return Plan { status: Some(want), requeue: None };
        }
        let want = desired_status(pod, placement, Stage::Running { ready: elapsed >= ready_delay(pod) }, &started, &now_s);
        return Plan { status: differs(pod, &want).then_some(want), requeue: Some(run - elapsed) };
    }
    let delay = ready_delay(pod);
    let ready = phase == "Running" && elapsed >= delay;
    let want = desired_status(pod, placement, Stage::Running { ready: ready || delay.is_zero() }, &started, &now_s);
    let requeue = if ready || delay.is_zero() { None } else { Some(delay.saturating_sub(elapsed)) };
    Plan { status: differs(pod, &want).then_some(want), requeue }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(value: Value) -> Pod {
        serde_json::from_value(value).expect("pod")
    }

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().expect("timestamp")
    }

    fn placement() -> Placement {
        Placement { host_ip: "10.244.0.1".into(), pod_ip: "10.128.0.2".into() }
    }

    fn bound(extra_meta: Value) -> Pod {
        pod(json!({
            "metadata": {"name": "web-1", "namespace": "default", "uid": "u1", "annotations": extra_meta},
            "spec": {"nodeName": "sim-node-0", "containers": [
                {"name": "zeta", "image": "busybox:1.36"},
                {"name": "alpha", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": "100m"}}},
            ]},
            "status": {"phase": "Pending", "qosClass": "Burstable", "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"}
            ]},
        }))
    }

    #[test]
    fn pods_deleted_while_running_fail() {
        let mut running = bound(json!({}));
        running.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at("2025-01-01T00:00:10Z")));
        let status = killed_status(&running, &placement(), at("2025-01-01T00:00:11Z")).expect("a terminal status");
        assert_eq!(status["phase"], "Failed");
        assert_eq!(status["containerStatuses"][0]["state"]["terminated"]["exitCode"], KILLED_EXIT_CODE);
        let mut done = running.clone();
        if let Some(s) = done.status.as_mut() {
            s.phase = Some("Succeeded".into());
        }
        assert_eq!(killed_status(&done, &placement(), at("2025-01-01T00:00:11Z")), None);
    }

    #[test]
    fn images_are_normalized_like_containerd() {
        assert_eq!(normalize_image("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(normalize_image("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(normalize_image("me/app"), "docker.io/me/app:latest");
        assert_eq!(normalize_image("registry.k8s.io/pause:3.10"), "registry.k8s.io/pause:3.10");
        assert_eq!(normalize_image("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(image_id("busybox:1.36"), format!("docker.io/library/busybox@sha256:{}", hex64("docker.io/library/busybox:1.36")));
        assert_eq!(hex64("x").len(), 64);
    }

    #[test]
    fn a_bound_pod_becomes_running_and_ready() {
        let p = bound(json!({}));
        let plan = plan(&p, &placement(), at("2025-01-01T00:00:10Z"));
        let s = plan.status.expect("a status to write");
        assert_eq!(plan.requeue, None);
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["podIP"], "10.128.0.2");
        assert_eq!(s["hostIPs"], json!([{"ip": "10.244.0.1"}]));
        assert_eq!(s["startTime"], "2025-01-01T00:00:10Z");
        let types: Vec<&str> = s["conditions"].as_array().expect("conditions").iter().filter_map(|c| c["type"].as_str()).collect();
        assert_eq!(types, ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]);
        assert!(s["conditions"].as_array().expect("conditions").iter().all(|c| c["status"] == "True"));
        assert_eq!(s["conditions"][4]["lastTransitionTime"], "2025-01-01T00:00:00Z", "the scheduler's condition is kept");
        let cs = s["containerStatuses"].as_array().expect("statuses");
        assert_eq!(cs[0]["name"], "alpha", "sorted by name like the kubelet");
        assert_eq!(cs[0]["allocatedResources"], json!({"cpu": "100m"}));
        assert_eq!(cs[1]["image"], "docker.io/library/busybox:1.36");
        assert_eq!(cs[1]["state"]["running"]["startedAt"], "2025-01-01T00:00:10Z");
        assert_eq!(cs[1]["ready"], true);
        assert_eq!(cs[1]["started"], true);
        assert_eq!(cs[1]["restartCount"], 0);
        let id = cs[1]["containerID"].as_str().expect("id");
        assert!(id.starts_with("containerd://") && id.len() == "containerd://".len() + 64);

        // Once written, the same plan changes nothing, and container IDs stay.
        let mut running = p.clone();
        running.status = serde_json::from_value(s.clone()).ok();
        let again = super::plan(&running, &placement(), at("2025-01-01T00:01:00Z"));
        assert_eq!(again, Plan { status: None, requeue: None });
    }

    #[test]
    fn readiness_waits_for_the_initial_delay() {
        let mut p = bound(json!({}));
        if let Some(spec) = p.spec.as_mut() {
            spec.containers[0].readiness_probe = serde_json::from_value(json!({"initialDelaySeconds": 5, "exec": {"command": ["true"]}})).ok();
        }
        let first = plan(&p, &placement(), at("2025-01-01T00:00:10Z"));
        let s = first.status.expect("status");
        assert_eq!(s["conditions"][2]["status"], "False");
        assert_eq!(s["conditions"][2]["reason"], "ContainersNotReady");
        assert_eq!(first.requeue, Some(Duration::from_secs(5)));
        p.status = serde_json::from_value(s).ok();
        let second = plan(&p, &placement(), at("2025-01-01T00:00:16Z"));
        let s = second.status.expect("status");
        assert_eq!(s["conditions"][2]["status"], "True");
        assert_eq!(s["conditions"][1]["lastTransitionTime"], "2025-01-01T00:00:10Z");
        assert_eq!(s["conditions"][2]["lastTransitionTime"], "2025-01-01T00:00:16Z");
    }

    #[test]
    fn annotated_pods_complete() {
        let p = bound(json!({EXIT_CODE_ANNOTATION: "3", RUN_DURATION_ANNOTATION: "2s"}));
        let first = plan(&p, &placement(), at("2025-01-01T00:00:10Z"));
        let mut running = p.clone();
        running.status = serde_json::from_value(first.status.expect("running")).ok();
        let early = plan(&running, &placement(), at("2025-01-01T00:00:11Z"));
        assert_eq!(early.status, None);
        assert_eq!(early.requeue, Some(Duration::from_secs(1)));
        let done = plan(&running, &placement(), at("2025-01-01T00:00:12Z")).status.expect("done");
        assert_eq!(done["phase"], "Failed");
        assert_eq!(done["conditions"][2]["reason"], "PodCompleted");
        assert_eq!(done["conditions"][0]["status"], "False");
        let term = &done["containerStatuses"][0]["state"]["terminated"];
        assert_eq!(term["exitCode"], 3);
        assert_eq!(term["reason"], "Error");
        assert_eq!(term["finishedAt"], "2025-01-01T00:00:12Z");
        assert_eq!(done["containerStatuses"][0]["containerID"], running.status.as_ref().and_then(|s| s.container_statuses.as_ref()).map(|c| json!(c[0].container_id)).unwrap_or_default());

        let ok = bound(json!({EXIT_CODE_ANNOTATION: "0"}));
        let mut running = ok.clone();
        running.status = serde_json::from_value(plan(&ok, &placement(), at("2025-01-01T00:00:10Z")).status.expect("running")).ok();
        let done = plan(&running, &placement(), at("2025-01-01T00:00:10Z")).status.expect("done");
        assert_eq!(done["phase"], "Succeeded");
        assert_eq!(done["containerStatuses"][0]["state"]["terminated"]["reason"], "Completed");
    }

    #[test]
    fn init_containers_and_sidecars() {
        let p = pod(json!({
            "metadata": {"name": "p", "uid": "u"},
            "spec": {"nodeName": "n", "initContainers": [
                {"name": "setup", "image": "busybox"},
                {"name": "proxy", "image": "envoy", "restartPolicy": "Always"},
            ], "containers": [{"name": "main", "image": "busybox"}]},
        }));
        let s = plan(&p, &placement(), at("2025-01-01T00:00:10Z")).status.expect("status");
        let init = s["initContainerStatuses"].as_array().expect("init statuses");
        assert_eq!(init[0]["state"]["terminated"]["reason"], "Completed");
        assert_eq!(init[0]["ready"], true);
        assert_eq!(init[1]["state"]["running"]["startedAt"], "2025-01-01T00:00:10Z");
        assert_eq!(init[1]["started"], true);
    }
}
