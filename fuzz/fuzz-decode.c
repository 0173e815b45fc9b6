/*
 * fuzz-decode - mi-decode's format decoders (lib/decoder/formats.c) on
 * arbitrary bytes, in process, without the sandbox: the first byte picks
 * the decoder (HEIF, WebP, TIFF, raw, video) and the operation, the rest
 * is the file.  Checks that every answer is one the library would accept:
 * a status, and pixels no larger than twice the box or than the image.
 *
 *   fuzz/make-seeds.sh SEEDS PROTO-SEEDS     # tiny files of each format
 *   LSAN_OPTIONS=suppressions=fuzz/lsan.supp \
 *   build-fuzz/fuzz/fuzz-decode -fork=1 -ignore_ooms=1 -ignore_crashes=1 \
 *       -runs=1000000 -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
 *       CORPUS SEEDS
 *
 * (-fork=1 with -ignore_ooms: libheif 1.15 sizes a grid image's canvas
 * from the grid descriptor, not from the ispe the handle reports and
 * decode_heif checks, so 1 KB files make it allocate gigabytes.)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "decode.h"
#include "mediaindex.h"

/* The request's max_pixels.  Decodes in the harness stay small: with
 * 100 MP, inputs of a few KB declaring tens of MP (TIFF strips, HEIF
 * grids) were decoded and shrunk whole, the shrink's per-pixel loops
 * traced for coverage: ~1 s for a 7681 x 2592 TIFF of the last corpus,
 * and the run averaged ~51 exec/s.  Larger images still take the
 * decoders' refusal (too_many, MI_ETOOBIG), and the sides' own limit
 * (MAX_SIDE) is checked first as before. */
#define MAX_PIXELS (1000u * 1000u)

static int ready;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int formats[] = { MI_DFMT_HEIF, MI_DFMT_WEBP, MI_DFMT_TIFF,
                                   MI_DFMT_RAW, MI_DFMT_VIDEO };
    mi_dreq req = { MI_DPROTO_MAGIC, MI_DOP_PIXELS, 256, 0, MAX_PIXELS };
    mi_dres res;
    dfile file;
    djob job = { &req, &file, &res, NULL };
    int fd;

    if (!ready) {
        decode_init();
        ready = 1;
    }
    if (size < 2)
        return 0;
    req.format = (uint32_t)formats[(data[0] & 0x7f) % 5];
    req.op = (data[0] & 0x80) ? MI_DOP_META : MI_DOP_PIXELS;
    fd = memfd_create("fuzz", MFD_CLOEXEC);
    if (fd < 0 || write(fd, data + 1, size - 1) != (ssize_t)(size - 1)) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    memset(&res, 0, sizeof res);
    memset(&file, 0, sizeof file);
    file.fd = fd;
    file.size = size - 1;
    decode_file(&job);
    if (res.status == MI_OK && req.op == MI_DOP_PIXELS &&
        (res.w > 2 * req.box || res.h > 2 * req.box || !job.px ||
         /* thumb.c believes only pixels no larger than the image */
         res.w > res.full_w || res.h > res.full_h || res.full_w > 65535 ||
         res.full_h > 65535))
        abort();
    free(job.px);
    if (file.map)
        munmap((void *)file.map, (size_t)file.size);
    close(fd);
    return 0;
}
