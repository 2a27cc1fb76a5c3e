//! The scheduling queue (upstream's `PriorityQueue`, with queueing hints):
//!
//! - **active**: pods to try now, highest priority first, then the earliest enqueued;
//! - **backoff**: pods that failed, waiting 1s doubling up to 10s per attempt (popped
//!   early when the active queue is empty, as with SchedulerPopFromBackoffQ);
//! - **unschedulable**: pods rejected by plugins, moved out when a cluster event the
//!   rejecting plugins registered (and their queueing hints accept) happens, or after
//!   five minutes.
//!
//! Events that happen while a pod is being scheduled are remembered so a pod coming back
//! unschedulable is re-queued at once if one of them may have helped.

mod nominator;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use nominator::Nominator;

use crate::framework::interface::{ActionType, ClusterEvent, EventObject, EventResource, QueueingHint};
use crate::framework::node_info::{PodExt, PodInfo};
use crate::framework::resource::{RequestOptions, pod_requests};
use crate::framework::runtime::Framework;

/// Upstream's queue timings.
#[derive(Debug, Clone)]
pub struct Config {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub max_in_unschedulable: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config { initial_backoff: Duration::from_secs(1), max_backoff: Duration::from_secs(10), max_in_unschedulable: Duration::from_secs(5 * 60) }
    }
}

/// A pod in the queue with its scheduling history.
#[derive(Debug, Clone)]
pub struct QueuedPodInfo {
    pub pod_info: Arc<PodInfo>,
    /// When the pod was last added to the queue.
    pub timestamp: Instant,
    pub attempts: u32,
    pub initial_attempt_timestamp: Option<Instant>,
    /// Plugins that rejected the pod in its last attempt.
    pub unschedulable_plugins: BTreeSet<&'static str>,
    pub gated: bool,
    backoff_expiration: Option<Instant>,
}

impl QueuedPodInfo {
    pub fn new(pod: Arc<Pod>, now: Instant) -> Self {
        QueuedPodInfo { pod_info: Arc::new(PodInfo::new(pod)), timestamp: now, attempts: 0, initial_attempt_timestamp: None, unschedulable_plugins: BTreeSet::new(), gated: false, backoff_expiration: None }
    }

    pub fn pod(&self) -> &Arc<Pod> {
        &self.pod_info.pod
    }

    fn uid(&self) -> String {
        self.pod_info.uid().to_string()
    }

    /// Replaces the pod (same UID) keeping the history.
    pub fn update(&mut self, pod: Arc<Pod>) {
        self.pod_info = Arc::new(PodInfo::new(pod));
    }
}

/// Where a queued pod is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Active,
    Backoff,
    ErrorBackoff,
    Unschedulable,
}

type ActiveKey = (std::cmp::Reverse<i32>, Instant, u64);
type BackoffKey = (Instant, std::cmp::Reverse<i32>, Instant, u64);

struct Entry {
    info: QueuedPodInfo,
    location: Location,
    seq: u64,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    active: BTreeSet<(ActiveKey, String)>,
    backoff: BTreeSet<(BackoffKey, String)>,
    error_backoff: BTreeSet<(BackoffKey, String)>,
    in_flight: HashMap<String, u64>,
    events: Vec<(u64, ClusterEvent, Option<EventObject>, Option<EventObject>)>,
    next_event: u64,
    seq: u64,
    scheduling_cycle: u64,
    closed: bool,
}

enum Strategy {
    Skip,
    AfterBackoff,
}

/// The queue, shared by the informers and the scheduling loop.
pub struct SchedulingQueue {
    state: Mutex<State>,
    notify: Notify,
    config: Config,
    profiles: HashMap<String, Arc<Framework>>,
    nominator: Arc<Nominator>,
}

fn backoff_duration(config: &Config, attempts: u32) -> Duration {
    if attempts == 0 {
        return Duration::ZERO;
    }
    let mut d = config.initial_backoff;
    for _ in 1..attempts {
        if d > config.max_backoff.saturating_sub(d) {
            return config.max_backoff;
        }
        d += d;
    }
    d
}

