//! VolumeRestrictions: volumes that cannot be shared between pods on one node (GCE PD and
//! iSCSI unless both read-only, AWS EBS, RBD), and ReadWriteOncePod claims already used by
//! a scheduled pod.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Volume};

use crate::framework::cycle_state::CycleState;
use crate::framework::interface::{ActionType, ClusterEvent, EventObject, EventResource, FilterPlugin, Handle, Plugin, PreFilterPlugin, PreFilterResult, QueueingHint};
use crate::framework::node_info::{NodeInfo, PodExt, PodInfo};
use crate::framework::status::Status;

pub const NAME: &str = "VolumeRestrictions";
pub const ERR_REASON_DISK_CONFLICT: &str = "node(s) had no available disk";
pub const ERR_REASON_READ_WRITE_ONCE_POD_CONFLICT: &str = "node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode";
const PRE_FILTER_KEY: &str = "PreFilterVolumeRestrictions";

pub struct VolumeRestrictions {
    handle: Arc<Handle>,
}

impl VolumeRestrictions {
    pub fn new(_args: Option<&serde_json::Value>, handle: &Arc<Handle>) -> Result<Arc<dyn Plugin>, String> {
        Ok(Arc::new(VolumeRestrictions { handle: handle.clone() }))
    }
}

#[derive(Clone)]
struct PreFilterState {
    read_write_once_pod_claims: Arc<BTreeSet<String>>,
    conflicting_ref_count: i64,
}

impl PreFilterState {
    fn conflicts_of(&self, pod: &Pod) -> i64 {
        claims(pod).filter(|c| self.read_write_once_pod_claims.contains(*c)).count() as i64
    }
}

fn volumes(pod: &Pod) -> &[Volume] {
    pod.spec.as_ref().and_then(|s| s.volumes.as_deref()).unwrap_or_default()
}

fn claims(pod: &Pod) -> impl Iterator<Item = &str> {
    volumes(pod).iter().filter_map(|v| v.persistent_volume_claim.as_ref().map(|c| c.claim_name.as_str()))
}

fn needs_check(v: &Volume) -> bool {
    v.gce_persistent_disk.is_some() || v.aws_elastic_block_store.is_some() || v.rbd.is_some() || v.iscsi.is_some()
}

/// Whether `volume` cannot be mounted beside the volumes of `pod`.
pub fn is_volume_conflict(volume: &Volume, pod: &Pod) -> bool {
    volumes(pod).iter().any(|existing| {
        if let (Some(d), Some(e)) = (&volume.gce_persistent_disk, &existing.gce_persistent_disk) {
            if d.pd_name == e.pd_name && !(d.read_only == Some(true) && e.read_only == Some(true)) {
                return true;
            }
        }
        if let (Some(d), Some(e)) = (&volume.aws_elastic_block_store, &existing.aws_elastic_block_store) {
            if d.volume_id == e.volume_id {
                return true;
            }
        }
        if let (Some(d), Some(e)) = (&volume.iscsi, &existing.iscsi) {
            if d.iqn == e.iqn && !(d.read_only == Some(true) && e.read_only == Some(true)) {
                return true;
            }
        }
        if let (Some(d), Some(e)) = (&volume.rbd, &existing.rbd) {
            let overlap = d.monitors.iter().any(|m| e.monitors.contains(m));
            if overlap && d.pool == e.pool && d.image == e.image && !(d.read_only == Some(true) && e.read_only == Some(true)) {
                return true;
            }
        }
        false
    })
}

/// Whether the pod's exclusive volumes are free on the node.
pub fn satisfies_volume_conflicts(pod: &Pod, node: &NodeInfo) -> bool {
    volumes(pod).iter().filter(|v| needs_check(v)).all(|v| !node.pods.iter().any(|e| is_volume_conflict(v, &e.pod)))
}

