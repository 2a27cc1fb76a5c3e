//! The CRI layer against a real containerd: a private instance under a temp dir (its own
//! socket, root, state, CNI bridge `ikt0` on 10.250.0.0/24), the pause and busybox images
//! built by `hack/images/build.sh` imported into it, then a pod sandbox with containers run,
//! logged, exec'd into, stopped and removed through [`RemoteRuntime`].
//!
//! Needs root, Debian's containerd/runc/containernetworking-plugins and the image archives:
//! `hack/test.sh` provides all of them; without them the test fails saying what is missing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ironkube_kubelet::cri::containerd::Containerd;
use ironkube_kubelet::cri::remote::RemoteRuntime;
use ironkube_kubelet::cri::{Runtime, api};

const BUSYBOX: &str = "docker.io/library/busybox:1.36";

fn images_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::env::var_os("CONFORMANCE_OUT").map(PathBuf::from).unwrap_or_else(|| root.join("conformance/_out")).join("images")
}

/// containerd running under a temp dir; killed (after its pods were removed) on drop.
struct TestContainerd {
    child: Child,
    config: Containerd,
    _dir: tempfile::TempDir,
}

impl TestContainerd {
    fn start() -> Self {
        assert!(is_root(), "the CRI test runs containers and needs root (hack/test.sh runs as root)");
        for tool in ["containerd", "runc", "ctr"] {
            assert!(which(tool), "{tool} is not on PATH: install Debian's containerd and runc (hack/test.sh does)");
        }
        assert!(Path::new("/usr/lib/cni/bridge").exists(), "/usr/lib/cni/bridge missing: install containernetworking-plugins");
        let archives: Vec<PathBuf> = ["pause-3.10.tar", "busybox-1.36.tar"].iter().map(|a| images_dir().join(a)).collect();
        for a in &archives {
            assert!(a.exists(), "{} missing: run hack/images/build.sh pause busybox-1.36", a.display());
        }
        // A short path: unix socket paths are limited to 108 bytes.
        let dir = tempfile::Builder::new().prefix("ikcri").tempdir_in("/tmp").expect("temp dir");
        let mut config = Containerd::new(dir.path(), "10.250.0.0/24");
        config.bridge = "ikt0".into();
        config.write_files().expect("writing containerd's config");
        let log = std::fs::File::create(dir.path().join("containerd.log")).expect("log file");
        let child = config
            .command()
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawning containerd");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !config.socket().exists() {
            assert!(Instant::now() < deadline, "containerd did not create {} in 30 s", config.socket().display());
            std::thread::sleep(Duration::from_millis(100));
        }
        for a in &archives {
            let out = Command::new("ctr")
                .arg("--address")
                .arg(config.socket())
                .args(["-n", "k8s.io", "images", "import"])
                .arg(a)
                .output()
                .expect("running ctr");
            assert!(out.status.success(), "ctr images import {}: {}", a.display(), String::from_utf8_lossy(&out.stderr));
        }
        TestContainerd { child, config, _dir: dir }
    }
}

impl Drop for TestContainerd {
    fn drop(&mut self) {
        // Sandboxes a failed test left behind hold mounts and network namespaces under the
        // temp dir and shims outside it: have containerd take them down first.
        let endpoint = self.config.endpoint();
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                let Ok(cri) = RemoteRuntime::connect(&endpoint).await else { return };
                for sandbox in cri.list_pod_sandboxes(None).await.unwrap_or_default() {
                    let _ = cri.stop_pod_sandbox(&sandbox.id).await;
                    let _ = cri.remove_pod_sandbox(&sandbox.id).await;
                }
            });
        });
        let _ = cleanup.join();
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The bridge lives outside containerd's directories.
        let _ = Command::new("ip").args(["link", "delete", &self.config.bridge]).stderr(Stdio::null()).status();
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

fn which(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).exists()))
}

fn sandbox_config(name: &str, uid: &str, log_dir: &Path) -> api::PodSandboxConfig {
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata { name: name.into(), uid: uid.into(), namespace: "default".into(), attempt: 0 }),
        hostname: name.into(),
        log_directory: log_dir.display().to_string(),
        linux: Some(api::LinuxPodSandboxConfig { cgroup_parent: String::new(), ..Default::default() }),
        ..Default::default()
    }
}

fn container_config(name: &str, args: &[&str]) -> api::ContainerConfig {
    api::ContainerConfig {
        metadata: Some(api::ContainerMetadata { name: name.into(), attempt: 0 }),
        image: Some(api::ImageSpec { image: BUSYBOX.into(), ..Default::default() }),
        command: vec!["sh".into(), "-c".into()],
        args: args.iter().map(|a| a.to_string()).collect(),
        log_path: format!("{name}/0.log"),
        ..Default::default()
    }
}

