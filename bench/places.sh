#!/usr/bin/env bash
# places.sh - places and search (issue 14), by hand:
#
#   BUILD=./build-rel bench/places.sh [N]      (N files, default 100000)
#
#  1. mi_place_at() over 1,000,000 positions (nine in ten near a city):
#     ns per lookup (target < 20 us);
#  2. a cold index of N small geotagged JPEGs (metadata only: the cost of
#     places and the word index shows; thumbnails are bench/thumbs.sh's),
#     peak RSS, and what the lookups are of it (target < 1% of a cold
#     index with thumbnails);
#  3. queries over that index: count, whole answer and first entry
#     (target < 50 ms at 100,000).
# Needs: /usr/bin/time.
set -euo pipefail

build=$(cd "${BUILD:-./build-rel}" && pwd)
n=${1:-100000}
places=$build/bench/mi-places
bench=$build/bench/mi-bench
[ -x "$places" ] && [ -x "$bench" ] || { echo "places.sh: build $build first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== 1. lookups"
"$places" lookup 1000000

echo "== 2. cold index of $n geotagged files (metadata only)"
"$places" gen "$work/lib" "$n"
/usr/bin/time -f '   %e s wall, peak RSS %M KiB' "$bench" scan --no-thumbs -j 2 "$work/lib" | tail -1
ls -l "$work/lib/.mediaindex/index.sqlite3" | awk '{ printf "   catalog %.1f MB\n", $5 / 1e6 }'

echo "== 3. queries"
"$places" search "$work/lib" "" "helsinki" "helsinki 2021" "place:finland" \
    "place:US" '"new york"' "2015" "between:2010..2012 place:japan" \
    "camera:pixel" "paris pixel" "img_0004" "type:video" "nosuchword"
