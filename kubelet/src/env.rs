//! A container's environment as upstream's kubelet builds it (`makeEnvironmentVariables` in
//! pkg/kubelet/kubelet_pods.go, service links from pkg/kubelet/envvars):
//!
//! 1. `envFrom` sources in order — every key of a ConfigMap or Secret, with the source's
//!    prefix; a missing source fails unless it is optional;
//! 2. `env` in order, overriding what came before: a `value` has `$(VAR)` references
//!    expanded from the variables so far and the service links, a `valueFrom` reads a pod
//!    field, a container resource, or a ConfigMap or Secret key (an optional one that is
//!    missing leaves the variable out);
//! 3. the service links not already set: for each Service of the pod's namespace (when
//!    `enableServiceLinks`, true by default) and always for `kubernetes` in `default`,
//!    `<NAME>_SERVICE_HOST`, `<NAME>_SERVICE_PORT[_<PORT>]` and Docker-style `<NAME>_PORT...`.
//!
//! Upstream hands the runtime these in Go map order (random); here a variable keeps the
//! position where it was first set, and the remaining service links follow sorted by name.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};

use crate::downward::{self, DownwardError, go_quote};
use crate::kuberuntime::container::expand;
use crate::volumes::{PodContext, SourceError, Sources};

/// Why a container's environment cannot be built (the pod worker reports it with reason
/// `CreateContainerConfigError`; the messages are upstream's).
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("configmap {} not found", go_quote(.0))]
    ConfigMapNotFound(String),
    #[error("secret {} not found", go_quote(.0))]
    SecretNotFound(String),
    #[error("couldn't find key {key} in ConfigMap {namespace}/{name}")]
    ConfigMapKey { key: String, namespace: String, name: String },
    #[error("couldn't find key {key} in Secret {namespace}/{name}")]
    SecretKey { key: String, namespace: String, name: String },
    #[error("failed to list services when setting up env vars")]
    Services(#[source] SourceError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Downward(#[from] DownwardError),
}

/// Variables in the order they were first set; setting one again replaces its value.
#[derive(Default)]
struct OrderedEnv {
    vars: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl OrderedEnv {
    fn set(&mut self, name: String, value: String) {
        match self.index.get(&name) {
            Some(&i) => self.vars[i].1 = value,
            None => {
                self.index.insert(name.clone(), self.vars.len());
                self.vars.push((name, value));
            }
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.index.get(name).map(|&i| self.vars[i].1.as_str())
    }
}

/// ConfigMaps and Secrets read once per container.
struct Objects<'a, S> {
    sources: &'a S,
    namespace: &'a str,
    config_maps: HashMap<String, ConfigMap>,
    secrets: HashMap<String, Secret>,
}

impl<S: Sources> Objects<'_, S> {
    /// The ConfigMap, `None` when it is missing and `optional`.
    async fn config_map(&mut self, name: &str, optional: bool) -> Result<Option<&ConfigMap>, EnvError> {
        if !self.config_maps.contains_key(name) {
            match self.sources.config_map(self.namespace, name).await? {
                Some(cm) => {
                    self.config_maps.insert(name.to_string(), cm);
                }
                None if optional => return Ok(None),
                None => return Err(EnvError::ConfigMapNotFound(name.to_string())),
            }
        }
        Ok(self.config_maps.get(name))
    }

    /// The Secret, `None` when it is missing and `optional`.
    async fn secret(&mut self, name: &str, optional: bool) -> Result<Option<&Secret>, EnvError> {
        if !self.secrets.contains_key(name) {
            match self.sources.secret(self.namespace, name).await? {
                Some(s) => {
                    self.secrets.insert(name.to_string(), s);
                }
                None if optional => return Ok(None),
                None => return Err(EnvError::SecretNotFound(name.to_string())),
            }
        }
        Ok(self.secrets.get(name))
    }
}

