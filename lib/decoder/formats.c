/*
 * formats.c - inside mi-decode: each heavy format through the library
 * made for it.  Every decoder fills the job's reply (sizes, metadata) and,
 * for MI_DOP_PIXELS, hands djob_pixels() an image no larger than it must
 * be: libheif's embedded thumbnail when it covers the box, libwebp's
 * scaled decode, libraw's embedded preview (never a demosaic), FFmpeg's
 * scaler straight from the poster frame.
 */
#include "decode.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libheif/heif.h>
#include <libheif/heif_plugin.h>
#include <libraw/libraw.h>
#include <tiffio.h>
#include <turbojpeg.h>
#include <webp/decode.h>
#include <webp/demux.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "mediaindex.h"

/* Sides above this are refused before anything is decoded. */
#define MAX_SIDE 65535

void decode_init(void)
{
    heif_init(NULL);
    TIFFSetErrorHandler(NULL);
    TIFFSetWarningHandler(NULL);
    av_log_set_level(AV_LOG_QUIET);
}

/* A size read from the file, before any arithmetic on it: no pixels (a
 * side of 0, or negative from a signed field) is not an image, and a side
 * over MAX_SIDE is refused.  Returns MI_OK or the job's failure. */
static int check_size(djob *j, int64_t w, int64_t h)
{
    if (w <= 0 || h <= 0)
        return djob_fail(j, MI_EFORMAT, "an image of %lld x %lld pixels",
                         (long long)w, (long long)h);
    if (w > MAX_SIDE || h > MAX_SIDE)
        return djob_fail(j, MI_ETOOBIG, "%lld x %lld pixels, over the decoder's limit",
                         (long long)w, (long long)h);
    return MI_OK;
}

/* The box-fitted size of a w x h image (never enlarged).  Callers have
 * passed the sizes through check_size(); a size that was not is 1 x 1
 * rather than a division by zero. */
static void fit(int w, int h, int box, int *tw, int *th)
{
    if (w < 1 || h < 1 || box < 1) {
        *tw = *th = 1;
        return;
    }
    if (w >= h) {
        *tw = w < box ? w : box;
        *th = (int)(((int64_t)h * *tw + w / 2) / w);
    } else {
        *th = h < box ? h : box;
        *tw = (int)(((int64_t)w * *th + h / 2) / h);
    }
    if (*tw < 1)
        *tw = 1;
    if (*th < 1)
        *th = 1;
}

static bool too_many(const djob *j, uint64_t w, uint64_t h)
{
    return w > MAX_SIDE || h > MAX_SIDE || w * h > j->req->max_pixels;
}

/* ---------------------------------------------------------------------- */
/* HEIF, HEIC, AVIF: libheif                                              */

static int64_t heif_pos(void *u)
{
    return (int64_t)((dfile *)u)->pos;
}

static int heif_read(void *data, size_t size, void *u)
{
    return dfile_read(u, data, size) == (long)size ? 0 : 1;
}

static int heif_seek(int64_t pos, void *u)
{
    return dfile_seek(u, pos, SEEK_SET) < 0 ? 1 : 0;
}

static enum heif_reader_grow_status heif_grow(int64_t size, void *u)
{
    return (uint64_t)size > ((dfile *)u)->size ? heif_reader_grow_status_size_beyond_eof
                                               : heif_reader_grow_status_size_reached;
}

/* A picture's pixels, over which FFmpeg refuses it before allocating it
 * (AVCodecContext.max_pixels): the request's cap, and never over 16384 x
 * 16384 (HEVC's levels stop at 8192 x 4320).  libheif gives a plugin no
 * context of its own: decode_heif sets it before decoding (mi-decode
 * does one job at a time; libheif's tile threads only read it). */
#define HEVC_MAX_PIXELS ((uint64_t)1 << 28)
static uint64_t hevc_max_pixels = HEVC_MAX_PIXELS;

/*
 * HEVC through FFmpeg's decoder, as a libheif decoder plugin registered
 * on each context (not process-wide): several times faster than
 * libde265, libheif's own, on phone photos (SIMD throughout).  libheif
 * hands it one image's NAL units, each after a 4-byte big-endian length
 * (the hvcC headers first, then the tile or image); they become one
 * Annex B packet.  The decoded picture goes back as libheif's decoder
 * gives it: YCbCr planes as coded, with the bitstream's colour
 * description (libheif puts the file's nclx box, when there is one, over
 * it).
 */
typedef struct hevc_dec {
    uint8_t *buf;         /* Annex B, AV_INPUT_BUFFER_PADDING_SIZE spare */
    size_t len, cap;
} hevc_dec;

static const struct heif_error hevc_ok = { heif_error_Ok, heif_suberror_Unspecified,
                                           "Success" };

static struct heif_error hevc_err(enum heif_error_code code, const char *why)
{
    struct heif_error e = { code, heif_suberror_Unspecified, why };
    return e;
}

static const char *hevc_name(void)
{
    return "FFmpeg HEVC decoder (mi-decode)";
}

static int hevc_supports(enum heif_compression_format f)
{
    return f == heif_compression_HEVC ? 200 : 0;   /* over libde265's 100 */
}

static struct heif_error hevc_new(void **out)
{
    *out = calloc(1, sizeof(hevc_dec));
    return *out ? hevc_ok : hevc_err(heif_error_Memory_allocation_error, "out of memory");
}

static void hevc_free(void *u)
{
    hevc_dec *d = u;

    if (d)
        free(d->buf);
    free(d);
}

static struct heif_error hevc_push(void *u, const void *data, size_t size)
{
    hevc_dec *d = u;
    const uint8_t *p = data;
    size_t at = 0;

    while (at < size) {
        size_t n, need;
        if (size - at < 4)
            return hevc_err(heif_error_Decoder_plugin_error, "a NAL unit cut short");
        n = (size_t)p[at] << 24 | (size_t)p[at + 1] << 16 | (size_t)p[at + 2] << 8 | p[at + 3];
        at += 4;
        if (n > size - at)
            return hevc_err(heif_error_Decoder_plugin_error, "a NAL unit cut short");
        /* A packet's size is an int. */
        need = d->len + 4 + n + AV_INPUT_BUFFER_PADDING_SIZE;
        if (n > INT_MAX / 2 || need > INT_MAX / 2)
            return hevc_err(heif_error_Invalid_input, "an image too large");
        if (need > d->cap) {
            size_t cap = need + need / 2;
            uint8_t *b = realloc(d->buf, cap);
            if (!b)
                return hevc_err(heif_error_Memory_allocation_error, "out of memory");
            d->buf = b;
            d->cap = cap;
        }
        memcpy(d->buf + d->len, "\0\0\0\1", 4);
        memcpy(d->buf + d->len + 4, p + at, n);
        d->len += 4 + n;
        at += n;
    }
    return hevc_ok;
}

/* The decoded frame as libheif's image.  Planar GBR is what FFmpeg makes
 * of 4:4:4 coded with matrix_coefficients 0 (identity): its planes are
 * the coded ones in order (G, B, R as Y, Cb, Cr), which libheif turns
 * back by the same nclx matrix 0, as it does libde265's. */
static struct heif_error hevc_image(const AVFrame *fr, struct heif_image **out)
{
    static const enum heif_channel ch[3] = { heif_channel_Y, heif_channel_Cb,
                                             heif_channel_Cr };
    const AVPixFmtDescriptor *pd = av_pix_fmt_desc_get(fr->format);
    struct heif_color_profile_nclx *nclx;
    enum heif_chroma chroma;
    struct heif_error e;
    int planes, depth, bytes;

    bool gbr = pd && (pd->flags & AV_PIX_FMT_FLAG_RGB) &&
               (pd->flags & AV_PIX_FMT_FLAG_PLANAR) && pd->nb_components == 3;

