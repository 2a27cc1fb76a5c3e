//! Streaming through the whole chain, stock kubectl → API server → kubelet → containerd:
//! `kubectl logs` (tail, timestamps, limit, follow, previous, the API's errors),
//! `kubectl exec` (with and without stdin), `kubectl cp`, `kubectl attach`,
//! `kubectl port-forward`, and nodes/proxy, with kubectl 1.33 (WebSocket first, then SPDY)
//! and 1.32. The kubelet serves on a free port with `--client-ca-file` and
//! `--anonymous-auth=false`, so only the API server's kubelet client certificate gets in.
//!
//! Needs root, containerd, runc, the CNI plugins and the node images (testkit's
//! TestContainerd; `hack/test.sh` provides them) and curl.

mod support;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ironkube_testkit::containerd::TestContainerd;
use support::{Ironkube, KUBECTL_VERSIONS, describe, eventually, free_port, kubectl_binary, patience};

const NODE: &str = "streaming-node";
const BRIDGE: &str = "ikstr0";
const POD_CIDR: &str = "10.253.17.0/24";
const BUSYBOX: &str = "docker.io/library/busybox:1.36";

/// A child killed on drop (kubelet, `kubectl logs -f`, `kubectl port-forward`, ...).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn kubectl_command(cluster: &Ironkube, version: &str, args: &[&str]) -> Command {
    let mut command = Command::new(kubectl_binary(version));
    command
        .arg(format!("--kubeconfig={}", cluster.kubeconfig.display()))
        .arg(format!("--cache-dir={}", cluster.cache_dir.display()))
        .args(args)
        .env_remove("KUBECONFIG");
    command
}

/// Runs kubectl with `input` on its stdin (closed afterwards); killed if it outlives the
/// test's patience (a lost end-of-input would hang `cat` forever).
fn kubectl_stdin(cluster: &Ironkube, version: &str, args: &[&str], input: &[u8]) -> Output {
    let mut child = kubectl_command(cluster, version, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning kubectl");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("writing kubectl's stdin");
    drop(stdin);
    let (tx, rx) = mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(patience()) {
        Ok(out) => out.expect("kubectl output"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("kubectl {version} {args:?} did not finish within {:?} (stdin's end not passed on?)", patience());
        }
    }
}

/// Spawns kubectl with stdout read line by line into a channel and stderr into `stderr`.
fn kubectl_lines(cluster: &Ironkube, version: &str, args: &[&str], stderr: &Path) -> (Killed, mpsc::Receiver<String>) {
    let mut child = kubectl_command(cluster, version, args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr).expect("stderr file"))
        .spawn()
        .expect("spawning kubectl");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Killed(child), rx)
}

/// The next line matching `want` within the test's patience.
fn wait_line(rx: &mpsc::Receiver<String>, what: &str, want: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + patience();
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if want(&line) => return line,
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    panic!("{what}: no such line within {:?}; saw {seen:?}", patience());
}

fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn create(cluster: &Ironkube, dir: &Path, name: &str, manifest: serde_json::Value) {
    let file = dir.join(format!("{name}.json"));
    std::fs::write(&file, manifest.to_string()).expect("manifest");
    cluster.kubectl_ok("1.33", &["create", "-f", &file.display().to_string()]);
}

