//! ConfigMaps: keys must be config keys, everything together at most 1 MiB, and an
//! immutable ConfigMap keeps its data.

use base64::Engine;
use ironkube_machinery::field::{FieldError, Path};
use ironkube_machinery::validation::core::config_map_key;
use serde_json::Value;

use super::Strategy;

/// Upstream's `MaxSecretSize`, which also bounds ConfigMaps.
pub const MAX_DATA_SIZE: usize = 1024 * 1024;

pub struct ConfigMapStrategy;

impl Strategy for ConfigMapStrategy {
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        validate_config_map(obj)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = immutable_data_errors(new, old, &["data", "binaryData"]);
        errs.extend(validate_config_map(new));
        errs
    }
}

/// Bytes of a base64 value (what upstream counts for `binaryData` and Secret `data`).
pub fn decoded_len(v: &str) -> usize {
    base64::engine::general_purpose::STANDARD
        .decode(v)
        .map_or(v.len(), |b| b.len())
}

fn validate_config_map(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let data = obj.get("data").and_then(Value::as_object);
    let binary = obj.get("binaryData").and_then(Value::as_object);
    let mut total = 0usize;
    for (k, v) in data.into_iter().flatten() {
        let p = Path::new("data").key(k);
        for m in config_map_key(k) {
            errs.push(FieldError::invalid(&p, k.as_str().into(), m));
        }
        if binary.is_some_and(|b| b.contains_key(k)) {
            errs.push(FieldError::invalid(
                &p,
                k.as_str().into(),
                "duplicate of key present in binaryData",
            ));
        }
        total += v.as_str().map_or(0, str::len);
    }
    for (k, v) in binary.into_iter().flatten() {
        for m in config_map_key(k) {
            errs.push(FieldError::invalid(
                Path::new("binaryData").key(k),
                k.as_str().into(),
                m,
            ));
        }
        total += v.as_str().map_or(0, decoded_len);
    }
    if total > MAX_DATA_SIZE {
        errs.push(FieldError::too_long("", MAX_DATA_SIZE));
    }
    errs
}

/// The `immutable: true` rules shared by ConfigMaps and Secrets.
pub fn immutable_data_errors(new: &Value, old: &Value, fields: &[&str]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return errs;
    }
    if new.get("immutable").and_then(Value::as_bool) != Some(true) {
        errs.push(FieldError::forbidden(
            "immutable",
            "field is immutable when `immutable` is set",
        ));
    }
    let empty = serde_json::Map::new();
    for f in fields {
        let n = new.get(*f).and_then(Value::as_object).unwrap_or(&empty);
        let o = old.get(*f).and_then(Value::as_object).unwrap_or(&empty);
        if n != o {
            errs.push(FieldError::forbidden(
                *f,
                "field is immutable when `immutable` is set",
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_and_size() {
        let cm = json!({"metadata": {"name": "c"}, "data": {"good.key": "v", "bad key": "v"}});
        let errs: Vec<String> = ConfigMapStrategy
            .validate(&cm)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
            ]
        );
        let big = json!({"data": {"a": "x".repeat(MAX_DATA_SIZE + 1)}});
        let errs: Vec<String> = ConfigMapStrategy
            .validate(&big)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errs, vec!["Too long: may not be more than 1048576 bytes"]);
    }

    #[test]
    fn immutable() {
        let old = json!({"immutable": true, "data": {"a": "1"}});
        let new = json!({"immutable": true, "data": {"a": "2"}});
        let errs: Vec<String> = ConfigMapStrategy
            .validate_update(&new, &old)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec!["data: Forbidden: field is immutable when `immutable` is set"]
        );
        let errs: Vec<String> = ConfigMapStrategy
            .validate_update(&json!({"data": {"a": "1"}}), &old)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec!["immutable: Forbidden: field is immutable when `immutable` is set"]
        );
    }
}
