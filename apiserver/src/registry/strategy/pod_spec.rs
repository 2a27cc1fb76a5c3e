//! The pod spec shared by pods and every workload's pod template: upstream's defaults
//! (`SetDefaults_PodSpec`, containers, probes, volumes) applied to the JSON, and upstream's
//! `ValidatePodSpec` / `ValidatePodTemplateSpec` with their field paths and messages.

use std::collections::{BTreeMap, BTreeSet};

use ironkube_machinery::field::{ErrorKind, FieldError, Path};
use ironkube_machinery::validation::core::{
    config_map_key, http_header_name, port_name, port_num, relaxed_env_var_name, unix_id,
    validate_file_mode, validate_ip, validate_local_descending_path,
    validate_local_non_reserved_path, validate_path_no_backsteps,
};
use ironkube_machinery::validation::labels::{
    label_value, validate_label_name, validate_labels, validate_qualified_name,
};
use ironkube_machinery::validation::meta::{validate_annotations, validate_template_object_meta};
use ironkube_machinery::validation::names::{
    dns1123_label, dns1123_subdomain, dns1123_subdomain_with_underscore,
};
use ironkube_machinery::validation::quantity::Quantity;
use ironkube_machinery::validation::selector::validate_label_selector;
use ironkube_machinery::validation::{go_repr, inclusive_range_error, validate_nonnegative};
use k8s_openapi::api::core::v1::{
    Affinity, Container, EnvFromSource, EnvVar, EphemeralContainer, HTTPGetAction, Lifecycle,
    LifecycleHandler, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, ObjectFieldSelector,
    PodAffinityTerm, PodDNSConfig, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceFieldSelector, ResourceRequirements, SeccompProfile, SecurityContext, Toleration,
    TopologySpreadConstraint, Volume, VolumeDevice, VolumeMount,
};
use k8s_openapi::api::core::v1::{AppArmorProfile, KeyToPath};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Map, Value, json};

use super::object::{
    canonicalize_quantity, canonicalize_resource_list, child_obj, default_field, default_ptr,
    default_template_metadata, each_obj, existing_obj,
};

type Errs = Vec<FieldError>;

/// `terminationMessagePath` default.
const TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";
/// Default mode of secret, configMap, downwardAPI and projected volumes (0644).
const VOLUME_DEFAULT_MODE: i64 = 0o644;

// ---------------------------------------------------------------------------------------------
// Defaults
// ---------------------------------------------------------------------------------------------

/// Defaults of a pod template (`spec.template` of workloads): the Go-serialized template
/// metadata and the pod spec defaults.
pub fn default_pod_template(template: &mut Map<String, Value>) {
    default_template_metadata(template);
    if let Some(spec) = child_obj(template, "spec") {
        default_pod_spec(spec);
    }
}

/// `SetDefaults_PodSpec` and the defaults of everything inside a pod spec.
pub fn default_pod_spec(spec: &mut Map<String, Value>) {
    alias_service_account(spec);
    default_field(spec, "dnsPolicy", json!("ClusterFirst"));
    default_field(spec, "restartPolicy", json!("Always"));
    default_ptr(spec, "securityContext", json!({}));
    default_ptr(spec, "terminationGracePeriodSeconds", json!(30));
    default_field(spec, "schedulerName", json!("default-scheduler"));
    for key in ["containers", "initContainers", "ephemeralContainers"] {
        for c in each_obj(spec, key) {
            default_container(c);
        }
    }
    for v in each_obj(spec, "volumes") {
        default_volume(v);
    }
    canonicalize_resource_list(spec, "overhead");
}

/// `serviceAccount` is the deprecated alias of `serviceAccountName`: read when the new
/// field is empty, and always written back equal to it (upstream's v1 conversions).
pub fn alias_service_account(spec: &mut Map<String, Value>) {
    let name = match spec.get("serviceAccountName").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => spec.get("serviceAccount").and_then(Value::as_str).unwrap_or("").to_string(),
    };
    if name.is_empty() {
        spec.remove("serviceAccountName");
        spec.remove("serviceAccount");
    } else {
        spec.insert("serviceAccountName".into(), json!(name));
        spec.insert("serviceAccount".into(), json!(name));
    }
}

/// Upstream's image-pull-policy rule: `Always` for `:latest` or an image without tag and
/// digest, `IfNotPresent` otherwise (including names that do not parse).
pub fn default_pull_policy(image: &str) -> &'static str {
    if image_tag(image).as_deref() == Some("latest") {
        "Always"
    } else {
        "IfNotPresent"
    }
}

/// The tag of an image reference as the container runtime reads it: `latest` when there is
/// neither tag nor digest, `None` when the reference does not parse or only has a digest.
fn image_tag(image: &str) -> Option<String> {
    if image.is_empty() {
        return None;
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    // The first component is a registry when it has '.', ':' or upper case, or is localhost.
    let path = match repo.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            rest
        }
        _ => repo,
    };
    if path.is_empty() || path.chars().any(|c| c.is_ascii_uppercase()) {
        return None;
    }
    match tag {
        Some(t) => {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            ok.then(|| t.to_string())
        }
        None if digest.is_none() => Some("latest".to_string()),
        None => None,
    }
}