    if (!pd || (pd->flags & (AV_PIX_FMT_FLAG_BE | AV_PIX_FMT_FLAG_PAL |
                             AV_PIX_FMT_FLAG_BITSTREAM | AV_PIX_FMT_FLAG_HWACCEL |
                             AV_PIX_FMT_FLAG_ALPHA)) ||
        ((pd->flags & AV_PIX_FMT_FLAG_RGB) && !gbr) ||
        (pd->nb_components != 1 && pd->nb_components != 3) ||
        fr->width <= 0 || fr->height <= 0)
        return hevc_err(heif_error_Unsupported_feature, "a picture format libheif does not take");
    /* The size the stream says, which libheif has not checked (only the
     * file's ispe): a tile or an image, within hevc_max_pixels. */
    if ((uint64_t)fr->width * (uint64_t)fr->height > hevc_max_pixels)
        return hevc_err(heif_error_Invalid_input, "an HEVC picture too large");
    planes = pd->nb_components;
    depth = pd->comp[0].depth;
    bytes = depth > 8 ? 2 : 1;
    for (int c = 0; c < planes; c++)
        if ((!gbr && pd->comp[c].plane != c) || pd->comp[c].depth != depth ||
            pd->comp[c].step != bytes || pd->comp[c].shift != 0 || depth > 16)
            return hevc_err(heif_error_Unsupported_feature, "a picture format libheif does not take");
    if (planes == 1)
        chroma = heif_chroma_monochrome;
    else if (pd->log2_chroma_w == 1 && pd->log2_chroma_h == 1)
        chroma = heif_chroma_420;
    else if (pd->log2_chroma_w == 1 && pd->log2_chroma_h == 0)
        chroma = heif_chroma_422;
    else if (pd->log2_chroma_w == 0 && pd->log2_chroma_h == 0)
        chroma = heif_chroma_444;
    else
        return hevc_err(heif_error_Unsupported_feature, "a chroma layout libheif does not take");
    e = heif_image_create(fr->width, fr->height,
                          planes == 1 ? heif_colorspace_monochrome : heif_colorspace_YCbCr,
                          chroma, out);
    if (e.code != heif_error_Ok)
        return e;
    for (int c = 0; c < planes; c++) {
        int w = c ? AV_CEIL_RSHIFT(fr->width, pd->log2_chroma_w) : fr->width;
        int h = c ? AV_CEIL_RSHIFT(fr->height, pd->log2_chroma_h) : fr->height;
        uint8_t *dst;
        int stride;
        e = heif_image_add_plane(*out, ch[c], w, h, depth);
        if (e.code != heif_error_Ok)
            break;
        dst = heif_image_get_plane(*out, ch[c], &stride);
        if (!dst || stride <= 0 || fr->linesize[c] <= 0) {
            e = hevc_err(heif_error_Decoder_plugin_error, "no plane");
            break;
        }
        for (int y = 0; y < h; y++)
            memcpy(dst + (size_t)y * (size_t)stride,
                   fr->data[c] + (size_t)y * (size_t)fr->linesize[c],
                   (size_t)w * (size_t)bytes);
    }
    if (e.code != heif_error_Ok) {
        heif_image_release(*out);
        *out = NULL;
        return e;
    }
    /* The bitstream's colour description, numbered as ISO/IEC 23091-4
     * numbers it, as FFmpeg does: what libheif's libde265 plugin gives. */
    nclx = heif_nclx_color_profile_alloc();
    if (nclx) {
        heif_nclx_color_profile_set_color_primaries(nclx, (uint16_t)fr->color_primaries);
        heif_nclx_color_profile_set_transfer_characteristics(nclx, (uint16_t)fr->color_trc);
        heif_nclx_color_profile_set_matrix_coefficients(nclx, (uint16_t)fr->colorspace);
        nclx->full_range_flag = fr->color_range == AVCOL_RANGE_JPEG;
        heif_image_set_nclx_color_profile(*out, nclx);
        heif_nclx_color_profile_free(nclx);
    }
    return hevc_ok;
}

static struct heif_error hevc_decode(void *u, struct heif_image **out)
{
    hevc_dec *d = u;
    const AVCodec *codec = avcodec_find_decoder(AV_CODEC_ID_HEVC);
    AVCodecContext *cc = NULL;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *fr = av_frame_alloc();
    struct heif_error e = hevc_err(heif_error_Decoder_plugin_error,
                                   "FFmpeg could not decode the HEVC image");

    *out = NULL;
    if (!d->buf) {
        e = hevc_err(heif_error_Invalid_input, "no HEVC data");
        goto out;
    }
    if (!pkt || !fr || !codec || !(cc = avcodec_alloc_context3(codec))) {
        e = hevc_err(heif_error_Memory_allocation_error, "out of memory");
        goto out;
    }
    cc->thread_count = 1;        /* libheif decodes tiles in parallel */
    cc->max_pixels = (int64_t)hevc_max_pixels;
    if (avcodec_open2(cc, codec, NULL) < 0)
        goto out;
    memset(d->buf + d->len, 0, AV_INPUT_BUFFER_PADDING_SIZE);
    pkt->data = d->buf;
    pkt->size = (int)d->len;
    if (avcodec_send_packet(cc, pkt) < 0)
        goto out;
    avcodec_send_packet(cc, NULL);       /* the end: the picture out */
    if (avcodec_receive_frame(cc, fr) == 0)
        e = hevc_image(fr, out);
out:
    avcodec_free_context(&cc);
    av_frame_free(&fr);
    av_packet_free(&pkt);
    return e;
}

static const struct heif_decoder_plugin hevc_plugin = {
    .plugin_api_version = 3,
    .get_plugin_name = hevc_name,
    .does_support_format = hevc_supports,
    .new_decoder = hevc_new,
    .free_decoder = hevc_free,
    .push_data = hevc_push,
    .decode_image = hevc_decode,
    .id_name = "mi-ffmpeg-hevc",
};

/*
 * The primary image's geometric transforms (irot, imir), in the order
 * the file lists them, read from the file's own boxes: libheif 1.15 turns
 * and mirrors the whole decoded image (byte by byte, down the columns:
 * a third of the time of a 12 MP portrait photo), so the decoder turns
 * the small answer instead.  ops[i]: 1..3 quarter turns counter-clockwise
 * (libheif's rotate_ccw), 4: a mirror left to right (imir axis 1, as
 * libheif reads it), 5: top to bottom (axis 0).  Returns the count, or -1
 * when anything is unclear (a crop, a box cut short, several ipma): then
 * libheif applies them as before.
 */
#define HEIF_MAX_OPS 8

typedef struct bx {
    const uint8_t *p;     /* the payload */
    uint64_t n;
    char type[5];
} bx;

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The box at *at in [base, base + len): its payload; *at moves past it.
 * False at the end or on a box that does not fit. */
static bool next_box(const uint8_t *base, uint64_t len, uint64_t *at, bx *b)
{
    uint64_t size, head = 8;

    if (len - *at < 8)
        return false;
    size = be32(base + *at);
    memcpy(b->type, base + *at + 4, 4);
    b->type[4] = '\0';
    if (size == 1) {
        if (len - *at < 16)
            return false;
        size = (uint64_t)be32(base + *at + 8) << 32 | be32(base + *at + 12);
        head = 16;
    } else if (size == 0) {
        size = len - *at;
    }
    if (size < head || size > len - *at)
        return false;
    b->p = base + *at + head;
    b->n = size - head;
    *at += size;
    return true;
}

