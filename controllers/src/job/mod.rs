//! The Job controller: runs pods from the template until `completions` of them succeeded
//! (or, without completions, until one did and the rest finished), at most `parallelism`
//! at a time; retries failures with upstream's exponential backoff (10 s doubling, at
//! most 6 min) until `backoffLimit`; `activeDeadlineSeconds`; `suspend`; Indexed jobs
//! (one completion per index, `completedIndexes`). Pods carry the
//! `batch.kubernetes.io/job-tracking` finalizer, and finished pods are counted the way
//! upstream counts them: first recorded in `status.uncountedTerminatedPods`, then the
//! finalizer removed, then moved to `succeeded`/`failed`. The job ends with upstream's
//! two-step conditions: SuccessCriteriaMet then Complete, FailureTarget then Failed, the
//! second once no pod is terminating.
//!
//!
//! The policies: `podFailurePolicy` (FailJob, FailIndex, Ignore, Count on exit codes and pod
//! conditions, in `pod_failure_policy`), `successPolicy` (`success_policy`),
//! `backoffLimitPerIndex`/`maxFailedIndexes` (`per_index`) and `podReplacementPolicy`
//! (Failed: a replacement waits until the pod it replaces is Failed, not merely being
//! deleted; the default with a podFailurePolicy). Pods are claimed as upstream claims
//! them: matching orphans adopted (with the tracking finalizer), owned pods that stopped
//! matching released (without it).
//!
//! Not done yet: managedBy (jobs managed elsewhere are reconciled anyway), the
//! `OnFailure` restart-count limit (`pastBackoffLimitOnFailure`), upstream's metrics.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::join_all;
use ironkube_machinery::selectors::label::Selector;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, instrument, warn};

use crate::controller_ref::{self, Claim};
use crate::expectations::{self, Expectations};
use crate::informer::{self, Change};
use crate::recorder::Recorder;
use crate::replicaset::{is_ready, key, slow_start_batch};

pub mod per_index;
pub mod pod_failure_policy;
pub mod success_policy;

pub const NAME: &str = "job";
const EVENT_SOURCE: &str = "job-controller";
/// The finalizer that keeps a finished pod until the controller counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// The annotation (and label) holding an Indexed job pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// Upstream's `MaxPodCreateDeletePerSync`.
const MAX_CREATE_DELETE: usize = 500;
/// Upstream's `DefaultJobPodFailureBackOff` and `MaxJobPodFailureBackOff`.
const BACKOFF_BASE: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(360);

pub type Error = informer::ReconcileError;

struct Ctx {
    client: kube::Client,
    pods: Store<Pod>,
    expectations: Arc<Expectations>,
    recorder: Recorder,
}

fn spec_i32(job: &Job, f: impl Fn(&k8s_openapi::api::batch::v1::JobSpec) -> Option<i32>) -> Option<i32> {
    job.spec.as_ref().and_then(f)
}

fn parallelism(job: &Job) -> i32 {
    spec_i32(job, |s| s.parallelism).unwrap_or(1).max(0)
}

fn completions(job: &Job) -> Option<i32> {
    spec_i32(job, |s| s.completions)
}

fn backoff_limit(job: &Job) -> i32 {
    spec_i32(job, |s| s.backoff_limit).unwrap_or(6)
}

fn is_indexed(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed")
}

fn suspended(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.suspend) == Some(true)
}

fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

fn has_finalizer(pod: &Pod) -> bool {
    pod.metadata.finalizers.iter().flatten().any(|f| f == TRACKING_FINALIZER)
}

fn uid(meta: &ObjectMeta) -> String {
    meta.uid.clone().unwrap_or_default()
}

/// Upstream's `onlyReplaceFailedPods`: podReplacementPolicy Failed (the default with a
/// podFailurePolicy), under which a pod being deleted is not failed until its phase says so.
fn only_replace_failed(job: &Job) -> bool {
    let spec = job.spec.as_ref();
    spec.and_then(|s| s.pod_replacement_policy.as_deref()) == Some("Failed") || spec.is_some_and(|s| s.pod_failure_policy.is_some())
}

/// Upstream's `isPodFailed`: Failed, or (unless only failed pods are replaced) deleted
/// before it succeeded.
fn counts_as_failed(job: &Job, pod: &Pod) -> bool {
    if phase(pod) == "Failed" {
        return true;
    }
    !only_replace_failed(job) && pod.metadata.deletion_timestamp.is_some() && phase(pod) != "Succeeded"
}

fn failure_policy(job: &Job) -> Option<&k8s_openapi::api::batch::v1::PodFailurePolicy> {
    job.spec.as_ref().and_then(|s| s.pod_failure_policy.as_ref())
}

/// Whether a failed pod counts towards `backoffLimit` (an Ignore rule says it does not).
fn failure_counts(job: &Job, pod: &Pod) -> bool {
    pod_failure_policy::evaluate(failure_policy(job), pod).counts
}

/// Upstream's `getFailJobMessage`: the message of the first failed pod matching a FailJob rule.
fn fail_job_message(job: &Job, pods: &[Arc<Pod>]) -> Option<String> {
    let policy = failure_policy(job)?;
    pods.iter().filter(|p| counts_as_failed(job, p)).find_map(|p| pod_failure_policy::evaluate(Some(policy), p).fail_job_message)
}

fn is_active(pod: &Pod) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && pod.metadata.deletion_timestamp.is_none()
}

fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some() && !matches!(phase(pod), "Succeeded" | "Failed")
}

