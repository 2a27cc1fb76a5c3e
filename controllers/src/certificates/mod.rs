//! CertificateSigningRequests (upstream's `pkg/controller/certificates`): the kubelet
//! client approver (`csrapproving`), the cluster CA's signer (`csrsigning`) and the cleaner
//! of old requests (`csrcleaner`), plus what they share: the condition checks and the
//! parsed request with upstream's per-signer rules.

pub mod approver;
pub mod cleaner;
pub mod signer;

use std::collections::BTreeSet;
use std::net::IpAddr;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

pub const KUBE_APISERVER_CLIENT: &str = "kubernetes.io/kube-apiserver-client";
pub const KUBE_APISERVER_CLIENT_KUBELET: &str = "kubernetes.io/kube-apiserver-client-kubelet";
pub const KUBELET_SERVING: &str = "kubernetes.io/kubelet-serving";
pub const LEGACY_UNKNOWN: &str = "kubernetes.io/legacy-unknown";

/// Whether condition `type_` is present and true (upstream counts an empty status as true
/// for Approved and Denied, which predate the status field).
pub fn has_condition(csr: &CertificateSigningRequest, type_: &str) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| conditions.iter().any(|c| c.type_ == type_ && (c.status.is_empty() || c.status == "True")))
}

/// Upstream's `IsCertificateRequestApproved`: approved and not denied.
pub fn is_approved(csr: &CertificateSigningRequest) -> bool {
    has_condition(csr, "Approved") && !has_condition(csr, "Denied")
}

/// Whether the request already carries a certificate.
pub fn is_issued(csr: &CertificateSigningRequest) -> bool {
    csr.status.as_ref().and_then(|s| s.certificate.as_ref()).is_some_and(|c| !c.0.is_empty())
}

/// What the signer rules look at in a PKCS#10 request.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Request {
    pub common_name: String,
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    pub emails: Vec<String>,
    pub uris: Vec<String>,
}

