//! `ironkube up`: a whole cluster on this machine, under one data dir.
//!
//! Each component is a module with a `start` that spawns it and says when it is ready;
//! [`bring_up`] starts them in order, one line each, and they stop in reverse order. The
//! data dir holds:
//!
//! ```text
//! etcd/               etcd's data (unless --etcd-servers)
//! etcd.log            etcd's output
//! etcd-ports.json     the loopback ports etcd listens on, reused on restart
//! pki/                ca.crt/.key, apiserver.crt/.key, admin.crt/.key,
//!                     apiserver-kubelet-client.crt/.key
//! admin.kubeconfig    kubectl's way in (cluster "ironkube", user "kubernetes-admin")
//! node/               the node's containerd (config, sockets, images, CNI) and kubelet/
//! ```

mod apiserver;
mod component;
mod controller_manager;
mod etcd;
mod node;
mod pki;
mod scheduler;
mod simnodes;

use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use component::{Interrupted, Stack, exit_error};

/// Flags of `ironkube up`.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Where the cluster keeps its state (etcd data, certificates, kubeconfig, logs).
    #[arg(long, default_value = ".ironkube")]
    pub data_dir: PathBuf,
    /// The API server's HTTPS port.
    #[arg(long, default_value_t = 6443)]
    pub secure_port: u16,
    /// The address the API server listens on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// The address the API server advertises to the cluster (default: chosen by the API server).
    #[arg(long)]
    pub advertise_address: Option<IpAddr>,
    /// The range ClusterIPs come from; its first address names the `kubernetes` Service.
    #[arg(long, default_value = "10.96.0.0/12")]
    pub service_cluster_ip_range: String,
    /// Use these etcd servers (comma separated) instead of starting etcd.
    #[arg(long, value_delimiter = ',')]
    pub etcd_servers: Vec<String>,
    /// CA file to verify the etcd servers with.
    #[arg(long)]
    pub etcd_cafile: Option<PathBuf>,
    /// Client certificate for the etcd servers.
    #[arg(long)]
    pub etcd_certfile: Option<PathBuf>,
    /// Client key for the etcd servers.
    #[arg(long)]
    pub etcd_keyfile: Option<PathBuf>,
    /// The etcd binary to run (default: `etcd` on PATH, then /usr/bin/etcd).
    #[arg(long)]
    pub etcd_binary: Option<PathBuf>,
    /// Simulate this many nodes (`sim-node-0`, ...): registered, heartbeating, and
    /// reporting the pods bound to them as Running without containers.
    #[arg(long, default_value_t = 0)]
    pub simulated_nodes: usize,
    /// Run a real node on this machine (a private containerd and the kubelet): `auto` does
    /// when running as root with containerd, runc and the CNI plugins installed.
    #[arg(long, value_enum, default_value = "auto")]
    pub node: node::NodeMode,
    /// The node's name (default: the machine's hostname).
    #[arg(long)]
    pub node_name: Option<String>,
    /// The node's pod CIDR (the CNI bridge's subnet).
    #[arg(long, default_value = "10.244.0.0/24")]
    pub pod_cidr: String,
    /// The Linux bridge the node's pods attach to.
    #[arg(long, default_value = "cni0")]
    pub cni_bridge: String,
    /// Where the node images' OCI archives are (`hack/images/build.sh` writes them to
    /// conformance/_out/images).
    #[arg(long)]
    pub images_dir: Option<PathBuf>,
    /// When the cluster stops, stop and remove the node's pods too (by default their
    /// containers keep running, and the next start finds them).
    #[arg(long)]
    pub stop_pods: bool,
    /// The kubelet's HTTPS port.
    #[arg(long)]
    pub kubelet_port: Option<u16>,
    /// The controllers the in-process controller manager runs, as kube-controller-manager's
    /// `--controllers` ('*' all, 'foo' one, '-foo' all but it).
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,
    /// More kube-apiserver flags, after `--`.
    #[arg(last = true)]
    pub apiserver_args: Vec<String>,
}

/// The files under the data dir.
#[derive(Debug, Clone)]
struct Layout {
    root: PathBuf,
}

impl Layout {
    fn create(data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating the data dir {}", data_dir.display()))?;
        let root = data_dir
            .canonicalize()
            .with_context(|| format!("resolving {}", data_dir.display()))?;
        Ok(Layout { root })
    }

    fn etcd(&self) -> etcd::EtcdConfig {
        etcd::EtcdConfig {
            binary: None,
            data_dir: self.root.join("etcd"),
            log_file: self.root.join("etcd.log"),
            ports_file: self.root.join("etcd-ports.json"),
        }
    }

    fn pki(&self) -> PathBuf {
        self.root.join("pki")
    }

    fn node(&self) -> PathBuf {
        self.root.join("node")
    }

