/*
 * corpus-gen.c - the file writer behind bench/make-corpus.sh.
 *
 *   corpus-gen photos OUTDIR N SRC.jpg...
 *       N unique copies of the source JPEGs, round-robin, into OUTDIR.
 *       Each copy gets a COM (comment) segment naming its number, inserted
 *       after the source's APPn segments: the EXIF APP1 block keeps its
 *       place right after SOI (as the EXIF spec wants), the file still ends
 *       with EOI, and every decoder skips comments.
 *   corpus-gen tiny OUTDIR N
 *       N unique tiny images in OUTDIR/dNNN/ (1000 per directory): three in
 *       four an 8x8 RGB PNG, one in four a 1x1 GIF, the number encoded in
 *       the pixels / palette.
 *   corpus-gen dated OUTDIR N YEARS SRC.jpg
 *       N unique small JPEGs in OUTDIR/dNNN/ (1000 per directory): SRC.jpg
 *       (any JPEG; its own APPn segments are kept after ours) with an EXIF
 *       DateTimeOriginal and a comment naming the number.  The dates fall
 *       evenly over the YEARS years before 2026-06-01, newest first: a
 *       library spread over months, as a gallery sees a real one (tiny/'s
 *       files all carry the moment they were written).
 *
 * Standalone on purpose (no zlib, no libmediaindex): it makes the corpus the
 * library is measured on.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

static int die(const char *what, const char *arg)
{
    fprintf(stderr, "corpus-gen: %s%s%s\n", what, arg ? ": " : "",
            arg ? arg : "");
    exit(1);
}

static int write_all(const char *path, const void *a, size_t alen,
                     const void *b, size_t blen, const void *c, size_t clen)
{
    FILE *f = fopen(path, "wb");
    int ok;

    if (!f)
        return -1;
    ok = fwrite(a, 1, alen, f) == alen && fwrite(b, 1, blen, f) == blen &&
         fwrite(c, 1, clen, f) == clen;
    if (fclose(f) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

static void make_dir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die("cannot create directory", path);
}

/* ---------------------------------------------------------------------- */
/* Photos                                                                  */

typedef struct source {
    const char *path;
    const char *base;
    unsigned char *data;
    size_t len;
    size_t insert_at;  /* offset of the first segment after the APPn run */
} source;

/*
 * Load a JPEG and find where a comment can go: after SOI and every APPn or
 * COM segment.  Refuses files that do not start with SOI, whose segment
 * lengths run off the end, or that have no EXIF APP1.
 */
static int load_source(source *s, const char *path)
{
    FILE *f = fopen(path, "rb");
    long size;
    size_t i;
    int has_exif = 0;

    memset(s, 0, sizeof(*s));
    if (!f)
        return -1;
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 4 ||
        fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return -1;
    }
    s->len = (size_t)size;
    s->data = malloc(s->len);
    if (!s->data || fread(s->data, 1, s->len, f) != s->len) {
        fclose(f);
        free(s->data);
        return -1;
    }
    fclose(f);

    if (s->data[0] != 0xff || s->data[1] != 0xd8)
        goto bad;
    i = 2;
    while (i + 4 <= s->len && s->data[i] == 0xff) {
        unsigned m = s->data[i + 1];
        size_t seglen = (size_t)s->data[i + 2] << 8 | s->data[i + 3];

        if (!((m >= 0xe0 && m <= 0xef) || m == 0xfe))
            break;
        if (seglen < 2 || i + 2 + seglen > s->len)
            goto bad;
        if (m == 0xe1 && seglen >= 8 && memcmp(s->data + i + 4, "Exif\0\0", 6) == 0)
            has_exif = 1;
        i += 2 + seglen;
    }
    if (!has_exif || i + 2 > s->len || s->data[i] != 0xff)
        goto bad;
    s->insert_at = i;
    s->path = path;
    s->base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    return 0;
bad:
    free(s->data);
    s->data = NULL;
    return -1;
}

