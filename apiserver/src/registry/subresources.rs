//! Subresources with their own shapes (`scale`, `binding`, `eviction`, `finalize`,
//! `approval`, `ephemeralcontainers`) and the create-only resources with no storage
//! (`bindings`, `selfsubjectreviews`, access reviews, `tokenreviews`, `componentstatuses`).

use axum::extract::Request;
use axum::response::Response;
use ironkube_machinery::resources::ResourceInfo;
use ironkube_machinery::selectors::label;
use ironkube_machinery::{ApiError, FieldError};
use serde_json::{Value, json};

use super::params::FieldValidation;
use super::store::{Store, Sub};
use crate::http::auth::UserInfo;
use crate::http::negotiate::Output;
use crate::http::query::Query;
use crate::http::request_info::{ResourceRequest, Verb};
use crate::http::resource::{MAX_BODY, invalid_field};
use crate::http::{AppState, read_body, respond};

fn success(code: u16) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code})
}

fn user_agent(req: &Request) -> Option<String> {
    req.headers().get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_string)
}

async fn json_body(req: Request) -> Result<Value, ApiError> {
    let ct = req.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json").to_string();
    let body = read_body(req.into_body(), MAX_BODY).await?;
    let (v, _) = super::decode::parse_body(&ct, &body, "the request body")?;
    Ok(v)
}

/// The label selector string of a workload for its Scale status.
fn selector_string(obj: &Value) -> String {
    let sel = &obj["spec"]["selector"];
    if sel.get("matchLabels").is_some() || sel.get("matchExpressions").is_some() {
        let typed: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector> = serde_json::from_value(sel.clone()).ok();
        return label::Selector::from_label_selector(typed.as_ref()).map(|s| s.to_string()).unwrap_or_default();
    }
    // ReplicationControllers have a plain map selector.
    let mut set = std::collections::BTreeMap::new();
    if let Some(m) = sel.as_object() {
        for (k, v) in m {
            if let Some(s) = v.as_str() {
                set.insert(k.clone(), s.to_string());
            }
        }
    }
    label::Selector::from_set(&set).to_string()
}

/// The `autoscaling/v1 Scale` view of a workload.
pub fn scale_of(obj: &Value) -> Value {
    let meta = &obj["metadata"];
    let mut m = json!({
        "name": meta["name"],
        "namespace": meta["namespace"],
        "uid": meta["uid"],
        "resourceVersion": meta["resourceVersion"],
        "creationTimestamp": meta["creationTimestamp"],
    });
    if meta.get("namespace").is_none() {
        if let Some(o) = m.as_object_mut() {
            o.remove("namespace");
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": m,
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector_string(obj)},
    })
}

/// Applies a Scale's replicas (and resourceVersion precondition) to the workload.
fn apply_scale(info: &ResourceInfo, name: &str, old: &Value, scale: &Value) -> Result<Value, ApiError> {
    let replicas = &scale["spec"]["replicas"];
    let Some(n) = replicas.as_i64().or(if replicas.is_null() { Some(0) } else { None }) else {
        return Err(ApiError::bad_request("Scale in version \"v1\" cannot be handled as a Scale: spec.replicas must be an integer"));
    };
    if n < 0 {
        return Err(ApiError::invalid("autoscaling", "Scale", name, &[FieldError::invalid("spec.replicas", json!(n), "must be greater than or equal to 0")]));
    }
    let mut new = old.clone();
    new["spec"]["replicas"] = json!(n);
    if let Some(rv) = scale["metadata"]["resourceVersion"].as_str().filter(|s| !s.is_empty()) {
        new["metadata"]["resourceVersion"] = json!(rv);
    }
    let _ = info;
    Ok(new)
}

