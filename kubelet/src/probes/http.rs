//! HTTP GETs for probes and lifecycle hooks, built and sent as upstream's kubelet does
//! (pkg/probe/http: request.go, http.go; the lifecycle client in kubelet.go):
//!
//! - the URL is `scheme://host:port/path`, scheme `http` unless `HTTPS`, host the pod IP
//!   unless `httpGet.host`, port a number or the name of a container port;
//! - `httpHeaders` are sent as given; a `Host` header replaces the request's host, a missing
//!   `User-Agent` becomes `kube-probe/1.33` (`kube-lifecycle/1.33` for hooks), a missing
//!   `Accept` becomes `*/*` and an empty one removes it; probes send `Connection: close`;
//! - HTTPS skips certificate verification;
//! - redirects are followed only to the same host name, at most 10; a redirect elsewhere
//!   ends the chain with its own (3xx) response;
//! - at most 10 KiB of the body is read.
//!
//! Errors read like Go's `url.Error`: `Get "http://10.0.0.1:8080/": dial tcp 10.0.0.1:8080:
//! connect: connection refused`. Only HTTP/1.1 is spoken (upstream may negotiate HTTP/2 over
//! TLS).

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Container, HTTPGetAction};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, timeout_at};

use super::Outcome;
use super::messages::{go_errno, go_quote, join_host_port};
use super::port;

/// The Kubernetes minor version in the `kube-probe/` and `kube-lifecycle/` user agents.
pub const USER_AGENT_VERSION: &str = "1.33";
/// The most of a response body that is read.
pub const MAX_BODY: usize = 10 * 1024;
/// How many requests a redirect chain may take.
const MAX_REQUESTS: usize = 10;

/// Who sends the request: it names the user agent and whether connections are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Probe,
    Lifecycle,
}

impl Purpose {
    fn user_agent(self) -> String {
        match self {
            Purpose::Probe => format!("kube-probe/{USER_AGENT_VERSION}"),
            Purpose::Lifecycle => format!("kube-lifecycle/{USER_AGENT_VERSION}"),
        }
    }
}

/// An absolute http(s) URL, as far as the prober needs one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub scheme: String,
    /// Without brackets for IPv6.
    pub host: String,
    /// `None` when the URL left it to the scheme.
    pub port: Option<u16>,
    /// Path and query; empty means `/`.
    pub path: String,
}

impl Url {
    fn authority(&self) -> String {
        match self.port {
            Some(p) => join_host_port(&self.host, p),
            None if self.host.contains(':') => format!("[{}]", self.host),
            None => self.host.clone(),
        }
    }

    fn dial_port(&self) -> u16 {
        self.port.unwrap_or(if self.scheme == "https" { 443 } else { 80 })
    }

    fn request_target(&self) -> String {
        if self.path.is_empty() { "/".into() } else { escape_path(&self.path) }
    }

    /// Resolves a `Location` header against this URL (RFC 3986 reference resolution).
    pub fn resolve(&self, location: &str) -> Result<Url, String> {
        let location = location.split('#').next().unwrap_or_default();
        if let Some((scheme, rest)) = split_scheme(location) {
            let rest = rest.strip_prefix("//").ok_or_else(|| format!("unsupported redirect location {}", go_quote(location)))?;
            return parse_authority_and_path(&scheme.to_ascii_lowercase(), rest);
        }
        if let Some(rest) = location.strip_prefix("//") {
            return parse_authority_and_path(&self.scheme, rest);
        }
        let path = if location.is_empty() {
            self.path.clone()
        } else if location.starts_with('/') {
            remove_dot_segments(location)
        } else if location.starts_with('?') {
            let base = self.path.split('?').next().unwrap_or_default();
            format!("{base}{location}")
        } else {
            let base = self.path.split('?').next().unwrap_or_default();
            let dir = match base.rfind('/') {
                Some(at) => &base[..=at],
                None => "/",
            };
            remove_dot_segments(&format!("{dir}{location}"))
        };
        Ok(Url { path, ..self.clone() })
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority(), self.path)
    }
}

