//! A private containerd for tests: its own socket, root, state and CNI bridge under a temp
//! dir, with the node images built by `hack/images/build.sh` imported. Needs root, Debian's
//! containerd/runc/containernetworking-plugins and the image archives (`hack/test.sh`
//! provides all of them); without them it panics saying what is missing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ironkube_kubelet::cri::Runtime as _;
use ironkube_kubelet::cri::containerd::Containerd;
use ironkube_kubelet::cri::remote::RemoteRuntime;

/// Where hack/images/build.sh leaves the archives.
pub fn images_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::env::var_os("CONFORMANCE_OUT").map(PathBuf::from).unwrap_or_else(|| root.join("conformance/_out")).join("images")
}

/// containerd running under a temp dir; killed (after its pods were removed) on drop.
pub struct TestContainerd {
    child: Child,
    pub config: Containerd,
    dir: tempfile::TempDir,
}

impl TestContainerd {
    /// Starts containerd with pods on `bridge` in `pod_cidr` (keep both apart from other
    /// tests' and from a cluster running on the machine).
    pub fn start(bridge: &str, pod_cidr: &str) -> Self {
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
        let mut config = Containerd::new(dir.path(), pod_cidr);
        config.bridge = bridge.into();
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
        TestContainerd { child, config, dir }
    }

    /// The temp dir everything lives in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TestContainerd {
    fn drop(&mut self) {
        // Sandboxes a failed test left behind hold mounts and network namespaces under the
        // temp dir and shims outside it: have containerd take them down first.
        remove_all_pods(&self.config.endpoint());
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The bridge lives outside containerd's directories.
        let _ = Command::new("ip").args(["link", "delete", &self.config.bridge]).stderr(Stdio::null()).status();
    }
}

/// Stops and removes every sandbox (and so every container) of the containerd at
/// `endpoint`, from a thread of its own (callable from async tests and from `Drop`).
pub fn remove_all_pods(endpoint: &str) {
    let endpoint = endpoint.to_string();
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


/// Unmounts every volume (tmpfs) a kubelet left mounted under its pods directory, on drop.
/// Declare it right after the test's temp dir, so it runs after the kubelet is stopped and
/// before the directory is removed.
pub struct UnmountOnDrop(pub PathBuf);

impl Drop for UnmountOnDrop {
    fn drop(&mut self) {
        let pods = self.0.clone();
        let cleanup = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                let _ = rt.block_on(ironkube_kubelet::volumes::unmount_all(&pods));
            }
        });
        let _ = cleanup.join();
    }
}
