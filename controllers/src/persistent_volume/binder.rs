//! The binder: two reconcile loops sharing the caches of volumes, claims and storage
//! classes, as upstream's volume and claim workers. A claim is bound in four writes (the
//! volume's claimRef, its phase, the claim's volumeName and annotations, its status), each
//! starting from the previous write's answer; a volume whose claim went is Released and
//! reclaimed by its policy.

use std::sync::Arc;
use std::time::Duration;

use futures::channel::mpsc::{UnboundedSender, unbounded};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, instrument};

use super::matching::{self, claim_class, claim_has_class};
use super::{
    ANN_BETA_STORAGE_PROVISIONER, ANN_BIND_COMPLETED, ANN_BOUND_BY_CONTROLLER, ANN_DYNAMICALLY_PROVISIONED, ANN_MIGRATED_TO, ANN_SELECTED_NODE,
    ANN_STORAGE_PROVISIONER, has_annotation,
};
use crate::informer::{self, Change, Conflict};
use crate::recorder::Recorder;
use crate::replicaset::key;

pub const NAME: &str = "persistentvolume-binder";
/// The Events' source, as upstream's.
const EVENT_SOURCE: &str = "persistentvolume-controller";
/// Upstream's `--pvclaimbinder-sync-period`: pending claims are looked at again this often.
const RESYNC: Duration = Duration::from_secs(15);
const DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
const BETA_DEFAULT_CLASS: &str = "storageclass.beta.kubernetes.io/is-default-class";

/// What a reconcile fails with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{verb} PersistentVolume {name}: {source}")]
    Volume { verb: &'static str, name: String, #[source] source: kube::Error },
    #[error("{verb} PersistentVolumeClaim {key}: {source}")]
    Claim { verb: &'static str, key: String, #[source] source: kube::Error },
    #[error("PersistentVolume {0:?} is without a storage capacity")]
    NoCapacity(String),
    #[error("invalid binding of claim {claim:?} to volume {volume:?}: volume already claimed by {other:?}")]
    AlreadyClaimed { claim: String, volume: String, other: String },
}

impl Conflict for Error {
    fn is_conflict(&self) -> bool {
        match self {
            Error::Volume { source, .. } | Error::Claim { source, .. } => informer::is_conflict(source),
            _ => false,
        }
    }
}

struct Ctx {
    client: kube::Client,
    volumes: Store<PersistentVolume>,
    claims: Store<PersistentVolumeClaim>,
    classes: Store<StorageClass>,
    recorder: Recorder,
    claim_queue: UnboundedSender<ObjectRef<PersistentVolumeClaim>>,
}

fn name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or("")
}

fn volume_phase(volume: &PersistentVolume) -> &str {
    volume.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

fn claim_phase(claim: &PersistentVolumeClaim) -> &str {
    claim.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

fn claim_ref(volume: &PersistentVolume) -> Option<&ObjectReference> {
    volume.spec.as_ref()?.claim_ref.as_ref()
}

fn claim_ref_key(r: &ObjectReference) -> String {
    format!("{}/{}", r.namespace.as_deref().unwrap_or(""), r.name.as_deref().unwrap_or(""))
}

fn volume_name_of(claim: &PersistentVolumeClaim) -> &str {
    claim.spec.as_ref().and_then(|s| s.volume_name.as_deref()).unwrap_or("")
}

fn reclaim_policy(volume: &PersistentVolume) -> &str {
    volume.spec.as_ref().and_then(|s| s.persistent_volume_reclaim_policy.as_deref()).unwrap_or("")
}

fn set_annotation(meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, key: &str, value: &str) {
    meta.annotations.get_or_insert_with(Default::default).insert(key.into(), value.into());
}

/// The claim reference upstream's `reference.GetReference` makes of a claim.
fn reference_to(claim: &PersistentVolumeClaim) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("PersistentVolumeClaim".into()),
        namespace: claim.metadata.namespace.clone(),
        name: claim.metadata.name.clone(),
        uid: claim.metadata.uid.clone(),
        resource_version: claim.metadata.resource_version.clone(),
        field_path: None,
    }
}

