#!/usr/bin/env bash
# API server benchmarks, ironkube and upstream side by side on this machine:
#
#   hack/bench/apiserver.sh [--watchers N] [--configmaps N] [--only ironkube|upstream]
#
# For each server it starts a fresh etcd (Debian's, on free loopback ports) and the server
# alone (target/release/ironkube-apiserver, or upstream kube-apiserver v1.33 built by
# conformance/build.sh kube-apiserver) with the same certificates and flags, then runs
# ironkube-bench:
#   - `watchers`: N pod watches on one server; how many etcd watchers that added (from
#     etcd's own metrics), how many watchers saw one new pod, and the fan-out latency;
#   - `configmaps`: stores N ConfigMaps (16 writers) and reports the server's RSS.
# The results go to stdout; commit them as a dated report under docs/bench/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=hack/lib/deps.sh
source "$root/hack/lib/deps.sh"

watchers=1000
configmaps=10000
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --watchers) watchers="$2"; shift 2 ;;
    --configmaps) configmaps="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    *) die "unknown argument $1 (see the header of $0)" ;;
  esac
done

deps::build_and_run
command -v openssl >/dev/null 2>&1 || deps::apt_install openssl
target="${CARGO_TARGET_DIR:-$root/target}/release"
log "cargo build --release -p ironkube-apiserver -p ironkube-testkit"
cargo build --release --manifest-path "$root/Cargo.toml" -p ironkube-apiserver -p ironkube-testkit
upstream="${CONFORMANCE_OUT:-$root/conformance/_out}/kube-apiserver"
if [ "$only" != "ironkube" ] && [ ! -x "$upstream" ]; then
  log "building upstream kube-apiserver (conformance/build.sh kube-apiserver)"
  "$root/conformance/build.sh" kube-apiserver
fi

work="$(mktemp -d /tmp/ironkube-bench.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- one PKI for both servers --------------------------------------------------------------
pki="$work/pki"
mkdir -p "$pki"
log "making certificates in $pki"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench-ca \
  -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
leaf() { # NAME SUBJECT EXTENSIONS (X.509 v3, which rustls insists on)
  openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
  printf '%s\n' "$3" > "$pki/$1.ext"
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 2 -out "$pki/$1.crt" -extfile "$pki/$1.ext" 2>/dev/null
}
leaf server /CN=kube-apiserver "keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1"
leaf admin "/O=system:masters/CN=bench-admin" "keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
b64() { base64 -w0 < "$1"; }

kubeconfig() { # PORT FILE
  cat > "$2" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: bench
  cluster: {server: "https://127.0.0.1:$1", certificate-authority-data: $(b64 "$pki/ca.crt")}
users:
- name: admin
  user: {client-certificate-data: $(b64 "$pki/admin.crt"), client-key-data: $(b64 "$pki/admin.key")}
contexts:
- name: bench
  context: {cluster: bench, user: admin}
current-context: bench
EOF
}

# run_server DIR NAME BINARY: etcd, the server, both benchmarks; prints the results.
run_server() {
  local name="$2" binary="$3" dir="$work/$1"
  mkdir -p "$dir"
  local client peer port
  client="$(free_port)"; peer="$(free_port)"; port="$(free_port)"
  log "$name: etcd on 127.0.0.1:$client"
  etcd --data-dir "$dir/etcd" --listen-client-urls "http://127.0.0.1:$client" \
    --advertise-client-urls "http://127.0.0.1:$client" --listen-peer-urls "http://127.0.0.1:$peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer" --initial-cluster "default=http://127.0.0.1:$peer" \
    > "$dir/etcd.log" 2>&1 &
  local etcd_pid=$!
  pids+=("$etcd_pid")
  for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$client/health" >/dev/null 2>&1 && break
    sleep 0.2
  done
  log "$name: $binary on 127.0.0.1:$port"
  "$binary" --etcd-servers="http://127.0.0.1:$client" --secure-port="$port" --bind-address=127.0.0.1 \
    --tls-cert-file="$pki/server.crt" --tls-private-key-file="$pki/server.key" \
    --client-ca-file="$pki/ca.crt" --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --service-cluster-ip-range=10.96.0.0/12 > "$dir/server.log" 2>&1 &
  local server_pid=$!
  pids+=("$server_pid")
  kubeconfig "$port" "$dir/kubeconfig"
  local kubectl=/usr/lib/google-cloud-sdk/bin/kubectl.1.33
  for _ in $(seq 150); do
    [ "$("$kubectl" --kubeconfig "$dir/kubeconfig" get --raw /readyz 2>/dev/null)" = ok ] && break
    kill -0 "$server_pid" 2>/dev/null || die "$name exited; see $dir/server.log"
    sleep 0.2
  done
  # Without a controller manager, nothing creates the ServiceAccount upstream's admission
  # wants before it admits a pod.
  "$kubectl" --kubeconfig "$dir/kubeconfig" create namespace bench-watch >/dev/null
  "$kubectl" --kubeconfig "$dir/kubeconfig" create serviceaccount default -n bench-watch >/dev/null 2>&1 || true
  echo "## $name"
  echo
  echo '```text'
  echo "server RSS when ready: $(awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status") KiB"
  log "$name: $watchers watchers"
  "$target/ironkube-bench" watchers --kubeconfig "$dir/kubeconfig" \
    --etcd-metrics "http://127.0.0.1:$client/metrics" --count "$watchers"
  log "$name: $configmaps ConfigMaps"
  "$target/ironkube-bench" configmaps --kubeconfig "$dir/kubeconfig" --count "$configmaps" --pid "$server_pid"
  echo '```'
  echo
  kill "$server_pid" "$etcd_pid" 2>/dev/null || true
  wait "$server_pid" "$etcd_pid" 2>/dev/null || true
}

echo "# API server benchmarks, $(date -u +%Y-%m-%d)"
echo
echo "Commit $(git -C "$root" rev-parse --short HEAD), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)."
echo
[ "$only" = upstream ] || run_server ironkube "ironkube-apiserver" "$target/ironkube-apiserver"
[ "$only" = ironkube ] || run_server upstream "upstream kube-apiserver $("$upstream" --version 2>/dev/null | awk '{print $2}')" "$upstream"
