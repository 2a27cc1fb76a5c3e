//! What a kubelet writes about its node, shared by the real kubelet and the simulated nodes:
//! the Node it registers (labels, annotations, pod CIDR), its status (capacity, allocatable,
//! addresses, nodeInfo, the four conditions with the kubelet's reasons and messages) and its
//! heartbeat Lease in `kube-node-lease`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// The kubelet version ironkube's kubelets report (the API server's version).
pub const KUBELET_VERSION: &str = "v1.33.13";
/// The namespace of node heartbeat Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// The port kubelets serve on (reported as daemonEndpoints.kubeletEndpoint).
pub const KUBELET_PORT: u16 = 10250;

/// nodeInfo fields that describe the machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeInfo {
    pub machine_id: String,
    pub system_uuid: String,
    pub boot_id: String,
    pub kernel_version: String,
    pub os_image: String,
    /// `<runtime>://<version>`, e.g. `containerd://1.6.20~ds1`.
    pub container_runtime_version: String,
}

/// Everything a kubelet knows about its node when it reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeFacts {
    pub name: String,
    pub internal_ip: String,
    /// The node's spec.podCIDR, when the kubelet sets it.
    pub pod_cidr: Option<String>,
    /// Labels beyond the well-known os/arch/hostname ones.
    pub extra_labels: BTreeMap<String, String>,
    pub capacity: BTreeMap<String, String>,
    pub allocatable: BTreeMap<String, String>,
    pub info: NodeInfo,
    /// The port the kubelet serves on (`daemonEndpoints.kubeletEndpoint.Port`); 0 reports
    /// the default, [`KUBELET_PORT`].
    pub kubelet_port: u16,
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
pub fn registration(node: &NodeFacts) -> Value {
    let mut labels: BTreeMap<String, String> = [
        ("beta.kubernetes.io/arch", "amd64"),
        ("beta.kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("kubernetes.io/hostname", node.name.as_str()),
        ("kubernetes.io/os", "linux"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    labels.extend(node.extra_labels.clone());
    let mut spec = json!({});
    if let Some(cidr) = &node.pod_cidr {
        spec = json!({"podCIDR": cidr, "podCIDRs": [cidr]});
    }
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
        "spec": spec,
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
pub fn status(node: &NodeFacts, now: jiff::Timestamp, previous: Option<&Value>) -> Value {
    let now = time(now);
    let i = &node.info;
    json!({
        "capacity": node.capacity,
        "allocatable": node.allocatable,
        "conditions": conditions(&now, previous),
        "addresses": [
            {"type": "InternalIP", "address": node.internal_ip},
            {"type": "Hostname", "address": node.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": if node.kubelet_port == 0 { KUBELET_PORT } else { node.kubelet_port }}},
        "nodeInfo": {
            "machineID": i.machine_id,
            "systemUUID": i.system_uuid,
            "bootID": i.boot_id,
            "kernelVersion": i.kernel_version,
            "osImage": i.os_image,
            "containerRuntimeVersion": i.container_runtime_version,
            "kubeletVersion": KUBELET_VERSION,
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    })
}

/// The node's heartbeat Lease, owned by the Node (so deleting the Node deletes it).
pub fn lease(node_name: &str, node_uid: &str, duration_seconds: i32, now: jiff::Timestamp) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": node_name,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid}],
        },
        "spec": {
            "holderIdentity": node_name,
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

    fn facts() -> NodeFacts {
        NodeFacts {
            name: "n1".into(),
            internal_ip: "10.0.0.5".into(),
            pod_cidr: Some("10.244.0.0/24".into()),
            extra_labels: BTreeMap::from([("type".to_string(), "simulated".to_string())]),
            capacity: BTreeMap::from([("pods".to_string(), "110".to_string())]),
            allocatable: BTreeMap::from([("pods".to_string(), "110".to_string())]),
            info: NodeInfo { container_runtime_version: "containerd://1.6.20".into(), ..Default::default() },
            kubelet_port: 0,
        }
    }

    #[test]
    fn status_keeps_transition_times() {
        let s = status(&facts(), at("2025-01-02T03:04:05Z"), None);
        assert_eq!(s["addresses"][0], json!({"type": "InternalIP", "address": "10.0.0.5"}));
        assert_eq!(s["nodeInfo"]["containerRuntimeVersion"], "containerd://1.6.20");
        assert_eq!(s["daemonEndpoints"]["kubeletEndpoint"]["Port"], KUBELET_PORT);
        let elsewhere = status(&NodeFacts { kubelet_port: 10255, ..facts() }, at("2025-01-02T03:04:05Z"), None);
        assert_eq!(elsewhere["daemonEndpoints"]["kubeletEndpoint"]["Port"], 10255);
        let types: Vec<&str> = s["conditions"].as_array().expect("conditions").iter().filter_map(|c| c["type"].as_str()).collect();
        assert_eq!(types, ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]);
        let later = status(&facts(), at("2025-01-02T03:05:05Z"), Some(&s));
        assert_eq!(later["conditions"][3]["lastHeartbeatTime"], "2025-01-02T03:05:05Z");
        assert_eq!(later["conditions"][3]["lastTransitionTime"], "2025-01-02T03:04:05Z");
    }

    #[test]
    fn registration_and_lease() {
        let reg = registration(&facts());
        assert_eq!(reg["metadata"]["labels"]["kubernetes.io/hostname"], "n1");
        assert_eq!(reg["metadata"]["labels"]["type"], "simulated");
        assert_eq!(reg["spec"]["podCIDRs"], json!(["10.244.0.0/24"]));
        let no_cidr = registration(&NodeFacts { pod_cidr: None, ..facts() });
        assert_eq!(no_cidr["spec"], json!({}));
        let l = lease("n1", "uid-1", 40, at("2025-01-02T03:04:05.25Z"));
        assert_eq!(l["spec"]["renewTime"], "2025-01-02T03:04:05.250000Z");
        assert_eq!(l["metadata"]["ownerReferences"][0]["uid"], "uid-1");
    }
}
