//! Discovery documents, built from the built-in resource table.
//!
//! Pure functions returning the JSON bodies a v1.33 API server answers (with kube-aggregator
//! in front, as in every kubeadm cluster): the legacy documents `/api`, `/apis`,
//! `/apis/<group>`, `/api/v1` and `/apis/<group>/<version>`, and aggregated discovery v2
//! (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`) for `/api` and `/apis`. Keys come in
//! the order upstream's Go structs serialize them (serde_json keeps insertion order here),
//! so the bytes match upstream's, not only the values. Routing, content negotiation and
//! caching of the rendered bytes belong to the HTTP layer.

use base64::Engine as _;
use ironkube_machinery::resources::{self, ResourceInfo, SubresourceInfo};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

/// The `Content-Type` of an aggregated discovery answer (and the `Accept` entry asking
/// for one).
pub const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// The `clientCIDR` upstream pairs with the advertised address when no CIDR rule matches.
const ANY_CLIENT: &str = "0.0.0.0/0";

/// The `storageVersionHash` of objects stored as `group/version` `kind`: the first 8 bytes
/// of SHA-256 over `"<group>/<version>/<kind>"`, base64 (standard alphabet, padded).
/// Clients only compare it for equality, to notice a changed storage version.
pub fn storage_version_hash(group: &str, version: &str, kind: &str) -> String {
    let digest = Sha256::digest(format!("{group}/{version}/{kind}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(&digest[..8])
}

/// `GET /api`: the `APIVersions` of the core group. `server_address` is the `host:port`
/// clients should use (upstream's advertised address and secure port).
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            { "clientCIDR": ANY_CLIENT, "serverAddress": server_address }
        ],
    })
}

/// `GET /apis`: every named group with its versions, in aggregated order.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = resources::groups()
        .iter()
        .filter(|g| !g.group.is_empty())
        .map(|g| group_body(g, Map::new()))
        .collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

/// `GET /apis/<group>`: the `APIGroup`; `None` for an unknown group (and for the core
/// group, which lives under `/api`).
pub fn api_group(group: &str) -> Option<Value> {
    if group.is_empty() {
        return None;
    }
    let g = resources::group(group)?;
    let mut head = Map::new();
    head.insert("kind".into(), "APIGroup".into());
    head.insert("apiVersion".into(), "v1".into());
    Some(group_body(&g, head))
}

/// `name`, `versions` and `preferredVersion` of one group, after `head`.
fn group_body(g: &resources::GroupVersions, mut head: Map<String, Value>) -> Value {
    let version = |v: &str| json!({ "groupVersion": format!("{}/{v}", g.group), "version": v });
    let versions: Vec<Value> = g.versions.iter().map(|v| version(v)).collect();
    head.insert("name".into(), g.group.into());
    head.insert("versions".into(), versions.into());
    head.insert("preferredVersion".into(), version(g.preferred_version()));
    Value::Object(head)
}

