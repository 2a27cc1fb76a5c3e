//! A container's Linux config as upstream's kuberuntime generates it: cgroup resources from
//! requests and limits (CPU shares and CFS quota, memory limit, the OOM score of the pod's
//! QoS class) and the security context (user and groups, capabilities, privileged,
//! read-only root, no_new_privs, seccomp, the masked and read-only /proc paths, and the
//! pod's namespaces).

use k8s_openapi::api::core::v1::{Container, Pod, SeccompProfile};
use ironkube_machinery::validation::quantity::Quantity;

use super::sandbox::namespace_options;
use crate::cri::api;

/// The fewest CPU shares (cgroup v1 minimum) and the CFS period.
const MIN_SHARES: i64 = 2;
const SHARES_PER_CPU: i64 = 1024;
const QUOTA_PERIOD: i64 = 100_000;
const MIN_QUOTA: i64 = 1000;

/// Paths a non-privileged container cannot read, and ones it cannot write (upstream's
/// defaults for `procMount: Default`).
const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const READONLY_PATHS: [&str; 5] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

fn quantity(container: &Container, limits: bool, resource: &str) -> Option<Quantity> {
    let r = container.resources.as_ref()?;
    let map = if limits { r.limits.as_ref() } else { r.requests.as_ref() }?;
    Quantity::parse(&map.get(resource)?.0).ok()
}

fn milli_cpu_to_shares(milli: i64) -> i64 {
    if milli == 0 {
        return MIN_SHARES;
    }
    (milli * SHARES_PER_CPU / 1000).max(MIN_SHARES)
}

