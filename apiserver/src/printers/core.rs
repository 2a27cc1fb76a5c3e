//! Core (`v1`) kinds: pods, pod templates, replication controllers, services, endpoints,
//! nodes, namespaces, events, secrets, service accounts, persistent volumes and claims,
//! config maps, component statuses, resource quotas.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::docs::*;
use super::view::View;
use super::{Column, Table, age, deleting, duration, format, name};

const CONTAINERS_DOC: &str = "Names of each container in the template.";
const IMAGES_DOC: &str = "Images referenced by each container in the template.";

// ---------------------------------------------------------------------------------------
// Pods

pub static POD: Table = Table::new(
    &[
        Column::NAME,
        Column::string(
            "Ready",
            "The aggregate readiness state of this pod for accepting traffic.",
        ),
        Column::string(
            "Status",
            "The aggregate status of the containers in this pod.",
        ),
        Column::string(
            "Restarts",
            "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
        ),
        Column::AGE,
        Column::string("IP", POD_STATUS_POD_IP).wide(),
        Column::string("Node", POD_SPEC_NODE_NAME).wide(),
        Column::string("Nominated Node", POD_STATUS_NOMINATED_NODE_NAME).wide(),
        Column::string("Readiness Gates", POD_SPEC_READINESS_GATES).wide(),
    ],
    pod_cells,
)
.with_conditions(pod_conditions);

/// When a container last terminated (for the `(5m ago)` of the restart count).
fn last_termination(status: View<'_>) -> Option<Timestamp> {
    status
        .path(&["lastState", "terminated", "finishedAt"])
        .time()
}

fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn condition_status<'a>(conditions: View<'a>, ty: &str) -> Option<&'a str> {
    conditions
        .items()
        .find(|c| c.at("type").str() == ty)
        .map(|c| c.at("status").str())
}

/// A restartable init container (a sidecar): `restartPolicy: Always`.
fn is_sidecar(spec: View<'_>, name: &str) -> bool {
    spec.at("initContainers")
        .items()
        .any(|c| c.at("name").str() == name && c.at("restartPolicy").str() == "Always")
}

/// The reason a terminated container gives, or its signal or exit code.
fn terminated_reason(terminated: View<'_>, prefix: &str) -> String {
    let reason = terminated.at("reason").str();
    if !reason.is_empty() {
        return format!("{prefix}{reason}");
    }
    let signal = terminated.at("signal").int();
    if signal != 0 {
        format!("{prefix}Signal:{signal}")
    } else {
        format!("{prefix}ExitCode:{}", terminated.at("exitCode").int())
    }
}

