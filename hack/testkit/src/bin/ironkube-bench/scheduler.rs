//! The scheduler benchmark: N Ready nodes and M pending pods are stored first, with no
//! scheduler running; then the scheduler under test starts and a watch counts the pods as
//! they get a `spec.nodeName`. Throughput is measured from the first binding to the last (the
//! scheduler's start-up and informer sync are reported apart), so two schedulers can be
//! compared on the same API server and the same objects.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ironkube_testkit::Client;
use serde_json::{Value, json};

use crate::apiserver::ensure_namespace;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    kubeconfig: PathBuf,
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    #[arg(long, default_value_t = 10000)]
    pods: usize,
    #[arg(long, default_value = "bench-sched")]
    namespace: String,
    /// Requests in flight while storing the nodes and pods.
    #[arg(long, default_value_t = 16)]
    parallel: usize,
    /// Where the scheduler's stdout and stderr go.
    #[arg(long)]
    log: PathBuf,
    /// Give up after this many seconds of scheduling.
    #[arg(long, default_value_t = 1200)]
    timeout: u64,
    /// The scheduler's command line.
    #[arg(last = true, required = true)]
    scheduler: Vec<String>,
}

fn node(i: usize) -> (String, Value, Value) {
    let name = format!("bench-node-{i:04}");
    // Ten zones, so PodTopologySpread's default constraints have something to spread over.
    let zone = format!("zone-{}", i % 10);
    let resources = json!({"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "100Gi"});
    let object = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {
        "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
        "topology.kubernetes.io/zone": zone}}});
    let status = json!({"status": {"capacity": resources, "allocatable": resources,
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "bench node",
            "lastHeartbeatTime": now(), "lastTransitionTime": now()}],
        "nodeInfo": {"kubeletVersion": "v1.33.13", "operatingSystem": "linux", "architecture": "amd64",
            "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "", "osImage": "",
            "containerRuntimeVersion": "", "kubeProxyVersion": ""}}});
    (name, object, status)
}

