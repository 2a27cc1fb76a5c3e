//! `ironkube`: the all-in-one binary.
//!
//! - `ironkube up` runs a whole cluster on this machine: etcd (a supervised child unless
//!   `--etcd-servers` points elsewhere), PKI and an admin kubeconfig, the API server in
//!   process, and, as they arrive, the scheduler, controllers and kubelet.
//! - `ironkube apiserver <kube-apiserver flags>` runs the API server alone, exactly as the
//!   `ironkube-apiserver` binary does.
//! - `ironkube kubelet <kubelet flags>` runs the kubelet, as `ironkube-kubelet` does.
//! - `ironkube controller-manager <kube-controller-manager flags>` runs the controller
//!   manager alone (leader election on by default), as `ironkube-controller-manager` does.

mod shutdown;
mod up;

use clap::{CommandFactory, Parser, Subcommand};
use ironkube_apiserver::upstream_flags;
use std::ffi::OsString;
use std::io::IsTerminal;

#[derive(Debug, Parser)]
#[command(
    name = "ironkube",
    version,
    about = "A Kubernetes v1.33 control plane in Rust"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a single-machine cluster: etcd, PKI, the API server and the other components.
    Up(up::UpArgs),
    /// Run the API server alone, with kube-apiserver's flags.
    Apiserver(ApiserverArgs),
    /// Run the kubelet, with the kubelet's flags (as `ironkube-kubelet`).
    Kubelet(KubeletArgs),
    /// Run the controller manager, with kube-controller-manager's flags.
    ControllerManager(ControllerManagerArgs),
}

#[derive(Debug, clap::Args)]
struct ControllerManagerArgs {
    #[command(flatten)]
    options: ironkube_controllers::Options,
}

#[derive(Debug, clap::Args)]
struct KubeletArgs {
    #[command(flatten)]
    options: ironkube_kubelet::agent::Options,
}

#[derive(Debug, clap::Args)]
struct ApiserverArgs {
    #[command(flatten)]
    options: ironkube_apiserver::Options,
}

const APISERVER: &str = "apiserver";

fn main() -> std::process::ExitCode {
    init_tracing();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse_from(prefilter_apiserver_flags(std::env::args_os().collect()));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Up(args) => up::run(args).await,
            Command::Apiserver(args) => {
                let stop = shutdown::on_signals();
                ironkube_apiserver::run(args.options, stop.cancelled_owned(), None).await?;
                tracing::info!("API server stopped");
                Ok(())
            }
            Command::Kubelet(args) => {
                let stop = shutdown::on_signals();
                ironkube_kubelet::agent::run(args.options, stop, || {}).await?;
                Ok(())
            }
            Command::ControllerManager(args) => {
                let stop = shutdown::on_signals();
                ironkube_controllers::run(args.options, stop).await?;
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `ironkube apiserver` takes kube-apiserver's command line: drop (with a warning) the
/// upstream flags our options do not implement yet, before clap sees them.
fn prefilter_apiserver_flags(mut argv: Vec<OsString>) -> Vec<OsString> {
    if argv.len() < 2 || argv[1] != APISERVER {
        return argv;
    }
    let cli = Cli::command();
    let Some(sub) = cli.find_subcommand(APISERVER) else {
        return argv;
    };
    let flags = argv.split_off(2);
    let mut sub_argv = vec![argv[1].clone()];
    sub_argv.extend(flags);
    argv.truncate(1);
    argv.extend(upstream_flags::prefilter(sub_argv, sub));
    argv
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn apiserver_subcommand_accepts_upstream_flags() {
        let argv = prefilter_apiserver_flags(os(&[
            "ironkube",
            "apiserver",
            "--etcd-servers=http://127.0.0.1:2379",
            "--authorization-mode",
            "Node,RBAC",
            "--profiling=false",
            "--secure-port=7443",
        ]));
        let cli = Cli::try_parse_from(argv).expect("parses");
        let Command::Apiserver(args) = cli.command else {
            panic!("not the apiserver subcommand");
        };
        assert_eq!(args.options.secure_port, 7443);
        assert_eq!(args.options.etcd_servers, ["http://127.0.0.1:2379"]);
    }

    #[test]
    fn up_flags_are_not_filtered() {
        let argv = os(&["ironkube", "up", "--profiling"]);
        assert_eq!(prefilter_apiserver_flags(argv.clone()), argv);
        assert!(Cli::try_parse_from(argv).is_err());
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
