//! The apps group: Deployments, ReplicaSets, StatefulSets, DaemonSets and
//! ControllerRevisions, with upstream's apps/v1 defaults and validation.

use ironkube_machinery::field::{FieldError, Path};
use ironkube_machinery::validation::labels::validate_labels;
use ironkube_machinery::validation::meta::validate_annotations;
use ironkube_machinery::validation::names::dns1123_label;
use ironkube_machinery::validation::{FIELD_IMMUTABLE_ERROR_MSG, go_repr, validate_nonnegative};
use k8s_openapi::api::apps::v1::{DaemonSetSpec, DeploymentSpec, ReplicaSetSpec, StatefulSetSpec};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::Strategy;
use super::object::{child_obj, decode, default_field, default_ptr, each_obj, existing_obj};
use super::pod_spec::{
    PodSpecOptions, default_pod_template, default_pvc_template, validate_pod_specific_annotations,
    validate_pod_template_spec, validate_pvc_spec_basics,
};
use super::workload::{
    compile_selector, int_or_percent_value, not_more_than_100_percent, raw_selector,
    validate_always_restart, validate_collision_count, validate_positive_int_or_percent,
    validate_required_selector, validate_selector_matches_template, validate_status_counts,
};

fn spec_map(obj: &mut Value) -> Option<&mut serde_json::Map<String, Value>> {
    obj.as_object_mut().and_then(|o| child_obj(o, "spec"))
}

fn template_defaults(spec: &mut serde_json::Map<String, Value>) {
    if let Some(t) = child_obj(spec, "template") {
        default_pod_template(t);
    }
}

/// `spec.selector` may not change in apps/v1.
fn validate_selector_immutable(new: &Value, old: &Value) -> Vec<FieldError> {
    let (n, o) = match (raw_selector(new), raw_selector(old)) {
        (Ok(n), Ok(o)) => (n, o),
        (Err(e), _) | (_, Err(e)) => return vec![e],
    };
    if n != o {
        vec![go_repr::invalid_repr(
            Path::new("spec").child("selector"),
            &go_repr::label_selector_ptr(n.as_ref()),
            FIELD_IMMUTABLE_ERROR_MSG,
        )]
    } else {
        Vec::new()
    }
}

fn spec_of<T: serde::de::DeserializeOwned + Default>(obj: &Value) -> Result<T, Vec<FieldError>> {
    decode(obj.get("spec"), "spec").map_err(|e| vec![e])
}

fn status_of(obj: &Value) -> &Value {
    obj.get("status").unwrap_or(&Value::Null)
}

// --- Deployment ------------------------------------------------------------------------------

pub struct DeploymentStrategy;

impl Strategy for DeploymentStrategy {
    fn status_update_metadata(&self) -> &'static [&'static str] {
        &["annotations", "finalizers", "ownerReferences"]
    }

    fn generation_changed(&self, new: &Value, old: &Value) -> bool {
        // Rollbacks travel in annotations, so they count as a new generation.
        new.get("spec") != old.get("spec") || new["metadata"].get("annotations") != old["metadata"].get("annotations")
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        let Some(spec) = spec_map(obj) else { return };
        default_ptr(spec, "replicas", json!(1));
        if let Some(strategy) = child_obj(spec, "strategy") {
            default_field(strategy, "type", json!("RollingUpdate"));
            if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
                && let Some(ru) = child_obj(strategy, "rollingUpdate")
            {
                default_ptr(ru, "maxUnavailable", json!("25%"));
                default_ptr(ru, "maxSurge", json!("25%"));
            }
        }
        default_ptr(spec, "revisionHistoryLimit", json!(10));
        default_ptr(spec, "progressDeadlineSeconds", json!(600));
        template_defaults(spec);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        validate_deployment(obj)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = validate_deployment(new);
        errs.extend(validate_selector_immutable(new, old));
        errs
    }

    fn validate_status_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = validate_status_counts(
            status_of(new),
            &[
                "observedGeneration",
                "replicas",
                "updatedReplicas",
                "readyReplicas",
                "availableReplicas",
                "unavailableReplicas",
            ],
            &[
                (
                    "updatedReplicas",
                    "replicas",
                    "cannot be greater than status.replicas",
                ),
                (
                    "readyReplicas",
                    "replicas",
                    "cannot be greater than status.replicas",
                ),
                (
                    "availableReplicas",
                    "replicas",
                    "cannot be greater than status.replicas",
                ),
                (
                    "availableReplicas",
                    "readyReplicas",
                    "cannot be greater than readyReplicas",
                ),
            ],
            &Path::new("status"),
        );
        errs.extend(validate_collision_count(new, old));
        errs
    }
}

