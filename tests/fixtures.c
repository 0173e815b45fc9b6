/*
 * fixtures.c - test fixtures: images with chosen EXIF, temporary trees.
 *
 * PNG pixels come from stb_image_write (compiled here, static, and only
 * here), JPEGs from a tiny encoder below (see fx_encode_jpeg);
 * EXIF blocks from libexif, so the EXIF the tests read is written by a
 * different implementation than the one that reads it.
 */
#include "fixtures.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libexif/exif-data.h>
#include <libexif/exif-utils.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#pragma GCC diagnostic ignored "-Wconversion"
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

/* ---------------------------------------------------------------------- */
/* A growing byte buffer, the target of stb's write callbacks             */

typedef struct fx_buf {
    unsigned char *p;
    size_t len, cap;
    int failed;
} fx_buf;

static void fx_buf_put(fx_buf *b, const void *data, size_t n)
{
    if (b->failed)
        return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 4096;
        unsigned char *p;
        while (n > cap - b->len)
            cap *= 2;
        p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void fx_stb_write(void *ctx, void *data, int size)
{
    if (size > 0)
        fx_buf_put(ctx, data, (size_t)size);
}

/* A gradient: different seeds shift every channel, so give other bytes. */
static unsigned char *fx_pixels(int w, int h, unsigned seed)
{
    unsigned char *px;

    if (w <= 0 || h <= 0 || w > 8192 || h > 8192)
        return NULL;
    px = malloc((size_t)w * (size_t)h * 3);
    if (!px)
        return NULL;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            unsigned char *p = px + ((size_t)y * (size_t)w + (size_t)x) * 3;
            p[0] = (unsigned char)((unsigned)x * 255u / (unsigned)w + seed * 37u);
            p[1] = (unsigned char)((unsigned)y * 255u / (unsigned)h + seed * 101u);
            p[2] = (unsigned char)((unsigned)(x + y) * 3u + seed * 13u);
        }
    }
    return px;
}

/* ---------------------------------------------------------------------- */
/* EXIF with libexif                                                      */

/* A new entry with room for `components` values of `format`, added to
 * the IFD (the pattern of libexif's contrib/examples/write-exif.c). */
static ExifEntry *fx_entry(ExifData *ed, ExifIfd ifd, ExifTag tag,
                           ExifFormat format, unsigned long components)
{
    ExifMem *mem = exif_mem_new_default();
    ExifEntry *e;
    size_t size = (size_t)exif_format_get_size(format) * components;

    if (!mem)
        return NULL;
    e = exif_entry_new_mem(mem);
    if (!e) {
        exif_mem_unref(mem);
        return NULL;
    }
    e->data = exif_mem_alloc(mem, (ExifLong)size);
    if (!e->data) {
        exif_entry_unref(e);
        exif_mem_unref(mem);
        return NULL;
    }
    e->size = (unsigned int)size;
    e->tag = tag;
    e->components = components;
    e->format = format;
    exif_content_add_entry(ed->ifd[ifd], e);
    exif_entry_unref(e);  /* the IFD holds it now */
    exif_mem_unref(mem);
    return e;
}

static int fx_ascii(ExifData *ed, ExifIfd ifd, ExifTag tag, const char *s)
{
    size_t n;
    ExifEntry *e;

    if (!s)
        return 0;
    n = strlen(s) + 1;
    e = fx_entry(ed, ifd, tag, EXIF_FORMAT_ASCII, n);
    if (!e)
        return -1;
    memcpy(e->data, s, n);
    return 0;
}

/* |deg| as degrees, minutes and thousandths of seconds. */
static int fx_gps(ExifData *ed, ExifTag tag, ExifTag ref_tag, double deg,
                  const char *pos, const char *neg)
{
    ExifByteOrder bo = exif_data_get_byte_order(ed);
    ExifEntry *e;
    double a = fabs(deg), d, m, s;
    ExifRational r[3];

    if (fx_ascii(ed, EXIF_IFD_GPS, ref_tag, deg < 0 ? neg : pos) != 0)
        return -1;
    d = floor(a);
    m = floor((a - d) * 60.0);
    s = ((a - d) * 60.0 - m) * 60.0;
    r[0].numerator = (ExifLong)d;
    r[0].denominator = 1;
    r[1].numerator = (ExifLong)m;
    r[1].denominator = 1;
    r[2].numerator = (ExifLong)llround(s * 1000.0);
    r[2].denominator = 1000;
    e = fx_entry(ed, EXIF_IFD_GPS, tag, EXIF_FORMAT_RATIONAL, 3);
    if (!e)
        return -1;
    for (int i = 0; i < 3; i++)
        exif_set_rational(e->data + 8 * i, bo, r[i]);
    return 0;
}

