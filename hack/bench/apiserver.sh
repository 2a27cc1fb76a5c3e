#!/usr/bin/env bash
# API server benchmarks, ironkube and upstream side by side on this machine:
#
#   hack/bench/apiserver.sh [--watchers N] [--configmaps N] [--only ironkube|upstream]
#
# For each server it starts a fresh etcd (Debian's, on free loopback ports) and the server
# alone (target/release/ironkube-apiserver, or upstream kube-apiserver v1.33 built by
# conformance/build.sh kube-apiserver) with the same certificates and flags, then runs
# ironkube-bench:
#   - `watchers`: N pod watches on one server; how many etcd watchers that added (from
#     etcd's own metrics), how many watchers saw one new pod, and the fan-out latency;
#   - `configmaps`: stores N ConfigMaps (16 writers) and reports the server's RSS.
# The results go to stdout; commit them as a dated report under docs/bench/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=hack/lib/deps.sh
source "$root/hack/lib/deps.sh"
# shellcheck source=hack/bench/lib.sh
source "$root/hack/bench/lib.sh"

watchers=1000
configmaps=10000
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --watchers) watchers="$2"; shift 2 ;;
    --configmaps) configmaps="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    *) die "unknown argument $1 (see the header of $0)" ;;
  esac
done

deps::build_and_run
command -v openssl >/dev/null 2>&1 || deps::apt_install openssl
target="${CARGO_TARGET_DIR:-$root/target}/release"
log "cargo build --release -p ironkube-apiserver -p ironkube-testkit"
cargo build --release --manifest-path "$root/Cargo.toml" -p ironkube-apiserver -p ironkube-testkit
upstream="${CONFORMANCE_OUT:-$root/conformance/_out}/kube-apiserver"
if [ "$only" != "ironkube" ] && [ ! -x "$upstream" ]; then
  log "building upstream kube-apiserver (conformance/build.sh kube-apiserver)"
  "$root/conformance/build.sh" kube-apiserver
fi

bench::workdir ironkube-bench

bench::pki

# run_server DIR NAME BINARY: etcd, the server, both benchmarks; prints the results.
run_server() {
  local name="$2" binary="$3" dir="$work/$1"
  bench::start_server "$dir" "$name" "$binary"
  local client="$etcd_client_port" kubectl=/usr/lib/google-cloud-sdk/bin/kubectl.1.33
  # Without a controller manager, nothing creates the ServiceAccount upstream's admission
  # wants before it admits a pod.
  "$kubectl" --kubeconfig "$dir/kubeconfig" create namespace bench-watch >/dev/null
  "$kubectl" --kubeconfig "$dir/kubeconfig" create serviceaccount default -n bench-watch >/dev/null 2>&1 || true
  echo "## $name"
  echo
  echo '```text'
  echo "server RSS when ready: $(awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status") KiB"
  log "$name: $watchers watchers"
  "$target/ironkube-bench" watchers --kubeconfig "$dir/kubeconfig" \
    --etcd-metrics "http://127.0.0.1:$client/metrics" --count "$watchers"
  log "$name: $configmaps ConfigMaps"
  "$target/ironkube-bench" configmaps --kubeconfig "$dir/kubeconfig" --count "$configmaps" --pid "$server_pid"
  echo '```'
  echo
  bench::stop_server
}

echo "# API server benchmarks, $(date -u +%Y-%m-%d)"
echo
echo "Commit $(git -C "$root" rev-parse --short HEAD), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)."
echo
[ "$only" = upstream ] || run_server ironkube "ironkube-apiserver" "$target/ironkube-apiserver"
[ "$only" = ironkube ] || run_server upstream "upstream kube-apiserver $("$upstream" --version 2>/dev/null | awk '{print $2}')" "$upstream"
