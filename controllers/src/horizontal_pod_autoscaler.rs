//! The HorizontalPodAutoscaler controller (upstream's `horizontalpodautoscaling`, from
//! `pkg/controller/podautoscaler/horizontal.go`) for a cluster that serves no metrics API.
//!
//! Every 15 s (upstream's `--horizontal-pod-autoscaler-sync-period`) each autoscaler reads
//! its target's `scale` subresource (found through discovery, as upstream's scale client
//! finds it), brings a target outside `[minReplicas, maxReplicas]` back inside, and
//! otherwise asks for metrics. ironkube serves neither `metrics.k8s.io` nor the custom and
//! external metrics APIs, so that ask fails exactly as upstream's does without them: the
//! `ScalingActive` condition turns False with the metric's failure, and the
//! `FailedGet*Metric` and `FailedComputeMetricsReplicas` events say why. A target scaled to
//! zero disables autoscaling (unless `minReplicas` is 0).

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, future};
use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition, HorizontalPodAutoscalerStatus, MetricSpec, MetricStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, instrument};

use crate::informer::{self, Change};
use crate::recorder::Recorder;
use crate::replicaset::key;

pub const NAME: &str = "horizontalpodautoscaling";

/// Upstream's default `--horizontal-pod-autoscaler-sync-period`.
pub const SYNC_PERIOD: Duration = Duration::from_secs(15);

/// What the resource metrics client says when `metrics.k8s.io` is not served.
const RESOURCE_METRICS_UNAVAILABLE: &str =
    "unable to fetch metrics from resource metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)";
/// What the custom metrics client says when no `custom.metrics.k8s.io` is registered.
const CUSTOM_METRICS_UNAVAILABLE: &str = "unable to fetch metrics from custom metrics API: no custom metrics API (custom.metrics.k8s.io) registered";

/// What a reconcile fails with (the failure is also written to the autoscaler).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid API version in scale target reference: {0}")]
    TargetVersion(String),
    #[error("unable to determine resource for scale target reference: {0}")]
    TargetResource(String),
    #[error("failed to query scale subresource for {reference}: {message}")]
    GetScale { reference: String, message: String },
    #[error("failed to compute desired number of replicas based on listed metrics for {reference}: {message}")]
    Metrics { reference: String, message: String },
    #[error("failed to rescale {reference}: {source}")]
    Rescale { reference: String, #[source] source: kube::Error },
    #[error("failed to update status for {key}: {source}")]
    Status { key: String, #[source] source: kube::Error },
}

impl informer::Conflict for Error {
    fn is_conflict(&self) -> bool {
        match self {
            Error::Rescale { source, .. } | Error::Status { source, .. } => informer::is_conflict(source),
            _ => false,
        }
    }
}

struct Ctx {
    client: kube::Client,
    recorder: Recorder,
}

/// Sets condition `type_` as upstream's `setConditionInList`: the transition time moves only
/// when the status changes; a new condition goes last.
pub fn set_condition(conditions: &mut Vec<HorizontalPodAutoscalerCondition>, type_: &str, status: &str, reason: &str, message: String, now: Timestamp) {
    let index = match conditions.iter().position(|c| c.type_ == type_) {
        Some(i) => i,
        None => {
            conditions.push(HorizontalPodAutoscalerCondition { type_: type_.into(), ..Default::default() });
            conditions.len() - 1
        }
    };
    let condition = &mut conditions[index];
    if condition.status != status {
        condition.last_transition_time = Some(Time(now));
    }
    condition.status = status.into();
    condition.reason = Some(reason.into());
    condition.message = Some(message);
}

/// What the replica count alone decides, before any metric is asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Bounds {
    /// The target is scaled to zero and `minReplicas` is not: autoscaling is off.
    Disabled,
    /// The target is outside `[minReplicas, maxReplicas]`: scale it to `desired`.
    Clamp { desired: i32, reason: &'static str },
    /// Within bounds: the metrics decide.
    Metrics,
}

/// Upstream's order of checks in `reconcileAutoscaler`.
pub fn bounds(current: i32, min_replicas: Option<i32>, max_replicas: i32) -> Bounds {
    let min = min_replicas.unwrap_or(1);
    if current == 0 && min != 0 {
        Bounds::Disabled
    } else if current > max_replicas {
        Bounds::Clamp { desired: max_replicas, reason: "Current number of replicas above Spec.MaxReplicas" }
    } else if current < min {
        Bounds::Clamp { desired: min, reason: "Current number of replicas below Spec.MinReplicas" }
    } else {
        Bounds::Metrics
    }
}

/// How one metric fails without metrics APIs: the reason of the `ScalingActive` condition
/// (also the event's), the event's message, and the error as the metric loop sees it.
#[derive(Debug, PartialEq, Eq)]
pub struct MetricFailure {
    pub reason: &'static str,
    pub event: String,
    pub error: String,
}

/// The spec's metrics as the API server defaults them (an empty list means 80% CPU).
fn metric_specs(hpa: &HorizontalPodAutoscaler) -> Vec<MetricSpec> {
    let specs = hpa.spec.as_ref().and_then(|s| s.metrics.clone()).unwrap_or_default();
    if !specs.is_empty() {
        return specs;
    }
    serde_json::from_value(serde_json::json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]))
        .unwrap_or_default()
}

