//! ImageLocality: prefers nodes that already have the pod's images, weighting each image
//! by its size and by how widely it is spread (so one node with a popular image does not
//! attract everything).

use std::sync::Arc;

use crate::framework::cycle_state::CycleState;
use crate::framework::interface::{Handle, MAX_NODE_SCORE, Plugin, ScorePlugin};
use crate::framework::node_info::{NodeInfo, PodInfo};
use crate::framework::status::Status;

pub const NAME: &str = "ImageLocality";
const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

pub struct ImageLocality;

impl ImageLocality {
    pub fn new(_args: Option<&serde_json::Value>, _handle: &Arc<Handle>) -> Result<Arc<dyn Plugin>, String> {
        Ok(Arc::new(ImageLocality))
    }
}

/// `name:latest` for names without a tag, as the kubelet reports them.
pub fn normalized_image_name(name: &str) -> String {
    let colon = name.rfind(':').map(|i| i as isize).unwrap_or(-1);
    let slash = name.rfind('/').map(|i| i as isize).unwrap_or(-1);
    if colon <= slash { format!("{name}:latest") } else { name.to_string() }
}

/// Maps the summed image score into 0..=100 between the thresholds.
pub fn calculate_priority(sum: i64, num_containers: usize) -> i64 {
    let max_threshold = MAX_CONTAINER_THRESHOLD * num_containers as i64;
    let sum = if sum < MIN_THRESHOLD { MIN_THRESHOLD } else { sum.min(max_threshold) };
    if max_threshold == MIN_THRESHOLD {
        return 0;
    }
    MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max_threshold - MIN_THRESHOLD)
}

impl Plugin for ImageLocality {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl ScorePlugin for ImageLocality {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let snapshot = state.snapshot();
        let total = snapshot.len().max(1) as f64;
        let Some(spec) = pod.pod.spec.as_ref() else { return Ok(0) };
        let containers: Vec<_> = spec.init_containers.iter().flatten().chain(spec.containers.iter()).collect();
        let mut sum = 0i64;
        for c in &containers {
            let name = normalized_image_name(c.image.as_deref().unwrap_or(""));
            if let Some(size) = node.images.get(&name) {
                let spread = snapshot.image_num_nodes(&name) as f64 / total;
                sum += (*size as f64 * spread) as i64;
            }
        }
        Ok(calculate_priority(sum, containers.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod, snapshot, state};

    #[test]
    fn names_and_priority() {
        assert_eq!(normalized_image_name("nginx"), "nginx:latest");
        assert_eq!(normalized_image_name("registry:5000/nginx"), "registry:5000/nginx:latest");
        assert_eq!(normalized_image_name("nginx:1.25"), "nginx:1.25");
        assert_eq!(calculate_priority(0, 1), 0);
        assert_eq!(calculate_priority(2000 * MB, 1), 100);
    }

    #[test]
    fn score_table() {
        // Upstream's example: a 250MB image on both of two nodes and a 40MB image on one.
        let nodes = vec![node("n1").image("gcr.io/250:latest", 250 * MB).image("gcr.io/40:latest", 40 * MB).build(), node("n2").image("gcr.io/250:latest", 250 * MB).build(), node("n3").build()];
        let snap = snapshot(nodes, vec![]);
        let st = state(&snap);
        let p = pod("p").image("gcr.io/40").spec("initContainers", serde_json::json!([{"name": "i", "image": "gcr.io/250"}])).info();
        let got: Vec<i64> = snap.list().iter().map(|n| ImageLocality.score(&st, &p, n).expect("score")).collect();
        // n1: 250*(2/3) + 40*(1/3) = 180MB -> 100*(180-23)/(2000-23) = 7; n2: 166MB -> 7; n3: 0.
        assert_eq!(got, vec![7, 7, 0]);
    }
}
