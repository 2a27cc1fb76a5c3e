//! Read access to the cluster objects plugins consult beyond nodes and pods (informer
//! caches in the running scheduler, plain maps in tests).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod, ReplicationController, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

/// What plugins may look up.
pub trait Listers: Send + Sync {
    fn services(&self, namespace: &str) -> Vec<Arc<Service>>;
    fn replication_controller(&self, namespace: &str, name: &str) -> Option<Arc<ReplicationController>>;
    fn replica_set(&self, namespace: &str, name: &str) -> Option<Arc<ReplicaSet>>;
    fn stateful_set(&self, namespace: &str, name: &str) -> Option<Arc<StatefulSet>>;
    fn namespaces(&self) -> Vec<Arc<Namespace>>;
    fn persistent_volume_claim(&self, namespace: &str, name: &str) -> Option<Arc<PersistentVolumeClaim>>;
    fn pod_disruption_budgets(&self) -> Vec<Arc<PodDisruptionBudget>>;
    /// The latest version of a pod from the informer.
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>>;

    /// The labels of a namespace, if it is known.
    fn namespace_labels(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.namespaces().into_iter().find(|ns| ns.metadata.name.as_deref() == Some(name)).map(|ns| ns.metadata.labels.clone().unwrap_or_default())
    }
}

fn key_of(namespace: Option<&str>, name: Option<&str>) -> (String, String) {
    (namespace.unwrap_or("").to_string(), name.unwrap_or("").to_string())
}

/// Listers over fixed objects, for tests and tools.
#[derive(Default, Clone)]
pub struct StaticListers {
    pub services: Vec<Arc<Service>>,
    pub replication_controllers: Vec<Arc<ReplicationController>>,
    pub replica_sets: Vec<Arc<ReplicaSet>>,
    pub stateful_sets: Vec<Arc<StatefulSet>>,
    pub namespaces: Vec<Arc<Namespace>>,
    pub persistent_volume_claims: Vec<Arc<PersistentVolumeClaim>>,
    pub pod_disruption_budgets: Vec<Arc<PodDisruptionBudget>>,
    pub pods: Vec<Arc<Pod>>,
}

impl Listers for StaticListers {
    fn services(&self, namespace: &str) -> Vec<Arc<Service>> {
        self.services.iter().filter(|s| s.metadata.namespace.as_deref() == Some(namespace)).cloned().collect()
    }
    fn replication_controller(&self, namespace: &str, name: &str) -> Option<Arc<ReplicationController>> {
        let want = key_of(Some(namespace), Some(name));
        self.replication_controllers.iter().find(|o| key_of(o.metadata.namespace.as_deref(), o.metadata.name.as_deref()) == want).cloned()
    }
    fn replica_set(&self, namespace: &str, name: &str) -> Option<Arc<ReplicaSet>> {
        let want = key_of(Some(namespace), Some(name));
        self.replica_sets.iter().find(|o| key_of(o.metadata.namespace.as_deref(), o.metadata.name.as_deref()) == want).cloned()
    }
    fn stateful_set(&self, namespace: &str, name: &str) -> Option<Arc<StatefulSet>> {
        let want = key_of(Some(namespace), Some(name));
        self.stateful_sets.iter().find(|o| key_of(o.metadata.namespace.as_deref(), o.metadata.name.as_deref()) == want).cloned()
    }
    fn namespaces(&self) -> Vec<Arc<Namespace>> {
        self.namespaces.clone()
    }
    fn persistent_volume_claim(&self, namespace: &str, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
        let want = key_of(Some(namespace), Some(name));
        self.persistent_volume_claims.iter().find(|o| key_of(o.metadata.namespace.as_deref(), o.metadata.name.as_deref()) == want).cloned()
    }
    fn pod_disruption_budgets(&self) -> Vec<Arc<PodDisruptionBudget>> {
        self.pod_disruption_budgets.clone()
    }
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        let want = key_of(Some(namespace), Some(name));
        self.pods.iter().find(|o| key_of(o.metadata.namespace.as_deref(), o.metadata.name.as_deref()) == want).cloned()
    }
}