fn split_scheme(s: &str) -> Option<(&str, &str)> {
    let colon = s.find(':')?;
    let scheme = &s[..colon];
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    (first_ok && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))).then(|| (scheme, &s[colon + 1..]))
}

fn parse_authority_and_path(scheme: &str, rest: &str) -> Result<Url, String> {
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let close = v6.find(']').ok_or_else(|| format!("missing ']' in host {}", go_quote(authority)))?;
        (v6[..close].to_string(), v6[close + 1..].strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(p) => Some(p.parse::<u16>().map_err(|_| format!("invalid port {} after host", go_quote(&format!(":{p}"))))?),
    };
    let path = if path.starts_with('/') { remove_dot_segments(path) } else { path.to_string() };
    Ok(Url { scheme: scheme.to_string(), host, port, path })
}

/// RFC 3986 §5.2.4 on the path part (the query is kept as is).
fn remove_dot_segments(path_and_query: &str) -> String {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let mut joined = out.join("/");
    if !joined.starts_with('/') {
        joined.insert(0, '/');
    }
    match query {
        Some(q) => format!("{joined}?{q}"),
        None => joined,
    }
}

/// Percent-encodes what may not appear raw in a request target.
fn escape_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b <= 0x20 || b >= 0x7f || matches!(b, b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}') {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

/// A GET as the prober or the hook runner sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub url: Url,
    /// The `Host` header when the action overrides it.
    pub host_header: Option<String>,
    /// Headers in the order they are sent, without `Host`.
    pub headers: Vec<(String, String)>,
    pub purpose: Purpose,
}

/// Go's canonical MIME header key (`content-type` -> `Content-Type`), for names made only of
/// token characters; others are left as written.
fn canonical_header_key(name: &str) -> String {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return name.to_string();
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() };
            upper = c == '-';
            out
        })
        .collect()
}

impl Request {
    /// Builds the request for `action` on `container`, whose pod has `pod_ip`.
    pub fn for_action(action: &HTTPGetAction, container: &Container, pod_ip: &str, purpose: Purpose) -> Result<Request, String> {
        let scheme = action.scheme.as_deref().unwrap_or_default().to_ascii_lowercase();
        let scheme = if scheme.is_empty() { "http".to_string() } else { scheme };
        let host = action.host.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| pod_ip.to_string());
        let port = port::resolve(&action.port, container)?;
        let mut path = action.path.clone().unwrap_or_default();
        if let Some(at) = path.find('#') {
            path.truncate(at);
        }
        if !path.is_empty() && !path.starts_with('/') {
            path.insert(0, '/');
        }
        let url = Url { scheme, host, port: Some(port), path };

        let mut given: Vec<(String, String)> =
            action.http_headers.iter().flatten().map(|h| (canonical_header_key(&h.name), h.value.clone())).collect();
        let first = |given: &[(String, String)], name: &str| given.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        let host_header = first(&given, "Host").filter(|h| !h.is_empty());
        let user_agent = first(&given, "User-Agent").unwrap_or_else(|| purpose.user_agent());
        let accept = first(&given, "Accept");
        given.retain(|(n, _)| n != "Host" && n != "User-Agent");
        match accept.as_deref() {
            None => given.push(("Accept".into(), "*/*".into())),
            Some("") => given.retain(|(n, _)| n != "Accept"),
            Some(_) => {}
        }
        // Go writes the remaining headers sorted by name, values of one name in order.
        given.sort_by(|a, b| a.0.cmp(&b.0));
        let mut headers = Vec::with_capacity(given.len() + 2);
        if !user_agent.is_empty() {
            headers.push(("User-Agent".to_string(), user_agent));
        }
        headers.extend(given);
        if purpose == Purpose::Probe {
            headers.push(("Connection".into(), "close".into()));
        }
        Ok(Request { url, host_header, headers, purpose })
    }
}

