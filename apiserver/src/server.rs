//! Serving: etcd connection, TLS with optional client certificates, the accept loop,
//! bootstrap, readiness and periodic etcd compaction.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tracing::{info, warn};

use crate::admission::Chain;
use crate::http::auth::UserInfo;
use crate::http::{AppState, SharedState, app};
use crate::registry::Registry;
use crate::storage::Etcd3;
use crate::storage::etcd3::EtcdTls;
use crate::{Options, ServerError, bootstrap, pki};

fn read(what: &'static str, path: &std::path::Path) -> Result<Vec<u8>, ServerError> {
    std::fs::read(path).map_err(|source| ServerError::Read { what, path: path.to_path_buf(), source })
}

/// The serving certificate: the given files, or a self-signed pair in `--cert-dir`.
fn serving_pair(opts: &Options) -> Result<(Vec<u8>, Vec<u8>), ServerError> {
    if let (Some(cert), Some(key)) = (&opts.tls_cert_file, &opts.tls_private_key_file) {
        return Ok((read("--tls-cert-file", cert)?, read("--tls-private-key-file", key)?));
    }
    std::fs::create_dir_all(&opts.cert_dir).map_err(|source| ServerError::Read { what: "--cert-dir", path: opts.cert_dir.clone(), source })?;
    let ca = pki::CertificateAuthority::load_or_create(&opts.cert_dir, "apiserver-ca").map_err(|e| ServerError::Tls(e.to_string()))?;
    let advertise: Vec<IpAddr> = opts.advertise_address.into_iter().collect();
    let names = pki::ServingNames::kube_apiserver(pki::local_hostname().as_deref(), &advertise, pki::first_service_ip(&opts.service_cluster_ip_range));
    let pair = ca.load_or_issue_serving(&opts.cert_dir, "apiserver", "kube-apiserver", &names).map_err(|e| ServerError::Tls(e.to_string()))?;
    Ok((pair.cert_pem.into_bytes(), pair.key_pem.into_bytes()))
}

