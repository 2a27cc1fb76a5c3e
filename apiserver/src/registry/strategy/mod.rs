//! Per-resource behaviour for the generic store: each resource's file says only what is
//! special about it (defaults, validation, status handling, field selectors, deletion).
//!
//! A strategy works on the object's JSON (`serde_json::Value`); where typed access helps it
//! converts to the k8s-openapi type itself.

use ironkube_machinery::FieldError;
use ironkube_machinery::resources::ResourceInfo;
use serde_json::Value;

/// What the store asks of a resource. Every method has upstream's common default.
pub trait Strategy: Send + Sync {
    /// `metadata.generation` starts at 1 and grows with every change outside metadata/status.
    fn tracks_generation(&self) -> bool {
        false
    }

    /// Defaults applied to every incoming object (create, update, patch result), like
    /// upstream's defaulting on decode.
    fn default(&self, _obj: &mut Value) {}

    /// Clears or sets fields users may not choose on create (after defaulting). The store has
    /// already dropped `status` when the resource has a status subresource, unless
    /// [`Strategy::keeps_status_on_create`] says otherwise.
    fn prepare_for_create(&self, _obj: &mut Value) {}

    /// Carries fields over from `old` that an update of the main resource may not change.
    /// (The store already restores `status` when the resource has a status subresource.)
    fn prepare_for_update(&self, _new: &mut Value, _old: &Value) {}

    /// Whether `status` given on create survives (nodes, namespaces set their own).
    fn keeps_status_on_create(&self) -> bool {
        false
    }

    /// Validates the object's name; returns upstream's messages (empty = valid).
    fn validate_name(&self, name: &str) -> Vec<String> {
        ironkube_machinery::validation::names::dns1123_subdomain(name)
    }

    /// Validation of a new object beyond object metadata.
    fn validate(&self, _obj: &Value) -> Vec<FieldError> {
        Vec::new()
    }

    /// Validation of an update beyond object metadata; defaults to validating the new object.
    fn validate_update(&self, new: &Value, _old: &Value) -> Vec<FieldError> {
        self.validate(new)
    }

    /// Validation of a status-subresource update.
    fn validate_status_update(&self, _new: &Value, _old: &Value) -> Vec<FieldError> {
        Vec::new()
    }

    /// Warnings (the `Warning` header) for a create or update.
    fn warnings(&self, _obj: &Value, _old: Option<&Value>) -> Vec<String> {
        Vec::new()
    }

    /// Whether PUT of a missing object creates it.
    fn allow_create_on_update(&self) -> bool {
        false
    }

    /// Whether PUT without `metadata.resourceVersion` is accepted.
    fn allow_unconditional_update(&self) -> bool {
        true
    }

    /// Selectable fields beyond `metadata.name` and `metadata.namespace`, with their values.
    fn field_labels(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// Grace period for a DELETE without one (`None`: deleted immediately unless finalizers).
    fn default_grace_period(&self, _obj: &Value) -> Option<i64> {
        None
    }

    /// Whether a DELETE only marks the object (namespaces wait for their spec finalizers).
    fn holds_deletion(&self, _obj: &Value) -> bool {
        false
    }

    /// Changes made when an object starts being deleted (a namespace turns Terminating).
    fn prepare_for_delete(&self, _obj: &mut Value) {}

    /// Whether DELETE answers with the object (pods, services) rather than a Status.
    fn return_deleted_object(&self) -> bool {
        false
    }
}

/// The strategy of a resource with nothing special about it.
pub struct Plain;

impl Strategy for Plain {}

/// Picks the strategy for a resource.
pub fn for_resource(info: &ResourceInfo) -> Box<dyn Strategy> {
    let _ = info;
    Box::new(Plain)
}
