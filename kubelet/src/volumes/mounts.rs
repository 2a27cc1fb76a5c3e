//! A container's CRI mounts from its volumeMounts (upstream's `makeMounts` in
//! pkg/kubelet/kubelet_pods.go): the volume's node path (or a subPath under it, created when
//! missing and resolved so that it cannot leave the volume), read-only when the mount or the
//! plugin says so, the mount propagation, and recursive read-only.
//!
//! Upstream bind-mounts each subPath under `volume-subpaths/` to close the race between
//! checking and mounting; this kubelet hands the runtime the resolved path instead.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod, VolumeMount};

use super::{Error, PodVolumes};
use crate::cri::api;
use crate::kuberuntime::container::expand;

/// Whether the runtime can make mounts recursively read-only. containerd 1.6 reports no
/// runtime handler features, so upstream's kubelet takes it as unsupported.
const RUNTIME_SUPPORTS_RECURSIVE_READ_ONLY: bool = false;

/// The CRI mounts of `container`. `env` is the container's resolved environment, for
/// `subPathExpr`.
pub fn container_mounts(pod: &Pod, container: &Container, volumes: &PodVolumes, env: &[(String, String)]) -> Result<Vec<api::Mount>, Error> {
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    let _span = tracing::debug_span!("container_mounts", pod = pod_name, container = %container.name).entered();
    let mut mounts = Vec::new();
    for mount in container.volume_mounts.iter().flatten() {
        let volume = volumes
            .get(&mount.name)
            .ok_or_else(|| Error::VolumeNotFound { volume: mount.name.clone(), container: container.name.clone() })?;
        let mut sub_path = mount.sub_path.clone().unwrap_or_default();
        if let Some(expr) = mount.sub_path_expr.as_deref().filter(|e| !e.is_empty()) {
            sub_path = expand_sub_path(expr, env)?;
        }
        let mut host_path = volume.path.clone();
        if !sub_path.is_empty() {
            if sub_path.starts_with('/') {
                return Err(Error::SubPathAbsolute(sub_path));
            }
            if sub_path.split('/').any(|p| p == "..") {
                return Err(Error::SubPathBackstep(sub_path));
            }
            host_path = prepare_sub_path(&volume.path, &sub_path, mount, container)?;
        }
        let container_path = if mount.mount_path.starts_with('/') { mount.mount_path.clone() } else { format!("/{}", mount.mount_path) };
        let read_only = mount.read_only.unwrap_or(false) || volume.plugin.read_only();
        mounts.push(api::Mount {
            container_path,
            host_path: host_path.to_string_lossy().into_owned(),
            readonly: read_only,
            recursive_read_only: recursive_read_only(mount)?,
            selinux_relabel: volume.plugin.managed(),
            propagation: propagation(mount.mount_propagation.as_deref())? as i32,
            ..Default::default()
        });
    }
    Ok(mounts)
}

/// `subPathExpr` with `$(VAR)` from the environment; a variable that is missing or empty
/// is an error (upstream's `ExpandContainerVolumeMounts`).
fn expand_sub_path(expr: &str, env: &[(String, String)]) -> Result<String, Error> {
    let vars: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let missing = RefCell::new(BTreeSet::new());
    let expanded = expand(expr, &|name: &str| {
        let value = vars.get(name).copied().unwrap_or_default();
        if value.is_empty() {
            missing.borrow_mut().insert(name.to_string());
        }
        Some(value.to_string())
    });
    let missing = missing.into_inner();
    if missing.is_empty() { Ok(expanded) } else { Err(Error::SubPathExprMissing(missing.into_iter().collect::<Vec<_>>().join(", "))) }
}

