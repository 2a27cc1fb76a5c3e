//! The kubelet's pods: a watch of the pods bound to this node feeds one worker per pod
//! ([`worker`]); a relist of the runtime every second (upstream's PLEG) wakes the worker of
//! any pod whose containers or sandboxes changed state, and removes what the runtime still
//! runs of pods the API server no longer has. Stopping the kubelet leaves every container
//! running: a restarted kubelet picks its pods up from the runtime as they are.

pub mod actions;
pub mod backoff;
pub mod etc_hosts;
pub mod images;
pub mod inspect;
pub mod prober;
pub mod static_pods;
pub mod status;
pub mod worker;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::Api;
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt as _;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::cri::{Runtime, api};
use crate::events::Recorder;
use crate::kuberuntime::sandbox::POD_UID_LABEL;

/// How often a worker syncs its pod when nothing asks it to (volume contents are refreshed
/// then too).
pub const RESYNC: Duration = Duration::from_secs(10);
/// How often the runtime is relisted.
pub const RELIST: Duration = Duration::from_secs(1);

/// What the pod workers need to know of their node.
#[derive(Debug, Clone)]
pub struct Config {
    pub node_name: String,
    pub node_ip: String,
    /// The kubelet's --root-dir (pods live under `<root>/pods/<uid>`).
    pub root_dir: PathBuf,
    pub pod_logs_dir: PathBuf,
    pub cluster_domain: String,
    /// The runtime's name, the prefix of container IDs (`containerd`).
    pub runtime_name: String,
    pub memory_capacity: i64,
    pub node_allocatable: BTreeMap<String, Quantity>,
    /// The static pod manifests (`--pod-manifest-path`), read every `file_check_frequency`.
    pub pod_manifest_path: Option<PathBuf>,
    pub file_check_frequency: Duration,
    /// --cluster-dns, and the node's resolv.conf (read once at start).
    pub cluster_dns: Vec<String>,
    pub host_resolv: crate::kuberuntime::dns::ResolvConf,
}

/// What every worker shares.
pub struct Shared<R> {
    pub config: Config,
    pub runtime: Arc<R>,
    pub client: kube::Client,
    pub recorder: Recorder,
    pub sources: crate::volumes::ApiSources,
    pub puller: images::Puller,
    /// Container restart back-off, by `<uid>_<container>_<hash>`.
    pub restarts: Mutex<backoff::Backoff>,
    pub probes: prober::Prober<R>,
}

struct WorkerHandle {
    updates: watch::Sender<Option<Arc<Pod>>>,
    wake: Arc<Notify>,
}

/// Which containers and sandboxes of each pod are in which state: a change wakes the pod.
type Fingerprints = HashMap<String, Vec<(String, i32)>>;

