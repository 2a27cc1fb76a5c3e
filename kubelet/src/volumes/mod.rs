//! A pod's volumes on the node, as upstream's volume manager and in-tree plugins set them up
//! (pkg/kubelet/volumemanager, pkg/volume/{emptydir,configmap,secret,downwardapi,projected,
//! hostpath}).
//!
//! [`set_up`] prepares every volume a container mounts under
//! `<pods_dir>/<uid>/volumes/kubernetes.io~<plugin>/<name>` (a hostPath is the node's own
//! path). ConfigMap, Secret, downward API and projected contents go through the
//! [`atomic_writer`], so calling `set_up` again — the pod worker does so periodically —
//! atomically refreshes what running containers see. Secret, downward API and projected
//! volumes, and emptyDirs with `medium: Memory`, are tmpfs mounts. [`container_mounts`]
//! turns a container's volumeMounts into CRI mounts; [`tear_down`] unmounts and removes
//! everything of a pod.
//!
//! What the volumes (and the environment, see [`crate::env`]) read from the API server comes
//! through [`Sources`]; [`ApiSources`] is the real one.

pub mod atomic_writer;
pub mod ownership;
mod config_map;
mod downward_api;
mod empty_dir;
mod host_path;
mod mounts;
mod projected;
mod secret;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service, ServiceAccount, Volume};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, ListParams, PostParams};

use self::atomic_writer::{AtomicWriteError, AtomicWriter, Payload};
use self::empty_dir::Medium;
use crate::downward::{DownwardError, go_quote};

pub use self::mounts::container_mounts;
pub use self::projected::DEFAULT_TOKEN_EXPIRATION_SECONDS;

/// The mode of projected files when the volume does not say (the API's default, 0644).
pub const DEFAULT_MODE: i32 = 0o644;
/// The `volumes` directory of a pod's directory.
pub const VOLUMES_DIR: &str = "volumes";

/// What volumes and environment variables read from the API server.
pub trait Sources: Send + Sync {
    /// The ConfigMap, or `None` when it does not exist.
    fn config_map(&self, namespace: &str, name: &str) -> impl Future<Output = Result<Option<ConfigMap>, SourceError>> + Send;
    /// The Secret, or `None` when it does not exist.
    fn secret(&self, namespace: &str, name: &str) -> impl Future<Output = Result<Option<Secret>, SourceError>> + Send;
    /// A token of the pod's service account bound to the pod (TokenRequest with
    /// `boundObjectRef` kind Pod, its name and uid).
    fn service_account_token(&self, pod: &Pod, audience: Option<&str>, expiration_seconds: i64) -> impl Future<Output = Result<String, SourceError>> + Send;
    /// The Services of `namespace`, and `kubernetes` of `default` (for service-link
    /// environment variables).
    fn services(&self, namespace: &str) -> impl Future<Output = Result<Vec<Service>, SourceError>> + Send;
}

/// Why the API server could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The API server refused; its Status message, as upstream prints a StatusError.
    #[error("{}", .0.message)]
    Api(Box<kube::core::Status>),
    #[error("{0}")]
    Client(#[source] kube::Error),
    /// Any other failure (what a fake reports in tests).
    #[error("{0}")]
    Other(String),
}

impl From<kube::Error> for SourceError {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(status) => SourceError::Api(status),
            other => SourceError::Client(other),
        }
    }
}

/// [`Sources`] read straight from the API server.
#[derive(Clone)]
pub struct ApiSources {
    client: kube::Client,
}

impl ApiSources {
    pub fn new(client: kube::Client) -> Self {
        ApiSources { client }
    }
}

