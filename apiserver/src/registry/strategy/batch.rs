//! The batch group: Jobs (with their generated selector and pod labels) and CronJobs.

use std::collections::BTreeMap;

use ironkube_machinery::field::{FieldError, Path};
use ironkube_machinery::validation::cron::{load_location, parse_standard};
use ironkube_machinery::validation::names::dns1123_label;
use ironkube_machinery::validation::selector::{as_selector, validate_label_selector};
use ironkube_machinery::validation::{FIELD_IMMUTABLE_ERROR_MSG, go_repr, validate_nonnegative};
use k8s_openapi::api::batch::v1::{CronJobSpec, JobSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Map, Value, json};

use super::Strategy;
use super::object::{
    child_obj, decode, default_field, default_ptr, each_obj, existing_obj, meta, str_at,
};
use super::pod_spec::{PodSpecOptions, default_pod_template, validate_pod_template_spec};
use super::workload::validate_selector_matches_template;

/// Labels the API server puts on a Job's pods and selects them by.
const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
const LEGACY_CONTROLLER_UID: &str = "controller-uid";
const JOB_NAME: &str = "batch.kubernetes.io/job-name";
const LEGACY_JOB_NAME: &str = "job-name";

/// Indexed Jobs may run at most this many pods at once.
const MAX_PARALLELISM_FOR_INDEXED_JOB: i32 = 100_000;

/// Defaults of a job spec (`SetDefaults_Job` without the metadata part).
fn default_job_spec(spec: &mut Map<String, Value>) {
    let unset = |m: &Map<String, Value>, k: &str| m.get(k).is_none_or(Value::is_null);
    if unset(spec, "completions") && unset(spec, "parallelism") {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    }
    default_ptr(spec, "parallelism", json!(1));
    let backoff = if unset(spec, "backoffLimitPerIndex") {
        6
    } else {
        i64::from(i32::MAX)
    };
    default_ptr(spec, "backoffLimit", json!(backoff));
    default_ptr(spec, "completionMode", json!("NonIndexed"));
    default_ptr(spec, "suspend", json!(false));
    let has_failure_policy = !unset(spec, "podFailurePolicy");
    if let Some(pfp) = existing_obj(spec, "podFailurePolicy") {
        for rule in each_obj(pfp, "rules") {
            for pattern in each_obj(rule, "onPodConditions") {
                default_field(pattern, "status", json!("True"));
            }
        }
    }
    default_ptr(
        spec,
        "podReplacementPolicy",
        json!(if has_failure_policy {
            "Failed"
        } else {
            "TerminatingOrFailed"
        }),
    );
    if let Some(t) = child_obj(spec, "template") {
        default_pod_template(t);
    }
}

pub struct JobStrategy;

impl Strategy for JobStrategy {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        let template_labels = obj["spec"]["template"]["metadata"]
            .get("labels")
            .filter(|l| l.is_object())
            .cloned();
        if let Some(labels) = template_labels
            && obj["metadata"]
                .get("labels")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty)
        {
            if let Some(meta) = obj.get_mut("metadata") {
                super::object::set(meta, "labels", labels);
            }
        }
        let Some(spec) = obj.as_object_mut().and_then(|o| child_obj(o, "spec")) else {
            return;
        };
        default_job_spec(spec);
        default_ptr(spec, "manualSelector", json!(false));
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if obj["spec"].get("manualSelector").and_then(Value::as_bool) != Some(true) {
            // Upstream's defaulting makes a Job without labels share its template's label
            // map (again on every decode from storage), so the labels generateSelector adds
            // to the template show on the Job too.
            let labels = obj["metadata"].get("labels");
            let shared = labels.is_none_or(|l| l.as_object().is_none_or(Map::is_empty) || Some(l) == obj["spec"]["template"]["metadata"].get("labels"));
            generate_selector(obj);
            if shared {
                let labels = obj["spec"]["template"]["metadata"]["labels"].clone();
                if let Some(meta) = obj.get_mut("metadata") {
                    super::object::set(meta, "labels", labels);
                }
            }
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        validate_job(obj, true)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let prefixed = old["spec"]["template"]["metadata"]["labels"]
            .get(CONTROLLER_UID)
            .is_some();
        let mut errs = validate_job(new, prefixed);
        errs.extend(validate_job_spec_update(new, old));
        errs
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> Vec<FieldError> {
        let status = new.get("status").unwrap_or(&Value::Null);
        let p = Path::new("status");
        let mut errs = Vec::new();
        for f in ["active", "succeeded", "failed", "ready", "terminating"] {
            if let Some(v) = status.get(f).and_then(Value::as_i64) {
                errs.extend(validate_nonnegative(v, &p.child(f)));
            }
        }
        errs
    }

    fn field_labels(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let succeeded = obj["status"]
            .get("succeeded")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        vec![("status.successful", succeeded.to_string())]
    }
}

