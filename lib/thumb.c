/*
 * thumb.c - thumbnails: decode -> resize -> orient -> PNG, written atomically.
 *
 * The pipeline, for an image of W x H pixels as displayed (after EXIF
 * orientation):
 *  1. decode_any() picks the decoder from the magic bytes (the one place to
 *     add HEIC or video frames later).  JPEG goes through libjpeg-turbo with
 *     DCT scaling: decoded directly at 1/8, 1/4 or 1/2 size when that still
 *     covers the target, so a 12 MP photo costs a 190 KP decode.  PNG, GIF
 *     (first frame) and BMP go through stb_image, after stbi_info has
 *     checked the pixel count against the cap.
 *  2. The decoded pixels are resized (filtered, never enlarged) to the size
 *     that, once oriented, fits 256 x 256 with the aspect ratio kept.
 *  3. The EXIF orientation is applied while copying into the centre of a
 *     transparent 256 x 256 canvas: the rotation costs one pass over the
 *     small image, never the big one.
 *  4. png.c encodes it.
 * Every step is deterministic, so the same input gives the same bytes.
 *
 * Files are DIR/.thumbnails/<sha256>.png, written to a temp name that
 * starts with ".tmp-" and renamed into place: a reader sees a whole PNG or
 * nothing.  Temp files of a process that died are removed at open and by
 * scans.  No fsync: a thumbnail can always be made again, and a reader
 * checks the PNG's head and tail (thumb_valid) before trusting a file.
 */
#include "config.h"
#include "mi-private.h"
#include "decoder-proto.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#define T MI_THUMB_SIZE
#define LARGE MI_THUMB_LARGE_SIZE
#define LARGE_QUALITY 82
/* What the pixels a scan decodes for a thumbnail must cover.  Covering
 * the large thumbnail too would make both from one decode, but it doubles
 * the scan's time on phone JPEGs (the DCT at 1/4 instead of 1/8: 60 12 MP
 * photos, 1.10 s against 2.29 s, bench in the issue 10 note), for grid
 * images most of which nobody opens on a HiDPI screen: those are made on
 * request, and by scans only when the decode covers them anyway (mi-decode
 * answers with twice the box: video posters, HEIC without a small
 * embedded thumbnail, WebP, TIFF). */
#define DECODE_BOX T
#define MAX_FILE_BYTES (512u * 1024u * 1024u)
#define NAME_LEN (MI_HASH_HEX_LEN + sizeof(".png"))
#define PREVIEW_NAME_LEN (MI_HASH_HEX_LEN + sizeof("-preview.jpg"))
#define LARGE_SUFFIX "-512.jpg"

/* ---------------------------------------------------------------------- */
/* Geometry                                                                */

/* The size that W x H (as displayed) takes inside box x box: kept when
 * it fits, else scaled down so that its longer side is box. */
static void fit(int W, int H, int box, int *tw, int *th)
{
    if (W <= box && H <= box) {
        *tw = W;
        *th = H;
    } else if (W >= H) {
        *tw = box;
        *th = (int)(((int64_t)H * box * 2 + W) / ((int64_t)W * 2));
    } else {
        *th = box;
        *tw = (int)(((int64_t)W * box * 2 + H) / ((int64_t)H * 2));
    }
    if (*tw < 1)
        *tw = 1;
    if (*th < 1)
        *th = 1;
}

/* The target of the resize for an image stored w x h: the fit of its
 * displayed size, turned back to the stored orientation. */
static void target(int w, int h, int orientation, int box, int *rw, int *rh)
{
    bool turned = orientation >= 5 && orientation <= 8;
    int tw, th;

    fit(turned ? h : w, turned ? w : h, box, &tw, &th);
    *rw = turned ? th : tw;
    *rh = turned ? tw : th;
}

/* ---------------------------------------------------------------------- */
/* Decoders                                                                */

typedef enum codec {
    CODEC_NONE = 0,      /* a type we do not thumbnail (yet) */
    CODEC_BROKEN,        /* should be an image we decode, is not */
    CODEC_JPEG,          /* decode-jpeg.c */
    CODEC_PNG,           /* decode-png.c */
    CODEC_STB,           /* GIF, BMP */
    CODEC_HELPER,        /* HEIF, WebP, TIFF, raw, video: mi-decode */
} codec;

long mi_src_pread(const mi_src *s, void *out, size_t n, uint64_t off)
{
    if (s->fd < 0) {
        if (off >= s->len)
            return 0;
        if (n > s->len - off)
            n = (size_t)(s->len - off);
        memcpy(out, s->buf + off, n);
        return (long)n;
    }
    for (;;) {
        ssize_t r = pread(s->fd, out, n, (off_t)off);
        if (r >= 0)
            return (long)r;
        if (errno != EINTR)
            return -1;
    }
}

void mi_image_free(mi_image *im)
{
    free(im->px);
    im->px = NULL;
    mi_budget_release(im->budget, im->reserved);
    im->reserved = 0;
}

void mi_thumb_factors(int fw, int fh, int dw, int dh, int orientation,
                      int box, int *fx, int *fy)
{
    int rw, rh;

    target(fw, fh, orientation, box, &rw, &rh);
    *fx = *fy = 1;
    if (dw / rw >= 4 || dh / rh >= 4) {
        *fx = dw / rw / 2 > 1 ? dw / rw / 2 : 1;
        *fy = dh / rh / 2 > 1 ? dh / rh / 2 : 1;
    }
}

int mi_thumb_jpeg_denom(int w, int h, int orientation, int box)
{
    static const int denoms[] = { 8, 4, 2 };
    int rw, rh;

    target(w, h, orientation, box, &rw, &rh);
    for (size_t d = 0; d < MI_ARRAY_LEN(denoms); d++) {
        int n = denoms[d];
        if ((w + n - 1) / n >= rw && (h + n - 1) / n >= rh)
            return n;
    }
    return 1;
}

static bool is_ours(const mi_media_type *t)
{
    static const char *const mimes[] = { "image/jpeg", "image/png",
                                         "image/apng", "image/gif",
                                         "image/bmp" };
    if (!t)
        return false;
    for (size_t i = 0; i < MI_ARRAY_LEN(mimes); i++)
        if (strcmp(t->mime, mimes[i]) == 0)
            return true;
    return false;
}

/* Which decoder the first bytes call for.  `named` (may be NULL) is the
 * type the file name gives. */
static codec classify(const uint8_t *b, size_t len, const mi_media_type *named)
{
    if (mi_decoder_format(b, len, named))
        return CODEC_HELPER;
    if (named && named->kind == MI_KIND_VIDEO)
        return CODEC_NONE;
    if (len >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff)
        return CODEC_JPEG;
    if (len >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0)
        return CODEC_PNG;
    if (len >= 6 && (memcmp(b, "GIF87a", 6) == 0 || memcmp(b, "GIF89a", 6) == 0))
        return CODEC_STB;
    if (len >= 26 && b[0] == 'B' && b[1] == 'M')
        return CODEC_STB;
    /* Another format we know but do not decode (SVG, ICO...), or a name
     * that says so: not for us.  A name that says JPEG, PNG, GIF or
     * BMP on bytes that are none of them: broken. */
    if (mi_media_sniff(b, len))
        return CODEC_NONE;
    if (!named)
        return CODEC_BROKEN;
    return is_ours(named) ? CODEC_BROKEN : CODEC_NONE;
}

/* Read the whole source (a file: at most MAX_FILE_BYTES) into a malloc'd
 * buffer. */
