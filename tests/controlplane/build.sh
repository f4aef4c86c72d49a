#!/usr/bin/env bash
# Builds the real Kubernetes control plane (kube-apiserver, kube-controller-manager,
# kubectl, etcd) from the Go modules pinned in go.mod, into a cache keyed by their
# versions. A warm run finds the binaries and returns at once. Prints the bin dir last.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if ! command -v go >/dev/null 2>&1; then
  echo "build.sh: 'go' is not on PATH; install Go >= 1.26 (https://go.dev/doc/install) to build the test control plane" >&2
  exit 1
fi

cd "$here"
k8s_version="$(go list -m -f '{{.Version}}' k8s.io/kubernetes)"
etcd_version="$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)"
cache_root="${LEGATE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/legate}"
bin_dir="$cache_root/k8s-$k8s_version-etcd-$etcd_version"
binaries=(etcd kube-apiserver kube-controller-manager kubectl)

complete=1
for b in "${binaries[@]}"; do [[ -x "$bin_dir/$b" ]] || complete=0; done
if [[ $complete == 1 && -f "$bin_dir/.complete" ]]; then
  echo "build.sh: reusing $bin_dir" >&2
  echo "$bin_dir"
  exit 0
fi

# "v1.37.2" -> major 1, minor 37
ver="${k8s_version#v}"
major="${ver%%.*}"; rest="${ver#*.}"; minor="${rest%%.*}"
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

mkdir -p "$cache_root"
staging="$(mktemp -d "$cache_root/.build.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
echo "build.sh: building kubernetes $k8s_version and etcd $etcd_version into $bin_dir (cold build: tens of minutes on 2 cores)" >&2
start=$SECONDS
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$staging/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kubectl
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$staging/etcd" go.etcd.io/etcd/server/v3
touch "$staging/.complete"
chmod 755 "$staging"
rm -rf "$bin_dir"
mv "$staging" "$bin_dir"
trap - EXIT
echo "build.sh: built in $((SECONDS - start))s" >&2
echo "$bin_dir"
