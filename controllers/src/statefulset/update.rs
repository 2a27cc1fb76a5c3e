//! Upstream's `updateStatefulSet` as a pure plan: which pods to create, repair and delete
//! this sync, and the status to report.
//!
//! Pods split into replicas (ordinals in `[start, start+replicas)`, a missing one made at
//! the current or update revision by the partition) and condemned ones (any other
//! ordinal, highest first). Four stages follow, each only if the one before did not stop:
//! replicas (finished pods deleted, missing ones created, pending ones given their claims,
//! identity and storage repaired), claim owners of condemned pods, scale-down, and the
//! rolling update (the highest ordinal at or above the partition not at the update
//! revision is deleted, one pod at a time). With `OrderedReady` every stage stops at the
//! first pod that is not Running, Ready and Available (and after each create or delete);
//! with `Parallel` every pod of a stage is acted on at once.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::jiff::Timestamp;

use super::identity;
use crate::replicaset::{is_available, is_ready};

/// One thing to do about one pod.
#[derive(Debug, Clone)]
pub enum Step {
    /// Delete a pod that Failed or Succeeded (it comes back on a later sync).
    DeleteFinished(Arc<Pod>),
    /// Create the pod's claims, then the pod.
    Create(Box<Pod>),
    /// Create the claims a pending pod lacks and fix their owners.
    CreateClaims(Arc<Pod>),
    /// Put back the pod's identity and storage and its claims' owners.
    Repair(Arc<Pod>),
    /// Fix the owners of a condemned pod's claims.
    FixClaims(Arc<Pod>),
    /// Delete a condemned pod (scale-down).
    Delete(Arc<Pod>),
    /// Delete a pod at an old revision (rolling update).
    DeleteForUpdate(Arc<Pod>),
}

impl Step {
    /// The name of the pod the step is about.
    pub fn pod_name(&self) -> &str {
        let pod: &Pod = match self {
            Step::Create(p) => p,
            Step::DeleteFinished(p) | Step::CreateClaims(p) | Step::Repair(p) | Step::FixClaims(p) | Step::Delete(p) | Step::DeleteForUpdate(p) => p,
        };
        pod.metadata.name.as_deref().unwrap_or("")
    }
}

/// The steps of a sync: stages run in order, a stage only when the one before succeeded;
/// within a stage each pod's steps run in order, pods one after the other (OrderedReady)
/// or together (Parallel).
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub stages: Vec<Vec<Vec<Step>>>,
    pub status: StatefulSetStatus,
}

/// What a plan is made from.
pub struct Inputs<'a> {
    pub set: &'a StatefulSet,
    /// The set at its current and update revisions.
    pub current_set: &'a StatefulSet,
    pub update_set: &'a StatefulSet,
    pub current_revision: &'a str,
    pub update_revision: &'a str,
    pub collision_count: i32,
    /// The pods the set owns.
    pub pods: &'a [Arc<Pod>],
    /// The set's namespace's claims by name.
    pub claim: &'a (dyn Fn(&str) -> Option<Arc<PersistentVolumeClaim>> + Sync),
    pub now: Timestamp,
}

fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

fn terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// Running with its Ready condition True.
pub fn running_and_ready(pod: &Pod) -> bool {
    phase(pod) == "Running" && is_ready(pod)
}

fn healthy(pod: &Pod) -> bool {
    running_and_ready(pod) && !terminating(pod)
}

fn min_ready_seconds(set: &StatefulSet) -> i32 {
    set.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0)
}

/// `OrderedReady` (the default) rather than `Parallel`.
pub fn monotonic(set: &StatefulSet) -> bool {
    set.spec.as_ref().and_then(|s| s.pod_management_policy.as_deref()) != Some("Parallel")
}

fn strategy_type(set: &StatefulSet) -> &str {
    set.spec.as_ref().and_then(|s| s.update_strategy.as_ref()).and_then(|u| u.type_.as_deref()).unwrap_or("RollingUpdate")
}

