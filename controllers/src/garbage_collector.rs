//! The garbage collector: objects whose owners (`metadata.ownerReferences`) are all gone
//! are deleted (in the background), references to owners that are gone are dropped, an
//! owner deleted with `propagationPolicy: Orphan` lets go of its dependents before its
//! `orphan` finalizer is removed, and one deleted in the foreground waits, behind its
//! `foregroundDeletion` finalizer, until its dependents are gone.
//!
//! Upstream's collector keeps a graph fed by watches of every resource; this one walks the
//! built-in kinds that own or are owned in practice every couple of seconds, through the
//! API like any client. Owners of kinds outside that table (custom resources) are left
//! alone.

use std::collections::HashMap;
use std::time::Duration;

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PropagationPolicy};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

pub const NAME: &str = "garbage-collector";
/// How often the collector walks the objects.
const PERIOD: Duration = Duration::from_secs(2);

/// (group, version, kind, plural, namespaced) of the kinds the collector knows.
const KINDS: &[(&str, &str, &str, &str, bool)] = &[
    ("", "v1", "Pod", "pods", true),
    ("", "v1", "ReplicationController", "replicationcontrollers", true),
    ("", "v1", "Service", "services", true),
    ("", "v1", "ConfigMap", "configmaps", true),
    ("", "v1", "Secret", "secrets", true),
    ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true),
    ("", "v1", "Node", "nodes", false),
    ("apps", "v1", "Deployment", "deployments", true),
    ("apps", "v1", "ReplicaSet", "replicasets", true),
    ("apps", "v1", "StatefulSet", "statefulsets", true),
    ("apps", "v1", "DaemonSet", "daemonsets", true),
    ("apps", "v1", "ControllerRevision", "controllerrevisions", true),
    ("batch", "v1", "Job", "jobs", true),
    ("batch", "v1", "CronJob", "cronjobs", true),
    ("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true),
    ("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true),
];

fn api_resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: if group.is_empty() { version.into() } else { format!("{group}/{version}") },
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// One object as the collector sees it.
#[derive(Debug, Clone)]
struct Obj {
    ar: ApiResource,
    namespace: Option<String>,
    name: String,
    uid: String,
    owners: Vec<Value>,
    deleting: bool,
    finalizers: Vec<String>,
}

fn owner_group(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(g, _)| g)
}

async fn list_all(client: &kube::Client) -> Vec<Obj> {
    let mut out = Vec::new();
    for (group, version, kind, plural, _) in KINDS {
        let ar = api_resource(group, version, kind, plural);
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        match api.list(&ListParams::default()).await {
            Ok(list) => {
                for o in list.items {
                    let v = serde_json::to_value(&o).unwrap_or(Value::Null);
                    out.push(Obj {
                        ar: ar.clone(),
                        namespace: o.metadata.namespace.clone(),
                        name: o.metadata.name.clone().unwrap_or_default(),
                        uid: o.metadata.uid.clone().unwrap_or_default(),
                        owners: v["metadata"]["ownerReferences"].as_array().cloned().unwrap_or_default(),
                        deleting: o.metadata.deletion_timestamp.is_some(),
                        finalizers: o.metadata.finalizers.clone().unwrap_or_default(),
                    });
                }
            }
            Err(e) => debug!(resource = plural, error = %e, "listing for garbage collection"),
        }
    }
    out
}

fn api_for(client: &kube::Client, o: &Obj) -> Api<DynamicObject> {
    match &o.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &o.ar),
        None => Api::all_with(client.clone(), &o.ar),
    }
}

