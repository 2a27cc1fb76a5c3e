//! emptyDir: a directory the pod owns, on the node's disk or, with `medium: Memory`, on a
//! tmpfs (pkg/volume/emptydir). It is also what the configMap, secret, downwardAPI and
//! projected volumes are built on: configMap on disk, the others on tmpfs.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ironkube_machinery::validation::quantity::Quantity as ParsedQuantity;
use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::{Error, MemoryBacking};

/// An emptyDir's mode: every user of the pod may write it.
const DIR_MODE: u32 = 0o777;

/// Where an emptyDir keeps its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Medium {
    Disk,
    /// A tmpfs of at most `size_bytes` (the kernel's default, half the RAM, when `None`).
    Memory { size_bytes: Option<i128> },
}

/// The medium of an emptyDir source; `Memory` is sized as upstream sizes it.
pub(super) fn medium_of(source: &EmptyDirVolumeSource, pod: &Pod, allocatable: &BTreeMap<String, Quantity>) -> Result<Medium, Error> {
    match source.medium.as_deref().unwrap_or("") {
        "" => Ok(Medium::Disk),
        "Memory" => Ok(memory(pod, source.size_limit.as_ref(), allocatable)),
        other => Err(Error::UnknownMedium(other.to_string())),
    }
}

fn parse(q: &Quantity) -> Option<ParsedQuantity> {
    ParsedQuantity::parse(&q.0).ok()
}

/// A memory medium's size (upstream's `calculateEmptyDirMemorySize`): the node's allocatable
/// memory, lowered to the pod's memory limit when every container has one, lowered to
/// `size_limit` when that is smaller.
pub(super) fn memory(pod: &Pod, size_limit: Option<&Quantity>, allocatable: &BTreeMap<String, Quantity>) -> Medium {
    let mut size = allocatable.get("memory").and_then(parse).map(|q| q.value());
    let positive_and_within = |v: i128, size: Option<i128>| v > 0 && size.is_none_or(|s| v <= s);
    if let Some(limit) = pod_memory_limit(pod)
        && positive_and_within(limit, size)
    {
        size = Some(limit);
    }
    if let Some(limit) = size_limit.and_then(parse).map(|q| q.value())
        && positive_and_within(limit, size)
    {
        size = Some(limit);
    }
    Medium::Memory { size_bytes: size }
}

/// The pod's memory limit when every container declares one: the larger of the sum over
/// regular containers and the largest init container, plus the pod's overhead.
fn pod_memory_limit(pod: &Pod) -> Option<i128> {
    let spec = pod.spec.as_ref()?;
    let limit_of = |c: &k8s_openapi::api::core::v1::Container| {
        c.resources.as_ref().and_then(|r| r.limits.as_ref()).and_then(|l| l.get("memory")).and_then(parse).map(|q| q.value())
    };
    let mut sum = 0;
    for c in &spec.containers {
        sum += limit_of(c)?;
    }
    let mut init_max = 0;
    for c in spec.init_containers.iter().flatten() {
        init_max = init_max.max(limit_of(c)?);
    }
    let overhead = spec.overhead.as_ref().and_then(|o| o.get("memory")).and_then(parse).map(|q| q.value()).unwrap_or(0);
    Some(sum.max(init_max) + overhead)
}

/// Creates the directory (mode 0777 whatever the umask) and, for a memory medium, mounts a
/// tmpfs on it unless one is already there.
pub(super) fn set_up(dir: &Path, medium: &Medium, backing: MemoryBacking) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(Error::io("mkdir", dir))?;
    let meta = std::fs::symlink_metadata(dir).map_err(Error::io("lstat", dir))?;
    if meta.permissions().mode() & 0o777 != DIR_MODE {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE)).map_err(Error::io("chmod", dir))?;
    }
    let Medium::Memory { size_bytes } = medium else { return Ok(()) };
    if backing == MemoryBacking::Directory {
        return Ok(());
    }
    let canonical = std::fs::canonicalize(dir).map_err(Error::io("lstat", dir))?;
    let mounts = mount_points().map_err(Error::io("open", Path::new(MOUNTINFO)))?;
    if mounts.iter().any(|m| m.path == canonical && m.fs_type == "tmpfs") {
        return Ok(());
    }
    let options = size_bytes.map(|s| format!("size={s}")).unwrap_or_default();
    let options = std::ffi::CString::new(options).map_err(|e| Error::io("mount", dir)(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    tracing::debug!(dir = %dir.display(), options = ?options, "mounting tmpfs");
    rustix::mount::mount("tmpfs", &canonical, "tmpfs", rustix::mount::MountFlags::empty(), options.as_c_str())
        .map_err(|e| Error::io("mount", dir)(e.into()))
}

const MOUNTINFO: &str = "/proc/self/mountinfo";

/// One line of /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MountPoint {
    pub path: PathBuf,
    pub fs_type: String,
}