static int heif_ops(dfile *f, uint32_t item, uint8_t ops[HEIF_MAX_OPS])
{
    const uint8_t *map = dfile_map(f);
    bx b, meta = { NULL, 0, "" }, ipco = { NULL, 0, "" }, ipma = { NULL, 0, "" };
    uint64_t at = 0, k, count;
    int nipma = 0, n = 0;

    if (!map)
        return -1;
    /* One meta box, one iprp in it: a file with more is read libheif's
     * way (which of them it keeps is its business). */
    while (next_box(map, f->size, &at, &b))
        if (!strcmp(b.type, "meta")) {
            if (meta.p)
                return -1;
            meta = b;
        }
    if (!meta.p || meta.n < 4)
        return -1;
    at = 4;                                   /* version, flags */
    while (next_box(meta.p, meta.n, &at, &b)) {
        uint64_t in = 0;
        bx c;
        if (strcmp(b.type, "iprp"))
            continue;
        if (ipco.p || ipma.p)
            return -1;
        while (next_box(b.p, b.n, &in, &c)) {
            if (!strcmp(c.type, "ipco") && !ipco.p)
                ipco = c;
            else if (!strcmp(c.type, "ipma") && nipma++ == 0)
                ipma = c;
        }
    }
    if (!ipco.p || !ipma.p || nipma != 1 || ipma.n < 8)
        return -1;
    /* ipma: version, flags (bit 0: 15-bit indices), entries. */
    {
        unsigned version = ipma.p[0], wide = ipma.p[3] & 1;
        uint64_t idlen = version < 1 ? 2 : 4, per = wide ? 2 : 1;
        count = be32(ipma.p + 4);
        at = 8;
        for (k = 0; k < count; k++) {
            uint32_t id;
            unsigned na;
            if (ipma.n - at < idlen + 1)
                return -1;
            id = idlen == 2 ? (uint32_t)ipma.p[at] << 8 | ipma.p[at + 1] : be32(ipma.p + at);
            na = ipma.p[at + idlen];
            at += idlen + 1;
            if (ipma.n - at < (uint64_t)na * per)
                return -1;
            if (id != item) {
                at += (uint64_t)na * per;
                continue;
            }
            for (unsigned a = 0; a < na; a++, at += per) {
                unsigned idx = wide ? ((unsigned)ipma.p[at] << 8 | ipma.p[at + 1]) & 0x7fff
                                    : ipma.p[at] & 0x7f;
                uint64_t in = 0;
                unsigned i = 0;
                bx prop;
                bool found = false;
                if (idx == 0)
                    continue;
                while (next_box(ipco.p, ipco.n, &in, &prop))
                    if (++i == idx) {
                        found = true;
                        break;
                    }
                if (!found)
                    return -1;
                if (!strcmp(prop.type, "clap"))
                    return -1;                /* cropped: libheif's way */
                if (strcmp(prop.type, "irot") && strcmp(prop.type, "imir"))
                    continue;
                if (prop.n < 1 || n == HEIF_MAX_OPS)
                    return -1;
                if (prop.type[1] == 'r') {
                    if (prop.p[0] & 3)
                        ops[n++] = prop.p[0] & 3;
                } else {
                    ops[n++] = (prop.p[0] & 1) ? 4 : 5;
                }
            }
            return n;                         /* libheif reads the first entry */
        }
    }
    return 0;
}

/*
 * The canvases libheif 1.15 allocates for derived images.  A 'grid' or
 * an 'iovl' item is decoded into an image of the size its own data (the
 * descriptor) says, checked only against the context's limit on a side,
 * never against the ispe that the handle reports and decode_heif checks:
 * a 1 KB file whose ispe says 64 x 64 and whose grid says 16489 x 28001
 * made libheif allocate gigabytes.  1.15 has no API to read an item's
 * type or data (heif_items.h came in 1.18), so the descriptors are read
 * here, as libheif 1.15 finds them: each meta box's first iinf, iloc and
 * idat, iloc parsed field for field as Box_iloc::parse does (an extent
 * index only in version 2, sizes other than 4 or 8 read as none), the
 * data through construction method 0 (the file) or 1 (idat).  Every
 * derived item is checked, whichever image is decoded, except `skip`
 * (the primary image, when an embedded thumbnail is decoded instead).
 * An item whose descriptor cannot be read is one libheif cannot decode
 * either.  Returns MI_OK or the job's failure (MI_ETOOBIG).
 */
#define HEIF_MAX_DERIVED 64

typedef struct derived {
    uint32_t id;
    bool grid;            /* else iovl */
} derived;

/* n (0, 2, 4 or 8) big-endian bytes at *at in b, *at moved past them;
 * 0 and *bad set when the box ends first. */
static uint64_t take(const bx *b, uint64_t *at, unsigned n, bool *bad)
{
    uint64_t v = 0;

    if (*at > b->n || b->n - *at < n) {
        *bad = true;
        *at = b->n;
        return 0;
    }
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | b->p[*at + i];
    *at += n;
    return v;
}

/* The first child of type `type` of a box's payload from `at`. */
static bool child(const bx *parent, uint64_t at, const char *type, bx *out)
{
    if (at > parent->n)
        return false;
    while (next_box(parent->p, parent->n, &at, out))
        if (!strcmp(out->type, type))
            return true;
    return false;
}

/* The output size in the first bytes of a derived item's data (len of
 * them); false when they are too few for libheif to decode it. */
static bool derived_size(const derived *d, const uint8_t *p, size_t len, uint64_t *w,
                         uint64_t *h)
{
    unsigned field = (len > 1 && (p[1] & 1)) ? 4 : 2;
    size_t at = d->grid ? 4 : 2 + 4 * 2;         /* iovl: past 4 fill values */

    if (len < at + 2 * field || (!d->grid && p[0] != 0))
        return false;
    *w = *h = 0;
    for (unsigned i = 0; i < field; i++) {
        *w = *w << 8 | p[at + i];
        *h = *h << 8 | p[at + field + i];
    }
    return true;
}

static int heif_derived_check(djob *j, const bx *meta, bool skip_one, uint32_t skip)
{
    const uint8_t *map = j->file->map;
    derived d[HEIF_MAX_DERIVED];
    bx iinf, iloc, idat, infe;
    uint64_t at, count;
    bool bad = false, has_idat;
    int nd = 0;

    if (!child(meta, 4, "iinf", &iinf) || !child(meta, 4, "iloc", &iloc))
        return MI_OK;                      /* no items: nothing derived */
    has_idat = child(meta, 4, "idat", &idat);
    at = iinf.n >= 1 && iinf.p[0] == 0 ? 6 : 8;  /* version, flags, count */
    while (at <= iinf.n && next_box(iinf.p, iinf.n, &at, &infe)) {
        uint64_t in = 4, id;
        unsigned version = infe.n ? infe.p[0] : 0;
        if (strcmp(infe.type, "infe") || version < 2)
            continue;
        id = take(&infe, &in, version == 2 ? 2 : 4, &bad);
        take(&infe, &in, 2, &bad);                 /* protection index */
        if (bad || infe.n - in < 4) {
            bad = false;
            continue;
        }
        if (memcmp(infe.p + in, "grid", 4) && memcmp(infe.p + in, "iovl", 4))
            continue;
        if (skip_one && id == skip)
            continue;
        if (nd == HEIF_MAX_DERIVED)
            return djob_fail(j, MI_EUNSUPPORTED, "over %d derived images", HEIF_MAX_DERIVED);
        d[nd].id = (uint32_t)id;
        d[nd++].grid = !memcmp(infe.p + in, "grid", 4);
    }
    if (!nd)
        return MI_OK;

    /* iloc, as libheif 1.15 reads it. */
    {
        unsigned version = iloc.n ? iloc.p[0] : 0, sizes;
        unsigned off_size, len_size, base_size, idx_size;
        at = 4;
        sizes = (unsigned)take(&iloc, &at, 2, &bad);
        off_size = sizes >> 12 & 0xf;
        len_size = sizes >> 8 & 0xf;
        base_size = sizes >> 4 & 0xf;
        idx_size = version > 1 ? (sizes & 0xf) : 0;
        off_size = off_size == 4 || off_size == 8 ? off_size : 0;
        len_size = len_size == 4 || len_size == 8 ? len_size : 0;
        base_size = base_size == 4 || base_size == 8 ? base_size : 0;
        idx_size = idx_size == 4 || idx_size == 8 ? idx_size : 0;
        count = take(&iloc, &at, version < 2 ? 2 : 4, &bad);
        for (uint64_t k = 0; k < count && !bad; k++) {
            uint32_t id = (uint32_t)take(&iloc, &at, version < 2 ? 2 : 4, &bad);
            unsigned method = version >= 1 ? (unsigned)take(&iloc, &at, 2, &bad) & 0xf : 0;
            uint64_t base, extents;
            uint8_t data[32];
            size_t got = 0;
            int which = -1;
            take(&iloc, &at, 2, &bad);                 /* data reference index */
            base = take(&iloc, &at, base_size, &bad);
            extents = take(&iloc, &at, 2, &bad);
            for (int i = 0; i < nd; i++)
                if (d[i].id == id)
                    which = i;
            for (uint64_t e = 0; e < extents && !bad; e++) {
                uint64_t off, len, n;
                take(&iloc, &at, idx_size, &bad);
                off = take(&iloc, &at, off_size, &bad);
                len = take(&iloc, &at, len_size, &bad);
                if (which < 0 || bad || got == sizeof data || off > UINT64_MAX - base)
                    continue;
                n = len < sizeof data - got ? len : sizeof data - got;
                off += base;
                if (method == 0 && off <= j->file->size && j->file->size - off >= n)
                    memcpy(data + got, map + off, (size_t)n);
                else if (method == 1 && has_idat && off <= idat.n && idat.n - off >= n)
                    memcpy(data + got, idat.p + off, (size_t)n);
                else
                    continue;       /* libheif cannot read it either */
                got += (size_t)n;
            }
            for (int i = 0; i < nd && !bad; i++) {
                uint64_t w, h;
                if (d[i].id != id || !derived_size(&d[i], data, got, &w, &h))
                    continue;
                if (too_many(j, w, h))
                    return djob_fail(j, MI_ETOOBIG,
                                     "a %s image of %llu x %llu pixels, over the decoder's limit",
                                     d[i].grid ? "grid" : "overlay", (unsigned long long)w,
                                     (unsigned long long)h);
            }
        }
    }
    return MI_OK;
}

