//! `networking.k8s.io/v1` (ingresses, ingress classes, network policies, IP addresses,
//! service CIDRs) and `discovery.k8s.io/v1` endpoint slices.

use jiff::Timestamp;
use serde_json::Value;

use super::core::load_balancer_ingress;
use super::docs::*;
use super::view::View;
use super::{Column, Table, age, format, name};

pub static INGRESS: Table = Table::new(
    &[
        Column::NAME,
        Column::string(
            "Class",
            "The name of the IngressClass resource that should be used for additional configuration",
        ),
        Column::string(
            "Hosts",
            "Hosts that incoming requests are matched against before the ingress rule",
        ),
        Column::string(
            "Address",
            "Address is a list containing ingress points for the load-balancer",
        ),
        Column::string("Ports", "Ports of TLS configurations that open"),
        Column::AGE,
    ],
    |ing, now| {
        let spec = ing.at("spec");
        let ports = if spec.at("tls").is_empty() {
            "80"
        } else {
            "80, 443"
        };
        vec![
            name(ing),
            spec.at("ingressClassName")
                .opt_str()
                .unwrap_or("<none>")
                .into(),
            hosts(spec.at("rules")).into(),
            load_balancer_ingress(ing.path(&["status", "loadBalancer", "ingress"])).into(),
            ports.into(),
            age(ing, now),
        ]
    },
);

/// Upstream's `formatHosts`: up to three hosts, then `+ N more...` where N counts every
/// further rule (with a host or not); `*` when no rule names a host.
fn hosts(rules: View<'_>) -> String {
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules.items() {
        if list.len() == MAX {
            more = true;
        }
        let host = rule.at("host").str();
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".into();
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", rules.len() - MAX)
    } else {
        joined
    }
}

pub static INGRESS_CLASS: Table = Table::new(
    &[
        Column::NAME,
        Column::string(
            "Controller",
            "Controller that is responsible for handling this class",
        ),
        Column::string(
            "Parameters",
            "A reference to a resource with additional parameters",
        ),
        Column::AGE,
    ],
    |class, now| {
        let spec = class.at("spec");
        let params = spec.at("parameters");
        let parameters = if params.is_set() {
            let kind = params.at("kind").str();
            let group = params
                .at("apiGroup")
                .opt_str()
                .map(|g| format!(".{g}"))
                .unwrap_or_default();
            format!("{kind}{group}/{}", params.at("name").str())
        } else {
            "<none>".into()
        };
        vec![
            name(class),
            spec.at("controller").str().into(),
            parameters.into(),
            age(class, now),
        ]
    },
);

pub static NETWORK_POLICY: Table = Table::new(
    &[
        Column::NAME,
        Column::string("Pod-Selector", NETWORK_POLICY_SPEC_POD_SELECTOR),
        Column::AGE,
    ],
    |np, now| {
        // The pod selector is a struct, never nil: a missing one is the empty selector.
        let selector = np.path(&["spec", "podSelector"]);
        let selector = if selector.is_set() {
            format::label_selector(selector)
        } else {
            "<none>".into()
        };
        vec![name(np), selector.into(), age(np, now)]
    },
);

pub static ENDPOINT_SLICE: Table = Table::new(
    &[
        Column::NAME,
        Column::string("AddressType", ENDPOINT_SLICE_ADDRESS_TYPE),
        Column::string("Ports", ENDPOINT_SLICE_PORTS),
        Column::string("Endpoints", ENDPOINT_SLICE_ENDPOINTS),
        Column::AGE,
    ],
    |slice, now| {
        vec![
            name(slice),
            slice.at("addressType").str().into(),
            slice_ports(slice.at("ports")).into(),
            slice_endpoints(slice.at("endpoints")).into(),
            age(slice, now),
        ]
    },
);

/// Upstream's `formatDiscoveryPorts`: port numbers (the name when unnumbered), at most
/// three.
fn slice_ports(ports: View<'_>) -> String {
    const MAX: usize = 3;
    let list: Vec<String> = ports
        .items()
        .take(MAX)
        // A missing name is defaulted to "" on write, so upstream's `*` (neither a port nor
        // a name) never shows.
        .map(|p| match p.at("port").opt_int() {
            Some(n) => n.to_string(),
            None => p.at("name").str().to_string(),
        })
        .collect();
    format::list_with_more(&list, ports.len() > MAX, ports.len(), MAX)
}

/// Upstream's `formatDiscoveryEndpoints`: the addresses of all endpoints, at most three.
fn slice_endpoints(endpoints: View<'_>) -> String {
    const MAX: usize = 3;
    let all: Vec<&str> = endpoints
        .items()
        .flat_map(|e| e.at("addresses").items().map(View::str))
        .collect();
    let list: Vec<String> = all.iter().take(MAX).map(|s| s.to_string()).collect();
    format::list_with_more(&list, all.len() > MAX, all.len(), MAX)
}

pub static SERVICE_CIDR: Table = Table::new(
    &[
        Column::NAME,
        Column::string("CIDRs", SERVICE_CIDR_SPEC_CIDRS),
        Column::AGE,
    ],
    |cidr, now| {
        let cidrs: Vec<&str> = cidr
            .path(&["spec", "cidrs"])
            .items()
            .map(View::str)
            .collect();
        vec![name(cidr), cidrs.join(",").into(), age(cidr, now)]
    },
);

/// Upstream declares two columns for IP addresses but fills three cells (the age last).
pub static IP_ADDRESS: Table = Table::new(
    &[
        Column::NAME,
        Column::string("ParentRef", IP_ADDRESS_SPEC_PARENT_REF),
    ],
    ip_address_cells,
);

fn ip_address_cells(ip: View<'_>, now: Timestamp) -> Vec<Value> {
    let parent = ip.path(&["spec", "parentRef"]);
    let parent_ref = if parent.is_set() {
        let resource = parent.at("resource").str();
        let group_resource = match parent.at("group").str() {
            "" => resource.to_string(),
            group => format!("{resource}.{group}"),
        };
        let mut s = group_resource.to_lowercase();
        let namespace = parent.at("namespace").str();
        if !namespace.is_empty() {
            s.push('/');
            s.push_str(namespace);
        }
        s.push('/');
        s.push_str(parent.at("name").str());
        s
    } else {
        "<none>".into()
    };
    vec![name(ip), parent_ref.into(), age(ip, now)]
}
