//! pods/proxy and services/proxy: `/api/v1/namespaces/{ns}/pods/{id}/proxy/{path}` and
//! `.../services/{id}/proxy/{path}` forward any method straight to the pod's IP, or to one
//! ready endpoint of the service, from the API server itself (upstream's pod and service
//! ResourceLocation with its proxy transport; no kube-proxy involved). `id` is `name`,
//! `name:port` or `scheme:name:port`.

use axum::extract::Request;
use axum::response::Response;
use ironkube_machinery::ApiError;
use serde_json::Value;

use super::nodes::{proxied_path, split_scheme_name_port};
use crate::http::AppState;

/// Where a proxied request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub https: bool,
    /// `host` or `host:port` (IPv6 hosts bracketed).
    pub authority: String,
}

fn join_host_port(ip: &str, port: &str) -> String {
    let host = if ip.contains(':') { format!("[{ip}]") } else { ip.to_string() };
    if port.is_empty() { host } else { format!("{host}:{port}") }
}

/// Upstream's IsGlobalUnicast for the pod IP.
fn global_unicast(ip: &str) -> bool {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => !(v4.is_loopback() || v4.is_unspecified() || v4.is_multicast() || v4.is_link_local() || v4.is_broadcast()),
        Ok(std::net::IpAddr::V6(v6)) => !(v6.is_loopback() || v6.is_unspecified() || v6.is_multicast() || v6.is_unicast_link_local()),
        Err(_) => false,
    }
}

/// A pod's backend: the port given, else the first declared container port, else none.
pub fn pod_backend(pod: &Value, scheme: &str, port: &str) -> Result<Backend, ApiError> {
    let mut port = port.to_string();
    if port.is_empty() {
        let containers = pod["spec"]["containers"].as_array().cloned().unwrap_or_default();
        if let Some(p) = containers.iter().find_map(|c| c["ports"].as_array().and_then(|p| p.first()).and_then(|p| p["containerPort"].as_i64())) {
            port = p.to_string();
        }
    }
    let ip = pod["status"]["podIP"].as_str().unwrap_or("");
    if !global_unicast(ip) {
        return Err(ApiError::bad_request("address not allowed"));
    }
    Ok(Backend { https: scheme == "https", authority: join_host_port(ip, &port) })
}

/// A service's backend: the service port (by name, or by number mapped to its name), then a
/// ready endpoint address of a pod that still has that IP, starting from a random subset and
/// address as upstream does.
pub fn service_backend(id: &str, service: &Value, endpoints: &Value, pods: &[Value], scheme: &str, port: &str) -> Result<Backend, ApiError> {
    let name = service["metadata"]["name"].as_str().unwrap_or_default();
    let mut port_name = port.to_string();
    if let Ok(number) = port.parse::<i64>() {
        let ports = service["spec"]["ports"].as_array().cloned().unwrap_or_default();
        match ports.iter().find(|p| p["port"].as_i64() == Some(number)) {
            Some(p) => port_name = p["name"].as_str().unwrap_or("").to_string(),
            None => return Err(ApiError::service_unavailable(format!("no service port {number} found for service \"{name}\""))),
        }
    }
    let subsets = endpoints["subsets"].as_array().cloned().unwrap_or_default();
    if subsets.is_empty() {
        return Err(ApiError::service_unavailable(format!("no endpoints available for service \"{name}\"")));
    }
    let valid = |addr: &Value| -> bool {
        let ip = addr["ip"].as_str().unwrap_or("");
        let target = &addr["targetRef"];
        if target["kind"] != "Pod" {
            return false;
        }
        pods.iter().any(|p| {
            p["metadata"]["name"] == target["name"]
                && p["metadata"]["namespace"] == target["namespace"]
                && (p["status"]["podIP"].as_str() == Some(ip) || p["status"]["podIPs"].as_array().is_some_and(|ips| ips.iter().any(|i| i["ip"].as_str() == Some(ip))))
        })
    };
    let seed = rand_index(subsets.len());
    for i in 0..subsets.len() {
        let subset = &subsets[(seed + i) % subsets.len()];
        let addresses = subset["addresses"].as_array().cloned().unwrap_or_default();
        if addresses.is_empty() {
            continue;
        }
        let ports = subset["ports"].as_array().cloned().unwrap_or_default();
        for p in ports.iter().filter(|p| p["name"].as_str().unwrap_or("") == port_name) {
            let start = rand_index(addresses.len());
            for t in 0..addresses.len() {
                let addr = &addresses[(start + t) % addresses.len()];
                if !valid(addr) {
                    continue;
                }
                let ip = addr["ip"].as_str().unwrap_or("");
                let target_port = p["port"].as_i64().unwrap_or(0).to_string();
                return Ok(Backend { https: scheme == "https", authority: join_host_port(ip, &target_port) });
            }
        }
    }
    Err(ApiError::service_unavailable(format!("no endpoints available for service \"{id}\"")))
}

/// An index below `len` (len > 0), not the same on every call.
fn rand_index(len: usize) -> usize {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    (nanos as usize) % len.max(1)
}

async fn send(backend: &Backend, req: Request) -> Result<Response, ApiError> {
    let path = proxied_path(req.uri().path(), req.uri().query());
    super::forward_to_backend(req, backend.https, &backend.authority, &path)
        .await
        .map_err(|e| ApiError::service_unavailable(format!("error trying to reach service: {e}")))
}

