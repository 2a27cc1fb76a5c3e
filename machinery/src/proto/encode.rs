//! API JSON -> protobuf message bytes, driven by the message table.
//!
//! Fields are written in tag order. Fields Go always writes (non-pointer values) are
//! written with their zero value when the JSON lacks them, so the bytes match upstream's.
//! JSON members with no field are dropped.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::ProtoError;
use super::descriptor::{self, Card, Field, Presence, Special, Ty};
use super::wire::{self, FIXED64, VARINT};

type Result<T> = std::result::Result<T, ProtoError>;

/// Go's zero `metav1.Time` (0001-01-01T00:00:00Z), encoded as an empty message.
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// Appends message `id`'s fields, read from `value`, to `out`. `path` names `value` for
/// error messages.
pub(super) fn message(out: &mut Vec<u8>, id: u16, value: &Value, path: &mut String) -> Result<()> {
    let msg = descriptor::message(id);
    match msg.special {
        Special::None => match value {
            Value::Object(obj) => fields(out, msg.fields, Some(obj), path),
            Value::Null => fields(out, msg.fields, None, path),
            _ => Err(invalid(path, "an object")),
        },
        special => self::special(out, id, special, value, path),
    }
}

fn fields(
    out: &mut Vec<u8>,
    fields: &[Field],
    obj: Option<&Map<String, Value>>,
    path: &mut String,
) -> Result<()> {
    for f in fields {
        if f.presence == Presence::Inline {
            let Ty::Message(id) = f.ty else {
                continue;
            };
            let sub = descriptor::message(id);
            wire::put_nested(out, f.tag, |o| self::fields(o, sub.fields, obj, path))?;
            continue;
        }
        let value = obj.and_then(|o| o.get(f.json)).filter(|v| !v.is_null());
        let len = path.len();
        path.push('.');
        path.push_str(f.json);
        let r = match (f.card, value) {
            (Card::One, Some(v)) => one(out, f.tag, f.ty, v, path),
            (Card::One, None) if f.presence == Presence::Always => {
                one(out, f.tag, f.ty, &Value::Null, path)
            }
            (Card::Repeated, Some(Value::Array(items))) => items
                .iter()
                .try_for_each(|v| one(out, f.tag, f.ty, v, path)),
            (Card::Map, Some(Value::Object(entries))) => map(out, f.tag, f.ty, entries, path),
            (Card::Repeated, Some(_)) => Err(invalid(path, "an array")),
            (Card::Map, Some(_)) => Err(invalid(path, "an object")),
            _ => Ok(()),
        };
        path.truncate(len);
        r?;
    }
    Ok(())
}

/// Go writes map entries sorted by key, each with both key and value.
fn map(
    out: &mut Vec<u8>,
    tag: u32,
    ty: Ty,
    entries: &Map<String, Value>,
    path: &mut String,
) -> Result<()> {
    let mut keys: Vec<&String> = entries.keys().collect();
    keys.sort_unstable();
    for key in keys {
        wire::put_nested(out, tag, |o| {
            wire::put_bytes(o, 1, key.as_bytes());
            one(o, 2, ty, &entries[key.as_str()], path)
        })?;
    }
    Ok(())
}

/// Writes one value of type `ty` as field `tag`; JSON null writes the zero value.
fn one(out: &mut Vec<u8>, tag: u32, ty: Ty, v: &Value, path: &mut String) -> Result<()> {
    match ty {
        Ty::String => {
            let s = match v {
                Value::String(s) => s.as_str(),
                Value::Null => "",
                _ => return Err(invalid(path, "a string")),
            };
            wire::put_bytes(out, tag, s.as_bytes());
        }
        Ty::Bytes => {
            let bytes = match v {
                Value::String(s) => decode_base64(s).ok_or_else(|| invalid(path, "base64 data"))?,
                Value::Null => Vec::new(),
                _ => return Err(invalid(path, "base64 data")),
            };
            wire::put_bytes(out, tag, &bytes);
        }
        Ty::Bool => {
            let b = match v {
                Value::Bool(b) => *b,
                Value::Null => false,
                _ => return Err(invalid(path, "a boolean")),
            };
            wire::put_key(out, tag, VARINT);
            wire::put_varint(out, u64::from(b));
        }
        Ty::Int32 => {
            let n = match v {
                Value::Null => 0,
                _ => integer(v)
                    .and_then(|n| i32::try_from(n).ok())
                    .ok_or_else(|| invalid(path, "a 32-bit integer"))?,
            };
            wire::put_key(out, tag, VARINT);
            wire::put_varint(out, wire::int32_bits(n));
        }
        Ty::Int64 => {
            let n = match v {
                Value::Null => 0,
                _ => integer(v).ok_or_else(|| invalid(path, "a 64-bit integer"))?,
            };
            wire::put_key(out, tag, VARINT);
            wire::put_varint(out, n as u64);
        }
        Ty::Double => {
            let x = match v {
                Value::Null => 0.0,
                _ => v.as_f64().ok_or_else(|| invalid(path, "a number"))?,
            };
            wire::put_key(out, tag, FIXED64);
            out.extend_from_slice(&x.to_bits().to_le_bytes());
        }
        Ty::Message(id) => wire::put_nested(out, tag, |o| message(o, id, v, path))?,
    }
    Ok(())
}

