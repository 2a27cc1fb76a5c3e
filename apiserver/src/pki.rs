//! A small certificate authority for single-machine clusters: the cluster CA, the API
//! server's serving certificate and client certificates, written as PEM files the way
//! kubeadm lays them out (`ca.crt`, `ca.key`, `apiserver.crt`, ...), plus kubeconfig files
//! that embed them.
//!
//! Everything is load-or-create: files that exist are reused, so a restart keeps the same
//! CA and every kubeconfig handed out before stays valid. A leaf certificate is issued
//! again (with a fresh key) only when it no longer fits: not signed by the CA, close to
//! expiry, or missing a name or group that is now asked for.

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// Validity of the cluster CA.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);
/// Validity of serving and client certificates (kubeadm's default is one year too).
const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// A leaf certificate closer than this to its expiry is issued again on load.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Certificates start being valid a little in the past, for clocks that disagree.
const BACKDATE: Duration = Duration::from_secs(60 * 60);

/// The cluster CA's common name (as kubeadm's).
pub const CA_COMMON_NAME: &str = "kubernetes";
/// The API server serving certificate's common name (as kubeadm's).
pub const APISERVER_COMMON_NAME: &str = "kube-apiserver";
/// The administrator's user name and group (as kubeadm's `admin.conf`, before 1.29's split).
pub const ADMIN_USER: &str = "kubernetes-admin";
pub const ADMIN_GROUP: &str = "system:masters";
/// Names used in generated kubeconfig files.
pub const CLUSTER_NAME: &str = "ironkube";

/// What went wrong creating, reading or writing certificates, keys or kubeconfigs.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a usable {what}: {reason}")]
    Invalid {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("{present} exists but {missing} does not; remove both to create a new pair")]
    HalfPair { present: PathBuf, missing: PathBuf },
    #[error("generating {what}: {source}")]
    Generate {
        what: String,
        #[source]
        source: rcgen::Error,
    },
}

/// A certificate and its private key, in PEM, with the files they live in.
#[derive(Debug, Clone)]
pub struct CertKeyPair {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub cert_pem: String,
    pub key_pem: String,
}

/// The cluster's certificate authority: signs serving and client certificates.
pub struct CertificateAuthority {
    pub files: CertKeyPair,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("cert_path", &self.files.cert_path)
            .finish_non_exhaustive()
    }
}

/// The names a serving certificate must carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServingNames {
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
}

impl ServingNames {
    /// The names of the API server as kubeadm gives them: loopback, the advertise
    /// addresses, the first IP of the service range (the `kubernetes` Service's ClusterIP),
    /// the in-cluster DNS names of that Service and the host name.
    pub fn kube_apiserver(
        hostname: Option<&str>,
        advertise_addresses: &[IpAddr],
        service_ip: Option<IpAddr>,
    ) -> Self {
        let mut names = ServingNames::default();
        for dns in [
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ] {
            names.add_dns(dns);
        }
        if let Some(hostname) = hostname.map(str::trim).filter(|h| !h.is_empty()) {
            names.add_dns(&hostname.to_ascii_lowercase());
        }
        names.add_ip(IpAddr::from([127, 0, 0, 1]));
        names.add_ip(IpAddr::from(std::net::Ipv6Addr::LOCALHOST));
        for ip in advertise_addresses {
            if !ip.is_unspecified() {
                names.add_ip(*ip);
            }
        }
        if let Some(ip) = service_ip {
            names.add_ip(ip);
        }
        names
    }

    fn add_dns(&mut self, name: &str) {
        if !self.dns_names.iter().any(|n| n == name) {
            self.dns_names.push(name.to_string());
        }
    }

    fn add_ip(&mut self, ip: IpAddr) {
        if !self.ips.contains(&ip) {
            self.ips.push(ip);
        }
    }
}

/// Who a client certificate says its holder is: the user (CN) and groups (O).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub user: String,
    pub groups: Vec<String>,
}

