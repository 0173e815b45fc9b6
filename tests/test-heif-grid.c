/*
 * test-heif-grid.c - HEIF derived images (grid, iovl) whose own data claims
 * a canvas larger than the ispe the file reports: libheif 1.15 allocates
 * by the descriptor, so mi-decode reads it and refuses over the pixel cap
 * (MI_ETOOBIG), before anything is decoded, with the helper's memory
 * staying small.  Honest ones of the same build still decode.
 *
 * The files are written here box by box: one 64 x 64 HEVC tile (heif-enc's
 * hvcC and slice, red over blue, 147 bytes), and a derived item 'grid' or
 * 'iovl' over it as the primary image, its descriptor in idat.
 */
#include <mediaindex.h>

#include "mi-test.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static const uint8_t hvcc[] = {
    0x01, 0x03, 0x70, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x1e, 0xf0, 0x00, 0xfc, 0xfd, 0xf8, 0xf8, 0x00, 0x00, 0x0f, 0x03, 0x20,
    0x00, 0x01, 0x00, 0x18, 0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x03, 0x70,
    0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00,
    0x1e, 0xba, 0x02, 0x40, 0x21, 0x00, 0x01, 0x00, 0x2b, 0x42, 0x01, 0x01,
    0x03, 0x70, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
    0x03, 0x00, 0x1e, 0xa0, 0x20, 0x81, 0x05, 0x96, 0xea, 0x49, 0x29, 0xae,
    0x6e, 0x04, 0x04, 0x0c, 0x08, 0x00, 0x00, 0x03, 0x00, 0x08, 0x00, 0x00,
    0x03, 0x00, 0x08, 0x40, 0x22, 0x00, 0x01, 0x00, 0x07, 0x44, 0x01, 0xc1,
    0x72, 0xb0, 0x22, 0x40
};

static const uint8_t tile[] = {
    0x00, 0x00, 0x00, 0x1f, 0x28, 0x01, 0xaf, 0x04, 0x18, 0x54, 0xec, 0xd7,
    0xe4, 0xe3, 0xaf, 0xff, 0xeb, 0x64, 0x3f, 0x5d, 0x01, 0x72, 0x9f, 0xa1,
    0x9d, 0xff, 0xb5, 0xc7, 0x0f, 0x2e, 0x19, 0xfd, 0xe6, 0x47, 0x8b
};

typedef struct buf {
    uint8_t b[2048];
    size_t n;
} buf;

