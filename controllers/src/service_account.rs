//! The ServiceAccount controller: every active namespace has a `default` ServiceAccount.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;
use tracing::{info, instrument};

const NAME: &str = "default";

struct Ctx {
    client: kube::Client,
}

#[instrument(skip_all, fields(controller = "serviceaccount", key = ns.metadata.name.as_deref().unwrap_or("")))]
async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Ctx>) -> Result<Action, kube::Error> {
    let Some(name) = ns.metadata.name.as_deref() else { return Ok(Action::await_change()) };
    let terminating = ns.metadata.deletion_timestamp.is_some()
        || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
    if terminating {
        return Ok(Action::await_change());
    }
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), name);
    if api.get_opt(NAME).await?.is_none() {
        let sa = ServiceAccount {
            metadata: ObjectMeta { name: Some(NAME.into()), namespace: Some(name.into()), ..Default::default() },
            ..Default::default()
        };
        match api.create(&PostParams { field_manager: Some("kube-controller-manager".into()), ..Default::default() }, &sa).await {
            Ok(_) => info!(namespace = name, "created the default ServiceAccount"),
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 403 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Action::await_change())
}

pub async fn run(client: kube::Client, stop: CancellationToken) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let accounts: Api<ServiceAccount> = Api::all(client.clone());
    let controller = Controller::new(namespaces, watcher::Config::default()).watches(
        accounts,
        watcher::Config::default().fields(&format!("metadata.name={NAME}")),
        |sa| sa.metadata.namespace.clone().map(|ns| ObjectRef::new(&ns)),
    );
    crate::runtime::drive("serviceaccount", controller, Arc::new(Ctx { client }), reconcile, stop).await;
}
