//! `components.schemas` (v3) and `definitions` (v2): the JSON schemas of the built-in
//! types, shaped as Kubernetes publishes them.
//!
//! The schemas start from k8s-openapi's `schemars` implementations (types, formats,
//! descriptions, `required`), and take from the machinery schema table what those lack:
//! the `x-kubernetes-*` extensions (patch strategy and merge key, list type and map keys,
//! map type, unions, group-version-kind), `default`s, and enum values. List kinds
//! (`PodList`), which k8s-openapi models as one generic type, are built from the table.
//! Version 3 wraps a `$ref` that has siblings in `allOf`; version 2 keeps it bare and
//! publishes no defaults.

use std::collections::{BTreeMap, BTreeSet};

use ironkube_machinery::schema::{self, FieldDef};
use k8s_openapi::schemars::SchemaGenerator;
use k8s_openapi::schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use super::roots;

/// Which OpenAPI version a schema is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flavor {
    V2,
    V3,
}

impl Flavor {
    pub(super) fn ref_prefix(self) -> &'static str {
        match self {
            Flavor::V2 => "#/definitions/",
            Flavor::V3 => "#/components/schemas/",
        }
    }
}

const RAW_PREFIX: &str = "#/components/schemas/";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

/// Every built-in type's schema, by OpenAPI name, for both versions; also serialized, so
/// that each document only splices the text of the schemas it reaches.
pub(super) struct Definitions {
    v2_text: BTreeMap<String, String>,
    v3_text: BTreeMap<String, String>,
    /// The types each type refers to.
    deps: BTreeMap<String, BTreeSet<String>>,
}

impl Definitions {
    pub(super) fn build() -> Definitions {
        let raw = raw_definitions();
        let mut v2 = BTreeMap::new();
        let mut v3 = BTreeMap::new();
        for (name, schema) in &raw {
            v2.insert(name.clone(), render_type(name, schema, Flavor::V2));
            v3.insert(name.clone(), render_type(name, schema, Flavor::V3));
        }
        let deps = v3
            .iter()
            .map(|(name, schema)| {
                let mut refs = BTreeSet::new();
                collect_refs(schema, Flavor::V3.ref_prefix(), &mut refs);
                (name.clone(), refs)
            })
            .collect();
        let v2_text = v2
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::to_string(v).unwrap_or_default()))
            .collect();
        let v3_text = v3
            .iter()
            .map(|(k, v)| (k.clone(), super::go_json(v)))
            .collect();
        Definitions {
            v2_text,
            v3_text,
            deps,
        }
    }

    #[cfg(test)]
    pub(super) fn contains(&self, name: &str) -> bool {
        self.deps.contains_key(name)
    }

    /// `roots` and every type they reach.
    pub(super) fn closure(&self, roots: impl IntoIterator<Item = String>) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo: Vec<String> = roots.into_iter().collect();
        while let Some(name) = todo.pop() {
            let Some(deps) = self.deps.get(&name) else {
                continue;
            };
            if out.insert(name) {
                todo.extend(deps.iter().cloned());
            }
        }
        out
    }

    /// The members of a `schemas`/`definitions` object for `names`, as JSON text.
    pub(super) fn members(&self, flavor: Flavor, names: &BTreeSet<String>) -> String {
        let texts = match flavor {
            Flavor::V2 => &self.v2_text,
            Flavor::V3 => &self.v3_text,
        };
        let mut out = String::new();
        for name in names {
            let Some(text) = texts.get(name) else {
                continue;
            };
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(name).unwrap_or_default());
            out.push(':');
            out.push_str(text);
        }
        out
    }
}

pub(super) fn collect_refs(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if k == "$ref" {
                    if let Some(name) = v.as_str().and_then(|r| r.strip_prefix(prefix)) {
                        out.insert(name.to_string());
                    }
                } else {
                    collect_refs(v, prefix, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, prefix, out)),
        _ => {}
    }
}

