//! The TTL-after-finished controller (upstream's `ttlafterfinished`): a finished Job (its
//! Complete or Failed condition true) with `spec.ttlSecondsAfterFinished` is deleted that
//! many seconds after it finished, in the foreground so that its pods go first. A job not
//! due yet is looked at again when it is; before deleting, a live read makes sure the TTL
//! still says so (it may have been changed or the job re-created under the same name).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, Preconditions, PropagationPolicy};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, instrument, warn};

use crate::informer;
use crate::replicaset::key;

pub const NAME: &str = "ttl-after-finished";

/// What a reconcile fails with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading Job {key}: {source}")]
    Read { key: String, #[source] source: kube::Error },
    #[error("deleting Job {key}: {source}")]
    Delete { key: String, #[source] source: kube::Error },
}

struct Ctx {
    client: kube::Client,
}

/// When the job finished: the transition time of its true Complete or Failed condition.
fn finished_at(job: &Job) -> Option<Timestamp> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    conditions.iter().find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")?.last_transition_time.as_ref().map(|t| t.0)
}

/// When the job is to be deleted, if it is to be deleted at all (upstream's
/// `needsCleanup` and `getFinishAndExpireTime`).
pub fn expires_at(job: &Job) -> Option<Timestamp> {
    if job.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    finished_at(job)?.checked_add(SignedDuration::from_secs(i64::from(ttl))).ok()
}

/// What to do with `job` at `now`: `None` to delete it, else when to look again (`None`
/// inside: only on a change).
fn plan(job: &Job, now: Timestamp) -> Option<Option<Duration>> {
    let Some(expiry) = expires_at(job) else { return Some(None) };
    if expiry <= now {
        return None;
    }
    Some(Some(Duration::try_from(expiry.duration_since(now)).unwrap_or_default()))
}

#[instrument(skip_all, fields(controller = NAME, key = %key(&job.metadata)))]
async fn reconcile(job: Arc<Job>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let job_key = key(&job.metadata);
    if let Some(wait) = plan(&job, Timestamp::now()) {
        return Ok(wait.map_or_else(Action::await_change, Action::requeue));
    }
    let name = job.metadata.name.as_deref().unwrap_or("");
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), job.metadata.namespace.as_deref().unwrap_or(""));
    // The cache may be behind: the TTL may have changed, or the job may be another one.
    let fresh = match api.get_opt(name).await {
        Ok(Some(fresh)) => fresh,
        Ok(None) => return Ok(Action::await_change()),
        Err(source) => return Err(Error::Read { key: job_key, source }),
    };
    if let Some(wait) = plan(&fresh, Timestamp::now()) {
        return Ok(wait.map_or_else(Action::await_change, Action::requeue));
    }
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        preconditions: Some(Preconditions { uid: fresh.metadata.uid.clone(), resource_version: None }),
        ..Default::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => info!(job = %job_key, "deleted the finished job after its TTL"),
        Err(e) if informer::is_not_found(&e) || informer::is_conflict(&e) => debug!(job = %job_key, error = %e, "the job went or changed first"),
        Err(source) => {
            warn!(job = %job_key, error = %source, "deleting a finished job");
            return Err(Error::Delete { key: job_key, source });
        }
    }
    Ok(Action::await_change())
}

pub async fn run(client: kube::Client, stop: CancellationToken) {
    let jobs: Api<Job> = Api::all(client.clone());
    let controller = Controller::new(jobs, watcher::Config::default());
    info!("starting the TTL-after-finished controller");
    crate::runtime::drive(NAME, controller, Arc::new(Ctx { client }), reconcile, stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn job(ttl: Option<i32>, conditions: Value, deleting: bool) -> Job {
        let mut meta = json!({"name": "pi", "namespace": "ns", "uid": "u"});
        if deleting {
            meta["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        }
        serde_json::from_value(json!({"metadata": meta, "spec": {"ttlSecondsAfterFinished": ttl, "template": {}}, "status": {"conditions": conditions}})).expect("job")
    }

    #[test]
    fn deleted_once_the_ttl_ran_out() {
        let now: Timestamp = "2025-01-01T00:01:00Z".parse().expect("now");
        let complete = json!([{"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"},
            {"type": "Complete", "status": "True", "lastTransitionTime": "2025-01-01T00:00:30Z"}]);
        let failed = json!([{"type": "Failed", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"}]);
        let running = json!([{"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"}]);
        let cases = [
            ("no ttl", job(None, complete.clone(), false), Some(None)),
            ("not finished", job(Some(0), running, false), Some(None)),
            ("being deleted", job(Some(0), complete.clone(), true), Some(None)),
            ("due", job(Some(30), complete.clone(), false), None),
            ("failed and due", job(Some(0), failed, false), None),
            ("not yet", job(Some(100), complete, false), Some(Some(Duration::from_secs(70)))),
        ];
        for (what, j, want) in cases {
            assert_eq!(plan(&j, now), want, "{what}");
        }
    }
}