int fx_exif_block(unsigned char **out, size_t *len, const fx_exif *x)
{
    ExifData *ed;
    unsigned char *d = NULL;
    unsigned int ds = 0;
    int rc = -1;

    *out = NULL;
    *len = 0;
    if (!x)
        return -1;
    ed = exif_data_new();
    if (!ed)
        return -1;
    /* Write exactly the tags asked for: no "mandatory" defaults. */
    exif_data_unset_option(ed, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
    exif_data_set_data_type(ed, EXIF_DATA_TYPE_COMPRESSED);
    exif_data_set_byte_order(ed, EXIF_BYTE_ORDER_INTEL);

    if ((x->make && fx_ascii(ed, EXIF_IFD_0, EXIF_TAG_MAKE, x->make)) ||
        (x->model && fx_ascii(ed, EXIF_IFD_0, EXIF_TAG_MODEL, x->model)) ||
        (x->datetime && fx_ascii(ed, EXIF_IFD_0, EXIF_TAG_DATE_TIME, x->datetime)) ||
        (x->datetime_original &&
         fx_ascii(ed, EXIF_IFD_EXIF, EXIF_TAG_DATE_TIME_ORIGINAL,
                  x->datetime_original)) ||
        (x->datetime_digitized &&
         fx_ascii(ed, EXIF_IFD_EXIF, EXIF_TAG_DATE_TIME_DIGITIZED,
                  x->datetime_digitized)) ||
        (x->offset_time_original &&
         fx_ascii(ed, EXIF_IFD_EXIF, EXIF_TAG_OFFSET_TIME_ORIGINAL,
                  x->offset_time_original)))
        goto out;
    if (x->orientation) {
        ExifEntry *e = fx_entry(ed, EXIF_IFD_0, EXIF_TAG_ORIENTATION,
                                EXIF_FORMAT_SHORT, 1);
        if (!e)
            goto out;
        exif_set_short(e->data, exif_data_get_byte_order(ed),
                       (ExifShort)x->orientation);
    }
    if (x->has_gps &&
        (fx_gps(ed, EXIF_TAG_GPS_LATITUDE, EXIF_TAG_GPS_LATITUDE_REF, x->lat,
                "N", "S") ||
         fx_gps(ed, EXIF_TAG_GPS_LONGITUDE, EXIF_TAG_GPS_LONGITUDE_REF, x->lon,
                "E", "W")))
        goto out;

    exif_data_save_data(ed, &d, &ds);
    if (!d || ds == 0 || ds > 65533)
        goto out;
    *out = d;
    *len = ds;
    d = NULL;
    rc = 0;
out:
    free(d);
    exif_data_unref(ed);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Files                                                                  */

/*
 * A baseline JPEG of our own making.  stb_image_write's JPEG encoder shifts
 * set bits out of a signed int (stbiw__jpg_writeBits: "left shift of ...
 * cannot be represented in type 'int'"), which UBSan reports in every
 * sanitizer run; so the fixtures write JPEGs themselves.  The image is
 * greyscale and each 8x8 block has only a DC coefficient: a valid
 * baseline JPEG any decoder reads, a gradient of flat blocks whose levels
 * depend on `seed`.
 */
typedef struct fx_bits {
    fx_buf *out;
    uint32_t acc;
    int n;
} fx_bits;

static void fx_put_bits(fx_bits *b, uint32_t code, int len)
{
    for (int i = len - 1; i >= 0; i--) {
        b->acc = (b->acc << 1) | ((code >> i) & 1u);
        if (++b->n == 8) {
            unsigned char c = (unsigned char)b->acc;
            fx_buf_put(b->out, &c, 1);
            if (c == 0xFF)  /* byte stuffing */
                fx_buf_put(b->out, "", 1);
            b->acc = 0;
            b->n = 0;
        }
    }
}

/* The standard DC luminance table (ITU T.81 K.3): code lengths per
 * category 0..11, and the canonical codes derived from them. */
static const unsigned char fx_dc_bits[16] = { 0, 1, 5, 1, 1, 1, 1, 1, 1 };

static void fx_dc_codes(uint32_t code[12], int len[12])
{
    uint32_t c = 0;
    int k = 0;

    for (int l = 1; l <= 16; l++) {
        for (int i = 0; i < fx_dc_bits[l - 1]; i++) {
            code[k] = c++;
            len[k++] = l;
        }
        c <<= 1;
    }
}

static int fx_encode_jpeg(fx_buf *out, int w, int h, unsigned seed)
{
    uint32_t code[12];
    int len[12], prev = 0;
    int bw = (w + 7) / 8, bh = (h + 7) / 8;
    fx_bits bits = { out, 0, 0 };
    unsigned char hdr[256];
    size_t n = 0;

    if (w <= 0 || h <= 0 || w > 65535 || h > 65535)
        return -1;
    fx_dc_codes(code, len);
    /* SOI; DQT: one table of 1s */
    hdr[n++] = 0xFF; hdr[n++] = 0xD8;
    hdr[n++] = 0xFF; hdr[n++] = 0xDB; hdr[n++] = 0; hdr[n++] = 67; hdr[n++] = 0;
    for (int i = 0; i < 64; i++)
        hdr[n++] = 1;
    /* SOF0: 8-bit, h x w, one component, 1x1 sampling, table 0 */
    hdr[n++] = 0xFF; hdr[n++] = 0xC0; hdr[n++] = 0; hdr[n++] = 11; hdr[n++] = 8;
    hdr[n++] = (unsigned char)(h >> 8); hdr[n++] = (unsigned char)h;
    hdr[n++] = (unsigned char)(w >> 8); hdr[n++] = (unsigned char)w;
    hdr[n++] = 1; hdr[n++] = 1; hdr[n++] = 0x11; hdr[n++] = 0;
    /* DHT: DC table 0 (standard), AC table 0 with EOB alone, code "0" */
    hdr[n++] = 0xFF; hdr[n++] = 0xC4; hdr[n++] = 0; hdr[n++] = 2 + 17 + 12 + 17 + 1;
    hdr[n++] = 0x00;
    memcpy(hdr + n, fx_dc_bits, 16);
    n += 16;
    for (int i = 0; i < 12; i++)
        hdr[n++] = (unsigned char)i;
    hdr[n++] = 0x10;
    hdr[n++] = 1;
    for (int i = 1; i < 16; i++)
        hdr[n++] = 0;
    hdr[n++] = 0x00;
    /* SOS: one component, tables 0/0, spectral 0..63 */
    hdr[n++] = 0xFF; hdr[n++] = 0xDA; hdr[n++] = 0; hdr[n++] = 8; hdr[n++] = 1;
    hdr[n++] = 1; hdr[n++] = 0x00; hdr[n++] = 0; hdr[n++] = 63; hdr[n++] = 0;
    fx_buf_put(out, hdr, n);

    for (int by = 0; by < bh; by++) {
        for (int bx = 0; bx < bw; bx++) {
            unsigned level = ((unsigned)bx * 255u / (unsigned)bw +
                              (unsigned)by * 97u / (unsigned)bh + seed * 37u) & 255u;
            int dc = ((int)level - 128) * 8, diff = dc - prev, mag, cat = 0;
            prev = dc;
            mag = diff < 0 ? -diff : diff;
            while (mag >> cat)
                cat++;
            fx_put_bits(&bits, code[cat], len[cat]);
            if (cat)
                fx_put_bits(&bits, (uint32_t)(diff < 0 ? diff + (1 << cat) - 1 : diff),
                            cat);
            fx_put_bits(&bits, 0, 1);  /* EOB */
        }
    }
    while (bits.n)  /* pad with 1s */
        fx_put_bits(&bits, 1, 1);
    fx_buf_put(out, "\xFF\xD9", 2);
    return out->failed ? -1 : 0;
}

int fx_jpeg_buffer_app1(unsigned char **out, size_t *len, int w, int h,
                        unsigned seed, const void *app1, size_t app1_len)
{
    fx_buf jpg = { NULL, 0, 0, 0 }, res = { NULL, 0, 0, 0 };

    *out = NULL;
    *len = 0;
    if ((app1 && app1_len > 65533) || w > 8192 || h > 8192)
        return -1;
    if (fx_encode_jpeg(&jpg, w, h, seed) != 0 || jpg.len < 4) {
        free(jpg.p);
        return -1;
    }
    /* SOI, then our APP1, then everything after the encoder's SOI. */
    fx_buf_put(&res, jpg.p, 2);
    if (app1) {
        unsigned char hdr[4] = { 0xFF, 0xE1, (unsigned char)((app1_len + 2) >> 8),
                                 (unsigned char)((app1_len + 2) & 0xFF) };
        fx_buf_put(&res, hdr, 4);
        fx_buf_put(&res, app1, app1_len);
    }
    fx_buf_put(&res, jpg.p + 2, jpg.len - 2);
    free(jpg.p);
    if (res.failed) {
        free(res.p);
        return -1;
    }
    *out = res.p;
    *len = res.len;
    return 0;
}

int fx_jpeg_buffer(unsigned char **out, size_t *len, int w, int h,
                   unsigned seed, const fx_exif *exif)
{
    unsigned char *block = NULL;
    size_t block_len = 0;
    int rc;

    *out = NULL;
    *len = 0;
    if (exif && fx_exif_block(&block, &block_len, exif) != 0)
        return -1;
    rc = fx_jpeg_buffer_app1(out, len, w, h, seed, block, block_len);
    free(block);
    return rc;
}

int fx_write_jpeg(const char *path, int w, int h, unsigned seed,
                  const fx_exif *exif)
{
    unsigned char *buf;
    size_t len;
    int rc;

    if (fx_jpeg_buffer(&buf, &len, w, h, seed, exif) != 0)
        return -1;
    rc = fx_write_file(path, buf, len);
    free(buf);
    return rc;
}

int fx_png_buffer(unsigned char **out, size_t *len, int w, int h,
                  unsigned seed)
{
    fx_buf png = { NULL, 0, 0, 0 };
    unsigned char *px = fx_pixels(w, h, seed);
    int ok;

    *out = NULL;
    *len = 0;
    if (!px)
        return -1;
    ok = stbi_write_png_to_func(fx_stb_write, &png, w, h, 3, px, w * 3);
    free(px);
    if (!ok || png.failed) {
        free(png.p);
        return -1;
    }
    *out = png.p;
    *len = png.len;
    return 0;
}

int fx_write_png(const char *path, int w, int h, unsigned seed)
{
    unsigned char *buf;
    size_t len;
    int rc;

    if (fx_png_buffer(&buf, &len, w, h, seed) != 0)
        return -1;
    rc = fx_write_file(path, buf, len);
    free(buf);
    return rc;
}

int fx_write_file(const char *path, const void *data, size_t len)
{
    const unsigned char *p = data;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    if (fd < 0)
        return -1;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return close(fd) == 0 ? 0 : -1;
}

int fx_read_file(const char *path, unsigned char **out, size_t *len)
{
    struct stat st;
    unsigned char *p;
    size_t got = 0;
    int fd;

    *out = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || st.st_size < 0 || st.st_size > (256 << 20)) {
        close(fd);
        return -1;
    }
    p = malloc((size_t)st.st_size + 1);
    if (!p) {
        close(fd);
        return -1;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, p + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    *out = p;
    *len = got;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Directories                                                            */

char *fx_path(const char *dir, const char *rel)
{
    size_t a = strlen(dir), b = strlen(rel);
    char *p = malloc(a + b + 2);

    if (!p)
        return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, rel, b + 1);
    return p;
}

char *fx_tempdir(void)
{
    const char *tmp = getenv("TMPDIR");
    char *tmpl;

    if (!tmp || !*tmp)
        tmp = "/tmp";
    tmpl = fx_path(tmp, "mi-test-XXXXXX");
    if (!tmpl)
        return NULL;
    if (!mkdtemp(tmpl)) {
        free(tmpl);
        return NULL;
    }
    return tmpl;
}

int fx_mkdirs(const char *path)
{
    char *p = strdup(path);
    struct stat st;
    int rc = 0;

    if (!p)
        return -1;
    for (char *s = p + 1; *s && rc == 0; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            rc = -1;
        *s = '/';
    }
    if (rc == 0 && mkdir(p, 0755) != 0 && errno != EEXIST)
        rc = -1;
    if (rc == 0 && (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)))
        rc = -1;
    free(p);
    return rc;
}

static int fx_rm_one(const char *path, const struct stat *st, int flag,
                     struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int fx_rmtree(const char *path)
{
    struct stat st;

    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    /* FTW_PHYS: a symlink is removed, never followed; FTW_DEPTH: children
     * before their directory. */
    return nftw(path, fx_rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

const char *fx_corpus(void)
{
    const char *dir = getenv("MI_TEST_CORPUS");
    struct stat st;

    if (!dir || !*dir || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return NULL;
    return dir;
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL) {
        char *p;
        struct stat st;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        p = fx_path(dir, de->d_name);
        if (lstat(p, &st) == 0)
            n += S_ISDIR(st.st_mode) ? count_files(p) : 1;
        free(p);
    }
    closedir(d);
    return n;
}

int fx_count_in(const char *dir, const char *rel)
{
    char *p = fx_path(dir, rel);
    int n = count_files(p);
    free(p);
    return n;
}

int fx_put_jpeg(const char *dir, const char *rel, int w, int h, unsigned seed)
{
    char *p = fx_path(dir, rel), *slash = p ? strrchr(p, '/') : NULL;
    int rc = -1;

    if (slash) {
        *slash = '\0';
        fx_mkdirs(p);
        *slash = '/';
        rc = fx_write_jpeg(p, w, h, seed, NULL);
    }
    free(p);
    return rc;
}