/// k8s-openapi's schemas of every root type and what they reach, plus the list kinds.
fn raw_definitions() -> BTreeMap<String, Value> {
    let mut generator = SchemaGenerator::new(SchemaSettings::draft07().with(|s| {
        s.definitions_path = "/components/schemas".into();
        s.meta_schema = None;
        s.transforms.clear();
    }));
    roots::add(&mut generator);
    let mut raw: BTreeMap<String, Value> = generator.take_definitions(false).into_iter().collect();
    if let Some(event) = raw.get_mut(WATCH_EVENT) {
        split_watch_event(event);
    }
    for kind in schema::kinds() {
        let Some(doc) = schema::list_doc(kind.type_name) else {
            continue;
        };
        if raw.contains_key(kind.type_name) {
            continue;
        }
        let Some(item) = schema::field_def(kind.type_name, "items").and_then(|f| f.elem) else {
            continue;
        };
        if !raw.contains_key(item) {
            continue;
        }
        let standard = |field: &str| {
            raw.get(item)
                .and_then(|s| s.pointer(&format!("/properties/{field}/description")))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let described = |doc: &str, schema: Value| {
            let mut m = Map::new();
            if !doc.is_empty() {
                m.insert("description".into(), json!(doc));
            }
            m.extend(schema.as_object().cloned().unwrap_or_default());
            Value::Object(m)
        };
        let list = json!({
            "description": doc.description,
            "type": "object",
            "required": ["items"],
            "properties": {
                "apiVersion": {"description": standard("apiVersion"), "type": "string"},
                "items": described(doc.items, json!({"type": "array", "items": {"$ref": format!("{RAW_PREFIX}{item}")}})),
                "kind": {"description": standard("kind"), "type": "string"},
                "metadata": described(doc.metadata, json!({"$ref": format!("{RAW_PREFIX}{LIST_META}")})),
            },
        });
        raw.insert(kind.type_name.to_string(), list);
    }
    raw
}

const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";

/// k8s-openapi documents `WatchEvent.object` in the type's description; Kubernetes
/// documents the type in its first paragraph and the property with the rest.
fn split_watch_event(event: &mut Value) {
    let Some(text) = event
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return;
    };
    let Some((type_doc, object_doc)) = text.split_once("\n\n") else {
        return;
    };
    event["description"] = json!(type_doc);
    if let Some(object) = event
        .pointer_mut("/properties/object")
        .and_then(Value::as_object_mut)
    {
        object.insert("description".into(), json!(object_doc.trim_end()));
    }
}

/// Types whose published schema is not the shape of their Rust type.
fn special(name: &str, description: &Value, flavor: Flavor) -> Option<Value> {
    let mut m = Map::new();
    if !description.is_null() {
        m.insert("description".into(), description.clone());
    }
    match (name, flavor) {
        ("io.k8s.apimachinery.pkg.util.intstr.IntOrString", Flavor::V3) => {
            m.insert("format".into(), json!("int-or-string"));
            m.insert(
                "oneOf".into(),
                json!([{"type": "integer"}, {"type": "string"}]),
            );
        }
        ("io.k8s.apimachinery.pkg.util.intstr.IntOrString", Flavor::V2) => {
            m.insert("type".into(), json!("string"));
            m.insert("format".into(), json!("int-or-string"));
        }
        ("io.k8s.apimachinery.pkg.api.resource.Quantity", Flavor::V3) => {
            m.insert(
                "oneOf".into(),
                json!([{"type": "string"}, {"type": "number"}]),
            );
        }
        ("io.k8s.apimachinery.pkg.api.resource.Quantity", Flavor::V2) => {
            m.insert("type".into(), json!("string"));
        }
        // Any JSON value: Kubernetes leaves these untyped.
        (
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON"
            | "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray"
            | "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool"
            | "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
            _,
        ) => {}
        _ => return None,
    }
    Some(Value::Object(m))
}

