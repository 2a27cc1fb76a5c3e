//! How upstream prints a bad value that is not a plain string or number: Go's `%#v` of the
//! internal type (`map[string]string{"app":"web"}`, `v1.LabelSelector{...}`). Field errors
//! carrying such a value keep the rendered text in the message.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::field::{ErrorKind, FieldError, go_quote};

/// A field error whose bad value is printed verbatim (already in Go's `%#v` form).
pub fn error_with_repr(
    kind: ErrorKind,
    field: impl Into<String>,
    repr: &str,
    detail: &str,
) -> FieldError {
    let detail = if detail.is_empty() {
        repr.to_string()
    } else {
        format!("{repr}: {detail}")
    };
    FieldError {
        kind,
        field: field.into(),
        value: None,
        detail,
    }
}

/// `Invalid value: <repr>: <detail>`.
pub fn invalid_repr(field: impl Into<String>, repr: &str, detail: &str) -> FieldError {
    error_with_repr(ErrorKind::Invalid, field, repr, detail)
}

/// `Unsupported value: <repr>: supported values: "a", "b"`.
pub fn not_supported_repr(field: impl Into<String>, repr: &str, supported: &[&str]) -> FieldError {
    let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
    error_with_repr(
        ErrorKind::NotSupported,
        field,
        repr,
        &format!("supported values: {}", quoted.join(", ")),
    )
}

/// `map[string]string{"a":"b", "c":"d"}` (Go sorts map keys when printing).
pub fn string_map(m: Option<&BTreeMap<String, String>>) -> String {
    match m {
        None => "map[string]string(nil)".to_string(),
        Some(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v)))
                .collect();
            format!("map[string]string{{{}}}", items.join(", "))
        }
    }
}

/// `[]string{"a", "b"}`.
pub fn string_slice(v: Option<&[String]>) -> String {
    match v {
        None => "[]string(nil)".to_string(),
        Some(v) => {
            let items: Vec<String> = v.iter().map(|s| go_quote(s)).collect();
            format!("[]string{{{}}}", items.join(", "))
        }
    }
}

/// `v1.LabelSelector{MatchLabels:map[string]string{...}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}`.
pub fn label_selector(sel: &LabelSelector) -> String {
    let exprs = match &sel.match_expressions {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(exprs) => {
            let items: Vec<String> = exprs
                .iter()
                .map(|r| {
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        go_quote(&r.key),
                        go_quote(&r.operator),
                        string_slice(r.values.as_deref())
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{}}}",
        string_map(sel.match_labels.as_ref()),
        exprs
    )
}

/// A pointer to a label selector: `(*v1.LabelSelector)(nil)` when absent. (Errors print the
/// pointee when present, as upstream's error formatting dereferences pointers.)
pub fn label_selector_ptr(sel: Option<&LabelSelector>) -> String {
    match sel {
        Some(s) => label_selector(s),
        None => "\"null\"".to_string(),
    }
}

/// `intstr.IntOrString{Type:0, IntVal:5, StrVal:""}`.
pub fn int_or_string(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(i) => format!("intstr.IntOrString{{Type:0, IntVal:{i}, StrVal:\"\"}}"),
        IntOrString::String(s) => format!(
            "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
            go_quote(s)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_go() {
        let mut m = BTreeMap::new();
        m.insert("b".to_string(), "2".to_string());
        m.insert("a".to_string(), "1".to_string());
        assert_eq!(
            string_map(Some(&m)),
            r#"map[string]string{"a":"1", "b":"2"}"#
        );
        let sel = LabelSelector {
            match_labels: Some(m),
            match_expressions: None,
        };
        assert_eq!(
            label_selector(&sel),
            r#"v1.LabelSelector{MatchLabels:map[string]string{"a":"1", "b":"2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"#
        );
        assert_eq!(
            int_or_string(&IntOrString::String("30".into())),
            r#"intstr.IntOrString{Type:1, IntVal:0, StrVal:"30"}"#
        );
        let e = invalid_repr(
            "spec.template.metadata.labels",
            &string_map(None),
            "`selector` does not match template `labels`",
        );
        assert_eq!(
            e.to_string(),
            "spec.template.metadata.labels: Invalid value: map[string]string(nil): `selector` does not match template `labels`"
        );
    }
}
