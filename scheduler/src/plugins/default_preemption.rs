//! DefaultPreemption: when no node fits, find nodes where evicting lower-priority pods
//! (respecting PodDisruptionBudgets where possible) would make room, pick the best by
//! upstream's criteria, nominate the pod there and evict the victims asynchronously.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use ironkube_machinery::selectors::label::Selector;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde::Deserialize;
use serde_json::json;

use crate::framework::cycle_state::CycleState;
use crate::framework::interface::{ClusterEvent, Handle, NominatingInfo, Plugin, PostFilterPlugin, PostFilterResult, PreEnqueuePlugin};
use crate::framework::node_info::{NodeInfo, PodExt, PodInfo};
use crate::framework::runtime::{Diagnosis, FitError, Framework, NodeToStatus};
use crate::framework::status::{Code, Status};

pub const NAME: &str = "DefaultPreemption";
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Args {
    #[serde(default = "default_percentage")]
    min_candidate_nodes_percentage: i32,
    #[serde(default = "default_absolute")]
    min_candidate_nodes_absolute: i32,
}

fn default_percentage() -> i32 {
    10
}

fn default_absolute() -> i32 {
    100
}

/// A node where preemption would make the pod fit, and the pods to evict there.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub node: String,
    pub victims: Vec<Arc<Pod>>,
    pub num_pdb_violations: i64,
}

pub struct DefaultPreemption {
    min_percentage: i32,
    min_absolute: i32,
    handle: Arc<Handle>,
    /// Preemptors whose victims are still being evicted.
    preempting: Arc<Mutex<HashSet<String>>>,
}

impl DefaultPreemption {
    pub fn new(args: Option<&serde_json::Value>, handle: &Arc<Handle>) -> Result<Arc<dyn Plugin>, String> {
        let args: Args = match args {
            Some(v) if !v.is_null() => serde_json::from_value(v.clone()).map_err(|e| format!("decoding DefaultPreemptionArgs: {e}"))?,
            _ => Args { min_candidate_nodes_percentage: 10, min_candidate_nodes_absolute: 100 },
        };
        if !(0..=100).contains(&args.min_candidate_nodes_percentage) {
            return Err(format!("minCandidateNodesPercentage: Invalid value: {}: not in valid range [0, 100]", args.min_candidate_nodes_percentage));
        }
        if args.min_candidate_nodes_absolute < 0 {
            return Err(format!("minCandidateNodesAbsolute: Invalid value: {}: not in valid range [0, inf)", args.min_candidate_nodes_absolute));
        }
        Ok(Arc::new(DefaultPreemption {
            min_percentage: args.min_candidate_nodes_percentage,
            min_absolute: args.min_candidate_nodes_absolute,
            handle: handle.clone(),
            preempting: Arc::default(),
        }))
    }

    fn num_candidates(&self, num_nodes: i32) -> i32 {
        (num_nodes * self.min_percentage / 100).max(self.min_absolute).min(num_nodes)
    }

    fn eligible(&self, pod: &Pod, statuses: &NodeToStatus, state: &CycleState) -> Result<(), String> {
        if pod.spec.as_ref().and_then(|s| s.preemption_policy.as_deref()) == Some("Never") {
            return Err("not eligible due to preemptionPolicy=Never.".into());
        }
        let nominated = pod.nominated_node_name();
        if !nominated.is_empty() {
            if statuses.get(nominated).code() == Code::UnschedulableAndUnresolvable {
                return Ok(());
            }
            if let Some(info) = state.snapshot().get(nominated) {
                if info.pods.iter().any(|p| p.pod.priority() < pod.priority() && terminating_by_preemption(&p.pod)) {
                    return Err("not eligible due to a terminating pod on the nominated node.".into());
                }
            }
        }
        Ok(())
    }

