//! What a kubelet writes about its node: the Node itself (labels, pod CIDR), its status
//! (capacity, addresses, nodeInfo, the four conditions with the kubelet's reasons and
//! messages) and its heartbeat Lease in `kube-node-lease`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::addresses;

/// The kubelet version simulated nodes report (the API server's version).
pub const KUBELET_VERSION: &str = "v1.33.13";
/// The container runtime simulated nodes claim to run.
pub const CONTAINER_RUNTIME_VERSION: &str = "containerd://1.7.27";
/// The namespace of node heartbeat Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
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

/// RFC 3339 with seconds, as `metav1.Time` serializes.
pub fn time(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// RFC 3339 with microseconds, as `metav1.MicroTime` serializes.
pub fn micro_time(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The Node a kubelet registers (metadata and spec; the status comes with [`status`]).
pub fn registration(node: &SimNode) -> Value {
    let labels = BTreeMap::from([
        ("beta.kubernetes.io/arch", "amd64"),
        ("beta.kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("kubernetes.io/hostname", node.name.as_str()),
        ("kubernetes.io/os", "linux"),
        SIMULATED_LABEL,
    ]);
    let cidr = addresses::pod_cidr(node.index);
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "labels": labels,
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
    })
}

/// The kubelet's four node conditions, in the kubelet's order. `previous` keeps each
/// condition's lastTransitionTime while its status is unchanged.
fn conditions(now: &str, previous: Option<&Value>) -> Value {
    let kept = |kind: &str, status: &str| -> String {
        previous
            .and_then(|p| p["conditions"].as_array())
            .and_then(|cs| cs.iter().find(|c| c["type"] == kind && c["status"] == status))
            .and_then(|c| c["lastTransitionTime"].as_str())
            .unwrap_or(now)
            .to_string()
    };
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({
            "type": kind,
            "status": status,
            "lastHeartbeatTime": now,
            "lastTransitionTime": kept(kind, status),
            "reason": reason,
            "message": message,
        })
    };
    json!([
        condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ])
}

/// The node status a kubelet reports, with heartbeats at `now`.
pub fn status(node: &SimNode, capacity: &Capacity, now: jiff::Timestamp, previous: Option<&Value>) -> Value {
    let now = time(now);
    let resources = json!({
        "cpu": capacity.cpu,
        "ephemeral-storage": capacity.ephemeral_storage,
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": capacity.memory,
        "pods": capacity.pods,
    });
    json!({
        "capacity": resources,
        "allocatable": resources,
        "conditions": conditions(&now, previous),
        "addresses": [
            {"type": "InternalIP", "address": node.ip()},
            {"type": "Hostname", "address": node.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": node.machine_id,
            "systemUUID": node.system_uuid,
            "bootID": node.boot_id,
            "kernelVersion": "6.1.0-ironkube-simulated",
            "osImage": "ironkube simulated node",
            "containerRuntimeVersion": CONTAINER_RUNTIME_VERSION,
            "kubeletVersion": KUBELET_VERSION,
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    })
}

/// The node's heartbeat Lease, owned by the Node (so deleting the Node deletes it).
pub fn lease(node: &SimNode, node_uid: &str, duration_seconds: i32, now: jiff::Timestamp) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": node.name,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node.name, "uid": node_uid}],
        },
        "spec": {
            "holderIdentity": node.name,
            "leaseDurationSeconds": duration_seconds,
            "renewTime": micro_time(now),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