impl ClientIdentity {
    /// The cluster administrator, `kubernetes-admin` in `system:masters`.
    pub fn admin() -> Self {
        ClientIdentity {
            user: ADMIN_USER.to_string(),
            groups: vec![ADMIN_GROUP.to_string()],
        }
    }
}

impl CertificateAuthority {
    /// Loads `<dir>/<name>.crt` and `<dir>/<name>.key`, or creates a new self-signed CA
    /// (CN `kubernetes`, ten years) there when neither exists.
    pub fn load_or_create(dir: &Path, name: &str) -> Result<Self, PkiError> {
        let cert_path = dir.join(format!("{name}.crt"));
        let key_path = dir.join(format!("{name}.key"));
        match (cert_path.exists(), key_path.exists()) {
            (true, true) => Self::load(cert_path, key_path),
            (false, false) => Self::create(dir, cert_path, key_path),
            (true, false) => Err(PkiError::HalfPair {
                present: cert_path,
                missing: key_path,
            }),
            (false, true) => Err(PkiError::HalfPair {
                present: key_path,
                missing: cert_path,
            }),
        }
    }

    fn load(cert_path: PathBuf, key_path: PathBuf) -> Result<Self, PkiError> {
        let cert_pem = read(&cert_path)?;
        let key_pem = read(&key_path)?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| PkiError::Invalid {
            path: key_path.clone(),
            what: "private key",
            reason: e.to_string(),
        })?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| PkiError::Invalid {
            path: cert_path.clone(),
            what: "CA certificate",
            reason: e.to_string(),
        })?;
        Ok(CertificateAuthority {
            files: CertKeyPair {
                cert_path,
                key_path,
                cert_pem,
                key_pem,
            },
            issuer,
        })
    }

    fn create(dir: &Path, cert_path: PathBuf, key_path: PathBuf) -> Result<Self, PkiError> {
        let key = generate_key("the CA key")?;
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(CA_COMMON_NAME, &[]);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::KeyCertSign,
        ];
        set_validity(&mut params, CA_VALIDITY);
        let cert = params
            .self_signed(&key)
            .map_err(|source| PkiError::Generate {
                what: "the CA certificate".into(),
                source,
            })?;
        let files = CertKeyPair {
            cert_path,
            key_path,
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        write_pair(dir, &files)?;
        Ok(CertificateAuthority {
            files,
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads `<dir>/<name>.crt`/`.key` when it is a serving certificate from this CA that
    /// covers `names` and is not about to expire; otherwise issues a new one there.
    pub fn load_or_issue_serving(
        &self,
        dir: &Path,
        name: &str,
        common_name: &str,
        names: &ServingNames,
    ) -> Result<CertKeyPair, PkiError> {
        let want = Leaf::Serving(names);
        if let Some(existing) = self.reusable(dir, name, &want)? {
            return Ok(existing);
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(common_name, &[]);
        params.subject_alt_names = names
            .dns_names
            .iter()
            .map(|n| {
                n.clone()
                    .try_into()
                    .map(SanType::DnsName)
                    .map_err(|source| PkiError::Generate {
                        what: format!("the subject alternative name {n:?}"),
                        source,
                    })
            })
            .collect::<Result<_, _>>()?;
        params
            .subject_alt_names
            .extend(names.ips.iter().map(|ip| SanType::IpAddress(*ip)));
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(dir, name, params)
    }

    /// Loads `<dir>/<name>.crt`/`.key` when it is a client certificate from this CA for
    /// exactly `identity`; otherwise issues a new one there.
    pub fn load_or_issue_client(
        &self,
        dir: &Path,
        name: &str,
        identity: &ClientIdentity,
    ) -> Result<CertKeyPair, PkiError> {
        if let Some(existing) = self.reusable(dir, name, &Leaf::Client(identity))? {
            return Ok(existing);
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(&identity.user, &identity.groups);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(dir, name, params)
    }

    fn issue(
        &self,
        dir: &Path,
        name: &str,
        mut params: CertificateParams,
    ) -> Result<CertKeyPair, PkiError> {
        let key = generate_key(&format!("the key of {name}"))?;
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, LEAF_VALIDITY);
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|source| PkiError::Generate {
                what: format!("the certificate {name}"),
                source,
            })?;
        let files = CertKeyPair {
            cert_path: dir.join(format!("{name}.crt")),
            key_path: dir.join(format!("{name}.key")),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        write_pair(dir, &files)?;
        tracing::info!(cert = %files.cert_path.display(), "issued certificate");
        Ok(files)
    }

    /// The existing pair at `<dir>/<name>.*` if it is still what is wanted.
    fn reusable(
        &self,
        dir: &Path,
        name: &str,
        want: &Leaf<'_>,
    ) -> Result<Option<CertKeyPair>, PkiError> {
        let cert_path = dir.join(format!("{name}.crt"));
        let key_path = dir.join(format!("{name}.key"));
        if !cert_path.exists() || !key_path.exists() {
            return Ok(None);
        }
        let files = CertKeyPair {
            cert_pem: read(&cert_path)?,
            key_pem: read(&key_path)?,
            cert_path,
            key_path,
        };
        match self.why_not_reusable(&files, want) {
            None => Ok(Some(files)),
            Some(reason) => {
                tracing::info!(cert = %files.cert_path.display(), %reason, "issuing the certificate again");
                Ok(None)
            }
        }
    }

    fn why_not_reusable(&self, files: &CertKeyPair, want: &Leaf<'_>) -> Option<String> {
        if let Err(e) = KeyPair::from_pem(&files.key_pem) {
            return Some(format!("the key does not parse: {e}"));
        }
        let (_, pem) = match x509_parser::pem::parse_x509_pem(files.cert_pem.as_bytes()) {
            Ok(parsed) => parsed,
            Err(e) => return Some(format!("the certificate does not parse: {e}")),
        };
        let cert = match pem.parse_x509() {
            Ok(cert) => cert,
            Err(e) => return Some(format!("the certificate does not parse: {e}")),
        };
        let (_, ca_pem) = match x509_parser::pem::parse_x509_pem(self.files.cert_pem.as_bytes()) {
            Ok(parsed) => parsed,
            Err(e) => return Some(format!("the CA certificate does not parse: {e}")),
        };
        let ca = match ca_pem.parse_x509() {
            Ok(ca) => ca,
            Err(e) => return Some(format!("the CA certificate does not parse: {e}")),
        };
        if cert.verify_signature(Some(ca.public_key())).is_err() {
            return Some("it is not signed by the current CA".into());
        }
        match cert.validity().time_to_expiration() {
            Some(left) if left.whole_seconds() > RENEW_BEFORE.as_secs() as i64 => {}
            _ => return Some("it expires within 30 days".into()),
        }
        match want {
            Leaf::Serving(names) => {
                let (dns, ips) = subject_alt_names(&cert);
                if let Some(missing) = names.dns_names.iter().find(|n| !dns.contains(n)) {
                    return Some(format!("it does not name {missing}"));
                }
                if let Some(missing) = names.ips.iter().find(|ip| !ips.contains(ip)) {
                    return Some(format!("it does not name {missing}"));
                }
            }
            Leaf::Client(identity) => {
                let user: Vec<&str> = cert
                    .subject()
                    .iter_common_name()
                    .filter_map(|a| a.as_str().ok())
                    .collect();
                let mut groups: Vec<&str> = cert
                    .subject()
                    .iter_organization()
                    .filter_map(|a| a.as_str().ok())
                    .collect();
                let mut wanted: Vec<&str> = identity.groups.iter().map(String::as_str).collect();
                groups.sort_unstable();
                wanted.sort_unstable();
                if user != [identity.user.as_str()] || groups != wanted {
                    return Some("it is for another user or other groups".into());
                }
            }
        }
        None
    }
}

enum Leaf<'a> {
    Serving(&'a ServingNames),
    Client(&'a ClientIdentity),
}

fn subject_alt_names(
    cert: &x509_parser::certificate::X509Certificate<'_>,
) -> (Vec<String>, Vec<IpAddr>) {
    use x509_parser::extensions::GeneralName;
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) => dns.push(n.to_string()),
                GeneralName::IPAddress(bytes) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                        ips.push(IpAddr::from(v4));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                        ips.push(IpAddr::from(v6));
                    }
                }
                _ => {}
            }
        }
    }
    (dns, ips)
}