/// `spec.updateStrategy.rollingUpdate.partition`, if a rollingUpdate is given.
fn partition(set: &StatefulSet) -> Option<i32> {
    let ru = set.spec.as_ref()?.update_strategy.as_ref()?.rolling_update.as_ref()?;
    Some(ru.partition.unwrap_or(0))
}

/// Upstream's `newVersionedStatefulSetPod`: below the partition a missing pod comes back at
/// the current revision, otherwise at the update revision.
pub fn versioned_pod(inputs: &Inputs, ordinal: i32) -> Pod {
    let current = inputs.current_set;
    let start = i64::from(identity::start_ordinal(current));
    let ord = i64::from(ordinal);
    let at_current = match partition(current) {
        Some(p) => ord < start + i64::from(p),
        None => {
            let current_replicas = current.status.as_ref().and_then(|s| s.current_replicas).unwrap_or(0);
            strategy_type(current) == "RollingUpdate" && ord < start + i64::from(current_replicas)
        }
    };
    let (from, revision) = if at_current { (current, inputs.current_revision) } else { (inputs.update_set, inputs.update_revision) };
    let template = from.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let mut pod = identity::new_pod(from, &template, ordinal);
    pod.metadata.labels.get_or_insert_with(Default::default).insert(identity::REVISION_LABEL.into(), revision.into());
    pod
}

/// Upstream's `computeReplicaStatus` over `pods`, added to `status`.
fn count<'p>(status: &mut StatefulSetStatus, pods: impl Iterator<Item = &'p Pod>, inputs: &Inputs) {
    let min_ready = min_ready_seconds(inputs.set);
    let add = |field: &mut Option<i32>| *field = Some(field.unwrap_or(0) + 1);
    for pod in pods {
        let created = !phase(pod).is_empty();
        if created {
            status.replicas += 1;
        }
        if running_and_ready(pod) {
            add(&mut status.ready_replicas);
            if is_available(pod, min_ready, inputs.now) {
                add(&mut status.available_replicas);
            }
        }
        if created && !terminating(pod) {
            let revision = identity::revision(pod);
            if revision == inputs.current_revision {
                add(&mut status.current_replicas);
            }
            if revision == inputs.update_revision {
                add(&mut status.updated_replicas);
            }
        }
    }
}

fn new_status(inputs: &Inputs) -> StatefulSetStatus {
    StatefulSetStatus {
        observed_generation: inputs.set.metadata.generation,
        current_revision: Some(inputs.current_revision.to_string()),
        update_revision: Some(inputs.update_revision.to_string()),
        collision_count: Some(inputs.collision_count),
        available_replicas: Some(0),
        conditions: inputs.set.status.as_ref().and_then(|s| s.conditions.clone()),
        ..Default::default()
    }
}

/// A replica slot: the pod that exists, or the one to create.
enum Slot {
    Existing(Arc<Pod>),
    Missing(Box<Pod>),
}

impl Slot {
    fn pod(&self) -> &Pod {
        match self {
            Slot::Existing(p) => p,
            Slot::Missing(p) => p,
        }
    }
}

/// Whether any claim of `pod` is missing, being deleted or has owners the policy of
/// `set` does not want.
fn claims_need_work(inputs: &Inputs, set: &StatefulSet, pod: &Pod, ordinal: i32) -> bool {
    identity::claims(set, ordinal).iter().any(|(_, c)| match (inputs.claim)(c.metadata.name.as_deref().unwrap_or("")) {
        None => true,
        Some(found) => found.metadata.deletion_timestamp.is_some() || !identity::claim_owners_up_to_date(&found, set, pod),
    })
}

/// Whether an existing claim's owners are off under `set`'s policy.
fn claim_owners_off(inputs: &Inputs, set: &StatefulSet, pod: &Pod, ordinal: i32) -> bool {
    identity::claims(set, ordinal).iter().any(|(_, c)| {
        (inputs.claim)(c.metadata.name.as_deref().unwrap_or("")).is_some_and(|found| !identity::claim_owners_up_to_date(&found, set, pod))
    })
}

