//! Request info: what a path and method ask for, parsed once (upstream's RequestInfoFactory).

use http::Method;

/// The API verb of a resource request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

/// A request for a resource (or subresource) under `/api/v1` or `/apis/<group>/<version>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRequest {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// Extra path after the subresource (e.g. `proxy/<path>`).
    pub rest: Vec<String>,
    pub verb: Verb,
}

/// What a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/<group>`
    Group(String),
    /// `/api/v1` or `/apis/<group>/<version>`
    ResourceList { group: String, version: String },
    Resource(ResourceRequest),
    /// Anything else (`/version`, `/healthz`, `/openapi/v3`, ...).
    NonResource(String),
}

fn is_watch_param(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&').any(|kv| matches!(kv, "watch=true" | "watch=1" | "watch=True" | "watch=TRUE"))
    })
}

fn decode_segment(s: &str) -> String {
    super::query::percent_decode(s, false)
}

/// Parses a request like upstream: `/apis/apps/v1/namespaces/ns/deployments/web/scale`.
pub fn parse(method: &Method, path: &str, query: Option<&str>) -> Target {
    let trimmed = path.trim_matches('/');
    let parts: Vec<String> = if trimmed.is_empty() { Vec::new() } else { trimmed.split('/').map(decode_segment).collect() };
    let (group, version, rest) = match parts.first().map(String::as_str) {
        Some("api") => match parts.len() {
            1 => return Target::CoreVersions,
            2 => return Target::ResourceList { group: String::new(), version: parts[1].clone() },
            _ => (String::new(), parts[1].clone(), &parts[2..]),
        },
        Some("apis") => match parts.len() {
            1 => return Target::Groups,
            2 => return Target::Group(parts[1].clone()),
            3 => return Target::ResourceList { group: parts[1].clone(), version: parts[2].clone() },
            _ => (parts[1].clone(), parts[2].clone(), &parts[3..]),
        },
        _ => return Target::NonResource(format!("/{trimmed}")),
    };
    let mut rest: Vec<String> = rest.to_vec();
    let mut watch = false;
    if rest.first().is_some_and(|s| s == "watch") {
        watch = true;
        rest.remove(0);
    }
    let mut namespace = None;
    if rest.first().is_some_and(|s| s == "namespaces") {
        if rest.len() >= 3 {
            namespace = Some(rest[1].clone());
            rest.drain(0..2);
        } else if rest.len() == 2 {
            // `/namespaces/<name>`: the namespace object itself.
            namespace = None;
        }
    }
    let Some(resource) = rest.first().cloned() else {
        return Target::NonResource(format!("/{trimmed}"));
    };
    // For `namespaces/<name>/<sub>` with no namespace taken above, name is the next part.
    let name = rest.get(1).cloned();
    let subresource = rest.get(2).cloned();
    let extra = if rest.len() > 3 { rest[3..].to_vec() } else { Vec::new() };
    // `/namespaces/<ns>/<sub>`: parsed as namespace=<ns> resource=<sub>; upstream treats
    // `finalize` and `status` of namespaces as subresources.
    let (namespace, resource, name, subresource) = match (&namespace, resource.as_str(), &name) {
        (Some(ns), "finalize" | "status", None) if rest.len() == 1 => {
            (None, "namespaces".to_string(), Some(ns.clone()), Some(resource.clone()))
        }
        _ => (namespace, resource, name, subresource),
    };
    let collection = name.is_none();
    let verb = match *method {
        Method::GET | Method::HEAD if watch || (collection && is_watch_param(query)) => Verb::Watch,
        Method::GET | Method::HEAD if collection => Verb::List,
        Method::GET | Method::HEAD => {
            if is_watch_param(query) && subresource.is_none() {
                Verb::Watch
            } else {
                Verb::Get
            }
        }
        Method::POST => Verb::Create,
        Method::PUT => Verb::Update,
        Method::PATCH => Verb::Patch,
        Method::DELETE if collection => Verb::DeleteCollection,
        Method::DELETE => Verb::Delete,
        _ => Verb::Get,
    };
    Target::Resource(ResourceRequest { group, version, namespace, resource, name, subresource, rest: extra, verb })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(method: Method, path: &str, query: Option<&str>) -> ResourceRequest {
        match parse(&method, path, query) {
            Target::Resource(r) => r,
            other => panic!("expected a resource request, got {other:?}"),
        }
    }

    #[test]
    fn paths_parse_like_upstream() {
        let r = res(Method::GET, "/api/v1/namespaces/default/pods", None);
        assert_eq!((r.namespace.as_deref(), r.resource.as_str(), r.verb), (Some("default"), "pods", Verb::List));
        let r = res(Method::GET, "/api/v1/namespaces/default/pods", Some("watch=true&resourceVersion=5"));
        assert_eq!(r.verb, Verb::Watch);
        let r = res(Method::GET, "/api/v1/namespaces/default", None);
        assert_eq!((r.resource.as_str(), r.name.as_deref(), r.namespace), ("namespaces", Some("default"), None));
        let r = res(Method::PUT, "/api/v1/namespaces/x/finalize", None);
        assert_eq!((r.resource.as_str(), r.name.as_deref(), r.subresource.as_deref()), ("namespaces", Some("x"), Some("finalize")));
        let r = res(Method::PATCH, "/apis/apps/v1/namespaces/d/deployments/web/scale", None);
        assert_eq!((r.group.as_str(), r.subresource.as_deref(), r.verb), ("apps", Some("scale"), Verb::Patch));
        let r = res(Method::DELETE, "/api/v1/nodes", None);
        assert_eq!(r.verb, Verb::DeleteCollection);
        let r = res(Method::GET, "/api/v1/watch/namespaces/d/pods/p", None);
        assert_eq!((r.verb, r.name.as_deref()), (Verb::Watch, Some("p")));
        assert_eq!(parse(&Method::GET, "/apis/apps", None), Target::Group("apps".into()));
        assert_eq!(parse(&Method::GET, "/version", None), Target::NonResource("/version".into()));
    }
}
