//! `events.k8s.io/v1` Events about pods, written in the background like client-go's event
//! broadcaster: the first occurrence is created; a repeat of the same event (same regarding
//! object, reason, action, note) turns it into a series whose count is patched on the first
//! repeat and then every 30 minutes while it keeps happening.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::framework::node_info::PodExt;

/// The longest note upstream accepts.
pub const NOTE_LENGTH_LIMIT: usize = 1024;
const SERIES_REFRESH: Duration = Duration::from_secs(30 * 60);
const SERIES_FORGET: Duration = Duration::from_secs(6 * 60);

/// Upstream's `truncateMessage`.
pub fn truncate_note(note: &str) -> String {
    if note.len() <= NOTE_LENGTH_LIMIT {
        return note.to_string();
    }
    let mut cut = NOTE_LENGTH_LIMIT - 4;
    while !note.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{} ...", &note[..cut])
}

fn reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        ..Default::default()
    }
}

/// One event to write.
#[derive(Debug, Clone)]
pub struct Request {
    pub event: Event,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "ironkube".into())
}

/// Records events for one reporting controller (a scheduler profile).
#[derive(Clone, Debug)]
pub struct Recorder {
    tx: Option<mpsc::UnboundedSender<Request>>,
    controller: String,
    instance: String,
}

impl Recorder {
    /// A recorder that drops everything (tests).
    pub fn disabled() -> Self {
        Recorder { tx: None, controller: String::new(), instance: String::new() }
    }

    /// A recorder writing through `client`, and the task that does the writing.
    pub fn new(client: kube::Client, controller: &str, stop: CancellationToken) -> (Recorder, impl Future<Output = ()> + Send + 'static) {
        let (tx, rx) = mpsc::unbounded_channel();
        let recorder = Recorder { tx: Some(tx), controller: controller.to_string(), instance: format!("{controller}-{}", hostname()) };
        (recorder, sink(client, rx, stop))
    }

    /// The same sink, reporting as another controller.
    pub fn for_controller(&self, controller: &str) -> Recorder {
        Recorder { tx: self.tx.clone(), controller: controller.to_string(), instance: format!("{controller}-{}", hostname()) }
    }

    /// The event object as it would be created.
    pub fn build(&self, regarding: &Pod, related: Option<&Pod>, type_: &str, reason: &str, action: &str, note: &str) -> Event {
        let now = jiff::Timestamp::now();
        let namespace = match regarding.namespace() {
            "" => "default".to_string(),
            ns => ns.to_string(),
        };
        Event {
            metadata: ObjectMeta { name: Some(format!("{}.{:x}", regarding.name(), now.as_nanosecond())), namespace: Some(namespace), ..Default::default() },
            event_time: Some(MicroTime(now)),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            action: Some(action.to_string()),
            reason: Some(reason.to_string()),
            regarding: Some(reference(regarding)),
            related: related.map(reference),
            note: Some(truncate_note(note)),
            type_: Some(type_.to_string()),
            ..Default::default()
        }
    }

    pub fn record(&self, regarding: &Pod, related: Option<&Pod>, type_: &str, reason: &str, action: &str, note: String) {
        let Some(tx) = &self.tx else { return };
        let event = self.build(regarding, related, type_, reason, action, &note);
        let _ = tx.send(Request { event });
    }
}

/// What makes two events the same (client-go's `getKey`).
fn key_of(e: &Event) -> String {
    let r = |o: &Option<ObjectReference>| o.as_ref().map(|o| format!("{:?}/{:?}/{:?}/{:?}/{:?}", o.kind, o.namespace, o.name, o.uid, o.api_version)).unwrap_or_default();
    format!(
        "{}\x00{}\x00{}\x00{}\x00{}\x00{}\x00{}\x00{}",
        e.action.as_deref().unwrap_or(""),
        e.reason.as_deref().unwrap_or(""),
        e.reporting_controller.as_deref().unwrap_or(""),
        e.reporting_instance.as_deref().unwrap_or(""),
        r(&e.regarding),
        r(&e.related),
        e.note.as_deref().unwrap_or(""),
        e.type_.as_deref().unwrap_or("")
    )
}

struct Cached {
    namespace: String,
    name: String,
    count: i32,
    last_observed: Instant,
    last_written: Instant,
    dirty: bool,
}

async fn patch_series(client: &kube::Client, c: &Cached) {
    let api: Api<Event> = Api::namespaced(client.clone(), &c.namespace);
    let series = EventSeries { count: c.count, last_observed_time: MicroTime(jiff::Timestamp::now()) };
    let patch = serde_json::json!({"series": series});
    if let Err(e) = api.patch(&c.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        tracing::debug!(event = %c.name, error = %e, "updating an event series");
    }
}

async fn sink(client: kube::Client, mut rx: mpsc::UnboundedReceiver<Request>, stop: CancellationToken) {
    let mut cache: HashMap<String, Cached> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        let req = tokio::select! {
            _ = stop.cancelled() => return,
            r = rx.recv() => match r { Some(r) => r, None => return },
            _ = tick.tick() => {
                let now = Instant::now();
                for c in cache.values_mut() {
                    if c.dirty && now.duration_since(c.last_written) >= SERIES_REFRESH {
                        patch_series(&client, c).await;
                        c.last_written = now;
                        c.dirty = false;
                    }
                }
                cache.retain(|_, c| now.duration_since(c.last_observed) < SERIES_FORGET);
                continue;
            }
        };
        let key = key_of(&req.event);
        let now = Instant::now();
        if let Some(c) = cache.get_mut(&key) {
            c.count += 1;
            c.last_observed = now;
            if c.count == 2 {
                patch_series(&client, c).await;
                c.last_written = now;
            } else {
                c.dirty = true;
            }
            continue;
        }
        let namespace = req.event.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
        match api.create(&PostParams::default(), &req.event).await {
            Ok(created) => {
                let name = created.metadata.name.unwrap_or_default();
                cache.insert(key, Cached { namespace, name, count: 1, last_observed: now, last_written: now, dirty: false });
            }
            Err(e) => tracing::warn!(reason = ?req.event.reason, error = %e, "writing an event"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pod;

    #[test]
    fn failed_scheduling_event_shape() {
        let r = Recorder { tx: None, controller: "default-scheduler".into(), instance: "default-scheduler-host".into() };
        let e = r.build(&pod("web").build(), None, "Warning", "FailedScheduling", "Scheduling", "0/3 nodes are available: 3 Insufficient cpu.");
        let v = serde_json::to_value(&e).expect("json");
        assert_eq!(v["reportingController"], "default-scheduler");
        assert_eq!(v["reason"], "FailedScheduling");
        assert_eq!(v["action"], "Scheduling");
        assert_eq!(v["type"], "Warning");
        assert_eq!(v["regarding"]["kind"], "Pod");
        assert_eq!(v["regarding"]["name"], "web");
        assert!(v["metadata"]["name"].as_str().is_some_and(|n| n.starts_with("web.")));
        assert_eq!(v["metadata"]["namespace"], "default");
    }

    #[test]
    fn long_notes_are_truncated() {
        let long = "x".repeat(2000);
        let t = truncate_note(&long);
        assert_eq!(t.len(), NOTE_LENGTH_LIMIT);
        assert!(t.ends_with(" ..."));
        assert_eq!(truncate_note("short"), "short");
    }
}
