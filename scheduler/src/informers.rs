//! List/watch through `kube`: every watched kind is kept in a map (the listers read it),
//! and pod, node and claim changes are turned into cache updates, queue operations and
//! cluster events, as upstream's `eventhandlers.go` does.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Node, PersistentVolumeClaim, Pod, ReplicationController, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use kube::Resource;
use kube::runtime::WatchStreamExt;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::framework::interface::{ActionType, ClusterEvent, EventObject, EventResource};
use crate::framework::listers::Listers;
use crate::framework::node_info::{NodeExt, PodExt};
use crate::schedule_one::Scheduler;

/// Objects of one kind by `namespace/name`.
pub type ObjectMap<K> = Arc<RwLock<HashMap<String, Arc<K>>>>;

fn key<K: Resource>(o: &K) -> String {
    let meta = o.meta();
    format!("{}/{}", meta.namespace.as_deref().unwrap_or(""), meta.name.as_deref().unwrap_or(""))
}

fn read<K>(m: &ObjectMap<K>) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<K>>> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

fn write<K>(m: &ObjectMap<K>) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<K>>> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

/// Watches `api`, keeping `objects` current and calling `on_change(old, new)` for every
/// add (None, Some), update (Some, Some) and delete (Some, None), relists included.
/// `synced` turns true after the first complete list.
pub async fn run_informer<K, F>(api: Api<K>, config: watcher::Config, objects: ObjectMap<K>, synced: watch::Sender<bool>, mut on_change: F, stop: CancellationToken)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    F: FnMut(Option<Arc<K>>, Option<Arc<K>>) + Send,
{
    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
    let mut relist: Option<HashMap<String, Arc<K>>> = None;
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => return,
            e = stream.next() => match e {
                Some(Ok(e)) => e,
                Some(Err(e)) => {
                    tracing::warn!(kind = std::any::type_name::<K>(), error = %e, "watch failed; retrying");
                    continue;
                }
                None => return,
            },
        };
        match event {
            Event::Init => relist = Some(HashMap::new()),
            Event::InitApply(o) => {
                if let Some(buf) = relist.as_mut() {
                    buf.insert(key(&o), Arc::new(o));
                }
            }
            Event::InitDone => {
                let fresh = relist.take().unwrap_or_default();
                let gone: Vec<Arc<K>> = read(&objects).iter().filter(|(k, _)| !fresh.contains_key(*k)).map(|(_, v)| v.clone()).collect();
                for old in gone {
                    write(&objects).remove(&key(old.as_ref()));
                    on_change(Some(old), None);
                }
                for (k, new) in fresh {
                    let old = write(&objects).insert(k, new.clone());
                    on_change(old, Some(new));
                }
                synced.send_replace(true);
            }
            Event::Apply(o) => {
                let new = Arc::new(o);
                let old = write(&objects).insert(key(new.as_ref()), new.clone());
                on_change(old, Some(new));
            }
            Event::Delete(o) => {
                let old = write(&objects).remove(&key(&o)).unwrap_or_else(|| Arc::new(o));
                on_change(Some(old), None);
            }
        }
    }
}

/// The listers over informer maps.
#[derive(Default, Clone)]
pub struct InformerListers {
    pub pods: ObjectMap<Pod>,
    pub nodes: ObjectMap<Node>,
    pub services: ObjectMap<Service>,
    pub replication_controllers: ObjectMap<ReplicationController>,
    pub replica_sets: ObjectMap<ReplicaSet>,
    pub stateful_sets: ObjectMap<StatefulSet>,
    pub namespaces: ObjectMap<Namespace>,
    pub persistent_volume_claims: ObjectMap<PersistentVolumeClaim>,
    pub pod_disruption_budgets: ObjectMap<PodDisruptionBudget>,
}

