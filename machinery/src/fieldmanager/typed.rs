//! Objects walked with their schema: the field set of a value, the comparison of two
//! values, the merge of an applied configuration into a live object and the removal of
//! field sets — structured-merge-diff's semantics over the schema table of [`crate::schema`].

use serde_json::{Map, Value};

use super::path::{Path, PathElement};
use super::set::Set;
use crate::schema::{self, FieldDef, ListType, MapType, PatchStrategy, Shape, TypeDef};

/// How a list's items are told apart.
#[derive(Debug, Clone, Copy)]
pub enum ListKind {
    /// The list is one value.
    Atomic,
    /// Scalars, each its own member.
    Set,
    /// Objects keyed by these fields.
    Map(&'static [&'static str]),
}

/// The type of a value, as far as merging goes.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    Struct { def: &'static TypeDef, atomic: bool },
    Map { value: Elem, atomic: bool },
    List { item: Elem, kind: ListKind },
    Scalar,
    /// No schema: maps are granular, lists atomic (upstream's "deduced" type).
    Deduced,
    /// No schema, one value.
    Atomic,
}

/// The type of a list item or map value.
#[derive(Debug, Clone, Copy)]
pub struct Elem {
    shape: Option<Shape>,
    type_name: Option<&'static str>,
}

impl Ty {
    /// The root type of a kind; [`Ty::Deduced`] when the kind has no schema (custom resources).
    pub fn of_kind(group: &str, version: &str, kind: &str) -> Ty {
        schema::kind_type(group, version, kind).map_or(Ty::Deduced, named)
    }

    fn field(&self, name: &str) -> Ty {
        match self {
            Ty::Struct { def, .. } => def.field(name).map_or(Ty::Deduced, field_ty),
            Ty::Map { value, .. } => value.ty(),
            _ => Ty::Deduced,
        }
    }

    fn declares(&self, name: &str) -> bool {
        matches!(self, Ty::Struct { def, .. } if def.field(name).is_some())
    }

    fn item(&self) -> Ty {
        match self {
            Ty::List { item, .. } => item.ty(),
            _ => Ty::Atomic,
        }
    }

    /// The map form a value of this type takes, if it is a map: `Some(atomic)`.
    fn as_map(&self, v: Option<&Value>) -> Option<bool> {
        match self {
            Ty::Struct { atomic, .. } | Ty::Map { atomic, .. } => Some(*atomic),
            Ty::Deduced if v.is_none_or(|v| v.is_object() || v.is_null()) => Some(false),
            _ => None,
        }
    }
}

fn named(type_name: &'static str) -> Ty {
    match schema::type_def(type_name) {
        Some(def) if def.opaque => opaque(type_name),
        Some(def) => Ty::Struct { def, atomic: def.map_type == Some(MapType::Atomic) },
        None => Ty::Deduced,
    }
}

/// Types with their own JSON form: free-form JSON is deduced, the rest are scalars.
fn opaque(type_name: &str) -> Ty {
    let free_form = ["RawExtension", "FieldsV1", ".JSON", "JSONSchemaPropsOr"];
    if free_form.iter().any(|s| type_name.contains(s)) { Ty::Deduced } else { Ty::Scalar }
}

impl Elem {
    fn ty(&self) -> Ty {
        match (self.shape, self.type_name) {
            (Some(Shape::Scalar), _) => Ty::Scalar,
            (Some(Shape::Struct), Some(n)) => named(n),
            (Some(Shape::Opaque), Some(n)) => opaque(n),
            (Some(Shape::List | Shape::Map), _) => Ty::Atomic,
            _ => Ty::Deduced,
        }
    }
}

