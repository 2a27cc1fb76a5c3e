//! Simulated nodes, in process: N Nodes with Leases whose pods are reported Running
//! without containers (`--simulated-nodes N`).

use std::path::Path;
use std::time::Duration;

use super::component::{Running, Started};

const STOP_GRACE: Duration = Duration::from_secs(10);

/// Starts `count` simulated nodes against the API server of `kubeconfig`; ready once they
/// are registered.
pub fn start(kubeconfig: &Path, count: usize) -> Started<()> {
    let options = ironkube_controllers::simnode::Options {
        kubeconfig: Some(kubeconfig.to_path_buf()),
        nodes: count,
        ..Default::default()
    };
    tracing::info!(nodes = count, "starting simulated nodes");
    let (registered_tx, registered_rx) = tokio::sync::oneshot::channel();
    let running = Running::spawn("simulated-nodes", STOP_GRACE, move |stop| async move {
        ironkube_controllers::simnode::run(options, stop, move || {
            let _ = registered_tx.send(());
        })
        .await?;
        Ok(())
    });
    let ready = Box::pin(async move {
        registered_rx
            .await
            .map_err(|_| anyhow::anyhow!("simulated nodes stopped before they registered"))
    });
    Started { running, ready }
}
