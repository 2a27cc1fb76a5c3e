//! Who is asking (from the client certificate) and whether they may.
//!
//! Authentication: an x509 client certificate signed by `--client-ca-file` gives the user
//! (CommonName) and groups (Organizations). Authorization: every authenticated user may do
//! everything for now (RBAC comes later); anonymous users may read health and version only.

use ironkube_machinery::ApiError;

use super::request_info::Target;

/// The authenticated user of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    pub fn anonymous() -> Self {
        UserInfo { name: "system:anonymous".into(), groups: vec!["system:unauthenticated".into()] }
    }

    pub fn is_anonymous(&self) -> bool {
        self.name == "system:anonymous"
    }

    /// From a client certificate (DER): CN is the user, each O a group.
    pub fn from_certificate(der: &[u8]) -> Option<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let subject = cert.subject();
        let name = subject.iter_common_name().next()?.as_str().ok()?.to_string();
        let mut groups: Vec<String> =
            subject.iter_organization().filter_map(|o| o.as_str().ok().map(str::to_string)).collect();
        groups.push("system:authenticated".into());
        Some(UserInfo { name, groups })
    }
}

const PUBLIC_PATHS: &[&str] = &["/healthz", "/livez", "/readyz", "/version"];

/// Decides whether `user` may make this request.
pub fn authorize(user: &UserInfo, target: &Target, method: &http::Method) -> Result<(), ApiError> {
    if !user.is_anonymous() {
        return Ok(());
    }
    let verb = method.as_str().to_ascii_lowercase();
    match target {
        Target::NonResource(p) if *method == http::Method::GET && PUBLIC_PATHS.iter().any(|pp| p == pp || p.starts_with(&format!("{pp}/"))) => Ok(()),
        Target::Resource(r) => {
            let gr = ironkube_machinery::GroupResource::new(&r.group, &r.resource);
            let scope = match &r.namespace {
                Some(ns) => format!(" in the namespace \"{ns}\""),
                None => String::new(),
            };
            let what = match &r.subresource {
                Some(s) => format!("resource \"{}/{s}\"", r.resource),
                None => format!("resource \"{}\"", r.resource),
            };
            Err(ApiError::forbidden(
                &gr,
                r.name.as_deref().unwrap_or(""),
                &format!("User \"{}\" cannot {} {what} in API group \"{}\"{scope}", user.name, r.verb.as_str(), r.group),
            ))
        }
        other => {
            let path = match other {
                Target::NonResource(p) => p.clone(),
                Target::CoreVersions => "/api".into(),
                Target::Groups => "/apis".into(),
                Target::Group(g) => format!("/apis/{g}"),
                Target::ResourceList { group, version } if group.is_empty() => format!("/api/{version}"),
                Target::ResourceList { group, version } => format!("/apis/{group}/{version}"),
                Target::Resource(_) => String::new(),
            };
            let mut e = ApiError::new(
                403,
                ironkube_machinery::Reason::Forbidden,
                format!("forbidden: User \"{}\" cannot {verb} path \"{path}\"", user.name),
            );
            e.details = Some(Default::default());
            Err(e)
        }
    }
}