fn completion_index(pod: &Pod) -> Option<i32> {
    pod.metadata.annotations.as_ref()?.get(COMPLETION_INDEX)?.parse().ok().filter(|i: &i32| *i >= 0)
}

/// When a pod finished (upstream's `getFinishedTime`): the latest container termination,
/// else when it stopped being Ready, else its deletion, else its creation.
fn finish_time(pod: &Pod) -> Option<Timestamp> {
    let status = pod.status.as_ref();
    let containers = status
        .into_iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref().map(|t| t.0))
        .max();
    let not_ready = || {
        status?.conditions.iter().flatten().find(|c| c.type_ == "Ready" && c.status == "False")?.last_transition_time.as_ref().map(|t| t.0)
    };
    containers
        .or_else(not_ready)
        .or_else(|| pod.metadata.deletion_timestamp.as_ref().map(|t| t.0))
        .or_else(|| pod.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// `completedIndexes` text: "0-2,5,7,8" (upstream's orderedIntervals.String: runs of
/// three or more as ranges, pairs as two numbers).
pub fn format_intervals(indexes: &BTreeSet<i32>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut iter = indexes.iter().copied().peekable();
    while let Some(first) = iter.next() {
        let mut last = first;
        while iter.peek() == Some(&(last + 1)) {
            last = iter.next().unwrap_or(last);
        }
        out.push(match last - first {
            0 => first.to_string(),
            1 => format!("{first},{last}"),
            _ => format!("{first}-{last}"),
        });
    }
    out.join(",")
}

/// Parses `completedIndexes` back.
pub fn parse_intervals(s: &str) -> BTreeSet<i32> {
    parse_intervals_below(s, i32::MAX)
}

/// Parses an interval list keeping the indexes below `limit` (upstream's
/// `parseIndexesFromString` with the job's completions); malformed parts are skipped.
pub fn parse_intervals_below(s: &str, limit: i32) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<i32>(), b.parse::<i32>()),
            None => (part.parse::<i32>(), part.parse::<i32>()),
        };
        if let (Ok(a), Ok(b)) = (a, b)
            && a >= 0
            && a < limit
        {
            out.extend(a..=b.min(limit - 1));
        }
    }
    out
}

/// The pod the job creates (with `index` for Indexed jobs).
fn new_pod(job: &Job, index: Option<i32>) -> Pod {
    let template = job.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let mut spec = template.spec.unwrap_or_default();
    let name = job.metadata.name.clone().unwrap_or_default();
    let mut labels = meta.labels.unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    let mut finalizers = meta.finalizers.unwrap_or_default();
    if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
        finalizers.push(TRACKING_FINALIZER.into());
    }
    let generate_name = match index {
        Some(i) => {
            annotations.insert(COMPLETION_INDEX.into(), i.to_string());
            labels.insert(COMPLETION_INDEX.into(), i.to_string());
            if spec.hostname.as_deref().unwrap_or("").is_empty() {
                spec.hostname = Some(format!("{name}-{i}"));
            }
            // Upstream's addCompletionIndexEnvVariables.
            let env = EnvVar {
                name: "JOB_COMPLETION_INDEX".into(),
                value: None,
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        api_version: None,
                        field_path: format!("metadata.labels['{COMPLETION_INDEX}']"),
                    }),
                    ..Default::default()
                }),
            };
            for c in spec.init_containers.iter_mut().flatten().chain(spec.containers.iter_mut()) {
                let list = c.env.get_or_insert_with(Vec::new);
                if !list.iter().any(|e| e.name == "JOB_COMPLETION_INDEX") {
                    list.push(env.clone());
                }
            }
            format!("{name}-{i}-")
        }
        None => format!("{name}-"),
    };
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name),
            labels: Some(labels),
            annotations: Some(annotations),
            finalizers: Some(finalizers),
            owner_references: Some(vec![controller_ref::new_controller_ref("batch/v1", "Job", &job.metadata)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

fn condition(job: &Job, type_: &str) -> Option<JobCondition> {
    job.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == type_ && c.status == "True").cloned()
}

fn new_condition(type_: &str, reason: &str, message: &str, now: Timestamp) -> JobCondition {
    JobCondition {
        type_: type_.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// Upstream's `ensureJobConditionStatus`: sets a condition, keeping its transition time
/// when the status does not change; whether anything changed.
fn ensure_condition(conditions: &mut Vec<JobCondition>, type_: &str, status: &str, reason: &str, message: &str, now: Timestamp) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) if c.status == status => false,
        Some(c) => {
            c.status = status.into();
            c.reason = Some(reason.into());
            c.message = Some(message.into());
            c.last_probe_time = Some(Time(now));
            c.last_transition_time = Some(Time(now));
            true
        }
        None if status == "False" => false,
        None => {
            let mut c = new_condition(type_, reason, message, now);
            c.status = status.into();
            conditions.push(c);
            true
        }
    }
}

/// How long new pods must wait after recent failures (upstream's pod backoff store).
fn backoff_remaining(job: &Job, pods: &[Arc<Pod>], now: Timestamp) -> Option<Duration> {
    let last_success = pods.iter().filter(|p| phase(p) == "Succeeded").filter_map(|p| finish_time(p)).max();
    let failures: Vec<Timestamp> = pods
        .iter()
        .filter(|p| phase(p) == "Failed" && failure_counts(job, p))
        .filter_map(|p| finish_time(p))
        .filter(|t| last_success.is_none_or(|s| *t > s))
        .collect();
    let last = *failures.iter().max()?;
    let n = u32::try_from(failures.len()).unwrap_or(u32::MAX);
    let delay = BACKOFF_BASE.checked_mul(1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX)).unwrap_or(BACKOFF_MAX).min(BACKOFF_MAX);
    let since = Duration::try_from(now.duration_since(last)).unwrap_or_default();
    delay.checked_sub(since).filter(|d| !d.is_zero())
}

