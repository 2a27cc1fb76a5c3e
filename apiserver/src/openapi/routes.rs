//! Every operation the server offers, derived from the resource table: what both OpenAPI
//! versions render as `paths`.
//!
//! Names, descriptions and parameters follow Kubernetes' conventions: operation ids such as
//! `listCoreV1NamespacedPod` or `connectCoreV1PostNamespacedPodExec`, tags such as
//! `core_v1`, query parameters documented by the options structs they decode into
//! (`ListOptions`, `PatchOptions`, `PodLogOptions`, ...), and the legacy `/watch/` paths.

use ironkube_machinery::resources::{self, ResourceInfo, SubresourceInfo};
use ironkube_machinery::schema;

pub(super) const JSON: &str = "application/json";
pub(super) const YAML: &str = "application/yaml";
pub(super) const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
const JSON_WATCH: &str = "application/json;stream=watch";
const PROTOBUF_WATCH: &str = "application/vnd.kubernetes.protobuf;stream=watch";
const ANY: &str = "*/*";

const OBJECT: &[&str] = &[JSON, YAML, PROTOBUF];
const STREAM: &[&str] = &[JSON, YAML, PROTOBUF, JSON_WATCH, PROTOBUF_WATCH];
const LOG: &[&str] = &["text/plain", JSON, YAML, PROTOBUF];
const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";

/// Resources whose DELETE answers with the deleted object rather than a Status.
const RETURNS_DELETED_OBJECT: &[(&str, &str)] = &[
    ("", "PersistentVolume"),
    ("", "PersistentVolumeClaim"),
    ("", "Pod"),
    ("", "PodTemplate"),
    ("", "ResourceQuota"),
    ("", "Service"),
    ("", "ServiceAccount"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "VolumeAttachment"),
];

const PRETTY: &str = "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).";
const NAMESPACE: &str = "object name and auth scope, such as for teams and projects";
const PROXY_PATH: &str = "path to the resource";

const LIST_PARAMS: &[&str] = &[
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
];
const DELETE_PARAMS: &[&str] = &[
    "dryRun",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "orphanDependents",
    "propagationPolicy",
];
const WRITE_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation"];
const PATCH_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation", "force"];
const LOG_PARAMS: &[&str] = &[
    "container",
    "follow",
    "insecureSkipTLSVerifyBackend",
    "limitBytes",
    "previous",
    "sinceSeconds",
    "stream",
    "tailLines",
    "timestamps",
];
const PROXY_METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Param {
    pub name: &'static str,
    /// `path` or `query`.
    pub location: &'static str,
    pub description: String,
    /// `string`, `integer` or `boolean`.
    pub ty: &'static str,
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Schema {
    /// A component, by name.
    Ref(String),
    /// `{"type": "string"}`.
    String,
}

#[derive(Debug, Clone)]
pub(super) struct Body {
    pub schema: String,
    pub required: bool,
}

#[derive(Debug, Clone)]
pub(super) struct Response {
    pub code: u16,
    pub description: &'static str,
    pub schema: Option<Schema>,
}

#[derive(Debug, Clone)]
pub(super) struct Route {
    pub path: String,
    /// Lower-case HTTP method.
    pub method: &'static str,
    pub operation_id: String,
    pub description: String,
    pub tag: String,
    pub action: Option<&'static str>,
    /// group, version, kind
    pub gvk: Option<(String, String, String)>,
    pub params: Vec<Param>,
    pub body: Option<Body>,
    pub responses: Vec<Response>,
    pub consumes: &'static [&'static str],
    pub produces: &'static [&'static str],
}

/// `rbac.authorization.k8s.io` -> `RbacAuthorization`, `""` -> `Core`.
pub(super) fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    let trimmed = group.strip_suffix(".k8s.io").unwrap_or(group);
    trimmed.split('.').map(capitalize).collect()
}

/// `rbac.authorization.k8s.io` -> `rbacAuthorization`, `""` -> `core`.
pub(super) fn group_tag(group: &str) -> String {
    let camel = group_camel(group);
    let mut chars = camel.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => camel,
    }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// "a Pod", "an Ingress", "Endpoints" (no article before a plural).
