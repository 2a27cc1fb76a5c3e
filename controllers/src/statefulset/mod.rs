//! The StatefulSet controller: pods with stable identities (`<set>-<ordinal>`, hostname and
//! subdomain, their own PersistentVolumeClaims made from `volumeClaimTemplates` before the
//! pod), created in ordinal order and removed in reverse, waiting for each pod to be
//! Running, Ready and available (OrderedReady) or all at once (Parallel); template
//! revisions kept as ControllerRevisions; RollingUpdate (highest ordinal first, down to
//! the partition) or OnDelete; finished pods deleted so they come back; and the status
//! upstream reports.
//!
//! [`identity`] is what makes a pod one of the set's, [`revisions`] the template history,
//! [`update`] the plan of one sync; this module reads the caches, carries the plan out and
//! writes the status. Expectations (as the ReplicaSet controller keeps them) hold a sync
//! back until the pods it created and deleted were seen, where upstream relies on
//! conflicts alone.
//!
//! Not done: `maxUnavailable` (behind upstream's alpha MaxUnavailableStatefulSet gate).

pub mod identity;
pub mod revisions;
pub mod update;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ironkube_machinery::selectors::label::Selector;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, instrument, warn};

use crate::controller_ref::{self, Claim};
use crate::expectations::{self, Expectations};
use crate::history;
use crate::informer::{self, Change};
use crate::recorder::Recorder;
use crate::replicaset::{key, slow_start_batch};
use update::{Inputs, Step};

/// The controller's name in `--controllers`.
pub const NAME: &str = "statefulset";
const EVENT_SOURCE: &str = "statefulset-controller";

/// What went wrong syncing one StatefulSet.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("the caches stopped: {0}")]
    Cache(String),
    #[error("encoding a revision: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("writing controller revision {name}: {source}")]
    Revision {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("{verb} Pod {pod}: {source}")]
    Pod {
        verb: &'static str,
        pod: String,
        #[source]
        source: kube::Error,
    },
    #[error("{0}")]
    Claims(String),
    #[error("can't adopt {what}: {why}")]
    Adopt { what: &'static str, why: String },
}

impl informer::Conflict for Error {
    fn is_conflict(&self) -> bool {
        match self {
            Error::Api(e) | Error::Revision { source: e, .. } | Error::Pod { source: e, .. } => informer::is_conflict(e),
            _ => false,
        }
    }
}

struct Ctx {
    client: kube::Client,
    pods: Store<Pod>,
    claims: Store<PersistentVolumeClaim>,
    revisions: Store<ControllerRevision>,
    expectations: Arc<Expectations>,
    recorder: Recorder,
}

/// How an API error reads in an event (Go prints the Status message).
fn message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

fn selector_of(set: &StatefulSet) -> Option<Selector> {
    Selector::from_label_selector(Some(&set.spec.as_ref()?.selector)).ok()
}

