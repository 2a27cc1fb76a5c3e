//! The `pod-template-hash` label, computed exactly as upstream's `controller.ComputeHash`:
//! FNV-32a over the template dumped by go-spew (`%#v` with sorted keys and no pointer
//! addresses, as `dump.ForHash` configures it), then the collision count as 8
//! little-endian bytes, the decimal sum re-spelt in `rand.SafeEncodeString`'s alphabet.
//!
//! The dump prints every Go field of `v1.PodTemplateSpec` in declaration order with its Go
//! type, so the Go type facts live in [`super::go_types`]. The template is the one an
//! informer decodes from protobuf: empty lists and maps are nil, quantities are re-parsed
//! from their canonical string (so their cached string and internal form follow). Non-zero
//! timestamps inside a template (never set in practice) are printed as UTC times, where Go
//! prints its local-zone pointer.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use ironkube_machinery::validation::quantity::Quantity;
use serde_json::Value;

use super::go_types::{NAMED, STRUCTS};

/// `rand.SafeEncodeString`'s alphabet (no vowels, no confusable characters).
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

type Fields = &'static [(&'static str, &'static str, &'static str)];

struct GoTypes {
    structs: HashMap<&'static str, Fields>,
    named: HashMap<&'static str, &'static str>,
}

fn types() -> &'static GoTypes {
    static TYPES: OnceLock<GoTypes> = OnceLock::new();
    TYPES.get_or_init(|| GoTypes { structs: STRUCTS.iter().copied().collect(), named: NAMED.iter().copied().collect() })
}

/// FNV-1a, 32 bits.
pub fn fnv32a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

/// `rand.SafeEncodeString`.
pub fn safe_encode(s: &str) -> String {
    s.chars().map(|c| char::from(ALPHANUMS[(c as usize) % ALPHANUMS.len()])).collect()
}

/// The pod-template-hash of `template` (a PodTemplateSpec as JSON) with the Deployment's
/// `status.collisionCount`.
pub fn compute_hash(template: &Value, collision_count: Option<i32>) -> String {
    let mut bytes = spew(template).into_bytes();
    if let Some(count) = collision_count {
        let mut extra = [0u8; 8];
        extra[..4].copy_from_slice(&(count as u32).to_le_bytes());
        bytes.extend_from_slice(&extra);
    }
    safe_encode(&fnv32a(&bytes).to_string())
}

/// The go-spew dump of a PodTemplateSpec that upstream hashes.
pub fn spew(template: &Value) -> String {
    let mut out = String::new();
    render(&mut out, "v1.PodTemplateSpec", Some(template), false);
    out
}

fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

/// Writes `(type)` unless the type is implied (slice elements, map entries, pointees).
fn type_prefix(out: &mut String, ty: &str, implied: bool) {
    if !implied {
        out.push('(');
        out.push_str(ty);
        out.push(')');
    }
}

fn render(out: &mut String, ty: &str, v: Option<&Value>, implied: bool) {
    let v = present(v);
    if let Some(elem) = ty.strip_prefix('*') {
        match v {
            None if implied => out.push_str("<nil>"),
            None => {
                type_prefix(out, ty, false);
                out.push_str("<nil>");
            }
            Some(v) => {
                if implied {
                    out.push_str("<*>");
                } else {
                    type_prefix(out, ty, false);
                }
                render(out, elem, Some(v), true);
            }
        }
        return;
    }
    match ty {
        "resource.Quantity" => return render_quantity(out, v, implied),
        "v1.Time" => return render_time(out, v, implied),
        "intstr.IntOrString" => return render_int_or_string(out, v, implied),
        _ => {}
    }
    if ty.starts_with("[]") || ty.starts_with("map[") {
        return render_composite(out, ty, ty, v, implied);
    }
    let go = types();
    if let Some(fields) = go.structs.get(ty) {
        type_prefix(out, ty, implied);
        out.push('{');
        for (i, (name, json, field_ty)) in fields.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(name);
            out.push(':');
            let field = match *json {
                "" => v,
                "-" => None,
                key => v.and_then(|o| o.get(key)),
            };
            render(out, field_ty, field, false);
        }
        out.push('}');
        return;
    }
    let underlying = go.named.get(ty).copied().unwrap_or(ty);
    if underlying.starts_with("[]") || underlying.starts_with("map[") {
        return render_composite(out, ty, underlying, v, implied);
    }
    type_prefix(out, ty, implied);
    render_basic(out, underlying, v);
}

