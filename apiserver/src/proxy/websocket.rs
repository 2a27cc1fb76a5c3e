//! The server side of RFC 6455 as far as the API server's streaming needs it: the
//! handshake's accept key, the subprotocols a client offers, and frames read (masked, from
//! clients) and written (unmasked). Messages are not reassembled: the tunnels here carry a
//! byte stream, so each data frame's payload is passed on as it comes.

use base64::Engine as _;
use http::HeaderMap;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// The GUID RFC 6455 appends to the client's key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// The largest frame payload accepted from a client.
const MAX_FRAME: u64 = 16 << 20;

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, format!("{}{GUID}", key.trim()).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// Whether a request is a WebSocket handshake (`Connection: Upgrade`, `Upgrade: websocket`).
pub fn is_websocket(headers: &HeaderMap) -> bool {
    super::is_upgrade(headers)
        && headers.get_all(http::header::UPGRADE).iter().filter_map(|v| v.to_str().ok()).any(|v| v.trim().eq_ignore_ascii_case("websocket"))
}

/// The subprotocols a client offers, in its order.
pub fn protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// One frame from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// Reads one frame, unmasking its payload.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Frame> {
    let mut head = [0u8; 2];
    r.read_exact(&mut head).await?;
    let fin = head[0] & 0x80 != 0;
    let opcode = head[0] & 0x0F;
    let masked = head[1] & 0x80 != 0;
    let len = match head[1] & 0x7F {
        126 => u64::from(r.read_u16().await?),
        127 => r.read_u64().await?,
        n => u64::from(n),
    };
    if len > MAX_FRAME {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("websocket frame of {len} bytes is too large")));
    }
    let mut mask = [0u8; 4];
    if masked {
        r.read_exact(&mut mask).await?;
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload).await?;
    if masked {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }
    Ok(Frame { fin, opcode, payload })
}

/// The bytes of one unmasked, final frame (what a server sends).
pub fn encode_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x80 | (opcode & 0x0F));
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// Writes one frame and flushes it.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, opcode: u8, payload: &[u8]) -> std::io::Result<()> {
    w.write_all(&encode_frame(opcode, payload)).await?;
    w.flush().await
}

/// The protocols a streamed response is offered in (upstream's default reader protocols):
/// `binary.k8s.io` (and no protocol) as binary messages, `base64.binary.k8s.io` as base64
/// text messages. `None` when the client offers only others.
pub fn reader_protocol(offered: &[String]) -> Option<(&'static str, bool)> {
    if offered.is_empty() {
        return Some(("", true));
    }
    offered.iter().find_map(|p| match p.as_str() {
        "binary.k8s.io" => Some(("binary.k8s.io", true)),
        "base64.binary.k8s.io" => Some(("base64.binary.k8s.io", false)),
        _ => None,
    })
}

/// The message carrying one chunk of a streamed response.
pub fn chunk_frame(chunk: &[u8], binary: bool) -> Vec<u8> {
    if binary {
        encode_frame(OP_BINARY, chunk)
    } else {
        encode_frame(OP_TEXT, base64::engine::general_purpose::STANDARD.encode(chunk).as_bytes())
    }
}

