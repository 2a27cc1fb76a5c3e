use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use k8s_openapi::api::core::v1::Container;

use super::fake::FakeSources;
use super::*;
use crate::cri::api;

const UID: &str = "0b7c5a2e-uid";

fn pod(volumes: serde_json::Value, mounts: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "ns", "uid": UID, "labels": {"app": "web"}},
        "spec": {"serviceAccountName": "robot", "volumes": volumes,
            "containers": [{"name": "c", "volumeMounts": mounts, "resources": {"limits": {"cpu": "500m"}}}]},
    }))
    .expect("pod")
}

fn ctx() -> PodContext {
    PodContext {
        node_name: "n".into(),
        host_ip: "10.0.0.1".into(),
        pod_ips: vec![],
        node_allocatable: BTreeMap::from([("cpu".to_string(), Quantity("4".into())), ("memory".to_string(), Quantity("8Gi".into()))]),
    }
}

async fn run(pod: &Pod, dir: &Path, sources: &FakeSources) -> Result<PodVolumes, SetUpError> {
    set_up_with(pod, dir, &ctx(), sources, MemoryBacking::Directory).await
}

/// The files a container sees in a volume (top-level names not starting with `..`, links
/// followed), with their content and mode.
pub(super) fn files(dir: &Path) -> BTreeMap<String, (String, u32)> {
    let mut out = BTreeMap::new();
    let mut pending = vec![String::new()];
    while let Some(rel) = pending.pop() {
        for entry in std::fs::read_dir(dir.join(&rel)).expect("readdir") {
            let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
            if rel.is_empty() && name.starts_with("..") {
                continue;
            }
            let child = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            let meta = std::fs::metadata(dir.join(&child)).expect("stat");
            if meta.is_dir() {
                pending.push(child);
            } else {
                let data = std::fs::read_to_string(dir.join(&child)).expect("read");
                out.insert(child, (data, meta.permissions().mode() & 0o7777));
            }
        }
    }
    out
}

fn expect_files(dir: &Path, want: &[(&str, &str, u32)]) {
    let want: BTreeMap<String, (String, u32)> = want.iter().map(|(p, d, m)| (p.to_string(), (d.to_string(), *m))).collect();
    assert_eq!(files(dir), want, "{}", dir.display());
}

fn failure_messages(result: Result<PodVolumes, SetUpError>) -> Vec<String> {
    result.expect_err("set up should fail").failures.iter().map(ToString::to_string).collect()
}

#[tokio::test]
async fn config_map_volume_is_written_and_refreshed_atomically() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sources = FakeSources::default().with_config_map("ns", json!({"metadata": {"name": "cfg"}, "data": {"a": "1", "b": "2"}, "binaryData": {"bin": "AAE="}}));
    let pod = pod(
        json!([{"name": "config", "configMap": {"name": "cfg"}}, {"name": "picked", "configMap": {"name": "cfg", "defaultMode": 0o600, "items": [
            {"key": "a", "path": "dir/first"}, {"key": "b", "path": "second", "mode": 0o400}]}}]),
        json!([{"name": "config", "mountPath": "/etc/config"}, {"name": "picked", "mountPath": "/etc/picked"}]),
    );
    let volumes = run(&pod, tmp.path(), &sources).await.expect("set up");
    let dir = tmp.path().join(UID).join("volumes/kubernetes.io~configmap/config");
    assert_eq!(volumes.get("config"), Some(&MountedVolume { plugin: Plugin::ConfigMap, path: dir.clone() }));
    assert_eq!(std::fs::metadata(&dir).expect("dir").permissions().mode() & 0o777, 0o777);
    let bin = std::fs::read(dir.join("bin")).expect("bin");
    assert_eq!(bin, vec![0, 1]);
    let picked = tmp.path().join(UID).join("volumes/kubernetes.io~configmap/picked");
    expect_files(&picked, &[("dir/first", "1", 0o600), ("second", "2", 0o400)]);

    // An edit: a changed value, a removed key and a new one; the refresh swaps ..data.
    let before = std::fs::read_link(dir.join("..data")).expect("..data");
    sources.config_maps.lock().expect("lock").insert(
        ("ns".into(), "cfg".into()),
        serde_json::from_value(json!({"metadata": {"name": "cfg"}, "data": {"a": "one", "c": "3"}})).expect("cm"),
    );
    // The key "picked" names is gone: that volume fails and keeps its old files; the other
    // volume is refreshed.
    let got = failure_messages(run(&pod, tmp.path(), &sources).await);
    assert_eq!(got, vec!["MountVolume.SetUp failed for volume \"picked\" : configmap references non-existent config key: b"]);
    expect_files(&picked, &[("dir/first", "1", 0o600), ("second", "2", 0o400)]);
    expect_files(&dir, &[("a", "one", 0o644), ("c", "3", 0o644)]);
    assert_ne!(std::fs::read_link(dir.join("..data")).expect("..data"), before);
    assert!(!dir.join(&before).exists(), "the old timestamped directory is gone");
}

