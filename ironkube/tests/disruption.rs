//! PodDisruptionBudgets inside `ironkube up`, on simulated nodes: the disruption
//! controller's status (a Deployment of 3 under `minAvailable: 2` is 3 healthy, 2
//! desired, 1 allowed; `maxUnavailable` percentages follow the Deployment's replicas) and
//! the eviction subresource (one eviction passes, the next is refused with upstream's 429
//! body; an evicted pod carries the DisruptionTarget condition).

mod support;

use serde_json::{Value, json};
use support::{Ironkube, describe, eventually};

const KUBECTL: &str = "1.33";
const NS: &str = "pdb";

fn json(cluster: &Ironkube, args: &[&str]) -> Result<Value, String> {
    cluster.kubectl_json(KUBECTL, args)
}

/// (currentHealthy, desiredHealthy, disruptionsAllowed, expectedPods) once the budget has
/// observed its generation, with its DisruptionAllowed condition (status, reason).
fn budget_status(cluster: &Ironkube, name: &str) -> Result<((i64, i64, i64, i64), (String, String)), String> {
    let pdb = json(cluster, &["get", "pdb", name, "-n", NS])?;
    let s = &pdb["status"];
    if s["observedGeneration"] != pdb["metadata"]["generation"] {
        return Err(format!("generation not observed yet: {pdb}"));
    }
    let n = |f: &str| s[f].as_i64().unwrap_or(-1);
    let c = s["conditions"].as_array().and_then(|cs| cs.iter().find(|c| c["type"] == "DisruptionAllowed")).cloned().unwrap_or(Value::Null);
    let condition = (c["status"].as_str().unwrap_or("").to_string(), c["reason"].as_str().unwrap_or("").to_string());
    Ok(((n("currentHealthy"), n("desiredHealthy"), n("disruptionsAllowed"), n("expectedPods")), condition))
}

fn wait_for_budget(cluster: &Ironkube, name: &str, counts: (i64, i64, i64, i64), condition: (&str, &str)) {
    eventually(&format!("budget {name} at {counts:?} {condition:?}"), || {
        let (got, c) = budget_status(cluster, name)?;
        if got == counts && (c.0.as_str(), c.1.as_str()) == condition { Ok(()) } else { Err(format!("{got:?} {c:?}")) }
    });
}

