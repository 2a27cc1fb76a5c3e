//! ObjectMeta validation on create and update (upstream's `ValidateObjectMeta` and
//! `ValidateObjectMetaUpdate`, with the core API's extra finalizer-name rule), and the
//! reduced checks for the metadata of embedded templates.

use std::collections::BTreeSet;

use serde_json::Value;

use super::go_repr;
use super::labels::{qualified_name, string_map, validate_labels};
use super::names::{dns1123_label, mask_trailing_dash};
use super::{FIELD_IMMUTABLE_ERROR_MSG, IS_NEGATIVE_ERROR_MSG};
use crate::field::ErrorKind;
use crate::{FieldError, Path};

/// Upstream's `TotalAnnotationSizeLimitB`: keys and values of all annotations together.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Finalizer names that need no domain prefix.
const STANDARD_FINALIZERS: [&str; 3] = ["kubernetes", "orphan", "foregroundDeletion"];

/// Longest `managedFields[].manager`.
const FIELD_MANAGER_MAX: usize = 128;
/// Longest `managedFields[].subresource`.
const SUBRESOURCE_NAME_MAX: usize = 256;

fn str_of<'a>(meta: &'a Value, key: &str) -> &'a str {
    meta.get(key).and_then(Value::as_str).unwrap_or("")
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Validates `metadata` of a new object. `name_fn` checks a name (upstream's
/// `ValidateNameFunc` without the prefix flag: a `generateName` is checked with its trailing
/// dash masked).
pub fn validate_object_meta(
    meta: &Value,
    namespaced: bool,
    name_fn: &dyn Fn(&str) -> Vec<String>,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let generate_name = str_of(meta, "generateName");
    if !generate_name.is_empty() {
        for msg in name_fn(&mask_trailing_dash(generate_name)) {
            errs.push(FieldError::invalid(
                path.child("generateName"),
                generate_name.into(),
                msg,
            ));
        }
    }
    let name = str_of(meta, "name");
    if name.is_empty() {
        errs.push(FieldError::required(
            path.child("name"),
            "name or generateName is required",
        ));
    } else {
        for msg in name_fn(name) {
            errs.push(FieldError::invalid(path.child("name"), name.into(), msg));
        }
    }
    let namespace = str_of(meta, "namespace");
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required(path.child("namespace"), ""));
        } else {
            for msg in dns1123_label(namespace) {
                errs.push(FieldError::invalid(
                    path.child("namespace"),
                    namespace.into(),
                    msg,
                ));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            path.child("namespace"),
            "not allowed on this type",
        ));
    }
    if let Some(g) = meta.get("generation").and_then(Value::as_i64)
        && g < 0
    {
        errs.push(FieldError::invalid(
            path.child("generation"),
            g.into(),
            IS_NEGATIVE_ERROR_MSG,
        ));
    }
    errs.extend(validate_labels(
        &string_map(meta.get("labels")),
        &path.child("labels"),
    ));
    errs.extend(validate_annotations(
        meta.get("annotations"),
        &path.child("annotations"),
    ));
    errs.extend(validate_owner_references(
        meta.get("ownerReferences"),
        &path.child("ownerReferences"),
    ));
    let finalizers = string_list(meta.get("finalizers"));
    errs.extend(validate_finalizers(&finalizers, &path.child("finalizers")));
    errs.extend(validate_managed_fields(
        meta.get("managedFields"),
        &path.child("managedFields"),
    ));
    for (i, f) in finalizers.iter().enumerate() {
        errs.extend(validate_kube_finalizer_name(
            f,
            &path.child("finalizers").index(i),
        ));
    }
    errs
}