static mi_status read_all(const mi_src *src, uint8_t **out, size_t *out_len)
{
    uint8_t *buf;
    size_t n = 0, size;

    *out = NULL;
    *out_len = 0;
    if (src->size > MAX_FILE_BYTES)
        return MI_ETOOBIG;
    size = (size_t)src->size;
    buf = malloc(size ? size : 1);
    if (!buf)
        return MI_ENOMEM;
    while (n < size) {
        long r = mi_src_pread(src, buf + n, size - n, n);
        if (r < 0) {
            free(buf);
            return MI_EIO;
        }
        if (r == 0)
            break;          /* shrunk meanwhile: decode what is there */
        n += (size_t)r;
    }
    *out = buf;
    *out_len = n;
    return MI_OK;
}

/* GIF (first frame) and BMP through stb_image: whole in memory, so the
 * file, stb's pixels and its working memory are all reserved first. */
static mi_status decode_stb(mi_image *im, const mi_src *src, int orientation,
                            int box, uint64_t max_pixels, mi_budget *budget)
{
    uint8_t head[1024], *file = NULL, *px = NULL;
    const uint8_t *buf;
    size_t len;
    long hn;
    uint64_t need;
    mi_shrink k;
    int w, h, fx, fy;
    mi_status s;

    memset(im, 0, sizeof(*im));
    memset(&k, 0, sizeof(k));
    hn = mi_src_pread(src, head, sizeof(head), 0);
    if (hn < 0)
        return MI_EIO;
    if (!mi_stbi_info(head, (size_t)hn, &w, &h)) {
        /* stb refuses sides over STBI_MAX_DIMENSIONS as if broken: say
         * "too big" for a BMP header that claims them. */
        uint64_t cw = 0, ch = 0;
        if (hn >= 26 && head[0] == 'B') {
            cw = (uint64_t)head[18] | (uint64_t)head[19] << 8 |
                 (uint64_t)head[20] << 16 | (uint64_t)head[21] << 24;
            ch = (uint64_t)head[22] | (uint64_t)head[23] << 8 |
                 (uint64_t)head[24] << 16 | (uint64_t)(head[25] & 0x7f) << 24;
        }
        return cw > 65535 || ch > 65535 ? MI_ETOOBIG : MI_EFORMAT;
    }
    if ((uint64_t)w * (uint64_t)h > max_pixels)
        return MI_ETOOBIG;
    if (src->fd < 0 ? src->len > 0x7fffffffu : src->size > MAX_FILE_BYTES)
        return MI_ETOOBIG;
    mi_thumb_factors(w, h, w, h, orientation, box, &fx, &fy);
    need = (src->fd < 0 ? 0 : 3 * src->size) + (uint64_t)w * (uint64_t)h * 8u +
           (1u << 20) + mi_shrink_bytes(w, h, fx, fy);
    s = mi_budget_acquire(budget, need);
    if (s != MI_OK)
        return s;
    if (src->fd >= 0) {
        s = read_all(src, &file, &len);
        if (s != MI_OK)
            goto out;
        buf = file;
    } else {
        buf = src->buf;
        len = src->len;
    }
    s = MI_EFORMAT;
    px = mi_stbi_load_rgba(buf, len, &im->w, &im->h);
    if (!px || im->w != w || im->h != h)
        goto out;
    s = mi_shrink_begin(&k, w, h, fx, fy);
    if (s != MI_OK)
        goto out;
    for (int y = 0; y < h; y++)
        mi_shrink_row(&k, px + (size_t)y * (size_t)w * 4);
    need = mi_shrink_end(&k, im, budget, need);
    im->alpha = true;
    im->full_w = w;
    im->full_h = h;
out:
    mi_stbi_free(px);
    free(file);
    mi_shrink_free(&k);
    mi_budget_release(budget, need);
    return s;
}

/*
 * HEIF, WebP, TIFF, camera raw and video: decoded by mi-decode, in its
 * own sandboxed process, to pixels that cover the thumbnail.  A buffer is
 * handed over as a memfd.
 */
static mi_status decode_helper(mi_image *im, const mi_src *src, int format,
                               int box, uint64_t max_pixels, mi_budget *budget,
                               mi_decoders *dec, char *reason, size_t reason_len,
                               mi_dres *res_out)
{
    mi_dreq req = { MI_DPROTO_MAGIC, MI_DOP_PIXELS, (uint32_t)box,
                    (uint32_t)format, max_pixels };
    mi_dres res;
    char why[160];
    int fd = src->fd;
    mi_status s;

    if (res_out)
        memset(res_out, 0, sizeof *res_out);
    if (!dec)
        return MI_EUNSUPPORTED;
    if (fd < 0) {
        size_t off = 0;
        fd = memfd_create("mi-thumb", MFD_CLOEXEC);
        if (fd < 0)
            return mi_status_from_errno(errno);
        while (off < src->len) {
            ssize_t w = write(fd, src->buf + off, src->len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                close(fd);
                return MI_ENOMEM;
            }
            off += (size_t)w;
        }
    }
    s = mi_decoders_run(dec, fd, &req, &res, &im->px, budget, &im->reserved,
                        why, sizeof why);
    if (fd != src->fd)
        close(fd);
    if (res_out)
        *res_out = res;
    if (s != MI_OK) {
        if (reason && reason_len)
            mi_bufprintf(reason, reason_len, "%s", why);
        return s;
    }
    im->budget = budget;
    im->w = (int)res.w;
    im->h = (int)res.h;
    im->full_w = (int)res.full_w;
    im->full_h = (int)res.full_h;
    im->alpha = (res.flags & MI_DRES_ALPHA) != 0;
    im->orientation = (int)res.orientation;
    /* The pixels must be the full image, shrunk: a helper that says
     * otherwise is not believed. */
    if (im->full_w < im->w || im->full_h < im->h || im->full_w > 65535 ||
        im->full_h > 65535) {
        mi_image_free(im);
        return MI_EFORMAT;
    }
    return MI_OK;
}

/*
 * The one place that chooses a decoder: RGBA pixels of the image in `src`
 * in its stored orientation, already box-shrunk (JPEG: first scaled down
 * by the DCT), or MI_EUNSUPPORTED / MI_EFORMAT / MI_ETOOBIG / MI_ENOMEM /
 * MI_EIO.  The pixels cover the image's fit into box x box; those of
 * mi-decode cover hbox x hbox's (its embedded thumbnails and previews are
 * used when they do), fitted into twice that.
 */
static mi_status decode_any(mi_image *im, const mi_src *src,
                            const mi_media_type *named, int orientation,
                            int box, int hbox, uint64_t max_pixels,
                            mi_budget *budget, mi_decoders *dec, char *why,
                            size_t why_len)
{
    uint8_t head[MI_SNIFF_LEN];
    long n = mi_src_pread(src, head, sizeof(head), 0);

    memset(im, 0, sizeof(*im));
    if (n < 0)
        return MI_EIO;
    switch (classify(head, (size_t)n, named)) {
    case CODEC_JPEG:
        return mi_decode_jpeg(im, src, orientation, box, max_pixels, budget);
    case CODEC_PNG:
        return mi_decode_png(im, src, orientation, box, max_pixels, budget);
    case CODEC_STB:
        return decode_stb(im, src, orientation, box, max_pixels, budget);
    case CODEC_HELPER:
        return decode_helper(im, src, mi_decoder_format(head, (size_t)n, named),
                             hbox, max_pixels, budget, dec, why, why_len, NULL);
    case CODEC_BROKEN:
        return MI_EFORMAT;
    case CODEC_NONE:
    default:
        return MI_EUNSUPPORTED;
    }
}

/* ---------------------------------------------------------------------- */
/* Shrinking                                                               */

/*
 * Average fx x fy blocks (alpha-weighted colour) as the rows arrive: the
 * integer pre-shrink before the filtered resize, so that the resize never
 * works at a ratio over 4 (stb_image_resize's filter setup grows with in x
 * out pixels at extreme ratios: a 65535 x 1 GIF took over 2 s in it, found
 * by fuzz/fuzz-thumb), and so that no decoder holds the full image.
 */
