//! Strategic merge patch, first cut: lists of objects merge by their conventional merge key
//! (taken from the field name, as upstream's `patchMergeKey` tags say for the built-in
//! types), other lists are replaced; `$patch`, `$retainKeys` and `$deleteFromPrimitiveList`
//! directives are honoured. The schema-driven engine replaces the field-name table.

use serde_json::{Map, Value};

/// The merge key of a list field, by field name (upstream's `patchMergeKey` struct tags).
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers" | "initContainers" | "ephemeralContainers" | "env" | "volumes" | "imagePullSecrets"
        | "resourceClaims" | "readinessGates" | "schedulingGates" => match field {
            "readinessGates" => "conditionType",
            _ => "name",
        },
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ports" => "containerPort",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        "taints" => "key",
        _ => return None,
    })
}

/// Primitive lists whose strategy is `merge` (union), e.g. finalizers.
fn merges_primitives(field: &str) -> bool {
    matches!(field, "finalizers")
}

/// Applies `patch` to `doc` in place.
pub fn apply(doc: &mut Value, patch: &Value) -> Result<(), String> {
    merge_value(doc, patch, "")
}

fn merge_value(doc: &mut Value, patch: &Value, field: &str) -> Result<(), String> {
    match (doc.as_object_mut(), patch.as_object()) {
        (Some(target), Some(p)) => merge_map(target, p, field),
        _ => {
            *doc = strip_directives(patch);
            Ok(())
        }
    }
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$') && !k.starts_with("$setElementOrder/") && !k.starts_with("$deleteFromPrimitiveList/"))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

fn merge_map(target: &mut Map<String, Value>, patch: &Map<String, Value>, _field: &str) -> Result<(), String> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *target = strip_directives(&Value::Object(patch.clone())).as_object().cloned().unwrap_or_default();
            return Ok(());
        }
        Some("delete") => {
            target.clear();
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => return Err(format!("Unknown patch type: {other}")),
    }
    if let Some(retain) = patch.get("$retainKeys") {
        let keep: Vec<&str> = retain
            .as_array()
            .ok_or("invalid $retainKeys: must be a list of strings")?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        target.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (key, value) in patch {
        if key == "$patch" || key == "$retainKeys" || key.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(list) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(existing)), Some(remove)) = (target.get_mut(list), value.as_array()) {
                existing.retain(|v| !remove.contains(v));
            }
            continue;
        }
        if value.is_null() {
            target.remove(key);
            continue;
        }
        match (target.get_mut(key), value) {
            (Some(existing @ Value::Object(_)), Value::Object(_)) => merge_value(existing, value, key)?,
            (Some(Value::Array(existing)), Value::Array(items)) => merge_list(existing, items, key)?,
            _ => {
                let v = match value {
                    Value::Array(items) => Value::Array(
                        items.iter().filter(|i| i.get("$patch").is_none()).map(strip_directives).collect(),
                    ),
                    other => strip_directives(other),
                };
                target.insert(key.clone(), v);
            }
        }
    }
    Ok(())
}

fn merge_list(existing: &mut Vec<Value>, items: &[Value], field: &str) -> Result<(), String> {
    if items.iter().any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace")) {
        *existing = items.iter().filter(|i| i.get("$patch").is_none()).map(strip_directives).collect();
        return Ok(());
    }
    let all_objects = items.iter().all(Value::is_object) && existing.iter().all(Value::is_object);
    match merge_key(field) {
        Some(key) if all_objects => {
            for item in items {
                let id = item.get(key);
                let pos = id.and_then(|id| existing.iter().position(|e| e.get(key) == Some(id)));
                let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                match (pos, delete) {
                    (Some(i), true) => {
                        existing.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => merge_value(&mut existing[i], item, field)?,
                    (None, false) => existing.push(strip_directives(item)),
                }
            }
        }
        _ if merges_primitives(field) => {
            for item in items {
                if !existing.contains(item) {
                    existing.push(item.clone());
                }
            }
        }
        _ => *existing = items.iter().map(strip_directives).collect(),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_merge_by_name() {
        let mut doc = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        apply(&mut doc, &json!({"spec": {"containers": [{"name": "b", "image": "z"}]}})).expect("applies");
        assert_eq!(doc["spec"]["containers"][1]["image"], "z");
        assert_eq!(doc["spec"]["containers"][0]["image"], "x");
        apply(&mut doc, &json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}})).expect("applies");
        assert_eq!(doc["spec"]["containers"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn nulls_delete_and_lists_replace() {
        let mut doc = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "args": ["x"]});
        apply(&mut doc, &json!({"metadata": {"labels": {"a": null}}, "args": ["y", "z"]})).expect("applies");
        assert_eq!(doc, json!({"metadata": {"labels": {"b": "2"}}, "args": ["y", "z"]}));
    }

    #[test]
    fn directives() {
        let mut doc = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        apply(&mut doc, &json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}})).expect("applies");
        assert_eq!(doc, json!({"spec": {"strategy": {"type": "Recreate"}}}));
        let mut doc = json!({"metadata": {"finalizers": ["a", "b"]}});
        apply(&mut doc, &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})).expect("applies");
        assert_eq!(doc["metadata"]["finalizers"], json!(["b"]));
    }
}
