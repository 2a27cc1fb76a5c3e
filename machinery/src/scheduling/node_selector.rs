//! Matching nodes against a pod's `nodeSelector` and node affinity, as component-helpers'
//! `nodeaffinity` package does: terms are ORed, requirements within a term ANDed, an empty
//! term matches nothing, and a term that cannot be parsed never matches.

use std::collections::BTreeMap;

use crate::selectors::label::{Operator, Requirement, Selector};
use k8s_openapi::api::core::v1::{Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, PreferredSchedulingTerm};


static EMPTY_LABELS: BTreeMap<String, String> = BTreeMap::new();

/// The node's name and labels, as the matchers read them.
trait NodeFields {
    fn name(&self) -> &str;
    fn labels(&self) -> &BTreeMap<String, String>;
}

impl NodeFields for Node {
    fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or("")
    }
    fn labels(&self) -> &BTreeMap<String, String> {
        self.metadata.labels.as_ref().unwrap_or(&EMPTY_LABELS)
    }
}

/// The only node field a term can select on.
pub const OBJECT_NAME_FIELD: &str = "metadata.name";

#[derive(Debug, Clone)]
struct FieldRequirement {
    key: String,
    equal: bool,
    value: String,
}

/// One parsed `NodeSelectorTerm`.
#[derive(Debug, Clone)]
pub struct Term {
    labels: Option<Selector>,
    fields: Option<Vec<FieldRequirement>>,
    error: Option<String>,
}

fn label_requirements(reqs: &[NodeSelectorRequirement]) -> Result<Selector, String> {
    let mut out = Vec::new();
    for r in reqs {
        let op = match r.operator.as_str() {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            "Gt" => Operator::GreaterThan,
            "Lt" => Operator::LessThan,
            other => return Err(format!("Unsupported value: \"{other}\"")),
        };
        out.push(Requirement::new(r.key.clone(), op, r.values.clone().unwrap_or_default()).map_err(|e| e.to_string())?);
    }
    let mut selector = Selector::everything();
    selector.extend(out);
    Ok(selector)
}

fn field_requirements(reqs: &[NodeSelectorRequirement]) -> Result<Vec<FieldRequirement>, String> {
    reqs.iter()
        .map(|r| {
            let values = r.values.clone().unwrap_or_default();
            let equal = match r.operator.as_str() {
                "In" => true,
                "NotIn" => false,
                other => return Err(format!("Unsupported value: \"{other}\"")),
            };
            match values.as_slice() {
                [value] => Ok(FieldRequirement { key: r.key.clone(), equal, value: value.clone() }),
                _ => Err("must have one element".to_string()),
            }
        })
        .collect()
}

impl Term {
    pub fn new(term: &NodeSelectorTerm) -> Self {
        let mut parsed = Term { labels: None, fields: None, error: None };
        let exprs = term.match_expressions.as_deref().unwrap_or_default();
        if !exprs.is_empty() {
            match label_requirements(exprs) {
                Ok(s) => parsed.labels = Some(s),
                Err(e) => parsed.error = Some(e),
            }
        }
        let fields = term.match_fields.as_deref().unwrap_or_default();
        if !fields.is_empty() {
            match field_requirements(fields) {
                Ok(f) => parsed.fields = Some(f),
                Err(e) => parsed.error = Some(e),
            }
        }
        parsed
    }

    pub fn is_empty(term: &NodeSelectorTerm) -> bool {
        term.match_expressions.as_deref().unwrap_or_default().is_empty() && term.match_fields.as_deref().unwrap_or_default().is_empty()
    }

    /// Whether the node's labels and name satisfy the term; a broken term matches nothing.
    pub fn matches(&self, labels: &BTreeMap<String, String>, node_name: &str) -> bool {
        if self.error.is_some() {
            return false;
        }
        if let Some(sel) = &self.labels {
            if !sel.matches(labels) {
                return false;
            }
        }
        if let Some(fields) = &self.fields {
            if !node_name.is_empty() {
                for f in fields {
                    let actual = if f.key == OBJECT_NAME_FIELD { node_name } else { "" };
                    if (actual == f.value) != f.equal {
                        return false;
                    }
                }
            }
        }
        true
    }

    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}

/// A parsed `NodeSelector` (terms ORed; empty terms dropped).
#[derive(Debug, Clone, Default)]
pub struct NodeSelectorMatcher {
    terms: Vec<Term>,
}

impl NodeSelectorMatcher {
    pub fn new(ns: &NodeSelector) -> Self {
        NodeSelectorMatcher { terms: ns.node_selector_terms.iter().filter(|t| !Term::is_empty(t)).map(Term::new).collect() }
    }

