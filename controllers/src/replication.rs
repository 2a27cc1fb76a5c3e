//! The ReplicationController controller: upstream runs the ReplicaSet controller over
//! ReplicationControllers, and so does this one (`crate::replicaset`, through
//! [`PodSet`]). What differs: the kind (`v1 ReplicationController` in controllerRefs), the
//! selector (a plain label map, which the API server defaults to the template's labels),
//! the Events' source (`replication-controller`) and the status type, whose fields are
//! ReplicaSet's.

use k8s_openapi::api::apps::v1::{ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{PodTemplateSpec, ReplicationController, ReplicationControllerCondition, ReplicationControllerStatus};
use ironkube_machinery::selectors::label::Selector;
use tokio_util::sync::CancellationToken;

use crate::replicaset::{self, PodSet};

/// The controller's name in `--controllers`.
pub const NAME: &str = <ReplicationController as PodSet>::CONTROLLER;

impl PodSet for ReplicationController {
    const CONTROLLER: &'static str = "replicationcontroller";
    const EVENT_SOURCE: &'static str = "replication-controller";
    const RESOURCE: &'static str = "replicationcontrollers";

    fn selector(&self) -> Option<Selector> {
        // Like upstream's conversion to a ReplicaSet: no selector selects nothing.
        self.spec.as_ref()?.selector.as_ref().map(Selector::from_set)
    }

    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }

    fn min_ready_seconds(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0)
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }

    fn status(&self) -> ReplicaSetStatus {
        let s = self.status.clone().unwrap_or_default();
        ReplicaSetStatus {
            replicas: s.replicas,
            fully_labeled_replicas: s.fully_labeled_replicas,
            ready_replicas: s.ready_replicas,
            available_replicas: s.available_replicas,
            observed_generation: s.observed_generation,
            // ReplicationControllers do not count terminating pods.
            terminating_replicas: None,
            conditions: s.conditions.map(|cs| {
                cs.into_iter()
                    .map(|c| ReplicaSetCondition {
                        type_: c.type_,
                        status: c.status,
                        last_transition_time: c.last_transition_time,
                        reason: c.reason,
                        message: c.message,
                    })
                    .collect()
            }),
        }
    }

    fn set_status(&mut self, s: ReplicaSetStatus) {
        self.status = Some(ReplicationControllerStatus {
            replicas: s.replicas,
            fully_labeled_replicas: s.fully_labeled_replicas,
            ready_replicas: s.ready_replicas,
            available_replicas: s.available_replicas,
            observed_generation: s.observed_generation,
            conditions: s.conditions.map(|cs| {
                cs.into_iter()
                    .map(|c| ReplicationControllerCondition {
                        type_: c.type_,
                        status: c.status,
                        last_transition_time: c.last_transition_time,
                        reason: c.reason,
                        message: c.message,
                    })
                    .collect()
            }),
        });
    }
}

/// Runs the ReplicationController controller until `stop`.
pub async fn run(client: kube::Client, stop: CancellationToken) {
    replicaset::run_for::<ReplicationController>(client, stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use kube::Resource;
    use serde_json::json;

    fn rc(spec: serde_json::Value) -> ReplicationController {
        serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "ns", "uid": "rc-uid"}, "spec": spec})).expect("rc")
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn selectors_are_plain_label_maps() {
        // (spec, pod labels, selected?)
        let cases = [
            (json!({"selector": {"app": "web"}}), labels(&[("app", "web"), ("x", "y")]), Some(true)),
            (json!({"selector": {"app": "web", "tier": "fe"}}), labels(&[("app", "web")]), Some(false)),
            (json!({"selector": {"app": "web"}}), labels(&[("app", "db")]), Some(false)),
            (json!({"template": {"metadata": {"labels": {"app": "web"}}}}), labels(&[("app", "web")]), None),
            (json!({}), labels(&[]), None),
        ];
        for (spec, pod_labels, want) in cases {
            let got = rc(spec.clone()).selector().map(|s| s.matches(&pod_labels));
            assert_eq!(got, want, "{spec}");
        }
    }

    #[test]
    fn spec_defaults_and_names() {
        let rc = rc(json!({"selector": {"app": "web"}, "minReadySeconds": 4}));
        assert_eq!((rc.replicas(), rc.min_ready_seconds()), (1, 4));
        assert_eq!((ReplicationController::api_version(&()).as_ref(), ReplicationController::kind(&()).as_ref()), ("v1", "ReplicationController"));
        assert_eq!((NAME, ReplicationController::EVENT_SOURCE), ("replicationcontroller", "replication-controller"));
    }

    #[test]
    fn status_round_trips_through_the_replica_set_shape() {
        let mut rc = rc(json!({"selector": {"app": "web"}}));
        rc.status = Some(
            serde_json::from_value(json!({
                "replicas": 3, "fullyLabeledReplicas": 2, "readyReplicas": 1, "availableReplicas": 1, "observedGeneration": 5,
                "conditions": [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "quota", "lastTransitionTime": "2025-01-01T00:00:00Z"}],
            }))
            .expect("status"),
        );
        let shared = rc.status();
        assert_eq!((shared.replicas, shared.ready_replicas, shared.observed_generation), (3, Some(1), Some(5)));
        let cond = shared.conditions.as_ref().and_then(|c| c.first()).expect("condition");
        assert_eq!((cond.type_.as_str(), cond.reason.as_deref()), ("ReplicaFailure", Some("FailedCreate")));
        let before = rc.status.clone();
        rc.set_status(shared);
        assert_eq!(rc.status, before);
    }
}
