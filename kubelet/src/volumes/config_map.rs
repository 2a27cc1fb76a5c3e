//! configMap volumes: a ConfigMap's keys as files (pkg/volume/configmap), written with the
//! atomic writer on a disk-backed directory.

use k8s_openapi::api::core::v1::{ConfigMap, KeyToPath};

use super::atomic_writer::{FileProjection, Payload};
use super::{Error, Sources};

/// The ConfigMap `name` of `namespace`; a missing one is an empty ConfigMap when `optional`.
pub(super) async fn fetch(sources: &impl Sources, namespace: &str, name: &str, optional: bool) -> Result<ConfigMap, Error> {
    match sources.config_map(namespace, name).await? {
        Some(cm) => Ok(cm),
        None if optional => Ok(ConfigMap::default()),
        None => Err(Error::ConfigMapNotFound(name.to_string())),
    }
}

/// The files of a ConfigMap (upstream's `MakePayload`): every key (`data` then
/// `binaryData`) with `default_mode`, or only `items`, each at its path with its own mode
/// or `default_mode`. A missing item key fails unless `optional`.
pub(super) fn payload(items: &[KeyToPath], cm: &ConfigMap, default_mode: i32, optional: bool) -> Result<Payload, Error> {
    let data = cm.data.as_ref();
    let binary = cm.binary_data.as_ref();
    let mut payload = Payload::new();
    if items.is_empty() {
        for (key, value) in data.into_iter().flatten() {
            payload.insert(key.clone(), FileProjection::new(value.as_bytes(), default_mode));
        }
        for (key, value) in binary.into_iter().flatten() {
            payload.insert(key.clone(), FileProjection::new(value.0.clone(), default_mode));
        }
        return Ok(payload);
    }
    for item in items {
        let bytes = match (data.and_then(|d| d.get(&item.key)), binary.and_then(|b| b.get(&item.key))) {
            (Some(s), _) => s.as_bytes().to_vec(),
            (None, Some(b)) => b.0.clone(),
            (None, None) if optional => continue,
            (None, None) => return Err(Error::ConfigMapKey(item.key.clone())),
        };
        payload.insert(item.path.clone(), FileProjection::new(bytes, item.mode.unwrap_or(default_mode)));
    }
    Ok(payload)
}
