//! Horizontal pod autoscalers, read in the `autoscaling/v2` shape; `autoscaling/v1` objects
//! are converted as upstream converts them to the internal version (the CPU target, the
//! metric annotations, the 80% CPU default).

use jiff::Timestamp;
use serde_json::{Value, json};

use super::docs::*;
use super::view::View;
use super::{Column, Table, age, format, name};

pub static HORIZONTAL_POD_AUTOSCALER: Table = Table::new(
    &[
        Column::NAME,
        Column::string("Reference", HORIZONTAL_POD_AUTOSCALER_SPEC_SCALE_TARGET_REF),
        Column::string("Targets", HORIZONTAL_POD_AUTOSCALER_SPEC_METRICS),
        Column::string("MinPods", HORIZONTAL_POD_AUTOSCALER_SPEC_MIN_REPLICAS),
        Column::string("MaxPods", HORIZONTAL_POD_AUTOSCALER_SPEC_MAX_REPLICAS),
        Column::string(
            "Replicas",
            HORIZONTAL_POD_AUTOSCALER_STATUS_CURRENT_REPLICAS,
        ),
        Column::AGE,
    ],
    hpa_cells,
);

const METRIC_SPECS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
const METRIC_STATUSES_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";

fn default_cpu_metric(utilization: i64) -> Value {
    json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": utilization}}})
}

fn is_v1(hpa: View<'_>) -> bool {
    match hpa.at("apiVersion").opt_str() {
        Some(v) => v == "autoscaling/v1",
        None => {
            let spec = hpa.at("spec");
            spec.at("targetCPUUtilizationPercentage").is_set() && !spec.at("metrics").is_set()
        }
    }
}

/// The metric specs and statuses in the v2 shape.
fn metrics(hpa: View<'_>) -> (Vec<Value>, Vec<Value>) {
    let spec = hpa.at("spec");
    let status = hpa.at("status");
    if !is_v1(hpa) {
        let mut specs: Vec<Value> = spec
            .at("metrics")
            .items()
            .filter_map(View::value)
            .cloned()
            .collect();
        if specs.is_empty() {
            specs.push(default_cpu_metric(80));
        }
        let statuses = status
            .at("currentMetrics")
            .items()
            .filter_map(View::value)
            .cloned()
            .collect();
        return (specs, statuses);
    }
    let annotations = hpa.path(&["metadata", "annotations"]);
    let decode = |key: &str| -> Option<Vec<Value>> {
        serde_json::from_str::<Vec<Value>>(annotations.label(key)?).ok()
    };
    let mut specs: Vec<Value> = decode(METRIC_SPECS_ANNOTATION)
        .unwrap_or_default()
        .iter()
        .map(|m| v1_metric_spec(View::of(m)))
        .collect();
    if let Some(cpu) = spec.at("targetCPUUtilizationPercentage").opt_int() {
        specs.push(default_cpu_metric(cpu));
    }
    if specs.is_empty() {
        specs.push(default_cpu_metric(80));
    }
    let statuses = match decode(METRIC_STATUSES_ANNOTATION) {
        Some(list) => list.iter().map(|m| v1_metric_status(View::of(m))).collect(),
        None => match status.at("currentCPUUtilizationPercentage").opt_int() {
            Some(cpu) => vec![
                json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": cpu}}}),
            ],
            None => vec![],
        },
    };
    (specs, statuses)
}

/// Drops null members, as a Go struct would leave nil pointers out.
fn compact(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, compact(v)))
                .collect(),
        ),
        other => other,
    }
}

/// A non-pointer `Quantity` of the v1 types: missing reads as zero.
fn quantity_or_zero(v: View<'_>) -> Value {
    v.value().cloned().unwrap_or_else(|| Value::from("0"))
}

/// A `autoscaling/v1` (annotation) metric spec in the v2 shape.
fn v1_metric_spec(m: View<'_>) -> Value {
    let ty = m.at("type").str();
    let val = |v: View<'_>| v.value().cloned().unwrap_or(Value::Null);
    let source = |key: &str| m.at(key);
    let target = |utilization: View<'_>, average: View<'_>, value: View<'_>| {
        let kind = if utilization.is_set() {
            "Utilization"
        } else if average.is_set() {
            "AverageValue"
        } else {
            "Value"
        };
        json!({"type": kind, "averageUtilization": val(utilization), "averageValue": val(average), "value": val(value)})
    };
    let none = View::of(&Value::Null);
    let v2 = match ty {
        "Resource" | "ContainerResource" => {
            let key = if ty == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let s = source(key);
            json!({"type": ty, key: {
                "name": val(s.at("name")),
                "target": target(s.at("targetAverageUtilization"), s.at("targetAverageValue"), none),
            }})
        }
        "Pods" => {
            let s = source("pods");
            json!({"type": ty, "pods": {"target": {"type": "AverageValue", "averageValue": quantity_or_zero(s.at("targetAverageValue"))}}})
        }
        "Object" => {
            let s = source("object");
            let value = quantity_or_zero(s.at("targetValue"));
            json!({"type": ty, "object": {"target": target(none, s.at("averageValue"), View::of(&value))}})
        }
        "External" => {
            let s = source("external");
            json!({"type": ty, "external": {"target": target(none, s.at("targetAverageValue"), s.at("targetValue"))}})
        }
        _ => json!({"type": ty}),
    };
    compact(v2)
}

