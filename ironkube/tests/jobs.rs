//! The Job controller inside `ironkube up`, on simulated nodes whose pods exit with the
//! code they ask for: a job of 3 completions (2 at a time) succeeds with upstream's
//! SuccessCriteriaMet and Complete conditions, every pod counted and released from the
//! tracking finalizer; an Indexed job completes indexes 0-2; a job whose pods fail is
//! Failed with BackoffLimitExceeded after backoffLimit+1 failures; deleting a job
//! removes its pods. A podFailurePolicy FailJob rule fails a job on its first pod's exit
//! code; backoffLimitPerIndex retries each index once and then fails it; a successPolicy
//! completes an Indexed job after index 0; orphaned pods are adopted again and released
//! when they stop matching; a finished job with ttlSecondsAfterFinished disappears; evicted
//! pods (DisruptionTarget) matching an Ignore rule do not count towards backoffLimit.

mod support;

use serde_json::Value;
use support::{Ironkube, eventually};

const KUBECTL: &str = "1.33";

fn manifest(name: &str, exit_code: i32, extra_spec: &str) -> String {
    format!(
        r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
  namespace: jobs
spec:
{extra_spec}
  template:
    metadata:
      annotations:
        ironkube.dev/simulated-exit-code: "{exit_code}"
    spec:
      restartPolicy: Never
      containers:
      - name: work
        image: busybox:1.36
        command: [sh, -c, "exit {exit_code}"]
"#
    )
}

fn job(cluster: &Ironkube, name: &str) -> Result<Value, String> {
    cluster.kubectl_json(KUBECTL, &["get", "job", name, "-n", "jobs"])
}

fn condition_types(job: &Value) -> Vec<String> {
    job["status"]["conditions"].as_array().into_iter().flatten().filter(|c| c["status"] == "True").filter_map(|c| c["type"].as_str().map(str::to_string)).collect()
}

fn pods_of(cluster: &Ironkube, name: &str) -> Result<Vec<Value>, String> {
    let list = cluster.kubectl_json(KUBECTL, &["get", "pods", "-n", "jobs", "-l", &format!("batch.kubernetes.io/job-name={name}")])?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

fn apply(cluster: &Ironkube, dir: &std::path::Path, name: &str, text: &str) {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).expect("manifest");
    cluster.kubectl_ok(KUBECTL, &["apply", "-f", path.to_str().expect("path")]);
}

#[test]
fn completions_indexes_backoff_limit_and_deletion() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = Ironkube::up_with(&tmp.path().join("data"), &["--simulated-nodes", "2"]);
    cluster.kubectl_ok(KUBECTL, &["create", "namespace", "jobs"]);

    apply(&cluster, tmp.path(), "three", &manifest("three", 0, "  completions: 3\n  parallelism: 2"));
    cluster.kubectl_ok(KUBECTL, &["wait", "-n", "jobs", "--for=condition=complete", "job/three", "--timeout=120s"]);
    let done = job(&cluster, "three").expect("job");
    let s = &done["status"];
    assert_eq!(s["succeeded"], 3, "{s}");
    assert_eq!(s["active"].as_i64().unwrap_or(0), 0, "{s}");
    assert_eq!(s["ready"], 0, "{s}");
    assert_eq!(s["terminating"], 0, "{s}");
    assert_eq!(s["uncountedTerminatedPods"], serde_json::json!({}), "{s}");
    assert!(s["startTime"].is_string() && s["completionTime"].is_string(), "{s}");
    assert_eq!(condition_types(&done), ["SuccessCriteriaMet", "Complete"], "{s}");
    let complete = s["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == "Complete")).expect("Complete");
    assert_eq!(complete["reason"], "CompletionsReached");
    assert_eq!(complete["message"], "Reached expected number of succeeded pods");
    let pods = pods_of(&cluster, "three").expect("pods");
    assert_eq!(pods.len(), 3, "{pods:?}");
    for p in &pods {
        assert_eq!(p["status"]["phase"], "Succeeded");
        assert!(p["metadata"]["finalizers"].as_array().is_none_or(|f| f.is_empty()), "{p}");
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "Job");
    }

    apply(&cluster, tmp.path(), "indexed", &manifest("indexed", 0, "  completions: 3\n  parallelism: 3\n  completionMode: Indexed"));
    cluster.kubectl_ok(KUBECTL, &["wait", "-n", "jobs", "--for=condition=complete", "job/indexed", "--timeout=120s"]);
    let indexed = job(&cluster, "indexed").expect("job");
    assert_eq!(indexed["status"]["completedIndexes"], "0-2", "{}", indexed["status"]);
    assert_eq!(indexed["status"]["succeeded"], 3);
    let mut names: Vec<String> = pods_of(&cluster, "indexed").expect("pods").iter().filter_map(|p| p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"].as_str().map(str::to_string)).collect();
    names.sort();
    assert_eq!(names, ["0", "1", "2"]);

    apply(&cluster, tmp.path(), "fails", &manifest("fails", 1, "  backoffLimit: 1"));
    cluster.kubectl_ok(KUBECTL, &["wait", "-n", "jobs", "--for=condition=failed", "job/fails", "--timeout=120s"]);
    let failed = job(&cluster, "fails").expect("job");
    assert_eq!(failed["status"]["failed"], 2, "{}", failed["status"]);
    assert_eq!(condition_types(&failed), ["FailureTarget", "Failed"], "{}", failed["status"]);
    let cond = failed["status"]["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == "Failed")).expect("Failed");
    assert_eq!(cond["reason"], "BackoffLimitExceeded");
    assert_eq!(cond["message"], "Job has reached the specified backoff limit");
    assert!(failed["status"]["completionTime"].is_null());

    cluster.kubectl_ok(KUBECTL, &["delete", "job", "three", "-n", "jobs"]);
    eventually("the deleted job's pods to go", || {
        let n = pods_of(&cluster, "three")?.len();
        if n == 0 { Ok(()) } else { Err(format!("{n} pods left")) }
    });
}

fn condition<'a>(job: &'a Value, type_: &str) -> &'a Value {
    job["status"]["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == type_)).unwrap_or(&Value::Null)
}

