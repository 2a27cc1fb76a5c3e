//! ironkube's scheduler: kube-scheduler's framework in Rust, talking to the API server only
//! through `kube`.
//!
//! - [`framework`]: `Status` codes, the cycle state, one trait per extension point, the
//!   node/pod snapshot types and the runtime that runs a profile's plugins in order;
//! - [`plugins`]: one file per plugin of upstream's default profile, and the registry;
//! - [`queue`]: active/backoff/unschedulable queues with queueing hints;
//! - [`cache`]: nodes and assigned (or assumed) pods, and the per-cycle snapshot;
//! - [`schedule_one`]: one attempt (filter, score, select, assume, bind, or report why not);
//! - [`informers`]: list/watch feeding the cache and the queue;
//! - [`config`]: `KubeSchedulerConfiguration` profiles and weights.

pub mod cache;
pub mod config;
pub mod events;
pub mod framework;
pub mod informers;
pub mod plugins;
pub mod queue;
pub mod schedule_one;
#[cfg(test)]
mod placement_tests;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::cache::Cache;
use crate::config::SchedulerConfig;
use crate::framework::interface::{Handle, PodNominator};
use crate::framework::runtime::Framework;
use crate::informers::{InformerListers, ObjectMap, run_informer};
use crate::queue::{Nominator, SchedulingQueue};
use crate::schedule_one::Scheduler;

pub use ironkube_controllers::parse_duration;

/// Flags, with upstream kube-scheduler's names. Leader-election flags override the file.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// The path to the configuration file (KubeSchedulerConfiguration, kubescheduler.config.k8s.io/v1).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Path to kubeconfig file with authorization and master location information.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Start a leader election client and gain leadership before executing the main loop.
    #[arg(long = "leader-elect", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub leader_elect: Option<bool>,
    /// The duration that non-leader candidates will wait after observing a leadership renewal
    /// until attempting to acquire leadership.
    #[arg(long = "leader-elect-lease-duration", value_parser = parse_duration)]
    pub lease_duration: Option<Duration>,
    /// The interval between attempts by the acting master to renew a leadership slot.
    #[arg(long = "leader-elect-renew-deadline", value_parser = parse_duration)]
    pub renew_deadline: Option<Duration>,
    /// The duration the clients should wait between attempting acquisition and renewal.
    #[arg(long = "leader-elect-retry-period", value_parser = parse_duration)]
    pub retry_period: Option<Duration>,
    /// The type of resource object that is used for locking during leader election (only `leases`).
    #[arg(long = "leader-elect-resource-lock")]
    pub resource_lock: Option<String>,
    /// The namespace of the leader election Lease.
    #[arg(long = "leader-elect-resource-namespace")]
    pub lease_namespace: Option<String>,
    /// The name of the leader election Lease.
    #[arg(long = "leader-elect-resource-name")]
    pub lease_name: Option<String>,
}

/// Why the scheduler stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::Error),
    #[error("building the API client: {0}")]
    Client(String),
    #[error("--leader-elect-resource-lock={0}: only \"leases\" is supported")]
    ResourceLock(String),
    #[error("invalid leader election {field} {value:?}: {message}")]
    LeaderElectionConfig { field: &'static str, value: String, message: String },
    #[error("building profile: {0}")]
    Profile(#[from] framework::runtime::Error),
    #[error("leaderelection lost")]
    LeadershipLost,
    #[error("leader election: {0}")]
    Election(#[from] kube::Error),
}

async fn client(kubeconfig: Option<&PathBuf>) -> Result<kube::Client, Error> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| Error::Client(e.to_string()))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.map_err(|e| Error::Client(e.to_string()))?
        }
        None => kube::Config::infer().await.map_err(|e| Error::Client(e.to_string()))?,
    };
    kube::Client::try_from(config).map_err(|e| Error::Client(e.to_string()))
}

fn duration_setting(flag: Option<Duration>, file: Option<&String>, field: &'static str, default: Duration) -> Result<Duration, Error> {
    if let Some(d) = flag {
        return Ok(d);
    }
    match file {
        Some(v) => parse_duration(v).map_err(|message| Error::LeaderElectionConfig { field, value: v.clone(), message }),
        None => Ok(default),
    }
}