/* Every top-level meta box's derived items (libheif reads the first). */
static int heif_derived(djob *j, bool skip_one, uint32_t skip)
{
    const uint8_t *map = dfile_map(j->file);
    uint64_t at = 0;
    bx b;

    if (!map)
        return djob_fail(j, MI_EIO, "the file cannot be mapped");
    while (next_box(map, j->file->size, &at, &b))
        if (!strcmp(b.type, "meta") && heif_derived_check(j, &b, skip_one, skip) != MI_OK)
            return j->res->status;
    return MI_OK;
}

/* Apply ops to the answer's pixels, as libheif would have to the image. */
static int heif_apply_ops(djob *j, const uint8_t *ops, int n)
{
    for (int i = 0; i < n; i++) {
        int w = (int)j->res->w, h = (int)j->res->h, ow = w, oh = h;
        const uint32_t *in = (const uint32_t *)j->px;
        uint32_t *out;
        if (ops[i] == 1 || ops[i] == 3) {
            ow = h;
            oh = w;
        }
        out = malloc((size_t)w * (size_t)h * 4);
        if (!out)
            return djob_fail(j, MI_ENOMEM, "out of memory for the pixels");
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                int sx, sy;
                switch (ops[i]) {
                case 1: sx = w - 1 - y; sy = x; break;              /* 90 ccw */
                case 2: sx = w - 1 - x; sy = h - 1 - y; break;
                case 3: sx = y; sy = h - 1 - x; break;              /* 270 ccw */
                case 4: sx = w - 1 - x; sy = y; break;
                default: sx = x; sy = h - 1 - y; break;
                }
                out[(size_t)y * (size_t)ow + (size_t)x] = in[(size_t)sy * (size_t)w + (size_t)sx];
            }
        free(j->px);
        j->px = (uint8_t *)out;
        j->res->w = (uint32_t)ow;
        j->res->h = (uint32_t)oh;
    }
    return MI_OK;
}

/* Planar RGB (what libheif gives without converting once more to
 * interleaved; 8 bits, or up to 16 in two bytes when libheif keeps a
 * deep image deep) shrunk by whole blocks to no less than the fit into
 * 2 * box, interleaved, for djob_pixels to finish. */
static int heif_planes(djob *j, const struct heif_image *img)
{
    static const enum heif_channel ch[3] = { heif_channel_R, heif_channel_G,
                                             heif_channel_B };
    const uint8_t *pl[3];
    size_t st[3];
    int w = heif_image_get_width(img, heif_channel_R);
    int h = heif_image_get_height(img, heif_channel_R);
    int depth = heif_image_get_bits_per_pixel_range(img, heif_channel_R);
    int tw, th, fx, fy, ow, oh, rc;
    uint64_t top = ((uint64_t)1 << (depth > 0 && depth <= 16 ? depth : 8)) - 1;
    uint8_t *mid;

    if (w <= 0 || h <= 0 || depth < 8 || depth > 16)
        return djob_fail(j, MI_EFORMAT, "libheif gave no pixels");
    for (int c = 0; c < 3; c++) {
        int s = 0;
        pl[c] = heif_image_get_plane_readonly(img, ch[c], &s);
        if (!pl[c] || s <= 0 || heif_image_get_bits_per_pixel_range(img, ch[c]) != depth ||
            heif_image_get_width(img, ch[c]) != w || heif_image_get_height(img, ch[c]) != h ||
            (size_t)s < (size_t)w * (depth > 8 ? 2 : 1))
            return djob_fail(j, MI_EFORMAT, "libheif gave no pixels");
        st[c] = (size_t)s;
    }
    /* One factor for both directions: djob_pixels fits what it is given
     * as the image's own shape. */
    fit(w, h, 2 * (int)j->req->box, &tw, &th);
    fx = fy = w / tw < h / th ? w / tw : h / th;
    ow = (w + fx - 1) / fx;
    oh = (h + fy - 1) / fy;
    mid = malloc((size_t)ow * (size_t)oh * 3);
    if (!mid)
        return djob_fail(j, MI_ENOMEM, "out of memory for the pixels");
    for (int oy = 0; oy < oh; oy++) {
        int y1 = oy * fy + fy < h ? oy * fy + fy : h;
        for (int c = 0; c < 3; c++) {
            for (int ox = 0; ox < ow; ox++) {
                int x1 = ox * fx + fx < w ? ox * fx + fx : w;
                uint64_t sum = 0, cnt = (uint64_t)(x1 - ox * fx) * (uint64_t)(y1 - oy * fy);
                for (int y = oy * fy; y < y1; y++) {
                    const uint8_t *p = pl[c] + (size_t)y * st[c];
                    if (depth == 8) {
                        for (int x = ox * fx; x < x1; x++)
                            sum += p[x];
                    } else {
                        for (int x = ox * fx; x < x1; x++) {
                            uint16_t v;
                            memcpy(&v, p + (size_t)x * 2, 2);
                            sum += v <= top ? v : top;
                        }
                    }
                }
                /* The block's mean, from 0..top to 0..255, rounded. */
                mid[((size_t)oy * (size_t)ow + (size_t)ox) * 3 + (size_t)c] =
                    (uint8_t)((sum * 255 + cnt * top / 2) / (cnt * top));
            }
        }
    }
    rc = djob_pixels(j, mid, ow, oh, (size_t)ow * 3, 3);
    free(mid);
    return rc;
}

