//! The downward API: the values a pod may read about itself, for environment variables
//! (`valueFrom.fieldRef` / `valueFrom.resourceFieldRef`) and for `downwardAPI` volume files.
//!
//! Field paths follow upstream's `ConvertDownwardAPIFieldLabel` and `ExtractFieldPathAsString`
//! (pkg/apis/core/pods, pkg/fieldpath): metadata fields everywhere, plus `spec.*` and
//! `status.*` fields that only the kubelet knows for environment variables. Resource values
//! follow pkg/api/v1/resource: a container without a limit reads the node's allocatable, and
//! every value is divided by the divisor and rounded up.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ironkube_machinery::validation::labels::qualified_name;
use ironkube_machinery::validation::quantity::{Quantity as ParsedQuantity, QuantityError};
use k8s_openapi::api::core::v1::{Container, ObjectFieldSelector, Pod, ResourceFieldSelector};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::volumes::PodContext;

/// Why a downward API value cannot be read (messages are upstream's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownwardError {
    #[error("unsupported pod version: {0}")]
    UnsupportedVersion(String),
    #[error("field label does not support subscript: {0}")]
    LabelSubscript(String),
    #[error("field label not supported: {0}")]
    UnsupportedLabel(String),
    #[error("invalid key subscript in {path}: {reasons}")]
    InvalidSubscript { path: String, reasons: String },
    #[error("fieldPath {} does not support subscript", go_quote(.0))]
    FieldPathSubscript(String),
    #[error("unsupported fieldPath: {0}")]
    UnsupportedFieldPath(String),
    #[error("unsupported container resource : {0}")]
    UnsupportedResource(String),
    #[error("container {0} not found")]
    ContainerNotFound(String),
    #[error(transparent)]
    Quantity(#[from] QuantityError),
}

/// `metadata.labels['key']` → `("metadata.labels", "key")`, as upstream's
/// `SplitMaybeSubscriptedPath`.
pub fn split_subscript(field_path: &str) -> Option<(&str, &str)> {
    let inner = field_path.strip_suffix("']")?;
    let (path, subscript) = inner.split_once("['")?;
    (!path.is_empty()).then_some((path, subscript))
}

/// The value of a metadata field path (what a `downwardAPI` volume file may name):
/// name, namespace, uid, labels and annotations, whole or by key.
pub fn metadata_value(pod: &Pod, field_path: &str) -> Result<String, DownwardError> {
    let meta = &pod.metadata;
    let empty = BTreeMap::new();
    let labels = meta.labels.as_ref().unwrap_or(&empty);
    let annotations = meta.annotations.as_ref().unwrap_or(&empty);
    if let Some((path, key)) = split_subscript(field_path) {
        let (map, checked) = match path {
            // Annotation keys are checked case-insensitively, as upstream does.
            "metadata.annotations" => (annotations, key.to_lowercase()),
            "metadata.labels" => (labels, key.to_string()),
            _ => return Err(DownwardError::FieldPathSubscript(field_path.to_string())),
        };
        let errs = qualified_name(&checked);
        if !errs.is_empty() {
            return Err(DownwardError::InvalidSubscript { path: field_path.to_string(), reasons: errs.join(";") });
        }
        return Ok(map.get(key).cloned().unwrap_or_default());
    }
    match field_path {
        "metadata.annotations" => Ok(format_map(annotations)),
        "metadata.labels" => Ok(format_map(labels)),
        "metadata.name" => Ok(meta.name.clone().unwrap_or_default()),
        "metadata.namespace" => Ok(meta.namespace.clone().unwrap_or_default()),
        "metadata.uid" => Ok(meta.uid.clone().unwrap_or_default()),
        _ => Err(DownwardError::UnsupportedFieldPath(field_path.to_string())),
    }
}