fn field_ty(f: &'static FieldDef) -> Ty {
    let elem = Elem { shape: f.elem_shape, type_name: f.elem };
    match f.shape {
        Shape::Scalar => Ty::Scalar,
        Shape::Opaque => f.elem.map_or(Ty::Scalar, opaque),
        Shape::Struct => match f.elem.and_then(schema::type_def) {
            Some(def) if def.opaque => opaque(def.name),
            Some(def) => Ty::Struct {
                def,
                atomic: f.map_type.or(def.map_type) == Some(MapType::Atomic),
            },
            None => Ty::Deduced,
        },
        Shape::Map => Ty::Map { value: elem, atomic: f.map_type == Some(MapType::Atomic) },
        Shape::List => {
            let kind = match f.list_type {
                Some(ListType::Atomic) => ListKind::Atomic,
                Some(ListType::Set) => ListKind::Set,
                Some(ListType::Map) => ListKind::Map(f.list_map_keys),
                None => match f.patch_strategy {
                    Some(PatchStrategy::Merge | PatchStrategy::MergeRetainKeys) => match &f.merge_key {
                        Some(key) => ListKind::Map(std::slice::from_ref(key)),
                        None => ListKind::Set,
                    },
                    _ => ListKind::Atomic,
                },
            };
            Ty::List { item: elem, kind }
        }
    }
}

/// The path element of a list item, or why it has none.
fn item_element(ty: &Ty, item: &Value) -> Result<PathElement, String> {
    let Ty::List { kind, item: elem } = ty else {
        return Err("invalid indexing of non-associative list".into());
    };
    match kind {
        ListKind::Atomic => Err("invalid indexing of non-associative list".into()),
        ListKind::Set => match item {
            Value::Object(_) => Err("associative list without keys has an element that's a map type".into()),
            Value::Array(_) => Err("not supported: associative list with lists as elements".into()),
            Value::Null => Err("associative list without keys has an element that's an explicit null".into()),
            v => Ok(PathElement::Value(v.clone())),
        },
        ListKind::Map(keys) => {
            let Value::Object(m) = item else {
                return Err(if item.is_null() {
                    "associative list with keys may not have a null element".into()
                } else {
                    "associative list with keys may not have non-map elements".into()
                });
            };
            let item_def = match elem.ty() {
                Ty::Struct { def, .. } => Some(def),
                _ => None,
            };
            let mut fields = Vec::with_capacity(keys.len());
            for key in keys.iter() {
                if let Some(v) = m.get(*key) {
                    fields.push(((*key).to_string(), v.clone()));
                } else if let Some(default) = item_def.and_then(|d| d.field(key)).and_then(|f| f.default).and_then(|d| serde_json::from_str::<Value>(d).ok()) {
                    fields.push(((*key).to_string(), default));
                } else {
                    return Err(format!(
                        "associative list with keys has an element that omits key field {key:?} (and doesn't have default value)"
                    ));
                }
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(fields))
        }
    }
}

fn is_atomic_list(ty: &Ty, v: Option<&Value>) -> bool {
    match ty {
        Ty::List { kind: ListKind::Atomic, .. } | Ty::Atomic | Ty::Scalar => true,
        Ty::Deduced => v.is_some_and(Value::is_array),
        _ => false,
    }
}

fn push(path: &Path, pe: PathElement) -> Path {
    let mut p = path.clone();
    p.push(pe);
    p
}

/// Every field set in `v`: the paths an applied configuration claims.
pub fn to_field_set(v: &Value, ty: &Ty) -> Result<Set, String> {
    let mut set = Set::new();
    field_set_walk(v, ty, &Vec::new(), &mut set)?;
    Ok(set)
}

