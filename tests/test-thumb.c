/*
 * test-thumb.c - the thumbnail pipeline: geometry, orientation, formats,
 * decompression bombs (memory and time measured in a child process), the
 * corpus, determinism.  Thumbnails are decoded back with stb_image.
 */
#include "mi-private.h"

#include "fixtures.h"
#include "mi-test.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <math.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <spng.h>
#include <turbojpeg.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_PNG
#define STBI_NO_STDIO
#include <stb/stb_image.h>

#define N 256

/* A decoded thumbnail. */
typedef struct thumb {
    uint8_t *px;   /* 256 x 256 RGBA, or NULL */
} thumb;

static mi_status make(thumb *t, const void *buf, size_t len)
{
    uint8_t *png = NULL;
    size_t plen = 0;
    int w = 0, h = 0, comp = 0;
    mi_status s = mi_thumb_make_buffer(&png, &plen, buf, len, NULL);

    t->px = NULL;
    if (s != MI_OK)
        return s;
    t->px = stbi_load_from_memory(png, (int)plen, &w, &h, &comp, 4);
    if (!t->px || w != N || h != N || comp != 4) {
        printf("# thumbnail is not a 256x256 RGBA PNG (%dx%d, %d)\n", w, h, comp);
        mi_test_failed_now = 1;
    }
    mi_free(png);
    return s;
}

static const uint8_t *px(const thumb *t, int x, int y)
{
    return t->px + ((size_t)y * N + (size_t)x) * 4;
}

/* The box of non-transparent pixels. */
static void opaque_box(const thumb *t, int *x0, int *y0, int *x1, int *y1)
{
    *x0 = *y0 = N;
    *x1 = *y1 = -1;
    for (int y = 0; y < N; y++)
        for (int x = 0; x < N; x++)
            if (px(t, x, y)[3]) {
                if (x < *x0) *x0 = x;
                if (y < *y0) *y0 = y;
                if (x > *x1) *x1 = x;
                if (y > *y1) *y1 = y;
            }
}

/* Mean absolute difference over RGBA. */
static double mad(const thumb *a, const thumb *b)
{
    double sum = 0;
    for (size_t i = 0; i < (size_t)N * N * 4; i++)
        sum += abs((int)a->px[i] - (int)b->px[i]);
    return sum / ((double)N * N * 4);
}

/* `t` turned as EXIF orientation o turns a stored image (the canvas is
 * square and the image centred, so the whole canvas can be turned). */
static void orient(thumb *out, const thumb *t, int o)
{
    out->px = malloc((size_t)N * N * 4);
    for (int y = 0; y < N; y++) {
        for (int x = 0; x < N; x++) {
            int sx, sy;
            switch (o) {
            case 2: sx = N - 1 - x; sy = y; break;
            case 3: sx = N - 1 - x; sy = N - 1 - y; break;
            case 4: sx = x; sy = N - 1 - y; break;
            case 5: sx = y; sy = x; break;
            case 6: sx = y; sy = N - 1 - x; break;
            case 7: sx = N - 1 - y; sy = N - 1 - x; break;
            case 8: sx = N - 1 - y; sy = x; break;
            default: sx = x; sy = y; break;
            }
            memcpy(out->px + ((size_t)y * N + (size_t)x) * 4, px(t, sx, sy), 4);
        }
    }
}

static void thumb_free(thumb *t)
{
    free(t->px);
    t->px = NULL;
}

/* ---------------------------------------------------------------------- */
/* Orientation                                                             */

/* The same stored pixels with orientations 1..8: each thumbnail must be
 * the orientation-1 one turned accordingly, and differ from the others. */
static void test_fixture_orientations(void)
{
    thumb t[9];

    for (int o = 1; o <= 8; o++) {
        fx_exif x = { 0 };
        uint8_t *jpg;
        size_t len;
        x.orientation = o;
        CHECK_OK(fx_jpeg_buffer(&jpg, &len, 640, 384, 0, &x));
        CHECK_OK(make(&t[o], jpg, len));
        free(jpg);
    }
    for (int o = 1; o <= 8; o++) {
        thumb want;
        int x0, y0, x1, y1;
        if (!t[o].px || !t[1].px)
            return;
        orient(&want, &t[1], o);
        if (mad(&t[o], &want) > 1.0) {
            printf("# orientation %d: mean abs diff %.2f from the expected turn\n",
                   o, mad(&t[o], &want));
            mi_test_failed_now = 1;
        }
        if (o != 1)
            CHECK(mad(&t[o], &t[1]) > 10.0);
        /* 640x384 fits as 256x154 (or 154x256 turned), centred. */
        opaque_box(&t[o], &x0, &y0, &x1, &y1);
        if (o < 5) {
            CHECK_EQ_INT(x1 - x0 + 1, 256);
            CHECK_EQ_INT(y1 - y0 + 1, 154);
            CHECK_EQ_INT(y0, 51);
        } else {
            CHECK_EQ_INT(x1 - x0 + 1, 154);
            CHECK_EQ_INT(y1 - y0 + 1, 256);
            CHECK_EQ_INT(x0, 51);
        }
        thumb_free(&want);
    }
    for (int o = 1; o <= 8; o++)
        thumb_free(&t[o]);
}

