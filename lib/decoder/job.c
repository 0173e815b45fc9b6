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

int djob_pixels(djob *j, const uint8_t *px, int w, int h, size_t stride,
                int channels)
{
    int lim = 2 * (int)j->req->box, f = 1, ow, oh;
    uint8_t *out;

    if (w <= 0 || h <= 0)
        return djob_fail(j, MI_EFORMAT, "the image has no pixels");
    while ((w + f - 1) / f > lim || (h + f - 1) / f > lim)
        f++;
    ow = (w + f - 1) / f;
    oh = (h + f - 1) / f;
    out = malloc((size_t)ow * (size_t)oh * 4);
    if (!out)
        return djob_fail(j, MI_ENOMEM, "out of memory for the pixels");
    for (int oy = 0; oy < oh; oy++) {
        for (int ox = 0; ox < ow; ox++) {
            unsigned sum[4] = { 0, 0, 0, 0 }, cnt = 0;
            for (int y = oy * f; y < oy * f + f && y < h; y++) {
                const uint8_t *p = px + (size_t)y * stride +
                                   (size_t)ox * (size_t)f * (size_t)channels;
                for (int x = ox * f; x < ox * f + f && x < w; x++) {
                    sum[0] += p[0];
                    sum[1] += p[1];
                    sum[2] += p[2];
                    sum[3] += channels == 4 ? p[3] : 255;
                    p += channels;
                    cnt++;
                }
            }
            for (int c = 0; c < 4; c++)
                out[((size_t)oy * (size_t)ow + (size_t)ox) * 4 + (size_t)c] =
                    (uint8_t)((sum[c] + cnt / 2) / cnt);
        }
    }
    free(j->px);
    j->px = out;
    j->res->w = (uint32_t)ow;
    j->res->h = (uint32_t)oh;
    if (channels == 4)
        j->res->flags |= MI_DRES_ALPHA;
    return MI_OK;
}

