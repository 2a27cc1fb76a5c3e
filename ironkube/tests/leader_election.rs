//! Two controller-manager processes (`ironkube controller-manager`, leader election on a
//! Lease as kube-controller-manager does): only the Lease holder runs its controllers; when
//! it is killed the other one takes the Lease within the lease duration (plus one retry
//! period to notice) and acts from then on.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Ironkube, command_with_parent_death_signal, eventually};

const KUBECTL: &str = "1.33";
const LEASE: &str = "ironkube-test-controller-manager";
const LEASE_DURATION: Duration = Duration::from_secs(6);
const RETRY_PERIOD: Duration = Duration::from_secs(1);

/// A standalone controller manager running only the ReplicaSet controller; killed on drop.
struct Candidate {
    child: Option<Child>,
    log: PathBuf,
}

impl Candidate {
    fn start(kubeconfig: &Path, dir: &Path, name: &str) -> Self {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("creating the controller manager's log");
        let child = command_with_parent_death_signal(Path::new(env!("CARGO_BIN_EXE_ironkube")))
            .arg("controller-manager")
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg("--controllers=replicaset")
            .arg(format!("--leader-elect-resource-name={LEASE}"))
            .arg(format!("--leader-elect-lease-duration={}s", LEASE_DURATION.as_secs()))
            .arg("--leader-elect-renew-deadline=4s")
            .arg(format!("--leader-elect-retry-period={}s", RETRY_PERIOD.as_secs()))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawning ironkube controller-manager");
        Candidate { child: Some(child), log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The identity it campaigns with, from its "attempting to acquire" line.
    fn identity(&self) -> Result<String, String> {
        let log = self.log();
        let line = log
            .lines()
            .find(|l| l.contains("attempting to acquire leader lease"))
            .ok_or_else(|| format!("no campaign line yet in {}:\n{log}", self.log.display()))?;
        let start = line.find("identity=").ok_or_else(|| format!("no identity in {line:?}"))? + "identity=".len();
        Ok(line[start..].split_whitespace().next().unwrap_or_default().to_string())
    }

    fn started_controllers(&self) -> bool {
        self.log().contains("starting controllers")
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Candidate {
    fn drop(&mut self) {
        self.kill();
    }
}

fn holder(cluster: &Ironkube) -> Result<String, String> {
    let lease = cluster.kubectl_json(KUBECTL, &["get", "lease", LEASE, "-n", "kube-system"])?;
    lease["spec"]["holderIdentity"].as_str().map(str::to_string).ok_or_else(|| format!("no holder in {lease}"))
}

fn owned_pods(cluster: &Ironkube, rs: &str) -> Result<usize, String> {
    let list: Value = cluster.kubectl_json(KUBECTL, &["get", "pods", "-n", "default", "-l", &format!("app={rs}")])?;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    Ok(items
        .iter()
        .filter(|p| p["metadata"]["ownerReferences"].as_array().is_some_and(|o| o.iter().any(|r| r["kind"] == "ReplicaSet" && r["name"] == rs)))
        .count())
}

fn replica_set(name: &str, replicas: u32) -> String {
    format!(
        r#"{{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{{"name":"{name}","namespace":"default"}},
"spec":{{"replicas":{replicas},"selector":{{"matchLabels":{{"app":"{name}"}}}},
"template":{{"metadata":{{"labels":{{"app":"{name}"}}}},"spec":{{"containers":[{{"name":"c","image":"busybox:1.36"}}]}}}}}}}}"#
    )
}

#[test]
fn only_the_lease_holder_acts_and_a_killed_leader_hands_over_within_the_lease_duration() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The cluster's own controller manager runs everything but the ReplicaSet controller,
    // which only the two candidates below run.
    let cluster = Ironkube::up_with(&dir.path().join("cluster"), &["--controllers=*,-replicaset"]);

    let mut first = Candidate::start(&cluster.kubeconfig, dir.path(), "first");
    let first_id = eventually("the first candidate leads", || {
        let id = first.identity()?;
        if holder(&cluster)? == id && first.started_controllers() { Ok(id) } else { Err(first.log()) }
    });
    let second = Candidate::start(&cluster.kubeconfig, dir.path(), "second");
    let second_id = eventually("the second candidate campaigns", || second.identity());
    assert_ne!(first_id, second_id);

    // Only the leader's ReplicaSet controller acts.
    let manifest = dir.path().join("rs.json");
    std::fs::write(&manifest, replica_set("web", 2)).expect("writing the manifest");
    cluster.kubectl_ok(KUBECTL, &["apply", "-f", &manifest.display().to_string()]);
    eventually("2 pods of the ReplicaSet", || match owned_pods(&cluster, "web")? {
        2 => Ok(()),
        n => Err(format!("{n} pods")),
    });
    // Well past a few retry periods, the standby still only campaigns.
    std::thread::sleep(RETRY_PERIOD * 3);
    assert!(!second.started_controllers(), "the standby started its controllers:\n{}", second.log());
    assert_eq!(holder(&cluster).as_deref(), Ok(first_id.as_str()));

    // Kill the leader: the standby takes over within the lease duration, noticed within a
    // retry period.
    first.kill();
    let killed = Instant::now();
    eventually("the second candidate takes the lease", || {
        let h = holder(&cluster)?;
        if h == second_id && second.started_controllers() { Ok(()) } else { Err(format!("holder {h}")) }
    });
    let handover = killed.elapsed();
    eprintln!("leader killed -> lease taken over and controllers started after {handover:?}");
    assert!(
        handover <= LEASE_DURATION + RETRY_PERIOD * 2,
        "handover took {handover:?}, more than the lease duration {LEASE_DURATION:?} plus retries"
    );
    let lease = cluster.kubectl_json(KUBECTL, &["get", "lease", LEASE, "-n", "kube-system"]).expect("the lease");
    assert_eq!(lease["spec"]["leaseTransitions"], 1, "{lease}");

    // The new leader acts.
    cluster.kubectl_ok(KUBECTL, &["scale", "replicaset", "web", "--replicas=4"]);
    eventually("4 pods of the ReplicaSet", || match owned_pods(&cluster, "web")? {
        4 => Ok(()),
        n => Err(format!("{n} pods")),
    });
    drop(second);
    cluster.stop();
}
