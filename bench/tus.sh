#!/usr/bin/env bash
# tus.sh - resumable uploads (issue 12), as ratios against a plain PUT
# measured in the same run.
#
#   bench/tus.sh [SIZE_MIB] [ROUNDS] [KILLS]     (default 1024 3 3)
#
#  1. ROUNDS rounds, each: one plain PUT of the file (curl -F, as
#     bench/server-put.sh) into a fresh storage folder, then the same file
#     with mi-backup --chunk 16 (tus: POST, then 16 MiB PATCHes with an
#     Upload-Checksum each) into another fresh one.  The server's RSS is
#     sampled every 20 ms during each upload.
#     Targets: tus throughput >= 0.8x the PUT's (medians); server RSS
#     growth during the tus upload < 16 MiB.
#  2. KILLS trials: mi-backup starts the upload, the server gets kill -9 at
#     a random moment between 10% and 90% of the median uninterrupted tus
#     time, and is started again at once on the same port; mi-backup
#     notices, waits (its retry: 0.5 s, then 1 s...), asks the server where
#     the upload stands (HEAD) and resumes.
#     Targets: re-sends at most one chunk; total time <= 1.3x an
#     uninterrupted tus upload.  The time is shown with and without
#     mi-backup's retry sleeps (its "trying again in N s" lines), so the
#     sleep's share is visible; the target is judged on the real total.
#     "Re-sent": mi-backup's summary counts B, the bytes of the chunks the
#     server acknowledged.  With c the offset acknowledged last before the
#     kill and O the offset the server reports after the restart (HEAD,
#     shown), B = c + SIZE - O: B > SIZE means acknowledged bytes were lost
#     and sent again; otherwise the bytes sent twice are the part of the
#     chunk in flight past O, at most 16 MiB - (SIZE - B) ("resent<=").
#     The target holds when B <= SIZE.
#
# The file is a JPEG's first bytes followed by random bytes, in a scratch
# folder on the same disk as the storage folders.  Before timing,
# mi-backup indexes that folder once (against a closed port, so it stops
# after hashing): the timed runs measure the upload, not the hashing,
# which is printed on its own.  The page cache is warm for both clients.
# BUILD=build-dir picks the build (default build-release).
# Needs: curl, python3, /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/server-common.sh
mib=${1:-1024}
rounds=${2:-3}
kills=${3:-3}
ensure_build
BACKUP_BIN=${BACKUP_BIN:-$BUILD/examples/mi-backup}
[ -x "$BACKUP_BIN" ] || { echo "tus.sh: no $BACKUP_BIN (ninja -C $BUILD)" >&2; exit 1; }
work=$(mktemp -d "${SCRATCH:-/tmp}/bench-tus.XXXXXX")
sampler=
cleanup() {
    [ -n "$sampler" ] && kill "$sampler" 2>/dev/null
    stop_server
    rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/src"
file=$work/src/big.jpg
{ printf '\377\330\377\340'
  head -c $((mib * 1024 * 1024 - 4)) /dev/urandom; } >"$file"
bytes=$(stat -c %s "$file")
sha=$(sha256sum "$file" | cut -d' ' -f1)
cat "$file" >/dev/null                      # warm the page cache

now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }

# mi-backup's own index of the folder, once (nothing listens on port 1).
t0=$(now)
"$BACKUP_BIN" --quiet "$work/src" http://127.0.0.1:1 2>/dev/null || true
index_s=$(sub "$(now)" "$t0")

# RSS sampler: peak of $SERVER_PID into $work/peak until killed.
start_sampler() {
    echo "$1" >"$work/peak"
    ( peak=$1
      while kill -0 "$SERVER_PID" 2>/dev/null; do
          r=$(rss_kib "$SERVER_PID" 2>/dev/null || echo 0)
          [ "${r:-0}" -gt "$peak" ] && { peak=$r; echo "$peak" >"$work/peak"; }
          sleep 0.02
      done ) &
    sampler=$!
}
stop_sampler() {
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    sampler=
}

# The server holds the file (by /api/check) or the run is void.
held() {
    curl -s -H 'Content-Type: application/json' --data-binary "[\"$sha\"]" \
        "http://127.0.0.1:$PORT/api/check" | grep -q '"present":[ ]*true' ||
        { echo "tus.sh: the server does not hold $sha after $1" >&2; exit 1; }
}

summary_bytes() {   # B from "N sent (X MiB: B bytes, R resumed)"
    sed -n 's/.* sent ([^:]*: \([0-9]*\) bytes, .*/\1/p' "$1" | tail -1
}

echo "== 1. $mib MiB: plain PUT vs tus (mi-backup --chunk 16), $rounds rounds"
echo "mi-backup first index of the folder (hash): $index_s s"
printf '%-6s %10s %10s %12s %12s\n' round put_s tus_s put_rss+KiB tus_rss+KiB
: >"$work/put.t"; : >"$work/tus.t"; : >"$work/put.rss"; : >"$work/tus.rss"
for r in $(seq 1 "$rounds"); do
    rm -rf "$work/store"; mkdir "$work/store"
    start_server "$work/store" --watch off
    wait_idle 2>/dev/null
    base=$(rss_kib "$SERVER_PID"); start_sampler "$base"
    put_s=$(curl -s -o "$work/resp" -w '%{time_total}' -X PUT \
            -F "file=@$file" "http://127.0.0.1:$PORT/image/big.jpg")
    stop_sampler; put_rss=$(( $(cat "$work/peak") - base ))
    grep -q "$sha" "$work/resp" || { cat "$work/resp"; echo "PUT failed" >&2; exit 1; }
    stop_server

    rm -rf "$work/store"; mkdir "$work/store"
    start_server "$work/store" --watch off
    wait_idle 2>/dev/null
    base=$(rss_kib "$SERVER_PID"); start_sampler "$base"
    t0=$(now)
    "$BACKUP_BIN" --chunk 16 "$work/src" "http://127.0.0.1:$PORT" 2>"$work/tus.log" ||
        { cat "$work/tus.log"; exit 1; }
    tus_s=$(sub "$(now)" "$t0")
    stop_sampler; tus_rss=$(( $(cat "$work/peak") - base ))
    held "tus round $r"
    [ "$(summary_bytes "$work/tus.log")" = "$bytes" ] ||
        { cat "$work/tus.log"; echo "tus.sh: unexpected summary" >&2; exit 1; }
    stop_server
    rm -rf "$work/store"
    printf '%-6s %10s %10s %12s %12s\n' "$r" "$put_s" "$tus_s" "$put_rss" "$tus_rss"
    echo "$put_s" >>"$work/put.t"; echo "$tus_s" >>"$work/tus.t"
    echo "$put_rss" >>"$work/put.rss"; echo "$tus_rss" >>"$work/tus.rss"