fn field_set_walk(v: &Value, ty: &Ty, path: &Path, set: &mut Set) -> Result<(), String> {
    if matches!(ty, Ty::List { .. }) || (matches!(ty, Ty::Deduced | Ty::Atomic) && v.is_array()) {
        if is_atomic_list(ty, Some(v)) {
            set.insert(path);
            return Ok(());
        }
        let Value::Array(items) = v else { return Ok(()) };
        let mut seen = std::collections::BTreeSet::new();
        let mut duplicates = std::collections::BTreeSet::new();
        let mut elements = Vec::with_capacity(items.len());
        for item in items {
            let pe = item_element(ty, item).map_err(|e| format!("{}: {e}", super::path::path_string(path)))?;
            if !seen.insert(pe.clone()) && duplicates.insert(pe.clone()) {
                set.insert(&push(path, pe.clone()));
            }
            elements.push(pe);
        }
        for (item, pe) in items.iter().zip(elements) {
            if duplicates.contains(&pe) {
                continue;
            }
            let child = push(path, pe);
            field_set_walk(item, &ty.item(), &child, set)?;
            set.insert(&child);
        }
        return Ok(());
    }
    match ty.as_map(Some(v)) {
        Some(true) => set.insert(path),
        Some(false) => {
            let Value::Object(m) = v else { return Ok(()) };
            for (k, val) in m {
                let child = push(path, PathElement::Field(k.clone()));
                field_set_walk(val, &ty.field(k), &child, set)?;
                let empty = val.is_null() || val.as_object().is_some_and(Map::is_empty);
                if empty || !ty.declares(k) {
                    set.insert(&child);
                }
            }
        }
        None => set.insert(path),
    }
    Ok(())
}

/// Checks an applied configuration against the schema as upstream's typed conversion does:
/// fields a struct does not declare, and list-map items that repeat a key.
pub fn validate(v: &Value, ty: &Ty) -> Result<(), String> {
    let mut errors = Vec::new();
    validate_walk(v, ty, &mut String::new(), &mut errors);
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(format!("errors:\n{}", errors.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))),
    }
}

fn validate_walk(v: &Value, ty: &Ty, path: &mut String, errors: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            let Some(false) = ty.as_map(Some(v)) else { return };
            for (k, val) in m {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                if matches!(ty, Ty::Struct { .. }) && !ty.declares(k) {
                    errors.push(format!("{path}: field not declared in schema"));
                } else {
                    validate_walk(val, &ty.field(k), path, errors);
                }
                path.truncate(len);
            }
        }
        Value::Array(items) if !is_atomic_list(ty, Some(v)) => {
            let mut seen = std::collections::BTreeSet::new();
            for item in items {
                match item_element(ty, item) {
                    Ok(pe) => {
                        let len = path.len();
                        path.push_str(&pe.to_string());
                        if !seen.insert(pe.clone()) {
                            path.truncate(len);
                            errors.push(format!("{path}: duplicate entries for key {pe}"));
                            continue;
                        }
                        validate_walk(item, &ty.item(), path, errors);
                        path.truncate(len);
                    }
                    Err(e) => errors.push(format!("{path}: {e}")),
                }
            }
        }
        _ => {}
    }
}

/// What changed from `lhs` to `rhs`.
#[derive(Debug, Default, Clone)]
pub struct Comparison {
    pub removed: Set,
    pub modified: Set,
    pub added: Set,
}

impl Comparison {
    pub fn is_same(&self) -> bool {
        self.removed.is_empty() && self.modified.is_empty() && self.added.is_empty()
    }

    /// Drops the paths at or below `exclude`.
    pub fn exclude(mut self, exclude: &Set) -> Comparison {
        if !exclude.is_empty() {
            self.removed = self.removed.recursive_difference(exclude);
            self.modified = self.modified.recursive_difference(exclude);
            self.added = self.added.recursive_difference(exclude);
        }
        self
    }
}

pub fn compare(lhs: &Value, rhs: &Value, ty: &Ty) -> Comparison {
    let mut c = Comparison::default();
    compare_walk(Some(lhs), Some(rhs), ty, &Vec::new(), &mut c);
    c
}

