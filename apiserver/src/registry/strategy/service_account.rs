//! ServiceAccounts: secret references keep only their name.

use serde_json::{Value, json};

use super::Strategy;

pub struct ServiceAccountStrategy;

impl Strategy for ServiceAccountStrategy {
    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(secrets) = obj.get_mut("secrets").and_then(Value::as_array_mut) {
            for s in secrets.iter_mut() {
                let name = s.get("name").cloned().unwrap_or(json!(""));
                *s = json!({"name": name});
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_references_are_cleaned() {
        let mut sa = json!({"metadata": {"name": "app"}, "secrets": [{"name": "tok", "namespace": "x", "uid": "u"}]});
        ServiceAccountStrategy.prepare_for_create(&mut sa);
        assert_eq!(sa["secrets"], json!([{"name": "tok"}]));
    }
}
