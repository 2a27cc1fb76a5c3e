//! The namespace controller: a namespace being deleted loses everything in it, then its
//! `kubernetes` finalizer, after which the API server removes it.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::discovery::{Discovery, Scope, verbs};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, instrument};

/// The finalizer the namespace controller owns (in `spec.finalizers`).
pub const FINALIZER: &str = "kubernetes";
/// How soon a namespace with content still present is looked at again.
const REMAINING_RETRY: Duration = Duration::from_secs(2);

struct Ctx {
    client: kube::Client,
}

/// Deletes every namespaced object in `ns`; returns how many remain.
async fn delete_content(client: &kube::Client, ns: &str) -> Result<usize, kube::Error> {
    let discovery = Discovery::new(client.clone()).run().await?;
    let mut remaining = 0;
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if caps.scope != Scope::Namespaced || !caps.supports_operation(verbs::LIST) {
                continue;
            }
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
            if caps.supports_operation(verbs::DELETE_COLLECTION) {
                match api.delete_collection(&DeleteParams::background(), &ListParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 || e.code == 405 => {}
                    Err(e) => return Err(e),
                }
            } else if caps.supports_operation(verbs::DELETE) {
                for obj in api.list(&ListParams::default()).await?.items {
                    if let Some(name) = obj.metadata.name.as_deref() {
                        let _ = api.delete(name, &DeleteParams::background()).await;
                    }
                }
            }
            let left = match api.list(&ListParams::default().limit(1)).await {
                Ok(list) => list.items.len(),
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 405 => 0,
                Err(e) => return Err(e),
            };
            if left > 0 {
                debug!(namespace = ns, resource = %ar.plural, "content remaining");
            }
            remaining += left;
        }
    }
    Ok(remaining)
}

#[instrument(skip_all, fields(controller = "namespace", key = ns.metadata.name.as_deref().unwrap_or("")))]
async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Ctx>) -> Result<Action, kube::Error> {
    let Some(name) = ns.metadata.name.as_deref() else { return Ok(Action::await_change()) };
    if ns.metadata.deletion_timestamp.is_none() {
        return Ok(Action::await_change());
    }
    let finalizers = ns.spec.as_ref().and_then(|s| s.finalizers.clone()).unwrap_or_default();
    if !finalizers.iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let remaining = delete_content(&ctx.client, name).await?;
    if remaining > 0 {
        return Ok(Action::requeue(REMAINING_RETRY));
    }
    let mut finalized = (*ns).clone();
    if let Some(spec) = finalized.spec.as_mut() {
        spec.finalizers = Some(finalizers.into_iter().filter(|f| f != FINALIZER).collect());
    }
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    match api.replace_subresource("finalize", name, &PostParams::default(), &finalized).await {
        Ok(_) => info!(namespace = name, "namespace emptied and finalized"),
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(kube::Error::Api(e)) if e.code == 409 => return Ok(Action::requeue(Duration::from_millis(200))),
        Err(e) => return Err(e),
    }
    Ok(Action::await_change())
}

pub async fn run(client: kube::Client, stop: CancellationToken) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let controller = Controller::new(namespaces, watcher::Config::default());
    crate::runtime::drive("namespace", controller, Arc::new(Ctx { client }), reconcile, stop).await;
}
