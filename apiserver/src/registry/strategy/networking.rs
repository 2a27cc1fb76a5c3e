//! IPAddresses (networking.k8s.io/v1): named by the IP they hold, in canonical form, and
//! pointing at the object that uses it (upstream's ValidateIPAddress).

use ironkube_machinery::field::{FieldError, Path};
use serde_json::Value;

use super::Strategy;

pub struct IpAddressStrategy;

/// Upstream's ValidateIPAddressName: a parseable IP written the way Go's netip prints it.
pub fn validate_ip_address_name(name: &str) -> Vec<String> {
    match name.parse::<std::net::IpAddr>() {
        Err(_) => vec![format!("ParseAddr({name:?}): unable to parse IP")],
        Ok(ip) if ip.to_string() != name => vec!["must be a canonical format IP address".to_string()],
        Ok(_) => Vec::new(),
    }
}

fn validate_parent_ref(obj: &Value) -> Vec<FieldError> {
    let path = Path::new("spec").child("parentRef");
    let parent = &obj["spec"]["parentRef"];
    if !parent.is_object() {
        return vec![FieldError::required(path, "")];
    }
    let mut errs = Vec::new();
    for field in ["resource", "name"] {
        if parent[field].as_str().unwrap_or("").is_empty() {
            errs.push(FieldError::required(path.child(field), ""));
        }
    }
    errs
}

impl Strategy for IpAddressStrategy {
    fn validate_name(&self, name: &str) -> Vec<String> {
        validate_ip_address_name(name)
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        validate_parent_ref(obj)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = validate_parent_ref(new);
        if new["spec"]["parentRef"] != old["spec"]["parentRef"] {
            errs.push(FieldError::invalid(Path::new("spec").child("parentRef"), new["spec"]["parentRef"].clone(), "field is immutable"));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_canonical_ips() {
        assert!(validate_ip_address_name("255.255.255.255").is_empty());
        assert!(validate_ip_address_name("fe80::42:1dff:fe84:f9e2").is_empty());
        assert_eq!(validate_ip_address_name("fe80:0::1"), vec!["must be a canonical format IP address"]);
        assert_eq!(validate_ip_address_name("web"), vec![r#"ParseAddr("web"): unable to parse IP"#]);
    }

    #[test]
    fn the_parent_is_required_and_fixed() {
        let ok = json!({"spec": {"parentRef": {"group": "mygroup", "resource": "myresources", "namespace": "foo", "name": "bar"}}});
        assert!(IpAddressStrategy.validate(&ok).is_empty());
        let errs: Vec<String> = IpAddressStrategy.validate(&json!({"spec": {}})).iter().map(ToString::to_string).collect();
        assert_eq!(errs, vec!["spec.parentRef: Required value"]);
        let moved = json!({"spec": {"parentRef": {"resource": "services", "name": "other"}}});
        assert_eq!(IpAddressStrategy.validate_update(&moved, &ok).len(), 1);
    }
}
