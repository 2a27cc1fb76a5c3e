//! Builders for the nodes and pods of unit tests.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{Value, json};

use crate::cache::Snapshot;
use crate::framework::cycle_state::CycleState;
use crate::framework::node_info::{NodeInfo, PodInfo};

/// A node under construction.
pub struct NodeBuilder(Value);

pub fn node(name: &str) -> NodeBuilder {
    NodeBuilder(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {},
        "status": {"allocatable": {"cpu": "4", "memory": "32Gi", "pods": "110"}, "conditions": [{"type": "Ready", "status": "True"}]}
    }))
}

impl NodeBuilder {
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.0["metadata"]["labels"][k] = json!(v);
        self
    }
    pub fn zone(self, zone: &str) -> Self {
        self.label("topology.kubernetes.io/zone", zone)
    }
    pub fn taint(mut self, key: &str, value: &str, effect: &str) -> Self {
        let mut t = json!({"key": key, "effect": effect});
        if !value.is_empty() {
            t["value"] = json!(value);
        }
        match self.0["spec"]["taints"].as_array_mut() {
            Some(a) => a.push(t),
            None => self.0["spec"]["taints"] = json!([t]),
        }
        self
    }
    pub fn unschedulable(mut self) -> Self {
        self.0["spec"]["unschedulable"] = json!(true);
        self
    }
    pub fn allocatable(mut self, cpu: &str, memory: &str, pods: &str) -> Self {
        self.0["status"]["allocatable"] = json!({"cpu": cpu, "memory": memory, "pods": pods});
        self
    }
    pub fn resource(mut self, name: &str, q: &str) -> Self {
        self.0["status"]["allocatable"][name] = json!(q);
        self
    }
    pub fn image(mut self, name: &str, size: i64) -> Self {
        let img = json!({"names": [name], "sizeBytes": size});
        match self.0["status"]["images"].as_array_mut() {
            Some(a) => a.push(img),
            None => self.0["status"]["images"] = json!([img]),
        }
        self
    }
    pub fn build(self) -> Node {
        serde_json::from_value(self.0).expect("node")
    }
}

/// A pod under construction.
pub struct PodBuilder(Value);

pub fn pod(name: &str) -> PodBuilder {
    PodBuilder(json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], "schedulerName": "default-scheduler"}
    }))
}

impl PodBuilder {
    pub fn namespace(mut self, ns: &str) -> Self {
        self.0["metadata"]["namespace"] = json!(ns);
        self
    }
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.0["metadata"]["labels"][k] = json!(v);
        self
    }
    pub fn node(mut self, node: &str) -> Self {
        self.0["spec"]["nodeName"] = json!(node);
        self
    }
    pub fn req(mut self, cpu: &str, memory: &str) -> Self {
        let mut r = json!({});
        if !cpu.is_empty() {
            r["cpu"] = json!(cpu);
        }
        if !memory.is_empty() {
            r["memory"] = json!(memory);
        }
        self.0["spec"]["containers"][0]["resources"] = json!({"requests": r});
        self
    }
    /// An extended resource: requested and limited alike, as the API requires of resources
    /// that cannot be overcommitted.
    pub fn req_resource(mut self, name: &str, q: &str) -> Self {
        self.0["spec"]["containers"][0]["resources"]["requests"][name] = json!(q);
        self.0["spec"]["containers"][0]["resources"]["limits"][name] = json!(q);
        self
    }
    pub fn image(mut self, image: &str) -> Self {
        self.0["spec"]["containers"][0]["image"] = json!(image);
        self
    }
    pub fn host_port(mut self, port: i32) -> Self {
        self.0["spec"]["containers"][0]["ports"] = json!([{"containerPort": port, "hostPort": port}]);
        self
    }
    pub fn toleration(mut self, key: &str, op: &str, value: &str, effect: &str) -> Self {
        let mut t = json!({"operator": op});
        if !key.is_empty() {
            t["key"] = json!(key);
        }
        if !value.is_empty() {
            t["value"] = json!(value);
        }
        if !effect.is_empty() {
            t["effect"] = json!(effect);
        }
        match self.0["spec"]["tolerations"].as_array_mut() {
            Some(a) => a.push(t),
            None => self.0["spec"]["tolerations"] = json!([t]),
        }
        self
    }
    pub fn node_selector(mut self, k: &str, v: &str) -> Self {
        self.0["spec"]["nodeSelector"][k] = json!(v);
        self
    }
    pub fn spec(mut self, key: &str, value: Value) -> Self {
        self.0["spec"][key] = value;
        self
    }
    /// Sets `spec.affinity.<kind>` (`nodeAffinity`, `podAffinity`, `podAntiAffinity`).
    pub fn affinity(mut self, kind: &str, value: Value) -> Self {
        self.0["spec"]["affinity"][kind] = value;
        self
    }
    pub fn spread(mut self, max_skew: i32, key: &str, when: &str, match_labels: Value) -> Self {
        let c = json!({"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when, "labelSelector": {"matchLabels": match_labels}});
        match self.0["spec"]["topologySpreadConstraints"].as_array_mut() {
            Some(a) => a.push(c),
            None => self.0["spec"]["topologySpreadConstraints"] = json!([c]),
        }
        self
    }
    pub fn priority(mut self, p: i32) -> Self {
        self.0["spec"]["priority"] = json!(p);
        self
    }
    pub fn owner(mut self, kind: &str, name: &str) -> Self {
        let api = if kind == "ReplicationController" { "v1" } else { "apps/v1" };
        self.0["metadata"]["ownerReferences"] = json!([{"apiVersion": api, "kind": kind, "name": name, "uid": format!("uid-{name}"), "controller": true}]);
        self
    }
    pub fn volume_pvc(mut self, claim: &str) -> Self {
        let v = json!({"name": claim, "persistentVolumeClaim": {"claimName": claim}});
        match self.0["spec"]["volumes"].as_array_mut() {
            Some(a) => a.push(v),
            None => self.0["spec"]["volumes"] = json!([v]),
        }
        self
    }
    pub fn volume(mut self, v: Value) -> Self {
        match self.0["spec"]["volumes"].as_array_mut() {
            Some(a) => a.push(v),
            None => self.0["spec"]["volumes"] = json!([v]),
        }
        self
    }
    pub fn build(self) -> Pod {
        serde_json::from_value(self.0).expect("pod")
    }
    pub fn info(self) -> PodInfo {
        PodInfo::new(self.build())
    }
}

pub fn node_info(node: Node, pods: Vec<Pod>) -> NodeInfo {
    let mut info = NodeInfo::new(node);
    for p in pods {
        info.add_pod(p);
    }
    info
}

pub fn snapshot(nodes: Vec<Node>, pods: Vec<Pod>) -> Arc<Snapshot> {
    Arc::new(Snapshot::from_objects(nodes, pods))
}

pub fn state(snapshot: &Arc<Snapshot>) -> CycleState {
    CycleState::new(snapshot.clone())
}
