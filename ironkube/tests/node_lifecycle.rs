//! The node lifecycle and taint eviction controllers. The cluster (`ironkube up` with two
//! simulated nodes) runs every controller but the node lifecycle one, which runs in a
//! standalone `ironkube controller-manager` with short grace periods:
//! - a Node that posted Ready once and then nothing goes Unknown ("Kubelet stopped posting
//!   node status.") with the unreachable NoExecute and NoSchedule taints; a Node that never
//!   posted goes Unknown with NodeStatusNeverUpdated;
//! - of the pods bound to the silent node, the one tolerating unreachable for 6 s is deleted
//!   no sooner than 6 s after the taint, with the DisruptionTarget condition; the one with
//!   the default 300 s toleration stays;
//! - on a simulated node, a NoExecute taint added with kubectl deletes the pod that does not
//!   tolerate it at once ("Marking for deletion"); removing a taint cancels the deletion
//!   scheduled for a pod tolerating it for a while ("Cancelling deletion");
//! - the simulated nodes stay Ready and untainted by the controller all along.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;
use support::{Ironkube, command_with_parent_death_signal, eventually};

const KUBECTL: &str = "1.33";
const NS: &str = "default";
const FINALIZER: &str = "ironkube.dev/test-keep";
const MONITOR_GRACE: Duration = Duration::from_secs(20);

/// The standalone node lifecycle controller; killed on drop (showing its log if the test
/// failed).
struct NodeLifecycle(Child, PathBuf);

impl NodeLifecycle {
    fn start(kubeconfig: &Path, log: &Path) -> Self {
        let file = std::fs::File::create(log).expect("creating the controller manager's log");
        let child = command_with_parent_death_signal(&support::ironkube_binary())
            .arg("controller-manager")
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg("--controllers=node-lifecycle-controller")
            .arg("--leader-elect=false")
            .arg("--node-monitor-period=1s")
            .arg(format!("--node-monitor-grace-period={}s", MONITOR_GRACE.as_secs()))
            .arg("--node-startup-grace-period=8s")
            // One node a second rather than one every 10 s, for two silent nodes in one zone.
            .arg("--node-eviction-rate=1")
            .env("RUST_LOG", "info,ironkube_controllers=debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawning ironkube controller-manager");
        NodeLifecycle(child, log.to_path_buf())
    }
}

impl Drop for NodeLifecycle {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.1).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("node lifecycle controller log (last lines):\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
    }
}

fn apply(cluster: &Ironkube, dir: &Path, name: &str, json: &Value) {
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, json.to_string()).expect("manifest");
    cluster.kubectl_ok(KUBECTL, &["apply", "-f", path.to_str().expect("path")]);
}

fn node(cluster: &Ironkube, name: &str) -> Result<Value, String> {
    cluster.kubectl_json(KUBECTL, &["get", "node", name])
}

fn condition(obj: &Value, type_: &str) -> Option<Value> {
    obj["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_).cloned()
}

fn taint<'a>(node: &'a Value, key: &str, effect: &str) -> Option<&'a Value> {
    node["spec"]["taints"].as_array()?.iter().find(|t| t["key"] == key && t["effect"] == effect)
}

fn pod(cluster: &Ironkube, name: &str) -> Result<Value, String> {
    cluster.kubectl_json(KUBECTL, &["get", "pod", name, "-n", NS])
}

fn gone(cluster: &Ironkube, name: &str) -> bool {
    let out = cluster.kubectl(KUBECTL, &["get", "pod", name, "-n", NS, "--ignore-not-found", "-o", "name"]);
    out.status.success() && String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

fn pod_manifest(name: &str, node: &str, tolerations: Value, keep: bool) -> Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "finalizers": if keep { vec![FINALIZER] } else { vec![] }},
        "spec": {"nodeName": node, "tolerations": tolerations, "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}]},
    })
}

fn events_for(cluster: &Ironkube, pod: &str) -> Result<Vec<String>, String> {
    let list = cluster.kubectl_json(KUBECTL, &["get", "events", "-n", NS, "--field-selector", &format!("involvedObject.name={pod}")])?;
    Ok(list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["source"]["component"] == "taint-eviction-controller" && e["reason"] == "TaintManagerEviction")
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect())
}

