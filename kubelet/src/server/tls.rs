//! The kubelet's TLS: its serving certificate (the given files, or, as upstream, a
//! self-signed one for the node's host name and addresses kept under
//! `<root-dir>/pki/kubelet.crt|key`) and, with `--client-ca-file`, client certificates
//! verified against that CA (a request may still come without one: see [`super::auth`]).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// What failed setting TLS up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {what} {path}: {source}")]
    Read {
        what: &'static str,
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
    #[error("generating the self-signed serving certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{what}: {message}")]
    Invalid { what: &'static str, message: String },
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Read { what, path: path.to_path_buf(), source })
}

/// Where the self-signed pair lives (upstream's `<cert-dir>/kubelet.crt|key`, the cert dir
/// defaulting to `<root-dir>/pki`).
pub fn self_signed_paths(root_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = root_dir.join("pki");
    (dir.join("kubelet.crt"), dir.join("kubelet.key"))
}

/// A self-signed serving certificate for `host` and `ips`, CN `<host>@<unix seconds>` as
/// upstream names it; returns the certificate and key PEM.
pub fn generate_self_signed(host: &str, ips: &[IpAddr]) -> Result<(String, String), Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    let now = jiff::Timestamp::now();
    dn.push(DnType::CommonName, format!("{host}@{}", now.as_second()));
    params.distinguished_name = dn;
    let mut sans = Vec::new();
    match host.parse::<IpAddr>() {
        Ok(ip) => sans.push(SanType::IpAddress(ip)),
        Err(_) => sans.push(SanType::DnsName(host.try_into()?)),
    }
    for ip in ips {
        if !sans.contains(&SanType::IpAddress(*ip)) {
            sans.push(SanType::IpAddress(*ip));
        }
    }
    params.subject_alt_names = sans;
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    let year = i32::from(now.to_zoned(jiff::tz::TimeZone::UTC).year());
    params.not_after = rcgen::date_time_ymd(year + 1, 1, 1);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The serving pair: the given files, or the self-signed pair under `root_dir` (created
/// when it cannot be read).
pub fn serving_pair(cert_file: Option<&Path>, key_file: Option<&Path>, root_dir: &Path, host: &str, ips: &[IpAddr]) -> Result<(Vec<u8>, Vec<u8>), Error> {
    if let (Some(cert), Some(key)) = (cert_file, key_file) {
        return Ok((read("--tls-cert-file", cert)?, read("--tls-private-key-file", key)?));
    }
    let (cert, key) = self_signed_paths(root_dir);
    if let (Ok(c), Ok(k)) = (std::fs::read(&cert), std::fs::read(&key)) {
        return Ok((c, k));
    }
    let (cert_pem, key_pem) = generate_self_signed(host, ips)?;
    let write = |path: &Path, data: &str, mode: u32| -> Result<(), Error> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let werr = |source| Error::Write { path: path.to_path_buf(), source };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(werr)?;
        }
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(path).map_err(werr)?;
        std::io::Write::write_all(&mut f, data.as_bytes()).map_err(werr)
    };
    write(&key, &key_pem, 0o600)?;
    write(&cert, &cert_pem, 0o644)?;
    tracing::info!(cert = %cert.display(), "generated a self-signed serving certificate");
    Ok((cert_pem.into_bytes(), key_pem.into_bytes()))
}

/// The server's rustls config: the serving pair, and client certificates verified against
/// `client_ca` when given (requests without one are let through, to be judged anonymous).
pub fn server_config(cert_pem: &[u8], key_pem: &[u8], client_ca: Option<&Path>) -> Result<rustls::ServerConfig, Error> {
    let invalid = |what: &'static str| move |e: &dyn std::fmt::Display| Error::Invalid { what, message: e.to_string() };
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert_pem).collect::<Result<_, _>>().map_err(|e| invalid("serving certificate")(&e))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| invalid("serving key")(&e))?;
    let builder = rustls::ServerConfig::builder();
    let builder = match client_ca {
        Some(path) => {
            let pem = read("--client-ca-file", path)?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| invalid("--client-ca-file")(&e))?;
                roots.add(cert).map_err(|e| invalid("--client-ca-file")(&e))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .allow_unauthenticated()
                .build()
                .map_err(|e| invalid("client certificate verifier")(&e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| invalid("serving certificate")(&e))?;
    // Streaming upgrades are HTTP/1.1; the API server's kubelet client asks for it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_pair_is_made_once_and_names_the_node() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let ips = [IpAddr::from([10, 0, 0, 7])];
        let (cert, key) = serving_pair(None, None, dir.path(), "node-a", &ips).expect("pair");
        let again = serving_pair(None, None, dir.path(), "node-a", &ips).expect("pair");
        assert_eq!((cert.clone(), key.clone()), again, "kept on disk and reused");
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dir.path().join("pki/kubelet.key")).expect("key").permissions());
        assert_eq!(mode & 0o777, 0o600);
        server_config(&cert, &key, None).expect("usable by rustls");
        let der = CertificateDer::from_pem_slice(&cert).expect("pem");
        let contains = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
        // The SAN extension holds the host name and the address as raw bytes (tag 0x87 = IP).
        assert!(contains(b"node-a") && contains(&[0x87, 4, 10, 0, 0, 7]), "names missing from the certificate");
    }
}
