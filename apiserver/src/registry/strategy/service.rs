//! Services: defaults, the ClusterIP/ClusterIPs and type-change bookkeeping of upstream's
//! service strategy, and `ValidateService`. Allocation of cluster IPs, node ports and
//! health-check node ports (and the `ipFamilies`/`ipFamilyPolicy` it implies) is the
//! allocator's job (`service_alloc`), which runs after this strategy's validation.

use std::collections::BTreeSet;

use ironkube_machinery::field::{ErrorKind, FieldError, Path};
use ironkube_machinery::validation::core::{parse_ip_sloppy, port_num, validate_cidr, validate_ip};
use ironkube_machinery::validation::go_repr;
use ironkube_machinery::validation::labels::{validate_labels, validate_qualified_name};
use ironkube_machinery::validation::names::{dns1035_label, dns1123_label, dns1123_subdomain};
use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec, ServiceStatus};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Map, Value, json};

use super::Strategy;
use super::object::{
    child_obj, decode, default_field, default_ptr, each_obj, existing_obj, str_at,
};
use super::pod_spec::validate_int_or_string_port;

/// Default ClientIP affinity timeout (3 hours).
const DEFAULT_AFFINITY_SECONDS: i64 = 10800;
/// Longest ClientIP affinity timeout (1 day).
const MAX_AFFINITY_SECONDS: i32 = 86400;

pub struct ServiceStrategy;

impl Strategy for ServiceStrategy {
    fn validate_name(&self, name: &str) -> Vec<String> {
        dns1035_label(name)
    }