fn labels(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> BTreeMap<String, String> {
    meta.labels.clone().unwrap_or_default()
}

fn name(set: &StatefulSet) -> &str {
    set.metadata.name.as_deref().unwrap_or("")
}

fn namespace(set: &StatefulSet) -> &str {
    set.metadata.namespace.as_deref().unwrap_or("")
}

/// Upstream's `recordPodEvent`.
fn pod_event(ctx: &Ctx, set: &StatefulSet, verb: &str, pod: &str, result: Result<(), String>) {
    let title = format!("{}{}", verb[..1].to_uppercase(), &verb[1..]);
    match result {
        Ok(()) => ctx.recorder.normal(set, &format!("Successful{title}"), format!("{verb} Pod {pod} in StatefulSet {} successful", name(set))),
        Err(e) => ctx.recorder.warning(set, &format!("Failed{title}"), format!("{verb} Pod {pod} in StatefulSet {} failed error: {e}", name(set))),
    }
}

/// Upstream's `recordClaimEvent` (for creations).
fn claim_event(ctx: &Ctx, set: &StatefulSet, claim: &str, pod: &str, result: Result<(), String>) {
    match result {
        Ok(()) => ctx.recorder.normal(set, "SuccessfulCreate", format!("create Claim {claim} Pod {pod} in StatefulSet {} success", name(set))),
        Err(e) => ctx.recorder.warning(set, "FailedCreate", format!("create Claim {claim} for Pod {pod} in StatefulSet {} failed error: {e}", name(set))),
    }
}

fn claim_lookup(ctx: &Ctx, ns: &str, claim: &str) -> Option<Arc<PersistentVolumeClaim>> {
    ctx.claims.get(&ObjectRef::new(claim).within(ns))
}

/// Upstream's `createPersistentVolumeClaims`: the pod's claims that do not exist yet.
async fn create_claims(ctx: &Ctx, set: &StatefulSet, pod: &Pod) -> Result<(), Error> {
    let Some(ordinal) = identity::ordinal(pod) else { return Ok(()) };
    let pod_name = pod.metadata.name.as_deref().unwrap_or("");
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), namespace(set));
    let mut errors = Vec::new();
    for (_, claim) in identity::claims(set, ordinal) {
        let claim_name = claim.metadata.name.clone().unwrap_or_default();
        match claim_lookup(ctx, namespace(set), &claim_name) {
            Some(found) if found.metadata.deletion_timestamp.is_some() => errors.push(format!("pvc {claim_name} is being deleted")),
            Some(_) => {}
            None => match api.create(&PostParams::default(), &claim).await {
                Ok(_) => claim_event(ctx, set, &claim_name, pod_name, Ok(())),
                Err(kube::Error::Api(e)) if e.code == 409 => errors.push(format!("failed to create PVC {claim_name}: {}", e.message)),
                Err(e) => {
                    claim_event(ctx, set, &claim_name, pod_name, Err(message(&e)));
                    errors.push(format!("failed to create PVC {claim_name}: {}", message(&e)));
                }
            },
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(Error::Claims(errors.join(", "))) }
}

/// Upstream's `UpdatePodClaimForRetentionPolicy`: the owners of the pod's claims as the
/// set's retention policy wants them.
async fn fix_claim_owners(ctx: &Ctx, set: &StatefulSet, pod: &Pod) -> Result<(), Error> {
    let Some(ordinal) = identity::ordinal(pod) else { return Ok(()) };
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), namespace(set));
    for (_, template) in identity::claims(set, ordinal) {
        let claim_name = template.metadata.name.clone().unwrap_or_default();
        let Some(claim) = claim_lookup(ctx, namespace(set), &claim_name) else { continue };
        if identity::has_unexpected_controller(&claim, set, pod) {
            ctx.recorder.warning(
                set,
                "ConflictingController",
                format!("PersistentVolumeClaim {claim_name} has a conflicting OwnerReference that acts as a manging controller, the retention policy is ignored for this claim"),
            );
        }
        if !identity::claim_owners_up_to_date(&claim, set, pod) {
            let mut updated = (*claim).clone();
            updated.metadata.owner_references = Some(identity::claim_owners(&claim, set, pod));
            api.replace(&claim_name, &PostParams::default(), &updated)
                .await
                .map_err(|e| Error::Claims(format!("could not update claim {claim_name} for delete policy ownerRefs: {}", message(&e))))?;
        }
    }
    Ok(())
}

async fn delete_pod(ctx: &Ctx, set: &StatefulSet, pod: &Pod) -> Result<(), kube::Error> {
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace(set));
    let result = api.delete(&pod_name, &DeleteParams::default()).await.map(|_| ());
    pod_event(ctx, set, "delete", &pod_name, result.as_ref().map(|_| ()).map_err(message));
    if result.is_err() {
        ctx.expectations.deletion_observed(&key(&set.metadata), &key(&pod.metadata));
    }
    result
}

