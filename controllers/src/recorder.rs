//! Events about the objects controllers act on (`kubectl describe` shows them), written as
//! core/v1 Events like upstream's controllers' recorders write them (source component,
//! first/last timestamps, count), in the background so a slow or failing Event write never
//! holds up a reconcile.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Resource;
use kube::api::{Api, PostParams};
use tracing::debug;

/// Publishes Events as one named component (`replicaset-controller`, ...).
#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    component: String,
}

/// The Event upstream's recorder writes about `reference`.
pub fn event(component: &str, reference: ObjectReference, type_: &str, reason: &str, message: String, now: jiff::Timestamp) -> Event {
    let name = format!("{}.{:x}", reference.name.as_deref().unwrap_or(component), now.as_nanosecond());
    Event {
        metadata: ObjectMeta { name: Some(name), namespace: Some(reference.namespace.clone().unwrap_or_else(|| "default".into())), ..Default::default() },
        involved_object: reference,
        reason: Some(reason.into()),
        message: Some(message),
        source: Some(EventSource { component: Some(component.into()), host: None }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        type_: Some(type_.into()),
        reporting_component: Some(component.into()),
        reporting_instance: Some(String::new()),
        ..Default::default()
    }
}

impl Recorder {
    pub fn new(client: kube::Client, component: &str) -> Self {
        Recorder { client, component: component.into() }
    }

    /// An event about the object `reference` names (upstream's recorders sometimes build
    /// the reference by hand, e.g. without a UID).
    pub fn publish(&self, reference: ObjectReference, type_: &str, reason: &str, message: String) {
        let event = event(&self.component, reference, type_, reason, message, jiff::Timestamp::now());
        let api: Api<Event> = Api::namespaced(self.client.clone(), event.metadata.namespace.as_deref().unwrap_or("default"));
        tokio::spawn(async move {
            if let Err(e) = api.create(&PostParams::default(), &event).await {
                debug!(error = %e, "writing an event failed");
            }
        });
    }

    /// A Normal event about `obj`.
    pub fn normal<K: Resource<DynamicType = ()>>(&self, obj: &K, reason: &str, message: String) {
        self.publish(obj.object_ref(&()), "Normal", reason, message);
    }

    /// A Warning event about `obj`.
    pub fn warning<K: Resource<DynamicType = ()>>(&self, obj: &K, reason: &str, message: String) {
        self.publish(obj.object_ref(&()), "Warning", reason, message);
    }
}
