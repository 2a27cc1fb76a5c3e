//! Bootstrap like upstream's post-start hooks: the system namespaces, the `kubernetes`
//! Service with its Endpoints and EndpointSlice pointing at this API server, and the default
//! ServiceCIDR `kubernetes` holding `--service-cluster-ip-range`.

use std::net::IpAddr;

use ironkube_machinery::ApiError;
use serde_json::{Value, json};

use crate::http::AppState;
use crate::registry::params::WriteOptions;
use crate::registry::store::Sub;

/// Namespaces every cluster has.
pub const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

const MANAGER: &str = "kube-apiserver";

fn opts() -> WriteOptions {
    WriteOptions { field_manager: Some(MANAGER.into()), ..Default::default() }
}

/// Creates `obj` unless it exists; for `reconcile`d objects, replaces a differing spec.
async fn ensure(state: &AppState, group: &str, plural: &str, ns: Option<&str>, obj: Value, reconcile: &[&str]) -> Result<(), ApiError> {
    let store = state.registry.store(group, if group.is_empty() { "v1" } else { "v1" }, plural).ok_or_else(ApiError::path_not_found)?;
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    match store.get(ns, &name, None).await {
        Ok(existing) => {
            let at = |v: &Value, path: &str| path.split('.').try_fold(v, |cur, k| cur.get(k)).cloned();
            let differs = reconcile.iter().any(|f| at(&existing, f) != at(&obj, f));
            if differs {
                let wanted = obj.clone();
                let fields: Vec<String> = reconcile.iter().map(|s| s.to_string()).collect();
                let apply = move |old: &Value| -> Result<Value, ApiError> {
                    let mut new = old.clone();
                    for f in &fields {
                        let mut cur = &mut new;
                        for k in f.split('.') {
                            cur = &mut cur[k];
                        }
                        *cur = at(&wanted, f).unwrap_or(Value::Null);
                    }
                    Ok(new)
                };
                store.patch(ns, &name, &apply, Sub::Main, &opts(), state.admission.as_ref()).await?;
            }
            Ok(())
        }
        Err(e) if e.code == 404 => match store.create(ns, obj, &opts(), state.admission.as_ref()).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == 409 => Ok(()),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// Runs every bootstrap step once; callers retry until it succeeds.
pub async fn run(state: &AppState, service_ip: IpAddr, service_cidrs: &[String], endpoint_ip: IpAddr, port: u16) -> Result<(), ApiError> {
    for ns in SYSTEM_NAMESPACES {
        ensure(state, "", "namespaces", None, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}), &[]).await?;
    }
    default_service_cidr(state, service_cidrs).await?;
    let family = if service_ip.is_ipv4() { "IPv4" } else { "IPv6" };
    let service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {
            "clusterIP": service_ip.to_string(),
            "clusterIPs": [service_ip.to_string()],
            "internalTrafficPolicy": "Cluster",
            "ipFamilies": [family],
            "ipFamilyPolicy": "SingleStack",
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
            "sessionAffinity": "None",
            "type": "ClusterIP",
        },
    });
    // Like upstream's reconciler: the Service follows this server's port.
    ensure(state, "", "services", Some("default"), service, &["spec.ports"]).await?;
    let endpoints = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": endpoint_ip.to_string()}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
    });
    ensure(state, "", "endpoints", Some("default"), endpoints, &["subsets"]).await?;
    let address_type = if endpoint_ip.is_ipv4() { "IPv4" } else { "IPv6" };
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": address_type,
        "endpoints": [{"addresses": [endpoint_ip.to_string()], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    });
    ensure(state, "discovery.k8s.io", "endpointslices", Some("default"), slice, &["endpoints", "ports"]).await?;
    Ok(())
}

/// The ServiceCIDR `kubernetes` with the service ranges, and its Ready condition (upstream's
/// default ServiceCIDR controller; the ranges of an existing one are left as they are).
async fn default_service_cidr(state: &AppState, cidrs: &[String]) -> Result<(), ApiError> {
    let cidr = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR",
        "metadata": {"name": DEFAULT_SERVICE_CIDR},
        "spec": {"cidrs": cidrs},
    });
    ensure(state, "networking.k8s.io", "servicecidrs", None, cidr, &[]).await?;
    let store = state.registry.store("networking.k8s.io", "v1", "servicecidrs").ok_or_else(ApiError::path_not_found)?;
    let current = store.get(None, DEFAULT_SERVICE_CIDR, None).await?;
    let ready = current["status"]["conditions"].as_array().is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
    if !ready {
        let now = crate::registry::store::now_rfc3339();
        let apply = move |old: &Value| -> Result<Value, ApiError> {
            let mut new = old.clone();
            new["status"] = json!({"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now, "message": "Kubernetes default Service CIDR is ready"}]});
            Ok(new)
        };
        store.patch(None, DEFAULT_SERVICE_CIDR, &apply, Sub::Status, &opts(), state.admission.as_ref()).await?;
    }
    Ok(())
}

/// The name of the ServiceCIDR made from `--service-cluster-ip-range`.
pub const DEFAULT_SERVICE_CIDR: &str = "kubernetes";

/// The host's first non-loopback IPv4 address (from /proc/net/fib_trie), for the
/// `kubernetes` endpoints when no `--advertise-address` is given.
pub fn host_address() -> Option<IpAddr> {
    let trie = std::fs::read_to_string("/proc/net/fib_trie").ok()?;
    let lines: Vec<&str> = trie.lines().collect();
    for pair in lines.windows(2) {
        let (a, b) = (pair[0].trim(), pair[1].trim());
        if b.contains("/32 host LOCAL")
            && let Some(ip) = a.strip_prefix("|-- ").and_then(|s| s.parse::<IpAddr>().ok())
            && !ip.is_loopback()
        {
            return Some(ip);
        }
    }
    None
}