fn leaf(lhs: Option<&Value>, rhs: Option<&Value>, path: &Path, c: &mut Comparison) {
    match (lhs, rhs) {
        (None, Some(_)) => c.added.insert(path),
        (Some(_), None) => c.removed.insert(path),
        (Some(l), Some(r)) if !values_equal(l, r) => c.modified.insert(path),
        _ => {}
    }
}

fn values_equal(a: &Value, b: &Value) -> bool {
    super::path::compare_values(a, b) == std::cmp::Ordering::Equal
}

fn compare_walk(lhs: Option<&Value>, rhs: Option<&Value>, ty: &Ty, path: &Path, c: &mut Comparison) {
    let sample = rhs.or(lhs);
    let in_leaf = if matches!(ty, Ty::List { .. }) || (matches!(ty, Ty::Deduced | Ty::Atomic) && sample.is_some_and(Value::is_array)) {
        compare_list(lhs, rhs, ty, path, c)
    } else {
        match ty.as_map(sample) {
            Some(atomic) => compare_map(lhs, rhs, ty, atomic, path, c),
            None => {
                leaf(lhs, rhs, path, c);
                true
            }
        }
    };
    if !in_leaf {
        if lhs.is_none() {
            c.added.insert(path);
        } else if rhs.is_none() {
            c.removed.insert(path);
        }
    }
}

/// Returns whether the list was compared as one value.
fn compare_list(lhs: Option<&Value>, rhs: Option<&Value>, ty: &Ty, path: &Path, c: &mut Comparison) -> bool {
    let l = lhs.and_then(Value::as_array);
    let r = rhs.and_then(Value::as_array);
    let empty = l.is_none_or(Vec::is_empty) && r.is_none_or(Vec::is_empty);
    if is_atomic_list(ty, rhs.or(lhs)) || empty {
        leaf(lhs, rhs, path, c);
        return true;
    }
    // Items by path element, in first-seen order (left, then new ones on the right).
    let mut order: Vec<PathElement> = Vec::new();
    let mut left: std::collections::BTreeMap<PathElement, Vec<&Value>> = Default::default();
    let mut right: std::collections::BTreeMap<PathElement, Vec<&Value>> = Default::default();
    for item in l.into_iter().flatten() {
        let Ok(pe) = item_element(ty, item) else { continue };
        let e = left.entry(pe.clone()).or_default();
        if e.is_empty() {
            order.push(pe);
        }
        e.push(item);
    }
    for item in r.into_iter().flatten() {
        let Ok(pe) = item_element(ty, item) else { continue };
        let e = right.entry(pe.clone()).or_default();
        if e.is_empty() && !left.contains_key(&pe) {
            order.push(pe.clone());
        }
        e.push(item);
    }
    let item_ty = ty.item();
    for pe in order {
        let ls = left.get(&pe).map(Vec::as_slice).unwrap_or(&[]);
        let rs = right.get(&pe).map(Vec::as_slice).unwrap_or(&[]);
        let child = push(path, pe);
        match (ls.len(), rs.len()) {
            (0..=1, 0..=1) => compare_walk(ls.first().copied(), rs.first().copied(), &item_ty, &child, c),
            (2.., 2..) => {
                if ls.len() != rs.len() || ls.iter().zip(rs).any(|(a, b)| !values_equal(a, b)) {
                    c.modified.insert(&child);
                }
            }
            (2.., _) => {
                if let Some(r0) = rs.first() {
                    compare_walk(None, Some(r0), &item_ty, &child, c);
                }
                c.removed.insert(&child);
            }
            (_, _) => {
                if let Some(l0) = ls.first() {
                    compare_walk(Some(l0), None, &item_ty, &child, c);
                }
                c.added.insert(&child);
            }
        }
    }
    false
}

