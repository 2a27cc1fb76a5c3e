#!/usr/bin/env python3
"""Generates machinery/src/proto/schema.rs, the table that drives the protobuf transcoder.

Inputs (see gen.sh, which locates them and runs this script):
  --k8s-pb DIR       source of the k8s-pb crate: field numbers and wire kinds, read from
                     the `#[prost(..., tag = "N")]` attributes of its generated structs.
  --k8s-openapi DIR  source of the k8s-openapi crate, version module v1_33: JSON field names
                     (`"podIP" => Field::Key_pod_ip`), top-level kinds and list kinds.
  --go-fields FILE   go-fields.txt from gofacts/: which Go fields are pointers, slices or
                     maps (encoded only when set) and which are inlined; also the Kubernetes
                     v1.33 set of messages, which filters out k8s-pb's newer ones.
Writes the Rust table to --out and a report of mismatches and gaps to --report.
"""

import argparse
import os
import re
import sys
from collections import OrderedDict

# ---------------------------------------------------------------------------
# k8s-pb


class PbField:
    def __init__(self, name, ty, card, tag, ref, map_value):
        self.name = name  # prost (snake case) name, without r#
        self.ty = ty  # string/bytes/bool/int32/int64/double/message
        self.card = card  # one/repeated/map
        self.tag = tag
        self.ref = ref  # (pkg, name) of the message type, for ty == message
        self.map_value = map_value


class PbMessage:
    def __init__(self, pkg, name):
        self.pkg = pkg
        self.name = name
        self.fields = []


PROST_SCALARS = {"string", "bytes", "bool", "int32", "int64", "double"}


def resolve_rust_path(pkg, path):
    """Resolves a prost type path relative to module `pkg` to (pkg, name)."""
    parts = path.split("::")
    mod = pkg.split("/")
    while parts and parts[0] == "super":
        parts.pop(0)
        mod.pop()
    if parts and parts[0] == "crate":
        parts.pop(0)
        mod = []
    name = parts.pop()
    return ("/".join(mod + parts), name)


def strip_wrappers(ty):
    ty = ty.replace(" ", "").replace("\n", "")
    for w in (
        "::core::option::Option<",
        "::prost::alloc::vec::Vec<",
        "::prost::alloc::boxed::Box<",
        "::prost::alloc::collections::BTreeMap<::prost::alloc::string::String,",
    ):
        ty = ty.replace(w, "")
    return ty.rstrip(">")


def parse_pb(root):
    messages = {}
    for dirpath, _, files in os.walk(root):
        if "mod.rs" not in files:
            continue
        pkg = os.path.relpath(dirpath, root).replace(os.sep, "/")
        text = open(os.path.join(dirpath, "mod.rs")).read()
        for m in re.finditer(r"^pub struct (\w+) \{(?:\}|\n(.*?)^\})", text, re.S | re.M):
            msg = PbMessage(pkg, m.group(1))
            body = [l.strip() for l in (m.group(2) or "").split("\n")]
            body = [l for l in body if l and not l.startswith("///")]
            i = 0
            while i < len(body):
                attr = body[i]
                if not attr.startswith("#[prost("):
                    i += 1
                    continue
                decl = ""
                i += 1
                while i < len(body):
                    decl += body[i]
                    i += 1
                    if decl.endswith(",") and decl.count("<") == decl.count(">"):
                        break
                decl = decl.replace(",>", ">")
                fm = re.match(r"pub (?:r#)?(\w+):(.*),$", decl)
                if not fm:
                    sys.exit(f"cannot parse field {decl!r} in {pkg}/{msg.name}")
                name, rust_ty = fm.group(1), fm.group(2)
                tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
                a = attr[len("#[prost(") :]
                ref = None
                map_value = None
                mm = re.match(r'btree_map = "string, (\w+)"', a)
                if mm:
                    card = "map"
                    ty = mm.group(1)
                else:
                    ty = re.match(r"(\w+)", a).group(1)
                    card = "repeated" if "repeated" in a else "one"
                if ty == "message":
                    ref = resolve_rust_path(pkg, strip_wrappers(rust_ty))
                elif ty not in PROST_SCALARS:
                    sys.exit(f"unknown prost kind {ty} in {pkg}/{msg.name}.{name}")
                msg.fields.append(PbField(name, ty, card, tag, ref, map_value))
            messages[(pkg, msg.name.lower())] = msg
    return messages


