//! The generic store: upstream's object semantics for every resource, in one place.
//!
//! The order of a write is fixed here once: decode (done by the caller), system metadata,
//! generateName, strategy prepare, defaults, validation, admission, managed fields, write.

use std::sync::Arc;

use ironkube_machinery::field::{FieldError, Path};
use ironkube_machinery::resources::ResourceInfo;
use ironkube_machinery::validation::meta as meta_validation;
use ironkube_machinery::{ApiError, GroupResource};
use rand::Rng;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tracing::instrument;

use super::managed_fields;
use super::params::{DeleteOptions, ListParams, Propagation, WriteOptions, invalid_options};
use super::service_alloc::StoreHooks;
use super::strategy::Strategy;
use crate::storage::cacher::{WatchFilter, WatchItem, WatchStart};
use crate::storage::{
    Cacher, ContinueToken, Etcd3, ListOptions, ListPage, ListRevision, Preconditions, Predicate, StorageError,
    resource_version_of,
};

/// What a write returns: the object, the HTTP status and warnings for the client.
#[derive(Debug)]
pub struct Outcome {
    pub object: Value,
    pub code: u16,
    pub warnings: Vec<String>,
}

/// Admission the store asks for (see `crate::admission`): on create after defaulting and
/// before the strategy prepares and validates the object, which it may change.
pub trait Admission: Send + Sync {
    fn admit_create<'a>(
        &'a self,
        info: &'static ResourceInfo,
        namespace: Option<&'a str>,
        obj: &'a mut Value,
    ) -> futures::future::BoxFuture<'a, Result<(), ApiError>>;

    /// On update (main resource only), after defaulting, inside the guarded write: may
    /// change `new` from what `old` (stored) holds; no I/O.
    fn admit_update(&self, _info: &'static ResourceInfo, _new: &mut Value, _old: &Value) -> Result<(), ApiError> {
        Ok(())
    }

    /// Checks a DELETE (system namespaces may not be deleted).
    fn admit_delete(&self, _info: &'static ResourceInfo, _namespace: Option<&str>, _name: &str) -> Result<(), ApiError> {
        Ok(())
    }
}

/// No admission: for writes through subresources no plugin handles (scale, binding).
pub struct NoAdmission;

impl Admission for NoAdmission {
    fn admit_create<'a>(&'a self, _: &'static ResourceInfo, _: Option<&'a str>, _: &'a mut Value) -> futures::future::BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async { Ok(()) })
    }
}

/// One resource's REST storage.
pub struct Store {
    pub info: &'static ResourceInfo,
    strategy: Box<dyn Strategy>,
    etcd: Etcd3,
    cache: Arc<Cacher>,
    prefix: String,
    hooks: Option<Arc<dyn StoreHooks>>,
}

/// Which part of the object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    /// The main resource: everything but status (when a status subresource exists).
    Main,
    /// `status`: only status.
    Status,
    /// A subresource owning one field (`finalize` owns spec.finalizers, `approval`
    /// status.conditions, `ephemeralcontainers` spec.ephemeralContainers).
    Field(&'static [&'static str]),
    /// `binding`: the server's own write of spec.nodeName and the PodScheduled condition.
    Binding,
}

impl Sub {
    /// The `subresource` recorded in managedFields.
    fn name(self) -> Option<&'static str> {
        match self {
            Sub::Main => None,
            Sub::Status => Some("status"),
            Sub::Binding => Some("binding"),
            Sub::Field(["spec", "finalizers"]) => Some("finalize"),
            Sub::Field(["status", "conditions"]) => Some("approval"),
            Sub::Field(_) => Some("ephemeralcontainers"),
        }
    }
}

fn get_path<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, p| cur.get(*p))
}

fn set_path(v: &mut Value, path: &[&str], value: Option<Value>) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut cur = v;
    for p in parents {
        if !cur.get(*p).is_some_and(Value::is_object) {
            cur[*p] = json!({});
        }
        cur = &mut cur[*p];
    }
    match (value, cur.as_object_mut()) {
        (Some(val), Some(m)) => {
            m.insert((*last).to_string(), val);
        }
        (None, Some(m)) => {
            m.remove(*last);
        }
        _ => {}
    }
}

pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"].as_object_mut().expect("metadata was just made an object")
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj["metadata"][field].as_str().filter(|s| !s.is_empty())
}

/// Suffix alphabet of generated names (no vowels, no confusable digits).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

pub(crate) fn generate_name(base: &str) -> String {
    let base = if base.len() > 58 { &base[..58] } else { base };
    let mut rng = rand::rng();
    let suffix: String = (0..5).map(|_| NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())] as char).collect();
    format!("{base}{suffix}")
}

impl Store {
    pub fn new(info: &'static ResourceInfo, strategy: Box<dyn Strategy>, etcd: Etcd3, cache: Arc<Cacher>, prefix: String) -> Self {
        Store { info, strategy, etcd, cache, prefix, hooks: None }
    }

    /// Adds allocation hooks (services' ClusterIPs and NodePorts).
    pub fn with_hooks(mut self, hooks: Arc<dyn StoreHooks>) -> Self {
        self.hooks = Some(hooks);
        self
    }

    /// Stored form → the form this endpoint serves.
    pub fn served(&self, obj: Value) -> Value {
        if super::convert::needs_conversion(self.info) { super::convert::from_storage(self.info, obj) } else { obj }
    }

    /// Served form → stored form.
    fn stored(&self, obj: Value) -> Value {
        if super::convert::needs_conversion(self.info) { super::convert::to_storage(self.info, obj) } else { obj }
    }

