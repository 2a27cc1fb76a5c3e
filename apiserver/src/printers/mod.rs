//! Server-side printers: upstream's table columns and cells per built-in kind.
//!
//! Upstream builds every table from the internal object with `Wide: true`, so the cells
//! always include the priority-1 (wide) columns; kubectl hides those unless `-o wide`.
//! Kinds whose upstream storage uses the default table convertor (roles, clusterroles,
//! limitranges, csistoragecapacities, customresourcedefinitions, the review kinds) have no
//! printer here and get Name/Created At.
//!
//! Cells follow upstream's internal (defaulted) objects; where a printed field has an API
//! default, a missing field reads as that default.

mod admission;
mod apps;
mod autoscaling;
mod batch;
mod core;
mod docs;
mod duration;
mod format;
mod networking;
mod other;
mod rbac;
mod storage;
mod view;

use std::cmp::Ordering;

use ironkube_machinery::resources::ResourceInfo;
use jiff::Timestamp;
use serde_json::{Value, json};

pub use duration::{human as human_duration, short_human as short_human_duration};
use view::View;

/// Columns and cells of one kind's table.
pub trait Printer: Sync {
    /// `columnDefinitions` (name, type, format, description, priority).
    fn columns(&self) -> Value;

    /// One row's cells for `obj`, ages measured from now.
    fn cells(&self, obj: &Value) -> Vec<Value> {
        self.cells_at(obj, Timestamp::now())
    }

    /// One row's cells for `obj`, ages measured from `now`.
    fn cells_at(&self, obj: &Value, now: Timestamp) -> Vec<Value>;

    /// The row's `conditions` (upstream marks succeeded and failed pods `Completed`).
    fn conditions(&self, obj: &Value) -> Option<Value> {
        let _ = obj;
        None
    }

    /// The order of a list's rows; `Equal` (the default) keeps the storage order. Upstream
    /// sorts only flow schemas (by matching precedence, then name).
    fn list_order(&self, a: &Value, b: &Value) -> Ordering {
        let _ = (a, b);
        Ordering::Equal
    }
}

/// One `TableColumnDefinition`.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub ty: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: i32,
}

impl Column {
    pub const fn string(name: &'static str, description: &'static str) -> Column {
        Column {
            name,
            ty: "string",
            format: "",
            description,
            priority: 0,
        }
    }

    pub const fn integer(name: &'static str, description: &'static str) -> Column {
        Column {
            ty: "integer",
            ..Column::string(name, description)
        }
    }

    pub const fn boolean(name: &'static str, description: &'static str) -> Column {
        Column {
            ty: "boolean",
            ..Column::string(name, description)
        }
    }

    /// The object's name (`format: name`).
    pub const NAME: Column = Column {
        format: "name",
        ..Column::string("Name", docs::OBJECT_META_NAME)
    };

    /// The object's age, from its creation timestamp.
    pub const AGE: Column = Column::string("Age", docs::OBJECT_META_CREATION_TIMESTAMP);

    /// Shown only in wide output.
    pub const fn wide(self) -> Column {
        Column {
            priority: 1,
            ..self
        }
    }

    pub const fn format(self, format: &'static str) -> Column {
        Column { format, ..self }
    }

