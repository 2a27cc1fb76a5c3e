//! API errors and their `metav1.Status` form.
//!
//! Every failure the API server reports is an [`ApiError`]; the HTTP edge turns it into a
//! `metav1.Status` with upstream's code, reason, message and details.

use serde_json::{Value, json};

use crate::field::FieldError;

/// The `reason` field of a `metav1.Status`, as upstream spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `StatusReasonUnknown`: an error that is not a Status (upstream omits the reason).
    Unknown,
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    NotAcceptable,
    AlreadyExists,
    Conflict,
    Gone,
    Expired,
    RequestEntityTooLarge,
    UnsupportedMediaType,
    Invalid,
    TooManyRequests,
    InternalError,
    Timeout,
    ServiceUnavailable,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unknown => "",
            Reason::BadRequest => "BadRequest",
            Reason::Unauthorized => "Unauthorized",
            Reason::Forbidden => "Forbidden",
            Reason::NotFound => "NotFound",
            Reason::MethodNotAllowed => "MethodNotAllowed",
            Reason::NotAcceptable => "NotAcceptable",
            Reason::AlreadyExists => "AlreadyExists",
            Reason::Conflict => "Conflict",
            Reason::Gone => "Gone",
            Reason::Expired => "Expired",
            Reason::RequestEntityTooLarge => "RequestEntityTooLarge",
            Reason::UnsupportedMediaType => "UnsupportedMediaType",
            Reason::Invalid => "Invalid",
            Reason::TooManyRequests => "TooManyRequests",
            Reason::InternalError => "InternalError",
            Reason::Timeout => "Timeout",
            Reason::ServiceUnavailable => "ServiceUnavailable",
        }
    }
}

/// `metav1.StatusDetails`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Details {
    pub name: String,
    pub group: String,
    /// The resource (plural) for most errors, the Kind for `Invalid`.
    pub kind: String,
    pub causes: Vec<Cause>,
    pub retry_after_seconds: Option<i32>,
}

/// `metav1.StatusCause`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

/// A failed API request, carrying exactly what the `metav1.Status` will say.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: Reason,
    pub message: String,
    pub details: Option<Details>,
}

/// Group and resource (plural), e.g. `deployments.apps`, used in error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupResource {
    pub group: String,
    pub resource: String,
}

impl GroupResource {
    pub fn new(group: &str, resource: &str) -> Self {
        GroupResource { group: group.to_string(), resource: resource.to_string() }
    }
}

