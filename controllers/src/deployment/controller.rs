//! The Deployment controller: owns ReplicaSets by selector and controllerRef, rolls a
//! changed template out (RollingUpdate within maxSurge/maxUnavailable, or Recreate),
//! scales proportionally, keeps `revisionHistoryLimit` old ReplicaSets, and reports
//! replicas, conditions (Available, Progressing with the progress deadline, paused,
//! ReplicaFailure) and events as upstream's `deployment-controller`.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use ironkube_machinery::selectors::label::Selector;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::{info, instrument};

use super::template_hash;
use super::util::*;
use crate::controller_ref::{self, Claim};
use crate::informer::{self, Change};
use crate::recorder::Recorder;

pub const NAME: &str = "deployment";
const EVENT_SOURCE: &str = "deployment-controller";
const HASH_LABEL: &str = "pod-template-hash";

pub type Error = informer::ReconcileError;

struct Ctx {
    client: kube::Client,
    replica_sets: Store<ReplicaSet>,
    pods: Store<Pod>,
    recorder: Recorder,
}

fn key(meta: &ObjectMeta) -> String {
    format!("{}/{}", meta.namespace.as_deref().unwrap_or(""), meta.name.as_deref().unwrap_or(""))
}

fn name(meta: &ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

fn selector(sel: Option<&LabelSelector>) -> Option<Selector> {
    Selector::from_label_selector(sel).ok()
}

/// The template with the pod-template-hash label removed, as JSON (`EqualIgnoreHash`).
fn template_without_hash(template: Option<&k8s_openapi::api::core::v1::PodTemplateSpec>) -> Value {
    let mut v = serde_json::to_value(template).unwrap_or(Value::Null);
    if let Some(labels) = v.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
        labels.remove(HASH_LABEL);
        if labels.is_empty()
            && let Some(m) = v.pointer_mut("/metadata").and_then(Value::as_object_mut)
        {
            m.remove("labels");
        }
    }
    v
}

fn equal_ignore_hash(rs: &ReplicaSet, d: &Deployment) -> bool {
    template_without_hash(rs.spec.as_ref().and_then(|s| s.template.as_ref()))
        == template_without_hash(d.spec.as_ref().map(|s| &s.template))
}

fn created(rs: &ReplicaSet) -> (Timestamp, String) {
    (rs.metadata.creation_timestamp.as_ref().map_or(Timestamp::MIN, |t| t.0), name(&rs.metadata))
}

/// New and old ReplicaSets: the oldest whose template matches is the new one.
fn split<'a>(d: &Deployment, rss: &'a [ReplicaSet]) -> (Option<&'a ReplicaSet>, Vec<&'a ReplicaSet>) {
    let mut sorted: Vec<&ReplicaSet> = rss.iter().collect();
    sorted.sort_by_key(|rs| created(rs));
    let new = sorted.iter().copied().find(|rs| equal_ignore_hash(rs, d));
    let old = sorted.into_iter().filter(|rs| new.is_none_or(|n| n.metadata.uid != rs.metadata.uid)).collect();
    (new, old)
}

fn active<'a>(rss: &[&'a ReplicaSet]) -> Vec<&'a ReplicaSet> {
    rss.iter().copied().filter(|rs| rs_replicas(rs) > 0).collect()
}

struct Sync<'c> {
    ctx: &'c Ctx,
    d: Deployment,
    rss: Vec<ReplicaSet>,
    now: Timestamp,
}

