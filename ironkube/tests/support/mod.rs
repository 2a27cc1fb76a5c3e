//! The integration-test harness: a real etcd, the real `ironkube` binary and stock kubectl,
//! on free loopback ports in temporary directories.
//!
//! - [`TestEtcd::start`] runs etcd alone (killed on drop);
//! - [`Ironkube::up`] runs `ironkube up` and waits for its ready line (SIGTERM on drop);
//! - [`kubectl`] runs `/usr/lib/google-cloud-sdk/bin/kubectl.<version>`;
//! - [`eventually`] retries a check until `IRONKUBE_TEST_PATIENCE_SECS` (default 30) pass.
//!
//! A missing etcd or kubectl fails the test with what to install: `hack/test.sh` installs
//! them.

#![allow(dead_code)] // each test binary uses its own part of the harness

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The line `ironkube up` prints on stdout when the cluster is ready.
pub const READY_PREFIX: &str = "ironkube is ready; export KUBECONFIG=";
/// The stock kubectl versions the tests drive.
pub const KUBECTL_VERSIONS: [&str; 2] = ["1.33", "1.32"];
const KUBECTL_DIR: &str = "/usr/lib/google-cloud-sdk/bin";
const SETPRIV: &str = "/usr/bin/setpriv";

/// How long checks may take: `IRONKUBE_TEST_PATIENCE_SECS`, 30 s by default.
pub fn patience() -> Duration {
    let secs = std::env::var("IRONKUBE_TEST_PATIENCE_SECS")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(30);
    Duration::from_secs(secs)
}

/// Runs `check` until it succeeds or patience runs out, then panics with its last error.
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + patience();
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("{what}: still failing after {:?}: {last}", patience())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// The ironkube binary under test: `IRONKUBE_BIN` when set (a copy taken right after the
/// build: worktrees sharing one target dir overwrite each other's `target/debug/ironkube`),
/// else the one cargo built.
pub fn ironkube_binary() -> PathBuf {
    std::env::var_os("IRONKUBE_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ironkube")), PathBuf::from)
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("binding a free loopback port");
    listener.local_addr().expect("local address").port()
}

/// Whether something accepts TCP connections on a loopback port.
pub fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(1),
    )
    .is_ok()
}

/// The etcd binary, or a panic saying how to get it.
pub fn etcd_binary() -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("etcd"))
        .chain([PathBuf::from("/usr/bin/etcd")])
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "etcd is not installed: run hack/test.sh, which installs it, \
             or `apt-get install etcd-server etcd-client`"
        )
    })
}

/// The stock kubectl of one minor version (`"1.33"`), or a panic saying what is missing.
pub fn kubectl_binary(version: &str) -> PathBuf {
    let path = Path::new(KUBECTL_DIR).join(format!("kubectl.{version}"));
    assert!(
        path.is_file(),
        "kubectl {version} is missing at {}: the tests drive stock kubectl binaries \
         /usr/lib/google-cloud-sdk/bin/kubectl.1.NN (Debian package `kubectl` from the \
         Google Cloud SDK), preinstalled on the project's machines",
        path.display()
    );
    path
}

/// Runs stock kubectl `version` against `kubeconfig`, with its discovery cache in
/// `cache_dir` and a request timeout unless `args` sets one.
pub fn kubectl(version: &str, kubeconfig: &Path, cache_dir: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(kubectl_binary(version));
    command
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .arg(format!("--cache-dir={}", cache_dir.display()));
    if !args.iter().any(|a| a.starts_with("--request-timeout")) {
        command.arg("--request-timeout=20s");
    }
    command
        .args(args)
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running kubectl {version} {args:?}: {e}"))
}

