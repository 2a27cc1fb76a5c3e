#!/usr/bin/env bash
# Runs upstream's Kubernetes v1.33 conformance tests (e2e.test) and writes a dated report.
#
#   conformance/run.sh [--smoke | --buckets a,b,...] [--focus REGEX] [--skip REGEX] [--parallel N]
#                      [--simulated-nodes N]
#                      [--kubeconfig PATH | --baseline | --fresh]
#                      [--content-type TYPE] [--timeout DURATION] [--report FILE | --no-report]
#                      [-- EXTRA_E2E_FLAGS...]
#
# The cluster: --kubeconfig PATH, else $KUBECONFIG, else (or with --fresh) a fresh ironkube
# (`target/release/ironkube up` on a temporary data dir and free loopback port; built with
# `cargo build --release -p ironkube` when missing; $IRONKUBE names another binary, and
# $IRONKUBE_COMMIT then says what it was built from). --baseline runs against upstream's own
# kube-apiserver, kube-controller-manager and kube-scheduler instead (baseline.sh).
#
# The selection: --focus (default '\[Conformance\]') and --skip, or --smoke: the API
# machinery conformance tests that need no running container (bucket "a" of buckets.tsv),
# or --buckets: every test of the listed buckets of buckets.tsv (a: API only; b: running
# pods; c: pod networking; d: exec/logs; e: webhook or aggregated server pods; f: 2 nodes).
# Tests outside the selection are reported as "not run".
#
# --simulated-nodes N gives the cluster N simulated nodes (ironkube-simnodes: Ready Nodes
# with fresh Leases, pods bound to them marked Running without any container), for the
# tests that need schedulable nodes but no running containers. With --baseline they are
# registered with upstream's control plane the same way.
#
# --content-type is what the test client sends built-in types as: application/json
# (default, while ironkube serves no protobuf) or application/vnd.kubernetes.protobuf (what
# certified runs use). --parallel N runs N ginkgo processes ([Serial] tests still run alone,
# at the end). --timeout bounds the whole suite (default 24h).
#
# It prints a line per finished test, then `N passed, M failed, K skipped` over the v1.33
# conformance list, and writes docs/conformance/<date>[-smoke|-baseline].md (or --report
# FILE). Logs and the raw reports stay in conformance/_out/runs/<time>/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="${CONFORMANCE_OUT:-$here/_out}"

log() { printf '==> [run %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }

focus='\[Conformance\]'
skip=''
parallel=1
kubeconfig="${KUBECONFIG:-}"
mode=auto            # auto | kubeconfig | fresh | baseline
smoke=
buckets=
sim_nodes=0
content_type=application/json
suite_timeout=24h
report=
no_report=
extra=()

while [ $# -gt 0 ]; do
  case "$1" in
    --focus) focus="$2"; shift 2 ;;
    --focus=*) focus="${1#*=}"; shift ;;
    --skip) skip="$2"; shift 2 ;;
    --skip=*) skip="${1#*=}"; shift ;;
    --parallel) parallel="$2"; shift 2 ;;
    --parallel=*) parallel="${1#*=}"; shift ;;
    --kubeconfig) kubeconfig="$2"; mode=kubeconfig; shift 2 ;;
    --kubeconfig=*) kubeconfig="${1#*=}"; mode=kubeconfig; shift ;;
    --fresh) mode=fresh; shift ;;
    --baseline) mode=baseline; shift ;;
    --smoke) smoke=1; shift ;;
    --buckets) buckets="$2"; shift 2 ;;
    --buckets=*) buckets="${1#*=}"; shift ;;
    --simulated-nodes) sim_nodes="$2"; shift 2 ;;
    --simulated-nodes=*) sim_nodes="${1#*=}"; shift ;;
    --content-type) content_type="$2"; shift 2 ;;
    --content-type=*) content_type="${1#*=}"; shift ;;
    --timeout) suite_timeout="$2"; shift 2 ;;
    --timeout=*) suite_timeout="${1#*=}"; shift ;;
    --report) report="$2"; shift 2 ;;
    --report=*) report="${1#*=}"; shift ;;
    --no-report) no_report=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ "$parallel" =~ ^[1-9][0-9]*$ ]] || die "--parallel wants a positive number, not $parallel"
