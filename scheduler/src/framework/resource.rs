//! Resource arithmetic as the scheduler sees it: what a pod requests (containers, init
//! containers, sidecars, overhead, resized status resources) and the per-node sums.

use std::collections::BTreeMap;

use ironkube_machinery::validation::labels::qualified_name;
use ironkube_machinery::validation::quantity::Quantity;
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;

pub const CPU: &str = "cpu";
pub const MEMORY: &str = "memory";
pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";
pub const PODS: &str = "pods";

/// The CPU a container without a CPU request counts as when scoring (100m, upstream's
/// `DefaultMilliCPURequest`).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// The memory a container without a memory request counts as when scoring (200Mi).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// A resource list with parsed quantities.
pub type ResourceList = BTreeMap<String, Quantity>;

/// Parses an API resource list; unparsable quantities (the API server rejects them) count
/// as zero.
pub fn parse_list(list: Option<&BTreeMap<String, ApiQuantity>>) -> ResourceList {
    list.into_iter()
        .flatten()
        .map(|(name, q)| (name.clone(), Quantity::parse(&q.0).unwrap_or(Quantity::ZERO)))
        .collect()
}

fn add_into(into: &mut ResourceList, from: &ResourceList) {
    for (name, q) in from {
        into.entry(name.clone()).and_modify(|v| *v = v.add(q)).or_insert(*q);
    }
}

fn max_into(into: &mut ResourceList, from: &ResourceList) {
    for (name, q) in from {
        match into.get_mut(name) {
            Some(v) if *v >= *q => {}
            Some(v) => *v = *q,
            None => {
                into.insert(name.clone(), *q);
            }
        }
    }
}

fn max_of(lists: &[&ResourceList]) -> ResourceList {
    let mut out = ResourceList::new();
    for l in lists {
        max_into(&mut out, l);
    }
    out
}

/// Options of [`pod_requests`], after upstream's `PodResourcesOptions`.
#[derive(Debug, Clone, Default)]
pub struct RequestOptions {
    /// Count the resources the kubelet reports for resized containers (InPlacePodVerticalScaling,
    /// on by default in v1.33).
    pub use_status_resources: bool,
    /// Requests to use for containers that have none of a resource (the non-zero defaults).
    pub non_missing: Option<ResourceList>,
    pub exclude_overhead: bool,
}

impl RequestOptions {
    /// What the scheduler uses to account for a pod on a node.
    pub fn scheduler() -> Self {
        RequestOptions { use_status_resources: true, ..Default::default() }
    }

    /// The same, with the 100m/200Mi defaults for containers missing CPU or memory requests.
    pub fn scheduler_non_zero() -> Self {
        RequestOptions { use_status_resources: true, non_missing: Some(non_zero_defaults()), exclude_overhead: false }
    }
}

/// 100m CPU and 200Mi memory.
pub fn non_zero_defaults() -> ResourceList {
    let mut l = ResourceList::new();
    l.insert(CPU.into(), Quantity::parse("100m").unwrap_or(Quantity::ZERO));
    l.insert(MEMORY.into(), Quantity::from_units(DEFAULT_MEMORY_REQUEST));
    l
}

fn is_resize_infeasible(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "PodResizePending")
        .is_some_and(|c| c.reason.as_deref() == Some("Infeasible"))
}