static int gen_photos(const char *outdir, long n, int nsrc, char **srcs)
{
    source *s = calloc((size_t)nsrc, sizeof(*s));
    int good = 0;

    if (!s)
        die("out of memory", NULL);
    for (int i = 0; i < nsrc; i++) {
        if (load_source(&s[good], srcs[i]) == 0)
            good++;
        else
            fprintf(stderr, "corpus-gen: skipping %s (not a JPEG with EXIF)\n",
                    srcs[i]);
    }
    if (good == 0)
        die("no usable source JPEG", NULL);
    make_dir(outdir);

    for (long k = 0; k < n; k++) {
        const source *src = &s[k % good];
        char path[4096], com[64];
        unsigned char seg[4 + sizeof(com)];
        int clen = snprintf(com, sizeof(com), "mediaindex bench copy %06ld", k);
        size_t seglen = 2 + (size_t)clen;
        char stem[256];
        const char *dot = strrchr(src->base, '.');
        size_t stemlen = dot ? (size_t)(dot - src->base) : strlen(src->base);

        if (stemlen >= sizeof(stem))
            stemlen = sizeof(stem) - 1;
        memcpy(stem, src->base, stemlen);
        stem[stemlen] = '\0';
        seg[0] = 0xff;
        seg[1] = 0xfe;
        seg[2] = (unsigned char)(seglen >> 8);
        seg[3] = (unsigned char)seglen;
        memcpy(seg + 4, com, (size_t)clen);
        snprintf(path, sizeof(path), "%s/IMG_%06ld_%s.jpg", outdir, k, stem);
        if (write_all(path, src->data, src->insert_at, seg, 4 + (size_t)clen,
                      src->data + src->insert_at,
                      src->len - src->insert_at) != 0)
            die("cannot write", path);
    }
    for (int i = 0; i < good; i++)
        free(s[i].data);
    free(s);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Tiny images                                                             */

static uint32_t crc_table[256];

static void crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

static uint32_t crc32_of(const unsigned char *p, size_t len)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < len; i++)
        c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static unsigned char *put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return p + 4;
}

/* Append a PNG chunk: length, type, data, CRC of type and data. */
static unsigned char *png_chunk(unsigned char *p, const char *type,
                                const unsigned char *data, uint32_t len)
{
    unsigned char *start;

    p = put32(p, len);
    start = p;
    memcpy(p, type, 4);
    memcpy(p + 4, data, len);
    p += 4 + len;
    return put32(p, crc32_of(start, 4 + len));
}

/* An 8x8 RGB PNG whose pixels encode `id`; zlib stream of stored blocks. */
static size_t make_png(unsigned char *out, uint32_t id)
{
    enum { W = 8, H = 8, ROW = 1 + 3 * W, RAW = ROW * H };
    static const unsigned char sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    unsigned char ihdr[13], raw[RAW], z[2 + 5 + RAW + 4], *p = out;
    uint32_t a = 1, b = 0;

    put32(ihdr, W);
    put32(ihdr + 4, H);
    ihdr[8] = 8;   /* bit depth */
    ihdr[9] = 2;   /* RGB */
    ihdr[10] = ihdr[11] = ihdr[12] = 0;

    for (int y = 0; y < H; y++) {
        raw[y * ROW] = 0;  /* filter: none */
        for (int x = 0; x < W; x++) {
            unsigned char *px = raw + y * ROW + 1 + 3 * x;
            px[0] = (unsigned char)(x * 32);
            px[1] = (unsigned char)(y * 32);
            px[2] = (unsigned char)((x + y) * 16);
        }
    }
    /* The id in the first two pixels: unique for 2^32 files. */
    raw[1] = (unsigned char)(id >> 24);
    raw[2] = (unsigned char)(id >> 16);
    raw[3] = (unsigned char)(id >> 8);
    raw[4] = (unsigned char)id;

    z[0] = 0x78;  /* deflate, 32K window */
    z[1] = 0x01;  /* no preset dictionary, check bits */
    z[2] = 1;     /* final stored block */
    z[3] = RAW & 0xff;
    z[4] = RAW >> 8;
    z[5] = (unsigned char)~(RAW & 0xff);
    z[6] = (unsigned char)~(RAW >> 8);
    memcpy(z + 7, raw, RAW);
    for (size_t i = 0; i < RAW; i++) {
        a = (a + raw[i]) % 65521u;
        b = (b + a) % 65521u;
    }
    put32(z + 7 + RAW, b << 16 | a);

    memcpy(p, sig, sizeof(sig));
    p += sizeof(sig);
    p = png_chunk(p, "IHDR", ihdr, sizeof(ihdr));
    p = png_chunk(p, "IDAT", z, sizeof(z));
    p = png_chunk(p, "IEND", NULL, 0);
    return (size_t)(p - out);
}

/* A 1x1 GIF89a; the id is the two-colour palette (48 bits). */
static size_t make_gif(unsigned char *out, uint32_t id)
{
    static const unsigned char head[] = {
        'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0,
        0x80, /* global colour table, 2 entries */
        0, 0  /* background, aspect */
    };
    static const unsigned char tail[] = {
        0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0,  /* image descriptor */
        2, 2, 0x44, 0x01, 0,              /* LZW: min code 2, one pixel */
        0x3b                              /* trailer */
    };
    unsigned char *p = out;

    memcpy(p, head, sizeof(head));
    p += sizeof(head);
    *p++ = (unsigned char)(id >> 16);
    *p++ = (unsigned char)(id >> 8);
    *p++ = (unsigned char)id;
    *p++ = (unsigned char)(id >> 24);
    *p++ = 0x5a;
    *p++ = 0xa5;
    memcpy(p, tail, sizeof(tail));
    p += sizeof(tail);
    return (size_t)(p - out);
}

