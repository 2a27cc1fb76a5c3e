#!/usr/bin/env bash
# Installs what is missing, builds ironkube (release) and runs `ironkube up` with the given
# flags (see `ironkube up --help`). The cluster state goes to ./.ironkube unless --data-dir
# says otherwise; stop it with Ctrl-C.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=hack/lib/deps.sh
source "$root/hack/lib/deps.sh"

deps::build_and_run
# A node needs root: then containerd, runc, the CNI plugins and the node images too.
node_args=()
if [ "$(id -u)" -eq 0 ]; then
  deps::node
  node_args=(--images-dir "${CONFORMANCE_OUT:-$root/conformance/_out}/images")
fi

log "cargo build --release"
cargo build --release --manifest-path "$root/Cargo.toml"

target_dir="${CARGO_TARGET_DIR:-$root/target}"
log "ironkube up ${node_args[*]} $*"
exec "$target_dir/release/ironkube" up "${node_args[@]}" "$@"
