//! DefaultBinder: binds through the `pods/binding` subresource.

use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};

use crate::framework::interface::{BindPlugin, Handle, Plugin};
use crate::framework::node_info::PodExt;
use crate::framework::status::Status;

pub const NAME: &str = "DefaultBinder";

pub struct DefaultBinder {
    client: Option<kube::Client>,
}

impl DefaultBinder {
    pub fn new(_args: Option<&serde_json::Value>, handle: &Arc<Handle>) -> Result<Arc<dyn Plugin>, String> {
        Ok(Arc::new(DefaultBinder { client: handle.client.clone() }))
    }
}

/// The Binding object for `pod` onto `node` (with the pod's UID as a precondition).
pub fn binding_for(pod: &Pod, node: &str) -> Binding {
    Binding {
        metadata: ObjectMeta { name: pod.metadata.name.clone(), namespace: pod.metadata.namespace.clone(), uid: pod.metadata.uid.clone(), ..Default::default() },
        target: ObjectReference { kind: Some("Node".into()), name: Some(node.to_string()), ..Default::default() },
    }
}

impl Plugin for DefaultBinder {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Option<Vec<crate::framework::interface::ClusterEvent>> {
        Some(Vec::new())
    }
    fn as_bind(&self) -> Option<&dyn BindPlugin> {
        Some(self)
    }
}

impl BindPlugin for DefaultBinder {
    fn bind(&self, pod: Arc<Pod>, node: String) -> BoxFuture<'static, Status> {
        let client = self.client.clone();
        Box::pin(async move {
            let Some(client) = client else {
                return Status::error("no API client to bind with");
            };
            let api: Api<Pod> = Api::namespaced(client, pod.namespace());
            let binding = binding_for(&pod, &node);
            match api.create_subresource::<Binding, serde_json::Value>("binding", pod.name(), &PostParams::default(), &binding).await {
                Ok(_) => Status::success(),
                Err(e) => Status::error(e.to_string()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pod;

    #[test]
    fn binding_object() {
        let b = binding_for(&pod("web").build(), "n1");
        let v = serde_json::to_value(&b).expect("json");
        assert_eq!(v["metadata"], serde_json::json!({"name": "web", "namespace": "default", "uid": "uid-web"}));
        assert_eq!(v["target"], serde_json::json!({"kind": "Node", "name": "n1"}));
    }
}
