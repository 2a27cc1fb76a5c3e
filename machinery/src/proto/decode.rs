//! Protobuf message bytes -> API JSON, driven by the message table.
//!
//! Unknown tags are skipped. A field Go always writes (a non-pointer value) is left out
//! of the JSON when it holds its zero value: Go cannot tell that from "unset" either, and
//! leaving it out keeps server-side defaulting working as for a JSON client that omitted
//! it. Fields Go writes only when set (pointers, slices, maps) keep zero values.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::descriptor::{self, Card, Field, Message, Presence, Special, Ty};
use super::wire::{self, Reader};
use super::{MAGIC, ProtoError};

type Result<T> = std::result::Result<T, ProtoError>;

/// How deeply messages may nest, as serde_json limits JSON nesting: the stack stays
/// bounded whatever a client sends.
const MAX_DEPTH: u32 = 128;

/// Decodes `k8s\0` + runtime.Unknown into the object's JSON.
pub(super) fn enveloped(bytes: &[u8]) -> Result<Value> {
    enveloped_at(bytes, 0)
}

fn enveloped_at(bytes: &[u8], depth: u32) -> Result<Value> {
    let unknown = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or(ProtoError::MissingMagic)?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    let mut r = Reader::new(unknown);
    while let Some((tag, value)) = r.field()? {
        match (tag, value) {
            (1, wire::Value::Bytes(type_meta)) => {
                let mut t = Reader::new(type_meta);
                while let Some((tag, value)) = t.field()? {
                    match (tag, value) {
                        (1, wire::Value::Bytes(b)) => api_version = utf8(b),
                        (2, wire::Value::Bytes(b)) => kind = utf8(b),
                        _ => {}
                    }
                }
            }
            (2, wire::Value::Bytes(b)) => raw = b,
            (3, wire::Value::Bytes(b)) if !b.is_empty() => {
                return Err(ProtoError::Malformed("contentEncoding is not supported"));
            }
            _ => {}
        }
    }
    if api_version.is_empty() || kind.is_empty() {
        return Err(ProtoError::MissingTypeMeta);
    }
    let id = descriptor::kind(&api_version, &kind).ok_or_else(|| ProtoError::UnsupportedKind {
        api_version: api_version.clone(),
        kind: kind.clone(),
    })?;
    let mut obj = Map::new();
    obj.insert("apiVersion".to_owned(), Value::String(api_version));
    obj.insert("kind".to_owned(), Value::String(kind));
    fields_into(descriptor::message(id), raw, &mut obj, depth)?;
    Ok(Value::Object(obj))
}

/// Decodes message `id` from `bytes`, nested `depth` messages deep.
fn message(id: u16, bytes: &[u8], depth: u32) -> Result<Value> {
    if depth >= MAX_DEPTH {
        return Err(ProtoError::Malformed("messages nested too deeply"));
    }
    let msg = descriptor::message(id);
    if msg.special != Special::None {
        return special(msg, bytes, depth + 1);
    }
    let mut obj = Map::new();
    fields_into(msg, bytes, &mut obj, depth + 1)?;
    Ok(Value::Object(obj))
}

/// What has been read for one field of a message.
enum Slot<'a> {
    Empty,
    One(Value),
    Many(Vec<Value>),
    Map(Map<String, Value>),
    Inline(Vec<&'a [u8]>),
}