/// Subresources of stored resources (everything except `status`).
pub async fn handle(state: &AppState, store: &Store, r: &ResourceRequest, sub: &str, req: Request, output: Output) -> Result<Response, ApiError> {
    let info = store.info;
    let ns = r.namespace.as_deref();
    let name = r.name.clone().unwrap_or_default();
    let q = Query::parse(req.uri().query());
    let opts = super::params::WriteOptions {
        dry_run: super::params::parse_dry_run(&q.all("dryRun"))?,
        field_manager: q.get("fieldManager").map(str::to_string),
        field_validation: FieldValidation::parse(q.get("fieldValidation"))?,
        user_agent: user_agent(&req),
        force: false,
        applied: false,
    };
    match (sub, r.verb) {
        ("scale", Verb::Get) => Ok(respond(200, &scale_of(&store.get(ns, &name, q.get("resourceVersion")).await?), output, &[])),
        ("scale", Verb::Update) => {
            let scale = json_body(req).await?;
            if let Some(n) = scale["metadata"]["name"].as_str().filter(|n| *n != name) {
                return Err(ApiError::bad_request(format!("the name of the object ({n}) does not match the name on the URL ({name})")));
            }
            let apply = |old: &Value| apply_scale(info, &name, old, &scale);
            let out = store.patch(ns, &name, &apply, Sub::Main, &opts, &super::store::NoAdmission).await?;
            Ok(respond(200, &scale_of(&out.object), output, &out.warnings))
        }
        ("scale", Verb::Patch) => {
            let ct = req.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let body = read_body(req.into_body(), MAX_BODY).await?;
            let mime = ct.split(';').next().unwrap_or("").trim().to_string();
            let patch_doc: Value = serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(super::decode::json_error_text(&e)))?;
            let apply = |old: &Value| -> Result<Value, ApiError> {
                let mut scale = scale_of(old);
                match mime.as_str() {
                    "application/json-patch+json" => {
                        let ops: json_patch::Patch = serde_json::from_value(patch_doc.clone()).map_err(|e| ApiError::bad_request(e.to_string()))?;
                        json_patch::patch(&mut scale, &ops).map_err(|e| ApiError::new(422, ironkube_machinery::Reason::Invalid, e.to_string()))?;
                    }
                    "application/merge-patch+json" | "application/strategic-merge-patch+json" => json_patch::merge(&mut scale, &patch_doc),
                    _ => return Err(ApiError::unsupported_media_type(ApiError::PATCH_TYPES)),
                }
                apply_scale(info, &name, old, &scale)
            };
            let out = store.patch(ns, &name, &apply, Sub::Main, &opts, &super::store::NoAdmission).await?;
            Ok(respond(200, &scale_of(&out.object), output, &out.warnings))
        }
        ("binding", Verb::Create) => {
            let binding = json_body(req).await?;
            bind(store, ns, &name, &binding, &opts).await?;
            Ok(respond(201, &success(201), output, &[]))
        }
        ("eviction", Verb::Create) => {
            let eviction = json_body(req).await?;
            let del = super::eviction::read_eviction(&eviction, ns, &name, opts.dry_run)?;
            let evicted = super::eviction::evict(state, store, ns, &name, del).await?;
            Ok(respond(201, &evicted.status(), output, &[]))
        }
        ("finalize", Verb::Update) | ("approval", Verb::Update) | ("ephemeralcontainers", Verb::Update) => {
            let (obj, warnings) = crate::http::resource::read_object(info, req, opts.field_validation).await?;
            let path: &'static [&'static str] = match sub {
                "finalize" => &["spec", "finalizers"],
                "approval" => &["status", "conditions"],
                _ => &["spec", "ephemeralContainers"],
            };
            let out = store.update(ns, &name, obj, Sub::Field(path), &opts, state.admission.as_ref()).await?;
            let mut all = warnings;
            all.extend(out.warnings);
            Ok(respond(200, &out.object, output, &all))
        }
        ("token", Verb::Create) if info.plural == "serviceaccounts" => {
            let request = json_body(req).await?;
            let sa = store.get(ns, &name, None).await?;
            let node = bound_pod_node(state, ns, &request).await?;
            Ok(respond(201, &token_request(state, &sa, request, node)?, output, &[]))
        }
        ("finalize" | "approval" | "ephemeralcontainers", Verb::Patch) => {
            let path: &'static [&'static str] = match sub {
                "finalize" => &["spec", "finalizers"],
                "approval" => &["status", "conditions"],
                _ => &["spec", "ephemeralContainers"],
            };
            let out = crate::http::resource::patch(store, ns, &name, req, Sub::Field(path), &opts, state.admission.as_ref()).await?;
            Ok(respond(200, &out.object, output, &out.warnings))
        }
        ("finalize" | "approval" | "ephemeralcontainers" | "resize", Verb::Get) => {
            Ok(respond(200, &store.get(ns, &name, None).await?, output, &[]))
        }
        ("log", Verb::Get) if info.plural == "pods" => crate::proxy::pods::log(state, &state.kubelet, ns, &name, req).await,
        ("exec" | "attach" | "portforward", Verb::Get | Verb::Create) if info.plural == "pods" => {
            let kind = match sub {
                "exec" => crate::proxy::pods::Connect::Exec,
                "attach" => crate::proxy::pods::Connect::Attach,
                _ => crate::proxy::pods::Connect::PortForward,
            };
            crate::proxy::pods::connect(state, &state.kubelet, kind, ns, &name, req).await
        }
        ("proxy", _) if info.plural == "nodes" => crate::proxy::nodes::proxy(state, &state.kubelet, &name, req).await,
        ("proxy", _) if info.plural == "pods" => crate::proxy::backend::pod_proxy(state, ns, &name, req).await,
        ("proxy", _) if info.plural == "services" => crate::proxy::backend::service_proxy(state, ns, &name, req).await,
        _ => Err(ApiError::service_unavailable(format!(
            "the {sub} subresource of {} needs a node agent, which this cluster does not run yet",
            info.plural
        ))),
    }
}

