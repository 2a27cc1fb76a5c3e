//! NodeResourcesFit: the pod's requests (containers, init containers, sidecars, overhead)
//! must fit in what the node has left, and the pod count under `pods`; scoring follows the
//! configured strategy (LeastAllocated by default).

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use serde::Deserialize;

use super::resource_allocation::{ResourceAllocationScorer, ResourceSpec, UtilizationShapePoint, defaulted, least_allocated, most_allocated, requested_to_capacity_ratio};
use crate::framework::cycle_state::CycleState;
use crate::framework::interface::{ActionType, ClusterEvent, EventObject, EventResource, FilterPlugin, Handle, Plugin, PreFilterPlugin, PreFilterResult, PreScorePlugin, QueueingHint, ScorePlugin};
use crate::framework::node_info::{NodeInfo, PodExt, PodInfo};
use crate::framework::resource::{RequestOptions, Resource, is_extended_resource_name, pod_requests};
use crate::framework::status::{Code, Status};

pub const NAME: &str = "NodeResourcesFit";
const PRE_FILTER_KEY: &str = "PreFilterNodeResourcesFit";
const PRE_SCORE_KEY: &str = "PreScoreNodeResourcesFit";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestedToCapacityRatio {
    #[serde(default)]
    shape: Vec<UtilizationShapePoint>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScoringStrategy {
    #[serde(rename = "type", default)]
    type_: Option<String>,
    #[serde(default)]
    resources: Option<Vec<ResourceSpec>>,
    #[serde(default)]
    requested_to_capacity_ratio: Option<RequestedToCapacityRatio>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Args {
    #[serde(default)]
    ignored_resources: Vec<String>,
    #[serde(default)]
    ignored_resource_groups: Vec<String>,
    #[serde(default)]
    scoring_strategy: Option<ScoringStrategy>,
}

pub struct NodeResourcesFit {
    ignored_resources: BTreeSet<String>,
    ignored_resource_groups: BTreeSet<String>,
    scorer: ResourceAllocationScorer,
}

impl NodeResourcesFit {
    pub fn new(args: Option<&serde_json::Value>, _handle: &Arc<Handle>) -> Result<Arc<dyn Plugin>, String> {
        let args: Args = match args {
            Some(v) if !v.is_null() => serde_json::from_value(v.clone()).map_err(|e| format!("decoding NodeResourcesFitArgs: {e}"))?,
            _ => Args::default(),
        };
        let strategy = args.scoring_strategy.unwrap_or_default();
        let resources = defaulted(strategy.resources);
        let scorer = match strategy.type_.as_deref().unwrap_or("LeastAllocated") {
            "LeastAllocated" => least_allocated(resources.clone()),
            "MostAllocated" => most_allocated(resources.clone()),
            "RequestedToCapacityRatio" => {
                let shape = strategy.requested_to_capacity_ratio.map(|r| r.shape).unwrap_or_default();
                if shape.is_empty() {
                    return Err("scoringStrategy.requestedToCapacityRatio.shape: Required value".into());
                }
                requested_to_capacity_ratio(resources.clone(), shape)
            }
            other => return Err(format!("scoring strategy {other} is not supported")),
        };
        Ok(Arc::new(NodeResourcesFit {
            ignored_resources: args.ignored_resources.into_iter().collect(),
            ignored_resource_groups: args.ignored_resource_groups.into_iter().collect(),
            scorer: ResourceAllocationScorer::new(false, resources, scorer),
        }))
    }
}

/// What a pod asks for, as the filter compares it (upstream's `computePodResourceRequest`).
pub fn pod_request(pod: &Pod) -> Resource {
    let mut r = Resource::default();
    r.set_max_list(&pod_requests(pod, &RequestOptions::scheduler()));
    r
}

/// One resource the node is short of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsufficientResource {
    pub resource: String,
    pub reason: String,
    pub requested: i64,
    pub used: i64,
    pub capacity: i64,
}

/// Every resource (and the pod count) the node lacks for `request`.
pub fn fits_request(request: &Resource, node: &NodeInfo, ignored: &BTreeSet<String>, ignored_groups: &BTreeSet<String>) -> Vec<InsufficientResource> {
    let mut out = Vec::new();
    let allowed = node.allocatable.allowed_pod_number;
    if node.pods.len() as i64 + 1 > allowed {
        out.push(InsufficientResource { resource: "pods".into(), reason: "Too many pods".into(), requested: 1, used: node.pods.len() as i64, capacity: allowed });
    }
    if request.is_zero_request() {
        return out;
    }
    let mut check = |name: &str, want: i64, used: i64, capacity: i64| {
        if want > 0 && want > capacity - used {
            out.push(InsufficientResource { resource: name.into(), reason: format!("Insufficient {name}"), requested: want, used, capacity });
        }
    };
    check("cpu", request.milli_cpu, node.requested.milli_cpu, node.allocatable.milli_cpu);
    check("memory", request.memory, node.requested.memory, node.allocatable.memory);
    check("ephemeral-storage", request.ephemeral_storage, node.requested.ephemeral_storage, node.allocatable.ephemeral_storage);
    for (name, want) in &request.scalar {
        if *want == 0 {
            continue;
        }
        if is_extended_resource_name(name) {
            let group = name.split('/').next().unwrap_or("");
            if ignored.contains(name) || (!ignored_groups.is_empty() && ignored_groups.contains(group)) {
                continue;
            }
        }
        check(name, *want, node.requested.scalar(name), node.allocatable.scalar(name));
    }
    out
}

/// Whether the pod fits an empty node like `node`.
fn fits_empty(pod: &Pod, node: &Node) -> bool {
    fits_request(&pod_request(pod), &NodeInfo::new(node.clone()), &BTreeSet::new(), &BTreeSet::new()).is_empty()
}

fn requested_resources_increased(pod: &Pod, original: &Node, modified: &Node) -> bool {
    let want = pod_request(pod);
    let (o, m) = (NodeInfo::new(original.clone()), NodeInfo::new(modified.clone()));
    if m.allocatable.allowed_pod_number > o.allocatable.allowed_pod_number {
        return true;
    }
    if want.is_zero_request() {
        return false;
    }
    (want.milli_cpu > 0 && m.allocatable.milli_cpu > o.allocatable.milli_cpu)
        || (want.memory > 0 && m.allocatable.memory > o.allocatable.memory)
        || (want.ephemeral_storage > 0 && m.allocatable.ephemeral_storage > o.allocatable.ephemeral_storage)
        || want.scalar.iter().any(|(n, q)| *q != 0 && m.allocatable.scalar(n) > o.allocatable.scalar(n))
}

fn scaled_down(target: &Pod, original: &Pod, modified: &Pod) -> bool {
    if modified.uid() == target.uid() {
        return true;
    }
    if modified.node_name().is_empty() {
        return false;
    }
    let (o, m, want) = (pod_request(original), pod_request(modified), pod_request(target));
    (want.milli_cpu > 0 && o.milli_cpu > m.milli_cpu)
        || (want.memory > 0 && o.memory > m.memory)
        || (want.ephemeral_storage > 0 && o.ephemeral_storage > m.ephemeral_storage)
        || want.scalar.iter().any(|(n, q)| *q != 0 && o.scalar(n) > m.scalar(n))
}

impl Plugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        NAME
    }

    fn events_to_register(&self) -> Option<Vec<ClusterEvent>> {
        Some(vec![
            ClusterEvent::new(EventResource::Pod, ActionType::DELETE | ActionType::UPDATE_POD_SCALE_DOWN),
            ClusterEvent::new(EventResource::Node, ActionType::ADD | ActionType::UPDATE_NODE_ALLOCATABLE),
        ])
    }

    fn queueing_hint(&self, _event: &ClusterEvent, pod: &Pod, old: Option<&EventObject>, new: Option<&EventObject>) -> QueueingHint {
        let q = |b: bool| if b { QueueingHint::Queue } else { QueueingHint::QueueSkip };
        match (old, new) {
            (Some(EventObject::Pod(deleted)), None) => q(!(deleted.node_name().is_empty() && deleted.nominated_node_name().is_empty())),
            (Some(EventObject::Pod(original)), Some(EventObject::Pod(modified))) => q(scaled_down(pod, original, modified)),
            (original, Some(EventObject::Node(modified))) => {
                if !fits_empty(pod, modified) {
                    return QueueingHint::QueueSkip;
                }
                match original.and_then(EventObject::node) {
                    None => QueueingHint::Queue,
                    Some(o) => q(requested_resources_increased(pod, o, modified)),
                }
            }
            _ => QueueingHint::Queue,
        }
    }

    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreFilterPlugin for NodeResourcesFit {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo) -> (PreFilterResult, Status) {
        state.write(PRE_FILTER_KEY, pod_request(&pod.pod));
        (PreFilterResult::all_nodes(), Status::success())
    }
}

