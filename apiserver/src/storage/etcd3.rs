//! etcd v3 storage: create-if-absent, mod-revision-guarded updates and deletes, paged lists
//! at one revision, and watches.

use std::sync::Arc;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType as EtcdEventType, GetOptions,
    PutOptions, TlsOptions, Txn, TxnOp, TxnOpResponse, WatchOptions, WatchStream,
};
use serde_json::Value;
use tracing::debug;

use super::{
    ContinueToken, ListOptions, ListPage, ListRevision, Predicate, Preconditions, StorageError, codec,
};

/// TLS material for talking to etcd (`--etcd-cafile/--etcd-certfile/--etcd-keyfile`).
#[derive(Debug, Clone, Default)]
pub struct EtcdTls {
    pub ca_pem: Option<Vec<u8>>,
    pub cert_pem: Option<Vec<u8>>,
    pub key_pem: Option<Vec<u8>>,
}

/// A connection to etcd, cheap to clone.
#[derive(Clone)]
pub struct Etcd3 {
    client: Client,
}

/// Upper bound on one range response: large lists are paged below this.
const MAX_DECODING_BYTES: usize = 256 * 1024 * 1024;
/// Keys fetched per round trip when a filtered list has to read ahead.
const READ_AHEAD: i64 = 500;

fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    // Prefixes end with '/', so incrementing the last byte gives the range end.
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

/// Maps etcd's gRPC errors about revisions to their storage meaning.
fn classify(err: etcd_client::Error, requested: i64) -> StorageError {
    if let etcd_client::Error::GRpcStatus(status) = &err {
        let msg = status.message();
        if msg.contains("required revision has been compacted") {
            return StorageError::Compacted { requested, compacted: 0 };
        }
        if msg.contains("required revision is a future revision") {
            return StorageError::TooLargeResourceVersion { requested, current: 0 };
        }
    }
    StorageError::Etcd(err)
}

