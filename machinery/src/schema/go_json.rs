//! The first error Go's encoding/json reports when a request body's values do not fit the
//! Go types (`json: cannot unmarshal array into Go struct field ConfigMap.data of type
//! string`), found by walking the body with the schema table's Go type descriptors.

use serde_json::Value;

use super::type_def;

/// A Go type descriptor of [`super::FieldDef::go_type`]: `[]v1.Container=struct`.
#[derive(Clone, Copy)]
struct Desc<'a>(&'a str);

impl<'a> Desc<'a> {
    /// The type as Go prints it: `[]v1.Container`.
    fn name(self) -> &'a str {
        self.0.rsplit_once('=').map_or(self.0, |(n, _)| n)
    }

    /// The kind of the innermost value: `struct`, `string`, `int32`, `custom`, `bytes`...
    fn kind(self) -> &'a str {
        self.0.rsplit_once('=').map_or("", |(_, k)| k)
    }

    /// The element of a slice or map.
    fn elem(self) -> Option<(Desc<'a>, bool)> {
        if let Some(rest) = self.0.strip_prefix("[]")
            && self.kind() != "bytes"
        {
            return Some((Desc(rest), false));
        }
        let rest = self.0.strip_prefix("map[")?;
        let close = rest.find(']')?;
        Some((Desc(&rest[close + 1..]), true))
    }
}

struct Walk {
    /// JSON names of the struct fields from the root, as Go's error context keeps them.
    fields: Vec<String>,
}

fn value_word(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Null => "null",
    }
}

/// The first type error decoding `body` into the Go struct of `type_name` would report.
pub fn type_error(body: &Value, type_name: &str) -> Option<String> {
    let mut w = Walk { fields: Vec::new() };
    let Value::Object(_) = body else { return None };
    w.check_struct(body, type_name)
}

impl Walk {
    fn error(&self, value: &str, struct_name: &str, go_type: &str) -> String {
        if self.fields.is_empty() || struct_name.is_empty() {
            return format!("json: cannot unmarshal {value} into Go value of type {go_type}");
        }
        format!("json: cannot unmarshal {value} into Go struct field {struct_name}.{} of type {go_type}", self.fields.join("."))
    }

    fn check_struct(&mut self, v: &Value, type_name: &str) -> Option<String> {
        let def = type_def(type_name)?;
        let Value::Object(m) = v else { return None };
        let struct_name = type_name.rsplit('.').next().unwrap_or(type_name);
        for (key, val) in m {
            let Some(f) = def.field(key) else { continue };
            if f.go_type.is_empty() {
                continue;
            }
            self.fields.push(key.clone());
            let err = self.check(val, Desc(f.go_type), f.elem, struct_name);
            self.fields.pop();
            if err.is_some() {
                return err;
            }
        }
        None
    }

    fn check(&mut self, v: &Value, d: Desc<'_>, elem_type: Option<&str>, struct_name: &str) -> Option<String> {
        if v.is_null() || d.kind() == "custom" {
            return None;
        }
        if let Some((inner, is_map)) = d.elem() {
            let items: Box<dyn Iterator<Item = &Value>> = match (v, is_map) {
                (Value::Array(a), false) => Box::new(a.iter()),
                (Value::Object(m), true) => Box::new(m.values()),
                _ => return Some(self.error(value_word(v), struct_name, d.name())),
            };
            for item in items {
                if let Some(e) = self.check(item, inner, elem_type, struct_name) {
                    return Some(e);
                }
            }
            return None;
        }
        let ok = match d.kind() {
            "struct" => {
                if !v.is_object() {
                    return Some(self.error(value_word(v), struct_name, d.name()));
                }
                return elem_type.and_then(|t| self.check_struct(v, t));
            }
            "bytes" => v.is_string() || v.is_array(),
            "string" => v.is_string(),
            "bool" => v.is_boolean(),
            "float32" | "float64" => v.is_number(),
            k if k.starts_with("int") || k.starts_with("uint") => match v {
                Value::Number(n) => {
                    let fits = match k {
                        "int8" => n.as_i64().is_some_and(|i| i8::try_from(i).is_ok()),
                        "int16" => n.as_i64().is_some_and(|i| i16::try_from(i).is_ok()),
                        "int32" => n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
                        "int" | "int64" => n.as_i64().is_some(),
                        "uint8" => n.as_u64().is_some_and(|i| u8::try_from(i).is_ok()),
                        "uint16" => n.as_u64().is_some_and(|i| u16::try_from(i).is_ok()),
                        "uint32" => n.as_u64().is_some_and(|i| u32::try_from(i).is_ok()),
                        _ => n.as_u64().is_some(),
                    };
                    if !fits {
                        return Some(self.error(&format!("number {n}"), struct_name, d.name()));
                    }
                    true
                }
                _ => false,
            },
            _ => true,
        };
        (!ok).then(|| self.error(value_word(v), struct_name, d.name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_messages() {
        let cm = json!({"metadata": {"name": "x"}, "data": {"a": [1, 2]}});
        assert_eq!(
            type_error(&cm, "io.k8s.api.core.v1.ConfigMap").as_deref(),
            Some("json: cannot unmarshal array into Go struct field ConfigMap.data of type string")
        );
        let pod = json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": "80"}]}]}});
        assert_eq!(
            type_error(&pod, "io.k8s.api.core.v1.Pod").as_deref(),
            Some("json: cannot unmarshal string into Go struct field ContainerPort.spec.containers.ports.containerPort of type int32")
        );
        let d = json!({"spec": {"replicas": 1.5, "template": 3}});
        assert_eq!(
            type_error(&d, "io.k8s.api.apps.v1.Deployment").as_deref(),
            Some("json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32")
        );
        assert_eq!(type_error(&json!({"data": "x"}), "io.k8s.api.core.v1.ConfigMap").as_deref(),
            Some("json: cannot unmarshal string into Go struct field ConfigMap.data of type map[string]string"));
        assert!(type_error(&json!({"metadata": {"creationTimestamp": 5}, "data": {"a": "b"}}), "io.k8s.api.core.v1.ConfigMap").is_none());
    }
}
