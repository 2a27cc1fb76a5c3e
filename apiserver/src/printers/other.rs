//! The remaining kinds: pod disruption budgets, priority and runtime classes, certificate
//! signing requests, leases, API priority and fairness objects, API services.

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use super::docs::*;
use super::view::View;
use super::{Column, Table, age, duration, name};

/// An `IntOrString` as Go's `String()` writes it.
fn int_or_string(v: View<'_>) -> String {
    match v.value() {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

pub static POD_DISRUPTION_BUDGET: Table = Table::new(
    &[
        Column::NAME,
        Column::string(
            "Min Available",
            "The minimum number of pods that must be available.",
        ),
        Column::string(
            "Max Unavailable",
            "The maximum number of pods that may be unavailable.",
        ),
        Column::integer(
            "Allowed Disruptions",
            "Calculated number of pods that may be disrupted at this time.",
        ),
        Column::AGE,
    ],
    |pdb, now| {
        let spec = pdb.at("spec");
        let or_na = |v: View<'_>| {
            if v.is_set() {
                int_or_string(v)
            } else {
                "N/A".into()
            }
        };
        vec![
            name(pdb),
            or_na(spec.at("minAvailable")).into(),
            or_na(spec.at("maxUnavailable")).into(),
            pdb.path(&["status", "disruptionsAllowed"]).int().into(),
            age(pdb, now),
        ]
    },
);

pub static PRIORITY_CLASS: Table = Table::new(
    &[
        Column::NAME,
        Column::integer("Value", PRIORITY_CLASS_VALUE),
        Column::boolean("Global-Default", PRIORITY_CLASS_GLOBAL_DEFAULT),
        Column::AGE,
        Column::string("PreemptionPolicy", PRIORITY_CLASS_PREEMPTION_POLICY),
    ],
    |pc, now| {
        vec![
            name(pc),
            pc.at("value").int().into(),
            pc.at("globalDefault").bool().into(),
            age(pc, now),
            pc.at("preemptionPolicy")
                .opt_str()
                .unwrap_or("PreemptLowerPriority")
                .into(),
        ]
    },
);

pub static RUNTIME_CLASS: Table = Table::new(
    &[
        Column::NAME,
        // Upstream looks the description up under a key `ObjectMeta` does not have.
        Column::string("Handler", ""),
        Column::AGE,
    ],
    |rc, now| vec![name(rc), rc.at("handler").str().into(), age(rc, now)],
);

pub static CERTIFICATE_SIGNING_REQUEST: Table = Table::new(
    &[
        Column::NAME,
        Column::AGE,
        Column::string("SignerName", CERTIFICATE_SIGNING_REQUEST_SPEC_SIGNER_NAME),
        Column::string("Requestor", CERTIFICATE_SIGNING_REQUEST_SPEC_REQUEST),
        Column::string(
            "RequestedDuration",
            CERTIFICATE_SIGNING_REQUEST_SPEC_EXPIRATION_SECONDS,
        ),
        Column::string("Condition", CERTIFICATE_SIGNING_REQUEST_STATUS_CONDITIONS),
    ],
    |csr, now| {
        let spec = csr.at("spec");
        let signer = match spec.at("signerName").str() {
            "" => "<none>",
            s => s,
        };
        let requested = match spec.at("expirationSeconds").opt_int() {
            Some(s) => duration::human(SignedDuration::from_secs(s)),
            None => "<none>".into(),
        };
        vec![
            name(csr),
            age(csr, now),
            signer.into(),
            spec.at("username").str().into(),
            requested.into(),
            csr_condition(csr.at("status")).into(),
        ]
    },
);

/// `Denied`, `Approved` or `Pending`, then `,Failed` and `,Issued` when they apply.
fn csr_condition(status: View<'_>) -> String {
    let has = |ty: &str| {
        status
            .at("conditions")
            .items()
            .any(|c| c.at("type").str() == ty)
    };
    let mut s = if has("Denied") {
        "Denied".to_string()
    } else if has("Approved") {
        "Approved".to_string()
    } else {
        "Pending".to_string()
    };
    if has("Failed") {
        s.push_str(",Failed");
    }
    if !status.at("certificate").is_empty() {
        s.push_str(",Issued");
    }
    s
}

pub static LEASE: Table = Table::new(
    &[
        Column::NAME,
        Column::string("Holder", LEASE_SPEC_HOLDER_IDENTITY),
        Column::AGE,
    ],
    |lease, now| {
        vec![
            name(lease),
            lease.path(&["spec", "holderIdentity"]).str().into(),
            age(lease, now),
        ]
    },
);

/// `spec.matchingPrecedence`, defaulted to 1000.
fn matching_precedence(fs: View<'_>) -> i64 {
    match fs.path(&["spec", "matchingPrecedence"]).int() {
        0 => 1000,
        p => p,
    }
}

pub static FLOW_SCHEMA: Table = Table::new(
    &[
        Column::NAME,
        Column::string("PriorityLevel", PRIORITY_LEVEL_CONFIGURATION_REFERENCE_NAME),
        Column::string("MatchingPrecedence", FLOW_SCHEMA_SPEC_MATCHING_PRECEDENCE),
        Column::string("DistinguisherMethod", FLOW_SCHEMA_SPEC_DISTINGUISHER_METHOD),
        Column::AGE,
        Column::string(
            "MissingPL",
            "references a broken or non-existent PriorityLevelConfiguration",
        ),
    ],
    flow_schema_cells,
)
.with_order(|a, b| {
    matching_precedence(a)
        .cmp(&matching_precedence(b))
        .then_with(|| {
            a.path(&["metadata", "name"])
                .str()
                .cmp(b.path(&["metadata", "name"]).str())
        })
});

fn flow_schema_cells(fs: View<'_>, now: Timestamp) -> Vec<Value> {
    let spec = fs.at("spec");
    let distinguisher = spec.at("distinguisherMethod");
    let distinguisher = if distinguisher.is_set() {
        distinguisher.at("type").str()
    } else {
        "<none>"
    };
    let missing = fs
        .path(&["status", "conditions"])
        .items()
        .find(|c| c.at("type").str() == "Dangling")
        .map_or("?", |c| c.at("status").str());
    vec![
        name(fs),
        spec.path(&["priorityLevelConfiguration", "name"])
            .str()
            .into(),
        matching_precedence(fs).into(),
        distinguisher.into(),
        age(fs, now),
        missing.into(),
    ]
}

pub static PRIORITY_LEVEL_CONFIGURATION: Table = Table::new(
    &[
        Column::NAME,
        Column::string("Type", PRIORITY_LEVEL_CONFIGURATION_SPEC_TYPE),
        Column::string(
            "NominalConcurrencyShares",
            LIMITED_PRIORITY_LEVEL_CONFIGURATION_NOMINAL_CONCURRENCY_SHARES,
        ),
        Column::string("Queues", QUEUING_CONFIGURATION_QUEUES),
        Column::string("HandSize", QUEUING_CONFIGURATION_HAND_SIZE),
        Column::string("QueueLengthLimit", QUEUING_CONFIGURATION_QUEUE_LENGTH_LIMIT),
        Column::AGE,
    ],
    |plc, now| {
        let spec = plc.at("spec");
        let limited = spec.at("limited");
        let none = || Value::from("<none>");
        let (mut shares, mut queues, mut hand_size, mut queue_length) =
            (none(), none(), none(), none());
        if limited.is_set() {
            shares = limited
                .at("nominalConcurrencyShares")
                .opt_int()
                .unwrap_or(30)
                .into();
            let queuing = limited.path(&["limitResponse", "queuing"]);
            if queuing.is_set() {
                let or = |key: &str, default: i64| match queuing.at(key).int() {
                    0 => default,
                    n => n,
                };
                queues = or("queues", 64).into();
                hand_size = or("handSize", 8).into();
                queue_length = or("queueLengthLimit", 50).into();
            }
        }
        vec![
            name(plc),
            spec.at("type").str().into(),
            shares,
            queues,
            hand_size,
            queue_length,
            age(plc, now),
        ]
    },
);

pub static API_SERVICE: Table = Table::new(
    &[
        Column::NAME,
        Column::string(
            "Service",
            "The reference to the service that hosts this API endpoint.",
        ),
        Column::string("Available", "Whether this service is available."),
        Column::AGE,
    ],
    |svc, now| {
        let service = svc.path(&["spec", "service"]);
        let service = if service.is_set() {
            format!(
                "{}/{}",
                service.at("namespace").str(),
                service.at("name").str()
            )
        } else {
            "Local".into()
        };
        let available = svc
            .path(&["status", "conditions"])
            .items()
            .find(|c| c.at("type").str() == "Available");
        let available = match available {
            None => "Unknown".to_string(),
            Some(c) => match (c.at("status").str(), c.at("reason").str()) {
                ("True", _) | (_, "") => c.at("status").str().to_string(),
                (status, reason) => format!("{status} ({reason})"),
            },
        };
        vec![name(svc), service.into(), available.into(), age(svc, now)]
    },
);
