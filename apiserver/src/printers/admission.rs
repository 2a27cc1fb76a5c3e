//! `admissionregistration.k8s.io/v1`: webhook configurations, validating admission
//! policies and their bindings.

use super::view::View;
use super::{Column, Table, age, format, name};

const WEBHOOKS_DOC: &str =
    "Webhooks indicates the number of webhooks registered in this configuration";

pub static MUTATING_WEBHOOK_CONFIGURATION: Table = Table::new(
    &[
        Column::NAME,
        Column::integer("Webhooks", WEBHOOKS_DOC),
        Column::AGE,
    ],
    |c, now| vec![name(c), (c.at("webhooks").len() as i64).into(), age(c, now)],
);

pub static VALIDATING_WEBHOOK_CONFIGURATION: Table = Table::new(
    &[
        Column::NAME,
        Column::integer("Webhooks", WEBHOOKS_DOC),
        Column::AGE,
    ],
    |c, now| vec![name(c), (c.at("webhooks").len() as i64).into(), age(c, now)],
);

pub static VALIDATING_ADMISSION_POLICY: Table = Table::new(
    &[
        Column::NAME,
        Column::integer(
            "Validations",
            "Validations indicates the number of validation rules defined in this configuration",
        ),
        Column::string(
            "ParamKind",
            "ParamKind specifies the kind of resources used to parameterize this policy",
        ),
        Column::AGE,
    ],
    |p, now| {
        let spec = p.at("spec");
        let param_kind = spec.at("paramKind");
        let param_kind = if param_kind.is_set() {
            format!(
                "{}/{}",
                param_kind.at("apiVersion").str(),
                param_kind.at("kind").str()
            )
        } else {
            "<unset>".into()
        };
        vec![
            name(p),
            (spec.at("validations").len() as i64).into(),
            param_kind.into(),
            age(p, now),
        ]
    },
);

pub static VALIDATING_ADMISSION_POLICY_BINDING: Table = Table::new(
    &[
        Column::NAME,
        Column::string(
            "PolicyName",
            "PolicyName indicates the policy definition which the policy binding binded to",
        ),
        Column::string(
            "ParamRef",
            "ParamRef indicates the param resource which sets the configration param",
        ),
        Column::AGE,
    ],
    |b, now| {
        let spec = b.at("spec");
        vec![
            name(b),
            spec.at("policyName").str().into(),
            param_ref(spec.at("paramRef")).into(),
            age(b, now),
        ]
    },
);

/// `namespace/name`, `*/name` when the namespace is not known, the selector's Go form, or
/// `<unset>`.
fn param_ref(pr: View<'_>) -> String {
    if !pr.is_set() {
        return "<unset>".into();
    }
    let param_name = pr.at("name").str();
    if !param_name.is_empty() {
        match pr.at("namespace").str() {
            "" => format!("*/{param_name}"),
            ns => format!("{ns}/{param_name}"),
        }
    } else if pr.at("selector").is_set() {
        format::label_selector_go_repr(pr.at("selector"))
    } else {
        "<unset>".into()
    }
}