impl Listers for InformerListers {
    fn services(&self, namespace: &str) -> Vec<Arc<Service>> {
        read(&self.services).values().filter(|s| s.metadata.namespace.as_deref() == Some(namespace)).cloned().collect()
    }
    fn replication_controller(&self, namespace: &str, name: &str) -> Option<Arc<ReplicationController>> {
        read(&self.replication_controllers).get(&format!("{namespace}/{name}")).cloned()
    }
    fn replica_set(&self, namespace: &str, name: &str) -> Option<Arc<ReplicaSet>> {
        read(&self.replica_sets).get(&format!("{namespace}/{name}")).cloned()
    }
    fn stateful_set(&self, namespace: &str, name: &str) -> Option<Arc<StatefulSet>> {
        read(&self.stateful_sets).get(&format!("{namespace}/{name}")).cloned()
    }
    fn namespaces(&self) -> Vec<Arc<Namespace>> {
        read(&self.namespaces).values().cloned().collect()
    }
    fn namespace_labels(&self, name: &str) -> Option<BTreeMap<String, String>> {
        read(&self.namespaces).get(&format!("/{name}")).map(|ns| ns.metadata.labels.clone().unwrap_or_default())
    }
    fn persistent_volume_claim(&self, namespace: &str, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
        read(&self.persistent_volume_claims).get(&format!("{namespace}/{name}")).cloned()
    }
    fn pod_disruption_budgets(&self) -> Vec<Arc<PodDisruptionBudget>> {
        read(&self.pod_disruption_budgets).values().cloned().collect()
    }
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        read(&self.pods).get(&format!("{namespace}/{name}")).cloned()
    }
}

/// Which scheduling-relevant properties of a node changed (upstream's
/// `NodeSchedulingPropertiesChange`).
pub fn node_scheduling_properties_change(new: &Node, old: &Node) -> Vec<ClusterEvent> {
    let mut out = Vec::new();
    let unschedulable = |n: &Node| n.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false);
    if unschedulable(new) != unschedulable(old) && !unschedulable(new) {
        out.push(ActionType::UPDATE_NODE_TAINT);
    }
    if new.status.as_ref().and_then(|s| s.allocatable.as_ref()) != old.status.as_ref().and_then(|s| s.allocatable.as_ref()) {
        out.push(ActionType::UPDATE_NODE_ALLOCATABLE);
    }
    if new.labels() != old.labels() {
        out.push(ActionType::UPDATE_NODE_LABEL);
    }
    if new.spec.as_ref().and_then(|s| s.taints.as_ref()) != old.spec.as_ref().and_then(|s| s.taints.as_ref()) {
        out.push(ActionType::UPDATE_NODE_TAINT);
    }
    let conditions = |n: &Node| -> BTreeMap<String, String> { n.status.as_ref().and_then(|s| s.conditions.as_ref()).into_iter().flatten().map(|c| (c.type_.clone(), c.status.clone())).collect() };
    if conditions(new) != conditions(old) {
        out.push(ActionType::UPDATE_NODE_CONDITION);
    }
    if new.metadata.annotations != old.metadata.annotations {
        out.push(ActionType::UPDATE_NODE_ANNOTATION);
    }
    out.into_iter().map(|a| ClusterEvent::new(EventResource::Node, a)).collect()
}

