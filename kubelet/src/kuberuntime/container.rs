//! The parts of a container's CRI config that depend on the Pod alone: `$(VAR)` expansion
//! of command and args, the labels and annotations the kubelet reads back after a restart
//! (restart count, grace periods, termination message settings, preStop handler, ports), and
//! where the container's log goes.
//!
//! Environment, mounts and the Linux security context come with the pod worker (they need
//! ConfigMaps, Secrets, volumes and the image's user).

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Container, Pod};

use super::sandbox::{POD_NAME_LABEL, POD_NAMESPACE_LABEL, POD_UID_LABEL};

pub const CONTAINER_NAME_LABEL: &str = "io.kubernetes.container.name";
pub const HASH_ANNOTATION: &str = "io.kubernetes.container.hash";
pub const RESTART_COUNT_ANNOTATION: &str = "io.kubernetes.container.restartCount";
pub const TERMINATION_MESSAGE_PATH_ANNOTATION: &str = "io.kubernetes.container.terminationMessagePath";
pub const TERMINATION_MESSAGE_POLICY_ANNOTATION: &str = "io.kubernetes.container.terminationMessagePolicy";
pub const PRE_STOP_HANDLER_ANNOTATION: &str = "io.kubernetes.container.preStopHandler";
pub const PORTS_ANNOTATION: &str = "io.kubernetes.container.ports";
pub const POD_DELETION_GRACE_PERIOD_ANNOTATION: &str = "io.kubernetes.pod.deletionGracePeriod";
pub const POD_TERMINATION_GRACE_PERIOD_ANNOTATION: &str = "io.kubernetes.pod.terminationGracePeriod";

