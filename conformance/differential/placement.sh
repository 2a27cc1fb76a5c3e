#!/usr/bin/env bash
# The scheduler's placement table against a real scheduler: upstream kube-scheduler v1.33
# (built by conformance/build.sh) by default, or ironkube-scheduler, each over a fresh etcd
# and API server (ironkube's by default) with no controller manager and no kubelet:
#
#   conformance/differential/placement.sh [--scheduler upstream|ironkube] [--apiserver ironkube|upstream] [--only NAME]
#
# The table is scheduler/testdata/placement-cases.json, which the scheduler's unit tests
# write from the cases they check (so the expectations tested against ironkube's plugins
# are the ones checked here against upstream's). Prints a Markdown table, one row per case,
# and exits non-zero when any case differs.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=hack/lib/deps.sh
source "$root/hack/lib/deps.sh"
# shellcheck source=hack/bench/lib.sh
source "$root/hack/bench/lib.sh"

scheduler=upstream
apiserver=ironkube
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --scheduler) scheduler="$2"; shift 2 ;;
    --apiserver) apiserver="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    *) die "unknown argument $1 (see the header of $0)" ;;
  esac
done

deps::build_and_run
command -v openssl >/dev/null 2>&1 || deps::apt_install openssl
target="${CARGO_TARGET_DIR:-$root/target}/release"
out="${CONFORMANCE_OUT:-$root/conformance/_out}"
log "cargo build --release -p ironkube-apiserver -p ironkube-scheduler"
cargo build --release --manifest-path "$root/Cargo.toml" -p ironkube-apiserver -p ironkube-scheduler
for bin in kube-scheduler kube-apiserver; do
  { [ "$bin" = kube-scheduler ] && [ "$scheduler" = upstream ]; } || { [ "$bin" = kube-apiserver ] && [ "$apiserver" = upstream ]; } || continue
  [ -x "$out/$bin" ] || { log "building upstream $bin"; "$root/conformance/build.sh" "$bin"; }
done
case "$apiserver" in
  ironkube) server="$target/ironkube-apiserver" ;;
  upstream) server="$out/kube-apiserver" ;;
  *) die "--apiserver wants ironkube or upstream" ;;
esac
case "$scheduler" in
  ironkube) sched="$target/ironkube-scheduler" ;;
  upstream) sched="$out/kube-scheduler" ;;
  *) die "--scheduler wants ironkube or upstream" ;;
esac

bench::workdir ironkube-placement
bench::pki
bench::start_server "$work/cluster" "$apiserver API server" "$server"
cat > "$work/scheduler.yaml" <<CONFIG
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $work/cluster/kubeconfig
  contentType: application/json
leaderElection:
  leaderElect: false
CONFIG
log "starting $sched"
"$sched" --config "$work/scheduler.yaml" > "$work/scheduler.log" 2>&1 &
pids+=("$!")
echo "# Placement table against $scheduler's scheduler ($("$sched" --version 2>/dev/null | head -1 || echo "$sched")), $apiserver's API server, $(date -u +%Y-%m-%d)"
echo
python3 "$root/conformance/differential/placement.py" --kubeconfig "$work/cluster/kubeconfig" \
  --cases "$root/scheduler/testdata/placement-cases.json" ${only:+--only "$only"}