done
put_med=$(median <"$work/put.t"); tus_med=$(median <"$work/tus.t")
tus_rss_max=$(sort -n "$work/tus.rss" | tail -1)
put_rss_max=$(sort -n "$work/put.rss" | tail -1)
awk -v b="$bytes" -v p="$put_med" -v t="$tus_med" -v tr="$tus_rss_max" \
    -v pr="$put_rss_max" 'BEGIN {
    printf "PUT (curl -F), median:           %6.2f s  %5.0f MB/s\n", p, b / p / 1e6
    printf "tus (mi-backup 16 MiB), median:  %6.2f s  %5.0f MB/s\n", t, b / t / 1e6
    printf "tus / PUT throughput: %.2fx (target >= 0.8x): %s\n", p / t,
           (p / t >= 0.8) ? "PASS" : "FAIL"
    printf "server RSS growth, worst round: tus +%.1f MiB (target < 16 MiB): %s;" \
           " PUT +%.1f MiB\n", tr / 1024, (tr < 16 * 1024) ? "PASS" : "FAIL", pr / 1024
}'

[ "$kills" -gt 0 ] || exit 0
echo
echo "== 2. kill -9 of the server during the tus upload, restart, resume; $kills trials"
printf '%-6s %8s %9s %11s %8s %10s %12s %10s %10s\n' trial kill_at total_s \
    minus_sleep sleep_s restart_s offset_after B-SIZE 'resent<='
worst_total=0; worst_resent=-$bytes
for k in $(seq 1 "$kills"); do
    rm -rf "$work/store"; mkdir "$work/store"
    start_server "$work/store" --watch off
    wait_idle 2>/dev/null
    port=$PORT
    at=$(awk -v t="$tus_med" -v s="$RANDOM" 'BEGIN { srand(s); printf "%.2f", t * (0.1 + 0.8 * rand()) }')
    t0=$(now)
    "$BACKUP_BIN" --chunk 16 "$work/src" "http://127.0.0.1:$port" 2>"$work/kill.log" &
    backup=$!
    sleep "$at"
    kill -9 "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
    t1=$(now)
    start_server "$work/store" --watch off --port "$port"
    restart_s=$(sub "$(now)" "$t1")
    [ "$PORT" = "$port" ] || { echo "tus.sh: restarted on $PORT, not $port" >&2; exit 1; }
    # Where the server says the upload stands after the restart (HEAD), in
    # 16 MiB chunks: a fraction means it kept part of a chunk it never
    # acknowledged (nor checked against its Upload-Checksum).
    url=$(cut -d' ' -f2 "$work/src/.mediaindex/mi-backup.state" 2>/dev/null | head -1)
    stood=$(curl -s -I -H 'Tus-Resumable: 1.0.0' "$url" |
            sed -n 's/^Upload-Offset: *\([0-9]*\).*/\1/Ip')
    stood_c=$(awk -v o="${stood:-0}" 'BEGIN { printf "%.2f", o / 16777216 }')
    wait "$backup" || { cat "$work/kill.log"; echo "tus.sh: mi-backup failed" >&2; exit 1; }
    total=$(sub "$(now)" "$t0")
    held "kill trial $k"
    slept=$(sed -n 's/.*trying again in \([0-9.]*\) s.*/\1/p' "$work/kill.log" |
            awk '{ s += $1 } END { print s + 0 }')
    b=$(summary_bytes "$work/kill.log")
    extra=$(( b - bytes ))
    [ "$extra" -gt "$worst_resent" ] && worst_resent=$extra
    worst_total=$(awk -v a="$worst_total" -v b="$total" 'BEGIN { print (b > a) ? b : a }')
    printf '%-6s %8s %9s %11s %8s %10s %12s %10s %10s\n' "$k" "$at" "$total" \
        "$(sub "$total" "$slept")" "$slept" "$restart_s" "${stood:-?}(${stood_c}ch)" \
        "$extra" "$(( 16777216 + extra ))"
    if [ "$k" = 1 ]; then sed 's/^/    | /' "$work/kill.log"; fi
    stop_server
    rm -rf "$work/store"
done
awk -v w="$worst_total" -v t="$tus_med" -v e="$worst_resent" 'BEGIN {
    printf "acknowledged bytes sent again, worst: %d (B - SIZE > 0); re-sent at most" \
           " %d bytes (target: at most one chunk, 16777216): %s\n", (e > 0) ? e : 0,
           16777216 + e, (e <= 0) ? "PASS" : "FAIL"
    printf "worst total %.2f s = %.2fx the uninterrupted median %.2f s (target <= 1.3x): %s\n",
           w, w / t, t, (w / t <= 1.3) ? "PASS" : "FAIL"
}'
