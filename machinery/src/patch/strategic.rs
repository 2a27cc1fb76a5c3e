//! Strategic merge patch: lists of objects merge by the merge key the schema gives their
//! field (`x-kubernetes-patch-merge-key`), lists of scalars with the `merge` strategy are
//! unions, other lists are replaced; the `$patch` (replace, delete, merge), `$retainKeys`,
//! `$deleteFromPrimitiveList` and `$setElementOrder` directives are honoured.
//!
//! The walk follows the schema table ([`crate::schema`]) from the object's root type; where
//! no type is known (a field outside the schema) the conventional merge keys of the
//! built-in types stand in, by field name.

use serde_json::{Map, Value};

use crate::schema::{self, PatchStrategy, Shape};

/// The merge key of a list field outside the schema, by field name.
fn merge_key_by_name(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers" | "initContainers" | "ephemeralContainers" | "env" | "volumes" | "imagePullSecrets"
        | "resourceClaims" | "schedulingGates" => "name",
        "readinessGates" => "conditionType",
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

/// How one field of a typed object patches.
#[derive(Debug, Clone, Copy, Default)]
struct FieldPatch {
    /// The list merges (by key, or as a set of scalars).
    merges: bool,
    merge_key: Option<&'static str>,
    /// The struct type of the field's value, items or map values.
    elem: Option<&'static str>,
    /// Whether the field is a map with arbitrary keys (then `elem` is its values' type).
    is_map: bool,
}

fn field_patch(parent: Option<&'static str>, field: &str) -> FieldPatch {
    match parent.and_then(schema::type_def) {
        Some(def) if !def.opaque => match def.field(field) {
            Some(f) => FieldPatch {
                merges: f.patch_strategy.is_some_and(PatchStrategy::merges),
                merge_key: f.merge_key,
                elem: f.elem.filter(|_| !matches!(f.elem_shape, Some(Shape::Scalar))),
                is_map: f.shape == Shape::Map,
            },
            None => FieldPatch::default(),
        },
        // Outside the schema: the conventions of the built-in types.
        _ => FieldPatch {
            merges: merge_key_by_name(field).is_some() || field == "finalizers",
            merge_key: merge_key_by_name(field),
            elem: None,
            is_map: false,
        },
    }
}

/// Applies `patch` to `doc` in place, with no type known for the root.
pub fn apply(doc: &mut Value, patch: &Value) -> Result<(), String> {
    apply_typed(doc, patch, None)
}

/// Applies `patch` to `doc`, an object of the schema type `root`
/// (`io.k8s.api.apps.v1.Deployment`; see [`schema::kind_type`]).
pub fn apply_typed(doc: &mut Value, patch: &Value, root: Option<&'static str>) -> Result<(), String> {
    match (doc.as_object_mut(), patch.as_object()) {
        (Some(target), Some(p)) => merge_map(target, p, root),
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
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().filter(|i| i.get("$patch").is_none()).map(strip_directives).collect()),
        other => other.clone(),
    }
}

fn merge_map(target: &mut Map<String, Value>, patch: &Map<String, Value>, ty: Option<&'static str>) -> Result<(), String> {
    match patch.get("$patch") {
        Some(Value::String(d)) if d == "replace" => {
            *target = strip_directives(&Value::Object(patch.clone())).as_object().cloned().unwrap_or_default();
            return Ok(());
        }
        Some(Value::String(d)) if d == "delete" => {
            target.clear();
            return Ok(());
        }
        Some(Value::String(d)) if d == "merge" => {}
        None => {}
        Some(other) => return Err(format!("Unknown patch type: {}", other.as_str().map_or_else(|| other.to_string(), str::to_string))),
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
        let fp = field_patch(ty, key);
        let original_ids = list_ids(target.get(key), fp.merge_key);
        match (target.get_mut(key), value) {
            (Some(existing @ Value::Object(_)), Value::Object(p)) => {
                if p.get("$patch").and_then(Value::as_str) == Some("delete") {
                    target.remove(key);
                    continue;
                }
                if fp.is_map {
                    // A map of arbitrary keys: its values are of the element type.
                    if let Some(m) = existing.as_object_mut() {
                        merge_values_of_map(m, p, fp.elem)?;
                    }
                } else {
                    apply_typed(existing, value, fp.elem)?;
                }
            }
            (Some(Value::Array(existing)), Value::Array(items)) => merge_list(existing, items, &fp)?,
            (_, Value::Object(p)) if p.get("$patch").and_then(Value::as_str) == Some("delete") => {
                target.remove(key);
            }
            _ => {
                target.insert(key.clone(), strip_directives(value));
            }
        }
        if let Some(order) = patch.get(&format!("$setElementOrder/{key}")).and_then(Value::as_array)
            && let Some(Value::Array(list)) = target.get_mut(key)
        {
            let order: Vec<Value> = order.iter().map(|o| element_id(o, fp.merge_key)).collect();
            normalize_order(list, &order, &original_ids, fp.merge_key);
        }
    }
    // An element order for a list the patch did not otherwise touch.
    for (key, order) in patch.iter().filter_map(|(k, v)| Some((k.strip_prefix("$setElementOrder/")?, v.as_array()?))) {
        if patch.contains_key(key) {
            continue;
        }
        let fp = field_patch(ty, key);
        let original_ids = list_ids(target.get(key), fp.merge_key);
        if let Some(Value::Array(list)) = target.get_mut(key) {
            let order: Vec<Value> = order.iter().map(|o| element_id(o, fp.merge_key)).collect();
            normalize_order(list, &order, &original_ids, fp.merge_key);
        }
    }
    Ok(())
}

