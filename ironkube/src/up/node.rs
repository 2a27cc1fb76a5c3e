//! The node of `ironkube up`: a private containerd as a supervised child (its config,
//! sockets, images and CNI network under `<data dir>/node`), the node's images imported
//! into it (no registry can be reached: `hack/images/build.sh` builds them), and the kubelet
//! in process, registering this machine as a Node and running its pods, and the static pods
//! of `<data dir>/node/manifests`.
//!
//! Stopping the cluster stops containerd and the kubelet but not the pods' containers
//! (their shims keep them running, as on any node whose kubelet restarts); the next
//! `ironkube up` on the same data dir finds them again.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ironkube_kubelet::cri::containerd::Containerd;
use tokio::process::Command;

use super::component::{Running, Started};

/// How long containerd gets to create its socket.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_GRACE: Duration = Duration::from_secs(10);
/// util-linux's setpriv: gives containerd a parent-death signal, so it never outlives us.
const SETPRIV: &str = "/usr/bin/setpriv";
/// The image archives every node imports, from `hack/images/build.sh`.
pub const NODE_IMAGES: [&str; 2] = ["pause-3.10.tar", "busybox-1.36.tar"];

/// Whether to run a node: `auto` runs one when this process is root and containerd is
/// installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NodeMode {
    Auto,
    True,
    False,
}

/// The node's settings.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub dir: PathBuf,
    pub name: Option<String>,
    pub pod_cidr: String,
    pub bridge: String,
    pub images_dir: Option<PathBuf>,
    pub kubelet_port: Option<u16>,
    /// The cluster CA: the kubelet accepts client certificates it signed (the API server's).
    pub client_ca_file: Option<PathBuf>,
    /// On stop, remove every pod's sandbox and volumes before containerd stops (else their
    /// containers keep running for the next start).
    pub stop_pods: bool,
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// Whether this machine can run a node (root, containerd, runc, the CNI bridge plugin), and
/// if not, why.
pub fn can_run() -> Result<(), String> {
    if !rustix::process::geteuid().is_root() {
        return Err("not running as root".into());
    }
    for tool in ["containerd", "runc", "ctr"] {
        if !on_path(tool) {
            return Err(format!("{tool} is not installed (apt-get install containerd runc)"));
        }
    }
    if !Path::new("/usr/lib/cni/bridge").exists() {
        return Err("the CNI plugins are not installed (apt-get install containernetworking-plugins)".into());
    }
    Ok(())
}

/// The archives to import: the node images, then every other `.tar` in the directory (the
/// conformance images, when `conformance/images.sh` built them there).
fn archives(images_dir: &Path) -> Vec<PathBuf> {
    let mut others: Vec<PathBuf> = std::fs::read_dir(images_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "tar"))
        .filter(|p| !p.file_name().and_then(|n| n.to_str()).is_some_and(|n| NODE_IMAGES.contains(&n)))
        .collect();
    others.sort();
    NODE_IMAGES.iter().map(|n| images_dir.join(n)).chain(others).collect()
}

