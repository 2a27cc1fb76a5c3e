//! Request options the store understands, parsed from query parameters and bodies with
//! upstream's names and validation messages.

use ironkube_machinery::ApiError;
use ironkube_machinery::selectors::{field, label};
use serde_json::Value;

use crate::storage::Preconditions;

/// `fieldValidation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn parse(s: Option<&str>) -> Result<Self, ApiError> {
        match s {
            None | Some("") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation parameter unsupported: {other:?}, valid values are Ignore, Warn, Strict"
            ))),
        }
    }
}

/// Options of create, update and patch.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_manager: Option<String>,
    pub field_validation: FieldValidation,
    /// The client's User-Agent: the field manager when none is given.
    pub user_agent: Option<String>,
    pub force: bool,
    /// The write is a server-side apply whose managedFields the field manager already set.
    pub applied: bool,
}

impl WriteOptions {
    /// The field manager recorded in managedFields: `fieldManager`, else the User-Agent's
    /// first word like upstream (`kubectl/v1.33.0 (...)` → `kubectl`).
    pub fn manager(&self) -> String {
        if let Some(m) = &self.field_manager {
            return m.clone();
        }
        let ua = self.user_agent.as_deref().unwrap_or("unknown");
        ua.split('/').next().unwrap_or(ua).chars().take(128).collect()
    }
}

/// Parses `dryRun` values: only `All` is supported.
pub fn parse_dry_run(values: &[String]) -> Result<bool, ApiError> {
    let mut dry = false;
    for v in values {
        match v.as_str() {
            "All" => dry = true,
            "" => {}
            other => {
                return Err(invalid_options(
                    "dryRun",
                    &format!("Unsupported value: {other:?}: supported values: \"All\""),
                ));
            }
        }
    }
    Ok(dry)
}

/// `propagationPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Orphan,
    Background,
    Foreground,
}

/// `metav1.DeleteOptions`, from the body and/or the query.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub preconditions: Preconditions,
    pub propagation: Option<Propagation>,
    pub orphan_dependents: Option<bool>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Reads a `DeleteOptions` body (JSON), merging query values already set.
    pub fn merge_body(&mut self, body: &Value) -> Result<(), ApiError> {
        if let Some(kind) = body.get("kind").and_then(Value::as_str)
            && kind != "DeleteOptions"
        {
            return Err(ApiError::bad_request(format!(
                "DeleteOptions in version \"v1\" cannot be handled as a DeleteOptions: unexpected kind {kind:?}"
            )));
        }
        if let Some(g) = body.get("gracePeriodSeconds").filter(|v| !v.is_null()) {
            self.grace_period_seconds = Some(g.as_i64().ok_or_else(|| {
                ApiError::bad_request("DeleteOptions: gracePeriodSeconds must be an integer")
            })?);
        }
        if let Some(p) = body.get("propagationPolicy").and_then(Value::as_str) {
            self.propagation = Some(parse_propagation(p)?);
        }
        if let Some(o) = body.get("orphanDependents").and_then(Value::as_bool) {
            self.orphan_dependents = Some(o);
        }
        if let Some(pre) = body.get("preconditions") {
            if let Some(uid) = pre.get("uid").and_then(Value::as_str) {
                self.preconditions.uid = Some(uid.to_string());
            }
            if let Some(rv) = pre.get("resourceVersion").and_then(Value::as_str) {
                self.preconditions.resource_version = Some(rv.to_string());
            }
        }
        if let Some(d) = body.get("dryRun").and_then(Value::as_array) {
            let values: Vec<String> = d.iter().filter_map(|v| v.as_str().map(str::to_string)).collect();
            self.dry_run |= parse_dry_run(&values)?;
        }
        self.check()
    }

    pub fn check(&self) -> Result<(), ApiError> {
        if self.orphan_dependents.is_some() && self.propagation.is_some() {
            return Err(invalid_options(
                "propagationPolicy",
                "Invalid value: \"\": orphanDependents and deletionPropagation cannot be both set",
            ));
        }
        if let Some(g) = self.grace_period_seconds
            && g < 0
        {
            // Upstream treats negative as "immediate" after validation of the value.
            let _ = g;
        }
        Ok(())
    }
}

pub fn parse_propagation(p: &str) -> Result<Propagation, ApiError> {
    match p {
        "Orphan" => Ok(Propagation::Orphan),
        "Background" => Ok(Propagation::Background),
        "Foreground" => Ok(Propagation::Foreground),
        other => Err(invalid_options(
            "propagationPolicy",
            &format!(
                "Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
            ),
        )),
    }
}

/// LIST and WATCH parameters.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub label_selector: Option<label::Selector>,
    pub field_selector: Option<field::Selector>,
    pub limit: i64,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub watch: bool,
    pub allow_watch_bookmarks: bool,
    pub send_initial_events: Option<bool>,
    pub timeout_seconds: Option<u64>,
}

/// 422 about request options, rendered like upstream's `ListOptions`/`DeleteOptions` errors.
pub fn invalid_options(field: &str, body: &str) -> ApiError {
    ApiError::new(422, ironkube_machinery::Reason::Invalid, format!("{field}: {body}"))
}
