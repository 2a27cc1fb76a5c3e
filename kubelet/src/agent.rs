//! The kubelet process: flags (upstream's names), the runtime connection, and the node's
//! registration, status reports and Lease heartbeats. Pod workers come next.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::cri::Runtime as _;
use crate::cri::api::VersionResponse;
use crate::cri::remote::RemoteRuntime;

/// The field manager the kubelet writes with.
const MANAGER: &str = "kubelet";

/// Flags of `ironkube-kubelet` (and `ironkube kubelet`), named as upstream's kubelet names them.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Path to a kubeconfig file for the API server.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The node's name (default: the machine's hostname).
    #[arg(long)]
    pub hostname_override: Option<String>,
    /// The node's InternalIP (default: the address of the interface with the default route).
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    /// The CRI endpoint.
    #[arg(long, default_value = "unix:///run/containerd/containerd.sock")]
    pub container_runtime_endpoint: String,
    /// The pod CIDR recorded in the Node's spec (standalone mode, as upstream's --pod-cidr).
    #[arg(long)]
    pub pod_cidr: Option<String>,
    /// The kubelet's state directory (sized for ephemeral-storage capacity).
    #[arg(long, default_value = "/var/lib/kubelet")]
    pub root_dir: PathBuf,
    /// The cluster's DNS domain: pods' search domains and FQDNs end with it.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// The cluster DNS servers pods with dnsPolicy ClusterFirst use (none: the node's).
    #[arg(long, value_delimiter = ',')]
    pub cluster_dns: Vec<String>,
    /// The resolver configuration pods with dnsPolicy Default inherit.
    #[arg(long, default_value = "/etc/resolv.conf")]
    pub resolv_conf: PathBuf,
    /// Where container logs go, one directory per pod (upstream's podLogsDir setting).
    #[arg(long, default_value = crate::kuberuntime::sandbox::POD_LOGS_DIR)]
    pub pod_logs_dir: PathBuf,
    /// A directory of static pod manifests, run without the API server and mirrored to it.
    #[arg(long)]
    pub pod_manifest_path: Option<PathBuf>,
    /// How often the static pod manifests are read again.
    #[arg(long, default_value = "20s", value_parser = ironkube_machinery::go_duration::parse)]
    pub file_check_frequency: Duration,
    /// leaseDurationSeconds of the node Lease.
    #[arg(long, default_value_t = 40)]
    pub node_lease_duration_seconds: i32,
    /// How often the node reports its status when nothing changed.
    #[arg(long, default_value = "5m", value_parser = ironkube_machinery::go_duration::parse)]
    pub node_status_report_frequency: Duration,
    #[command(flatten)]
    pub server: crate::server::ServerOptions,
}

/// Why the kubelet stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("building the API client: {0}")]
    Client(String),
    #[error(transparent)]
    Runtime(#[from] crate::cri::Error),
    #[error("the container runtime at {0} did not answer within {1:?}")]
    RuntimeTimeout(String, Duration),
    #[error("cannot work out the node's IP (pass --node-ip): {0}")]
    NodeIp(std::io::Error),
    #[error("registering node {node}: {source}")]
    Register {
        node: String,
        #[source]
        source: kube::Error,
    },
}

/// How often the Lease is renewed: a quarter of its duration, as upstream.
fn renew_interval(duration_seconds: i32) -> Duration {
    Duration::from_secs_f64(f64::from(duration_seconds.max(4)) / 4.0)
}

/// The source address of the default route (no packet is sent).
fn default_route_ip() -> std::io::Result<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0")?;
    socket.connect("192.0.2.1:9")?;
    Ok(socket.local_addr()?.ip())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_lowercase()).unwrap_or_else(|_| "localhost".into())
}

/// The API client of a kubeconfig file (or of the environment, as kubectl finds it);
/// errors as text.
pub async fn api_client(kubeconfig: Option<&std::path::Path>) -> Result<kube::Client, String> {
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|e| e.to_string())?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.map_err(|e| e.to_string())?
        }
        None => kube::Config::infer().await.map_err(|e| e.to_string())?,
    };
    kube::Client::try_from(config).map_err(|e| e.to_string())
}

