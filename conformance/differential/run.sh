#!/usr/bin/env bash
# The differential runner: every scenario in scenarios/*.sh against upstream's control
# plane (kube-apiserver, kube-controller-manager and kube-scheduler v1.33 built by
# conformance/build.sh and started by conformance/baseline.sh) and against `ironkube up`,
# both fresh, on this machine, with no nodes; outputs normalised by normalize.py.
#
#   conformance/differential/run.sh [--update] [SCENARIO...]
#
# Prints each scenario as `same` or with its diff (upstream first), then the totals:
# scenarios, kubectl invocations, scenarios that differ. --update writes upstream's output
# to scenarios/<name>.upstream, the golden files ironkube/tests/differential.rs checks
# against in every test run (without Go). Outputs and logs stay in conformance/_out/differential.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${CONFORMANCE_OUT:-$root/conformance/_out}/differential"
log() { printf '==> [differential %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

update=""
names=()
for a in "$@"; do
  case "$a" in
    --update) update=1 ;;
    -*) die "unknown flag $a" ;;
    *) names+=("$a") ;;
  esac
done
if [ "${#names[@]}" -eq 0 ]; then
  for f in "$here"/scenarios/*.sh; do names+=("$(basename "$f" .sh)"); done
fi

"$root/conformance/build.sh" control-plane
log "cargo build --release -p ironkube"
cargo build --release --manifest-path "$root/Cargo.toml" -p ironkube >&2

rm -rf "$out"
mkdir -p "$out/upstream" "$out/ironkube"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# wait_for FILE PATTERN PID: until FILE has a line matching PATTERN.
wait_for() {
  for _ in $(seq 600); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || die "$(basename "$1" .log) exited; see $1"
    sleep 0.5
  done
  die "timed out waiting for $2 in $1"
}

log "starting upstream's control plane"
"$root/conformance/baseline.sh" "$out/upstream/cluster" > "$out/upstream.log" 2>&1 &
pids+=($!)
wait_for "$out/upstream.log" 'baseline control plane is ready' "${pids[-1]}"
log "starting ironkube"
"${CARGO_TARGET_DIR:-$root/target}/release/ironkube" up --data-dir "$out/ironkube/cluster" \
  --secure-port "$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')" \
  > "$out/ironkube.log" 2>&1 &
pids+=($!)
wait_for "$out/ironkube.log" 'ironkube is ready' "${pids[-1]}"
# Give both controller managers a moment to create the system namespaces' accounts.
sleep 3

calls=0
differ=()
for name in "${names[@]}"; do
  scenario="$here/scenarios/$name.sh"
  [ -f "$scenario" ] || die "no scenario $scenario"
  KUBECACHEDIR="$out/upstream/cache" "$here/run-scenario.sh" "$out/upstream/cluster/admin.kubeconfig" "$scenario" > "$out/upstream/$name.out"
  KUBECACHEDIR="$out/ironkube/cache" "$here/run-scenario.sh" "$out/ironkube/cluster/admin.kubeconfig" "$scenario" > "$out/ironkube/$name.out"
  n="$(grep -c '^\$ kubectl ' "$out/upstream/$name.out" || true)"
  calls=$((calls + n))
  if [ -n "$update" ]; then
    cp "$out/upstream/$name.out" "$here/scenarios/$name.upstream"
  fi
  if diff -u --label "upstream/$name" --label "ironkube/$name" "$out/upstream/$name.out" "$out/ironkube/$name.out" > "$out/$name.diff"; then
    echo "$name: same ($n kubectl calls)"
  else
    echo "$name: DIFFERS ($n kubectl calls)"
    cat "$out/$name.diff"
    differ+=("$name")
  fi
done
echo
echo "${#names[@]} scenarios, $calls kubectl invocations, ${#differ[@]} scenarios differ${differ:+: ${differ[*]}}"