fn running_pods(cluster: &Ironkube, selector: &str) -> Vec<String> {
    let list = json(cluster, &["get", "pods", "-n", NS, "-l", selector]).expect("pods");
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"].get("deletionTimestamp").is_none())
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

/// POSTs an Eviction for `pod`; returns whether it passed and the response body (read
/// from kubectl's `-v=8` log when the server refused it).
fn evict(cluster: &Ironkube, dir: &std::path::Path, pod: &str) -> (bool, Value) {
    let body = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": NS}});
    let file = dir.join(format!("eviction-{pod}.json"));
    std::fs::write(&file, body.to_string()).expect("writing the eviction");
    let path = format!("/api/v1/namespaces/{NS}/pods/{pod}/eviction");
    let file_arg = file.display().to_string();
    let out = cluster.kubectl(KUBECTL, &["create", "--raw", &path, "-f", &file_arg, "-v=8"]);
    if out.status.success() {
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        return (true, serde_json::from_str(stdout.trim()).unwrap_or(Value::String(stdout)));
    }
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let response = logged_body(&stderr).unwrap_or_else(|| panic!("no response body in {}", describe(&out)));
    (false, response)
}

/// The last response body client-go logged at `-v=8`: `"Response Body" body="<quoted>"`,
/// or klog's multi-line form `body=<` ... ` >`.
fn logged_body(stderr: &str) -> Option<Value> {
    let mut found = None;
    let mut lines = stderr.lines();
    while let Some(line) = lines.next() {
        let Some((_, rest)) = line.split_once("\"Response Body\" body=") else { continue };
        let text = if rest.starts_with('<') {
            lines.by_ref().take_while(|l| l.trim() != ">").map(str::trim).collect::<Vec<_>>().join("")
        } else {
            serde_json::from_str::<String>(rest.trim()).ok()?
        };
        found = serde_json::from_str::<Value>(text.trim()).ok().or(found);
    }
    found
}

#[test]
fn budgets_status_and_evictions() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = Ironkube::up_with(&tmp.path().join("data"), &["--simulated-nodes", "2"]);
    cluster.kubectl_ok(KUBECTL, &["create", "namespace", NS]);
    cluster.kubectl_ok(KUBECTL, &["create", "deployment", "web", "-n", NS, "--image=busybox:1.36", "--replicas=3"]);
    cluster.kubectl_ok(KUBECTL, &["create", "deployment", "api", "-n", NS, "--image=busybox:1.36", "--replicas=4"]);
    cluster.kubectl_ok(KUBECTL, &["create", "poddisruptionbudget", "web", "-n", NS, "--selector=app=web", "--min-available=2"]);
    cluster.kubectl_ok(KUBECTL, &["create", "poddisruptionbudget", "api", "-n", NS, "--selector=app=api", "--max-unavailable=30%"]);

    // minAvailable 2 of 3 ready pods: one disruption allowed.
    wait_for_budget(&cluster, "web", (3, 2, 1, 3), ("True", "SufficientPods"));
    // maxUnavailable 30% of the Deployment's 4 replicas rounds up to 2: 2 desired.
    wait_for_budget(&cluster, "api", (4, 2, 2, 4), ("True", "SufficientPods"));
    // The expected count follows the Deployment's replicas: 30% of 5 is 2, 3 desired.
    cluster.kubectl_ok(KUBECTL, &["scale", "deployment", "api", "-n", NS, "--replicas=5"]);
    wait_for_budget(&cluster, "api", (5, 3, 2, 5), ("True", "SufficientPods"));

    // No replacement may become ready from here on: evictions are judged on 3 pods.
    for node in json(&cluster, &["get", "nodes"]).expect("nodes")["items"].as_array().into_iter().flatten() {
        let name = node["metadata"]["name"].as_str().expect("node name");
        cluster.kubectl_ok(KUBECTL, &["cordon", name]);
    }
    let pods = running_pods(&cluster, "app=web");
    assert_eq!(pods.len(), 3, "{pods:?}");

    let (passed, body) = evict(&cluster, tmp.path(), &pods[0]);
    assert!(passed, "first eviction refused: {body}");
    assert_eq!(body, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}));
    // The eviction took the budget's one disruption at once and recorded the pod.
    let pdb = json(&cluster, &["get", "pdb", "web", "-n", NS]).expect("pdb");
    assert_eq!(pdb["status"]["disruptionsAllowed"], 0, "{pdb}");

    // The controller sees the pod go: 2 healthy, none allowed.
    wait_for_budget(&cluster, "web", (2, 2, 0, 3), ("False", "InsufficientPods"));
    let (passed, body) = evict(&cluster, tmp.path(), &pods[1]);
    assert!(!passed, "second eviction passed: {body}");
    assert_eq!(
        body,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Cannot evict pod as it would violate the pod's disruption budget.",
            "reason": "TooManyRequests",
            "details": {"causes": [{"reason": "DisruptionBudget", "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}]},
            "code": 429,
        })
    );
    assert!(running_pods(&cluster, "app=web").contains(&pods[1]));

    // A pod no budget covers, held by a finalizer so that it can be looked at after its
    // eviction: it carries the DisruptionTarget condition.
    let held = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "held", "namespace": NS, "finalizers": ["ironkube.dev/test-hold"]},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
    });
    let file = tmp.path().join("held.json");
    std::fs::write(&file, held.to_string()).expect("writing the pod");
    cluster.kubectl_ok(KUBECTL, &["create", "-f", &file.display().to_string()]);
    let (passed, body) = evict(&cluster, tmp.path(), "held");
    assert!(passed, "eviction of an uncovered pod refused: {body}");
    let pod = json(&cluster, &["get", "pod", "held", "-n", NS]).expect("held pod");
    assert!(pod["metadata"].get("deletionTimestamp").is_some(), "{pod}");
    let c = pod["status"]["conditions"].as_array().and_then(|cs| cs.iter().find(|c| c["type"] == "DisruptionTarget")).cloned().unwrap_or(Value::Null);
    assert_eq!((c["status"].as_str(), c["reason"].as_str(), c["message"].as_str()), (Some("True"), Some("EvictionByEvictionAPI"), Some("Eviction API: evicting")), "{pod}");
    cluster.kubectl_ok(KUBECTL, &["patch", "pod", "held", "-n", NS, "--type=json", "-p", r#"[{"op":"remove","path":"/metadata/finalizers"}]"#]);
}