/* The corpus's eight files of each set show the same picture upright. */
static void test_corpus_orientations(void)
{
    static const char *const sets[] = { "landscape", "portrait" };
    const char *root = fx_corpus();

    if (!root) {
        SKIP("MI_TEST_CORPUS not set");
        return;
    }
    for (size_t s = 0; s < MI_ARRAY_LEN(sets); s++) {
        thumb t[9], turned;
        for (int o = 1; o <= 8; o++) {
            char rel[128];
            char *p;
            uint8_t *buf = NULL;
            size_t len = 0;
            snprintf(rel, sizeof(rel), "jpg/orientation/%s_%d.jpg", sets[s], o);
            p = fx_path(root, rel);
            CHECK_OK(fx_read_file(p, &buf, &len));
            free(p);
            t[o].px = NULL;
            if (buf)
                CHECK_OK(make(&t[o], buf, len));
            free(buf);
        }
        if (!t[1].px)
            return;
        /* Each file's label ("1" ... "8") differs, and each was encoded
         * on its own: the same way up is a small difference; any of the
         * seven wrong turns of _1 is a much larger one. */
        for (int o = 1; o <= 8; o++) {
            double same, wrong = 1e9;
            if (!t[o].px)
                continue;
            same = mad(&t[o], &t[1]);
            for (int k = 2; k <= 8; k++) {
                orient(&turned, &t[1], k);
                if (mad(&t[o], &turned) < wrong)
                    wrong = mad(&t[o], &turned);
                thumb_free(&turned);
            }
            printf("# %s_%d: %.2f from _1, >= %.2f from any wrong turn of it\n",
                   sets[s], o, same, wrong);
            CHECK(same < 12.0);
            CHECK(wrong > 1.5 * same + 5.0);
        }
        for (int o = 1; o <= 8; o++)
            thumb_free(&t[o]);
    }
}

/* ---------------------------------------------------------------------- */
/* Geometry and formats                                                    */

/* A PNG from raw (unfiltered) rows with stored deflate blocks: any bit
 * depth and colour type, for formats the fixtures do not make. */