/// Upstream's `PodClaimIsStale`: with claims deleted on scale-down, a claim still owned by
/// an earlier pod of this name blocks creating it.
fn claim_is_stale(inputs: &Inputs, pod: &Pod, ordinal: i32) -> bool {
    identity::deletes_when_scaled(inputs.set)
        && identity::claims(inputs.set, ordinal)
            .iter()
            .any(|(_, c)| (inputs.claim)(c.metadata.name.as_deref().unwrap_or("")).is_some_and(|found| identity::claim_is_stale(&found, pod)))
}

/// Upstream's `processReplica`: the steps for one replica, and whether an OrderedReady
/// set stops there.
fn replica_steps(inputs: &Inputs, slot: &Slot, ordinal: i32, monotonic: bool) -> (Vec<Step>, bool) {
    let set = inputs.set;
    let mut steps = Vec::new();
    let pod = match slot {
        Slot::Missing(pod) => {
            if claim_is_stale(inputs, pod, ordinal) {
                return (steps, true);
            }
            steps.push(Step::Create(pod.clone()));
            // A pod just created matches its identity; its claims are seen to next time.
            return (steps, monotonic);
        }
        Slot::Existing(pod) => pod,
    };
    if matches!(phase(pod), "Failed" | "Succeeded") {
        if !terminating(pod) {
            steps.push(Step::DeleteFinished(pod.clone()));
        }
        return (steps, true);
    }
    if phase(pod) == "Pending" && claims_need_work(inputs, set, pod, ordinal) {
        steps.push(Step::CreateClaims(pod.clone()));
    }
    if monotonic && (terminating(pod) || !running_and_ready(pod) || !is_available(pod, min_ready_seconds(set), inputs.now)) {
        return (steps, true);
    }
    let claims_ok = !claim_owners_off(inputs, inputs.update_set, pod, ordinal);
    if !(identity::identity_matches(set, pod) && identity::storage_matches(set, pod) && claims_ok) {
        steps.push(Step::Repair(pod.clone()));
    }
    (steps, false)
}

