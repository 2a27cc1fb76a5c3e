//! Sets of field paths (what one manager owns), with the set algebra server-side apply
//! needs and the FieldsV1 encoding.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::path::{Path, PathElement};

/// A set of paths, as a trie: `members` end here, `children` continue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Set {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, Set>,
}

impl Set {
    pub fn new() -> Set {
        Set::default()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(Set::is_empty)
    }

    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// The paths below `pe` (without it).
    pub fn with_prefix(&self, pe: &PathElement) -> Option<&Set> {
        self.children.get(pe).filter(|s| !s.is_empty())
    }

    pub fn union(&self, other: &Set) -> Set {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out.prune();
        out
    }

    pub fn intersection(&self, other: &Set) -> Set {
        let mut out = Set {
            members: self.members.intersection(&other.members).cloned().collect(),
            children: BTreeMap::new(),
        };
        for (pe, child) in &self.children {
            if let Some(theirs) = other.children.get(pe) {
                let both = child.intersection(theirs);
                if !both.is_empty() {
                    out.children.insert(pe.clone(), both);
                }
            }
        }
        out
    }

    /// The paths of `self` that are not in `other` (a member of `other` does not remove
    /// the paths below it).
    pub fn difference(&self, other: &Set) -> Set {
        let mut out = Set {
            members: self.members.difference(&other.members).cloned().collect(),
            children: BTreeMap::new(),
        };
        for (pe, child) in &self.children {
            let rest = match other.children.get(pe) {
                Some(theirs) => child.difference(theirs),
                None => child.clone(),
            };
            if !rest.is_empty() {
                out.children.insert(pe.clone(), rest);
            }
        }
        out
    }

    /// The paths of `self` that neither are in `other` nor lie below one of its members.
    pub fn recursive_difference(&self, other: &Set) -> Set {
        let mut out = Set {
            members: self.members.difference(&other.members).cloned().collect(),
            children: BTreeMap::new(),
        };
        for (pe, child) in &self.children {
            if other.members.contains(pe) {
                continue;
            }
            let rest = match other.children.get(pe) {
                Some(theirs) => child.recursive_difference(theirs),
                None => child.clone(),
            };
            if !rest.is_empty() {
                out.children.insert(pe.clone(), rest);
            }
        }
        out
    }

    fn prune(&mut self) {
        self.children.retain(|_, c| {
            c.prune();
            !c.is_empty()
        });
    }

    /// Every path, members of a node before the paths below it, in order.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        for m in &self.members {
            let mut p = prefix.clone();
            p.push(m.clone());
            out.push(p);
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    pub(super) fn members(&self) -> impl Iterator<Item = &PathElement> {
        self.members.iter()
    }

    pub(super) fn children(&self) -> impl Iterator<Item = (&PathElement, &Set)> {
        self.children.iter()
    }

    pub(super) fn insert_member(&mut self, pe: PathElement) {
        self.members.insert(pe);
    }

    pub(super) fn set_child(&mut self, pe: PathElement, child: Set) {
        if child.is_empty() {
            self.children.remove(&pe);
        } else {
            self.children.insert(pe, child);
        }
    }

    /// FieldsV1: `{"f:spec":{"f:replicas":{}},"f:metadata":{"f:labels":{".":{},"f:a":{}}}}`.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.fields_v1_contents(false))
    }

    fn fields_v1_contents(&self, include_self: bool) -> Map<String, Value> {
        let mut out = Map::new();
        if include_self {
            out.insert(".".into(), Value::Object(Map::new()));
        }
        // Members and children in path-element order, as upstream writes them; a node that
        // is both a member and a parent carries ".".
        let mut entries: Vec<(&PathElement, Option<&Set>, bool)> = self.members.iter().map(|m| (m, None, true)).collect();
        for (pe, child) in self.children.iter().filter(|(_, c)| !c.is_empty()) {
            match entries.binary_search_by(|(e, _, _)| (*e).cmp(pe)) {
                Ok(i) => entries[i].1 = Some(child),
                Err(i) => entries.insert(i, (pe, Some(child), false)),
            }
        }
        for (pe, child, member) in entries {
            let inner = match child {
                Some(c) => c.fields_v1_contents(member),
                None => Map::new(),
            };
            out.insert(pe.to_fields_key(), Value::Object(inner));
        }
        out
    }

    /// Reads FieldsV1.
    pub fn from_fields_v1(v: &Value) -> Result<Set, String> {
        let Value::Object(m) = v else {
            return Err("FieldsV1 must be an object".into());
        };
        let mut out = Set::new();
        for (k, inner) in m {
            if k == "." {
                continue;
            }
            let pe = PathElement::from_fields_key(k)?;
            let Value::Object(im) = inner else {
                return Err(format!("FieldsV1 entry {k} must be an object"));
            };
            if im.is_empty() {
                out.members.insert(pe);
                continue;
            }
            if im.contains_key(".") {
                out.members.insert(pe.clone());
            }
            let child = Set::from_fields_v1(inner)?;
            if !child.is_empty() {
                out.children.insert(pe, child);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(s: &str) -> PathElement {
        PathElement::Field(s.into())
    }

    #[test]
    fn algebra_and_encoding() {
        let mut a = Set::new();
        a.insert(&[f("metadata"), f("labels")]);
        a.insert(&[f("metadata"), f("labels"), f("x")]);
        a.insert(&[f("spec"), f("replicas")]);
        assert_eq!(a.to_fields_v1(), json!({"f:metadata": {"f:labels": {".": {}, "f:x": {}}}, "f:spec": {"f:replicas": {}}}));
        assert_eq!(Set::from_fields_v1(&a.to_fields_v1()).expect("decodes"), a);
        let mut b = Set::new();
        b.insert(&[f("spec"), f("replicas")]);
        b.insert(&[f("metadata"), f("labels")]);
        let d = a.difference(&b);
        assert_eq!(d.to_fields_v1(), json!({"f:metadata": {"f:labels": {"f:x": {}}}}));
        assert_eq!(a.recursive_difference(&b).to_fields_v1(), json!({}));
        assert_eq!(a.intersection(&b).paths().len(), 2);
        assert!(a.union(&b).has(&[f("spec"), f("replicas")]));
    }
}