/// Binds a pod to a node (pods/binding and the bindings resource).
async fn bind(store: &Store, ns: Option<&str>, name: &str, binding: &Value, opts: &super::params::WriteOptions) -> Result<(), ApiError> {
    let node = binding["target"]["name"].as_str().unwrap_or("").to_string();
    if node.is_empty() {
        return Err(ApiError::invalid("", "Binding", name, &[FieldError::required("target.name", "")]));
    }
    let gr = store.group_resource();
    let annotations = binding["metadata"]["annotations"].clone();
    let apply = |old: &Value| -> Result<Value, ApiError> {
        if old["metadata"].get("deletionTimestamp").is_some_and(|v| !v.is_null()) {
            return Err(ApiError::conflict(&gr, name, "pod is being deleted, cannot be assigned to a host"));
        }
        if let Some(current) = old["spec"]["nodeName"].as_str().filter(|s| !s.is_empty()) {
            return Err(ApiError::conflict(&gr, name, &format!("pod {name} is already assigned to node {current:?}")));
        }
        let mut new = old.clone();
        new["spec"]["nodeName"] = json!(node);
        if let Some(a) = annotations.as_object() {
            for (k, v) in a {
                new["metadata"]["annotations"][k] = v.clone();
            }
        }
        let now = super::store::now_rfc3339();
        let mut conditions: Vec<Value> = new["status"]["conditions"].as_array().cloned().unwrap_or_default();
        conditions.retain(|c| c["type"] != "PodScheduled");
        conditions.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}));
        new["status"]["conditions"] = json!(conditions);
        Ok(new)
    };
    store.patch(ns, name, &apply, Sub::Binding, opts, &super::store::NoAdmission).await?;
    Ok(())
}

/// For a token bound to a pod: the pod must exist with that UID, and the node it runs on
/// (name, uid) goes into the token, as upstream's TokenRequest does.
async fn bound_pod_node(state: &AppState, ns: Option<&str>, request: &Value) -> Result<Option<(String, String)>, ApiError> {
    let bound = &request["spec"]["boundObjectRef"];
    if bound["kind"].as_str() != Some("Pod") {
        return Ok(None);
    }
    let (name, uid) = (bound["name"].as_str().unwrap_or(""), bound["uid"].as_str().unwrap_or(""));
    let Some(pods) = state.registry.store("", "v1", "pods") else { return Ok(None) };
    let pod = pods.get(ns, name, None).await?;
    if !uid.is_empty() && pod["metadata"]["uid"].as_str() != Some(uid) {
        return Err(ApiError::conflict(
            &pods.group_resource(),
            name,
            &format!("the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"),
        ));
    }
    let Some(node_name) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) else { return Ok(None) };
    let Some(nodes) = state.registry.store("", "v1", "nodes") else { return Ok(None) };
    match nodes.get(None, node_name, None).await {
        Ok(node) => Ok(Some((node_name.to_string(), node["metadata"]["uid"].as_str().unwrap_or("").to_string()))),
        Err(_) => Ok(None),
    }
}

