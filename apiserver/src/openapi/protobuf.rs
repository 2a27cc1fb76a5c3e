//! The version 2 document as protobuf: gnostic's `openapi.v2.Document`
//! (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`), which `kubectl explain
//! --output=plaintext-openapiv2` and kubectl's fallbacks read.
//!
//! The message is built from the JSON document the way gnostic compiles one: objects keep
//! their key order, `x-` keys become vendor extensions and every value that gnostic holds
//! as `Any` (extensions, enum values, defaults) is carried as YAML text.

use serde_json::{Map, Value};

/// A protobuf message being written: fields must be added in field-number order.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn tag(&mut self, field: u32, wire: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire));
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.tag(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    /// A proto3 string: omitted when empty.
    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn string_at(&mut self, field: u32, v: &Map<String, Value>, key: &str) {
        if let Some(s) = v.get(key).and_then(Value::as_str) {
            self.string(field, s);
        }
    }

    fn strings_at(&mut self, field: u32, v: &Map<String, Value>, key: &str) {
        for s in v
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            self.bytes(field, s.as_bytes());
        }
    }

    /// A proto3 bool: omitted when false.
    fn bool_at(&mut self, field: u32, v: &Map<String, Value>, key: &str) {
        if v.get(key).and_then(Value::as_bool) == Some(true) {
            self.tag(field, 0);
            self.varint(1);
        }
    }

    fn int_at(&mut self, field: u32, v: &Map<String, Value>, key: &str) {
        if let Some(n) = v.get(key).and_then(Value::as_i64).filter(|n| *n != 0) {
            self.tag(field, 0);
            self.varint(n as u64);
        }
    }

    fn double_at(&mut self, field: u32, v: &Map<String, Value>, key: &str) {
        if let Some(n) = v.get(key).and_then(Value::as_f64).filter(|n| *n != 0.0) {
            self.tag(field, 1);
            self.0.extend_from_slice(&n.to_le_bytes());
        }
    }

    fn message(&mut self, field: u32, m: Msg) {
        self.bytes(field, &m.0);
    }
}

fn obj(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// Encodes the JSON version 2 document; empty if it is not JSON.
pub(super) fn encode_v2(json: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<Value>(json) {
        Ok(v) => document(&obj(&v)).0,
        Err(_) => Vec::new(),
    }
}

fn document(v: &Map<String, Value>) -> Msg {
    let mut m = Msg::default();
    m.string_at(1, v, "swagger");
    if let Some(info) = v.get("info") {
        let info = obj(info);
        let mut i = Msg::default();
        i.string_at(1, &info, "title");
        i.string_at(2, &info, "version");
        i.string_at(3, &info, "description");
        m.message(2, i);
    }
    m.string_at(3, v, "host");
    m.string_at(4, v, "basePath");
    m.strings_at(5, v, "schemes");
    m.strings_at(6, v, "consumes");
    m.strings_at(7, v, "produces");
    if let Some(paths) = v.get("paths") {
        let mut p = Msg::default();
        let paths = obj(paths);
        vendor_extensions(&mut p, 1, &paths);
        for (name, item) in paths.iter().filter(|(k, _)| !k.starts_with("x-")) {
            p.message(2, named(name, path_item(&obj(item))));
        }
        m.message(8, p);
    }
    if let Some(defs) = v.get("definitions") {
        let mut d = Msg::default();
        for (name, s) in obj(defs) {
            d.message(1, named(&name, schema(&obj(&s))));
        }
        m.message(9, d);
    }
    if let Some(params) = v.get("parameters") {
        let mut d = Msg::default();
        for (name, p) in obj(params) {
            d.message(1, named(&name, parameter(&obj(&p))));
        }
        m.message(10, d);
    }
    for req in v
        .get("security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut r = Msg::default();
        for (name, scopes) in obj(req) {
            let mut a = Msg::default();
            for s in scopes
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                a.bytes(1, s.as_bytes());
            }
            r.message(1, named(&name, a));
        }
        m.message(12, r);
    }
    if let Some(defs) = v.get("securityDefinitions") {
        let mut d = Msg::default();
        for (name, def) in obj(defs) {
            let def = obj(&def);
            let mut item = Msg::default();
            if def.get("type").and_then(Value::as_str) == Some("apiKey") {
                let mut k = Msg::default();
                k.string_at(1, &def, "type");
                k.string_at(2, &def, "name");
                k.string_at(3, &def, "in");
                k.string_at(4, &def, "description");
                vendor_extensions(&mut k, 5, &def);
                item.message(2, k);
            } else {
                let mut b = Msg::default();
                b.string_at(1, &def, "type");
                b.string_at(2, &def, "description");
                vendor_extensions(&mut b, 3, &def);
                item.message(1, b);
            }
            d.message(1, named(&name, item));
        }
        m.message(13, d);
    }
    vendor_extensions(&mut m, 16, v);
    m
}

/// A `Named*` message: name = 1, value = 2.
fn named(name: &str, value: Msg) -> Msg {
    let mut m = Msg::default();
    m.string(1, name);
    m.message(2, value);
    m
}

