//! The ironkube API server: the Kubernetes v1.33 REST API over etcd.
//!
//! `http` parses and negotiates requests, `registry` applies object semantics through one
//! generic store and per-resource strategies, `storage` persists to etcd behind a watch cache.

pub mod admission;
pub mod bootstrap;
pub mod discovery;
pub mod http;
pub mod openapi;
pub mod options;
pub mod pki;
pub mod printers;
pub mod proxy;
pub mod registry;
pub mod server;
pub mod serviceaccount_token;
pub mod storage;
pub mod upstream_flags;
pub mod version;

pub use options::Options;

/// Why the API server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("connecting to etcd at {endpoints:?}: {source}")]
    Etcd {
        endpoints: Vec<String>,
        #[source]
        source: etcd_client::Error,
    },
    #[error("reading {what} from {path}: {source}")]
    Read {
        what: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid option: {0}")]
    Option(String),
    #[error("bootstrapping the cluster: {0}")]
    Bootstrap(String),
}

/// Runs the API server until `shutdown` completes.
///
/// `ready` receives the bound address once the server listens and bootstrap is done
/// (when `/readyz` answers ok).
pub async fn run(
    opts: Options,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ready: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
) -> Result<(), ServerError> {
    server::run(opts, shutdown, ready).await
}
