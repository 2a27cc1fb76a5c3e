//! The CronJob controller: at each scheduled time (cron schedule, `timeZone`, within
//! `startingDeadlineSeconds`) it creates the Job `<name>-<minutes since the epoch>` from
//! the job template, under the concurrency policy (Allow, Forbid: skip while one runs,
//! Replace: delete the running ones first); it keeps `status.active`,
//! `lastScheduleTime` and `lastSuccessfulTime`, and deletes finished Jobs beyond
//! `successfulJobsHistoryLimit`/`failedJobsHistoryLimit`, with upstream's events.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ironkube_machinery::validation::cron;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, PostParams, PropagationPolicy};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;
use tracing::{info, instrument};

use crate::controller_ref;
use crate::informer::{self, Change};
use crate::recorder::Recorder;
use crate::replicaset::key;

pub const NAME: &str = "cronjob";
const EVENT_SOURCE: &str = "cronjob-controller";
/// The annotation recording when a Job was scheduled.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// Upstream gives up listing missed start times past this many.
const MAX_MISSED: usize = 100;

pub type Error = informer::ReconcileError;

struct Ctx {
    client: kube::Client,
    jobs: Store<Job>,
    recorder: Recorder,
}

/// Whether a Job finished, and how ("Complete" or "Failed").
pub fn finished(job: &Job) -> Option<&str> {
    job.status.as_ref()?.conditions.as_ref()?.iter().find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True").map(|c| c.type_.as_str())
}

/// Upstream's `getJobName`: the scheduled time in minutes since the epoch.
pub fn job_name(cron_job: &str, scheduled: Timestamp) -> String {
    format!("{cron_job}-{}", scheduled.as_second().div_euclid(60))
}

fn time_zone(cj: &CronJob) -> k8s_openapi::jiff::tz::TimeZone {
    match cj.spec.as_ref().and_then(|s| s.time_zone.as_deref()) {
        Some(name) => k8s_openapi::jiff::tz::TimeZone::get(name).unwrap_or(k8s_openapi::jiff::tz::TimeZone::UTC),
        None => k8s_openapi::jiff::tz::TimeZone::system(),
    }
}

/// Upstream's `mostRecentScheduleTime`: the latest activation in (earliest, now], how
/// many there were, and the next one after now.
pub fn most_recent(schedule: &cron::Schedule, earliest: Timestamp, now: Timestamp, tz: &k8s_openapi::jiff::tz::TimeZone) -> (Option<Timestamp>, usize, Option<Timestamp>) {
    let mut latest = None;
    let mut missed = 0;
    let mut t = earliest;
    loop {
        match schedule.next(t, tz) {
            Some(n) if n <= now => {
                latest = Some(n);
                missed += 1;
                t = n;
                if missed > MAX_MISSED * 10 {
                    // Far behind: only the latest counts; jump close to now.
                    t = now.checked_sub(SignedDuration::from_secs(3600)).unwrap_or(now).max(n);
                }
            }
            next => return (latest, missed, next),
        }
    }
}

/// The Job for the activation at `scheduled` (upstream's `getJobFromTemplate2`).
fn job_from_template(cj: &CronJob, scheduled: Timestamp, tz: &k8s_openapi::jiff::tz::TimeZone) -> Job {
    let template = cj.spec.as_ref().map(|s| s.job_template.clone()).unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    annotations.insert(SCHEDULED_TIMESTAMP.into(), scheduled.to_zoned(tz.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string().replace("+00:00", "Z"));
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(cj.metadata.name.as_deref().unwrap_or(""), scheduled)),
            namespace: cj.metadata.namespace.clone(),
            labels: meta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![controller_ref::new_controller_ref("batch/v1", "CronJob", &cj.metadata)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

fn reference(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        field_path: None,
    }
}

async fn delete_job(ctx: &Ctx, cj: &CronJob, job: &Job) -> Result<(), Error> {
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), job.metadata.namespace.as_deref().unwrap_or(""));
    let name = job.metadata.name.clone().unwrap_or_default();
    let dp = DeleteParams { propagation_policy: Some(PropagationPolicy::Background), ..Default::default() };
    match api.delete(&name, &dp).await {
        Ok(_) => {
            ctx.recorder.normal(cj, "SuccessfulDelete", format!("Deleted job {name}"));
            Ok(())
        }
        Err(e) if informer::is_not_found(&e) => Ok(()),
        Err(e) => {
            ctx.recorder.warning(cj, "FailedDelete", format!("Deleted job: {e}"));
            Err(e.into())
        }
    }
}