/// Connects to the runtime, retrying while its socket comes up; returns it with its version.
async fn connect_runtime(endpoint: &str, stop: &CancellationToken) -> Result<(RemoteRuntime, VersionResponse), Error> {
    const PATIENCE: Duration = Duration::from_secs(60);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match RemoteRuntime::connect(endpoint).await {
            Ok(rt) => match rt.version().await {
                Ok(version) => return Ok((rt, version)),
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e.into()),
                Err(_) => {}
            },
            Err(_) if tokio::time::Instant::now() < deadline => {}
            Err(_) => return Err(Error::RuntimeTimeout(endpoint.to_string(), PATIENCE)),
        }
        tokio::select! {
            _ = stop.cancelled() => return Err(Error::RuntimeTimeout(endpoint.to_string(), PATIENCE)),
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

/// What the pod workers share: the node's facts, the runtime, the API client.
fn pod_workers(
    opts: &Options,
    facts: &ironkube_machinery::node_status::NodeFacts,
    client: kube::Client,
    runtime: RemoteRuntime,
    runtime_name: &str,
) -> (std::sync::Arc<crate::pods::Shared<RemoteRuntime>>, crate::pods::prober::ProbeChannels) {
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    let memory = facts.capacity.get("memory").and_then(|m| ironkube_machinery::validation::quantity::Quantity::parse(m).ok());
    let config = crate::pods::Config {
        node_name: facts.name.clone(),
        node_ip: facts.internal_ip.clone(),
        root_dir: opts.root_dir.clone(),
        pod_logs_dir: opts.pod_logs_dir.clone(),
        cluster_domain: opts.cluster_domain.clone(),
        runtime_name: runtime_name.to_string(),
        memory_capacity: memory.map(|m| i64::try_from(m.value()).unwrap_or(i64::MAX)).unwrap_or(0),
        node_allocatable: facts.allocatable.iter().map(|(k, v)| (k.clone(), Quantity(v.clone()))).collect(),
        pod_manifest_path: opts.pod_manifest_path.clone(),
        cluster_dns: opts.cluster_dns.clone(),
        host_resolv: crate::kuberuntime::dns::ResolvConf::parse(&std::fs::read_to_string(&opts.resolv_conf).unwrap_or_default()),
        file_check_frequency: opts.file_check_frequency,
    };
    let runtime = std::sync::Arc::new(runtime);
    let (probes, channels) = crate::pods::prober::Prober::new(runtime.clone());
    let shared = std::sync::Arc::new(crate::pods::Shared {
        recorder: crate::events::Recorder::new(client.clone(), &facts.name),
        sources: crate::volumes::ApiSources::new(client.clone()),
        client,
        runtime,
        puller: Default::default(),
        restarts: Default::default(),
        probes,
        config,
    });
    (shared, channels)
}

/// Runs the kubelet until `stop`; `registered` is called once the Node exists.
pub async fn run(opts: Options, stop: CancellationToken, registered: impl FnOnce()) -> Result<(), Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = api_client(opts.kubeconfig.as_deref()).await.map_err(Error::Client)?;
    let (runtime, version) = connect_runtime(&opts.container_runtime_endpoint, &stop).await?;
    let runtime_version = format!("{}://{}", version.runtime_name, version.runtime_version);
    let name = opts.hostname_override.clone().unwrap_or_else(hostname);
    let ip = match opts.node_ip {
        Some(ip) => ip,
        None => default_route_ip().map_err(Error::NodeIp)?,
    };
    let facts = ironkube_machinery::node_status::NodeFacts {
        kubelet_port: opts.server.port,
        ..crate::node::machine_facts(&name, &ip.to_string(), opts.pod_cidr.as_deref(), &opts.root_dir, &runtime_version)
    };
    let register_error = |source| Error::Register { node: name.clone(), source };
    let uid = crate::node::register(&client, &facts, MANAGER).await.map_err(register_error)?;
    crate::node::renew_lease(&client, &name, &uid, opts.node_lease_duration_seconds, MANAGER).await.map_err(register_error)?;
    info!(node = %name, ip = %ip, runtime = %runtime_version, "node registered");
    registered();
    let _server = crate::server::spawn(&opts, client.clone(), runtime.clone(), &name, ip, stop.clone());
    let (pods, probes) = pod_workers(&opts, &facts, client.clone(), runtime, &version.runtime_name);
    let workers = tokio::spawn(crate::pods::run(pods, probes, stop.clone()));

    let mut lease_tick = tokio::time::interval(renew_interval(opts.node_lease_duration_seconds));
    let mut status_tick = tokio::time::interval(opts.node_status_report_frequency);
    for tick in [&mut lease_tick, &mut status_tick] {
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
    }
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = lease_tick.tick() => {
                if let Err(e) = crate::node::renew_lease(&client, &name, &uid, opts.node_lease_duration_seconds, MANAGER).await {
                    warn!(node = %name, error = %e, "renewing the node lease failed");
                }
            }
            _ = status_tick.tick() => {
                if let Err(e) = crate::node::report_status(&client, &facts, MANAGER).await {
                    warn!(node = %name, error = %e, "reporting the node status failed");
                }
            }
        }
    }
    let _ = workers.await;
    info!(node = %name, "kubelet stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_renewed_four_times_per_duration() {
        assert_eq!(renew_interval(40), Duration::from_secs(10));
    }
}