/// Upstream's `computeReplicasForMetric` with every metrics client failing as it does when
/// its API is not served.
pub fn metric_failure(spec: &MetricSpec) -> MetricFailure {
    // The replica calculator's wording for a resource (or container resource) metric.
    let resource = |name: &str, utilization: bool| {
        let what = if utilization { "utilization" } else { "usage" };
        format!("failed to get {name} {what}: unable to get metrics for resource {name}: {RESOURCE_METRICS_UNAVAILABLE}")
    };
    match spec.type_.as_str() {
        "Resource" => {
            let (name, utilization) = match &spec.resource {
                Some(r) => (r.name.as_str(), r.target.average_value.is_none()),
                None => ("", true),
            };
            let event = resource(name, utilization);
            MetricFailure { reason: "FailedGetResourceMetric", error: format!("failed to get {name} resource metric value: {event}"), event }
        }
        "ContainerResource" => {
            let (name, container, utilization) = match &spec.container_resource {
                Some(r) => (r.name.as_str(), r.container.as_str(), r.target.average_value.is_none()),
                None => ("", "", true),
            };
            let event = resource(name, utilization);
            MetricFailure {
                reason: "FailedGetContainerResourceMetric",
                error: format!("failed to get {container} container metric value: {event}"),
                event,
            }
        }
        "Pods" => {
            let name = spec.pods.as_ref().map(|p| p.metric.name.as_str()).unwrap_or("");
            let event = format!("unable to get metric {name}: {CUSTOM_METRICS_UNAVAILABLE}");
            MetricFailure { reason: "FailedGetPodsMetric", error: format!("failed to get pods metric value: {event}"), event }
        }
        "Object" => {
            let name = spec.object.as_ref().map(|o| o.metric.name.as_str()).unwrap_or("");
            let event = format!("unable to get metric {name}: {CUSTOM_METRICS_UNAVAILABLE}");
            MetricFailure { reason: "FailedGetObjectMetric", error: format!("failed to get object metric value: {event}"), event }
        }
        "External" => {
            let name = spec.external.as_ref().map(|e| e.metric.name.as_str()).unwrap_or("");
            let event = format!(
                "unable to get external metric {name}: unable to fetch metrics from external metrics API: the server could not find the requested resource (get {name}.external.metrics.k8s.io)"
            );
            MetricFailure { reason: "FailedGetExternalMetric", error: format!("failed to get {name} external metric value: {event}"), event }
        }
        other => {
            let event = format!("unknown metric source type \"{other}\"");
            MetricFailure { reason: "InvalidMetricSourceType", error: event.clone(), event }
        }
    }
}

/// The error of the whole metric loop when every metric failed, as upstream words it.
pub fn metrics_error(failures: &[MetricFailure]) -> String {
    let first = failures.first().map(|f| f.error.as_str()).unwrap_or("");
    format!("invalid metrics ({n} invalid out of {n}), first error is: {first}", n = failures.len())
}

/// The autoscaler's reference to its target, as upstream's log and errors name it.
fn reference(hpa: &HorizontalPodAutoscaler) -> String {
    let target = hpa.spec.as_ref().map(|s| &s.scale_target_ref);
    format!(
        "{}/{}/{}",
        target.map(|t| t.kind.as_str()).unwrap_or(""),
        hpa.metadata.namespace.as_deref().unwrap_or(""),
        target.map(|t| t.name.as_str()).unwrap_or("")
    )
}

