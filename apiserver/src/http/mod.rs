//! HTTP: the axum app. One fallback handler parses the request info once and dispatches to
//! discovery, the non-resource endpoints or the resource handlers; cross-cutting concerns are
//! tower layers (tracing, panics -> 500 Status, compression).

pub mod auth;
pub mod negotiate;
pub mod query;
pub mod request_info;
pub mod resource;
pub mod table;
pub mod watch;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use ironkube_machinery::{ApiError, resources};
use serde_json::Value;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::Predicate;

use crate::discovery;
use crate::registry::Registry;
use crate::registry::store::Admission;
use auth::UserInfo;
use negotiate::Output;
use request_info::Target;

/// Everything a request handler needs.
pub struct AppState {
    pub registry: Registry,
    pub admission: Arc<dyn Admission>,
    /// `host:port` clients reach this server at (discovery's serverAddressByClientCIDRs).
    pub server_address: String,
    pub ready: AtomicBool,
    pub etcd: crate::storage::Etcd3,
    /// Issues and verifies service account tokens.
    pub tokens: Arc<crate::serviceaccount_token::TokenSigner>,
    /// HTTPS to kubelets (pods/log, exec, attach, portforward, nodes/proxy).
    pub kubelet: Arc<crate::proxy::KubeletClient>,
}

pub type SharedState = Arc<AppState>;

/// An `ApiError` as an HTTP response: the `metav1.Status` JSON with its code.
pub struct ErrorResponse(pub ApiError);

impl From<ApiError> for ErrorResponse {
    fn from(e: ApiError) -> Self {
        ErrorResponse(e)
    }
}

impl IntoResponse for ErrorResponse {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.0.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.0.to_status()).unwrap_or_default();
        let mut resp = (code, body).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(secs) = self.0.details.as_ref().and_then(|d| d.retry_after_seconds) {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

/// A response in the negotiated representation (JSON, YAML or protobuf where the kind has
/// one), with a status code and `Warning` headers.
pub fn respond(code: u16, value: &Value, output: Output, warnings: &[String]) -> Response {
    let (ct, bytes) = negotiate::encode(value, output);
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    let mut resp = (code, bytes).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    for w in warnings {
        add_warning(&mut resp, w);
    }
    resp
}

/// Compress large, complete bodies only (like upstream's 128 KiB threshold); never streams.
#[derive(Clone, Copy)]
struct LargeBodies;

impl Predicate for LargeBodies {
    fn should_compress<B: http_body::Body>(&self, response: &http::Response<B>) -> bool {
        response.body().size_hint().exact().is_some_and(|n| n >= 128 * 1024)
    }
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ErrorResponse(ApiError::internal("the server panicked while handling the request")).into_response()
}

/// The API server's router.
pub fn app(state: SharedState) -> Router {
    Router::new()
        .fallback(dispatch)
        .with_state(state)
        .layer(CompressionLayer::new().gzip(true).no_br().no_deflate().no_zstd().compress_when(LargeBodies))
        .layer(CatchPanicLayer::custom(panic_response))
}

#[tracing::instrument(skip_all, fields(method = %req.method(), path = %req.uri().path()))]
async fn dispatch(State(state): State<SharedState>, req: Request) -> Response {
    let user = req.extensions().get::<UserInfo>().cloned().unwrap_or_else(UserInfo::anonymous);
    let target = request_info::parse(req.method(), req.uri().path(), req.uri().query());
    if let Err(e) = auth::authorize(&user, &target, req.method()) {
        return ErrorResponse(e).into_response();
    }
    let result = match target {
        Target::NonResource(path) => {
            let query = req.uri().query().map(str::to_string);
            let accept = accept(&req).map(str::to_string);
            non_resource(&state, &path, query.as_deref(), accept.as_deref()).await
        }
        Target::CoreVersions | Target::Groups | Target::Group(_) | Target::ResourceList { .. } => {
            discovery_response(&state, &target, &req)
        }
        Target::Resource(r) => {
            // Deprecated kinds warn on every request, whatever its outcome.
            let deprecated = resources::lookup(&r.group, &r.version, &r.resource).and_then(resources::deprecation_warning);
            let mut resp = match resource::handle(&state, r, req).await {
                Ok(resp) => resp,
                Err(e) => ErrorResponse(e).into_response(),
            };
            if let Some(w) = deprecated {
                add_warning(&mut resp, w);
            }
            return resp;
        }
    };
    match result {
        Ok(resp) => resp,
        Err(e) => ErrorResponse(e).into_response(),
    }
}

/// Appends an RFC 7234 `Warning: 299 - "text"` header.
fn add_warning(resp: &mut Response, text: &str) {
    let text = text.replace('\\', "\\\\").replace('"', "\\\"");
    if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{text}\"")) {
        resp.headers_mut().append(header::WARNING, v);
    }
}