/// Reads `msg`'s fields from `bytes` into `obj`, in tag order.
fn fields_into(
    msg: &'static Message,
    bytes: &[u8],
    obj: &mut Map<String, Value>,
    depth: u32,
) -> Result<()> {
    let mut slots: Vec<Slot> = msg.fields.iter().map(|_| Slot::Empty).collect();
    let mut r = Reader::new(bytes);
    while let Some((tag, value)) = r.field()? {
        let Ok(i) = msg.fields.binary_search_by_key(&tag, |f| f.tag) else {
            continue;
        };
        let f = &msg.fields[i];
        let bad = |reason| ProtoError::BadField {
            message: msg.name,
            tag,
            reason,
        };
        match (f.presence, f.card) {
            (Presence::Inline, _) => {
                let wire::Value::Bytes(b) = value else {
                    return Err(bad("an inlined message needs a length-delimited value"));
                };
                match &mut slots[i] {
                    Slot::Inline(parts) => parts.push(b),
                    slot => *slot = Slot::Inline(vec![b]),
                }
            }
            (_, Card::One) => {
                let v = scalar(f.ty, value, depth)
                    .map_err(|e| e.unwrap_or_else(|| bad("wrong wire type")))?;
                slots[i] = match (std::mem::replace(&mut slots[i], Slot::Empty), v) {
                    // a message field seen twice merges, as protobuf specifies
                    (Slot::One(Value::Object(mut a)), Value::Object(b)) => {
                        a.extend(b);
                        Slot::One(Value::Object(a))
                    }
                    (_, v) => Slot::One(v),
                };
            }
            (_, Card::Repeated) => {
                let items = match &mut slots[i] {
                    Slot::Many(items) => items,
                    slot => {
                        *slot = Slot::Many(Vec::new());
                        let Slot::Many(items) = slot else {
                            unreachable!()
                        };
                        items
                    }
                };
                match (f.ty, value) {
                    // packed numbers
                    (Ty::Bool | Ty::Int32 | Ty::Int64 | Ty::Double, wire::Value::Bytes(b)) => {
                        packed(f.ty, b, items).map_err(|_| bad("malformed packed values"))?
                    }
                    (ty, value) => items.push(
                        scalar(ty, value, depth)
                            .map_err(|e| e.unwrap_or_else(|| bad("wrong wire type")))?,
                    ),
                }
            }
            (_, Card::Map) => {
                let wire::Value::Bytes(entry) = value else {
                    return Err(bad("a map entry needs a length-delimited value"));
                };
                let (k, v) = map_entry(f, entry, depth)
                    .map_err(|e| e.unwrap_or_else(|| bad("malformed map entry")))?;
                match &mut slots[i] {
                    Slot::Map(m) => {
                        m.insert(k, v);
                    }
                    slot => *slot = Slot::Map(Map::from_iter([(k, v)])),
                }
            }
        }
    }
    for (f, slot) in msg.fields.iter().zip(slots) {
        match slot {
            Slot::Empty => {}
            Slot::One(v) => {
                if f.presence == Presence::WhenSet || !is_zero(f.ty, &v) {
                    obj.insert(f.json.to_owned(), v);
                }
            }
            Slot::Many(items) => {
                obj.insert(f.json.to_owned(), Value::Array(items));
            }
            Slot::Map(m) => {
                obj.insert(f.json.to_owned(), Value::Object(m));
            }
            Slot::Inline(parts) => {
                let Ty::Message(id) = f.ty else { continue };
                if depth >= MAX_DEPTH {
                    return Err(ProtoError::Malformed("messages nested too deeply"));
                }
                for part in parts {
                    fields_into(descriptor::message(id), part, obj, depth + 1)?;
                }
            }
        }
    }
    Ok(())
}

