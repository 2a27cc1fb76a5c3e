//! `pods/eviction`: a delete that respects PodDisruptionBudgets (upstream's
//! `EvictionREST`). Pods that are Pending, finished or already being deleted go at once;
//! otherwise the one budget covering the pod must allow a disruption, which the eviction
//! takes (decrementing `disruptionsAllowed` and recording the pod in `disruptedPods`,
//! retried on conflicts) before the pod is marked `DisruptionTarget` and deleted. A refused
//! eviction is a 429 with a `DisruptionBudget` cause.

use std::time::Duration;

use ironkube_machinery::disruption_budget::{self as budget, ALWAYS_ALLOW, DISRUPTION_BUDGET_CAUSE};
use ironkube_machinery::error::{Cause, Details};
use ironkube_machinery::selectors::label::Selector;
use ironkube_machinery::{ApiError, FieldError, GroupResource, Reason};
use k8s_openapi::api::policy::v1::PodDisruptionBudgetStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::{Value, json};

use super::params::{DeleteOptions, ListParams, WriteOptions};
use super::store::{NoAdmission, Store, Sub};
use crate::http::AppState;

/// Upstream refuses evictions while a budget lists more pods than this as disrupted.
pub const MAX_DISRUPTED_POD_SIZE: usize = 2000;
/// Upstream's `EvictionsRetry`: 20 tries, half a second apart.
const RETRY_STEPS: usize = 20;
const RETRY_INTERVAL: Duration = Duration::from_millis(500);
const REFUSED: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

/// What an eviction answers when it did not fail: upstream returns a `Status` object
/// with HTTP 201 in both cases, even the one whose `code` says 500.
#[derive(Debug, Clone, PartialEq)]
pub enum Evicted {
    Success,
    /// The pod is covered by several budgets, which evictions do not support.
    MultipleBudgets,
}

impl Evicted {
    pub fn status(&self) -> Value {
        match self {
            Evicted::Success => json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
            Evicted::MultipleBudgets => json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                "code": 500,
            }),
        }
    }
}

fn too_many_requests(retry_after: i32, cause: String) -> ApiError {
    let mut e = ApiError::new(429, Reason::TooManyRequests, REFUSED);
    e.details = Some(Details {
        causes: vec![Cause { reason: DISRUPTION_BUDGET_CAUSE.into(), message: cause, field: String::new() }],
        retry_after_seconds: Some(retry_after).filter(|s| *s > 0),
        ..Details::default()
    });
    e
}

/// Upstream's `createTooManyRequestsError`: the budget has not caught up yet.
fn still_processing(pdb_name: &str) -> ApiError {
    too_many_requests(10, format!("The disruption budget {pdb_name} is still being processed by the server."))
}

fn budget_resource() -> GroupResource {
    GroupResource::new("policy", "poddisruptionbudget")
}

fn is_deleting(pod: &Value) -> bool {
    pod["metadata"].get("deletionTimestamp").is_some_and(|v| !v.is_null())
}

fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or("")
}

/// Upstream's `canIgnorePDB`: such pods are deleted without asking any budget.
pub fn can_ignore_budget(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed" | "Pending") || is_deleting(pod)
}

/// Upstream's `shouldEnforceResourceVersion`: pods that could turn ready meanwhile are
/// deleted only at the version looked at.
fn should_enforce_resource_version(pod: &Value) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && !is_deleting(pod)
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The budgets of the pod's namespace whose selector matches it (a budget with an invalid
/// selector matches nothing).
pub fn covering<'a>(budgets: impl IntoIterator<Item = &'a Value>, pod: &Value) -> Vec<&'a Value> {
    budgets
        .into_iter()
        .filter(|pdb| pdb["metadata"]["namespace"] == pod["metadata"]["namespace"])
        .filter(|pdb| {
            let typed: Option<Option<LabelSelector>> = serde_json::from_value(pdb["spec"]["selector"].clone()).ok();
            let Some(selector) = typed else { return false };
            Selector::from_label_selector(selector.as_ref()).is_ok_and(|s| s.matches_json(pod["metadata"].get("labels")))
        })
        .collect()
}

fn status_of(pdb: &Value) -> PodDisruptionBudgetStatus {
    serde_json::from_value(pdb["status"].clone()).unwrap_or_default()
}

