//! The scheduler inside `ironkube up`, against simulated nodes: pods a ReplicaSet creates
//! are bound across the nodes, reported Running by the nodes and announced with upstream's
//! `Scheduled` events; a pod that fits nowhere gets upstream's `FailedScheduling` message
//! and `PodScheduled=False`; a pod naming another scheduler is left alone.

mod support;

use serde_json::Value;
use support::{Ironkube, eventually};

const KUBECTL: &str = "1.33";

fn json(cluster: &Ironkube, args: &[&str]) -> Result<Value, String> {
    cluster.kubectl_json(KUBECTL, args)
}

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

fn condition<'a>(pod: &'a Value, type_: &str) -> Option<&'a Value> {
    pod["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_)
}

fn apply(cluster: &Ironkube, name: &str, manifest: &str) {
    let path = cluster.data_dir.with_file_name(format!("{name}.yaml"));
    std::fs::write(&path, manifest).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    cluster.kubectl_ok(KUBECTL, &["apply", "-f", &path.display().to_string()]);
}

#[test]
fn replica_set_pods_are_spread_over_simulated_nodes_and_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = Ironkube::up_with(&tmp.path().join("data"), &["--simulated-nodes", "3"]);
    cluster.kubectl_ok(KUBECTL, &["create", "namespace", "web"]);
    apply(
        &cluster,
        "web",
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: web, namespace: web}\nspec:\n  replicas: 5\n  \
         selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      \
         containers: [{name: c, image: 'busybox:1.36', resources: {requests: {cpu: 100m}}}]\n",
    );

    let pods = eventually("5 pods Running on simulated nodes", || {
        let pods = items(&json(&cluster, &["get", "pods", "-n", "web"])?);
        let running = pods.iter().filter(|p| p["status"]["phase"] == "Running").count();
        if pods.len() == 5 && running == 5 {
            Ok(pods)
        } else {
            Err(format!("{} pods, {running} Running", pods.len()))
        }
    });
    let mut per_node = std::collections::BTreeMap::<String, usize>::new();
    for pod in &pods {
        let node = pod["spec"]["nodeName"].as_str().unwrap_or("").to_string();
        assert!(node.starts_with("sim-node-"), "pod bound to {node:?}: {pod}");
        *per_node.entry(node).or_default() += 1;
        let scheduled = condition(pod, "PodScheduled").unwrap_or_else(|| panic!("no PodScheduled condition: {pod}"));
        assert_eq!(scheduled["status"], "True", "{pod}");
    }
    // Empty identical nodes: least-allocated scoring and the default topology spread put
    // 2, 2 and 1 pods on them, as upstream's default profile does.
    let mut counts: Vec<usize> = per_node.values().copied().collect();
    counts.sort();
    assert_eq!(counts, [1, 2, 2], "pods per node: {per_node:?}");

    // The scheduler reports each binding as an events.k8s.io Event; kubectl reads them back
    // through the core API.
    let events = eventually("5 Scheduled events", || {
        let events = items(&json(&cluster, &["get", "events", "-n", "web", "--field-selector", "reason=Scheduled"])?);
        if events.len() == 5 { Ok(events) } else { Err(format!("{} Scheduled events", events.len())) }
    });
    for event in &events {
        let pod = event["involvedObject"]["name"].as_str().unwrap_or("");
        let node = pods
            .iter()
            .find(|p| p["metadata"]["name"] == pod)
            .and_then(|p| p["spec"]["nodeName"].as_str())
            .unwrap_or_else(|| panic!("Scheduled event for an unknown pod: {event}"));
        assert_eq!(event["message"], format!("Successfully assigned web/{pod} to {node}"), "{event}");
        assert_eq!(event["reportingComponent"], "default-scheduler", "{event}");
        assert_eq!(event["type"], "Normal", "{event}");
    }
}

#[test]
fn unschedulable_pods_get_upstreams_reason_and_other_schedulers_pods_are_left_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = Ironkube::up_with(&tmp.path().join("data"), &["--simulated-nodes", "3"]);
    apply(
        &cluster,
        "pods",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: nowhere, namespace: default}\nspec:\n  \
         nodeSelector: {disk: ssd}\n  containers: [{name: c, image: 'busybox:1.36'}]\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata: {name: elsewhere, namespace: default}\nspec:\n  \
         schedulerName: other-scheduler\n  containers: [{name: c, image: 'busybox:1.36'}]\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata: {name: fits, namespace: default}\nspec:\n  \
         containers: [{name: c, image: 'busybox:1.36'}]\n",
    );
    let expected = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. \
                    preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.";
    eventually("PodScheduled=False on the pod that fits nowhere", || {
        let pod = json(&cluster, &["get", "pod", "nowhere"])?;
        match condition(&pod, "PodScheduled") {
            Some(c) if c["status"] == "False" && c["reason"] == "Unschedulable" && c["message"] == expected => Ok(()),
            other => Err(format!("condition {other:?}")),
        }
    });
    eventually("a FailedScheduling event", || {
        let events = items(&json(&cluster, &["get", "events", "--field-selector", "reason=FailedScheduling,involvedObject.name=nowhere"])?);
        match events.first() {
            Some(e) if e["message"] == expected && e["type"] == "Warning" => Ok(()),
            other => Err(format!("events {other:?}")),
        }
    });
    eventually("the pod that fits is Running", || {
        let pod = json(&cluster, &["get", "pod", "fits"])?;
        if pod["status"]["phase"] == "Running" { Ok(()) } else { Err(format!("phase {}", pod["status"]["phase"])) }
    });
    // By now the scheduler has seen all three pods; the other scheduler's is untouched.
    let pod = json(&cluster, &["get", "pod", "elsewhere"]).unwrap_or_else(|e| panic!("{e}"));
    assert!(pod["spec"]["nodeName"].is_null(), "bound by the wrong scheduler: {pod}");
    assert!(condition(&pod, "PodScheduled").is_none(), "touched by the wrong scheduler: {pod}");
}