    fn default(&self, obj: &mut Value) {
        if let Some(o) = obj.as_object_mut() {
            if let Some(spec) = child_obj(o, "spec") {
                default_service_spec(spec);
            }
            let lb = o["spec"]["type"] == "LoadBalancer";
            if lb
                && let Some(status) =
                    existing_obj(o, "status").and_then(|s| existing_obj(s, "loadBalancer"))
            {
                for ing in each_obj(status, "ingress") {
                    if !str_at(&Value::Object(ing.clone()), "ip").is_empty() {
                        default_ptr(ing, "ipMode", json!("VIP"));
                    }
                }
            }
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(o) = obj.as_object_mut() {
            o.insert("status".into(), json!({"loadBalancer": {}}));
        }
        normalize_cluster_ips(obj, None);
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        patch_allocated_values(new, old);
        normalize_cluster_ips(new, Some(old));
        drop_type_dependent_fields(new, old);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        match decode::<ServiceSpec>(obj.get("spec"), "spec") {
            Ok(spec) => validate_service(obj, &spec),
            Err(e) => vec![e],
        }
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let (n, o) = match (
            decode::<ServiceSpec>(new.get("spec"), "spec"),
            decode::<ServiceSpec>(old.get("spec"), "spec"),
        ) {
            (Ok(n), Ok(o)) => (n, o),
            (Err(e), _) | (_, Err(e)) => return vec![e],
        };
        let mut errs = validate_cluster_ips_update(&o, &n);
        errs.extend(validate_ip_families_update(&o, &n));
        errs.extend(validate_load_balancer_class(Some(&o), &n));
        if needs_health_check(&o)
            && needs_health_check(&n)
            && o.health_check_node_port != n.health_check_node_port
        {
            errs.push(FieldError::forbidden(
                Path::new("spec").child("healthCheckNodePort"),
                "field is immutable",
            ));
        }
        errs.extend(validate_service(new, &n));
        errs
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> Vec<FieldError> {
        let spec: ServiceSpec = decode(new.get("spec"), "spec").unwrap_or_default();
        let status: ServiceStatus = match decode(new.get("status"), "status") {
            Ok(s) => s,
            Err(e) => return vec![e],
        };
        let p = Path::new("status").child("loadBalancer").child("ingress");
        let mut errs = Vec::new();
        let ingress = status
            .load_balancer
            .and_then(|lb| lb.ingress)
            .unwrap_or_default();
        // AllowServiceLBStatusOnNonLB is off by default in v1.33.
        if spec.type_.as_deref() != Some("LoadBalancer") && !ingress.is_empty() {
            return vec![FieldError::forbidden(
                p,
                "may only be used when `spec.type` is 'LoadBalancer'",
            )];
        }
        for (i, ing) in ingress.iter().enumerate() {
            let ip = ing.ip.as_deref().unwrap_or("");
            if !ip.is_empty() {
                errs.extend(validate_ip(ip, &p.index(i).child("ip")));
            }
            match (&ing.ip_mode, ip.is_empty()) {
                (None, false) => errs.push(FieldError::required(
                    p.index(i).child("ipMode"),
                    "must be specified when `ip` is set",
                )),
                (Some(_), true) => errs.push(FieldError::forbidden(
                    p.index(i).child("ipMode"),
                    "may not be specified when `ip` is not set",
                )),
                (Some(m), false) if m != "VIP" && m != "Proxy" => {
                    errs.push(FieldError::not_supported(
                        p.index(i).child("ipMode"),
                        m.as_str().into(),
                        &["Proxy", "VIP"],
                    ))
                }
                _ => {}
            }
            let host = ing.hostname.as_deref().unwrap_or("");
            if !host.is_empty() {
                for m in dns1123_subdomain(host) {
                    errs.push(FieldError::invalid(
                        p.index(i).child("hostname"),
                        host.into(),
                        m,
                    ));
                }
                if parse_ip_sloppy(host).is_some() {
                    errs.push(FieldError::invalid(
                        p.index(i).child("hostname"),
                        host.into(),
                        "must be a DNS name, not an IP address",
                    ));
                }
            }
        }
        errs
    }

    fn field_labels(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        vec![
            ("spec.clusterIP", str_at(spec, "clusterIP").to_string()),
            ("spec.type", str_at(spec, "type").to_string()),
        ]
    }

    fn return_deleted_object(&self) -> bool {
        true
    }
}

fn externally_accessible(spec: &Map<String, Value>) -> bool {
    let ty = spec.get("type").and_then(Value::as_str).unwrap_or("");
    ty == "LoadBalancer"
        || ty == "NodePort"
        || (ty == "ClusterIP"
            && spec
                .get("externalIPs")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty()))
}

/// `SetDefaults_Service` (spec part).
fn default_service_spec(spec: &mut Map<String, Value>) {
    default_field(spec, "sessionAffinity", json!("None"));
    match spec.get("sessionAffinity").and_then(Value::as_str) {
        Some("None") => {
            spec.remove("sessionAffinityConfig");
        }
        Some("ClientIP") => {
            let has_timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.get("clientIP"))
                .and_then(|c| c.get("timeoutSeconds"))
                .is_some_and(|t| !t.is_null());
            if !has_timeout {
                spec.insert(
                    "sessionAffinityConfig".into(),
                    json!({"clientIP": {"timeoutSeconds": DEFAULT_AFFINITY_SECONDS}}),
                );
            }
        }
        _ => {}
    }
    default_field(spec, "type", json!("ClusterIP"));
    for p in each_obj(spec, "ports") {
        default_field(p, "protocol", json!("TCP"));
        if super::object::is_unset(p.get("targetPort")) {
            let port = p.get("port").cloned().unwrap_or(json!(0));
            p.insert("targetPort".into(), port);
        }
    }
    if externally_accessible(spec) {
        default_field(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if ty == "NodePort" || ty == "LoadBalancer" || ty == "ClusterIP" {
        default_ptr(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        default_ptr(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    // ipFamilyPolicy (SingleStack) and ipFamilies are defaulted by the allocator, which
    // knows the cluster's service CIDRs.
}

fn ips(spec: &Value) -> Vec<String> {
    spec.get("clusterIPs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `NormalizeClusterIPs`: keeps `clusterIP` and `clusterIPs` in step for clients that only
/// know the singular field.
fn normalize_cluster_ips(new: &mut Value, old: Option<&Value>) {
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let cluster_ip = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let new_ips = ips(&Value::Object(spec.clone()));
    let Some(old) = old else {
        if !cluster_ip.is_empty() && new_ips.is_empty() {
            spec.insert("clusterIPs".into(), json!([cluster_ip]));
        }
        return;
    };
    let old_spec = old.get("spec").unwrap_or(&Value::Null);
    let old_ip = str_at(old_spec, "clusterIP");
    let old_ips = ips(old_spec);
    if !old_ips.is_empty() && new_ips.is_empty() && old_ip == cluster_ip {
        spec.insert("clusterIPs".into(), json!(old_ips));
    }
    let current_ips = ips(&Value::Object(spec.clone()));
    if old_ip != cluster_ip {
        if !old_ip.is_empty() && cluster_ip.is_empty() && current_ips == old_ips {
            spec.remove("clusterIPs");
        }
        if !cluster_ip.is_empty() && current_ips == old_ips {
            spec.insert("clusterIPs".into(), json!([cluster_ip]));
        }
    }
}

fn service_type(spec: &Value) -> &str {
    str_at(spec, "type")
}

fn needs_node_port_json(spec: &Value) -> bool {
    matches!(service_type(spec), "NodePort" | "LoadBalancer")
}

fn needs_hc_node_port_json(spec: &Value) -> bool {
    service_type(spec) == "LoadBalancer" && str_at(spec, "externalTrafficPolicy") == "Local"
}

/// `patchAllocatedValues`: an update that leaves allocated values out keeps the old ones.
fn patch_allocated_values(new: &mut Value, old: &Value) {
    let old_spec = old.get("spec").cloned().unwrap_or(Value::Null);
    let Some(spec) = new.get_mut("spec") else {
        return;
    };
    let needs_ip = |s: &Value| service_type(s) != "ExternalName";
    if needs_ip(&old_spec) && needs_ip(spec) {
        if str_at(spec, "clusterIP").is_empty() && !str_at(&old_spec, "clusterIP").is_empty() {
            super::object::set(spec, "clusterIP", old_spec["clusterIP"].clone());
        }
        if ips(spec).is_empty() && !ips(&old_spec).is_empty() {
            super::object::set(spec, "clusterIPs", old_spec["clusterIPs"].clone());
        }
    }
    if needs_node_port_json(&old_spec) && needs_node_port_json(spec) {
        let used_ports = |s: &Value| -> BTreeSet<i64> {
            s.get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| p.get("nodePort").and_then(Value::as_i64))
                .filter(|n| *n != 0)
                .collect()
        };
        let used: BTreeSet<i64> = used_ports(&old_spec)
            .intersection(&used_ports(spec))
            .copied()
            .collect();
        let by_name: std::collections::BTreeMap<String, i64> = old_spec
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    str_at(p, "name").to_string(),
                    p.get("nodePort").and_then(Value::as_i64).unwrap_or(0),
                )
            })
            .collect();
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports {
                if p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) == 0 {
                    let old_val = by_name.get(str_at(p, "name")).copied().unwrap_or(0);
                    if old_val != 0 && !used.contains(&old_val) {
                        super::object::set(p, "nodePort", json!(old_val));
                    }
                }
            }
        }
    }
    if needs_hc_node_port_json(&old_spec)
        && needs_hc_node_port_json(spec)
        && spec
            .get("healthCheckNodePort")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            == 0
        && let Some(hc) = old_spec.get("healthCheckNodePort")
    {
        super::object::set(spec, "healthCheckNodePort", hc.clone());
    }
}

/// `dropTypeDependentFields`: a type change clears what the old type had set (when the
/// user did not also change it).
fn drop_type_dependent_fields(new: &mut Value, old: &Value) {
    let old_spec = old.get("spec").cloned().unwrap_or(Value::Null);
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let new_spec_view = Value::Object(spec.clone());
    let same = |k: &str| old_spec.get(k) == new_spec_view.get(k);
    let needs_ip = |s: &Value| service_type(s) != "ExternalName";
    if needs_ip(&old_spec) && !needs_ip(&new_spec_view) {
        if same("clusterIPs") {
            spec.remove("clusterIP");
            spec.remove("clusterIPs");
        }
        if same("ipFamilies") {
            spec.remove("ipFamilies");
        }
        if same("ipFamilyPolicy") {
            spec.remove("ipFamilyPolicy");
        }
    }
    if needs_node_port_json(&old_spec) && !needs_node_port_json(&new_spec_view) {
        let node_ports = |s: &Value| -> Vec<i64> {
            s.get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| p.get("nodePort").and_then(Value::as_i64).unwrap_or(0))
                .collect()
        };
        if node_ports(&old_spec) == node_ports(&new_spec_view)
            && let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut)
        {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                p.remove("nodePort");
            }
        }
        if same("externalTrafficPolicy") {
            spec.remove("externalTrafficPolicy");
        }
    }
    let was_lb = service_type(&old_spec) == "LoadBalancer";
    let is_lb = service_type(&new_spec_view) == "LoadBalancer";
    if was_lb && !is_lb {
        if same("allocateLoadBalancerNodePorts") {
            spec.remove("allocateLoadBalancerNodePorts");
        }
        if same("loadBalancerClass") {
            spec.remove("loadBalancerClass");
        }
    }
    if needs_hc_node_port_json(&old_spec)
        && !needs_hc_node_port_json(&new_spec_view)
        && same("healthCheckNodePort")
    {
        spec.remove("healthCheckNodePort");
    }
    let old_ext = old_spec.as_object().is_some_and(externally_accessible);
    if old_ext
        && !new_spec_view.as_object().is_some_and(externally_accessible)
        && same("externalTrafficPolicy")
    {
        spec.remove("externalTrafficPolicy");
    }
    if !is_lb && let Some(status) = new.get_mut("status").and_then(Value::as_object_mut) {
        status.insert("loadBalancer".into(), json!({}));
    }
}