fn render_basic(out: &mut String, kind: &str, v: Option<&Value>) {
    match kind {
        "string" => out.push_str(v.and_then(Value::as_str).unwrap_or("")),
        "bool" => out.push_str(if v.and_then(Value::as_bool).unwrap_or(false) { "true" } else { "false" }),
        _ => {
            let n = v.and_then(|v| v.as_i64().or_else(|| v.as_u64().map(|u| u as i64))).unwrap_or(0);
            let _ = write!(out, "{n}");
        }
    }
}

/// Slices and maps: `shown` is the type printed, `underlying` its structure.
fn render_composite(out: &mut String, shown: &str, underlying: &str, v: Option<&Value>, implied: bool) {
    type_prefix(out, shown, implied);
    if let Some(elem) = underlying.strip_prefix("[]") {
        let Some(items) = v.and_then(Value::as_array).filter(|a| !a.is_empty()) else {
            out.push_str("<nil>");
            return;
        };
        out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            render(out, elem, Some(item), true);
        }
        out.push(']');
        return;
    }
    // map[K]V with a string-like K.
    let inner = &underlying["map[".len()..];
    let Some(close) = inner.find(']') else {
        out.push_str("<nil>");
        return;
    };
    let value_ty = &inner[close + 1..];
    let Some(entries) = v.and_then(Value::as_object).filter(|m| !m.is_empty()) else {
        out.push_str("<nil>");
        return;
    };
    let mut keys: Vec<&String> = entries.keys().collect();
    keys.sort();
    out.push_str("map[");
    for (i, key) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(key);
        out.push(':');
        render(out, value_ty, entries.get(key), true);
    }
    out.push(']');
}

fn render_time(out: &mut String, v: Option<&Value>, implied: bool) {
    let (wall, ext) = match v.and_then(Value::as_str).and_then(|s| s.parse::<jiff::Timestamp>().ok()) {
        // Go's wall/ext encoding without a monotonic reading: nanoseconds and seconds
        // since year 1.
        Some(t) => (i64::from(t.subsec_nanosecond()), t.as_second() + 62_135_596_800),
        None => (0, 0),
    };
    type_prefix(out, "v1.Time", implied);
    let _ = write!(out, "{{Time:(time.Time){{wall:(uint64){wall} ext:(int64){ext} loc:(*time.Location)<nil>}}}}");
}

fn render_int_or_string(out: &mut String, v: Option<&Value>, implied: bool) {
    type_prefix(out, "intstr.IntOrString", implied);
    match v {
        Some(Value::String(s)) => {
            let _ = write!(out, "{{Type:(intstr.Type)1 IntVal:(int32)0 StrVal:(string){s}}}");
        }
        other => {
            let n = other.and_then(Value::as_i64).unwrap_or(0);
            let _ = write!(out, "{{Type:(intstr.Type)0 IntVal:(int32){n} StrVal:(string)}}");
        }
    }
}

/// A `resource.Quantity` as Go holds it after `ParseQuantity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoQuantity {
    pub value: i64,
    pub scale: i32,
    /// `inf.Dec` for values the int64 form cannot hold: (negative, unscaled, scale).
    pub dec: Option<(bool, u128, i32)>,
    /// The cached string (only kept for some canonical inputs).
    pub cached: String,
    pub format: &'static str,
}

