#!/usr/bin/env bash
# Builds upstream Kubernetes binaries from the Go module in this directory into _out/.
#
#   conformance/build.sh [TARGET...]
#
# TARGETs: e2e.test ginkgo agnhost kube-apiserver kube-controller-manager kube-scheduler,
# or the groups `test` (e2e.test ginkgo, the default), `control-plane` (the three kube-*)
# and `all`. A binary is rebuilt only when it is missing or when go.mod, go.sum, the Go
# version or the build flags changed since it was built (a stamp file beside it records
# them). Builds run niced with GOFLAGS=-p=$BUILD_JOBS (default 1): the machine's cores are
# shared with the Rust builds.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${CONFORMANCE_OUT:-$here/_out}"
jobs="${BUILD_JOBS:-1}"

log() { printf '==> [build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "go not found: the conformance module needs Go >= 1.24"

k8s_version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2; exit }' "$here/go.mod")"
[ -n "$k8s_version" ] || die "cannot read the k8s.io/kubernetes version from go.mod"
k8s_minor="${k8s_version#v1.}"; k8s_minor="${k8s_minor%%.*}"
agnhost_version="$(go -C "$here" list -m -f '{{.Dir}}' k8s.io/kubernetes 2>/dev/null \
  | xargs -I{} cat {}/test/images/agnhost/VERSION 2>/dev/null || true)"

# Version stamping the way upstream's release builds do it, so that `--version`,
# /version-style checks and the e2e framework see v1.33.x instead of v0.0.0-master.
# The upstream git commit is not known from a module download; it stays empty.
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
  ldflags+=" -X $pkg.gitTreeState=archive -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

# target -> "kind package"
package_of() {
  case "$1" in
    e2e.test) echo "test k8s.io/kubernetes/test/e2e" ;;
    ginkgo) echo "bin github.com/onsi/ginkgo/v2/ginkgo" ;;
    agnhost) echo "bin k8s.io/kubernetes/test/images/agnhost" ;;
    kube-apiserver|kube-controller-manager|kube-scheduler) echo "bin k8s.io/kubernetes/cmd/$1" ;;
    *) return 1 ;;
  esac
}

# progress TARGET START: reads `go build -v` output; passes compiler messages through and
# prints a line every 100 packages.
progress() {
  local line n=0
  while IFS= read -r line; do
    case "$line" in
      "#"*|"go: "*|*.go:*|*error*|*cannot*) printf '%s\n' "$line" >&2 ;;
      *) n=$((n + 1))
         (( n % 100 == 0 )) && log "$1: $n packages compiled, $(( $(date +%s) - $2 ))s" ;;
    esac
  done
  return 0
}

stamp_of() {
  local target="$1" flags="$2"
  { cat "$here/go.mod" "$here/go.sum"; go version; echo "$target $flags"; } | sha256sum | cut -d' ' -f1
}

build_one() {
  local target="$1" kind pkg flags stamp want started
  read -r kind pkg < <(package_of "$target") || die "unknown target: $target"
  flags="$ldflags"
  [ "$target" = agnhost ] && flags+=" -X main.Version=${agnhost_version:-unknown}"
  want="$(stamp_of "$target" "$flags")"
  stamp="$out/.$target.stamp"
  if [ -x "$out/$target" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    log "$target is up to date ($out/$target)"
    return 0
  fi
  mkdir -p "$out"
  rm -f "$stamp"
  log "building $target from $pkg@$k8s_version (GOFLAGS=-p=$jobs, niced)"
  started=$(date +%s)
  export CGO_ENABLED=0 GOFLAGS="-p=$jobs"
  if [ "$kind" = test ]; then
    # `go test -c` cannot name packages as it compiles them (its -v is the test binary's);
    # compile the test's imports with `go build -v` first, then link from the build cache.
    local imports
    imports="$(cd "$here" && go list -f '{{join .TestImports "\n"}}' "$pkg" | grep '\.' )" \
      || die "go list $pkg failed"
    # shellcheck disable=SC2086
    if ! (cd "$here" && nice -n 19 go build -v -ldflags "$flags" $imports "$pkg" 2>&1) \
        | progress "$target" "$started"; then
      die "building the packages of $target failed"
    fi
    log "linking $target"
    (cd "$here" && nice -n 19 go test -c -ldflags "$flags" -o "$out/$target.tmp" "$pkg") \
      || die "linking $target failed"
  else
    # -v names each package as it is compiled: show a progress line every 100 packages.
    if ! (cd "$here" && nice -n 19 go build -v -ldflags "$flags" -o "$out/$target.tmp" "$pkg" 2>&1) \
        | progress "$target" "$started"; then
      die "building $target failed"
    fi
  fi
  [ -f "$out/$target.tmp" ] || die "building $target produced no binary"
  mv "$out/$target.tmp" "$out/$target"
  echo "$want" > "$stamp"
  log "built $target in $(( $(date +%s) - started ))s ($(du -h "$out/$target" | cut -f1))"
}

targets=()
for arg in "${@:-test}"; do
  case "$arg" in
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    test) targets+=(e2e.test ginkgo) ;;
    control-plane) targets+=(kube-apiserver kube-controller-manager kube-scheduler) ;;
    all) targets+=(e2e.test ginkgo agnhost kube-apiserver kube-controller-manager kube-scheduler) ;;
    *) package_of "$arg" >/dev/null || die "unknown target: $arg"; targets+=("$arg") ;;
  esac
done
for t in "${targets[@]}"; do build_one "$t"; done
