//! The value encoding of objects in etcd: the one seam to change for protobuf later.

use serde_json::Value;

use super::{StorageError, set_resource_version};

/// Encodes an object for storage: JSON, without `metadata.resourceVersion` (the revision is
/// the version; storing it would only go stale).
pub fn encode(obj: &Value) -> Vec<u8> {
    let mut copy = obj.clone();
    if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("selfLink");
    }
    serde_json::to_vec(&copy).unwrap_or_default()
}

/// Decodes a stored value, setting its resourceVersion to `revision`.
pub fn decode(key: &str, bytes: &[u8], revision: i64) -> Result<Value, StorageError> {
    let mut obj: Value = serde_json::from_slice(bytes).map_err(|e| StorageError::Decode {
        key: key.to_string(),
        message: e.to_string(),
    })?;
    if !obj.is_object() {
        return Err(StorageError::Decode { key: key.to_string(), message: "not a JSON object".into() });
    }
    set_resource_version(&mut obj, revision);
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resource_version_is_not_stored_and_comes_back_from_the_revision() {
        let obj = json!({"metadata": {"name": "a", "resourceVersion": "7"}});
        let bytes = encode(&obj);
        assert!(!String::from_utf8_lossy(&bytes).contains("resourceVersion"));
        let back = decode("k", &bytes, 9).expect("decodes");
        assert_eq!(back["metadata"]["resourceVersion"], "9");
        assert!(decode("k", b"[1]", 1).is_err());
        assert!(decode("k", b"{", 1).is_err());
    }
}
