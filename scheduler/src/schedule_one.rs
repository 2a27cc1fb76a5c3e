//! One scheduling attempt, as upstream's `schedule_one.go` runs it: pop a pod, filter the
//! nodes (stopping after enough feasible ones), score them, pick the best (random among
//! equals), assume it on the node, reserve, and bind in the background. A pod that fits
//! nowhere gets preemption, a `FailedScheduling` event and a `PodScheduled=False`
//! condition with the reasons per node.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::cache::Cache;
use crate::framework::cycle_state::CycleState;
use crate::framework::interface::{ClusterEvent, EventObject, NominatingInfo};
use crate::framework::listers::Listers;
use crate::framework::node_info::{NodeInfo, PodExt, PodInfo};
use crate::framework::runtime::{Diagnosis, FitError, Framework, NodePluginScores};
use crate::framework::status::{Code, Status};
use crate::queue::{QueuedPodInfo, SchedulingQueue};

/// Below this many nodes, all are filtered.
pub const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// The adaptive percentage never goes below this.
pub const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: i64 = 5;
pub const ERR_NO_NODES_AVAILABLE: &str = "no nodes available to schedule pods";

/// Upstream's `numFeasibleNodesToFind`: all nodes below 100; otherwise the configured
/// percentage, or adaptively 50% minus 1% per 125 nodes (at least 5%), but at least 100.
pub fn num_feasible_nodes_to_find(profile_percentage: Option<i32>, global_percentage: i32, num_all_nodes: usize) -> usize {
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND {
        return num_all_nodes;
    }
    let mut percentage = i64::from(profile_percentage.unwrap_or(global_percentage));
    if percentage == 0 {
        percentage = (50 - num_all_nodes as i64 / 125).max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND);
    }
    let n = (num_all_nodes as i64 * percentage / 100) as usize;
    n.max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Where a pod goes and how many nodes were looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleResult {
    pub suggested_host: String,
    pub evaluated_nodes: usize,
    pub feasible_nodes: usize,
}

/// Why `schedule_pod` found no node.
#[derive(Debug, Clone)]
pub enum ScheduleError {
    NoNodesAvailable,
    Fit(FitError),
    Internal(Status),
}

/// Picks a highest-scoring node, uniformly at random among ties.
pub fn select_host(scores: &[NodePluginScores], rng: &mut impl rand::Rng) -> Option<String> {
    let max = scores.iter().map(|s| s.total).max()?;
    let best: Vec<&NodePluginScores> = scores.iter().filter(|s| s.total == max).collect();
    let i = rng.random_range(0..best.len());
    Some(best[i].name.clone())
}

/// A failed attempt: its status and, when no node fit, the per-node reasons.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: Status,
    pub fit: Option<FitError>,
    pub nominating: NominatingInfo,
}

impl Failure {
    pub fn message(&self) -> String {
        match &self.fit {
            Some(f) => f.to_string(),
            None => self.status.message(),
        }
    }
}

/// The scheduler: cache, queue and profiles.
pub struct Scheduler {
    pub cache: Arc<Cache>,
    pub queue: Arc<SchedulingQueue>,
    pub profiles: HashMap<String, Arc<Framework>>,
    pub percentage_of_nodes_to_score: i32,
    pub client: Option<kube::Client>,
    pub listers: Arc<dyn Listers>,
    next_start_node_index: AtomicUsize,
}

impl Scheduler {
    pub fn new(cache: Arc<Cache>, queue: Arc<SchedulingQueue>, profiles: HashMap<String, Arc<Framework>>, percentage_of_nodes_to_score: i32, client: Option<kube::Client>, listers: Arc<dyn Listers>) -> Self {
        Scheduler { cache, queue, profiles, percentage_of_nodes_to_score, client, listers, next_start_node_index: AtomicUsize::new(0) }
    }