uint64_t mi_shrink_bytes(int w, int h, int fx, int fy)
{
    uint64_t ow = (uint64_t)(w / fx), oh = (uint64_t)(h / fy);

    return ow * oh * 4u + ow * 4u * sizeof(uint64_t);
}

mi_status mi_shrink_begin(mi_shrink *k, int w, int h, int fx, int fy)
{
    memset(k, 0, sizeof(*k));
    k->w = w;
    k->h = h;
    k->fx = fx;
    k->fy = fy;
    k->ow = w / fx;
    k->oh = h / fy;
    if (k->ow < 1 || k->oh < 1)
        return MI_EFORMAT;
    k->out = malloc((size_t)k->ow * (size_t)k->oh * 4);
    k->acc = calloc((size_t)k->ow, 4 * sizeof(*k->acc));
    if (!k->out || !k->acc) {
        mi_shrink_free(k);
        return MI_ENOMEM;
    }
    return MI_OK;
}

void mi_shrink_row(mi_shrink *k, const uint8_t *row)
{
    int oy = k->y / k->fy;

    if (oy >= k->oh)
        return;
    if (k->fx == 1 && k->fy == 1) {
        /* No shrinking (the decoder's own scale was enough): the row as
         * it is, what the average of one pixel gives, colour cleared
         * where alpha is 0, without a division per channel. */
        uint8_t *d = k->out + (size_t)oy * (size_t)k->ow * 4;

        memcpy(d, row, (size_t)k->ow * 4);
        for (int ox = 0; ox < k->ow; ox++) {
            uint8_t keep = d[ox * 4 + 3] ? 0xff : 0;
            d[ox * 4] &= keep;
            d[ox * 4 + 1] &= keep;
            d[ox * 4 + 2] &= keep;
        }
        k->y++;
        return;
    }
    for (int ox = 0; ox < k->ow; ox++) {
        uint64_t *a = k->acc + (size_t)ox * 4;
        const uint8_t *p = row + (size_t)ox * (size_t)k->fx * 4;
        for (int x = 0; x < k->fx; x++, p += 4) {
            a[0] += (uint64_t)p[0] * p[3];
            a[1] += (uint64_t)p[1] * p[3];
            a[2] += (uint64_t)p[2] * p[3];
            a[3] += p[3];
        }
    }
    if (++k->y % k->fy)
        return;
    {
        uint8_t *d = k->out + (size_t)oy * (size_t)k->ow * 4;
        uint64_t n = (uint64_t)k->fx * (uint64_t)k->fy;

        for (int ox = 0; ox < k->ow; ox++) {
            const uint64_t *a = k->acc + (size_t)ox * 4;
            uint8_t *q = d + (size_t)ox * 4;
            if (a[3]) {
                q[0] = (uint8_t)((a[0] + a[3] / 2) / a[3]);
                q[1] = (uint8_t)((a[1] + a[3] / 2) / a[3]);
                q[2] = (uint8_t)((a[2] + a[3] / 2) / a[3]);
            } else {
                q[0] = q[1] = q[2] = 0;
            }
            q[3] = (uint8_t)((a[3] + n / 2) / n);
        }
        memset(k->acc, 0, (size_t)k->ow * 4 * sizeof(*k->acc));
    }
}

uint64_t mi_shrink_end(mi_shrink *k, mi_image *im, mi_budget *budget,
                       uint64_t reserved)
{
    im->px = k->out;
    im->w = k->ow;
    im->h = k->oh;
    k->out = NULL;
    /* Only the shrunk pixels stay reserved, released with the image. */
    im->budget = budget;
    im->reserved = (uint64_t)im->w * (uint64_t)im->h * 4u;
    if (im->reserved > reserved)
        im->reserved = reserved;
    return reserved - im->reserved;
}

void mi_shrink_free(mi_shrink *k)
{
    free(k->out);
    free(k->acc);
    k->out = NULL;
    k->acc = NULL;
}

/* ---------------------------------------------------------------------- */
/* Orientation                                                             */

/* Copy the sw x sh image `src` into `dst` (rows `dstride` bytes apart),
 * turned as EXIF orientation `o` says (1..8) to display upright. */
static void orient_copy(uint8_t *dst, size_t dstride, const uint8_t *src,
                        int sw, int sh, int o)
{
    ptrdiff_t base, sx, sy;  /* in pixels: src index of dst(x, y) */
    int dw = o >= 5 ? sh : sw, dh = o >= 5 ? sw : sh;
    ptrdiff_t W = sw, H = sh;

    switch (o) {
    case 2: base = W - 1; sx = -1; sy = W; break;
    case 3: base = (H - 1) * W + W - 1; sx = -1; sy = -W; break;
    case 4: base = (H - 1) * W; sx = 1; sy = -W; break;
    case 5: base = 0; sx = W; sy = 1; break;
    case 6: base = (H - 1) * W; sx = -W; sy = 1; break;
    case 7: base = (H - 1) * W + W - 1; sx = -W; sy = -1; break;
    case 8: base = W - 1; sx = W; sy = -1; break;
    default: base = 0; sx = 1; sy = W; break;
    }
    for (int y = 0; y < dh; y++) {
        uint8_t *d = dst + (size_t)y * dstride;
        ptrdiff_t i = base + sy * y;
        if (sx == 1) {
            memcpy(d, src + i * 4, (size_t)dw * 4);
            continue;
        }
        for (int x = 0; x < dw; x++, i += sx)
            memcpy(d + (size_t)x * 4, src + i * 4, 4);
    }
}

/* ---------------------------------------------------------------------- */
/* The pipeline                                                            */

/* The orientation decoded pixels are shown turned by: the decoder's own
 * when it knows one, else EXIF's `orientation`, else upright. */
static int shown(const mi_image *im, int orientation)
{
    if (im->orientation >= 1 && im->orientation <= 8)
        return im->orientation;
    return orientation >= 1 && orientation <= 8 ? orientation : 1;
}

/* Decoded pixels fitted into box x box as shown turned by `orientation`
 * (the image never enlarged; with `sharp`, nor the pixels decoded, when
 * they are a smaller embedded preview), turned upright: *out is a
 * malloc'd *dw x *dh RGBA image. */
static mi_status fit_upright(uint8_t **out, int *dw, int *dh,
                             const mi_image *im, int orientation, int box,
                             bool sharp)
{
    uint8_t *small = NULL;
    const uint8_t *px = im->px;
    int rw, rh;

    *out = NULL;
    target(im->full_w, im->full_h, orientation, box, &rw, &rh);
    if (sharp && (rw > im->w || rh > im->h)) {
        rw = im->w;
        rh = im->h;
    }
    if (im->w != rw || im->h != rh) {
        small = malloc((size_t)rw * (size_t)rh * 4);
        if (!small || !mi_stbir_resize_rgba(im->px, im->w, im->h, im->w * 4,
                                            small, rw, rh, rw * 4, im->alpha)) {
            free(small);
            return MI_ENOMEM;
        }
        px = small;
    }
    *dw = orientation >= 5 ? rh : rw;
    *dh = orientation >= 5 ? rw : rh;
    *out = malloc((size_t)rw * (size_t)rh * 4);
    if (*out)
        orient_copy(*out, (size_t)*dw * 4, px, rw, rh, orientation);
    free(small);
    return *out ? MI_OK : MI_ENOMEM;
}

/* Do decoded pixels cover the image's fit into box x box? */
static bool covers(const mi_image *im, int orientation, int box)
{
    int rw, rh;

    target(im->full_w, im->full_h, orientation, box, &rw, &rh);
    return rw <= im->w && rh <= im->h;
}

/* The thumbnail of decoded pixels, shown turned by EXIF `orientation`
 * (1..8; the decoder's own, when it knows one, wins): centred in a
 * transparent T x T canvas, at the size the whole image would take there
 * (a gallery places the square by the image's own size).  With `ph`, also
 * the perceptual hash of the same upright pixels (phash.c). */