    /// The first parse error of any term.
    pub fn error(&self) -> Option<&str> {
        self.terms.iter().find_map(Term::error)
    }

    pub fn matches(&self, node: &Node) -> bool {
        self.terms.iter().any(|t| t.matches(node.labels(), node.name()))
    }
}

/// A pod's `nodeSelector` and required node affinity together (upstream's
/// `RequiredNodeAffinity`).
#[derive(Debug, Clone, Default)]
pub struct RequiredNodeAffinity {
    label_selector: Option<BTreeMap<String, String>>,
    node_selector: Option<NodeSelectorMatcher>,
}

impl RequiredNodeAffinity {
    pub fn of(pod: &Pod) -> Self {
        let spec = pod.spec.as_ref();
        let label_selector = spec.and_then(|s| s.node_selector.clone()).filter(|m| !m.is_empty());
        let node_selector = spec
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|na| na.required_during_scheduling_ignored_during_execution.as_ref())
            .map(NodeSelectorMatcher::new);
        RequiredNodeAffinity { label_selector, node_selector }
    }

    pub fn matches(&self, node: &Node) -> bool {
        if let Some(sel) = &self.label_selector {
            let labels = node.labels();
            if !sel.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                return false;
            }
        }
        match &self.node_selector {
            Some(ns) => ns.matches(node),
            None => true,
        }
    }
}

/// Weighted preferred terms; terms with weight 0 or nothing in them are dropped.
#[derive(Debug, Clone, Default)]
pub struct PreferredTerms {
    terms: Vec<(Term, i64)>,
}

impl PreferredTerms {
    pub fn new(terms: &[PreferredSchedulingTerm]) -> Result<Self, String> {
        let mut out = Vec::new();
        for t in terms {
            if t.weight == 0 || Term::is_empty(&t.preference) {
                continue;
            }
            let parsed = Term::new(&t.preference);
            if let Some(e) = parsed.error() {
                return Err(e.to_string());
            }
            out.push((parsed, i64::from(t.weight)));
        }
        Ok(PreferredTerms { terms: out })
    }

    /// The sum of the weights of the terms the node matches.
    pub fn score(&self, node: &Node) -> i64 {
        self.terms.iter().filter(|(t, _)| t.matches(node.labels(), node.name())).map(|(_, w)| w).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, labels: serde_json::Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).expect("node")
    }

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).expect("pod")
    }

    fn required(terms: serde_json::Value) -> serde_json::Value {
        json!({"containers": [], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}})
    }

    #[test]
    fn required_affinity_table() {
        let n = node("n1", json!({"zone": "a", "gpu": "4"}));
        let cases = [
            ("no constraints", json!({"containers": []}), true),
            ("nodeSelector match", json!({"containers": [], "nodeSelector": {"zone": "a"}}), true),
            ("nodeSelector mismatch", json!({"containers": [], "nodeSelector": {"zone": "b"}}), false),
            ("In", required(json!([{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}])), true),
            ("NotIn", required(json!([{"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}])), false),
            ("Exists", required(json!([{"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}])), true),
            ("DoesNotExist", required(json!([{"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}])), false),
            ("Gt", required(json!([{"matchExpressions": [{"key": "gpu", "operator": "Gt", "values": ["2"]}]}])), true),
            ("Lt", required(json!([{"matchExpressions": [{"key": "gpu", "operator": "Lt", "values": ["2"]}]}])), false),
            ("terms are ORed", required(json!([
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}])), true),
            ("empty term matches nothing", required(json!([{}])), false),
            ("matchFields name", required(json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}])), true),
            ("matchFields other name", required(json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}])), false),
            ("bad operator never matches", required(json!([{"matchExpressions": [{"key": "zone", "operator": "Foo", "values": ["a"]}]}])), false),
        ];
        for (name, spec, want) in cases {
            assert_eq!(RequiredNodeAffinity::of(&pod(spec)).matches(&n), want, "{name}");
        }
    }

    #[test]
    fn preferred_scores_sum_weights() {
        let n = node("n1", json!({"zone": "a", "disk": "ssd"}));
        let terms: Vec<PreferredSchedulingTerm> = serde_json::from_value(json!([
            {"weight": 5, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
            {"weight": 3, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}},
            {"weight": 7, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["hdd"]}]}},
            {"weight": 0, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}}
        ]))
        .expect("terms");
        assert_eq!(PreferredTerms::new(&terms).expect("parse").score(&n), 8);
    }
}
