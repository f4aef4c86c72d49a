#!/usr/bin/env bash
# Legate's main job on this machine, in one command (`make run`): a real
# control plane, the operator, a Gateway with a local Envoy in place of its
# pod, an echo upstream and a Mapping to it; then a curl that works. Ctrl-C
# stops everything.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/.run/stack"
say() { echo "run: $*" >&2; }

"$root/scripts/preflight.sh"
"$root/tests/controlplane/build.sh" >/dev/null
if [[ -f "$dir/env" ]]; then
  say "a previous run was left behind; stopping it"
  "$root/tests/stack.sh" down "$dir"
fi
(cd "$root" && cargo build --quiet -p legate-tests --bin legate-echo)
echo_pid=""
cleanup() {
  trap - INT TERM EXIT
  say "stopping"
  [[ -n "$echo_pid" ]] && kill "$echo_pid" 2>/dev/null
  "$root/tests/stack.sh" down "$dir"
}
trap cleanup INT TERM EXIT
"$root/tests/stack.sh" up "$dir"
# shellcheck disable=SC1091
source "$dir/env"
export KUBECONFIG
kubectl="$LEGATE_K8S_BIN/kubectl"

echo_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"${CARGO_TARGET_DIR:-$root/target}/debug/legate-echo" --listen "127.0.0.1:$echo_port" --name quote-1 2>"$dir/run/echo.log" &
echo_pid=$!

mapping="apiVersion: legate.dev/v1alpha1
kind: Mapping
metadata:
  name: quote
  namespace: default
spec:
  hostname: \"*\"
  prefix: /backend/
  service: http://127.0.0.1:$echo_port"
echo "$mapping" | "$kubectl" apply -f - >/dev/null
"$kubectl" wait --for=condition=Programmed mapping/quote -n default --timeout=30s >/dev/null

cat <<MSG

  Legate is running: a Kubernetes API server, the operator, Gateway $LEGATE_GATEWAY
  with a local Envoy on $LEGATE_HTTP, and this Mapping to an echo server:

$(echo "$mapping" | sed 's/^/    /')

  Try it:
    curl -s http://$LEGATE_HTTP/backend/hello

  Then, in another shell:
    export KUBECONFIG=$KUBECONFIG
    alias kubectl=$kubectl
    kubectl get legate -A                    # every Legate object, with its status
    kubectl describe mapping quote           # conditions and Events
    kubectl apply -f examples/               # more examples (their Services do not exist here)
    curl -s http://$LEGATE_ENVOY_ADMIN/config_dump | less    # what Envoy runs

  Ctrl-C stops everything.

MSG
curl -s "http://$LEGATE_HTTP/backend/hello" | python3 -m json.tool | head -8 || true
echo
wait "$echo_pid"
