#!/bin/sh
# make-seeds.sh DECODE_DIR PROTO_DIR - small seeds (tiny dimensions, all
# under 8 KiB) for fuzz-decode and fuzz-proto, one or more of each format
# mi-decode reads, made with the tools that are installed (ffmpeg,
# heif-enc, cwebp, img2webp, python3 with bench/make-dng.py); a missing
# tool just means fewer seeds.
#
#   fuzz-decode: [selector] [file]; selector & 0x7f: 0 HEIF, 1 WebP,
#                2 TIFF, 3 raw, 4 video; | 0x80: metadata only
#   fuzz-proto:  [mode 0] [mi_dreq: magic, op, box, format, max_pixels]
#                [file]
set -u
dec=${1:?usage: make-seeds.sh DECODE_DIR PROTO_DIR}
pro=${2:?usage: make-seeds.sh DECODE_DIR PROTO_DIR}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$dec" "$pro"
cd "$tmp" || exit 1

have() { command -v "$1" >/dev/null 2>&1; }
ff() { ffmpeg -hide_banner -loglevel error -y "$@" 2>/dev/null; }
src='testsrc2=s=32x24:r=5'

if have ffmpeg; then
    ff -f lavfi -i testsrc2=s=64x48 -frames:v 1 p64.png
    ff -f lavfi -i testsrc2=s=16x12 -frames:v 1 p16.png
    ff -f lavfi -i "testsrc2=s=32x24,format=rgba,geq=r='r(X,Y)':g='g(X,Y)':b='b(X,Y)':a='X*8'" \
       -frames:v 1 pa.png
    # TIFF: compressions, sample layouts, a palette, bilevel, 16 bits
    ff -i p16.png -compression_algo raw t-raw.tif
    ff -i p64.png -compression_algo lzw t-lzw.tif
    ff -i p64.png -compression_algo deflate t-zip.tif
    ff -i p16.png -compression_algo packbits t-pb.tif
    ff -i pa.png -compression_algo lzw t-rgba.tif
    ff -i p16.png -pix_fmt gray t-gray.tif
    ff -i p16.png -pix_fmt monow t-mono.tif
    ff -i p16.png -pix_fmt yuv420p t-yuv.tif
    ff -i p16.png -pix_fmt rgb48le t-48.tif
    ff -i p16.png -pix_fmt pal8 t-pal.tif
    # video: codecs and containers; one > 2 s (the seek to 1 s) with
    # a date, a place and a rotation
    ff -f lavfi -i $src:d=1 -c:v libx264 -preset ultrafast -pix_fmt yuv420p v-h264.mp4
    ff -f lavfi -i $src:d=1 -c:v libx265 -preset ultrafast -x265-params log-level=none v-hevc.mov
    ff -f lavfi -i $src:d=1 -c:v libvpx -b:v 20k v-vp8.webm
    ff -f lavfi -i $src:d=1 -c:v libvpx-vp9 -b:v 20k v-vp9.mkv
    ff -f lavfi -i $src:d=1 -c:v mpeg4 -q:v 20 v-mpeg4.avi
    ff -f lavfi -i $src:d=1 -c:v mjpeg -q:v 20 v-mjpeg.mov
    ff -f lavfi -i $src:d=1 -c:v libx264 -preset ultrafast v-ts.ts
    ff -f lavfi -i $src:d=1 -c:v libaom-av1 -cpu-used 8 -b:v 20k v-av1.mp4
    ff -f lavfi -i $src:d=3 -c:v libx264 -preset ultrafast -g 5 \
       -metadata creation_time=2020-01-02T03:04:05Z \
       -metadata location=+12.3456-045.6789/ -metadata:s:v rotate=90 v-long.mp4
    # raw previews are JPEGs
    ff -i p64.png -q:v 20 j64.jpg
    ff -i p16.png -q:v 20 j16.jpg
fi
if have heif-enc && [ -f p64.png ]; then
    heif-enc -q 30 -o h-a.heic p64.png >/dev/null 2>&1
    heif-enc -q 30 -o h-alpha.heic pa.png >/dev/null 2>&1
    heif-enc -q 30 -t 8 -o h-thumb.heic p64.png >/dev/null 2>&1
    heif-enc -A -q 30 -o h-a.avif p64.png >/dev/null 2>&1
fi
if have cwebp && [ -f p64.png ]; then
    cwebp -quiet -q 30 p64.png -o w-lossy.webp
    cwebp -quiet -lossless p16.png -o w-lossless.webp
    cwebp -quiet -q 30 pa.png -o w-alpha.webp
fi
if have img2webp && [ -f p16.png ]; then
    img2webp -loop 0 -lossy p16.png -d 100 p16.png -o w-anim.webp >/dev/null 2>&1
fi
if have python3 && [ -f j64.jpg ]; then
    python3 "$here/../bench/make-dng.py" r-a.dng j64.jpg 16 16 1 >/dev/null 2>&1
    python3 "$here/../bench/make-dng.py" r-b.dng j16.jpg 8 8 2 >/dev/null 2>&1
fi

# selector (fuzz-decode's first byte) and mi_dformat for each file
n=0
for f in h-* w-* t-* r-* v-*; do
    [ -s "$f" ] || continue
    case $f in
        h-*) sel=0 fmt=1 ;;
        w-*) sel=1 fmt=2 ;;
        t-*) sel=2 fmt=3 ;;
        r-*) sel=3 fmt=4 ;;
        v-*) sel=4 fmt=5 ;;
    esac
    # pixels, and metadata only
    { printf "\\$(printf %o $sel)"; cat "$f"; } > "$dec/$f"
    { printf "\\$(printf %o $((sel + 128)))"; cat "$f"; } > "$dec/m-$f"
    # mode 0, then the request (little-endian): magic "miD1", op 2
    # (pixels), box 128, the format, max_pixels 1000000; then the file
    python3 - "$fmt" "$f" "$pro/$f" <<'EOF' 2>/dev/null || true
import struct, sys
fmt, src, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
req = struct.pack('<IIIIQ', 0x6d694431, 2, 128, fmt, 1000000)
open(out, 'wb').write(b'\0' + req + open(src, 'rb').read())
EOF
    n=$((n + 1))
done
echo "make-seeds.sh: $n files, $(ls "$dec" | wc -l) fuzz-decode seeds in $dec, $(ls "$pro" | wc -l) fuzz-proto seeds in $pro"