[[ "$sim_nodes" =~ ^[0-9]+$ ]] || die "--simulated-nodes wants a number, not $sim_nodes"
if [ "$mode" = auto ]; then
  if [ -n "$kubeconfig" ]; then mode=kubeconfig; else mode=fresh; fi
fi
command -v python3 >/dev/null 2>&1 || die "python3 not found (report.py needs it)"

started=$(date +%s)
stamp="$(date +%Y%m%d-%H%M%S)"
work="$out/runs/$stamp"
mkdir -p "$work"
log "work dir: $work"

# --- 1. binaries ------------------------------------------------------------------------
targets=(e2e.test)
[ "$parallel" -gt 1 ] && targets+=(ginkgo)
"$here/build.sh" "${targets[@]}"
e2e="$out/e2e.test"
e2e_version="$("$e2e" --version 2>/dev/null | head -1 || true)"

# kubectl for the sig-cli tests: stock v1.33 when the machine has it.
kubectl_path="${KUBECTL:-}"
if [ -z "$kubectl_path" ]; then
  if [ -x /usr/lib/google-cloud-sdk/bin/kubectl.1.33 ]; then
    kubectl_path=/usr/lib/google-cloud-sdk/bin/kubectl.1.33
  else
    kubectl_path="$(command -v kubectl || echo kubectl)"
  fi
fi

# --- 2. the conformance list, from the binary itself --------------------------------------
list="$out/conformance-list.txt"
if [ ! -s "$list" ] || [ "$list" -ot "$e2e" ] || [ "$list" -ot "$here/buckets.tsv" ]; then
  log "deriving the conformance list from e2e.test (--list-tests, --list-conformance-tests)"
  "$e2e" --list-tests > "$out/list-tests.txt" 2>"$out/list-tests.err" \
    || { cat "$out/list-tests.err" >&2; die "e2e.test --list-tests failed"; }
  "$e2e" --list-conformance-tests > "$out/conformance.yaml" 2>&1 \
    || die "e2e.test --list-conformance-tests failed"
  python3 "$here/report.py" list --list-tests "$out/list-tests.txt" \
    --conformance-yaml "$out/conformance.yaml" --buckets "$here/buckets.tsv" --out "$list.tmp"
  mv "$list.tmp" "$list"
fi
log "conformance list: $(wc -l < "$list") tests ($list)"

# --- 3. the selection ---------------------------------------------------------------------
selected="$work/selected.txt"
if [ -n "$smoke" ] || [ -n "$buckets" ]; then
  python3 "$here/report.py" smoke --buckets "$here/buckets.tsv" ${buckets:+--only "$buckets"} --out "$selected"
  # Only names that are in the binary's list (a stale buckets.tsv must not select nothing).
  grep -Fxf "$list" "$selected" > "$selected.tmp" || true
  mv "$selected.tmp" "$selected"
  # --skip still applies: drop the selected names it matches (the focus lists names).
  if [ -n "$skip" ]; then
    grep -Ev -- "$skip" "$selected" > "$selected.tmp" || true
    mv "$selected.tmp" "$selected"
  fi
  focus="$(python3 "$here/report.py" focus --names "$selected")"
  skipped_by="${skip:+ (less those matching --skip '$skip')}"
  skip=''
  if [ -n "$buckets" ]; then
    selection="buckets $buckets of conformance/buckets.tsv$skipped_by: $(wc -l < "$selected") tests"
  else
    selection="smoke: the $(wc -l < "$selected") sig-api-machinery tests of bucket (a) in conformance/buckets.tsv"
  fi
else
  python3 "$here/report.py" select --list "$list" --focus "$focus" ${skip:+--skip "$skip"} --out "$selected"
  selection="--focus '$focus'${skip:+ --skip '$skip'}"
fi
n_selected=$(grep -c . "$selected" || true)
[ "$n_selected" -gt 0 ] || die "the selection matches no conformance test"
log "selected $n_selected conformance tests"

