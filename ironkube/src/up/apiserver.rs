//! The API server, in process.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args as _, FromArgMatches as _};
use ironkube_apiserver::{Options, upstream_flags};

use super::component::{Running, Started};

/// How long the API server gets to drain after it is asked to stop.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// Everything `up` decides for the API server.
#[derive(Debug, Clone)]
pub struct ApiserverConfig {
    pub etcd_servers: Vec<String>,
    pub etcd_cafile: Option<PathBuf>,
    pub etcd_certfile: Option<PathBuf>,
    pub etcd_keyfile: Option<PathBuf>,
    pub bind_address: IpAddr,
    pub secure_port: u16,
    pub advertise_address: Option<IpAddr>,
    pub service_cluster_ip_range: String,
    pub tls_cert_file: PathBuf,
    pub tls_private_key_file: PathBuf,
    pub client_ca_file: PathBuf,
    pub cert_dir: PathBuf,
    /// The API server's client certificate and key for kubelets.
    pub kubelet_client_certificate: Option<PathBuf>,
    pub kubelet_client_key: Option<PathBuf>,
    /// More kube-apiserver flags, given by the user; they win over the ones above.
    pub extra_args: Vec<String>,
}

impl ApiserverConfig {
    /// The command line `ironkube-apiserver` would get for this configuration.
    pub fn command_line(&self) -> Vec<String> {
        let path = |flag: &str, p: &PathBuf| format!("--{flag}={}", p.display());
        let mut args = vec![
            "ironkube-apiserver".to_string(),
            format!("--etcd-servers={}", self.etcd_servers.join(",")),
            format!("--bind-address={}", self.bind_address),
            format!("--secure-port={}", self.secure_port),
            format!(
                "--service-cluster-ip-range={}",
                self.service_cluster_ip_range
            ),
            path("tls-cert-file", &self.tls_cert_file),
            path("tls-private-key-file", &self.tls_private_key_file),
            path("client-ca-file", &self.client_ca_file),
            path("cert-dir", &self.cert_dir),
            // kubeadm's choice: kubelets by address before their (maybe unresolvable) name.
            "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname".to_string(),
        ];
        if let Some(ip) = self.advertise_address {
            args.push(format!("--advertise-address={ip}"));
        }
        for (flag, file) in [
            ("etcd-cafile", &self.etcd_cafile),
            ("etcd-certfile", &self.etcd_certfile),
            ("etcd-keyfile", &self.etcd_keyfile),
            ("kubelet-client-certificate", &self.kubelet_client_certificate),
            ("kubelet-client-key", &self.kubelet_client_key),
        ] {
            if let Some(file) = file {
                args.push(path(flag, file));
            }
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }

    /// Parses [`Self::command_line`] the way `ironkube-apiserver` parses its own, so every
    /// option not set here keeps its upstream default.
    pub fn options(&self) -> anyhow::Result<Options> {
        let cmd = Options::augment_args(
            clap::Command::new("ironkube-apiserver").args_override_self(true),
        );
        let argv = upstream_flags::prefilter(self.command_line().into_iter().map(Into::into), &cmd);
        let matches = cmd
            .try_get_matches_from(argv)
            .context("building the API server's options")?;
        Options::from_arg_matches(&matches).context("building the API server's options")
    }
}

/// Starts the API server; ready yields the address it listens on once `/readyz` is ok.
pub fn start(config: &ApiserverConfig) -> anyhow::Result<Started<SocketAddr>> {
    let options = config.options()?;
    tracing::info!(
        address = %SocketAddr::new(options.bind_address, options.secure_port),
        etcd = %options.etcd_servers.join(","),
        "starting the API server"
    );
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let running = Running::spawn("apiserver", STOP_GRACE, move |stop| async move {
        ironkube_apiserver::run(options, stop.cancelled_owned(), Some(ready_tx)).await?;
        Ok(())
    });
    let ready = Box::pin(async move {
        ready_rx
            .await
            .map_err(|_| anyhow::anyhow!("the API server stopped before it was ready"))
    });
    Ok(Started { running, ready })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ApiserverConfig {
        ApiserverConfig {
            etcd_servers: vec![
                "http://127.0.0.1:2379".into(),
                "http://127.0.0.1:2380".into(),
            ],
            etcd_cafile: None,
            etcd_certfile: None,
            etcd_keyfile: None,
            bind_address: IpAddr::from([127, 0, 0, 1]),
            secure_port: 7443,
            advertise_address: None,
            service_cluster_ip_range: "10.96.0.0/12".into(),
            tls_cert_file: "/d/pki/apiserver.crt".into(),
            tls_private_key_file: "/d/pki/apiserver.key".into(),
            client_ca_file: "/d/pki/ca.crt".into(),
            cert_dir: "/d/pki".into(),
            kubelet_client_certificate: Some("/d/pki/apiserver-kubelet-client.crt".into()),
            kubelet_client_key: Some("/d/pki/apiserver-kubelet-client.key".into()),
            extra_args: vec![],
        }
    }

    #[test]
    fn options_come_from_the_config() {
        let opts = config().options().expect("options");
        assert_eq!(
            opts.etcd_servers,
            ["http://127.0.0.1:2379", "http://127.0.0.1:2380"]
        );
        assert_eq!(opts.secure_port, 7443);
        assert_eq!(opts.bind_address, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(opts.client_ca_file, Some("/d/pki/ca.crt".into()));
        assert_eq!(opts.etcd_prefix, "/registry");
        assert_eq!(
            opts.kubelet_client_certificate,
            Some("/d/pki/apiserver-kubelet-client.crt".into())
        );
        assert_eq!(
            opts.kubelet_preferred_address_types,
            ["InternalIP", "ExternalIP", "Hostname"]
        );
    }

    #[test]
    fn extra_flags_override_and_unimplemented_ones_are_dropped() {
        let mut config = config();
        config.extra_args = vec!["--secure-port=9443".into(), "--profiling=false".into()];
        let opts = config.options().expect("options");
        assert_eq!(opts.secure_port, 9443);

        config.extra_args = vec!["--not-a-flag".into()];
        assert!(config.options().is_err());
    }
}