#[tokio::test]
async fn missing_sources_and_optional() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sources = FakeSources::default()
        .with_config_map("ns", json!({"metadata": {"name": "cfg"}, "data": {"a": "1"}}))
        .with_secret("ns", json!({"metadata": {"name": "sec"}, "data": {"k": "dg=="}}));
    type Files = Vec<(&'static str, &'static str, u32)>;
    let table: Vec<(serde_json::Value, Result<Files, &str>)> = vec![
        (json!({"configMap": {"name": "nope"}}), Err("configmap \"nope\" not found")),
        (json!({"configMap": {"name": "nope", "optional": true}}), Ok(vec![])),
        (json!({"configMap": {"name": "cfg", "optional": true, "items": [{"key": "zz", "path": "zz"}, {"key": "a", "path": "a"}]}}), Ok(vec![("a", "1", 0o644)])),
        (json!({"secret": {"secretName": "nope"}}), Err("secret \"nope\" not found")),
        (json!({"secret": {"secretName": "nope", "optional": true}}), Ok(vec![])),
        (json!({"secret": {"secretName": "sec", "items": [{"key": "zz", "path": "zz"}]}}), Err("references non-existent secret key: zz")),
        (json!({"secret": {"secretName": "sec", "defaultMode": 0o400}}), Ok(vec![("k", "v", 0o400)])),
        (json!({"secret": {"secretName": "sec", "items": [{"key": "k", "path": "deep/name", "mode": 0o640}]}}), Ok(vec![("deep/name", "v", 0o640)])),
        (json!({"configMap": {"name": "cfg", "items": [{"key": "a", "path": "../escape"}]}}), Err("invalid path: must not contain '..': ../escape")),
        (json!({"persistentVolumeClaim": {"claimName": "claim"}}), Err("no volume plugin matched")),
        (json!({"emptyDir": {"medium": "HugePages-2Mi"}}), Err("unknown storage medium \"HugePages-2Mi\"")),
    ];
    for (i, (source, want)) in table.into_iter().enumerate() {
        let mut volume = source.clone();
        volume["name"] = json!(format!("v{i}"));
        let pod = pod(json!([volume]), json!([{"name": format!("v{i}"), "mountPath": "/m"}]));
        let got = run(&pod, tmp.path(), &sources).await;
        match want {
            Ok(want) => {
                let volumes = got.unwrap_or_else(|e| panic!("{source}: {e}"));
                expect_files(&volumes.get(&format!("v{i}")).expect("volume").path, &want);
            }
            Err(want) => assert_eq!(failure_messages(got), vec![format!("MountVolume.SetUp failed for volume \"v{i}\" : {want}")], "{source}"),
        }
    }
}

#[tokio::test]
async fn only_mounted_volumes_are_set_up_and_every_failure_is_reported() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pod = pod(
        json!([{"name": "unused", "configMap": {"name": "nope"}}, {"name": "a", "configMap": {"name": "x"}},
               {"name": "b", "secret": {"secretName": "y"}}, {"name": "scratch", "emptyDir": {}}]),
        json!([{"name": "a", "mountPath": "/a"}, {"name": "b", "mountPath": "/b"}, {"name": "scratch", "mountPath": "/s"}]),
    );
    let err = run(&pod, tmp.path(), &FakeSources::default()).await.expect_err("fails");
    assert_eq!(
        err.to_string(),
        "MountVolume.SetUp failed for volume \"a\" : configmap \"x\" not found; MountVolume.SetUp failed for volume \"b\" : secret \"y\" not found"
    );
    assert_eq!(err.failures[1].error.to_string(), "secret \"y\" not found");
    assert!(tmp.path().join(UID).join("volumes/kubernetes.io~empty-dir/scratch").is_dir(), "the others are set up");
    assert!(!tmp.path().join(UID).join("volumes/kubernetes.io~configmap/unused").exists());
    let failing = FakeSources { failure: Some("configmaps \"x\" is forbidden: no".into()), ..Default::default() };
    let got = failure_messages(run(&pod, tmp.path(), &failing).await);
    assert_eq!(got[0], "MountVolume.SetUp failed for volume \"a\" : configmaps \"x\" is forbidden: no");
}

