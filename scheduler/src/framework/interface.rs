//! The extension points: one small trait each, plus the base [`Plugin`] trait that names a
//! plugin, says which cluster events may make a pod it rejected schedulable, and exposes
//! the extension points it implements.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod};

use super::cycle_state::CycleState;
use super::listers::Listers;
use super::node_info::{NodeInfo, PodInfo};
use super::runtime::{Framework, NodeToStatus};
use super::status::Status;

/// The highest score a Score plugin may give after normalizing.
pub const MAX_NODE_SCORE: i64 = 100;
pub const MIN_NODE_SCORE: i64 = 0;

/// The kind of object a cluster event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventResource {
    /// Any pod; plugins register this, it matches both kinds below.
    Pod,
    /// A pod bound to a node (events only).
    AssignedPod,
    /// A pod not yet bound (events only).
    UnscheduledPod,
    Node,
    PersistentVolumeClaim,
    PersistentVolume,
    StorageClass,
    WildCard,
}

impl EventResource {
    fn matches(self, incoming: EventResource) -> bool {
        self == EventResource::WildCard
            || self == incoming
            || (self == EventResource::Pod && matches!(incoming, EventResource::AssignedPod | EventResource::UnscheduledPod))
    }

    fn label(self) -> &'static str {
        match self {
            EventResource::Pod => "Pod",
            EventResource::AssignedPod => "AssignedPod",
            EventResource::UnscheduledPod => "UnschedulablePod",
            EventResource::Node => "Node",
            EventResource::PersistentVolumeClaim => "PersistentVolumeClaim",
            EventResource::PersistentVolume => "PersistentVolume",
            EventResource::StorageClass => "storage.k8s.io/StorageClass",
            EventResource::WildCard => "*",
        }
    }
}

/// What happened to the object, as bit flags (upstream's `ActionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ActionType(pub u32);

impl ActionType {
    pub const ADD: ActionType = ActionType(1);
    pub const DELETE: ActionType = ActionType(1 << 1);
    pub const UPDATE_NODE_ALLOCATABLE: ActionType = ActionType(1 << 2);
    pub const UPDATE_NODE_LABEL: ActionType = ActionType(1 << 3);
    pub const UPDATE_NODE_TAINT: ActionType = ActionType(1 << 4);
    pub const UPDATE_NODE_CONDITION: ActionType = ActionType(1 << 5);
    pub const UPDATE_NODE_ANNOTATION: ActionType = ActionType(1 << 6);
    pub const UPDATE_POD_LABEL: ActionType = ActionType(1 << 7);
    pub const UPDATE_POD_SCALE_DOWN: ActionType = ActionType(1 << 8);
    pub const UPDATE_POD_TOLERATION: ActionType = ActionType(1 << 9);
    pub const UPDATE_POD_SCHEDULING_GATES_ELIMINATED: ActionType = ActionType(1 << 10);
    pub const UPDATE_POD_OTHER: ActionType = ActionType(1 << 11);
    pub const ALL: ActionType = ActionType((1 << 12) - 1);
    pub const UPDATE: ActionType = ActionType(Self::ALL.0 & !(Self::ADD.0 | Self::DELETE.0));

    pub const fn or(self, other: ActionType) -> ActionType {
        ActionType(self.0 | other.0)
    }

    pub fn intersects(self, other: ActionType) -> bool {
        self.0 & other.0 != 0
    }

    fn label(self) -> &'static str {
        match self {
            ActionType::ADD => "Add",
            ActionType::DELETE => "Delete",
            ActionType::UPDATE_NODE_ALLOCATABLE => "UpdateNodeAllocatable",
            ActionType::UPDATE_NODE_LABEL => "UpdateNodeLabel",
            ActionType::UPDATE_NODE_TAINT => "UpdateNodeTaint",
            ActionType::UPDATE_NODE_CONDITION => "UpdateNodeCondition",
            ActionType::UPDATE_NODE_ANNOTATION => "UpdateNodeAnnotation",
            ActionType::UPDATE_POD_LABEL => "UpdatePodLabel",
            ActionType::UPDATE_POD_SCALE_DOWN => "UpdatePodScaleDown",
            ActionType::UPDATE_POD_TOLERATION => "UpdatePodToleration",
            ActionType::UPDATE_POD_SCHEDULING_GATES_ELIMINATED => "UpdatePodSchedulingGatesEliminated",
            ActionType::UPDATE_POD_OTHER | ActionType::UPDATE => "Update",
            ActionType::ALL => "All",
            _ => "",
        }
    }
}

impl std::ops::BitOr for ActionType {
    type Output = ActionType;
    fn bitor(self, rhs: ActionType) -> ActionType {
        self.or(rhs)
    }
}

