//! The scheduler's view of pods and nodes: a pod with its affinity terms parsed once, and a
//! node with the pods on it, what they request, the host ports they hold and the images it
//! has.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, LazyLock};

use ironkube_machinery::selectors::label::Selector;
use k8s_openapi::api::core::v1::{Node, Pod, PodAffinityTerm, WeightedPodAffinityTerm};

use super::resource::{PodResource, Resource, parse_list};

static EMPTY_LABELS: LazyLock<BTreeMap<String, String>> = LazyLock::new(BTreeMap::new);
static EMPTY_NODE: LazyLock<Node> = LazyLock::new(Node::default);

/// Labels of an object, empty when unset.
pub fn labels_of(labels: &Option<BTreeMap<String, String>>) -> &BTreeMap<String, String> {
    labels.as_ref().unwrap_or(&EMPTY_LABELS)
}

/// Accessors for the pod fields the scheduler reads everywhere.
pub trait PodExt {
    fn name(&self) -> &str;
    fn namespace(&self) -> &str;
    fn uid(&self) -> &str;
    fn labels(&self) -> &BTreeMap<String, String>;
    fn node_name(&self) -> &str;
    fn nominated_node_name(&self) -> &str;
    fn scheduler_name(&self) -> &str;
    /// `spec.priority`, 0 when unset (upstream's `PodPriority`).
    fn priority(&self) -> i32;
    fn is_terminating(&self) -> bool;
}

impl PodExt for Pod {
    fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or("")
    }
    fn namespace(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or("")
    }
    fn uid(&self) -> &str {
        self.metadata.uid.as_deref().unwrap_or("")
    }
    fn labels(&self) -> &BTreeMap<String, String> {
        labels_of(&self.metadata.labels)
    }
    fn node_name(&self) -> &str {
        self.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("")
    }
    fn nominated_node_name(&self) -> &str {
        self.status.as_ref().and_then(|s| s.nominated_node_name.as_deref()).unwrap_or("")
    }
    fn scheduler_name(&self) -> &str {
        self.spec.as_ref().and_then(|s| s.scheduler_name.as_deref()).unwrap_or("default-scheduler")
    }
    fn priority(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
    }
    fn is_terminating(&self) -> bool {
        self.metadata.deletion_timestamp.is_some()
    }
}

/// Accessors for node fields.
pub trait NodeExt {
    fn name(&self) -> &str;
    fn labels(&self) -> &BTreeMap<String, String>;
}

impl NodeExt for Node {
    fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or("")
    }
    fn labels(&self) -> &BTreeMap<String, String> {
        labels_of(&self.metadata.labels)
    }
}

/// A pod affinity term made ready for matching (upstream's `framework.AffinityTerm`).
#[derive(Debug, Clone)]
pub struct AffinityTerm {
    pub namespaces: BTreeSet<String>,
    pub selector: Selector,
    pub topology_key: String,
    pub namespace_selector: Selector,
}

impl AffinityTerm {
    /// Parses `term` of `pod`: no namespaces and no namespace selector means the pod's own
    /// namespace; a missing label selector matches nothing.
    pub fn new(pod: &Pod, term: &PodAffinityTerm) -> Result<Self, String> {
        let selector = Selector::from_label_selector(term.label_selector.as_ref()).map_err(|e| e.to_string())?;
        let namespace_selector = Selector::from_label_selector(term.namespace_selector.as_ref()).map_err(|e| e.to_string())?;
        let listed = term.namespaces.clone().unwrap_or_default();
        let namespaces = if listed.is_empty() && term.namespace_selector.is_none() {
            BTreeSet::from([pod.namespace().to_string()])
        } else {
            listed.into_iter().collect()
        };
        Ok(AffinityTerm { namespaces, selector, topology_key: term.topology_key.clone(), namespace_selector })
    }

    /// Whether `pod` is in the term's namespaces (by name, or by `ns_labels` matching the
    /// namespace selector) and matches its label selector.
    pub fn matches(&self, pod: &Pod, ns_labels: Option<&BTreeMap<String, String>>) -> bool {
        let ns_labels = ns_labels.unwrap_or(&EMPTY_LABELS);
        if self.namespaces.contains(pod.namespace()) || self.namespace_selector.matches(ns_labels) {
            return self.selector.matches(pod.labels());
        }
        false
    }
}

