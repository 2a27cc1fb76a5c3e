//! ResourceQuota end to end: the quota controller counts what a namespace holds into
//! `status.used` (the kube-root-ca.crt ConfigMap included), admission refuses creates past
//! `spec.hard` with upstream's messages and charges admitted ones at once, and a deletion
//! is counted back down.

mod support;

use support::{Ironkube, describe, eventually};

const KUBECTL: &str = "1.33";

fn used(cluster: &Ironkube, resource: &str) -> Result<String, String> {
    let out = cluster.kubectl(KUBECTL, &["get", "resourcequota", "q1", "-n", "q", "-o", &format!("jsonpath={{.status.used.{}}}", resource.replace('.', "\\."))]);
    if out.status.success() { Ok(String::from_utf8_lossy(&out.stdout).to_string()) } else { Err(describe(&out)) }
}

#[test]
fn quotas_count_refuse_and_recount() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = Ironkube::up(&tmp.path().join("data"));
    cluster.kubectl_ok(KUBECTL, &["create", "namespace", "q"]);
    cluster.kubectl_ok(KUBECTL, &["create", "quota", "q1", "-n", "q", "--hard=pods=2,configmaps=3,requests.cpu=1,services.nodeports=1,count/secrets=5"]);
    eventually("the controller counts the namespace's ConfigMap", || match used(&cluster, "configmaps")?.as_str() {
        "1" => Ok(()),
        other => Err(format!("used configmaps {other:?}")),
    });
    for name in ["a", "b"] {
        cluster.kubectl_ok(KUBECTL, &["create", "configmap", name, "-n", "q", "--from-literal=k=v"]);
    }
    // Charged at admission: no wait for the controller.
    assert_eq!(used(&cluster, "configmaps").as_deref(), Ok("3"));
    let out = cluster.kubectl(KUBECTL, &["create", "configmap", "c", "-n", "q", "--from-literal=k=v"]);
    assert!(!out.status.success());
    assert!(
        describe(&out).contains("configmaps \"c\" is forbidden: exceeded quota: q1, requested: configmaps=1, used: configmaps=3, limited: configmaps=3"),
        "{}",
        describe(&out)
    );
    let out = cluster.kubectl(KUBECTL, &["run", "p1", "-n", "q", "--image=busybox:1.36"]);
    assert!(describe(&out).contains("pods \"p1\" is forbidden: failed quota: q1: must specify requests.cpu for: p1"), "{}", describe(&out));
    let big = r#"{"spec":{"containers":[{"name":"p2","image":"busybox:1.36","resources":{"requests":{"cpu":"2"}}}]}}"#;
    let out = cluster.kubectl(KUBECTL, &["run", "p2", "-n", "q", "--image=busybox:1.36", &format!("--overrides={big}")]);
    assert!(describe(&out).contains("exceeded quota: q1, requested: requests.cpu=2, used: requests.cpu=0, limited: requests.cpu=1"), "{}", describe(&out));
    let small = r#"{"spec":{"containers":[{"name":"p3","image":"busybox:1.36","resources":{"requests":{"cpu":"300m"}}}]}}"#;
    cluster.kubectl_ok(KUBECTL, &["run", "p3", "-n", "q", "--image=busybox:1.36", &format!("--overrides={small}")]);
    assert_eq!(used(&cluster, "requests.cpu").as_deref(), Ok("300m"));
    assert_eq!(used(&cluster, "pods").as_deref(), Ok("1"));
    cluster.kubectl_ok(KUBECTL, &["create", "service", "nodeport", "np", "-n", "q", "--tcp=80:80"]);
    let out = cluster.kubectl(KUBECTL, &["create", "service", "nodeport", "np2", "-n", "q", "--tcp=80:80"]);
    assert!(describe(&out).contains("exceeded quota: q1, requested: services.nodeports=1, used: services.nodeports=1, limited: services.nodeports=1"), "{}", describe(&out));
    // Deleting gives the room back once the controller recounts.
    cluster.kubectl_ok(KUBECTL, &["delete", "configmap", "a", "-n", "q"]);
    eventually("configmaps counted down to 2", || match used(&cluster, "configmaps")?.as_str() {
        "2" => Ok(()),
        other => Err(format!("used configmaps {other:?}")),
    });
    let hard = cluster.kubectl_ok(KUBECTL, &["get", "resourcequota", "q1", "-n", "q", "-o", "jsonpath={.status.hard.pods}"]);
    assert_eq!(hard, "2");
}
