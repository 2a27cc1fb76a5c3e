//! The prober manager and its workers (upstream's prober_manager.go, worker.go and
//! results/): a worker per pod, container and probe kind, each on its own task, for the
//! pod's containers and its sidecars (restartable init containers).
//!
//! A worker probes every `periodSeconds` (the first probe at once, or after a random part of
//! the period while the kubelet itself has only just started), and:
//! - starts each container instance with the kind's initial result (readiness: Failure,
//!   liveness: Success, startup: Unknown), and resumes after a restart;
//! - waits `initialDelaySeconds` from the container's start;
//! - until the startup probe has succeeded runs only the startup probe; after, everything
//!   but the startup probe;
//! - records a result only after `successThreshold` / `failureThreshold` equal outcomes in a
//!   row; errors (the probe could not run, after three tries) change nothing;
//! - after a liveness failure, or any startup result, holds until the next container
//!   instance; a liveness or startup failure asks the pod worker to kill the container;
//! - marks a container that is not running as failed, and ends when it will not run again
//!   (exited under `restartPolicy: Never`, unless a sidecar), when its liveness or startup
//!   probe meets a pod being deleted, or when the pod is removed.
//!
//! Each result change wakes the caller's notifier with the pod UID; each failed (or
//! warning) probe yields an `Unhealthy` (`ProbeWarning`) event on the caller's event sink.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, Probe};
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::{Outcome, ProbeKind, Target, run_once};
use crate::cri::Runtime;
use crate::status::is_restartable_init_container;

/// How many times a probe that could not run is tried before its result is thrown away.
const MAX_PROBE_RETRIES: usize = 3;

pub const REASON_UNHEALTHY: &str = "Unhealthy";
pub const REASON_PROBE_WARNING: &str = "ProbeWarning";

/// A cached probe result (upstream's results.Result).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    Unknown,
    Success,
    Failure,
}

/// Why the pod worker should kill a container (upstream's kill reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillReason {
    LivenessProbe,
    StartupProbe,
}

/// A container whose liveness or startup probe failed past its threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillRequest {
    pub container: String,
    /// The container instance that failed (`containerd://...`): kill it only if it is still
    /// the running one.
    pub container_id: String,
    pub reason: KillReason,
    /// `Container web failed liveness probe`; upstream appends `, will be restarted` when the
    /// restart policy restarts it, and uses it as the `Killing` event's message.
    pub message: String,
}

/// A Warning event about a container's probe, for the pod worker to record on the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeEvent {
    pub pod_uid: String,
    pub container: String,
    pub kind: ProbeKind,
    /// `Unhealthy` or `ProbeWarning`.
    pub reason: &'static str,
    /// `Liveness probe failed: ...`, `Readiness probe warning: ...`,
    /// `Startup probe errored and resulted in unknown state: ...`.
    pub message: String,
}

/// The manager's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where probe events go (none: only logged).
    pub events: Option<UnboundedSender<ProbeEvent>>,
    /// Spread the first probes of workers started within one period of the manager's start
    /// over that period, as upstream does after a kubelet restart.
    pub start_jitter: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config { events: None, start_jitter: true }
    }
}

type Key = (String, ProbeKind);

struct WorkerHandle {
    id: u64,
    stop: CancellationToken,
    trigger: Arc<Notify>,
}

/// What the manager knows of one pod.
struct PodState {
    pod: Arc<Pod>,
    /// Container (and init container) statuses by name.
    statuses: HashMap<String, ContainerStatus>,
    pod_ip: String,
    workers: HashMap<Key, WorkerHandle>,
    /// Workers that ended by themselves and are not to be started again.
    finished: HashSet<Key>,
    /// Results by key, for the container instance (ID) they are about.
    results: HashMap<Key, (String, ProbeResult)>,
    kill_requests: Vec<KillRequest>,
}

impl PodState {
    fn result(&self, name: &str, kind: ProbeKind, container_id: &str) -> Option<ProbeResult> {
        self.results.get(&(name.to_string(), kind)).filter(|(id, _)| id == container_id).map(|(_, r)| *r)
    }