# --- 4. the cluster -----------------------------------------------------------------------
cluster_pid=
simnodes_pid=
cleanup() {
  local rc=$?
  if [ -n "$simnodes_pid" ]; then kill -TERM "$simnodes_pid" 2>/dev/null || true; fi
  if [ -n "$cluster_pid" ] && kill -0 "$cluster_pid" 2>/dev/null; then
    log "stopping the cluster (pid $cluster_pid)"
    kill -TERM "$cluster_pid" 2>/dev/null || true
    for _ in $(seq 1 120); do kill -0 "$cluster_pid" 2>/dev/null || break; sleep 1; done
    kill -KILL "$cluster_pid" 2>/dev/null || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_for_line FILE PATTERN SECONDS PID: waits until FILE has a line matching PATTERN.
wait_for_line() {
  local i
  for i in $(seq 1 "$3"); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$4" 2>/dev/null || { tail -20 "$1" >&2; die "the cluster exited before it was ready"; }
    sleep 1
  done
  tail -20 "$1" >&2
  die "the cluster was not ready after $3 s"
}

commit="$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no -- . ':!conformance' ':!docs/conformance' 2>/dev/null)" ]; then
  commit="$commit (with uncommitted changes)"
fi

case "$mode" in
  kubeconfig)
    [ -r "$kubeconfig" ] || die "cannot read kubeconfig $kubeconfig"
    cluster="the cluster of $kubeconfig"
    ;;
  fresh)
    ironkube="${IRONKUBE:-${CARGO_TARGET_DIR:-$root/target}/release/ironkube}"
    if [ -n "${IRONKUBE:-}" ]; then
      [ -x "$ironkube" ] || die "IRONKUBE=$ironkube is not an executable"
      commit="${IRONKUBE_COMMIT:-unknown (IRONKUBE=$ironkube)}"
    elif [ ! -x "$ironkube" ]; then
      log "building ironkube (cargo build --release -p ironkube)"
      (cd "$root" && cargo build --release -p ironkube) || die "building ironkube failed"
    fi
    port="$(free_port)"
    log "starting ironkube on 127.0.0.1:$port (data dir $work/cluster, log $work/cluster.log)"
    sim_flag=()
    [ "$sim_nodes" -gt 0 ] && sim_flag=(--simulated-nodes "$sim_nodes")
    # As root, ironkube runs a real node (containerd + kubelet) with every image built under
    # $out/images imported; its pods go with the cluster when the run ends.
    "$ironkube" up --data-dir "$work/cluster" --bind-address 127.0.0.1 --secure-port "$port" \
      --images-dir "$out/images" --stop-pods "${sim_flag[@]}" > "$work/cluster.log" 2>&1 &
    cluster_pid=$!
    wait_for_line "$work/cluster.log" 'ironkube is ready' 180 "$cluster_pid"
    kubeconfig="$work/cluster/admin.kubeconfig"
    [ -r "$kubeconfig" ] || die "ironkube said it is ready but wrote no $kubeconfig"
    cluster="a fresh ironkube ($("$ironkube" --version 2>/dev/null | head -1 || echo ironkube))"
    ;;
  baseline)
    "$here/build.sh" control-plane
    log "starting upstream's control plane (baseline.sh; log $work/cluster.log)"
    "$here/baseline.sh" "$work/cluster" > "$work/cluster.log" 2>&1 &
    cluster_pid=$!
    wait_for_line "$work/cluster.log" 'baseline control plane is ready' 300 "$cluster_pid"
    kubeconfig="$work/cluster/admin.kubeconfig"
    cluster="upstream kube-apiserver, kube-controller-manager and kube-scheduler $("$out/kube-apiserver" --version 2>/dev/null | awk '{print $2}') with etcd $(etcd --version 2>/dev/null | awk '/etcd Version/ {print $3}'), no nodes"
    ;;
esac
if [ "$sim_nodes" -gt 0 ] && [ "$mode" != fresh ]; then
  simnodes="${CARGO_TARGET_DIR:-$root/target}/release/ironkube-simnodes"
  if [ ! -x "$simnodes" ]; then
    log "building ironkube-simnodes (cargo build --release -p ironkube-controllers --bin ironkube-simnodes)"
    (cd "$root" && cargo build --release -p ironkube-controllers --bin ironkube-simnodes) || die "building ironkube-simnodes failed"
  fi
  log "starting $sim_nodes simulated nodes (log $work/simnodes.log)"
  "$simnodes" --kubeconfig "$kubeconfig" --nodes "$sim_nodes" > "$work/simnodes.log" 2>&1 &
  simnodes_pid=$!
