//! Resource handlers: translate HTTP into registry calls and registry results into responses.

use axum::extract::Request;
use axum::response::Response;
use http::header;
use ironkube_machinery::resources::{self, ResourceInfo};
use ironkube_machinery::selectors::{field, label};
use ironkube_machinery::{ApiError, FieldError};
use serde_json::{Value, json};

use super::negotiate::{self, Output};
use super::query::Query;
use super::request_info::{ResourceRequest, Verb};
use super::table::{self, table_options};
use super::{AppState, read_body, respond};
use crate::registry::decode::{self, decode_object};
use crate::registry::params::{self, DeleteOptions, FieldValidation, ListParams, WriteOptions};
use crate::registry::store::{Admission, Outcome, Store, Sub};
use crate::registry::subresources;

/// Largest request body accepted (upstream's 3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

fn header_str<'a>(req: &'a Request, name: header::HeaderName) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Renders a single object in the negotiated output.
fn render_object(info: &ResourceInfo, obj: &Value, output: Output, q: &Query, code: u16, warnings: &[String]) -> Result<Response, ApiError> {
    let value = match output {
        Output::Table { v1beta1 } => {
            let include = table_options(&q)?;
            let rv = obj["metadata"]["resourceVersion"].clone();
            table::table(info, std::slice::from_ref(obj), json!({"resourceVersion": rv}), v1beta1, include)
        }
        Output::Metadata { v1beta1 } => table::partial_metadata(obj, v1beta1),
        _ => obj.clone(),
    };
    Ok(respond(code, &value, output, warnings))
}

fn parse_list_params(q: &Query) -> Result<ListParams, ApiError> {
    let bad = ApiError::bad_request;
    let label_selector = match q.get("labelSelector").filter(|s| !s.is_empty()) {
        Some(s) => Some(label::Selector::parse(s).map_err(|e| bad(e.to_string()))?),
        None => None,
    };
    let field_selector = match q.get("fieldSelector").filter(|s| !s.is_empty()) {
        Some(s) => Some(field::Selector::parse(s).map_err(|e| bad(e.to_string()))?),
        None => None,
    };
    let limit = q.int("limit").map_err(bad)?.unwrap_or(0).max(0);
    Ok(ListParams {
        label_selector,
        field_selector,
        limit,
        continue_token: q.get("continue").filter(|s| !s.is_empty()).map(str::to_string),
        resource_version: q.get("resourceVersion").map(str::to_string),
        resource_version_match: q.get("resourceVersionMatch").filter(|s| !s.is_empty()).map(str::to_string),
        watch: q.bool("watch").map_err(bad)?.unwrap_or(false),
        allow_watch_bookmarks: q.bool("allowWatchBookmarks").map_err(bad)?.unwrap_or(false),
        send_initial_events: q.bool("sendInitialEvents").map_err(bad)?,
        timeout_seconds: q.int("timeoutSeconds").map_err(bad)?.map(|t| t.max(0) as u64),
    })
}

fn write_options(q: &Query, req: &Request) -> Result<WriteOptions, ApiError> {
    Ok(WriteOptions {
        dry_run: params::parse_dry_run(&q.all("dryRun"))?,
        field_manager: q.get("fieldManager").filter(|s| !s.is_empty()).map(str::to_string),
        field_validation: FieldValidation::parse(q.get("fieldValidation"))?,
        user_agent: header_str(req, header::USER_AGENT).map(str::to_string),
        force: q.bool("force").map_err(ApiError::bad_request)?.unwrap_or(false),
        applied: false,
    })
}

fn delete_options(q: &Query) -> Result<DeleteOptions, ApiError> {
    let bad = ApiError::bad_request;
    let mut opts = DeleteOptions {
        grace_period_seconds: q.int("gracePeriodSeconds").map_err(bad)?,
        dry_run: params::parse_dry_run(&q.all("dryRun"))?,
        orphan_dependents: q.bool("orphanDependents").map_err(bad)?,
        ..Default::default()
    };
    if let Some(p) = q.get("propagationPolicy").filter(|s| !s.is_empty()) {
        opts.propagation = Some(params::parse_propagation(p)?);
    }
    Ok(opts)
}