/// The environment of `container` in `pod`.
pub async fn container_env(pod: &Pod, container: &Container, ctx: &PodContext, sources: &impl Sources) -> Result<Vec<(String, String)>, EnvError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let enable_service_links = pod.spec.as_ref().and_then(|s| s.enable_service_links).unwrap_or(true);
    let services = sources.services(namespace).await.map_err(EnvError::Services)?;
    let service_env = service_env(&services, namespace, enable_service_links);

    let mut objects = Objects { sources, namespace, config_maps: HashMap::new(), secrets: HashMap::new() };
    let mut env = OrderedEnv::default();
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            if let Some(cm) = objects.config_map(&r.name, r.optional.unwrap_or(false)).await? {
                for (k, v) in cm.data.iter().flatten() {
                    env.set(format!("{prefix}{k}"), v.clone());
                }
            }
        } else if let Some(r) = &from.secret_ref
            && let Some(secret) = objects.secret(&r.name, r.optional.unwrap_or(false)).await?
        {
            for (k, v) in secret.data.iter().flatten() {
                env.set(format!("{prefix}{k}"), String::from_utf8_lossy(&v.0).into_owned());
            }
        }
    }

    for var in container.env.iter().flatten() {
        let value = var.value.as_deref().unwrap_or_default();
        let resolved = if !value.is_empty() {
            let lookup = |name: &str| env.get(name).or_else(|| service_env.get(name).map(String::as_str)).map(str::to_string);
            Some(expand(value, &lookup))
        } else if let Some(from) = &var.value_from {
            if let Some(field) = &from.field_ref {
                Some(downward::field_value(pod, field, ctx)?)
            } else if let Some(resource) = &from.resource_field_ref {
                Some(downward::resource_value(pod, Some(container), resource, &ctx.node_allocatable)?)
            } else if let Some(key_ref) = &from.config_map_key_ref {
                let optional = key_ref.optional.unwrap_or(false);
                match objects.config_map(&key_ref.name, optional).await? {
                    None => None,
                    Some(cm) => match cm.data.as_ref().and_then(|d| d.get(&key_ref.key)) {
                        Some(v) => Some(v.clone()),
                        None if optional => None,
                        None => {
                            return Err(EnvError::ConfigMapKey {
                                key: key_ref.key.clone(),
                                namespace: namespace.to_string(),
                                name: key_ref.name.clone(),
                            });
                        }
                    },
                }
            } else if let Some(key_ref) = &from.secret_key_ref {
                let optional = key_ref.optional.unwrap_or(false);
                match objects.secret(&key_ref.name, optional).await? {
                    None => None,
                    Some(secret) => match secret.data.as_ref().and_then(|d| d.get(&key_ref.key)) {
                        Some(v) => Some(String::from_utf8_lossy(&v.0).into_owned()),
                        None if optional => None,
                        None => {
                            return Err(EnvError::SecretKey {
                                key: key_ref.key.clone(),
                                namespace: namespace.to_string(),
                                name: key_ref.name.clone(),
                            });
                        }
                    },
                }
            } else {
                Some(String::new())
            }
        } else {
            Some(String::new())
        };
        if let Some(resolved) = resolved {
            env.set(var.name.clone(), resolved);
        }
    }

    let mut vars = env.vars;
    vars.extend(service_env.into_iter().filter(|(k, _)| !env.index.contains_key(k)));
    Ok(vars)
}

/// The service-link variables a pod of `namespace` sees (upstream's `getServiceEnvVarMap`):
/// the namespace's Services with a cluster IP when `enable_service_links`, and `kubernetes`
/// of `default` always (a Service of the same name in the pod's namespace wins).
pub fn service_env(services: &[Service], namespace: &str, enable_service_links: bool) -> BTreeMap<String, String> {
    let mut chosen: BTreeMap<&str, &Service> = BTreeMap::new();
    for service in services.iter().filter(|s| has_cluster_ip(s)) {
        let name = service.metadata.name.as_deref().unwrap_or_default();
        let service_namespace = service.metadata.namespace.as_deref().unwrap_or_default();
        if service_namespace == "default" && name == "kubernetes" {
            chosen.entry(name).or_insert(service);
        } else if service_namespace == namespace && enable_service_links {
            chosen.insert(name, service);
        }
    }
    let chosen: Vec<&Service> = chosen.into_values().collect();
    from_services(&chosen).into_iter().collect()
}

/// A cluster IP that is neither empty nor `None`.
fn has_cluster_ip(service: &Service) -> bool {
    let ip = service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()).unwrap_or_default();
    !ip.is_empty() && ip != "None"
}

/// `my-svc` → `MY_SVC`.
fn env_name(name: &str) -> String {
    name.replace('-', "_").to_uppercase()
}

