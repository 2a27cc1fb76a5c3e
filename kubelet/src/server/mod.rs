//! The kubelet's HTTPS server (upstream's pkg/kubelet/server): `/healthz`,
//! `/containerLogs/{namespace}/{pod}/{container}`, and the streaming endpoints `/exec`,
//! `/attach` (`/{namespace}/{pod}[/{uid}]/{container}`) and `/portForward`
//! (`/{namespace}/{pod}[/{uid}]`), which ask the runtime for a URL on its own streaming
//! server and proxy the client's upgrade request there ([`proxy`]). The API server reaches
//! these through pods/log, pods/exec, pods/attach, pods/portforward and nodes/proxy.
//!
//! Flags are upstream's: `--port` (10250), `--address` (0.0.0.0), `--tls-cert-file` and
//! `--tls-private-key-file` (absent: a self-signed pair under `<root-dir>/pki`),
//! `--client-ca-file`, `--anonymous-auth`, `--authorization-mode`.

mod auth;
mod container_logs;
pub mod proxy;
mod streaming;
pub mod tls;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse as _;
use axum::routing::{any, get};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use k8s_openapi::api::core::v1::Pod;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;
use tracing::{info, warn};

use crate::cri::Runtime;
use crate::cri::streaming::Streaming;

/// The server's flags, named as upstream's kubelet names them.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerOptions {
    /// The port the kubelet serves on.
    #[arg(long, default_value_t = 10250)]
    pub port: u16,
    /// The IP address the kubelet serves on (0.0.0.0 for every IPv4 interface).
    #[arg(long, default_value = "0.0.0.0")]
    pub address: IpAddr,
    /// The x509 certificate for HTTPS; without it (and --tls-private-key-file) a self-signed
    /// one for the node's host name and address is generated under <root-dir>/pki.
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,
    /// The key matching --tls-cert-file.
    #[arg(long)]
    pub tls_private_key_file: Option<PathBuf>,
    /// Requests presenting a client certificate signed by one of these authorities are
    /// authenticated (the API server presents its kubelet client certificate).
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
    /// Whether requests without a verified client certificate are served (as
    /// system:anonymous).
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub anonymous_auth: bool,
    /// The authorization mode: only AlwaysAllow, upstream's default without a config file
    /// (kubeadm's config file sets Webhook, which needs SubjectAccessReviews).
    #[arg(long, default_value = "AlwaysAllow", value_parser = ["AlwaysAllow"])]
    pub authorization_mode: String,
}

/// What failed starting the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Tls(#[from] tls::Error),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// What the handlers share.
pub struct Kubelet<R> {
    pub runtime: R,
    pub client: kube::Client,
    pub node_name: String,
    pub anonymous_auth: bool,
}

impl<R> Kubelet<R> {
    /// The pod if it is bound to this node (upstream asks its pod manager, which holds the
    /// node's pods).
    async fn pod(&self, namespace: &str, name: &str) -> Option<Pod> {
        let pods: kube::Api<Pod> = kube::Api::namespaced(self.client.clone(), namespace);
        let pod = pods.get_opt(name).await.ok().flatten()?;
        let bound = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(self.node_name.as_str());
        bound.then_some(pod)
    }
}

/// The routes, on the shared state.
pub fn app<R>(kubelet: Arc<Kubelet<R>>) -> Router
where
    R: Runtime + Streaming + Clone + 'static,
{
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/containerLogs/{namespace}/{pod}/{container}", get(container_logs::get::<R>))
        .route("/exec/{namespace}/{pod}/{container}", any(streaming::exec::<R>))
        .route("/exec/{namespace}/{pod}/{uid}/{container}", any(streaming::exec_uid::<R>))
        .route("/attach/{namespace}/{pod}/{container}", any(streaming::attach::<R>))
        .route("/attach/{namespace}/{pod}/{uid}/{container}", any(streaming::attach_uid::<R>))
        .route("/portForward/{namespace}/{pod}", any(streaming::port_forward::<R>))
        .route("/portForward/{namespace}/{pod}/{uid}", any(streaming::port_forward_uid::<R>))
        .layer(axum::middleware::from_fn_with_state(kubelet.clone(), auth::authenticate::<R>))
        .with_state(kubelet)
}

/// Binds the server and serves it until `stop`, in the background; a failure to start is
/// logged (upstream's kubelet exits on it).
pub fn spawn<R>(
    opts: &crate::agent::Options,
    client: kube::Client,
    runtime: R,
    node_name: &str,
    node_ip: IpAddr,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()>
where
    R: Runtime + Streaming + Clone + 'static,
{
    let server = opts.server.clone();
    let root_dir = opts.root_dir.clone();
    let kubelet = Arc::new(Kubelet { runtime, client, node_name: node_name.to_string(), anonymous_auth: server.anonymous_auth });
    tokio::spawn(async move {
        if let Err(e) = serve(&server, &root_dir, node_ip, kubelet, stop).await {
            tracing::error!(error = %e, "the kubelet server failed to start");
        }
    })
}

/// Serves until `stop`.
pub async fn serve<R>(
    opts: &ServerOptions,
    root_dir: &std::path::Path,
    node_ip: IpAddr,
    kubelet: Arc<Kubelet<R>>,
    stop: CancellationToken,
) -> Result<(), Error>
where
    R: Runtime + Streaming + Clone + 'static,
{
    let (cert, key) =
        tls::serving_pair(opts.tls_cert_file.as_deref(), opts.tls_private_key_file.as_deref(), root_dir, &kubelet.node_name, &[node_ip])?;
    let acceptor = TlsAcceptor::from(Arc::new(tls::server_config(&cert, &key, opts.client_ca_file.as_deref())?));
    let addr = SocketAddr::new(opts.address, opts.port);
    let listener = TcpListener::bind(addr).await.map_err(|source| Error::Bind { addr, source })?;
    info!(address = %addr, "kubelet server listening");
    let router = app(kubelet);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    warn!(error = %e, "accepting a connection");
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let stream = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let verified = auth::Peer { certificate: stream.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty()) };
            let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(verified);
                let router = router.clone();
                async move { router.oneshot(req.map(axum::body::Body::new)).await }
            });
            let builder = ConnBuilder::new(TokioExecutor::new());
            if let Err(e) = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    info!("kubelet server stopped");
    Ok(())
}

/// A plain-text answer, as the kubelet's go-restful handlers write errors.
fn text(code: http::StatusCode, message: impl Into<String>) -> axum::response::Response {
    let mut resp = (code, message.into()).into_response();
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}
