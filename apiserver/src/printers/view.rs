//! Reading API objects the way upstream's printers read Go structs: a missing field is the
//! zero value (`""`, `0`, `false`, an empty list), never an error.

use jiff::Timestamp;
use serde_json::{Map, Value};

/// A possibly missing node of an API object.
#[derive(Debug, Clone, Copy)]
pub struct View<'a>(Option<&'a Value>);

static EMPTY: Vec<Value> = Vec::new();

impl<'a> View<'a> {
    pub fn of(value: &'a Value) -> Self {
        View(Some(value))
    }

    /// The field `key` of an object.
    pub fn at(self, key: &str) -> Self {
        View(self.0.and_then(|v| v.get(key)))
    }

    /// The field at `keys`, one object level per key.
    pub fn path(self, keys: &[&str]) -> Self {
        keys.iter().fold(self, |v, k| v.at(k))
    }

    pub fn value(self) -> Option<&'a Value> {
        self.0.filter(|v| !v.is_null())
    }

    /// Present and not `null` (Go's non-nil pointer).
    pub fn is_set(self) -> bool {
        self.value().is_some()
    }

    pub fn opt_str(self) -> Option<&'a str> {
        self.0.and_then(Value::as_str)
    }

    /// The string, or `""`.
    pub fn str(self) -> &'a str {
        self.opt_str().unwrap_or("")
    }

    pub fn opt_int(self) -> Option<i64> {
        let v = self.value()?;
        v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
    }

    /// The integer, or 0.
    pub fn int(self) -> i64 {
        self.opt_int().unwrap_or(0)
    }

    pub fn opt_bool(self) -> Option<bool> {
        self.0.and_then(Value::as_bool)
    }

    /// The boolean, or false.
    pub fn bool(self) -> bool {
        self.opt_bool().unwrap_or(false)
    }

    /// The elements of a list (none when missing).
    pub fn items(self) -> impl DoubleEndedIterator<Item = View<'a>> + ExactSizeIterator {
        self.0
            .and_then(Value::as_array)
            .unwrap_or(&EMPTY)
            .iter()
            .map(View::of)
    }

    /// The entries of a map (none when missing).
    pub fn entries(self) -> impl Iterator<Item = (&'a str, View<'a>)> {
        self.0
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(Map::iter)
            .map(|(k, v)| (k.as_str(), View::of(v)))
    }

    /// The number of elements of a list or entries of a map, or the length of a string
    /// (asked only to tell whether a base64 byte field is empty).
    pub fn len(self) -> usize {
        match self.0 {
            Some(Value::Array(a)) => a.len(),
            Some(Value::Object(m)) => m.len(),
            Some(Value::String(s)) => s.len(),
            _ => 0,
        }
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// A `metav1.Time` or `metav1.MicroTime`; `None` when missing or unparsable (Go's zero
    /// time).
    pub fn time(self) -> Option<Timestamp> {
        self.opt_str().and_then(|s| s.parse().ok())
    }

    /// The value of a string map's `key`.
    pub fn label(self, key: &str) -> Option<&'a str> {
        self.at(key).opt_str()
    }
}
