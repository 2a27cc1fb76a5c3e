//! A pod's sandbox as the CRI sees it: what the kubelet asks `RunPodSandbox` for, derived
//! from the Pod the way upstream's kuberuntime manager derives it (metadata, labels,
//! annotations, hostname, log directory, port mappings, Linux security context and
//! namespaces, sysctls).
//!
//! Not yet: the pod's cgroup parent (no pod-level cgroups yet).

use std::collections::HashMap;
use std::path::Path;

use k8s_openapi::api::core::v1::{Container, Pod};

use crate::cri::api;

/// Where pod logs live (the kubelet's --pod-logs-dir default).
pub const POD_LOGS_DIR: &str = "/var/log/pods";
/// Labels the kubelet puts on every sandbox and container.
pub const POD_NAME_LABEL: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
pub const POD_UID_LABEL: &str = "io.kubernetes.pod.uid";
/// The longest hostname Linux takes, and the longest FQDN the kernel's nodename field holds.
const HOSTNAME_MAX_LEN: usize = 63;
const FQDN_MAX_LEN: usize = 64;

/// Why a pod's sandbox cannot be described.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("pod Hostname {0:?} is not a valid DNS label")]
    Hostname(String),
    #[error("pod Subdomain {0:?} is not a valid DNS label")]
    Subdomain(String),
    #[error("hostname for pod {pod:?} was invalid: {hostname:?}")]
    Truncated { pod: String, hostname: String },
    #[error(
        "failed to construct FQDN from pod hostname and cluster domain, FQDN {fqdn} is too long ({FQDN_MAX_LEN} characters is the max, {len} characters requested)",
        len = fqdn.len()
    )]
    FqdnTooLong { fqdn: String },
    #[error("unsupported supplementalGroupsPolicy: {0}")]
    SupplementalGroupsPolicy(String),
}

/// What the node contributes to every sandbox.
#[derive(Debug, Clone)]
pub struct NodeContext<'a> {
    /// The kubelet's --cluster-domain (`cluster.local`).
    pub cluster_domain: &'a str,
    /// The root of pod log directories ([`POD_LOGS_DIR`] by default).
    pub pod_logs_dir: &'a Path,
    /// The kubelet's --cluster-dns servers (none: pods get the node's resolvers).
    pub cluster_dns: &'a [String],
    /// The node's resolv.conf.
    pub host_resolv: &'a super::dns::ResolvConf,
}

fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// The pod's hostname and, with a subdomain, its domain (`<subdomain>.<ns>.svc.<cluster>`).
pub fn hostname_and_domain(pod: &Pod, cluster_domain: &str) -> Result<(String, String), Error> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let spec = pod.spec.as_ref();
    let mut hostname = name.clone();
    if let Some(h) = spec.and_then(|s| s.hostname.as_deref()).filter(|h| !h.is_empty()) {
        if !is_dns1123_label(h) {
            return Err(Error::Hostname(h.to_string()));
        }
        hostname = h.to_string();
    }
    if hostname.len() > HOSTNAME_MAX_LEN {
        // Truncate, then trim the separators a cut can leave at the end.
        let cut = hostname[..HOSTNAME_MAX_LEN].trim_end_matches(['-', '.']).to_string();
        if cut.is_empty() {
            return Err(Error::Truncated { pod: name, hostname });
        }
        hostname = cut;
    }
    let mut domain = String::new();
    if let Some(sub) = spec.and_then(|s| s.subdomain.as_deref()).filter(|s| !s.is_empty()) {
        if !is_dns1123_label(sub) {
            return Err(Error::Subdomain(sub.to_string()));
        }
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("");
        domain = format!("{sub}.{namespace}.svc.{cluster_domain}");
    }
    Ok((hostname, domain))
}

/// The name the kernel gets: the FQDN with `setHostnameAsFQDN` and a domain, else the hostname.
pub fn kernel_hostname(hostname: &str, domain: &str, set_hostname_as_fqdn: bool) -> Result<String, Error> {
    if domain.is_empty() || !set_hostname_as_fqdn {
        return Ok(hostname.to_string());
    }
    let fqdn = format!("{hostname}.{domain}");
    if fqdn.len() > FQDN_MAX_LEN {
        return Err(Error::FqdnTooLong { fqdn });
    }
    Ok(fqdn)
}

