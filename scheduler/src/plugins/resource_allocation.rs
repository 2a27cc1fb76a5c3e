//! Scoring nodes by how their resources would be used with the pod on them, shared by
//! NodeResourcesFit (least/most allocated, requested-to-capacity ratio) and
//! NodeResourcesBalancedAllocation.

use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize;

use crate::framework::interface::MAX_NODE_SCORE;
use crate::framework::node_info::NodeInfo;
use crate::framework::resource::{CPU, EPHEMERAL_STORAGE, MEMORY, RequestOptions, is_scalar_resource_name, non_zero_defaults, pod_requests, request_of};

/// A resource to score on and its weight.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ResourceSpec {
    pub name: String,
    #[serde(default)]
    pub weight: i64,
}

/// cpu and memory, weight 1 each.
pub fn default_resources() -> Vec<ResourceSpec> {
    vec![ResourceSpec { name: CPU.into(), weight: 1 }, ResourceSpec { name: MEMORY.into(), weight: 1 }]
}

/// Applies upstream's defaulting: no resources means cpu+memory, weight 0 means 1.
pub fn defaulted(resources: Option<Vec<ResourceSpec>>) -> Vec<ResourceSpec> {
    match resources {
        Some(r) if !r.is_empty() => r.into_iter().map(|r| ResourceSpec { weight: if r.weight == 0 { 1 } else { r.weight }, ..r }).collect(),
        _ => default_resources(),
    }
}

type ScoreFn = Box<dyn Fn(&[i64], &[i64]) -> i64 + Send + Sync>;

/// Turns per-resource (requested, allocatable) into a node score.
pub struct ResourceAllocationScorer {
    /// Score on real requests (true) or on requests with the 100m/200Mi non-zero defaults.
    pub use_requested: bool,
    pub resources: Vec<ResourceSpec>,
    scorer: ScoreFn,
}

impl ResourceAllocationScorer {
    pub fn new(use_requested: bool, resources: Vec<ResourceSpec>, scorer: ScoreFn) -> Self {
        ResourceAllocationScorer { use_requested, resources, scorer }
    }

    /// The pod's request of each scored resource.
    pub fn pod_requests(&self, pod: &Pod) -> Vec<i64> {
        let mut opts = RequestOptions::scheduler();
        if !self.use_requested {
            opts.non_missing = Some(non_zero_defaults());
        }
        let reqs = pod_requests(pod, &opts);
        self.resources.iter().map(|r| request_of(&reqs, &r.name)).collect()
    }

    fn allocatable_and_requested(&self, node: &NodeInfo, resource: &str, pod_request: i64) -> (i64, i64) {
        let requested = if self.use_requested { &node.requested } else { &node.non_zero_requested };
        if pod_request == 0 && is_scalar_resource_name(resource) {
            return (0, 0);
        }
        match resource {
            CPU => (node.allocatable.milli_cpu, requested.milli_cpu + pod_request),
            MEMORY => (node.allocatable.memory, requested.memory + pod_request),
            EPHEMERAL_STORAGE => (node.allocatable.ephemeral_storage, node.requested.ephemeral_storage + pod_request),
            other => match node.allocatable.scalar.get(other) {
                Some(a) => (*a, node.requested.scalar(other) + pod_request),
                None => (0, 0),
            },
        }
    }

    /// The node's score for a pod requesting `pod_requests` (from [`Self::pod_requests`]).
    pub fn score(&self, node: &NodeInfo, pod_requests: &[i64]) -> i64 {
        let mut requested = vec![0; self.resources.len()];
        let mut allocatable = vec![0; self.resources.len()];
        for (i, r) in self.resources.iter().enumerate() {
            let (alloc, req) = self.allocatable_and_requested(node, &r.name, pod_requests.get(i).copied().unwrap_or(0));
            if alloc == 0 {
                continue;
            }
            allocatable[i] = alloc;
            requested[i] = req;
        }
        (self.scorer)(&requested, &allocatable)
    }
}

