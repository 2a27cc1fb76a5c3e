//! `spec.backoffLimitPerIndex` of Indexed jobs: each index is retried on its own, with its
//! own exponential back-off, until it failed more than the limit (or matched a FailIndex
//! rule); such an index is listed in `status.failedIndexes` and not run again. An index's
//! failures so far travel from a failed pod to its replacement in the pod annotations
//! [`FAILURE_COUNT`] (counted failures) and [`IGNORED_FAILURE_COUNT`] (failures an Ignore
//! rule let pass); the last failed pod of an index keeps its tracking finalizer until its
//! replacement exists, so that the count is never lost.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::pod_failure_policy::{self, RuleAction};
use super::{BACKOFF_BASE, BACKOFF_MAX, completion_index, completions, counts_as_failed, finish_time};

/// The annotation with the index's counted failures before this pod.
pub const FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";
/// The annotation with the index's ignored failures before this pod (set when not zero).
pub const IGNORED_FAILURE_COUNT: &str = "batch.kubernetes.io/job-ignored-failure-count";

pub fn limit(job: &Job) -> Option<i32> {
    job.spec.as_ref().and_then(|s| s.backoff_limit_per_index)
}

fn annotation(pod: &Pod, name: &str) -> i32 {
    pod.metadata.annotations.as_ref().and_then(|a| a.get(name)).and_then(|v| v.parse::<i32>().ok()).filter(|n| *n >= 0).unwrap_or(0)
}

pub fn failure_count(pod: &Pod) -> i32 {
    annotation(pod, FAILURE_COUNT)
}

fn absolute_failure_count(pod: &Pod) -> i32 {
    failure_count(pod).saturating_add(annotation(pod, IGNORED_FAILURE_COUNT))
}

/// Upstream's `isIndexFailed`: the pod failed its index for good.
pub fn fails_index(job: &Job, pod: &Pod, limit: i32) -> bool {
    if !counts_as_failed(job, pod) {
        return false;
    }
    let verdict = pod_failure_policy::evaluate(job.spec.as_ref().and_then(|s| s.pod_failure_policy.as_ref()), pod);
    if verdict.action == Some(RuleAction::FailIndex) {
        return true;
    }
    verdict.counts && failure_count(pod) >= limit
}

/// `status.failedIndexes` with the indexes failed by pods not yet counted (those that still
/// carry the tracking finalizer).
pub fn failed_indexes(job: &Job, pods: &[Arc<Pod>], previous: BTreeSet<i32>, limit: i32) -> BTreeSet<i32> {
    let total = completions(job).unwrap_or(0);
    let mut out = previous;
    for p in pods.iter().filter(|p| super::has_finalizer(p) && fails_index(job, p, limit)) {
        if let Some(i) = completion_index(p).filter(|i| *i < total) {
            out.insert(i);
        }
    }
    out
}

/// Upstream's `getPodsWithDelayedDeletionPerIndex`: per index still to run (neither
/// succeeded, failed nor active), its latest failed pod, whose counts the replacement
/// inherits.
pub fn last_failed_per_index(job: &Job, pods: &[Arc<Pod>], active: &[Arc<Pod>], succeeded: &BTreeSet<i32>, failed: &BTreeSet<i32>) -> BTreeMap<i32, Arc<Pod>> {
    let total = completions(job).unwrap_or(0);
    let busy: BTreeSet<i32> = active.iter().filter_map(|p| completion_index(p)).collect();
    let mut out: BTreeMap<i32, Arc<Pod>> = BTreeMap::new();
    for p in pods.iter().filter(|p| counts_as_failed(job, p)) {
        let Some(i) = completion_index(p).filter(|i| *i < total) else { continue };
        if succeeded.contains(&i) || failed.contains(&i) || busy.contains(&i) {
            continue;
        }
        let newer = |last: &Arc<Pod>| absolute_failure_count(last) <= absolute_failure_count(p) && finish_time(p) >= finish_time(last);
        match out.get(&i) {
            Some(last) if !newer(last) => {}
            _ => {
                out.insert(i, p.clone());
            }
        }
    }
    out
}

/// The (failure, ignored failure) counts of a pod replacing `replaced` (upstream's
/// `getNewIndexFailureCounts`).
pub fn replacement_counts(job: &Job, replaced: Option<&Pod>) -> (i32, i32) {
    let Some(old) = replaced else { return (0, 0) };
    let (failures, ignored) = (failure_count(old), annotation(old, IGNORED_FAILURE_COUNT));
    let verdict = pod_failure_policy::evaluate(job.spec.as_ref().and_then(|s| s.pod_failure_policy.as_ref()), old);
    if verdict.counts { (failures.saturating_add(1), ignored) } else { (failures, ignored.saturating_add(1)) }
}

