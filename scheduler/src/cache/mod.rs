//! The scheduler's cache: nodes and the pods assigned to them, fed by the informers, plus
//! pods assumed on a node between Reserve and the binding becoming visible. Each cycle
//! takes a [`Snapshot`]; node infos are shared copy-on-write so a snapshot costs one
//! pointer per node.

mod snapshot;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::api::core::v1::{Node, Pod};

pub use snapshot::Snapshot;

use crate::framework::node_info::{NodeExt, NodeInfo, PodExt, PodInfo};

/// Why the cache refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("pod {0} is in the cache, so can't be assumed")]
    AlreadyInCache(String),
    #[error("pod {0} was assumed on {1} but assigned to {2}")]
    AssumedElsewhere(String, String, String),
}

/// Upstream's zone key: region and zone labels (GA or beta names).
pub fn zone_key(node: &Node) -> String {
    let labels = node.labels();
    let get = |ga: &str, beta: &str| labels.get(ga).or_else(|| labels.get(beta)).cloned().unwrap_or_default();
    let region = get("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region");
    let zone = get("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone");
    if region.is_empty() && zone.is_empty() {
        return String::new();
    }
    format!("{region}:\x00:{zone}")
}

/// Nodes by zone, walked round-robin across zones so consecutive nodes spread over zones.
#[derive(Debug, Default)]
struct NodeTree {
    zones: Vec<String>,
    by_zone: HashMap<String, Vec<String>>,
}

impl NodeTree {
    fn add(&mut self, zone: &str, name: &str) {
        let list = self.by_zone.entry(zone.to_string()).or_insert_with(|| {
            self.zones.push(zone.to_string());
            Vec::new()
        });
        if !list.iter().any(|n| n == name) {
            list.push(name.to_string());
        }
    }

    fn remove(&mut self, zone: &str, name: &str) {
        if let Some(list) = self.by_zone.get_mut(zone) {
            list.retain(|n| n != name);
            if list.is_empty() {
                self.by_zone.remove(zone);
                self.zones.retain(|z| z != zone);
            }
        }
    }

    fn list(&self) -> Vec<&str> {
        let mut out = Vec::new();
        let mut i = 0;
        loop {
            let mut any = false;
            for z in &self.zones {
                if let Some(n) = self.by_zone.get(z).and_then(|l| l.get(i)) {
                    out.push(n.as_str());
                    any = true;
                }
            }
            if !any {
                return out;
            }
            i += 1;
        }
    }
}

#[derive(Debug)]
struct PodState {
    pod: Arc<Pod>,
    node: String,
    assumed: bool,
    binding_finished: bool,
}

#[derive(Debug, Default)]
struct Inner {
    nodes: HashMap<String, Arc<NodeInfo>>,
    zones: HashMap<String, String>,
    tree: NodeTree,
    pods: HashMap<String, PodState>,
    image_nodes: HashMap<String, HashSet<String>>,
    snapshot: Option<Arc<Snapshot>>,
}

impl Inner {
    fn node_mut(&mut self, name: &str) -> &mut NodeInfo {
        self.snapshot = None;
        Arc::make_mut(self.nodes.entry(name.to_string()).or_default())
    }

    fn add_pod_to_node(&mut self, pod: Arc<Pod>) {
        let node = pod.node_name().to_string();
        self.node_mut(&node).add_pod_info(Arc::new(PodInfo::new(pod)));
    }

    fn remove_pod_from_node(&mut self, uid: &str, node: &str) {
        if self.nodes.contains_key(node) {
            let info = self.node_mut(node);
            info.remove_pod(uid);
            if !info.has_node() && info.pods.is_empty() {
                self.nodes.remove(node);
            }
        }
    }

    fn set_images(&mut self, node: &str, images: Option<Vec<String>>) {
        for set in self.image_nodes.values_mut() {
            set.remove(node);
        }
        self.image_nodes.retain(|_, s| !s.is_empty());
        for name in images.into_iter().flatten() {
            self.image_nodes.entry(name).or_default().insert(node.to_string());
        }
    }
}

/// The cache, safe to share between the informers and the scheduling loop.
#[derive(Debug, Default)]
pub struct Cache {
    inner: Mutex<Inner>,
}

