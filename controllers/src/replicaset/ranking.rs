//! Which pods a ReplicaSet deletes first when it scales down (upstream's
//! `ActivePodsWithRanks`), each rule deciding only when the ones before it tie:
//!
//! 1. unscheduled before scheduled;
//! 2. Pending before Unknown before Running;
//! 3. not ready before ready;
//! 4. lower `controller.kubernetes.io/pod-deletion-cost` first;
//! 5. more related pods on the same node first (spreads what remains);
//! 6. both ready: ready for less time first, compared on a log2 scale (ties in the same
//!    bucket broken by UID, for a pseudo-random pick among equals);
//! 7. more container restarts (then sidecar restarts) first;
//! 8. created more recently first, again on a log2 scale with UID tie-breaks.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::{is_active, is_ready};

/// The annotation whose (int32) value orders deletions (rule 4).
pub const DELETION_COST_ANNOTATION: &str = "controller.kubernetes.io/pod-deletion-cost";

fn phase_ordinal(pod: &Pod) -> u8 {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 0,
    }
}

fn node_name(pod: &Pod) -> &str {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("")
}

/// Upstream's `GetDeletionCostFromPodAnnotations` (0 when absent or invalid).
pub fn deletion_cost(pod: &Pod) -> i32 {
    let Some(value) = pod.metadata.annotations.as_ref().and_then(|a| a.get(DELETION_COST_ANNOTATION)) else { return 0 };
    let first_ok = match value.as_bytes().first() {
        Some(b'-') => true,
        Some(b'0') => value == "0",
        Some(b'1'..=b'9') => true,
        _ => false,
    };
    if !first_ok {
        return 0;
    }
    value.parse::<i32>().unwrap_or(0)
}

/// When the pod last became ready (None: not ready, or no transition time).
fn ready_time(pod: &Pod) -> Option<Timestamp> {
    if !is_ready(pod) {
        return None;
    }
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
}

fn max_restarts(pod: &Pod) -> (i32, i32) {
    let status = pod.status.as_ref();
    let regular = status.and_then(|s| s.container_statuses.as_ref()).into_iter().flatten().map(|c| c.restart_count).max().unwrap_or(0);
    let sidecars: Vec<&str> = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(|c| c.name.as_str())
        .collect();
    let sidecar = status
        .and_then(|s| s.init_container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| sidecars.contains(&c.name.as_str()))
        .map(|c| c.restart_count)
        .max()
        .unwrap_or(0);
    (regular.max(0), sidecar.max(0))
}

/// `floor(log2(now - t))` in nanoseconds, -1 for times not in the past.
fn log_rank(t: Timestamp, now: Timestamp) -> i64 {
    let d = now.as_nanosecond() - t.as_nanosecond();
    if d > 0 { (d as f64).log2() as i64 } else { -1 }
}

/// Upstream's `afterOrZero`: whether t1 comes first (a missing time comes first).
fn after_or_missing(t1: Option<Timestamp>, t2: Option<Timestamp>) -> bool {
    match (t1, t2) {
        (None, _) => true,
        (_, None) => false,
        (Some(a), Some(b)) => a > b,
    }
}

fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or("")
}

/// Compares two times on the log scale; `None` when equal (the rule does not decide).
fn by_log_time(t1: Option<Timestamp>, t2: Option<Timestamp>, a: &Pod, b: &Pod, now: Timestamp) -> Option<bool> {
    if t1 == t2 {
        return None;
    }
    let (Some(x), Some(y)) = (t1, t2) else { return Some(after_or_missing(t1, t2)) };
    let diff = log_rank(x, now) - log_rank(y, now);
    Some(if diff == 0 { uid(a) < uid(b) } else { diff < 0 })
}

/// Upstream's `Less`: whether `a` (with `rank_a` related pods on its node) should be
/// deleted before `b`.
pub fn deleted_before(a: &Pod, rank_a: usize, b: &Pod, rank_b: usize, now: Timestamp) -> bool {
    let (na, nb) = (node_name(a), node_name(b));
    if na != nb && (na.is_empty() || nb.is_empty()) {
        return na.is_empty();
    }
    let (pa, pb) = (phase_ordinal(a), phase_ordinal(b));
    if pa != pb {
        return pa < pb;
    }
    let (ra, rb) = (is_ready(a), is_ready(b));
    if ra != rb {
        return !ra;
    }
    let (ca, cb) = (deletion_cost(a), deletion_cost(b));
    if ca != cb {
        return ca < cb;
    }
    if rank_a != rank_b {
        return rank_a > rank_b;
    }
    if ra && rb
        && let Some(decided) = by_log_time(ready_time(a), ready_time(b), a, b, now)
    {
        return decided;
    }
    let (restarts_a, restarts_b) = (max_restarts(a), max_restarts(b));
    if restarts_a.0 != restarts_b.0 {
        return restarts_a.0 > restarts_b.0;
    }
    if restarts_a.1 != restarts_b.1 {
        return restarts_a.1 > restarts_b.1;
    }
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    by_log_time(created(a), created(b), a, b, now).unwrap_or(false)
}