fn vendor_extensions(m: &mut Msg, field: u32, v: &Map<String, Value>) {
    for (k, x) in v.iter().filter(|(k, _)| k.starts_with("x-")) {
        m.message(field, named(k, any(x)));
    }
}

/// gnostic's `Any`: the value as YAML (field 2).
fn any(v: &Value) -> Msg {
    let mut m = Msg::default();
    m.string(2, &yaml(v));
    m
}

fn path_item(v: &Map<String, Value>) -> Msg {
    let mut m = Msg::default();
    m.string_at(1, v, "$ref");
    for (field, method) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        if let Some(op) = v.get(method) {
            m.message(field, operation(&obj(op)));
        }
    }
    for p in v
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(9, parameters_item(&obj(p)));
    }
    vendor_extensions(&mut m, 10, v);
    m
}

fn operation(v: &Map<String, Value>) -> Msg {
    let mut m = Msg::default();
    m.strings_at(1, v, "tags");
    m.string_at(2, v, "summary");
    m.string_at(3, v, "description");
    m.string_at(5, v, "operationId");
    m.strings_at(6, v, "produces");
    m.strings_at(7, v, "consumes");
    for p in v
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(8, parameters_item(&obj(p)));
    }
    if let Some(responses) = v.get("responses") {
        let responses = obj(responses);
        let mut r = Msg::default();
        for (code, resp) in responses.iter().filter(|(k, _)| !k.starts_with("x-")) {
            let resp = obj(resp);
            let mut value = Msg::default();
            if let Some(reference) = resp.get("$ref").and_then(Value::as_str) {
                let mut j = Msg::default();
                j.string(1, reference);
                value.message(2, j);
            } else {
                let mut body = Msg::default();
                body.string_at(1, &resp, "description");
                if let Some(s) = resp.get("schema") {
                    let mut item = Msg::default();
                    item.message(1, schema(&obj(s)));
                    body.message(2, item);
                }
                vendor_extensions(&mut body, 5, &resp);
                value.message(1, body);
            }
            r.message(1, named(code, value));
        }
        vendor_extensions(&mut r, 2, &responses);
        m.message(9, r);
    }
    m.strings_at(10, v, "schemes");
    m.bool_at(11, v, "deprecated");
    vendor_extensions(&mut m, 13, v);
    m
}

fn parameters_item(v: &Map<String, Value>) -> Msg {
    let mut m = Msg::default();
    if let Some(reference) = v.get("$ref").and_then(Value::as_str) {
        let mut j = Msg::default();
        j.string(1, reference);
        m.message(2, j);
    } else {
        m.message(1, parameter(v));
    }
    m
}

fn parameter(v: &Map<String, Value>) -> Msg {
    let mut m = Msg::default();
    let location = v.get("in").and_then(Value::as_str).unwrap_or("");
    if location == "body" {
        let mut b = Msg::default();
        b.string_at(1, v, "description");
        b.string_at(2, v, "name");
        b.string_at(3, v, "in");
        b.bool_at(4, v, "required");
        if let Some(s) = v.get("schema") {
            b.message(5, schema(&obj(s)));
        }
        vendor_extensions(&mut b, 6, v);
        m.message(1, b);
        return m;
    }
    // Query and formData sub-schemas carry allowEmptyValue (5), shifting what follows.
    let (oneof, shift) = match location {
        "header" => (1, 0),
        "formData" => (2, 1),
        "query" => (3, 1),
        _ => (4, 0),
    };
    let mut s = Msg::default();
    s.bool_at(1, v, "required");
    s.string_at(2, v, "in");
    s.string_at(3, v, "description");
    s.string_at(4, v, "name");
    if shift == 1 {
        s.bool_at(5, v, "allowEmptyValue");
    }
    s.string_at(5 + shift, v, "type");
    s.string_at(6 + shift, v, "format");
    s.string_at(8 + shift, v, "collectionFormat");
    if let Some(d) = v.get("default") {
        s.message(9 + shift, any(d));
    }
    s.double_at(10 + shift, v, "maximum");
    s.bool_at(11 + shift, v, "exclusiveMaximum");
    s.double_at(12 + shift, v, "minimum");
    s.bool_at(13 + shift, v, "exclusiveMinimum");
    s.int_at(14 + shift, v, "maxLength");
    s.int_at(15 + shift, v, "minLength");
    s.string_at(16 + shift, v, "pattern");
    s.int_at(17 + shift, v, "maxItems");
    s.int_at(18 + shift, v, "minItems");
    s.bool_at(19 + shift, v, "uniqueItems");
    for e in v
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        s.message(20 + shift, any(e));
    }
    s.double_at(21 + shift, v, "multipleOf");
    vendor_extensions(&mut s, 22 + shift, v);
    let mut non_body = Msg::default();
    non_body.message(oneof, s);
    m.message(2, non_body);
    m
}

