#!/usr/bin/env bash
# mixed.sh - a cold index of a 500-file phone folder by media-server:
# files/s and the peak RSS of the server and of its mi-decode helpers,
# against vipsthumbnail + ffmpegthumbnailer making only the 256 px
# thumbnails of the same files; the two alternate in one run, RUNS times
# (default 3), medians reported:
#
#   BUILD=./build-release bench/mixed.sh
#
# The folder (made here, NFILES default 500): phone-sized JPEGs (12 MP,
# 4032 x 3024, EXIF make/model/date and a 160 px EXIF thumbnail), HEICs
# (12 MP, heif-enc with a 320 px thumbnail item), 1080p 30 fps 3 s clips
# (H.264 .mp4 and HEVC .mov, 12 and 10 Mbit/s), and 6 DNGs (12 MP CFA,
# 2048 px JPEG preview; bench/make-dng.py).  Photos are 10 JPEG and 6
# HEIC originals copied over, each copy made distinct by a trailing byte;
# every clip and DNG is its own encode.
# Ours: the server's first scan (hash + metadata + thumbnail), from start
# to "idle", its scan time from /status; VmHWM of the server, and of each
# mi-decode child sampled every 50 ms.  Theirs: vipsthumbnail -s 256 of the
# photos and DNGs (its tiffload reads a DNG's preview), then
# ffmpegthumbnailer -s 256 of the clips, both xargs -P2 (2 cores), peak
# RSS of the largest process from GNU time.
# Needs curl, python3, vips, heif-enc, ffmpeg (libx264, libx265),
# exiftool, ffmpegthumbnailer, /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=$(cd "${BUILD:-./build-release}" && pwd)
. bench/server-common.sh
runs=${RUNS:-3}
total=${NFILES:-500}
for t in curl vips heif-enc ffmpeg exiftool ffmpegthumbnailer vipsthumbnail /usr/bin/time; do
    command -v "$t" >/dev/null || { echo "mixed.sh: $t not found (scripts/install-deps.sh --bench --tests)" >&2; exit 1; }
done
ensure_build
work=$(mktemp -d /tmp/mixed-bench.XXXXXX)
trap 'stop_server 2>/dev/null; rm -rf "$work"' EXIT
d=$work/phone
mkdir -p "$d" "$work/out" "$work/src"

# The fixtures.
photo() {  # photo SEED OUT.png: 12 MP of blurred noise, in colour
    for b in 1 2 3; do vips gaussnoise "$work/src/n$b.v" 4032 3024 --seed "$1$b"; done
    vips bandjoin "$work/src/n1.v $work/src/n2.v $work/src/n3.v" "$work/src/c.v"
    vips gaussblur "$work/src/c.v" "$work/src/b.v" 2
    vips cast "$work/src/b.v" "$2" uchar
}
ndng=6 nvid=12   # nvid of each codec
nheic_base=6 njpg_base=10
rest=$((total - ndng - 2 * nvid))
nheic=$((rest / 7))                 # about 1 in 7 photos HEIC
njpg=$((rest - nheic))
vips gaussnoise "$work/src/t.v" 160 120
vips copy "$work/src/t.v" "$work/src/t.jpg"
for k in $(seq 1 $njpg_base); do
    photo "$k" "$work/src/p.png"
    vips copy "$work/src/p.png" "$work/src/j$k.jpg[Q=92]"
    exiftool -q -overwrite_original -Make=Apple -Model="iPhone 12" \
        -DateTimeOriginal="2023:05:$((10 + k)) 12:00:00" -Orientation#=1 \
        "-ThumbnailImage<=$work/src/t.jpg" "$work/src/j$k.jpg"
done
for k in $(seq 1 $nheic_base); do
    photo "$((50 + k))" "$work/src/p.png"
    heif-enc -q 60 -t 320 -o "$work/src/h$k.heic" "$work/src/p.png" >/dev/null 2>&1
done
for i in $(seq 1 $njpg); do
    { cat "$work/src/j$(( (i - 1) % njpg_base + 1 )).jpg"; printf '%d' "$i"; } >"$d/IMG_$((1000 + i)).JPG"
done
for i in $(seq 1 $nheic); do
    { cat "$work/src/h$(( (i - 1) % nheic_base + 1 )).heic"; printf '%d' "$i"; } >"$d/IMG_$((3000 + i)).HEIC"
done
for k in $(seq 1 $nvid); do
    ffmpeg -loglevel error -f lavfi -i "testsrc2=s=1920x1080:r=30:d=3" \
        -f lavfi -i "sine=f=$((200 + 20 * k)):d=3" -c:v libx264 -preset veryfast \
        -b:v 12M -pix_fmt yuv420p -c:a aac -metadata title="$k" \
        -metadata creation_time="2023-06-$(printf %02d "$k")T10:00:00Z" "$d/VID_$((4000 + k)).mp4"
    ffmpeg -loglevel error -f lavfi -i "testsrc2=s=1920x1080:r=30:d=3" \
        -f lavfi -i "sine=f=$((300 + 20 * k)):d=3" -c:v libx265 -preset ultrafast \
        -x265-params log-level=none -b:v 10M -tag:v hvc1 -pix_fmt yuv420p -c:a aac \
        -metadata title="$k" "$d/IMG_$((5000 + k)).MOV"
