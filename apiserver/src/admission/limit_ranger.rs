//! LimitRanger (upstream's plugin/pkg/admission/limitranger) on pod creation: the defaults of
//! the namespace's LimitRanges' `Container` items fill the requests and limits a container
//! leaves out (recorded in the `kubernetes.io/limit-ranger` annotation), then every
//! `Container` and `Pod` item's min, max and maxLimitRequestRatio are enforced; a violation
//! is a 403 with upstream's messages.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use ironkube_machinery::ApiError;
use ironkube_machinery::resources::ResourceInfo;
use ironkube_machinery::validation::quantity::Quantity;
use serde_json::{Value, json};

use super::forbidden;
use crate::registry::params::ListParams;
use crate::registry::store::{Admission, Store};

const ANNOTATION: &str = "kubernetes.io/limit-ranger";

pub struct LimitRanger {
    limit_ranges: Arc<Store>,
}

impl LimitRanger {
    pub fn new(limit_ranges: Arc<Store>) -> Self {
        LimitRanger { limit_ranges }
    }
}

type Resources = BTreeMap<String, Quantity>;

fn resources(v: &Value) -> Resources {
    v.as_object()
        .map(|m| m.iter().filter_map(|(k, q)| Some((k.clone(), Quantity::parse(q.as_str()?).ok()?))).collect())
        .unwrap_or_default()
}

