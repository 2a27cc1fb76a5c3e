//! What the kubelet reports about a pod, decided from the container statuses it built: the
//! phase and the Initialized / ContainersReady / Ready conditions, with upstream's reasons
//! and messages (kubelet `getPhase` and the status package's condition generators, v1.33;
//! observedGeneration is behind an alpha gate there and left out here).

pub mod containers;

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, PodCondition, PodSpec};

pub const UNKNOWN_CONTAINER_STATUSES: &str = "UnknownContainerStatuses";
pub const POD_COMPLETED: &str = "PodCompleted";
pub const POD_FAILED: &str = "PodFailed";
pub const CONTAINERS_NOT_READY: &str = "ContainersNotReady";
pub const CONTAINERS_NOT_INITIALIZED: &str = "ContainersNotInitialized";
pub const READINESS_GATES_NOT_READY: &str = "ReadinessGatesNotReady";

/// An init container with `restartPolicy: Always` (a sidecar).
pub fn is_restartable_init_container(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

fn find<'a>(statuses: &'a [ContainerStatus], name: &str) -> Option<&'a ContainerStatus> {
    statuses.iter().find(|s| s.name == name)
}

fn state(s: &ContainerStatus) -> (bool, Option<i32>, bool) {
    let st = s.state.as_ref();
    let running = st.and_then(|x| x.running.as_ref()).is_some();
    let terminated = st.and_then(|x| x.terminated.as_ref()).map(|t| t.exit_code);
    let waiting = st.and_then(|x| x.waiting.as_ref()).is_some();
    (running, terminated, waiting)
}

fn last_exit(s: &ContainerStatus) -> Option<i32> {
    s.last_state.as_ref().and_then(|l| l.terminated.as_ref()).map(|t| t.exit_code)
}

fn started(s: &ContainerStatus) -> bool {
    s.started == Some(true)
}

/// The pod's phase from its containers' statuses. `terminal`: the kubelet has decided the
/// pod will not run again; `initialized`: the pod was initialized before.
pub fn phase(pod: &Pod, statuses: &[ContainerStatus], terminal: bool, initialized: bool) -> &'static str {
    let empty = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty);
    let init = spec.init_containers.as_deref().unwrap_or_default();
    let restart_policy = spec.restart_policy.as_deref().unwrap_or("Always");

    let (mut pending_regular_init, mut pending_sidecars, mut failed_init) = (0, 0, 0);
    for c in init.iter().filter(|c| !is_restartable_init_container(c)) {
        let Some(s) = find(statuses, &c.name) else {
            pending_regular_init += 1;
            continue;
        };
        match state(s) {
            (true, _, _) => pending_regular_init += 1,
            (_, Some(code), _) => failed_init += usize::from(code != 0),
            (_, None, true) => match last_exit(s) {
                Some(code) => failed_init += usize::from(code != 0),
                None => pending_regular_init += 1,
            },
            _ => pending_regular_init += 1,
        }
    }

    let (mut unknown, mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0, 0);
    for c in init.iter().filter(|c| is_restartable_init_container(c)) {
        let Some(s) = find(statuses, &c.name) else {
            unknown += 1;
            continue;
        };
        match state(s) {
            (true, _, _) => {
                pending_sidecars += usize::from(!started(s));
                running += 1;
            }
            (_, Some(_), _) => {}
            (_, None, true) => {
                if last_exit(s).is_none() {
                    pending_sidecars += 1;
                    waiting += 1;
                }
            }
            _ => {
                pending_sidecars += 1;
                unknown += 1;
            }
        }
    }
    for c in &spec.containers {
        let Some(s) = find(statuses, &c.name) else {
            unknown += 1;
            continue;
        };
        match state(s) {
            (true, _, _) => running += 1,
            (_, Some(code), _) => {
                stopped += 1;
                succeeded += usize::from(code == 0);
            }
            (_, None, true) => {
                if last_exit(s).is_some() {
                    stopped += 1;
                } else {
                    waiting += 1;
                }
            }
            _ => unknown += 1,
        }
    }

    if failed_init > 0 && restart_policy == "Never" {
        return "Failed";
    }
    if pending_regular_init > 0 || (pending_sidecars > 0 && !initialized) || waiting > 0 {
        return "Pending";
    }
    if running > 0 && unknown == 0 {
        return "Running";
    }
    if running == 0 && stopped > 0 && unknown == 0 {
        // (Static pods keep restarting; there are none yet.)
        if terminal {
            return if stopped == succeeded { "Succeeded" } else { "Failed" };
        }
        return match restart_policy {
            "Always" => "Running",
            _ if stopped == succeeded => "Succeeded",
            "Never" => "Failed",
            _ => "Running",
        };
    }
    "Pending"
}

