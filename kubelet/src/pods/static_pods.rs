//! Static pods: Pod manifests in the kubelet's `--pod-manifest-path`, run without the API
//! server (the way kubeadm runs the control plane), each mirrored to the API server by a
//! mirror pod so `kubectl` sees it, as upstream's file source and mirror client do.
//!
//! A manifest's pod is named `<name>-<node>`, lives in `default` unless it says otherwise,
//! is bound to this node and tolerates every NoExecute taint; its UID is a hash of the file's
//! path, the node and the manifest, also written as `kubernetes.io/config.hash`. The mirror
//! pod carries `kubernetes.io/config.mirror` = that hash and an owner reference to the Node;
//! the API server's ServiceAccount admission leaves such pods alone. The kubelet reads only
//! a few defaulted fields, so those are defaulted here (the mirror pod gets the API server's
//! full defaulting when it is created).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use tracing::warn;

pub const CONFIG_HASH: &str = "kubernetes.io/config.hash";
pub const CONFIG_SOURCE: &str = "kubernetes.io/config.source";
pub const CONFIG_SEEN: &str = "kubernetes.io/config.seen";
pub const CONFIG_MIRROR: &str = "kubernetes.io/config.mirror";

/// Why a manifest is not a pod the kubelet runs.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a Pod manifest: {message}")]
    Decode { path: PathBuf, message: String },
    #[error("{path}: the pod has no name")]
    NoName { path: PathBuf },
}

/// Whether `pod` came from a manifest file.
pub fn is_static(pod: &Pod) -> bool {
    pod.metadata.annotations.as_ref().and_then(|a| a.get(CONFIG_SOURCE)).is_some_and(|s| s == "file")
}

/// Whether `pod` is a mirror pod (the API server's copy of a static pod).
pub fn is_mirror(pod: &Pod) -> bool {
    pod.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(CONFIG_MIRROR))
}

/// 128 bits of FNV-1a over `data`, in hex (two 64-bit lanes with different offsets).
fn hash_hex(data: &[u8]) -> String {
    let lane = |mut h: u64| {
        for b in data {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    };
    format!("{:016x}{:016x}", lane(0xcbf2_9ce4_8422_2325), lane(0x8422_2325_cbf2_9ce4))
}

/// The fields the kubelet reads, defaulted as the API server would.
fn local_defaults(pod: &mut Pod) {
    let Some(spec) = pod.spec.as_mut() else { return };
    spec.restart_policy.get_or_insert_with(|| "Always".into());
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.dns_policy.get_or_insert_with(|| "ClusterFirst".into());
    spec.enable_service_links.get_or_insert(true);
    spec.security_context.get_or_insert_with(Default::default);
    spec.scheduler_name.get_or_insert_with(|| "default-scheduler".into());
    for c in spec.init_containers.iter_mut().flatten().chain(spec.containers.iter_mut()) {
        let image = c.image.clone().unwrap_or_default();
        let last = image.rsplit('/').next().unwrap_or("");
        let latest = !image.contains('@') && (!last.contains(':') || last.ends_with(":latest"));
        c.image_pull_policy.get_or_insert_with(|| if latest { "Always" } else { "IfNotPresent" }.into());
        c.termination_message_path.get_or_insert_with(|| "/dev/termination-log".into());
        c.termination_message_policy.get_or_insert_with(|| "File".into());
    }
}

/// The pod a manifest file describes on `node`.
pub fn from_manifest(path: &Path, text: &str, node: &str, seen: &str) -> Result<Pod, ManifestError> {
    let value: serde_json::Value = serde_saphyr::from_str(text).map_err(|e| ManifestError::Decode { path: path.into(), message: e.to_string() })?;
    if value.get("kind").and_then(|k| k.as_str()).is_some_and(|k| k != "Pod") {
        return Err(ManifestError::Decode { path: path.into(), message: format!("kind {} is not Pod", value["kind"]) });
    }
    let canonical = serde_json::to_vec(&value).unwrap_or_default();
    let mut pod: Pod = serde_json::from_value(value).map_err(|e| ManifestError::Decode { path: path.into(), message: e.to_string() })?;
    let name = pod.metadata.name.clone().filter(|n| !n.is_empty()).ok_or_else(|| ManifestError::NoName { path: path.into() })?;
    let uid = match pod.metadata.uid.clone().filter(|u| !u.is_empty()) {
        Some(uid) => uid,
        None => {
            let mut input = path.display().to_string().into_bytes();
            input.extend_from_slice(node.as_bytes());
            input.extend_from_slice(&canonical);
            hash_hex(&input)
        }
    };
    let m = &mut pod.metadata;
    m.name = Some(format!("{name}-{}", node.to_lowercase()));
    m.namespace = Some(m.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into()));
    m.uid = Some(uid.clone());
    let annotations = m.annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(CONFIG_HASH.into(), uid);
    annotations.insert(CONFIG_SOURCE.into(), "file".into());
    annotations.insert(CONFIG_SEEN.into(), seen.into());
    if let Some(spec) = pod.spec.as_mut() {
        spec.node_name = Some(node.into());
        spec.tolerations.get_or_insert_with(Vec::new).push(Toleration { operator: Some("Exists".into()), effect: Some("NoExecute".into()), ..Default::default() });
    }
    local_defaults(&mut pod);
    Ok(pod)
}

