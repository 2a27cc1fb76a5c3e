//! `csrsigning` (upstream's `signer.go` and `authority/`): approved requests for the
//! `kubernetes.io/kube-apiserver-client`, `kube-apiserver-client-kubelet`, `kubelet-serving`
//! and `legacy-unknown` signers get a certificate from the cluster CA in
//! `status.certificate`; a request that does not fit its signer gets a `Failed` condition
//! instead. Certificates last `--cluster-signing-duration` or the shorter
//! `spec.expirationSeconds` (never under 10 minutes), backdated 5 minutes unless short-lived,
//! and never past the CA's own expiry.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{CertificateSigningRequest, CertificateSigningRequestCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use rcgen::{CertificateSigningRequestParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber};
use tokio_util::sync::CancellationToken;
use tracing::{info, instrument};

use super::{check_for_signer, has_condition, is_approved, is_issued, parse_request};

pub const NAME: &str = "csrsigning";

/// Requests may ask for a shorter life, but not shorter than this.
const MIN_DURATION: Duration = Duration::from_secs(600);
/// How far back `notBefore` is set, for clocks running behind.
const BACKDATE: Duration = Duration::from_secs(300);
/// Certificates shorter than this are not backdated at their end.
const SHORT: Duration = Duration::from_secs(8 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the signing CA {path}: {source}")]
    Read { path: String, #[source] source: std::io::Error },
    #[error("loading the signing CA: {0}")]
    Ca(String),
    #[error("unable to parse csr {name:?}: {message}")]
    Parse { name: String, message: String },
    #[error("error auto signing csr {name:?}: {message}")]
    Sign { name: String, message: String },
    #[error("error updating signature for csr {name:?}: {source}")]
    Update { name: String, #[source] source: kube::Error },
}

/// The cluster CA that signs, and for how long.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    /// The CA's own expiry, in seconds since the epoch.
    not_after: i64,
    ttl: Duration,
}

impl Authority {
    /// Loads the CA from PEM (`--cluster-signing-cert-file`/`--cluster-signing-key-file`).
    pub fn new(cert_pem: &str, key_pem: &str, ttl: Duration) -> Result<Self, Error> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| Error::Ca(format!("key: {e}")))?;
        let not_after = match x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()) {
            Ok((_, pem)) => pem.parse_x509().map_err(|e| Error::Ca(format!("certificate: {e}")))?.validity().not_after.timestamp(),
            Err(e) => return Err(Error::Ca(format!("certificate: {e}"))),
        };
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key).map_err(|e| Error::Ca(format!("certificate: {e}")))?;
        Ok(Authority { issuer, not_after, ttl })
    }

    /// Reads the CA files.
    pub fn load(cert_file: &std::path::Path, key_file: &std::path::Path, ttl: Duration) -> Result<Self, Error> {
        let read = |p: &std::path::Path| std::fs::read_to_string(p).map_err(|source| Error::Read { path: p.display().to_string(), source });
        Authority::new(&read(cert_file)?, &read(key_file)?, ttl)
    }

    /// Upstream's `duration`: the requested life within [10 min, the configured TTL].
    pub fn duration(&self, expiration_seconds: Option<i32>) -> Duration {
        match expiration_seconds {
            None => self.ttl,
            Some(secs) => Duration::from_secs(u64::try_from(secs).unwrap_or(0)).clamp(MIN_DURATION, self.ttl.max(MIN_DURATION)).min(self.ttl),
        }
    }

    /// Signs a PEM request with `usages` for `ttl`, at `now` (seconds since the epoch).
    pub fn sign(&self, request_pem: &str, usages: &[String], ttl: Duration, now: Duration) -> Result<String, String> {
        let (key_usages, extended) = key_usages(usages)?;
        let mut csr = CertificateSigningRequestParams::from_pem(request_pem).map_err(|e| format!("unable to parse certificate request: {e}"))?;
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        let not_before = now.saturating_sub(BACKDATE);
        let mut not_after = if ttl < SHORT { now + ttl } else { not_before + ttl };
        let ca_end = Duration::from_secs(u64::try_from(self.not_after).unwrap_or(0));
        if not_after >= ca_end {
            not_after = ca_end;
        }
        if now >= ca_end {
            return Err(format!("refusing to sign a certificate that expired in the past: NotAfter={}", self.not_after));
        }
        let params = &mut csr.params;
        params.not_before = epoch + not_before;
        params.not_after = epoch + not_after;
        let mut serial = *uuid::Uuid::new_v4().as_bytes();
        serial[0] &= 0x7f;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.key_usages = key_usages;
        params.extended_key_usages = extended;
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        params.custom_extensions.clear();
        let cert = csr.signed_by(&self.issuer).map_err(|e| format!("failed to sign certificate: {e}"))?;
        Ok(cert.pem())
    }
}