    fn admin_kubeconfig(&self) -> PathBuf {
        self.root.join("admin.kubeconfig")
    }
}

/// Brings the cluster up, prints the ready line, runs until SIGINT/SIGTERM or until a
/// component fails, then stops everything.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let shutdown = crate::shutdown::on_signals();
    let layout = Layout::create(&args.data_dir)?;
    tracing::info!(data_dir = %layout.root.display(), "bringing ironkube up");
    let mut stack = Stack::default();
    let outcome = match bring_up(&args, &layout, &mut stack, &shutdown).await {
        Ok(kubeconfig) => {
            let mut stdout = std::io::stdout().lock();
            writeln!(
                stdout,
                "ironkube is ready; export KUBECONFIG={}",
                kubeconfig.display()
            )
            .and_then(|()| stdout.flush())
            .context("writing to stdout")?;
            drop(stdout);
            tokio::select! {
                _ = shutdown.cancelled() => Ok(()),
                (name, result) = stack.first_exit() => Err(exit_error(name, result)),
            }
        }
        Err(e) if e.is::<Interrupted>() => {
            tracing::info!("interrupted while starting");
            Ok(())
        }
        Err(e) => Err(e),
    };
    stack.stop_all().await;
    if outcome.is_ok() {
        tracing::info!("ironkube stopped");
    }
    outcome
}

/// Starts every component in order; returns the admin kubeconfig's path.
async fn bring_up(
    args: &UpArgs,
    layout: &Layout,
    stack: &mut Stack,
    shutdown: &CancellationToken,
) -> anyhow::Result<PathBuf> {
    let etcd_servers = if args.etcd_servers.is_empty() {
        let mut config = layout.etcd();
        config.binary = args.etcd_binary.clone();
        stack.start(etcd::start(&config)?, shutdown).await?
    } else {
        tracing::info!(servers = %args.etcd_servers.join(","), "using external etcd");
        args.etcd_servers.clone()
    };

    tracing::info!(dir = %layout.pki().display(), "loading or creating certificates");
    let certs = pki::ensure(
        &layout.pki(),
        args.bind_address,
        args.advertise_address,
        &args.service_cluster_ip_range,
    )?;

    let apiserver = apiserver::ApiserverConfig {
        etcd_servers,
        etcd_cafile: args.etcd_cafile.clone(),
        etcd_certfile: args.etcd_certfile.clone(),
        etcd_keyfile: args.etcd_keyfile.clone(),
        bind_address: args.bind_address,
        secure_port: args.secure_port,
        advertise_address: args.advertise_address,
        service_cluster_ip_range: args.service_cluster_ip_range.clone(),
        tls_cert_file: certs.apiserver.cert_path.clone(),
        tls_private_key_file: certs.apiserver.key_path.clone(),
        client_ca_file: certs.ca.cert_path.clone(),
        cert_dir: layout.pki(),
        kubelet_client_certificate: Some(certs.apiserver_kubelet_client.cert_path.clone()),
        kubelet_client_key: Some(certs.apiserver_kubelet_client.key_path.clone()),
        extra_args: args.apiserver_args.clone(),
    };
    let bound = stack.start(apiserver::start(&apiserver)?, shutdown).await?;
    let kubeconfig = pki::write_admin_kubeconfig(&layout.admin_kubeconfig(), bound, &certs)?;

    // Components that are clients of the API server start here, one line each.
    stack.start(controller_manager::start(&kubeconfig, &certs.ca, &args.controllers), shutdown).await?;
    stack.start(scheduler::start(&kubeconfig), shutdown).await?;
    if args.simulated_nodes > 0 {
        stack.start(simnodes::start(&kubeconfig, args.simulated_nodes), shutdown).await?;
    }
    let run_node = match (args.node, node::can_run()) {
        (node::NodeMode::False, _) => false,
        (node::NodeMode::True, Err(why)) => anyhow::bail!("--node=true, but this machine cannot run a node: {why}"),
        (node::NodeMode::Auto, Err(why)) => {
            tracing::info!(reason = %why, "not running a node");
            false
        }
        (_, Ok(())) => true,
    };
    if run_node {
        let config = node::NodeConfig {
            dir: layout.node(),
            name: args.node_name.clone(),
            pod_cidr: args.pod_cidr.clone(),
            bridge: args.cni_bridge.clone(),
            images_dir: args.images_dir.clone(),
            kubelet_port: args.kubelet_port,
            client_ca_file: Some(certs.ca.cert_path.clone()),
            stop_pods: args.stop_pods,
        };
        let endpoint = stack.start(node::start_containerd(&config)?, shutdown).await?;
        stack.start(node::start_kubelet(&config, &kubeconfig, endpoint), shutdown).await?;
    }

    Ok(kubeconfig)
}
