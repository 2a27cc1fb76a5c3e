//! The watch cache: one etcd watch per resource feeds an in-memory copy of the resource and a
//! window of recent events; every client watch (and `resourceVersion=0` list) is served from it.
//!
//! Events are applied and published under one write lock, and a new watcher subscribes under
//! the read lock, so a watcher sees every event after its starting revision exactly once.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{OnceCell, broadcast, mpsc, watch};
use tracing::{info, warn};

use super::etcd3::{Etcd3, convert_event};
use super::{Event, EventType, ListOptions, ListPage, Predicate, StorageError};

/// Events kept for watchers that resume from a recent resourceVersion.
const HISTORY: usize = 4096;
/// Events buffered per watcher before a slow watcher is closed.
const FANOUT_BUFFER: usize = 1024;
/// How long a request for a revision the cache has not seen yet waits.
const FRESHNESS_WAIT: Duration = Duration::from_secs(3);
/// How often the cache asks etcd for progress (advances its revision while idle).
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

/// What a watcher receives.
#[derive(Debug)]
pub enum WatchItem {
    Event(Arc<Event>),
    /// A BOOKMARK at this revision; `initial_events_end` marks the end of `sendInitialEvents`.
    Bookmark { revision: i64, initial_events_end: bool },
    /// The watch ends with this error (e.g. 410 for a compacted revision).
    Error(StorageError),
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchStart {
    /// Events strictly after this revision.
    After(i64),
    /// Synthetic ADDED events for the current state, then changes. `consistent` waits until
    /// the cache has caught up with etcd's current revision first.
    InitialEvents { consistent: bool, end_bookmark: bool },
}

/// Which objects a watcher wants.
#[derive(Clone, Default)]
pub struct WatchFilter {
    /// Full etcd key prefix (the resource prefix, or a namespace below it).
    pub key_prefix: String,
    pub predicate: Option<Predicate>,
    pub bookmarks: bool,
}

struct State {
    objects: BTreeMap<String, Arc<Value>>,
    revision: i64,
    history: VecDeque<Arc<Event>>,
    /// Every event with a revision above this one is in `history`.
    oldest: i64,
    fanout: broadcast::Sender<Arc<Event>>,
}

/// The watch cache of one resource (one etcd key prefix).
pub struct Cacher {
    etcd: Etcd3,
    prefix: String,
    state: RwLock<Option<State>>,
    revision: watch::Sender<i64>,
    started: OnceCell<()>,
    progress: tokio::sync::Mutex<Option<etcd_client::WatchRequestSender>>,
}

impl Cacher {
    pub fn new(etcd: Etcd3, prefix: String) -> Arc<Self> {
        let (revision, _) = watch::channel(0);
        Arc::new(Cacher {
            etcd,
            prefix,
            state: RwLock::new(None),
            revision,
            started: OnceCell::new(),
            progress: tokio::sync::Mutex::new(None),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Number of etcd watches this cache holds open (always one once started).
    pub fn is_started(&self) -> bool {
        self.started.initialized()
    }

    /// Loads the cache and starts following etcd, once; later calls return at once.
    pub async fn ensure_started(self: &Arc<Self>) -> Result<(), StorageError> {
        self.started
            .get_or_try_init(|| async {
                let revision = self.load().await?;
                let me = Arc::clone(self);
                tokio::spawn(async move { me.run(revision).await });
                Ok::<(), StorageError>(())
            })
            .await?;
        Ok(())
    }

    /// Lists the whole prefix from etcd into a fresh state; returns its revision.
    async fn load(&self) -> Result<i64, StorageError> {
        let page = self.etcd.list(&self.prefix, &ListOptions::default(), None).await?;
        let mut objects = BTreeMap::new();
        for item in page.items {
            if let Some(key) = key_of(&self.prefix, &item) {
                objects.insert(key, item);
            }
        }
        let (fanout, _) = broadcast::channel(FANOUT_BUFFER);
        let state = State { objects, revision: page.revision, history: VecDeque::new(), oldest: page.revision, fanout };
        if let Ok(mut guard) = self.state.write() {
            // Replacing the sender closes every current watcher: they resume from their last
            // resourceVersion and are served from etcd or get 410.
            *guard = Some(state);
        }
        self.revision.send_replace(page.revision);
        Ok(page.revision)
    }

    /// Follows etcd from `revision`, reloading when the watch breaks.
    async fn run(self: Arc<Self>, mut revision: i64) {
        loop {
            match self.follow(revision).await {
                Ok(()) => warn!(prefix = %self.prefix, "etcd watch ended; reloading the watch cache"),
                Err(e) => warn!(prefix = %self.prefix, error = %e, "etcd watch failed; reloading the watch cache"),
            }
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                match self.load().await {
                    Ok(r) => {
                        revision = r;
                        break;
                    }
                    Err(e) => warn!(prefix = %self.prefix, error = %e, "reloading the watch cache"),
                }
            }
        }
    }

    async fn follow(&self, revision: i64) -> Result<(), StorageError> {
        let stream = self.etcd.watch(&self.prefix, revision + 1).await?;
        let (sender, mut responses) = stream.split();
        *self.progress.lock().await = Some(sender);
        info!(prefix = %self.prefix, revision, "watch cache following etcd");
        let mut ticker = tokio::time::interval(PROGRESS_INTERVAL);
        loop {
            tokio::select! {
                msg = responses.message() => {
                    let Some(resp) = msg? else { return Ok(()) };
                    if resp.canceled() {
                        return Err(StorageError::Compacted { requested: revision, compacted: resp.compact_revision() });
                    }
                    let header_rev = resp.header().map(|h| h.revision()).unwrap_or(0);
                    let mut converted = Vec::with_capacity(resp.events().len());
                    for ev in resp.events() {
                        match convert_event(ev) {
                            Some(Ok(e)) => converted.push(Arc::new(e)),
                            Some(Err(e)) => warn!(prefix = %self.prefix, error = %e, "skipping undecodable object"),
                            None => {}
                        }
                    }
                    self.apply(converted, header_rev);
                }
                _ = ticker.tick() => {
                    if let Some(sender) = self.progress.lock().await.as_mut() {
                        let _ = sender.request_progress().await;
                    }
                }
            }
        }
    }

    fn apply(&self, events: Vec<Arc<Event>>, header_revision: i64) {
        let Ok(mut guard) = self.state.write() else { return };
        let Some(state) = guard.as_mut() else { return };
        for ev in events {
            match ev.kind {
                EventType::Deleted => {
                    state.objects.remove(&ev.key);
                }
                _ => {
                    state.objects.insert(ev.key.clone(), Arc::clone(&ev.object));
                }
            }
            state.revision = state.revision.max(ev.revision);
            if state.history.len() == HISTORY
                && let Some(old) = state.history.pop_front()
            {
                state.oldest = old.revision;
            }
            state.history.push_back(Arc::clone(&ev));
            let _ = state.fanout.send(ev);
        }
        // A progress notification (no events) moves the cache to etcd's revision.
        if header_revision > state.revision && state.history.back().is_none_or(|e| e.revision <= header_revision) {
            state.revision = header_revision;
        }
        let rev = state.revision;
        drop(guard);
        self.revision.send_if_modified(|r| {
            let changed = *r != rev;
            *r = rev;
            changed
        });
    }

    /// Waits until the cache has seen `revision`, asking etcd for progress meanwhile.
    async fn wait_for(&self, revision: i64) -> Result<(), StorageError> {
        let mut rx = self.revision.subscribe();
        if *rx.borrow() >= revision {
            return Ok(());
        }
        if let Some(sender) = self.progress.lock().await.as_mut() {
            let _ = sender.request_progress().await;
        }
        let waited = tokio::time::timeout(FRESHNESS_WAIT, rx.wait_for(|r| *r >= revision)).await;
        match waited {
            Ok(Ok(_)) => Ok(()),
            _ => Err(StorageError::TooLargeResourceVersion { requested: revision, current: *self.revision.borrow() }),
        }
    }

    /// The cache's current revision (after starting it).
    pub async fn revision(self: &Arc<Self>) -> Result<i64, StorageError> {
        self.ensure_started().await?;
        Ok(*self.revision.borrow())
    }

    /// A LIST served from memory: at least `min_revision` (0 = whatever the cache has).
    pub async fn list(
        self: &Arc<Self>,
        key_prefix: &str,
        min_revision: i64,
        predicate: Option<&Predicate>,
    ) -> Result<ListPage, StorageError> {
        self.ensure_started().await?;
        if min_revision > 0 {
            self.wait_for(min_revision).await?;
        }
        let guard = self.state.read().map_err(|_| StorageError::InvalidContinue("cache poisoned".into()))?;
        let Some(state) = guard.as_ref() else {
            return Ok(ListPage::default());
        };
        let items = state
            .objects
            .range(key_prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(key_prefix))
            .filter(|(_, v)| predicate.is_none_or(|p| p(v)))
            .map(|(_, v)| Arc::clone(v))
            .collect();
        Ok(ListPage { items, revision: state.revision, continue_token: None, remaining: None })
    }

    /// One object from memory (GET with `resourceVersion=0`).
    pub async fn get(self: &Arc<Self>, key: &str) -> Result<Arc<Value>, StorageError> {
        self.ensure_started().await?;
        let guard = self.state.read().map_err(|_| StorageError::InvalidContinue("cache poisoned".into()))?;
        guard
            .as_ref()
            .and_then(|s| s.objects.get(key).cloned())
            .ok_or_else(|| StorageError::NotFound { key: key.to_string() })
    }

    /// Starts a watch. Revisions older than the cache's window are served by a dedicated etcd
    /// watch (which answers 410 once etcd has compacted them).
    pub async fn watch(
        self: &Arc<Self>,
        start: WatchStart,
        filter: WatchFilter,
    ) -> Result<mpsc::Receiver<WatchItem>, StorageError> {
        self.ensure_started().await?;
        match start {
            WatchStart::After(rv) => {
                let current = *self.revision.borrow();
                if rv > current {
                    self.wait_for(rv).await?;
                }
            }
            WatchStart::InitialEvents { consistent: true, .. } => {
                let current = self.etcd.current_revision().await?;
                // Keys of other resources move etcd's revision too; progress catches up.
                let _ = self.wait_for(current).await;
            }
            WatchStart::InitialEvents { .. } => {}
        }
        let plan = self.plan(start, &filter)?;
        let Plan::Serve { initial, end_bookmark, replay, live, from } = plan else {
            let Plan::FromEtcd(rv) = plan else { unreachable!("plan is one of two") };
            return self.watch_etcd(rv, filter).await;
        };
        let (tx, rx) = mpsc::channel(256);
        let revision_rx = self.revision.subscribe();
        tokio::spawn(serve_watcher(initial, end_bookmark, replay, live, from, filter, revision_rx, tx));
        Ok(rx)
    }

    /// Decides, under the read lock, how a watch is served; no await while locked.
    fn plan(&self, start: WatchStart, filter: &WatchFilter) -> Result<Plan, StorageError> {
        let guard = self.state.read().map_err(|_| StorageError::InvalidContinue("cache poisoned".into()))?;
        let Some(state) = guard.as_ref() else {
            return Err(StorageError::InvalidContinue("watch cache not loaded".into()));
        };
        Ok(match start {
            WatchStart::After(rv) if rv < state.oldest => Plan::FromEtcd(rv),
            WatchStart::After(rv) => Plan::Serve {
                initial: Vec::new(),
                end_bookmark: None,
                replay: state.history.iter().filter(|e| e.revision > rv).cloned().collect(),
                live: state.fanout.subscribe(),
                from: rv,
            },
            WatchStart::InitialEvents { end_bookmark, .. } => {
                let mut initial = Vec::new();
                for (key, obj) in state.objects.range(filter.key_prefix.clone()..) {
                    if !key.starts_with(&filter.key_prefix) {
                        break;
                    }
                    if filter.predicate.as_ref().is_none_or(|p| p(obj)) {
                        let rv = super::resource_version_of(obj).unwrap_or(0);
                        initial.push(Arc::new(Event::new(EventType::Added, key.clone(), Arc::clone(obj), None, rv)));
                    }
                }
                Plan::Serve {
                    initial,
                    end_bookmark: end_bookmark.then_some(state.revision),
                    replay: Vec::new(),
                    live: state.fanout.subscribe(),
                    from: state.revision,
                }
            }
        })
    }

    /// A private etcd watch for a revision older than the cache's window.
    async fn watch_etcd(&self, rv: i64, filter: WatchFilter) -> Result<mpsc::Receiver<WatchItem>, StorageError> {
        let stream = self.etcd.watch(&filter.key_prefix, rv + 1).await?;
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(async move {
            let (_sender, mut responses) = stream.split();
            let mut matcher = Matcher { filter };
            loop {
                let resp = match responses.message().await {
                    Ok(Some(r)) => r,
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(WatchItem::Error(StorageError::Etcd(e))).await;
                        return;
                    }
                };
                if resp.canceled() {
                    let compacted = resp.compact_revision();
                    let _ = tx.send(WatchItem::Error(StorageError::Compacted { requested: rv, compacted })).await;
                    return;
                }
                for ev in resp.events() {
                    let Some(Ok(ev)) = convert_event(ev) else { continue };
                    if let Some(out) = matcher.transform(Arc::new(ev))
                        && tx.send(WatchItem::Event(out)).await.is_err()
                    {
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }
}

/// How one watch is served.
enum Plan {
    /// Older than the cache's window: a private etcd watch after this revision.
    FromEtcd(i64),
    Serve {
        initial: Vec<Arc<Event>>,
        end_bookmark: Option<i64>,
        replay: Vec<Arc<Event>>,
        live: broadcast::Receiver<Arc<Event>>,
        from: i64,
    },
}

/// Applies a watcher's filter, turning selector transitions into ADDED/DELETED like upstream.
struct Matcher {
    filter: WatchFilter,
}

impl Matcher {
    fn matches(&self, obj: &Value) -> bool {
        self.filter.predicate.as_ref().is_none_or(|p| p(obj))
    }

    fn transform(&mut self, ev: Arc<Event>) -> Option<Arc<Event>> {
        if !ev.key.starts_with(&self.filter.key_prefix) {
            return None;
        }
        if self.filter.predicate.is_none() {
            return Some(ev);
        }
        let now = self.matches(&ev.object);
        let before = ev.prev.as_ref().is_some_and(|p| self.matches(p));
        match ev.kind {
            EventType::Added if now => Some(ev),
            EventType::Deleted if before => Some(ev),
            EventType::Modified => match (before, now) {
                (true, true) => Some(ev),
                (false, true) => Some(Arc::new(Event::new(
                    EventType::Added,
                    ev.key.clone(),
                    Arc::clone(&ev.object),
                    ev.prev.clone(),
                    ev.revision,
                ))),
                (true, false) => Some(Arc::new(Event::new(
                    EventType::Deleted,
                    ev.key.clone(),
                    Arc::clone(&ev.object),
                    ev.prev.clone(),
                    ev.revision,
                ))),
                (false, false) => None,
            },
            _ => None,
        }
    }
}

/// How often a watcher that asked for bookmarks gets one.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

#[allow(clippy::too_many_arguments)]
async fn serve_watcher(
    initial: Vec<Arc<Event>>,
    end_bookmark: Option<i64>,
    replay: Vec<Arc<Event>>,
    mut live: broadcast::Receiver<Arc<Event>>,
    mut last: i64,
    filter: WatchFilter,
    revision: watch::Receiver<i64>,
    tx: mpsc::Sender<WatchItem>,
) {
    let bookmarks = filter.bookmarks;
    let mut matcher = Matcher { filter };
    for ev in initial {
        if tx.send(WatchItem::Event(ev)).await.is_err() {
            return;
        }
    }
    if let Some(rev) = end_bookmark
        && tx.send(WatchItem::Bookmark { revision: rev, initial_events_end: true }).await.is_err()
    {
        return;
    }
    for ev in replay {
        last = ev.revision;
        if let Some(out) = matcher.transform(ev)
            && tx.send(WatchItem::Event(out)).await.is_err()
        {
            return;
        }
    }
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_INTERVAL, BOOKMARK_INTERVAL);
    loop {
        tokio::select! {
            received = live.recv() => match received {
                Ok(ev) => {
                    if ev.revision <= last {
                        continue;
                    }
                    last = ev.revision;
                    if let Some(out) = matcher.transform(ev)
                        && tx.send(WatchItem::Event(out)).await.is_err()
                    {
                        return;
                    }
                }
                // Too slow, or the cache reloaded: end the watch; the client resumes.
                Err(_) => return,
            },
            _ = ticker.tick(), if bookmarks => {
                let rev = *revision.borrow();
                if rev > last {
                    last = rev;
                    if tx.send(WatchItem::Bookmark { revision: rev, initial_events_end: false }).await.is_err() {
                        return;
                    }
                }
            }
            _ = tx.closed() => return,
        }
    }
}

/// The etcd key of a decoded object relative to nothing: rebuilt from its metadata.
fn key_of(prefix: &str, obj: &Value) -> Option<String> {
    let meta = obj.get("metadata")?;
    let name = meta.get("name")?.as_str()?;
    Some(match meta.get("namespace").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        Some(ns) => format!("{prefix}{ns}/{name}"),
        None => format!("{prefix}{name}"),
    })
}