#[instrument(skip_all, fields(controller = NAME, key = %key(&cj.metadata)))]
async fn reconcile(cj: Arc<CronJob>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    ctx.jobs.wait_until_ready().await.map_err(|e| Error::Cache(e.to_string()))?;
    let ns = cj.metadata.namespace.clone().unwrap_or_default();
    let uid = cj.metadata.uid.clone().unwrap_or_default();
    let mut jobs: Vec<Arc<Job>> = ctx.jobs.state().into_iter().filter(|j| j.metadata.namespace.as_deref() == Some(ns.as_str()) && controller_ref::is_controlled_by(&j.metadata, &uid)).collect();
    jobs.sort_by_key(|j| j.status.as_ref().and_then(|s| s.start_time.as_ref()).map(|t| t.0).or(j.metadata.creation_timestamp.as_ref().map(|t| t.0)));
    let mut status = cj.status.clone().unwrap_or_default();
    let before = status.clone();

    // Active list: drop finished and vanished jobs, add running ones it does not list.
    let mut active: Vec<ObjectReference> = Vec::new();
    for job in &jobs {
        match finished(job) {
            None => active.push(reference(job)),
            Some(how) => {
                let listed = status.active.iter().flatten().any(|r| r.uid == job.metadata.uid);
                if listed {
                    ctx.recorder.normal(&*cj, "SawCompletedJob", format!("Saw completed job: {}, condition: {how}", job.metadata.name.as_deref().unwrap_or("")));
                }
                if how == "Complete" {
                    let done = job.status.as_ref().and_then(|s| s.completion_time.clone());
                    if done.as_ref().map(|t| t.0) > status.last_successful_time.as_ref().map(|t| t.0) {
                        status.last_successful_time = done;
                    }
                }
            }
        }
    }
    status.active = Some(active).filter(|a| !a.is_empty());

    // History limits: the oldest finished jobs beyond them go.
    let spec = cj.spec.clone().unwrap_or_default();
    for (how, limit) in [("Complete", spec.successful_jobs_history_limit.unwrap_or(3)), ("Failed", spec.failed_jobs_history_limit.unwrap_or(1))] {
        let done: Vec<&Arc<Job>> = jobs.iter().filter(|j| finished(j) == Some(how) && j.metadata.deletion_timestamp.is_none()).collect();
        let limit = usize::try_from(limit.max(0)).unwrap_or(0);
        if done.len() > limit {
            for job in &done[..done.len() - limit] {
                delete_job(&ctx, &cj, job).await?;
            }
        }
    }

    let mut requeue = None;
    let suspended = spec.suspend == Some(true);
    if cj.metadata.deletion_timestamp.is_none() && !suspended {
        match cron::parse(&spec.schedule) {
            Err(e) => {
                ctx.recorder.warning(&*cj, "UnparseableSchedule", format!("unparseable schedule: {:?} : {e}", spec.schedule));
            }
            Ok(schedule) => {
                let tz = time_zone(&cj);
                let now = Timestamp::now();
                let created = cj.metadata.creation_timestamp.as_ref().map_or(now, |t| t.0);
                let mut earliest = status.last_schedule_time.as_ref().map_or(created, |t| t.0);
                if let Some(deadline) = spec.starting_deadline_seconds {
                    let floor = now.checked_sub(SignedDuration::from_secs(deadline)).unwrap_or(now);
                    earliest = earliest.max(floor);
                }
                let (latest, missed, next) = most_recent(&schedule, earliest, now, &tz);
                if missed > MAX_MISSED {
                    ctx.recorder.warning(&*cj, "TooManyMissedTimes", "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew".into());
                }
                requeue = next.and_then(|n| Duration::try_from(n.duration_since(now)).ok()).map(|d| d + Duration::from_millis(100));
                if let Some(scheduled) = latest {
                    let too_late = spec.starting_deadline_seconds.is_some_and(|d| scheduled.checked_add(SignedDuration::from_secs(d)).is_ok_and(|end| end < now));
                    let name = job_name(cj.metadata.name.as_deref().unwrap_or(""), scheduled);
                    let already = jobs.iter().any(|j| j.metadata.name.as_deref() == Some(name.as_str()));
                    let policy = spec.concurrency_policy.as_deref().unwrap_or("Allow");
                    let running: Vec<&Arc<Job>> = jobs.iter().filter(|j| finished(j).is_none() && j.metadata.deletion_timestamp.is_none()).collect();
                    if too_late {
                        ctx.recorder.warning(&*cj, "MissSchedule", format!("Missed scheduled time to start a job: {}", scheduled.strftime("%Y-%m-%dT%H:%M:%S%:z")));
                    } else if already {
                        // This activation already has its Job.
                    } else if policy == "Forbid" && !running.is_empty() {
                        ctx.recorder.normal(&*cj, "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid".into());
                    } else {
                        if policy == "Replace" {
                            for job in &running {
                                delete_job(&ctx, &cj, job).await?;
                            }
                            status.active = None;
                        }
                        let api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
                        let job = job_from_template(&cj, scheduled, &tz);
                        match api.create(&PostParams::default(), &job).await {
                            Ok(created) => {
                                ctx.recorder.normal(&*cj, "SuccessfulCreate", format!("Created job {}", created.metadata.name.as_deref().unwrap_or("")));
                                status.active.get_or_insert_with(Vec::new).push(reference(&created));
                            }
                            Err(kube::Error::Api(e)) if e.code == 409 => {}
                            Err(e) => {
                                ctx.recorder.warning(&*cj, "FailedCreate", format!("Error creating job: {e}"));
                                return Err(e.into());
                            }
                        }
                        status.last_schedule_time = Some(Time(scheduled));
                    }
                }
            }
        }
    }
    if status != before {
        let api: Api<CronJob> = Api::namespaced(ctx.client.clone(), &ns);
        let mut updated = (*cj).clone();
        updated.status = Some(status);
        match api.replace_status(cj.metadata.name.as_deref().unwrap_or(""), &PostParams::default(), &updated).await {
            Ok(_) => {}
            Err(e) if informer::is_not_found(&e) => return Ok(Action::await_change()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

pub async fn run(client: kube::Client, stop: CancellationToken) {
    let (cron_jobs, cj_changes) = informer::informer(Api::<CronJob>::all(client.clone()), watcher::Config::default(), "cronjobs");
    let (jobs, job_changes) = informer::informer(Api::<Job>::all(client.clone()), watcher::Config::default(), "jobs");
    let cj_triggers = informer::live_changes(cj_changes);
    // A Job's change concerns the CronJob that controls it.
    let job_triggers = job_changes.filter_map(|change| {
        let job = match change {
            Change::Added(j) | Change::Deleted(j) => j,
            Change::Updated { new, .. } => new,
        };
        let owner = controller_ref::controller_of(&job.metadata).filter(|o| o.kind == "CronJob").map(|o| ObjectRef::<CronJob>::new(&o.name).within(job.metadata.namespace.as_deref().unwrap_or("")));
        futures::future::ready(owner)
    });
    let triggers = futures::stream::select(cj_triggers, job_triggers).boxed();
    let ctx = Arc::new(Ctx { recorder: Recorder::new(client.clone(), EVENT_SOURCE), client, jobs });
    info!("starting the CronJob controller");
    informer::run(NAME, cron_jobs, triggers, ctx, reconcile, informer::Retry::default(), stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_schedule_times() {
        let t: Timestamp = "2025-03-01T10:20:00Z".parse().expect("time");
        assert_eq!(job_name("hello", t), "hello-29013740");
        let every_5 = cron::parse("*/5 * * * *").expect("schedule");
        let utc = k8s_openapi::jiff::tz::TimeZone::UTC;
        let earliest: Timestamp = "2025-03-01T10:01:00Z".parse().expect("time");
        let now: Timestamp = "2025-03-01T10:22:30Z".parse().expect("time");
        let (latest, missed, next) = most_recent(&every_5, earliest, now, &utc);
        assert_eq!(latest, Some(t));
        assert_eq!(missed, 4);
        assert_eq!(next, "2025-03-01T10:25:00Z".parse().ok());
    }
}
