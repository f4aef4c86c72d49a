#!/usr/bin/env bash
# Stops exactly the processes that up.sh DIR started (by pid) and removes DIR.
set -uo pipefail
if [[ $# -ne 1 ]]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
dir="$1"
say() { echo "down.sh: $*" >&2; }
# Alive and not a zombie: orphans are reparented to an init that may reap late.
alive() { [[ -r "/proc/$1/stat" ]] && [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]; }
if [[ ! -d "$dir" ]]; then
  say "$dir does not exist; nothing to stop"
  exit 0
fi

# Reverse start order: controllers first, etcd last.
pids=()
for name in kube-controller-manager kube-apiserver etcd; do
  f="$dir/pids/$name.pid"
  [[ -f "$f" ]] || continue
  pid="$(cat "$f")"
  # Only signal the pid if it is still the process up.sh started (pids get reused).
  if alive "$pid" && grep -qa -- "$name" "/proc/$pid/cmdline" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null && say "stopping $name (pid $pid)"
    pids+=("$pid")
  fi
done
deadline=$((SECONDS + 15))
for pid in "${pids[@]}"; do
  while alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
  if alive "$pid"; then
    kill -KILL "$pid" 2>/dev/null && say "killed pid $pid (did not stop within 15s)"
  fi
done
rm -rf "$dir"
say "removed $dir"