fn container_requests(pod: &Pod, c: &Container, status: Option<&ContainerStatus>, opts: &RequestOptions) -> ResourceList {
    let spec = parse_list(c.resources.as_ref().and_then(|r| r.requests.as_ref()));
    let mut reqs = match status.and_then(|cs| cs.resources.as_ref().map(|r| (cs, r))) {
        Some((cs, res)) if opts.use_status_resources => {
            let actual = parse_list(res.requests.as_ref());
            let allocated = parse_list(cs.allocated_resources.as_ref());
            if is_resize_infeasible(pod) { max_of(&[&actual, &allocated]) } else { max_of(&[&spec, &actual, &allocated]) }
        }
        _ => spec,
    };
    if let Some(defaults) = &opts.non_missing {
        for (name, q) in defaults {
            reqs.entry(name.clone()).or_insert(*q);
        }
    }
    reqs
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// Upstream's `PodRequests`: the sum of regular containers and sidecars, at least the
/// largest init-container phase (an init container runs beside the sidecars started before
/// it), plus the pod overhead.
pub fn pod_requests(pod: &Pod, opts: &RequestOptions) -> ResourceList {
    let mut reqs = ResourceList::new();
    let Some(spec) = pod.spec.as_ref() else {
        return reqs;
    };
    let status = pod.status.as_ref();
    let find_status = |name: &str, init: bool| -> Option<&ContainerStatus> {
        let list = if init { status.and_then(|s| s.init_container_statuses.as_ref()) } else { status.and_then(|s| s.container_statuses.as_ref()) };
        list.into_iter().flatten().find(|cs| cs.name == name)
    };
    for c in &spec.containers {
        add_into(&mut reqs, &container_requests(pod, c, find_status(&c.name, false), opts));
    }
    let mut sidecars = ResourceList::new();
    let mut init_max = ResourceList::new();
    for c in spec.init_containers.iter().flatten() {
        let cs = if is_sidecar(c) { find_status(&c.name, true) } else { None };
        let c_reqs = container_requests(pod, c, cs, opts);
        let phase = if is_sidecar(c) {
            add_into(&mut reqs, &c_reqs);
            add_into(&mut sidecars, &c_reqs);
            sidecars.clone()
        } else {
            let mut tmp = c_reqs;
            add_into(&mut tmp, &sidecars);
            tmp
        };
        max_into(&mut init_max, &phase);
    }
    max_into(&mut reqs, &init_max);
    if !opts.exclude_overhead {
        add_into(&mut reqs, &parse_list(spec.overhead.as_ref()));
    }
    reqs
}

/// Upstream's `IsNativeResource`: unprefixed or in `kubernetes.io/`.
fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// Upstream's `IsExtendedResourceName`.
pub fn is_extended_resource_name(name: &str) -> bool {
    if is_native(name) || name.starts_with("requests.") {
        return false;
    }
    qualified_name(&format!("requests.{name}")).is_empty()
}

/// Resources the scheduler tracks beyond cpu/memory/ephemeral-storage/pods: extended
/// resources, hugepages, prefixed native and attachable volumes.
pub fn is_scalar_resource_name(name: &str) -> bool {
    is_extended_resource_name(name)
        || name.starts_with("hugepages-")
        || name.contains("kubernetes.io/")
        || name.starts_with("attachable-volumes-")
}

fn saturate(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Upstream's `framework.Resource`: cpu in millicores, the rest in units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resource {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub allowed_pod_number: i64,
    pub scalar: BTreeMap<String, i64>,
}

impl Resource {
    pub fn from_list(list: &ResourceList) -> Self {
        let mut r = Resource::default();
        r.add_list(list);
        r
    }

    pub fn add_list(&mut self, list: &ResourceList) {
        for (name, q) in list {
            match name.as_str() {
                CPU => self.milli_cpu += saturate(q.milli_value()),
                MEMORY => self.memory += saturate(q.value()),
                PODS => self.allowed_pod_number += saturate(q.value()),
                EPHEMERAL_STORAGE => self.ephemeral_storage += saturate(q.value()),
                other if is_scalar_resource_name(other) => {
                    *self.scalar.entry(other.to_string()).or_insert(0) += saturate(q.value());
                }
                _ => {}
            }
        }
    }

    /// Upstream's `SetMaxResource`.
    pub fn set_max_list(&mut self, list: &ResourceList) {
        for (name, q) in list {
            match name.as_str() {
                CPU => self.milli_cpu = self.milli_cpu.max(saturate(q.milli_value())),
                MEMORY => self.memory = self.memory.max(saturate(q.value())),
                EPHEMERAL_STORAGE => self.ephemeral_storage = self.ephemeral_storage.max(saturate(q.value())),
                other if is_scalar_resource_name(other) => {
                    let v = self.scalar.entry(other.to_string()).or_insert(0);
                    *v = (*v).max(saturate(q.value()));
                }
                _ => {}
            }
        }
    }

    /// `self += sign * other` over the tracked fields.
    pub fn add_signed(&mut self, other: &Resource, sign: i64) {
        self.milli_cpu += sign * other.milli_cpu;
        self.memory += sign * other.memory;
        self.ephemeral_storage += sign * other.ephemeral_storage;
        for (name, v) in &other.scalar {
            *self.scalar.entry(name.clone()).or_insert(0) += sign * v;
        }
    }

    pub fn scalar(&self, name: &str) -> i64 {
        self.scalar.get(name).copied().unwrap_or(0)
    }

    pub fn is_zero_request(&self) -> bool {
        self.milli_cpu == 0 && self.memory == 0 && self.ephemeral_storage == 0 && self.scalar.is_empty()
    }
}

/// What a pod adds to a node: its requests and the non-zero CPU/memory used for scoring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodResource {
    pub resource: Resource,
    pub non0_cpu: i64,
    pub non0_mem: i64,
}