impl FilterPlugin for NodeResourcesFit {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let computed;
        let request = match state.read::<Resource>(PRE_FILTER_KEY) {
            Some(r) => r,
            None => {
                computed = pod_request(&pod.pod);
                &computed
            }
        };
        let missing = fits_request(request, node, &self.ignored_resources, &self.ignored_resource_groups);
        if missing.is_empty() { Status::success() } else { Status::new(Code::Unschedulable, missing.into_iter().map(|m| m.reason)) }
    }
}

impl PreScorePlugin for NodeResourcesFit {
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, _nodes: &[Arc<NodeInfo>]) -> Status {
        state.write(PRE_SCORE_KEY, self.scorer.pod_requests(&pod.pod));
        Status::success()
    }
}

impl ScorePlugin for NodeResourcesFit {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let requests = match state.read::<Vec<i64>>(PRE_SCORE_KEY) {
            Some(r) => r.clone(),
            None => self.scorer.pod_requests(&pod.pod),
        };
        Ok(self.scorer.score(node, &requests))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::listers::StaticListers;
    use crate::testing::{node, node_info, pod, snapshot, state};
    use serde_json::json;

    fn plugin(args: Option<serde_json::Value>) -> Arc<dyn Plugin> {
        NodeResourcesFit::new(args.as_ref(), &Handle::for_tests(Arc::new(StaticListers::default()))).expect("plugin")
    }

