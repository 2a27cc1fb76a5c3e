//! The kubelet's Events about pods and their containers (`kubectl describe pod` shows them):
//! core/v1 Events with source `kubelet` on the node, a container's events pointing at
//! `spec.containers{name}`, and a repeat of the same event counted on the one Event (count
//! and lastTimestamp patched), as upstream's correlating recorder does. Writes happen in the
//! background so a slow Event write never holds up a pod worker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Container, Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tracing::debug;

pub const NORMAL: &str = "Normal";
pub const WARNING: &str = "Warning";

/// What makes two events the same one, counted: involved object UID, field path, type,
/// reason, message.
type Key = (String, String, String, String, String);

/// An Event already written, by its key.
#[derive(Debug, Clone)]
struct Seen {
    name: String,
    count: i32,
}

/// Writes the kubelet's Events.
#[derive(Clone)]
pub struct Recorder {
    client: Option<kube::Client>,
    node: String,
    seen: Arc<Mutex<HashMap<Key, Seen>>>,
    /// What a discarding recorder was given: (type, reason, message).
    log: Arc<Mutex<Vec<(String, String, String)>>>,
}

/// The reference to a pod, or (with `container`) to one of its containers.
pub fn reference(pod: &Pod, container: Option<&Container>) -> ObjectReference {
    let m = &pod.metadata;
    let field_path = container.map(|c| {
        let init = pod.spec.iter().flat_map(|s| s.init_containers.iter().flatten()).any(|i| i.name == c.name);
        format!("spec.{}{{{}}}", if init { "initContainers" } else { "containers" }, c.name)
    });
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: m.name.clone(),
        namespace: m.namespace.clone(),
        uid: m.uid.clone(),
        resource_version: m.resource_version.clone(),
        field_path,
    }
}

impl Recorder {
    pub fn new(client: kube::Client, node: &str) -> Self {
        Recorder { client: Some(client), node: node.into(), seen: Arc::default(), log: Arc::default() }
    }

    /// A recorder that writes nothing and remembers what it was given (unit tests).
    pub fn discard() -> Self {
        Recorder { client: None, node: String::new(), seen: Arc::default(), log: Arc::default() }
    }

    /// What a discarding recorder was given: (type, reason, message).
    pub fn recorded(&self) -> Vec<(String, String, String)> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Records an event about `pod` (or one of its containers).
    pub fn event(&self, pod: &Pod, container: Option<&Container>, type_: &str, reason: &str, message: String) {
        let Some(client) = self.client.clone() else {
            if let Ok(mut log) = self.log.lock() {
                log.push((type_.into(), reason.into(), message));
            }
            return;
        };
        let reference = reference(pod, container);
        let namespace = reference.namespace.clone().unwrap_or_else(|| "default".into());
        let key: Key = (
            reference.uid.clone().unwrap_or_default(),
            reference.field_path.clone().unwrap_or_default(),
            type_.into(),
            reason.into(),
            message.clone(),
        );
        let now = jiff::Timestamp::now();
        let Ok(mut seen) = self.seen.lock() else { return };
        let api: Api<Event> = Api::namespaced(client, &namespace);
        if let Some(s) = seen.get_mut(&key) {
            s.count += 1;
            let (name, patch) = (s.name.clone(), json!({"count": s.count, "lastTimestamp": Time(now)}));
            tokio::spawn(async move {
                if let Err(e) = api.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await {
                    debug!(error = %e, event = %name, "counting a repeated event failed");
                }
            });
            return;
        }
        let name = format!("{}.{:x}", reference.name.as_deref().unwrap_or("pod"), now.as_nanosecond());
        seen.insert(key, Seen { name: name.clone(), count: 1 });
        let event = Event {
            metadata: ObjectMeta { name: Some(name), namespace: Some(namespace), ..Default::default() },
            involved_object: reference,
            reason: Some(reason.into()),
            message: Some(message),
            source: Some(EventSource { component: Some("kubelet".into()), host: Some(self.node.clone()) }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            type_: Some(type_.into()),
            reporting_component: Some("kubelet".into()),
            reporting_instance: Some(self.node.clone()),
            ..Default::default()
        };
        tokio::spawn(async move {
            if let Err(e) = api.create(&PostParams::default(), &event).await {
                debug!(error = %e, "writing an event failed");
            }
        });
    }

    /// Forgets the events of a pod that went away (their keys would never repeat).
    pub fn forget(&self, uid: &str) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.retain(|k, _| k.0 != uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_references_name_their_list() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"initContainers": [{"name": "i"}], "containers": [{"name": "c"}]},
        }))
        .expect("pod");
        let spec = pod.spec.clone().expect("spec");
        let c = reference(&pod, Some(&spec.containers[0]));
        assert_eq!(c.field_path.as_deref(), Some("spec.containers{c}"));
        let i = reference(&pod, spec.init_containers.as_ref().map(|v| &v[0]));
        assert_eq!(i.field_path.as_deref(), Some("spec.initContainers{i}"));
        assert_eq!(reference(&pod, None).field_path, None);
        assert_eq!((c.kind.as_deref(), c.uid.as_deref()), (Some("Pod"), Some("u")));
    }
}
