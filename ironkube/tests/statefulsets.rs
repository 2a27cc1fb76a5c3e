//! The StatefulSet controller inside `ironkube up`, on simulated nodes (a pod becomes Ready
//! after its readiness probe's initial delay): an OrderedReady set of 3 comes up in order
//! (each pod created only after the one before was Ready) with its identity labels,
//! hostname and subdomain, and upstream's events; it scales down highest ordinal first,
//! one pod at a time; a rolling update with a partition updates only the ordinals at or
//! above it, then all of them; `kubectl rollout status` and `rollout undo` work over the
//! ControllerRevisions; a failed pod is deleted and made again; a Parallel set creates
//! all its pods at once; and the scale subresource answers.

mod support;

use serde_json::Value;
use support::{Ironkube, eventually};

const KUBECTL: &str = "1.33";
const NS: &str = "sts";

fn json(cluster: &Ironkube, args: &[&str]) -> Result<Value, String> {
    cluster.kubectl_json(KUBECTL, args)
}

fn manifest(name: &str, policy: &str, replicas: i32, image: &str, annotations: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {name}
  namespace: {NS}
spec:
  serviceName: {name}-svc
  replicas: {replicas}
  podManagementPolicy: {policy}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
      annotations: {{{annotations}}}
    spec:
      containers:
      - name: web
        image: {image}
        readinessProbe:
          httpGet: {{path: /, port: 80}}
          initialDelaySeconds: 2
"#
    )
}

fn apply(cluster: &Ironkube, dir: &std::path::Path, name: &str, text: &str) {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).expect("manifest");
    cluster.kubectl_ok(KUBECTL, &["apply", "-f", path.to_str().expect("path")]);
}

fn pods(cluster: &Ironkube, app: &str) -> Result<Vec<Value>, String> {
    let list = json(cluster, &["get", "pods", "-n", NS, "-l", &format!("app={app}")])?;
    let mut items = list["items"].as_array().cloned().unwrap_or_default();
    items.sort_by_key(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string());
    Ok(items)
}

fn ready_since(pod: &Value) -> Option<String> {
    let c = pod["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == "Ready" && c["status"] == "True")?;
    c["lastTransitionTime"].as_str().map(str::to_string)
}

fn created(pod: &Value) -> String {
    pod["metadata"]["creationTimestamp"].as_str().unwrap_or("").to_string()
}

/// Waits until the set has `replicas` ready pods, all at one revision, status observed.
fn settled(cluster: &Ironkube, name: &str, replicas: i64) -> Value {
    eventually(&format!("statefulset {name} with {replicas} ready pods at one revision"), || {
        let s = json(cluster, &["get", "statefulset", name, "-n", NS])?;
        let st = &s["status"];
        let ok = st["replicas"].as_i64() == Some(replicas)
            && st["readyReplicas"].as_i64().unwrap_or(0) == replicas
            && st["availableReplicas"].as_i64() == Some(replicas)
            && st["currentRevision"] == st["updateRevision"]
            && st["updatedReplicas"].as_i64().unwrap_or(0) == replicas
            && st["observedGeneration"] == s["metadata"]["generation"];
        if ok { Ok(s) } else { Err(format!("status {st}")) }
    })
}

fn revision_of(pod: &Value) -> String {
    pod["metadata"]["labels"]["controller-revision-hash"].as_str().unwrap_or("").to_string()
}

fn image_of(pod: &Value) -> String {
    pod["spec"]["containers"][0]["image"].as_str().unwrap_or("").to_string()
}

/// The events about `name` with `reason`, in the order they were written (the recorder
/// names them `<object>.<nanoseconds in hex>`).
fn event_messages(cluster: &Ironkube, name: &str, reason: &str) -> Result<Vec<String>, String> {
    let list = json(cluster, &["get", "events", "-n", NS])?;
    let mut events: Vec<(u128, String)> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["involvedObject"]["name"] == name && e["involvedObject"]["kind"] == "StatefulSet" && e["reason"] == reason)
        .map(|e| {
            let stamp = e["metadata"]["name"].as_str().and_then(|n| n.rsplit_once('.')).and_then(|(_, h)| u128::from_str_radix(h, 16).ok()).unwrap_or(0);
            (stamp, e["message"].as_str().unwrap_or("").to_string())
        })
        .collect();
    events.sort();
    Ok(events.into_iter().map(|(_, m)| m).collect())
}

/// Keeps ironkube's log at `$IRONKUBE_TEST_KEEP_LOG` when the test fails.
struct KeepLog(std::path::PathBuf);

impl Drop for KeepLog {
    fn drop(&mut self) {
        if let (true, Some(to)) = (std::thread::panicking(), std::env::var_os("IRONKUBE_TEST_KEEP_LOG")) {
            let _ = std::fs::copy(&self.0, to);
        }
    }
}

