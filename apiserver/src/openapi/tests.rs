use std::collections::BTreeSet;
use std::path::Path;

use ironkube_machinery::schema;

use super::*;

fn v3_doc(name: &str) -> Value {
    let doc = documents()
        .v3()
        .docs
        .get(name)
        .unwrap_or_else(|| panic!("no document {name}"));
    serde_json::from_slice(&doc.bytes).expect("document is JSON")
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc.pointer(&format!("/components/schemas/{name}"))
        .unwrap_or_else(|| panic!("no schema {name}"))
}

fn v2_doc() -> Value {
    serde_json::from_slice(&documents().v2().bytes).expect("v2 is JSON")
}

#[test]
fn index_lists_every_document_with_its_hash() {
    let v3 = documents().v3();
    let index: Value = serde_json::from_slice(&v3.index).expect("index is JSON");
    let paths = index["paths"].as_object().expect("paths");
    let mut expected: BTreeSet<String> = ["api", "apis", "version"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for g in resources::groups() {
        if !g.group.is_empty() {
            expected.insert(format!("apis/{}", g.group));
        }
        for v in &g.versions {
            expected.insert(if g.group.is_empty() {
                format!("api/{v}")
            } else {
                format!("apis/{}/{v}", g.group)
            });
        }
    }
    let listed: BTreeSet<String> = paths.keys().cloned().collect();
    assert_eq!(listed, expected);
    for (name, entry) in paths {
        let doc = &v3.docs[name];
        assert_eq!(doc.hash, hex_upper(&Sha512::digest(&doc.bytes)));
        assert_eq!(
            entry["serverRelativeURL"],
            json!(format!("/openapi/v3/{name}?hash={}", doc.hash))
        );
    }
    // Service account issuer discovery is listed only when served.
    let with_openid = Documents::new(true);
    let names: Vec<&String> = with_openid.v3().docs.keys().collect();
    assert!(
        names
            .iter()
            .any(|n| *n == ".well-known/openid-configuration")
    );
    assert!(names.iter().any(|n| *n == "openid/v1/jwks"));
}

#[test]
fn pod_patch_operation_lets_kubectl_validate_on_the_server() {
    let doc = v3_doc("api/v1");
    assert_eq!(doc["openapi"], json!("3.0.0"));
    assert_eq!(
        doc["info"],
        json!({"title": "Kubernetes", "version": "1.33"})
    );
    let item = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"];
    let patch = &item["patch"];
    assert_eq!(patch["operationId"], json!("patchCoreV1NamespacedPod"));
    assert_eq!(patch["tags"], json!(["core_v1"]));
    assert_eq!(patch["x-kubernetes-action"], json!("patch"));
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        json!({"group": "", "version": "v1", "kind": "Pod"})
    );
    let names: Vec<&str> = patch["parameters"]
        .as_array()
        .expect("params")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["dryRun", "fieldManager", "fieldValidation", "force"]
    );
    let body: Vec<&String> = patch["requestBody"]["content"]
        .as_object()
        .expect("content")
        .keys()
        .collect();
    assert_eq!(
        body,
        [
            "application/apply-patch+yaml",
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json"
        ]
    );
    let shared: Vec<&str> = item["parameters"]
        .as_array()
        .expect("path params")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(shared, ["name", "namespace", "pretty"]);
    assert_eq!(
        patch["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        json!("#/components/schemas/io.k8s.api.core.v1.Pod")
    );
}