/// The set at its update revision, which pods are repaired against.
struct Revisions<'a> {
    update: &'a StatefulSet,
}

/// Carries out one step.
async fn execute(ctx: &Ctx, set: &StatefulSet, sets: &Revisions<'_>, step: &Step, deleted_for_update: &std::sync::atomic::AtomicBool) -> Result<(), Error> {
    let set_key = key(&set.metadata);
    let pod_name = step.pod_name().to_string();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace(set));
    let pod_error = |verb, source| Error::Pod { verb, pod: pod_name.clone(), source };
    match step {
        Step::Create(pod) => {
            if let Err(e) = create_claims(ctx, set, pod).await {
                ctx.expectations.creation_observed(&set_key);
                pod_event(ctx, set, "create", &pod_name, Err(e.to_string()));
                return Err(e);
            }
            match pods.create(&PostParams::default(), pod).await {
                Ok(created) => {
                    if let Err(e) = fix_claim_owners(ctx, set, &created).await {
                        pod_event(ctx, set, "update", &pod_name, Err(e.to_string()));
                        return Err(e);
                    }
                    pod_event(ctx, set, "create", &pod_name, Ok(()));
                    Ok(())
                }
                Err(e) => {
                    ctx.expectations.creation_observed(&set_key);
                    if !matches!(&e, kube::Error::Api(s) if s.code == 409) {
                        pod_event(ctx, set, "create", &pod_name, Err(message(&e)));
                    }
                    Err(pod_error("create", e))
                }
            }
        }
        Step::CreateClaims(pod) => {
            create_claims(ctx, set, pod).await?;
            if let Err(e) = fix_claim_owners(ctx, set, pod).await {
                pod_event(ctx, set, "update", &pod_name, Err(e.to_string()));
                return Err(e);
            }
            Ok(())
        }
        Step::Repair(pod) => {
            // Upstream's UpdateStatefulPod, against the set at its update revision.
            let set = sets.update;
            let Some(ordinal) = identity::ordinal(pod) else { return Ok(()) };
            let mut fixed = (**pod).clone();
            if !identity::identity_matches(set, &fixed) {
                identity::update_identity(set, &mut fixed, ordinal);
            }
            if !identity::storage_matches(set, &fixed) {
                identity::update_storage(set, &mut fixed, ordinal);
                if let Err(e) = create_claims(ctx, set, &fixed).await {
                    pod_event(ctx, set, "update", &pod_name, Err(e.to_string()));
                    return Err(e);
                }
            }
            if let Err(e) = fix_claim_owners(ctx, set, &fixed).await {
                pod_event(ctx, set, "update", &pod_name, Err(e.to_string()));
                return Err(e);
            }
            if fixed == **pod {
                return Ok(());
            }
            let result = pods.replace(&pod_name, &PostParams::default(), &fixed).await;
            pod_event(ctx, set, "update", &pod_name, result.as_ref().map(|_| ()).map_err(message));
            result.map(|_| ()).map_err(|e| pod_error("update", e))
        }
        Step::FixClaims(pod) => fix_claim_owners(ctx, sets.update, pod).await,
        Step::DeleteFinished(pod) | Step::Delete(pod) => delete_pod(ctx, set, pod).await.map_err(|e| pod_error("delete", e)),
        Step::DeleteForUpdate(pod) => match delete_pod(ctx, set, pod).await {
            Ok(()) => {
                deleted_for_update.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            }
            Err(e) if informer::is_not_found(&e) => {
                deleted_for_update.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            }
            Err(e) => Err(pod_error("delete", e)),
        },
    }
}

/// Runs one pod's steps in order.
async fn run_steps(ctx: &Ctx, set: &StatefulSet, sets: &Revisions<'_>, steps: &[Step], deleted: &std::sync::atomic::AtomicBool) -> Result<(), Error> {
    for step in steps {
        execute(ctx, set, sets, step, deleted).await?;
    }
    Ok(())
}

