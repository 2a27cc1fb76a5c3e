//! Conversion between a resource's served version and the version it is stored in, for the
//! resources served in two shapes over one storage: `events.k8s.io/v1` Events (stored as core
//! v1 Events) and `autoscaling/v1` HorizontalPodAutoscalers (stored as `autoscaling/v2`).
//! Other multi-version pairs have identical shapes and need no conversion.

use ironkube_machinery::resources::ResourceInfo;
use serde_json::{Map, Value, json};

/// A field rename between two shapes: (served name, stored name).
const EVENT_RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// Annotation upstream's v1 HPA uses to carry v2 metrics it cannot express.
const HPA_METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
const HPA_CURRENT_METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";

/// Whether objects of `info` differ in shape from what storage holds.
pub fn needs_conversion(info: &ResourceInfo) -> bool {
    matches!((info.group, info.version, info.kind), ("events.k8s.io", "v1", "Event") | ("autoscaling", "v1", "HorizontalPodAutoscaler"))
}

fn rename(obj: &mut Value, pairs: &[(&str, &str)], forward: bool) {
    let Some(map) = obj.as_object_mut() else { return };
    for (served, stored) in pairs {
        let (from, to) = if forward { (served, stored) } else { (stored, served) };
        if let Some(v) = map.remove(*from) {
            map.insert((*to).to_string(), v);
        }
    }
}

/// Served form → stored form.
pub fn to_storage(info: &ResourceInfo, mut obj: Value) -> Value {
    match (info.group, info.version, info.kind) {
        ("events.k8s.io", "v1", "Event") => {
            rename(&mut obj, EVENT_RENAMES, true);
            obj["apiVersion"] = json!("v1");
        }
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => {
            obj = hpa_v1_to_v2(obj);
            obj["apiVersion"] = json!("autoscaling/v2");
        }
        _ => {}
    }
    obj
}

/// Stored form → served form.
pub fn from_storage(info: &ResourceInfo, mut obj: Value) -> Value {
    match (info.group, info.version, info.kind) {
        ("events.k8s.io", "v1", "Event") => {
            rename(&mut obj, EVENT_RENAMES, false);
            obj["apiVersion"] = json!("events.k8s.io/v1");
        }
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => {
            obj = hpa_v2_to_v1(obj);
            obj["apiVersion"] = json!("autoscaling/v1");
        }
        _ => {}
    }
    obj
}

fn cpu_utilization_metric(target: i64) -> Value {
    json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}})
}

fn is_cpu_utilization(m: &Value) -> bool {
    m["type"] == "Resource" && m["resource"]["name"] == "cpu" && m["resource"]["target"]["type"] == "Utilization"
}

fn hpa_v1_to_v2(mut obj: Value) -> Value {
    let spec = obj.get_mut("spec").and_then(Value::as_object_mut);
    if let Some(spec) = spec {
        let mut metrics = Vec::new();
        if let Some(t) = spec.remove("targetCPUUtilizationPercentage").and_then(|v| v.as_i64()) {
            metrics.push(cpu_utilization_metric(t));
        }
        spec.insert("metrics".into(), Value::Array(metrics));
    }
    // Metrics a v1 client cannot see travel in an annotation, as upstream does.
    let extra = obj
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
        .and_then(|a| a.remove(HPA_METRICS_ANNOTATION))
        .and_then(|v| v.as_str().and_then(|s| serde_json::from_str::<Vec<Value>>(s).ok()));
    if let (Some(extra), Some(list)) = (extra, obj["spec"]["metrics"].as_array_mut()) {
        list.extend(extra);
    }
    if obj["spec"]["metrics"].as_array().is_some_and(Vec::is_empty)
        && let Some(spec) = obj["spec"].as_object_mut()
    {
        spec.remove("metrics");
    }
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut)
        && let Some(c) = status.remove("currentCPUUtilizationPercentage")
    {
        status.insert(
            "currentMetrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": c}}}]),
        );
    }
    obj
}

fn hpa_v2_to_v1(mut obj: Value) -> Value {
    let metrics = obj["spec"]["metrics"].as_array().cloned().unwrap_or_default();
    let (cpu, others): (Vec<Value>, Vec<Value>) = metrics.into_iter().partition(is_cpu_utilization);
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("metrics");
        spec.remove("behavior");
        if let Some(t) = cpu.first().and_then(|m| m["resource"]["target"]["averageUtilization"].as_i64()) {
            spec.insert("targetCPUUtilizationPercentage".into(), json!(t));
        }
    }
    if !others.is_empty() {
        if !obj["metadata"]["annotations"].is_object() {
            obj["metadata"]["annotations"] = Value::Object(Map::new());
        }
        obj["metadata"]["annotations"][HPA_METRICS_ANNOTATION] = json!(Value::Array(others).to_string());
    }
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
        let current = status.remove("currentMetrics");
        status.remove("conditions");
        let cpu_now = current
            .as_ref()
            .and_then(Value::as_array)
            .and_then(|l| l.iter().find(|m| m["type"] == "Resource" && m["resource"]["name"] == "cpu"))
            .and_then(|m| m["resource"]["current"]["averageUtilization"].as_i64());
        if let Some(c) = cpu_now {
            status.insert("currentCPUUtilizationPercentage".into(), json!(c));
        }
        let _ = HPA_CURRENT_METRICS_ANNOTATION;
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironkube_machinery::resources;

    #[test]
    fn events_round_trip() {
        let info = resources::lookup("events.k8s.io", "v1", "events").expect("events.k8s.io events");
        let served = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "Pod", "name": "p"}, "note": "hello", "reportingController": "me", "reason": "R"});
        let stored = to_storage(info, served.clone());
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(stored["involvedObject"]["name"], "p");
        assert_eq!(stored["message"], "hello");
        assert_eq!(from_storage(info, stored), served);
    }

    #[test]
    fn hpa_cpu_target_round_trips() {
        let info = resources::lookup("autoscaling", "v1", "horizontalpodautoscalers").expect("hpa v1");
        let served = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
            "spec": {"maxReplicas": 3, "targetCPUUtilizationPercentage": 50, "scaleTargetRef": {"kind": "Deployment", "name": "d"}}});
        let stored = to_storage(info, served.clone());
        assert_eq!(stored["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 50);
        assert_eq!(from_storage(info, stored), served);
    }
}
