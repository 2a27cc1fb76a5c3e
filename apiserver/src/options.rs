//! Command-line options, with upstream kube-apiserver's flag names.

use std::net::IpAddr;
use std::path::PathBuf;

/// Flags of `ironkube-apiserver` (and the API-server part of `ironkube up`).
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// List of etcd servers to connect with (scheme://ip:port), comma separated.
    #[arg(long = "etcd-servers", value_delimiter = ',', required = true)]
    pub etcd_servers: Vec<String>,
    /// The prefix to prepend to all resource paths in etcd.
    #[arg(long = "etcd-prefix", default_value = "/registry")]
    pub etcd_prefix: String,
    /// SSL Certificate Authority file used to secure etcd communication.
    #[arg(long = "etcd-cafile")]
    pub etcd_cafile: Option<PathBuf>,
    /// SSL certification file used to secure etcd communication.
    #[arg(long = "etcd-certfile")]
    pub etcd_certfile: Option<PathBuf>,
    /// SSL key file used to secure etcd communication.
    #[arg(long = "etcd-keyfile")]
    pub etcd_keyfile: Option<PathBuf>,
    /// The interval of compaction requests. If 0, the compaction request from apiserver is disabled.
    #[arg(long = "etcd-compaction-interval", default_value = "5m", value_parser = parse_duration)]
    pub etcd_compaction_interval: std::time::Duration,
    /// The port on which to serve HTTPS with authentication and authorization.
    #[arg(long = "secure-port", default_value_t = 6443)]
    pub secure_port: u16,
    /// The IP address on which to listen for the --secure-port port.
    #[arg(long = "bind-address", default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// The IP address on which to advertise the apiserver to members of the cluster.
    #[arg(long = "advertise-address")]
    pub advertise_address: Option<IpAddr>,
    /// File containing the default x509 Certificate for HTTPS.
    #[arg(long = "tls-cert-file")]
    pub tls_cert_file: Option<PathBuf>,
    /// File containing the default x509 private key matching --tls-cert-file.
    #[arg(long = "tls-private-key-file")]
    pub tls_private_key_file: Option<PathBuf>,
    /// If set, any request presenting a client certificate signed by one of the authorities in
    /// the client-ca-file is authenticated with an identity corresponding to the CommonName.
    #[arg(long = "client-ca-file")]
    pub client_ca_file: Option<PathBuf>,
    /// The directory where the TLS certs are located. Ignored if --tls-cert-file and
    /// --tls-private-key-file are provided.
    #[arg(long = "cert-dir", default_value = "/var/run/kubernetes")]
    pub cert_dir: PathBuf,
    /// A CIDR notation IP range from which to assign service cluster IPs.
    #[arg(long = "service-cluster-ip-range", default_value = "10.96.0.0/12")]
    pub service_cluster_ip_range: String,
    /// A port range to reserve for services with NodePort visibility.
    #[arg(long = "service-node-port-range", default_value = "30000-32767")]
    pub service_node_port_range: String,
    /// Limits the number of in-flight mutating requests (0 disables the limit).
    #[arg(long = "max-mutating-requests-inflight", default_value_t = 200)]
    pub max_mutating_requests_inflight: usize,
    /// Limits the number of in-flight non-mutating requests (0 disables the limit).
    #[arg(long = "max-requests-inflight", default_value_t = 400)]
    pub max_requests_inflight: usize,
    /// The PEM key service account tokens are signed with (RSA in PKCS#1 or PKCS#8, as
    /// kubeadm's `sa.key`, or ECDSA P-256 in PKCS#8); a P-256 key is generated as
    /// `<cert-dir>/sa.key` when not given.
    #[arg(long = "service-account-signing-key-file")]
    pub service_account_signing_key_file: Option<PathBuf>,
    /// The issuer (`iss`) of service account tokens, and their default audience.
    #[arg(long = "service-account-issuer", default_value = "https://kubernetes.default.svc.cluster.local")]
    pub service_account_issuer: String,
    /// Path to a client cert file for TLS to kubelets.
    #[arg(long = "kubelet-client-certificate")]
    pub kubelet_client_certificate: Option<PathBuf>,
    /// Path to a client key file for TLS to kubelets.
    #[arg(long = "kubelet-client-key")]
    pub kubelet_client_key: Option<PathBuf>,
    /// Path to a cert file for the certificate authority of kubelets' serving certificates
    /// (without it, kubelets' certificates are not verified).
    #[arg(long = "kubelet-certificate-authority")]
    pub kubelet_certificate_authority: Option<PathBuf>,
    /// List of the preferred NodeAddressTypes to use for kubelet connections.
    #[arg(long = "kubelet-preferred-address-types", value_delimiter = ',', default_value = crate::proxy::DEFAULT_PREFERRED_ADDRESS_TYPES)]
    pub kubelet_preferred_address_types: Vec<String>,
    /// Timeout for kubelet operations (connecting to a kubelet).
    #[arg(long = "kubelet-timeout", default_value = "5s", value_parser = parse_duration)]
    pub kubelet_timeout: std::time::Duration,
}

/// Go-style durations (`5m`, `30s`, `1h30m`, `0`), as kube-apiserver's flags take them.
pub use ironkube_machinery::go_duration::parse as parse_duration;