/// Which scheduling-relevant properties of an unscheduled or assigned pod changed
/// (upstream's `PodSchedulingPropertiesChange`).
pub fn pod_scheduling_properties_change(new: &Pod, old: &Pod) -> Vec<ClusterEvent> {
    let resource = if new.node_name().is_empty() { EventResource::UnscheduledPod } else { EventResource::AssignedPod };
    let mut actions = Vec::new();
    if new.labels() != old.labels() {
        actions.push(ActionType::UPDATE_POD_LABEL);
    }
    let (new_req, old_req) = (pod_requests(new, &RequestOptions::scheduler()), pod_requests(old, &RequestOptions::scheduler()));
    if old_req.iter().any(|(name, q)| new_req.get(name).is_none_or(|n| q.milli_value() > n.milli_value())) {
        actions.push(ActionType::UPDATE_POD_SCALE_DOWN);
    }
    let gates = |p: &Pod| p.spec.as_ref().and_then(|s| s.scheduling_gates.as_ref()).map(Vec::len).unwrap_or(0);
    if gates(new) == 0 && gates(old) != 0 {
        actions.push(ActionType::UPDATE_POD_SCHEDULING_GATES_ELIMINATED);
    }
    let tolerations = |p: &Pod| p.spec.as_ref().and_then(|s| s.tolerations.as_ref()).map(Vec::len).unwrap_or(0);
    if tolerations(new) != tolerations(old) {
        actions.push(ActionType::UPDATE_POD_TOLERATION);
    }
    if actions.is_empty() {
        actions.push(ActionType::UPDATE_POD_OTHER);
    }
    actions.into_iter().map(|a| ClusterEvent::new(resource, a)).collect()
}

impl SchedulingQueue {
    pub fn new(profiles: HashMap<String, Arc<Framework>>, nominator: Arc<Nominator>, config: Config) -> Arc<Self> {
        let q = Arc::new(SchedulingQueue { state: Mutex::new(State::default()), notify: Notify::new(), config, profiles, nominator });
        q.nominator.attach(Arc::downgrade(&q));
        q
    }

