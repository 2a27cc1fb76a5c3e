//! ironkube's controller manager: each controller is one module on one reconcile shape
//! (watch -> cache -> queue -> reconcile, from kube-runtime), all of them run by the
//! leader of a `coordination.k8s.io` Lease like upstream's kube-controller-manager.

pub mod certificates;
pub mod controller_ref;
pub mod cronjob;
pub mod daemonset;
pub mod endpoints;
pub mod deployment;
pub mod disruption;
pub mod expectations;
pub mod garbage_collector;
pub mod history;
pub mod horizontal_pod_autoscaler;
pub mod informer;
pub mod job;
pub mod leader;
pub mod namespace;
pub mod node_lifecycle;
pub mod persistent_volume;
pub mod recorder;
pub mod replicaset;
pub mod replication;
pub mod resource_quota;
pub mod root_ca;
pub mod runtime;
pub mod service_account;
pub mod simnode;
pub mod statefulset;
pub mod taint_eviction;
pub mod ttl_after_finished;

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::info;

/// Flags, with upstream kube-controller-manager's names.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Path to kubeconfig file with authorization and master location information.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Start a leader election client and gain leadership before executing the main loop.
    #[arg(long = "leader-elect", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub leader_elect: bool,
    /// The duration that non-leader candidates will wait after observing a leadership renewal
    /// until attempting to acquire leadership.
    #[arg(long = "leader-elect-lease-duration", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// The interval between attempts by the acting master to renew a leadership slot.
    #[arg(long = "leader-elect-renew-deadline", default_value = "10s", value_parser = parse_duration)]
    pub renew_deadline: Duration,
    /// The duration the clients should wait between attempting acquisition and renewal.
    #[arg(long = "leader-elect-retry-period", default_value = "2s", value_parser = parse_duration)]
    pub retry_period: Duration,
    /// The namespace of the leader election Lease.
    #[arg(long = "leader-elect-resource-namespace", default_value = "kube-system")]
    pub lease_namespace: String,
    /// The name of the leader election Lease.
    #[arg(long = "leader-elect-resource-name", default_value = "kube-controller-manager")]
    pub lease_name: String,
    /// If set, this root certificate authority will be included in service account's token
    /// secret and the kube-root-ca.crt ConfigMap.
    #[arg(long = "root-ca-file")]
    pub root_ca_file: Option<PathBuf>,
    /// Filename containing a PEM-encoded X509 CA certificate used to issue cluster-scoped
    /// certificates.
    #[arg(long = "cluster-signing-cert-file")]
    pub cluster_signing_cert_file: Option<PathBuf>,
    /// Filename containing a PEM-encoded RSA or ECDSA private key used to sign cluster-scoped
    /// certificates.
    #[arg(long = "cluster-signing-key-file")]
    pub cluster_signing_key_file: Option<PathBuf>,
    /// The max length of duration signed certificates will be given.
    #[arg(long = "cluster-signing-duration", default_value = "8760h", value_parser = parse_duration)]
    pub cluster_signing_duration: Duration,
    /// A list of controllers to enable. '*' enables all on-by-default controllers, 'foo'
    /// enables the controller named 'foo', '-foo' disables the controller named 'foo'.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,
    /// The period for syncing NodeStatus in cloud-node-lifecycle-controller.
    #[arg(long = "node-monitor-period", default_value = "5s", value_parser = parse_duration)]
    pub node_monitor_period: Duration,
    /// Amount of time which we allow running Node to be unresponsive before marking it
    /// unhealthy.
    #[arg(long = "node-monitor-grace-period", default_value = "50s", value_parser = parse_duration)]
    pub node_monitor_grace_period: Duration,
    /// Amount of time which we allow starting Node to be unresponsive before marking it
    /// unhealthy.
    #[arg(long = "node-startup-grace-period", default_value = "1m0s", value_parser = parse_duration)]
    pub node_startup_grace_period: Duration,
    /// Number of nodes per second on which pods are deleted in case of node failure when a
    /// zone is healthy.
    #[arg(long = "node-eviction-rate", default_value_t = 0.1)]
    pub node_eviction_rate: f32,
    /// Number of nodes per second on which pods are deleted in case of node failure when a
    /// zone is unhealthy.
    #[arg(long = "secondary-node-eviction-rate", default_value_t = 0.01)]
    pub secondary_node_eviction_rate: f32,
    /// Number of nodes from which node-lifecycle-controller treats the cluster as large for
    /// the eviction logic purposes.
    #[arg(long = "large-cluster-size-threshold", default_value_t = 50)]
    pub large_cluster_size_threshold: i32,
    /// Fraction of Nodes in a zone which needs to be not Ready (minimum 3) for zone to be
    /// treated as unhealthy.
    #[arg(long = "unhealthy-zone-threshold", default_value_t = 0.55)]
    pub unhealthy_zone_threshold: f32,
}