fn compare_map(lhs: Option<&Value>, rhs: Option<&Value>, ty: &Ty, atomic: bool, path: &Path, c: &mut Comparison) -> bool {
    let l = lhs.and_then(Value::as_object);
    let r = rhs.and_then(Value::as_object);
    let empty = l.is_none_or(Map::is_empty) && r.is_none_or(Map::is_empty);
    if atomic || empty {
        leaf(lhs, rhs, path, c);
        return true;
    }
    for k in union_keys(l, r) {
        let child = push(path, PathElement::Field(k.clone()));
        compare_walk(l.and_then(|m| m.get(k)), r.and_then(|m| m.get(k)), &ty.field(k), &child, c);
    }
    false
}

/// The keys of both maps: the left's in their order, then the right's new ones.
fn union_keys<'a>(l: Option<&'a Map<String, Value>>, r: Option<&'a Map<String, Value>>) -> Vec<&'a String> {
    let mut keys: Vec<&String> = l.into_iter().flat_map(|m| m.keys()).collect();
    keys.extend(r.into_iter().flat_map(|m| m.keys()).filter(|k| !l.is_some_and(|m| m.contains_key(*k))));
    keys
}

/// Merges an applied configuration (`rhs`) into the live object (`lhs`).
pub fn merge(lhs: &Value, rhs: &Value, ty: &Ty) -> Result<Value, String> {
    Ok(merge_walk(Some(lhs), Some(rhs), ty, &Vec::new())?.unwrap_or_else(|| Value::Object(Map::new())))
}

fn merge_walk(lhs: Option<&Value>, rhs: Option<&Value>, ty: &Ty, path: &Path) -> Result<Option<Value>, String> {
    let keep_rhs = || rhs.or(lhs).cloned();
    let sample = rhs.or(lhs);
    if matches!(ty, Ty::List { .. }) || (matches!(ty, Ty::Deduced | Ty::Atomic) && sample.is_some_and(Value::is_array)) {
        let l = lhs.and_then(Value::as_array);
        let r = rhs.and_then(Value::as_array);
        let empty = l.is_none_or(Vec::is_empty) && r.is_none_or(Vec::is_empty);
        if is_atomic_list(ty, sample) || empty {
            return Ok(keep_rhs());
        }
        return merge_list(l.map(Vec::as_slice).unwrap_or(&[]), r.map(Vec::as_slice).unwrap_or(&[]), ty, path);
    }
    match ty.as_map(sample) {
        Some(atomic) => {
            let l = lhs.and_then(Value::as_object);
            let r = rhs.and_then(Value::as_object);
            let empty = l.is_none_or(Map::is_empty) && r.is_none_or(Map::is_empty);
            if atomic || empty {
                return Ok(keep_rhs());
            }
            let mut out = Map::new();
            for k in union_keys(l, r) {
                let child = push(path, PathElement::Field(k.clone()));
                if let Some(v) = merge_walk(l.and_then(|m| m.get(k)), r.and_then(|m| m.get(k)), &ty.field(k), &child)? {
                    out.insert(k.clone(), v);
                }
            }
            Ok((!out.is_empty()).then_some(Value::Object(out)))
        }
        None => Ok(keep_rhs()),
    }
}

