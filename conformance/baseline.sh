#!/usr/bin/env bash
# Runs upstream's own v1.33 control plane on this machine, with no nodes, for the baseline
# conformance run: etcd, kube-apiserver, kube-controller-manager and kube-scheduler, built
# by build.sh from the same module as e2e.test.
#
#   conformance/baseline.sh DIR
#
# Everything lives under DIR: a fresh PKI made with openssl, etcd's data, each component's
# log and DIR/admin.kubeconfig (user kubernetes-admin in group system:masters). The API
# server listens on 127.0.0.1 (a free port) and advertises the host's first non-loopback
# IPv4 address, because the `default/kubernetes` Endpoints may not hold a loopback address.
# When /readyz answers it prints "baseline control plane is ready; export KUBECONFIG=...";
# SIGTERM or Ctrl-C stops all four.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${CONFORMANCE_OUT:-$here/_out}"
[ $# -eq 1 ] || { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
dir="$(mkdir -p "$1" && cd "$1" && pwd)"

log() { printf '==> [baseline %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

for bin in kube-apiserver kube-controller-manager kube-scheduler; do
  [ -x "$out/$bin" ] || die "$out/$bin is missing: run conformance/build.sh control-plane"
done
command -v etcd >/dev/null 2>&1 || die "etcd not found (Debian: apt-get install etcd-server)"
command -v openssl >/dev/null 2>&1 || die "openssl not found"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
advertise="$(ip -4 -o addr show scope global 2>/dev/null | awk '{sub(/\/.*/, "", $4); print $4; exit}')"
[ -n "$advertise" ] || die "no non-loopback IPv4 address to advertise"
service_cidr=10.96.0.0/12
service_ip=10.96.0.1

# --- PKI ----------------------------------------------------------------------------------
pki="$dir/pki"
mkdir -p "$pki"
# cert NAME SUBJECT [SANS]: a key and a certificate signed by the cluster CA.
cert() {
  local name="$1" subj="$2" sans="${3:-}" ext="$pki/$1.ext" ca="${4:-ca}"
  openssl genrsa -out "$pki/$name.key" 2048 2>/dev/null
  openssl req -new -key "$pki/$name.key" -subj "$subj" -out "$pki/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [ -n "$sans" ]; then
      echo "extendedKeyUsage=serverAuth"
      echo "subjectAltName=$sans"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } > "$ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/$ca.crt" -CAkey "$pki/$ca.key" \
    -CAcreateserial -days 30 -sha256 -extfile "$ext" -out "$pki/$name.crt" 2>/dev/null
}
if [ ! -f "$pki/admin.crt" ]; then
  log "making a PKI in $pki"
  for ca in ca front-proxy-ca; do
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/$ca.key" -out "$pki/$ca.crt" \
      -days 30 -subj "/CN=baseline-$ca" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
  done
  cert apiserver "/CN=kube-apiserver" \
    "IP:127.0.0.1,IP:$advertise,IP:$service_ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin "/O=system:masters/CN=kubernetes-admin"
  cert controller-manager "/CN=system:kube-controller-manager"
  cert scheduler "/CN=system:kube-scheduler"
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  cert front-proxy-client "/CN=front-proxy-client" "" front-proxy-ca
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
fi

port="$(free_port)"
server="https://127.0.0.1:$port"
# kubeconfig NAME USER: a kubeconfig for a client certificate.
kubeconfig() {
  local b64ca b64crt b64key
  b64ca="$(base64 -w0 < "$pki/ca.crt")"; b64crt="$(base64 -w0 < "$pki/$1.crt")"; b64key="$(base64 -w0 < "$pki/$1.key")"
  cat > "$dir/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: baseline
  cluster: {server: "$server", certificate-authority-data: "$b64ca"}
users:
- name: $2
  user: {client-certificate-data: "$b64crt", client-key-data: "$b64key"}
contexts:
- name: $2@baseline
  context: {cluster: baseline, user: $2}
current-context: $2@baseline
EOF
}
kubeconfig admin kubernetes-admin
kubeconfig controller-manager system:kube-controller-manager
kubeconfig scheduler system:kube-scheduler

# --- processes ----------------------------------------------------------------------------
pids=()
stop() {
  trap - EXIT INT TERM
  local i
  for (( i=${#pids[@]}-1; i>=0; i-- )); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  log "stopped"
}
trap stop EXIT
trap 'exit 0' INT TERM

etcd_port="$(free_port)"; etcd_peer="$(free_port)"
log "etcd on 127.0.0.1:$etcd_port"
etcd --name baseline --data-dir "$dir/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "baseline=http://127.0.0.1:$etcd_peer" > "$dir/etcd.log" 2>&1 &
pids+=($!)

log "kube-apiserver on $server (advertising $advertise)"
"$out/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address 127.0.0.1 --secure-port "$port" --advertise-address "$advertise" \
  --service-cluster-ip-range "$service_cidr" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --allow-privileged=true --enable-bootstrap-token-auth=true \
  --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
  --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
  --requestheader-client-ca-file "$pki/front-proxy-ca.crt" \
  --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --proxy-client-cert-file "$pki/front-proxy-client.crt" --proxy-client-key-file "$pki/front-proxy-client.key" \
  > "$dir/kube-apiserver.log" 2>&1 &
pids+=($!)

log "waiting for /readyz"
for i in $(seq 1 120); do
  if curl -sf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "$server/readyz" >/dev/null; then
    break
  fi
  kill -0 "${pids[1]}" 2>/dev/null || { tail -20 "$dir/kube-apiserver.log" >&2; die "kube-apiserver exited"; }
  [ "$i" -eq 120 ] && { tail -20 "$dir/kube-apiserver.log" >&2; die "kube-apiserver not ready after 120 s"; }
  sleep 1
done

log "kube-controller-manager"
"$out/kube-controller-manager" \
  --kubeconfig "$dir/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$dir/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$dir/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$(free_port)" --leader-elect=false \
  --use-service-account-credentials=true \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
  --service-cluster-ip-range "$service_cidr" \
  --controllers '*,bootstrapsigner,tokencleaner' \
  > "$dir/kube-controller-manager.log" 2>&1 &
pids+=($!)

log "kube-scheduler"
"$out/kube-scheduler" \
  --kubeconfig "$dir/scheduler.kubeconfig" \
  --authentication-kubeconfig "$dir/scheduler.kubeconfig" \
  --authorization-kubeconfig "$dir/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$(free_port)" --leader-elect=false \
  > "$dir/kube-scheduler.log" 2>&1 &
pids+=($!)

# Ready when the default ServiceAccount exists (the controllers are working).
for i in $(seq 1 120); do
  if curl -sf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
      "$server/api/v1/namespaces/default/serviceaccounts/default" >/dev/null; then
    break
  fi
  [ "$i" -eq 120 ] && die "no default ServiceAccount after 120 s (see $dir/kube-controller-manager.log)"
  sleep 1
done
echo "baseline control plane is ready; export KUBECONFIG=$dir/admin.kubeconfig"

# Stay up until a component exits or we are told to stop.
wait -n "${pids[@]}" || true
die "a control-plane process exited; see the logs in $dir"
