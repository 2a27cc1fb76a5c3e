//! The scheduler, in process, with leader election like a standalone one.

use std::path::Path;
use std::time::Duration;

use clap::Parser as _;

use super::component::{Running, Started};

const STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(clap::Parser)]
struct Args {
    #[command(flatten)]
    options: ironkube_scheduler::Options,
}

/// Starts the scheduler against the API server of `kubeconfig`.
pub fn start(kubeconfig: &Path) -> Started<()> {
    let args = Args::parse_from([
        "ironkube-scheduler".to_string(),
        format!("--kubeconfig={}", kubeconfig.display()),
    ]);
    tracing::info!("starting the scheduler");
    let running = Running::spawn("scheduler", STOP_GRACE, move |stop| async move {
        ironkube_scheduler::run(args.options, stop).await?;
        Ok(())
    });
    Started { running, ready: Box::pin(async { Ok(()) }) }
}
