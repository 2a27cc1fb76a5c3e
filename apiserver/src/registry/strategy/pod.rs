//! Pods: pod-only defaults, the initial status (phase and QoS class), upstream's create,
//! update and status validation, field selectors and graceful deletion.

use std::collections::BTreeMap;

use ironkube_machinery::field::{FieldError, Path};
use ironkube_machinery::validation::labels::validate_qualified_name;
use ironkube_machinery::validation::names::{dns1123_label, dns1123_subdomain};
use ironkube_machinery::validation::quantity::Quantity;
use ironkube_machinery::validation::{FIELD_IMMUTABLE_ERROR_MSG, inclusive_range_error};
use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Map, Value, json};

use super::Strategy;
use super::object::{child_obj, decode, default_ptr, each_obj, existing_obj, meta, str_at};
use super::pod_spec::{
    PodSpecOptions, default_pod_spec, validate_container_only_for_pod, validate_pod_spec,
    validate_pod_specific_annotations, validate_tolerations,
};

/// `spec.*` fields an update may change, as upstream lists them in its error.
const UPDATABLE_POD_SPEC_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

pub struct PodStrategy;

impl Strategy for PodStrategy {
    fn status_update_metadata(&self) -> &'static [&'static str] {
        &["labels", "annotations", "finalizers"]
    }

    /// Since v1.33 pods carry `metadata.generation`, bumped on spec changes.
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj.as_object_mut().and_then(|o| child_obj(o, "spec")) else {
            return;
        };
        default_pod_spec(spec);
        default_pod_only(spec);
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        let spec: PodSpec = decode(obj.get("spec"), "spec").unwrap_or_default();
        let mut status = json!({"phase": "Pending", "qosClass": qos_class(&spec)});
        if spec
            .scheduling_gates
            .as_ref()
            .is_some_and(|g| !g.is_empty())
        {
            status["conditions"] = json!([{
                "type": "PodScheduled",
                "status": "False",
                "lastProbeTime": null,
                "lastTransitionTime": now(),
                "reason": "SchedulingGated",
                "message": "Scheduling is blocked due to non-empty scheduling gates",
            }]);
        }
        if let Some(o) = obj.as_object_mut() {
            o.insert("status".into(), status);
        }
        apply_match_label_keys(obj);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let (pod_meta, spec) = match decode_pod(obj) {
            Ok(v) => v,
            Err(e) => return vec![e],
        };
        let mut errs = validate_metadata_and_spec(&pod_meta, &spec);
        let spec_path = Path::new("spec");
        if spec
            .ephemeral_containers
            .as_ref()
            .is_some_and(|e| !e.is_empty())
        {
            errs.push(FieldError::forbidden(
                spec_path.child("ephemeralContainers"),
                "cannot be set on create",
            ));
        }
        if !spec.node_name.as_deref().unwrap_or("").is_empty()
            && spec
                .scheduling_gates
                .as_ref()
                .is_some_and(|g| !g.is_empty())
        {
            errs.push(FieldError::forbidden(
                spec_path.child("nodeName"),
                "cannot be set until all schedulingGates have been cleared",
            ));
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let ((new_meta, new_spec), (old_meta, old_spec)) = match (decode_pod(new), decode_pod(old))
        {
            (Ok(n), Ok(o)) => (n, o),
            (Err(e), _) | (_, Err(e)) => return vec![e],
        };
        let mut errs = validate_metadata_and_spec(&new_meta, &new_spec);
        errs.extend(validate_annotation_updates(&new_meta, &old_meta));
        errs.extend(validate_spec_update(new, old, &new_spec, &old_spec));
        errs
    }

    fn validate_status_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        validate_status_update(new, old)
    }

    fn warnings(&self, obj: &Value, old: Option<&Value>) -> Vec<String> {
        if old.is_some() {
            return Vec::new();
        }
        let name = str_at(meta(obj), "name");
        let msgs = dns1123_label(name);
        if msgs.is_empty() {
            return Vec::new();
        }
        vec![format!(
            "metadata.name: this is used in the Pod's hostname, which can result in surprising behavior; a DNS label is recommended: [{}]",
            msgs.join(" ")
        )]
    }

    fn field_labels(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let status = obj.get("status").unwrap_or(&Value::Null);
        let pod_ip = status
            .get("podIPs")
            .and_then(Value::as_array)
            .and_then(|ips| ips.first())
            .map(|ip| str_at(ip, "ip").to_string())
            .unwrap_or_default();
        vec![
            ("spec.nodeName", str_at(spec, "nodeName").to_string()),
            (
                "spec.restartPolicy",
                str_at(spec, "restartPolicy").to_string(),
            ),
            (
                "spec.schedulerName",
                str_at(spec, "schedulerName").to_string(),
            ),
            (
                "spec.serviceAccountName",
                str_at(spec, "serviceAccountName").to_string(),
            ),
            (
                "spec.hostNetwork",
                spec.get("hostNetwork")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
                    .to_string(),
            ),
            ("status.phase", str_at(status, "phase").to_string()),
            ("status.podIP", pod_ip),
            // Accepted as a field label but never populated in the selectable set upstream.
            ("status.podIPs", String::new()),
            (
                "status.nominatedNodeName",
                str_at(status, "nominatedNodeName").to_string(),
            ),
        ]
    }

    fn grace_period(&self, obj: &Value, requested: Option<i64>) -> Option<i64> {
        Some(grace_period(obj, requested))
    }

    fn return_deleted_object(&self) -> bool {
        true
    }
}