fn render_type(name: &str, raw: &Value, flavor: Flavor) -> Value {
    let description = raw.get("description").cloned().unwrap_or(Value::Null);
    if let Some(s) = special(name, &description, flavor) {
        return s;
    }
    let ty = schema::type_def(name);
    let mut out = raw.as_object().cloned().unwrap_or_default();
    if let Some(Value::Object(props)) = out.get_mut("properties") {
        for (field, prop) in props.iter_mut() {
            let def = ty.and_then(|t| t.field(field));
            *prop = render_property(prop, def, flavor);
        }
    }
    if let Some(ty) = ty {
        out.remove("required");
        if !ty.required.is_empty() {
            out.insert("required".into(), json!(ty.required));
        }
        if let Some(mt) = ty.map_type {
            out.insert("x-kubernetes-map-type".into(), json!(mt.as_str()));
        }
        for (k, v) in ty.extensions {
            out.insert((*k).into(), serde_json::from_str(v).unwrap_or(Value::Null));
        }
        if !ty.unions.is_empty() {
            let unions: Vec<Value> = ty
                .unions
                .iter()
                .map(|u| {
                    let mut m = Map::new();
                    if let Some(d) = u.discriminator {
                        m.insert("discriminator".into(), json!(d));
                    }
                    let fields: Map<String, Value> = u
                        .fields
                        .iter()
                        .map(|(j, g)| ((*j).to_string(), json!(g)))
                        .collect();
                    m.insert("fields-to-discriminateBy".into(), Value::Object(fields));
                    Value::Object(m)
                })
                .collect();
            out.insert("x-kubernetes-unions".into(), Value::Array(unions));
        }
    }
    let gvks: Vec<Value> = schema::kinds_of_type(name)
        .map(|k| json!({"group": k.group, "kind": k.kind, "version": k.version}))
        .collect();
    if !gvks.is_empty() {
        out.insert("x-kubernetes-group-version-kind".into(), Value::Array(gvks));
    }
    rewrite_refs(&mut out, flavor);
    order(Value::Object(out))
}

/// One property: the field's extensions, default and enum, and the same for each level of
/// its items or values.
fn render_property(raw: &Value, def: Option<&FieldDef>, flavor: Flavor) -> Value {
    let mut p = raw.as_object().cloned().unwrap_or_default();
    let Some(def) = def else {
        return wrap(p, flavor);
    };
    if flavor == Flavor::V3 {
        if let Some(d) = def
            .default
            .and_then(|d| serde_json::from_str::<Value>(d).ok())
        {
            p.insert("default".into(), d);
        }
    }
    if let Some(e) = def.enum_type.and_then(schema::enum_def) {
        if def.enum_level == 0 {
            let lines: Vec<&str> = e.values.iter().map(|v| v.1).collect();
            let desc = p.get("description").and_then(Value::as_str).unwrap_or("");
            let text = if desc.is_empty() {
                format!("Possible enum values:\n{}", lines.join("\n"))
            } else {
                format!("{desc}\n\nPossible enum values:\n{}", lines.join("\n"))
            };
            p.insert("description".into(), json!(text));
        }
    }
    let mut level = 0usize;
    let mut cur = &mut p;
    loop {
        if let Some(e) = def
            .enum_type
            .and_then(schema::enum_def)
            .filter(|_| usize::from(def.enum_level) == level)
        {
            let values: Vec<Value> = e.values.iter().map(|v| json!(v.0)).collect();
            cur.insert("enum".into(), Value::Array(values));
        }
        let key = if cur.contains_key("items") {
            "items"
        } else if cur
            .get("additionalProperties")
            .is_some_and(Value::is_object)
        {
            "additionalProperties"
        } else {
            break;
        };
        let Some(Value::Object(next)) = cur.get_mut(key) else {
            break;
        };
        if flavor == Flavor::V3 {
            if let Some(d) = def
                .item_defaults
                .get(level)
                .copied()
                .flatten()
                .and_then(|d| serde_json::from_str(d).ok())
            {
                next.insert("default".into(), d);
            }
        }
        level += 1;
        cur = next;
    }
    extend(&mut p, def);
    wrap_nested(&mut p, flavor);
    wrap(p, flavor)
}