impl Sources for ApiSources {
    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMap>, SourceError> {
        Ok(Api::<ConfigMap>::namespaced(self.client.clone(), namespace).get_opt(name).await?)
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, SourceError> {
        Ok(Api::<Secret>::namespaced(self.client.clone(), namespace).get_opt(name).await?)
    }

    async fn service_account_token(&self, pod: &Pod, audience: Option<&str>, expiration_seconds: i64) -> Result<String, SourceError> {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
        let account = pod.spec.as_ref().and_then(|s| s.service_account_name.as_deref()).unwrap_or_default();
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: audience.map(|a| vec![a.to_string()]).unwrap_or_default(),
                expiration_seconds: Some(expiration_seconds),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: pod.metadata.name.clone(),
                    uid: pod.metadata.uid.clone(),
                }),
            },
            ..Default::default()
        };
        let api = Api::<ServiceAccount>::namespaced(self.client.clone(), namespace);
        let issued = api.create_token_request(account, &PostParams::default(), &request).await?;
        Ok(issued.status.map(|s| s.token).unwrap_or_default())
    }

    async fn services(&self, namespace: &str) -> Result<Vec<Service>, SourceError> {
        let mut services = Api::<Service>::namespaced(self.client.clone(), namespace).list(&ListParams::default()).await?.items;
        if namespace != "default"
            && let Some(master) = Api::<Service>::namespaced(self.client.clone(), "default").get_opt("kubernetes").await?
        {
            services.push(master);
        }
        Ok(services)
    }
}

/// What the pod's node and sandbox contribute (the pod IPs are known once the sandbox runs).
#[derive(Debug, Clone, Default)]
pub struct PodContext {
    pub node_name: String,
    pub host_ip: String,
    pub pod_ips: Vec<String>,
    /// The Node's `status.allocatable`: the limit of a container that sets none, as the
    /// downward API reads it, and the size of memory-backed volumes.
    pub node_allocatable: BTreeMap<String, Quantity>,
}

/// The in-tree volume plugins this kubelet has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plugin {
    EmptyDir,
    ConfigMap,
    Secret,
    DownwardApi,
    Projected,
    HostPath,
}

impl Plugin {
    /// Upstream's plugin name (`kubernetes.io/configmap`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Plugin::EmptyDir => "kubernetes.io/empty-dir",
            Plugin::ConfigMap => "kubernetes.io/configmap",
            Plugin::Secret => "kubernetes.io/secret",
            Plugin::DownwardApi => "kubernetes.io/downward-api",
            Plugin::Projected => "kubernetes.io/projected",
            Plugin::HostPath => "kubernetes.io/host-path",
        }
    }

    /// The plugin's directory under a pod's `volumes` (`/` escaped as `~`).
    pub fn dir_name(self) -> String {
        self.name().replace('/', "~")
    }

    /// Whether the kubelet owns the volume's files (and may relabel them).
    pub fn managed(self) -> bool {
        self != Plugin::HostPath
    }

    /// Whether containers always mount it read-only.
    pub fn read_only(self) -> bool {
        matches!(self, Plugin::ConfigMap | Plugin::Secret | Plugin::DownwardApi | Plugin::Projected)
    }

    /// The plugin of a volume source, if this kubelet has one.
    pub fn of(volume: &Volume) -> Option<Plugin> {
        if volume.empty_dir.is_some() {
            Some(Plugin::EmptyDir)
        } else if volume.config_map.is_some() {
            Some(Plugin::ConfigMap)
        } else if volume.secret.is_some() {
            Some(Plugin::Secret)
        } else if volume.downward_api.is_some() {
            Some(Plugin::DownwardApi)
        } else if volume.projected.is_some() {
            Some(Plugin::Projected)
        } else if volume.host_path.is_some() {
            Some(Plugin::HostPath)
        } else {
            None
        }
    }
}

/// A volume that is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountedVolume {
    pub plugin: Plugin,
    /// Where the volume is on the node.
    pub path: PathBuf,
}

/// The pod's volumes that are set up, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodVolumes {
    volumes: BTreeMap<String, MountedVolume>,
}

