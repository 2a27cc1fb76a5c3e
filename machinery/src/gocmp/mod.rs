//! An emulation of `cmp.Diff` from github.com/google/go-cmp (v0.7, no options), the
//! report upstream's API server appends to some validation errors — above all the
//! forbidden pod update ("pod updates may not change fields other than ..."), which
//! prints the diff of the old and the new internal `core.PodSpec`.
//!
//! Values are decoded from their v1 JSON form into the shapes of upstream's internal Go
//! types (`generated.rs`, written by `hack/gen-internal-types`), compared as go-cmp
//! compares them (struct fields in order, slices by go-cmp's edit script, maps by sorted
//! key, `Equal` methods), and reported with go-cmp's layout: context records, "... // N
//! identical fields", verbosity budgets, one-line packing, column alignment.
//!
//! Left out, with what upstream would print instead:
//! - go-cmp writes its indentation with regular or non-breaking spaces at random per
//!   process; this always writes regular spaces (go-cmp's deterministic mode), and its
//!   edit script always starts with the forward search (upstream picks at random too).
//! - The specialised diff of long strings and of slices of numbers (line- or
//!   character-wise, for strings of 32 bytes or more on both sides) is not done: such
//!   values print as a removed and an inserted value.
//! - `String` methods are modelled for resource names and quantities; the generated
//!   protobuf `String` methods of label selectors and object metadata are not (their
//!   values print as structs).

mod compare;
mod generated;
mod report;
mod text;
mod types;
mod value;

use serde_json::Value;

pub use compare::{difference, Edit};
pub use value::GoValue;

/// `cmp.Diff(x, y)` for two values of the generated type `ty`: "" when they are equal.
pub fn diff(ty: usize, x: &GoValue, y: &GoValue) -> String {
    let node = compare::compare(ty, Some(x), Some(y));
    if node.num_diff == 0 {
        return String::new();
    }
    report::Opts::default()
        .format_diff(&node, None)
        .map(|t| t.render())
        .unwrap_or_default()
}

/// The internal `core.PodSpec` of a v1 pod spec as upstream's decoder and conversion
/// leave it: the host namespace flags move into the security context (always present),
/// `serviceAccount` stands in for an empty `serviceAccountName`, and empty lists and maps
/// are nil (protobuf storage and `omitempty` JSON do not keep them).
pub fn internal_pod_spec(v1: &Value) -> GoValue {
    let mut spec = v1.clone();
    if let Some(m) = spec.as_object_mut() {
        let mut sc = m
            .remove("securityContext")
            .filter(Value::is_object)
            .unwrap_or_else(|| Value::Object(Default::default()));
        for f in ["hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace", "hostUsers"] {
            if let (Some(v), Some(o)) = (m.remove(f), sc.as_object_mut()) {
                o.insert(f.into(), v);
            }
        }
        m.insert("securityContext".into(), sc);
        let named = m
            .get("serviceAccountName")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        if !named && let Some(sa) = m.get("serviceAccount").cloned() {
            m.insert("serviceAccountName".into(), sa);
        }
    }
    value::from_json(generated::POD_SPEC, Some(&spec), true)
}

/// `cmp.Diff(oldSpec, newSpec)` of two v1 pod specs taken as internal `core.PodSpec`s.
pub fn pod_spec_diff(old: &Value, new: &Value) -> String {
    diff(
        generated::POD_SPEC,
        &internal_pod_spec(old),
        &internal_pod_spec(new),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> Value {
        json!({
            "containers": [{
                "name": "c", "image": "busybox:1.35", "command": ["sleep", "3600"],
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "64Mi"}},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"
            }],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst", "serviceAccountName": "default",
            "serviceAccount": "default", "securityContext": {},
            "schedulerName": "default-scheduler", "priority": 0,
            "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority"
        })
    }

    #[test]
    fn equal_specs_have_no_diff() {
        assert_eq!(pod_spec_diff(&spec(), &spec()), "");
    }

    /// Cases whose expected diffs upstream's go-cmp wrote (hack/gen-internal-types/oracle).
    #[test]
    fn upstream_goldens() {
        let cases: Vec<Value> =
            serde_json::from_str(include_str!("testdata/cases.json")).expect("cases.json");
        assert!(cases.len() >= 10);
        let mut failed = Vec::new();
        for c in &cases {
            let got = pod_spec_diff(&c["old"], &c["new"]);
            let want = c["want"].as_str().unwrap_or_default();
            assert!(!want.is_empty(), "{}: no golden diff", c["name"]);
            if got != want {
                failed.push(format!("{}:\n--- want\n{want}--- got\n{got}", c["name"]));
            }
        }
        assert!(failed.is_empty(), "{}", failed.join("\n"));
    }

    #[test]
    fn quantities_compare_by_value() {
        let mut new = spec();
        new["containers"][0]["resources"]["limits"]["memory"] = json!("67108864");
        assert_eq!(pod_spec_diff(&spec(), &new), "");
    }
}
