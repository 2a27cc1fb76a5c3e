//! The kubelet's Node: facts read from the machine and the runtime, registration, status
//! reports and the heartbeat Lease. The API calls take [`NodeFacts`], so the simulated nodes
//! (controllers/src/simnode) register and heartbeat through the same code.

use std::collections::BTreeMap;
use std::path::Path;

use ironkube_machinery::node_status::{self, LEASE_NAMESPACE, NodeFacts, NodeInfo};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tracing::warn;

/// Pods a node takes (the kubelet's --max-pods default).
pub const MAX_PODS: u32 = 110;
/// The eviction thresholds upstream's kubelet keeps out of allocatable by default
/// (`memory.available<100Mi`, `nodefs.available<10%`).
const EVICTION_MEMORY_BYTES: u64 = 100 * 1024 * 1024;
const EVICTION_NODEFS_PERCENT: u64 = 10;

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_default()
}

/// MemTotal from /proc/meminfo, in bytes.
fn memory_bytes(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .unwrap_or(0)
}

/// PRETTY_NAME from os-release.
fn os_image(os_release: &str) -> String {
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

/// Bytes as a Kubernetes quantity in Ki, as cAdvisor-derived capacity reads.
fn kibibytes(bytes: u64) -> String {
    format!("{}Ki", bytes / 1024)
}

/// Size of the file system holding `dir`, in bytes (0 if it cannot be read).
fn filesystem_bytes(dir: &Path) -> u64 {
    rustix::fs::statvfs(dir).map(|s| s.f_blocks * s.f_frsize).unwrap_or(0)
}

/// The facts of the machine the kubelet runs on.
pub fn machine_facts(name: &str, internal_ip: &str, pod_cidr: Option<&str>, root_dir: &Path, runtime_version: &str) -> NodeFacts {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let memory = memory_bytes(&std::fs::read_to_string("/proc/meminfo").unwrap_or_default());
    let storage = filesystem_bytes(root_dir);
    let resources = |memory: u64, storage: u64| -> BTreeMap<String, String> {
        BTreeMap::from(
            [
                ("cpu", cpus.to_string()),
                ("ephemeral-storage", kibibytes(storage)),
                ("hugepages-1Gi", "0".into()),
                ("hugepages-2Mi", "0".into()),
                ("memory", kibibytes(memory)),
                ("pods", MAX_PODS.to_string()),
            ]
            .map(|(k, v)| (k.to_string(), v)),
        )
    };
    let allocatable_storage = storage - storage * EVICTION_NODEFS_PERCENT / 100;
    NodeFacts {
        name: name.to_string(),
        internal_ip: internal_ip.to_string(),
        pod_cidr: pod_cidr.map(str::to_string),
        extra_labels: BTreeMap::new(),
        capacity: resources(memory, storage),
        // Ki rounding as upstream: allocatable ephemeral-storage is a plain byte count there.
        allocatable: {
            let mut a = resources(memory.saturating_sub(EVICTION_MEMORY_BYTES), storage);
            a.insert("ephemeral-storage".into(), allocatable_storage.to_string());
            a
        },
        info: NodeInfo {
            machine_id: read_trimmed("/etc/machine-id"),
            system_uuid: read_trimmed("/sys/class/dmi/id/product_uuid"),
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
            kernel_version: read_trimmed("/proc/sys/kernel/osrelease"),
            os_image: os_image(&std::fs::read_to_string("/etc/os-release").unwrap_or_default()),
            container_runtime_version: runtime_version.to_string(),
        },
        // The default port; the kubelet sets the one it serves on.
        kubelet_port: 0,
    }
}

/// Creates the Node (or takes the existing one) and reports its status; returns its UID.
pub async fn register(client: &kube::Client, facts: &NodeFacts, manager: &str) -> Result<String, kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let wanted: Node = serde_json::from_value(node_status::registration(facts)).map_err(kube::Error::SerdeError)?;
    let created = match nodes.create(&PostParams { field_manager: Some(manager.into()), ..Default::default() }, &wanted).await {
        Ok(n) => n,
        Err(kube::Error::Api(e)) if e.code == 409 => nodes.get(&facts.name).await?,
        Err(e) => return Err(e),
    };
    let previous = created.status.as_ref().and_then(|s| serde_json::to_value(s).ok());
    let status = node_status::status(facts, jiff::Timestamp::now(), previous.as_ref());
    nodes.patch_status(&facts.name, &PatchParams::default(), &Patch::Merge(json!({"status": status}))).await?;
    Ok(created.metadata.uid.unwrap_or_default())
}

/// Re-reports the node's status (keeping condition transition times); registers the node
/// again if it was deleted.
pub async fn report_status(client: &kube::Client, facts: &NodeFacts, manager: &str) -> Result<(), kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let Some(current) = nodes.get_opt(&facts.name).await? else {
        warn!(node = %facts.name, "node is gone; registering it again");
        register(client, facts, manager).await?;
        return Ok(());
    };
    let previous = current.status.as_ref().and_then(|s| serde_json::to_value(s).ok());
    let status = node_status::status(facts, jiff::Timestamp::now(), previous.as_ref());
    nodes.patch_status(&facts.name, &PatchParams::default(), &Patch::Merge(json!({"status": status}))).await?;
    Ok(())
}

/// Renews (or creates) the node's Lease.
pub async fn renew_lease(client: &kube::Client, node: &str, uid: &str, duration: i32, manager: &str) -> Result<(), kube::Error> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let now = jiff::Timestamp::now();
    let patch = json!({"spec": {"holderIdentity": node, "leaseDurationSeconds": duration, "renewTime": node_status::micro_time(now)}});
    match leases.patch(node, &PatchParams::default(), &Patch::Merge(patch)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => {
            let lease: Lease = serde_json::from_value(node_status::lease(node, uid, duration, now)).map_err(kube::Error::SerdeError)?;
            match leases.create(&PostParams { field_manager: Some(manager.into()), ..Default::default() }, &lease).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_parse() {
        assert_eq!(memory_bytes("MemTotal:       24576000 kB\nMemFree: 1 kB\n"), 24_576_000 * 1024);
        assert_eq!(memory_bytes("garbage"), 0);
        assert_eq!(os_image("NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"), "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(kibibytes(2048), "2Ki");
    }

    #[test]
    fn this_machine_has_capacity() {
        let f = machine_facts("n", "10.0.0.1", Some("10.244.0.0/24"), Path::new("/"), "containerd://1.6.20");
        assert_ne!(f.capacity["memory"], "0Ki");
        assert_eq!(f.capacity["pods"], "110");
        assert!(f.info.kernel_version.chars().next().is_some_and(|c| c.is_ascii_digit()), "{:?}", f.info.kernel_version);
        let cap: u64 = f.capacity["memory"].trim_end_matches("Ki").parse().expect("Ki");
        let alloc: u64 = f.allocatable["memory"].trim_end_matches("Ki").parse().expect("Ki");
        assert_eq!(cap - alloc, 100 * 1024, "allocatable keeps the 100Mi eviction threshold out");
    }
}
