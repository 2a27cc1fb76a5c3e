//! Informers for controllers that need more than kube-runtime's `Controller` builder gives:
//! a watch kept in a reflector store whose changes arrive *with the object they replace*
//! (client-go's add/update/delete handlers), after the store has applied them, so a
//! reconcile triggered by a change always reads a store that already holds it.
//!
//! [`run`] drives kube-runtime's own `applier` (the deduplicating, back-off scheduling
//! queue behind `Controller`) from any number of such change streams mapped to keys.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{StreamExt, future};
use kube::Resource;
use kube::api::Api;
use kube::runtime::controller::{self, Action};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, applier};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// One change of a watched object, as a client-go event handler sees it.
#[derive(Debug)]
pub enum Change<K> {
    Added(Arc<K>),
    Updated { old: Arc<K>, new: Arc<K> },
    /// The last state seen of an object that is gone.
    Deleted(Arc<K>),
}

impl<K> Change<K> {
    /// The object as it is now (for a deletion, as it was last).
    pub fn object(&self) -> &Arc<K> {
        match self {
            Change::Added(obj) | Change::Deleted(obj) => obj,
            Change::Updated { new, .. } => new,
        }
    }
}

struct Tracker<K: Resource + Clone + 'static>
where
    K::DynamicType: Eq + Hash + Clone,
{
    writer: reflector::store::Writer<K>,
    reader: Store<K>,
    what: &'static str,
}

impl<K> Tracker<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone + Default,
{
    fn apply(&mut self, event: watcher::Result<Event<K>>) -> Vec<Change<K>> {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                warn!(resource = self.what, error = %e, "watch failed; retrying");
                return Vec::new();
            }
        };
        match &event {
            Event::Apply(obj) => {
                let key = ObjectRef::from_obj(obj);
                let old = self.reader.get(&key);
                self.writer.apply_watcher_event(&event);
                let Some(new) = self.reader.get(&key) else { return Vec::new() };
                vec![match old {
                    Some(old) => Change::Updated { old, new },
                    None => Change::Added(new),
                }]
            }
            Event::Delete(obj) => {
                let gone = Arc::new(obj.clone());
                self.writer.apply_watcher_event(&event);
                vec![Change::Deleted(gone)]
            }
            Event::Init | Event::InitApply(_) => {
                self.writer.apply_watcher_event(&event);
                Vec::new()
            }
            Event::InitDone => {
                let before: HashMap<ObjectRef<K>, Arc<K>> =
                    self.reader.state().into_iter().map(|o| (ObjectRef::from_obj(&*o), o)).collect();
                self.writer.apply_watcher_event(&event);
                let mut changes = Vec::new();
                let mut seen = std::collections::HashSet::new();
                for new in self.reader.state() {
                    let key = ObjectRef::from_obj(&*new);
                    match before.get(&key) {
                        Some(old) if old.meta().resource_version == new.meta().resource_version => {}
                        Some(old) => changes.push(Change::Updated { old: old.clone(), new: new.clone() }),
                        None => changes.push(Change::Added(new.clone())),
                    }
                    seen.insert(key);
                }
                for (key, old) in before {
                    if !seen.contains(&key) {
                        changes.push(Change::Deleted(old));
                    }
                }
                debug!(resource = self.what, changes = changes.len(), "relisted");
                changes
            }
        }
    }
}

/// Watches `api` into a store; returns the store and the stream of changes, which must be
/// polled for the store to fill.
pub fn informer<K>(api: Api<K>, config: watcher::Config, what: &'static str) -> (Store<K>, BoxStream<'static, Change<K>>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Default + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let tracker = Tracker { writer, reader: reader.clone(), what };
    let changes = watcher::watcher(api, config)
        .default_backoff()
        .scan(tracker, |tracker, event| future::ready(Some(futures::stream::iter(tracker.apply(event)))))
        .flatten()
        .boxed();
    (reader, changes)
}