    fn to_json(self) -> Value {
        json!({
            "name": self.name,
            "type": self.ty,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

type CellsFn = fn(View<'_>, Timestamp) -> Vec<Value>;

/// A printer made of a column list and a cell function.
pub struct Table {
    columns: &'static [Column],
    cells: CellsFn,
    conditions: Option<fn(View<'_>) -> Option<Value>>,
    order: Option<fn(View<'_>, View<'_>) -> Ordering>,
}

impl Table {
    pub const fn new(columns: &'static [Column], cells: CellsFn) -> Table {
        Table {
            columns,
            cells,
            conditions: None,
            order: None,
        }
    }

    pub const fn with_conditions(self, conditions: fn(View<'_>) -> Option<Value>) -> Table {
        Table {
            conditions: Some(conditions),
            ..self
        }
    }

    pub const fn with_order(self, order: fn(View<'_>, View<'_>) -> Ordering) -> Table {
        Table {
            order: Some(order),
            ..self
        }
    }
}

impl Printer for Table {
    fn columns(&self) -> Value {
        Value::Array(self.columns.iter().map(|c| c.to_json()).collect())
    }

    fn cells_at(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        (self.cells)(View::of(obj), now)
    }

    fn conditions(&self, obj: &Value) -> Option<Value> {
        self.conditions.and_then(|f| f(View::of(obj)))
    }

    fn list_order(&self, a: &Value, b: &Value) -> Ordering {
        self.order
            .map_or(Ordering::Equal, |f| f(View::of(a), View::of(b)))
    }
}

/// `metadata.name`.
fn name(obj: View<'_>) -> Value {
    obj.path(&["metadata", "name"]).str().into()
}

/// The age cell: time since `metadata.creationTimestamp`.
fn age(obj: View<'_>, now: Timestamp) -> Value {
    duration::since(obj.path(&["metadata", "creationTimestamp"]).time(), now).into()
}

/// Whether `metadata.deletionTimestamp` is set.
fn deleting(obj: View<'_>) -> bool {
    obj.path(&["metadata", "deletionTimestamp"]).is_set()
}

/// The printer for a resource, if it has one (otherwise the default Name/Created At).
pub fn printer(info: &ResourceInfo) -> Option<&'static dyn Printer> {
    let p: &'static dyn Printer = match (info.group, info.plural) {
        ("", "pods") => &core::POD,
        ("", "podtemplates") => &core::POD_TEMPLATE,
        ("", "replicationcontrollers") => &core::REPLICATION_CONTROLLER,
        ("", "services") => &core::SERVICE,
        ("", "endpoints") => &core::ENDPOINTS,
        ("", "nodes") => &core::NODE,
        ("", "namespaces") => &core::NAMESPACE,
        ("", "events") => &core::EVENT,
        ("events.k8s.io", "events") => &core::EVENT,
        ("", "secrets") => &core::SECRET,
        ("", "serviceaccounts") => &core::SERVICE_ACCOUNT,
        ("", "persistentvolumes") => &core::PERSISTENT_VOLUME,
        ("", "persistentvolumeclaims") => &core::PERSISTENT_VOLUME_CLAIM,
        ("", "configmaps") => &core::CONFIG_MAP,
        ("", "componentstatuses") => &core::COMPONENT_STATUS,
        ("", "resourcequotas") => &core::RESOURCE_QUOTA,
        ("apps", "replicasets") => &apps::REPLICA_SET,
        ("apps", "deployments") => &apps::DEPLOYMENT,
        ("apps", "statefulsets") => &apps::STATEFUL_SET,
        ("apps", "daemonsets") => &apps::DAEMON_SET,
        ("apps", "controllerrevisions") => &apps::CONTROLLER_REVISION,
        ("batch", "jobs") => &batch::JOB,
        ("batch", "cronjobs") => &batch::CRON_JOB,
        ("autoscaling", "horizontalpodautoscalers") => &autoscaling::HORIZONTAL_POD_AUTOSCALER,
        ("networking.k8s.io", "ingresses") => &networking::INGRESS,
        ("networking.k8s.io", "ingressclasses") => &networking::INGRESS_CLASS,
        ("networking.k8s.io", "networkpolicies") => &networking::NETWORK_POLICY,
        ("networking.k8s.io", "ipaddresses") => &networking::IP_ADDRESS,
        ("networking.k8s.io", "servicecidrs") => &networking::SERVICE_CIDR,
        ("discovery.k8s.io", "endpointslices") => &networking::ENDPOINT_SLICE,
        ("rbac.authorization.k8s.io", "rolebindings") => &rbac::ROLE_BINDING,
        ("rbac.authorization.k8s.io", "clusterrolebindings") => &rbac::CLUSTER_ROLE_BINDING,
        ("storage.k8s.io", "storageclasses") => &storage::STORAGE_CLASS,
        ("storage.k8s.io", "csidrivers") => &storage::CSI_DRIVER,
        ("storage.k8s.io", "csinodes") => &storage::CSI_NODE,
        ("storage.k8s.io", "volumeattachments") => &storage::VOLUME_ATTACHMENT,
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations") => {
            &admission::MUTATING_WEBHOOK_CONFIGURATION
        }
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations") => {
            &admission::VALIDATING_WEBHOOK_CONFIGURATION
        }
        ("admissionregistration.k8s.io", "validatingadmissionpolicies") => {
            &admission::VALIDATING_ADMISSION_POLICY
        }
        ("admissionregistration.k8s.io", "validatingadmissionpolicybindings") => {
            &admission::VALIDATING_ADMISSION_POLICY_BINDING
        }
        ("policy", "poddisruptionbudgets") => &other::POD_DISRUPTION_BUDGET,
        ("scheduling.k8s.io", "priorityclasses") => &other::PRIORITY_CLASS,
        ("node.k8s.io", "runtimeclasses") => &other::RUNTIME_CLASS,
        ("certificates.k8s.io", "certificatesigningrequests") => {
            &other::CERTIFICATE_SIGNING_REQUEST
        }
        ("coordination.k8s.io", "leases") => &other::LEASE,
        ("flowcontrol.apiserver.k8s.io", "flowschemas") => &other::FLOW_SCHEMA,
        ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations") => {
            &other::PRIORITY_LEVEL_CONFIGURATION
        }
        ("apiregistration.k8s.io", "apiservices") => &other::API_SERVICE,
        _ => return None,
    };
    Some(p)
}

#[cfg(test)]
mod tests;