/// `<root>/<namespace>_<name>_<uid>`.
pub fn pod_logs_directory(root: &Path, pod: &Pod) -> String {
    let m = &pod.metadata;
    let leaf = [m.namespace.as_deref(), m.name.as_deref(), m.uid.as_deref()].map(|s| s.unwrap_or("")).join("_");
    root.join(leaf).display().to_string()
}

fn protocol(p: Option<&str>) -> i32 {
    match p {
        Some("UDP") => api::Protocol::Udp as i32,
        Some("SCTP") => api::Protocol::Sctp as i32,
        _ => api::Protocol::Tcp as i32,
    }
}

/// A container's ports as port mappings, skipping a port whose name (or, unnamed, whose
/// family/protocol/host IP/ports) was seen before in the same container.
pub fn port_mappings(container: &Container) -> Vec<api::PortMapping> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for p in container.ports.iter().flatten() {
        let host_ip = p.host_ip.clone().unwrap_or_default();
        let proto = p.protocol.as_deref().unwrap_or("TCP");
        let family = if host_ip.is_empty() {
            "any"
        } else if host_ip.contains(':') {
            "v6"
        } else {
            "v4"
        };
        let host_port = p.host_port.unwrap_or(0);
        let name = match p.name.as_deref().filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => format!("{family}-{proto}-{host_ip}:{}:{host_port}", p.container_port),
        };
        if !seen.insert(name) {
            continue;
        }
        out.push(api::PortMapping { protocol: protocol(Some(proto)), container_port: p.container_port, host_port, host_ip });
    }
    out
}

/// The pod's network, PID and IPC namespaces.
pub fn namespace_options(pod: &Pod) -> api::NamespaceOption {
    let spec = pod.spec.as_ref();
    let flag = |f: fn(&k8s_openapi::api::core::v1::PodSpec) -> Option<bool>| spec.and_then(f).unwrap_or(false);
    let node_or = |on: bool, otherwise: api::NamespaceMode| if on { api::NamespaceMode::Node as i32 } else { otherwise as i32 };
    let pid = if flag(|s| s.host_pid) {
        api::NamespaceMode::Node
    } else if flag(|s| s.share_process_namespace) {
        api::NamespaceMode::Pod
    } else {
        api::NamespaceMode::Container
    };
    api::NamespaceOption {
        network: node_or(flag(|s| s.host_network), api::NamespaceMode::Pod),
        pid: pid as i32,
        ipc: node_or(flag(|s| s.host_ipc), api::NamespaceMode::Pod),
        ..Default::default()
    }
}

fn has_privileged_container(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else { return false };
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .any(|c| c.security_context.as_ref().and_then(|s| s.privileged) == Some(true))
}

fn linux_config(pod: &Pod) -> Result<api::LinuxPodSandboxConfig, Error> {
    let mut security = api::LinuxSandboxSecurityContext {
        privileged: has_privileged_container(pod),
        // The sandbox always runs under the runtime's default seccomp profile.
        seccomp: Some(api::SecurityProfile { profile_type: api::security_profile::ProfileType::RuntimeDefault as i32, ..Default::default() }),
        ..Default::default()
    };
    let mut sysctls = HashMap::new();
    if let Some(sc) = pod.spec.as_ref().and_then(|s| s.security_context.as_ref()) {
        for s in sc.sysctls.iter().flatten() {
            sysctls.insert(s.name.clone(), s.value.clone());
        }
        security.run_as_user = sc.run_as_user.map(|value| api::Int64Value { value });
        security.run_as_group = sc.run_as_group.map(|value| api::Int64Value { value });
        security.namespace_options = Some(namespace_options(pod));
        security.supplemental_groups.extend(sc.fs_group);
        security.supplemental_groups.extend(sc.supplemental_groups.iter().flatten());
        if let Some(policy) = sc.supplemental_groups_policy.as_deref() {
            security.supplemental_groups_policy = match policy {
                "Merge" => api::SupplementalGroupsPolicy::Merge as i32,
                "Strict" => api::SupplementalGroupsPolicy::Strict as i32,
                other => return Err(Error::SupplementalGroupsPolicy(other.to_string())),
            };
        }
        if let Some(se) = sc.se_linux_options.as_ref() {
            security.selinux_options = Some(api::SeLinuxOption {
                user: se.user.clone().unwrap_or_default(),
                role: se.role.clone().unwrap_or_default(),
                r#type: se.type_.clone().unwrap_or_default(),
                level: se.level.clone().unwrap_or_default(),
            });
        }
    }
    Ok(api::LinuxPodSandboxConfig { security_context: Some(security), sysctls, ..Default::default() })
}