/// Creates the subPath's missing directories with the volume's mode and returns its
/// resolved path, refusing anything that resolves outside the volume. Details go to the log
/// only, as upstream keeps the node's layout from the pod's events.
fn prepare_sub_path(volume_path: &Path, sub_path: &str, mount: &VolumeMount, container: &Container) -> Result<PathBuf, Error> {
    let create_error = || Error::SubPathCreate { mount: mount.name.clone(), container: container.name.clone() };
    let prepare_error = || Error::SubPathPrepare { mount: mount.name.clone(), container: container.name.clone() };
    let root = std::fs::canonicalize(volume_path).map_err(|e| {
        tracing::warn!(path = %volume_path.display(), error = %e, "resolving the volume of a subPath");
        prepare_error()
    })?;
    if std::fs::metadata(root.join(sub_path)).is_err() {
        let mode = std::fs::metadata(&root).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o755);
        safe_make_dir(&root, sub_path, mode).map_err(|e| {
            tracing::warn!(container = %container.name, volume_mount = %mount.name, error = %e, "creating a subPath directory");
            create_error()
        })?;
    }
    let resolved = std::fs::canonicalize(root.join(sub_path)).map_err(|e| {
        tracing::warn!(container = %container.name, volume_mount = %mount.name, error = %e, "resolving a subPath");
        prepare_error()
    })?;
    if !resolved.starts_with(&root) {
        tracing::warn!(container = %container.name, volume_mount = %mount.name, path = %resolved.display(), "subPath resolves outside its volume");
        return Err(prepare_error());
    }
    Ok(resolved)
}

/// Creates `sub_path` under `root` one directory at a time, following symlinks only while
/// they stay inside `root`.
fn safe_make_dir(root: &Path, sub_path: &str, mode: u32) -> std::io::Result<()> {
    let mut current = root.to_path_buf();
    for component in Path::new(sub_path).components() {
        let Component::Normal(part) = component else { continue };
        let next = current.join(part);
        match std::fs::symlink_metadata(&next) {
            Ok(_) => {
                let resolved = std::fs::canonicalize(&next)?;
                if !resolved.starts_with(root) || !resolved.is_dir() {
                    return Err(std::io::Error::other(format!("{} is not a directory inside the volume", next.display())));
                }
                current = resolved;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::DirBuilder::new().mode(mode).create(&next)?;
                std::fs::set_permissions(&next, std::fs::Permissions::from_mode(mode))?;
                current = next;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Upstream's `translateMountPropagation`.
fn propagation(mode: Option<&str>) -> Result<api::MountPropagation, Error> {
    match mode {
        None | Some("None") => Ok(api::MountPropagation::PropagationPrivate),
        Some("HostToContainer") => Ok(api::MountPropagation::PropagationHostToContainer),
        Some("Bidirectional") => Ok(api::MountPropagation::PropagationBidirectional),
        Some(other) => Err(Error::MountPropagation(other.to_string())),
    }
}

/// Upstream's `resolveRecursiveReadOnly`.
fn recursive_read_only(mount: &VolumeMount) -> Result<bool, Error> {
    let name = crate::downward::go_quote(&mount.name);
    let mode = match mount.recursive_read_only.as_deref() {
        None | Some("Disabled") => return Ok(false),
        Some(mode) => mode,
    };
    if !mount.read_only.unwrap_or(false) {
        return Err(Error::RecursiveReadOnly(format!("volume {name} requested recursive read-only mode, but it is not read-only")));
    }
    if let Some(p) = mount.mount_propagation.as_deref().filter(|p| *p != "None") {
        return Err(Error::RecursiveReadOnly(format!(
            "volume {name} requested recursive read-only mode, but it is not compatible with propagation {}",
            crate::downward::go_quote(p)
        )));
    }
    match mode {
        "IfPossible" => Ok(RUNTIME_SUPPORTS_RECURSIVE_READ_ONLY),
        "Enabled" if RUNTIME_SUPPORTS_RECURSIVE_READ_ONLY => Ok(true),
        "Enabled" => Err(Error::RecursiveReadOnly(format!("volume {name} requested recursive read-only mode, but it is not supported by the runtime"))),
        other => Err(Error::RecursiveReadOnly(format!("unknown recursive read-only mode {}", crate::downward::go_quote(other)))),
    }
}