fn leader_config(opts: &Options, cfg: &SchedulerConfig) -> Result<Option<ironkube_controllers::leader::Config>, Error> {
    let le = &cfg.leader_election;
    if !opts.leader_elect.or(le.leader_elect).unwrap_or(true) {
        return Ok(None);
    }
    let lock = opts.resource_lock.clone().or(le.resource_lock.clone()).unwrap_or_else(|| "leases".into());
    if lock != "leases" {
        return Err(Error::ResourceLock(lock));
    }
    Ok(Some(ironkube_controllers::leader::Config {
        namespace: opts.lease_namespace.clone().or(le.resource_namespace.clone()).unwrap_or_else(|| "kube-system".into()),
        name: opts.lease_name.clone().or(le.resource_name.clone()).unwrap_or_else(|| "kube-scheduler".into()),
        lease_duration: duration_setting(opts.lease_duration, le.lease_duration.as_ref(), "leaseDuration", Duration::from_secs(15))?,
        renew_deadline: duration_setting(opts.renew_deadline, le.renew_deadline.as_ref(), "renewDeadline", Duration::from_secs(10))?,
        retry_period: duration_setting(opts.retry_period, le.retry_period.as_ref(), "retryPeriod", Duration::from_secs(2))?,
    }))
}

/// Runs the scheduler until `shutdown` (Ok) or until leadership is lost (Err).
pub async fn run(opts: Options, shutdown: CancellationToken) -> Result<(), Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cfg = match &opts.config {
        Some(path) => SchedulerConfig::load(path)?,
        None => SchedulerConfig::default(),
    };
    let client = client(opts.kubeconfig.as_ref().or(cfg.kubeconfig.as_ref())).await?;
    let leadership = match leader_config(&opts, &cfg)? {
        Some(le) => {
            let elector = ironkube_controllers::leader::Elector::new(client.clone(), le);
            match elector.acquire(&shutdown).await? {
                Some(lost) => Some(lost),
                None => return Ok(()),
            }
        }
        None => None,
    };
    let stop = shutdown.child_token();
    let mut tasks = tokio::task::JoinSet::new();
    let sched = start(client, &cfg, &mut tasks, stop.clone()).await?;
    info!(profiles = ?cfg.profiles.iter().map(|p| p.scheduler_name.as_str()).collect::<Vec<_>>(), "scheduler started");
    let lost = async {
        match leadership {
            Some(lost) => lost.cancelled().await,
            None => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        _ = shutdown.cancelled() => Ok(()),
        _ = lost => Err(Error::LeadershipLost),
        _ = async { while sched.schedule_one().await {} } => Ok(()),
    };
    stop.cancel();
    sched.queue.close();
    while tasks.join_next().await.is_some() {}
    result
}

fn spawn_informer<K>(tasks: &mut tokio::task::JoinSet<()>, api: Api<K>, config: watcher::Config, objects: ObjectMap<K>, stop: &CancellationToken) -> watch::Receiver<bool>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (tx, rx) = watch::channel(false);
    tasks.spawn(run_informer(api, config, objects, tx, |_, _| {}, stop.clone()));
    rx
}