/// Finds the target's resource through discovery, as upstream's REST mapper does from the
/// group of `apiVersion` and the kind.
async fn target_api(client: &kube::Client, namespace: &str, api_version: &str, kind: &str) -> Result<Api<DynamicObject>, Error> {
    let group = match api_version.split('/').collect::<Vec<_>>().as_slice() {
        [_version] => "",
        [group, _version] => group,
        _ => return Err(Error::TargetVersion(format!("unexpected GroupVersion string: {api_version}"))),
    };
    let no_match = || Error::TargetResource(format!("no matches for kind \"{kind}\" in group \"{group}\""));
    let discovered = kube::discovery::group(client, group).await.map_err(|_| no_match())?;
    let (resource, _caps) = discovered.recommended_kind(kind).ok_or_else(no_match)?;
    Ok(Api::namespaced_with(client.clone(), namespace, &resource))
}

fn api_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

#[instrument(skip_all, fields(controller = NAME, key = %key(&hpa.metadata)))]
async fn reconcile(hpa: Arc<HorizontalPodAutoscaler>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let result = sync(&hpa, &ctx).await;
    // Upstream processes every autoscaler once a sync period, failed or not.
    match result {
        Ok(()) => Ok(Action::requeue(SYNC_PERIOD)),
        Err(e) if informer::Conflict::is_conflict(&e) => Err(e),
        Err(e) => {
            debug!(error = %e, "autoscaler sync failed");
            Ok(Action::requeue(SYNC_PERIOD))
        }
    }
}

async fn sync(hpa: &HorizontalPodAutoscaler, ctx: &Ctx) -> Result<(), Error> {
    let namespace = hpa.metadata.namespace.as_deref().unwrap_or("");
    let Some(spec) = hpa.spec.as_ref() else { return Ok(()) };
    let original = hpa.status.clone().unwrap_or_default();
    let mut status = original.clone();
    let mut conditions = status.conditions.take().unwrap_or_default();
    let reference = reference(hpa);
    let now = Timestamp::now();
    let target = &spec.scale_target_ref;

    let scaled = match target_api(&ctx.client, namespace, target.api_version.as_deref().unwrap_or(""), &target.kind).await {
        Ok(api) => api.get_scale(&target.name).await.map(|scale| (api, scale)).map_err(|e| {
            let message = api_message(&e);
            (message.clone(), Error::GetScale { reference: reference.clone(), message })
        }),
        Err(e) => {
            let message = match &e {
                Error::TargetVersion(m) | Error::TargetResource(m) => m.clone(),
                other => other.to_string(),
            };
            Err((message, e))
        }
    };
    let (api, mut scale) = match scaled {
        Ok(found) => found,
        Err((message, err)) => {
            ctx.recorder.warning(hpa, "FailedGetScale", message.clone());
            set_condition(&mut conditions, "AbleToScale", "False", "FailedGetScale", format!("the HPA controller was unable to get the target's current scale: {message}"), now);
            status.conditions = Some(conditions);
            update_status_if_needed(ctx, hpa, &original, status).await?;
            return Err(err);
        }
    };
    set_condition(&mut conditions, "AbleToScale", "True", "SucceededGetScale", "the HPA controller was able to get the target's current scale".into(), now);
    let current = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);

    let (desired, reason) = match bounds(current, spec.min_replicas, spec.max_replicas) {
        Bounds::Disabled => {
            set_condition(&mut conditions, "ScalingActive", "False", "ScalingDisabled", "scaling is disabled since the replica count of the target is zero".into(), now);
            (None, "")
        }
        Bounds::Clamp { desired, reason } => (Some(desired), reason),
        Bounds::Metrics => {
            let selector = scale.status.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
            let specs = metric_specs(hpa);
            let message = if selector.is_empty() {
                ctx.recorder.warning(hpa, "SelectorRequired", "selector is required".into());
                set_condition(&mut conditions, "ScalingActive", "False", "InvalidSelector", "the HPA target's scale is missing a selector".into(), now);
                "selector is required".to_string()
            } else {
                let failures: Vec<MetricFailure> = specs.iter().map(metric_failure).collect();
                for failure in &failures {
                    ctx.recorder.warning(hpa, failure.reason, failure.event.clone());
                }
                if let Some(first) = failures.first() {
                    set_condition(&mut conditions, "ScalingActive", "False", first.reason, format!("the HPA was unable to compute the replica count: {}", first.event), now);
                }
                metrics_error(&failures)
            };
            // Upstream keeps the desired count and records one empty status per metric.
            status.current_replicas = Some(current);
            status.current_metrics = if selector.is_empty() { None } else { Some(vec![MetricStatus::default(); specs.len()]) };
            status.conditions = Some(conditions);
            update_status_if_needed(ctx, hpa, &original, status).await?;
            ctx.recorder.warning(hpa, "FailedComputeMetricsReplicas", message.clone());
            return Err(Error::Metrics { reference, message });
        }
    };

    let rescaled = match desired {
        Some(desired) => {
            scale.spec.get_or_insert_with(Default::default).replicas = Some(desired);
            if let Err(source) = api.replace_scale(&target.name, &PostParams::default(), &scale).await {
                let message = api_message(&source);
                ctx.recorder.warning(hpa, "FailedRescale", format!("New size: {desired}; reason: {reason}; error: {message}"));
                set_condition(&mut conditions, "AbleToScale", "False", "FailedUpdateScale", format!("the HPA controller was unable to update the target scale: {message}"), now);
                status.current_replicas = Some(current);
                status.conditions = Some(conditions);
                update_status_if_needed(ctx, hpa, &original, status).await?;
                return Err(Error::Rescale { reference, source });
            }
            set_condition(&mut conditions, "AbleToScale", "True", "SucceededRescale", format!("the HPA controller was able to update the target scale to {desired}"), now);
            ctx.recorder.normal(hpa, "SuccessfulRescale", format!("New size: {desired}; reason: {reason}"));
            info!(hpa = %key(&hpa.metadata), old = current, new = desired, reason, "successful rescale");
            true
        }
        None => false,
    };
    let desired = desired.unwrap_or(current);
    let new_status = HorizontalPodAutoscalerStatus {
        current_replicas: Some(current),
        desired_replicas: desired,
        last_scale_time: if rescaled { Some(Time(now)) } else { status.last_scale_time.clone() },
        current_metrics: None,
        conditions: Some(conditions),
        observed_generation: status.observed_generation,
    };
    update_status_if_needed(ctx, hpa, &original, new_status).await
}

