#!/usr/bin/env bash
# Installs Debian's Chromium and its WebDriver (packages chromium and
# chromium-driver: /usr/bin/chromium, /usr/bin/chromedriver) for the
# diagnostics page's browser test, and prints the driver's path. A warm run
# only checks that both are there and run.
set -euo pipefail
browser=/usr/bin/chromium
driver=/usr/bin/chromedriver

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
  # A fresh machine may have no package lists yet; a stale one may name
  # versions the mirror no longer has. Either way the first try says so.
  if ! apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null; then
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null || {
      echo "install-chromium: apt-get could not install chromium chromium-driver" >&2
      exit 1
    }
  fi
fi
"$driver" --version >/dev/null || { echo "install-chromium: $driver does not run on this machine" >&2; exit 1; }
"$browser" --version >/dev/null 2>&1 || { echo "install-chromium: $browser does not run on this machine" >&2; exit 1; }
echo "$driver"
