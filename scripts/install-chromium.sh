#!/usr/bin/env bash
# Installs Debian's Chromium and its WebDriver (packages chromium and
# chromium-driver: /usr/bin/chromium, /usr/bin/chromedriver) for the
# diagnostics page's browser test, and prints the driver's path. A warm run
# only checks that both are there and run.
set -euo pipefail
# Elsewhere than Debian, point these at a Chromium and its chromedriver (the tests read them too).
browser="${LEGATE_CHROMIUM:-/usr/bin/chromium}"
driver="${LEGATE_CHROMEDRIVER:-/usr/bin/chromedriver}"

if [[ ! -x "$browser" || ! -x "$driver" ]]; then
  command -v apt-get >/dev/null 2>&1 || {
    echo "install-chromium: $browser or $driver is missing and there is no apt-get; install Chromium and its chromedriver, then set LEGATE_CHROMIUM and LEGATE_CHROMEDRIVER to their paths" >&2
    exit 1
  }
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-chromium: run as root, or: sudo apt-get install -y chromium chromium-driver" >&2
    exit 1
  fi
  echo "install-chromium: installing Debian's chromium and chromium-driver" >&2
  export DEBIAN_FRONTEND=noninteractive
  log="$(mktemp)"
  trap 'rm -f "$log"' EXIT
  install_packages() { apt-get install -y -q --no-install-recommends chromium chromium-driver >"$log" 2>&1; }
  # A fresh machine may have no package lists yet, and a stale one may name
  # versions the mirror no longer has: update once and try again.
  if ! install_packages; then
    if ! apt-get update -q >"$log" 2>&1 || ! install_packages; then
      cat "$log" >&2
      echo "install-chromium: apt-get could not install chromium chromium-driver (output above)" >&2
      exit 1
    fi
  fi
fi
"$driver" --version >/dev/null || { echo "install-chromium: $driver does not run on this machine" >&2; exit 1; }
"$browser" --version >/dev/null 2>&1 || { echo "install-chromium: $browser does not run on this machine" >&2; exit 1; }
echo "$driver"