/// The sandbox labels: the pod's own plus its name, namespace and UID.
pub fn labels(pod: &Pod) -> HashMap<String, String> {
    let m = &pod.metadata;
    let mut labels: HashMap<String, String> = m.labels.clone().unwrap_or_default().into_iter().collect();
    labels.insert(POD_NAME_LABEL.into(), m.name.clone().unwrap_or_default());
    labels.insert(POD_NAMESPACE_LABEL.into(), m.namespace.clone().unwrap_or_default());
    labels.insert(POD_UID_LABEL.into(), m.uid.clone().unwrap_or_default());
    labels
}

/// The `RunPodSandbox` config for `pod`'s `attempt`-th sandbox.
pub fn config(pod: &Pod, attempt: u32, node: &NodeContext<'_>) -> Result<api::PodSandboxConfig, Error> {
    let m = &pod.metadata;
    let spec = pod.spec.as_ref();
    let mut config = api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: m.name.clone().unwrap_or_default(),
            uid: m.uid.clone().unwrap_or_default(),
            namespace: m.namespace.clone().unwrap_or_default(),
            attempt,
        }),
        labels: labels(pod),
        annotations: m.annotations.clone().unwrap_or_default().into_iter().collect(),
        log_directory: pod_logs_directory(node.pod_logs_dir, pod),
        port_mappings: spec.into_iter().flat_map(|s| s.containers.iter()).flat_map(port_mappings).collect(),
        linux: Some(linux_config(pod)?),
        dns_config: super::dns::config(pod, &super::dns::ClusterDns { servers: node.cluster_dns, domain: node.cluster_domain, host: node.host_resolv }),
        ..Default::default()
    };
    if spec.and_then(|s| s.host_network) != Some(true) {
        let (hostname, domain) = hostname_and_domain(pod, node.cluster_domain)?;
        config.hostname = kernel_hostname(&hostname, &domain, spec.and_then(|s| s.set_hostname_as_fqdn).unwrap_or(false))?;
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        let mut base = json!({"metadata": {"name": "web-0", "namespace": "default", "uid": "u-1"}, "spec": {"containers": [{"name": "c", "image": "busybox"}], "securityContext": {}}});
        json_patch::merge(&mut base, &v);
        serde_json::from_value(base).expect("pod")
    }

    fn node() -> NodeContext<'static> {
        static HOST: std::sync::LazyLock<super::super::dns::ResolvConf> = std::sync::LazyLock::new(Default::default);
        NodeContext { cluster_domain: "cluster.local", pod_logs_dir: Path::new(POD_LOGS_DIR), cluster_dns: &[], host_resolv: &HOST }
    }

    #[test]
    fn metadata_labels_and_log_directory() {
        let p = pod(json!({"metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}}}));
        let c = config(&p, 2, &node()).expect("config");
        let meta = c.metadata.expect("metadata");
        assert_eq!((meta.name.as_str(), meta.namespace.as_str(), meta.uid.as_str(), meta.attempt), ("web-0", "default", "u-1", 2));
        assert_eq!(c.labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(c.labels.get(POD_UID_LABEL).map(String::as_str), Some("u-1"));
        assert_eq!(c.annotations.get("a").map(String::as_str), Some("b"));
        assert_eq!(c.log_directory, "/var/log/pods/default_web-0_u-1");
        assert_eq!(c.hostname, "web-0");
        let linux = c.linux.expect("linux");
        let sc = linux.security_context.expect("security context");
        let ns = sc.namespace_options.expect("namespaces");
        assert_eq!((ns.network, ns.pid, ns.ipc), (api::NamespaceMode::Pod as i32, api::NamespaceMode::Container as i32, api::NamespaceMode::Pod as i32));
        assert_eq!(sc.seccomp.map(|s| s.profile_type), Some(api::security_profile::ProfileType::RuntimeDefault as i32));
    }

    #[test]
    fn hostnames() {
        let table = [
            (json!({}), Ok("web-0".to_string())),
            (json!({"spec": {"hostname": "h"}}), Ok("h".into())),
            (json!({"spec": {"hostname": "h", "subdomain": "s"}}), Ok("h".into())),
            (json!({"spec": {"hostname": "h", "subdomain": "s", "setHostnameAsFQDN": true}}), Ok("h.s.default.svc.cluster.local".into())),
            (json!({"spec": {"hostname": "Bad"}}), Err(Error::Hostname("Bad".into()))),
            (json!({"metadata": {"name": format!("{}-.x", "a".repeat(62))}}), Ok("a".repeat(62))),
            (
                json!({"spec": {"hostname": "a".repeat(40), "subdomain": "s", "setHostnameAsFQDN": true}}),
                Err(Error::FqdnTooLong { fqdn: format!("{}.s.default.svc.cluster.local", "a".repeat(40)) }),
            ),
        ];
        for (patch, want) in table {
            let got = config(&pod(patch.clone()), 0, &node()).map(|c| c.hostname);
            assert_eq!(got, want, "{patch}");
        }
        let host_net = config(&pod(json!({"spec": {"hostNetwork": true, "hostPID": true}})), 0, &node()).expect("config");
        assert_eq!(host_net.hostname, "", "host-network pods keep the node's hostname");
        let ns = host_net.linux.and_then(|l| l.security_context).and_then(|s| s.namespace_options).expect("namespaces");
        assert_eq!((ns.network, ns.pid), (api::NamespaceMode::Node as i32, api::NamespaceMode::Node as i32));
        assert_eq!(
            Error::FqdnTooLong { fqdn: "x".repeat(70) }.to_string(),
            format!("failed to construct FQDN from pod hostname and cluster domain, FQDN {} is too long (64 characters is the max, 70 characters requested)", "x".repeat(70))
        );
    }

    #[test]
    fn ports_deduplicated_per_container() {
        let p = pod(json!({"spec": {"containers": [{"name": "c", "image": "i", "ports": [
            {"containerPort": 80, "hostPort": 8080},
            {"containerPort": 80, "hostPort": 8080},
            {"containerPort": 53, "protocol": "UDP", "name": "dns"},
            {"containerPort": 54, "protocol": "UDP", "name": "dns"},
            {"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.1"},
        ]}]}}));
        let ports: Vec<(i32, i32, i32, String)> =
            config(&p, 0, &node()).expect("config").port_mappings.into_iter().map(|m| (m.protocol, m.container_port, m.host_port, m.host_ip)).collect();
        assert_eq!(ports, [(0, 80, 8080, String::new()), (1, 53, 0, String::new()), (0, 80, 8080, "10.0.0.1".into())]);
    }

    #[test]
    fn security_context_carries_over() {
        let p = pod(json!({"spec": {"securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000, "supplementalGroups": [4000], "sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]},
            "containers": [{"name": "c", "image": "i", "securityContext": {"privileged": true}}]}}));
        let linux = config(&p, 0, &node()).expect("config").linux.expect("linux");
        let sc = linux.security_context.expect("security context");
        assert_eq!(sc.run_as_user.map(|v| v.value), Some(1000));
        assert_eq!(sc.run_as_group.map(|v| v.value), Some(3000));
        assert_eq!(sc.supplemental_groups, [2000, 4000]);
        assert!(sc.privileged);
        assert_eq!(linux.sysctls.get("net.core.somaxconn").map(String::as_str), Some("1024"));
    }
}