/// The first address of a service CIDR such as `10.96.0.0/12` (`10.96.0.1`): the ClusterIP
/// of the `kubernetes` Service. For a dual-stack list (`a,b`) the first range counts.
pub fn first_service_ip(service_cluster_ip_range: &str) -> Option<IpAddr> {
    let first = service_cluster_ip_range.split(',').next()?.trim();
    let (addr, prefix) = first.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    let prefix: u32 = prefix.parse().ok()?;
    match addr {
        IpAddr::V4(v4) => {
            if prefix > 32 {
                return None;
            }
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            let network = u32::from(v4) & mask;
            Some(IpAddr::from(std::net::Ipv4Addr::from(
                network.checked_add(1)?,
            )))
        }
        IpAddr::V6(v6) => {
            if prefix > 128 {
                return None;
            }
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            let network = u128::from(v6) & mask;
            Some(IpAddr::from(std::net::Ipv6Addr::from(
                network.checked_add(1)?,
            )))
        }
    }
}

/// The host name of this machine, as the kernel reports it.
pub fn local_hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// A kubeconfig with one cluster, one user and one context, credentials embedded.
#[derive(Debug, Clone)]
pub struct Kubeconfig<'a> {
    pub server: &'a str,
    pub ca_pem: &'a str,
    pub client_cert_pem: &'a str,
    pub client_key_pem: &'a str,
    pub cluster_name: &'a str,
    pub user_name: &'a str,
    pub context_name: String,
}

