//! The pod workers' view of the prober ([`crate::probes::Manager`]) and of lifecycle hooks
//! ([`crate::lifecycle`]): readiness and started for the status, liveness and startup
//! failures that call for a restart, probe workers started and stopped as containers come
//! and go, probe results that wake the pod's worker, Unhealthy events, and the postStart
//! and preStop hooks.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::time::Instant;

use super::status::Probes;
use crate::cri::Runtime;
use crate::events::{Recorder, WARNING};
use crate::lifecycle::{self, HookError};
use crate::probes::{Manager, ProbeEvent, Target, manager::Config};

/// Probe results of this node's pods, and hooks.
pub struct Prober<R> {
    manager: Manager<R>,
    runtime: Arc<R>,
}

/// What the prober reports to the pods loop: the pods whose probe results changed, and the
/// events to record.
pub struct ProbeChannels {
    pub changed: UnboundedReceiver<String>,
    pub events: UnboundedReceiver<ProbeEvent>,
}

/// [`Probes`] as the manager answers.
struct Results<'a, R>(&'a Manager<R>);

impl<R: Runtime + 'static> Probes for Results<'_, R> {
    fn ready(&self, uid: &str, c: &Container) -> bool {
        self.0.ready(uid, &c.name)
    }
    fn started(&self, uid: &str, c: &Container) -> bool {
        self.0.started(uid, &c.name).unwrap_or(c.startup_probe.is_none())
    }
}

impl<R: Runtime + 'static> Prober<R> {
    /// A prober for `runtime` (inside a tokio runtime).
    pub fn new(runtime: Arc<R>) -> (Self, ProbeChannels) {
        let (changed_tx, changed) = unbounded_channel();
        let (events_tx, events) = unbounded_channel();
        let config = Config { events: Some(events_tx), ..Default::default() };
        let manager = Manager::with_config(runtime.clone(), changed_tx, config);
        (Prober { manager, runtime }, ProbeChannels { changed, events })
    }

    /// Ready and started, for the pod status.
    pub fn status_view(&self) -> impl Probes + '_ {
        Results(&self.manager)
    }

    /// Containers whose liveness or startup probe failed: (name, Killing message).
    pub fn take_kill_requests(&self, uid: &str) -> Vec<(String, String)> {
        self.manager.take_kill_requests(uid).into_iter().map(|k| (k.container, format!("{}, will be restarted", k.message))).collect()
    }

    /// Starts and stops probe workers for the pod's containers as they are now.
    pub fn sync_pod(&self, pod: &Pod, statuses: &[ContainerStatus], pod_ip: Option<&str>) {
        self.manager.sync_pod(pod, statuses, pod_ip);
    }

    pub fn remove_pod(&self, uid: &str) {
        self.manager.remove_pod(uid);
    }

    /// Runs the container's postStart hook, if it has one. A failure is a
    /// FailedPostStartHook event and the container's waiting message.
    pub async fn post_start(&self, recorder: &Recorder, pod: &Pod, container: &Container, id: &str, pod_ip: Option<&str>) -> Result<(), String> {
        let Some(handler) = container.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) else { return Ok(()) };
        let target = Target { pod_ip: pod_ip.unwrap_or_default().to_string(), container_id: id.to_string() };
        // postStart has no deadline upstream; the runtime's request timeout bounds it here.
        let deadline = Instant::now() + crate::cri::remote::REQUEST_TIMEOUT;
        match lifecycle::run_handler(handler, pod, container, &target, self.runtime.as_ref(), deadline).await {
            Ok(done) => {
                if let Some(message) = done.http_fallback_event {
                    recorder.event(pod, Some(container), WARNING, lifecycle::LIFECYCLE_HTTP_FALLBACK, message);
                }
                Ok(())
            }
            Err(e) => {
                recorder.event(pod, Some(container), WARNING, "FailedPostStartHook", "PostStartHook failed".into());
                Err(e.to_string())
            }
        }
    }

    /// Runs the container's preStop hook within `grace`; returns how long it took.
    pub async fn pre_stop(&self, recorder: &Recorder, pod: &Pod, container: &Container, id: &str, pod_ip: Option<&str>, grace: Duration) -> Duration {
        let Some(handler) = container.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()) else { return Duration::ZERO };
        let started = Instant::now();
        let target = Target { pod_ip: pod_ip.unwrap_or_default().to_string(), container_id: id.to_string() };
        match lifecycle::run_handler(handler, pod, container, &target, self.runtime.as_ref(), started + grace).await {
            Ok(done) => {
                if let Some(message) = done.http_fallback_event {
                    recorder.event(pod, Some(container), WARNING, lifecycle::LIFECYCLE_HTTP_FALLBACK, message);
                }
            }
            Err(HookError::DeadlineExceeded { .. }) => {}
            Err(HookError::Failed { .. }) => recorder.event(pod, Some(container), WARNING, "FailedPreStopHook", "PreStopHook failed".into()),
        }
        started.elapsed()
    }
}