impl Options {
    /// The node lifecycle controller's part of the flags.
    pub fn node_lifecycle(&self) -> node_lifecycle::Config {
        node_lifecycle::Config {
            monitor_period: self.node_monitor_period,
            monitor_grace_period: self.node_monitor_grace_period,
            startup_grace_period: self.node_startup_grace_period,
            eviction_rate: self.node_eviction_rate,
            secondary_eviction_rate: self.secondary_node_eviction_rate,
            large_cluster_threshold: self.large_cluster_size_threshold,
            unhealthy_zone_threshold: self.unhealthy_zone_threshold,
        }
    }
}

/// Go-style durations (`15s`, `2m`, `1h30m`), as the controller manager's flags take them.
pub use ironkube_machinery::go_duration::parse as parse_duration;

/// Why the controller manager stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("building the API client: {0}")]
    Client(String),
    #[error("reading --root-ca-file {path}: {source}")]
    RootCa { path: PathBuf, #[source] source: std::io::Error },
    #[error("leaderelection lost")]
    LeadershipLost,
    #[error("leader election: {0}")]
    Election(#[from] kube::Error),
}

/// The controllers that exist (all on by default).
pub const CONTROLLERS: &[&str] = &["namespace", "serviceaccount", "root-ca-certificate-publisher", "replicaset", "replicationcontroller", "deployment", "daemonset", "statefulset", "job", "cronjob", "resourcequota", "endpoints", "garbage-collector", "disruption", "ttl-after-finished", "taint-eviction-controller", "node-lifecycle-controller", "horizontalpodautoscaling", "csrapproving", "csrsigning", "csrcleaner", "persistentvolume-binder", "pvc-protection", "pv-protection"];

type Start = fn(kube::Client, CancellationToken) -> futures::future::BoxFuture<'static, ()>;

/// How each controller but the root CA publisher and the CSR signer (which need the CA) and
/// the node lifecycle controller (which needs its flags) starts.
const STARTERS: &[(&str, Start)] = &[
    ("namespace", |c, s| Box::pin(namespace::run(c, s))),
    ("serviceaccount", |c, s| Box::pin(service_account::run(c, s))),
    ("replicaset", |c, s| Box::pin(replicaset::run(c, s))),
    ("replicationcontroller", |c, s| Box::pin(replication::run(c, s))),
    ("garbage-collector", |c, s| Box::pin(garbage_collector::run(c, s))),
    ("endpoints", |c, s| Box::pin(endpoints::run(c, s))),
    ("resourcequota", |c, s| Box::pin(resource_quota::run(c, s))),
    ("deployment", |c, s| Box::pin(deployment::controller::run(c, s))),
    ("daemonset", |c, s| Box::pin(daemonset::run(c, s))),
    ("statefulset", |c, s| Box::pin(statefulset::run(c, s))),
    ("job", |c, s| Box::pin(job::run(c, s))),
    ("cronjob", |c, s| Box::pin(cronjob::run(c, s))),
    ("disruption", |c, s| Box::pin(disruption::run(c, s))),
    ("ttl-after-finished", |c, s| Box::pin(ttl_after_finished::run(c, s))),
    ("taint-eviction-controller", |c, s| Box::pin(taint_eviction::run(c, s))),
    ("horizontalpodautoscaling", |c, s| Box::pin(horizontal_pod_autoscaler::run(c, s))),
    ("csrapproving", |c, s| Box::pin(certificates::approver::run(c, s))),
    ("csrcleaner", |c, s| Box::pin(certificates::cleaner::run(c, s))),
    ("persistentvolume-binder", |c, s| Box::pin(persistent_volume::run_binder(c, s))),
    ("pvc-protection", |c, s| Box::pin(persistent_volume::run_pvc_protection(c, s))),
    ("pv-protection", |c, s| Box::pin(persistent_volume::run_pv_protection(c, s))),
];

fn enabled(list: &[String], name: &str) -> bool {
    let mut on = false;
    for item in list {
        match item.as_str() {
            "*" => on = true,
            n if n == name => on = true,
            n if n.strip_prefix('-') == Some(name) => return false,
            _ => {}
        }
    }
    on
}

async fn client(opts: &Options) -> Result<kube::Client, Error> {
    let config = match &opts.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|e| Error::Client(e.to_string()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.map_err(|e| Error::Client(e.to_string()))?
        }
        None => kube::Config::infer().await.map_err(|e| Error::Client(e.to_string()))?,
    };
    let mut config = config;
    // Writes are recorded in managedFields under the User-Agent's first word, as upstream's
    // are under "kube-controller-manager".
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(concat!("kube-controller-manager/v1.33.13 ironkube/", env!("CARGO_PKG_VERSION"))),
    ));
    kube::Client::try_from(config).map_err(|e| Error::Client(e.to_string()))
}

