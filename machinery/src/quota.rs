//! ResourceQuota accounting shared by the quota controller (which recalculates
//! `status.used`) and the API server's ResourceQuota admission (which refuses a create that
//! would exceed `spec.hard` and charges it at once): what an object of a given resource uses
//! of each quota resource name, which quotas' scopes match it, and the arithmetic on the
//! quota's resource lists. Upstream's evaluators for pods, services, persistent volume
//! claims and object counts (`count/<resource>.<group>` and the legacy names).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::validation::quantity::Quantity;

/// Resource name -> quantity.
pub type ResourceList = BTreeMap<String, Quantity>;

/// The legacy object-count names of the core resources.
fn legacy_count_name(group: &str, resource: &str) -> Option<&'static str> {
    if !group.is_empty() {
        return None;
    }
    Some(match resource {
        "pods" => "pods",
        "services" => "services",
        "replicationcontrollers" => "replicationcontrollers",
        "resourcequotas" => "resourcequotas",
        "secrets" => "secrets",
        "configmaps" => "configmaps",
        "persistentvolumeclaims" => "persistentvolumeclaims",
        _ => return None,
    })
}

/// `count/pods`, `count/deployments.apps`.
pub fn count_name(group: &str, resource: &str) -> String {
    if group.is_empty() { format!("count/{resource}") } else { format!("count/{resource}.{group}") }
}

fn one() -> Quantity {
    Quantity::from_units(1)
}

fn add(list: &mut ResourceList, name: &str, q: Quantity) {
    let sum = list.get(name).map_or(q, |have| have.add(&q));
    list.insert(name.to_string(), sum);
}