#[test]
fn operations_are_named_as_upstream_names_them() {
    // (document, path, method, operationId, action)
    let cases = [
        (
            "api/v1",
            "/api/v1/namespaces/{namespace}/pods",
            "get",
            "listCoreV1NamespacedPod",
            Some("list"),
        ),
        (
            "api/v1",
            "/api/v1/pods",
            "get",
            "listCoreV1PodForAllNamespaces",
            Some("list"),
        ),
        (
            "api/v1",
            "/api/v1/namespaces/{namespace}/pods",
            "delete",
            "deleteCoreV1CollectionNamespacedPod",
            Some("deletecollection"),
        ),
        (
            "api/v1",
            "/api/v1/namespaces/{namespace}/pods/{name}/log",
            "get",
            "readCoreV1NamespacedPodLog",
            Some("get"),
        ),
        (
            "api/v1",
            "/api/v1/namespaces/{namespace}/pods/{name}/exec",
            "post",
            "connectCoreV1PostNamespacedPodExec",
            Some("connect"),
        ),
        (
            "api/v1",
            "/api/v1/nodes/{name}/proxy/{path}",
            "head",
            "connectCoreV1HeadNodeProxyWithPath",
            Some("connect"),
        ),
        (
            "api/v1",
            "/api/v1/namespaces/{namespace}/pods/{name}/eviction",
            "post",
            "createCoreV1NamespacedPodEviction",
            Some("post"),
        ),
        (
            "api/v1",
            "/api/v1/namespaces/{name}/finalize",
            "put",
            "replaceCoreV1NamespaceFinalize",
            Some("put"),
        ),
        (
            "api/v1",
            "/api/v1/watch/namespaces/{namespace}/pods",
            "get",
            "watchCoreV1NamespacedPodList",
            Some("watchlist"),
        ),
        (
            "api/v1",
            "/api/v1/watch/pods",
            "get",
            "watchCoreV1PodListForAllNamespaces",
            Some("watchlist"),
        ),
        (
            "api/v1",
            "/api/v1/watch/namespaces/{namespace}/pods/{name}",
            "get",
            "watchCoreV1NamespacedPod",
            Some("watch"),
        ),
        ("api/v1", "/api/v1/", "get", "getCoreV1APIResources", None),
        (
            "apis/apps/v1",
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale",
            "patch",
            "patchAppsV1NamespacedDeploymentScale",
            Some("patch"),
        ),
        (
            "apis/rbac.authorization.k8s.io/v1",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            "post",
            "createRbacAuthorizationV1ClusterRole",
            Some("post"),
        ),
        (
            "apis/rbac.authorization.k8s.io",
            "/apis/rbac.authorization.k8s.io/",
            "get",
            "getRbacAuthorizationAPIGroup",
            None,
        ),
        (
            "apis/authorization.k8s.io/v1",
            "/apis/authorization.k8s.io/v1/namespaces/{namespace}/localsubjectaccessreviews",
            "post",
            "createAuthorizationV1NamespacedLocalSubjectAccessReview",
            Some("post"),
        ),
        ("api", "/api/", "get", "getCoreAPIVersions", None),
        ("apis", "/apis/", "get", "getAPIVersions", None),
        ("version", "/version/", "get", "getCodeVersion", None),
    ];
    for (doc_name, path, method, id, action) in cases {
        let doc = v3_doc(doc_name);
        let op = &doc["paths"][path][method];
        assert_eq!(op["operationId"], json!(id), "{path} {method}");
        assert_eq!(
            op.get("x-kubernetes-action").and_then(Value::as_str),
            action,
            "{path} {method}"
        );
    }
    // Scale speaks autoscaling/v1; the connect options kinds name the connect operations.
    let apps = v3_doc("apis/apps/v1");
    assert_eq!(
        apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["get"]["x-kubernetes-group-version-kind"],
        json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
    );
    let core = v3_doc("api/v1");
    assert_eq!(
        core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/exec"]["get"]["x-kubernetes-group-version-kind"]
            ["kind"],
        json!("PodExecOptions")
    );
    // Deleting a pod answers with the pod, deleting a config map with a Status.
    let pod_delete =
        &core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["delete"]["responses"]["200"];
    assert_eq!(
        pod_delete["content"]["application/json"]["schema"]["$ref"],
        json!("#/components/schemas/io.k8s.api.core.v1.Pod")
    );
    let cm_delete = &core["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["delete"]["responses"]
        ["200"];
    assert_eq!(
        cm_delete["content"]["application/json"]["schema"]["$ref"],
        json!("#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Status")
    );
}

#[test]
fn schemas_carry_the_kubernetes_extensions() {
    let doc = v3_doc("api/v1");
    let spec = schema(&doc, "io.k8s.api.core.v1.PodSpec");
    assert_eq!(
        spec["properties"]["containers"],
        json!({
            "description": spec["properties"]["containers"]["description"],
            "type": "array",
            "items": {"default": {}, "allOf": [{"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}]},
            "x-kubernetes-list-map-keys": ["name"],
            "x-kubernetes-list-type": "map",
            "x-kubernetes-patch-merge-key": "name",
            "x-kubernetes-patch-strategy": "merge",
        })
    );
    let ports = &schema(&doc, "io.k8s.api.core.v1.Container")["properties"]["ports"];
    assert_eq!(
        ports["x-kubernetes-list-map-keys"],
        json!(["containerPort", "protocol"])
    );
    assert_eq!(
        ports["x-kubernetes-patch-merge-key"],
        json!("containerPort")
    );
    let finalizers = &schema(&doc, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")["properties"]
        ["finalizers"];
    assert_eq!(finalizers["x-kubernetes-list-type"], json!("set"));
    assert_eq!(finalizers["x-kubernetes-patch-strategy"], json!("merge"));
    assert_eq!(
        finalizers["items"],
        json!({"type": "string", "default": ""})
    );
    let service_ports = &schema(&doc, "io.k8s.api.core.v1.ServiceSpec")["properties"]["ports"];
    assert_eq!(
        service_ports["x-kubernetes-list-map-keys"],
        json!(["port", "protocol"])
    );
    assert_eq!(service_ports["x-kubernetes-patch-merge-key"], json!("port"));

    let pod = schema(&doc, "io.k8s.api.core.v1.Pod");
    assert_eq!(
        pod["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "Pod", "version": "v1"}])
    );
    assert_eq!(pod["properties"]["metadata"]["default"], json!({}));
    assert_eq!(
        pod["properties"]["metadata"]["allOf"],
        json!([{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}])
    );
    let keys: Vec<&String> = pod.as_object().expect("object").keys().collect();
    assert_eq!(
        keys,
        [
            "description",
            "type",
            "properties",
            "x-kubernetes-group-version-kind"
        ]
    );

    assert_eq!(
        schema(&doc, "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector")["x-kubernetes-map-type"],
        json!("atomic")
    );
    let ios = schema(&doc, "io.k8s.apimachinery.pkg.util.intstr.IntOrString");
    assert_eq!(ios["format"], json!("int-or-string"));
    assert_eq!(
        ios["oneOf"],
        json!([{"type": "integer"}, {"type": "string"}])
    );

    let restart = &spec["properties"]["restartPolicy"];
    assert_eq!(restart["enum"], json!(["Always", "Never", "OnFailure"]));
    let text = restart["description"].as_str().expect("description");
    assert!(
        text.ends_with(
            "\n\nPossible enum values:\n - `\"Always\"`\n - `\"Never\"`\n - `\"OnFailure\"`"
        ),
        "{text}"
    );
    assert_eq!(
        schema(&doc, "io.k8s.api.core.v1.ContainerPort")["properties"]["protocol"]["default"],
        json!("TCP")
    );
    assert_eq!(
        schema(&doc, "io.k8s.api.core.v1.ContainerPort")["required"],
        json!(["containerPort"])
    );

    let list = schema(&doc, "io.k8s.api.core.v1.PodList");
    assert_eq!(list["required"], json!(["items"]));
    assert_eq!(
        list["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "PodList", "version": "v1"}])
    );
    assert_eq!(
        list["properties"]["items"]["items"]["allOf"][0]["$ref"],
        json!("#/components/schemas/io.k8s.api.core.v1.Pod")
    );

    let flow = v3_doc("apis/flowcontrol.apiserver.k8s.io/v1");
    let unions = &schema(&flow, "io.k8s.api.flowcontrol.v1.Subject")["x-kubernetes-unions"];
    assert_eq!(unions[0]["discriminator"], json!("kind"));
    assert_eq!(
        unions[0]["fields-to-discriminateBy"]["serviceAccount"],
        json!("ServiceAccount")
    );

    // DeleteOptions is served in every group-version.
    let delete_options = schema(&doc, "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions");
    let gvks = delete_options["x-kubernetes-group-version-kind"]
        .as_array()
        .expect("gvks");
    assert!(gvks.contains(&json!({"group": "apps", "kind": "DeleteOptions", "version": "v1"})));
}

fn refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => {
                        out.insert(r.clone());
                    }
                    _ => refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves_inside_its_document() {
    for name in documents().v3().docs.keys() {
        let doc = v3_doc(name);
        let mut found = BTreeSet::new();
        refs(&doc, &mut found);
        for r in found {
            let target = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{name}: external ref {r}"));
            assert!(
                doc.pointer(target).is_some(),
                "{name}: {r} does not resolve"
            );
        }
    }
    let v2 = v2_doc();
    let mut found = BTreeSet::new();
    refs(&v2, &mut found);
    for r in found {
        assert!(
            v2.pointer(r.trim_start_matches('#')).is_some(),
            "v2: {r} does not resolve"
        );
    }
}

#[test]
fn every_served_kind_has_a_schema() {
    let defs = documents().defs();
    for info in resources::all() {
        let ty = schema::kind_type(info.group, info.version, info.kind)
            .unwrap_or_else(|| panic!("no type for {}/{} {}", info.group, info.version, info.kind));
        assert!(defs.contains(ty), "no schema for {ty}");
        if info.has_verb("list") {
            let list = schema::kind_type(info.group, info.version, &format!("{}List", info.kind))
                .expect("list kind");
            assert!(defs.contains(list), "no schema for {list}");
        }
    }
    assert!(roots::COUNT >= resources::all().len());
}

#[test]
fn version_2_keeps_refs_bare_and_shares_parameters() {
    let v2 = v2_doc();
    assert_eq!(v2["swagger"], json!("2.0"));
    assert_eq!(
        v2["definitions"]["io.k8s.api.core.v1.Pod"]["properties"]["metadata"],
        json!({
            "description": v2["definitions"]["io.k8s.api.core.v1.Pod"]["properties"]["metadata"]["description"],
            "$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        })
    );
    // Keywords, not property names (JSONSchemaProps has properties called "default").
    fn keywords(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if k == "properties" {
                        x.as_object()
                            .into_iter()
                            .flat_map(|p| p.values())
                            .for_each(|p| keywords(p, out));
                    } else {
                        out.insert(k.clone());
                        keywords(x, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| keywords(x, out)),
            _ => {}
        }
    }
    let mut used = BTreeSet::new();
    for def in v2["definitions"]
        .as_object()
        .into_iter()
        .flat_map(|d| d.values())
    {
        keywords(def, &mut used);
    }
    assert!(!used.contains("default"), "version 2 publishes no defaults");
    assert!(!used.contains("allOf"), "version 2 keeps refs bare");
    // Upstream's names for shared parameters: the name and a hash of its JSON.
    assert!(v2["parameters"]["fieldManager-Qy4HdaTW"].is_object());
    assert!(v2["parameters"]["body-2Y1dVQaQ"].is_object());
    let put = &v2["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["put"];
    assert_eq!(
        put["parameters"][1]["name"],
        json!("dryRun"),
        "dryRun and fieldValidation stay inline"
    );
    assert_eq!(
        put["parameters"][2],
        json!({"$ref": "#/parameters/fieldManager-Qy4HdaTW"})
    );
    assert_eq!(
        put["produces"],
        json!([
            "application/json",
            "application/yaml",
            "application/vnd.kubernetes.protobuf"
        ])
    );
}

#[test]
fn version_2_protobuf_is_gnostic() {
    let pb = documents().v2_protobuf();
    // Document.swagger = 1 ("2.0"), then Document.info = 2.
    assert_eq!(&pb[..5], b"\x0a\x032.0");
    assert_eq!(pb[5], 0x12);
    assert_eq!(
        protobuf::yaml(&json!([{"group": "", "kind": "Pod", "version": "v1"}])),
        "- group: \"\"\n  kind: Pod\n  version: v1\n"
    );
    assert_eq!(
        protobuf::yaml(&json!(["containerPort", "protocol"])),
        "- containerPort\n- protocol\n"
    );
    assert_eq!(protobuf::yaml(&json!("*")), "'*'\n");
    assert_eq!(
        protobuf::yaml(&json!("merge,retainKeys")),
        "merge,retainKeys\n"
    );
    assert_eq!(
        protobuf::yaml(
            &json!([{"discriminator": "type", "fields-to-discriminateBy": {"queuing": "Queuing"}}])
        ),
        "- discriminator: type\n  fields-to-discriminateBy:\n    queuing: Queuing\n"
    );
}

async fn call(
    path: &str,
    query: Option<&str>,
    headers: &[(&'static str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.insert(*k, HeaderValue::from_str(v).expect("header"));
    }
    let resp = match handle_request(path, query, &h) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                HeaderMap::new(),
                vec![],
            );
        }
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, headers, body.to_vec())
}

#[tokio::test]
async fn caching_follows_the_hash() {
    let doc = &documents().v3().docs["apis/apps/v1"];
    let path = "/openapi/v3/apis/apps/v1";
    let etag = format!("\"{}\"", doc.hash);

    let (status, headers, body) = call("/openapi/v3", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CACHE_CONTROL], "no-cache, private");
    assert!(serde_json::from_slice::<Value>(&body).is_ok());

    let (status, headers, body) = call(path, None, &[("accept", "application/json")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::ETAG], etag.as_str());
    assert_eq!(headers[header::CACHE_CONTROL], "no-cache, private");
    assert_eq!(body, doc.bytes);

    let query = format!("hash={}&timeout=32s", doc.hash);
    let (status, headers, body) = call(path, Some(&query), &[("accept", "application/json")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CACHE_CONTROL], "public, immutable");
    assert!(headers.contains_key(header::EXPIRES));
    assert_eq!(body, doc.bytes);

    let (status, headers, _) = call(path, Some("hash=0123"), &[]).await;
    assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        headers[header::LOCATION],
        format!("{path}?hash={}", doc.hash).as_str()
    );

    let (status, headers, body) = call(path, None, &[("if-none-match", &etag)]).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert_eq!(headers[header::ETAG], etag.as_str());
    assert!(body.is_empty());

    let (status, _, _) = call("/openapi/v3/apis/nope/v1", None, &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, headers, body) = call("/openapi/v2", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(body, documents().v2().bytes);
    let (status, headers, body) = call("/openapi/v2", None, &[("accept", V2_PROTOBUF)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], V2_PROTOBUF_RESPONSE);
    assert_eq!(
        headers[header::ETAG],
        format!("\"{}\"", documents().v2().hash).as_str()
    );
    assert_eq!(body, documents().v2_protobuf());
    let (status, _, _) = call("/openapi/v2", None, &[("accept", "text/html")]).await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
}

/// A plain-HTTP server with only what `kubectl explain` reads: aggregated discovery and
/// OpenAPI.
async fn explain_server() -> std::net::SocketAddr {
    async fn serve(req: axum::extract::Request) -> Response {
        let path = req.uri().path().to_string();
        let query = req.uri().query().map(str::to_string);
        let discovery = match path.as_str() {
            "/api" => Some(crate::discovery::aggregated_core()),
            "/apis" => Some(crate::discovery::aggregated_apis()),
            _ => None,
        };
        if let Some(list) = discovery {
            let mut resp = (
                StatusCode::OK,
                serde_json::to_vec(&list).unwrap_or_default(),
            )
                .into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(crate::discovery::AGGREGATED_CONTENT_TYPE),
            );
            return resp;
        }
        match handle_request(&path, query.as_deref(), req.headers()) {
            Ok(r) => r,
            Err(e) => (
                StatusCode::from_u16(e.code).unwrap_or(StatusCode::NOT_FOUND),
                "",
            )
                .into_response(),
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().fallback(serve);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_prints_what_it_prints_against_upstream() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/openapi/testdata/explain");
    let cases = std::fs::read_to_string(golden.join("cases.txt")).expect("cases.txt");
    tokio::task::spawn_blocking(warm).await.expect("warm");
    let addr = explain_server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"http://{addr}\"}}\n\
             users:\n- name: u\n  user: {{}}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n"
        ),
    )
    .expect("kubeconfig");
    let mut compared = 0;
    for version in ["1.33", "1.32"] {
        let kubectl = format!("/usr/lib/google-cloud-sdk/bin/kubectl.{version}");
        assert!(
            Path::new(&kubectl).exists(),
            "{kubectl} is missing: hack/test.sh installs it"
        );
        for line in cases
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let (name, args) = line.split_once('\t').expect("name<TAB>args");
            let out = tokio::process::Command::new(&kubectl)
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .arg("explain")
                .args(args.split_whitespace())
                .env("HOME", dir.path())
                .output()
                .await
                .expect("run kubectl");
            let want = std::fs::read_to_string(golden.join(format!("{name}.txt"))).expect("golden");
            let got = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "kubectl {version} explain {args}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(got, want, "kubectl {version} explain {args}");
            compared += 1;
        }
    }
    assert!(compared >= 28);
}