static void put(buf *o, const void *p, size_t n)
{
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

/* v big-endian in `bytes` bytes; past 8 bytes the leading ones are 0. */
static void be(buf *o, uint64_t v, unsigned bytes)
{
    while (bytes--)
        o->b[o->n++] = bytes < 8 ? (uint8_t)(v >> (8 * bytes)) : 0;
}

/* A box opened at o->n: its size is written by end(). */
static size_t begin(buf *o, const char *type, int version_flags)
{
    size_t at = o->n;
    be(o, 0, 4);
    put(o, type, 4);
    if (version_flags >= 0)
        be(o, (uint32_t)version_flags, 4);
    return at;
}

static void end(buf *o, size_t at)
{
    size_t n = o->n;
    o->n = at;
    be(o, n - at, 4);
    o->n = n;
}

static void ispe(buf *o, uint32_t w, uint32_t h)
{
    size_t b = begin(o, "ispe", 0);
    be(o, w, 4);
    be(o, h, 4);
    end(o, b);
}

/* The file: item 1 the tile (hidden), item 2 the primary, of `kind`
 * ("grid" or "iovl"), with ispe iw x ih and the descriptor `desc`. */
static size_t make(uint8_t *out, const char *kind, uint32_t iw, uint32_t ih,
                   const uint8_t *desc, size_t desc_len)
{
    buf o = { .n = 0 };
    size_t meta, b, c, tile_off;

    b = begin(&o, "ftyp", -1);
    put(&o, "heic\0\0\0\0mif1heic", 16);
    end(&o, b);
    meta = begin(&o, "meta", 0);
    b = begin(&o, "hdlr", 0);
    be(&o, 0, 4);
    put(&o, "pict", 4);
    be(&o, 0, 12);
    be(&o, 0, 1);
    end(&o, b);
    b = begin(&o, "pitm", 0);
    be(&o, 2, 2);
    end(&o, b);
    b = begin(&o, "iinf", 0);
    be(&o, 2, 2);
    c = begin(&o, "infe", 2 << 24 | 1);           /* version 2, hidden */
    be(&o, 1, 2);
    be(&o, 0, 2);
    put(&o, "hvc1\0", 5);
    end(&o, c);
    c = begin(&o, "infe", 2 << 24);
    be(&o, 2, 2);
    be(&o, 0, 2);
    put(&o, kind, 4);
    be(&o, 0, 1);
    end(&o, c);
    end(&o, b);
    b = begin(&o, "iloc", 1 << 24);               /* version 1 */
    be(&o, 0x4400, 2);                            /* offsets, lengths: 4 bytes */
    be(&o, 2, 2);
    be(&o, 1, 2);                                 /* the tile, in mdat */
    be(&o, 0, 2);
    be(&o, 0, 2);
    be(&o, 1, 2);
    tile_off = o.n;
    be(&o, 0, 4);
    be(&o, sizeof tile, 4);
    be(&o, 2, 2);                                 /* the descriptor, in idat */
    be(&o, 1, 2);
    be(&o, 0, 2);
    be(&o, 1, 2);
    be(&o, 0, 4);
    be(&o, desc_len, 4);
    end(&o, b);
    b = begin(&o, "iref", 0);
    c = begin(&o, "dimg", -1);
    be(&o, 2, 2);
    be(&o, 1, 2);
    be(&o, 1, 2);
    end(&o, c);
    end(&o, b);
    b = begin(&o, "iprp", -1);
    c = begin(&o, "ipco", -1);
    {
        size_t h = begin(&o, "hvcC", -1);
        put(&o, hvcc, sizeof hvcc);
        end(&o, h);
    }
    ispe(&o, 64, 64);
    ispe(&o, iw, ih);
    end(&o, c);
    c = begin(&o, "ipma", 0);
    be(&o, 2, 4);
    be(&o, 1, 2);
    be(&o, 2, 1);
    be(&o, 0x81, 1);                              /* hvcC, essential */
    be(&o, 0x02, 1);
    be(&o, 2, 2);
    be(&o, 1, 1);
    be(&o, 0x03, 1);
    end(&o, c);
    end(&o, b);
    b = begin(&o, "idat", -1);
    put(&o, desc, desc_len);
    end(&o, b);
    end(&o, meta);
    b = begin(&o, "mdat", -1);
    {
        size_t at = o.n;
        o.n = tile_off;
        be(&o, at, 4);
        o.n = at;
    }
    put(&o, tile, sizeof tile);
    end(&o, b);
    memcpy(out, o.b, o.n);
    return o.n;
}

/* A grid descriptor, 1 x 1 tiles: 16-bit sides, or 32-bit. */
static const buf *grid(buf *d, uint32_t w, uint32_t h, bool wide)
{
    d->n = 0;
    be(d, 0, 1);
    be(d, wide, 1);
    be(d, 0, 2);                                  /* rows - 1, columns - 1 */
    be(d, w, wide ? 4 : 2);
    be(d, h, wide ? 4 : 2);
    return d;
}

/* An overlay descriptor (32-bit), the tile at 0, 0 on a white canvas. */
static const buf *overlay(buf *d, uint32_t w, uint32_t h)
{
    d->n = 0;
    be(d, 0, 1);
    be(d, 1, 1);
    for (int i = 0; i < 4; i++)
        be(d, 0xffff, 2);
    be(d, w, 4);
    be(d, h, 4);
    be(d, 0, 8);
    return d;
}

static mi_status thumb(const char *kind, uint32_t iw, uint32_t ih, const buf *desc)
{
    uint8_t file[2048], *png = NULL;
    size_t len = 0, n = make(file, kind, iw, ih, desc->b, desc->n);
    mi_status s = mi_thumb_make_buffer(&png, &len, file, n, NULL);

    printf("# %s, ispe %u x %u: %s\n", kind, (unsigned)iw, (unsigned)ih, mi_strerror(s));
    CHECK((s == MI_OK) == (png != NULL && len > 0));
    mi_free(png);
    return s;
}

/* The largest helper's resident peak so far, in MiB (mi-decode processes
 * are reaped when their job ends or their decoders are freed). */
static long children_peak_mib(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_CHILDREN, &ru) != 0)
        return -1;
    return ru.ru_maxrss / 1024;
}

static void test_honest_ones_decode(void)
{
    buf d;

    CHECK_EQ_INT(thumb("grid", 64, 64, grid(&d, 64, 64, false)), MI_OK);
    CHECK_EQ_INT(thumb("grid", 64, 64, grid(&d, 64, 64, true)), MI_OK);
    CHECK_EQ_INT(thumb("iovl", 64, 64, overlay(&d, 64, 64)), MI_OK);
}

static void test_lying_ones_refused(void)
{
    buf d;

    /* The fuzz finding: ispe 64 x 64, the grid 16489 x 28001 (462 MP). */
    CHECK_EQ_INT(thumb("grid", 64, 64, grid(&d, 16489, 28001, true)), MI_ETOOBIG);
    CHECK_EQ_INT(thumb("iovl", 64, 64, overlay(&d, 16489, 28001)), MI_ETOOBIG);
    /* A long thin ispe (65000 pixels), a canvas of its longer side
     * squared: each side within MAX_SIDE, the pixels over the cap. */
    CHECK_EQ_INT(thumb("grid", 65000, 1, grid(&d, 65000, 65000, true)), MI_ETOOBIG);
    CHECK_EQ_INT(thumb("grid", 65535, 16, grid(&d, 65535, 1600, false)), MI_ETOOBIG);
    CHECK_EQ_INT(thumb("iovl", 65000, 1, overlay(&d, 65000, 65000)), MI_ETOOBIG);
    /* The helper never allocated the canvases (462 MP of 8-bit RGB is
     * 1.3 GB; before the check it reached 480 MB under its 1 GiB limit). */
    printf("# largest mi-decode peak: %ld MiB\n", children_peak_mib());
    CHECK(children_peak_mib() < 200);
}

int main(void)
{
    RUN(test_honest_ones_decode);
    RUN(test_lying_ones_refused);
    return mi_test_done();
}
