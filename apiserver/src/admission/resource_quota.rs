//! ResourceQuota: a create that would take a namespace past any of its quotas' `spec.hard`
//! is refused with upstream's `exceeded quota` message; a pod that leaves out a request or
//! limit a quota tracks is refused with `must specify`; a quota whose usage the controller
//! has not counted yet refuses what it would track (`status unknown`). An admitted object is
//! charged to the quotas at once (`status.used`), as upstream's plugin does, so creates
//! racing the quota controller cannot overrun it.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::BoxFuture;
use ironkube_machinery::ApiError;
use ironkube_machinery::quota::{self, ResourceList};
use ironkube_machinery::resources::ResourceInfo;
use serde_json::Value;

use super::forbidden;
use crate::registry::params::{ListParams, WriteOptions};
use crate::registry::store::{Admission, NoAdmission, Store, Sub};

/// How many times a create re-reads and re-evaluates the quotas whose charge met a
/// conflicting write (upstream's evaluator retries 3 times).
const CONFLICT_RETRIES: usize = 3;

/// The compute resources each container must name when a quota tracks them.
const MUST_SPECIFY: &[&str] = &["cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"];

pub struct ResourceQuota {
    quotas: Arc<Store>,
    /// One evaluation at a time per namespace (upstream's evaluator hands a namespace's
    /// waiting admissions to one worker), so creates racing in a namespace never conflict
    /// on its quotas with each other.
    namespaces: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl ResourceQuota {
    pub fn new(quotas: Arc<Store>) -> Self {
        ResourceQuota { quotas, namespaces: Mutex::new(HashMap::new()) }
    }

    fn namespace_lock(&self, namespace: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.namespaces.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Forget namespaces nobody is evaluating in (only the map holds their lock).
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        locks.entry(namespace.to_string()).or_default().clone()
    }

    /// Evaluates and charges the namespace's quotas, one create at a time per namespace; a
    /// quota whose charge conflicts with another write (the quota controller's) is read
    /// again and evaluated afresh, as upstream's evaluator does, rather than failing the
    /// create.
    async fn admit(&self, info: &'static ResourceInfo, namespace: &str, obj: &Value) -> Result<(), ApiError> {
        let lock = self.namespace_lock(namespace);
        let _serialized = lock.lock().await;
        let mut charged = BTreeSet::new();
        let mut attempt = 0;
        loop {
            match self.admit_once(info, namespace, obj, &mut charged).await {
                Err(e) if e.code == 409 && attempt < CONFLICT_RETRIES => attempt += 1,
                other => return other,
            }
        }
    }

    /// One evaluation of the quotas not in `charged` (those already charged for this
    /// object); each quota charged is added to it.
    async fn admit_once(&self, info: &'static ResourceInfo, namespace: &str, obj: &Value, charged: &mut BTreeSet<String>) -> Result<(), ApiError> {
        // Quotas do not count themselves being created.
        let page = self.quotas.list(Some(namespace), &ListParams::default()).await?;
        if page.items.is_empty() {
            return Ok(());
        }
        let usage = quota::usage(info.group, info.plural, obj);
        if usage.is_empty() {
            return Ok(());
        }
        let mut charges = Vec::new();
        for q in &page.items {
            if quota::scoped(q) && !quota::selects(q, info.group, info.plural, obj) {
                continue;
            }
            let name = q["metadata"]["name"].as_str().unwrap_or("");
            if charged.contains(name) {
                continue;
            }
            let hard = quota::parse_list(&q["spec"]["hard"]);
            let tracked: Vec<&String> = hard.keys().filter(|k| quota::tracks(info.group, info.plural, k)).collect();
            if tracked.is_empty() {
                continue;
            }
            if (info.group, info.plural) == ("", "pods") {
                let required: Vec<&str> = tracked.iter().map(|k| k.as_str()).filter(|k| MUST_SPECIFY.contains(k)).collect();
                if let Some(missing) = missing_resources(obj, &required) {
                    return Err(forbidden(info, obj, &format!("failed quota: {name}: must specify {missing}")));
                }
            }
            let used = quota::parse_list(&q["status"]["used"]);
            let unknown: Vec<&str> = tracked.iter().filter(|k| !used.contains_key(k.as_str())).map(|k| k.as_str()).collect();
            if !unknown.is_empty() {
                return Err(forbidden(info, obj, &format!("status unknown for quota: {name}, resources: {}", unknown.join(","))));
            }
            let mut requested = ResourceList::new();
            let mut new_used = used.clone();
            let mut exceeded = BTreeSet::new();
            for k in &tracked {
                let delta = usage.get(k.as_str()).copied().unwrap_or(ironkube_machinery::validation::quantity::Quantity::ZERO);
                requested.insert((*k).clone(), delta);
                let total = used[k.as_str()].add(&delta);
                if delta.nanos() > 0 && total > hard[k.as_str()] {
                    exceeded.insert((*k).clone());
                }
                new_used.insert((*k).clone(), total);
            }
            if !exceeded.is_empty() {
                let mask = |l: &ResourceList| -> ResourceList { l.iter().filter(|(k, _)| exceeded.contains(*k)).map(|(k, v)| (k.clone(), *v)).collect() };
                return Err(forbidden(
                    info,
                    obj,
                    &format!(
                        "exceeded quota: {name}, requested: {}, used: {}, limited: {}",
                        quota::describe(&mask(&requested)),
                        quota::describe(&mask(&used)),
                        quota::describe(&mask(&hard))
                    ),
                ));
            }
            if requested.values().any(|q| q.nanos() != 0) {
                charges.push(((**q).clone(), new_used));
            }
        }
        for (q, used) in charges {
            let name = q["metadata"]["name"].as_str().unwrap_or("").to_string();
            self.charge(q, used).await?;
            charged.insert(name);
        }
        Ok(())
    }

    /// Writes the new usage into the quota's status (a conflict is retried by `admit`).
    async fn charge(&self, mut q: Value, used: ResourceList) -> Result<(), ApiError> {
        let ns = q["metadata"]["namespace"].as_str().unwrap_or("").to_string();
        let name = q["metadata"]["name"].as_str().unwrap_or("").to_string();
        let mut merged = quota::parse_list(&q["status"]["used"]);
        merged.extend(used);
        q["status"]["used"] = quota::to_json(&merged);
        let opts = WriteOptions { field_manager: Some("resourcequota-admission".into()), ..Default::default() };
        match self.quotas.update(Some(&ns), &name, q, Sub::Status, &opts, &NoAdmission).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == 409 => Err(ApiError::new(
                409,
                ironkube_machinery::Reason::Conflict,
                format!("Operation cannot be fulfilled on resourcequotas \"{name}\": the object has been modified; please apply your changes to the latest version and try again"),
            )),
            Err(e) => Err(e),
        }
    }
}

