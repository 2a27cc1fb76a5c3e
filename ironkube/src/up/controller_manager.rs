//! The controller manager, in process, with leader election like a standalone one.

use std::path::Path;
use std::time::Duration;

use clap::Parser as _;
use ironkube_apiserver::pki::CertKeyPair;

use super::component::{Running, Started};

const STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(clap::Parser)]
struct Args {
    #[command(flatten)]
    options: ironkube_controllers::Options,
}

/// Starts the controller manager against the API server of `kubeconfig`, the cluster CA
/// published as the root CA and signing CSRs. `controllers` is the `--controllers` list.
pub fn start(kubeconfig: &Path, ca: &CertKeyPair, controllers: &[String]) -> Started<()> {
    let args = Args::parse_from([
        "ironkube-controller-manager".to_string(),
        format!("--kubeconfig={}", kubeconfig.display()),
        format!("--root-ca-file={}", ca.cert_path.display()),
        format!("--cluster-signing-cert-file={}", ca.cert_path.display()),
        format!("--cluster-signing-key-file={}", ca.key_path.display()),
        format!("--controllers={}", controllers.join(",")),
    ]);
    tracing::info!("starting the controller manager");
    let running = Running::spawn("controller-manager", STOP_GRACE, move |stop| async move {
        ironkube_controllers::run(args.options, stop).await?;
        Ok(())
    });
    Started { running, ready: Box::pin(async { Ok(()) }) }
}