/// A change in the cluster that may make unschedulable pods schedulable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClusterEvent {
    pub resource: EventResource,
    pub action: ActionType,
    pub label: Option<&'static str>,
}

impl ClusterEvent {
    pub const fn new(resource: EventResource, action: ActionType) -> Self {
        ClusterEvent { resource, action, label: None }
    }

    pub const ASSIGNED_POD_ADD: ClusterEvent = ClusterEvent::new(EventResource::AssignedPod, ActionType::ADD);
    pub const ASSIGNED_POD_DELETE: ClusterEvent = ClusterEvent::new(EventResource::AssignedPod, ActionType::DELETE);
    pub const UNSCHEDULABLE_TIMEOUT: ClusterEvent = ClusterEvent { resource: EventResource::WildCard, action: ActionType::ALL, label: Some("UnschedulableTimeout") };
    pub const FORCE_ACTIVATE: ClusterEvent = ClusterEvent { resource: EventResource::WildCard, action: ActionType::ALL, label: Some("ForceActivate") };

    pub fn is_wildcard(&self) -> bool {
        self.resource == EventResource::WildCard && self.action == ActionType::ALL
    }

    /// Whether this registered event covers `incoming`.
    pub fn matches(&self, incoming: &ClusterEvent) -> bool {
        self.is_wildcard() || (self.resource.matches(incoming.resource) && self.action.intersects(incoming.action))
    }
}

impl fmt::Display for ClusterEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.label {
            Some(l) => f.write_str(l),
            None => write!(f, "{}{}", self.resource.label(), self.action.label()),
        }
    }
}

/// The object of a cluster event, for queueing hints.
#[derive(Debug, Clone)]
pub enum EventObject {
    Pod(Arc<Pod>),
    Node(Arc<Node>),
    PersistentVolumeClaim(Arc<PersistentVolumeClaim>),
}

impl EventObject {
    pub fn pod(&self) -> Option<&Pod> {
        match self {
            EventObject::Pod(p) => Some(p),
            _ => None,
        }
    }
    pub fn node(&self) -> Option<&Node> {
        match self {
            EventObject::Node(n) => Some(n),
            _ => None,
        }
    }
    pub fn pvc(&self) -> Option<&PersistentVolumeClaim> {
        match self {
            EventObject::PersistentVolumeClaim(p) => Some(p),
            _ => None,
        }
    }
}

/// A plugin's verdict on whether an event may make a pod it rejected schedulable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueingHint {
    QueueSkip,
    Queue,
}

/// Nodes a PreFilter plugin restricts the pod to; `None` means all nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreFilterResult {
    pub node_names: Option<BTreeSet<String>>,
}

impl PreFilterResult {
    pub fn all_nodes() -> Self {
        PreFilterResult { node_names: None }
    }

    pub fn nodes(names: impl IntoIterator<Item = String>) -> Self {
        PreFilterResult { node_names: Some(names.into_iter().collect()) }
    }

    pub fn is_all_nodes(&self) -> bool {
        self.node_names.is_none()
    }

    /// The intersection (upstream's `Merge`).
    pub fn merge(self, other: PreFilterResult) -> PreFilterResult {
        match (self.node_names, other.node_names) {
            (None, o) => PreFilterResult { node_names: o },
            (s, None) => PreFilterResult { node_names: s },
            (Some(a), Some(b)) => PreFilterResult { node_names: Some(a.intersection(&b).cloned().collect()) },
        }
    }
}

/// What to do with the pod's `status.nominatedNodeName`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NominatingInfo {
    /// Leave it as it is.
    #[default]
    Noop,
    /// Set it (the empty string clears it).
    Override(String),
}

/// The result of a PostFilter plugin (preemption): where the pod is nominated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PostFilterResult {
    pub nominating_info: NominatingInfo,
}

/// A node's score from one plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeScore {
    pub name: String,
    pub score: i64,
}

/// Pods nominated to nodes by preemption (kept by the scheduling queue).
pub trait PodNominator: Send + Sync {
    fn nominated_pods_for_node(&self, node: &str) -> Vec<Arc<PodInfo>>;

    /// Moves the pod to the active queue if it waits elsewhere (upstream's `Activate`).
    fn activate(&self, _pod: &Pod) {}
}

/// What plugins may use besides the cycle: the API client, listers, nominated pods.
pub struct Handle {
    pub client: Option<kube::Client>,
    pub listers: Arc<dyn Listers>,
    pub nominator: Option<Arc<dyn PodNominator>>,
    pub events: Option<crate::events::Recorder>,
}

impl Handle {
    pub fn for_tests(listers: Arc<dyn Listers>) -> Arc<Handle> {
        Arc::new(Handle { client: None, listers, nominator: None, events: None })
    }
}

