/*
 * decode-jpeg.c - JPEG for thumbnails, through libjpeg-turbo's scanline API.
 *
 * The image is decoded at 1/8, 1/4 or 1/2 of its size by the DCT itself
 * when that still covers the thumbnail, row by row into the box shrinker:
 * what a decode holds is libjpeg's state and a few rows, never the image
 * (a 65500 x 65500 photo at 1/8 is 8188 pixels wide, 32 KiB a row).  The
 * file is read through a 64 KiB buffer, never whole.
 *
 * Progressive JPEGs are the exception libjpeg cannot avoid: they keep the
 * coefficients of the whole image (about 3 bytes a pixel).  Their memory
 * is reserved like the rest and capped inside libjpeg too
 * (max_memory_to_use), so one larger than the whole budget fails with
 * MI_ETOOBIG instead of allocating.
 *
 * As upstream's fuzz/decompress.cc and TJFLAG_LIMITSCANS do, a stream of
 * more than 500 scans is refused; jpeg_save_markers() is never called.
 * Warnings (extraneous bytes, a truncated tail: common in phone JPEGs) are
 * decoded around, as the TurboJPEG path before did.
 */
#include "config.h"
#include "mi-private.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#define SRC_BUF (64u * 1024u)
#define MAX_SCANS 500

typedef struct jdec {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr err;
    struct jpeg_progress_mgr progress;
    struct jpeg_source_mgr srcmgr;
    jmp_buf jb;
    const mi_src *src;
    uint64_t off;
    JOCTET *buf;
    uint8_t *row;
    mi_shrink shrink;
    bool too_big;             /* libjpeg ran out of its memory cap */
} jdec;

static void on_error(j_common_ptr c)
{
    jdec *d = (jdec *)c->client_data;

    d->too_big = c->err->msg_code == JERR_OUT_OF_MEMORY ||
                 c->err->msg_code == JERR_NO_BACKING_STORE;
    longjmp(d->jb, 1);
}

static void on_message(j_common_ptr c, int level)
{
    (void)c;
    (void)level;            /* warnings and traces: decoded around */
}

static void on_progress(j_common_ptr c)
{
    jdec *d = (jdec *)c->client_data;

    if (d->cinfo.input_scan_number > MAX_SCANS)
        longjmp(d->jb, 1);
}

/* The file, through a small buffer. */
static void src_init(j_decompress_ptr c)
{
    (void)c;
}

static boolean src_fill(j_decompress_ptr c)
{
    jdec *d = (jdec *)c->client_data;
    long n = mi_src_pread(d->src, d->buf, SRC_BUF, d->off);

    if (n <= 0) {
        /* A truncated file: libjpeg's own answer is a fake end of image
         * and a warning; the rows it lacks come out grey. */
        d->buf[0] = 0xff;
        d->buf[1] = JPEG_EOI;
        n = 2;
    } else {
        d->off += (uint64_t)n;
    }
    d->srcmgr.next_input_byte = d->buf;
    d->srcmgr.bytes_in_buffer = (size_t)n;
    return TRUE;
}

static void src_skip(j_decompress_ptr c, long n)
{
    jdec *d = (jdec *)c->client_data;

    if (n <= 0)
        return;
    if ((size_t)n <= d->srcmgr.bytes_in_buffer) {
        d->srcmgr.next_input_byte += n;
        d->srcmgr.bytes_in_buffer -= (size_t)n;
        return;
    }
    d->off += (uint64_t)n - d->srcmgr.bytes_in_buffer;
    d->srcmgr.bytes_in_buffer = 0;
}

static void src_term(j_decompress_ptr c)
{
    (void)c;
}

/* What libjpeg will allocate for this image, generously: whole-image
 * coefficient arrays for progressive (and multi-scan) files, else a few
 * MCU rows of every component. */
