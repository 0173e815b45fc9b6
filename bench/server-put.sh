#!/usr/bin/env bash
# server-put.sh - PUT of a 1 GiB file (multipart/form-data, curl) against
# `openssl dgst -sha256` of the same file, in the same run; the server's
# RSS is sampled every 20 ms during the upload.
#
#   bench/server-put.sh [SIZE_MIB]      (default 1024)
#
# The file is a JPEG's first bytes followed by random bytes (so it passes
# the magic-byte check; a video would be opened by mi-decode and refused), in a scratch folder on the same disk as the storage
# folder.  BUILD=build-dir picks the build (default build-release).
# SCRATCH=/dev/shm puts both on tmpfs, where fsync costs nothing: the
# server's and the library's own cost, without the disk's.  Also printed:
# `dd bs=1M conv=fsync` of the same file, the disk's floor for a durable
# copy (the library fsyncs every upload before it answers).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/server-common.sh
mib=${1:-1024}
ensure_build
work=$(mktemp -d "${SCRATCH:-/tmp}/server-put.XXXXXX")
trap 'stop_server; rm -rf "$work"' EXIT
mkdir "$work/store"
file=$work/big.jpg
{ printf '\377\330\377\340'
  head -c $((mib * 1024 * 1024 - 4)) /dev/urandom; } >"$file"
bytes=$(stat -c %s "$file")

start_server "$work/store"
wait_idle
cat "$file" >/dev/null                      # warm the page cache
/usr/bin/time -f '%e' -o "$work/dgst.t" openssl dgst -sha256 "$file" >/dev/null
dgst_s=$(cat "$work/dgst.t")
/usr/bin/time -f '%e' -o "$work/dd.t" dd if="$file" of="$work/dd.copy" bs=1M \
    conv=fsync status=none
dd_s=$(cat "$work/dd.t")
rm -f "$work/dd.copy"

base=$(rss_kib "$SERVER_PID")
( peak=0
  while kill -0 "$SERVER_PID" 2>/dev/null; do
      r=$(rss_kib "$SERVER_PID" 2>/dev/null || echo 0)
      [ "${r:-0}" -gt "$peak" ] && { peak=$r; echo "$peak" >"$work/peak"; }
      sleep 0.02
  done ) &
sampler=$!
put_s=$(curl -s -o "$work/resp" -w '%{time_total}' -X PUT \
        -F "file=@$file" "http://127.0.0.1:$PORT/image/big.jpg")
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
peak=$(cat "$work/peak" 2>/dev/null || echo "$base")
cat "$work/resp"; echo
want=$(sha256sum "$file" | cut -d' ' -f1)
grep -q "$want" "$work/resp" && echo "sha256 matches sha256sum" ||
    { echo "sha256 MISMATCH (want $want)"; exit 1; }

awk -v b="$bytes" -v p="$put_s" -v d="$dgst_s" -v base="$base" -v peak="$peak" -v dd="$dd_s" 'BEGIN {
    printf "dd bs=1M conv=fsync:  %.2f s, %.0f MB/s\n", dd, b / dd / 1e6
    printf "openssl dgst -sha256: %.2f s, %.0f MB/s\n", d, b / d / 1e6
    printf "PUT (curl -F):        %.2f s, %.0f MB/s = %.0f%% of openssl dgst\n",
           p, b / p / 1e6, 100 * d / p
    printf "server RSS: %d KiB before, %d KiB peak, +%.1f MiB\n",
           base, peak, (peak - base) / 1024
}'
