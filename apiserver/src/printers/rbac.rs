//! `rbac.authorization.k8s.io/v1` bindings. Roles and cluster roles have no printer
//! upstream (Name/Created At).

use jiff::Timestamp;
use serde_json::Value;

use super::docs::*;
use super::view::View;
use super::{Column, Table, age, name};

pub static ROLE_BINDING: Table = Table::new(
    &[
        Column::NAME,
        Column::string("Role", ROLE_BINDING_ROLE_REF),
        Column::AGE,
        Column::string("Users", "Users in the roleBinding").wide(),
        Column::string("Groups", "Groups in the roleBinding").wide(),
        Column::string("ServiceAccounts", "ServiceAccounts in the roleBinding").wide(),
    ],
    binding_cells,
);

pub static CLUSTER_ROLE_BINDING: Table = Table::new(
    &[
        Column::NAME,
        Column::string("Role", CLUSTER_ROLE_BINDING_ROLE_REF),
        Column::AGE,
        Column::string("Users", "Users in the clusterRoleBinding").wide(),
        Column::string("Groups", "Groups in the clusterRoleBinding").wide(),
        Column::string(
            "ServiceAccounts",
            "ServiceAccounts in the clusterRoleBinding",
        )
        .wide(),
    ],
    binding_cells,
);

fn binding_cells(binding: View<'_>, now: Timestamp) -> Vec<Value> {
    let role = binding.at("roleRef");
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut service_accounts = Vec::new();
    for subject in binding.at("subjects").items() {
        let subject_name = subject.at("name").str();
        match subject.at("kind").str() {
            "ServiceAccount" => {
                service_accounts.push(format!("{}/{subject_name}", subject.at("namespace").str()))
            }
            "User" => users.push(subject_name.to_string()),
            "Group" => groups.push(subject_name.to_string()),
            _ => {}
        }
    }
    vec![
        name(binding),
        format!("{}/{}", role.at("kind").str(), role.at("name").str()).into(),
        age(binding, now),
        users.join(", ").into(),
        groups.join(", ").into(),
        service_accounts.join(", ").into(),
    ]
}
