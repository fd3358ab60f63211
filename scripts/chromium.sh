#!/usr/bin/env bash
# Prints the path of a Chromium binary for the web console's browser test
# (httpapi/console_test.go, docs/console.md), installing Debian's
# chromium package first if none is found. The install needs root and
# apt's access to Debian's mirrors, as on a fresh CI machine; everything
# else about the test comes from this repository.
#
#   scripts/chromium.sh          the path on the last line of stdout
#
# Environment (optional):
#   CHROMIUM   a browser binary to use as is (chromium or Google Chrome)
#
# Progress of an install goes to stderr, so stdout holds only the path.
set -euo pipefail

find_chromium() {
  if [ -n "${CHROMIUM:-}" ]; then
    command -v "$CHROMIUM" && return 0
    echo "CHROMIUM=$CHROMIUM is not an executable" >&2
    return 1
  fi
  local b
  for b in chromium chromium-browser google-chrome-stable google-chrome; do
    if command -v "$b"; then
      return 0
    fi
  done
  return 1
}

if find_chromium; then
  exit 0
fi
if [ -n "${CHROMIUM:-}" ]; then
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "no chromium found and no apt-get to install it: install Chromium (Debian/Ubuntu package chromium) or set CHROMIUM to a browser binary" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo="sudo -n"
  else
    echo "no chromium found, and installing it needs root: run 'apt-get install -y chromium' as root" >&2
    exit 1
  fi
fi

echo "installing chromium with apt-get (once per machine)" >&2
start=$(date +%s)
{
  $sudo apt-get update -q &&
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium
} >&2 || {
  echo "apt-get install chromium failed (see above): install the Debian package chromium, or set CHROMIUM to a browser binary" >&2
  exit 1
}
echo "chromium installed in $(($(date +%s) - start))s" >&2

find_chromium || {
  echo "apt-get installed chromium but no chromium binary is on PATH" >&2
  exit 1
}
