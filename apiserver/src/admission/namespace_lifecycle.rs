//! NamespaceLifecycle: no creates in a namespace that doesn't exist or is terminating, and
//! the system namespaces can't be deleted.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use ironkube_machinery::error::{Cause, Details};
use ironkube_machinery::resources::ResourceInfo;
use ironkube_machinery::{ApiError, GroupResource, Reason};
use serde_json::Value;

use crate::registry::store::{Admission, Store};

/// Namespaces that can never be deleted.
pub const IMMORTAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

pub struct NamespaceLifecycle {
    namespaces: Arc<Store>,
}

impl NamespaceLifecycle {
    pub fn new(namespaces: Arc<Store>) -> Self {
        NamespaceLifecycle { namespaces }
    }
}

impl Admission for NamespaceLifecycle {
    fn admit_create<'a>(&'a self, info: &'static ResourceInfo, namespace: Option<&'a str>, obj: &'a mut Value) -> BoxFuture<'a, Result<(), ApiError>> {
        async move {
            let Some(ns) = namespace.filter(|_| info.namespaced) else {
                return Ok(());
            };
            // The informer-like read first, then a live read for a namespace just created.
            let found = match self.namespaces.get(None, ns, Some("0")).await {
                Ok(v) => v,
                Err(e) if e.code == 404 => self.namespaces.get(None, ns, None).await?,
                Err(e) => return Err(e),
            };
            let terminating = found["metadata"].get("deletionTimestamp").is_some_and(|v| !v.is_null())
                || found["status"]["phase"] == "Terminating";
            if terminating {
                let name = obj["metadata"]["name"].as_str().unwrap_or("");
                let gr = GroupResource::new(info.group, info.plural);
                let mut e = ApiError::forbidden(
                    &gr,
                    name,
                    &format!("unable to create new content in namespace {ns} because it is being terminated"),
                );
                e.details = Some(Details {
                    name: name.to_string(),
                    group: info.group.to_string(),
                    kind: info.plural.to_string(),
                    causes: vec![Cause {
                        reason: "NamespaceTerminating".into(),
                        message: format!("namespace {ns} is being terminated"),
                        field: "metadata.namespace".into(),
                    }],
                    retry_after_seconds: None,
                });
                return Err(e);
            }
            Ok(())
        }
        .boxed()
    }

    fn admit_delete(&self, info: &'static ResourceInfo, _namespace: Option<&str>, name: &str) -> Result<(), ApiError> {
        if info.group.is_empty() && info.plural == "namespaces" && IMMORTAL_NAMESPACES.contains(&name) {
            let mut e = ApiError::forbidden(&GroupResource::new("", "namespaces"), name, "this namespace may not be deleted");
            e.reason = Reason::Forbidden;
            return Err(e);
        }
        Ok(())
    }
}