fn pod(name: &str, node: Option<&str>, containers: serde_json::Value) -> serde_json::Value {
    let mut spec = serde_json::json!({"terminationGracePeriodSeconds": 1, "containers": containers});
    match node {
        Some(n) => spec["nodeName"] = n.into(),
        None => spec["nodeSelector"] = serde_json::json!({"streaming-test": "nowhere"}),
    }
    serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

fn container(name: &str, script: &str) -> serde_json::Value {
    serde_json::json!({"name": name, "image": BUSYBOX, "command": ["sh", "-c", script]})
}

fn wait_running(cluster: &Ironkube, name: &str) {
    eventually(&format!("pod {name} runs"), || {
        let pod = cluster.kubectl_json("1.33", &["get", "pod", name])?;
        let statuses = pod["status"]["containerStatuses"].as_array().cloned().unwrap_or_default();
        let all_running = !statuses.is_empty() && statuses.iter().all(|s| s["state"].get("running").is_some());
        if all_running { Ok(()) } else { Err(format!("not running yet: {}", pod["status"])) }
    });
}

/// `curl` to the kubelet: the HTTP code, with and without a client certificate.
fn curl_code(url: &str, client: Option<(&Path, &Path)>) -> String {
    let mut command = Command::new("curl");
    command.args(["-sk", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10"]);
    if let Some((cert, key)) = client {
        command.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    let out = command.arg(url).output().expect("running curl (apt-get install curl)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A WebSocket GET to the API server as the admin (what upstream's e2e tests do for logs
/// and exec): the handshake's status line and the data messages' payloads, until the server
/// closes.
fn websocket_get(cluster: &Ironkube, path: &str, protocol: &str) -> (String, Vec<Vec<u8>>) {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let pki = cluster.data_dir.join("pki");
    let read = |name: &str| std::fs::read(pki.join(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(&read("ca.crt")).expect("CA")).expect("CA");
    let certs = vec![CertificateDer::from_pem_slice(&read("admin.crt")).expect("admin cert")];
    let key = PrivateKeyDer::from_pem_slice(&read("admin.key")).expect("admin key");
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .expect("client certificate");
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("TLS");
    let tcp = TcpStream::connect(("127.0.0.1", cluster.secure_port)).expect("connecting to the API server");
    tcp.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n",
        cluster.secure_port
    )
    .expect("handshake");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tls.read_exact(&mut byte).expect("response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head.lines().next().unwrap_or("").to_string();
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "Sec-WebSocket-Accept missing:\n{head}");
    let mut messages = Vec::new();
    loop {
        let mut h = [0u8; 2];
        if tls.read_exact(&mut h).is_err() {
            break;
        }
        let mut len = u64::from(h[1] & 0x7F);
        if len == 126 {
            let mut b = [0u8; 2];
            tls.read_exact(&mut b).expect("length");
            len = u64::from(u16::from_be_bytes(b));
        } else if len == 127 {
            let mut b = [0u8; 8];
            tls.read_exact(&mut b).expect("length");
            len = u64::from_be_bytes(b);
        }
        let mut payload = vec![0u8; len as usize];
        tls.read_exact(&mut payload).expect("payload");
        match h[0] & 0x0F {
            0x8 => break,
            0x1 | 0x2 => messages.push(payload),
            _ => {}
        }
    }
    (status, messages)
}

#[test]
fn logs_exec_cp_attach_and_port_forward_through_the_api_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let _volumes = ironkube_testkit::containerd::UnmountOnDrop(dir.path().join("kubelet").join("pods"));
    let data = dir.path().join("data");
    let cluster = Ironkube::up(&data);
    let ctd = TestContainerd::start(BRIDGE, POD_CIDR);
    let port = free_port();
    let pki = data.join("pki");
    let log = std::fs::File::create(dir.path().join("kubelet.log")).expect("kubelet log");
    // No --node-ip: the node's address is the host's default-route address, a global
    // unicast one, which nodes/proxy requires (loopback is refused, as upstream).
    let kubelet = Command::new(env!("CARGO_BIN_EXE_ironkube"))
        .arg("kubelet")
        .arg(format!("--kubeconfig={}", cluster.kubeconfig.display()))
        .arg(format!("--hostname-override={NODE}"))
        .arg(format!("--container-runtime-endpoint={}", ctd.config.endpoint()))
        .arg(format!("--pod-cidr={POD_CIDR}"))
        .arg(format!("--root-dir={}", dir.path().join("kubelet").display()))
        .arg(format!("--pod-logs-dir={}", dir.path().join("pod-logs").display()))
        .arg(format!("--port={port}"))
        .arg(format!("--client-ca-file={}", pki.join("ca.crt").display()))
        .arg("--anonymous-auth=false")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawning ironkube kubelet");
    let _kubelet = Killed(kubelet);

    // The Node reports the port the kubelet serves on.
    eventually("the node reports its kubelet port", || {
        let node = cluster.kubectl_json("1.33", &["get", "node", NODE])?;
        let reported = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"].as_u64();
        if reported == Some(u64::from(port)) { Ok(()) } else { Err(format!("daemonEndpoints {}", node["status"]["daemonEndpoints"])) }
    });
    // Only a client certificate from the cluster's CA gets in.
    let healthz = format!("https://127.0.0.1:{port}/healthz");
    eventually("the kubelet serves HTTPS", || match curl_code(&healthz, Some((&pki.join("admin.crt"), &pki.join("admin.key")))).as_str() {
        "200" => Ok(()),
        other => Err(format!("HTTP {other}")),
    });
    assert_eq!(curl_code(&healthz, None), "401", "anonymous requests are refused with --anonymous-auth=false");

    create(&cluster, dir.path(), "web", pod("web", Some(NODE), serde_json::json!([
        container("main", "echo one; echo two; echo three; mkdir -p /tmp/www; echo hello-from-web > /tmp/www/index.html; exec httpd -f -p 8080 -h /tmp/www"),
        container("side", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 1; done"),
    ])));
    create(&cluster, dir.path(), "crash", pod("crash", Some(NODE), serde_json::json!([container("c", "echo attempt; sleep 1; exit 3")])));
    create(&cluster, dir.path(), "pending", pod("pending", None, serde_json::json!([container("c", "sleep 3600")])));
    wait_running(&cluster, "web");

    // Logs, with each kubectl.
    for v in KUBECTL_VERSIONS {
        let all = eventually("main's log", || {
            let out = cluster.kubectl(v, &["logs", "web", "-c", "main"]);
            let text = stdout_of(&out);
            if out.status.success() && text == "one\ntwo\nthree\n" { Ok(text) } else { Err(describe(&out)) }
        });
        assert_eq!(all, "one\ntwo\nthree\n");
        assert_eq!(cluster.kubectl_ok(v, &["logs", "web", "-c", "main", "--tail=1"]), "three\n");
        assert_eq!(cluster.kubectl_ok(v, &["logs", "web", "-c", "main", "--limit-bytes=6"]), "one\ntw");
        assert_eq!(cluster.kubectl_ok(v, &["logs", "web", "-c", "main", "--since=1h"]), "one\ntwo\nthree\n");
        let stamped = cluster.kubectl_ok(v, &["logs", "web", "-c", "main", "--timestamps", "--tail=2"]);
        let lines: Vec<&str> = stamped.lines().collect();
        assert_eq!(lines.len(), 2, "{stamped}");
        for (line, text) in lines.iter().zip(["two", "three"]) {
            let (time, rest) = line.split_once(' ').expect("a time, then the text");
            assert_eq!(rest, text);
            // RFC 3339 with nine fractional digits, as upstream prints them.
            let fraction = time.split_once('.').map(|(_, f)| f.trim_end_matches('Z')).unwrap_or("");
            assert_eq!(fraction.len(), 9, "{time}");
            assert!(time.parse::<jiff::Timestamp>().is_ok(), "{time}");
        }
        let out = cluster.kubectl(v, &["logs", "web", "-c", "main", "--previous"]);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(r#"previous terminated container "main" in pod "web" not found"#),
            "{}",
            describe(&out)
        );
    }
    // The API's own errors.
    let out = cluster.kubectl("1.33", &["get", "--raw", "/api/v1/namespaces/default/pods/web/log"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("a container name must be specified for pod web, choose one of: [main side]"),
        "{}",
        describe(&out)
    );
    let out = cluster.kubectl("1.33", &["logs", "nosuchpod"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains(r#"pods "nosuchpod" not found"#), "{}", describe(&out));
    let out = cluster.kubectl("1.33", &["exec", "pending", "--", "true"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("pod pending does not have a host assigned"), "{}", describe(&out));

    // A restarted container's previous instance.
    let previous = eventually("crash's previous log", || {
        let out = cluster.kubectl("1.33", &["logs", "crash", "--previous"]);
        if out.status.success() { Ok(stdout_of(&out)) } else { Err(describe(&out)) }
    });
    assert_eq!(previous, "attempt\n");

    // Following: lines keep arriving.
    for v in KUBECTL_VERSIONS {
        let (_follow, lines) = kubectl_lines(&cluster, v, &["logs", "-f", "web", "-c", "side", "--tail=1"], &dir.path().join("follow.err"));
        let first = wait_line(&lines, "a first tick", |l| l.starts_with("tick "));
        let n: u64 = first.trim_start_matches("tick ").parse().expect("tick number");
        wait_line(&lines, "a later tick, streamed", |l| l.trim_start_matches("tick ").parse::<u64>().is_ok_and(|m| m > n));
    }

    // Exec, with and without stdin; cp (exec + tar both ways).
    for v in KUBECTL_VERSIONS {
        assert_eq!(cluster.kubectl_ok(v, &["exec", "web", "-c", "main", "--", "cat", "/etc/hostname"]), "web\n");
        let out = kubectl_stdin(&cluster, v, &["exec", "-i", "web", "-c", "main", "--", "cat"], b"hello\nthrough stdin\n");
        assert!(out.status.success(), "{}", describe(&out));
        assert_eq!(stdout_of(&out), "hello\nthrough stdin\n");
        let out = cluster.kubectl(v, &["exec", "web", "-c", "main", "--", "sh", "-c", "echo to-stderr >&2; exit 7"]);
        assert_eq!(out.status.code(), Some(7), "{}", describe(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("to-stderr"), "{}", describe(&out));

        let local = dir.path().join(format!("cp-{v}.txt"));
        let content = format!("copied by kubectl {v}\n").repeat(1000);
        std::fs::write(&local, &content).expect("local file");
        let out = kubectl_stdin(&cluster, v, &["cp", &local.display().to_string(), "default/web:/tmp/copied.txt", "-c", "main"], b"");
        assert!(out.status.success(), "{}", describe(&out));
        assert_eq!(cluster.kubectl_ok(v, &["exec", "web", "-c", "main", "--", "cat", "/tmp/copied.txt"]), content);
        let back = dir.path().join(format!("back-{v}.txt"));
        let out = kubectl_stdin(&cluster, v, &["cp", "default/web:/tmp/copied.txt", &back.display().to_string(), "-c", "main"], b"");
        assert!(out.status.success(), "{}", describe(&out));
        assert_eq!(std::fs::read_to_string(&back).expect("copied back"), content);
    }

    // Attach: the running container's output.
    let (_attach, lines) = kubectl_lines(&cluster, "1.33", &["attach", "web", "-c", "side"], &dir.path().join("attach.err"));
    wait_line(&lines, "attached output", |l| l.starts_with("tick "));

    // Port-forward to httpd in the pod, and requests through it: kubectl tunnels SPDY
    // through a WebSocket, which the API server unwraps (no fallback to plain SPDY).
    for v in KUBECTL_VERSIONS {
        let local = free_port();
        let stderr = dir.path().join(format!("port-forward-{v}.err"));
        let (_forward, lines) = kubectl_lines(&cluster, v, &["port-forward", "-v=4", "pod/web", &format!("{local}:8080")], &stderr);
        wait_line(&lines, "port-forward listening", |l| l.starts_with("Forwarding from 127.0.0.1"));
        let body = eventually("a response through the forwarded port", || {
            let mut conn = TcpStream::connect(("127.0.0.1", local)).map_err(|e| e.to_string())?;
            conn.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
            conn.write_all(b"GET /index.html HTTP/1.0\r\nHost: web\r\n\r\n").map_err(|e| e.to_string())?;
            let mut response = String::new();
            conn.read_to_string(&mut response).map_err(|e| e.to_string())?;
            if response.contains("hello-from-web") { Ok(response) } else { Err(format!("response {response:?}")) }
        });
        assert!(body.starts_with("HTTP/1.") && body.contains(" 200 "), "{body}");
        let log = std::fs::read_to_string(&stderr).unwrap_or_default();
        assert!(log.contains("negotiated protocol: portforward.k8s.io") && !log.contains("fallback"), "kubectl {v} did not tunnel:\n{log}");
    }

    // WebSocket clients (upstream's e2e tests): logs as binary messages, and exec with the
    // `channel.k8s.io` protocol, which the runtime speaks itself (channel 1 is stdout).
    let (status, messages) = websocket_get(&cluster, "/api/v1/namespaces/default/pods/web/log?container=main", "binary.k8s.io");
    assert_eq!(status, "HTTP/1.1 101 Switching Protocols");
    assert_eq!(messages.concat(), b"one\ntwo\nthree\n");
    let (status, messages) = websocket_get(
        &cluster,
        "/api/v1/namespaces/default/pods/web/exec?command=cat&command=/etc/hostname&container=main&stderr=true&stdout=true",
        "channel.k8s.io",
    );
    assert_eq!(status, "HTTP/1.1 101 Switching Protocols");
    let stdout: Vec<u8> = messages.iter().filter(|m| m.len() > 1 && m[0] == 1).flat_map(|m| m[1..].to_vec()).collect();
    assert_eq!(String::from_utf8_lossy(&stdout), "web\n", "{messages:?}");

    // nodes/proxy reaches the kubelet with the API server's client certificate.
    assert_eq!(cluster.kubectl_ok("1.33", &["get", "--raw", &format!("/api/v1/nodes/{NODE}/proxy/healthz")]), "ok");
    let tail = cluster.kubectl_ok("1.33", &["get", "--raw", &format!("/api/v1/nodes/{NODE}/proxy/containerLogs/default/web/main?tailLines=1")]);
    assert_eq!(tail, "three\n");

    // pods/proxy and services/proxy go from the API server straight to the pod's IP.
    assert_eq!(cluster.kubectl_ok("1.33", &["get", "--raw", "/api/v1/namespaces/default/pods/web:8080/proxy/index.html"]), "hello-from-web\n");
    let refused = cluster.kubectl("1.33", &["get", "--raw", "/api/v1/namespaces/default/pods/web:8081/proxy/"]);
    assert!(
        !refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("(ServiceUnavailable): error trying to reach service: dial tcp"),
        "{}",
        describe(&refused)
    );
    cluster.kubectl_ok("1.33", &["label", "pod", "web", "app=web"]);
    create(&cluster, dir.path(), "web-service", serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}));
    let body = eventually("services/proxy reaches the endpoint", || {
        let out = cluster.kubectl("1.33", &["get", "--raw", "/api/v1/namespaces/default/services/web:http/proxy/index.html"]);
        if out.status.success() { Ok(stdout_of(&out)) } else { Err(describe(&out)) }
    });
    assert_eq!(body, "hello-from-web\n");
    assert_eq!(cluster.kubectl_ok("1.33", &["get", "--raw", "/api/v1/namespaces/default/services/web:80/proxy/index.html"]), "hello-from-web\n");
}