/// The `Container` items' defaults, merged in item order (later items win).
fn container_defaults(limit_ranges: &[Value]) -> (Value, Value) {
    let (mut requests, mut limits) = (serde_json::Map::new(), serde_json::Map::new());
    for item in limit_ranges.iter().flat_map(|lr| lr["spec"]["limits"].as_array().cloned().unwrap_or_default()) {
        if item["type"] != "Container" {
            continue;
        }
        for (from, into) in [("defaultRequest", &mut requests), ("default", &mut limits)] {
            if let Some(m) = item[from].as_object() {
                into.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
    }
    (Value::Object(requests), Value::Object(limits))
}

/// Fills what each container leaves out; returns the annotation's parts.
fn apply_defaults(pod: &mut Value, requests: &Value, limits: &Value) -> Vec<String> {
    let mut notes = Vec::new();
    for (list, what) in [("initContainers", "init container"), ("containers", "container")] {
        let Some(containers) = pod["spec"][list].as_array_mut() else { continue };
        for c in containers {
            let name = c["name"].as_str().unwrap_or("").to_string();
            let mut set = |field: &str, defaults: &Value| -> Vec<String> {
                let mut names = Vec::new();
                let Some(defaults) = defaults.as_object() else { return names };
                if !c["resources"].is_object() {
                    c["resources"] = json!({});
                }
                if !c["resources"][field].is_object() {
                    c["resources"][field] = json!({});
                }
                for (k, v) in defaults {
                    if c["resources"][field].get(k).is_none() {
                        c["resources"][field][k] = v.clone();
                        names.push(k.clone());
                    }
                }
                names.sort();
                names
            };
            let set_requests = set("requests", requests);
            let set_limits = set("limits", limits);
            if !set_requests.is_empty() {
                notes.push(format!("{} request for {what} {name}", set_requests.join(", ")));
            }
            if !set_limits.is_empty() {
                notes.push(format!("{} limit for {what} {name}", set_limits.join(", ")));
            }
        }
    }
    notes
}

fn min_constraint(kind: &str, resource: &str, enforced: &Quantity, requests: &Resources, limits: &Resources) -> Option<String> {
    let Some(req) = requests.get(resource) else {
        return Some(format!("minimum {resource} usage per {kind} is {enforced}.  No request is specified"));
    };
    if req < enforced {
        return Some(format!("minimum {resource} usage per {kind} is {enforced}, but request is {req}"));
    }
    match limits.get(resource) {
        Some(lim) if lim < enforced => Some(format!("minimum {resource} usage per {kind} is {enforced}, but limit is {lim}")),
        _ => None,
    }
}

fn max_constraint(kind: &str, resource: &str, enforced: &Quantity, requests: &Resources, limits: &Resources) -> Option<String> {
    let Some(lim) = limits.get(resource) else {
        return Some(format!("maximum {resource} usage per {kind} is {enforced}.  No limit is specified"));
    };
    if lim > enforced {
        return Some(format!("maximum {resource} usage per {kind} is {enforced}, but limit is {lim}"));
    }
    match requests.get(resource) {
        Some(req) if req > enforced => Some(format!("maximum {resource} usage per {kind} is {enforced}, but request is {req}")),
        _ => None,
    }
}

fn ratio_constraint(kind: &str, resource: &str, enforced: &Quantity, requests: &Resources, limits: &Resources) -> Option<String> {
    let req = requests.get(resource).map(Quantity::milli_value).unwrap_or(0);
    if req == 0 {
        return Some(format!("{resource} max limit to request ratio per {kind} is {enforced}, but no request is specified or request is 0"));
    }
    let lim = limits.get(resource).map(Quantity::milli_value).unwrap_or(0);
    if lim == 0 {
        return Some(format!("{resource} max limit to request ratio per {kind} is {enforced}, but no limit is specified or limit is 0"));
    }
    let observed = lim as f64 / req as f64;
    if observed * 1000.0 > enforced.milli_value() as f64 {
        return Some(format!("{resource} max limit to request ratio per {kind} is {enforced}, but provided ratio is {observed:.6}"));
    }
    None
}

fn check(kind: &str, item: &Value, requests: &Resources, limits: &Resources, errs: &mut Vec<String>) {
    for (field, constraint) in [
        ("min", min_constraint as fn(&str, &str, &Quantity, &Resources, &Resources) -> Option<String>),
        ("max", max_constraint),
        ("maxLimitRequestRatio", ratio_constraint),
    ] {
        for (resource, enforced) in resources(&item[field]) {
            errs.extend(constraint(kind, &resource, &enforced, requests, limits));
        }
    }
}

/// The pod's effective requests or limits: the larger of the containers' sum and each init
/// container's own.
fn pod_total(pod: &Value, field: &str) -> Resources {
    let mut sum = Resources::new();
    for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
        for (k, q) in resources(&c["resources"][field]) {
            let total = sum.get(&k).map(|s| s.add(&q)).unwrap_or(q);
            sum.insert(k, total);
        }
    }
    for c in pod["spec"]["initContainers"].as_array().into_iter().flatten() {
        for (k, q) in resources(&c["resources"][field]) {
            if sum.get(&k).is_none_or(|s| &q > s) {
                sum.insert(k, q);
            }
        }
    }
    sum
}

/// Upstream's PodValidateLimitFunc: every violation, in item order.
fn violations(limit_ranges: &[Value], pod: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    for item in limit_ranges.iter().flat_map(|lr| lr["spec"]["limits"].as_array().cloned().unwrap_or_default()) {
        match item["type"].as_str() {
            Some("Container") => {
                for list in ["initContainers", "containers"] {
                    for c in pod["spec"][list].as_array().into_iter().flatten() {
                        check("Container", &item, &resources(&c["resources"]["requests"]), &resources(&c["resources"]["limits"]), &mut errs);
                    }
                }
            }
            Some("Pod") => check("Pod", &item, &pod_total(pod, "requests"), &pod_total(pod, "limits"), &mut errs),
            _ => {}
        }
    }
    errs
}

impl LimitRanger {
    async fn admit_pod(&self, info: &'static ResourceInfo, namespace: &str, pod: &mut Value) -> Result<(), ApiError> {
        let page = self.limit_ranges.list(Some(namespace), &ListParams::default()).await?;
        if page.items.is_empty() {
            return Ok(());
        }
        let items: Vec<Value> = page.items.iter().map(|lr| (**lr).clone()).collect();
        let (requests, limits) = container_defaults(&items);
        let notes = apply_defaults(pod, &requests, &limits);
        if !notes.is_empty() {
            if !pod["metadata"]["annotations"].is_object() {
                pod["metadata"]["annotations"] = json!({});
            }
            pod["metadata"]["annotations"][ANNOTATION] = json!(format!("LimitRanger plugin set: {}", notes.join("; ")));
        }
        let errs = violations(&items, pod);
        match errs.as_slice() {
            [] => Ok(()),
            [one] => Err(forbidden(info, pod, one)),
            many => Err(forbidden(info, pod, &format!("[{}]", many.join(", ")))),
        }
    }
}

impl Admission for LimitRanger {
    fn admit_create<'a>(&'a self, info: &'static ResourceInfo, namespace: Option<&'a str>, obj: &'a mut Value) -> BoxFuture<'a, Result<(), ApiError>> {
        async move {
            match (info.group, info.plural, namespace) {
                ("", "pods", Some(ns)) => self.admit_pod(info, ns, obj).await,
                _ => Ok(()),
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit_range() -> Value {
        json!({"spec": {"limits": [{"type": "Container",
            "min": {"cpu": "50m", "memory": "100Mi"}, "max": {"cpu": "500m", "memory": "500Mi"},
            "default": {"cpu": "500m", "memory": "500Mi"}, "defaultRequest": {"cpu": "100m", "memory": "200Mi"}}]}})
    }

    #[test]
    fn defaults_fill_what_containers_leave_out() {
        let lrs = vec![limit_range()];
        let (requests, limits) = container_defaults(&lrs);
        let mut pod = json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"memory": "150Mi"}, "limits": {"cpu": "300m"}}}]}});
        let notes = apply_defaults(&mut pod, &requests, &limits);
        assert_eq!(pod["spec"]["containers"][0]["resources"], json!({"requests": {"memory": "150Mi", "cpu": "100m"}, "limits": {"cpu": "300m", "memory": "500Mi"}}));
        assert_eq!(notes, vec!["cpu request for container c", "memory limit for container c"]);
        assert!(violations(&lrs, &pod).is_empty());
    }

    #[test]
    fn min_and_max_are_enforced_with_upstreams_messages() {
        let lrs = vec![limit_range()];
        let small = json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "10m", "memory": "200Mi"}, "limits": {"cpu": "100m", "memory": "200Mi"}}}]}});
        assert_eq!(violations(&lrs, &small), vec!["minimum cpu usage per Container is 50m, but request is 10m"]);
        let big = json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "600m", "memory": "600Mi"}, "limits": {"cpu": "600m", "memory": "600Mi"}}}]}});
        assert_eq!(violations(&lrs, &big), vec![
            "maximum cpu usage per Container is 500m, but limit is 600m",
            "maximum memory usage per Container is 500Mi, but limit is 600Mi",
        ]);
        let bare = json!({"spec": {"containers": [{"name": "c"}]}});
        assert_eq!(violations(&lrs, &bare)[0], "minimum cpu usage per Container is 50m.  No request is specified");
        let ratio = vec![json!({"spec": {"limits": [{"type": "Pod", "maxLimitRequestRatio": {"cpu": "2"}}]}})];
        let pod = json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "300m"}}}]}});
        assert_eq!(violations(&ratio, &pod), vec!["cpu max limit to request ratio per Pod is 2, but provided ratio is 3.000000"]);
    }
}
