//! `metav1.LabelSelector` validation (upstream's `ValidateLabelSelector`) and the selector it
//! denotes (`LabelSelectorAsSelector`): a nil selector selects nothing, an empty one
//! everything.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use serde_json::Value;

use super::labels::{label_value, qualified_name, validate_label_name, validate_labels};
use crate::{FieldError, Path};

/// `ValidateLabelSelector` with label values checked (`AllowInvalidLabelValueInSelector` off).
pub fn validate_label_selector(sel: Option<&LabelSelector>, path: &Path) -> Vec<FieldError> {
    let Some(sel) = sel else { return Vec::new() };
    let mut errs = Vec::new();
    if let Some(labels) = &sel.match_labels {
        errs.extend(validate_labels(labels, &path.child("matchLabels")));
    }
    for (i, req) in sel.match_expressions.iter().flatten().enumerate() {
        errs.extend(validate_requirement(
            req,
            &path.child("matchExpressions").index(i),
        ));
    }
    errs
}

fn validate_requirement(req: &LabelSelectorRequirement, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let values = req.values.as_deref().unwrap_or_default();
    match req.operator.as_str() {
        "In" | "NotIn" => {
            if values.is_empty() {
                errs.push(FieldError::required(
                    path.child("values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                ));
            }
        }
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                errs.push(FieldError::forbidden(
                    path.child("values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ));
            }
        }
        other => errs.push(FieldError::invalid(
            path.child("operator"),
            Value::String(other.to_string()),
            "not a valid selector operator",
        )),
    }
    errs.extend(validate_label_name(&req.key, &path.child("key")));
    for (i, v) in values.iter().enumerate() {
        errs.extend(label_value(v).into_iter().map(|m| {
            FieldError::invalid(path.child("values").index(i), Value::String(v.clone()), m)
        }));
    }
    errs
}

/// What a `LabelSelector` selects.
#[derive(Debug, Clone, PartialEq)]
pub enum Selector {
    /// A nil selector.
    Nothing,
    /// An empty selector (no labels, no expressions).
    Everything,
    /// Requirements, all of which must hold.
    Requirements(Vec<Requirement>),
}

/// One requirement of a compiled selector.
#[derive(Debug, Clone, PartialEq)]
pub struct Requirement {
    pub key: String,
    pub op: Op,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl Selector {
    /// Upstream's `Selector.Empty()`: true only for the select-everything selector.
    pub fn is_empty(&self) -> bool {
        matches!(self, Selector::Everything)
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Selector::Nothing => false,
            Selector::Everything => true,
            Selector::Requirements(reqs) => reqs.iter().all(|r| {
                let v = labels.get(&r.key);
                match r.op {
                    Op::In => v.is_some_and(|v| r.values.contains(v)),
                    Op::NotIn => v.is_none_or(|v| !r.values.contains(v)),
                    Op::Exists => v.is_some(),
                    Op::DoesNotExist => v.is_none(),
                }
            }),
        }
    }
}

/// `LabelSelectorAsSelector`: `Err` when a requirement could not be built (bad key, value or
/// operator, missing values).
pub fn as_selector(sel: Option<&LabelSelector>) -> Result<Selector, String> {
    let Some(sel) = sel else {
        return Ok(Selector::Nothing);
    };
    let labels = sel.match_labels.as_ref().map_or(0, BTreeMap::len);
    let exprs = sel.match_expressions.as_ref().map_or(0, Vec::len);
    if labels + exprs == 0 {
        return Ok(Selector::Everything);
    }
    let mut reqs = Vec::new();
    for (k, v) in sel.match_labels.iter().flatten() {
        reqs.push(requirement(k, Op::In, vec![v.clone()])?);
    }
    for e in sel.match_expressions.iter().flatten() {
        let op = match e.operator.as_str() {
            "In" => Op::In,
            "NotIn" => Op::NotIn,
            "Exists" => Op::Exists,
            "DoesNotExist" => Op::DoesNotExist,
            other => return Err(format!("{other:?} is not a valid label selector operator")),
        };
        reqs.push(requirement(
            &e.key,
            op,
            e.values.clone().unwrap_or_default(),
        )?);
    }
    Ok(Selector::Requirements(reqs))
}

fn requirement(key: &str, op: Op, values: Vec<String>) -> Result<Requirement, String> {
    if let Some(m) = qualified_name(key).into_iter().next() {
        return Err(m);
    }
    match op {
        Op::In | Op::NotIn if values.is_empty() => {
            return Err("for 'in', 'notin' operators, values set can't be empty".to_string());
        }
        Op::Exists | Op::DoesNotExist if !values.is_empty() => {
            return Err("values set must be empty for exists and does not exist".to_string());
        }
        _ => {}
    }
    if let Some(m) = values.iter().flat_map(|v| label_value(v)).next() {
        return Err(m);
    }
    Ok(Requirement {
        key: key.to_string(),
        op,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn nil_empty_and_requirements() {
        assert_eq!(as_selector(None), Ok(Selector::Nothing));
        assert!(!Selector::Nothing.matches(&labels(&[])));
        let empty = LabelSelector::default();
        assert!(as_selector(Some(&empty)).expect("valid in test").is_empty());
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "NotIn".into(),
                values: Some(vec!["db".into()]),
            }]),
        };
        let s = as_selector(Some(&sel)).expect("valid in test");
        assert!(s.matches(&labels(&[("app", "web")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "db")])));
        assert!(!s.matches(&labels(&[("app", "api")])));
    }

    #[test]
    fn validation_messages() {
        let sel = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "app".into(),
                operator: "In".into(),
                values: None,
            }]),
        };
        let errs = validate_label_selector(Some(&sel), &Path::new("spec").child("selector"));
        assert_eq!(
            errs[0].to_string(),
            "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
        );
        assert!(as_selector(Some(&sel)).is_err());
    }
}
