/*
 * fuzz-thumb.c - libFuzzer harness for the decode-and-thumbnail entry
 * point (mi_thumb_make_buffer: sniffing, EXIF orientation, libjpeg-turbo,
 * stb_image, resize, orientation, the PNG writer).
 *
 *   CC=clang meson setup build-fuzz -Dfuzz=true \
 *       -Db_sanitize=address,undefined -Db_lundef=false
 *   ninja -C build-fuzz fuzz/fuzz-thumb
 *   fuzz/seed-corpus.sh SEEDS        # seeds from the test corpus
 *   build-fuzz/fuzz/fuzz-thumb -timeout=2 -rss_limit_mb=1024 \
 *       -max_len=16384 CORPUS SEEDS
 *
 * The pixel cap is lowered to 2 MP so that each input stays fast; the
 * code paths are the same as with the default.
 */
#include <mediaindex.h>

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mi_thumb_options opts = MI_THUMB_OPTIONS_INIT;
    uint8_t *png = NULL;
    size_t len = 0;

    opts.max_pixels = 2u * 1000u * 1000u;
    if (mi_thumb_make_buffer(&png, &len, data, size, &opts) == MI_OK &&
        (len < 8 || png[0] != 0x89))
        __builtin_trap();     /* success must give a PNG */
    mi_free(png);
    return 0;
}
