//! Acceptance tests of the API server core's storage guarantees, over a real etcd:
//! optimistic concurrency under racing writers, watches resumed from a resourceVersion
//! across an API server restart (and expired once etcd compacts), and objects surviving
//! `ironkube up` restarts byte for byte, resourceVersions included.
//!
//! Raw requests go through `ironkube-testkit`'s HTTPS client with the admin certificate;
//! kubectl 1.33 and 1.32 read the objects back.

mod manifests;
mod support;

use std::collections::BTreeMap;

use ironkube_machinery::resources;
use ironkube_testkit::{Client, Response, Watch};
use serde_json::{Value, json};
use support::{Ironkube, KUBECTL_VERSIONS, TestEtcd, describe, eventually, patience};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building a tokio runtime")
}

fn client(cluster: &Ironkube) -> Client {
    Client::from_kubeconfig(&cluster.kubeconfig).unwrap_or_else(|e| {
        panic!(
            "testkit client from {}: {e:#}",
            cluster.kubeconfig.display()
        )
    })
}

fn show(response: &Response) -> String {
    format!(
        "HTTP {}: {}",
        response.status,
        String::from_utf8_lossy(&response.body)
    )
}

/// Sends `body` as JSON and requires `status`; returns the response's JSON.
async fn send(
    client: &Client,
    method: &str,
    path: &str,
    body: Option<&Value>,
    status: u16,
) -> Value {
    let bytes = body
        .map(|b| serde_json::to_vec(b).expect("serializing"))
        .unwrap_or_default();
    let content_type = match method {
        "PATCH" => Some("application/merge-patch+json"),
        _ if body.is_some() => Some("application/json"),
        _ => None,
    };
    let response = client
        .request(method, path, content_type, &bytes)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e:#}"));
    assert_eq!(
        response.status,
        status,
        "{method} {path}: expected HTTP {status}, got {}",
        show(&response)
    );
    response
        .json()
        .unwrap_or_else(|e| panic!("{method} {path}: {e:#}"))
}

/// A ConfigMap labelled `suite=acceptance`, so watches can leave out the ones controllers
/// make (`kube-root-ca.crt`).
fn config_map(ns: &str, name: &str, data: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": {"suite": "acceptance"}},
        "data": data,
    })
}

fn resource_version(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or_else(|| panic!("no numeric metadata.resourceVersion in {object:#}"))
}

async fn create_namespace(client: &Client, ns: &str) {
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
    send(client, "POST", "/api/v1/namespaces", Some(&namespace), 201).await;
}

// ---------------------------------------------------------------------------------------
// 6. Racing writers
// ---------------------------------------------------------------------------------------

const RACE_ROUNDS: usize = 20;