/// The list merge of structured-merge-diff: live items keep their places, applied items
/// come in the applied order, and items of both are merged.
fn merge_list(lhs: &[Value], rhs: &[Value], ty: &Ty, path: &Path) -> Result<Option<Value>, String> {
    let item_ty = ty.item();
    let mut rhs_pes = Vec::with_capacity(rhs.len());
    let mut observed_rhs: std::collections::BTreeMap<PathElement, &Value> = Default::default();
    for item in rhs {
        let pe = item_element(ty, item).map_err(|e| format!("{}: {e}", super::path::path_string(path)))?;
        if observed_rhs.contains_key(&pe) {
            return Err(format!("{}: duplicate entries for key {pe}", super::path::path_string(path)));
        }
        observed_rhs.insert(pe.clone(), item);
        rhs_pes.push(pe);
    }
    let null = Value::Null;
    let mut lhs_pes = Vec::with_capacity(lhs.len());
    let mut observed_lhs: std::collections::BTreeMap<PathElement, &Value> = Default::default();
    for item in lhs {
        let Ok(pe) = item_element(ty, item) else { continue };
        if observed_lhs.contains_key(&pe) {
            observed_lhs.insert(pe.clone(), &null);
        } else {
            observed_lhs.insert(pe.clone(), item);
        }
        lhs_pes.push((pe, item));
    }
    let mut shared: std::collections::VecDeque<&PathElement> = rhs_pes.iter().filter(|pe| observed_lhs.contains_key(pe)).collect();
    let mut next_shared = shared.pop_front();
    let mut merged_rhs = std::collections::BTreeSet::new();
    let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
    let (mut li, mut ri) = (0, 0);
    while li < lhs_pes.len() || ri < rhs_pes.len() {
        if li < lhs_pes.len() && ri < rhs_pes.len() {
            let pe = &lhs_pes[li].0;
            if *pe == rhs_pes[ri] {
                merged_rhs.insert(pe.clone());
                let child = push(path, pe.clone());
                if let Some(v) = merge_walk(observed_lhs.get(pe).copied(), observed_rhs.get(pe).copied(), &item_ty, &child)? {
                    out.push(v);
                }
                li += 1;
                ri += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if observed_rhs.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                li += 1;
                continue;
            }
        }
        if li < lhs_pes.len() {
            let (pe, item) = &lhs_pes[li];
            if !observed_rhs.contains_key(pe) {
                let child = push(path, pe.clone());
                if let Some(v) = merge_walk(Some(item), None, &item_ty, &child)? {
                    out.push(v);
                }
                li += 1;
                continue;
            } else if merged_rhs.contains(pe) {
                li += 1;
            }
        }
        if ri < rhs_pes.len() {
            let pe = &rhs_pes[ri];
            merged_rhs.insert(pe.clone());
            let child = push(path, pe.clone());
            if let Some(v) = merge_walk(observed_lhs.get(pe).copied(), observed_rhs.get(pe).copied(), &item_ty, &child)? {
                out.push(v);
            }
            ri += 1;
            if next_shared.is_some_and(|n| n == pe) {
                next_shared = shared.pop_front();
            }
        }
    }
    Ok((!out.is_empty()).then_some(Value::Array(out)))
}

/// `v` without the paths of `remove`.
pub fn remove_items(v: &Value, remove: &Set, ty: &Ty) -> Value {
    remove_walk(v, remove, ty).unwrap_or_else(|| Value::Object(Map::new()))
}

