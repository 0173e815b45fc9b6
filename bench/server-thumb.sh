#!/usr/bin/env bash
# server-thumb.sh - GET /thumbnail/<sha> over 100 hashes with
# `wrk -t2 -c64 -d10s`, against nginx serving the same .thumbnails/ files
# (sendfile, 2 workers, on its own loopback port) with the same settings.
#
#   bench/server-thumb.sh [PHOTOS_DIR]    (default /tmp/bc/photos)
#
# 100 photos of PHOTOS_DIR are copied to a scratch folder and indexed (the
# scan makes their thumbnails); when PHOTOS_DIR is missing it is made with
# bench/make-corpus.sh OUT 100 0.  BUILD=build-dir picks the build.
# RUNS (default 3) alternating runs of each, medians.  BASE_BIN=path/to/
# another media-server adds it (on a copy of the folder) to the same runs,
# to compare two builds in one run of a noisy machine.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/server-common.sh
src=${1:-/tmp/bc/photos}
[ -d "$src" ] || bench/make-corpus.sh "$(dirname "$src")" 100 0
ensure_build
work=$(mktemp -d /tmp/server-thumb.XXXXXX)
nginx_pid=
trap 'stop_server; [ -n "$base_pid" ] && kill "$base_pid"; [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null; rm -rf "$work"' EXIT
mkdir "$work/store"
find "$src" -maxdepth 1 -type f -name '*.jpg' | sort | head -100 |
    xargs -I{} cp {} "$work/store/"

base_pid=
if [ -n "${BASE_BIN:-}" ]; then
    cp -a "$work/store" "$work/base"
fi
start_server "$work/store" --threads 64
wait_idle
curl -s "http://127.0.0.1:$PORT/list" | python3 -c '
import json, sys
for h, e in json.load(sys.stdin).items():
    if e.get("thumbnail_file"):
        print(h)' >"$work/hashes"
n=$(wc -l <"$work/hashes")
echo "hashes with a thumbnail: $n, mean size $(cat "$work"/store/.thumbnails/*.png | wc -c | awk -v n="$n" '{printf "%d", $1 / n}') bytes"
sed 's|^|/thumbnail/|' "$work/hashes" >"$work/paths-server"
sed 's|^|/.thumbnails/|; s|$|.png|' "$work/hashes" >"$work/paths-nginx"
cat >"$work/rotate.lua" <<'LUA'
local paths = {}
for line in io.lines(os.getenv("PATHS")) do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
LUA

# nginx on the same files.
nport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/nginx/logs"
cat >"$work/nginx/nginx.conf" <<NGX
$( [ "$(id -u)" = 0 ] && echo "user root;" )
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  default_type image/png;
  server {
    listen 127.0.0.1:$nport;
    root $work/store;
  }
}
NGX
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" -g 'daemon off;' &
nginx_pid=$!
sleep 0.5
curl -sf -o /dev/null "http://127.0.0.1:$nport$(head -1 "$work/paths-nginx")"
curl -sf -o /dev/null "http://127.0.0.1:$PORT$(head -1 "$work/paths-server")"

if [ -n "${BASE_BIN:-}" ]; then
    main_pid=$SERVER_PID main_port=$PORT main_log=$SERVER_LOG
    SERVER_BIN=$BASE_BIN start_server "$work/base" --threads 64
    wait_idle
    base_pid=$SERVER_PID base_port=$PORT
    SERVER_PID=$main_pid PORT=$main_port SERVER_LOG=$main_log
    curl -sf -o /dev/null "http://127.0.0.1:$base_port$(head -1 "$work/paths-server")"
fi

run() {  # run NAME URL PATHS: appends its req/s to $work/NAME.rps
    PATHS=$3 wrk -t2 -c64 -d10s -s "$work/rotate.lua" "$2" |
        awk '/Requests\/sec/ {print $2}' >>"$work/$1.rps"
}
for i in $(seq 1 "${RUNS:-3}"); do
    run nginx "http://127.0.0.1:$nport" "$work/paths-nginx"
    run media-server "http://127.0.0.1:$PORT" "$work/paths-server"
    [ -n "$base_pid" ] && run base "http://127.0.0.1:$base_port" "$work/paths-server"
    echo "run $i: nginx $(tail -1 "$work/nginx.rps"), media-server $(tail -1 "$work/media-server.rps")${base_pid:+, base $(tail -1 "$work/base.rps")} req/s"
done
ng=$(median <"$work/nginx.rps")
ms=$(median <"$work/media-server.rps")
echo "median: nginx $ng, media-server $ms req/s: media-server / nginx $(awk -v a="$ms" -v b="$ng" 'BEGIN {printf "%.2f", a / b}')"
if [ -n "$base_pid" ]; then
    bs=$(median <"$work/base.rps")
    echo "median: base $bs req/s: base / nginx $(awk -v a="$bs" -v b="$ng" 'BEGIN {printf "%.2f", a / b}'), media-server / base $(awk -v a="$ms" -v b="$bs" 'BEGIN {printf "%.2f", a / b}')"
fi
echo "server RSS: $(rss_kib "$SERVER_PID") KiB (peak $(hwm_kib "$SERVER_PID") KiB)"
