//! Priority: a pod's `spec.priority` (and `preemptionPolicy`) come from its PriorityClass, or
//! from the cluster's global default class, or are 0 and `PreemptLowerPriority`; a pod may
//! not name a missing class nor carry a priority that differs from its class's. Only one
//! PriorityClass may be the global default.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use ironkube_machinery::resources::ResourceInfo;
use ironkube_machinery::ApiError;
use serde_json::{Value, json};

use crate::registry::params::ListParams;
use super::forbidden;
use crate::registry::store::{Admission, Store};

/// Upstream's `DefaultPriorityWhenNoDefaultClassExists`.
const DEFAULT_PRIORITY: i64 = 0;
const DEFAULT_PREEMPTION_POLICY: &str = "PreemptLowerPriority";

pub struct Priority {
    classes: Arc<Store>,
}

impl Priority {
    pub fn new(classes: Arc<Store>) -> Self {
        Priority { classes }
    }

    /// The global default class; of several (a race), the one with the lowest value.
    async fn global_default(&self) -> Result<Option<Value>, ApiError> {
        let params = ListParams { resource_version: Some("0".into()), ..Default::default() };
        let page = self.classes.list(None, &params).await?;
        Ok(page
            .items
            .iter()
            .filter(|c| c["globalDefault"].as_bool() == Some(true))
            .min_by_key(|c| c["value"].as_i64().unwrap_or(0))
            .map(|c| (**c).clone()))
    }

    async fn admit_pod(&self, info: &ResourceInfo, pod: &mut Value) -> Result<(), ApiError> {
        let class_name = pod["spec"]["priorityClassName"].as_str().unwrap_or("").to_string();
        let (name, priority, policy) = if class_name.is_empty() {
            match self.global_default().await? {
                Some(c) => (c["metadata"]["name"].as_str().unwrap_or("").to_string(), c["value"].as_i64().unwrap_or(0), c.get("preemptionPolicy").cloned()),
                None => (String::new(), DEFAULT_PRIORITY, Some(json!(DEFAULT_PREEMPTION_POLICY))),
            }
        } else {
            let class = match self.classes.get(None, &class_name, Some("0")).await {
                Ok(c) => Ok(c),
                Err(e) if e.code == 404 => self.classes.get(None, &class_name, None).await,
                Err(e) => Err(e),
            };
            let class = match class {
                Ok(c) => c,
                Err(e) if e.code == 404 => return Err(forbidden(info, pod, &format!("no PriorityClass with name {class_name} was found"))),
                Err(e) => return Err(ApiError::internal(format!("failed to get PriorityClass with name {class_name}: {}", e.message))),
            };
            (class_name, class["value"].as_i64().unwrap_or(0), class.get("preemptionPolicy").cloned())
        };
        if let Some(given) = pod["spec"]["priority"].as_i64().filter(|p| *p != priority) {
            return Err(forbidden(
                info,
                pod,
                &format!("the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"),
            ));
        }
        if let (Some(given), Some(computed)) = (pod["spec"]["preemptionPolicy"].as_str(), policy.as_ref().and_then(Value::as_str))
            && given != computed
        {
            return Err(forbidden(
                info,
                pod,
                &format!("the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {computed} from the given PriorityClass name"),
            ));
        }
        let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else { return Ok(()) };
        if !name.is_empty() {
            spec.insert("priorityClassName".into(), json!(name));
        }
        spec.insert("priority".into(), json!(priority));
        if let Some(policy) = policy.filter(|p| !p.is_null()) {
            spec.insert("preemptionPolicy".into(), policy);
        }
        Ok(())
    }

    async fn validate_class(&self, info: &ResourceInfo, class: &Value) -> Result<(), ApiError> {
        if class["globalDefault"].as_bool() != Some(true) {
            return Ok(());
        }
        if let Some(existing) = self.global_default().await? {
            let name = existing["metadata"]["name"].as_str().unwrap_or("");
            return Err(forbidden(info, class, &format!("PriorityClass {name} is already marked as default. Only one default can exist")));
        }
        Ok(())
    }
}

impl Admission for Priority {
    fn admit_create<'a>(&'a self, info: &'static ResourceInfo, _namespace: Option<&'a str>, obj: &'a mut Value) -> BoxFuture<'a, Result<(), ApiError>> {
        async move {
            match (info.group, info.plural) {
                ("", "pods") => self.admit_pod(info, obj).await,
                ("scheduling.k8s.io", "priorityclasses") => self.validate_class(info, obj).await,
                _ => Ok(()),
            }
        }
        .boxed()
    }

    /// The priority set on create stays when an update leaves it out.
    fn admit_update(&self, info: &'static ResourceInfo, new: &mut Value, old: &Value) -> Result<(), ApiError> {
        if !(info.group.is_empty() && info.plural == "pods") {
            return Ok(());
        }
        let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else { return Ok(()) };
        for field in ["priority", "preemptionPolicy"] {
            if spec.get(field).is_none_or(Value::is_null)
                && let Some(v) = old["spec"].get(field).filter(|v| !v.is_null())
            {
                spec.insert(field.into(), v.clone());
            }
        }
        Ok(())
    }
}