impl Sync<'_> {
    fn ns(&self) -> String {
        self.d.metadata.namespace.clone().unwrap_or_default()
    }

    fn rs_api(&self) -> Api<ReplicaSet> {
        Api::namespaced(self.ctx.client.clone(), &self.ns())
    }

    fn d_api(&self) -> Api<Deployment> {
        Api::namespaced(self.ctx.client.clone(), &self.ns())
    }

    fn status(&self) -> DeploymentStatus {
        self.d.status.clone().unwrap_or_default()
    }

    /// Adopts matching orphans and releases owned ReplicaSets that stopped matching.
    async fn claim(&mut self, sel: &Selector) -> Result<(), Error> {
        let ns = self.ns();
        let owner = controller_ref::new_controller_ref("apps/v1", "Deployment", &self.d.metadata);
        let uid = owner.uid.clone();
        let candidates: Vec<Arc<ReplicaSet>> =
            self.ctx.replica_sets.state().into_iter().filter(|rs| rs.metadata.namespace.as_deref() == Some(ns.as_str())).collect();
        let mut owned = Vec::new();
        for rs in candidates {
            let labels = rs.metadata.labels.clone().unwrap_or_default();
            let rs_uid = rs.metadata.uid.clone().unwrap_or_default();
            match controller_ref::claim(&self.d.metadata, &rs.metadata, sel.matches(&labels)) {
                Claim::Owned => owned.push((*rs).clone()),
                Claim::Ignore => {}
                Claim::Adopt => {
                    if self.d.metadata.deletion_timestamp.is_some() {
                        continue;
                    }
                    let patch = controller_ref::adopt_patch(&owner, &rs_uid);
                    match self.rs_api().patch(&name(&rs.metadata), &PatchParams::default(), &Patch::Strategic(patch)).await {
                        Ok(adopted) => owned.push(adopted),
                        Err(e) if informer::is_not_found(&e) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Claim::Release => {
                    let patch = controller_ref::release_patch(&uid, &rs_uid);
                    match self.rs_api().patch(&name(&rs.metadata), &PatchParams::default(), &Patch::Strategic(patch)).await {
                        Ok(_) => {}
                        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 422 => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        self.rss = owned;
        Ok(())
    }

    /// Writes status (and the revision annotation, which upstream writes through the
    /// status endpoint too) when it changed.
    async fn write_status(&mut self, status: DeploymentStatus) -> Result<(), Error> {
        if Some(&status) == self.d.status.as_ref() {
            return Ok(());
        }
        let mut d = self.d.clone();
        d.status = Some(status);
        let updated = self.d_api().replace_status(&name(&d.metadata), &PostParams::default(), &d).await?;
        self.d = updated;
        Ok(())
    }

    async fn scale(&mut self, idx: usize, new_scale: i32) -> Result<bool, Error> {
        let surge = max_surge(&self.d);
        let desired = replicas(&self.d);
        let rs = &self.rss[idx];
        let size_changes = rs_replicas(rs) != new_scale;
        if !size_changes && !replicas_annotations_need_update(rs, desired, desired + surge) {
            return Ok(false);
        }
        let old = rs_replicas(rs);
        let mut copy = rs.clone();
        copy.spec.get_or_insert_with(Default::default).replicas = Some(new_scale);
        set_replicas_annotations(&mut copy, desired, desired + surge);
        let updated = self.rs_api().replace(&name(&copy.metadata), &PostParams::default(), &copy).await?;
        if size_changes {
            let op = if new_scale > old { "up" } else { "down" };
            self.ctx.recorder.normal(&self.d, "ScalingReplicaSet", format!("Scaled {op} replica set {} from {old} to {new_scale}", name(&updated.metadata)));
        }
        self.rss[idx] = updated;
        Ok(size_changes)
    }

    fn index_of(&self, rs: &ReplicaSet) -> Option<usize> {
        self.rss.iter().position(|r| r.metadata.uid == rs.metadata.uid)
    }

    fn new_index(&self) -> Option<usize> {
        let (new, _) = split(&self.d, &self.rss);
        new.and_then(|n| self.index_of(n))
    }

    fn old_indices(&self) -> Vec<usize> {
        let (_, old) = split(&self.d, &self.rss);
        old.into_iter().filter_map(|o| self.index_of(o)).collect()
    }

    /// `getNewReplicaSet`: syncs the new ReplicaSet's annotations or creates it.
    async fn new_replica_set(&mut self, create: bool) -> Result<Option<usize>, Error> {
        let old: Vec<ReplicaSet> = self.old_indices().into_iter().map(|i| self.rss[i].clone()).collect();
        let new_revision = max_revision(&old.iter().collect::<Vec<_>>()) + 1;
        if let Some(i) = self.new_index() {
            let mut copy = self.rss[i].clone();
            let annotations_changed = set_new_rs_annotations(&self.d, &mut copy, new_revision, true);
            let min_ready = self.d.spec.as_ref().and_then(|s| s.min_ready_seconds);
            let min_ready_changed = copy.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0) != min_ready.unwrap_or(0);
            if annotations_changed || min_ready_changed {
                copy.spec.get_or_insert_with(Default::default).min_ready_seconds = min_ready;
                self.rss[i] = self.rs_api().replace(&name(&copy.metadata), &PostParams::default(), &copy).await?;
                return Ok(Some(i));
            }
            let rev = copy.metadata.annotations.as_ref().and_then(|a| a.get(REVISION)).cloned().unwrap_or_default();
            let mut status = self.status();
            let mut needs_update = self.set_revision(&rev).await?;
            if progress_deadline(&self.d).is_some() && condition(&status, PROGRESSING).is_none() {
                set_condition(&mut status, new_condition(PROGRESSING, "True", FOUND_NEW_RS, format!("Found new replica set {:?}", name(&copy.metadata)), self.now));
                needs_update = true;
            }
            if needs_update {
                self.write_status(status).await?;
            }
            return Ok(Some(i));
        }
        if !create {
            return Ok(None);
        }
        let spec = self.d.spec.clone().unwrap_or_default();
        let collision = self.status().collision_count;
        let template_json = serde_json::to_value(&spec.template).unwrap_or(Value::Null);
        let hash = template_hash::compute_hash(&template_json, collision);
        let mut template = spec.template.clone();
        template.metadata.get_or_insert_with(Default::default).labels.get_or_insert_with(Default::default).insert(HASH_LABEL.into(), hash.clone());
        let mut sel = spec.selector.clone();
        sel.match_labels.get_or_insert_with(Default::default).insert(HASH_LABEL.into(), hash.clone());
        let mut new_rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(format!("{}-{hash}", name(&self.d.metadata))),
                namespace: Some(self.ns()),
                owner_references: Some(vec![controller_ref::new_controller_ref("apps/v1", "Deployment", &self.d.metadata)]),
                labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec { replicas: Some(0), min_ready_seconds: spec.min_ready_seconds, selector: sel, template: Some(template) }),
            status: None,
        };
        let count = {
            let all: Vec<&ReplicaSet> = old.iter().chain(std::iter::once(&new_rs)).collect();
            new_rs_new_replicas(&self.d, &all, &new_rs)
        };
        new_rs.spec.get_or_insert_with(Default::default).replicas = Some(count);
        set_new_rs_annotations(&self.d, &mut new_rs, new_revision, false);
        let created = match self.rs_api().create(&PostParams::default(), &new_rs).await {
            Ok(rs) => {
                if count > 0 {
                    self.ctx.recorder.normal(&self.d, "ScalingReplicaSet", format!("Scaled up replica set {} from 0 to {count}", name(&rs.metadata)));
                }
                let rev = new_revision.to_string();
                self.set_revision(&rev).await?;
                if progress_deadline(&self.d).is_some() {
                    let mut status = self.status();
                    set_condition(&mut status, new_condition(PROGRESSING, "True", NEW_RS_CREATED, format!("Created new replica set {:?}", name(&rs.metadata)), self.now));
                    self.write_status(status).await?;
                }
                rs
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {
                // The name is taken: ours (a lagging cache) or a hash collision.
                let existing = self.rs_api().get(new_rs.metadata.name.as_deref().unwrap_or("")).await?;
                if controller_ref::is_controlled_by(&existing.metadata, self.d.metadata.uid.as_deref().unwrap_or("")) && equal_ignore_hash(&existing, &self.d) {
                    existing
                } else {
                    let mut status = self.status();
                    status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
                    self.write_status(status).await?;
                    return Err(Error::Other(format!("hash collision for replica set {}", new_rs.metadata.name.unwrap_or_default())));
                }
            }
            Err(e) => return Err(e.into()),
        };
        self.rss.push(created);
        Ok(Some(self.rss.len() - 1))
    }

    /// Sets the Deployment's revision annotation (written with the next status update).
    async fn set_revision(&mut self, revision: &str) -> Result<bool, Error> {
        let a = self.d.metadata.annotations.get_or_insert_with(Default::default);
        if a.get(REVISION).map(String::as_str) == Some(revision) {
            return Ok(false);
        }
        a.insert(REVISION.into(), revision.into());
        let d = self.d.clone();
        self.d = self.d_api().replace_status(&name(&d.metadata), &PostParams::default(), &d).await?;
        Ok(true)
    }

    fn calculate_status(&self) -> DeploymentStatus {
        let all: Vec<&ReplicaSet> = self.rss.iter().collect();
        let new: Vec<&ReplicaSet> = self.new_index().map(|i| &self.rss[i]).into_iter().collect();
        let available = available_total(&all);
        let total = spec_total(&all);
        let nz = |n: i32| (n != 0).then_some(n);
        let mut status = DeploymentStatus {
            observed_generation: self.d.metadata.generation,
            replicas: nz(actual_total(&all)),
            updated_replicas: nz(actual_total(&new)),
            ready_replicas: nz(ready_total(&all)),
            available_replicas: nz(available),
            unavailable_replicas: nz((total - available).max(0)),
            collision_count: self.status().collision_count,
            conditions: self.status().conditions,
            terminating_replicas: None,
        };
        if available >= replicas(&self.d) - max_unavailable(&self.d) {
            set_condition(&mut status, new_condition(AVAILABLE, "True", "MinimumReplicasAvailable", "Deployment has minimum availability.".into(), self.now));
        } else {
            set_condition(&mut status, new_condition(AVAILABLE, "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.".into(), self.now));
        }
        status
    }

    /// `syncRolloutStatus`: status with the Progressing and ReplicaFailure conditions;
    /// returns when to look again for the progress deadline.
    async fn sync_rollout_status(&mut self) -> Result<Option<Duration>, Error> {
        let mut status = self.calculate_status();
        if progress_deadline(&self.d).is_none() {
            remove_condition(&mut status, PROGRESSING);
        }
        let new_name = self.new_index().map(|i| name(&self.rss[i].metadata));
        let current = condition(&status, PROGRESSING).cloned();
        let is_complete = status.replicas == status.updated_replicas && current.as_ref().and_then(|c| c.reason.as_deref()) == Some(NEW_RS_AVAILABLE);
        if progress_deadline(&self.d).is_some() && !is_complete {
            let rs_name = new_name.clone().unwrap_or_default();
            if complete(&self.d, &status) {
                set_condition(&mut status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE, format!("ReplicaSet {rs_name:?} has successfully progressed."), self.now));
            } else if progressing(&self.d, &status) {
                let msg = match &new_name {
                    Some(n) => format!("ReplicaSet {n:?} is progressing."),
                    None => "Deployment is progressing.".to_string(),
                };
                let mut c = new_condition(PROGRESSING, "True", RS_UPDATED, msg, self.now);
                if let Some(cur) = &current
                    && cur.status == "True"
                {
                    c.last_transition_time = cur.last_transition_time.clone();
                }
                remove_condition(&mut status, PROGRESSING);
                set_condition(&mut status, c);
            } else if timed_out(&self.d, &status, self.now) {
                let msg = match &new_name {
                    Some(n) => format!("ReplicaSet {n:?} has timed out progressing."),
                    None => "Deployment has timed out progressing.".to_string(),
                };
                set_condition(&mut status, new_condition(PROGRESSING, "False", TIMED_OUT, msg, self.now));
            }
        }
        match self.replica_failure() {
            Some(c) => set_condition(&mut status, c),
            None => remove_condition(&mut status, REPLICA_FAILURE),
        }
        // Look again when the progress deadline would pass.
        let requeue = match (progress_deadline(&self.d), condition(&status, PROGRESSING)) {
            (Some(secs), Some(c)) if !complete(&self.d, &status) && c.reason.as_deref() != Some(TIMED_OUT) => {
                c.last_update_time.as_ref().map(|t| {
                    let until = t.0.checked_add(jiff::SignedDuration::from_secs(i64::from(secs))).unwrap_or(t.0);
                    Duration::try_from(until.duration_since(self.now)).unwrap_or_default() + Duration::from_secs(1)
                })
            }
            _ => None,
        };
        self.write_status(status).await?;
        Ok(requeue)
    }

    /// A ReplicaFailure condition of a ReplicaSet, carried over (`getReplicaFailures`).
    fn replica_failure(&self) -> Option<k8s_openapi::api::apps::v1::DeploymentCondition> {
        let mut ordered: Vec<&ReplicaSet> = self.new_index().map(|i| &self.rss[i]).into_iter().collect();
        ordered.extend(self.old_indices().into_iter().map(|i| &self.rss[i]));
        for rs in ordered {
            for c in rs.status.as_ref().and_then(|s| s.conditions.as_ref()).into_iter().flatten() {
                if c.type_ == "ReplicaFailure" {
                    return Some(k8s_openapi::api::apps::v1::DeploymentCondition {
                        type_: REPLICA_FAILURE.into(),
                        status: c.status.clone(),
                        reason: c.reason.clone(),
                        message: c.message.clone(),
                        last_update_time: c.last_transition_time.clone(),
                        last_transition_time: c.last_transition_time.clone(),
                    });
                }
            }
        }
        None
    }

    async fn sync_status_only(&mut self) -> Result<Option<Duration>, Error> {
        let status = self.calculate_status();
        self.write_status(status).await?;
        Ok(None)
    }

    async fn check_paused_conditions(&mut self) -> Result<(), Error> {
        if progress_deadline(&self.d).is_none() {
            return Ok(());
        }
        let mut status = self.status();
        let cond = condition(&status, PROGRESSING);
        if cond.is_some_and(|c| c.reason.as_deref() == Some(TIMED_OUT)) {
            return Ok(());
        }
        let paused_exists = cond.is_some_and(|c| c.reason.as_deref() == Some(PAUSED));
        let paused = self.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        if paused && !paused_exists {
            set_condition(&mut status, new_condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused".into(), self.now));
        } else if !paused && paused_exists {
            set_condition(&mut status, new_condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed".into(), self.now));
        } else {
            return Ok(());
        }
        self.write_status(status).await
    }

    /// `isScalingEvent`: an active ReplicaSet was sized for another replica count.
    async fn is_scaling_event(&mut self) -> Result<bool, Error> {
        self.new_replica_set(false).await?;
        let want = replicas(&self.d);
        Ok(active(&self.rss.iter().collect::<Vec<_>>()).iter().any(|rs| desired_annotation(rs).is_some_and(|d| d != want)))
    }

    /// `scale`: proportional scaling of the active ReplicaSets.
    async fn proportional_scale(&mut self) -> Result<(), Error> {
        let want = replicas(&self.d);
        let new_idx = self.new_index();
        let olds = self.old_indices();
        let active_idx: Vec<usize> = new_idx.into_iter().chain(olds.iter().copied()).filter(|&i| rs_replicas(&self.rss[i]) > 0).collect();
        // One active (or the latest) ReplicaSet: it gets the whole count.
        let only = match active_idx.as_slice() {
            [one] => Some(*one),
            [] => new_idx.or_else(|| olds.iter().copied().max_by_key(|&i| created(&self.rss[i]))),
            _ => None,
        };
        if let Some(i) = only {
            if rs_replicas(&self.rss[i]) != want {
                self.scale(i, want).await?;
            }
            return Ok(());
        }
        // Saturated new ReplicaSet: the old ones go to zero.
        if let Some(n) = new_idx {
            let rs = &self.rss[n];
            let avail = rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0);
            if rs_replicas(rs) == want && desired_annotation(rs) == Some(want) && avail == want {
                let to_zero: Vec<usize> = olds.iter().copied().filter(|&i| rs_replicas(&self.rss[i]) > 0).collect();
                for i in to_zero {
                    self.scale(i, 0).await?;
                }
                return Ok(());
            }
        }
        if !is_rolling(&self.d) {
            return Ok(());
        }
        let mut order = active_idx;
        let total: i32 = order.iter().map(|&i| rs_replicas(&self.rss[i])).sum();
        let allowed = if want > 0 { want + max_surge(&self.d) } else { 0 };
        let to_add = allowed - total;
        // Up: biggest and newest first; down: biggest and oldest first.
        order.sort_by(|&a, &b| {
            let (ra, rb) = (&self.rss[a], &self.rss[b]);
            rs_replicas(rb).cmp(&rs_replicas(ra)).then_with(|| if to_add > 0 { created(rb).cmp(&created(ra)) } else { created(ra).cmp(&created(rb)) })
        });
        let mut sizes: Vec<(usize, i32)> = Vec::new();
        let mut added = 0;
        for &i in &order {
            let rs = &self.rss[i];
            let p = if to_add != 0 { proportion(rs, &self.d, to_add, added) } else { 0 };
            added += p;
            sizes.push((i, rs_replicas(rs) + p));
        }
        if to_add != 0
            && let Some(first) = sizes.first_mut()
        {
            first.1 = (first.1 + to_add - added).max(0);
        }
        for (i, size) in sizes {
            self.scale(i, size).await?;
        }
        Ok(())
    }

    /// `cleanupDeployment`: old ReplicaSets beyond revisionHistoryLimit, oldest revision first.
    async fn cleanup(&mut self) -> Result<(), Error> {
        let Some(limit) = self.d.spec.as_ref().and_then(|s| s.revision_history_limit) else { return Ok(()) };
        let mut cleanable: Vec<ReplicaSet> = self.old_indices().into_iter().map(|i| self.rss[i].clone()).filter(|rs| rs.metadata.deletion_timestamp.is_none()).collect();
        let diff = cleanable.len() as i64 - i64::from(limit);
        if diff <= 0 {
            return Ok(());
        }
        cleanable.sort_by(|a, b| revision(a).cmp(&revision(b)).then_with(|| created(a).cmp(&created(b))));
        for rs in cleanable.into_iter().take(diff as usize) {
            let status = rs.status.clone().unwrap_or_default();
            if status.replicas != 0 || rs_replicas(&rs) != 0 || rs.metadata.generation.unwrap_or(0) > status.observed_generation.unwrap_or(0) {
                continue;
            }
            let dp = DeleteParams { preconditions: Some(Preconditions { uid: rs.metadata.uid.clone(), resource_version: None }), ..Default::default() };
            match self.rs_api().delete(&name(&rs.metadata), &dp).await {
                Ok(_) => self.rss.retain(|r| r.metadata.uid != rs.metadata.uid),
                Err(e) if informer::is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// `sync`: scaling only (paused, or a scaling event), then status.
    async fn sync_scaling(&mut self) -> Result<Option<Duration>, Error> {
        self.new_replica_set(false).await?;
        self.proportional_scale().await?;
        if self.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false) {
            self.cleanup().await?;
        }
        let status = self.calculate_status();
        self.write_status(status).await?;
        Ok(None)
    }

    async fn rollout_rolling(&mut self) -> Result<Option<Duration>, Error> {
        let Some(new) = self.new_replica_set(true).await? else { return self.sync_rollout_status().await };
        // Scale up the new ReplicaSet within the surge.
        let want_new = {
            let all: Vec<&ReplicaSet> = self.rss.iter().collect();
            new_rs_new_replicas(&self.d, &all, &self.rss[new])
        };
        if want_new != rs_replicas(&self.rss[new]) && self.scale(new, want_new).await? {
            return self.sync_rollout_status().await;
        }
        if self.reconcile_old(new).await? {
            return self.sync_rollout_status().await;
        }
        let status = self.calculate_status();
        if complete(&self.d, &status) {
            self.cleanup().await?;
        }
        self.sync_rollout_status().await
    }

    /// `reconcileOldReplicaSets`: scale old ReplicaSets down within maxUnavailable.
    async fn reconcile_old(&mut self, new: usize) -> Result<bool, Error> {
        let olds = self.old_indices();
        let old_count: i32 = olds.iter().map(|&i| rs_replicas(&self.rss[i])).sum();
        if old_count == 0 {
            return Ok(false);
        }
        let all_count: i32 = self.rss.iter().map(rs_replicas).sum();
        let min_available = replicas(&self.d) - max_unavailable(&self.d);
        let new_rs = &self.rss[new];
        let new_unavailable = rs_replicas(new_rs) - new_rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0);
        let max_scaled_down = all_count - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return Ok(false);
        }
        let mut by_age: Vec<usize> = olds.clone();
        by_age.sort_by_key(|&i| created(&self.rss[i]));
        // Unhealthy replicas first.
        let mut cleaned = 0;
        for &i in &by_age {
            if cleaned >= max_scaled_down {
                break;
            }
            let rs = &self.rss[i];
            let (spec, avail) = (rs_replicas(rs), rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0));
            if spec == 0 || avail == spec {
                continue;
            }
            let down = (max_scaled_down - cleaned).min(spec - avail);
            self.scale(i, spec - down).await?;
            cleaned += down;
        }
        // Then available ones, while availability allows.
        let all: Vec<&ReplicaSet> = self.rss.iter().collect();
        let available = available_total(&all);
        let mut scaled = 0;
        if available > min_available {
            let total_down = available - min_available;
            for &i in &by_age {
                if scaled >= total_down {
                    break;
                }
                let spec = rs_replicas(&self.rss[i]);
                if spec == 0 {
                    continue;
                }
                let down = spec.min(total_down - scaled);
                self.scale(i, spec - down).await?;
                scaled += down;
            }
        }
        Ok(cleaned + scaled > 0)
    }

    async fn rollout_recreate(&mut self) -> Result<Option<Duration>, Error> {
        let mut new = self.new_replica_set(false).await?;
        let mut scaled_down = false;
        for i in self.old_indices() {
            if rs_replicas(&self.rss[i]) > 0 {
                scaled_down |= self.scale(i, 0).await?;
            }
        }
        if scaled_down {
            return self.sync_rollout_status().await;
        }
        if self.old_pods_running() {
            return self.sync_rollout_status().await;
        }
        if new.is_none() {
            new = self.new_replica_set(true).await?;
        }
        if let Some(n) = new {
            let want = replicas(&self.d);
            self.scale(n, want).await?;
        }
        let status = self.calculate_status();
        if complete(&self.d, &status) {
            self.cleanup().await?;
        }
        self.sync_rollout_status().await
    }

    /// `oldPodsRunning`: pods of old ReplicaSets that have not finished.
    fn old_pods_running(&self) -> bool {
        let olds = self.old_indices();
        if olds.iter().any(|&i| self.rss[i].status.as_ref().is_some_and(|s| s.replicas > 0)) {
            return true;
        }
        let uids: Vec<&str> = olds.iter().filter_map(|&i| self.rss[i].metadata.uid.as_deref()).collect();
        self.ctx.pods.state().iter().any(|p| {
            let owned = controller_ref::controller_of(&p.metadata).is_some_and(|r| uids.contains(&r.uid.as_str()));
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
            owned && !matches!(phase, Some("Failed" | "Succeeded"))
        })
    }
}

#[instrument(skip_all, fields(controller = NAME, key = %key(&d.metadata)))]
async fn reconcile(d: Arc<Deployment>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    ctx.replica_sets.wait_until_ready().await.map_err(|e| Error::Cache(e.to_string()))?;
    ctx.pods.wait_until_ready().await.map_err(|e| Error::Cache(e.to_string()))?;
    let mut s = Sync { ctx: &ctx, d: (*d).clone(), rss: Vec::new(), now: Timestamp::now() };
    let spec_selector = d.spec.as_ref().map(|sp| &sp.selector);
    let Some(sel) = selector(spec_selector) else { return Ok(Action::await_change()) };
    if sel.is_empty() {
        if s.status().observed_generation.unwrap_or(0) < d.metadata.generation.unwrap_or(0) {
            ctx.recorder.warning(&*d, "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.".into());
            let mut status = s.status();
            status.observed_generation = d.metadata.generation;
            s.write_status(status).await?;
        }
        return Ok(Action::await_change());
    }
    s.claim(&sel).await?;
    let requeue = if d.metadata.deletion_timestamp.is_some() {
        s.sync_status_only().await?
    } else {
        s.check_paused_conditions().await?;
        if s.d.spec.as_ref().and_then(|sp| sp.paused).unwrap_or(false) || s.is_scaling_event().await? {
            s.sync_scaling().await?
        } else if is_rolling(&s.d) {
            s.rollout_rolling().await?
        } else {
            s.rollout_recreate().await?
        }
    };
    Ok(match requeue {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

/// The Deployments a ReplicaSet change concerns: its controller, or for an orphan every
/// Deployment whose selector matches it.
fn rs_triggers(change: &Change<ReplicaSet>, deployments: &Store<Deployment>) -> Vec<ObjectRef<Deployment>> {
    let owner_of = |rs: &ReplicaSet| -> Option<ObjectRef<Deployment>> {
        let r = controller_ref::controller_of(&rs.metadata)?;
        (r.kind == "Deployment").then(|| ObjectRef::new(&r.name).within(rs.metadata.namespace.as_deref().unwrap_or("")))
    };
    let matching = |rs: &ReplicaSet| -> Vec<ObjectRef<Deployment>> {
        let labels = rs.metadata.labels.clone().unwrap_or_default();
        deployments
            .state()
            .iter()
            .filter(|d| d.metadata.namespace == rs.metadata.namespace)
            .filter(|d| selector(d.spec.as_ref().map(|s| &s.selector)).is_some_and(|s| !s.is_empty() && s.matches(&labels)))
            .map(|d| ObjectRef::from_obj(&**d))
            .collect()
    };
    match change {
        Change::Added(rs) | Change::Deleted(rs) => owner_of(rs).map_or_else(|| matching(rs), |o| vec![o]),
        Change::Updated { old, new } => {
            let mut out: Vec<ObjectRef<Deployment>> = owner_of(old).into_iter().collect();
            match owner_of(new) {
                Some(o) => out.push(o),
                None => out.extend(matching(new)),
            }
            out
        }
    }
}

/// A deleted pod of a ReplicaSet a Deployment owns wakes that Deployment (Recreate waits
/// for old pods to go).
fn pod_triggers(change: &Change<Pod>, replica_sets: &Store<ReplicaSet>) -> Vec<ObjectRef<Deployment>> {
    let Change::Deleted(pod) = change else { return Vec::new() };
    let Some(r) = controller_ref::controller_of(&pod.metadata).filter(|r| r.kind == "ReplicaSet") else { return Vec::new() };
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let Some(rs) = replica_sets.get(&ObjectRef::new(&r.name).within(ns)) else { return Vec::new() };
    controller_ref::controller_of(&rs.metadata)
        .filter(|o| o.kind == "Deployment")
        .map(|o| ObjectRef::new(&o.name).within(ns))
        .into_iter()
        .collect()
}

pub async fn run(client: kube::Client, stop: CancellationToken) {
    let (deployments, d_changes) = informer::informer(Api::<Deployment>::all(client.clone()), watcher::Config::default(), "deployments");
    let (replica_sets, rs_changes) = informer::informer(Api::<ReplicaSet>::all(client.clone()), watcher::Config::default(), "replicasets");
    let (pods, pod_changes) = informer::informer(Api::<Pod>::all(client.clone()), watcher::Config::default(), "pods");
    let d_triggers = informer::live_changes(d_changes);
    let rs_trig = {
        let store = deployments.clone();
        rs_changes.flat_map(move |change| futures::stream::iter(rs_triggers(&change, &store)))
    };
    let pod_trig = {
        let store = replica_sets.clone();
        pod_changes.flat_map(move |change| futures::stream::iter(pod_triggers(&change, &store)))
    };
    let triggers = futures::stream::select(futures::stream::select(d_triggers, rs_trig), pod_trig).boxed();
    let ctx = Arc::new(Ctx { recorder: Recorder::new(client.clone(), EVENT_SOURCE), client, replica_sets, pods });
    info!("starting the Deployment controller");
    informer::run(NAME, deployments, triggers, ctx, reconcile, informer::Retry::default(), stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DeploymentSpec;
    use k8s_openapi::api::core::v1::PodTemplateSpec;

    #[test]
    fn new_replica_set_ignores_the_hash_label() {
        let mut template = PodTemplateSpec::default();
        template.metadata = Some(ObjectMeta { labels: Some([("app".to_string(), "a".to_string())].into()), ..Default::default() });
        let d = Deployment { spec: Some(DeploymentSpec { template: template.clone(), ..Default::default() }), ..Default::default() };
        let mut hashed = template.clone();
        hashed.metadata.as_mut().and_then(|m| m.labels.as_mut()).map(|l| l.insert(HASH_LABEL.into(), "x".into()));
        let uid = |u: &str| ObjectMeta { uid: Some(u.into()), ..Default::default() };
        let rs = ReplicaSet { metadata: uid("new"), spec: Some(ReplicaSetSpec { template: Some(hashed), ..Default::default() }), ..Default::default() };
        assert!(equal_ignore_hash(&rs, &d));
        let other = ReplicaSet { metadata: uid("old"), spec: Some(ReplicaSetSpec { template: Some(PodTemplateSpec::default()), ..Default::default() }), ..Default::default() };
        let rss = [other, rs];
        let (new, old) = split(&d, &rss);
        assert!(new.is_some() && old.len() == 1);
    }
}