/// How long the index of `last_failed` must still wait (upstream's
/// `getRemainingTimePerIndex`): 10 s doubling with each failure of the index, at most 6 min.
pub fn remaining_backoff(last_failed: Option<&Pod>, now: Timestamp) -> Duration {
    let Some(pod) = last_failed else { return Duration::ZERO };
    let failures = u32::try_from(absolute_failure_count(pod)).unwrap_or(0).saturating_add(1);
    let delay = BACKOFF_BASE.checked_mul(1u32.checked_shl(failures - 1).unwrap_or(u32::MAX)).unwrap_or(BACKOFF_MAX).min(BACKOFF_MAX);
    let since = finish_time(pod).map(|t| Duration::try_from(now.duration_since(t)).unwrap_or_default()).unwrap_or(delay);
    delay.saturating_sub(since)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn job(extra: Value) -> Job {
        let mut spec = json!({"completionMode": "Indexed", "completions": 4, "backoffLimitPerIndex": 1, "template": {}});
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        serde_json::from_value(json!({"metadata": {"name": "pi", "namespace": "ns"}, "spec": spec})).expect("job")
    }

    fn pod(name: &str, index: i32, phase: &str, failures: Option<&str>, code: i32, finished: &str) -> Arc<Pod> {
        let mut annotations = json!({"batch.kubernetes.io/job-completion-index": index.to_string()});
        if let Some(f) = failures {
            annotations[FAILURE_COUNT] = json!(f);
        }
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "ns", "annotations": annotations, "finalizers": [super::super::TRACKING_FINALIZER]},
                "status": {"phase": phase, "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": code, "finishedAt": finished}}}]},
            }))
            .expect("pod"),
        )
    }

    #[test]
    fn an_index_fails_after_its_own_limit() {
        let j = job(json!({}));
        let first = pod("a", 1, "Failed", Some("0"), 1, "2025-01-01T00:00:00Z");
        let second = pod("b", 1, "Failed", Some("1"), 1, "2025-01-01T00:00:20Z");
        let success = pod("c", 0, "Succeeded", None, 0, "2025-01-01T00:00:05Z");
        assert!(!fails_index(&j, &first, 1));
        assert!(fails_index(&j, &second, 1));
        assert!(!fails_index(&j, &success, 1));
        let pods = [first.clone(), second.clone(), success];
        assert_eq!(failed_indexes(&j, &pods, [3].into_iter().collect(), 1), [1, 3].into_iter().collect());
        // FailIndex fails the index on its first failure.
        let fail_index = job(json!({"podFailurePolicy": {"rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [1]}}]}}));
        assert!(fails_index(&fail_index, &first, 1));
    }

    #[test]
    fn replacements_inherit_the_counts() {
        let j = job(json!({}));
        let first = pod("a", 1, "Failed", Some("0"), 1, "2025-01-01T00:00:00Z");
        assert_eq!(replacement_counts(&j, None), (0, 0));
        assert_eq!(replacement_counts(&j, Some(&first)), (1, 0));
        let ignoring = job(json!({"podFailurePolicy": {"rules": [{"action": "Ignore", "onExitCodes": {"operator": "In", "values": [1]}}]}}));
        assert_eq!(replacement_counts(&ignoring, Some(&first)), (0, 1));
        // The latest failed pod of an index that is neither done nor running is the one replaced.
        let later = pod("b", 1, "Failed", Some("1"), 1, "2025-01-01T00:00:20Z");
        let map = last_failed_per_index(&j, &[first.clone(), later.clone()], &[], &BTreeSet::new(), &BTreeSet::new());
        assert_eq!(map.get(&1).and_then(|p| p.metadata.name.as_deref()), Some("b"));
        let map = last_failed_per_index(&j, std::slice::from_ref(&first), &[], &BTreeSet::new(), &[1].into_iter().collect());
        assert!(map.is_empty());
    }

    #[test]
    fn back_off_per_index() {
        let now: Timestamp = "2025-01-01T00:01:00Z".parse().expect("now");
        assert_eq!(remaining_backoff(None, now), Duration::ZERO);
        let once = pod("a", 1, "Failed", Some("0"), 1, "2025-01-01T00:00:56Z");
        assert_eq!(remaining_backoff(Some(&once), now), Duration::from_secs(6));
        let twice = pod("b", 1, "Failed", Some("1"), 1, "2025-01-01T00:00:50Z");
        assert_eq!(remaining_backoff(Some(&twice), now), Duration::from_secs(10));
        let long_ago = pod("c", 1, "Failed", Some("1"), 1, "2025-01-01T00:00:00Z");
        assert_eq!(remaining_backoff(Some(&long_ago), now), Duration::ZERO);
    }
}