/// `GET /api/v1` or `GET /apis/<group>/<version>`: the `APIResourceList`, subresources as
/// `<resource>/<subresource>` entries, sorted by name as upstream installs them. `None`
/// when the group/version is not served.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let mut entries: Vec<(String, Value)> = Vec::new();
    for r in resources::resources_of(group, version) {
        entries.push((r.plural.to_string(), resource_entry(r)));
        for s in r.subresources {
            entries.push((format!("{}/{}", r.plural, s.name), subresource_entry(r, s)));
        }
    }
    if entries.is_empty() {
        return None;
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let list: Vec<Value> = entries.into_iter().map(|(_, v)| v).collect();
    let mut body = Map::new();
    body.insert("kind".into(), "APIResourceList".into());
    // The core list has never carried an apiVersion; group lists say v1.
    if !group.is_empty() {
        body.insert("apiVersion".into(), "v1".into());
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    body.insert("groupVersion".into(), group_version.into());
    body.insert("resources".into(), list.into());
    Some(Value::Object(body))
}

/// One `APIResource` for a resource itself.
fn resource_entry(r: &ResourceInfo) -> Value {
    let mut e = Map::new();
    e.insert("name".into(), r.plural.into());
    e.insert("singularName".into(), r.singular.into());
    e.insert("namespaced".into(), r.namespaced.into());
    e.insert("kind".into(), r.kind.into());
    e.insert("verbs".into(), strings(r.verbs));
    if !r.short_names.is_empty() {
        e.insert("shortNames".into(), strings(r.short_names));
    }
    if !r.categories.is_empty() {
        e.insert("categories".into(), strings(r.categories));
    }
    if r.is_stored() {
        let hash = storage_version_hash(r.storage_group, r.storage_version, r.kind);
        e.insert("storageVersionHash".into(), hash.into());
    }
    Value::Object(e)
}

/// One `APIResource` for `<resource>/<subresource>`: no singular name, the parent's
/// scope, and a group/version only when its kind lives elsewhere (`autoscaling/v1` Scale,
/// `policy/v1` Eviction, `authentication.k8s.io/v1` TokenRequest).
fn subresource_entry(r: &ResourceInfo, s: &SubresourceInfo) -> Value {
    let mut e = Map::new();
    e.insert("name".into(), format!("{}/{}", r.plural, s.name).into());
    e.insert("singularName".into(), "".into());
    e.insert("namespaced".into(), r.namespaced.into());
    if let Some((group, version)) = foreign_group_version(r, s) {
        e.insert("group".into(), group.into());
        e.insert("version".into(), version.into());
    }
    e.insert("kind".into(), s.kind.into());
    e.insert("verbs".into(), strings(s.verbs));
    Value::Object(e)
}

/// The group/version of a subresource's kind when it differs from its parent's.
fn foreign_group_version(
    r: &ResourceInfo,
    s: &SubresourceInfo,
) -> Option<(&'static str, &'static str)> {
    ((s.group, s.version) != (r.group, r.version)).then_some((s.group, s.version))
}

/// `GET /api` with the aggregated `Accept`: the core group as an `APIGroupDiscoveryList`.
pub fn aggregated_core() -> Value {
    let items: Vec<Value> = resources::groups()
        .iter()
        .filter(|g| g.group.is_empty())
        .map(group_discovery)
        .collect();
    discovery_list(items)
}

/// `GET /apis` with the aggregated `Accept`: every named group, in aggregated order.
pub fn aggregated_apis() -> Value {
    let items: Vec<Value> = resources::groups()
        .iter()
        .filter(|g| !g.group.is_empty())
        .map(group_discovery)
        .collect();
    discovery_list(items)
}

fn discovery_list(items: Vec<Value>) -> Value {
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

/// One `APIGroupDiscovery`. Its metadata is a full ObjectMeta, so the zero creation
/// timestamp shows as `null`; the core group has no name.
fn group_discovery(g: &resources::GroupVersions) -> Value {
    let mut metadata = Map::new();
    if !g.group.is_empty() {
        metadata.insert("name".into(), g.group.into());
    }
    metadata.insert("creationTimestamp".into(), Value::Null);
    let versions: Vec<Value> = g
        .versions
        .iter()
        .map(|v| {
            let resources: Vec<Value> = resources::resources_of(g.group, v)
                .map(resource_discovery)
                .collect();
            json!({ "version": v, "resources": resources, "freshness": "Current" })
        })
        .collect();
    json!({ "metadata": metadata, "versions": versions })
}

/// One `APIResourceDiscovery`, subresources nested.
fn resource_discovery(r: &ResourceInfo) -> Value {
    let mut e = Map::new();
    e.insert("resource".into(), r.plural.into());
    e.insert("responseKind".into(), gvk("", "", r.kind));
    let scope = if r.namespaced {
        "Namespaced"
    } else {
        "Cluster"
    };
    e.insert("scope".into(), scope.into());
    e.insert("singularResource".into(), r.singular.into());
    e.insert("verbs".into(), strings(r.verbs));
    if !r.short_names.is_empty() {
        e.insert("shortNames".into(), strings(r.short_names));
    }
    if !r.categories.is_empty() {
        e.insert("categories".into(), strings(r.categories));
    }
    if !r.subresources.is_empty() {
        let subresources: Vec<Value> = r
            .subresources
            .iter()
            .map(|s| {
                let (group, version) = foreign_group_version(r, s).unwrap_or(("", ""));
                json!({
                    "subresource": s.name,
                    "responseKind": gvk(group, version, s.kind),
                    "verbs": s.verbs,
                })
            })
            .collect();
        e.insert("subresources".into(), subresources.into());
    }
    Value::Object(e)
}

/// A `metav1.GroupVersionKind`; discovery leaves group and version empty when they are
/// the enclosing group version's.
fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({ "group": group, "version": version, "kind": kind })
}

fn strings(items: &[&str]) -> Value {
    Value::from(items.iter().map(|s| Value::from(*s)).collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource<'a>(list: &'a Value, name: &str) -> &'a Value {
        list["resources"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["name"] == name))
            .unwrap_or_else(|| panic!("{name} listed"))
    }

    fn names(list: &Value) -> Vec<String> {
        list["resources"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .filter_map(|r| r["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn content_type() {
        assert_eq!(
            AGGREGATED_CONTENT_TYPE,
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        );
    }

    #[test]
    fn storage_version_hashes_match_upstream() {
        // Values a v1.33 server publishes.
        let cases = [
            ("", "v1", "Pod", "xPOwRZ+Yhw8="),
            ("", "v1", "Event", "r2yiGXH7wu8="),
            ("apps", "v1", "Deployment", "8aSe+NMegvE="),
            (
                "autoscaling",
                "v2",
                "HorizontalPodAutoscaler",
                "qwQve8ut294=",
            ),
            (
                "networking.k8s.io",
                "v1beta1",
                "ServiceCIDR",
                "8ufAXOnr3Yg=",
            ),
            (
                "apiextensions.k8s.io",
                "v1beta1",
                "CustomResourceDefinition",
                "jfWCUB31mvA=",
            ),
            ("apiregistration.k8s.io", "v1", "APIService", "InPBPD7+PqM="),
        ];
        for (group, version, kind, hash) in cases {
            assert_eq!(
                storage_version_hash(group, version, kind),
                hash,
                "{group}/{version}/{kind}"
            );
        }
    }

    #[test]
    fn api_versions_document() {
        let doc = api_versions("10.0.0.1:6443");
        assert_eq!(
            serde_json::to_string(&doc).ok(),
            Some(
                r#"{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"10.0.0.1:6443"}]}"#
                    .to_string()
            )
        );
    }

    #[test]
    fn api_group_list_document() {
        let doc = api_group_list();
        assert_eq!(doc["kind"], "APIGroupList");
        assert_eq!(doc["apiVersion"], "v1");
        let groups = doc["groups"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        assert_eq!(groups.len(), 19);
        assert_eq!(groups[0]["name"], "apiregistration.k8s.io");
        assert_eq!(groups[1]["name"], "apps");
        assert_eq!(groups[18]["name"], "flowcontrol.apiserver.k8s.io");
        let autoscaling = groups.iter().find(|g| g["name"] == "autoscaling");
        assert_eq!(
            autoscaling.cloned(),
            Some(json!({
                "name": "autoscaling",
                "versions": [
                    { "groupVersion": "autoscaling/v2", "version": "v2" },
                    { "groupVersion": "autoscaling/v1", "version": "v1" }
                ],
                "preferredVersion": { "groupVersion": "autoscaling/v2", "version": "v2" }
            }))
        );
    }

    #[test]
    fn api_group_document() {
        assert_eq!(
            api_group("apps").and_then(|g| serde_json::to_string(&g).ok()),
            Some(
                r#"{"kind":"APIGroup","apiVersion":"v1","name":"apps","versions":[{"groupVersion":"apps/v1","version":"v1"}],"preferredVersion":{"groupVersion":"apps/v1","version":"v1"}}"#
                    .to_string()
            )
        );
        assert!(api_group("").is_none());
        assert!(api_group("resource.k8s.io").is_none());
    }

    #[test]
    fn core_resource_list() {
        let list = api_resource_list("", "v1").expect("core v1");
        let keys: Vec<&str> = list
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(keys, ["kind", "groupVersion", "resources"]);
        assert_eq!(list["groupVersion"], "v1");
        let all = names(&list);
        assert_eq!(all.len(), 17 + 22);
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(all, sorted);
        assert_eq!(
            serde_json::to_string(resource(&list, "pods")).ok(),
            Some(
                r#"{"name":"pods","singularName":"pod","namespaced":true,"kind":"Pod","verbs":["create","delete","deletecollection","get","list","patch","update","watch"],"shortNames":["po"],"categories":["all"],"storageVersionHash":"xPOwRZ+Yhw8="}"#
                    .to_string()
            )
        );
        assert_eq!(
            serde_json::to_string(resource(&list, "pods/eviction")).ok(),
            Some(
                r#"{"name":"pods/eviction","singularName":"","namespaced":true,"group":"policy","version":"v1","kind":"Eviction","verbs":["create"]}"#
                    .to_string()
            )
        );
        assert_eq!(
            resource(&list, "pods/status"),
            &json!({
                "name": "pods/status", "singularName": "", "namespaced": true, "kind": "Pod",
                "verbs": ["get", "patch", "update"]
            })
        );
        assert_eq!(
            resource(&list, "bindings"),
            &json!({
                "name": "bindings", "singularName": "binding", "namespaced": true,
                "kind": "Binding", "verbs": ["create"]
            })
        );
        assert_eq!(resource(&list, "nodes/proxy")["kind"], "NodeProxyOptions");
        assert_eq!(
            resource(&list, "serviceaccounts/token")["group"],
            "authentication.k8s.io"
        );
        assert_eq!(
            resource(&list, "services")["storageVersionHash"],
            "0/CO1lhkEBI="
        );
        assert_eq!(resource(&list, "namespaces/finalize")["namespaced"], false);
        assert!(api_resource_list("", "v2").is_none());
    }

    #[test]
    fn group_resource_lists() {
        let apps = api_resource_list("apps", "v1").expect("apps/v1");
        assert_eq!(apps["apiVersion"], "v1");
        assert_eq!(apps["groupVersion"], "apps/v1");
        assert_eq!(
            resource(&apps, "deployments/scale"),
            &json!({
                "name": "deployments/scale", "singularName": "", "namespaced": true,
                "group": "autoscaling", "version": "v1", "kind": "Scale",
                "verbs": ["get", "patch", "update"]
            })
        );
        assert_eq!(
            resource(&apps, "deployments")["storageVersionHash"],
            "8aSe+NMegvE="
        );

        let hash = |g: &str, v: &str, name: &str| {
            api_resource_list(g, v).map(|l| resource(&l, name)["storageVersionHash"].clone())
        };
        // Both HPA versions and both event groups share one storage version.
        assert_eq!(
            hash("autoscaling", "v1", "horizontalpodautoscalers"),
            Some(json!("qwQve8ut294="))
        );
        assert_eq!(
            hash("autoscaling", "v2", "horizontalpodautoscalers"),
            Some(json!("qwQve8ut294="))
        );
        assert_eq!(
            hash("events.k8s.io", "v1", "events"),
            Some(json!("r2yiGXH7wu8="))
        );
        assert_eq!(
            hash("networking.k8s.io", "v1", "servicecidrs"),
            Some(json!("8ufAXOnr3Yg="))
        );
        assert_eq!(
            hash("networking.k8s.io", "v1", "ipaddresses"),
            Some(json!("O4H8VxQhW5Y="))
        );
        assert_eq!(
            hash("storage.k8s.io", "v1", "csidrivers"),
            Some(json!("hL6j/rwBV5w="))
        );
        assert_eq!(
            hash("apiextensions.k8s.io", "v1", "customresourcedefinitions"),
            Some(json!("jfWCUB31mvA="))
        );
        assert_eq!(
            hash("authentication.k8s.io", "v1", "tokenreviews"),
            Some(Value::Null)
        );

        let authz = api_resource_list("authorization.k8s.io", "v1").expect("authorization");
        assert_eq!(
            resource(&authz, "localsubjectaccessreviews")["namespaced"],
            true
        );
        assert_eq!(
            resource(&authz, "subjectaccessreviews")["verbs"],
            json!(["create"])
        );
        assert!(api_resource_list("apps", "v1beta1").is_none());
    }

    #[test]
    fn aggregated_core_document() {
        let doc = aggregated_core();
        assert_eq!(doc["kind"], "APIGroupDiscoveryList");
        assert_eq!(doc["apiVersion"], "apidiscovery.k8s.io/v2");
        assert_eq!(doc["metadata"], json!({}));
        let items = doc["items"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["metadata"], json!({ "creationTimestamp": null }));
        let v1 = &items[0]["versions"][0];
        assert_eq!(v1["version"], "v1");
        assert_eq!(v1["freshness"], "Current");
        let resources = v1["resources"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        assert_eq!(resources.len(), 17);
        let pods = resources
            .iter()
            .find(|r| r["resource"] == "pods")
            .expect("pods");
        assert_eq!(
            pods["responseKind"],
            json!({ "group": "", "version": "", "kind": "Pod" })
        );
        assert_eq!(pods["scope"], "Namespaced");
        assert_eq!(pods["singularResource"], "pod");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["subresources"].as_array().map(Vec::len), Some(10));
        assert_eq!(
            pods["subresources"][3],
            json!({
                "subresource": "eviction",
                "responseKind": { "group": "policy", "version": "v1", "kind": "Eviction" },
                "verbs": ["create"]
            })
        );
        let nodes = resources
            .iter()
            .find(|r| r["resource"] == "nodes")
            .expect("nodes");
        assert_eq!(nodes["scope"], "Cluster");
        let secrets = resources
            .iter()
            .find(|r| r["resource"] == "secrets")
            .expect("secrets");
        let keys: Vec<&str> = secrets
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            [
                "resource",
                "responseKind",
                "scope",
                "singularResource",
                "verbs"
            ]
        );
    }

    #[test]
    fn aggregated_apis_document() {
        let doc = aggregated_apis();
        let items = doc["items"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let groups: Vec<&str> = items
            .iter()
            .filter_map(|i| i["metadata"]["name"].as_str())
            .collect();
        let legacy = api_group_list();
        let legacy_groups: Vec<&str> = legacy["groups"]
            .as_array()
            .map(|gs| gs.iter().filter_map(|g| g["name"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(groups, legacy_groups);
        assert_eq!(groups.len(), 19);

        let autoscaling = items
            .iter()
            .find(|i| i["metadata"]["name"] == "autoscaling")
            .expect("hpa");
        let versions: Vec<&str> = autoscaling["versions"]
            .as_array()
            .map(|vs| vs.iter().filter_map(|v| v["version"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(versions, ["v2", "v1"]);

        let apps = items
            .iter()
            .find(|i| i["metadata"]["name"] == "apps")
            .expect("apps");
        assert_eq!(
            apps["metadata"],
            json!({ "name": "apps", "creationTimestamp": null })
        );
        let deployments = &apps["versions"][0]["resources"][2];
        assert_eq!(
            serde_json::to_string(deployments).ok(),
            Some(
                r#"{"resource":"deployments","responseKind":{"group":"","version":"","kind":"Deployment"},"scope":"Namespaced","singularResource":"deployment","verbs":["create","delete","deletecollection","get","list","patch","update","watch"],"shortNames":["deploy"],"categories":["all"],"subresources":[{"subresource":"scale","responseKind":{"group":"autoscaling","version":"v1","kind":"Scale"},"verbs":["get","patch","update"]},{"subresource":"status","responseKind":{"group":"","version":"","kind":"Deployment"},"verbs":["get","patch","update"]}]}"#
                    .to_string()
            )
        );
        let first = &items[0];
        assert_eq!(first["metadata"]["name"], "apiregistration.k8s.io");
        assert_eq!(
            first["versions"][0]["resources"][0]["categories"],
            json!(["api-extensions"])
        );
    }

    #[test]
    fn legacy_and_aggregated_agree() {
        for g in resources::groups() {
            for v in &g.versions {
                let list = api_resource_list(g.group, v).expect("served");
                let top: Vec<String> = names(&list)
                    .into_iter()
                    .filter(|n| !n.contains('/'))
                    .collect();
                let agg = if g.group.is_empty() {
                    aggregated_core()
                } else {
                    aggregated_apis()
                };
                let item = agg["items"]
                    .as_array()
                    .and_then(|is| {
                        is.iter()
                            .find(|i| i["metadata"]["name"].as_str().unwrap_or("") == g.group)
                    })
                    .expect("group in aggregated discovery");
                let version = item["versions"]
                    .as_array()
                    .and_then(|vs| vs.iter().find(|x| x["version"] == *v))
                    .expect("version in aggregated discovery");
                let agg_names: Vec<String> = version["resources"]
                    .as_array()
                    .map(|rs| {
                        rs.iter()
                            .filter_map(|r| r["resource"].as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                assert_eq!(top, agg_names, "{}/{v}", g.group);
            }
        }
    }
}
