#!/usr/bin/env bash
# raw.sh - camera raw (DNG) thumbnails from the embedded preview, against a
# full decode of the same files by libraw's dcraw_emu, in the same run
# (hyperfine, medians of RUNS, default 3; issue 10's target: <= 0.2x):
#
#   BUILD=./build-release bench/raw.sh
#
# The files: RAWS (default 8) DNGs written by bench/make-dng.py, each
# RAW_W x RAW_H (default 6000 x 4000, 24 MP) of uncompressed 16-bit RGGB
# CFA data (48 MB) with a PREVIEW-px (default 2048) JPEG preview made here
# by vips, as cameras and Adobe's converter embed one.  Timed, 2 at a time
# (xargs -P2, mi-bench -j 2) on the 2-core machine:
#   - mi-thumbs: mediaindex's 256 px thumbnail only (mi-decode's raw path);
#   - mi-bench scan: a cold index (hash + metadata + thumbnail);
#   - dcraw_emu: a full decode (AHD demosaic, 8-bit RGB to /dev/null);
#   - dcraw_emu -h: a half-size decode, the cheapest libraw does.
# vips is not a baseline: Debian 12's 8.14 has no libraw loader and its
# tiffload reads the DNG's IFD0, i.e. the preview, like us.
# Needs hyperfine, vips, python3, dcraw_emu (Debian package libraw-bin).
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(cd "${BUILD:-./build-release}" && pwd)
runs=${RUNS:-3}
nraw=${RAWS:-8}
rw=${RAW_W:-6000}
rh=${RAW_H:-4000}
pw=${PREVIEW:-2048}
for t in hyperfine vips dcraw_emu python3; do
    command -v "$t" >/dev/null || { echo "raw.sh: $t not found (scripts/install-deps.sh --bench; apt-get install libraw-bin)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/raw-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/raw" "$work/out"

ph=$((pw * rh / rw))
for k in $(seq 1 "$nraw"); do
    vips gaussnoise "$work/n.v" "$pw" "$ph" --seed "$k"
    vips gaussblur "$work/n.v" "$work/b.v" 1.5
    vips colourspace "$work/b.v" "$work/p.png" srgb
    vips copy "$work/p.png" "$work/p.jpg[Q=90]"
    python3 bench/make-dng.py "$work/raw/r$k.dng" "$work/p.jpg" "$rw" "$rh" "$k"
done
rm -f "$work"/n.v "$work"/b.v "$work"/p.png "$work"/p.jpg
dcraw_emu -Z - "$work/raw/r1.dng" >"$work/check.ppm" \
    || { echo "raw.sh: dcraw_emu cannot decode the generated DNG" >&2; exit 1; }
echo "$nraw DNGs ${rw}x${rh}, $(du -sh "$work/raw" | cut -f1), preview ${pw}x${ph};" \
     "dcraw_emu's output: $(head -c 15 "$work/check.ppm" | head -n 2 | tr '\n' ' ')"
rm -f "$work/check.ppm"
cat "$work"/raw/* >/dev/null
echo "mi-bench scan: $("$build/bench/mi-bench" scan -j 2 "$work/raw" 2>&1 | tr '\n' ' ')"

hyperfine -N -r "$runs" -w 1 --export-json "$work/raw.json" \
    -p "rm -rf $work/raw/.mediaindex $work/raw/.thumbnails $work/out/*" \
    "sh -c 'ls $work/raw/*.dng | xargs -P2 -n 4 $build/bench/mi-thumbs -o $work/out'" \
    "$build/bench/mi-bench scan -j 2 $work/raw" \
    "sh -c 'ls $work/raw/*.dng | xargs -P2 -I{} sh -c \"dcraw_emu -Z - {} >/dev/null\"'" \
    "sh -c 'ls $work/raw/*.dng | xargs -P2 -I{} sh -c \"dcraw_emu -h -Z - {} >/dev/null\"'" \
    >/dev/null

python3 - "$work/raw.json" "$nraw" <<'EOF'
import json, sys
r = [x["median"] for x in json.load(open(sys.argv[1]))["results"]]
n = int(sys.argv[2])
names = ["mi-thumbs (thumbnail)", "mi-bench scan (index)",
         "dcraw_emu (full)", "dcraw_emu -h (half)"]
for name, t in zip(names, r):
    print(f"{name:24s} median {t:6.2f} s  {t / n * 1000:6.0f} ms/file")
for i in (0, 1):
    print(f"ratio {names[i]} / dcraw_emu full: {r[i] / r[2]:.3f}, "
          f"/ dcraw_emu -h: {r[i] / r[3]:.3f}  (target <= 0.2 of full)")
EOF
