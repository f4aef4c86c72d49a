#!/usr/bin/env bash
# Starts a real Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager) on free 127.0.0.1 ports, in the background, with its
# state in DIR. Writes DIR/kubeconfig (an admin in system:masters, by client
# certificate) and returns once the API server is ready and the controller
# manager is working. Stop it with down.sh DIR.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ $# -ne 1 ]]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
for tool in openssl python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "up.sh: '$tool' is required but not on PATH" >&2; exit 1; }
done

mkdir -p "$1"
dir="$(cd "$1" && pwd)"
if compgen -G "$dir/pids/*.pid" >/dev/null; then
  echo "up.sh: $dir already holds a running control plane; run down.sh $dir first" >&2
  exit 1
fi
bin="$("$here/build.sh")"
mkdir -p "$dir/pki" "$dir/pids" "$dir/logs" "$dir/etcd"
say() { echo "up.sh: $*" >&2; }
alive() { [[ -r "/proc/$1/stat" ]] && [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]; }

# --- ports: ask the kernel for free ones, all on loopback --------------------
read -r etcd_port etcd_peer_port api_port < <(python3 - <<'PY'
import socket
socks = []
for _ in range(3):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(*(s.getsockname()[1] for s in socks))
PY
)

# --- PKI: a CA, the API server's serving cert, client certs, SA keys ---------
pki="$dir/pki"
ossl() { openssl "$@" 2>/dev/null; }
new_key() { ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
new_key "$pki/ca.key"
ossl req -x509 -new -key "$pki/ca.key" -days 3650 -subj "/CN=legate-test-ca" -out "$pki/ca.crt"
issue() { # name subject [extensions]
  local name="$1" subj="$2" ext="${3:-}"
  new_key "$pki/$name.key"
  ossl req -new -key "$pki/$name.key" -subj "$subj" -out "$pki/$name.csr"
  printf '%s\n' "basicConstraints=CA:FALSE" "$ext" >"$pki/$name.ext"
  ossl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -extfile "$pki/$name.ext" -out "$pki/$name.crt"
}
issue apiserver "/CN=kube-apiserver" \
  "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth"
issue admin "/O=system:masters/CN=legate-admin" "extendedKeyUsage=clientAuth"
issue controller-manager "/CN=system:kube-controller-manager" "extendedKeyUsage=clientAuth"
ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key"
ossl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"

b64() { base64 -w0 <"$1"; }
write_kubeconfig() { # file user
  cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: legate-test
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority-data: $(b64 "$pki/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(b64 "$pki/$2.crt")
    client-key-data: $(b64 "$pki/$2.key")
contexts:
- name: legate-test
  context:
    cluster: legate-test
    user: $2
    namespace: default
current-context: legate-test
KC
}
write_kubeconfig "$dir/kubeconfig" admin
write_kubeconfig "$dir/controller-manager.kubeconfig" controller-manager

# --- processes ----------------------------------------------------------------
start() { # name args...: runs in its own session so it outlives this script
  local name="$1"; shift
  setsid "$@" >"$dir/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$dir/pids/$name.pid"
  say "started $name (pid $!, log $dir/logs/$name.log)"
}
fail() {
  say "$1; the last lines of $2:"
  tail -n 20 "$dir/logs/$2.log" >&2 || true
  "$here/down.sh" "$dir" >&2 || true
  exit 1
}
wait_for() { # description seconds log-name command...
  local what="$1" secs="$2" log="$3"; shift 3
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    alive "$(cat "$dir/pids/$log.pid")" || fail "$log exited while waiting for $what" "$log"
    ((SECONDS < deadline)) || fail "timed out after ${secs}s waiting for $what" "$log"
    sleep 0.2
  done
}

start etcd "$bin/etcd" \
  --name legate-test --data-dir "$dir/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
  --initial-cluster "legate-test=http://127.0.0.1:$etcd_peer_port" \
  --listen-metrics-urls "" --unsafe-no-fsync --log-level warn
wait_for "etcd" 30 etcd python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$etcd_port/health', timeout=1)"

start kube-apiserver "$bin/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --authorization-mode RBAC \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-cluster-ip-range 10.96.0.0/16 \
  --endpoint-reconciler-type none \
  --allow-privileged=true --profiling=false --v=1
kubectl=("$bin/kubectl" --kubeconfig "$dir/kubeconfig")
wait_for "kube-apiserver /readyz" 90 kube-apiserver "${kubectl[@]}" get --raw /readyz

start kube-controller-manager "$bin/kube-controller-manager" \
  --kubeconfig "$dir/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$dir/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$dir/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port 0 \
  --leader-elect=false --use-service-account-credentials=true \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --cluster-name legate-test --profiling=false --v=1
# The service-account controller creating "default" proves the controller
# manager is authenticated, authorized and reconciling.
wait_for "kube-controller-manager (serviceaccount default/default)" 60 kube-controller-manager \
  "${kubectl[@]}" get serviceaccount default --namespace default

cat >"$dir/env" <<ENV
KUBECONFIG=$dir/kubeconfig
LEGATE_K8S_BIN=$bin
ENV
say "ready: export KUBECONFIG=$dir/kubeconfig  (kubectl: $bin/kubectl)"