/// Indexes that still need a pod (no success and no active pod), lowest first.
/// (Failed indexes of backoffLimitPerIndex jobs are not run again.)
fn missing_indexes(job: &Job, indexes: &IndexState, active: &[Arc<Pod>], count: usize) -> Vec<i32> {
    let total = completions(job).unwrap_or(0);
    let busy: BTreeSet<i32> = active.iter().filter_map(|p| completion_index(p)).collect();
    (0..total).filter(|i| !indexes.succeeded.contains(i) && !indexes.failed.contains(i) && !busy.contains(i)).take(count).collect()
}

/// What an Indexed job knows about its indexes in one sync.
#[derive(Default)]
struct IndexState {
    succeeded: BTreeSet<i32>,
    /// With backoffLimitPerIndex: the indexes that failed for good.
    failed: BTreeSet<i32>,
    /// With backoffLimitPerIndex: per index to run again, its latest failed pod.
    last_failed: BTreeMap<i32, Arc<Pod>>,
}

struct Sync {
    active: i32,
    requeue: Option<Duration>,
}

/// Upstream's `manageJob`: creates or deletes pods towards the wanted number of active ones.
/// Where the job stands before `manage` acts.
struct Progress<'a> {
    /// Every pod of the job, finished ones included.
    all: &'a [Arc<Pod>],
    succeeded: i32,
    terminating: i32,
    indexes: &'a IndexState,
}

async fn manage(ctx: &Ctx, job: &Job, active: &[Arc<Pod>], progress: Progress<'_>, now: Timestamp) -> Result<Sync, Error> {
    let Progress { all, succeeded, terminating, indexes } = progress;
    let job_key = key(&job.metadata);
    let ns = job.metadata.namespace.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let n_active = i32::try_from(active.len()).unwrap_or(i32::MAX);
    if suspended(job) {
        let deleted = delete_pods(ctx, job, active.to_vec(), true).await?;
        return Ok(Sync { active: n_active - deleted, requeue: None });
    }
    let parallelism = parallelism(job);
    let want = match completions(job) {
        None if succeeded > 0 => n_active,
        None => parallelism,
        Some(c) => (c - succeeded).clamp(0, parallelism),
    };
    if n_active > want {
        // Newest and not-ready pods first, as upstream's activePodsForRemoval ranks them.
        let mut doomed = active.to_vec();
        doomed.sort_by_key(|p| (is_ready(p), std::cmp::Reverse(p.metadata.creation_timestamp.as_ref().map(|t| t.0))));
        let count = usize::try_from(n_active - want).unwrap_or(0).min(MAX_CREATE_DELETE);
        let deleted = delete_pods(ctx, job, doomed.into_iter().take(count).collect(), true).await?;
        return Ok(Sync { active: n_active - deleted, requeue: None });
    }
    // Pods being deleted hold their place until they failed when only failed pods are replaced.
    let replacing = if only_replace_failed(job) { terminating } else { 0 };
    let mut diff = usize::try_from(want - replacing - n_active).unwrap_or(0).min(MAX_CREATE_DELETE);
    if diff == 0 {
        return Ok(Sync { active: n_active, requeue: None });
    }
    let per_index = per_index::limit(job).is_some();
    if !per_index && let Some(wait) = backoff_remaining(job, all, now) {
        debug!(job = %job_key, ?wait, "pod creation backing off");
        return Ok(Sync { active: n_active, requeue: Some(wait) });
    }
    let to_create = if is_indexed(job) {
        let mut ix = missing_indexes(job, indexes, active, diff);
        if per_index {
            // Each index waits out its own back-off; the soonest ready one decides the requeue.
            let waits: Vec<Duration> = ix.iter().map(|i| per_index::remaining_backoff(indexes.last_failed.get(i).map(|p| &**p), now)).collect();
            let soonest = waits.iter().copied().filter(|w| !w.is_zero()).min();
            let ready: Vec<i32> = ix.iter().zip(&waits).filter(|(_, w)| w.is_zero()).map(|(i, _)| *i).collect();
            if ready.is_empty()
                && let Some(wait) = soonest
            {
                debug!(job = %job_key, ?wait, "indexes backing off");
                return Ok(Sync { active: n_active, requeue: Some(wait) });
            }
            ix = ready;
        }
        diff = ix.len();
        Some(ix)
    } else {
        None
    };
    ctx.expectations.expect_creations(&job_key, diff);
    let queue = std::sync::Mutex::new(to_create.into_iter().flatten());
    let (created, err) = slow_start_batch(diff, 1, || {
        let index = queue.lock().ok().and_then(|mut q| q.next());
        let api = api.clone();
        let mut pod = new_pod(job, if is_indexed(job) { index } else { None });
        if per_index && let Some(i) = index {
            let (failures, ignored) = per_index::replacement_counts(job, indexes.last_failed.get(&i).map(|p| &**p));
            let annotations = pod.metadata.annotations.get_or_insert_with(BTreeMap::new);
            annotations.insert(per_index::FAILURE_COUNT.into(), failures.to_string());
            if ignored > 0 {
                annotations.insert(per_index::IGNORED_FAILURE_COUNT.into(), ignored.to_string());
            }
        }
        async move {
            match api.create(&PostParams::default(), &pod).await {
                Ok(p) => {
                    ctx.recorder.normal(job, "SuccessfulCreate", format!("Created pod: {}", p.metadata.name.as_deref().unwrap_or("")));
                    Ok(())
                }
                Err(kube::Error::Api(e)) if e.code == 403 && e.message.contains("being terminated") => Ok(()),
                Err(e) => {
                    ctx.recorder.warning(job, "FailedCreate", format!("Error creating: {e}"));
                    Err(e)
                }
            }
        }
    })
    .await;
    for _ in created..diff {
        ctx.expectations.creation_observed(&job_key);
    }
    if let Some(e) = err {
        return Err(e.into());
    }
    Ok(Sync { active: n_active + i32::try_from(created).unwrap_or(0), requeue: None })
}