/// The pod's QoS class (BestEffort, Burstable, Guaranteed).
pub fn qos_class(pod: &Pod) -> &'static str {
    let Some(spec) = pod.spec.as_ref() else { return "BestEffort" };
    let all: Vec<&Container> = spec.init_containers.iter().flatten().chain(spec.containers.iter()).collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &all {
        for resource in ["cpu", "memory"] {
            let request = quantity(c, false, resource).filter(|q| !q.is_zero());
            let limit = quantity(c, true, resource).filter(|q| !q.is_zero());
            any |= request.is_some() || limit.is_some();
            match (request, limit) {
                (Some(r), Some(l)) if r == l => {}
                (None, Some(_)) => {}
                _ => guaranteed = false,
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

/// The OOM score adjustment of a container (upstream's `GetContainerOOMScoreAdjust`).
pub fn oom_score_adj(pod: &Pod, container: &Container, memory_capacity: i64) -> i64 {
    match qos_class(pod) {
        "Guaranteed" => -997,
        "BestEffort" => 1000,
        _ => {
            let request = quantity(container, false, "memory").map(|q| i64::try_from(q.value()).unwrap_or(i64::MAX)).unwrap_or(0);
            if memory_capacity <= 0 {
                return 999;
            }
            let adj = 1000 - (1000 * i128::from(request) / i128::from(memory_capacity)) as i64;
            adj.clamp(3, 999)
        }
    }
}

/// cgroup resources of a container.
pub fn resources(pod: &Pod, container: &Container, memory_capacity: i64) -> api::LinuxContainerResources {
    let milli = |q: Option<Quantity>| q.map(|q| i64::try_from(q.milli_value()).unwrap_or(i64::MAX)).unwrap_or(0);
    let cpu_request = milli(quantity(container, false, "cpu"));
    let cpu_limit = milli(quantity(container, true, "cpu"));
    let shares = if cpu_request == 0 && cpu_limit != 0 { milli_cpu_to_shares(cpu_limit) } else { milli_cpu_to_shares(cpu_request) };
    let mut out = api::LinuxContainerResources { cpu_shares: shares, oom_score_adj: oom_score_adj(pod, container, memory_capacity), ..Default::default() };
    if cpu_limit != 0 {
        out.cpu_period = QUOTA_PERIOD;
        out.cpu_quota = (cpu_limit * QUOTA_PERIOD / 1000).max(MIN_QUOTA);
    }
    if let Some(memory) = quantity(container, true, "memory") {
        out.memory_limit_in_bytes = i64::try_from(memory.value()).unwrap_or(i64::MAX);
    }
    out
}

fn seccomp(profile: Option<&SeccompProfile>) -> api::SecurityProfile {
    use api::security_profile::ProfileType;
    match profile.map(|p| p.type_.as_str()) {
        Some("RuntimeDefault") => api::SecurityProfile { profile_type: ProfileType::RuntimeDefault as i32, ..Default::default() },
        Some("Localhost") => api::SecurityProfile {
            profile_type: ProfileType::Localhost as i32,
            localhost_ref: profile.and_then(|p| p.localhost_profile.clone()).unwrap_or_default(),
        },
        _ => api::SecurityProfile { profile_type: ProfileType::Unconfined as i32, ..Default::default() },
    }
}

/// The container's security context: its own settings over the pod's.
pub fn security_context(pod: &Pod, container: &Container) -> api::LinuxContainerSecurityContext {
    let pod_sc = pod.spec.as_ref().and_then(|s| s.security_context.clone()).unwrap_or_default();
    let sc = container.security_context.clone().unwrap_or_default();
    let privileged = sc.privileged.unwrap_or(false);
    let mut out = api::LinuxContainerSecurityContext {
        privileged,
        namespace_options: Some(namespace_options(pod)),
        run_as_user: sc.run_as_user.or(pod_sc.run_as_user).map(|value| api::Int64Value { value }),
        run_as_group: sc.run_as_group.or(pod_sc.run_as_group).map(|value| api::Int64Value { value }),
        readonly_rootfs: sc.read_only_root_filesystem.unwrap_or(false),
        no_new_privs: sc.allow_privilege_escalation == Some(false),
        seccomp: Some(seccomp(sc.seccomp_profile.as_ref().or(pod_sc.seccomp_profile.as_ref()))),
        ..Default::default()
    };
    out.supplemental_groups.extend(pod_sc.fs_group);
    out.supplemental_groups.extend(pod_sc.supplemental_groups.iter().flatten());
    if let Some(caps) = sc.capabilities.as_ref() {
        out.capabilities = Some(api::Capability {
            add_capabilities: caps.add.clone().unwrap_or_default(),
            drop_capabilities: caps.drop.clone().unwrap_or_default(),
            ..Default::default()
        });
    }
    let unmasked = sc.proc_mount.as_deref() == Some("Unmasked");
    if !privileged && !unmasked {
        out.masked_paths = MASKED_PATHS.iter().map(|p| p.to_string()).collect();
        out.readonly_paths = READONLY_PATHS.iter().map(|p| p.to_string()).collect();
    }
    out
}

/// The container's whole Linux config.
pub fn config(pod: &Pod, container: &Container, memory_capacity: i64) -> api::LinuxContainerConfig {
    api::LinuxContainerConfig {
        resources: Some(resources(pod, container, memory_capacity)),
        security_context: Some(security_context(pod, container)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn pod(containers: Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": containers, "securityContext": {"fsGroup": 2000}}})).expect("pod")
    }

    #[test]
    fn qos_classes_and_oom_scores() {
        const GI: i64 = 1 << 30;
        let table = [
            (json!([{"name": "a"}]), "BestEffort", 1000),
            (json!([{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}}]), "Guaranteed", -997),
            (json!([{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]), "Guaranteed", -997),
            (json!([{"name": "a", "resources": {"requests": {"memory": "1Gi"}}}]), "Burstable", 1000 - 1000 / 4),
            (json!([{"name": "a", "resources": {"requests": {"cpu": "100m"}}}]), "Burstable", 999),
        ];
        for (containers, class, oom) in table {
            let p = pod(containers.clone());
            assert_eq!(qos_class(&p), class, "{containers}");
            let c = &p.spec.as_ref().expect("spec").containers[0];
            assert_eq!(oom_score_adj(&p, c, 4 * GI), oom, "{containers}");
        }
    }

    #[test]
    fn cpu_and_memory_become_cgroup_settings() {
        let p = pod(json!([{"name": "a", "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"cpu": "250m", "memory": "32Mi"}}}, {"name": "b"}]));
        let spec = p.spec.as_ref().expect("spec");
        let r = resources(&p, &spec.containers[0], 1 << 30);
        assert_eq!((r.cpu_shares, r.cpu_quota, r.cpu_period, r.memory_limit_in_bytes), (256, 50_000, 100_000, 64 << 20));
        let r = resources(&p, &spec.containers[1], 1 << 30);
        assert_eq!((r.cpu_shares, r.cpu_quota, r.memory_limit_in_bytes), (2, 0, 0));
    }

    #[test]
    fn security_settings_carry_over() {
        let p = pod(json!([
            {"name": "a", "securityContext": {"runAsUser": 1000, "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}},
            {"name": "b", "securityContext": {"privileged": true}},
        ]));
        let spec = p.spec.as_ref().expect("spec");
        let a = security_context(&p, &spec.containers[0]);
        assert_eq!(a.run_as_user.map(|u| u.value), Some(1000));
        assert!(a.no_new_privs && a.readonly_rootfs && !a.privileged);
        assert_eq!(a.supplemental_groups, [2000]);
        assert_eq!(a.capabilities.map(|c| (c.add_capabilities, c.drop_capabilities)), Some((vec!["NET_ADMIN".to_string()], vec!["ALL".to_string()])));
        assert_eq!(a.masked_paths.len(), MASKED_PATHS.len());
        assert_eq!(a.seccomp.map(|s| s.profile_type), Some(api::security_profile::ProfileType::Unconfined as i32));
        let b = security_context(&p, &spec.containers[1]);
        assert!(b.privileged && b.masked_paths.is_empty() && b.readonly_paths.is_empty());
    }
}
