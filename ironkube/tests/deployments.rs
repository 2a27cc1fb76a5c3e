//! The Deployment controller inside `ironkube up`, on simulated nodes: a Deployment gets
//! its ReplicaSet (named with upstream's pod-template-hash) and becomes Available; a new
//! image rolls out within maxSurge/maxUnavailable to a second ReplicaSet while the first
//! goes to zero; `kubectl rollout status`, `rollout history` and `rollout undo` work; a
//! scale reaches the ReplicaSet; Recreate replaces pods; a Service over the pods gets its
//! Endpoints and EndpointSlice; and the events say what upstream's say.

mod support;

use serde_json::Value;
use support::{Ironkube, eventually};

const KUBECTL: &str = "1.33";

fn json(cluster: &Ironkube, args: &[&str]) -> Result<Value, String> {
    cluster.kubectl_json(KUBECTL, args)
}

fn replica_sets(cluster: &Ironkube, ns: &str) -> Result<Vec<Value>, String> {
    let list = json(cluster, &["get", "replicasets", "-n", ns])?;
    let mut items = list["items"].as_array().cloned().unwrap_or_default();
    items.sort_by_key(|rs| rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"].as_str().unwrap_or("").to_string());
    Ok(items)
}

fn condition(d: &Value, type_: &str) -> Option<(String, String)> {
    let c = d["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_)?;
    Some((c["status"].as_str()?.to_string(), c["reason"].as_str()?.to_string()))
}

/// Waits until the Deployment reports every replica updated and available.
fn settled(cluster: &Ironkube, ns: &str, name: &str, replicas: i64) -> Value {
    eventually(&format!("deployment {name} with {replicas} updated, available replicas"), || {
        let d = json(cluster, &["get", "deployment", name, "-n", ns])?;
        let s = &d["status"];
        let ok = s["updatedReplicas"].as_i64() == Some(replicas)
            && s["availableReplicas"].as_i64() == Some(replicas)
            && s["replicas"].as_i64() == Some(replicas)
            && s["observedGeneration"] == d["metadata"]["generation"];
        if ok { Ok(d) } else { Err(format!("status {s}")) }
    })
}

#[test]
fn rolling_update_rollback_scale_and_recreate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = Ironkube::up_with(&tmp.path().join("data"), &["--simulated-nodes", "2"]);
    cluster.kubectl_ok(KUBECTL, &["create", "namespace", "dep"]);
    cluster.kubectl_ok(KUBECTL, &["create", "deployment", "web", "-n", "dep", "--image=busybox:1.36", "--replicas=3"]);

    let d = settled(&cluster, "dep", "web", 3);
    assert_eq!(condition(&d, "Available"), Some(("True".into(), "MinimumReplicasAvailable".into())), "{d}");
    assert_eq!(condition(&d, "Progressing"), Some(("True".into(), "NewReplicaSetAvailable".into())), "{d}");
    assert_eq!(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "1", "{d}");
    let rss = replica_sets(&cluster, "dep").expect("replica sets");
    assert_eq!(rss.len(), 1, "{rss:?}");
    let first = &rss[0];
    let hash = first["metadata"]["labels"]["pod-template-hash"].as_str().expect("hash label").to_string();
    assert_eq!(first["metadata"]["name"], format!("web-{hash}"));
    assert_eq!(first["spec"]["selector"]["matchLabels"]["pod-template-hash"], hash.as_str());
    assert_eq!(first["metadata"]["ownerReferences"][0]["kind"], "Deployment");
    assert_eq!(first["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"], "3");
    assert_eq!(first["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"], "4");

    // A Service over the pods: the endpoints controllers list their addresses.
    cluster.kubectl_ok(KUBECTL, &["expose", "deployment", "web", "-n", "dep", "--port=80", "--target-port=8080"]);
    eventually("3 endpoint addresses and a 3-endpoint slice", || {
        let ep = json(&cluster, &["get", "endpoints", "web", "-n", "dep"])?;
        let addresses = ep["subsets"][0]["addresses"].as_array().map_or(0, Vec::len);
        let port = ep["subsets"][0]["ports"][0]["port"].as_i64();
        let slices = json(&cluster, &["get", "endpointslices", "-n", "dep", "-l", "kubernetes.io/service-name=web"])?;
        let in_slice = slices["items"][0]["endpoints"].as_array().map_or(0, Vec::len);
        if addresses == 3 && port == Some(8080) && in_slice == 3 { Ok(()) } else { Err(format!("endpoints {ep}, slices {slices}")) }
    });

    // A new image: a second ReplicaSet takes over, the first goes to zero.
    cluster.kubectl_ok(KUBECTL, &["set", "image", "deployment/web", "-n", "dep", "busybox=busybox:1.35"]);
    let status = cluster.kubectl_ok(KUBECTL, &["rollout", "status", "deployment/web", "-n", "dep", "--timeout=120s"]);
    assert!(status.contains("successfully rolled out"), "{status}");
    let d = settled(&cluster, "dep", "web", 3);
    assert_eq!(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "2", "{d}");
    let rss = eventually("the old ReplicaSet scaled to zero", || {
        let rss = replica_sets(&cluster, "dep")?;
        let sizes: Vec<i64> = rss.iter().map(|rs| rs["spec"]["replicas"].as_i64().unwrap_or(-1)).collect();
        if sizes == [0, 3] { Ok(rss) } else { Err(format!("sizes by revision {sizes:?}")) }
    });
    assert_eq!(rss[1]["spec"]["template"]["spec"]["containers"][0]["image"], "busybox:1.35");
    let history = cluster.kubectl_ok(KUBECTL, &["rollout", "history", "deployment/web", "-n", "dep"]);
    assert!(history.contains("REVISION") && history.contains('1') && history.contains('2'), "{history}");

    // Undo: the first template comes back as revision 3, remembering it was revision 1.
    cluster.kubectl_ok(KUBECTL, &["rollout", "undo", "deployment/web", "-n", "dep"]);
    let d = eventually("revision 3 after the undo", || {
        let d = json(&cluster, &["get", "deployment", "web", "-n", "dep"])?;
        if d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3" { Ok(d) } else { Err(format!("{}", d["metadata"]["annotations"])) }
    });
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "busybox:1.36");
    settled(&cluster, "dep", "web", 3);
    let back = eventually("the first ReplicaSet back at 3", || {
        let rss = replica_sets(&cluster, "dep")?;
        let rs = rss.iter().find(|rs| rs["metadata"]["name"] == format!("web-{hash}")).cloned().ok_or("gone")?;
        if rs["spec"]["replicas"] == 3 { Ok(rs) } else { Err(format!("{}", rs["spec"]["replicas"])) }
    });
    assert_eq!(back["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "3");
    assert_eq!(back["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"], "1");

    // Scale: the ReplicaSet follows.
    cluster.kubectl_ok(KUBECTL, &["scale", "deployment/web", "-n", "dep", "--replicas=5"]);
    settled(&cluster, "dep", "web", 5);

    // Events as upstream words them.
    let events = cluster.kubectl_ok(KUBECTL, &["get", "events", "-n", "dep", "--field-selector", "reason=ScalingReplicaSet", "-o", "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}"]);
    assert!(events.contains(&format!("Scaled up replica set web-{hash} from 0 to 3")), "{events}");
    assert!(events.contains("Scaled down replica set"), "{events}");

    // Recreate: all old pods go before the new ReplicaSet grows.
    cluster.kubectl_ok(KUBECTL, &["patch", "deployment/web", "-n", "dep", "--type=merge", "-p", r#"{"spec":{"strategy":{"type":"Recreate","rollingUpdate":null}}}"#]);
    cluster.kubectl_ok(KUBECTL, &["set", "image", "deployment/web", "-n", "dep", "busybox=busybox:1.34"]);
    let d = settled(&cluster, "dep", "web", 5);
    assert_eq!(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "4", "{d}");
    // revisionHistoryLimit 10 keeps every old ReplicaSet; all but the newest are empty.
    let rss = replica_sets(&cluster, "dep").expect("replica sets");
    let sizes: Vec<i64> = rss.iter().map(|rs| rs["spec"]["replicas"].as_i64().unwrap_or(-1)).collect();
    assert_eq!(sizes, [0, 0, 5], "{sizes:?}");
}