fn condition(kind: &str, status: &str, reason: Option<&str>, message: Option<String>) -> PodCondition {
    PodCondition {
        type_: kind.to_string(),
        status: status.to_string(),
        reason: reason.map(str::to_string),
        message: message.filter(|m| !m.is_empty()),
        ..Default::default()
    }
}

/// Go's `%s` of a []string: `[a b]`.
fn go_list(names: &[&str]) -> String {
    format!("[{}]", names.join(" "))
}

/// True when no container is unknown or `lacking.1`; otherwise False with `reason` and the
/// message "containers with unknown status: [..], containers with <lacking.0> status: [..]".
fn by_container_status(kind: &str, reason: &str, unknown: &[&str], lacking: (&str, &[&str])) -> PodCondition {
    let mut messages = Vec::new();
    if !unknown.is_empty() {
        messages.push(format!("containers with unknown status: {}", go_list(unknown)));
    }
    if !lacking.1.is_empty() {
        messages.push(format!("containers with {} status: {}", lacking.0, go_list(lacking.1)));
    }
    if messages.is_empty() {
        condition(kind, "True", None, None)
    } else {
        condition(kind, "False", Some(reason), Some(messages.join(", ")))
    }
}

/// `ContainersReady`. `statuses` is `None` when the kubelet knows nothing about the
/// containers yet.
pub fn containers_ready(pod: &Pod, statuses: Option<&[ContainerStatus]>, phase: &str) -> PodCondition {
    const KIND: &str = "ContainersReady";
    let Some(statuses) = statuses else {
        return condition(KIND, "False", Some(UNKNOWN_CONTAINER_STATUSES), None);
    };
    let empty = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty);
    let (mut unknown, mut unready) = (Vec::new(), Vec::new());
    let sidecars = spec.init_containers.iter().flatten().filter(|c| is_restartable_init_container(c));
    for c in sidecars.chain(spec.containers.iter()) {
        match find(statuses, &c.name) {
            Some(s) if !s.ready => unready.push(c.name.as_str()),
            Some(_) => {}
            None => unknown.push(c.name.as_str()),
        }
    }
    if (phase == "Succeeded" && unknown.is_empty()) || phase == "Failed" {
        let reason = if phase == "Failed" { POD_FAILED } else { POD_COMPLETED };
        return condition(KIND, "False", Some(reason), None);
    }
    by_container_status(KIND, CONTAINERS_NOT_READY, &unknown, ("unready", &unready))
}

/// `Ready`: ContainersReady, then every readiness gate's condition True in `conditions`.
pub fn pod_ready(pod: &Pod, conditions: &[PodCondition], statuses: Option<&[ContainerStatus]>, phase: &str) -> PodCondition {
    const KIND: &str = "Ready";
    let containers = containers_ready(pod, statuses, phase);
    if containers.status != "True" {
        return PodCondition { type_: KIND.into(), ..containers };
    }
    let mut messages = Vec::new();
    for gate in pod.spec.iter().flat_map(|s| s.readiness_gates.iter().flatten()) {
        match conditions.iter().find(|c| c.type_ == gate.condition_type) {
            None => messages.push(format!("corresponding condition of pod readiness gate {:?} does not exist.", gate.condition_type)),
            Some(c) if c.status != "True" => {
                messages.push(format!("the status of pod readiness gate {:?} is not \"True\", but {}", gate.condition_type, c.status))
            }
            Some(_) => {}
        }
    }
    if messages.is_empty() {
        condition(KIND, "True", None, None)
    } else {
        condition(KIND, "False", Some(READINESS_GATES_NOT_READY), Some(messages.join(", ")))
    }
}