/// Writes `status` unless it equals `original` (upstream's `updateStatusIfNeeded`).
async fn update_status_if_needed(ctx: &Ctx, hpa: &HorizontalPodAutoscaler, original: &HorizontalPodAutoscalerStatus, status: HorizontalPodAutoscalerStatus) -> Result<(), Error> {
    if &status == original {
        return Ok(());
    }
    let mut updated = hpa.clone();
    updated.status = Some(status);
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(ctx.client.clone(), hpa.metadata.namespace.as_deref().unwrap_or(""));
    let name = hpa.metadata.name.as_deref().unwrap_or("");
    match api.replace_status(name, &PostParams::default(), &updated).await {
        Ok(_) => Ok(()),
        Err(source) => {
            ctx.recorder.warning(hpa, "FailedUpdateStatus", api_message(&source));
            Err(Error::Status { key: key(&hpa.metadata), source })
        }
    }
}

/// Whether a change should get the autoscaler looked at now: a new one, or a new spec.
/// Status writes (ours) wait for the next sync period, as upstream's rate-limited queue does.
fn triggers(change: Change<HorizontalPodAutoscaler>) -> Option<ObjectRef<HorizontalPodAutoscaler>> {
    match change {
        Change::Added(hpa) => Some(ObjectRef::from_obj(&*hpa)),
        Change::Updated { old, new } if old.spec != new.spec => Some(ObjectRef::from_obj(&*new)),
        _ => None,
    }
}

