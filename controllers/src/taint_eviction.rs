//! The taint eviction controller (upstream's NoExecuteTaintManager): a pod on a node with
//! NoExecute taints is deleted unless its tolerations tolerate every one of them; with
//! `tolerationSeconds` the deletion waits for the shortest of the tolerations used, counted
//! from when the deletion was first scheduled; tolerating forever, the taints going away or
//! the pod going away cancels it ("Cancelling deletion of Pod ns/name"). Before deleting,
//! the pod gets the DisruptionTarget condition (reason DeletionByTaintManager).
//!
//! Upstream keeps a timer per pod (TimedWorkerQueue). Here each pod is one reconcile on the
//! shared applier queue: the scheduled deletion (when it was created, when it fires) lives in
//! the controller's state, and the reconcile asks to be requeued at the firing time.
//!
//! Like upstream, a deletion scheduled for a pod whose node then disappears still fires.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use ironkube_machinery::scheduling::taints::{NO_EXECUTE, tolerates};
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, Taint, Toleration};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, instrument};

use crate::informer::{self, Change};
use crate::recorder::Recorder;
use crate::replicaset::key;

pub const NAME: &str = "taint-eviction-controller";
/// The event source upstream's taint manager records with.
const EVENT_SOURCE: &str = "taint-eviction-controller";
const EVENT_REASON: &str = "TaintManagerEviction";
/// Upstream's `retries` for one deletion.
const DELETE_ATTEMPTS: usize = 5;

pub type Error = informer::ReconcileError;

/// How long the tolerations a pod uses let it stay (upstream's `getMinTolerationTime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stay {
    /// Some toleration has no `tolerationSeconds` limit and none has a limit: forever.
    Forever,
    /// The shortest `tolerationSeconds` (0 or less, or no tolerations used: at once).
    For(Duration),
}

/// The NoExecute taints among `taints`.
pub fn no_execute_taints(taints: &[Taint]) -> Vec<Taint> {
    taints.iter().filter(|t| t.effect == NO_EXECUTE).cloned().collect()
}

/// The first toleration tolerating each taint, or None when some taint is not tolerated
/// (upstream's `GetMatchingTolerations`).
pub fn matching_tolerations<'a>(taints: &[Taint], tolerations: &'a [Toleration]) -> Option<Vec<&'a Toleration>> {
    taints.iter().map(|taint| tolerations.iter().find(|t| tolerates(t, taint))).collect()
}

/// How long the `used` tolerations let the pod stay.
pub fn min_toleration(used: &[&Toleration]) -> Stay {
    if used.is_empty() {
        return Stay::For(Duration::ZERO);
    }
    let mut min: Option<i64> = None;
    for seconds in used.iter().filter_map(|t| t.toleration_seconds) {
        if seconds <= 0 {
            return Stay::For(Duration::ZERO);
        }
        min = Some(min.map_or(seconds, |m| m.min(seconds)));
    }
    match min {
        Some(s) => Stay::For(Duration::from_secs(s.unsigned_abs())),
        None => Stay::Forever,
    }
}

/// A deletion waiting for its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduled {
    pub created_at: Timestamp,
    pub fire_at: Timestamp,
}

/// What to do about one pod on a node with NoExecute taints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Cancel any scheduled deletion (with the cancelling event if there was one).
    Cancel,
    /// Keep the deletion already scheduled.
    Keep,
    /// Replace any scheduled deletion (cancelling it with the event) by this one.
    Schedule(Scheduled),
}

/// Upstream's `processPodOnNode`: what the taints and tolerations ask for at `now`, given
/// the deletion already scheduled.
pub fn plan(taints: &[Taint], tolerations: &[Toleration], existing: Option<Scheduled>, now: Timestamp) -> Plan {
    if taints.is_empty() {
        return Plan::Cancel;
    }
    let Some(used) = matching_tolerations(taints, tolerations) else {
        // Not everything tolerated: delete at once.
        return Plan::Schedule(Scheduled { created_at: now, fire_at: now });
    };
    let wait = match min_toleration(&used) {
        Stay::Forever => return Plan::Cancel,
        Stay::For(d) => SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX),
    };
    let fire_at = now.checked_add(wait).unwrap_or(Timestamp::MAX);
    match existing {
        // A deletion scheduled earlier stays (upstream compares its start plus the wait with
        // now plus the wait, so any earlier start wins).
        Some(s) if s.created_at.checked_add(wait).unwrap_or(Timestamp::MAX) < fire_at => Plan::Keep,
        Some(s) => Plan::Schedule(Scheduled { created_at: s.created_at, fire_at }),
        None => Plan::Schedule(Scheduled { created_at: now, fire_at }),
    }
}