/// Upstream's `checkAndDecrement`: the budget with one disruption taken for `pod_name`,
/// or why the eviction is refused.
pub fn check_and_decrement(pdb: &Value, pod_name: &str, dry_run: bool, now: jiff::Timestamp) -> Result<Option<Value>, ApiError> {
    let name = pdb["metadata"]["name"].as_str().unwrap_or("");
    let mut status = status_of(pdb);
    if status.observed_generation.unwrap_or(0) < pdb["metadata"]["generation"].as_i64().unwrap_or(0) {
        return Err(still_processing(name));
    }
    if status.disruptions_allowed < 0 {
        return Err(ApiError::forbidden(&budget_resource(), name, "pdb disruptions allowed is negative"));
    }
    if status.disrupted_pods.as_ref().is_some_and(|d| d.len() > MAX_DISRUPTED_POD_SIZE) {
        return Err(ApiError::forbidden(&budget_resource(), name, "DisruptedPods map too big - too many evictions not confirmed by PDB controller"));
    }
    if status.disruptions_allowed == 0 {
        return Err(too_many_requests(
            0,
            format!("The disruption budget {name} needs {} healthy pods and has {} currently", status.desired_healthy, status.current_healthy),
        ));
    }
    status.disruptions_allowed -= 1;
    if status.disruptions_allowed == 0 {
        budget::update_disruption_allowed_condition(&mut status, now);
    }
    if dry_run {
        return Ok(None);
    }
    status.disrupted_pods.get_or_insert_with(Default::default).insert(pod_name.to_string(), k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now));
    let mut updated = pdb.clone();
    updated["status"] = serde_json::to_value(status).map_err(ApiError::internal)?;
    Ok(Some(updated))
}

/// The pod's `DisruptionTarget` condition set as upstream's `UpdatePodCondition` does
/// (the transition time moves only when the status changes).
fn with_disruption_target(pod: &Value, now: &str) -> Value {
    let mut pod = pod.clone();
    let mut condition = json!({
        "type": "DisruptionTarget", "status": "True", "lastProbeTime": null, "lastTransitionTime": now,
        "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting",
    });
    let mut conditions: Vec<Value> = pod["status"]["conditions"].as_array().cloned().unwrap_or_default();
    match conditions.iter_mut().find(|c| c["type"] == "DisruptionTarget") {
        Some(existing) => {
            if existing["status"] == "True" {
                condition["lastTransitionTime"] = existing["lastTransitionTime"].clone();
            }
            if existing.get("lastProbeTime").is_some() {
                condition["lastProbeTime"] = existing["lastProbeTime"].clone();
            }
            *existing = condition;
        }
        None => conditions.push(condition),
    }
    if !pod["status"].is_object() {
        pod["status"] = json!({});
    }
    pod["status"]["conditions"] = json!(conditions);
    pod
}

/// Upstream's `addConditionAndDeletePod`: unless a dry run, the pod gets the
/// `DisruptionTarget` condition (checked against the delete's preconditions), then the
/// delete runs, its resourceVersion precondition moved past that write.
async fn add_condition_and_delete(state: &AppState, pods: &Store, ns: Option<&str>, name: &str, opts: &DeleteOptions) -> Result<(), ApiError> {
    let mut opts = opts.clone();
    if !opts.dry_run {
        let gr = GroupResource::new("", "Pod");
        let pre = opts.preconditions.clone();
        let now = super::store::now_rfc3339();
        let mark = |old: &Value| -> Result<Value, ApiError> {
            let meta = &old["metadata"];
            if let Some(uid) = pre.uid.as_deref().filter(|u| !u.is_empty())
                && meta["uid"].as_str() != Some(uid)
            {
                let record = meta["uid"].as_str().unwrap_or("");
                return Err(ApiError::conflict(&gr, name, &format!(
                    "the UID in the precondition ({uid}) does not match the UID in record ({record}). The object might have been deleted and then recreated"
                )));
            }
            if let Some(rv) = pre.resource_version.as_deref().filter(|r| !r.is_empty())
                && meta["resourceVersion"].as_str() != Some(rv)
            {
                let record = meta["resourceVersion"].as_str().unwrap_or("");
                return Err(ApiError::conflict(&gr, name, &format!(
                    "the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({record}). The object might have been modified"
                )));
            }
            Ok(with_disruption_target(old, &now))
        };
        // The server's own write of a status condition: managedFields stay as they are,
        // as upstream's in-store update leaves them.
        let out = pods.patch(ns, name, &mark, Sub::Binding, &WriteOptions::default(), &NoAdmission).await?;
        if opts.preconditions.resource_version.is_some()
            && let Some(rv) = out.object["metadata"]["resourceVersion"].as_str()
        {
            opts.preconditions.resource_version = Some(rv.to_string());
        }
    }
    pods.delete(ns, name, &opts, state.admission.as_ref()).await?;
    Ok(())
}

