#!/usr/bin/env bash
# thumbs.sh - thumbnail benchmarks, as ratios against vipsthumbnail in one run.
#
#   BUILD=./build bench/thumbs.sh CORPUS_DIR
#
# CORPUS_DIR comes from bench/make-corpus.sh (its photos/ are used).
#  1. thumbnails only: mi-thumbs vs `vipsthumbnail -s 256`, both through
#     `xargs -P2 -n 50` (many files per process), output to a scratch
#     folder.  The same parallelism means one thread per process:
#     VIPS_CONCURRENCY=1 (libvips otherwise adds a thread pool per
#     process); its default is measured too, for the record, and PNG
#     output besides its default JPEG;
#  2. a cold index (hash + metadata + thumbnail: mi-bench scan, 2 workers)
#     vs vipsthumbnail alone;
#  3. the floor: libjpeg-turbo's DCT-scaled decode alone (thumb-profile -d,
#     the call vipsthumbnail's shrink-on-load makes too), timed beside
#     vipsthumbnail, and the cold index's time over it.
# Ratios > 1 mean mediaindex is faster.  Page cache warm.
# Needs: hyperfine, jq, vipsthumbnail (scripts/install-deps.sh --bench).
set -euo pipefail

build=$(cd "${BUILD:-./build}" && pwd)
corpus=$(cd "${1:?usage: thumbs.sh CORPUS_DIR}" && pwd)
runs=${RUNS:-5}
thumbs=$build/bench/mi-thumbs
bench=$build/bench/mi-bench
for t in "$thumbs" "$bench"; do
    [ -x "$t" ] || { echo "thumbs.sh: build $t first (ninja -C $build)" >&2; exit 1; }
done
for tool in hyperfine jq vipsthumbnail; do
    command -v "$tool" >/dev/null || { echo "thumbs.sh: $tool not found" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mean() { jq -r ".results[$1].mean" "$work/$2.json"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# The photos, hard-linked into a scratch folder so that the index and the
# thumbnails of step 2 do not land in the corpus.
mkdir -p "$work/photos" "$work/out"
cp -al "$corpus"/photos/*.jpg "$work/photos/"
photos=$work/photos
n=$(find "$photos" -name '*.jpg' | wc -l)
cat "$photos"/*.jpg >/dev/null

echo "== 1. thumbnails of $n photos, xargs -P2 -n 50"
hyperfine -N --runs "$runs" --warmup 1 --export-json "$work/t.json" \
    --prepare "sh -c 'rm -rf $work/out; mkdir $work/out'" \
    "sh -c 'ls $photos/*.jpg | xargs -P2 -n 50 $thumbs -o $work/out'" \
    "sh -c 'ls $photos/*.jpg | VIPS_CONCURRENCY=1 xargs -P2 -n 50 vipsthumbnail -s 256 -o $work/out/%s.jpg'" \
    "sh -c 'ls $photos/*.jpg | VIPS_CONCURRENCY=1 xargs -P2 -n 50 vipsthumbnail -s 256 -o $work/out/%s.png'" \
    "sh -c 'ls $photos/*.jpg | xargs -P2 -n 50 vipsthumbnail -s 256 -o $work/out/%s.jpg'"
t_mi=$(mean 0 t); t_vips=$(mean 1 t); t_vips_png=$(mean 2 t); t_vips_mt=$(mean 3 t)
echo "thumbnails: mediaindex $(ratio "$t_vips" "$t_mi")x vipsthumbnail (1 thread, JPEG out)," \
     "$(ratio "$t_vips_png" "$t_mi")x (1 thread, PNG out)," \
     "$(ratio "$t_vips_mt" "$t_mi")x (default threads, JPEG out)"

echo "== 2. cold index (hash + metadata + thumbnails), 2 workers"
hyperfine -N --runs "$runs" --warmup 1 --export-json "$work/i.json" \
    --prepare "rm -rf $photos/.mediaindex $photos/.thumbnails" \
    "$bench scan -j 2 $photos"
t_idx=$(mean 0 i)
echo "cold index: $(ratio "$t_vips" "$t_idx")x vipsthumbnail alone (1 thread, JPEG out)," \
     "$(ratio "$t_vips_mt" "$t_idx")x (default threads)"
du -sh "$photos/.thumbnails" | sed 's/^/thumbnails on disk: /'

echo "== 3. the decode alone, xargs -P2 -n 50"
ninja -C "$build" bench/thumb-profile >/dev/null
hyperfine -N --runs "$runs" --warmup 1 --export-json "$work/d.json" \
    --prepare "sh -c 'rm -rf $work/out; mkdir $work/out'" \
    "sh -c 'ls $photos/*.jpg | xargs -P2 -n 50 $build/bench/thumb-profile -d'" \
    "sh -c 'ls $photos/*.jpg | VIPS_CONCURRENCY=1 xargs -P2 -n 50 vipsthumbnail -s 256 -o $work/out/%s.jpg'"
t_dec=$(mean 0 d)
echo "decode alone: $(ratio "$t_dec" "$(mean 1 d)")x vipsthumbnail's time (1 thread, JPEG out);" \
     "the cold index takes $(ratio "$t_idx" "$t_dec")x the decode alone"
