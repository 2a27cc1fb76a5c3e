//! Placement cases through the whole default profile, over an in-memory cache. Expected
//! nodes follow upstream v1.33's filters, scores and weights (worked out per case); where
//! upstream would pick at random among equal scores, the case lists every such node and
//! runs repeatedly.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{Value, json};

use crate::cache::Cache;
use crate::config::Profile;
use crate::framework::cycle_state::CycleState;
use crate::framework::interface::{Handle, NominatingInfo, PodNominator};
use crate::framework::listers::StaticListers;
use crate::framework::runtime::Framework;
use crate::plugins::registry;
use crate::queue::{Config, Nominator, QueuedPodInfo, SchedulingQueue};
use crate::schedule_one::Scheduler;
use crate::testing::{node, pod};

const ZONE: &str = "topology.kubernetes.io/zone";
const HOST: &str = "kubernetes.io/hostname";

enum Want {
    /// The pod lands on one of these nodes.
    OneOf(&'static [&'static str]),
    /// No node fits; the FailedScheduling message, and the nominated node if preemption
    /// nominated one.
    Fails(&'static str, Option<&'static str>),
}

struct Case {
    name: &'static str,
    nodes: Vec<Node>,
    pods: Vec<Pod>,
    pod: Pod,
    want: Want,
}

fn scheduler(nodes: &[Node], pods: &[Pod], listers: StaticListers) -> (Scheduler, Arc<Framework>) {
    let nominator = Nominator::new();
    let handle = Arc::new(Handle { client: None, listers: Arc::new(listers.clone()), nominator: Some(nominator.clone() as Arc<dyn PodNominator>), events: None });
    let fw = Arc::new(Framework::new(&Profile::default_profile(), &registry(), handle).expect("framework"));
    let profiles = HashMap::from([("default-scheduler".to_string(), fw.clone())]);
    let queue = SchedulingQueue::new(profiles.clone(), nominator, Config::default());
    let cache = Arc::new(Cache::new());
    for n in nodes {
        cache.add_node(Arc::new(n.clone()));
    }
    for p in pods {
        cache.add_pod(Arc::new(p.clone()));
    }
    (Scheduler::new(cache, queue, profiles, 0, None, Arc::new(listers)), fw)
}

fn run_case(c: &Case, listers: StaticListers) {
    let (sched, fw) = scheduler(&c.nodes, &c.pods, listers);
    let runs = match c.want {
        Want::OneOf(list) if list.len() > 1 => 40,
        _ => 3,
    };
    for _ in 0..runs {
        let info = QueuedPodInfo::new(Arc::new(c.pod.clone()), tokio::time::Instant::now());
        let mut state = CycleState::new(sched.cache.snapshot());
        let result = sched.scheduling_cycle(&fw, &mut state, &info);
        match (&c.want, result) {
            (Want::OneOf(nodes), Ok((r, assumed))) => {
                assert!(nodes.contains(&r.suggested_host.as_str()), "{}: placed on {}, want one of {nodes:?}", c.name, r.suggested_host);
                // Undo the assumption so every run sees the same cluster.
                sched.cache.forget_pod(assumed.metadata.uid.as_deref().unwrap_or(""));
            }
            (Want::Fails(message, nominated), Err(f)) => {
                assert_eq!(f.message(), *message, "{}", c.name);
                let got = match &f.nominating {
                    NominatingInfo::Override(n) if !n.is_empty() => Some(n.as_str()),
                    _ => None,
                };
                assert_eq!(got, *nominated, "{}: nominated node", c.name);
            }
            (Want::OneOf(_), Err(f)) => panic!("{}: did not schedule: {}", c.name, f.message()),
            (Want::Fails(..), Ok((r, _))) => panic!("{}: scheduled on {} but should fail", c.name, r.suggested_host),
        }
    }
}

fn term(labels: Value, key: &str) -> Value {
    json!({"labelSelector": {"matchLabels": labels}, "topologyKey": key})
}

