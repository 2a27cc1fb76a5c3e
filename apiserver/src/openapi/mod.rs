//! OpenAPI: `/openapi/v3` (the index and one document per group-version, per group, and
//! for `/api`, `/apis` and `/version`) and `/openapi/v2` (one Swagger 2.0 document), as
//! Kubernetes v1.33 publishes them.
//!
//! The documents are built once, on first use, from the resource table (`routes`) and from
//! the schemas of k8s-openapi's types completed by the machinery schema table
//! (`schemas`). A version 3 document is named by the SHA-512 of its bytes: the index links
//! each with `?hash=`, a request carrying the current hash is answered as immutable, one
//! carrying another hash is redirected to the current one, and `If-None-Match` with the
//! ETag gets 304.
//!
//! kubectl reads version 3 (`explain`, `apply`, `create`/`replace` with validation, `diff`,
//! `edit`) as JSON. Version 2 is served as JSON and, for `explain
//! --output=plaintext-openapiv2` and kubectl's fallbacks, as gnostic protobuf.

mod protobuf;
mod roots;
mod routes;
mod schemas;
mod v2;
mod v3;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use ironkube_machinery::ApiError;
use ironkube_machinery::resources;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};

use schemas::Definitions;

/// The media type of the gnostic protobuf form of a version 2 document.
pub const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
const V2_PROTOBUF_RESPONSE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// One served document: its bytes and their hash (upper-case hex SHA-512).
struct Document {
    bytes: Vec<u8>,
    hash: String,
}

impl Document {
    fn from_bytes(bytes: Vec<u8>) -> Document {
        let hash = hex_upper(&Sha512::digest(&bytes));
        Document { bytes, hash }
    }
}

/// The served documents of one configuration, each part built on first use.
pub(super) struct Documents {
    openid: bool,
    defs: OnceLock<Definitions>,
    v3: OnceLock<V3>,
    v2: OnceLock<Document>,
    v2_protobuf: OnceLock<Vec<u8>>,
}

struct V3 {
    /// `api/v1`, `apis/apps`, `version`, ... -> document
    docs: BTreeMap<String, Document>,
    index: Vec<u8>,
}

/// `v1.33.5` -> `1.33`, the version upstream writes in `info`.
fn info_version() -> String {
    let v = crate::version::GIT_VERSION.trim_start_matches('v');
    v.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// Whether the server answers `/.well-known/openid-configuration` and `/openid/v1/jwks`
/// (service account issuer discovery); their documents are listed only then.
pub const SERVICE_ACCOUNT_ISSUER_DISCOVERY: bool = false;

impl Documents {
    pub(super) fn new(openid: bool) -> Documents {
        Documents {
            openid,
            defs: OnceLock::new(),
            v3: OnceLock::new(),
            v2: OnceLock::new(),
            v2_protobuf: OnceLock::new(),
        }
    }

    fn defs(&self) -> &Definitions {
        self.defs.get_or_init(Definitions::build)
    }

    /// Every document's routes, by its index path.
    fn routes(&self) -> BTreeMap<String, Vec<routes::Route>> {
        let mut out = BTreeMap::new();
        if self.openid {
            out.insert(
                ".well-known/openid-configuration".to_string(),
                routes::openid_configuration(),
            );
            out.insert("openid/v1/jwks".to_string(), routes::openid_keyset());
        }
        out.insert("api".to_string(), routes::core_versions());
        out.insert("apis".to_string(), routes::api_versions());
        out.insert("version".to_string(), routes::version());
        for g in resources::groups() {
            if !g.group.is_empty() {
                out.insert(format!("apis/{}", g.group), routes::group(g.group));
            }
            for v in &g.versions {
                let path = if g.group.is_empty() {
                    format!("api/{v}")
                } else {
                    format!("apis/{}/{v}", g.group)
                };
                out.insert(path, routes::group_version(g.group, v));
            }
        }
        out
    }

    fn v3(&self) -> &V3 {
        self.v3.get_or_init(|| {
            let version = info_version();
            let docs: BTreeMap<String, Document> = self
                .routes()
                .iter()
                .map(|(path, routes)| {
                    (
                        path.clone(),
                        Document::from_bytes(
                            v3::document(routes, self.defs(), &version).into_bytes(),
                        ),
                    )
                })
                .collect();
            let paths: Map<String, Value> = docs
                .iter()
                .map(|(p, doc)| {
                    (
                        p.clone(),
                        json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", doc.hash)}),
                    )
                })
                .collect();
            let index = go_json(&json!({"paths": Value::Object(paths)})).into_bytes();
            V3 { docs, index }
        })
    }

    fn v2(&self) -> &Document {
        self.v2.get_or_init(|| {
            let every: Vec<routes::Route> = self.routes().into_values().flatten().collect();
            Document::from_bytes(v2::document(&every, self.defs(), &info_version()).into_bytes())
        })
    }

    fn v2_protobuf(&self) -> &[u8] {
        self.v2_protobuf
            .get_or_init(|| protobuf::encode_v2(&self.v2().bytes))
    }

    /// Serves one request; see [`handle_request`].
    pub(super) fn serve(
        &self,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<Response, ApiError> {
        let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
        if path == "/openapi/v2" || path == "/openapi/v2/" {
            let (json, proto) = wants(accept, V2_PROTOBUF);
            if !json && !proto {
                return Err(ApiError::not_acceptable(accept.unwrap_or_default()));
            }
            let doc = self.v2();
            if etag_matches(headers, &doc.hash) {
                return Ok(not_modified(&doc.hash));
            }
            if json {
                return Ok(respond(
                    StatusCode::OK,
                    doc.bytes.clone(),
                    "application/json",
                    Some(&doc.hash),
                    false,
                ));
            }
            let bytes = self.v2_protobuf().to_vec();
            return Ok(respond(
                StatusCode::OK,
                bytes,
                V2_PROTOBUF_RESPONSE,
                Some(&doc.hash),
                false,
            ));
        }
        if path == "/openapi/v3" || path == "/openapi/v3/" {
            return Ok(respond(
                StatusCode::OK,
                self.v3().index.clone(),
                "application/json",
                None,
                false,
            ));
        }
        let Some(name) = path.strip_prefix("/openapi/v3/") else {
            return Err(ApiError::path_not_found());
        };
        let doc = self
            .v3()
            .docs
            .get(name.trim_end_matches('/'))
            .ok_or_else(ApiError::path_not_found)?;
        let (json, _) = wants(
            accept,
            "application/com.github.proto-openapi.spec.v3@v1.0+protobuf",
        );
        if !json {
            return Err(ApiError::not_acceptable(accept.unwrap_or_default()));
        }
        if etag_matches(headers, &doc.hash) {
            return Ok(not_modified(&doc.hash));
        }
        let asked = query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("hash=")));
        match asked {
            Some(h) if h == doc.hash => Ok(respond(
                StatusCode::OK,
                doc.bytes.clone(),
                "application/json",
                Some(&doc.hash),
                true,
            )),
            Some(_) => {
                let mut resp = respond(
                    StatusCode::MOVED_PERMANENTLY,
                    Vec::new(),
                    "application/json",
                    Some(&doc.hash),
                    false,
                );
                if let Ok(v) =
                    HeaderValue::from_str(&format!("/openapi/v3/{name}?hash={}", doc.hash))
                {
                    resp.headers_mut().insert(header::LOCATION, v);
                }
                Ok(resp)
            }
            None => Ok(respond(
                StatusCode::OK,
                doc.bytes.clone(),
                "application/json",
                Some(&doc.hash),
                false,
            )),
        }
    }
}