/// Waits until `store` has its first list. Safe where [`run`] waits on the same store too:
/// kube-runtime's readiness signal wakes only the last task that polled it, so the wait is
/// polled afresh every 250 ms rather than left to that wake-up.
pub async fn synced<K>(store: &Store<K>) -> Result<(), ReconcileError>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    loop {
        if let Ok(result) = tokio::time::timeout(Duration::from_millis(250), store.wait_until_ready()).await {
            return result.map_err(|e| ReconcileError::Cache(e.to_string()));
        }
    }
}

/// How a controller retries after a failed reconcile.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// After an optimistic-concurrency conflict (the cache was behind).
    pub conflict: Duration,
    /// After any other error.
    pub error: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { conflict: Duration::from_millis(250), error: Duration::from_secs(2) }
    }
}

/// Whether `err` is an HTTP 409 from the API server.
pub fn is_conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(e) if e.code == 409)
}

/// Whether `err` is an HTTP 404 from the API server.
pub fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(e) if e.code == 404)
}

/// What Go clients print for an error: an API error is its Status message alone (as in
/// upstream's `Error creating: ...` events and failure conditions), anything else its
/// description.
pub fn message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(e) => e.message.clone(),
        other => other.to_string(),
    }
}

/// Errors that can say whether they were a write conflict.
pub trait Conflict {
    fn is_conflict(&self) -> bool;
}

/// What a reconcile of the simpler controllers fails with.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("the caches stopped: {0}")]
    Cache(String),
    #[error("{0}")]
    Other(String),
}

impl From<serde_json::Error> for ReconcileError {
    fn from(e: serde_json::Error) -> Self {
        ReconcileError::Other(format!("serializing: {e}"))
    }
}

impl Conflict for ReconcileError {
    fn is_conflict(&self) -> bool {
        matches!(self, ReconcileError::Api(e) if is_conflict(e))
    }
}

/// The objects that were added or changed, as reconcile triggers (deletions dropped).
pub fn live_changes<K>(changes: BoxStream<'static, Change<K>>) -> impl futures::Stream<Item = ObjectRef<K>> + Send + 'static
where
    K: Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Default,
{
    changes.filter_map(|change| {
        future::ready(match change {
            Change::Deleted(_) => None,
            other => Some(ObjectRef::from_obj(&**other.object())),
        })
    })
}

impl Conflict for kube::Error {
    fn is_conflict(&self) -> bool {
        is_conflict(self)
    }
}

/// Runs `reconcile` for the objects of `store` named by `triggers` until `stop`, on
/// kube-runtime's applier (one reconcile per object at a time, requeues from [`Action`]).
pub async fn run<K, Ctx, E, F, Fut>(
    name: &'static str,
    store: Store<K>,
    triggers: BoxStream<'static, ObjectRef<K>>,
    ctx: Arc<Ctx>,
    mut reconcile: F,
    retry: Retry,
    stop: CancellationToken,
) where
    K: Resource + Clone + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Debug + Default + Unpin + Send + Sync,
    Ctx: Send + Sync + 'static,
    E: std::error::Error + Conflict + Send + Sync + 'static,
    F: FnMut(Arc<K>, Arc<Ctx>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
{
    let queue = triggers.map(Ok::<_, Infallible>).take_until(stop.cancelled_owned());
    let error_policy = move |obj: Arc<K>, err: &E, _: Arc<Ctx>| {
        if err.is_conflict() {
            debug!(controller = name, object = %ObjectRef::from_obj(&*obj), error = %err, "conflict; retrying");
            Action::requeue(retry.conflict)
        } else {
            warn!(controller = name, object = %ObjectRef::from_obj(&*obj), error = %err, "reconcile failed; retrying");
            Action::requeue(retry.error)
        }
    };
    applier(move |obj, ctx| Box::pin(reconcile(obj, ctx)), error_policy, ctx, store, queue, controller::Config::default())
        .for_each(|result| async move {
            if let Err(e) = result
                && !matches!(e, controller::Error::ObjectNotFound(_) | controller::Error::ReconcilerFailed(..))
            {
                debug!(controller = name, error = %e, "applier");
            }
        })
        .await;
}