fn cases() -> Vec<Case> {
    let two = || vec![node("n1").build(), node("n2").build()];
    let three = || vec![node("n1").build(), node("n2").build(), node("n3").build()];
    let zones = || vec![node("n1").zone("a").build(), node("n2").zone("b").build(), node("n3").zone("b").build()];
    vec![
        Case {
            name: "untolerated NoSchedule taint excludes the node",
            nodes: vec![node("n1").taint("dedicated", "gpu", "NoSchedule").build(), node("n2").build()],
            pods: vec![],
            pod: pod("p").build(),
            want: Want::OneOf(&["n2"]),
        },
        Case {
            name: "tolerated taint beats an untolerated PreferNoSchedule taint",
            nodes: vec![node("n1").taint("dedicated", "gpu", "NoSchedule").build(), node("n2").taint("spot", "true", "PreferNoSchedule").build()],
            pods: vec![],
            pod: pod("p").toleration("dedicated", "Equal", "gpu", "NoSchedule").build(),
            want: Want::OneOf(&["n1"]),
        },
        Case {
            name: "PreferNoSchedule taint is avoided",
            nodes: vec![node("n1").taint("spot", "true", "PreferNoSchedule").build(), node("n2").build()],
            pods: vec![],
            pod: pod("p").build(),
            want: Want::OneOf(&["n2"]),
        },
        Case {
            name: "tolerating everything lets the pod go anywhere",
            nodes: vec![node("n1").taint("a", "1", "NoSchedule").build(), node("n2").taint("b", "2", "NoExecute").build()],
            pods: vec![],
            pod: pod("p").toleration("", "Exists", "", "").build(),
            want: Want::OneOf(&["n1", "n2"]),
        },
        Case {
            name: "nodeSelector",
            nodes: vec![node("n1").label("disk", "ssd").build(), node("n2").label("disk", "hdd").build(), node("n3").build()],
            pods: vec![],
            pod: pod("p").node_selector("disk", "ssd").build(),
            want: Want::OneOf(&["n1"]),
        },
        Case {
            name: "required node affinity In",
            nodes: zones(),
            pods: vec![],
            pod: pod("p").affinity("nodeAffinity", json!({"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": ZONE, "operator": "In", "values": ["b"]}]}]}})).build(),
            want: Want::OneOf(&["n2", "n3"]),
        },
        Case {
            name: "required node affinity NotIn",
            nodes: zones(),
            pods: vec![],
            pod: pod("p").affinity("nodeAffinity", json!({"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": ZONE, "operator": "NotIn", "values": ["b"]}]}]}})).build(),
            want: Want::OneOf(&["n1"]),
        },
        Case {
            name: "matchFields pins the node by name",
            nodes: three(),
            pods: vec![],
            pod: pod("p").affinity("nodeAffinity", json!({"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n3"]}]}]}})).build(),
            want: Want::OneOf(&["n3"]),
        },
        Case {
            name: "preferred node affinity",
            nodes: zones(),
            pods: vec![],
            pod: pod("p").affinity("nodeAffinity", json!({"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "preference": {"matchExpressions": [{"key": ZONE, "operator": "In", "values": ["a"]}]}}]})).build(),
            want: Want::OneOf(&["n1"]),
        },
        Case {
            name: "resource requests must fit",
            nodes: two(),
            pods: vec![pod("e").node("n1").req("2", "").build()],
            pod: pod("p").req("3", "").build(),
            want: Want::OneOf(&["n2"]),
        },
        Case {
            name: "least allocated node preferred",
            nodes: two(),
            pods: vec![pod("e").node("n1").req("2", "").build()],
            pod: pod("p").req("1", "1Gi").build(),
            want: Want::OneOf(&["n2"]),
        },
        Case {
            name: "init container requests count",
            nodes: two(),
            pods: vec![pod("e").node("n1").req("2", "").build()],
            pod: pod("p").req("100m", "").spec("initContainers", json!([{"name": "i", "image": "busybox", "resources": {"requests": {"cpu": "3"}}}])).build(),
            want: Want::OneOf(&["n2"]),
        },
        Case {
            name: "extended resources",
            nodes: vec![node("n1").build(), node("n2").resource("example.com/gpu", "2").build()],
            pods: vec![],
            pod: pod("p").req_resource("example.com/gpu", "1").build(),
            want: Want::OneOf(&["n2"]),
        },
        Case {
            name: "too many pods",
            nodes: vec![node("n1").allocatable("4", "32Gi", "1").build(), node("n2").build()],
            pods: vec![pod("e").node("n1").build()],
            pod: pod("p").build(),
            want: Want::OneOf(&["n2"]),
        },
        Case {
            name: "host port in use",
            nodes: two(),
            pods: vec![pod("e").node("n1").host_port(80).build()],
            pod: pod("p").host_port(80).build(),
            want: Want::OneOf(&["n2"]),
        },
        Case {
            name: "unschedulable node",
            nodes: vec![node("n1").unschedulable().build(), node("n2").build()],
            pods: vec![],
            pod: pod("p").build(),
            want: Want::OneOf(&["n2"]),
        },
        Case {
            name: "unschedulable node with toleration",
            nodes: vec![node("n1").unschedulable().build(), node("n2").build()],
            pods: vec![],
            pod: pod("p").toleration("node.kubernetes.io/unschedulable", "Exists", "", "NoSchedule").build(),
            want: Want::OneOf(&["n1", "n2"]),
        },
        Case {
            name: "topology spread DoNotSchedule over zones",
            nodes: vec![node("n1").zone("a").build(), node("n2").zone("a").build(), node("n3").zone("b").build(), node("n4").zone("b").build()],
            pods: vec![pod("w1").label("app", "web").node("n1").build(), pod("w2").label("app", "web").node("n2").build()],
            pod: pod("p").label("app", "web").spread(1, ZONE, "DoNotSchedule", json!({"app": "web"})).build(),
            want: Want::OneOf(&["n3", "n4"]),
        },
        Case {
            name: "topology spread ScheduleAnyway over hosts",
            nodes: three(),
            pods: vec![pod("w1").label("app", "web").node("n1").build(), pod("w2").label("app", "web").node("n1").build(), pod("w3").label("app", "web").node("n2").build()],
            pod: pod("p").label("app", "web").spread(1, HOST, "ScheduleAnyway", json!({"app": "web"})).build(),
            want: Want::OneOf(&["n3"]),
        },
        Case {
            name: "required pod affinity follows the database's zone",
            nodes: zones(),
            pods: vec![pod("db").label("app", "db").node("n2").build()],
            pod: pod("p").affinity("podAffinity", json!({"requiredDuringSchedulingIgnoredDuringExecution": [term(json!({"app": "db"}), ZONE)]})).build(),
            // n2 and n3 share the zone; n3 is emptier (LeastAllocated).
            want: Want::OneOf(&["n3"]),
        },
        Case {
            name: "required pod anti-affinity per host",
            nodes: three(),
            pods: vec![pod("w1").label("app", "web").node("n1").build(), pod("w2").label("app", "web").node("n2").build()],
            pod: pod("p").label("app", "web").affinity("podAntiAffinity", json!({"requiredDuringSchedulingIgnoredDuringExecution": [term(json!({"app": "web"}), HOST)]})).build(),
            want: Want::OneOf(&["n3"]),
        },
        Case {
            name: "existing pod's anti-affinity repels the incoming pod",
            nodes: two(),
            pods: vec![pod("x").node("n1").affinity("podAntiAffinity", json!({"requiredDuringSchedulingIgnoredDuringExecution": [term(json!({"app": "web"}), HOST)]})).build()],
            pod: pod("p").label("app", "web").build(),
            want: Want::OneOf(&["n2"]),
        },
        Case {
            name: "preferred pod affinity",
            nodes: two(),
            pods: vec![pod("cache").label("app", "cache").node("n1").build()],
            pod: pod("p").affinity("podAffinity", json!({"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": term(json!({"app": "cache"}), HOST)}]})).build(),
            want: Want::OneOf(&["n1"]),
        },
        Case {
            name: "preferred pod anti-affinity",
            nodes: two(),
            pods: vec![pod("w").label("app", "web").node("n1").req("", "").build()],
            pod: pod("p").label("app", "web").affinity("podAntiAffinity", json!({"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": term(json!({"app": "web"}), HOST)}]})).build(),
            want: Want::OneOf(&["n2"]),
        },
        Case {
            name: "fails with upstream's message when nothing fits",
            nodes: vec![node("n1").taint("node-role.kubernetes.io/control-plane", "", "NoSchedule").build(), node("n2").allocatable("1", "4Gi", "110").build(), node("n3").allocatable("1", "4Gi", "110").build()],
            pods: vec![],
            pod: pod("p").req("2", "").build(),
            want: Want::Fails(
                "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.",
                None,
            ),
        },
        Case {
            name: "node affinity mismatch everywhere is not helped by preemption",
            nodes: two(),
            pods: vec![],
            pod: pod("p").node_selector("disk", "ssd").build(),
            want: Want::Fails("0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.", None),
        },
        Case {
            name: "preemption nominates the node with the cheapest victims",
            nodes: vec![node("n1").allocatable("2", "8Gi", "110").build(), node("n2").allocatable("2", "8Gi", "110").build()],
            pods: vec![pod("important").node("n1").req("2", "").priority(1000).build(), pod("batch").node("n2").req("2", "").priority(1).build()],
            pod: pod("p").req("1", "").priority(500).build(),
            want: Want::Fails("0/2 nodes are available: 2 Insufficient cpu.", Some("n2")),
        },
    ]
}