impl Plugin for VolumeRestrictions {
    fn name(&self) -> &'static str {
        NAME
    }

    fn events_to_register(&self) -> Option<Vec<ClusterEvent>> {
        Some(vec![
            ClusterEvent::new(EventResource::Pod, ActionType::DELETE),
            ClusterEvent::new(EventResource::Node, ActionType::ADD),
            ClusterEvent::new(EventResource::PersistentVolumeClaim, ActionType::ADD),
        ])
    }

    fn queueing_hint(&self, _event: &ClusterEvent, pod: &Pod, old: Option<&EventObject>, new: Option<&EventObject>) -> QueueingHint {
        let q = |b: bool| if b { QueueingHint::Queue } else { QueueingHint::QueueSkip };
        if let Some(pvc) = new.and_then(EventObject::pvc) {
            return q(pvc.metadata.namespace.as_deref() == Some(pod.namespace()) && claims(pod).any(|c| Some(c) == pvc.metadata.name.as_deref()));
        }
        let Some(deleted) = old.and_then(EventObject::pod) else { return QueueingHint::Queue };
        if deleted.namespace() != pod.namespace() {
            return QueueingHint::QueueSkip;
        }
        let mut as_node = NodeInfo::default();
        as_node.add_pod(deleted.clone());
        if !satisfies_volume_conflicts(pod, &as_node) {
            return QueueingHint::Queue;
        }
        let mine: BTreeSet<&str> = claims(pod).collect();
        q(claims(deleted).any(|c| mine.contains(c)))
    }

    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl PreFilterPlugin for VolumeRestrictions {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo) -> (PreFilterResult, Status) {
        let needs = volumes(&pod.pod).iter().any(needs_check);
        let mut rwop = BTreeSet::new();
        for claim in claims(&pod.pod) {
            let Some(pvc) = self.handle.listers.persistent_volume_claim(pod.pod.namespace(), claim) else {
                return (PreFilterResult::all_nodes(), Status::unresolvable(format!("persistentvolumeclaim \"{claim}\" not found")));
            };
            if pvc.spec.as_ref().and_then(|s| s.access_modes.as_ref()).is_some_and(|m| m.iter().any(|m| m == "ReadWriteOncePod")) {
                rwop.insert(claim.to_string());
            }
        }
        let snapshot = state.snapshot().clone();
        let conflicting = rwop.iter().filter(|c| snapshot.is_pvc_used_by_pods(&format!("{}/{c}", pod.pod.namespace()))).count() as i64;
        if !needs && conflicting == 0 {
            return (PreFilterResult::all_nodes(), Status::skip());
        }
        state.write(PRE_FILTER_KEY, PreFilterState { read_write_once_pod_claims: Arc::new(rwop), conflicting_ref_count: conflicting });
        (PreFilterResult::all_nodes(), Status::success())
    }

    fn add_pod(&self, state: &mut CycleState, _pod: &PodInfo, to_add: &Arc<PodInfo>, _node: &NodeInfo) -> Status {
        if let Some(s) = state.read_mut::<PreFilterState>(PRE_FILTER_KEY) {
            s.conflicting_ref_count += s.conflicts_of(&to_add.pod);
        }
        Status::success()
    }

    fn remove_pod(&self, state: &mut CycleState, _pod: &PodInfo, to_remove: &Arc<PodInfo>, _node: &NodeInfo) -> Status {
        if let Some(s) = state.read_mut::<PreFilterState>(PRE_FILTER_KEY) {
            s.conflicting_ref_count -= s.conflicts_of(&to_remove.pod);
        }
        Status::success()
    }
}

impl FilterPlugin for VolumeRestrictions {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if !satisfies_volume_conflicts(&pod.pod, node) {
            return Status::unschedulable(ERR_REASON_DISK_CONFLICT);
        }
        match state.read::<PreFilterState>(PRE_FILTER_KEY) {
            Some(s) if s.conflicting_ref_count > 0 => Status::unschedulable(ERR_REASON_READ_WRITE_ONCE_POD_CONFLICT),
            Some(_) => Status::success(),
            None => Status::error(format!("cannot read {PRE_FILTER_KEY:?} from cycleState")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::listers::StaticListers;
    use crate::testing::{node, node_info, pod, snapshot, state};
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    use serde_json::json;

    fn pvc(name: &str, mode: &str) -> Arc<PersistentVolumeClaim> {
        Arc::new(serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default"}, "spec": {"accessModes": [mode]}})).expect("pvc"))
    }

    #[test]
    fn filter_table() {
        let listers = StaticListers { persistent_volume_claims: vec![pvc("rwop", "ReadWriteOncePod"), pvc("rwo", "ReadWriteOnce")], ..Default::default() };
        let pl = VolumeRestrictions::new(None, &Handle::for_tests(Arc::new(listers))).expect("plugin");
        let gce = |ro: bool| json!({"name": "d", "gcePersistentDisk": {"pdName": "disk-1", "readOnly": ro}});
        let cases = [
            ("no volumes", pod("p"), vec![], Status::success()),
            ("same GCE disk", pod("p").volume(gce(false)), vec![pod("e").node("n").volume(gce(false)).build()], Status::unschedulable(ERR_REASON_DISK_CONFLICT)),
            ("both read-only", pod("p").volume(gce(true)), vec![pod("e").node("n").volume(gce(true)).build()], Status::success()),
            ("RWOP claim in use", pod("p").volume_pvc("rwop"), vec![pod("e").node("other").volume_pvc("rwop").build()], Status::unschedulable(ERR_REASON_READ_WRITE_ONCE_POD_CONFLICT)),
            ("RWO claim shared", pod("p").volume_pvc("rwo"), vec![pod("e").node("n").volume_pvc("rwo").build()], Status::success()),
            ("missing claim", pod("p").volume_pvc("nope"), vec![], Status::unresolvable("persistentvolumeclaim \"nope\" not found")),
        ];
        for (name, p, pods, want) in cases {
            let n = node("n").build();
            let snap = snapshot(vec![n.clone(), node("other").build()], pods.clone());
            let mut st = state(&snap);
            let info = p.info();
            let (_, s) = pl.as_pre_filter().expect("pf").pre_filter(&mut st, &info);
            let got = if s.is_skip() {
                Status::success()
            } else if !s.is_success() {
                s
            } else {
                pl.as_filter().expect("f").filter(&st, &info, &node_info(n, pods.into_iter().filter(|p| p.node_name() == "n").collect()))
            };
            assert_eq!(got, want, "{name}");
        }
    }
}