/// `serviceaccounts/token`: a signed token for the account (TokenRequest).
fn token_request(state: &AppState, sa: &Value, mut request: Value, node: Option<(String, String)>) -> Result<Value, ApiError> {
    let name = sa["metadata"]["name"].as_str().unwrap_or("").to_string();
    let ns = sa["metadata"]["namespace"].as_str().unwrap_or("").to_string();
    if request.get("spec").is_none_or(|s| !s.is_object()) {
        request["spec"] = json!({});
    }
    let seconds = request["spec"]["expirationSeconds"].as_i64().filter(|s| *s != 0).unwrap_or(3600);
    let invalid = |why: &str| {
        ApiError::invalid("authentication.k8s.io", "TokenRequest", &name, &[FieldError::invalid("spec.expirationSeconds", json!(seconds), why)])
    };
    if seconds < 600 {
        return Err(invalid("may not specify a duration less than 10 minutes"));
    }
    if seconds > 1 << 32 {
        return Err(invalid("may not specify a duration larger than 2^32 seconds"));
    }
    let mut audiences: Vec<String> = request["spec"]["audiences"].as_array().into_iter().flatten().filter_map(|a| a.as_str().map(str::to_string)).collect();
    if audiences.is_empty() {
        audiences.push(state.tokens.issuer.clone());
    }
    let bound = &request["spec"]["boundObjectRef"];
    let bound_ref = bound["kind"].as_str().map(|k| (k, bound["name"].as_str().unwrap_or(""), bound["uid"].as_str().unwrap_or("")));
    let now = jiff::Timestamp::now();
    let claims = state.tokens.claims(&ns, &name, sa["metadata"]["uid"].as_str().unwrap_or(""), &audiences, now.as_second(), seconds, bound_ref, node.as_ref().map(|(n, u)| (n.as_str(), u.as_str())));
    let token = state.tokens.sign(&claims).map_err(ApiError::internal)?;
    let expires = jiff::Timestamp::from_second(now.as_second() + seconds).map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default();
    request["apiVersion"] = json!("authentication.k8s.io/v1");
    request["kind"] = json!("TokenRequest");
    if request.get("metadata").is_none_or(|m| !m.is_object()) {
        request["metadata"] = json!({});
    }
    request["metadata"]["creationTimestamp"] = Value::Null;
    request["spec"]["audiences"] = json!(audiences);
    request["spec"]["expirationSeconds"] = json!(seconds);
    if request["spec"].get("boundObjectRef").is_none() {
        request["spec"]["boundObjectRef"] = Value::Null;
    }
    request["status"] = json!({"token": token, "expirationTimestamp": expires});
    Ok(request)
}

/// `tokenreviews`: whether a service account token is valid, and for whom.
async fn token_review(state: &AppState, review: &Value) -> Value {
    let token = review["spec"]["token"].as_str().unwrap_or("");
    let wanted: Vec<String> = review["spec"]["audiences"].as_array().into_iter().flatten().filter_map(|a| a.as_str().map(str::to_string)).collect();
    let fail = |why: &str| json!({"authenticated": false, "user": {}, "error": why});
    let id = match state.tokens.verify(token, &wanted, jiff::Timestamp::now().as_second()) {
        Ok(id) => id,
        Err(why) => return fail(&format!("[{why}]")),
    };
    // The account must still exist, with the same uid (upstream's service account lookup).
    let current = match state.registry.store("", "v1", "serviceaccounts") {
        Some(sas) => sas.get(Some(&id.namespace), &id.name, None).await.ok(),
        None => None,
    };
    match current {
        Some(sa) if sa["metadata"]["uid"].as_str() == Some(id.uid.as_str()) => {}
        _ => return fail(&format!("[invalid bearer token, service account {}/{} has been deleted]", id.namespace, id.name)),
    }
    // A pod-bound token dies with its pod.
    if let Some((pod_name, pod_uid)) = id.bound_pod() {
        let pod = match state.registry.store("", "v1", "pods") {
            Some(pods) => pods.get(Some(&id.namespace), pod_name, None).await.ok(),
            None => None,
        };
        if pod.is_none_or(|p| p["metadata"]["uid"].as_str() != Some(pod_uid)) {
            return fail("[invalid bearer token, service account token has been invalidated]");
        }
    }
    json!({
        "authenticated": true,
        "user": {
            "username": id.username(),
            "uid": id.uid,
            "groups": id.groups(),
            "extra": id.extra(),
        },
        "audiences": id.audiences,
    })
}

