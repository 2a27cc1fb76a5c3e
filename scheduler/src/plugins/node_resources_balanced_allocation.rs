//! NodeResourcesBalancedAllocation: prefers nodes whose resource utilizations would stay
//! close to each other with the pod on them.

use std::sync::Arc;

use serde::Deserialize;

use super::resource_allocation::{ResourceAllocationScorer, ResourceSpec, balanced, defaulted};
use crate::framework::cycle_state::CycleState;
use crate::framework::interface::{Handle, Plugin, PreScorePlugin, ScorePlugin};
use crate::framework::node_info::{NodeInfo, PodInfo};
use crate::framework::status::Status;

pub const NAME: &str = "NodeResourcesBalancedAllocation";
const PRE_SCORE_KEY: &str = "PreScoreNodeResourcesBalancedAllocation";

#[derive(Debug, Default, Deserialize)]
struct Args {
    #[serde(default)]
    resources: Option<Vec<ResourceSpec>>,
}

pub struct BalancedAllocation {
    scorer: ResourceAllocationScorer,
}

impl BalancedAllocation {
    pub fn new(args: Option<&serde_json::Value>, _handle: &Arc<Handle>) -> Result<Arc<dyn Plugin>, String> {
        let args: Args = match args {
            Some(v) if !v.is_null() => serde_json::from_value(v.clone()).map_err(|e| format!("decoding NodeResourcesBalancedAllocationArgs: {e}"))?,
            _ => Args::default(),
        };
        let resources = defaulted(args.resources);
        Ok(Arc::new(BalancedAllocation { scorer: ResourceAllocationScorer::new(true, resources, Box::new(balanced)) }))
    }
}

impl Plugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreScorePlugin for BalancedAllocation {
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, _nodes: &[Arc<NodeInfo>]) -> Status {
        let requests = self.scorer.pod_requests(&pod.pod);
        if requests.iter().all(|r| *r == 0) {
            return Status::skip();
        }
        state.write(PRE_SCORE_KEY, requests);
        Status::success()
    }
}

impl ScorePlugin for BalancedAllocation {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let requests = match state.read::<Vec<i64>>(PRE_SCORE_KEY) {
            Some(r) => r.clone(),
            None => {
                let r = self.scorer.pod_requests(&pod.pod);
                if r.iter().all(|v| *v == 0) {
                    return Ok(0);
                }
                r
            }
        };
        Ok(self.scorer.score(node, &requests))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::listers::StaticListers;
    use crate::testing::{node, pod, snapshot, state};

    #[test]
    fn score_table() {
        let pl = BalancedAllocation::new(None, &Handle::for_tests(Arc::new(StaticListers::default()))).expect("plugin");
        let nodes = vec![node("n1").allocatable("4", "8Gi", "110").build(), node("n2").allocatable("8", "8Gi", "110").build()];
        let snap = snapshot(nodes, vec![pod("e").node("n1").req("1", "2Gi").build()]);
        let infos = snap.list().to_vec();
        // (pod, expected scores, skipped)
        let cases = [
            ("balanced on n1, unbalanced on n2", pod("p").req("1", "2Gi"), vec![100, 93], false),
            ("best effort pods skip", pod("p"), vec![], true),
        ];
        for (name, p, want, skipped) in cases {
            let mut st = state(&snap);
            let info = p.info();
            let s = pl.as_pre_score().expect("ps").pre_score(&mut st, &info, &infos);
            assert_eq!(s.is_skip(), skipped, "{name}");
            if !skipped {
                let got: Vec<i64> = infos.iter().map(|n| pl.as_score().expect("s").score(&st, &info, n).expect("score")).collect();
                assert_eq!(got, want, "{name}");
            }
        }
    }
}
