//! An immutable view of the nodes (with their pods) that one scheduling cycle works on.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::framework::node_info::{NodeExt, NodeInfo, PodExt};

/// Nodes in the order the scheduler walks them, with indexes plugins need.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    nodes: Vec<Arc<NodeInfo>>,
    index: HashMap<String, usize>,
    with_affinity: Vec<usize>,
    with_required_anti_affinity: Vec<usize>,
    used_pvcs: HashSet<String>,
    image_num_nodes: Arc<HashMap<String, usize>>,
}

impl Snapshot {
    /// A snapshot of `nodes` (in walking order); `image_num_nodes` says on how many nodes
    /// each image is.
    pub fn new(nodes: Vec<Arc<NodeInfo>>, image_num_nodes: Arc<HashMap<String, usize>>) -> Self {
        let mut s = Snapshot { image_num_nodes, ..Default::default() };
        for (i, n) in nodes.iter().enumerate() {
            s.index.insert(n.name().to_string(), i);
            if !n.pods_with_affinity.is_empty() {
                s.with_affinity.push(i);
            }
            if !n.pods_with_required_anti_affinity.is_empty() {
                s.with_required_anti_affinity.push(i);
            }
            s.used_pvcs.extend(n.pvc_ref_counts.keys().cloned());
        }
        s.nodes = nodes;
        s
    }

    /// A snapshot built from objects (pods land on the node their `spec.nodeName` names).
    pub fn from_objects(nodes: impl IntoIterator<Item = Node>, pods: impl IntoIterator<Item = Pod>) -> Self {
        let mut infos: Vec<NodeInfo> = nodes.into_iter().map(NodeInfo::new).collect();
        for pod in pods {
            if let Some(info) = infos.iter_mut().find(|i| i.name() == pod.node_name()) {
                info.add_pod(pod);
            }
        }
        let mut images: HashMap<String, usize> = HashMap::new();
        for i in &infos {
            for name in i.images.keys() {
                *images.entry(name.clone()).or_insert(0) += 1;
            }
        }
        Snapshot::new(infos.into_iter().map(Arc::new).collect(), Arc::new(images))
    }

    pub fn list(&self) -> &[Arc<NodeInfo>] {
        &self.nodes
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&Arc<NodeInfo>> {
        self.index.get(name).map(|&i| &self.nodes[i])
    }

    /// Nodes running at least one pod with pod (anti-)affinity.
    pub fn have_pods_with_affinity(&self) -> impl Iterator<Item = &Arc<NodeInfo>> {
        self.with_affinity.iter().map(|&i| &self.nodes[i])
    }

    /// Nodes running at least one pod with required anti-affinity.
    pub fn have_pods_with_required_anti_affinity(&self) -> impl Iterator<Item = &Arc<NodeInfo>> {
        self.with_required_anti_affinity.iter().map(|&i| &self.nodes[i])
    }

    /// Whether a scheduled pod uses the claim `namespace/name`.
    pub fn is_pvc_used_by_pods(&self, key: &str) -> bool {
        self.used_pvcs.contains(key)
    }

    /// On how many nodes the image is present.
    pub fn image_num_nodes(&self, image: &str) -> usize {
        self.image_num_nodes.get(image).copied().unwrap_or(0)
    }

    /// The node names, in order (for tests and logs).
    pub fn names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.node().name().to_string()).collect()
    }
}
