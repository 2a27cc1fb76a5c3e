//! ironkube's controller manager: each controller is one module on one reconcile shape
//! (watch -> cache -> queue -> reconcile, from kube-runtime), all of them run by the
//! leader of a `coordination.k8s.io` Lease like upstream's kube-controller-manager.

pub mod controller_ref;
pub mod cronjob;
pub mod daemonset;
pub mod endpoints;
pub mod deployment;
pub mod disruption;
pub mod expectations;
pub mod garbage_collector;
pub mod history;
pub mod informer;
pub mod job;
pub mod leader;
pub mod namespace;
pub mod persistent_volume;
pub mod recorder;
pub mod replicaset;
pub mod resource_quota;
pub mod root_ca;
pub mod runtime;
pub mod service_account;
pub mod simnode;
pub mod statefulset;
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
    /// A list of controllers to enable. '*' enables all on-by-default controllers, 'foo'
    /// enables the controller named 'foo', '-foo' disables the controller named 'foo'.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,
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
pub const CONTROLLERS: &[&str] = &["namespace", "serviceaccount", "root-ca-certificate-publisher", "replicaset", "deployment", "daemonset", "statefulset", "job", "cronjob", "resourcequota", "endpoints", "garbage-collector", "disruption", "ttl-after-finished", "persistentvolume-binder", "pvc-protection", "pv-protection"];

type Start = fn(kube::Client, CancellationToken) -> futures::future::BoxFuture<'static, ()>;

/// How each controller but the root CA publisher (which needs the CA) starts.
const STARTERS: &[(&str, Start)] = &[
    ("namespace", |c, s| Box::pin(namespace::run(c, s))),
    ("serviceaccount", |c, s| Box::pin(service_account::run(c, s))),
    ("replicaset", |c, s| Box::pin(replicaset::run(c, s))),
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