/// Whether a pod counts against quota: not finished (upstream's `QuotaV1Pod` also drops
/// pods whose deletion grace period has passed).
pub fn pod_counts(pod: &Value) -> bool {
    !matches!(pod["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
}

fn quantity(v: &Value) -> Option<Quantity> {
    match v {
        Value::String(s) => Quantity::parse(s).ok(),
        Value::Number(n) => Quantity::parse(&n.to_string()).ok(),
        _ => None,
    }
}

/// The pod's effective requests or limits: the larger of the sum over containers and of
/// any init container (sidecars — init containers with `restartPolicy: Always` — add up
/// with the containers), plus the pod overhead.
fn pod_resources(pod: &Value, which: &str) -> ResourceList {
    let spec = &pod["spec"];
    let mut sum = ResourceList::new();
    for c in spec["containers"].as_array().into_iter().flatten() {
        for (k, v) in c["resources"][which].as_object().into_iter().flatten() {
            if let Some(q) = quantity(v) {
                add(&mut sum, k, q);
            }
        }
    }
    let mut sidecars = ResourceList::new();
    let mut init_max = ResourceList::new();
    for c in spec["initContainers"].as_array().into_iter().flatten() {
        let mut this = ResourceList::new();
        for (k, v) in c["resources"][which].as_object().into_iter().flatten() {
            if let Some(q) = quantity(v) {
                this.insert(k.clone(), q);
            }
        }
        if c["restartPolicy"] == "Always" {
            for (k, q) in this {
                add(&mut sidecars, &k, q);
            }
            continue;
        }
        // A regular init container runs beside the sidecars started before it.
        for (k, q) in this {
            let with = sidecars.get(&k).map_or(q, |s| s.add(&q));
            if init_max.get(&k).is_none_or(|m| *m < with) {
                init_max.insert(k, with);
            }
        }
    }
    for (k, q) in sidecars {
        add(&mut sum, &k, q);
    }
    for (k, q) in init_max {
        if sum.get(&k).is_none_or(|s| *s < q) {
            sum.insert(k, q);
        }
    }
    for (k, v) in spec["overhead"].as_object().into_iter().flatten() {
        if let Some(q) = quantity(v) {
            if sum.contains_key(k) {
                add(&mut sum, k, q);
            }
        }
    }
    sum
}

/// What `obj` (of `group`/`resource`) uses of every quota resource name it counts against.
pub fn usage(group: &str, resource: &str, obj: &Value) -> ResourceList {
    let mut used = ResourceList::new();
    if (group, resource) == ("", "pods") && !pod_counts(obj) {
        return used;
    }
    used.insert(count_name(group, resource), one());
    if let Some(legacy) = legacy_count_name(group, resource) {
        used.insert(legacy.to_string(), one());
    }
    match (group, resource) {
        ("", "pods") => {
            for (k, q) in pod_resources(obj, "requests") {
                if matches!(k.as_str(), "cpu" | "memory" | "ephemeral-storage") {
                    used.insert(k.clone(), q);
                }
                used.insert(format!("requests.{k}"), q);
            }
            for (k, q) in pod_resources(obj, "limits") {
                used.insert(format!("limits.{k}"), q);
            }
        }
        ("", "services") => {
            let ports = obj["spec"]["ports"].as_array().map_or(0, Vec::len) as i64;
            match obj["spec"]["type"].as_str() {
                Some("LoadBalancer") => {
                    used.insert("services.loadbalancers".into(), one());
                    if obj["spec"]["allocateLoadBalancerNodePorts"].as_bool() != Some(false) {
                        used.insert("services.nodeports".into(), Quantity::from_units(ports));
                    }
                }
                Some("NodePort") => {
                    used.insert("services.nodeports".into(), Quantity::from_units(ports));
                }
                _ => {}
            }
            used.entry("services.loadbalancers".into()).or_insert(Quantity::ZERO);
            used.entry("services.nodeports".into()).or_insert(Quantity::ZERO);
        }
        ("", "persistentvolumeclaims") => {
            let class = obj["spec"]["storageClassName"].as_str().unwrap_or("");
            if let Some(q) = quantity(&obj["spec"]["resources"]["requests"]["storage"]) {
                used.insert("requests.storage".into(), q);
                if !class.is_empty() {
                    used.insert(format!("{class}.storageclass.storage.k8s.io/requests.storage"), q);
                }
            }
            if !class.is_empty() {
                used.insert(format!("{class}.storageclass.storage.k8s.io/persistentvolumeclaims"), one());
            }
        }
        _ => {}
    }
    used
}

/// The quota resource names `group`/`resource` can be charged for: the names a quota
/// lists that this evaluator knows.
pub fn tracks(group: &str, resource: &str, name: &str) -> bool {
    if name == count_name(group, resource) || Some(name) == legacy_count_name(group, resource) {
        return true;
    }
    match (group, resource) {
        ("", "pods") => {
            matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("requests.") || name.starts_with("limits.")
        }
        ("", "services") => matches!(name, "services.loadbalancers" | "services.nodeports"),
        ("", "persistentvolumeclaims") => name == "requests.storage" || name.contains(".storageclass.storage.k8s.io/"),
        _ => false,
    }
}

fn is_terminating(pod: &Value) -> bool {
    pod["spec"]["activeDeadlineSeconds"].as_i64().is_some_and(|s| s >= 0)
}

fn is_best_effort(pod: &Value) -> bool {
    let all: Vec<&Value> = pod["spec"]["containers"].as_array().into_iter().flatten().chain(pod["spec"]["initContainers"].as_array().into_iter().flatten()).collect();
    all.iter().all(|c| {
        let r = &c["resources"];
        r["requests"].as_object().is_none_or(Map::is_empty) && r["limits"].as_object().is_none_or(Map::is_empty)
    })
}

fn scope_matches(scope: &str, operator: &str, values: &[&str], group: &str, resource: &str, obj: &Value) -> bool {
    if (group, resource) != ("", "pods") {
        return false;
    }
    let hit = match scope {
        "Terminating" => is_terminating(obj),
        "NotTerminating" => !is_terminating(obj),
        "BestEffort" => is_best_effort(obj),
        "NotBestEffort" => !is_best_effort(obj),
        "PriorityClass" => {
            let class = obj["spec"]["priorityClassName"].as_str().unwrap_or("");
            return match operator {
                "In" => values.contains(&class),
                "NotIn" => !values.contains(&class),
                "Exists" => !class.is_empty(),
                "DoesNotExist" => class.is_empty(),
                _ => false,
            };
        }
        "CrossNamespacePodAffinity" => {
            let affinity = &obj["spec"]["affinity"];
            ["podAffinity", "podAntiAffinity"].iter().any(|k| {
                ["requiredDuringSchedulingIgnoredDuringExecution", "preferredDuringSchedulingIgnoredDuringExecution"].iter().any(|when| {
                    affinity[k][when].as_array().into_iter().flatten().any(|t| {
                        let term = if t.get("podAffinityTerm").is_some() { &t["podAffinityTerm"] } else { t };
                        term["namespaces"].as_array().is_some_and(|n| !n.is_empty()) || term.get("namespaceSelector").is_some_and(|s| !s.is_null())
                    })
                })
            })
        }
        _ => false,
    };
    match operator {
        "DoesNotExist" | "NotIn" => !hit,
        _ => hit,
    }
}

/// Whether every scope of `quota` (its `scopes` and `scopeSelector`) selects `obj`.
/// Quotas with scopes only ever select pods.
pub fn selects(quota: &Value, group: &str, resource: &str, obj: &Value) -> bool {
    let spec = &quota["spec"];
    for s in spec["scopes"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        if !scope_matches(s, "Exists", &[], group, resource, obj) {
            return false;
        }
    }
    for e in spec["scopeSelector"]["matchExpressions"].as_array().into_iter().flatten() {
        let values: Vec<&str> = e["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if !scope_matches(e["scopeName"].as_str().unwrap_or(""), e["operator"].as_str().unwrap_or(""), &values, group, resource, obj) {
            return false;
        }
    }
    true
}

/// Whether the quota has any scope (then only pods count against it).
pub fn scoped(quota: &Value) -> bool {
    quota["spec"]["scopes"].as_array().is_some_and(|s| !s.is_empty())
        || quota["spec"]["scopeSelector"]["matchExpressions"].as_array().is_some_and(|s| !s.is_empty())
}

/// A resource list (`spec.hard`, `status.used`) from JSON.
pub fn parse_list(v: &Value) -> ResourceList {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| quantity(v).map(|q| (k.clone(), q)))
        .collect()
}

/// A resource list as JSON, in canonical quantity form.
pub fn to_json(list: &ResourceList) -> Value {
    Value::Object(list.iter().map(|(k, q)| (k.clone(), json!(q.to_string()))).collect())
}

/// `name=quantity` pairs, sorted, comma-separated: how upstream's messages print lists.
pub fn describe(list: &ResourceList) -> String {
    list.iter().map(|(k, q)| format!("{k}={q}")).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_usage_and_scopes() {
        let pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m"}}},
            {"name": "b", "resources": {"requests": {"cpu": "150m"}}}],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "1"}}}]}});
        let u = usage("", "pods", &pod);
        assert_eq!(u["pods"].to_string(), "1");
        assert_eq!(u["count/pods"].to_string(), "1");
        assert_eq!(u["requests.cpu"].to_string(), "1");
        assert_eq!(u["cpu"].to_string(), "1");
        assert_eq!(u["requests.memory"].to_string(), "64Mi");
        assert_eq!(u["limits.cpu"].to_string(), "200m");
        let best_effort = json!({"spec": {"containers": [{"name": "a"}]}});
        let q = json!({"spec": {"scopes": ["BestEffort"]}});
        assert!(selects(&q, "", "pods", &best_effort));
        assert!(!selects(&q, "", "pods", &pod));
        assert!(usage("", "pods", &json!({"status": {"phase": "Succeeded"}})).is_empty());
        let svc = usage("", "services", &json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 81}]}}));
        assert_eq!(describe(&svc), "count/services=1,services=1,services.loadbalancers=0,services.nodeports=2");
        assert_eq!(usage("apps", "replicasets", &json!({})).keys().collect::<Vec<_>>(), ["count/replicasets.apps"]);
    }
}
