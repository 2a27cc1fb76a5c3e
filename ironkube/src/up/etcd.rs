//! etcd as a supervised child process: Debian's `etcd` on loopback ports, its data under
//! the data dir, restarted with back-off if it dies, stopped with SIGTERM (SIGKILL after a
//! grace period).
//!
//! The ports are remembered in `etcd-ports.json` so a restart listens where the member's
//! stored peer URL says (and clients find the same address); a port that is taken by then
//! is replaced by a free one.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use super::component::{Running, Started};

/// The member name, also the cluster token.
const MEMBER: &str = "ironkube";
/// How long etcd gets to answer `/health` after it is started.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long etcd gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A run longer than this resets the back-off.
const STABLE_RUN: Duration = Duration::from_secs(60);
/// Debian's etcd-server puts the binary here.
const DEBIAN_ETCD: &str = "/usr/bin/etcd";
/// util-linux's setpriv: gives etcd a parent-death signal, so it never outlives us.
const SETPRIV: &str = "/usr/bin/setpriv";

/// Where one etcd member keeps its things.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// The etcd binary; `None` looks for `etcd` on `PATH`, then Debian's.
    pub binary: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub log_file: PathBuf,
    pub ports_file: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Ports {
    client: u16,
    peer: u16,
}

/// Starts etcd; ready yields its client URLs once `/health` answers.
pub fn start(config: &EtcdConfig) -> anyhow::Result<Started<Vec<String>>> {
    let binary = find_binary(config.binary.as_deref())?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let ports = choose_ports(&config.ports_file)?;
    let client_url = format!("http://127.0.0.1:{}", ports.client);
    tracing::info!(
        binary = %binary.display(),
        client = %client_url,
        peer_port = ports.peer,
        data_dir = %config.data_dir.display(),
        log = %config.log_file.display(),
        "starting etcd"
    );
    let args = arguments(&config.data_dir, ports);
    let log_file = config.log_file.clone();
    let running = Running::spawn("etcd", STOP_GRACE + Duration::from_secs(5), move |stop| {
        supervise(binary, args, log_file, stop)
    });
    let log_file = config.log_file.clone();
    let ready = Box::pin(async move {
        wait_healthy(SocketAddr::from(([127, 0, 0, 1], ports.client)), &log_file).await?;
        Ok(vec![client_url])
    });
    Ok(Started { running, ready })
}

fn arguments(data_dir: &Path, ports: Ports) -> Vec<String> {
    let client = format!("http://127.0.0.1:{}", ports.client);
    let peer = format!("http://127.0.0.1:{}", ports.peer);
    vec![
        format!("--name={MEMBER}"),
        format!("--data-dir={}", data_dir.display()),
        format!("--listen-client-urls={client}"),
        format!("--advertise-client-urls={client}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster={MEMBER}={peer}"),
        format!("--initial-cluster-token={MEMBER}"),
        "--initial-cluster-state=new".into(),
        "--logger=zap".into(),
        "--log-outputs=stderr".into(),
    ]
}

fn find_binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        anyhow::ensure!(
            path.is_file(),
            "the etcd binary {} does not exist",
            path.display()
        );
        return Ok(path.to_path_buf());
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("etcd"))
        .find(|candidate| candidate.is_file());
    if let Some(path) = on_path {
        return Ok(path);
    }
    let debian = PathBuf::from(DEBIAN_ETCD);
    anyhow::ensure!(
        debian.is_file(),
        "etcd not found on PATH nor at {DEBIAN_ETCD}: install Debian's etcd-server \
         (apt-get install etcd-server), pass --etcd-binary, or point --etcd-servers at a running etcd"
    );
    Ok(debian)
}

/// The remembered ports when they are still free, otherwise free ones; remembered for next
/// time.
fn choose_ports(file: &Path) -> anyhow::Result<Ports> {
    let previous: Option<Ports> = std::fs::read(file)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let mut held = Vec::new();
    let mut pick = |wanted: Option<u16>, role: &str| -> anyhow::Result<u16> {
        if let Some(port) = wanted {
            if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
                held.push(listener);
                return Ok(port);
            }
            tracing::warn!(
                port,
                "etcd's previous {role} port is taken; choosing another"
            );
        }
        let listener = TcpListener::bind(("127.0.0.1", 0)).context("finding a free port")?;
        let port = listener.local_addr().context("finding a free port")?.port();
        held.push(listener);
        Ok(port)
    };
    let ports = Ports {
        client: pick(previous.map(|p| p.client), "client")?,
        peer: pick(previous.map(|p| p.peer), "peer")?,
    };
    drop(held);
    if previous != Some(ports) {
        let json = serde_json::to_vec_pretty(&ports).context("encoding the etcd ports")?;
        std::fs::write(file, json).with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(ports)
}

fn spawn(binary: &Path, args: &[String], log_file: &Path, attempt: u32) -> anyhow::Result<Child> {
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_file)
        .with_context(|| format!("opening {}", log_file.display()))?;
    {
        use std::io::Write as _;
        let _ = writeln!(
            log,
            "--- ironkube: starting etcd (attempt {attempt}) at {} ---",
            jiff::Timestamp::now()
        );
    }
    let stderr = log.try_clone().context("duplicating the etcd log handle")?;
    let mut command = if Path::new(SETPRIV).is_file() {
        let mut c = Command::new(SETPRIV);
        c.args(["--pdeathsig", "TERM", "--"]).arg(binary);
        c
    } else {
        Command::new(binary)
    };
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(stderr))
        .kill_on_drop(true);
    command
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))
}

