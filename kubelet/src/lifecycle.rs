//! Container lifecycle hooks (postStart, preStop), run as upstream's handler runner does
//! (pkg/kubelet/lifecycle/handlers.go, v1.33):
//!
//! - `exec`: the command, unexpanded, through CRI `ExecSync` without a timeout of its own; a
//!   non-zero exit or a runtime error fails the hook;
//! - `httpGet`: a GET built as for probes but with the `kube-lifecycle/1.33` user agent;
//!   only a failed request fails the hook — the status code is not looked at; an HTTPS hook
//!   answered in plain HTTP is retried over HTTP (and a `LifecycleHTTPFallback` event says so);
//! - `sleep`: sleeps the given seconds (zero returns at once);
//! - `tcpSocket`: deprecated and not supported, so the hook fails ("invalid handler"), as the
//!   API documents.
//!
//! Everything stops at `deadline` (a preStop hook's grace period): that is
//! [`HookError::DeadlineExceeded`], which upstream does not report as a failed hook.
//! [`HookError::Failed`] prints upstream's message, the one the pod worker puts in the
//! container's status; upstream's `FailedPostStartHook` / `FailedPreStopHook` events say
//! only `PostStartHook failed` / `PreStopHook failed`, so that secrets do not leak.

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::time::{Instant, sleep_until, timeout_at};

use crate::cri::Runtime;
use crate::probes::http::{self, HttpError, Purpose};
use crate::probes::messages::{go_cri_error, go_quote, pod_desc};
use crate::probes::{Target, exec};

pub const FAILED_POST_START_HOOK: &str = "FailedPostStartHook";
pub const FAILED_PRE_STOP_HOOK: &str = "FailedPreStopHook";
pub const LIFECYCLE_HTTP_FALLBACK: &str = "LifecycleHTTPFallback";

/// Why a hook failed, in Go's words.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HookFailure {
    /// `command 'sh -c exit 1' exited with 1: <stderr>`, or the runtime's error.
    #[error("{0}")]
    Exec(String),
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The request could not be built (no such port, no pod IP).
    #[error("{0}")]
    Request(String),
    /// A handler with nothing this kubelet runs (tcpSocket, or empty).
    #[error("invalid handler: {0}")]
    InvalidHandler(String),
}

/// How a hook did not complete.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HookError {
    /// The handler failed; the text is upstream's message for the container status.
    #[error("{message}")]
    Failed {
        message: String,
        #[source]
        cause: HookFailure,
    },
    /// `deadline` came first; the handler was abandoned.
    #[error("the {handler} lifecycle hook of container {container:?} did not complete before its deadline")]
    DeadlineExceeded { handler: &'static str, container: String },
}

/// What a hook that completed leaves to report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Completed {
    /// The message of a `LifecycleHTTPFallback` Warning event for the pod, when an HTTPS hook
    /// got a plain-HTTP answer and the retry over HTTP worked.
    pub http_fallback_event: Option<String>,
}

