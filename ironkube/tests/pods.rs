//! Real pods on a real node: `ironkube up --node=true` runs a private containerd and the
//! kubelet, and stock kubectl runs busybox pods on it — Running with the status upstream's
//! kubelet reports, restarts with CrashLoopBackOff, image pull failures without a registry,
//! deletion within the grace period, and containers that outlive a restart of the cluster.
//!
//! Needs root, containerd, runc, the CNI plugins and the node images (`hack/test.sh`
//! provides all of them).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Ironkube, eventually, free_port};

const NODE: &str = "ikpods";
const BRIDGE: &str = "ikt9";
const POD_CIDR: &str = "10.249.0.0/24";

/// Removes what the node left running once the cluster is gone: containerd is started
/// again on the node's config just long enough to remove every sandbox, then the bridge.
/// Declared before the cluster, so it is dropped after it.
struct NodeCleanup {
    dir: PathBuf,
}

impl Drop for NodeCleanup {
    fn drop(&mut self) {
        let node = self.dir.join("node");
        let config = node.join("config.toml");
        if config.exists()
            && let Ok(mut child) = Command::new("containerd").arg("--config").arg(&config).stdout(Stdio::null()).stderr(Stdio::null()).spawn() {
                let socket = node.join("containerd.sock");
                let deadline = Instant::now() + Duration::from_secs(20);
                while !socket.exists() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(100));
                }
                std::thread::sleep(Duration::from_millis(300));
                ironkube_testkit::containerd::remove_all_pods(&format!("unix://{}", socket.display()));
                let _ = child.kill();
                let _ = child.wait();
            }
        // Secret, projected and memory emptyDir volumes are tmpfs mounts under the kubelet's
        // root: a stopped kubelet leaves them for its next start.
        let pods = node.join("kubelet").join("pods");
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
            let _ = rt.block_on(ironkube_kubelet::volumes::unmount_all(&pods));
        }
        let _ = Command::new("ip").args(["link", "delete", BRIDGE]).stderr(Stdio::null()).status();
    }
}

fn up(data: &Path, kubelet_port: u16) -> Ironkube {
    let images = ironkube_testkit::containerd::images_dir();
    Ironkube::up_with(
        data,
        &[
            "--node=true",
            &format!("--node-name={NODE}"),
            &format!("--pod-cidr={POD_CIDR}"),
            &format!("--cni-bridge={BRIDGE}"),
            &format!("--images-dir={}", images.display()),
            &format!("--kubelet-port={kubelet_port}"),
        ],
    )
}

/// Writes `manifest` to `path` and applies it with kubectl 1.33.
fn apply(cluster: &Ironkube, path: &Path, manifest: &str) {
    std::fs::write(path, manifest).expect("writing the manifest");
    cluster.kubectl_ok("1.33", &["apply", "-f", &path.display().to_string()]);
}

fn pod(cluster: &Ironkube, name: &str) -> Result<Value, String> {
    cluster.kubectl_json("1.33", &["get", "pod", name])
}

fn container_status(p: &Value) -> &Value {
    &p["status"]["containerStatuses"][0]
}

fn running(cluster: &Ironkube, name: &str) -> Value {
    eventually(&format!("pod {name} Running and Ready"), || {
        let p = pod(cluster, name)?;
        let ready = p["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True");
        if p["status"]["phase"] == "Running" && ready { Ok(p) } else { Err(format!("{}", p["status"])) }
    })
}

fn condition<'a>(p: &'a Value, kind: &str) -> &'a Value {
    p["status"]["conditions"].as_array().and_then(|cs| cs.iter().find(|c| c["type"] == kind)).unwrap_or(&Value::Null)
}

fn events(cluster: &Ironkube, name: &str) -> Vec<(String, String, String)> {
    let list = cluster.kubectl_json("1.33", &["get", "events", "--field-selector", &format!("involvedObject.name={name}")]).unwrap_or_default();
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (e["type"].as_str().unwrap_or("").to_string(), e["reason"].as_str().unwrap_or("").to_string(), e["message"].as_str().unwrap_or("").to_string()))
        .collect()
}