static uint64_t libjpeg_bytes(const struct jpeg_decompress_struct *c)
{
    uint64_t n = 512u * 1024u;

    for (int i = 0; i < c->num_components; i++) {
        const jpeg_component_info *ci = &c->comp_info[i];
        uint64_t wb = ci->width_in_blocks + 2u, hb = ci->height_in_blocks + 2u;

        if (c->progressive_mode || c->buffered_image)
            n += wb * hb * DCTSIZE2 * sizeof(JCOEF);
        n += wb * DCTSIZE * (uint64_t)c->max_v_samp_factor * DCTSIZE * 3u;
    }
    return n + (uint64_t)c->output_width * 4u * 4u;
}

mi_status mi_decode_jpeg(mi_image *im, const mi_src *src, int orientation,
                         int box, uint64_t max_pixels, mi_budget *budget)
{
    jdec *d = calloc(1, sizeof(*d));
    volatile uint64_t reserved = 0;
    volatile mi_status s = MI_EFORMAT;
    volatile bool rows_done = false;
    int fx, fy, w, h;

    memset(im, 0, sizeof(*im));
    if (!d)
        return MI_ENOMEM;
    d->src = src;
    d->cinfo.err = jpeg_std_error(&d->err);
    d->err.error_exit = on_error;
    d->err.emit_message = on_message;
    d->cinfo.client_data = d;
    if (setjmp(d->jb)) {
        if (d->too_big)
            s = MI_ETOOBIG;
        else if (rows_done)
            s = MI_OK;      /* a failure after the last row: keep them */
        goto out;
    }
    jpeg_create_decompress(&d->cinfo);
    d->progress.progress_monitor = on_progress;
    d->cinfo.progress = &d->progress;
    if (src->fd < 0) {
        if (src->len > 0xffffffffu) {
            s = MI_ETOOBIG;
            goto out;
        }
        jpeg_mem_src(&d->cinfo, src->buf, (unsigned long)src->len);
    } else {
        d->buf = malloc(SRC_BUF);
        if (!d->buf) {
            s = MI_ENOMEM;
            goto out;
        }
        d->srcmgr.init_source = src_init;
        d->srcmgr.fill_input_buffer = src_fill;
        d->srcmgr.skip_input_data = src_skip;
        d->srcmgr.resync_to_restart = jpeg_resync_to_restart;
        d->srcmgr.term_source = src_term;
        d->cinfo.src = &d->srcmgr;
    }
    if (jpeg_read_header(&d->cinfo, TRUE) != JPEG_HEADER_OK)
        goto out;
    w = (int)d->cinfo.image_width;
    h = (int)d->cinfo.image_height;
    if (w <= 0 || h <= 0)
        goto out;
    /* The cap comes before anything the size would drive.  A progressive
     * file holds all its coefficients: the cap is on its pixels.  A
     * sequential one is decoded DCT-scaled, row by row: the cap is on the
     * pixels that come out (so up to 64 times more go in), which is what
     * its time grows with besides the file's own length. */
    if (d->cinfo.progressive_mode &&
        (uint64_t)w * (uint64_t)h > max_pixels) {
        s = MI_ETOOBIG;
        goto out;
    }
    im->full_w = w;
    im->full_h = h;

    d->cinfo.scale_num = 1;
    d->cinfo.scale_denom = (unsigned int)mi_thumb_jpeg_denom(w, h, orientation, box);
    d->cinfo.dct_method = JDCT_IFAST;
    d->cinfo.out_color_space =
        d->cinfo.jpeg_color_space == JCS_CMYK ||
                d->cinfo.jpeg_color_space == JCS_YCCK
            ? JCS_CMYK
            : JCS_EXT_RGBA;
    jpeg_calc_output_dimensions(&d->cinfo);
    if ((uint64_t)d->cinfo.output_width * d->cinfo.output_height > max_pixels) {
        s = MI_ETOOBIG;
        goto out;
    }
    mi_thumb_factors(w, h, (int)d->cinfo.output_width,
                     (int)d->cinfo.output_height, orientation, box, &fx, &fy);

    /* Reserve, then cap libjpeg to what was reserved for it. */
    {
        uint64_t lj = libjpeg_bytes(&d->cinfo);
        uint64_t need = lj + mi_shrink_bytes((int)d->cinfo.output_width,
                                             (int)d->cinfo.output_height,
                                             fx, fy) +
                        (src->fd >= 0 ? SRC_BUF : 0);

        s = mi_budget_acquire(budget, need);
        if (s != MI_OK)
            goto out;
        reserved = need;
        d->cinfo.mem->max_memory_to_use = (long)(lj < 0x7fffffff ? lj : 0x7fffffff);
        s = MI_EFORMAT;
    }
    if (!jpeg_start_decompress(&d->cinfo))
        goto out;
    if (d->cinfo.output_components != 4)
        goto out;
    d->row = malloc((size_t)d->cinfo.output_width * 4);
    if (!d->row || mi_shrink_begin(&d->shrink, (int)d->cinfo.output_width,
                                   (int)d->cinfo.output_height, fx,
                                   fy) != MI_OK) {
        s = MI_ENOMEM;
        goto out;
    }
    while (d->cinfo.output_scanline < d->cinfo.output_height) {
        JSAMPROW rows[1] = { d->row };

        if (jpeg_read_scanlines(&d->cinfo, rows, 1) != 1)
            goto out;
        if (d->cinfo.out_color_space == JCS_CMYK) {
            /* Adobe writes CMYK inverted (what libjpeg hands back is
             * 255 - ink already), as nearly every CMYK JPEG does. */
            uint8_t *p = d->row;
            for (JDIMENSION x = 0; x < d->cinfo.output_width; x++, p += 4) {
                unsigned k = p[3];
                p[0] = (uint8_t)((p[0] * k + 127) / 255);
                p[1] = (uint8_t)((p[1] * k + 127) / 255);
                p[2] = (uint8_t)((p[2] * k + 127) / 255);
                p[3] = 255;
            }
        }
        mi_shrink_row(&d->shrink, d->row);
    }
    rows_done = true;
    jpeg_finish_decompress(&d->cinfo);
    s = MI_OK;

out:
    if (s == MI_OK && d->shrink.out) {
        reserved = mi_shrink_end(&d->shrink, im, budget, reserved);
    } else if (s == MI_OK) {
        s = MI_EFORMAT;
    }
    jpeg_destroy_decompress(&d->cinfo);
    mi_shrink_free(&d->shrink);
    mi_budget_release(budget, reserved);
    free(d->row);
    free(d->buf);
    free(d);
    return s;
}

