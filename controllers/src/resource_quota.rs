//! The ResourceQuota controller: recounts every quota's `status.used` from the objects in
//! its namespace (pods' requests and limits, services and their node ports and load
//! balancers, claims' storage, object counts `count/<resource>.<group>`), within its scopes,
//! and sets `status.hard` from `spec.hard`. Each quota is recounted when it changes and
//! every few seconds (upstream resyncs on a period and on the monitored resources' events);
//! the API server's ResourceQuota admission charges creates in between.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ironkube_machinery::quota::{self, ResourceList};
use k8s_openapi::api::core::v1::ResourceQuota;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;
use tracing::{info, instrument};

use crate::informer;

pub const NAME: &str = "resourcequota";
/// How often a quota is recounted without a change of its own.
const RESYNC: Duration = Duration::from_secs(5);

pub type Error = informer::ReconcileError;

struct Ctx {
    client: kube::Client,
}

/// The resource (group, plural) a quota resource name counts.
pub fn source_of(name: &str) -> Option<(String, String)> {
    let core = |r: &str| Some((String::new(), r.to_string()));
    if let Some(rest) = name.strip_prefix("count/") {
        return Some(match rest.split_once('.') {
            Some((r, g)) => (g.to_string(), r.to_string()),
            None => (String::new(), rest.to_string()),
        });
    }
    match name {
        "pods" | "cpu" | "memory" | "ephemeral-storage" => core("pods"),
        "services" | "services.loadbalancers" | "services.nodeports" => core("services"),
        "configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas" => core(name),
        "persistentvolumeclaims" | "requests.storage" => core("persistentvolumeclaims"),
        n if n.contains(".storageclass.storage.k8s.io/") => core("persistentvolumeclaims"),
        n if n.starts_with("requests.") || n.starts_with("limits.") => core("pods"),
        _ => None,
    }
}

/// The served version of a resource, from discovery (core resources are v1).
async fn api_resource(client: &kube::Client, group: &str, plural: &str) -> Option<ApiResource> {
    if group.is_empty() {
        return Some(ApiResource { group: String::new(), version: "v1".into(), api_version: "v1".into(), kind: String::new(), plural: plural.into() });
    }
    let g = kube::discovery::group(client, group).await.ok()?;
    let (ar, _) = g.recommended_resources().into_iter().find(|(ar, _)| ar.plural == plural)?;
    Some(ar)
}

/// What the quota's namespace uses of each of its hard resources, counted from the objects.
async fn count(ctx: &Ctx, ns: &str, quota_json: &serde_json::Value, hard: &ResourceList, sources: &HashMap<(String, String), Vec<String>>) -> Result<ResourceList, Error> {
    let mut used = ResourceList::new();
    for name in hard.keys() {
        used.insert(name.clone(), ironkube_machinery::validation::quantity::Quantity::ZERO);
    }
    for ((group, plural), names) in sources {
        let Some(ar) = api_resource(&ctx.client, &group, &plural).await else { continue };
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &ar);
        let list = api.list(&ListParams::default()).await?;
        for obj in list.items {
            let v = serde_json::to_value(&obj)?;
            if quota::scoped(quota_json) && !quota::selects(quota_json, &group, &plural, &v) {
                continue;
            }
            let u = quota::usage(&group, &plural, &v);
            for name in names {
                if let Some(q) = u.get(name) {
                    let sum = used[name].add(q);
                    used.insert(name.clone(), sum);
                }
            }
        }
    }
    Ok(used)
}

#[instrument(skip_all, fields(controller = NAME, key = %format!("{}/{}", q.metadata.namespace.as_deref().unwrap_or(""), q.metadata.name.as_deref().unwrap_or(""))))]
async fn reconcile(q: Arc<ResourceQuota>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = q.metadata.namespace.clone().unwrap_or_default();
    let quota_json = serde_json::to_value(&*q)?;
    let hard = quota::parse_list(&quota_json["spec"]["hard"]);
    // Which resources to list, once each.
    let mut sources: HashMap<(String, String), Vec<String>> = HashMap::new();
    for name in hard.keys() {
        if let Some(src) = source_of(name) {
            sources.entry(src).or_default().push(name.clone());
        }
    }
    let mut used = count(&ctx, &ns, &quota_json, &hard, &sources).await?;
    // An admitted object is charged before it is stored: a count lower than the charged
    // usage may be missing it. Count again a moment later before lowering anything.
    let charged = quota::parse_list(&quota_json["status"]["used"]);
    if used.iter().any(|(k, v)| charged.get(k).is_some_and(|c| v < c)) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        used = count(&ctx, &ns, &quota_json, &hard, &sources).await?;
    }
    let current_hard = quota::parse_list(&quota_json["status"]["hard"]);
    let current_used = quota::parse_list(&quota_json["status"]["used"]);
    let same = |a: &ResourceList, b: &ResourceList| a.len() == b.len() && a.iter().all(|(k, v)| b.get(k) == Some(v));
    if !same(&current_hard, &hard) || !same(&current_used, &used) {
        let mut updated = (*q).clone();
        let status = serde_json::json!({"hard": quota_json["spec"]["hard"].clone(), "used": quota::to_json(&used)});
        updated.status = serde_json::from_value(status)?;
        let api: Api<ResourceQuota> = Api::namespaced(ctx.client.clone(), &ns);
        match api.replace_status(q.metadata.name.as_deref().unwrap_or(""), &PostParams::default(), &updated).await {
            Ok(_) => {}
            Err(e) if informer::is_not_found(&e) => return Ok(Action::await_change()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Action::requeue(RESYNC))
}

pub async fn run(client: kube::Client, stop: CancellationToken) {
    let (quotas, changes) = informer::informer(Api::<ResourceQuota>::all(client.clone()), watcher::Config::default(), "resourcequotas");
    let triggers = informer::live_changes(changes).boxed();
    let ctx = Arc::new(Ctx { client });
    info!("starting the ResourceQuota controller");
    informer::run(NAME, quotas, triggers, ctx, reconcile, informer::Retry::default(), stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names_map_to_what_they_count() {
        assert_eq!(source_of("requests.cpu"), Some((String::new(), "pods".into())));
        assert_eq!(source_of("count/replicasets.apps"), Some(("apps".into(), "replicasets".into())));
        assert_eq!(source_of("count/secrets"), Some((String::new(), "secrets".into())));
        assert_eq!(source_of("requests.storage"), Some((String::new(), "persistentvolumeclaims".into())));
        assert_eq!(source_of("gold.storageclass.storage.k8s.io/requests.storage"), Some((String::new(), "persistentvolumeclaims".into())));
        assert_eq!(source_of("nonsense"), None);
    }
}
