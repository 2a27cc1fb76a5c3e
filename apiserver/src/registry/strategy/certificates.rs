//! CertificateSigningRequests: selectable by `spec.signerName`.

use serde_json::Value;

use super::Strategy;
use super::object::str_at;

pub struct CertificateSigningRequestStrategy;

impl Strategy for CertificateSigningRequestStrategy {
    fn field_labels(&self, obj: &Value) -> Vec<(&'static str, String)> {
        vec![(
            "spec.signerName",
            str_at(obj.get("spec").unwrap_or(&Value::Null), "signerName").to_string(),
        )]
    }

    fn allow_unconditional_update(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn signer_name_is_selectable() {
        let csr = json!({"spec": {"signerName": "kubernetes.io/kube-apiserver-client"}});
        assert_eq!(
            CertificateSigningRequestStrategy.field_labels(&csr),
            vec![(
                "spec.signerName",
                "kubernetes.io/kube-apiserver-client".to_string()
            )]
        );
    }
}
