#!/usr/bin/env python3
"""The conformance runner's bookkeeping: the test list, the smoke selection, the report.

    report.py list    --list-tests FILE --conformance-yaml FILE --buckets TSV --out FILE
    report.py focus   --names FILE              (a ginkgo focus regex matching exactly those names)
    report.py smoke   --buckets TSV --out FILE  (the smoke selection's names)
    report.py progress --log FILE --total N     (stdin: e2e.test output; a line per finished test)
    report.py select  --list FILE [--focus RE] [--skip RE] --out FILE  (names a focus/skip picks)
    report.py report  --list FILE --report-dir DIR --out MD [--buckets TSV] [--title ...] ...

`list` derives the conformance list from the e2e.test binary itself (`--list-tests`, every
spec's full name) and cross-checks it against the binary's own conformance.yaml
(`--list-conformance-tests`) and against buckets.tsv; it fails loudly on any difference in
count. `report` reads the ginkgo JSON report (or, failing that, the JUnit XML) from the
report dir, gives every test of the list one result and writes the Markdown report.
Standard library only.
"""

import argparse
import collections
import datetime
import json
import os
import re
import sys
import xml.etree.ElementTree as ET

AREAS = collections.OrderedDict([
    ("sig-api-machinery", "API machinery"),
    ("sig-apps", "apps"),
    ("sig-node", "node"),
    ("sig-network", "network"),
    ("sig-storage", "storage"),
    ("sig-auth", "auth"),
    ("sig-scheduling", "scheduling"),
    ("sig-instrumentation", "instrumentation"),
    ("sig-cli", "CLI"),
    ("sig-architecture", "architecture"),
])

# Result words, in the order the totals print them.
PASSED, FAILED, SKIPPED, NOT_RUN = "passed", "failed", "skipped", "not run"
FAILED_STATES = {"failed", "panicked", "timedout", "interrupted", "aborted"}


def area_of(name):
    m = re.match(r"\[(sig-[a-z-]+)\]", name)
    if not m:
        return "other"
    return AREAS.get(m.group(1), m.group(1))


def read_buckets(path):
    rows = {}
    if not path or not os.path.exists(path):
        return rows
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            cells = line.rstrip("\n").split("\t")
            row = dict(zip(header, cells))
            rows[row["codename"]] = row
    return rows