impl std::fmt::Display for GroupResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            write!(f, "{}", self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

impl ApiError {
    pub fn new(code: u16, reason: Reason, message: impl Into<String>) -> Self {
        ApiError { code, reason, message: message.into(), details: None }
    }

    fn with_details(mut self, details: Details) -> Self {
        self.details = Some(details);
        self
    }

    fn named(gr: &GroupResource, name: &str) -> Details {
        Details {
            name: name.to_string(),
            group: gr.group.clone(),
            kind: gr.resource.clone(),
            ..Details::default()
        }
    }

    pub fn not_found(gr: &GroupResource, name: &str) -> Self {
        let message = if name.is_empty() {
            format!("{gr} not found")
        } else {
            format!("{gr} \"{name}\" not found")
        };
        ApiError::new(404, Reason::NotFound, message).with_details(Self::named(gr, name))
    }

    /// 409 of server-side apply: fields other managers own would change.
    pub fn apply_conflict(message: impl Into<String>, causes: Vec<Cause>) -> Self {
        ApiError::new(409, Reason::Conflict, message).with_details(Details { causes, ..Details::default() })
    }

    /// A path that names no resource the server knows.
    pub fn path_not_found() -> Self {
        ApiError::new(404, Reason::NotFound, "the server could not find the requested resource")
            .with_details(Details::default())
    }

    pub fn already_exists(gr: &GroupResource, name: &str) -> Self {
        ApiError::new(409, Reason::AlreadyExists, format!("{gr} \"{name}\" already exists"))
            .with_details(Self::named(gr, name))
    }

    pub fn conflict(gr: &GroupResource, name: &str, why: &str) -> Self {
        ApiError::new(
            409,
            Reason::Conflict,
            format!("Operation cannot be fulfilled on {gr} \"{name}\": {why}"),
        )
        .with_details(Self::named(gr, name))
    }

    /// The optimistic-concurrency conflict every stale write gets.
    pub fn stale_conflict(gr: &GroupResource, name: &str) -> Self {
        Self::conflict(
            gr,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 Invalid: `Kind.group "name" is invalid: ...` with one cause per field error.
    pub fn invalid(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> Self {
        let qualified = if group.is_empty() { kind.to_string() } else { format!("{kind}.{group}") };
        let joined = match errors {
            [one] => one.to_string(),
            many => format!(
                "[{}]",
                many.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            ),
        };
        let causes = errors
            .iter()
            .map(|e| Cause {
                reason: e.kind.cause_reason().to_string(),
                message: e.body(),
                field: e.field.clone(),
            })
            .collect();
        ApiError::new(422, Reason::Invalid, format!("{qualified} \"{name}\" is invalid: {joined}"))
            .with_details(Details {
                name: name.to_string(),
                group: group.to_string(),
                kind: kind.to_string(),
                causes,
                retry_after_seconds: None,
            })
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, Reason::BadRequest, message)
    }

    pub fn forbidden(gr: &GroupResource, name: &str, why: &str) -> Self {
        let message = if name.is_empty() {
            format!("{gr} is forbidden: {why}")
        } else {
            format!("{gr} \"{name}\" is forbidden: {why}")
        };
        ApiError::new(403, Reason::Forbidden, message).with_details(Self::named(gr, name))
    }

    pub fn unauthorized() -> Self {
        ApiError::new(401, Reason::Unauthorized, "Unauthorized")
    }

    pub fn method_not_allowed() -> Self {
        ApiError::new(
            405,
            Reason::MethodNotAllowed,
            "the server does not allow this method on the requested resource",
        )
        .with_details(Details::default())
    }

    pub fn not_acceptable(accept: &str) -> Self {
        ApiError::new(
            406,
            Reason::NotAcceptable,
            format!("only the following media types are accepted: {accept}"),
        )
    }

    /// 415 naming the media types the endpoint accepts.
    pub fn unsupported_media_type(accepted: &[&str]) -> Self {
        ApiError::new(
            415,
            Reason::UnsupportedMediaType,
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
    }

    /// Media types accepted for object bodies.
    pub const BODY_TYPES: &'static [&'static str] =
        &["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"];
    /// Media types accepted for PATCH bodies.
    pub const PATCH_TYPES: &'static [&'static str] = &[
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/apply-patch+yaml",
        "application/strategic-merge-patch+json",
    ];

    pub fn request_entity_too_large(message: impl Into<String>) -> Self {
        ApiError::new(413, Reason::RequestEntityTooLarge, message)
    }

    /// 410 Gone for a compacted resourceVersion.
    pub fn resource_expired(message: impl Into<String>) -> Self {
        ApiError::new(410, Reason::Expired, message)
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        ApiError::new(
            500,
            Reason::InternalError,
            format!("Internal error occurred: {message}"),
        )
        .with_details(Details {
            causes: vec![Cause {
                reason: String::new(),
                message: message.to_string(),
                field: String::new(),
            }],
            ..Details::default()
        })
    }

    pub fn service_unavailable(message: impl Into<String>) -> Self {
        ApiError::new(503, Reason::ServiceUnavailable, message)
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        ApiError::new(504, Reason::Timeout, message)
    }

    /// The `metav1.Status` object for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason.as_str(),
        });
        if self.reason == Reason::Unknown
            && let Some(m) = status.as_object_mut()
        {
            m.remove("reason");
        }
        if let Some(details) = &self.details {
            let mut d = serde_json::Map::new();
            if !details.name.is_empty() {
                d.insert("name".into(), json!(details.name));
            }
            if !details.group.is_empty() {
                d.insert("group".into(), json!(details.group));
            }
            if !details.kind.is_empty() {
                d.insert("kind".into(), json!(details.kind));
            }
            if !details.causes.is_empty() {
                let causes: Vec<Value> = details
                    .causes
                    .iter()
                    .map(|c| {
                        let mut m = serde_json::Map::new();
                        if !c.reason.is_empty() {
                            m.insert("reason".into(), json!(c.reason));
                        }
                        if !c.message.is_empty() {
                            m.insert("message".into(), json!(c.message));
                        }
                        if !c.field.is_empty() {
                            m.insert("field".into(), json!(c.field));
                        }
                        Value::Object(m)
                    })
                    .collect();
                d.insert("causes".into(), Value::Array(causes));
            }
            if let Some(s) = details.retry_after_seconds {
                d.insert("retryAfterSeconds".into(), json!(s));
            }
            status["details"] = Value::Object(d);
        }
        status["code"] = json!(self.code);
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::FieldError;

    #[test]
    fn not_found_names_group_resource() {
        let e = ApiError::not_found(&GroupResource::new("apps", "deployments"), "web");
        assert_eq!(e.message, "deployments.apps \"web\" not found");
        let s = e.to_status();
        assert_eq!(s["code"], 404);
        assert_eq!(s["details"]["group"], "apps");
        assert_eq!(s["details"]["kind"], "deployments");
    }

    #[test]
    fn invalid_lists_every_cause() {
        let errs = vec![
            FieldError::required("spec.containers", ""),
            FieldError::invalid("metadata.name", json!("A"), "must be lowercase"),
        ];
        let e = ApiError::invalid("", "Pod", "A", &errs);
        assert_eq!(
            e.message,
            "Pod \"A\" is invalid: [spec.containers: Required value, metadata.name: Invalid value: \"A\": must be lowercase]"
        );
        let s = e.to_status();
        assert_eq!(s["details"]["causes"][0]["reason"], "FieldValueRequired");
        assert_eq!(s["details"]["causes"][1]["field"], "metadata.name");
    }
}