/// Builds the profiles, queue and cache, starts the informers and event sinks, and waits
/// until nodes and pods are listed.
pub async fn start(client: kube::Client, cfg: &SchedulerConfig, tasks: &mut tokio::task::JoinSet<()>, stop: CancellationToken) -> Result<Arc<Scheduler>, Error> {
    let listers = InformerListers::default();
    let nominator = Nominator::new();
    let first = cfg.profiles.first().map(|p| p.scheduler_name.clone()).unwrap_or_else(|| config::DEFAULT_SCHEDULER_NAME.into());
    let (recorder, sink) = events::Recorder::new(client.clone(), &first, stop.clone());
    tasks.spawn(sink);
    let registry = plugins::registry();
    let mut profiles = HashMap::new();
    for p in &cfg.profiles {
        let handle = Arc::new(Handle {
            client: Some(client.clone()),
            listers: Arc::new(listers.clone()),
            nominator: Some(nominator.clone() as Arc<dyn PodNominator>),
            events: Some(recorder.for_controller(&p.scheduler_name)),
        });
        profiles.insert(p.scheduler_name.clone(), Arc::new(Framework::new(p, &registry, handle)?));
    }
    let queue = SchedulingQueue::new(profiles.clone(), nominator, queue::Config { initial_backoff: cfg.pod_initial_backoff, max_backoff: cfg.pod_max_backoff, ..Default::default() });
    let cache = Arc::new(Cache::new());
    let sched = Arc::new(Scheduler::new(cache, queue.clone(), profiles, cfg.percentage_of_nodes_to_score, Some(client.clone()), Arc::new(listers.clone())));
    tasks.spawn(queue.run(stop.clone()));

    let mut optional = vec![
        spawn_informer(tasks, Api::all(client.clone()), watcher::Config::default(), listers.services.clone(), &stop),
        spawn_informer(tasks, Api::all(client.clone()), watcher::Config::default(), listers.replication_controllers.clone(), &stop),
        spawn_informer(tasks, Api::all(client.clone()), watcher::Config::default(), listers.replica_sets.clone(), &stop),
        spawn_informer(tasks, Api::all(client.clone()), watcher::Config::default(), listers.stateful_sets.clone(), &stop),
        spawn_informer(tasks, Api::all(client.clone()), watcher::Config::default(), listers.namespaces.clone(), &stop),
        spawn_informer(tasks, Api::all(client.clone()), watcher::Config::default(), listers.pod_disruption_budgets.clone(), &stop),
    ];
    let (pvc_tx, pvc_rx) = watch::channel(false);
    let s = sched.clone();
    tasks.spawn(run_informer(Api::all(client.clone()), watcher::Config::default(), listers.persistent_volume_claims.clone(), pvc_tx, move |o, n| informers::on_pvc_change(&s, o, n), stop.clone()));
    optional.push(pvc_rx);
    let (node_tx, mut node_rx) = watch::channel(false);
    let s = sched.clone();
    tasks.spawn(run_informer(Api::all(client.clone()), watcher::Config::default(), listers.nodes.clone(), node_tx, move |o, n| informers::on_node_change(&s, o, n), stop.clone()));
    // Like upstream, the scheduler does not watch finished pods.
    let (pod_tx, mut pod_rx) = watch::channel(false);
    let s = sched.clone();
    let pods: Api<Pod> = Api::all(client.clone());
    tasks.spawn(run_informer(pods, watcher::Config::default().fields("status.phase!=Succeeded,status.phase!=Failed"), listers.pods.clone(), pod_tx, move |o, n| informers::on_pod_change(&s, o, n), stop.clone()));

    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        for rx in optional.iter_mut() {
            let _ = rx.wait_for(|v| *v).await;
        }
    })
    .await;
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = async {
            let _ = node_rx.wait_for(|v| *v).await;
            let _ = pod_rx.wait_for(|v| *v).await;
        } => {}
    }
    Ok(sched)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        options: Options,
    }

    #[test]
    fn leader_election_flags_override_the_file() {
        let cli = Cli::parse_from(["s", "--leader-elect-lease-duration=30s", "--leader-elect-resource-name=other"]);
        let mut cfg = SchedulerConfig::default();
        cfg.leader_election.renew_deadline = Some("20s".into());
        let le = leader_config(&cli.options, &cfg).expect("config").expect("enabled");
        assert_eq!((le.namespace.as_str(), le.name.as_str()), ("kube-system", "other"));
        assert_eq!((le.lease_duration, le.renew_deadline, le.retry_period), (Duration::from_secs(30), Duration::from_secs(20), Duration::from_secs(2)));
        let off = Cli::parse_from(["s", "--leader-elect=false"]);
        assert!(leader_config(&off.options, &cfg).expect("config").is_none());
        let bad = Cli::parse_from(["s", "--leader-elect-resource-lock=endpoints"]);
        assert!(leader_config(&bad.options, &cfg).is_err());
    }
}