impl Etcd3 {
    pub async fn connect(endpoints: &[String], tls: Option<EtcdTls>) -> Result<Self, etcd_client::Error> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(std::time::Duration::from_secs(10))
            .with_keep_alive(std::time::Duration::from_secs(30), std::time::Duration::from_secs(10));
        if let Some(tls) = tls {
            let mut t = TlsOptions::new();
            if let Some(ca) = tls.ca_pem {
                t = t.ca_certificate(etcd_client::Certificate::from_pem(ca));
            }
            if let (Some(cert), Some(key)) = (tls.cert_pem, tls.key_pem) {
                t = t.identity(etcd_client::Identity::from_pem(cert, key));
            }
            options = options.with_tls(t);
        }
        let client = Client::connect(endpoints, Some(options)).await?;
        Ok(Etcd3 { client })
    }

    fn kv(&self) -> etcd_client::KvClient {
        self.client.kv_client().max_decoding_message_size(MAX_DECODING_BYTES)
    }

    /// The cluster's current revision.
    pub async fn current_revision(&self) -> Result<i64, StorageError> {
        let resp = self.kv().get("/", Some(GetOptions::new().with_count_only())).await?;
        Ok(resp.header().map(|h| h.revision()).unwrap_or(0))
    }

    /// Writes `obj` at `key` if the key is absent.
    pub async fn create(&self, key: &str, obj: &Value) -> Result<Value, StorageError> {
        let bytes = codec::encode(obj);
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, bytes.clone(), None::<PutOptions>)]);
        let resp = self.kv().txn(txn).await?;
        if !resp.succeeded() {
            return Err(StorageError::KeyExists { key: key.to_string() });
        }
        let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
        codec::decode(key, &bytes, revision)
    }

    /// Reads one key at the latest revision.
    pub async fn get(&self, key: &str) -> Result<Value, StorageError> {
        let resp = self.kv().get(key, None).await?;
        match resp.kvs().first() {
            Some(kv) => codec::decode(key, kv.value(), kv.mod_revision()),
            None => Err(StorageError::NotFound { key: key.to_string() }),
        }
    }

    /// Reads one key with its mod revision, `None` if absent.
    async fn get_raw(&self, key: &str) -> Result<Option<(Value, i64)>, StorageError> {
        let resp = self.kv().get(key, None).await?;
        match resp.kvs().first() {
            Some(kv) => Ok(Some((codec::decode(key, kv.value(), kv.mod_revision())?, kv.mod_revision()))),
            None => Ok(None),
        }
    }

    /// Counts the keys under `prefix`.
    pub async fn count(&self, prefix: &str) -> Result<i64, StorageError> {
        let resp = self
            .kv()
            .get(prefix, Some(GetOptions::new().with_range(prefix_end(prefix)).with_count_only()))
            .await?;
        Ok(resp.count())
    }

    /// Lists the keys under `prefix` (which ends with `/`) at one revision, `limit` matching
    /// items at a time.
    pub async fn list(
        &self,
        prefix: &str,
        opts: &ListOptions,
        predicate: Option<&Predicate>,
    ) -> Result<ListPage, StorageError> {
        let mut revision = match (&opts.continue_from, opts.revision) {
            (Some(token), _) => token.revision,
            (None, ListRevision::Exact(rv)) => rv,
            _ => 0,
        };
        let requested = revision;
        let mut start = match &opts.continue_from {
            Some(token) => format!("{prefix}{}", token.start).into_bytes(),
            None => prefix.as_bytes().to_vec(),
        };
        let end = prefix_end(prefix);
        let mut page = ListPage::default();
        let limit = opts.limit.max(0);
        loop {
            let mut get = GetOptions::new().with_range(end.clone());
            if revision > 0 {
                get = get.with_revision(revision);
            }
            if limit > 0 {
                let want = if predicate.is_some() { limit.max(READ_AHEAD) } else { limit + 1 };
                get = get.with_limit(want);
            }
            let resp = self.kv().get(start.clone(), Some(get)).await.map_err(|e| classify(e, requested))?;
            if revision == 0 {
                revision = resp.header().map(|h| h.revision()).unwrap_or(0);
            }
            let kvs = resp.kvs();
            for (i, kv) in kvs.iter().enumerate() {
                if limit > 0 && page.items.len() as i64 == limit {
                    // A matching page is full and at least this key remains.
                    let last = kvs[i - 1].key();
                    page.continue_token = Some(next_token(prefix, last, revision));
                    if predicate.is_none() {
                        page.remaining = Some(resp.count() - i as i64);
                    }
                    page.revision = revision;
                    return Ok(page);
                }
                let key = String::from_utf8_lossy(kv.key()).into_owned();
                let obj = codec::decode(&key, kv.value(), kv.mod_revision())?;
                if predicate.is_none_or(|p| p(&obj)) {
                    page.items.push(Arc::new(obj));
                }
            }
            if !resp.more() || kvs.is_empty() {
                break;
            }
            if limit > 0 && page.items.len() as i64 == limit {
                if let Some(last) = kvs.last() {
                    page.continue_token = Some(next_token(prefix, last.key(), revision));
                }
                break;
            }
            let mut next = kvs.last().map(|kv| kv.key().to_vec()).unwrap_or_default();
            next.push(0);
            start = next;
        }
        page.revision = revision;
        Ok(page)
    }

    /// Reads, transforms and writes one key, retrying while another writer gets there first.
    ///
    /// `update` sees the current object (`None` if absent) and returns the new one; an
    /// unchanged result is not written. Preconditions are checked on every attempt.
    pub async fn guaranteed_update<F>(
        &self,
        key: &str,
        preconditions: &Preconditions,
        mut update: F,
    ) -> Result<Value, StorageError>
    where
        F: FnMut(Option<Value>) -> Result<Value, StorageError>,
    {
        loop {
            let current = self.get_raw(key).await?;
            let (current_obj, mod_revision) = match current {
                Some((obj, rev)) => (Some(obj), rev),
                None => (None, 0),
            };
            if let Some(obj) = &current_obj {
                preconditions.check(key, obj)?;
            }
            let new = update(current_obj.clone())?;
            let bytes = codec::encode(&new);
            if let Some(obj) = &current_obj
                && codec::encode(obj) == bytes
            {
                return Ok(obj.clone());
            }
            let txn = Txn::new()
                .when([Compare::mod_revision(key, CompareOp::Equal, mod_revision)])
                .and_then([TxnOp::put(key, bytes.clone(), None::<PutOptions>)]);
            let resp = self.kv().txn(txn).await?;
            if resp.succeeded() {
                let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
                return codec::decode(key, &bytes, revision);
            }
            debug!(key, "guaranteed_update: lost the race, retrying");
        }
    }

    /// Deletes `key` if the preconditions hold, guarded by its mod revision; returns the last
    /// state with the deletion's revision.
    pub async fn delete(&self, key: &str, preconditions: &Preconditions) -> Result<Value, StorageError> {
        loop {
            let Some((obj, mod_revision)) = self.get_raw(key).await? else {
                return Err(StorageError::NotFound { key: key.to_string() });
            };
            preconditions.check(key, &obj)?;
            let txn = Txn::new()
                .when([Compare::mod_revision(key, CompareOp::Equal, mod_revision)])
                .and_then([TxnOp::delete(key, None::<DeleteOptions>)]);
            let resp = self.kv().txn(txn).await?;
            if resp.succeeded() {
                let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
                let mut out = obj;
                super::set_resource_version(&mut out, revision);
                return Ok(out);
            }
            if let Some(TxnOpResponse::Delete(_)) = resp.op_responses().first() {
                continue;
            }
        }
    }

    /// Deletes `key` only if it is still at `mod_revision`; `false` if it changed.
    pub async fn delete_at(&self, key: &str, mod_revision: i64) -> Result<Option<i64>, StorageError> {
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, mod_revision)])
            .and_then([TxnOp::delete(key, None::<DeleteOptions>)]);
        let resp = self.kv().txn(txn).await?;
        Ok(resp.succeeded().then(|| resp.header().map(|h| h.revision()).unwrap_or(0)))
    }

    /// Starts an etcd watch on `prefix` from `start_revision` (inclusive), with previous values.
    pub async fn watch(&self, prefix: &str, start_revision: i64) -> Result<WatchStream, StorageError> {
        let mut options = WatchOptions::new()
            .with_range(prefix_end(prefix))
            .with_prev_key()
            .with_progress_notify();
        if start_revision > 0 {
            options = options.with_start_revision(start_revision);
        }
        Ok(self.client.watch_client().watch(prefix, Some(options)).await?)
    }

    /// Compacts etcd's history up to `revision`.
    pub async fn compact(&self, revision: i64) -> Result<(), StorageError> {
        self.kv().compact(revision, None).await?;
        Ok(())
    }

    /// Reads the key holding the last compacted revision and current revision, for the
    /// compactor (upstream keeps this in `compact_rev_key`).
    pub fn client(&self) -> Client {
        self.client.clone()
    }
}