fn documents() -> &'static Documents {
    static DOCS: OnceLock<Documents> = OnceLock::new();
    DOCS.get_or_init(|| Documents::new(SERVICE_ACCOUNT_ISSUER_DISCOVERY))
}

/// Builds the version 3 documents ahead of the first request (they take a moment). Call it
/// from a blocking task at start-up; requests meanwhile wait for it.
pub fn warm() {
    documents().v3();
}

pub(super) use ironkube_machinery::go_json::encode as go_json;

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn etag_matches(headers: &HeaderMap, hash: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|t| t == hash || t == "*")
}

fn respond(
    status: StatusCode,
    body: Vec<u8>,
    content_type: &'static str,
    etag: Option<&str>,
    immutable: bool,
) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(tag) = etag.and_then(|t| HeaderValue::from_str(&format!("\"{t}\"")).ok()) {
        h.insert(header::ETAG, tag);
    }
    if immutable {
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, immutable"),
        );
        let expires = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_hours(24 * 365))
            .ok();
        if let Some(v) = expires.and_then(|t| {
            HeaderValue::from_str(&t.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string()).ok()
        }) {
            h.insert(header::EXPIRES, v);
        }
    } else {
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, private"),
        );
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    resp
}

fn not_modified(hash: &str) -> Response {
    respond(
        StatusCode::NOT_MODIFIED,
        Vec::new(),
        "application/json",
        Some(hash),
        false,
    )
}

/// Which of JSON and the protobuf form `accept` allows (JSON first when both are).
fn wants(accept: Option<&str>, protobuf: &str) -> (bool, bool) {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return (true, false);
    };
    let mut json = false;
    let mut proto = false;
    for part in accept.split(',') {
        let media = part.split(';').next().unwrap_or("").trim();
        match media {
            "application/json" | "application/*" | "*/*" => json = true,
            m if m == protobuf => proto = true,
            _ => {}
        }
    }
    (json, proto)
}

/// Serves `/openapi/v3`, `/openapi/v3/<document>` and `/openapi/v2`.
pub fn handle(path: &str, query: Option<&str>, accept: Option<&str>) -> Result<Response, ApiError> {
    let mut headers = HeaderMap::new();
    if let Some(v) = accept.and_then(|a| HeaderValue::from_str(a).ok()) {
        headers.insert(header::ACCEPT, v);
    }
    handle_request(path, query, &headers)
}

/// As [`handle`], with the request headers (`Accept`, `If-None-Match`).
pub fn handle_request(
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    documents().serve(path, query, headers)
}