impl<'a> Kubeconfig<'a> {
    /// The administrator's kubeconfig: cluster `ironkube`, user `kubernetes-admin`, context
    /// `kubernetes-admin@ironkube` (kubeadm's naming).
    pub fn admin(server: &'a str, ca_pem: &'a str, client: &'a CertKeyPair) -> Self {
        Kubeconfig {
            server,
            ca_pem,
            client_cert_pem: &client.cert_pem,
            client_key_pem: &client.key_pem,
            cluster_name: CLUSTER_NAME,
            user_name: ADMIN_USER,
            context_name: format!("{ADMIN_USER}@{CLUSTER_NAME}"),
        }
    }

    /// The kubeconfig document, YAML.
    pub fn to_yaml(&self) -> String {
        use base64::Engine as _;
        let b64 = |pem: &str| base64::engine::general_purpose::STANDARD.encode(pem.as_bytes());
        // JSON string literals are valid YAML double-quoted scalars: no name can break out.
        let q = |s: &str| serde_json::Value::from(s).to_string();
        format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: {cluster}\n\
             \x20 cluster:\n\
             \x20   server: {server}\n\
             \x20   certificate-authority-data: {ca}\n\
             users:\n\
             - name: {user}\n\
             \x20 user:\n\
             \x20   client-certificate-data: {cert}\n\
             \x20   client-key-data: {key}\n\
             contexts:\n\
             - name: {context}\n\
             \x20 context:\n\
             \x20   cluster: {cluster}\n\
             \x20   user: {user}\n\
             current-context: {context}\n\
             preferences: {{}}\n",
            cluster = q(self.cluster_name),
            server = q(self.server),
            ca = b64(self.ca_pem),
            user = q(self.user_name),
            cert = b64(self.client_cert_pem),
            key = b64(self.client_key_pem),
            context = q(&self.context_name),
        )
    }
}