fn schema(v: &Map<String, Value>) -> Msg {
    let mut m = Msg::default();
    m.string_at(1, v, "$ref");
    m.string_at(2, v, "format");
    m.string_at(3, v, "title");
    m.string_at(4, v, "description");
    if let Some(d) = v.get("default") {
        m.message(5, any(d));
    }
    m.double_at(6, v, "multipleOf");
    m.double_at(7, v, "maximum");
    m.bool_at(8, v, "exclusiveMaximum");
    m.double_at(9, v, "minimum");
    m.bool_at(10, v, "exclusiveMinimum");
    m.int_at(11, v, "maxLength");
    m.int_at(12, v, "minLength");
    m.string_at(13, v, "pattern");
    m.int_at(14, v, "maxItems");
    m.int_at(15, v, "minItems");
    m.bool_at(16, v, "uniqueItems");
    m.int_at(17, v, "maxProperties");
    m.int_at(18, v, "minProperties");
    m.strings_at(19, v, "required");
    for e in v
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(20, any(e));
    }
    if let Some(ap) = v.get("additionalProperties") {
        let mut a = Msg::default();
        match ap {
            Value::Bool(b) => {
                a.tag(2, 0);
                a.varint(u64::from(*b));
            }
            other => a.message(1, schema(&obj(other))),
        }
        m.message(21, a);
    }
    match v.get("type") {
        Some(Value::String(t)) => {
            let mut t_msg = Msg::default();
            t_msg.string(1, t);
            m.message(22, t_msg);
        }
        Some(Value::Array(ts)) => {
            let mut t_msg = Msg::default();
            for t in ts.iter().filter_map(Value::as_str) {
                t_msg.bytes(1, t.as_bytes());
            }
            m.message(22, t_msg);
        }
        _ => {}
    }
    match v.get("items") {
        Some(Value::Array(items)) => {
            let mut i = Msg::default();
            for s in items {
                i.message(1, schema(&obj(s)));
            }
            m.message(23, i);
        }
        Some(s @ Value::Object(_)) => {
            let mut i = Msg::default();
            i.message(1, schema(&obj(s)));
            m.message(23, i);
        }
        _ => {}
    }
    for s in v
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(24, schema(&obj(s)));
    }
    if let Some(props) = v.get("properties") {
        let mut p = Msg::default();
        for (name, s) in obj(props) {
            p.message(1, named(&name, schema(&obj(&s))));
        }
        m.message(25, p);
    }
    m.string_at(26, v, "discriminator");
    m.bool_at(27, v, "readOnly");
    if let Some(e) = v.get("example") {
        m.message(30, any(e));
    }
    vendor_extensions(&mut m, 31, v);
    m
}

/// YAML as gnostic writes an `Any`: block style, two-space indentation, plain scalars
/// unless YAML would read them as something else.
pub(super) fn yaml(v: &Value) -> String {
    let mut out = String::new();
    yaml_into(v, 0, &mut out);
    out
}

fn yaml_into(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                out.push_str(&pad);
                out.push_str("- ");
                let mut inner = String::new();
                yaml_into(item, indent + 2, &mut inner);
                // The first line of the item follows the dash.
                out.push_str(inner.trim_start_matches(' '));
            }
        }
        Value::Array(_) => {
            out.push_str(&pad);
            out.push_str("[]\n");
        }
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                out.push_str(&pad);
                out.push_str(&scalar(k));
                match x {
                    Value::Object(inner) if !inner.is_empty() => {
                        out.push_str(":\n");
                        yaml_into(x, indent + 2, out);
                    }
                    Value::Array(inner) if !inner.is_empty() => {
                        out.push_str(":\n");
                        yaml_into(x, indent + 2, out);
                    }
                    _ => {
                        out.push_str(": ");
                        let mut inner = String::new();
                        yaml_into(x, 0, &mut inner);
                        out.push_str(&inner);
                    }
                }
            }
        }
        Value::Object(_) => {
            out.push_str(&pad);
            out.push_str("{}\n");
        }
        Value::String(s) => {
            out.push_str(&pad);
            out.push_str(&scalar(s));
            out.push('\n');
        }
        Value::Null => {
            out.push_str(&pad);
            out.push_str("null\n");
        }
        other => {
            out.push_str(&pad);
            out.push_str(&other.to_string());
            out.push('\n');
        }
    }
}

/// A string scalar, quoted when plain YAML would change or lose it.
fn scalar(s: &str) -> String {
    if s.is_empty() {
        return "\"\"".into();
    }
    if s.chars().any(|c| c.is_control()) {
        return serde_json::to_string(s).unwrap_or_default();
    }
    const WORDS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false",
        "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~",
        ".inf", ".Inf", ".INF", "-.inf", "+.inf", ".nan", ".NaN", ".NAN",
    ];
    let first = s.chars().next().unwrap_or(' ');
    let numeric = s.parse::<f64>().is_ok()
        || (s.starts_with("0x") && s.len() > 2)
        || (s.starts_with("0o") && s.len() > 2);
    let needs = WORDS.contains(&s)
        || numeric
        || "-?:,[]{}#&*!|>'\"%@`".contains(first)
        || s.contains(": ")
        || s.contains(" #")
        || s.ends_with(':')
        || s.starts_with(' ')
        || s.ends_with(' ');
    if needs {
        format!("'{}'", s.replace('\'', "''"))
    } else {
        s.to_string()
    }
}
