//! Secrets: `stringData` folded into `data`, type `Opaque` by default, config-key names,
//! the 1 MiB limit, the keys each well-known type requires, and immutability.

use base64::Engine;
use ironkube_machinery::field::{FieldError, Path};
use ironkube_machinery::validation::FIELD_IMMUTABLE_ERROR_MSG;
use ironkube_machinery::validation::core::config_map_key;
use serde_json::{Value, json};

use super::Strategy;
use super::configmap::{MAX_DATA_SIZE, decoded_len, immutable_data_errors};
use super::object::str_at;

pub struct SecretStrategy;

impl Strategy for SecretStrategy {
    fn default(&self, obj: &mut Value) {
        let Some(o) = obj.as_object_mut() else { return };
        if let Some(Value::Object(string_data)) = o.remove("stringData")
            && !string_data.is_empty()
        {
            let data = o.entry("data").or_insert_with(|| json!({}));
            if !data.is_object() {
                *data = json!({});
            }
            if let Some(d) = data.as_object_mut() {
                for (k, v) in string_data {
                    let bytes = v.as_str().unwrap_or("").as_bytes().to_vec();
                    d.insert(
                        k,
                        json!(base64::engine::general_purpose::STANDARD.encode(bytes)),
                    );
                }
            }
        }
        super::object::default_field(o, "type", json!("Opaque"));
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        validate_secret(obj)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let (nt, ot) = (str_at(new, "type"), str_at(old, "type"));
        if nt != ot {
            errs.push(FieldError::invalid(
                "type",
                nt.into(),
                FIELD_IMMUTABLE_ERROR_MSG,
            ));
        }
        errs.extend(immutable_data_errors(new, old, &["data"]));
        errs.extend(validate_secret(new));
        errs
    }

    fn field_labels(&self, obj: &Value) -> Vec<(&'static str, String)> {
        vec![("type", str_at(obj, "type").to_string())]
    }
}

fn decoded(v: Option<&Value>) -> Option<Vec<u8>> {
    v.and_then(Value::as_str)
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
}

fn validate_secret(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let data_path = Path::new("data");
    let data = obj
        .get("data")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut total = 0usize;
    for (k, v) in &data {
        for m in config_map_key(k) {
            errs.push(FieldError::invalid(data_path.key(k), k.as_str().into(), m));
        }
        total += v.as_str().map_or(0, decoded_len);
    }
    if total > MAX_DATA_SIZE {
        errs.push(FieldError::too_long(&data_path, MAX_DATA_SIZE));
    }
    let json_key = |key: &str, errs: &mut Vec<FieldError>| match data.get(key) {
        None => errs.push(FieldError::required(data_path.key(key), "")),
        Some(v) => {
            let bytes = decoded(Some(v)).unwrap_or_default();
            if let Err(e) = serde_json::from_slice::<serde_json::Map<String, Value>>(&bytes) {
                errs.push(FieldError::invalid(
                    data_path.key(key),
                    "<secret contents redacted>".into(),
                    e.to_string(),
                ));
            }
        }
    };
    match str_at(obj, "type") {
        "kubernetes.io/service-account-token" => {
            let name = obj["metadata"]["annotations"]
                .get("kubernetes.io/service-account.name")
                .and_then(Value::as_str)
                .unwrap_or("");
            if name.is_empty() {
                errs.push(FieldError::required(
                    Path::new("metadata")
                        .child("annotations")
                        .key("kubernetes.io/service-account.name"),
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" => json_key(".dockercfg", &mut errs),
        "kubernetes.io/dockerconfigjson" => json_key(".dockerconfigjson", &mut errs),
        "kubernetes.io/basic-auth"
            if !data.contains_key("username") && !data.contains_key("password") =>
        {
            errs.push(FieldError::required(data_path.key("username"), ""));
            errs.push(FieldError::required(data_path.key("password"), ""));
        }
        "kubernetes.io/ssh-auth"
            if decoded(data.get("ssh-privatekey")).is_none_or(|b| b.is_empty()) =>
        {
            errs.push(FieldError::required(data_path.key("ssh-privatekey"), ""));
        }
        "kubernetes.io/tls" => {
            for key in ["tls.crt", "tls.key"] {
                if !data.contains_key(key) {
                    errs.push(FieldError::required(data_path.key(key), ""));
                }
            }
        }
        _ => {}
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(mut s: Value) -> Value {
        SecretStrategy.default(&mut s);
        s
    }

    #[test]
    fn string_data_and_type() {
        let s = prepared(
            json!({"metadata": {"name": "s"}, "stringData": {"user": "admin"}, "data": {"x": "eQ=="}}),
        );
        assert_eq!(
            s,
            json!({"metadata": {"name": "s"}, "data": {"x": "eQ==", "user": "YWRtaW4="}, "type": "Opaque"})
        );
    }

    #[test]
    fn typed_secrets() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (
                json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}}),
                vec!["data[tls.key]: Required value"],
            ),
            (
                json!({"type": "kubernetes.io/basic-auth"}),
                vec![
                    "data[username]: Required value",
                    "data[password]: Required value",
                ],
            ),
            (
                json!({"type": "kubernetes.io/dockerconfigjson", "data": {}}),
                vec!["data[.dockerconfigjson]: Required value"],
            ),
            (
                json!({"type": "kubernetes.io/ssh-auth"}),
                vec!["data[ssh-privatekey]: Required value"],
            ),
            (
                json!({"type": "kubernetes.io/service-account-token"}),
                vec!["metadata.annotations[kubernetes.io/service-account.name]: Required value"],
            ),
        ];
        for (s, want) in cases {
            let errs: Vec<String> = SecretStrategy
                .validate(&prepared(s.clone()))
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(errs, want, "{s}");
        }
    }

    #[test]
    fn type_is_immutable() {
        let old = prepared(json!({"data": {}}));
        let new =
            prepared(json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}}));
        let errs: Vec<String> = SecretStrategy
            .validate_update(&new, &old)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec!["type: Invalid value: \"kubernetes.io/tls\": field is immutable"]
        );
    }
}
