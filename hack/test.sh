#!/usr/bin/env bash
# Installs what is missing, builds everything and runs every test: unit tests and the
# integration tests that start etcd and ironkube and drive stock kubectl, and the ones that
# run containers through a private containerd (those need root).
# Extra arguments go to `cargo test` (e.g. `hack/test.sh -p ironkube -- up_`).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=hack/lib/deps.sh
source hack/lib/deps.sh

log "checking system dependencies"
deps::build_and_run
deps::kubectl 1.33 1.32
deps::node

log "cargo build --workspace --bins"
cargo build --workspace --bins

if [ "$#" -gt 0 ]; then
  log "cargo test $*"
  cargo test "$@"
else
  log "cargo test --workspace --no-fail-fast"
  cargo test --workspace --no-fail-fast
fi

log "all tests passed"
