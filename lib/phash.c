/*
 * phash.c - perceptual hashes: 64 bits that stay nearly the same when a
 * photo is re-encoded, resized, lightly cropped or converted, so that the
 * Hamming distance between two hashes tells copies from distinct photos.
 *
 * The hash is the classic DCT pHash, taken from the pixels the thumbnail
 * pipeline already has: the image upright (its orientation applied) and
 * fitted into 256 x 256.  Those pixels are
 *  1. cropped to their visible part (alpha > 0; the thumbnail's canvas
 *     around the image is transparent), composited over white (as a
 *     browser shows a transparent image on a page) and turned grey
 *     (Rec. 601 luma);
 *  2. area-averaged down to 32 x 32, the aspect ratio dropped (a copy
 *     cropped by a few per cent keeps nearly the same grid);
 *  3. transformed by a 2-D DCT-II, of which the 8 x 8 lowest frequencies
 *     are kept, less the DC term (the mean brightness): 63 coefficients;
 *  4. bit i (row-major over the 8 x 8 block, the DC's bit 0 always 0) is
 *     set when coefficient i is above the median of the 63.
 * An image with no visible pixels, or one so flat that its coefficients
 * are noise, has no hash: all such images would otherwise look alike.
 *
 * The same function hashes the pixels of a thumbnail PNG made before the
 * catalog kept hashes (mi_phash_png): the PNG holds exactly the pixels the
 * pipeline hashes, centred on a transparent canvas, so both give the same
 * hash.
 */
#include "config.h"
#include "mi-private.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GRID 32          /* the grey image the DCT reads */
#define LOW 8            /* the low frequencies kept, per axis */
/* Below this largest |AC coefficient| (grey levels, orthonormal DCT) the
 * image is flat: a uniform colour, or nearly. */
#define FLAT_MAX 2.0
/* A thumbnail PNG to hash: at most this many pixels a side. */
#define PNG_MAX_SIDE 1024

/* Area-average n source samples (`in`, `step` apart) to GRID outputs:
 * output i covers source [i n / GRID, (i + 1) n / GRID). */
