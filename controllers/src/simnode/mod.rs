//! Simulated nodes (like kwok): N Nodes that register, heartbeat and report their pods the
//! way a kubelet does, with no containers behind them.
//!
//! - each node registers with capacity, addresses, nodeInfo and the kubelet's four
//!   conditions, re-reports its status every `--node-status-report-frequency` (heartbeat
//!   times move, transition times stay) and renews its Lease in `kube-node-lease` every
//!   `--node-lease-renew-interval`;
//! - pods bound to a simulated node are reported Running and Ready (see [`pod`]); pods with
//!   the `ironkube.dev/simulated-exit-code` annotation complete with that code;
//! - pods being deleted are confirmed gone with a grace-0 delete (reported Failed first
//!   when finalizers keep them).

pub mod addresses;
pub mod node;
pub mod pod;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, instrument, warn};

use node::{Capacity, SimNode};

/// The field manager simulated kubelets write with.
const MANAGER: &str = "ironkube-simnodes";
/// How many nodes register or heartbeat at once.
const CONCURRENCY: usize = 16;

/// Flags of `ironkube-simnodes` (and `ironkube up --simulated-nodes`).
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Path to a kubeconfig file for the API server.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// How many nodes to simulate.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Node names are this prefix followed by 0, 1, 2...
    #[arg(long, default_value = "sim-node-")]
    pub node_name_prefix: String,
    /// CPU capacity of every node.
    #[arg(long, default_value = "32")]
    pub node_cpu: String,
    /// Memory capacity of every node.
    #[arg(long, default_value = "256Gi")]
    pub node_memory: String,
    /// Pod capacity of every node.
    #[arg(long, default_value = "110")]
    pub node_pods: String,
    /// Ephemeral storage capacity of every node.
    #[arg(long, default_value = "100Gi")]
    pub node_ephemeral_storage: String,
    /// leaseDurationSeconds of the node Leases (the kubelet's --node-lease-duration-seconds).
    #[arg(long, default_value_t = 40)]
    pub node_lease_duration_seconds: i32,
    /// How often each node renews its Lease.
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration)]
    pub node_lease_renew_interval: Duration,
    /// How often each node reports its status when nothing changed (the kubelet's
    /// --node-status-report-frequency).
    #[arg(long, default_value = "1m", value_parser = crate::parse_duration)]
    pub node_status_report_frequency: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            kubeconfig: None,
            nodes: 3,
            node_name_prefix: "sim-node-".into(),
            node_cpu: "32".into(),
            node_memory: "256Gi".into(),
            node_pods: "110".into(),
            node_ephemeral_storage: "100Gi".into(),
            node_lease_duration_seconds: 40,
            node_lease_renew_interval: Duration::from_secs(10),
            node_status_report_frequency: Duration::from_secs(60),
        }
    }
}

/// Why the simulator stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("building the API client: {0}")]
    Client(String),
    #[error("{0} nodes requested; the address plan has room for {max}", max = addresses::MAX_NODES)]
    TooManyNodes(usize),
    #[error("registering node {node}: {source}")]
    Register {
        node: String,
        #[source]
        source: kube::Error,
    },
}

struct Ctx {
    client: kube::Client,
    nodes: HashMap<String, SimNode>,
    ips: Mutex<HashMap<String, addresses::PodIps>>,
    pods: Store<Pod>,
}

/// Registers a simulated node through the kubelet's own registration; returns its UID.
async fn register(client: &kube::Client, sim: &SimNode, capacity: &Capacity) -> Result<String, kube::Error> {
    ironkube_kubelet::node::register(client, &node::facts(sim, capacity), MANAGER).await
}

/// Re-reports one node's status (the heartbeat), keeping condition transition times.
async fn report_status(client: &kube::Client, sim: &SimNode, capacity: &Capacity) -> Result<(), kube::Error> {
    ironkube_kubelet::node::report_status(client, &node::facts(sim, capacity), MANAGER).await
}

/// Renews (or creates) one node's Lease.
async fn renew_lease(client: &kube::Client, sim: &SimNode, uid: &str, duration: i32) -> Result<(), kube::Error> {
    ironkube_kubelet::node::renew_lease(client, &sim.name, uid, duration, MANAGER).await
}

/// Where `pod` runs on `sim`, allocating its IP.
fn placement(ctx: &Ctx, sim: &SimNode, pod: &Pod) -> Option<pod::Placement> {
    let host_ip = sim.ip();
    if pod.spec.as_ref().and_then(|s| s.host_network) == Some(true) {
        return Some(pod::Placement { pod_ip: host_ip.clone(), host_ip });
    }
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let mut ips = ctx.ips.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let node_ips = ips.entry(sim.name.clone()).or_insert_with(|| addresses::PodIps::new(addresses::pod_cidr_base(sim.index)));
    if let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()).and_then(|ip| ip.parse().ok()) {
        node_ips.claim(&uid, ip);
    }
    let ip = match node_ips.allocate(&uid) {
        Some(ip) => ip,
        None => {
            // Forget pods that are gone, then try again.
            let live: std::collections::HashSet<String> = ctx.pods.state().iter().filter_map(|p| p.metadata.uid.clone()).collect();
            node_ips.retain(&|u| live.contains(u));
            node_ips.allocate(&uid)?
        }
    };
    Some(pod::Placement { host_ip, pod_ip: ip.to_string() })
}

