#!/bin/sh
# Install what is missing, build, and index a folder (default ~/Pictures),
# printing one JSON line per photo or video.
#   scripts/run.sh [DIR]
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
[ -d build-release ] || meson setup build-release --buildtype=release >/dev/null
ninja -C build-release >/dev/null
dir=${1:-${MEDIA_DIR:-$HOME/Pictures}}
mkdir -p "$dir"
exec build-release/examples/mi-scan "$dir"
