//! One pod's worker: each sync reads what the runtime has of the pod, decides the actions
//! ([`super::actions`]), carries them out (sandbox, volumes, /etc/hosts, image, container
//! config, create, start; kills with the grace period), reads the runtime again and writes
//! the status. A pod being deleted is stopped (its grace period, then SIGKILL by the
//! runtime), its terminal status written, and then it is deleted for good with a zero grace
//! period, as upstream's kubelet confirms a deletion. A pod that completed (restartPolicy
//! Never/OnFailure) has its sandbox stopped and stays as it ended.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, PodStatus};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::json;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::actions::{self, Actions};
use super::inspect::{self, PodRuntime};
use super::status::{self, Observed};
use super::{Shared, etc_hosts, static_pods};
use crate::cri::{Runtime, api};
use crate::events::{NORMAL, WARNING};
use crate::kuberuntime::{container as kcontainer, linux, sandbox};
use crate::status::containers::{State, WaitingReason};

/// The shortest time a container is given to stop (upstream's minimumGracePeriodInSeconds).
const MIN_GRACE_SECONDS: i64 = 2;
/// A container's default grace period.
const DEFAULT_GRACE_SECONDS: i64 = 30;

/// What a worker remembers between syncs.
#[derive(Debug, Default)]
pub struct WorkerState {
    /// Why containers wait to be (re)started, by name.
    pub reasons: HashMap<String, WaitingReason>,
    /// The status last written.
    pub last_written: Option<PodStatus>,
    /// The pod as the API server returned it after that write: newer than the watch may
    /// have delivered yet.
    pub written_pod: Option<Pod>,
    /// The pod completed and was stopped.
    pub completed: bool,
    /// The deletion was confirmed to the API server.
    pub deletion_confirmed: bool,
    /// When the worker should sync again without being asked (a back-off ending).
    pub next_wake: Option<Instant>,
    /// Why the kubelet ended the pod, when it did (reason, message of the status).
    pub ended: Option<(String, String)>,
}

fn full_name(pod: &Pod) -> String {
    let m = &pod.metadata;
    format!("{}_{}({})", m.name.as_deref().unwrap_or(""), m.namespace.as_deref().unwrap_or(""), m.uid.as_deref().unwrap_or(""))
}

/// The grace period of a pod being stopped: the deletion's, else the spec's.
fn grace_seconds(pod: &Pod) -> i64 {
    pod.metadata
        .deletion_grace_period_seconds
        .or_else(|| pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds))
        .unwrap_or(DEFAULT_GRACE_SECONDS)
}

/// When the pod's activeDeadlineSeconds, counted from its start time, runs out.
fn active_deadline(pod: &Pod, state: &WorkerState) -> Option<jiff::Timestamp> {
    let seconds = pod.spec.as_ref()?.active_deadline_seconds?;
    let fresh = freshest(pod, state);
    let start = fresh.status.as_ref().and_then(|s| s.start_time.as_ref()).map(|t| t.0).unwrap_or_else(jiff::Timestamp::now);
    start.checked_add(jiff::SignedDuration::from_secs(seconds)).ok()
}

