#!/usr/bin/env bash
# Regenerates machinery/src/gocmp/generated.rs (the shape of upstream's internal core.PodSpec
# types, for the go-cmp diff emulation) and the golden diffs in
# machinery/src/gocmp/testdata/cases.json (written by go-cmp itself, see oracle/).
# With --check, fails if the committed table differs from what the generator writes now.
#
# Needs the Go toolchain and the Go module proxy (or a warm module cache). A dev tool:
# ironkube's build never runs it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
table="$root/machinery/src/gocmp/generated.rs"
cases="$root/machinery/src/gocmp/testdata/cases.json"

cd "$here"
if [ "${1:-}" = "--check" ]; then
  go run . -check "$table"
  echo "internal type table is up to date"
else
  echo "==> writing $table" >&2
  go run . -out "$table"
  echo "==> asking go-cmp for the golden diffs in $cases" >&2
  go run ./oracle "$cases"
fi
