//! `ironkube-apiserver`: the API server alone, with kube-apiserver's command line.
//!
//! Upstream flags that ironkube does not implement are accepted with a warning (see
//! `upstream_flags`), so a kube-apiserver command line can be reused as it is.

use clap::{CommandFactory, Parser};
use ironkube_apiserver::{Options, upstream_flags};

#[derive(Debug, Parser)]
#[command(
    name = "ironkube-apiserver",
    version,
    about = "The Kubernetes v1.33 API server, over etcd"
)]
struct Cli {
    #[command(flatten)]
    options: Options,
}

fn main() -> anyhow::Result<()> {
    init_tracing();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let argv = upstream_flags::prefilter(std::env::args_os(), &Cli::command());
    let cli = Cli::parse_from(argv);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        ironkube_apiserver::run(cli.options, shutdown_signal(), None).await?;
        tracing::info!("API server stopped");
        Ok(())
    })
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Completes at the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::error!("cannot listen for SIGINT/SIGTERM; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => tracing::info!("SIGINT received, shutting down"),
        _ = terminate.recv() => tracing::info!("SIGTERM received, shutting down"),
    }
}