/// Any method on `pods/{id}/proxy[/path]`.
pub async fn pod_proxy(state: &AppState, namespace: Option<&str>, id: &str, req: Request) -> Result<Response, ApiError> {
    let Some((scheme, name, port)) = split_scheme_name_port(id) else {
        return Err(ApiError::bad_request(format!("invalid pod request {id:?}")));
    };
    let pods = state.registry.store("", "v1", "pods").ok_or_else(ApiError::path_not_found)?;
    let pod = pods.get(namespace, name, None).await?;
    let backend = pod_backend(&pod, scheme, port)?;
    send(&backend, req).await
}

/// Any method on `services/{id}/proxy[/path]`.
pub async fn service_proxy(state: &AppState, namespace: Option<&str>, id: &str, req: Request) -> Result<Response, ApiError> {
    let Some((scheme, name, port)) = split_scheme_name_port(id) else {
        return Err(ApiError::bad_request(format!("invalid service request {id:?}")));
    };
    let store = |plural: &str| state.registry.store("", "v1", plural).ok_or_else(ApiError::path_not_found);
    let service = store("services")?.get(namespace, name, None).await?;
    let endpoints = store("endpoints")?.get(namespace, name, None).await?;
    let mut pods = Vec::new();
    for addr in endpoints["subsets"].as_array().into_iter().flatten().flat_map(|s| s["addresses"].as_array().into_iter().flatten()) {
        if addr["targetRef"]["kind"] == "Pod"
            && let Some(pod_name) = addr["targetRef"]["name"].as_str()
            && let Ok(pod) = store("pods")?.get(addr["targetRef"]["namespace"].as_str().or(namespace), pod_name, None).await
        {
            pods.push(pod);
        }
    }
    let backend = service_backend(id, &service, &endpoints, &pods, scheme, port)?;
    send(&backend, req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pods_are_reached_at_their_ip_and_first_port() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b", "ports": [{"containerPort": 8080}, {"containerPort": 9090}]}]}, "status": {"podIP": "10.244.0.7"}});
        assert_eq!(pod_backend(&pod, "", "").expect("ok"), Backend { https: false, authority: "10.244.0.7:8080".into() });
        assert_eq!(pod_backend(&pod, "https", "443").expect("ok"), Backend { https: true, authority: "10.244.0.7:443".into() });
        let bare = json!({"spec": {"containers": [{"name": "a"}]}, "status": {"podIP": "fd00::7"}});
        assert_eq!(pod_backend(&bare, "", "").expect("ok").authority, "[fd00::7]");
        let pending = json!({"spec": {"containers": []}, "status": {}});
        let err = pod_backend(&pending, "", "80").expect_err("no IP");
        assert_eq!((err.code, err.message.as_str()), (400, "address not allowed"));
        let local = json!({"spec": {"containers": []}, "status": {"podIP": "127.0.0.1"}});
        assert!(pod_backend(&local, "", "80").is_err());
    }

    #[test]
    fn services_are_reached_through_a_ready_endpoint_of_the_named_port() {
        let svc = json!({"metadata": {"name": "web"}, "spec": {"ports": [{"name": "http", "port": 80}, {"name": "tls", "port": 443}]}});
        let eps = json!({"subsets": [{"addresses": [{"ip": "10.244.0.9", "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "ns"}}],
            "ports": [{"name": "http", "port": 8080}, {"name": "tls", "port": 8443}]}]});
        let pods = vec![json!({"metadata": {"name": "web-1", "namespace": "ns"}, "status": {"podIP": "10.244.0.9"}})];
        assert_eq!(service_backend("web:http", &svc, &eps, &pods, "", "http").expect("ok").authority, "10.244.0.9:8080");
        assert_eq!(service_backend("https:web:443", &svc, &eps, &pods, "https", "443").expect("ok"), Backend { https: true, authority: "10.244.0.9:8443".into() });
        let err = service_backend("web:81", &svc, &eps, &pods, "", "81").expect_err("no such port");
        assert_eq!((err.code, err.message.as_str()), (503, "no service port 81 found for service \"web\""));
        let err = service_backend("web", &svc, &json!({}), &pods, "", "").expect_err("no endpoints");
        assert_eq!(err.message, "no endpoints available for service \"web\"");
        // The endpoint's pod has moved on: no valid address.
        let moved = vec![json!({"metadata": {"name": "web-1", "namespace": "ns"}, "status": {"podIP": "10.244.0.10"}})];
        let err = service_backend("web:http", &svc, &eps, &moved, "", "http").expect_err("stale");
        assert_eq!(err.message, "no endpoints available for service \"web:http\"");
        // An unnamed single port: the empty name matches.
        let one = json!({"metadata": {"name": "one"}, "spec": {"ports": [{"port": 80}]}});
        let one_eps = json!({"subsets": [{"addresses": [{"ip": "10.244.0.9", "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "ns"}}], "ports": [{"port": 9376}]}]});
        assert_eq!(service_backend("one", &one, &one_eps, &pods, "", "").expect("ok").authority, "10.244.0.9:9376");
        assert_eq!(service_backend("one:80", &one, &one_eps, &pods, "", "80").expect("ok").authority, "10.244.0.9:9376");
    }
}