fn timestamp(v: &Value) -> Timestamp {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not a timestamp: {v}"))
}

#[test]
fn silent_nodes_go_unknown_and_tainted_pods_are_evicted_on_time() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = Ironkube::up_with(&tmp.path().join("data"), &["--simulated-nodes", "2", "--controllers=*,-node-lifecycle-controller"]);
    let log = tmp.path().join("node-lifecycle.log");
    let _controller = NodeLifecycle::start(&cluster.kubeconfig, &log);
    let dir = tmp.path();

    eventually("the simulated nodes are Ready", || {
        for name in ["sim-node-0", "sim-node-1"] {
            let n = node(&cluster, name)?;
            if condition(&n, "Ready").is_none_or(|c| c["status"] != "True") {
                return Err(format!("{name}: {n}"));
            }
        }
        Ok(())
    });

    // A node that posts Ready once, and one that never posts.
    for name in ["silent-0", "silent-1"] {
        apply(&cluster, dir, name, &serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/os": "linux"}}}));
    }
    let now = Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let status = serde_json::json!({"status": {"conditions": [
        {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now},
    ]}});
    cluster.kubectl_ok(KUBECTL, &["patch", "node", "silent-0", "--subresource=status", "--type=merge", "-p", &status.to_string()]);
    let posted = Instant::now();

    let unreachable = serde_json::json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 6}]);
    apply(&cluster, dir, "short", &pod_manifest("short", "silent-0", unreachable, true));
    apply(&cluster, dir, "patient", &pod_manifest("patient", "silent-0", serde_json::json!([]), true));

    // The never-posted node goes Unknown after the startup grace period.
    let silent1 = eventually("silent-1 goes Unknown", || {
        let n = node(&cluster, "silent-1")?;
        match condition(&n, "Ready") {
            Some(c) if c["status"] == "Unknown" && taint(&n, "node.kubernetes.io/unreachable", "NoExecute").is_some() => Ok(n),
            _ => Err(n.to_string()),
        }
    });
    let ready = condition(&silent1, "Ready").expect("Ready");
    assert_eq!(ready["reason"], "NodeStatusNeverUpdated");
    assert_eq!(ready["message"], "Kubelet never posted node status.");
    assert_eq!(silent1["metadata"]["labels"]["beta.kubernetes.io/os"], "linux", "beta labels follow the stable ones");

    // The node that went silent goes Unknown after the monitor grace period, not before.
    let silent0 = eventually("silent-0 goes Unknown", || {
        let n = node(&cluster, "silent-0")?;
        let ready = condition(&n, "Ready").ok_or_else(|| n.to_string())?;
        let tainted = taint(&n, "node.kubernetes.io/unreachable", "NoExecute").is_some() && taint(&n, "node.kubernetes.io/unreachable", "NoSchedule").is_some();
        if ready["status"] == "Unknown" && tainted { Ok(n) } else { Err(n.to_string()) }
    });
    assert!(posted.elapsed() >= MONITOR_GRACE, "Unknown after {:?}, before the grace period", posted.elapsed());
    let ready = condition(&silent0, "Ready").expect("Ready");
    assert_eq!(ready["reason"], "NodeStatusUnknown");
    assert_eq!(ready["message"], "Kubelet stopped posting node status.");
    assert_eq!(condition(&silent0, "MemoryPressure").expect("MemoryPressure")["reason"], "NodeStatusNeverUpdated");
    let tainted_at = timestamp(&taint(&silent0, "node.kubernetes.io/unreachable", "NoExecute").expect("taint")["timeAdded"]);

    // The pod tolerating unreachable for 6 s is deleted after them, with DisruptionTarget.
    let short = eventually("the 6 s pod is deleted", || {
        let p = pod(&cluster, "short")?;
        if p["metadata"]["deletionTimestamp"].is_string() { Ok(p) } else { Err(p.to_string()) }
    });
    let deleted_at = timestamp(&short["metadata"]["deletionTimestamp"]);
    let waited = deleted_at.duration_since(tainted_at).as_secs_f64();
    // deletionTimestamp is the deletion plus the 1 s grace period; times are whole seconds.
    assert!(waited >= 6.0, "deleted {waited} s after the taint");
    let disruption = condition(&short, "DisruptionTarget").unwrap_or_else(|| panic!("no DisruptionTarget: {short}"));
    assert_eq!(disruption["status"], "True");
    assert_eq!(disruption["reason"], "DeletionByTaintManager");
    assert_eq!(disruption["message"], "Taint manager: deleting due to NoExecute taint");
    eventually("the eviction event", || {
        let events = events_for(&cluster, "short")?;
        events.contains(&format!("Marking for deletion Pod {NS}/short")).then_some(()).ok_or(format!("{events:?}"))
    });
    let patient = pod(&cluster, "patient").expect("patient");
    assert!(patient["metadata"]["deletionTimestamp"].is_null(), "the pod tolerating 300 s stays: {patient}");
    let node_events = cluster.kubectl_json(KUBECTL, &["get", "events", "-n", "default", "--field-selector", "involvedObject.name=silent-0"]).expect("events");
    let messages: Vec<&str> = node_events["items"].as_array().into_iter().flatten().filter_map(|e| e["message"].as_str()).collect();
    assert!(messages.contains(&"Node silent-0 event: Registered Node silent-0 in Controller"), "{messages:?}");
    assert!(messages.contains(&"Node silent-0 status is now: NodeNotReady"), "{messages:?}");

    // A NoExecute taint added with kubectl: the untolerating pod goes at once.
    apply(&cluster, dir, "untolerating", &pod_manifest("untolerating", "sim-node-0", serde_json::json!([]), false));
    let tolerating = serde_json::json!([{"key": "example.com/evict", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 8}]);
    apply(&cluster, dir, "cancelled", &pod_manifest("cancelled", "sim-node-1", tolerating, false));
    eventually("both pods run", || {
        for name in ["untolerating", "cancelled"] {
            let p = pod(&cluster, name)?;
            if p["status"]["phase"] != "Running" {
                return Err(p.to_string());
            }
        }
        Ok(())
    });
    cluster.kubectl_ok(KUBECTL, &["taint", "node", "sim-node-0", "example.com/evict=now:NoExecute"]);
    cluster.kubectl_ok(KUBECTL, &["taint", "node", "sim-node-1", "example.com/evict=now:NoExecute"]);
    eventually("the untolerating pod is gone", || if gone(&cluster, "untolerating") { Ok(()) } else { Err("still there".into()) });
    // Removing the taint before the 8 s are up cancels the deletion.
    cluster.kubectl_ok(KUBECTL, &["taint", "node", "sim-node-1", "example.com/evict=now:NoExecute-"]);
    let removed = Instant::now();
    eventually("the cancelling event", || {
        let events = events_for(&cluster, "cancelled")?;
        events.contains(&format!("Cancelling deletion of Pod {NS}/cancelled")).then_some(()).ok_or(format!("{events:?}"))
    });
    std::thread::sleep(Duration::from_secs(10).saturating_sub(removed.elapsed()));
    let cancelled = pod(&cluster, "cancelled").expect("the cancelled pod stays");
    assert!(cancelled["metadata"]["deletionTimestamp"].is_null(), "{cancelled}");
    cluster.kubectl_ok(KUBECTL, &["taint", "node", "sim-node-0", "example.com/evict=now:NoExecute-"]);

    // The simulated nodes kept posting: Ready, and no taint of the controller's.
    for name in ["sim-node-0", "sim-node-1"] {
        let n = node(&cluster, name).expect("node");
        assert_eq!(condition(&n, "Ready").expect("Ready")["status"], "True", "{n}");
        assert!(n["spec"]["taints"].as_array().is_none_or(Vec::is_empty), "{name} tainted: {n}");
    }

    // Let the kept pods go.
    for name in ["short", "patient"] {
        cluster.kubectl_ok(KUBECTL, &["patch", "pod", name, "-n", NS, "--type=json", "-p", r#"[{"op":"remove","path":"/metadata/finalizers"}]"#]);
    }
}