/// Every plugin: a name, the events that may undo its rejections, and its extension points.
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;

    /// The cluster events after which a pod this plugin rejected may fit; `None` means any
    /// event (the default for plugins that do not say).
    fn events_to_register(&self) -> Option<Vec<ClusterEvent>> {
        None
    }

    /// Whether `event` (with the object before and after) may make `pod`, rejected by this
    /// plugin, schedulable.
    fn queueing_hint(&self, _event: &ClusterEvent, _pod: &Pod, _old: Option<&EventObject>, _new: Option<&EventObject>) -> QueueingHint {
        QueueingHint::Queue
    }

    fn as_pre_enqueue(&self) -> Option<&dyn PreEnqueuePlugin> {
        None
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        None
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        None
    }
    fn as_post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        None
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        None
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        None
    }
    fn as_reserve(&self) -> Option<&dyn ReservePlugin> {
        None
    }
    fn as_bind(&self) -> Option<&dyn BindPlugin> {
        None
    }
}

/// Decides whether a pod may enter the active queue at all (scheduling gates).
pub trait PreEnqueuePlugin {
    fn pre_enqueue(&self, pod: &Pod) -> Status;
}

/// Runs once per cycle before filtering; may narrow the nodes, reject the pod or Skip.
pub trait PreFilterPlugin {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo) -> (PreFilterResult, Status);

    /// Updates the plugin's state as if `pod_to_add` ran on `node` (nominated pods,
    /// preemption). Plugins whose state does not depend on other pods keep the default.
    fn add_pod(&self, _state: &mut CycleState, _pod: &PodInfo, _pod_to_add: &Arc<PodInfo>, _node: &NodeInfo) -> Status {
        Status::success()
    }

    /// The reverse of [`PreFilterPlugin::add_pod`].
    fn remove_pod(&self, _state: &mut CycleState, _pod: &PodInfo, _pod_to_remove: &Arc<PodInfo>, _node: &NodeInfo) -> Status {
        Status::success()
    }
}

/// Whether the pod can run on one node.
pub trait FilterPlugin {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status;
}

/// Runs when no node fits (preemption).
pub trait PostFilterPlugin {
    fn post_filter(&self, state: &CycleState, pod: &PodInfo, statuses: &NodeToStatus, framework: &Framework) -> (Option<PostFilterResult>, Status);
}

/// Runs once per cycle before scoring the feasible nodes; may Skip.
pub trait PreScorePlugin {
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, nodes: &[Arc<NodeInfo>]) -> Status;
}

/// Ranks feasible nodes.
pub trait ScorePlugin {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status>;

    /// Brings the raw scores into `0..=MAX_NODE_SCORE`; the default keeps them.
    fn normalize_score(&self, _state: &CycleState, _pod: &PodInfo, _scores: &mut [NodeScore]) -> Status {
        Status::success()
    }
}

/// Reserves resources for a pod on its chosen node before binding.
pub trait ReservePlugin {
    fn reserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) -> Status;
    fn unreserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str);
}

/// Binds the pod to the node; Skip hands over to the next bind plugin.
pub trait BindPlugin {
    fn bind(&self, pod: Arc<Pod>, node: String) -> BoxFuture<'static, Status>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_match_like_upstream() {
        let node_add = ClusterEvent::new(EventResource::Node, ActionType::ADD);
        let registered = ClusterEvent::new(EventResource::Node, ActionType::ADD | ActionType::UPDATE_NODE_TAINT);
        assert!(registered.matches(&node_add));
        assert!(!registered.matches(&ClusterEvent::new(EventResource::Node, ActionType::UPDATE_NODE_LABEL)));
        let pod_delete = ClusterEvent::new(EventResource::Pod, ActionType::DELETE);
        assert!(pod_delete.matches(&ClusterEvent::ASSIGNED_POD_DELETE));
        assert!(!pod_delete.matches(&ClusterEvent::ASSIGNED_POD_ADD));
        assert!(ClusterEvent::UNSCHEDULABLE_TIMEOUT.matches(&node_add));
        assert_eq!(ClusterEvent::ASSIGNED_POD_ADD.to_string(), "AssignedPodAdd");
        assert_eq!(node_add.to_string(), "NodeAdd");
    }

    #[test]
    fn prefilter_results_intersect() {
        let a = PreFilterResult::nodes(["n1".to_string(), "n2".to_string()]);
        let b = PreFilterResult::nodes(["n2".to_string(), "n3".to_string()]);
        assert_eq!(a.clone().merge(PreFilterResult::all_nodes()), a);
        assert_eq!(a.merge(b).node_names.map(|s| s.into_iter().collect::<Vec<_>>()), Some(vec!["n2".to_string()]));
    }
}
