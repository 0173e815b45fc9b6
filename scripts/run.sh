#!/bin/sh
# Install what is missing, build, and serve a folder (default ~/Pictures)
# over HTTP with media-server on port 8000 (PORT=... to change it).
#   scripts/run.sh [DIR]
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
[ -d build-release ] || meson setup build-release --buildtype=release >/dev/null
ninja -C build-release >/dev/null
dir=${1:-${MEDIA_DIR:-$HOME/Pictures}}
mkdir -p "$dir"
exec build-release/server/media-server --storage_dir "$dir" --port "${PORT:-8000}"
