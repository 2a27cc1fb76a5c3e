#!/usr/bin/env python3
"""Compares the OpenAPI documents of two API servers, e.g. upstream kube-apiserver v1.33
and ironkube, and prints every difference as a JSON pointer.

    compare-openapi.py --left KUBECONFIG --right KUBECONFIG [--v2] [--only api/v1] [--max 50]

Documents are fetched with `kubectl get --raw` (KUBECTL, default kubectl.1.33). Differences
in key order and in the hashes of `serverRelativeURL`s are not differences. Exits 1 when
any document differs. A dev tool: the everyday tests do not need a second server.
"""

import argparse
import json
import os
import subprocess
import sys

KUBECTL = os.environ.get("KUBECTL", "/usr/lib/google-cloud-sdk/bin/kubectl.1.33")


def fetch(kubeconfig, path):
    out = subprocess.run(
        [KUBECTL, "--kubeconfig", kubeconfig, "get", "--raw", path],
        check=True,
        capture_output=True,
    ).stdout
    return json.loads(out)


def diff(a, b, ptr, out, limit):
    if len(out) >= limit:
        return
    if type(a) is not type(b):
        out.append(f"{ptr}: {short(a)} != {short(b)}")
    elif isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            p = f"{ptr}/{k.replace('~', '~0').replace('/', '~1')}"
            if k not in a:
                out.append(f"{p}: only right: {short(b[k])}")
            elif k not in b:
                out.append(f"{p}: only left: {short(a[k])}")
            else:
                diff(a[k], b[k], p, out, limit)
    elif isinstance(a, list):
        if len(a) != len(b):
            out.append(f"{ptr}: {len(a)} items != {len(b)} items: {short(a)} != {short(b)}")
        else:
            for i, (x, y) in enumerate(zip(a, b)):
                diff(x, y, f"{ptr}/{i}", out, limit)
    elif a != b:
        out.append(f"{ptr}: {short(a)} != {short(b)}")


def short(v):
    s = json.dumps(v, sort_keys=True)
    return s if len(s) < 160 else s[:157] + "..."


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--left", required=True)
    ap.add_argument("--right", required=True)
    ap.add_argument("--v2", action="store_true", help="compare /openapi/v2 instead of v3")
    ap.add_argument("--only", action="append", default=[], help="v3 document(s) to compare")
    ap.add_argument("--max", type=int, default=40, help="differences shown per document")
    args = ap.parse_args()

    failed = False
    if args.v2:
        docs = [("/openapi/v2", "/openapi/v2")]
    else:
        li = fetch(args.left, "/openapi/v3")["paths"]
        ri = fetch(args.right, "/openapi/v3")["paths"]
        for k in sorted(set(li) ^ set(ri)):
            print(f"index: {k} only {'left' if k in li else 'right'}")
            failed = True
        names = sorted(set(li) & set(ri))
        if args.only:
            names = [n for n in names if n in args.only]
        docs = [(li[n]["serverRelativeURL"], ri[n]["serverRelativeURL"]) for n in names]
    for lp, rp in docs:
        a, b = fetch(args.left, lp), fetch(args.right, rp)
        out = []
        diff(a, b, "", out, args.max)
        name = lp.split("?")[0]
        if out:
            failed = True
            print(f"== {name}: differences (first {args.max})")
            for line in out:
                print("  " + line)
        else:
            print(f"== {name}: equal")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