/// Writes `kubeconfig` to `path` (mode 0600, replacing any file there atomically).
pub fn write_kubeconfig(path: &Path, kubeconfig: &Kubeconfig<'_>) -> Result<(), PkiError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| PkiError::Write {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    write_file(path, kubeconfig.to_yaml().as_bytes(), 0o600)
}

fn generate_key(what: &str) -> Result<KeyPair, PkiError> {
    KeyPair::generate().map_err(|source| PkiError::Generate {
        what: what.to_string(),
        source,
    })
}

fn distinguished_name(common_name: &str, organizations: &[String]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for org in organizations {
        dn.push(DnType::OrganizationName, org.as_str());
    }
    dn.push(DnType::CommonName, common_name);
    dn
}

fn set_validity(params: &mut CertificateParams, validity: Duration) {
    let since_epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let now = rcgen::date_time_ymd(1970, 1, 1) + since_epoch;
    params.not_before = now - BACKDATE;
    params.not_after = now + validity;
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|source| PkiError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn write_pair(dir: &Path, files: &CertKeyPair) -> Result<(), PkiError> {
    std::fs::create_dir_all(dir).map_err(|source| PkiError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    write_file(&files.key_path, files.key_pem.as_bytes(), 0o600)?;
    write_file(&files.cert_path, files.cert_pem.as_bytes(), 0o644)
}

/// Writes through a temporary file in the same directory and renames it into place, so a
/// reader never sees half a file and a crash never leaves one.
fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    let err = |source| PkiError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    file.write_all(contents).map_err(err)?;
    file.sync_all().map_err(err)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn parse(pem: &str) -> Vec<u8> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("PEM");
        pem.contents
    }

    fn names() -> ServingNames {
        ServingNames::kube_apiserver(
            Some("node-1"),
            &["192.0.2.10".parse().expect("ip")],
            first_service_ip("10.96.0.0/12"),
        )
    }

    #[test]
    fn serving_and_client_certificates_verify_against_the_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::load_or_create(dir.path(), "ca").expect("ca");
        let serving = ca
            .load_or_issue_serving(dir.path(), "apiserver", APISERVER_COMMON_NAME, &names())
            .expect("serving");
        let admin = ca
            .load_or_issue_client(dir.path(), "admin", &ClientIdentity::admin())
            .expect("client");

        let ca_der = parse(&ca.files.cert_pem);
        let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca_der).expect("ca cert");
        assert!(ca_cert.is_ca());
        assert_eq!(
            ca_cert
                .subject()
                .iter_common_name()
                .next()
                .and_then(|a| a.as_str().ok()),
            Some(CA_COMMON_NAME)
        );

        let serving_der = parse(&serving.cert_pem);
        let (_, cert) = x509_parser::parse_x509_certificate(&serving_der).expect("cert");
        cert.verify_signature(Some(ca_cert.public_key()))
            .expect("signed by the CA");
        let (dns, ips) = subject_alt_names(&cert);
        for want in [
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "node-1",
        ] {
            assert!(dns.iter().any(|d| d == want), "missing {want} in {dns:?}");
        }
        for want in ["127.0.0.1", "::1", "10.96.0.1", "192.0.2.10"] {
            let want: IpAddr = want.parse().expect("ip");
            assert!(ips.contains(&want), "missing {want} in {ips:?}");
        }

        let admin_der = parse(&admin.cert_pem);
        let (_, client) = x509_parser::parse_x509_certificate(&admin_der).expect("client");
        client
            .verify_signature(Some(ca_cert.public_key()))
            .expect("signed by the CA");
        let org: Vec<_> = client
            .subject()
            .iter_organization()
            .filter_map(|a| a.as_str().ok())
            .collect();
        assert_eq!(org, [ADMIN_GROUP]);

        let mode = std::fs::metadata(&admin.key_path)
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = std::fs::metadata(&ca.files.key_path)
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn existing_files_are_reused_and_reissued_when_names_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::load_or_create(dir.path(), "ca").expect("ca");
        let first = ca
            .load_or_issue_serving(dir.path(), "apiserver", APISERVER_COMMON_NAME, &names())
            .expect("serving");

        let again = CertificateAuthority::load_or_create(dir.path(), "ca").expect("reload");
        assert_eq!(again.files.cert_pem, ca.files.cert_pem);
        let second = again
            .load_or_issue_serving(dir.path(), "apiserver", APISERVER_COMMON_NAME, &names())
            .expect("serving");
        assert_eq!(second.cert_pem, first.cert_pem);

        let mut more = names();
        more.dns_names.push("api.example".into());
        let third = again
            .load_or_issue_serving(dir.path(), "apiserver", APISERVER_COMMON_NAME, &more)
            .expect("serving");
        assert_ne!(third.cert_pem, first.cert_pem);

        let other = ClientIdentity {
            user: "alice".into(),
            groups: vec!["dev".into()],
        };
        let admin = again
            .load_or_issue_client(dir.path(), "user", &ClientIdentity::admin())
            .expect("admin");
        let alice = again
            .load_or_issue_client(dir.path(), "user", &other)
            .expect("alice");
        assert_ne!(admin.cert_pem, alice.cert_pem);
    }

    #[test]
    fn a_certificate_without_its_key_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::load_or_create(dir.path(), "ca").expect("ca");
        std::fs::remove_file(&ca.files.key_path).expect("remove");
        let err = CertificateAuthority::load_or_create(dir.path(), "ca").expect_err("half pair");
        assert!(matches!(err, PkiError::HalfPair { .. }), "{err}");
    }

    #[test]
    fn kubeconfig_is_yaml_with_embedded_credentials() {
        use base64::Engine as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::load_or_create(dir.path(), "ca").expect("ca");
        let admin = ca
            .load_or_issue_client(dir.path(), "admin", &ClientIdentity::admin())
            .expect("client");
        let path = dir.path().join("conf").join("admin.kubeconfig");
        let config = Kubeconfig::admin("https://127.0.0.1:6443", &ca.files.cert_pem, &admin);
        write_kubeconfig(&path, &config).expect("write");

        let text = std::fs::read_to_string(&path).expect("read");
        let doc: serde_json::Value = serde_saphyr::from_str(&text).expect("YAML");
        assert_eq!(doc["kind"], "Config");
        assert_eq!(doc["current-context"], "kubernetes-admin@ironkube");
        assert_eq!(doc["contexts"][0]["context"]["cluster"], "ironkube");
        assert_eq!(doc["contexts"][0]["context"]["user"], "kubernetes-admin");
        assert_eq!(
            doc["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:6443"
        );
        let decode = |v: &serde_json::Value| {
            let s = v.as_str().expect("string");
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .expect("b64"),
            )
            .expect("utf8")
        };
        assert_eq!(
            decode(&doc["clusters"][0]["cluster"]["certificate-authority-data"]),
            ca.files.cert_pem
        );
        assert_eq!(
            decode(&doc["users"][0]["user"]["client-certificate-data"]),
            admin.cert_pem
        );
        assert_eq!(
            decode(&doc["users"][0]["user"]["client-key-data"]),
            admin.key_pem
        );
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn first_service_ips() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().expect("ip"));
        assert_eq!(first_service_ip("10.96.0.0/12"), ip("10.96.0.1"));
        assert_eq!(first_service_ip("10.96.5.7/12"), ip("10.96.0.1"));
        assert_eq!(
            first_service_ip("fd00:10:96::/112,10.0.0.0/24"),
            ip("fd00:10:96::1")
        );
        assert_eq!(first_service_ip("10.0.0.0/33"), None);
        assert_eq!(first_service_ip("nonsense"), None);
    }
}
