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
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/server-common.sh
src=${1:-/tmp/bc/photos}
[ -d "$src" ] || bench/make-corpus.sh "$(dirname "$src")" 100 0
ensure_build
work=$(mktemp -d /tmp/server-thumb.XXXXXX)
nginx_pid=
trap 'stop_server; [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null; rm -rf "$work"' EXIT
mkdir "$work/store"
find "$src" -maxdepth 1 -type f -name '*.jpg' | sort | head -100 |
    xargs -I{} cp {} "$work/store/"

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

run() {  # run NAME URL PATHS
    PATHS=$3 wrk -t2 -c64 -d10s -s "$work/rotate.lua" "$2" |
        awk -v name="$1" '/Requests\/sec/ {print name ": " $2 " req/s"; print $2 >"/dev/stderr"}' 2>"$work/$1.rps"
}
run nginx "http://127.0.0.1:$nport" "$work/paths-nginx"
run media-server "http://127.0.0.1:$PORT" "$work/paths-server"
awk -v a="$(cat "$work/media-server.rps")" -v b="$(cat "$work/nginx.rps")" \
    'BEGIN {printf "media-server / nginx: %.0f%%\n", 100 * a / b}'
echo "server RSS: $(rss_kib "$SERVER_PID") KiB (peak $(hwm_kib "$SERVER_PID") KiB)"
