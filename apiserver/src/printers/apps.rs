//! `apps/v1`: replica sets, deployments, stateful sets, daemon sets, controller revisions.

use serde_json::Value;

use super::docs::*;
use super::view::View;
use super::{Column, Table, age, format, name};

const CONTAINERS_DOC: &str = "Names of each container in the template.";
const IMAGES_DOC: &str = "Images referenced by each container in the template.";

/// `spec.replicas`, defaulting to 1.
fn replicas(obj: View<'_>) -> i64 {
    obj.path(&["spec", "replicas"]).opt_int().unwrap_or(1)
}

fn template_containers(obj: View<'_>) -> (Value, Value) {
    let (names, images) = format::containers(obj.path(&["spec", "template", "spec", "containers"]));
    (names.into(), images.into())
}

pub static REPLICA_SET: Table = Table::new(
    &[
        Column::NAME,
        Column::integer("Desired", REPLICA_SET_SPEC_REPLICAS),
        Column::integer("Current", REPLICA_SET_STATUS_REPLICAS),
        Column::integer("Ready", REPLICA_SET_STATUS_READY_REPLICAS),
        Column::AGE,
        Column::string("Containers", CONTAINERS_DOC).wide(),
        Column::string("Images", IMAGES_DOC).wide(),
        Column::string("Selector", REPLICA_SET_SPEC_SELECTOR).wide(),
    ],
    |rs, now| {
        let (names, images) = template_containers(rs);
        vec![
            name(rs),
            replicas(rs).into(),
            rs.path(&["status", "replicas"]).int().into(),
            rs.path(&["status", "readyReplicas"]).int().into(),
            age(rs, now),
            names,
            images,
            format::label_selector(rs.path(&["spec", "selector"])).into(),
        ]
    },
);

pub static DEPLOYMENT: Table = Table::new(
    &[
        Column::NAME,
        Column::string("Ready", "Number of the pod with ready state"),
        Column::string("Up-to-date", DEPLOYMENT_STATUS_UPDATED_REPLICAS),
        Column::string("Available", DEPLOYMENT_STATUS_AVAILABLE_REPLICAS),
        Column::AGE,
        Column::string("Containers", CONTAINERS_DOC).wide(),
        Column::string("Images", IMAGES_DOC).wide(),
        Column::string("Selector", DEPLOYMENT_SPEC_SELECTOR).wide(),
    ],
    |d, now| {
        let status = d.at("status");
        let (names, images) = template_containers(d);
        vec![
            name(d),
            format!("{}/{}", status.at("readyReplicas").int(), replicas(d)).into(),
            status.at("updatedReplicas").int().into(),
            status.at("availableReplicas").int().into(),
            age(d, now),
            names,
            images,
            format::label_selector_or_invalid(d.path(&["spec", "selector"])).into(),
        ]
    },
);

pub static STATEFUL_SET: Table = Table::new(
    &[
        Column::NAME,
        Column::string("Ready", "Number of the pod with ready state"),
        Column::AGE,
        Column::string("Containers", CONTAINERS_DOC).wide(),
        Column::string("Images", IMAGES_DOC).wide(),
    ],
    |sts, now| {
        let (names, images) = template_containers(sts);
        let ready = sts.path(&["status", "readyReplicas"]).int();
        vec![
            name(sts),
            format!("{ready}/{}", replicas(sts)).into(),
            age(sts, now),
            names,
            images,
        ]
    },
);

pub static DAEMON_SET: Table = Table::new(
    &[
        Column::NAME,
        Column::integer("Desired", DAEMON_SET_STATUS_DESIRED_NUMBER_SCHEDULED),
        Column::integer("Current", DAEMON_SET_STATUS_CURRENT_NUMBER_SCHEDULED),
        Column::integer("Ready", DAEMON_SET_STATUS_NUMBER_READY),
        Column::integer("Up-to-date", DAEMON_SET_STATUS_UPDATED_NUMBER_SCHEDULED),
        Column::integer("Available", DAEMON_SET_STATUS_NUMBER_AVAILABLE),
        Column::string("Node Selector", POD_SPEC_NODE_SELECTOR),
        Column::AGE,
        Column::string("Containers", CONTAINERS_DOC).wide(),
        Column::string("Images", IMAGES_DOC).wide(),
        Column::string("Selector", DAEMON_SET_SPEC_SELECTOR).wide(),
    ],
    |ds, now| {
        let status = ds.at("status");
        let (names, images) = template_containers(ds);
        vec![
            name(ds),
            status.at("desiredNumberScheduled").int().into(),
            status.at("currentNumberScheduled").int().into(),
            status.at("numberReady").int().into(),
            status.at("updatedNumberScheduled").int().into(),
            status.at("numberAvailable").int().into(),
            format::labels(ds.path(&["spec", "template", "spec", "nodeSelector"])).into(),
            age(ds, now),
            names,
            images,
            format::label_selector(ds.path(&["spec", "selector"])).into(),
        ]
    },
);

pub static CONTROLLER_REVISION: Table = Table::new(
    &[
        Column::NAME,
        Column::string("Controller", "Controller of the object"),
        Column::string("Revision", CONTROLLER_REVISION_REVISION),
        Column::AGE,
    ],
    |cr, now| {
        vec![
            name(cr),
            controller(cr).into(),
            cr.at("revision").int().into(),
            age(cr, now),
        ]
    },
);

/// The controlling owner as `kind.group/name` in lower case, or `<none>`.
fn controller(obj: View<'_>) -> String {
    let Some(owner) = obj
        .path(&["metadata", "ownerReferences"])
        .items()
        .find(|o| o.at("controller").bool())
    else {
        return "<none>".into();
    };
    let api_version = owner.at("apiVersion").str();
    let group = match api_version.split('/').collect::<Vec<_>>().as_slice() {
        [group, _version] => *group,
        // "v1", "", or (upstream fails the whole table) more than one slash
        _ => "",
    };
    let kind = owner.at("kind").str();
    let name = owner.at("name").str();
    match (kind, group) {
        ("", "") => name.to_string(),
        (kind, "") => format!("{}/{name}", kind.to_lowercase()),
        (kind, group) => format!("{}.{}/{name}", kind.to_lowercase(), group.to_lowercase()),
    }
}
