//! CertificateSigningRequests inside `ironkube up`: a kubelet client request made with
//! openssl is auto-approved after a SubjectAccessReview (the admin is allowed) and signed
//! by the cluster CA with the asked usages and life (`openssl verify`); a request for
//! another signer waits for a person: denied it stays unsigned, approved it is signed, and
//! one whose usages do not fit its signer fails instead.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::{Ironkube, describe, eventually};

const KUBECTL: &str = "1.33";

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl").args(args).output().expect("running openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An EC key and a PEM request for `subject` in `dir`; returns the request, base64'd.
fn request(dir: &Path, name: &str, subject: &str) -> String {
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &key.display().to_string()]);
    openssl(&["req", "-new", "-key", &key.display().to_string(), "-subj", subject, "-out", &csr.display().to_string()]);
    openssl(&["base64", "-A", "-in", &csr.display().to_string()]).trim().to_string()
}

fn create_csr(cluster: &Ironkube, dir: &Path, name: &str, request: &str, signer: &str, usages: &[&str], expiration: Option<i64>) {
    let mut spec = serde_json::json!({"request": request, "signerName": signer, "usages": usages});
    if let Some(secs) = expiration {
        spec["expirationSeconds"] = secs.into();
    }
    let manifest = serde_json::json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": name}, "spec": spec});
    let file = dir.join(format!("{name}.json"));
    std::fs::write(&file, manifest.to_string()).expect("writing the manifest");
    cluster.kubectl_ok(KUBECTL, &["create", "-f", &file.display().to_string()]);
}

fn csr(cluster: &Ironkube, name: &str) -> Result<Value, String> {
    cluster.kubectl_json(KUBECTL, &["get", "csr", name])
}

fn condition(csr: &Value, type_: &str) -> Option<Value> {
    csr["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_).cloned()
}

fn issued(cluster: &Ironkube, name: &str) -> Value {
    eventually(&format!("csr {name} issued"), || {
        let c = csr(cluster, name)?;
        if c["status"]["certificate"].as_str().is_some_and(|s| !s.is_empty()) { Ok(c) } else { Err(format!("{c}")) }
    })
}

/// Writes the issued certificate of `c` to `dir/<name>.crt`.
fn certificate_file(dir: &Path, name: &str, c: &Value) -> String {
    let b64 = c["status"]["certificate"].as_str().expect("certificate");
    let encoded = dir.join(format!("{name}.crt.b64"));
    std::fs::write(&encoded, b64).expect("writing");
    let file = dir.join(format!("{name}.crt"));
    openssl(&["base64", "-d", "-A", "-in", &encoded.display().to_string(), "-out", &file.display().to_string()]);
    file.display().to_string()
}

#[test]
fn kubelet_client_requests_are_approved_and_signed_others_wait_for_a_person() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let cluster = Ironkube::up_with(&data, &["--simulated-nodes", "1"]);
    let ca = data.join("pki").join("ca.crt").display().to_string();

    // A kubelet client request, created by the admin: the review allows it.
    let kubelet = request(tmp.path(), "kubelet", "/O=system:nodes/CN=system:node:sim-node-0");
    create_csr(&cluster, tmp.path(), "node-client", &kubelet, "kubernetes.io/kube-apiserver-client-kubelet", &["digital signature", "client auth"], Some(3600));
    let c = issued(&cluster, "node-client");
    let approved = condition(&c, "Approved").expect("approved");
    assert_eq!(approved["status"], "True", "{c}");
    assert_eq!(approved["reason"], "AutoApproved", "{c}");
    assert_eq!(approved["message"], "Auto approving kubelet client certificate after SubjectAccessReview.", "{c}");
    let cert = certificate_file(tmp.path(), "node-client", &c);
    let verified = openssl(&["verify", "-CAfile", &ca, &cert]);
    assert!(verified.contains(": OK"), "{verified}");
    let text = openssl(&["x509", "-noout", "-text", "-in", &cert]);
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(!text.contains("TLS Web Server Authentication"), "{text}");
    assert!(text.contains("Digital Signature"), "{text}");
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(text.contains("system:node:sim-node-0"), "{text}");
    // One hour asked for: valid for the next 55 minutes, gone within 65.
    let long_enough = Command::new("openssl").args(["x509", "-noout", "-checkend", "3300", "-in", &cert]).status().expect("openssl");
    assert!(long_enough.success(), "the certificate ends within 55 minutes");
    let not_too_long = Command::new("openssl").args(["x509", "-noout", "-checkend", "3900", "-in", &cert]).status().expect("openssl");
    assert!(!not_too_long.success(), "the certificate outlives 65 minutes:\n{text}");

    // Another signer: nobody approves it; denied, it stays unsigned.
    let alice = request(tmp.path(), "alice", "/O=devs/CN=alice");
    create_csr(&cluster, tmp.path(), "alice", &alice, "kubernetes.io/kube-apiserver-client", &["client auth"], None);
    cluster.kubectl_ok(KUBECTL, &["certificate", "deny", "alice"]);
    let denied = eventually("alice denied", || {
        let c = csr(&cluster, "alice")?;
        if condition(&c, "Denied").is_some() { Ok(c) } else { Err(format!("{c}")) }
    });
    assert!(condition(&denied, "Approved").is_none(), "{denied}");

    // Approved by hand, the same kind of request is signed; with usages its signer does not
    // allow, it fails.
    let bob = request(tmp.path(), "bob", "/O=devs/CN=bob");
    create_csr(&cluster, tmp.path(), "bob", &bob, "kubernetes.io/kube-apiserver-client", &["client auth", "digital signature"], None);
    cluster.kubectl_ok(KUBECTL, &["certificate", "approve", "bob"]);
    let signed = issued(&cluster, "bob");
    let cert = certificate_file(tmp.path(), "bob", &signed);
    assert!(openssl(&["verify", "-CAfile", &ca, &cert]).contains(": OK"));
    // The default life: a year (backdated five minutes).
    let year = Command::new("openssl").args(["x509", "-noout", "-checkend", &(364 * 86400).to_string(), "-in", &cert]).status().expect("openssl");
    assert!(year.success(), "a default certificate ends within 364 days");

    let carol = request(tmp.path(), "carol", "/O=devs/CN=carol");
    create_csr(&cluster, tmp.path(), "carol", &carol, "kubernetes.io/kube-apiserver-client", &["server auth"], None);
    cluster.kubectl_ok(KUBECTL, &["certificate", "approve", "carol"]);
    let failed = eventually("carol failed", || {
        let c = csr(&cluster, "carol")?;
        match condition(&c, "Failed") {
            Some(f) => Ok(f),
            None => Err(format!("{c}")),
        }
    });
    assert_eq!(failed["reason"], "SignerValidationFailure", "{failed}");
    assert_eq!(failed["message"], "invalid usage for client certificate: server auth", "{failed}");

    // By now the signer has seen the denied request go by: still no certificate.
    let denied = csr(&cluster, "alice").expect("alice");
    assert!(denied["status"]["certificate"].is_null(), "{denied}");
    let carol = csr(&cluster, "carol").expect("carol");
    assert!(carol["status"]["certificate"].is_null(), "{carol}");
}
