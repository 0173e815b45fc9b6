#!/usr/bin/env bash
# hash-1g.sh - SHA-256 throughput of mi_hash_file against `openssl dgst`.
#
#   BUILD=./build bench/hash-1g.sh
#
# Creates a 1 GiB file of random bytes in $BENCH_DIR (default /tmp), reads
# it once so the page cache is warm, checks that both tools agree on the
# hash, then times both with hyperfine and prints the throughputs and the
# ratio.  Target: mi_hash_file >= 90% of openssl dgst.
#
# Environment:
#   BUILD        meson build dir with lib/libmediaindex.so (default ./build)
#   MI_LIB_DIR   where libmediaindex.so is, if not $BUILD/lib
#   BENCH_DIR    where the 1 GiB file goes (default /tmp); it is reused if
#                present and removed afterwards unless BENCH_KEEP=1
#   RUNS         hyperfine runs per command (default 10)
#
# Needs: cc, hyperfine, openssl, jq.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build=$(cd "${BUILD:-./build}" && pwd)
libdir=$(cd "${MI_LIB_DIR:-$build/lib}" && pwd)
bench_dir=${BENCH_DIR:-/tmp}
runs=${RUNS:-10}
size=$((1024 * 1024 * 1024))

for tool in cc hyperfine openssl jq; do
    command -v "$tool" >/dev/null || { echo "hash-1g: $tool not found" >&2; exit 1; }
done
[ -e "$libdir/libmediaindex.so" ] ||
    { echo "hash-1g: no libmediaindex.so in $libdir (build first)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mi-hash-1g.XXXXXX")
file=$bench_dir/mi-bench-1g.bin
created=0
cleanup() {
    rm -rf "$work"
    if [ "$created" = 1 ] && [ "${BENCH_KEEP:-0}" != 1 ]; then
        rm -f "$file"
    fi
}
trap cleanup EXIT

# The client uses only the public header and the shared library.
cc -std=c11 -O2 -Wall -Wextra -I"$src/include" "$here/mi-sha256.c" \
    -L"$libdir" -lmediaindex -Wl,-rpath,"$libdir" -o "$work/mi-sha256"
"$work/mi-sha256" -e

if [ "$(stat -c %s "$file" 2>/dev/null || echo 0)" != "$size" ]; then
    echo "creating $file (1 GiB of random bytes)"
    created=1
    # Random, so no file system can compress or dedupe it.
    head -c "$size" /dev/urandom >"$file"
fi
# Warm the page cache: this measures hashing, not the disk.
cat "$file" >/dev/null

mine=$("$work/mi-sha256" "$file" | cut -d' ' -f1)
theirs=$(openssl dgst -sha256 -r "$file" | cut -d' ' -f1)
if [ "$mine" != "$theirs" ]; then
    echo "hash-1g: hashes differ: mi $mine, openssl $theirs" >&2
    exit 1
fi
echo "sha256 $mine (both agree)"

hyperfine -N --warmup 2 --runs "$runs" --export-json "$work/result.json" \
    -n "openssl dgst" "openssl dgst -sha256 $file" \
    -n "mi_hash_file" "$work/mi-sha256 $file"

jq -r --argjson size "$size" '
    (.results | map({key: .command, value: .median}) | from_entries) as $m
    | "openssl dgst:  \($size / $m["openssl dgst"] / 1e6 | floor) MB/s (median \($m["openssl dgst"] * 1000 | floor) ms)",
      "mi_hash_file:  \($size / $m["mi_hash_file"] / 1e6 | floor) MB/s (median \($m["mi_hash_file"] * 1000 | floor) ms)",
      "ratio mi/openssl throughput: \($m["openssl dgst"] / $m["mi_hash_file"] * 100 | round)% (target >= 90%)"
' "$work/result.json"
