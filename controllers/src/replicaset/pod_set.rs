//! What the ReplicaSet sync needs to know about the kind it keeps pods for: ReplicaSets
//! and ReplicationControllers are the same controller (upstream runs the ReplicaSet
//! controller over ReplicationControllers converted to ReplicaSets), differing only in
//! their API, their selector's shape and the names they go by. Statuses are read and
//! written in ReplicaSet's shape, whose fields ReplicationController's mirror.

use std::fmt::Debug;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use ironkube_machinery::selectors::label::Selector;
use k8s_openapi::NamespaceResourceScope;
use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A kind that keeps `replicas` pods made from a template and matched by a selector.
/// Its controllerRefs name `Self::api_version` and `Self::kind` (from [`Resource`]).
pub trait PodSet: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned + Serialize + Send + Sync + 'static {
    /// The controller's name in `--controllers` and in reconcile spans.
    const CONTROLLER: &'static str;
    /// The component Events come from.
    const EVENT_SOURCE: &'static str;
    /// The resource's plural (for the informer's logs).
    const RESOURCE: &'static str;

    /// The pod selector; None if it is missing or invalid (the object is then left alone).
    fn selector(&self) -> Option<Selector>;
    /// `spec.replicas` (defaulted to 1 like the API server does).
    fn replicas(&self) -> i32;
    /// `spec.minReadySeconds`.
    fn min_ready_seconds(&self) -> i32;
    /// The pod template.
    fn template(&self) -> Option<&PodTemplateSpec>;
    /// The status, in ReplicaSet's shape.
    fn status(&self) -> ReplicaSetStatus;
    /// Replaces the status (given in ReplicaSet's shape).
    fn set_status(&mut self, status: ReplicaSetStatus);
}

impl PodSet for ReplicaSet {
    const CONTROLLER: &'static str = "replicaset";
    const EVENT_SOURCE: &'static str = "replicaset-controller";
    const RESOURCE: &'static str = "replicasets";

    fn selector(&self) -> Option<Selector> {
        Selector::from_label_selector(Some(&self.spec.as_ref()?.selector)).ok()
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
        self.status.clone().unwrap_or_default()
    }

    fn set_status(&mut self, status: ReplicaSetStatus) {
        self.status = Some(status);
    }
}
