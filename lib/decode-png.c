/*
 * decode-png.c - PNG for thumbnails, through libspng, row by row.
 *
 * libspng is fuzzed, decodes one row at a time and has image and chunk
 * limits of its own.  Each row (any bit depth, palette, tRNS: converted
 * to RGBA8) goes straight into the box shrinker, so a 9999 x 9999 16-bit
 * PNG costs a few rows of memory, not 800 MB.  The file is read through
 * libspng's stream callback, a chunk at a time, never whole.
 *
 * Interlaced (Adam7) images come in seven passes, which a row sink cannot
 * take: they are decoded whole, inside the same budget (so a huge one
 * fails with MI_ETOOBIG instead of allocating).
 *
 * As stb_image before, a damaged CRC does not stop the decode (critical
 * chunks are used, ancillary ones dropped): what the CRC protects against
 * is bit rot, and a slightly wrong thumbnail beats none.
 */
#include "config.h"
#include "mi-private.h"

#include <stdlib.h>
#include <string.h>

#include <spng.h>

/* Ancillary chunks libspng keeps in memory (text, iCCP, eXIf ...). */
#define CHUNK_LIMIT (4u * 1024u * 1024u)
/* libspng's own state besides them: zlib, two scanlines of the PNG's
 * widest format (8 bytes a pixel), a little slack. */
#define SPNG_FIXED (512u * 1024u)
#define MAX_SIDE 65535u

typedef struct pread_state {
    const mi_src *src;
    uint64_t off;
} pread_state;

static int read_fn(spng_ctx *ctx, void *user, void *dst, size_t len)
{
    pread_state *p = user;
    size_t got = 0;

    (void)ctx;
    while (got < len) {
        long n = mi_src_pread(p->src, (uint8_t *)dst + got, len - got, p->off);
        if (n < 0)
            return SPNG_IO_ERROR;
        if (n == 0)
            return SPNG_IO_EOF;
        got += (size_t)n;
        p->off += (uint64_t)n;
    }
    return 0;
}

/* The IHDR's claim, read directly: libspng refuses sides over its limit
 * as errors, and a header claiming 100000 x 100000 is "too big", not
 * "broken". */
static bool claims_too_big(const mi_src *src)
{
    uint8_t h[24];

    if (mi_src_pread(src, h, sizeof(h), 0) != (long)sizeof(h))
        return false;
    uint32_t w = (uint32_t)h[16] << 24 | (uint32_t)h[17] << 16 |
                 (uint32_t)h[18] << 8 | h[19];
    uint32_t hh = (uint32_t)h[20] << 24 | (uint32_t)h[21] << 16 |
                  (uint32_t)h[22] << 8 | h[23];
    return w > MAX_SIDE || hh > MAX_SIDE;
}

mi_status mi_decode_png(mi_image *im, const mi_src *src, int orientation,
                        int box, uint64_t max_pixels, mi_budget *budget)
{
    struct spng_ihdr ihdr;
    pread_state ps = { src, 0 };
    spng_ctx *ctx;
    mi_shrink k;
    uint8_t *px = NULL;
    uint64_t need = 0;
    size_t row_len;
    mi_status s = MI_EFORMAT;
    int fx, fy, rc;

    memset(im, 0, sizeof(*im));
    memset(&k, 0, sizeof(k));
    ctx = spng_ctx_new(0);
    if (!ctx)
        return MI_ENOMEM;
    spng_set_image_limits(ctx, MAX_SIDE, MAX_SIDE);
    spng_set_chunk_limits(ctx, CHUNK_LIMIT, CHUNK_LIMIT);
    spng_set_crc_action(ctx, SPNG_CRC_USE, SPNG_CRC_DISCARD);
    if (src->fd < 0)
        rc = spng_set_png_buffer(ctx, src->buf, src->len);
    else
        rc = spng_set_png_stream(ctx, read_fn, &ps);
    if (rc == 0)
        rc = spng_get_ihdr(ctx, &ihdr);
    if (rc != 0) {
        s = claims_too_big(src) ? MI_ETOOBIG : MI_EFORMAT;
        goto out;
    }
    if ((uint64_t)ihdr.width * ihdr.height > max_pixels) {
        s = MI_ETOOBIG;
        goto out;
    }
    im->full_w = (int)ihdr.width;
    im->full_h = (int)ihdr.height;
    mi_thumb_factors(im->full_w, im->full_h, im->full_w, im->full_h,
                     orientation, box, &fx, &fy);
    row_len = (size_t)ihdr.width * 4;
    need = SPNG_FIXED + CHUNK_LIMIT + (uint64_t)ihdr.width * 8u * 2u +
           mi_shrink_bytes(im->full_w, im->full_h, fx, fy) +
           (ihdr.interlace_method ? (uint64_t)row_len * ihdr.height : row_len);
    s = mi_budget_acquire(budget, need);
    if (s != MI_OK) {
        need = 0;
        goto out;
    }
    s = mi_shrink_begin(&k, im->full_w, im->full_h, fx, fy);
    if (s != MI_OK)
        goto out;
    s = MI_EFORMAT;

    if (ihdr.interlace_method) {
        px = malloc(row_len * ihdr.height);
        if (!px) {
            s = MI_ENOMEM;
            goto out;
        }
        if (spng_decode_image(ctx, px, row_len * ihdr.height, SPNG_FMT_RGBA8,
                              SPNG_DECODE_TRNS) != 0)
            goto out;
        for (uint32_t y = 0; y < ihdr.height; y++)
            mi_shrink_row(&k, px + (size_t)y * row_len);
    } else {
        px = malloc(row_len);
        if (!px) {
            s = MI_ENOMEM;
            goto out;
        }
        if (spng_decode_image(ctx, NULL, 0, SPNG_FMT_RGBA8,
                              SPNG_DECODE_TRNS | SPNG_DECODE_PROGRESSIVE) != 0)
            goto out;
        for (uint32_t y = 0; y < ihdr.height; y++) {
            rc = spng_decode_row(ctx, px, row_len);
            if (rc != 0 && !(rc == SPNG_EOI && y + 1 == ihdr.height))
                goto out;
            mi_shrink_row(&k, px);
        }
    }
    s = MI_OK;

out:
    spng_ctx_free(ctx);
    free(px);
    if (s == MI_OK) {
        need = mi_shrink_end(&k, im, budget, need);
        im->alpha = true;
    }
    mi_shrink_free(&k);
    mi_budget_release(budget, need);
    return s;
}