#[tokio::test]
async fn downward_api_volume_follows_the_pod() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let volumes = json!([{"name": "info", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 0o400},
        {"path": "cpu_limit", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu", "divisor": "1m"}},
        {"path": "mem_limit", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}},
    ]}}]);
    let mut pod = pod(volumes, json!([{"name": "info", "mountPath": "/info"}]));
    let sources = FakeSources::default();
    let v = run(&pod, tmp.path(), &sources).await.expect("set up");
    let dir = v.get("info").expect("info").path.clone();
    assert!(dir.ends_with("kubernetes.io~downward-api/info"), "{}", dir.display());
    expect_files(&dir, &[("cpu_limit", "500", 0o644), ("labels", "app=\"web\"", 0o644), ("mem_limit", "8192", 0o644), ("name", "p", 0o400)]);
    pod.metadata.labels = Some(BTreeMap::from([("app".into(), "web".into()), ("tier".into(), "db".into())]));
    run(&pod, tmp.path(), &sources).await.expect("refresh");
    assert_eq!(std::fs::read_to_string(dir.join("labels")).expect("labels"), "app=\"web\"\ntier=\"db\"");

    let bad = self::pod(
        json!([{"name": "info", "downwardAPI": {"items": [
            {"path": "a", "fieldRef": {"fieldPath": "spec.nodeName"}},
            {"path": "b", "resourceFieldRef": {"containerName": "ghost", "resource": "limits.cpu"}}]}}]),
        json!([{"name": "info", "mountPath": "/info"}]),
    );
    let got = failure_messages(run(&bad, tmp.path(), &sources).await);
    assert_eq!(got, vec!["MountVolume.SetUp failed for volume \"info\" : [unsupported fieldPath: spec.nodeName, container ghost not found]"]);
}

/// The volume the ServiceAccount admission gives every pod.
fn kube_api_access() -> serde_json::Value {
    json!({"name": "kube-api-access-x7k2p", "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}})
}

#[tokio::test]
async fn projected_service_account_volume() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sources = FakeSources::default().with_config_map("ns", json!({"metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": "PEM"}}));
    let pod = pod(json!([kube_api_access()]), json!([{"name": "kube-api-access-x7k2p", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}]));
    let volumes = run(&pod, tmp.path(), &sources).await.expect("set up");
    let dir = tmp.path().join(UID).join("volumes/kubernetes.io~projected/kube-api-access-x7k2p");
    assert_eq!(volumes.get("kube-api-access-x7k2p").map(|v| &v.path), Some(&dir));
    let token = super::fake::token(1);
    expect_files(&dir, &[("ca.crt", "PEM", 0o644), ("namespace", "ns", 0o644), ("token", &token, 0o644)]);
    assert_eq!(*sources.tokens.lock().expect("lock"), vec![("p".to_string(), None, 3607)]);
    // A fresh token is kept; the CA changes.
    sources.config_maps.lock().expect("lock").insert(
        ("ns".into(), "kube-root-ca.crt".into()),
        serde_json::from_value(json!({"metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": "NEW"}})).expect("cm"),
    );
    run(&pod, tmp.path(), &sources).await.expect("refresh");
    expect_files(&dir, &[("ca.crt", "NEW", 0o644), ("namespace", "ns", 0o644), ("token", &token, 0o644)]);
    assert_eq!(sources.tokens.lock().expect("lock").len(), 1, "no second TokenRequest while the token is fresh");

    // An old token is requested again.
    let old_claims = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, r#"{"iat":1000}"#);
    let data = std::fs::read_link(dir.join("..data")).expect("..data");
    std::fs::write(dir.join(&data).join("token"), format!("h.{old_claims}.s")).expect("age the token");
    run(&pod, tmp.path(), &sources).await.expect("refresh");
    assert_eq!(std::fs::read_to_string(dir.join("token")).expect("token"), super::fake::token(2));

    // Audience and default lifetime; two missing sources reported together.
    let custom = self::pod(
        json!([{"name": "t", "projected": {"sources": [
            {"serviceAccountToken": {"audience": "vault", "path": "vault-token"}},
            {"configMap": {"name": "a"}}, {"secret": {"name": "b"}}]}}]),
        json!([{"name": "t", "mountPath": "/t"}]),
    );
    let got = failure_messages(run(&custom, tmp.path(), &sources).await);
    assert_eq!(got, vec!["MountVolume.SetUp failed for volume \"t\" : [configmap \"a\" not found, secret \"b\" not found]"]);
    assert_eq!(sources.tokens.lock().expect("lock").last(), Some(&("p".to_string(), Some("vault".to_string()), 3600)));
}

