//! `spec.podFailurePolicy`: which rule a failed pod matches (the first one, in order) and
//! what that means for the job: fail it at once (FailJob), fail the pod's index
//! (FailIndex), not count the failure (Ignore) or count it as usual (Count). A rule
//! matches on a terminated container's non-zero exit code (`In`/`NotIn`, optionally one
//! container by name; regular containers before init containers) or on a pod condition.

use k8s_openapi::api::batch::v1::{PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyOnPodConditionsPattern};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodCondition, PodStatus};

/// A rule's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    FailJob,
    FailIndex,
    Ignore,
    Count,
}

impl RuleAction {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "FailJob" => Some(RuleAction::FailJob),
            "FailIndex" => Some(RuleAction::FailIndex),
            "Ignore" => Some(RuleAction::Ignore),
            "Count" => Some(RuleAction::Count),
            _ => None,
        }
    }
}

/// What the policy says about one failed pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The matched rule's action (none: no rule matched).
    pub action: Option<RuleAction>,
    /// Whether the failure counts towards `backoffLimit` (and the index's limit).
    pub counts: bool,
    /// With FailJob: why the job fails (the FailureTarget/Failed condition message).
    pub fail_job_message: Option<String>,
}

impl Verdict {
    const UNMATCHED: Verdict = Verdict { action: None, counts: true, fail_job_message: None };
}

/// Upstream's `matchPodFailurePolicy` for a failed pod.
pub fn evaluate(policy: Option<&PodFailurePolicy>, pod: &Pod) -> Verdict {
    let Some(policy) = policy else { return Verdict::UNMATCHED };
    let default_status = PodStatus::default();
    let status = pod.status.as_ref().unwrap_or(&default_status);
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    for (index, rule) in policy.rules.iter().enumerate() {
        // An action this version does not know makes the rule match nothing.
        let what = if let Some(req) = &rule.on_exit_codes {
            on_exit_codes(status, req).map(|c| {
                let code = c.state.as_ref().and_then(|s| s.terminated.as_ref()).map_or(0, |t| t.exit_code);
                format!("Container {} for pod {ns}/{name} failed with exit code {code}", c.name)
            })
        } else if let Some(patterns) = &rule.on_pod_conditions {
            on_pod_conditions(status, patterns).map(|c| format!("Pod {ns}/{name} has condition {}", c.type_))
        } else {
            None
        };
        let Some(what) = what else { continue };
        match RuleAction::parse(&rule.action) {
            Some(RuleAction::Ignore) => return Verdict { action: Some(RuleAction::Ignore), counts: false, fail_job_message: None },
            Some(RuleAction::FailJob) => {
                return Verdict {
                    action: Some(RuleAction::FailJob),
                    counts: true,
                    fail_job_message: Some(format!("{what} matching FailJob rule at index {index}")),
                };
            }
            Some(action) => return Verdict { action: Some(action), counts: true, fail_job_message: None },
            None => continue,
        }
    }
    Verdict::UNMATCHED
}

fn on_exit_codes<'a>(status: &'a PodStatus, req: &PodFailurePolicyOnExitCodesRequirement) -> Option<&'a ContainerStatus> {
    let matching = |list: &'a Option<Vec<ContainerStatus>>| {
        list.iter().flatten().find(|c| {
            let Some(t) = c.state.as_ref().and_then(|s| s.terminated.as_ref()) else { return false };
            let name_ok = req.container_name.as_deref().is_none_or(|n| n == c.name);
            let listed = req.values.contains(&t.exit_code);
            name_ok
                && t.exit_code != 0
                && match req.operator.as_str() {
                    "In" => listed,
                    "NotIn" => !listed,
                    _ => false,
                }
        })
    };
    matching(&status.container_statuses).or_else(|| matching(&status.init_container_statuses))
}

fn on_pod_conditions<'a>(status: &'a PodStatus, patterns: &[PodFailurePolicyOnPodConditionsPattern]) -> Option<&'a PodCondition> {
    status.conditions.iter().flatten().find(|c| patterns.iter().any(|p| p.type_ == c.type_ && p.status == c.status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn policy(rules: Value) -> PodFailurePolicy {
        serde_json::from_value(json!({ "rules": rules })).expect("policy")
    }

    fn failed_pod(codes: &[(&str, i32)], conditions: Value) -> Pod {
        let statuses: Vec<Value> = codes
            .iter()
            .map(|(name, code)| json!({"name": name, "image": "i", "imageID": "", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": code}}}))
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": "pi-x", "namespace": "ns"},
            "status": {"phase": "Failed", "containerStatuses": statuses, "conditions": conditions},
        }))
        .expect("pod")
    }

    #[test]
    fn rules_match_in_order() {
        let fail_42 = json!([{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]);
        let cases: Vec<(&str, Option<PodFailurePolicy>, Pod, Verdict)> = vec![
            ("no policy", None, failed_pod(&[("main", 42)], json!([])), Verdict::UNMATCHED),
            (
                "FailJob on exit code",
                Some(policy(fail_42.clone())),
                failed_pod(&[("main", 42)], json!([])),
                Verdict {
                    action: Some(RuleAction::FailJob),
                    counts: true,
                    fail_job_message: Some("Container main for pod ns/pi-x failed with exit code 42 matching FailJob rule at index 0".into()),
                },
            ),
            ("other exit code", Some(policy(fail_42)), failed_pod(&[("main", 1)], json!([])), Verdict::UNMATCHED),
            (
                "NotIn ignores listed codes, exit code 0 never matches",
                Some(policy(json!([{"action": "Ignore", "onExitCodes": {"operator": "NotIn", "values": [1]}}]))),
                failed_pod(&[("a", 0), ("b", 1)], json!([])),
                Verdict::UNMATCHED,
            ),
            (
                "container name",
                Some(policy(json!([
                    {"action": "Ignore", "onExitCodes": {"containerName": "side", "operator": "In", "values": [3]}},
                    {"action": "Count", "onExitCodes": {"operator": "In", "values": [3]}}
                ]))),
                failed_pod(&[("main", 3)], json!([])),
                Verdict { action: Some(RuleAction::Count), counts: true, fail_job_message: None },
            ),
            (
                "DisruptionTarget ignored",
                Some(policy(json!([{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]))),
                failed_pod(&[("main", 137)], json!([{"type": "DisruptionTarget", "status": "True"}])),
                Verdict { action: Some(RuleAction::Ignore), counts: false, fail_job_message: None },
            ),
            (
                "FailJob on condition",
                Some(policy(json!([{"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]))),
                failed_pod(&[], json!([{"type": "DisruptionTarget", "status": "True"}])),
                Verdict {
                    action: Some(RuleAction::FailJob),
                    counts: true,
                    fail_job_message: Some("Pod ns/pi-x has condition DisruptionTarget matching FailJob rule at index 0".into()),
                },
            ),
            (
                "FailIndex",
                Some(policy(json!([{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [1]}}]))),
                failed_pod(&[("main", 1)], json!([])),
                Verdict { action: Some(RuleAction::FailIndex), counts: true, fail_job_message: None },
            ),
        ];
        for (what, policy, pod, want) in cases {
            assert_eq!(evaluate(policy.as_ref(), &pod), want, "{what}");
        }
    }
}