/// Whether `verb` is served on this resource (or subresource).
fn check_verb(info: &ResourceInfo, r: &ResourceRequest) -> Result<(), ApiError> {
    let verb = r.verb.as_str();
    if let Some(sub) = &r.subresource {
        let Some(s) = info.subresource(sub) else {
            return Err(ApiError::path_not_found());
        };
        let v = match r.verb {
            Verb::Watch | Verb::List => "get",
            other => other.as_str(),
        };
        if !s.verbs.contains(&v) {
            return Err(ApiError::method_not_allowed());
        }
        return Ok(());
    }
    if !info.has_verb(verb) {
        return Err(ApiError::method_not_allowed());
    }
    // POST names a collection; PUT and PATCH name an object.
    let misplaced = match r.verb {
        Verb::Create => r.name.is_some(),
        Verb::Update | Verb::Patch => r.name.is_none(),
        _ => false,
    };
    if misplaced {
        return Err(ApiError::method_not_allowed());
    }
    Ok(())
}

/// Handles `/api/v1/...` and `/apis/<g>/<v>/...` resource requests.
#[tracing::instrument(skip_all, fields(verb = r.verb.as_str(), resource = %r.resource, namespace = r.namespace.as_deref().unwrap_or(""), name = r.name.as_deref().unwrap_or("")))]
pub async fn handle(state: &AppState, r: ResourceRequest, req: Request) -> Result<Response, ApiError> {
    let Some(info) = resources::lookup(&r.group, &r.version, &r.resource) else {
        return Err(ApiError::path_not_found());
    };
    // A namespaced path to a cluster-scoped resource (or the reverse for items) names nothing.
    if r.namespace.is_some() && !info.namespaced {
        return Err(ApiError::path_not_found());
    }
    if info.namespaced && r.namespace.is_none() && !matches!(r.verb, Verb::List | Verb::Watch) {
        return Err(ApiError::path_not_found());
    }
    check_verb(info, &r)?;
    let Some(store) = state.registry.store_for(info) else {
        return subresources::virtual_resource(state, info, &r, req).await;
    };
    let q = Query::parse(req.uri().query());
    let accept = header_str(&req, header::ACCEPT).map(str::to_string);
    let output = negotiate::negotiate(accept.as_deref(), false)?;
    let ns = r.namespace.as_deref();
    let name = r.name.clone().unwrap_or_default();
    match (r.subresource.as_deref(), r.verb) {
        (Some(sub), _) if sub != "status" => subresources::handle(state, store, &r, sub, req, output).await,
        (_, Verb::Get) => {
            let obj = store.get(ns, &name, q.get("resourceVersion")).await?;
            render_object(info, &obj, output, &q, 200, &[])
        }
        (_, Verb::List) => {
            let params = parse_list_params(&q)?;
            if params.watch {
                return super::watch::serve(store, ns, &params, output, &q).await;
            }
            let page = store.list(ns, &params).await?;
            let continue_token = page.continue_token.as_ref().map(|t| t.encode());
            if output == Output::Json {
                // The common case writes straight from the shared objects, without copying them.
                return Ok(json_list_response(store, &page, continue_token));
            }
            let items: Vec<Value> = page.items.iter().map(|v| (**v).clone()).collect();
            let value = match output {
                Output::Table { v1beta1 } => {
                    let include = table_options(&q)?;
                    let mut meta = json!({"resourceVersion": page.revision.to_string()});
                    if let Some(c) = &continue_token {
                        meta["continue"] = json!(c);
                    }
                    if let Some(rem) = page.remaining {
                        meta["remainingItemCount"] = json!(rem);
                    }
                    table::table(info, &items, meta, v1beta1, include)
                }
                Output::Metadata { v1beta1 } => {
                    let partial: Vec<Value> = items.iter().map(|o| {
                        let mut p = table::partial_metadata(o, v1beta1);
                        if let Some(m) = p.as_object_mut() {
                            m.remove("kind");
                            m.remove("apiVersion");
                        }
                        p
                    }).collect();
                    let mut list = store.list_object(partial, &page.revision.to_string(), continue_token, page.remaining);
                    list["kind"] = json!("PartialObjectMetadataList");
                    list["apiVersion"] = json!(if v1beta1 { "meta.k8s.io/v1beta1" } else { "meta.k8s.io/v1" });
                    list
                }
                _ => store.list_object(items, &page.revision.to_string(), continue_token, page.remaining),
            };
            Ok(respond(200, &value, output, &[]))
        }
        (_, Verb::Watch) => {
            let mut params = parse_list_params(&q)?;
            if let Some(n) = &r.name {
                // `/watch/.../pods/<name>`: a watch on one object.
                params.field_selector = Some(field::Selector::equal("metadata.name", n.clone()));
            }
            super::watch::serve(store, ns, &params, output, &q).await
        }
        (sub, Verb::Create) => {
            if sub.is_some() {
                return Err(ApiError::method_not_allowed());
            }
            let opts = write_options(&q, &req)?;
            let (obj, mut warnings) = read_object(info, req, opts.field_validation).await?;
            let out = store.create(ns, obj, &opts, state.admission.as_ref()).await?;
            warnings.extend(out.warnings.iter().cloned());
            render_object(info, &out.object, output, &q, out.code, &warnings)
        }
        (sub, Verb::Update) => {
            let opts = write_options(&q, &req)?;
            let (obj, mut warnings) = read_object(info, req, opts.field_validation).await?;
            let sub = if sub == Some("status") { Sub::Status } else { Sub::Main };
            let out = store.update(ns, &name, obj, sub, &opts, state.admission.as_ref()).await?;
            warnings.extend(out.warnings.iter().cloned());
            render_object(info, &out.object, output, &q, out.code, &warnings)
        }
        (sub, Verb::Patch) => {
            let opts = write_options(&q, &req)?;
            let sub = if sub == Some("status") { Sub::Status } else { Sub::Main };
            let out = patch(store, ns, &name, req, sub, &opts, state.admission.as_ref()).await?;
            render_object(info, &out.object, output, &q, out.code, &out.warnings)
        }
        (_, Verb::Delete) => {
            let mut opts = delete_options(&q)?;
            if let Some(v) = delete_body(req).await? {
                opts.merge_body(&v)?;
            }
            let out = store.delete(ns, &name, &opts, state.admission.as_ref()).await?;
            let code = if out.code == 200 && opts.orphan_dependents == Some(false) && out.object["kind"] != "Status" { 202 } else { out.code };
            if out.object["kind"] == "Status" {
                return Ok(respond(code, &out.object, output, &[]));
            }
            render_object(info, &out.object, output, &q, code, &[])
        }
        (_, Verb::DeleteCollection) => {
            let params = parse_list_params(&q)?;
            let mut opts = delete_options(&q)?;
            if let Some(v) = delete_body(req).await? {
                opts.merge_body(&v)?;
            }
            let list = store.delete_collection(ns, &params, &opts, state.admission.as_ref()).await?;
            Ok(respond(200, &list, output, &[]))
        }
    }
}

