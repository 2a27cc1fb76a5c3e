//! The API server's way to kubelets and pods: pods/proxy and services/proxy go straight to
//! the pod ([`backend`]); pods/log, pods/exec, pods/attach, pods/portforward
//! ([`pods`]) and nodes/proxy ([`nodes`]) become HTTPS requests to the pod's node, found at
//! the Node's preferred address and `status.daemonEndpoints.kubeletEndpoint.Port`
//! (upstream's NodeConnectionInfoGetter), with the `--kubelet-client-certificate`/`-key`
//! client certificate. Upgrade requests are proxied byte for byte once the kubelet switches
//! protocols, whatever the client and the runtime behind the kubelet negotiate (upstream's
//! UpgradeAwareHandler); [`KubeletClient::forward`] does both plain and upgrade requests.
//!
//! Port-forward's SPDY-over-WebSocket tunnel is unwrapped ([`tunnel`], over the small
//! RFC 6455 server in [`websocket`]). Not done: upstream translates a WebSocket
//! `v5.channel.k8s.io` exec/attach into SPDY for the kubelet; here that request reaches the
//! runtime as it is, containerd 1.6 refuses it and kubectl falls back to SPDY (see `pods`).

// Every handler answers with the API server's ApiError, as the rest of the server does.
#![allow(clippy::result_large_err)]

pub mod backend;
pub mod nodes;
pub mod pods;
pub mod tunnel;
pub mod websocket;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;
use hyper_util::rt::TokioIo;
use ironkube_machinery::ApiError;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;
use tracing::debug;

/// kube-apiserver's default `--kubelet-preferred-address-types`.
pub const DEFAULT_PREFERRED_ADDRESS_TYPES: &str = "Hostname,InternalDNS,InternalIP,ExternalDNS,ExternalIP";
/// The kubelet port used when a Node reports none.
pub const DEFAULT_KUBELET_PORT: u16 = 10250;

/// What failed setting the kubelet client up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {message}")]
    Invalid { what: &'static str, message: String },
}

/// Where a node's kubelet listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub host: String,
    pub port: u16,
}

impl Location {
    /// `host:port`, bracketing IPv6 addresses.
    pub fn authority(&self) -> String {
        if self.host.contains(':') { format!("[{}]:{}", self.host, self.port) } else { format!("{}:{}", self.host, self.port) }
    }
}

/// The kubelet's address from a Node (upstream's GetPreferredNodeAddress): the first address
/// of the first preferred type it reports, and its reported port.
pub fn node_location(node: &Value, preferred: &[String]) -> Result<Location, ApiError> {
    let addresses = node["status"]["addresses"].as_array().cloned().unwrap_or_default();
    let host = preferred
        .iter()
        .find_map(|t| addresses.iter().find(|a| a["type"].as_str() == Some(t.as_str())).and_then(|a| a["address"].as_str()));
    let Some(host) = host else {
        let known: Vec<String> = addresses
            .iter()
            .map(|a| format!("{{{} {}}}", a["type"].as_str().unwrap_or(""), a["address"].as_str().unwrap_or("")))
            .collect();
        return Err(ApiError::internal(format!("no preferred addresses found; known addresses: [{}]", known.join(" "))));
    };
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    Ok(Location { host: host.to_string(), port })
}

/// Accepts any kubelet serving certificate: upstream's kubelet client does not verify the
/// kubelet without `--kubelet-certificate-authority`. Signatures are still checked.
#[derive(Debug)]
struct AnyServerCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The kubelet client's settings (kube-apiserver's `--kubelet-*` flags).
#[derive(Debug, Clone, Default)]
pub struct KubeletClientConfig {
    pub client_certificate: Option<std::path::PathBuf>,
    pub client_key: Option<std::path::PathBuf>,
    pub certificate_authority: Option<std::path::PathBuf>,
    pub preferred_address_types: Vec<String>,
    /// How long connecting (TCP and TLS) may take (`--kubelet-timeout`).
    pub timeout: Duration,
}

/// HTTPS to kubelets.
pub struct KubeletClient {
    tls: tokio_rustls::TlsConnector,
    pub preferred_address_types: Vec<String>,
    timeout: Duration,
}

fn read(what: &'static str, path: &std::path::Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Read { what, path: path.to_path_buf(), source })
}