    /// Upstream's `SelectVictimsOnNode`: remove every lower-priority pod, check the pod fits,
    /// then put back (reprieve) as many as possible, PDB-violating ones first.
    fn select_victims(&self, fw: &Framework, state: &mut CycleState, pod: &PodInfo, node: &mut NodeInfo, pdbs: &[Arc<PodDisruptionBudget>]) -> Result<(Vec<Arc<Pod>>, i64), Status> {
        let priority = pod.pod.priority();
        let mut potential: Vec<Arc<PodInfo>> = node.pods.iter().filter(|p| p.pod.priority() < priority).cloned().collect();
        if potential.is_empty() {
            return Err(Status::unresolvable(NO_VICTIMS));
        }
        for p in &potential {
            node.remove_pod(p.uid());
            let s = fw.run_pre_filter_remove_pod(state, pod, p, node);
            if !s.is_success() {
                return Err(s);
            }
        }
        let s = fw.run_filter_with_nominated_pods(state, pod, node);
        if !s.is_success() {
            return Err(s);
        }
        potential.sort_by(|a, b| more_important_order(&a.pod, &b.pod));
        let (violating, non_violating) = split_by_pdb_violation(&potential, pdbs);
        let mut victims = Vec::new();
        let mut num_violating = 0;
        for (group, counts) in [(violating, true), (non_violating, false)] {
            for p in group {
                node.add_pod_info(p.clone());
                let s = fw.run_pre_filter_add_pod(state, pod, &p, node);
                if !s.is_success() {
                    return Err(s);
                }
                if !fw.run_filter_with_nominated_pods(state, pod, node).is_success() {
                    node.remove_pod(p.uid());
                    let s = fw.run_pre_filter_remove_pod(state, pod, &p, node);
                    if !s.is_success() {
                        return Err(s);
                    }
                    victims.push(p.pod.clone());
                    if counts {
                        num_violating += 1;
                    }
                }
            }
        }
        victims.sort_by(|a, b| more_important_order(a, b));
        Ok((victims, num_violating))
    }

    /// Evicts the victims and clears lower-priority nominations, in the background.
    fn prepare_async(&self, candidate: &Candidate, preemptor: Arc<Pod>) {
        let Some(client) = self.handle.client.clone() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let uid = preemptor.uid().to_string();
        self.preempting.lock().unwrap_or_else(|e| e.into_inner()).insert(uid.clone());
        let preempting = self.preempting.clone();
        let handle = self.handle.clone();
        let candidate = candidate.clone();
        let lower_nominated: Vec<Arc<Pod>> = match &handle.nominator {
            Some(n) => n.nominated_pods_for_node(&candidate.node).into_iter().filter(|p| p.pod.priority() < preemptor.priority()).map(|p| p.pod.clone()).collect(),
            None => Vec::new(),
        };
        runtime.spawn(async move {
            let mut failed = false;
            for p in &lower_nominated {
                let api: Api<Pod> = Api::namespaced(client.clone(), p.namespace());
                let patch = json!({"status": {"nominatedNodeName": null}});
                if let Err(e) = api.patch_status(p.name(), &PatchParams::default(), &Patch::Merge(&patch)).await {
                    tracing::warn!(pod = %format!("{}/{}", p.namespace(), p.name()), error = %e, "cannot clear nominatedNodeName");
                    failed = true;
                }
            }
            for victim in &candidate.victims {
                if let Err(e) = preempt_pod(&client, &handle, &preemptor, victim, &candidate.node).await {
                    tracing::warn!(victim = %format!("{}/{}", victim.namespace(), victim.name()), error = %e, "preempting a victim");
                    failed = true;
                }
            }
            preempting.lock().unwrap_or_else(|e| e.into_inner()).remove(&uid);
            if failed {
                if let Some(n) = &handle.nominator {
                    n.activate(&preemptor);
                }
            }
        });
    }
}

/// Marks the victim with the DisruptionTarget condition, deletes it and records the
/// `Preempted` event.
async fn preempt_pod(client: &kube::Client, handle: &Handle, preemptor: &Pod, victim: &Pod, node: &str) -> Result<(), kube::Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), victim.namespace());
    let condition = json!({
        "type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
        "message": format!("{}: preempting to accommodate a higher priority pod", preemptor.scheduler_name()),
        "lastTransitionTime": Time(jiff::Timestamp::now()),
    });
    let patch = json!({"status": {"conditions": [condition]}});
    api.patch_status(victim.name(), &PatchParams::default(), &Patch::Strategic(&patch)).await?;
    match api.delete(victim.name(), &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(events) = &handle.events {
        events.record(victim, Some(preemptor), "Normal", "Preempted", "Preempting", format!("Preempted by pod {} on node {node}", preemptor.uid()));
    }
    Ok(())
}

