#!/usr/bin/env bash
# Installs what is missing, builds ironkube (release) and runs `ironkube up` with the given
# flags (see `ironkube up --help`). The cluster state goes to ./.ironkube unless --data-dir
# says otherwise; stop it with Ctrl-C.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=hack/lib/deps.sh
source "$root/hack/lib/deps.sh"

deps::build_and_run

log "cargo build --release"
cargo build --release --manifest-path "$root/Cargo.toml"

target_dir="${CARGO_TARGET_DIR:-$root/target}"
log "ironkube up $*"
exec "$target_dir/release/ironkube" up "$@"