fn remove_walk(v: &Value, remove: &Set, ty: &Ty) -> Option<Value> {
    if let Value::Array(items) = v {
        if items.is_empty() || is_atomic_list(ty, Some(v)) {
            return None;
        }
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let Ok(pe) = item_element(ty, item) else {
                out.push(item.clone());
                continue;
            };
            if remove.has(std::slice::from_ref(&pe)) {
                continue;
            }
            match remove.with_prefix(&pe) {
                Some(sub) => {
                    if let Some(kept) = remove_walk(item, sub, &ty.item()) {
                        out.push(kept);
                    }
                }
                None => out.push(item.clone()),
            }
        }
        return (!out.is_empty()).then_some(Value::Array(out));
    }
    match (v, ty.as_map(Some(v))) {
        (Value::Object(m), Some(false)) => {
            let mut out = Map::new();
            for (k, val) in m {
                let pe = PathElement::Field(k.clone());
                if remove.has(std::slice::from_ref(&pe)) {
                    continue;
                }
                match remove.with_prefix(&pe) {
                    Some(sub) => {
                        if let Some(kept) = remove_walk(val, sub, &ty.field(k)) {
                            out.insert(k.clone(), kept);
                        }
                    }
                    None => {
                        out.insert(k.clone(), val.clone());
                    }
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        (Value::Object(_), Some(true)) => None,
        (other, _) => Some(other.clone()),
    }
}

/// Also makes members of the named struct fields that have members below them, so that
/// removing a set removes the emptied structs too.
pub fn ensure_named_fields_are_members(set: &Set, ty: &Ty) -> Set {
    let mut out = Set::new();
    for m in set.members() {
        out.insert_member(m.clone());
    }
    for (pe, child) in set.children() {
        let child_ty = match pe {
            PathElement::Field(name) => {
                if ty.declares(name) {
                    out.insert_member(pe.clone());
                }
                ty.field(name)
            }
            _ => ty.item(),
        };
        out.set_child(pe.clone(), ensure_named_fields_are_members(child, &child_ty));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Ty {
        Ty::of_kind("apps", "v1", "Deployment")
    }

    #[test]
    fn field_set_of_a_deployment() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}]}}}});
        let set = to_field_set(&d, &deployment()).expect("field set");
        assert_eq!(set.to_fields_v1(), json!({
            "f:apiVersion": {}, "f:kind": {},
            "f:metadata": {"f:labels": {"f:app": {}}, "f:name": {}},
            "f:spec": {"f:replicas": {}, "f:selector": {},
                "f:template": {"f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}}}}
        }));
    }

    #[test]
    fn compare_from_the_zero_value() {
        let zero: Value = serde_json::from_str(schema::kind_zero("", "v1", "ConfigMap").expect("kind")).expect("zero");
        let cm = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}});
        let c = compare(&zero, &cm, &Ty::of_kind("", "v1", "ConfigMap"));
        assert_eq!(c.added.to_fields_v1(), json!({"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:x": {}}, "f:name": {}}}));
        // Go renders a zero creationTimestamp as null; our objects leave it out.
        assert_eq!(c.removed.to_fields_v1(), json!({"f:metadata": {"f:creationTimestamp": {}}}));
    }

    #[test]
    fn merge_keeps_live_items_and_orders_applied_ones() {
        let ty = deployment();
        let live = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}}}});
        let cfg = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "3"}, {"name": "a", "image": "9"}]}}}});
        let out = merge(&live, &cfg, &ty).expect("merges");
        let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"].as_array().expect("list").iter().map(|c| c["name"].as_str().unwrap_or("")).collect();
        assert_eq!(names, ["c", "a", "b"]);
        assert_eq!(out["spec"]["template"]["spec"]["containers"][1]["image"], "9");
        let dup = json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}}});
        assert!(merge(&live, &dup, &ty).expect_err("duplicates").contains("duplicate entries for key [name=\"a\"]"));
    }

    #[test]
    fn validation_names_undeclared_fields_and_duplicate_keys() {
        let cfg = json!({"spec": {"replicaz": 1, "template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}}});
        assert_eq!(
            validate(&cfg, &deployment()).expect_err("invalid"),
            "errors:\n  .spec.replicaz: field not declared in schema\n  .spec.template.spec.containers: duplicate entries for key [name=\"a\"]"
        );
        assert!(validate(&json!({"metadata": {"labels": {"any": "x"}}}), &deployment()).is_ok());
    }

    #[test]
    fn remove_drops_emptied_parents() {
        let ty = deployment();
        let obj = json!({"spec": {"replicas": 3, "template": {"metadata": {"labels": {"a": "1"}}}}});
        let mut set = Set::new();
        set.insert(&[PathElement::Field("spec".into()), PathElement::Field("template".into()), PathElement::Field("metadata".into()), PathElement::Field("labels".into()), PathElement::Field("a".into())]);
        assert_eq!(remove_items(&obj, &set, &ty), json!({"spec": {"replicas": 3}}));
        // With the named fields as members, the whole spec goes (prune puts owned fields back).
        let named = ensure_named_fields_are_members(&set, &ty);
        assert!(named.has(&[PathElement::Field("spec".into())]));
        assert_eq!(remove_items(&obj, &named, &ty), json!({}));
    }
}
