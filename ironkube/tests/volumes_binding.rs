//! PersistentVolume binding inside `ironkube up` on a simulated node: pending claims bind to
//! the smallest fitting Available volume of their class (a label selector, a class, a size
//! choose among 1Gi, 5Gi and 10Gi volumes), a volume pre-bound by claimRef and a claim
//! pre-bound by volumeName bind to each other, with upstream's claimRef, annotations,
//! phases and status; a claim nothing fits stays Pending with a FailedBinding event.
//! Deleting a bound claim releases a Retain volume and deletes a Delete one; a claim used
//! by a scheduled pod keeps its protection finalizer until the pod is gone, and a released
//! volume can then be deleted.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{Ironkube, eventually};

const KUBECTL: &str = "1.33";
const NS: &str = "vols";

fn volume(name: &str, size: &str, extra_meta: &str, extra_spec: &str, policy: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: {name}\n{extra_meta}spec:\n  capacity: {{storage: {size}}}\n  accessModes: [ReadWriteOnce]\n  persistentVolumeReclaimPolicy: {policy}\n  hostPath: {{path: /tmp/{name}}}\n{extra_spec}"
    )
}

fn claim(name: &str, size: &str, extra_spec: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {{requests: {{storage: {size}}}}}\n{extra_spec}"
    )
}

fn get(cluster: &Ironkube, args: &[&str]) -> Result<Value, String> {
    cluster.kubectl_json(KUBECTL, args)
}

fn pv(cluster: &Ironkube, name: &str) -> Result<Value, String> {
    get(cluster, &["get", "pv", name])
}

fn pvc(cluster: &Ironkube, name: &str) -> Result<Value, String> {
    get(cluster, &["get", "pvc", name, "-n", NS])
}

fn exists(cluster: &Ironkube, args: &[&str]) -> bool {
    cluster.kubectl(KUBECTL, args).status.success()
}

/// Waits until the claim is Bound to `volume` and returns both.
fn bound(cluster: &Ironkube, claim: &str, volume: &str) -> (Value, Value) {
    eventually(&format!("{claim} bound to {volume}"), || {
        let c = pvc(cluster, claim)?;
        let v = pv(cluster, volume)?;
        let ok = c["status"]["phase"] == "Bound" && c["spec"]["volumeName"] == volume && v["status"]["phase"] == "Bound" && v["spec"]["claimRef"]["uid"] == c["metadata"]["uid"];
        if ok { Ok((c, v)) } else { Err(format!("claim {} / volume {}", c["status"], v["status"])) }
    })
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj["metadata"]["annotations"].get(key).and_then(Value::as_str)
}

