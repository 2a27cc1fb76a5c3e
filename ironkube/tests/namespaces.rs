//! Namespaces inside `ironkube up` on simulated nodes: a new namespace gets its `default`
//! ServiceAccount and the `kube-root-ca.crt` ConfigMap; deleting a namespace holding over a
//! hundred objects of many kinds (workloads with
//! running pods, a PVC, RBAC, Leases...) deletes every one of them, then the namespace, and
//! leaves no key of it in etcd.

mod support;

use std::fmt::Write as _;

use serde_json::Value;
use support::{Ironkube, describe, eventually};

const KUBECTL: &str = "1.33";
const NS: &str = "crowded";

fn objects() -> String {
    let mut y = String::new();
    let mut doc = |s: String| {
        y.push_str("---\n");
        y.push_str(&s);
    };
    for i in 0..30 {
        doc(format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{i}, namespace: {NS}}}\ndata: {{k: v{i}}}\n"));
    }
    for i in 0..20 {
        doc(format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: s-{i}, namespace: {NS}}}\nstringData: {{k: v{i}}}\n"));
    }
    for i in 0..10 {
        doc(format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: svc-{i}, namespace: {NS}}}\nspec: {{selector: {{app: web-{}}}, ports: [{{port: 80}}]}}\n",
            i % 5
        ));
    }
    for i in 0..5 {
        doc(format!("apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: sa-{i}, namespace: {NS}}}\n"));
        doc(format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: role-{i}, namespace: {NS}}}\nrules: [{{apiGroups: [''], resources: [pods], verbs: [get]}}]\n"
        ));
        doc(format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: rb-{i}, namespace: {NS}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: role-{i}}}\nsubjects: [{{kind: ServiceAccount, name: sa-{i}, namespace: {NS}}}]\n"
        ));
        doc(format!("apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {{name: lease-{i}, namespace: {NS}}}\nspec: {{holderIdentity: me}}\n"));
        doc(format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web-{i}, namespace: {NS}}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: web-{i}}}}}\n  template:\n    metadata: {{labels: {{app: web-{i}}}}}\n    spec: {{containers: [{{name: c, image: busybox:1.36}}]}}\n"
        ));
        doc(format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: job-{i}, namespace: {NS}}}\nspec:\n  template:\n    metadata: {{annotations: {{ironkube.dev/simulated-exit-code: '0'}}}}\n    spec: {{restartPolicy: Never, containers: [{{name: c, image: busybox:1.36}}]}}\n"
        ));
    }
    doc(format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: data, namespace: {NS}}}\nspec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}\n"
    ));
    y
}

/// Every key etcd holds whose path names the namespace (`/registry/<resource>/<ns>/...`).
fn etcd_keys_of(data_dir: &std::path::Path, ns: &str) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Ports {
        client: u16,
    }
    let ports: Ports = serde_json::from_slice(&std::fs::read(data_dir.join("etcd-ports.json")).expect("etcd-ports.json")).expect("etcd-ports.json parses");
    let output = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &format!("http://127.0.0.1:{}", ports.client), "get", "/registry/", "--prefix", "--keys-only"])
        .output()
        .unwrap_or_else(|e| panic!("running etcdctl: {e}; install Debian's etcd-client (hack/test.sh installs it)"));
    assert!(output.status.success(), "etcdctl get: {}", describe(&output));
    let marker = format!("/{ns}/");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|k| k.contains(&marker) || k.ends_with(&format!("/namespaces/{ns}")))
        .map(str::to_string)
        .collect()
}

fn count(cluster: &Ironkube, resource: &str) -> Result<usize, String> {
    let list: Value = cluster.kubectl_json(KUBECTL, &["get", resource, "-n", NS])?;
    Ok(list["items"].as_array().map(Vec::len).unwrap_or(0))
}

#[test]
fn a_new_namespace_is_furnished_and_a_deleted_one_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("cluster");
    let cluster = Ironkube::up_with(&data, &["--simulated-nodes", "2"]);

    cluster.kubectl_ok(KUBECTL, &["create", "namespace", NS]);
    eventually("the default ServiceAccount and kube-root-ca.crt", || {
        let sa = cluster.kubectl_json(KUBECTL, &["get", "serviceaccount", "default", "-n", NS])?;
        let cm = cluster.kubectl_json(KUBECTL, &["get", "configmap", "kube-root-ca.crt", "-n", NS])?;
        let ca = cm["data"]["ca.crt"].as_str().unwrap_or_default();
        if sa["metadata"]["name"] == "default" && ca.starts_with("-----BEGIN CERTIFICATE-----") { Ok(()) } else { Err(format!("{sa}\n{cm}")) }
    });

    let manifest = dir.path().join("objects.yaml");
    std::fs::write(&manifest, objects()).expect("writing the manifest");
    let file = manifest.display().to_string();
    cluster.kubectl_ok(KUBECTL, &["apply", "-f", &file]);
    eventually("the workloads' pods running", || {
        let pods: Value = cluster.kubectl_json(KUBECTL, &["get", "pods", "-n", NS])?;
        let items = pods["items"].as_array().cloned().unwrap_or_default();
        let running = items.iter().filter(|p| p["status"]["phase"] == "Running").count();
        let succeeded = items.iter().filter(|p| p["status"]["phase"] == "Succeeded").count();
        if running == 10 && succeeded == 5 { Ok(()) } else { Err(format!("{running} running, {succeeded} succeeded of {}", items.len())) }
    });
    let mut stored = String::new();
    let mut total = 0;
    for resource in ["configmaps", "secrets", "services", "serviceaccounts", "roles", "rolebindings", "leases", "deployments", "replicasets", "pods", "jobs", "persistentvolumeclaims", "endpoints", "endpointslices", "events"] {
        let n = count(&cluster, resource).expect("listing");
        total += n;
        let _ = write!(stored, "{resource} {n}, ");
    }
    eprintln!("stored in {NS}: {total} objects ({stored})");
    assert!(total > 150, "only {total} objects: {stored}");
    assert!(etcd_keys_of(&data, NS).len() >= total, "etcd holds fewer keys than the API lists");

    cluster.kubectl_ok(KUBECTL, &["delete", "namespace", NS, "--wait=false"]);
    eventually("the namespace gone", || {
        let out = cluster.kubectl(KUBECTL, &["get", "namespace", NS, "-o", "json"]);
        if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NotFound") {
            return Ok(());
        }
        let ns: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        Err(format!("still there: {}", ns["status"]))
    });
    let left = etcd_keys_of(&data, NS);
    assert!(left.is_empty(), "keys of the deleted namespace left in etcd: {left:#?}");
    cluster.stop();
}