#[test]
fn racing_updates_with_the_same_resource_version_let_exactly_one_win() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = Ironkube::up(&tmp.path().join("data"));
    let rt = runtime();
    rt.block_on(async {
        let client = client(&cluster);
        create_namespace(&client, "race").await;
        let collection = "/api/v1/namespaces/race/configmaps";
        let path = format!("{collection}/contended");
        send(
            &client,
            "POST",
            collection,
            Some(&config_map("race", "contended", json!({"round": "start"}))),
            201,
        )
        .await;

        for round in 0..RACE_ROUNDS {
            let current = send(&client, "GET", &path, None, 200).await;
            let mut writers = Vec::new();
            for writer in ["a", "b"] {
                let mut object = current.clone();
                object["data"] = json!({"round": round.to_string(), "writer": writer});
                let body = serde_json::to_vec(&object).expect("serializing");
                let (client, path) = (client.clone(), path.clone());
                writers.push(tokio::spawn(async move {
                    let response = client
                        .request("PUT", &path, Some("application/json"), &body)
                        .await;
                    (object, response)
                }));
            }
            let mut results = Vec::new();
            for writer in writers {
                let (object, response) = writer.await.expect("writer task");
                let response =
                    response.unwrap_or_else(|e| panic!("round {round}: PUT {path}: {e:#}"));
                results.push((object, response));
            }
            let statuses: Vec<u16> = results.iter().map(|(_, r)| r.status).collect();
            let summary = results
                .iter()
                .map(|(_, r)| show(r))
                .collect::<Vec<_>>()
                .join("\n");
            let mut sorted = statuses.clone();
            sorted.sort();
            assert_eq!(
                sorted,
                [200, 409],
                "round {round}: two PUTs with resourceVersion {} must give one 200 and one \
                 409:\n{summary}\n{}",
                current["metadata"]["resourceVersion"],
                cluster.log_tail()
            );
            let (winner, won) = results
                .iter()
                .find(|(_, r)| r.status == 200)
                .expect("a winner");
            let (_, lost) = results
                .iter()
                .find(|(_, r)| r.status == 409)
                .expect("a loser");
            let status = lost
                .json()
                .unwrap_or_else(|e| panic!("round {round}: {e:#}"));
            assert_eq!(
                (
                    &status["kind"],
                    &status["status"],
                    &status["reason"],
                    &status["code"],
                    &status["message"]
                ),
                (
                    &json!("Status"),
                    &json!("Failure"),
                    &json!("Conflict"),
                    &json!(409),
                    &json!(
                        "Operation cannot be fulfilled on configmaps \"contended\": the object \
                         has been modified; please apply your changes to the latest version \
                         and try again"
                    )
                ),
                "round {round}: the 409 body: {status:#}"
            );
            let won = won
                .json()
                .unwrap_or_else(|e| panic!("round {round}: {e:#}"));
            assert_eq!(
                won["data"], winner["data"],
                "round {round}: the 200 body: {won:#}"
            );
            assert!(
                resource_version(&won) > resource_version(&current),
                "round {round}: the winner's resourceVersion did not advance: {won:#}"
            );

            let stored = send(&client, "GET", &path, None, 200).await;
            assert_eq!(
                stored["data"], winner["data"],
                "round {round}: the stored object is not the winner's: {stored:#}"
            );
            assert_eq!(
                stored["metadata"]["resourceVersion"], won["metadata"]["resourceVersion"],
                "round {round}: the stored object is not the one the winner got back"
            );
        }
    });
}

// ---------------------------------------------------------------------------------------
// 7. Watch resumed after an API server restart; expired after compaction
// ---------------------------------------------------------------------------------------

async fn next_event(watch: &mut Watch, what: &str) -> Value {
    match tokio::time::timeout(patience(), watch.next()).await {
        Ok(Ok(Some(event))) => event,
        Ok(Ok(None)) => panic!("{what}: the watch ended"),
        Ok(Err(e)) => panic!("{what}: reading the watch: {e:#}"),
        Err(_) => panic!("{what}: no event within {:?}", patience()),
    }
}

