//! A simulated node: its name, place in the address plan and made-up machine facts, reported
//! through what every kubelet writes (ironkube_machinery::node_status).

use std::collections::BTreeMap;

use ironkube_machinery::node_status::{self, NodeFacts, NodeInfo};
use serde_json::Value;

use super::addresses;

pub use ironkube_machinery::node_status::KUBELET_VERSION;
/// The container runtime simulated nodes claim to run.
pub const CONTAINER_RUNTIME_VERSION: &str = "containerd://1.7.27";
/// The label every simulated node carries (`type=simulated`).
pub const SIMULATED_LABEL: (&str, &str) = ("type", "simulated");

/// The resources of one simulated node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    pub cpu: String,
    pub memory: String,
    pub pods: String,
    pub ephemeral_storage: String,
}

impl Default for Capacity {
    fn default() -> Self {
        Capacity { cpu: "32".into(), memory: "256Gi".into(), pods: "110".into(), ephemeral_storage: "100Gi".into() }
    }
}

/// One simulated node: its name and its place in the address plan.
#[derive(Debug, Clone)]
pub struct SimNode {
    pub name: String,
    pub index: usize,
    pub machine_id: String,
    pub boot_id: String,
    pub system_uuid: String,
}

impl SimNode {
    pub fn new(prefix: &str, index: usize) -> Self {
        SimNode {
            name: format!("{prefix}{index}"),
            index,
            machine_id: uuid::Uuid::new_v4().simple().to_string(),
            boot_id: uuid::Uuid::new_v4().to_string(),
            system_uuid: uuid::Uuid::new_v4().to_string(),
        }
    }

    pub fn ip(&self) -> String {
        addresses::node_ip(self.index).to_string()
    }
}

pub use ironkube_machinery::node_status::{LEASE_NAMESPACE, micro_time, time};

/// What a simulated node reports about itself.
pub fn facts(node: &SimNode, capacity: &Capacity) -> NodeFacts {
    let resources = BTreeMap::from(
        [
            ("cpu", capacity.cpu.as_str()),
            ("ephemeral-storage", capacity.ephemeral_storage.as_str()),
            ("hugepages-1Gi", "0"),
            ("hugepages-2Mi", "0"),
            ("memory", capacity.memory.as_str()),
            ("pods", capacity.pods.as_str()),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    NodeFacts {
        name: node.name.clone(),
        internal_ip: node.ip(),
        pod_cidr: Some(addresses::pod_cidr(node.index)),
        extra_labels: BTreeMap::from([(SIMULATED_LABEL.0.to_string(), SIMULATED_LABEL.1.to_string())]),
        capacity: resources.clone(),
        allocatable: resources,
        info: NodeInfo {
            machine_id: node.machine_id.clone(),
            system_uuid: node.system_uuid.clone(),
            boot_id: node.boot_id.clone(),
            kernel_version: "6.1.0-ironkube-simulated".into(),
            os_image: "ironkube simulated node".into(),
            container_runtime_version: CONTAINER_RUNTIME_VERSION.into(),
        },
        kubelet_port: 0,
    }
}

/// The Node a simulated kubelet registers.
pub fn registration(node: &SimNode) -> Value {
    node_status::registration(&facts(node, &Capacity::default()))
}

/// The node status a simulated kubelet reports, with heartbeats at `now`.
pub fn status(node: &SimNode, capacity: &Capacity, now: jiff::Timestamp, previous: Option<&Value>) -> Value {
    node_status::status(&facts(node, capacity), now, previous)
}

/// The node's heartbeat Lease.
pub fn lease(node: &SimNode, node_uid: &str, duration_seconds: i32, now: jiff::Timestamp) -> Value {
    node_status::lease(&node.name, node_uid, duration_seconds, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn status_has_what_a_kubelet_writes() {
        let node = SimNode::new("sim-node-", 2);
        let s = status(&node, &Capacity::default(), at("2025-01-02T03:04:05Z"), None);
        assert_eq!(s["capacity"]["pods"], "110");
        assert_eq!(s["addresses"][0], json!({"type": "InternalIP", "address": "10.244.0.3"}));
        assert_eq!(s["nodeInfo"]["kubeletVersion"], KUBELET_VERSION);
        let types: Vec<&str> = s["conditions"].as_array().expect("conditions").iter().filter_map(|c| c["type"].as_str()).collect();
        assert_eq!(types, ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]);
        assert_eq!(s["conditions"][3]["reason"], "KubeletReady");
        assert_eq!(s["conditions"][3]["lastHeartbeatTime"], "2025-01-02T03:04:05Z");

        let later = status(&node, &Capacity::default(), at("2025-01-02T03:05:05Z"), Some(&s));
        assert_eq!(later["conditions"][3]["lastHeartbeatTime"], "2025-01-02T03:05:05Z");
        assert_eq!(later["conditions"][3]["lastTransitionTime"], "2025-01-02T03:04:05Z");
    }

    #[test]
    fn registration_labels_and_lease() {
        let node = SimNode::new("sim-node-", 0);
        let reg = registration(&node);
        assert_eq!(reg["metadata"]["labels"]["kubernetes.io/hostname"], "sim-node-0");
        assert_eq!(reg["metadata"]["labels"]["type"], "simulated");
        assert_eq!(reg["spec"]["podCIDRs"], json!(["10.128.0.0/24"]));
        let lease = lease(&node, "uid-1", 40, at("2025-01-02T03:04:05.25Z"));
        assert_eq!(lease["spec"]["renewTime"], "2025-01-02T03:04:05.250000Z");
        assert_eq!(lease["metadata"]["ownerReferences"][0]["uid"], "uid-1");
    }
}