/// Runs the controller manager until `shutdown` (Ok) or until leadership is lost (Err).
pub async fn run(opts: Options, shutdown: CancellationToken) -> Result<(), Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = client(&opts).await?;
    let root_ca = match &opts.root_ca_file {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|source| Error::RootCa { path: path.clone(), source })?),
        None => None,
    };
    let leadership = if opts.leader_elect {
        let elector = leader::Elector::new(client.clone(), leader::Config {
            namespace: opts.lease_namespace.clone(),
            name: opts.lease_name.clone(),
            lease_duration: opts.lease_duration,
            renew_deadline: opts.renew_deadline,
            retry_period: opts.retry_period,
        });
        match elector.acquire(&shutdown).await? {
            Some(lost) => Some(lost),
            None => return Ok(()),
        }
    } else {
        None
    };
    info!(controllers = ?opts.controllers, "starting controllers");
    let mut tasks = tokio::task::JoinSet::new();
    let stop = shutdown.child_token();
    for (name, start) in STARTERS {
        if enabled(&opts.controllers, name) {
            tasks.spawn(start(client.clone(), stop.clone()));
        }
    }
    if enabled(&opts.controllers, "root-ca-certificate-publisher") {
        match root_ca {
            Some(ca) => {
                tasks.spawn(root_ca::run(client.clone(), ca, stop.clone()));
            }
            None => tracing::warn!("no --root-ca-file: not publishing kube-root-ca.crt"),
        }
    }
    if enabled(&opts.controllers, node_lifecycle::NAME) {
        tasks.spawn(node_lifecycle::run(client.clone(), opts.node_lifecycle(), stop.clone()));
    }
    if enabled(&opts.controllers, certificates::signer::NAME) {
        match (&opts.cluster_signing_cert_file, &opts.cluster_signing_key_file) {
            (Some(cert), Some(key)) => match certificates::signer::Authority::load(cert, key, opts.cluster_signing_duration) {
                Ok(authority) => {
                    tasks.spawn(certificates::signer::run(client.clone(), authority, stop.clone()));
                }
                Err(e) => tracing::warn!(error = %e, "not signing certificate signing requests"),
            },
            _ => tracing::info!("skipping the CSR signer: no --cluster-signing-cert-file/--cluster-signing-key-file"),
        }
    }
    let lost = async {
        match leadership {
            Some(lost) => lost.cancelled().await,
            None => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        _ = shutdown.cancelled() => Ok(()),
        _ = lost => Err(Error::LeadershipLost),
    };
    stop.cancel();
    while tasks.join_next().await.is_some() {}
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_lists_like_upstream() {
        let all = vec!["*".to_string()];
        assert!(enabled(&all, "namespace"));
        let some = vec!["*".to_string(), "-namespace".to_string()];
        assert!(!enabled(&some, "namespace"));
        assert!(enabled(&some, "serviceaccount"));
        assert!(!enabled(&["serviceaccount".to_string()], "namespace"));
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
    }
}