    /// Filters, scores and picks a node for `pod` (no side effects besides the start index).
    pub fn schedule_pod(&self, fw: &Framework, state: &mut CycleState, pod: &PodInfo) -> Result<ScheduleResult, ScheduleError> {
        let num_nodes = state.snapshot().len();
        if num_nodes == 0 {
            return Err(ScheduleError::NoNodesAvailable);
        }
        let (feasible, diagnosis) = self.find_nodes_that_fit_pod(fw, state, pod).map_err(ScheduleError::Internal)?;
        if feasible.is_empty() {
            return Err(ScheduleError::Fit(FitError { num_all_nodes: num_nodes, diagnosis }));
        }
        if feasible.len() == 1 {
            return Ok(ScheduleResult { suggested_host: feasible[0].name().to_string(), evaluated_nodes: 1 + diagnosis.node_to_status.len(), feasible_nodes: 1 });
        }
        let scores = prioritize_nodes(fw, state, pod, &feasible).map_err(ScheduleError::Internal)?;
        let host = select_host(&scores, &mut rand::rng()).ok_or_else(|| ScheduleError::Internal(Status::error("empty priorityList")))?;
        Ok(ScheduleResult { suggested_host: host, evaluated_nodes: feasible.len() + diagnosis.node_to_status.len(), feasible_nodes: feasible.len() })
    }

    fn find_nodes_that_fit_pod(&self, fw: &Framework, state: &mut CycleState, pod: &PodInfo) -> Result<(Vec<Arc<NodeInfo>>, Diagnosis), Status> {
        let mut diagnosis = Diagnosis::default();
        let snapshot = state.snapshot().clone();
        let (pre, s, plugins_with_nodes) = fw.run_pre_filter(state, pod);
        diagnosis.unschedulable_plugins = plugins_with_nodes.clone();
        if !s.is_success() {
            if !s.is_rejected() {
                return Err(s);
            }
            diagnosis.node_to_status.set_absent(s.clone());
            diagnosis.pre_filter_msg = s.message();
            diagnosis.add_plugin_status(&s);
            return Ok((Vec::new(), diagnosis));
        }
        let nominated = pod.pod.nominated_node_name();
        if !nominated.is_empty() {
            if let Some(node) = snapshot.get(nominated) {
                let feasible = self.find_nodes_that_pass_filters(fw, state, pod, &mut diagnosis, std::slice::from_ref(node))?;
                if !feasible.is_empty() {
                    return Ok((feasible, diagnosis));
                }
            }
        }
        let nodes: Vec<Arc<NodeInfo>> = match &pre.node_names {
            None => snapshot.list().to_vec(),
            Some(_) => {
                let names: Vec<&str> = plugins_with_nodes.iter().copied().collect();
                diagnosis.node_to_status.set_absent(Status::unresolvable(format!("node(s) didn't satisfy plugin(s) [{}]", names.join(" "))));
                pre.node_names.iter().flatten().filter_map(|n| snapshot.get(n).cloned()).collect()
            }
        };
        let feasible = self.find_nodes_that_pass_filters(fw, state, pod, &mut diagnosis, &nodes)?;
        Ok((feasible, diagnosis))
    }

    fn find_nodes_that_pass_filters(&self, fw: &Framework, state: &CycleState, pod: &PodInfo, diagnosis: &mut Diagnosis, nodes: &[Arc<NodeInfo>]) -> Result<Vec<Arc<NodeInfo>>, Status> {
        let all = nodes.len();
        if all == 0 {
            return Ok(Vec::new());
        }
        let mut to_find = num_feasible_nodes_to_find(fw.percentage_of_nodes_to_score(), self.percentage_of_nodes_to_score, all);
        if !fw.has_score_plugins() {
            to_find = 1;
        }
        let start = self.next_start_node_index.load(Ordering::Relaxed) % all;
        let mut feasible = Vec::with_capacity(to_find.min(all));
        let mut processed = 0;
        if !fw.has_filter_plugins() {
            feasible.extend((0..to_find.min(all)).map(|i| nodes[(start + i) % all].clone()));
        } else {
            for i in 0..all {
                let node = &nodes[(start + i) % all];
                let s = fw.run_filter_with_nominated_pods(state, pod, node);
                processed += 1;
                if s.code() == Code::Error {
                    self.advance_start(processed, all);
                    return Err(s);
                }
                if s.is_success() {
                    feasible.push(node.clone());
                    if feasible.len() >= to_find {
                        break;
                    }
                } else {
                    diagnosis.add_plugin_status(&s);
                    diagnosis.node_to_status.set(node.name().to_string(), s);
                }
            }
        }
        self.advance_start(processed.max(feasible.len()), all);
        Ok(feasible)
    }