/// Checks a field label as upstream's `ConvertDownwardAPIFieldLabel` and returns the path
/// to read (`spec.host` is the old name of `spec.nodeName`).
fn convert_field_label(api_version: &str, label: &str) -> Result<String, DownwardError> {
    if api_version != "v1" {
        return Err(DownwardError::UnsupportedVersion(api_version.to_string()));
    }
    if let Some((path, _)) = split_subscript(label) {
        return match path {
            "metadata.annotations" | "metadata.labels" => Ok(label.to_string()),
            _ => Err(DownwardError::LabelSubscript(label.to_string())),
        };
    }
    match label {
        "metadata.annotations" | "metadata.labels" | "metadata.name" | "metadata.namespace" | "metadata.uid"
        | "spec.nodeName" | "spec.restartPolicy" | "spec.serviceAccountName" | "spec.schedulerName"
        | "status.phase" | "status.hostIP" | "status.hostIPs" | "status.podIP" | "status.podIPs" => Ok(label.to_string()),
        "spec.host" => Ok("spec.nodeName".to_string()),
        _ => Err(DownwardError::UnsupportedLabel(label.to_string())),
    }
}

/// The pod's IPs with those of the node's family first (upstream's `sortPodIPs`).
fn sorted_pod_ips(ctx: &PodContext) -> Vec<String> {
    let host_v4 = ctx.host_ip.parse::<IpAddr>().map(|ip| ip.is_ipv4()).unwrap_or(true);
    let same_family = |ip: &String| ip.parse::<IpAddr>().map(|ip| ip.is_ipv4() == host_v4).unwrap_or(false);
    let (mut first, rest): (Vec<String>, Vec<String>) = ctx.pod_ips.iter().cloned().partition(same_family);
    first.extend(rest);
    first
}

/// The value of an environment variable's `fieldRef` (upstream's
/// `podFieldSelectorRuntimeValue`): `spec.nodeName`, `spec.serviceAccountName`,
/// `status.hostIP(s)` and `status.podIP(s)` from what the kubelet knows, the rest from the pod.
pub fn field_value(pod: &Pod, selector: &ObjectFieldSelector, ctx: &PodContext) -> Result<String, DownwardError> {
    let path = convert_field_label(selector.api_version.as_deref().unwrap_or("v1"), &selector.field_path)?;
    let spec = pod.spec.as_ref();
    match path.as_str() {
        "spec.nodeName" => Ok(spec.and_then(|s| s.node_name.clone()).unwrap_or_default()),
        "spec.serviceAccountName" => Ok(spec.and_then(|s| s.service_account_name.clone()).unwrap_or_default()),
        "status.hostIP" | "status.hostIPs" => Ok(ctx.host_ip.clone()),
        "status.podIP" => Ok(sorted_pod_ips(ctx).into_iter().next().unwrap_or_default()),
        "status.podIPs" => Ok(sorted_pod_ips(ctx).join(",")),
        _ => metadata_value(pod, &path),
    }
}

fn parse(q: &Quantity) -> Result<ParsedQuantity, DownwardError> {
    Ok(ParsedQuantity::parse(&q.0)?)
}

/// A container's resource (`limits.cpu`, `requests.memory`, `limits.hugepages-2Mi`, ...)
/// divided by `selector.divisor` (1 when unset or zero) and rounded up. Limits the container
/// does not set (or sets to zero) for cpu, memory and ephemeral-storage read the node's
/// allocatable. `selector.containerName` names the container; when it is empty `container`
/// is used (an environment variable of that container).
pub fn resource_value(
    pod: &Pod,
    container: Option<&Container>,
    selector: &ResourceFieldSelector,
    node_allocatable: &BTreeMap<String, Quantity>,
) -> Result<String, DownwardError> {
    let named = selector.container_name.as_deref().filter(|n| !n.is_empty());
    let container = match (named, container) {
        (None, Some(c)) => c,
        (name, _) => {
            let name = name.unwrap_or_default();
            let spec = pod.spec.as_ref();
            let all = spec.into_iter().flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()));
            all.into_iter().find(|c| c.name == name).ok_or_else(|| DownwardError::ContainerNotFound(name.to_string()))?
        }
    };
    let divisor = match selector.divisor.as_ref().map(parse).transpose()? {
        Some(d) if !d.is_zero() => d,
        _ => ParsedQuantity::from_units(1),
    };
    let resources = container.resources.as_ref();
    let lookup = |list: Option<&BTreeMap<String, Quantity>>, name: &str| -> Result<ParsedQuantity, DownwardError> {
        list.and_then(|l| l.get(name)).map(parse).transpose().map(|q| q.unwrap_or(ParsedQuantity::ZERO))
    };
    let limit = |name: &str| -> Result<ParsedQuantity, DownwardError> {
        let own = lookup(resources.and_then(|r| r.limits.as_ref()), name)?;
        if !own.is_zero() {
            return Ok(own);
        }
        match node_allocatable.get(name) {
            Some(q) => parse(q),
            None => Ok(own),
        }
    };
    let request = |name: &str| lookup(resources.and_then(|r| r.requests.as_ref()), name);
    let value = match selector.resource.as_str() {
        "limits.cpu" => return Ok(ceil_div(limit("cpu")?.milli_value(), divisor.milli_value())),
        "requests.cpu" => return Ok(ceil_div(request("cpu")?.milli_value(), divisor.milli_value())),
        "limits.memory" => limit("memory")?,
        "requests.memory" => request("memory")?,
        "limits.ephemeral-storage" => limit("ephemeral-storage")?,
        "requests.ephemeral-storage" => request("ephemeral-storage")?,
        other => match (other.strip_prefix("requests."), other.strip_prefix("limits.")) {
            (Some(name), _) if name.starts_with("hugepages-") => request(name)?,
            (_, Some(name)) if name.starts_with("hugepages-") => lookup(resources.and_then(|r| r.limits.as_ref()), name)?,
            _ => return Err(DownwardError::UnsupportedResource(other.to_string())),
        },
    };
    Ok(ceil_div(value.value(), divisor.value()))
}