/// Runs the plan's stages; returns whether a pod was deleted for the update.
async fn run_plan(ctx: &Ctx, set: &StatefulSet, sets: &Revisions<'_>, stages: Vec<Vec<Vec<Step>>>) -> (bool, Result<(), Error>) {
    let set_key = key(&set.metadata);
    let steps = stages.iter().flatten().flatten();
    let creations = steps.clone().filter(|s| matches!(s, Step::Create(_))).count();
    let deletions: Vec<String> = steps
        .filter(|s| matches!(s, Step::Delete(_) | Step::DeleteFinished(_) | Step::DeleteForUpdate(_)))
        .map(|s| format!("{}/{}", namespace(set), s.pod_name()))
        .collect();
    if creations > 0 || !deletions.is_empty() {
        ctx.expectations.expect(&set_key, creations, deletions);
    }
    let deleted = std::sync::atomic::AtomicBool::new(false);
    let monotonic = update::monotonic(set);
    for (i, stage) in stages.iter().enumerate() {
        let result = if monotonic {
            let mut result = Ok(());
            for steps in stage {
                result = run_steps(ctx, set, sets, steps, &deleted).await;
                if result.is_err() {
                    break;
                }
            }
            result
        } else {
            let queue = std::sync::Mutex::new(stage.iter());
            let (_, err) = slow_start_batch(stage.len(), 1, || {
                let next = queue.lock().ok().and_then(|mut q| q.next());
                let deleted = &deleted;
                async move {
                    match next {
                        Some(steps) => run_steps(ctx, set, sets, steps, deleted).await,
                        None => Ok(()),
                    }
                }
            })
            .await;
            err.map_or(Ok(()), Err)
        };
        if let Err(e) = result {
            // What the later stages would have created or deleted will not be seen.
            for step in stages.iter().skip(i + 1).flatten().flatten() {
                match step {
                    Step::Create(_) => ctx.expectations.creation_observed(&set_key),
                    Step::Delete(p) | Step::DeleteFinished(p) | Step::DeleteForUpdate(p) => ctx.expectations.deletion_observed(&set_key, &key(&p.metadata)),
                    _ => {}
                }
            }
            return (deleted.into_inner(), Err(e));
        }
    }
    (deleted.into_inner(), Ok(()))
}

/// Adopts matching orphans and releases owned pods that stopped matching; returns the
/// set's pods (upstream's `getPodsForStatefulSet`: only pods named as the set's).
async fn claim_pods(ctx: &Ctx, set: &StatefulSet, selector: &Selector) -> Result<Vec<Arc<Pod>>, Error> {
    let ns = namespace(set);
    let candidates: Vec<Arc<Pod>> = ctx.pods.state().into_iter().filter(|p| p.metadata.namespace.as_deref() == Some(ns) && identity::is_member(set, p)).collect();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let owner = controller_ref::new_controller_ref("apps/v1", "StatefulSet", &set.metadata);
    let mut can_adopt: Option<Result<(), String>> = None;
    let mut claimed = Vec::new();
    let mut errors = Vec::new();
    for pod in candidates {
        let matches = selector.matches(&labels(&pod.metadata));
        let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        match controller_ref::claim(&set.metadata, &pod.metadata, matches) {
            Claim::Owned => claimed.push(pod),
            Claim::Ignore => {}
            Claim::Adopt => {
                if can_adopt.is_none() {
                    can_adopt = Some(recheck_adoption(ctx, set).await?);
                }
                if let Some(Err(why)) = &can_adopt {
                    errors.push(format!("can't adopt Pod {ns}/{pod_name}: {why}"));
                    continue;
                }
                match api.patch(&pod_name, &PatchParams::default(), &Patch::Strategic(controller_ref::adopt_patch(&owner, &pod_uid))).await {
                    Ok(adopted) => claimed.push(Arc::new(adopted)),
                    Err(e) if informer::is_not_found(&e) => {}
                    Err(e) => errors.push(e.to_string()),
                }
            }
            Claim::Release => match api.patch(&pod_name, &PatchParams::default(), &Patch::Strategic(controller_ref::release_patch(&owner.uid, &pod_uid))).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 422 => {}
                Err(e) => errors.push(e.to_string()),
            },
        }
    }
    if errors.is_empty() { Ok(claimed) } else { Err(Error::Adopt { what: "Pods", why: errors.join("; ") }) }
}

