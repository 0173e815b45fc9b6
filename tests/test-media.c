/*
 * test-media.c - media types by file name and by magic bytes.
 */
#include "mi-private.h"
#include "mi-test.h"
#include "fixtures.h"

static const char *mime_of(const char *name)
{
    const mi_media_type *t = mi_media_from_name(name);
    return t ? t->mime : NULL;
}

static void test_images_by_name(void)
{
    static const struct { const char *name, *mime; } cases[] = {
        { "a.jpg", "image/jpeg" }, { "a.jpeg", "image/jpeg" },
        { "a.jpe", "image/jpeg" }, { "a.png", "image/png" },
        { "a.gif", "image/gif" }, { "a.bmp", "image/bmp" },
        { "a.tif", "image/tiff" }, { "a.tiff", "image/tiff" },
        { "a.webp", "image/webp" }, { "a.heic", "image/heic" },
        { "a.heif", "image/heif" }, { "a.avif", "image/avif" },
        { "a.ico", "image/vnd.microsoft.icon" }, { "a.svg", "image/svg+xml" },
        { "a.svgz", "image/svg+xml" },
    };
    for (size_t i = 0; i < MI_ARRAY_LEN(cases); i++) {
        const mi_media_type *t = mi_media_from_name(cases[i].name);
        CHECK(t != NULL);
        if (!t)
            continue;
        CHECK_EQ_STR(t->mime, cases[i].mime);
        CHECK_EQ_INT(t->kind, MI_KIND_IMAGE);
    }
}

static void test_videos_by_name(void)
{
    static const struct { const char *name, *mime; } cases[] = {
        { "a.mp4", "video/mp4" }, { "a.m4v", "video/mp4" },
        { "a.mov", "video/quicktime" }, { "a.qt", "video/quicktime" },
        { "a.avi", "video/x-msvideo" }, { "a.mkv", "video/x-matroska" },
        { "a.webm", "video/webm" }, { "a.3gp", "video/3gpp" },
        { "a.3g2", "video/3gpp2" }, { "a.mpg", "video/mpeg" },
        { "a.mpeg", "video/mpeg" }, { "a.mpe", "video/mpeg" },
        { "a.wmv", "video/x-ms-wmv" }, { "a.flv", "video/x-flv" },
        { "a.ts", "video/mp2t" }, { "a.m2ts", "video/mp2t" },
        { "a.mts", "video/mp2t" }, { "a.ogv", "video/ogg" },
    };
    for (size_t i = 0; i < MI_ARRAY_LEN(cases); i++) {
        const mi_media_type *t = mi_media_from_name(cases[i].name);
        CHECK(t != NULL);
        if (!t)
            continue;
        CHECK_EQ_STR(t->mime, cases[i].mime);
        CHECK_EQ_INT(t->kind, MI_KIND_VIDEO);
    }
}

static void test_case_and_paths(void)
{
    CHECK_EQ_STR(mime_of("IMG_0001.JPG"), "image/jpeg");
    CHECK_EQ_STR(mime_of("x.JpEg"), "image/jpeg");
    CHECK_EQ_STR(mime_of("clip.MOV"), "video/quicktime");
    CHECK_EQ_STR(mime_of("IMG_5195.HEIC"), "image/heic");
    CHECK_EQ_STR(mime_of("dir/sub/photo.png"), "image/png");
    CHECK_EQ_STR(mime_of("dir.jpg/photo.png"), "image/png");
    CHECK_EQ_STR(mime_of("archive.tar.jpg"), "image/jpeg");
    CHECK_EQ_STR(mime_of("..a.jpg"), "image/jpeg");
    /* The extension is returned lower case. */
    CHECK_EQ_STR(mi_media_from_name("A.JPG")->ext, "jpg");
    /* Same table entry whatever the case. */
    CHECK(mi_media_from_name("a.JPG") == mi_media_from_name("b.jpg"));
}

static void test_not_media(void)
{
    static const char *names[] = {
        "notes.txt", "README", "", "photo.", "photo.jpg.txt", "a.json",
        "a.mp3", "a.wav", "a.pdf", "a.jpgx", "a.xjpg", "a.j", "a.jp",
        "dir.jpg/", "dir.jpg/file", ".jpg", "..jpg", "...", ".", "..",
        "/.png", "a.index.sqlite3", "a.verylongextension",
    };
    for (size_t i = 0; i < MI_ARRAY_LEN(names); i++) {
        const mi_media_type *t = mi_media_from_name(names[i]);
        if (t)
            printf("# %s -> %s\n", names[i], t->mime);
        CHECK(t == NULL);
    }
    CHECK(mi_media_from_name(NULL) == NULL);
}