/// Runs `handler` for `container` of `pod` (upstream's handlerRunner.Run), giving up at
/// `deadline`.
pub async fn run_handler<R: Runtime>(
    handler: &LifecycleHandler,
    pod: &Pod,
    container: &Container,
    target: &Target,
    runtime: &R,
    deadline: Instant,
) -> Result<Completed, HookError> {
    let meta = &pod.metadata;
    let pod_name = pod_desc(
        meta.name.as_deref().unwrap_or_default(),
        meta.namespace.as_deref().unwrap_or_default(),
        meta.uid.as_deref().unwrap_or_default(),
    );
    let abandoned = |handler: &'static str| HookError::DeadlineExceeded { handler, container: container.name.clone() };

    if let Some(action) = &handler.exec {
        let command = action.command.clone().unwrap_or_default();
        let joined = command.join(" ");
        let listed = format!("[{joined}]");
        let answer = match timeout_at(deadline, runtime.exec_sync(&target.container_id, command, 0)).await {
            Err(_) => return Err(abandoned("exec")),
            Ok(answer) => answer,
        };
        let (error, output) = match answer {
            Ok(resp) if resp.exit_code == 0 => return Ok(Completed::default()),
            Ok(resp) => (exec::exit_error(&joined, &resp), exec::combined_output(&resp.stdout, &resp.stderr)),
            Err(err) => (go_cri_error(&err), String::new()),
        };
        let message = format!(
            "Exec lifecycle hook ({listed}) for Container {} in Pod {} failed - error: {error}, message: {}",
            go_quote(&container.name),
            go_quote(&pod_name),
            go_quote(&output)
        );
        tracing::info!(container = %container.name, pod = %pod_name, %message, "exec lifecycle hook failed");
        return Err(HookError::Failed { message, cause: HookFailure::Exec(error) });
    }

    if let Some(action) = &handler.http_get {
        let path = action.path.clone().unwrap_or_default();
        let failed = |cause: HookFailure| {
            let message = format!(
                "HTTP lifecycle hook ({path}) for Container {} in Pod {} failed - error: {cause}",
                go_quote(&container.name),
                go_quote(&pod_name)
            );
            tracing::info!(container = %container.name, pod = %pod_name, %message, "HTTP lifecycle hook failed");
            HookError::Failed { message, cause }
        };
        if action.host.as_deref().unwrap_or_default().is_empty() && target.pod_ip.is_empty() {
            return Err(failed(HookFailure::Request("failed to find networking container: the pod has no IP address".into())));
        }
        let request = http::Request::for_action(action, container, &target.pod_ip, Purpose::Lifecycle)
            .map_err(|e| failed(HookFailure::Request(e)))?;
        return match http::get(&request, deadline).await {
            Ok(_) | Err(HttpError::Body { .. }) => Ok(Completed::default()),
            Err(e) if e.is_timeout() => Err(abandoned("httpGet")),
            Err(e) if e.is_http_response_to_https() => {
                tracing::info!(container = %container.name, pod = %pod_name, "HTTPS lifecycle hook got an HTTP response, retrying with HTTP");
                let mut plain = request.clone();
                plain.url.scheme = "http".into();
                plain.headers.retain(|(name, _)| name != "Authorization");
                match http::get(&plain, deadline).await {
                    Ok(_) | Err(HttpError::Body { .. }) => Ok(Completed {
                        http_fallback_event: Some(format!(
                            "request to HTTPS lifecycle hook {} got HTTP response, retry with HTTP succeeded",
                            crate::probes::messages::join_host_port(&plain.url.host, plain.url.port.unwrap_or(80))
                        )),
                    }),
                    Err(retry) if retry.is_timeout() => Err(abandoned("httpGet")),
                    Err(_) => Err(failed(HookFailure::Http(e))),
                }
            }
            Err(e) => Err(failed(HookFailure::Http(e))),
        };
    }

    if let Some(action) = &handler.sleep {
        if action.seconds <= 0 {
            return Ok(Completed::default());
        }
        let wake = Instant::now() + std::time::Duration::from_secs(action.seconds.unsigned_abs());
        if wake > deadline {
            sleep_until(deadline).await;
            return Err(abandoned("sleep"));
        }
        sleep_until(wake).await;
        return Ok(Completed::default());
    }

    let handler_text = go_handler(handler.tcp_socket.as_ref());
    let cause = HookFailure::InvalidHandler(handler_text);
    let message = format!("Cannot run handler: {cause}");
    tracing::warn!(container = %container.name, pod = %pod_name, %message, "cannot run lifecycle hook");
    Err(HookError::Failed { message, cause })
}