static mi_status png_of_image(uint8_t **png, size_t *png_len,
                              const mi_image *im, int orientation,
                              mi_phash *ph)
{
    uint8_t *canvas = NULL, *up = NULL;
    int dw, dh;
    mi_status s;

    *png = NULL;
    *png_len = 0;
    s = fit_upright(&up, &dw, &dh, im, shown(im, orientation), T, false);
    if (s != MI_OK)
        return s;
    if (ph && mi_phash_rgba(&ph->bits, &ph->has, up, dw, dh,
                            (size_t)dw * 4) == MI_OK)
        ph->tried = true;
    canvas = calloc((size_t)T * T, 4);
    if (!canvas) {
        free(up);
        return MI_ENOMEM;
    }
    for (int y = 0; y < dh; y++)
        memcpy(canvas + ((size_t)((T - dh) / 2 + y) * T + (size_t)((T - dw) / 2)) * 4,
               up + (size_t)y * (size_t)dw * 4, (size_t)dw * 4);
    s = mi_png_encode_rgba(png, png_len, canvas, T, T, (size_t)T * 4);
    free(up);
    free(canvas);
    return s;
}

/* A JPEG of decoded pixels fitted into box x box as shown (no canvas).
 * JPEG has no alpha: what is transparent is shown over white, as a
 * browser shows the image on a page (not black, the colour the shrink
 * gives a transparent pixel). */
static mi_status jpeg_of_image(uint8_t **jpg, size_t *jpg_len,
                               const mi_image *im, int orientation, int box,
                               int quality)
{
    uint8_t *up = NULL;
    int dw, dh;
    mi_status s;

    *jpg = NULL;
    *jpg_len = 0;
    s = fit_upright(&up, &dw, &dh, im, shown(im, orientation), box, true);
    if (s == MI_OK && im->alpha) {
        for (size_t i = 0, n = (size_t)dw * (size_t)dh; i < n; i++) {
            uint8_t *p = up + i * 4;
            unsigned a = p[3];
            for (int c = 0; c < 3; c++)
                p[c] = (uint8_t)((p[c] * a + 255u * (255u - a) + 127u) / 255u);
            p[3] = 255;
        }
    }
    if (s == MI_OK)
        s = mi_jpeg_encode_rgba(jpg, jpg_len, up, dw, dh, (size_t)dw * 4,
                                quality);
    free(up);
    return s;
}

/* decode_any, with *orientation the EXIF one (read from the file when
 * < 0 on entry; 1..8 on return). */
static mi_status decode_oriented(mi_image *im, const mi_src *src,
                                 const mi_media_type *named, int *orientation,
                                 int box, int hbox, uint64_t max_pixels,
                                 mi_budget *budget, mi_decoders *dec,
                                 char *why, size_t why_len)
{
    if (*orientation < 0) {
        mi_meta meta;
        uint8_t head[MI_SNIFF_LEN];
        long n = mi_src_pread(src, head, sizeof(head), 0);
        const mi_media_type *t = n > 0 ? mi_media_sniff(head, (size_t)n) : NULL;

        if (!t)
            t = named;
        if ((src->fd < 0 ? mi_meta_read_buffer(&meta, src->buf, src->len, t)
                         : mi_meta_read_fd(&meta, src->fd, src->size, t)) != MI_OK)
            meta.orientation = 0;
        *orientation = meta.orientation;
    }
    if (*orientation < 1 || *orientation > 8)
        *orientation = 1;
    return decode_any(im, src, named, *orientation, box, hbox, max_pixels,
                      budget, dec, why, why_len);
}

static mi_status make_png(uint8_t **png, size_t *png_len, const mi_src *src,
                          const mi_media_type *named, int orientation,
                          uint64_t max_pixels, mi_budget *budget,
                          mi_decoders *dec, char *why, size_t why_len)
{
    mi_image im;
    mi_status s;

    *png = NULL;
    *png_len = 0;
    s = decode_oriented(&im, src, named, &orientation, DECODE_BOX, T,
                        max_pixels, budget, dec, why, why_len);
    if (s != MI_OK)
        return s;
    s = png_of_image(png, png_len, &im, orientation, NULL);
    mi_image_free(&im);
    return s;
}

/* Without a handle: a decoder process of its own, for this one file, when
 * the format needs one. */
static mi_status make_png_alone(uint8_t **png, size_t *png_len,
                                const mi_src *src, const mi_media_type *named,
                                uint64_t max_pixels)
{
    uint8_t head[MI_SNIFF_LEN];
    long n = mi_src_pread(src, head, sizeof(head), 0);
    mi_decoders *dec = NULL;
    mi_status s;

    if (n > 0 && mi_decoder_format(head, (size_t)n, named)) {
        s = mi_decoders_new(&dec, NULL, 1, 0, 0);
        if (s != MI_OK)
            return s;
    }
    s = make_png(png, png_len, src, named, -1, max_pixels, NULL, dec, NULL, 0);
    mi_decoders_free(dec);
    return s;
}

static uint64_t cap_of(const mi_thumb_options *opts)
{
    return opts && opts->max_pixels ? opts->max_pixels
                                    : MI_THUMB_MAX_PIXELS_DEFAULT;
}

mi_status mi_thumb_make_buffer(uint8_t **png, size_t *png_len,
                               const void *buf, size_t len,
                               const mi_thumb_options *opts)
{
    mi_src src = { buf, len, -1, len };

    if (png)
        *png = NULL;
    if (png_len)
        *png_len = 0;
    if (!png || !png_len || (!buf && len))
        return MI_EINVAL;
    if (opts && (opts->version < 1 || opts->version > MI_THUMB_OPTIONS_VERSION))
        return MI_EINVAL;
    if (len == 0)
        return MI_EFORMAT;
    return make_png_alone(png, png_len, &src, NULL, cap_of(opts));
}

/* An open regular file as a source. */
static mi_status src_of_fd(mi_src *src, int fd)
{
    struct stat st;

    if (fstat(fd, &st) != 0)
        return mi_status_from_errno(errno);
    if (!S_ISREG(st.st_mode))
        return MI_EINVAL;
    src->buf = NULL;
    src->len = 0;
    src->fd = fd;
    src->size = (uint64_t)st.st_size;
    return MI_OK;
}

mi_status mi_thumb_make_file(uint8_t **png, size_t *png_len, const char *path,
                             const mi_thumb_options *opts)
{
    mi_src src;
    mi_status s;
    int fd;

    if (png)
        *png = NULL;
    if (png_len)
        *png_len = 0;
    if (!png || !png_len || !path)
        return MI_EINVAL;
    if (opts && (opts->version < 1 || opts->version > MI_THUMB_OPTIONS_VERSION))
        return MI_EINVAL;
    fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return mi_status_from_errno(errno);
    s = src_of_fd(&src, fd);
    if (s == MI_OK)
        s = src.size ? make_png_alone(png, png_len, &src,
                                      mi_media_from_name(path), cap_of(opts))
                     : MI_EFORMAT;
    close(fd);
    return s;
}


void mi_free(void *p)
{
    free(p);
}

/* ---------------------------------------------------------------------- */
/* Files                                                                   */

static void thumb_name(char name[NAME_LEN], const uint8_t hash[MI_HASH_SIZE])
{
    mi_hash_to_hex(name, hash);
    memcpy(name + MI_HASH_HEX_LEN, ".png", sizeof(".png"));
}

/* The names of what is made from a content: <hex><suffix>. */
static void derived_name(char name[PREVIEW_NAME_LEN],
                         const uint8_t hash[MI_HASH_SIZE], const char *suffix)
{
    char hex[MI_HASH_HEX_LEN + 1];
    mi_hash_to_hex(hex, hash);
    mi_bufprintf(name, PREVIEW_NAME_LEN, "%s%s", hex, suffix);
}