async fn wait_exited(rt: &RemoteRuntime, id: &str) -> api::ContainerStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = rt.container_status(id).await.expect("ContainerStatus");
        if status.state == api::ContainerState::ContainerExited as i32 {
            return status;
        }
        assert!(Instant::now() < deadline, "container {id} still in state {} after 30 s", status.state);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_runs_logs_execs_and_goes_away() {
    let ctd = TestContainerd::start();
    let rt = RemoteRuntime::connect(&ctd.config.endpoint()).await.expect("connecting to containerd");

    let version = rt.version().await.expect("Version");
    assert_eq!(version.runtime_name, "containerd");
    assert_eq!(version.runtime_api_version, "v1");
    let ready: Vec<(String, bool)> = rt.status().await.expect("Status").conditions.into_iter().map(|c| (c.r#type, c.status)).collect();
    assert!(ready.contains(&("RuntimeReady".to_string(), true)), "{ready:?}");
    assert!(ready.contains(&("NetworkReady".to_string(), true)), "{ready:?}");

    // Images: the imported busybox is there; one nobody built is not, and cannot be pulled.
    let image = rt.image_status(BUSYBOX).await.expect("ImageStatus").expect("busybox:1.36 imported");
    assert!(image.repo_tags.contains(&BUSYBOX.to_string()), "{:?}", image.repo_tags);
    assert!(rt.image_status("docker.io/library/nosuchimage:1").await.expect("ImageStatus").is_none());
    assert!(rt.pull_image("docker.io/library/nosuchimage:1", None).await.is_err(), "pulling needs a registry, and none is reachable");

    let logs = ctd._dir.path().join("pods/default_b_uid-1");
    std::fs::create_dir_all(&logs).expect("log dir");
    let sandbox = sandbox_config("b", "uid-1", &logs);
    let sandbox_id = rt.run_pod_sandbox(sandbox.clone()).await.expect("RunPodSandbox");
    let status = rt.pod_sandbox_status(&sandbox_id).await.expect("PodSandboxStatus");
    assert_eq!(status.state, api::PodSandboxState::SandboxReady as i32);
    let ip = status.network.map(|n| n.ip).unwrap_or_default();
    assert!(ip.starts_with("10.250.0."), "pod IP {ip:?} is not from the pod CIDR");

    // A container that prints and exits: its log is in the CRI format at the path asked for.
    let hello = rt
        .create_container(&sandbox_id, container_config("hello", &["echo hi; cat /etc/hostname; exit 3"]), sandbox.clone())
        .await
        .expect("CreateContainer");
    rt.start_container(&hello).await.expect("StartContainer");
    let exited = wait_exited(&rt, &hello).await;
    assert_eq!(exited.exit_code, 3);
    let log = std::fs::read_to_string(logs.join("hello/0.log")).expect("container log");
    let lines: Vec<&str> = log.lines().map(|l| l.split_once(' ').map(|(_, rest)| rest).unwrap_or(l)).collect();
    assert_eq!(lines, ["stdout F hi", "stdout F b"], "log was {log:?}");

    // A long-running one: exec into it, then stop it: SIGTERM ends it (exit code 128+15;
    // measured: a signal from outside the PID namespace is not ignored by its PID 1).
    let sleeper = rt
        .create_container(&sandbox_id, container_config("sleeper", &["sleep 3600"]), sandbox.clone())
        .await
        .expect("CreateContainer");
    rt.start_container(&sleeper).await.expect("StartContainer");
    let exec = rt.exec_sync(&sleeper, vec!["cat".into(), "/etc/hostname".into()], 10).await.expect("ExecSync");
    assert_eq!((exec.exit_code, String::from_utf8_lossy(&exec.stdout).trim()), (0, "b"));
    let listed = rt.list_containers(None).await.expect("ListContainers");
    assert_eq!(listed.len(), 2, "{listed:?}");
    rt.stop_container(&sleeper, 1).await.expect("StopContainer");
    assert_eq!(wait_exited(&rt, &sleeper).await.exit_code, 143);

    for id in [&hello, &sleeper] {
        rt.remove_container(id).await.expect("RemoveContainer");
    }
    let gone = rt.container_status(&hello).await.expect_err("status of a removed container");
    assert!(gone.is_not_found(), "{gone}");
    rt.stop_pod_sandbox(&sandbox_id).await.expect("StopPodSandbox");
    rt.remove_pod_sandbox(&sandbox_id).await.expect("RemovePodSandbox");
    assert!(rt.list_pod_sandboxes(None).await.expect("ListPodSandbox").is_empty());
}