fn pod(ns: &str, i: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("bench-pod-{i:05}"), "namespace": ns, "labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}}}]}})
}

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Runs `count` requests made by `make(i)`, `parallel` at a time; fails on any status but
/// the expected ones.
async fn in_parallel<F>(client: &Client, what: &str, count: usize, parallel: usize, make: F) -> Result<()>
where
    F: Fn(usize) -> Vec<(&'static str, String, Option<&'static str>, Value)> + Send + Sync + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let make = Arc::new(make);
    let mut tasks = Vec::new();
    for _ in 0..parallel {
        let (client, next, make) = (client.clone(), next.clone(), make.clone());
        let what = what.to_string();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<(), anyhow::Error>(());
                }
                for (method, path, content_type, body) in make(i) {
                    let resp = client.request(method, &path, content_type, body.to_string().as_bytes()).await?;
                    if !(200..300).contains(&resp.status) && resp.status != 409 {
                        bail!("{method} {path}: {} {}", resp.status, String::from_utf8_lossy(&resp.body));
                    }
                }
                if (i + 1) % 1000 == 0 {
                    eprintln!("  {} {what} stored", i + 1);
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

pub async fn run(args: Args) -> Result<()> {
    let client = Client::from_kubeconfig(&args.kubeconfig)?;
    let ns = args.namespace.clone();
    ensure_namespace(&client, &ns).await?;
    // Upstream's ServiceAccount admission wants the default ServiceAccount, and no
    // controller manager runs here.
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}});
    let resp = client.request("POST", &format!("/api/v1/namespaces/{ns}/serviceaccounts"), None, sa.to_string().as_bytes()).await?;
    if resp.status != 201 && resp.status != 409 {
        bail!("creating the default ServiceAccount: {} {}", resp.status, String::from_utf8_lossy(&resp.body));
    }

    eprintln!("storing {} Ready nodes", args.nodes);
    let started = Instant::now();
    in_parallel(&client, "nodes", args.nodes, args.parallel, |i| {
        let (name, object, status) = node(i);
        vec![
            ("POST", "/api/v1/nodes".to_string(), None, object),
            ("PATCH", format!("/api/v1/nodes/{name}/status"), Some("application/merge-patch+json"), status),
            // Upstream's TaintNodesByCondition admission gives a new Node the not-ready
            // NoSchedule taint, which only a node lifecycle controller would lift.
            ("PATCH", format!("/api/v1/nodes/{name}"), Some("application/merge-patch+json"), json!({"spec": {"taints": null}})),
        ]
    })
    .await?;
    eprintln!("  nodes stored in {:.1}s", started.elapsed().as_secs_f64());

    eprintln!("storing {} pending pods", args.pods);
    let started = Instant::now();
    let pod_ns = ns.clone();
    in_parallel(&client, "pods", args.pods, args.parallel, move |i| {
        vec![("POST", format!("/api/v1/namespaces/{pod_ns}/pods"), None, pod(&pod_ns, i))]
    })
    .await?;
    eprintln!("  pods stored in {:.1}s", started.elapsed().as_secs_f64());

    let list = client.get(&format!("/api/v1/namespaces/{ns}/pods?limit=1")).await?.json()?;
    let rv = list["metadata"]["resourceVersion"].as_str().context("the pod list has no resourceVersion")?.to_string();
    let mut watch = client.watch(&format!("/api/v1/namespaces/{ns}/pods?watch=true&resourceVersion={rv}&timeoutSeconds={}", args.timeout + 60)).await?;
    if watch.status != 200 {
        bail!("watching pods answered {}", watch.status);
    }

    let log = std::fs::File::create(&args.log).with_context(|| format!("creating {}", args.log.display()))?;
    let (program, rest) = args.scheduler.split_first().context("no scheduler command")?;
    eprintln!("starting the scheduler: {}", args.scheduler.join(" "));
    let spawned = Instant::now();
    let mut child = tokio::process::Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {program}"))?;

    let mut bound = HashSet::new();
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    let mut first: Option<Instant> = None;
    let deadline = spawned + Duration::from_secs(args.timeout);
    while bound.len() < args.pods {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let event = tokio::select! {
            e = tokio::time::timeout(remaining, watch.next()) => e,
            status = child.wait() => bail!("the scheduler exited ({:?}) after binding {} pods; see {}", status.ok(), bound.len(), args.log.display()),
        };
        let event = match event {
            Err(_) => bail!("only {} of {} pods bound within {}s", bound.len(), args.pods, args.timeout),
            Ok(Ok(Some(event))) => event,
            Ok(Ok(None)) => bail!("the pod watch ended after {} bound pods", bound.len()),
            Ok(Err(e)) => return Err(e.context("reading the pod watch")),
        };
        let object = &event["object"];
        let (Some(name), Some(node)) = (object["metadata"]["name"].as_str(), object["spec"]["nodeName"].as_str()) else {
            continue;
        };
        if !node.is_empty() && bound.insert(name.to_string()) {
            first.get_or_insert_with(Instant::now);
            *per_node.entry(node.to_string()).or_default() += 1;
            if bound.len() % 1000 == 0 {
                eprintln!("  {} pods bound after {:.1}s", bound.len(), spawned.elapsed().as_secs_f64());
            }
        }
    }
    let last = Instant::now();
    let _ = child.start_kill();
    let first = first.unwrap_or(last);
    let binding = last.duration_since(first).as_secs_f64().max(f64::EPSILON);
    let min = per_node.values().min().copied().unwrap_or(0);
    let max = per_node.values().max().copied().unwrap_or(0);
    println!("nodes: {}, pods: {}", args.nodes, args.pods);
    println!("first binding {:.2}s after the scheduler started", first.duration_since(spawned).as_secs_f64());
    println!("all {} pods bound {:.2}s after the scheduler started", args.pods, last.duration_since(spawned).as_secs_f64());
    println!("throughput, first to last binding: {:.1} pods/s", (args.pods.saturating_sub(1)) as f64 / binding);
    println!("pods per node: min {min}, max {max}, nodes used {}", per_node.len());
    Ok(())
}