/// PodTemplates: a pod template and nothing else.
pub struct PodTemplateStrategy;

impl Strategy for PodTemplateStrategy {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        if let Some(t) = obj.as_object_mut().and_then(|o| child_obj(o, "template")) {
            super::pod_spec::default_pod_template(t);
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        match decode::<k8s_openapi::api::core::v1::PodTemplateSpec>(obj.get("template"), "template")
        {
            Ok(t) => super::pod_spec::validate_pod_template_spec(
                &t,
                &Path::new("template"),
                PodSpecOptions::default(),
            ),
            Err(e) => vec![e],
        }
    }
}

/// Upstream's `CheckGracefulDelete` for pods: the requested (or the pod's) grace period,
/// but 0 for a pod that is not scheduled or already finished, and at least 1 when negative.
pub fn grace_period(pod: &Value, requested: Option<i64>) -> i64 {
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    let mut period = requested.unwrap_or_else(|| {
        spec.get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0)
    });
    if str_at(spec, "nodeName").is_empty() {
        period = 0;
    }
    let phase = str_at(pod.get("status").unwrap_or(&Value::Null), "phase");
    if phase == "Failed" || phase == "Succeeded" {
        period = 0;
    }
    if period < 0 { 1 } else { period }
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn decode_pod(obj: &Value) -> Result<(ObjectMeta, PodSpec), FieldError> {
    Ok((
        decode(obj.get("metadata"), "metadata")?,
        decode(obj.get("spec"), "spec")?,
    ))
}

/// `SetDefaults_Pod`: what only pods (not templates) get.
fn default_pod_only(spec: &mut Map<String, Value>) {
    for key in ["containers", "initContainers"] {
        for c in each_obj(spec, key) {
            let Some(res) = existing_obj(c, "resources") else {
                continue;
            };
            let Some(limits) = res.get("limits").and_then(Value::as_object).cloned() else {
                continue;
            };
            if let Some(requests) = child_obj(res, "requests") {
                for (k, v) in limits {
                    requests.entry(k).or_insert(v);
                }
            }
        }
    }
    default_ptr(spec, "enableServiceLinks", json!(true));
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        for key in ["containers", "initContainers"] {
            for c in each_obj(spec, key) {
                for p in each_obj(c, "ports") {
                    let cp = p.get("containerPort").cloned().unwrap_or(Value::Null);
                    if p.get("hostPort").and_then(Value::as_i64).unwrap_or(0) == 0 {
                        p.insert("hostPort".into(), cp);
                    }
                }
            }
        }
    }
}

