# shellcheck shell=bash
# What the benchmarks under hack/bench share: one PKI for every server they start, a
# kubeconfig per server, and starting etcd plus an API server (ironkube's or upstream's) on
# free loopback ports. Source it after hack/lib/deps.sh and call bench::workdir first.

# bench::workdir PREFIX: a temp dir in $work and the list pids=() of what to stop on exit;
# the dir is removed after a success and kept (its logs) after a failure.
bench::workdir() {
  work="$(mktemp -d "/tmp/$1.XXXXXX")"
  pids=()
  trap bench::cleanup EXIT
}

bench::cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$status" -eq 0 ]; then rm -rf "$work"; else log "kept $work for its logs"; fi
}

bench::free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# bench::pki: a CA, a serving certificate for 127.0.0.1, an admin client certificate
# (system:masters) and a service account key pair (RSA, as kubeadm's), in $work/pki.
bench::pki() {
  pki="$work/pki"
  mkdir -p "$pki"
  log "making certificates in $pki"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench-ca \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  bench::leaf server /CN=kube-apiserver "keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1"
  bench::leaf admin "/O=system:masters/CN=bench-admin" "keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  # RSA, as kubeadm makes it.
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

bench::leaf() { # NAME SUBJECT EXTENSIONS (X.509 v3, which rustls insists on)
  openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
  printf '%s\n' "$3" > "$pki/$1.ext"
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 2 -out "$pki/$1.crt" -extfile "$pki/$1.ext" 2>/dev/null
}

bench::kubeconfig() { # PORT FILE
  local b64ca b64crt b64key
  b64ca="$(base64 -w0 < "$pki/ca.crt")"; b64crt="$(base64 -w0 < "$pki/admin.crt")"; b64key="$(base64 -w0 < "$pki/admin.key")"
  cat > "$2" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: bench
  cluster: {server: "https://127.0.0.1:$1", certificate-authority-data: $b64ca}
users:
- name: admin
  user: {client-certificate-data: $b64crt, client-key-data: $b64key}
contexts:
- name: bench
  context: {cluster: bench, user: admin}
current-context: bench
KUBECONFIG
}

# bench::start_server DIR NAME BINARY: a fresh etcd and the API server BINARY with the same
# flags for ironkube and upstream; waits for /readyz. Sets etcd_pid, server_pid,
# etcd_client_port and writes DIR/kubeconfig.
bench::start_server() {
  local dir="$1" name="$2" binary="$3"
  mkdir -p "$dir"
  local peer port
  etcd_client_port="$(bench::free_port)"; peer="$(bench::free_port)"; port="$(bench::free_port)"
  log "$name: etcd on 127.0.0.1:$etcd_client_port"
  etcd --data-dir "$dir/etcd" --listen-client-urls "http://127.0.0.1:$etcd_client_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_client_port" --listen-peer-urls "http://127.0.0.1:$peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer" --initial-cluster "default=http://127.0.0.1:$peer" \
    > "$dir/etcd.log" 2>&1 &
  etcd_pid=$!
  pids+=("$etcd_pid")
  for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$etcd_client_port/health" >/dev/null 2>&1 && break
    sleep 0.2
  done
  log "$name: $binary on 127.0.0.1:$port"
  "$binary" --etcd-servers="http://127.0.0.1:$etcd_client_port" --secure-port="$port" --bind-address=127.0.0.1 \
    --tls-cert-file="$pki/server.crt" --tls-private-key-file="$pki/server.key" \
    --client-ca-file="$pki/ca.crt" --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --service-cluster-ip-range=10.96.0.0/12 > "$dir/server.log" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  bench::kubeconfig "$port" "$dir/kubeconfig"
  local kubectl=/usr/lib/google-cloud-sdk/bin/kubectl.1.33
  for _ in $(seq 150); do
    [ "$("$kubectl" --kubeconfig "$dir/kubeconfig" get --raw /readyz 2>/dev/null)" = ok ] && return 0
    kill -0 "$server_pid" 2>/dev/null || die "$name exited; see $dir/server.log"
    sleep 0.2
  done
  die "$name did not become ready; see $dir/server.log"
}

bench::stop_server() {
  kill "$server_pid" "$etcd_pid" 2>/dev/null || true
  wait "$server_pid" "$etcd_pid" 2>/dev/null || true
}
