#!/usr/bin/env bash
# Runs one differential scenario against the cluster of KUBECONFIG and prints what kubectl
# printed, normalised (normalize.py):
#
#   conformance/differential/run-scenario.sh KUBECONFIG SCENARIO.sh
#
# A scenario is a bash script that calls `k ARGS...` (kubectl 1.33, or $KUBECTL): each call
# prints `$ kubectl ARGS`, kubectl's stdout and stderr, and `[exit N]`. Scenarios work in
# namespaces of their own and create the `default` ServiceAccount they need (upstream's
# API server refuses pods without one; a cluster with controllers may have made it).
set -uo pipefail
[ $# -eq 2 ] || { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export KUBECONFIG="$1"
KUBECTL="${KUBECTL:-/usr/lib/google-cloud-sdk/bin/kubectl.1.33}"
export KUBECACHEDIR="${KUBECACHEDIR:-$(mktemp -d)}"
k() {
  printf '$ kubectl %s\n' "$*"
  "$KUBECTL" "$@" 2>&1
  printf '[exit %d]\n' "$?"
}
# ensure_sa NS: the namespace's default ServiceAccount, silently.
ensure_sa() {
  "$KUBECTL" create serviceaccount default -n "$1" >/dev/null 2>&1 || true
}
# manifest FILE: a manifest beside the scenarios (printed as <scenarios>/FILE).
manifest() { printf '%s/scenarios/%s' "$here" "$1"; }
export -f k ensure_sa manifest 2>/dev/null
export here KUBECTL
# shellcheck disable=SC1090
source "$2" | sed "s#$here/scenarios#<scenarios>#g" | python3 "$here/normalize.py"