/// Every pod of the manifest directory, by UID; files that do not parse are logged and
/// skipped, as upstream's file source does.
pub fn read_dir(dir: &Path, node: &str, seen: &HashMap<PathBuf, String>) -> HashMap<String, (PathBuf, Arc<Pod>)> {
    let mut out = HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
    paths.sort();
    for path in paths {
        if path.file_name().and_then(|n| n.to_str()).is_none_or(|n| n.starts_with('.')) {
            continue;
        }
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(source) => {
                warn!(error = %ManifestError::Read { path: path.clone(), source }, "skipping a static pod manifest");
                continue;
            }
        };
        let first_seen = seen.get(&path).cloned().unwrap_or_else(|| jiff::Timestamp::now().to_string());
        match from_manifest(&path, &text, node, &first_seen) {
            Ok(pod) => {
                if let Some(uid) = pod.metadata.uid.clone() {
                    out.insert(uid, (path, Arc::new(pod)));
                }
            }
            Err(e) => warn!(error = %e, "skipping a static pod manifest"),
        }
    }
    out
}

/// The mirror pod of a static pod: its spec and metadata, the mirror annotation, owned by
/// the Node.
pub fn mirror(pod: &Pod, node: &Node) -> Pod {
    let mut mirror = pod.clone();
    let m = &mut mirror.metadata;
    let hash = m.uid.take().unwrap_or_default();
    m.resource_version = None;
    m.annotations.get_or_insert_with(BTreeMap::new).insert(CONFIG_MIRROR.into(), hash);
    if let (Some(name), Some(uid)) = (node.metadata.name.clone(), node.metadata.uid.clone()) {
        m.owner_references = Some(vec![OwnerReference { api_version: "v1".into(), kind: "Node".into(), name, uid, controller: Some(true), ..Default::default() }]);
    }
    mirror.status = None;
    mirror
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n    image: busybox:1.36\n";

    #[test]
    fn manifests_become_node_pods() {
        let pod = from_manifest(Path::new("/etc/kubernetes/manifests/web.yaml"), MANIFEST, "Node-1", "t").expect("pod");
        let m = &pod.metadata;
        assert_eq!((m.name.as_deref(), m.namespace.as_deref()), (Some("web-node-1"), Some("default")));
        let uid = m.uid.clone().expect("uid");
        assert_eq!(uid.len(), 32);
        let a = m.annotations.clone().unwrap_or_default();
        assert_eq!(a.get(CONFIG_HASH), Some(&uid));
        assert_eq!(a.get(CONFIG_SOURCE).map(String::as_str), Some("file"));
        assert!(is_static(&pod) && !is_mirror(&pod));
        let spec = pod.spec.as_ref().expect("spec");
        assert_eq!(spec.node_name.as_deref(), Some("Node-1"));
        assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
        assert_eq!(spec.containers[0].image_pull_policy.as_deref(), Some("IfNotPresent"));
        assert_eq!(spec.tolerations.as_ref().map(|t| t.len()), Some(1));
        // The same file gives the same UID; another file or another content another one.
        let again = from_manifest(Path::new("/etc/kubernetes/manifests/web.yaml"), MANIFEST, "Node-1", "t2").expect("pod");
        assert_eq!(again.metadata.uid.as_deref(), Some(uid.as_str()));
        let other = from_manifest(Path::new("/etc/kubernetes/manifests/web.yaml"), &MANIFEST.replace("1.36", "1.37"), "Node-1", "t").expect("pod");
        assert_ne!(other.metadata.uid.as_deref(), Some(uid.as_str()));
        assert!(from_manifest(Path::new("x"), "kind: Service\nmetadata: {name: s}\n", "n", "t").is_err());
        assert!(from_manifest(Path::new("x"), "kind: Pod\nspec: {containers: []}\n", "n", "t").is_err());
    }

    #[test]
    fn mirror_pods_carry_the_hash_and_the_node() {
        let pod = from_manifest(Path::new("/m/web.yaml"), MANIFEST, "n1", "t").expect("pod");
        let node: Node = serde_json::from_value(serde_json::json!({"metadata": {"name": "n1", "uid": "node-uid"}})).expect("node");
        let m = mirror(&pod, &node);
        assert_eq!(m.metadata.uid, None);
        assert!(is_mirror(&m));
        assert_eq!(m.metadata.annotations.as_ref().and_then(|a| a.get(CONFIG_MIRROR)), pod.metadata.uid.as_ref());
        let owner = &m.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!((owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()), ("Node", "n1", "node-uid"));
    }
}
