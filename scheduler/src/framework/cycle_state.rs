//! Per-cycle scratch space: what PreFilter/PreScore compute for Filter/Score to read, keyed
//! by the plugin that wrote it, plus the node snapshot the cycle works on.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::cache::Snapshot;

/// A value kept in the cycle state; cloned when the state is (for preemption's dry runs
/// and nominated pods), so keep big immutable parts behind `Arc`.
pub trait StateData: Any + Send + Sync {
    fn clone_box(&self) -> Box<dyn StateData>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any + Clone + Send + Sync> StateData for T {
    fn clone_box(&self) -> Box<dyn StateData> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// The state of one scheduling cycle.
pub struct CycleState {
    snapshot: Arc<Snapshot>,
    data: HashMap<&'static str, Box<dyn StateData>>,
    /// Plugins whose PreFilter returned Skip: their Filter does not run.
    pub skip_filter_plugins: HashSet<&'static str>,
    /// Plugins whose PreScore returned Skip: their Score does not run.
    pub skip_score_plugins: HashSet<&'static str>,
}

impl Clone for CycleState {
    fn clone(&self) -> Self {
        CycleState {
            snapshot: self.snapshot.clone(),
            data: self.data.iter().map(|(k, v)| (*k, v.as_ref().clone_box())).collect(),
            skip_filter_plugins: self.skip_filter_plugins.clone(),
            skip_score_plugins: self.skip_score_plugins.clone(),
        }
    }
}

impl CycleState {
    pub fn new(snapshot: Arc<Snapshot>) -> Self {
        CycleState { snapshot, data: HashMap::new(), skip_filter_plugins: HashSet::new(), skip_score_plugins: HashSet::new() }
    }

    /// The nodes and pods this cycle schedules against.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }

    pub fn write<T: StateData>(&mut self, key: &'static str, value: T) {
        self.data.insert(key, Box::new(value));
    }

    pub fn read<T: 'static>(&self, key: &'static str) -> Option<&T> {
        self.data.get(key).and_then(|v| v.as_ref().as_any().downcast_ref::<T>())
    }

    pub fn read_mut<T: 'static>(&mut self, key: &'static str) -> Option<&mut T> {
        self.data.get_mut(key).and_then(|v| v.as_mut().as_any_mut().downcast_mut::<T>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_reads_and_deep_clones() {
        let mut state = CycleState::new(Arc::new(Snapshot::default()));
        state.write("A", vec![1, 2]);
        assert_eq!(state.read::<Vec<i32>>("A"), Some(&vec![1, 2]));
        assert_eq!(state.read::<String>("A"), None);
        let copy = state.clone();
        if let Some(v) = state.read_mut::<Vec<i32>>("A") {
            v.push(3);
        }
        assert_eq!(copy.read::<Vec<i32>>("A"), Some(&vec![1, 2]));
        assert_eq!(state.read::<Vec<i32>>("A").map(Vec::len), Some(3));
    }
}