/// What identifies a list element: its merge key's value, or the element itself.
fn element_id(v: &Value, key: Option<&str>) -> Value {
    match key {
        Some(k) => v.get(k).cloned().unwrap_or(Value::Null),
        None => v.clone(),
    }
}

fn list_ids(list: Option<&Value>, key: Option<&str>) -> Vec<Value> {
    list.and_then(Value::as_array)
        .map(|l| l.iter().map(|v| element_id(v, key)).collect())
        .unwrap_or_default()
}

/// Upstream's normalizeElementOrder: the elements `order` names (the patch's own, or a
/// `$setElementOrder`) sorted as it names them, the others kept as the server had them,
/// the two runs merged by the server's order (`original`): an element the server did not
/// have comes as soon as its turn in `order` arrives.
fn normalize_order(list: &mut Vec<Value>, order: &[Value], original: &[Value], key: Option<&str>) {
    let pos = |ids: &[Value], v: &Value| ids.iter().position(|i| *i == element_id(v, key));
    let (mut named, server_only): (Vec<Value>, Vec<Value>) =
        list.drain(..).partition(|v| pos(order, v).is_some());
    named.sort_by_key(|v| pos(order, v));
    let (mut left, mut right) = (server_only.into_iter().peekable(), named.into_iter().peekable());
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => match (pos(original, l), pos(original, r)) {
                (Some(li), Some(ri)) => li < ri,
                _ => false,
            },
        };
        let next = if take_left { left.next() } else { right.next() };
        list.extend(next);
    }
}

fn merge_values_of_map(target: &mut Map<String, Value>, patch: &Map<String, Value>, elem: Option<&'static str>) -> Result<(), String> {
    for (k, v) in patch {
        if k.starts_with('$') {
            continue;
        }
        if v.is_null() {
            target.remove(k);
            continue;
        }
        match target.get_mut(k) {
            Some(existing @ Value::Object(_)) if v.is_object() && elem.is_some() => apply_typed(existing, v, elem)?,
            _ => {
                target.insert(k.clone(), strip_directives(v));
            }
        }
    }
    Ok(())
}

fn merge_list(existing: &mut Vec<Value>, items: &[Value], fp: &FieldPatch) -> Result<(), String> {
    if items.iter().any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace")) {
        *existing = items.iter().filter(|i| i.get("$patch").is_none()).map(strip_directives).collect();
        return Ok(());
    }
    if !fp.merges {
        *existing = items.iter().map(strip_directives).collect();
        return Ok(());
    }
    let original = list_ids(Some(&Value::Array(existing.clone())), fp.merge_key);
    let order: Vec<Value> = items
        .iter()
        .filter(|i| i.get("$patch").is_none())
        .map(|i| element_id(i, fp.merge_key))
        .collect();
    match fp.merge_key {
        Some(key) => {
            for item in items {
                if !item.is_object() {
                    return Err(format!("merging an object in json but data type is not struct, instead is: {}", json_kind(item)));
                }
                let id = item.get(key);
                let Some(id) = id else {
                    return Err(format!("map: {item} does not contain declared merge key: {key}"));
                };
                let pos = existing.iter().position(|e| e.get(key) == Some(id));
                let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                match (pos, delete) {
                    (Some(i), true) => {
                        existing.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => apply_typed(&mut existing[i], item, fp.elem)?,
                    (None, false) => existing.push(strip_directives(item)),
                }
            }
        }
        None => {
            for item in items {
                if !existing.contains(item) {
                    existing.push(item.clone());
                }
            }
        }
    }
    normalize_order(existing, &order, &original, fp.merge_key);
    Ok(())
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Number(_) => "float64",
        Value::Bool(_) => "bool",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
        Value::Null => "nil",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merged_lists_take_upstreams_order() {
        // New elements come first, at their turn in the patch; the server's keep its order.
        let mut doc = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}});
        apply(&mut doc, &json!({"spec": {"containers": [{"name": "d"}, {"name": "b", "image": "z"}]}})).expect("applies");
        let names: Vec<&str> = doc["spec"]["containers"].as_array().into_iter().flatten().filter_map(|c| c["name"].as_str()).collect();
        assert_eq!(names, ["d", "a", "b", "c"]);
        let mut doc = json!({"metadata": {"finalizers": ["x", "y"]}});
        apply(&mut doc, &json!({"metadata": {"finalizers": ["z", "y"]}})).expect("applies");
        assert_eq!(doc["metadata"]["finalizers"], json!(["z", "x", "y"]));
    }

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

    #[test]
    fn merge_keys_come_from_the_schema() {
        // Service ports merge by port, container ports by containerPort.
        let svc = schema::kind_type("", "v1", "Service");
        let mut doc = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}});
        apply_typed(&mut doc, &json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}), svc).expect("applies");
        assert_eq!(doc["spec"]["ports"], json!([{"port": 80, "targetPort": 9090}, {"port": 443}]));
        let mut doc = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let pod = schema::kind_type("", "v1", "Pod");
        apply_typed(&mut doc, &json!({"$setElementOrder/spec": [], "spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}], "containers": [{"name": "a", "image": "x"}]}}), pod).expect("applies");
        assert_eq!(doc["spec"]["containers"], json!([{"name": "b"}, {"name": "a", "image": "x"}]));
    }
}