fn terminal(p: &Pod) -> bool {
    matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

/// Routes pod changes: bound pods to the cache, unbound pods of our profiles to the queue.
pub fn on_pod_change(sched: &Scheduler, old: Option<Arc<Pod>>, new: Option<Arc<Pod>>) {
    let responsible = |p: &Pod| sched.profiles.contains_key(p.scheduler_name());
    let (old, new) = match (old, new) {
        (Some(o), Some(n)) if o.uid() != n.uid() => {
            on_pod_change(sched, Some(o), None);
            (None, Some(n))
        }
        (o, Some(n)) if terminal(&n) => match o {
            Some(o) => (Some(o), None),
            None => return,
        },
        other => other,
    };
    match (old, new) {
        (Some(old), None) => {
            if !old.node_name().is_empty() {
                sched.cache.remove_pod(old.uid());
                sched.queue.move_all_to_active_or_backoff(ClusterEvent::ASSIGNED_POD_DELETE, Some(EventObject::Pod(old)), None, None);
            } else if responsible(&old) {
                sched.queue.delete(old.uid());
            }
        }
        (old, Some(new)) if !new.node_name().is_empty() => match old {
            Some(old) if !old.node_name().is_empty() => {
                sched.cache.update_pod(new.clone());
                sched.queue.assigned_pod_updated(old, new);
            }
            old => {
                if let Some(old) = old {
                    if responsible(&old) {
                        sched.queue.delete(old.uid());
                    }
                }
                sched.cache.add_pod(new.clone());
                sched.queue.assigned_pod_added(new);
            }
        },
        (old, Some(new)) => {
            if let Some(o) = &old {
                if !o.node_name().is_empty() {
                    sched.cache.remove_pod(o.uid());
                }
            }
            if responsible(&new) {
                match old {
                    Some(o) if o.node_name().is_empty() && responsible(&o) => {
                        if o.metadata.resource_version == new.metadata.resource_version || sched.cache.is_assumed(new.uid()) {
                            return;
                        }
                        sched.queue.update(&o, new);
                    }
                    _ => sched.queue.add(new),
                }
            } else if old.as_ref().is_some_and(|o| o.node_name().is_empty() && responsible(o)) {
                sched.queue.delete(new.uid());
            }
        }
        (None, None) => {}
    }
}

pub fn on_node_change(sched: &Scheduler, old: Option<Arc<Node>>, new: Option<Arc<Node>>) {
    match (old, new) {
        (None, Some(new)) => {
            sched.cache.add_node(new.clone());
            sched.queue.move_all_to_active_or_backoff(ClusterEvent::new(EventResource::Node, ActionType::ADD), None, Some(EventObject::Node(new)), None);
        }
        (Some(old), Some(new)) => {
            sched.cache.update_node(new.clone());
            for ev in node_scheduling_properties_change(&new, &old) {
                sched.queue.move_all_to_active_or_backoff(ev, Some(EventObject::Node(old.clone())), Some(EventObject::Node(new.clone())), None);
            }
        }
        (Some(old), None) => {
            sched.cache.remove_node(old.name());
            sched.queue.move_all_to_active_or_backoff(ClusterEvent::new(EventResource::Node, ActionType::DELETE), Some(EventObject::Node(old)), None, None);
        }
        (None, None) => {}
    }
}

pub fn on_pvc_change(sched: &Scheduler, old: Option<Arc<PersistentVolumeClaim>>, new: Option<Arc<PersistentVolumeClaim>>) {
    let action = match (&old, &new) {
        (None, Some(_)) => ActionType::ADD,
        (Some(_), Some(_)) => ActionType::UPDATE,
        _ => ActionType::DELETE,
    };
    sched.queue.move_all_to_active_or_backoff(ClusterEvent::new(EventResource::PersistentVolumeClaim, action), old.map(EventObject::PersistentVolumeClaim), new.map(EventObject::PersistentVolumeClaim), None);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::node;

    #[test]
    fn node_changes_classified() {
        let base = node("n").build();
        let labelled = node("n").label("x", "y").build();
        let tainted = node("n").taint("k", "v", "NoSchedule").build();
        let bigger = node("n").allocatable("8", "32Gi", "110").build();
        let names = |v: Vec<ClusterEvent>| v.iter().map(|e| e.to_string()).collect::<Vec<_>>();
        assert_eq!(names(node_scheduling_properties_change(&labelled, &base)), vec!["NodeUpdateNodeLabel"]);
        assert_eq!(names(node_scheduling_properties_change(&tainted, &base)), vec!["NodeUpdateNodeTaint"]);
        assert_eq!(names(node_scheduling_properties_change(&bigger, &base)), vec!["NodeUpdateNodeAllocatable"]);
        assert_eq!(names(node_scheduling_properties_change(&base, &node("n").unschedulable().build())), vec!["NodeUpdateNodeTaint"]);
    }
}