/// Upstream's `canAdoptFunc`: a live read that the set is still there and not deleting.
async fn recheck_adoption(ctx: &Ctx, set: &StatefulSet) -> Result<Result<(), String>, Error> {
    let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), namespace(set));
    Ok(match api.get_opt(name(set)).await? {
        Some(fresh) if fresh.metadata.uid != set.metadata.uid => Err(format!(
            "original StatefulSet {}/{} is gone: got uid {}, wanted {}",
            namespace(set),
            name(set),
            fresh.metadata.uid.as_deref().unwrap_or(""),
            set.metadata.uid.as_deref().unwrap_or("")
        )),
        Some(fresh) if fresh.metadata.deletion_timestamp.is_some() => Err(format!("{}/{} has just been deleted at {:?}", namespace(set), name(set), fresh.metadata.deletion_timestamp)),
        Some(_) => Ok(()),
        None => Err(format!("StatefulSet {}/{} not found", namespace(set), name(set))),
    })
}

/// The set's revisions (ours, or orphans matching its selector, which are adopted),
/// sorted.
async fn owned_revisions(ctx: &Ctx, set: &StatefulSet, selector: &Selector) -> Result<Vec<Arc<ControllerRevision>>, Error> {
    let uid = set.metadata.uid.as_deref().unwrap_or("");
    let mut owned = Vec::new();
    let mut can_adopt: Option<Result<(), String>> = None;
    for r in ctx.revisions.state() {
        if r.metadata.namespace.as_deref() != Some(namespace(set)) || !selector.matches(&labels(&r.metadata)) {
            continue;
        }
        match controller_ref::controller_of(&r.metadata) {
            Some(c) if c.uid == uid => owned.push(r),
            Some(_) => {}
            None => {
                if can_adopt.is_none() {
                    can_adopt = Some(recheck_adoption(ctx, set).await?);
                }
                if let Some(Err(why)) = &can_adopt {
                    return Err(Error::Adopt { what: "ControllerRevisions", why: why.clone() });
                }
                owned.push(revisions::adopt(&ctx.client, set, &r).await?);
            }
        }
    }
    history::sort(&mut owned);
    Ok(owned)
}

