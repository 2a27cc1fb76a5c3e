//! The API server benchmarks: watch fan-out and the cost of stored objects.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ironkube_testkit::Client;

/// Reads a plain-HTTP URL (etcd's metrics) without an HTTP client dependency.
async fn http_get(url: &str) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").context("metrics URL must be http://")?;
    let (hostport, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let mut tcp = tokio::net::TcpStream::connect(hostport).await?;
    tcp.write_all(format!("GET {path} HTTP/1.0\r\nHost: {hostport}\r\n\r\n").as_bytes()).await?;
    let mut out = String::new();
    tcp.read_to_string(&mut out).await?;
    Ok(out)
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines().filter(|l| l.starts_with(name) && !l.starts_with('#')).filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok()).sum()
}

fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).context("VmRSS value")?.parse()?)
}

pub async fn ensure_namespace(client: &Client, ns: &str) -> Result<()> {
    let body = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
    let resp = client.request("POST", "/api/v1/namespaces", None, body.to_string().as_bytes()).await?;
    if resp.status != 201 && resp.status != 409 {
        bail!("creating namespace {ns}: {} {}", resp.status, String::from_utf8_lossy(&resp.body));
    }
    Ok(())
}

pub async fn watchers(kubeconfig: PathBuf, etcd_metrics: String, count: usize, ns: String) -> Result<()> {
    let client = Client::from_kubeconfig(&kubeconfig)?;
    ensure_namespace(&client, &ns).await?;
    let list = client.get(&format!("/api/v1/namespaces/{ns}/pods")).await?.json()?;
    let rv = list["metadata"]["resourceVersion"].as_str().unwrap_or("0").to_string();
    let before = http_get(&etcd_metrics).await?;
    let etcd_watchers_before = metric(&before, "etcd_debugging_mvcc_watcher_total");
    let etcd_streams_before = metric(&before, "etcd_debugging_mvcc_watch_stream_total");
    eprintln!("opening {count} pod watches from resourceVersion {rv}");
    let started = Instant::now();
    let mut watches = Vec::with_capacity(count);
    for i in 0..count {
        let w = client.watch(&format!("/api/v1/namespaces/{ns}/pods?watch=true&resourceVersion={rv}&timeoutSeconds=120")).await?;
        if w.status != 200 {
            bail!("watch {i} answered {}", w.status);
        }
        watches.push(w);
        if (i + 1) % 200 == 0 {
            eprintln!("  {} watches open", i + 1);
        }
    }
    let opened = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = http_get(&etcd_metrics).await?;
    let etcd_watchers_after = metric(&after, "etcd_debugging_mvcc_watcher_total");
    let etcd_streams_after = metric(&after, "etcd_debugging_mvcc_watch_stream_total");
    eprintln!("creating one pod; every watcher should see it");
    let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fanout", "namespace": ns},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}});
    let sent = Instant::now();
    let resp = client.request("POST", &format!("/api/v1/namespaces/{ns}/pods"), None, pod.to_string().as_bytes()).await?;
    if resp.status != 201 {
        bail!("creating the pod: {} {}", resp.status, String::from_utf8_lossy(&resp.body));
    }
    let mut tasks = Vec::new();
    for mut w in watches {
        tasks.push(tokio::spawn(async move {
            match tokio::time::timeout(Duration::from_secs(30), w.next()).await {
                Ok(Ok(Some(ev))) if ev["type"] == "ADDED" => Some(sent.elapsed()),
                _ => None,
            }
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        if let Ok(Some(l)) = t.await {
            latencies.push(l);
        }
    }
    latencies.sort();
    let pct = |p: f64| latencies.get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1))).copied().unwrap_or_default();
    let _ = client.request("DELETE", &format!("/api/v1/namespaces/{ns}/pods/fanout"), None, &[]).await;
    println!("watchers opened: {count} in {:.2}s", opened.as_secs_f64());
    println!("etcd watchers (etcd_debugging_mvcc_watcher_total): before {etcd_watchers_before}, after {etcd_watchers_after}, added {}", etcd_watchers_after - etcd_watchers_before);
    println!("etcd watch streams (etcd_debugging_mvcc_watch_stream_total): before {etcd_streams_before}, after {etcd_streams_after}");
    println!("watchers that saw the ADDED event: {}/{count}", latencies.len());
    println!("fan-out latency: p50 {:?}, p99 {:?}, max {:?}", pct(0.5), pct(0.99), latencies.last().copied().unwrap_or_default());
    Ok(())
}

pub async fn configmaps(kubeconfig: PathBuf, count: usize, pid: u32, ns: String, parallel: usize) -> Result<()> {
    let client = Client::from_kubeconfig(&kubeconfig)?;
    ensure_namespace(&client, &ns).await?;
    let rss_before = rss_kib(pid)?;
    eprintln!("RSS before: {rss_before} KiB; creating {count} ConfigMaps ({parallel} in parallel)");
    let started = Instant::now();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..parallel {
        let client = client.clone();
        let next = next.clone();
        let ns = ns.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    return Ok::<(), anyhow::Error>(());
                }
                let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i:05}"), "namespace": ns, "labels": {"bench": "configmaps"}},
                    "data": {"key": format!("value-{i}"), "payload": "x".repeat(200)}});
                let resp = client.request("POST", &format!("/api/v1/namespaces/{ns}/configmaps"), None, cm.to_string().as_bytes()).await?;
                if resp.status != 201 && resp.status != 409 {
                    bail!("creating cm-{i}: {} {}", resp.status, String::from_utf8_lossy(&resp.body));
                }
                if (i + 1) % 1000 == 0 {
                    eprintln!("  {} created", i + 1);
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let created = started.elapsed();
    let rss_stored = rss_kib(pid)?;
    let listed = client.get(&format!("/api/v1/namespaces/{ns}/configmaps?resourceVersion=0")).await?.json()?;
    let n = listed["items"].as_array().map(Vec::len).unwrap_or(0);
    let rss_cached = rss_kib(pid)?;
    println!("configmaps created: {count} in {:.1}s ({:.0}/s)", created.as_secs_f64(), count as f64 / created.as_secs_f64());
    println!("listed from the watch cache: {n}");
    println!("API server RSS: before {rss_before} KiB, after storing {rss_stored} KiB, after a cached list {rss_cached} KiB");
    Ok(())
}