static const mi_media_type *sniff(const void *p, size_t n)
{
    return mi_media_sniff(p, n);
}

#define SNIFF_IS(buf, len, want)                                             \
    do {                                                                    \
        const mi_media_type *t_ = sniff(buf, len);                          \
        CHECK(t_ != NULL);                                                  \
        if (t_)                                                             \
            CHECK_EQ_STR(t_->ext, want);                                     \
        /* The same table entry as the name lookup. */                     \
        CHECK(t_ == mi_media_from_name("x." want));                          \
    } while (0)

static void test_sniff_images(void)
{
    unsigned char *jpg, *png;
    size_t jlen, plen;
    unsigned char buf[64];

    CHECK_OK(fx_jpeg_buffer(&jpg, &jlen, 8, 8, 1, NULL));
    CHECK_OK(fx_png_buffer(&png, &plen, 8, 8, 1));
    if (jpg)
        SNIFF_IS(jpg, jlen, "jpg");
    if (png)
        SNIFF_IS(png, plen, "png");
    free(jpg);
    free(png);

    SNIFF_IS("GIF87a\x01\0\x01\0", 10, "gif");
    SNIFF_IS("GIF89a\x01\0\x01\0", 10, "gif");
    SNIFF_IS("II*\0\x08\0\0\0", 8, "tif");
    SNIFF_IS("MM\0*\0\0\0\x08", 8, "tif");
    SNIFF_IS("RIFF\x24\0\0\0WEBPVP8 ", 16, "webp");

    memset(buf, 0, sizeof buf);
    memcpy(buf, "BM", 2);
    buf[14] = 40;
    SNIFF_IS(buf, 54, "bmp");
    buf[14] = 7;  /* no such DIB header */
    CHECK(sniff(buf, 54) == NULL);

    memset(buf, 0, sizeof buf);
    memcpy(buf, "\0\0\1\0\1\0", 6);
    SNIFF_IS(buf, 22, "ico");

    SNIFF_IS("<svg xmlns=\"http://www.w3.org/2000/svg\"/>", 41, "svg");
    SNIFF_IS("<?xml version=\"1.0\"?>\n<svg/>", 28, "svg");
}

/* An ftyp box: size, "ftyp", major brand, minor version, compatibles. */
static size_t ftyp(unsigned char *buf, const char *major, const char *compat)
{
    size_t n = 16 + strlen(compat);

    memset(buf, 0, 64);
    buf[3] = (unsigned char)n;
    memcpy(buf + 4, "ftyp", 4);
    memcpy(buf + 8, major, 4);
    memcpy(buf + 16, compat, strlen(compat));
    return 64;
}

static void test_sniff_isobmff(void)
{
    unsigned char b[64];

    SNIFF_IS(b, ftyp(b, "heic", "mif1heic"), "heic");
    SNIFF_IS(b, ftyp(b, "heix", "mif1heix"), "heic");
    SNIFF_IS(b, ftyp(b, "mif1", "mif1heic"), "heic");
    SNIFF_IS(b, ftyp(b, "msf1", "msf1hevc"), "heic");
    SNIFF_IS(b, ftyp(b, "hevc", ""), "heic");
    SNIFF_IS(b, ftyp(b, "avif", "avifmif1miaf"), "avif");
    SNIFF_IS(b, ftyp(b, "mif1", "mif1avifmiaf"), "avif");
    SNIFF_IS(b, ftyp(b, "avis", "avis"), "avif");
    SNIFF_IS(b, ftyp(b, "qt  ", "qt  "), "mov");
    SNIFF_IS(b, ftyp(b, "isom", "isomiso2avc1mp41"), "mp4");
    SNIFF_IS(b, ftyp(b, "mp42", "mp42isom"), "mp4");
    SNIFF_IS(b, ftyp(b, "avc1", ""), "mp4");
    SNIFF_IS(b, ftyp(b, "M4V ", "M4V M4A mp42isom"), "m4v");
    SNIFF_IS(b, ftyp(b, "3gp4", "3gp4isom"), "3gp");
    SNIFF_IS(b, ftyp(b, "3gp5", ""), "3gp");
    SNIFF_IS(b, ftyp(b, "3g2a", "3g2a"), "3g2");
    /* An unknown major brand falls back on a known compatible one. */
    SNIFF_IS(b, ftyp(b, "abcd", "zzzzmp42"), "mp4");
    CHECK(sniff(b, ftyp(b, "abcd", "zzzz")) == NULL);
    /* Too short to hold the major brand. */
    CHECK(sniff(b, 10) == NULL);
    /* QuickTime without ftyp. */
    memset(b, 0, sizeof b);
    memcpy(b + 4, "moov", 4);
    SNIFF_IS(b, 16, "mov");
}