# ---------------------------------------------------------------------------
# k8s-openapi


class OaType:
    def __init__(self, definition, pkg, name):
        self.definition = definition
        self.pkg = pkg
        self.name = name
        self.json = OrderedDict()  # rust key -> json name
        self.resource = None  # (api_version, kind)
        self.list_kind = None


def definition_pkg(definition):
    parts = definition.split(".")
    assert parts[0] == "io" and parts[1] == "k8s", definition
    return "/".join(p.replace("-", "_") for p in parts[2:-1]), parts[-1]


def parse_openapi(root):
    types = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs"):
                continue
            text = open(os.path.join(dirpath, f)).read()
            hm = re.match(r"// Generated from definition (\S+)", text)
            if not hm:
                continue
            definition = hm.group(1)
            pkg, name = definition_pkg(definition)
            t = OaType(definition, pkg, name)
            for jm in re.finditer(r'^\s*"([^"]+)" => Field::Key_(\w+),$', text, re.M):
                t.json[jm.group(2)] = jm.group(1)
            rm = re.search(r"impl crate::Resource for \w+ \{(.*?)\n\}", text, re.S)
            if rm:
                av = re.search(r'const API_VERSION: &\'static str = "([^"]*)"', rm.group(1)).group(1)
                kind = re.search(r'const KIND: &\'static str = "([^"]*)"', rm.group(1)).group(1)
                t.resource = (av, kind)
            lm = re.search(r'const LIST_KIND: &\'static str = "([^"]*)"', text)
            if lm:
                t.list_kind = lm.group(1)
            types[(pkg, name.lower())] = t
    return types


# ---------------------------------------------------------------------------
# Go facts


def parse_go_fields(path):
    facts = {}
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        msg, tag, json_name, flags = line.split()
        assert msg.startswith("k8s.io."), msg
        parts = msg[len("k8s.io.") :].split(".")
        key = ("/".join(parts[:-1]), parts[-1].lower())
        facts.setdefault(key, {})[int(tag)] = (json_name, set(flags.split(",")) - {"."})
    return facts


# ---------------------------------------------------------------------------
# special messages: their JSON form is not an object of their fields

SPECIAL = {
    ("apimachinery/pkg/util/intstr", "intorstring"): "IntOrString",
    ("apimachinery/pkg/api/resource", "quantity"): "Quantity",
    ("apimachinery/pkg/apis/meta/v1", "time"): "Time",
    ("apimachinery/pkg/apis/meta/v1", "microtime"): "MicroTime",
    ("apimachinery/pkg/apis/meta/v1", "fieldsv1"): "RawJson",
    ("apimachinery/pkg/runtime", "rawextension"): "RawExtension",
    ("apiextensions_apiserver/pkg/apis/apiextensions/v1", "json"): "RawJson",
    ("apiextensions_apiserver/pkg/apis/apiextensions/v1beta1", "json"): "RawJson",
    ("apiextensions_apiserver/pkg/apis/apiextensions/v1", "jsonschemapropsorarray"): "SchemaOrArray",
    ("apiextensions_apiserver/pkg/apis/apiextensions/v1beta1", "jsonschemapropsorarray"): "SchemaOrArray",
    ("apiextensions_apiserver/pkg/apis/apiextensions/v1", "jsonschemapropsorbool"): "SchemaOrBool",
    ("apiextensions_apiserver/pkg/apis/apiextensions/v1beta1", "jsonschemapropsorbool"): "SchemaOrBool",
    ("apiextensions_apiserver/pkg/apis/apiextensions/v1", "jsonschemapropsorstringarray"): "SchemaOrStringArray",
    ("apiextensions_apiserver/pkg/apis/apiextensions/v1beta1", "jsonschemapropsorstringarray"): "SchemaOrStringArray",
}

