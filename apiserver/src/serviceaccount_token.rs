//! Service account tokens: JWTs (ES256 or RS256) the TokenRequest API issues and TokenReview and
//! bearer authentication verify, with upstream's claims (`iss`, `sub`
//! `system:serviceaccount:<ns>:<name>`, `aud`, `exp`/`iat`/`nbf`, `jti`, and
//! `kubernetes.io` naming the namespace, the account and what the token is bound to).
//!
//! The signing key is `--service-account-signing-key-file` (PEM: an ECDSA P-256 key in
//! PKCS#8, or an RSA key in PKCS#1 or PKCS#8 such as kubeadm's `sa.key`), or a P-256 key
//! generated under `--cert-dir` on first start; its `kid` is the base64url SHA-256 of its
//! public key's SubjectPublicKeyInfo DER, as upstream derives it.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject as _;
use serde_json::{Value, json};
use sha2::Digest;

/// The signing key, with the JWS algorithm it signs with.
enum SigningKey {
    /// ES256.
    Ecdsa(EcdsaKeyPair),
    /// RS256.
    Rsa(RsaKeyPair),
}

impl SigningKey {
    fn alg(&self) -> &'static str {
        match self {
            SigningKey::Ecdsa(_) => "ES256",
            SigningKey::Rsa(_) => "RS256",
        }
    }

    /// The public key as X.509 SubjectPublicKeyInfo DER (Go's MarshalPKIXPublicKey).
    fn spki(&self) -> Vec<u8> {
        match self {
            SigningKey::Ecdsa(k) => p256_spki(k.public_key().as_ref()),
            SigningKey::Rsa(k) => rsa_spki(k.public().as_ref()),
        }
    }

    fn sign(&self, rng: &SystemRandom, message: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            SigningKey::Ecdsa(k) => k.sign(rng, message).map(|s| s.as_ref().to_vec()).map_err(|e| format!("signing a token: {e}")),
            SigningKey::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, rng, message, &mut sig).map_err(|e| format!("signing a token: {e}"))?;
                Ok(sig)
            }
        }
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match self {
            SigningKey::Ecdsa(k) => signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, k.public_key().as_ref()).verify(message, sig).is_ok(),
            SigningKey::Rsa(k) => signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, k.public().as_ref()).verify(message, sig).is_ok(),
        }
    }
}

/// A DER length.
fn der_len(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes: Vec<u8> = len.to_be_bytes().iter().copied().skip_while(|b| *b == 0).collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(content.len()));
    out.extend_from_slice(content);
    out
}

/// `SubjectPublicKeyInfo` DER of an RSA public key given as PKCS#1 RSAPublicKey DER.
fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    // SEQUENCE { SEQUENCE { rsaEncryption, NULL }, BIT STRING { 0 unused bits, RSAPublicKey } }
    let algorithm = [0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00];
    let mut bits = vec![0x00];
    bits.extend_from_slice(pkcs1);
    let mut content = algorithm.to_vec();
    content.extend(der(0x03, &bits));
    der(0x30, &content)
}

/// Issues and checks tokens.
pub struct TokenSigner {
    key: SigningKey,
    rng: SystemRandom,
    kid: String,
    pub issuer: String,
}

/// The identity a valid token carries.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenIdentity {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub audiences: Vec<String>,
    pub jti: String,
    pub claims: Value,
}

impl TokenIdentity {
    pub fn username(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.namespace, self.name)
    }

    pub fn groups(&self) -> Vec<String> {
        vec!["system:serviceaccounts".into(), format!("system:serviceaccounts:{}", self.namespace), "system:authenticated".into()]
    }
}

/// `SubjectPublicKeyInfo` DER of an uncompressed P-256 point.
fn p256_spki(point: &[u8]) -> Vec<u8> {
    // SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING { point } }
    let mut der = vec![0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00];
    der.extend_from_slice(point);
    der
}

