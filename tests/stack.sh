#!/usr/bin/env bash
# The whole Legate stack on this machine, in the background:
#   tests/stack.sh up DIR    control plane + CRDs + operator + Gateway legate-system/default
#                            + a local Envoy in place of its pod; writes DIR/env and returns
#   tests/stack.sh down DIR  stops everything it started and removes DIR
# DIR/env holds shell assignments: KUBECONFIG, LEGATE_GATEWAY, LEGATE_HTTP,
# LEGATE_HTTPS, LEGATE_ENVOY_ADMIN, LEGATE_K8S_BIN.
# LEGATE_BIN=/path/to/legate runs that operator binary instead of building the
# debug one.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { echo "stack.sh: $*" >&2; }
alive() { [[ -r "/proc/$1/stat" ]] && [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]; }

free_ports() { # N
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(*(s.getsockname()[1] for s in socks))
PY
}

http_ok() { # URL
  python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)" "$1" >/dev/null 2>&1
}

wait_for() { # what seconds pidfile command...
  local what="$1" secs="$2" pidfile="$3"; shift 3
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [[ -n "$pidfile" ]] && ! alive "$(cat "$pidfile")"; then
      say "$what: the process exited; see ${pidfile%.pid}.log"; return 1
    fi
    ((SECONDS < deadline)) || { say "timed out after ${secs}s waiting for $what"; return 1; }
    sleep 0.2
  done
}

up() {
  local dir="$1"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if [[ -f "$dir/env" ]]; then
    say "$dir already holds a running stack; run: tests/stack.sh down $dir"; exit 1
  fi
  mkdir -p "$dir/run"
  trap 'say "failed; stopping what was started"; down "$dir"' ERR

  local legate
  if [[ -n "${LEGATE_BIN:-}" ]]; then
    # A caller that built its own operator (the benchmark runs a release build).
    [[ -x "$LEGATE_BIN" ]] || { say "LEGATE_BIN=$LEGATE_BIN is not an executable file"; exit 1; }
    legate="$LEGATE_BIN"
    say "using the operator $legate (LEGATE_BIN)"
  else
    say "building the operator"
    (cd "$root" && cargo build --quiet -p legate-operator)
    legate="${CARGO_TARGET_DIR:-$root/target}/debug/legate"
  fi
  local envoy
  envoy="$("$root/scripts/install-envoy.sh")"

  "$root/tests/controlplane/up.sh" "$dir/controlplane"
  # shellcheck disable=SC1091
  source "$dir/controlplane/env"
  local kubectl=("$LEGATE_K8S_BIN/kubectl" --kubeconfig "$dir/controlplane/kubeconfig")

  "${kubectl[@]}" apply --server-side -f "$root/manifests/crds/" >/dev/null
  "${kubectl[@]}" wait --for=condition=Established crd --all --timeout=60s >/dev/null
  say "CRDs installed"

  # The operator keeps its xDS CA in its own namespace.
  "${kubectl[@]}" create namespace legate-system >/dev/null
  read -r xds health metrics http https < <(free_ports 5)
  setsid "$legate" run --kubeconfig "$dir/controlplane/kubeconfig" \
    --xds-listen "127.0.0.1:$xds" --xds-advertise "127.0.0.1:$xds" \
    --health-listen "127.0.0.1:$health" --metrics-listen "127.0.0.1:$metrics" \
    --envoy-listen-address 127.0.0.1 --envoy-probes=false --allow-loopback-upstreams \
    >"$dir/run/legate.log" 2>&1 </dev/null &
  echo $! >"$dir/run/legate.pid"
  wait_for "the operator's /readyz" 60 "$dir/run/legate.pid" http_ok "http://127.0.0.1:$health/readyz"
  say "operator running (pid $(cat "$dir/run/legate.pid"), log $dir/run/legate.log)"

  "${kubectl[@]}" apply -f - >/dev/null <<YAML
apiVersion: legate.dev/v1alpha1
kind: Gateway
metadata:
  name: default
  namespace: legate-system
spec:
  replicas: 1
  serviceType: ClusterIP
  listeners:
    - { name: http, port: $http, protocol: HTTP }
    - { name: https, port: $https, protocol: HTTPS }
  allowedRoutes:
    namespaces:
      from: All
YAML
  wait_for "the Gateway's bootstrap ConfigMap" 30 "" \
    "${kubectl[@]}" get configmap default-envoy -n legate-system -o name
  # xDS is mutual TLS: the Envoy uses the client certificate the operator
  # issued for the Gateway, where a pod would mount it.
  wait_for "the Gateway's xDS client certificate" 30 "" \
    "${kubectl[@]}" get secret default-envoy-xds -n legate-system -o name
  mkdir -p "$dir/run/xds-tls"
  for key in tls.crt tls.key ca.crt; do
    "${kubectl[@]}" get secret default-envoy-xds -n legate-system -o "jsonpath={.data.${key//./\\.}}" \
      | base64 -d >"$dir/run/xds-tls/$key"
  done
  chmod 600 "$dir/run/xds-tls/tls.key"
  "${kubectl[@]}" get configmap default-envoy -n legate-system -o 'jsonpath={.data.envoy\.yaml}' \
    | sed "s|/etc/envoy/xds-tls|$dir/run/xds-tls|g" >"$dir/run/envoy.yaml"
  setsid "$envoy" --config-path "$dir/run/envoy.yaml" --service-node local-envoy \
    --admin-address-path "$dir/run/envoy-admin" --disable-hot-restart --concurrency 1 \
    --log-path "$dir/run/envoy.log" >/dev/null 2>&1 </dev/null &
  echo $! >"$dir/run/envoy.pid"
  wait_for "Envoy's admin address" 30 "$dir/run/envoy.pid" test -s "$dir/run/envoy-admin"
  local admin
  admin="$(cat "$dir/run/envoy-admin")"
  wait_for "Envoy to be ready" 30 "$dir/run/envoy.pid" http_ok "http://$admin/ready"
  say "Envoy running for Gateway legate-system/default (pid $(cat "$dir/run/envoy.pid"), admin $admin)"

  cat >"$dir/env" <<ENV
KUBECONFIG=$dir/controlplane/kubeconfig
LEGATE_K8S_BIN=$LEGATE_K8S_BIN
LEGATE_GATEWAY=legate-system/default
LEGATE_HTTP=127.0.0.1:$http
LEGATE_HTTPS=127.0.0.1:$https
LEGATE_ENVOY_ADMIN=$admin
ENV
  trap - ERR
  say "ready; the settings are in $dir/env"
}

down() {
  local dir="$1"
  [[ -d "$dir" ]] || { say "$dir does not exist; nothing to stop"; return 0; }
  for name in envoy legate; do
    local f="$dir/run/$name.pid"
    [[ -f "$f" ]] || continue
    local pid
    pid="$(cat "$f")"
    if alive "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
      alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
      say "stopped $name (pid $pid)"
    fi
  done
  "$root/tests/controlplane/down.sh" "$dir/controlplane" || true
  rm -rf "$dir"
  say "removed $dir"
}

case "${1:-}" in
  up) [[ $# -eq 2 ]] || { echo "usage: $0 up DIR" >&2; exit 2; }; up "$2" ;;
  down) [[ $# -eq 2 ]] || { echo "usage: $0 down DIR" >&2; exit 2; }; down "$2" ;;
  *) echo "usage: $0 up|down DIR" >&2; exit 2 ;;
esac
