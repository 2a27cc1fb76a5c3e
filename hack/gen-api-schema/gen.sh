#!/usr/bin/env bash
# Regenerates machinery/src/schema/generated.rs, the schema facts of the Kubernetes v1.33
# built-in types (patch strategies, merge keys, list/map types, defaults, enums, kinds),
# from the Go API types in the Go module cache. With --check, fails if the committed file
# differs from what the generator writes now.
#
# Needs the Go toolchain and the Go module proxy (or a warm module cache). A dev tool:
# ironkube's build never runs it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/machinery/src/schema/generated.rs"

cd "$here"
if [ "${1:-}" = "--check" ]; then
  go run . -check "$out"
  echo "schema table is up to date"
else
  go run . -out "$out"
  echo "wrote $out"
fi