/// A DeleteOptions body, if any (JSON or protobuf).
async fn delete_body(req: Request) -> Result<Option<Value>, ApiError> {
    let content_type = header_str(&req, header::CONTENT_TYPE).unwrap_or("application/json").to_string();
    let body = read_body(req.into_body(), MAX_BODY).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let (v, _) = decode::parse_body(&content_type, &body, "DeleteOptions in version \"v1\" cannot be handled as a DeleteOptions")?;
    Ok(Some(v))
}

/// A `<Kind>List` as JSON, serialized item by item from the page's shared objects.
fn json_list_response(store: &Store, page: &crate::storage::ListPage, continue_token: Option<String>) -> Response {
    let head = store.list_object(Vec::new(), &page.revision.to_string(), continue_token, page.remaining);
    let mut out = Vec::with_capacity(64 + page.items.len() * 512);
    // Everything of the list but its items, then the items one by one.
    let mut head_bytes = serde_json::to_vec(&head).unwrap_or_default();
    // `head` ends with `"items":[]}`; reopen the array.
    if head_bytes.ends_with(b"[]}") {
        head_bytes.truncate(head_bytes.len() - 2);
    }
    out.extend_from_slice(&head_bytes);
    for (i, item) in page.items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut out, item.as_ref());
    }
    out.extend_from_slice(b"]}");
    let mut resp = axum::response::IntoResponse::into_response((http::StatusCode::OK, out));
    resp.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    resp
}

/// Reads and decodes the object in a create/update body.
pub async fn read_object(info: &ResourceInfo, req: Request, validation: FieldValidation) -> Result<(Value, Vec<String>), ApiError> {
    let content_type = header_str(&req, header::CONTENT_TYPE).unwrap_or("application/json").to_string();
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if !matches!(mime.as_str(), "application/json" | "application/yaml" | "application/vnd.kubernetes.protobuf" | "") {
        return Err(ApiError::unsupported_media_type(ApiError::BODY_TYPES));
    }
    let body = read_body(req.into_body(), MAX_BODY).await?;
    let what = format!("{} in version {:?} cannot be handled as a {}", info.kind, info.version, info.kind);
    let (value, dups) = decode::parse_body(&content_type, &body, &what)?;
    decode_object(info, value, dups, validation)
}

