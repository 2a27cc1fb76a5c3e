//! OpenAPI v3: the index and one document per group-version.
//!
//! First cut: every path with its operations, the `x-kubernetes-group-version-kind` and
//! `x-kubernetes-action` extensions and the query parameters (kubectl reads the PATCH
//! operation to learn that the server validates fields itself). Schemas come next.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use ironkube_machinery::ApiError;
use ironkube_machinery::resources::{self, ResourceInfo};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};

struct Documents {
    /// `api/v1`, `apis/apps/v1` -> (document bytes, hash)
    by_path: BTreeMap<String, (Vec<u8>, String)>,
    index: Vec<u8>,
}

fn param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}})
}

fn gvk(info: &ResourceInfo) -> Value {
    json!({"group": info.group, "version": info.version, "kind": info.kind})
}

fn operation(info: &ResourceInfo, action: &str, op_id: &str, params: &[&str]) -> Value {
    let parameters: Vec<Value> = params.iter().map(|p| param(p, "")).collect();
    json!({
        "tags": [info.api_version().replace('/', "_")],
        "operationId": op_id,
        "parameters": parameters,
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(info),
    })
}

fn document(group: &str, version: &str) -> Value {
    let base = if group.is_empty() { format!("/api/{version}") } else { format!("/apis/{group}/{version}") };
    let mut paths = Map::new();
    for info in resources::resources_of(group, version) {
        let scopes: Vec<String> = if info.namespaced {
            vec![format!("{base}/namespaces/{{namespace}}/{}", info.plural), format!("{base}/{}", info.plural)]
        } else {
            vec![format!("{base}/{}", info.plural)]
        };
        let collection = &scopes[0];
        let mut coll = Map::new();
        if info.has_verb("list") {
            coll.insert("get".into(), operation(info, "list", "list", &["labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "resourceVersionMatch", "watch", "allowWatchBookmarks", "sendInitialEvents", "timeoutSeconds"]));
        }
        if info.has_verb("create") {
            coll.insert("post".into(), operation(info, "post", "create", &["dryRun", "fieldManager", "fieldValidation"]));
        }
        if info.has_verb("deletecollection") {
            coll.insert("delete".into(), operation(info, "deletecollection", "deleteCollection", &["labelSelector", "fieldSelector", "gracePeriodSeconds", "propagationPolicy", "dryRun"]));
        }
        if !coll.is_empty() {
            paths.insert(collection.clone(), Value::Object(coll));
        }
        if info.namespaced && info.has_verb("list") {
            let mut all = Map::new();
            all.insert("get".into(), operation(info, "list", "listForAllNamespaces", &["labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "watch"]));
            paths.insert(scopes[1].clone(), Value::Object(all));
        }
        let item = format!("{collection}/{{name}}");
        let mut item_ops = Map::new();
        if info.has_verb("get") {
            item_ops.insert("get".into(), operation(info, "get", "read", &[]));
        }
        if info.has_verb("update") {
            item_ops.insert("put".into(), operation(info, "put", "replace", &["dryRun", "fieldManager", "fieldValidation"]));
        }
        if info.has_verb("patch") {
            item_ops.insert("patch".into(), operation(info, "patch", "patch", &["dryRun", "fieldManager", "fieldValidation", "force"]));
        }
        if info.has_verb("delete") {
            item_ops.insert("delete".into(), operation(info, "delete", "delete", &["dryRun", "gracePeriodSeconds", "propagationPolicy"]));
        }
        if !item_ops.is_empty() {
            paths.insert(item.clone(), Value::Object(item_ops));
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": crate::version::GIT_VERSION},
        "paths": Value::Object(paths),
        "components": {"schemas": {}},
    })
}

fn documents() -> &'static Documents {
    static DOCS: OnceLock<Documents> = OnceLock::new();
    DOCS.get_or_init(|| {
        let mut by_path = BTreeMap::new();
        for g in resources::groups() {
            for v in g.versions.iter() {
                let path = if g.group.is_empty() { format!("api/{v}") } else { format!("apis/{}/{v}", g.group) };
                let bytes = serde_json::to_vec(&document(g.group, v)).unwrap_or_default();
                let hash = hex_upper(&Sha512::digest(&bytes));
                by_path.insert(path, (bytes, hash));
            }
        }
        let mut paths = Map::new();
        for (p, (_, hash)) in &by_path {
            paths.insert(p.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")}));
        }
        let index = serde_json::to_vec(&json!({"paths": Value::Object(paths)})).unwrap_or_default();
        Documents { by_path, index }
    })
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn json_response(bytes: Vec<u8>, etag: Option<&str>, immutable: bool) -> Response {
    let mut resp = (StatusCode::OK, bytes).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(tag) = etag.and_then(|t| HeaderValue::from_str(&format!("\"{t}\"")).ok()) {
        h.insert(header::ETAG, tag);
    }
    let cc = if immutable { "public, immutable" } else { "no-cache, private" };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cc));
    resp
}

/// Serves `/openapi/v3` and `/openapi/v3/<group-version path>`.
pub fn handle(path: &str, query: Option<&str>, _accept: Option<&str>) -> Result<Response, ApiError> {
    let docs = documents();
    if path == "/openapi/v3" || path == "/openapi/v3/" {
        return Ok(json_response(docs.index.clone(), None, false));
    }
    let Some(gv) = path.strip_prefix("/openapi/v3/") else {
        return Err(ApiError::path_not_found());
    };
    let (bytes, hash) = docs.by_path.get(gv).ok_or_else(ApiError::path_not_found)?;
    let asked = query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("hash=")));
    Ok(json_response(bytes.clone(), Some(hash), asked == Some(hash.as_str())))
}
