# shellcheck shell=bash
# Sourced by hack/*.sh: installs the system packages ironkube needs when they are missing.
#
# Everything comes from Debian's archive with apt-get; `apt-get update` runs at most once per
# script, and only when something is missing. Rust (cargo) is assumed to be installed.

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

_deps_apt_updated=""

# deps::as_root CMD...: runs CMD as root (directly, or through sudo).
deps::as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root to run: $* (and sudo is not installed)"
  fi
}

# deps::apt_install PACKAGE...: installs Debian packages, updating the lists first (once).
deps::apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* by hand"
  if [ -z "$_deps_apt_updated" ]; then
    log "apt-get update"
    deps::as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    _deps_apt_updated=1
  fi
  log "apt-get install $*"
  deps::as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "$@"
}

# deps::ensure COMMAND:PACKAGE...: installs each PACKAGE whose COMMAND is not on PATH.
deps::ensure() {
  local pair missing=()
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    deps::apt_install "${missing[@]}"
  fi
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 \
      || die "${pair%%:*} is still missing after installing ${pair#*:}"
  done
}

# deps::build_and_run: what building ironkube and running `ironkube up` need.
deps::build_and_run() {
  command -v cargo >/dev/null 2>&1 \
    || die "cargo not found: install Rust (rustup) first; ironkube builds with stable Rust"
  # etcd-client's build runs protoc; `ironkube up` runs etcd; etcdctl is for looking inside.
  deps::ensure cc:gcc protoc:protobuf-compiler etcd:etcd-server etcdctl:etcd-client
  # protoc's well-known types (google/protobuf/*.proto) are only a Recommends of
  # protobuf-compiler, which --no-install-recommends skips.
  if [ ! -f /usr/include/google/protobuf/descriptor.proto ]; then
    deps::apt_install libprotobuf-dev
  fi
}

# deps::node: what running pods in real containers needs: Debian's containerd (with its CRI
# plugin), runc and the CNI plugins (/usr/lib/cni), and the node's images (the sandbox image
# registry.k8s.io/pause:3.10 and docker.io/library/busybox:1.36) built as OCI archives by
# hack/images/build.sh, since no registry can be reached.
deps::node() {
  # curl: ironkube/tests/streaming.rs asks the kubelet directly, with and without a client cert.
  deps::ensure containerd:containerd runc:runc gcc:gcc python3:python3 curl:curl
  if [ ! -x /usr/lib/cni/bridge ]; then
    deps::apt_install containernetworking-plugins
  fi
  log "building the node images (pause, busybox:1.36)"
  "$(dirname "${BASH_SOURCE[0]}")/../images/build.sh" pause busybox-1.36
}

# deps::kubectl VERSION...: the stock kubectl binaries the integration tests drive. They are
# not in Debian's archive; the project's machines come with them.
deps::kubectl() {
  local version path
  for version in "$@"; do
    path="/usr/lib/google-cloud-sdk/bin/kubectl.$version"
    [ -x "$path" ] || die "$path is missing: the integration tests drive stock kubectl $version \
(the Google Cloud SDK's kubectl package installs kubectl.1.NN there)"
  done
}
