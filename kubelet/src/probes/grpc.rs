//! gRPC probes (upstream's pkg/probe/grpc): `grpc.health.v1.Health/Check` with the probe's
//! service name on podIP:port, over plaintext HTTP/2, all within the timeout. SERVING is a
//! success; anything else is a failure with upstream's message. Like grpc-go's blocking dial,
//! a refused connection is retried until the timeout ends.

use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::time::{Instant, sleep_until, timeout_at};
use tonic::transport::{Endpoint, Uri};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use super::Outcome;
use super::http::USER_AGENT_VERSION;
use super::messages::{go_duration, go_grpc_status, go_quote, join_host_port};

/// grpc-go's first reconnect back-off.
const RECONNECT_BACKOFF: Duration = Duration::from_secs(1);

/// Checks `service`'s health at host:port within `timeout_seconds`.
pub async fn probe(host: &str, port: u16, service: &str, timeout_seconds: i64) -> Outcome {
    let timeout = Duration::from_secs(u64::try_from(timeout_seconds).unwrap_or(0));
    let deadline = Instant::now() + timeout;
    let addr = join_host_port(host, port);
    let within = go_duration(timeout_seconds);
    let connect_timed_out =
        || Outcome::Failure(format!("timeout: failed to connect service {} within {within}: context deadline exceeded", go_quote(&addr)));

    let endpoint =
        match Endpoint::from_shared(format!("http://{addr}")).and_then(|e| e.user_agent(format!("kube-probe/{USER_AGENT_VERSION}"))) {
            Ok(e) => e,
            Err(e) => return Outcome::Failure(format!("error: failed to connect service at {}: {e}", go_quote(&addr))),
        };
    let channel = loop {
        let (host, attempt_deadline) = (host.to_string(), deadline);
        let connector = tower::service_fn(move |_: Uri| {
            let host = host.clone();
            async move {
                let stream = super::tcp::dial(&host, port, attempt_deadline).await.map_err(std::io::Error::other)?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        });
        match timeout_at(deadline, endpoint.connect_with_connector(connector)).await {
            Err(_) => return connect_timed_out(),
            Ok(Ok(channel)) => break channel,
            Ok(Err(e)) => {
                tracing::trace!(%addr, error = %e, "gRPC probe could not connect yet");
                let retry = Instant::now() + RECONNECT_BACKOFF;
                if retry >= deadline {
                    sleep_until(deadline).await;
                    return connect_timed_out();
                }
                sleep_until(retry).await;
            }
        }
    };

    let request = HealthCheckRequest { service: service.to_string() };
    match timeout_at(deadline, HealthClient::new(channel).check(request)).await {
        Err(_) => Outcome::Failure(format!("timeout: health rpc did not complete within {within}")),
        Ok(Err(status)) => match status.code() {
            tonic::Code::Unimplemented => Outcome::Failure(format!(
                "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
                status.message()
            )),
            tonic::Code::DeadlineExceeded => Outcome::Failure(format!("timeout: health rpc did not complete within {within}")),
            _ => Outcome::Failure(format!("error: health rpc probe failed: {}", go_grpc_status(&status))),
        },
        Ok(Ok(resp)) => {
            let status = ServingStatus::try_from(resp.into_inner().status).unwrap_or(ServingStatus::Unknown);
            if status == ServingStatus::Serving {
                Outcome::Success
            } else {
                Outcome::Failure(format!("service unhealthy (responded with {})", go_quote(status.as_str_name())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::wrappers::TcpListenerStream;
    use tonic_health::ServingStatus as Reported;

    async fn health_server() -> (u16, tonic_health::server::HealthReporter) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (reporter, service) = tonic_health::server::health_reporter();
        tokio::spawn(tonic::transport::Server::builder().serve_with_incoming(service, TcpListenerStream::new(listener)));
        (port, reporter)
    }

    #[tokio::test]
    async fn serving_succeeds_and_other_states_fail_with_upstreams_message() {
        let (port, reporter) = health_server().await;
        reporter.set_service_status("", Reported::Serving).await;
        reporter.set_service_status("db", Reported::NotServing).await;
        reporter.set_service_status("cache", Reported::Unknown).await;

        assert_eq!(probe("127.0.0.1", port, "", 1).await, Outcome::Success);
        assert_eq!(probe("127.0.0.1", port, "db", 1).await, Outcome::Failure(r#"service unhealthy (responded with "NOT_SERVING")"#.into()));
        assert_eq!(probe("127.0.0.1", port, "cache", 1).await, Outcome::Failure(r#"service unhealthy (responded with "UNKNOWN")"#.into()));
        assert_eq!(
            probe("127.0.0.1", port, "nosuch", 1).await,
            Outcome::Failure("error: health rpc probe failed: rpc error: code = NotFound desc = service not registered".into())
        );
    }

    #[tokio::test]
    async fn a_closed_port_times_out_connecting() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let started = Instant::now();
        assert_eq!(
            probe("127.0.0.1", port, "", 1).await,
            Outcome::Failure(format!(r#"timeout: failed to connect service "127.0.0.1:{port}" within 1s: context deadline exceeded"#))
        );
        assert!(started.elapsed() >= Duration::from_millis(900), "gave up after {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn a_server_without_the_health_service_is_reported() {
        // A gRPC server that knows no services answers every method UNIMPLEMENTED.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let nothing = tower::service_fn(|_: http::Request<tonic::body::Body>| async {
            Ok::<_, std::convert::Infallible>(
                tonic::Status::unimplemented("unknown service grpc.health.v1.Health").into_http::<tonic::body::Body>(),
            )
        });
        tokio::spawn(tonic::transport::Server::builder().serve_with_incoming(nothing, TcpListenerStream::new(listener)));
        assert_eq!(
            probe("127.0.0.1", port, "", 1).await,
            Outcome::Failure(
                "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): unknown service grpc.health.v1.Health"
                    .into()
            )
        );
    }
}