int decode_heif(djob *j)
{
    static const struct heif_reader reader = { 1, heif_pos, heif_read,
                                               heif_seek, heif_grow };
    struct heif_context *ctx = heif_context_alloc();
    struct heif_image_handle *h = NULL, *use = NULL;
    struct heif_decoding_options *opt = NULL;
    struct heif_image *img = NULL;
    struct heif_error e;
    const uint8_t *plane;
    uint8_t ops[HEIF_MAX_OPS];
    int w, hh, tw, th, stride, n, nops = -1;
    bool alpha, turned = false;

    if (!ctx)
        return djob_fail(j, MI_ENOMEM, "out of memory");
    heif_context_set_maximum_image_size_limit(ctx, MAX_SIDE);
    hevc_max_pixels = j->req->max_pixels < HEVC_MAX_PIXELS ? j->req->max_pixels : HEVC_MAX_PIXELS;
    e = heif_register_decoder(ctx, &hevc_plugin);
    if (e.code == heif_error_Ok)
        e = heif_context_read_from_reader(ctx, &reader, j->file, NULL);
    if (e.code == heif_error_Ok)
        e = heif_context_get_primary_image_handle(ctx, &h);
    if (e.code != heif_error_Ok) {
        djob_fail(j, MI_EFORMAT, "not a HEIF image libheif can read: %s", e.message);
        goto out;
    }
    /* Sizes after HEIF's own transforms (irot, imir, clap), which the
     * decoded pixels have too: EXIF's orientation does not apply. */
    w = heif_image_handle_get_width(h);
    hh = heif_image_handle_get_height(h);
    if (check_size(j, w, hh) != MI_OK)
        goto out;
    j->res->full_w = (uint32_t)w;
    j->res->full_h = (uint32_t)hh;
    j->res->orientation = 1;
    dtext(j->res->codec, sizeof j->res->codec,
          heif_image_handle_get_luma_bits_per_pixel(h) > 8 ? "heif-10bit" : "heif");
    if (j->req->op != MI_DOP_PIXELS)
        goto out;

    /* The smallest embedded thumbnail that covers twice the box (what
     * djob_pixels answers with), else the smallest that covers the box,
     * else the image itself.  A thumbnail no smaller than the image, or
     * of a size it may not have, is not one. */
    use = h;
    n = heif_image_handle_get_number_of_thumbnails(h);
    for (int pass = 2; pass >= 1 && use == h && n > 0 && n <= 16; pass--) {
        heif_item_id ids[16];
        int got = heif_image_handle_get_list_of_thumbnail_IDs(h, ids, n);
        fit(w, hh, pass * (int)j->req->box, &tw, &th);
        for (int i = 0; i < got; i++) {
            struct heif_image_handle *t = NULL;
            int t_w, t_h;
            if (heif_image_handle_get_thumbnail(h, ids[i], &t).code != heif_error_Ok)
                continue;
            t_w = heif_image_handle_get_width(t);
            t_h = heif_image_handle_get_height(t);
            if (t_w >= tw && t_h >= th && t_w <= w && t_h <= hh &&
                !too_many(j, (uint64_t)t_w, (uint64_t)t_h) &&
                (use == h || t_w < heif_image_handle_get_width(use))) {
                if (use != h)
                    heif_image_handle_release(use);
                use = t;
            } else {
                heif_image_handle_release(t);
            }
        }
    }
    if (use == h && too_many(j, (uint64_t)w, (uint64_t)hh)) {
        djob_fail(j, MI_ETOOBIG, "%d x %d pixels, over the decoder's limit", w, hh);
        goto out;
    }
    /* The canvases of derived images, which the sizes above are not
     * (see heif_derived).  (Not libheif's limit on a side brought down to
     * the ispe's: Debian's 1.15 applies it to coded images too, whose
     * decoded size is the coded one, padded past the ispe.) */
    {
        heif_item_id pid;
        bool thumb = use != h && heif_context_get_primary_image_ID(ctx, &pid).code == heif_error_Ok;
        if (heif_derived(j, thumb, thumb ? pid : 0) != MI_OK)
            goto out;
    }
    opt = heif_decoding_options_alloc();
    if (!opt) {
        djob_fail(j, MI_ENOMEM, "out of memory");
        goto out;
    }
    opt->convert_hdr_to_8bit = 1;
    /* The image itself (not a thumbnail, small enough to turn as it is):
     * decoded as stored when its transforms are known to be only turns
     * and mirrors that give the size libheif reports, then turned small. */
    if (use == h) {
        heif_item_id id;
        int iw = heif_image_handle_get_ispe_width(h);
        int ih = heif_image_handle_get_ispe_height(h);
        if (heif_context_get_primary_image_ID(ctx, &id).code == heif_error_Ok)
            nops = heif_ops(j->file, id, ops);
        for (int i = 0; i < nops; i++)
            if (ops[i] == 1 || ops[i] == 3)
                turned = !turned;
        if (nops >= 0 && (turned ? ih : iw) == w && (turned ? iw : ih) == hh)
            opt->ignore_transformations = 1;
        else
            nops = -1;
    }
    /* Without alpha, planar RGB: libheif's interleaving pass over the
     * whole image is skipped (the block shrink reads the planes). */
    alpha = heif_image_handle_has_alpha_channel(use) != 0;
    e = alpha ? heif_decode_image(use, &img, heif_colorspace_RGB,
                                  heif_chroma_interleaved_RGBA, opt)
              : heif_decode_image(use, &img, heif_colorspace_RGB, heif_chroma_444, opt);
    if (e.code != heif_error_Ok) {
        djob_fail(j, e.subcode == heif_suberror_Security_limit_exceeded ? MI_ETOOBIG
                     : e.code == heif_error_Memory_allocation_error ? MI_ENOMEM : MI_EFORMAT,
                  "libheif could not decode the image: %s", e.message);
        goto out;
    }
    /* djob_pixels fits into the image as decoded (before the turns). */
    if (nops > 0 && turned) {
        j->res->full_w = (uint32_t)hh;
        j->res->full_h = (uint32_t)w;
    }
    if (alpha) {
        plane = heif_image_get_plane_readonly(img, heif_channel_interleaved, &stride);
        if (!plane || stride <= 0)
            djob_fail(j, MI_EFORMAT, "libheif gave no pixels");
        else
            djob_pixels(j, plane, heif_image_get_width(img, heif_channel_interleaved),
                        heif_image_get_height(img, heif_channel_interleaved),
                        (size_t)stride, 4);
    } else {
        heif_planes(j, img);
        j->res->flags &= ~MI_DRES_ALPHA;
    }
    j->res->full_w = (uint32_t)w;
    j->res->full_h = (uint32_t)hh;
    if (j->res->status == MI_OK && nops > 0)
        heif_apply_ops(j, ops, nops);
out:
    heif_decoding_options_free(opt);
    if (img)
        heif_image_release(img);
    if (use && use != h)
        heif_image_handle_release(use);
    if (h)
        heif_image_handle_release(h);
    heif_context_free(ctx);
    return j->res->status;
}

/* ---------------------------------------------------------------------- */
/* WebP: libwebp, scaled while it decodes; an animation's first frame     */

int decode_webp(djob *j)
{
    const uint8_t *map = dfile_map(j->file);
    WebPDecoderConfig cfg;
    WebPData data;
    WebPDemuxer *dmx;
    WebPIterator it;
    int tw, th;

    if (!map)
        return djob_fail(j, MI_EIO, "the file cannot be mapped");
    data.bytes = map;
    data.size = (size_t)j->file->size;
    dmx = WebPDemux(&data);
    if (!dmx)
        return djob_fail(j, MI_EFORMAT, "not a WebP image libwebp can read");
    if (!WebPDemuxGetFrame(dmx, 1, &it)) {
        WebPDemuxDelete(dmx);
        return djob_fail(j, MI_EFORMAT, "a WebP image without a frame");
    }
    if (check_size(j, WebPDemuxGetI(dmx, WEBP_FF_CANVAS_WIDTH),
                   WebPDemuxGetI(dmx, WEBP_FF_CANVAS_HEIGHT)) != MI_OK)
        goto out;
    j->res->full_w = WebPDemuxGetI(dmx, WEBP_FF_CANVAS_WIDTH);
    j->res->full_h = WebPDemuxGetI(dmx, WEBP_FF_CANVAS_HEIGHT);
    dtext(j->res->codec, sizeof j->res->codec, "webp");
    if (j->req->op != MI_DOP_PIXELS)
        goto out;
    if (!WebPInitDecoderConfig(&cfg) ||
        WebPGetFeatures(it.fragment.bytes, it.fragment.size, &cfg.input) != VP8_STATUS_OK) {
        djob_fail(j, MI_EFORMAT, "a WebP frame libwebp cannot read");
        goto out;
    }
    /* (libwebp scales while it decodes: the frame is never held whole,
     * so only the sides are limited, not the pixel count.) */
    if (check_size(j, cfg.input.width, cfg.input.height) != MI_OK)
        goto out;
    /* Decode straight to twice the box (never enlarged). */
    fit(cfg.input.width, cfg.input.height, 2 * (int)j->req->box, &tw, &th);
    cfg.options.use_scaling = 1;
    cfg.options.scaled_width = tw;
    cfg.options.scaled_height = th;
    cfg.output.colorspace = MODE_RGBA;
    if (WebPDecode(it.fragment.bytes, it.fragment.size, &cfg) != VP8_STATUS_OK) {
        djob_fail(j, MI_EFORMAT, "libwebp could not decode the image");
        goto out;
    }
    djob_pixels(j, cfg.output.u.RGBA.rgba, cfg.output.width, cfg.output.height,
                (size_t)cfg.output.u.RGBA.stride, 4);
    if (!cfg.input.has_alpha)
        j->res->flags &= ~MI_DRES_ALPHA;
    WebPFreeDecBuffer(&cfg.output);
out:
    WebPDemuxReleaseIterator(&it);
    WebPDemuxDelete(dmx);
    return j->res->status;
}