static void large_name(char name[PREVIEW_NAME_LEN],
                       const uint8_t hash[MI_HASH_SIZE])
{
    derived_name(name, hash, LARGE_SUFFIX);
}

bool mi_thumb_exists(int dirfd, const uint8_t hash[MI_HASH_SIZE])
{
    char name[NAME_LEN];

    thumb_name(name, hash);
    return dirfd >= 0 && faccessat(dirfd, name, F_OK, 0) == 0;
}

static bool pread_full(int fd, void *buf, size_t n, off_t off)
{
    return pread(fd, buf, n, off) == (ssize_t)n;
}

/* Is the file a whole thumbnail: a 256 x 256 RGBA PNG header and an IEND
 * trailer?  (Enough against a file cut short by a crash.) */
static bool thumb_valid(int dirfd, const char *name)
{
    static const uint8_t iend[12] = { 0, 0, 0, 0, 'I', 'E', 'N', 'D',
                                      0xae, 0x42, 0x60, 0x82 };
    uint8_t head[26], tail[12];
    struct stat st;
    bool ok = false;
    int fd;

    fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return false;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 8 + 25 + 12 + 12 &&
        pread_full(fd, head, sizeof(head), 0) &&
        pread_full(fd, tail, sizeof(tail), st.st_size - 12))
        ok = memcmp(head, "\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR"
                          "\0\0\x01\0\0\0\x01\0\x08\x06", 26) == 0 &&
             memcmp(tail, iend, sizeof(iend)) == 0;
    close(fd);
    return ok;
}

/* Write `data` to dirfd/name through a temp file and a rename. */
static mi_status write_atomic(int dirfd, const char *name, const uint8_t *data,
                              size_t len)
{
    char tmp[NAME_LEN + 96];
    struct timespec ts;
    mi_status s = MI_OK;
    size_t off = 0;
    int fd = -1;

    for (int attempt = 0; attempt < 16 && fd < 0; attempt++) {
        clock_gettime(CLOCK_REALTIME, &ts);
        mi_bufprintf(tmp, sizeof(tmp), MI_THUMB_TEMP_PREFIX "%.16s-%ld-%lx-%d",
                     name, (long)getpid(), (unsigned long)ts.tv_nsec ^
                     (unsigned long)(uintptr_t)&ts, attempt);
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
                                    O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST)
            return mi_status_from_errno(errno);
    }
    if (fd < 0)
        return MI_EEXISTS;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            s = w < 0 ? mi_status_from_errno(errno) : MI_EIO;
            break;
        }
        off += (size_t)w;
    }
    if (close(fd) != 0 && s == MI_OK)
        s = MI_EIO;
    if (s == MI_OK && renameat(dirfd, tmp, dirfd, name) != 0)
        s = mi_status_from_errno(errno);
    if (s != MI_OK)
        unlinkat(dirfd, tmp, 0);
    return s;
}

mi_thumb_state mi_thumb_state_of(mi_status s)
{
    switch (s) {
    case MI_OK:
        return MI_THUMB_OK;
    case MI_EUNSUPPORTED:
        return MI_THUMB_UNSUPPORTED;
    case MI_EFORMAT:
    case MI_ETOOBIG:
        return MI_THUMB_FAILED;
    default:
        return MI_THUMB_NONE;   /* I/O, memory: try again next time */
    }
}

const char *mi_thumb_reason(mi_status s)
{
    switch (s) {
    case MI_EFORMAT:
        return "the image could not be decoded (damaged or truncated)";
    case MI_ETOOBIG:
        return "the image is too large to decode for a thumbnail (over the "
               "pixel cap, or over the decode memory budget on its own)";
    default:
        return mi_strerror(s);
    }
}

/* Make the thumbnail file of the content of `fd` (whatever the index's
 * flags say).  With `meta`, also add to it what the decoder process knows
 * (mi_meta_from_decoder), from the same request as the pixels when both
 * are needed, and show the thumbnail turned by meta->orientation. */
static mi_status thumb_write(mi_index *idx, const uint8_t hash[MI_HASH_SIZE],
                             int fd, const mi_media_type *type,
                             int orientation, mi_meta *meta, bool *written,
                             mi_phash *phash, char *why, size_t why_len)
{
    char name[NAME_LEN], large[PREVIEW_NAME_LEN];
    uint8_t head[MI_SNIFF_LEN], *png = NULL, *jpg = NULL;
    size_t png_len = 0, jpg_len = 0;
    bool meta_done = !meta;
    mi_image im;
    mi_src src;
    ssize_t n;
    mi_status s;
    int dirfd, format;

    dirfd = mi_index_thumbs_fd(idx);
    if (dirfd < 0) {
        s = mi_index_fail(idx, MI_EIO, "no thumbnails folder");
        goto out;
    }
    thumb_name(name, hash);
    s = MI_OK;
    if (thumb_valid(dirfd, name))
        goto out;

    /* Types we do not decode are told by their first bytes: no need to
     * read a 4 GB file of a format we cannot show. */
    n = pread(fd, head, sizeof(head), 0);
    s = n < 0 ? MI_EIO : n == 0 ? MI_EFORMAT : MI_OK;
    if (s == MI_OK && classify(head, (size_t)n, type) == CODEC_NONE)
        s = MI_EUNSUPPORTED;
    if (s == MI_OK)
        s = src_of_fd(&src, fd);
    if (s != MI_OK)
        goto out;
    format = mi_decoder_format(head, (size_t)n, type);
    memset(&im, 0, sizeof im);
    if (meta && format && mi_meta_wants_decoder(format, meta)) {
        /* One request for both: a file that hangs the decoder costs one
         * deadline, not two. */
        mi_dres res;

        s = decode_helper(&im, &src, format, T,
                          mi_index_max_pixels(idx), mi_index_budget(idx),
                          mi_index_decoders(idx), why, why_len, &res);
        mi_meta_add_decoded(meta, format, &res);
        meta_done = true;
        orientation = meta->orientation;
    } else {
        if (meta)
            orientation = meta->orientation;
        s = decode_oriented(&im, &src, type, &orientation, DECODE_BOX, T,
                            mi_index_max_pixels(idx), mi_index_budget(idx),
                            mi_index_decoders(idx), why, why_len);
    }
    if (s != MI_OK)
        goto out;
    /* Decode once, resize twice: the large thumbnail is made on the way
     * when the pixels cover it (not those of the 320 px thumbnail a phone
     * embeds in its HEIC: that one is made on request, from the image).
     * A failure to make it costs nothing: it is made on request. */
    /* Videos have none: the posters of distinct clips (a black or faded
     * first frame) look too much alike. */
    s = png_of_image(&png, &png_len, &im, orientation,
                     type && type->kind == MI_KIND_VIDEO ? NULL : phash);
    if (s == MI_OK && covers(&im, shown(&im, orientation), LARGE) &&
        jpeg_of_image(&jpg, &jpg_len, &im, orientation, LARGE,
                      LARGE_QUALITY) == MI_OK) {
        large_name(large, hash);
        write_atomic(dirfd, large, jpg, jpg_len);
    }
    mi_image_free(&im);
    if (s == MI_OK) {
        s = write_atomic(dirfd, name, png, png_len);
        if (s != MI_OK)
            mi_index_fail(idx, s, "cannot write .thumbnails/%s: %s", name,
                          mi_strerror(s));
        else if (written)
            *written = true;
    }
    free(png);
    free(jpg);
out:
    if (!meta_done)
        mi_meta_from_decoder(idx, fd, type, meta, NULL, 0);
    return s;
}

/* The two entry points below: outputs cleared, arguments checked, then
 * thumb_write (with `meta`, the decoder's metadata is filled from the same
 * request, and still read when thumbnails are off). */