/// The volume bound to `claim` (upstream's `GetBindVolumeToClaim`), if that changes it.
fn volume_bound_to(volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> Option<PersistentVolume> {
    let set_by_controller = !matching::is_volume_bound_to_claim(volume, claim);
    let mut bound = volume.clone();
    let mut dirty = false;
    let current = claim_ref(volume);
    if current.is_none_or(|r| r.name != claim.metadata.name || r.namespace != claim.metadata.namespace || r.uid != claim.metadata.uid) {
        bound.spec.get_or_insert_with(Default::default).claim_ref = Some(reference_to(claim));
        dirty = true;
    }
    if set_by_controller && !has_annotation(&bound.metadata, ANN_BOUND_BY_CONTROLLER) {
        set_annotation(&mut bound.metadata, ANN_BOUND_BY_CONTROLLER, "yes");
        dirty = true;
    }
    dirty.then_some(bound)
}

/// The claim bound to `volume` (upstream's `bindClaimToVolume`), if that changes it.
fn claim_bound_to(claim: &PersistentVolumeClaim, volume: &PersistentVolume) -> Option<PersistentVolumeClaim> {
    let mut bound = claim.clone();
    let mut dirty = false;
    let volume_name = name_of(&volume.metadata);
    if volume_name_of(claim) != volume_name {
        bound.spec.get_or_insert_with(Default::default).volume_name = Some(volume_name.into());
        if !has_annotation(&bound.metadata, ANN_BOUND_BY_CONTROLLER) {
            set_annotation(&mut bound.metadata, ANN_BOUND_BY_CONTROLLER, "yes");
        }
        dirty = true;
    }
    if !has_annotation(&bound.metadata, ANN_BIND_COMPLETED) {
        set_annotation(&mut bound.metadata, ANN_BIND_COMPLETED, "yes");
        dirty = true;
    }
    dirty.then_some(bound)
}

/// The claim's status in `phase` with `volume`'s modes and capacity (upstream's
/// `updateClaimStatus`), if that changes it.
fn claim_status_for(claim: &PersistentVolumeClaim, phase: &str, volume: Option<&PersistentVolume>) -> Result<Option<PersistentVolumeClaim>, Error> {
    let mut updated = claim.clone();
    let status = updated.status.get_or_insert_with(Default::default);
    let mut dirty = false;
    let phase_changes = claim_phase(claim) != phase;
    if phase_changes {
        status.phase = Some(phase.into());
        dirty = true;
    }
    match volume {
        None => {
            for cleared in [status.access_modes.take().is_some(), status.capacity.take().is_some(), status.current_volume_attributes_class_name.take().is_some()] {
                dirty |= cleared;
            }
        }
        Some(volume) => {
            let modes = volume.spec.as_ref().and_then(|s| s.access_modes.clone());
            if status.access_modes != modes {
                status.access_modes = modes;
                dirty = true;
            }
            if phase_changes {
                let capacity = volume.spec.as_ref().and_then(|s| s.capacity.as_ref());
                let Some(volume_size) = capacity.and_then(|c| c.get("storage")) else {
                    return Err(Error::NoCapacity(name_of(&volume.metadata).into()));
                };
                let claim_size = status.capacity.as_ref().and_then(|c| c.get("storage"));
                let same = claim_size.is_some_and(|q| {
                    matches!((ironkube_machinery::validation::quantity::Quantity::parse(&q.0), ironkube_machinery::validation::quantity::Quantity::parse(&volume_size.0)), (Ok(a), Ok(b)) if a == b)
                });
                if !same {
                    status.capacity = capacity.cloned();
                    dirty = true;
                }
            }
        }
    }
    Ok(dirty.then_some(updated))
}

/// The default StorageClass: the newest of those annotated as default.
fn default_class(classes: &[Arc<StorageClass>]) -> Option<Arc<StorageClass>> {
    let is_default = |c: &StorageClass| {
        let a = c.metadata.annotations.as_ref();
        a.and_then(|a| a.get(DEFAULT_CLASS)).map(String::as_str) == Some("true") || a.and_then(|a| a.get(BETA_DEFAULT_CLASS)).map(String::as_str) == Some("true")
    };
    let mut defaults: Vec<&Arc<StorageClass>> = classes.iter().filter(|c| is_default(c)).collect();
    defaults.sort_by(|a, b| {
        let (ta, tb) = (a.metadata.creation_timestamp.as_ref().map(|t| t.0), b.metadata.creation_timestamp.as_ref().map(|t| t.0));
        tb.cmp(&ta).then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    defaults.first().map(|c| (*c).clone())
}

impl Ctx {
    fn volume_api(&self) -> Api<PersistentVolume> {
        Api::all(self.client.clone())
    }

    fn claim_api(&self, claim: &PersistentVolumeClaim) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.client.clone(), claim.metadata.namespace.as_deref().unwrap_or(""))
    }

    fn class(&self, name: &str) -> Option<Arc<StorageClass>> {
        self.classes.get(&ObjectRef::new(name))
    }

    async fn replace_volume(&self, volume: &PersistentVolume) -> Result<PersistentVolume, Error> {
        let name = name_of(&volume.metadata).to_string();
        self.volume_api().replace(&name, &PostParams::default(), volume).await.map_err(|source| Error::Volume { verb: "updating", name, source })
    }

    async fn replace_claim(&self, claim: &PersistentVolumeClaim) -> Result<PersistentVolumeClaim, Error> {
        self.claim_api(claim)
            .replace(name_of(&claim.metadata), &PostParams::default(), claim)
            .await
            .map_err(|source| Error::Claim { verb: "updating", key: key(&claim.metadata), source })
    }

    /// Upstream's `updateVolumePhase`.
    async fn update_volume_phase(&self, volume: PersistentVolume, phase: &str, message: Option<String>) -> Result<PersistentVolume, Error> {
        if volume_phase(&volume) == phase {
            return Ok(volume);
        }
        let mut updated = volume;
        let status = updated.status.get_or_insert_with(Default::default);
        status.phase = Some(phase.into());
        status.message = message;
        let name = name_of(&updated.metadata).to_string();
        debug!(volume = %name, phase, "volume phase");
        self.volume_api()
            .replace_status(&name, &PostParams::default(), &updated)
            .await
            .map_err(|source| Error::Volume { verb: "updating the status of", name, source })
    }

    /// Upstream's `updateVolumePhaseWithEvent`: the event only when the phase changes.
    async fn update_volume_phase_with_event(&self, volume: PersistentVolume, phase: &str, reason: &str, message: String) -> Result<PersistentVolume, Error> {
        if volume_phase(&volume) == phase {
            return Ok(volume);
        }
        let updated = self.update_volume_phase(volume, phase, Some(message.clone())).await?;
        self.recorder.warning(&updated, reason, message);
        Ok(updated)
    }

    /// Upstream's `updateClaimStatus`.
    async fn update_claim_status(&self, claim: PersistentVolumeClaim, phase: &str, volume: Option<&PersistentVolume>) -> Result<PersistentVolumeClaim, Error> {
        let Some(updated) = claim_status_for(&claim, phase, volume)? else { return Ok(claim) };
        self.claim_api(&updated)
            .replace_status(name_of(&updated.metadata), &PostParams::default(), &updated)
            .await
            .map_err(|source| Error::Claim { verb: "updating the status of", key: key(&claim.metadata), source })
    }

    /// Upstream's `updateClaimStatusWithEvent`.
    async fn update_claim_status_with_event(&self, claim: PersistentVolumeClaim, phase: &str, reason: &str, message: &str) -> Result<PersistentVolumeClaim, Error> {
        if claim_phase(&claim) == phase {
            return Ok(claim);
        }
        let updated = self.update_claim_status(claim, phase, None).await?;
        self.recorder.warning(&updated, reason, message.into());
        Ok(updated)
    }

    /// Binds the volume and the claim to each other, in upstream's four steps.
    async fn bind(&self, volume: PersistentVolume, claim: PersistentVolumeClaim) -> Result<(), Error> {
        let claim_key = key(&claim.metadata);
        let volume = match volume_bound_to(&volume, &claim) {
            Some(bound) => self.replace_volume(&bound).await?,
            None => volume,
        };
        let volume = self.update_volume_phase(volume, "Bound", None).await?;
        let claim = match claim_bound_to(&claim, &volume) {
            Some(bound) => self.replace_claim(&bound).await?,
            None => claim,
        };
        self.update_claim_status(claim, "Bound", Some(&volume)).await?;
        info!(volume = %name_of(&volume.metadata), claim = %claim_key, "bound");
        Ok(())
    }

    /// Upstream's `unbindVolume`: a binding the controller made is forgotten; a pre-binding
    /// the user made keeps its name but loses the uid. The volume is Available again.
    async fn unbind_volume(&self, volume: PersistentVolume) -> Result<(), Error> {
        let mut unbound = volume.clone();
        if has_annotation(&volume.metadata, ANN_BOUND_BY_CONTROLLER) {
            if let Some(spec) = unbound.spec.as_mut() {
                spec.claim_ref = None;
            }
            if let Some(a) = unbound.metadata.annotations.as_mut() {
                a.remove(ANN_BOUND_BY_CONTROLLER);
                if a.is_empty() {
                    unbound.metadata.annotations = None;
                }
            }
        } else if let Some(r) = unbound.spec.as_mut().and_then(|s| s.claim_ref.as_mut()) {
            r.uid = Some(String::new());
        }
        let unbound = self.replace_volume(&unbound).await?;
        self.update_volume_phase(unbound, "Available", None).await?;
        Ok(())
    }

    /// Upstream's `isVolumeReleased`, on a fresh read.
    fn is_released(&self, volume: &PersistentVolume) -> bool {
        let Some(r) = claim_ref(volume) else { return false };
        let uid = r.uid.as_deref().unwrap_or("");
        if uid.is_empty() {
            return false;
        }
        let claim_key = ObjectRef::new(r.name.as_deref().unwrap_or("")).within(r.namespace.as_deref().unwrap_or(""));
        match self.claims.get(&claim_key) {
            Some(claim) if claim.metadata.uid.as_deref() == Some(uid) => {
                let name = volume_name_of(&claim);
                !name.is_empty() && name != name_of(&volume.metadata)
            }
            _ => true,
        }
    }

    /// Upstream's `reclaimVolume`, with no volume plugins: Retain keeps the volume; Recycle
    /// fails for want of a recycler; Delete leaves CSI and externally provisioned volumes to
    /// their external deleter and deletes the others' objects.
    async fn reclaim(&self, volume: PersistentVolume) -> Result<(), Error> {
        if volume.metadata.annotations.as_ref().and_then(|a| a.get(ANN_MIGRATED_TO)).is_some_and(|m| !m.is_empty()) {
            return Ok(());
        }
        let name = name_of(&volume.metadata).to_string();
        match reclaim_policy(&volume) {
            "Retain" => debug!(volume = %name, "released volume is retained"),
            "Recycle" => {
                let Some(fresh) = self.volume_api().get_opt(&name).await.map_err(|source| Error::Volume { verb: "reading", name: name.clone(), source })? else {
                    return Ok(());
                };
                if !self.is_released(&fresh) {
                    return Ok(());
                }
                self.update_volume_phase_with_event(fresh, "Failed", "VolumeFailedRecycle", "No recycler plugin found for the volume!".into()).await?;
            }
            "Delete" => {
                let Some(fresh) = self.volume_api().get_opt(&name).await.map_err(|source| Error::Volume { verb: "reading", name: name.clone(), source })? else {
                    return Ok(());
                };
                if !self.is_released(&fresh) || has_external_deleter(&fresh) {
                    return Ok(());
                }
                match self.volume_api().delete(&name, &DeleteParams::default()).await {
                    Ok(_) => info!(volume = %name, "deleted the released volume"),
                    Err(e) if informer::is_not_found(&e) => {}
                    Err(source) => return Err(Error::Volume { verb: "deleting", name, source }),
                }
            }
            _ => {
                self.update_volume_phase_with_event(volume, "Failed", "VolumeUnknownReclaimPolicy", "Volume has unrecognized PersistentVolumeReclaimPolicy".into()).await?;
            }
        }
        Ok(())
    }
}

/// Whether deleting the volume's storage is an external deleter's job (upstream's
/// `findDeletablePlugin` answering no plugin and no error).
fn has_external_deleter(volume: &PersistentVolume) -> bool {
    let provisioned_by = volume.metadata.annotations.as_ref().and_then(|a| a.get(ANN_DYNAMICALLY_PROVISIONED)).map(String::as_str).unwrap_or("");
    (!provisioned_by.is_empty() && !provisioned_by.starts_with("kubernetes.io/"))
        || volume.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(ANN_MIGRATED_TO))
        || volume.spec.as_ref().is_some_and(|s| s.csi.is_some())
}

