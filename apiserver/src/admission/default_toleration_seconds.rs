//! DefaultTolerationSeconds: a pod that does not tolerate `node.kubernetes.io/not-ready` or
//! `node.kubernetes.io/unreachable` with effect NoExecute gets a toleration for each, for
//! 300 seconds, on create and on update.

use futures::FutureExt;
use futures::future::BoxFuture;
use ironkube_machinery::ApiError;
use ironkube_machinery::resources::ResourceInfo;
use serde_json::{Value, json};

use crate::registry::store::Admission;

pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";
/// Upstream's `--default-not-ready-toleration-seconds` and `--default-unreachable-toleration-seconds`.
const TOLERATION_SECONDS: i64 = 300;

pub struct DefaultTolerationSeconds;

fn is_pod(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.plural == "pods"
}

/// Adds the tolerations `pod` lacks.
fn add_default_tolerations(pod: &mut Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else { return };
    let tolerates = |tolerations: &[Value], taint: &str| {
        tolerations.iter().any(|t| {
            let key = t["key"].as_str().unwrap_or("");
            let effect = t["effect"].as_str().unwrap_or("");
            (key == taint || key.is_empty()) && (effect == "NoExecute" || effect.is_empty())
        })
    };
    let Some(tolerations) = spec.entry("tolerations").or_insert_with(|| json!([])).as_array_mut() else { return };
    for taint in [NOT_READY_TAINT, UNREACHABLE_TAINT] {
        if !tolerates(tolerations, taint) {
            tolerations.push(json!({"key": taint, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": TOLERATION_SECONDS}));
        }
    }
}

impl Admission for DefaultTolerationSeconds {
    fn admit_create<'a>(&'a self, info: &'static ResourceInfo, _namespace: Option<&'a str>, obj: &'a mut Value) -> BoxFuture<'a, Result<(), ApiError>> {
        if is_pod(info) {
            add_default_tolerations(obj);
        }
        async { Ok(()) }.boxed()
    }

    fn admit_update(&self, info: &'static ResourceInfo, new: &mut Value, _old: &Value) -> Result<(), ApiError> {
        if is_pod(info) {
            add_default_tolerations(new);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tolerations_after(tolerations: Value) -> Value {
        let mut pod = json!({"spec": {"tolerations": tolerations}});
        add_default_tolerations(&mut pod);
        pod["spec"]["tolerations"].clone()
    }

    #[test]
    fn adds_what_the_pod_does_not_tolerate() {
        let not_ready = json!({"key": NOT_READY_TAINT, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300});
        let unreachable = json!({"key": UNREACHABLE_TAINT, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300});
        assert_eq!(tolerations_after(json!([])), json!([not_ready, unreachable]));
        let own = json!({"key": NOT_READY_TAINT, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5});
        assert_eq!(tolerations_after(json!([own])), json!([own, unreachable]));
        // An empty key tolerates every taint; an empty effect every effect.
        let all = json!({"operator": "Exists"});
        assert_eq!(tolerations_after(json!([all])), json!([all]));
        let other_effect = json!({"key": UNREACHABLE_TAINT, "operator": "Exists", "effect": "NoSchedule"});
        assert_eq!(tolerations_after(json!([other_effect])), json!([other_effect, not_ready, unreachable]));
    }
}