fn tls_config(opts: &Options) -> Result<rustls::ServerConfig, ServerError> {
    let (cert_pem, key_pem) = serving_pair(opts)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| ServerError::Tls(format!("serving certificate: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| ServerError::Tls(format!("serving key: {e}")))?;
    let builder = rustls::ServerConfig::builder();
    let builder = match &opts.client_ca_file {
        Some(path) => {
            let pem = read("--client-ca-file", path)?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| ServerError::Tls(format!("--client-ca-file: {e}")))?;
                roots.add(cert).map_err(|e| ServerError::Tls(format!("--client-ca-file: {e}")))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .allow_unauthenticated()
                .build()
                .map_err(|e| ServerError::Tls(format!("client verifier: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| ServerError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

async fn connect_etcd(opts: &Options) -> Result<Etcd3, ServerError> {
    let tls = if opts.etcd_cafile.is_some() || opts.etcd_certfile.is_some() {
        Some(EtcdTls {
            ca_pem: opts.etcd_cafile.as_deref().map(|p| read("--etcd-cafile", p)).transpose()?,
            cert_pem: opts.etcd_certfile.as_deref().map(|p| read("--etcd-certfile", p)).transpose()?,
            key_pem: opts.etcd_keyfile.as_deref().map(|p| read("--etcd-keyfile", p)).transpose()?,
        })
    } else {
        None
    };
    let mut last = None;
    for attempt in 0..30 {
        match Etcd3::connect(&opts.etcd_servers, tls.clone()).await {
            Ok(etcd) => match etcd.current_revision().await {
                Ok(_) => return Ok(etcd),
                Err(e) => last = Some(e.to_string()),
            },
            Err(e) => last = Some(e.to_string()),
        }
        if attempt % 5 == 0 {
            info!(endpoints = ?opts.etcd_servers, "waiting for etcd");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(ServerError::Bootstrap(format!("etcd at {:?} did not answer: {}", opts.etcd_servers, last.unwrap_or_default())))
}

/// Compacts etcd to the revision seen one interval ago, like upstream's compactor.
async fn compactor(etcd: Etcd3, interval: Duration) {
    if interval.is_zero() {
        return;
    }
    let mut previous = 0i64;
    loop {
        tokio::time::sleep(interval).await;
        let Ok(current) = etcd.current_revision().await else { continue };
        if previous > 0 {
            match etcd.compact(previous).await {
                Ok(()) => info!(revision = previous, "compacted etcd"),
                Err(e) => warn!(revision = previous, error = %e, "compacting etcd"),
            }
        }
        previous = current;
    }
}

/// Runs the API server until `shutdown`.
pub async fn run(
    opts: Options,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ready: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> Result<(), ServerError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let service_ip = pki::first_service_ip(&opts.service_cluster_ip_range)
        .ok_or_else(|| ServerError::Option(format!("--service-cluster-ip-range {:?} is not a CIDR", opts.service_cluster_ip_range)))?;
    let tls = TlsAcceptor::from(Arc::new(tls_config(&opts)?));
    let etcd = connect_etcd(&opts).await?;
    info!(endpoints = ?opts.etcd_servers, prefix = %opts.etcd_prefix, "connected to etcd");
    let allocator = crate::registry::service_alloc::ServiceAllocator::new(
        etcd.clone(),
        &opts.etcd_prefix,
        &opts.service_cluster_ip_range,
        &opts.service_node_port_range,
    )
    .ok_or_else(|| ServerError::Option(format!("invalid --service-node-port-range {:?}", opts.service_node_port_range)))?;
    let registry = Registry::new(etcd.clone(), &opts.etcd_prefix, Some(Arc::new(allocator)));
    let namespaces = registry.store("", "v1", "namespaces").cloned().ok_or_else(|| ServerError::Bootstrap("no namespaces store".into()))?;
    let service_accounts =
        registry.store("", "v1", "serviceaccounts").cloned().ok_or_else(|| ServerError::Bootstrap("no serviceaccounts store".into()))?;
    let priority_classes = registry
        .store("scheduling.k8s.io", "v1", "priorityclasses")
        .cloned()
        .ok_or_else(|| ServerError::Bootstrap("no priorityclasses store".into()))?;
    let quotas = registry.store("", "v1", "resourcequotas").cloned().ok_or_else(|| ServerError::Bootstrap("no resourcequotas store".into()))?;
    let runtime_classes =
        registry.store("node.k8s.io", "v1", "runtimeclasses").cloned().ok_or_else(|| ServerError::Bootstrap("no runtimeclasses store".into()))?;
    let limit_ranges = registry.store("", "v1", "limitranges").cloned().ok_or_else(|| ServerError::Bootstrap("no limitranges store".into()))?;
    let admission = Chain::upstream(crate::admission::Stores { namespaces, limit_ranges, service_accounts, priority_classes, runtime_classes, quotas });
    let addr = SocketAddr::new(opts.bind_address, opts.secure_port);
    let listener = TcpListener::bind(addr).await.map_err(|source| ServerError::Bind { addr, source })?;
    let local = listener.local_addr().map_err(|source| ServerError::Bind { addr, source })?;
    let endpoint_ip = opts
        .advertise_address
        .or_else(|| (!opts.bind_address.is_unspecified() && !opts.bind_address.is_loopback()).then_some(opts.bind_address))
        .or_else(bootstrap::host_address)
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let key_path = opts.service_account_signing_key_file.clone().unwrap_or_else(|| opts.cert_dir.join("sa.key"));
    let tokens = Arc::new(
        crate::serviceaccount_token::TokenSigner::load_or_create(&key_path, &opts.service_account_issuer).map_err(ServerError::Option)?,
    );
    let kubelet = crate::proxy::KubeletClient::new(&crate::proxy::KubeletClientConfig {
        client_certificate: opts.kubelet_client_certificate.clone(),
        client_key: opts.kubelet_client_key.clone(),
        certificate_authority: opts.kubelet_certificate_authority.clone(),
        preferred_address_types: opts.kubelet_preferred_address_types.clone(),
        timeout: opts.kubelet_timeout,
    })
    .map_err(|e| ServerError::Tls(e.to_string()))?;
    let state: SharedState = Arc::new(AppState {
        kubelet: Arc::new(kubelet),
        tokens: tokens.clone(),
        registry,
        admission: Arc::new(admission),
        server_address: format!("{endpoint_ip}:{}", local.port()),
        ready: AtomicBool::new(false),
        etcd: etcd.clone(),
    });
    let router = app(state.clone());
    info!(address = %local, "serving securely");

    // Bootstrap in the background, retried until it succeeds; then the server is ready.
    {
        let state = state.clone();
        let port = local.port();
        let service_cidrs: Vec<String> = opts.service_cluster_ip_range.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect();
        tokio::spawn(async move {
            loop {
                match bootstrap::run(&state, service_ip, &service_cidrs, endpoint_ip, port).await {
                    Ok(()) => break,
                    Err(e) => {
                        warn!(error = %e.message, "bootstrap failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
            state.registry.start_caches().await;
            info!(caches = state.registry.started_caches(), "watch caches started");
            state.ready.store(true, Ordering::Release);
            info!("bootstrap done; ready");
            if let Some(tx) = ready {
                let _ = tx.send(local);
            }
        });
    }
    tokio::spawn(compactor(etcd, opts.etcd_compaction_interval));

    let shutdown = shutdown;
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    warn!(error = %e, "accepting a connection");
                    continue;
                }
            },
        };
        let tls = tls.clone();
        let router = router.clone();
        let tokens = tokens.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let stream = match tokio::time::timeout(Duration::from_secs(10), tls.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let user = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .and_then(|c| UserInfo::from_certificate(c.as_ref()))
                .unwrap_or_else(UserInfo::anonymous);
            let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                let mut who = user.clone();
                let mut refused = false;
                if who.is_anonymous()
                    && let Some(token) = req
                        .headers()
                        .get(http::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("Bearer "))
                {
                    // A bearer token that does not verify is refused, not made anonymous.
                    match tokens.verify(token.trim(), &[], jiff::Timestamp::now().as_second()) {
                        Ok(id) => who = UserInfo { name: id.username(), groups: id.groups() },
                        Err(_) => refused = true,
                    }
                }
                req.extensions_mut().insert(who);
                let router = router.clone();
                async move {
                    if refused {
                        let err = ironkube_machinery::ApiError::new(401, ironkube_machinery::Reason::Unauthorized, "Unauthorized");
                        return Ok(axum::response::IntoResponse::into_response(crate::http::ErrorResponse(err)));
                    }
                    router.oneshot(req.map(axum::body::Body::new)).await
                }
            });
            let builder = ConnBuilder::new(TokioExecutor::new());
            if let Err(e) = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    info!("shutting down");
    Ok(())
}