/// A weighted (preferred) affinity term.
#[derive(Debug, Clone)]
pub struct WeightedAffinityTerm {
    pub term: AffinityTerm,
    pub weight: i32,
}

fn parse_terms(pod: &Pod, terms: Option<&Vec<PodAffinityTerm>>) -> Result<Vec<AffinityTerm>, String> {
    terms.into_iter().flatten().map(|t| AffinityTerm::new(pod, t)).collect()
}

fn parse_weighted(pod: &Pod, terms: Option<&Vec<WeightedPodAffinityTerm>>) -> Result<Vec<WeightedAffinityTerm>, String> {
    terms
        .into_iter()
        .flatten()
        .map(|t| Ok(WeightedAffinityTerm { term: AffinityTerm::new(pod, &t.pod_affinity_term)?, weight: t.weight }))
        .collect()
}

/// A pod with what the scheduler derives from it once.
#[derive(Debug, Clone)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub required_affinity_terms: Vec<AffinityTerm>,
    pub required_anti_affinity_terms: Vec<AffinityTerm>,
    pub preferred_affinity_terms: Vec<WeightedAffinityTerm>,
    pub preferred_anti_affinity_terms: Vec<WeightedAffinityTerm>,
    pub resource: PodResource,
    /// Why an affinity term could not be parsed (its terms are then left empty).
    pub parse_error: Option<String>,
}

impl PodInfo {
    pub fn new(pod: impl Into<Arc<Pod>>) -> Self {
        let pod: Arc<Pod> = pod.into();
        let affinity = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
        let pa = affinity.and_then(|a| a.pod_affinity.as_ref());
        let paa = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let mut errors = Vec::new();
        let mut keep = |r: Result<Vec<_>, String>, what: &str| {
            r.unwrap_or_else(|e| {
                errors.push(format!("{what}: {e}"));
                Vec::new()
            })
        };
        let required_affinity_terms = keep(parse_terms(&pod, pa.and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref())), "requiredAffinityTerms");
        let required_anti_affinity_terms = keep(parse_terms(&pod, paa.and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref())), "requiredAntiAffinityTerms");
        let preferred_affinity_terms = match parse_weighted(&pod, pa.and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref())) {
            Ok(t) => t,
            Err(e) => {
                errors.push(format!("preferredAffinityTerms: {e}"));
                Vec::new()
            }
        };
        let preferred_anti_affinity_terms = match parse_weighted(&pod, paa.and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref())) {
            Ok(t) => t,
            Err(e) => {
                errors.push(format!("preferredAntiAffinityTerms: {e}"));
                Vec::new()
            }
        };
        let resource = PodResource::of(&pod);
        PodInfo {
            pod,
            required_affinity_terms,
            required_anti_affinity_terms,
            preferred_affinity_terms,
            preferred_anti_affinity_terms,
            resource,
            parse_error: if errors.is_empty() { None } else { Some(errors.join(", ")) },
        }
    }

    pub fn uid(&self) -> &str {
        self.pod.uid()
    }

    /// Pods with any pod (anti-)affinity.
    pub fn has_affinity(&self) -> bool {
        self.pod.spec.as_ref().and_then(|s| s.affinity.as_ref()).is_some_and(|a| a.pod_affinity.is_some() || a.pod_anti_affinity.is_some())
    }

    pub fn has_required_anti_affinity(&self) -> bool {
        !self.required_anti_affinity_terms.is_empty()
    }
}

/// The protocol and port of a host port.
pub type ProtocolPort = (String, i32);

/// Host ports in use on a node, by host IP (upstream's `HostPortInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPortInfo(HashMap<String, HashSet<ProtocolPort>>);

pub const DEFAULT_BIND_ALL_HOST_IP: &str = "0.0.0.0";