/// One walk: collect orphans of vanished owners, then settle owners waiting on finalizers.
async fn pass(client: &kube::Client) {
    let objects = list_all(client).await;
    // Owners by uid, and which (group, kind, namespace, name) the collector can see.
    let by_uid: HashMap<&str, &Obj> = objects.iter().map(|o| (o.uid.as_str(), o)).collect();
    let known_kind = |group: &str, kind: &str| KINDS.iter().any(|(g, _, k, _, _)| *g == group && *k == kind);

    for o in &objects {
        if o.owners.is_empty() || o.deleting {
            continue;
        }
        let mut gone = Vec::new();
        let mut unknown = false;
        for r in &o.owners {
            let (api_version, kind, uid) = (r["apiVersion"].as_str().unwrap_or(""), r["kind"].as_str().unwrap_or(""), r["uid"].as_str().unwrap_or(""));
            if !known_kind(owner_group(api_version), kind) {
                unknown = true;
                continue;
            }
            match by_uid.get(uid) {
                Some(owner) if owner.ar.kind == kind => {}
                // Listed before it was created? Ask the API server before calling it gone.
                _ if owner_exists(client, api_version, kind, o.namespace.as_deref(), r["name"].as_str().unwrap_or(""), uid).await => {}
                _ => gone.push(uid.to_string()),
            }
        }
        if gone.is_empty() {
            continue;
        }
        let api = api_for(client, o);
        if gone.len() == o.owners.len() && !unknown {
            let dp = DeleteParams { propagation_policy: Some(PropagationPolicy::Background), preconditions: Some(kube::api::Preconditions { uid: Some(o.uid.clone()), resource_version: None }), ..Default::default() };
            match api.delete(&o.name, &dp).await {
                Ok(_) => info!(kind = %o.ar.kind, namespace = o.namespace.as_deref().unwrap_or(""), name = %o.name, "deleting an object whose owners are gone"),
                Err(e) => debug!(error = %e, name = %o.name, "garbage collection delete"),
            }
        } else {
            let keep: Vec<&Value> = o.owners.iter().filter(|r| !gone.iter().any(|g| r["uid"] == g.as_str())).collect();
            let patch = json!({"metadata": {"ownerReferences": keep, "uid": o.uid}});
            if let Err(e) = api.patch(&o.name, &PatchParams::default(), &Patch::Merge(patch)).await {
                debug!(error = %e, name = %o.name, "dropping dangling owner references");
            }
        }
    }

    for owner in objects.iter().filter(|o| o.deleting) {
        let dependents: Vec<&Obj> = objects.iter().filter(|d| d.owners.iter().any(|r| r["uid"] == owner.uid.as_str())).collect();
        if owner.finalizers.iter().any(|f| f == "orphan") {
            for d in &dependents {
                let keep: Vec<&Value> = d.owners.iter().filter(|r| r["uid"] != owner.uid.as_str()).collect();
                let patch = json!({"metadata": {"ownerReferences": keep, "uid": d.uid}});
                if let Err(e) = api_for(client, d).patch(&d.name, &PatchParams::default(), &Patch::Merge(patch)).await {
                    debug!(error = %e, name = %d.name, "orphaning a dependent");
                }
            }
            remove_finalizer(client, owner, "orphan").await;
        } else if owner.finalizers.iter().any(|f| f == "foregroundDeletion") {
            if dependents.is_empty() {
                remove_finalizer(client, owner, "foregroundDeletion").await;
                continue;
            }
            for d in dependents.iter().filter(|d| !d.deleting) {
                let dp = DeleteParams { propagation_policy: Some(PropagationPolicy::Foreground), ..Default::default() };
                if let Err(e) = api_for(client, d).delete(&d.name, &dp).await {
                    debug!(error = %e, name = %d.name, "deleting a dependent in the foreground");
                }
            }
        }
    }
}

/// A live lookup of an owner: true unless the API server says it is gone (or another
/// object has its name now).
async fn owner_exists(client: &kube::Client, api_version: &str, kind: &str, namespace: Option<&str>, name: &str, uid: &str) -> bool {
    let group = owner_group(api_version);
    let Some((g, v, k, plural, namespaced)) = KINDS.iter().find(|(g, _, k, _, _)| *g == group && *k == kind) else { return true };
    let ar = api_resource(g, v, k, plural);
    let api: Api<DynamicObject> = match (namespaced, namespace) {
        (true, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
        (true, None) => return true,
        (false, _) => Api::all_with(client.clone(), &ar),
    };
    match api.get_opt(name).await {
        Ok(Some(owner)) => owner.metadata.uid.as_deref() == Some(uid),
        Ok(None) => false,
        Err(_) => true,
    }
}

async fn remove_finalizer(client: &kube::Client, o: &Obj, finalizer: &str) {
    let keep: Vec<&String> = o.finalizers.iter().filter(|f| *f != finalizer).collect();
    let patch = json!({"metadata": {"finalizers": keep, "uid": o.uid}});
    if let Err(e) = api_for(client, o).patch(&o.name, &PatchParams::default(), &Patch::Merge(patch)).await {
        warn!(error = %e, name = %o.name, finalizer, "removing a finalizer");
    }
}

pub async fn run(client: kube::Client, stop: CancellationToken) {
    info!("starting the garbage collector");
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(PERIOD) => pass(&client).await,
        }
    }
}
