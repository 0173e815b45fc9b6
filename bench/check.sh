#!/usr/bin/env bash
# check.sh - "what do you already have?" (issue 12), with baselines
# measured in the same run.
#
#   bench/check.sh [N_INDEX] [N_ASK] [N_BACKUP]     (default 100000 10000 10000)
#
#  3. POST /api/check with N_ASK hashes (half of them held, half random)
#     against a server whose catalog holds N_INDEX files (tiny distinct
#     images from bench/corpus-gen.c, indexed once by the server's first
#     scan).  hyperfine runs `curl --data-binary @asked.json`; baselines:
#     `curl /status` (one HTTP round trip and curl's own start) and
#     `grep -cFf` of the asked hashes in a list of all N_INDEX (the same
#     set lookup by a public tool, no HTTP, no JSON).
#     Target: < 100 ms (median of the runs).
#  4. mi-backup of an already backed-up folder of N_BACKUP tiny files
#     (another server, its own storage folder): the first run uploads
#     everything (timed, for information); hyperfine times the second and
#     later runs, which must re-hash nothing, ask once and send nothing
#     (checked from the summary of a run).  Baselines: `find -printf` of
#     every file's size and mtime (the stat walk any "what changed?" needs)
#     and the folder's own /api/check request by curl.
#     Target: < 2 s end to end (median of the runs).
#
# BUILD=build-dir picks the build (default build-release).  RUNS (default
# 20) runs per command.
# Needs: hyperfine, curl, jq, python3, cc, sha256sum, shuf.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/server-common.sh
n_index=${1:-100000}
n_ask=${2:-10000}
n_backup=${3:-10000}
runs=${RUNS:-20}
ensure_build
BACKUP_BIN=${BACKUP_BIN:-$BUILD/examples/mi-backup}
[ -x "$BACKUP_BIN" ] || { echo "check.sh: no $BACKUP_BIN (ninja -C $BUILD)" >&2; exit 1; }
for tool in hyperfine curl jq python3 cc; do
    command -v "$tool" >/dev/null || { echo "check.sh: $tool not found" >&2; exit 1; }
