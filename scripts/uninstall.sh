#!/usr/bin/env bash
# Removes Legate from a cluster (`make uninstall`) so that nothing is left
# stuck in Terminating. Plain `kubectl delete -k manifests/` deletes the
# operator and the CRDs at once; the CRDs then wait for their objects, and
# the Mappings and TCPMappings wait for the operator to remove its
# `legate.dev/routes` finalizer, which it never does, being gone. So, in order:
#
#   1. delete every Gateway, Mapping, TLSContext, AuthService,
#      RateLimitService and TCPMapping in every namespace while the operator
#      still runs, and wait (bounded) until they are gone: the operator
#      removes its finalizer once no Envoy routes the object;
#   2. if some remain because no operator runs (no one holds or renews its
#      Lease) or it makes no progress, remove Legate's own finalizers (the
#      `legate.dev/...` ones; any other controller's stay) and say so;
#   3. `kubectl delete -k manifests/` (operator, RBAC, namespace, CRDs), and
#      wait until the CRDs are gone.
#
# Running it again, or on a cluster without Legate, does nothing and succeeds.
#
# Usage: scripts/uninstall.sh [--objects-only]
#   --objects-only   steps 1 and 2 only, for an OLM install, where OLM owns
#                    the operator and the CRDs (see README.md, Uninstall).
# Environment: KUBECTL (default: kubectl from PATH); KUBECONFIG as kubectl
# reads it; LEGATE_UNINSTALL_TIMEOUT, how long each wait may take (seconds,
# default 120); LEGATE_UNINSTALL_STALL, how long step 1 waits without any
# object going before it gives up on the operator (seconds, default 20).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kubectl="${KUBECTL:-kubectl}"
timeout="${LEGATE_UNINSTALL_TIMEOUT:-120}"
stall="${LEGATE_UNINSTALL_STALL:-20}"
say() { echo "uninstall: $*" >&2; }

objects_only=0
case "${1:-}" in
  "") ;;
  --objects-only) objects_only=1 ;;
  *)
    echo "usage: $0 [--objects-only]" >&2
    exit 2
    ;;
esac
if ! command -v "$kubectl" >/dev/null 2>&1; then
  say "'$kubectl' is not on PATH; install kubectl or set KUBECTL"
  exit 1
fi

crds=(gateways.legate.dev mappings.legate.dev tlscontexts.legate.dev
  authservices.legate.dev ratelimitservices.legate.dev tcpmappings.legate.dev)

# The kinds whose CRD is installed, comma-separated (nothing without Legate).
installed_kinds() {
  "$kubectl" get crd "${crds[@]}" --ignore-not-found -o name | sed 's|.*/||' | paste -sd, -
}

# Every remaining object of `kinds`, one per line:
# "resource namespace name [finalizer...]".
remaining() {
  local format='{range .items[*]}{.kind}{" "}{.metadata.namespace}{" "}{.metadata.name}'
  format+='{range .metadata.finalizers[*]}{" "}{@}{end}{"\n"}{end}'
  local kind ns name rest
  "$kubectl" get "$kinds" -A -o "jsonpath=$format" | while read -r kind ns name rest; do
    if [[ -n "$name" ]]; then echo "${kind,,}s.legate.dev $ns $name $rest"; fi
  done
}

# "holder renewTime duration" of every Lease `legate-leader` (the operator's
# default name, in whichever namespace it runs), or nothing.
leases() {
  "$kubectl" get leases.coordination.k8s.io -A --field-selector metadata.name=legate-leader \
    -o 'jsonpath={range .items[*]}{.spec.holderIdentity}{" "}{.spec.renewTime}{" "}{.spec.leaseDurationSeconds}{"\n"}{end}' \
    2>/dev/null | awk 'NF >= 2' || true
}

