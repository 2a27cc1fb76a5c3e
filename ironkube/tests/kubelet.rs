//! The kubelet against the real API server and a real containerd: `ironkube kubelet`
//! registers its Node with the machine's facts and the runtime's version, keeps it Ready and
//! renews its Lease in kube-node-lease.
//!
//! Needs root and containerd (see testkit's TestContainerd); `hack/test.sh` provides both.

mod support;

use std::process::{Child, Command, Stdio};

use ironkube_testkit::containerd::TestContainerd;
use support::{Ironkube, eventually};

const NODE: &str = "kubelet-test-node";

/// The kubelet child; SIGKILLed on drop.
struct Kubelet(Child);

impl Drop for Kubelet {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn kubelet_registers_a_ready_node_and_renews_its_lease() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cluster = Ironkube::up(&dir.path().join("data"));
    let ctd = TestContainerd::start("ikt1", "10.251.0.0/24");
    let log = std::fs::File::create(dir.path().join("kubelet.log")).expect("kubelet log");
    let child = Command::new(env!("CARGO_BIN_EXE_ironkube"))
        .arg("kubelet")
        .arg(format!("--kubeconfig={}", cluster.kubeconfig.display()))
        .arg(format!("--hostname-override={NODE}"))
        .arg("--node-ip=127.0.0.1")
        .arg(format!("--container-runtime-endpoint={}", ctd.config.endpoint()))
        .arg("--pod-cidr=10.251.0.0/24")
        .arg(format!("--root-dir={}", dir.path().display()))
        .arg("--node-lease-duration-seconds=4")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawning ironkube kubelet");
    let _kubelet = Kubelet(child);

    let node = eventually("the kubelet registers a Ready node", || {
        let node = cluster.kubectl_json("1.33", &["get", "node", NODE])?;
        let ready = node["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True");
        if ready { Ok(node) } else { Err(format!("not Ready yet: {}", node["status"])) }
    });
    let info = &node["status"]["nodeInfo"];
    let runtime = info["containerRuntimeVersion"].as_str().unwrap_or("");
    assert!(runtime.starts_with("containerd://1."), "containerRuntimeVersion {runtime:?}");
    assert_eq!(info["kubeletVersion"], "v1.33.13");
    assert_eq!(node["spec"]["podCIDR"], "10.251.0.0/24");
    assert_eq!(node["metadata"]["labels"]["kubernetes.io/hostname"], NODE);
    assert_eq!(node["status"]["addresses"][0], serde_json::json!({"type": "InternalIP", "address": "127.0.0.1"}));
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).to_string();
    assert_eq!(node["status"]["capacity"]["cpu"], cpus.as_str());
    assert_eq!(node["status"]["capacity"]["pods"], "110");

    // The Lease is held by the node and renewed (every duration/4 = 1 s here).
    let first = eventually("the node's Lease exists", || {
        let lease = cluster.kubectl_json("1.33", &["get", "lease", "-n", "kube-node-lease", NODE])?;
        assert_eq!(lease["spec"]["holderIdentity"], NODE);
        assert_eq!(lease["metadata"]["ownerReferences"][0]["name"], NODE);
        Ok(lease["spec"]["renewTime"].as_str().unwrap_or("").to_string())
    });
    eventually("the Lease is renewed", || {
        let lease = cluster.kubectl_json("1.33", &["get", "lease", "-n", "kube-node-lease", NODE])?;
        let renewed = lease["spec"]["renewTime"].as_str().unwrap_or("").to_string();
        if renewed > first { Ok(()) } else { Err(format!("renewTime still {renewed}")) }
    });
    let wide = cluster.kubectl_ok("1.32", &["get", "node", NODE, "-o", "wide", "--no-headers"]);
    assert!(wide.contains("Ready") && wide.contains("containerd://"), "{wide}");
}