fn pod_cells(pod: View<'_>, now: Timestamp) -> Vec<Value> {
    let spec = pod.at("spec");
    let status = pod.at("status");
    let conditions = status.at("conditions");
    let phase = status.at("phase").str();

    let mut reason = match status.at("reason").str() {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    if conditions
        .items()
        .any(|c| c.at("type").str() == "PodScheduled" && c.at("reason").str() == "SchedulingGated")
    {
        reason = "SchedulingGated".into();
    }

    let init_count = spec.at("initContainers").len();
    let sidecars = spec
        .at("initContainers")
        .items()
        .filter(|c| c.at("restartPolicy").str() == "Always")
        .count();
    let total = spec.at("containers").len() + sidecars;
    let mut ready = 0usize;
    let mut restarts = 0i64;
    let mut last_restart = None;
    let mut sidecar_restarts = 0i64;
    let mut last_sidecar_restart = None;

    let mut initializing = false;
    for (i, container) in status.at("initContainerStatuses").items().enumerate() {
        restarts += container.at("restartCount").int();
        last_restart = later(last_restart, last_termination(container));
        let sidecar = is_sidecar(spec, container.at("name").str());
        if sidecar {
            sidecar_restarts += container.at("restartCount").int();
            last_sidecar_restart = later(last_sidecar_restart, last_termination(container));
        }
        let state = container.at("state");
        let terminated = state.at("terminated");
        let waiting_reason = state.path(&["waiting", "reason"]).str();
        if terminated.is_set() && terminated.at("exitCode").int() == 0 {
            continue;
        }
        if sidecar && container.at("started").bool() {
            if container.at("ready").bool() {
                ready += 1;
            }
            continue;
        }
        reason = if terminated.is_set() {
            terminated_reason(terminated, "Init:")
        } else if state.at("waiting").is_set()
            && !waiting_reason.is_empty()
            && waiting_reason != "PodInitializing"
        {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{init_count}")
        };
        initializing = true;
        break;
    }

    if !initializing || condition_status(conditions, "Initialized") == Some("True") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for container in status.at("containerStatuses").items().rev() {
            restarts += container.at("restartCount").int();
            last_restart = later(last_restart, last_termination(container));
            let state = container.at("state");
            let waiting_reason = state.path(&["waiting", "reason"]).str();
            let terminated = state.at("terminated");
            if state.at("waiting").is_set() && !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if terminated.is_set() {
                reason = terminated_reason(terminated, "");
            } else if container.at("ready").bool() && state.at("running").is_set() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if condition_status(conditions, "Ready") == Some("True") {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }

    if deleting(pod) && status.at("reason").str() == "NodeLost" {
        reason = "Unknown".into();
    } else if deleting(pod) && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".into();
    }

    let restarts_cell = match last_restart {
        Some(at) if restarts != 0 => format!("{restarts} ({} ago)", duration::since(Some(at), now)),
        _ => restarts.to_string(),
    };

    let or_none = |s: &str| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s.to_string()
        }
    };
    let pod_ip = status
        .at("podIPs")
        .items()
        .next()
        .map(|ip| ip.at("ip").str())
        .unwrap_or("");
    let gates = spec.at("readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let satisfied = gates
            .items()
            .filter(|g| condition_status(conditions, g.at("conditionType").str()) == Some("True"))
            .count();
        format!("{satisfied}/{}", gates.len())
    };

    vec![
        name(pod),
        format!("{ready}/{total}").into(),
        reason.into(),
        restarts_cell.into(),
        age(pod, now),
        or_none(pod_ip).into(),
        or_none(spec.at("nodeName").str()).into(),
        or_none(status.at("nominatedNodeName").str()).into(),
        readiness_gates.into(),
    ]
}