#[instrument(skip_all, fields(controller = "simnodes", key = %format!("{}/{}", p.metadata.namespace.as_deref().unwrap_or(""), p.metadata.name.as_deref().unwrap_or(""))))]
async fn reconcile(p: Arc<Pod>, ctx: Arc<Ctx>) -> Result<Action, kube::Error> {
    let Some(node_name) = p.spec.as_ref().and_then(|s| s.node_name.as_deref()) else { return Ok(Action::await_change()) };
    let Some(sim) = ctx.nodes.get(node_name) else { return Ok(Action::await_change()) };
    let (Some(name), Some(namespace), Some(uid)) = (p.metadata.name.as_deref(), p.metadata.namespace.as_deref(), p.metadata.uid.as_deref()) else {
        return Ok(Action::await_change());
    };
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    if p.metadata.deletion_timestamp.is_some() {
        // A pod kept by finalizers shows its terminal phase first, as a kubelet reports it
        // once the containers were killed (the Job controller waits for it).
        if p.metadata.finalizers.as_ref().is_some_and(|f| !f.is_empty())
            && let Some(placement) = placement(&ctx, sim, &p)
            && let Some(status) = pod::killed_status(&p, &placement, jiff::Timestamp::now())
        {
            match api.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": status}))).await {
                Ok(_) => debug!(pod = name, node = node_name, "reported the killed pod Failed"),
                Err(kube::Error::Api(e)) if e.code == 404 => return Ok(Action::await_change()),
                Err(e) => return Err(e),
            }
        }
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions { uid: Some(uid.to_string()), resource_version: None }),
            ..Default::default()
        };
        match api.delete(name, &params).await {
            Ok(_) => debug!(pod = name, node = node_name, "confirmed termination"),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => return Err(e),
        }
        if let Some(ips) = ctx.ips.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get_mut(node_name) {
            ips.release(uid);
        }
        return Ok(Action::await_change());
    }
    let Some(placement) = placement(&ctx, sim, &p) else {
        warn!(pod = name, node = node_name, "no pod IP left on the node");
        return Ok(Action::requeue(Duration::from_secs(5)));
    };
    let plan = pod::plan(&p, &placement, jiff::Timestamp::now());
    if let Some(status) = plan.status {
        let phase = status["phase"].as_str().unwrap_or("").to_string();
        match api.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": status}))).await {
            Ok(_) => debug!(pod = name, node = node_name, phase, "reported pod status"),
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(Action::await_change()),
            Err(e) => return Err(e),
        }
    }
    Ok(plan.requeue.map(Action::requeue).unwrap_or_else(Action::await_change))
}

/// Registers the nodes, calls `registered`, then keeps them and their pods going until `stop`.
pub async fn run(opts: Options, stop: CancellationToken, registered: impl FnOnce()) -> Result<(), Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if opts.nodes > addresses::MAX_NODES {
        return Err(Error::TooManyNodes(opts.nodes));
    }
    let client = ironkube_kubelet::agent::api_client(opts.kubeconfig.as_deref()).await.map_err(Error::Client)?;
    let capacity = Capacity {
        cpu: opts.node_cpu.clone(),
        memory: opts.node_memory.clone(),
        pods: opts.node_pods.clone(),
        ephemeral_storage: opts.node_ephemeral_storage.clone(),
    };
    let sims: Vec<SimNode> = (0..opts.nodes).map(|i| SimNode::new(&opts.node_name_prefix, i)).collect();
    let started = std::time::Instant::now();
    let uids: Vec<(SimNode, String)> = futures::stream::iter(sims.iter().cloned())
        .map(|sim| {
            let client = client.clone();
            let capacity = capacity.clone();
            async move {
                let uid = register(&client, &sim, &capacity).await.map_err(|source| Error::Register { node: sim.name.clone(), source })?;
                renew_lease(&client, &sim, &uid, opts.node_lease_duration_seconds)
                    .await
                    .map_err(|source| Error::Register { node: sim.name.clone(), source })?;
                Ok::<_, Error>((sim, uid))
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    info!(nodes = uids.len(), elapsed = ?started.elapsed(), "simulated nodes registered");
    registered();

    let mut tasks = tokio::task::JoinSet::new();
    // Leases.
    {
        let (client, uids, stop) = (client.clone(), uids.clone(), stop.clone());
        let (every, duration) = (opts.node_lease_renew_interval, opts.node_lease_duration_seconds);
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                futures::stream::iter(uids.iter())
                    .for_each_concurrent(CONCURRENCY, |(sim, uid)| {
                        let client = client.clone();
                        async move {
                            if let Err(e) = renew_lease(&client, sim, uid, duration).await {
                                warn!(node = %sim.name, error = %e, "renewing the node lease failed");
                            }
                        }
                    })
                    .await;
            }
        });
    }
    // Node status heartbeats.
    {
        let (client, sims, stop, capacity) = (client.clone(), sims.clone(), stop.clone(), capacity.clone());
        let every = opts.node_status_report_frequency;
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                futures::stream::iter(sims.iter())
                    .for_each_concurrent(CONCURRENCY, |sim| {
                        let (client, capacity) = (client.clone(), capacity.clone());
                        async move {
                            if let Err(e) = report_status(&client, sim, &capacity).await {
                                warn!(node = %sim.name, error = %e, "reporting the node status failed");
                            }
                        }
                    })
                    .await;
            }
        });
    }
    // Pods.
    let pods: Api<Pod> = Api::all(client.clone());
    let controller = Controller::new(pods, watcher::Config::default());
    let ctx = Arc::new(Ctx {
        client,
        nodes: sims.into_iter().map(|s| (s.name.clone(), s)).collect(),
        ips: Mutex::new(HashMap::new()),
        pods: controller.store(),
    });
    crate::runtime::drive("simnodes", controller, ctx, reconcile, stop.clone()).await;
    stop.cancel();
    while tasks.join_next().await.is_some() {}
    Ok(())
}

