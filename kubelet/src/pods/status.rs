//! The PodStatus the kubelet writes, as upstream's `generateAPIPodStatus` builds it from the
//! previous status and what the runtime has: container and init container statuses (with
//! readiness and started from the prober, and the volume mounts), the phase, the kubelet's
//! conditions (PodReadyToStartContainers, Initialized, Ready, ContainersReady) with
//! transition times kept while a status holds, the conditions others own kept as they were,
//! host and pod IPs, start time and QoS class.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Container, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodSpec, PodStatus, VolumeMountStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::inspect::PodRuntime;
use crate::kuberuntime::linux::qos_class;
use crate::status::containers::{Inputs, WaitingReason, convert_all};
use crate::status::{containers_ready, initialized, is_restartable_init_container, phase, pod_ready};

/// The conditions the kubelet owns, in the order it writes them.
const KUBELET_CONDITIONS: [&str; 4] = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"];

/// What the prober says of a running container.
pub trait Probes {
    /// Readiness of a started, running container.
    fn ready(&self, uid: &str, container: &Container) -> bool;
    /// Whether its startup probe (if any) succeeded.
    fn started(&self, uid: &str, container: &Container) -> bool;
}

/// Without probe results: running containers are started, and ready unless they have a
/// readiness probe.
pub struct NoProbes;

impl Probes for NoProbes {
    fn ready(&self, _: &str, c: &Container) -> bool {
        c.readiness_probe.is_none()
    }
    fn started(&self, _: &str, c: &Container) -> bool {
        c.startup_probe.is_none()
    }
}

/// What the status is built from besides the pod.
pub struct Observed<'a> {
    pub runtime: &'a PodRuntime,
    /// Why containers wait, by name.
    pub reasons: &'a HashMap<String, WaitingReason>,
    pub host_ip: &'a str,
    pub probes: &'a dyn Probes,
    /// The kubelet stopped the pod for good (it was deleted, or it completed).
    pub terminal: bool,
    pub now: jiff::Timestamp,
}

fn seconds(now: jiff::Timestamp) -> Time {
    Time(jiff::Timestamp::from_second(now.as_second()).unwrap_or(now))
}

fn running(s: &ContainerStatus) -> bool {
    s.state.as_ref().and_then(|st| st.running.as_ref()).is_some()
}

fn mounts(c: &Container) -> Option<Vec<VolumeMountStatus>> {
    let list: Vec<VolumeMountStatus> = c
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| {
            let read_only = m.read_only.unwrap_or(false);
            VolumeMountStatus {
                name: m.name.clone(),
                mount_path: m.mount_path.clone(),
                read_only: Some(read_only).filter(|r| *r),
                recursive_read_only: read_only.then(|| "Disabled".to_string()),
            }
        })
        .collect();
    Some(list).filter(|l| !l.is_empty())
}

/// Sets ready, started and volumeMounts of `statuses` (of `containers`).
fn annotate(statuses: &mut [ContainerStatus], containers: &[Container], uid: &str, init: bool, probes: &dyn Probes) {
    for s in statuses.iter_mut() {
        let Some(c) = containers.iter().find(|c| c.name == s.name) else { continue };
        if s.container_id.is_some() {
            s.volume_mounts = mounts(c);
        }
        let is_running = running(s);
        let started = is_running && probes.started(uid, c);
        s.started = Some(started);
        s.ready = if init && !is_restartable_init_container(c) {
            s.state.as_ref().and_then(|st| st.terminated.as_ref()).is_some_and(|t| t.exit_code == 0)
        } else {
            started && probes.ready(uid, c)
        };
    }
}

/// A condition with its transition time kept from `old` while its status holds.
fn keep_transition(mut c: PodCondition, old: &[PodCondition], now: jiff::Timestamp) -> PodCondition {
    c.last_transition_time = match old.iter().find(|o| o.type_ == c.type_) {
        Some(o) if o.status == c.status && o.last_transition_time.is_some() => o.last_transition_time.clone(),
        _ => Some(seconds(now)),
    };
    c
}

/// The status to write for `pod`.
pub fn build(pod: &Pod, observed: &Observed<'_>) -> PodStatus {
    let empty = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty);
    let uid = pod.metadata.uid.as_deref().unwrap_or("");
    let old = pod.status.clone().unwrap_or_default();
    let init = spec.init_containers.as_deref().unwrap_or_default();
    let runtime = observed.runtime.runtime_containers();
    let mut init_statuses = convert_all(&Inputs {
        pod,
        containers: init,
        runtime: &runtime,
        previous: old.init_container_statuses.as_deref().unwrap_or_default(),
        has_init_containers: !init.is_empty(),
        is_init: true,
        reasons: observed.reasons,
    });
    let mut statuses = convert_all(&Inputs {
        pod,
        containers: &spec.containers,
        runtime: &runtime,
        previous: old.container_statuses.as_deref().unwrap_or_default(),
        has_init_containers: !init.is_empty(),
        is_init: false,
        reasons: observed.reasons,
    });
    annotate(&mut init_statuses, init, uid, true, observed.probes);
    annotate(&mut statuses, &spec.containers, uid, false, observed.probes);

    let all: Vec<ContainerStatus> = init_statuses.iter().chain(statuses.iter()).cloned().collect();
    let old_conditions = old.conditions.clone().unwrap_or_default();
    let was_initialized = old_conditions.iter().any(|c| c.type_ == "Initialized" && c.status == "True");
    let mut new_phase = phase(pod, &all, observed.terminal, was_initialized).to_string();
    if matches!(old.phase.as_deref(), Some("Succeeded" | "Failed")) {
        new_phase = old.phase.clone().unwrap_or_default();
    }

    let host_network = spec.host_network.unwrap_or(false);
    let mut pod_ips: Vec<String> = if host_network { vec![observed.host_ip.to_string()] } else { observed.runtime.ips().to_vec() };
    if pod_ips.is_empty() {
        pod_ips = old.pod_ips.iter().flatten().map(|p| p.ip.clone()).collect();
    }
    let sandbox_ready = observed.runtime.sandboxes.first().is_some_and(|s| s.ready && (host_network || !s.ips.is_empty()));

    let ready_to_start = PodCondition {
        type_: "PodReadyToStartContainers".into(),
        status: if sandbox_ready { "True" } else { "False" }.into(),
        ..Default::default()
    };
    let kubelet_conditions = [
        ready_to_start,
        initialized(pod, Some(&all), &new_phase),
        pod_ready(pod, &old_conditions, Some(&all), &new_phase),
        containers_ready(pod, Some(&all), &new_phase),
    ];
    let mut conditions: Vec<PodCondition> = kubelet_conditions.into_iter().map(|c| keep_transition(c, &old_conditions, observed.now)).collect();
    conditions.extend(old_conditions.iter().filter(|c| !KUBELET_CONDITIONS.contains(&c.type_.as_str())).cloned());

    PodStatus {
        phase: Some(new_phase),
        conditions: Some(conditions),
        host_ip: Some(observed.host_ip.to_string()),
        host_ips: Some(vec![HostIP { ip: observed.host_ip.to_string() }]),
        pod_ip: pod_ips.first().cloned(),
        pod_ips: Some(pod_ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect()).filter(|v: &Vec<PodIP>| !v.is_empty()),
        start_time: old.start_time.clone().or_else(|| Some(seconds(observed.now))),
        qos_class: old.qos_class.clone().or_else(|| Some(qos_class(pod).to_string())),
        container_statuses: Some(statuses),
        init_container_statuses: Some(init_statuses).filter(|v| !v.is_empty()),
        ..old
    }
}