/// Writes `status` when it differs from the set's. On a conflict the set changed under
/// the sync: the error brings a quick retry that works from the fresh set, rather than
/// writing a status computed from the stale one over it.
async fn write_status(ctx: &Ctx, set: &StatefulSet, status: StatefulSetStatus) -> Result<(), Error> {
    if !update::status_changed(set, &status) {
        return Ok(());
    }
    let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), namespace(set));
    let mut updated = set.clone();
    updated.status = Some(status);
    match api.replace_status(name(set), &PostParams::default(), &updated).await {
        Ok(_) => Ok(()),
        Err(e) if informer::is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[instrument(skip_all, fields(controller = NAME, key = %key(&set.metadata)))]
async fn reconcile(set: Arc<StatefulSet>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    for ready in [ctx.pods.wait_until_ready().await, ctx.claims.wait_until_ready().await, ctx.revisions.wait_until_ready().await] {
        ready.map_err(|e| Error::Cache(e.to_string()))?;
    }
    let set_key = key(&set.metadata);
    let Some(selector) = selector_of(&set) else {
        warn!(stateful_set = %set_key, "invalid selector; ignoring");
        return Ok(Action::await_change());
    };
    let mut sorted = owned_revisions(&ctx, &set, &selector).await?;
    let pods = claim_pods(&ctx, &set, &selector).await?;

    // Upstream's getStatefulSetRevisions.
    let mut collision_count = set.status.as_ref().and_then(|s| s.collision_count).unwrap_or(0);
    let update_revision = match revisions::choose_update(&set, &sorted, collision_count)? {
        revisions::UpdateRevision::Latest(r) => r,
        revisions::UpdateRevision::Renumber(r, number) => {
            let renumbered = revisions::renumber(&ctx.client, &set, &r, number).await?;
            sorted.retain(|o| o.metadata.name != renumbered.metadata.name);
            sorted.push(renumbered.clone());
            renumbered
        }
        revisions::UpdateRevision::Create(r) => {
            let (created, count) = revisions::create(&ctx.client, &set, *r, collision_count).await?;
            collision_count = count;
            if !sorted.iter().any(|o| o.metadata.name == created.metadata.name) {
                sorted.push(created.clone());
            }
            created
        }
    };
    let current_name = set.status.as_ref().and_then(|s| s.current_revision.clone()).unwrap_or_default();
    let current_revision = sorted.iter().find(|r| r.metadata.name.as_deref() == Some(current_name.as_str())).cloned().unwrap_or_else(|| update_revision.clone());
    let current_set = revisions::apply(&set, &current_revision)?;
    let update_set = revisions::apply(&set, &update_revision)?;
    let (current_name, update_name) = (current_revision.metadata.name.clone().unwrap_or_default(), update_revision.metadata.name.clone().unwrap_or_default());

    let ns = namespace(&set).to_string();
    let lookup = |claim: &str| claim_lookup(&ctx, &ns, claim);
    let now = Timestamp::now();
    let plan = update::plan(&Inputs {
        set: &set,
        current_set: &current_set,
        update_set: &update_set,
        current_revision: &current_name,
        update_revision: &update_name,
        collision_count,
        pods: &pods,
        claim: &lookup,
        now,
    });
    let mut status = plan.status;
    let sync_result = if ctx.expectations.satisfied(&set_key) {
        debug!(stateful_set = %set_key, steps = plan.stages.iter().flatten().count(), "syncing");
        let (deleted_for_update, result) = run_plan(&ctx, &set, &Revisions { update: &update_set }, plan.stages).await;
        if deleted_for_update {
            status.current_replicas = status.current_replicas.map(|n| n - 1).filter(|n| *n != 0);
        }
        result
    } else {
        debug!(stateful_set = %set_key, pending = ?ctx.expectations.pending(&set_key), "waiting for pod changes to be seen");
        Ok(())
    };
    update::complete_rolling_update(&set, &mut status);
    let available = status.available_replicas.unwrap_or(0);
    let status_result = write_status(&ctx, &set, status).await;

    // Upstream's truncateHistory, also after a failed sync.
    let doomed = revisions::to_delete(&set, &sorted, &pods, &[current_name.as_str(), update_name.as_str()]);
    let truncated = revisions::delete(&ctx.client, &set, &doomed).await;
    sync_result?;
    status_result?;
    truncated?;

    let min_ready = set.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0);
    if min_ready > 0 && available != identity::replicas(&set) {
        return Ok(Action::requeue(Duration::from_secs(u64::try_from(min_ready).unwrap_or(1))));
    }
    Ok(Action::await_change())
}

/// The sets whose selector matches an orphan pod.
fn matching(store: &Store<StatefulSet>, pod: &Pod) -> Vec<ObjectRef<StatefulSet>> {
    let pod_labels = labels(&pod.metadata);
    store
        .state()
        .iter()
        .filter(|s| s.metadata.namespace == pod.metadata.namespace)
        .filter(|s| selector_of(s).is_some_and(|sel| !sel.is_empty() && sel.matches(&pod_labels)))
        .map(|s| ObjectRef::from_obj(&**s))
        .collect()
}

