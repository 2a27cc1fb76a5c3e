//! What one sync of a pod must do, decided from the Pod and what the runtime has of it, as
//! upstream's `computePodActions`: a new sandbox when there is none ready (killing what is
//! left of the old one), then init containers one at a time in order (sidecars — init
//! containers with `restartPolicy: Always` — started and kept running), then the regular
//! containers that should (re)start under the restart policy; running containers whose
//! spec changed or that failed their liveness probe are killed and started again.
//!
//! Pure: back-off is applied when the actions are carried out.

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};

use super::inspect::{Instance, PodRuntime};
use crate::kuberuntime::container::hash;
use crate::status::containers::{State, should_restart};
use crate::status::is_restartable_init_container;

/// A running container to stop, and the message of its Killing event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kill {
    pub id: String,
    pub name: String,
    pub message: String,
}

/// What a sync does, in this order: kill the pod, create a sandbox, kill containers, start
/// init containers, start containers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actions {
    /// Stop every running container and every sandbox of the pod.
    pub kill_pod: bool,
    /// Create a sandbox with this attempt number.
    pub create_sandbox: Option<u32>,
    /// The ready sandbox containers go into (when none is created).
    pub sandbox_id: Option<String>,
    /// Init containers to start, by index in spec.initContainers.
    pub init_to_start: Vec<usize>,
    /// Regular containers to start, by index in spec.containers.
    pub containers_to_start: Vec<usize>,
    pub containers_to_kill: Vec<Kill>,
}

fn restart_policy(spec: &PodSpec) -> &str {
    spec.restart_policy.as_deref().unwrap_or("Always")
}

/// Whether the pod needs a new sandbox: none, more than one ready, the newest not ready or
/// (outside the host network) without an IP.
fn sandbox_changed(pod: &Pod, runtime: &PodRuntime) -> bool {
    let host_network = pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
    match runtime.sandboxes.first() {
        None => true,
        Some(newest) => {
            runtime.sandboxes.iter().filter(|s| s.ready).count() > 1 || !newest.ready || (!host_network && newest.ips.is_empty())
        }
    }
}

fn succeeded(i: Option<&Instance>) -> bool {
    i.is_some_and(|i| i.status.state == State::Exited && i.status.exit_code == 0)
}

/// The regular containers a fresh sandbox starts.
fn containers_for_new_sandbox(pod: &Pod, spec: &PodSpec, runtime: &PodRuntime) -> Vec<usize> {
    spec.containers
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            let newest = runtime.newest(&c.name);
            match restart_policy(spec) {
                "Never" => newest.is_none(),
                "OnFailure" => !succeeded(newest),
                _ => should_restart(pod, None),
            }
        })
        .map(|(i, _)| i)
        .collect()
}

/// The actions of one sync of `pod`. `kill_requests`: containers whose liveness or startup
/// probe failed, with the message of their Killing event.
pub fn compute(pod: &Pod, runtime: &PodRuntime, kill_requests: &[(String, String)]) -> Actions {
    let empty = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty);
    let init = spec.init_containers.as_deref().unwrap_or_default();
    let mut actions = Actions::default();

    if sandbox_changed(pod, runtime) {
        let attempt = runtime.sandboxes.first().map(|s| s.attempt + 1).unwrap_or(0);
        actions.kill_pod = !runtime.sandboxes.is_empty() || runtime.containers.iter().any(Instance::running);
        // A pod that must not restart and that ran before gets no new sandbox.
        if restart_policy(spec) == "Never" && attempt != 0 && !runtime.containers.is_empty() {
            actions.kill_pod = true;
            return actions;
        }
        if !init.is_empty() {
            actions.create_sandbox = Some(attempt);
            actions.init_to_start = vec![0];
            return actions;
        }
        let start = containers_for_new_sandbox(pod, spec, runtime);
        if start.is_empty() {
            actions.kill_pod = true;
        } else {
            actions.create_sandbox = Some(attempt);
            actions.containers_to_start = start;
        }
        return actions;
    }
    actions.sandbox_id = runtime.sandboxes.first().map(|s| s.id.clone());

    // Init containers, in order: a regular one must succeed before the next starts; a
    // sidecar must be running.
    for (i, c) in init.iter().enumerate() {
        let newest = runtime.newest(&c.name);
        if is_restartable_init_container(c) {
            match newest {
                Some(n) if n.running() => continue,
                Some(n) if n.status.state == State::Exited => {
                    actions.init_to_start.push(i);
                    continue;
                }
                _ => {
                    actions.init_to_start.push(i);
                    return actions;
                }
            }
        }
        match newest {
            Some(n) if n.running() => return actions,
            Some(n) if n.status.state == State::Exited && n.status.exit_code == 0 => continue,
            Some(n) if n.status.state == State::Exited => {
                if restart_policy(spec) == "Never" {
                    actions.kill_pod = true;
                } else if pod.metadata.deletion_timestamp.is_none() {
                    actions.init_to_start.push(i);
                }
                return actions;
            }
            _ => {
                actions.init_to_start.push(i);
                return actions;
            }
        }
    }

    for (i, c) in spec.containers.iter().enumerate() {
        let newest = runtime.newest(&c.name);
        if let Some(n) = newest.filter(|n| n.running()) {
            let message = if n.hash != hash(c) {
                Some(format!("Container {} definition changed, will be restarted", c.name))
            } else {
                kill_requests.iter().find(|(name, _)| name == &c.name).map(|(_, m)| m.clone())
            };
            if let Some(message) = message {
                actions.containers_to_kill.push(Kill { id: n.id.clone(), name: c.name.clone(), message });
                if restart_policy(spec) != "Never" {
                    actions.containers_to_start.push(i);
                }
            }
            continue;
        }
        if should_restart(pod, newest.map(|n| &n.status)) {
            actions.containers_to_start.push(i);
        }
    }
    actions
}