/* ---------------------------------------------------------------------- */
/* TIFF: libtiff, first page, pixels in stored order + its orientation    */

static tmsize_t tiff_read(thandle_t u, void *buf, tmsize_t n)
{
    return dfile_read(u, buf, (size_t)n);
}

static tmsize_t tiff_write(thandle_t u, void *buf, tmsize_t n)
{
    return -1;
}

static toff_t tiff_seek(thandle_t u, toff_t off, int whence)
{
    int64_t to = dfile_seek(u, (int64_t)off, whence);
    return to < 0 ? (toff_t)-1 : (toff_t)to;
}

static int tiff_close(thandle_t u)
{
    return 0;
}

static toff_t tiff_size(thandle_t u)
{
    return ((dfile *)u)->size;
}

static int tiff_map(thandle_t u, void **base, toff_t *size)
{
    return 0;
}

static void tiff_unmap(thandle_t u, void *base, toff_t size)
{
}

int decode_tiff(djob *j)
{
    TIFF *tif = TIFFClientOpen("file", "rm", j->file, tiff_read, tiff_write,
                               tiff_seek, tiff_close, tiff_size, tiff_map,
                               tiff_unmap);
    TIFFRGBAImage img;
    uint32_t w = 0, h = 0, *raster = NULL;
    uint16_t orient = 1;
    char emsg[1024] = "";

    if (!tif)
        return djob_fail(j, MI_EFORMAT, "not a TIFF image libtiff can read");
    TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
    TIFFGetFieldDefaulted(tif, TIFFTAG_ORIENTATION, &orient);
    if (orient < 1 || orient > 8)
        orient = 1;
    if (check_size(j, w, h) != MI_OK)
        goto out;
    j->res->full_w = w;
    j->res->full_h = h;
    j->res->orientation = orient;
    dtext(j->res->codec, sizeof j->res->codec, "tiff");
    if (j->req->op != MI_DOP_PIXELS)
        goto out;
    if (too_many(j, w, h)) {
        djob_fail(j, MI_ETOOBIG, "%u x %u pixels, over the decoder's limit", w, h);
        goto out;
    }
    if (!TIFFRGBAImageOK(tif, emsg) || !TIFFRGBAImageBegin(&img, tif, 0, emsg)) {
        djob_fail(j, MI_EFORMAT, "libtiff cannot read the image: %.80s", emsg);
        goto out;
    }
    /* Ask for the file's own orientation: libtiff then flips nothing and
     * the library applies the orientation, transposes included. */
    img.req_orientation = orient;
    raster = malloc((size_t)w * h * 4);
    if (!raster) {
        djob_fail(j, MI_ENOMEM, "out of memory for %u x %u pixels", w, h);
    } else if (!TIFFRGBAImageGet(&img, raster, w, h)) {
        djob_fail(j, MI_EFORMAT, "libtiff could not decode the image");
    } else {
        /* ABGR words in host order = RGBA bytes on little-endian. */
        djob_pixels(j, (const uint8_t *)raster, (int)w, (int)h, (size_t)w * 4, 4);
    }
    TIFFRGBAImageEnd(&img);
out:
    free(raster);
    TIFFClose(tif);
    return j->res->status;
}

/* ---------------------------------------------------------------------- */
/* Camera raw: libraw's embedded preview, never a demosaic                */

static int jpeg_pixels(djob *j, const uint8_t *jpg, size_t len)
{
    tjhandle tj = tjInitDecompress();
    int w, h, sub, cs, n, tw = 0, th = 0;
    tjscalingfactor *sf;
    uint8_t *px;
    int rc;

    if (!tj)
        return djob_fail(j, MI_ENOMEM, "out of memory");
    if (tjDecompressHeader3(tj, jpg, (unsigned long)len, &w, &h, &sub, &cs) != 0) {
        tjDestroy(tj);
        return djob_fail(j, MI_EFORMAT, "the embedded preview is not a JPEG");
    }
    if (check_size(j, w, h) != MI_OK) {
        tjDestroy(tj);
        return j->res->status;
    }
    /* The smallest DCT scale (1/8 .. 1) that still covers twice the box
     * (what djob_pixels answers with), else the whole preview. */
    sf = tjGetScalingFactors(&n);
    fit(w, h, 2 * (int)j->req->box, &tw, &th);
    {
        int bw = w, bh = h;
        for (int i = 0; sf && i < n; i++) {
            int sw = TJSCALED(w, sf[i]), sh = TJSCALED(h, sf[i]);
            if (sf[i].num <= sf[i].denom && sw >= tw && sh >= th && sw < bw) {
                bw = sw;
                bh = sh;
            }
        }
        w = bw;
        h = bh;
    }
    if ((uint64_t)w * (uint64_t)h > 64ull * 1024 * 1024) {
        tjDestroy(tj);
        return djob_fail(j, MI_ETOOBIG, "the embedded preview is too big");
    }
    px = malloc((size_t)w * (size_t)h * 3);
    if (!px) {
        tjDestroy(tj);
        return djob_fail(j, MI_ENOMEM, "out of memory");
    }
    rc = tjDecompress2(tj, jpg, (unsigned long)len, px, w, 0, h, TJPF_RGB, 0);
    if (rc != 0 && tjGetErrorCode(tj) == TJERR_FATAL)
        djob_fail(j, MI_EFORMAT, "the embedded preview could not be decoded");
    else
        djob_pixels(j, px, w, h, (size_t)w * 3, 3);
    j->res->flags &= ~MI_DRES_ALPHA;
    free(px);
    tjDestroy(tj);
    return j->res->status;
}

static double dms(const float v[3])
{
    return (double)v[0] + (double)v[1] / 60.0 + (double)v[2] / 3600.0;
}

