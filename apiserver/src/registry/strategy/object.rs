//! Reading and defaulting objects in their JSON form: typed decoding of a part of an object
//! (for validation), and setting defaults the way upstream's defaulting does (only where a
//! field is unset: absent, `null`, `""` or `0`).

use ironkube_machinery::field::{ErrorKind, FieldError};
use ironkube_machinery::validation::quantity::Quantity;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// Decodes `v` (absent and `null` decode as the type's default).
pub fn decode<T: DeserializeOwned + Default>(
    v: Option<&Value>,
    path: &str,
) -> Result<T, FieldError> {
    match v {
        None | Some(Value::Null) => Ok(T::default()),
        Some(v) => T::deserialize(v).map_err(|e| FieldError {
            kind: ErrorKind::TypeInvalid,
            field: path.to_string(),
            value: None,
            detail: e.to_string(),
        }),
    }
}

/// A string field of an object (`""` when absent or not a string).
pub fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The object's `metadata`.
pub fn meta(obj: &Value) -> &Value {
    obj.get("metadata").unwrap_or(&Value::Null)
}

/// Sets `key` on `v` when `v` is an object (or `null`, which becomes one); leaves values of
/// any other type alone rather than panicking on malformed input.
pub fn set(v: &mut Value, key: &str, value: Value) {
    if v.is_null() {
        *v = Value::Object(Map::new());
    }
    if let Some(m) = v.as_object_mut() {
        m.insert(key.to_string(), value);
    }
}

/// Whether a JSON value counts as unset for defaulting.
pub fn is_unset(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

/// Sets `key` to `value` when it is unset.
pub fn default_field(map: &mut Map<String, Value>, key: &str, value: Value) {
    if is_unset(map.get(key)) {
        map.insert(key.to_string(), value);
    }
}

/// Sets `key` only when it is absent or `null` (a pointer field: `0`, `false` and `""` are
/// set values).
pub fn default_ptr(map: &mut Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_string(), value);
    }
}

/// The object at `key`, created (empty) if absent or `null`; `None` if it is something else.
pub fn child_obj<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_string(), json!({}));
    }
    map.get_mut(key).and_then(Value::as_object_mut)
}

/// The object at `key` if it is present and an object.
pub fn existing_obj<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    map.get_mut(key).and_then(Value::as_object_mut)
}

/// Each object element of the array at `key`.
pub fn each_obj<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    map.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// A quantity written as a string or, as upstream also accepts, a JSON number.
fn parse_quantity(v: &Value) -> Option<Quantity> {
    match v {
        Value::String(s) => Quantity::parse(s).ok(),
        Value::Number(n) => Quantity::parse(&n.to_string()).ok(),
        _ => None,
    }
}

/// Writes every quantity of a resource list in canonical form, rounded up to milli-units
/// (upstream's `SetDefaults_ResourceList` plus its serialization). Unparseable values are
/// left for validation to report.
pub fn canonicalize_resource_list(map: &mut Map<String, Value>, key: &str) {
    if let Some(list) = existing_obj(map, key) {
        for v in list.values_mut() {
            if let Some(mut q) = parse_quantity(v) {
                q.round_up_to_milli();
                *v = Value::String(q.to_string());
            }
        }
    }
}

/// Writes one quantity field in canonical form (no rounding).
pub fn canonicalize_quantity(map: &mut Map<String, Value>, key: &str) {
    if let Some(v) = map.get_mut(key) {
        if let Some(q) = parse_quantity(v) {
            *v = Value::String(q.to_string());
        }
    }
}

/// A pod template's (or PVC template's) `metadata`, serialized the way Go writes an embedded
/// `ObjectMeta`: always present, with `creationTimestamp: null`.
pub fn default_template_metadata(template: &mut Map<String, Value>) {
    if let Some(meta) = child_obj(template, "metadata") {
        meta.entry("creationTimestamp").or_insert(Value::Null);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_only_fill_unset() {
        let mut m = json!({"a": "", "b": "x", "c": 0, "d": null})
            .as_object()
            .cloned()
            .unwrap_or_default();
        for k in ["a", "b", "c", "d", "e"] {
            default_field(&mut m, k, json!("v"));
        }
        assert_eq!(
            Value::Object(m),
            json!({"a": "v", "b": "x", "c": "v", "d": "v", "e": "v"})
        );
        let mut m = json!({"p": false}).as_object().cloned().unwrap_or_default();
        default_ptr(&mut m, "p", json!(true));
        default_ptr(&mut m, "q", json!(true));
        assert_eq!(Value::Object(m), json!({"p": false, "q": true}));
    }

    #[test]
    fn resource_lists_are_canonical() {
        let mut m = json!({"limits": {"cpu": "0.5", "memory": "1024Mi", "x": 2, "y": 0.25}})
            .as_object()
            .cloned()
            .unwrap_or_default();
        canonicalize_resource_list(&mut m, "limits");
        assert_eq!(
            m["limits"],
            json!({"cpu": "500m", "memory": "1Gi", "x": "2", "y": "250m"})
        );
    }
}