# Go named slices of strings (`type Verbs []string`): a message {repeated string items = 1}
# whose JSON form is the bare array.
STRING_LIST_NAMES = {"verbs", "extravalue"}

# k8s-openapi names a few fields differently from prost (Rust keywords, `$ref`).
OPENAPI_RENAMES = {"ref_path": "ref", "type_": "type", "enum_": "enum", "continue_": "continue"}

# kinds every group version serves (metav1 types registered by AddToGroupVersion and as
# unversioned types): matched by kind whatever the apiVersion says.
META_PKG = "apimachinery/pkg/apis/meta/v1"
META_KINDS = [
    "APIGroup",
    "APIGroupList",
    "APIResourceList",
    "APIVersions",
    "CreateOptions",
    "DeleteOptions",
    "GetOptions",
    "List",
    "ListOptions",
    "PartialObjectMetadata",
    "PartialObjectMetadataList",
    "PatchOptions",
    "Status",
    "UpdateOptions",
    "WatchEvent",
]


def squash(name):
    return name.replace("_", "").lower()


def camel(name):
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def proto_name(pkg):
    return "k8s.io." + pkg.replace("/", ".")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k8s-pb", required=True)
    ap.add_argument("--k8s-pb-version", required=True)
    ap.add_argument("--k8s-openapi", required=True)
    ap.add_argument("--k8s-openapi-version", required=True)
    ap.add_argument("--go-fields", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--report", required=True)
    args = ap.parse_args()

    pb = parse_pb(args.k8s_pb)
    oa = parse_openapi(args.k8s_openapi)
    go = parse_go_fields(args.go_fields)
    report = []

    # k8s-pb follows a newer Kubernetes: drop the fields v1.33's Go types do not have.
    for key, msg in pb.items():
        facts = go.get(key)
        if facts is None or key in SPECIAL:
            continue
        kept = []
        for f in msg.fields:
            if f.tag in facts:
                kept.append(f)
            else:
                report.append(f"newer: {proto_name(key[0])}.{msg.name}.{f.name} (tag {f.tag}) is not in v1.33; dropped")
        msg.fields = kept

    # Kubernetes v1.33's messages: k8s-openapi's definitions (what v1.33 serves), their
    # lists and the meta kinds, with everything they reference. Go types of API versions
    # v1.33 no longer serves (apps/v1beta1, ...) and of review bodies sent only as JSON
    # (AdmissionReview, ConversionReview) stay out.
    # k8s-openapi's own generic List, and version.Info (GET /version, JSON only upstream
    # too), have no protobuf message.
    wanted = {k for k in oa if k[0] and k != ("apimachinery/pkg/version", "info")}
    missing = sorted(k for k in wanted if k not in pb and k not in SPECIAL)
    for k in missing:
        report.append(f"gap: v1.33 message {k[0]}/{k[1]} is not in k8s-pb")

    # top-level kinds: (api_version, kind) -> message key
    kinds = {}
    for key, t in oa.items():
        if not t.resource or key not in pb:
            continue
        kinds[t.resource] = key
        if t.list_kind:
            lkey = (t.pkg, t.list_kind.lower())
            if lkey in pb:
                kinds[(t.resource[0], t.list_kind)] = lkey
            else:
                report.append(f"gap: list {t.resource[0]} {t.list_kind} has no k8s-pb message")
    for kind in META_KINDS:
        key = (META_PKG, kind.lower())
        assert key in pb, kind
        kinds[("meta.k8s.io/v1", kind)] = key
        kinds.setdefault(("v1", kind), key)

    # closure over message references, starting from the kinds and the v1.33 messages
    included = OrderedDict()
    stack = sorted(set(kinds.values()) | {k for k in wanted if k in pb})
    while stack:
        key = stack.pop()
        if key in included:
            continue
        if key not in pb:
            sys.exit(f"referenced message {key} not found in k8s-pb")
        if key == (META_PKG, "duration"):
            # metav1.Duration's JSON form is a Go duration string; no v1.33 type uses it yet.
            sys.exit("metav1.Duration is now used: teach the transcoder its JSON form first")
        included[key] = pb[key]
        for f in pb[key].fields:
            if f.ref:
                stack.append((f.ref[0], f.ref[1].lower()))
    def inline_covers(key, rust_key):
        """Whether an inlined message (at any depth) under `key` has the field."""
        for f in included[key].fields:
            if not f.ref or "inline" not in go.get(key, {}).get(f.tag, ("", set()))[1]:
                continue
            sub = (f.ref[0], f.ref[1].lower())
            if any(g.name == rust_key or squash(g.name) == squash(rust_key) for g in included[sub].fields):
                return True
            if inline_covers(sub, rust_key):
                return True
        return False

    order = sorted(included, key=lambda k: (k[0], included[k].name))
    index = {k: i for i, k in enumerate(order)}

    out_msgs = []
    json_name_sources = {"openapi": 0, "go": 0, "camel": 0}
    for key in order:
        msg = included[key]
        t = oa.get(key)
        facts = go.get(key, {})
        special = SPECIAL.get(key, "None")
        fields_pb = msg.fields
        if (
            special == "None"
            and key[1] in STRING_LIST_NAMES
            and len(fields_pb) == 1
            and fields_pb[0].name == "items"
            and fields_pb[0].ty == "string"
        ):
            special = "StringList"
        name = t.definition if t else proto_name(key[0]) + "." + msg.name
        if t is None and key in go:
            # Go's proto name keeps the upstream casing (JSONSchemaProps), k8s-pb may not.
            name = proto_name(key[0]) + "." + msg.name
        oa_json = {}
        if t:
            for rust_key, js in t.json.items():
                oa_json[OPENAPI_RENAMES.get(rust_key, rust_key)] = js
        oa_squashed = {squash(k): k for k in oa_json}
        used_oa = set()
        fields = []
        for f in sorted(fields_pb, key=lambda f: f.tag):
            fact = facts.get(f.tag)
            flags = set(fact[1]) if fact else set()
            if fact is None and key in go and special == "None":
                report.append(f"note: {name}.{f.name} (tag {f.tag}) is in k8s-pb but not in v1.33 Go types; kept")
            if key not in go:
                # no Go facts: treat every field as set-when-present
                flags.add("nil")
            js = None
            if "inline" in flags:
                js = ""
            elif f.name in oa_json:
                js = oa_json[f.name]
                used_oa.add(f.name)
                json_name_sources["openapi"] += 1
            elif squash(f.name) in oa_squashed:
                # prost and k8s-openapi split acronyms differently (non_resource_ur_ls vs
                # non_resource_urls): match them without underscores.
                rk = oa_squashed[squash(f.name)]
                js = oa_json[rk]
                used_oa.add(rk)
                json_name_sources["openapi"] += 1
                report.append(f"renamed: {name}: prost {f.name} = k8s-openapi {rk} = JSON {js!r}")
            elif fact and fact[0] != "-":
                js = fact[0]
                json_name_sources["go"] += 1
                if t and special == "None":
                    report.append(f"mismatch: {name}.{f.name}: no k8s-openapi field; JSON name {js!r} from Go")
            else:
                js = camel(f.name)
                json_name_sources["camel"] += 1
                if special == "None":
                    report.append(f"note: {name}.{f.name}: JSON name {js!r} by camel case")
            if fact and fact[0] not in ("-", js) and "inline" not in flags:
                report.append(f"mismatch: {name} tag {f.tag}: k8s-openapi says {js!r}, Go says {fact[0]!r}")
            fields.append((js, f, flags))
        if t and special == "None" and key != (META_PKG, "watchevent"):
            for rk, js in oa_json.items():
                if rk not in used_oa and js not in ("apiVersion", "kind"):
                    if not inline_covers(key, rk):
                        report.append(f"gap: {name}.{js}: in k8s-openapi v1_33 but not in k8s-pb")
        for tag, (js, fl) in facts.items():
            if special == "None" and not any(f.tag == tag for _, f, _ in fields):
                report.append(f"gap: {name} tag {tag} ({js}): in v1.33 Go types but not in k8s-pb")
        out_msgs.append((name, special, fields))

    # ---- emit Rust
    lines = []
    w = lines.append
    w("// @generated by hack/gen-proto-schema/gen.sh from the k8s-pb crate")
    w(f"// {args.k8s_pb_version} (field numbers and wire kinds), the k8s-openapi crate")
    w(f"// {args.k8s_openapi_version} with its v1_33 module (JSON field names, kinds) and")
    w("// hack/gen-proto-schema/go-fields.txt (Go pointer-ness and inlining, Kubernetes v1.33).")
    w("// Do not edit: run `hack/gen-proto-schema/gen.sh` to regenerate, `--check` to verify.")
    w("")
    w("use super::descriptor::{Card, Field, Message, Presence, Special, Ty};")
    w("")
    w("#[rustfmt::skip]")
    w(f"pub(super) static MESSAGES: [Message; {len(out_msgs)}] = [")
    for i, (name, special, fields) in enumerate(out_msgs):
        w(f'    // {i}')
        w(f'    Message {{ name: "{name}", special: Special::{special}, fields: &[')
        for js, f, flags in fields:
            if f.ty == "message":
                ty = f"Ty::Message({index[(f.ref[0], f.ref[1].lower())]})"
            else:
                ty = "Ty::" + {"string": "String", "bytes": "Bytes", "bool": "Bool", "int32": "Int32", "int64": "Int64", "double": "Double"}[f.ty]
            card = {"one": "Card::One", "repeated": "Card::Repeated", "map": "Card::Map"}[f.card]
            presence = "Inline" if "inline" in flags else ("WhenSet" if "nil" in flags else "Always")
            w(f'        Field {{ json: "{js}", tag: {f.tag}, ty: {ty}, card: {card}, presence: Presence::{presence} }},')
        w("    ] },")
    w("];")
    w("")
    kind_rows = sorted((av, k, index[key]) for (av, k), key in kinds.items())
    w("/// Top-level kinds, sorted by (apiVersion, kind).")
    w("#[rustfmt::skip]")
    w(f"pub(super) static KINDS: [(&str, &str, u16); {len(kind_rows)}] = [")
    for av, k, i in kind_rows:
        w(f'    ("{av}", "{k}", {i}),')
    w("];")
    w("")
    w("/// Kinds of meta.k8s.io/v1 that every group version serves.")
    w(f"pub(super) static META_KINDS: [&str; {len(META_KINDS)}] = [")
    for k in META_KINDS:
        w(f'    "{k}",')
    w("];")
    with open(args.out, "w") as fh:
        fh.write("\n".join(lines) + "\n")

    with open(args.report, "w") as fh:
        fh.write("# Generated by hack/gen-proto-schema/gen.sh; do not edit.\n")
        fh.write(f"# k8s-pb {args.k8s_pb_version}, k8s-openapi {args.k8s_openapi_version} (v1_33)\n")
        fh.write(f"# messages: {len(out_msgs)}, kinds: {len(kind_rows)}\n")
        fh.write(
            f"# JSON names from k8s-openapi: {json_name_sources['openapi']}, from Go: {json_name_sources['go']}, "
            f"camel case: {json_name_sources['camel']}\n"
        )
        for r in sorted(set(report)):
            fh.write(r + "\n")


if __name__ == "__main__":
    main()
