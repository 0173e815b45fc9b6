/*
 * stb-image.c - the one place stb_image is compiled (STYLE.md, SECURITY.md).
 *
 * Static, PNG/GIF/BMP only, from memory only, no failure strings (a
 * global), a tight STBI_MAX_DIMENSIONS and an STBI_ASSERT that never
 * aborts.  The callers check the pixel count with mi_stbi_info() before
 * decoding; the GIF-animation and flip functions are never called.
 */
#include "config.h"
#include "mi-private.h"

#include <limits.h>
#include <stdlib.h>

/*
 * Every allocation stb_image makes goes through these, against a limit the
 * calling thread set for the decode at hand: stb 2.27 grows its IDAT buffer
 * to the size a chunk header claims before reading it (the 1 GB IDAT cap
 * came in 2.28), so a 300-byte PNG asked for 2 GiB (found by
 * fuzz/fuzz-thumb).  An image that really holds its data never needs more
 * than its pixels at 16 bits (w * h * 8), twice its file size, and a
 * little.
 */
static _Thread_local size_t stbi_cap = 4u << 20;

static void *stbi_cap_malloc(size_t n)
{
    return n <= stbi_cap ? malloc(n) : NULL;
}

static void *stbi_cap_realloc(void *p, size_t n)
{
    return n <= stbi_cap ? realloc(p, n) : NULL;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_PNG
#define STBI_ONLY_GIF
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_NO_FAILURE_STRINGS
/* JPEG's own limit; the pixel cap (100 MP by default) is the real one. */
#define STBI_MAX_DIMENSIONS 65535
#define STBI_ASSERT(x) ((void)0)
#define STBI_MALLOC(n) stbi_cap_malloc(n)
#define STBI_REALLOC(p, n) stbi_cap_realloc(p, n)
#define STBI_FREE(p) free(p)
#include <stb/stb_image.h>
/* No "pop": some of these warnings are issued at the end of the file. */

bool mi_stbi_info(const void *buf, size_t len, int *w, int *h)
{
    int comp;

    *w = *h = 0;
    if (!buf || len == 0 || len > INT_MAX)
        return false;
    stbi_cap = 4u << 20;    /* headers only */
    return stbi_info_from_memory(buf, (int)len, w, h, &comp) == 1 &&
           *w > 0 && *h > 0;
}

uint8_t *mi_stbi_load_rgba(const void *buf, size_t len, int *w, int *h)
{
    int comp, iw = 0, ih = 0;
    uint8_t *px;

    *w = *h = 0;
    if (!buf || len == 0 || len > INT_MAX ||
        !stbi_info_from_memory(buf, (int)len, &iw, &ih, &comp) || iw <= 0 ||
        ih <= 0)
        return NULL;
    /* Sides are at most STBI_MAX_DIMENSIONS (2^16): no overflow. */
    stbi_cap = (size_t)iw * (size_t)ih * 8 + 2 * len + (1u << 20);
    px = stbi_load_from_memory(buf, (int)len, w, h, &comp, 4);
    stbi_cap = 4u << 20;
    return px;
}

void mi_stbi_free(void *p)
{
    stbi_image_free(p);
}
