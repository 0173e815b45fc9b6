#!/usr/bin/env bash
# auth.sh - what accounts cost the server, measured in one run:
#
#   BUILD=build-release bench/auth.sh [PHOTOS_DIR]    (default /tmp/bc/photos)
#
#  1. GET /thumbnail/<sha> over 100 hashes, `wrk -t2 -c64 -d${DUR}s`, on two
#     servers of the same photos: one open (no account), one with accounts
#     asked with `Authorization: Bearer <key>`; RUNS (default 5) alternating
#     runs each, medians, and the key's cost in % of open throughput.
#  2. A logged-in user's /thumbnail latency (wrk -t1 -c6 --latency, session
#     cookie), paced like a scrolling gallery (each connection asks every
#     PACE ms, default 20) and saturated (as fast as answers come), idle and
#     while 100 clients try wrong passwords as fast as
#     they can (random user names, each from its own X-Forwarded-For
#     address through --trusted-proxy 127.0.0.1, so the per-address and
#     per-user throttles never slow them down: the worst case, a botnet);
#     RUNS alternating runs each, medians of p50/p99, and what the flood got
#     (401 = a full argon2 verify, 503 = refused while AUTH_MAX_QUEUE wait).
#     PIN=1 (the default) runs the flood client on core 1 and the server and
#     the user's wrk on core 0, idle and flooded alike: the Python client
#     takes 1.2 cores of the two, a cost an attacker's own machines would
#     bear, so unpinned (PIN=0) the figure says more about the client than
#     about what the attack costs the server.
# PARTS=1 or PARTS=2 runs one part only (default both).
# The client (wrk, the Python flood) shares the machine's cores with the
# server.  100 photos of PHOTOS_DIR are copied twice; when PHOTOS_DIR is
# missing it is made with bench/make-corpus.sh OUT 100 0.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/server-common.sh
src=${1:-/tmp/bc/photos}
runs=${RUNS:-5}
dur=${DUR:-5}
parts=${PARTS:-12}
pin=${PIN:-1}
command -v wrk >/dev/null || { echo "auth.sh: wrk not found (scripts/install-deps.sh --bench)" >&2; exit 1; }
[ -d "$src" ] || bench/make-corpus.sh "$(dirname "$src")" 100 0
ensure_build
work=$(mktemp -d /tmp/auth-bench.XXXXXX)
open_pid= keyed_pid= flood_pid=
cleanup() {
    [ -n "$flood_pid" ] && kill "$flood_pid" 2>/dev/null
    for p in $open_pid $keyed_pid; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
for d in open keyed; do
    mkdir "$work/$d"
    find "$src" -maxdepth 1 -type f -name '*.jpg' | sort | head -100 |
        xargs -I{} cp {} "$work/$d/"
done

start_server "$work/open" --threads 64
open_pid=$SERVER_PID open_port=$PORT
wait_idle
start_server "$work/keyed" --threads 64 --trusted-proxy 127.0.0.1
keyed_pid=$SERVER_PID keyed_port=$PORT
user_cpu=() flood_cpu=()
if [ "$pin" = 1 ] && [[ $parts == *2* ]]; then
    taskset -a -p -c 0 "$keyed_pid" >/dev/null
    user_cpu=(taskset -c 0) flood_cpu=(taskset -c 1)
fi
wait_idle
PORT=$open_port
curl -s "http://127.0.0.1:$open_port/list" | python3 -c '
import json, sys
for h, e in json.load(sys.stdin).items():
    if e.get("thumbnail_file"):
        print("/thumbnail/" + h)' >"$work/paths"
echo "hashes with a thumbnail: $(wc -l <"$work/paths")"
echo "bench-password" | "$SERVER_BIN" --storage_dir "$work/keyed" user add bench --role member >/dev/null
key=$("$SERVER_BIN" --storage_dir "$work/keyed" key create --user bench --name wrk --scope read | tail -1)
cookie=$(curl -s -D - -o /dev/null -H 'Content-Type: application/json' \
    -d '{"username":"bench","password":"bench-password"}' \
    "http://127.0.0.1:$keyed_port/api/auth/login" |
    sed -n 's/^[Ss]et-[Cc]ookie: \(mi_session=[^;]*\).*/\1/p')
[ -n "$cookie" ] || { echo "auth.sh: no session cookie" >&2; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$keyed_port$(head -1 "$work/paths")")
[ "$code" = 401 ] || { echo "auth.sh: the keyed server answered $code without a key" >&2; exit 1; }

cat >"$work/rotate.lua" <<'LUA'
local paths = {}
for line in io.lines(os.getenv("PATHS")) do paths[#paths + 1] = line end
local auth, cookie = os.getenv("AUTHZ"), os.getenv("COOKIE")
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end
if cookie and cookie ~= "" then wrk.headers["Cookie"] = cookie end
-- DELAY (ms): each connection waits that long before its next request, a
-- user's pace rather than as fast as the server answers.
local pause = tonumber(os.getenv("DELAY") or "0")
if pause > 0 then delay = function() return pause end end
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
LUA
export PATHS=$work/paths

rps() {  # rps PORT AUTHZ -> requests/s (fails on any non-2xx)
    local out
    out=$(AUTHZ=$2 COOKIE= wrk -t2 -c64 -d"${dur}s" -s "$work/rotate.lua" "http://127.0.0.1:$1")
    if grep -q "Non-2xx" <<<"$out"; then echo "auth.sh: errors: $out" >&2; exit 1; fi
    awk '/^Requests\/sec/ {print $2}' <<<"$out"
}
ms() {  # wrk's "1.23ms" / "456.00us" / "1.02s" -> ms
    awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000} printf "%.3f\n", v}'
}
lat() {  # lat [DELAY] -> "p50 p99" in ms, a logged-in user's 6 connections
    local out
    out=$(AUTHZ= COOKIE=$cookie DELAY=${1:-0} "${user_cpu[@]}" wrk -t1 -c6 -d"${dur}s" --latency -s "$work/rotate.lua" "http://127.0.0.1:$keyed_port")
    if grep -q "Non-2xx" <<<"$out"; then echo "auth.sh: errors: $out" >&2; exit 1; fi
    echo "$(awk '$1 == "50%" {print $2}' <<<"$out" | ms) $(awk '$1 == "99%" {print $2}' <<<"$out" | ms)"
}

if [[ $parts == *1* ]]; then
echo
echo "== 1. /thumbnail, wrk -t2 -c64 -d${dur}s: open vs Authorization: Bearer (req/s)"
: >"$work/open.txt"; : >"$work/keyed.txt"
for i in $(seq 1 "$runs"); do
    o=$(rps "$open_port" "")
    k=$(rps "$keyed_port" "Bearer $key")
    echo "run $i: open $o, bearer key $k"
    echo "$o" >>"$work/open.txt"; echo "$k" >>"$work/keyed.txt"
done
mo=$(median <"$work/open.txt"); mk=$(median <"$work/keyed.txt")
echo "median: open $mo req/s, bearer key $mk req/s: the key costs $(awk -v o="$mo" -v k="$mk" 'BEGIN {printf "%.1f", (1 - k / o) * 100}') %"
fi

# The flood: 100 threads, each a wrong password after another.
cat >"$work/flood.py" <<'PY'
import http.client, json, random, signal, sys, threading, time
port, out = int(sys.argv[1]), sys.argv[2]
stop = threading.Event()
counts = {}
lock = threading.Lock()
def one(n):
    rnd = random.Random(n)
    c = None
    while not stop.is_set():
        try:
            if c is None:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            body = json.dumps({"username": "u%08x" % rnd.getrandbits(32),
                               "password": "wrong password %d" % n})
            c.request("POST", "/api/auth/login", body, {
                "Content-Type": "application/json",
                "X-Forwarded-For": "10.%d.%d.%d" % (rnd.randrange(256), rnd.randrange(256), rnd.randrange(1, 255))})
            r = c.getresponse(); r.read()
            st = r.status
            if r.getheader("Connection", "").lower() == "close":
                c.close(); c = None
        except Exception:
            st = "err"
            c = None
        with lock:
            counts[st] = counts.get(st, 0) + 1
t0 = time.time()
threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(100)]
for t in threads: t.start()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
while not stop.is_set(): time.sleep(0.05)
with lock:
    with open(out, "w") as f:
        f.write(" ".join("%s:%d" % (k, v) for k, v in sorted(counts.items(), key=str)) +
                " in %.1f s\n" % (time.time() - t0))