fn default_container(c: &mut Map<String, Value>) {
    let image = c
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    default_field(c, "imagePullPolicy", json!(default_pull_policy(&image)));
    default_field(c, "terminationMessagePath", json!(TERMINATION_MESSAGE_PATH));
    default_field(c, "terminationMessagePolicy", json!("File"));
    if let Some(res) = child_obj(c, "resources") {
        canonicalize_resource_list(res, "limits");
        canonicalize_resource_list(res, "requests");
    }
    for p in each_obj(c, "ports") {
        default_field(p, "protocol", json!("TCP"));
    }
    for e in each_obj(c, "env") {
        if let Some(from) = existing_obj(e, "valueFrom") {
            if let Some(f) = existing_obj(from, "fieldRef") {
                default_field(f, "apiVersion", json!("v1"));
            }
            if let Some(r) = existing_obj(from, "resourceFieldRef") {
                canonicalize_quantity(r, "divisor");
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = existing_obj(c, probe) {
            default_probe(p);
        }
    }
    if let Some(lc) = existing_obj(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = existing_obj(lc, hook) {
                default_handler(h);
            }
        }
    }
}

/// `SetDefaults_Probe` and its handler's defaults.
fn default_probe(p: &mut Map<String, Value>) {
    default_field(p, "timeoutSeconds", json!(1));
    default_field(p, "periodSeconds", json!(10));
    default_field(p, "successThreshold", json!(1));
    default_field(p, "failureThreshold", json!(3));
    default_handler(p);
    if let Some(g) = existing_obj(p, "grpc") {
        default_ptr(g, "service", json!(""));
    }
}

/// `SetDefaults_HTTPGetAction`.
fn default_handler(h: &mut Map<String, Value>) {
    if let Some(get) = existing_obj(h, "httpGet") {
        default_field(get, "path", json!("/"));
        default_field(get, "scheme", json!("HTTP"));
    }
}

/// Every volume source key a `Volume` may carry.
const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

fn default_volume(v: &mut Map<String, Value>) {
    if VOLUME_SOURCES
        .iter()
        .all(|k| v.get(*k).is_none_or(Value::is_null))
    {
        v.insert("emptyDir".into(), json!({}));
    }
    if let Some(s) = existing_obj(v, "secret") {
        default_ptr(s, "defaultMode", json!(VOLUME_DEFAULT_MODE));
    }
    if let Some(s) = existing_obj(v, "configMap") {
        default_ptr(s, "defaultMode", json!(VOLUME_DEFAULT_MODE));
    }
    if let Some(s) = existing_obj(v, "downwardAPI") {
        default_ptr(s, "defaultMode", json!(VOLUME_DEFAULT_MODE));
        default_downward_items(s);
    }
    if let Some(s) = existing_obj(v, "projected") {
        default_ptr(s, "defaultMode", json!(VOLUME_DEFAULT_MODE));
        for src in each_obj(s, "sources") {
            if let Some(t) = existing_obj(src, "serviceAccountToken") {
                default_ptr(t, "expirationSeconds", json!(3600));
            }
            if let Some(d) = existing_obj(src, "downwardAPI") {
                default_downward_items(d);
            }
        }
    }
    if let Some(s) = existing_obj(v, "hostPath") {
        default_ptr(s, "type", json!(""));
    }
    if let Some(s) = existing_obj(v, "emptyDir") {
        canonicalize_quantity(s, "sizeLimit");
    }
    if let Some(s) = existing_obj(v, "iscsi") {
        default_field(s, "iscsiInterface", json!("default"));
    }
    if let Some(s) = existing_obj(v, "rbd") {
        default_field(s, "pool", json!("rbd"));
        default_field(s, "user", json!("admin"));
        default_field(s, "keyring", json!("/etc/ceph/keyring"));
    }
    if let Some(s) = existing_obj(v, "azureDisk") {
        default_ptr(s, "cachingMode", json!("ReadWrite"));
        default_ptr(s, "fsType", json!("ext4"));
        default_ptr(s, "readOnly", json!(false));
        default_ptr(s, "kind", json!("Shared"));
    }
    if let Some(s) = existing_obj(v, "scaleIO") {
        default_field(s, "storageMode", json!("ThinProvisioned"));
        default_field(s, "fsType", json!("xfs"));
    }
    if let Some(t) =
        existing_obj(v, "ephemeral").and_then(|e| existing_obj(e, "volumeClaimTemplate"))
    {
        default_pvc_template(t);
    }
}

/// Defaults of a PVC template (ephemeral volumes, StatefulSet `volumeClaimTemplates`).
pub fn default_pvc_template(t: &mut Map<String, Value>) {
    default_template_metadata(t);
    if let Some(spec) = child_obj(t, "spec") {
        default_ptr(spec, "volumeMode", json!("Filesystem"));
        if let Some(res) = existing_obj(spec, "resources") {
            canonicalize_resource_list(res, "limits");
            canonicalize_resource_list(res, "requests");
        }
    }
}

fn default_downward_items(s: &mut Map<String, Value>) {
    for item in each_obj(s, "items") {
        if let Some(f) = existing_obj(item, "fieldRef") {
            default_field(f, "apiVersion", json!("v1"));
        }
        if let Some(r) = existing_obj(item, "resourceFieldRef") {
            canonicalize_quantity(r, "divisor");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// Upstream's `PodValidationOptions`, the parts that matter here.
#[derive(Debug, Clone, Copy, Default)]
pub struct PodSpecOptions {
    /// The spec belongs to a Pod (not a template).
    pub resource_is_pod: bool,
}

/// What validation needs to know about a declared volume.
#[derive(Debug, Clone, Copy)]
struct VolumeInfo {
    claim_backed: bool,
    image: bool,
}

fn s(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

fn strv(v: &str) -> Value {
    Value::String(v.to_string())
}

/// `ValidatePodTemplateSpec`: labels, annotations and the pod spec of a template.
pub fn validate_pod_template_spec(t: &PodTemplateSpec, path: &Path, opts: PodSpecOptions) -> Errs {
    let mut errs = Vec::new();
    let meta = t.metadata.clone().unwrap_or_default();
    if let Some(labels) = &meta.labels {
        errs.extend(validate_labels(labels, &path.child("labels")));
    }
    let annotations = meta.annotations.as_ref().map(|a| json!(a));
    errs.extend(validate_annotations(
        annotations.as_ref(),
        &path.child("annotations"),
    ));
    let spec = t.spec.clone().unwrap_or_default();
    errs.extend(validate_pod_specific_annotations(
        &meta,
        &spec,
        &path.child("annotations"),
    ));
    errs.extend(validate_pod_spec(&spec, None, &path.child("spec"), opts));
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        errs.push(FieldError::forbidden(
            path.child("spec").child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// `ValidatePodSpecificAnnotations` (the annotations with meaning for pods).
pub fn validate_pod_specific_annotations(meta: &ObjectMeta, spec: &PodSpec, path: &Path) -> Errs {
    let mut errs = Vec::new();
    let annotations = meta.annotations.clone().unwrap_or_default();
    if let Some(v) = annotations.get("kubernetes.io/config.mirror")
        && s(&spec.node_name).is_empty()
    {
        errs.push(FieldError::invalid(
            path.key("kubernetes.io/config.mirror"),
            strv(v),
            "must set spec.nodeName if mirror pod annotation is set",
        ));
    }
    if let Some(v) = annotations.get("controller.kubernetes.io/pod-deletion-cost")
        && v.parse::<i32>().is_err()
    {
        errs.push(FieldError::invalid(
            path.key("controller.kubernetes.io/pod-deletion-cost"),
            strv(v),
            "must be a 32bit integer",
        ));
    }
    for (k, v) in &annotations {
        if k == "seccomp.security.alpha.kubernetes.io/pod"
            || k.starts_with("container.seccomp.security.alpha.kubernetes.io/")
        {
            let ok = v == "runtime/default"
                || v == "docker/default"
                || v == "unconfined"
                || v.strip_prefix("localhost/")
                    .is_some_and(|p| validate_local_descending_path(p, path).is_empty());
            if !ok {
                errs.push(FieldError::invalid(
                    path.child(k),
                    strv(v),
                    "must be a valid seccomp profile",
                ));
            }
        }
    }
    errs
}

/// `ValidatePodSpec`.
pub fn validate_pod_spec(
    spec: &PodSpec,
    pod_name: Option<&str>,
    path: &Path,
    opts: PodSpecOptions,
) -> Errs {
    let mut errs = Vec::new();
    if spec.termination_grace_period_seconds.is_none() {
        errs.push(FieldError::required(
            path.child("terminationGracePeriodSeconds"),
            "",
        ));
    }
    let grace = spec.termination_grace_period_seconds;
    let host_users = spec.host_users.unwrap_or(true);
    let restart_policy = s(&spec.restart_policy);

    let (volumes, vol_errs) = validate_volumes(
        spec.volumes.as_deref().unwrap_or_default(),
        pod_name,
        &path.child("volumes"),
        opts,
    );
    errs.extend(vol_errs);
    let claim_names: BTreeSet<String> = spec
        .resource_claims
        .iter()
        .flatten()
        .filter(|c| !c.name.is_empty())
        .map(|c| c.name.clone())
        .collect();
    errs.extend(validate_pod_resource_claims(
        spec,
        &path.child("resourceClaims"),
    ));
    errs.extend(validate_containers(
        &spec.containers,
        &volumes,
        &claim_names,
        grace,
        &path.child("containers"),
        restart_policy,
        host_users,
    ));
    errs.extend(validate_init_containers(
        spec.init_containers.as_deref().unwrap_or_default(),
        &spec.containers,
        &volumes,
        &claim_names,
        grace,
        &path.child("initContainers"),
        restart_policy,
        host_users,
    ));
    errs.extend(validate_ephemeral_containers(
        spec,
        &volumes,
        &claim_names,
        &path.child("ephemeralContainers"),
        restart_policy,
        host_users,
    ));
    errs.extend(validate_host_network_deps(spec, path, opts));
    errs.extend(validate_enum(
        restart_policy,
        &["Always", "OnFailure", "Never"],
        &path.child("restartPolicy"),
    ));
    errs.extend(validate_enum(
        s(&spec.dns_policy),
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        &path.child("dnsPolicy"),
    ));
    if let Some(ns) = &spec.node_selector {
        errs.extend(validate_labels(ns, &path.child("nodeSelector")));
    }
    errs.extend(validate_pod_security_context(
        spec,
        &path.child("securityContext"),
    ));
    if let Some(affinity) = &spec.affinity {
        errs.extend(validate_affinity(affinity, &path.child("affinity")));
    }
    errs.extend(validate_dns_config(
        spec.dns_config.as_ref(),
        s(&spec.dns_policy),
        &path.child("dnsConfig"),
    ));
    for (i, g) in spec.readiness_gates.iter().flatten().enumerate() {
        errs.extend(validate_qualified_name(
            &g.condition_type,
            &path.child("readinessGates").index(i).child("conditionType"),
        ));
    }
    let mut seen_gates = BTreeSet::new();
    for (i, g) in spec.scheduling_gates.iter().flatten().enumerate() {
        let p = path.child("schedulingGates").index(i);
        errs.extend(validate_qualified_name(&g.name, &p));
        if !seen_gates.insert(g.name.clone()) {
            errs.push(FieldError::duplicate(p, strv(&g.name)));
        }
    }
    errs.extend(validate_topology_spread_constraints(
        spec.topology_spread_constraints
            .as_deref()
            .unwrap_or_default(),
        &path.child("topologySpreadConstraints"),
    ));
    if !host_users {
        if spec.host_network == Some(true) {
            errs.push(FieldError::forbidden(
                path.child("hostNetwork"),
                "when `pod.Spec.HostUsers` is false",
            ));
        }
        if spec.host_pid == Some(true) {
            errs.push(FieldError::forbidden(
                path.child("HostPID"),
                "when `pod.Spec.HostUsers` is false",
            ));
        }
        if spec.host_ipc == Some(true) {
            errs.push(FieldError::forbidden(
                path.child("HostIPC"),
                "when `pod.Spec.HostUsers` is false",
            ));
        }
    }
    for (field, value) in [
        ("serviceAccountName", &spec.service_account_name),
        ("nodeName", &spec.node_name),
    ] {
        let v = s(value);
        if !v.is_empty() {
            for msg in dns1123_subdomain(v) {
                errs.push(FieldError::invalid(path.child(field), strv(v), msg));
            }
        }
    }
    if let Some(ads) = spec.active_deadline_seconds
        && !(1..=i64::from(i32::MAX)).contains(&ads)
    {
        errs.push(FieldError::invalid(
            path.child("activeDeadlineSeconds"),
            ads.into(),
            inclusive_range_error(1, i64::from(i32::MAX)),
        ));
    }
    for (field, value) in [("hostname", &spec.hostname), ("subdomain", &spec.subdomain)] {
        let v = s(value);
        if !v.is_empty() {
            errs.extend(dns_label_errors(v, &path.child(field)));
        }
    }
    errs.extend(validate_tolerations(
        spec.tolerations.as_deref().unwrap_or_default(),
        &path.child("tolerations"),
    ));
    for (i, alias) in spec.host_aliases.iter().flatten().enumerate() {
        let p = path.child("hostAliases").index(i);
        errs.extend(validate_ip(&alias.ip, &p.child("ip")));
        for (j, h) in alias.hostnames.iter().flatten().enumerate() {
            for msg in dns1123_subdomain(h) {
                errs.push(FieldError::invalid(
                    p.child("hostnames").index(j),
                    strv(h),
                    msg,
                ));
            }
        }
    }
    let pc = s(&spec.priority_class_name);
    if !pc.is_empty() {
        for msg in dns1123_subdomain(pc) {
            errs.push(FieldError::invalid(
                path.child("priorityClassName"),
                strv(pc),
                msg,
            ));
        }
    }
    if let Some(rc) = &spec.runtime_class_name {
        for msg in dns1123_subdomain(rc) {
            errs.push(FieldError::invalid(
                path.child("runtimeClassName"),
                strv(rc),
                msg,
            ));
        }
    }
    if let Some(pp) = &spec.preemption_policy {
        errs.extend(validate_enum(
            pp,
            &["PreemptLowerPriority", "Never"],
            &path.child("preemptionPolicy"),
        ));
    }
    if let Some(overhead) = &spec.overhead {
        let req = ResourceRequirements {
            limits: Some(overhead.clone()),
            ..Default::default()
        };
        errs.extend(validate_resource_requirements(
            &req,
            &BTreeSet::new(),
            &path.child("overhead"),
        ));
    }
    if let Some(os) = &spec.os {
        if os.name.is_empty() {
            errs.push(FieldError::required(
                path.child("os").child("name"),
                "cannot be empty",
            ));
        } else if os.name != "linux" && os.name != "windows" {
            errs.push(FieldError::not_supported(
                path.child("os"),
                strv(&os.name),
                &["linux", "windows"],
            ));
        } else if os.name == "linux" {
            errs.extend(validate_linux(spec, path));
        }
    }
    errs
}

/// Required when empty, otherwise one of `allowed`.
fn validate_enum(value: &str, allowed: &[&str], path: &Path) -> Errs {
    if value.is_empty() {
        vec![FieldError::required(path, "")]
    } else if !allowed.contains(&value) {
        vec![FieldError::not_supported(path, strv(value), allowed)]
    } else {
        Vec::new()
    }
}

fn dns_label_errors(v: &str, path: &Path) -> Errs {
    dns1123_label(v)
        .into_iter()
        .map(|m| FieldError::invalid(path, strv(v), m))
        .collect()
}

fn validate_linux(spec: &PodSpec, path: &Path) -> Errs {
    let mut errs = Vec::new();
    if spec
        .security_context
        .as_ref()
        .is_some_and(|sc| sc.windows_options.is_some())
    {
        errs.push(FieldError::forbidden(
            path.child("securityContext").child("windowsOptions"),
            "windows options cannot be set for a linux pod",
        ));
    }
    for (c, p) in all_containers(spec, path) {
        if c.security_context
            .as_ref()
            .is_some_and(|sc| sc.windows_options.is_some())
        {
            errs.push(FieldError::forbidden(
                p.child("securityContext").child("windowsOptions"),
                "windows options cannot be set for a linux pod",
            ));
        }
    }
    errs
}

/// Containers, init containers and ephemeral containers with their paths.
fn all_containers(spec: &PodSpec, path: &Path) -> Vec<(Container, Path)> {
    let mut out = Vec::new();
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        out.push((c.clone(), path.child("initContainers").index(i)));
    }
    for (i, c) in spec.containers.iter().enumerate() {
        out.push((c.clone(), path.child("containers").index(i)));
    }
    for (i, c) in spec.ephemeral_containers.iter().flatten().enumerate() {
        out.push((
            from_ephemeral(c),
            path.child("ephemeralContainers").index(i),
        ));
    }
    out
}

/// The fields an ephemeral container shares with a container.
fn from_ephemeral(e: &EphemeralContainer) -> Container {
    Container {
        args: e.args.clone(),
        command: e.command.clone(),
        env: e.env.clone(),
        env_from: e.env_from.clone(),
        image: e.image.clone(),
        image_pull_policy: e.image_pull_policy.clone(),
        lifecycle: e.lifecycle.clone(),
        liveness_probe: e.liveness_probe.clone(),
        name: e.name.clone(),
        ports: e.ports.clone(),
        readiness_probe: e.readiness_probe.clone(),
        resize_policy: e.resize_policy.clone(),
        resources: e.resources.clone(),
        restart_policy: e.restart_policy.clone(),
        security_context: e.security_context.clone(),
        startup_probe: e.startup_probe.clone(),
        stdin: e.stdin,
        stdin_once: e.stdin_once,
        termination_message_path: e.termination_message_path.clone(),
        termination_message_policy: e.termination_message_policy.clone(),
        tty: e.tty,
        volume_devices: e.volume_devices.clone(),
        volume_mounts: e.volume_mounts.clone(),
        working_dir: e.working_dir.clone(),
    }
}

// --- volumes ---------------------------------------------------------------------------------

fn validate_volumes(
    volumes: &[Volume],
    pod_name: Option<&str>,
    path: &Path,
    opts: PodSpecOptions,
) -> (BTreeMap<String, VolumeInfo>, Errs) {
    let mut errs = Vec::new();
    let mut known = BTreeMap::new();
    let created_claims: BTreeSet<String> = match pod_name {
        Some(pod) if !pod.is_empty() => volumes
            .iter()
            .filter(|v| v.ephemeral.is_some())
            .map(|v| format!("{pod}-{}", v.name))
            .collect(),
        _ => BTreeSet::new(),
    };
    for (i, vol) in volumes.iter().enumerate() {
        let p = path.index(i);
        let name_path = p.child("name");
        let mut el = validate_volume_source(vol, &p, pod_name, opts);
        if vol.name.is_empty() {
            el.push(FieldError::required(&name_path, ""));
        } else {
            el.extend(dns_label_errors(&vol.name, &name_path));
        }
        if known.contains_key(&vol.name) {
            el.push(FieldError::duplicate(&name_path, strv(&vol.name)));
        }
        if el.is_empty() {
            known.insert(
                vol.name.clone(),
                VolumeInfo {
                    claim_backed: vol.persistent_volume_claim.is_some() || vol.ephemeral.is_some(),
                    image: vol.image.is_some(),
                },
            );
        } else {
            errs.extend(el);
        }
        if let Some(pvc) = &vol.persistent_volume_claim
            && created_claims.contains(&pvc.claim_name)
        {
            errs.push(FieldError::invalid(
                p.child("persistentVolumeClaim").child("claimName"),
                strv(&pvc.claim_name),
                "must not reference a PVC that gets created for an ephemeral volume",
            ));
        }
    }
    (known, errs)
}

fn validate_volume_source(
    vol: &Volume,
    path: &Path,
    pod_name: Option<&str>,
    opts: PodSpecOptions,
) -> Errs {
    let mut errs = Vec::new();
    let mut count = 0;
    if let Some(e) = &vol.empty_dir {
        count += 1;
        if let Some(q) = &e.size_limit {
            match Quantity::parse(&q.0) {
                Ok(parsed) if parsed.is_negative() => errs.push(FieldError::forbidden(
                    path.child("emptyDir").child("sizeLimit"),
                    "SizeLimit field must be a valid resource quantity",
                )),
                Ok(_) => {}
                Err(_) => errs.extend(quantity_parse_error(
                    &q.0,
                    &path.child("emptyDir").child("sizeLimit"),
                )),
            }
        }
    }
    let required = |p: Path, v: &str| {
        if v.is_empty() {
            vec![FieldError::required(p, "")]
        } else {
            Vec::new()
        }
    };
    // Each further source in upstream's order: a second one is forbidden.
    let mut source = |present: bool, key: &str, errs: &mut Errs, check: &dyn Fn() -> Errs| {
        if !present {
            return;
        }
        if count > 0 {
            errs.push(FieldError::forbidden(
                path.child(key),
                "may not specify more than 1 volume type",
            ));
        } else {
            count += 1;
            errs.extend(check());
        }
    };
    source(vol.host_path.is_some(), "hostPath", &mut errs, &|| {
        let Some(h) = &vol.host_path else {
            return Vec::new();
        };
        let p = path.child("hostPath");
        if h.path.is_empty() {
            return vec![FieldError::required(p.child("path"), "")];
        }
        let mut e = validate_path_no_backsteps(&h.path, &p.child("path"));
        let types = [
            "",
            "BlockDevice",
            "CharDevice",
            "Directory",
            "DirectoryOrCreate",
            "File",
            "FileOrCreate",
            "Socket",
        ];
        if let Some(t) = &h.type_
            && !types.contains(&t.as_str())
        {
            e.push(FieldError::not_supported(p.child("type"), strv(t), &types));
        }
        e
    });
    source(vol.git_repo.is_some(), "gitRepo", &mut errs, &|| {
        let Some(g) = &vol.git_repo else {
            return Vec::new();
        };
        let p = path.child("gitRepo");
        let mut e = required(p.child("repository"), &g.repository);
        e.extend(validate_local_descending_path(
            s(&g.directory),
            &p.child("directory"),
        ));
        e
    });
    source(
        vol.gce_persistent_disk.is_some(),
        "gcePersistentDisk",
        &mut errs,
        &|| {
            let Some(g) = &vol.gce_persistent_disk else {
                return Vec::new();
            };
            let p = path.child("persistentDisk");
            let mut e = required(p.child("pdName"), &g.pd_name);
            let part = g.partition.unwrap_or(0);
            if !(0..=255).contains(&part) {
                e.push(FieldError::invalid(
                    p.child("partition"),
                    part.into(),
                    inclusive_range_error(1, 255),
                ));
            }
            e
        },
    );
    source(
        vol.aws_elastic_block_store.is_some(),
        "awsElasticBlockStore",
        &mut errs,
        &|| {
            let Some(a) = &vol.aws_elastic_block_store else {
                return Vec::new();
            };
            let p = path.child("awsElasticBlockStore");
            let mut e = required(p.child("volumeID"), &a.volume_id);
            let part = a.partition.unwrap_or(0);
            if !(0..=255).contains(&part) {
                e.push(FieldError::invalid(
                    p.child("partition"),
                    part.into(),
                    inclusive_range_error(1, 255),
                ));
            }
            e
        },
    );
    source(vol.secret.is_some(), "secret", &mut errs, &|| {
        let Some(sv) = &vol.secret else {
            return Vec::new();
        };
        let p = path.child("secret");
        let mut e = required(p.child("secretName"), s(&sv.secret_name));
        e.extend(validate_file_mode(sv.default_mode, &p.child("defaultMode")));
        for (i, kp) in sv.items.iter().flatten().enumerate() {
            e.extend(validate_key_to_path(kp, &p.child("items").index(i)));
        }
        e
    });
    source(vol.nfs.is_some(), "nfs", &mut errs, &|| {
        let Some(n) = &vol.nfs else { return Vec::new() };
        let p = path.child("nfs");
        let mut e = required(p.child("server"), &n.server);
        e.extend(required(p.child("path"), &n.path));
        if !n.path.starts_with('/') {
            e.push(FieldError::invalid(
                p.child("path"),
                strv(&n.path),
                "must be an absolute path",
            ));
        }
        e
    });
    source(vol.iscsi.is_some(), "iscsi", &mut errs, &|| {
        let Some(is) = &vol.iscsi else {
            return Vec::new();
        };
        let p = path.child("iscsi");
        let mut e = required(p.child("targetPortal"), &is.target_portal);
        if is.iqn.is_empty() {
            e.push(FieldError::required(p.child("iqn"), ""));
        } else if !["iqn", "eui", "naa"]
            .iter()
            .any(|pre| is.iqn.starts_with(pre))
        {
            e.push(FieldError::invalid(
                p.child("iqn"),
                strv(&is.iqn),
                "must be valid format starting with iqn, eui, or naa",
            ));
        }
        if !(0..=255).contains(&is.lun) {
            e.push(FieldError::invalid(
                p.child("lun"),
                is.lun.into(),
                inclusive_range_error(0, 255),
            ));
        }
        if (is.chap_auth_discovery == Some(true) || is.chap_auth_session == Some(true))
            && is.secret_ref.is_none()
        {
            e.push(FieldError::required(p.child("secretRef"), ""));
        }
        e
    });
    source(vol.glusterfs.is_some(), "glusterfs", &mut errs, &|| {
        let Some(g) = &vol.glusterfs else {
            return Vec::new();
        };
        let p = path.child("glusterfs");
        let mut e = required(p.child("endpoints"), &g.endpoints);
        e.extend(required(p.child("path"), &g.path));
        e
    });
    source(vol.flocker.is_some(), "flocker", &mut errs, &|| {
        let Some(f) = &vol.flocker else {
            return Vec::new();
        };
        let p = path.child("flocker");
        let (name, uuid) = (s(&f.dataset_name), s(&f.dataset_uuid));
        let mut e = Vec::new();
        if name.is_empty() && uuid.is_empty() {
            e.push(FieldError::required(
                &p,
                "one of datasetName and datasetUUID is required",
            ));
        }
        if !name.is_empty() && !uuid.is_empty() {
            e.push(FieldError::invalid(
                &p,
                strv("resource"),
                "datasetName and datasetUUID can not be specified simultaneously",
            ));
        }
        if name.contains('/') {
            e.push(FieldError::invalid(
                p.child("datasetName"),
                strv(name),
                "must not contain '/'",
            ));
        }
        e
    });
    source(
        vol.persistent_volume_claim.is_some(),
        "persistentVolumeClaim",
        &mut errs,
        &|| {
            let Some(c) = &vol.persistent_volume_claim else {
                return Vec::new();
            };
            required(
                path.child("persistentVolumeClaim").child("claimName"),
                &c.claim_name,
            )
        },
    );
    source(vol.rbd.is_some(), "rbd", &mut errs, &|| {
        let Some(r) = &vol.rbd else { return Vec::new() };
        let p = path.child("rbd");
        let mut e = Vec::new();
        if r.monitors.is_empty() {
            e.push(FieldError::required(p.child("monitors"), ""));
        }
        e.extend(required(p.child("image"), &r.image));
        e
    });
    source(vol.cinder.is_some(), "cinder", &mut errs, &|| {
        let Some(c) = &vol.cinder else {
            return Vec::new();
        };
        let p = path.child("cinder");
        let mut e = required(p.child("volumeID"), &c.volume_id);
        if let Some(r) = &c.secret_ref {
            e.extend(required(p.child("secretRef").child("name"), &r.name));
        }
        e
    });
    source(vol.cephfs.is_some(), "cephFS", &mut errs, &|| {
        let Some(c) = &vol.cephfs else {
            return Vec::new();
        };
        if c.monitors.is_empty() {
            vec![FieldError::required(
                path.child("cephfs").child("monitors"),
                "",
            )]
        } else {
            Vec::new()
        }
    });
    source(vol.quobyte.is_some(), "quobyte", &mut errs, &|| {
        let Some(q) = &vol.quobyte else {
            return Vec::new();
        };
        let p = path.child("quobyte");
        let mut e = Vec::new();
        if q.registry.is_empty() {
            e.push(FieldError::required(
                p.child("registry"),
                "must be a host:port pair or multiple pairs separated by commas",
            ));
        } else if s(&q.tenant).len() >= 65 {
            e.push(FieldError::required(
                p.child("tenant"),
                "must be a UUID and may not exceed a length of 64 characters",
            ));
        } else {
            for pair in q.registry.split(',') {
                if pair.rsplit_once(':').is_none() {
                    e.push(FieldError::invalid(
                        p.child("registry"),
                        strv(&q.registry),
                        "must be a host:port pair or multiple pairs separated by commas",
                    ));
                }
            }
        }
        e.extend(required(p.child("volume"), &q.volume));
        e
    });
    source(vol.downward_api.is_some(), "downwarAPI", &mut errs, &|| {
        let Some(d) = &vol.downward_api else {
            return Vec::new();
        };
        let p = path.child("downwardAPI");
        let mut e = validate_file_mode(d.default_mode, &p.child("defaultMode"));
        for f in d.items.iter().flatten() {
            e.extend(validate_downward_api_file(
                &f.path,
                f.field_ref.as_ref(),
                f.resource_field_ref.as_ref(),
                f.mode,
                &p,
            ));
        }
        e
    });
    source(vol.fc.is_some(), "fc", &mut errs, &|| {
        let Some(fc) = &vol.fc else { return Vec::new() };
        let p = path.child("fc");
        let wwns = fc.target_wwns.as_deref().unwrap_or_default();
        let wwids = fc.wwids.as_deref().unwrap_or_default();
        let mut e = Vec::new();
        if wwns.is_empty() && wwids.is_empty() {
            e.push(FieldError::required(
                p.child("targetWWNs"),
                "must specify either targetWWNs or wwids, but not both",
            ));
        }
        if !wwns.is_empty() && !wwids.is_empty() {
            e.push(go_repr::invalid_repr(
                p.child("targetWWNs"),
                &go_repr::string_slice(Some(wwns)),
                "targetWWNs and wwids can not be specified simultaneously",
            ));
        }
        if !wwns.is_empty() {
            match fc.lun {
                None => e.push(FieldError::required(
                    p.child("lun"),
                    "lun is required if targetWWNs is specified",
                )),
                Some(l) if !(0..=255).contains(&l) => e.push(FieldError::invalid(
                    p.child("lun"),
                    l.into(),
                    inclusive_range_error(0, 255),
                )),
                _ => {}
            }
        }
        e
    });
    source(vol.flex_volume.is_some(), "flexVolume", &mut errs, &|| {
        let Some(f) = &vol.flex_volume else {
            return Vec::new();
        };
        let p = path.child("flexVolume");
        let mut e = required(p.child("driver"), &f.driver);
        for k in f.options.iter().flatten().map(|(k, _)| k) {
            let ns = k.split_once('/').map_or(k.as_str(), |(n, _)| n);
            let normalized = format!(".{}", ns.to_lowercase());
            if normalized.ends_with(".kubernetes.io") || normalized.ends_with(".k8s.io") {
                e.push(FieldError::invalid(
                    p.child("options").key(k),
                    strv(k),
                    "kubernetes.io and k8s.io namespaces are reserved",
                ));
            }
        }
        e
    });
    source(vol.config_map.is_some(), "configMap", &mut errs, &|| {
        let Some(c) = &vol.config_map else {
            return Vec::new();
        };
        let p = path.child("configMap");
        let mut e = required(p.child("name"), &c.name);
        e.extend(validate_file_mode(c.default_mode, &p.child("defaultMode")));
        for (i, kp) in c.items.iter().flatten().enumerate() {
            e.extend(validate_key_to_path(kp, &p.child("items").index(i)));
        }
        e
    });
    source(vol.azure_file.is_some(), "azureFile", &mut errs, &|| {
        let Some(a) = &vol.azure_file else {
            return Vec::new();
        };
        let p = path.child("azureFile");
        let mut e = required(p.child("secretName"), &a.secret_name);
        e.extend(required(p.child("shareName"), &a.share_name));
        e
    });
    source(
        vol.vsphere_volume.is_some(),
        "vsphereVolume",
        &mut errs,
        &|| {
            let Some(v) = &vol.vsphere_volume else {
                return Vec::new();
            };
            required(
                path.child("vsphereVolume").child("volumePath"),
                &v.volume_path,
            )
        },
    );
    source(
        vol.photon_persistent_disk.is_some(),
        "photonPersistentDisk",
        &mut errs,
        &|| {
            let Some(v) = &vol.photon_persistent_disk else {
                return Vec::new();
            };
            required(path.child("photonPersistentDisk").child("pdID"), &v.pd_id)
        },
    );
    source(
        vol.portworx_volume.is_some(),
        "portworxVolume",
        &mut errs,
        &|| {
            let Some(v) = &vol.portworx_volume else {
                return Vec::new();
            };
            required(path.child("portworxVolume").child("volumeID"), &v.volume_id)
        },
    );
    source(vol.azure_disk.is_some(), "azureDisk", &mut errs, &|| {
        let Some(a) = &vol.azure_disk else {
            return Vec::new();
        };
        let p = path.child("azureDisk");
        let mut e = required(p.child("diskName"), &a.disk_name);
        e.extend(required(p.child("diskURI"), &a.disk_uri));
        let modes = ["None", "ReadOnly", "ReadWrite"];
        if let Some(m) = &a.caching_mode
            && !modes.contains(&m.as_str())
        {
            e.push(FieldError::not_supported(
                p.child("cachingMode"),
                strv(m),
                &modes,
            ));
        }
        let kinds = ["Dedicated", "Managed", "Shared"];
        if let Some(k) = &a.kind
            && !kinds.contains(&k.as_str())
        {
            e.push(FieldError::not_supported(p.child("kind"), strv(k), &kinds));
        }
        e
    });
    source(vol.storageos.is_some(), "storageos", &mut errs, &|| {
        let Some(so) = &vol.storageos else {
            return Vec::new();
        };
        let p = path.child("storageos");
        let name = s(&so.volume_name);
        let mut e = if name.is_empty() {
            vec![FieldError::required(p.child("volumeName"), "")]
        } else {
            dns_label_errors(name, &p.child("volumeName"))
        };
        let ns = s(&so.volume_namespace);
        if !ns.is_empty() {
            e.extend(dns_label_errors(ns, &p.child("volumeNamespace")));
        }
        e
    });
    source(vol.projected.is_some(), "projected", &mut errs, &|| {
        let Some(pj) = &vol.projected else {
            return Vec::new();
        };
        validate_projected(pj, &path.child("projected"))
    });
    source(vol.scale_io.is_some(), "scaleIO", &mut errs, &|| {
        let Some(sc) = &vol.scale_io else {
            return Vec::new();
        };
        let p = path.child("scaleIO");
        let mut e = required(p.child("gateway"), &sc.gateway);
        e.extend(required(p.child("system"), &sc.system));
        e.extend(required(p.child("volumeName"), s(&sc.volume_name)));
        e
    });
    source(vol.csi.is_some(), "csi", &mut errs, &|| {
        let Some(c) = &vol.csi else { return Vec::new() };
        let p = path.child("csi");
        let mut e = validate_csi_driver_name(&c.driver, &p.child("driver"));
        if let Some(r) = &c.node_publish_secret_ref {
            if r.name.is_empty() {
                e.push(FieldError::required(
                    p.child("nodePublishSecretRef").child("name"),
                    "",
                ));
            } else {
                for msg in dns1123_subdomain(&r.name) {
                    e.push(FieldError::invalid(p.child("name"), strv(&r.name), msg));
                }
            }
        }
        e
    });
    source(vol.ephemeral.is_some(), "ephemeral", &mut errs, &|| {
        let Some(eph) = &vol.ephemeral else {
            return Vec::new();
        };
        let p = path.child("ephemeral");
        let mut e = Vec::new();
        match &eph.volume_claim_template {
            None => e.push(FieldError::required(p.child("volumeClaimTemplate"), "")),
            Some(t) => {
                let tp = p.child("volumeClaimTemplate");
                let meta = t
                    .metadata
                    .as_ref()
                    .map(|m| serde_json::to_value(m).unwrap_or(Value::Null));
                e.extend(validate_template_object_meta(
                    meta.as_ref(),
                    &tp.child("metadata"),
                ));
                e.extend(validate_pvc_spec_basics(&t.spec, &tp.child("spec")));
            }
        }
        if let Some(pod) = pod_name
            && !pod.is_empty()
            && !vol.name.is_empty()
        {
            let pvc = format!("{pod}-{}", vol.name);
            for msg in dns1123_subdomain(&pvc) {
                e.push(FieldError::invalid(
                    path.child("name"),
                    strv(&vol.name),
                    format!("PVC name {pvc:?}: {msg}"),
                ));
            }
        }
        e
    });
    source(vol.image.is_some(), "image", &mut errs, &|| {
        let Some(img) = &vol.image else {
            return Vec::new();
        };
        let p = path.child("image");
        let mut e = Vec::new();
        if opts.resource_is_pod && s(&img.reference).is_empty() {
            e.push(FieldError::required(p.child("reference"), ""));
        }
        e.extend(validate_enum(
            s(&img.pull_policy),
            &["Always", "IfNotPresent", "Never"],
            &p.child("pullPolicy"),
        ));
        e
    });
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
    errs
}

fn validate_csi_driver_name(driver: &str, path: &Path) -> Errs {
    let mut e = Vec::new();
    if driver.is_empty() {
        e.push(FieldError::required(path, ""));
    }
    if driver.len() > 63 {
        e.push(FieldError::too_long(path, 63));
    }
    for msg in dns1123_subdomain(&driver.to_lowercase()) {
        e.push(FieldError::invalid(path, strv(driver), msg));
    }
    e
}

/// `ValidatePersistentVolumeClaimSpec` (without data sources and volume attributes classes).
pub fn validate_pvc_spec_basics(
    spec: &k8s_openapi::api::core::v1::PersistentVolumeClaimSpec,
    path: &Path,
) -> Errs {
    let mut e = Vec::new();
    let modes = spec.access_modes.as_deref().unwrap_or_default();
    let supported = [
        "ReadOnlyMany",
        "ReadWriteMany",
        "ReadWriteOnce",
        "ReadWriteOncePod",
    ];
    if modes.is_empty() {
        e.push(FieldError::required(
            path.child("accessModes"),
            "at least 1 access mode is required",
        ));
    }
    e.extend(validate_label_selector(
        spec.selector.as_ref(),
        &path.child("selector"),
    ));
    let (mut rwop, mut other) = (false, false);
    for m in modes {
        if !supported.contains(&m.as_str()) {
            e.push(FieldError::not_supported(
                path.child("accessModes"),
                strv(m),
                &supported,
            ));
        } else if m == "ReadWriteOncePod" {
            rwop = true;
        } else {
            other = true;
        }
    }
    if rwop && other {
        e.push(FieldError::forbidden(
            path.child("accessModes"),
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    let storage_path = path.child("resources").key("storage");
    let storage = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"));
    match storage {
        None => e.push(FieldError::required(&storage_path, "")),
        Some(q) => match Quantity::parse(&q.0) {
            Err(err) => e.push(FieldError::invalid(
                &storage_path,
                strv(&q.0),
                err.to_string(),
            )),
            Ok(q) if q.nanos() <= 0 => e.push(FieldError::invalid(
                &storage_path,
                strv(&q.to_string()),
                "must be greater than zero",
            )),
            Ok(_) => {}
        },
    }
    if let Some(class) = spec.storage_class_name.as_deref().filter(|c| !c.is_empty()) {
        for m in dns1123_subdomain(class) {
            e.push(FieldError::invalid(
                path.child("storageClassName"),
                strv(class),
                m,
            ));
        }
    }
    if let Some(vm) = &spec.volume_mode
        && vm != "Block"
        && vm != "Filesystem"
    {
        e.push(FieldError::not_supported(
            path.child("volumeMode"),
            strv(vm),
            &["Block", "Filesystem"],
        ));
    }
    e
}

fn validate_key_to_path(kp: &KeyToPath, path: &Path) -> Errs {
    let mut e = Vec::new();
    if kp.key.is_empty() {
        e.push(FieldError::required(path.child("key"), ""));
    }
    if kp.path.is_empty() {
        e.push(FieldError::required(path.child("path"), ""));
    }
    e.extend(validate_local_non_reserved_path(
        &kp.path,
        &path.child("path"),
    ));
    e.extend(validate_file_mode(kp.mode, &path.child("mode")));
    e
}

const VOLUME_DOWNWARD_FIELDS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];
const ENV_DOWNWARD_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
const RESOURCE_FIELD_PATHS: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

fn validate_downward_api_file(
    file_path: &str,
    field_ref: Option<&ObjectFieldSelector>,
    resource_ref: Option<&ResourceFieldSelector>,
    mode: Option<i32>,
    path: &Path,
) -> Errs {
    let mut e = Vec::new();
    if file_path.is_empty() {
        e.push(FieldError::required(path.child("path"), ""));
    }
    e.extend(validate_local_non_reserved_path(
        file_path,
        &path.child("path"),
    ));
    match (field_ref, resource_ref) {
        (Some(f), r) => {
            e.extend(validate_object_field_selector(
                f,
                VOLUME_DOWNWARD_FIELDS,
                &path.child("fieldRef"),
            ));
            if r.is_some() {
                e.push(FieldError::invalid(
                    path,
                    strv("resource"),
                    "fieldRef and resourceFieldRef can not be specified simultaneously",
                ));
            }
        }
        (None, Some(r)) => e.extend(validate_resource_field_selector(
            r,
            true,
            &path.child("resourceFieldRef"),
        )),
        (None, None) => e.push(FieldError::required(
            path,
            "one of fieldRef and resourceFieldRef is required",
        )),
    }
    e.extend(validate_file_mode(mode, &path.child("mode")));
    e
}

fn validate_object_field_selector(f: &ObjectFieldSelector, allowed: &[&str], path: &Path) -> Errs {
    let api_version = s(&f.api_version);
    if api_version.is_empty() {
        return vec![FieldError::required(path.child("apiVersion"), "")];
    }
    if f.field_path.is_empty() {
        return vec![FieldError::required(path.child("fieldPath"), "")];
    }
    if api_version != "v1" {
        return vec![FieldError::invalid(
            path.child("fieldPath"),
            strv(&f.field_path),
            format!(
                "error converting fieldPath: field label not supported: {}",
                f.field_path
            ),
        )];
    }
    // `metadata.labels['key']` / `metadata.annotations['key']`.
    if let Some((base, rest)) = f.field_path.split_once("['")
        && let Some(sub) = rest.strip_suffix("']")
    {
        return match base {
            "metadata.annotations" => validate_qualified_name(&sub.to_lowercase(), path),
            "metadata.labels" => validate_qualified_name(sub, path),
            _ => vec![FieldError::invalid(
                path,
                strv(base),
                "does not support subscript",
            )],
        };
    }
    if !allowed.contains(&f.field_path.as_str()) {
        return vec![FieldError::not_supported(
            path.child("fieldPath"),
            strv(&f.field_path),
            allowed,
        )];
    }
    Vec::new()
}

fn validate_resource_field_selector(r: &ResourceFieldSelector, volume: bool, path: &Path) -> Errs {
    let mut e = Vec::new();
    if volume && s(&r.container_name).is_empty() {
        e.push(FieldError::required(path.child("containerName"), ""));
    } else if r.resource.is_empty() {
        e.push(FieldError::required(path.child("resource"), ""));
    } else if !RESOURCE_FIELD_PATHS.contains(&r.resource.as_str())
        && !r.resource.starts_with("requests.hugepages-")
        && !r.resource.starts_with("limits.hugepages-")
    {
        e.push(FieldError::not_supported(
            path.child("resource"),
            strv(&r.resource),
            RESOURCE_FIELD_PATHS,
        ));
    }
    if let Some(d) = r.divisor.as_ref().and_then(|d| Quantity::parse(&d.0).ok())
        && !d.is_zero()
    {
        let shown = d.to_string();
        let (allowed, what): (&[&str], &str) = match r.resource.as_str() {
            "limits.cpu" | "requests.cpu" => (&["1m", "1"], "cpu"),
            "limits.memory" | "requests.memory" => (MEMORY_DIVISORS, "memory"),
            "limits.ephemeral-storage" | "requests.ephemeral-storage" => {
                (MEMORY_DIVISORS, "local ephemeral storage")
            }
            x if x.starts_with("requests.hugepages-") || x.starts_with("limits.hugepages-") => {
                (MEMORY_DIVISORS, "hugepages")
            }
            _ => (&[], ""),
        };
        if !what.is_empty() && !allowed.contains(&shown.as_str()) {
            let list = if what == "cpu" {
                "1m and 1".to_string()
            } else {
                allowed.join(", ")
            };
            e.push(FieldError::invalid(
                path.child("divisor"),
                strv(&r.resource),
                format!("only divisor's values {list} are supported with the {what} resource"),
            ));
        }
    }
    e
}

const MEMORY_DIVISORS: &[&str] = &[
    "1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei",
];

fn validate_projected(pj: &k8s_openapi::api::core::v1::ProjectedVolumeSource, path: &Path) -> Errs {
    let mut e = validate_file_mode(pj.default_mode, &path.child("defaultMode"));
    let mut all_paths = BTreeSet::new();
    for (i, src) in pj.sources.iter().flatten().enumerate() {
        let sp = path.child("sources").index(i);
        let mut n = 0;
        if let Some(sec) = &src.secret {
            n += 1;
            let p = sp.child("secret");
            if sec.name.is_empty() {
                e.push(FieldError::required(p.child("name"), ""));
            }
            for (j, kp) in sec.items.iter().flatten().enumerate() {
                e.extend(validate_key_to_path(kp, &p.child("items").index(j)));
                if !kp.path.is_empty() && !all_paths.insert(kp.path.clone()) {
                    e.push(FieldError::invalid(
                        path,
                        strv(&sec.name),
                        "conflicting duplicate paths",
                    ));
                }
            }
        }
        if let Some(cm) = &src.config_map {
            n += 1;
            let p = sp.child("configMap");
            if cm.name.is_empty() {
                e.push(FieldError::required(p.child("name"), ""));
            }
            for (j, kp) in cm.items.iter().flatten().enumerate() {
                e.extend(validate_key_to_path(kp, &p.child("items").index(j)));
                if !kp.path.is_empty() && !all_paths.insert(kp.path.clone()) {
                    e.push(FieldError::invalid(
                        path,
                        strv(&cm.name),
                        "conflicting duplicate paths",
                    ));
                }
            }
        }
        if let Some(d) = &src.downward_api {
            n += 1;
            let p = sp.child("downwardAPI");
            for f in d.items.iter().flatten() {
                e.extend(validate_downward_api_file(
                    &f.path,
                    f.field_ref.as_ref(),
                    f.resource_field_ref.as_ref(),
                    f.mode,
                    &p,
                ));
                if !f.path.is_empty() && !all_paths.insert(f.path.clone()) {
                    e.push(FieldError::invalid(
                        path,
                        strv(&f.path),
                        "conflicting duplicate paths",
                    ));
                }
            }
        }
        if let Some(t) = &src.service_account_token {
            n += 1;
            let p = sp.child("serviceAccountToken");
            let exp = t.expiration_seconds.unwrap_or(0);
            if exp < 600 {
                e.push(FieldError::invalid(
                    p.child("expirationSeconds"),
                    exp.into(),
                    "may not specify a duration less than 10 minutes",
                ));
            }
            if exp > 1 << 32 {
                e.push(FieldError::invalid(
                    p.child("expirationSeconds"),
                    exp.into(),
                    "may not specify a duration larger than 2^32 seconds",
                ));
            }
            if t.path.is_empty() {
                e.push(FieldError::required(path.child("path"), ""));
            } else {
                e.extend(validate_local_non_reserved_path(
                    &t.path,
                    &path.child("path"),
                ));
            }
        }
        if let Some(ctb) = &src.cluster_trust_bundle {
            n += 1;
            let p = sp.child("clusterTrustBundle");
            match (&ctb.name, &ctb.signer_name) {
                (Some(_), Some(_)) => e.push(FieldError::invalid(
                    &p,
                    Value::Null,
                    "only one of name and signerName may be used",
                )),
                (Some(name), None) if name.is_empty() => e.push(FieldError::required(
                    p.child("name"),
                    "must be a valid object name",
                )),
                (None, Some(signer)) if signer.is_empty() => e.push(FieldError::required(
                    p.child("signerName"),
                    "must be a valid signer name",
                )),
                (None, None) => e.push(FieldError::required(
                    &p,
                    "either name or signerName must be specified",
                )),
                _ => {}
            }
            if ctb.path.is_empty() {
                e.push(FieldError::required(p.child("path"), ""));
            }
            e.extend(validate_local_non_reserved_path(
                &ctb.path,
                &p.child("path"),
            ));
            if !all_paths.insert(ctb.path.clone()) {
                e.push(FieldError::invalid(
                    path,
                    strv(&ctb.path),
                    "conflicting duplicate paths",
                ));
            }
        }
        if n > 1 {
            e.push(FieldError::forbidden(
                &sp,
                "may not specify more than 1 volume type per source",
            ));
        }
    }
    e
}

fn validate_pod_resource_claims(spec: &PodSpec, path: &Path) -> Errs {
    let mut e = Vec::new();
    let mut names = BTreeSet::new();
    for (i, c) in spec.resource_claims.iter().flatten().enumerate() {
        let p = path.index(i);
        if c.name.is_empty() {
            e.push(FieldError::required(p.child("name"), ""));
        } else if !names.insert(c.name.clone()) {
            e.push(FieldError::duplicate(p.child("name"), strv(&c.name)));
        } else {
            e.extend(dns_label_errors(&c.name, &p.child("name")));
        }
        match (&c.resource_claim_name, &c.resource_claim_template_name) {
            (Some(_), Some(_)) => e.push(FieldError::invalid(
                &p,
                Value::Null,
                "at most one of `resourceClaimName` or `resourceClaimTemplateName` may be specified",
            )),
            (None, None) => e.push(FieldError::invalid(
                &p,
                Value::Null,
                "must specify one of: `resourceClaimName`, `resourceClaimTemplateName`",
            )),
            _ => {}
        }
    }
    e
}

// --- containers ------------------------------------------------------------------------------

#[allow(clippy::too_many_arguments)]
fn validate_containers(
    containers: &[Container],
    volumes: &BTreeMap<String, VolumeInfo>,
    claims: &BTreeSet<String>,
    grace: Option<i64>,
    path: &Path,
    restart_policy: &str,
    host_users: bool,
) -> Errs {
    let mut errs = Vec::new();
    if containers.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let mut names = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        let p = path.index(i);
        errs.extend(validate_container_common(
            c,
            volumes,
            claims,
            &p,
            restart_policy,
            host_users,
        ));
        if !names.insert(c.name.clone()) {
            errs.push(FieldError::duplicate(p.child("name"), strv(&c.name)));
        }
        if let Some(lc) = &c.lifecycle {
            errs.extend(validate_lifecycle(lc, grace, &p.child("lifecycle")));
        }
        errs.extend(validate_probes(c, grace, &p));
        if c.restart_policy.is_some() {
            errs.push(FieldError::forbidden(
                p.child("restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    errs.extend(check_host_port_conflicts(containers, path));
    errs
}

fn validate_probes(c: &Container, grace: Option<i64>, p: &Path) -> Errs {
    let mut errs = Vec::new();
    if let Some(probe) = &c.liveness_probe {
        let lp = p.child("livenessProbe");
        errs.extend(validate_probe(probe, grace, &lp));
        if probe.success_threshold.unwrap_or(0) != 1 {
            errs.push(FieldError::invalid(
                lp.child("successThreshold"),
                probe.success_threshold.unwrap_or(0).into(),
                "must be 1",
            ));
        }
    }
    if let Some(probe) = &c.readiness_probe {
        let rp = p.child("readinessProbe");
        errs.extend(validate_probe(probe, grace, &rp));
        if let Some(t) = probe.termination_grace_period_seconds {
            errs.push(FieldError::invalid(
                rp.child("terminationGracePeriodSeconds"),
                t.into(),
                "must not be set for readinessProbes",
            ));
        }
    }
    if let Some(probe) = &c.startup_probe {
        let sp = p.child("startupProbe");
        errs.extend(validate_probe(probe, grace, &sp));
        if probe.success_threshold.unwrap_or(0) != 1 {
            errs.push(FieldError::invalid(
                sp.child("successThreshold"),
                probe.success_threshold.unwrap_or(0).into(),
                "must be 1",
            ));
        }
    }
    errs
}

#[allow(clippy::too_many_arguments)]
fn validate_init_containers(
    containers: &[Container],
    regular: &[Container],
    volumes: &BTreeMap<String, VolumeInfo>,
    claims: &BTreeSet<String>,
    grace: Option<i64>,
    path: &Path,
    restart_policy: &str,
    host_users: bool,
) -> Errs {
    let mut errs = Vec::new();
    let mut names: BTreeSet<String> = regular.iter().map(|c| c.name.clone()).collect();
    for (i, c) in containers.iter().enumerate() {
        let p = path.index(i);
        errs.extend(validate_container_common(
            c,
            volumes,
            claims,
            &p,
            restart_policy,
            host_users,
        ));
        let mut restart_always = false;
        if let Some(rp) = &c.restart_policy {
            if rp != "Always" {
                errs.push(FieldError::not_supported(
                    p.child("restartPolicy"),
                    strv(rp),
                    &["Always"],
                ));
            }
            restart_always = rp == "Always";
        }
        if names.contains(&c.name) {
            errs.push(FieldError::duplicate(p.child("name"), strv(&c.name)));
        } else if !c.name.is_empty() {
            names.insert(c.name.clone());
        }
        errs.extend(check_host_port_conflicts(std::slice::from_ref(c), path));
        if restart_always {
            if let Some(lc) = &c.lifecycle {
                errs.extend(validate_lifecycle(lc, grace, &p.child("lifecycle")));
            }
            errs.extend(validate_probes(c, grace, &p));
        } else {
            for (set, field) in [
                (c.lifecycle.is_some(), "lifecycle"),
                (c.liveness_probe.is_some(), "livenessProbe"),
                (c.readiness_probe.is_some(), "readinessProbe"),
                (c.startup_probe.is_some(), "startupProbe"),
            ] {
                if set {
                    errs.push(FieldError::forbidden(
                        p.child(field),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }
    errs
}

/// Fields an ephemeral container may set; the others are forbidden.
const EPHEMERAL_FORBIDDEN: &[&str] = &[
    "ports",
    "resources",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
];

fn validate_ephemeral_containers(
    spec: &PodSpec,
    volumes: &BTreeMap<String, VolumeInfo>,
    claims: &BTreeSet<String>,
    path: &Path,
    restart_policy: &str,
    host_users: bool,
) -> Errs {
    let mut errs = Vec::new();
    let eph = spec.ephemeral_containers.as_deref().unwrap_or_default();
    if eph.is_empty() {
        return errs;
    }
    let others: BTreeSet<String> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .map(|c| c.name.clone())
        .collect();
    let mut all = others.clone();
    for (i, ec) in eph.iter().enumerate() {
        let p = path.index(i);
        let c = from_ephemeral(ec);
        errs.extend(validate_container_common(
            &c,
            volumes,
            claims,
            &p,
            restart_policy,
            host_users,
        ));
        errs.extend(validate_container_only_for_pod(&c, &p));
        if !all.insert(ec.name.clone()) {
            errs.push(FieldError::duplicate(p.child("name"), strv(&ec.name)));
        }
        let target = s(&ec.target_container_name);
        if !target.is_empty() && !others.contains(target) {
            errs.push(FieldError::not_found(
                p.child("targetContainerName"),
                strv(target),
            ));
        }
        let set = [
            ec.ports.as_ref().is_some_and(|v| !v.is_empty()),
            ec.resources
                .as_ref()
                .is_some_and(|r| r != &ResourceRequirements::default()),
            ec.liveness_probe.is_some(),
            ec.readiness_probe.is_some(),
            ec.startup_probe.is_some(),
            ec.lifecycle.is_some(),
        ];
        for (field, is_set) in EPHEMERAL_FORBIDDEN.iter().zip(set) {
            if is_set {
                errs.push(FieldError::forbidden(
                    p.child(field),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
        for (j, vm) in ec.volume_mounts.iter().flatten().enumerate() {
            let mp = p.child("volumeMounts").index(j);
            if !s(&vm.sub_path).is_empty() {
                errs.push(FieldError::forbidden(
                    mp.child("subPath"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
            if !s(&vm.sub_path_expr).is_empty() {
                errs.push(FieldError::forbidden(
                    mp.child("subPathExpr"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
    }
    errs
}

/// `validateContainerOnlyForPod`: pods (not templates) may not pad images with spaces.
pub fn validate_container_only_for_pod(c: &Container, path: &Path) -> Errs {
    let image = s(&c.image);
    if image.len() != image.trim().len() {
        vec![FieldError::invalid(
            path.child("image"),
            strv(image),
            "must not have leading or trailing whitespace",
        )]
    } else {
        Vec::new()
    }
}

fn validate_container_common(
    c: &Container,
    volumes: &BTreeMap<String, VolumeInfo>,
    claims: &BTreeSet<String>,
    path: &Path,
    restart_policy: &str,
    host_users: bool,
) -> Errs {
    let mut errs = Vec::new();
    let name_path = path.child("name");
    if c.name.is_empty() {
        errs.push(FieldError::required(&name_path, ""));
    } else {
        errs.extend(dns_label_errors(&c.name, &name_path));
    }
    if s(&c.image).is_empty() {
        errs.push(FieldError::required(path.child("image"), ""));
    }
    errs.extend(validate_enum(
        s(&c.termination_message_policy),
        &["File", "FallbackToLogsOnError"],
        &path.child("terminationMessagePolicy"),
    ));
    let mounts: Vec<VolumeMount> = c.volume_mounts.clone().unwrap_or_default();
    let devices: Vec<VolumeDevice> = c.volume_devices.clone().unwrap_or_default();
    errs.extend(validate_container_ports(
        c.ports.as_deref().unwrap_or_default(),
        &path.child("ports"),
    ));
    errs.extend(validate_env(
        c.env.as_deref().unwrap_or_default(),
        &path.child("env"),
    ));
    errs.extend(validate_env_from(
        c.env_from.as_deref().unwrap_or_default(),
        &path.child("envFrom"),
    ));
    errs.extend(validate_volume_mounts(
        &mounts,
        &devices,
        volumes,
        c,
        &path.child("volumeMounts"),
    ));
    errs.extend(validate_volume_devices(
        &devices,
        &mounts,
        volumes,
        &path.child("volumeDevices"),
    ));
    errs.extend(validate_enum(
        s(&c.image_pull_policy),
        &["Always", "IfNotPresent", "Never"],
        &path.child("imagePullPolicy"),
    ));
    if let Some(r) = &c.resources {
        errs.extend(validate_resource_requirements(
            r,
            claims,
            &path.child("resources"),
        ));
    }
    errs.extend(validate_resize_policy(
        c,
        &path.child("resizePolicy"),
        restart_policy,
    ));
    if let Some(sc) = &c.security_context {
        errs.extend(validate_security_context(
            sc,
            &path.child("securityContext"),
            host_users,
        ));
    }
    errs
}

fn validate_container_ports(
    ports: &[k8s_openapi::api::core::v1::ContainerPort],
    path: &Path,
) -> Errs {
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = path.index(i);
        let name = s(&port.name);
        if !name.is_empty() {
            let msgs = port_name(name);
            if !msgs.is_empty() {
                errs.extend(
                    msgs.into_iter()
                        .map(|m| FieldError::invalid(p.child("name"), strv(name), m)),
                );
            } else if !names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(p.child("name"), strv(name)));
            }
        }
        if port.container_port == 0 {
            errs.push(FieldError::required(p.child("containerPort"), ""));
        } else {
            for m in port_num(i64::from(port.container_port)) {
                errs.push(FieldError::invalid(
                    p.child("containerPort"),
                    port.container_port.into(),
                    m,
                ));
            }
        }
        if let Some(hp) = port.host_port
            && hp != 0
        {
            for m in port_num(i64::from(hp)) {
                errs.push(FieldError::invalid(p.child("hostPort"), hp.into(), m));
            }
        }
        errs.extend(validate_enum(
            s(&port.protocol),
            &["SCTP", "TCP", "UDP"],
            &p.child("protocol"),
        ));
    }
    errs
}

fn check_host_port_conflicts(containers: &[Container], path: &Path) -> Errs {
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (ci, c) in containers.iter().enumerate() {
        for (pi, port) in c.ports.iter().flatten().enumerate() {
            let hp = port.host_port.unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let key = format!("{}/{}/{hp}", s(&port.protocol), s(&port.host_ip));
            if !seen.insert(key.clone()) {
                errs.push(FieldError::duplicate(
                    path.index(ci).child("ports").index(pi).child("hostPort"),
                    strv(&key),
                ));
            }
        }
    }
    errs
}

fn validate_env(vars: &[EnvVar], path: &Path) -> Errs {
    let mut errs = Vec::new();
    for (i, ev) in vars.iter().enumerate() {
        let p = path.index(i);
        if ev.name.is_empty() {
            errs.push(FieldError::required(p.child("name"), ""));
        } else {
            for m in relaxed_env_var_name(&ev.name) {
                errs.push(FieldError::invalid(p.child("name"), strv(&ev.name), m));
            }
        }
        let Some(from) = &ev.value_from else { continue };
        let fp = p.child("valueFrom");
        let mut sources = 0;
        if let Some(f) = &from.field_ref {
            sources += 1;
            errs.extend(validate_object_field_selector(
                f,
                ENV_DOWNWARD_FIELDS,
                &fp.child("fieldRef"),
            ));
        }
        if let Some(r) = &from.resource_field_ref {
            sources += 1;
            errs.extend(validate_resource_field_selector(
                r,
                false,
                &fp.child("resourceFieldRef"),
            ));
        }
        for (sel, field) in [
            (
                from.config_map_key_ref.as_ref().map(|r| (&r.name, &r.key)),
                "configMapKeyRef",
            ),
            (
                from.secret_key_ref.as_ref().map(|r| (&r.name, &r.key)),
                "secretKeyRef",
            ),
        ] {
            if let Some((name, key)) = sel {
                sources += 1;
                let kp = fp.child(field);
                for m in dns1123_subdomain(name) {
                    errs.push(FieldError::invalid(kp.child("name"), strv(name), m));
                }
                if key.is_empty() {
                    errs.push(FieldError::required(kp.child("key"), ""));
                } else {
                    for m in config_map_key(key) {
                        errs.push(FieldError::invalid(kp.child("key"), strv(key), m));
                    }
                }
            }
        }
        if sources == 0 {
            errs.push(FieldError::invalid(
                &fp,
                strv(""),
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if !s(&ev.value).is_empty() {
            errs.push(FieldError::invalid(
                &fp,
                strv(""),
                "may not be specified when `value` is not empty",
            ));
        } else if sources > 1 {
            errs.push(FieldError::invalid(
                &fp,
                strv(""),
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn validate_env_from(sources: &[EnvFromSource], path: &Path) -> Errs {
    let mut errs = Vec::new();
    for (i, ev) in sources.iter().enumerate() {
        let p = path.index(i);
        let prefix = s(&ev.prefix);
        if !prefix.is_empty() {
            for m in relaxed_env_var_name(prefix) {
                errs.push(FieldError::invalid(p.child("prefix"), strv(prefix), m));
            }
        }
        let mut n = 0;
        for (name, field) in [
            (ev.config_map_ref.as_ref().map(|r| &r.name), "configMapRef"),
            (ev.secret_ref.as_ref().map(|r| &r.name), "secretRef"),
        ] {
            if let Some(name) = name {
                n += 1;
                let rp = p.child(field).child("name");
                if name.is_empty() {
                    errs.push(FieldError::required(rp, ""));
                } else {
                    for m in dns1123_subdomain(
                        &ironkube_machinery::validation::names::mask_trailing_dash(name),
                    ) {
                        errs.push(FieldError::invalid(&rp, strv(name), m));
                    }
                }
            }
        }
        if n == 0 {
            errs.push(FieldError::invalid(
                path,
                strv(""),
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if n > 1 {
            errs.push(FieldError::invalid(
                path,
                strv(""),
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn validate_volume_mounts(
    mounts: &[VolumeMount],
    devices: &[VolumeDevice],
    volumes: &BTreeMap<String, VolumeInfo>,
    c: &Container,
    path: &Path,
) -> Errs {
    let mut errs = Vec::new();
    let mut points = BTreeSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let p = path.index(i);
        if m.name.is_empty() {
            errs.push(FieldError::required(p.child("name"), ""));
        }
        if !volumes.contains_key(&m.name) {
            errs.push(FieldError::not_found(p.child("name"), strv(&m.name)));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(p.child("mountPath"), ""));
        }
        if !points.insert(m.mount_path.clone()) {
            errs.push(FieldError::invalid(
                p.child("mountPath"),
                strv(&m.mount_path),
                "must be unique",
            ));
        }
        if devices.iter().any(|d| d.name == m.name) {
            errs.push(FieldError::invalid(
                p.child("name"),
                strv(&m.name),
                "must not already exist in volumeDevices",
            ));
        }
        if devices.iter().any(|d| d.device_path == m.mount_path) {
            errs.push(FieldError::invalid(
                p.child("mountPath"),
                strv(&m.mount_path),
                "must not already exist as a path in volumeDevices",
            ));
        }
        let sub_path = s(&m.sub_path);
        let sub_expr = s(&m.sub_path_expr);
        if volumes.get(&m.name).is_some_and(|v| v.image) {
            if !sub_path.is_empty() {
                errs.push(FieldError::invalid(
                    p.child("subPath"),
                    strv(sub_path),
                    "not allowed in image volume sources",
                ));
            }
            if !sub_expr.is_empty() {
                errs.push(FieldError::invalid(
                    p.child("subPathExpr"),
                    strv(sub_expr),
                    "not allowed in image volume sources",
                ));
            }
        }
        if !sub_path.is_empty() {
            errs.extend(validate_local_descending_path(
                sub_path,
                &path.child("subPath"),
            ));
        }
        if !sub_expr.is_empty() {
            if !sub_path.is_empty() {
                errs.push(FieldError::invalid(
                    p.child("subPathExpr"),
                    strv(sub_expr),
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            errs.extend(validate_local_descending_path(
                sub_expr,
                &path.child("subPathExpr"),
            ));
        }
        if let Some(prop) = &m.mount_propagation {
            let pp = path.child("mountPropagation");
            let supported = ["Bidirectional", "HostToContainer", "None"];
            if !supported.contains(&prop.as_str()) {
                errs.push(FieldError::not_supported(&pp, strv(prop), &supported));
            }
            let privileged = c.security_context.as_ref().and_then(|sc| sc.privileged) == Some(true);
            if prop == "Bidirectional" && !privileged {
                errs.push(FieldError::forbidden(
                    &pp,
                    "Bidirectional mount propagation is available only to privileged containers",
                ));
            }
        }
        if let Some(rro) = &m.recursive_read_only {
            let rp = path.child("recursiveReadOnly");
            match rro.as_str() {
                "Disabled" => {}
                "Enabled" | "IfPossible" => {
                    if m.read_only != Some(true) {
                        errs.push(FieldError::forbidden(
                            &rp,
                            "may only be specified when readOnly is true",
                        ));
                    }
                    if m.mount_propagation.as_deref().is_some_and(|p| p != "None") {
                        errs.push(FieldError::forbidden(
                            &rp,
                            "may only be specified when mountPropagation is None or not specified",
                        ));
                    }
                }
                other => errs.push(FieldError::not_supported(
                    &rp,
                    strv(other),
                    &["Disabled", "Enabled", "IfPossible"],
                )),
            }
        }
    }
    errs
}

fn validate_volume_devices(
    devices: &[VolumeDevice],
    mounts: &[VolumeMount],
    volumes: &BTreeMap<String, VolumeInfo>,
    path: &Path,
) -> Errs {
    let mut errs = Vec::new();
    let mut paths = BTreeSet::new();
    let mut names = BTreeSet::new();
    for (i, d) in devices.iter().enumerate() {
        let p = path.index(i);
        let info = volumes.get(&d.name);
        if d.name.is_empty() {
            errs.push(FieldError::required(p.child("name"), ""));
        }
        if names.contains(&d.name) {
            errs.push(FieldError::invalid(
                p.child("name"),
                strv(&d.name),
                "must be unique",
            ));
        }
        match info {
            Some(v) if !v.claim_backed => errs.push(FieldError::invalid(
                p.child("name"),
                strv(&d.name),
                "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode",
            )),
            None => errs.push(FieldError::not_found(p.child("name"), strv(&d.name))),
            _ => {}
        }
        if d.device_path.is_empty() {
            errs.push(FieldError::required(p.child("devicePath"), ""));
        }
        if paths.contains(&d.device_path) {
            errs.push(FieldError::invalid(
                p.child("devicePath"),
                strv(&d.device_path),
                "must be unique",
            ));
        }
        if !d.device_path.is_empty() && d.device_path.split('/').any(|x| x == "..") {
            errs.push(FieldError::invalid(
                p.child("devicePath"),
                strv(&d.device_path),
                "can not contain backsteps ('..')",
            ));
        } else {
            paths.insert(d.device_path.clone());
        }
        if mounts.iter().any(|m| m.name == d.name) {
            errs.push(FieldError::invalid(
                p.child("name"),
                strv(&d.name),
                "must not already exist in volumeMounts",
            ));
        }
        if mounts.iter().any(|m| m.mount_path == d.device_path) {
            errs.push(FieldError::invalid(
                p.child("devicePath"),
                strv(&d.device_path),
                "must not already exist as a path in volumeMounts",
            ));
        }
        if !d.name.is_empty() {
            names.insert(d.name.clone());
        }
    }
    errs
}

fn validate_resize_policy(c: &Container, path: &Path, restart_policy: &str) -> Errs {
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, p) in c.resize_policy.iter().flatten().enumerate() {
        if !seen.insert(p.resource_name.clone()) {
            errs.push(FieldError::duplicate(path.index(i), strv(&p.resource_name)));
        }
        match p.resource_name.as_str() {
            "cpu" | "memory" => {}
            "" => errs.push(FieldError::required(path, "")),
            other => errs.push(FieldError::not_supported(
                path,
                strv(other),
                &["cpu", "memory"],
            )),
        }
        match p.restart_policy.as_str() {
            "NotRequired" | "RestartContainer" => {}
            "" => errs.push(FieldError::required(path, "")),
            other => errs.push(FieldError::not_supported(
                path,
                strv(other),
                &["NotRequired", "RestartContainer"],
            )),
        }
        if restart_policy == "Never" && p.restart_policy != "NotRequired" {
            errs.push(FieldError::invalid(
                path,
                strv(&p.restart_policy),
                "must be 'NotRequired' when `restartPolicy` is 'Never'",
            ));
        }
    }
    errs
}

// --- probes and handlers ---------------------------------------------------------------------

fn validate_probe(probe: &Probe, grace: Option<i64>, path: &Path) -> Errs {
    let mut errs = validate_handler(
        probe
            .exec
            .as_ref()
            .map(|e| e.command.as_deref().unwrap_or_default()),
        probe.http_get.as_ref(),
        probe.tcp_socket.as_ref().map(|t| &t.port),
        probe.grpc.as_ref().map(|g| g.port),
        None,
        grace,
        path,
    );
    for (v, field) in [
        (probe.initial_delay_seconds, "initialDelaySeconds"),
        (probe.timeout_seconds, "timeoutSeconds"),
        (probe.period_seconds, "periodSeconds"),
        (probe.success_threshold, "successThreshold"),
        (probe.failure_threshold, "failureThreshold"),
    ] {
        errs.extend(validate_nonnegative(
            i64::from(v.unwrap_or(0)),
            &path.child(field),
        ));
    }
    if let Some(t) = probe.termination_grace_period_seconds
        && t <= 0
    {
        errs.push(FieldError::invalid(
            path.child("terminationGracePeriodSeconds"),
            t.into(),
            "must be greater than 0",
        ));
    }
    errs
}

fn validate_lifecycle(lc: &Lifecycle, grace: Option<i64>, path: &Path) -> Errs {
    let mut errs = Vec::new();
    for (h, field) in [(&lc.post_start, "postStart"), (&lc.pre_stop, "preStop")] {
        if let Some(h) = h {
            errs.extend(validate_lifecycle_handler(h, grace, &path.child(field)));
        }
    }
    errs
}

fn validate_lifecycle_handler(h: &LifecycleHandler, grace: Option<i64>, path: &Path) -> Errs {
    validate_handler(
        h.exec
            .as_ref()
            .map(|e| e.command.as_deref().unwrap_or_default()),
        h.http_get.as_ref(),
        h.tcp_socket.as_ref().map(|t| &t.port),
        None,
        h.sleep.as_ref().map(|s| s.seconds),
        grace,
        path,
    )
}

fn validate_handler(
    exec: Option<&[String]>,
    http: Option<&HTTPGetAction>,
    tcp: Option<&IntOrString>,
    grpc: Option<i32>,
    sleep: Option<i64>,
    grace: Option<i64>,
    path: &Path,
) -> Errs {
    let mut errs = Vec::new();
    let mut n = 0;
    let mut one = |present: bool, field: &str, errs: &mut Errs, check: &dyn Fn() -> Errs| {
        if !present {
            return;
        }
        if n > 0 {
            errs.push(FieldError::forbidden(
                path.child(field),
                "may not specify more than 1 handler type",
            ));
        } else {
            n += 1;
            errs.extend(check());
        }
    };
    one(exec.is_some(), "exec", &mut errs, &|| {
        if exec.unwrap_or_default().is_empty() {
            vec![FieldError::required(
                path.child("exec").child("command"),
                "",
            )]
        } else {
            Vec::new()
        }
    });
    one(http.is_some(), "httpGet", &mut errs, &|| {
        let Some(h) = http else { return Vec::new() };
        let p = path.child("httpGet");
        let mut e = Vec::new();
        if s(&h.path).is_empty() {
            e.push(FieldError::required(p.child("path"), ""));
        }
        e.extend(validate_int_or_string_port(&h.port, &p.child("port")));
        let scheme = s(&h.scheme);
        if scheme != "HTTP" && scheme != "HTTPS" {
            e.push(FieldError::not_supported(
                p.child("scheme"),
                strv(scheme),
                &["HTTP", "HTTPS"],
            ));
        }
        for hdr in h.http_headers.iter().flatten() {
            for m in http_header_name(&hdr.name) {
                e.push(FieldError::invalid(
                    p.child("httpHeaders"),
                    strv(&hdr.name),
                    m,
                ));
            }
        }
        e
    });
    one(tcp.is_some(), "tcpSocket", &mut errs, &|| {
        tcp.map(|port| validate_int_or_string_port(port, &path.child("tcpSocket").child("port")))
            .unwrap_or_default()
    });
    one(grpc.is_some(), "grpc", &mut errs, &|| {
        let port = i64::from(grpc.unwrap_or(0));
        port_num(port)
            .into_iter()
            .map(|m| FieldError::invalid(path.child("grpc").child("port"), port.into(), m))
            .collect()
    });
    one(sleep.is_some(), "sleep", &mut errs, &|| {
        let secs = sleep.unwrap_or(0);
        match grace {
            Some(g) if secs < 0 || secs > g => vec![FieldError::invalid(
                path.child("sleep"),
                secs.into(),
                format!("must be non-negative and less than terminationGracePeriodSeconds ({g})"),
            )],
            _ => Vec::new(),
        }
    });
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
    errs
}

/// `ValidatePortNumOrName` for a typed port.
pub fn validate_int_or_string_port(port: &IntOrString, path: &Path) -> Errs {
    match port {
        IntOrString::Int(i) => port_num(i64::from(*i))
            .into_iter()
            .map(|m| FieldError::invalid(path, (*i).into(), m))
            .collect(),
        IntOrString::String(sv) => port_name(sv)
            .into_iter()
            .map(|m| FieldError::invalid(path, strv(sv), m))
            .collect(),
    }
}

// --- resources -------------------------------------------------------------------------------

const STANDARD_CONTAINER_RESOURCES: &[&str] = &["cpu", "memory", "ephemeral-storage"];
const STANDARD_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "storage",
    "requests.storage",
    "services.nodeports",
    "services.loadbalancers",
];

fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn is_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

/// `IsExtendedResourceName`.
pub fn is_extended_resource(name: &str) -> bool {
    if is_native_resource(name) || name.starts_with("requests.") {
        return false;
    }
    ironkube_machinery::validation::labels::qualified_name(&format!("requests.{name}")).is_empty()
}

/// `IsOvercommitAllowed`.
pub fn overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !is_hugepages(name)
}

fn validate_container_resource_name(name: &str, path: &Path) -> Errs {
    let mut errs: Errs = ironkube_machinery::validation::labels::qualified_name(name)
        .into_iter()
        .map(|m| FieldError::invalid(path, strv(name), m))
        .collect();
    if !errs.is_empty() {
        return errs;
    }
    if !name.contains('/') {
        if !STANDARD_RESOURCES.contains(&name) && !is_hugepages(name) {
            return vec![FieldError::invalid(
                path,
                strv(name),
                "must be a standard resource type or fully qualified",
            )];
        }
        if !STANDARD_CONTAINER_RESOURCES.contains(&name) && !is_hugepages(name) {
            errs.push(FieldError::invalid(
                path,
                strv(name),
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native_resource(name) && !is_extended_resource(name) {
        errs.push(FieldError::invalid(
            path,
            strv(name),
            "doesn't follow extended resource name standard",
        ));
    }
    errs
}

fn quantity_parse_error(raw: &str, path: &Path) -> Errs {
    match Quantity::parse(raw) {
        Ok(_) => Vec::new(),
        Err(e) => vec![FieldError::invalid(path, strv(raw), e.to_string())],
    }
}

/// `ValidateResourceQuantityValue`: not negative, and whole for integer resources.
pub fn validate_resource_quantity(name: &str, q: &Quantity, path: &Path) -> Errs {
    let mut errs = Vec::new();
    if q.is_negative() {
        errs.push(FieldError::invalid(
            path,
            strv(&q.to_string()),
            "must be greater than or equal to 0",
        ));
    }
    let integer_resource = [
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services.nodeports",
        "services.loadbalancers",
    ]
    .contains(&name)
        || is_extended_resource(name);
    if integer_resource && q.milli_value() % 1000 != 0 {
        errs.push(FieldError::invalid(
            path,
            strv(&q.to_string()),
            "must be an integer",
        ));
    }
    errs
}

/// `ValidateContainerResourceRequirements`.
pub fn validate_resource_requirements(
    r: &ResourceRequirements,
    claims: &BTreeSet<String>,
    path: &Path,
) -> Errs {
    let mut errs = Vec::new();
    let lim_path = path.child("limits");
    let req_path = path.child("requests");
    let parse_all = |list: &Option<
        BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >,
                     p: &Path,
                     errs: &mut Errs|
     -> BTreeMap<String, Quantity> {
        let mut out = BTreeMap::new();
        for (k, v) in list.iter().flatten() {
            match Quantity::parse(&v.0) {
                Ok(q) => {
                    out.insert(k.clone(), q);
                }
                Err(e) => errs.push(FieldError::invalid(p.key(k), strv(&v.0), e.to_string())),
            }
        }
        out
    };
    let limits = parse_all(&r.limits, &lim_path, &mut errs);
    let requests = parse_all(&r.requests, &req_path, &mut errs);
    let (mut lim_cpu_mem, mut req_cpu_mem, mut lim_huge, mut req_huge) =
        (false, false, false, false);
    for (name, q) in &limits {
        let p = lim_path.key(name);
        errs.extend(validate_container_resource_name(name, &p));
        errs.extend(validate_resource_quantity(name, q, &p));
        if is_hugepages(name) {
            lim_huge = true;
            errs.extend(hugepage_divisible(name, q, &p));
        }
        if name == "cpu" || name == "memory" {
            lim_cpu_mem = true;
        }
    }
    for (name, q) in &requests {
        let p = req_path.key(name);
        errs.extend(validate_container_resource_name(name, &p));
        errs.extend(validate_resource_quantity(name, q, &p));
        match limits.get(name) {
            Some(limit) => {
                if q != limit && !overcommit_allowed(name) {
                    errs.push(FieldError::invalid(
                        &req_path,
                        strv(&q.to_string()),
                        format!("must be equal to {name} limit of {limit}"),
                    ));
                } else if q > limit {
                    errs.push(FieldError::invalid(
                        &req_path,
                        strv(&q.to_string()),
                        format!("must be less than or equal to {name} limit of {limit}"),
                    ));
                }
            }
            None if !overcommit_allowed(name) => {
                errs.push(FieldError::required(
                    &lim_path,
                    "Limit must be set for non overcommitable resources",
                ));
            }
            None => {}
        }
        if is_hugepages(name) {
            req_huge = true;
            errs.extend(hugepage_divisible(name, q, &p));
        }
        if name == "cpu" || name == "memory" {
            req_cpu_mem = true;
        }
    }
    if !lim_cpu_mem && !req_cpu_mem && (req_huge || lim_huge) {
        errs.push(FieldError::forbidden(
            path,
            "HugePages require cpu or memory",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, c) in r.claims.iter().flatten().enumerate() {
        let p = path.child("claims").index(i);
        if c.name.is_empty() {
            errs.push(FieldError::required(&p, ""));
            continue;
        }
        let key = match c.request.as_deref().filter(|r| !r.is_empty()) {
            Some(req) => {
                errs.extend(dns_label_errors(req, &p.child("request")));
                format!("{}/{req}", c.name)
            }
            None => c.name.clone(),
        };
        if !seen.insert(key.clone()) {
            errs.push(FieldError::duplicate(&p, strv(&key)));
        }
        if !claims.contains(&c.name) {
            let detail = if claims.is_empty() {
                "must be one of the names in pod.spec.resourceClaims which is empty".to_string()
            } else {
                format!(
                    "must be one of the names in pod.spec.resourceClaims: {}",
                    claims.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            };
            errs.push(FieldError {
                kind: ErrorKind::NotFound,
                field: p.into(),
                value: Some(strv(&c.name)),
                detail,
            });
        }
    }
    errs
}

fn hugepage_divisible(name: &str, q: &Quantity, path: &Path) -> Errs {
    let size = name
        .strip_prefix("hugepages-")
        .and_then(|s| Quantity::parse(s).ok());
    match size {
        Some(size) if size.nanos() > 0 && q.nanos() % size.nanos() == 0 => Vec::new(),
        _ => vec![FieldError::invalid(
            path,
            strv(&q.to_string()),
            format!("{q} is not positive integer multiple of {name}"),
        )],
    }
}

// --- security --------------------------------------------------------------------------------

fn validate_seccomp(sp: Option<&SeccompProfile>, path: &Path) -> Errs {
    let Some(sp) = sp else { return Vec::new() };
    let mut errs = Vec::new();
    match sp.type_.as_str() {
        "Localhost" | "RuntimeDefault" | "Unconfined" => {}
        "" => errs.push(FieldError::required(
            path.child("type"),
            "type is required when seccompProfile is set",
        )),
        other => errs.push(FieldError::not_supported(
            path.child("type"),
            strv(other),
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )),
    }
    if sp.type_ == "Localhost" {
        match &sp.localhost_profile {
            None => errs.push(FieldError::required(
                path.child("localhostProfile"),
                "must be set when seccomp type is Localhost",
            )),
            Some(p) => errs.extend(validate_local_descending_path(
                p,
                &path.child("localhostProfile"),
            )),
        }
    } else if sp.localhost_profile.is_some() {
        errs.push(FieldError::invalid(
            path.child("localhostProfile"),
            Value::Null,
            "can only be set when seccomp type is Localhost",
        ));
    }
    errs
}

fn validate_app_armor(p: Option<&AppArmorProfile>, path: &Path) -> Errs {
    let Some(p) = p else { return Vec::new() };
    let mut errs = Vec::new();
    match p.type_.as_str() {
        "Localhost" => match &p.localhost_profile {
            None => errs.push(FieldError::required(
                path.child("localhostProfile"),
                "must be set when AppArmor type is Localhost",
            )),
            Some(lp) => {
                if lp.trim() != lp {
                    errs.push(FieldError::invalid(
                        path.child("localhostProfile"),
                        strv(lp),
                        "must not be padded with whitespace",
                    ));
                } else if lp.is_empty() {
                    errs.push(FieldError::required(
                        path.child("localhostProfile"),
                        "must be set when AppArmor type is Localhost",
                    ));
                }
                if lp.len() > 4095 {
                    errs.push(FieldError::too_long(path.child("localhostProfile"), 4095));
                }
            }
        },
        "RuntimeDefault" | "Unconfined" => {
            if let Some(lp) = &p.localhost_profile {
                errs.push(FieldError::invalid(
                    path.child("localhostProfile"),
                    strv(lp),
                    "can only be set when AppArmor type is Localhost",
                ));
            }
        }
        "" => errs.push(FieldError::required(
            path.child("type"),
            "type is required when appArmorProfile is set",
        )),
        other => errs.push(FieldError::not_supported(
            path.child("type"),
            strv(other),
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )),
    }
    errs
}

/// `ValidateSecurityContext` (of a container).
fn validate_security_context(sc: &SecurityContext, path: &Path, host_users: bool) -> Errs {
    let mut errs = Vec::new();
    for (v, field) in [
        (sc.run_as_user, "runAsUser"),
        (sc.run_as_group, "runAsGroup"),
    ] {
        if let Some(id) = v {
            errs.extend(
                unix_id(id)
                    .into_iter()
                    .map(|m| FieldError::invalid(path.child(field), id.into(), m)),
            );
        }
    }
    if let Some(pm) = &sc.proc_mount {
        if pm != "Default" && pm != "Unmasked" {
            errs.push(FieldError::not_supported(
                path.child("procMount"),
                strv(pm),
                &["Default", "Unmasked"],
            ));
        }
        if host_users && pm == "Unmasked" {
            errs.push(FieldError::invalid(
                path.child("procMount"),
                strv(pm),
                "`hostUsers` must be false to use `Unmasked`",
            ));
        }
    }
    errs.extend(validate_seccomp(
        sc.seccomp_profile.as_ref(),
        &path.child("seccompProfile"),
    ));
    if sc.allow_privilege_escalation == Some(false) {
        if sc.privileged == Some(true) {
            errs.push(FieldError::invalid(
                path,
                Value::Null,
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
        if sc
            .capabilities
            .as_ref()
            .and_then(|c| c.add.as_ref())
            .is_some_and(|a| a.iter().any(|c| c == "CAP_SYS_ADMIN"))
        {
            errs.push(FieldError::invalid(
                path,
                Value::Null,
                "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
            ));
        }
    }
    errs.extend(validate_app_armor(
        sc.app_armor_profile.as_ref(),
        &path.child("appArmorProfile"),
    ));
    errs
}

fn validate_pod_security_context(spec: &PodSpec, path: &Path) -> Errs {
    let Some(sc) = &spec.security_context else {
        return Vec::new();
    };
    let sc: &PodSecurityContext = sc;
    let mut errs = Vec::new();
    for (v, field) in [
        (sc.fs_group, "fsGroup"),
        (sc.run_as_user, "runAsUser"),
        (sc.run_as_group, "runAsGroup"),
    ] {
        if let Some(id) = v {
            errs.extend(
                unix_id(id)
                    .into_iter()
                    .map(|m| FieldError::invalid(path.child(field), id.into(), m)),
            );
        }
    }
    for (i, gid) in sc.supplemental_groups.iter().flatten().enumerate() {
        errs.extend(unix_id(*gid).into_iter().map(|m| {
            FieldError::invalid(path.child("supplementalGroups").index(i), (*gid).into(), m)
        }));
    }
    if spec.share_process_namespace == Some(true) && spec.host_pid == Some(true) {
        errs.push(FieldError::invalid(
            path.child("shareProcessNamespace"),
            true.into(),
            "ShareProcessNamespace and HostPID cannot both be enabled",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, sysctl) in sc.sysctls.iter().flatten().enumerate() {
        let p = path.child("sysctls").index(i).child("name");
        if sysctl.name.is_empty() {
            errs.push(FieldError::required(&p, ""));
        } else if !valid_sysctl_name(&sysctl.name) {
            errs.push(FieldError::invalid(
                &p,
                strv(&sysctl.name),
                "must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$",
            ));
        } else if seen.contains(&sysctl.name) {
            errs.push(FieldError::duplicate(&p, strv(&sysctl.name)));
        }
        let net = sysctl.name.starts_with("net.");
        let ipc = sysctl.name.starts_with("kernel.shm")
            || sysctl.name.starts_with("kernel.msg")
            || sysctl.name.starts_with("kernel.sem")
            || sysctl.name.starts_with("fs.mqueue.");
        if spec.host_network == Some(true) && net {
            errs.push(FieldError::invalid(
                &p,
                strv(&sysctl.name),
                "may not be specified when 'hostNetwork' is true",
            ));
        } else if spec.host_ipc == Some(true) && ipc {
            errs.push(FieldError::invalid(
                &p,
                strv(&sysctl.name),
                "may not be specified when 'hostIPC' is true",
            ));
        }
        seen.insert(sysctl.name.clone());
    }
    if let Some(p) = &sc.fs_group_change_policy
        && p != "OnRootMismatch"
        && p != "Always"
    {
        errs.push(FieldError::not_supported(
            path.child("fsGroupChangePolicy"),
            strv(p),
            &["Always", "OnRootMismatch"],
        ));
    }
    errs.extend(validate_seccomp(
        sc.seccomp_profile.as_ref(),
        &path.child("seccompProfile"),
    ));
    errs.extend(validate_app_armor(
        sc.app_armor_profile.as_ref(),
        &path.child("appArmorProfile"),
    ));
    if let Some(p) = &sc.supplemental_groups_policy
        && p != "Merge"
        && p != "Strict"
    {
        errs.push(FieldError::not_supported(
            path.child("supplementalGroupsPolicy"),
            strv(p),
            &["Merge", "Strict"],
        ));
    }
    if let Some(p) = &sc.se_linux_change_policy
        && p != "Recursive"
        && p != "MountOption"
    {
        errs.push(FieldError::not_supported(
            path.child("seLinuxChangePolicy"),
            strv(p),
            &["MountOption", "Recursive"],
        ));
    }
    errs
}

fn valid_sysctl_name(name: &str) -> bool {
    if name.len() > 253 {
        return false;
    }
    let seg_ok = |seg: &str| {
        let b = seg.as_bytes();
        let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        !b.is_empty()
            && alnum(b[0])
            && alnum(b[b.len() - 1])
            && b.iter().all(|c| alnum(*c) || *c == b'-' || *c == b'_')
    };
    name.split(['.', '/']).all(seg_ok)
}

// --- scheduling ------------------------------------------------------------------------------

fn validate_host_network_deps(spec: &PodSpec, path: &Path, opts: PodSpecOptions) -> Errs {
    let mut errs = Vec::new();
    if spec.host_network != Some(true) {
        return errs;
    }
    for (i, c) in spec.containers.iter().enumerate() {
        for (j, port) in c.ports.iter().flatten().enumerate() {
            let hp = port.host_port.unwrap_or(0);
            if (opts.resource_is_pod || hp != 0) && hp != port.container_port {
                errs.push(FieldError::invalid(
                    path.child("containers")
                        .index(i)
                        .child("ports")
                        .index(j)
                        .child("hostPort"),
                    hp.into(),
                    "must match `containerPort` when `hostNetwork` is true",
                ));
            }
        }
    }
    errs
}

fn validate_dns_config(cfg: Option<&PodDNSConfig>, policy: &str, path: &Path) -> Errs {
    let mut errs = Vec::new();
    if policy == "None" {
        let Some(c) = cfg else {
            return vec![FieldError::required(
                path,
                "must provide `dnsConfig` when `dnsPolicy` is None",
            )];
        };
        if c.nameservers.as_ref().is_none_or(Vec::is_empty) {
            return vec![FieldError::required(
                path.child("nameservers"),
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            )];
        }
    }
    let Some(c) = cfg else { return errs };
    let ns = c.nameservers.as_deref().unwrap_or_default();
    if ns.len() > 3 {
        errs.push(go_repr::invalid_repr(
            path.child("nameservers"),
            &go_repr::string_slice(Some(ns)),
            "must not have more than 3 nameservers",
        ));
    }
    for (i, n) in ns.iter().enumerate() {
        errs.extend(validate_ip(n, &path.child("nameservers").index(i)));
    }
    let searches = c.searches.as_deref().unwrap_or_default();
    if searches.len() > 32 {
        errs.push(go_repr::invalid_repr(
            path.child("searches"),
            &go_repr::string_slice(Some(searches)),
            "must not have more than 32 search paths",
        ));
    }
    if searches.join(" ").len() > 2048 {
        errs.push(go_repr::invalid_repr(
            path.child("searches"),
            &go_repr::string_slice(Some(searches)),
            "must not have more than 2048 characters (including spaces) in the search list",
        ));
    }
    for (i, sd) in searches.iter().enumerate() {
        if sd != "." {
            let trimmed = sd.strip_suffix('.').unwrap_or(sd);
            for m in dns1123_subdomain_with_underscore(trimmed) {
                errs.push(FieldError::invalid(
                    path.child("searches").index(i),
                    strv(trimmed),
                    m,
                ));
            }
        }
    }
    for (i, o) in c.options.iter().flatten().enumerate() {
        if s(&o.name).is_empty() {
            errs.push(FieldError::required(
                path.child("options").index(i),
                "must not be empty",
            ));
        }
    }
    errs
}

/// `ValidateTolerations`.
pub fn validate_tolerations(tolerations: &[Toleration], path: &Path) -> Errs {
    let mut errs = Vec::new();
    for (i, t) in tolerations.iter().enumerate() {
        let p = path.index(i);
        let key = s(&t.key);
        if !key.is_empty() {
            errs.extend(validate_label_name(key, &p.child("key")));
        }
        let op = s(&t.operator);
        if key.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                p.child("operator"),
                strv(op),
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        let effect = s(&t.effect);
        if t.toleration_seconds.is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                p.child("effect"),
                strv(effect),
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        let value = s(&t.value);
        match op {
            "Equal" | "" => {
                let msgs = label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        p.child("operator"),
                        strv(value),
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(FieldError::invalid(
                        p.child("operator"),
                        strv(value),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                p.child("operator"),
                strv(other),
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect)
        {
            errs.push(FieldError::not_supported(
                p.child("effect"),
                strv(effect),
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
    errs
}

fn validate_affinity(a: &Affinity, path: &Path) -> Errs {
    let mut errs = Vec::new();
    if let Some(na) = &a.node_affinity {
        let p = path.child("nodeAffinity");
        if let Some(req) = &na.required_during_scheduling_ignored_during_execution {
            errs.extend(validate_node_selector(
                req,
                &p.child("requiredDuringSchedulingIgnoredDuringExecution"),
            ));
        }
        for (i, t) in na
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
            .enumerate()
        {
            let tp = p
                .child("preferredDuringSchedulingIgnoredDuringExecution")
                .index(i);
            if t.weight <= 0 || t.weight > 100 {
                errs.push(FieldError::invalid(
                    tp.child("weight"),
                    t.weight.into(),
                    "must be in the range 1-100",
                ));
            }
            errs.extend(validate_node_selector_term(
                &t.preference,
                true,
                &tp.child("preference"),
            ));
        }
    }
    for (terms, weighted, p) in [
        (
            a.pod_affinity.as_ref().and_then(|x| {
                x.required_during_scheduling_ignored_during_execution
                    .clone()
            }),
            a.pod_affinity.as_ref().and_then(|x| {
                x.preferred_during_scheduling_ignored_during_execution
                    .clone()
            }),
            path.child("podAffinity"),
        ),
        (
            a.pod_anti_affinity.as_ref().and_then(|x| {
                x.required_during_scheduling_ignored_during_execution
                    .clone()
            }),
            a.pod_anti_affinity.as_ref().and_then(|x| {
                x.preferred_during_scheduling_ignored_during_execution
                    .clone()
            }),
            path.child("podAntiAffinity"),
        ),
    ] {
        for (i, t) in terms.iter().flatten().enumerate() {
            errs.extend(validate_pod_affinity_term(
                t,
                &p.child("requiredDuringSchedulingIgnoredDuringExecution")
                    .index(i),
            ));
        }
        for (i, w) in weighted.iter().flatten().enumerate() {
            let wp = p
                .child("preferredDuringSchedulingIgnoredDuringExecution")
                .index(i);
            if w.weight <= 0 || w.weight > 100 {
                errs.push(FieldError::invalid(
                    wp.child("weight"),
                    w.weight.into(),
                    "must be in the range 1-100",
                ));
            }
            errs.extend(validate_pod_affinity_term(
                &w.pod_affinity_term,
                &wp.child("podAffinityTerm"),
            ));
        }
    }
    errs
}

fn validate_pod_affinity_term(t: &PodAffinityTerm, path: &Path) -> Errs {
    let mut errs = validate_label_selector(t.label_selector.as_ref(), &path.child("labelSelector"));
    errs.extend(validate_label_selector(
        t.namespace_selector.as_ref(),
        &path.child("namespaceSelector"),
    ));
    for n in t.namespaces.iter().flatten() {
        for m in dns1123_label(n) {
            errs.push(FieldError::invalid(path.child("namespace"), strv(n), m));
        }
    }
    for (field, keys) in [
        ("matchLabelKeys", &t.match_label_keys),
        ("mismatchLabelKeys", &t.mismatch_label_keys),
    ] {
        let keys = keys.as_deref().unwrap_or_default();
        if keys.is_empty() {
            continue;
        }
        if t.label_selector.is_none() {
            errs.push(FieldError::forbidden(
                path.child(field),
                "must not be specified when labelSelector is not set",
            ));
            continue;
        }
        for (i, k) in keys.iter().enumerate() {
            errs.extend(validate_label_name(k, &path.child(field).index(i)));
        }
    }
    if t.topology_key.is_empty() {
        errs.push(FieldError::required(
            path.child("topologyKey"),
            "can not be empty",
        ));
    }
    errs.extend(validate_label_name(
        &t.topology_key,
        &path.child("topologyKey"),
    ));
    errs
}

fn validate_node_selector(ns: &NodeSelector, path: &Path) -> Errs {
    let tp = path.child("nodeSelectorTerms");
    if ns.node_selector_terms.is_empty() {
        return vec![FieldError::required(
            tp,
            "must have at least one node selector term",
        )];
    }
    ns.node_selector_terms
        .iter()
        .enumerate()
        .flat_map(|(i, t)| validate_node_selector_term(t, false, &tp.index(i)))
        .collect()
}

fn validate_node_selector_term(
    t: &NodeSelectorTerm,
    allow_invalid_values: bool,
    path: &Path,
) -> Errs {
    let mut errs = Vec::new();
    for (j, r) in t.match_expressions.iter().flatten().enumerate() {
        errs.extend(validate_node_selector_requirement(
            r,
            allow_invalid_values,
            &path.child("matchExpressions").index(j),
        ));
    }
    for (j, r) in t.match_fields.iter().flatten().enumerate() {
        let p = path.child("matchFields").index(j);
        let values = r.values.as_deref().unwrap_or_default();
        match r.operator.as_str() {
            "In" | "NotIn" => {
                if values.len() != 1 {
                    errs.push(FieldError::required(
                        p.child("values"),
                        "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                    ));
                }
            }
            other => errs.push(FieldError::invalid(
                p.child("operator"),
                strv(other),
                "not a valid selector operator",
            )),
        }
        if r.key != "metadata.name" {
            errs.push(FieldError::invalid(
                p.child("key"),
                strv(&r.key),
                "not a valid field selector key",
            ));
        } else {
            for (k, v) in values.iter().enumerate() {
                for m in dns1123_subdomain(v) {
                    errs.push(FieldError::invalid(p.child("values").index(k), strv(v), m));
                }
            }
        }
    }
    errs
}

fn validate_node_selector_requirement(
    r: &NodeSelectorRequirement,
    allow_invalid_values: bool,
    path: &Path,
) -> Errs {
    let mut errs = Vec::new();
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" | "NotIn" => {
            if values.is_empty() {
                errs.push(FieldError::required(
                    path.child("values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                ));
            }
        }
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                errs.push(FieldError::forbidden(
                    path.child("values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ));
            }
        }
        "Gt" | "Lt" => {
            if values.len() != 1 {
                errs.push(FieldError::required(
                    path.child("values"),
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                ));
            }
        }
        other => errs.push(FieldError::invalid(
            path.child("operator"),
            strv(other),
            "not a valid selector operator",
        )),
    }
    errs.extend(validate_label_name(&r.key, &path.child("key")));
    if !allow_invalid_values {
        for (i, v) in values.iter().enumerate() {
            for m in label_value(v) {
                errs.push(FieldError::invalid(
                    path.child("values").index(i),
                    strv(v),
                    m,
                ));
            }
        }
    }
    errs
}

fn validate_topology_spread_constraints(
    constraints: &[TopologySpreadConstraint],
    path: &Path,
) -> Errs {
    let mut errs = Vec::new();
    for (i, c) in constraints.iter().enumerate() {
        let p = path.index(i);
        if c.max_skew <= 0 {
            errs.push(FieldError::invalid(
                p.child("maxSkew"),
                c.max_skew.into(),
                "must be greater than zero",
            ));
        }
        if c.topology_key.is_empty() {
            errs.push(FieldError::required(
                p.child("topologyKey"),
                "can not be empty",
            ));
        }
        if c.when_unsatisfiable != "DoNotSchedule" && c.when_unsatisfiable != "ScheduleAnyway" {
            errs.push(FieldError::not_supported(
                p.child("whenUnsatisfiable"),
                strv(&c.when_unsatisfiable),
                &["DoNotSchedule", "ScheduleAnyway"],
            ));
        }
        if constraints[i + 1..].iter().any(|o| {
            o.topology_key == c.topology_key && o.when_unsatisfiable == c.when_unsatisfiable
        }) {
            errs.push(FieldError::duplicate(
                p.child("{topologyKey, whenUnsatisfiable}"),
                strv(&format!("{{{}, {}}}", c.topology_key, c.when_unsatisfiable)),
            ));
        }
        if let Some(md) = c.min_domains {
            if md <= 0 {
                errs.push(FieldError::invalid(
                    p.child("minDomains"),
                    md.into(),
                    "must be greater than zero",
                ));
            }
            if c.when_unsatisfiable != "DoNotSchedule" {
                errs.push(FieldError::invalid(
                    p.child("minDomains"),
                    md.into(),
                    format!(
                        "can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {}",
                        c.when_unsatisfiable
                    ),
                ));
            }
        }
        for (field, v) in [
            ("nodeAffinityPolicy", &c.node_affinity_policy),
            ("nodeTaintsPolicy", &c.node_taints_policy),
        ] {
            if let Some(v) = v
                && v != "Honor"
                && v != "Ignore"
            {
                errs.push(FieldError::not_supported(
                    p.child(field),
                    strv(v),
                    &["Honor", "Ignore"],
                ));
            }
        }
        let keys = c.match_label_keys.as_deref().unwrap_or_default();
        if !keys.is_empty() {
            let mlp = p.child("matchLabelKeys");
            let mut selector_keys = BTreeSet::new();
            match &c.label_selector {
                Some(sel) => {
                    selector_keys.extend(sel.match_labels.iter().flatten().map(|(k, _)| k.clone()));
                    selector_keys.extend(
                        sel.match_expressions
                            .iter()
                            .flatten()
                            .map(|e| e.key.clone()),
                    );
                }
                None => errs.push(FieldError::forbidden(
                    &mlp,
                    "must not be specified when labelSelector is not set",
                )),
            }
            for (j, k) in keys.iter().enumerate() {
                errs.extend(validate_label_name(k, &mlp.index(j)));
                if selector_keys.contains(k) {
                    errs.push(FieldError::invalid(
                        mlp.index(j),
                        strv(k),
                        "exists in both matchLabelKeys and labelSelector",
                    ));
                }
            }
        }
        errs.extend(validate_label_selector(
            c.label_selector.as_ref(),
            &p.child("labelSelector"),
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_errors(spec: Value) -> Vec<String> {
        let mut spec = spec;
        if let Some(m) = spec.as_object_mut() {
            default_pod_spec(m);
        }
        let spec: PodSpec = serde_json::from_value(spec).unwrap_or_default();
        validate_pod_spec(
            &spec,
            None,
            &Path::new("spec"),
            PodSpecOptions {
                resource_is_pod: true,
            },
        )
        .iter()
        .map(ToString::to_string)
        .collect()
    }

    #[test]
    fn pull_policy_defaults() {
        let cases = [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.27", "IfNotPresent"),
            ("registry.example.com:5000/team/app", "Always"),
            ("registry.example.com:5000/team/app:v1", "IfNotPresent"),
            ("nginx@sha256:abc", "IfNotPresent"),
            ("nginx:latest@sha256:abc", "Always"),
            ("NGINX", "IfNotPresent"),
            ("", "IfNotPresent"),
        ];
        for (image, want) in cases {
            assert_eq!(default_pull_policy(image), want, "{image}");
        }
    }

    #[test]
    fn defaults_match_upstream() {
        let mut spec = json!({
            "containers": [{
                "name": "web",
                "image": "nginx",
                "ports": [{"containerPort": 80}],
                "livenessProbe": {"httpGet": {"port": 80}},
                "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                "resources": {"limits": {"cpu": "0.5"}}
            }],
            "volumes": [{"name": "data"}, {"name": "cfg", "configMap": {"name": "cfg"}}]
        });
        default_pod_spec(spec.as_object_mut().unwrap_or(&mut Map::new()));
        assert_eq!(
            spec,
            json!({
                "containers": [{
                    "name": "web",
                    "image": "nginx",
                    "imagePullPolicy": "Always",
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "livenessProbe": {
                        "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
                        "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3
                    },
                    "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName", "apiVersion": "v1"}}}],
                    "resources": {"limits": {"cpu": "500m"}}
                }],
                "volumes": [
                    {"name": "data", "emptyDir": {}},
                    {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}}
                ],
                "dnsPolicy": "ClusterFirst",
                "restartPolicy": "Always",
                "securityContext": {},
                "terminationGracePeriodSeconds": 30,
                "schedulerName": "default-scheduler"
            })
        );
    }

    #[test]
    fn common_errors() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (
                json!({"containers": [{"name": "web", "image": "nginx"}]}),
                vec![],
            ),
            (
                json!({"containers": []}),
                vec!["spec.containers: Required value"],
            ),
            (
                json!({"containers": [{"name": "web"}]}),
                vec!["spec.containers[0].image: Required value"],
            ),
            (
                json!({"containers": [{"name": "web", "image": "a"}, {"name": "web", "image": "b"}]}),
                vec!["spec.containers[1].name: Duplicate value: \"web\""],
            ),
            (
                json!({"restartPolicy": "Sometimes", "containers": [{"name": "web", "image": "a"}]}),
                vec![
                    "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
                ],
            ),
            (
                json!({"containers": [{"name": "Web", "image": "a"}]}),
                vec![
                    "spec.containers[0].name: Invalid value: \"Web\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                ],
            ),
            (
                json!({"containers": [{"name": "web", "image": "a", "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}]}),
                vec![
                    "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
                ],
            ),
            (
                json!({"containers": [{"name": "web", "image": "a", "ports": [{"containerPort": 70000}]}]}),
                vec![
                    "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                ],
            ),
            (
                json!({"containers": [{"name": "web", "image": "a", "env": [{"name": "A=B"}]}]}),
                vec![
                    "spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
                ],
            ),
            (
                json!({"containers": [{"name": "web", "image": "a", "volumeMounts": [{"name": "nope", "mountPath": "/x"}]}]}),
                vec!["spec.containers[0].volumeMounts[0].name: Not found: \"nope\""],
            ),
            (
                json!({"containers": [{"name": "web", "image": "a", "livenessProbe": {"exec": {"command": ["true"]}, "successThreshold": 2}}]}),
                vec![
                    "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
                ],
            ),
            (
                json!({"containers": [{"name": "web", "image": "a", "restartPolicy": "Always"}]}),
                vec![
                    "spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers",
                ],
            ),
            (
                json!({"initContainers": [{"name": "init", "image": "a", "readinessProbe": {"exec": {"command": ["true"]}}}], "containers": [{"name": "web", "image": "a"}]}),
                vec![
                    "spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always",
                ],
            ),
            (
                json!({"volumes": [{"name": "v", "secret": {"secretName": "s"}, "configMap": {"name": "c"}}], "containers": [{"name": "web", "image": "a"}]}),
                vec![
                    "spec.volumes[0].configMap: Forbidden: may not specify more than 1 volume type",
                ],
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(spec_errors(spec.clone()), want, "{spec}");
        }
    }

    #[test]
    fn sidecars_are_allowed() {
        let errs = spec_errors(json!({
            "initContainers": [{"name": "proxy", "image": "envoy", "restartPolicy": "Always", "readinessProbe": {"tcpSocket": {"port": 9901}}}],
            "containers": [{"name": "web", "image": "nginx"}]
        }));
        assert!(errs.is_empty(), "{errs:?}");
    }
}