/// The reference upstream's taint manager records pod events against (no UID).
fn pod_reference(namespace: &str, name: &str) -> ObjectReference {
    ObjectReference { api_version: Some("v1".into()), kind: Some("Pod".into()), name: Some(name.into()), namespace: Some(namespace.into()), ..Default::default() }
}

struct Ctx {
    client: kube::Client,
    nodes: Store<Node>,
    /// Scheduled deletions by "namespace/name".
    scheduled: Mutex<HashMap<String, Scheduled>>,
    recorder: Recorder,
}

impl Ctx {
    fn scheduled(&self) -> std::sync::MutexGuard<'_, HashMap<String, Scheduled>> {
        self.scheduled.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Cancels the deletion scheduled for `namespace/name`, with upstream's event.
    fn cancel(&self, namespace: &str, name: &str) {
        if self.scheduled().remove(&format!("{namespace}/{name}")).is_some() {
            debug!(pod = %format!("{namespace}/{name}"), "cancelling the scheduled deletion");
            self.recorder.publish(pod_reference(namespace, name), "Normal", EVENT_REASON, format!("Cancelling deletion of Pod {namespace}/{name}"));
        }
    }
}

/// Upstream's `addConditionAndDeletePod`: DisruptionTarget on the pod's status, then delete.
async fn add_condition_and_delete(api: &Api<Pod>, name: &str) -> Result<(), kube::Error> {
    let pod = api.get(name).await?;
    let current = pod.status.as_ref().and_then(|s| s.conditions.as_ref()).and_then(|c| c.iter().find(|c| c.type_ == "DisruptionTarget"));
    let unchanged = current.is_some_and(|c| {
        c.status == "True" && c.reason.as_deref() == Some("DeletionByTaintManager") && c.message.as_deref() == Some("Taint manager: deleting due to NoExecute taint")
    });
    if !unchanged {
        let transition = match current {
            Some(c) if c.status == "True" => c.last_transition_time.clone().map(|t| t.0).unwrap_or_else(Timestamp::now),
            _ => Timestamp::now(),
        };
        let patch = json!({
            "metadata": {"uid": pod.metadata.uid},
            "status": {"conditions": [{
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "DeletionByTaintManager",
                "message": "Taint manager: deleting due to NoExecute taint",
                "lastTransitionTime": ironkube_machinery::node_status::time(transition),
            }]},
        });
        api.patch_status(name, &PatchParams::default(), &Patch::Strategic(patch)).await?;
    }
    api.delete(name, &DeleteParams::default()).await?;
    Ok(())
}

/// Fires the deletion of `pod` (upstream's `deletePodHandler`).
async fn evict(ctx: &Ctx, namespace: &str, name: &str) -> Result<(), kube::Error> {
    info!(pod = %format!("{namespace}/{name}"), "deleting pod");
    ctx.recorder.publish(pod_reference(namespace, name), "Normal", EVENT_REASON, format!("Marking for deletion Pod {namespace}/{name}"));
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let mut result = Ok(());
    for _ in 0..DELETE_ATTEMPTS {
        result = add_condition_and_delete(&api, name).await;
        match &result {
            Ok(()) => break,
            Err(e) if informer::is_not_found(e) => return Ok(()),
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    result
}

fn until(at: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
}

#[instrument(skip_all, fields(controller = NAME, key = %key(&pod.metadata)))]
async fn reconcile(pod: Arc<Pod>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let (Some(namespace), Some(name)) = (pod.metadata.namespace.as_deref(), pod.metadata.name.as_deref()) else {
        return Ok(Action::await_change());
    };
    let pod_key = key(&pod.metadata);
    let Some(node_name) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty()) else {
        return Ok(Action::await_change());
    };
    let now = Timestamp::now();
    let existing = ctx.scheduled().get(&pod_key).copied();
    let decision = match ctx.nodes.get(&ObjectRef::new(node_name)) {
        Some(node) => {
            let taints = no_execute_taints(node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default());
            let tolerations = pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or_default();
            plan(&taints, tolerations, existing, now)
        }
        // The node is gone: what was scheduled still fires, as upstream's timers do.
        None if existing.is_some() => Plan::Keep,
        None => return Ok(Action::await_change()),
    };
    let scheduled = match decision {
        Plan::Cancel => {
            ctx.cancel(namespace, name);
            return Ok(Action::await_change());
        }
        Plan::Keep => existing,
        Plan::Schedule(s) => {
            if existing.is_some() {
                ctx.cancel(namespace, name);
            }
            debug!(pod = %pod_key, fire_at = %s.fire_at, "scheduling deletion");
            ctx.scheduled().insert(pod_key.clone(), s);
            Some(s)
        }
    };
    let Some(scheduled) = scheduled else { return Ok(Action::await_change()) };
    if scheduled.fire_at > now {
        return Ok(Action::requeue(until(scheduled.fire_at, now)));
    }
    // Its time has come: the work is done (or given up) either way, as upstream's worker is.
    {
        let mut map = ctx.scheduled();
        if map.get(&pod_key) == Some(&scheduled) {
            map.remove(&pod_key);
        }
    }
    evict(&ctx, namespace, name).await?;
    Ok(Action::await_change())
}

fn tolerations(pod: &Pod) -> Option<&Vec<Toleration>> {
    pod.spec.as_ref().and_then(|s| s.tolerations.as_ref())
}

fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
}

