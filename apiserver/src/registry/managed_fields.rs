//! managedFields for Update operations: which manager last set which fields.
//!
//! Field sets are FieldsV1 (`{"f:spec":{"f:replicas":{}}}`). Lists are tracked as atomic
//! values here; schema-aware list keys arrive with server-side apply.

use serde_json::{Map, Value, json};

/// Metadata fields no manager owns (upstream strips them from field sets).
const SYSTEM_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "generateName",
];

/// The field set of the values in `new` that differ from `old` (all of `new` when `old` is None).
fn changed_fields(new: &Value, old: Option<&Value>, top: bool) -> Map<String, Value> {
    let mut set = Map::new();
    let Some(obj) = new.as_object() else { return set };
    for (k, v) in obj {
        if top && (k == "apiVersion" || k == "kind" || k == "status") {
            continue;
        }
        let old_v = old.and_then(|o| o.get(k));
        if old_v == Some(v) {
            continue;
        }
        let inner = if top && k == "metadata" {
            let mut m = changed_fields(v, old_v, false);
            for s in SYSTEM_META {
                m.remove(&format!("f:{s}"));
            }
            if m.is_empty() {
                continue;
            }
            Value::Object(m)
        } else if v.is_object() && !v.as_object().is_some_and(Map::is_empty) {
            let m = changed_fields(v, old_v.filter(|o| o.is_object()), false);
            if m.is_empty() && old_v.is_some() {
                continue;
            }
            Value::Object(m)
        } else {
            json!({})
        };
        set.insert(format!("f:{k}"), inner);
    }
    set
}

/// Merges field set `b` into `a`.
fn union(a: &mut Map<String, Value>, b: &Map<String, Value>) {
    for (k, v) in b {
        match (a.get_mut(k), v) {
            (Some(Value::Object(x)), Value::Object(y)) => union(x, y),
            (None, _) => {
                a.insert(k.clone(), v.clone());
            }
            _ => {}
        }
    }
}

/// Removes from `a` every leaf of `b`; drops emptied branches.
fn subtract(a: &mut Map<String, Value>, b: &Map<String, Value>) {
    for (k, v) in b {
        let remove = match (a.get_mut(k), v) {
            (Some(Value::Object(x)), Value::Object(y)) if !y.is_empty() => {
                subtract(x, y);
                x.is_empty()
            }
            (Some(_), _) => true,
            (None, _) => false,
        };
        if remove {
            a.remove(k);
        }
    }
}

/// Records an Update by `manager` that turned `old` into `new`.
pub fn record_update(new: &mut Value, old: Option<&Value>, manager: &str, api_version: &str, now: &str, subresource: Option<&str>) {
    let changed = match subresource {
        Some("status") => {
            let mut m = Map::new();
            if let Some(status) = new.get("status") {
                if old.and_then(|o| o.get("status")) != Some(status) {
                    let inner = changed_fields(status, old.and_then(|o| o.get("status")), false);
                    m.insert("f:status".into(), Value::Object(inner));
                }
            }
            m
        }
        _ => changed_fields(new, old, true),
    };
    let mut entries: Vec<Value> = old
        .and_then(|o| o["metadata"]["managedFields"].as_array().cloned())
        .or_else(|| new["metadata"]["managedFields"].as_array().cloned())
        .unwrap_or_default();
    if changed.is_empty() && !entries.is_empty() {
        set_managed(new, entries);
        return;
    }
    for e in entries.iter_mut() {
        if let Some(Value::Object(fields)) = e.get_mut("fieldsV1") {
            subtract(fields, &changed);
        }
    }
    let sub = subresource.unwrap_or("");
    let mine = entries.iter_mut().find(|e| {
        e["manager"] == manager && e["operation"] == "Update" && e["apiVersion"] == api_version
            && e.get("subresource").and_then(Value::as_str).unwrap_or("") == sub
    });
    match mine {
        Some(e) => {
            if let Some(Value::Object(fields)) = e.get_mut("fieldsV1") {
                union(fields, &changed);
            }
            e["time"] = json!(now);
        }
        None => {
            let mut e = json!({
                "manager": manager,
                "operation": "Update",
                "apiVersion": api_version,
                "time": now,
                "fieldsType": "FieldsV1",
                "fieldsV1": Value::Object(changed),
            });
            if !sub.is_empty() {
                e["subresource"] = json!(sub);
            }
            entries.push(e);
        }
    }
    entries.retain(|e| e["fieldsV1"].as_object().is_some_and(|m| !m.is_empty()));
    set_managed(new, entries);
}

fn set_managed(obj: &mut Value, entries: Vec<Value>) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if entries.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(entries));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_then_update_moves_ownership() {
        let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}});
        record_update(&mut obj, None, "kubectl-create", "v1", "t0", None);
        let mf = &obj["metadata"]["managedFields"][0];
        assert_eq!(mf["manager"], "kubectl-create");
        assert_eq!(mf["fieldsV1"], json!({"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:x": {}}}}));
        let old = obj.clone();
        obj["data"]["k"] = json!("w");
        record_update(&mut obj, Some(&old), "kubectl-edit", "v1", "t1", None);
        let entries = obj["metadata"]["managedFields"].as_array().expect("entries");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0]["fieldsV1"], json!({"f:metadata": {"f:labels": {"f:x": {}}}}));
        assert_eq!(entries[1]["fieldsV1"], json!({"f:data": {"f:k": {}}}));
    }
}