/// Runs etcd until `stop`, restarting it with back-off whenever it exits.
async fn supervise(
    binary: PathBuf,
    args: Vec<String>,
    log_file: PathBuf,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut backoff = MIN_BACKOFF;
    let mut attempt = 1;
    loop {
        let mut child = spawn(&binary, &args, &log_file, attempt)?;
        let started = Instant::now();
        tokio::select! {
            status = child.wait() => {
                let status = status.context("waiting for etcd")?;
                if started.elapsed() > STABLE_RUN {
                    backoff = MIN_BACKOFF;
                }
                tracing::warn!(
                    %status,
                    restart_in = ?backoff,
                    log = %log_file.display(),
                    "etcd exited; restarting it"
                );
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.cancelled() => return Ok(()),
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                attempt += 1;
            }
            _ = stop.cancelled() => return terminate(child).await,
        }
    }
}

/// SIGTERM, then SIGKILL if etcd is still there after the grace period.
async fn terminate(mut child: Child) -> anyhow::Result<()> {
    let Some(pid) = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw)
    else {
        return Ok(()); // already reaped
    };
    if let Err(e) = rustix::process::kill_process(pid, rustix::process::Signal::TERM) {
        tracing::warn!("sending SIGTERM to etcd: {e}");
    }
    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
        Ok(status) => {
            let status = status.context("waiting for etcd to exit")?;
            tracing::info!(%status, "etcd exited");
            Ok(())
        }
        Err(_) => {
            tracing::warn!(grace = ?STOP_GRACE, "etcd ignored SIGTERM; killing it");
            child.kill().await.context("killing etcd")
        }
    }
}

async fn wait_healthy(addr: SocketAddr, log_file: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let reason = match health(addr).await {
            Ok(()) => return Ok(()),
            Err(reason) => reason,
        };
        if Instant::now() >= deadline {
            anyhow::bail!(
                "etcd at {addr} is not healthy after {READY_TIMEOUT:?} ({reason}); the end of {}:\n{}",
                log_file.display(),
                tail(log_file, 20)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One `GET /health` over a plain TCP connection (etcd's client port speaks HTTP/1.1).
async fn health(addr: SocketAddr) -> Result<(), String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connecting: {e}"))?;
        let request = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("sending: {e}"))?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .await
            .map_err(|e| format!("reading: {e}"))?;
        Ok::<_, String>(String::from_utf8_lossy(&response).into_owned())
    };
    let response = tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .map_err(|_| "no answer within 2s".to_string())??;
    let status_ok = response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200");
    if status_ok && response.contains(r#""health":"true""#) {
        Ok(())
    } else {
        let first_line = response.lines().next().unwrap_or_default().to_string();
        let body = response
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .trim()
            .to_string();
        Err(format!("answered {first_line:?} {body}"))
    }
}

fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read it: {e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_remembered_and_replaced_when_taken() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("etcd-ports.json");
        let first = choose_ports(&file).expect("ports");
        assert_ne!(first.client, first.peer);
        assert_eq!(choose_ports(&file).expect("ports"), first);

        let _taken = TcpListener::bind(("127.0.0.1", first.client)).expect("bind");
        let second = choose_ports(&file).expect("ports");
        assert_ne!(second.client, first.client);
        assert_eq!(second.peer, first.peer);
        let stored: Ports =
            serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("json");
        assert_eq!(stored, second);
    }

    #[test]
    fn arguments_name_one_member_on_loopback() {
        let args = arguments(Path::new("/data/etcd"), Ports { client: 1, peer: 2 });
        assert!(args.contains(&"--listen-client-urls=http://127.0.0.1:1".to_string()));
        assert!(args.contains(&"--initial-cluster=ironkube=http://127.0.0.1:2".to_string()));
        assert!(args.contains(&"--data-dir=/data/etcd".to_string()));
    }

    #[tokio::test]
    async fn health_reads_a_raw_http_answer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            for body in [
                r#"{"health":"true"}"#,
                r#"{"health":"false","reason":"NOSPACE"}"#,
            ] {
                let (mut conn, _) = listener.accept().await.expect("accept");
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf).await;
                let status = if body.contains("true") {
                    "200 OK"
                } else {
                    "503 Service Unavailable"
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                conn.write_all(reply.as_bytes()).await.expect("write");
            }
        });
        assert_eq!(health(addr).await, Ok(()));
        let err = health(addr).await.expect_err("unhealthy");
        assert!(err.contains("NOSPACE"), "{err}");
        server.await.expect("server");
    }

    fn attempts(log: &Path) -> usize {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .matches("--- ironkube: starting etcd")
            .count()
    }

    #[tokio::test]
    async fn a_dying_child_is_restarted_and_a_running_one_terminated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("etcd.log");
        let stop = CancellationToken::new();
        let script = vec!["-c".to_string(), "echo started; exit 3".to_string()];
        let task = tokio::spawn(supervise(
            "/bin/sh".into(),
            script,
            log.clone(),
            stop.clone(),
        ));
        let deadline = Instant::now() + Duration::from_secs(10);
        while attempts(&log) < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(attempts(&log) >= 2, "not restarted:\n{}", tail(&log, 10));
        stop.cancel();
        task.await.expect("join").expect("supervise");

        let stop = CancellationToken::new();
        let sleeper = vec!["-c".to_string(), "echo up; exec sleep 600".to_string()];
        let task = tokio::spawn(supervise(
            "/bin/sh".into(),
            sleeper,
            log.clone(),
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let begun = Instant::now();
        stop.cancel();
        task.await.expect("join").expect("supervise");
        assert!(begun.elapsed() < STOP_GRACE, "SIGTERM was not enough");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("log");
        std::fs::write(&file, "a\nb\nc\n").expect("write");
        assert_eq!(tail(&file, 2), "b\nc");
    }
}
