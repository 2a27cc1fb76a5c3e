//! Go values of the generated types, decoded from their v1 JSON form as upstream's
//! decoders and conversions would leave them.

use serde_json::Value;

use super::types::{go_type, GoKind};
use crate::validation::quantity::Quantity;

/// A Go value; which variant goes with which type follows the type's kind.
#[derive(Debug, Clone, PartialEq)]
pub enum GoValue {
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    /// One value per field of the struct type, in declaration order.
    Struct(Vec<GoValue>),
    /// A slice (`None` is nil) or an array (always `Some`).
    List(Option<Vec<GoValue>>),
    /// A map (`None` is nil), entries sorted by key as go-cmp visits them.
    Map(Option<Vec<(GoValue, GoValue)>>),
    Ptr(Option<Box<GoValue>>),
    Quantity(QuantityValue),
    /// A type go-cmp compares as a whole that ironkube does not model (kept as JSON).
    Opaque(Value),
}

/// `resource.Quantity` as `ParseQuantity` leaves it: the scaled integer (or the decimal
/// string of its big-decimal form), the cached canonical string, the format.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantityValue {
    pub amount: Option<Quantity>,
    /// `i`: value and scale, when the fast path of the parser held it.
    pub scaled: Option<(i64, i32)>,
    /// `d`: the decimal form otherwise.
    pub decimal: Option<String>,
    /// `s`: the string the parser cached ("" when it did not).
    pub cached: String,
    /// `Format`: "DecimalSI", "BinarySI", "DecimalExponent", or "" for the zero value.
    pub format: &'static str,
}

impl QuantityValue {
    fn zero() -> Self {
        QuantityValue {
            amount: None,
            scaled: None,
            decimal: None,
            cached: String::new(),
            format: "",
        }
    }

    /// What `ParseQuantity` leaves for `s` (the representation only; validation already
    /// accepted or refused the string).
    pub fn parse(s: &str) -> Self {
        let amount = Quantity::parse(s).ok();
        let Some(q) = amount else {
            return QuantityValue::zero();
        };
        if s == "0" {
            return QuantityValue {
                amount,
                scaled: None,
                decimal: None,
                cached: s.to_string(),
                format: "DecimalSI",
            };
        }
        let (positive, num, denom, suffix) = split_quantity(s);
        let (base2, exponent, format): (bool, i32, &str) = match suffix {
            "" => (false, 0, "DecimalSI"),
            "n" => (false, -9, "DecimalSI"),
            "u" => (false, -6, "DecimalSI"),
            "m" => (false, -3, "DecimalSI"),
            "k" => (false, 3, "DecimalSI"),
            "M" => (false, 6, "DecimalSI"),
            "G" => (false, 9, "DecimalSI"),
            "T" => (false, 12, "DecimalSI"),
            "P" => (false, 15, "DecimalSI"),
            "E" => (false, 18, "DecimalSI"),
            "Ki" => (true, 10, "BinarySI"),
            "Mi" => (true, 20, "BinarySI"),
            "Gi" => (true, 30, "BinarySI"),
            "Ti" => (true, 40, "BinarySI"),
            "Pi" => (true, 50, "BinarySI"),
            "Ei" => (true, 60, "BinarySI"),
            e => (
                false,
                e.get(1..).and_then(|n| n.parse().ok()).unwrap_or(0),
                "DecimalExponent",
            ),
        };
        let digits = i32::try_from(num.len() + denom.len()).unwrap_or(i32::MAX);
        let (mut scale, mantissa, precision) = if base2 {
            if denom.is_empty() {
                let m = 1i64.checked_shl(exponent.unsigned_abs()).unwrap_or(0);
                let num_len = i32::try_from(num.len()).unwrap_or(i32::MAX);
                // Truncation as in upstream: float32(exponent)*3/10.
                let p = 15 - num_len - (exponent as f32 * 3.0 / 10.0) as i32 - 1;
                (0, m, p)
            } else {
                (0, 1, -1)
            }
        } else {
            (exponent, 1, 18 - digits)
        };
        if precision >= 0 {
            scale -= i32::try_from(denom.len()).unwrap_or(i32::MAX);
            if scale >= -9 {
                let shifted = format!("{num}{denom}");
                if let Some(result) = shifted
                    .parse::<i64>()
                    .ok()
                    .and_then(|v| v.checked_mul(mantissa).map(|r| (v, r)))
                {
                    let (value, product) = result;
                    let product = if positive { product } else { -product };
                    let canonical = if base2 {
                        exponent % 10 == 0 && value & 0x07 != 0
                    } else {
                        scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0')
                    };
                    return QuantityValue {
                        amount,
                        scaled: Some((product, scale)),
                        decimal: None,
                        cached: if canonical { s.to_string() } else { String::new() },
                        format,
                    };
                }
            }
        }
        QuantityValue {
            amount,
            scaled: None,
            decimal: Some(q.to_string()),
            cached: String::new(),
            format,
        }
    }

    /// `(*Quantity).String()`: the cached string, else the canonical form.
    pub fn string(&self) -> String {
        if !self.cached.is_empty() {
            return self.cached.clone();
        }
        self.amount.map(|q| q.to_string()).unwrap_or_else(|| "0".into())
    }

    fn is_zero(&self) -> bool {
        self.format.is_empty() && self.scaled.is_none() && self.decimal.is_none()
    }
}

