#!/usr/bin/env bash
# Checks that the tools the test command needs are installed, and says how to
# get each one that is missing. Exits non-zero if anything is missing.
set -uo pipefail
missing=0
need() { # tool hint
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "preflight: '$1' is missing: $2" >&2
    missing=1
  fi
}
need cargo  "install Rust with rustup (https://rustup.rs), then open a new shell"
need go     "install Go >= 1.26 (https://go.dev/doc/install); it builds the test control plane"
need python3 "install Python >= 3.9; its venv and pip install Envoy (apt-get install python3 python3-venv)"
need openssl "apt-get install openssl; up.sh makes the control plane's certificates with it"
need ip     "apt-get install iproute2; test hosts are network namespaces"
need setsid "apt-get install util-linux; the harness detaches the control plane with it"
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "preflight: python3 cannot make virtualenvs: apt-get install python3-venv" >&2
  missing=1
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "preflight: the tests create network namespaces and need root (or CAP_NET_ADMIN + CAP_SYS_ADMIN)" >&2
  missing=1
fi
exit $missing
