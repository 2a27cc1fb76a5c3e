//! TCP probes (upstream's pkg/probe/tcp): success when a connection to host:port opens
//! within the timeout, failure with Go's dial error otherwise. The dialer is shared with the
//! HTTP and gRPC probes.
//!
//! Upstream sets `SO_LINGER` to one second on probe sockets to shorten TIME-WAIT; with tokio a
//! lingering close blocks a runtime thread, so it is not set here.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, timeout_at};

use super::Outcome;
use super::messages::{go_errno, join_host_port};

/// Why a dial failed, printed as Go's `net.OpError`.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("dial tcp {address}: connect: {}", go_errno(source))]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("dial tcp {address}: i/o timeout")]
    Timeout { address: String },
    #[error("dial tcp: lookup {host}: {}", lookup_text(source))]
    Lookup {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("dial tcp: lookup {host}: no such host")]
    NoAddress { host: String },
}

fn lookup_text(err: &std::io::Error) -> String {
    // getaddrinfo's "Name or service not known" is what Go calls "no such host".
    let text = err.to_string();
    if text.contains("not known") || text.contains("No address") { "no such host".into() } else { go_errno(err) }
}

impl DialError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, DialError::Timeout { .. })
    }
}

/// Opens a TCP connection to host:port before `deadline`, trying each address the host
/// resolves to in turn.
pub async fn dial(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, DialError> {
    let address = join_host_port(host, port);
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => match timeout_at(deadline, tokio::net::lookup_host((host, port))).await {
            Err(_) => return Err(DialError::Timeout { address }),
            Ok(Err(source)) => return Err(DialError::Lookup { host: host.into(), source }),
            Ok(Ok(found)) => found.collect(),
        },
    };
    let mut last = None;
    for addr in addrs {
        let socket = match if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() } {
            Ok(s) => s,
            Err(source) => {
                last = Some(DialError::Connect { address: addr.to_string(), source });
                continue;
            }
        };
        match timeout_at(deadline, socket.connect(addr)).await {
            Err(_) => return Err(DialError::Timeout { address: addr.to_string() }),
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(source)) => last = Some(DialError::Connect { address: addr.to_string(), source }),
        }
    }
    Err(last.unwrap_or(DialError::NoAddress { host: host.into() }))
}

/// Probes host:port: a connection that opens within `timeout` is a success.
pub async fn probe(host: &str, port: u16, timeout: Duration) -> Outcome {
    match dial(host, port, Instant::now() + timeout).await {
        Ok(stream) => {
            drop(stream);
            Outcome::Success
        }
        // Upstream turns every dial error into a failure, timeouts included.
        Err(err) => Outcome::Failure(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_open_port_succeeds_and_a_closed_one_fails_with_gos_message() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let open = listener.local_addr().expect("addr").port();
        assert_eq!(probe("127.0.0.1", open, Duration::from_secs(1)).await, Outcome::Success);

        drop(listener);
        let closed = open;
        assert_eq!(
            probe("127.0.0.1", closed, Duration::from_secs(1)).await,
            Outcome::Failure(format!("dial tcp 127.0.0.1:{closed}: connect: connection refused"))
        );
    }
}