    /// Upstream's isContainerStarted.
    fn started(&self, status: &ContainerStatus) -> bool {
        if !is_running(status) {
            return false;
        }
        let id = status.container_id.as_deref().unwrap_or_default();
        match self.result(&status.name, ProbeKind::Startup, id) {
            Some(r) => r == ProbeResult::Success,
            // A startup probe that has not run yet: not started.
            None => !self.workers.contains_key(&(status.name.clone(), ProbeKind::Startup)),
        }
    }
}

fn is_running(status: &ContainerStatus) -> bool {
    status.state.as_ref().is_some_and(|s| s.running.is_some())
}

struct Shared<R> {
    runtime: Arc<R>,
    changed: UnboundedSender<String>,
    config: Config,
    start: Instant,
    tasks: tokio::runtime::Handle,
    next_id: AtomicU64,
    pods: Mutex<HashMap<String, PodState>>,
}

impl<R> Shared<R> {
    fn pods(&self) -> MutexGuard<'_, HashMap<String, PodState>> {
        // A worker that panicked while holding the lock left consistent maps behind (every
        // update is a single insert or remove).
        self.pods.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn notify(&self, uid: &str) {
        // The receiver is gone only when the kubelet is stopping.
        let _ = self.changed.send(uid.to_string());
    }
}

/// Runs the probes of the node's pods; see the module docs. Dropping it stops every worker.
pub struct Manager<R> {
    shared: Arc<Shared<R>>,
}

