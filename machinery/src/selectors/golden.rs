//! Replays outputs recorded from upstream (k8s.io/apimachinery v0.33.13) for a corpus of
//! generated selector strings, many of them malformed: the rendering or the exact error
//! text, the field-selector terms, and matching against fixed label and field sets.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{field, label};

const RECORDED: &str = include_str!("testdata/upstream-v1.33.jsonl");

#[derive(Deserialize)]
struct Header {
    label_sets: Vec<BTreeMap<String, String>>,
    field_sets: Vec<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct Case {
    kind: String,
    input: String,
    ok: bool,
    /// The rendering when `ok`, else the error message.
    out: String,
    #[serde(default)]
    matches: Vec<bool>,
    /// Field-selector terms as `field|operator|value`.
    #[serde(default)]
    terms: Vec<String>,
}

/// What our implementation produces for a case, in the recorded shape.
fn replay(case: &Case, header: &Header) -> (bool, String, Vec<bool>, Vec<String>) {
    match case.kind.as_str() {
        "label" => match label::Selector::parse(&case.input) {
            Ok(s) => {
                let matches = header.label_sets.iter().map(|l| s.matches(l)).collect();
                (true, s.to_string(), matches, Vec::new())
            }
            Err(e) => (false, e.to_string(), Vec::new(), Vec::new()),
        },
        "field" => match field::Selector::parse(&case.input) {
            Ok(s) => {
                let matches = header.field_sets.iter().map(|f| s.matches(f)).collect();
                let terms = s
                    .requirements()
                    .iter()
                    .map(|r| format!("{}|{}|{}", r.field, r.operator, r.value))
                    .collect();
                (true, s.to_string(), matches, terms)
            }
            Err(e) => (false, e.to_string(), Vec::new(), Vec::new()),
        },
        other => panic!("unknown case kind {other}"),
    }
}

#[test]
fn recorded_upstream_outputs() {
    let mut lines = RECORDED.lines();
    let header: Header =
        serde_json::from_str(lines.next().expect("a header line")).expect("the header parses");
    let mut count = 0;
    for line in lines {
        let case: Case = serde_json::from_str(line).expect("a recorded case parses");
        let got = replay(&case, &header);
        let want = (
            case.ok,
            case.out.clone(),
            case.matches.clone(),
            case.terms.clone(),
        );
        assert_eq!(got, want, "{} selector {:?}", case.kind, case.input);
        count += 1;
    }
    assert!(count > 200, "only {count} recorded cases");
}