/// Upstream's `updateStatefulSet`, minus the writes.
pub fn plan(inputs: &Inputs) -> Plan {
    let set = inputs.set;
    let mut status = new_status(inputs);
    let start = identity::start_ordinal(set);
    let replicas = usize::try_from(identity::replicas(set)).unwrap_or(0);
    let mut slots: Vec<Option<Arc<Pod>>> = vec![None; replicas];
    let mut condemned: Vec<Arc<Pod>> = Vec::new();
    for pod in inputs.pods {
        let Some(ord) = identity::ordinal(pod) else { continue };
        if identity::in_range(set, ord) {
            if let Some(slot) = usize::try_from(i64::from(ord) - i64::from(start)).ok().and_then(|i| slots.get_mut(i)) {
                *slot = Some(pod.clone());
            }
        } else if ord >= 0 {
            condemned.push(pod.clone());
        }
    }
    if set.metadata.deletion_timestamp.is_some() {
        count(&mut status, inputs.pods.iter().map(|p| &**p), inputs);
        return Plan { stages: Vec::new(), status };
    }
    let slots: Vec<(i32, Slot)> = slots
        .into_iter()
        .zip(start..)
        .map(|(pod, ord)| (ord, pod.map_or_else(|| Slot::Missing(Box::new(versioned_pod(inputs, ord))), Slot::Existing)))
        .collect();
    condemned.sort_by_key(|p| std::cmp::Reverse(identity::ordinal(p)));
    count(&mut status, slots.iter().filter(|(_, s)| matches!(s, Slot::Existing(_))).map(|(_, s)| s.pod()).chain(condemned.iter().map(|p| &**p)), inputs);

    let first_unhealthy: Option<String> = slots
        .iter()
        .map(|(_, s)| s.pod())
        .chain(condemned.iter().rev().map(|p| &**p))
        .find(|p| !healthy(p))
        .and_then(|p| p.metadata.name.clone());
    let monotonic = monotonic(set);
    let mut stages = Vec::new();

    // Replicas.
    let mut stage = Vec::new();
    let mut stopped = false;
    for (ord, slot) in &slots {
        let (steps, exit) = replica_steps(inputs, slot, *ord, monotonic);
        if !steps.is_empty() {
            stage.push(steps);
        }
        if exit && monotonic {
            stopped = true;
            break;
        }
    }
    stages.push(stage);
    if stopped {
        return Plan { stages, status };
    }

    // Claim owners of condemned pods.
    let fixes: Vec<Vec<Step>> = condemned
        .iter()
        .filter_map(|p| identity::ordinal(p).filter(|o| claim_owners_off(inputs, inputs.update_set, p, *o)).map(|_| vec![Step::FixClaims(p.clone())]))
        .collect();
    stages.push(fixes);

    // Scale-down.
    let mut stage = Vec::new();
    let min_ready = min_ready_seconds(set);
    for pod in &condemned {
        if terminating(pod) {
            if monotonic {
                stopped = true;
                break;
            }
            continue;
        }
        let first = first_unhealthy.as_deref() == pod.metadata.name.as_deref();
        if monotonic && !first && (!running_and_ready(pod) || !is_available(pod, min_ready, inputs.now)) {
            stopped = true;
            break;
        }
        stage.push(vec![Step::Delete(pod.clone())]);
        if monotonic {
            stopped = true;
            break;
        }
    }
    stages.push(stage);
    if stopped || strategy_type(set) == "OnDelete" {
        return Plan { stages, status };
    }

    // Rolling update, highest ordinal first, down to the partition.
    let update_min = usize::try_from(partition(set).unwrap_or(0)).unwrap_or(0);
    let mut stage = Vec::new();
    for (_, slot) in slots.iter().skip(update_min).rev() {
        let Slot::Existing(pod) = slot else { break };
        if identity::revision(pod) != inputs.update_revision && !terminating(pod) {
            stage.push(vec![Step::DeleteForUpdate(pod.clone())]);
            break;
        }
        if !healthy(pod) {
            break;
        }
    }
    stages.push(stage);
    Plan { stages, status }
}

/// Upstream's `completeRollingUpdate`: once every replica is updated and ready, the
/// update revision becomes the current one.
pub fn complete_rolling_update(set: &StatefulSet, status: &mut StatefulSetStatus) {
    let want = identity::replicas(set);
    if strategy_type(set) == "RollingUpdate"
        && status.updated_replicas.unwrap_or(0) == want
        && status.ready_replicas.unwrap_or(0) == want
        && status.replicas == want
    {
        status.current_replicas = status.updated_replicas;
        status.current_revision = status.update_revision.clone();
    }
}

