#!/usr/bin/env bash
# server-list.sh - GET /list over 100,000 indexed entries against nginx
# serving the same bytes, in one run:
#
#   bench/server-list.sh [TINY_DIR]     (default /tmp/bc/tiny)
#
#  - the server's /list from its cache (the body of the generation, kept on
#    disk: listcache.c), plain and gzip;
#  - the same list streamed from the catalog (what a request gets while
#    the cache is being remade; asked as ?from=1000-01-01, every entry);
#  - nginx serving the very body the server sent, plain (sendfile) and
#    with gzip_static (the .gz made by `gzip -6`).
# Each is asked ROUNDS (default 21) times, in turns, one request at a time
# (curl); medians, and the ratios to nginx.  Then the server's RSS.
#
# TINY_DIR is copied to a scratch folder (its own index is not touched);
# when missing it is made with bench/make-corpus.sh OUT 0 100000.
# BUILD=build-dir picks the build (default build-release).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/server-common.sh
src=${1:-/tmp/bc/tiny}
rounds=${ROUNDS:-21}
command -v nginx >/dev/null || { echo "server-list.sh: nginx not found (scripts/install-deps.sh --bench)" >&2; exit 1; }
if [ ! -d "$src" ]; then
    bench/make-corpus.sh "$(dirname "$src")" 0 100000
fi
ensure_build
work=$(mktemp -d /tmp/server-list.XXXXXX)
nginx_pid=
trap 'stop_server; [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null; rm -rf "$work"' EXIT
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
t0=$(date +%s.%N)
until ls "$work/tiny/.mediaindex/cache/"list-*.json.gz >/dev/null 2>&1; do sleep 0.1; done
echo "the cache was ready $(echo "$(date +%s.%N) - $t0" | bc) s after the first scan ended"
mkdir -p "$work/nginx/www" "$work/nginx/logs"
curl -s -o "$work/nginx/www/list.json" "$url"
gzip -6 -k "$work/nginx/www/list.json"
entries=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$work/nginx/www/list.json")
echo "entries: $entries, body: $(wc -c <"$work/nginx/www/list.json") bytes, gzip -6: $(wc -c <"$work/nginx/www/list.json.gz") bytes, the server's .gz: $(cat "$work/tiny/.mediaindex/cache/"list-*.json.gz | wc -c) bytes"
curl -s "$url?from=1000-01-01" | cmp - "$work/nginx/www/list.json" ||
    { echo "server-list.sh: the streamed list differs from the cached one" >&2; exit 1; }
curl -s --compressed "$url" | cmp - "$work/nginx/www/list.json" ||
    { echo "server-list.sh: the gzip list differs from the plain one" >&2; exit 1; }
echo "RSS after the scan: $(rss_kib "$SERVER_PID") KiB"

nport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
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
  default_type application/json;
  server {
    listen 127.0.0.1:$nport;
    root $work/nginx/www;
    location / { gzip_static on; }
  }
}
NGX
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" -g 'daemon off;' &
nginx_pid=$!
sleep 0.5
nurl="http://127.0.0.1:$nport/list.json"
curl -sf --compressed "$nurl" | cmp - "$work/nginx/www/list.json"

ask() {  # ask NAME URL [CURL ARGS]: one request's time in ms
    local name=$1 u=$2; shift 2
    curl -s -o /dev/null -w '%{time_total}\n' "$@" "$u" |
        awk '{printf "%.3f\n", $1 * 1000}' >>"$work/t-$name"
}
gz=(-H 'Accept-Encoding: gzip')
for _ in $(seq 1 "$rounds"); do
    ask cached "$url"
    ask nginx "$nurl"
    ask cached-gz "$url" "${gz[@]}"
    ask nginx-gz "$nurl" "${gz[@]}"
    ask streamed "$url?from=1000-01-01"
done
m() { median <"$work/t-$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo "GET /list, median of $rounds (ms):"
echo "  cached plain  $(m cached)   nginx (sendfile) $(m nginx)   x$(ratio "$(m cached)" "$(m nginx)") (target <= 2)"
echo "  cached gzip   $(m cached-gz)   nginx gzip_static $(m nginx-gz)   x$(ratio "$(m cached-gz)" "$(m nginx-gz)") (target <= 1.5)"
echo "  streamed      $(m streamed)   x$(ratio "$(m streamed)" "$(m nginx)") of nginx"
echo "RSS after $((rounds * 3)) lists: $(rss_kib "$SERVER_PID") KiB (peak since start: $(hwm_kib "$SERVER_PID") KiB)"
# 4 clients at once, from the cache.
wrk -t2 -c4 -d10s --latency "$url" | sed -n '/Latency Distribution/,/Requests\/sec/p'