/// `Initialized`.
pub fn initialized(pod: &Pod, statuses: Option<&[ContainerStatus]>, phase: &str) -> PodCondition {
    const KIND: &str = "Initialized";
    let empty = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty);
    let init = spec.init_containers.as_deref().unwrap_or_default();
    let Some(statuses) = statuses.or(if init.is_empty() { Some(&[]) } else { None }) else {
        return condition(KIND, "False", Some(UNKNOWN_CONTAINER_STATUSES), None);
    };
    let (mut unknown, mut incomplete) = (Vec::new(), Vec::new());
    for c in init {
        match find(statuses, &c.name) {
            None => unknown.push(c.name.as_str()),
            Some(s) => {
                let done = if is_restartable_init_container(c) { started(s) } else { s.ready };
                if !done {
                    incomplete.push(c.name.as_str());
                }
            }
        }
    }
    if phase == "Succeeded" && unknown.is_empty() {
        return condition(KIND, "True", Some(POD_COMPLETED), None);
    }
    let regular_started = statuses.iter().any(|s| {
        spec.containers.iter().any(|c| c.name == s.name) && {
            let (running, terminated, _) = state(s);
            running || terminated.is_some()
        }
    });
    if regular_started {
        return condition(KIND, "True", None, None);
    }
    by_container_status(KIND, CONTAINERS_NOT_INITIALIZED, &unknown, ("incomplete", &incomplete))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn pod(spec: Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).expect("pod")
    }

    fn statuses(v: Value) -> Vec<ContainerStatus> {
        serde_json::from_value(v).expect("statuses")
    }

    fn running(name: &str, ready: bool) -> Value {
        json!({"name": name, "image": "i", "imageID": "", "ready": ready, "restartCount": 0, "started": true, "state": {"running": {}}})
    }

    fn exited(name: &str, code: i32) -> Value {
        json!({"name": name, "image": "i", "imageID": "", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": code}}})
    }

    fn waiting(name: &str, last_exit: Option<i32>) -> Value {
        let mut s = json!({"name": name, "image": "i", "imageID": "", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}});
        if let Some(code) = last_exit {
            s["lastState"] = json!({"terminated": {"exitCode": code}});
        }
        s
    }

    #[test]
    fn phases() {
        let two = json!({"containers": [{"name": "a"}, {"name": "b"}]});
        let with_init = |policy: &str| json!({"restartPolicy": policy, "initContainers": [{"name": "i"}], "containers": [{"name": "a"}]});
        let with_sidecar = json!({"initContainers": [{"name": "s", "restartPolicy": "Always"}], "containers": [{"name": "a"}]});
        let table: Vec<(&str, Value, Value, bool, &str)> = vec![
            ("nothing known", two.clone(), json!([]), false, "Pending"),
            ("all running", two.clone(), json!([running("a", true), running("b", false)]), false, "Running"),
            ("one unknown", two.clone(), json!([running("a", true)]), false, "Pending"),
            ("one waiting", two.clone(), json!([running("a", true), waiting("b", None)]), false, "Pending"),
            ("crash loop counts as stopped", two.clone(), json!([running("a", true), waiting("b", Some(1))]), false, "Running"),
            ("Always keeps exited pods Running", two.clone(), json!([exited("a", 0), exited("b", 0)]), false, "Running"),
            ("terminal and all succeeded", two.clone(), json!([exited("a", 0), exited("b", 0)]), true, "Succeeded"),
            ("terminal, one failed", two.clone(), json!([exited("a", 0), exited("b", 2)]), true, "Failed"),
            ("OnFailure succeeded", json!({"restartPolicy": "OnFailure", "containers": [{"name": "a"}]}), json!([exited("a", 0)]), false, "Succeeded"),
            ("OnFailure failed keeps running", json!({"restartPolicy": "OnFailure", "containers": [{"name": "a"}]}), json!([exited("a", 1)]), false, "Running"),
            ("Never failed", json!({"restartPolicy": "Never", "containers": [{"name": "a"}]}), json!([exited("a", 1)]), false, "Failed"),
            ("init running", with_init("Always"), json!([running("i", false)]), false, "Pending"),
            ("init failed, Never", with_init("Never"), json!([exited("i", 1)]), false, "Failed"),
            ("init failed, Always retries", with_init("Always"), json!([exited("i", 1)]), false, "Pending"),
            ("init done, main running", with_init("Always"), json!([exited("i", 0), running("a", true)]), false, "Running"),
            ("sidecar not started", with_sidecar.clone(), json!([waiting("s", None)]), false, "Pending"),
            ("sidecar and main running", with_sidecar.clone(), json!([running("s", true), running("a", true)]), false, "Running"),
        ];
        for (what, spec, st, terminal, want) in table {
            assert_eq!(phase(&pod(spec), &statuses(st), terminal, false), want, "{what}");
        }
    }

    #[test]
    fn conditions_and_messages() {
        let p = pod(json!({"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}], "readinessGates": [{"conditionType": "example.com/gate"}]}));
        let st = statuses(json!([running("a", true), running("b", false)]));
        let cr = containers_ready(&p, Some(&st), "Running");
        assert_eq!((cr.status.as_str(), cr.reason.as_deref()), ("False", Some(CONTAINERS_NOT_READY)));
        assert_eq!(cr.message.as_deref(), Some("containers with unknown status: [c], containers with unready status: [b]"));
        let ready = pod_ready(&p, &[], Some(&st), "Running");
        assert_eq!((ready.type_.as_str(), ready.message), ("Ready".to_string().as_str(), cr.message));

        let all = statuses(json!([running("a", true), running("b", true), running("c", true)]));
        let gate = pod_ready(&p, &[], Some(&all), "Running");
        assert_eq!(gate.reason.as_deref(), Some(READINESS_GATES_NOT_READY));
        assert_eq!(gate.message.as_deref(), Some("corresponding condition of pod readiness gate \"example.com/gate\" does not exist."));
        let set = [condition("example.com/gate", "True", None, None)];
        assert_eq!(pod_ready(&p, &set, Some(&all), "Running").status, "True");

        let done = containers_ready(&p, Some(&all), "Failed");
        assert_eq!(done.reason.as_deref(), Some(POD_FAILED));
        assert_eq!(containers_ready(&p, None, "Pending").reason.as_deref(), Some(UNKNOWN_CONTAINER_STATUSES));
    }

    #[test]
    fn initialized_condition() {
        let p = pod(json!({"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]}));
        let mut i1 = exited("i1", 0);
        i1["ready"] = json!(true);
        let c = initialized(&p, Some(&statuses(json!([i1.clone(), running("i2", false)]))), "Pending");
        assert_eq!((c.status.as_str(), c.reason.as_deref()), ("False", Some(CONTAINERS_NOT_INITIALIZED)));
        assert_eq!(c.message.as_deref(), Some("containers with incomplete status: [i2]"));
        let c = initialized(&p, Some(&statuses(json!([i1.clone()]))), "Pending");
        assert_eq!(c.message.as_deref(), Some("containers with unknown status: [i2]"));
        let c = initialized(&p, Some(&statuses(json!([i1, exited("i2", 0), running("a", true)]))), "Running");
        assert_eq!(c.status, "True", "a started regular container means initialized");
        assert_eq!(initialized(&p, None, "Pending").reason.as_deref(), Some(UNKNOWN_CONTAINER_STATUSES));
        let plain = pod(json!({"containers": [{"name": "a"}]}));
        assert_eq!(initialized(&plain, None, "Pending").status, "True");
    }
}