fn validate_deployment(obj: &Value) -> Vec<FieldError> {
    let spec: DeploymentSpec = match spec_of(obj) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let selector = match raw_selector(obj) {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    let path = Path::new("spec");
    let replicas = spec.replicas.unwrap_or(0);
    let mut errs = validate_nonnegative(i64::from(replicas), &path.child("replicas"));
    errs.extend(validate_required_selector(
        selector.as_ref(),
        "deployment",
        &path.child("selector"),
    ));
    match compile_selector(
        selector.as_ref(),
        &path.child("selector"),
        "invalid label selector",
    ) {
        Err(e) => errs.push(e),
        Ok(sel) => {
            let tp = path.child("template");
            errs.extend(validate_selector_matches_template(
                &sel,
                &spec.template,
                &tp.child("metadata").child("labels"),
            ));
            errs.extend(validate_pod_template_spec(
                &spec.template,
                &tp,
                PodSpecOptions::default(),
            ));
            errs.extend(validate_always_restart(&spec.template, &tp, "ReplicaSet"));
        }
    }
    errs.extend(validate_deployment_strategy(
        spec.strategy.as_ref(),
        &path.child("strategy"),
    ));
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    errs.extend(validate_nonnegative(
        i64::from(min_ready),
        &path.child("minReadySeconds"),
    ));
    if let Some(r) = spec.revision_history_limit {
        errs.extend(validate_nonnegative(
            i64::from(r),
            &path.child("revisionHistoryLimit"),
        ));
    }
    if let Some(p) = spec.progress_deadline_seconds {
        errs.extend(validate_nonnegative(
            i64::from(p),
            &path.child("progressDeadlineSeconds"),
        ));
        if p <= min_ready {
            errs.push(FieldError::invalid(
                path.child("progressDeadlineSeconds"),
                p.into(),
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
}

fn validate_deployment_strategy(
    s: Option<&k8s_openapi::api::apps::v1::DeploymentStrategy>,
    path: &Path,
) -> Vec<FieldError> {
    let s = s.cloned().unwrap_or_default();
    let ty = s.type_.as_deref().unwrap_or("");
    match ty {
        "Recreate" => {
            if s.rolling_update.is_some() {
                vec![FieldError::forbidden(
                    path.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                )]
            } else {
                Vec::new()
            }
        }
        "RollingUpdate" => match &s.rolling_update {
            None => vec![FieldError::required(
                path.child("rollingUpdate"),
                "this should be defaulted and never be nil",
            )],
            Some(ru) => {
                let rp = path.child("rollingUpdate");
                let zero = IntOrString::Int(0);
                let unavailable = ru.max_unavailable.clone().unwrap_or(zero.clone());
                let surge = ru.max_surge.clone().unwrap_or(zero);
                let mut errs =
                    validate_positive_int_or_percent(&unavailable, &rp.child("maxUnavailable"));
                errs.extend(validate_positive_int_or_percent(
                    &surge,
                    &rp.child("maxSurge"),
                ));
                if int_or_percent_value(&unavailable) == 0 && int_or_percent_value(&surge) == 0 {
                    errs.push(go_repr::invalid_repr(
                        rp.child("maxUnavailable"),
                        &go_repr::int_or_string(&unavailable),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                errs.extend(not_more_than_100_percent(
                    &unavailable,
                    &rp.child("maxUnavailable"),
                ));
                errs
            }
        },
        other => vec![go_repr::not_supported_repr(
            path,
            &format!(
                "apps.DeploymentStrategy{{Type:{:?}, RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}}",
                other
            ),
            &["Recreate", "RollingUpdate"],
        )],
    }
}

// --- ReplicaSet ------------------------------------------------------------------------------

pub struct ReplicaSetStrategy;

impl Strategy for ReplicaSetStrategy {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        let Some(spec) = spec_map(obj) else { return };
        default_ptr(spec, "replicas", json!(1));
        template_defaults(spec);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        validate_replica_set(obj)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = validate_replica_set(new);
        errs.extend(validate_selector_immutable(new, old));
        errs
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> Vec<FieldError> {
        replica_status_errors(status_of(new))
    }

    fn field_labels(&self, obj: &Value) -> Vec<(&'static str, String)> {
        vec![(
            "status.replicas",
            status_of(obj)
                .get("replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                .to_string(),
        )]
    }
}

/// The status rules of ReplicaSets and ReplicationControllers.
pub fn replica_status_errors(status: &Value) -> Vec<FieldError> {
    validate_status_counts(
        status,
        &[
            "replicas",
            "fullyLabeledReplicas",
            "readyReplicas",
            "availableReplicas",
            "observedGeneration",
        ],
        &[
            (
                "fullyLabeledReplicas",
                "replicas",
                "cannot be greater than status.replicas",
            ),
            (
                "readyReplicas",
                "replicas",
                "cannot be greater than status.replicas",
            ),
            (
                "availableReplicas",
                "replicas",
                "cannot be greater than status.replicas",
            ),
            (
                "availableReplicas",
                "readyReplicas",
                "cannot be greater than readyReplicas",
            ),
        ],
        &Path::new("status"),
    )
}

fn validate_replica_set(obj: &Value) -> Vec<FieldError> {
    let spec: ReplicaSetSpec = match spec_of(obj) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let selector = match raw_selector(obj) {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    let path = Path::new("spec");
    let mut errs = validate_nonnegative(
        i64::from(spec.replicas.unwrap_or(0)),
        &path.child("replicas"),
    );
    errs.extend(validate_nonnegative(
        i64::from(spec.min_ready_seconds.unwrap_or(0)),
        &path.child("minReadySeconds"),
    ));
    errs.extend(validate_required_selector(
        selector.as_ref(),
        "deployment",
        &path.child("selector"),
    ));
    match compile_selector(
        selector.as_ref(),
        &path.child("selector"),
        "invalid label selector",
    ) {
        Err(e) => errs.push(e),
        Ok(sel) => {
            let tp = path.child("template");
            let template = spec.template.unwrap_or_default();
            errs.extend(validate_selector_matches_template(
                &sel,
                &template,
                &tp.child("metadata").child("labels"),
            ));
            errs.extend(validate_pod_template_spec(
                &template,
                &tp,
                PodSpecOptions::default(),
            ));
            errs.extend(validate_always_restart(&template, &tp, "ReplicaSet"));
        }
    }
    errs
}

// --- StatefulSet -----------------------------------------------------------------------------

pub struct StatefulSetStrategy;

impl Strategy for StatefulSetStrategy {
    fn tracks_generation(&self) -> bool {
        true
    }

    /// StatefulSet names become pod hostnames: DNS labels.
    fn validate_name(&self, name: &str) -> Vec<String> {
        dns1123_label(name)
    }

    fn default(&self, obj: &mut Value) {
        let Some(spec) = spec_map(obj) else { return };
        default_field(spec, "podManagementPolicy", json!("OrderedReady"));
        if let Some(us) = child_obj(spec, "updateStrategy") {
            if us
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                us.insert("type".into(), json!("RollingUpdate"));
                default_ptr(us, "rollingUpdate", json!({}));
            }
            if us.get("type").and_then(Value::as_str) == Some("RollingUpdate")
                && let Some(ru) = existing_obj(us, "rollingUpdate")
            {
                default_ptr(ru, "partition", json!(0));
            }
        }
        if let Some(policy) = child_obj(spec, "persistentVolumeClaimRetentionPolicy") {
            default_field(policy, "whenDeleted", json!("Retain"));
            default_field(policy, "whenScaled", json!("Retain"));
        }
        default_ptr(spec, "replicas", json!(1));
        default_ptr(spec, "revisionHistoryLimit", json!(10));
        template_defaults(spec);
        for pvc in each_obj(spec, "volumeClaimTemplates") {
            default_pvc_template(pvc);
            if let Some(status) = child_obj(pvc, "status") {
                default_field(status, "phase", json!("Pending"));
            }
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        validate_stateful_set(obj)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = validate_stateful_set(new);
        let mut n = new.get("spec").cloned().unwrap_or(json!({}));
        let o = old.get("spec").cloned().unwrap_or(json!({}));
        for field in [
            "replicas",
            "template",
            "updateStrategy",
            "minReadySeconds",
            "ordinals",
            "persistentVolumeClaimRetentionPolicy",
        ] {
            if let Some(m) = n.as_object_mut() {
                match o.get(field) {
                    Some(v) => m.insert(field.into(), v.clone()),
                    None => m.remove(field),
                };
            }
        }
        if n != o {
            errs.push(FieldError::forbidden(
                Path::new("spec"),
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            ));
        }
        errs
    }

    fn validate_status_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = validate_status_counts(
            status_of(new),
            &[
                "replicas",
                "readyReplicas",
                "currentReplicas",
                "updatedReplicas",
                "availableReplicas",
                "observedGeneration",
                "collisionCount",
            ],
            &[
                (
                    "readyReplicas",
                    "replicas",
                    "cannot be greater than status.replicas",
                ),
                (
                    "currentReplicas",
                    "replicas",
                    "cannot be greater than status.replicas",
                ),
                (
                    "updatedReplicas",
                    "replicas",
                    "cannot be greater than status.replicas",
                ),
                (
                    "availableReplicas",
                    "replicas",
                    "cannot be greater than status.replicas",
                ),
                (
                    "availableReplicas",
                    "readyReplicas",
                    "cannot be greater than status.readyReplicas",
                ),
            ],
            &Path::new("status"),
        );
        errs.extend(validate_collision_count(new, old));
        errs
    }
}

fn validate_stateful_set(obj: &Value) -> Vec<FieldError> {
    let spec: StatefulSetSpec = match spec_of(obj) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let selector = match raw_selector(obj) {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    let path = Path::new("spec");
    let mut errs = Vec::new();
    match spec.pod_management_policy.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required(path.child("podManagementPolicy"), "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid(
            path.child("podManagementPolicy"),
            other.into(),
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let us = spec.update_strategy.clone().unwrap_or_default();
    let usp = path.child("updateStrategy");
    match us.type_.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required(&usp, "")),
        "OnDelete" => {
            if us.rolling_update.is_some() {
                errs.push(go_repr::invalid_repr(
                    usp.child("rollingUpdate"),
                    &rolling_update_sts_repr(us.rolling_update.as_ref()),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = &us.rolling_update {
                let rp = usp.child("rollingUpdate");
                errs.extend(validate_nonnegative(
                    i64::from(ru.partition.unwrap_or(0)),
                    &rp.child("partition"),
                ));
                if let Some(mu) = &ru.max_unavailable {
                    errs.extend(validate_positive_int_or_percent(
                        mu,
                        &rp.child("maxUnavailable"),
                    ));
                    if int_or_percent_value(mu) == 0 {
                        errs.push(go_repr::invalid_repr(
                            rp.child("maxUnavailable"),
                            &go_repr::int_or_string(mu),
                            "cannot be 0",
                        ));
                    }
                    errs.extend(not_more_than_100_percent(mu, &rp.child("maxUnavailable")));
                }
            }
        }
        other => errs.push(go_repr::invalid_repr(
            &usp,
            &format!(
                "apps.StatefulSetUpdateStrategy{{Type:{other:?}, RollingUpdate:{}}}",
                rolling_update_sts_repr(us.rolling_update.as_ref())
            ),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    if let Some(policy) = &spec.persistent_volume_claim_retention_policy {
        let pp = path.child("persistentVolumeClaimRetentionPolicy");
        for (v, field) in [
            (&policy.when_deleted, "whenDeleted"),
            (&policy.when_scaled, "whenScaled"),
        ] {
            let v = v.as_deref().unwrap_or("");
            if v != "Retain" && v != "Delete" {
                errs.push(FieldError::not_supported(
                    pp.child(field),
                    v.into(),
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    errs.extend(validate_nonnegative(
        i64::from(spec.replicas.unwrap_or(0)),
        &path.child("replicas"),
    ));
    errs.extend(validate_nonnegative(
        i64::from(spec.min_ready_seconds.unwrap_or(0)),
        &path.child("minReadySeconds"),
    ));
    if let Some(o) = &spec.ordinals {
        errs.extend(validate_nonnegative(
            i64::from(o.start.unwrap_or(0)),
            &path.child("ordinals.start"),
        ));
    }
    errs.extend(validate_required_selector(
        selector.as_ref(),
        "statefulset",
        &path.child("selector"),
    ));
    match compile_selector(selector.as_ref(), &path.child("selector"), "") {
        Err(e) => errs.push(e),
        Ok(sel) => {
            let tp = path.child("template");
            errs.extend(validate_selector_matches_template(
                &sel,
                &spec.template,
                &tp.child("metadata").child("labels"),
            ));
            // Upstream checks only the template's metadata here, not its pod spec.
            let meta = spec.template.metadata.clone().unwrap_or_default();
            if let Some(labels) = &meta.labels {
                errs.extend(validate_labels(labels, &tp.child("labels")));
            }
            let annotations = meta.annotations.as_ref().map(|a| json!(a));
            errs.extend(validate_annotations(
                annotations.as_ref(),
                &tp.child("annotations"),
            ));
            errs.extend(validate_pod_specific_annotations(
                &meta,
                &spec.template.spec.clone().unwrap_or_default(),
                &tp.child("annotations"),
            ));
        }
    }
    let tspec = spec.template.spec.clone().unwrap_or_default();
    let rp = tspec.restart_policy.as_deref().unwrap_or("");
    if rp != "Always" {
        errs.push(FieldError::not_supported(
            path.child("template").child("spec").child("restartPolicy"),
            rp.into(),
            &["Always"],
        ));
    }
    if tspec.active_deadline_seconds.is_some() {
        errs.push(FieldError::forbidden(
            path.child("template")
                .child("spec")
                .child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in StatefulSet is not Supported",
        ));
    }
    for (i, pvc) in spec.volume_claim_templates.iter().flatten().enumerate() {
        errs.extend(validate_claim_template(
            pvc,
            &path.child("volumeClaimTemplates").index(i),
        ));
    }
    errs
}

fn validate_claim_template(pvc: &PersistentVolumeClaim, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = pvc.metadata.name.as_deref().unwrap_or("");
    for m in ironkube_machinery::validation::names::dns1123_subdomain(name) {
        errs.push(FieldError::invalid(
            path.child("metadata").child("name"),
            name.into(),
            m,
        ));
    }
    errs.extend(validate_pvc_spec_basics(
        &pvc.spec.clone().unwrap_or_default(),
        &path.child("spec"),
    ));
    errs
}

fn rolling_update_sts_repr(
    ru: Option<&k8s_openapi::api::apps::v1::RollingUpdateStatefulSetStrategy>,
) -> String {
    match ru {
        None => "(*apps.RollingUpdateStatefulSetStrategy)(nil)".to_string(),
        Some(ru) => format!(
            "apps.RollingUpdateStatefulSetStrategy{{Partition:{}, MaxUnavailable:(*intstr.IntOrString)(nil)}}",
            ru.partition.unwrap_or(0)
        ),
    }
}

// --- DaemonSet -------------------------------------------------------------------------------

pub struct DaemonSetStrategy;

/// The annotation apps/v1 DaemonSets carry their internal template generation in.
const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

fn template_generation(obj: &Value) -> i64 {
    obj["metadata"]["annotations"]
        .get(TEMPLATE_GENERATION)
        .and_then(Value::as_str)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn set_template_generation(obj: &mut Value, generation: i64) {
    if let Some(annotations) = obj
        .as_object_mut()
        .and_then(|o| child_obj(o, "metadata"))
        .and_then(|m| child_obj(m, "annotations"))
    {
        annotations.insert(TEMPLATE_GENERATION.into(), json!(generation.to_string()));
    }
}

impl Strategy for DaemonSetStrategy {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        let generation = template_generation(obj).max(1);
        set_template_generation(obj, generation);
    }

    /// The template generation is the server's: carried over, and bumped with the template.
    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        let mut generation = template_generation(old);
        if new["spec"].get("template") != old["spec"].get("template") {
            generation += 1;
        }
        set_template_generation(new, generation);
    }

    fn default(&self, obj: &mut Value) {
        let Some(spec) = spec_map(obj) else { return };
        if let Some(us) = child_obj(spec, "updateStrategy") {
            default_field(us, "type", json!("RollingUpdate"));
            if us.get("type").and_then(Value::as_str) == Some("RollingUpdate")
                && let Some(ru) = child_obj(us, "rollingUpdate")
            {
                default_ptr(ru, "maxUnavailable", json!(1));
                default_ptr(ru, "maxSurge", json!(0));
            }
        }
        default_ptr(spec, "revisionHistoryLimit", json!(10));
        template_defaults(spec);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        validate_daemon_set(obj)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = validate_daemon_set(new);
        errs.extend(validate_selector_immutable(new, old));
        errs
    }

    fn validate_status_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = validate_status_counts(
            status_of(new),
            &[
                "currentNumberScheduled",
                "numberMisscheduled",
                "desiredNumberScheduled",
                "numberReady",
                "observedGeneration",
                "updatedNumberScheduled",
                "numberAvailable",
                "numberUnavailable",
            ],
            &[],
            &Path::new("status"),
        );
        errs.extend(validate_collision_count(new, old));
        errs
    }
}

fn validate_daemon_set(obj: &Value) -> Vec<FieldError> {
    let spec: DaemonSetSpec = match spec_of(obj) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let selector: Option<LabelSelector> = match raw_selector(obj) {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    let path = Path::new("spec");
    let mut errs = ironkube_machinery::validation::selector::validate_label_selector(
        selector.as_ref(),
        &path.child("selector"),
    );
    if let Ok(sel) = ironkube_machinery::validation::selector::as_selector(selector.as_ref()) {
        let labels = spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone());
        if !sel.matches(&labels.clone().unwrap_or_default()) {
            errs.push(go_repr::invalid_repr(
                path.child("template").child("metadata").child("labels"),
                &go_repr::string_map(labels.as_ref()),
                "`selector` does not match template `labels`",
            ));
        }
    }
    if let Some(s) = &selector
        && s.match_labels.as_ref().map_or(0, |m| m.len())
            + s.match_expressions.as_ref().map_or(0, Vec::len)
            == 0
    {
        errs.push(go_repr::invalid_repr(
            path.child("selector"),
            &go_repr::label_selector(s),
            "empty selector is invalid for daemonset",
        ));
    }
    let tp = path.child("template");
    errs.extend(validate_pod_template_spec(
        &spec.template,
        &tp,
        PodSpecOptions::default(),
    ));
    let tspec = spec.template.spec.clone().unwrap_or_default();
    let rp = tspec.restart_policy.as_deref().unwrap_or("");
    if rp != "Always" {
        errs.push(FieldError::not_supported(
            tp.child("spec").child("restartPolicy"),
            rp.into(),
            &["Always"],
        ));
    }
    if tspec.active_deadline_seconds.is_some() {
        errs.push(FieldError::forbidden(
            tp.child("spec").child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in DaemonSet is not Supported",
        ));
    }
    errs.extend(validate_nonnegative(
        i64::from(spec.min_ready_seconds.unwrap_or(0)),
        &path.child("minReadySeconds"),
    ));
    let us = spec.update_strategy.clone().unwrap_or_default();
    let usp = path.child("updateStrategy");
    match us.type_.as_deref().unwrap_or("") {
        "OnDelete" => {}
        "RollingUpdate" => match &us.rolling_update {
            None => errs.push(FieldError::required(usp.child("rollingUpdate"), "")),
            Some(ru) => {
                let rp = usp.child("rollingUpdate");
                let zero = IntOrString::Int(0);
                let unavailable = ru.max_unavailable.clone().unwrap_or(zero.clone());
                let surge = ru.max_surge.clone().unwrap_or(zero);
                errs.extend(validate_positive_int_or_percent(&unavailable, &rp.child("maxUnavailable")));
                errs.extend(validate_positive_int_or_percent(&surge, &rp.child("maxSurge")));
                errs.extend(not_more_than_100_percent(&unavailable, &rp.child("maxUnavailable")));
                errs.extend(not_more_than_100_percent(&surge, &rp.child("maxSurge")));
                let has_unavailable = int_or_percent_value(&unavailable) != 0;
                let has_surge = int_or_percent_value(&surge) != 0;
                if has_unavailable && has_surge {
                    errs.push(go_repr::invalid_repr(rp.child("maxSurge"), &go_repr::int_or_string(&surge), "may not be set when maxUnavailable is non-zero"));
                } else if !has_unavailable && !has_surge {
                    errs.push(FieldError::required(rp.child("maxUnavailable"), "cannot be 0 when maxSurge is 0"));
                }
            }
        },
        other => errs.push(go_repr::not_supported_repr(
            &usp,
            &format!("apps.DaemonSetUpdateStrategy{{Type:{other:?}, RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}}"),
            &["RollingUpdate", "OnDelete"],
        )),
    }
    if let Some(r) = spec.revision_history_limit {
        errs.extend(validate_nonnegative(
            i64::from(r),
            &path.child("revisionHistoryLimit"),
        ));
    }
    errs
}

// --- ControllerRevision ----------------------------------------------------------------------

pub struct ControllerRevisionStrategy;

impl Strategy for ControllerRevisionStrategy {
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if obj.get("data").is_none_or(Value::is_null) {
            errs.push(FieldError::required(Path::new("data"), "data is mandatory"));
        }
        errs.extend(validate_nonnegative(
            obj.get("revision").and_then(Value::as_i64).unwrap_or(0),
            &Path::new("revision"),
        ));
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        if new.get("data") != old.get("data") {
            errs.push(FieldError::invalid(
                Path::new("data"),
                new.get("data").cloned().unwrap_or(Value::Null),
                FIELD_IMMUTABLE_ERROR_MSG,
            ));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(spec: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"}, "spec": spec})
    }

    fn errors(strategy: &dyn Strategy, mut obj: Value) -> Vec<String> {
        strategy.default(&mut obj);
        strategy
            .validate(&obj)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn deployment_defaults() {
        let mut d = deployment(json!({
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}
        }));
        DeploymentStrategy.default(&mut d);
        assert_eq!(d["spec"]["replicas"], json!(1));
        assert_eq!(
            d["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(d["spec"]["revisionHistoryLimit"], json!(10));
        assert_eq!(d["spec"]["progressDeadlineSeconds"], json!(600));
        assert_eq!(
            d["spec"]["template"]["metadata"]["creationTimestamp"],
            Value::Null
        );
        assert_eq!(
            d["spec"]["template"]["spec"]["restartPolicy"],
            json!("Always")
        );
        assert!(
            DeploymentStrategy.validate(&d).is_empty(),
            "{:?}",
            DeploymentStrategy.validate(&d)
        );
    }

    /// What `kubectl create deployment web --image=nginx` sends, and the spec upstream stores.
    #[test]
    fn deployment_golden_defaults() {
        let mut d = deployment(json!({
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]}
            },
            "strategy": {}
        }));
        DeploymentStrategy.default(&mut d);
        assert_eq!(
            d["spec"],
            json!({
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                    "spec": {
                        "containers": [{
                            "name": "nginx",
                            "image": "nginx",
                            "resources": {},
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File",
                            "imagePullPolicy": "Always"
                        }],
                        "restartPolicy": "Always",
                        "terminationGracePeriodSeconds": 30,
                        "dnsPolicy": "ClusterFirst",
                        "securityContext": {},
                        "schedulerName": "default-scheduler"
                    }
                },
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600
            })
        );
    }

    #[test]
    fn deployment_errors() {
        let template = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}});
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (
                json!({"selector": {"matchLabels": {"app": "api"}}, "template": template}),
                vec![
                    "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
                ],
            ),
            (
                json!({"template": template}),
                vec![
                    "spec.selector: Required value",
                    "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
                ],
            ),
            (
                json!({"replicas": -1, "selector": {"matchLabels": {"app": "web"}}, "template": template}),
                vec!["spec.replicas: Invalid value: -1: must be greater than or equal to 0"],
            ),
            (
                json!({"selector": {}, "template": template}),
                vec![
                    "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment",
                ],
            ),
            (
                json!({"selector": {"matchLabels": {"app": "web"}}, "template": template, "strategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}}),
                vec![
                    "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0",
                ],
            ),
            (
                json!({"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"restartPolicy": "Never", "containers": [{"name": "web", "image": "nginx"}]}}}),
                vec![
                    "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
                ],
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(
                errors(&DeploymentStrategy, deployment(spec.clone())),
                want,
                "{spec}"
            );
        }
    }

    #[test]
    fn selector_is_immutable() {
        let template = json!({"metadata": {"labels": {"app": "web", "v": "2"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}});
        let mut old =
            deployment(json!({"selector": {"matchLabels": {"app": "web"}}, "template": template}));
        DeploymentStrategy.default(&mut old);
        let mut new = old.clone();
        new["spec"]["selector"] = json!({"matchLabels": {"app": "web", "v": "2"}});
        let errs: Vec<String> = DeploymentStrategy
            .validate_update(&new, &old)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", \"v\":\"2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
            ]
        );
    }

    #[test]
    fn stateful_set_defaults_and_update() {
        let mut s = json!({"metadata": {"name": "db", "namespace": "d"}, "spec": {
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
        }});
        StatefulSetStrategy.default(&mut s);
        assert_eq!(s["spec"]["podManagementPolicy"], json!("OrderedReady"));
        assert_eq!(
            s["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(
            s["spec"]["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!(
            s["spec"]["volumeClaimTemplates"][0]["spec"]["volumeMode"],
            json!("Filesystem")
        );
        assert_eq!(
            s["spec"]["volumeClaimTemplates"][0]["status"],
            json!({"phase": "Pending"})
        );
        assert!(
            StatefulSetStrategy.validate(&s).is_empty(),
            "{:?}",
            StatefulSetStrategy.validate(&s)
        );
        let mut new = s.clone();
        new["spec"]["serviceName"] = json!("other");
        let errs = StatefulSetStrategy.validate_update(&new, &s);
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0]
                .to_string()
                .starts_with("spec: Forbidden: updates to statefulset spec for fields other than")
        );
    }

    #[test]
    fn daemon_set_defaults() {
        let mut d = json!({"metadata": {"name": "agent", "namespace": "d"}, "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "a", "image": "agent:1"}]}}
        }});
        DaemonSetStrategy.default(&mut d);
        assert_eq!(
            d["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert_eq!(d["spec"]["revisionHistoryLimit"], json!(10));
        assert!(DaemonSetStrategy.validate(&d).is_empty());
        DaemonSetStrategy.prepare_for_create(&mut d);
        assert_eq!(
            d["metadata"]["annotations"],
            json!({"deprecated.daemonset.template.generation": "1"})
        );
        let mut new = d.clone();
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("agent:2");
        DaemonSetStrategy.prepare_for_update(&mut new, &d);
        assert_eq!(
            new["metadata"]["annotations"],
            json!({"deprecated.daemonset.template.generation": "2"})
        );
    }
}