/// (base, exponent, format) of a quantity suffix (upstream's `quantitySuffixer`).
fn interpret_suffix(suffix: &str) -> Option<(u32, i32, &'static str)> {
    let decimal = |e| Some((10, e, "DecimalSI"));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => Some((2, 10, "BinarySI")),
        "Mi" => Some((2, 20, "BinarySI")),
        "Gi" => Some((2, 30, "BinarySI")),
        "Ti" => Some((2, 40, "BinarySI")),
        "Pi" => Some((2, 50, "BinarySI")),
        "Ei" => Some((2, 60, "BinarySI")),
        s if s.starts_with('e') || s.starts_with('E') => s[1..].parse().ok().map(|e| (10, e, "DecimalExponent")),
        _ => None,
    }
}

/// Upstream's `ParseQuantity` on a canonical quantity string.
pub fn go_parse_quantity(s: &str) -> Option<GoQuantity> {
    if s == "0" {
        return Some(GoQuantity { value: 0, scale: 0, dec: None, cached: "0".into(), format: "DecimalSI" });
    }
    let (positive, rest) = match s.as_bytes().first()? {
        b'-' => (false, &s[1..]),
        b'+' => (true, &s[1..]),
        _ => (true, s),
    };
    let digits_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let mut num = rest[..digits_end].trim_start_matches('0');
    if num.is_empty() {
        num = "0";
    }
    let mut after = &rest[digits_end..];
    let mut denom = "";
    if let Some(d) = after.strip_prefix('.') {
        let end = d.find(|c: char| !c.is_ascii_digit()).unwrap_or(d.len());
        denom = &d[..end];
        after = &d[end..];
    }
    let (base, exponent, mut format) = interpret_suffix(after)?;
    let (mut scale, precision, mantissa): (i32, i32, i64) = if base == 10 {
        (exponent, 18 - (num.len() + denom.len()) as i32, 1)
    } else if exponent >= 0 && denom.is_empty() {
        (0, 15 - num.len() as i32 - exponent * 3 / 10 - 1, 1i64 << exponent)
    } else {
        (0, -1, 1)
    };
    if precision >= 0 {
        scale -= denom.len() as i32;
        if scale >= -9 {
            let shifted = format!("{num}{denom}");
            let value: i64 = shifted.parse().ok()?;
            if let Some(mut result) = value.checked_mul(mantissa) {
                if !positive {
                    result = -result;
                }
                let keep = if base == 2 {
                    exponent % 10 == 0 && value & 7 != 0
                } else {
                    scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0')
                };
                let cached = if keep { s.to_string() } else { String::new() };
                return Some(GoQuantity { value: result, scale, dec: None, cached, format });
            }
        }
    }
    // The inf.Dec path.
    let mut unscaled: u128 = format!("{num}{denom}").parse().ok()?;
    let mut dec_scale = denom.len() as i32;
    if base == 10 {
        dec_scale -= exponent;
    } else {
        unscaled = unscaled.checked_mul(1u128.checked_shl(exponent as u32)?)?;
    }
    if unscaled != 0 {
        if dec_scale < 9 {
            unscaled = unscaled.checked_mul(10u128.checked_pow((9 - dec_scale) as u32)?)?;
        } else if dec_scale > 9 {
            let div = 10u128.checked_pow((dec_scale - 9) as u32)?;
            unscaled = unscaled.div_ceil(div);
        }
        dec_scale = 9;
    }
    let max_allowed = (i64::MAX as u128) * 1_000_000_000;
    if base == 2 && dec_scale == 9 && unscaled > max_allowed {
        unscaled = i64::MAX as u128;
        dec_scale = 0;
    }
    if format == "BinarySI" && dec_scale == 9 && unscaled < 1_000_000_000 && unscaled > 0 {
        format = "DecimalSI";
    }
    Some(GoQuantity { value: 0, scale: 0, dec: Some((!positive, unscaled, dec_scale)), cached: String::new(), format })
}