/// A `autoscaling/v1` (annotation) metric status in the v2 shape.
fn v1_metric_status(m: View<'_>) -> Value {
    let ty = m.at("type").str();
    let val = |v: View<'_>| v.value().cloned().unwrap_or(Value::Null);
    let v2 = match ty {
        "Resource" | "ContainerResource" => {
            let key = if ty == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let s = m.at(key);
            json!({"type": ty, key: {"name": val(s.at("name")), "current": {
                "averageUtilization": val(s.at("currentAverageUtilization")),
                "averageValue": quantity_or_zero(s.at("currentAverageValue")),
            }}})
        }
        "Pods" => {
            let s = m.at("pods");
            json!({"type": ty, "pods": {"current": {"averageValue": quantity_or_zero(s.at("currentAverageValue"))}}})
        }
        "Object" => {
            let s = m.at("object");
            json!({"type": ty, "object": {"current": {"value": quantity_or_zero(s.at("currentValue")), "averageValue": val(s.at("averageValue"))}}})
        }
        "External" => {
            let s = m.at("external");
            json!({"type": ty, "external": {"current": {"value": quantity_or_zero(s.at("currentValue")), "averageValue": val(s.at("currentAverageValue"))}}})
        }
        _ => json!({"type": ty}),
    };
    compact(v2)
}

/// Upstream's `formatHPAMetrics`: `current/target` per metric, at most two, then
/// `+ N more...`.
fn format_metrics(specs: &[Value], statuses: &[Value]) -> String {
    const MAX: usize = 2;
    if specs.is_empty() {
        return "<none>".into();
    }
    let mut list: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let spec = View::of(spec);
        let status = statuses.get(i).map(View::of);
        let ty = spec.at("type").str();
        let source_key = match ty {
            "External" => "external",
            "Pods" => "pods",
            "Object" => "object",
            "Resource" => "resource",
            "ContainerResource" => "containerResource",
            _ => {
                list.push("<unknown type>".into());
                continue;
            }
        };
        let target = spec.path(&[source_key, "target"]);
        // The status of the same index, if it carries this metric type.
        let current = status
            .map(|s| s.at(source_key))
            .filter(|s| s.is_set())
            .map(|s| s.at("current"));
        let entry = match ty {
            "Pods" => {
                let current = current.map_or("<unknown>".into(), |c| {
                    format::quantity_ptr(c.at("averageValue"))
                });
                format!(
                    "{current}/{}",
                    format::quantity_ptr(target.at("averageValue"))
                )
            }
            "External" | "Object" => {
                if target.at("averageValue").is_set() {
                    let current = current
                        .filter(|c| c.at("averageValue").is_set())
                        .map_or("<unknown>".into(), |c| {
                            format::quantity_ptr(c.at("averageValue"))
                        });
                    format!(
                        "{current}/{} (avg)",
                        format::quantity_ptr(target.at("averageValue"))
                    )
                } else {
                    let current =
                        current.map_or("<unknown>".into(), |c| format::quantity_ptr(c.at("value")));
                    format!("{current}/{}", format::quantity_ptr(target.at("value")))
                }
            }
            _ => {
                let resource = spec.path(&[source_key, "name"]).str();
                if target.at("averageValue").is_set() {
                    let current = current.map_or("<unknown>".into(), |c| {
                        format::quantity_ptr(c.at("averageValue"))
                    });
                    format!(
                        "{resource}: {current}/{}",
                        format::quantity_ptr(target.at("averageValue"))
                    )
                } else {
                    let current = current
                        .and_then(|c| c.at("averageUtilization").opt_int())
                        .map_or("<unknown>".into(), |u| format!("{u}%"));
                    let target = target
                        .at("averageUtilization")
                        .opt_int()
                        .map_or("<auto>".into(), |u| format!("{u}%"));
                    format!("{resource}: {current}/{target}")
                }
            }
        };
        list.push(entry);
    }
    let count = list.len();
    if count > MAX {
        list.truncate(MAX);
        format!("{} + {} more...", list.join(", "), count - MAX)
    } else {
        list.join(", ")
    }
}

fn hpa_cells(hpa: View<'_>, now: Timestamp) -> Vec<Value> {
    let spec = hpa.at("spec");
    let target = spec.at("scaleTargetRef");
    let (specs, statuses) = metrics(hpa);
    vec![
        name(hpa),
        format!("{}/{}", target.at("kind").str(), target.at("name").str()).into(),
        format_metrics(&specs, &statuses).into(),
        spec.at("minReplicas")
            .opt_int()
            .unwrap_or(1)
            .to_string()
            .into(),
        spec.at("maxReplicas").int().into(),
        hpa.path(&["status", "currentReplicas"]).int().into(),
        age(hpa, now),
    ]
}