pub async fn run(client: kube::Client, stop: CancellationToken) {
    let (store, changes) = informer::informer(Api::<HorizontalPodAutoscaler>::all(client.clone()), watcher::Config::default(), "horizontalpodautoscalers");
    let triggers = changes.filter_map(|change| future::ready(triggers(change))).boxed();
    info!("starting the horizontal pod autoscaler controller");
    let ctx = Arc::new(Ctx { recorder: Recorder::new(client.clone(), "horizontal-pod-autoscaler"), client });
    informer::run(NAME, store, triggers, ctx, reconcile, informer::Retry::default(), stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bounds_as_upstream_orders_them() {
        let cases = [
            ("zero disables", 0, Some(3), 5, Bounds::Disabled),
            ("zero with min zero", 0, Some(0), 5, Bounds::Metrics),
            ("default min is one", 0, None, 5, Bounds::Disabled),
            ("above max", 7, Some(1), 5, Bounds::Clamp { desired: 5, reason: "Current number of replicas above Spec.MaxReplicas" }),
            ("below min", 1, Some(3), 5, Bounds::Clamp { desired: 3, reason: "Current number of replicas below Spec.MinReplicas" }),
            ("inside", 3, Some(3), 5, Bounds::Metrics),
        ];
        for (what, current, min, max, want) in cases {
            assert_eq!(bounds(current, min, max), want, "{what}");
        }
    }

    #[test]
    fn metric_failures_word_as_upstream() {
        let spec = |v: serde_json::Value| -> MetricSpec { serde_json::from_value(v).expect("metric spec") };
        let cpu = metric_failure(&spec(json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}})));
        assert_eq!(cpu.reason, "FailedGetResourceMetric");
        assert_eq!(
            cpu.event,
            "failed to get cpu utilization: unable to get metrics for resource cpu: unable to fetch metrics from resource metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)"
        );
        assert_eq!(
            metrics_error(&[cpu]),
            "invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: failed to get cpu utilization: unable to get metrics for resource cpu: unable to fetch metrics from resource metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)"
        );
        let memory = metric_failure(&spec(json!({"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}})));
        assert!(memory.event.starts_with("failed to get memory usage: "), "{}", memory.event);
        let container = metric_failure(&spec(json!({"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app", "target": {"type": "Utilization", "averageUtilization": 50}}})));
        assert_eq!(container.reason, "FailedGetContainerResourceMetric");
        assert!(container.error.starts_with("failed to get app container metric value: failed to get cpu utilization"), "{}", container.error);
        let pods = metric_failure(&spec(json!({"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1"}}})));
        assert_eq!(pods.reason, "FailedGetPodsMetric");
        assert!(pods.error.starts_with("failed to get pods metric value: unable to get metric qps: "), "{}", pods.error);
    }

    #[test]
    fn empty_metrics_mean_cpu_at_80_percent() {
        let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({"metadata": {"name": "h"}, "spec": {"maxReplicas": 3, "scaleTargetRef": {"kind": "Deployment", "name": "d"}}})).expect("hpa");
        let specs = metric_specs(&hpa);
        assert_eq!(specs.len(), 1);
        assert_eq!(metric_failure(&specs[0]).reason, "FailedGetResourceMetric");
    }

    #[test]
    fn conditions_move_their_time_only_on_a_new_status() {
        let t1: Timestamp = "2025-01-01T00:00:00Z".parse().expect("t1");
        let t2: Timestamp = "2025-01-01T00:01:00Z".parse().expect("t2");
        let mut conditions = Vec::new();
        set_condition(&mut conditions, "AbleToScale", "True", "SucceededGetScale", "m".into(), t1);
        set_condition(&mut conditions, "ScalingActive", "False", "FailedGetResourceMetric", "x".into(), t1);
        set_condition(&mut conditions, "AbleToScale", "True", "SucceededRescale", "n".into(), t2);
        assert_eq!(conditions.len(), 2);
        assert_eq!(conditions[0].reason.as_deref(), Some("SucceededRescale"));
        assert_eq!(conditions[0].last_transition_time, Some(Time(t1)));
        set_condition(&mut conditions, "AbleToScale", "False", "FailedGetScale", "e".into(), t2);
        assert_eq!(conditions[0].last_transition_time, Some(Time(t2)));
    }

    #[test]
    fn only_new_autoscalers_and_new_specs_trigger() {
        let hpa = |max: i32, replicas: i32| -> Arc<HorizontalPodAutoscaler> {
            Arc::new(serde_json::from_value(json!({"metadata": {"name": "h", "namespace": "n"}, "spec": {"maxReplicas": max, "scaleTargetRef": {"kind": "Deployment", "name": "d"}}, "status": {"currentReplicas": replicas, "desiredReplicas": replicas}})).expect("hpa"))
        };
        assert!(triggers(Change::Added(hpa(3, 0))).is_some());
        assert!(triggers(Change::Updated { old: hpa(3, 0), new: hpa(3, 1) }).is_none());
        assert!(triggers(Change::Updated { old: hpa(3, 0), new: hpa(4, 0) }).is_some());
        assert!(triggers(Change::Deleted(hpa(3, 0))).is_none());
    }
}