/// Upstream's `keyUsagesFromStrings`: the API's usage names as X.509 key usages and
/// extended key usages (sorted as Go's enumeration orders them).
pub fn key_usages(usages: &[String]) -> Result<(Vec<KeyUsagePurpose>, Vec<ExtendedKeyUsagePurpose>), String> {
    let mut plain: Vec<KeyUsagePurpose> = Vec::new();
    let mut extended: Vec<(u8, ExtendedKeyUsagePurpose)> = Vec::new();
    let mut unrecognized: Vec<&str> = Vec::new();
    for usage in usages {
        let key = match usage.as_str() {
            "signing" | "digital signature" => Some(KeyUsagePurpose::DigitalSignature),
            "content commitment" => Some(KeyUsagePurpose::ContentCommitment),
            "key encipherment" => Some(KeyUsagePurpose::KeyEncipherment),
            "key agreement" => Some(KeyUsagePurpose::KeyAgreement),
            "data encipherment" => Some(KeyUsagePurpose::DataEncipherment),
            "cert sign" => Some(KeyUsagePurpose::KeyCertSign),
            "crl sign" => Some(KeyUsagePurpose::CrlSign),
            "encipher only" => Some(KeyUsagePurpose::EncipherOnly),
            "decipher only" => Some(KeyUsagePurpose::DecipherOnly),
            _ => None,
        };
        if let Some(key) = key {
            if !plain.contains(&key) {
                plain.push(key);
            }
            continue;
        }
        // Go's ExtKeyUsage numbering decides the order.
        let ext = match usage.as_str() {
            "any" => Some((0, ExtendedKeyUsagePurpose::Any)),
            "server auth" => Some((1, ExtendedKeyUsagePurpose::ServerAuth)),
            "client auth" => Some((2, ExtendedKeyUsagePurpose::ClientAuth)),
            "code signing" => Some((3, ExtendedKeyUsagePurpose::CodeSigning)),
            "email protection" | "s/mime" => Some((4, ExtendedKeyUsagePurpose::EmailProtection)),
            "ipsec end system" => Some((5, ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 5]))),
            "ipsec tunnel" => Some((6, ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 6]))),
            "ipsec user" => Some((7, ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 7]))),
            "timestamping" => Some((8, ExtendedKeyUsagePurpose::TimeStamping)),
            "ocsp signing" => Some((9, ExtendedKeyUsagePurpose::OcspSigning)),
            "microsoft sgc" => Some((10, ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 4, 1, 311, 10, 3, 3]))),
            "netscape sgc" => Some((11, ExtendedKeyUsagePurpose::Other(vec![2, 16, 840, 1, 113730, 4, 1]))),
            _ => None,
        };
        match ext {
            Some(ext) if !extended.iter().any(|(n, _)| *n == ext.0) => extended.push(ext),
            Some(_) => {}
            None => unrecognized.push(usage),
        }
    }
    if !unrecognized.is_empty() {
        let quoted: Vec<String> = unrecognized.iter().map(|u| format!("{u:?}")).collect();
        return Err(format!("unrecognized usage values: [{}]", quoted.join(" ")));
    }
    extended.sort_by_key(|(n, _)| *n);
    Ok((plain, extended.into_iter().map(|(_, e)| e).collect()))
}

struct Ctx {
    client: kube::Client,
    authority: Authority,
}

fn since_epoch() -> Duration {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default()
}

