#!/usr/bin/env bash
# Regenerates machinery/src/proto/schema.rs (and report.txt beside this script) from the
# k8s-pb and k8s-openapi crates plus go-fields.txt. With --check, fails if the committed
# files differ from what the generator makes now.
#
# go-fields.txt itself comes from `cd gofacts && go run . > ../go-fields.txt` (needs the
# Go toolchain and the Go module proxy; rerun it only when moving to a new Kubernetes).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
check=false
[ "${1:-}" = "--check" ] && check=true

manifest="$here/Cargo.toml"
cargo fetch --manifest-path "$manifest" --quiet
meta="$(cargo metadata --format-version 1 --manifest-path "$manifest")"
crate_dir() {
  python3 -c 'import json, os, sys
meta = json.load(sys.stdin)
for p in meta["packages"]:
    if p["name"] == sys.argv[1]:
        print(os.path.dirname(p["manifest_path"]), p["version"])
        break
else:
    sys.exit("crate %s not found" % sys.argv[1])' "$1" <<<"$meta"
}
read -r pb_dir pb_version < <(crate_dir k8s-pb)
read -r oa_dir oa_version < <(crate_dir k8s-openapi)

out="$root/machinery/src/proto/schema.rs"
report="$here/report.txt"
if $check; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  out_new="$tmp/schema.rs"
  report_new="$tmp/report.txt"
else
  out_new="$out"
  report_new="$report"
fi

python3 "$here/gen.py" \
  --k8s-pb "$pb_dir/src" --k8s-pb-version "$pb_version" \
  --k8s-openapi "$oa_dir/src/v1_33" --k8s-openapi-version "$oa_version" \
  --go-fields "$here/go-fields.txt" \
  --out "$out_new" --report "$report_new"

if $check; then
  diff -u "$out" "$out_new" >/dev/null || { echo "schema.rs is stale: run hack/gen-proto-schema/gen.sh" >&2; exit 1; }
  diff -u "$report" "$report_new" || { echo "report.txt is stale: run hack/gen-proto-schema/gen.sh" >&2; exit 1; }
  echo "proto schema is up to date"
fi
