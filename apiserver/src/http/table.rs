//! Server-side printing: `meta.k8s.io/v1 Table` responses.
//!
//! Resources without a printer get upstream's default columns (Name, Created At).

use ironkube_machinery::resources::ResourceInfo;
use serde_json::{Value, json};

/// `includeObject` of TableOptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    None,
    #[default]
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: Option<&str>) -> Result<Self, String> {
        match s {
            None | Some("") | Some("Metadata") => Ok(IncludeObject::Metadata),
            Some("None") => Ok(IncludeObject::None),
            Some("Object") => Ok(IncludeObject::Object),
            Some(other) => Err(format!("includeObject: Unsupported value: {other:?}: supported values: \"Metadata\", \"None\", \"Object\"")),
        }
    }
}

/// The PartialObjectMetadata form of an object.
pub fn partial_metadata(obj: &Value, v1beta1: bool) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": if v1beta1 { "meta.k8s.io/v1beta1" } else { "meta.k8s.io/v1" },
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

fn default_columns() -> Value {
    json!([
        {"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names", "priority": 0},
        {"name": "Created At", "type": "date", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata", "priority": 0},
    ])
}

fn default_cells(obj: &Value) -> Vec<Value> {
    // Upstream prints the creation time through metav1.Time: RFC 3339 in UTC.
    let created = obj["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .map(|t| Value::String(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
        .unwrap_or(Value::Null);
    vec![obj["metadata"]["name"].clone(), created]
}

/// Table options from the query (`meta.k8s.io/v1 TableOptions`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TableOptions {
    pub include: IncludeObject,
    pub no_headers: bool,
}

/// A Table of `items` with the list metadata given.
pub fn table(info: &ResourceInfo, items: &[Value], list_meta: Value, v1beta1: bool, opts: TableOptions) -> Value {
    let printer = crate::printers::printer(info);
    let mut ordered: Vec<&Value> = items.iter().collect();
    if let Some(p) = printer {
        ordered.sort_by(|a, b| p.list_order(a, b));
    }
    let rows: Vec<Value> = ordered
        .into_iter()
        .map(|obj| {
            let cells = match printer {
                Some(p) => p.cells(obj),
                None => default_cells(obj),
            };
            let mut row = json!({"cells": cells});
            if let Some(conditions) = printer.and_then(|p| p.conditions(obj)) {
                row["conditions"] = conditions;
            }
            match opts.include {
                IncludeObject::None => {}
                IncludeObject::Metadata => row["object"] = partial_metadata(obj, v1beta1),
                IncludeObject::Object => row["object"] = obj.clone(),
            }
            row
        })
        .collect();
    let mut table = json!({
        "kind": "Table",
        "apiVersion": if v1beta1 { "meta.k8s.io/v1beta1" } else { "meta.k8s.io/v1" },
        "metadata": list_meta,
    });
    if !opts.no_headers {
        table["columnDefinitions"] = match printer {
            Some(p) => p.columns(),
            None => default_columns(),
        };
    }
    table["rows"] = Value::Array(rows);
    table
}

/// Reads `includeObject` and `noHeaders` from a query.
pub fn table_options(q: &super::query::Query) -> Result<TableOptions, ironkube_machinery::ApiError> {
    Ok(TableOptions {
        include: IncludeObject::parse(q.get("includeObject")).map_err(ironkube_machinery::ApiError::bad_request)?,
        no_headers: q.bool("noHeaders").map_err(ironkube_machinery::ApiError::bad_request)?.unwrap_or(false),
    })
}
