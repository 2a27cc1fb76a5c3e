//! The CRI layer against a real containerd: a private instance (testkit's TestContainerd:
//! its own socket, root, state, CNI bridge `ikt0` on 10.250.0.0/24, the pause and busybox
//! images imported), then a pod sandbox with containers run, logged, exec'd into, stopped and
//! removed through [`RemoteRuntime`].

use std::path::Path;
use std::time::{Duration, Instant};

use ironkube_kubelet::cri::remote::RemoteRuntime;
use ironkube_kubelet::cri::{Runtime, api};
use ironkube_testkit::containerd::TestContainerd;

const BUSYBOX: &str = "docker.io/library/busybox:1.36";

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
    let ctd = TestContainerd::start("ikt0", "10.250.0.0/24");
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

    let logs = ctd.dir().join("pods/default_b_uid-1");
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