/* ---------------------------------------------------------------------- */
/* Encoding: previews                                                      */

typedef struct jenc {
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr err;
    jmp_buf jb;
} jenc;

static void on_enc_error(j_common_ptr c)
{
    longjmp(((jenc *)c->client_data)->jb, 1);
}

mi_status mi_jpeg_encode_rgba(uint8_t **out, size_t *out_len,
                              const uint8_t *px, int w, int h, size_t stride,
                              int quality)
{
    /* volatile: kept across the longjmp of an error. */
    unsigned char *volatile buf = NULL;
    unsigned long len = 0;
    jenc e;

    *out = NULL;
    *out_len = 0;
    memset(&e, 0, sizeof(e));
    e.cinfo.err = jpeg_std_error(&e.err);
    e.err.error_exit = on_enc_error;
    e.err.emit_message = on_message;
    e.cinfo.client_data = &e;
    if (setjmp(e.jb)) {
        jpeg_destroy_compress(&e.cinfo);
        free(buf);
        return MI_ENOMEM;
    }
    jpeg_create_compress(&e.cinfo);
    jpeg_mem_dest(&e.cinfo, (unsigned char **)&buf, &len);
    e.cinfo.image_width = (JDIMENSION)w;
    e.cinfo.image_height = (JDIMENSION)h;
    e.cinfo.input_components = 4;
    e.cinfo.in_color_space = JCS_EXT_RGBA;
    jpeg_set_defaults(&e.cinfo);
    jpeg_set_quality(&e.cinfo, quality, TRUE);
    jpeg_start_compress(&e.cinfo, TRUE);
    while (e.cinfo.next_scanline < e.cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)e.cinfo.next_scanline * stride);
        jpeg_write_scanlines(&e.cinfo, &row, 1);
    }
    jpeg_finish_compress(&e.cinfo);
    jpeg_destroy_compress(&e.cinfo);
    *out = buf;
    *out_len = len;
    return MI_OK;
}