done
work=$(mktemp -d "${SCRATCH:-/tmp}/bench-check.XXXXXX")
PIDS=
cleanup() {
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
# The median: the box may be shared and noisy (mean and min are in
# hyperfine's own output above the summary).
mean() { jq -r ".results[$1].median" "$2"; }
ms() { awk -v s="$1" 'BEGIN { printf "%.1f ms", s * 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }

cc -std=c11 -O2 bench/corpus-gen.c -o "$work/corpus-gen"

echo "== 3. /api/check: $n_ask hashes against $n_index indexed files"
t0=$(now)
"$work/corpus-gen" tiny "$work/lib" "$n_index" >/dev/null
echo "corpus: $n_index files in $(sub "$(now)" "$t0") s"
# Every file's sha256 (the catalog's content hash), before the server adds
# its .thumbnails/ to the folder.
(cd "$work/lib" && find d* -type f -print0 | xargs -0 -n 2000 sha256sum) |
    cut -d' ' -f1 >"$work/all.hex"
python3 - "$work" "$n_ask" <<'EOF'
import json, os, random, sys
work, n = sys.argv[1], int(sys.argv[2])
held = [l.strip() for l in open(os.path.join(work, "all.hex"))]
random.seed(12)
yes = random.sample(held, n // 2)
no = [os.urandom(32).hex() for _ in range(n - n // 2)]
asked = [h for pair in zip(yes, no) for h in pair] + no[len(yes):]
json.dump(asked, open(os.path.join(work, "asked.json"), "w"))
open(os.path.join(work, "asked.txt"), "w").write("\n".join(asked) + "\n")
EOF
start_server "$work/lib"
PIDS="$SERVER_PID"
lib_url=http://127.0.0.1:$PORT
wait_idle            # the first scan: hashes and thumbnails, once
got=$(curl -s -H 'Content-Type: application/json' --data-binary @"$work/asked.json" \
      "$lib_url/api/check" | jq -c '[.count, .present]')
echo "answer [count, present]: $got (want [$n_ask, $((n_ask / 2))])"
[ "$got" = "[$n_ask,$((n_ask / 2))]" ] || { echo "check.sh: wrong answer" >&2; exit 1; }
hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/check.json" \
    -n "curl POST /api/check ($n_ask)" \
    "curl -s -o /dev/null -H 'Content-Type: application/json' --data-binary @$work/asked.json $lib_url/api/check" \
    -n "curl GET /status" "curl -s -o /dev/null $lib_url/status" \
    -n "grep -cFf asked all.hex" "grep -cFf $work/asked.txt $work/all.hex"
t_check=$(mean 0 "$work/check.json"); t_status=$(mean 1 "$work/check.json")
t_grep=$(mean 2 "$work/check.json")
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; PIDS=
rm -rf "$work/lib"

echo
echo "== 4. mi-backup of an already backed-up folder of $n_backup files"
"$work/corpus-gen" tiny "$work/phone" "$n_backup" >/dev/null
mkdir "$work/store"
start_server "$work/store"
PIDS="$SERVER_PID"
url=http://127.0.0.1:$PORT
wait_idle
t0=$(now)
"$BACKUP_BIN" --quiet "$work/phone" "$url" 2>"$work/first.log" ||
    { cat "$work/first.log"; exit 1; }
first_s=$(sub "$(now)" "$t0")
echo "first run (index, check, upload everything): $first_s s"
"$BACKUP_BIN" "$work/phone" "$url" 2>&1 | sed 's/^/    | /' | tee "$work/second.log"
grep -q " 0 new or changed" "$work/second.log" &&
    grep -q "^    | mi-backup: $n_backup of $n_backup on the server already" "$work/second.log" ||
    { echo "check.sh: the second run re-hashed or found something to send" >&2; exit 1; }
(cd "$work/phone" && find d* -type f -print0 | xargs -0 -n 2000 sha256sum) |
    cut -d' ' -f1 | jq -R . | jq -sc . >"$work/phone.json"
hyperfine -N --warmup 1 --runs "$runs" --export-json "$work/backup.json" \
    -n "mi-backup (already backed up)" "$BACKUP_BIN --quiet $work/phone $url" \
    -n "find -printf size,mtime" "find $work/phone -type f -printf '%s %T@\n'" \
    -n "curl POST /api/check ($n_backup)" \
    "curl -s -o /dev/null -H 'Content-Type: application/json' --data-binary @$work/phone.json $url/api/check"
t_bk=$(mean 0 "$work/backup.json"); t_find=$(mean 1 "$work/backup.json")
t_bcheck=$(mean 2 "$work/backup.json")

echo
echo "== summary"
printf '%-44s %12s %s\n' "3. /api/check, $n_ask of $n_index (median)" "$(ms "$t_check")" \
    "$(awk -v t="$t_check" 'BEGIN { print (t < 0.1) ? "PASS (< 100 ms)" : "FAIL (>= 100 ms)" }')"
printf '%-44s %12s = %sx\n' "   vs curl GET /status" "$(ms "$t_status")" "$(ratio "$t_check" "$t_status")"
printf '%-44s %12s = %sx\n' "   vs grep -cFf (same lookup, no HTTP)" "$(ms "$t_grep")" "$(ratio "$t_check" "$t_grep")"
printf '%-44s %12s %s\n' "4. mi-backup, $n_backup files backed up (median)" "$(ms "$t_bk")" \
    "$(awk -v t="$t_bk" 'BEGIN { print (t < 2) ? "PASS (< 2 s)" : "FAIL (>= 2 s)" }')"
printf '%-44s %12s = %sx\n' "   vs find -printf (stat walk)" "$(ms "$t_find")" "$(ratio "$t_bk" "$t_find")"
printf '%-44s %12s = %sx\n' "   vs its /api/check by curl" "$(ms "$t_bcheck")" "$(ratio "$t_bk" "$t_bcheck")"
printf '%-44s %12s\n' "   (first run: upload of all $n_backup)" "$first_s s"
