//! Watch responses: a chunked stream of `{"type":...,"object":...}` lines.
//!
//! JSON events reuse the object bytes each cache event serialized once for all watchers.

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderValue, StatusCode, header};
use ironkube_machinery::ApiError;
use rand::Rng;
use serde_json::{Value, json};

use super::negotiate::Output;
use super::query::Query;
use super::table::{self, table_options};
use crate::registry::ListParams;
use crate::registry::store::Store;
use crate::storage::cacher::WatchItem;

fn line(kind: &str, object: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(object.len() + 32);
    buf.put_slice(b"{\"type\":\"");
    buf.put_slice(kind.as_bytes());
    buf.put_slice(b"\",\"object\":");
    buf.put_slice(object);
    buf.put_slice(b"}\n");
    buf.freeze()
}

/// One protobuf watch frame (length-prefixed WatchEvent).
fn frame(kind: &str, obj: &Value) -> Bytes {
    Bytes::from(ironkube_machinery::proto::encode_watch_event(kind, obj).unwrap_or_default())
}

/// Serves a watch until the client leaves, the timeout passes or the watch ends.
pub async fn serve(store: &Store, namespace: Option<&str>, params: &ListParams, output: Output, q: &Query) -> Result<Response, ApiError> {
    let include = table_options(q)?;
    let timeout = match params.timeout_seconds {
        Some(t) => Duration::from_secs(t),
        // Upstream spreads watch lifetimes between the minimum request timeout and twice it.
        None => Duration::from_secs(rand::rng().random_range(1800..3600)),
    };
    let rx = store.watch(namespace, params).await?;
    let info = store.info;
    let store_converts = store.converts();
    let convert_fn = move |v: Value| if store_converts { crate::registry::convert::from_storage(info, v) } else { v };
    let storage_error = {
        let gr = info.group_resource();
        move |e: crate::storage::StorageError| -> Value {
            let api = match e {
                crate::storage::StorageError::Compacted { requested, compacted } => ApiError::resource_expired(
                    if compacted > 0 { format!("too old resource version: {requested} ({compacted})") } else { format!("too old resource version: {requested}") },
                ),
                other => ApiError::internal(format!("{gr}: {other}")),
            };
            api.to_status()
        }
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let stream = futures::stream::unfold((rx, false), move |(mut rx, done)| {
        let storage_error = storage_error.clone();
        async move {
            if done {
                return None;
            }
            let item = tokio::select! {
                item = rx.recv() => item?,
                _ = tokio::time::sleep_until(deadline) => return None,
            };
            let (bytes, end) = match item {
                WatchItem::Event(ev) => {
                    let bytes = match output {
                        Output::Table { v1beta1 } => {
                            let t = table::table(info, std::slice::from_ref(&convert_fn(ev.object.as_ref().clone())), json!({"resourceVersion": ev.revision.to_string()}), v1beta1, include);
                            line(ev.kind.as_str(), &serde_json::to_vec(&t).unwrap_or_default())
                        }
                        Output::Metadata { v1beta1 } => {
                            let p = table::partial_metadata(&ev.object, v1beta1);
                            line(ev.kind.as_str(), &serde_json::to_vec(&p).unwrap_or_default())
                        }
                        _ if store_converts => {
                            let served = convert_fn(ev.object.as_ref().clone());
                            line(ev.kind.as_str(), &serde_json::to_vec(&served).unwrap_or_default())
                        }
                        Output::Protobuf => frame(ev.kind.as_str(), &convert_fn(ev.object.as_ref().clone())),
                        _ => line(ev.kind.as_str(), &ev.object_json()),
                    };
                    (bytes, false)
                }
                WatchItem::Bookmark { revision, initial_events_end } => {
                    let mut obj = json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": {"resourceVersion": revision.to_string()}});
                    if initial_events_end {
                        obj["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
                    }
                    let bytes = if output == Output::Protobuf { frame("BOOKMARK", &obj) } else { line("BOOKMARK", &serde_json::to_vec(&obj).unwrap_or_default()) };
                    (bytes, false)
                }
                WatchItem::Error(e) => {
                    let status = storage_error(e);
                    let bytes = if output == Output::Protobuf { frame("ERROR", &status) } else { line("ERROR", &serde_json::to_vec(&status).unwrap_or_default()) };
                    (bytes, true)
                }
            };
            Some((Ok::<Bytes, std::io::Error>(bytes), (rx, end)))
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = StatusCode::OK;
    let content_type = if output == Output::Protobuf { ironkube_machinery::proto::STREAM_CONTENT_TYPE } else { "application/json" };
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    Ok(resp)
}