impl KubeletClient {
    pub fn new(config: &KubeletClientConfig) -> Result<Self, Error> {
        let invalid = |what: &'static str| move |e: &dyn std::fmt::Display| Error::Invalid { what, message: e.to_string() };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid("kubelet client TLS")(&e))?;
        let builder = match &config.certificate_authority {
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(&read("--kubelet-certificate-authority", path)?) {
                    let cert = cert.map_err(|e| invalid("--kubelet-certificate-authority")(&e))?;
                    roots.add(cert).map_err(|e| invalid("--kubelet-certificate-authority")(&e))?;
                }
                builder.with_root_certificates(roots)
            }
            None => builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyServerCertificate(provider))),
        };
        let mut tls = match (&config.client_certificate, &config.client_key) {
            (Some(cert), Some(key)) => {
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read("--kubelet-client-certificate", cert)?)
                    .collect::<Result<_, _>>()
                    .map_err(|e| invalid("--kubelet-client-certificate")(&e))?;
                let key = PrivateKeyDer::from_pem_slice(&read("--kubelet-client-key", key)?).map_err(|e| invalid("--kubelet-client-key")(&e))?;
                builder.with_client_auth_cert(certs, key).map_err(|e| invalid("--kubelet-client-certificate")(&e))?
            }
            _ => builder.with_no_client_auth(),
        };
        // Upgrades (exec, attach, port-forward) are HTTP/1.1.
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let preferred = if config.preferred_address_types.is_empty() {
            DEFAULT_PREFERRED_ADDRESS_TYPES.split(',').map(str::to_string).collect()
        } else {
            config.preferred_address_types.clone()
        };
        let timeout = if config.timeout.is_zero() { Duration::from_secs(5) } else { config.timeout };
        Ok(KubeletClient { tls: tokio_rustls::TlsConnector::from(Arc::new(tls)), preferred_address_types: preferred, timeout })
    }

    async fn connect(&self, at: &Location) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
        let authority = at.authority();
        let dial = async {
            let tcp = TcpStream::connect(&authority).await.map_err(|e| format!("dial tcp {authority}: {e}"))?;
            let _ = tcp.set_nodelay(true);
            let name = match at.host.parse::<IpAddr>() {
                Ok(ip) => ServerName::IpAddress(ip.into()),
                Err(_) => ServerName::try_from(at.host.clone()).map_err(|e| e.to_string())?,
            };
            self.tls.connect(name, tcp).await.map_err(|e| format!("tls handshake with {authority}: {e}"))
        };
        match tokio::time::timeout(self.timeout, dial).await {
            Ok(r) => r,
            Err(_) => Err(format!("dial tcp {authority}: i/o timeout")),
        }
    }

    /// Sends one request to the kubelet at `at` over a connection of its own (kept open for
    /// an upgrade) and answers with the kubelet's response.
    pub async fn send(&self, at: &Location, out: http::Request<Body>) -> Result<http::Response<hyper::body::Incoming>, String> {
        send_over(self.connect(at).await?, out).await
    }

    /// Sends `req` (its method, headers and body) to `path_and_query` on the kubelet at `at`
    /// and answers with the kubelet's response; after `101 Switching Protocols` the client's
    /// and the kubelet's connections are spliced. The error is what went wrong reaching it.
    pub async fn forward(&self, req: Request, at: &Location, path_and_query: &str) -> Result<Response, String> {
        let conn = self.connect(at).await?;
        forward_over(conn, req, &at.authority(), path_and_query).await
    }
}

/// Sends one request over `io` (HTTP/1.1, the connection kept for an upgrade).
async fn send_over<S>(io: S, out: http::Request<Body>) -> Result<http::Response<hyper::body::Incoming>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            debug!(error = %e, "proxied connection ended");
        }
    });
    sender.send_request(out).await.map_err(|e| e.to_string())
}

/// Forwards `req` to `path_and_query` over `io` to `authority` and answers with the
/// backend's response; after `101 Switching Protocols` both connections are spliced
/// (upstream's UpgradeAwareHandler).
async fn forward_over<S>(io: S, mut req: Request, authority: &str, path_and_query: &str) -> Result<Response, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let upgrade = is_upgrade(req.headers());
    let client_side = hyper::upgrade::on(&mut req);
    let (parts, body) = req.into_parts();
    let mut out = http::Request::builder().method(parts.method).uri(path_and_query).version(http::Version::HTTP_11);
    if let Some(h) = out.headers_mut() {
        *h = forwarded_headers(&parts.headers, authority, upgrade);
    }
    let out = out.body(body).map_err(|e| e.to_string())?;
    let mut resp = send_over(io, out).await?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let backend_side = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            match tokio::join!(client_side, backend_side) {
                (Ok(client), Ok(backend)) => {
                    let (mut a, mut b) = (TokioIo::new(client), TokioIo::new(backend));
                    if let Err(e) = tokio::io::copy_bidirectional(&mut a, &mut b).await {
                        debug!(error = %e, "proxied stream ended");
                    }
                }
                (Err(e), _) | (_, Err(e)) => debug!(error = %e, "upgrade failed"),
            }
        });
        let (parts, _) = resp.into_parts();
        return Ok(Response::from_parts(parts, Body::empty()));
    }
    let (mut parts, body) = resp.into_parts();
    for h in HOP_BY_HOP {
        parts.headers.remove(HeaderName::from_static(h));
    }
    Ok(Response::from_parts(parts, Body::new(body)))
}