    pub fn nominator(&self) -> &Arc<Nominator> {
        &self.nominator
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn backoff_time(&self, info: &mut QueuedPodInfo) -> Instant {
        if info.attempts == 0 {
            return info.timestamp;
        }
        *info.backoff_expiration.get_or_insert_with(|| info.timestamp + backoff_duration(&self.config, info.attempts))
    }

    fn is_backing_off(&self, info: &mut QueuedPodInfo) -> bool {
        self.backoff_time(info) > Instant::now()
    }

    fn remove_locked(st: &mut State, uid: &str) -> Option<QueuedPodInfo> {
        let e = st.entries.remove(uid)?;
        let priority = std::cmp::Reverse(e.info.pod().priority());
        match e.location {
            Location::Active => {
                st.active.remove(&((priority, e.info.timestamp, e.seq), uid.to_string()));
            }
            Location::Backoff | Location::ErrorBackoff => {
                let set = if e.location == Location::Backoff { &mut st.backoff } else { &mut st.error_backoff };
                set.retain(|(_, u)| u != uid);
            }
            Location::Unschedulable => {}
        }
        Some(e.info)
    }

    fn insert_locked(&self, st: &mut State, mut info: QueuedPodInfo, location: Location) {
        let uid = info.uid();
        Self::remove_locked(st, &uid);
        st.seq += 1;
        let seq = st.seq;
        let priority = std::cmp::Reverse(info.pod().priority());
        match location {
            Location::Active => {
                st.active.insert(((priority, info.timestamp, seq), uid.clone()));
            }
            Location::Backoff | Location::ErrorBackoff => {
                let at = self.backoff_time(&mut info);
                let set = if location == Location::Backoff { &mut st.backoff } else { &mut st.error_backoff };
                set.insert(((at, priority, info.timestamp, seq), uid.clone()));
            }
            Location::Unschedulable => {}
        }
        st.entries.insert(uid, Entry { info, location, seq });
    }

    fn framework_for(&self, pod: &Pod) -> Option<&Arc<Framework>> {
        self.profiles.get(pod.scheduler_name())
    }

    /// Runs PreEnqueue; a gated pod goes to the unschedulable pool instead.
    fn move_to_active_locked(&self, st: &mut State, mut info: QueuedPodInfo) -> bool {
        if let Some(fw) = self.framework_for(info.pod()) {
            let s = fw.run_pre_enqueue(info.pod());
            info.gated = !s.is_success();
            if info.gated {
                if let Some(p) = s.plugin() {
                    info.unschedulable_plugins = BTreeSet::from([p]);
                }
                self.insert_locked(st, info, Location::Unschedulable);
                return false;
            }
        }
        info.initial_attempt_timestamp.get_or_insert_with(Instant::now);
        self.insert_locked(st, info, Location::Active);
        true
    }

    fn move_to_backoff_locked(&self, st: &mut State, mut info: QueuedPodInfo) -> bool {
        if let Some(fw) = self.framework_for(info.pod()) {
            let s = fw.run_pre_enqueue(info.pod());
            info.gated = !s.is_success();
            if info.gated {
                if let Some(p) = s.plugin() {
                    info.unschedulable_plugins = BTreeSet::from([p]);
                }
                self.insert_locked(st, info, Location::Unschedulable);
                return false;
            }
        }
        let location = if info.unschedulable_plugins.is_empty() { Location::ErrorBackoff } else { Location::Backoff };
        self.insert_locked(st, info, location);
        true
    }

    /// A new unscheduled pod.
    pub fn add(&self, pod: Arc<Pod>) {
        let mut st = self.lock();
        let info = QueuedPodInfo::new(pod, Instant::now());
        self.nominator.add(info.pod_info.clone(), None);
        if self.move_to_active_locked(&mut st, info) {
            drop(st);
            self.notify.notify_one();
        }
    }

    /// Moves the pod to the active queue if it waits in backoff or unschedulable.
    pub fn activate(&self, pod: &Pod) {
        let mut st = self.lock();
        let uid = pod.uid().to_string();
        let Some(e) = st.entries.get(&uid) else { return };
        if e.location == Location::Active {
            return;
        }
        if let Some(info) = Self::remove_locked(&mut st, &uid) {
            if self.move_to_active_locked(&mut st, info) {
                drop(st);
                self.notify.notify_one();
            }
        }
    }

    /// An unscheduled pod changed.
    pub fn update(&self, old: &Pod, new: Arc<Pod>) {
        let mut st = self.lock();
        let uid = new.uid().to_string();
        let events = pod_scheduling_properties_change(&new, old);
        if st.in_flight.contains_key(&uid) {
            for e in events {
                self.record_event_locked(&mut st, e, Some(EventObject::Pod(Arc::new(old.clone()))), Some(EventObject::Pod(new.clone())));
            }
            return;
        }
        let location = st.entries.get(&uid).map(|e| e.location);
        match location {
            Some(Location::Active | Location::Backoff | Location::ErrorBackoff) => {
                let loc = location.unwrap_or(Location::Active);
                if let Some(mut info) = Self::remove_locked(&mut st, &uid) {
                    info.update(new);
                    self.nominator.update(old, info.pod_info.clone());
                    self.insert_locked(&mut st, info, loc);
                }
            }
            Some(Location::Unschedulable) => {
                let Some(mut info) = Self::remove_locked(&mut st, &uid) else { return };
                info.update(new.clone());
                self.nominator.update(old, info.pod_info.clone());
                let old_obj = EventObject::Pod(Arc::new(old.clone()));
                let new_obj = EventObject::Pod(new);
                for e in &events {
                    if let Strategy::AfterBackoff = self.worth_requeuing(&info, e, Some(&old_obj), Some(&new_obj)) {
                        let moved = self.requeue_locked(&mut st, info);
                        drop(st);
                        if moved {
                            self.notify.notify_one();
                        }
                        return;
                    }
                }
                self.insert_locked(&mut st, info, Location::Unschedulable);
            }
            None => {
                let info = QueuedPodInfo::new(new, Instant::now());
                self.nominator.add(info.pod_info.clone(), None);
                if self.move_to_active_locked(&mut st, info) {
                    drop(st);
                    self.notify.notify_one();
                }
            }
        }
    }

    /// An unscheduled pod went away (deleted, or bound elsewhere).
    pub fn delete(&self, uid: &str) {
        let mut st = self.lock();
        Self::remove_locked(&mut st, uid);
        self.nominator.remove(uid);
    }

    /// To backoff if still backing off, else to active; false if gated.
    fn requeue_locked(&self, st: &mut State, mut info: QueuedPodInfo) -> bool {
        if self.is_backing_off(&mut info) {
            self.move_to_backoff_locked(st, info)
        } else {
            self.move_to_active_locked(st, info)
        }
    }

    /// Upstream's `isPodWorthRequeuing`: asks the hints of the plugins that rejected the pod.
    fn worth_requeuing(&self, info: &QueuedPodInfo, event: &ClusterEvent, old: Option<&EventObject>, new: Option<&EventObject>) -> Strategy {
        if info.unschedulable_plugins.is_empty() {
            return Strategy::AfterBackoff;
        }
        if event.is_wildcard() {
            return match new.and_then(EventObject::pod) {
                Some(p) if p.uid() != info.pod().uid() => Strategy::Skip,
                _ => Strategy::AfterBackoff,
            };
        }
        let Some(fw) = self.framework_for(info.pod()) else { return Strategy::AfterBackoff };
        for (plugin, registered) in fw.enqueue_extensions() {
            if !info.unschedulable_plugins.contains(plugin.name()) {
                continue;
            }
            let interested = match &registered {
                None => true,
                Some(events) => events.iter().any(|e| e.matches(event)),
            };
            if interested && plugin.queueing_hint(event, info.pod(), old, new) == QueueingHint::Queue {
                return Strategy::AfterBackoff;
            }
        }
        Strategy::Skip
    }

    fn record_event_locked(&self, st: &mut State, event: ClusterEvent, old: Option<EventObject>, new: Option<EventObject>) {
        if st.in_flight.is_empty() {
            return;
        }
        st.next_event += 1;
        let n = st.next_event;
        st.events.push((n, event, old, new));
    }

    /// Moves unschedulable pods the event may help (all of them if `pre_check` is None).
    pub fn move_all_to_active_or_backoff(&self, event: ClusterEvent, old: Option<EventObject>, new: Option<EventObject>, pre_check: Option<&dyn Fn(&Pod) -> bool>) {
        let mut st = self.lock();
        let candidates: Vec<String> = st
            .entries
            .iter()
            .filter(|(_, e)| e.location == Location::Unschedulable)
            .filter(|(_, e)| pre_check.is_none_or(|f| f(e.info.pod())))
            .filter(|(_, e)| !(e.info.gated && e.info.unschedulable_plugins.contains("SchedulingGates")))
            .map(|(uid, _)| uid.clone())
            .collect();
        let mut activated = false;
        for uid in candidates {
            let Some(info) = st.entries.get(&uid).map(|e| e.info.clone()) else { continue };
            if let Strategy::Skip = self.worth_requeuing(&info, &event, old.as_ref(), new.as_ref()) {
                continue;
            }
            if let Some(info) = Self::remove_locked(&mut st, &uid) {
                activated |= self.requeue_locked(&mut st, info);
            }
        }
        self.record_event_locked(&mut st, event, old, new);
        drop(st);
        if activated {
            self.notify.notify_one();
        }
    }

    /// A pod was bound (or appeared bound): it may satisfy affinity or spreading of others.
    pub fn assigned_pod_added(&self, pod: Arc<Pod>) {
        self.move_all_to_active_or_backoff(ClusterEvent::ASSIGNED_POD_ADD, None, Some(EventObject::Pod(pod)), None);
    }

    /// A bound pod changed.
    pub fn assigned_pod_updated(&self, old: Arc<Pod>, new: Arc<Pod>) {
        for event in pod_scheduling_properties_change(&new, &old) {
            self.move_all_to_active_or_backoff(event, Some(EventObject::Pod(old.clone())), Some(EventObject::Pod(new.clone())), None);
        }
    }

    /// Puts back a pod whose attempt failed. Rejected pods wait in the unschedulable pool
    /// unless an event during the attempt may have helped; errors go to backoff.
    pub fn add_unschedulable_if_not_present(&self, mut info: QueuedPodInfo) {
        let mut st = self.lock();
        let uid = info.uid();
        let start = st.in_flight.get(&uid).copied();
        Self::done_locked(&mut st, &uid);
        if st.entries.contains_key(&uid) {
            return;
        }
        info.timestamp = Instant::now();
        info.backoff_expiration = None;
        let strategy = if info.unschedulable_plugins.is_empty() {
            Strategy::AfterBackoff
        } else {
            let since = start.unwrap_or(u64::MAX);
            let events: Vec<_> = st.events.iter().filter(|(n, ..)| *n > since).map(|(_, e, o, n)| (*e, o.clone(), n.clone())).collect();
            if events.iter().any(|(e, o, n)| matches!(self.worth_requeuing(&info, e, o.as_ref(), n.as_ref()), Strategy::AfterBackoff)) { Strategy::AfterBackoff } else { Strategy::Skip }
        };
        let activated = match strategy {
            Strategy::Skip => {
                self.insert_locked(&mut st, info, Location::Unschedulable);
                false
            }
            Strategy::AfterBackoff => self.requeue_locked(&mut st, info),
        };
        Self::trim_events_locked(&mut st);
        drop(st);
        if activated {
            self.notify.notify_one();
        }
    }

    fn done_locked(st: &mut State, uid: &str) {
        st.in_flight.remove(uid);
    }

    fn trim_events_locked(st: &mut State) {
        match st.in_flight.values().min() {
            None => st.events.clear(),
            Some(&oldest) => st.events.retain(|(n, ..)| *n > oldest),
        }
    }

    /// The pod's attempt is over (bound, or handed back).
    pub fn done(&self, uid: &str) {
        let mut st = self.lock();
        Self::done_locked(&mut st, uid);
        Self::trim_events_locked(&mut st);
    }

    pub fn scheduling_cycle(&self) -> u64 {
        self.lock().scheduling_cycle
    }

    fn try_pop_locked(&self, st: &mut State) -> Option<QueuedPodInfo> {
        let uid = match st.active.iter().next() {
            Some((_, uid)) => uid.clone(),
            None => st.backoff.iter().next().map(|(_, uid)| uid.clone())?,
        };
        let mut info = Self::remove_locked(st, &uid)?;
        info.attempts += 1;
        info.backoff_expiration = None;
        info.unschedulable_plugins.clear();
        st.scheduling_cycle += 1;
        st.in_flight.insert(uid, st.next_event);
        Some(info)
    }

    /// Waits for the next pod to schedule; None once closed.
    pub async fn pop(&self) -> Option<QueuedPodInfo> {
        loop {
            let notified = self.notify.notified();
            {
                let mut st = self.lock();
                if st.closed {
                    return None;
                }
                if let Some(info) = self.try_pop_locked(&mut st) {
                    return Some(info);
                }
            }
            notified.await;
        }
    }

    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_waiters();
    }

