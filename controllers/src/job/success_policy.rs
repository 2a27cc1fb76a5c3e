//! `spec.successPolicy` of Indexed jobs: the job has succeeded once one rule holds, before
//! every index has: all of the rule's `succeededIndexes` (or `succeededCount` of them)
//! succeeded, or, without indexes, `succeededCount` indexes at all.

use std::collections::BTreeSet;

use k8s_openapi::api::batch::v1::SuccessPolicy;

use super::parse_intervals_below;

/// Upstream's `matchSuccessPolicy`: the SuccessCriteriaMet message ("Matched rules at
/// index N") of the first rule that holds.
pub fn evaluate(policy: Option<&SuccessPolicy>, completions: i32, succeeded: &BTreeSet<i32>) -> Option<String> {
    let policy = policy?;
    if succeeded.is_empty() {
        return None;
    }
    policy.rules.iter().enumerate().find_map(|(index, rule)| {
        let holds = match (&rule.succeeded_indexes, rule.succeeded_count) {
            (Some(text), count) => {
                let wanted = parse_intervals_below(text, completions);
                // Indexes that do not parse make the rule match nothing.
                if wanted.is_empty() {
                    return None;
                }
                let done = wanted.intersection(succeeded).count();
                done == wanted.len() || count.is_some_and(|c| i64::try_from(done).unwrap_or(i64::MAX) >= i64::from(c))
            }
            (None, Some(count)) => i64::try_from(succeeded.len()).unwrap_or(i64::MAX) >= i64::from(count),
            (None, None) => false,
        };
        holds.then(|| format!("Matched rules at index {index}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn first_rule_that_holds() {
        let set = |v: &[i32]| v.iter().copied().collect::<BTreeSet<i32>>();
        let policy = |rules| -> SuccessPolicy { serde_json::from_value(json!({ "rules": rules })).expect("policy") };
        let cases = [
            ("no successes", policy(json!([{"succeededCount": 1}])), set(&[]), None),
            ("count", policy(json!([{"succeededCount": 2}])), set(&[0, 3]), Some("Matched rules at index 0")),
            ("count short", policy(json!([{"succeededCount": 2}])), set(&[4]), None),
            ("indexes", policy(json!([{"succeededIndexes": "0"}])), set(&[0]), Some("Matched rules at index 0")),
            ("indexes missing one", policy(json!([{"succeededIndexes": "0-2"}])), set(&[0, 2]), None),
            ("indexes with count", policy(json!([{"succeededIndexes": "0-2", "succeededCount": 2}])), set(&[0, 2]), Some("Matched rules at index 0")),
            ("second rule", policy(json!([{"succeededIndexes": "4"}, {"succeededIndexes": "1,3"}])), set(&[1, 3]), Some("Matched rules at index 1")),
            ("indexes beyond completions", policy(json!([{"succeededIndexes": "7-9"}])), set(&[1]), None),
        ];
        for (what, p, succeeded, want) in cases {
            assert_eq!(evaluate(Some(&p), 5, &succeeded).as_deref(), want, "{what}");
        }
        assert_eq!(evaluate(None, 5, &set(&[0])), None);
    }
}