fn pod_conditions(pod: View<'_>) -> Option<Value> {
    let (reason, message) = match pod.path(&["status", "phase"]).str() {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}

// ---------------------------------------------------------------------------------------
// Pod templates and replication controllers

pub static POD_TEMPLATE: Table = Table::new(
    &[
        Column::NAME,
        Column::string("Containers", CONTAINERS_DOC),
        Column::string("Images", IMAGES_DOC),
        Column::string("Pod Labels", "The labels for the pod template."),
    ],
    |t, _| {
        let (names, images) = format::containers(t.path(&["template", "spec", "containers"]));
        vec![
            name(t),
            names.into(),
            images.into(),
            format::labels(t.path(&["template", "metadata", "labels"])).into(),
        ]
    },
);

pub static REPLICATION_CONTROLLER: Table = Table::new(
    &[
        Column::NAME,
        Column::integer("Desired", REPLICATION_CONTROLLER_SPEC_REPLICAS),
        Column::integer("Current", REPLICATION_CONTROLLER_STATUS_REPLICAS),
        Column::integer("Ready", REPLICATION_CONTROLLER_STATUS_READY_REPLICAS),
        Column::AGE,
        Column::string("Containers", CONTAINERS_DOC).wide(),
        Column::string("Images", IMAGES_DOC).wide(),
        Column::string("Selector", REPLICATION_CONTROLLER_SPEC_SELECTOR).wide(),
    ],
    |rc, now| {
        let (names, images) =
            format::containers(rc.path(&["spec", "template", "spec", "containers"]));
        vec![
            name(rc),
            rc.path(&["spec", "replicas"]).opt_int().unwrap_or(1).into(),
            rc.path(&["status", "replicas"]).int().into(),
            rc.path(&["status", "readyReplicas"]).int().into(),
            age(rc, now),
            names.into(),
            images.into(),
            format::labels(rc.path(&["spec", "selector"])).into(),
        ]
    },
);

// ---------------------------------------------------------------------------------------
// Services and endpoints

pub static SERVICE: Table = Table::new(
    &[
        Column::NAME,
        Column::string("Type", SERVICE_SPEC_TYPE),
        Column::string("Cluster-IP", SERVICE_SPEC_CLUSTER_IP),
        Column::string("External-IP", SERVICE_SPEC_EXTERNAL_IPS),
        Column::string("Port(s)", SERVICE_SPEC_PORTS),
        Column::AGE,
        Column::string("Selector", SERVICE_SPEC_SELECTOR).wide(),
    ],
    service_cells,
);

/// The load balancer's IPs (or hostnames), sorted and de-duplicated, joined by commas. The
/// server prints wide, so the list is never shortened.
pub(super) fn load_balancer_ingress(ingress: View<'_>) -> String {
    let mut addresses: Vec<&str> = ingress
        .items()
        .filter_map(|i| match (i.at("ip").str(), i.at("hostname").str()) {
            ("", "") => None,
            ("", host) => Some(host),
            (ip, _) => Some(ip),
        })
        .collect();
    addresses.sort_unstable();
    addresses.dedup();
    addresses.join(",")
}

fn service_external_ip(spec: View<'_>, status: View<'_>) -> String {
    let external_ips: Vec<&str> = spec.at("externalIPs").items().map(View::str).collect();
    match or_default(spec.at("type"), "ClusterIP") {
        "ClusterIP" | "NodePort" if external_ips.is_empty() => "<none>".into(),
        "ClusterIP" | "NodePort" => external_ips.join(","),
        "LoadBalancer" => {
            let lb = load_balancer_ingress(status.path(&["loadBalancer", "ingress"]));
            if !external_ips.is_empty() {
                let mut all: Vec<&str> = if lb.is_empty() {
                    vec![]
                } else {
                    lb.split(',').collect()
                };
                all.extend(external_ips);
                all.join(",")
            } else if !lb.is_empty() {
                lb
            } else {
                "<pending>".into()
            }
        }
        "ExternalName" => spec.at("externalName").str().into(),
        _ => "<unknown>".into(),
    }
}

fn service_cells(svc: View<'_>, now: Timestamp) -> Vec<Value> {
    let spec = svc.at("spec");
    // Only `clusterIPs` counts: the service strategy fills it from `clusterIP` on write.
    let cluster_ip = spec
        .at("clusterIPs")
        .items()
        .next()
        .map_or("<none>", View::str);
    let ports: Vec<String> = spec
        .at("ports")
        .items()
        .map(|p| {
            let port = p.at("port").int();
            let protocol = or_default(p.at("protocol"), "TCP");
            match p.at("nodePort").int() {
                n if n > 0 => format!("{port}:{n}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    vec![
        name(svc),
        or_default(spec.at("type"), "ClusterIP").into(),
        cluster_ip.into(),
        service_external_ip(spec, svc.at("status")).into(),
        ports.into(),
        age(svc, now),
        format::labels(spec.at("selector")).into(),
    ]
}

pub static ENDPOINTS: Table = Table::new(
    &[
        Column::NAME,
        Column::string("Endpoints", ENDPOINTS_SUBSETS),
        Column::AGE,
    ],
    |ep, now| vec![name(ep), endpoints(ep.at("subsets")).into(), age(ep, now)],
);

/// Upstream's `formatEndpoints`: up to three `ip:port` (or bare IPs for a subset without
/// ports), then `+ N more...`.
fn endpoints(subsets: View<'_>) -> String {
    const MAX: usize = 3;
    if subsets.is_empty() {
        return "<none>".into();
    }
    let mut list = Vec::new();
    let mut more = false;
    let mut count = 0;
    for subset in subsets.items() {
        let addresses = subset.at("addresses");
        let ports = subset.at("ports");
        if ports.is_empty() {
            count += addresses.len();
            for address in addresses.items() {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(address.at("ip").str().to_string());
            }
            continue;
        }
        for port in ports.items() {
            count += addresses.len();
            for address in addresses.items() {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(format::join_host_port(
                    address.at("ip").str(),
                    port.at("port").int(),
                ));
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

// ---------------------------------------------------------------------------------------
// Nodes and namespaces

pub static NODE: Table = Table::new(
    &[
        Column::NAME,
        Column::string("Status", "The status of the node"),
        Column::string("Roles", "The roles of the node"),
        Column::AGE,
        Column::string("Version", NODE_SYSTEM_INFO_KUBELET_VERSION),
        Column::string("Internal-IP", NODE_STATUS_ADDRESSES).wide(),
        Column::string("External-IP", NODE_STATUS_ADDRESSES).wide(),
        Column::string("OS-Image", NODE_SYSTEM_INFO_OS_IMAGE).wide(),
        Column::string("Kernel-Version", NODE_SYSTEM_INFO_KERNEL_VERSION).wide(),
        Column::string(
            "Container-Runtime",
            NODE_SYSTEM_INFO_CONTAINER_RUNTIME_VERSION,
        )
        .wide(),
    ],
    node_cells,
);

/// Roles from `node-role.kubernetes.io/<role>` keys and the `kubernetes.io/role` value,
/// sorted and de-duplicated.
fn node_roles(labels: View<'_>) -> Vec<&str> {
    let mut roles: Vec<&str> = labels
        .entries()
        .filter_map(|(k, v)| match k.strip_prefix("node-role.kubernetes.io/") {
            Some(role) if !role.is_empty() => Some(role),
            Some(_) => None,
            None if k == "kubernetes.io/role" && !v.str().is_empty() => Some(v.str()),
            None => None,
        })
        .collect();
    roles.sort_unstable();
    roles.dedup();
    roles
}

fn node_cells(node: View<'_>, now: Timestamp) -> Vec<Value> {
    let status = node.at("status");
    // Upstream keeps the last condition of each type.
    let ready = status
        .at("conditions")
        .items()
        .rev()
        .find(|c| c.at("type").str() == "Ready");
    let mut states = vec![match ready {
        Some(c) if c.at("status").str() == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if node.path(&["spec", "unschedulable"]).bool() {
        states.push("SchedulingDisabled");
    }
    let roles = node_roles(node.path(&["metadata", "labels"]));
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };
    let address = |ty: &str| {
        status
            .at("addresses")
            .items()
            .find(|a| a.at("type").str() == ty)
            .map_or("<none>", |a| a.at("address").str())
    };
    let info = status.at("nodeInfo");
    let or_unknown = |key: &str| match info.at(key).str() {
        "" => "<unknown>",
        s => s,
    };
    vec![
        name(node),
        states.join(",").into(),
        roles.into(),
        age(node, now),
        info.at("kubeletVersion").str().into(),
        address("InternalIP").into(),
        address("ExternalIP").into(),
        or_unknown("osImage").into(),
        or_unknown("kernelVersion").into(),
        or_unknown("containerRuntimeVersion").into(),
    ]
}

pub static NAMESPACE: Table = Table::new(
    &[
        Column::NAME,
        Column::string("Status", "The status of the namespace"),
        Column::AGE,
    ],
    |ns, now| {
        let phase = or_default(ns.path(&["status", "phase"]), "Active");
        vec![name(ns), phase.into(), age(ns, now)]
    },
);

// ---------------------------------------------------------------------------------------
// Events (core/v1 and events.k8s.io/v1 shapes)

pub static EVENT: Table = Table::new(
    &[
        Column::string("Last Seen", EVENT_LAST_TIMESTAMP),
        Column::string("Type", EVENT_TYPE),
        Column::string("Reason", EVENT_REASON),
        Column::string("Object", EVENT_INVOLVED_OBJECT),
        Column::string("Subobject", OBJECT_REFERENCE_FIELD_PATH).wide(),
        Column::string("Source", EVENT_SOURCE).wide(),
        Column::string("Message", EVENT_MESSAGE),
        Column::string("First Seen", EVENT_FIRST_TIMESTAMP).wide(),
        Column::string("Count", EVENT_COUNT).wide(),
        Column::NAME.wide(),
    ],
    event_cells,
);

/// The field names of an event's parts in the object's API shape.
struct EventShape {
    involved: &'static str,
    message: &'static str,
    source: &'static str,
    first: &'static str,
    last: &'static str,
    count: &'static str,
    reporting_controller: &'static str,
}

const CORE_EVENT: EventShape = EventShape {
    involved: "involvedObject",
    message: "message",
    source: "source",
    first: "firstTimestamp",
    last: "lastTimestamp",
    count: "count",
    reporting_controller: "reportingComponent",
};

const EVENTS_V1_EVENT: EventShape = EventShape {
    involved: "regarding",
    message: "note",
    source: "deprecatedSource",
    first: "deprecatedFirstTimestamp",
    last: "deprecatedLastTimestamp",
    count: "deprecatedCount",
    reporting_controller: "reportingController",
};

fn event_shape(ev: View<'_>) -> &'static EventShape {
    match ev.at("apiVersion").opt_str() {
        Some("events.k8s.io/v1" | "events.k8s.io/v1beta1") => &EVENTS_V1_EVENT,
        Some(_) => &CORE_EVENT,
        None if ev.at("regarding").is_set() || ev.at("note").is_set() => &EVENTS_V1_EVENT,
        None => &CORE_EVENT,
    }
}

fn event_cells(ev: View<'_>, now: Timestamp) -> Vec<Value> {
    let shape = event_shape(ev);
    let since = |t| duration::since(t, now);
    let first_time = ev.at(shape.first).time();
    let first = match first_time {
        Some(t) => since(Some(t)),
        None => since(ev.at("eventTime").time()),
    };
    let mut last = match ev.at(shape.last).time() {
        Some(t) => since(Some(t)),
        None => first.clone(),
    };
    let series = ev.at("series");
    let count = if series.is_set() {
        last = since(series.at("lastObservedTime").time());
        series.at("count").int()
    } else {
        match ev.at(shape.count).int() {
            0 => 1, // singleton events of the new API have no count
            n => n,
        }
    };
    let involved = ev.at(shape.involved);
    let kind = involved.at("kind").str().to_lowercase();
    let target = match involved.at("name").str() {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let source = ev.at(shape.source);
    let component = non_empty_or(
        source.at("component").str(),
        ev.at(shape.reporting_controller).str(),
    );
    let host = non_empty_or(source.at("host").str(), ev.at("reportingInstance").str());
    let source = if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    };
    vec![
        last.into(),
        ev.at("type").str().into(),
        ev.at("reason").str().into(),
        target.into(),
        involved.at("fieldPath").str().into(),
        source.into(),
        ev.at(shape.message).str().trim().into(),
        first.into(),
        count.into(),
        name(ev),
    ]
}

fn non_empty_or<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() { b } else { a }
}

// ---------------------------------------------------------------------------------------
// Secrets, service accounts, config maps

pub static SECRET: Table = Table::new(
    &[
        Column::NAME,
        Column::string("Type", SECRET_TYPE),
        Column::string("Data", SECRET_DATA),
        Column::AGE,
    ],
    |s, now| {
        vec![
            name(s),
            or_default(s.at("type"), "Opaque").into(),
            (secret_keys(s) as i64).into(),
            age(s, now),
        ]
    },
);

/// The number of data keys; `stringData` (write-only) merges into `data`.
fn secret_keys(secret: View<'_>) -> usize {
    let data = secret.at("data");
    let extra = secret
        .at("stringData")
        .entries()
        .filter(|(k, _)| !data.at(k).is_set())
        .count();
    data.len() + extra
}

pub static SERVICE_ACCOUNT: Table = Table::new(
    &[
        Column::NAME,
        Column::string("Secrets", SERVICE_ACCOUNT_SECRETS),
        Column::AGE,
    ],
    |sa, now| {
        vec![
            name(sa),
            (sa.at("secrets").len() as i64).into(),
            age(sa, now),
        ]
    },
);

pub static CONFIG_MAP: Table = Table::new(
    &[
        Column::NAME,
        Column::string("Data", CONFIG_MAP_DATA),
        Column::AGE,
    ],
    |cm, now| {
        let entries = cm.at("data").len() + cm.at("binaryData").len();
        vec![name(cm), (entries as i64).into(), age(cm, now)]
    },
);

// ---------------------------------------------------------------------------------------
// Persistent volumes and claims

/// Upstream's `GetAccessModesAsString`: `RWO,ROX,RWX,RWOP` in that order, each once.
fn access_modes(modes: View<'_>) -> String {
    let has = |m: &str| modes.items().any(|x| x.str() == m);
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The storage class, the beta annotation first.
fn storage_class<'a>(obj: View<'a>, field: Option<&'a str>) -> &'a str {
    obj.path(&["metadata", "annotations"])
        .label("volume.beta.kubernetes.io/storage-class")
        .or(field)
        .unwrap_or("")
}

/// A string field, or its API default when missing or empty.
pub(super) fn or_default<'a>(v: View<'a>, default: &'a str) -> &'a str {
    v.opt_str().filter(|s| !s.is_empty()).unwrap_or(default)
}

fn unset_or(v: View<'_>) -> Value {
    v.opt_str().unwrap_or("<unset>").into()
}

pub static PERSISTENT_VOLUME: Table = Table::new(
    &[
        Column::NAME,
        Column::string("Capacity", PERSISTENT_VOLUME_SPEC_CAPACITY),
        Column::string("Access Modes", PERSISTENT_VOLUME_SPEC_ACCESS_MODES),
        Column::string(
            "Reclaim Policy",
            PERSISTENT_VOLUME_SPEC_PERSISTENT_VOLUME_RECLAIM_POLICY,
        ),
        Column::string("Status", PERSISTENT_VOLUME_STATUS_PHASE),
        Column::string("Claim", PERSISTENT_VOLUME_SPEC_CLAIM_REF),
        Column::string("StorageClass", "StorageClass of the pv"),
        Column::string("VolumeAttributesClass", "VolumeAttributesClass of the pv"),
        Column::string("Reason", PERSISTENT_VOLUME_STATUS_REASON),
        Column::AGE,
        Column::string("VolumeMode", PERSISTENT_VOLUME_SPEC_VOLUME_MODE).wide(),
    ],
    |pv, now| {
        let spec = pv.at("spec");
        let claim = spec.at("claimRef");
        let claim = if claim.is_set() {
            format!("{}/{}", claim.at("namespace").str(), claim.at("name").str())
        } else {
            String::new()
        };
        let phase = if deleting(pv) {
            "Terminating"
        } else {
            or_default(pv.path(&["status", "phase"]), "Pending")
        };
        vec![
            name(pv),
            format::quantity(spec.path(&["capacity", "storage"])).into(),
            access_modes(spec.at("accessModes")).into(),
            or_default(spec.at("persistentVolumeReclaimPolicy"), "Retain").into(),
            phase.into(),
            claim.into(),
            storage_class(pv, spec.at("storageClassName").opt_str()).into(),
            unset_or(spec.at("volumeAttributesClassName")),
            pv.path(&["status", "reason"]).str().into(),
            age(pv, now),
            or_default(spec.at("volumeMode"), "Filesystem").into(),
        ]
    },
);

pub static PERSISTENT_VOLUME_CLAIM: Table = Table::new(
    &[
        Column::NAME,
        Column::string("Status", PERSISTENT_VOLUME_CLAIM_STATUS_PHASE),
        Column::string("Volume", PERSISTENT_VOLUME_CLAIM_SPEC_VOLUME_NAME),
        Column::string("Capacity", PERSISTENT_VOLUME_CLAIM_STATUS_CAPACITY),
        Column::string("Access Modes", PERSISTENT_VOLUME_CLAIM_STATUS_ACCESS_MODES),
        Column::string("StorageClass", "StorageClass of the pvc"),
        Column::string("VolumeAttributesClass", "VolumeAttributesClass of the pvc"),
        Column::AGE,
        Column::string("VolumeMode", PERSISTENT_VOLUME_CLAIM_SPEC_VOLUME_MODE).wide(),
    ],
    |pvc, now| {
        let spec = pvc.at("spec");
        let status = pvc.at("status");
        let phase = if deleting(pvc) {
            "Terminating"
        } else {
            or_default(status.at("phase"), "Pending")
        };
        let volume = spec.at("volumeName").str();
        let (capacity, modes) = if volume.is_empty() {
            (String::new(), String::new())
        } else {
            (
                format::quantity(status.path(&["capacity", "storage"])),
                access_modes(status.at("accessModes")),
            )
        };
        vec![
            name(pvc),
            phase.into(),
            volume.into(),
            capacity.into(),
            modes.into(),
            storage_class(pvc, spec.at("storageClassName").opt_str()).into(),
            unset_or(spec.at("volumeAttributesClassName")),
            age(pvc, now),
            or_default(spec.at("volumeMode"), "Filesystem").into(),
        ]
    },
);

// ---------------------------------------------------------------------------------------
// Component statuses and resource quotas

pub static COMPONENT_STATUS: Table = Table::new(
    &[
        Column::NAME,
        Column::string("Status", "Status of the component conditions"),
        Column::string("Message", "Message of the component conditions"),
        Column::string("Error", "Error of the component conditions"),
    ],
    |cs, _| {
        let healthy = cs
            .at("conditions")
            .items()
            .find(|c| c.at("type").str() == "Healthy");
        let (status, message, error) = match healthy {
            Some(c) => (
                if c.at("status").str() == "True" {
                    "Healthy"
                } else {
                    "Unhealthy"
                },
                c.at("message").str(),
                c.at("error").str(),
            ),
            None => ("Unknown", "", ""),
        };
        vec![name(cs), status.into(), message.into(), error.into()]
    },
);

pub static RESOURCE_QUOTA: Table = Table::new(
    &[
        Column::NAME,
        Column::string(
            "Request",
            "Request represents a minimum amount of cpu/memory that a container may consume.",
        ),
        Column::string(
            "Limit",
            "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
        ),
        Column::AGE,
    ],
    |rq, now| {
        let status = rq.at("status");
        let mut resources: Vec<&str> = status.at("hard").entries().map(|(k, _)| k).collect();
        resources.sort_unstable();
        let mut requests = Vec::new();
        let mut limits = Vec::new();
        for resource in resources {
            let used = format::quantity(status.path(&["used", resource]));
            let hard = format::quantity(status.path(&["hard", resource]));
            let entry = format!("{resource}: {used}/{hard}");
            let mut pieces = resource.split('.');
            if pieces.next() == Some("limits") && pieces.next().is_some() {
                limits.push(entry);
            } else {
                requests.push(entry);
            }
        }
        vec![
            name(rq),
            requests.join(", ").into(),
            limits.join(", ").into(),
            age(rq, now),
        ]
    },
);