/// `ceil(a / b)` as upstream computes it for resource values.
fn ceil_div(a: i128, b: i128) -> String {
    if b == 0 {
        return "0".to_string();
    }
    let q = a / b;
    let up = if a % b != 0 && ((a > 0) == (b > 0)) { q + 1 } else { q };
    up.to_string()
}

/// A map as `key="value"` lines sorted by key, values quoted as Go quotes them (upstream's
/// `FormatMap`, what a labels or annotations file holds).
pub fn format_map(map: &BTreeMap<String, String>) -> String {
    map.iter().map(|(k, v)| format!("{k}={}", go_quote(v))).collect::<Vec<_>>().join("\n")
}

/// Go's `%q` (strconv.Quote), shared with the API machinery.
pub use ironkube_machinery::selectors::quote::go_quote;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u-1",
                "labels": {"app": "web", "tier": "front end"},
                "annotations": {"note": "say \"hi\"\n", "Key": "v"}},
            "spec": {"nodeName": "n1", "serviceAccountName": "robot", "containers": [
                {"name": "c", "resources": {"requests": {"cpu": "250m", "memory": "64Mi", "hugepages-2Mi": "4Mi"},
                    "limits": {"cpu": "1500m", "memory": "100M"}}},
                {"name": "bare"},
            ], "initContainers": [{"name": "init", "resources": {"limits": {"memory": "1Gi"}}}]},
        }))
        .expect("pod")
    }

    fn ctx() -> PodContext {
        PodContext {
            node_name: "n1".into(),
            host_ip: "192.168.1.5".into(),
            pod_ips: vec!["fd00::5".into(), "10.244.0.7".into()],
            node_allocatable: BTreeMap::from([
                ("cpu".to_string(), Quantity("2".into())),
                ("memory".to_string(), Quantity("8Gi".into())),
                ("ephemeral-storage".to_string(), Quantity("20G".into())),
            ]),
        }
    }

    #[test]
    fn field_refs() {
        let (pod, ctx) = (pod(), ctx());
        let sel = |path: &str| ObjectFieldSelector { api_version: None, field_path: path.into() };
        let table: &[(&str, Result<&str, &str>)] = &[
            ("metadata.name", Ok("p")),
            ("metadata.namespace", Ok("ns")),
            ("metadata.uid", Ok("u-1")),
            ("metadata.labels", Ok("app=\"web\"\ntier=\"front end\"")),
            ("metadata.annotations", Ok("Key=\"v\"\nnote=\"say \\\"hi\\\"\\n\"")),
            ("metadata.labels['app']", Ok("web")),
            ("metadata.labels['missing']", Ok("")),
            ("metadata.annotations['Key']", Ok("v")),
            ("spec.nodeName", Ok("n1")),
            ("spec.host", Ok("n1")),
            ("spec.serviceAccountName", Ok("robot")),
            ("status.hostIP", Ok("192.168.1.5")),
            ("status.hostIPs", Ok("192.168.1.5")),
            ("status.podIP", Ok("10.244.0.7")),
            ("status.podIPs", Ok("10.244.0.7,fd00::5")),
            ("metadata.labels['a b']", Err("invalid key subscript in metadata.labels['a b']: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")),
            ("metadata.name['x']", Err("field label does not support subscript: metadata.name['x']")),
            ("spec.containers", Err("field label not supported: spec.containers")),
        ];
        for (path, want) in table {
            let got = field_value(&pod, &sel(path), &ctx);
            match want {
                Ok(v) => assert_eq!(got.as_deref(), Ok(*v), "{path}"),
                Err(e) => assert_eq!(got.map_err(|e| e.to_string()), Err(e.to_string()), "{path}"),
            }
        }
        let v2 = ObjectFieldSelector { api_version: Some("v2".into()), field_path: "metadata.name".into() };
        assert_eq!(field_value(&pod, &v2, &ctx).map_err(|e| e.to_string()), Err("unsupported pod version: v2".into()));
        // Volumes read metadata only, with ExtractFieldPathAsString's own messages.
        assert_eq!(metadata_value(&pod, "spec.nodeName").map_err(|e| e.to_string()), Err("unsupported fieldPath: spec.nodeName".into()));
        assert_eq!(
            metadata_value(&pod, "metadata.uid['x']").map_err(|e| e.to_string()),
            Err("fieldPath \"metadata.uid['x']\" does not support subscript".into())
        );
    }

    #[test]
    fn resource_refs_round_up_and_default_to_allocatable() {
        let (pod, ctx) = (pod(), ctx());
        let c = &pod.spec.as_ref().expect("spec").containers[0];
        let bare = &pod.spec.as_ref().expect("spec").containers[1];
        // (the env var's container, resourceFieldRef.containerName, resource, divisor, value)
        type Case<'a> = (Option<&'a Container>, &'a str, &'a str, Option<&'a str>, Result<&'a str, &'a str>);
        let table: &[Case] = &[
            (Some(c), "", "limits.cpu", None, Ok("2")),
            (Some(c), "", "limits.cpu", Some("1m"), Ok("1500")),
            (Some(c), "", "requests.cpu", None, Ok("1")),
            (Some(c), "", "requests.cpu", Some("100m"), Ok("3")),
            (Some(c), "", "limits.memory", None, Ok("100000000")),
            (Some(c), "", "limits.memory", Some("1Mi"), Ok("96")),
            (Some(c), "", "requests.memory", Some("1Mi"), Ok("64")),
            (Some(c), "", "requests.memory", Some("0"), Ok("67108864")),
            (Some(c), "", "requests.hugepages-2Mi", Some("1Mi"), Ok("4")),
            (Some(c), "", "limits.ephemeral-storage", Some("1G"), Ok("20")),
            (Some(c), "", "requests.ephemeral-storage", None, Ok("0")),
            (Some(bare), "", "limits.cpu", None, Ok("2")),
            (Some(bare), "", "limits.memory", Some("1Gi"), Ok("8")),
            (None, "c", "limits.cpu", Some("1m"), Ok("1500")),
            (Some(bare), "init", "limits.memory", Some("1Mi"), Ok("1024")),
            (None, "nope", "limits.cpu", None, Err("container nope not found")),
            (Some(c), "", "limits.gpu", None, Err("unsupported container resource : limits.gpu")),
        ];
        for (container, name, resource, divisor, want) in table {
            let sel = ResourceFieldSelector {
                container_name: Some(name.to_string()),
                divisor: divisor.map(|d| Quantity(d.into())),
                resource: resource.to_string(),
            };
            let got = resource_value(&pod, *container, &sel, &ctx.node_allocatable).map_err(|e| e.to_string());
            assert_eq!(got, want.map(str::to_string).map_err(str::to_string), "{name} {resource} / {divisor:?}");
        }
    }

    #[test]
    fn quoting_as_go() {
        let table = [
            ("plain", "\"plain\""),
            ("a\"b\\c", "\"a\\\"b\\\\c\""),
            ("tab\tnl\n\u{1}\u{7f}", "\"tab\\tnl\\n\\x01\\x7f\""),
            ("héllo ✓", "\"héllo ✓\""),
            ("nb\u{a0}sp\u{200b}", "\"nb\\u00a0sp\\u200b\""),
        ];
        for (input, want) in table {
            assert_eq!(go_quote(input), want, "{input:?}");
        }
    }
}