/// The selector and pod labels that tie a Job to its pods (upstream's `generateSelector`).
fn generate_selector(obj: &mut Value) {
    let name = str_at(meta(obj), "name").to_string();
    let uid = str_at(meta(obj), "uid").to_string();
    let Some(spec) = obj.as_object_mut().and_then(|o| child_obj(o, "spec")) else {
        return;
    };
    if let Some(labels) = child_obj(spec, "template")
        .and_then(|t| child_obj(t, "metadata"))
        .and_then(|m| child_obj(m, "labels"))
    {
        for key in [LEGACY_JOB_NAME, JOB_NAME] {
            labels.entry(key).or_insert_with(|| json!(name));
        }
        for key in [LEGACY_CONTROLLER_UID, CONTROLLER_UID] {
            labels.entry(key).or_insert_with(|| json!(uid));
        }
    }
    if let Some(ml) = child_obj(spec, "selector").and_then(|s| child_obj(s, "matchLabels")) {
        ml.entry(CONTROLLER_UID).or_insert_with(|| json!(uid));
    }
}

/// `ValidateHasLabel`.
fn validate_has_label(
    labels: &BTreeMap<String, String>,
    path: &Path,
    key: &str,
    expected: &str,
) -> Vec<FieldError> {
    match labels.get(key) {
        None => vec![FieldError::required(
            path.child("labels").key(key),
            format!("must be '{expected}'"),
        )],
        Some(v) if v != expected => vec![go_repr::invalid_repr(
            path.child("labels").key(key),
            &go_repr::string_map(Some(labels)),
            &format!("must be '{expected}'"),
        )],
        _ => Vec::new(),
    }
}

fn validate_job(obj: &Value, require_prefixed_labels: bool) -> Vec<FieldError> {
    let job_meta: ObjectMeta = decode(obj.get("metadata"), "metadata").unwrap_or_default();
    let spec: JobSpec = match decode(obj.get("spec"), "spec") {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    let name = job_meta.name.clone().unwrap_or_default();
    let uid = job_meta.uid.clone().unwrap_or_default();
    let mut errs = Vec::new();
    if spec.manual_selector != Some(true) {
        let tmeta = Path::new("spec").child("template").child("metadata");
        let labels = spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone());
        if labels.is_none() {
            errs.push(FieldError::required(tmeta.child("labels"), ""));
        }
        let labels = labels.unwrap_or_default();
        errs.extend(validate_has_label(
            &labels,
            &tmeta,
            LEGACY_CONTROLLER_UID,
            &uid,
        ));
        if require_prefixed_labels {
            errs.extend(validate_has_label(&labels, &tmeta, CONTROLLER_UID, &uid));
        }
        errs.extend(validate_has_label(&labels, &tmeta, LEGACY_JOB_NAME, &name));
        if require_prefixed_labels {
            errs.extend(validate_has_label(&labels, &tmeta, JOB_NAME, &name));
        }
        let expected_key = if require_prefixed_labels {
            CONTROLLER_UID
        } else {
            LEGACY_CONTROLLER_UID
        };
        let expected = BTreeMap::from([(expected_key.to_string(), uid.clone())]);
        if let Ok(sel) = as_selector(spec.selector.as_ref())
            && !sel.matches(&expected)
        {
            errs.push(go_repr::invalid_repr(
                Path::new("spec").child("selector"),
                &go_repr::label_selector_ptr(spec.selector.as_ref()),
                "`selector` not auto-generated",
            ));
        }
    }
    let path = Path::new("spec");
    errs.extend(validate_job_spec_fields(&spec, &path));
    match &spec.selector {
        None => errs.push(FieldError::required(path.child("selector"), "")),
        Some(s) => errs.extend(validate_label_selector(Some(s), &path.child("selector"))),
    }
    if let Ok(sel) = as_selector(spec.selector.as_ref()) {
        errs.extend(validate_selector_matches_template(
            &sel,
            &spec.template,
            &path.child("template").child("metadata").child("labels"),
        ));
    }
    if spec.completion_mode.as_deref() == Some("Indexed")
        && let Some(c) = spec.completions.filter(|c| *c > 0)
    {
        let host = format!("{name}-{}", c - 1);
        if !dns1123_label(&host).is_empty() {
            errs.push(FieldError::invalid(
                Path::new("metadata").child("name"),
                name.as_str().into(),
                format!("will not able to create pod with invalid DNS label: {host}"),
            ));
        }
    }
    errs
}