/// The mount points of this process's mount namespace.
pub(super) fn mount_points() -> io::Result<Vec<MountPoint>> {
    Ok(parse_mountinfo(&std::fs::read_to_string(MOUNTINFO)?))
}

/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw`: the fifth field is the
/// mount point (spaces and the like octal-escaped), the first after `-` the file system.
fn parse_mountinfo(text: &str) -> Vec<MountPoint> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let path = left.split(' ').nth(4)?;
            let fs_type = right.split(' ').next()?;
            Some(MountPoint { path: PathBuf::from(unescape_octal(path)), fs_type: fs_type.to_string() })
        })
        .collect()
}

/// `\040` → space, as the kernel escapes mount points.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unmounts every mount point at or under `root` (deepest first).
pub(super) fn unmount_all_under(root: &Path) -> Result<(), Error> {
    let Ok(root) = std::fs::canonicalize(root) else { return Ok(()) };
    let mut under: Vec<PathBuf> = mount_points()
        .map_err(Error::io("open", Path::new(MOUNTINFO)))?
        .into_iter()
        .map(|m| m.path)
        .filter(|p| p.starts_with(&root))
        .collect();
    under.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    under.dedup();
    for path in under {
        tracing::debug!(path = %path.display(), "unmounting");
        rustix::mount::unmount(&path, rustix::mount::UnmountFlags::empty()).map_err(|e| Error::io("unmount", &path)(e.into()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mountinfo_lines() {
        let text = "22 1 0:21 / /proc rw,nosuid - proc proc rw\n\
                    90 22 0:50 / /var/lib/kubelet/pods/u/volumes/kubernetes.io~secret/a\\040b rw shared:1 - tmpfs tmpfs rw,size=1024k\n\
                    garbage\n";
        assert_eq!(
            parse_mountinfo(text),
            vec![
                MountPoint { path: "/proc".into(), fs_type: "proc".into() },
                MountPoint { path: "/var/lib/kubelet/pods/u/volumes/kubernetes.io~secret/a b".into(), fs_type: "tmpfs".into() },
            ]
        );
        assert_eq!(unescape_octal("a\\134b\\0"), "a\\b\\0");
    }

    #[test]
    fn memory_sizes() {
        let allocatable = BTreeMap::from([("memory".to_string(), Quantity("8Gi".into()))]);
        let pod = |containers: serde_json::Value| -> Pod { serde_json::from_value(json!({"spec": {"containers": containers}})).expect("pod") };
        let limited = pod(json!([{"name": "a", "resources": {"limits": {"memory": "1Gi"}}}, {"name": "b", "resources": {"limits": {"memory": "512Mi"}}}]));
        let partly = pod(json!([{"name": "a", "resources": {"limits": {"memory": "1Gi"}}}, {"name": "b"}]));
        let gi = 1i128 << 30;
        let table = [
            (&partly, None, Some(8 * gi)),
            (&limited, None, Some(gi + gi / 2)),
            (&limited, Some("64Mi"), Some(64 << 20)),
            (&partly, Some("16Gi"), Some(8 * gi)),
            (&partly, Some("0"), Some(8 * gi)),
        ];
        for (pod, limit, want) in table {
            let q = limit.map(|l| Quantity(l.to_string()));
            assert_eq!(memory(pod, q.as_ref(), &allocatable), Medium::Memory { size_bytes: want }, "{limit:?}");
        }
        assert_eq!(memory(&partly, None, &BTreeMap::new()), Medium::Memory { size_bytes: None });
        let source = EmptyDirVolumeSource { medium: Some("HugePages".into()), size_limit: None };
        assert_eq!(medium_of(&source, &partly, &allocatable).map_err(|e| e.to_string()), Err("unknown storage medium \"HugePages\"".into()));
    }

    #[test]
    fn directory_is_world_writable() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("a/b");
        set_up(&dir, &Medium::Disk, MemoryBacking::Tmpfs).expect("set up");
        assert_eq!(std::fs::metadata(&dir).expect("stat").permissions().mode() & 0o777, 0o777);
    }
}
