//! The root CA publisher: every active namespace has a `kube-root-ca.crt` ConfigMap holding
//! the cluster's CA bundle.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;
use tracing::{info, instrument};

pub const NAME: &str = "kube-root-ca.crt";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

struct Ctx {
    client: kube::Client,
    ca: String,
}

fn wanted(ctx: &Ctx, namespace: &str, existing: Option<&ConfigMap>) -> ConfigMap {
    let mut cm = existing.cloned().unwrap_or_else(|| ConfigMap {
        metadata: ObjectMeta { name: Some(NAME.into()), namespace: Some(namespace.into()), ..Default::default() },
        ..Default::default()
    });
    cm.metadata.annotations.get_or_insert_with(BTreeMap::new).insert("kubernetes.io/description".into(), DESCRIPTION.into());
    cm.data = Some(BTreeMap::from([("ca.crt".to_string(), ctx.ca.clone())]));
    cm
}

#[instrument(skip_all, fields(controller = "root-ca-certificate-publisher", key = ns.metadata.name.as_deref().unwrap_or("")))]
async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Ctx>) -> Result<Action, kube::Error> {
    let Some(name) = ns.metadata.name.as_deref() else { return Ok(Action::await_change()) };
    if ns.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), name);
    let pp = PostParams { field_manager: Some("kube-controller-manager".into()), ..Default::default() };
    match api.get_opt(NAME).await? {
        None => match api.create(&pp, &wanted(&ctx, name, None)).await {
            Ok(_) => info!(namespace = name, "published {NAME}"),
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 403 => {}
            Err(e) => return Err(e),
        },
        Some(cm) => {
            let want = wanted(&ctx, name, Some(&cm));
            if want.data != cm.data || want.metadata.annotations != cm.metadata.annotations {
                api.replace(NAME, &pp, &want).await?;
            }
        }
    }
    Ok(Action::await_change())
}

pub async fn run(client: kube::Client, ca: String, stop: CancellationToken) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let maps: Api<ConfigMap> = Api::all(client.clone());
    let controller = Controller::new(namespaces, watcher::Config::default()).watches(
        maps,
        watcher::Config::default().fields(&format!("metadata.name={NAME}")),
        |cm| cm.metadata.namespace.clone().map(|ns| ObjectRef::new(&ns)),
    );
    crate::runtime::drive("root-ca-certificate-publisher", controller, Arc::new(Ctx { client, ca }), reconcile, stop).await;
}
