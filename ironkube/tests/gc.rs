//! The garbage collector: deleting a Deployment (background) takes its ReplicaSet and pods
//! with it; `--cascade=orphan` leaves the pods, without the owner reference; and
//! `--cascade=foreground` keeps the owner until its dependents are gone.

mod support;

use support::{Ironkube, eventually};

const KUBECTL: &str = "1.33";

fn count(cluster: &Ironkube, args: &[&str]) -> Result<usize, String> {
    Ok(cluster.kubectl_json(KUBECTL, args)?["items"].as_array().map_or(0, Vec::len))
}

#[test]
fn background_orphan_and_foreground_deletion() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = Ironkube::up_with(&tmp.path().join("data"), &["--simulated-nodes", "1"]);
    cluster.kubectl_ok(KUBECTL, &["create", "namespace", "gc"]);

    // Background: the ReplicaSet and its pods follow the Deployment.
    cluster.kubectl_ok(KUBECTL, &["create", "deployment", "bg", "-n", "gc", "--image=busybox:1.36", "--replicas=2"]);
    eventually("2 pods of bg", || match count(&cluster, &["get", "pods", "-n", "gc", "-l", "app=bg"])? {
        2 => Ok(()),
        n => Err(format!("{n} pods")),
    });
    cluster.kubectl_ok(KUBECTL, &["delete", "deployment", "bg", "-n", "gc"]);
    eventually("bg's ReplicaSet and pods collected", || {
        let (rs, pods) = (count(&cluster, &["get", "replicasets", "-n", "gc", "-l", "app=bg"])?, count(&cluster, &["get", "pods", "-n", "gc", "-l", "app=bg"])?);
        if rs == 0 && pods == 0 { Ok(()) } else { Err(format!("{rs} replica sets, {pods} pods")) }
    });

    // Orphan: the ReplicaSet goes, its pods stay and lose the reference.
    cluster.kubectl_ok(KUBECTL, &["create", "deployment", "orph", "-n", "gc", "--image=busybox:1.36", "--replicas=2"]);
    eventually("2 pods of orph", || match count(&cluster, &["get", "pods", "-n", "gc", "-l", "app=orph"])? {
        2 => Ok(()),
        n => Err(format!("{n} pods")),
    });
    cluster.kubectl_ok(KUBECTL, &["delete", "deployment", "orph", "-n", "gc", "--cascade=orphan"]);
    let rs_name = eventually("the orphaned ReplicaSet without owner", || {
        let list = cluster.kubectl_json(KUBECTL, &["get", "replicasets", "-n", "gc", "-l", "app=orph"])?;
        let rs = list["items"].get(0).cloned().ok_or("no replica set")?;
        if rs["metadata"].get("ownerReferences").is_none_or(|r| r.as_array().is_some_and(Vec::is_empty)) {
            Ok(rs["metadata"]["name"].as_str().unwrap_or("").to_string())
        } else {
            Err(format!("{}", rs["metadata"]["ownerReferences"]))
        }
    });
    assert!(cluster.kubectl(KUBECTL, &["get", "deployment", "orph", "-n", "gc"]).status.code() != Some(0), "the Deployment is gone");
    cluster.kubectl_ok(KUBECTL, &["delete", "replicaset", &rs_name, "-n", "gc", "--cascade=orphan"]);
    eventually("orph's pods orphaned", || {
        let list = cluster.kubectl_json(KUBECTL, &["get", "pods", "-n", "gc", "-l", "app=orph"])?;
        let pods = list["items"].as_array().cloned().unwrap_or_default();
        let owned = pods.iter().filter(|p| p["metadata"].get("ownerReferences").is_some_and(|r| r.as_array().is_some_and(|a| !a.is_empty()))).count();
        if pods.len() == 2 && owned == 0 { Ok(()) } else { Err(format!("{} pods, {owned} still owned", pods.len())) }
    });

    // Foreground: the Deployment waits for its dependents, then goes.
    cluster.kubectl_ok(KUBECTL, &["create", "deployment", "fg", "-n", "gc", "--image=busybox:1.36", "--replicas=2"]);
    eventually("2 pods of fg", || match count(&cluster, &["get", "pods", "-n", "gc", "-l", "app=fg"])? {
        2 => Ok(()),
        n => Err(format!("{n} pods")),
    });
    cluster.kubectl_ok(KUBECTL, &["delete", "deployment", "fg", "-n", "gc", "--cascade=foreground", "--wait=false"]);
    eventually("fg and its dependents gone", || {
        let d = cluster.kubectl(KUBECTL, &["get", "deployment", "fg", "-n", "gc"]).status.success();
        let pods = count(&cluster, &["get", "pods", "-n", "gc", "-l", "app=fg"])?;
        if !d && pods == 0 { Ok(()) } else { Err(format!("deployment there: {d}, {pods} pods")) }
    });
}