    /// Moves pods whose backoff is over to the active queue.
    pub fn flush_backoff_completed(&self) {
        let mut st = self.lock();
        let now = Instant::now();
        let mut due: Vec<String> = Vec::new();
        for set in [&st.backoff, &st.error_backoff] {
            due.extend(set.iter().take_while(|((at, ..), _)| *at <= now).map(|(_, uid)| uid.clone()));
        }
        let mut activated = false;
        for uid in due {
            if let Some(info) = Self::remove_locked(&mut st, &uid) {
                self.insert_locked(&mut st, info, Location::Active);
                activated = true;
            }
        }
        drop(st);
        if activated {
            self.notify.notify_one();
        }
    }

    /// Moves pods that waited in the unschedulable pool longer than five minutes.
    pub fn flush_unschedulable_leftover(&self) {
        let now = Instant::now();
        let old: Vec<Arc<Pod>> = {
            let st = self.lock();
            st.entries.values().filter(|e| e.location == Location::Unschedulable && now.duration_since(e.info.timestamp) > self.config.max_in_unschedulable).map(|e| e.info.pod().clone()).collect()
        };
        if old.is_empty() {
            return;
        }
        let uids: std::collections::HashSet<String> = old.iter().map(|p| p.uid().to_string()).collect();
        self.move_all_to_active_or_backoff(ClusterEvent::UNSCHEDULABLE_TIMEOUT, None, None, Some(&|p: &Pod| uids.contains(p.uid())));
    }