fn accept(req: &Request) -> Option<&str> {
    req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok())
}

fn discovery_response(state: &AppState, target: &Target, req: &Request) -> Result<Response, ApiError> {
    if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
        return Err(ApiError::method_not_allowed());
    }
    let aggregated_ok = matches!(target, Target::CoreVersions | Target::Groups);
    let output = negotiate::negotiate(accept(req), aggregated_ok)?;
    let value = match (target, output) {
        (Target::CoreVersions, Output::AggregatedDiscovery) => discovery::aggregated_core(),
        (Target::Groups, Output::AggregatedDiscovery) => discovery::aggregated_apis(),
        (Target::CoreVersions, _) => discovery::api_versions(&state.server_address),
        (Target::Groups, _) => discovery::api_group_list(),
        (Target::Group(g), _) => discovery::api_group(g).ok_or_else(ApiError::path_not_found)?,
        (Target::ResourceList { group, version }, _) => {
            discovery::api_resource_list(group, version).ok_or_else(ApiError::path_not_found)?
        }
        _ => return Err(ApiError::path_not_found()),
    };
    let mut resp = respond(200, &value, if output == Output::Yaml { Output::Yaml } else { Output::Json }, &[]);
    if output == Output::AggregatedDiscovery {
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(discovery::AGGREGATED_CONTENT_TYPE));
    }
    Ok(resp)
}

fn plain(code: StatusCode, text: &'static str) -> Response {
    let mut resp = (code, text).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

async fn non_resource(state: &AppState, path: &str, query: Option<&str>, accept: Option<&str>) -> Result<Response, ApiError> {
    match path {
        "/version" => Ok(respond(200, &crate::version::info(), Output::Json, &[])),
        "/healthz" | "/livez" | "/healthz/ping" | "/livez/ping" | "/readyz/ping" => Ok(plain(StatusCode::OK, "ok")),
        "/readyz" | "/healthz/etcd" | "/livez/etcd" | "/readyz/etcd" => {
            let etcd_ok = tokio::time::timeout(std::time::Duration::from_secs(2), state.etcd.current_revision())
                .await
                .is_ok_and(|r| r.is_ok());
            let ready = path != "/readyz" || state.ready.load(Ordering::Acquire);
            if etcd_ok && ready {
                Ok(plain(StatusCode::OK, "ok"))
            } else {
                Ok(plain(StatusCode::INTERNAL_SERVER_ERROR, "[-]etcd failed: reason withheld\nreadyz check failed"))
            }
        }
        p if p.starts_with("/openapi/") => crate::openapi::handle(p, query, accept),
        _ => Err(ApiError::path_not_found()),
    }
}

/// Reads a request body up to `limit` bytes (413 past it).
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                Err(ApiError::request_entity_too_large(format!("Request entity too large: limit is {limit}")))
            } else {
                Err(ApiError::bad_request(format!("reading the request body: {e}")))
            }
        }
    }
}
