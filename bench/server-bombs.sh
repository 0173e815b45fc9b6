#!/usr/bin/env bash
# server-bombs.sh - the server's peak memory under hostile uploads, and a
# 300 MB JPEG upload against nginx's PUT of the same body plus
# `vipsthumbnail -s 256` of the same file, measured in the same run.
#
#   bench/server-bombs.sh [REPS]     (default 3)
#
# 1. 64 uploads at once from four loopback addresses (the per-address
#    upload cap is 32): 30 PNGs of 9999x9999 16-bit RGBA (760 KB each),
#    30 JPEGs whose header claims 65500x65500 over a real photo's data,
#    4 JPEGs of 300 MB (10000x10000 noise at Q100).  A client polls
#    /status meanwhile.  A 503 is retried after its Retry-After.  Every
#    upload must end acknowledged (201/200); each must have a thumbnail
#    or be listed in /api/problems (printed per kind, with the reasons).
#    1b: the same folder is scanned afresh.  1c: it is scanned afresh
#    again while 64 fresh copies are uploaded at once.  Prints the
#    server's VmHWM after each (a fresh process each), and the peak of a
#    VmRSS sampler (50 ms) with its time.
# 2. One 300 MB JPEG PUT: median of REPS wall times and the server's peak
#    RSS, against nginx PUT + vipsthumbnail (medians of REPS).
#
# The targets (issue 9), checked at the end (exit 1 if one fails): peak
# RSS (VmHWM, or the sampler's peak if higher) under 128 MiB in 1, 1b and
# 1c; the single 300 MB upload's VmHWM under 64 MiB, and the median of
# its per-rep time ratios to nginx PUT + vipsthumbnail at most 1.
#
# Needs curl, nginx, vips (libvips-tools), python3 and bc:
# `scripts/install-deps.sh --bench`.  BUILD=dir picks the build (default
# build-release, see server-common.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/server-common.sh
reps=${1:-3}
ensure_build
work=$(mktemp -d /tmp/server-bombs.XXXXXX)
trap 'stop_server; [ -n "${nginx_pid:-}" ] && kill "$nginx_pid" 2>/dev/null; rm -rf "$work"' EXIT
mkdir "$work/in" "$work/store"

# The fixtures.  Each copy differs by a comment so no two share a hash.
for b in r g b2; do
    vips gaussnoise "$work/$b.v" 10000 10000 --mean 128 --sigma 60 --seed $RANDOM
