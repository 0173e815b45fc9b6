/*
 * job.c - inside mi-decode: reading the file, and making the answer
 * (shared by main.c and the fuzz harness).
 */
#include "decode.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mediaindex.h"
#include "mi-private.h"     /* mi_stbir_resize_rgba (stb-resize.c) */

/* ---------------------------------------------------------------------- */
/* Files and answers                                                      */

long dfile_pread(const dfile *f, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = pread(f->fd, (uint8_t *)buf + got, n - got,
                          (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (long)got;
}

long dfile_read(dfile *f, void *buf, size_t n)
{
    long r = dfile_pread(f, buf, n, f->pos);

    if (r > 0)
        f->pos += (uint64_t)r;
    return r;
}

int64_t dfile_seek(dfile *f, int64_t off, int whence)
{
    int64_t base = whence == SEEK_CUR ? (int64_t)f->pos
                 : whence == SEEK_END ? (int64_t)f->size : 0;

    if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END)
        return -1;
    if ((off < 0 && -off > base) || (off > 0 && off > (int64_t)f->size - base))
        return -1;
    f->pos = (uint64_t)(base + off);
    return base + off;
}

const uint8_t *dfile_map(dfile *f)
{
    void *p;

    if (f->map)
        return f->map;
    if (f->size == 0 || f->size > SIZE_MAX)
        return NULL;
    /* Writable but private: some decoders take a non-const buffer. */
    p = mmap(NULL, (size_t)f->size, PROT_READ | PROT_WRITE, MAP_PRIVATE,
             f->fd, 0);
    if (p == MAP_FAILED)
        return NULL;
    f->map = p;
    return f->map;
}

int djob_fail(djob *j, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(j->res->reason, sizeof j->res->reason, fmt, ap);
    va_end(ap);
    j->res->status = status;
    return status;
}

void dtext(char *out, size_t n, const char *in)
{
    size_t k = 0;

    if (!in)
        in = "";
    while (*in == ' ')
        in++;
    for (; *in && k + 1 < n; in++)
        out[k++] = (*in >= 0x20 && *in < 0x7f) ? *in : '?';
    while (k > 0 && out[k - 1] == ' ')
        k--;
    out[k] = '\0';
}

/* Average fx x fy blocks of w x h pixels (RGB or RGBA) into ow x oh RGBA,
 * colour weighted by alpha; the blocks at the right and bottom edges may
 * be partial. */
static void box_shrink(uint8_t *out, int ow, int oh, const uint8_t *px,
                       int w, int h, size_t stride, int channels, int fx,
                       int fy)
{
    for (int oy = 0; oy < oh; oy++) {
        for (int ox = 0; ox < ow; ox++) {
            /* 64 bits: a block may hold up to 2^32 pixels. */
            uint64_t sum[3] = { 0, 0, 0 }, alpha = 0, cnt = 0;
            uint8_t *o = out + ((size_t)oy * (size_t)ow + (size_t)ox) * 4;
            for (int y = oy * fy; y < oy * fy + fy && y < h; y++) {
                const uint8_t *p = px + (size_t)y * stride +
                                   (size_t)ox * (size_t)fx * (size_t)channels;
                for (int x = ox * fx; x < ox * fx + fx && x < w; x++) {
                    unsigned a = channels == 4 ? p[3] : 255;
                    sum[0] += (uint64_t)p[0] * a;
                    sum[1] += (uint64_t)p[1] * a;
                    sum[2] += (uint64_t)p[2] * a;
                    alpha += a;
                    p += channels;
                    cnt++;
                }
            }
            for (int c = 0; c < 3; c++)
                o[c] = alpha ? (uint8_t)((sum[c] + alpha / 2) / alpha) : 0;
            o[3] = (uint8_t)((alpha + cnt / 2) / cnt);
        }
    }
}

int djob_pixels(djob *j, const uint8_t *px, int w, int h, size_t stride,
                int channels)
{
    int lim = 2 * (int)j->req->box, fx, fy, tw, th, ow, oh;
    uint8_t *mid, *out;

    if (w <= 0 || h <= 0 || lim < 1)
        return djob_fail(j, MI_EFORMAT, "the image has no pixels");
    /* The answer's size: the long side min(lim, its own), the other in
     * proportion, rounded as the library rounds its own fits. */
    if (w >= h) {
        tw = w < lim ? w : lim;
        th = (int)(((int64_t)h * tw + w / 2) / w);
    } else {
        th = h < lim ? h : lim;
        tw = (int)(((int64_t)w * th + h / 2) / h);
    }
    /* Never more than the image as stored, which the library checks the
     * pixels against: pixels larger than it (a raw file's preview larger
     * than its sensor, a frame larger than its stream says) are fitted
     * into it. */
    if (j->res->full_w && j->res->full_h &&
        ((uint32_t)tw > j->res->full_w || (uint32_t)th > j->res->full_h)) {
        int64_t fw = j->res->full_w, fh = j->res->full_h;
        if ((int64_t)tw * fh > (int64_t)th * fw) {
            th = (int)((int64_t)th * fw / tw);
            tw = (int)fw;
        } else {
            tw = (int)((int64_t)tw * fh / th);
            th = (int)fh;
        }
    }
    if (tw < 1)
        tw = 1;
    if (th < 1)
        th = 1;
    /* Whole factors that still leave at least tw x th: under twice the
     * answer's sides, so the resample below works at a ratio under 2 in
     * each direction and the intermediate is under 4 answers.  (Computed,
     * not searched: with tw = 1 every factor leaves at least 1, and a
     * search found by fuzz/fuzz-proto never ended.) */
    fx = w / tw;
    fy = h / th;
    ow = (w + fx - 1) / fx;
    oh = (h + fy - 1) / fy;
    mid = malloc((size_t)ow * (size_t)oh * 4);
    if (!mid)
        return djob_fail(j, MI_ENOMEM, "out of memory for the pixels");
    box_shrink(mid, ow, oh, px, w, h, stride, channels, fx, fy);
    if (ow == tw && oh == th) {
        out = mid;
    } else {
        out = malloc((size_t)tw * (size_t)th * 4);
        if (!out || !mi_stbir_resize_rgba(mid, ow, oh, ow * 4, out, tw, th,
                                          tw * 4, channels == 4)) {
            free(out);
            free(mid);
            return djob_fail(j, MI_ENOMEM, "out of memory for the pixels");
        }
        free(mid);
    }
    free(j->px);
    j->px = out;
    j->res->w = (uint32_t)tw;
    j->res->h = (uint32_t)th;
    if (channels == 4)
        j->res->flags |= MI_DRES_ALPHA;
    return MI_OK;
}
