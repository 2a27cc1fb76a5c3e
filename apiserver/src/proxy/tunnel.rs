//! Port-forward's SPDY-over-WebSocket tunnel (upstream's TunnelingHandler, kubectl 1.31+):
//! the client offers WebSocket subprotocols `SPDY/3.1+<protocol>`; the kubelet is asked for
//! a plain SPDY/3.1 upgrade with those protocols, and once it switches, the client's
//! WebSocket is accepted with the protocol the kubelet chose (prefixed again) and every
//! binary message's payload is the SPDY byte stream, both ways.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::header::{self, HeaderValue};
use http::StatusCode;
use hyper_util::rt::TokioIo;
use ironkube_machinery::ApiError;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tracing::debug;

use super::websocket::{self, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT};
use super::{HOP_BY_HOP, KubeletClient, Location, forwarded_headers};

/// The prefix of tunneling subprotocols.
pub const TUNNELING_PREFIX: &str = "SPDY/3.1+";
/// The header naming SPDY stream protocols.
const PROTOCOL_VERSION: &str = "x-stream-protocol-version";

/// The SPDY protocols a tunneling client offers (`SPDY/3.1+...k8s.io`, prefix removed).
pub fn spdy_protocols(headers: &http::HeaderMap) -> Vec<String> {
    websocket::protocols(headers)
        .into_iter()
        .filter(|p| p.ends_with("k8s.io"))
        .filter_map(|p| p.strip_prefix(TUNNELING_PREFIX).map(str::to_string))
        .collect()
}

/// Whether a request asks for a SPDY tunnel over WebSocket.
pub fn is_tunneling(headers: &http::HeaderMap) -> bool {
    websocket::is_websocket(headers) && websocket::protocols(headers).iter().any(|p| p.starts_with(TUNNELING_PREFIX))
}

fn plain(code: StatusCode, text: &str) -> Response {
    let mut resp = Response::new(Body::from(format!("{text}\n")));
    *resp.status_mut() = code;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

/// Tunnels the client's WebSocket to a SPDY upgrade of `path` on the kubelet.
pub async fn serve(kubelet: &KubeletClient, mut req: Request, at: &Location, path: &str) -> Result<Response, ApiError> {
    let offered = spdy_protocols(req.headers());
    if offered.is_empty() {
        return Ok(plain(StatusCode::BAD_REQUEST, "unable to upgrade: no tunneling spdy protocols provided"));
    }
    let key = req.headers().get(header::SEC_WEBSOCKET_KEY).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let client_side = hyper::upgrade::on(&mut req);

    let mut headers = forwarded_headers(req.headers(), &at.authority(), true);
    for h in [header::SEC_WEBSOCKET_PROTOCOL, header::SEC_WEBSOCKET_KEY, header::SEC_WEBSOCKET_VERSION, header::SEC_WEBSOCKET_EXTENSIONS] {
        headers.remove(h);
    }
    headers.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    headers.remove(PROTOCOL_VERSION);
    for p in &offered {
        if let Ok(v) = HeaderValue::from_str(p) {
            headers.append(PROTOCOL_VERSION, v);
        }
    }
    let mut out = http::Request::builder().method(http::Method::POST).uri(path).version(http::Version::HTTP_11);
    if let Some(h) = out.headers_mut() {
        *h = headers;
    }
    let out = out.body(Body::empty()).map_err(ApiError::internal)?;
    let mut resp = kubelet.send(at, out).await.map_err(|e| ApiError::internal(format!("error dialing backend: {e}")))?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        // Anything but an upgrade is the client's answer as it is.
        let (mut parts, body) = resp.into_parts();
        for h in HOP_BY_HOP {
            parts.headers.remove(h);
        }
        return Ok(Response::from_parts(parts, Body::new(body)));
    }
    let says = |name: header::HeaderName, want: &str| {
        resp.headers().get(name).and_then(|v| v.to_str().ok()).is_some_and(|v| v.to_ascii_lowercase().contains(want))
    };
    if !says(header::CONNECTION, "upgrade") || !says(header::UPGRADE, "spdy/3.1") {
        return Ok(plain(StatusCode::INTERNAL_SERVER_ERROR, "unable to upgrade: missing upgrade headers in response"));
    }
    let chosen = resp.headers().get(PROTOCOL_VERSION).and_then(|v| v.to_str().ok()).map(|v| v.trim().to_string()).unwrap_or_default();
    let kubelet_side = hyper::upgrade::on(&mut resp);
    tokio::spawn(async move {
        match tokio::join!(client_side, kubelet_side) {
            (Ok(client), Ok(kubelet)) => pump(TokioIo::new(client), TokioIo::new(kubelet)).await,
            (Err(e), _) | (_, Err(e)) => debug!(error = %e, "tunnel upgrade failed"),
        }
    });
    let mut answer = Response::new(Body::empty());
    *answer.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = answer.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&websocket::accept_key(&key)) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if !chosen.is_empty()
        && let Ok(v) = HeaderValue::from_str(&format!("{TUNNELING_PREFIX}{chosen}"))
    {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, v);
    }
    Ok(answer)
}

