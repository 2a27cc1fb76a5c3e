//! The in-tree plugins, one file each, and the registry naming them.

pub mod default_binder;
pub mod default_preemption;
pub mod image_locality;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_balanced_allocation;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod priority_sort;
pub mod resource_allocation;
pub mod scheduling_gates;
pub mod taint_toleration;
pub mod volume_restrictions;

use crate::framework::interface::NodeScore;
use crate::framework::runtime::Registry;

/// Every plugin this scheduler knows, by its upstream name.
pub fn registry() -> Registry {
    vec![
        (scheduling_gates::NAME, scheduling_gates::SchedulingGates::new),
        (priority_sort::NAME, priority_sort::PrioritySort::new),
        (node_unschedulable::NAME, node_unschedulable::NodeUnschedulable::new),
        (node_name::NAME, node_name::NodeName::new),
        (taint_toleration::NAME, taint_toleration::TaintToleration::new),
        (node_affinity::NAME, node_affinity::NodeAffinity::new),
        (node_ports::NAME, node_ports::NodePorts::new),
        (node_resources_fit::NAME, node_resources_fit::NodeResourcesFit::new),
        (volume_restrictions::NAME, volume_restrictions::VolumeRestrictions::new),
        (pod_topology_spread::NAME, pod_topology_spread::PodTopologySpread::new),
        (inter_pod_affinity::NAME, inter_pod_affinity::InterPodAffinity::new),
        (default_preemption::NAME, default_preemption::DefaultPreemption::new),
        (node_resources_balanced_allocation::NAME, node_resources_balanced_allocation::BalancedAllocation::new),
        (image_locality::NAME, image_locality::ImageLocality::new),
        (default_binder::NAME, default_binder::DefaultBinder::new),
    ]
}

/// Upstream's `DefaultNormalizeScore`: scales scores so the highest becomes `max`
/// (reversed: the highest becomes 0); all zero stays zero (reversed: all `max`).
pub fn default_normalize_score(max: i64, reverse: bool, scores: &mut [NodeScore]) {
    let highest = scores.iter().map(|s| s.score).max().unwrap_or(0).max(0);
    if highest == 0 {
        if reverse {
            for s in scores.iter_mut() {
                s.score = max;
            }
        }
        return;
    }
    for s in scores.iter_mut() {
        let v = max * s.score / highest;
        s.score = if reverse { max - v } else { v };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_table() {
        let mk = |v: &[i64]| v.iter().enumerate().map(|(i, s)| NodeScore { name: i.to_string(), score: *s }).collect::<Vec<_>>();
        let cases: [(&[i64], bool, &[i64]); 4] = [(&[1, 2, 4], false, &[25, 50, 100]), (&[1, 2, 4], true, &[75, 50, 0]), (&[0, 0], false, &[0, 0]), (&[0, 0], true, &[100, 100])];
        for (input, reverse, want) in cases {
            let mut s = mk(input);
            default_normalize_score(100, reverse, &mut s);
            assert_eq!(s.iter().map(|s| s.score).collect::<Vec<_>>(), want);
        }
    }
}