#[instrument(skip_all, fields(controller = NAME, key = %key(&claim.metadata)))]
async fn reconcile_claim(claim: Arc<PersistentVolumeClaim>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let claim = (*claim).clone();
    if has_annotation(&claim.metadata, ANN_BIND_COMPLETED) {
        sync_bound_claim(&ctx, claim).await?;
        return Ok(Action::await_change());
    }
    sync_unbound_claim(&ctx, claim).await?;
    Ok(Action::requeue(RESYNC))
}

async fn sync_unbound_claim(ctx: &Ctx, claim: PersistentVolumeClaim) -> Result<(), Error> {
    let claim_key = key(&claim.metadata);
    let requested_volume = volume_name_of(&claim).to_string();
    if requested_volume.is_empty() {
        let class_name = claim_class(&claim).to_string();
        let class = (!class_name.is_empty()).then(|| ctx.class(&class_name)).flatten();
        let delay_binding = class.as_ref().is_some_and(|c| c.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer"));
        let volumes = ctx.volumes.state();
        if let Some(volume) = matching::find_best_match(&claim, volumes.iter().map(|v| &**v), delay_binding) {
            return ctx.bind(volume.clone(), claim).await;
        }
        if !claim_has_class(&claim)
            && let Some(default) = default_class(&ctx.classes.state())
        {
            let mut with_class = claim.clone();
            with_class.spec.get_or_insert_with(Default::default).storage_class_name = default.metadata.name.clone();
            ctx.replace_claim(&with_class).await?;
            return Ok(());
        }
        if delay_binding && !has_annotation(&claim.metadata, ANN_SELECTED_NODE) {
            ctx.recorder.normal(&claim, "WaitForFirstConsumer", "waiting for first consumer to be created before binding".into());
        } else if !class_name.is_empty() {
            return provision(ctx, claim, &class_name, class).await;
        } else {
            ctx.recorder.normal(&claim, "FailedBinding", "no persistent volumes available for this claim and no storage class is set".into());
        }
        ctx.update_claim_status(claim, "Pending", None).await?;
        return Ok(());
    }
    let Some(volume) = ctx.volumes.get(&ObjectRef::new(&requested_volume)) else {
        ctx.update_claim_status(claim, "Pending", None).await?;
        return Ok(());
    };
    let volume = (*volume).clone();
    if claim_ref(&volume).is_none() {
        if let Err(why) = matching::check_volume_satisfies_claim(&volume, &claim) {
            ctx.recorder.warning(&claim, "VolumeMismatch", format!("Cannot bind to requested volume {requested_volume:?}: {why}"));
            ctx.update_claim_status(claim, "Pending", None).await?;
            return Ok(());
        }
        return ctx.bind(volume, claim).await;
    }
    if matching::is_volume_bound_to_claim(&volume, &claim) {
        return ctx.bind(volume, claim).await;
    }
    ctx.recorder.warning(&claim, "FailedBinding", format!("volume {requested_volume:?} already bound to a different claim."));
    if has_annotation(&claim.metadata, ANN_BOUND_BY_CONTROLLER) {
        let other = claim_ref(&volume).map(claim_ref_key).unwrap_or_default();
        return Err(Error::AlreadyClaimed { claim: claim_key, volume: requested_volume, other });
    }
    ctx.update_claim_status(claim, "Pending", None).await?;
    Ok(())
}

/// Upstream's `provisionClaim` without in-tree provisioners: a class that does not exist or
/// names an in-tree plugin fails; an external provisioner is asked through the claim's
/// annotations.
async fn provision(ctx: &Ctx, claim: PersistentVolumeClaim, class_name: &str, class: Option<Arc<StorageClass>>) -> Result<(), Error> {
    let Some(class) = class else {
        ctx.recorder.warning(&claim, "ProvisioningFailed", format!("storageclass.storage.k8s.io {class_name:?} not found"));
        return Ok(());
    };
    let provisioner = class.provisioner.clone();
    if provisioner.starts_with("kubernetes.io/") {
        ctx.recorder.warning(&claim, "ProvisioningFailed", format!("no volume plugin matched name: {provisioner}"));
        return Ok(());
    }
    let annotations = claim.metadata.annotations.as_ref();
    let asked = |k: &str| annotations.and_then(|a| a.get(k)).map(String::as_str) == Some(provisioner.as_str());
    let claim = if asked(ANN_STORAGE_PROVISIONER) && asked(ANN_BETA_STORAGE_PROVISIONER) {
        claim
    } else {
        let mut asking = claim.clone();
        set_annotation(&mut asking.metadata, ANN_BETA_STORAGE_PROVISIONER, &provisioner);
        set_annotation(&mut asking.metadata, ANN_STORAGE_PROVISIONER, &provisioner);
        match ctx.replace_claim(&asking).await {
            Ok(saved) => saved,
            Err(e) => {
                ctx.recorder.warning(&claim, "ProvisioningFailed", format!("Error saving claim: {e}"));
                return Err(e);
            }
        }
    };
    ctx.recorder.normal(
        &claim,
        "ExternalProvisioning",
        format!(
            "Waiting for a volume to be created either by the external provisioner '{provisioner}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."
        ),
    );
    Ok(())
}

async fn sync_bound_claim(ctx: &Ctx, claim: PersistentVolumeClaim) -> Result<(), Error> {
    let volume_name = volume_name_of(&claim).to_string();
    if volume_name.is_empty() {
        ctx.update_claim_status_with_event(claim, "Lost", "ClaimLost", "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!").await?;
        return Ok(());
    }
    let Some(volume) = ctx.volumes.get(&ObjectRef::new(&volume_name)) else {
        ctx.update_claim_status_with_event(claim, "Lost", "ClaimLost", "Bound claim has lost its PersistentVolume. Data on the volume is lost!").await?;
        return Ok(());
    };
    let volume = (*volume).clone();
    match claim_ref(&volume) {
        None => ctx.bind(volume, claim).await,
        Some(r) if r.uid == claim.metadata.uid => ctx.bind(volume, claim).await,
        Some(_) => {
            ctx.update_claim_status_with_event(claim, "Lost", "ClaimMisbound", "Two claims are bound to the same volume, this one is bound incorrectly").await?;
            Ok(())
        }
    }
}

#[instrument(skip_all, fields(controller = NAME, key = %name_of(&volume.metadata)))]
async fn reconcile_volume(volume: Arc<PersistentVolume>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    sync_volume(&ctx, (*volume).clone()).await?;
    Ok(Action::await_change())
}

async fn sync_volume(ctx: &Ctx, volume: PersistentVolume) -> Result<(), Error> {
    let Some(r) = claim_ref(&volume).cloned() else {
        ctx.update_volume_phase(volume, "Available", None).await?;
        return Ok(());
    };
    let uid = r.uid.clone().unwrap_or_default();
    if uid.is_empty() {
        ctx.update_volume_phase(volume, "Available", None).await?;
        return Ok(());
    }
    let (ns, name) = (r.namespace.clone().unwrap_or_default(), r.name.clone().unwrap_or_default());
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    let claim_key = format!("{ns}/{name}");
    let live = || async { claims.get_opt(&name).await.map_err(|source| Error::Claim { verb: "reading", key: claim_key.clone(), source }) };
    let mut claim = ctx.claims.get(&ObjectRef::new(&name).within(&ns)).map(|c| (*c).clone());
    let phase = volume_phase(&volume).to_string();
    if claim.is_none() && phase != "Released" && phase != "Failed" {
        // The cache may not have seen a new claim yet.
        claim = live().await?;
    }
    if claim.as_ref().is_some_and(|c| c.metadata.uid.as_deref() != Some(uid.as_str())) {
        // The cache may hold an older claim of the same name.
        claim = live().await?.filter(|c| c.metadata.uid.as_deref() == Some(uid.as_str()));
    }
    let Some(claim) = claim else {
        let volume = if phase != "Released" && phase != "Failed" { ctx.update_volume_phase(volume, "Released", None).await? } else { volume };
        return ctx.reclaim(volume).await;
    };
    let bound_to = volume_name_of(&claim).to_string();
    if bound_to.is_empty() {
        if matching::volume_mode_mismatch(&claim, &volume) {
            ctx.recorder.warning(&volume, "VolumeMismatch", format!("Cannot bind PersistentVolume to requested PersistentVolumeClaim {:?} due to incompatible volumeMode.", name_of(&claim.metadata)));
            ctx.recorder.warning(&claim, "VolumeMismatch", format!("Cannot bind PersistentVolume {:?} to requested PersistentVolumeClaim due to incompatible volumeMode.", name_of(&volume.metadata)));
            return Ok(());
        }
        let _ = ctx.claim_queue.unbounded_send(ObjectRef::from_obj(&claim));
        return Ok(());
    }
    if bound_to == name_of(&volume.metadata) {
        ctx.update_volume_phase(volume, "Bound", None).await?;
        return Ok(());
    }
    if has_annotation(&volume.metadata, ANN_DYNAMICALLY_PROVISIONED) && reclaim_policy(&volume) == "Delete" {
        let volume = if phase != "Released" && phase != "Failed" { ctx.update_volume_phase(volume, "Released", None).await? } else { volume };
        return ctx.reclaim(volume).await;
    }
    ctx.unbind_volume(volume).await
}

/// Claims to look at after a volume changed: its claim, and when it is free every claim
/// not bound yet.
fn claims_for_volume(change: &Change<PersistentVolume>, claims: &Store<PersistentVolumeClaim>) -> Vec<ObjectRef<PersistentVolumeClaim>> {
    let volume = change.object();
    match claim_ref(volume) {
        Some(r) if !r.uid.as_deref().unwrap_or("").is_empty() || matches!(change, Change::Deleted(_)) => {
            vec![ObjectRef::new(r.name.as_deref().unwrap_or("")).within(r.namespace.as_deref().unwrap_or(""))]
        }
        _ if matches!(change, Change::Deleted(_)) => Vec::new(),
        named => {
            let mut out: Vec<_> = claims.state().iter().filter(|c| !has_annotation(&c.metadata, ANN_BIND_COMPLETED)).map(|c| ObjectRef::from_obj(&**c)).collect();
            if let Some(r) = named {
                out.push(ObjectRef::new(r.name.as_deref().unwrap_or("")).within(r.namespace.as_deref().unwrap_or("")));
            }
            out
        }
    }
}

/// Volumes to look at after a claim changed: the one it names and those whose claimRef
/// names it.
fn volumes_for_claim(claim: &PersistentVolumeClaim, volumes: &Store<PersistentVolume>) -> Vec<ObjectRef<PersistentVolume>> {
    let mut out: Vec<ObjectRef<PersistentVolume>> = volumes
        .state()
        .iter()
        .filter(|v| claim_ref(v).is_some_and(|r| r.name == claim.metadata.name && r.namespace == claim.metadata.namespace))
        .map(|v| ObjectRef::from_obj(&**v))
        .collect();
    let named = volume_name_of(claim);
    if !named.is_empty() {
        out.push(ObjectRef::new(named));
    }
    out
}

pub async fn run(client: kube::Client, stop: CancellationToken) {
    let (volumes, volume_changes) = informer::informer(Api::<PersistentVolume>::all(client.clone()), watcher::Config::default(), "persistentvolumes");
    let (claims, claim_changes) = informer::informer(Api::<PersistentVolumeClaim>::all(client.clone()), watcher::Config::default(), "persistentvolumeclaims");
    let (classes, class_changes) = informer::informer(Api::<StorageClass>::all(client.clone()), watcher::Config::default(), "storageclasses");
    let (claim_tx, claim_rx) = unbounded();
    let (volume_tx, volume_rx) = unbounded();
    let forward = {
        let (volumes, claims, claim_tx) = (volumes.clone(), claims.clone(), claim_tx.clone());
        let stop = stop.clone();
        enum Either {
            Volume(Change<PersistentVolume>),
            Claim(Change<PersistentVolumeClaim>),
            Class,
        }
        let mut merged = futures::stream::select(
            futures::stream::select(volume_changes.map(Either::Volume), claim_changes.map(Either::Claim)),
            class_changes.map(|_| Either::Class),
        );
        async move {
            loop {
                let next = tokio::select! {
                    _ = stop.cancelled() => break,
                    next = merged.next() => next,
                };
                match next {
                    None => break,
                    Some(Either::Volume(change)) => {
                        for r in claims_for_volume(&change, &claims) {
                            let _ = claim_tx.unbounded_send(r);
                        }
                        if !matches!(change, Change::Deleted(_)) {
                            let _ = volume_tx.unbounded_send(ObjectRef::from_obj(&**change.object()));
                        }
                    }
                    Some(Either::Claim(change)) => {
                        for r in volumes_for_claim(change.object(), &volumes) {
                            let _ = volume_tx.unbounded_send(r);
                        }
                        if !matches!(change, Change::Deleted(_)) {
                            let _ = claim_tx.unbounded_send(ObjectRef::from_obj(&**change.object()));
                        }
                    }
                    Some(Either::Class) => {}
                }
            }
        }
    };
    let ctx = Arc::new(Ctx {
        recorder: Recorder::new(client.clone(), EVENT_SOURCE),
        client,
        volumes: volumes.clone(),
        claims: claims.clone(),
        classes,
        claim_queue: claim_tx,
    });
    info!("starting the PersistentVolume binder");
    let retry = informer::Retry::default();
    let claim_loop = informer::run(NAME, claims, claim_rx.boxed(), ctx.clone(), reconcile_claim, retry, stop.clone());
    let volume_loop = informer::run(NAME, volumes, volume_rx.boxed(), ctx, reconcile_volume, retry, stop);
    futures::future::join3(forward.boxed(), claim_loop, volume_loop).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claim(extra: serde_json::Value) -> PersistentVolumeClaim {
        let mut c = json!({"metadata": {"name": "data", "namespace": "ns", "uid": "cu", "resourceVersion": "7"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Pending"}});
        if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                c.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(c).expect("claim")
    }

    fn volume(spec_extra: serde_json::Value) -> PersistentVolume {
        let mut spec = json!({"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce", "ReadOnlyMany"]});
        if let (Some(s), Some(e)) = (spec.as_object_mut(), spec_extra.as_object()) {
            for (k, v) in e {
                s.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(json!({"metadata": {"name": "pv1"}, "spec": spec, "status": {"phase": "Available"}})).expect("volume")
    }

    #[test]
    fn binding_a_volume_to_a_claim() {
        let bound = volume_bound_to(&volume(json!({})), &claim(json!({}))).expect("changes");
        let r = bound.spec.as_ref().and_then(|s| s.claim_ref.clone()).expect("claimRef");
        assert_eq!((r.kind.as_deref(), r.api_version.as_deref(), r.uid.as_deref(), r.resource_version.as_deref()), (Some("PersistentVolumeClaim"), Some("v1"), Some("cu"), Some("7")));
        assert!(has_annotation(&bound.metadata, ANN_BOUND_BY_CONTROLLER));
        // Pre-bound by the user (no uid yet): the uid is filled in, no bound-by-controller.
        let pre = volume(json!({"claimRef": {"namespace": "ns", "name": "data"}}));
        let bound = volume_bound_to(&pre, &claim(json!({}))).expect("changes");
        assert!(!has_annotation(&bound.metadata, ANN_BOUND_BY_CONTROLLER));
        assert_eq!(bound.spec.and_then(|s| s.claim_ref).and_then(|r| r.uid).as_deref(), Some("cu"));
        // Already bound: nothing to write.
        let done = volume(json!({"claimRef": {"namespace": "ns", "name": "data", "uid": "cu"}}));
        assert!(volume_bound_to(&done, &claim(json!({}))).is_none());
    }

    #[test]
    fn binding_a_claim_to_a_volume() {
        let bound = claim_bound_to(&claim(json!({})), &volume(json!({}))).expect("changes");
        assert_eq!(bound.spec.as_ref().and_then(|s| s.volume_name.as_deref()), Some("pv1"));
        assert!(has_annotation(&bound.metadata, ANN_BIND_COMPLETED) && has_annotation(&bound.metadata, ANN_BOUND_BY_CONTROLLER));
        // Pre-bound by volumeName: only bind-completed is added.
        let pre = claim(json!({"spec": {"volumeName": "pv1", "accessModes": ["ReadWriteOnce"]}}));
        let bound = claim_bound_to(&pre, &volume(json!({}))).expect("changes");
        assert!(has_annotation(&bound.metadata, ANN_BIND_COMPLETED) && !has_annotation(&bound.metadata, ANN_BOUND_BY_CONTROLLER));
        assert!(claim_bound_to(&bound, &volume(json!({}))).is_none());
    }

    #[test]
    fn claim_status() {
        let bound = claim_status_for(&claim(json!({})), "Bound", Some(&volume(json!({})))).expect("ok").expect("changes");
        let status = bound.status.expect("status");
        assert_eq!(status.phase.as_deref(), Some("Bound"));
        assert_eq!(status.access_modes, Some(vec!["ReadWriteOnce".to_string(), "ReadOnlyMany".to_string()]));
        assert_eq!(status.capacity.and_then(|c| c.get("storage").cloned()).map(|q| q.0), Some("5Gi".to_string()));
        assert!(claim_status_for(&claim(json!({})), "Pending", None).expect("ok").is_none());
        let no_capacity = volume(json!({"capacity": {}}));
        assert!(matches!(claim_status_for(&claim(json!({})), "Bound", Some(&no_capacity)), Err(Error::NoCapacity(_))));
    }

    #[test]
    fn external_deleters() {
        assert!(!has_external_deleter(&volume(json!({"hostPath": {"path": "/tmp/x"}}))));
        assert!(has_external_deleter(&volume(json!({"csi": {"driver": "d", "volumeHandle": "h"}}))));
    }

    #[test]
    fn default_class_is_the_newest() {
        let class = |name: &str, at: &str, default: bool| {
            let annotations = if default { json!({DEFAULT_CLASS: "true"}) } else { json!({}) };
            Arc::new(serde_json::from_value::<StorageClass>(json!({"metadata": {"name": name, "creationTimestamp": at, "annotations": annotations}, "provisioner": "p"})).expect("class"))
        };
        let classes = vec![class("old", "2025-01-01T00:00:00Z", true), class("new", "2025-02-01T00:00:00Z", true), class("newest", "2025-03-01T00:00:00Z", false)];
        assert_eq!(default_class(&classes).and_then(|c| c.metadata.name.clone()).as_deref(), Some("new"));
        assert!(default_class(&classes[2..]).is_none());
    }
}
