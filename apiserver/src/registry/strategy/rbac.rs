//! RBAC: Roles, ClusterRoles, RoleBindings and ClusterRoleBindings, named as path segments,
//! with upstream's rule, subject and roleRef checks.

use ironkube_machinery::field::{FieldError, Path};
use ironkube_machinery::validation::go_repr;
use ironkube_machinery::validation::names::{dns1123_subdomain, path_segment_name};
use ironkube_machinery::validation::selector::validate_label_selector;
use k8s_openapi::api::rbac::v1::{AggregationRule, PolicyRule, RoleRef, Subject};
use serde_json::{Value, json};

use super::Strategy;
use super::object::{decode, default_field, each_obj, existing_obj};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Which of the four resources a strategy serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RbacKind {
    Role,
    ClusterRole,
    RoleBinding,
    ClusterRoleBinding,
}

pub struct RbacStrategy(pub RbacKind);

impl RbacStrategy {
    fn namespaced(&self) -> bool {
        matches!(self.0, RbacKind::Role | RbacKind::RoleBinding)
    }

    fn is_binding(&self) -> bool {
        matches!(self.0, RbacKind::RoleBinding | RbacKind::ClusterRoleBinding)
    }
}

impl Strategy for RbacStrategy {
    fn validate_name(&self, name: &str) -> Vec<String> {
        path_segment_name(name)
    }

    fn default(&self, obj: &mut Value) {
        if !self.is_binding() {
            return;
        }
        let Some(o) = obj.as_object_mut() else { return };
        if let Some(r) = existing_obj(o, "roleRef") {
            default_field(r, "apiGroup", json!(RBAC_GROUP));
        }
        for s in each_obj(o, "subjects") {
            let group = match s.get("kind").and_then(Value::as_str) {
                Some("User" | "Group") => RBAC_GROUP,
                _ => "",
            };
            if !group.is_empty() {
                default_field(s, "apiGroup", json!(group));
            }
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        if self.is_binding() {
            self.validate_binding(obj)
        } else {
            self.validate_role(obj)
        }
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        if self.is_binding() && new.get("roleRef") != old.get("roleRef") {
            let r: RoleRef = decode(new.get("roleRef"), "roleRef").unwrap_or_default();
            errs.push(go_repr::invalid_repr(
                "roleRef",
                &format!(
                    "rbac.RoleRef{{APIGroup:{:?}, Kind:{:?}, Name:{:?}}}",
                    r.api_group, r.kind, r.name
                ),
                "cannot change roleRef",
            ));
        }
        errs
    }

    fn allow_create_on_update(&self) -> bool {
        true
    }
}

impl RbacStrategy {
    fn validate_role(&self, obj: &Value) -> Vec<FieldError> {
        let rules: Vec<PolicyRule> = match decode(obj.get("rules"), "rules") {
            Ok(r) => r,
            Err(e) => return vec![e],
        };
        let mut errs = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            errs.extend(validate_policy_rule(
                rule,
                self.namespaced(),
                &Path::new("rules").index(i),
            ));
        }
        if self.0 == RbacKind::ClusterRole
            && obj.get("aggregationRule").is_some_and(|a| !a.is_null())
        {
            let agg: AggregationRule = match decode(obj.get("aggregationRule"), "aggregationRule") {
                Ok(a) => a,
                Err(e) => return vec![e],
            };
            let p = Path::new("aggregationRule").child("clusterRoleSelectors");
            let selectors = agg.cluster_role_selectors.unwrap_or_default();
            if selectors.is_empty() {
                errs.push(FieldError::required(
                    &p,
                    "at least one clusterRoleSelector required if aggregationRule is non-nil",
                ));
            }
            for (i, s) in selectors.iter().enumerate() {
                errs.extend(validate_label_selector(Some(s), &p.index(i)));
            }
        }
        errs
    }