    /// Runs the periodic flushes (every second and every 30 seconds) until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut backoff = tokio::time::interval(Duration::from_secs(1));
        let mut leftover = tokio::time::interval(Duration::from_secs(30));
        loop {
            tokio::select! {
                _ = stop.cancelled() => {
                    self.close();
                    return;
                }
                _ = backoff.tick() => self.flush_backoff_completed(),
                _ = leftover.tick() => self.flush_unschedulable_leftover(),
            }
        }
    }

    /// Where the pod with `uid` waits (tests and debugging).
    pub fn location(&self, uid: &str) -> Option<Location> {
        self.lock().entries.get(uid).map(|e| e.location)
    }

    /// Pods per sub-queue: (active, backoff, unschedulable).
    pub fn lengths(&self) -> (usize, usize, usize) {
        let st = self.lock();
        let unsched = st.entries.values().filter(|e| e.location == Location::Unschedulable).count();
        (st.active.len(), st.backoff.len() + st.error_backoff.len(), unsched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Profile;
    use crate::framework::interface::Handle;
    use crate::framework::listers::StaticListers;
    use crate::plugins::registry;
    use crate::testing::{node, pod};

    fn queue() -> Arc<SchedulingQueue> {
        let nominator = Nominator::new();
        let handle = Arc::new(Handle { client: None, listers: Arc::new(StaticListers::default()), nominator: Some(nominator.clone()), events: None });
        let fw = Arc::new(Framework::new(&Profile::default_profile(), &registry(), handle).expect("framework"));
        SchedulingQueue::new(HashMap::from([("default-scheduler".to_string(), fw)]), nominator, Config::default())
    }

    #[test]
    fn backoff_doubles_to_the_cap() {
        let c = Config::default();
        let got: Vec<u64> = (1..=6).map(|a| backoff_duration(&c, a).as_secs()).collect();
        assert_eq!(got, vec![1, 2, 4, 8, 10, 10]);
    }

    #[tokio::test(start_paused = true)]
    async fn active_order_is_priority_then_time() {
        let q = queue();
        q.add(Arc::new(pod("low").priority(1).build()));
        tokio::time::advance(Duration::from_millis(1)).await;
        q.add(Arc::new(pod("high").priority(10).build()));
        tokio::time::advance(Duration::from_millis(1)).await;
        q.add(Arc::new(pod("low2").priority(1).build()));
        let mut order = Vec::new();
        for _ in 0..3 {
            let p = q.pop().await.expect("pod");
            order.push(p.pod().name().to_string());
            q.done(p.pod().uid());
        }
        assert_eq!(order, vec!["high", "low", "low2"]);
    }

    #[tokio::test(start_paused = true)]
    async fn unschedulable_pods_move_on_matching_events() {
        let q = queue();
        q.add(Arc::new(pod("p").req("2", "").build()));
        let mut info = q.pop().await.expect("pod");
        info.unschedulable_plugins.insert("NodeResourcesFit");
        q.add_unschedulable_if_not_present(info);
        assert_eq!(q.location("uid-p"), Some(Location::Unschedulable));
        // A node too small for the pod does not help.
        let small = EventObject::Node(Arc::new(node("n").allocatable("1", "1Gi", "10").build()));
        q.move_all_to_active_or_backoff(ClusterEvent::new(EventResource::Node, ActionType::ADD), None, Some(small), None);
        assert_eq!(q.location("uid-p"), Some(Location::Unschedulable));
        // A label change is not an event the plugin registered.
        let big = EventObject::Node(Arc::new(node("n").allocatable("4", "1Gi", "10").build()));
        q.move_all_to_active_or_backoff(ClusterEvent::new(EventResource::Node, ActionType::UPDATE_NODE_LABEL), None, Some(big.clone()), None);
        assert_eq!(q.location("uid-p"), Some(Location::Unschedulable));
        // A big enough node: back to backoff (attempt 1 backs off 1s), then active.
        q.move_all_to_active_or_backoff(ClusterEvent::new(EventResource::Node, ActionType::ADD), None, Some(big), None);
        assert_eq!(q.location("uid-p"), Some(Location::Backoff));
        tokio::time::advance(Duration::from_millis(1100)).await;
        q.flush_backoff_completed();
        assert_eq!(q.location("uid-p"), Some(Location::Active));
    }

    #[tokio::test(start_paused = true)]
    async fn events_during_the_attempt_requeue_immediately() {
        let q = queue();
        q.add(Arc::new(pod("p").req("2", "").build()));
        let mut info = q.pop().await.expect("pod");
        let big = EventObject::Node(Arc::new(node("n").allocatable("4", "1Gi", "10").build()));
        q.move_all_to_active_or_backoff(ClusterEvent::new(EventResource::Node, ActionType::ADD), None, Some(big), None);
        info.unschedulable_plugins.insert("NodeResourcesFit");
        q.add_unschedulable_if_not_present(info);
        assert_eq!(q.location("uid-p"), Some(Location::Backoff));
    }

    #[tokio::test(start_paused = true)]
    async fn leftovers_flush_after_five_minutes_and_errors_back_off() {
        let q = queue();
        q.add(Arc::new(pod("p").build()));
        let mut info = q.pop().await.expect("pod");
        info.unschedulable_plugins.insert("TaintToleration");
        q.add_unschedulable_if_not_present(info);
        tokio::time::advance(Duration::from_secs(200)).await;
        q.flush_unschedulable_leftover();
        assert_eq!(q.location("uid-p"), Some(Location::Unschedulable));
        tokio::time::advance(Duration::from_secs(101)).await;
        q.flush_unschedulable_leftover();
        assert_eq!(q.location("uid-p"), Some(Location::Active));
        let info = q.pop().await.expect("pod");
        q.add_unschedulable_if_not_present(info);
        assert_eq!(q.location("uid-p"), Some(Location::ErrorBackoff));
    }

    #[tokio::test(start_paused = true)]
    async fn gated_pods_wait_until_their_gates_are_removed() {
        let q = queue();
        let gated = pod("g").spec("schedulingGates", serde_json::json!([{"name": "x"}])).build();
        q.add(Arc::new(gated.clone()));
        assert_eq!(q.location("uid-g"), Some(Location::Unschedulable));
        q.update(&gated, Arc::new(pod("g").build()));
        assert_eq!(q.location("uid-g"), Some(Location::Active));
    }

    #[tokio::test(start_paused = true)]
    async fn pop_falls_back_to_backoff_when_idle() {
        let q = queue();
        q.add(Arc::new(pod("p").build()));
        let mut info = q.pop().await.expect("pod");
        info.unschedulable_plugins.insert("NodeResourcesFit");
        q.activate(info.pod());
        q.add_unschedulable_if_not_present(info.clone());
        q.move_all_to_active_or_backoff(ClusterEvent::ASSIGNED_POD_DELETE, Some(EventObject::Pod(Arc::new(pod("x").node("n").build()))), None, None);
        assert_eq!(q.location("uid-p"), Some(Location::Backoff));
        let again = q.pop().await.expect("pod from backoff");
        assert_eq!(again.attempts, 2);
    }
}