static mi_status write_fd(mi_index *idx, const uint8_t hash[MI_HASH_SIZE],
                          int fd, const mi_media_type *type, int orientation,
                          mi_meta *meta, mi_thumb_state *state, bool *written,
                          mi_phash *phash, char *why, size_t why_len)
{
    mi_status s;

    if (phash)
        memset(phash, 0, sizeof *phash);
    if (why && why_len)
        why[0] = '\0';
    if (state)
        *state = MI_THUMB_NONE;
    if (written)
        *written = false;
    if (!idx || !hash || fd < 0)
        return MI_EINVAL;
    if (mi_index_flags(idx) & MI_INDEX_NO_THUMBNAILS) {
        if (meta)
            mi_meta_from_decoder(idx, fd, type, meta, NULL, 0);
        return MI_OK;
    }
    s = thumb_write(idx, hash, fd, type, orientation, meta, written, phash,
                    why, why_len);
    if (state)
        *state = mi_thumb_state_of(s);
    return s;
}

mi_status mi_thumb_write_fd_oriented(mi_index *idx,
                                     const uint8_t hash[MI_HASH_SIZE], int fd,
                                     const mi_media_type *type,
                                     int orientation, mi_thumb_state *state,
                                     bool *written, mi_phash *phash,
                                     char *why, size_t why_len)
{
    return write_fd(idx, hash, fd, type, orientation, NULL, state, written,
                    phash, why, why_len);
}

mi_status mi_thumb_write_fd_meta(mi_index *idx, const uint8_t hash[MI_HASH_SIZE],
                                 int fd, const mi_media_type *type,
                                 mi_meta *meta, mi_thumb_state *state,
                                 bool *written, mi_phash *phash, char *why,
                                 size_t why_len)
{
    /* No `meta` is refused like no handle (MI_EINVAL, outputs cleared). */
    return write_fd(meta ? idx : NULL, hash, fd, type, -1, meta, state,
                    written, phash, why, why_len);
}

mi_status mi_thumb_write_fd(mi_index *idx, const uint8_t hash[MI_HASH_SIZE],
                            int fd, const mi_media_type *type,
                            mi_thumb_state *state, mi_phash *phash,
                            char *why, size_t why_len)
{
    return mi_thumb_write_fd_oriented(idx, hash, fd, type, -1, state, NULL,
                                      phash, why, why_len);
}

/* ---------------------------------------------------------------------- */
/* Thumbnails of the index                                                 */

#define MAX_GET_PATHS 8

/* The catalog rows of one content (the primary, smallest path first):
 * what mi_thumb_get and mi_preview_get read before making anything. */
typedef struct rows {
    char *paths[MAX_GET_PATHS];
    uint64_t sizes[MAX_GET_PATHS];
    int64_t mtimes[MAX_GET_PATHS];
    size_t n;
    mi_kind kind;
    mi_thumb_state state;
} rows;

static void rows_free(rows *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->paths[i]);
    r->n = 0;
}

