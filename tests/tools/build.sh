#!/usr/bin/env bash
# Builds legate-tools (the operator-framework bundle validators and kind's
# config decoding, from the Go modules pinned in go.mod) into a cache keyed by
# those versions and this module's sources. A warm run returns at once.
# Prints the binary's path last.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if ! command -v go >/dev/null 2>&1; then
  echo "build.sh: 'go' is not on PATH; install Go >= 1.26 (https://go.dev/doc/install) to build the test tools" >&2
  exit 1
fi

cd "$here"
api_version="$(go list -m -f '{{.Version}}' github.com/operator-framework/api)"
kind_version="$(go list -m -f '{{.Version}}' sigs.k8s.io/kind)"
# A change to the tool's own source must not reuse an older build.
sources="$(cat go.mod go.sum ./*.go | sha256sum | cut -c1-12)"
cache_root="${LEGATE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/legate}"
bin_dir="$cache_root/tools-olm-$api_version-kind-$kind_version-$sources"
binary="$bin_dir/legate-tools"

if [[ -x "$binary" && -f "$bin_dir/.complete" ]]; then
  echo "build.sh: reusing $binary" >&2
  echo "$binary"
  exit 0
fi

mkdir -p "$cache_root"
staging="$(mktemp -d "$cache_root/.build-tools.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
echo "build.sh: building legate-tools (operator-framework/api $api_version, kind $kind_version) into $bin_dir" >&2
start=$SECONDS
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$staging/legate-tools" .
touch "$staging/.complete"
chmod 755 "$staging"
rm -rf "$bin_dir"
mv "$staging" "$bin_dir"
trap - EXIT
echo "build.sh: built in $((SECONDS - start))s" >&2
echo "$binary"