/// The container at `index` of the list `init` selects.
pub fn container(pod: &Pod, init: bool, index: usize) -> Option<&Container> {
    let spec = pod.spec.as_ref()?;
    if init { spec.init_containers.as_ref()?.get(index) } else { spec.containers.get(index) }
}

#[cfg(test)]
mod tests {
    use super::super::inspect::Sandbox;
    use super::*;
    use crate::status::containers::RuntimeContainer;
    use serde_json::{Value, json};

    fn pod(spec: Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": spec})).expect("pod")
    }

    fn sandbox(id: &str, attempt: u32, ready: bool) -> Sandbox {
        Sandbox { id: id.into(), attempt, ready, created_at: i64::from(attempt), ips: vec!["10.0.0.2".into()] }
    }

    /// An instance of the container `name` of `p`: `state` r(unning) / e<code> (exited).
    fn instance(p: &Pod, name: &str, created: i64, state: &str) -> Instance {
        let spec = p.spec.as_ref().expect("spec");
        let c = spec.containers.iter().chain(spec.init_containers.iter().flatten()).find(|c| c.name == name).expect("container");
        let (state, exit_code) = match state {
            "r" => (State::Running, 0),
            e => (State::Exited, e[1..].parse().expect("code")),
        };
        Instance {
            id: format!("{name}-{created}"),
            sandbox_id: "s1".into(),
            hash: hash(c),
            log_path: String::new(),
            status: RuntimeContainer {
                name: name.into(),
                id: format!("containerd://{name}-{created}"),
                state,
                restart_count: 0,
                image: String::new(),
                image_ref: String::new(),
                created_at: jiff::Timestamp::from_second(created).ok(),
                started_at: None,
                finished_at: None,
                exit_code,
                reason: String::new(),
                message: String::new(),
            },
        }
    }

    fn two() -> Value {
        json!({"containers": [{"name": "a", "image": "i"}, {"name": "b", "image": "i"}]})
    }

    #[test]
    fn a_new_pod_gets_a_sandbox_and_all_its_containers() {
        let a = compute(&pod(two()), &PodRuntime::default(), &[]);
        assert_eq!(a, Actions { create_sandbox: Some(0), containers_to_start: vec![0, 1], ..Default::default() });
    }

    #[test]
    fn a_dead_sandbox_is_replaced_with_the_next_attempt() {
        let p = pod(two());
        let rt = PodRuntime { sandboxes: vec![sandbox("s1", 0, false)], containers: vec![instance(&p, "a", 1, "e137")] };
        let a = compute(&p, &rt, &[]);
        assert!(a.kill_pod);
        assert_eq!(a.create_sandbox, Some(1));
        assert_eq!(a.containers_to_start, [0, 1]);

        // restartPolicy Never: the pod is not started again.
        let p = pod(json!({"restartPolicy": "Never", "containers": [{"name": "a", "image": "i"}]}));
        let rt = PodRuntime { sandboxes: vec![sandbox("s1", 0, false)], containers: vec![instance(&p, "a", 1, "e0")] };
        assert_eq!(compute(&p, &rt, &[]), Actions { kill_pod: true, ..Default::default() });
    }

