//! The differential scenarios (`conformance/differential/scenarios/*.sh`) against ironkube,
//! compared with what upstream's control plane v1.33.13 printed for them
//! (`<name>.upstream`, recorded by `conformance/differential/run.sh --update`). Scenarios
//! listed in `KNOWN-DIFFERENCES` (with the reason) are run but not compared: they are what
//! ironkube still gets wrong.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{Ironkube, describe, eventually, kubectl_binary};

fn differential_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/differential")
}

fn known_differences() -> BTreeSet<String> {
    let path = differential_dir().join("scenarios/KNOWN-DIFFERENCES");
    std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split('#').next())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn scenarios_print_what_upstream_printed() {
    let dir = differential_dir();
    let mut scenarios: Vec<String> = std::fs::read_dir(dir.join("scenarios"))
        .expect("reading the scenarios")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".upstream")).map(str::to_string))
        .collect();
    scenarios.sort();
    assert!(!scenarios.is_empty(), "no recorded scenarios in {}", dir.display());
    let known = known_differences();

    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = Ironkube::up(&tmp.path().join("data"));
    eventually("the system namespaces' default ServiceAccounts", || {
        let out = cluster.kubectl("1.33", &["get", "serviceaccount", "default", "-n", "kube-system"]);
        if out.status.success() { Ok(()) } else { Err(describe(&out)) }
    });
    let mut failures = Vec::new();
    let mut compared = 0;
    for name in &scenarios {
        let output = Command::new("bash")
            .arg(dir.join("run-scenario.sh"))
            .arg(&cluster.kubeconfig)
            .arg(dir.join(format!("scenarios/{name}.sh")))
            .env("KUBECTL", kubectl_binary("1.33"))
            .env("KUBECACHEDIR", &cluster.cache_dir)
            .output()
            .expect("running run-scenario.sh");
        assert!(output.status.success(), "scenario {name} did not run: {}", describe(&output));
        if known.contains(name) {
            continue;
        }
        compared += 1;
        let got = String::from_utf8_lossy(&output.stdout).to_string();
        let want = std::fs::read_to_string(dir.join(format!("scenarios/{name}.upstream"))).unwrap_or_default();
        if got != want {
            let first = got.lines().zip(want.lines()).enumerate().find(|(_, (g, w))| g != w);
            let at = match first {
                Some((i, (g, w))) => format!("line {}: ironkube {g:?}, upstream {w:?}", i + 1),
                None => format!("ironkube printed {} lines, upstream {}", got.lines().count(), want.lines().count()),
            };
            failures.push(format!("{name}: {at}"));
        }
    }
    assert!(compared > 0, "every scenario is a known difference");
    assert!(failures.is_empty(), "scenarios that differ from upstream:\n{}", failures.join("\n"));
}
