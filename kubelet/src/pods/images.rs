//! Making sure a container's image is on the node before it is created, as upstream's image
//! manager does: the pull policy decides (Never, IfNotPresent, Always — the API server made
//! an untagged or `:latest` image Always), pulls are announced with Pulling/Pulled events, a
//! failed pull is a `Failed` event and `ErrImagePull`, and the next tries of that image in
//! that pod wait out a back-off (`ImagePullBackOff`). With no registry reachable here, an
//! Always pull fails exactly that way.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant as StdInstant;

use k8s_openapi::api::core::v1::{Container, Pod};
use tokio::time::Instant;

use super::backoff::Backoff;
use crate::cri::{Runtime, api};
use crate::events::{NORMAL, Recorder, WARNING};

/// Why an image is not there, with the waiting reason and message the container reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    Pull(String),
    #[error("{0}")]
    BackOff(String),
    #[error("{0}")]
    NeverPull(String),
    #[error("{0}")]
    Inspect(String),
    #[error("{0}")]
    InvalidName(String),
}

impl ImageError {
    /// The container's waiting reason.
    pub fn reason(&self) -> &'static str {
        match self {
            ImageError::Pull(_) => "ErrImagePull",
            ImageError::BackOff(_) => "ImagePullBackOff",
            ImageError::NeverPull(_) => "ErrImageNeverPull",
            ImageError::Inspect(_) => "ImageInspectError",
            ImageError::InvalidName(_) => "InvalidImageName",
        }
    }
}

/// The image with the default tag when it has neither tag nor digest (`busybox` ->
/// `busybox:latest`); what the runtime is asked for.
pub fn with_default_tag(image: &str) -> Result<String, String> {
    if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_ascii_uppercase() && !image.contains('@')) {
        return Err(format!("couldn't parse image name {image:?}: invalid reference format"));
    }
    if image.contains('@') {
        return Ok(image.to_string());
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') { Ok(image.to_string()) } else { Ok(format!("{image}:latest")) }
}

/// A gRPC error as Go's status error prints it.
pub fn grpc_message(e: &crate::cri::Error) -> String {
    match e {
        crate::cri::Error::Call { status, .. } => format!("rpc error: code = {:?} desc = {}", status.code(), status.message()),
        other => other.to_string(),
    }
}

/// A duration truncated to milliseconds as Go prints it (`523ms`, `1.234s`).
pub fn go_millis(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = format!("{}.{:03}", ms / 1000, ms % 1000);
    format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
}

/// Pull back-off and the last pull error, by `<pod uid>_<image>`.
#[derive(Default)]
pub struct Puller {
    backoff: Mutex<Backoff>,
    last_error: Mutex<HashMap<String, String>>,
}

impl Puller {
    /// The image reference to create `container` from, pulling it when the policy says so.
    pub async fn ensure<R: Runtime>(
        &self,
        runtime: &R,
        recorder: &Recorder,
        pod: &Pod,
        container: &Container,
        sandbox: &api::PodSandboxConfig,
    ) -> Result<String, ImageError> {
        let image_name = container.image.clone().unwrap_or_default();
        let event = |type_: &str, reason: &str, message: String| recorder.event(pod, Some(container), type_, reason, message);
        let image = match with_default_tag(&image_name) {
            Ok(i) => i,
            Err(e) => {
                let msg = format!("Failed to apply default image tag {image_name:?}: {e}");
                event(WARNING, "InspectFailed", msg.clone());
                return Err(ImageError::InvalidName(msg));
            }
        };
        let present = match runtime.image_status(&image).await {
            Ok(found) => found.map(|i| i.id),
            Err(e) => {
                let msg = format!("Failed to inspect image {image_name:?}: {}", grpc_message(&e));
                event(WARNING, "InspectFailed", msg.clone());
                return Err(ImageError::Inspect(msg));
            }
        };
        let policy = container.image_pull_policy.as_deref().unwrap_or("IfNotPresent");
        let pull = match policy {
            "Never" => false,
            "Always" => true,
            _ => present.is_none(),
        };
        if !pull {
            return match present {
                Some(id) => {
                    event(NORMAL, "Pulled", format!("Container image {image_name:?} already present on machine"));
                    Ok(id)
                }
                None => {
                    let msg = format!("Container image {image_name:?} is not present with pull policy of Never");
                    event(WARNING, "ErrImageNeverPull", msg.clone());
                    Err(ImageError::NeverPull(msg))
                }
            };
        }
        let key = format!("{}_{}", pod.metadata.uid.as_deref().unwrap_or(""), image_name);
        let backing_off = self.backoff.lock().map(|b| b.in_backoff_since_update(&key, Instant::now())).unwrap_or(false);
        if backing_off {
            let mut msg = format!("Back-off pulling image {image_name:?}");
            event(NORMAL, "BackOff", msg.clone());
            if let Some(previous) = self.last_error.lock().ok().and_then(|m| m.get(&key).cloned()) {
                msg = format!("{msg}: {previous}");
            }
            return Err(ImageError::BackOff(msg));
        }
        event(NORMAL, "Pulling", format!("Pulling image {image_name:?}"));
        let started = StdInstant::now();
        match runtime.pull_image(&image, Some(sandbox.clone())).await {
            Ok(reference) => {
                let took = go_millis(started.elapsed());
                let size = runtime.image_status(&reference).await.ok().flatten().map(|i| i.size).unwrap_or(0);
                event(NORMAL, "Pulled", format!("Successfully pulled image {image_name:?} in {took} ({took} including waiting). Image size: {size} bytes."));
                if let Ok(mut b) = self.backoff.lock() {
                    b.gc(Instant::now());
                }
                Ok(reference)
            }
            Err(e) => {
                let message = grpc_message(&e);
                event(WARNING, "Failed", format!("Failed to pull image {image_name:?}: {message}"));
                if let Ok(mut b) = self.backoff.lock() {
                    b.next(&key, Instant::now());
                }
                if let Ok(mut m) = self.last_error.lock() {
                    m.insert(key, format!("ErrImagePull: {message}"));
                }
                Err(ImageError::Pull(message))
            }
        }
    }

    /// Forgets a pod's pull back-offs.
    pub fn forget(&self, uid: &str) {
        let prefix = format!("{uid}_");
        if let Ok(mut b) = self.backoff.lock() {
            b.forget_prefix(&prefix);
        }
        if let Ok(mut m) = self.last_error.lock() {
            m.retain(|k, _| !k.starts_with(&prefix));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tags_and_go_durations() {
        assert_eq!(with_default_tag("busybox").as_deref(), Ok("busybox:latest"));
        assert_eq!(with_default_tag("busybox:1.36").as_deref(), Ok("busybox:1.36"));
        assert_eq!(with_default_tag("localhost:5000/busybox").as_deref(), Ok("localhost:5000/busybox:latest"));
        assert_eq!(with_default_tag("busybox@sha256:abc").as_deref(), Ok("busybox@sha256:abc"));
        assert!(with_default_tag("Busy Box").is_err());
        assert_eq!(go_millis(std::time::Duration::from_millis(523)), "523ms");
        assert_eq!(go_millis(std::time::Duration::from_millis(1234)), "1.234s");
        assert_eq!(go_millis(std::time::Duration::from_millis(2000)), "2s");
    }
}