    #[test]
    fn restart_policies_decide_which_exited_containers_start() {
        let table = [("Always", "e0", vec![0]), ("Always", "e1", vec![0]), ("OnFailure", "e0", vec![]), ("OnFailure", "e2", vec![0]), ("Never", "e1", vec![])];
        for (policy, state, want) in table {
            let p = pod(json!({"restartPolicy": policy, "containers": [{"name": "a", "image": "i"}]}));
            let rt = PodRuntime { sandboxes: vec![sandbox("s1", 0, true)], containers: vec![instance(&p, "a", 1, state)] };
            let a = compute(&p, &rt, &[]);
            assert_eq!(a.containers_to_start, want, "{policy} {state}");
            assert_eq!(a.sandbox_id.as_deref(), Some("s1"));
        }
    }

    #[test]
    fn init_containers_run_one_at_a_time_then_the_rest() {
        let spec = json!({"initContainers": [{"name": "i1", "image": "i"}, {"name": "side", "image": "i", "restartPolicy": "Always"}, {"name": "i2", "image": "i"}],
            "containers": [{"name": "a", "image": "i"}]});
        let p = pod(spec);
        let ready = || vec![sandbox("s1", 0, true)];
        let fresh = compute(&p, &PodRuntime::default(), &[]);
        assert_eq!((fresh.create_sandbox, fresh.init_to_start.clone(), fresh.containers_to_start.clone()), (Some(0), vec![0], vec![]));
        // i1 running: wait.
        let rt = PodRuntime { sandboxes: ready(), containers: vec![instance(&p, "i1", 1, "r")] };
        assert_eq!(compute(&p, &rt, &[]).init_to_start, Vec::<usize>::new());
        // i1 done: the sidecar starts, and nothing after it yet.
        let rt = PodRuntime { sandboxes: ready(), containers: vec![instance(&p, "i1", 1, "e0")] };
        let a = compute(&p, &rt, &[]);
        assert_eq!((a.init_to_start, a.containers_to_start), (vec![1], vec![]));
        // Sidecar running: i2 next.
        let rt = PodRuntime { sandboxes: ready(), containers: vec![instance(&p, "i1", 1, "e0"), instance(&p, "side", 2, "r")] };
        assert_eq!(compute(&p, &rt, &[]).init_to_start, [2]);
        // All initialized: the regular container starts; an exited sidecar is restarted.
        let rt = PodRuntime {
            sandboxes: ready(),
            containers: vec![instance(&p, "i1", 1, "e0"), instance(&p, "side", 2, "e1"), instance(&p, "i2", 3, "e0")],
        };
        let a = compute(&p, &rt, &[]);
        assert_eq!((a.init_to_start, a.containers_to_start), (vec![1], vec![0]));
        // A failed init container is retried, or fails the pod under Never.
        let rt = PodRuntime { sandboxes: ready(), containers: vec![instance(&p, "i1", 1, "e1")] };
        assert_eq!(compute(&p, &rt, &[]).init_to_start, [0]);
        let mut never = p.clone();
        if let Some(s) = never.spec.as_mut() {
            s.restart_policy = Some("Never".into());
        }
        let rt = PodRuntime { sandboxes: ready(), containers: vec![instance(&never, "i1", 1, "e1")] };
        assert!(compute(&never, &rt, &[]).kill_pod);
    }

    #[test]
    fn changed_specs_and_failed_liveness_restart_running_containers() {
        let p = pod(two());
        let mut changed = instance(&p, "a", 1, "r");
        changed.hash = "other".into();
        let rt = PodRuntime { sandboxes: vec![sandbox("s1", 0, true)], containers: vec![changed, instance(&p, "b", 1, "r")] };
        let a = compute(&p, &rt, &[("b".into(), "Container b failed liveness probe, will be restarted".into())]);
        assert_eq!(
            a.containers_to_kill,
            [
                Kill { id: "a-1".into(), name: "a".into(), message: "Container a definition changed, will be restarted".into() },
                Kill { id: "b-1".into(), name: "b".into(), message: "Container b failed liveness probe, will be restarted".into() },
            ]
        );
        assert_eq!(a.containers_to_start, [0, 1]);
        let steady = PodRuntime { sandboxes: vec![sandbox("s1", 0, true)], containers: vec![instance(&p, "a", 1, "r"), instance(&p, "b", 1, "r")] };
        assert_eq!(compute(&p, &steady, &[]), Actions { sandbox_id: Some("s1".into()), ..Default::default() });
    }
}