/// upstream's parseQuantityString, reduced to what the representation needs: sign,
/// integer digits without leading zeros, fraction digits, suffix.
fn split_quantity(s: &str) -> (bool, &str, &str, &str) {
    let mut rest = s;
    let mut positive = true;
    if let Some(r) = rest.strip_prefix('-') {
        positive = false;
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    let trimmed = rest.trim_start_matches('0');
    if trimmed.is_empty() {
        return (positive, "0", "", "");
    }
    let int_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let mut num = &trimmed[..int_end];
    let mut after = &trimmed[int_end..];
    if num.is_empty() && !after.is_empty() {
        num = "0";
    }
    let mut denom = "";
    if let Some(r) = after.strip_prefix('.') {
        let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        denom = &r[..end];
        after = &r[end..];
    }
    (positive, num, denom, after)
}

/// Decodes `json` (absent: `None`) as a value of type `ty`. With `empty_is_nil`, empty
/// lists and maps decode as nil, as they do from the API server's protobuf storage.
pub fn from_json(ty: usize, json: Option<&Value>, empty_is_nil: bool) -> GoValue {
    let t = go_type(ty);
    let json = json.filter(|v| !v.is_null());
    if t.codec == "resource.Quantity" {
        return GoValue::Quantity(match json {
            Some(Value::String(s)) => QuantityValue::parse(s),
            Some(Value::Number(n)) => QuantityValue::parse(&n.to_string()),
            _ => QuantityValue::zero(),
        });
    }
    if t.codec == "intstr.IntOrString" && t.fields.len() == 3 {
        return GoValue::Struct(match json {
            Some(Value::String(s)) => vec![
                GoValue::Int(1),
                GoValue::Int(0),
                GoValue::Str(s.clone()),
            ],
            Some(v) => vec![
                GoValue::Int(0),
                GoValue::Int(v.as_i64().unwrap_or(0)),
                GoValue::Str(String::new()),
            ],
            None => vec![GoValue::Int(0), GoValue::Int(0), GoValue::Str(String::new())],
        });
    }
    if t.kind == GoKind::Struct && (t.equal_method || !t.codec.is_empty()) && t.fields.is_empty() {
        return GoValue::Opaque(json.cloned().unwrap_or(Value::Null));
    }
    match t.kind {
        GoKind::Bool => GoValue::Bool(json.and_then(Value::as_bool).unwrap_or(false)),
        GoKind::Int => GoValue::Int(json.and_then(Value::as_i64).unwrap_or(0)),
        GoKind::Uint | GoKind::Uint8 => GoValue::Uint(json.and_then(Value::as_u64).unwrap_or(0)),
        GoKind::Float => GoValue::Float(json.and_then(Value::as_f64).unwrap_or(0.0)),
        GoKind::String => GoValue::Str(json.and_then(Value::as_str).unwrap_or("").to_string()),
        GoKind::Struct => GoValue::Struct(
            t.fields
                .iter()
                .map(|f| {
                    let v = if f.inline {
                        json
                    } else {
                        json.and_then(|o| o.get(f.json))
                    };
                    from_json(f.ty, v, empty_is_nil)
                })
                .collect(),
        ),
        GoKind::Slice | GoKind::Array => {
            let items = json.and_then(Value::as_array);
            match items {
                Some(a) if !(a.is_empty() && empty_is_nil) => GoValue::List(Some(
                    a.iter().map(|x| from_json(t.elem, Some(x), empty_is_nil)).collect(),
                )),
                _ => GoValue::List(None),
            }
        }
        GoKind::Map => match json.and_then(Value::as_object) {
            Some(m) if !(m.is_empty() && empty_is_nil) => {
                let mut entries: Vec<(GoValue, GoValue)> = m
                    .iter()
                    .map(|(k, v)| {
                        (
                            GoValue::Str(k.clone()),
                            from_json(t.elem, Some(v), empty_is_nil),
                        )
                    })
                    .collect();
                entries.sort_by(|a, b| key_order(&a.0, &b.0));
                GoValue::Map(Some(entries))
            }
            _ => GoValue::Map(None),
        },
        GoKind::Ptr => match json {
            Some(v) => GoValue::Ptr(Some(Box::new(from_json(t.elem, Some(v), empty_is_nil)))),
            None => GoValue::Ptr(None),
        },
        GoKind::Interface => GoValue::Opaque(json.cloned().unwrap_or(Value::Null)),
    }
}

/// go-cmp's map key order (value.SortKeys): strings and numbers ascending.
pub fn key_order(a: &GoValue, b: &GoValue) -> std::cmp::Ordering {
    match (a, b) {
        (GoValue::Str(x), GoValue::Str(y)) => x.cmp(y),
        (GoValue::Int(x), GoValue::Int(y)) => x.cmp(y),
        (GoValue::Uint(x), GoValue::Uint(y)) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    }
}

impl GoValue {
    /// `reflect.Value.IsZero`.
    pub fn is_zero(&self) -> bool {
        match self {
            GoValue::Bool(b) => !b,
            GoValue::Int(i) => *i == 0,
            GoValue::Uint(u) => *u == 0,
            GoValue::Float(f) => *f == 0.0,
            GoValue::Str(s) => s.is_empty(),
            GoValue::Struct(fields) => fields.iter().all(GoValue::is_zero),
            GoValue::List(l) => l.is_none(),
            GoValue::Map(m) => m.is_none(),
            GoValue::Ptr(p) => p.is_none(),
            GoValue::Quantity(q) => q.is_zero(),
            GoValue::Opaque(v) => v.is_null(),
        }
    }
}
