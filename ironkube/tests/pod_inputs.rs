//! The kubelet's pod inputs against the real API server: `volumes::set_up` writes a pod's
//! ConfigMap, Secret, downward API, emptyDir (memory) and `kube-api-access-*` volumes from
//! what `ApiSources` reads, rewrites them atomically after a `kubectl` edit, and
//! `env::container_env` resolves the environment. No containerd: the files are checked on
//! the node's side. Needs root (tmpfs mounts).

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use ironkube_kubelet::volumes::{self, ApiSources, PodContext};
use serde_json::json;
use support::{Ironkube, eventually};

const KUBECTL: &str = "1.33";

/// Tears the pod's volumes down (unmounting its tmpfs) even when the test fails.
struct Volumes<'a> {
    runtime: &'a tokio::runtime::Runtime,
    pods_dir: PathBuf,
    uid: String,
}

impl Drop for Volumes<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.runtime.block_on(volumes::tear_down(&self.pods_dir, &self.uid)) {
            eprintln!("tearing down the test pod's volumes: {e}");
        }
    }
}

/// The file system type and options of the mount at `path`, from /proc/self/mountinfo.
fn mount_of(path: &Path) -> Option<(String, String)> {
    let path = std::fs::canonicalize(path).ok()?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        (left.split(' ').nth(4)? == path.to_str()?).then(|| {
            let mut fields = right.split(' ');
            let fs = fields.next().unwrap_or("").to_string();
            (fs, fields.nth(1).unwrap_or("").to_string())
        })
    })
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn volumes_and_environment_from_the_api() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = Ironkube::up(&tmp.path().join("data"));
    cluster.kubectl_ok(KUBECTL, &["create", "configmap", "app-config", "--from-literal=greeting=hello", "--from-literal=color=blue"]);
    cluster.kubectl_ok(KUBECTL, &["create", "secret", "generic", "app-secret", "--from-literal=password=s3cret"]);
    cluster.kubectl_ok(KUBECTL, &["create", "serviceaccount", "robot"]);
    eventually("the root CA ConfigMap is published", || cluster.kubectl_json(KUBECTL, &["get", "configmap", "kube-root-ca.crt"]));
    let manifest = tmp.path().join("pod.json");
    let pod_json = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "inputs", "labels": {"app": "inputs"}},
        "spec": {
            "serviceAccountName": "robot",
            "containers": [{
                "name": "main", "image": "busybox:1.36",
                "resources": {"limits": {"memory": "64Mi"}},
                "envFrom": [{"configMapRef": {"name": "app-config"}, "prefix": "CFG_"}],
                "env": [
                    {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "greeting"}}},
                    {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "app-secret", "key": "password"}}},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "MESSAGE", "value": "$(GREETING) from $(POD_NAME)"},
                ],
                "volumeMounts": [
                    {"name": "config", "mountPath": "/etc/config"},
                    {"name": "secret", "mountPath": "/etc/secret"},
                    {"name": "info", "mountPath": "/etc/info"},
                    {"name": "scratch", "mountPath": "/scratch"},
                ],
            }],
            "volumes": [
                {"name": "config", "configMap": {"name": "app-config"}},
                {"name": "secret", "secret": {"secretName": "app-secret", "defaultMode": 0o400}},
                {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
            ],
        },
    });
    std::fs::write(&manifest, pod_json.to_string()).expect("writing the manifest");
    cluster.kubectl_ok(KUBECTL, &["create", "-f", &manifest.display().to_string()]);
    let get_pod = || serde_json::from_value(cluster.kubectl_json(KUBECTL, &["get", "pod", "inputs"]).expect("get pod")).expect("a Pod");
    let pod = get_pod();

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = runtime.block_on(ironkube_kubelet::agent::api_client(Some(&cluster.kubeconfig))).expect("API client");
    let sources = ApiSources::new(client);
    let ctx = PodContext {
        node_name: "node-a".into(),
        host_ip: "10.0.0.7".into(),
        pod_ips: vec!["10.244.0.9".into()],
        node_allocatable: serde_json::from_value(json!({"memory": "1Gi"})).expect("allocatable"),
    };
    let pods_dir = tmp.path().join("pods");
    let uid = pod_uid(&cluster);
    let _cleanup = Volumes { runtime: &runtime, pods_dir: pods_dir.clone(), uid: uid.clone() };

    let set_up = |pod| runtime.block_on(volumes::set_up(pod, &pods_dir, &ctx, &sources)).unwrap_or_else(|e| panic!("set up: {e}"));
    let mounted = set_up(&pod);
    let dir = |plugin: &str, name: &str| pods_dir.join(&uid).join("volumes").join(plugin).join(name);

    // configMap: upstream's layout, on disk.
    let config = dir("kubernetes.io~configmap", "config");
    assert_eq!(mounted.get("config").map(|v| v.path.clone()), Some(config.clone()));
    assert_eq!(read(&config.join("greeting")), "hello");
    assert_eq!(read(&config.join("color")), "blue");
    assert_eq!(std::fs::read_link(config.join("greeting")).expect("a link"), Path::new("..data/greeting"));
    let first_data = std::fs::read_link(config.join("..data")).expect("..data");
    assert!(first_data.to_string_lossy().starts_with("..20"), "{}", first_data.display());
    assert_eq!(mount_of(&config), None, "configMap volumes are plain directories");

    // secret: mode 0400 on a tmpfs sized by the pod's memory limit.
    let secret = dir("kubernetes.io~secret", "secret");
    assert_eq!(read(&secret.join("password")), "s3cret");
    assert_eq!(std::fs::metadata(secret.join("password")).expect("stat").permissions().mode() & 0o777, 0o400);
    let (fs, options) = mount_of(&secret).expect("the secret volume is a mount");
    assert_eq!(fs, "tmpfs");
    assert!(options.contains("size=65536k"), "{options}");

    // emptyDir with medium Memory: a tmpfs of sizeLimit.
    let scratch = dir("kubernetes.io~empty-dir", "scratch");
    let (fs, options) = mount_of(&scratch).expect("the memory emptyDir is a mount");
    assert_eq!((fs.as_str(), options.contains("size=16384k")), ("tmpfs", true), "{options}");

    // downwardAPI.
    let info = dir("kubernetes.io~downward-api", "info");
    assert_eq!(read(&info.join("labels")), "app=\"inputs\"");

    // The admission's kube-api-access volume: a token bound to the pod, the CA, the namespace.
    let (access_name, access) = mounted.iter().find(|(n, _)| n.starts_with("kube-api-access-")).expect("a kube-api-access volume");
    assert_eq!(access.path, dir("kubernetes.io~projected", access_name));
    let ca = read(&cluster.data_dir.join("pki/ca.crt"));
    assert_eq!(read(&access.path.join("ca.crt")), ca);
    assert_eq!(read(&access.path.join("namespace")), "default");
    let token = read(&access.path.join("token"));
    let review = tmp.path().join("review.json");
    std::fs::write(&review, json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}).to_string()).expect("review");
    let reviewed = cluster.kubectl_json(KUBECTL, &["create", "-f", &review.display().to_string()]).expect("TokenReview");
    assert_eq!(reviewed["status"]["authenticated"], true, "{reviewed}");
    assert_eq!(reviewed["status"]["user"]["username"], "system:serviceaccount:default:robot");
    let claims = token.split('.').nth(1).expect("a JWT");
    let claims: serde_json::Value = serde_json::from_slice(&base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).expect("base64")).expect("claims");
    assert_eq!(claims["kubernetes.io"]["pod"], json!({"name": "inputs", "uid": uid}), "bound to the pod: {claims}");
    assert_eq!(claims["exp"].as_i64().zip(claims["iat"].as_i64()).map(|(e, i)| e - i), Some(3607), "{claims}");

    // The environment.
    let container = &pod.spec.as_ref().expect("a spec").containers[0];
    let env = runtime.block_on(ironkube_kubelet::env::container_env(&pod, container, &ctx, &sources)).expect("environment");
    let var = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert_eq!(var("CFG_greeting"), Some("hello"));
    assert_eq!(var("CFG_color"), Some("blue"));
    assert_eq!(var("PASSWORD"), Some("s3cret"));
    assert_eq!(var("MESSAGE"), Some("hello from inputs"));
    assert_eq!(var("KUBERNETES_SERVICE_HOST"), Some("10.96.0.1"));
    assert_eq!(var("KUBERNETES_SERVICE_PORT"), Some("443"));
    assert_eq!(var("KUBERNETES_PORT_443_TCP"), Some("tcp://10.96.0.1:443"));

    // An edit of the ConfigMap and a new label: the next set_up swaps the data in one step.
    cluster.kubectl_ok(KUBECTL, &["patch", "configmap", "app-config", "--type=merge", "-p", r#"{"data":{"greeting":"bonjour","color":null,"size":"L"}}"#]);
    cluster.kubectl_ok(KUBECTL, &["label", "pod", "inputs", "tier=db"]);
    let pod = get_pod();
    set_up(&pod);
    assert_eq!(read(&config.join("greeting")), "bonjour");
    assert_eq!(read(&config.join("size")), "L");
    assert!(std::fs::symlink_metadata(config.join("color")).is_err(), "a removed key's file goes away");
    let second_data = std::fs::read_link(config.join("..data")).expect("..data");
    assert_ne!(second_data, first_data);
    assert!(!config.join(&first_data).exists(), "the old timestamped directory is removed");
    assert_eq!(read(&info.join("labels")), "app=\"inputs\"\ntier=\"db\"");
    assert_eq!(read(&access.path.join("token")), token, "a fresh token is not requested again");

    // A missing ConfigMap reads as upstream's FailedMount message.
    let mut broken = pod_json.clone();
    broken["metadata"]["uid"] = json!(uid);
    broken["metadata"]["namespace"] = json!("default");
    broken["spec"]["volumes"][0]["configMap"]["name"] = json!("absent");
    let broken = serde_json::from_value(broken).expect("pod");
    let err = runtime.block_on(volumes::set_up(&broken, &pods_dir, &ctx, &sources)).expect_err("a missing ConfigMap fails");
    assert_eq!(err.to_string(), "MountVolume.SetUp failed for volume \"config\" : configmap \"absent\" not found");

    // A node going away unmounts every tmpfs; tear-down removes the rest.
    runtime.block_on(volumes::unmount_all(&pods_dir)).expect("unmount all");
    assert_eq!((mount_of(&secret), mount_of(&scratch), mount_of(&access.path)), (None, None, None));
    assert_eq!(read(&config.join("greeting")), "bonjour", "disk volumes keep their files");
    set_up(&pod);
    assert_eq!(mount_of(&secret).map(|(fs, _)| fs).as_deref(), Some("tmpfs"), "set up again");
    runtime.block_on(volumes::tear_down(&pods_dir, &uid)).expect("tear down");
    assert!(!pods_dir.join(&uid).join("volumes").exists());
    assert_eq!((mount_of(&secret), mount_of(&scratch)), (None, None));
}

fn pod_uid(cluster: &Ironkube) -> String {
    let pod = cluster.kubectl_json(KUBECTL, &["get", "pod", "inputs"]).expect("get pod");
    pod["metadata"]["uid"].as_str().expect("a uid").to_string()
}
