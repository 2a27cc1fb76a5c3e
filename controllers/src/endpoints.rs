//! The Endpoints and EndpointSlice controllers: for every Service with a selector, the pods
//! it selects become addresses (ready ones in `addresses`, others in `notReadyAddresses`,
//! each port resolved by number or by the container port's name), written as the Service's
//! Endpoints object and as one EndpointSlice per Service (`<service>-<suffix>`, labelled
//! with `kubernetes.io/service-name` and managed by `endpointslice-controller.k8s.io`), as
//! upstream's `endpoints-controller` and `endpointslice-controller` do.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use ironkube_machinery::selectors::label::Selector;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::{info, instrument};

use crate::informer::{self, Change};

pub const NAME: &str = "endpoints";
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
const MANAGED_BY: &str = "endpointslice-controller.k8s.io";

pub type Error = informer::ReconcileError;

struct Ctx {
    client: kube::Client,
    pods: Store<Pod>,
}

/// One endpoint of a Service: a pod's address and the ports it serves.
#[derive(Debug, Clone)]
struct Member {
    ip: String,
    node: Option<String>,
    hostname: Option<String>,
    pod: Value,
    ready: bool,
    terminating: bool,
    /// (port name, number, protocol, appProtocol)
    ports: Vec<(Option<String>, i64, String, Option<String>)>,
}