/// What a GET got back: the status and the start of the body.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why a GET failed; the text is Go's.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HttpError {
    /// Getting a response failed: `Get "<url>": <cause>`.
    #[error("Get {}: {cause}", go_quote(url))]
    Transport { url: String, cause: String },
    /// No response headers before the deadline.
    #[error("Get {}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)", go_quote(url))]
    Timeout { url: String },
    /// Reading the body failed.
    #[error("{cause}")]
    Body { cause: String },
}

impl HttpError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, HttpError::Timeout { .. })
    }

    /// Go's "server gave HTTP response to HTTPS client", which the hook runner retries over
    /// plain HTTP.
    pub fn is_http_response_to_https(&self) -> bool {
        matches!(self, HttpError::Transport { cause, .. } if cause == HTTP_RESPONSE_TO_HTTPS)
    }
}

const HTTP_RESPONSE_TO_HTTPS: &str = "http: server gave HTTP response to HTTPS client";

fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Sends `req` following same-host redirects, all before `deadline`.
pub async fn get(req: &Request, deadline: Instant) -> Result<Response, HttpError> {
    let first_host = req.url.host.clone();
    let mut url = req.url.clone();
    let mut host_header = req.host_header.clone();
    let mut referer: Option<String> = None;
    let mut requests = 0;
    loop {
        requests += 1;
        let exchange = match timeout_at(deadline, round_trip(&url, host_header.as_deref(), &req.headers, referer.as_deref())).await {
            Err(_) => return Err(HttpError::Timeout { url: url.to_string() }),
            Ok(Err(cause)) => return Err(HttpError::Transport { url: url.to_string(), cause }),
            Ok(Ok(exchange)) => exchange,
        };
        let location = exchange.response.headers().get(http::header::LOCATION).and_then(|l| l.to_str().ok()).map(str::to_string);
        let status = exchange.response.status().as_u16();
        if let (true, Some(location)) = (is_redirect(status), location.filter(|l| !l.is_empty())) {
            let next = url.resolve(&location).map_err(|e| HttpError::Transport {
                url: url.to_string(),
                cause: format!("failed to parse Location header {}: {e}", go_quote(&location)),
            })?;
            // Upstream's redirect checker: another host ends the chain with this response.
            if next.host == first_host {
                if requests >= MAX_REQUESTS {
                    return Err(HttpError::Transport { url: url.to_string(), cause: "stopped after 10 redirects".into() });
                }
                // A Host override survives only relative redirects.
                if split_scheme(&location).is_some() || location.starts_with("//") {
                    host_header = None;
                }
                referer = (!(url.scheme == "https" && next.scheme == "http")).then(|| url.to_string());
                url = next;
                continue;
            }
        }
        let body = match timeout_at(deadline, read_body(exchange.response.into_body())).await {
            Err(_) => {
                return Err(HttpError::Body {
                    cause: "context deadline exceeded (Client.Timeout or context cancellation while reading body)".into(),
                });
            }
            Ok(Err(cause)) => return Err(HttpError::Body { cause }),
            Ok(Ok(body)) => body,
        };
        return Ok(Response { status, body });
    }
}

/// Runs an HTTP probe with `timeout` (upstream's DoHTTPProbe): 2xx succeeds, a 3xx that was
/// not followed succeeds with a warning, anything else fails with the status code.
pub async fn probe(req: &Request, timeout: Duration) -> Outcome {
    match get(req, Instant::now() + timeout).await {
        Err(HttpError::Body { cause }) => Outcome::Unknown(cause),
        Err(err) => Outcome::Failure(err.to_string()),
        Ok(resp) => {
            let body = String::from_utf8_lossy(&resp.body);
            tracing::trace!(url = %req.url, status = resp.status, %body, "HTTP probe answered");
            match resp.status {
                200..=299 => Outcome::Success,
                300..=399 => Outcome::Warning(format!("Probe terminated redirects, Response body: {body}")),
                code => Outcome::Failure(format!("HTTP probe failed with statuscode: {code}")),
            }
        }
    }
}

