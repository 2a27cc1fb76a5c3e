//! Controller expectations (upstream's `UIDTrackingControllerExpectations`): after a
//! controller creates or deletes pods it waits until its informer has seen every one of
//! those changes before it counts pods again, so a lagging cache never makes it create or
//! delete twice. Expectations that are not met within [`TIMEOUT`] are given up.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::Pod;
use kube::Resource;
use kube::runtime::reflector::ObjectRef;

use crate::informer::Change;
use crate::replicaset::key as object_key;

/// How long unmet expectations hold a controller back.
pub const TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Debug)]
struct Expected {
    adds: i64,
    deletes: HashSet<String>,
    since: Instant,
}

/// Expectations per controller key (`namespace/name`).
#[derive(Debug, Default)]
pub struct Expectations {
    by_key: Mutex<HashMap<String, Expected>>,
}

impl Expectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Expected>> {
        self.by_key.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the controller may count its pods again: nothing is expected, everything
    /// expected was seen, or the expectations expired.
    pub fn satisfied(&self, key: &str) -> bool {
        self.satisfied_at(key, Instant::now())
    }

    fn satisfied_at(&self, key: &str, now: Instant) -> bool {
        match self.lock().get(key) {
            None => true,
            Some(e) => (e.adds <= 0 && e.deletes.is_empty()) || now.duration_since(e.since) > TIMEOUT,
        }
    }

    /// The controller is about to create `count` pods.
    pub fn expect_creations(&self, key: &str, count: usize) {
        let adds = i64::try_from(count).unwrap_or(i64::MAX);
        self.lock().insert(key.to_string(), Expected { adds, deletes: HashSet::new(), since: Instant::now() });
    }

    /// The controller is about to delete these pods (`namespace/name` keys).
    pub fn expect_deletions(&self, key: &str, pods: impl IntoIterator<Item = String>) {
        self.lock().insert(key.to_string(), Expected { adds: 0, deletes: pods.into_iter().collect(), since: Instant::now() });
    }

    /// The controller is about to create `adds` pods and delete these (`namespace/name`
    /// keys) in one sync.
    pub fn expect(&self, key: &str, adds: usize, deletes: impl IntoIterator<Item = String>) {
        let adds = i64::try_from(adds).unwrap_or(i64::MAX);
        self.lock().insert(key.to_string(), Expected { adds, deletes: deletes.into_iter().collect(), since: Instant::now() });
    }

    /// A pod the controller created was seen (or its creation will never be seen).
    pub fn creation_observed(&self, key: &str) {
        if let Some(e) = self.lock().get_mut(key) {
            e.adds -= 1;
        }
    }

    /// A pod the controller deleted was seen going (or its deletion failed).
    pub fn deletion_observed(&self, key: &str, pod: &str) {
        if let Some(e) = self.lock().get_mut(key) {
            e.deletes.remove(pod);
        }
    }

    /// The controller is gone.
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    /// A change of a pod the controller `key` owns, as its expectations count it: a new pod
    /// is a creation seen, a pod being deleted or gone a deletion seen.
    pub fn observe(&self, key: &str, change: &Change<Pod>) {
        let (pod, gone) = match change {
            Change::Added(p) => (p, p.metadata.deletion_timestamp.is_some()),
            Change::Updated { new, .. } => (new, new.metadata.deletion_timestamp.is_some()),
            Change::Deleted(p) => (p, true),
        };
        if gone {
            self.deletion_observed(key, &object_key(&pod.metadata));
        } else if matches!(change, Change::Added(_)) {
            self.creation_observed(key);
        }
    }

    /// What is still expected: (creations, deletions).
    pub fn pending(&self, key: &str) -> (i64, usize) {
        self.lock().get(key).map(|e| (e.adds, e.deletes.len())).unwrap_or((0, 0))
    }
}

/// Reconcile triggers from the changes of a controller's own kind; a deleted controller's
/// expectations are dropped (it has nothing to reconcile).
pub fn owner_triggers<K>(changes: BoxStream<'static, Change<K>>, exp: Arc<Expectations>) -> BoxStream<'static, ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    changes
        .filter_map(move |change| {
            futures::future::ready(match change {
                Change::Deleted(owner) => {
                    exp.forget(&object_key(owner.meta()));
                    None
                }
                other => Some(ObjectRef::from_obj(&**other.object())),
            })
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creations_and_deletions_are_awaited() {
        let exp = Expectations::default();
        assert!(exp.satisfied("ns/rs"));
        exp.expect_creations("ns/rs", 2);
        assert!(!exp.satisfied("ns/rs"));
        exp.creation_observed("ns/rs");
        assert!(!exp.satisfied("ns/rs"));
        exp.creation_observed("ns/rs");
        assert!(exp.satisfied("ns/rs"));

        exp.expect_deletions("ns/rs", ["ns/a".to_string(), "ns/b".to_string()]);
        exp.deletion_observed("ns/rs", "ns/a");
        exp.deletion_observed("ns/rs", "ns/a");
        assert_eq!(exp.pending("ns/rs"), (0, 1));
        exp.deletion_observed("ns/rs", "ns/b");
        assert!(exp.satisfied("ns/rs"));

        exp.expect("ns/sts", 1, ["ns/web-2".to_string()]);
        exp.creation_observed("ns/sts");
        assert_eq!(exp.pending("ns/sts"), (0, 1));
        exp.deletion_observed("ns/sts", "ns/web-2");
        assert!(exp.satisfied("ns/sts"));
    }

    #[test]
    fn expectations_expire() {
        let exp = Expectations::default();
        exp.expect_creations("k", 1);
        let later = Instant::now() + TIMEOUT + Duration::from_secs(1);
        assert!(exp.satisfied_at("k", later));
        exp.forget("k");
        assert_eq!(exp.pending("k"), (0, 0));
    }
}