/// Upstream's `ComputePodQOS`.
pub fn qos_class(spec: &PodSpec) -> &'static str {
    let mut requests: BTreeMap<String, Quantity> = BTreeMap::new();
    let mut limits: BTreeMap<String, Quantity> = BTreeMap::new();
    let mut guaranteed = true;
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        let res = c.resources.clone().unwrap_or_default();
        for (name, q) in res.requests.iter().flatten() {
            if name != "cpu" && name != "memory" {
                continue;
            }
            if let Ok(q) = Quantity::parse(&q.0)
                && q.nanos() > 0
            {
                let sum = requests.get(name).map_or(q, |acc| acc.add(&q));
                requests.insert(name.clone(), sum);
            }
        }
        let mut found = 0;
        for (name, q) in res.limits.iter().flatten() {
            if name != "cpu" && name != "memory" {
                continue;
            }
            if let Ok(q) = Quantity::parse(&q.0)
                && q.nanos() > 0
            {
                found += 1;
                let sum = limits.get(name).map_or(q, |acc| acc.add(&q));
                limits.insert(name.clone(), sum);
            }
        }
        if found < 2 {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed && requests.iter().any(|(k, r)| limits.get(k) != Some(r)) {
        guaranteed = false;
    }
    if guaranteed && requests.len() == limits.len() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// `matchLabelKeys`/`mismatchLabelKeys` of pod (anti-)affinity terms become selector
/// requirements on the pod's own label values (MatchLabelKeysInPodAffinity, on in v1.33).
fn apply_match_label_keys(pod: &mut Value) {
    let labels = pod["metadata"].get("labels").cloned().unwrap_or(json!({}));
    let Some(affinity) = pod
        .get_mut("spec")
        .and_then(|s| s.get_mut("affinity"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for kind in ["podAffinity", "podAntiAffinity"] {
        let Some(a) = existing_obj(affinity, kind) else {
            continue;
        };
        for (field, list) in a.iter_mut() {
            let Some(list) = list.as_array_mut() else {
                continue;
            };
            for item in list.iter_mut() {
                let term = match field.as_str() {
                    "requiredDuringSchedulingIgnoredDuringExecution" => item.as_object_mut(),
                    "preferredDuringSchedulingIgnoredDuringExecution" => item
                        .get_mut("podAffinityTerm")
                        .and_then(Value::as_object_mut),
                    _ => None,
                };
                if let Some(term) = term {
                    apply_label_keys(term, &labels);
                }
            }
        }
    }
}

fn apply_label_keys(term: &mut Map<String, Value>, labels: &Value) {
    let keys = |field: &str| -> Vec<String> {
        term.get(field)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (matching, mismatching) = (keys("matchLabelKeys"), keys("mismatchLabelKeys"));
    let Some(selector) = term.get_mut("labelSelector").and_then(Value::as_object_mut) else {
        return;
    };
    for (keys, op) in [(matching, "In"), (mismatching, "NotIn")] {
        for k in keys {
            if let Some(v) = labels.get(&k).and_then(Value::as_str) {
                let exprs = selector
                    .entry("matchExpressions")
                    .or_insert_with(|| json!([]));
                if let Some(list) = exprs.as_array_mut() {
                    list.push(json!({"key": k, "operator": op, "values": [v]}));
                }
            }
        }
    }
}

/// `validatePodMetadataAndSpec` without the generic object-meta checks the store runs.
fn validate_metadata_and_spec(pod_meta: &ObjectMeta, spec: &PodSpec) -> Vec<FieldError> {
    let spec_path = Path::new("spec");
    let mut errs = validate_pod_specific_annotations(
        pod_meta,
        spec,
        &Path::new("metadata").child("annotations"),
    );
    let name = pod_meta.name.as_deref();
    errs.extend(validate_pod_spec(
        spec,
        name,
        &spec_path,
        PodSpecOptions {
            resource_is_pod: true,
        },
    ));
    if spec
        .service_account_name
        .as_deref()
        .unwrap_or("")
        .is_empty()
    {
        for (vi, v) in spec.volumes.iter().flatten().enumerate() {
            for (si, src) in v
                .projected
                .iter()
                .flat_map(|p| p.sources.iter().flatten())
                .enumerate()
            {
                if src.service_account_token.is_some() {
                    errs.push(FieldError::forbidden(
                        spec_path
                            .child("volumes")
                            .index(vi)
                            .child("projected")
                            .child("sources")
                            .index(si)
                            .child("serviceAccountToken"),
                        "must not be specified when serviceAccountName is not set",
                    ));
                }
            }
        }
    }
    for (i, c) in spec.containers.iter().enumerate() {
        errs.extend(validate_container_only_for_pod(
            c,
            &spec_path.child("containers").index(i),
        ));
    }
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        errs.extend(validate_container_only_for_pod(
            c,
            &spec_path.child("initContainers").index(i),
        ));
    }
    errs
}

fn validate_annotation_updates(new: &ObjectMeta, old: &ObjectMeta) -> Vec<FieldError> {
    let path = Path::new("metadata").child("annotations");
    let mirror = "kubernetes.io/config.mirror";
    let (n, o) = (
        new.annotations.clone().unwrap_or_default(),
        old.annotations.clone().unwrap_or_default(),
    );
    let mut errs = Vec::new();
    for (k, v) in &o {
        if n.get(k) == Some(v) {
            continue;
        }
        if k.starts_with("container.apparmor.security.beta.kubernetes.io/") {
            errs.push(FieldError::forbidden(
                path.key(k),
                "may not remove or update AppArmor annotations",
            ));
        }
        if k == mirror {
            errs.push(FieldError::forbidden(
                path.key(k),
                "may not remove or update mirror pod annotation",
            ));
        }
    }
    for k in n.keys().filter(|k| !o.contains_key(*k)) {
        if k.starts_with("container.apparmor.security.beta.kubernetes.io/") {
            errs.push(FieldError::forbidden(
                path.key(k),
                "may not add AppArmor annotations",
            ));
        }
        if k == mirror {
            errs.push(FieldError::forbidden(
                path.key(k),
                "may not add mirror pod annotation",
            ));
        }
    }
    errs
}

/// The update rules of `ValidatePodUpdate` for the spec.
fn validate_spec_update(
    new: &Value,
    old: &Value,
    new_spec: &PodSpec,
    old_spec: &PodSpec,
) -> Vec<FieldError> {
    let spec_path = Path::new("spec");
    let mut errs = Vec::new();
    for (field, n, o) in [
        (
            "containers",
            new_spec.containers.len(),
            old_spec.containers.len(),
        ),
        (
            "initContainers",
            new_spec.init_containers.as_ref().map_or(0, Vec::len),
            old_spec.init_containers.as_ref().map_or(0, Vec::len),
        ),
    ] {
        if n != o {
            errs.push(FieldError::forbidden(
                spec_path.child(field),
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
        let list = if field == "containers" {
            new_spec.containers.clone()
        } else {
            new_spec.init_containers.clone().unwrap_or_default()
        };
        for (i, c) in list.iter().enumerate() {
            let image = c.image.as_deref().unwrap_or("");
            let p = spec_path.child(field).index(i).child("image");
            if image.is_empty() {
                errs.push(FieldError::required(&p, ""));
            }
            if image.trim().len() != image.len() {
                errs.push(FieldError::invalid(
                    &p,
                    image.into(),
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    let ads_path = spec_path.child("activeDeadlineSeconds");
    match (
        new_spec.active_deadline_seconds,
        old_spec.active_deadline_seconds,
    ) {
        (Some(n), o) => {
            if n < 0 || n > i64::from(i32::MAX) {
                errs.push(FieldError::invalid(
                    &ads_path,
                    n.into(),
                    inclusive_range_error(0, i64::from(i32::MAX)),
                ));
                return errs;
            }
            if o.is_some_and(|o| o < n) {
                errs.push(FieldError::invalid(
                    &ads_path,
                    n.into(),
                    "must be less than or equal to previous value",
                ));
                return errs;
            }
        }
        (None, Some(_)) => {
            errs.push(FieldError::invalid(
                &ads_path,
                Value::Null,
                "must not update from a positive integer to nil value",
            ));
        }
        (None, None) => {}
    }
    let old_tolerations = old_spec.tolerations.clone().unwrap_or_default();
    let new_tolerations = new_spec.tolerations.clone().unwrap_or_default();
    let kept = old_tolerations.iter().all(|o| {
        new_tolerations.iter().any(|n| {
            let mut o = o.clone();
            o.toleration_seconds = n.toleration_seconds;
            &o == n
        })
    });
    if !kept {
        errs.push(FieldError::forbidden(
            spec_path.child("tolerations"),
            "existing toleration can not be modified except its tolerationSeconds",
        ));
    } else {
        errs.extend(validate_tolerations(
            &new_tolerations,
            &spec_path.child("tolerations"),
        ));
    }
    let old_gates: Vec<String> = old_spec
        .scheduling_gates
        .iter()
        .flatten()
        .map(|g| g.name.clone())
        .collect();
    for (i, g) in new_spec.scheduling_gates.iter().flatten().enumerate() {
        if !old_gates.contains(&g.name) {
            errs.push(FieldError::forbidden(
                spec_path.child("schedulingGates").index(i).child("name"),
                format!(
                    "only deletion is allowed, but found new scheduling gate '{}'",
                    g.name
                ),
            ));
        }
    }

    // What remains must be unchanged: munge the updatable fields back to their old values.
    let old_json = comparable(old.get("spec"));
    let mut munged = new.get("spec").cloned().unwrap_or(json!({}));
    for field in ["containers", "initContainers"] {
        let old_list = old_json
            .get(field)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(list) = munged.get_mut(field).and_then(Value::as_array_mut) {
            for (c, oc) in list.iter_mut().zip(old_list.iter()) {
                match oc.get("image") {
                    Some(img) => super::object::set(c, "image", img.clone()),
                    None => {
                        if let Some(m) = c.as_object_mut() {
                            m.remove("image");
                        }
                    }
                }
            }
        }
    }
    if let Some(m) = munged.as_object_mut() {
        for field in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
            match old_json.get(field) {
                Some(v) => m.insert(field.into(), v.clone()),
                None => m.remove(field),
            };
        }
        let old_grace = old_json
            .get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64);
        if old_grace.is_some_and(|g| g < 0)
            && m.get("terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
                == Some(1)
        {
            m.insert("terminationGracePeriodSeconds".into(), json!(old_grace));
        }
        if !old_gates.is_empty() {
            // Gated pods may add (not change or remove) node selector entries.
            let old_sel = old_json
                .get("nodeSelector")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let new_sel = m
                .get("nodeSelector")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if old_sel != new_sel {
                if old_sel.iter().any(|(k, v)| new_sel.get(k) != Some(v)) {
                    errs.push(ironkube_machinery::validation::go_repr::invalid_repr(
                        spec_path.child("nodeSelector"),
                        &ironkube_machinery::validation::go_repr::string_map(Some(
                            &new_sel.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect(),
                        )),
                        "only additions to spec.nodeSelector are allowed (no mutations or deletions)",
                    ));
                }
                match old_json.get("nodeSelector") {
                    Some(v) => m.insert("nodeSelector".into(), v.clone()),
                    None => m.remove("nodeSelector"),
                };
            }
        }
    }
    if comparable(Some(&munged)) != old_json {
        // Upstream appends go-cmp's diff of the old and the munged internal PodSpec.
        let old_spec = old.get("spec").cloned().unwrap_or(json!({}));
        errs.push(FieldError::forbidden(
            &spec_path,
            format!(
                "pod updates may not change fields other than {UPDATABLE_POD_SPEC_FIELDS}\n{}",
                ironkube_machinery::gocmp::pod_spec_diff(&old_spec, &munged)
            ),
        ));
    }
    errs
}

/// The spec with the differences semantic equality ignores removed (nulls, empty lists and
/// empty strings).
fn comparable(v: Option<&Value>) -> Value {
    fn clean(v: &Value) -> Option<Value> {
        match v {
            Value::Null => None,
            Value::String(s) if s.is_empty() => None,
            Value::Array(a) if a.is_empty() => None,
            Value::Array(a) => Some(Value::Array(
                a.iter().map(|x| clean(x).unwrap_or(Value::Null)).collect(),
            )),
            Value::Object(m) => Some(Value::Object(
                m.iter()
                    .filter_map(|(k, x)| clean(x).map(|x| (k.clone(), x)))
                    .collect(),
            )),
            other => Some(other.clone()),
        }
    }
    v.and_then(clean).unwrap_or(json!({}))
}

/// The checks of `ValidatePodStatusUpdate`.
fn validate_status_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let status_path = Path::new("status");
    let new_status: PodStatus = match decode(new.get("status"), "status") {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    let old_status: PodStatus = decode(old.get("status"), "status").unwrap_or_default();
    for (i, c) in new_status.conditions.iter().flatten().enumerate() {
        if !["PodScheduled", "Ready", "Initialized"].contains(&c.type_.as_str()) {
            errs.extend(validate_qualified_name(
                &c.type_,
                &Path::new("metadata")
                    .child("conditions")
                    .index(i)
                    .child("Type"),
            ));
        }
    }
    if str_at(&new["spec"], "nodeName") != str_at(&old["spec"], "nodeName") {
        errs.push(FieldError::forbidden(
            status_path.child("nodeName"),
            "may not be changed directly",
        ));
    }
    let nominated = new_status.nominated_node_name.as_deref().unwrap_or("");
    if nominated != old_status.nominated_node_name.as_deref().unwrap_or("") && !nominated.is_empty()
    {
        for m in dns1123_subdomain(nominated) {
            errs.push(FieldError::invalid(
                status_path.child("nominatedNodeName"),
                nominated.into(),
                m,
            ));
        }
    }
    let (nq, oq) = (
        new_status.qos_class.as_deref().unwrap_or(""),
        old_status.qos_class.as_deref().unwrap_or(""),
    );
    if nq != oq {
        errs.push(FieldError::invalid(
            status_path.child("qosClass"),
            nq.into(),
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
    for (field, ips) in [
        (
            "podIPs",
            new_status
                .pod_ips
                .iter()
                .flatten()
                .map(|p| p.ip.clone())
                .collect::<Vec<_>>(),
        ),
        (
            "hostIPs",
            new_status
                .host_ips
                .iter()
                .flatten()
                .map(|p| p.ip.clone())
                .collect::<Vec<_>>(),
        ),
    ] {
        let p = status_path.child(field);
        if field == "hostIPs"
            && let Some(first) = ips.first()
            && new_status.host_ip.as_deref().unwrap_or("") != first
        {
            errs.push(FieldError::invalid(
                p.index(0).child("ip"),
                first.as_str().into(),
                "must be equal to `hostIP`",
            ));
        }
        for (i, ip) in ips.iter().enumerate() {
            errs.extend(ironkube_machinery::validation::core::validate_ip(
                ip,
                &p.index(i),
            ));
        }
        if ips.len() > 1 {
            let parsed: Vec<_> = ips
                .iter()
                .filter_map(|ip| ironkube_machinery::validation::core::parse_ip_sloppy(ip))
                .collect();
            let dual = parsed.len() == 2 && parsed[0].is_ipv4() != parsed[1].is_ipv4();
            if !dual || ips.len() > 2 {
                errs.push(FieldError::invalid(
                    &p,
                    json!(ips),
                    "may specify no more than one IP for each IP family",
                ));
            }
            let mut seen = std::collections::BTreeSet::new();
            for (i, ip) in ips.iter().enumerate() {
                if !seen.insert(ip.clone()) {
                    errs.push(FieldError::duplicate(p.index(i), json!({"ip": ip})));
                }
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(pod: Value) -> Value {
        let mut pod = pod;
        PodStrategy.default(&mut pod);
        PodStrategy.prepare_for_create(&mut pod);
        pod
    }

    fn pod(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"}, "spec": spec})
    }

    #[test]
    fn create_defaults_and_status() {
        let p = created(pod(
            json!({"containers": [{"name": "web", "image": "nginx:1.27", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}),
        ));
        assert_eq!(p["spec"]["enableServiceLinks"], json!(true));
        assert_eq!(
            p["spec"]["containers"][0]["resources"]["requests"],
            json!({"cpu": "1", "memory": "1Gi"})
        );
        assert_eq!(
            p["status"],
            json!({"phase": "Pending", "qosClass": "Guaranteed"})
        );
        let p = created(pod(
            json!({"containers": [{"name": "web", "image": "nginx"}]}),
        ));
        assert_eq!(p["status"]["qosClass"], json!("BestEffort"));
        let p = created(pod(
            json!({"containers": [{"name": "web", "image": "nginx", "resources": {"requests": {"cpu": "100m"}}}]}),
        ));
        assert_eq!(p["status"]["qosClass"], json!("Burstable"));
    }

    #[test]
    fn host_network_ports() {
        let p = created(pod(
            json!({"hostNetwork": true, "containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 8080}]}]}),
        ));
        assert_eq!(
            p["spec"]["containers"][0]["ports"][0],
            json!({"containerPort": 8080, "protocol": "TCP", "hostPort": 8080})
        );
    }

    #[test]
    fn update_rules() {
        let mut old = created(pod(
            json!({"containers": [{"name": "web", "image": "nginx:1.26"}]}),
        ));
        old["metadata"]["resourceVersion"] = json!("1");
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("nginx:1.27");
        assert!(PodStrategy.validate_update(&new, &old).is_empty());
        let mut new = old.clone();
        new["spec"]["restartPolicy"] = json!("Never");
        let errs = PodStrategy.validate_update(&new, &old);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].to_string().starts_with(
            "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"
        ));
        let mut new = old.clone();
        new["spec"]["containers"] =
            json!([{"name": "web", "image": "a"}, {"name": "b", "image": "b"}]);
        assert_eq!(
            PodStrategy
                .validate_update(&new, &old)
                .last()
                .map(ToString::to_string),
            Some(
                "spec.containers: Forbidden: pod updates may not add or remove containers"
                    .to_string()
            )
        );
    }

    #[test]
    fn grace_periods() {
        let scheduled = json!({"spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 30}, "status": {"phase": "Running"}});
        assert_eq!(grace_period(&scheduled, None), 30);
        assert_eq!(
            grace_period(
                &json!({"spec": {"terminationGracePeriodSeconds": 30}}),
                None
            ),
            0
        );
        let done = json!({"spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 30}, "status": {"phase": "Succeeded"}});
        assert_eq!(grace_period(&done, None), 0);
        assert_eq!(grace_period(&scheduled, Some(-5)), 1);
    }

    #[test]
    fn create_validation_messages() {
        let mut p = created(pod(json!({"containers": [{"name": "web"}]})));
        p["spec"]["containers"][0]
            .as_object_mut()
            .map(|c| c.remove("image"));
        let errs: Vec<String> = PodStrategy
            .validate(&p)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errs, vec!["spec.containers[0].image: Required value"]);
    }
}
