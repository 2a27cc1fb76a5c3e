//! nodes/proxy: `/api/v1/nodes/{name}/proxy/{path}` forwards any method to `{path}` on the
//! node's kubelet (upstream's pkg/registry/core/node/rest/proxy.go and ResourceLocation).
//! The name may carry a port (`name:port`, `scheme:name:port`); a port other than the
//! kubelet's is not proxied here (upstream sends those through its plain proxy transport).
//! As upstream, only globally routable kubelet addresses are proxied (loopback is refused).

use std::net::IpAddr;

use axum::extract::Request;
use axum::response::Response;
use ironkube_machinery::ApiError;

use super::KubeletClient;
use super::pods::kubelet_of;
use crate::http::AppState;

/// `name`, `name:port` or `scheme:name:port` (upstream's SplitSchemeNamePort).
pub fn split_scheme_name_port(id: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, name, port) = match parts.as_slice() {
        [name] => ("", *name, ""),
        [name, port] => ("", *name, *port),
        [scheme, name, port] => (*scheme, *name, *port),
        _ => return None,
    };
    if name.is_empty() || !matches!(scheme, "" | "http" | "https") {
        return None;
    }
    Some((scheme, name, port))
}

/// Whether a kubelet address may be proxied to (upstream's isProxyableHostname: every
/// address must be global unicast).
pub fn proxyable(host: &str) -> Result<(), String> {
    let ips: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => {
            use std::net::ToSocketAddrs as _;
            (host, 0).to_socket_addrs().map_err(|e| e.to_string())?.map(|a| a.ip()).collect()
        }
    };
    if ips.is_empty() {
        return Err("no addresses for hostname".into());
    }
    let global_unicast = |ip: &IpAddr| match ip {
        IpAddr::V4(v4) => !(v4.is_loopback() || v4.is_unspecified() || v4.is_multicast() || v4.is_link_local() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_loopback() || v6.is_unspecified() || v6.is_multicast() || v6.is_unicast_link_local()),
    };
    if ips.iter().all(global_unicast) { Ok(()) } else { Err("address not allowed".into()) }
}

/// The part of the request path after `/proxy`, kept as the client wrote it, with the query.
pub fn proxied_path(path: &str, query: Option<&str>) -> String {
    let rest = path.split_once("/proxy").map(|(_, r)| r).unwrap_or("");
    let rest = if rest.is_empty() { "/" } else { rest };
    match query.filter(|q| !q.is_empty()) {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_string(),
    }
}

/// Any method on `nodes/{id}/proxy[/path]`.
pub async fn proxy(state: &AppState, kubelet: &KubeletClient, id: &str, req: Request) -> Result<Response, ApiError> {
    let Some((_, name, port)) = split_scheme_name_port(id) else {
        return Err(ApiError::bad_request(format!("invalid node request {id:?}")));
    };
    let at = kubelet_of(state, kubelet, name).await?;
    proxyable(&at.host).map_err(ApiError::bad_request)?;
    if !port.is_empty() && port != at.port.to_string() {
        return Err(ApiError::service_unavailable(format!("proxying to port {port} of node {name} (not its kubelet's) is not supported")));
    }
    let path = proxied_path(req.uri().path(), req.uri().query());
    kubelet.forward(req, &at, &path).await.map_err(|e| ApiError::service_unavailable(format!("error trying to reach service: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_split_as_upstream() {
        assert_eq!(split_scheme_name_port("n1"), Some(("", "n1", "")));
        assert_eq!(split_scheme_name_port("n1:10250"), Some(("", "n1", "10250")));
        assert_eq!(split_scheme_name_port("https:n1:10250"), Some(("https", "n1", "10250")));
        assert_eq!(split_scheme_name_port("ftp:n1:1"), None);
        assert_eq!(split_scheme_name_port("a:b:c:d"), None);
        assert_eq!(split_scheme_name_port(":80"), None);
    }

    #[test]
    fn only_global_unicast_kubelets_are_proxied() {
        assert_eq!(proxyable("10.1.2.3"), Ok(()));
        assert_eq!(proxyable("127.0.0.1"), Err("address not allowed".into()));
        assert_eq!(proxyable("169.254.1.1"), Err("address not allowed".into()));
        assert_eq!(proxyable("::1"), Err("address not allowed".into()));
    }

    #[test]
    fn the_path_after_proxy_goes_on() {
        assert_eq!(proxied_path("/api/v1/nodes/n1/proxy/containerLogs/d/p/c", Some("tailLines=1")), "/containerLogs/d/p/c?tailLines=1");
        assert_eq!(proxied_path("/api/v1/nodes/n1/proxy", None), "/");
        assert_eq!(proxied_path("/api/v1/nodes/n1/proxy/healthz/", None), "/healthz/");
    }
}