    /// Records an Update in the managedFields of `new` (stored shape) against `old` (None on
    /// create). Field sets name the fields of the version the client wrote, so they are
    /// computed on the served shape.
    fn record_managed_fields(&self, new: &mut Value, old: Option<&Value>, manager: &str, now: &str, sub: Sub) {
        let ep = managed_fields::Endpoint { info: self.info, subresource: sub.name().unwrap_or(""), has_status: self.has_status() };
        if !self.converts() {
            managed_fields::record_update(&ep, new, old, manager, now);
            return;
        }
        let mut served = self.served(new.clone());
        let old = old.map(|o| self.served(o.clone()));
        managed_fields::record_update(&ep, &mut served, old.as_ref(), manager, now);
        match served["metadata"].get("managedFields") {
            Some(mf) => meta_mut(new).insert("managedFields".into(), mf.clone()),
            None => meta_mut(new).remove("managedFields"),
        };
    }

    /// Writes the fields upstream's Go structs always carry (see
    /// [`ironkube_machinery::schema::fill_go_zero`]); objects stored in another version's
    /// shape are left as they are.
    fn fill_go_zero(&self, obj: &mut Value) {
        if self.converts() {
            return;
        }
        if let Some(ty) = ironkube_machinery::schema::kind_type(self.info.group, self.info.version, self.info.kind) {
            ironkube_machinery::schema::fill_go_zero(obj, ty);
        }
    }

