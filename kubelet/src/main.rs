//! `ironkube-kubelet`: the node agent, with upstream kubelet's flag names.

use clap::Parser;
use ironkube_kubelet::agent::Options;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(name = "ironkube-kubelet", version, about = "The kubelet: registers its node and runs its pods through the CRI")]
struct Cli {
    #[command(flatten)]
    options: Options,
}

fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            if let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
                tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
                trigger.cancel();
            }
        });
        ironkube_kubelet::agent::run(cli.options, shutdown, || {}).await?;
        Ok(())
    })
}