    fn advance_start(&self, processed: usize, all: usize) {
        let cur = self.next_start_node_index.load(Ordering::Relaxed);
        self.next_start_node_index.store((cur + processed) % all.max(1), Ordering::Relaxed);
    }

    /// The scheduling cycle: find a host, assume the pod there, reserve.
    pub fn scheduling_cycle(&self, fw: &Framework, state: &mut CycleState, info: &QueuedPodInfo) -> Result<(ScheduleResult, Arc<Pod>), Failure> {
        let pod = &info.pod_info;
        let clear = NominatingInfo::Override(String::new());
        let result = match self.schedule_pod(fw, state, pod) {
            Ok(r) => r,
            Err(ScheduleError::NoNodesAvailable) => return Err(Failure { status: Status::unresolvable(ERR_NO_NODES_AVAILABLE), fit: None, nominating: clear }),
            Err(ScheduleError::Internal(s)) => return Err(Failure { status: s, fit: None, nominating: clear }),
            Err(ScheduleError::Fit(mut fit)) => {
                if !fw.has_post_filter_plugins() {
                    return Err(Failure { status: Status::new(Code::Unschedulable, Vec::<String>::new()), fit: Some(fit), nominating: NominatingInfo::Noop });
                }
                let (r, s) = fw.run_post_filter(state, pod, &fit.diagnosis.node_to_status);
                fit.diagnosis.post_filter_msg = s.message();
                if s.code() == Code::Error {
                    tracing::error!(pod = %format!("{}/{}", pod.pod.namespace(), pod.pod.name()), status = %s, "running PostFilter plugins");
                }
                let nominating = r.map(|r| r.nominating_info).unwrap_or_default();
                return Err(Failure { status: Status::new(Code::Unschedulable, Vec::<String>::new()), fit: Some(fit), nominating });
            }
        };
        let mut assumed = Pod::clone(&pod.pod);
        assumed.spec.get_or_insert_with(Default::default).node_name = Some(result.suggested_host.clone());
        let assumed = Arc::new(assumed);
        if let Err(e) = self.cache.assume_pod(assumed.clone()) {
            return Err(Failure { status: Status::error(e.to_string()), fit: None, nominating: clear });
        }
        let assumed_info = PodInfo::new(assumed.clone());
        let s = fw.run_reserve(state, &assumed_info, &result.suggested_host);
        if !s.is_success() {
            fw.run_unreserve(state, &assumed_info, &result.suggested_host);
            self.cache.forget_pod(assumed.uid());
            let fit = s.is_rejected().then(|| {
                let mut d = Diagnosis::default();
                d.add_plugin_status(&s);
                d.node_to_status.set(result.suggested_host.clone(), s.clone());
                FitError { num_all_nodes: 1, diagnosis: d }
            });
            return Err(Failure { status: s, fit, nominating: clear });
        }
        Ok((result, assumed))
    }

    /// Pops one pod and schedules it; false once the queue is closed.
    pub async fn schedule_one(self: &Arc<Self>) -> bool {
        let Some(info) = self.queue.pop().await else { return false };
        let pod = info.pod().clone();
        let key = format!("{}/{}", pod.namespace(), pod.name());
        let Some(fw) = self.profiles.get(pod.scheduler_name()).cloned() else {
            tracing::error!(pod = %key, scheduler = pod.scheduler_name(), "profile not found for scheduler name");
            self.queue.done(pod.uid());
            return true;
        };
        if pod.is_terminating() {
            if let Some(ev) = &fw.handle().events {
                ev.record(&pod, None, "Warning", "FailedScheduling", "Scheduling", format!("skip schedule deleting pod: {key}"));
            }
            self.queue.done(pod.uid());
            return true;
        }
        if self.cache.is_assumed(pod.uid()) {
            self.queue.done(pod.uid());
            return true;
        }
        tracing::debug!(pod = %key, attempts = info.attempts, "attempting to schedule pod");
        let mut state = CycleState::new(self.cache.snapshot());
        match self.scheduling_cycle(&fw, &mut state, &info) {
            Err(failure) => self.handle_failure(&fw, info, failure).await,
            Ok((result, assumed)) => {
                let this = self.clone();
                tokio::spawn(async move { this.binding_cycle(fw, state, info, result, assumed).await });
            }
        }
        true
    }