/// A summary of a finished command for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Starts a child that gets SIGTERM if the thread that started it dies (so a killed test
/// run leaves nothing behind), when util-linux's setpriv is there.
pub fn command_with_parent_death_signal(program: &Path) -> Command {
    if Path::new(SETPRIV).is_file() {
        let mut command = Command::new(SETPRIV);
        command.args(["--pdeathsig", "TERM", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn sigterm(child: &Child) {
    let pid = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .expect("child pid");
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
}

/// Waits for `child` until `timeout`; `None` if it is still running.
fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("waiting for child {}: {e}", child.id()),
        }
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// One etcd member on free loopback ports, data in `dir`; killed on drop.
pub struct TestEtcd {
    child: Child,
    pub client_url: String,
    pub client_port: u16,
    log: PathBuf,
}

impl TestEtcd {
    pub fn start(dir: &Path) -> Self {
        let binary = etcd_binary();
        std::fs::create_dir_all(dir).expect("creating the etcd dir");
        let (client_port, peer_port) = (free_port(), free_port());
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let log = dir.join("etcd.log");
        let log_file = std::fs::File::create(&log).expect("creating the etcd log");
        let child = command_with_parent_death_signal(&binary)
            .arg("--name=test")
            .arg(format!("--data-dir={}", dir.join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=test={peer_url}"))
            .arg("--logger=zap")
            .arg("--log-outputs=stderr")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let etcd = TestEtcd {
            child,
            client_url,
            client_port,
            log,
        };
        eventually("etcd answers /health", || etcd.health());
        etcd
    }

    /// One `GET /health` over a raw HTTP/1.1 connection.
    fn health(&self) -> Result<(), String> {
        use std::io::Write as _;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.client_port));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
            .map_err(|e| format!("connecting to {addr}: {e}\n{}", tail(&self.log, 10)))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| e.to_string())?;
        write!(
            stream,
            "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .map_err(|e| e.to_string())?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .map_err(|e| e.to_string())?;
        if response.starts_with("HTTP/1.1 200") && response.contains(r#""health":"true""#) {
            Ok(())
        } else {
            Err(format!("unhealthy: {response}"))
        }
    }
}

impl Drop for TestEtcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `ironkube up`; stopped with SIGTERM on drop.
pub struct Ironkube {
    child: Option<Child>,
    pub data_dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub secure_port: u16,
    pub cache_dir: PathBuf,
    stderr: PathBuf,
}

impl Ironkube {
    /// `ironkube up --data-dir <data_dir>` with its own etcd, on a free port.
    pub fn up(data_dir: &Path) -> Self {
        Self::up_with(data_dir, &[])
    }

    /// `ironkube up --data-dir <data_dir> --secure-port <free> --bind-address 127.0.0.1
    /// <extra>`; waits for the ready line and returns once kubectl can be pointed at it.
    pub fn up_with(data_dir: &Path, extra: &[&str]) -> Self {
        etcd_binary();
        let binary = ironkube_binary();
        let secure_port = free_port();
        let parent = data_dir.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).expect("creating the test dir");
        let name = data_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("data");
        let stderr = parent.join(format!("{name}.ironkube.log"));
        let cache_dir = parent.join(format!("{name}.kube-cache"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr)
            .expect("creating the ironkube log");
        let mut child = command_with_parent_death_signal(&binary)
            .arg("up")
            .arg(format!("--data-dir={}", data_dir.display()))
            .arg(format!("--secure-port={secure_port}"))
            .arg("--bind-address=127.0.0.1")
            // A node only where a test asks for one (it needs its own bridge and pod CIDR).
            .args(if extra.iter().any(|a| a.starts_with("--node=") || *a == "--node") { None } else { Some("--node=false") })
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));

        let stdout = child.stdout.take().expect("piped stdout");
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });

        let mut cluster = Ironkube {
            child: Some(child),
            data_dir: data_dir.to_path_buf(),
            kubeconfig: PathBuf::new(),
            secure_port,
            cache_dir,
            stderr,
        };
        let deadline = Instant::now() + patience();
        let mut ready_lines = Vec::new();
        while Instant::now() < deadline {
            match lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => match line.strip_prefix(READY_PREFIX) {
                    Some(path) => ready_lines.push(PathBuf::from(path)),
                    None => panic!(
                        "unexpected line on stdout: {line:?}\n{}",
                        cluster.log_tail()
                    ),
                },
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = cluster
                        .child
                        .as_mut()
                        .and_then(|c| wait_timeout(c, Duration::from_secs(5)));
                    panic!(
                        "ironkube up exited ({status:?}) before it was ready\n{}",
                        cluster.log_tail()
                    );
                }
            }
            if !ready_lines.is_empty() {
                // Anything else printed soon after would be a second ready line.
                if let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
                    panic!("more output after the ready line: {line:?}");
                }
                break;
            }
        }
        match ready_lines.as_slice() {
            [path] => cluster.kubeconfig = path.clone(),
            _ => panic!(
                "ironkube up did not print {READY_PREFIX:?} within {:?}\n{}",
                patience(),
                cluster.log_tail()
            ),
        }
        cluster
    }

    /// Runs stock kubectl (`"1.33"` or `"1.32"`) against this cluster.
    pub fn kubectl(&self, version: &str, args: &[&str]) -> Output {
        kubectl(version, &self.kubeconfig, &self.cache_dir, args)
    }

    /// Like [`Self::kubectl`], and fails the test unless kubectl succeeds; returns stdout.
    /// `kubectl ARGS -o json`, parsed.
    pub fn kubectl_json(&self, version: &str, args: &[&str]) -> Result<serde_json::Value, String> {
        let mut args = args.to_vec();
        args.extend(["-o", "json"]);
        let output = self.kubectl(version, &args);
        if !output.status.success() {
            return Err(describe(&output));
        }
        serde_json::from_slice(&output.stdout).map_err(|e| format!("kubectl {args:?} printed no JSON: {e}"))
    }

    pub fn kubectl_ok(&self, version: &str, args: &[&str]) -> String {
        let output = self.kubectl(version, args);
        assert!(
            output.status.success(),
            "kubectl {version} {args:?} failed: {}\n--- ironkube\n{}",
            describe(&output),
            self.log_tail()
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The end of ironkube's log (its stderr).
    pub fn log_tail(&self) -> String {
        format!(
            "--- {} (last 40 lines)\n{}",
            self.stderr.display(),
            tail(&self.stderr, 40)
        )
    }

    /// Sends SIGTERM and waits for ironkube to exit; returns its status.
    pub fn stop(mut self) -> ExitStatus {
        let status = self.terminate();
        status.unwrap_or_else(|| panic!("ironkube did not exit after SIGTERM\n{}", self.log_tail()))
    }

    fn terminate(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        sigterm(&child);
        match wait_timeout(&mut child, patience()) {
            Some(status) => Some(status),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                None
            }
        }
    }
}

impl Drop for Ironkube {
    fn drop(&mut self) {
        self.terminate();
    }
}
