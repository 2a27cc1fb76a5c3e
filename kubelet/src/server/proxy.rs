//! Forwarding a request to the runtime's streaming server, upgrade included: the request
//! goes out as HTTP/1.1 with its upgrade headers; a `101 Switching Protocols` answer is
//! passed back and both connections are then spliced byte for byte, so whatever the client
//! and the runtime negotiate (SPDY/3.1 or WebSocket, `v4.channel.k8s.io`, ...) is theirs.
//! Any other answer is passed back as it is (upstream's kubelet proxies the same way,
//! through apimachinery's UpgradeAwareHandler).

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tracing::debug;

/// What failed forwarding a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the streaming URL {0:?} is not an http URL with a host")]
    Url(String),
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("proxying to {uri}: {source}")]
    Http {
        uri: String,
        #[source]
        source: hyper::Error,
    },
    #[error("building the proxied request: {0}")]
    Request(#[from] http::Error),
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

/// The headers to send on: end-to-end ones, plus `Connection: Upgrade` when upgrading, and
/// the new `Host`.
pub fn forwarded_headers(incoming: &HeaderMap, host: &str, upgrade: bool) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(incoming.len());
    // Also drop headers the Connection header names as hop-by-hop.
    let named: Vec<String> = incoming
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| t != "upgrade")
        .collect();
    for (name, value) in incoming {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n) || named.iter().any(|h| h == n) || name == header::HOST {
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

/// Sends `req` to `target` (an `http://host:port/path` URL) and answers with what it says,
/// splicing the connections after a successful upgrade.
pub async fn forward(mut req: Request, target: &Uri) -> Result<Response, Error> {
    let (Some(host), Some("http")) = (target.host(), target.scheme_str()) else {
        return Err(Error::Url(target.to_string()));
    };
    let port = target.port_u16().unwrap_or(80);
    let authority = target.authority().map(|a| a.to_string()).unwrap_or_else(|| host.to_string());
    let addr = format!("{}:{port}", host.trim_start_matches('[').trim_end_matches(']'));
    let tcp = TcpStream::connect(&addr).await.map_err(|source| Error::Connect { addr: addr.clone(), source })?;
    let _ = tcp.set_nodelay(true);
    let http_error = |source| Error::Http { uri: target.to_string(), source };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.map_err(http_error)?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            debug!(error = %e, "runtime streaming connection ended");
        }
    });

    let upgrade = is_upgrade(req.headers());
    let client_side = hyper::upgrade::on(&mut req);
    let (parts, body) = req.into_parts();
    let path = target.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut out = http::Request::builder().method(parts.method).uri(path).version(http::Version::HTTP_11);
    if let Some(h) = out.headers_mut() {
        *h = forwarded_headers(&parts.headers, &authority, upgrade);
    }
    let mut resp = sender.send_request(out.body(body)?).await.map_err(http_error)?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let runtime_side = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            match tokio::join!(client_side, runtime_side) {
                (Ok(client), Ok(runtime)) => {
                    let (mut a, mut b) = (TokioIo::new(client), TokioIo::new(runtime));
                    if let Err(e) = tokio::io::copy_bidirectional(&mut a, &mut b).await {
                        debug!(error = %e, "stream ended");
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).expect("name"), HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn upgrade_requests_are_recognized() {
        let cases = [
            (vec![("connection", "Upgrade"), ("upgrade", "SPDY/3.1")], true),
            (vec![("connection", "keep-alive, upgrade"), ("upgrade", "websocket")], true),
            (vec![("upgrade", "websocket")], false),
            (vec![("connection", "Upgrade")], false),
            (vec![], false),
        ];
        for (h, want) in cases {
            assert_eq!(is_upgrade(&headers(&h)), want, "{h:?}");
        }
    }

    #[test]
    fn hop_by_hop_headers_stay_behind() {
        let incoming = headers(&[
            ("connection", "Upgrade, X-Private"),
            ("upgrade", "SPDY/3.1"),
            ("x-stream-protocol-version", "v4.channel.k8s.io"),
            ("x-stream-protocol-version", "v3.channel.k8s.io"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("host", "node:10250"),
            ("content-length", "0"),
        ]);
        let out = forwarded_headers(&incoming, "127.0.0.1:4000", true);
        let versions: Vec<&str> = out.get_all("x-stream-protocol-version").iter().filter_map(|v| v.to_str().ok()).collect();
        assert_eq!(versions, ["v4.channel.k8s.io", "v3.channel.k8s.io"]);
        assert_eq!(out.get(header::CONNECTION).and_then(|v| v.to_str().ok()), Some("Upgrade"));
        assert_eq!(out.get(header::UPGRADE).and_then(|v| v.to_str().ok()), Some("SPDY/3.1"));
        assert_eq!(out.get(header::HOST).and_then(|v| v.to_str().ok()), Some("127.0.0.1:4000"));
        assert!(out.get("x-private").is_none() && out.get("keep-alive").is_none());
        assert_eq!(out.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()), Some("0"));

        let plain = forwarded_headers(&headers(&[("upgrade", "h2c"), ("accept", "*/*")]), "h", false);
        assert!(plain.get(header::UPGRADE).is_none() && plain.get(header::CONNECTION).is_none());
    }
}
