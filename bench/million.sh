#!/usr/bin/env bash
# million.sh - the library at 10,000, 100,000 and 1,000,000 files (issue
# 15's table), one column per size:
#
#   BUILD=build-release bench/million.sh [SIZES...]   (default 10000 100000 1000000)
#
# COLD=0 keeps an index already there (the cold index is not measured).
# Each size is a folder of small JPEGs, 1,000 to a folder, whose EXIF dates
# fall evenly over 20 years (bench/corpus-gen.c "dated"), kept in
# $MILLION_DIR (default /tmp/m) as src-N and made when missing.  Per size:
#  - cold index (hash + EXIF + thumbnails; `mi-bench scan -j 2`): time and
#    peak RSS (/usr/bin/time -v);
#  - no-change rescan against `find -printf '%s %T@ %i'` over the same
#    files (the scan's own folders, .thumbnails and .mediaindex, pruned),
#    hyperfine, both warm;
#  - the release server: start to the first answer of /status (median of
#    RUNS), then, once its start-up rescan is done and the /list cache made:
#    GET /list (cached; gzip), the same list streamed from the catalog,
#    /list?format=ndjson, GET /api/timeline (cached, and walked through the
#    catalog as a date range), one month's NDJSON; curl, medians of RUNS;
#    the server's peak RSS over all of it (VmHWM);
#  - the catalog's size on disk, and the thumbnails'.
# Needs: hyperfine, curl, /usr/bin/time, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/server-common.sh
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10000 100000 1000000)
base=${MILLION_DIR:-/tmp/m}
runs=${RUNS:-5}
for tool in hyperfine curl python3; do
    command -v "$tool" >/dev/null || { echo "million.sh: $tool not found (scripts/install-deps.sh --bench)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "million.sh: /usr/bin/time not found (apt install time)" >&2; exit 1; }
ensure_build
bench_bin=$BUILD/bench/mi-bench
fixture=$BUILD/tests/fixture-tool
[ -x "$bench_bin" ] && [ -x "$fixture" ] || ninja -C "$BUILD" -j2 >/dev/null
mkdir -p "$base"
work=$(mktemp -d /tmp/million.XXXXXX)
trap 'stop_server 2>/dev/null; rm -rf "$work"' EXIT
cc -std=c11 -O2 bench/corpus-gen.c -o "$work/corpus-gen"
"$fixture" jpeg "$work/src.jpg" 16 12 7

# curl's total time of GET $1 (extra curl arguments after it), in ms,
# median of $runs
get_ms() {
    local url=$1; shift
    for _ in $(seq "$runs"); do
        curl -s -o /dev/null -w '%{time_total}\n' "$@" "http://127.0.0.1:$PORT$url"
    done | median | awk '{printf "%.1f", $1 * 1000}'
}
declare -A R

for n in "${sizes[@]}"; do
    dir=$base/src-$n
    if [ ! -f "$dir/.complete" ]; then
        rm -rf "$dir"
        echo "== making $n dated JPEGs in $dir" >&2
        "$work/corpus-gen" dated "$dir" "$n" 20 "$work/src.jpg"
        touch "$dir/.complete"
    fi
    if [ "${COLD:-1}" = 0 ] && [ -d "$dir/.mediaindex" ]; then
        R[$n,cold]="(kept)"
        R[$n,cold_rss]="(kept)"
    else
        rm -rf "$dir/.mediaindex" "$dir/.thumbnails"
        sync
        echo "== $n: cold index" >&2
        /usr/bin/time -v "$bench_bin" scan -j 2 "$dir" >/dev/null 2>"$work/time"
        R[$n,cold]=$(awk -F': ' '/Elapsed/ {split($2, a, ":"); s = a[length(a)] + 60 * a[length(a) - 1] + (length(a) > 2 ? 3600 * a[1] : 0); printf "%.1f s", s}' "$work/time")
        R[$n,cold_rss]=$(awk '/Maximum resident/ {printf "%.0f MB", $NF / 1024}' "$work/time")
        # The thumbnails just written (8 GB at 1,000,000) are still going
        # to disk: the rescan measured beside that writeback took 2.5x
        # find at 100,000 instead of 0.94x.
        sync
    fi

    echo "== $n: no-change rescan against find" >&2
    hyperfine -N -r 3 -w 1 --export-json "$work/rescan.json" \
        "$bench_bin scan -j 2 $dir" \
        "find $dir -path $dir/.thumbnails -prune -o -path $dir/.mediaindex -prune -o -printf '%s %T@ %i\\n'" \
        >/dev/null
    read -r scan_s find_s < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["results"]
print(r[0]["median"], r[1]["median"])' "$work/rescan.json")
    R[$n,rescan]=$(awk -v a="$scan_s" -v b="$find_s" 'BEGIN {printf "%.2f s vs %.2f s (%.2f×)", a, b, a / b}')

    echo "== $n: the server" >&2
    starts=()
    for _ in $(seq 3); do
        t0=$(date +%s.%N)
        start_server "$dir"
        until curl -sf -o /dev/null "http://127.0.0.1:$PORT/status"; do sleep 0.005; done
        starts+=("$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN {print a - b}')")
        wait_idle 2>/dev/null
        stop_server
    done
    R[$n,start]=$(printf '%s\n' "${starts[@]}" | median | awk '{printf "%.2f s", $1}')
    start_server "$dir"
    wait_idle 2>/dev/null
    until [ "$(curl -s -o /dev/null -D - -H 'Accept-Encoding: gzip' "http://127.0.0.1:$PORT/list" | tr -d '\r' | awk -F': ' 'tolower($1) == "content-encoding" {print $2}')" = gzip ]; do
        sleep 0.5
    done
    size=$(curl -s "http://127.0.0.1:$PORT/list" | wc -c)
    R[$n,list]="$(get_ms /list) ms ($((size / 1000000)) MB)"
    R[$n,list_gz]="$(get_ms /list -H 'Accept-Encoding: gzip') ms"
    R[$n,list_stream]="$(get_ms '/list?from=1000-01-01') ms"
    R[$n,ndjson]="$(get_ms '/list?format=ndjson') ms"
    R[$n,timeline]="$(get_ms /api/timeline) ms"
    R[$n,timeline_walk]="$(get_ms '/api/timeline?from=1000-01-01') ms"
    read -r from to cnt < <(curl -s "http://127.0.0.1:$PORT/api/timeline" | python3 -c '
import calendar, json, sys
ms = json.load(sys.stdin)["months"]
m = ms[len(ms) // 2]
y, mo = map(int, m["month"].split("-"))
print("%s-01 %s-%02d %d" % (m["month"], m["month"], calendar.monthrange(y, mo)[1], m["count"]))')
    R[$n,month]="$(get_ms "/list?format=ndjson&from=$from&to=$to") ms ($cnt items)"
    R[$n,rss]="$(( $(hwm_kib "$SERVER_PID") / 1024 )) MB"
    echo "   $n: start ${R[$n,start]}, /list ${R[$n,list]}, peak RSS ${R[$n,rss]}" >&2
    stop_server
    R[$n,catalog]=$(du -sm "$dir/.mediaindex" | awk '{print $1 " MB"}')
    R[$n,thumbs]=$(du -sm "$dir/.thumbnails" | awk '{print $1 " MB"}')
done

{
    printf '| |'; for n in "${sizes[@]}"; do printf ' %s |' "$n"; done; echo
    printf '|---|'; for _ in "${sizes[@]}"; do printf -- '---|'; done; echo
    for k in "cold:cold index (hash + EXIF + 2 thumbnails), -j 2" \
             "cold_rss:cold index, peak RSS" \
             "rescan:no-change rescan vs find -printf" \
             "start:server start to first answer" \
             "list:GET /list (cached file)" \
             "list_gz:GET /list, gzip" \
             "list_stream:GET /list streamed from the catalog" \
             "ndjson:GET /list?format=ndjson" \
             "timeline:GET /api/timeline (cached)" \
             "timeline_walk:GET /api/timeline walked (?from=)" \
             "month:one month, NDJSON" \
             "rss:server peak RSS (start-up rescan, all of the above)" \
             "catalog:catalog on disk" \
             "thumbs:thumbnails on disk"; do
        printf '| %s |' "${k#*:}"
        for n in "${sizes[@]}"; do printf ' %s |' "${R[$n,${k%%:*}]}"; done
        echo
    done
} | tee "$work/table"
