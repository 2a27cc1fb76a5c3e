//! The DaemonSet controller inside `ironkube up`, on simulated nodes: one pod per node,
//! bound there by the scheduler through the node affinity the controller writes; a new
//! image rolls out node by node to a second ControllerRevision (`kubectl rollout status`
//! and `rollout history` read them); a NoExecute taint the pods do not tolerate takes the
//! node's pod away; deleting the DaemonSet removes its pods.

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::{Ironkube, eventually};

const KUBECTL: &str = "1.33";

const MANIFEST: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
  namespace: ds
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
      - name: agent
        image: busybox:1.36
        command: [sleep, "3600"]
"#;

fn pods(cluster: &Ironkube) -> Result<Vec<Value>, String> {
    let list = cluster.kubectl_json(KUBECTL, &["get", "pods", "-n", "ds", "-l", "app=agent"])?;
    Ok(list["items"].as_array().cloned().unwrap_or_default().into_iter().filter(|p| p["metadata"]["deletionTimestamp"].is_null()).collect())
}

/// Waits for `n` ready daemon pods, one on each of `n` nodes, all of revision `hash` (or any).
fn settled(cluster: &Ironkube, n: usize, hash: Option<&str>) -> Vec<Value> {
    eventually(&format!("{n} ready daemon pods on {n} nodes"), || {
        let ds = cluster.kubectl_json(KUBECTL, &["get", "daemonset", "agent", "-n", "ds"])?;
        let s = &ds["status"];
        let want = n as i64;
        if s["desiredNumberScheduled"].as_i64() != Some(want) || s["numberReady"].as_i64() != Some(want) || s["updatedNumberScheduled"].as_i64() != Some(want) || s["observedGeneration"] != ds["metadata"]["generation"] {
            return Err(format!("status {s}"));
        }
        let pods = pods(cluster)?;
        let nodes: BTreeSet<&str> = pods.iter().filter_map(|p| p["spec"]["nodeName"].as_str()).collect();
        if pods.len() != n || nodes.len() != n {
            return Err(format!("{} pods on nodes {nodes:?}", pods.len()));
        }
        if let Some(h) = hash
            && !pods.iter().all(|p| p["metadata"]["labels"]["controller-revision-hash"] == h)
        {
            return Err("old pods remain".into());
        }
        Ok(pods)
    })
}

#[test]
fn one_pod_per_node_rolling_update_taints_and_deletion() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = Ironkube::up_with(&tmp.path().join("data"), &["--simulated-nodes", "3"]);
    cluster.kubectl_ok(KUBECTL, &["create", "namespace", "ds"]);
    let manifest = tmp.path().join("ds.yaml");
    std::fs::write(&manifest, MANIFEST).expect("manifest");
    cluster.kubectl_ok(KUBECTL, &["apply", "-f", manifest.to_str().expect("path")]);

    let first = settled(&cluster, 3, None);
    let hash = first[0]["metadata"]["labels"]["controller-revision-hash"].as_str().expect("hash label").to_string();
    for pod in &first {
        assert_eq!(pod["metadata"]["generateName"], "agent-");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "DaemonSet");
        assert_eq!(pod["metadata"]["labels"]["pod-template-generation"], "1");
        let term = &pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchFields"][0];
        assert_eq!(term["values"][0], pod["spec"]["nodeName"], "{pod}");
        let tolerations = pod["spec"]["tolerations"].as_array().map(Vec::len).unwrap_or(0);
        assert!(tolerations >= 6, "{pod}");
    }
    let revisions = cluster.kubectl_json(KUBECTL, &["get", "controllerrevisions", "-n", "ds"]).expect("revisions");
    let names: Vec<&str> = revisions["items"].as_array().into_iter().flatten().filter_map(|r| r["metadata"]["name"].as_str()).collect();
    assert_eq!(names, [format!("agent-{hash}")]);

    // A new image: every node gets a pod of the second revision.
    cluster.kubectl_ok(KUBECTL, &["set", "image", "daemonset/agent", "-n", "ds", "agent=busybox:1.37"]);
    let status = cluster.kubectl_ok(KUBECTL, &["rollout", "status", "daemonset/agent", "-n", "ds", "--timeout=120s"]);
    assert!(status.contains("daemon set \"agent\" successfully rolled out"), "{status}");
    let second = settled(&cluster, 3, None);
    let new_hash = second[0]["metadata"]["labels"]["controller-revision-hash"].as_str().expect("hash").to_string();
    assert_ne!(new_hash, hash);
    let second = settled(&cluster, 3, Some(&new_hash));
    assert!(second.iter().all(|p| p["spec"]["containers"][0]["image"] == "busybox:1.37"));
    let history = cluster.kubectl_ok(KUBECTL, &["rollout", "history", "daemonset/agent", "-n", "ds"]);
    assert!(history.contains("\n1 ") && history.contains("\n2 "), "{history}");

    // A taint the daemon pods do not tolerate: that node's pod goes.
    let node = second[0]["spec"]["nodeName"].as_str().expect("node").to_string();
    cluster.kubectl_ok(KUBECTL, &["taint", "node", &node, "dedicated=db:NoExecute"]);
    eventually("the tainted node's daemon pod to go", || {
        let ds = cluster.kubectl_json(KUBECTL, &["get", "daemonset", "agent", "-n", "ds"])?;
        let pods = pods(&cluster)?;
        let on_node = pods.iter().any(|p| p["spec"]["nodeName"] == node.as_str());
        if ds["status"]["desiredNumberScheduled"].as_i64() == Some(2) && !on_node && pods.len() == 2 { Ok(()) } else { Err(format!("{} pods, status {}", pods.len(), ds["status"])) }
    });

    cluster.kubectl_ok(KUBECTL, &["delete", "daemonset", "agent", "-n", "ds"]);
    eventually("the daemon pods to be deleted", || {
        let n = pods(&cluster)?.len();
        if n == 0 { Ok(()) } else { Err(format!("{n} pods left")) }
    });
}