/// Create-only resources with no storage.
pub async fn virtual_resource(state: &AppState, info: &'static ResourceInfo, r: &ResourceRequest, req: Request) -> Result<Response, ApiError> {
    let user = req.extensions().get::<UserInfo>().cloned().unwrap_or_else(UserInfo::anonymous);
    let q = Query::parse(req.uri().query());
    let output = crate::http::negotiate::negotiate(req.headers().get(http::header::ACCEPT).and_then(|v| v.to_str().ok()), false)?;
    // Only component statuses print as a table; the other virtual resources have no table
    // convertor, so upstream's negotiation refuses the transform.
    if matches!(output, crate::http::negotiate::Output::Table { .. }) && info.plural != "componentstatuses" {
        return Err(ApiError::not_acceptable("application/json, application/yaml, application/vnd.kubernetes.protobuf"));
    }
    match (info.group, info.plural, r.verb) {
        ("", "componentstatuses", Verb::List | Verb::Get) => {
            let healthy = state.etcd.current_revision().await.is_ok();
            let etcd = json!({"kind": "ComponentStatus", "apiVersion": "v1", "metadata": {"name": "etcd-0"},
                "conditions": [{"type": "Healthy", "status": if healthy { "True" } else { "False" }, "message": if healthy { "ok" } else { "etcd is unreachable" }}]});
            if r.verb == Verb::Get {
                if r.name.as_deref() == Some("etcd-0") {
                    return Ok(respond(200, &etcd, output, &[]));
                }
                return Err(ApiError::not_found(&info.group_resource(), r.name.as_deref().unwrap_or("")));
            }
            let list = json!({"kind": "ComponentStatusList", "apiVersion": "v1", "metadata": {}, "items": [etcd]});
            Ok(respond(200, &list, output, &[]))
        }
        ("", "bindings", Verb::Create) => {
            let binding = json_body(req).await?;
            let name = binding["metadata"]["name"].as_str().unwrap_or("").to_string();
            let pods = state.registry.store("", "v1", "pods").ok_or_else(ApiError::path_not_found)?;
            let opts = super::params::WriteOptions { dry_run: super::params::parse_dry_run(&q.all("dryRun"))?, ..Default::default() };
            bind(pods, r.namespace.as_deref(), &name, &binding, &opts).await?;
            Ok(respond(201, &success(201), output, &[]))
        }
        ("authentication.k8s.io", "selfsubjectreviews", Verb::Create) => {
            let mut body = json_body(req).await?;
            body["apiVersion"] = json!(info.api_version());
            body["kind"] = json!(info.kind);
            body["status"] = json!({"userInfo": {"username": user.name, "groups": user.groups}});
            if body.get("metadata").is_none_or(|m| !m.is_object()) {
                body["metadata"] = json!({});
            }
            body["metadata"]["creationTimestamp"] = Value::Null;
            Ok(respond(201, &body, output, &[]))
        }
        ("authentication.k8s.io", "tokenreviews", Verb::Create) => {
            let mut body = json_body(req).await?;
            let status = token_review(state, &body).await;
            body["status"] = status;
            if body.get("metadata").is_none_or(|m| !m.is_object()) {
                body["metadata"] = json!({});
            }
            body["metadata"]["creationTimestamp"] = Value::Null;
            Ok(respond(201, &body, output, &[]))
        }
        ("authorization.k8s.io", "selfsubjectaccessreviews" | "subjectaccessreviews" | "localsubjectaccessreviews", Verb::Create) => {
            let mut body = json_body(req).await?;
            if body["spec"].get("resourceAttributes").is_none() && body["spec"].get("nonResourceAttributes").is_none() {
                return Err(invalid_field(info, "", FieldError::invalid("spec.resourceAttributes", json!(null), "exactly one of nonResourceAttributes or resourceAttributes must be specified")));
            }
            let anonymous = user.is_anonymous() && info.plural == "selfsubjectaccessreviews";
            body["status"] = json!({"allowed": !anonymous, "reason": "ironkube: every authenticated user is authorized (RBAC is not enforced yet)"});
            body["metadata"]["creationTimestamp"] = Value::Null;
            Ok(respond(201, &body, output, &[]))
        }
        ("authorization.k8s.io", "selfsubjectrulesreviews", Verb::Create) => {
            let mut body = json_body(req).await?;
            body["status"] = json!({
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                "incomplete": false,
            });
            body["metadata"]["creationTimestamp"] = Value::Null;
            Ok(respond(201, &body, output, &[]))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}
