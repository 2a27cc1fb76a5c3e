//! Pods nominated to nodes by preemption (`status.nominatedNodeName`), which the filters
//! count as if running when checking pods of lower or equal priority.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use k8s_openapi::api::core::v1::Pod;

use super::SchedulingQueue;
use crate::framework::interface::PodNominator;
use crate::framework::node_info::{PodExt, PodInfo};

#[derive(Default)]
struct Inner {
    by_node: HashMap<String, Vec<Arc<PodInfo>>>,
    node_of: HashMap<String, String>,
}

/// The nominations, shared by the queue and the plugins.
#[derive(Default)]
pub struct Nominator {
    inner: Mutex<Inner>,
    queue: OnceLock<Weak<SchedulingQueue>>,
}

impl Nominator {
    pub fn new() -> Arc<Self> {
        Arc::new(Nominator::default())
    }

    pub(super) fn attach(&self, queue: Weak<SchedulingQueue>) {
        let _ = self.queue.set(queue);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the pod's nomination: `node` if given, else its `status.nominatedNodeName`.
    pub fn add(&self, pod: Arc<PodInfo>, node: Option<&str>) {
        let mut inner = self.lock();
        let uid = pod.uid().to_string();
        remove_locked(&mut inner, &uid);
        let node = node.map(str::to_string).unwrap_or_else(|| pod.pod.nominated_node_name().to_string());
        if node.is_empty() {
            return;
        }
        inner.node_of.insert(uid, node.clone());
        inner.by_node.entry(node).or_default().push(pod);
    }

    pub fn remove(&self, uid: &str) {
        remove_locked(&mut self.lock(), uid);
    }

    /// Follows a pod update: a changed nomination (or none) replaces the old one.
    pub fn update(&self, old: &Pod, new: Arc<PodInfo>) {
        let keep = {
            let inner = self.lock();
            let current = inner.node_of.get(old.uid()).cloned();
            // A nomination the scheduler made but the pod does not show yet is kept.
            match current {
                Some(node) if new.pod.nominated_node_name().is_empty() && old.nominated_node_name().is_empty() => Some(node),
                _ => None,
            }
        };
        match keep {
            Some(node) => self.add(new, Some(&node)),
            None => self.add(new, None),
        }
    }
}

fn remove_locked(inner: &mut Inner, uid: &str) {
    if let Some(node) = inner.node_of.remove(uid) {
        if let Some(list) = inner.by_node.get_mut(&node) {
            list.retain(|p| p.uid() != uid);
            if list.is_empty() {
                inner.by_node.remove(&node);
            }
        }
    }
}

impl PodNominator for Nominator {
    fn nominated_pods_for_node(&self, node: &str) -> Vec<Arc<PodInfo>> {
        self.lock().by_node.get(node).cloned().unwrap_or_default()
    }

    fn activate(&self, pod: &Pod) {
        if let Some(q) = self.queue.get().and_then(Weak::upgrade) {
            q.activate(pod);
        }
    }
}