/// Parses `spec.request` (upstream's `ParseCSR` errors included), checking its signature.
pub fn parse_request(pem: &[u8]) -> Result<Request, String> {
    let block = match x509_parser::pem::parse_x509_pem(pem) {
        Ok((_, block)) if block.label == "CERTIFICATE REQUEST" => block,
        _ => return Err("PEM block type must be CERTIFICATE REQUEST".into()),
    };
    let (_, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(&block.contents).map_err(|e| e.to_string())?;
    csr.verify_signature().map_err(|e| format!("x509: invalid signature: {e}"))?;
    let info = &csr.certification_request_info;
    let text = |attr: &x509_parser::x509::AttributeTypeAndValue<'_>| attr.as_str().map(str::to_string).unwrap_or_default();
    let mut request = Request {
        common_name: info.subject.iter_common_name().next().map(text).unwrap_or_default(),
        organizations: info.subject.iter_organization().map(text).collect(),
        ..Default::default()
    };
    for extension in csr.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = extension {
            for name in &san.general_names {
                match name {
                    GeneralName::DNSName(dns) => request.dns_names.push(dns.to_string()),
                    GeneralName::RFC822Name(email) => request.emails.push(email.to_string()),
                    GeneralName::URI(uri) => request.uris.push(uri.to_string()),
                    GeneralName::IPAddress(bytes) => {
                        if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                            request.ip_addresses.push(IpAddr::from(v4));
                        } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                            request.ip_addresses.push(IpAddr::from(v6));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(request)
}

fn usage_set(usages: &[String]) -> BTreeSet<&str> {
    usages.iter().map(String::as_str).collect()
}

fn usages_match(usages: &[String], with_rsa: &[&str], without_rsa: &[&str]) -> bool {
    let have = usage_set(usages);
    have == with_rsa.iter().copied().collect() || have == without_rsa.iter().copied().collect()
}

/// Upstream's `ValidateKubeletClientCSR`.
pub fn validate_kubelet_client(req: &Request, usages: &[String]) -> Result<(), String> {
    if req.organizations != ["system:nodes"] {
        return Err("subject organization is not system:nodes".into());
    }
    if !req.dns_names.is_empty() {
        return Err("DNS subjectAltNames are not allowed".into());
    }
    if !req.emails.is_empty() {
        return Err("Email subjectAltNames are not allowed".into());
    }
    if !req.ip_addresses.is_empty() {
        return Err("IP subjectAltNames are not allowed".into());
    }
    if !req.uris.is_empty() {
        return Err("URI subjectAltNames are not allowed".into());
    }
    if !req.common_name.starts_with("system:node:") {
        return Err("subject common name does not begin with system:node:".into());
    }
    if !usages_match(usages, &["client auth", "digital signature", "key encipherment"], &["client auth", "digital signature"]) {
        return Err("usages did not match [client auth digital signature key encipherment]".into());
    }
    Ok(())
}

/// Upstream's `ValidateKubeletServingCSR`.
pub fn validate_kubelet_serving(req: &Request, usages: &[String]) -> Result<(), String> {
    if req.organizations != ["system:nodes"] {
        return Err("subject organization is not system:nodes".into());
    }
    if req.dns_names.is_empty() && req.ip_addresses.is_empty() {
        return Err("DNS or IP subjectAltName is required".into());
    }
    if !req.emails.is_empty() {
        return Err("Email subjectAltNames are not allowed".into());
    }
    if !req.uris.is_empty() {
        return Err("URI subjectAltNames are not allowed".into());
    }
    if !usages_match(usages, &["digital signature", "key encipherment", "server auth"], &["digital signature", "server auth"]) {
        return Err("usages did not match [digital signature key encipherment server auth]".into());
    }
    if !req.common_name.starts_with("system:node:") {
        return Err("subject common name does not begin with system:node:".into());
    }
    Ok(())
}

/// Upstream's `validAPIServerClientUsages`.
pub fn validate_apiserver_client(usages: &[String]) -> Result<(), String> {
    let mut client_auth = false;
    for usage in usages {
        match usage.as_str() {
            "digital signature" | "key encipherment" => {}
            "client auth" => client_auth = true,
            other => return Err(format!("invalid usage for client certificate: {other}")),
        }
    }
    if !client_auth {
        return Err("missing required usage for client certificate: client auth".into());
    }
    Ok(())
}

/// The signer's verdict on a request for `signer_name`: `None` when it is not one of the
/// signers it serves, else whether the request fits that signer.
pub fn check_for_signer(signer_name: &str, req: &Request, usages: &[String]) -> Option<Result<(), String>> {
    match signer_name {
        KUBELET_SERVING => Some(validate_kubelet_serving(req, usages)),
        KUBE_APISERVER_CLIENT_KUBELET => Some(validate_kubelet_client(req, usages)),
        KUBE_APISERVER_CLIENT => Some(validate_apiserver_client(usages)),
        LEGACY_UNKNOWN => Some(Ok(())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node_client() -> Request {
        Request { common_name: "system:node:n1".into(), organizations: vec!["system:nodes".into()], ..Default::default() }
    }

    fn usages(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// What is checked, the request, its usages and the verdict.
    type Case = (&'static str, Request, Vec<String>, Result<(), &'static str>);

    #[test]
    fn kubelet_client_rules() {
        let ok = usages(&["digital signature", "key encipherment", "client auth"]);
        let no_rsa = usages(&["client auth", "digital signature"]);
        let mut with_dns = node_client();
        with_dns.dns_names.push("n1".into());
        let mut wrong_cn = node_client();
        wrong_cn.common_name = "n1".into();
        let mut two_orgs = node_client();
        two_orgs.organizations.push("x".into());
        let cases: Vec<Case> = vec![
            ("fits", node_client(), ok.clone(), Ok(())),
            ("fits without rsa usages", node_client(), no_rsa, Ok(())),
            ("dns", with_dns, ok.clone(), Err("DNS subjectAltNames are not allowed")),
            ("cn", wrong_cn, ok.clone(), Err("subject common name does not begin with system:node:")),
            ("orgs", two_orgs, ok, Err("subject organization is not system:nodes")),
            ("usages", node_client(), usages(&["client auth"]), Err("usages did not match [client auth digital signature key encipherment]")),
        ];
        for (what, req, u, want) in cases {
            assert_eq!(validate_kubelet_client(&req, &u), want.map_err(String::from), "{what}");
        }
    }

    #[test]
    fn signer_rules_by_name() {
        let req = node_client();
        assert_eq!(check_for_signer("example.com/x", &req, &[]), None);
        assert_eq!(check_for_signer(LEGACY_UNKNOWN, &req, &[]), Some(Ok(())));
        assert_eq!(check_for_signer(KUBE_APISERVER_CLIENT, &req, &usages(&["client auth", "digital signature"])), Some(Ok(())));
        assert_eq!(
            check_for_signer(KUBE_APISERVER_CLIENT, &req, &usages(&["server auth"])),
            Some(Err("invalid usage for client certificate: server auth".into()))
        );
        assert_eq!(
            check_for_signer(KUBE_APISERVER_CLIENT, &req, &usages(&["digital signature"])),
            Some(Err("missing required usage for client certificate: client auth".into()))
        );
        assert_eq!(
            check_for_signer(KUBELET_SERVING, &req, &usages(&["digital signature", "server auth"])),
            Some(Err("DNS or IP subjectAltName is required".into()))
        );
    }

    #[test]
    fn parses_a_request() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec!["n1.example".to_string()]).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "system:nodes");
        params.distinguished_name.push(rcgen::DnType::CommonName, "system:node:n1");
        let pem = params.serialize_request(&key).expect("csr").pem().expect("pem");
        let req = parse_request(pem.as_bytes()).expect("parsed");
        assert_eq!(req.common_name, "system:node:n1");
        assert_eq!(req.organizations, ["system:nodes"]);
        assert_eq!(req.dns_names, ["n1.example"]);
        assert_eq!(parse_request(b"garbage"), Err("PEM block type must be CERTIFICATE REQUEST".into()));
    }
}