fi
if [ "$sim_nodes" -gt 0 ]; then
  for _ in $(seq 1 120); do
    ready="$("$kubectl_path" --kubeconfig "$kubeconfig" get nodes --no-headers 2>/dev/null | grep -c ' Ready' || true)"
    [ "$ready" -ge "$sim_nodes" ] && break
    sleep 1
  done
  cluster="$cluster, with $sim_nodes simulated nodes"
  echo "The cluster had $sim_nodes simulated nodes (ironkube-simnodes): Ready Nodes with fresh Leases; pods bound to them are marked Running and Ready without any container running. Passes of tests that need running containers would mean nothing: the selection leaves them out." >> "$work/sim-note.md"
fi
log "cluster: $cluster"

server_version="$("$kubectl_path" --kubeconfig "$kubeconfig" version -o json 2>/dev/null \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])' 2>/dev/null || echo unknown)"
nodes="$("$kubectl_path" --kubeconfig "$kubeconfig" get nodes -o name 2>/dev/null | grep -c . || true)"
log "server version $server_version, $nodes node(s)"

# --- 5. the run ---------------------------------------------------------------------------
notes="$work/notes.md"
: > "$notes"
[ -f "$work/sim-note.md" ] && cat "$work/sim-note.md" >> "$notes"
e2e_flags=(
  --provider=skeleton
  --kubeconfig="$kubeconfig"
  --report-dir="$work/report"
  --report-complete-ginkgo
  --kube-api-content-type="$content_type"
  --kubectl-path="$kubectl_path"
)
if [ "$nodes" -eq 0 ]; then
  # The suite's setup fails with "there are currently no ready, schedulable nodes" unless
  # the node count is given; with it, the tests run (and those needing nodes fail).
  e2e_flags+=(--num-nodes=0)
  echo "The cluster had no nodes: e2e.test ran with \`--num-nodes=0\`, without which the suite's setup aborts every test." >> "$notes"
fi
e2e_flags+=("${extra[@]}")
ginkgo_flags=(--focus="$focus" --timeout="$suite_timeout" --no-color --v)
[ -n "$skip" ] && ginkgo_flags+=(--skip="$skip")

if [ "$parallel" -gt 1 ]; then
  cmd=("$out/ginkgo" --procs="$parallel" "${ginkgo_flags[@]}" "$e2e" -- "${e2e_flags[@]}")
else
  cmd=("$e2e" "${e2e_flags[@]}" "${ginkgo_flags[@]/#--/--ginkgo.}")
fi
printf '%q ' "${cmd[@]}" > "$work/command.txt"
log "running e2e.test: $n_selected tests, $parallel process(es); full log $work/e2e.log"
set +e
( cd "$work" && "${cmd[@]}" ) 2>&1 | python3 "$here/report.py" progress --log "$work/e2e.log" --total "$n_selected"
e2e_rc=${PIPESTATUS[0]}
set -e
log "e2e.test exited with status $e2e_rc after $(( $(date +%s) - started ))s"

# --- 6. the report ------------------------------------------------------------------------
elapsed=$(( $(date +%s) - started ))
today="$(date +%Y-%m-%d)"
if [ -z "$report" ]; then
  suffix=""
  [ -n "$smoke" ] && suffix="-smoke"
  [ -n "$buckets" ] && suffix="-buckets-${buckets//,/}"
  [ "$mode" = baseline ] && suffix="$suffix-baseline"
  report="$root/docs/conformance/$today$suffix.md"
fi
title="Conformance run $today"
[ -n "$smoke" ] && title="$title (smoke)"
[ "$mode" = baseline ] && title="$title: upstream control plane baseline"
mkdir -p "$(dirname "$report")"
flags_shown="--content-type $content_type --parallel $parallel${extra[*]:+ -- ${extra[*]}}"
python3 "$here/report.py" report --list "$list" --report-dir "$work/report" \
  --buckets "$here/buckets.tsv" --selected "$selected" --out "$report.tmp" \
  --title "$title" --date "$today" --cluster "$cluster (server version $server_version, $nodes nodes)" \
  --commit "$commit" --e2e-version "$e2e_version (k8s.io/kubernetes $(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$here/go.mod"))" \
  --selection "$selection" --flags "$flags_shown" \
  --duration "$((elapsed / 60)) min $((elapsed % 60)) s" --notes "$notes" | tee "$work/totals.txt"
if [ -n "$no_report" ]; then
  mv "$report.tmp" "$work/report.md"
  log "report: $work/report.md"
else
  mv "$report.tmp" "$report"
  cp "$report" "$work/report.md"
  log "report: $report"
fi