int decode_raw(djob *j)
{
    const uint8_t *map = dfile_map(j->file);
    libraw_data_t *lr;
    libraw_processed_image_t *t = NULL;
    int err, flip;

    if (!map)
        return djob_fail(j, MI_EIO, "the file cannot be mapped");
    lr = libraw_init(0);
    if (!lr)
        return djob_fail(j, MI_ENOMEM, "out of memory");
    if (libraw_open_buffer(lr, (void *)map, (size_t)j->file->size) != LIBRAW_SUCCESS) {
        djob_fail(j, MI_EFORMAT, "not a camera raw file libraw can read");
        goto out;
    }
    if (check_size(j, lr->sizes.width, lr->sizes.height) != MI_OK)
        goto out;
    flip = lr->sizes.flip;
    j->res->orientation = flip == 3 ? 3 : flip == 5 ? 8 : flip == 6 ? 6 : 1;
    j->res->full_w = lr->sizes.width;
    j->res->full_h = lr->sizes.height;
    dtext(j->res->codec, sizeof j->res->codec, "raw");
    dtext(j->res->make, sizeof j->res->make, lr->idata.make);
    dtext(j->res->model, sizeof j->res->model, lr->idata.model);
    if (lr->other.timestamp > 0) {
        /* libraw made it with mktime(): local time, as EXIF dates are. */
        j->res->date = (int64_t)lr->other.timestamp;
        j->res->flags |= MI_DRES_DATE;
    }
    if (lr->other.parsed_gps.gpsparsed) {
        double lat = dms(lr->other.parsed_gps.latitude);
        double lon = dms(lr->other.parsed_gps.longitude);
        if (lat <= 90 && lon <= 180 && (lat != 0 || lon != 0)) {
            j->res->lat = lr->other.parsed_gps.latref == 'S' ? -lat : lat;
            j->res->lon = lr->other.parsed_gps.longref == 'W' ? -lon : lon;
            j->res->flags |= MI_DRES_GPS;
        }
    }
    if (j->req->op != MI_DOP_PIXELS)
        goto out;
    if (libraw_unpack_thumb(lr) != LIBRAW_SUCCESS ||
        !(t = libraw_dcraw_make_mem_thumb(lr, &err))) {
        djob_fail(j, MI_EUNSUPPORTED, "the raw file has no embedded preview");
        goto out;
    }
    if (t->type == LIBRAW_IMAGE_JPEG) {
        /* The preview's size, before the raw file's flip. */
        jpeg_pixels(j, t->data, t->data_size);
    } else if (t->type == LIBRAW_IMAGE_BITMAP && t->bits == 8 && t->colors == 3) {
        if (check_size(j, t->width, t->height) != MI_OK)
            ;
        else if ((size_t)t->width * t->height * 3 > t->data_size)
            djob_fail(j, MI_EFORMAT, "the raw file's preview is cut short");
        else
            djob_pixels(j, t->data, t->width, t->height, (size_t)t->width * 3, 3);
        j->res->flags &= ~MI_DRES_ALPHA;
    } else {
        djob_fail(j, MI_EUNSUPPORTED, "the raw file's preview is in a form we do not read");
    }
out:
    if (t)
        libraw_dcraw_clear_mem(t);
    libraw_close(lr);
    return j->res->status;
}

/* ---------------------------------------------------------------------- */
/* Video: libavformat, libavcodec, libswscale                             */

static int av_read(void *u, uint8_t *buf, int n)
{
    long r = dfile_read(u, buf, (size_t)n);
    return r < 0 ? AVERROR(EIO) : r == 0 ? AVERROR_EOF : (int)r;
}

static int64_t av_seek(void *u, int64_t off, int whence)
{
    if ((whence & ~AVSEEK_FORCE) == AVSEEK_SIZE)
        return (int64_t)((dfile *)u)->size;
    return dfile_seek(u, off, whence & ~AVSEEK_FORCE);
}

/* "2021-06-14T12:34:56+0300", "...+03:00", "...Z", "... 12:34:56": the
 * seconds since the epoch, and the zone when it says one. */
