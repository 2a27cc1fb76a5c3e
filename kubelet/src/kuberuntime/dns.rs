//! A pod's DNS configuration as the kubelet hands it to the runtime (upstream's
//! `pkg/kubelet/network/dns`): `dnsPolicy: None` takes the pod's dnsConfig alone; `Default`
//! starts from the node's resolv.conf; `ClusterFirst` uses the cluster DNS servers and the
//! cluster search path with `ndots:5` when the kubelet has `--cluster-dns`, and otherwise
//! falls back to `Default` (upstream records a MissingClusterDNS event then). The pod's
//! dnsConfig is merged last: its servers and searches appended (duplicates dropped), its
//! options replacing same-named ones.

use k8s_openapi::api::core::v1::Pod;

use crate::cri::api;

/// The most search domains and nameservers the resolver uses (upstream's limits).
const MAX_SEARCHES: usize = 32;
const MAX_NAMESERVERS: usize = 3;

/// The node's resolv.conf, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

impl ResolvConf {
    pub fn parse(text: &str) -> Self {
        let mut out = ResolvConf::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => out.nameservers.extend(words.next().map(str::to_string)),
                // The last search line wins, as in the resolver.
                Some("search") => out.searches = words.map(str::to_string).collect(),
                Some("options") => out.options.extend(words.map(str::to_string)),
                _ => {}
            }
        }
        out
    }
}

/// What the kubelet knows of the cluster's DNS.
#[derive(Debug, Clone)]
pub struct ClusterDns<'a> {
    /// --cluster-dns.
    pub servers: &'a [String],
    /// --cluster-domain.
    pub domain: &'a str,
    /// The node's resolv.conf.
    pub host: &'a ResolvConf,
}

fn push_unique(list: &mut Vec<String>, items: impl IntoIterator<Item = String>) {
    for item in items {
        if !list.contains(&item) {
            list.push(item);
        }
    }
}

/// The `name[:value]` key of an option.
fn option_name(option: &str) -> &str {
    option.split(':').next().unwrap_or(option)
}

/// The DNS config of `pod`'s sandbox; `None` leaves the runtime's default (the node's file).
pub fn config(pod: &Pod, cluster: &ClusterDns<'_>) -> Option<api::DnsConfig> {
    let spec = pod.spec.as_ref()?;
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let host_network = spec.host_network.unwrap_or(false);
    let mut out = api::DnsConfig::default();
    let cluster_first = match policy {
        "None" => false,
        "ClusterFirstWithHostNet" => !cluster.servers.is_empty(),
        "ClusterFirst" => !host_network && !cluster.servers.is_empty(),
        _ => false,
    };
    if policy != "None" {
        if cluster_first {
            out.servers = cluster.servers.to_vec();
            let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
            let domain = cluster.domain;
            out.searches = vec![format!("{ns}.svc.{domain}"), format!("svc.{domain}"), domain.to_string()];
            push_unique(&mut out.searches, cluster.host.searches.iter().cloned());
            out.options = vec!["ndots:5".to_string()];
        } else {
            out.servers = cluster.host.nameservers.clone();
            out.searches = cluster.host.searches.clone();
            out.options = cluster.host.options.clone();
        }
    }
    if let Some(dns) = spec.dns_config.as_ref() {
        push_unique(&mut out.servers, dns.nameservers.iter().flatten().cloned());
        push_unique(&mut out.searches, dns.searches.iter().flatten().cloned());
        for o in dns.options.iter().flatten() {
            let name = o.name.clone().unwrap_or_default();
            let option = match &o.value {
                Some(v) => format!("{name}:{v}"),
                None => name.clone(),
            };
            out.options.retain(|existing| option_name(existing) != name);
            out.options.push(option);
        }
    }
    out.servers.truncate(MAX_NAMESERVERS);
    out.searches.truncate(MAX_SEARCHES);
    // Nothing to say: let the runtime copy the node's file, as before.
    if out.servers.is_empty() && out.searches.is_empty() && out.options.is_empty() {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": spec})).expect("pod")
    }

    #[test]
    fn policies_and_pod_dns_config() {
        let host = ResolvConf::parse("# comment\nnameserver 192.0.2.53\nsearch example.com\noptions edns0\n");
        assert_eq!(host, ResolvConf { nameservers: vec!["192.0.2.53".into()], searches: vec!["example.com".into()], options: vec!["edns0".into()] });
        let servers = vec!["10.96.0.10".to_string()];
        let with_dns = ClusterDns { servers: &servers, domain: "cluster.local", host: &host };
        let without = ClusterDns { servers: &[], domain: "cluster.local", host: &host };

        let first = config(&pod(json!({"containers": []})), &with_dns).expect("config");
        assert_eq!(first.servers, ["10.96.0.10"]);
        assert_eq!(first.searches, ["ns.svc.cluster.local", "svc.cluster.local", "cluster.local", "example.com"]);
        assert_eq!(first.options, ["ndots:5"]);

        let fallback = config(&pod(json!({"containers": []})), &without).expect("config");
        assert_eq!((fallback.servers, fallback.options), (vec!["192.0.2.53".to_string()], vec!["edns0".to_string()]));

        let none = config(
            &pod(json!({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["resolv.conf.local"], "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}})),
            &with_dns,
        )
        .expect("config");
        assert_eq!(none.servers, ["1.1.1.1"]);
        assert_eq!(none.searches, ["resolv.conf.local"]);
        assert_eq!(none.options, ["ndots:2", "edns0"]);

        let merged = config(&pod(json!({"dnsConfig": {"options": [{"name": "ndots", "value": "1"}], "nameservers": ["10.96.0.10"]}})), &with_dns).expect("config");
        assert_eq!((merged.servers, merged.options), (vec!["10.96.0.10".to_string()], vec!["ndots:1".to_string()]));
    }
}
