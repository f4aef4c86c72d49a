#!/usr/bin/env bash
# `make bench`: Legate's end-to-end scale benchmark (BENCHMARKS.md). For each
# size N it starts a fresh local stack (tests/stack.sh, with the release
# operator) and runs tests/src/bin/legate-bench against it twice:
#   bulk        N Mappings as one List (kubectl apply --server-side), then K
#               changes while a second client loops on an unrelated route, then
#               an idle wait
#   one-by-one  N creates through the API, each awaited (on a stack of its own,
#               so that neither load sees the other's objects)
# Knobs (environment):
#   BENCH_SIZES="1000 5000 10000"  the N to run
#   BENCH_CHANGES=200              K
#   BENCH_HOSTS=                   hostnames the Mappings spread over; unset:
#                                  100 for N <= 1000, else 1000
#   BENCH_IDLE=60                  seconds of idle write counting
#   BENCH_LOADS="bulk one-by-one"  which loads to run
#   BENCH_APPLY=kubectl            how bulk sends its List: kubectl (one PATCH
#                                  after the other) or concurrent (32 at once)
#   BENCH_OUT=.run/bench           reports and the operators' logs
#   LEGATE_BIN=                    an operator binary to measure instead of
#                                  building the release one (e.g. another commit's)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { echo "bench: $*" >&2; }
die() { say "$*"; exit 1; }

sizes="${BENCH_SIZES:-1000 5000 10000}"
changes="${BENCH_CHANGES:-200}"
idle="${BENCH_IDLE:-60}"
loads="${BENCH_LOADS:-bulk one-by-one}"
apply="${BENCH_APPLY:-kubectl}"
out="${BENCH_OUT:-$root/.run/bench}"
target="${CARGO_TARGET_DIR:-$root/target}"

number() { [[ "$2" =~ ^[0-9]+$ ]] || die "$1=$2 is not a whole number"; }
for n in $sizes; do number BENCH_SIZES "$n"; done
number BENCH_CHANGES "$changes"
number BENCH_IDLE "$idle"
[[ -z "${BENCH_HOSTS:-}" ]] || number BENCH_HOSTS "$BENCH_HOSTS"
[[ "$apply" == kubectl || "$apply" == concurrent ]] || die "BENCH_APPLY=$apply: expected kubectl or concurrent"
for load in $loads; do
  [[ "$load" == bulk || "$load" == one-by-one ]] || die "BENCH_LOADS: unknown load '$load' (bulk, one-by-one)"
done

# The echo upstream listens in a network namespace of its own (EndpointSlices
# refuse loopback addresses), as in the end-to-end tests.
[[ "$(id -u)" -eq 0 ]] || die "run as root: the echo upstream needs a network namespace (ip netns)"
command -v ip >/dev/null 2>&1 || die "'ip' is missing: apt-get install iproute2"
for tool in python3 openssl base64 cargo make; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is required but not on PATH"
done

say "control plane binaries and Envoy (make controlplane envoy)"
make -C "$root" --no-print-directory controlplane envoy
if [[ -n "${LEGATE_BIN:-}" ]]; then
  [[ -x "$LEGATE_BIN" ]] || die "LEGATE_BIN=$LEGATE_BIN is not an executable file"
  say "measuring the operator $LEGATE_BIN (LEGATE_BIN)"
else
  say "building the release operator"
  (cd "$root" && cargo build --release -p legate-operator --locked)
  LEGATE_BIN="$target/release/legate"
fi
export LEGATE_BIN
say "building the benchmark driver"
(cd "$root" && cargo build --release -p legate-tests --bin legate-bench --locked)

# Copies, so that every size runs the same binaries even if a build replaces
# target/ meanwhile.
mkdir -p "$out"
[[ "$LEGATE_BIN" -ef "$out/legate" ]] || cp "$LEGATE_BIN" "$out/legate"
cp "$target/release/legate-bench" "$out/legate-bench"
say "operator: $LEGATE_BIN ($(sha256sum "$out/legate" | cut -c1-12)), copied to $out/legate"
export LEGATE_BIN="$out/legate"
driver="$out/legate-bench"
report="$out/report-$(date -u +%Y%m%dT%H%M%SZ).txt"
stack=""
stop_stack() {
  [[ -n "$stack" ]] || return 0
  # Keep the logs: the stack's directory goes with it.
  cp "$stack/run/legate.log" "$out/$(basename "$stack")-legate.log" 2>/dev/null || true
  cp "$stack/run/envoy.log" "$out/$(basename "$stack")-envoy.log" 2>/dev/null || true
  "$root/tests/stack.sh" down "$stack" >/dev/null 2>&1 || say "could not stop the stack in $stack"
  stack=""
}
trap stop_stack EXIT
trap 'exit 130' INT TERM

{
  echo "Legate end-to-end benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, operator sha256 $(sha256sum "$LEGATE_BIN" | cut -c1-12)"
  dirty="$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo ' + uncommitted changes' || true)"
  echo "tree: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$dirty; sizes: $sizes; changes: $changes; idle: ${idle}s; bulk apply: $apply"
} | tee "$report"

for n in $sizes; do
  hosts="${BENCH_HOSTS:-$((n <= 1000 ? 100 : 1000))}"
  for load in $loads; do
    stack="$out/stack-$n-$load"
    [[ ! -e "$stack" ]] || "$root/tests/stack.sh" down "$stack" >/dev/null 2>&1 || true
    say "N=$n on $hosts hosts, $load: starting a fresh stack in $stack"
    "$root/tests/stack.sh" up "$stack"
    "$driver" --stack "$stack" --load "$load" --apply "$apply" --mappings "$n" --hosts "$hosts" \
      --changes "$changes" --idle-seconds "$idle" | tee -a "$report"
    stop_stack
  done
done
say "report: $report (operator logs beside it)"