fn terminating_by_preemption(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some()
        && p.status.as_ref().and_then(|s| s.conditions.as_ref()).into_iter().flatten().find(|c| c.type_ == "DisruptionTarget").is_some_and(|c| c.status == "True" && c.reason.as_deref() == Some("PreemptionByScheduler"))
}

fn start_time(p: &Pod) -> jiff::Timestamp {
    p.status.as_ref().and_then(|s| s.start_time.as_ref()).map(|t| t.0).unwrap_or_else(jiff::Timestamp::now)
}

/// Orders more important pods first: higher priority, then earlier start.
pub fn more_important_order(a: &Pod, b: &Pod) -> std::cmp::Ordering {
    b.priority().cmp(&a.priority()).then_with(|| start_time(a).cmp(&start_time(b)))
}

fn split_by_pdb_violation(pods: &[Arc<PodInfo>], pdbs: &[Arc<PodDisruptionBudget>]) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let mut allowed: Vec<i32> = pdbs.iter().map(|p| p.status.as_ref().map(|s| s.disruptions_allowed).unwrap_or(0)).collect();
    let (mut violating, mut non_violating) = (Vec::new(), Vec::new());
    for p in pods {
        let mut violated = false;
        if !p.pod.labels().is_empty() {
            for (i, pdb) in pdbs.iter().enumerate() {
                if pdb.metadata.namespace.as_deref() != Some(p.pod.namespace()) {
                    continue;
                }
                let Ok(selector) = Selector::from_label_selector(pdb.spec.as_ref().and_then(|s| s.selector.as_ref())) else { continue };
                if selector.is_empty() || !selector.matches(p.pod.labels()) {
                    continue;
                }
                if pdb.status.as_ref().and_then(|s| s.disrupted_pods.as_ref()).is_some_and(|d| d.contains_key(p.pod.name())) {
                    continue;
                }
                allowed[i] -= 1;
                if allowed[i] < 0 {
                    violated = true;
                }
            }
        }
        if violated { violating.push(p.clone()) } else { non_violating.push(p.clone()) }
    }
    (violating, non_violating)
}

/// Upstream's `pickOneNodeForPreemption`: fewest PDB violations, then the lowest highest
/// victim priority, the lowest priority sum, the fewest victims, the latest start of the
/// highest-priority victims; then the first.
pub fn pick_one_node(candidates: &[Candidate]) -> Option<&Candidate> {
    let highest = |c: &Candidate| c.victims.first().map(|p| i64::from(p.priority())).unwrap_or(i64::MIN);
    let sum = |c: &Candidate| c.victims.iter().map(|p| i64::from(p.priority()) + i64::from(i32::MAX) + 1).sum::<i64>();
    let earliest_top = |c: &Candidate| -> i64 {
        let Some(first) = c.victims.first() else { return i64::MIN };
        let top = first.priority();
        c.victims.iter().filter(|p| p.priority() == top).map(|p| start_time(p)).min().map(|t| t.as_nanosecond() as i64).unwrap_or(i64::MIN)
    };
    let score_fns: [&dyn Fn(&Candidate) -> i64; 5] = [&|c| -c.num_pdb_violations, &|c| -highest(c), &|c| -sum(c), &|c| -(c.victims.len() as i64), &earliest_top];
    let mut remaining: Vec<&Candidate> = candidates.iter().collect();
    for f in score_fns {
        let best = remaining.iter().map(|c| f(c)).max()?;
        remaining.retain(|c| f(c) == best);
        if remaining.len() == 1 {
            break;
        }
    }
    remaining.first().copied()
}

fn not_helpful(num_all_nodes: usize, statuses: NodeToStatus) -> String {
    let mut d = Diagnosis { node_to_status: statuses, ..Default::default() };
    d.node_to_status.set_absent(Status::unresolvable(NOT_HELPFUL));
    FitError { num_all_nodes, diagnosis: d }.to_string()
}

impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Option<Vec<ClusterEvent>> {
        Some(Vec::new())
    }
    fn as_post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        Some(self)
    }
    fn as_pre_enqueue(&self) -> Option<&dyn PreEnqueuePlugin> {
        Some(self)
    }
}

impl PreEnqueuePlugin for DefaultPreemption {
    fn pre_enqueue(&self, pod: &Pod) -> Status {
        if self.preempting.lock().unwrap_or_else(|e| e.into_inner()).contains(pod.uid()) {
            return Status::unresolvable("waiting for the preemption for this pod to be finished");
        }
        Status::success()
    }
}

impl PostFilterPlugin for DefaultPreemption {
    fn post_filter(&self, state: &CycleState, pod: &PodInfo, statuses: &NodeToStatus, fw: &Framework) -> (Option<PostFilterResult>, Status) {
        let (result, status) = self.preempt(state, pod, statuses, fw);
        if status.reasons().is_empty() {
            return (result, status);
        }
        (result, Status::new(status.code(), [format!("preemption: {}", status.message())]))
    }
}

impl DefaultPreemption {
    fn preempt(&self, state: &CycleState, pod: &PodInfo, statuses: &NodeToStatus, fw: &Framework) -> (Option<PostFilterResult>, Status) {
        let latest = self.handle.listers.pod(pod.pod.namespace(), pod.pod.name()).unwrap_or_else(|| pod.pod.clone());
        let pod = if Arc::ptr_eq(&latest, &pod.pod) { pod.clone() } else { PodInfo::new(latest) };
        if let Err(msg) = self.eligible(&pod.pod, statuses, state) {
            return (None, Status::unschedulable(msg));
        }
        let snapshot = state.snapshot().clone();
        let all = snapshot.len();
        if all == 0 {
            return (None, Status::error("no nodes available"));
        }
        let potential = statuses.nodes_for_code(&snapshot, Code::Unschedulable);
        let clear = Some(PostFilterResult { nominating_info: NominatingInfo::Override(String::new()) });
        if potential.is_empty() {
            return (clear, Status::unschedulable(not_helpful(all, NodeToStatus::default())));
        }
        let pdbs = self.handle.listers.pod_disruption_budgets();
        let want = self.num_candidates(potential.len() as i32).max(1) as usize;
        let offset = rand::random_range(0..potential.len());
        let (mut non_violating, mut violating) = (Vec::new(), Vec::new());
        let mut node_statuses = NodeToStatus::default();
        for i in 0..potential.len() {
            let info = &potential[(offset + i) % potential.len()];
            let mut node = NodeInfo::clone(info);
            let mut st = state.clone();
            match self.select_victims(fw, &mut st, &pod, &mut node, &pdbs) {
                Ok((victims, violations)) if !victims.is_empty() => {
                    let c = Candidate { node: info.name().to_string(), victims, num_pdb_violations: violations };
                    if violations == 0 { non_violating.push(c) } else { violating.push(c) }
                    if !non_violating.is_empty() && non_violating.len() + violating.len() >= want {
                        break;
                    }
                }
                Ok(_) => node_statuses.set(info.name().to_string(), Status::error(format!("expected at least one victim pod on node {:?}", info.name()))),
                Err(s) => node_statuses.set(info.name().to_string(), s),
            }
        }
        let candidates: Vec<Candidate> = non_violating.into_iter().chain(violating).collect();
        if candidates.is_empty() {
            return (clear, Status::unschedulable(not_helpful(all, node_statuses)));
        }
        let Some(best) = pick_one_node(&candidates) else {
            return (None, Status::unschedulable("no candidate node for preemption"));
        };
        self.prepare_async(best, pod.pod.clone());
        (Some(PostFilterResult { nominating_info: NominatingInfo::Override(best.node.clone()) }), Status::success())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Profile;
    use crate::framework::listers::StaticListers;
    use crate::plugins::registry;
    use crate::testing::{node, pod, snapshot, state};

    fn run(p: Pod, nodes: Vec<k8s_openapi::api::core::v1::Node>, pods: Vec<Pod>, pdbs: Vec<PodDisruptionBudget>) -> (Option<PostFilterResult>, Status) {
        let listers = StaticListers { pod_disruption_budgets: pdbs.into_iter().map(Arc::new).collect(), ..Default::default() };
        let handle = Handle::for_tests(Arc::new(listers));
        let fw = Framework::new(&Profile::default_profile(), &registry(), handle).expect("framework");
        let snap = snapshot(nodes, pods);
        let info = PodInfo::new(p);
        let mut st = state(&snap);
        let (_, s, _) = fw.run_pre_filter(&mut st, &info);
        assert!(s.is_success(), "{s}");
        let mut statuses = NodeToStatus::default();
        for n in snap.list() {
            let s = fw.run_filter(&st, &info, n);
            assert!(!s.is_success());
            statuses.set(n.name().to_string(), s);
        }
        fw.run_post_filter(&st, &info, &statuses)
    }

    #[test]
    fn preempts_the_cheapest_node() {
        let nodes = vec![node("n1").allocatable("2", "8Gi", "110").build(), node("n2").allocatable("2", "8Gi", "110").build()];
        let pods = vec![
            pod("hi").node("n1").req("2", "").priority(100).build(),
            pod("lo1").node("n2").req("1", "").priority(10).build(),
            pod("lo2").node("n2").req("1", "").priority(5).build(),
        ];
        let (r, s) = run(pod("p").req("1", "").priority(50).build(), nodes, pods, vec![]);
        assert!(s.is_success(), "{s}");
        assert_eq!(r.map(|r| r.nominating_info), Some(NominatingInfo::Override("n2".into())));
    }

    #[test]
    fn not_helpful_message() {
        let nodes = vec![node("n1").allocatable("1", "8Gi", "110").build(), node("n2").allocatable("1", "8Gi", "110").taint("k", "v", "NoSchedule").build()];
        let pods = vec![pod("hi").node("n1").req("1", "").priority(100).build()];
        let (r, s) = run(pod("p").req("1", "").build(), nodes, pods, vec![]);
        assert_eq!(s.message(), "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling.");
        assert_eq!(r.map(|r| r.nominating_info), Some(NominatingInfo::Override(String::new())));
        let never = pod("q").req("1", "").spec("preemptionPolicy", json!("Never")).build();
        let (_, s) = run(never, vec![node("n1").allocatable("1", "8Gi", "110").build()], vec![pod("x").node("n1").req("1", "").build()], vec![]);
        assert_eq!(s.message(), "preemption: not eligible due to preemptionPolicy=Never.");
    }

    #[test]
    fn pdb_violations_are_avoided() {
        let nodes = vec![node("n1").allocatable("1", "8Gi", "110").build(), node("n2").allocatable("1", "8Gi", "110").build()];
        let pods = vec![pod("guarded").label("app", "db").node("n1").req("1", "").build(), pod("free").node("n2").req("1", "").build()];
        let pdb: PodDisruptionBudget = serde_json::from_value(json!({"metadata": {"name": "db", "namespace": "default"}, "spec": {"selector": {"matchLabels": {"app": "db"}}}, "status": {"disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1}})).expect("pdb");
        let (r, s) = run(pod("p").req("1", "").priority(10).build(), nodes, pods, vec![pdb]);
        assert!(s.is_success());
        assert_eq!(r.map(|r| r.nominating_info), Some(NominatingInfo::Override("n2".into())));
    }

    #[test]
    fn pick_order() {
        let v = |name: &str, prio: i32| Arc::new(pod(name).priority(prio).build());
        let cands = vec![
            Candidate { node: "a".into(), victims: vec![v("a1", 10)], num_pdb_violations: 1 },
            Candidate { node: "b".into(), victims: vec![v("b1", 10), v("b2", 1)], num_pdb_violations: 0 },
            Candidate { node: "c".into(), victims: vec![v("c1", 5)], num_pdb_violations: 0 },
        ];
        assert_eq!(pick_one_node(&cands).map(|c| c.node.as_str()), Some("c"));
    }
}