#[test]
fn placement_table() {
    let cases = cases();
    assert!(cases.len() >= 20);
    for c in &cases {
        run_case(c, StaticListers::default());
    }
}

fn spreading_replica_set() -> ReplicaSet {
    serde_json::from_value(json!({"metadata": {"name": "web-abc", "namespace": "default"}, "spec": {"selector": {"matchLabels": {"app": "web"}}}})).expect("rs")
}

fn spreading_case() -> Case {
    Case {
        name: "replicas spread over hosts by default",
        nodes: vec![node("n1").build(), node("n2").build(), node("n3").build()],
        pods: vec![pod("w1").label("app", "web").owner("ReplicaSet", "web-abc").node("n1").build(), pod("w2").label("app", "web").owner("ReplicaSet", "web-abc").node("n1").build()],
        pod: pod("p").label("app", "web").owner("ReplicaSet", "web-abc").build(),
        want: Want::OneOf(&["n2", "n3"]),
    }
}

#[test]
fn system_default_spreading_follows_the_replica_set() {
    let listers = StaticListers { replica_sets: vec![Arc::new(spreading_replica_set())], ..Default::default() };
    run_case(&spreading_case(), listers);
}

/// The table as JSON, for conformance/differential/placement.py, which runs every case
/// against upstream's kube-scheduler: `scheduler/testdata/placement-cases.json` must be
/// what [`cases`] says (`IRONKUBE_UPDATE_GOLDEN=1` rewrites it).
#[test]
fn the_table_upstream_is_checked_against_is_current() {
    let mut table: Vec<Value> = Vec::new();
    let with_rs = (spreading_case(), vec![spreading_replica_set()]);
    for (c, replica_sets) in cases().into_iter().map(|c| (c, Vec::new())).chain([with_rs]) {
        let want = match c.want {
            Want::OneOf(nodes) => json!({"oneOf": nodes}),
            Want::Fails(message, nominated) => json!({"fails": message, "nominated": nominated}),
        };
        table.push(json!({"name": c.name, "nodes": c.nodes, "pods": c.pods, "replicaSets": replica_sets, "pod": c.pod, "want": want}));
    }
    let text = serde_json::to_string_pretty(&table).expect("json") + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/placement-cases.json");
    if std::env::var_os("IRONKUBE_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("testdata dir");
        std::fs::write(&path, &text).expect("writing the table");
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(stored == text, "{} is stale: rerun with IRONKUBE_UPDATE_GOLDEN=1", path.display());
}

#[test]
fn no_nodes() {
    let c = Case { name: "no nodes", nodes: vec![], pods: vec![], pod: pod("p").build(), want: Want::Fails("no nodes available to schedule pods", None) };
    run_case(&c, StaticListers::default());
}

#[test]
fn scheduled_pods_are_assumed_and_counted() {
    let nodes = vec![node("n1").allocatable("2", "8Gi", "110").build(), node("n2").allocatable("2", "8Gi", "110").build()];
    let (sched, fw) = scheduler(&nodes, &[], StaticListers::default());
    let mut placed = Vec::new();
    for i in 0..4 {
        let p = pod(&format!("p{i}")).req("1", "").build();
        let info = QueuedPodInfo::new(Arc::new(p), tokio::time::Instant::now());
        let mut state = CycleState::new(sched.cache.snapshot());
        let (r, assumed) = sched.scheduling_cycle(&fw, &mut state, &info).expect("fits");
        assert!(sched.cache.is_assumed(assumed.metadata.uid.as_deref().unwrap_or("")));
        placed.push(r.suggested_host);
    }
    placed.sort();
    assert_eq!(placed, vec!["n1", "n1", "n2", "n2"]);
    let info = QueuedPodInfo::new(Arc::new(pod("p5").req("1", "").build()), tokio::time::Instant::now());
    let mut state = CycleState::new(sched.cache.snapshot());
    let failure = sched.scheduling_cycle(&fw, &mut state, &info).expect_err("full");
    assert!(failure.message().starts_with("0/2 nodes are available: 2 Insufficient cpu."), "{}", failure.message());
}