static uint32_t crc_of(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return ~c;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static size_t chunk(uint8_t *out, const char *type, const uint8_t *data,
                    size_t n)
{
    put_be32(out, (uint32_t)n);
    memcpy(out + 4, type, 4);
    if (n)
        memcpy(out + 8, data, n);
    put_be32(out + 8 + n, crc_of(out + 4, n + 4));
    return n + 12;
}

static uint8_t *raw_png(size_t *len, uint32_t w, uint32_t h, int depth,
                        int ctype, const uint8_t *rows, size_t rows_len,
                        const uint8_t *plte, size_t plte_len,
                        const uint8_t *trns, size_t trns_len)
{
    size_t zcap = rows_len + 5 * (rows_len / 65535 + 1) + 6, zn = 0, n = 8;
    uint8_t *z = malloc(zcap), *out = malloc(zcap + 1024 + plte_len + trns_len);
    uint8_t ihdr[13];
    uint32_t a = 1, b = 0;

    z[zn++] = 0x78;
    z[zn++] = 0x01;
    for (size_t i = 0; i < rows_len || i == 0;) {
        size_t k = rows_len - i < 65535 ? rows_len - i : 65535;
        z[zn++] = i + k >= rows_len;
        z[zn++] = (uint8_t)k; z[zn++] = (uint8_t)(k >> 8);
        z[zn++] = (uint8_t)~k; z[zn++] = (uint8_t)(~k >> 8);
        memcpy(z + zn, rows + i, k);
        zn += k;
        i += k;
        if (!k)
            break;
    }
    for (size_t i = 0; i < rows_len; i++) {
        a = (a + rows[i]) % 65521;
        b = (b + a) % 65521;
    }
    put_be32(z + zn, (b << 16) | a);
    zn += 4;
    memcpy(out, "\x89PNG\r\n\x1a\n", 8);
    put_be32(ihdr, w);
    put_be32(ihdr + 4, h);
    ihdr[8] = (uint8_t)depth; ihdr[9] = (uint8_t)ctype;
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    n += chunk(out + n, "IHDR", ihdr, 13);
    if (plte)
        n += chunk(out + n, "PLTE", plte, plte_len);
    if (trns)
        n += chunk(out + n, "tRNS", trns, trns_len);
    n += chunk(out + n, "IDAT", z, zn);
    n += chunk(out + n, "IEND", NULL, 0);
    free(z);
    *len = n;
    return out;
}

/* A small image is centred as it is: same pixels, not enlarged. */
static void test_small_centred_not_enlarged(void)
{
    uint8_t *png, *src;
    size_t len;
    int w = 0, h = 0, comp;
    thumb t;
    int x0, y0, x1, y1;

    CHECK_OK(fx_png_buffer(&png, &len, 100, 50, 3));
    src = stbi_load_from_memory(png, (int)len, &w, &h, &comp, 4);
    CHECK_OK(make(&t, png, len));
    free(png);
    if (!t.px || !src)
        return;
    opaque_box(&t, &x0, &y0, &x1, &y1);
    CHECK_EQ_INT(x0, 78);
    CHECK_EQ_INT(y0, 103);
    CHECK_EQ_INT(x1, 177);
    CHECK_EQ_INT(y1, 152);
    CHECK_EQ_INT(px(&t, 0, 0)[3], 0);
    CHECK_EQ_INT(px(&t, 255, 255)[3], 0);
    for (int y = 0; y < 50; y++)
        for (int x = 0; x < 100; x++)
            if (memcmp(px(&t, 78 + x, 103 + y), src + ((size_t)y * 100 + x) * 4, 4)) {
                printf("# pixel %d,%d differs from the source\n", x, y);
                mi_test_failed_now = 1;
                y = 50;
                break;
            }
    stbi_image_free(src);
    thumb_free(&t);
}

/* A one-pixel checkerboard shrunk 4x must come out grey, not in
 * black-and-white moiré (nearest neighbour would keep one phase). */
static void test_downscale_filtered(void)
{
    const uint32_t W = 1024, H = 512;
    size_t rows_len = (size_t)H * (1 + W * 3), len;
    uint8_t *rows = malloc(rows_len), *png;
    double sum = 0, sum2 = 0;
    int x0, y0, x1, y1, n = 0;
    thumb t;

    for (uint32_t y = 0; y < H; y++) {
        uint8_t *r = rows + (size_t)y * (1 + W * 3);
        r[0] = 0;
        for (uint32_t x = 0; x < W; x++)
            memset(r + 1 + x * 3, ((x + y) & 1) ? 255 : 0, 3);
    }
    png = raw_png(&len, W, H, 8, 2, rows, rows_len, NULL, 0, NULL, 0);
    free(rows);
    CHECK_OK(make(&t, png, len));
    free(png);
    if (!t.px)
        return;
    opaque_box(&t, &x0, &y0, &x1, &y1);
    CHECK_EQ_INT(x1 - x0 + 1, 256);
    CHECK_EQ_INT(y1 - y0 + 1, 128);
    for (int y = y0 + 2; y <= y1 - 2; y++)
        for (int x = x0 + 2; x <= x1 - 2; x++) {
            double v = px(&t, x, y)[0];
            sum += v;
            sum2 += v * v;
            n++;
        }
    sum /= n;
    printf("# checkerboard: mean %.1f, sd %.1f\n", sum, sqrt(sum2 / n - sum * sum));
    CHECK(sum > 100 && sum < 156);
    CHECK(sqrt(sum2 / n - sum * sum) < 10);
    thumb_free(&t);
}

/* PNG 16-bit, palette with transparency, grey+alpha; GIF; BMP. */
static void test_formats(void)
{
    static const uint8_t gif[] = {
        'G', 'I', 'F', '8', '9', 'a', 2, 0, 1, 0, 0x80, 0, 0,
        0xff, 0, 0, 0, 0, 0xff,                 /* red, blue */
        0x2c, 0, 0, 0, 0, 2, 0, 1, 0, 0,        /* image 2x1 */
        2, 2, 0x44, 0x0a, 0, 0x3b };            /* LZW: clear 0 1 end */
    uint8_t rows[1 + 4 * 8], *png;
    uint8_t plte[6] = { 0, 255, 0, 0, 0, 255 }, trns[1] = { 0 };
    size_t len;
    thumb t;

    /* 16-bit RGB, 4x1: (65535, 0, 0) */
    memset(rows, 0, sizeof(rows));
    for (int x = 0; x < 4; x++)
        rows[1 + x * 6] = rows[2 + x * 6] = 0xff;
    png = raw_png(&len, 4, 1, 16, 2, rows, 1 + 4 * 6, NULL, 0, NULL, 0);
    CHECK_OK(make(&t, png, len));
    free(png);
    if (t.px) {
        const uint8_t *p = px(&t, 126, 127);
        CHECK(p[0] == 255 && p[1] == 0 && p[2] == 0 && p[3] == 255);
        thumb_free(&t);
    }
    /* Palette 2x1: index 0 transparent green, index 1 blue. */
    rows[0] = 0;
    rows[1] = 0;
    rows[2] = 1;
    png = raw_png(&len, 2, 1, 8, 3, rows, 3, plte, 6, trns, 1);
    CHECK_OK(make(&t, png, len));
    free(png);
    if (t.px) {
        CHECK_EQ_INT(px(&t, 127, 127)[3], 0);
        CHECK(px(&t, 128, 127)[2] == 255 && px(&t, 128, 127)[3] == 255);
        thumb_free(&t);
    }
    /* GIF, first frame. */
    CHECK_OK(make(&t, gif, sizeof(gif)));
    if (t.px) {
        CHECK(px(&t, 127, 127)[0] == 255 && px(&t, 127, 127)[3] == 255);
        CHECK(px(&t, 128, 127)[2] == 255);
        thumb_free(&t);
    }
    /* BMP, 24-bit 1x1 green (bottom-up). */
    {
        uint8_t bmp[58] = { 'B', 'M', 58, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0,
                            40, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 24, 0 };
        bmp[54] = 0; bmp[55] = 255; bmp[56] = 0;
        CHECK_OK(make(&t, bmp, sizeof(bmp)));
        if (t.px) {
            const uint8_t *p = px(&t, 127, 127);
            CHECK(p[0] == 0 && p[1] == 255 && p[2] == 0 && p[3] == 255);
            thumb_free(&t);
        }
    }
}

/* CMYK (YCCK) and greyscale JPEGs. */
static void test_jpeg_cmyk_grey(void)
{
    uint8_t *cmyk = malloc(64 * 64 * 4), *jpg = NULL;
    unsigned long jlen = 0;
    tjhandle tj = tjInitCompress();
    thumb t;

    /* Adobe-style inverted CMYK: C=0 (no cyan ink: 255 - 255)... stored
     * as what libjpeg returns: 0 cyan channel value, 255 for the rest,
     * which reads as R=0, G=255, B=255. */
    for (int i = 0; i < 64 * 64; i++) {
        cmyk[i * 4] = 0;
        cmyk[i * 4 + 1] = 255;
        cmyk[i * 4 + 2] = 255;
        cmyk[i * 4 + 3] = 255;
    }
    CHECK(tj != NULL);
    CHECK_OK(tjCompress2(tj, cmyk, 64, 0, 64, TJPF_CMYK, &jpg, &jlen,
                         TJSAMP_444, 95, 0));
    CHECK_OK(make(&t, jpg, jlen));
    if (t.px) {
        const uint8_t *p = px(&t, 128, 128);
        printf("# CMYK centre: %d %d %d %d\n", p[0], p[1], p[2], p[3]);
        CHECK(p[0] < 16 && p[1] > 239 && p[2] > 239 && p[3] == 255);
        thumb_free(&t);
    }
    tjFree(jpg);
    tjDestroy(tj);
    free(cmyk);

    /* The fixtures' JPEGs are greyscale: R = G = B. */
    {
        uint8_t *g;
        size_t len;
        CHECK_OK(fx_jpeg_buffer(&g, &len, 300, 200, 1, NULL));
        CHECK_OK(make(&t, g, len));
        free(g);
        if (t.px) {
            const uint8_t *p = px(&t, 100, 128);
            CHECK(p[0] == p[1] && p[1] == p[2] && p[3] == 255);
            thumb_free(&t);
        }
    }
}

/* A w x h noisy RGB JPEG from TurboJPEG, progressive or not. */
static uint8_t *noise_jpeg(unsigned long *len, int w, int h, bool progressive)
{
    uint8_t *rgb = malloc((size_t)w * (size_t)h * 3), *jpg = NULL;
    tjhandle tj = tjInitCompress();
    uint32_t x = 12345;

    *len = 0;
    for (size_t i = 0; rgb && i < (size_t)w * (size_t)h * 3; i++) {
        x = x * 1103515245u + 12345u;
        rgb[i] = (uint8_t)(x >> 24);
    }
    if (!rgb || !tj ||
        tjCompress2(tj, rgb, w, 0, h, TJPF_RGB, &jpg, len, TJSAMP_420, 90,
                    progressive ? TJFLAG_PROGRESSIVE : 0) != 0)
        jpg = NULL;
    free(rgb);
    tjDestroy(tj);
    return jpg;
}

typedef struct waiter {
    mi_budget *b;
    atomic_int got;
} waiter;

static void *wait_for_budget(void *arg)
{
    waiter *w = arg;

    if (mi_budget_acquire(w->b, 1024) == MI_OK)
        atomic_store(&w->got, 1);
    return NULL;
}

/* Decodes reserve what they hold, give it back, and wait beyond the
 * budget; one that needs more than all of it is refused at once. */
static void test_budget(void)
{
    unsigned long blen = 0, plen = 0;
    uint8_t *base = noise_jpeg(&blen, 2000, 2000, false);
    uint8_t *prog = noise_jpeg(&plen, 2000, 2000, true);
    mi_budget *small = NULL, *big = NULL;
    mi_image im;
    mi_src sb = { base, blen, -1, blen }, sp = { prog, plen, -1, plen };

    CHECK(base && prog);
    CHECK_OK(mi_budget_new(&small, 3u << 20));
    CHECK_OK(mi_budget_new(&big, 64u << 20));
    if (!base || !prog || !small || !big)
        goto out;
    /* Baseline: a few rows at 1/8, within 3 MiB. */
    CHECK_OK(mi_decode_jpeg(&im, &sb, 1, MI_THUMB_SIZE,
                            MI_THUMB_MAX_PIXELS_DEFAULT, small));
    CHECK(im.px && im.full_w == 2000 && im.w <= 1024 && im.w >= 500);
    CHECK(mi_budget_used(small) == im.reserved && im.reserved > 0);
    mi_image_free(&im);
    CHECK(mi_budget_used(small) == 0);
    /* Progressive keeps every coefficient (about 12 MB here). */
    CHECK_EQ_INT(mi_decode_jpeg(&im, &sp, 1, MI_THUMB_SIZE,
                                MI_THUMB_MAX_PIXELS_DEFAULT,
                                small), MI_ETOOBIG);
    CHECK(im.px == NULL && mi_budget_used(small) == 0);
    CHECK_OK(mi_decode_jpeg(&im, &sp, 1, MI_THUMB_SIZE,
                            MI_THUMB_MAX_PIXELS_DEFAULT, big));
    CHECK(im.px && im.full_h == 2000);
    mi_image_free(&im);
    CHECK(mi_budget_used(big) == 0);

    /* A second taker waits until the first gives back. */
    {
        waiter w = { small, 0 };
        pthread_t t;
        struct timespec pause = { 0, 100 * 1000000L };

        CHECK_OK(mi_budget_acquire(small, 3u << 20));
        CHECK(pthread_create(&t, NULL, wait_for_budget, &w) == 0);
        nanosleep(&pause, NULL);
        CHECK(atomic_load(&w.got) == 0);
        mi_budget_release(small, 3u << 20);
        pthread_join(t, NULL);
        CHECK(atomic_load(&w.got) == 1);
        mi_budget_release(small, 1024);
        CHECK(mi_budget_used(small) == 0);
        CHECK(mi_budget_acquire(small, (3u << 20) + 1) == MI_ETOOBIG);
    }
out:
    mi_budget_free(small);
    mi_budget_free(big);
    tjFree(base);
    tjFree(prog);
}

static void test_unsupported_and_broken(void)
{
    static const uint8_t heic[] = { 0, 0, 0, 24, 'f', 't', 'y', 'p', 'h', 'e',
                                    'i', 'c', 0, 0, 0, 0, 'm', 'i', 'f', '1',
                                    'h', 'e', 'i', 'c' };
    static const uint8_t webp[] = { 'R', 'I', 'F', 'F', 40, 0, 0, 0, 'W', 'E',
                                    'B', 'P', 'V', 'P', '8', ' ' };
    uint8_t *png = (uint8_t *)"x";
    size_t len = 1;
    uint8_t *jpg;

    static const char svg[] = "<svg xmlns=\"http://www.w3.org/2000/svg\"/>";

    /* Headers only: mi-decode reads them and finds nothing. */
    CHECK_EQ_INT(mi_thumb_make_buffer(&png, &len, heic, sizeof(heic), NULL),
                 MI_EFORMAT);
    CHECK(png == NULL && len == 0);
    CHECK_EQ_INT(mi_thumb_make_buffer(&png, &len, webp, sizeof(webp), NULL),
                 MI_EFORMAT);
    /* A format we index but do not draw. */
    CHECK_EQ_INT(mi_thumb_make_buffer(&png, &len, svg, sizeof(svg) - 1, NULL),
                 MI_EUNSUPPORTED);
    CHECK_EQ_INT(mi_thumb_make_buffer(&png, &len, "hello world", 11, NULL),
                 MI_EFORMAT);
    CHECK_EQ_INT(mi_thumb_make_buffer(&png, &len, "", 0, NULL), MI_EFORMAT);
    CHECK_EQ_INT(mi_thumb_make_buffer(NULL, &len, "x", 1, NULL), MI_EINVAL);
    /* A JPEG cut after its header. */
    CHECK_OK(fx_jpeg_buffer(&jpg, &len, 64, 64, 0, NULL));
    CHECK_EQ_INT(mi_thumb_make_buffer(&png, &len, jpg, 40, NULL), MI_EFORMAT);
    free(jpg);
}

static void test_same_bytes(void)
{
    uint8_t *jpg, *a, *b;
    size_t len, alen, blen;
    fx_exif x = { 0 };

    x.orientation = 6;
    CHECK_OK(fx_jpeg_buffer(&jpg, &len, 1000, 700, 5, &x));
    CHECK_OK(mi_thumb_make_buffer(&a, &alen, jpg, len, NULL));
    CHECK_OK(mi_thumb_make_buffer(&b, &blen, jpg, len, NULL));
    CHECK(alen == blen && a && b && memcmp(a, b, alen) == 0);
    mi_free(a);
    mi_free(b);
    free(jpg);
}

/* The pixel cap of the options. */
static void test_pixel_cap(void)
{
    mi_thumb_options o = MI_THUMB_OPTIONS_INIT;
    uint8_t *jpg, *png;
    size_t len, plen;

    CHECK_OK(fx_jpeg_buffer(&jpg, &len, 400, 300, 0, NULL));
    o.max_pixels = 400 * 300 - 1;
    CHECK_EQ_INT(mi_thumb_make_buffer(&png, &plen, jpg, len, &o), MI_ETOOBIG);
    o.max_pixels = 400 * 300;
    CHECK_OK(mi_thumb_make_buffer(&png, &plen, jpg, len, &o));
    mi_free(png);
    o.version = 99;
    CHECK_EQ_INT(mi_thumb_make_buffer(&png, &plen, jpg, len, &o), MI_EINVAL);
    free(jpg);
}

/* ---------------------------------------------------------------------- */
/* Decompression bombs                                                     */

static uint8_t *png_bomb(size_t *len)
{
    /* IHDR 100000 x 100000 RGBA, then an IDAT of a few zero rows. */
    uint8_t rows[4096] = { 0 };
    return raw_png(len, 100000, 100000, 8, 6, rows, sizeof(rows), NULL, 0,
                   NULL, 0);
}

static uint8_t *jpeg_bomb(size_t *len, int w, int h)
{
    uint8_t *jpg, *p;
    size_t n;

    /* A real JPEG whose SOF0 is patched to claim w x h. */
    if (fx_jpeg_buffer(&jpg, &n, 16, 16, 0, NULL) != 0)
        return NULL;
    for (p = jpg; p + 9 < jpg + n; p++)
        if (p[0] == 0xff && p[1] == 0xc0) {
            p[5] = (uint8_t)(h >> 8); p[6] = (uint8_t)h;
            p[7] = (uint8_t)(w >> 8); p[8] = (uint8_t)w;
            break;
        }
    *len = n;
    return jpg;
}

static uint8_t *gif_bomb(size_t *len)
{
    static const uint8_t g[] = {
        'G', 'I', 'F', '8', '9', 'a', 0xff, 0xff, 0xff, 0xff, 0x80, 0, 0,
        0, 0, 0, 255, 255, 255,
        0x2c, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0,
        2, 2, 0x44, 0x01, 0, 0x3b };
    uint8_t *b = malloc(sizeof(g));
    memcpy(b, g, sizeof(g));
    *len = sizeof(g);
    return b;
}

/* A progressive 8x8 greyscale JPEG with `scans` DC scans. */
static uint8_t *scans_bomb(size_t *len, int scans)
{
    static const uint8_t head[] = {
        0xff, 0xd8,
        0xff, 0xdb, 0, 67, 0,                   /* DQT 0: all ones */
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        0xff, 0xc2, 0, 11, 8, 0, 8, 0, 8, 1, 1, 0x11, 0, /* SOF2 8x8 */
        0xff, 0xc4, 0, 20, 0x00,                /* DHT DC 0: one code */
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    static const uint8_t sos[] = { 0xff, 0xda, 0, 8, 1, 1, 0x00, 0, 0, 0x00,
                                   0x00 };        /* DC first, data 0 */
    size_t n = sizeof(head) + (size_t)scans * sizeof(sos) + 2;
    uint8_t *b = malloc(n), *p = b;

    memcpy(p, head, sizeof(head));
    p += sizeof(head);
    for (int i = 0; i < scans; i++) {
        memcpy(p, sos, sizeof(sos));
        p += sizeof(sos);
    }
    p[0] = 0xff;
    p[1] = 0xd9;
    *len = n;
    return b;
}

/* A zlib stream of n zero bytes: fixed Huffman codes, a literal 0, then
 * copies of 258 bytes at distance 1 (13 bits each): about 20 KB for
 * 800 MB, and no zlib needed. */
typedef struct bits {
    uint8_t *p;
    size_t n, cap;
    uint32_t acc;
    int nbits;
} bits;

static void put_bits(bits *b, uint32_t v, int n)   /* LSB first */
{
    b->acc |= v << b->nbits;
    b->nbits += n;
    while (b->nbits >= 8) {
        if (b->n < b->cap)
            b->p[b->n++] = (uint8_t)b->acc;
        b->acc >>= 8;
        b->nbits -= 8;
    }
}

static void put_huff(bits *b, uint32_t code, int n)  /* MSB first */
{
    for (int i = n - 1; i >= 0; i--)
        put_bits(b, (code >> i) & 1u, 1);
}

static uint8_t *zeros_zlib(size_t *len, uint64_t n)
{
    bits b = { NULL, 0, 0, 0, 0 };
    uint64_t left = n;
    uint32_t adler_b = (uint32_t)(n % 65521);

    /* Header, 13 bits a copy, up to 257 literals left over, the end. */
    b.cap = 2 + (size_t)(n / 258 * 13 / 8) + 258 + 16;
    b.p = malloc(b.cap);
    if (!b.p)
        return NULL;
    b.p[b.n++] = 0x78;
    b.p[b.n++] = 0x01;
    put_bits(&b, 1, 1);             /* BFINAL */
    put_bits(&b, 1, 2);             /* fixed Huffman */
    if (left) {
        put_huff(&b, 0x30, 8);      /* literal 0 */
        left--;
    }
    while (left >= 258) {
        put_huff(&b, 0xc5, 8);      /* length code 285: 258 */
        put_huff(&b, 0, 5);         /* distance code 0: 1 */
        left -= 258;
    }
    while (left--)
        put_huff(&b, 0x30, 8);
    put_huff(&b, 0, 7);             /* end of block */
    if (b.nbits)
        put_bits(&b, 0, 8 - b.nbits);
    if (b.n + 4 > b.cap) {
        free(b.p);
        return NULL;
    }
    /* Adler-32 of zeros: a stays 1, b adds it once a byte. */
    b.p[b.n++] = (uint8_t)(adler_b >> 8);
    b.p[b.n++] = (uint8_t)adler_b;
    b.p[b.n++] = 0;
    b.p[b.n++] = 1;
    *len = b.n;
    return b.p;
}

/* A real, complete, all-transparent w x h 16-bit RGBA PNG: the bomb that
 * took 1.57 GB of a server when it was decoded whole. */
static uint8_t *big_png16(size_t *len, uint32_t w, uint32_t h)
{
    size_t zn = 0, n = 8;
    uint8_t *z = zeros_zlib(&zn, (uint64_t)h * (1u + (uint64_t)w * 8u));
    uint8_t *out = z ? malloc(zn + 256) : NULL, ihdr[13];

    if (!out) {
        free(z);
        return NULL;
    }
    memcpy(out, "\x89PNG\r\n\x1a\n", 8);
    put_be32(ihdr, w);
    put_be32(ihdr + 4, h);
    ihdr[8] = 16; ihdr[9] = 6;
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    n += chunk(out + n, "IHDR", ihdr, 13);
    n += chunk(out + n, "IDAT", z, zn);
    n += chunk(out + n, "IEND", NULL, 0);
    free(z);
    *len = n;
    return out;
}

/* A field of /proc/self/status in KiB: "VmHWM" (peak RSS) or "VmPeak"
 * (peak address space: catches a huge malloc never touched). */
static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t n = strlen(field);
    long kb = -1;

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, field, n) == 0 && line[n] == ':' &&
            sscanf(line + n + 1, "%ld", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static long hwm_kb(void)
{
    return status_kb("VmHWM");
}

/* Run one bomb in a child: the status, the growth of its peak RSS and
 * its time (at most max_secs), sent back through a pipe. */
static void bomb_timed(const char *what, uint8_t *buf, size_t len,
                       mi_status want, double max_secs)
{
    struct { int status; long rss_kb, hwm_kb, vm_kb; double secs; } r = { 0, 0, 0, 0, 0 };
    int fds[2], wst = 0;
    pid_t pid;

    if (!buf || pipe(fds) != 0) {
        CHECK(0);
        free(buf);
        return;
    }
    pid = fork();
    if (pid == 0) {
        struct timespec a, b;
        uint8_t *png = NULL;
        size_t plen = 0;
        long before = hwm_kb(), vm_before = status_kb("VmPeak");
        alarm(10);
        clock_gettime(CLOCK_MONOTONIC, &a);
        r.status = mi_thumb_make_buffer(&png, &plen, buf, len, NULL);
        clock_gettime(CLOCK_MONOTONIC, &b);
        r.hwm_kb = hwm_kb();
        r.rss_kb = r.hwm_kb - before;
        r.vm_kb = status_kb("VmPeak") - vm_before;
        r.secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
        mi_free(png);
        if (write(fds[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
            _exit(2);
        _exit(0);
    }
    close(fds[1]);
    if (pid < 0 || read(fds[0], &r, sizeof(r)) != (ssize_t)sizeof(r)) {
        printf("# %s: the child died\n", what);
        mi_test_failed_now = 1;
    } else {
        printf("# %s: %s, peak RSS +%ld KiB (VmHWM %ld KiB), address space "
               "+%ld KiB, %.3f s\n", what, mi_strerror(r.status), r.rss_kb,
               r.hwm_kb, r.vm_kb, r.secs);
        CHECK_EQ_INT(r.status, want);
        CHECK(r.rss_kb < 32 * 1024);
        CHECK(r.vm_kb < 256 * 1024);
        CHECK(r.secs < max_secs);
    }
    close(fds[0]);
    if (pid > 0)
        waitpid(pid, &wst, 0);
    free(buf);
}

static void bomb(const char *what, uint8_t *buf, size_t len, mi_status want)
{
    bomb_timed(what, buf, len, want, 1.0);
}

static void test_bombs(void)
{
    size_t len = 0;
    uint8_t *b;

    b = png_bomb(&len);
    bomb("PNG 100000x100000", b, len, MI_ETOOBIG);
    /* A sequential JPEG is decoded at 1/8, row by row: over the cap in,
     * under it out, it gets its thumbnail in bounded memory.  Claimed
     * sides past what 1/8 brings under the cap are refused. */
    b = jpeg_bomb(&len, 30000, 20000);
    bomb_timed("JPEG 30000x20000 (600 MP) claimed, a little data", b, len,
               MI_OK, 8.0);
    {
        mi_thumb_options o = MI_THUMB_OPTIONS_INIT;
        uint8_t *png = NULL;
        size_t plen = 0;

        b = jpeg_bomb(&len, 30000, 20000);
        o.max_pixels = 30000u * 20000u / 64u - 1u;
        CHECK_EQ_INT(mi_thumb_make_buffer(&png, &plen, b, len, &o),
                     MI_ETOOBIG);
        mi_free(png);
        free(b);
    }
    b = gif_bomb(&len);
    bomb("GIF 65535x65535", b, len, MI_ETOOBIG);
    {
        /* Found by fuzz/fuzz-thumb: a 65525 x 1 GIF spent seconds in
         * stb_image_resize's filter setup (extreme ratio). */
        static const uint8_t g[] = {
            'G', 'I', 'F', '8', '9', 'a', 0xf5, 0xff, 1, 0, 0x80, 0, 0,
            0, 0xa3, 0xeb, 0, 0x5a, 0xa5, 0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0,
            2, 2, 0x64, 1, 0, 0x3b };
        b = malloc(sizeof(g));
        memcpy(b, g, sizeof(g));
        bomb("GIF 65525x1", b, sizeof(g), MI_OK);
    }
    {
        /* Found by fuzz/fuzz-thumb: an 8x8 PNG whose chunk header claims
         * 2 GiB made stb 2.27 allocate that before reading (caught by the
         * allocation limit in lib/stb-image.c). */
        static const uint8_t p[] = {
              0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d,
              0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x08,
              0x08, 0x02, 0x00, 0x00, 0x00, 0x00, 0x29, 0x4b, 0x00, 0x6d, 0x00, 0xdc,
              0xd3, 0x49, 0x44, 0x41, 0x54, 0x78, 0x01, 0x01, 0xc8, 0x00, 0x37, 0xff,
              0x00, 0x00, 0x00, 0xa3, 0xb5, 0x00, 0x10, 0x40, 0x00, 0x20, 0x60, 0x00,
              0x30, 0x80, 0x00, 0x40, 0xa0, 0x00, 0x50, 0xc0, 0x00, 0x60, 0xe0, 0x00,
              0x70, 0x00, 0x00, 0xff, 0x20, 0x10, 0x20, 0x20, 0x20, 0x40, 0x20, 0x30,
              0x60, 0x20, 0x40, 0x80, 0x20, 0x50, 0xa0, 0x20, 0x60, 0xc0, 0x20, 0x70,
              0xe0, 0x20, 0x80, 0x00, 0x00, 0x40, 0x20, 0x20, 0x40, 0x30, 0x40, 0x40,
              0x40, 0x60, 0x40, 0x50, 0x80, 0x40, 0x60, 0xa0, 0x40, 0x70, 0xc0, 0x40,
              0x80, 0xe0, 0x40, 0x90, 0x00, 0x00, 0x60, 0x30, 0x20, 0x60, 0x40, 0x40,
              0x60, 0x50, 0x60, 0x60, 0x60, 0x80, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
              0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
              0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
              0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
              0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
              0x70, 0x66, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
              0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
              0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
              0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x80, 0x60, 0x60,
              0x80, 0x70, 0x80, 0x80, 0x80, 0xa0, 0x80, 0x90, 0xc0, 0x80, 0x00, 0x00,
              0x00, 0x4b, 0x6d, 0x29, 0xdc, 0x00, 0x00, 0x00, 0xd3, 0x49, 0x44, 0x41,
              0x54, 0x78, 0x01, 0x01, 0xc8, 0x00, 0x37, 0xff, 0x00, 0x00, 0x00, 0xa3,
              0xb5, 0x00, 0x10, 0x40, 0x00, 0x20, 0x60, 0x00, 0x30, 0x80, 0x00, 0x40,
              0xa0, 0x47, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42,
              0x60, 0x82
        };
        b = malloc(sizeof(p));
        memcpy(b, p, sizeof(p));
        bomb("PNG 8x8 claiming a 2 GiB chunk", b, sizeof(p), MI_EFORMAT);
    }
    b = scans_bomb(&len, 600);
    bomb("progressive JPEG, 600 scans", b, len, MI_EFORMAT);
    /* ... and the same with few scans is a (grey) image. */
    b = scans_bomb(&len, 3);
    bomb("progressive JPEG, 3 scans", b, len, MI_OK);
    /* Progressive keeps every coefficient: its claimed size is capped. */
    b = scans_bomb(&len, 3);
    if (b) {
        for (uint8_t *q = b; q + 9 < b + len; q++)
            if (q[0] == 0xff && q[1] == 0xc2) {
                q[5] = q[7] = 0xff;     /* 65500 x 65500, libjpeg's most */
                q[6] = q[8] = 0xdc;
                break;
            }
        bomb("progressive JPEG claiming 65500x65500", b, len, MI_ETOOBIG);
    }
    /* Real images that are huge once decoded: row by row, they cost a
     * few rows (they took w x h x 4 bytes and more before). */
    b = big_png16(&len, 6000, 6000);
    bomb_timed("PNG 6000x6000 16-bit, complete", b, len, MI_OK, 8.0);
    if (fx_jpeg_buffer(&b, &len, 8000, 6000, 7, NULL) == 0)
        bomb_timed("JPEG 8000x6000, real data", b, len, MI_OK, 8.0);
    else
        CHECK(0);
}

/* ---------------------------------------------------------------------- */
/* The corpus: every file, broken ones included                            */

static int corpus_files, corpus_ok;

static void corpus_walk(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        char *p;
        struct stat st;
        if (de->d_name[0] == '.')
            continue;
        p = fx_path(dir, de->d_name);
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            corpus_walk(p);
        } else if (S_ISREG(st.st_mode)) {
            struct timespec a, b;
            uint8_t *png = NULL;
            size_t plen = 0;
            mi_status s;
            double secs;
            clock_gettime(CLOCK_MONOTONIC, &a);
            s = mi_thumb_make_file(&png, &plen, p, NULL);
            clock_gettime(CLOCK_MONOTONIC, &b);
            secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
            corpus_files++;
            corpus_ok += s == MI_OK;
            if (s != MI_OK || secs > 0.5)
                printf("# %s: %s, %.3f s\n", p, mi_strerror(s), secs);
            /* A hang guard, not a speed test (those are in bench/): a
             * HEIC here takes under a second alone, 10 s on a loaded
             * 2-core machine; the decoder's own deadline is 30 s. */
            CHECK(secs < 30.0);
            CHECK(s == MI_OK || s == MI_EUNSUPPORTED || s == MI_EFORMAT ||
                  s == MI_ETOOBIG);
            mi_free(png);
        }
        free(p);
    }
    closedir(d);
}

static void test_corpus_all(void)
{
    const char *root = fx_corpus();

    if (!root) {
        SKIP("MI_TEST_CORPUS not set");
        return;
    }
    corpus_walk(root);
    printf("# corpus: %d files, %d thumbnails\n", corpus_files, corpus_ok);
    CHECK(corpus_files >= 90);
    CHECK(corpus_ok >= 80);
}

/* ---------------------------------------------------------------------- */
/* The PNG writer                                                          */

/* A PNG decoded by libspng, which checks every chunk's CRC and the zlib
 * stream's Adler-32 (stb_image checks neither): NULL if it fails. */
static uint8_t *spng_rgba(const uint8_t *png, size_t len, int *w, int *h)
{
    spng_ctx *ctx = spng_ctx_new(0);
    struct spng_ihdr ihdr;
    uint8_t *out = NULL;
    size_t n;

    if (ctx && spng_set_png_buffer(ctx, png, len) == 0 &&
        spng_set_crc_action(ctx, SPNG_CRC_ERROR, SPNG_CRC_ERROR) == 0 &&
        spng_get_ihdr(ctx, &ihdr) == 0 &&
        spng_decoded_image_size(ctx, SPNG_FMT_RGBA8, &n) == 0 &&
        (out = malloc(n)) != NULL &&
        spng_decode_image(ctx, out, n, SPNG_FMT_RGBA8, 0) != 0) {
        free(out);
        out = NULL;
    }
    if (out) {
        *w = (int)ihdr.width;
        *h = (int)ihdr.height;
    }
    spng_ctx_free(ctx);
    return out;
}

/* Noise (stored blocks), flat colour (runs), a ramp, runs of every length
 * from 1 to 300 (across the writer's 8-byte steps and at the very end),
 * a smooth photo-like image with noise (every filter) and a thumbnail's
 * transparent canvas decode back, through two decoders, at odd sizes. */
static void test_png_writer(void)
{
    static const int sizes[][2] = { { 1, 1 }, { 3, 7 }, { 256, 256 }, { 300, 2 },
                                    { 67, 5 }, { 2, 300 } };

    for (size_t k = 0; k < MI_ARRAY_LEN(sizes); k++) {
        for (int kind = 0; kind < 6; kind++) {
            int w = sizes[k][0], h = sizes[k][1], dw = 0, dh = 0, comp;
            size_t n = (size_t)w * h * 4, len, i = 0;
            uint8_t *in = malloc(n), *png, *out, *out2;
            uint32_t seed = 12345;

            while (i < n) {
                seed = seed * 1103515245u + 12345u;
                if (kind == 3) {
                    /* A run of 1..300 of one byte. */
                    size_t run = 1 + (seed >> 8) % 300;
                    for (; run > 0 && i < n; run--, i++)
                        in[i] = (uint8_t)(seed >> 24);
                    continue;
                }
                if (kind == 5) {
                    /* A thumbnail's canvas: transparent margins (rows of
                     * zeros, checksummed without reading) around a noisy
                     * middle third. */
                    size_t px = i / 4, x = px % (size_t)w, y = px / (size_t)w;
                    bool mid = x >= (size_t)w / 3 && x < 2 * (size_t)w / 3 + 1 &&
                               y >= (size_t)h / 3 && y < 2 * (size_t)h / 3 + 1;
                    in[i] = mid ? (uint8_t)((seed >> 16) | (i % 4 == 3)) : 0;
                    i++;
                    continue;
                }
                if (kind == 4) {
                    size_t px = i / 4, x = px % (size_t)w, y = px / (size_t)w;
                    in[i] = i % 4 == 3 ? 255
                          : (uint8_t)(x * (i % 4 + 1) + y * 2 + (seed >> 29));
                } else {
                    in[i] = kind == 0 ? (uint8_t)(seed >> 16)
                          : kind == 1 ? 7 : (uint8_t)(i / 4 % 251);
                }
                i++;
            }
            CHECK_OK(mi_png_encode_rgba(&png, &len, in, w, h, (size_t)w * 4));
            out = stbi_load_from_memory(png, (int)len, &dw, &dh, &comp, 4);
            CHECK(out && dw == w && dh == h && memcmp(out, in, n) == 0);
            out2 = spng_rgba(png, len, &dw, &dh);
            CHECK(out2 && dw == w && dh == h && memcmp(out2, in, n) == 0);
            if (!out || !out2)
                printf("# png writer: %d x %d, kind %d\n", w, h, kind);
            stbi_image_free(out);
            free(out2);
            free(png);
            free(in);
        }
    }
}

int main(void)
{
    RUN(test_fixture_orientations);
    RUN(test_corpus_orientations);
    RUN(test_small_centred_not_enlarged);
    RUN(test_downscale_filtered);
    RUN(test_formats);
    RUN(test_jpeg_cmyk_grey);
    RUN(test_unsupported_and_broken);
    RUN(test_same_bytes);
    RUN(test_pixel_cap);
    RUN(test_bombs);
    RUN(test_budget);
    RUN(test_corpus_all);
    RUN(test_png_writer);
    return mi_test_done();
}