PY

# FLOOD=wrk: the same flood from wrk (C, one thread, 100 connections),
# which costs the machine far less per attempt than Python's threads.
cat >"$work/flood.lua" <<'LUA'
wrk.method = "POST"
request = function()
  local ip = string.format("10.%d.%d.%d", math.random(0, 255),
                           math.random(0, 255), math.random(1, 254))
  local body = string.format('{"username": "u%08x", "password": "wrong password"}',
                             math.random(0, 2147483647))
  return wrk.format("POST", "/api/auth/login", {["Content-Type"] = "application/json",
                    ["X-Forwarded-For"] = ip}, body)
end
local counts = {}
response = function(status) counts[status] = (counts[status] or 0) + 1 end
LUA
flood() {  # flood PORT OUT: until SIGTERM
    if [ "${FLOOD:-python}" = wrk ]; then
        "${flood_cpu[@]}" wrk -t1 -c100 -d600s -s "$work/flood.lua" "http://127.0.0.1:$1" >"$2.wrk" 2>&1 &
        local w=$!
        trap 'kill -INT $w; wait $w; awk "/requests in/ {r=\$1} /Non-2xx/ {n=\$5} END {printf \"%s requests, %s non-2xx\\n\", r, n}" "$2.wrk" >"$2"; exit 0' TERM
        wait $w
    else
        exec "${flood_cpu[@]}" python3 "$work/flood.py" "$1" "$2"
    fi
}