impl Cache {
    pub fn new() -> Self {
        Cache::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add_node(&self, node: Arc<Node>) {
        let mut inner = self.lock();
        let name = node.name().to_string();
        let zone = zone_key(&node);
        if let Some(old_zone) = inner.zones.insert(name.clone(), zone.clone()) {
            if old_zone != zone {
                inner.tree.remove(&old_zone, &name);
            }
        }
        inner.tree.add(&zone, &name);
        let images: Vec<String> = node.status.as_ref().and_then(|s| s.images.as_ref()).into_iter().flatten().flat_map(|i| i.names.iter().flatten().cloned()).collect();
        inner.set_images(&name, Some(images));
        inner.node_mut(&name).set_node(node);
    }

    pub fn update_node(&self, node: Arc<Node>) {
        self.add_node(node);
    }

    pub fn remove_node(&self, name: &str) {
        let mut inner = self.lock();
        if let Some(zone) = inner.zones.remove(name) {
            inner.tree.remove(&zone, name);
        }
        inner.set_images(name, None);
        if inner.nodes.contains_key(name) {
            let info = inner.node_mut(name);
            info.remove_node();
            if info.pods.is_empty() {
                inner.nodes.remove(name);
            }
        }
    }

    /// A pod bound to a node appeared (or an assumed pod's binding became visible).
    pub fn add_pod(&self, pod: Arc<Pod>) {
        let mut inner = self.lock();
        let uid = pod.uid().to_string();
        if let Some(state) = inner.pods.get(&uid) {
            let old_node = state.node.clone();
            inner.remove_pod_from_node(&uid, &old_node);
        }
        let node = pod.node_name().to_string();
        inner.add_pod_to_node(pod.clone());
        inner.pods.insert(uid, PodState { pod, node, assumed: false, binding_finished: false });
    }

    pub fn update_pod(&self, pod: Arc<Pod>) {
        self.add_pod(pod);
    }

    pub fn remove_pod(&self, uid: &str) {
        let mut inner = self.lock();
        if let Some(state) = inner.pods.remove(uid) {
            inner.remove_pod_from_node(uid, &state.node);
        }
    }

    /// Counts `pod` (with `spec.nodeName` set to its chosen node) on that node until its
    /// binding shows up or it is forgotten.
    pub fn assume_pod(&self, pod: Arc<Pod>) -> Result<(), Error> {
        let mut inner = self.lock();
        let uid = pod.uid().to_string();
        if inner.pods.contains_key(&uid) {
            return Err(Error::AlreadyInCache(format!("{}/{}", pod.namespace(), pod.name())));
        }
        let node = pod.node_name().to_string();
        inner.add_pod_to_node(pod.clone());
        inner.pods.insert(uid, PodState { pod, node, assumed: true, binding_finished: false });
        Ok(())
    }

    pub fn finish_binding(&self, uid: &str) {
        if let Some(state) = self.lock().pods.get_mut(uid) {
            state.binding_finished = true;
        }
    }

    /// Drops an assumed pod whose binding failed.
    pub fn forget_pod(&self, uid: &str) {
        let mut inner = self.lock();
        if inner.pods.get(uid).is_some_and(|s| s.assumed) {
            if let Some(state) = inner.pods.remove(uid) {
                inner.remove_pod_from_node(uid, &state.node);
            }
        }
    }

    pub fn is_assumed(&self, uid: &str) -> bool {
        self.lock().pods.get(uid).is_some_and(|s| s.assumed)
    }

    /// The pod the cache holds under `uid` (assumed or confirmed).
    pub fn pod(&self, uid: &str) -> Option<Arc<Pod>> {
        self.lock().pods.get(uid).map(|s| s.pod.clone())
    }

    pub fn node_count(&self) -> usize {
        self.lock().nodes.values().filter(|n| n.has_node()).count()
    }

    /// The current nodes and pods.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        let mut inner = self.lock();
        if let Some(s) = &inner.snapshot {
            return s.clone();
        }
        let nodes: Vec<Arc<NodeInfo>> = inner.tree.list().into_iter().filter_map(|n| inner.nodes.get(n)).filter(|n| n.has_node()).cloned().collect();
        let images = Arc::new(inner.image_nodes.iter().map(|(k, v)| (k.clone(), v.len())).collect());
        let snapshot = Arc::new(Snapshot::new(nodes, images));
        inner.snapshot = Some(snapshot.clone());
        snapshot
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, zone: &str) -> Arc<Node> {
        Arc::new(serde_json::from_value(json!({"metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}}, "status": {"allocatable": {"cpu": "2", "pods": "10"}}})).expect("node"))
    }

    fn pod(uid: &str, node: &str, cpu: &str) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": uid, "namespace": "default", "uid": uid},
                "spec": {"nodeName": node, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}}))
            .expect("pod"),
        )
    }

    #[test]
    fn nodes_interleave_zones() {
        let cache = Cache::new();
        for (n, z) in [("a1", "a"), ("a2", "a"), ("a3", "a"), ("b1", "b"), ("c1", "c"), ("b2", "b")] {
            cache.add_node(node(n, z));
        }
        assert_eq!(cache.snapshot().names(), ["a1", "b1", "c1", "a2", "b2", "a3"]);
        cache.remove_node("b1");
        assert_eq!(cache.snapshot().names(), ["a1", "b2", "c1", "a2", "a3"]);
    }

    #[test]
    fn assumed_pods_count_until_forgotten_or_confirmed() {
        let cache = Cache::new();
        cache.add_node(node("n1", "a"));
        let before = cache.snapshot();
        cache.assume_pod(pod("u1", "n1", "500m")).expect("assume");
        assert!(cache.is_assumed("u1"));
        assert_eq!(cache.assume_pod(pod("u1", "n1", "500m")), Err(Error::AlreadyInCache("default/u1".into())));
        let after = cache.snapshot();
        assert_eq!(after.get("n1").map(|n| n.requested.milli_cpu), Some(500));
        // The earlier snapshot is untouched (copy-on-write).
        assert_eq!(before.get("n1").map(|n| n.requested.milli_cpu), Some(0));
        cache.forget_pod("u1");
        assert_eq!(cache.snapshot().get("n1").map(|n| n.requested.milli_cpu), Some(0));
        cache.assume_pod(pod("u2", "n1", "1")).expect("assume");
        cache.add_pod(pod("u2", "n1", "1"));
        assert!(!cache.is_assumed("u2"));
        assert_eq!(cache.snapshot().get("n1").map(|n| n.pods.len()), Some(1));
        cache.remove_pod("u2");
        assert_eq!(cache.snapshot().get("n1").map(|n| n.pods.len()), Some(0));
    }

    #[test]
    fn pods_before_their_node_are_kept() {
        let cache = Cache::new();
        cache.add_pod(pod("u1", "late", "1"));
        assert_eq!(cache.snapshot().len(), 0);
        cache.add_node(node("late", "a"));
        assert_eq!(cache.snapshot().get("late").map(|n| n.requested.milli_cpu), Some(1000));
        assert_eq!(cache.node_count(), 1);
    }
}