/// Deletes `pods`; how many went. With `uncounted`, the tracking finalizer goes first, as
/// upstream's deleteJobPods does for pods a suspension or a lower parallelism removes (they
/// count neither as failed nor as succeeded); a finished job's remaining pods keep it and
/// are counted as failed.
async fn delete_pods(ctx: &Ctx, job: &Job, pods: Vec<Arc<Pod>>, uncounted: bool) -> Result<i32, Error> {
    if pods.is_empty() {
        return Ok(0);
    }
    let job_key = key(&job.metadata);
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), job.metadata.namespace.as_deref().unwrap_or(""));
    ctx.expectations.expect_deletions(&job_key, pods.iter().map(|p| key(&p.metadata)));
    let results = join_all(pods.iter().map(|pod| {
        let api = api.clone();
        let job_key = job_key.clone();
        async move {
            let name = pod.metadata.name.clone().unwrap_or_default();
            if uncounted
                && has_finalizer(pod)
                && let Err(e) = remove_finalizer(&api, pod).await
            {
                ctx.expectations.deletion_observed(&job_key, &key(&pod.metadata));
                return Err(e);
            }
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {
                    ctx.recorder.normal(job, "SuccessfulDelete", format!("Deleted pod: {name}"));
                    Ok(true)
                }
                Err(e) => {
                    ctx.expectations.deletion_observed(&job_key, &key(&pod.metadata));
                    if informer::is_not_found(&e) { Ok(false) } else { Err(e) }
                }
            }
        }
    }))
    .await;
    let mut deleted = 0;
    for r in results {
        if r? {
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// Upstream's `getPodsForJob`: the job's pods, after adopting matching orphans (which get
/// the tracking finalizer) and releasing owned pods that stopped matching (which lose it).
async fn claim_pods(ctx: &Ctx, job: &Job, selector: &Selector) -> Result<Vec<Arc<Pod>>, Error> {
    let ns = job.metadata.namespace.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let owner = controller_ref::new_controller_ref("batch/v1", "Job", &job.metadata);
    // A job without a selector (never the case once the API server defaulted it) adopts nothing.
    let has_selector = job.spec.as_ref().is_some_and(|s| s.selector.is_some());
    let mut can_adopt: Option<Result<(), String>> = None;
    let mut claimed = Vec::new();
    let mut errors = Vec::new();
    let empty = BTreeMap::new();
    for pod in ctx.pods.state().into_iter().filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str())) {
        let matches = has_selector && selector.matches(pod.metadata.labels.as_ref().unwrap_or(&empty));
        let name = pod.metadata.name.clone().unwrap_or_default();
        let pod_uid = uid(&pod.metadata);
        match controller_ref::claim(&job.metadata, &pod.metadata, matches) {
            Claim::Owned => claimed.push(pod),
            Claim::Ignore => {}
            Claim::Adopt => {
                // A live read first: a job being deleted (or re-created) adopts nothing.
                if can_adopt.is_none() {
                    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
                    let job_name = job.metadata.name.as_deref().unwrap_or("");
                    can_adopt = Some(match jobs.get_opt(job_name).await? {
                        Some(fresh) if fresh.metadata.uid != job.metadata.uid => {
                            Err(format!("original Job {ns}/{job_name} is gone: got uid {}, wanted {}", uid(&fresh.metadata), owner.uid))
                        }
                        Some(fresh) if fresh.metadata.deletion_timestamp.is_some() => Err(format!("{ns}/{job_name} has just been deleted")),
                        Some(_) => Ok(()),
                        None => Err(format!("original Job {ns}/{job_name} is gone")),
                    });
                }
                if let Some(Err(why)) = &can_adopt {
                    errors.push(format!("can't adopt Pod {ns}/{name}: {why}"));
                    continue;
                }
                let mut patch = controller_ref::adopt_patch(&owner, &pod_uid);
                patch["metadata"]["finalizers"] = json!([TRACKING_FINALIZER]);
                match api.patch(&name, &PatchParams::default(), &Patch::Strategic(patch)).await {
                    Ok(adopted) => claimed.push(Arc::new(adopted)),
                    Err(e) if informer::is_not_found(&e) => {}
                    Err(e) => errors.push(format!("adopting Pod {ns}/{name}: {e}")),
                }
            }
            Claim::Release => {
                let mut patch = controller_ref::release_patch(&owner.uid, &pod_uid);
                patch["metadata"]["$deleteFromPrimitiveList/finalizers"] = json!([TRACKING_FINALIZER]);
                match api.patch(&name, &PatchParams::default(), &Patch::Strategic(patch)).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 || e.code == 422 => {}
                    Err(e) => errors.push(format!("releasing Pod {ns}/{name}: {e}")),
                }
            }
        }
    }
    if errors.is_empty() { Ok(claimed) } else { Err(Error::Other(errors.join("; "))) }
}