    async fn binding_cycle(self: Arc<Self>, fw: Arc<Framework>, mut state: CycleState, info: QueuedPodInfo, result: ScheduleResult, assumed: Arc<Pod>) {
        self.queue.done(assumed.uid());
        let s = Framework::run_bind(fw.bind_plugins().to_vec(), assumed.clone(), result.suggested_host.clone()).await;
        if s.is_success() {
            self.cache.finish_binding(assumed.uid());
            tracing::info!(pod = %format!("{}/{}", assumed.namespace(), assumed.name()), node = %result.suggested_host, evaluated = result.evaluated_nodes, feasible = result.feasible_nodes, "successfully bound pod to node");
            if let Some(ev) = &fw.handle().events {
                ev.record(&assumed, None, "Normal", "Scheduled", "Binding", format!("Successfully assigned {}/{} to {}", assumed.namespace(), assumed.name(), result.suggested_host));
            }
            return;
        }
        let assumed_info = PodInfo::new(assumed.clone());
        fw.run_unreserve(&mut state, &assumed_info, &result.suggested_host);
        self.cache.forget_pod(assumed.uid());
        let uid = assumed.uid().to_string();
        self.queue.move_all_to_active_or_backoff(ClusterEvent::ASSIGNED_POD_DELETE, Some(EventObject::Pod(assumed.clone())), None, Some(&|p: &Pod| p.uid() != uid));
        self.handle_failure(&fw, info, Failure { status: s, fit: None, nominating: NominatingInfo::Override(String::new()) }).await;
    }

    /// Requeues the pod and tells the user why it did not schedule.
    pub async fn handle_failure(&self, fw: &Framework, mut info: QueuedPodInfo, failure: Failure) {
        let pod = info.pod().clone();
        let key = format!("{}/{}", pod.namespace(), pod.name());
        let rejected = failure.status.is_rejected();
        let reason = if rejected { "Unschedulable" } else { "SchedulerError" };
        let message = failure.message();
        match &failure.fit {
            Some(fit) => {
                info.unschedulable_plugins = fit.diagnosis.unschedulable_plugins.clone();
                tracing::info!(pod = %key, reason = %message, "unable to schedule pod; no fit; waiting");
            }
            None if failure.status.message() == ERR_NO_NODES_AVAILABLE => tracing::info!(pod = %key, "unable to schedule pod; no nodes are registered to the cluster; waiting"),
            None => tracing::warn!(pod = %key, error = %message, "error scheduling pod; retrying"),
        }
        match self.listers.pod(pod.namespace(), pod.name()) {
            Some(latest) if latest.uid() == pod.uid() && latest.node_name().is_empty() => {
                info.update(latest);
                let pod_info = info.pod_info.clone();
                self.queue.add_unschedulable_if_not_present(info);
                match &failure.nominating {
                    NominatingInfo::Override(n) if n.is_empty() => self.queue.nominator().remove(pod.uid()),
                    NominatingInfo::Override(n) => self.queue.nominator().add(pod_info, Some(n)),
                    NominatingInfo::Noop => {}
                }
            }
            Some(latest) if latest.uid() == pod.uid() => {
                tracing::info!(pod = %key, node = latest.node_name(), "pod has been assigned to node; abort adding it back to queue");
                self.queue.done(pod.uid());
            }
            _ => {
                tracing::info!(pod = %key, "pod doesn't exist in informer cache");
                self.queue.done(pod.uid());
            }
        }
        if let Some(ev) = &fw.handle().events {
            ev.record(&pod, None, "Warning", "FailedScheduling", "Scheduling", crate::events::truncate_note(&message));
        }
        if let Err(e) = self.update_pod_status(&pod, reason, &message, &failure.nominating).await {
            tracing::warn!(pod = %key, error = %e, "error updating pod");
        }
    }

