#!/usr/bin/env python3
"""Normalises what kubectl printed so that two API servers' answers can be compared.

Replaced, because they differ between any two runs or servers by design:
  - uids                          -> <uid>
  - resourceVersion values        -> <rv>   (etcd revisions differ)
  - RFC 3339 timestamps           -> <time>
  - kubectl diff's temporary dirs -> /tmp/LIVE-<n>, /tmp/MERGED-<n>, and diff's file times
  - kubectl edit's saved copies   -> /tmp/kubectl-edit-<n>.yaml
  - AGE cells ("3s", "2m10s")     -> <age>
  - generated name suffixes       -> <gen>  (generateName, kube-api-access-*)
  - the server's address          -> <server>
  - ClusterIPs out of 10.96/12    -> <cluster-ip>
  - allocated node ports          -> <node-port>
  - runs of 2+ spaces             -> 3 spaces (table column widths follow the cells above)
  - non-breaking spaces           -> spaces (go-cmp's diffs, in some validation errors, indent
                                     with either at random per process to stop callers
                                     depending on its exact output)
Reads stdin, writes stdout.
"""
import re
import sys

RULES = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uid>"),
    (re.compile(r'("resourceVersion":\s*)"\d+"'), r'\1"<rv>"'),
    (re.compile(r"(resourceVersion:\s*)[\"']?\d+[\"']?"), r"\1<rv>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z"), "<time>"),
    # kubectl diff: its temporary directories and the file times diff prints.
    (re.compile(r"/tmp/(LIVE|MERGED)-\d+"), r"/tmp/\1-<n>"),
    (re.compile(r"(/tmp/kubectl[.0-9]*-edit-)\d+"), r"\1<n>"),
    (re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d+ [+-]\d{4}"), "<time>"),
    (re.compile(r"(kube-api-access-)[a-z0-9]{5}"), r"\1<gen>"),
    (re.compile(r"(\bgen-)[a-z0-9]{5}\b"), r"\1<gen>"),
    (re.compile(r"https://127\.0\.0\.1:\d+"), "<server>"),
    (re.compile(r"\b10\.(9[6-9]|10[0-9]|11[01])\.\d{1,3}\.\d{1,3}\b"), "<cluster-ip>"),
    (re.compile(r'("nodePort":\s*)\d+'), r"\1<node-port>"),
    (re.compile(r"(nodePort:\s*)\d+"), r"\1<node-port>"),
    (re.compile(r"(\d+):3\d{4}/(TCP|UDP|SCTP)"), r"\1:<node-port>/\2"),
    # AGE column cells: kubectl's duration format, right before a column gap or line end.
    (re.compile(r"(?<=\s)(\d+d)?(\d+h)?(\d+m)?\d+s(?=\s|$)|(?<=\s)\d+[mhd](?=\s|$)|(?<=\s)<invalid>(?=\s|$)"), "<age>"),
]


COLUMN_GAP = re.compile(r"(?<=\S) {2,}(?=\S)")


def normalize(text: str) -> str:
    text = text.replace("\u00a0", " ")
    for pattern, repl in RULES:
        text = pattern.sub(repl, text)
    return "\n".join(COLUMN_GAP.sub("   ", line).rstrip() for line in text.split("\n"))


if __name__ == "__main__":
    sys.stdout.write(normalize(sys.stdin.read()))
