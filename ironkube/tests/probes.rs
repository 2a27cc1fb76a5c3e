//! Probes and lifecycle hooks against a real container: a private containerd (testkit's
//! TestContainerd, bridge `ikprb0` on 10.254.77.0/24) runs a busybox container serving
//! `httpd` on its pod IP; exec probes go through CRI ExecSync, HTTP and TCP probes to the pod
//! IP, and the probe manager turns them into readiness and a restart request.
//!
//! Needs root, containerd and the node images (`hack/test.sh` provides them).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ironkube_kubelet::cri::remote::RemoteRuntime;
use ironkube_kubelet::cri::{Runtime, api};
use ironkube_kubelet::lifecycle::run_handler;
use ironkube_kubelet::probes::{KillReason, Manager, Outcome, ProbeKind, Target, run_once};
use ironkube_testkit::containerd::TestContainerd;
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, ContainerState, ContainerStateRunning, ContainerStatus, ExecAction, HTTPGetAction, LifecycleHandler, Pod,
    PodSpec, Probe, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

const BUSYBOX: &str = "docker.io/library/busybox:1.36";

fn sandbox_config(log_dir: &Path) -> api::PodSandboxConfig {
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata { name: "web".into(), uid: "probe-uid".into(), namespace: "default".into(), attempt: 0 }),
        hostname: "web".into(),
        log_directory: log_dir.display().to_string(),
        linux: Some(api::LinuxPodSandboxConfig::default()),
        ..Default::default()
    }
}

fn httpd_config() -> api::ContainerConfig {
    api::ContainerConfig {
        metadata: Some(api::ContainerMetadata { name: "web".into(), attempt: 0 }),
        image: Some(api::ImageSpec { image: BUSYBOX.into(), ..Default::default() }),
        command: vec!["sh".into(), "-c".into()],
        args: vec!["mkdir -p /www && echo ok > /www/healthz && exec httpd -f -p 8080 -h /www".into()],
        log_path: "web/0.log".into(),
        ..Default::default()
    }
}

fn exec(cmd: &[&str]) -> Probe {
    Probe {
        exec: Some(ExecAction { command: Some(cmd.iter().map(|s| s.to_string()).collect()) }),
        timeout_seconds: Some(1),
        ..Default::default()
    }
}

fn http_get(port: IntOrString, path: &str) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction { port, path: Some(path.into()), ..Default::default() }),
        timeout_seconds: Some(1),
        ..Default::default()
    }
}