/// A stable merge sort on a `less` that need not be a strict total order (upstream's can
/// be intransitive in rare ties); it never panics, unlike `slice::sort_by` on such orders.
fn merge_sort<T: Clone>(items: &mut [T], less: &dyn Fn(&T, &T) -> bool) {
    if items.len() <= 1 {
        return;
    }
    let mid = items.len() / 2;
    merge_sort(&mut items[..mid], less);
    merge_sort(&mut items[mid..], less);
    let mut merged = Vec::with_capacity(items.len());
    let (mut i, mut j) = (0, mid);
    while i < mid && j < items.len() {
        if less(&items[j], &items[i]) {
            merged.push(items[j].clone());
            j += 1;
        } else {
            merged.push(items[i].clone());
            i += 1;
        }
    }
    merged.extend_from_slice(&items[i..mid]);
    merged.extend_from_slice(&items[j..]);
    items.clone_from_slice(&merged);
}

/// The `diff` pods of `active` to delete, ranked against `related` (the pods of every
/// ReplicaSet with the same controller).
pub fn pods_to_delete(active: &[Arc<Pod>], related: &[Arc<Pod>], diff: usize, now: Timestamp) -> Vec<Arc<Pod>> {
    if diff >= active.len() {
        return active.to_vec();
    }
    let mut on_node: HashMap<&str, usize> = HashMap::new();
    for pod in related.iter().filter(|p| is_active(p)) {
        *on_node.entry(node_name(pod)).or_default() += 1;
    }
    let mut ranked: Vec<(Arc<Pod>, usize)> = active.iter().map(|p| (p.clone(), on_node.get(node_name(p)).copied().unwrap_or(0))).collect();
    merge_sort(&mut ranked, &|(a, ra): &(Arc<Pod>, usize), (b, rb): &(Arc<Pod>, usize)| deleted_before(a, *ra, b, *rb, now));
    ranked.into_iter().take(diff).map(|(p, _)| p).collect()
}