/// Upstream's `inconsistentStatus`: whether `status` is worth writing over the set's.
pub fn status_changed(set: &StatefulSet, status: &StatefulSetStatus) -> bool {
    let old = set.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    status.observed_generation.unwrap_or(0) > old.observed_generation.unwrap_or(0)
        || status.replicas != old.replicas
        || n(status.current_replicas) != n(old.current_replicas)
        || n(status.ready_replicas) != n(old.ready_replicas)
        || n(status.updated_replicas) != n(old.updated_replicas)
        || status.current_revision.as_deref().unwrap_or("") != old.current_revision.as_deref().unwrap_or("")
        || n(status.available_replicas) != n(old.available_replicas)
        || status.update_revision.as_deref().unwrap_or("") != old.update_revision.as_deref().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statefulset::identity::tests::set;
    use serde_json::{Value, json};

    const NOW: &str = "2025-01-01T00:10:00Z";

    /// A pod of `web` at `revision` in `state`: "ready", "running" (not ready), "pending",
    /// "failed", "terminating".
    fn pod(ordinal: i32, revision: &str, state: &str) -> Arc<Pod> {
        let name = format!("web-{ordinal}");
        let mut v = json!({
            "metadata": {"name": name, "namespace": "ns", "uid": name, "labels": {"app": "web", "controller-revision-hash": revision, identity::POD_NAME_LABEL: name}},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"}]},
        });
        match state {
            "running" => v["status"]["conditions"][0]["status"] = json!("False"),
            "pending" => v["status"] = json!({"phase": "Pending"}),
            "failed" => v["status"] = json!({"phase": "Failed"}),
            "terminating" => v["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:09:00Z"),
            _ => {}
        }
        Arc::new(serde_json::from_value(v).expect("pod"))
    }

    fn no_claims(_: &str) -> Option<Arc<PersistentVolumeClaim>> {
        None
    }

    /// Each stage as "verb name" strings.
    fn run(set: &StatefulSet, pods: &[Arc<Pod>]) -> (Vec<Vec<String>>, StatefulSetStatus) {
        let inputs = Inputs {
            set,
            current_set: set,
            update_set: set,
            current_revision: "web-old",
            update_revision: "web-new",
            collision_count: 0,
            pods,
            claim: &no_claims,
            now: NOW.parse().expect("now"),
        };
        let plan = plan(&inputs);
        let stages = plan
            .stages
            .iter()
            .map(|stage| {
                stage
                    .iter()
                    .flatten()
                    .map(|s| {
                        let verb = match s {
                            Step::DeleteFinished(_) => "delete-finished",
                            Step::Create(_) => "create",
                            Step::CreateClaims(_) => "claims",
                            Step::Repair(_) => "repair",
                            Step::FixClaims(_) => "fix-claims",
                            Step::Delete(_) => "delete",
                            Step::DeleteForUpdate(_) => "update",
                        };
                        format!("{verb} {}", s.pod_name())
                    })
                    .collect()
            })
            .collect();
        (stages, plan.status)
    }

    fn with(extra: Value) -> StatefulSet {
        set(extra)
    }

    #[test]
    fn ordered_ready_sets_act_on_one_pod_at_a_time() {
        let ordered = with(json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}}));
        let parallel = with(json!({"podManagementPolicy": "Parallel", "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}}));
        type Case<'a> = (&'a str, &'a StatefulSet, Vec<Arc<Pod>>, Vec<Vec<&'a str>>);
        let cases: Vec<Case> = vec![
            ("create the first", &ordered, vec![], vec![vec!["create web-0"]]),
            ("wait for web-0 to be ready", &ordered, vec![pod(0, "web-new", "running")], vec![vec![]]),
            ("then create web-1", &ordered, vec![pod(0, "web-new", "ready")], vec![vec!["create web-1"]]),
            ("parallel creates all", &parallel, vec![], vec![vec!["create web-0", "create web-1", "create web-2"], vec![], vec![], vec![]]),
            (
                "scale down the highest first",
                &ordered,
                (0..5).map(|o| pod(o, "web-new", "ready")).collect(),
                vec![vec![], vec![], vec!["delete web-4"]],
            ),
            (
                "wait while a condemned pod terminates",
                &ordered,
                vec![pod(0, "web-new", "ready"), pod(1, "web-new", "ready"), pod(2, "web-new", "ready"), pod(3, "web-new", "ready"), pod(4, "web-new", "terminating")],
                vec![vec![], vec![], vec![]],
            ),
            (
                "halt scale down on an unhealthy pod that is not the first",
                &ordered,
                vec![pod(0, "web-new", "ready"), pod(1, "web-new", "ready"), pod(2, "web-new", "ready"), pod(3, "web-new", "running"), pod(4, "web-new", "running")],
                vec![vec![], vec![], vec![]],
            ),
            (
                "the first unhealthy pod may go",
                &ordered,
                vec![pod(0, "web-new", "ready"), pod(1, "web-new", "ready"), pod(2, "web-new", "ready"), pod(3, "web-new", "running")],
                vec![vec![], vec![], vec!["delete web-3"]],
            ),
            (
                "parallel scales down at once, unhealthy or not",
                &parallel,
                vec![pod(0, "web-new", "ready"), pod(1, "web-new", "ready"), pod(2, "web-new", "ready"), pod(3, "web-new", "running"), pod(4, "web-new", "ready")],
                vec![vec![], vec![], vec!["delete web-4", "delete web-3"], vec![]],
            ),
            ("failed pods are deleted", &ordered, vec![pod(0, "web-new", "failed")], vec![vec!["delete-finished web-0"]]),
            (
                "rolling update from the highest ordinal",
                &ordered,
                (0..3).map(|o| pod(o, "web-old", "ready")).collect(),
                vec![vec![], vec![], vec![], vec!["update web-2"]],
            ),
            (
                "rolling update waits for the updated pod",
                &ordered,
                vec![pod(0, "web-old", "ready"), pod(1, "web-old", "ready"), pod(2, "web-new", "running")],
                vec![vec![]],
            ),
            (
                "parallel rolling update still waits",
                &parallel,
                vec![pod(0, "web-old", "ready"), pod(1, "web-old", "ready"), pod(2, "web-new", "running")],
                vec![vec![], vec![], vec![], vec![]],
            ),
        ];
        for (what, s, pods, want) in cases {
            let (stages, _) = run(s, &pods);
            let want: Vec<Vec<String>> = want.into_iter().map(|st| st.into_iter().map(String::from).collect()).collect();
            assert_eq!(stages, want, "{what}");
        }
    }

    #[test]
    fn partitions_and_on_delete() {
        let partitioned = with(json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}));
        let (stages, _) = run(&partitioned, &(0..3).map(|o| pod(o, "web-old", "ready")).collect::<Vec<_>>());
        assert_eq!(stages.last().cloned().unwrap_or_default(), ["update web-2"]);
        let (stages, _) = run(&partitioned, &[pod(0, "web-old", "ready"), pod(1, "web-old", "ready"), pod(2, "web-new", "ready")]);
        assert_eq!(stages.last().cloned().unwrap_or_default(), Vec::<String>::new());
        let on_delete = with(json!({"updateStrategy": {"type": "OnDelete"}}));
        let (stages, _) = run(&on_delete, &(0..3).map(|o| pod(o, "web-old", "ready")).collect::<Vec<_>>());
        assert_eq!(stages.len(), 3, "{stages:?}");

        // A missing pod below the partition comes back at the current revision.
        let inputs = Inputs {
            set: &partitioned,
            current_set: &partitioned,
            update_set: &partitioned,
            current_revision: "web-old",
            update_revision: "web-new",
            collision_count: 0,
            pods: &[],
            claim: &no_claims,
            now: NOW.parse().expect("now"),
        };
        assert_eq!(identity::revision(&versioned_pod(&inputs, 1)), "web-old");
        assert_eq!(identity::revision(&versioned_pod(&inputs, 2)), "web-new");
    }

    #[test]
    fn status_counts_created_ready_current_and_updated_pods() {
        let s = with(json!({"minReadySeconds": 3600, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}}));
        let pods = vec![pod(0, "web-old", "ready"), pod(1, "web-new", "ready"), pod(2, "web-new", "running"), pod(3, "web-new", "terminating")];
        let (_, status) = run(&s, &pods);
        assert_eq!(status.replicas, 4);
        assert_eq!(status.ready_replicas, Some(3));
        assert_eq!(status.available_replicas, Some(0));
        assert_eq!(status.current_replicas, Some(1));
        assert_eq!(status.updated_replicas, Some(2));
        assert_eq!((status.current_revision.as_deref(), status.update_revision.as_deref()), (Some("web-old"), Some("web-new")));
        assert_eq!((status.observed_generation, status.collision_count), (Some(1), Some(0)));

        let mut done = StatefulSetStatus { replicas: 3, ready_replicas: Some(3), updated_replicas: Some(3), current_replicas: Some(0), current_revision: Some("a".into()), update_revision: Some("b".into()), ..Default::default() };
        complete_rolling_update(&s, &mut done);
        assert_eq!((done.current_replicas, done.current_revision.as_deref()), (Some(3), Some("b")));
        assert!(status_changed(&s, &done));
        let mut same = s.clone();
        same.status = Some(done.clone());
        assert!(!status_changed(&same, &done));
    }
}
