//! The OpenAPI v2 (Swagger 2.0) document: every path in one document, `definitions` with
//! bare `$ref`s, and the query and body parameters shared between operations moved to
//! `parameters` under names such as `fieldManager-Qy4HdaTW` (the name and a hash of the
//! parameter's JSON, as upstream names them).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::go_json;
use super::routes::{Param, Route, Schema};
use super::schemas::{Definitions, Flavor};
use super::v3::{by_path, hoist, referenced, sort_params};

/// A parameter in its v2 form: a query/path parameter, or the body.
#[derive(Clone)]
enum V2Param {
    Plain(Param),
    Body { schema: String, required: bool },
}

impl V2Param {
    fn key(&self) -> (&str, &str) {
        match self {
            V2Param::Plain(p) => (p.name, p.location),
            V2Param::Body { .. } => ("body", "body"),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            V2Param::Plain(p) => {
                let mut m = Map::new();
                m.insert("uniqueItems".into(), json!(true));
                m.insert("type".into(), json!(p.ty));
                if !p.description.is_empty() {
                    m.insert("description".into(), json!(p.description));
                }
                m.insert("name".into(), json!(p.name));
                m.insert("in".into(), json!(p.location));
                if p.required {
                    m.insert("required".into(), json!(true));
                }
                Value::Object(m)
            }
            V2Param::Body { schema, required } => {
                let mut m = Map::new();
                m.insert("name".into(), json!("body"));
                m.insert("in".into(), json!("body"));
                if *required {
                    m.insert("required".into(), json!(true));
                }
                m.insert(
                    "schema".into(),
                    json!({"$ref": format!("#/definitions/{schema}")}),
                );
                Value::Object(m)
            }
        }
    }

    /// Whether upstream shares this parameter through `#/parameters/`.
    fn shared(&self) -> bool {
        match self {
            V2Param::Plain(p) => {
                !(p.name == "name"
                    || (p.location == "query"
                        && (p.name == "fieldValidation" || p.name == "dryRun")))
            }
            V2Param::Body { schema, .. } => schema.starts_with("io.k8s.apimachinery"),
        }
    }
}

fn sorted(mut ps: Vec<V2Param>) -> Vec<V2Param> {
    ps.sort_by(|a, b| a.key().cmp(&b.key()));
    ps
}

/// The first six bytes of the FNV-1 (64-bit) hash of `s`, URL-safe base64: 8 characters.
fn short_hash(s: &str) -> String {
    use base64::Engine;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        h ^= u64::from(b);
    }
    base64::engine::general_purpose::URL_SAFE.encode(&h.to_be_bytes()[..6])
}

fn schema_of(s: &Schema) -> Value {
    match s {
        Schema::Ref(name) => json!({"$ref": format!("#/definitions/{name}")}),
        Schema::String => json!({"type": "string"}),
    }
}

/// The document as JSON text, its definitions spliced in.
pub(super) fn document(routes: &[Route], defs: &Definitions, version: &str) -> String {
    // Parameters per path (hoisted as in v3, with the body as one more parameter).
    struct PathParams<'a> {
        path: &'a str,
        ops: Vec<(&'a Route, Vec<V2Param>)>,
        shared: Vec<V2Param>,
    }
    let mut items = Vec::new();
    for (path, ops) in by_path(routes) {
        let (shared, per_op) = hoist(&ops);
        let ops = ops
            .into_iter()
            .zip(per_op)
            .map(|(r, ps)| {
                let mut v: Vec<V2Param> = ps.into_iter().map(V2Param::Plain).collect();
                if let Some(b) = &r.body {
                    v.push(V2Param::Body {
                        schema: b.schema.clone(),
                        required: b.required,
                    });
                }
                (r, sorted(v))
            })
            .collect();
        let mut shared = shared;
        sort_params(&mut shared);
        items.push(PathParams {
            path,
            ops,
            shared: shared.into_iter().map(V2Param::Plain).collect(),
        });
    }

    // Shared parameters, named after their JSON.
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut parameters: BTreeMap<String, Value> = BTreeMap::new();
    let mut collect = |p: &V2Param| {
        if !p.shared() {
            return;
        }
        let value = p.to_json();
        let text = go_json(&value);
        if names.contains_key(&text) {
            return;
        }
        let base = p.key().0.to_string();
        let mut name = format!("{base}-{}", short_hash(&text));
        let mut i = 0;
        while parameters.contains_key(&name) {
            i += 1;
            name = format!("{base}-{i}");
        }
        parameters.insert(name.clone(), value);
        names.insert(text, name);
    };
    for item in &items {
        item.ops
            .iter()
            .flat_map(|(_, ps)| ps)
            .for_each(&mut collect);
        item.shared.iter().for_each(&mut collect);
    }
    let render = |p: &V2Param| match names.get(&go_json(&p.to_json())) {
        Some(name) if p.shared() => json!({"$ref": format!("#/parameters/{name}")}),
        _ => p.to_json(),
    };

    let mut paths = Map::new();
    for item in &items {
        let mut path = Map::new();
        for (r, ps) in &item.ops {
            let mut op = Map::new();
            op.insert("description".into(), json!(r.description));
            if !r.consumes.is_empty() {
                op.insert("consumes".into(), json!(r.consumes));
            }
            op.insert("produces".into(), json!(r.produces));
            op.insert("schemes".into(), json!(["https"]));
            op.insert("tags".into(), json!([r.tag]));
            op.insert("operationId".into(), json!(r.operation_id));
            if !ps.is_empty() {
                op.insert(
                    "parameters".into(),
                    Value::Array(ps.iter().map(render).collect()),
                );
            }
            let mut responses = Map::new();
            for resp in &r.responses {
                let mut m = Map::new();
                m.insert("description".into(), json!(resp.description));
                if let Some(s) = &resp.schema {
                    m.insert("schema".into(), schema_of(s));
                }
                responses.insert(resp.code.to_string(), Value::Object(m));
            }
            op.insert("responses".into(), Value::Object(responses));
            if let Some(action) = r.action {
                op.insert("x-kubernetes-action".into(), json!(action));
            }
            if let Some((g, v, k)) = &r.gvk {
                // The aggregator's own operations carry the kind in struct order.
                let gvk = if g == "apiregistration.k8s.io" {
                    json!({"group": g, "version": v, "kind": k})
                } else {
                    json!({"group": g, "kind": k, "version": v})
                };
                op.insert("x-kubernetes-group-version-kind".into(), gvk);
            }
            path.insert(r.method.to_string(), Value::Object(op));
        }
        if !item.shared.is_empty() {
            path.insert(
                "parameters".into(),
                Value::Array(item.shared.iter().map(render).collect()),
            );
        }
        paths.insert(item.path.to_string(), Value::Object(path));
    }

    let names = defs.closure(referenced(routes));
    let head = json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": version},
        "paths": Value::Object(paths),
    });
    let tail = json!({
        "parameters": Value::Object(parameters.into_iter().collect()),
        "securityDefinitions": {"BearerToken": {"description": "Bearer Token authentication", "type": "apiKey", "name": "authorization", "in": "header"}},
        "security": [{"BearerToken": []}],
    });
    let mut out = serde_json::to_string(&head).unwrap_or_default();
    out.pop();
    out.push_str(",\"definitions\":{");
    out.push_str(&defs.members(Flavor::V2, &names));
    out.push_str("},");
    out.push_str(&serde_json::to_string(&tail).unwrap_or_default()[1..]);
    out
}