fn special(
    out: &mut Vec<u8>,
    id: u16,
    special: Special,
    v: &Value,
    path: &mut String,
) -> Result<()> {
    let msg = descriptor::message(id);
    // the JSONSchemaProps message, for the SchemaOr* wrappers
    let schema = |tag| match msg.field(tag).map(|f| f.ty) {
        Some(Ty::Message(id)) => Ok(id),
        _ => Err(ProtoError::Malformed(
            "schema wrapper without a schema field",
        )),
    };
    match (special, v) {
        (Special::None, _) => unreachable!("plain messages are encoded field by field"),
        (Special::IntOrString, Value::String(s)) => {
            put_varint_field(out, 1, 1);
            put_varint_field(out, 2, 0);
            wire::put_bytes(out, 3, s.as_bytes());
        }
        (Special::IntOrString, Value::Null | Value::Number(_)) => {
            let n = match v {
                Value::Null => 0,
                _ => integer(v)
                    .and_then(|n| i32::try_from(n).ok())
                    .ok_or_else(|| invalid(path, "a 32-bit integer or a string"))?,
            };
            put_varint_field(out, 1, 0);
            put_varint_field(out, 2, wire::int32_bits(n));
            wire::put_bytes(out, 3, b"");
        }
        (Special::Quantity, Value::String(s)) => wire::put_bytes(out, 1, s.as_bytes()),
        (Special::Quantity, Value::Number(n)) => wire::put_bytes(out, 1, n.to_string().as_bytes()),
        (Special::Quantity, Value::Null) => wire::put_bytes(out, 1, b"0"),
        (Special::Time | Special::MicroTime, Value::String(s)) => {
            let ts: jiff::Timestamp = s.parse().map_err(|_| invalid(path, "an RFC 3339 time"))?;
            let seconds = ts.as_second();
            let nanos = if special == Special::MicroTime {
                ts.subsec_nanosecond() / 1000 * 1000
            } else {
                0
            };
            if seconds != GO_ZERO_TIME_SECONDS || nanos != 0 {
                put_varint_field(out, 1, seconds as u64);
                put_varint_field(out, 2, wire::int32_bits(nanos));
            }
        }
        (Special::Time | Special::MicroTime, Value::Null) => {}
        (Special::RawExtension | Special::RawJson, Value::Null) => {}
        (Special::RawExtension | Special::RawJson, v) => {
            let raw = serde_json::to_vec(v).map_err(|source| ProtoError::EmbeddedJson {
                path: path.clone(),
                source,
            })?;
            wire::put_bytes(out, 1, &raw);
        }
        (Special::SchemaOrArray, Value::Object(_)) => {
            wire::put_nested(out, 1, |o| message(o, schema(1)?, v, path))?
        }
        (Special::SchemaOrArray, Value::Array(items)) => {
            let id = schema(2)?;
            for item in items {
                wire::put_nested(out, 2, |o| message(o, id, item, path))?;
            }
        }
        (Special::SchemaOrBool, Value::Bool(b)) => put_varint_field(out, 1, u64::from(*b)),
        (Special::SchemaOrBool, Value::Null) => put_varint_field(out, 1, 0),
        (Special::SchemaOrBool, Value::Object(_)) => {
            put_varint_field(out, 1, 1);
            wire::put_nested(out, 2, |o| message(o, schema(2)?, v, path))?;
        }
        (Special::SchemaOrStringArray, Value::Object(_)) => {
            wire::put_nested(out, 1, |o| message(o, schema(1)?, v, path))?
        }
        (Special::SchemaOrStringArray | Special::StringList, Value::Array(items)) => {
            let tag = if special == Special::StringList { 1 } else { 2 };
            for item in items {
                one(out, tag, Ty::String, item, path)?;
            }
        }
        (
            Special::SchemaOrArray | Special::SchemaOrStringArray | Special::StringList,
            Value::Null,
        ) => {}
        (Special::IntOrString, _) => return Err(invalid(path, "an integer or a string")),
        (Special::Quantity, _) => return Err(invalid(path, "a quantity string")),
        (Special::Time | Special::MicroTime, _) => return Err(invalid(path, "an RFC 3339 time")),
        (Special::SchemaOrArray, _) => {
            return Err(invalid(path, "a schema or an array of schemas"));
        }
        (Special::SchemaOrBool, _) => return Err(invalid(path, "a schema or a boolean")),
        (Special::SchemaOrStringArray, _) => {
            return Err(invalid(path, "a schema or an array of strings"));
        }
        (Special::StringList, _) => return Err(invalid(path, "an array of strings")),
    }
    Ok(())
}

fn put_varint_field(out: &mut Vec<u8>, tag: u32, v: u64) {
    wire::put_key(out, tag, VARINT);
    wire::put_varint(out, v);
}

/// A JSON integer, or a float with no fractional part (as Go's JSON decoder accepts).
fn integer(v: &Value) -> Option<i64> {
    let n = v.as_number()?;
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    (f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64).then_some(f as i64)
}

/// Go decodes `[]byte` from standard base64 with padding; be lenient about the padding.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    STANDARD
        .decode(s)
        .or_else(|_| STANDARD_NO_PAD.decode(s))
        .ok()
}

fn invalid(path: &str, expected: &'static str) -> ProtoError {
    ProtoError::InvalidJson {
        path: if path.is_empty() {
            ".".to_owned()
        } else {
            path.to_owned()
        },
        expected,
    }
}