fn resource_version(pod: &Pod) -> u64 {
    pod.metadata.resource_version.as_deref().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The pod with the newest status the kubelet knows: the watched one, or the one its own
/// last status write returned when the watch has not caught up (so start time and
/// transition times stay as written).
fn freshest(pod: &Pod, state: &WorkerState) -> Pod {
    let mut fresh = pod.clone();
    if let Some(written) = state.written_pod.as_ref().filter(|w| resource_version(w) > resource_version(pod)) {
        fresh.status = written.status.clone();
    }
    fresh
}

fn grpc(e: &crate::cri::Error) -> String {
    match e {
        crate::cri::Error::Call { status, .. } => status.message().to_string(),
        other => other.to_string(),
    }
}

impl<R: Runtime + 'static> Shared<R> {
    fn pod_dir(&self, uid: &str) -> PathBuf {
        self.config.root_dir.join("pods").join(uid)
    }

    fn node_context(&self) -> sandbox::NodeContext<'_> {
        sandbox::NodeContext {
            cluster_domain: &self.config.cluster_domain,
            pod_logs_dir: &self.config.pod_logs_dir,
            cluster_dns: &self.config.cluster_dns,
            host_resolv: &self.config.host_resolv,
        }
    }

    async fn inspect(&self, uid: &str) -> crate::cri::Result<PodRuntime> {
        inspect::pod_runtime(self.runtime.as_ref(), &self.config.runtime_name, uid).await
    }

    /// Stops one container: a Killing event, then StopContainer with the grace period.
    async fn kill_container(&self, pod: &Pod, name: &str, id: &str, message: Option<String>, grace: i64) {
        let spec_container = pod.spec.iter().flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten())).find(|c| c.name == name);
        let message = message.unwrap_or_else(|| format!("Stopping container {name}"));
        let mut grace = grace;
        if let Some(c) = spec_container {
            self.recorder.event(pod, Some(c), NORMAL, "Killing", message);
            if grace > 0 {
                let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone());
                let took = self.probes.pre_stop(&self.recorder, pod, c, id, ip.as_deref(), Duration::from_secs(grace.unsigned_abs())).await;
                grace -= i64::try_from(took.as_secs()).unwrap_or(grace);
            }
        }
        let grace = grace.max(MIN_GRACE_SECONDS);
        match self.runtime.stop_container(id, grace).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => warn!(pod = %full_name(pod), container = %name, error = %e, "stopping a container failed"),
        }
    }

    /// Stops every running container of the pod (at once, each with the grace period) and
    /// then its sandboxes.
    async fn kill_pod(&self, pod: &Pod, rt: &PodRuntime, grace: i64) {
        let kills = rt.containers.iter().filter(|c| c.running()).map(|c| self.kill_container(pod, &c.status.name, &c.id, None, grace));
        futures::future::join_all(kills).await;
        for s in rt.sandboxes.iter().filter(|s| s.ready) {
            if let Err(e) = self.runtime.stop_pod_sandbox(&s.id).await && !e.is_not_found() {
                warn!(pod = %full_name(pod), sandbox = %s.id, error = %e, "stopping a sandbox failed");
            }
        }
    }

    /// One sync of a pod the API server has.
    pub async fn sync(&self, pod: &Pod, state: &mut WorkerState) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        state.next_wake = None;
        let rt = match self.inspect(&uid).await {
            Ok(rt) => rt,
            Err(e) => {
                warn!(pod = %full_name(pod), error = %e, "reading the pod from the runtime failed");
                state.next_wake = Some(Instant::now() + Duration::from_secs(1));
                return;
            }
        };

        if pod.metadata.deletion_timestamp.is_some() {
            return self.terminate(pod, rt, state).await;
        }
        if state.completed || matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed")) {
            return self.complete(pod, rt, state).await;
        }
        if let Some(deadline) = active_deadline(pod, state) {
            if deadline <= jiff::Timestamp::now() {
                let message = "Pod was active on the node longer than the specified deadline";
                self.recorder.event(pod, None, NORMAL, "DeadlineExceeded", message.into());
                state.ended = Some(("DeadlineExceeded".into(), message.into()));
                return self.complete(pod, rt, state).await;
            }
            let left = Duration::try_from(deadline.duration_since(jiff::Timestamp::now())).unwrap_or_default();
            Self::wake_at(state, Instant::now() + left);
        }

        let kill_requests = self.probes.take_kill_requests(&uid);
        let planned = actions::compute(pod, &rt, &kill_requests);
        debug!(pod = %full_name(pod), actions = ?planned, "sync");
        self.execute(pod, &rt, planned, state).await;

        let rt = self.inspect(&uid).await.unwrap_or(rt);
        let status = self.build_status(pod, &rt, state, false);
        if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
            info!(pod = %full_name(pod), phase = ?status.phase, "pod completed; stopping its sandbox");
            return self.complete(pod, rt, state).await;
        }
        let statuses: Vec<_> = status.init_container_statuses.iter().flatten().chain(status.container_statuses.iter().flatten()).cloned().collect();
        self.probes.sync_pod(pod, &statuses, status.pod_ip.as_deref());
        self.write_status(pod, status, state).await;
    }

    /// A pod that will not run again (it completed): its sandbox stopped, its containers
    /// kept for their logs, its terminal status written.
    async fn complete(&self, pod: &Pod, rt: PodRuntime, state: &mut WorkerState) {
        if rt.sandboxes.iter().any(|s| s.ready) || rt.containers.iter().any(|c| c.running()) {
            self.kill_pod(pod, &rt, grace_seconds(pod)).await;
        }
        state.completed = true;
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let rt = self.inspect(&uid).await.unwrap_or(rt);
        let mut status = self.build_status(pod, &rt, state, true);
        if let Some((reason, message)) = state.ended.clone() {
            status.phase = Some("Failed".into());
            status.reason = Some(reason);
            status.message = Some(message);
        }
        self.write_status(pod, status, state).await;
    }

    fn build_status(&self, pod: &Pod, rt: &PodRuntime, state: &WorkerState, terminal: bool) -> PodStatus {
        let pod = &freshest(pod, state);
        let observed = Observed {
            runtime: rt,
            reasons: &state.reasons,
            host_ip: &self.config.node_ip,
            probes: &self.probes.status_view(),
            terminal,
            now: jiff::Timestamp::now(),
        };
        status::build(pod, &observed)
    }

    /// The mirror pod of a static pod, created when missing or stale (then it is also the
    /// status the kubelet builds on).
    async fn ensure_mirror(&self, pod: &Pod, state: &mut WorkerState) -> Option<Pod> {
        let (name, namespace) = (pod.metadata.name.as_deref()?, pod.metadata.namespace.as_deref()?);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let hash = pod.metadata.uid.clone().unwrap_or_default();
        let current = match api.get_opt(name).await {
            Ok(current) => current,
            Err(e) => {
                warn!(pod = %full_name(pod), error = %e, "reading the mirror pod failed");
                return None;
            }
        };
        let up_to_date = |m: &Pod| {
            m.metadata.deletion_timestamp.is_none()
                && m.metadata.annotations.as_ref().and_then(|a| a.get(static_pods::CONFIG_MIRROR)) == Some(&hash)
        };
        if let Some(m) = current.as_ref() {
            if up_to_date(m) {
                // A mirror the kubelet has not written to yet (first sync, or made anew).
                if state.written_pod.as_ref().map(|w| &w.metadata.uid) != Some(&m.metadata.uid) {
                    state.written_pod = Some(m.clone());
                    state.last_written = None;
                }
                return current;
            }
            delete_now(self.client.clone(), m.clone()).await;
        }
        let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(self.client.clone());
        let node = nodes.get_opt(&self.config.node_name).await.ok().flatten().unwrap_or_default();
        match api.create(&kube::api::PostParams::default(), &static_pods::mirror(pod, &node)).await {
            Ok(created) => {
                info!(pod = %full_name(pod), "mirror pod created");
                state.written_pod = Some(created.clone());
                state.last_written = None;
                Some(created)
            }
            Err(e) => {
                warn!(pod = %full_name(pod), error = %e, "creating the mirror pod failed");
                None
            }
        }
    }

    /// Writes the pod's status when it changed (a merge patch of pods/status, with the UID as
    /// precondition); a static pod's status goes to its mirror pod.
    async fn write_status(&self, pod: &Pod, mut status: PodStatus, state: &mut WorkerState) -> bool {
        let target_uid = if static_pods::is_static(pod) {
            match self.ensure_mirror(pod, state).await {
                Some(mirror) => mirror.metadata.uid,
                None => {
                    state.next_wake = Some(Instant::now() + Duration::from_secs(2));
                    return false;
                }
            }
        } else {
            pod.metadata.uid.clone()
        };
        if static_pods::is_static(pod) && !status.conditions.iter().flatten().any(|c| c.type_ == "PodScheduled") {
            // Nothing schedules a static pod: the kubelet reports it scheduled.
            let scheduled = k8s_openapi::api::core::v1::PodCondition { type_: "PodScheduled".into(), status: "True".into(), last_transition_time: status.start_time.clone(), ..Default::default() };
            status.conditions.get_or_insert_with(Vec::new).push(scheduled);
        }
        if freshest(pod, state).status.as_ref() == Some(&status) || state.last_written.as_ref() == Some(&status) {
            return true;
        }
        let (Some(name), Some(namespace)) = (pod.metadata.name.as_deref(), pod.metadata.namespace.as_deref()) else { return false };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let patch = json!({"metadata": {"uid": target_uid}, "status": status});
        match api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(updated) => {
                state.last_written = Some(status);
                state.written_pod = Some(updated);
                true
            }
            Err(e) => {
                warn!(pod = %full_name(pod), error = %e, "writing the pod status failed");
                state.next_wake = Some(Instant::now() + Duration::from_secs(1));
                false
            }
        }
    }

    /// Stops a pod being deleted, writes its final status and confirms the deletion.
    async fn terminate(&self, pod: &Pod, rt: PodRuntime, state: &mut WorkerState) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if rt.sandboxes.iter().any(|s| s.ready) || rt.containers.iter().any(|c| c.running()) {
            info!(pod = %full_name(pod), grace = grace_seconds(pod), "stopping a pod being deleted");
            self.kill_pod(pod, &rt, grace_seconds(pod)).await;
        }
        self.probes.remove_pod(&uid);
        let rt = self.inspect(&uid).await.unwrap_or(rt);
        let status = self.build_status(pod, &rt, state, true);
        if !self.write_status(pod, status, state).await || state.deletion_confirmed {
            return;
        }
        let (Some(name), Some(namespace)) = (pod.metadata.name.as_deref(), pod.metadata.namespace.as_deref()) else { return };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let params = DeleteParams { grace_period_seconds: Some(0), preconditions: Some(Preconditions { uid: Some(uid), resource_version: None }), ..Default::default() };
        match api.delete(name, &params).await {
            Ok(_) => state.deletion_confirmed = true,
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => state.deletion_confirmed = true,
            Err(e) => {
                warn!(pod = %full_name(pod), error = %e, "confirming the deletion failed");
                state.next_wake = Some(Instant::now() + Duration::from_secs(1));
            }
        }
    }

    /// Removes what is left of a pod the API server no longer has: containers, sandboxes,
    /// volumes, its directories and what the kubelet remembered of it.
    pub async fn clean_up(&self, uid: &str, last: Option<&Pod>) {
        let rt = match self.inspect(uid).await {
            Ok(rt) => rt,
            Err(e) => {
                warn!(uid, error = %e, "reading a removed pod from the runtime failed");
                PodRuntime::default()
            }
        };
        let grace = last.map(grace_seconds).unwrap_or(DEFAULT_GRACE_SECONDS);
        if let Some(pod) = last {
            self.kill_pod(pod, &rt, grace).await;
        } else {
            for c in rt.containers.iter().filter(|c| c.running()) {
                let _ = self.runtime.stop_container(&c.id, grace).await;
            }
        }
        for s in &rt.sandboxes {
            let _ = self.runtime.stop_pod_sandbox(&s.id).await;
            if let Err(e) = self.runtime.remove_pod_sandbox(&s.id).await && !e.is_not_found() {
                warn!(uid, sandbox = %s.id, error = %e, "removing a sandbox failed");
            }
        }
        if let Err(e) = crate::volumes::tear_down(&self.config.root_dir.join("pods"), uid).await {
            warn!(uid, error = %e, "tearing down volumes failed");
        }
        let _ = std::fs::remove_dir_all(self.pod_dir(uid));
        if let Some(pod) = last {
            let _ = std::fs::remove_dir_all(sandbox::pod_logs_directory(&self.config.pod_logs_dir, pod));
        }
        if let Some(pod) = last.filter(|p| static_pods::is_static(p)) {
            // The manifest is gone: so is the mirror pod.
            let (name, namespace) = (pod.metadata.name.clone().unwrap_or_default(), pod.metadata.namespace.clone().unwrap_or_default());
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
            if let Ok(Some(mirror)) = api.get_opt(&name).await {
                delete_now(self.client.clone(), mirror).await;
            }
        }
        self.probes.remove_pod(uid);
        self.puller.forget(uid);
        self.recorder.forget(uid);
        if let Ok(mut b) = self.restarts.lock() {
            b.forget_prefix(&format!("{uid}_"));
        }
    }

    async fn execute(&self, pod: &Pod, rt: &PodRuntime, planned: Actions, state: &mut WorkerState) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if planned.kill_pod {
            if planned.create_sandbox.is_some_and(|a| a > 0) {
                self.recorder.event(pod, None, NORMAL, "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.".into());
            }
            self.kill_pod(pod, rt, grace_seconds(pod)).await;
        }
        if planned.create_sandbox.is_none() && planned.sandbox_id.is_none() {
            return;
        }

        // Volumes first: no sandbox or container starts before they are set up.
        let mut ctx = crate::volumes::PodContext {
            node_name: self.config.node_name.clone(),
            host_ip: self.config.node_ip.clone(),
            pod_ips: rt.ips().to_vec(),
            node_allocatable: self.config.node_allocatable.clone(),
        };
        let volumes = match crate::volumes::set_up(pod, &self.config.root_dir.join("pods"), &ctx, &self.sources).await {
            Ok(v) => v,
            Err(e) => {
                // One event per volume that failed, each saying which.
                for failure in &e.failures {
                    self.recorder.event(pod, None, WARNING, "FailedMount", failure.to_string());
                }
                state.next_wake = Some(Instant::now() + Duration::from_secs(2));
                return;
            }
        };

        let attempt = planned.create_sandbox.unwrap_or_else(|| rt.sandboxes.first().map(|s| s.attempt).unwrap_or(0));
        let sandbox_config = match sandbox::config(pod, attempt, &self.node_context()) {
            Ok(c) => c,
            Err(e) => {
                self.recorder.event(pod, None, WARNING, "FailedCreatePodSandBox", format!("Failed to generate sandbox config for pod {:?}: {e}", full_name(pod)));
                return;
            }
        };
        let sandbox_id = match planned.create_sandbox {
            Some(_) => {
                if let Err(e) = std::fs::create_dir_all(&sandbox_config.log_directory) {
                    warn!(pod = %full_name(pod), error = %e, "creating the pod's log directory failed");
                }
                match self.runtime.run_pod_sandbox(sandbox_config.clone()).await {
                    Ok(id) => {
                        if let Ok(status) = self.runtime.pod_sandbox_status(&id).await && let Some(net) = status.network {
                            ctx.pod_ips = std::iter::once(net.ip).chain(net.additional_ips.into_iter().map(|i| i.ip)).filter(|ip| !ip.is_empty()).collect();
                        }
                        id
                    }
                    Err(e) => {
                        self.recorder.event(pod, None, WARNING, "FailedCreatePodSandBox", format!("Failed to create pod sandbox: {}", grpc(&e)));
                        state.next_wake = Some(Instant::now() + Duration::from_secs(2));
                        return;
                    }
                }
            }
            None => planned.sandbox_id.clone().unwrap_or_default(),
        };

        let (hostname, domain) = sandbox::hostname_and_domain(pod, &self.config.cluster_domain).unwrap_or_default();
        let hosts_mount = match etc_hosts::write(pod, &self.pod_dir(&uid), &ctx.pod_ips, &hostname, &domain) {
            Ok(m) => Some(m),
            Err(e) => {
                warn!(pod = %full_name(pod), error = %e, "writing /etc/hosts failed");
                None
            }
        };

        for kill in &planned.containers_to_kill {
            self.kill_container(pod, &kill.name, &kill.id, Some(kill.message.clone()), grace_seconds(pod)).await;
        }
        let start = Start { sandbox_id: &sandbox_id, sandbox_config: &sandbox_config, ctx: &ctx, volumes: &volumes, hosts_mount: hosts_mount.as_ref(), rt };
        for &i in &planned.init_to_start {
            if let Some(c) = actions::container(pod, true, i) {
                self.start_container(pod, c, &start, state).await;
            }
        }
        for &i in &planned.containers_to_start {
            if let Some(c) = actions::container(pod, false, i) {
                self.start_container(pod, c, &start, state).await;
            }
        }
    }

    /// Records why `container` waits and returns.
    fn wait(&self, state: &mut WorkerState, container: &Container, reason: &str, message: String) {
        state.reasons.insert(container.name.clone(), WaitingReason { reason: reason.into(), message });
    }

    fn wake_at(state: &mut WorkerState, at: Instant) {
        state.next_wake = Some(state.next_wake.map_or(at, |w| w.min(at)));
    }

    /// Starts one container, as upstream's startContainer: restart back-off, image, config,
    /// create, start.
    async fn start_container(&self, pod: &Pod, container: &Container, start: &Start<'_>, state: &mut WorkerState) {
        let m = &pod.metadata;
        let uid = m.uid.clone().unwrap_or_default();
        let newest = start.rt.newest(&container.name);

        // Restart back-off, keyed by pod and container, from the last instance's finish.
        if let Some(n) = newest.filter(|n| n.status.state == State::Exited) {
            let key = format!("{uid}_{}_{}", container.name, kcontainer::hash(container));
            let since_finish = n
                .status
                .finished_at
                .map(|f| jiff::Timestamp::now().duration_since(f))
                .and_then(|d| Duration::try_from(d).ok())
                .unwrap_or_default();
            let now = Instant::now();
            let finished = now.checked_sub(since_finish).unwrap_or(now);
            let Ok(mut restarts) = self.restarts.lock() else { return };
            if restarts.in_backoff_since(&key, finished, now) {
                let period = restarts.get(&key);
                drop(restarts);
                self.wait(
                    state,
                    container,
                    "CrashLoopBackOff",
                    format!("back-off {} restarting failed container={} pod={}", super::backoff::go_string(period), container.name, full_name(pod)),
                );
                self.recorder.event(pod, Some(container), WARNING, "BackOff", format!("Back-off restarting failed container {} in pod {}", container.name, full_name(pod)));
                Self::wake_at(state, finished + period);
                return;
            }
            restarts.next(&key, now);
        }

        let image = match self.puller.ensure(self.runtime.as_ref(), &self.recorder, pod, container, start.sandbox_config).await {
            Ok(image) => image,
            Err(e) => {
                self.wait(state, container, e.reason(), e.to_string());
                self.recorder.event(pod, Some(container), WARNING, "Failed", format!("Error: {}", e.reason()));
                Self::wake_at(state, Instant::now() + Duration::from_secs(5));
                return;
            }
        };
        let env = match crate::env::container_env(pod, container, start.ctx, &self.sources).await {
            Ok(env) => env,
            Err(e) => {
                self.wait(state, container, "CreateContainerConfigError", e.to_string());
                self.recorder.event(pod, Some(container), WARNING, "Failed", format!("Error: {e}"));
                Self::wake_at(state, Instant::now() + Duration::from_secs(5));
                return;
            }
        };
        let mut mounts = match crate::volumes::container_mounts(pod, container, start.volumes, &env) {
            Ok(m) => m,
            Err(e) => {
                self.wait(state, container, "CreateContainerConfigError", e.to_string());
                self.recorder.event(pod, Some(container), WARNING, "Failed", format!("Error: {e}"));
                Self::wake_at(state, Instant::now() + Duration::from_secs(5));
                return;
            }
        };
        if let Some(hosts) = start.hosts_mount && !mounts.iter().any(|m| m.container_path == etc_hosts::ETC_HOSTS) {
            mounts.push(hosts.clone());
        }
        if let Some(mount) = self.termination_log(&uid, container) {
            mounts.push(mount);
        }
        let restart_count = newest.map(|n| n.status.restart_count + 1).unwrap_or(0);
        let restart_count = u32::try_from(restart_count).unwrap_or(0);
        let (command, args) = kcontainer::command_and_args(container, &env);
        let log_path = kcontainer::log_path(container, restart_count);
        if let Err(e) = std::fs::create_dir_all(PathBuf::from(&start.sandbox_config.log_directory).join(&container.name)) {
            warn!(pod = %full_name(pod), error = %e, "creating the container's log directory failed");
        }
        let config = api::ContainerConfig {
            metadata: Some(api::ContainerMetadata { name: container.name.clone(), attempt: restart_count }),
            image: Some(api::ImageSpec { image, user_specified_image: container.image.clone().unwrap_or_default(), ..Default::default() }),
            command,
            args,
            working_dir: container.working_dir.clone().unwrap_or_default(),
            envs: env.into_iter().map(|(key, value)| api::KeyValue { key, value }).collect(),
            mounts,
            labels: kcontainer::labels(container, pod),
            annotations: kcontainer::annotations(container, pod, restart_count),
            log_path,
            stdin: container.stdin.unwrap_or(false),
            stdin_once: container.stdin_once.unwrap_or(false),
            tty: container.tty.unwrap_or(false),
            linux: Some(linux::config(pod, container, self.config.memory_capacity)),
            ..Default::default()
        };
        let id = match self.runtime.create_container(start.sandbox_id, config, start.sandbox_config.clone()).await {
            Ok(id) => id,
            Err(e) => {
                let message = grpc(&e);
                self.wait(state, container, "CreateContainerError", message.clone());
                self.recorder.event(pod, Some(container), WARNING, "Failed", format!("Error: {message}"));
                Self::wake_at(state, Instant::now() + Duration::from_secs(5));
                return;
            }
        };
        self.recorder.event(pod, Some(container), NORMAL, "Created", format!("Created container: {}", container.name));
        if let Err(e) = self.runtime.start_container(&id).await {
            let message = grpc(&e);
            self.wait(state, container, "RunContainerError", message.clone());
            self.recorder.event(pod, Some(container), WARNING, "Failed", format!("Error: {message}"));
            return;
        }
        self.recorder.event(pod, Some(container), NORMAL, "Started", format!("Started container {}", container.name));
        state.reasons.remove(&container.name);
        if let Err(message) = self.probes.post_start(&self.recorder, pod, container, &id, start.ctx.pod_ips.first().map(String::as_str)).await {
            self.kill_container(pod, &container.name, &id, Some("FailedPostStartHook".to_string()), grace_seconds(pod)).await;
            self.wait(state, container, "PostStartHookError", message);
        }
    }

    /// The file a container writes its termination message to, mounted at its
    /// terminationMessagePath (`<pod dir>/containers/<name>/<random>`).
    fn termination_log(&self, uid: &str, container: &Container) -> Option<api::Mount> {
        let path = container.termination_message_path.as_deref().filter(|p| !p.is_empty())?;
        let dir = self.pod_dir(uid).join("containers").join(&container.name);
        std::fs::create_dir_all(&dir).ok()?;
        let file = dir.join(format!("{:08x}", rand_u32()));
        std::fs::write(&file, b"").ok()?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).ok()?;
        Some(api::Mount { container_path: path.into(), host_path: file.display().to_string(), ..Default::default() })
    }
}