/// A Service's selector (a label set) as a selector; None when it cannot select.
fn set_selector(labels: &BTreeMap<String, String>) -> Option<Selector> {
    let ls = k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector { match_labels: Some(labels.clone()), match_expressions: None };
    Selector::from_label_selector(Some(&ls)).ok()
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// `podutil.FindPort`: a Service port's target on this pod.
fn target_port(pod: &Value, svc_port: &Value) -> Option<i64> {
    let protocol = svc_port["protocol"].as_str().unwrap_or("TCP");
    match &svc_port["targetPort"] {
        Value::Number(n) => n.as_i64(),
        Value::String(name) => pod["spec"]["containers"].as_array().into_iter().flatten().find_map(|c| {
            c["ports"].as_array().into_iter().flatten().find_map(|p| {
                (p["name"] == name.as_str() && p["protocol"].as_str().unwrap_or("TCP") == protocol).then(|| p["containerPort"].as_i64()).flatten()
            })
        }),
        _ => svc_port["port"].as_i64(),
    }
}

fn members(svc: &Value, pods: &[Arc<Pod>]) -> Result<Vec<Member>, Error> {
    let selector: BTreeMap<String, String> = serde_json::from_value(svc["spec"]["selector"].clone()).unwrap_or_default();
    let Some(sel) = set_selector(&selector) else { return Ok(Vec::new()) };
    let publish_not_ready = svc["spec"]["publishNotReadyAddresses"].as_bool().unwrap_or(false);
    let svc_name = svc["metadata"]["name"].as_str().unwrap_or("");
    let mut out = Vec::new();
    for pod in pods {
        if !sel.matches(&pod.metadata.labels.clone().unwrap_or_default()) {
            continue;
        }
        let p = serde_json::to_value(&**pod)?;
        let Some(ip) = p["status"]["podIP"].as_str().filter(|s| !s.is_empty()) else { continue };
        let terminating = p["metadata"].get("deletionTimestamp").is_some_and(|d| !d.is_null());
        if terminating && !publish_not_ready {
            continue;
        }
        let phase = p["status"]["phase"].as_str().unwrap_or("");
        if matches!(phase, "Succeeded" | "Failed") {
            continue;
        }
        let mut ports = Vec::new();
        for sp in svc["spec"]["ports"].as_array().into_iter().flatten() {
            if let Some(n) = target_port(&p, sp) {
                ports.push((
                    sp["name"].as_str().filter(|s| !s.is_empty()).map(str::to_string),
                    n,
                    sp["protocol"].as_str().unwrap_or("TCP").to_string(),
                    sp["appProtocol"].as_str().map(str::to_string),
                ));
            }
        }
        let hostname = (p["spec"]["subdomain"] == svc_name).then(|| p["spec"]["hostname"].as_str().map(str::to_string)).flatten();
        out.push(Member {
            ip: ip.to_string(),
            node: p["spec"]["nodeName"].as_str().map(str::to_string),
            hostname,
            ready: publish_not_ready || is_ready(&p),
            terminating,
            pod: p,
            ports,
        });
    }
    out.sort_by(|a, b| a.ip.cmp(&b.ip));
    Ok(out)
}

fn target_ref(pod: &Value) -> Value {
    json!({"kind": "Pod", "namespace": pod["metadata"]["namespace"], "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]})
}

/// Endpoints subsets: addresses grouped by the set of ports they serve.
fn subsets(members: &[Member]) -> Value {
    let mut groups: Vec<(Value, Vec<Value>, Vec<Value>)> = Vec::new();
    for m in members {
        if m.ports.is_empty() {
            continue;
        }
        let mut ports: Vec<Value> = m
            .ports
            .iter()
            .map(|(name, port, proto, app)| {
                let mut p = json!({"port": port, "protocol": proto});
                if let Some(n) = name {
                    p["name"] = json!(n);
                }
                if let Some(a) = app {
                    p["appProtocol"] = json!(a);
                }
                p
            })
            .collect();
        ports.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()).then(a["port"].as_i64().cmp(&b["port"].as_i64())));
        let ports = Value::Array(ports);
        let mut addr = json!({"ip": m.ip, "targetRef": target_ref(&m.pod)});
        if let Some(n) = &m.node {
            addr["nodeName"] = json!(n);
        }
        if let Some(h) = &m.hostname {
            addr["hostname"] = json!(h);
        }
        let idx = match groups.iter().position(|(p, _, _)| *p == ports) {
            Some(i) => i,
            None => {
                groups.push((ports, Vec::new(), Vec::new()));
                groups.len() - 1
            }
        };
        if m.ready { groups[idx].1.push(addr) } else { groups[idx].2.push(addr) }
    }
    Value::Array(
        groups
            .into_iter()
            .map(|(ports, ready, not_ready)| {
                let mut s = json!({"ports": ports});
                if !ready.is_empty() {
                    s["addresses"] = Value::Array(ready);
                }
                if !not_ready.is_empty() {
                    s["notReadyAddresses"] = Value::Array(not_ready);
                }
                s
            })
            .collect(),
    )
}

fn owner(svc: &Value) -> Value {
    json!([{"apiVersion": "v1", "kind": "Service", "name": svc["metadata"]["name"], "uid": svc["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}])
}

fn slice_labels(svc: &Value) -> Value {
    let mut labels = svc["metadata"]["labels"].as_object().cloned().unwrap_or_default();
    labels.insert(SERVICE_NAME_LABEL.into(), svc["metadata"]["name"].clone());
    labels.insert(MANAGED_BY_LABEL.into(), json!(MANAGED_BY));
    if svc["spec"]["clusterIP"] == "None" {
        labels.insert("service.kubernetes.io/headless".into(), json!(""));
    }
    Value::Object(labels)
}

fn slice_body(svc: &Value, members: &[Member]) -> (Value, Value) {
    let endpoints: Vec<Value> = members
        .iter()
        .map(|m| {
            let mut e = json!({
                "addresses": [m.ip],
                "conditions": {"ready": m.ready && !m.terminating, "serving": m.ready, "terminating": m.terminating},
                "targetRef": target_ref(&m.pod),
            });
            if let Some(n) = &m.node {
                e["nodeName"] = json!(n);
            }
            if let Some(h) = &m.hostname {
                e["hostname"] = json!(h);
            }
            e
        })
        .collect();
    let ports: Vec<Value> = svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|sp| {
            let name = sp["name"].as_str().unwrap_or("");
            let port = members.iter().find_map(|m| m.ports.iter().find(|p| p.0.as_deref().unwrap_or("") == name).map(|p| p.1));
            let mut p = json!({"name": name, "protocol": sp["protocol"].as_str().unwrap_or("TCP")});
            match port {
                Some(n) => p["port"] = json!(n),
                None if members.is_empty() => return None,
                None => {}
            }
            if let Some(a) = sp["appProtocol"].as_str() {
                p["appProtocol"] = json!(a);
            }
            Some(p)
        })
        .collect();
    (Value::Array(endpoints), Value::Array(ports))
}

#[instrument(skip_all, fields(controller = NAME, key = %format!("{}/{}", svc.metadata.namespace.as_deref().unwrap_or(""), svc.metadata.name.as_deref().unwrap_or(""))))]
async fn reconcile(svc: Arc<Service>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    ctx.pods.wait_until_ready().await.map_err(|e| Error::Cache(e.to_string()))?;
    let s = serde_json::to_value(&*svc)?;
    if s["spec"]["selector"].as_object().is_none_or(serde_json::Map::is_empty) || svc.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let pods: Vec<Arc<Pod>> = ctx.pods.state().into_iter().filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str())).collect();
    let members = members(&s, &pods)?;

    // Endpoints, named as the Service.
    let ep_api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), &ns);
    let mut labels = s["metadata"]["labels"].as_object().cloned().unwrap_or_default();
    if s["spec"]["clusterIP"] == "None" {
        labels.insert("service.kubernetes.io/headless".into(), json!(""));
    }
    let subsets = subsets(&members);
    match ep_api.get_opt(&name).await? {
        None => {
            let ep: Endpoints = serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": ns, "labels": labels},
                "subsets": subsets,
            }))?;
            match ep_api.create(&PostParams::default(), &ep).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 || e.code == 403 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Some(current) => {
            let cur = serde_json::to_value(&current)?;
            let same_subsets = cur.get("subsets").cloned().unwrap_or(json!([])) == subsets;
            let same_labels = cur["metadata"]["labels"].as_object().cloned().unwrap_or_default() == labels;
            if !same_subsets || !same_labels {
                let mut updated = cur.clone();
                updated["subsets"] = subsets;
                updated["metadata"]["labels"] = Value::Object(labels);
                let ep: Endpoints = serde_json::from_value(updated)?;
                ep_api.replace(&name, &PostParams::default(), &ep).await?;
            }
        }
    }

    // One EndpointSlice for the Service's IPv4 endpoints.
    let es_api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), &ns);
    let lp = ListParams::default().labels(&format!("{SERVICE_NAME_LABEL}={name},{MANAGED_BY_LABEL}={MANAGED_BY}"));
    let slices = es_api.list(&lp).await?.items;
    let (endpoints, ports) = slice_body(&s, &members);
    let labels = slice_labels(&s);
    match slices.first() {
        None => {
            let slice: EndpointSlice = serde_json::from_value(json!({
                "metadata": {"generateName": format!("{name}-"), "namespace": ns, "labels": labels, "ownerReferences": owner(&s)},
                "addressType": "IPv4",
                "endpoints": endpoints,
                "ports": ports,
            }))?;
            match es_api.create(&PostParams::default(), &slice).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 403 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Some(current) => {
            let cur = serde_json::to_value(current)?;
            if cur["endpoints"] != endpoints || cur.get("ports").cloned().unwrap_or(json!([])) != ports || cur["metadata"]["labels"] != labels {
                let patch = json!({"metadata": {"labels": labels}, "endpoints": endpoints, "ports": ports});
                es_api.patch(current.metadata.name.as_deref().unwrap_or(""), &PatchParams::default(), &Patch::Merge(patch)).await?;
            }
            for extra in slices.iter().skip(1) {
                let _ = es_api.delete(extra.metadata.name.as_deref().unwrap_or(""), &Default::default()).await;
            }
        }
    }
    Ok(Action::await_change())
}

