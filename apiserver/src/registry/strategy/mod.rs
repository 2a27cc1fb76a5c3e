//! Per-resource behaviour for the generic store: each resource's file says only what is
//! special about it (defaults, validation, status handling, field selectors, deletion).
//!
//! A strategy works on the object's JSON (`serde_json::Value`); where typed access helps it
//! converts to the k8s-openapi type itself.

mod apps;
mod batch;
mod certificates;
mod configmap;
mod event;
mod lease;
mod limit_range;
mod namespace;
mod networking;
mod node;
mod object;
mod pod;
mod pod_spec;
mod policy;
mod rbac;
mod replication_controller;
mod scheduling;
mod secret;
mod service;
mod service_account;
mod storage;
mod workload;

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

    /// Status-subresource changes beyond the split the store makes (spec and most metadata
    /// from `old`, status from `new`), such as a phase transition's timestamp.
    fn prepare_for_status_update(&self, _new: &mut Value, _old: &Value) {}

    /// The metadata fields a status update may change. Upstream's status strategies reset
    /// spec and keep the request's labels, annotations, finalizers and owner references,
    /// but for a few that reset some of them (Deployments their labels, pods their owner
    /// references) or all of them (see [`STATUS_RESETS_METADATA`]).
    fn status_update_metadata(&self) -> &'static [&'static str] {
        &["labels", "annotations", "finalizers", "ownerReferences"]
    }

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

    /// The grace period of a DELETE given the requested one (`None`: this resource is
    /// deleted immediately unless finalizers hold it; only pods delete gracefully).
    fn grace_period(&self, _obj: &Value, _requested: Option<i64>) -> Option<i64> {
        None
    }

    /// Whether an update changed what `metadata.generation` counts (default: anything
    /// outside metadata and status; deployments also count annotations).
    fn generation_changed(&self, new: &Value, old: &Value) -> bool {
        let strip = |v: &Value| -> Value {
            let mut v = v.clone();
            if let Some(m) = v.as_object_mut() {
                m.remove("metadata");
                m.remove("status");
            }
            v
        };
        strip(new) != strip(old)
    }

    /// The conflict message for a DELETE of an object already being deleted that this
    /// resource keeps waiting (namespaces).
    fn deletion_in_progress(&self) -> Option<&'static str> {
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

/// Resources whose status updates keep all metadata as stored (upstream's
/// `ResetObjectMetaForStatus` or a whole-ObjectMeta reset).
pub const STATUS_RESETS_METADATA: &[(&str, &str)] = &[
    ("networking.k8s.io", "servicecidrs"),
    ("resource.k8s.io", "resourceclaims"),
    ("internal.apiserver.k8s.io", "storageversions"),
    ("storage.k8s.io", "volumeattachments"),
    ("flowcontrol.apiserver.k8s.io", "flowschemas"),
    ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations"),
    ("admissionregistration.k8s.io", "validatingadmissionpolicies"),
];

/// A resource whose only specialities are upstream's store and strategy flags.
pub struct Flags {
    /// The strategy sets `metadata.generation`.
    pub generation: bool,
    /// The store answers DELETE with the object (`ReturnDeletedObject`).
    pub deleted_object: bool,
    /// PUT of a missing object creates it.
    pub create_on_update: bool,
}

impl Strategy for Flags {
    fn tracks_generation(&self) -> bool {
        self.generation
    }

    fn return_deleted_object(&self) -> bool {
        self.deleted_object
    }

    fn allow_create_on_update(&self) -> bool {
        self.create_on_update
    }
}

const fn flags(generation: bool, deleted_object: bool, create_on_update: bool) -> Flags {
    Flags {
        generation,
        deleted_object,
        create_on_update,
    }
}