impl TokenSigner {
    /// Loads the PEM key at `path`, or creates one there when it does not exist.
    pub fn load_or_create(path: &Path, issuer: &str) -> Result<TokenSigner, String> {
        let pem = match std::fs::read_to_string(path) {
            Ok(pem) => pem,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| format!("generating a service account key: {e}"))?;
                let pem = kp.serialize_pem();
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
                }
                std::fs::write(path, &pem).map_err(|e| format!("writing {}: {e}", path.display()))?;
                pem
            }
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        Self::from_pem(pem.as_bytes(), issuer).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// A signer from a PEM private key: ECDSA P-256 (PKCS#8) or RSA (PKCS#1 or PKCS#8).
    pub fn from_pem(pem: &[u8], issuer: &str) -> Result<TokenSigner, String> {
        let rng = SystemRandom::new();
        let parsed = PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("no private key in PEM: {e}"))?;
        let key = match &parsed {
            PrivateKeyDer::Pkcs1(k) => SigningKey::Rsa(RsaKeyPair::from_der(k.secret_pkcs1_der()).map_err(|e| format!("invalid RSA key: {e}"))?),
            PrivateKeyDer::Pkcs8(k) => match EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, k.secret_pkcs8_der(), &rng) {
                Ok(ec) => SigningKey::Ecdsa(ec),
                Err(_) => SigningKey::Rsa(RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()).map_err(|e| {
                    format!("the service account signing key must be an ECDSA P-256 or an RSA key: {e}")
                })?),
            },
            PrivateKeyDer::Sec1(_) => return Err("an ECDSA key in SEC1 (\"EC PRIVATE KEY\") form: give it as PKCS#8 (openssl pkcs8 -topk8 -nocrypt)".into()),
            _ => return Err("unsupported private key type".into()),
        };
        let kid = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(key.spki()));
        Ok(TokenSigner { key, rng, kid, issuer: issuer.to_string() })
    }

    pub fn from_pkcs8(der: &[u8], issuer: &str) -> Result<TokenSigner, String> {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .map_err(|e| format!("the service account signing key must be an ECDSA P-256 key: {e}"))?;
        let key = SigningKey::Ecdsa(key);
        let kid = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(key.spki()));
        Ok(TokenSigner { key, rng, kid, issuer: issuer.to_string() })
    }

    /// A signed token for the claims.
    pub fn sign(&self, claims: &Value) -> Result<String, String> {
        let header = json!({"alg": self.key.alg(), "kid": self.kid});
        let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let sig = self.key.sign(&self.rng, signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }

    /// The claims of a service account token: bound to `bound` (kind, name, uid) if given,
    /// and, for a pod on a node, naming that node (`node`: name, uid) as upstream's
    /// ServiceAccountTokenPodNodeInfo does.
    #[allow(clippy::too_many_arguments)]
    pub fn claims(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        audiences: &[String],
        now: i64,
        expiration_seconds: i64,
        bound: Option<(&str, &str, &str)>,
        node: Option<(&str, &str)>,
    ) -> Value {
        let mut k8s = json!({"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}});
        if let Some((kind, bname, buid)) = bound {
            let key = match kind {
                "Pod" => "pod",
                "Secret" => "secret",
                "Node" => "node",
                _ => "object",
            };
            k8s[key] = json!({"name": bname, "uid": buid});
        }
        if let Some((node_name, node_uid)) = node {
            k8s["node"] = json!({"name": node_name, "uid": node_uid});
        }
        json!({
            "aud": audiences,
            "exp": now + expiration_seconds,
            "iat": now,
            "iss": self.issuer,
            "jti": uuid::Uuid::new_v4().to_string(),
            "kubernetes.io": k8s,
            "nbf": now,
            "sub": format!("system:serviceaccount:{namespace}:{name}"),
        })
    }

}

impl TokenIdentity {
    /// The user's extra of a token's claims, as upstream's TokenReview reports it: the
    /// credential ID (`JTI=<jti>`), and the pod and node the token is bound to.
    pub fn extra(&self) -> serde_json::Map<String, Value> {
        let mut extra = serde_json::Map::new();
        extra.insert("authentication.kubernetes.io/credential-id".into(), json!([format!("JTI={}", self.jti)]));
        let k8s = &self.claims["kubernetes.io"];
        for (key, claim) in [("pod", "pod"), ("node", "node")] {
            for field in ["name", "uid"] {
                if let Some(v) = k8s[claim][field].as_str() {
                    extra.insert(format!("authentication.kubernetes.io/{key}-{field}"), json!([v]));
                }
            }
        }
        extra
    }

    /// The pod (name, uid) the token is bound to, if any.
    pub fn bound_pod(&self) -> Option<(&str, &str)> {
        let pod = &self.claims["kubernetes.io"]["pod"];
        Some((pod["name"].as_str()?, pod["uid"].as_str()?))
    }
}

impl TokenSigner {
    /// Checks signature, issuer, times and audiences (`wanted` empty: the issuer's own).
    pub fn verify(&self, token: &str, wanted: &[String], now: i64) -> Result<TokenIdentity, String> {
        let parts: Vec<&str> = token.split('.').collect();
        let [h, p, s] = parts.as_slice() else { return Err("invalid bearer token".into()) };
        let header: Value = URL_SAFE_NO_PAD.decode(h).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or("invalid bearer token")?;
        if header["alg"] != self.key.alg() {
            return Err("invalid bearer token".into());
        }
        let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| "invalid bearer token")?;
        if !self.key.verify(format!("{h}.{p}").as_bytes(), &sig) {
            return Err("invalid bearer token, square/go-jose: error in cryptographic primitive".into());
        }
        let claims: Value = URL_SAFE_NO_PAD.decode(p).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or("invalid bearer token")?;
        if claims["iss"] != self.issuer.as_str() {
            return Err("invalid bearer token".into());
        }
        if claims["exp"].as_i64().is_some_and(|exp| now > exp) {
            return Err("invalid bearer token, service account token has expired".into());
        }
        if claims["nbf"].as_i64().is_some_and(|nbf| now + 60 < nbf) {
            return Err("invalid bearer token, service account token is not valid yet".into());
        }
        let token_aud: Vec<String> = match &claims["aud"] {
            Value::String(a) => vec![a.clone()],
            Value::Array(a) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        };
        let wanted: Vec<String> = if wanted.is_empty() { vec![self.issuer.clone()] } else { wanted.to_vec() };
        let audiences: Vec<String> = wanted.iter().filter(|a| token_aud.contains(a)).cloned().collect();
        if audiences.is_empty() {
            return Err("invalid bearer token, token audiences [\"".to_string() + &token_aud.join("\" \"") + "\"] is invalid for the target audiences");
        }
        let k8s = &claims["kubernetes.io"];
        Ok(TokenIdentity {
            namespace: k8s["namespace"].as_str().unwrap_or("").to_string(),
            name: k8s["serviceaccount"]["name"].as_str().unwrap_or("").to_string(),
            uid: k8s["serviceaccount"]["uid"].as_str().unwrap_or("").to_string(),
            audiences,
            jti: claims["jti"].as_str().unwrap_or("").to_string(),
            claims,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_and_refuse_tampering_expiry_and_audience() {
        let dir = tempfile::tempdir().expect("tempdir");
        let signer = TokenSigner::load_or_create(&dir.path().join("sa.key"), "https://kubernetes.default.svc.cluster.local").expect("signer");
        let again = TokenSigner::load_or_create(&dir.path().join("sa.key"), "https://kubernetes.default.svc.cluster.local").expect("reloaded");
        assert_eq!(signer.kid, again.kid, "the key is kept");
        let claims = signer.claims("ns", "sa", "u1", &["https://kubernetes.default.svc.cluster.local".into()], 1000, 3600, Some(("Pod", "p", "pu")), Some(("n1", "nu")));
        let token = signer.sign(&claims).expect("signed");
        let id = again.verify(&token, &[], 2000).expect("valid");
        assert_eq!(id.username(), "system:serviceaccount:ns:sa");
        assert_eq!(id.uid, "u1");
        let extra = id.extra();
        for (key, want) in [("credential-id", format!("JTI={}", id.jti)), ("pod-name", "p".into()), ("pod-uid", "pu".into()), ("node-name", "n1".into()), ("node-uid", "nu".into())] {
            assert_eq!(extra[&format!("authentication.kubernetes.io/{key}")], json!([want]), "{key}");
        }
        assert_eq!(id.bound_pod(), Some(("p", "pu")));
        assert!(signer.verify(&token, &[], 5000).expect_err("expired").contains("expired"));
        assert!(signer.verify(&token, &["other".into()], 2000).is_err());
        let mut forged = token.clone();
        forged.replace_range(forged.len() - 4.., "AAAA");
        assert!(signer.verify(&forged, &[], 2000).is_err());
    }

    /// kubeadm's `sa.key` is RSA: tokens are RS256 with the kid upstream derives (checked
    /// against `openssl rsa -pubout -outform DER | sha256`, base64url).
    #[test]
    fn rsa_keys_sign_rs256_with_upstreams_kid() {
        const KID: &str = "IxvrWlmne3JwSfbIJA0x-xPWjI5bQex-CkvhCggsblM";
        for pem in [include_str!("testdata/sa-rsa-pkcs1.key"), include_str!("testdata/sa-rsa-pkcs8.key")] {
            let signer = TokenSigner::from_pem(pem.as_bytes(), "https://kubernetes.default.svc.cluster.local").expect("an RSA signer");
            assert_eq!(signer.kid, KID);
            let claims = signer.claims("ns", "sa", "u1", &["https://kubernetes.default.svc.cluster.local".into()], 1000, 3600, None, None);
            let token = signer.sign(&claims).expect("signed");
            let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap_or("")).expect("base64")).expect("json");
            assert_eq!(header, json!({"alg": "RS256", "kid": KID}));
            assert_eq!(signer.verify(&token, &[], 2000).expect("valid").name, "sa");
            let mut forged = token.clone();
            forged.replace_range(forged.len() - 4.., "AAAA");
            assert!(signer.verify(&forged, &[], 2000).is_err());
        }
        assert!(TokenSigner::from_pem(b"not a key", "i").is_err());
    }
}
