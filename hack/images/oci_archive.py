#!/usr/bin/env python3
"""Packs a root file system directory into a single-layer OCI image archive.

    oci_archive.py --rootfs DIR --ref registry.k8s.io/pause:3.10 --out pause.tar \
        [--entrypoint '["/pause"]'] [--cmd '["x"]'] [--env K=V]... [--user 65535:65535] \
        [--workdir /] [--expose 80]...

The archive is an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/...`) with one
uncompressed layer; the index's manifest carries `io.containerd.image.name` = the full
reference, so `ctr -n k8s.io images import FILE` lists it under that name. Every file in
the layer is owned by root and dated 1970-01-01, so the same inputs give the same digests.
Standard library only.
"""

import argparse
import hashlib
import io
import json
import os
import sys
import tarfile


def layer_tar(rootfs):
    """The root file system as an uncompressed tar (bytes), entries sorted by path."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        paths = []
        for dirpath, dirnames, filenames in os.walk(rootfs):
            dirnames.sort()
            for name in dirnames + sorted(filenames):
                paths.append(os.path.join(dirpath, name))
        paths.sort(key=lambda p: os.path.relpath(p, rootfs))
        for path in paths:
            rel = os.path.relpath(path, rootfs)
            info = tar.gettarinfo(path, arcname=rel)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = 0
            info.pax_headers = {}
            if info.isreg():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buf.getvalue()


def blob(blobs, data):
    digest = hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"digest": "sha256:" + digest, "size": len(data)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rootfs", required=True)
    p.add_argument("--ref", required=True, help="full image reference, e.g. registry.k8s.io/pause:3.10")
    p.add_argument("--out", required=True)
    p.add_argument("--entrypoint", help="JSON list")
    p.add_argument("--cmd", help="JSON list")
    p.add_argument("--env", action="append", default=[])
    p.add_argument("--user")
    p.add_argument("--workdir")
    p.add_argument("--expose", action="append", default=[])
    p.add_argument("--label", action="append", default=[], help="KEY=VALUE")
    a = p.parse_args()
    if not os.path.isdir(a.rootfs):
        sys.exit(f"error: {a.rootfs} is not a directory")

    blobs = {}
    layer = layer_tar(a.rootfs)
    layer_desc = blob(blobs, layer)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Env": a.env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "ironkube hack/images"}],
    }
    c = config["config"]
    if a.entrypoint:
        c["Entrypoint"] = json.loads(a.entrypoint)
    if a.cmd:
        c["Cmd"] = json.loads(a.cmd)
    if a.user:
        c["User"] = a.user
    if a.workdir:
        c["WorkingDir"] = a.workdir
    if a.expose:
        c["ExposedPorts"] = {f"{port}/tcp" if "/" not in port else port: {} for port in a.expose}
    if a.label:
        c["Labels"] = dict(kv.split("=", 1) for kv in a.label)
    config_desc = blob(blobs, json.dumps(config, sort_keys=True, separators=(",", ":")).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config_desc},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer_desc}],
    }
    manifest_desc = blob(blobs, json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode())
    tag = a.ref.rsplit(":", 1)[1] if ":" in a.ref.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            **manifest_desc,
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {
                "io.containerd.image.name": a.ref,
                "org.opencontainers.image.ref.name": tag,
            },
        }],
    }

    def add(tar, name, data):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))

    tmp = a.out + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        add(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        add(tar, "index.json", json.dumps(index, sort_keys=True, separators=(",", ":")).encode())
        for digest in sorted(blobs):
            add(tar, f"blobs/sha256/{digest}", blobs[digest])
    os.replace(tmp, a.out)
    print(f"{a.ref}: {a.out} ({os.path.getsize(a.out) // 1024} KiB, manifest {manifest_desc['digest'][:19]}…)")


if __name__ == "__main__":
    main()