def read_names(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def die(msg):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


# --- list ---------------------------------------------------------------------------------

def conformance_yaml_codenames(path):
    """codename values of the binary's conformance.yaml, without a YAML library. Entries are
    `- testname: ...` blocks whose keys sit at two spaces; a long value continues on lines
    indented by four, folded into one line with single spaces (YAML's flow folding)."""
    names, current = [], None
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()

    def finish(v):
        v = v.strip()
        if v.startswith("'") and v.endswith("'"):
            v = v[1:-1].replace("''", "'")
        elif v.startswith('"') and v.endswith('"'):
            v = json.loads(v)
        names.append(v)

    for line in lines:
        if current is not None and line.startswith("    "):
            current += " " + line.strip()
            continue
        if current is not None:
            finish(current)
            current = None
        m = re.match(r"^(?:- |  )codename:\s*(.*)$", line)
        if m:
            current = m.group(1)
    if current is not None:
        finish(current)
    return names


def cmd_list(a):
    names = []
    with open(a.list_tests, encoding="utf-8") as f:
        for line in f:
            # "    path/file.go:123: [sig-x] full spec text"
            m = re.match(r"^\s+\S+:\d+: (.*)$", line.rstrip("\n"))
            if m and "[Conformance]" in m.group(1):
                names.append(m.group(1))
    names = sorted(set(names))
    if not names:
        die(f"no [Conformance] spec found in {a.list_tests}")
    problems = []
    checks = [("conformance.yaml", set(conformance_yaml_codenames(a.conformance_yaml)))]
    buckets = read_buckets(a.buckets)
    if buckets:
        checks.append(("buckets.tsv", set(buckets)))
    for label, other in checks:
        only_binary = sorted(set(names) - other)
        only_other = sorted(other - set(names))
        print(f"conformance list: {len(names)} specs in e2e.test, {len(other)} in {label}; "
              f"{len(only_binary)} only in e2e.test, {len(only_other)} only in {label}",
              file=sys.stderr)
        for n in only_binary:
            problems.append(f"  only in e2e.test (not in {label}): {n}")
        for n in only_other:
            problems.append(f"  only in {label} (not in e2e.test): {n}")
    for p in problems:
        print(p, file=sys.stderr)
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("\n".join(names) + "\n")
    if problems and a.strict:
        die("the conformance lists disagree (see above)")


# --- focus / smoke --------------------------------------------------------------------------

def go_regexp_quote(s):
    # regexp.QuoteMeta's set; Python's re.escape also escapes spaces, which RE2 rejects.
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", s)


def cmd_focus(a):
    names = read_names(a.names)
    # Ginkgo matches --focus against the suite's description ("Kubernetes e2e suite", from
    # RunSpecs in test/e2e) followed by the spec's full text, so the anchor names it too.
    print("^Kubernetes e2e suite (" + "|".join(go_regexp_quote(n) for n in names) + ")$")


def cmd_smoke(a):
    rows = read_buckets(a.buckets)
    if a.only:
        # An explicit bucket selection (e.g. "a" or "a,b"): every area.
        wanted = set(a.only.split(","))
        names = sorted(n for n, r in rows.items() if r["bucket"] in wanted)
    else:
        names = sorted(n for n, r in rows.items()
                       if r["bucket"] == "a" and n.startswith("[sig-api-machinery]"))
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("\n".join(names) + "\n")
    print(f"smoke selection: {len(names)} tests", file=sys.stderr)


def cmd_select(a):
    # Python's re stands in for Go's RE2 here; the two agree on the usual focus expressions.
    focus = re.compile(a.focus) if a.focus else None
    skip = re.compile(a.skip) if a.skip else None
    names = [n for n in read_names(a.list)
             if (focus is None or focus.search(n)) and not (skip and skip.search(n))]
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("\n".join(names) + ("\n" if names else ""))
    print(f"selection: {len(names)} of the conformance list", file=sys.stderr)


# --- progress -----------------------------------------------------------------------------

HEADER = re.compile(r"^(•|S|P)(?: \[(FAILED|PANICKED|TIMEDOUT|INTERRUPTED|ABORTED|SKIPPED|PENDING)\])?"
                    r"(?: \[([0-9.]+) seconds\])?$")
SUITE_HEADER = re.compile(r"^\[(SynchronizedBeforeSuite|BeforeSuite|SynchronizedAfterSuite|AfterSuite|ReportAfterSuite)\]"
                          r"(?: \[(FAILED|PANICKED|TIMEDOUT|INTERRUPTED|ABORTED)\])?")
ECHO = re.compile(r"^(Will run \d+ of \d+ specs|Ran \d+ of \d+ Specs|SUCCESS!|FAIL!|Ginkgo ran|Test Suite (Passed|Failed))")


def cmd_progress(a):
    """Copies e2e.test's output to the log and prints one line per finished spec, from
    ginkgo's verbose reporter: a delimiter, the spec's name, then a result header such as
    `• [12.3 seconds]` or `• [FAILED] [12.3 seconds]` (in parallel runs the name follows
    the header)."""
    done = collections.Counter()
    name, pending, after_delim = "", None, False
    started = datetime.datetime.now()

    def emit(state, secs, spec):
        done[state] += 1
        n = sum(done.values())
        spec = re.sub(r"(\[Conformance\]) \[[^\[\] ]+(?:, [^\[\] ]+)*\]$", r"\1", spec)
        elapsed = int((datetime.datetime.now() - started).total_seconds())
        print(f"[{n}/{a.total} {elapsed // 60}m{elapsed % 60:02d}s] {state.upper():7} {secs:>6}s  {spec[:170]}", flush=True)

    with open(a.log, "w", encoding="utf-8") as log:
        for raw in sys.stdin:
            log.write(raw)
            log.flush()
            line = raw.rstrip("\n")
            line = re.sub(r"^S+(?=(•|-{10,}|\[|$))", "", line) if line.startswith("S") and not line.startswith("S [") else line
            if ECHO.match(line):
                print(line, flush=True)
            if set(line) == {"-"} and len(line) >= 20:
                after_delim, name = True, ""
                continue
            m = HEADER.match(line)
            if m:
                word = m.group(2) or ("passed" if m.group(1) == "•" else "skipped")
                state = {"SKIPPED": "skipped", "PENDING": "skipped"}.get(word, word.lower())
                pending = (state if state in ("passed", "skipped") else "failed" if state == "failed" else state,
                           m.group(3) or "0")
                after_delim = False
                if name and pending[0] == "passed":
                    emit(pending[0], pending[1], name)
                    pending, name = None, ""
                continue
            m = SUITE_HEADER.match(line)
            if m and m.group(2):
                print(f"suite: {line}", flush=True)
                continue
            if pending and line.strip():
                spec = line.strip() if (line.startswith("[") and not line.startswith("[FAILED]")) else name
                emit(pending[0], pending[1], spec or "(unknown spec)")
                pending, name = None, ""
                continue
            if after_delim and line.strip():
                name, after_delim = line.strip(), False
    if pending:
        emit(pending[0], pending[1], name or "(unknown spec)")
    print("finished: " + ", ".join(f"{v} {k}" for k, v in sorted(done.items())), flush=True)


# --- report -------------------------------------------------------------------------------

def first_line(msg, limit=240):
    for line in (msg or "").splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


def results_from_json(path):
    """name -> (result, first failure line, seconds); plus suite-level failures."""
    with open(path, encoding="utf-8") as f:
        reports = json.load(f)
    results, suite_failures = {}, []
    for report in reports:
        for spec in report.get("SpecReports") or []:
            kind = spec.get("LeafNodeType", "")
            state = spec.get("State", "")
            failure = spec.get("Failure") or {}
            msg = failure.get("Message", "")
            if kind != "It":
                if state in FAILED_STATES:
                    where = failure.get("Location", {})
                    suite_failures.append(
                        f"{kind} {state}: {first_line(msg)} "
                        f"({os.path.basename(where.get('FileName', ''))}:{where.get('LineNumber', '')})")
                continue
            texts = [t for t in (spec.get("ContainerHierarchyTexts") or []) + [spec.get("LeafNodeText", "")] if t]
            name = " ".join(texts)
            secs = (spec.get("RunTime") or 0) / 1e9
            if state == "passed":
                results[name] = (PASSED, "", secs)
            elif state in FAILED_STATES:
                node = failure.get("FailureNodeType", "")
                why = first_line(msg)
                if node and node != "It":
                    why = f"[{node}] {why}"
                if state != "failed":
                    why = f"[{state}] {why}"
                results[name] = (FAILED, why, secs)
            elif state == "skipped":
                # Specs the focus/skip filters left out carry no message and never started;
                # a spec that called Skip() says why.
                if msg or secs > 0:
                    results[name] = (SKIPPED, first_line(msg), secs)
            elif state == "pending":
                results[name] = (SKIPPED, "pending", secs)
    return results, suite_failures


def results_from_junit(path):
    results = {}
    tree = ET.parse(path)
    for tc in tree.iter("testcase"):
        name = re.sub(r"^\[It\] ", "", tc.get("name", ""))
        secs = float(tc.get("time") or 0)
        fail = tc.find("failure")
        if fail is None:
            fail = tc.find("error")
        skip = tc.find("skipped")
        if fail is not None:
            results[name] = (FAILED, first_line(fail.get("message") or fail.text), secs)
        elif skip is not None:
            msg = skip.get("message") or ""
            if secs > 0 or (msg and msg != "skipped"):
                results[name] = (SKIPPED, first_line(msg), secs)
        else:
            results[name] = (PASSED, "", secs)
    return results, []


def normalize(why):
    why = re.sub(r'"[a-z0-9]+(?:-[a-z0-9]+)*-\d+"', '"<ns>"', why)
    return re.sub(r"\d+", "N", why)


def md_cell(s):
    return s.replace("|", "\\|").replace("\n", " ")


def read_baseline(path):
    """The totals line and per-test results of an earlier report (the upstream baseline)."""
    totals, results = "", {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("**") and "conformance tests" in line and not totals:
                totals = line.strip().strip("*")
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            if len(cells) >= 5 and cells[0].startswith("[") and cells[-3] in (PASSED, FAILED, SKIPPED, NOT_RUN):
                results[cells[0].replace("\\|", "|")] = cells[-3]
    return totals, results


def cmd_report(a):
    names = read_names(a.list)
    base_totals, base = read_baseline(a.baseline) if a.baseline else ("", {})
    buckets = read_buckets(a.buckets)
    json_path = os.path.join(a.report_dir, "ginkgo", "report.json")
    junit_path = os.path.join(a.report_dir, "junit_01.xml")
    source = None
    results, suite_failures = {}, []
    if os.path.exists(json_path):
        results, suite_failures = results_from_json(json_path)
        source = "ginkgo JSON report"
    elif os.path.exists(junit_path):
        results, suite_failures = results_from_junit(junit_path)
        source = "JUnit XML report"
    else:
        suite_failures.append("no report was written (e2e.test did not finish; see the log)")

    selected = set(read_names(a.selected)) if a.selected else None
    rows = []
    for n in names:
        if n in results:
            res, why, secs = results[n]
        else:
            res, why, secs = NOT_RUN, "", 0.0
            if selected is not None and n not in selected:
                why = "not selected"
            elif suite_failures:
                why = "suite-level failure (see above)"
            else:
                why = "no result recorded (did the run stop early?)"
        rows.append((n, res, why, secs))
    foreign = sorted(set(r for r in results if "[Conformance]" in r) - set(names))

    counts = collections.Counter(r[1] for r in rows)
    per_area = collections.OrderedDict((v, collections.Counter()) for v in AREAS.values())
    for n, res, _, _ in rows:
        per_area.setdefault(area_of(n), collections.Counter())[res] += 1

    total_line = (f"{counts[PASSED]} passed, {counts[FAILED]} failed, {counts[SKIPPED]} skipped"
                  f" ({counts[NOT_RUN]} not run) of {len(names)} conformance tests")

    out = []
    out.append(f"# {a.title}")
    out.append("")
    out.append(f"**{total_line}**")
    out.append("")
    if base_totals:
        out.append(f"Upstream's own control plane on the same selection and nodes "
                   f"([{os.path.basename(a.baseline)}]({os.path.basename(a.baseline)})): **{base_totals}**")
        out.append("")
        both = [n for n in names if base.get(n) == PASSED]
        behind = [n for n, res, _, _ in rows if res != PASSED and base.get(n) == PASSED]
        out.append(f"Of the {len(both)} tests upstream passes here, ironkube fails or did not run {len(behind)}.")
        out.append("")
    meta = [
        ("date", a.date or datetime.date.today().isoformat()),
        ("cluster", a.cluster),
        ("commit", a.commit),
        ("e2e.test", a.e2e_version),
        ("selection", a.selection),
        ("flags", f"`{a.flags}`" if a.flags else ""),
        ("duration", a.duration),
        ("results from", source or "none"),
    ]
    out.append("| | |")
    out.append("| --- | --- |")
    for k, v in meta:
        if v:
            out.append(f"| {k} | {md_cell(v)} |")
    out.append("")
    if a.notes:
        with open(a.notes, encoding="utf-8") as f:
            out.append(f.read().rstrip())
            out.append("")
    if suite_failures:
        out.append("## Suite-level failures")
        out.append("")
        for s in suite_failures:
            out.append(f"- {md_cell(s)}")
        out.append("")
    out.append("## Totals per area")
    out.append("")
    out.append("| area | tests | passed | failed | skipped | not run |")
    out.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for area, c in per_area.items():
        tests = sum(c.values())
        if tests:
            out.append(f"| {area} | {tests} | {c[PASSED]} | {c[FAILED]} | {c[SKIPPED]} | {c[NOT_RUN]} |")
    out.append(f"| **all** | **{len(names)}** | **{counts[PASSED]}** | **{counts[FAILED]}** | "
               f"**{counts[SKIPPED]}** | **{counts[NOT_RUN]}** |")
    out.append("")
    if foreign:
        out.append("## Results for [Conformance] specs not in the list")
        out.append("")
        for n in foreign:
            out.append(f"- {md_cell(n)}: {results[n][0]}")
        out.append("")
    reasons = collections.Counter(normalize(why) for _, res, why, _ in rows if res == FAILED)
    if reasons:
        out.append("## Most common failures")
        out.append("")
        out.append("| tests | first line of the failure (namespaces and numbers elided) |")
        out.append("| ---: | --- |")
        for why, n in reasons.most_common(15):
            out.append(f"| {n} | {md_cell(why)} |")
        out.append("")
    out.append("## Every conformance test")
    out.append("")
    have_buckets = bool(buckets)
    if a.only_selected and selected is not None:
        out.append(f"Only the {len(selected)} selected tests are listed; "
                   f"the other {len(names) - len(selected)} of the list were not selected.")
        out.append("")
    out.append("| test | area | " + ("bucket | " if have_buckets else "") + ("baseline | " if base else "") + "result | seconds | first line of the failure |")
    out.append("| --- | --- | " + ("--- | " if have_buckets else "") + ("--- | " if base else "") + "--- | ---: | --- |")
    for n, res, why, secs in rows:
        if a.only_selected and selected is not None and n not in selected:
            continue
        bucket = buckets.get(n, {}).get("bucket", "?") if have_buckets else None
        secs_s = f"{secs:.0f}" if res != NOT_RUN else ""
        cells = [md_cell(n), area_of(n)] + ([bucket] if have_buckets else []) + ([base.get(n, NOT_RUN)] if base else []) + [res, secs_s, md_cell(why)]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("\n".join(out))
    print(total_line)
    if suite_failures:
        for s in suite_failures:
            print(f"suite: {s}", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("list")
    s.add_argument("--list-tests", required=True)
    s.add_argument("--conformance-yaml", required=True)
    s.add_argument("--buckets")
    s.add_argument("--out", required=True)
    s.add_argument("--strict", action="store_true")
    s = sub.add_parser("focus")
    s.add_argument("--names", required=True)
    s = sub.add_parser("smoke")
    s.add_argument("--buckets", required=True)
    s.add_argument("--only", help="comma-separated buckets to select instead of the smoke set")
    s.add_argument("--out", required=True)
    s = sub.add_parser("progress")
    s.add_argument("--log", required=True)
    s.add_argument("--total", type=int, default=0)
    s = sub.add_parser("select")
    s.add_argument("--list", required=True)
    s.add_argument("--focus")
    s.add_argument("--skip")
    s.add_argument("--out", required=True)
    s = sub.add_parser("report")
    s.add_argument("--list", required=True)
    s.add_argument("--report-dir", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--buckets")
    s.add_argument("--selected", help="names the run selected (one a line); others are 'not selected'")
    s.add_argument("--only-selected", action="store_true", help="list only the selected tests' rows")
    s.add_argument("--title", default="Conformance run")
    s.add_argument("--date")
    s.add_argument("--cluster", default="")
    s.add_argument("--commit", default="")
    s.add_argument("--e2e-version", default="")
    s.add_argument("--selection", default="")
    s.add_argument("--flags", default="")
    s.add_argument("--duration", default="")
    s.add_argument("--notes", help="a Markdown file inserted after the header")
    s.add_argument("--baseline", help="an earlier report (upstream's baseline) to set beside each result")
    a = p.parse_args()
    {"list": cmd_list, "focus": cmd_focus, "smoke": cmd_smoke, "select": cmd_select, "progress": cmd_progress,
     "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    main()