/// The delete options of an Eviction body, with the query's dryRun (upstream's
/// `propagateDryRun`).
fn delete_options(eviction: &Value, query_dry_run: bool) -> Result<DeleteOptions, ApiError> {
    let mut del = DeleteOptions::default();
    let Some(body) = eviction.get("deleteOptions").filter(|d| d.is_object()) else {
        del.dry_run = query_dry_run;
        return Ok(del);
    };
    if body.get("ignoreStoreReadErrorWithClusterBreakingPotential").and_then(Value::as_bool) == Some(true) {
        let name = eviction["metadata"]["name"].as_str().unwrap_or("");
        return Err(ApiError::invalid("policy", "Eviction", name, &[FieldError::invalid(
            "deleteOptions.ignoreStoreReadErrorWithClusterBreakingPotential",
            json!(true),
            "can not be set for pod eviction, try after removing the option",
        )]));
    }
    // Only "All" parses as a dryRun value, so the body and the query cannot disagree.
    del.merge_body(body)?;
    del.dry_run |= query_dry_run;
    Ok(del)
}

/// Checks the Eviction body against the request (upstream's create handler and
/// `EvictionREST.Create`) and returns the delete options it carries.
pub fn read_eviction(eviction: &Value, ns: Option<&str>, name: &str, query_dry_run: bool) -> Result<DeleteOptions, ApiError> {
    if let Some(kind) = eviction.get("kind").and_then(Value::as_str).filter(|k| !k.is_empty() && *k != "Eviction") {
        return Err(ApiError::bad_request(format!("not a Eviction object: {kind}")));
    }
    if let Some(v) = eviction.get("apiVersion").and_then(Value::as_str).filter(|v| !v.is_empty() && !matches!(*v, "policy/v1" | "policy/v1beta1")) {
        return Err(ApiError::bad_request(format!("the API version in the data ({v}) does not match the expected API version (policy/v1)")));
    }
    if let Some(body_ns) = eviction["metadata"]["namespace"].as_str().filter(|n| !n.is_empty())
        && Some(body_ns) != ns
    {
        return Err(ApiError::bad_request("the namespace of the provided object does not match the namespace sent on the request"));
    }
    if eviction["metadata"]["name"].as_str().unwrap_or("") != name {
        return Err(ApiError::bad_request("name in URL does not match name in Eviction object"));
    }
    delete_options(eviction, query_dry_run)
}

/// Evicts pod `name` (upstream's `EvictionREST.Create`).
pub async fn evict(state: &AppState, pods: &Store, ns: Option<&str>, name: &str, del: DeleteOptions) -> Result<Evicted, ApiError> {
    let caller_set_rv = del.preconditions.resource_version.is_some();
    // Pods no budget protects go at once (retrying conflicts unless the caller pinned a
    // resourceVersion).
    let mut attempt = 0;
    let pod = loop {
        attempt += 1;
        let pod = pods.get(ns, name, None).await?;
        if !can_ignore_budget(&pod) {
            break pod;
        }
        let mut opts = del.clone();
        if should_enforce_resource_version(&pod) && !caller_set_rv {
            opts.preconditions.resource_version = pod["metadata"]["resourceVersion"].as_str().map(str::to_string);
        }
        match add_condition_and_delete(state, pods, ns, name, &opts).await {
            Ok(()) => return Ok(Evicted::Success),
            Err(e) if e.code == 409 && !caller_set_rv && attempt < RETRY_STEPS => tokio::time::sleep(RETRY_INTERVAL).await,
            Err(e) => return Err(e),
        }
    };

    let budgets = state.registry.store("policy", "v1", "poddisruptionbudgets").ok_or_else(|| ApiError::internal("no PodDisruptionBudget storage"))?;
    let list = budgets.list(ns, &ListParams::default()).await?;
    let covering = covering(list.items.iter().map(|v| &**v), &pod);
    let mut skip_budget = false;
    let pdb_name = match covering.as_slice() {
        [] => String::new(),
        [_, _, ..] => return Ok(Evicted::MultipleBudgets),
        [pdb] => {
            let pdb_name = pdb["metadata"]["name"].as_str().unwrap_or("").to_string();
            if !is_ready(&pod) {
                let status = status_of(pdb);
                let always = pdb["spec"]["unhealthyPodEvictionPolicy"].as_str() == Some(ALWAYS_ALLOW);
                // An unready pod does not count as healthy: taking it away costs the budget
                // nothing when the application is not disrupted (or the policy says so).
                skip_budget = always || (status.current_healthy >= status.desired_healthy && status.desired_healthy > 0);
            }
            if !skip_budget {
                take_disruption(budgets, ns, name, &pdb_name, (*pdb).clone(), del.dry_run).await?;
            }
            pdb_name
        }
    };

    let mut opts = del.clone();
    if skip_budget {
        opts.preconditions.resource_version = pod["metadata"]["resourceVersion"].as_str().map(str::to_string);
    }
    match add_condition_and_delete(state, pods, ns, name, &opts).await {
        Ok(()) => Ok(Evicted::Success),
        // The pod changed since it was judged unready: the client should come back.
        Err(e) if e.code == 409 && skip_budget && !caller_set_rv => Err(still_processing(&pdb_name)),
        Err(e) => Err(e),
    }
}