# Waits until no object of `kinds` is left; returns 1 (with `why` set) as
# soon as waiting is pointless: no operator leads, its Lease is no longer
# renewed, nothing went for `stall` seconds, or `timeout` passed.
why=""
wait_for_operator() {
  local deadline=$((SECONDS + timeout)) count last=-1 progress=$SECONDS
  local lease seen="" renewed=$SECONDS duration left
  while :; do
    left="$(remaining)"
    [[ -z "$left" ]] && return 0
    count="$(wc -l <<<"$left")"
    if ((count != last)); then last=$count progress=$SECONDS; fi
    lease="$(leases)"
    if [[ -z "$lease" ]]; then
      why="no operator holds the Lease legate-leader"
      return 1
    fi
    if [[ "$lease" != "$seen" ]]; then seen="$lease" renewed=$SECONDS; fi
    duration="$(awk '{ print ($3 > 0 ? $3 : 15) }' <<<"$lease" | sort -n | tail -1)"
    if ((SECONDS - renewed > duration + 2)); then
      why="the operator's Lease legate-leader was not renewed for $((SECONDS - renewed))s"
      return 1
    fi
    if ((SECONDS - progress >= stall)); then
      why="no object went in ${stall}s"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      why="they were not gone after ${timeout}s"
      return 1
    fi
    sleep 1
  done
}

# Removes the `legate.dev/...` entries of each object in `left` (lines of
# `remaining`) by a JSON patch that tests each entry before removing it, from
# the last, so that indexes hold: other controllers' finalizers stay, and a
# list that changed meanwhile fails the test (the caller reads it again).
remove_legate_finalizers() {
  local resource ns name rest finalizers i patch
  while read -r resource ns name rest; do
    [[ -z "$name" ]] && continue
    read -r -a finalizers <<<"$rest"
    patch=""
    for ((i = ${#finalizers[@]} - 1; i >= 0; i--)); do
      [[ "${finalizers[i]}" == legate.dev/* ]] || continue
      patch+="${patch:+,}{\"op\":\"test\",\"path\":\"/metadata/finalizers/$i\",\"value\":\"${finalizers[i]}\"}"
      patch+=",{\"op\":\"remove\",\"path\":\"/metadata/finalizers/$i\"}"
    done
    [[ -z "$patch" ]] && continue
    if "$kubectl" patch "$resource" "$name" -n "$ns" --type=json -p "[$patch]" >/dev/null 2>&1; then
      say "removed Legate's finalizers from $resource $ns/$name"
    fi
  done <<<"$left"
  return 0
}

# Waits until nothing `names` (kubectl get arguments) lists is left.
wait_gone() {
  local what="$1" deadline=$((SECONDS + timeout)) left
  shift
  while :; do
    left="$("$kubectl" get "$@" --ignore-not-found -o name)"
    [[ -z "$left" ]] && return 0
    if ((SECONDS >= deadline)); then
      say "$what still there after ${timeout}s:"
      echo "$left" >&2
      return 1
    fi
    sleep 1
  done
}

kinds="$(installed_kinds)"
if [[ -z "$kinds" ]]; then
  say "no Legate CRD is installed: there are no Legate objects to delete"
else
  # 1. Delete every object while the operator still runs.
  say "deleting every Legate object ($kinds) in every namespace"
  "$kubectl" delete "$kinds" --all -A --wait=false
  if ! wait_for_operator; then
    # 2. Nobody will remove the finalizers: remove Legate's own.
    say "Legate objects are left and $why: removing Legate's finalizers (legate.dev/...) from them"
    deadline=$((SECONDS + timeout))
    while :; do
      left="$(remaining)"
      [[ -z "$left" ]] && break
      if ((SECONDS >= deadline)); then
        say "these objects are still there after ${timeout}s, held by the finalizers shown" \
          "(other controllers' ones: those controllers must remove them); then run this again:"
        echo "$left" >&2
        exit 1
      fi
      remove_legate_finalizers
      sleep 1
    done
  fi
  say "every Legate object is gone"
fi

if ((objects_only)); then
  say "--objects-only: the operator and the CRDs stay (with OLM, remove them through OLM)"
  exit 0
fi
# 3. The operator, its RBAC and namespace, and the CRDs.
say "deleting what manifests/ installed"
"$kubectl" delete -k "$root/manifests" --ignore-not-found --wait=false
wait_gone "the CRDs are" crd "${crds[@]}"
wait_gone "the namespace legate-system is" namespace legate-system
say "Legate is uninstalled"