    /// The field manager's view of this endpoint.
    pub fn endpoint(&self, sub: Sub) -> managed_fields::Endpoint<'static> {
        managed_fields::Endpoint { info: self.info, subresource: sub.name().unwrap_or(""), has_status: self.has_status() }
    }

    /// Whether watch events need per-watcher conversion (no shared serialization).
    pub fn converts(&self) -> bool {
        super::convert::needs_conversion(self.info)
    }

    /// Gives back what a deleted object held.
    async fn release_held(&self, obj: &Value) {
        if let Some(h) = &self.hooks {
            h.release(h.held_by(obj)).await;
        }
    }

    pub fn group_resource(&self) -> GroupResource {
        self.info.group_resource()
    }

    pub fn strategy(&self) -> &dyn Strategy {
        self.strategy.as_ref()
    }

    fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace.filter(|_| self.info.namespaced) {
            Some(ns) => format!("{}{ns}/{name}", self.prefix),
            None => format!("{}{name}", self.prefix),
        }
    }

    /// The key prefix for a list: the whole resource, or one namespace of it.
    fn list_prefix(&self, namespace: Option<&str>) -> String {
        match namespace.filter(|_| self.info.namespaced) {
            Some(ns) => format!("{}{ns}/", self.prefix),
            None => self.prefix.clone(),
        }
    }

    fn has_status(&self) -> bool {
        self.info.subresource("status").is_some()
    }

    /// Maps a storage failure on `name` to the API error upstream reports.
    pub fn storage_error(&self, err: StorageError, name: &str) -> ApiError {
        let gr = self.group_resource();
        match err {
            StorageError::NotFound { .. } => ApiError::not_found(&gr, name),
            StorageError::KeyExists { .. } => ApiError::already_exists(&gr, name),
            StorageError::Conflict { message, .. } => ApiError::conflict(&gr, name, &message),
            StorageError::Compacted { requested, compacted } => {
                if compacted > 0 {
                    ApiError::resource_expired(format!("too old resource version: {requested} ({compacted})"))
                } else {
                    ApiError::resource_expired("The resourceVersion for the provided list is too old.")
                }
            }
            StorageError::TooLargeResourceVersion { requested, current } => {
                let mut e = ApiError::timeout(format!("Too large resource version: {requested}, current: {current}"));
                e.details = Some(ironkube_machinery::error::Details {
                    retry_after_seconds: Some(1),
                    causes: vec![ironkube_machinery::error::Cause {
                        reason: "ResourceVersionTooLarge".into(),
                        message: "Too large resource version".into(),
                        field: String::new(),
                    }],
                    ..Default::default()
                });
                e
            }
            StorageError::InvalidContinue(msg) => ApiError::bad_request(msg),
            StorageError::Rejected(api) => api,
            other => ApiError::internal(other),
        }
    }

    fn validate_meta(&self, obj: &Value) -> Vec<FieldError> {
        let name_fn = |n: &str| self.strategy.validate_name(n);
        meta_validation::validate_object_meta(&obj["metadata"], self.info.namespaced, &name_fn, &Path::new("metadata"))
    }

    fn invalid(&self, obj: &Value, errors: &[FieldError]) -> ApiError {
        let name = meta_str(obj, "name").unwrap_or("");
        ApiError::invalid(self.info.group, self.info.kind, name, errors)
    }

    /// Namespace of the object vs the request (upstream's EnsureObjectNamespaceMatchesRequestNamespace).
    fn reconcile_namespace(&self, obj: &mut Value, namespace: Option<&str>) -> Result<(), ApiError> {
        let request_ns = if self.info.namespaced { namespace.unwrap_or("") } else { "" };
        let obj_ns = meta_str(obj, "namespace").unwrap_or("").to_string();
        if obj_ns == request_ns {
            return Ok(());
        }
        if obj_ns.is_empty() || request_ns.is_empty() {
            if request_ns.is_empty() {
                meta_mut(obj).remove("namespace");
            } else {
                meta_mut(obj).insert("namespace".into(), json!(request_ns));
            }
            return Ok(());
        }
        Err(ApiError::bad_request("the namespace of the provided object does not match the namespace sent on the request"))
    }

    /// Status subresource split, generation and system metadata for an update.
    fn prepare_update(&self, new: &mut Value, old: &Value, sub: Sub) {
        match sub {
            Sub::Field(path) => {
                let value = get_path(new, path).cloned();
                let rv = new["metadata"].get("resourceVersion").cloned();
                // namespaces/finalize and certificatesigningrequests/approval keep the
                // request's metadata as upstream's strategies do; pods/ephemeralcontainers
                // keeps the stored pod's.
                let kept: Vec<(&str, Option<Value>)> = if path.first() == Some(&"spec") && path.get(1) == Some(&"ephemeralContainers") {
                    Vec::new()
                } else {
                    self.strategy.status_update_metadata().iter().map(|f| (*f, new["metadata"].get(*f).cloned())).collect()
                };
                *new = old.clone();
                set_path(new, path, value);
                for (field, value) in kept {
                    match value {
                        Some(v) => meta_mut(new).insert(field.into(), v),
                        None => meta_mut(new).remove(field),
                    };
                }
                let meta = meta_mut(new);
                match rv {
                    Some(rv) => meta.insert("resourceVersion".into(), rv),
                    None => meta.remove("resourceVersion"),
                };
            }
            Sub::Binding => {}
            Sub::Status => {
                // Everything but status comes from the stored object.
                let status = new.get("status").cloned();
                let rv = new["metadata"].get("resourceVersion").cloned();
                let managed = new["metadata"].get("managedFields").cloned();
                let fields = if super::strategy::STATUS_RESETS_METADATA.contains(&(self.info.group, self.info.plural)) {
                    &[]
                } else {
                    self.strategy.status_update_metadata()
                };
                let kept: Vec<(&str, Option<Value>)> = fields.iter().map(|f| (*f, new["metadata"].get(*f).cloned())).collect();
                *new = old.clone();
                for (field, value) in kept {
                    match value {
                        Some(v) => meta_mut(new).insert(field.into(), v),
                        None => meta_mut(new).remove(field),
                    };
                }
                match status {
                    Some(s) => new["status"] = s,
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
                let meta = meta_mut(new);
                match rv {
                    Some(rv) => meta.insert("resourceVersion".into(), rv),
                    None => meta.remove("resourceVersion"),
                };
                if let Some(m) = managed {
                    meta.insert("managedFields".into(), m);
                }
                self.strategy.prepare_for_status_update(new, old);
            }
            Sub::Main => {
                if self.has_status() {
                    match old.get("status") {
                        Some(s) => new["status"] = s.clone(),
                        None => {
                            if let Some(m) = new.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    }
                }
                self.strategy.prepare_for_update(new, old);
            }
        }
        let old_meta = &old["metadata"];
        let meta = meta_mut(new);
        for field in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"] {
            match old_meta.get(field) {
                Some(v) => meta.insert(field.into(), v.clone()),
                None => meta.remove(field),
            };
        }
        meta.remove("selfLink");
        if self.strategy.tracks_generation() {
            let old_gen = old_meta["generation"].as_i64().unwrap_or(1);
            meta.insert("generation".into(), json!(old_gen));
            if self.strategy.generation_changed(new, old) {
                meta_mut(new).insert("generation".into(), json!(old_gen + 1));
            }
        } else {
            match old_meta.get("generation") {
                Some(g) => meta.insert("generation".into(), g.clone()),
                None => meta.remove("generation"),
            };
        }
    }

    /// Fills system metadata, generateName and strategy fields of a new object, then validates it.
    fn prepare_create(&self, obj: &mut Value) -> Result<Vec<String>, ApiError> {
        if meta_str(obj, "resourceVersion").is_some() {
            return Err(ApiError::internal("resourceVersion should not be set on objects to be created"));
        }
        let now = now_rfc3339();
        {
            let meta = meta_mut(obj);
            for f in ["deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"] {
                meta.remove(f);
            }
            meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            meta.insert("creationTimestamp".into(), json!(now));
            if self.strategy.tracks_generation() {
                meta.insert("generation".into(), json!(1));
            } else {
                meta.remove("generation");
            }
            let has_name = meta.get("name").and_then(Value::as_str).is_some_and(|s| !s.is_empty());
            if !has_name
                && let Some(base) = meta.get("generateName").and_then(Value::as_str).filter(|s| !s.is_empty())
            {
                let name = generate_name(base);
                meta.insert("name".into(), json!(name));
            }
        }
        self.strategy.prepare_for_create(obj);
        let mut errors = self.validate_meta(obj);
        errors.extend(self.strategy.validate(obj));
        if !errors.is_empty() {
            return Err(self.invalid(obj, &errors));
        }
        Ok(self.strategy.warnings(obj, None))
    }

    /// POST: creates the object.
    #[instrument(skip_all, fields(resource = self.info.plural, namespace = namespace.unwrap_or("")))]
    pub async fn create(
        &self,
        namespace: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
        admission: &dyn Admission,
    ) -> Result<Outcome, ApiError> {
        // Strategies work on the stored shape, as upstream's work on the internal version.
        obj = self.stored(obj);
        self.reconcile_namespace(&mut obj, namespace)?;
        if self.has_status() && !self.strategy.keeps_status_on_create()
            && let Some(m) = obj.as_object_mut()
        {
            m.remove("status");
        }
        self.strategy.default(&mut obj);
        self.fill_go_zero(&mut obj);
        if !opts.applied {
            self.record_managed_fields(&mut obj, None, &opts.manager(), &now_rfc3339(), Sub::Main);
        }
        let ns = meta_str(&obj, "namespace").map(str::to_string);
        admission.admit_create(self.info, ns.as_deref(), &mut obj).await?;
        let warnings = self.prepare_create(&mut obj)?;
        let name = meta_str(&obj, "name").unwrap_or("").to_string();
        let reservation = match &self.hooks {
            Some(h) => Some(h.before_create(&mut obj, opts.dry_run).await?),
            None => None,
        };
        if opts.dry_run {
            return Ok(Outcome { object: self.served(obj), code: 201, warnings });
        }
        let result = self.create_in_storage(obj, ns.as_deref(), &name, warnings).await.map(|mut out| {
            out.object = self.served(out.object);
            out
        });
        if result.is_err()
            && let (Some(h), Some(r)) = (&self.hooks, reservation)
        {
            h.release(r).await;
        }
        result
    }

    async fn create_in_storage(&self, obj: Value, ns: Option<&str>, name: &str, warnings: Vec<String>) -> Result<Outcome, ApiError> {
        let generated = meta_str(&obj, "generateName").is_some() && !name.is_empty();
        let mut attempt = obj;
        for _ in 0..8 {
            let key = self.key(ns, meta_str(&attempt, "name").unwrap_or(""));
            match self.etcd.create(&key, &attempt).await {
                Ok(created) => return Ok(Outcome { object: created, code: 201, warnings }),
                Err(StorageError::KeyExists { .. }) if generated => {
                    let base = meta_str(&attempt, "generateName").unwrap_or("").to_string();
                    meta_mut(&mut attempt).insert("name".into(), json!(generate_name(&base)));
                }
                Err(e) => return Err(self.storage_error(e, meta_str(&attempt, "name").unwrap_or(""))),
            }
        }
        Err(ApiError::already_exists(&self.group_resource(), name))
    }

    /// GET of one object; `resourceVersion=0` reads the watch cache.
    #[instrument(skip_all, fields(resource = self.info.plural, name))]
    pub async fn get(&self, namespace: Option<&str>, name: &str, resource_version: Option<&str>) -> Result<Value, ApiError> {
        let key = self.key(namespace, name);
        let result = match resource_version {
            Some("0") => self.cache.get(&key).await.map(|v| (*v).clone()),
            _ => self.etcd.get(&key).await,
        };
        result.map(|v| self.served(v)).map_err(|e| self.storage_error(e, name))
    }

    /// Builds the storage predicate for label and field selectors.
    pub fn predicate(&self, params: &ListParams) -> Result<Option<Predicate>, ApiError> {
        let labels = params.label_selector.clone().filter(|s| !s.is_empty());
        let fields = params.field_selector.clone().filter(|s| !s.is_empty());
        if let Some(f) = &fields {
            let mut supported = vec!["metadata.name"];
            if self.info.namespaced {
                supported.push("metadata.namespace");
            }
            let extra: Vec<&'static str> = self.strategy.field_labels(&json!({})).into_iter().map(|(k, _)| k).collect();
            supported.extend(extra);
            f.check_supported(&supported).map_err(|e| ApiError::bad_request(e.to_string()))?;
        }
        if labels.is_none() && fields.is_none() {
            return Ok(None);
        }
        let field_labels = FieldLabels { store: self.strategy_fn() };
        Ok(Some(Arc::new(move |obj: &Value| {
            if let Some(l) = &labels
                && !l.matches_json(obj["metadata"].get("labels"))
            {
                return false;
            }
            if let Some(f) = &fields {
                let values = field_labels.values(obj);
                return f.matches_with(|k| values.iter().find(|(name, _)| *name == k).map(|(_, v)| v.clone()));
            }
            true
        })))
    }

    fn strategy_fn(&self) -> Arc<dyn Fn(&Value) -> Vec<(&'static str, String)> + Send + Sync> {
        // Strategies are stateless: build a fresh one to move into the predicate.
        let info = self.info;
        let strategy = super::strategy::for_resource(info);
        Arc::new(move |obj: &Value| strategy.field_labels(obj))
    }

    /// Resolves `resourceVersion`/`resourceVersionMatch`/`continue`/`limit` like upstream.
    fn list_revision(&self, params: &ListParams) -> Result<(ListRevision, Option<ContinueToken>), ApiError> {
        let rv = params.resource_version.as_deref().unwrap_or("");
        let rv_match = params.resource_version_match.as_deref().unwrap_or("");
        if let Some(token) = params.continue_token.as_deref().filter(|t| !t.is_empty()) {
            if !rv.is_empty() && rv != "0" {
                return Err(invalid_options("resourceVersion", "Forbidden: specifying resource version is not allowed when using continue"));
            }
            let token = ContinueToken::decode(token).map_err(|e| self.storage_error(e, ""))?;
            return Ok((ListRevision::Exact(token.revision), Some(token)));
        }
        let parse = |s: &str| -> Result<i64, ApiError> {
            s.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                ApiError::bad_request(format!("invalid resource version: {s}"))
            })
        };
        let revision = match (rv_match, rv) {
            ("", "") => ListRevision::Latest,
            ("", "0") => ListRevision::Any,
            ("", n) => {
                let n = parse(n)?;
                if params.limit > 0 { ListRevision::Exact(n) } else { ListRevision::NotOlderThan(n) }
            }
            (_, "") => {
                return Err(invalid_options("resourceVersionMatch", "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"));
            }
            ("NotOlderThan", "0") => ListRevision::Any,
            ("NotOlderThan", n) => ListRevision::NotOlderThan(parse(n)?),
            ("Exact", "0") => {
                return Err(invalid_options("resourceVersionMatch", "Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""));
            }
            ("Exact", n) => ListRevision::Exact(parse(n)?),
            (other, _) => {
                return Err(invalid_options(
                    "resourceVersionMatch",
                    &format!("Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\", \"\""),
                ));
            }
        };
        Ok((revision, None))
    }

    /// LIST: one page at one revision.
    #[instrument(skip_all, fields(resource = self.info.plural, namespace = namespace.unwrap_or("")))]
    pub async fn list(&self, namespace: Option<&str>, params: &ListParams) -> Result<ListPage, ApiError> {
        let mut page = self.list_stored(namespace, params).await?;
        if self.converts() {
            page.items = page.items.into_iter().map(|v| Arc::new(self.served((*v).clone()))).collect();
        }
        Ok(page)
    }

    async fn list_stored(&self, namespace: Option<&str>, params: &ListParams) -> Result<ListPage, ApiError> {
        let predicate = self.predicate(params)?;
        let (revision, token) = self.list_revision(params)?;
        let prefix = self.list_prefix(namespace);
        let map = |e| self.storage_error(e, "");
        match revision {
            ListRevision::Any => self.cache.list(&prefix, 0, predicate.as_ref()).await.map_err(map),
            ListRevision::NotOlderThan(n) if params.limit == 0 => {
                self.cache.list(&prefix, n, predicate.as_ref()).await.map_err(map)
            }
            ListRevision::NotOlderThan(n) => {
                let current = self.etcd.current_revision().await.map_err(map)?;
                if n > current {
                    return Err(map(StorageError::TooLargeResourceVersion { requested: n, current }));
                }
                let opts = ListOptions { revision: ListRevision::Latest, limit: params.limit, continue_from: None };
                self.etcd.list(&prefix, &opts, predicate.as_ref()).await.map_err(map)
            }
            _ => {
                let opts = ListOptions { revision, limit: params.limit, continue_from: token.clone() };
                match self.etcd.list(&prefix, &opts, predicate.as_ref()).await {
                    Err(StorageError::Compacted { .. }) if token.is_some() => Err(ApiError::resource_expired(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                    )),
                    Err(StorageError::TooLargeResourceVersion { requested, .. }) => {
                        let current = self.etcd.current_revision().await.unwrap_or(0);
                        Err(map(StorageError::TooLargeResourceVersion { requested, current }))
                    }
                    other => other.map_err(map),
                }
            }
        }
    }

    /// WATCH: events after a revision, or the current state then changes.
    #[instrument(skip_all, fields(resource = self.info.plural, namespace = namespace.unwrap_or("")))]
    pub async fn watch(&self, namespace: Option<&str>, params: &ListParams) -> Result<mpsc::Receiver<WatchItem>, ApiError> {
        let predicate = self.predicate(params)?;
        let rv = params.resource_version.as_deref().unwrap_or("");
        let rv_match = params.resource_version_match.as_deref().unwrap_or("");
        let start = match params.send_initial_events {
            Some(send) => {
                if rv_match != "NotOlderThan" {
                    return Err(invalid_options("resourceVersionMatch", "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"));
                }
                if send && !params.allow_watch_bookmarks {
                    return Err(invalid_options("allowWatchBookmarks", "Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true"));
                }
                match (send, rv) {
                    (true, "") => WatchStart::InitialEvents { consistent: true, end_bookmark: true },
                    (true, _) => WatchStart::InitialEvents { consistent: false, end_bookmark: true },
                    (false, "") | (false, "0") => {
                        let current = self.cache.revision().await.map_err(|e| self.storage_error(e, ""))?;
                        WatchStart::After(current)
                    }
                    (false, n) => WatchStart::After(n.parse().map_err(|_| ApiError::bad_request(format!("invalid resource version: {n}")))?),
                }
            }
            None => {
                if !rv_match.is_empty() {
                    return Err(invalid_options("resourceVersionMatch", "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"));
                }
                match rv {
                    "" => WatchStart::InitialEvents { consistent: true, end_bookmark: false },
                    "0" => WatchStart::InitialEvents { consistent: false, end_bookmark: false },
                    n => WatchStart::After(n.parse().ok().filter(|v: &i64| *v >= 0).ok_or_else(|| {
                        ApiError::bad_request(format!("invalid resource version: {n}"))
                    })?),
                }
            }
        };
        let key_prefix = self.list_prefix(namespace);
        let filter = WatchFilter { key_prefix, predicate, bookmarks: params.allow_watch_bookmarks };
        self.cache.watch(start, filter).await.map_err(|e| self.storage_error(e, ""))
    }

    /// PUT (main resource or status).
    #[instrument(skip_all, fields(resource = self.info.plural, name))]
    pub async fn update(
        &self,
        namespace: Option<&str>,
        name: &str,
        mut obj: Value,
        sub: Sub,
        opts: &WriteOptions,
        admission: &dyn Admission,
    ) -> Result<Outcome, ApiError> {
        match meta_str(&obj, "name") {
            Some(n) if n != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            None => {
                meta_mut(&mut obj).insert("name".into(), json!(name));
            }
            _ => {}
        }
        self.reconcile_namespace(&mut obj, namespace)?;
        let key = self.key(namespace, name);
        let current = match self.etcd.get(&key).await {
            Ok(v) => Some(v),
            Err(StorageError::NotFound { .. }) => None,
            Err(e) => return Err(self.storage_error(e, name)),
        };
        let Some(current) = current else {
            if sub == Sub::Main && self.strategy.allow_create_on_update() {
                if let Some(m) = obj["metadata"].as_object_mut() {
                    m.remove("resourceVersion");
                }
                return self.create(namespace, obj, opts, admission).await;
            }
            return Err(ApiError::not_found(&self.group_resource(), name));
        };
        self.update_with_hooks(&key, name, obj, &current, sub, opts, admission).await
    }

    /// An update that may need allocations first (and releases what it no longer holds).
    #[allow(clippy::too_many_arguments)]
    async fn update_with_hooks(
        &self,
        key: &str,
        name: &str,
        mut obj: Value,
        current: &Value,
        sub: Sub,
        opts: &WriteOptions,
        admission: &dyn Admission,
    ) -> Result<Outcome, ApiError> {
        let Some(hooks) = self.hooks.as_ref().filter(|_| sub == Sub::Main) else {
            return self.write_update(key, name, obj, sub, opts, admission, None).await;
        };
        let (reserved, release) = hooks.before_update(&mut obj, current, opts.dry_run).await?;
        match self.write_update(key, name, obj, sub, opts, admission, None).await {
            Ok(out) => {
                if !opts.dry_run {
                    hooks.release(release).await;
                }
                Ok(out)
            }
            Err(e) => {
                hooks.release(reserved).await;
                Err(e)
            }
        }
    }

    /// Shared tail of update and patch: a guarded write of `new` computed against the
    /// stored object. `patch` recomputes the new object from each fresh current state.
    #[allow(clippy::too_many_arguments)]
    async fn write_update(
        &self,
        key: &str,
        name: &str,
        new: Value,
        sub: Sub,
        opts: &WriteOptions,
        admission: &dyn Admission,
        patch: Option<&(dyn Fn(&Value) -> Result<Value, ApiError> + Send + Sync)>,
    ) -> Result<Outcome, ApiError> {
        let mut warnings = Vec::new();
        let manager = opts.manager();
        let mut compute = |current: Option<Value>| -> Result<Value, StorageError> {
            let Some(old) = current else {
                return Err(StorageError::NotFound { key: key.to_string() });
            };
            // Patches apply to the served shape; strategies work on the stored one.
            let candidate = match patch {
                Some(apply) => apply(&self.served(old.clone()))?,
                None => new.clone(),
            };
            let mut candidate = self.stored(candidate);
            match meta_str(&candidate, "resourceVersion") {
                None => {
                    // An unconditional update writes over whatever is stored.
                    meta_mut(&mut candidate).insert("resourceVersion".into(), old["metadata"]["resourceVersion"].clone());
                    if !self.strategy.allow_unconditional_update() {
                        return Err(StorageError::Rejected(ApiError::invalid(
                            self.info.group,
                            self.info.kind,
                            name,
                            &[FieldError::invalid("metadata.resourceVersion", json!("0x0"), "must be specified for an update")],
                        )));
                    }
                }
                Some(rv) if Some(rv) != meta_str(&old, "resourceVersion") => {
                    return Err(StorageError::Rejected(ApiError::stale_conflict(&self.group_resource(), name)));
                }
                Some(_) => {}
            }
            self.strategy.default(&mut candidate);
            self.fill_go_zero(&mut candidate);
            if sub == Sub::Binding {
                // The server's own write: ownership stays as it was.
                match old["metadata"].get("managedFields") {
                    Some(mf) => meta_mut(&mut candidate).insert("managedFields".into(), mf.clone()),
                    None => meta_mut(&mut candidate).remove("managedFields"),
                };
            } else if !opts.applied {
                self.record_managed_fields(&mut candidate, Some(&old), &manager, &now_rfc3339(), sub);
            }
            if sub == Sub::Main {
                admission.admit_update(self.info, &mut candidate, &old).map_err(StorageError::Rejected)?;
            }
            self.prepare_update(&mut candidate, &old, sub);
            let mut errors = meta_validation::validate_object_meta_update(&candidate["metadata"], &old["metadata"], &Path::new("metadata"));
            if errors.is_empty() {
                errors = self.validate_meta(&candidate);
            }
            errors.extend(match sub {
                Sub::Main | Sub::Field(_) => self.strategy.validate_update(&candidate, &old),
                Sub::Status => self.strategy.validate_status_update(&candidate, &old),
                Sub::Binding => Vec::new(),
            });
            if !errors.is_empty() {
                return Err(StorageError::Rejected(self.invalid(&candidate, &errors)));
            }
            warnings = self.strategy.warnings(&candidate, Some(&old));
            if let Some(m) = candidate["metadata"].as_object_mut() {
                m.insert("resourceVersion".into(), old["metadata"]["resourceVersion"].clone());
            }
            Ok(candidate)
        };
        let result = if opts.dry_run {
            match self.etcd.get(key).await {
                Ok(old) => compute(Some(old)),
                Err(e) => Err(e),
            }
        } else {
            self.etcd.guaranteed_update(key, &Preconditions::default(), compute).await
        };
        let object = result.map_err(|e| self.storage_error(e, name))?;
        let object = self.finish_if_finalized(key, object).await?;
        Ok(Outcome { object: self.served(object), code: 200, warnings })
    }

    /// An update that removed the last finalizer of an object being deleted deletes it.
    async fn finish_if_finalized(&self, key: &str, obj: Value) -> Result<Value, ApiError> {
        let meta = &obj["metadata"];
        let deleting = meta.get("deletionTimestamp").is_some_and(|v| !v.is_null());
        // Namespaces also wait for their spec finalizers (the namespace controller's).
        let no_finalizers = meta["finalizers"].as_array().is_none_or(Vec::is_empty)
            && obj["spec"]["finalizers"].as_array().is_none_or(Vec::is_empty);
        let grace_done = meta["deletionGracePeriodSeconds"].as_i64().unwrap_or(0) == 0;
        if deleting && no_finalizers && grace_done
            && let Some(rev) = resource_version_of(&obj)
        {
            let name = meta_str(&obj, "name").unwrap_or("").to_string();
            if let Some(del_rev) = self.etcd.delete_at(key, rev).await.map_err(|e| self.storage_error(e, &name))? {
                self.release_held(&obj).await;
                let mut out = obj;
                crate::storage::set_resource_version(&mut out, del_rev);
                return Ok(out);
            }
        }
        Ok(obj)
    }

    /// PATCH: `apply` turns the current object into the patched one (JSON, merge, strategic).
    #[instrument(skip_all, fields(resource = self.info.plural, name))]
    pub async fn patch(
        &self,
        namespace: Option<&str>,
        name: &str,
        apply: &(dyn Fn(&Value) -> Result<Value, ApiError> + Send + Sync),
        sub: Sub,
        opts: &WriteOptions,
        admission: &dyn Admission,
    ) -> Result<Outcome, ApiError> {
        let key = self.key(namespace, name);
        if self.hooks.is_some() && sub == Sub::Main {
            // Allocations happen outside the guarded write: patch once, then update.
            let current = self.etcd.get(&key).await.map_err(|e| self.storage_error(e, name))?;
            let mut patched = apply(&self.served(current.clone()))?;
            if let Some(m) = patched.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert("resourceVersion".into(), current["metadata"]["resourceVersion"].clone());
            }
            return self.update_with_hooks(&key, name, patched, &current, sub, opts, admission).await;
        }
        let guarded = |old: &Value| -> Result<Value, ApiError> {
            let mut patched = apply(old)?;
            if !patched.is_object() {
                return Err(ApiError::bad_request("the patch did not produce an object"));
            }
            // Patches may not move the object.
            let old_name = meta_str(old, "name").unwrap_or("");
            if meta_str(&patched, "name").is_some_and(|n| n != old_name) {
                return Err(ApiError::invalid(self.info.group, self.info.kind, old_name, &[FieldError::invalid(
                    "metadata.name",
                    json!(meta_str(&patched, "name").unwrap_or("")),
                    "field is immutable",
                )]));
            }
            meta_mut(&mut patched).insert("name".into(), json!(old_name));
            if let Some(ns) = meta_str(old, "namespace") {
                meta_mut(&mut patched).insert("namespace".into(), json!(ns));
            }
            // apiVersion/kind stay those of the endpoint.
            patched["apiVersion"] = json!(self.info.api_version());
            patched["kind"] = json!(self.info.kind);
            Ok(patched)
        };
        self.write_update(&key, name, Value::Null, sub, opts, admission, Some(&guarded)).await
    }

    /// PATCH with `application/apply-patch+yaml`: server-side apply of `config` (served
    /// shape) by `opts.field_manager`; creates the object when it does not exist yet.
    #[instrument(skip_all, fields(resource = self.info.plural, name))]
    pub async fn apply(
        &self,
        namespace: Option<&str>,
        name: &str,
        config: &Value,
        sub: Sub,
        opts: &WriteOptions,
        admission: &dyn Admission,
    ) -> Result<Outcome, ApiError> {
        let manager = opts.field_manager.clone().unwrap_or_default();
        let opts = WriteOptions { applied: true, ..opts.clone() };
        let ep = self.endpoint(sub);
        let key = self.key(namespace, name);
        match self.etcd.get(&key).await {
            Ok(_) => {}
            Err(StorageError::NotFound { .. }) if sub == Sub::Main => {
                let mut obj = managed_fields::apply(&ep, None, config, &manager, opts.force, &now_rfc3339())?;
                let meta = meta_mut(&mut obj);
                meta.entry("name").or_insert_with(|| json!(name));
                if let Some(ns) = namespace {
                    meta.entry("namespace").or_insert_with(|| json!(ns));
                }
                obj["apiVersion"] = json!(self.info.api_version());
                obj["kind"] = json!(self.info.kind);
                return self.create(namespace, obj, &opts, admission).await;
            }
            Err(e) => return Err(self.storage_error(e, name)),
        }
        let merge = |old: &Value| managed_fields::apply(&ep, Some(old), config, &manager, opts.force, &now_rfc3339());
        self.patch(namespace, name, &merge, sub, &opts, admission).await
    }

    /// DELETE of one object, graceful or with finalizers when they apply.
    #[instrument(skip_all, fields(resource = self.info.plural, name))]
    pub async fn delete(&self, namespace: Option<&str>, name: &str, opts: &DeleteOptions, admission: &dyn Admission) -> Result<Outcome, ApiError> {
        admission.admit_delete(self.info, namespace, name)?;
        let key = self.key(namespace, name);
        let gr = self.group_resource();
        let current = self.etcd.get(&key).await.map_err(|e| self.storage_error(e, name))?;
        opts.preconditions.check(&key, &current).map_err(|e| self.storage_error(e, name))?;
        let propagation = match (opts.propagation, opts.orphan_dependents) {
            (Some(p), _) => Some(p),
            (None, Some(true)) => Some(Propagation::Orphan),
            (None, Some(false)) => Some(Propagation::Background),
            (None, None) => None,
        };
        let mut finalizers: Vec<String> = current["metadata"]["finalizers"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        match propagation {
            Some(Propagation::Orphan) => {
                finalizers.retain(|f| f != "foregroundDeletion");
                if !finalizers.iter().any(|f| f == "orphan") {
                    finalizers.push("orphan".into());
                }
            }
            Some(Propagation::Foreground) => {
                finalizers.retain(|f| f != "orphan");
                if !finalizers.iter().any(|f| f == "foregroundDeletion") {
                    finalizers.push("foregroundDeletion".into());
                }
            }
            Some(Propagation::Background) => finalizers.retain(|f| f != "orphan" && f != "foregroundDeletion"),
            None => {}
        }
        let grace = self.strategy.grace_period(&current, opts.grace_period_seconds).filter(|g| *g > 0);
        let already_deleting = current["metadata"].get("deletionTimestamp").is_some_and(|v| !v.is_null());
        if already_deleting
            && self.strategy.holds_deletion(&current)
            && let Some(why) = self.strategy.deletion_in_progress()
        {
            return Err(ApiError::conflict(&gr, name, why));
        }
        let lifecycle_hold = self.strategy.holds_deletion(&current);
        if !finalizers.is_empty() || grace.is_some() || lifecycle_hold {
            if opts.dry_run {
                return Ok(Outcome { object: self.served(current), code: 200, warnings: vec![] });
            }
            let finalizers_json = json!(finalizers);
            let strategy = &self.strategy;
            let updated = self
                .etcd
                .guaranteed_update(&key, &opts.preconditions, |cur| {
                    let Some(mut obj) = cur else {
                        return Err(StorageError::NotFound { key: key.clone() });
                    };
                    let now = jiff::Timestamp::now();
                    let meta = meta_mut(&mut obj);
                    if !finalizers_json.as_array().is_some_and(Vec::is_empty) {
                        meta.insert("finalizers".into(), finalizers_json.clone());
                    } else {
                        meta.remove("finalizers");
                    }
                    let existing_grace = meta.get("deletionGracePeriodSeconds").and_then(Value::as_i64);
                    let g = grace.unwrap_or(0);
                    if !already_deleting || existing_grace.is_some_and(|e| g < e) {
                        let at = now + jiff::SignedDuration::from_secs(g);
                        meta.insert("deletionTimestamp".into(), json!(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()));
                        meta.insert("deletionGracePeriodSeconds".into(), json!(g));
                    }
                    if strategy.tracks_generation() && !already_deleting {
                        let gen_ = meta.get("generation").and_then(Value::as_i64).unwrap_or(1);
                        meta.insert("generation".into(), json!(gen_ + 1));
                    }
                    strategy.prepare_for_delete(&mut obj);
                    Ok(obj)
                })
                .await
                .map_err(|e| self.storage_error(e, name))?;
            let object = self.finish_if_finalized(&key, updated).await?;
            return Ok(Outcome { object: self.served(object), code: 200, warnings: vec![] });
        }
        let deleted = if opts.dry_run {
            current
        } else {
            let deleted = self.etcd.delete(&key, &opts.preconditions).await.map_err(|e| self.storage_error(e, name))?;
            self.release_held(&deleted).await;
            deleted
        };
        if self.strategy.return_deleted_object() {
            return Ok(Outcome { object: self.served(deleted), code: 200, warnings: vec![] });
        }
        let mut details = json!({"name": name, "kind": gr.resource});
        if !gr.group.is_empty() {
            details["group"] = json!(gr.group);
        }
        if let Some(uid) = meta_str(&deleted, "uid") {
            details["uid"] = json!(uid);
        }
        Ok(Outcome {
            object: json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
            code: 200,
            warnings: vec![],
        })
    }

    /// DELETE of a collection: every object the selectors match, one by one.
    pub async fn delete_collection(&self, namespace: Option<&str>, params: &ListParams, opts: &DeleteOptions, admission: &dyn Admission) -> Result<Value, ApiError> {
        let mut list_params = params.clone();
        list_params.limit = 0;
        list_params.continue_token = None;
        let page = self.list(namespace, &list_params).await?;
        let mut items = Vec::new();
        for item in page.items {
            let name = meta_str(&item, "name").unwrap_or("").to_string();
            let ns = meta_str(&item, "namespace").map(str::to_string);
            match self.delete(ns.as_deref(), &name, opts, admission).await {
                Ok(out) => {
                    if out.object["kind"] == "Status" {
                        items.push((*item).clone());
                    } else {
                        items.push(out.object);
                    }
                }
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.list_object(items, &page.revision.to_string(), None, None))
    }

    /// A `<Kind>List` object.
    pub fn list_object(&self, items: Vec<Value>, resource_version: &str, continue_token: Option<String>, remaining: Option<i64>) -> Value {
        let mut meta = Map::new();
        meta.insert("resourceVersion".into(), json!(resource_version));
        if let Some(c) = continue_token {
            meta.insert("continue".into(), json!(c));
        }
        if let Some(r) = remaining {
            meta.insert("remainingItemCount".into(), json!(r));
        }
        json!({
            "kind": format!("{}List", self.info.kind),
            "apiVersion": self.info.api_version(),
            "metadata": Value::Object(meta),
            "items": items,
        })
    }
}

struct FieldLabels {
    store: Arc<dyn Fn(&Value) -> Vec<(&'static str, String)> + Send + Sync>,
}

impl FieldLabels {
    fn values(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let mut v = vec![
            ("metadata.name", meta_str(obj, "name").unwrap_or("").to_string()),
            ("metadata.namespace", meta_str(obj, "namespace").unwrap_or("").to_string()),
        ];
        v.extend((self.store)(obj));
        v
    }
}


