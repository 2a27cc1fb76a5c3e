//! Admission against upstream's recorded answers: the ServiceAccount, Priority and
//! DefaultTolerationSeconds plugins give a new pod the spec upstream kube-apiserver v1.33.13
//! gives it, and refuse what it refuses with the same texts (`testdata/admission/`,
//! recorded by running `cases.sh` against upstream).

mod support;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use support::{Ironkube, describe, eventually, kubectl_binary};

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/admission").join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(testdata(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

/// Token volume names end in five random characters.
fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("kube-api-access-") {
        let end = i + "kube-api-access-".len();
        out.push_str(&rest[..end]);
        out.push('*');
        let tail = &rest[end..];
        let skip = tail.chars().take_while(char::is_ascii_alphanumeric).count().min(5);
        rest = &tail[skip..];
    }
    out.push_str(rest);
    out
}

fn wait_for_default_service_account(cluster: &Ironkube) {
    eventually("the default ServiceAccount", || {
        let out = cluster.kubectl("1.33", &["get", "serviceaccount", "default", "-n", "default"]);
        if out.status.success() { Ok(()) } else { Err(describe(&out)) }
    });
}

#[test]
fn a_new_pod_gets_upstreams_admitted_spec() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = Ironkube::up(&tmp.path().join("data"));
    wait_for_default_service_account(&cluster);
    let manifest = testdata("pod.yaml").display().to_string();
    let created = cluster.kubectl_ok("1.33", &["create", "-f", &manifest, "-o", "json"]);
    let pod: Value = serde_json::from_str(&created).unwrap_or_else(|e| panic!("no JSON ({e}): {created}"));
    let got: Value = serde_json::from_str(&normalize(&pod["spec"].to_string())).expect("normalized JSON");
    let want: Value = serde_json::from_str(&read("pod-spec.upstream.json")).expect("golden JSON");
    assert_eq!(got, want, "got\n{}\nwant\n{}", serde_json::to_string_pretty(&got).unwrap_or_default(), serde_json::to_string_pretty(&want).unwrap_or_default());
}

#[test]
fn refusals_and_defaults_match_upstream() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = Ironkube::up(&tmp.path().join("data"));
    wait_for_default_service_account(&cluster);
    let output = Command::new("bash")
        .arg(testdata("cases.sh"))
        .arg(&cluster.kubeconfig)
        .env("KUBECTL", kubectl_binary("1.33"))
        .env("KUBECACHEDIR", &cluster.cache_dir)
        .output()
        .expect("running cases.sh");
    let got = String::from_utf8_lossy(&output.stdout);
    let want = read("cases.upstream.txt");
    let (got_lines, want_lines): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
    for (i, w) in want_lines.iter().enumerate() {
        assert_eq!(got_lines.get(i), Some(w), "case line {} differs; all of it:\n{got}\n{}", i + 1, cluster.log_tail());
    }
    assert_eq!(got_lines.len(), want_lines.len(), "extra lines:\n{got}");
}