impl PodVolumes {
    pub fn get(&self, name: &str) -> Option<&MountedVolume> {
        self.volumes.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &MountedVolume)> {
        self.volumes.iter().map(|(n, v)| (n.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.volumes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.volumes.is_empty()
    }
}

/// Why a volume could not be set up or mounted. The messages are upstream's (the part after
/// `MountVolume.SetUp failed for volume "v" : `); I/O errors read as Go's `op path: reason`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configmap {} not found", go_quote(.0))]
    ConfigMapNotFound(String),
    #[error("secret {} not found", go_quote(.0))]
    SecretNotFound(String),
    #[error("configmap references non-existent config key: {0}")]
    ConfigMapKey(String),
    #[error("references non-existent secret key: {0}")]
    SecretKey(String),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Downward(#[from] DownwardError),
    #[error(transparent)]
    Write(#[from] AtomicWriteError),
    /// Several errors, printed as upstream's aggregate (`[a, b]`, duplicates once).
    #[error("{}", aggregate_message(.0))]
    Aggregate(Vec<Error>),
    #[error("invalid HostPath `{0}`: must not contain '..'")]
    HostPathBackstep(String),
    #[error("hostPath type check failed: {path} is not a {what}")]
    HostPathType { path: String, what: &'static str },
    #[error("{0} is an invalid volume type")]
    HostPathInvalidType(String),
    #[error("unknown storage medium {}", go_quote(.0))]
    UnknownMedium(String),
    #[error("invalid container mount point {0}")]
    NestedMountPoint(String),
    #[error("unable to create nested volume mountpoints: {}", go_error_text(.0))]
    NestedMkdir(#[source] io::Error),
    #[error("{op} {}: {}", .path.display(), go_error_text(.source))]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A volume source this kubelet has no plugin for.
    #[error("no volume plugin matched")]
    NoPlugin,
    #[error("pod has no metadata.uid")]
    NoPodUid,
    #[error("cannot find volume {} to mount into container {}", go_quote(volume), go_quote(container))]
    VolumeNotFound { volume: String, container: String },
    #[error("error SubPath `{0}` must not be an absolute path")]
    SubPathAbsolute(String),
    #[error("unable to provision SubPath `{0}`: must not contain '..'")]
    SubPathBackstep(String),
    #[error("missing value for {0}")]
    SubPathExprMissing(String),
    #[error("failed to create subPath directory for volumeMount {} of container {}", go_quote(mount), go_quote(container))]
    SubPathCreate { mount: String, container: String },
    #[error("failed to prepare subPath for volumeMount {} of container {}", go_quote(mount), go_quote(container))]
    SubPathPrepare { mount: String, container: String },
    #[error("invalid MountPropagation mode: {}", go_quote(.0))]
    MountPropagation(String),
    #[error("failed to resolve recursive read-only mode: {0}")]
    RecursiveReadOnly(String),
}

impl Error {
    /// An I/O error on `path` during `op` (`mkdir`, `open`, `mount`, ...).
    pub(crate) fn io(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error + use<> {
        let path = path.to_path_buf();
        move |source| Error::Io { op, path, source }
    }

    /// `None` for no errors, the error itself for one, an [`Error::Aggregate`] for more.
    pub(crate) fn aggregate(mut errors: Vec<Error>) -> Option<Error> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(Error::Aggregate(errors)),
        }
    }
}

fn aggregate_message(errors: &[Error]) -> String {
    let mut seen = BTreeSet::new();
    let mut parts = Vec::new();
    for e in errors {
        let msg = e.to_string();
        if seen.insert(msg.clone()) {
            parts.push(msg);
        }
    }
    match parts.as_slice() {
        [one] => one.clone(),
        _ => format!("[{}]", parts.join(", ")),
    }
}

/// An I/O error as Go prints an errno: `no such file or directory`.
pub(crate) fn go_error_text(e: &io::Error) -> String {
    let text = match e.raw_os_error() {
        Some(code) => {
            let full = io::Error::from_raw_os_error(code).to_string();
            full.split(" (os error").next().unwrap_or(&full).to_string()
        }
        None => e.to_string(),
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// One volume that failed to set up.
#[derive(Debug, thiserror::Error)]
#[error("MountVolume.SetUp failed for volume {} : {error}", go_quote(.volume))]
pub struct VolumeError {
    pub volume: String,
    #[source]
    pub error: Error,
}

/// The volumes of a pod that failed to set up (the others are set up). Each failure's
/// Display is upstream's FailedMount event message; [`VolumeError::error`] is the part after
/// the prefix.
#[derive(Debug, thiserror::Error)]
#[error("{}", .failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct SetUpError {
    pub failures: Vec<VolumeError>,
}

/// Whether memory-backed volumes are tmpfs mounts (the kubelet) or plain directories (unit
/// tests, which may not mount).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemoryBacking {
    Tmpfs,
    Directory,
}

/// `<pods_dir>/<uid>/volumes/kubernetes.io~<plugin>/<name>`.
pub fn volume_dir(pods_dir: &Path, pod_uid: &str, plugin: Plugin, name: &str) -> PathBuf {
    pods_dir.join(pod_uid).join(VOLUMES_DIR).join(plugin.dir_name()).join(name)
}

/// The names of the volumes some container (init, regular or ephemeral) mounts: the only
/// ones upstream sets up.
fn used_volume_names(pod: &Pod) -> BTreeSet<&str> {
    let Some(spec) = pod.spec.as_ref() else { return BTreeSet::new() };
    let regular = spec.containers.iter().chain(spec.init_containers.iter().flatten()).flat_map(|c| c.volume_mounts.iter().flatten());
    let ephemeral = spec.ephemeral_containers.iter().flatten().flat_map(|c| c.volume_mounts.iter().flatten());
    regular.chain(ephemeral).map(|m| m.name.as_str()).collect()
}

/// Sets up (or refreshes) every volume of `pod` that a container mounts. All volumes are
/// tried; those that fail are reported together.
pub async fn set_up(pod: &Pod, pods_dir: &Path, ctx: &PodContext, sources: &impl Sources) -> Result<PodVolumes, SetUpError> {
    set_up_with(pod, pods_dir, ctx, sources, MemoryBacking::Tmpfs).await
}

pub(crate) async fn set_up_with(
    pod: &Pod,
    pods_dir: &Path,
    ctx: &PodContext,
    sources: &impl Sources,
    backing: MemoryBacking,
) -> Result<PodVolumes, SetUpError> {
    let used = used_volume_names(pod);
    let mut volumes = PodVolumes::default();
    let mut failures = Vec::new();
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        if !used.contains(volume.name.as_str()) {
            continue;
        }
        match set_up_volume(pod, volume, pods_dir, ctx, sources, backing).await {
            Ok(mounted) => {
                volumes.volumes.insert(volume.name.clone(), mounted);
            }
            Err(error) => {
                tracing::warn!(pod = ?pod.metadata.name, volume = %volume.name, %error, "MountVolume.SetUp failed");
                failures.push(VolumeError { volume: volume.name.clone(), error });
            }
        }
    }
    if failures.is_empty() { Ok(volumes) } else { Err(SetUpError { failures }) }
}

async fn set_up_volume(
    pod: &Pod,
    volume: &Volume,
    pods_dir: &Path,
    ctx: &PodContext,
    sources: &impl Sources,
    backing: MemoryBacking,
) -> Result<MountedVolume, Error> {
    let plugin = Plugin::of(volume).ok_or(Error::NoPlugin)?;
    if let Some(source) = &volume.host_path {
        host_path::set_up(source)?;
        return Ok(MountedVolume { plugin, path: PathBuf::from(&source.path) });
    }
    let uid = pod.metadata.uid.as_deref().filter(|u| !u.is_empty()).ok_or(Error::NoPodUid)?;
    let dir = volume_dir(pods_dir, uid, plugin, &volume.name);
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let tmpfs = || empty_dir::memory(pod, None, &ctx.node_allocatable);
    // The contents are gathered before anything is created, as upstream does.
    let (payload, medium) = if let Some(source) = &volume.empty_dir {
        (None, empty_dir::medium_of(source, pod, &ctx.node_allocatable)?)
    } else if let Some(source) = &volume.config_map {
        let optional = source.optional.unwrap_or(false);
        let cm = config_map::fetch(sources, namespace, &source.name, optional).await?;
        let items = source.items.as_deref().unwrap_or_default();
        (Some(config_map::payload(items, &cm, source.default_mode.unwrap_or(DEFAULT_MODE), optional)?), Medium::Disk)
    } else if let Some(source) = &volume.secret {
        let optional = source.optional.unwrap_or(false);
        let name = source.secret_name.as_deref().unwrap_or_default();
        let found = secret::fetch(sources, namespace, name, optional).await?;
        let items = source.items.as_deref().unwrap_or_default();
        (Some(secret::payload(items, &found, source.default_mode.unwrap_or(DEFAULT_MODE), optional)?), tmpfs())
    } else if let Some(source) = &volume.downward_api {
        let items = source.items.as_deref().unwrap_or_default();
        (Some(downward_api::collect(items, pod, ctx, source.default_mode.unwrap_or(DEFAULT_MODE))?), tmpfs())
    } else if let Some(source) = &volume.projected {
        (Some(projected::collect(pod, source, &dir, ctx, sources).await?), tmpfs())
    } else {
        return Err(Error::NoPlugin);
    };
    empty_dir::set_up(&dir, &medium, backing)?;
    if let Some(payload) = payload {
        make_nested_mountpoints(&volume.name, &dir, pod)?;
        write(&dir, &payload, pod, &volume.name)?;
    }
    if let Some(gid) = pod.spec.as_ref().and_then(|s| s.security_context.as_ref()).and_then(|sc| sc.fs_group) {
        let gid = u32::try_from(gid).map_err(|_| Error::Io { op: "chown", path: dir.clone(), source: io::Error::other(format!("fsGroup {gid} out of range")) })?;
        ownership::set(&dir, gid, plugin.read_only()).map_err(Error::io("chown", &dir))?;
    }
    Ok(MountedVolume { plugin, path: dir })
}

fn write(dir: &Path, payload: &Payload, pod: &Pod, volume: &str) -> Result<(), Error> {
    let written = AtomicWriter::new(dir)?.write(payload)?;
    if written {
        tracing::debug!(pod = ?pod.metadata.name, volume, files = payload.len(), "volume contents written");
    }
    Ok(())
}

/// The directories other volumes are mounted on inside volume `name` (upstream's
/// `getNestedMountpoints`), relative to it: for a volume at `/a` and another at `/a/b/c`,
/// `b/c`; deeper nestings belong to the nested volume.
fn nested_mountpoints(name: &str, pod: &Pod) -> Result<Vec<String>, Error> {
    let mut nested = Vec::new();
    let Some(spec) = pod.spec.as_ref() else { return Ok(nested) };
    let regular = spec.init_containers.iter().flatten().chain(spec.containers.iter()).map(|c| c.volume_mounts.as_deref());
    let ephemeral = spec.ephemeral_containers.iter().flatten().map(|c| c.volume_mounts.as_deref());
    for mounts in regular.chain(ephemeral) {
        let mounts = mounts.unwrap_or_default();
        let mut all: Vec<String> = mounts.iter().map(|m| clean_path(&m.mount_path)).collect();
        all.sort();
        for mine in mounts.iter().filter(|m| m.name == name).map(|m| clean_path(&m.mount_path)) {
            if mine.starts_with("../") {
                return Err(Error::NestedMountPoint(mine));
            }
            let prefix = format!("{mine}/");
            let mut previous: Vec<String> = Vec::new();
            for mp in &all {
                let Some(rest) = mp.strip_prefix(&prefix) else { continue };
                if previous.iter().any(|p| mp.starts_with(p.as_str())) {
                    continue;
                }
                previous.push(format!("{mp}/"));
                nested.push(rest.to_string());
            }
        }
    }
    Ok(nested)
}

fn make_nested_mountpoints(name: &str, dir: &Path, pod: &Pod) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    for sub in nested_mountpoints(name, pod)? {
        std::fs::DirBuilder::new().recursive(true).mode(0o755).create(dir.join(sub)).map_err(Error::NestedMkdir)?;
    }
    Ok(())
}

/// Go's `filepath.Clean`.
fn clean_path(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if rooted => {}
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Unmounts and removes the pod's volume directories (`<pods_dir>/<uid>/volumes`).
pub async fn tear_down(pods_dir: &Path, pod_uid: &str) -> Result<(), Error> {
    if pod_uid.is_empty() {
        return Err(Error::NoPodUid);
    }
    let dir = pods_dir.join(pod_uid).join(VOLUMES_DIR);
    tokio::task::spawn_blocking(move || {
        if !dir.exists() {
            return Ok(());
        }
        empty_dir::unmount_all_under(&dir)?;
        std::fs::remove_dir_all(&dir).map_err(Error::io("remove", &dir))
    })
    .await
    .map_err(|e| Error::io("remove", Path::new(pod_uid))(io::Error::other(e)))?
}

/// Unmounts every volume mount under `pods_dir` (every pod's tmpfs), leaving the files of
/// disk volumes. Upstream's kubelet leaves mounts in place when it stops; a node that goes
/// away with its data directory (a test cluster) calls this first.
pub async fn unmount_all(pods_dir: &Path) -> Result<(), Error> {
    let dir = pods_dir.to_path_buf();
    tokio::task::spawn_blocking(move || empty_dir::unmount_all_under(&dir))
        .await
        .map_err(|e| Error::io("unmount", pods_dir)(io::Error::other(e)))?
}

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;
