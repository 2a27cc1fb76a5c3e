//! The ReplicationController controller inside `ironkube up`, on simulated nodes: an RC
//! (its selector defaulted from the template) comes up to 3 ready replicas owned through
//! v1 controllerRefs; `kubectl scale rc`, a patch and a PUT of the scale subresource resize
//! it; a matching orphan is adopted instead of duplicated; a pod whose labels stop matching
//! is released and replaced; a quota that refuses pods shows as the ReplicaFailure condition
//! until the RC is scaled to fit; Events come from `replication-controller`; and deleting
//! an RC takes its pods in the background, or leaves them ownerless with
//! `--cascade=orphan`.

mod support;

use std::path::Path;

use serde_json::Value;
use support::{Ironkube, eventually};

const KUBECTL: &str = "1.33";

fn json(cluster: &Ironkube, args: &[&str]) -> Result<Value, String> {
    cluster.kubectl_json(KUBECTL, args)
}

fn apply(cluster: &Ironkube, path: &Path, manifest: &str) {
    std::fs::write(path, manifest).expect("writing the manifest");
    cluster.kubectl_ok(KUBECTL, &["apply", "-f", &path.display().to_string()]);
}

fn rc_manifest(ns: &str, name: &str, replicas: u32, app: &str) -> String {
    // No selector: the API server defaults it to the template's labels.
    format!(
        r#"{{"apiVersion": "v1", "kind": "ReplicationController",
  "metadata": {{"name": "{name}", "namespace": "{ns}"}},
  "spec": {{"replicas": {replicas},
    "template": {{"metadata": {{"labels": {{"app": "{app}"}}}},
      "spec": {{"terminationGracePeriodSeconds": 0, "containers": [{{"name": "c", "image": "busybox:1.36",
        "resources": {{"requests": {{"cpu": "10m"}}}}}}]}}}}}}}}"#
    )
}

/// The live (not terminating) pods with `selector`.
fn live_pods(cluster: &Ironkube, ns: &str, selector: &str) -> Result<Vec<Value>, String> {
    let list = json(cluster, &["get", "pods", "-n", ns, "-l", selector])?;
    Ok(list["items"].as_array().cloned().unwrap_or_default().into_iter().filter(|p| p["metadata"].get("deletionTimestamp").is_none()).collect())
}

fn controller_uid(pod: &Value) -> Option<&str> {
    pod["metadata"]["ownerReferences"].as_array()?.iter().find(|r| r["controller"] == true)?["uid"].as_str()
}

/// Waits until the RC's status reports `replicas` replicas, all ready and available, for
/// its current generation; returns the RC.
fn settled(cluster: &Ironkube, ns: &str, name: &str, replicas: i64) -> Value {
    eventually(&format!("rc {name} with {replicas} ready replicas"), || {
        let rc = json(cluster, &["get", "rc", name, "-n", ns])?;
        let s = &rc["status"];
        let want = Some(replicas).filter(|n| *n > 0);
        let ok = s["replicas"].as_i64() == Some(replicas)
            && s["fullyLabeledReplicas"].as_i64() == want
            && s["readyReplicas"].as_i64() == want
            && s["availableReplicas"].as_i64() == want
            && s["observedGeneration"] == rc["metadata"]["generation"];
        if ok { Ok(rc) } else { Err(format!("status {s}")) }
    })
}

