//! Benchmarks and measurements run by hand (results go to docs/ as dated reports):
//!
//! - `watchers --kubeconfig K --etcd-metrics URL --count N`: opens N pod watches on one API
//!   server and reports how many etcd watchers that cost (from etcd's own metrics), how many
//!   watchers received a change, and the fan-out latency.
//! - `configmaps --kubeconfig K --count N --pid PID`: stores N ConfigMaps and reports the API
//!   server's RSS before and after (and after listing them all, which fills the watch cache).
//! - `scheduler --kubeconfig K --nodes N --pods M --log FILE -- SCHEDULER...`: registers N
//!   Ready nodes and M pending pods, then starts the scheduler command and reports how fast
//!   it binds them all (pods bound per second).

mod apiserver;
mod scheduler;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ironkube-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Watchers {
        #[arg(long)]
        kubeconfig: PathBuf,
        /// etcd's metrics URL, e.g. http://127.0.0.1:2379/metrics
        #[arg(long)]
        etcd_metrics: String,
        #[arg(long, default_value_t = 1000)]
        count: usize,
        #[arg(long, default_value = "bench-watch")]
        namespace: String,
    },
    Configmaps {
        #[arg(long)]
        kubeconfig: PathBuf,
        #[arg(long, default_value_t = 10000)]
        count: usize,
        /// PID of the process serving the API (for RSS).
        #[arg(long)]
        pid: u32,
        #[arg(long, default_value = "bench-cm")]
        namespace: String,
        #[arg(long, default_value_t = 16)]
        parallel: usize,
    },
    Scheduler(scheduler::Args),
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Watchers { kubeconfig, etcd_metrics, count, namespace } => apiserver::watchers(kubeconfig, etcd_metrics, count, namespace).await,
        Command::Configmaps { kubeconfig, count, pid, namespace, parallel } => apiserver::configmaps(kubeconfig, count, pid, namespace, parallel).await,
        Command::Scheduler(args) => scheduler::run(args).await,
    }
}
