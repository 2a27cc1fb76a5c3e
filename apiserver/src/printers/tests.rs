//! Golden tests against upstream v1.33: `testdata/columns.json` holds the column
//! definitions its printers register and `testdata/cells.json` the cells (and row
//! conditions) it prints for each object of `testdata/fixtures.json`, all recorded with
//! `testdata/record` (see its `main.go`).

use std::cmp::Ordering;

use ironkube_machinery::resources::{self, ResourceInfo};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::{Printer, printer};

fn load(text: &str) -> Value {
    serde_json::from_str(text).expect("golden JSON")
}

fn fixtures() -> (Timestamp, Vec<(String, Value)>) {
    let f = load(include_str!("testdata/fixtures.json"));
    let now = f["now"].as_str().expect("now").parse().expect("timestamp");
    let items = f["fixtures"]
        .as_array()
        .expect("fixtures")
        .iter()
        .map(|x| {
            (
                x["name"].as_str().expect("name").to_string(),
                x["object"].clone(),
            )
        })
        .collect();
    (now, items)
}

/// The resource serving an object of this apiVersion and kind.
fn resource_of(obj: &Value) -> &'static ResourceInfo {
    let api_version = obj["apiVersion"].as_str().expect("apiVersion");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let kind = obj["kind"].as_str().expect("kind");
    resources::all()
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
        .unwrap_or_else(|| panic!("no resource for {api_version} {kind}"))
}

/// Upstream's internal type for a resource: the key of `testdata/columns.json`.
fn upstream_type(info: &ResourceInfo) -> String {
    let package = match info.group {
        "" | "events.k8s.io" => "core",
        g => g.split('.').next().expect("group"),
    };
    format!("{package}.{}", info.kind)
}

/// Resources whose upstream storage prints only Name/Created At.
const DEFAULT_TABLE: &[(&str, &str)] = &[
    ("", "bindings"),
    ("", "limitranges"),
    ("rbac.authorization.k8s.io", "roles"),
    ("rbac.authorization.k8s.io", "clusterroles"),
    ("storage.k8s.io", "csistoragecapacities"),
    ("apiextensions.k8s.io", "customresourcedefinitions"),
    ("authentication.k8s.io", "selfsubjectreviews"),
    ("authentication.k8s.io", "tokenreviews"),
    ("authorization.k8s.io", "localsubjectaccessreviews"),
    ("authorization.k8s.io", "selfsubjectaccessreviews"),
    ("authorization.k8s.io", "selfsubjectrulesreviews"),
    ("authorization.k8s.io", "subjectaccessreviews"),
];

#[test]
fn every_resource_upstream_prints_has_a_printer() {
    for info in resources::all() {
        let expected = !DEFAULT_TABLE.contains(&(info.group, info.plural));
        assert_eq!(
            printer(info).is_some(),
            expected,
            "{}/{} {}",
            info.group,
            info.version,
            info.plural
        );
    }
}

#[test]
fn columns_match_upstream() {
    let upstream = load(include_str!("testdata/columns.json"));
    for info in resources::all() {
        let Some(p) = printer(info) else { continue };
        if info.group == "apiregistration.k8s.io" {
            continue; // kube-aggregator's own table, checked below
        }
        let key = upstream_type(info);
        let want = upstream
            .get(&key)
            .unwrap_or_else(|| panic!("no upstream columns for {key}"));
        let got = p.columns();
        let (got, want) = (
            got.as_array().expect("array"),
            want.as_array().expect("array"),
        );
        assert_eq!(got.len(), want.len(), "{key}: number of columns");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g, w, "{key}: column {}", w["name"]);
        }
    }
}