    #[test]
    fn filter_table() {
        let pl = plugin(None);
        // Node: 4 cpu, 32Gi, 3 pods; one existing pod requesting 3 cpu.
        let existing = || vec![pod("e").node("n").req("3", "1Gi").build()];
        let n = || node("n").allocatable("4", "32Gi", "3").resource("example.com/gpu", "1").build();
        let cases: Vec<(&str, crate::testing::PodBuilder, Vec<Pod>, Vec<&str>)> = vec![
            ("fits", pod("p").req("1", "1Gi"), existing(), vec![]),
            ("insufficient cpu", pod("p").req("2", "1Gi"), existing(), vec!["Insufficient cpu"]),
            ("insufficient cpu and memory", pod("p").req("2", "40Gi"), existing(), vec!["Insufficient cpu", "Insufficient memory"]),
            ("best effort fits anywhere with room for a pod", pod("p"), existing(), vec![]),
            ("too many pods", pod("p"), vec![pod("a").node("n").build(), pod("b").node("n").build(), pod("c").node("n").build()], vec!["Too many pods"]),
            ("extended resource", pod("p").req("100m", "").req_resource("example.com/gpu", "2"), vec![], vec!["Insufficient example.com/gpu"]),
            (
                "init container dominates",
                pod("p").req("100m", "").spec("initContainers", json!([{"name": "i", "resources": {"requests": {"cpu": "2"}}}])),
                existing(),
                vec!["Insufficient cpu"],
            ),
            ("overhead counts", pod("p").req("500m", "").spec("overhead", json!({"cpu": "600m"})), existing(), vec!["Insufficient cpu"]),
        ];
        for (name, p, pods, want) in cases {
            let snap = snapshot(vec![n()], pods.clone());
            let mut st = state(&snap);
            let info = p.info();
            pl.as_pre_filter().expect("pf").pre_filter(&mut st, &info);
            let got = pl.as_filter().expect("f").filter(&st, &info, &node_info(n(), pods));
            let want = if want.is_empty() { Status::success() } else { Status::new(Code::Unschedulable, want) };
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn ignored_extended_resources() {
        let pl = plugin(Some(json!({"ignoredResources": ["example.com/gpu"]})));
        let p = pod("p").req_resource("example.com/gpu", "2").info();
        let n = node("n").build();
        let snap = snapshot(vec![n.clone()], vec![]);
        let mut st = state(&snap);
        pl.as_pre_filter().expect("pf").pre_filter(&mut st, &p);
        assert!(pl.as_filter().expect("f").filter(&st, &p, &NodeInfo::new(n)).is_success());
    }

    #[test]
    fn least_allocated_scores() {
        // Upstream's example: node 4 cpu / 10000 memory units, pod 3000m/5000 ... use whole numbers.
        let pl = plugin(None);
        let p = pod("p").req("1", "2Gi").info();
        let nodes = vec![node("n1").allocatable("4", "8Gi", "110").build(), node("n2").allocatable("8", "8Gi", "110").build()];
        let pods = vec![pod("e").node("n1").req("1", "2Gi").build()];
        let snap = snapshot(nodes.clone(), pods.clone());
        let mut st = state(&snap);
        let infos: Vec<_> = snap.list().to_vec();
        pl.as_pre_score().expect("ps").pre_score(&mut st, &p, &infos);
        let scores: Vec<i64> = infos.iter().map(|n| pl.as_score().expect("s").score(&st, &p, n).expect("score")).collect();
        // n1: cpu (4000-2000)*100/4000=50, mem (8-4)/8=50 -> 50; n2: cpu 87, mem 75 -> 81.
        assert_eq!(scores, vec![50, 81]);
        let most = plugin(Some(json!({"scoringStrategy": {"type": "MostAllocated"}})));
        let mut st = state(&snap);
        most.as_pre_score().expect("ps").pre_score(&mut st, &p, &infos);
        let scores: Vec<i64> = infos.iter().map(|n| most.as_score().expect("s").score(&st, &p, n).expect("score")).collect();
        assert_eq!(scores, vec![50, 18]);
    }

    #[test]
    fn hints() {
        let pl = plugin(None);
        let p = pod("p").req("2", "").build();
        let ev = ClusterEvent::new(EventResource::Node, ActionType::UPDATE_NODE_ALLOCATABLE);
        let small = EventObject::Node(Arc::new(node("n").allocatable("1", "1Gi", "10").build()));
        let big = EventObject::Node(Arc::new(node("n").allocatable("4", "1Gi", "10").build()));
        assert_eq!(pl.queueing_hint(&ev, &p, Some(&small), Some(&big)), QueueingHint::Queue);
        assert_eq!(pl.queueing_hint(&ev, &p, None, Some(&small)), QueueingHint::QueueSkip);
        let unassigned = EventObject::Pod(Arc::new(pod("x").build()));
        assert_eq!(pl.queueing_hint(&ClusterEvent::ASSIGNED_POD_DELETE, &p, Some(&unassigned), None), QueueingHint::QueueSkip);
    }
}