async fn relist<R: Runtime>(runtime: &R) -> crate::cri::Result<Fingerprints> {
    let mut out: Fingerprints = HashMap::new();
    for s in runtime.list_pod_sandboxes(None).await? {
        if let Some(uid) = s.labels.get(POD_UID_LABEL) {
            out.entry(uid.clone()).or_default().push((s.id, s.state));
        }
    }
    for c in runtime.list_containers(None).await? {
        if let Some(uid) = c.labels.get(POD_UID_LABEL) {
            out.entry(uid.clone()).or_default().push((c.id, c.state + 100));
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    Ok(out)
}

/// Runs the pod workers until `stop`; `probes` are the prober's reports.
pub async fn run<R: Runtime + 'static>(shared: Arc<Shared<R>>, mut probes: prober::ProbeChannels, stop: CancellationToken) {
    let api: Api<Pod> = Api::all(shared.client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={}", shared.config.node_name));
    let mut events = watcher(api, config).default_backoff().boxed();
    let mut workers: HashMap<String, WorkerHandle> = HashMap::new();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut listed: HashSet<String> = HashSet::new();
    let mut synced = false;
    let mut fingerprints: Fingerprints = HashMap::new();
    let mut cleaning: HashSet<String> = HashSet::new();
    let mut tick = tokio::time::interval(RELIST);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Static pods: read once before anything else (their running containers are not
    // orphans), then every file_check_frequency.
    let mut manifests_seen: HashMap<PathBuf, String> = HashMap::new();
    let mut static_pods: HashMap<String, Arc<Pod>> = HashMap::new();
    let mut manifests_read = shared.config.pod_manifest_path.is_none();
    let mut manifest_tick = tokio::time::interval(shared.config.file_check_frequency.max(Duration::from_secs(1)));
    manifest_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let spawn = |uid: String, pod: Arc<Pod>, workers: &mut HashMap<String, WorkerHandle>| {
        let (tx, rx) = watch::channel(Some(pod));
        let wake = Arc::new(Notify::new());
        workers.insert(uid.clone(), WorkerHandle { updates: tx, wake: wake.clone() });
        let (shared, stop, done) = (shared.clone(), stop.clone(), done_tx.clone());
        tokio::spawn(async move {
            worker::run(shared, uid.clone(), rx, wake, stop).await;
            let _ = done.send(uid);
        });
    };

    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = manifest_tick.tick(), if shared.config.pod_manifest_path.is_some() => {
                let Some(dir) = shared.config.pod_manifest_path.as_deref() else { continue };
                let read = static_pods::read_dir(dir, &shared.config.node_name, &manifests_seen);
                manifests_seen = read.values().map(|(path, pod)| {
                    let seen = pod.metadata.annotations.as_ref().and_then(|a| a.get(static_pods::CONFIG_SEEN)).cloned().unwrap_or_default();
                    (path.clone(), seen)
                }).collect();
                for uid in static_pods.keys() {
                    if !read.contains_key(uid) {
                        info!(uid = %uid, "static pod manifest removed");
                        if let Some(w) = workers.get(uid) {
                            let _ = w.updates.send(None);
                        }
                    }
                }
                static_pods = read.into_iter().map(|(uid, (_, pod))| (uid, pod)).collect();
                manifests_read = true;
                for (uid, pod) in &static_pods {
                    match workers.get(uid) {
                        Some(w) => { w.updates.send_if_modified(|current| {
                            if current.as_deref() == Some(pod.as_ref()) { false } else { *current = Some(pod.clone()); true }
                        }); }
                        None => {
                            info!(pod = ?pod.metadata.name, uid = %uid, "static pod");
                            spawn(uid.clone(), pod.clone(), &mut workers);
                        }
                    }
                }
            }
            event = events.next() => match event {
                Some(Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod))) if static_pods::is_mirror(&pod) => {
                    // Mirror pods are the API server's copies of static pods: never run. One
                    // being deleted is deleted for good; the static pod's worker makes a new one.
                    if pod.metadata.deletion_timestamp.is_some() {
                        tokio::spawn(worker::delete_now(shared.client.clone(), pod));
                    }
                }
                Some(Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod))) => {
                    let Some(uid) = pod.metadata.uid.clone() else { continue };
                    listed.insert(uid.clone());
                    let pod = Arc::new(pod);
                    match workers.get(&uid) {
                        Some(w) => { let _ = w.updates.send(Some(pod)); }
                        None => spawn(uid, pod, &mut workers),
                    }
                }
                Some(Ok(watcher::Event::Delete(pod))) => {
                    if let Some(w) = pod.metadata.uid.as_ref().and_then(|u| workers.get(u)) {
                        let _ = w.updates.send(None);
                    }
                }
                Some(Ok(watcher::Event::Init)) => listed.clear(),
                Some(Ok(watcher::Event::InitDone)) => {
                    // Pods removed while the watch was down.
                    for (uid, w) in &workers {
                        if !listed.contains(uid) && !static_pods.contains_key(uid) {
                            let _ = w.updates.send(None);
                        }
                    }
                    if !synced {
                        info!(pods = workers.len(), "pods of this node listed");
                    }
                    synced = true;
                }
                Some(Err(e)) => warn!(error = %e, "watching this node's pods failed; retrying"),
                None => break,
            },
            Some(uid) = probes.changed.recv() => {
                if let Some(w) = workers.get(&uid) {
                    w.wake.notify_one();
                }
            }
            Some(event) = probes.events.recv() => {
                let pod = workers.get(&event.pod_uid).and_then(|w| w.updates.borrow().clone());
                if let Some(pod) = pod {
                    let container = pod.spec.iter().flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten())).find(|c| c.name == event.container);
                    shared.recorder.event(&pod, container, crate::events::WARNING, event.reason, event.message);
                }
            }
            Some(uid) = done_rx.recv() => {
                workers.remove(&uid);
                cleaning.remove(&uid);
            }
            _ = tick.tick() => {
                let current = match relist(shared.runtime.as_ref()).await {
                    Ok(f) => f,
                    Err(e) => { warn!(error = %e, "relisting the runtime failed"); continue }
                };
                for (uid, now) in &current {
                    if fingerprints.get(uid) != Some(now)
                        && let Some(w) = workers.get(uid) {
                            w.wake.notify_one();
                        }
                    // What the runtime runs for a pod the API server does not have.
                    if synced && manifests_read && !workers.contains_key(uid) && cleaning.insert(uid.clone()) {
                        info!(uid = %uid, "removing the containers of a pod this node no longer has");
                        let (shared, uid, done) = (shared.clone(), uid.clone(), done_tx.clone());
                        tokio::spawn(async move {
                            shared.clean_up(&uid, None).await;
                            let _ = done.send(uid);
                        });
                    }
                }
                fingerprints = current;
            }
        }
    }
    info!("pod workers stopped; containers keep running");
}

/// A sandbox filter for one pod (tests and clean-up).
pub fn pod_filter(uid: &str) -> api::PodSandboxFilter {
    api::PodSandboxFilter { label_selector: HashMap::from([(POD_UID_LABEL.to_string(), uid.to_string())]), ..Default::default() }
}
