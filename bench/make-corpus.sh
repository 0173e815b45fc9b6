#!/usr/bin/env bash
# make-corpus.sh - build a generated benchmark corpus.
#
#   bench/make-corpus.sh OUTDIR [N_PHOTOS] [N_TINY]
#
#   OUTDIR/photos/  N_PHOTOS (default 200) unique copies of the real phone and
#                   camera JPEGs of $MI_TEST_CORPUS (default
#                   ../shared/corpus/exif-samples beside the project),
#                   largest first: each
#                   copy gets its own JPEG comment segment after the EXIF
#                   block, so it stays a valid JPEG with its EXIF.
#   OUTDIR/tiny/    N_TINY (default 100000) unique tiny images (8x8 PNG, and
#                   1x1 GIF for one in four), 1000 per subdirectory.
#
# Environment:
#   MI_TEST_CORPUS  where the source JPEGs are
#   MIN_BYTES       source JPEGs smaller than this are not used (default
#                   1000000), unless none is that big; then all are used
#
# OUTDIR's photos/ and tiny/ are replaced.  Needs: cc.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
    echo "usage: $0 OUTDIR [N_PHOTOS] [N_TINY]" >&2
    exit 2
fi
out=$1
n_photos=${2:-200}
n_tiny=${3:-100000}
corpus=${MI_TEST_CORPUS:-$(cd "$(dirname "$0")/../.." && pwd)/shared/corpus/exif-samples}
min_bytes=${MIN_BYTES:-1000000}
here=$(cd "$(dirname "$0")" && pwd)

[ -d "$corpus" ] || { echo "make-corpus: no corpus at $corpus" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mi-corpus.XXXXXX")
trap 'rm -rf "$work"' EXIT
cc -std=c11 -O2 -Wall -Wextra "$here/corpus-gen.c" -o "$work/corpus-gen"

# Source JPEGs, largest first.  Files the sample collection keeps as broken
# on purpose (corrupted.jpg, invalid/) are not "real photos"; corpus-gen also
# skips anything that is not a JPEG with an EXIF block.
list_jpegs() {
    find "$corpus" -type f \( -iname '*.jpg' -o -iname '*.jpeg' \) \
        ! -ipath '*corrupt*' ! -ipath '*/invalid/*' -size "+$1c" \
        -printf '%s\t%p\n' | sort -rn | cut -f2-
}
mapfile -t sources < <(list_jpegs $((min_bytes - 1)))
if [ ${#sources[@]} -eq 0 ]; then
    mapfile -t sources < <(list_jpegs 0)
fi
[ ${#sources[@]} -gt 0 ] || { echo "make-corpus: no JPEG in $corpus" >&2; exit 1; }

mkdir -p "$out"
rm -rf "$out/photos" "$out/tiny"

echo "photos: $n_photos copies of ${#sources[@]} source JPEGs:"
printf '  %s\n' "${sources[@]}"
if [ "$n_photos" -gt 0 ]; then
    "$work/corpus-gen" photos "$out/photos" "$n_photos" "${sources[@]}"
fi
echo "tiny: $n_tiny images"
if [ "$n_tiny" -gt 0 ]; then
    "$work/corpus-gen" tiny "$out/tiny" "$n_tiny"
fi
echo "corpus in $out: $(du -sh "$out" | cut -f1)"