/// Deletes `pod` at once (grace 0, its UID as precondition): a mirror pod being deleted or
/// replaced.
pub async fn delete_now(client: kube::Client, pod: Pod) {
    let (Some(name), Some(namespace)) = (pod.metadata.name.as_deref(), pod.metadata.namespace.as_deref()) else { return };
    let api: Api<Pod> = Api::namespaced(client, namespace);
    let params = DeleteParams { grace_period_seconds: Some(0), preconditions: Some(Preconditions { uid: pod.metadata.uid.clone(), resource_version: None }), ..Default::default() };
    match api.delete(name, &params).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
        Err(e) => warn!(pod = %name, error = %e, "deleting a mirror pod failed"),
    }
}

/// A random 32-bit number (the termination log file's name).
fn rand_u32() -> u32 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let mut x = nanos ^ std::process::id().rotate_left(16);
    x ^= x << 13;
    x ^= x >> 17;
    x ^ (x << 5)
}

/// What starting a container in this sync needs.
struct Start<'a> {
    sandbox_id: &'a str,
    sandbox_config: &'a api::PodSandboxConfig,
    ctx: &'a crate::volumes::PodContext,
    volumes: &'a crate::volumes::PodVolumes,
    hosts_mount: Option<&'a api::Mount>,
    rt: &'a PodRuntime,
}

/// Runs one pod's worker until the pod is gone from the API server (then cleans up) or the
/// kubelet stops (then leaves the containers running).
pub async fn run<R: Runtime + 'static>(
    shared: Arc<Shared<R>>,
    uid: String,
    mut updates: tokio::sync::watch::Receiver<Option<Arc<Pod>>>,
    wake: Arc<tokio::sync::Notify>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut state = WorkerState::default();
    let mut last: Option<Arc<Pod>> = None;
    loop {
        let current = updates.borrow_and_update().clone();
        match current {
            Some(pod) => {
                let span = tracing::info_span!("sync_pod", pod = %full_name(&pod));
                tracing::Instrument::instrument(shared.sync(&pod, &mut state), span).await;
                last = Some(pod);
            }
            None => {
                shared.clean_up(&uid, last.as_deref()).await;
                return;
            }
        }
        let resync = Instant::now() + super::RESYNC;
        let deadline = state.next_wake.map_or(resync, |w| w.min(resync));
        tokio::select! {
            changed = updates.changed() => if changed.is_err() { return },
            _ = wake.notified() => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = stop.cancelled() => return,
        }
    }
}
