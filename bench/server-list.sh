#!/usr/bin/env bash
# server-list.sh - GET /list over 100,000 indexed entries: median latency
# of 21 sequential requests (curl), and the server's RSS (VmRSS, VmHWM).
#
#   bench/server-list.sh [TINY_DIR]     (default /tmp/bc/tiny)
#
# TINY_DIR is copied to a scratch folder (its own index is not touched);
# when missing it is made with bench/make-corpus.sh OUT 0 100000.
# BUILD=build-dir picks the build (default build-release).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/server-common.sh
src=${1:-/tmp/bc/tiny}
if [ ! -d "$src" ]; then
    bench/make-corpus.sh "$(dirname "$src")" 0 100000
fi
ensure_build
work=$(mktemp -d /tmp/server-list.XXXXXX)
trap 'stop_server; rm -rf "$work"' EXIT
cp -a "$src" "$work/tiny"
rm -rf "$work/tiny/.mediaindex" "$work/tiny/.thumbnails"

start_server "$work/tiny"
wait_idle
echo "RSS after the first scan: $(rss_kib "$SERVER_PID") KiB (peak $(hwm_kib "$SERVER_PID") KiB)"
# Measure a server started on the built index, as after any restart.
stop_server
start_server "$work/tiny"
wait_idle
url="http://127.0.0.1:$PORT/list"
entries=$(curl -s "$url" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
bytes=$(curl -s "$url" | wc -c)
echo "entries: $entries, body: $bytes bytes"
echo "RSS after the scan: $(rss_kib "$SERVER_PID") KiB"
for _ in $(seq 1 21); do
    curl -s -o /dev/null -w '%{time_total}\n' "$url"
done | median | awk '{printf "GET /list median latency: %.1f ms\n", $1 * 1000}'
echo "RSS after 21 lists: $(rss_kib "$SERVER_PID") KiB (peak since start: $(hwm_kib "$SERVER_PID") KiB)"
# 4 clients at once.
wrk -t2 -c4 -d10s --latency "$url" | sed -n '/Latency Distribution/,/Requests\/sec/p'
echo "RSS after wrk -c4: $(rss_kib "$SERVER_PID") KiB (peak: $(hwm_kib "$SERVER_PID") KiB)"