/// The relative order `deleted_before` gives two pods, for tests and logs.
pub fn order(a: &Pod, rank_a: usize, b: &Pod, rank_b: usize, now: Timestamp) -> Ordering {
    if deleted_before(a, rank_a, b, rank_b, now) {
        Ordering::Less
    } else if deleted_before(b, rank_b, a, rank_a, now) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const NOW: &str = "2025-06-01T12:00:00Z";

    fn now() -> Timestamp {
        NOW.parse().expect("now")
    }

    /// A pod: `node` ("" = unscheduled), `phase`, `ready_since` (None = not ready),
    /// created at `created`, with extra JSON merged into it.
    fn pod(uid: &str, node: &str, phase: &str, ready_since: Option<&str>, created: &str, extra: Value) -> Arc<Pod> {
        let mut v = json!({
            "metadata": {"name": uid, "namespace": "ns", "uid": uid, "creationTimestamp": created},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": phase},
        });
        if !node.is_empty() {
            v["spec"]["nodeName"] = json!(node);
        }
        if let Some(since) = ready_since {
            v["status"]["conditions"] = json!([{"type": "Ready", "status": "True", "lastTransitionTime": since}]);
        }
        merge(&mut v, &extra);
        Arc::new(serde_json::from_value(v).expect("pod"))
    }

    fn merge(into: &mut Value, patch: &Value) {
        match (into, patch) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
            (slot, v) => *slot = v.clone(),
        }
    }

    fn names(pods: &[Arc<Pod>]) -> Vec<String> {
        pods.iter().map(|p| p.metadata.name.clone().unwrap_or_default()).collect()
    }

    const OLD: &str = "2025-06-01T00:00:00Z";

    #[test]
    fn upstream_rule_table() {
        let t = now();
        // (name, a, b): a is deleted before b.
        let cases: Vec<(&str, Arc<Pod>, Arc<Pod>)> = vec![
            ("unscheduled < scheduled", pod("a", "", "Pending", None, OLD, json!({})), pod("b", "n1", "Pending", None, OLD, json!({}))),
            ("pending < unknown", pod("a", "n1", "Pending", None, OLD, json!({})), pod("b", "n1", "Unknown", None, OLD, json!({}))),
            ("unknown < running", pod("a", "n1", "Unknown", None, OLD, json!({})), pod("b", "n1", "Running", None, OLD, json!({}))),
            ("not ready < ready", pod("a", "n1", "Running", None, OLD, json!({})), pod("b", "n1", "Running", Some(OLD), OLD, json!({}))),
            (
                "lower deletion cost first",
                pod("a", "n1", "Running", Some(OLD), OLD, json!({"metadata": {"annotations": {DELETION_COST_ANNOTATION: "-5"}}})),
                pod("b", "n1", "Running", Some(OLD), OLD, json!({})),
            ),
            (
                "ready more recently first",
                pod("b", "n1", "Running", Some("2025-06-01T11:59:00Z"), OLD, json!({})),
                pod("a", "n1", "Running", Some("2025-06-01T06:00:00Z"), OLD, json!({})),
            ),
            (
                "same log2 bucket: lower uid first",
                pod("a", "n1", "Running", Some("2025-06-01T11:00:00Z"), OLD, json!({})),
                pod("b", "n1", "Running", Some("2025-06-01T10:59:00Z"), OLD, json!({})),
            ),
            (
                "more restarts first",
                pod("b", "n1", "Running", Some(OLD), OLD, json!({"status": {"containerStatuses": [{"name": "c", "restartCount": 3, "image": "", "imageID": "", "ready": true}]}})),
                pod("a", "n1", "Running", Some(OLD), OLD, json!({})),
            ),
            ("created more recently first", pod("b", "n1", "Pending", None, "2025-06-01T11:58:00Z", json!({})), pod("a", "n1", "Pending", None, OLD, json!({}))),
        ];
        for (name, a, b) in cases {
            assert_eq!(order(&a, 0, &b, 0, t), Ordering::Less, "{name}");
            assert_eq!(order(&b, 0, &a, 0, t), Ordering::Greater, "{name} (reversed)");
        }
        let a = pod("a", "n1", "Running", Some(OLD), OLD, json!({}));
        let b = pod("b", "n2", "Running", Some(OLD), OLD, json!({}));
        assert_eq!(order(&a, 2, &b, 1, t), Ordering::Less, "doubled-up first");
        assert_eq!(order(&a, 1, &a, 1, t), Ordering::Equal);
    }

    #[test]
    fn deletion_cost_parsing() {
        let with = |v: &str| pod("a", "", "Pending", None, OLD, json!({"metadata": {"annotations": {DELETION_COST_ANNOTATION: v}}}));
        assert_eq!(deletion_cost(&with("10")), 10);
        assert_eq!(deletion_cost(&with("-3")), -3);
        assert_eq!(deletion_cost(&with("0")), 0);
        assert_eq!(deletion_cost(&with("+3")), 0);
        assert_eq!(deletion_cost(&with("007")), 0);
        assert_eq!(deletion_cost(&with("99999999999")), 0);
    }

    #[test]
    fn scale_down_picks_the_cheapest_pods() {
        let t = now();
        let active = vec![
            pod("running-old", "n1", "Running", Some(OLD), OLD, json!({})),
            pod("pending", "n2", "Pending", None, OLD, json!({})),
            pod("unscheduled", "", "Pending", None, OLD, json!({})),
            pod("running-new", "n2", "Running", Some("2025-06-01T11:59:30Z"), OLD, json!({})),
            pod("not-ready", "n1", "Running", None, OLD, json!({})),
        ];
        let picked = pods_to_delete(&active, &active, 3, t);
        assert_eq!(names(&picked), ["unscheduled", "pending", "not-ready"]);
        let picked = pods_to_delete(&active, &active, 4, t);
        assert_eq!(names(&picked)[3], "running-new");
        assert_eq!(pods_to_delete(&active, &active, 9, t).len(), 5);
    }

    #[test]
    fn scale_down_spreads_across_nodes() {
        let t = now();
        let active = vec![
            pod("a", "n1", "Running", Some(OLD), OLD, json!({})),
            pod("b", "n2", "Running", Some(OLD), OLD, json!({})),
            pod("c", "n2", "Running", Some(OLD), OLD, json!({})),
        ];
        // Another ReplicaSet of the same Deployment has two pods on n1.
        let mut related = active.clone();
        related.push(pod("x", "n1", "Running", Some(OLD), OLD, json!({})));
        related.push(pod("y", "n1", "Running", Some(OLD), OLD, json!({})));
        assert_eq!(names(&pods_to_delete(&active, &related, 1, t)), ["a"]);
        assert_eq!(names(&pods_to_delete(&active, &active, 1, t)), ["b"]);
    }
}