    /// Sets PodScheduled=False (and the nominated node) through the status subresource,
    /// unless nothing would change.
    async fn update_pod_status(&self, pod: &Pod, reason: &str, message: &str, nominating: &NominatingInfo) -> Result<(), kube::Error> {
        let Some(client) = &self.client else { return Ok(()) };
        let existing = pod.status.as_ref().and_then(|s| s.conditions.as_ref()).into_iter().flatten().find(|c| c.type_ == "PodScheduled");
        let unchanged_condition = existing.is_some_and(|c| c.status == "False" && c.reason.as_deref() == Some(reason) && c.message.as_deref() == Some(message));
        let nnn_update = match nominating {
            NominatingInfo::Override(n) => n != pod.nominated_node_name(),
            NominatingInfo::Noop => false,
        };
        if unchanged_condition && !nnn_update {
            return Ok(());
        }
        let transition = match existing {
            Some(c) if c.status == "False" => c.last_transition_time.clone(),
            _ => None,
        }
        .unwrap_or_else(|| Time(jiff::Timestamp::now()));
        let mut status = json!({"conditions": [{
            "type": "PodScheduled", "status": "False", "reason": reason, "message": message,
            "lastProbeTime": null, "lastTransitionTime": transition,
        }]});
        if let (true, NominatingInfo::Override(n)) = (nnn_update, nominating) {
            status["nominatedNodeName"] = if n.is_empty() { serde_json::Value::Null } else { json!(n) };
        }
        let api: Api<Pod> = Api::namespaced(client.clone(), pod.namespace());
        let patch = json!({"status": status});
        api.patch_status(pod.name(), &PatchParams::default(), &Patch::Strategic(&patch)).await.map(|_| ())
    }
}

/// Runs PreScore and Score on the feasible nodes.
pub fn prioritize_nodes(fw: &Framework, state: &mut CycleState, pod: &PodInfo, nodes: &[Arc<NodeInfo>]) -> Result<Vec<NodePluginScores>, Status> {
    if !fw.has_score_plugins() {
        return Ok(nodes.iter().map(|n| NodePluginScores { name: n.name().to_string(), scores: Vec::new(), total: 1 }).collect());
    }
    let s = fw.run_pre_score(state, pod, nodes);
    if !s.is_success() {
        return Err(s);
    }
    fw.run_score(state, pod, nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feasible_node_counts_like_upstream() {
        // (profile %, global %, nodes, expected)
        let cases = [
            (None, 0, 10, 10),
            (None, 0, 99, 99),
            (None, 0, 100, 100),
            (None, 0, 1000, 420),
            (None, 0, 5000, 500),
            (None, 0, 6000, 300),
            (None, 0, 10000, 500),
            (None, 30, 1000, 300),
            (Some(10), 30, 1000, 100),
            (Some(1), 0, 1000, 100),
            (Some(100), 0, 1000, 1000),
        ];
        for (p, g, n, want) in cases {
            assert_eq!(num_feasible_nodes_to_find(p, g, n), want, "{p:?} {g} {n}");
        }
    }

    #[test]
    fn select_host_picks_among_the_best() {
        let s = |n: &str, t: i64| NodePluginScores { name: n.into(), scores: Vec::new(), total: t };
        let scores = vec![s("a", 10), s("b", 30), s("c", 30), s("d", 5)];
        let mut seen = std::collections::BTreeSet::new();
        let mut rng = rand::rng();
        for _ in 0..200 {
            seen.insert(select_host(&scores, &mut rng).expect("host"));
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec!["b", "c"]);
        assert_eq!(select_host(&[], &mut rng), None);
    }
}