fn event_summary(event: &Value) -> (String, String) {
    (
        event["type"].as_str().unwrap_or("").to_string(),
        event["object"]["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    )
}

fn etcdctl_compact(endpoint: &str, revision: u64) {
    let output = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", endpoint, "compact", &revision.to_string()])
        .output()
        .unwrap_or_else(|e| {
            panic!("running etcdctl: {e}; install Debian's etcd-client (hack/test.sh installs it)")
        });
    assert!(
        output.status.success(),
        "etcdctl compact {revision}: {}",
        describe(&output)
    );
}

#[test]
fn watch_resumes_from_a_resource_version_across_a_restart_and_expires_after_compaction() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let etcd = TestEtcd::start(&tmp.path().join("etcd"));
    let data = tmp.path().join("data");
    let rt = runtime();
    let ns = "resume";
    let collection = format!("/api/v1/namespaces/{ns}/configmaps");
    let item = |name: &str| format!("{collection}/{name}");

    let first = Ironkube::up_with(&data, &["--etcd-servers", &etcd.client_url]);
    let (since, expected) = rt.block_on(async {
        let client = client(&first);
        create_namespace(&client, ns).await;
        let list = send(&client, "GET", &collection, None, 200).await;
        let since = resource_version(&list);
        let mut expected: Vec<(&str, &str)> = Vec::new();
        for name in ["c0", "c1", "c2", "c3"] {
            let cm = config_map(ns, name, json!({"v": "0"}));
            send(&client, "POST", &collection, Some(&cm), 201).await;
            expected.push(("ADDED", name));
        }
        send(
            &client,
            "PATCH",
            &item("c1"),
            Some(&json!({"data": {"v": "1"}})),
            200,
        )
        .await;
        expected.push(("MODIFIED", "c1"));
        let mut c2 = send(&client, "GET", &item("c2"), None, 200).await;
        c2["data"] = json!({"v": "2"});
        send(&client, "PUT", &item("c2"), Some(&c2), 200).await;
        expected.push(("MODIFIED", "c2"));
        send(&client, "DELETE", &item("c0"), None, 200).await;
        expected.push(("DELETED", "c0"));
        let cm = config_map(ns, "c4", json!({"v": "4"}));
        send(&client, "POST", &collection, Some(&cm), 201).await;
        expected.push(("ADDED", "c4"));
        send(&client, "DELETE", &item("c3"), None, 200).await;
        expected.push(("DELETED", "c3"));
        send(
            &client,
            "PATCH",
            &item("c4"),
            Some(&json!({"metadata": {"labels": {"k": "v"}}})),
            200,
        )
        .await;
        expected.push(("MODIFIED", "c4"));
        (since, expected)
    });
    let status = first.stop();
    assert!(status.success(), "the first ironkube exited with {status}");

    let second = Ironkube::up_with(&data, &["--etcd-servers", &etcd.client_url]);
    rt.block_on(async {
        let client = client(&second);
        let path = format!(
            "{collection}?watch=true&resourceVersion={since}&labelSelector=suite%3Dacceptance"
        );
        let mut watch = client
            .watch(&path)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e:#}"));
        assert_eq!(watch.status, 200, "GET {path}\n{}", second.log_tail());
        let mut seen = Vec::new();
        for i in 0..expected.len() {
            seen.push(
                next_event(&mut watch, &format!("event {i} of the watch from {since}")).await,
            );
        }
        // One more change after the replay: it must be the very next event, so nothing
        // was delivered twice.
        let cm = config_map(ns, "after-restart", json!({"v": "5"}));
        send(&client, "POST", &collection, Some(&cm), 201).await;
        seen.push(next_event(&mut watch, "the event after the replay").await);

        let mut wanted: Vec<(String, String)> = expected
            .iter()
            .map(|(t, n)| (t.to_string(), n.to_string()))
            .collect();
        wanted.push(("ADDED".into(), "after-restart".into()));
        let got: Vec<(String, String)> = seen.iter().map(event_summary).collect();
        assert_eq!(
            got, wanted,
            "the watch from resourceVersion {since} after the restart delivered:\n{seen:#?}"
        );
        let revisions: Vec<u64> = seen
            .iter()
            .map(|e| resource_version(&e["object"]))
            .collect();
        assert!(
            revisions.first().is_some_and(|first| *first > since)
                && revisions.windows(2).all(|w| w[0] < w[1]),
            "event resourceVersions must increase strictly from {since}: {revisions:?}"
        );
        drop(watch);

        // Compact etcd past `since`: the watch from it expires, and so does an exact list.
        let list = send(&client, "GET", &collection, None, 200).await;
        let current = resource_version(&list);
        etcdctl_compact(&etcd.client_url, current);

        let mut watch = client
            .watch(&path)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e:#}"));
        assert_eq!(watch.status, 200, "GET {path} after compaction");
        let event = next_event(&mut watch, "the watch from a compacted resourceVersion").await;
        assert_eq!(
            (
                &event["type"],
                &event["object"]["kind"],
                &event["object"]["code"],
                &event["object"]["reason"]
            ),
            (
                &json!("ERROR"),
                &json!("Status"),
                &json!(410),
                &json!("Expired")
            ),
            "a watch from compacted resourceVersion {since} (compacted at {current}) must \
             end with an ERROR event carrying 410 Expired: {event:#}"
        );

        let exact = format!("{collection}?resourceVersion={since}&resourceVersionMatch=Exact");
        let response = client
            .get(&exact)
            .await
            .unwrap_or_else(|e| panic!("GET {exact}: {e:#}"));
        let status = response.json().unwrap_or(Value::Null);
        assert!(
            response.status == 410 && status["reason"] == "Expired" && status["code"] == 410,
            "GET {exact} after compaction at {current}: expected 410 Expired, got {}",
            show(&response)
        );
    });
    assert!(second.stop().success());
}

// ---------------------------------------------------------------------------------------
// 8. Restart keeps every object unchanged
// ---------------------------------------------------------------------------------------

/// Every stored resource kubectl can list, as `plural.group`.
fn stored_kinds() -> String {
    resources::preferred_resources()
        .into_iter()
        .filter(|r| r.is_stored() && r.has_verb("list"))
        .map(|r| match r.group {
            "" => r.plural.to_string(),
            group => format!("{}.{group}", r.plural),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Leases renewed every few seconds by design (leader election, node and API server
/// heartbeats): their resourceVersions move without anyone writing objects.
fn is_heartbeat(key: &str) -> bool {
    key.starts_with("coordination.k8s.io/v1 Lease kube-system/")
        || key.starts_with("coordination.k8s.io/v1 Lease kube-node-lease/")
}

/// Objects by `apiVersion kind namespace/name`, heartbeat leases left out.
fn snapshot(cluster: &Ironkube, version: &str) -> BTreeMap<String, Value> {
    let kinds = stored_kinds();
    let stdout = cluster.kubectl_ok(version, &["get", &kinds, "-A", "-o", "json"]);
    let list: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("kubectl {version} get -o json printed no JSON ({e})"));
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("kubectl {version} get -o json printed no items:\n{stdout}"))
        .iter()
        .map(|item| {
            let key = format!(
                "{} {} {}/{}",
                item["apiVersion"].as_str().unwrap_or(""),
                item["kind"].as_str().unwrap_or(""),
                item["metadata"]["namespace"].as_str().unwrap_or(""),
                item["metadata"]["name"].as_str().unwrap_or("")
            );
            (key, settled_part(item))
        })
        .filter(|(key, _)| !is_heartbeat(key))
        .collect()
}

fn is_event(key: &str) -> bool {
    key.starts_with("v1 Event ") || key.starts_with("events.k8s.io/v1 Event ")
}

/// An object as the restart must keep it. Events are still being appended to by the
/// running recorders (a repeat turns an event into a series and bumps its count), so
/// those fields, and the resourceVersion they move, are left out of the comparison.
fn settled_part(item: &Value) -> Value {
    let mut item = item.clone();
    if item["kind"] == "Event" {
        if let Some(m) = item.as_object_mut() {
            for f in ["series", "count", "lastTimestamp", "deprecatedCount", "deprecatedLastTimestamp"] {
                m.remove(f);
            }
        }
        if let Some(meta) = item.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
            meta.remove("managedFields");
        }
    }
    item
}

/// What differs between two snapshots: (key, how) for each object.
fn differences(
    before: &BTreeMap<String, Value>,
    after: &BTreeMap<String, Value>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (key, object) in before {
        match after.get(key) {
            None => out.push((key.clone(), "gone".to_string())),
            Some(now) if now != object => out.push((
                key.clone(),
                format!("changed\n--- before\n{object:#}\n--- after\n{now:#}"),
            )),
            Some(_) => {}
        }
    }
    // Components that start again record new events: those are not a storage matter.
    for key in after.keys().filter(|k| !before.contains_key(*k) && !is_event(k)) {
        out.push((key.clone(), "new".to_string()));
    }
    out
}

fn show_differences(differences: &[(String, String)]) -> String {
    differences
        .iter()
        .map(|(key, how)| format!("{key}: {how}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The objects that describe the API server's own address (`default/kubernetes` Service,
/// Endpoints and EndpointSlice): the harness restarts ironkube on a new port, and the
/// server rightly reconciles them to it.
fn describes_the_api_server(key: &str) -> bool {
    [
        "v1 Service default/kubernetes",
        "v1 Endpoints default/kubernetes",
        "discovery.k8s.io/v1 EndpointSlice default/kubernetes",
    ]
    .contains(&key)
}

#[test]
fn restart_on_the_same_data_dir_keeps_every_object_unchanged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let samples = manifests::all_kinds("restart");
    let manifest = tmp.path().join("restart.yaml");
    std::fs::write(&manifest, manifests::manifest(&samples)).expect("writing the manifest");
    let manifest = manifest.display().to_string();

    let first = Ironkube::up(&data);
    first.kubectl_ok("1.33", &["apply", "-f", &manifest]);
    // Some updates, so resourceVersions differ from creation revisions.
    first.kubectl_ok(
        "1.33",
        &[
            "label",
            "configmap",
            "settings",
            "-n",
            "restart",
            "changed=yes",
        ],
    );
    first.kubectl_ok(
        "1.32",
        &[
            "scale",
            "deployment",
            "web",
            "-n",
            "restart",
            "--replicas=3",
        ],
    );
    first.kubectl_ok("1.32", &["annotate", "namespace", "restart", "note=kept"]);

    // Upstream's serviceaccount and root-ca-cert-publisher controllers fill each new
    // namespace; wait for them, then for two readings in a row to agree.
    eventually("the controllers filled namespace restart", || {
        let objects = snapshot(&first, "1.33");
        [
            "v1 ServiceAccount restart/default",
            "v1 ConfigMap restart/kube-root-ca.crt",
        ]
        .iter()
        .all(|key| objects.contains_key(*key))
        .then_some(())
        .ok_or_else(|| format!("objects: {:#?}", objects.keys().collect::<Vec<_>>()))
    });
    let before = eventually("kubectl 1.33 and 1.32 read the same objects", || {
        let newer = snapshot(&first, KUBECTL_VERSIONS[0]);
        let older = snapshot(&first, KUBECTL_VERSIONS[1]);
        let differ = differences(&newer, &older);
        if differ.is_empty() {
            Ok(newer)
        } else {
            Err(show_differences(&differ))
        }
    });
    for sample in &samples {
        let key = format!(
            "{} {} {}/{}",
            sample.api_version,
            sample.kind,
            sample.namespace.as_deref().unwrap_or(""),
            sample.name
        );
        assert!(
            before.contains_key(&key),
            "kubectl get {} -A -o json lacks {key}",
            stored_kinds()
        );
    }
    let status = first.stop();
    assert!(status.success(), "the first ironkube exited with {status}");

    let second = Ironkube::up(&data);
    let mut after = BTreeMap::new();
    for version in KUBECTL_VERSIONS {
        let now = snapshot(&second, version);
        let differ: Vec<(String, String)> = differences(&before, &now)
            .into_iter()
            .filter(|(key, _)| !describes_the_api_server(key))
            .collect();
        assert!(
            differ.is_empty(),
            "kubectl {version}: {} objects differ across the restart:\n{}",
            differ.len(),
            show_differences(&differ)
        );
        after = now;
    }
    // The restarted API server listens on another port: upstream reconciles the
    // `kubernetes` Service's targetPort and its endpoints to it.
    let port = json!(second.secure_port);
    for (key, pointer) in [
        ("v1 Service default/kubernetes", "/spec/ports/0/targetPort"),
        ("v1 Endpoints default/kubernetes", "/subsets/0/ports/0/port"),
        (
            "discovery.k8s.io/v1 EndpointSlice default/kubernetes",
            "/ports/0/port",
        ),
    ] {
        let object = &after[key];
        assert_eq!(
            object.pointer(pointer),
            Some(&port),
            "{key} {pointer} must name the restarted API server's port: {object:#}"
        );
    }
    assert!(second.stop().success());
}

/// Virtual resources without a table convertor refuse the Table transform with 406, as
/// upstream's negotiation does (conformance: "should return a 406 for a backend which does
/// not implement metadata").
#[test]
fn a_table_of_a_self_subject_access_review_is_not_acceptable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = Ironkube::up(&tmp.path().join("data"));
    let client = client(&cluster);
    runtime().block_on(async {
        let sar = serde_json::json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"nonResourceAttributes": {"path": "/", "verb": "get"}}});
        let body = serde_json::to_vec(&sar).expect("serializing");
        let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
        let table = client
            .request_accepting("POST", path, Some("application/json"), "application/json;as=Table;v=v1;g=meta.k8s.io", &body)
            .await
            .expect("POST");
        assert_eq!(table.status, 406, "{}", show(&table));
        let status = table.json().expect("a Status");
        assert_eq!(status["reason"], "NotAcceptable", "{status}");
        assert_eq!(status["message"], "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf");
        let plain = client.request("POST", path, Some("application/json"), &body).await.expect("POST");
        assert_eq!(plain.status, 201, "{}", show(&plain));
    });
}