/// Picks the strategy for a resource.
pub fn for_resource(info: &ResourceInfo) -> Box<dyn Strategy> {
    use rbac::RbacKind;
    match (info.group, info.plural) {
        ("", "pods") => Box::new(pod::PodStrategy),
        ("", "podtemplates") => Box::new(pod::PodTemplateStrategy),
        ("", "replicationcontrollers") => {
            Box::new(replication_controller::ReplicationControllerStrategy)
        }
        ("", "services") => Box::new(service::ServiceStrategy),
        ("", "configmaps") => Box::new(configmap::ConfigMapStrategy),
        ("", "secrets") => Box::new(secret::SecretStrategy),
        ("", "namespaces") => Box::new(namespace::NamespaceStrategy),
        ("", "serviceaccounts") => Box::new(service_account::ServiceAccountStrategy),
        ("", "nodes") => Box::new(node::NodeStrategy),
        ("", "events") => Box::new(event::EventStrategy { strict: false }),
        ("events.k8s.io", "events") => Box::new(event::EventStrategy { strict: true }),
        ("", "endpoints") => Box::new(flags(false, false, true)),
        ("", "limitranges") => Box::new(limit_range::LimitRangeStrategy),
        ("", "persistentvolumeclaims") => Box::new(storage::PersistentVolumeClaimStrategy),
        ("", "persistentvolumes") => Box::new(storage::PersistentVolumeStrategy),
        ("apps", "deployments") => Box::new(apps::DeploymentStrategy),
        ("apps", "replicasets") => Box::new(apps::ReplicaSetStrategy),
        ("apps", "statefulsets") => Box::new(apps::StatefulSetStrategy),
        ("apps", "daemonsets") => Box::new(apps::DaemonSetStrategy),
        ("apps", "controllerrevisions") => Box::new(apps::ControllerRevisionStrategy),
        ("batch", "jobs") => Box::new(batch::JobStrategy),
        ("batch", "cronjobs") => Box::new(batch::CronJobStrategy),
        ("coordination.k8s.io", "leases") => Box::new(lease::LeaseStrategy),
        ("rbac.authorization.k8s.io", "roles") => Box::new(rbac::RbacStrategy(RbacKind::Role)),
        ("rbac.authorization.k8s.io", "clusterroles") => {
            Box::new(rbac::RbacStrategy(RbacKind::ClusterRole))
        }
        ("rbac.authorization.k8s.io", "rolebindings") => {
            Box::new(rbac::RbacStrategy(RbacKind::RoleBinding))
        }
        ("rbac.authorization.k8s.io", "clusterrolebindings") => {
            Box::new(rbac::RbacStrategy(RbacKind::ClusterRoleBinding))
        }
        ("scheduling.k8s.io", "priorityclasses") => Box::new(scheduling::PriorityClassStrategy),
        ("certificates.k8s.io", "certificatesigningrequests") => {
            Box::new(certificates::CertificateSigningRequestStrategy)
        }
        ("policy", "poddisruptionbudgets") => Box::new(policy::PodDisruptionBudgetStrategy),
        ("networking.k8s.io", "ipaddresses") => Box::new(networking::IpAddressStrategy),
        // The other strategies that set metadata.generation upstream.
        ("networking.k8s.io", "ingresses" | "networkpolicies" | "ingressclasses")
        | ("discovery.k8s.io", "endpointslices")
        | ("flowcontrol.apiserver.k8s.io", "flowschemas" | "prioritylevelconfigurations")
        | (
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations"
            | "validatingwebhookconfigurations"
            | "validatingadmissionpolicies"
            | "validatingadmissionpolicybindings"
            | "mutatingadmissionpolicies"
            | "mutatingadmissionpolicybindings",
        )
        | ("resource.k8s.io", "deviceclasses" | "resourceslices" | "devicetaintrules")
        | ("apiextensions.k8s.io", "customresourcedefinitions") => {
            Box::new(flags(true, false, false))
        }
        _ => Box::new(Plain),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironkube_machinery::resources;

    #[test]
    fn every_resource_gets_a_strategy() {
        for info in resources::all() {
            let s = for_resource(info);
            let _ = s.tracks_generation();
        }
        let pods = resources::lookup("", "v1", "pods").map(for_resource);
        assert!(pods.is_some_and(|s| s.tracks_generation() && s.return_deleted_object()));
        let svc = resources::lookup("", "v1", "services").map(for_resource);
        assert!(svc.is_some_and(|s| s.return_deleted_object() && !s.tracks_generation()));
        let deploy = resources::lookup("apps", "v1", "deployments").map(for_resource);
        assert!(deploy.is_some_and(|s| s.tracks_generation()));
    }

    /// Malformed objects get errors, never panics.
    #[test]
    fn malformed_input_does_not_panic() {
        use serde_json::json;
        let inputs = [
            json!({}),
            json!({"metadata": 5, "spec": "x", "status": []}),
            json!({"metadata": {"name": "a"}, "spec": {"containers": ["x", 1], "template": 3, "ports": [1, "a"], "selector": "s"}}),
            json!({"metadata": {"labels": []}, "spec": {"template": {"metadata": 1, "spec": {"containers": [{"name": 5}]}}}}),
            json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{}]}}}}, "updateStrategy": "x", "strategy": []}}),
            json!({"spec": {"type": "LoadBalancer", "ports": [{"port": "x"}], "clusterIPs": "a"}, "data": [], "stringData": {"a": 1}}),
            json!({"roleRef": 1, "subjects": {}, "rules": [{"verbs": "x"}], "involvedObject": []}),
        ];
        for info in resources::all() {
            let s = for_resource(info);
            for input in &inputs {
                let mut obj = input.clone();
                s.default(&mut obj);
                s.prepare_for_create(&mut obj);
                let _ = s.validate(&obj);
                let mut new = input.clone();
                s.default(&mut new);
                s.prepare_for_update(&mut new, &obj);
                let _ = s.validate_update(&new, &obj);
                let _ = s.validate_status_update(&new, &obj);
                let _ = s.warnings(&new, Some(&obj));
                let _ = s.field_labels(&obj);
                let _ = s.grace_period(&obj, None);
                let _ = s.holds_deletion(&obj);
                s.prepare_for_delete(&mut new);
            }
        }
    }
}
