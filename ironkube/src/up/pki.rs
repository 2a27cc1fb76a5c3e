//! The cluster's certificates and the admin kubeconfig, under the data dir.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};

use ironkube_apiserver::pki::{
    APISERVER_COMMON_NAME, CertKeyPair, CertificateAuthority, ClientIdentity, Kubeconfig, PkiError,
    ServingNames, first_service_ip, local_hostname, write_kubeconfig,
};

/// The user the API server is to kubelets (kubeadm's apiserver-kubelet-client, no groups).
pub const KUBELET_CLIENT_USER: &str = "kube-apiserver-kubelet-client";

/// What `up` issues: the CA, the API server's serving certificate, the admin's client
/// certificate and the API server's client certificate for kubelets (kubeadm's file names).
#[derive(Debug)]
pub struct ClusterCerts {
    pub ca: CertKeyPair,
    pub apiserver: CertKeyPair,
    pub admin: CertKeyPair,
    pub apiserver_kubelet_client: CertKeyPair,
}

/// Loads or creates the cluster's certificates in `dir`. The serving certificate names
/// loopback, this host, the service range's first IP and every address the API server may
/// be reached at.
pub fn ensure(
    dir: &Path,
    bind_address: IpAddr,
    advertise_address: Option<IpAddr>,
    service_cluster_ip_range: &str,
) -> Result<ClusterCerts, PkiError> {
    let ca = CertificateAuthority::load_or_create(dir, "ca")?;
    let mut addresses: Vec<IpAddr> = advertise_address.into_iter().collect();
    if !bind_address.is_unspecified() {
        addresses.push(bind_address);
    }
    addresses.extend(default_route_address());
    let names = ServingNames::kube_apiserver(
        local_hostname().as_deref(),
        &addresses,
        first_service_ip(service_cluster_ip_range),
    );
    let apiserver = ca.load_or_issue_serving(dir, "apiserver", APISERVER_COMMON_NAME, &names)?;
    let admin = ca.load_or_issue_client(dir, "admin", &ClientIdentity::admin())?;
    let kubelet_client = ClientIdentity {
        user: KUBELET_CLIENT_USER.to_string(),
        groups: Vec::new(),
    };
    let apiserver_kubelet_client =
        ca.load_or_issue_client(dir, "apiserver-kubelet-client", &kubelet_client)?;
    Ok(ClusterCerts {
        ca: ca.files.clone(),
        apiserver,
        admin,
        apiserver_kubelet_client,
    })
}

/// Writes the admin kubeconfig for an API server listening on `bound`.
pub fn write_admin_kubeconfig(
    path: &Path,
    bound: SocketAddr,
    certs: &ClusterCerts,
) -> Result<PathBuf, PkiError> {
    let server = server_url(bound);
    write_kubeconfig(
        path,
        &Kubeconfig::admin(&server, &certs.ca.cert_pem, &certs.admin),
    )?;
    tracing::info!(path = %path.display(), %server, "wrote the admin kubeconfig");
    Ok(path.to_path_buf())
}

/// The URL clients on this machine use: loopback when the server listens on every address.
fn server_url(bound: SocketAddr) -> String {
    let ip = bound.ip();
    if ip.is_unspecified() || ip.is_loopback() {
        format!("https://127.0.0.1:{}", bound.port())
    } else {
        format!("https://{bound}")
    }
}

/// The address this host uses towards its default route, if it has one (no packet is sent:
/// connecting a UDP socket only picks the route).
fn default_route_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind(("0.0.0.0", 0)).ok()?;
    socket.connect(("192.0.2.1", 9)).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        let url = |s: &str| server_url(s.parse().expect("addr"));
        assert_eq!(url("0.0.0.0:6443"), "https://127.0.0.1:6443");
        assert_eq!(url("[::]:6443"), "https://127.0.0.1:6443");
        assert_eq!(url("127.0.0.1:7000"), "https://127.0.0.1:7000");
        assert_eq!(url("192.0.2.7:6443"), "https://192.0.2.7:6443");
        assert_eq!(url("[fd00::7]:6443"), "https://[fd00::7]:6443");
    }

    #[test]
    fn certificates_are_created_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bind = IpAddr::from([127, 0, 0, 1]);
        let first = ensure(dir.path(), bind, None, "10.96.0.0/12").expect("certs");
        let again = ensure(dir.path(), bind, None, "10.96.0.0/12").expect("certs");
        assert_eq!(first.ca.cert_pem, again.ca.cert_pem);
        assert_eq!(first.apiserver.cert_pem, again.apiserver.cert_pem);
        assert_eq!(first.admin.cert_pem, again.admin.cert_pem);
        assert_eq!(
            first.apiserver_kubelet_client.cert_pem,
            again.apiserver_kubelet_client.cert_pem
        );
        assert!(dir.path().join("ca.key").is_file());
        assert!(dir.path().join("apiserver.crt").is_file());
        assert!(dir.path().join("apiserver-kubelet-client.key").is_file());
        let der = rustls::pki_types::pem::PemObject::from_pem_slice(
            first.apiserver_kubelet_client.cert_pem.as_bytes(),
        )
        .map(|d: rustls::pki_types::CertificateDer<'static>| d.to_vec())
        .expect("pem");
        let user = ironkube_apiserver::http::auth::UserInfo::from_certificate(&der).expect("CN");
        assert_eq!(user.name, KUBELET_CLIENT_USER);
        assert_eq!(user.groups, ["system:authenticated"]);
    }
}