    fn validate_binding(&self, obj: &Value) -> Vec<FieldError> {
        let role_ref: RoleRef = match decode(obj.get("roleRef"), "roleRef") {
            Ok(r) => r,
            Err(e) => return vec![e],
        };
        let subjects: Vec<Subject> = match decode(obj.get("subjects"), "subjects") {
            Ok(s) => s,
            Err(e) => return vec![e],
        };
        let mut errs = Vec::new();
        let rp = Path::new("roleRef");
        if role_ref.api_group != RBAC_GROUP {
            errs.push(FieldError::not_supported(
                rp.child("apiGroup"),
                role_ref.api_group.as_str().into(),
                &[RBAC_GROUP],
            ));
        }
        let kinds: &[&str] = if self.namespaced() {
            &["Role", "ClusterRole"]
        } else {
            &["ClusterRole"]
        };
        if !kinds.contains(&role_ref.kind.as_str()) {
            errs.push(FieldError::not_supported(
                rp.child("kind"),
                role_ref.kind.as_str().into(),
                kinds,
            ));
        }
        if role_ref.name.is_empty() {
            errs.push(FieldError::required(rp.child("name"), ""));
        } else {
            for m in path_segment_name(&role_ref.name) {
                errs.push(FieldError::invalid(
                    rp.child("name"),
                    role_ref.name.as_str().into(),
                    m,
                ));
            }
        }
        for (i, s) in subjects.iter().enumerate() {
            errs.extend(validate_subject(
                s,
                self.namespaced(),
                &Path::new("subjects").index(i),
            ));
        }
        errs
    }
}

/// `ValidatePolicyRule`.
fn validate_policy_rule(rule: &PolicyRule, namespaced: bool, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let empty = |v: &Option<Vec<String>>| v.as_ref().is_none_or(Vec::is_empty);
    if rule.verbs.is_empty() {
        errs.push(FieldError::required(
            path.child("verbs"),
            "verbs must contain at least one value",
        ));
    }
    if !empty(&rule.non_resource_urls) {
        let urls = go_repr::string_slice(rule.non_resource_urls.as_deref());
        if namespaced {
            errs.push(go_repr::invalid_repr(
                path.child("nonResourceURLs"),
                &urls,
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if !empty(&rule.api_groups) || !empty(&rule.resources) || !empty(&rule.resource_names) {
            errs.push(go_repr::invalid_repr(
                path.child("nonResourceURLs"),
                &urls,
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return errs;
    }
    if empty(&rule.api_groups) {
        errs.push(FieldError::required(
            path.child("apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if empty(&rule.resources) {
        errs.push(FieldError::required(
            path.child("resources"),
            "resource rules must supply at least one resource",
        ));
    }
    errs
}

/// `ValidateRoleBindingSubject`.
fn validate_subject(s: &Subject, namespaced: bool, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if s.name.is_empty() {
        errs.push(FieldError::required(path.child("name"), ""));
    }
    let group = s.api_group.as_deref().unwrap_or("");
    match s.kind.as_str() {
        "ServiceAccount" => {
            if !s.name.is_empty() {
                for m in dns1123_subdomain(&s.name) {
                    errs.push(FieldError::invalid(
                        path.child("name"),
                        s.name.as_str().into(),
                        m,
                    ));
                }
            }
            if !group.is_empty() {
                errs.push(FieldError::not_supported(
                    path.child("apiGroup"),
                    group.into(),
                    &[""],
                ));
            }
            if !namespaced && s.namespace.as_deref().unwrap_or("").is_empty() {
                errs.push(FieldError::required(path.child("namespace"), ""));
            }
        }
        "User" | "Group" => {
            if group != RBAC_GROUP {
                errs.push(FieldError::not_supported(
                    path.child("apiGroup"),
                    group.into(),
                    &[RBAC_GROUP],
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            path.child("kind"),
            other.into(),
            &["ServiceAccount", "User", "Group"],
        )),
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_need_verbs() {
        let role = json!({"metadata": {"name": "r", "namespace": "d"}, "rules": [{"apiGroups": [""], "resources": ["pods"]}]});
        let errs: Vec<String> = RbacStrategy(RbacKind::Role)
            .validate(&role)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec!["rules[0].verbs: Required value: verbs must contain at least one value"]
        );
        assert_eq!(
            RbacStrategy(RbacKind::Role).validate_name("a/b"),
            vec!["may not contain '/'".to_string()]
        );
    }

    #[test]
    fn bindings() {
        let mut b = json!({"metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [{"kind": "User", "name": "jane"}, {"kind": "ServiceAccount", "name": "default"}]});
        let s = RbacStrategy(RbacKind::ClusterRoleBinding);
        s.default(&mut b);
        assert_eq!(b["roleRef"]["apiGroup"], json!(RBAC_GROUP));
        assert_eq!(b["subjects"][0]["apiGroup"], json!(RBAC_GROUP));
        let errs: Vec<String> = s.validate(&b).iter().map(ToString::to_string).collect();
        assert_eq!(errs, vec!["subjects[1].namespace: Required value"]);
        let mut changed = b.clone();
        changed["roleRef"]["name"] = json!("edit");
        changed["subjects"][1]["namespace"] = json!("default");
        let errs: Vec<String> = s
            .validate_update(&changed, &b)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"edit\"}: cannot change roleRef"
            ]
        );
    }
}