static int gen_tiny(const char *outdir, long n)
{
    unsigned char buf[1024];
    char dir[4096], path[4200];

    crc_init();
    make_dir(outdir);
    for (long k = 0; k < n; k++) {
        int gif = (k % 4) == 3;
        size_t len = gif ? make_gif(buf, (uint32_t)k) : make_png(buf, (uint32_t)k);

        snprintf(dir, sizeof(dir), "%s/d%03ld", outdir, k / 1000);
        if (k % 1000 == 0)
            make_dir(dir);
        snprintf(path, sizeof(path), "%s/t%06ld.%s", dir, k, gif ? "gif" : "png");
        if (write_all(path, buf, len, "", 0, "", 0) != 0)
            die("cannot write", path);
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Dated JPEGs                                                             */

/* APP1 "Exif\0\0", a big-endian TIFF header, IFD0 with the Exif IFD's
 * pointer, the Exif IFD with DateTimeOriginal (ASCII, 20 bytes at 44). */
static size_t make_exif(unsigned char *out, const char date[20])
{
    static const unsigned char head[] = {
        0xff, 0xe1, 0x00, 0x48, 'E', 'x', 'i', 'f', 0, 0,
        'M', 'M', 0x00, 0x2a, 0x00, 0x00, 0x00, 0x08,
        0x00, 0x01, 0x87, 0x69, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01,
        0x00, 0x00, 0x00, 0x1a, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x90, 0x03, 0x00, 0x02, 0x00, 0x00, 0x00, 0x14,
        0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    };

    memcpy(out, head, sizeof(head));
    memcpy(out + sizeof(head), date, 20);
    return sizeof(head) + 20;
}

static int gen_dated(const char *outdir, long n, long years, const char *src)
{
    unsigned char head[256], *data;
    char dir[4096], path[4200], date[80];
    const int64_t newest = 1780272000;         /* 2026-06-01T00:00:00Z */
    double step = n > 0 ? (double)years * 365.2425 * 86400 / (double)n : 0;
    FILE *f = fopen(src, "rb");
    long size;

    if (!f || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 4 ||
        fseek(f, 0, SEEK_SET) != 0 || !(data = malloc((size_t)size)) ||
        fread(data, 1, (size_t)size, f) != (size_t)size ||
        data[0] != 0xff || data[1] != 0xd8)
        die("not a JPEG", src);
    fclose(f);
    make_dir(outdir);
    for (long k = 0; k < n; k++) {
        time_t t = (time_t)(newest - (int64_t)((double)k * step));
        struct tm tm;
        size_t len, com;

        gmtime_r(&t, &tm);
        snprintf(date, sizeof(date), "%04d:%02d:%02d %02d:%02d:%02d",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec);
        head[0] = 0xff;
        head[1] = 0xd8;
        len = 2 + make_exif(head + 2, date);
        /* COM: the number, so that every file is its own content. */
        com = (size_t)snprintf((char *)head + len + 4, 32, "mediaindex %ld", k);
        head[len] = 0xff;
        head[len + 1] = 0xfe;
        head[len + 2] = (unsigned char)((com + 2) >> 8);
        head[len + 3] = (unsigned char)(com + 2);
        len += 4 + com;
        snprintf(dir, sizeof(dir), "%s/d%03ld", outdir, k / 1000);
        if (k % 1000 == 0)
            make_dir(dir);
        snprintf(path, sizeof(path), "%s/i%07ld.jpg", dir, k);
        if (write_all(path, head, len, data + 2, (size_t)size - 2, "", 0) != 0)
            die("cannot write", path);
    }
    free(data);
    return 0;
}

#define USAGE "usage: corpus-gen photos OUTDIR N SRC... | tiny OUTDIR N | " \
              "dated OUTDIR N YEARS SRC.jpg"

int main(int argc, char **argv)
{
    char *end;
    long n;

    if (argc < 4)
        die(USAGE, NULL);
    errno = 0;
    n = strtol(argv[3], &end, 10);
    if (errno || *end || n < 0 || n > 100000000)
        die("bad count", argv[3]);
    if (strcmp(argv[1], "photos") == 0 && argc >= 5)
        return gen_photos(argv[2], n, argc - 4, argv + 4);
    if (strcmp(argv[1], "tiny") == 0 && argc == 4)
        return gen_tiny(argv[2], n);
    if (strcmp(argv[1], "dated") == 0 && argc == 6)
        return gen_dated(argv[2], n, atol(argv[4]), argv[5]);
    die(USAGE, NULL);
    return 1;
}