/// The pod a pod change concerns (upstream's `PodUpdated`): new pods, and pods whose
/// tolerations or node changed; a deleted pod's scheduled deletion is cancelled here.
fn pod_trigger(change: Change<Pod>, ctx: &Ctx) -> Option<ObjectRef<Pod>> {
    match change {
        Change::Added(pod) => Some(ObjectRef::from_obj(&*pod)),
        Change::Updated { old, new } => {
            (tolerations(&old) != tolerations(&new) || node_name(&old) != node_name(&new)).then(|| ObjectRef::from_obj(&*new))
        }
        Change::Deleted(pod) => {
            if let (Some(ns), Some(name)) = (pod.metadata.namespace.as_deref(), pod.metadata.name.as_deref()) {
                ctx.cancel(ns, name);
            }
            None
        }
    }
}

fn node_taints(node: &Node) -> Vec<Taint> {
    no_execute_taints(node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default())
}

/// The pods a node change concerns (upstream's `NodeUpdated`): every pod on a node whose
/// NoExecute taints changed.
fn node_trigger(change: Change<Node>, pods: &Store<Pod>) -> Vec<ObjectRef<Pod>> {
    if let Change::Updated { old, new } = &change
        && node_taints(old) == node_taints(new)
    {
        return Vec::new();
    }
    let node = change.object();
    let Some(name) = node.metadata.name.as_deref() else { return Vec::new() };
    pods.state().iter().filter(|p| node_name(p) == Some(name)).map(|p| ObjectRef::from_obj(&**p)).collect()
}