fn failure_condition(rc: &Value) -> Option<Value> {
    rc["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == "ReplicaFailure").cloned()
}

#[test]
fn replication_controllers_scale_adopt_release_fail_and_delete() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = Ironkube::up_with(&tmp.path().join("data"), &["--simulated-nodes", "2"]);
    cluster.kubectl_ok(KUBECTL, &["create", "namespace", "rc"]);

    // Up to 3, owned through v1 controllerRefs.
    apply(&cluster, &tmp.path().join("web.json"), &rc_manifest("rc", "web", 3, "web"));
    let rc = settled(&cluster, "rc", "web", 3);
    assert_eq!(rc["spec"]["selector"]["app"], "web", "{rc}");
    let web_uid = rc["metadata"]["uid"].as_str().expect("uid").to_string();
    let pods = live_pods(&cluster, "rc", "app=web").expect("pods");
    assert_eq!(pods.len(), 3);
    for pod in &pods {
        let owner = &pod["metadata"]["ownerReferences"][0];
        assert_eq!((owner["apiVersion"].as_str(), owner["kind"].as_str(), owner["name"].as_str()), (Some("v1"), Some("ReplicationController"), Some("web")), "{pod}");
        assert_eq!((owner["uid"].as_str(), &owner["controller"], &owner["blockOwnerDeletion"]), (Some(web_uid.as_str()), &Value::Bool(true), &Value::Bool(true)));
        assert!(pod["metadata"]["generateName"].as_str().is_some_and(|n| n == "web-"), "{pod}");
    }

    // The scale subresource: `kubectl scale`; a strategic merge patch with the payload the
    // lifecycle conformance test sends (a marshalled Scale); an unconditional PUT.
    cluster.kubectl_ok(KUBECTL, &["scale", "rc", "web", "-n", "rc", "--replicas=4"]);
    settled(&cluster, "rc", "web", 4);
    let payload = r#"{"metadata":{"creationTimestamp":null},"spec":{"replicas":5},"status":{"replicas":0}}"#;
    cluster.kubectl_ok(KUBECTL, &["patch", "rc", "web", "-n", "rc", "--subresource=scale", "--type=strategic", "-p", payload]);
    settled(&cluster, "rc", "web", 5);
    let put = tmp.path().join("scale.json");
    std::fs::write(&put, r#"{"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "web", "namespace": "rc"}, "spec": {"replicas": 2}}"#).expect("writing the scale");
    cluster.kubectl_ok(KUBECTL, &["replace", "--raw", "/api/v1/namespaces/rc/replicationcontrollers/web/scale", "-f", &put.display().to_string()]);
    settled(&cluster, "rc", "web", 2);
    eventually("2 live pods of web", || match live_pods(&cluster, "rc", "app=web")?.len() {
        2 => Ok(()),
        n => Err(format!("{n} pods")),
    });
    let scale: Value = serde_json::from_str(&cluster.kubectl_ok(KUBECTL, &["get", "--raw", "/api/v1/namespaces/rc/replicationcontrollers/web/scale"])).expect("scale JSON");
    assert_eq!((scale["kind"].as_str(), &scale["spec"]["replicas"], &scale["status"]["replicas"], scale["status"]["selector"].as_str()), (Some("Scale"), &Value::from(2), &Value::from(2), Some("app=web")), "{scale}");

    // A matching orphan is adopted, not duplicated.
    apply(
        &cluster,
        &tmp.path().join("lonely.json"),
        r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lonely", "namespace": "rc", "labels": {"app": "adopt"}},
            "spec": {"terminationGracePeriodSeconds": 0, "containers": [{"name": "c", "image": "busybox:1.36"}]}}"#,
    );
    eventually("lonely running", || {
        let pod = json(&cluster, &["get", "pod", "lonely", "-n", "rc"])?;
        if pod["status"]["phase"] == "Running" { Ok(()) } else { Err(format!("{}", pod["status"])) }
    });
    apply(&cluster, &tmp.path().join("adopter.json"), &rc_manifest("rc", "adopter", 1, "adopt"));
    let adopter = settled(&cluster, "rc", "adopter", 1);
    let adopter_uid = adopter["metadata"]["uid"].as_str().expect("uid").to_string();
    let adopted = live_pods(&cluster, "rc", "app=adopt").expect("pods");
    assert_eq!(adopted.len(), 1, "{adopted:?}");
    assert_eq!((adopted[0]["metadata"]["name"].as_str(), controller_uid(&adopted[0])), (Some("lonely"), Some(adopter_uid.as_str())), "{adopted:?}");

    // A pod relabelled out of the selector is released and replaced.
    let pods = live_pods(&cluster, "rc", "app=web").expect("pods");
    let released = pods[0]["metadata"]["name"].as_str().expect("name").to_string();
    cluster.kubectl_ok(KUBECTL, &["label", "pod", &released, "-n", "rc", "app=gone", "--overwrite"]);
    eventually(&format!("{released} released"), || {
        let pod = json(&cluster, &["get", "pod", &released, "-n", "rc"])?;
        if controller_uid(&pod).is_none() { Ok(()) } else { Err(format!("{}", pod["metadata"]["ownerReferences"])) }
    });
    eventually("a replacement for the released pod", || {
        let pods = live_pods(&cluster, "rc", "app=web")?;
        let owned = pods.iter().filter(|p| controller_uid(p) == Some(web_uid.as_str())).count();
        if pods.len() == 2 && owned == 2 { Ok(()) } else { Err(format!("{} pods, {owned} owned by web", pods.len())) }
    });
    settled(&cluster, "rc", "web", 2);

    // Events come from replication-controller and name the RC.
    let events = eventually("SuccessfulCreate events about web", || {
        let list = json(&cluster, &["get", "events", "-n", "rc", "--field-selector", "involvedObject.name=web,reason=SuccessfulCreate"])?;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        if items.len() >= 3 { Ok(items) } else { Err(format!("{} events", items.len())) }
    });
    for e in &events {
        assert_eq!((e["involvedObject"]["kind"].as_str(), e["source"]["component"].as_str(), e["type"].as_str()), (Some("ReplicationController"), Some("replication-controller"), Some("Normal")), "{e}");
        assert!(e["message"].as_str().is_some_and(|m| m.starts_with("Created pod: web-")), "{e}");
    }

    // A quota that refuses the third pod: ReplicaFailure/FailedCreate, gone once it fits.
    cluster.kubectl_ok(KUBECTL, &["create", "namespace", "quota"]);
    cluster.kubectl_ok(KUBECTL, &["create", "quota", "pods", "-n", "quota", "--hard=pods=2"]);
    eventually("the quota's hard limit in its status", || {
        let q = json(&cluster, &["get", "resourcequota", "pods", "-n", "quota"])?;
        if q["status"]["hard"]["pods"] == "2" { Ok(()) } else { Err(format!("{}", q["status"])) }
    });
    apply(&cluster, &tmp.path().join("condition.json"), &rc_manifest("quota", "condition-test", 3, "condition-test"));
    let failed = eventually("the ReplicaFailure condition", || {
        let rc = json(&cluster, &["get", "rc", "condition-test", "-n", "quota"])?;
        let current = rc["status"]["observedGeneration"] == rc["metadata"]["generation"];
        match failure_condition(&rc) {
            Some(c) if current => Ok(c),
            _ => Err(format!("{}", rc["status"])),
        }
    });
    assert_eq!((failed["status"].as_str(), failed["reason"].as_str()), (Some("True"), Some("FailedCreate")), "{failed}");
    // The condition carries the first failure's Status message. (Quota admission can still
    // answer a create with a 409 when the quota controller's write races its charge, so
    // only the event the retries end with is checked for upstream's quota text.)
    assert!(failed["message"].as_str().is_some_and(|m| m.starts_with("pods ") || m.starts_with("Operation cannot be fulfilled")), "{failed}");
    eventually("a FailedCreate event with the quota's refusal", || {
        let list = json(&cluster, &["get", "events", "-n", "quota", "--field-selector", "reason=FailedCreate"])?;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let refused = items.iter().any(|e| {
            let m = e["message"].as_str().unwrap_or("");
            m.starts_with("Error creating: pods \"condition-test-") && m.contains("is forbidden: exceeded quota: pods, requested: pods=1, used: pods=2, limited: pods=2")
        });
        let from_rc = items.iter().all(|e| e["source"]["component"] == "replication-controller" && e["type"] == "Warning");
        if refused && from_rc { Ok(()) } else { Err(format!("{items:?}")) }
    });
    cluster.kubectl_ok(KUBECTL, &["scale", "rc", "condition-test", "-n", "quota", "--replicas=2"]);
    eventually("the ReplicaFailure condition cleared", || {
        let rc = json(&cluster, &["get", "rc", "condition-test", "-n", "quota"])?;
        let current = rc["status"]["observedGeneration"] == rc["metadata"]["generation"];
        if current && failure_condition(&rc).is_none() && rc["status"]["replicas"] == 2 { Ok(()) } else { Err(format!("{}", rc["status"])) }
    });

    // Background deletion takes web's pods; the released one stays.
    cluster.kubectl_ok(KUBECTL, &["delete", "rc", "web", "-n", "rc"]);
    eventually("web's pods collected", || match json(&cluster, &["get", "pods", "-n", "rc", "-l", "app=web"])?["items"].as_array().map_or(0, Vec::len) {
        0 => Ok(()),
        n => Err(format!("{n} pods")),
    });
    json(&cluster, &["get", "pod", &released, "-n", "rc"]).expect("the released pod stays");

    // Orphan deletion leaves the adopted pod without its owner.
    cluster.kubectl_ok(KUBECTL, &["delete", "rc", "adopter", "-n", "rc", "--cascade=orphan"]);
    eventually("adopter gone, lonely orphaned", || {
        let gone = cluster.kubectl(KUBECTL, &["get", "rc", "adopter", "-n", "rc"]).status.code() != Some(0);
        let pod = json(&cluster, &["get", "pod", "lonely", "-n", "rc"])?;
        let refs = pod["metadata"]["ownerReferences"].as_array().map_or(0, Vec::len);
        if gone && refs == 0 && pod["metadata"].get("deletionTimestamp").is_none() { Ok(()) } else { Err(format!("rc gone: {gone}, owner refs {refs}")) }
    });
}