#[test]
fn binding_release_and_protection() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = Ironkube::up_with(&tmp.path().join("data"), &["--simulated-nodes", "1"]);
    cluster.kubectl_ok(KUBECTL, &["create", "namespace", NS]);

    let mut manifests = String::new();
    manifests.push_str(&volume("pv-small", "1Gi", "", "", "Retain"));
    manifests.push_str(&volume("pv-medium", "5Gi", "  labels: {tier: fast}\n", "", "Delete"));
    manifests.push_str(&volume("pv-large", "10Gi", "", "  storageClassName: gold\n", "Retain"));
    manifests.push_str(&volume("pv-pre", "2Gi", "", &format!("  claimRef: {{namespace: {NS}, name: pre}}\n"), "Retain"));
    manifests.push_str(&volume("pv-named", "3Gi", "", "", "Retain"));
    let path = tmp.path().join("volumes.yaml");
    std::fs::write(&path, &manifests).expect("manifest");
    cluster.kubectl_ok(KUBECTL, &["apply", "-f", path.to_str().expect("path")]);

    // Free volumes turn Available with a transition time; every volume carries the
    // protection finalizer from admission.
    let small = eventually("pv-small Available", || {
        let v = pv(&cluster, "pv-small")?;
        if v["status"]["phase"] == "Available" { Ok(v) } else { Err(v["status"].to_string()) }
    });
    assert!(small["status"]["lastPhaseTransitionTime"].is_string(), "{}", small["status"]);
    assert_eq!(small["metadata"]["finalizers"], serde_json::json!(["kubernetes.io/pv-protection"]));

    let mut claims = String::new();
    claims.push_str(&claim("c-small", "500Mi", "  storageClassName: \"\"\n"));
    claims.push_str(&claim("c-fast", "1Gi", "  storageClassName: \"\"\n  selector: {matchLabels: {tier: fast}}\n"));
    claims.push_str(&claim("c-gold", "1Gi", "  storageClassName: gold\n"));
    claims.push_str(&claim("pre", "1Gi", "  storageClassName: \"\"\n"));
    claims.push_str(&claim("named", "1Gi", "  storageClassName: \"\"\n  volumeName: pv-named\n"));
    claims.push_str(&claim("c-none", "100Gi", "  storageClassName: \"\"\n"));
    let path = tmp.path().join("claims.yaml");
    std::fs::write(&path, &claims).expect("manifest");
    cluster.kubectl_ok(KUBECTL, &["apply", "-f", path.to_str().expect("path")]);

    let (c, v) = bound(&cluster, "c-small", "pv-small");
    assert_eq!(c["metadata"]["finalizers"], serde_json::json!(["kubernetes.io/pvc-protection"]));
    assert_eq!(annotation(&c, "pv.kubernetes.io/bind-completed"), Some("yes"));
    assert_eq!(annotation(&c, "pv.kubernetes.io/bound-by-controller"), Some("yes"));
    assert_eq!(annotation(&v, "pv.kubernetes.io/bound-by-controller"), Some("yes"));
    assert_eq!(c["status"]["capacity"]["storage"], "1Gi");
    assert_eq!(c["status"]["accessModes"], serde_json::json!(["ReadWriteOnce"]));
    let r = &v["spec"]["claimRef"];
    assert_eq!((r["kind"].as_str(), r["apiVersion"].as_str(), r["namespace"].as_str(), r["name"].as_str()), (Some("PersistentVolumeClaim"), Some("v1"), Some(NS), Some("c-small")), "{r}");
    assert!(r["resourceVersion"].is_string(), "{r}");
    assert_ne!(v["status"]["lastPhaseTransitionTime"], Value::Null);

    let (c, _) = bound(&cluster, "c-fast", "pv-medium");
    assert_eq!(c["status"]["capacity"]["storage"], "5Gi");
    bound(&cluster, "c-gold", "pv-large");
    let (c, v) = bound(&cluster, "pre", "pv-pre");
    assert_eq!(annotation(&v, "pv.kubernetes.io/bound-by-controller"), None, "pre-bound by the user");
    assert_eq!(annotation(&c, "pv.kubernetes.io/bound-by-controller"), Some("yes"));
    let (c, v) = bound(&cluster, "named", "pv-named");
    assert_eq!(annotation(&c, "pv.kubernetes.io/bound-by-controller"), None, "pre-bound by the user");
    assert_eq!(annotation(&v, "pv.kubernetes.io/bound-by-controller"), Some("yes"));

    // Nothing fits 100Gi: Pending, with upstream's event.
    eventually("c-none FailedBinding", || {
        let events = get(&cluster, &["get", "events", "-n", NS, "--field-selector", "involvedObject.name=c-none"])?;
        let found = events["items"].as_array().into_iter().flatten().any(|e| {
            e["reason"] == "FailedBinding" && e["message"] == "no persistent volumes available for this claim and no storage class is set" && e["source"]["component"] == "persistentvolume-controller"
        });
        if found { Ok(()) } else { Err(events.to_string()) }
    });
    assert_eq!(pvc(&cluster, "c-none").expect("c-none")["status"]["phase"], "Pending");

    // Retain: the volume is Released and stays; Delete: the volume goes.
    cluster.kubectl_ok(KUBECTL, &["delete", "pvc", "c-small", "-n", NS]);
    eventually("pv-small Released", || {
        let v = pv(&cluster, "pv-small")?;
        if v["status"]["phase"] == "Released" { Ok(()) } else { Err(v["status"].to_string()) }
    });
    cluster.kubectl_ok(KUBECTL, &["delete", "pvc", "c-fast", "-n", NS]);
    eventually("pv-medium deleted", || if exists(&cluster, &["get", "pv", "pv-medium"]) { Err("still there".into()) } else { Ok(()) });
    assert!(exists(&cluster, &["get", "pv", "pv-small"]), "Retain keeps the volume");

    // A claim in use by a scheduled pod keeps its finalizer until the pod is gone.
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: user, namespace: {NS}}}\nspec:\n  containers: [{{name: c, image: busybox:1.36}}]\n  volumes: [{{name: data, persistentVolumeClaim: {{claimName: pre}}}}]\n"
    );
    let path = tmp.path().join("pod.yaml");
    std::fs::write(&path, pod).expect("manifest");
    cluster.kubectl_ok(KUBECTL, &["apply", "-f", path.to_str().expect("path")]);
    eventually("pod scheduled", || {
        let p = get(&cluster, &["get", "pod", "user", "-n", NS])?;
        if p["spec"]["nodeName"].is_string() { Ok(()) } else { Err(p["status"].to_string()) }
    });
    cluster.kubectl_ok(KUBECTL, &["delete", "pvc", "pre", "-n", NS, "--wait=false"]);
    eventually("pre being deleted", || {
        let c = pvc(&cluster, "pre")?;
        if c["metadata"]["deletionTimestamp"].is_string() { Ok(()) } else { Err(c["metadata"].to_string()) }
    });
    std::thread::sleep(Duration::from_secs(3));
    let c = pvc(&cluster, "pre").expect("pre is kept while in use");
    assert_eq!(c["metadata"]["finalizers"], serde_json::json!(["kubernetes.io/pvc-protection"]));
    // A bound volume being deleted is kept too.
    cluster.kubectl_ok(KUBECTL, &["delete", "pv", "pv-pre", "--wait=false"]);
    std::thread::sleep(Duration::from_secs(2));
    let v = pv(&cluster, "pv-pre").expect("pv-pre is kept while bound");
    assert_eq!(v["status"]["phase"], "Bound");
    cluster.kubectl_ok(KUBECTL, &["delete", "pod", "user", "-n", NS, "--grace-period=0", "--force"]);
    eventually("pre deleted", || if exists(&cluster, &["get", "pvc", "pre", "-n", NS]) { Err("still there".into()) } else { Ok(()) });
    // Its volume is released, and then its own deletion goes through.
    eventually("pv-pre deleted", || if exists(&cluster, &["get", "pv", "pv-pre"]) { Err("still there".into()) } else { Ok(()) });

    // The namespace goes with its remaining claims.
    cluster.kubectl_ok(KUBECTL, &["delete", "namespace", NS, "--wait=false"]);
    eventually("namespace deleted", || match get(&cluster, &["get", "namespace", NS]) {
        Ok(ns) => Err(format!("{} {:?}\n{}", ns["status"], get(&cluster, &["get", "pvc", "-n", NS]).map(|l| l["items"].to_string()), cluster.log_tail())),
        Err(_) => Ok(()),
    });
    eventually("pv-large released", || {
        let v = pv(&cluster, "pv-large")?;
        if v["status"]["phase"] == "Released" { Ok(()) } else { Err(v["status"].to_string()) }
    });
}
