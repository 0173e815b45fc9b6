#!/usr/bin/env bash
# index.sh - indexing benchmarks, as ratios against public tools in one run.
#
#   BUILD=./build bench/index.sh CORPUS_DIR
#
# CORPUS_DIR comes from bench/make-corpus.sh (photos/ and tiny/).
#  1. cold index of photos/ (hash + metadata, thumbnails off: bench/thumbs.sh
#     measures them) vs `openssl dgst -sha256` over the same files, serial
#     and with xargs -P2;
#  2. tiny/ (100,000 files): cold index with peak RSS (/usr/bin/time -v),
#     restart ("open": ready to serve) and no-change rescan (hyperfine).
# Needs: hyperfine, openssl, /usr/bin/time, jq.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${BUILD:-./build}" && pwd)
corpus=$(cd "${1:?usage: index.sh CORPUS_DIR}" && pwd)
bench=$build/bench/mi-bench
runs=${RUNS:-5}
[ -x "$bench" ] || { echo "index.sh: build $bench first (ninja -C $build)" >&2; exit 1; }
for tool in hyperfine openssl jq; do
    command -v "$tool" >/dev/null || { echo "index.sh: $tool not found" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "index.sh: /usr/bin/time not found (apt install time)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mean() { jq -r ".results[$1].mean" "$work/$2.json"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

photos=$corpus/photos
n=$(find "$photos" -name '*.jpg' | wc -l)
mb=$(du -sm --apparent-size "$photos" | cut -f1)
echo "== 1. cold index of $n photos ($mb MB), page cache warm"
cat "$photos"/*.jpg >/dev/null
hyperfine -N --runs "$runs" --warmup 1 --export-json "$work/photos.json" \
    --prepare "rm -rf $photos/.mediaindex" \
    "$bench scan --no-thumbs $photos" \
    "sh -c 'openssl dgst -sha256 $photos/*.jpg >/dev/null'" \
    "sh -c 'ls $photos/*.jpg | xargs -P2 -n 25 openssl dgst -sha256 >/dev/null'"
t_mi=$(mean 0 photos); t_ssl=$(mean 1 photos); t_ssl2=$(mean 2 photos)
echo "mediaindex cold index: $(awk -v t="$t_mi" -v m="$mb" 'BEGIN{printf "%.0f MB/s", m/t}')," \
     "$(ratio "$t_ssl" "$t_mi")x openssl dgst serial, $(ratio "$t_ssl2" "$t_mi")x openssl dgst -P2"

tiny=$corpus/tiny
nt=$(find "$tiny" -type f \( -name '*.png' -o -name '*.gif' \) | wc -l)
echo "== 2. $nt tiny files"
rm -rf "$tiny/.mediaindex"
/usr/bin/time -v "$bench" scan --no-thumbs "$tiny" 2>"$work/cold.txt" || { cat "$work/cold.txt"; exit 1; }
grep -E '^scan|media,|Maximum resident|Elapsed' "$work/cold.txt"
rss=$(awk '/Maximum resident/ {print $NF}' "$work/cold.txt")
echo "cold index peak RSS: $((rss / 1024)) MiB (target < 64 MiB)"
# Baseline: find stat()ing every file, as a rescan must.
hyperfine -N --runs "$runs" --warmup 1 --export-json "$work/tiny.json" \
    "$bench open $tiny" "$bench scan --no-thumbs $tiny" \
    "find $tiny -type f -printf '%s %T@ %i\\n'"
echo "restart (open, ready to serve): $(mean 0 tiny) s (target < 1 s)"
echo "no-change rescan: $(mean 1 tiny) s (target < 1 s); find stat-ing all: $(mean 2 tiny) s"
/usr/bin/time -v "$bench" scan --no-thumbs "$tiny" 2>"$work/warm.txt"
echo "no-change rescan peak RSS: $(( $(awk '/Maximum resident/ {print $NF}' "$work/warm.txt") / 1024 )) MiB"