async fn read_body(mut body: hyper::body::Incoming) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while out.len() < MAX_BODY {
        match body.frame().await {
            None => break,
            Some(Err(e)) => return Err(hyper_cause(&e)),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let room = MAX_BODY - out.len();
                    out.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
        }
    }
    Ok(out)
}

/// One request on a fresh connection; the connection task ends when this is dropped.
struct Exchange {
    response: http::Response<hyper::body::Incoming>,
    _connection: AbortOnDrop,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

async fn round_trip(url: &Url, host_header: Option<&str>, headers: &[(String, String)], referer: Option<&str>) -> Result<Exchange, String> {
    if url.scheme != "http" && url.scheme != "https" {
        return Err(format!("unsupported protocol scheme {}", go_quote(&url.scheme)));
    }
    if url.host.is_empty() {
        return Err("http: no Host in request URL".into());
    }
    let mut builder = http::Request::get(url.request_target());
    let host = host_header.map(str::to_string).unwrap_or_else(|| url.authority());
    builder = builder.header(http::header::HOST, header_value("Host", &host)?);
    for (name, value) in headers {
        let name_ =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("net/http: invalid header field name {}", go_quote(name)))?;
        builder = builder.header(name_, header_value(name, value)?);
    }
    if let Some(referer) = referer.filter(|_| !headers.iter().any(|(n, _)| n == "Referer")) {
        builder = builder.header(http::header::REFERER, header_value("Referer", referer)?);
    }
    let request = builder.body(Empty::<Bytes>::new()).map_err(|e| e.to_string())?;

    // No deadline of its own: the caller bounds the whole exchange.
    let far = Instant::now() + Duration::from_secs(24 * 3600);
    let tcp = super::tcp::dial(&url.host, url.dial_port(), far).await.map_err(|e| e.to_string())?;
    let io: Box<dyn Io> = if url.scheme == "https" { Box::new(tls_handshake(tcp, &url.host).await?) } else { Box::new(tcp) };

    let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
        .title_case_headers(true)
        .handshake::<_, Empty<Bytes>>(TokioIo::new(io))
        .await
        .map_err(|e| hyper_cause(&e))?;
    let connection = AbortOnDrop(tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::trace!(error = %e, "HTTP probe connection ended");
        }
    }));
    let response = sender.send_request(request).await.map_err(|e| hyper_cause(&e))?;
    Ok(Exchange { response, _connection: connection })
}

fn header_value(name: &str, value: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(value).map_err(|_| format!("net/http: invalid header field value for {}", go_quote(name)))
}

/// A hyper error in Go's words where they differ.
fn hyper_cause(err: &hyper::Error) -> String {
    if err.is_incomplete_message() {
        return "EOF".into();
    }
    if err.is_parse() {
        return "net/http: HTTP/1.x transport connection broken: malformed HTTP response".into();
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return format!("read: {}", go_errno(io));
        }
        source = s.source();
    }
    err.to_string()
}

/// TLS without certificate verification (upstream's InsecureSkipVerify); the handshake's
/// signatures are still checked against the certificate the server sent.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("tls: {e}"))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
}

async fn tls_handshake(tcp: tokio::net::TcpStream, host: &str) -> Result<tokio_rustls::client::TlsStream<FirstBytes>, String> {
    let server_name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| format!("tls: {e}"))?;
    let seen = Arc::new(Mutex::new(Vec::with_capacity(5)));
    let stream = FirstBytes { inner: tcp, seen: seen.clone() };
    match tokio_rustls::TlsConnector::from(tls_config()?).connect(server_name, stream).await {
        Ok(tls) => Ok(tls),
        Err(e) => {
            let plain_http = seen.lock().map(|s| s.starts_with(b"HTTP/")).unwrap_or(false);
            if plain_http { Err(HTTP_RESPONSE_TO_HTTPS.into()) } else { Err(format!("tls: {e}")) }
        }
    }
}