if [[ $parts == *2* ]]; then
echo
echo "== 2. a logged-in user's /thumbnail latency (wrk -t1 -c6 --latency, ms), idle vs 100 wrong-password clients"
echo "   paced: each connection asks every ${PACE:=20} ms (a gallery scrolling: up to $((6 * 1000 / PACE)) thumbnails/s);"
echo "   saturated: as fast as the server answers (the user's requests queue behind each other)"
[ "$pin" = 1 ] && echo "   pinned: the server and the user's wrk on core 0, the flood client on core 1 (PIN=0: unpinned)"
for f in i50 i99 f50 f99 si99 sf99; do : >"$work/$f"; done
for i in $(seq 1 "$runs"); do
    read -r p50 p99 < <(lat "$PACE")
    read -r _ s99 < <(lat)
    echo "$p50" >>"$work/i50"; echo "$p99" >>"$work/i99"; echo "$s99" >>"$work/si99"
    flood "$keyed_port" "$work/flood-$i.txt" &
    flood_pid=$!
    sleep 1
    read -r f50 f99 < <(lat "$PACE")
    read -r _ fs99 < <(lat)
    kill -TERM "$flood_pid"; wait "$flood_pid" 2>/dev/null || true; flood_pid=
    echo "$f50" >>"$work/f50"; echo "$f99" >>"$work/f99"; echo "$fs99" >>"$work/sf99"
    echo "run $i: paced idle p50 $p50 p99 $p99, flood p50 $f50 p99 $f99; saturated p99 idle $s99, flood $fs99; flood got $(cat "$work/flood-$i.txt")"
    sleep 1
done
i99=$(median <"$work/i99"); f99=$(median <"$work/f99")
si99=$(median <"$work/si99"); sf99=$(median <"$work/sf99")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo "median, paced: idle p50 $(median <"$work/i50") p99 $i99; flood p50 $(median <"$work/f50") p99 $f99: p99 x$(ratio "$f99" "$i99") (target < 2)"
echo "median, saturated: p99 idle $si99, flood $sf99: x$(ratio "$sf99" "$si99")"
echo "argon2id verify (t=3, m=32 MiB) here: $(grep -c 'login failed' "$SERVER_LOG" || true) failed logins logged by the keyed server"
fi
