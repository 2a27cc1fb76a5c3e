//! Turning SIGINT/SIGTERM into a cancellation token.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// A token cancelled at the first SIGINT or SIGTERM. A second signal exits at once (with
/// the status a shell gives a killed process); supervised children still get SIGTERM
/// then, through their parent-death signal.
pub fn on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::error!("cannot listen for SIGINT/SIGTERM; stop with SIGKILL");
        return token;
    };
    let cancel = token.clone();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        tracing::info!("{name} received, shutting down");
        cancel.cancel();
        let (name, code) = tokio::select! {
            _ = interrupt.recv() => ("SIGINT", 130),
            _ = terminate.recv() => ("SIGTERM", 143),
        };
        tracing::warn!("second {name} received, exiting without waiting");
        std::process::exit(code);
    });
    token
}