fn sanitize(ip: &str, protocol: &str) -> (String, String) {
    let ip = if ip.is_empty() { DEFAULT_BIND_ALL_HOST_IP } else { ip };
    let protocol = if protocol.is_empty() { "TCP" } else { protocol };
    (ip.to_string(), protocol.to_string())
}

impl HostPortInfo {
    pub fn add(&mut self, ip: &str, protocol: &str, port: i32) {
        if port <= 0 {
            return;
        }
        let (ip, protocol) = sanitize(ip, protocol);
        self.0.entry(ip).or_default().insert((protocol, port));
    }

    pub fn remove(&mut self, ip: &str, protocol: &str, port: i32) {
        if port <= 0 {
            return;
        }
        let (ip, protocol) = sanitize(ip, protocol);
        if let Some(set) = self.0.get_mut(&ip) {
            set.remove(&(protocol, port));
            if set.is_empty() {
                self.0.remove(&ip);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.0.values().map(HashSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `(ip, protocol, port)` clashes with a port in use: 0.0.0.0 clashes with the
    /// same port on any IP, any IP with the same port on 0.0.0.0 or on itself.
    pub fn check_conflict(&self, ip: &str, protocol: &str, port: i32) -> bool {
        if port <= 0 {
            return false;
        }
        let (ip, protocol) = sanitize(ip, protocol);
        let pp = (protocol, port);
        if ip == DEFAULT_BIND_ALL_HOST_IP {
            return self.0.values().any(|s| s.contains(&pp));
        }
        [DEFAULT_BIND_ALL_HOST_IP, ip.as_str()].iter().any(|k| self.0.get(*k).is_some_and(|s| s.contains(&pp)))
    }
}

/// The host ports of a pod: those of its containers and of its sidecars (upstream's
/// `GetHostPorts`), as `(hostIP, protocol, hostPort)`.
pub fn host_ports(pod: &Pod) -> Vec<(String, String, i32)> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let sidecars = spec.init_containers.iter().flatten().filter(|c| c.restart_policy.as_deref() == Some("Always"));
    sidecars
        .chain(spec.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let host_port = p.host_port.unwrap_or(0);
            (host_port > 0).then(|| (p.host_ip.clone().unwrap_or_default(), p.protocol.clone().unwrap_or_default(), host_port))
        })
        .collect()
}

/// A node and the pods the scheduler counts on it.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    node: Option<Arc<Node>>,
    pub pods: Vec<Arc<PodInfo>>,
    pub pods_with_affinity: Vec<Arc<PodInfo>>,
    pub pods_with_required_anti_affinity: Vec<Arc<PodInfo>>,
    pub used_ports: HostPortInfo,
    pub requested: Resource,
    pub non_zero_requested: Resource,
    pub allocatable: Resource,
    /// Image name -> size in bytes, from `status.images`.
    pub images: HashMap<String, i64>,
    /// `namespace/claim` -> number of pods using it.
    pub pvc_ref_counts: HashMap<String, i32>,
    pub generation: u64,
}

impl NodeInfo {
    pub fn new(node: impl Into<Arc<Node>>) -> Self {
        let mut info = NodeInfo::default();
        info.set_node(node.into());
        info
    }

    /// The node; an empty node if only pods are known so far.
    pub fn node(&self) -> &Node {
        self.node.as_deref().unwrap_or(&EMPTY_NODE)
    }

    pub fn node_arc(&self) -> Option<&Arc<Node>> {
        self.node.as_ref()
    }

    pub fn has_node(&self) -> bool {
        self.node.is_some()
    }

    pub fn name(&self) -> &str {
        self.node().name()
    }

    pub fn set_node(&mut self, node: Arc<Node>) {
        let status = node.status.as_ref();
        self.allocatable = Resource::from_list(&parse_list(status.and_then(|s| s.allocatable.as_ref())));
        self.images = status
            .and_then(|s| s.images.as_ref())
            .into_iter()
            .flatten()
            .flat_map(|img| img.names.iter().flatten().map(move |n| (n.clone(), img.size_bytes.unwrap_or(0))))
            .collect();
        self.node = Some(node);
        self.generation += 1;
    }

    pub fn remove_node(&mut self) {
        self.node = None;
        self.generation += 1;
    }