/// `validateJobSpec`: the checks shared by Jobs and CronJob job templates.
fn validate_job_spec_fields(spec: &JobSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (v, field) in [
        (spec.parallelism.map(i64::from), "parallelism"),
        (spec.completions.map(i64::from), "completions"),
        (spec.active_deadline_seconds, "activeDeadlineSeconds"),
        (spec.backoff_limit.map(i64::from), "backoffLimit"),
        (
            spec.ttl_seconds_after_finished.map(i64::from),
            "ttlSecondsAfterFinished",
        ),
        (
            spec.backoff_limit_per_index.map(i64::from),
            "backoffLimitPerIndex",
        ),
    ] {
        if let Some(v) = v {
            errs.extend(validate_nonnegative(v, &path.child(field)));
        }
    }
    if let Some(m) = spec.max_failed_indexes {
        errs.extend(validate_nonnegative(
            i64::from(m),
            &path.child("maxFailedIndexes"),
        ));
        if spec.backoff_limit_per_index.is_none() {
            errs.push(FieldError::required(
                path.child("backoffLimitPerIndex"),
                "when maxFailedIndexes is specified",
            ));
        }
    }
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    if let Some(b) = spec.backoff_limit_per_index
        && !indexed
    {
        errs.push(FieldError::invalid(
            path.child("backoffLimitPerIndex"),
            b.into(),
            "requires indexed completion mode",
        ));
    }
    if let Some(mode) = &spec.completion_mode {
        if mode != "NonIndexed" && mode != "Indexed" {
            errs.push(FieldError::not_supported(
                path.child("completionMode"),
                mode.as_str().into(),
                &["NonIndexed", "Indexed"],
            ));
        }
        if indexed {
            if spec.completions.is_none() {
                errs.push(FieldError::required(
                    path.child("completions"),
                    "when completion mode is Indexed",
                ));
            }
            if let Some(p) = spec.parallelism
                && p > MAX_PARALLELISM_FOR_INDEXED_JOB
            {
                errs.push(FieldError::invalid(
                    path.child("parallelism"),
                    p.into(),
                    format!("must be less than or equal to {MAX_PARALLELISM_FOR_INDEXED_JOB} when completion mode is Indexed"),
                ));
            }
            if let (Some(c), Some(m)) = (spec.completions, spec.max_failed_indexes)
                && m > c
            {
                errs.push(FieldError::invalid(
                    path.child("maxFailedIndexes"),
                    m.into(),
                    "must be less than or equal to completions",
                ));
            }
        }
    }
    if let Some(pfp) = &spec.pod_failure_policy {
        let pp = path.child("podFailurePolicy").child("rules");
        for (i, rule) in pfp.rules.iter().enumerate() {
            let rp = pp.index(i);
            let actions = ["Count", "FailIndex", "FailJob", "Ignore"];
            if !actions.contains(&rule.action.as_str()) {
                errs.push(FieldError::not_supported(
                    rp.child("action"),
                    rule.action.as_str().into(),
                    &actions,
                ));
            }
            if rule.action == "FailIndex" && spec.backoff_limit_per_index.is_none() {
                errs.push(FieldError::forbidden(
                    rp.child("action"),
                    "requires the backoffLimitPerIndex to be set",
                ));
            }
            match (&rule.on_exit_codes, &rule.on_pod_conditions) {
                (Some(_), Some(c)) if !c.is_empty() => errs.push(FieldError::invalid(
                    &rp,
                    Value::Null,
                    "specifying both OnExitCodes and OnPodConditions is not supported",
                )),
                (None, c) if c.as_ref().is_none_or(Vec::is_empty) => {
                    errs.push(FieldError::invalid(
                        &rp,
                        Value::Null,
                        "specifying one of OnExitCodes and OnPodConditions is required",
                    ))
                }
                _ => {}
            }
        }
    }
    if let Some(prp) = &spec.pod_replacement_policy {
        let p = path.child("podReplacementPolicy");
        if spec.pod_failure_policy.is_some() {
            if prp != "Failed" {
                errs.push(FieldError::not_supported(
                    p,
                    prp.as_str().into(),
                    &["Failed"],
                ));
            }
        } else if prp != "Failed" && prp != "TerminatingOrFailed" {
            errs.push(FieldError::not_supported(
                p,
                prp.as_str().into(),
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    let tp = path.child("template");
    errs.extend(validate_pod_template_spec(
        &spec.template,
        &tp,
        PodSpecOptions::default(),
    ));
    let rp = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.clone())
        .unwrap_or_default();
    if rp != "OnFailure" && rp != "Never" {
        errs.push(FieldError::not_supported(
            tp.child("spec").child("restartPolicy"),
            rp.into(),
            &["OnFailure", "Never"],
        ));
    } else if spec.pod_failure_policy.is_some() && rp != "Never" {
        errs.push(FieldError::invalid(
            tp.child("spec").child("restartPolicy"),
            rp.into(),
            "only \"Never\" is supported when podFailurePolicy is specified",
        ));
    }
    errs
}

/// `ValidateJobSpecUpdate`: what may not change in a Job.
fn validate_job_spec_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let path = Path::new("spec");
    let (n, o) = (
        new.get("spec").unwrap_or(&Value::Null),
        old.get("spec").unwrap_or(&Value::Null),
    );
    let mut errs = Vec::new();
    let immutable = |field: &str, errs: &mut Vec<FieldError>| {
        let (nv, ov) = (
            n.get(field).unwrap_or(&Value::Null),
            o.get(field).unwrap_or(&Value::Null),
        );
        if nv != ov {
            let repr = if nv.is_object() {
                nv.to_string()
            } else {
                String::new()
            };
            if repr.is_empty() {
                errs.push(FieldError::invalid(
                    path.child(field),
                    nv.clone(),
                    FIELD_IMMUTABLE_ERROR_MSG,
                ));
            } else {
                errs.push(go_repr::invalid_repr(
                    path.child(field),
                    &repr,
                    FIELD_IMMUTABLE_ERROR_MSG,
                ));
            }
        }
    };
    // Indexed jobs may scale completions together with parallelism (ElasticIndexedJob).
    let elastic = str_at(n, "completionMode") == "Indexed"
        && str_at(o, "completionMode") == "Indexed"
        && n.get("completions") == n.get("parallelism");
    if !elastic {
        immutable("completions", &mut errs);
    }
    if n.get("selector") != o.get("selector") {
        let sel = decode(n.get("selector"), "spec.selector").ok();
        errs.push(go_repr::invalid_repr(
            path.child("selector"),
            &go_repr::label_selector_ptr(sel.as_ref()),
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
    // A suspended job that never started may change its pods' scheduling directives.
    let mut nt = n.get("template").cloned().unwrap_or(Value::Null);
    let ot = o.get("template").cloned().unwrap_or(Value::Null);
    let never_started = o.get("suspend").and_then(Value::as_bool) == Some(true)
        && old["status"].get("startTime").is_none_or(Value::is_null);
    if never_started {
        for (parent, field) in [
            ("spec", "nodeSelector"),
            ("spec", "affinity"),
            ("spec", "tolerations"),
            ("spec", "schedulingGates"),
            ("metadata", "labels"),
            ("metadata", "annotations"),
        ] {
            if let Some(m) = nt.get_mut(parent).and_then(Value::as_object_mut) {
                match ot.get(parent).and_then(|p| p.get(field)) {
                    Some(v) => m.insert(field.into(), v.clone()),
                    None => m.remove(field),
                };
            }
        }
    }
    if nt != ot {
        errs.push(go_repr::invalid_repr(
            path.child("template"),
            &n.get("template").map(Value::to_string).unwrap_or_default(),
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
    for field in [
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ] {
        immutable(field, &mut errs);
    }
    errs
}

// --- CronJob ---------------------------------------------------------------------------------

pub struct CronJobStrategy;

impl Strategy for CronJobStrategy {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj.as_object_mut().and_then(|o| child_obj(o, "spec")) else {
            return;
        };
        default_field(spec, "concurrencyPolicy", json!("Allow"));
        default_ptr(spec, "suspend", json!(false));
        default_ptr(spec, "successfulJobsHistoryLimit", json!(3));
        default_ptr(spec, "failedJobsHistoryLimit", json!(1));
        if let Some(jt) = child_obj(spec, "jobTemplate") {
            super::object::default_template_metadata(jt);
            if let Some(t) = existing_obj(jt, "spec").and_then(|s| existing_obj(s, "template")) {
                default_pod_template(t);
            }
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = validate_cron_job_spec(obj, None);
        let name = str_at(meta(obj), "name");
        if name.len() > 52 {
            errs.push(FieldError::invalid(
                Path::new("metadata").child("name"),
                name.into(),
                "must be no more than 52 characters",
            ));
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        validate_cron_job_spec(new, Some(old))
    }
}

fn validate_cron_job_spec(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let spec: CronJobSpec = match decode(obj.get("spec"), "spec") {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    let old_spec: Option<CronJobSpec> = old.and_then(|o| decode(o.get("spec"), "spec").ok());
    let path = Path::new("spec");
    let mut errs = Vec::new();
    let sp = path.child("schedule");
    if spec.schedule.is_empty() {
        errs.push(FieldError::required(&sp, ""));
    } else {
        let allow_tz = old_spec.as_ref().is_some_and(|o| o.schedule.contains("TZ"));
        if let Err(e) = parse_standard(&spec.schedule) {
            errs.push(FieldError::invalid(&sp, spec.schedule.as_str().into(), e));
        }
        if allow_tz && spec.schedule.contains("TZ") && spec.time_zone.is_some() {
            errs.push(FieldError::invalid(
                &sp,
                spec.schedule.as_str().into(),
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        } else if !allow_tz && spec.schedule.contains("TZ") {
            errs.push(FieldError::invalid(
                &sp,
                spec.schedule.as_str().into(),
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    if let Some(s) = spec.starting_deadline_seconds {
        errs.extend(validate_nonnegative(
            s,
            &path.child("startingDeadlineSeconds"),
        ));
    }
    if old_spec
        .as_ref()
        .is_none_or(|o| o.time_zone != spec.time_zone)
    {
        errs.extend(validate_time_zone(
            spec.time_zone.as_deref(),
            &path.child("timeZone"),
        ));
    }
    let cp = spec.concurrency_policy.as_deref().unwrap_or("");
    match cp {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(FieldError::required(path.child("concurrencyPolicy"), "")),
        other => errs.push(FieldError::not_supported(
            path.child("concurrencyPolicy"),
            other.into(),
            &["Allow", "Forbid", "Replace"],
        )),
    }
    let jt = path.child("jobTemplate");
    let job_spec = spec.job_template.spec.clone().unwrap_or_default();
    errs.extend(validate_job_spec_fields(&job_spec, &jt.child("spec")));
    if let Some(sel) = &job_spec.selector {
        errs.push(go_repr::invalid_repr(
            jt.child("spec").child("selector"),
            &go_repr::label_selector(sel),
            "`selector` will be auto-generated",
        ));
    }
    if job_spec.manual_selector == Some(true) {
        errs.push(FieldError::not_supported(
            jt.child("spec").child("manualSelector"),
            true.into(),
            &["nil", "false"],
        ));
    }
    for (v, field) in [
        (
            spec.successful_jobs_history_limit,
            "successfulJobsHistoryLimit",
        ),
        (spec.failed_jobs_history_limit, "failedJobsHistoryLimit"),
    ] {
        if let Some(v) = v {
            errs.extend(validate_nonnegative(i64::from(v), &path.child(field)));
        }
    }
    errs
}

fn validate_time_zone(tz: Option<&str>, path: &Path) -> Vec<FieldError> {
    let Some(tz) = tz else { return Vec::new() };
    if tz.is_empty() {
        return vec![FieldError::invalid(
            path,
            tz.into(),
            "timeZone must be nil or non-empty string",
        )];
    }
    let part_ok = |p: &str| {
        p != "."
            && p != ".."
            && !p.starts_with('-')
            && (1..=14).contains(&p.len())
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
    };
    if !tz.split('/').all(part_ok) {
        return vec![FieldError::invalid(
            path,
            tz.into(),
            format!("unknown time zone {tz}"),
        )];
    }
    let mut errs = Vec::new();
    if tz.eq_ignore_ascii_case("Local") {
        errs.push(FieldError::invalid(
            path,
            tz.into(),
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
    if let Err(e) = load_location(tz) {
        errs.push(FieldError::invalid(path, tz.into(), e));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(spec: Value) -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "namespace": "default", "uid": "u-1"}, "spec": spec})
    }

    #[test]
    fn job_defaults_and_generated_selector() {
        let mut j = job(
            json!({"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}}}),
        );
        JobStrategy.default(&mut j);
        JobStrategy.prepare_for_create(&mut j);
        let spec = &j["spec"];
        assert_eq!(spec["completions"], json!(1));
        assert_eq!(spec["parallelism"], json!(1));
        assert_eq!(spec["backoffLimit"], json!(6));
        assert_eq!(spec["completionMode"], json!("NonIndexed"));
        assert_eq!(spec["suspend"], json!(false));
        assert_eq!(spec["manualSelector"], json!(false));
        assert_eq!(spec["podReplacementPolicy"], json!("TerminatingOrFailed"));
        assert_eq!(
            spec["selector"],
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}})
        );
        assert_eq!(
            spec["template"]["metadata"]["labels"],
            json!({"job-name": "pi", "batch.kubernetes.io/job-name": "pi", "controller-uid": "u-1", "batch.kubernetes.io/controller-uid": "u-1"})
        );
        assert!(
            JobStrategy.validate(&j).is_empty(),
            "{:?}",
            JobStrategy.validate(&j)
        );
    }

    #[test]
    fn job_restart_policy() {
        let mut j =
            job(json!({"template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}}));
        JobStrategy.default(&mut j);
        JobStrategy.prepare_for_create(&mut j);
        let errs: Vec<String> = JobStrategy
            .validate(&j)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
            ]
        );
    }

    #[test]
    fn job_template_is_immutable() {
        let mut old = job(
            json!({"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}}}),
        );
        JobStrategy.default(&mut old);
        JobStrategy.prepare_for_create(&mut old);
        let mut new = old.clone();
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5");
        let errs = JobStrategy.validate_update(&new, &old);
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0]
                .to_string()
                .starts_with("spec.template: Invalid value: ")
        );
        assert!(errs[0].to_string().ends_with(": field is immutable"));
    }

    #[test]
    fn cron_jobs() {
        let mut c = json!({"metadata": {"name": "hello", "namespace": "d"}, "spec": {
            "schedule": "*/1 * * * *",
            "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "h", "image": "busybox"}]}}}}
        }});
        CronJobStrategy.default(&mut c);
        assert_eq!(c["spec"]["concurrencyPolicy"], json!("Allow"));
        assert_eq!(c["spec"]["successfulJobsHistoryLimit"], json!(3));
        assert_eq!(c["spec"]["failedJobsHistoryLimit"], json!(1));
        assert_eq!(c["spec"]["suspend"], json!(false));
        assert_eq!(
            c["spec"]["jobTemplate"]["metadata"],
            json!({"creationTimestamp": null})
        );
        assert!(
            CronJobStrategy.validate(&c).is_empty(),
            "{:?}",
            CronJobStrategy.validate(&c)
        );
        c["spec"]["schedule"] = json!("61 * * * *");
        let errs: Vec<String> = CronJobStrategy
            .validate(&c)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61"
            ]
        );
        c["spec"]["schedule"] = json!("TZ=UTC 0 * * * *");
        let errs: Vec<String> = CronJobStrategy
            .validate(&c)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "spec.schedule: Invalid value: \"TZ=UTC 0 * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
            ]
        );
    }
}
