//! secret volumes: a Secret's keys as files (pkg/volume/secret), written with the atomic
//! writer on a tmpfs so they never touch the node's disk.

use k8s_openapi::api::core::v1::{KeyToPath, Secret};

use super::atomic_writer::{FileProjection, Payload};
use super::{Error, Sources};

/// The Secret `name` of `namespace`; a missing one is an empty Secret when `optional`.
pub(super) async fn fetch(sources: &impl Sources, namespace: &str, name: &str, optional: bool) -> Result<Secret, Error> {
    match sources.secret(namespace, name).await? {
        Some(s) => Ok(s),
        None if optional => Ok(Secret::default()),
        None => Err(Error::SecretNotFound(name.to_string())),
    }
}

/// The files of a Secret (upstream's `MakePayload`): every key with `default_mode`, or only
/// `items`, each at its path with its own mode or `default_mode`. A missing item key fails
/// unless `optional`.
pub(super) fn payload(items: &[KeyToPath], secret: &Secret, default_mode: i32, optional: bool) -> Result<Payload, Error> {
    let data = secret.data.as_ref();
    let mut payload = Payload::new();
    if items.is_empty() {
        for (key, value) in data.into_iter().flatten() {
            payload.insert(key.clone(), FileProjection::new(value.0.clone(), default_mode));
        }
        return Ok(payload);
    }
    for item in items {
        match data.and_then(|d| d.get(&item.key)) {
            Some(value) => {
                payload.insert(item.path.clone(), FileProjection::new(value.0.clone(), item.mode.unwrap_or(default_mode)));
            }
            None if optional => continue,
            None => return Err(Error::SecretKey(item.key.clone())),
        }
    }
    Ok(payload)
}