/// Upstream's pod Constraints: which of `required` each container leaves out, as
/// `limits.cpu for: a,b; requests.memory for: a`.
fn missing_resources(pod: &Value, required: &[&str]) -> Option<String> {
    if required.is_empty() {
        return None;
    }
    let mut missing: std::collections::BTreeMap<&str, BTreeSet<String>> = Default::default();
    let containers = pod["spec"]["containers"].as_array().into_iter().flatten().chain(pod["spec"]["initContainers"].as_array().into_iter().flatten());
    for c in containers {
        let requests = c["resources"]["requests"].as_object();
        let limits = c["resources"]["limits"].as_object();
        let has = |name: &str| -> bool {
            match name {
                "cpu" | "memory" => requests.is_some_and(|r| r.contains_key(name)),
                _ => match name.split_once('.') {
                    Some(("requests", r)) => requests.is_some_and(|m| m.contains_key(r)),
                    Some(("limits", r)) => limits.is_some_and(|m| m.contains_key(r)),
                    _ => true,
                },
            }
        };
        for r in required {
            if !has(r) {
                missing.entry(r).or_default().insert(c["name"].as_str().unwrap_or("").to_string());
            }
        }
    }
    if missing.is_empty() {
        return None;
    }
    Some(missing.iter().map(|(r, names)| format!("{r} for: {}", names.iter().cloned().collect::<Vec<_>>().join(","))).collect::<Vec<_>>().join("; "))
}

impl Admission for ResourceQuota {
    fn admit_create<'a>(&'a self, info: &'static ResourceInfo, namespace: Option<&'a str>, obj: &'a mut Value) -> BoxFuture<'a, Result<(), ApiError>> {
        async move {
            match namespace {
                Some(ns) if info.namespaced && !ns.is_empty() => self.admit(info, ns, obj).await,
                _ => Ok(()),
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_what_each_container_leaves_out() {
        let pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "1"}}},
            {"name": "b"}]}});
        assert_eq!(missing_resources(&pod, &["requests.cpu", "limits.memory"]).as_deref(), Some("limits.memory for: a,b; requests.cpu for: b"));
        assert_eq!(missing_resources(&pod, &[]), None);
    }
}