/// PATCH with the patch type from Content-Type.
pub(crate) async fn patch(store: &Store, ns: Option<&str>, name: &str, req: Request, sub: Sub, opts: &WriteOptions, admission: &dyn Admission) -> Result<Outcome, ApiError> {
    let content_type = header_str(&req, header::CONTENT_TYPE).unwrap_or("").to_string();
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let body = read_body(req.into_body(), MAX_BODY).await?;
    let info = store.info;
    let validation = opts.field_validation;
    let warnings = std::sync::Mutex::new(Vec::new());
    let is_apply = mime == "application/apply-patch+yaml";
    let mut option_errors = Vec::new();
    if is_apply && opts.field_manager.is_none() {
        option_errors.push(FieldError::required("fieldManager", "is required for apply patch"));
    }
    if !is_apply && opts.force {
        option_errors.push(FieldError::forbidden("force", "may not be specified for non-apply patch"));
    }
    if !option_errors.is_empty() {
        return Err(ApiError::invalid("meta.k8s.io", "PatchOptions", "", &option_errors));
    }
    let result = match mime.as_str() {
        "application/apply-patch+yaml" => {
            let config = apply_config(info, &body)?;
            store.apply(ns, name, &config, sub, opts, admission).await
        }
        "application/json-patch+json" => {
            let ops: json_patch::Patch = serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request(format!("json: cannot unmarshal the patch: {}", decode::json_error_text(&e))))?;
            let apply = |old: &Value| -> Result<Value, ApiError> {
                let mut doc = old.clone();
                json_patch::patch(&mut doc, &ops).map_err(|e| {
                    // Upstream answers with the generic 422 text only; the cause goes to the log.
                    tracing::debug!(error = %e, "applying a JSON patch");
                    ApiError::new(422, ironkube_machinery::Reason::Invalid, "the server rejected our request due to an error in our request")
                })?;
                finish_patched(info, doc, validation, &warnings)
            };
            store.patch(ns, name, &apply, sub, opts, admission).await
        }
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            let patch_doc: Value = serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request(decode::json_error_text(&e)))?;
            if !patch_doc.is_object() {
                return Err(ApiError::bad_request("json: cannot unmarshal patch into Go value of type map[string]interface {}"));
            }
            let strategic = mime == "application/strategic-merge-patch+json";
            let apply = |old: &Value| -> Result<Value, ApiError> {
                let mut doc = old.clone();
                if strategic {
                    ironkube_machinery::patch::strategic::apply_typed(&mut doc, &patch_doc, ironkube_machinery::schema::kind_type(info.group, info.version, info.kind)).map_err(ApiError::bad_request)?;
                } else {
                    json_patch::merge(&mut doc, &patch_doc);
                }
                finish_patched(info, doc, validation, &warnings)
            };
            store.patch(ns, name, &apply, sub, opts, admission).await
        }
        _ => {
            return Err(ApiError::unsupported_media_type(ApiError::PATCH_TYPES));
        }
    };
    let mut out = result?;
    if let Ok(w) = warnings.lock() {
        out.warnings.extend(w.iter().cloned());
    }
    Ok(out)
}

/// The configuration of a server-side apply, checked as upstream checks it before merging.
fn apply_config(info: &ResourceInfo, body: &[u8]) -> Result<Value, ApiError> {
    let config: Value = serde_saphyr::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {}", e.to_string().lines().next().unwrap_or(""))))?;
    let Value::Object(_) = &config else {
        return Err(ApiError::bad_request("error decoding YAML: the configuration is not an object"));
    };
    let (group, version) = match config["apiVersion"].as_str().unwrap_or("").split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), config["apiVersion"].as_str().unwrap_or("").to_string()),
    };
    let kind = config["kind"].as_str().unwrap_or("");
    if group != info.group || version != info.version || kind != info.kind {
        return Err(ApiError::bad_request(format!("invalid object type: {group}/{version}, Kind={kind}")));
    }
    if config["metadata"].get("managedFields").is_some_and(|m| !m.is_null()) {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    Ok(config)
}

/// A patched object goes through the same decoding as a request body.
fn finish_patched(info: &ResourceInfo, doc: Value, validation: FieldValidation, warnings: &std::sync::Mutex<Vec<String>>) -> Result<Value, ApiError> {
    let (obj, w) = decode_object(info, doc, Vec::new(), validation)?;
    if let Ok(mut all) = warnings.lock() {
        all.extend(w);
    }
    Ok(obj)
}

/// 422 with one field error, for subresource handlers.
pub fn invalid_field(info: &ResourceInfo, name: &str, err: FieldError) -> ApiError {
    ApiError::invalid(info.group, info.kind, name, &[err])
}