fn is_headless(spec: &ServiceSpec) -> bool {
    spec.cluster_ips.as_deref() == Some(&["None".to_string()])
}

fn spec_type(spec: &ServiceSpec) -> &str {
    spec.type_.as_deref().unwrap_or("")
}

fn externally_accessible_typed(spec: &ServiceSpec) -> bool {
    let ty = spec_type(spec);
    ty == "LoadBalancer"
        || ty == "NodePort"
        || (ty == "ClusterIP" && spec.external_ips.as_ref().is_some_and(|e| !e.is_empty()))
}

fn needs_health_check(spec: &ServiceSpec) -> bool {
    spec_type(spec) == "LoadBalancer" && spec.external_traffic_policy.as_deref() == Some("Local")
}

/// `core.ServicePort{...}` with only protocol and port set, as upstream's duplicate-port
/// error prints its map key.
fn service_port_key_repr(protocol: &str, port: i32) -> String {
    format!(
        "core.ServicePort{{Name:\"\", Protocol:{protocol:?}, AppProtocol:(*string)(nil), Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}"
    )
}

/// `ValidateService` without the object-meta checks.
fn validate_service(obj: &Value, spec: &ServiceSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let annotations = obj["metadata"]
        .get("annotations")
        .cloned()
        .unwrap_or(Value::Null);
    let hints = annotations
        .get("service.kubernetes.io/topology-aware-hints")
        .and_then(Value::as_str);
    let mode = annotations
        .get("service.kubernetes.io/topology-mode")
        .and_then(Value::as_str);
    if let (Some(h), Some(m)) = (hints, mode)
        && h != m
    {
        errs.push(FieldError::invalid(
            Path::new("metadata").child("annotations").key("service.kubernetes.io/topology-mode"),
            m.into(),
            "must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified",
        ));
    }
    let path = Path::new("spec");
    let ports: Vec<ServicePort> = spec.ports.clone().unwrap_or_default();
    let ty = spec_type(spec);
    let headless = is_headless(spec);
    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(FieldError::required(path.child("ports"), ""));
    }
    let cluster_ips = spec.cluster_ips.clone().unwrap_or_default();
    match ty {
        "LoadBalancer" | "NodePort" if headless => errs.push(FieldError::invalid(
            path.child("clusterIPs").index(0),
            cluster_ips[0].as_str().into(),
            format!("may not be set to 'None' for {ty} services"),
        )),
        "ExternalName" => {
            if !cluster_ips.is_empty() {
                errs.push(FieldError::forbidden(
                    path.child("clusterIPs"),
                    "may not be set for ExternalName services",
                ));
            }
            if spec.ip_families.as_ref().is_some_and(|f| !f.is_empty()) {
                errs.push(FieldError::forbidden(
                    path.child("ipFamilies"),
                    "may not be set for ExternalName services",
                ));
            }
            if spec.ip_family_policy.is_some() {
                errs.push(FieldError::forbidden(
                    path.child("ipFamilyPolicy"),
                    "may not be set for ExternalName services",
                ));
            }
            let name = spec.external_name.as_deref().unwrap_or("");
            let cname = name.strip_suffix('.').unwrap_or(name);
            if cname.is_empty() {
                errs.push(FieldError::required(path.child("externalName"), ""));
            } else {
                for m in dns1123_subdomain(cname) {
                    errs.push(FieldError::invalid(
                        path.child("externalName"),
                        cname.into(),
                        m,
                    ));
                }
            }
        }
        _ => {}
    }
    let mut names = BTreeSet::new();
    for (i, sp) in ports.iter().enumerate() {
        let p = path.child("ports").index(i);
        let name = sp.name.as_deref().unwrap_or("");
        if ports.len() > 1 && name.is_empty() {
            errs.push(FieldError::required(p.child("name"), ""));
        } else if !name.is_empty() {
            for m in dns1123_label(name) {
                errs.push(FieldError::invalid(p.child("name"), name.into(), m));
            }
            if !names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(p.child("name"), name.into()));
            }
        }
        for m in port_num(i64::from(sp.port)) {
            errs.push(FieldError::invalid(p.child("port"), sp.port.into(), m));
        }
        let protocol = sp.protocol.as_deref().unwrap_or("");
        if protocol.is_empty() {
            errs.push(FieldError::required(p.child("protocol"), ""));
        } else if !["SCTP", "TCP", "UDP"].contains(&protocol) {
            errs.push(FieldError::not_supported(
                p.child("protocol"),
                protocol.into(),
                &["SCTP", "TCP", "UDP"],
            ));
        }
        let target = sp.target_port.clone().unwrap_or(IntOrString::Int(0));
        errs.extend(validate_int_or_string_port(&target, &p.child("targetPort")));
        if let Some(ap) = &sp.app_protocol {
            errs.extend(validate_qualified_name(ap, &p.child("appProtocol")));
        }
    }
    if let Some(sel) = &spec.selector {
        errs.extend(validate_labels(sel, &path.child("selector")));
    }
    let affinity = spec.session_affinity.as_deref().unwrap_or("");
    match affinity {
        "" => errs.push(FieldError::required(path.child("sessionAffinity"), "")),
        "ClientIP" | "None" => {}
        other => errs.push(FieldError::not_supported(
            path.child("sessionAffinity"),
            other.into(),
            &["ClientIP", "None"],
        )),
    }
    let sac = path.child("sessionAffinityConfig");
    if affinity == "ClientIP" {
        match spec
            .session_affinity_config
            .as_ref()
            .map(|c| c.client_ip.as_ref())
        {
            None => errs.push(FieldError::required(
                &sac,
                "when session affinity type is ClientIP",
            )),
            Some(None) => errs.push(FieldError::required(
                sac.child("clientIP"),
                "when session affinity type is ClientIP",
            )),
            Some(Some(c)) => match c.timeout_seconds {
                None => errs.push(FieldError::required(
                    sac.child("clientIP").child("timeoutSeconds"),
                    "when session affinity type is ClientIP",
                )),
                Some(t) if t <= 0 || t > MAX_AFFINITY_SECONDS => errs.push(FieldError::invalid(
                    sac.child("clientIP").child("timeoutSeconds"),
                    t.into(),
                    format!("must be greater than 0 and less than {MAX_AFFINITY_SECONDS}"),
                )),
                _ => {}
            },
        }
    } else if affinity == "None" && spec.session_affinity_config.is_some() {
        errs.push(FieldError::forbidden(
            &sac,
            "must not be set when session affinity is None",
        ));
    }
    errs.extend(validate_cluster_ips_related(spec));
    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        let p = path.child("externalIPs").index(i);
        let e = validate_ip(ip, &p);
        if e.is_empty() {
            errs.extend(validate_non_special_ip(ip, &p));
        } else {
            errs.extend(e);
        }
    }
    match ty {
        "" => errs.push(FieldError::required(path.child("type"), "")),
        "ClusterIP" | "ExternalName" | "LoadBalancer" | "NodePort" => {}
        other => errs.push(FieldError::not_supported(
            path.child("type"),
            other.into(),
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        )),
    }
    if ty == "ClusterIP" {
        for (i, sp) in ports.iter().enumerate() {
            if sp.node_port.unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    path.child("ports").index(i).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = BTreeSet::new();
    for (i, sp) in ports.iter().enumerate() {
        let np = sp.node_port.unwrap_or(0);
        if np == 0 {
            continue;
        }
        if !node_ports.insert((sp.protocol.clone().unwrap_or_default(), np)) {
            errs.push(FieldError::duplicate(
                path.child("ports").index(i).child("nodePort"),
                np.into(),
            ));
        }
    }
    let mut keys = BTreeSet::new();
    for (i, sp) in ports.iter().enumerate() {
        let protocol = sp.protocol.clone().unwrap_or_default();
        if !keys.insert((protocol.clone(), sp.port)) {
            errs.push(go_repr::error_with_repr(
                ErrorKind::Duplicate,
                path.child("ports").index(i),
                &service_port_key_repr(&protocol, sp.port),
                "",
            ));
        }
    }
    let ranges = spec.load_balancer_source_ranges.clone().unwrap_or_default();
    if !ranges.is_empty() {
        let p = path.child("LoadBalancerSourceRanges");
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                &p,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        for (i, r) in ranges.iter().enumerate() {
            errs.extend(validate_cidr(r.trim(), &p.index(i)));
        }
    } else if let Some(val) = annotations
        .get("service.beta.kubernetes.io/load-balancer-source-ranges")
        .and_then(Value::as_str)
    {
        let p = Path::new("metadata")
            .child("annotations")
            .key("service.beta.kubernetes.io/load-balancer-source-ranges");
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                &p,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        let val = val.trim();
        if !val.is_empty() {
            for r in val.split(',') {
                errs.extend(validate_cidr(r.trim(), &p));
            }
        }
    }
    if spec.allocate_load_balancer_node_ports.is_some() && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            path.child("allocateLoadBalancerNodePorts"),
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if ty == "LoadBalancer" && spec.allocate_load_balancer_node_ports.is_none() {
        errs.push(FieldError::required(
            Path::new("allocateLoadBalancerNodePorts"),
            "",
        ));
    }
    errs.extend(validate_load_balancer_class(None, spec));
    let etp = spec.external_traffic_policy.as_deref().unwrap_or("");
    if !externally_accessible_typed(spec) {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                path.child("externalTrafficPolicy"),
                etp.into(),
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(FieldError::required(
            path.child("externalTrafficPolicy"),
            "",
        ));
    } else if etp != "Cluster" && etp != "Local" {
        errs.push(FieldError::not_supported(
            path.child("externalTrafficPolicy"),
            etp.into(),
            &["Cluster", "Local"],
        ));
    }
    let hc = spec.health_check_node_port.unwrap_or(0);
    if !needs_health_check(spec) {
        if hc != 0 {
            errs.push(FieldError::invalid(
                path.child("healthCheckNodePort"),
                hc.into(),
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else if hc != 0 {
        // Zero is allowed here: the allocator assigns the port after validation.
        for m in port_num(i64::from(hc)) {
            errs.push(FieldError::invalid(
                path.child("healthCheckNodePort"),
                hc.into(),
                m,
            ));
        }
    }
    match spec.internal_traffic_policy.as_deref() {
        None if matches!(ty, "NodePort" | "LoadBalancer" | "ClusterIP") => errs.push(
            FieldError::required(path.child("internalTrafficPolicy"), ""),
        ),
        Some(p) if p != "Cluster" && p != "Local" => errs.push(FieldError::not_supported(
            path.child("internalTrafficPolicy"),
            p.into(),
            &["Cluster", "Local"],
        )),
        _ => {}
    }
    if let Some(td) = &spec.traffic_distribution
        && td != "PreferClose"
    {
        errs.push(FieldError::not_supported(
            path.child("trafficDistribution"),
            td.as_str().into(),
            &["PreferClose"],
        ));
    }
    errs
}

/// `ValidateNonSpecialIP`.
fn validate_non_special_ip(ip: &str, path: &Path) -> Vec<FieldError> {
    let Some(addr) = parse_ip_sloppy(ip) else {
        return vec![FieldError::invalid(
            path,
            ip.into(),
            "must be a valid IP address",
        )];
    };
    let mut errs = Vec::new();
    if addr.is_unspecified() {
        errs.push(FieldError::invalid(
            path,
            ip.into(),
            format!("may not be unspecified ({ip})"),
        ));
    }
    if addr.is_loopback() {
        errs.push(FieldError::invalid(
            path,
            ip.into(),
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    let link_local_unicast = match addr {
        std::net::IpAddr::V4(v4) => v4.is_link_local(),
        std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    if link_local_unicast {
        errs.push(FieldError::invalid(
            path,
            ip.into(),
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    let link_local_multicast = match addr {
        std::net::IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xff0f) == 0xff02,
    };
    if link_local_multicast {
        errs.push(FieldError::invalid(
            path,
            ip.into(),
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
    errs
}

/// `ValidateServiceClusterIPsRelatedFields`.
fn validate_cluster_ips_related(spec: &ServiceSpec) -> Vec<FieldError> {
    if spec_type(spec) == "ExternalName" {
        return Vec::new();
    }
    let mut errs = Vec::new();
    let path = Path::new("spec");
    let ips_path = path.child("clusterIPs");
    let cluster_ip = spec.cluster_ip.as_deref().unwrap_or("");
    let ips = spec.cluster_ips.clone().unwrap_or_default();
    let ips_repr = go_repr::string_slice(Some(&ips));
    if !cluster_ip.is_empty() {
        if ips.is_empty() {
            errs.push(FieldError::required(&ips_path, ""));
        } else if ips[0] != cluster_ip {
            errs.push(go_repr::invalid_repr(
                &ips_path,
                &ips_repr,
                "first value must match `clusterIP`",
            ));
        }
    } else if !ips.is_empty() {
        errs.push(go_repr::invalid_repr(
            &ips_path,
            &ips_repr,
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, f) in spec.ip_families.iter().flatten().enumerate() {
        if f != "IPv4" && f != "IPv6" {
            errs.push(FieldError::not_supported(
                path.child("ipFamilies").index(i),
                f.as_str().into(),
                &["IPv4", "IPv6"],
            ));
        }
        if !seen.insert(f.clone()) {
            errs.push(FieldError::duplicate(
                path.child("ipFamilies").index(i),
                f.as_str().into(),
            ));
        }
    }
    if let Some(p) = &spec.ip_family_policy
        && !["PreferDualStack", "RequireDualStack", "SingleStack"].contains(&p.as_str())
    {
        errs.push(FieldError::not_supported(
            path.child("ipFamilyPolicy"),
            p.as_str().into(),
            &["PreferDualStack", "RequireDualStack", "SingleStack"],
        ));
    }
    let mut invalid = false;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == "None" {
            if ips.len() > 1 {
                invalid = true;
                errs.push(go_repr::invalid_repr(
                    &ips_path,
                    &ips_repr,
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        let e = validate_ip(ip, &ips_path.index(i));
        invalid |= !e.is_empty();
        errs.extend(e);
    }
    if ips.len() > 2 {
        errs.push(go_repr::invalid_repr(
            &ips_path,
            &ips_repr,
            "may only hold up to 2 values",
        ));
    }
    if invalid {
        return errs;
    }
    if ips.len() > 1 {
        let parsed: Vec<_> = ips.iter().filter_map(|ip| parse_ip_sloppy(ip)).collect();
        let dual = parsed.len() == 2 && parsed[0].is_ipv4() != parsed[1].is_ipv4();
        if !dual {
            errs.push(go_repr::invalid_repr(
                &ips_path,
                &ips_repr,
                "may specify no more than one IP for each IP family",
            ));
        }
    }
    let families = spec.ip_families.clone().unwrap_or_default();
    if !is_headless(spec) {
        for (i, ip) in ips.iter().enumerate().take(families.len()) {
            let v6 = parse_ip_sloppy(ip).is_some_and(|a| a.is_ipv6());
            if families[i] == "IPv4" && v6 {
                errs.push(FieldError::invalid(
                    ips_path.index(i),
                    ip.as_str().into(),
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if families[i] == "IPv6" && !v6 {
                errs.push(FieldError::invalid(
                    ips_path.index(i),
                    ip.as_str().into(),
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
    errs
}

fn validate_cluster_ips_update(old: &ServiceSpec, new: &ServiceSpec) -> Vec<FieldError> {
    if spec_type(new) == "ExternalName"
        || spec_type(old) == "ExternalName"
        || (is_headless(old) && is_headless(new))
    {
        return Vec::new();
    }
    let (o, n) = (
        old.cluster_ips.clone().unwrap_or_default(),
        new.cluster_ips.clone().unwrap_or_default(),
    );
    let p = Path::new("spec").child("clusterIPs");
    let repr = go_repr::string_slice(Some(&n));
    let mut errs = Vec::new();
    if o.len() == n.len() {
        for (i, ip) in o.iter().enumerate() {
            if ip != &n[i] {
                errs.push(go_repr::invalid_repr(
                    p.index(i),
                    &repr,
                    "may not change once set",
                ));
            }
        }
    } else if o.len() > n.len() {
        if n.is_empty() {
            errs.push(go_repr::invalid_repr(
                p.index(0),
                &repr,
                "primary clusterIP can not be unset",
            ));
        }
        if !o.is_empty() && !n.is_empty() && n[0] != o[0] {
            errs.push(go_repr::invalid_repr(
                p.index(0),
                &repr,
                "may not change once set",
            ));
        }
        if n.len() == 1 && new.ip_family_policy.as_deref() != Some("SingleStack") {
            errs.push(FieldError::invalid(
                Path::new("spec").child("ipFamilyPolicy"),
                new.ip_family_policy
                    .clone()
                    .map(Value::String)
                    .unwrap_or(Value::Null),
                "must be set to 'SingleStack' when releasing the secondary clusterIP",
            ));
        }
    } else if !o.is_empty() && n[0] != o[0] {
        errs.push(go_repr::invalid_repr(
            p.index(0),
            &repr,
            "may not change once set",
        ));
    }
    errs
}

fn validate_ip_families_update(old: &ServiceSpec, new: &ServiceSpec) -> Vec<FieldError> {
    if spec_type(new) == "ExternalName"
        || spec_type(old) == "ExternalName"
        || is_headless(old)
        || is_headless(new)
    {
        return Vec::new();
    }
    let (o, n) = (
        old.ip_families.clone().unwrap_or_default(),
        new.ip_families.clone().unwrap_or_default(),
    );
    let p = Path::new("spec").child("ipFamilies").index(0);
    let repr = go_repr::string_slice(Some(&n));
    let ips_repr = go_repr::string_slice(new.cluster_ips.as_deref());
    let mut errs = Vec::new();
    if o.len() == n.len() {
        for (i, f) in o.iter().enumerate() {
            if f != &n[i] {
                errs.push(go_repr::invalid_repr(&p, &repr, "may not change once set"));
            }
        }
    } else if o.len() > n.len() {
        if new.cluster_ips.as_ref().is_none_or(Vec::is_empty) {
            errs.push(go_repr::invalid_repr(
                &p,
                &repr,
                "primary ipFamily can not be unset",
            ));
        }
        if !n.is_empty() && n[0] != o[0] {
            errs.push(go_repr::invalid_repr(
                &p,
                &ips_repr,
                "may not change once set",
            ));
        }
        if n.len() == 1 && new.ip_family_policy.as_deref() != Some("SingleStack") {
            errs.push(FieldError::invalid(
                Path::new("spec").child("ipFamilyPolicy"),
                new.ip_family_policy
                    .clone()
                    .map(Value::String)
                    .unwrap_or(Value::Null),
                "must be set to 'SingleStack' when releasing the secondary ipFamily",
            ));
        }
    } else if !o.is_empty() && !n.is_empty() && n[0] != o[0] {
        errs.push(go_repr::invalid_repr(
            &p,
            &ips_repr,
            "may not change once set",
        ));
    }
    errs
}

fn validate_load_balancer_class(old: Option<&ServiceSpec>, new: &ServiceSpec) -> Vec<FieldError> {
    let p = Path::new("spec").child("loadBalancerClass");
    let mut errs = Vec::new();
    if let Some(o) = old
        && spec_type(o) == "LoadBalancer"
        && spec_type(new) == "LoadBalancer"
        && o.load_balancer_class != new.load_balancer_class
    {
        errs.push(FieldError::invalid(
            &p,
            new.load_balancer_class
                .clone()
                .map(Value::String)
                .unwrap_or(Value::Null),
            "may not change once set",
        ));
    }
    if spec_type(new) == "LoadBalancer" {
        if let Some(c) = &new.load_balancer_class {
            errs.extend(validate_qualified_name(c, &p));
        }
    } else if new.load_balancer_class.is_some() {
        errs.push(FieldError::forbidden(
            &p,
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"}, "spec": spec})
    }

    fn created(spec: Value) -> Value {
        let mut s = service(spec);
        ServiceStrategy.default(&mut s);
        ServiceStrategy.prepare_for_create(&mut s);
        s
    }

    #[test]
    fn defaults() {
        let s = created(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}));
        assert_eq!(
            s["spec"],
            json!({
                "selector": {"app": "web"},
                "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
                "sessionAffinity": "None",
                "type": "ClusterIP",
                "internalTrafficPolicy": "Cluster"
            })
        );
        assert_eq!(s["status"], json!({"loadBalancer": {}}));
        assert!(ServiceStrategy.validate(&s).is_empty());
        let lb = created(
            json!({"type": "LoadBalancer", "ports": [{"port": 443, "targetPort": "https"}]}),
        );
        assert_eq!(lb["spec"]["externalTrafficPolicy"], json!("Cluster"));
        assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], json!(true));
        assert_eq!(lb["spec"]["ports"][0]["targetPort"], json!("https"));
        let sticky = created(json!({"sessionAffinity": "ClientIP", "ports": [{"port": 80}]}));
        assert_eq!(
            sticky["spec"]["sessionAffinityConfig"],
            json!({"clientIP": {"timeoutSeconds": 10800}})
        );
    }

    #[test]
    fn errors() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (json!({}), vec!["spec.ports: Required value"]),
            (json!({"clusterIP": "None"}), vec![]),
            (
                json!({"ports": [{"port": 80}, {"port": 81}]}),
                vec![
                    "spec.ports[0].name: Required value",
                    "spec.ports[1].name: Required value",
                ],
            ),
            (
                json!({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]}),
                vec![
                    "spec.ports[1]: Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}",
                ],
            ),
            (
                json!({"type": "Cluster", "ports": [{"port": 80}]}),
                vec![
                    "spec.type: Unsupported value: \"Cluster\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
                ],
            ),
            (
                json!({"ports": [{"port": 80, "nodePort": 30080}]}),
                vec![
                    "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
                ],
            ),
            (
                json!({"type": "ExternalName"}),
                vec!["spec.externalName: Required value"],
            ),
            (
                json!({"ports": [{"port": 0}]}),
                vec![
                    "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                    "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
                ],
            ),
        ];
        for (spec, want) in cases {
            let s = created(spec.clone());
            let errs: Vec<String> = ServiceStrategy
                .validate(&s)
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(errs, want, "{spec}");
        }
    }

    #[test]
    fn name_is_a_dns1035_label() {
        assert!(!ServiceStrategy.validate_name("1web").is_empty());
        assert!(ServiceStrategy.validate_name("web").is_empty());
    }

    #[test]
    fn update_keeps_allocations_and_type_changes_drop_them() {
        let mut old = created(json!({"type": "NodePort", "ports": [{"name": "http", "port": 80}]}));
        old["spec"]["clusterIP"] = json!("10.96.0.10");
        old["spec"]["clusterIPs"] = json!(["10.96.0.10"]);
        old["spec"]["ports"][0]["nodePort"] = json!(30080);
        let mut new = service(json!({"type": "NodePort", "ports": [{"name": "http", "port": 80}]}));
        ServiceStrategy.default(&mut new);
        ServiceStrategy.prepare_for_update(&mut new, &old);
        assert_eq!(new["spec"]["clusterIP"], json!("10.96.0.10"));
        assert_eq!(new["spec"]["clusterIPs"], json!(["10.96.0.10"]));
        assert_eq!(new["spec"]["ports"][0]["nodePort"], json!(30080));
        let mut to_cluster_ip = old.clone();
        to_cluster_ip["spec"]["type"] = json!("ClusterIP");
        ServiceStrategy.prepare_for_update(&mut to_cluster_ip, &old);
        assert!(to_cluster_ip["spec"]["ports"][0].get("nodePort").is_none());
        assert!(to_cluster_ip["spec"].get("externalTrafficPolicy").is_none());
        let mut changed = old.clone();
        changed["spec"]["clusterIP"] = json!("10.96.0.11");
        changed["spec"]["clusterIPs"] = json!(["10.96.0.11"]);
        let errs: Vec<String> = ServiceStrategy
            .validate_update(&changed, &old)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "spec.clusterIPs[0]: Invalid value: []string{\"10.96.0.11\"}: may not change once set"
            ]
        );
    }
}