impl PodResource {
    pub fn of(pod: &Pod) -> Self {
        let requests = pod_requests(pod, &RequestOptions::scheduler());
        let non0 = pod_requests(pod, &RequestOptions::scheduler_non_zero());
        PodResource {
            resource: Resource::from_list(&requests),
            non0_cpu: non0.get(CPU).map(|q| saturate(q.milli_value())).unwrap_or(0),
            non0_mem: non0.get(MEMORY).map(|q| saturate(q.value())).unwrap_or(0),
        }
    }
}

/// One resource of a pod's requests in the unit scoring uses (millicores for cpu).
pub fn request_of(list: &ResourceList, name: &str) -> i64 {
    match list.get(name) {
        Some(q) if name == CPU => saturate(q.milli_value()),
        Some(q) => saturate(q.value()),
        None => 0,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "default"}, "spec": spec})).expect("pod")
    }

    #[test]
    fn requests_like_upstream() {
        // (spec, cpu millis, memory bytes)
        let cases: Vec<(&str, serde_json::Value, i64, i64)> = vec![
            ("plain containers sum", json!({"containers": [
                {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "1Gi"}}},
                {"name": "b", "resources": {"requests": {"cpu": "250m"}}}]}), 350, 1 << 30),
            ("init container larger than containers", json!({
                "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "2"}}}],
                "containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]}), 2000, 0),
            ("sidecar adds and runs beside later init containers", json!({
                "initContainers": [
                    {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "500m"}}},
                    {"name": "i", "resources": {"requests": {"cpu": "2"}}}],
                "containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]}), 2500, 0),
            ("sidecar summed with containers", json!({
                "initContainers": [{"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "500m"}}}],
                "containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]}), 1500, 0),
            ("overhead added", json!({"overhead": {"cpu": "250m", "memory": "120Mi"},
                "containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]}), 1250, 120 << 20),
        ];
        for (name, spec, cpu, mem) in cases {
            let r = Resource::from_list(&pod_requests(&pod(spec), &RequestOptions::scheduler()));
            assert_eq!((r.milli_cpu, r.memory), (cpu, mem), "{name}");
        }
    }

    #[test]
    fn non_zero_defaults_fill_missing_requests() {
        let p = pod(json!({"containers": [{"name": "a"}, {"name": "b", "resources": {"requests": {"cpu": "1"}}}]}));
        let pr = PodResource::of(&p);
        assert_eq!(pr.resource.milli_cpu, 1000);
        assert_eq!(pr.non0_cpu, 1100);
        assert_eq!(pr.non0_mem, 2 * DEFAULT_MEMORY_REQUEST);
    }

    #[test]
    fn scalar_names() {
        assert!(is_scalar_resource_name("example.com/gpu"));
        assert!(is_scalar_resource_name("hugepages-2Mi"));
        assert!(!is_scalar_resource_name("cpu"));
        assert!(!is_extended_resource_name("kubernetes.io/foo"));
        assert!(is_scalar_resource_name("kubernetes.io/foo"));
    }
}