/// Answers a WebSocket request with `body` as messages (upstream's wsstream Reader, used
/// for logs): 101, then one message per chunk, then a close. A client offering none of the
/// reader protocols is refused (403, as upstream's handshake does).
pub fn stream_body(req: &mut axum::extract::Request, body: axum::body::Body) -> axum::response::Response {
    use http::header;
    let offered = protocols(req.headers());
    let Some((protocol, binary)) = reader_protocol(&offered) else {
        let mut refused = axum::response::Response::new(axum::body::Body::empty());
        *refused.status_mut() = http::StatusCode::FORBIDDEN;
        return refused;
    };
    let key = req.headers().get(header::SEC_WEBSOCKET_KEY).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        use http_body_util::BodyExt as _;
        let Ok(upgraded) = upgrade.await else { return };
        let mut io = hyper_util::rt::TokioIo::new(upgraded);
        let mut body = body;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { break };
            let Ok(data) = frame.into_data() else { continue };
            if io.write_all(&chunk_frame(&data, binary)).await.is_err() || io.flush().await.is_err() {
                return;
            }
        }
        let _ = write_frame(&mut io, OP_CLOSE, &1000u16.to_be_bytes()).await;
        let _ = io.shutdown().await;
    });
    let mut resp = axum::response::Response::new(axum::body::Body::empty());
    *resp.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, http::HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, http::HeaderValue::from_static("Upgrade"));
    if let Ok(v) = http::HeaderValue::from_str(&accept_key(&key)) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if !protocol.is_empty() {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, http::HeaderValue::from_static(protocol));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_is_rfc_6455s() {
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn handshakes_and_protocols_are_read_from_headers() {
        let mut h = HeaderMap::new();
        h.insert(http::header::CONNECTION, http::HeaderValue::from_static("Upgrade"));
        h.insert(http::header::UPGRADE, http::HeaderValue::from_static("websocket"));
        h.append(http::header::SEC_WEBSOCKET_PROTOCOL, http::HeaderValue::from_static("SPDY/3.1+portforward.k8s.io, v4.channel.k8s.io"));
        h.append(http::header::SEC_WEBSOCKET_PROTOCOL, http::HeaderValue::from_static("base64.binary.k8s.io"));
        assert!(is_websocket(&h));
        assert_eq!(protocols(&h), ["SPDY/3.1+portforward.k8s.io", "v4.channel.k8s.io", "base64.binary.k8s.io"]);
        h.insert(http::header::UPGRADE, http::HeaderValue::from_static("SPDY/3.1"));
        assert!(!is_websocket(&h));
    }

    /// A client's frame: masked, as RFC 6455 requires.
    fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x11, 0x22, 0x33, 0x44];
        let mut f = encode_frame(opcode, payload);
        let header_len = f.len() - payload.len();
        f[1] |= 0x80;
        let masked: Vec<u8> = payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
        f.truncate(header_len);
        f.extend_from_slice(&mask);
        f.extend_from_slice(&masked);
        f
    }

    #[test]
    fn streamed_responses_speak_the_reader_protocols() {
        let offer = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(reader_protocol(&[]), Some(("", true)));
        assert_eq!(reader_protocol(&offer(&["v4.channel.k8s.io", "base64.binary.k8s.io"])), Some(("base64.binary.k8s.io", false)));
        assert_eq!(reader_protocol(&offer(&["binary.k8s.io"])), Some(("binary.k8s.io", true)));
        assert_eq!(reader_protocol(&offer(&["channel.k8s.io"])), None);
        assert_eq!(chunk_frame(b"hi\n", true), [0x82, 3, b'h', b'i', b'\n']);
        assert_eq!(chunk_frame(b"hi\n", false), [&[0x81u8, 4][..], b"aGkK"].concat());
    }

    #[tokio::test]
    async fn frames_round_trip_at_every_length_encoding() {
        for len in [0usize, 5, 125, 126, 300, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let bytes = client_frame(OP_BINARY, &payload);
            let frame = read_frame(&mut bytes.as_slice()).await.expect("frame");
            assert_eq!(frame, Frame { fin: true, opcode: OP_BINARY, payload: payload.clone() }, "length {len}");
            // Unmasked server frames parse too.
            let frame = read_frame(&mut encode_frame(OP_PING, &payload[..len.min(125)]).as_slice()).await.expect("frame");
            assert_eq!((frame.opcode, frame.payload.len()), (OP_PING, len.min(125)));
        }
        assert!(read_frame(&mut [0x82u8, 126, 0].as_slice()).await.is_err(), "a truncated frame is an error");
    }
}
