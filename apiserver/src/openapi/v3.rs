//! OpenAPI v3 documents: one per group-version (and per group, `/api`, `/apis`, `/version`),
//! with the operations of their paths and the schemas those reach.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::routes::{Param, Route, Schema};
use super::schemas::{Definitions, Flavor};

/// Parameters shared by every operation of a path move to the path (as upstream does).
pub(super) fn hoist(routes: &[&Route]) -> (Vec<Param>, Vec<Vec<Param>>) {
    let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut last: BTreeMap<(&str, &str), &Param> = BTreeMap::new();
    for r in routes {
        for p in &r.params {
            *counts.entry((p.name, p.location)).or_default() += 1;
            last.insert((p.name, p.location), p);
        }
    }
    let common: Vec<(&str, &str)> = counts
        .iter()
        .filter(|(_, n)| **n == routes.len())
        .map(|(k, _)| *k)
        .collect();
    let mut shared: Vec<Param> = common
        .iter()
        .filter_map(|k| last.get(k).map(|p| (*p).clone()))
        .collect();
    sort_params(&mut shared);
    let per_op = routes
        .iter()
        .map(|r| {
            let mut ps: Vec<Param> = r
                .params
                .iter()
                .filter(|p| !common.contains(&(p.name, p.location)))
                .cloned()
                .collect();
            sort_params(&mut ps);
            ps
        })
        .collect();
    (shared, per_op)
}

pub(super) fn sort_params(ps: &mut [Param]) {
    ps.sort_by(|a, b| (a.name, a.location).cmp(&(b.name, b.location)));
}

/// Paths grouped, in path order, each with its operations in method order.
pub(super) fn by_path(routes: &[Route]) -> BTreeMap<&str, Vec<&Route>> {
    const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch"];
    let mut out: BTreeMap<&str, Vec<&Route>> = BTreeMap::new();
    for r in routes {
        out.entry(r.path.as_str()).or_default().push(r);
    }
    for ops in out.values_mut() {
        ops.sort_by_key(|r| METHODS.iter().position(|m| *m == r.method));
    }
    out
}

fn param(p: &Param) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(p.name));
    m.insert("in".into(), json!(p.location));
    if !p.description.is_empty() {
        m.insert("description".into(), json!(p.description));
    }
    if p.required {
        m.insert("required".into(), json!(true));
    }
    m.insert("schema".into(), json!({"type": p.ty, "uniqueItems": true}));
    Value::Object(m)
}

fn schema_of(s: &Schema) -> Value {
    match s {
        Schema::Ref(name) => json!({"$ref": format!("#/components/schemas/{name}")}),
        Schema::String => json!({"type": "string"}),
    }
}

fn content(types: &[&str], schema: &Value) -> Value {
    let mut sorted: Vec<&str> = types.to_vec();
    sorted.sort_unstable();
    Value::Object(
        sorted
            .into_iter()
            .map(|t| (t.to_string(), json!({"schema": schema})))
            .collect(),
    )
}

fn operation(r: &Route, params: &[Param]) -> Value {
    let mut op = Map::new();
    op.insert("tags".into(), json!([r.tag]));
    op.insert("description".into(), json!(r.description));
    op.insert("operationId".into(), json!(r.operation_id));
    if !params.is_empty() {
        op.insert(
            "parameters".into(),
            Value::Array(params.iter().map(param).collect()),
        );
    }
    if let Some(body) = &r.body {
        let mut b = Map::new();
        b.insert(
            "content".into(),
            content(r.consumes, &schema_of(&Schema::Ref(body.schema.clone()))),
        );
        if body.required {
            b.insert("required".into(), json!(true));
        }
        op.insert("requestBody".into(), Value::Object(b));
    }
    let mut responses = Map::new();
    for resp in &r.responses {
        let mut m = Map::new();
        m.insert("description".into(), json!(resp.description));
        if let Some(s) = &resp.schema {
            m.insert("content".into(), content(r.produces, &schema_of(s)));
        }
        responses.insert(resp.code.to_string(), Value::Object(m));
    }
    op.insert("responses".into(), Value::Object(responses));
    if let Some(action) = r.action {
        op.insert("x-kubernetes-action".into(), json!(action));
    }
    if let Some((g, v, k)) = &r.gvk {
        op.insert(
            "x-kubernetes-group-version-kind".into(),
            json!({"group": g, "version": v, "kind": k}),
        );
    }
    Value::Object(op)
}

pub(super) fn paths(routes: &[Route]) -> Value {
    let mut paths = Map::new();
    for (path, ops) in by_path(routes) {
        let (shared, per_op) = hoist(&ops);
        let mut item = Map::new();
        for (r, params) in ops.iter().zip(&per_op) {
            item.insert(r.method.to_string(), operation(r, params));
        }
        if !shared.is_empty() {
            item.insert(
                "parameters".into(),
                Value::Array(shared.iter().map(param).collect()),
            );
        }
        paths.insert(path.to_string(), Value::Object(item));
    }
    Value::Object(paths)
}

/// The schema names a set of routes refers to directly.
pub(super) fn referenced(routes: &[Route]) -> Vec<String> {
    let mut out = Vec::new();
    for r in routes {
        if let Some(b) = &r.body {
            out.push(b.schema.clone());
        }
        for resp in &r.responses {
            if let Some(Schema::Ref(name)) = &resp.schema {
                out.push(name.clone());
            }
        }
    }
    out
}

/// The document as JSON text (Go's escaping), its schemas spliced in.
pub(super) fn document(routes: &[Route], defs: &Definitions, version: &str) -> String {
    let names = defs.closure(referenced(routes));
    let head = json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": version},
        "paths": paths(routes),
    });
    let mut out = super::go_json(&head);
    out.pop();
    out.push_str(",\"components\":{");
    if !names.is_empty() {
        out.push_str("\"schemas\":{");
        out.push_str(&defs.members(Flavor::V3, &names));
        out.push_str("},");
    }
    out.push_str(r#""securitySchemes":{"BearerToken":{"type":"apiKey","description":"Bearer Token authentication","name":"authorization","in":"header"}}}}"#);
    out
}