/// A handler with neither exec, httpGet nor sleep as Go's generated String() prints it.
fn go_handler(tcp: Option<&TCPSocketAction>) -> String {
    let tcp = match tcp {
        None => "nil".to_string(),
        Some(t) => {
            let port = match &t.port {
                IntOrString::Int(n) => format!("{{0 {n} }}"),
                IntOrString::String(s) => format!("{{1 0 {s}}}"),
            };
            format!("&TCPSocketAction{{Port:{port},Host:{},}}", t.host.as_deref().unwrap_or_default())
        }
    };
    format!("&LifecycleHandler{{Exec:nil,HTTPGet:nil,TCPSocket:{tcp},Sleep:nil,}}")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::probes::fake_runtime::FakeRuntime;
    use k8s_openapi::api::core::v1::{ExecAction, HTTPGetAction, SleepAction};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                uid: Some("u-1".into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn container() -> Container {
        Container { name: "app".into(), ..Default::default() }
    }

    fn exec(cmd: &[&str]) -> LifecycleHandler {
        LifecycleHandler { exec: Some(ExecAction { command: Some(cmd.iter().map(|s| s.to_string()).collect()) }), ..Default::default() }
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(30)
    }

    #[tokio::test]
    async fn exec_hooks_fail_with_upstreams_message() {
        let target = Target { pod_ip: "10.0.0.1".into(), container_id: "abc".into() };
        let ok = FakeRuntime::exits(0, "", "");
        assert_eq!(run_handler(&exec(&["true"]), &pod(), &container(), &target, &ok, later()).await, Ok(Completed::default()));
        assert_eq!(ok.execs(), vec![("abc".to_string(), vec!["true".to_string()], 0)], "no timeout, as upstream");

        let failing = FakeRuntime::exits(2, "out\n", "bad");
        let err = run_handler(&exec(&["sh", "-c", "exit 2"]), &pod(), &container(), &target, &failing, later()).await.expect_err("exit 2");
        assert_eq!(
            err.to_string(),
            r#"Exec lifecycle hook ([sh -c exit 2]) for Container "app" in Pod "web_default(u-1)" failed - error: command 'sh -c exit 2' exited with 2: bad, message: "out\nbad""#
        );

        let gone = FakeRuntime::fails(tonic::Code::NotFound, "no such container");
        let err = run_handler(&exec(&["x"]), &pod(), &container(), &target, &gone, later()).await.expect_err("not found");
        assert_eq!(
            err.to_string(),
            r#"Exec lifecycle hook ([x]) for Container "app" in Pod "web_default(u-1)" failed - error: rpc error: code = NotFound desc = no such container, message: """#
        );
    }

    #[tokio::test(start_paused = true)]
    async fn sleep_hooks_honour_the_deadline() {
        let rt = FakeRuntime::exits(0, "", "");
        let target = Target::default();
        let sleep = |seconds| LifecycleHandler { sleep: Some(SleepAction { seconds }), ..Default::default() };

        let start = Instant::now();
        assert_eq!(run_handler(&sleep(5), &pod(), &container(), &target, &rt, later()).await, Ok(Completed::default()));
        assert_eq!(start.elapsed(), Duration::from_secs(5));

        let start = Instant::now();
        assert_eq!(run_handler(&sleep(0), &pod(), &container(), &target, &rt, later()).await, Ok(Completed::default()));
        assert_eq!(start.elapsed(), Duration::ZERO);

        let start = Instant::now();
        let err = run_handler(&sleep(60), &pod(), &container(), &target, &rt, start + Duration::from_secs(3)).await.expect_err("cut short");
        assert!(matches!(err, HookError::DeadlineExceeded { handler: "sleep", .. }), "{err:?}");
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test]
    async fn tcp_socket_hooks_are_invalid() {
        let rt = FakeRuntime::exits(0, "", "");
        let handler =
            LifecycleHandler { tcp_socket: Some(TCPSocketAction { port: IntOrString::Int(8080), host: None }), ..Default::default() };
        let err = run_handler(&handler, &pod(), &container(), &Target::default(), &rt, later()).await.expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "Cannot run handler: invalid handler: &LifecycleHandler{Exec:nil,HTTPGet:nil,TCPSocket:&TCPSocketAction{Port:{0 8080 },Host:,},Sleep:nil,}"
        );
        assert!(rt.execs().is_empty());
    }

    /// A server answering each connection with `response` after reading the request, which
    /// it passes on.
    async fn one_shot_server(response: &'static str) -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
                let _ = conn.write_all(response.as_bytes()).await;
                let _ = conn.shutdown().await;
            }
        });
        (port, rx)
    }

    fn http_get(port: i32, scheme: Option<&str>) -> LifecycleHandler {
        LifecycleHandler {
            http_get: Some(HTTPGetAction {
                path: Some("/hook".into()),
                port: IntOrString::Int(port),
                scheme: scheme.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn http_hooks_ignore_the_status_and_fail_on_transport_errors() {
        let rt = FakeRuntime::exits(0, "", "");
        let target = Target { pod_ip: "127.0.0.1".into(), container_id: "abc".into() };
        let (port, mut requests) = one_shot_server("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n").await;
        let handler = http_get(i32::from(port), None);
        assert_eq!(run_handler(&handler, &pod(), &container(), &target, &rt, later()).await, Ok(Completed::default()));
        let request = requests.recv().await.expect("the hook's request");
        assert!(request.starts_with("GET /hook HTTP/1.1\r\n"), "{request}");
        assert!(request.contains("User-Agent: kube-lifecycle/1.33\r\n"), "{request}");
        assert!(!request.contains("Connection: close"), "{request}");

        // The HTTPS hook on the plain HTTP server: retried over HTTP, with an event.
        let handler = http_get(i32::from(port), Some("HTTPS"));
        let done = run_handler(&handler, &pod(), &container(), &target, &rt, later()).await.expect("retried over HTTP");
        assert_eq!(
            done.http_fallback_event.as_deref(),
            Some(format!("request to HTTPS lifecycle hook 127.0.0.1:{port} got HTTP response, retry with HTTP succeeded").as_str())
        );

        let closed = {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            l.local_addr().expect("addr").port()
        };
        let err = run_handler(&http_get(i32::from(closed), None), &pod(), &container(), &target, &rt, later()).await.expect_err("refused");
        assert_eq!(
            err.to_string(),
            format!(
                r#"HTTP lifecycle hook (/hook) for Container "app" in Pod "web_default(u-1)" failed - error: Get "http://127.0.0.1:{closed}/hook": dial tcp 127.0.0.1:{closed}: connect: connection refused"#
            )
        );
    }
}
