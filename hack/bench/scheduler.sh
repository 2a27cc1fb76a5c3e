#!/usr/bin/env bash
# Scheduler throughput, ironkube-scheduler and upstream kube-scheduler v1.33 side by side:
#
#   hack/bench/scheduler.sh [--nodes N] [--pods M] [--apiserver ironkube|upstream] [--only ironkube|upstream]
#
# For each scheduler: a fresh etcd and API server (the same one for both: ironkube's by
# default), N Ready nodes (32 CPU, 256Gi, 110 pods, ten zones) and M pending pods (100m CPU,
# 500Mi) stored first with no scheduler running; then the scheduler starts with the default
# profile (no leader election; client QPS/burst raised to 5000 so upstream's client-side rate
# limit is not what is measured; JSON on the wire, which ironkube's API server needs) and
# ironkube-bench counts bindings through a watch. It reports pods bound per second from the
# first binding to the last, and the time to the first binding (start-up, informer sync).
# Results go to stdout; commit them as a dated report under docs/bench/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=hack/lib/deps.sh
source "$root/hack/lib/deps.sh"
# shellcheck source=hack/bench/lib.sh
source "$root/hack/bench/lib.sh"

nodes=1000
pods=10000
apiserver=ironkube
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) nodes="$2"; shift 2 ;;
    --pods) pods="$2"; shift 2 ;;
    --apiserver) apiserver="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    *) die "unknown argument $1 (see the header of $0)" ;;
  esac
done

deps::build_and_run
command -v openssl >/dev/null 2>&1 || deps::apt_install openssl
target="${CARGO_TARGET_DIR:-$root/target}/release"
log "cargo build --release -p ironkube-apiserver -p ironkube-scheduler -p ironkube-testkit"
cargo build --release --manifest-path "$root/Cargo.toml" -p ironkube-apiserver -p ironkube-scheduler -p ironkube-testkit
out="${CONFORMANCE_OUT:-$root/conformance/_out}"
need_upstream=()
[ "$only" = ironkube ] || need_upstream+=(kube-scheduler)
[ "$apiserver" = upstream ] && need_upstream+=(kube-apiserver)
for bin in "${need_upstream[@]}"; do
  if [ ! -x "$out/$bin" ]; then
    log "building upstream $bin (conformance/build.sh $bin)"
    "$root/conformance/build.sh" "$bin"
  fi
done
case "$apiserver" in
  ironkube) server_binary="$target/ironkube-apiserver"; server_name="ironkube-apiserver" ;;
  upstream) server_binary="$out/kube-apiserver"; server_name="upstream kube-apiserver $("$out/kube-apiserver" --version 2>/dev/null | awk '{print $2}')" ;;
  *) die "--apiserver wants ironkube or upstream" ;;
esac

bench::workdir ironkube-bench
bench::pki

# config FILE KUBECONFIG: the KubeSchedulerConfiguration both schedulers read.
config() {
  cat > "$1" <<CONFIG
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $2
  contentType: application/json
  qps: 5000
  burst: 5000
leaderElection:
  leaderElect: false
CONFIG
}

# run_scheduler KEY NAME COMMAND...: a fresh API server, the objects, the scheduler; prints
# the results under the heading NAME.
run_scheduler() {
  local dir="$work/$1" name="$2"; shift 2
  bench::start_server "$dir" "$server_name" "$server_binary"
  config "$dir/config.yaml" "$dir/kubeconfig"
  echo "## $name"
  echo
  echo '```text'
  log "$name: $nodes nodes, $pods pods"
  "$target/ironkube-bench" scheduler --kubeconfig "$dir/kubeconfig" --nodes "$nodes" --pods "$pods" \
    --log "$dir/scheduler.log" -- "$@" --config "$dir/config.yaml" \
    || { tail -20 "$dir/scheduler.log" >&2; die "$name did not bind every pod"; }
  echo '```'
  echo
  bench::stop_server
}

echo "# Scheduler throughput, $(date -u +%Y-%m-%d)"
echo
echo "Commit $(git -C "$root" rev-parse --short HEAD), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); API server: $server_name; $nodes nodes, $pods pods."
echo
[ "$only" = upstream ] || run_scheduler ironkube ironkube-scheduler "$target/ironkube-scheduler"
[ "$only" = ironkube ] || run_scheduler upstream "upstream kube-scheduler $("$out/kube-scheduler" --version 2>/dev/null | awk '{print $2}')" "$out/kube-scheduler"
