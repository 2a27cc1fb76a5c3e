//! The /etc/hosts the kubelet writes for each pod and mounts into its containers (the CRI
//! leaves it to the kubelet): localhost entries, the pod's own IPs with its hostname (and
//! FQDN with a subdomain), then the pod's hostAliases; host-network pods get the node's
//! file under a header of their own.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{HostAlias, Pod};

use crate::cri::api;

pub const ETC_HOSTS: &str = "/etc/hosts";

fn aliases(host_aliases: &[HostAlias]) -> String {
    if host_aliases.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n# Entries added by HostAliases.\n");
    for a in host_aliases {
        out.push_str(&format!("{}\t{}\n", a.ip, a.hostnames.clone().unwrap_or_default().join("\t")));
    }
    out
}

/// The managed file of a pod with its own network.
pub fn managed(ips: &[String], hostname: &str, domain: &str, host_aliases: &[HostAlias]) -> String {
    let mut out = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    for ip in ips {
        if domain.is_empty() {
            out.push_str(&format!("{ip}\t{hostname}\n"));
        } else {
            out.push_str(&format!("{ip}\t{hostname}.{domain}\t{hostname}\n"));
        }
    }
    out + &aliases(host_aliases)
}

/// The file of a host-network pod: the node's own.
pub fn host_network(node_hosts: &str, host_aliases: &[HostAlias]) -> String {
    format!("# Kubernetes-managed hosts file (host network).\n{node_hosts}{}", aliases(host_aliases))
}

/// Writes the pod's hosts file under its directory and returns the mount for its containers
/// (none when a container mounts its own /etc/hosts, decided by the caller).
pub fn write(pod: &Pod, pod_dir: &Path, ips: &[String], hostname: &str, domain: &str) -> std::io::Result<api::Mount> {
    let spec = pod.spec.as_ref();
    let host_aliases = spec.and_then(|s| s.host_aliases.clone()).unwrap_or_default();
    let content = if spec.and_then(|s| s.host_network).unwrap_or(false) {
        host_network(&std::fs::read_to_string(ETC_HOSTS).unwrap_or_default(), &host_aliases)
    } else {
        managed(ips, hostname, domain, &host_aliases)
    };
    std::fs::create_dir_all(pod_dir)?;
    let path: PathBuf = pod_dir.join("etc-hosts");
    let tmp = pod_dir.join(".etc-hosts.tmp");
    std::fs::write(&tmp, content)?;
    std::fs::rename(&tmp, &path)?;
    Ok(api::Mount { container_path: ETC_HOSTS.into(), host_path: path.display().to_string(), ..Default::default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_file_as_upstream_writes_it() {
        let plain = managed(&["10.244.0.5".into()], "b", "", &[]);
        assert!(plain.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"), "{plain}");
        assert!(plain.ends_with("fe00::2\tip6-allrouters\n10.244.0.5\tb\n"), "{plain}");
        let alias = HostAlias { ip: "127.0.0.1".into(), hostnames: Some(vec!["foo.local".into(), "bar.local".into()]) };
        let full = managed(&["10.244.0.5".into()], "web-0", "web.default.svc.cluster.local", &[alias]);
        assert!(
            full.ends_with("10.244.0.5\tweb-0.web.default.svc.cluster.local\tweb-0\n\n# Entries added by HostAliases.\n127.0.0.1\tfoo.local\tbar.local\n"),
            "{full}"
        );
        assert_eq!(host_network("127.0.0.1 localhost\n", &[]), "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n");
    }
}