/// Upstream's pod handlers: the sets a pod change concerns, with expectations lowered.
fn pod_triggers(change: Change<Pod>, store: &Store<StatefulSet>, exp: &Expectations) -> Vec<ObjectRef<StatefulSet>> {
    let mut out = Vec::new();
    let (old, new) = match &change {
        Change::Added(p) | Change::Deleted(p) => (None, p.clone()),
        Change::Updated { old, new } => (Some(old.clone()), new.clone()),
    };
    let mut reference_changed = false;
    let mut labels_changed = false;
    if let Some(old) = &old {
        if old.metadata.resource_version == new.metadata.resource_version {
            return out;
        }
        labels_changed = old.metadata.labels != new.metadata.labels;
        let old_ref = controller_ref::controller_of(&old.metadata);
        reference_changed = old_ref != controller_ref::controller_of(&new.metadata);
        if reference_changed && old_ref.is_some() {
            out.extend(controller_ref::resolve(store, "StatefulSet", &old.metadata).map(|s| ObjectRef::from_obj(&*s)));
        }
    }
    if controller_ref::controller_of(&new.metadata).is_some() {
        if let Some(set) = controller_ref::resolve(store, "StatefulSet", &new.metadata) {
            exp.observe(&key(&set.metadata), &change);
            out.push(ObjectRef::from_obj(&*set));
        }
        return out;
    }
    let orphan_news = match &change {
        Change::Added(_) => new.metadata.deletion_timestamp.is_none(),
        Change::Updated { .. } => labels_changed || reference_changed,
        Change::Deleted(_) => false,
    };
    if orphan_news {
        out.extend(matching(store, &new));
    }
    out
}

pub async fn run(client: kube::Client, stop: CancellationToken) {
    let (sets, set_changes) = informer::informer(Api::<StatefulSet>::all(client.clone()), watcher::Config::default(), "statefulsets");
    let (pods, pod_changes) = informer::informer(Api::<Pod>::all(client.clone()), watcher::Config::default(), "pods");
    let (claims, claim_changes) = informer::informer(Api::<PersistentVolumeClaim>::all(client.clone()), watcher::Config::default(), "persistentvolumeclaims");
    let (revisions, revision_changes) = informer::informer(Api::<ControllerRevision>::all(client.clone()), watcher::Config::default(), "controllerrevisions");
    let expectations = Arc::new(Expectations::default());
    let set_triggers = expectations::owner_triggers(set_changes, expectations.clone());
    let pod_triggers = {
        let (exp, store) = (expectations.clone(), sets.clone());
        pod_changes.flat_map(move |change| futures::stream::iter(pod_triggers(change, &store, &exp)))
    };
    // Claims and revisions are read from their caches only: their streams just keep them
    // filled.
    let quiet = futures::stream::select(claim_changes.filter_map(|_| futures::future::ready(None)), revision_changes.filter_map(|_| futures::future::ready(None)));
    let triggers = futures::stream::select(futures::stream::select(set_triggers, pod_triggers), quiet).boxed();
    let ctx = Arc::new(Ctx {
        recorder: Recorder::new(client.clone(), EVENT_SOURCE),
        client,
        pods,
        claims,
        revisions,
        expectations,
    });
    info!("starting the StatefulSet controller");
    informer::run(NAME, sets, triggers, ctx, reconcile, informer::Retry::default(), stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_anywhere_are_retried_quickly() {
        use informer::Conflict;
        let conflict = || {
            let mut status = kube::core::Status::failure("conflict", "Conflict");
            status.code = 409;
            kube::Error::Api(status.boxed())
        };
        assert!(Error::Pod { verb: "update", pod: "web-0".into(), source: conflict() }.is_conflict());
        assert!(Error::Revision { name: "web-1".into(), source: conflict() }.is_conflict());
        assert!(!Error::Claims("pvc www-web-0 is being deleted".into()).is_conflict());
        assert_eq!(message(&conflict()), "conflict");
    }
}
