//! `storage.k8s.io/v1`: storage classes, CSI drivers and nodes, volume attachments. CSI
//! storage capacities have a printer upstream that their storage does not use
//! (Name/Created At).

use super::docs::*;
use super::view::View;
use super::{Column, Table, age, name};

pub static STORAGE_CLASS: Table = Table::new(
    &[
        Column::NAME,
        Column::string("Provisioner", STORAGE_CLASS_PROVISIONER),
        Column::string("ReclaimPolicy", STORAGE_CLASS_RECLAIM_POLICY),
        Column::string("VolumeBindingMode", STORAGE_CLASS_VOLUME_BINDING_MODE),
        Column::string("AllowVolumeExpansion", STORAGE_CLASS_ALLOW_VOLUME_EXPANSION),
        Column::AGE,
    ],
    |sc, now| {
        let annotations = sc.path(&["metadata", "annotations"]);
        let is_default = [
            "storageclass.kubernetes.io/is-default-class",
            "storageclass.beta.kubernetes.io/is-default-class",
        ]
        .iter()
        .any(|k| annotations.label(k) == Some("true"));
        let mut shown = sc.path(&["metadata", "name"]).str().to_string();
        if is_default {
            shown.push_str(" (default)");
        }
        vec![
            shown.into(),
            sc.at("provisioner").str().into(),
            sc.at("reclaimPolicy").opt_str().unwrap_or("Delete").into(),
            sc.at("volumeBindingMode")
                .opt_str()
                .unwrap_or("Immediate")
                .into(),
            sc.at("allowVolumeExpansion").bool().into(),
            age(sc, now),
        ]
    },
);

pub static CSI_DRIVER: Table = Table::new(
    &[
        Column::NAME,
        Column::boolean("AttachRequired", CSI_DRIVER_SPEC_ATTACH_REQUIRED),
        Column::boolean("PodInfoOnMount", CSI_DRIVER_SPEC_POD_INFO_ON_MOUNT),
        Column::boolean("StorageCapacity", CSI_DRIVER_SPEC_STORAGE_CAPACITY),
        Column::string("TokenRequests", CSI_DRIVER_SPEC_TOKEN_REQUESTS),
        Column::boolean("RequiresRepublish", CSI_DRIVER_SPEC_REQUIRES_REPUBLISH),
        Column::string("Modes", CSI_DRIVER_SPEC_VOLUME_LIFECYCLE_MODES),
        Column::AGE,
    ],
    |driver, now| {
        let spec = driver.at("spec");
        let token_requests = if spec.at("tokenRequests").is_set() {
            let audiences: Vec<&str> = spec
                .at("tokenRequests")
                .items()
                .map(|t| t.at("audience").str())
                .collect();
            audiences.join(",")
        } else {
            "<unset>".into()
        };
        let modes: Vec<&str> = spec
            .at("volumeLifecycleModes")
            .items()
            .map(View::str)
            .collect();
        // Defaulted to Persistent when none is given.
        let modes = if modes.is_empty() {
            "Persistent".to_string()
        } else {
            modes.join(",")
        };
        vec![
            name(driver),
            spec.at("attachRequired").opt_bool().unwrap_or(true).into(),
            spec.at("podInfoOnMount").bool().into(),
            spec.at("storageCapacity").bool().into(),
            token_requests.into(),
            spec.at("requiresRepublish").bool().into(),
            modes.into(),
            age(driver, now),
        ]
    },
);

pub static CSI_NODE: Table = Table::new(
    &[
        Column::NAME,
        Column::integer(
            "Drivers",
            "Drivers indicates the number of CSI drivers registered on the node",
        ),
        Column::AGE,
    ],
    |node, now| {
        vec![
            name(node),
            (node.path(&["spec", "drivers"]).len() as i64).into(),
            age(node, now),
        ]
    },
);

pub static VOLUME_ATTACHMENT: Table = Table::new(
    &[
        Column::NAME,
        Column::string("Attacher", VOLUME_ATTACHMENT_SPEC_ATTACHER).format("name"),
        Column::string("PV", VOLUME_ATTACHMENT_SOURCE_PERSISTENT_VOLUME_NAME),
        Column::string("Node", VOLUME_ATTACHMENT_SPEC_NODE_NAME),
        Column::boolean("Attached", VOLUME_ATTACHMENT_STATUS_ATTACHED),
        Column::AGE,
    ],
    |va, now| {
        let spec = va.at("spec");
        vec![
            name(va),
            spec.at("attacher").str().into(),
            spec.path(&["source", "persistentVolumeName"]).str().into(),
            spec.at("nodeName").str().into(),
            va.path(&["status", "attached"]).bool().into(),
            age(va, now),
        ]
    },
);