/// Takes one disruption from the budget, re-reading it after each conflict.
async fn take_disruption(budgets: &Store, ns: Option<&str>, pod_name: &str, pdb_name: &str, mut pdb: Value, dry_run: bool) -> Result<(), ApiError> {
    let opts = WriteOptions { user_agent: Some("kube-apiserver/v1.33.13".into()), ..WriteOptions::default() };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(updated) = check_and_decrement(&pdb, pod_name, dry_run, jiff::Timestamp::now())? else { return Ok(()) };
        match budgets.update(ns, pdb_name, updated, Sub::Status, &opts, &NoAdmission).await {
            Ok(_) => return Ok(()),
            Err(e) if e.code == 409 && attempt < RETRY_STEPS => {
                tokio::time::sleep(RETRY_INTERVAL).await;
                pdb = budgets.get(ns, pdb_name, None).await?;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdb(allowed: i64, generation: i64, observed: i64) -> Value {
        json!({
            "metadata": {"name": "foo", "namespace": "ns", "generation": generation},
            "spec": {"selector": {"matchLabels": {"app": "web"}}},
            "status": {"disruptionsAllowed": allowed, "currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3, "observedGeneration": observed},
        })
    }

    fn now() -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn decrement_records_the_pod() {
        let Ok(Some(updated)) = check_and_decrement(&pdb(2, 1, 1), "p1", false, now()) else { panic!("allowed") };
        assert_eq!(updated["status"]["disruptionsAllowed"], 1);
        assert_eq!(updated["status"]["disruptedPods"]["p1"], "2027-01-15T08:00:00Z");
        assert!(updated["status"].get("conditions").is_none_or(Value::is_null));
        // The last allowed disruption closes the budget's condition too.
        let Ok(Some(last)) = check_and_decrement(&pdb(1, 1, 1), "p1", false, now()) else { panic!("allowed") };
        assert_eq!(last["status"]["disruptionsAllowed"], 0);
        assert_eq!(last["status"]["conditions"][0]["reason"], "InsufficientPods");
        assert_eq!(last["status"]["conditions"][0]["status"], "False");
        // A dry run checks and writes nothing.
        assert!(matches!(check_and_decrement(&pdb(1, 1, 1), "p1", true, now()), Ok(None)));
    }

    #[test]
    fn refusals_like_upstream() {
        let cases: &[(Value, u16, &str, Option<&str>)] = &[
            (pdb(0, 1, 1), 429, REFUSED, Some("The disruption budget foo needs 2 healthy pods and has 3 currently")),
            (pdb(1, 2, 1), 429, REFUSED, Some("The disruption budget foo is still being processed by the server.")),
            (pdb(-1, 1, 1), 403, "poddisruptionbudget.policy \"foo\" is forbidden: pdb disruptions allowed is negative", None),
        ];
        for (budget, code, message, cause) in cases {
            let Err(e) = check_and_decrement(budget, "p", false, now()) else { panic!("refused") };
            assert_eq!((e.code, e.message.as_str()), (*code, *message));
            let status = e.to_status();
            if let Some(cause) = cause {
                assert_eq!(status["reason"], "TooManyRequests");
                assert_eq!(status["details"]["causes"][0], json!({"reason": "DisruptionBudget", "message": cause}));
            }
        }
        let Err(e) = check_and_decrement(&pdb(1, 2, 1), "p", false, now()) else { panic!("refused") };
        assert_eq!(e.to_status()["details"]["retryAfterSeconds"], 10);
        let Err(e) = check_and_decrement(&pdb(0, 1, 1), "p", false, now()) else { panic!("refused") };
        assert!(e.to_status()["details"].get("retryAfterSeconds").is_none());
    }

    #[test]
    fn which_pods_skip_the_budget() {
        let pod = |phase: &str, deleting: bool| {
            let mut p = json!({"metadata": {"name": "p"}, "status": {"phase": phase}});
            if deleting {
                p["metadata"]["deletionTimestamp"] = json!("2027-01-01T00:00:00Z");
            }
            p
        };
        let cases = [("Pending", false, true), ("Succeeded", false, true), ("Failed", false, true), ("Running", true, true), ("Running", false, false), ("", false, false)];
        for (phase, deleting, ignore) in cases {
            assert_eq!(can_ignore_budget(&pod(phase, deleting)), ignore, "{phase} deleting={deleting}");
        }
        assert!(should_enforce_resource_version(&pod("Pending", false)));
        assert!(!should_enforce_resource_version(&pod("Failed", false)));
    }

    #[test]
    fn covering_budgets_match_namespace_and_selector() {
        let pod = json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web"}}});
        let other_ns = json!({"metadata": {"name": "a", "namespace": "other"}, "spec": {"selector": {"matchLabels": {"app": "web"}}}});
        let no_selector = json!({"metadata": {"name": "b", "namespace": "ns"}, "spec": {}});
        let empty_selector = json!({"metadata": {"name": "c", "namespace": "ns"}, "spec": {"selector": {}}});
        let bad = json!({"metadata": {"name": "d", "namespace": "ns"}, "spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "Nope"}]}}});
        let all = [pdb(1, 1, 1), other_ns, no_selector, empty_selector, bad];
        let names: Vec<&str> = covering(all.iter(), &pod).iter().filter_map(|p| p["metadata"]["name"].as_str()).collect();
        assert_eq!(names, vec!["foo", "c"]);
    }

    #[test]
    fn disruption_target_condition() {
        let pod = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let marked = with_disruption_target(&pod, "2027-01-01T00:00:00Z");
        let c = &marked["status"]["conditions"][1];
        assert_eq!((c["type"].as_str(), c["status"].as_str(), c["reason"].as_str(), c["message"].as_str()), (Some("DisruptionTarget"), Some("True"), Some("EvictionByEvictionAPI"), Some("Eviction API: evicting")));
        // Marked again later: the transition time stays.
        let again = with_disruption_target(&marked, "2027-02-01T00:00:00Z");
        assert_eq!(again["status"]["conditions"][1]["lastTransitionTime"], "2027-01-01T00:00:00Z");
        assert_eq!(again["status"]["conditions"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn eviction_bodies() {
        let v1 = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p", "namespace": "ns"}, "deleteOptions": {"gracePeriodSeconds": 5}});
        let Ok(opts) = read_eviction(&v1, Some("ns"), "p", false) else { panic!("valid") };
        assert_eq!(opts.grace_period_seconds, Some(5));
        let beta = json!({"apiVersion": "policy/v1beta1", "kind": "Eviction", "metadata": {"name": "p"}});
        assert!(read_eviction(&beta, Some("ns"), "p", true).is_ok_and(|o| o.dry_run));
        let wrong_name = json!({"metadata": {"name": "q"}});
        assert_eq!(read_eviction(&wrong_name, Some("ns"), "p", false).err().map(|e| e.message), Some("name in URL does not match name in Eviction object".into()));
        let breaking = json!({"metadata": {"name": "p"}, "deleteOptions": {"ignoreStoreReadErrorWithClusterBreakingPotential": true}});
        assert_eq!(read_eviction(&breaking, Some("ns"), "p", false).err().map(|e| e.code), Some(422));
    }
}