done
vips bandjoin "$work/r.v $work/g.v $work/b2.v" "$work/n.v"
vips jpegsave "$work/n.v" "$work/base300.jpg" --Q 100
rm -f "$work"/*.v
python3 - "$work" <<'EOF'
import struct, sys, zlib
d = sys.argv[1]
def chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
co = zlib.compressobj(9)
z = b''.join(co.compress(b'\0' * (1 + 9999 * 8)) for _ in range(9999)) + co.flush()
png = (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 9999, 9999, 16, 6, 0, 0, 0))
       + chunk(b'IDAT', z) + chunk(b'IEND', b''))
for i in range(30):
    open(f'{d}/in/png-{i}.png', 'wb').write(png[:33] + chunk(b'tEXt', b'k\0' + str(i).encode()) + png[33:])
def com(i):
    return b'\xff\xfe' + struct.pack('>H', 2 + len(str(i))) + str(i).encode()
# A real photo's data under a header that claims 65500x65500: a
# baseline JPEG of 3264x2448 made here (noise, so its data is real).
import subprocess
subprocess.run(['vips', 'gaussnoise', f'{d}/p.v', '3264', '2448'], check=True)
subprocess.run(['vips', 'jpegsave', f'{d}/p.v', f'{d}/photo.jpg', '--Q', '90'], check=True)
j = bytearray(open(f'{d}/photo.jpg', 'rb').read())
p = 2
while True:
    marker, length = j[p + 1], struct.unpack('>H', j[p + 2:p + 4])[0]
    if marker in (0xC0, 0xC1):
        j[p + 5:p + 9] = struct.pack('>HH', 65500, 65500)
        break
    p += 2 + length
for i in range(30):
    open(f'{d}/in/jh-{i}.jpg', 'wb').write(bytes(j[:2]) + com(i) + bytes(j[2:]))
big = open(f'{d}/base300.jpg', 'rb').read()
for i in range(4):
    open(f'{d}/in/big-{i}.jpg', 'wb').write(big[:2] + com(i) + big[2:])
# Fresh copies (other hashes) for the uploads during a scan (1c).
import os
os.mkdir(f'{d}/in2')
for i in range(30):
    open(f'{d}/in2/png-{i}.png', 'wb').write(png[:33] + chunk(b'tEXt', b'k\0x' + str(i).encode()) + png[33:])
    open(f'{d}/in2/jh-{i}.jpg', 'wb').write(bytes(j[:2]) + com(1000 + i) + bytes(j[2:]))
for i in range(4):
    open(f'{d}/in2/big-{i}.jpg', 'wb').write(big[:2] + com(1000 + i) + big[2:])
EOF
rm -f "$work/p.v"
cat "$work"/in/* >/dev/null

# Samples the server's VmRSS every 50 ms into $work/rss.$1 ("secs KiB").
start_sampler() {
    local out=$work/rss.$1
    SAMPLER_T0=$EPOCHREALTIME
    ( while kill -0 "$SERVER_PID" 2>/dev/null; do
          echo "$EPOCHREALTIME $(rss_kib "$SERVER_PID" 2>/dev/null || echo 0)"
          sleep 0.05
      done ) >"$out" &
    SAMPLER_PID=$!
}
# stop_sampler TAG: sets SAMPLED to the sampled peak and its time.
stop_sampler() {
    kill "$SAMPLER_PID" 2>/dev/null || true
    wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLED_KIB=$(sort -k2 -n "$work/rss.$1" | tail -1 | awk '{print $2}')
    SAMPLED=$(sort -k2 -n "$work/rss.$1" | tail -1 |
              awk -v t0="$SAMPLER_T0" '{printf "sampled peak VmRSS %s KiB at %.1f s", $2, $1 - t0}')
}

# upload_one FILE ADDR TAG: PUT until not a 503 (20 tries, Retry-After
# apart); "name code tries" into $work/codes.TAG, the last reply's body
# into $work/resp.TAG/name.
upload_one() {
    local f=$1 addr=$2 tag=$3 name code tries=0 ra
    name=$(basename "$f")
    while :; do
        tries=$((tries + 1))
        code=$(curl -s -m 900 --interface "$addr" -X PUT -F "file=@$f" \
                    -D "$work/resp.$tag/$name.h" -o "$work/resp.$tag/$name" \
                    -w '%{http_code}' "http://127.0.0.1:$PORT/image/$name" || true)
        [ "$code" = 503 ] && [ "$tries" -lt 20 ] || break
        ra=$(tr -d '\r' <"$work/resp.$tag/$name.h" |
             awk -F': ' 'tolower($1) == "retry-after" {print $2}')
        sleep "${ra:-5}"
    done
    echo "$name $code $tries" >>"$work/codes.$tag"
}

# upload_all DIR TAG: the 64 at once from four addresses, /status polled.
upload_all() {
    local dir=$1 tag=$2 n=0 t0 pids=()
    mkdir -p "$work/resp.$tag"
    t0=$(date +%s.%N)
    for f in "$dir"/*; do
        n=$((n + 1))
        upload_one "$f" "127.0.0.$((n % 4 + 1))" "$tag" &
        pids+=($!)
    done
    for _ in 1 2 3 4 5; do
        sleep 2
        curl -s -o /dev/null -w 'meanwhile GET /status: %{http_code} in %{time_total} s\n' \
            "http://127.0.0.1:$PORT/status"
    done
    wait "${pids[@]}"
    echo "$tag: $n uploads done in $(echo "$(date +%s.%N) - $t0" | bc) s"
}

# report TAG: per kind, the final codes, the retries, the thumbnails (named
# in the reply and on disk) and the problems (/api/problems, with their
# reasons); sets bad when an upload did not end 201/200 or has neither a
# thumbnail nor a problem.
report() {
    local tag=$1
    curl -s "http://127.0.0.1:$PORT/api/problems?limit=1000" >"$work/problems.$tag"
    python3 - "$work" "$tag" <<'EOF' || bad=1
import collections, json, os, sys
work, tag = sys.argv[1], sys.argv[2]
store = f'{work}/store'
probs = {p['path']: p for p in json.load(open(f'{work}/problems.{tag}'))['problems']}
kinds = collections.defaultdict(collections.Counter)
reasons = collections.defaultdict(collections.Counter)
ok = True
for line in open(f'{work}/codes.{tag}'):
    name, code, tries = line.split()
    kind = name.split('-')[0]
    k = kinds[kind]
    k['n'] += 1
    k['code ' + code] += 1
    if int(tries) > 1:
        k['retried'] += 1
    try:
        r = json.load(open(f'{work}/resp.{tag}/{name}'))
    except Exception:
        r = {}
    if code not in ('200', '201'):
        ok = False
        print(f'  NOT ACKNOWLEDGED: {name}: {code} after {tries} tries: {str(r)[:300]}')
        continue
    th, path = r.get('thumbnail_file'), r.get('file_path')
    if th and os.path.exists(f'{store}/.thumbnails/{th}'):
        k['thumbnail'] += 1
    elif path in probs:
        k['problem'] += 1
        p = probs[path]
        reasons[kind][f'{p["stage"]}: {p["error"]}: {p["reason"]}'] += 1
    else:
        ok = False
        print(f'  NEITHER thumbnail nor problem: {name} ({code}): {str(r)[:300]}')
for kind in sorted(kinds):
    k = kinds[kind]
    codes = ' '.join(f'{c[5:]} x{n}' for c, n in sorted(k.items()) if c.startswith('code '))
    print(f'  {kind}: {k["n"]} uploads, final {codes}, {k["retried"]} retried after 503;'
          f' {k["thumbnail"]} thumbnails, {k["problem"]} problems')
    for why, n in reasons[kind].items():
        print(f'    x{n} {why}')
sys.exit(0 if ok else 1)
EOF
}

# scan_report: the problems after a scan, per kind and reason.
scan_report() {
    curl -s "http://127.0.0.1:$PORT/status" | python3 -c '
import json, sys
j = json.load(sys.stdin)
print("  status: media", j["media"], "files", j["files"], "problems", j["problems"])'
    curl -s "http://127.0.0.1:$PORT/api/problems?limit=1000" | python3 -c '
import collections, json, sys
c = collections.Counter()
for p in json.load(sys.stdin)["problems"]:
    c[(p["path"].rsplit("/", 1)[-1].split("-")[0], p["stage"], p["error"], p["reason"])] += 1
for (kind, stage, err, why), n in sorted(c.items()):
    print(f"  problem x{n}: {kind}: {stage}: {err}: {why}")'
}

bad=0
limit1=$((128 * 1024)); limit2=$((64 * 1024))
check() {   # check WHAT VALUE LIMIT UNIT
    if [ "$(echo "$2 < $3" | bc)" = 1 ]; then
        echo "PASS: $1: $2 < $3 $4"
    else
        echo "FAIL: $1: $2 >= $3 $4"; bad=1
    fi
}

# 1. 64 at once.
start_server "$work/store"
wait_idle
echo "idle: VmHWM $(hwm_kib "$SERVER_PID") KiB"
start_sampler up
upload_all "$work/in" up
hwm_up=$(hwm_kib "$SERVER_PID")
stop_sampler up
hwm_up=$(( SAMPLED_KIB > hwm_up ? SAMPLED_KIB : hwm_up ))   # the larger
echo "1. 64 uploads: peak RSS (VmHWM or sampled) $hwm_up KiB; $SAMPLED;" \
     "thumbnail files $(ls "$work/store/.thumbnails" | wc -l)"
report up
stop_server

# 1b. A scan of the same folder, from scratch.
rm -rf "$work/store/.mediaindex" "$work/store/.thumbnails"
start_server "$work/store"
start_sampler scan
wait_idle
hwm_scan=$(hwm_kib "$SERVER_PID")
stop_sampler scan
hwm_scan=$(( SAMPLED_KIB > hwm_scan ? SAMPLED_KIB : hwm_scan ))   # the larger
echo "1b. scan of them: peak RSS (VmHWM or sampled) $hwm_scan KiB; $SAMPLED;" \
     "thumbnail files $(ls "$work/store/.thumbnails" | wc -l)"
scan_report
stop_server

# 1c. The scan from scratch again, and 64 fresh copies uploaded during it.
rm -rf "$work/store/.mediaindex" "$work/store/.thumbnails"
start_server "$work/store"
start_sampler both
upload_all "$work/in2" both
echo "    (the scan was $(curl -s "http://127.0.0.1:$PORT/status" |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["state"])') when the uploads ended)"
wait_idle
hwm_both=$(hwm_kib "$SERVER_PID")
stop_sampler both
hwm_both=$(( SAMPLED_KIB > hwm_both ? SAMPLED_KIB : hwm_both ))   # the larger
echo "1c. scan + 64 uploads: peak RSS (VmHWM or sampled) $hwm_both KiB; $SAMPLED;" \
     "thumbnail files $(ls "$work/store/.thumbnails" | wc -l)"
report both
stop_server
rm -rf "$work/store"

# 2. One 300 MB JPEG, against nginx PUT + vipsthumbnail.
nport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/nginx/dav" "$work/nginx/tmp" "$work/nginx/logs"
cat >"$work/nginx/nginx.conf" <<NGX
$( [ "$(id -u)" = 0 ] && echo "user root;" )
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log;
events {}
http {
  access_log off;
  client_body_temp_path $work/nginx/tmp;
  client_max_body_size 0;
  server { listen 127.0.0.1:$nport; root $work/nginx/dav;
           location / { dav_methods PUT; create_full_put_path on; } }
}
NGX
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" -g 'daemon off;' &
nginx_pid=$!
sleep 0.5
big=$work/in/big-0.jpg
for r in $(seq "$reps"); do
    rm -rf "$work/store" "$work/nginx/dav"/*
    mkdir "$work/store"
    start_server "$work/store"
    wait_idle 2>/dev/null
    code=$(curl -s -X PUT -F "file=@$big" "http://127.0.0.1:$PORT/image/big.jpg" \
               -o "$work/one.json" -w '%{http_code} %{time_total}')
    echo "${code#* }" >>"$work/ours"
    hwm_kib "$SERVER_PID" >>"$work/ours-hwm"
    case $code in 201\ *) ;; *) echo "single upload: $code: $(cat "$work/one.json")"; bad=1;; esac
    grep -q '"thumbnail_file":"' "$work/one.json" ||
        { echo "single upload: no thumbnail: $(cat "$work/one.json")"; bad=1; }
    stop_server
    a=$(curl -s -T "$big" "http://127.0.0.1:$nport/big.jpg" -o /dev/null -w '%{time_total}')
    t0=$(date +%s.%N)
    vipsthumbnail -s 256 -o "$work/vt.png" "$big"
    echo "$a + $(date +%s.%N) - $t0" | bc >>"$work/theirs"
    echo "scale=3; $(tail -1 "$work/ours") / $(tail -1 "$work/theirs")" | bc >>"$work/ratios"
    echo "  rep $r: media-server $(tail -1 "$work/ours") s, VmHWM $(tail -1 "$work/ours-hwm") KiB;" \
         "nginx PUT $a s + vipsthumbnail = $(tail -1 "$work/theirs") s; ratio $(tail -1 "$work/ratios")"
done
ours=$(median <"$work/ours"); theirs=$(median <"$work/theirs")
echo "300 MB JPEG PUT: media-server $ours s (peak RSS $(median <"$work/ours-hwm") KiB);" \
     "nginx PUT + vipsthumbnail $theirs s; median of the paired ratios $(median <"$work/ratios")"
hwm_one=$(median <"$work/ours-hwm")

echo "targets (issue 9):"
check "1.  64 bomb uploads, peak RSS" "$hwm_up" "$limit1" KiB
check "1b. scan of them, peak RSS" "$hwm_scan" "$limit1" KiB
check "1c. scan + 64 uploads, peak RSS" "$hwm_both" "$limit1" KiB
check "2.  300 MB JPEG upload, VmHWM (median)" "$hwm_one" "$limit2" KiB
# Time: the median of the per-rep ratios (each pair run back to back), so
# that a slow moment of a shared machine counts against both sides.
check "2.  300 MB JPEG upload time / (nginx PUT + vipsthumbnail), median of pairs" \
      "$(median <"$work/ratios")" 1.000001 ""
exit "$bad"