/// Validates `metadata` of an update against the stored object's.
pub fn validate_object_meta_update(new: &Value, old: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let new_finalizers = string_list(new.get("finalizers"));
    if old.get("deletionTimestamp").is_some_and(|v| !v.is_null()) {
        let old_finalizers: BTreeSet<String> =
            string_list(old.get("finalizers")).into_iter().collect();
        let extra: BTreeSet<&String> = new_finalizers
            .iter()
            .filter(|f| !old_finalizers.contains(*f))
            .collect();
        if !extra.is_empty() {
            let extra: Vec<String> = extra.into_iter().cloned().collect();
            errs.push(FieldError::forbidden(
                path.child("finalizers"),
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers {}",
                    go_repr::string_slice(Some(&extra))
                ),
            ));
        }
    }
    if str_of(new, "resourceVersion").is_empty() {
        errs.push(FieldError::invalid(
            path.child("resourceVersion"),
            "".into(),
            "must be specified for an update",
        ));
    }
    let generation = |m: &Value| m.get("generation").and_then(Value::as_i64).unwrap_or(0);
    if generation(new) < generation(old) {
        errs.push(FieldError::invalid(
            path.child("generation"),
            generation(new).into(),
            "must not be decremented",
        ));
    }
    for key in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        let (n, o) = (
            new.get(key).unwrap_or(&Value::Null),
            old.get(key).unwrap_or(&Value::Null),
        );
        let same = n == o || (is_unset(n) && is_unset(o));
        if !same {
            let shown =
                if is_unset(n) && key != "deletionTimestamp" && key != "deletionGracePeriodSeconds"
                {
                    Value::String(String::new())
                } else {
                    n.clone()
                };
            errs.push(FieldError::invalid(
                path.child(key),
                shown,
                FIELD_IMMUTABLE_ERROR_MSG,
            ));
        }
    }
    errs.extend(validate_labels(
        &string_map(new.get("labels")),
        &path.child("labels"),
    ));
    errs.extend(validate_annotations(
        new.get("annotations"),
        &path.child("annotations"),
    ));
    errs.extend(validate_owner_references(
        new.get("ownerReferences"),
        &path.child("ownerReferences"),
    ));
    errs.extend(validate_managed_fields(
        new.get("managedFields"),
        &path.child("managedFields"),
    ));
    for (i, f) in new_finalizers.iter().enumerate() {
        errs.extend(validate_kube_finalizer_name(
            f,
            &path.child("finalizers").index(i),
        ));
    }
    errs
}

fn is_unset(v: &Value) -> bool {
    v.is_null() || v.as_str() == Some("")
}

/// `ValidateAnnotations`: keys are qualified names (case-insensitively) and everything fits
/// in 256 KiB.
pub fn validate_annotations(annotations: Option<&Value>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let map = string_map(annotations);
    let mut total = 0usize;
    for (k, v) in &map {
        for msg in qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k.as_str().into(), msg));
        }
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