#[test]
fn failure_and_success_policies_adoption_and_ttl() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = Ironkube::up_with(&tmp.path().join("data"), &["--simulated-nodes", "2"]);
    cluster.kubectl_ok(KUBECTL, &["create", "namespace", "jobs"]);

    // FailJob on exit code 42: the first failed pod fails the job, well before backoffLimit.
    let fail_job = "  backoffLimit: 6\n  podFailurePolicy:\n    rules:\n    - action: FailJob\n      onExitCodes:\n        operator: In\n        values: [42]";
    apply(&cluster, tmp.path(), "failjob", &manifest("failjob", 42, fail_job));
    // Per index: each of 2 indexes fails twice (backoffLimitPerIndex 1), then the job fails.
    let per_index = "  completions: 2\n  parallelism: 2\n  completionMode: Indexed\n  backoffLimitPerIndex: 1";
    apply(&cluster, tmp.path(), "perindex", &manifest("perindex", 1, per_index));
    // Success policy: index 0 is enough (parallelism 1: index 1 never runs).
    let policy = "  completions: 3\n  parallelism: 1\n  completionMode: Indexed\n  successPolicy:\n    rules:\n    - succeededIndexes: \"0\"";
    apply(&cluster, tmp.path(), "success", &manifest("success", 0, policy));
    apply(&cluster, tmp.path(), "ttl", &manifest("ttl", 0, "  ttlSecondsAfterFinished: 2"));

    cluster.kubectl_ok(KUBECTL, &["wait", "-n", "jobs", "--for=condition=failed", "job/failjob", "--timeout=120s"]);
    let failed = job(&cluster, "failjob").expect("job");
    assert_eq!(condition_types(&failed), ["FailureTarget", "Failed"], "{}", failed["status"]);
    let pods = pods_of(&cluster, "failjob").expect("pods");
    assert_eq!(pods.len(), 1, "{pods:?}");
    let pod_name = pods[0]["metadata"]["name"].as_str().expect("pod name");
    let cond = condition(&failed, "Failed");
    assert_eq!(cond["reason"], "PodFailurePolicy", "{cond}");
    assert_eq!(cond["message"], format!("Container work for pod jobs/{pod_name} failed with exit code 42 matching FailJob rule at index 0"));
    assert_eq!(condition(&failed, "FailureTarget")["message"], cond["message"]);
    assert_eq!(failed["status"]["failed"], 1, "{}", failed["status"]);

    cluster.kubectl_ok(KUBECTL, &["wait", "-n", "jobs", "--for=condition=complete", "job/success", "--timeout=120s"]);
    let success = job(&cluster, "success").expect("job");
    assert_eq!(condition_types(&success), ["SuccessCriteriaMet", "Complete"], "{}", success["status"]);
    let cond = condition(&success, "Complete");
    assert_eq!((cond["reason"].as_str(), cond["message"].as_str()), (Some("SuccessPolicy"), Some("Matched rules at index 0")), "{cond}");
    assert_eq!(success["status"]["completedIndexes"], "0", "{}", success["status"]);
    assert_eq!(success["status"]["succeeded"], 1, "{}", success["status"]);

    eventually("the TTL job to be deleted after it finished", || match job(&cluster, "ttl") {
        Ok(j) => Err(format!("still there: {}", j["status"])),
        Err(e) if e.contains("NotFound") => Ok(()),
        Err(e) => Err(e),
    });
    eventually("the TTL job's pods to go", || {
        let n = pods_of(&cluster, "ttl")?.len();
        if n == 0 { Ok(()) } else { Err(format!("{n} pods left")) }
    });

    // The second try of each index waits out a 10 s back-off.
    cluster.kubectl_ok(KUBECTL, &["wait", "-n", "jobs", "--for=condition=failed", "job/perindex", "--timeout=120s"]);
    let per = job(&cluster, "perindex").expect("job");
    let s = &per["status"];
    assert_eq!(condition(&per, "Failed")["reason"], "FailedIndexes", "{s}");
    assert_eq!(condition(&per, "Failed")["message"], "Job has failed indexes", "{s}");
    assert_eq!(s["failedIndexes"], "0,1", "{s}");
    assert_eq!(s["failed"], 4, "{s}");
    assert_eq!(s["completedIndexes"], "", "{s}");
    let mut counts: Vec<(String, String)> = pods_of(&cluster, "perindex")
        .expect("pods")
        .iter()
        .map(|p| {
            let a = &p["metadata"]["annotations"];
            (a["batch.kubernetes.io/job-completion-index"].as_str().unwrap_or("").to_string(), a["batch.kubernetes.io/job-index-failure-count"].as_str().unwrap_or("").to_string())
        })
        .collect();
    counts.sort();
    assert_eq!(counts, [("0".into(), "0".into()), ("0".into(), "1".into()), ("1".into(), "0".into()), ("1".into(), "1".into())]);

    // Evicted pods get the DisruptionTarget condition, which an Ignore rule does not count:
    // with backoffLimit 0 the job still completes once the replacements ran.
    let ignore = "  completions: 2\n  parallelism: 2\n  completionMode: Indexed\n  backoffLimit: 0\n  podFailurePolicy:\n    rules:\n    - action: Ignore\n      onPodConditions:\n      - type: DisruptionTarget\n        status: \"True\"";
    let text = manifest("evicted", 0, ignore).replace("        ironkube.dev/simulated-exit-code: \"0\"\n", "        ironkube.dev/simulated-exit-code: \"0\"\n        ironkube.dev/simulated-run-duration: 6s\n");
    apply(&cluster, tmp.path(), "evicted", &text);
    let first: Vec<String> = eventually("the evicted job's pods to run", || {
        let pods = pods_of(&cluster, "evicted")?;
        let running: Vec<String> = pods.iter().filter(|p| p["status"]["phase"] == "Running").filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string)).collect();
        if running.len() == 2 { Ok(running) } else { Err(format!("{} running", running.len())) }
    });
    for name in &first {
        let body = tmp.path().join(format!("{name}-eviction.json"));
        std::fs::write(&body, format!(r#"{{"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {{"name": "{name}", "namespace": "jobs"}}}}"#)).expect("eviction body");
        cluster.kubectl_ok(KUBECTL, &["create", "--raw", &format!("/api/v1/namespaces/jobs/pods/{name}/eviction"), "-f", body.to_str().expect("path")]);
    }
    cluster.kubectl_ok(KUBECTL, &["wait", "-n", "jobs", "--for=condition=complete", "job/evicted", "--timeout=120s"]);
    let evicted = job(&cluster, "evicted").expect("job");
    assert_eq!(evicted["status"]["failed"].as_i64().unwrap_or(0), 0, "{}", evicted["status"]);
    assert_eq!(evicted["status"]["succeeded"], 2, "{}", evicted["status"]);
    let names: Vec<String> = pods_of(&cluster, "evicted").expect("pods").iter().filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string)).collect();
    assert!(first.iter().all(|n| !names.contains(n)), "the evicted pods are gone: {names:?}");

    // Orphans: a running job's pod loses its owner and is adopted again, then loses its labels
    // and is released (without the tracking finalizer).
    let forever = "  completions: 4\n  parallelism: 2".to_string();
    let text = manifest("adopt", 0, &forever).replace("        ironkube.dev/simulated-exit-code: \"0\"\n", "        note: runs-until-deleted\n");
    apply(&cluster, tmp.path(), "adopt", &text);
    let pod = eventually("the adopt job's pods to run", || {
        let pods = pods_of(&cluster, "adopt")?;
        let running: Vec<&Value> = pods.iter().filter(|p| p["status"]["phase"] == "Running").collect();
        if running.len() == 2 { Ok(running[0]["metadata"]["name"].as_str().unwrap_or("").to_string()) } else { Err(format!("{} running", running.len())) }
    });
    let adopt_uid = job(&cluster, "adopt").expect("job")["metadata"]["uid"].clone();
    cluster.kubectl_ok(KUBECTL, &["patch", "pod", &pod, "-n", "jobs", "--type=json", "-p", r#"[{"op": "remove", "path": "/metadata/ownerReferences"}]"#]);
    eventually("the orphan to be adopted again", || {
        let p = cluster.kubectl_json(KUBECTL, &["get", "pod", &pod, "-n", "jobs"])?;
        let owner = &p["metadata"]["ownerReferences"][0];
        if owner["uid"] == adopt_uid && owner["controller"] == true && owner["kind"] == "Job" { Ok(()) } else { Err(format!("{}", p["metadata"])) }
    });
    cluster.kubectl_ok(KUBECTL, &["patch", "pod", &pod, "-n", "jobs", "--type=json", "-p", r#"[{"op": "remove", "path": "/metadata/labels"}]"#]);
    eventually("the pod without labels to be released", || {
        let p = cluster.kubectl_json(KUBECTL, &["get", "pod", &pod, "-n", "jobs"])?;
        let finalizers = p["metadata"]["finalizers"].as_array().map_or(0, Vec::len);
        if p["metadata"]["ownerReferences"].as_array().is_none_or(|o| o.is_empty()) && finalizers == 0 { Ok(()) } else { Err(format!("{}", p["metadata"])) }
    });
    cluster.kubectl_ok(KUBECTL, &["delete", "pod", &pod, "-n", "jobs", "--wait=false"]);
}

#[test]
fn cron_job_creates_jobs_on_schedule() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = Ironkube::up_with(&tmp.path().join("data"), &["--simulated-nodes", "1"]);
    cluster.kubectl_ok(KUBECTL, &["create", "namespace", "jobs"]);
    let text = r#"
apiVersion: batch/v1
kind: CronJob
metadata:
  name: tick
  namespace: jobs
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        metadata:
          annotations:
            ironkube.dev/simulated-exit-code: "0"
        spec:
          restartPolicy: Never
          containers:
          - name: work
            image: busybox:1.36
            command: ["true"]
"#;
    apply(&cluster, tmp.path(), "tick", text);
    // The next whole minute, plus the job's run: at most about 70 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(100);
    let cj = loop {
        let cj = cluster.kubectl_json(KUBECTL, &["get", "cronjob", "tick", "-n", "jobs"]).expect("cronjob");
        if cj["status"]["lastSuccessfulTime"].is_string() {
            break cj;
        }
        assert!(std::time::Instant::now() < deadline, "no successful run: {}", cj["status"]);
        std::thread::sleep(std::time::Duration::from_secs(1));
    };
    let scheduled: jiff::Timestamp = cj["status"]["lastScheduleTime"].as_str().expect("lastScheduleTime").parse().expect("time");
    assert_eq!(scheduled.as_second() % 60, 0, "{}", cj["status"]);
    let name = format!("tick-{}", scheduled.as_second() / 60);
    let job = cluster.kubectl_json(KUBECTL, &["get", "job", &name, "-n", "jobs"]).expect("the scheduled job");
    assert_eq!(job["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    assert_eq!(job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"], cj["status"]["lastScheduleTime"]);
    assert_eq!(condition_types(&job).last().map(String::as_str), Some("Complete"));
    eventually("the finished job to leave status.active", || {
        let cj = cluster.kubectl_json(KUBECTL, &["get", "cronjob", "tick", "-n", "jobs"])?;
        if cj["status"]["active"].is_null() { Ok(()) } else { Err(format!("{}", cj["status"])) }
    });
}
