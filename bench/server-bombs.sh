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
#    /status meanwhile.  Then the same folder is scanned afresh.
#    Prints the server's VmHWM after each.
# 2. One 300 MB JPEG PUT: median of REPS wall times and the server's peak
#    RSS, against nginx PUT + vipsthumbnail (medians of REPS).
#
# Needs curl, nginx, vips (libvips-tools) and python3:
# `scripts/install-deps.sh --bench`.  BUILD=dir picks the build.
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
EOF
rm -f "$work/p.v"
cat "$work"/in/* >/dev/null

# 1. 64 at once, then a scan of them.
start_server "$work/store"
wait_idle
echo "idle: VmHWM $(hwm_kib "$SERVER_PID") KiB"
t0=$(date +%s.%N)
n=0
for f in "$work"/in/*; do
    n=$((n + 1))
    curl -s -m 900 --interface "127.0.0.$((n % 4 + 1))" -X PUT -F "file=@$f" \
        "http://127.0.0.1:$PORT/image/$(basename "$f")" -o /dev/null -w '%{http_code}\n' \
        >>"$work/codes" &
done
for _ in 1 2 3 4 5; do
    sleep 2
    curl -s -o /dev/null -w 'meanwhile GET /status: %{http_code} in %{time_total} s\n' \
        "http://127.0.0.1:$PORT/status"
done
wait $(jobs -p | grep -vx "$SERVER_PID") 2>/dev/null || true
echo "64 uploads: $(sort "$work/codes" | uniq -c | awk '{printf "%s x %s ", $1, $2}')in $(echo "$(date +%s.%N) - $t0" | bc) s;" \
     "thumbnails $(ls "$work/store/.thumbnails" | wc -l); VmHWM $(hwm_kib "$SERVER_PID") KiB"
stop_server
rm -rf "$work/store/.mediaindex" "$work/store/.thumbnails"
start_server "$work/store"
wait_idle
echo "scan of them: thumbnails $(ls "$work/store/.thumbnails" | wc -l); VmHWM $(hwm_kib "$SERVER_PID") KiB"
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
    curl -s -X PUT -F "file=@$big" "http://127.0.0.1:$PORT/image/big.jpg" -o /dev/null \
        -w '%{time_total}\n' >>"$work/ours"
    hwm_kib "$SERVER_PID" >>"$work/ours-hwm"
    stop_server
    a=$(curl -s -T "$big" "http://127.0.0.1:$nport/big.jpg" -o /dev/null -w '%{time_total}')
    t0=$(date +%s.%N)
    vipsthumbnail -s 256 -o "$work/vt.png" "$big"
    echo "$a + $(date +%s.%N) - $t0" | bc >>"$work/theirs"
done
ours=$(median <"$work/ours"); theirs=$(median <"$work/theirs")
echo "300 MB JPEG PUT: media-server $ours s (peak RSS $(median <"$work/ours-hwm") KiB);" \
     "nginx PUT + vipsthumbnail $theirs s; ratio $(echo "scale=2; $ours / $theirs" | bc)"