/// Moves the SPDY bytes between the client's WebSocket messages and the kubelet's
/// connection until either side closes.
async fn pump<C, K>(client: C, kubelet: K)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    K: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut client_read, client_write) = tokio::io::split(client);
    let client_write = Arc::new(tokio::sync::Mutex::new(client_write));
    let (mut kubelet_read, mut kubelet_write) = tokio::io::split(kubelet);
    let to_kubelet = {
        let client_write = client_write.clone();
        async move {
            loop {
                let frame = websocket::read_frame(&mut client_read).await?;
                match frame.opcode {
                    OP_BINARY | OP_TEXT | OP_CONTINUATION => kubelet_write.write_all(&frame.payload).await?,
                    OP_PING => websocket::write_frame(&mut *client_write.lock().await, OP_PONG, &frame.payload).await?,
                    OP_CLOSE => {
                        let _ = websocket::write_frame(&mut *client_write.lock().await, OP_CLOSE, &frame.payload).await;
                        kubelet_write.shutdown().await?;
                        return Ok::<_, std::io::Error>(());
                    }
                    _ => {}
                }
            }
        }
    };
    let to_client = async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = kubelet_read.read(&mut buf).await?;
            let mut w = client_write.lock().await;
            if n == 0 {
                // 1000: normal closure.
                websocket::write_frame(&mut *w, OP_CLOSE, &1000u16.to_be_bytes()).await?;
                return Ok::<_, std::io::Error>(());
            }
            websocket::write_frame(&mut *w, OP_BINARY, &buf[..n]).await?;
        }
    };
    let result = tokio::select! {
        r = to_kubelet => r,
        r = to_client => r,
    };
    if let Err(e) = result {
        debug!(error = %e, "port-forward tunnel ended");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunneling_protocols_are_recognized() {
        let mut h = http::HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("SPDY/3.1+portforward.k8s.io, SPDY/3.1+other, v4.channel.k8s.io"));
        assert!(is_tunneling(&h));
        assert_eq!(spdy_protocols(&h), ["portforward.k8s.io"]);
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("v4.channel.k8s.io"));
        assert!(!is_tunneling(&h));
    }

    #[tokio::test]
    async fn messages_carry_the_byte_stream_both_ways() {
        let (client, mut client_peer) = tokio::io::duplex(1 << 16);
        let (kubelet, mut kubelet_peer) = tokio::io::duplex(1 << 16);
        let pumping = tokio::spawn(pump(client, kubelet));
        // A masked binary message from the client reaches the kubelet as bytes.
        let mask = [1u8, 2, 3, 4];
        let payload = b"spdy-frame";
        let mut frame = vec![0x82, 0x80 | payload.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        client_peer.write_all(&frame).await.expect("client writes");
        let mut got = vec![0u8; payload.len()];
        kubelet_peer.read_exact(&mut got).await.expect("kubelet reads");
        assert_eq!(&got, payload);
        // The kubelet's bytes come back as a binary message; its close as a close frame.
        kubelet_peer.write_all(b"reply").await.expect("kubelet writes");
        let back = websocket::read_frame(&mut client_peer).await.expect("a frame");
        assert_eq!((back.opcode, back.payload.as_slice()), (OP_BINARY, &b"reply"[..]));
        drop(kubelet_peer);
        let close = websocket::read_frame(&mut client_peer).await.expect("a close frame");
        assert_eq!((close.opcode, close.payload.as_slice()), (OP_CLOSE, &[0x03, 0xE8][..]));
        pumping.await.expect("pump ends");
    }
}