fn extend(p: &mut Map<String, Value>, def: &FieldDef) {
    if let Some(s) = def.patch_strategy {
        p.insert("x-kubernetes-patch-strategy".into(), json!(s.as_str()));
    }
    if let Some(k) = def.merge_key {
        p.insert("x-kubernetes-patch-merge-key".into(), json!(k));
    }
    if let Some(t) = def.list_type {
        p.insert("x-kubernetes-list-type".into(), json!(t.as_str()));
    }
    if !def.list_map_keys.is_empty() {
        p.insert(
            "x-kubernetes-list-map-keys".into(),
            json!(def.list_map_keys),
        );
    }
    if let Some(t) = def.map_type {
        p.insert("x-kubernetes-map-type".into(), json!(t.as_str()));
    }
    for (k, v) in def.extensions {
        p.insert((*k).into(), serde_json::from_str(v).unwrap_or(Value::Null));
    }
}

/// Version 3 moves a `$ref` that has siblings into `allOf`.
fn wrap(mut p: Map<String, Value>, flavor: Flavor) -> Value {
    if flavor == Flavor::V3 && p.len() > 1 {
        if let Some(r) = p.remove("$ref") {
            p.insert("allOf".into(), json!([{"$ref": r}]));
        }
    }
    Value::Object(p)
}

fn wrap_nested(p: &mut Map<String, Value>, flavor: Flavor) {
    for key in ["items", "additionalProperties"] {
        if let Some(Value::Object(inner)) = p.get_mut(key) {
            wrap_nested(inner, flavor);
            let taken = std::mem::take(inner);
            p.insert(key.into(), wrap(taken, flavor));
        }
    }
}

fn rewrite_refs(m: &mut Map<String, Value>, flavor: Flavor) {
    for (k, v) in m.iter_mut() {
        match v {
            Value::String(s) if k == "$ref" => {
                if let Some(name) = s.strip_prefix(RAW_PREFIX) {
                    *s = format!("{}{name}", flavor.ref_prefix());
                }
            }
            Value::Object(inner) => rewrite_refs(inner, flavor),
            Value::Array(a) => {
                for x in a {
                    if let Value::Object(inner) = x {
                        rewrite_refs(inner, flavor);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The order in which Kubernetes writes a schema's keywords; extensions follow, sorted.
const KEYWORD_ORDER: &[&str] = &[
    "id",
    "description",
    "type",
    "nullable",
    "format",
    "title",
    "default",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "enum",
    "maxProperties",
    "minProperties",
    "required",
    "items",
    "allOf",
    "oneOf",
    "anyOf",
    "not",
    "properties",
    "additionalProperties",
    "patternProperties",
    "dependencies",
    "additionalItems",
    "definitions",
    "discriminator",
    "readOnly",
    "externalDocs",
    "example",
    "$schema",
    "$ref",
];

/// Puts a schema's keys in Kubernetes' order, recursively (property names sorted).
pub(super) fn order(v: Value) -> Value {
    match v {
        Value::Object(mut m) => {
            let mut out = Map::new();
            for key in KEYWORD_ORDER {
                if let Some(v) = m.remove(*key) {
                    let v = match *key {
                        "properties" | "patternProperties" | "definitions" => sorted_map(v),
                        "items" | "additionalProperties" | "not" => order(v),
                        "allOf" | "oneOf" | "anyOf" => match v {
                            Value::Array(a) => Value::Array(a.into_iter().map(order).collect()),
                            other => other,
                        },
                        _ => v,
                    };
                    out.insert((*key).to_string(), v);
                }
            }
            let mut rest: Vec<(String, Value)> = m.into_iter().collect();
            rest.sort_by(|a, b| a.0.cmp(&b.0));
            out.extend(rest);
            Value::Object(out)
        }
        other => other,
    }
}

fn sorted_map(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, order(v))).collect())
        }
        other => other,
    }
}