/// `ValidateOwnerReferences`. Errors name the list's fields (`ownerReferences.uid`), not an
/// index, as upstream's do.
pub fn validate_owner_references(refs: Option<&Value>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(refs) = refs.and_then(Value::as_array) else {
        return errs;
    };
    let mut first_controller: Option<String> = None;
    for r in refs {
        let api_version = str_of(r, "apiVersion");
        let kind = str_of(r, "kind");
        let (group, version) = match api_version.split('/').collect::<Vec<_>>().as_slice() {
            [v] => ("", *v),
            [g, v] => (*g, *v),
            _ => ("", ""),
        };
        if version.is_empty() {
            errs.push(FieldError::invalid(
                path.child("apiVersion"),
                api_version.into(),
                "version must not be empty",
            ));
        }
        if kind.is_empty() {
            errs.push(FieldError::invalid(
                path.child("kind"),
                kind.into(),
                "must not be empty",
            ));
        }
        let name = str_of(r, "name");
        if name.is_empty() {
            errs.push(FieldError::invalid(
                path.child("name"),
                name.into(),
                "must not be empty",
            ));
        }
        let uid = str_of(r, "uid");
        if uid.is_empty() {
            errs.push(FieldError::invalid(
                path.child("uid"),
                uid.into(),
                "must not be empty",
            ));
        }
        if group.is_empty() && version == "v1" && kind == "Event" {
            errs.push(go_repr::invalid_repr(
                path,
                &owner_reference_repr(r),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let current = format!("{kind}/{name}");
            match &first_controller {
                Some(first) => errs.push(go_repr::invalid_repr(
                    path,
                    &format!(
                        "[]v1.OwnerReference{{{}}}",
                        refs.iter().map(owner_reference_repr).collect::<Vec<_>>().join(", ")
                    ),
                    &format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                    ),
                )),
                None => first_controller = Some(current),
            }
        }
    }
    errs
}

fn owner_reference_repr(r: &Value) -> String {
    let opt_bool = |k: &str| match r.get(k).and_then(Value::as_bool) {
        Some(b) => format!("(*bool)({b})"),
        None => "(*bool)(nil)".to_string(),
    };
    format!(
        "v1.OwnerReference{{APIVersion:{}, Kind:{}, Name:{}, UID:{}, Controller:{}, BlockOwnerDeletion:{}}}",
        crate::field::go_quote(str_of(r, "apiVersion")),
        crate::field::go_quote(str_of(r, "kind")),
        crate::field::go_quote(str_of(r, "name")),
        crate::field::go_quote(str_of(r, "uid")),
        opt_bool("controller"),
        opt_bool("blockOwnerDeletion"),
    )
}

/// `ValidateFinalizers`: qualified names, and not both `orphan` and `foregroundDeletion`.
pub fn validate_finalizers(finalizers: &[String], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for f in finalizers {
        errs.extend(validate_finalizer_name(f, path));
    }
    if finalizers.iter().any(|f| f == "orphan")
        && finalizers.iter().any(|f| f == "foregroundDeletion")
    {
        errs.push(go_repr::invalid_repr(
            path,
            &go_repr::string_slice(Some(finalizers)),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}

/// `ValidateFinalizerName`: a qualified name.
pub fn validate_finalizer_name(name: &str, path: &Path) -> Vec<FieldError> {
    qualified_name(name)
        .into_iter()
        .map(|m| FieldError::invalid(path, name.into(), m))
        .collect()
}

/// The core API's rule: a finalizer without a `/` must be one of the standard names.
pub fn validate_kube_finalizer_name(name: &str, path: &Path) -> Vec<FieldError> {
    if !name.contains('/') && !STANDARD_FINALIZERS.contains(&name) {
        vec![FieldError::invalid(
            path,
            name.into(),
            "name is neither a standard finalizer name nor is it fully qualified",
        )]
    } else {
        Vec::new()
    }
}

/// `ValidateManagedFields`.
pub fn validate_managed_fields(fields: Option<&Value>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, entry) in fields
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let p = path.index(i);
        let op = str_of(entry, "operation");
        if op != "Apply" && op != "Update" {
            errs.push(FieldError::invalid(
                p.child("operation"),
                op.into(),
                "must be `Apply` or `Update`",
            ));
        }
        let ft = str_of(entry, "fieldsType");
        if !ft.is_empty() && ft != "FieldsV1" {
            errs.push(FieldError::invalid(
                p.child("fieldsType"),
                ft.into(),
                "must be `FieldsV1`",
            ));
        }
        let manager = str_of(entry, "manager");
        if manager.len() > FIELD_MANAGER_MAX {
            errs.push(FieldError::too_long(p.child("manager"), FIELD_MANAGER_MAX));
        }
        for (pos, c) in manager.char_indices() {
            if c.is_control() {
                errs.push(FieldError::invalid(
                    p.child("manager"),
                    manager.into(),
                    format!("invalid character U+{:04X} (at position {pos})", c as u32),
                ));
            }
        }
        if str_of(entry, "subresource").len() > SUBRESOURCE_NAME_MAX {
            errs.push(FieldError::too_long(
                p.child("subresource"),
                SUBRESOURCE_NAME_MAX,
            ));
        }
    }
    errs
}

/// `ValidateTemplateObjectMeta` (PVC templates): labels and annotations only; any other
/// metadata field is forbidden.
pub fn validate_template_object_meta(meta: Option<&Value>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(meta) = meta.and_then(Value::as_object) else {
        return errs;
    };
    errs.extend(validate_annotations(
        meta.get("annotations"),
        &path.child("annotations"),
    ));
    errs.extend(validate_labels(
        &string_map(meta.get("labels")),
        &path.child("labels"),
    ));
    for (k, v) in meta {
        let unset = v.is_null()
            || v.as_str() == Some("")
            || v.as_array().is_some_and(Vec::is_empty)
            || v.as_object().is_some_and(serde_json::Map::is_empty)
            || v.as_i64() == Some(0);
        if k != "labels" && k != "annotations" && !unset {
            errs.push(FieldError {
                kind: ErrorKind::Forbidden,
                field: path.child(k).into(),
                value: None,
                detail: "cannot be set".to_string(),
            });
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::names::{dns1035_label, dns1123_subdomain};
    use serde_json::json;

    fn create(meta: Value, namespaced: bool) -> Vec<String> {
        validate_object_meta(
            &meta,
            namespaced,
            &dns1123_subdomain,
            &Path::new("metadata"),
        )
        .iter()
        .map(ToString::to_string)
        .collect()
    }

    #[test]
    fn create_cases() {
        let cases: Vec<(Value, bool, Vec<&str>)> = vec![
            (json!({"name": "web", "namespace": "default"}), true, vec![]),
            (
                json!({"namespace": "default"}),
                true,
                vec!["metadata.name: Required value: name or generateName is required"],
            ),
            (
                json!({"name": "web"}),
                true,
                vec!["metadata.namespace: Required value"],
            ),
            (
                json!({"name": "web", "namespace": "x"}),
                false,
                vec!["metadata.namespace: Forbidden: not allowed on this type"],
            ),
            (
                json!({"name": "Web", "namespace": "default"}),
                true,
                vec![
                    "metadata.name: Invalid value: \"Web\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                ],
            ),
            (
                json!({"name": "web", "finalizers": ["foo"]}),
                false,
                vec![
                    "metadata.finalizers[0]: Invalid value: \"foo\": name is neither a standard finalizer name nor is it fully qualified",
                ],
            ),
            (
                json!({"name": "web", "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p"}]}),
                false,
                vec!["metadata.ownerReferences.uid: Invalid value: \"\": must not be empty"],
            ),
            (
                json!({"name": "web", "annotations": {"a/b/c": "x"}}),
                false,
                vec![
                    "metadata.annotations: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                ],
            ),
        ];
        for (meta, namespaced, want) in cases {
            assert_eq!(create(meta.clone(), namespaced), want, "{meta}");
        }
    }

    #[test]
    fn generate_name_allows_trailing_dash() {
        let errs = validate_object_meta(
            &json!({"name": "web-abcde", "generateName": "web-", "namespace": "d"}),
            true,
            &dns1035_label,
            &Path::new("metadata"),
        );
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn annotations_too_big() {
        let big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT);
        let errs = validate_annotations(
            Some(&json!({"a": big})),
            &Path::new("metadata").child("annotations"),
        );
        assert_eq!(
            errs[0].to_string(),
            "metadata.annotations: Too long: may not be more than 262144 bytes"
        );
    }

    #[test]
    fn update_cases() {
        let old = json!({"name": "a", "namespace": "d", "uid": "1", "resourceVersion": "5"});
        let errs = validate_object_meta_update(
            &json!({"name": "b", "namespace": "d", "uid": "1", "resourceVersion": "5"}),
            &old,
            &Path::new("metadata"),
        );
        assert_eq!(
            errs[0].to_string(),
            "metadata.name: Invalid value: \"b\": field is immutable"
        );
        let errs = validate_object_meta_update(
            &json!({"name": "a", "namespace": "d", "uid": "1"}),
            &old,
            &Path::new("metadata"),
        );
        assert_eq!(
            errs[0].to_string(),
            "metadata.resourceVersion: Invalid value: \"\": must be specified for an update"
        );
        let deleting = json!({"name": "a", "uid": "1", "resourceVersion": "5", "deletionTimestamp": "2025-01-01T00:00:00Z"});
        let mut new = deleting.clone();
        new["finalizers"] = json!(["example.com/x"]);
        let errs = validate_object_meta_update(&new, &deleting, &Path::new("metadata"));
        assert_eq!(
            errs[0].to_string(),
            "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"example.com/x\"}"
        );
    }
}