/// Imports the node images (and any other archive beside them) into containerd's `k8s.io`
/// namespace.
async fn import_images(socket: &Path, images_dir: &Path) -> anyhow::Result<()> {
    for path in archives(images_dir) {
        if !path.exists() {
            tracing::warn!(archive = %path.display(), "node image missing (run hack/images/build.sh pause busybox-1.36); pods using it cannot start");
            continue;
        }
        let out = Command::new("ctr")
            .arg("--address")
            .arg(socket)
            .args(["-n", "k8s.io", "images", "import"])
            .arg(&path)
            .output()
            .await
            .context("running ctr")?;
        anyhow::ensure!(out.status.success(), "ctr images import {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
        tracing::info!(archive = %path.display(), "image imported");
    }
    Ok(())
}

/// Starts containerd; ready yields its CRI endpoint once its socket answers and the node
/// images are imported.
pub fn start_containerd(config: &NodeConfig) -> anyhow::Result<Started<String>> {
    let mut containerd = Containerd::new(&config.dir, &config.pod_cidr);
    containerd.bridge = config.bridge.clone();
    containerd.write_files().with_context(|| format!("writing containerd's config under {}", config.dir.display()))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(config.dir.join("containerd.log"))
        .context("opening containerd.log")?;
    let socket = containerd.socket();
    let _ = std::fs::remove_file(&socket);
    let std_command = containerd.command();
    let mut command = if Path::new(SETPRIV).is_file() {
        let mut c = Command::new(SETPRIV);
        c.args(["--pdeathsig", "TERM", "--"]).arg(std_command.get_program()).args(std_command.get_args());
        c
    } else {
        Command::from(std_command)
    };
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("starting containerd")?;
    tracing::info!(dir = %config.dir.display(), pod_cidr = %config.pod_cidr, "starting containerd");
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<anyhow::Result<String>>();
    let endpoint = containerd.endpoint();
    let images_dir = config.images_dir.clone();
    let stop_pods = config.stop_pods.then(|| config.dir.join("kubelet").join("pods"));
    // Removing every pod first takes longer than stopping containerd alone.
    let grace = if config.stop_pods { STOP_GRACE * 12 } else { STOP_GRACE };
    let running = Running::spawn("containerd", grace, move |stop| async move {
        let started = Instant::now();
        let mut ready_tx = Some(ready_tx);
        loop {
            if ready_tx.is_some() && socket.exists() {
                let result = match &images_dir {
                    Some(dir) => import_images(&socket, dir).await.map(|()| endpoint.clone()),
                    None => Ok(endpoint.clone()),
                };
                if let Some(tx) = ready_tx.take() {
                    let _ = tx.send(result);
                }
            }
            if let Some(tx) = ready_tx.take_if(|_| started.elapsed() > READY_TIMEOUT) {
                let _ = tx.send(Err(anyhow::anyhow!("containerd did not create {} in {READY_TIMEOUT:?}", socket.display())));
            }
            tokio::select! {
                _ = stop.cancelled() => {
                    if let Some(pods_dir) = &stop_pods {
                        remove_all_pods(&endpoint, pods_dir).await;
                    }
                    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()).and_then(rustix::process::Pid::from_raw) {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
                    }
                    let _ = tokio::time::timeout(STOP_GRACE, child.wait()).await;
                    return Ok(());
                }
                status = child.wait() => {
                    let status = status.context("waiting for containerd")?;
                    anyhow::bail!("containerd exited: {status}");
                }
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    });
    let ready = Box::pin(async move { ready_rx.await.map_err(|_| anyhow::anyhow!("containerd stopped before it was ready"))? });
    Ok(Started { running, ready })
}

/// Stops and removes every sandbox (so every container) and unmounts the pods' volumes.
async fn remove_all_pods(endpoint: &str, pods_dir: &Path) {
    use ironkube_kubelet::cri::Runtime as _;
    tracing::info!("removing every pod of the node");
    match ironkube_kubelet::cri::remote::RemoteRuntime::connect(endpoint).await {
        Ok(cri) => {
            for sandbox in cri.list_pod_sandboxes(None).await.unwrap_or_default() {
                let _ = cri.stop_pod_sandbox(&sandbox.id).await;
                if let Err(e) = cri.remove_pod_sandbox(&sandbox.id).await {
                    tracing::warn!(sandbox = %sandbox.id, error = %e, "removing a sandbox failed");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "connecting to containerd to remove the pods failed"),
    }
    if let Err(e) = ironkube_kubelet::volumes::unmount_all(pods_dir).await {
        tracing::warn!(error = %e, "unmounting the pods' volumes failed");
    }
}

/// Starts the kubelet in process; ready once its Node is registered.
pub fn start_kubelet(config: &NodeConfig, kubeconfig: &Path, endpoint: String) -> Started<()> {
    let mut args = vec![
        "kubelet".to_string(),
        format!("--kubeconfig={}", kubeconfig.display()),
        format!("--container-runtime-endpoint={endpoint}"),
        format!("--pod-cidr={}", config.pod_cidr),
        format!("--root-dir={}", config.dir.join("kubelet").display()),
        format!("--pod-manifest-path={}", config.dir.join("manifests").display()),
    ];
    if let Err(e) = std::fs::create_dir_all(config.dir.join("manifests")) {
        tracing::warn!(error = %e, "creating the static pod manifest directory failed");
    }
    if let Some(name) = &config.name {
        args.push(format!("--hostname-override={name}"));
    }
    if let Some(port) = config.kubelet_port {
        args.push(format!("--port={port}"));
    }
    if let Some(ca) = &config.client_ca_file {
        args.push(format!("--client-ca-file={}", ca.display()));
        args.push("--anonymous-auth=false".to_string());
    }
    let (registered_tx, registered_rx) = tokio::sync::oneshot::channel();
    let running = Running::spawn("kubelet", STOP_GRACE, move |stop| async move {
        let options = <KubeletCli as clap::Parser>::try_parse_from(args).context("kubelet options")?.options;
        ironkube_kubelet::agent::run(options, stop, move || {
            let _ = registered_tx.send(());
        })
        .await?;
        Ok(())
    });
    let ready = Box::pin(async move { registered_rx.await.map_err(|_| anyhow::anyhow!("the kubelet stopped before it registered its node")) });
    Started { running, ready }
}

/// The kubelet's command line, parsed as `ironkube kubelet` parses it.
#[derive(clap::Parser)]
struct KubeletCli {
    #[command(flatten)]
    options: ironkube_kubelet::agent::Options,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_images_first_then_the_other_archives_in_order() {
        let dir = tempfile::tempdir().expect("dir");
        for name in ["nginx-1.15.tar", "busybox-1.36.tar", "agnhost-2.53.tar", "notes.txt"] {
            std::fs::write(dir.path().join(name), b"").expect("write");
        }
        let names: Vec<String> = archives(dir.path()).iter().filter_map(|p| p.file_name()?.to_str().map(String::from)).collect();
        assert_eq!(names, ["pause-3.10.tar", "busybox-1.36.tar", "agnhost-2.53.tar", "nginx-1.15.tar"]);
    }
}