#[instrument(skip_all, fields(controller = NAME, key = csr.metadata.name.as_deref().unwrap_or("")))]
async fn reconcile(csr: Arc<CertificateSigningRequest>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let name = csr.metadata.name.clone().unwrap_or_default();
    if is_issued(&csr) || !is_approved(&csr) || has_condition(&csr, "Failed") {
        return Ok(Action::await_change());
    }
    let usages = csr.spec.usages.clone().unwrap_or_default();
    let req = parse_request(&csr.spec.request.0).map_err(|message| Error::Parse { name: name.clone(), message })?;
    let mut updated = (*csr).clone();
    let status = updated.status.get_or_insert_with(Default::default);
    match check_for_signer(&csr.spec.signer_name, &req, &usages) {
        None => return Ok(Action::await_change()),
        Some(Err(message)) => {
            status.conditions.get_or_insert_with(Vec::new).push(CertificateSigningRequestCondition {
                type_: "Failed".into(),
                status: "True".into(),
                reason: Some("SignerValidationFailure".into()),
                message: Some(message),
                last_update_time: Some(Time(k8s_openapi::jiff::Timestamp::now())),
                ..Default::default()
            });
        }
        Some(Ok(())) => {
            let pem = String::from_utf8_lossy(&csr.spec.request.0).into_owned();
            let ttl = ctx.authority.duration(csr.spec.expiration_seconds);
            let certificate = ctx.authority.sign(&pem, &usages, ttl, since_epoch()).map_err(|message| Error::Sign { name: name.clone(), message })?;
            status.certificate = Some(ByteString(certificate.into_bytes()));
        }
    }
    let api: Api<CertificateSigningRequest> = Api::all(ctx.client.clone());
    api.replace_status(&name, &PostParams::default(), &updated).await.map_err(|source| Error::Update { name: name.clone(), source })?;
    info!(csr = %name, signer = %csr.spec.signer_name, failed = status_failed(&updated), "signed a certificate signing request");
    Ok(Action::await_change())
}

fn status_failed(csr: &CertificateSigningRequest) -> bool {
    has_condition(csr, "Failed")
}

pub async fn run(client: kube::Client, authority: Authority, stop: CancellationToken) {
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let controller = Controller::new(api, watcher::Config::default());
    info!("starting the certificate signing request signer");
    crate::runtime::drive(NAME, controller, Arc::new(Ctx { client, authority }), reconcile, stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::FromDer;

    fn authority(ttl: Duration) -> Authority {
        let key = KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.not_after = rcgen::date_time_ymd(2100, 1, 1);
        let cert = params.self_signed(&key).expect("ca");
        Authority::new(&cert.pem(), &key.serialize_pem(), ttl).expect("authority")
    }

    #[test]
    fn durations_as_upstream() {
        let a = authority(Duration::from_secs(8760 * 3600));
        assert_eq!(a.duration(None), Duration::from_secs(8760 * 3600));
        assert_eq!(a.duration(Some(60)), Duration::from_secs(600));
        assert_eq!(a.duration(Some(3600)), Duration::from_secs(3600));
        assert_eq!(a.duration(Some(i32::MAX)), Duration::from_secs(8760 * 3600));
    }

    #[test]
    fn usages_map_to_x509() {
        let u = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (plain, ext) = key_usages(&u(&["client auth", "digital signature", "server auth", "key encipherment"])).expect("usages");
        assert_eq!(plain, [KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment]);
        assert_eq!(ext, [ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth]);
        assert_eq!(key_usages(&u(&["bogus"])).err().as_deref(), Some("unrecognized usage values: [\"bogus\"]"));
    }

    #[test]
    fn signs_with_the_asked_life_and_usages() {
        let a = authority(Duration::from_secs(8760 * 3600));
        let key = KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "system:nodes");
        params.distinguished_name.push(rcgen::DnType::CommonName, "system:node:n1");
        let request = params.serialize_request(&key).expect("csr").pem().expect("pem");
        let now = Duration::from_secs(1_750_000_000);
        let usages = vec!["digital signature".to_string(), "client auth".to_string()];
        let pem = a.sign(&request, &usages, Duration::from_secs(3600), now).expect("signed");
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("pem");
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&block.contents).expect("cert");
        assert_eq!(cert.validity().not_before.timestamp(), 1_750_000_000 - 300);
        // Short-lived: the end is not backdated.
        assert_eq!(cert.validity().not_after.timestamp(), 1_750_000_000 + 3600);
        assert_eq!(cert.subject().iter_common_name().next().and_then(|c| c.as_str().ok()), Some("system:node:n1"));
        let eku = cert.extended_key_usage().expect("eku").expect("present").value;
        assert!(eku.client_auth && !eku.server_auth);
        assert!(!cert.is_ca());
        let long = a.sign(&request, &usages, Duration::from_secs(8760 * 3600), now).expect("signed");
        let (_, block) = x509_parser::pem::parse_x509_pem(long.as_bytes()).expect("pem");
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&block.contents).expect("cert");
        assert_eq!(cert.validity().not_after.timestamp(), 1_750_000_000 - 300 + 8760 * 3600);
    }
}