static bool parse_iso(const char *v, int64_t *out, int *zone, bool *has_zone)
{
    struct tm tm;
    int Y, M, D, h, m, s, n = 0, zh = 0, zm = 0;
    const char *p;
    char sign = 0;

    if (!v || sscanf(v, "%4d-%2d-%2d%*1[T ]%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &s, &n) < 6 ||
        n == 0 || Y < 1900 || Y > 9999 || M < 1 || M > 12 || D < 1 || D > 31 ||
        h > 23 || m > 59 || s > 60)
        return false;
    p = v + n;
    if (*p == '.')
        while (*++p >= '0' && *p <= '9')
            ;
    *has_zone = false;
    if (*p == 'Z') {
        *has_zone = true;
    } else if (*p == '+' || *p == '-') {
        sign = *p;
        if (sscanf(p + 1, "%2d:%2d", &zh, &zm) == 2 || sscanf(p + 1, "%2d%2d", &zh, &zm) == 2) {
            if (zh > 14 || zm > 59)
                return false;
            *has_zone = true;
        }
    }
    memset(&tm, 0, sizeof tm);
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = s;
    *zone = (zh * 3600 + zm * 60) * (sign == '-' ? -1 : 1);
    if (*has_zone || *p == '\0') {
        /* A time with no zone in a container is UTC (QuickTime's
         * creation_time): timegm either way, then the zone. */
        *out = (int64_t)timegm(&tm) - *zone;
        return true;
    }
    return false;
}

/* ISO 6709: "+60.1467+024.9068/", "+60.1467+024.9068+012.000/". */
static bool parse_6709(const char *v, double *lat, double *lon)
{
    char *end;

    if (!v || (*v != '+' && *v != '-'))
        return false;
    *lat = strtod(v, &end);
    if (end == v || (*end != '+' && *end != '-'))
        return false;
    v = end;
    *lon = strtod(v, &end);
    if (end == v || !isfinite(*lat) || !isfinite(*lon) || fabs(*lat) > 90 ||
        fabs(*lon) > 180)
        return false;
    return true;
}

static const char *meta(AVFormatContext *fc, AVStream *st, const char *key)
{
    AVDictionaryEntry *e = av_dict_get(fc->metadata, key, NULL, 0);
    if (!e && st)
        e = av_dict_get(st->metadata, key, NULL, 0);
    return e ? e->value : NULL;
}

static void video_meta(djob *j, AVFormatContext *fc, AVStream *st)
{
    mi_dres *r = j->res;
    const char *v;
    int64_t when;
    int zone;
    bool has_zone;

    /* The capture time: Apple's key carries the zone; creation_time is
     * UTC and, on many phones, when the file was written. */
    if (parse_iso(meta(fc, NULL, "com.apple.quicktime.creationdate"), &when, &zone, &has_zone) ||
        parse_iso(meta(fc, st, "creation_time"), &when, &zone, &has_zone)) {
        if (when > 0) {
            r->date = when;
            r->tz_offset = zone;
            r->flags |= MI_DRES_DATE | (has_zone && zone ? MI_DRES_ZONE : 0);
        }
    }
    if (parse_6709(meta(fc, NULL, "com.apple.quicktime.location.ISO6709"), &r->lat, &r->lon) ||
        parse_6709(meta(fc, NULL, "location"), &r->lat, &r->lon))
        r->flags |= MI_DRES_GPS;
    if ((v = meta(fc, NULL, "com.apple.quicktime.make")) || (v = meta(fc, NULL, "make")) ||
        (v = meta(fc, NULL, "com.android.manufacturer")))
        dtext(r->make, sizeof r->make, v);
    if ((v = meta(fc, NULL, "com.apple.quicktime.model")) || (v = meta(fc, NULL, "model")) ||
        (v = meta(fc, NULL, "com.android.model")))
        dtext(r->model, sizeof r->model, v);
    if ((v = meta(fc, NULL, "com.apple.quicktime.content.identifier")))
        dtext(r->content_id, sizeof r->content_id, v);
    if (fc->duration > 0 && fc->duration / 1000 < UINT32_MAX)
        r->duration_ms = (uint32_t)(fc->duration / 1000);
}

/* The display matrix as an EXIF orientation (rotations only). */
static uint32_t video_orientation(AVStream *st)
{
    size_t size = 0;
    const uint8_t *m = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
    double a;
    int deg;

    if (!m || size < 9 * sizeof(int32_t))
        return 1;
    a = av_display_rotation_get((const int32_t *)m);
    if (!isfinite(a))
        return 1;
    /* av_display_rotation_get is counter-clockwise; EXIF names the
     * clockwise turn that shows the picture upright. */
    deg = ((int)lround(-a) % 360 + 360) % 360;
    return deg == 90 ? 6 : deg == 180 ? 3 : deg == 270 ? 8 : 1;
}

static int poster(djob *j, AVFormatContext *fc, AVStream *st)
{
    const AVCodec *dec = avcodec_find_decoder(st->codecpar->codec_id);
    AVCodecContext *cc = NULL;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *fr = av_frame_alloc();
    struct SwsContext *sws = NULL;
    uint8_t *dst[4] = { NULL };
    int dls[4], tw, th, packets = 0, rc;
    bool got = false;

    if (!pkt || !fr) {
        djob_fail(j, MI_ENOMEM, "out of memory");
        goto out;
    }
    if (!dec) {
        djob_fail(j, MI_EUNSUPPORTED, "no decoder for %s video", avcodec_get_name(st->codecpar->codec_id));
        goto out;
    }
    if (too_many(j, (uint64_t)st->codecpar->width, (uint64_t)st->codecpar->height)) {
        djob_fail(j, MI_ETOOBIG, "video frames of %d x %d", st->codecpar->width, st->codecpar->height);
        goto out;
    }
    cc = avcodec_alloc_context3(dec);
    if (!cc || avcodec_parameters_to_context(cc, st->codecpar) < 0) {
        djob_fail(j, MI_ENOMEM, "out of memory");
        goto out;
    }
    cc->thread_count = 1;
    /* FFmpeg refuses a frame over the cap before allocating it, whatever
     * size the stream gave first (too_many above checked that one). */
    cc->max_pixels = j->req->max_pixels < INT64_MAX ? (int64_t)j->req->max_pixels : INT64_MAX;
    if (avcodec_open2(cc, dec, NULL) < 0) {
        djob_fail(j, MI_EFORMAT, "the %s decoder cannot start", dec->name);
        goto out;
    }
    /* The first keyframe after 1 s, for clips long enough; else the
     * first frame. */
    if (fc->duration > 2 * AV_TIME_BASE) {
        int64_t ts = av_rescale_q(AV_TIME_BASE, AV_TIME_BASE_Q, st->time_base);
        if (st->start_time != AV_NOPTS_VALUE)
            ts += st->start_time;
        if (av_seek_frame(fc, st->index, ts, 0) < 0)
            av_seek_frame(fc, st->index, st->start_time == AV_NOPTS_VALUE ? 0 : st->start_time,
                          AVSEEK_FLAG_BACKWARD);
    }
    while (!got && packets < 4096) {
        rc = av_read_frame(fc, pkt);
        if (rc < 0) {
            avcodec_send_packet(cc, NULL);       /* drain */
        } else {
            packets++;
            if (pkt->stream_index != st->index) {
                av_packet_unref(pkt);
                continue;
            }
            avcodec_send_packet(cc, pkt);
            av_packet_unref(pkt);
        }
        if (avcodec_receive_frame(cc, fr) == 0)
            got = true;
        else if (rc < 0)
            break;
    }
    if (!got) {
        djob_fail(j, MI_EFORMAT, "no frame of the video could be decoded");
        goto out;
    }
    /* The frame's own size, which need not be the stream's. */
    if (check_size(j, fr->width, fr->height) != MI_OK)
        goto out;
    if (too_many(j, (uint64_t)fr->width, (uint64_t)fr->height)) {
        djob_fail(j, MI_ETOOBIG, "a video frame of %d x %d", fr->width, fr->height);
        goto out;
    }
    /* The picture is the frame's, whatever the stream said (found by
     * fuzz/fuzz-proto: a WebM whose track says 64 x 33 decodes to 64 x 48,
     * and pixels larger than the image are refused by the library). */
    j->res->full_w = (uint32_t)fr->width;
    j->res->full_h = (uint32_t)fr->height;
    fit(fr->width, fr->height, 2 * (int)j->req->box, &tw, &th);
    sws = sws_getContext(fr->width, fr->height, fr->format, tw, th, AV_PIX_FMT_RGBA,
                         SWS_AREA, NULL, NULL, NULL);
    if (!sws || av_image_alloc(dst, dls, tw, th, AV_PIX_FMT_RGBA, 16) < 0) {
        djob_fail(j, MI_EFORMAT, "the frame cannot be converted");
        goto out;
    }
    sws_scale(sws, (const uint8_t *const *)fr->data, fr->linesize, 0, fr->height, dst, dls);
    djob_pixels(j, dst[0], tw, th, (size_t)dls[0], 4);
    j->res->flags &= ~MI_DRES_ALPHA;
out:
    av_freep(&dst[0]);
    sws_freeContext(sws);
    avcodec_free_context(&cc);
    av_frame_free(&fr);
    av_packet_free(&pkt);
    return j->res->status;
}

int decode_video(djob *j)
{
    AVFormatContext *fc = avformat_alloc_context();
    AVIOContext *io = NULL;
    uint8_t *buf = av_malloc(64 * 1024);
    AVStream *st;
    int idx;

    if (!fc || !buf) {
        djob_fail(j, MI_ENOMEM, "out of memory");
        goto out;
    }
    io = avio_alloc_context(buf, 64 * 1024, 0, j->file, av_read, NULL, av_seek);
    if (!io) {
        djob_fail(j, MI_ENOMEM, "out of memory");
        goto out;
    }
    buf = NULL;
    fc->pb = io;
    fc->flags |= AVFMT_FLAG_CUSTOM_IO;
    if (avformat_open_input(&fc, NULL, NULL, NULL) < 0) {
        fc = NULL;       /* freed by avformat_open_input */
        djob_fail(j, MI_EFORMAT, "not a video container FFmpeg can open (truncated, or no index)");
        goto out;
    }
    if (avformat_find_stream_info(fc, NULL) < 0) {
        djob_fail(j, MI_EFORMAT, "the video's streams cannot be read");
        goto out;
    }
    idx = av_find_best_stream(fc, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (idx < 0) {
        djob_fail(j, MI_EFORMAT, "the file has no video stream");
        goto out;
    }
    st = fc->streams[idx];
    if (st->codecpar->width <= 0 || st->codecpar->height <= 0) {
        djob_fail(j, MI_EFORMAT, "the video stream has no picture size");
        goto out;
    }
    if (check_size(j, st->codecpar->width, st->codecpar->height) != MI_OK)
        goto out;
    /* A file cut short keeps its index (moov first) but not the data
     * the index points at: a half-transferred upload. */
    {
        int n = avformat_index_get_entries_count(st);
        const AVIndexEntry *last = n > 0 ? avformat_index_get_entry(st, n - 1) : NULL;
        if (last && last->pos >= 0 &&
            (uint64_t)last->pos + (uint64_t)last->size > j->file->size) {
            djob_fail(j, MI_EFORMAT, "the file ends before its video does (truncated at %llu of %llu bytes)",
                      (unsigned long long)j->file->size,
                      (unsigned long long)last->pos + (unsigned long long)last->size);
            goto out;
        }
    }
    j->res->flags |= MI_DRES_VIDEO;
    j->res->full_w = (uint32_t)st->codecpar->width;
    j->res->full_h = (uint32_t)st->codecpar->height;
    j->res->orientation = video_orientation(st);
    dtext(j->res->codec, sizeof j->res->codec, avcodec_get_name(st->codecpar->codec_id));
    video_meta(j, fc, st);
    if (j->req->op == MI_DOP_PIXELS)
        poster(j, fc, st);
out:
    if (fc)
        avformat_close_input(&fc);
    if (io) {
        av_freep(&io->buffer);
        avio_context_free(&io);
    }
    av_free(buf);
    return j->res->status;
}

int decode_file(djob *j)
{
    j->file->pos = 0;
    switch (j->req->format) {
    case MI_DFMT_HEIF: return decode_heif(j);
    case MI_DFMT_WEBP: return decode_webp(j);
    case MI_DFMT_TIFF: return decode_tiff(j);
    case MI_DFMT_RAW: return decode_raw(j);
    case MI_DFMT_VIDEO: return decode_video(j);
    default:
        return djob_fail(j, MI_EUNSUPPORTED, "a format the decoder does not know");
    }
}