static void test_sniff_videos(void)
{
    unsigned char b[400];
    static const unsigned char asf[16] = { 0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66,
                                           0xCF, 0x11, 0xA6, 0xD9, 0x00, 0xAA,
                                           0x00, 0x62, 0xCE, 0x6C };
    static const unsigned char webm[] = {
        0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01, 0x42, 0xF7, 0x81,
        0x01, 0x42, 0xF2, 0x81, 0x04, 0x42, 0xF3, 0x81, 0x08, 0x42, 0x82, 0x84,
        'w', 'e', 'b', 'm', 0x42, 0x87, 0x81, 0x04 };
    unsigned char mkv[sizeof webm + 4];

    SNIFF_IS("RIFF\0\0\0\0AVI LIST", 16, "avi");
    SNIFF_IS(webm, sizeof webm, "webm");
    memcpy(mkv, webm, 23);
    mkv[23] = 0x88;
    memcpy(mkv + 24, "matroska", 8);
    SNIFF_IS(mkv, sizeof mkv, "mkv");
    /* DocType not in the buffer: Matroska. */
    SNIFF_IS(webm, 8, "mkv");
    SNIFF_IS("\0\0\1\xba\x44\0\4\0", 8, "mpg");
    SNIFF_IS("\0\0\1\xb3\x14\0\xf0\x13", 8, "mpg");

    memset(b, 0xAA, sizeof b);
    b[0] = b[188] = b[376] = 0x47;
    SNIFF_IS(b, sizeof b, "ts");
    CHECK(sniff(b, 100) == NULL);  /* one sync byte proves nothing */
    memset(b, 0xAA, sizeof b);
    b[4] = b[196] = 0x47;
    SNIFF_IS(b, sizeof b, "m2ts");

    memset(b, 0, 32);
    memcpy(b, asf, sizeof asf);
    SNIFF_IS(b, 32, "wmv");
    SNIFF_IS("FLV\x01\x05\0\0\0\x09", 9, "flv");
    memset(b, 0, 64);
    memcpy(b, "OggS", 4);
    memcpy(b + 28, "\x80theora", 7);
    SNIFF_IS(b, 64, "ogv");
}

static void test_sniff_garbage(void)
{
    unsigned char b[256];
    unsigned x = 12345;

    CHECK(sniff(NULL, 10) == NULL);
    CHECK(sniff("", 0) == NULL);
    CHECK(sniff("\xff\xd8", 2) == NULL);
    CHECK(sniff("hello world, this is text", 25) == NULL);
    CHECK(sniff("%PDF-1.4\n", 9) == NULL);
    CHECK(sniff("PK\3\4", 4) == NULL);
    /* Random bytes: never crash; reads stay within len (ASan checks). */
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(round % 256);
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            b[i] = (unsigned char)(x >> 16);
        }
        /* Make the interesting prefixes likely. */
        if (round % 7 == 0 && n >= 4)
            memcpy(b, "\x1a\x45\xdf\xa3", 4);
        if (round % 11 == 0 && n >= 8)
            memcpy(b + 4, "ftyp", 4);
        {
            unsigned char *copy = malloc(n ? n : 1);
            memcpy(copy, b, n);
            (void)sniff(copy, n);
            free(copy);
        }
    }
}

int main(void)
{
    RUN(test_images_by_name);
    RUN(test_videos_by_name);
    RUN(test_case_and_paths);
    RUN(test_not_media);
    RUN(test_sniff_images);
    RUN(test_sniff_isobmff);
    RUN(test_sniff_videos);
    RUN(test_sniff_garbage);
    return mi_test_done();
}
