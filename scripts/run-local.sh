#!/usr/bin/env bash
# Legate's main job on this machine, in one command (`make run`): a real
# control plane, the operator, a Gateway with a local Envoy in place of its
# pod, an echo upstream and a Mapping to it; then a curl that works. Ctrl-C
# (SIGINT, or SIGTERM, to the process group) stops every process it started
# and returns once they are gone.
#
# The stack's processes run in sessions of their own (setsid, in
# tests/stack.sh and tests/controlplane/up.sh), so that they outlive the
# scripts that start them; no signal to this process group reaches them. They
# are stopped by their pids, from the pid files under the run directory, by
# `tests/stack.sh down`, which the EXIT trap below always runs.
#
# LEGATE_RUN_DIR=DIR keeps the run's state in DIR instead of .run/stack (the
# tests run their own stacks beside yours). LEGATE_BIN and LEGATE_ECHO_BIN run
# those binaries instead of building the debug ones.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${LEGATE_RUN_DIR:-$root/.run/stack}"
say() { echo "run: $*" >&2; }

# "PID STARTTIME" of a process (its start time tells it from a later one
# with the same pid); nothing if it is gone or a zombie.
identity() {
  local stat fields
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
  stat="${stat##*) }" # the fields after "pid (comm) ", from state on
  read -r -a fields <<<"$stat"
  [[ "${fields[0]}" != Z ]] && echo "$1 ${fields[19]}"
  return 0
}

echo_pid=""
cleanup() {
  local status=$?
  # Stop everything even if a command fails here, and even on a second Ctrl-C:
  # what runs from now on (tests/stack.sh down) inherits SIGINT and SIGTERM
  # ignored, so an impatient user cannot cut it short and leave processes behind.
  set +e
  trap '' INT TERM
  trap - EXIT
  if [[ -n "$echo_pid" || -d "$dir" ]]; then
    say "stopping"
    # Every process of the run, by the pid files that `down` removes.
    local started=() f id
    for f in "$dir"/run/*.pid "$dir"/controlplane/pids/*.pid; do
      [[ -f "$f" ]] && id="$(identity "$(cat "$f")")" && [[ -n "$id" ]] && started+=("$id")
    done
    if [[ -n "$echo_pid" ]]; then
      # The echo server may have stopped already (it exits on the same Ctrl-C).
      kill "$echo_pid" 2>/dev/null
      wait "$echo_pid" 2>/dev/null
    fi
    [[ -d "$dir" ]] && { "$root/tests/stack.sh" down "$dir" || say "tests/stack.sh down $dir failed"; }
    # `down` sends SIGKILL to what did not stop in time; wait until it is gone too.
    local deadline=$((SECONDS + 10))
    for id in "${started[@]}"; do
      while [[ "$(identity "${id%% *}")" == "$id" ]] && ((SECONDS < deadline)); do sleep 0.1; done
      [[ "$(identity "${id%% *}")" == "$id" ]] && say "pid ${id%% *} is still running"
    done
    say "stopped"
  fi
  exit "$status"
}
# A signal only ends the script; the EXIT trap does the stopping, once.
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$root/scripts/preflight.sh"
"$root/tests/controlplane/build.sh" >/dev/null
if [[ -f "$dir/env" ]]; then
  say "a previous run was left behind; stopping it"
  "$root/tests/stack.sh" down "$dir"
fi
echo_bin="${LEGATE_ECHO_BIN:-}"
if [[ -z "$echo_bin" ]]; then
  (cd "$root" && cargo build --quiet -p legate-tests --bin legate-echo)
  echo_bin="${CARGO_TARGET_DIR:-$root/target}/debug/legate-echo"
fi
"$root/tests/stack.sh" up "$dir"
# shellcheck disable=SC1091
source "$dir/env"
export KUBECONFIG
kubectl="$LEGATE_K8S_BIN/kubectl"

echo_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$echo_bin" --listen "127.0.0.1:$echo_port" --name quote-1 2>"$dir/run/echo.log" &
echo_pid=$!
echo "$echo_pid" >"$dir/run/echo.pid"

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