done
for k in $(seq 1 $ndng); do
    vips gaussnoise "$work/src/n.v" 2048 1536 --seed "$((90 + k))"
    vips colourspace "$work/src/n.v" "$work/src/p.png" srgb
    vips copy "$work/src/p.png" "$work/src/p.jpg[Q=90]"
    python3 bench/make-dng.py "$d/IMG_$((6000 + k)).DNG" "$work/src/p.jpg" 4032 3024 "$k"
done
rm -rf "$work/src"
nfiles=$(ls "$d" | wc -l)
echo "folder: $nfiles files, $(du -sh "$d" | cut -f1): $njpg JPEG, $nheic HEIC," \
     "$nvid MP4 + $nvid MOV, $ndng DNG"
cat "$d"/* >/dev/null

ours() {  # one cold index by the server; prints "wall scan_s server_kib helper_kib helpers"
    rm -rf "$d/.mediaindex" "$d/.thumbnails"
    local t0 t1 hwm=0 h p seen=" " st
    t0=$(date +%s.%N)
    start_server "$d"
    while :; do
        for p in $(ps -o pid= --ppid "$SERVER_PID" 2>/dev/null); do
            h=$(awk '/^VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
            [ "${h:-0}" -gt "$hwm" ] && hwm=$h
            case "$seen" in *" $p "*) ;; *) seen="$seen$p " ;; esac
        done
        st=$(curl -s "http://127.0.0.1:$PORT/status" || true)
        case "$st" in *'"state":"idle"'*'"last_scan_finished":'[0-9]*) break ;; esac
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$SERVER_LOG" >&2; exit 1; }
        sleep 0.05
    done
    t1=$(date +%s.%N)
    echo "$st" >"$work/status.json"
    local shwm
    shwm=$(hwm_kib "$SERVER_PID")
    stop_server
    rm -f "$SERVER_LOG"
    python3 - "$work/status.json" "$t0" "$t1" "$shwm" "$hwm" "$(echo $seen | wc -w)" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
st = s["last_scan_stats"]
print(f"{float(sys.argv[3]) - float(sys.argv[2]):.2f}",
      f"{s['last_scan_finished'] - s['last_scan_started']:.2f}",
      sys.argv[4], sys.argv[5], sys.argv[6],
      st["seen"], st["thumbs_made"], st["thumbs_failed"] + st["thumbs_unsupported"])
EOF
}

theirs() {  # prints "wall peak_kib"
    rm -rf "$work/out"; mkdir "$work/out"
    /usr/bin/time -f "%e %M" -o "$work/time.txt" sh -c "
        cd '$d' && ls | grep -E '\.(JPG|HEIC|DNG)\$' |
            VIPS_CONCURRENCY=1 xargs -P2 -n 8 vipsthumbnail -s 256 -o '$work/out/%s.jpg' 2>/dev/null
        ls | grep -E '\.(mp4|MOV)\$' |
            xargs -P2 -I{} ffmpegthumbnailer -s 256 -i {} -o '$work/out/{}.png' 2>/dev/null"
    echo "$(cat "$work/time.txt") $(ls "$work/out" | wc -l)"
}

ours >/dev/null   # warm-up: the binaries and libraries into memory
for r in $(seq 1 "$runs"); do
    o=$(ours); t=$(theirs)
    echo "run $r: mediaindex server [wall s, scan s, server KiB, mi-decode KiB, helpers, seen, thumbs, no-thumb] $o;" \
         "vips+ffmpegthumbnailer [wall s, peak KiB, thumbs] $t"
    echo "$o" >>"$work/ours.txt"; echo "$t" >>"$work/theirs.txt"
done
python3 - "$work/ours.txt" "$work/theirs.txt" "$nfiles" <<'EOF'
import statistics as S, sys
o = [l.split() for l in open(sys.argv[1])]
t = [l.split() for l in open(sys.argv[2])]
n = int(sys.argv[3])
m = lambda rows, i: S.median(float(r[i]) for r in rows)
ow, os_, tw = m(o, 0), m(o, 1), m(t, 0)
print(f"median of {len(o)}: mediaindex cold index {ow:.1f} s ({n / ow:.1f} files/s; "
      f"scan alone {os_:.1f} s, {n / os_:.1f} files/s), "
      f"vips+ffmpegthumbnailer thumbnails only {tw:.1f} s ({n / tw:.1f} files/s); "
      f"ratio {ow / tw:.2f}")
print(f"peak RSS: server {max(int(r[2]) for r in o) / 1024:.1f} MiB, "
      f"mi-decode {max(int(r[3]) for r in o) / 1024:.1f} MiB (largest of all runs), "
      f"vips/ffmpegthumbnailer largest process {max(int(r[1]) for r in t) / 1024:.1f} MiB")
EOF