impl<R: Runtime + 'static> Manager<R> {
    /// A manager whose workers run exec probes through `runtime` and report result changes
    /// on `changed`. Call it within a tokio runtime: workers are spawned on it.
    pub fn new(runtime: Arc<R>, changed: UnboundedSender<String>) -> Self {
        Self::with_config(runtime, changed, Config::default())
    }

    pub fn with_config(runtime: Arc<R>, changed: UnboundedSender<String>, config: Config) -> Self {
        Manager {
            shared: Arc::new(Shared {
                runtime,
                changed,
                config,
                start: Instant::now(),
                tasks: tokio::runtime::Handle::current(),
                next_id: AtomicU64::new(1),
                pods: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Tells the manager the pod's latest spec, container statuses (regular and init, with
    /// container IDs and states) and IP; starts the workers of containers with probes the
    /// first time, and stops the liveness and startup workers of a pod being deleted.
    pub fn sync_pod(&self, pod: &Pod, statuses: &[ContainerStatus], pod_ip: Option<&str>) {
        let Some(uid) = pod.metadata.uid.clone() else {
            tracing::warn!(pod = ?pod.metadata.name, "pod without a UID: not probed");
            return;
        };
        let pod = Arc::new(pod.clone());
        let deleting = pod.metadata.deletion_timestamp.is_some();
        let mut pods = self.shared.pods();
        let state = pods.entry(uid.clone()).or_insert_with(|| PodState {
            pod: pod.clone(),
            statuses: HashMap::new(),
            pod_ip: String::new(),
            workers: HashMap::new(),
            finished: HashSet::new(),
            results: HashMap::new(),
            kill_requests: Vec::new(),
        });
        state.pod = pod.clone();
        state.statuses = statuses.iter().map(|s| (s.name.clone(), s.clone())).collect();
        state.pod_ip = pod_ip.unwrap_or_default().to_string();

        let Some(spec) = pod.spec.as_ref() else { return };
        let sidecars = spec.init_containers.iter().flatten().filter(|c| is_restartable_init_container(c));
        for container in spec.containers.iter().chain(sidecars) {
            for kind in [ProbeKind::Startup, ProbeKind::Readiness, ProbeKind::Liveness] {
                let Some(probe) = kind.of(container) else { continue };
                let key = (container.name.clone(), kind);
                if deleting && kind != ProbeKind::Readiness {
                    // Upstream's StopLivenessAndStartup: a terminating pod is not restarted
                    // for failing them.
                    if let Some(worker) = state.workers.remove(&key) {
                        worker.stop.cancel();
                        state.results.remove(&key);
                    }
                    state.finished.insert(key);
                    continue;
                }
                if state.workers.contains_key(&key) || state.finished.contains(&key) {
                    continue;
                }
                let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
                let handle = WorkerHandle { id, stop: CancellationToken::new(), trigger: Arc::new(Notify::new()) };
                let worker = Worker::new(self.shared.clone(), &uid, container.clone(), kind, probe.clone(), &handle);
                tracing::debug!(pod_uid = %uid, container = %container.name, probe = kind.as_str(), "starting probe worker");
                self.shared.tasks.spawn(worker.run());
                state.workers.insert(key, handle);
            }
        }
    }

    /// Stops the pod's workers and forgets its results.
    pub fn remove_pod(&self, uid: &str) {
        if let Some(state) = self.shared.pods().remove(uid) {
            for worker in state.workers.values() {
                worker.stop.cancel();
            }
        }
    }

    /// Whether the container is ready (upstream's UpdatePodStatus): running, started, and its
    /// readiness probe succeeded for this instance — or it has none. A readiness probe that
    /// has not answered yet is asked to run now.
    pub fn ready(&self, uid: &str, container: &str) -> bool {
        let pods = self.shared.pods();
        let Some(state) = pods.get(uid) else { return false };
        let Some(status) = state.statuses.get(container) else { return false };
        if !state.started(status) {
            return false;
        }
        let id = status.container_id.as_deref().unwrap_or_default();
        if state.result(container, ProbeKind::Readiness, id) == Some(ProbeResult::Success) {
            return true;
        }
        match state.workers.get(&(container.to_string(), ProbeKind::Readiness)) {
            Some(worker) => {
                worker.trigger.notify_one();
                false
            }
            None => true,
        }
    }

    /// Whether the container has started (its startup probe succeeded, or it has none, and it
    /// runs); `None` when the manager has no status for it.
    pub fn started(&self, uid: &str, container: &str) -> Option<bool> {
        let pods = self.shared.pods();
        let state = pods.get(uid)?;
        let status = state.statuses.get(container)?;
        Some(state.started(status))
    }

    /// The latest recorded result of a probe, for the container instance it is about.
    pub fn result(&self, uid: &str, container: &str, kind: ProbeKind) -> Option<(String, ProbeResult)> {
        self.shared.pods().get(uid)?.results.get(&(container.to_string(), kind)).cloned()
    }

    /// The containers whose liveness or startup probe failed since the last call.
    pub fn take_kill_requests(&self, uid: &str) -> Vec<KillRequest> {
        self.shared.pods().get_mut(uid).map(|s| std::mem::take(&mut s.kill_requests)).unwrap_or_default()
    }

    /// How many workers run (for tests and metrics).
    pub fn worker_count(&self) -> usize {
        self.shared.pods().values().map(|s| s.workers.len()).sum()
    }
}

impl<R> Drop for Manager<R> {
    fn drop(&mut self) {
        for state in self.shared.pods().values() {
            for worker in state.workers.values() {
                worker.stop.cancel();
            }
        }
    }
}

/// What a worker reads from the manager before each probe.
struct View {
    pod: Arc<Pod>,
    status: ContainerStatus,
    pod_ip: String,
    started: bool,
}

struct Worker<R> {
    shared: Arc<Shared<R>>,
    id: u64,
    uid: String,
    container: Container,
    kind: ProbeKind,
    spec: Probe,
    stop: CancellationToken,
    trigger: Arc<Notify>,
    /// The container instance being probed.
    container_id: Option<String>,
    /// When that instance started, on tokio's clock.
    started_at: Option<Instant>,
    last_result: Option<ProbeResult>,
    result_run: i32,
    on_hold: bool,
}

fn positive_or(value: Option<i32>, default: i32) -> i32 {
    value.filter(|v| *v > 0).unwrap_or(default)
}

impl<R: Runtime + 'static> Worker<R> {
    fn new(shared: Arc<Shared<R>>, uid: &str, container: Container, kind: ProbeKind, spec: Probe, handle: &WorkerHandle) -> Self {
        Worker {
            shared,
            id: handle.id,
            uid: uid.to_string(),
            container,
            kind,
            spec,
            stop: handle.stop.clone(),
            trigger: handle.trigger.clone(),
            container_id: None,
            started_at: None,
            last_result: None,
            result_run: 0,
            on_hold: false,
        }
    }

    fn key(&self) -> Key {
        (self.container.name.clone(), self.kind)
    }

    fn initial_result(&self) -> ProbeResult {
        match self.kind {
            ProbeKind::Readiness => ProbeResult::Failure,
            ProbeKind::Liveness => ProbeResult::Success,
            ProbeKind::Startup => ProbeResult::Unknown,
        }
    }

    async fn run(mut self) {
        let period = Duration::from_secs(positive_or(self.spec.period_seconds, 10).unsigned_abs().into());
        if self.shared.config.start_jitter && period > self.shared.start.elapsed() {
            let wait = period.mul_f64(rand::random::<f64>());
            tokio::select! {
                _ = self.stop.cancelled() => return self.finish(false),
                _ = tokio::time::sleep(wait) => {}
            }
        }
        let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let stop = self.stop.clone();
        let trigger = self.trigger.clone();
        let by_itself = loop {
            let keep_going = tokio::select! {
                biased;
                _ = stop.cancelled() => break false,
                keep_going = self.do_probe() => keep_going,
            };
            if !keep_going {
                break true;
            }
            tokio::select! {
                biased;
                _ = stop.cancelled() => break false,
                _ = ticker.tick() => {}
                _ = trigger.notified() => ticker.reset(),
            }
        };
        self.finish(by_itself);
    }

    /// Upstream's clean-up when a worker ends: its result goes, and so does its entry.
    fn finish(self, by_itself: bool) {
        let mut pods = self.shared.pods();
        let Some(state) = pods.get_mut(&self.uid) else { return };
        let key = self.key();
        if state.workers.get(&key).is_some_and(|w| w.id == self.id) {
            state.workers.remove(&key);
            state.results.remove(&key);
            if by_itself {
                state.finished.insert(key);
            }
        }
        tracing::debug!(pod_uid = %self.uid, container = %self.container.name, probe = self.kind.as_str(), "probe worker ended");
    }

    fn view(&self) -> Option<View> {
        let pods = self.shared.pods();
        let state = pods.get(&self.uid)?;
        let status = state.statuses.get(&self.container.name)?;
        Some(View { pod: state.pod.clone(), status: status.clone(), pod_ip: state.pod_ip.clone(), started: state.started(status) })
    }

    /// Records a result for the current instance; wakes the notifier when it changed. A
    /// stopped worker records nothing.
    fn set_result(&self, result: ProbeResult) -> bool {
        let Some(container_id) = self.container_id.clone() else { return false };
        let changed = {
            let mut pods = self.shared.pods();
            let Some(state) = pods.get_mut(&self.uid) else { return false };
            let key = self.key();
            if state.workers.get(&key).is_none_or(|w| w.id != self.id) {
                return false;
            }
            let entry = (container_id, result);
            let changed = state.results.get(&key) != Some(&entry);
            state.results.insert(key, entry);
            changed
        };
        if changed {
            self.shared.notify(&self.uid);
        }
        changed
    }

    fn request_kill(&self) {
        let Some(container_id) = self.container_id.clone() else { return };
        let (reason, what) = match self.kind {
            ProbeKind::Liveness => (KillReason::LivenessProbe, "liveness"),
            ProbeKind::Startup => (KillReason::StartupProbe, "startup"),
            ProbeKind::Readiness => return,
        };
        let request = KillRequest {
            container: self.container.name.clone(),
            container_id,
            reason,
            message: format!("Container {} failed {what} probe", self.container.name),
        };
        if let Some(state) = self.shared.pods().get_mut(&self.uid) {
            state.kill_requests.push(request);
        }
        self.shared.notify(&self.uid);
    }

    fn event(&self, reason: &'static str, message: String) {
        tracing::debug!(pod_uid = %self.uid, container = %self.container.name, reason, %message, "probe event");
        if let Some(events) = &self.shared.config.events {
            let _ = events.send(ProbeEvent {
                pod_uid: self.uid.clone(),
                container: self.container.name.clone(),
                kind: self.kind,
                reason,
                message,
            });
        }
    }

    /// Probes once if it is time to; returns whether the worker goes on (upstream's doProbe).
    async fn do_probe(&mut self) -> bool {
        let Some(view) = self.view() else {
            return true; // No status yet: wait for one.
        };
        let Some(container_id) = view.status.container_id.clone().filter(|id| !id.is_empty()) else {
            return true; // Not created yet.
        };
        if self.container_id.as_deref() != Some(container_id.as_str()) {
            self.container_id = Some(container_id);
            self.started_at = None;
            self.set_result(self.initial_result());
            self.on_hold = false;
        }
        if self.on_hold {
            return true;
        }

        let state = view.status.state.clone().unwrap_or_default();
        let Some(running) = state.running else {
            self.set_result(ProbeResult::Failure);
            let never = view.pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) == Some("Never");
            // Go on unless the container will not run again.
            return state.terminated.is_none() || !never || is_restartable_init_container(&self.container);
        };

        if view.pod.metadata.deletion_timestamp.is_some() && self.kind != ProbeKind::Readiness {
            // A pod being deleted is let go quietly.
            self.set_result(ProbeResult::Success);
            return false;
        }

        let started_at = *self.started_at.get_or_insert_with(|| {
            let age = running.started_at.and_then(|t| jiff::Timestamp::now().duration_since(t.0).try_into().ok()).unwrap_or(Duration::ZERO);
            Instant::now().checked_sub(age).unwrap_or_else(Instant::now)
        });
        let initial_delay = u64::try_from(self.spec.initial_delay_seconds.unwrap_or(0)).unwrap_or(0);
        if started_at.elapsed().as_secs() < initial_delay {
            return true;
        }

        if view.started {
            if self.kind == ProbeKind::Startup {
                return true;
            }
        } else if self.kind != ProbeKind::Startup {
            return true;
        }

        let target = Target {
            pod_ip: view.pod_ip.clone(),
            container_id: self.container_id.as_deref().map(bare_container_id).unwrap_or_default().to_string(),
        };
        let result = match self.probe_with_retries(&target).await {
            Outcome::Success => ProbeResult::Success,
            Outcome::Warning(output) => {
                self.event(REASON_PROBE_WARNING, format!("{} probe warning: {output}", self.kind.as_str()));
                ProbeResult::Success
            }
            Outcome::Failure(output) => {
                self.event(REASON_UNHEALTHY, format!("{} probe failed: {output}", self.kind.as_str()));
                ProbeResult::Failure
            }
            Outcome::Unknown(err) => {
                self.event(REASON_UNHEALTHY, format!("{} probe errored and resulted in unknown state: {err}", self.kind.as_str()));
                return true; // Thrown away.
            }
        };

        if self.last_result == Some(result) {
            self.result_run += 1;
        } else {
            self.last_result = Some(result);
            self.result_run = 1;
        }
        let threshold = match result {
            ProbeResult::Failure => positive_or(self.spec.failure_threshold, 3),
            _ => positive_or(self.spec.success_threshold, 1),
        };
        if self.result_run < threshold {
            return true;
        }

        self.set_result(result);
        if result == ProbeResult::Failure {
            self.request_kill();
        }
        if (self.kind == ProbeKind::Liveness && result == ProbeResult::Failure) || self.kind == ProbeKind::Startup {
            // Hold until the next instance: the container is about to be killed, or it has
            // started.
            self.on_hold = true;
            self.result_run = 0;
        }
        true
    }

    async fn probe_with_retries(&self, target: &Target) -> Outcome {
        let mut outcome = Outcome::Unknown(String::new());
        for _ in 0..MAX_PROBE_RETRIES {
            outcome = run_once(&self.spec, &self.container, target, self.shared.runtime.as_ref()).await;
            if !matches!(outcome, Outcome::Unknown(_)) {
                break;
            }
        }
        outcome
    }
}

/// `containerd://abc` -> `abc`.
pub fn bare_container_id(id: &str) -> &str {
    id.split_once("://").map(|(_, bare)| bare).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateRunning, ContainerStateTerminated, ExecAction, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

    use super::*;
    use crate::probes::fake_runtime::FakeRuntime;

    const UID: &str = "pod-1";

    fn exec_probe(command: &str, period: i32, success: i32, failure: i32) -> Probe {
        Probe {
            exec: Some(ExecAction { command: Some(vec![command.into()]) }),
            period_seconds: Some(period),
            success_threshold: Some(success),
            failure_threshold: Some(failure),
            timeout_seconds: Some(1),
            ..Default::default()
        }
    }

    fn pod(container: Container, restart_policy: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                uid: Some(UID.into()),
                ..Default::default()
            },
            spec: Some(PodSpec { containers: vec![container], restart_policy: Some(restart_policy.into()), ..Default::default() }),
            ..Default::default()
        }
    }

    fn running(name: &str, id: &str) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            container_id: Some(format!("containerd://{id}")),
            state: Some(ContainerState {
                running: Some(ContainerStateRunning { started_at: Some(Time(jiff::Timestamp::now())) }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn exited(name: &str, id: &str) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            container_id: Some(format!("containerd://{id}")),
            state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated { exit_code: 1, ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    struct Fixture {
        runtime: Arc<FakeRuntime>,
        manager: Manager<FakeRuntime>,
        changed: UnboundedReceiver<String>,
        events: UnboundedReceiver<ProbeEvent>,
    }

    fn fixture(runtime: FakeRuntime) -> Fixture {
        let runtime = Arc::new(runtime);
        let (changed_tx, changed) = unbounded_channel();
        let (events_tx, events) = unbounded_channel();
        let config = Config { events: Some(events_tx), start_jitter: false };
        let manager = Manager::with_config(runtime.clone(), changed_tx, config);
        Fixture { runtime, manager, changed, events }
    }

    /// Lets paused time run for `secs` seconds, workers and all.
    async fn wait(secs: u64) {
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }

    fn drain<T>(rx: &mut UnboundedReceiver<T>) -> Vec<T> {
        let mut out = Vec::new();
        while let Ok(x) = rx.try_recv() {
            out.push(x);
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn liveness_failures_past_the_threshold_ask_for_a_restart_once() {
        let mut f = fixture(FakeRuntime::exits(1, "not alive", ""));
        let container = Container { name: "app".into(), liveness_probe: Some(exec_probe("live", 10, 1, 3)), ..Default::default() };
        let pod = pod(container, "Always");
        f.manager.sync_pod(&pod, &[running("app", "c1")], Some("10.0.0.5"));
        assert_eq!(f.manager.worker_count(), 1);

        // Probes at 0 s and 10 s fail: below the threshold, the result stays Success.
        wait(15).await;
        assert_eq!(f.runtime.count("live"), 2);
        assert_eq!(f.manager.result(UID, "app", ProbeKind::Liveness), Some(("containerd://c1".into(), ProbeResult::Success)));
        assert!(f.manager.take_kill_requests(UID).is_empty());

        // The third failure (20 s) crosses it.
        wait(10).await;
        assert_eq!(f.runtime.count("live"), 3);
        assert_eq!(f.manager.result(UID, "app", ProbeKind::Liveness), Some(("containerd://c1".into(), ProbeResult::Failure)));
        assert_eq!(
            f.manager.take_kill_requests(UID),
            vec![KillRequest {
                container: "app".into(),
                container_id: "containerd://c1".into(),
                reason: KillReason::LivenessProbe,
                message: "Container app failed liveness probe".into(),
            }]
        );
        assert!(f.manager.take_kill_requests(UID).is_empty(), "taken once");
        assert!(drain(&mut f.changed).iter().all(|uid| uid == UID));
        let events = drain(&mut f.events);
        assert_eq!(events.len(), 3);
        assert!(events.iter().all(|e| e.reason == "Unhealthy" && e.message == "Liveness probe failed: not alive"), "{events:?}");
        assert_eq!(f.runtime.execs()[0], ("c1".to_string(), vec!["live".to_string()], 1), "the bare CRI ID and the timeout");

        // On hold until the container is replaced.
        wait(60).await;
        assert_eq!(f.runtime.count("live"), 3);

        // The restarted instance starts over from Success and is probed again.
        f.runtime.set_exit("live", 0, "");
        f.manager.sync_pod(&pod, &[running("app", "c2")], Some("10.0.0.5"));
        wait(10).await;
        assert_eq!(f.runtime.count("live"), 4);
        assert_eq!(f.manager.result(UID, "app", ProbeKind::Liveness), Some(("containerd://c2".into(), ProbeResult::Success)));
        assert!(f.manager.take_kill_requests(UID).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn readiness_starts_false_and_needs_its_success_threshold() {
        let mut f = fixture(FakeRuntime::exits(0, "", ""));
        let container = Container {
            name: "app".into(),
            readiness_probe: Some(Probe { initial_delay_seconds: Some(5), ..exec_probe("ready", 10, 2, 1) }),
            ..Default::default()
        };
        let pod = pod(container, "Always");
        assert!(!f.manager.ready(UID, "app"), "unknown pod");
        f.manager.sync_pod(&pod, &[running("app", "c1")], Some("10.0.0.5"));
        assert!(!f.manager.ready(UID, "app"));
        assert_eq!(f.manager.started(UID, "app"), Some(true), "no startup probe");

        // Nothing runs during the initial delay; the first tick after it probes (10 s).
        wait(4).await;
        assert_eq!(f.runtime.count("ready"), 0);
        wait(7).await;
        assert_eq!(f.runtime.count("ready"), 1);
        // One success is not enough; asking runs the probe again at once (as upstream's status
        // update does), and the second success makes it ready.
        assert!(!f.manager.ready(UID, "app"));
        wait(1).await;
        assert_eq!(f.runtime.count("ready"), 2);
        assert!(f.manager.ready(UID, "app"));
        assert_eq!(drain(&mut f.changed), vec![UID.to_string(), UID.to_string()], "initial Failure, then Success");

        // One failure (threshold 1) makes it unready; readiness never restarts anything.
        f.runtime.set_exit("ready", 1, "503");
        wait(10).await;
        assert!(!f.manager.ready(UID, "app"));
        assert!(f.manager.take_kill_requests(UID).is_empty());
        assert_eq!(drain(&mut f.events).last().map(|e| e.message.clone()), Some("Readiness probe failed: 503".into()));

        // A stopped container is not ready, and is marked failed.
        f.manager.sync_pod(&pod, &[exited("app", "c1")], Some("10.0.0.5"));
        wait(10).await;
        assert!(!f.manager.ready(UID, "app"));
        assert_eq!(f.manager.result(UID, "app", ProbeKind::Readiness), Some(("containerd://c1".into(), ProbeResult::Failure)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_ready_query_runs_a_pending_readiness_probe_at_once() {
        let f = fixture(FakeRuntime::exits(0, "", ""));
        let container = Container { name: "app".into(), readiness_probe: Some(exec_probe("ready", 30, 1, 3)), ..Default::default() };
        // The container is not created yet when the worker starts.
        f.manager.sync_pod(&pod(container.clone(), "Always"), &[], None);
        wait(1).await;
        f.manager.sync_pod(&pod(container, "Always"), &[running("app", "c1")], Some("10.0.0.5"));
        assert!(!f.manager.ready(UID, "app"), "asks for a run");
        wait(1).await;
        assert_eq!(f.runtime.count("ready"), 1);
        assert!(f.manager.ready(UID, "app"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_startup_probe_gates_the_others() {
        let mut f = fixture(FakeRuntime::exits(0, "", ""));
        f.runtime.set_exit("start", 1, "warming up");
        let container = Container {
            name: "app".into(),
            startup_probe: Some(exec_probe("start", 5, 1, 10)),
            liveness_probe: Some(exec_probe("live", 5, 1, 3)),
            readiness_probe: Some(exec_probe("ready", 5, 1, 3)),
            ..Default::default()
        };
        let pod = pod(container, "Always");
        f.manager.sync_pod(&pod, &[running("app", "c1")], Some("10.0.0.5"));
        assert_eq!(f.manager.worker_count(), 3);

        wait(12).await;
        assert_eq!(f.runtime.count("start"), 3);
        assert_eq!((f.runtime.count("live"), f.runtime.count("ready")), (0, 0), "gated until started");
        assert_eq!(f.manager.started(UID, "app"), Some(false));
        assert!(!f.manager.ready(UID, "app"));

        f.runtime.set_exit("start", 0, "");
        wait(5).await;
        assert_eq!(f.manager.started(UID, "app"), Some(true));
        assert_eq!(f.manager.result(UID, "app", ProbeKind::Startup), Some(("containerd://c1".into(), ProbeResult::Success)));
        wait(5).await;
        assert_eq!(f.runtime.count("start"), 4, "startup stops once started");
        assert!(f.runtime.count("live") >= 1 && f.runtime.count("ready") >= 1);
        assert!(f.manager.ready(UID, "app"));
        let events = drain(&mut f.events);
        assert!(events.iter().all(|e| e.message == "Startup probe failed: warming up"), "{events:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_startup_probe_that_never_succeeds_asks_for_a_restart() {
        let f = fixture(FakeRuntime::exits(1, "", ""));
        let container = Container { name: "app".into(), startup_probe: Some(exec_probe("start", 1, 1, 3)), ..Default::default() };
        f.manager.sync_pod(&pod(container, "Always"), &[running("app", "c1")], Some("10.0.0.5"));
        wait(5).await;
        assert_eq!(f.runtime.count("start"), 3, "holds after the threshold");
        let kills = f.manager.take_kill_requests(UID);
        assert_eq!(kills.len(), 1);
        assert_eq!((kills[0].reason, kills[0].message.as_str()), (KillReason::StartupProbe, "Container app failed startup probe"));
        assert_eq!(f.manager.started(UID, "app"), Some(false));
    }

    #[tokio::test(start_paused = true)]
    async fn probe_errors_are_retried_and_thrown_away() {
        let mut f = fixture(FakeRuntime::fails(tonic::Code::Unavailable, "runtime down"));
        let container = Container { name: "app".into(), liveness_probe: Some(exec_probe("live", 10, 1, 1)), ..Default::default() };
        f.manager.sync_pod(&pod(container, "Always"), &[running("app", "c1")], Some("10.0.0.5"));
        wait(1).await;
        assert_eq!(f.runtime.count("live"), 3, "three tries");
        assert_eq!(f.manager.result(UID, "app", ProbeKind::Liveness), Some(("containerd://c1".into(), ProbeResult::Success)));
        assert!(f.manager.take_kill_requests(UID).is_empty());
        assert_eq!(
            drain(&mut f.events).iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
            ["Liveness probe errored and resulted in unknown state: rpc error: code = Unavailable desc = runtime down"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn workers_end_with_their_container_or_pod() {
        let f = fixture(FakeRuntime::exits(0, "", ""));
        let container = Container {
            name: "app".into(),
            liveness_probe: Some(exec_probe("live", 10, 1, 3)),
            readiness_probe: Some(exec_probe("ready", 10, 1, 3)),
            ..Default::default()
        };

        // restartPolicy Never: an exited container will not come back.
        let never = pod(container.clone(), "Never");
        f.manager.sync_pod(&never, &[exited("app", "c1")], Some("10.0.0.5"));
        wait(1).await;
        assert_eq!(f.manager.worker_count(), 0);
        f.manager.sync_pod(&never, &[exited("app", "c1")], Some("10.0.0.5"));
        assert_eq!(f.manager.worker_count(), 0, "not started again");
        f.manager.remove_pod(UID);

        // Always: it will, so the workers wait for it.
        let always = pod(container, "Always");
        f.manager.sync_pod(&always, &[exited("app", "c1")], Some("10.0.0.5"));
        wait(1).await;
        assert_eq!(f.manager.worker_count(), 2);

        // Deletion stops liveness (no restarts while terminating) but not readiness.
        let mut deleting = always.clone();
        deleting.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::now()));
        f.manager.sync_pod(&deleting, &[running("app", "c2")], Some("10.0.0.5"));
        wait(1).await;
        assert_eq!(f.manager.worker_count(), 1);
        assert_eq!(f.manager.result(UID, "app", ProbeKind::Liveness), None);

        f.manager.remove_pod(UID);
        wait(1).await;
        assert_eq!(f.manager.worker_count(), 0);
        let before = f.runtime.execs().len();
        wait(60).await;
        assert_eq!(f.runtime.execs().len(), before, "no probes after removal");
        assert!(!f.manager.ready(UID, "app"));
    }

    #[tokio::test(start_paused = true)]
    async fn sidecars_are_probed_and_plain_init_containers_are_not() {
        let f = fixture(FakeRuntime::exits(0, "", ""));
        let mut pod = pod(Container { name: "app".into(), ..Default::default() }, "Always");
        if let Some(spec) = pod.spec.as_mut() {
            spec.init_containers = Some(vec![
                Container { name: "setup".into(), readiness_probe: Some(exec_probe("setup", 10, 1, 3)), ..Default::default() },
                Container {
                    name: "proxy".into(),
                    restart_policy: Some("Always".into()),
                    readiness_probe: Some(exec_probe("proxy", 10, 1, 3)),
                    ..Default::default()
                },
            ]);
        }
        f.manager.sync_pod(&pod, &[running("proxy", "s1")], Some("10.0.0.5"));
        assert_eq!(f.manager.worker_count(), 1);
        wait(1).await;
        assert_eq!((f.runtime.count("proxy"), f.runtime.count("setup")), (1, 0));
        assert!(f.manager.ready(UID, "proxy"));
    }

    #[test]
    fn container_ids_lose_their_runtime_prefix() {
        assert_eq!(bare_container_id("containerd://abc"), "abc");
        assert_eq!(bare_container_id("abc"), "abc");
    }
}