#[test]
fn ordered_scaling_partitioned_rolling_update_rollback_and_parallel() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let _keep = KeepLog(tmp.path().join("data.ironkube.log"));
    let cluster = Ironkube::up_with(&tmp.path().join("data"), &["--simulated-nodes", "2"]);
    cluster.kubectl_ok(KUBECTL, &["create", "namespace", NS]);

    // Up in order: each pod is created after the one before became Ready.
    apply(&cluster, tmp.path(), "web", &manifest("web", "OrderedReady", 3, "nginx:1.27", ""));
    let set = settled(&cluster, "web", 3);
    let first_revision = set["status"]["currentRevision"].as_str().expect("currentRevision").to_string();
    assert!(first_revision.starts_with("web-"), "{first_revision}");
    assert_eq!(set["status"]["collisionCount"], 0, "{set}");
    let up = pods(&cluster, "web").expect("pods");
    let names: Vec<&str> = up.iter().filter_map(|p| p["metadata"]["name"].as_str()).collect();
    assert_eq!(names, ["web-0", "web-1", "web-2"]);
    for pair in up.windows(2) {
        let before = ready_since(&pair[0]).expect("ready");
        assert!(created(&pair[1]) >= before, "{} created at {} before {} was ready at {before}", pair[1]["metadata"]["name"], created(&pair[1]), pair[0]["metadata"]["name"]);
    }
    for (i, p) in up.iter().enumerate() {
        let l = &p["metadata"]["labels"];
        assert_eq!(l["statefulset.kubernetes.io/pod-name"], format!("web-{i}"), "{l}");
        assert_eq!(l["apps.kubernetes.io/pod-index"], i.to_string(), "{l}");
        assert_eq!(l["controller-revision-hash"], first_revision.as_str(), "{l}");
        assert_eq!(p["spec"]["hostname"], format!("web-{i}"));
        assert_eq!(p["spec"]["subdomain"], "web-svc");
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");
    }
    let created_events = eventually("creation events", || {
        let m = event_messages(&cluster, "web", "SuccessfulCreate")?;
        if m.len() >= 3 { Ok(m) } else { Err(format!("{m:?}")) }
    });
    assert_eq!(created_events[..3], ["create Pod web-0 in StatefulSet web successful", "create Pod web-1 in StatefulSet web successful", "create Pod web-2 in StatefulSet web successful"]);
    let revisions = json(&cluster, &["get", "controllerrevisions", "-n", NS, "-l", "app=web"]).expect("revisions");
    assert_eq!(revisions["items"].as_array().map(Vec::len), Some(1), "{revisions}");
    assert_eq!(revisions["items"][0]["revision"], 1);

    // The scale subresource, then scaling down highest ordinal first.
    let scale: Value = serde_json::from_str(&cluster.kubectl_ok(KUBECTL, &["get", "--raw", &format!("/apis/apps/v1/namespaces/{NS}/statefulsets/web/scale")])).expect("scale");
    assert_eq!((scale["spec"]["replicas"].as_i64(), scale["status"]["replicas"].as_i64()), (Some(3), Some(3)), "{scale}");
    cluster.kubectl_ok(KUBECTL, &["scale", "statefulset", "web", "-n", NS, "--replicas=1"]);
    settled(&cluster, "web", 1);
    let deleted = event_messages(&cluster, "web", "SuccessfulDelete").expect("events");
    assert_eq!(deleted, ["delete Pod web-2 in StatefulSet web successful", "delete Pod web-1 in StatefulSet web successful"]);
    cluster.kubectl_ok(KUBECTL, &["scale", "statefulset", "web", "-n", NS, "--replicas=3"]);
    settled(&cluster, "web", 3);

    // A rolling update above partition 2 updates web-2 only.
    cluster.kubectl_ok(KUBECTL, &["patch", "statefulset", "web", "-n", NS, "-p", r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}}}}"#]);
    cluster.kubectl_ok(KUBECTL, &["set", "image", "statefulset/web", "-n", NS, "web=nginx:1.28"]);
    let set = eventually("web-2 updated", || {
        let s = json(&cluster, &["get", "statefulset", "web", "-n", NS])?;
        let st = &s["status"];
        let ps = pods(&cluster, "web")?;
        let updated = ps.len() == 3 && revision_of(&ps[2]) == st["updateRevision"].as_str().unwrap_or("-") && ready_since(&ps[2]).is_some();
        if updated && st["updatedReplicas"] == 1 && st["currentReplicas"] == 2 && st["readyReplicas"] == 3 { Ok(s) } else { Err(format!("status {st}")) }
    });
    let second_revision = set["status"]["updateRevision"].as_str().expect("updateRevision").to_string();
    assert_ne!(second_revision, first_revision);
    assert_eq!(set["status"]["currentRevision"], first_revision.as_str());
    let partitioned = pods(&cluster, "web").expect("pods");
    assert_eq!(partitioned.iter().map(image_of).collect::<Vec<_>>(), ["nginx:1.27", "nginx:1.27", "nginx:1.28"]);
    let status = cluster.kubectl_ok(KUBECTL, &["rollout", "status", "statefulset/web", "-n", NS, "--timeout=60s"]);
    assert!(
        status.contains("partitioned roll out complete: 1 new pods have been updated..."),
        "{status}\n{}\n{:?}\n{:?}",
        json(&cluster, &["get", "statefulset", "web", "-n", NS]).unwrap_or_default(),
        pods(&cluster, "web").unwrap_or_default().iter().map(|p| (revision_of(p), image_of(p))).collect::<Vec<_>>(),
        event_messages(&cluster, "web", "SuccessfulDelete")
    );

    // Partition 0: the rest follows, highest first; the update revision becomes current.
    cluster.kubectl_ok(KUBECTL, &["patch", "statefulset", "web", "-n", NS, "-p", r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}"#]);
    let set = settled(&cluster, "web", 3);
    assert_eq!(set["status"]["currentRevision"], second_revision.as_str());
    assert_eq!(pods(&cluster, "web").expect("pods").iter().map(image_of).collect::<Vec<_>>(), ["nginx:1.28"; 3]);
    let deleted = event_messages(&cluster, "web", "SuccessfulDelete").expect("events");
    assert_eq!(deleted[2..], ["delete Pod web-2 in StatefulSet web successful", "delete Pod web-1 in StatefulSet web successful", "delete Pod web-0 in StatefulSet web successful"]);
    let status = cluster.kubectl_ok(KUBECTL, &["rollout", "status", "statefulset/web", "-n", NS, "--timeout=60s"]);
    // kubectl reports any set with a rollingUpdate (the API server defaults one) as partitioned.
    assert!(status.contains("partitioned roll out complete: 3 new pods have been updated..."), "{status}");

    // Undo: the first revision's template comes back under a new number.
    cluster.kubectl_ok(KUBECTL, &["rollout", "undo", "statefulset/web", "-n", NS]);
    let set = eventually("rolled back", || {
        let s = settled(&cluster, "web", 3);
        if s["status"]["currentRevision"] == first_revision.as_str() { Ok(s) } else { Err(format!("status {}", s["status"])) }
    });
    assert_eq!(set["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.27");
    assert_eq!(pods(&cluster, "web").expect("pods").iter().map(image_of).collect::<Vec<_>>(), ["nginx:1.27"; 3]);
    let revision = json(&cluster, &["get", "controllerrevision", &first_revision, "-n", NS]).expect("revision");
    assert_eq!(revision["revision"], 3, "{revision}");
    let history = cluster.kubectl_ok(KUBECTL, &["rollout", "history", "statefulset/web", "-n", NS]);
    assert!(history.contains('2') && history.contains('3'), "{history}");

    // A pod that fails is deleted and made again.
    apply(&cluster, tmp.path(), "flaky", &manifest("flaky", "OrderedReady", 1, "busybox:1.36", r#""ironkube.dev/simulated-exit-code": "1", "ironkube.dev/simulated-run-duration": "3s""#));
    let first_uid = eventually("flaky-0 running", || {
        let ps = pods(&cluster, "flaky")?;
        ps.first().and_then(|p| p["metadata"]["uid"].as_str().map(str::to_string)).ok_or_else(|| "no pod".to_string())
    });
    eventually("flaky-0 recreated", || {
        let ps = pods(&cluster, "flaky")?;
        let uid = ps.first().and_then(|p| p["metadata"]["uid"].as_str()).unwrap_or(&first_uid);
        if uid != first_uid { Ok(()) } else { Err(format!("{ps:?}")) }
    });
    let deleted = event_messages(&cluster, "flaky", "SuccessfulDelete").expect("events");
    assert!(deleted.first().is_some_and(|m| m == "delete Pod flaky-0 in StatefulSet flaky successful"), "{deleted:?}");

    // Parallel: every pod is created before any is ready.
    apply(&cluster, tmp.path(), "par", &manifest("par", "Parallel", 3, "nginx:1.27", ""));
    settled(&cluster, "par", 3);
    let ps = pods(&cluster, "par").expect("pods");
    let last_created = ps.iter().map(created).max().unwrap_or_default();
    let first_ready = ps.iter().filter_map(ready_since).min().unwrap_or_default();
    assert!(last_created < first_ready, "last created {last_created}, first ready {first_ready}");
    cluster.kubectl_ok(KUBECTL, &["scale", "statefulset", "par", "-n", NS, "--replicas=0"]);
    eventually("par scaled to zero", || {
        let ps = pods(&cluster, "par")?;
        if ps.is_empty() { Ok(()) } else { Err(format!("{} pods", ps.len())) }
    });
}