/// A TCP stream that remembers the first bytes the server sent, to tell a plain-HTTP answer
/// to a TLS handshake from other handshake failures.
struct FirstBytes {
    inner: tokio::net::TcpStream,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl AsyncRead for FirstBytes {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && let Ok(mut seen) = self.seen.lock()
            && seen.len() < 5
        {
            let fresh = &buf.filled()[before..];
            let take = fresh.len().min(5 - seen.len());
            seen.extend_from_slice(&fresh[..take]);
        }
        polled
    }
}

impl AsyncWrite for FirstBytes {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::{ContainerPort, HTTPHeader};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

    use super::*;

    fn container() -> Container {
        Container {
            name: "app".into(),
            ports: Some(vec![ContainerPort { name: Some("http".into()), container_port: 8080, ..Default::default() }]),
            ..Default::default()
        }
    }

    fn action(port: IntOrString, path: &str, headers: &[(&str, &str)]) -> HTTPGetAction {
        HTTPGetAction {
            port,
            path: Some(path.into()),
            http_headers: (!headers.is_empty())
                .then(|| headers.iter().map(|(n, v)| HTTPHeader { name: n.to_string(), value: v.to_string() }).collect()),
            ..Default::default()
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn requests_are_built_as_upstream_builds_them() {
        struct Case {
            name: &'static str,
            action: HTTPGetAction,
            purpose: Purpose,
            url: &'static str,
            host_header: Option<&'static str>,
            headers: Vec<(String, String)>,
        }
        let cases = vec![
            Case {
                name: "defaults",
                action: action(IntOrString::Int(80), "/healthz", &[]),
                purpose: Purpose::Probe,
                url: "http://10.0.0.1:80/healthz",
                host_header: None,
                headers: pairs(&[("User-Agent", "kube-probe/1.33"), ("Accept", "*/*"), ("Connection", "close")]),
            },
            Case {
                name: "named port, HTTPS, host, path without slash, hooks keep connections",
                action: HTTPGetAction {
                    scheme: Some("HTTPS".into()),
                    host: Some("example.test".into()),
                    ..action(IntOrString::String("http".into()), "ready?x=1#frag", &[])
                },
                purpose: Purpose::Lifecycle,
                url: "https://example.test:8080/ready?x=1",
                host_header: None,
                headers: pairs(&[("User-Agent", "kube-lifecycle/1.33"), ("Accept", "*/*")]),
            },
            Case {
                name: "headers: Host overrides, names canonical and sorted, user agent and accept replaced",
                action: action(
                    IntOrString::Int(8080),
                    "/",
                    &[("x-b", "2"), ("host", "svc.local"), ("user-agent", "mine"), ("Accept", "text/plain"), ("X-A", "1"), ("x-b", "3")],
                ),
                purpose: Purpose::Probe,
                url: "http://10.0.0.1:8080/",
                host_header: Some("svc.local"),
                headers: pairs(&[
                    ("User-Agent", "mine"),
                    ("Accept", "text/plain"),
                    ("X-A", "1"),
                    ("X-B", "2"),
                    ("X-B", "3"),
                    ("Connection", "close"),
                ]),
            },
            Case {
                name: "an empty Accept or User-Agent removes it",
                action: action(IntOrString::Int(8080), "", &[("Accept", ""), ("User-Agent", "")]),
                purpose: Purpose::Probe,
                url: "http://10.0.0.1:8080",
                host_header: None,
                headers: pairs(&[("Connection", "close")]),
            },
        ];
        for case in cases {
            let req = Request::for_action(&case.action, &container(), "10.0.0.1", case.purpose).expect(case.name);
            assert_eq!(req.url.to_string(), case.url, "{}", case.name);
            assert_eq!(req.host_header.as_deref(), case.host_header, "{}", case.name);
            assert_eq!(req.headers, case.headers, "{}", case.name);
        }
        let ipv6 = Request::for_action(&action(IntOrString::Int(80), "/", &[]), &container(), "fd00::5", Purpose::Probe).expect("v6");
        assert_eq!(ipv6.url.to_string(), "http://[fd00::5]:80/");
        let bad = Request::for_action(&action(IntOrString::String("nope".into()), "/", &[]), &container(), "10.0.0.1", Purpose::Probe);
        assert_eq!(bad, Err(r#"strconv.Atoi: parsing "nope": invalid syntax"#.to_string()));
    }

    #[test]
    fn locations_resolve_against_the_request() {
        let base = Url { scheme: "http".into(), host: "10.0.0.1".into(), port: Some(8080), path: "/a/b/c?q=1".into() };
        let cases = [
            ("/x", "http://10.0.0.1:8080/x"),
            ("d", "http://10.0.0.1:8080/a/b/d"),
            ("../d?z", "http://10.0.0.1:8080/a/d?z"),
            ("?r=2", "http://10.0.0.1:8080/a/b/c?r=2"),
            ("//other:9/p", "http://other:9/p"),
            ("https://Other.test/p/./q/../r", "https://Other.test/p/r"),
            ("http://[fd00::1]:81", "http://[fd00::1]:81"),
        ];
        for (location, want) in cases {
            assert_eq!(base.resolve(location).map(|u| u.to_string()), Ok(want.to_string()), "{location}");
        }
        assert_eq!(base.resolve("http://h:99999/").map(|u| u.to_string()), Err(r#"invalid port ":99999" after host"#.to_string()));
    }

    /// A local HTTP server: each connection's request head is passed on, and `answer` writes
    /// the response from it.
    async fn server(answer: fn(u16, &str) -> String) -> (u16, UnboundedReceiver<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (tx, rx) = unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    // A TLS handshake (0x16) is answered at once, as a plain HTTP server would.
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.first() != Some(&0x16) {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let response = answer(port, &head);
                    let _ = tx.send(head);
                    if response == "hang" {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    let _ = conn.write_all(response.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        (port, rx)
    }

    fn respond(status: &str, extra: &str, body: &str) -> String {
        format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n{extra}\r\n{body}", body.len())
    }

    fn path_of(head: &str) -> &str {
        head.split(' ').nth(1).unwrap_or_default()
    }

    fn probe_request(port: u16, path: &str, headers: &[(&str, &str)]) -> Request {
        Request::for_action(&action(IntOrString::Int(i32::from(port)), path, headers), &container(), "127.0.0.1", Purpose::Probe)
            .expect("request")
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn status_codes_decide_the_outcome() {
        let (port, mut heads) = server(|_, head| match path_of(head) {
            "/ok" => respond("200 OK", "", "fine"),
            "/bad" => respond("500 Internal Server Error", "", "secret detail"),
            "/not-modified" => respond("304 Not Modified", "", ""),
            _ => respond("404 Not Found", "", ""),
        })
        .await;
        let cases = [
            ("/ok", Outcome::Success),
            ("/bad", Outcome::Failure("HTTP probe failed with statuscode: 500".into())),
            ("/not-modified", Outcome::Warning("Probe terminated redirects, Response body: ".into())),
            ("/missing", Outcome::Failure("HTTP probe failed with statuscode: 404".into())),
        ];
        for (path, want) in cases {
            assert_eq!(probe(&probe_request(port, path, &[("X-Probe", "yes")]), SECOND).await, want, "{path}");
        }
        let head = heads.recv().await.expect("a request");
        let lines: Vec<&str> = head.trim_end().split("\r\n").collect();
        assert_eq!(
            lines,
            [
                "GET /ok HTTP/1.1".to_string(),
                format!("Host: 127.0.0.1:{port}"),
                "User-Agent: kube-probe/1.33".into(),
                "Accept: */*".into(),
                "X-Probe: yes".into(),
                "Connection: close".into(),
            ]
        );
    }

    #[tokio::test]
    async fn redirects_are_followed_only_on_the_same_host() {
        let (port, mut heads) = server(|port, head| match path_of(head) {
            "/moved" => respond("302 Found", "Location: /there\r\n", ""),
            "/there" => respond("200 OK", "", "arrived"),
            "/away" => respond("301 Moved Permanently", &format!("Location: http://localhost:{port}/there\r\n"), "gone away"),
            "/loop" => respond("307 Temporary Redirect", "Location: /loop\r\n", ""),
            _ => respond("404 Not Found", "", ""),
        })
        .await;

        let req = probe_request(port, "/moved", &[("Host", "svc.test")]);
        assert_eq!(probe(&req, SECOND).await, Outcome::Success);
        let (first, second) = (heads.recv().await.expect("first"), heads.recv().await.expect("second"));
        assert_eq!(path_of(&first), "/moved");
        assert_eq!(path_of(&second), "/there");
        assert!(second.contains("Host: svc.test\r\n"), "a relative redirect keeps the Host override: {second}");
        assert!(second.contains(&format!("Referer: http://127.0.0.1:{port}/moved\r\n")), "{second}");

        // localhost is another host name than 127.0.0.1: the chain ends with the 301.
        assert_eq!(
            probe(&probe_request(port, "/away", &[]), SECOND).await,
            Outcome::Warning("Probe terminated redirects, Response body: gone away".into())
        );
        assert_eq!(path_of(&heads.recv().await.expect("away")), "/away");

        assert_eq!(
            probe(&probe_request(port, "/loop", &[]), SECOND).await,
            Outcome::Failure(format!(r#"Get "http://127.0.0.1:{port}/loop": stopped after 10 redirects"#))
        );
        let mut loops = 0;
        while let Ok(head) = heads.try_recv() {
            assert_eq!(path_of(&head), "/loop");
            loops += 1;
        }
        assert_eq!(loops, 10);
    }

    #[tokio::test]
    async fn transport_errors_read_like_gos() {
        let closed = {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            l.local_addr().expect("addr").port()
        };
        assert_eq!(
            probe(&probe_request(closed, "/", &[]), SECOND).await,
            Outcome::Failure(format!(r#"Get "http://127.0.0.1:{closed}/": dial tcp 127.0.0.1:{closed}: connect: connection refused"#))
        );

        let (port, _heads) = server(|_, head| match path_of(head) {
            "/slow" => "hang".into(),
            _ => String::new(), // closes without answering
        })
        .await;
        assert_eq!(
            probe(&probe_request(port, "/slow", &[]), SECOND).await,
            Outcome::Failure(format!(
                r#"Get "http://127.0.0.1:{port}/slow": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"#
            ))
        );
        assert_eq!(
            probe(&probe_request(port, "/eof", &[]), SECOND).await,
            Outcome::Failure(format!(r#"Get "http://127.0.0.1:{port}/eof": EOF"#))
        );
    }

    #[tokio::test]
    async fn at_most_10_kib_of_the_body_is_read() {
        let (port, _heads) = server(|_, _| respond("200 OK", "", &"x".repeat(64 * 1024))).await;
        let resp = get(&probe_request(port, "/", &[]), Instant::now() + SECOND).await.expect("a response");
        assert_eq!((resp.status, resp.body.len()), (200, MAX_BODY));
    }

    #[tokio::test]
    async fn https_skips_verification_and_spots_plain_http() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(conn).await else { return };
                    let mut buf = [0u8; 2048];
                    let _ = tls.read(&mut buf).await;
                    let _ = tls.write_all(respond("200 OK", "", "secure").as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        let mut req = probe_request(port, "/", &[]);
        req.url.scheme = "https".into();
        assert_eq!(probe(&req, SECOND).await, Outcome::Success);

        let (plain, _heads) = server(|_, _| respond("400 Bad Request", "", "")).await;
        let mut req = probe_request(plain, "/", &[]);
        req.url.scheme = "https".into();
        assert_eq!(
            probe(&req, SECOND).await,
            Outcome::Failure(format!(r#"Get "https://127.0.0.1:{plain}/": http: server gave HTTP response to HTTPS client"#))
        );
    }

    #[test]
    fn the_user_agent_names_the_kubelet_version() {
        assert!(ironkube_machinery::node_status::KUBELET_VERSION.starts_with(&format!("v{USER_AGENT_VERSION}.")));
    }
}