/// The variables of each Service, in upstream's order (`FromServices`).
pub fn from_services(services: &[&Service]) -> Vec<(String, String)> {
    let mut vars = Vec::new();
    for service in services.iter().filter(|s| has_cluster_ip(s)) {
        let Some(spec) = service.spec.as_ref() else { continue };
        let ports = spec.ports.as_deref().unwrap_or_default();
        let Some(first) = ports.first() else { continue };
        let ip = spec.cluster_ip.clone().unwrap_or_default();
        let prefix = env_name(service.metadata.name.as_deref().unwrap_or_default());
        vars.push((format!("{prefix}_SERVICE_HOST"), ip.clone()));
        let port_var = format!("{prefix}_SERVICE_PORT");
        vars.push((port_var.clone(), first.port.to_string()));
        for port in ports {
            if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
                vars.push((format!("{port_var}_{}", env_name(name)), port.port.to_string()));
            }
        }
        let host = if ip.contains(':') { format!("[{ip}]") } else { ip.clone() };
        for (i, port) in ports.iter().enumerate() {
            let protocol = port.protocol.as_deref().filter(|p| !p.is_empty()).unwrap_or("TCP");
            let scheme = protocol.to_lowercase();
            let url = format!("{scheme}://{host}:{}", port.port);
            if i == 0 {
                vars.push((format!("{prefix}_PORT"), url.clone()));
            }
            let port_prefix = format!("{prefix}_PORT_{}_{}", port.port, protocol.to_uppercase());
            vars.push((port_prefix.clone(), url));
            vars.push((format!("{port_prefix}_PROTO"), scheme));
            vars.push((format!("{port_prefix}_PORT"), port.port.to_string()));
            vars.push((format!("{port_prefix}_ADDR"), ip.clone()));
        }
    }
    vars
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volumes::fake::FakeSources;
    use serde_json::json;

    fn pod(env_from: serde_json::Value, env: serde_json::Value, links: Option<bool>) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"enableServiceLinks": links, "containers": [{"name": "c", "envFrom": env_from, "env": env,
                "resources": {"limits": {"memory": "64Mi"}}}]},
        }))
        .expect("pod")
    }

    fn service(namespace: &str, name: &str, ip: &str, ports: serde_json::Value) -> Service {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": namespace}, "spec": {"clusterIP": ip, "ports": ports}}))
            .expect("service")
    }

    fn sources() -> FakeSources {
        FakeSources {
            services: vec![
                service("ns", "my-svc", "10.96.0.10", json!([{"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}])),
                service("default", "kubernetes", "10.96.0.1", json!([{"name": "https", "port": 443}])),
                service("ns", "headless", "None", json!([{"port": 80}])),
                service("other", "elsewhere", "10.96.0.20", json!([{"port": 80}])),
            ],
            ..Default::default()
        }
        .with_config_map("ns", json!({"metadata": {"name": "cfg"}, "data": {"A": "a", "B": "b", "1st": "x"}}))
        .with_secret("ns", json!({"metadata": {"name": "sec"}, "data": {"TOKEN": "dA=="}}))
    }

    fn ctx() -> PodContext {
        PodContext { node_name: "n".into(), host_ip: "10.0.0.1".into(), pod_ips: vec!["10.244.0.9".into()], ..Default::default() }
    }

    async fn env_of(pod: &Pod, sources: &FakeSources) -> Result<Vec<(String, String)>, EnvError> {
        let container = &pod.spec.as_ref().expect("spec").containers[0];
        container_env(pod, container, &ctx(), sources).await
    }

    fn kubernetes_links() -> Vec<(String, String)> {
        [
            ("KUBERNETES_PORT", "tcp://10.96.0.1:443"),
            ("KUBERNETES_PORT_443_TCP", "tcp://10.96.0.1:443"),
            ("KUBERNETES_PORT_443_TCP_ADDR", "10.96.0.1"),
            ("KUBERNETES_PORT_443_TCP_PORT", "443"),
            ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
            ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
            ("KUBERNETES_SERVICE_PORT_HTTPS", "443"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[tokio::test]
    async fn order_expansion_prefixes_and_sources() {
        let pod = pod(
            json!([
                {"configMapRef": {"name": "cfg"}},
                {"secretRef": {"name": "sec"}, "prefix": "S_"},
                {"configMapRef": {"name": "absent", "optional": true}},
            ]),
            json!([
                {"name": "A", "value": "override $(B)"},
                {"name": "C", "value": "$(A)-$(D)-$$(A)"},
                {"name": "D", "value": "d"},
                {"name": "E", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "B"}}},
                {"name": "F", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "TOKEN"}}},
                {"name": "G", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "absent", "optional": true}}},
                {"name": "H", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": true}}},
                {"name": "I", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "J", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                {"name": "K", "value": "$(MY_SVC_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)"},
                {"name": "L", "value": ""},
                {"name": "P", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "KUBERNETES_SERVICE_HOST", "value": "mine"},
            ]),
            None,
        );
        let got = env_of(&pod, &sources()).await.expect("env");
        let mut want = pairs(&[
            ("1st", "x"),
            ("A", "override b"),
            ("B", "b"),
            ("S_TOKEN", "t"),
            ("C", "override b-$(D)-$(A)"),
            ("D", "d"),
            ("E", "b"),
            ("F", "t"),
            ("I", "p"),
            ("J", "64"),
            ("K", "10.96.0.10:443"),
            ("L", ""),
            ("P", "10.244.0.9"),
            ("KUBERNETES_SERVICE_HOST", "mine"),
        ]);
        want.extend(kubernetes_links().into_iter().filter(|(k, _)| k != "KUBERNETES_SERVICE_HOST"));
        want.extend(pairs(&[
            ("MY_SVC_PORT", "tcp://10.96.0.10:80"),
            ("MY_SVC_PORT_53_UDP", "udp://10.96.0.10:53"),
            ("MY_SVC_PORT_53_UDP_ADDR", "10.96.0.10"),
            ("MY_SVC_PORT_53_UDP_PORT", "53"),
            ("MY_SVC_PORT_53_UDP_PROTO", "udp"),
            ("MY_SVC_PORT_80_TCP", "tcp://10.96.0.10:80"),
            ("MY_SVC_PORT_80_TCP_ADDR", "10.96.0.10"),
            ("MY_SVC_PORT_80_TCP_PORT", "80"),
            ("MY_SVC_PORT_80_TCP_PROTO", "tcp"),
            ("MY_SVC_SERVICE_HOST", "10.96.0.10"),
            ("MY_SVC_SERVICE_PORT", "80"),
            ("MY_SVC_SERVICE_PORT_DNS", "53"),
            ("MY_SVC_SERVICE_PORT_HTTP", "80"),
        ]));
        // The pod's variables in order, then the service links not overridden, sorted.
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn service_links_can_be_disabled_but_not_the_masters() {
        let pod = pod(json!([]), json!([]), Some(false));
        assert_eq!(env_of(&pod, &sources()).await.expect("env"), kubernetes_links());
        let in_default: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c"}]},
        }))
        .expect("pod");
        assert_eq!(env_of(&in_default, &sources()).await.expect("env"), kubernetes_links());
    }

    #[tokio::test]
    async fn errors_read_as_upstream() {
        let table = [
            (json!([{"configMapRef": {"name": "nope"}}]), json!([]), "configmap \"nope\" not found"),
            (json!([{"secretRef": {"name": "nope"}}]), json!([]), "secret \"nope\" not found"),
            (json!([]), json!([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]), "couldn't find key k in ConfigMap ns/cfg"),
            (json!([]), json!([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k"}}}]), "configmap \"gone\" not found"),
            (json!([]), json!([{"name": "X", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "k"}}}]), "couldn't find key k in Secret ns/sec"),
            (json!([]), json!([{"name": "X", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k"}}}]), "secret \"gone\" not found"),
            (json!([]), json!([{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.x"}}}]), "field label not supported: spec.x"),
            (json!([]), json!([{"name": "X", "valueFrom": {"resourceFieldRef": {"resource": "limits.gpu"}}}]), "unsupported container resource : limits.gpu"),
        ];
        for (env_from, env, want) in table {
            let got = env_of(&pod(env_from, env, None), &sources()).await.map_err(|e| e.to_string());
            assert_eq!(got, Err(want.to_string()));
        }
        let failing = FakeSources { failure: Some("connection refused".into()), ..Default::default() };
        let got = env_of(&pod(json!([]), json!([]), None), &failing).await.map_err(|e| e.to_string());
        assert_eq!(got, Err("failed to list services when setting up env vars".to_string()));
    }
}