async fn remove_finalizer(api: &Api<Pod>, pod: &Pod) -> Result<(), kube::Error> {
    let keep: Vec<&String> = pod.metadata.finalizers.iter().flatten().filter(|f| *f != TRACKING_FINALIZER).collect();
    let patch = json!({"metadata": {"finalizers": keep, "resourceVersion": pod.metadata.resource_version}});
    match api.patch(pod.metadata.name.as_deref().unwrap_or(""), &PatchParams::default(), &Patch::Merge(patch)).await {
        Ok(_) => Ok(()),
        Err(e) if informer::is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn write_status(ctx: &Ctx, job: &Job, status: &JobStatus) -> Result<Job, Error> {
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), job.metadata.namespace.as_deref().unwrap_or(""));
    let mut updated = job.clone();
    updated.status = Some(status.clone());
    Ok(api.replace_status(job.metadata.name.as_deref().unwrap_or(""), &PostParams::default(), &updated).await?)
}

#[instrument(skip_all, fields(controller = NAME, key = %key(&job.metadata)))]
async fn reconcile(job: Arc<Job>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    ctx.pods.wait_until_ready().await.map_err(|e| Error::Cache(e.to_string()))?;
    let job_key = key(&job.metadata);
    if condition(&job, "Complete").is_some() || condition(&job, "Failed").is_some() {
        return Ok(Action::await_change());
    }
    let satisfied = ctx.expectations.satisfied(&job_key);
    let Ok(selector) = Selector::from_label_selector(job.spec.as_ref().and_then(|s| s.selector.as_ref())) else {
        warn!(job = %job_key, "invalid selector; ignoring");
        return Ok(Action::await_change());
    };
    let ns = job.metadata.namespace.as_deref();
    let pods = claim_pods(&ctx, &job, &selector).await?;
    let now = Timestamp::now();
    let mut status = job.status.clone().unwrap_or_default();
    let mut uncounted = status.uncounted_terminated_pods.take().unwrap_or_default();
    let old = job.status.clone().unwrap_or_default();
    let mut needs_flush = false;
    if status.start_time.is_none() && !suspended(&job) {
        status.start_time = Some(Time(now));
        needs_flush = true;
    }
    let with_finalizer: BTreeSet<String> = pods.iter().filter(|p| has_finalizer(p)).map(|p| uid(&p.metadata)).collect();
    // Uncounted UIDs whose pods lost the finalizer were counted before a crash: count them.
    let flush_uncounted = |status: &mut JobStatus, uncounted: &mut UncountedTerminatedPods, keep: &BTreeSet<String>| {
        let (s, f) = (uncounted.succeeded.take().unwrap_or_default(), uncounted.failed.take().unwrap_or_default());
        let (s_keep, s_done): (Vec<String>, Vec<String>) = s.into_iter().partition(|u| keep.contains(u));
        let (f_keep, f_done): (Vec<String>, Vec<String>) = f.into_iter().partition(|u| keep.contains(u));
        // (Indexed jobs never list succeeded UIDs: they count indexes.)
        status.succeeded = Some(status.succeeded.unwrap_or(0) + i32::try_from(s_done.len()).unwrap_or(0)).filter(|n| *n != 0);
        status.failed = Some(status.failed.unwrap_or(0) + i32::try_from(f_done.len()).unwrap_or(0)).filter(|n| *n != 0);
        uncounted.succeeded = Some(s_keep).filter(|v| !v.is_empty());
        uncounted.failed = Some(f_keep).filter(|v| !v.is_empty());
        !(s_done.is_empty() && f_done.is_empty())
    };
    if flush_uncounted(&mut status, &mut uncounted, &with_finalizer) {
        needs_flush = true;
    }

    let active_pods: Vec<Arc<Pod>> = pods.iter().filter(|p| is_active(p)).cloned().collect();
    let terminating = i32::try_from(pods.iter().filter(|p| is_terminating(p)).count()).unwrap_or(0);
    let in_uncounted = |u: &String, list: &Option<Vec<String>>| list.iter().flatten().any(|x| x == u);
    let total = completions(&job).unwrap_or(0);
    // An Indexed job's failed pods count only with an index it has.
    let index_ok = |p: &Pod| !is_indexed(&job) || completion_index(p).is_some_and(|i| i < total);
    // Finished pods not yet counted (failures an Ignore rule matched are never counted).
    let new_succeeded: Vec<&Arc<Pod>> = pods.iter().filter(|p| has_finalizer(p) && phase(p) == "Succeeded" && !in_uncounted(&uid(&p.metadata), &uncounted.succeeded)).collect();
    let new_failed: Vec<&Arc<Pod>> = pods
        .iter()
        .filter(|p| has_finalizer(p) && counts_as_failed(&job, p) && index_ok(p) && failure_counts(&job, p) && !in_uncounted(&uid(&p.metadata), &uncounted.failed))
        .collect();
    let n_uncounted_s = uncounted.succeeded.as_ref().map_or(0, Vec::len);
    let n_uncounted_f = uncounted.failed.as_ref().map_or(0, Vec::len);
    let mut indexes = IndexState::default();
    let succeeded = if is_indexed(&job) {
        indexes.succeeded = parse_intervals_below(status.completed_indexes.as_deref().unwrap_or(""), total);
        for p in pods.iter().filter(|p| phase(p) == "Succeeded") {
            if let Some(i) = completion_index(p).filter(|i| *i < total) {
                indexes.succeeded.insert(i);
            }
        }
        i32::try_from(indexes.succeeded.len()).unwrap_or(0)
    } else {
        status.succeeded.unwrap_or(0) + i32::try_from(new_succeeded.len() + n_uncounted_s).unwrap_or(0)
    };
    let failed = status.failed.unwrap_or(0) + i32::try_from(new_failed.len() + n_uncounted_f).unwrap_or(0);

    // The end state, in upstream's order: an earlier verdict, failure, success.
    let mut conditions = status.conditions.take().unwrap_or_default();
    let mut finished: Option<JobCondition> = condition(&job, "SuccessCriteriaMet").or_else(|| condition(&job, "FailureTarget"));
    if finished.is_none()
        && let Some(message) = fail_job_message(&job, &pods)
    {
        finished = Some(new_condition("FailureTarget", "PodFailurePolicy", &message, now));
    }
    let mut requeue = None;
    if finished.is_none() {
        if failed > backoff_limit(&job) {
            finished = Some(new_condition("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit", now));
        } else if let (Some(deadline), Some(start)) = (job.spec.as_ref().and_then(|s| s.active_deadline_seconds), status.start_time.as_ref())
            && !suspended(&job)
        {
            let end = start.0.checked_add(SignedDuration::from_secs(deadline)).unwrap_or(start.0);
            if now >= end {
                finished = Some(new_condition("FailureTarget", "DeadlineExceeded", "Job was active longer than specified deadline", now));
            } else {
                requeue = Duration::try_from(end.duration_since(now)).ok();
            }
        }
    }
    if is_indexed(&job) {
        if let Some(limit) = per_index::limit(&job) {
            let previous = parse_intervals_below(status.failed_indexes.as_deref().unwrap_or(""), total);
            indexes.failed = per_index::failed_indexes(&job, &pods, previous, limit);
            if finished.is_none() {
                let n_failed = i32::try_from(indexes.failed.len()).unwrap_or(i32::MAX);
                if job.spec.as_ref().and_then(|s| s.max_failed_indexes).is_some_and(|max| n_failed > max) {
                    finished = Some(new_condition("FailureTarget", "MaxFailedIndexesExceeded", "Job has exceeded the specified maximal number of failed indexes", now));
                } else if n_failed > 0 && n_failed.saturating_add(succeeded) >= total {
                    finished = Some(new_condition("FailureTarget", "FailedIndexes", "Job has failed indexes", now));
                }
            }
            indexes.last_failed = per_index::last_failed_per_index(&job, &pods, &active_pods, &indexes.succeeded, &indexes.failed);
        }
        if finished.is_none()
            && let Some(message) = success_policy::evaluate(job.spec.as_ref().and_then(|s| s.success_policy.as_ref()), total, &indexes.succeeded)
        {
            finished = Some(new_condition("SuccessCriteriaMet", "SuccessPolicy", &message, now));
        }
    }
    let mut active = i32::try_from(active_pods.len()).unwrap_or(0);
    let mut manage_error = None;
    let mut ready = i32::try_from(active_pods.iter().filter(|p| is_ready(p)).count()).unwrap_or(0);
    let mut terminating = terminating;
    if finished.is_some() {
        // A verdict: the remaining pods go.
        let deleted = delete_pods(&ctx, &job, active_pods.clone(), false).await?;
        if deleted != active || !satisfied {
            finished = None;
        }
        active -= deleted;
        terminating += deleted;
        ready -= active_pods.iter().filter(|p| is_ready(p)).count().min(usize::try_from(deleted).unwrap_or(0)) as i32;
    } else {
        if satisfied && job.metadata.deletion_timestamp.is_none() {
            match manage(&ctx, &job, &active_pods, Progress { all: &pods, succeeded, terminating, indexes: &indexes }, now).await {
                Ok(sync) => {
                    active = sync.active;
                    requeue = match (requeue, sync.requeue) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                Err(e) => manage_error = Some(e),
            }
            if suspended(&job) {
                if ensure_condition(&mut conditions, "Suspended", "True", "JobSuspended", "Job suspended", now) {
                    ctx.recorder.normal(&*job, "Suspended", "Job suspended".into());
                    needs_flush = true;
                }
            } else if ensure_condition(&mut conditions, "Suspended", "False", "JobResumed", "Job resumed", now) {
                ctx.recorder.normal(&*job, "Resumed", "Job resumed".into());
                status.start_time = Some(Time(now));
                needs_flush = true;
            }
        }
        let complete = match completions(&job) {
            None => succeeded > 0 && active == 0,
            Some(c) => succeeded >= c && active == 0,
        };
        if complete {
            finished = Some(new_condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods", now));
        }
    }
    if active != old.active.unwrap_or(0) || Some(ready) != old.ready || Some(terminating) != old.terminating {
        needs_flush = true;
    }
    // Like upstream's omitempty counters, zeros are left out (ready and terminating are
    // pointers there, so their zeros show).
    status.active = Some(active).filter(|n| *n != 0);
    status.ready = Some(ready);
    status.terminating = Some(terminating);

    // Record the newly finished pods as uncounted, then drop their finalizers.
    let mut to_release: Vec<Arc<Pod>> = Vec::new();
    for p in &pods {
        if !has_finalizer(p) {
            continue;
        }
        let failed_pod = counts_as_failed(&job, p);
        let u = uid(&p.metadata);
        // Upstream's canRemoveFinalizer; the last failed pod of an index to run again keeps
        // its finalizer until its replacement carries the index's failure count.
        let delayed = || completion_index(p).and_then(|i| indexes.last_failed.get(&i)).is_some_and(|last| uid(&last.metadata) == u);
        let done = job.metadata.deletion_timestamp.is_some() || finished.is_some() || phase(p) == "Succeeded" || (failed_pod && !delayed());
        if !done {
            continue;
        }
        to_release.push(p.clone());
        // When the job failed, every pod not succeeded is a failure.
        let job_failed = finished.as_ref().is_some_and(|c| c.type_ != "SuccessCriteriaMet");
        if phase(p) == "Succeeded" {
            if !is_indexed(&job) && !in_uncounted(&u, &uncounted.succeeded) {
                uncounted.succeeded.get_or_insert_with(Vec::new).push(u);
                needs_flush = true;
            } else if is_indexed(&job) {
                needs_flush = true;
            }
        } else if (failed_pod || job_failed) && !in_uncounted(&u, &uncounted.failed) && index_ok(p) && failure_counts(&job, p) {
            uncounted.failed.get_or_insert_with(Vec::new).push(u);
            needs_flush = true;
        }
    }
    if per_index::limit(&job).is_some() && is_indexed(&job) {
        let text = format_intervals(&indexes.failed);
        if status.failed_indexes.as_deref() != Some(text.as_str()) {
            needs_flush = true;
        }
        status.failed_indexes = Some(text);
    }
    if is_indexed(&job) {
        let text = format_intervals(&indexes.succeeded);
        if status.completed_indexes.as_deref().unwrap_or("") != text {
            needs_flush = true;
        }
        status.completed_indexes = Some(text);
        status.succeeded = Some(i32::try_from(indexes.succeeded.len()).unwrap_or(0)).filter(|n| *n != 0);
    }
    // The interim condition goes in first; the terminal one follows once everything is counted.
    if let Some(c) = &finished
        && condition(&job, &c.type_).is_none()
        && !conditions.iter().any(|x| x.type_ == c.type_)
    {
        conditions.push(c.clone());
        needs_flush = true;
    }
    let terminal = finished.as_ref().map(|c| {
        let type_ = if c.type_ == "FailureTarget" { "Failed" } else { "Complete" };
        new_condition(type_, c.reason.as_deref().unwrap_or(""), c.message.as_deref().unwrap_or(""), now)
    });
    status.conditions = Some(conditions.clone()).filter(|c| !c.is_empty());

    let mut current = (*job).clone();
    if needs_flush {
        status.uncounted_terminated_pods = Some(uncounted.clone());
        current = write_status(&ctx, &current, &status).await?;
        needs_flush = false;
    }
    if !to_release.is_empty() {
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns.unwrap_or(""));
        let results = join_all(to_release.iter().map(|p| remove_finalizer(&api, p))).await;
        let released: BTreeSet<String> = to_release.iter().zip(&results).filter(|(_, r)| r.is_ok()).map(|(p, _)| uid(&p.metadata)).collect();
        let keep: BTreeSet<String> = with_finalizer.difference(&released).cloned().collect();
        if flush_uncounted(&mut status, &mut uncounted, &keep) {
            needs_flush = true;
        }
        if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
            warn!(job = %job_key, error = %e, "removing the tracking finalizer");
        }
    }
    let mut job_finished = false;
    if let Some(t) = &terminal {
        let all_counted = uncounted.succeeded.as_ref().is_none_or(Vec::is_empty) && uncounted.failed.as_ref().is_none_or(Vec::is_empty);
        if all_counted && terminating == 0 {
            ensure_condition(&mut conditions, &t.type_, "True", t.reason.as_deref().unwrap_or(""), t.message.as_deref().unwrap_or(""), now);
            if t.type_ == "Complete" {
                status.completion_time = Some(Time(now));
            }
            status.conditions = Some(conditions.clone());
            job_finished = true;
            needs_flush = true;
        }
    }
    if needs_flush {
        status.uncounted_terminated_pods = Some(uncounted);
        write_status(&ctx, &current, &status).await?;
        if job_finished && let Some(t) = &terminal {
            if t.type_ == "Complete" {
                ctx.recorder.normal(&*job, "Completed", "Job completed".into());
            } else {
                ctx.recorder.warning(&*job, t.reason.as_deref().unwrap_or("Failed"), t.message.clone().unwrap_or_default());
            }
        }
    }
    if let Some(e) = manage_error {
        return Err(e);
    }
    if finished.is_some() && !job_finished {
        // Pods still terminating or uncounted: look again soon.
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

/// The jobs a pod change concerns (upstream's add/update/deletePod), lowering expectations
/// on the way: the pod's job; on a controllerRef change also the previous one; for a pod
/// without a controller, every job whose selector matches it (one may adopt it). Orphaned
/// pods still holding the tracking finalizer are released.
fn pod_triggers(change: Change<Pod>, store: &Store<Job>, exp: &Expectations, orphans: &tokio::sync::mpsc::UnboundedSender<Arc<Pod>>) -> Vec<ObjectRef<Job>> {
    let pod = change.object();
    let mut out = Vec::new();
    if let Change::Updated { old, new } = &change
        && let Some(was) = controller_ref::controller_of(&old.metadata)
        && controller_ref::controller_of(&new.metadata).is_none_or(|now| now.uid != was.uid)
        && let Some(job) = controller_ref::resolve(store, "Job", &old.metadata)
    {
        out.push(ObjectRef::from_obj(&*job));
    }
    let deleted = matches!(change, Change::Deleted(_));
    match controller_ref::controller_of(&pod.metadata) {
        Some(r) if r.kind != "Job" => {}
        Some(_) => match controller_ref::resolve(store, "Job", &pod.metadata) {
            Some(job) => {
                exp.observe(&key(&job.metadata), &change);
                out.push(ObjectRef::from_obj(&*job));
            }
            None if has_finalizer(pod) && !deleted => {
                let _ = orphans.send(pod.clone());
            }
            None => {}
        },
        None if deleted => {}
        None => {
            if has_finalizer(pod) {
                let _ = orphans.send(pod.clone());
            }
            if pod.metadata.deletion_timestamp.is_none() {
                let empty = BTreeMap::new();
                let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
                for job in store.state().into_iter().filter(|j| j.metadata.namespace == pod.metadata.namespace) {
                    let selector = job.spec.as_ref().and_then(|s| s.selector.as_ref());
                    if selector.is_some() && Selector::from_label_selector(selector).is_ok_and(|s| s.matches(labels)) {
                        out.push(ObjectRef::from_obj(&*job));
                    }
                }
            }
        }
    }
    out
}

pub async fn run(client: kube::Client, stop: CancellationToken) {
    let (jobs, job_changes) = informer::informer(Api::<Job>::all(client.clone()), watcher::Config::default(), "jobs");
    let (pods, pod_changes) = informer::informer(Api::<Pod>::all(client.clone()), watcher::Config::default(), "pods");
    let expectations = Arc::new(Expectations::default());
    let (orphan_tx, mut orphan_rx) = tokio::sync::mpsc::unbounded_channel::<Arc<Pod>>();
    {
        // Pods whose Job is gone (deleted in the background) keep no finalizer of ours.
        let client = client.clone();
        let jobs = jobs.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            loop {
                let pod = tokio::select! {
                    _ = stop.cancelled() => return,
                    p = orphan_rx.recv() => match p { Some(p) => p, None => return },
                };
                let _ = jobs.wait_until_ready().await;
                let api: Api<Pod> = Api::namespaced(client.clone(), pod.metadata.namespace.as_deref().unwrap_or(""));
                if let Err(e) = remove_finalizer(&api, &pod).await {
                    debug!(pod = %key(&pod.metadata), error = %e, "releasing an orphaned job pod");
                }
            }
        });
    }
    let job_triggers = expectations::owner_triggers(job_changes, expectations.clone());
    let pod_triggers = {
        let (exp, store) = (expectations.clone(), jobs.clone());
        pod_changes.flat_map(move |change| futures::stream::iter(pod_triggers(change, &store, &exp, &orphan_tx)))
    };
    let triggers = futures::stream::select(job_triggers, pod_triggers).boxed();
    let ctx = Arc::new(Ctx {
        recorder: Recorder::new(client.clone(), EVENT_SOURCE),
        client,
        pods,
        expectations,
    });
    info!("starting the Job controller");
    informer::run(NAME, jobs, triggers, ctx, reconcile, informer::Retry::default(), stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_indexes_as_intervals() {
        let set: BTreeSet<i32> = [0, 1, 2, 5, 7, 8].into_iter().collect();
        assert_eq!(format_intervals(&set), "0-2,5,7,8");
        assert_eq!(parse_intervals("0-2,5,7,8"), set);
        assert_eq!(parse_intervals("0-2,5,7-8"), set);
        assert_eq!(parse_intervals_below("1-9,x,12", 4), [1, 2, 3].into_iter().collect());
        assert_eq!(format_intervals(&BTreeSet::new()), "");
    }

    fn job(spec: serde_json::Value) -> Job {
        serde_json::from_value(json!({"metadata": {"name": "pi", "namespace": "ns", "uid": "job-uid"}, "spec": spec})).expect("job")
    }

    #[test]
    fn indexed_pods_carry_their_index() {
        let j = job(json!({"completionMode": "Indexed", "completions": 3, "template": {"metadata": {"labels": {"job-name": "pi"}}, "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}));
        let pod = new_pod(&j, Some(2));
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("pi-2-"));
        assert_eq!(pod.metadata.annotations.as_ref().and_then(|a| a.get(COMPLETION_INDEX)).map(String::as_str), Some("2"));
        assert_eq!(pod.metadata.finalizers.as_deref(), Some(&[TRACKING_FINALIZER.to_string()][..]));
        let spec = pod.spec.as_ref().expect("spec");
        assert_eq!(spec.hostname.as_deref(), Some("pi-2"));
        let env = &spec.containers[0].env.as_ref().expect("env")[0];
        assert_eq!(env.name, "JOB_COMPLETION_INDEX");
        let plain = new_pod(&job(json!({"template": {"spec": {"containers": []}}})), None);
        assert_eq!(plain.metadata.generate_name.as_deref(), Some("pi-"));
    }

    #[test]
    fn backoff_doubles_after_each_failure_since_the_last_success() {
        let pod = |phase: &str, finished: &str| -> Arc<Pod> {
            Arc::new(serde_json::from_value(json!({"metadata": {"name": finished}, "status": {"phase": phase, "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 1, "finishedAt": finished}}}]}})).expect("pod"))
        };
        let now: Timestamp = "2025-01-01T00:01:00Z".parse().expect("now");
        let plain = job(json!({"template": {}}));
        assert_eq!(backoff_remaining(&plain, &[], now), None);
        // One failure 4 s ago: 10 s backoff, 6 s left.
        assert_eq!(backoff_remaining(&plain, &[pod("Failed", "2025-01-01T00:00:56Z")], now), Some(Duration::from_secs(6)));
        // Two failures: 20 s from the last one.
        let two = [pod("Failed", "2025-01-01T00:00:30Z"), pod("Failed", "2025-01-01T00:00:50Z")];
        assert_eq!(backoff_remaining(&plain, &two, now), Some(Duration::from_secs(10)));
        // A success after them resets the count.
        let reset = [pod("Failed", "2025-01-01T00:00:30Z"), pod("Succeeded", "2025-01-01T00:00:40Z")];
        assert_eq!(backoff_remaining(&plain, &reset, now), None);
    }
}
