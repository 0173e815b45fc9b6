#!/bin/sh
# Install the Debian packages mediaindex needs to build and test.
# Idempotent; prints nothing when everything is already there.
#   scripts/install-deps.sh          build and test dependencies
#   scripts/install-deps.sh --bench  also the benchmark tools
#   scripts/install-deps.sh --browser  also what the browser tests need:
#       Debian's chromium, node and npm (Debian's only if no node/npm is on
#       PATH already), and playwright-core in tests/browser/node_modules
set -eu
cd "$(dirname "$0")/.."

pkgs="gcc libc6-dev meson ninja-build pkg-config python3
libsqlite3-dev libexif-dev libssl-dev libsodium-dev libcjson-dev libstb-dev
libturbojpeg0-dev libcivetweb-dev"
browser=
case "${1:-}" in
--bench) pkgs="$pkgs hyperfine wrk nginx-light libvips-tools time jq openssl" ;;
--browser)
    browser=1
    pkgs="$pkgs chromium"
    command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
    command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
    ;;
esac

# playwright-core, pinned by tests/browser/package-lock.json.
browser_npm() {
    [ -n "$browser" ] || return 0
    [ -f tests/browser/node_modules/playwright-core/package.json ] && return 0
    echo "install-deps: npm ci in tests/browser" >&2
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error) >&2
}

missing=
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    browser_npm
    exit 0
fi

sudo=
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
        echo "install-deps: need root (or sudo) to install:$missing" >&2
        exit 1
    }
    sudo=sudo
fi
echo "install-deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
browser_npm