fn next_token(prefix: &str, last_key: &[u8], revision: i64) -> ContinueToken {
    let rel = String::from_utf8_lossy(&last_key[prefix.len().min(last_key.len())..]).into_owned();
    ContinueToken { revision, start: format!("{rel}\u{0}") }
}

/// Turns an etcd event into (type, key, object, prev) with the event's revision.
pub fn convert_event(ev: &etcd_client::Event) -> Option<Result<super::Event, StorageError>> {
    let kv = ev.kv()?;
    let key = String::from_utf8_lossy(kv.key()).into_owned();
    let revision = kv.mod_revision();
    let prev = match ev.prev_kv() {
        Some(p) => match codec::decode(&key, p.value(), p.mod_revision()) {
            Ok(v) => Some(Arc::new(v)),
            Err(e) => return Some(Err(e)),
        },
        None => None,
    };
    let event = match ev.event_type() {
        EtcdEventType::Put => {
            let obj = match codec::decode(&key, kv.value(), revision) {
                Ok(v) => v,
                Err(e) => return Some(Err(e)),
            };
            let kind = if kv.create_revision() == kv.mod_revision() || prev.is_none() {
                super::EventType::Added
            } else {
                super::EventType::Modified
            };
            super::Event::new(kind, key, Arc::new(obj), prev, revision)
        }
        EtcdEventType::Delete => {
            let mut last = prev.as_deref().cloned()?;
            super::set_resource_version(&mut last, revision);
            super::Event::new(super::EventType::Deleted, key, Arc::new(last), prev, revision)
        }
    };
    Some(Ok(event))
}