/// Services in the pod's namespace whose selector matches it (before or after a change).
fn pod_triggers(change: &Change<Pod>, services: &Store<Service>) -> Vec<ObjectRef<Service>> {
    let pods: Vec<&Arc<Pod>> = match change {
        Change::Added(p) | Change::Deleted(p) => vec![p],
        Change::Updated { old, new } => vec![old, new],
    };
    let mut out: Vec<ObjectRef<Service>> = Vec::new();
    for svc in services.state() {
        let Some(sel) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()).filter(|s| !s.is_empty()) else { continue };
        let Some(sel) = set_selector(sel) else { continue };
        let hit = pods.iter().any(|p| p.metadata.namespace == svc.metadata.namespace && sel.matches(&p.metadata.labels.clone().unwrap_or_default()));
        let r = ObjectRef::from_obj(&*svc);
        if hit && !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

pub async fn run(client: kube::Client, stop: CancellationToken) {
    let (services, svc_changes) = informer::informer(Api::<Service>::all(client.clone()), watcher::Config::default(), "services");
    let (pods, pod_changes) = informer::informer(Api::<Pod>::all(client.clone()), watcher::Config::default(), "pods");
    let svc_trig = informer::live_changes(svc_changes);
    let pod_trig = {
        let store = services.clone();
        pod_changes.flat_map(move |change| futures::stream::iter(pod_triggers(&change, &store)))
    };
    let triggers = futures::stream::select(svc_trig, pod_trig).boxed();
    let ctx = Arc::new(Ctx { client, pods });
    info!("starting the Endpoints and EndpointSlice controllers");
    informer::run(NAME, services, triggers, ctx, reconcile, informer::Retry::default(), stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_resolve_by_name_and_group_into_subsets() {
        let pod = json!({"metadata": {"name": "p", "namespace": "n", "uid": "u"},
            "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]},
            "status": {"podIP": "10.0.0.2", "conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(target_port(&pod, &json!({"port": 80, "targetPort": "http"})), Some(8080));
        assert_eq!(target_port(&pod, &json!({"port": 80, "targetPort": 9090})), Some(9090));
        assert_eq!(target_port(&pod, &json!({"port": 80, "targetPort": "nope"})), None);
        let m = Member { ip: "10.0.0.2".into(), node: None, hostname: None, pod: pod.clone(), ready: true, terminating: false, ports: vec![(None, 8080, "TCP".into(), None)] };
        let s = subsets(&[m.clone(), Member { ip: "10.0.0.3".into(), ready: false, ..m }]);
        assert_eq!(s[0]["addresses"][0]["ip"], "10.0.0.2");
        assert_eq!(s[0]["notReadyAddresses"][0]["ip"], "10.0.0.3");
        assert_eq!(s[0]["ports"], json!([{"port": 8080, "protocol": "TCP"}]));
    }
}