    pub fn add_pod_info(&mut self, pod: Arc<PodInfo>) {
        if pod.has_affinity() {
            self.pods_with_affinity.push(pod.clone());
        }
        if pod.has_required_anti_affinity() {
            self.pods_with_required_anti_affinity.push(pod.clone());
        }
        self.update(&pod, 1);
        self.pods.push(pod);
    }

    pub fn add_pod(&mut self, pod: impl Into<Arc<Pod>>) {
        self.add_pod_info(Arc::new(PodInfo::new(pod)));
    }

    /// Removes the pod with `uid`; false if it is not on this node.
    pub fn remove_pod(&mut self, uid: &str) -> bool {
        self.pods_with_affinity.retain(|p| p.uid() != uid);
        self.pods_with_required_anti_affinity.retain(|p| p.uid() != uid);
        let Some(i) = self.pods.iter().position(|p| p.uid() == uid) else {
            return false;
        };
        let pod = self.pods.swap_remove(i);
        self.update(&pod, -1);
        true
    }

    fn update(&mut self, pod: &PodInfo, sign: i64) {
        self.requested.add_signed(&pod.resource.resource, sign);
        self.non_zero_requested.milli_cpu += sign * pod.resource.non0_cpu;
        self.non_zero_requested.memory += sign * pod.resource.non0_mem;
        for (ip, protocol, port) in host_ports(&pod.pod) {
            if sign > 0 {
                self.used_ports.add(&ip, &protocol, port);
            } else {
                self.used_ports.remove(&ip, &protocol, port);
            }
        }
        let namespace = pod.pod.namespace().to_string();
        for claim in pod.pod.spec.as_ref().and_then(|s| s.volumes.as_ref()).into_iter().flatten().filter_map(|v| v.persistent_volume_claim.as_ref()) {
            let key = format!("{namespace}/{}", claim.claim_name);
            let count = self.pvc_ref_counts.entry(key.clone()).or_insert(0);
            *count += sign as i32;
            if *count <= 0 {
                self.pvc_ref_counts.remove(&key);
            }
        }
        self.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn host_port_conflicts() {
        let mut ports = HostPortInfo::default();
        ports.add("", "", 8080);
        ports.add("127.0.0.1", "UDP", 53);
        // (ip, protocol, port, conflict)
        let cases = [
            ("", "TCP", 8080, true),
            ("10.0.0.1", "TCP", 8080, true),
            ("10.0.0.1", "UDP", 8080, false),
            ("127.0.0.1", "UDP", 53, true),
            ("0.0.0.0", "UDP", 53, true),
            ("10.0.0.2", "UDP", 53, false),
            ("", "TCP", 0, false),
        ];
        for (ip, proto, port, want) in cases {
            assert_eq!(ports.check_conflict(ip, proto, port), want, "{ip} {proto} {port}");
        }
        ports.remove("", "TCP", 8080);
        assert_eq!(ports.len(), 1);
    }

    #[test]
    fn node_info_tracks_pods() {
        let node: Node = serde_json::from_value(json!({"metadata": {"name": "n1"}, "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}})).expect("node");
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u1"}, "spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": "500m"}}, "ports": [{"containerPort": 80, "hostPort": 8080}]}],
            "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}]}})).expect("pod");
        let mut info = NodeInfo::new(node);
        assert_eq!(info.allocatable.milli_cpu, 4000);
        assert_eq!(info.allocatable.allowed_pod_number, 110);
        info.add_pod(pod);
        assert_eq!(info.requested.milli_cpu, 500);
        assert_eq!(info.non_zero_requested.memory, super::super::resource::DEFAULT_MEMORY_REQUEST);
        assert!(info.used_ports.check_conflict("", "TCP", 8080));
        assert_eq!(info.pvc_ref_counts.get("ns/data"), Some(&1));
        assert!(info.remove_pod("u1"));
        assert_eq!(info.requested.milli_cpu, 0);
        assert!(info.used_ports.is_empty());
        assert!(info.pvc_ref_counts.is_empty());
        assert!(!info.remove_pod("u1"));
    }
}
