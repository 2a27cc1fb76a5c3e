//! Storage: objects as JSON documents in etcd v3, keyed as upstream keys them.
//!
//! `etcd3` talks to etcd; `cacher` keeps one etcd watch per resource and serves every client
//! watch (and `resourceVersion=0` lists) from memory; `codec` is the one seam for the value
//! encoding. Objects travel as `serde_json::Value` with `metadata.resourceVersion` set from
//! the etcd revision; the stored bytes never carry a resourceVersion.

pub mod cacher;
pub mod codec;
pub mod etcd3;

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

pub use cacher::Cacher;
pub use etcd3::Etcd3;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("key not found: {key}")]
    NotFound { key: String },
    #[error("key exists: {key}")]
    KeyExists { key: String },
    /// The object changed between read and write, or a resourceVersion precondition failed.
    #[error("conflict on {key}: {message}")]
    Conflict { key: String, message: String },
    #[error("too old resource version: {requested} ({compacted})")]
    Compacted { requested: i64, compacted: i64 },
    #[error("Too large resource version: {requested}, current: {current}")]
    TooLargeResourceVersion { requested: i64, current: i64 },
    #[error("invalid continue token: {0}")]
    InvalidContinue(String),
    #[error("decoding {key}: {message}")]
    Decode { key: String, message: String },
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    /// The update function refused the change (validation, admission, ...).
    #[error(transparent)]
    Rejected(#[from] ironkube_machinery::ApiError),
}

/// `metav1.Preconditions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preconditions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

impl Preconditions {
    pub fn is_empty(&self) -> bool {
        self.uid.is_none() && self.resource_version.is_none()
    }

    /// Upstream's precondition message when the object does not satisfy them.
    pub fn check(&self, key: &str, obj: &Value) -> Result<(), StorageError> {
        let meta = &obj["metadata"];
        if let Some(uid) = &self.uid {
            let actual = meta["uid"].as_str().unwrap_or("");
            if uid != actual {
                return Err(StorageError::Conflict {
                    key: key.to_string(),
                    message: format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                    ),
                });
            }
        }
        if let Some(rv) = &self.resource_version {
            let actual = meta["resourceVersion"].as_str().unwrap_or("");
            if rv != actual {
                return Err(StorageError::Conflict {
                    key: key.to_string(),
                    message: format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
                    ),
                });
            }
        }
        Ok(())
    }
}

/// How a LIST chooses its revision (`resourceVersion` + `resourceVersionMatch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListRevision {
    /// Most recent, consistent (quorum) read.
    #[default]
    Latest,
    /// Any revision; the watch cache answers.
    Any,
    /// At least this revision.
    NotOlderThan(i64),
    /// Exactly this revision.
    Exact(i64),
}

/// A page request against one key prefix.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub revision: ListRevision,
    /// 0 = no limit.
    pub limit: i64,
    /// Decoded continue token: start after this key, at this revision.
    pub continue_from: Option<ContinueToken>,
}

/// What upstream encodes into the `continue` token: the revision and the next key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContinueToken {
    pub revision: i64,
    /// Key relative to the listed prefix.
    pub start: String,
}

impl ContinueToken {
    /// base64 of `{"v":"meta.k8s.io/v1","rv":N,"start":"..."}` like upstream.
    pub fn encode(&self) -> String {
        use base64::Engine;
        let doc = serde_json::json!({"v": "meta.k8s.io/v1", "rv": self.revision, "start": self.start});
        base64::engine::general_purpose::URL_SAFE.encode(doc.to_string())
    }

    pub fn decode(token: &str) -> Result<Self, StorageError> {
        use base64::Engine;
        let invalid = |why: &str| StorageError::InvalidContinue(why.to_string());
        let bytes = base64::engine::general_purpose::URL_SAFE
            .decode(token)
            .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
            .map_err(|_| invalid("continue key is not valid"))?;
        let doc: Value = serde_json::from_slice(&bytes).map_err(|_| invalid("continue key is not valid"))?;
        if doc["v"] != "meta.k8s.io/v1" {
            return Err(invalid("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"));
        }
        let revision = doc["rv"].as_i64().filter(|r| *r > 0).ok_or_else(|| invalid("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
        let start = doc["start"].as_str().ok_or_else(|| invalid("continue key is not valid"))?;
        if start.contains("..") || start.starts_with('/') {
            return Err(invalid("continue key is not valid: path traversal not allowed"));
        }
        Ok(ContinueToken { revision, start: start.to_string() })
    }
}

/// One page of a LIST.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub items: Vec<Arc<Value>>,
    /// The revision the page was read at (the list's resourceVersion).
    pub revision: i64,
    pub continue_token: Option<ContinueToken>,
    /// Items after this page, when known (no filter applied).
    pub remaining: Option<i64>,
}

/// A filter applied inside storage so that `limit` counts matching items only.
pub type Predicate = Arc<dyn Fn(&Value) -> bool + Send + Sync>;

/// The kind of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
    Bookmark,
    Error,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
            EventType::Bookmark => "BOOKMARK",
            EventType::Error => "ERROR",
        }
    }
}

/// A change to one key, as the cache fans it out.
#[derive(Debug)]
pub struct Event {
    pub kind: EventType,
    pub key: String,
    /// The object after the change (for deletes: the last state, with the delete's revision).
    pub object: Arc<Value>,
    /// The object before the change, for MODIFIED/DELETED.
    pub prev: Option<Arc<Value>>,
    pub revision: i64,
    /// The object's JSON, serialized once and shared by every watcher.
    encoded: std::sync::OnceLock<Bytes>,
}

impl Event {
    pub fn new(kind: EventType, key: String, object: Arc<Value>, prev: Option<Arc<Value>>, revision: i64) -> Self {
        Event { kind, key, object, prev, revision, encoded: std::sync::OnceLock::new() }
    }

    /// The object serialized as JSON, computed at most once per event.
    pub fn object_json(&self) -> Bytes {
        self.encoded
            .get_or_init(|| Bytes::from(serde_json::to_vec(&*self.object).unwrap_or_default()))
            .clone()
    }
}

/// Sets `metadata.resourceVersion` to `revision`.
pub fn set_resource_version(obj: &mut Value, revision: i64) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(revision.to_string()));
    } else if let Some(map) = obj.as_object_mut() {
        map.insert("metadata".into(), serde_json::json!({"resourceVersion": revision.to_string()}));
    }
}

/// Parses `metadata.resourceVersion`; `None` when absent or empty.
pub fn resource_version_of(obj: &Value) -> Option<i64> {
    obj["metadata"]["resourceVersion"].as_str().and_then(|s| s.parse().ok())
}