pub async fn run(client: kube::Client, stop: CancellationToken) {
    let (nodes, node_changes) = informer::informer(Api::<Node>::all(client.clone()), watcher::Config::default(), "nodes");
    let (pods, pod_changes) = informer::informer(Api::<Pod>::all(client.clone()), watcher::Config::default(), "pods");
    let ctx = Arc::new(Ctx { recorder: Recorder::new(client.clone(), EVENT_SOURCE), client, nodes, scheduled: Mutex::new(HashMap::new()) });
    let pod_triggers = {
        let ctx = ctx.clone();
        pod_changes.filter_map(move |change| futures::future::ready(pod_trigger(change, &ctx)))
    };
    let node_triggers = {
        let pods = pods.clone();
        node_changes.flat_map(move |change| futures::stream::iter(node_trigger(change, &pods)))
    };
    let triggers = futures::stream::select(node_triggers, pod_triggers).boxed();
    info!("starting the taint eviction controller");
    informer::run(NAME, pods, triggers, ctx, reconcile, informer::Retry::default(), stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, effect: &str) -> Taint {
        Taint { key: key.into(), value: None, effect: effect.into(), time_added: None }
    }

    fn tol(key: &str, seconds: Option<i64>) -> Toleration {
        Toleration { key: Some(key.into()), operator: Some("Exists".into()), effect: Some(NO_EXECUTE.into()), value: None, toleration_seconds: seconds }
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).expect("timestamp")
    }

    #[test]
    fn only_no_execute_taints_count() {
        let taints = [taint("a", "NoSchedule"), taint("b", NO_EXECUTE), taint("c", "PreferNoSchedule")];
        assert_eq!(no_execute_taints(&taints), vec![taint("b", NO_EXECUTE)]);
    }

    #[test]
    fn min_toleration_table() {
        let (five, ten, forever, zero, negative) = (tol("a", Some(5)), tol("a", Some(10)), tol("a", None), tol("a", Some(0)), tol("a", Some(-3)));
        let cases: [(&str, Vec<&Toleration>, Stay); 6] = [
            ("none used: at once", vec![], Stay::For(Duration::ZERO)),
            ("shortest wins", vec![&ten, &five], Stay::For(Duration::from_secs(5))),
            ("forever alone", vec![&forever], Stay::Forever),
            ("a limit beats forever", vec![&forever, &ten], Stay::For(Duration::from_secs(10))),
            ("zero is at once", vec![&ten, &zero], Stay::For(Duration::ZERO)),
            ("negative is at once", vec![&negative], Stay::For(Duration::ZERO)),
        ];
        for (name, used, want) in cases {
            assert_eq!(min_toleration(&used), want, "{name}");
        }
    }

    #[test]
    fn every_taint_needs_a_toleration() {
        let taints = [taint("a", NO_EXECUTE), taint("b", NO_EXECUTE)];
        let tols = [tol("a", Some(5)), tol("b", None)];
        let used = matching_tolerations(&taints, &tols).expect("all tolerated");
        assert_eq!(used.len(), 2);
        assert!(matching_tolerations(&taints, &tols[..1]).is_none());
        assert_eq!(matching_tolerations(&[], &tols).map(|u| u.len()), Some(0));
    }

    #[test]
    fn plan_table() {
        let e2e = [taint("kubernetes.io/e2e-evict-taint-key", NO_EXECUTE)];
        let tol_for = |s| vec![tol("kubernetes.io/e2e-evict-taint-key", s)];
        let earlier = Scheduled { created_at: at(0), fire_at: at(10) };
        let cases = [
            ("no taints cancels", vec![], tol_for(Some(10)), Some(earlier), at(3), Plan::Cancel),
            ("untolerated: now", e2e.to_vec(), vec![], None, at(3), Plan::Schedule(Scheduled { created_at: at(3), fire_at: at(3) })),
            ("untolerated replaces a later one", e2e.to_vec(), vec![], Some(earlier), at(3), Plan::Schedule(Scheduled { created_at: at(3), fire_at: at(3) })),
            ("tolerated forever cancels", e2e.to_vec(), tol_for(None), Some(earlier), at(3), Plan::Cancel),
            ("tolerated for a while: later", e2e.to_vec(), tol_for(Some(25)), None, at(3), Plan::Schedule(Scheduled { created_at: at(3), fire_at: at(28) })),
            ("already scheduled earlier: kept", e2e.to_vec(), tol_for(Some(10)), Some(earlier), at(3), Plan::Keep),
            (
                "scheduled this very instant: replaced",
                e2e.to_vec(),
                tol_for(Some(10)),
                Some(Scheduled { created_at: at(3), fire_at: at(5) }),
                at(3),
                Plan::Schedule(Scheduled { created_at: at(3), fire_at: at(13) }),
            ),
        ];
        for (name, taints, tols, existing, now, want) in cases {
            assert_eq!(plan(&taints, &tols, existing, now), want, "{name}");
        }
    }

    #[test]
    fn node_changes_concern_its_pods_when_no_execute_taints_change() {
        let node = |taints: Vec<Taint>| -> Arc<Node> {
            Arc::new(serde_json::from_value(json!({"metadata": {"name": "n1"}, "spec": {"taints": taints}})).expect("node"))
        };
        let (reader, mut writer) = kube::runtime::reflector::store::<Pod>();
        for (name, node_name) in [("p1", "n1"), ("p2", "n2"), ("p3", "n1")] {
            let pod: Pod = serde_json::from_value(json!({"metadata": {"name": name, "namespace": "ns"}, "spec": {"nodeName": node_name, "containers": []}})).expect("pod");
            writer.apply_watcher_event(&watcher::Event::Apply(pod));
        }
        let same = Change::Updated { old: node(vec![taint("x", "NoSchedule")]), new: node(vec![]) };
        assert!(node_trigger(same, &reader).is_empty(), "a NoSchedule change is not ours");
        let tainted = Change::Updated { old: node(vec![]), new: node(vec![taint("x", NO_EXECUTE)]) };
        let mut names: Vec<String> = node_trigger(tainted, &reader).into_iter().map(|r| r.name).collect();
        names.sort();
        assert_eq!(names, ["p1", "p3"]);
    }
}
