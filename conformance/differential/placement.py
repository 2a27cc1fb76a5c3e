#!/usr/bin/env python3
"""Runs the scheduler's placement table (scheduler/testdata/placement-cases.json, written by
the scheduler's unit tests from the cases they check) against a real scheduler through an API
server: for each case, the cluster is emptied, the case's nodes (with their status), priority
classes, ReplicaSets and already-bound pods are stored, then the pod; the result is the node
it was bound to or, when it stays pending, its PodScheduled condition's message and its
nominatedNodeName. Prints one row per case and exits non-zero when any result differs from
the table's expectation.

    placement.py --kubeconfig FILE [--cases FILE] [--kubectl PATH] [--only NAME-SUBSTRING]
"""

import argparse
import copy
import json
import subprocess
import sys
import time

NS = "default"


class Kubectl:
    def __init__(self, path, kubeconfig):
        self.base = [path, "--kubeconfig", kubeconfig]

    def run(self, *args, stdin=None, check=True):
        proc = subprocess.run(self.base + list(args), input=stdin, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
        return proc

    def create(self, obj):
        self.run("create", "-f", "-", stdin=json.dumps(obj))

    def json(self, *args):
        proc = self.run(*args, "-o", "json", check=False)
        if proc.returncode != 0:
            return None
        return json.loads(proc.stdout)


def wait_until(what, check, timeout=20.0, interval=0.2):
    deadline = time.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.time() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(interval)


def empty_cluster(k):
    k.run("delete", "pods", "--all", "-n", NS, "--grace-period=0", "--force", "--wait=false", check=False)
    k.run("delete", "replicasets", "--all", "-n", NS, "--wait=false", check=False)
    k.run("delete", "nodes", "--all", "--wait=false", check=False)
    k.run("delete", "priorityclasses", "-l", "placement-table=yes", "--wait=false", check=False)

    def gone():
        pods = k.json("get", "pods", "-n", NS)
        nodes = k.json("get", "nodes")
        return pods is not None and nodes is not None and not pods["items"] and not nodes["items"]

    wait_until("an empty cluster", gone)


def strip(obj):
    obj = copy.deepcopy(obj)
    obj["metadata"].pop("uid", None)
    obj["metadata"].pop("resourceVersion", None)
    return obj


def with_priority_class(pod):
    """Priority admission computes spec.priority from a class: name one instead."""
    pod = strip(pod)
    priority = pod["spec"].pop("priority", None)
    if priority is not None:
        pod["spec"]["priorityClassName"] = f"placement-{priority}"
    return pod


def replica_set(rs):
    """The table's ReplicaSets carry only what the scheduler reads; the API wants a template."""
    rs = strip(rs)
    labels = rs["spec"]["selector"].get("matchLabels", {})
    rs["apiVersion"], rs["kind"] = "apps/v1", "ReplicaSet"
    rs["spec"]["replicas"] = 0
    rs["spec"]["template"] = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    return rs


def store_case(k, case):
    for node in case["nodes"]:
        obj = strip(node)
        status = obj.pop("status", {})
        k.create(obj)
        k.run("patch", "node", obj["metadata"]["name"], "--subresource=status", "--type=merge", "-p", json.dumps({"status": status}))
    priorities = {p["spec"]["priority"] for p in case["pods"] + [case["pod"]] if "priority" in p["spec"]}
    for value in sorted(priorities):
        k.create({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                  "metadata": {"name": f"placement-{value}", "labels": {"placement-table": "yes"}}, "value": value})
    for rs in case["replicaSets"]:
        k.create(replica_set(rs))
    for pod in case["pods"]:
        k.create(with_priority_class(pod))


def outcome(k, name, want):
    """Where the pod went: ("bound", node) or ("pending", message, nominated)."""
    settle = 15.0 if "oneOf" in want else 4.0
    deadline = time.time() + settle
    pod = None
    while time.time() < deadline:
        pod = k.json("get", "pod", name, "-n", NS)
        if pod and pod["spec"].get("nodeName"):
            return ("bound", pod["spec"]["nodeName"])
        time.sleep(0.25)
    pod = pod or {}
    conditions = pod.get("status", {}).get("conditions", [])
    message = next((c.get("message", "") for c in conditions if c.get("type") == "PodScheduled"), "")
    return ("pending", message, pod.get("status", {}).get("nominatedNodeName"))


def matches(want, got):
    if "oneOf" in want:
        return got[0] == "bound" and got[1] in want["oneOf"]
    return got[0] == "pending" and got[1] == want["fails"] and got[2] == want.get("nominated")


def describe(got):
    if got[0] == "bound":
        return f"bound to {got[1]}"
    nominated = f" (nominated {got[2]})" if got[2] else ""
    return f"pending: {got[1]!r}{nominated}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--cases", default="scheduler/testdata/placement-cases.json")
    ap.add_argument("--kubectl", default="/usr/lib/google-cloud-sdk/bin/kubectl.1.33")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    k = Kubectl(args.kubectl, args.kubeconfig)
    with open(args.cases) as f:
        cases = [c for c in json.load(f) if args.only in c["name"]]
    k.run("create", "serviceaccount", "default", "-n", NS, check=False)
    failures = 0
    print("| case | expected | result | same |")
    print("| --- | --- | --- | --- |")
    for i, case in enumerate(cases, 1):
        print(f"[{i}/{len(cases)}] {case['name']}", file=sys.stderr)
        empty_cluster(k)
        store_case(k, case)
        # Let the scheduler's informers see the nodes and pods before the pod arrives.
        time.sleep(1.0)
        pod = with_priority_class(case["pod"])
        k.create(pod)
        got = outcome(k, pod["metadata"]["name"], case["want"])
        ok = matches(case["want"], got)
        failures += not ok
        want = case["want"]
        expected = f"one of {', '.join(want['oneOf'])}" if "oneOf" in want else describe(("pending", want["fails"], want.get("nominated")))
        print(f"| {case['name']} | {expected} | {describe(got)} | {'yes' if ok else '**no**'} |", flush=True)
    empty_cluster(k)
    print(f"\n{len(cases) - failures} of {len(cases)} cases as expected", flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