/// Runs `probe` until it gives `want` (the server may still be starting), for up to 20 s.
async fn until<R: Runtime>(probe: &Probe, container: &Container, target: &Target, rt: &R, want: Outcome) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = run_once(probe, container, target, rt).await;
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "probe {probe:?} gave {got:?}, not {want:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_hooks_reach_a_real_container() {
    let ctd = TestContainerd::start("ikprb0", "10.254.77.0/24");
    let rt = Arc::new(RemoteRuntime::connect(&ctd.config.endpoint()).await.expect("connecting to containerd"));
    let logs = ctd.dir().join("pods/default_web_probe-uid");
    std::fs::create_dir_all(&logs).expect("log dir");
    let sandbox = sandbox_config(&logs);
    let sandbox_id = rt.run_pod_sandbox(sandbox.clone()).await.expect("RunPodSandbox");
    let pod_ip = rt.pod_sandbox_status(&sandbox_id).await.expect("PodSandboxStatus").network.map(|n| n.ip).unwrap_or_default();
    assert!(pod_ip.starts_with("10.254.77."), "pod IP {pod_ip:?}");
    let id = rt.create_container(&sandbox_id, httpd_config(), sandbox).await.expect("CreateContainer");
    rt.start_container(&id).await.expect("StartContainer");

    let container = Container {
        name: "web".into(),
        ports: Some(vec![ContainerPort { name: Some("http".into()), container_port: 8080, ..Default::default() }]),
        ..Default::default()
    };
    let target = Target { pod_ip: pod_ip.clone(), container_id: id.clone() };

    // Exec probes through ExecSync: exit codes, output, and the runtime's timeout.
    until(&exec(&["cat", "/www/healthz"]), &container, &target, rt.as_ref(), Outcome::Success).await;
    assert_eq!(
        run_once(&exec(&["sh", "-c", "echo not ready; echo >&2 really; exit 3"]), &container, &target, rt.as_ref()).await,
        Outcome::Failure("not ready\nreally\n".into())
    );
    let started = Instant::now();
    assert_eq!(
        run_once(&exec(&["sleep", "10"]), &container, &target, rt.as_ref()).await,
        Outcome::Failure(r#"command timed out: "sleep 10" timed out after 1s"#.into())
    );
    assert!(started.elapsed() < Duration::from_secs(8), "the timeout was not applied: {:?}", started.elapsed());

    // HTTP and TCP probes on the pod IP, the port by name and by number.
    until(&http_get(IntOrString::String("http".into()), "/healthz"), &container, &target, rt.as_ref(), Outcome::Success).await;
    assert_eq!(
        run_once(&http_get(IntOrString::Int(8080), "/missing"), &container, &target, rt.as_ref()).await,
        Outcome::Failure("HTTP probe failed with statuscode: 404".into())
    );
    assert_eq!(
        run_once(&http_get(IntOrString::Int(8081), "/"), &container, &target, rt.as_ref()).await,
        Outcome::Failure(format!(r#"Get "http://{pod_ip}:8081/": dial tcp {pod_ip}:8081: connect: connection refused"#))
    );
    let tcp = |port| Probe { tcp_socket: Some(TCPSocketAction { port: IntOrString::Int(port), host: None }), ..Default::default() };
    assert_eq!(run_once(&tcp(8080), &container, &target, rt.as_ref()).await, Outcome::Success);

    // Hooks: exec runs in the container, httpGet reaches the pod.
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some("probe-uid".into()),
            ..Default::default()
        },
        spec: Some(PodSpec { containers: vec![container.clone()], restart_policy: Some("Always".into()), ..Default::default() }),
        ..Default::default()
    };
    let later = tokio::time::Instant::now() + Duration::from_secs(20);
    let hook = LifecycleHandler {
        exec: Some(ExecAction { command: Some(vec!["sh".into(), "-c".into(), "echo hooked > /www/hook".into()]) }),
        ..Default::default()
    };
    run_handler(&hook, &pod, &container, &target, rt.as_ref(), later).await.expect("exec hook");
    until(&http_get(IntOrString::Int(8080), "/hook"), &container, &target, rt.as_ref(), Outcome::Success).await;
    let failing = LifecycleHandler {
        exec: Some(ExecAction { command: Some(vec!["sh".into(), "-c".into(), "exit 7".into()]) }),
        ..Default::default()
    };
    let err = run_handler(&failing, &pod, &container, &target, rt.as_ref(), later).await.expect_err("exit 7");
    assert_eq!(
        err.to_string(),
        r#"Exec lifecycle hook ([sh -c exit 7]) for Container "web" in Pod "web_default(probe-uid)" failed - error: command 'sh -c exit 7' exited with 7: , message: """#
    );
    let http_hook = LifecycleHandler {
        http_get: Some(HTTPGetAction { port: IntOrString::Int(8080), path: Some("/healthz".into()), ..Default::default() }),
        ..Default::default()
    };
    run_handler(&http_hook, &pod, &container, &target, rt.as_ref(), later).await.expect("HTTP hook");

    // The manager: an HTTP readiness probe makes the container ready; a failing exec
    // liveness probe asks for a restart.
    let mut probed = container.clone();
    probed.readiness_probe = Some(Probe { period_seconds: Some(1), ..http_get(IntOrString::Int(8080), "/healthz") });
    probed.liveness_probe = Some(Probe { period_seconds: Some(1), failure_threshold: Some(2), ..exec(&["cat", "/www/nothing"]) });
    let mut pod = pod;
    if let Some(spec) = pod.spec.as_mut() {
        spec.containers = vec![probed];
    }
    let status = ContainerStatus {
        name: "web".into(),
        container_id: Some(format!("containerd://{id}")),
        state: Some(ContainerState {
            running: Some(ContainerStateRunning { started_at: Some(Time(jiff::Timestamp::now())) }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let (changed_tx, mut changed) = tokio::sync::mpsc::unbounded_channel();
    let config = ironkube_kubelet::probes::Config { events: None, start_jitter: false };
    let manager = Manager::with_config(rt.clone(), changed_tx, config);
    manager.sync_pod(&pod, &[status], Some(&pod_ip));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut kills = Vec::new();
    while !manager.ready("probe-uid", "web") || kills.is_empty() {
        assert!(Instant::now() < deadline, "ready {}, kill requests {kills:?}", manager.ready("probe-uid", "web"));
        let _ = tokio::time::timeout(Duration::from_secs(1), changed.recv()).await;
        kills.extend(manager.take_kill_requests("probe-uid"));
    }
    assert_eq!(kills.len(), 1, "{kills:?}");
    assert_eq!((kills[0].reason, kills[0].message.as_str()), (KillReason::LivenessProbe, "Container web failed liveness probe"));
    assert_eq!(manager.result("probe-uid", "web", ProbeKind::Liveness).map(|r| r.0), Some(format!("containerd://{id}")));
    manager.remove_pod("probe-uid");

    rt.stop_container(&id, 1).await.expect("StopContainer");
    rt.remove_container(&id).await.expect("RemoveContainer");
    rt.stop_pod_sandbox(&sandbox_id).await.expect("StopPodSandbox");
    rt.remove_pod_sandbox(&sandbox_id).await.expect("RemovePodSandbox");
}