fn weighted(resources: &[ResourceSpec], requested: &[i64], allocatable: &[i64], per_resource: impl Fn(i64, i64) -> i64) -> i64 {
    let (mut score, mut weights) = (0, 0);
    for i in 0..requested.len() {
        if allocatable[i] == 0 {
            continue;
        }
        score += per_resource(requested[i], allocatable[i]) * resources[i].weight;
        weights += resources[i].weight;
    }
    if weights == 0 { 0 } else { score / weights }
}

/// `(capacity - requested) * 100 / capacity`, 0 when over capacity.
pub fn least_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

/// `requested * 100 / capacity`, capped at capacity.
pub fn most_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 {
        return 0;
    }
    requested.min(capacity) * MAX_NODE_SCORE / capacity
}

pub fn least_allocated(resources: Vec<ResourceSpec>) -> ScoreFn {
    Box::new(move |req, alloc| weighted(&resources, req, alloc, least_requested_score))
}

pub fn most_allocated(resources: Vec<ResourceSpec>) -> ScoreFn {
    Box::new(move |req, alloc| weighted(&resources, req, alloc, most_requested_score))
}

/// A point of a requested-to-capacity-ratio shape (score 0..=10).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct UtilizationShapePoint {
    pub utilization: i64,
    pub score: i64,
}

fn broken_linear(shape: &[(i64, i64)], p: i64) -> i64 {
    for i in 0..shape.len() {
        if p <= shape[i].0 {
            if i == 0 {
                return shape[0].1;
            }
            return shape[i - 1].1 + (shape[i].1 - shape[i - 1].1) * (p - shape[i - 1].0) / (shape[i].0 - shape[i - 1].0);
        }
    }
    shape.last().map(|s| s.1).unwrap_or(0)
}

pub fn requested_to_capacity_ratio(resources: Vec<ResourceSpec>, shape: Vec<UtilizationShapePoint>) -> ScoreFn {
    let shape: Vec<(i64, i64)> = shape.into_iter().map(|p| (p.utilization, p.score * (MAX_NODE_SCORE / 10))).collect();
    Box::new(move |req, alloc| {
        let (mut score, mut weights) = (0i64, 0i64);
        for i in 0..req.len() {
            if alloc[i] == 0 {
                continue;
            }
            let s = if req[i] > alloc[i] { broken_linear(&shape, 100) } else { broken_linear(&shape, req[i] * 100 / alloc[i]) };
            if s > 0 {
                score += s * resources[i].weight;
                weights += resources[i].weight;
            }
        }
        if weights == 0 { 0 } else { (score as f64 / weights as f64).round() as i64 }
    })
}

/// 100 minus the standard deviation of the utilization fractions, times 100.
pub fn balanced(requested: &[i64], allocatable: &[i64]) -> i64 {
    let mut fractions = Vec::new();
    for i in 0..requested.len() {
        if allocatable[i] == 0 {
            continue;
        }
        fractions.push((requested[i] as f64 / allocatable[i] as f64).min(1.0));
    }
    let std = match fractions.len() {
        0 | 1 => 0.0,
        2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
        n => {
            let mean = fractions.iter().sum::<f64>() / n as f64;
            (fractions.iter().map(|f| (f - mean) * (f - mean)).sum::<f64>() / n as f64).sqrt()
        }
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_resource_scores() {
        assert_eq!(least_requested_score(3000, 4000), 25);
        assert_eq!(least_requested_score(5000, 4000), 0);
        assert_eq!(most_requested_score(3000, 4000), 75);
        assert_eq!(most_requested_score(5000, 4000), 100);
        assert_eq!(balanced(&[2000, 4 << 30], &[4000, 8 << 30]), 100);
        assert_eq!(balanced(&[1000, 4 << 30], &[4000, 8 << 30]), 87);
        let shape = vec![UtilizationShapePoint { utilization: 0, score: 0 }, UtilizationShapePoint { utilization: 100, score: 10 }];
        let f = requested_to_capacity_ratio(default_resources(), shape);
        assert_eq!(f(&[2000, 4 << 30], &[4000, 8 << 30]), 50);
    }
}