fn render_quantity(out: &mut String, v: Option<&Value>, implied: bool) {
    // Informers decode the canonical string the API server serializes; a missing
    // (non-pointer) quantity serializes as "0".
    let canonical = match v {
        Some(Value::String(s)) => Quantity::parse(s).map(|q| q.to_string()).unwrap_or_else(|_| s.clone()),
        Some(Value::Number(n)) => Quantity::parse(&n.to_string()).map(|q| q.to_string()).unwrap_or_else(|_| n.to_string()),
        _ => "0".to_string(),
    };
    let q = go_parse_quantity(&canonical).unwrap_or(GoQuantity { value: 0, scale: 0, dec: None, cached: String::new(), format: "" });
    type_prefix(out, "resource.Quantity", implied);
    let _ = write!(out, "{{i:(resource.int64Amount){{value:(int64){} scale:(resource.Scale){}}} d:(resource.infDecAmount){{Dec:", q.value, q.scale);
    match q.dec {
        None => out.push_str("(*inf.Dec)<nil>"),
        Some((neg, unscaled, scale)) => {
            let (lo, hi) = (unscaled as u64, (unscaled >> 64) as u64);
            let words = if hi > 0 { format!("[{lo} {hi}]") } else { format!("[{lo}]") };
            let _ = write!(out, "(*inf.Dec){{unscaled:(big.Int){{neg:(bool){neg} abs:(big.nat){words}}} scale:(inf.Scale){scale}}}");
        }
    }
    let _ = write!(out, "}} s:(string){} Format:(resource.Format){}}}", q.cached, q.format);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Hashes recorded from upstream's `controller.ComputeHash` (k8s.io/kubernetes v1.33.13)
    /// after a protobuf round trip of each template, as an informer would see it.
    const GOLDEN: &str = include_str!("testdata/template_hash.json");

    #[test]
    fn hashes_match_upstream() {
        let cases: Vec<Value> = serde_json::from_str(GOLDEN).expect("golden file parses");
        assert!(cases.len() >= 8);
        for case in cases {
            let name = case["name"].as_str().unwrap_or("?");
            let count = case["collisionCount"].as_i64().map(|c| c as i32);
            assert_eq!(compute_hash(&case["template"], count), case["hash"].as_str().unwrap_or(""), "{name}\n{}", spew(&case["template"]));
        }
    }

    #[test]
    fn the_dump_looks_like_go_spew() {
        let dump = spew(&json!({"metadata": {"labels": {"b": "2", "a": "1"}}, "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]}}));
        assert!(dump.starts_with("(v1.PodTemplateSpec){ObjectMeta:(v1.ObjectMeta){Name:(string) GenerateName:(string) "), "{dump}");
        assert!(dump.contains("Labels:(map[string]string)map[a:1 b:2] Annotations:(map[string]string)<nil>"), "{dump}");
        assert!(dump.contains("Ports:([]v1.ContainerPort)[{Name:(string) HostPort:(int32)0 ContainerPort:(int32)80 Protocol:(v1.Protocol) HostIP:(string)}]"), "{dump}");
        assert!(dump.contains("TerminationGracePeriodSeconds:(*int64)<nil>"), "{dump}");
    }

    #[test]
    fn quantities_parse_like_go() {
        let q = |s: &str| go_parse_quantity(s).expect(s);
        assert_eq!(q("100m"), GoQuantity { value: 100, scale: -3, dec: None, cached: "100m".into(), format: "DecimalSI" });
        assert_eq!(q("64Mi"), GoQuantity { value: 67_108_864, scale: 0, dec: None, cached: String::new(), format: "BinarySI" });
        assert_eq!(q("500Mi").cached, "500Mi");
        assert_eq!(q("1k").value, 1);
        assert_eq!(q("1e3").format, "DecimalExponent");
        assert_eq!(q("1Ei").dec, Some((false, (1u128 << 60) * 1_000_000_000, 9)));
    }

    #[test]
    fn encoding_and_fnv() {
        assert_eq!(fnv32a(b""), 0x811c_9dc5);
        assert_eq!(fnv32a(b"a"), 0xe40c_292c);
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
    }
}