#[test]
fn cells_match_upstream() {
    let golden = load(include_str!("testdata/cells.json"));
    let (now, fixtures) = fixtures();
    let mut failures = Vec::new();
    for (name, obj) in &fixtures {
        let info = resource_of(obj);
        let p = printer(info).unwrap_or_else(|| panic!("{name}: no printer for {}", info.plural));
        let want = &golden[name];
        let got = Value::Array(p.cells_at(obj, now));
        if got != want["cells"] {
            failures.push(format!("{name}:\n   got {got}\n  want {}", want["cells"]));
        }
        let conditions = p.conditions(obj).unwrap_or(Value::Null);
        if conditions != want["conditions"] {
            failures.push(format!(
                "{name} conditions:\n   got {conditions}\n  want {}",
                want["conditions"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        golden.as_object().map(|m| m.len()),
        Some(fixtures.len()),
        "every fixture has a golden row"
    );
}

#[test]
fn rows_have_a_cell_per_column() {
    let (now, fixtures) = fixtures();
    for (name, obj) in &fixtures {
        let info = resource_of(obj);
        let p = printer(info).expect("printer");
        let columns = p.columns().as_array().map_or(0, Vec::len);
        // Upstream declares two columns for IP addresses but prints the age as a third cell.
        let extra = usize::from(info.plural == "ipaddresses");
        assert_eq!(p.cells_at(obj, now).len(), columns + extra, "{name}");
    }
}

/// A row for a kind this table was built for, by plural.
fn table_printer(group: &str, plural: &str) -> &'static dyn Printer {
    let info = resources::all()
        .iter()
        .find(|r| r.group == group && r.plural == plural)
        .expect("resource");
    printer(info).expect("printer")
}

#[test]
fn api_services_print_like_kube_aggregator() {
    let p = table_printer("apiregistration.k8s.io", "apiservices");
    let columns = p.columns();
    let names: Vec<&str> = columns
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["Name", "Service", "Available", "Age"]);
    let now: Timestamp = "2025-06-01T12:00:00Z".parse().expect("timestamp");
    let cases = [
        (
            json!({"metadata": {"name": "v1.", "creationTimestamp": "2025-05-31T10:00:00Z"}, "spec": {"version": "v1"},
                   "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Local"}]}}),
            json!(["v1.", "Local", "True", "26h"]),
        ),
        (
            json!({"metadata": {"name": "v1beta1.metrics.k8s.io", "creationTimestamp": "2025-06-01T11:56:58Z"},
                   "spec": {"service": {"namespace": "kube-system", "name": "metrics-server"}},
                   "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]}}),
            json!([
                "v1beta1.metrics.k8s.io",
                "kube-system/metrics-server",
                "False (MissingEndpoints)",
                "3m2s"
            ]),
        ),
        (
            json!({"metadata": {"name": "v1.x.io"}, "spec": {"service": {"namespace": "ns", "name": "svc"}},
                   "status": {"conditions": [{"type": "Available", "status": "Unknown"}]}}),
            json!(["v1.x.io", "ns/svc", "Unknown", "<unknown>"]),
        ),
        (
            json!({"metadata": {"name": "v2.y.io"}}),
            json!(["v2.y.io", "Local", "Unknown", "<unknown>"]),
        ),
    ];
    for (obj, want) in cases {
        assert_eq!(Value::Array(p.cells_at(&obj, now)), want);
    }
}

#[test]
fn flow_schemas_list_by_precedence_then_name() {
    let p = table_printer("flowcontrol.apiserver.k8s.io", "flowschemas");
    let fs = |name: &str, precedence: Option<i64>| json!({"metadata": {"name": name}, "spec": {"matchingPrecedence": precedence}});
    let mut items = [
        fs("b", Some(500)),
        fs("default", None),
        fs("a", Some(500)),
        fs("exempt", Some(1)),
    ];
    items.sort_by(|a, b| p.list_order(a, b));
    let names: Vec<&str> = items
        .iter()
        .map(|i| i["metadata"]["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["exempt", "a", "b", "default"]);
    let pods = table_printer("", "pods");
    assert_eq!(pods.list_order(&items[0], &items[1]), Ordering::Equal);
}

#[test]
fn cells_measure_age_from_the_clock() {
    let p = table_printer("", "configmaps");
    let created = Timestamp::now() - jiff::SignedDuration::from_secs(3 * 3600 + 60);
    let obj = json!({"metadata": {"name": "cm", "creationTimestamp": created.to_string()}, "data": {"a": "b"}});
    assert_eq!(p.cells(&obj), vec![json!("cm"), json!(1), json!("3h1m")]);
}

#[test]
fn resources_without_printers_keep_the_default_table() {
    for (group, plural) in [
        ("", "limitranges"),
        ("rbac.authorization.k8s.io", "roles"),
        ("storage.k8s.io", "csistoragecapacities"),
    ] {
        let info = resources::all()
            .iter()
            .find(|r| r.group == group && r.plural == plural)
            .expect("resource");
        assert!(printer(info).is_none(), "{plural}");
    }
}