/// The host PID of a container's process, from containerd's task list.
fn task_pid(data: &Path, container_id: &str) -> Option<i32> {
    let socket = data.join("node").join("containerd.sock");
    let out = Command::new("ctr").arg("--address").arg(socket).args(["-n", "k8s.io", "tasks", "ls"]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find(|l| l.starts_with(container_id)).and_then(|l| l.split_whitespace().nth(1)).and_then(|p| p.parse().ok())
}

#[test]
fn pods_run_restart_and_stop_on_a_real_node() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let _cleanup = NodeCleanup { dir: data.clone() };
    let kubelet_port = free_port();
    let cluster = up(&data, kubelet_port);

    eventually("the node is Ready", || {
        let node = cluster.kubectl_json("1.33", &["get", "node", NODE])?;
        let ready = node["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True");
        if ready { Ok(()) } else { Err(format!("{}", node["status"]["conditions"])) }
    });

    // A running pod, with the status upstream's kubelet writes.
    let created = Instant::now();
    cluster.kubectl_ok("1.33", &["run", "b", "--image=busybox:1.36", "--", "sh", "-c", "echo hi; sleep 3600"]);
    let b = running(&cluster, "b");
    eprintln!("pod b Running after {:?}", created.elapsed());
    let status = &b["status"];
    let ip = status["podIP"].as_str().unwrap_or("");
    assert!(ip.starts_with("10.249.0."), "podIP {ip:?} from the node's pod CIDR");
    assert_eq!(status["podIPs"][0]["ip"], ip);
    assert_eq!(status["qosClass"], "BestEffort");
    assert!(status["startTime"].is_string());
    let types: Vec<&str> = status["conditions"].as_array().into_iter().flatten().filter_map(|c| c["type"].as_str()).collect();
    assert_eq!(types, ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]);
    let cs = container_status(&b);
    assert_eq!(cs["name"], "b");
    assert_eq!((cs["ready"].as_bool(), cs["started"].as_bool(), cs["restartCount"].as_i64()), (Some(true), Some(true), Some(0)));
    assert!(cs["state"]["running"]["startedAt"].is_string(), "{cs}");
    assert!(cs["containerID"].as_str().unwrap_or("").starts_with("containerd://"), "{cs}");
    assert_eq!(cs["image"], "docker.io/library/busybox:1.36");
    assert!(cs["imageID"].as_str().unwrap_or("").contains("sha256:"), "{cs}");
    assert_eq!(cs["volumeMounts"][0]["mountPath"], "/var/run/secrets/kubernetes.io/serviceaccount", "{cs}");
    let reasons: Vec<String> = events(&cluster, "b").into_iter().map(|e| e.1).collect();
    for want in ["Scheduled", "Pulled", "Created", "Started"] {
        assert!(reasons.iter().any(|r| r == want), "event {want} missing from {reasons:?}");
    }
    // The service account token and the cluster's CA are there, and /etc/hosts names the pod.
    let hosts = std::fs::read_to_string(data.join("node/kubelet/pods").join(b["metadata"]["uid"].as_str().unwrap_or("")).join("etc-hosts")).unwrap_or_default();
    assert!(hosts.contains(&format!("{ip}\tb\n")), "{hosts}");

    // Its log and its hostname, through the API server and the kubelet, with both kubectls.
    for version in support::KUBECTL_VERSIONS {
        assert_eq!(cluster.kubectl_ok(version, &["logs", "b"]), "hi\n");
        assert_eq!(cluster.kubectl_ok(version, &["exec", "b", "--", "cat", "/etc/hostname"]), "b\n");
    }

    // Without a cluster DNS, dnsPolicy ClusterFirst falls back to the node's resolvers.
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolv = cluster.kubectl_ok("1.33", &["exec", "b", "--", "cat", "/etc/resolv.conf"]);
    for server in host_resolv.lines().filter(|l| l.starts_with("nameserver")) {
        assert!(resolv.contains(server), "{server:?} missing from the pod's resolv.conf:\n{resolv}");
    }

    // A crashing container is restarted, then backs off.
    cluster.kubectl_ok("1.33", &["run", "crash", "--image=busybox:1.36", "--", "sh", "-c", "echo dying; exit 3"]);
    let crash = eventually("crash shows CrashLoopBackOff with restarts", || {
        let p = pod(&cluster, "crash")?;
        let cs = container_status(&p);
        let restarts = cs["restartCount"].as_i64().unwrap_or(0);
        if cs["state"]["waiting"]["reason"] == "CrashLoopBackOff" && restarts >= 1 { Ok(p) } else { Err(format!("{cs}")) }
    });
    let cs = container_status(&crash);
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 3, "{cs}");
    assert_eq!(cs["lastState"]["terminated"]["reason"], "Error", "{cs}");
    let message = cs["state"]["waiting"]["message"].as_str().unwrap_or("");
    assert!(message.starts_with("back-off 10s restarting failed container=crash pod=crash_default("), "{message}");
    assert_eq!(crash["status"]["phase"], "Running");
    assert_eq!(condition(&crash, "Ready")["reason"], "ContainersNotReady");
    assert!(events(&cluster, "crash").iter().any(|e| e.0 == "Warning" && e.1 == "BackOff"), "{:?}", events(&cluster, "crash"));
    let first = cs["restartCount"].as_i64().unwrap_or(0);
    eventually("the restart count grows", || {
        let p = pod(&cluster, "crash")?;
        let n = container_status(&p)["restartCount"].as_i64().unwrap_or(0);
        if n > first { Ok(()) } else { Err(format!("restartCount still {n}")) }
    });

    // A run-once pod completes.
    cluster.kubectl_ok("1.33", &["run", "once", "--image=busybox:1.36", "--restart=Never", "--", "sh", "-c", "exit 0"]);
    eventually("once Succeeded", || {
        let p = pod(&cluster, "once")?;
        if p["status"]["phase"] == "Succeeded" { Ok(()) } else { Err(format!("{}", p["status"])) }
    });

    // An image nobody built, with no registry to pull it from.
    cluster.kubectl_ok("1.33", &["run", "nopull", "--image=busybox"]);
    let nopull = eventually("nopull fails to pull", || {
        let p = pod(&cluster, "nopull")?;
        let reason = container_status(&p)["state"]["waiting"]["reason"].as_str().unwrap_or("").to_string();
        if reason == "ErrImagePull" || reason == "ImagePullBackOff" { Ok(p) } else { Err(format!("{}", p["status"])) }
    });
    assert_eq!(nopull["spec"]["containers"][0]["imagePullPolicy"], "Always");
    let ev = events(&cluster, "nopull");
    assert!(ev.iter().any(|e| e.1 == "Pulling" && e.2 == "Pulling image \"busybox\""), "{ev:?}");
    assert!(ev.iter().any(|e| e.0 == "Warning" && e.1 == "Failed" && e.2.starts_with("Failed to pull image \"busybox\": rpc error:")), "{ev:?}");
    assert!(ev.iter().any(|e| e.1 == "Failed" && e.2 == "Error: ErrImagePull"), "{ev:?}");

    // Probes: a failing readiness probe keeps a running pod out of Ready; a failing
    // liveness probe restarts its container.
    apply(&cluster, &dir.path().join("probes.yaml"),
        r#"apiVersion: v1
kind: Pod
metadata: {name: probed}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: unready
    image: busybox:1.36
    command: [sleep, "3600"]
    readinessProbe: {exec: {command: ["false"]}, periodSeconds: 1}
  - name: unlive
    image: busybox:1.36
    command: [sleep, "3600"]
    livenessProbe: {exec: {command: [sh, -c, "exit 1"]}, periodSeconds: 1, failureThreshold: 2}
"#,
    );
    let probed = eventually("unlive restarted by its liveness probe", || {
        let p = pod(&cluster, "probed")?;
        let statuses = p["status"]["containerStatuses"].as_array().cloned().unwrap_or_default();
        let unlive = statuses.iter().find(|s| s["name"] == "unlive").cloned().unwrap_or_default();
        if unlive["restartCount"].as_i64().unwrap_or(0) >= 1 { Ok(p) } else { Err(format!("{}", p["status"])) }
    });
    assert_eq!(probed["status"]["phase"], "Running");
    assert_eq!(condition(&probed, "Ready")["status"], "False");
    let unready = probed["status"]["containerStatuses"].as_array().and_then(|v| v.iter().find(|s| s["name"] == "unready").cloned()).unwrap_or_default();
    assert_eq!((unready["ready"].as_bool(), unready["started"].as_bool()), (Some(false), Some(true)), "{unready}");
    assert!(unready["state"]["running"].is_object(), "{unready}");
    let ev = events(&cluster, "probed");
    assert!(ev.iter().any(|e| e.0 == "Warning" && e.1 == "Unhealthy" && e.2.starts_with("Readiness probe failed")), "{ev:?}");
    assert!(ev.iter().any(|e| e.1 == "Killing" && e.2 == "Container unlive failed liveness probe, will be restarted"), "{ev:?}");

    // A configMap volume follows edits of the ConfigMap while the pod runs.
    cluster.kubectl_ok("1.33", &["create", "configmap", "cfg", "--from-literal=greeting=hello"]);
    apply(&cluster, &dir.path().join("cm.yaml"),
        r#"apiVersion: v1
kind: Pod
metadata: {name: cm}
spec:
  containers:
  - name: c
    image: busybox:1.36
    command: [sleep, "3600"]
    volumeMounts: [{name: cfg, mountPath: /cfg}]
  volumes: [{name: cfg, configMap: {name: cfg}}]
"#,
    );
    running(&cluster, "cm");
    assert_eq!(cluster.kubectl_ok("1.33", &["exec", "cm", "--", "cat", "/cfg/greeting"]), "hello");
    cluster.kubectl_ok("1.33", &["patch", "configmap", "cfg", "-p", r#"{"data":{"greeting":"bonjour"}}"#]);
    eventually("the running pod sees the edit", || {
        let now = cluster.kubectl_ok("1.33", &["exec", "cm", "--", "cat", "/cfg/greeting"]);
        if now == "bonjour" { Ok(()) } else { Err(now) }
    });

    // activeDeadlineSeconds: the kubelet ends the pod as Failed/DeadlineExceeded.
    apply(&cluster, &dir.path().join("deadline.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: deadline}\nspec:\n  activeDeadlineSeconds: 3\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {name: c, image: busybox:1.36, command: [sleep, '3600']}\n",
    );
    let ended = eventually("deadline ends Failed", || {
        let p = pod(&cluster, "deadline")?;
        if p["status"]["phase"] == "Failed" { Ok(p) } else { Err(format!("{}", p["status"])) }
    });
    assert_eq!(ended["status"]["reason"], "DeadlineExceeded");
    assert_eq!(ended["status"]["message"], "Pod was active on the node longer than the specified deadline");

    // fsGroup: a non-root container reads a 0440 secret file through the volume's group.
    cluster.kubectl_ok("1.33", &["create", "secret", "generic", "sec", "--from-literal=data-1=value-1"]);
    apply(&cluster, &dir.path().join("fsgroup.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: fsgroup}\nspec:\n  restartPolicy: Never\n  securityContext: {runAsUser: 1000, fsGroup: 1001}\n  containers:\n  - {name: c, image: busybox:1.36, command: [cat, /s/data-1], volumeMounts: [{name: s, mountPath: /s}]}\n  volumes: [{name: s, secret: {secretName: sec, defaultMode: 0440}}]\n",
    );
    eventually("fsgroup Succeeded", || {
        let p = pod(&cluster, "fsgroup")?;
        if p["status"]["phase"] == "Succeeded" { Ok(()) } else { Err(format!("{}", p["status"])) }
    });
    assert_eq!(cluster.kubectl_ok("1.33", &["logs", "fsgroup"]), "value-1");

    // Killing the container's process: noticed and restarted.
    let id = container_status(&b)["containerID"].as_str().unwrap_or("").trim_start_matches("containerd://").to_string();
    let pid = task_pid(&data, &id).expect("the container's task");
    rustix::process::kill_process(rustix::process::Pid::from_raw(pid).expect("pid"), rustix::process::Signal::KILL).expect("kill");
    let b = eventually("b restarted after its process was killed", || {
        let p = pod(&cluster, "b")?;
        let cs = container_status(&p);
        let ready = condition(&p, "Ready")["status"] == "True";
        if cs["restartCount"] == 1 && ready { Ok(p) } else { Err(format!("{cs}")) }
    });
    assert_eq!(container_status(&b)["lastState"]["terminated"]["exitCode"], 137);

    // The cluster (and so the kubelet) restarts: the container keeps running, same status.
    // A static pod manifest placed meanwhile is run, and mirrored to the API server.
    let before = container_status(&b).clone();
    drop(cluster);
    let manifest = data.join("node/manifests/static-web.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: static-web, namespace: kube-system}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {name: web, image: busybox:1.36, command: [sleep, '3600']}\n",
    )
    .expect("writing the static pod manifest");
    let cluster = up(&data, kubelet_port);
    let b = running(&cluster, "b");
    let after = container_status(&b);
    assert_eq!(after["containerID"], before["containerID"], "the same container runs");
    assert_eq!(after["restartCount"], before["restartCount"]);
    assert_eq!(after["state"], before["state"]);

    let mirror_name = format!("static-web-{NODE}");
    let mirror = eventually("the static pod's mirror Running", || {
        let p = cluster.kubectl_json("1.33", &["get", "pod", "-n", "kube-system", &mirror_name])?;
        if p["status"]["phase"] == "Running" { Ok(p) } else { Err(format!("{}", p["status"])) }
    });
    let annotations = &mirror["metadata"]["annotations"];
    assert_eq!(annotations["kubernetes.io/config.source"], "file");
    assert_eq!(annotations["kubernetes.io/config.mirror"], annotations["kubernetes.io/config.hash"]);
    assert_eq!(mirror["metadata"]["ownerReferences"][0]["kind"], "Node");
    assert!(mirror["spec"]["volumes"].is_null(), "no service account volume in a mirror pod: {}", mirror["spec"]);
    let static_id = container_status(&mirror)["containerID"].clone();
    // Deleting the mirror pod does not stop the static pod: the kubelet makes a new mirror.
    cluster.kubectl_ok("1.33", &["delete", "pod", "-n", "kube-system", &mirror_name, "--wait=false"]);
    eventually("a new mirror pod for the same container", || {
        let p = cluster.kubectl_json("1.33", &["get", "pod", "-n", "kube-system", &mirror_name])?;
        let same = container_status(&p)["containerID"] == static_id;
        if p["metadata"]["uid"] != mirror["metadata"]["uid"] && same && p["status"]["phase"] == "Running" { Ok(()) } else { Err(format!("{}", p["metadata"])) }
    });
    // Removing the manifest stops the pod and removes the mirror.
    std::fs::remove_file(&manifest).expect("removing the manifest");
    eventually("the mirror pod is gone", || {
        let out = cluster.kubectl("1.33", &["get", "pod", "-n", "kube-system", &mirror_name]);
        if out.status.success() { Err("still there".into()) } else { Ok(()) }
    });

    // Deletion completes within the grace period.
    let started = Instant::now();
    cluster.kubectl_ok("1.33", &["delete", "pod", "b", "--grace-period=5"]);
    let took = started.elapsed();
    eprintln!("kubectl delete pod b (grace 5 s) took {took:?}");
    assert!(took < Duration::from_secs(15), "deleting b took {took:?}");
    let out = cluster.kubectl("1.33", &["get", "pod", "b"]);
    assert!(!out.status.success(), "b is gone");
}
