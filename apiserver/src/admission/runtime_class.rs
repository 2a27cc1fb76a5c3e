//! RuntimeClass: a pod naming a RuntimeClass gets the class's pod overhead and its
//! scheduling constraints (node selector, tolerations); naming one that does not exist, or
//! bringing an overhead that differs from the class's, is refused with upstream's messages.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use ironkube_machinery::ApiError;
use ironkube_machinery::quota;
use ironkube_machinery::resources::ResourceInfo;
use serde_json::{Map, Value};

use super::forbidden;
use crate::registry::store::{Admission, Store};

pub struct RuntimeClass {
    classes: Arc<Store>,
}

fn same_quantities(a: &Value, b: &Value) -> bool {
    let (a, b) = (quota::parse_list(a), quota::parse_list(b));
    a.len() == b.len() && a.iter().all(|(k, v)| b.get(k) == Some(v))
}

impl RuntimeClass {
    pub fn new(classes: Arc<Store>) -> Self {
        RuntimeClass { classes }
    }

    async fn admit_pod(&self, info: &ResourceInfo, pod: &mut Value) -> Result<(), ApiError> {
        let Some(class_name) = pod["spec"]["runtimeClassName"].as_str().map(str::to_string) else {
            return Ok(());
        };
        let class = match self.classes.get(None, &class_name, None).await {
            Ok(c) => c,
            Err(e) if e.code == 404 => {
                return Err(forbidden(info, pod, &format!("pod rejected: RuntimeClass {class_name:?} not found")));
            }
            Err(e) => return Err(e),
        };
        let pod_overhead = pod["spec"].get("overhead").filter(|o| !o.is_null()).cloned();
        match class["overhead"].get("podFixed").filter(|o| !o.is_null()) {
            Some(fixed) => {
                if pod_overhead.as_ref().is_some_and(|o| o.as_object().is_some_and(|m| !m.is_empty()) && !same_quantities(o, fixed)) {
                    return Err(forbidden(info, pod, "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"));
                }
                pod["spec"]["overhead"] = fixed.clone();
            }
            None => {
                if pod_overhead.is_some() {
                    return Err(forbidden(info, pod, "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead"));
                }
            }
        }
        let scheduling = &class["scheduling"];
        if let Some(selector) = scheduling["nodeSelector"].as_object() {
            let mut merged: Map<String, Value> = pod["spec"]["nodeSelector"].as_object().cloned().unwrap_or_default();
            for (k, v) in selector {
                if let Some(have) = merged.get(k)
                    && have != v
                {
                    let (rc, pv) = (v.as_str().unwrap_or(""), have.as_str().unwrap_or(""));
                    return Err(forbidden(info, pod, &format!("conflict: runtimeClass.scheduling.nodeSelector[{k}] = {rc}; pod.spec.nodeSelector[{k}] = {pv}")));
                }
                merged.insert(k.clone(), v.clone());
            }
            pod["spec"]["nodeSelector"] = Value::Object(merged);
        }
        if let Some(extra) = scheduling["tolerations"].as_array().filter(|t| !t.is_empty()) {
            let mut tolerations = pod["spec"]["tolerations"].as_array().cloned().unwrap_or_default();
            for t in extra {
                if !tolerations.contains(t) {
                    tolerations.push(t.clone());
                }
            }
            pod["spec"]["tolerations"] = Value::Array(tolerations);
        }
        Ok(())
    }
}

impl Admission for RuntimeClass {
    fn admit_create<'a>(&'a self, info: &'static ResourceInfo, _namespace: Option<&'a str>, obj: &'a mut Value) -> BoxFuture<'a, Result<(), ApiError>> {
        async move {
            if (info.group, info.plural) == ("", "pods") { self.admit_pod(info, obj).await } else { Ok(()) }
        }
        .boxed()
    }
}