/// How long dialling a pod or service backend may take.
const BACKEND_DIAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Forwards `req` to a pod's (or a service endpoint's) `host:port` over plain HTTP, or over
/// TLS without verifying the backend's certificate for `https` (upstream's proxy transport
/// for pods/proxy and services/proxy). The error is what went wrong reaching it.
pub async fn forward_to_backend(req: Request, https: bool, authority: &str, path_and_query: &str) -> Result<Response, String> {
    let dial = async {
        let tcp = TcpStream::connect(authority).await.map_err(|e| format!("dial tcp {authority}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        Ok::<_, String>(tcp)
    };
    let tcp = match tokio::time::timeout(BACKEND_DIAL_TIMEOUT, dial).await {
        Ok(r) => r?,
        Err(_) => return Err(format!("dial tcp {authority}: i/o timeout")),
    };
    if !https {
        return forward_over(tcp, req, authority, path_and_query).await;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServerCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let host = authority.rsplit_once(':').map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']')).unwrap_or(authority);
    let name = match host.parse::<IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?,
    };
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.map_err(|e| format!("tls handshake with {authority}: {e}"))?;
    forward_over(tls, req, authority, path_and_query).await
}

/// Headers that describe one connection, not the request (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] =
    ["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding"];

/// Whether a request asks to switch protocols.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    connection_upgrade && headers.contains_key(header::UPGRADE)
}

/// The headers the kubelet gets: end-to-end ones except the caller's credentials (upstream's
/// authentication filter removes `Authorization` once it has authenticated), `Connection:
/// Upgrade` when upgrading, and its own `Host`.
pub fn forwarded_headers(incoming: &HeaderMap, host: &str, upgrade: bool) -> HeaderMap {
    let named: Vec<String> = incoming
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| t != "upgrade")
        .collect();
    let mut out = HeaderMap::with_capacity(incoming.len());
    for (name, value) in incoming {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n) || named.iter().any(|h| h == n) || name == header::HOST || name == header::AUTHORIZATION {
            continue;
        }
        if name == header::UPGRADE && !upgrade {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    if upgrade {
        out.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    }
    if let Ok(h) = HeaderValue::from_str(host) {
        out.insert(header::HOST, h);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kubelets_are_found_by_preferred_address_type() {
        let node = json!({"status": {
            "addresses": [{"type": "InternalIP", "address": "10.0.0.5"}, {"type": "Hostname", "address": "node-a"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10555}},
        }});
        let types = |s: &str| s.split(',').map(str::to_string).collect::<Vec<_>>();
        let at = node_location(&node, &types(DEFAULT_PREFERRED_ADDRESS_TYPES)).expect("found");
        assert_eq!(at, Location { host: "node-a".into(), port: 10555 });
        let at = node_location(&node, &types("InternalIP,ExternalIP,Hostname")).expect("found");
        assert_eq!(at.authority(), "10.0.0.5:10555");
        let err = node_location(&node, &types("ExternalIP")).expect_err("none");
        assert_eq!(err.code, 500);
        assert!(err.message.contains("no preferred addresses found; known addresses: [{InternalIP 10.0.0.5} {Hostname node-a}]"), "{}", err.message);
        let bare = json!({"status": {"addresses": [{"type": "InternalIP", "address": "fd00::1"}]}});
        let at = node_location(&bare, &types("InternalIP")).expect("found");
        assert_eq!(at.authority(), "[fd00::1]:10250", "the default port when none is reported");
    }

    #[test]
    fn credentials_and_hop_by_hop_headers_stay_here() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("authorization", "Bearer x"),
            ("connection", "Upgrade"),
            ("upgrade", "SPDY/3.1"),
            ("x-stream-protocol-version", "v4.channel.k8s.io"),
            ("host", "api:6443"),
            ("keep-alive", "1"),
        ] {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        let out = forwarded_headers(&h, "10.0.0.5:10250", true);
        assert!(out.get(header::AUTHORIZATION).is_none() && out.get("keep-alive").is_none());
        assert_eq!(out.get(header::HOST).and_then(|v| v.to_str().ok()), Some("10.0.0.5:10250"));
        assert_eq!(out.get(header::UPGRADE).and_then(|v| v.to_str().ok()), Some("SPDY/3.1"));
        assert_eq!(out.get("x-stream-protocol-version").and_then(|v| v.to_str().ok()), Some("v4.channel.k8s.io"));
        assert!(is_upgrade(&h));
        h.remove(header::CONNECTION);
        assert!(!is_upgrade(&h));
    }
}
