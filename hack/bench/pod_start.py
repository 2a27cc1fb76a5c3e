#!/usr/bin/env python3
"""Pod start latency: creates N busybox pods at once on a running cluster and reports, per
pod, the time from its ADDED watch event (the API server stored it) to the first watch event
showing it Running and Ready, as p50/p90/p99/max.

Usage: hack/bench/pod_start.py [--pods 100] [--kubectl PATH] [--namespace NS]
       (KUBECONFIG points at the cluster; the namespace is created and deleted)
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time


def log(msg):
    print(f"==> {msg}", file=sys.stderr, flush=True)


def percentile(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = max(0, min(len(values) - 1, int(round(p / 100 * len(values) + 0.5)) - 1))
    return values[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=100)
    ap.add_argument("--kubectl", default="/usr/lib/google-cloud-sdk/bin/kubectl.1.33")
    ap.add_argument("--namespace", default="pod-start-bench")
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args()
    k = [args.kubectl]
    ns = args.namespace
    subprocess.run(k + ["delete", "namespace", ns, "--ignore-not-found", "--wait=true"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(k + ["create", "namespace", ns], check=True, stdout=subprocess.DEVNULL)
    # The namespace's default ServiceAccount must exist before pods are admitted.
    deadline = time.time() + 60
    while subprocess.run(k + ["-n", ns, "get", "serviceaccount", "default"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
        if time.time() > deadline:
            sys.exit("the namespace's default ServiceAccount never appeared")
        time.sleep(0.2)

    added, ready = {}, {}
    watch = subprocess.Popen(k + ["-n", ns, "get", "pods", "-w", "--output-watch-events", "-o", "json"], stdout=subprocess.PIPE, text=True)

    def read():
        decoder = json.JSONDecoder()
        buf = ""
        for line in watch.stdout:
            buf += line
            while buf.strip():
                try:
                    obj, end = decoder.raw_decode(buf.lstrip())
                except json.JSONDecodeError:
                    break
                buf = buf.lstrip()[end:]
                now = time.monotonic()
                pod = obj.get("object", {})
                name = pod.get("metadata", {}).get("name")
                if obj.get("type") == "ADDED":
                    added.setdefault(name, now)
                conds = pod.get("status", {}).get("conditions") or []
                is_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)
                if pod.get("status", {}).get("phase") == "Running" and is_ready:
                    ready.setdefault(name, now)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(1)
    items = [{
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"p{i:04d}"},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "3600"]}]},
    } for i in range(args.pods)]
    manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    log(f"creating {args.pods} pods in {ns}")
    started = time.monotonic()
    subprocess.run(k + ["-n", ns, "create", "-f", "-"], input=manifest, text=True, check=True, stdout=subprocess.DEVNULL)
    log(f"created in {time.monotonic() - started:.1f}s; waiting for them to run")
    last = -1
    while len(ready) < args.pods and time.monotonic() - started < args.timeout:
        if len(ready) != last:
            log(f"{len(ready)}/{args.pods} running and ready")
            last = len(ready)
        time.sleep(1)
    total = time.monotonic() - started
    watch.terminate()
    lat = [ready[n] - added[n] for n in ready if n in added]
    result = {
        "pods": args.pods,
        "ready": len(ready),
        "wall_seconds": round(total, 2),
        "p50": round(percentile(lat, 50), 3),
        "p90": round(percentile(lat, 90), 3),
        "p99": round(percentile(lat, 99), 3),
        "max": round(max(lat), 3) if lat else None,
    }
    print(json.dumps(result))
    log("deleting the namespace")
    subprocess.run(k + ["delete", "namespace", ns, "--wait=true", "--timeout=300s"], stdout=subprocess.DEVNULL)
    if len(ready) < args.pods:
        sys.exit(f"only {len(ready)} of {args.pods} pods became ready")


if __name__ == "__main__":
    main()