static mi_status rows_of(mi_index *idx, const uint8_t hash[MI_HASH_SIZE],
                         rows *r)
{
    mi_status s = MI_OK;
    mi_conn *c;
    int rc;

    memset(r, 0, sizeof(*r));
    r->kind = MI_KIND_IMAGE;
    s = mi_index_reader(idx, &c);
    if (s != MI_OK)
        return s;
    sqlite3_bind_blob(c->lookup, 1, hash, MI_HASH_SIZE, SQLITE_STATIC);
    while ((rc = sqlite3_step(c->lookup)) == SQLITE_ROW && r->n < MAX_GET_PATHS) {
        const char *p = sqlite3_column_blob(c->lookup, 1);
        int plen = sqlite3_column_bytes(c->lookup, 1);
        if (r->n == 0) {
            r->kind = sqlite3_column_int(c->lookup, 6) == MI_KIND_VIDEO
                          ? MI_KIND_VIDEO : MI_KIND_IMAGE;
            r->state = (mi_thumb_state)sqlite3_column_int(c->lookup, 16);
        }
        r->paths[r->n] = malloc((size_t)plen + 1);
        if (!r->paths[r->n]) {
            s = MI_ENOMEM;
            break;
        }
        if (plen)
            memcpy(r->paths[r->n], p, (size_t)plen);
        r->paths[r->n][plen] = '\0';
        r->sizes[r->n] = (uint64_t)sqlite3_column_int64(c->lookup, 2);
        r->mtimes[r->n] = sqlite3_column_int64(c->lookup, 3);
        r->n++;
    }
    if (s == MI_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
        s = mi_index_fail(idx, MI_EDB, "lookup: %s", sqlite3_errmsg(c->db));
    sqlite3_reset(c->lookup);
    sqlite3_clear_bindings(c->lookup);
    mi_index_release(idx, c);
    if (s != MI_OK)
        rows_free(r);
    return s;
}

/* An open descriptor of a path whose file is still the one that was
 * hashed (size and mtime as recorded), and which path; -1 when none. */
static int open_unchanged(mi_index *idx, const rows *r, size_t *which)
{
    for (size_t i = 0; i < r->n; i++) {
        struct stat st;
        int fd = openat(mi_index_root_fd(idx), r->paths[i],
                        O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (fstat(fd, &st) == 0 && (uint64_t)st.st_size == r->sizes[i] &&
            (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec ==
                r->mtimes[i]) {
            *which = i;
            return fd;
        }
        close(fd);
    }
    return -1;
}

/* Why the thumbnail of a content failed, as recorded with the problem of
 * one of its paths (a status of mi_thumb_state MI_THUMB_FAILED). */
static void thumb_failure(mi_conn *c, const rows *r, mi_status *status,
                          char *why, size_t why_len)
{
    for (size_t i = 0; i < r->n; i++) {
        mi_status ps;
        int stage;
        if (mi_catalog_get_problem(c, r->paths[i], strlen(r->paths[i]),
                                   &stage, &ps, why, why_len) == MI_OK &&
            stage == MI_PROBLEM_THUMBNAIL &&
            mi_thumb_state_of(ps) == MI_THUMB_FAILED) {
            *status = ps;
            return;
        }
    }
    *status = MI_EFORMAT;
    mi_bufprintf(why, why_len, "%s", mi_thumb_reason(MI_EFORMAT));
}

mi_status mi_thumb_get(char *out, size_t out_size, mi_index *idx,
                       const uint8_t hash[MI_HASH_SIZE])
{
    char name[NAME_LEN], err[256];
    mi_thumb_state now;
    mi_phash ph = { false, false, 0 };
    mi_status s = MI_OK;
    rows r;
    size_t which;
    int dirfd, fd;

    if (out && out_size)
        out[0] = '\0';
    if (!out || out_size < sizeof(".thumbnails/") + NAME_LEN || !idx || !hash)
        return MI_EINVAL;
    thumb_name(name, hash);

    s = rows_of(idx, hash, &r);
    if (s != MI_OK)
        return s;
    if (r.n == 0) {
        /* In the trash: its thumbnail as it was, for the trash view. */
        dirfd = mi_index_thumbs_fd(idx);
        if (dirfd >= 0 && mi_trash_has(idx, hash) && thumb_valid(dirfd, name))
            goto done;
        s = mi_index_fail(idx, MI_ENOTFOUND, "no media with hash %.64s", name);
        goto out;
    }
    if (r.state == MI_THUMB_UNSUPPORTED) {
        s = mi_index_fail(idx, MI_EUNSUPPORTED, "no thumbnails for this type");
        goto out;
    }
    if (r.state == MI_THUMB_FAILED) {
        /* Not tried again until the file changes; why, as recorded. */
        char why[160];
        mi_conn *c;
        s = MI_EFORMAT;
        mi_bufprintf(why, sizeof why, "the %s could not be decoded",
                     r.kind == MI_KIND_VIDEO ? "video" : "image");
        if (mi_index_reader(idx, &c) == MI_OK) {
            thumb_failure(c, &r, &s, why, sizeof why);
            mi_index_release(idx, c);
        }
        mi_index_fail(idx, s, "no thumbnail: %s", why);
        goto out;
    }
    dirfd = mi_index_thumbs_fd(idx);
    if (dirfd < 0) {
        s = mi_index_fail(idx, MI_EIO, "no thumbnails folder");
        goto out;
    }
    if (r.state == MI_THUMB_OK && thumb_valid(dirfd, name))
        goto done;

    /* Missing (never made, deleted, cut short): make it from a path whose
     * file is still the one that was hashed. */
    fd = open_unchanged(idx, &r, &which);
    if (fd < 0) {
        s = mi_index_fail(idx, MI_ENOTFOUND,
                          "the file of %.64s changed or is gone; rescan", name);
        goto out;
    }
    s = thumb_write(idx, hash, fd, mi_media_from_name(r.paths[which]), -1, NULL,
                    NULL, &ph, NULL, 0);
    close(fd);
    now = mi_thumb_state_of(s);
    if (now != r.state || ph.tried) {
        /* Recorded when the catalog can be written; a frozen one keeps
         * the old state (the thumbnail itself is there either way). */
        mi_conn *w = mi_index_writer_lock(idx);
        mi_status ws = w ? mi_catalog_begin(w, err, sizeof(err)) : MI_EIO;
        if (ws == MI_OK && now != r.state)
            ws = mi_catalog_set_thumb(w, hash, NULL, 0, now, err, sizeof(err));
        if (ws == MI_OK && ph.tried)
            ws = mi_catalog_set_phash(w, hash, &ph, err, sizeof(err));
        if (ws == MI_OK)
            mi_index_writer_commit(idx, true, err, sizeof(err));
        else if (w)
            mi_index_writer_abort(idx);
    }
    if (s != MI_OK)
        goto out;
done:
    mi_bufprintf(out, out_size, ".thumbnails/%s", name);
out:
    rows_free(&r);
    return s;
}

/* ---------------------------------------------------------------------- */
/* Previews: what the viewer shows of a format the browser cannot          */

/* What is made on request, from the file itself: a large thumbnail (also
 * made by scans, on the way to the thumbnail) and a preview. */
typedef struct view {
    int box;                 /* the long side, at most */
    int hbox;                /* what mi-decode's pixels must cover: the
                                320 px thumbnail a phone embeds in a HEIC
                                will not do for a large thumbnail; a raw's
                                embedded preview of half the size will do
                                for a preview */
    const char *suffix;      /* of DIR/.thumbnails/<hex><suffix> */
    int quality;             /* JPEG's */
    bool videos;             /* of a video too (its poster frame) */
} view;

static const view large_view = { LARGE, LARGE, LARGE_SUFFIX, LARGE_QUALITY,
                                 true };
static const view preview_view = { MI_PREVIEW_SIZE, MI_PREVIEW_SIZE / 2,
                                   "-preview.jpg", 85, false };

/* Every file made from a content ends so. */
static const char *const made_suffixes[] = { ".png", LARGE_SUFFIX, "-preview.jpg" };

/* A whole JPEG: its first and last markers. */
static bool jpeg_valid(int dirfd, const char *name)
{
    uint8_t head[3], tail[2];
    struct stat st;
    bool ok = false;
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0)
        return false;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 100 &&
        pread_full(fd, head, sizeof(head), 0) &&
        pread_full(fd, tail, sizeof(tail), st.st_size - 2))
        ok = memcmp(head, "\xff\xd8\xff", 3) == 0 &&
             memcmp(tail, "\xff\xd9", 2) == 0;
    close(fd);
    return ok;
}

/* Has the decoder failed on this content already: an earlier preview
 * (remembered in the catalog), or its thumbnail (crashed, past the
 * deadline, broken: recorded as the problem of its path)?  Then *status
 * and `why` are that failure's. */
static bool known_failure(mi_index *idx, const uint8_t hash[MI_HASH_SIZE],
                          const rows *r, mi_status *status, char *why,
                          size_t why_len)
{
    bool found = false;
    mi_conn *c;

    if (mi_index_reader(idx, &c) != MI_OK)
        return false;
    if (mi_catalog_get_preview_failure(c, hash, status, why, why_len) == MI_OK) {
        found = true;
    } else if (r->state == MI_THUMB_FAILED) {
        thumb_failure(c, r, status, why, why_len);
        found = true;
    }
    mi_index_release(idx, c);
    return found;
}

/* Remember that the decoder cannot make this content's preview (when the
 * catalog can be written). */
static void remember_failure(mi_index *idx, const uint8_t hash[MI_HASH_SIZE],
                             mi_status status, const char *why)
{
    char err[256];
    mi_conn *w = mi_index_writer_lock(idx);
    mi_status ws = w ? mi_catalog_begin(w, err, sizeof(err)) : MI_EIO;

    if (ws == MI_OK)
        ws = mi_catalog_set_preview_failure(w, hash, status, why, err,
                                            sizeof(err));
    if (ws == MI_OK)
        mi_index_writer_commit(idx, false, err, sizeof(err));
    else if (w)
        mi_index_writer_abort(idx);
}

/* Make (or find) the view `v` of content `hash`; see mi_preview_get. */
static mi_status view_get(char *out, size_t out_size, mi_index *idx,
                          const uint8_t hash[MI_HASH_SIZE], const view *v)
{
    char name[PREVIEW_NAME_LEN], why[160] = "";
    uint8_t head[MI_SNIFF_LEN], *jpg = NULL;
    size_t which, jpg_len = 0;
    const mi_media_type *type;
    mi_preview_slot slot;
    mi_image im;
    mi_status s;
    mi_src src;
    ssize_t n;
    rows r;
    int dirfd, fd, orientation = -1;
    codec c;

    if (out && out_size)
        out[0] = '\0';
    if (!out || out_size < sizeof(".thumbnails/") + PREVIEW_NAME_LEN || !idx ||
        !hash)
        return MI_EINVAL;
    derived_name(name, hash, v->suffix);
    s = rows_of(idx, hash, &r);
    if (s != MI_OK)
        return s;
    if (r.n == 0) {
        s = mi_index_fail(idx, MI_ENOTFOUND, "no media with that hash");
        goto out;
    }
    if (r.kind == MI_KIND_VIDEO && !v->videos) {
        s = mi_index_fail(idx, MI_EUNSUPPORTED, "a video's preview is its thumbnail");
        goto out;
    }
    if (r.state == MI_THUMB_UNSUPPORTED) {
        s = mi_index_fail(idx, MI_EUNSUPPORTED, "no thumbnails for this type");
        goto out;
    }
    dirfd = mi_index_thumbs_fd(idx);
    if (dirfd < 0) {
        s = mi_index_fail(idx, MI_EIO, "no thumbnails folder");
        goto out;
    }
    if (jpeg_valid(dirfd, name))
        goto done;
    fd = open_unchanged(idx, &r, &which);
    if (fd < 0) {
        s = mi_index_fail(idx, MI_ENOTFOUND, "the file changed or is gone; rescan");
        goto out;
    }
    type = mi_media_from_name(r.paths[which]);
    n = pread(fd, head, sizeof(head), 0);
    /* The name's type goes on: a raw's bytes say TIFF, its name says raw
     * (decode_oriented reads the metadata by the bytes). */
    c = n > 0 ? classify(head, (size_t)n, type) : CODEC_BROKEN;
    if (c == CODEC_NONE) {
        close(fd);
        s = mi_index_fail(idx, MI_EUNSUPPORTED, "no thumbnails for this type");
        goto out;
    }
    /* A file that hangs the decoder holds one of its few processes for
     * the whole deadline: it is given one try, never one per request. */
    mi_index_preview_begin(idx, &slot, hash);
    if (jpeg_valid(dirfd, name)) {
        /* Made while this thread waited for it. */
        mi_index_preview_end(idx, &slot);
        close(fd);
        goto done;
    }
    if (known_failure(idx, hash, &r, &s, why, sizeof(why))) {
        mi_index_preview_end(idx, &slot);
        close(fd);
        mi_index_fail(idx, s, "no %s: %s", v == &large_view ? "large thumbnail"
                                                            : "preview", why);
        goto out;
    }
    s = src_of_fd(&src, fd);
    if (s == MI_OK)
        s = decode_oriented(&im, &src, type, &orientation, v->box, v->hbox,
                            mi_index_max_pixels(idx), mi_index_budget(idx),
                            mi_index_decoders(idx), why, sizeof(why));
    close(fd);
    if (s == MI_OK) {
        s = jpeg_of_image(&jpg, &jpg_len, &im, orientation, v->box, v->quality);
        mi_image_free(&im);
    }
    if (s == MI_OK)
        s = write_atomic(dirfd, name, jpg, jpg_len);
    free(jpg);
    if (s != MI_OK) {
        if (!why[0])
            mi_bufprintf(why, sizeof(why), "%s", mi_thumb_reason(s));
        /* The decoder's verdict on these bytes (broken, crashed, past its
         * deadline) stands for both views until the file is read again;
         * "too big" depends on the view's size, and I/O and memory
         * failures pass: those are tried again. */
        if (s == MI_EFORMAT)
            remember_failure(idx, hash, s, why);
        mi_index_preview_end(idx, &slot);
        mi_index_fail(idx, s, "no %s: %s", v == &large_view ? "large thumbnail"
                                                            : "preview", why);
        goto out;
    }
    mi_index_preview_end(idx, &slot);
done:
    mi_bufprintf(out, out_size, ".thumbnails/%s", name);
out:
    rows_free(&r);
    return s;
}

mi_status mi_preview_get(char *out, size_t out_size, mi_index *idx,
                         const uint8_t hash[MI_HASH_SIZE])
{
    return view_get(out, out_size, idx, hash, &preview_view);
}

mi_status mi_thumb_get_large(char *out, size_t out_size, mi_index *idx,
                             const uint8_t hash[MI_HASH_SIZE])
{
    return view_get(out, out_size, idx, hash, &large_view);
}

/* ---------------------------------------------------------------------- */
/* Sweeping                                                                */

/* A hash's first 8 bytes as a number that sorts as the bytes do. */
static uint64_t prefix_of(const uint8_t *h)
{
    uint64_t p = 0;

    for (int i = 0; i < 8; i++)
        p = p << 8 | h[i];
    return p;
}

static int prefix_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* The hash of a file made from a content (<hex><suffix>, the hex in lower
 * case as we write it); false for any other name. */
static bool made_file_hash(const char *name, uint8_t h[MI_HASH_SIZE])
{
    char hex[MI_HASH_HEX_LEN + 1];
    bool ours = false;

    if (strlen(name) < MI_HASH_HEX_LEN)
        return false;
    for (size_t k = 0; k < MI_ARRAY_LEN(made_suffixes); k++)
        ours |= strcmp(name + MI_HASH_HEX_LEN, made_suffixes[k]) == 0;
    if (!ours)
        return false;
    memcpy(hex, name, MI_HASH_HEX_LEN);
    hex[MI_HASH_HEX_LEN] = '\0';
    if (mi_hash_from_hex(h, hex) != MI_OK)
        return false;
    mi_hash_to_hex(hex, h);
    return memcmp(hex, name, MI_HASH_HEX_LEN) == 0;   /* not upper case */
}

/* Is `hash` in the catalog (a fresh read)? */
static bool indexed(mi_index *idx, const uint8_t hash[MI_HASH_SIZE])
{
    mi_conn *c;
    bool found = true;  /* when in doubt, keep */

    if (mi_index_reader(idx, &c) != MI_OK)
        return true;
    sqlite3_bind_blob(c->lookup, 1, hash, MI_HASH_SIZE, SQLITE_STATIC);
    found = sqlite3_step(c->lookup) != SQLITE_DONE;
    sqlite3_reset(c->lookup);
    sqlite3_clear_bindings(c->lookup);
    mi_index_release(idx, c);
    return found;
}

bool mi_thumb_remove(mi_index *idx, const uint8_t hash[MI_HASH_SIZE])
{
    int dirfd = mi_index_thumbs_fd(idx);
    bool any = false;

    for (size_t k = 0; dirfd >= 0 && k < MI_ARRAY_LEN(made_suffixes); k++) {
        char name[PREVIEW_NAME_LEN];

        derived_name(name, hash, made_suffixes[k]);
        any |= unlinkat(dirfd, name, 0) == 0;
    }
    return any;
}

/*
 * The files of contents no longer indexed go.  The catalog's contents are
 * held as 8-byte prefixes of their hashes, read in the catalog's order
 * (8 MB at 1,000,000 contents: the folder's two or three names per
 * content, sorted with glibc's qsort, took 33 MB); one read of the folder
 * then looks each file's prefix up, and a file whose prefix no content
 * has is looked at again under its content's lock: an upload of it may be
 * committing right now.  (Two contents sharing a prefix only keep an
 * orphan's files.)  The read also removes temporary files TEMP_MIN_AGE_S
 * old (left by a process that died while writing); *young says some were
 * younger.
 */
#define TEMP_MIN_AGE_S 600
mi_status mi_thumb_sweep(mi_index *idx, uint64_t *removed, bool *young)
{
    uint64_t *have = NULL;
    size_t n = 0, cap = 0;
    uint8_t h[MI_HASH_SIZE];
    struct dirent *de;
    mi_status s;
    mi_conn *c = NULL;
    time_t now = time(NULL);
    DIR *dir = NULL;
    int dirfd = mi_index_thumbs_fd(idx), fd, rc;

    *removed = 0;
    *young = false;
    if (dirfd < 0)
        return MI_OK;

    s = mi_index_reader(idx, &c);
    if (s != MI_OK)
        return s;
    while ((rc = sqlite3_step(c->hashes)) == SQLITE_ROW) {
        const void *ch = sqlite3_column_blob(c->hashes, 0);

        if (!ch || sqlite3_column_bytes(c->hashes, 0) != MI_HASH_SIZE)
            continue;
        s = mi_grow((void **)&have, &cap, n, sizeof(*have), 1024, SIZE_MAX / 16);
        if (s != MI_OK)
            break;
        have[n++] = prefix_of(ch);
    }
    if (s == MI_OK && rc != SQLITE_DONE)
        s = MI_EDB;
    sqlite3_reset(c->hashes);
    mi_index_release(idx, c);
    if (s != MI_OK)
        goto out;

    fd = dup(dirfd);
    dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (!dir) {
        if (fd >= 0)
            close(fd);
        s = MI_EIO;
        goto out;
    }
    rewinddir(dir);    /* the offset is shared with dirfd's other dups */
    while ((de = readdir(dir)) != NULL) {
        uint64_t p;

        if (strncmp(de->d_name, MI_THUMB_TEMP_PREFIX,
                    sizeof(MI_THUMB_TEMP_PREFIX) - 1) == 0) {
            /* Half written by a process that died, or being written now. */
            struct stat st;

            if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                (now - st.st_mtime < TEMP_MIN_AGE_S ||
                 unlinkat(dirfd, de->d_name, 0) != 0))
                *young = true;
            continue;
        }
        if (!made_file_hash(de->d_name, h))
            continue;
        p = prefix_of(h);
        if (n && bsearch(&p, have, n, sizeof(*have), prefix_cmp))
            continue;
        mi_index_store_lock(idx, h);
        /* In the trash: its tile is still shown there. */
        if (!indexed(idx, h) && !mi_trash_has(idx, h))
            *removed += mi_thumb_remove(idx, h);
        mi_index_store_unlock(idx, h);
    }
out:
    if (dir)
        closedir(dir);
    free(have);
    return s;
}
