//! downwardAPI volumes: the pod's metadata and its containers' resources as files
//! (pkg/volume/downwardapi), on a tmpfs, rewritten when a label or annotation changes.

use k8s_openapi::api::core::v1::{DownwardAPIVolumeFile, Pod};

use super::atomic_writer::{FileProjection, Payload};
use super::{Error, PodContext};
use crate::downward;

/// The files of `items` (upstream's `CollectData`): a `fieldRef` reads the pod's metadata,
/// a `resourceFieldRef` a named container's resources. Every item is tried; the errors come
/// back together.
pub(super) fn collect(items: &[DownwardAPIVolumeFile], pod: &Pod, ctx: &PodContext, default_mode: i32) -> Result<Payload, Error> {
    let mut errors = Vec::new();
    let mut payload = Payload::new();
    for item in items {
        let mode = item.mode.unwrap_or(default_mode);
        let value = if let Some(field) = &item.field_ref {
            downward::metadata_value(pod, &field.field_path)
        } else if let Some(resource) = &item.resource_field_ref {
            downward::resource_value(pod, None, resource, &ctx.node_allocatable)
        } else {
            Ok(String::new())
        };
        match value {
            Ok(v) => {
                payload.insert(item.path.clone(), FileProjection::new(v, mode));
            }
            Err(e) => errors.push(Error::Downward(e)),
        }
    }
    Error::aggregate(errors).map_or(Ok(payload), Err)
}
