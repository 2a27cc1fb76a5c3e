//! PersistentVolumes and their claims: the binder (upstream's `persistentvolume-binder`,
//! `pkg/controller/volume/persistentvolume`) that binds pending claims to pre-provisioned
//! volumes and releases and reclaims volumes whose claims went, and the two protection
//! controllers (`pvc-protection`, `pv-protection`) that remove the finalizers the API
//! server's StorageObjectInUseProtection admission adds once a claim is no longer used by a
//! scheduled pod, or a volume no longer bound.
//!
//! No volume plugins run here: nothing is provisioned, recycled or deleted on real storage.
//! Classes with an external provisioner get the provisioner annotations and an
//! ExternalProvisioning event as upstream; a released volume with the Delete policy that no
//! external deleter owns (not CSI, not provisioned by one) is deleted as an object.

mod binder;
pub mod matching;
mod protection;

pub use binder::run as run_binder;
pub use protection::{run_pv_protection, run_pvc_protection};

/// `pv.kubernetes.io/bind-completed`: the binder finished binding the claim.
pub const ANN_BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// `pv.kubernetes.io/bound-by-controller`: the binder (not the user) chose the binding.
pub const ANN_BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// The provisioner that made a volume.
pub const ANN_DYNAMICALLY_PROVISIONED: &str = "pv.kubernetes.io/provisioned-by";
/// A volume migrated to a CSI driver.
pub const ANN_MIGRATED_TO: &str = "pv.kubernetes.io/migrated-to";
/// The node the scheduler chose for a claim of a WaitForFirstConsumer class.
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The provisioner asked to make a volume for a claim (and its beta spelling).
pub const ANN_STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
pub const ANN_BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// The finalizers of the StorageObjectInUseProtection admission.
pub const PVC_PROTECTION_FINALIZER: &str = "kubernetes.io/pvc-protection";
pub const PV_PROTECTION_FINALIZER: &str = "kubernetes.io/pv-protection";

/// Whether the object's annotations hold `key`.
fn has_annotation(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, key: &str) -> bool {
    meta.annotations.as_ref().is_some_and(|a| a.contains_key(key))
}

/// Whether the object holds `finalizer`.
fn has_finalizer(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, finalizer: &str) -> bool {
    meta.finalizers.as_ref().is_some_and(|f| f.iter().any(|x| x == finalizer))
}

/// Upstream's `IsDeletionCandidate`: being deleted and still holding `finalizer`.
fn is_deletion_candidate(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, finalizer: &str) -> bool {
    meta.deletion_timestamp.is_some() && has_finalizer(meta, finalizer)
}

/// Upstream's `NeedToAddFinalizer`: not being deleted and lacking `finalizer`.
fn needs_finalizer(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, finalizer: &str) -> bool {
    meta.deletion_timestamp.is_none() && !has_finalizer(meta, finalizer)
}