static void area_1d(double *out, size_t ostep, const double *in, size_t step,
                    int n)
{
    double scale = (double)n / GRID;

    for (int i = 0; i < GRID; i++) {
        double lo = i * scale, hi = (i + 1) * scale, sum = 0;
        int a = (int)lo, b = (int)ceil(hi);

        if (b > n)
            b = n;
        for (int k = a; k < b; k++) {
            double l = k > lo ? k : lo, h = k + 1 < hi ? k + 1 : hi;
            if (h > l)
                sum += in[(size_t)k * step] * (h - l);
        }
        out[(size_t)i * ostep] = sum / scale;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

mi_status mi_phash_rgba(uint64_t *out, bool *has, const uint8_t *px, int w,
                        int h, size_t stride)
{
    int x0 = w, y0 = h, x1 = -1, y1 = -1, cw, ch;
    double *line = NULL, *rows = NULL, grid[GRID * GRID];
    double cosv[LOW][GRID], tmp[LOW][GRID], coef[LOW * LOW], sorted[LOW * LOW - 1];
    double median, amax = 0;
    uint64_t bits = 0;

    *out = 0;
    *has = false;
    if (!px || w < 1 || h < 1 || w > 65535 || h > 65535)
        return MI_EINVAL;
    /* The visible part. */
    for (int y = 0; y < h; y++) {
        const uint8_t *row = px + (size_t)y * stride;
        for (int x = 0; x < w; x++) {
            if (row[(size_t)x * 4 + 3] == 0)
                continue;
            if (x < x0)
                x0 = x;
            if (x > x1)
                x1 = x;
            if (y < y0)
                y0 = y;
            if (y > y1)
                y1 = y;
        }
    }
    if (x1 < 0)
        return MI_OK;
    cw = x1 - x0 + 1;
    ch = y1 - y0 + 1;
    /* One grey row at a time, averaged to GRID columns as it comes. */
    line = malloc((size_t)cw * sizeof *line);
    rows = malloc((size_t)ch * GRID * sizeof *rows);
    if (!line || !rows) {
        free(line);
        free(rows);
        return MI_ENOMEM;
    }
    for (int y = 0; y < ch; y++) {
        const uint8_t *p = px + (size_t)(y0 + y) * stride + (size_t)x0 * 4;
        for (int x = 0; x < cw; x++, p += 4) {
            double a = p[3] / 255.0, c[3];
            for (int k = 0; k < 3; k++)
                c[k] = p[k] * a + 255.0 * (1 - a);
            line[x] = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
        }
        area_1d(rows + (size_t)y * GRID, 1, line, 1, cw);
    }
    /* Then the columns to GRID rows. */
    for (int x = 0; x < GRID; x++)
        area_1d(grid + x, GRID, rows + x, GRID, ch);
    free(line);
    free(rows);

    /* The 8 x 8 lowest frequencies of an orthonormal DCT-II. */
    for (int u = 0; u < LOW; u++)
        for (int x = 0; x < GRID; x++)
            cosv[u][x] = cos(M_PI * (2 * x + 1) * u / (2.0 * GRID)) *
                         (u ? sqrt(2.0 / GRID) : sqrt(1.0 / GRID));
    for (int u = 0; u < LOW; u++)
        for (int y = 0; y < GRID; y++) {
            double s = 0;
            for (int x = 0; x < GRID; x++)
                s += cosv[u][x] * grid[y * GRID + x];
            tmp[u][y] = s;
        }
    for (int v = 0; v < LOW; v++)
        for (int u = 0; u < LOW; u++) {
            double s = 0;
            for (int y = 0; y < GRID; y++)
                s += cosv[v][y] * tmp[u][y];
            coef[v * LOW + u] = s;
        }
    for (int i = 1; i < LOW * LOW; i++) {
        sorted[i - 1] = coef[i];
        if (fabs(coef[i]) > amax)
            amax = fabs(coef[i]);
    }
    if (amax < FLAT_MAX)
        return MI_OK;
    qsort(sorted, LOW * LOW - 1, sizeof sorted[0], cmp_double);
    median = sorted[(LOW * LOW - 1) / 2];
    for (int i = 1; i < LOW * LOW; i++)
        if (coef[i] > median)
            bits |= (uint64_t)1 << i;
    *out = bits;
    *has = true;
    return MI_OK;
}

mi_status mi_phash_png(uint64_t *out, bool *has, const void *png, size_t len)
{
    uint8_t *px;
    mi_status s;
    int w, h;

    *out = 0;
    *has = false;
    if (!mi_stbi_info(png, len, &w, &h))
        return MI_EFORMAT;
    if (w < 1 || h < 1 || w > PNG_MAX_SIDE || h > PNG_MAX_SIDE)
        return MI_ETOOBIG;
    px = mi_stbi_load_rgba(png, len, &w, &h);
    if (!px)
        return MI_EFORMAT;
    s = mi_phash_rgba(out, has, px, w, h, (size_t)w * 4);
    mi_stbi_free(px);
    return s;
}

/* ---------------------------------------------------------------------- */
/* Filling the catalog's gaps from the thumbnails                          */

#define FILL_BATCH 500           /* hashes per write transaction */
#define FILL_MAX 10000000u       /* contents looked at in one fill */
#define THUMB_FILE_MAX (4u << 20) /* bytes of a thumbnail PNG read */

/* The images with a thumbnail and no row in `phashes`. */
typedef struct todo {
    uint8_t (*v)[MI_HASH_SIZE];
    size_t n, cap;
} todo;

static mi_status add_todo(sqlite3_stmt *st, void *payload)
{
    todo *t = payload;
    mi_status s;

    if (sqlite3_column_bytes(st, 0) != MI_HASH_SIZE)
        return MI_OK;
    s = mi_grow((void **)&t->v, &t->cap, t->n, sizeof *t->v, 256, FILL_MAX);
    if (s == MI_OK)
        memcpy(t->v[t->n++], sqlite3_column_blob(st, 0), MI_HASH_SIZE);
    return s;
}

static mi_status missing(mi_index *idx, todo *t)
{
    memset(t, 0, sizeof *t);
    return mi_index_each_row(idx,
                             "SELECT DISTINCT hash FROM files WHERE kind = 1 "
                             "AND thumb = 1 AND hash NOT IN "
                             "(SELECT hash FROM phashes)",
                             "perceptual hashes to make", add_todo, t);
}

/* The hash of DIR/.thumbnails/<hex>.png: MI_OK (ph->tried), MI_ENOTFOUND
 * when the file is gone (made again, and hashed, by the next scan). */
static mi_status hash_thumb_file(mi_phash *ph, int dirfd,
                                 const uint8_t hash[MI_HASH_SIZE])
{
    char name[MI_HASH_HEX_LEN + sizeof(".png")];
    uint8_t *buf = NULL;
    struct stat st;
    mi_status s;
    ssize_t got;
    int fd;

    memset(ph, 0, sizeof *ph);
    mi_hash_to_hex(name, hash);
    memcpy(name + MI_HASH_HEX_LEN, ".png", sizeof(".png"));
    fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? MI_ENOTFOUND : mi_status_from_errno(errno);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        (uint64_t)st.st_size > THUMB_FILE_MAX) {
        close(fd);
        ph->tried = true;         /* not a thumbnail we made: no hash */
        return MI_OK;
    }
    buf = malloc((size_t)st.st_size);
    if (!buf) {
        close(fd);
        return MI_ENOMEM;
    }
    got = pread(fd, buf, (size_t)st.st_size, 0);
    close(fd);
    if (got != (ssize_t)st.st_size) {
        free(buf);
        return MI_EIO;
    }
    s = mi_phash_png(&ph->bits, &ph->has, buf, (size_t)got);
    free(buf);
    if (s == MI_EFORMAT || s == MI_ETOOBIG)
        s = MI_OK;                /* recorded as none */
    if (s == MI_OK)
        ph->tried = true;
    return s;
}

/* Drop the rows of contents neither indexed nor in the trash. */
static mi_status sweep(mi_conn *w, char *err, size_t errlen)
{
    int rc = sqlite3_exec(w->db,
                          "DELETE FROM phashes WHERE hash NOT IN "
                          "(SELECT hash FROM files) AND hash NOT IN "
                          "(SELECT hash FROM trash)",
                          NULL, NULL, NULL);

    if (rc != SQLITE_OK) {
        mi_bufprintf(err, errlen, "catalog: sweeping perceptual hashes: %s",
                     sqlite3_errmsg(w->db));
        return MI_EDB;
    }
    return MI_OK;
}

mi_status mi_phash_fill(mi_index *idx, uint64_t *filled)
{
    todo t;
    size_t i = 0;
    char err[256] = "";
    int dirfd;
    mi_status s;

    if (filled)
        *filled = 0;
    if (!idx)
        return MI_EINVAL;
    dirfd = mi_index_thumbs_fd(idx);
    s = missing(idx, &t);
    /* One transaction per batch, the first also sweeping. */
    do {
        mi_conn *w;

        if (s != MI_OK)
            break;
        w = mi_index_writer_lock(idx);
        if (!w) {
            s = mi_index_writer_error(idx, err, sizeof err);
            break;
        }
        s = mi_catalog_begin(w, err, sizeof err);
        if (s == MI_OK && i == 0)
            s = sweep(w, err, sizeof err);
        for (size_t end = i + FILL_BATCH; s == MI_OK && i < t.n && i < end; i++) {
            mi_phash ph;
            mi_status hs = dirfd < 0 ? MI_ENOTFOUND
                                     : hash_thumb_file(&ph, dirfd, t.v[i]);
            if (hs != MI_OK)
                continue;         /* gone, or a transient failure */
            s = mi_catalog_set_phash(w, t.v[i], &ph, err, sizeof err);
            if (s == MI_OK && filled)
                (*filled)++;
        }
        if (s == MI_OK)
            s = mi_index_writer_commit(idx, false, err, sizeof err);
        else
            mi_index_writer_abort(idx);
    } while (s == MI_OK && i < t.n);
    free(t.v);
    if (s != MI_OK && err[0])
        return mi_index_fail(idx, s, "%s", err);
    return s;
}