fn with_article(kind: &str) -> String {
    if kind.ends_with('s') && !kind.ends_with("ss") {
        return kind.to_string();
    }
    let article = if kind.starts_with(['A', 'E', 'I', 'O', 'U', 'a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {kind}")
}

fn query(options: &str, name: &'static str) -> Param {
    let def = schema::param_def(options, name);
    Param {
        name,
        location: "query",
        description: def.map(|d| d.description.to_string()).unwrap_or_default(),
        ty: def.map_or("string", |d| d.openapi_type),
        required: false,
    }
}

fn queries(options: &str, names: &[&'static str]) -> Vec<Param> {
    names.iter().map(|n| query(options, n)).collect()
}

fn path_param(name: &'static str, description: String) -> Param {
    Param {
        name,
        location: "path",
        description,
        ty: "string",
        required: true,
    }
}

fn pretty() -> Param {
    Param {
        name: "pretty",
        location: "query",
        description: PRETTY.into(),
        ty: "string",
        required: false,
    }
}

fn type_name(group: &str, version: &str, kind: &str) -> String {
    schema::kind_type(group, version, kind)
        .map_or_else(|| format!("{group}.{version}.{kind}"), str::to_string)
}

fn ok_responses(codes: &[(u16, &'static str)], schema: &Schema) -> Vec<Response> {
    let mut out: Vec<Response> = codes
        .iter()
        .map(|(code, description)| Response {
            code: *code,
            description,
            schema: Some(schema.clone()),
        })
        .collect();
    out.push(Response {
        code: 401,
        description: "Unauthorized",
        schema: None,
    });
    out
}

/// One group-version's context while its routes are built.
struct Gv<'a> {
    group: &'a str,
    version: &'a str,
    /// `/api/v1` or `/apis/apps/v1`
    base: String,
    /// `CoreV1`, `AppsV1`
    id: String,
    tag: String,
}

struct Op {
    method: &'static str,
    id: String,
    description: String,
    action: &'static str,
    gvk: (String, String, String),
    params: Vec<Param>,
    body: Option<Body>,
    responses: Vec<Response>,
    consumes: &'static [&'static str],
    produces: &'static [&'static str],
}

impl Gv<'_> {
    fn route(&self, path: &str, op: Op) -> Route {
        Route {
            path: path.to_string(),
            method: op.method,
            operation_id: op.id,
            description: op.description,
            tag: self.tag.clone(),
            action: Some(op.action),
            gvk: Some(op.gvk),
            params: op.params,
            body: op.body,
            responses: op.responses,
            consumes: op.consumes,
            produces: op.produces,
        }
    }
}

/// The routes of one group-version: its resources, subresources and watch paths.
pub(super) fn group_version(group: &str, version: &str) -> Vec<Route> {
    let base = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let gv = Gv {
        group,
        version,
        base,
        id: format!("{}{}", group_camel(group), capitalize(version)),
        tag: format!("{}_{version}", group_tag(group)),
    };
    let mut routes = vec![Route {
        path: format!("{}/", gv.base),
        method: "get",
        operation_id: format!("get{}APIResources", gv.id),
        description: "get available resources".into(),
        tag: gv.tag.clone(),
        action: None,
        gvk: None,
        params: vec![],
        body: None,
        responses: ok_responses(
            &[(200, "OK")],
            &Schema::Ref(format!("{META}.APIResourceList")),
        ),
        consumes: OBJECT,
        produces: OBJECT,
    }];
    for info in resources::resources_of(group, version) {
        resource(&gv, info, &mut routes);
    }
    routes
}

fn resource(gv: &Gv<'_>, info: &ResourceInfo, routes: &mut Vec<Route>) {
    let kind = info.kind;
    let gvk = (
        gv.group.to_string(),
        gv.version.to_string(),
        kind.to_string(),
    );
    let object = Schema::Ref(type_name(gv.group, gv.version, kind));
    let list = Schema::Ref(type_name(gv.group, gv.version, &format!("{kind}List")));
    let object_name = type_name(gv.group, gv.version, kind);
    let scoped = if info.namespaced { "Namespaced" } else { "" };
    let (collection, ns_params) = if info.namespaced {
        (
            format!("{}/namespaces/{{namespace}}/{}", gv.base, info.plural),
            vec![path_param("namespace", NAMESPACE.into())],
        )
    } else {
        (format!("{}/{}", gv.base, info.plural), vec![])
    };
    let item = format!("{collection}/{{name}}");
    let name_param = |k: &str| path_param("name", format!("name of the {k}"));
    let with = |mut base: Vec<Param>, extra: Vec<Param>| {
        base.extend(extra);
        base
    };
    let id = |verb: &str, suffix: &str| format!("{verb}{}{scoped}{kind}{suffix}", gv.id);
    let deleted = if RETURNS_DELETED_OBJECT.contains(&(info.group, kind)) {
        object.clone()
    } else {
        Schema::Ref(format!("{META}.Status"))
    };
    let watch_verb = info.has_verb("watch");

    if info.has_verb("list") {
        let description = if watch_verb {
            format!("list or watch objects of kind {kind}")
        } else {
            format!("list objects of kind {kind}")
        };
        let params = with(
            with(ns_params.clone(), vec![pretty()]),
            queries("ListOptions", LIST_PARAMS),
        );
        routes.push(gv.route(
            &collection,
            Op {
                method: "get",
                id: id("list", ""),
                description: description.clone(),
                action: "list",
                gvk: gvk.clone(),
                params,
                body: None,
                responses: ok_responses(&[(200, "OK")], &list),
                consumes: &[ANY],
                produces: STREAM,
            },
        ));
        if info.namespaced {
            routes.push(gv.route(
                &format!("{}/{}", gv.base, info.plural),
                Op {
                    method: "get",
                    id: format!("list{}{kind}ForAllNamespaces", gv.id),
                    description,
                    action: "list",
                    gvk: gvk.clone(),
                    params: with(vec![pretty()], queries("ListOptions", LIST_PARAMS)),
                    body: None,
                    responses: ok_responses(&[(200, "OK")], &list),
                    consumes: &[ANY],
                    produces: STREAM,
                },
            ));
        }
    }
    if info.has_verb("create") {
        routes.push(gv.route(
            &collection,
            Op {
                method: "post",
                id: id("create", ""),
                description: format!("create {}", with_article(kind)),
                action: "post",
                gvk: gvk.clone(),
                params: with(
                    with(ns_params.clone(), vec![pretty()]),
                    queries("CreateOptions", WRITE_PARAMS),
                ),
                body: Some(Body {
                    schema: object_name.clone(),
                    required: true,
                }),
                responses: ok_responses(
                    &[(200, "OK"), (201, "Created"), (202, "Accepted")],
                    &object,
                ),
                consumes: &[ANY],
                produces: OBJECT,
            },
        ));
    }
    if info.has_verb("deletecollection") {
        let mut params = with(
            with(ns_params.clone(), vec![pretty()]),
            queries("DeleteOptions", DELETE_PARAMS),
        );
        params.extend(queries(
            "ListOptions",
            &[
                "continue",
                "fieldSelector",
                "labelSelector",
                "limit",
                "resourceVersion",
                "resourceVersionMatch",
                "sendInitialEvents",
                "timeoutSeconds",
            ],
        ));
        routes.push(gv.route(
            &collection,
            Op {
                method: "delete",
                id: format!("delete{}Collection{scoped}{kind}", gv.id),
                description: format!("delete collection of {kind}"),
                action: "deletecollection",
                gvk: gvk.clone(),
                params,
                body: Some(Body {
                    schema: format!("{META}.DeleteOptions"),
                    required: false,
                }),
                responses: ok_responses(&[(200, "OK")], &Schema::Ref(format!("{META}.Status"))),
                consumes: &[ANY],
                produces: OBJECT,
            },
        ));
    }
    let item_params = || {
        with(
            with(vec![name_param(kind)], ns_params.clone()),
            vec![pretty()],
        )
    };
    if info.has_verb("get") {
        routes.push(gv.route(
            &item,
            Op {
                method: "get",
                id: id("read", ""),
                description: format!("read the specified {kind}"),
                action: "get",
                gvk: gvk.clone(),
                params: item_params(),
                body: None,
                responses: ok_responses(&[(200, "OK")], &object),
                consumes: &[ANY],
                produces: OBJECT,
            },
        ));
    }
    if info.has_verb("update") {
        routes.push(gv.route(
            &item,
            Op {
                method: "put",
                id: id("replace", ""),
                description: format!("replace the specified {kind}"),
                action: "put",
                gvk: gvk.clone(),
                params: with(item_params(), queries("UpdateOptions", WRITE_PARAMS)),
                body: Some(Body {
                    schema: object_name.clone(),
                    required: true,
                }),
                responses: ok_responses(&[(200, "OK"), (201, "Created")], &object),
                consumes: &[ANY],
                produces: OBJECT,
            },
        ));
    }
    if info.has_verb("delete") {
        routes.push(gv.route(
            &item,
            Op {
                method: "delete",
                id: id("delete", ""),
                description: format!("delete {}", with_article(kind)),
                action: "delete",
                gvk: gvk.clone(),
                params: with(item_params(), queries("DeleteOptions", DELETE_PARAMS)),
                body: Some(Body {
                    schema: format!("{META}.DeleteOptions"),
                    required: false,
                }),
                responses: ok_responses(&[(200, "OK"), (202, "Accepted")], &deleted),
                consumes: &[ANY],
                produces: OBJECT,
            },
        ));
    }
    if info.has_verb("patch") {
        routes.push(gv.route(
            &item,
            Op {
                method: "patch",
                id: id("patch", ""),
                description: format!("partially update the specified {kind}"),
                action: "patch",
                gvk: gvk.clone(),
                params: with(item_params(), queries("PatchOptions", PATCH_PARAMS)),
                body: Some(Body {
                    schema: format!("{META}.Patch"),
                    required: true,
                }),
                responses: ok_responses(&[(200, "OK"), (201, "Created")], &object),
                consumes: PATCH_TYPES,
                produces: OBJECT,
            },
        ));
    }
    for sub in info.subresources {
        subresource(gv, info, sub, &item, &ns_params, routes);
    }
    if watch_verb {
        let watch_base = if info.namespaced {
            format!("{}/watch/namespaces/{{namespace}}/{}", gv.base, info.plural)
        } else {
            format!("{}/watch/{}", gv.base, info.plural)
        };
        let watch_params = |mut base: Vec<Param>| {
            base.push(pretty());
            base.extend(queries("ListOptions", LIST_PARAMS));
            base
        };
        let watch_event = Schema::Ref(format!("{META}.WatchEvent"));
        let list_description = format!(
            "watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."
        );
        routes.push(gv.route(
            &watch_base,
            Op {
                method: "get",
                id: id("watch", "List"),
                description: list_description.clone(),
                action: "watchlist",
                gvk: gvk.clone(),
                params: watch_params(ns_params.clone()),
                body: None,
                responses: ok_responses(&[(200, "OK")], &watch_event),
                consumes: &[ANY],
                produces: STREAM,
            },
        ));
        routes.push(gv.route(&format!("{watch_base}/{{name}}"), Op {
            method: "get",
            id: id("watch", ""),
            description: format!(
                "watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter."
            ),
            action: "watch",
            gvk: gvk.clone(),
            params: watch_params(with(vec![name_param(kind)], ns_params.clone())),
            body: None,
            responses: ok_responses(&[(200, "OK")], &watch_event),
            consumes: &[ANY],
            produces: STREAM,
        }));
        if info.namespaced {
            routes.push(gv.route(
                &format!("{}/watch/{}", gv.base, info.plural),
                Op {
                    method: "get",
                    id: format!("watch{}{kind}ListForAllNamespaces", gv.id),
                    description: list_description,
                    action: "watchlist",
                    gvk,
                    params: watch_params(vec![]),
                    body: None,
                    responses: ok_responses(&[(200, "OK")], &watch_event),
                    consumes: &[ANY],
                    produces: STREAM,
                },
            ));
        }
    }
}

fn subresource(
    gv: &Gv<'_>,
    info: &ResourceInfo,
    sub: &SubresourceInfo,
    item: &str,
    ns_params: &[Param],
    routes: &mut Vec<Route>,
) {
    let parent = info.kind;
    let scoped = if info.namespaced { "Namespaced" } else { "" };
    let sub_camel = capitalize(sub.name);
    let path = format!("{item}/{}", sub.name);
    let gvk = (
        sub.group.to_string(),
        sub.version.to_string(),
        sub.kind.to_string(),
    );
    let name = path_param("name", format!("name of the {}", sub.kind));
    let base_params = |pretty_too: bool| {
        let mut p = vec![name.clone()];
        p.extend(ns_params.iter().cloned());
        if pretty_too {
            p.push(pretty());
        }
        p
    };
    let object_name = type_name(sub.group, sub.version, sub.kind);
    let object = Schema::Ref(object_name.clone());
    let id =
        |verb: &str, suffix: &str| format!("{verb}{}{scoped}{parent}{sub_camel}{suffix}", gv.id);
    let op = |method,
              id: String,
              description: String,
              action,
              params,
              body,
              responses,
              consumes,
              produces| Op {
        method,
        id,
        description,
        action,
        gvk: gvk.clone(),
        params,
        body,
        responses,
        consumes,
        produces,
    };
    match sub.name {
        "log" => {
            let mut params = base_params(true);
            params.extend(queries("PodLogOptions", LOG_PARAMS));
            routes.push(gv.route(
                &path,
                op(
                    "get",
                    id("read", ""),
                    format!("read log of the specified {parent}"),
                    "get",
                    params,
                    None,
                    ok_responses(&[(200, "OK")], &Schema::String),
                    &[ANY],
                    LOG,
                ),
            ));
        }
        "exec" | "attach" | "portforward" | "proxy" => {
            let options = match sub.name {
                "exec" => "PodExecOptions",
                "attach" => "PodAttachOptions",
                "portforward" => "PodPortForwardOptions",
                _ => sub.kind,
            };
            let query_names: &[&'static str] = match sub.name {
                "exec" => &["command", "container", "stderr", "stdin", "stdout", "tty"],
                "attach" => &["container", "stderr", "stdin", "stdout", "tty"],
                "portforward" => &["ports"],
                _ => &["path"],
            };
            let methods: &[&'static str] = if sub.name == "proxy" {
                PROXY_METHODS
            } else {
                &["get", "post"]
            };
            let variants: &[bool] = if sub.name == "proxy" {
                &[false, true]
            } else {
                &[false]
            };
            for with_path in variants {
                let mut p = path.clone();
                let mut params = base_params(false);
                if *with_path {
                    p.push_str("/{path}");
                    params.push(path_param("path", PROXY_PATH.into()));
                }
                params.extend(queries(options, query_names));
                for method in methods {
                    let verb = capitalize(method);
                    let suffix = if *with_path { "WithPath" } else { "" };
                    routes.push(gv.route(
                        &p,
                        op(
                            method,
                            format!("connect{}{verb}{scoped}{parent}{sub_camel}{suffix}", gv.id),
                            format!(
                                "connect {} requests to {} of {parent}",
                                method.to_uppercase(),
                                sub.name
                            ),
                            "connect",
                            params.clone(),
                            None,
                            ok_responses(&[(200, "OK")], &Schema::String),
                            &[ANY],
                            &[ANY],
                        ),
                    ));
                }
            }
        }
        _ => {
            let mut params = base_params(true);
            if sub.verbs.contains(&"create") {
                params.extend(queries("CreateOptions", WRITE_PARAMS));
                routes.push(gv.route(
                    &path,
                    op(
                        "post",
                        id("create", ""),
                        format!("create {} of {}", sub.name, with_article(parent)),
                        "post",
                        params.clone(),
                        Some(Body {
                            schema: object_name.clone(),
                            required: true,
                        }),
                        ok_responses(&[(200, "OK"), (201, "Created"), (202, "Accepted")], &object),
                        &[ANY],
                        OBJECT,
                    ),
                ));
                return;
            }
            if sub.verbs.contains(&"get") {
                routes.push(gv.route(
                    &path,
                    op(
                        "get",
                        id("read", ""),
                        format!("read {} of the specified {parent}", sub.name),
                        "get",
                        params.clone(),
                        None,
                        ok_responses(&[(200, "OK")], &object),
                        &[ANY],
                        OBJECT,
                    ),
                ));
            }
            if sub.verbs.contains(&"update") {
                let mut p = params.clone();
                p.extend(queries("UpdateOptions", WRITE_PARAMS));
                routes.push(gv.route(
                    &path,
                    op(
                        "put",
                        id("replace", ""),
                        format!("replace {} of the specified {parent}", sub.name),
                        "put",
                        p,
                        Some(Body {
                            schema: object_name.clone(),
                            required: true,
                        }),
                        ok_responses(&[(200, "OK"), (201, "Created")], &object),
                        &[ANY],
                        OBJECT,
                    ),
                ));
            }
            if sub.verbs.contains(&"patch") {
                let mut p = params.clone();
                p.extend(queries("PatchOptions", PATCH_PARAMS));
                routes.push(gv.route(
                    &path,
                    op(
                        "patch",
                        id("patch", ""),
                        format!("partially update {} of the specified {parent}", sub.name),
                        "patch",
                        p,
                        Some(Body {
                            schema: format!("{META}.Patch"),
                            required: true,
                        }),
                        ok_responses(&[(200, "OK"), (201, "Created")], &object),
                        PATCH_TYPES,
                        OBJECT,
                    ),
                ));
            }
        }
    }
}

/// `/apis/<group>/`: the group's discovery document.
pub(super) fn group(group: &str) -> Vec<Route> {
    vec![Route {
        path: format!("/apis/{group}/"),
        method: "get",
        operation_id: format!("get{}APIGroup", group_camel(group)),
        description: "get information of a group".into(),
        tag: group_tag(group),
        action: None,
        gvk: None,
        params: vec![],
        body: None,
        responses: ok_responses(&[(200, "OK")], &Schema::Ref(format!("{META}.APIGroup"))),
        consumes: OBJECT,
        produces: OBJECT,
    }]
}

/// `/api/`: the legacy group's versions.
pub(super) fn core_versions() -> Vec<Route> {
    vec![Route {
        path: "/api/".into(),
        method: "get",
        operation_id: "getCoreAPIVersions".into(),
        description: "get available API versions".into(),
        tag: "core".into(),
        action: None,
        gvk: None,
        params: vec![],
        body: None,
        responses: ok_responses(&[(200, "OK")], &Schema::Ref(format!("{META}.APIVersions"))),
        consumes: OBJECT,
        produces: OBJECT,
    }]
}

/// `/apis/`: every group.
pub(super) fn api_versions() -> Vec<Route> {
    vec![Route {
        path: "/apis/".into(),
        method: "get",
        operation_id: "getAPIVersions".into(),
        description: "get available API versions".into(),
        tag: "apis".into(),
        action: None,
        gvk: None,
        params: vec![],
        body: None,
        responses: ok_responses(&[(200, "OK")], &Schema::Ref(format!("{META}.APIGroupList"))),
        consumes: OBJECT,
        produces: OBJECT,
    }]
}

/// `/version/`.
pub(super) fn version() -> Vec<Route> {
    vec![Route {
        path: "/version/".into(),
        method: "get",
        operation_id: "getCodeVersion".into(),
        description: "get the version information for this server".into(),
        tag: "version".into(),
        action: None,
        gvk: None,
        params: vec![],
        body: None,
        responses: ok_responses(
            &[(200, "OK")],
            &Schema::Ref("io.k8s.apimachinery.pkg.version.Info".into()),
        ),
        consumes: &[JSON],
        produces: &[JSON],
    }]
}

/// `/.well-known/openid-configuration/`: the service account issuer's discovery document.
pub(super) fn openid_configuration() -> Vec<Route> {
    vec![Route {
        path: "/.well-known/openid-configuration/".into(),
        method: "get",
        operation_id: "getServiceAccountIssuerOpenIDConfiguration".into(),
        description: "get service account issuer OpenID configuration, also known as the 'OIDC discovery doc'".into(),
        tag: "WellKnown".into(),
        action: None,
        gvk: None,
        params: vec![],
        body: None,
        responses: ok_responses(&[(200, "OK")], &Schema::String),
        consumes: &[],
        produces: &[JSON],
    }]
}

/// `/openid/v1/jwks/`: the service account issuer's signing keys.
pub(super) fn openid_keyset() -> Vec<Route> {
    vec![Route {
        path: "/openid/v1/jwks/".into(),
        method: "get",
        operation_id: "getServiceAccountIssuerOpenIDKeyset".into(),
        description: "get service account issuer OpenID JSON Web Key Set (contains public token verification keys)".into(),
        tag: "openid".into(),
        action: None,
        gvk: None,
        params: vec![],
        body: None,
        responses: ok_responses(&[(200, "OK")], &Schema::String),
        consumes: &[],
        produces: &["application/jwk-set+json"],
    }]
}
