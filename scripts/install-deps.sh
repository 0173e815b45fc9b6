#!/bin/sh
# Install the Debian packages mediaindex needs to build and test.
# Idempotent; prints nothing when everything is already there.
#   scripts/install-deps.sh          build and test dependencies
#   scripts/install-deps.sh --bench  also the benchmark tools
set -eu

pkgs="gcc libc6-dev meson ninja-build pkg-config python3
libsqlite3-dev libexif-dev libssl-dev libsodium-dev libcjson-dev libstb-dev
libturbojpeg0-dev libcivetweb-dev"
if [ "${1:-}" = "--bench" ]; then
    pkgs="$pkgs hyperfine wrk nginx-light libvips-tools time jq openssl"
fi

missing=
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

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