/// One value of type `ty`. `Err(None)` means the wire type does not fit the field.
fn scalar(
    ty: Ty,
    value: wire::Value,
    depth: u32,
) -> std::result::Result<Value, Option<ProtoError>> {
    Ok(match (ty, value) {
        (Ty::String, wire::Value::Bytes(b)) => Value::String(utf8(b)),
        (Ty::Bytes, wire::Value::Bytes(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        (Ty::Bool, wire::Value::Varint(v)) => Value::Bool(v != 0),
        (Ty::Int32, wire::Value::Varint(v)) => Value::from(v as i32),
        (Ty::Int64, wire::Value::Varint(v)) => Value::from(v as i64),
        (Ty::Double, wire::Value::Fixed64(v)) => double(f64::from_bits(v)),
        (Ty::Message(id), wire::Value::Bytes(b)) => message(id, b, depth).map_err(Some)?,
        _ => return Err(None),
    })
}

fn packed(ty: Ty, bytes: &[u8], items: &mut Vec<Value>) -> Result<()> {
    if ty == Ty::Double {
        if !bytes.len().is_multiple_of(8) {
            return Err(ProtoError::Malformed("packed doubles"));
        }
        for c in bytes.chunks_exact(8) {
            items.push(double(f64::from_le_bytes(c.try_into().expect("8 bytes"))));
        }
        return Ok(());
    }
    let mut r = Reader::new(bytes);
    while !r.at_end() {
        let v = r.varint()?;
        items.push(
            scalar(ty, wire::Value::Varint(v), 0)
                .map_err(|_| ProtoError::Malformed("packed values"))?,
        );
    }
    Ok(())
}

/// A map entry {key = 1, value = 2}; a missing value is the type's zero value.
fn map_entry(
    f: &Field,
    bytes: &[u8],
    depth: u32,
) -> std::result::Result<(String, Value), Option<ProtoError>> {
    let mut key = String::new();
    let mut value = None;
    let mut r = Reader::new(bytes);
    while let Some((tag, v)) = r.field().map_err(Some)? {
        match (tag, v) {
            (1, wire::Value::Bytes(b)) => key = utf8(b),
            (2, v) => value = Some(scalar(f.ty, v, depth)?),
            _ => {}
        }
    }
    let value = match value {
        Some(v) => v,
        None => match f.ty {
            Ty::String | Ty::Bytes => Value::String(String::new()),
            Ty::Message(id) => message(id, &[], depth).map_err(Some)?,
            Ty::Bool => Value::Bool(false),
            Ty::Int32 | Ty::Int64 | Ty::Double => Value::from(0),
        },
    };
    Ok((key, value))
}

/// Whether `v` is what Go writes for an unset non-pointer field of type `ty`.
fn is_zero(ty: Ty, v: &Value) -> bool {
    if let Ty::Message(id) = ty
        && descriptor::message(id).special == Special::Quantity
    {
        return v == "0";
    }
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

fn special(msg: &'static Message, bytes: &[u8], depth: u32) -> Result<Value> {
    // the fields of the wrapper, by tag: 1, 2 and 3 at most
    let mut first: [Option<wire::Value>; 3] = [None, None, None];
    let mut repeated: Vec<&[u8]> = Vec::new();
    let repeated_tag = match msg.special {
        Special::SchemaOrArray | Special::SchemaOrStringArray => 2,
        Special::StringList => 1,
        _ => 0,
    };
    let mut r = Reader::new(bytes);
    while let Some((tag, value)) = r.field()? {
        if tag == repeated_tag {
            if let wire::Value::Bytes(b) = value {
                repeated.push(b);
            }
        } else if (1..=3).contains(&tag) {
            first[tag as usize - 1] = Some(value);
        }
    }
    let bad = |reason| ProtoError::BadField {
        message: msg.name,
        tag: 0,
        reason,
    };
    let varint = |v: &Option<wire::Value>| match v {
        Some(wire::Value::Varint(n)) => *n,
        _ => 0,
    };
    let text = |v: &Option<wire::Value>| match v {
        Some(wire::Value::Bytes(b)) => Some(utf8(b)),
        _ => None,
    };
    let schema = |tag: u32, b: &[u8]| match msg.field(tag).map(|f| f.ty) {
        Some(Ty::Message(id)) => message(id, b, depth),
        _ => Err(bad("schema wrapper without a schema field")),
    };
    Ok(match msg.special {
        Special::None => unreachable!("plain messages are decoded field by field"),
        Special::IntOrString => {
            if varint(&first[0]) == 1 {
                Value::String(text(&first[2]).unwrap_or_default())
            } else {
                Value::from(varint(&first[1]) as i32)
            }
        }
        Special::Quantity => Value::String(text(&first[0]).unwrap_or_else(|| "0".to_owned())),
        Special::Time | Special::MicroTime => {
            if bytes.is_empty() {
                Value::Null
            } else {
                let seconds = varint(&first[0]) as i64;
                let micro =
                    (msg.special == Special::MicroTime).then(|| (varint(&first[1]) as i32) / 1000);
                Value::String(format_time(seconds, micro).ok_or_else(|| bad("time out of range"))?)
            }
        }
        Special::RawExtension | Special::RawJson => match &first[0] {
            Some(wire::Value::Bytes(raw)) if !raw.is_empty() => {
                if msg.special == Special::RawExtension && raw.starts_with(MAGIC) {
                    enveloped_at(raw, depth)?
                } else {
                    serde_json::from_slice(raw).map_err(|source| ProtoError::EmbeddedJson {
                        path: msg.name.to_owned(),
                        source,
                    })?
                }
            }
            _ => Value::Null,
        },
        Special::SchemaOrArray => {
            if !repeated.is_empty() {
                Value::Array(
                    repeated
                        .iter()
                        .map(|b| schema(2, b))
                        .collect::<Result<_>>()?,
                )
            } else if let Some(wire::Value::Bytes(b)) = &first[0] {
                schema(1, b)?
            } else {
                Value::Null
            }
        }
        Special::SchemaOrBool => match &first[1] {
            Some(wire::Value::Bytes(b)) => schema(2, b)?,
            _ => Value::Bool(varint(&first[0]) != 0),
        },
        Special::SchemaOrStringArray => {
            if !repeated.is_empty() {
                Value::Array(repeated.iter().map(|b| Value::String(utf8(b))).collect())
            } else if let Some(wire::Value::Bytes(b)) = &first[0] {
                schema(1, b)?
            } else {
                Value::Null
            }
        }
        Special::StringList => {
            Value::Array(repeated.iter().map(|b| Value::String(utf8(b))).collect())
        }
    })
}

/// RFC 3339 in UTC, whole seconds (metav1.Time) or with six fractional digits
/// (metav1.MicroTime), as Go formats them.
fn format_time(seconds: i64, micro: Option<i32>) -> Option<String> {
    let ts = jiff::Timestamp::from_second(seconds).ok()?;
    let base = ts.strftime("%Y-%m-%dT%H:%M:%S");
    Some(match micro {
        None => format!("{base}Z"),
        Some(us) => format!("{base}.{:06}Z", us.clamp(0, 999_999)),
    })
}

/// Go doubles that are whole numbers print without a fraction (`5`, not `5.0`).
fn double(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.007_199_254_740_992e15 {
        Value::from(x as i64)
    } else {
        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

/// Go strings are bytes; JSON needs UTF-8.
fn utf8(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
