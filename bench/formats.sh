#!/usr/bin/env bash
# formats.sh - phone formats through mi-decode, against the public tools,
# measured in the same run (hyperfine, medians of RUNS, default 3):
#
#   BUILD=./build bench/formats.sh [CORPUS_DIR]
#
#  1. HEIC: a cold index (hash + metadata + 256 px thumbnail, mi-bench scan
#     with 2 workers) of a folder of HEIC photos, against
#     `vipsthumbnail -s 256` of the same files (xargs -P2);
#  2. video: the same for a folder of phone-like clips (1080p H.264 and
#     HEVC, 6 s, made here with ffmpeg), against `ffmpegthumbnailer -s 256`
#     of each (xargs -P2);
#  3. the server process's and mi-decode's peak RSS while a server indexes
#     a mixed folder (JPEG, HEIC, MOV), from /proc.
# The HEIC set is CORPUS_DIR's heic/ photos (the shared corpus) copied
# 8 times over, each copy made distinct by a trailing byte, plus photos
# heif-enc makes here from 12 MP noise, with a 320 px thumbnail item as
# phones write it.  Ratios < 1 mean mediaindex is
# faster.  Needs hyperfine, vips, ffmpeg, ffmpegthumbnailer, heif-enc.
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(cd "${BUILD:-./build}" && pwd)
corpus=${1:-../shared/corpus/exif-samples}
runs=${RUNS:-3}
bench=$build/bench/mi-bench
for t in hyperfine vipsthumbnail ffmpeg ffmpegthumbnailer heif-enc; do
    command -v "$t" >/dev/null || { echo "formats.sh: $t not found (scripts/install-deps.sh --bench --tests)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/formats-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/heic" "$work/video" "$work/out"

# The fixtures.
n=0
for f in $(find "$corpus/heic" -type f); do
    for k in 1 2 3 4 5 6 7 8; do
        n=$((n + 1))
        { cat "$f"; printf '%d' "$k"; } >"$work/heic/c$n.heic"
    done
done
for k in 1 2 3 4 5 6 7 8; do
    vips gaussnoise "$work/n.v" 4032 3024 --seed "$k"
    vips colourspace "$work/n.v" "$work/n.png" srgb
    # With a 320 px thumbnail item, as iPhones and Android cameras write.
    heif-enc -q 70 -t 320 -o "$work/heic/g$k.heic" "$work/n.png" >/dev/null 2>&1
done
rm -f "$work/n.v" "$work/n.png"
for k in 1 2 3 4 5; do
    ffmpeg -loglevel error -f lavfi -i "testsrc2=s=1920x1080:r=30:d=6" -c:v libx264 \
        -pix_fmt yuv420p -g 30 "$work/video/h264-$k.mp4" -metadata title="$k"
    ffmpeg -loglevel error -f lavfi -i "testsrc2=s=1920x1080:r=30:d=6" -c:v libx265 \
        -x265-params log-level=none -tag:v hvc1 -pix_fmt yuv420p -g 30 \
        -metadata title="$k" "$work/video/hevc-$k.mov"
done
cat "$work"/heic/* "$work"/video/* >/dev/null
echo "HEIC files: $(ls "$work/heic" | wc -l), videos: $(ls "$work/video" | wc -l)"

ratio() {  # ratio NAME TOOL JSON: ours / theirs from hyperfine's medians
    python3 - "$@" <<'EOF'
import json, sys
r = json.load(open(sys.argv[3]))["results"]
ours, theirs = r[0]["median"], r[1]["median"]
print(f"{sys.argv[1]}: mediaindex (hash + metadata + thumbnail) {ours:.2f} s, "
      f"{sys.argv[2]} (thumbnail only) {theirs:.2f} s, ratio {ours / theirs:.2f}")
EOF
}

hyperfine -N -r "$runs" -w 1 --export-json "$work/heic.json" \
    -p "rm -rf $work/heic/.mediaindex $work/heic/.thumbnails" \
    "$bench scan -j 2 $work/heic" \
    "sh -c 'ls $work/heic/*.heic | VIPS_CONCURRENCY=1 xargs -P2 -n 8 vipsthumbnail -s 256 -o $work/out/%s.jpg'" \
    >/dev/null
ratio "HEIC -> 256 px" vipsthumbnail "$work/heic.json"

hyperfine -N -r "$runs" -w 1 --export-json "$work/video.json" \
    -p "rm -rf $work/video/.mediaindex $work/video/.thumbnails" \
    "$bench scan -j 2 $work/video" \
    "sh -c 'cd $work/video && ls | xargs -P2 -I{} ffmpegthumbnailer -s 256 -i {} -o $work/out/{}.png'" \
    >/dev/null
ratio "video poster -> 256 px" ffmpegthumbnailer "$work/video.json"

# Peak memory of a server indexing a mixed folder.
mkdir "$work/mixed"
cp "$work"/heic/c1*.heic "$work"/video/* "$work/mixed/"
find "$corpus/jpg" -name '*.jpg' -size +100k | head -20 | xargs -I{} cp {} "$work/mixed/"
server=$build/server/media-server
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$server" --storage_dir "$work/mixed" --listen 127.0.0.1 --port "$port" 2>/dev/null &
spid=$!
peak_helper=0
until curl -s "http://127.0.0.1:$port/status" | grep -q '"state":"idle","files_seen":[1-9]'; do
    for p in $(ps -o pid= --ppid "$spid" 2>/dev/null); do
        h=$(awk '/^VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        [ "${h:-0}" -gt "$peak_helper" ] && peak_helper=$h
    done
    sleep 0.05
    kill -0 "$spid" 2>/dev/null || break
done
echo "mixed folder of $(ls "$work/mixed" | wc -l) files ($(curl -s "http://127.0.0.1:$port/status" | python3 -c 'import json,sys; s=json.load(sys.stdin)["last_scan_stats"]; print(s["thumbs_made"], "thumbnails,", s["thumbs_failed"], "failed")')):" \
     "server VmHWM $(awk '/^VmHWM/ {print $2}' /proc/$spid/status) KiB," \
     "mi-decode VmHWM $peak_helper KiB (each limited to 1 GiB of address space)"
kill "$spid"; wait "$spid" 2>/dev/null || true