/// Expands `$(NAME)` references with `lookup`, as the kubelet expands command and args:
/// `$$` is a literal `$`; a reference `lookup` does not know stays as written; a `$` not
/// followed by `(` or `$`, and an unclosed `$(`, are kept.
pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if after.is_empty() {
            out.push('$');
            rest = after;
            break;
        }
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('(') {
            match body.find(')') {
                Some(close) => {
                    let name = &body[..close];
                    match lookup(name) {
                        Some(value) => out.push_str(&value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &body[close + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = body;
                }
            }
        } else {
            // `$x`: kept as written; the character after `$` is looked at again.
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The container's command and args with `$(VAR)` expanded from `env` (the container's
/// resolved environment, later entries winning).
pub fn command_and_args(container: &Container, env: &[(String, String)]) -> (Vec<String>, Vec<String>) {
    let map: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let lookup = |name: &str| map.get(name).map(|v| v.to_string());
    let expand_all = |items: &Option<Vec<String>>| items.iter().flatten().map(|s| expand(s, &lookup)).collect();
    (expand_all(&container.command), expand_all(&container.args))
}

/// The container's labels: the pod's name, namespace and UID and the container's name.
pub fn labels(container: &Container, pod: &Pod) -> HashMap<String, String> {
    let m = &pod.metadata;
    HashMap::from([
        (POD_NAME_LABEL.to_string(), m.name.clone().unwrap_or_default()),
        (POD_NAMESPACE_LABEL.to_string(), m.namespace.clone().unwrap_or_default()),
        (POD_UID_LABEL.to_string(), m.uid.clone().unwrap_or_default()),
        (CONTAINER_NAME_LABEL.to_string(), container.name.clone()),
    ])
}

/// A hash of what cannot change in a running container (its name and image): FNV-1a 32 of
/// their JSON, in hex. Ours only; upstream hashes the same fields through go-spew, so the
/// value differs from what an upstream kubelet writes.
pub fn hash(container: &Container) -> String {
    let fields = serde_json::json!({"image": container.image.clone().unwrap_or_default(), "name": container.name});
    let mut h: u32 = 0x811c_9dc5;
    for b in fields.to_string().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:x}")
}

/// The container's annotations, which the kubelet reads back from the runtime.
pub fn annotations(container: &Container, pod: &Pod, restart_count: u32) -> HashMap<String, String> {
    let mut a = HashMap::from([
        (HASH_ANNOTATION.to_string(), hash(container)),
        (RESTART_COUNT_ANNOTATION.to_string(), restart_count.to_string()),
        (TERMINATION_MESSAGE_PATH_ANNOTATION.to_string(), container.termination_message_path.clone().unwrap_or_default()),
        (TERMINATION_MESSAGE_POLICY_ANNOTATION.to_string(), container.termination_message_policy.clone().unwrap_or_default()),
    ]);
    if let Some(grace) = pod.metadata.deletion_grace_period_seconds {
        a.insert(POD_DELETION_GRACE_PERIOD_ANNOTATION.into(), grace.to_string());
    }
    if let Some(grace) = pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds) {
        a.insert(POD_TERMINATION_GRACE_PERIOD_ANNOTATION.into(), grace.to_string());
    }
    if let Some(json) = container.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()).and_then(|h| serde_json::to_string(h).ok()) {
        a.insert(PRE_STOP_HANDLER_ANNOTATION.into(), json);
    }
    if let Some(json) = container.ports.as_ref().filter(|p| !p.is_empty()).and_then(|p| serde_json::to_string(p).ok()) {
        a.insert(PORTS_ANNOTATION.into(), json);
    }
    a
}

/// The container's log path relative to the sandbox's log directory: `<name>/<restart>.log`.
pub fn log_path(container: &Container, restart_count: u32) -> String {
    format!("{}/{restart_count}.log", container.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expansion_follows_the_kubelet() {
        let vars = HashMap::from([("VAR_A", "A"), ("VAR_B", "B"), ("EMPTY", "")]);
        let lookup = |n: &str| vars.get(n).map(|v| v.to_string());
        let table = [
            ("$(VAR_A)", "A"),
            ("___$(VAR_A)___", "___A___"),
            ("$(VAR_A)-$(VAR_B)", "A-B"),
            ("$(EMPTY)x", "x"),
            ("$(UNKNOWN)", "$(UNKNOWN)"),
            ("$$(VAR_A)", "$(VAR_A)"),
            ("$$$(VAR_A)", "$A"),
            ("$$$$", "$$"),
            ("$VAR_A", "$VAR_A"),
            ("$(VAR_A", "$(VAR_A"),
            ("$", "$"),
            ("x$", "x$"),
            ("$()", "$()"),
            ("$($(VAR_A))", "$($(VAR_A))"),
            ("$(VAR_A)$(", "A$("),
            ("ünïcode $(VAR_B) ✓", "ünïcode B ✓"),
        ];
        for (input, want) in table {
            assert_eq!(expand(input, &lookup), want, "{input:?}");
        }
    }

    #[test]
    fn command_args_labels_annotations() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "deletionGracePeriodSeconds": 5},
            "spec": {"terminationGracePeriodSeconds": 30, "containers": [{
                "name": "c", "image": "busybox:1.36", "command": ["sh", "-c"], "args": ["echo $(GREETING) $(MISSING)"],
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                "ports": [{"containerPort": 80}], "lifecycle": {"preStop": {"exec": {"command": ["true"]}}},
            }]},
        }))
        .expect("pod");
        let c = &pod.spec.as_ref().expect("spec").containers[0];
        let (command, args) = command_and_args(c, &[("GREETING".into(), "hi".into())]);
        assert_eq!((command, args), (vec!["sh".to_string(), "-c".into()], vec!["echo hi $(MISSING)".to_string()]));
        assert_eq!(labels(c, &pod).get(CONTAINER_NAME_LABEL).map(String::as_str), Some("c"));
        let a = annotations(c, &pod, 3);
        assert_eq!(a[RESTART_COUNT_ANNOTATION], "3");
        assert_eq!(a[POD_DELETION_GRACE_PERIOD_ANNOTATION], "5");
        assert_eq!(a[POD_TERMINATION_GRACE_PERIOD_ANNOTATION], "30");
        assert_eq!(a[TERMINATION_MESSAGE_PATH_ANNOTATION], "/dev/termination-log");
        assert_eq!(a[PORTS_ANNOTATION], r#"[{"containerPort":80}]"#);
        assert_eq!(a[PRE_STOP_HANDLER_ANNOTATION], r#"{"exec":{"command":["true"]}}"#);
        assert_eq!(log_path(c, 3), "c/3.log");
        let mut other = c.clone();
        other.image = Some("busybox:1.37".into());
        assert_ne!(hash(c), hash(&other), "a new image is a new container");
        other.args = None;
        other.image = c.image.clone();
        assert_eq!(hash(c), hash(&other), "args are not part of the hash");
    }
}