#[tokio::test]
async fn nested_mount_points_are_made_in_the_outer_volume() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sources = FakeSources::default().with_config_map("ns", json!({"metadata": {"name": "cfg"}, "data": {"a": "1"}}));
    let pod = pod(
        json!([{"name": "outer", "configMap": {"name": "cfg"}}, {"name": "inner", "emptyDir": {}}, {"name": "deeper", "emptyDir": {}}]),
        json!([{"name": "outer", "mountPath": "/etc/app/"}, {"name": "inner", "mountPath": "/etc/app/cache"}, {"name": "deeper", "mountPath": "/etc/app/cache/x"}]),
    );
    assert_eq!(nested_mountpoints("outer", &pod).expect("nested"), vec!["cache".to_string()]);
    assert_eq!(nested_mountpoints("inner", &pod).expect("nested"), vec!["x".to_string()]);
    let v = run(&pod, tmp.path(), &sources).await.expect("set up");
    assert!(v.get("outer").expect("outer").path.join("cache").is_dir());
}

#[tokio::test]
async fn container_mounts_follow_make_mounts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sources = FakeSources::default().with_config_map("ns", json!({"metadata": {"name": "cfg"}, "data": {"app.conf": "x"}}));
    let host = tmp.path().join("host");
    std::fs::create_dir(&host).expect("host dir");
    let volumes = json!([{"name": "cfg", "configMap": {"name": "cfg"}}, {"name": "data", "emptyDir": {}},
        {"name": "host", "hostPath": {"path": host.display().to_string(), "type": "Directory"}}]);
    let pod = pod(volumes, json!([{"name": "cfg", "mountPath": "/etc/cfg"}, {"name": "data", "mountPath": "/data"}, {"name": "host", "mountPath": "/host"}]));
    let v = run(&pod, tmp.path(), &sources).await.expect("set up");
    let data = v.get("data").expect("data").path.clone();
    let cfg = v.get("cfg").expect("cfg").path.clone();
    std::fs::create_dir(data.join("ok")).expect("dir");
    std::os::unix::fs::symlink("/etc", data.join("escape")).expect("symlink");
    let env = vec![("POD".to_string(), "p-1".to_string()), ("EMPTY".to_string(), String::new())];
    let container = |mounts: serde_json::Value| -> Container { serde_json::from_value(json!({"name": "c", "volumeMounts": mounts})).expect("container") };
    let mount = |container_path: &str, host_path: &Path, readonly: bool, relabel: bool, propagation: api::MountPropagation| api::Mount {
        container_path: container_path.into(),
        host_path: host_path.display().to_string(),
        readonly,
        selinux_relabel: relabel,
        propagation: propagation as i32,
        ..Default::default()
    };
    use api::MountPropagation::{PropagationBidirectional, PropagationHostToContainer, PropagationPrivate};
    let table: Vec<(serde_json::Value, Result<Vec<api::Mount>, String>)> = vec![
        (
            json!([{"name": "cfg", "mountPath": "/etc/cfg"}, {"name": "data", "mountPath": "data", "readOnly": true, "mountPropagation": "HostToContainer"},
                   {"name": "host", "mountPath": "/host", "mountPropagation": "Bidirectional"}]),
            Ok(vec![
                mount("/etc/cfg", &cfg, true, true, PropagationPrivate),
                mount("/data", &data, true, true, PropagationHostToContainer),
                mount("/host", &host, false, false, PropagationBidirectional),
            ]),
        ),
        (json!([{"name": "data", "mountPath": "/d", "subPath": "new/dir"}]), Ok(vec![mount("/d", &data.join("new/dir"), false, true, PropagationPrivate)])),
        (json!([{"name": "data", "mountPath": "/d", "subPathExpr": "logs/$(POD)"}]), Ok(vec![mount("/d", &data.join("logs/p-1"), false, true, PropagationPrivate)])),
        (json!([{"name": "cfg", "mountPath": "/f", "subPath": "app.conf"}]), Ok(vec![mount("/f", &std::fs::canonicalize(cfg.join("app.conf")).expect("real"), true, true, PropagationPrivate)])),
        (json!([{"name": "data", "mountPath": "/d", "subPathExpr": "$(EMPTY)/$(NOPE)/$(POD)"}]), Err("missing value for EMPTY, NOPE".into())),
        (json!([{"name": "data", "mountPath": "/d", "subPath": "/abs"}]), Err("error SubPath `/abs` must not be an absolute path".into())),
        (json!([{"name": "data", "mountPath": "/d", "subPath": "a/../../b"}]), Err("unable to provision SubPath `a/../../b`: must not contain '..'".into())),
        (json!([{"name": "data", "mountPath": "/d", "subPath": "escape/x"}]), Err("failed to create subPath directory for volumeMount \"data\" of container \"c\"".into())),
        (json!([{"name": "data", "mountPath": "/d", "subPath": "escape"}]), Err("failed to prepare subPath for volumeMount \"data\" of container \"c\"".into())),
        (json!([{"name": "ghost", "mountPath": "/g"}]), Err("cannot find volume \"ghost\" to mount into container \"c\"".into())),
        (json!([{"name": "data", "mountPath": "/d", "mountPropagation": "Sideways"}]), Err("invalid MountPropagation mode: \"Sideways\"".into())),
        (json!([{"name": "data", "mountPath": "/d", "readOnly": true, "recursiveReadOnly": "IfPossible"}]), Ok(vec![mount("/d", &data, true, true, PropagationPrivate)])),
        (
            json!([{"name": "data", "mountPath": "/d", "readOnly": true, "recursiveReadOnly": "Enabled"}]),
            Err("failed to resolve recursive read-only mode: volume \"data\" requested recursive read-only mode, but it is not supported by the runtime".into()),
        ),
        (
            json!([{"name": "data", "mountPath": "/d", "recursiveReadOnly": "Enabled"}]),
            Err("failed to resolve recursive read-only mode: volume \"data\" requested recursive read-only mode, but it is not read-only".into()),
        ),
    ];
    for (mounts, want) in table {
        let got = container_mounts(&pod, &container(mounts.clone()), &v, &env).map_err(|e| e.to_string());
        assert_eq!(got, want, "{mounts}");
    }
    let made = data.join("new/dir");
    assert_eq!(std::fs::metadata(&made).expect("made").permissions().mode() & 0o777, 0o777, "the volume's mode");
}

#[tokio::test]
async fn tear_down_removes_the_volumes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pod = pod(json!([{"name": "scratch", "emptyDir": {}}]), json!([{"name": "scratch", "mountPath": "/s"}]));
    let v = run(&pod, tmp.path(), &FakeSources::default()).await.expect("set up");
    std::fs::write(v.get("scratch").expect("scratch").path.join("f"), "x").expect("write");
    tear_down(tmp.path(), UID).await.expect("tear down");
    assert!(!tmp.path().join(UID).join("volumes").exists());
    tear_down(tmp.path(), UID).await.expect("again: nothing to do");
}

#[test]
fn clean_paths() {
    for (input, want) in [("/etc/app/", "/etc/app"), ("a//b/./c", "a/b/c"), ("../x", "../x"), ("/../x", "/x"), ("a/../..", ".."), ("", ".")] {
        assert_eq!(clean_path(input), want, "{input}");
    }
}

#[test]
fn go_error_texts() {
    let e = std::io::Error::from_raw_os_error(2);
    assert_eq!(go_error_text(&e), "no such file or directory");
    assert_eq!(go_error_text(&std::io::Error::from_raw_os_error(13)), "permission denied");
}
