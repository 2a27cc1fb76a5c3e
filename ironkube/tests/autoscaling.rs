//! The HorizontalPodAutoscaler controller inside `ironkube up` (no metrics API is served):
//! an autoscaler with minReplicas 3 over a Deployment of 1 scales it to 3 with upstream's
//! SuccessfulRescale event, then says metrics are unavailable in its ScalingActive
//! condition; a target scaled to zero turns autoscaling off.

mod support;

use serde_json::Value;
use support::{Ironkube, eventually};

const KUBECTL: &str = "1.33";

fn condition(hpa: &Value, type_: &str) -> Option<(String, String, String)> {
    let c = hpa["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_)?;
    Some((c["status"].as_str()?.to_string(), c["reason"].as_str()?.to_string(), c["message"].as_str().unwrap_or("").to_string()))
}

#[test]
fn min_replicas_scale_up_and_metrics_unavailable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = Ironkube::up_with(&tmp.path().join("data"), &["--simulated-nodes", "1"]);
    cluster.kubectl_ok(KUBECTL, &["create", "namespace", "hpa"]);
    cluster.kubectl_ok(KUBECTL, &["create", "deployment", "web", "-n", "hpa", "--image=busybox:1.36", "--replicas=1"]);
    cluster.kubectl_ok(KUBECTL, &["autoscale", "deployment", "web", "-n", "hpa", "--min=3", "--max=5", "--cpu-percent=50"]);

    eventually("the deployment scaled to 3", || {
        let d = cluster.kubectl_json(KUBECTL, &["get", "deployment", "web", "-n", "hpa"])?;
        if d["spec"]["replicas"] == 3 { Ok(()) } else { Err(format!("{}", d["spec"])) }
    });
    eventually("a SuccessfulRescale event", || {
        let events = cluster.kubectl_json(KUBECTL, &["get", "events", "-n", "hpa"])?;
        let found = events["items"].as_array().into_iter().flatten().any(|e| {
            e["reason"] == "SuccessfulRescale"
                && e["message"] == "New size: 3; reason: Current number of replicas below Spec.MinReplicas"
                && e["source"]["component"] == "horizontal-pod-autoscaler"
                && e["involvedObject"]["kind"] == "HorizontalPodAutoscaler"
        });
        if found { Ok(()) } else { Err(format!("{events}")) }
    });

    // The next sync asks for metrics, which no API serves.
    let hpa = eventually("ScalingActive False for want of metrics", || {
        let hpa = cluster.kubectl_json(KUBECTL, &["get", "hpa.v2.autoscaling", "web", "-n", "hpa"])?;
        match condition(&hpa, "ScalingActive") {
            Some((status, reason, _)) if status == "False" && reason == "FailedGetResourceMetric" => Ok(hpa),
            _ => Err(format!("{}", hpa["status"])),
        }
    });
    let (_, _, message) = condition(&hpa, "ScalingActive").expect("ScalingActive");
    assert_eq!(
        message,
        "the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: unable to fetch metrics from resource metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)"
    );
    assert_eq!(condition(&hpa, "AbleToScale").map(|c| (c.0, c.1)), Some(("True".into(), "SucceededGetScale".into())), "{hpa}");
    assert_eq!(hpa["status"]["currentReplicas"], 3, "{hpa}");
    assert_eq!(hpa["status"]["desiredReplicas"], 3, "{hpa}");
    assert!(hpa["status"]["lastScaleTime"].is_string(), "{hpa}");
    eventually("FailedGetResourceMetric and FailedComputeMetricsReplicas events", || {
        let events = cluster.kubectl_json(KUBECTL, &["get", "events", "-n", "hpa"])?;
        let items: Vec<&Value> = events["items"].as_array().into_iter().flatten().collect();
        let metric = items.iter().any(|e| e["reason"] == "FailedGetResourceMetric" && e["type"] == "Warning");
        let compute = items.iter().any(|e| {
            e["reason"] == "FailedComputeMetricsReplicas"
                && e["message"].as_str().is_some_and(|m| m.starts_with("invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: "))
        });
        if metric && compute { Ok(()) } else { Err(format!("{events}")) }
    });

    // Scaled to zero by hand: autoscaling is off.
    cluster.kubectl_ok(KUBECTL, &["scale", "deployment", "web", "-n", "hpa", "--replicas=0"]);
    eventually("ScalingDisabled", || {
        let hpa = cluster.kubectl_json(KUBECTL, &["get", "hpa.v2.autoscaling", "web", "-n", "hpa"])?;
        match condition(&hpa, "ScalingActive") {
            Some((status, reason, message)) if status == "False" && reason == "ScalingDisabled" => {
                assert_eq!(message, "scaling is disabled since the replica count of the target is zero");
                Ok(())
            }
            _ => Err(format!("{}", hpa["status"])),
        }
    });
    let d = cluster.kubectl_json(KUBECTL, &["get", "deployment", "web", "-n", "hpa"]).expect("deployment");
    assert_eq!(d["spec"]["replicas"], 0, "{d}");
}
