/*
 * test-exif.c - metadata: EXIF dates, orientation, GPS, camera, header
 * dimensions; hostile input; and, with MI_TEST_CORPUS, a real-file corpus.
 */
#include "mi-private.h"
#include "mi-test.h"
#include "fixtures.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const mi_media_type *type_of(const char *ext)
{
    char name[32];

    snprintf(name, sizeof name, "x.%s", ext);
    return mi_media_from_name(name);
}

static int64_t local_time(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm;

    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm);
}

/* Read a buffer through a copy of exactly `len` bytes, so that ASan sees
 * any read past its end. */
static mi_status read_exact(mi_meta *m, const void *buf, size_t len,
                            const mi_media_type *t)
{
    unsigned char *copy = malloc(len ? len : 1);
    mi_status st;

    if (len)
        memcpy(copy, buf, len);
    st = mi_meta_read_buffer(m, len ? copy : NULL, len, t);
    free(copy);
    return st;
}

/* The same file through a real descriptor. */
static mi_status read_via_fd(mi_meta *m, const void *buf, size_t len,
                             const mi_media_type *t)
{
    char *dir = fx_tempdir(), *path;
    mi_status st = MI_ERROR;
    int fd;

    if (!dir)
        return MI_ERROR;
    path = fx_path(dir, "f");
    if (path && fx_write_file(path, buf, len) == 0 &&
        (fd = open(path, O_RDONLY)) >= 0) {
        st = mi_meta_read_fd(m, fd, len, t);
        close(fd);
    }
    free(path);
    fx_rmtree(dir);
    free(dir);
    return st;
}

static bool meta_equal(const mi_meta *a, const mi_meta *b)
{
    return a->has_date == b->has_date && a->date == b->date &&
           a->date_source == b->date_source &&
           a->orientation == b->orientation && a->width == b->width &&
           a->height == b->height && a->has_gps == b->has_gps &&
           a->lat == b->lat && a->lon == b->lon &&
           strcmp(a->make, b->make) == 0 && strcmp(a->model, b->model) == 0;
}

/* ---------------------------------------------------------------------- */
/* Dates                                                                  */

static void test_parse_date_valid(void)
{
    int64_t t;

    CHECK(mi_exif_parse_date(&t, "2008:10:22 16:28:39", "+00:00"));
    CHECK_EQ_INT(t, 1224692919);
    CHECK(mi_exif_parse_date(&t, "2008:10:22 16:28:39", "+02:00"));
    CHECK_EQ_INT(t, 1224692919 - 7200);
    CHECK(mi_exif_parse_date(&t, "2008:10:22 16:28:39", "-05:30"));
    CHECK_EQ_INT(t, 1224692919 + 5 * 3600 + 1800);
    CHECK(mi_exif_parse_date(&t, "2008:10:22 16:28:39", "+0200"));
    CHECK_EQ_INT(t, 1224692919 - 7200);
    CHECK(mi_exif_parse_date(&t, "1970:01:01 00:00:00", "+00:00"));
    CHECK_EQ_INT(t, 0);
    CHECK(mi_exif_parse_date(&t, "1900:03:01 00:00:00", "+00:00"));
    CHECK_EQ_INT(t, -2203891200LL);
    CHECK(mi_exif_parse_date(&t, "2100:12:31 23:59:59", "+00:00"));
    CHECK_EQ_INT(t, 4133980799LL);
    /* Leap days. */
    CHECK(mi_exif_parse_date(&t, "2008:02:29 12:00:00", "+00:00"));
    CHECK(mi_exif_parse_date(&t, "2000:02:29 12:00:00", "+00:00"));
    /* Local time, as mktime() sees it. */
    CHECK(mi_exif_parse_date(&t, "2008:10:22 16:28:39", NULL));
    CHECK_EQ_INT(t, local_time(2008, 10, 22, 16, 28, 39));
    CHECK(mi_exif_parse_date(&t, "2008:10:22 16:28:39", ""));
    CHECK_EQ_INT(t, local_time(2008, 10, 22, 16, 28, 39));
    CHECK(mi_exif_parse_date(&t, "2019:01:15 03:04:05", NULL));
    CHECK_EQ_INT(t, local_time(2019, 1, 15, 3, 4, 5));
    /* Tolerated variants: '-' separators, 'T', trailing blanks. */
    CHECK(mi_exif_parse_date(&t, "2008-10-22 16:28:39", "+00:00"));
    CHECK_EQ_INT(t, 1224692919);
    CHECK(mi_exif_parse_date(&t, "2008:10:22T16:28:39", "+00:00"));
    CHECK_EQ_INT(t, 1224692919);
    CHECK(mi_exif_parse_date(&t, "2008:10:22 16:28:39  ", "+00:00 "));
    CHECK_EQ_INT(t, 1224692919);
}

static void test_parse_date_invalid(void)
{
    static const char *bad[] = {
        "0000:00:00 00:00:00", "    :  :     :  :  ", "", "2008",
        "2008:10:22", "2008:10:22 16:28", "2008:13:01 00:00:00",
        "2008:00:10 00:00:00", "2008:10:00 00:00:00", "2008:02:30 00:00:00",
        "2009:02:29 00:00:00", "1900:02:29 00:00:00", "2008:04:31 00:00:00",
        "2008:10:22 24:00:00", "2008:10:22 23:60:00", "2008:10:22 23:59:61",
        "1799:12:31 23:59:59", "2201:01:01 00:00:00", "9999:99:99 99:99:99",
        "2008:10:22 16:28:39x", "2008:10-22 16:28:39", "2008:10:22_16:28:39",
        "2008:1O:22 16:28:39", "-008:10:22 16:28:39", "2008:10:22 16:28:3",
        "abcdefghijklmnopqrs",
    };
    int64_t t = 42;

    for (size_t i = 0; i < MI_ARRAY_LEN(bad); i++) {
        bool ok = mi_exif_parse_date(&t, bad[i], NULL);
        if (ok)
            printf("# accepted \"%s\"\n", bad[i]);
        CHECK(!ok);
        CHECK(!mi_exif_parse_date(&t, bad[i], "+01:00"));
    }
    CHECK(!mi_exif_parse_date(&t, NULL, NULL));
    CHECK(!mi_exif_parse_date(NULL, "2008:10:22 16:28:39", NULL));
    /* Malformed offsets. */
    CHECK(!mi_exif_parse_date(&t, "2008:10:22 16:28:39", "+2:00"));
    CHECK(!mi_exif_parse_date(&t, "2008:10:22 16:28:39", "02:00"));
    CHECK(!mi_exif_parse_date(&t, "2008:10:22 16:28:39", "Z"));
    CHECK(!mi_exif_parse_date(&t, "2008:10:22 16:28:39", "+25:00"));
    CHECK(!mi_exif_parse_date(&t, "2008:10:22 16:28:39", "+02:60"));
    CHECK(!mi_exif_parse_date(&t, "2008:10:22 16:28:39", "   :  "));
    CHECK_EQ_INT(t, 0);
}

/* ---------------------------------------------------------------------- */
/* Round trips through fixture JPEGs                                      */

static void test_roundtrip_all_fields(void)
{
    fx_exif x = { "2008:10:22 16:28:39", "2008:10:22 16:30:00",
                  "2008:11:01 21:15:07", "+02:00", 3, 1, 43.4674, 11.8851,
                  "NIKON", "COOLPIX P6000" };
    unsigned char *jpg;
    size_t len;
    mi_meta a, b;

    CHECK_OK(fx_jpeg_buffer(&jpg, &len, 40, 24, 7, &x));
    if (!jpg)
        return;
    CHECK_OK(read_exact(&a, jpg, len, type_of("jpg")));
    CHECK_OK(read_via_fd(&b, jpg, len, type_of("jpg")));
    CHECK(meta_equal(&a, &b));
    CHECK(a.has_date);
    CHECK_EQ_INT(a.date, 1224692919 - 7200);
    CHECK_EQ_INT(a.date_source, MI_DATE_EXIF_ORIGINAL);
    CHECK_EQ_INT(a.orientation, 3);
    CHECK_EQ_INT(a.width, 40);
    CHECK_EQ_INT(a.height, 24);
    CHECK(a.has_gps);
    CHECK(fabs(a.lat - 43.4674) < 1e-6);
    CHECK(fabs(a.lon - 11.8851) < 1e-6);
    CHECK_EQ_STR(a.make, "NIKON");
    CHECK_EQ_STR(a.model, "COOLPIX P6000");
    free(jpg);

    /* No EXIF at all: only the dimensions, and MI_OK for them. */
    CHECK_OK(fx_jpeg_buffer(&jpg, &len, 33, 17, 1, NULL));
    CHECK_OK(read_exact(&a, jpg, len, type_of("jpeg")));
    CHECK(!a.has_date && !a.has_gps && a.orientation == 0);
    CHECK_EQ_INT(a.width, 33);
    CHECK_EQ_INT(a.height, 17);
    CHECK_EQ_STR(a.make, "");
    CHECK_EQ_STR(a.model, "");
    free(jpg);
}

static void check_date(const fx_exif *x, bool has, int64_t date,
                       mi_date_source src, int line)
{
    unsigned char *jpg;
    size_t len;
    mi_meta m;

    if (fx_jpeg_buffer(&jpg, &len, 16, 16, 1, x) != 0) {
        printf("# line %d: fixture failed\n", line);
        mi_test_failed_now = 1;
        return;
    }
    read_exact(&m, jpg, len, type_of("jpg"));
    if (m.has_date != has || (has && (m.date != date || m.date_source != src))) {
        printf("# line %d: has_date %d date %" PRId64 " source %d, want %d %"
               PRId64 " %d\n", line, m.has_date, m.date, (int)m.date_source,
               has, date, (int)src);
        mi_test_failed_now = 1;
    }
    free(jpg);
}

static void test_date_fallback(void)
{
    const char *bad = "0000:00:00 00:00:00";
    int64_t t1 = local_time(2001, 2, 3, 4, 5, 6);
    int64_t t2 = local_time(2002, 3, 4, 5, 6, 7);
    int64_t t3 = local_time(2003, 4, 5, 6, 7, 8);
    fx_exif x;

    memset(&x, 0, sizeof x);
    x.datetime_original = "2001:02:03 04:05:06";
    x.datetime_digitized = "2002:03:04 05:06:07";
    x.datetime = "2003:04:05 06:07:08";
    check_date(&x, true, t1, MI_DATE_EXIF_ORIGINAL, __LINE__);
    x.datetime_original = bad;
    check_date(&x, true, t2, MI_DATE_EXIF_DIGITIZED, __LINE__);
    x.datetime_original = NULL;
    check_date(&x, true, t2, MI_DATE_EXIF_DIGITIZED, __LINE__);
    x.datetime_digitized = "    :  :     :  :  ";
    check_date(&x, true, t3, MI_DATE_EXIF_DATETIME, __LINE__);
    x.datetime_digitized = NULL;
    check_date(&x, true, t3, MI_DATE_EXIF_DATETIME, __LINE__);
    x.datetime = bad;
    check_date(&x, false, 0, MI_DATE_CTIME, __LINE__);
    x.datetime = "2003:13:05 06:07:08";
    check_date(&x, false, 0, MI_DATE_CTIME, __LINE__);
    x.datetime = NULL;
    check_date(&x, false, 0, MI_DATE_CTIME, __LINE__);
    /* OffsetTimeOriginal applies to DateTimeOriginal only. */
    x.datetime_original = "2001:02:03 04:05:06";
    x.offset_time_original = "-03:00";
    check_date(&x, true, 981173106 + 3 * 3600, MI_DATE_EXIF_ORIGINAL, __LINE__);
    x.datetime_original = bad;
    x.datetime_digitized = "2002:03:04 05:06:07";
    check_date(&x, true, t2, MI_DATE_EXIF_DIGITIZED, __LINE__);
    /* A blank offset means local time, not "no date". */
    x.datetime_original = "2001:02:03 04:05:06";
    x.offset_time_original = "   :  ";
    check_date(&x, true, t1, MI_DATE_EXIF_ORIGINAL, __LINE__);
}

static void test_orientation_and_size(void)
{
    for (int o = 0; o <= 10; o++) {
        fx_exif x;
        unsigned char *jpg;
        size_t len;
        mi_meta m;
        int want = (o >= 1 && o <= 8) ? o : 0;
        bool swap = want >= 5;

        memset(&x, 0, sizeof x);
        x.orientation = o;
        x.make = "M";  /* so that an APP1 exists even for o = 0 */
        CHECK_OK(fx_jpeg_buffer(&jpg, &len, 40, 24, (unsigned)o, &x));
        if (!jpg)
            continue;
        CHECK_OK(read_exact(&m, jpg, len, type_of("jpg")));
        CHECK_EQ_INT(m.orientation, want);
        CHECK_EQ_INT(m.width, swap ? 24 : 40);
        CHECK_EQ_INT(m.height, swap ? 40 : 24);
        free(jpg);
    }
}

static void test_gps_quadrants(void)
{
    static const double pts[][2] = {
        { 43.4674, 11.8851 }, { -33.8688, 151.2093 }, { 40.7128, -74.0060 },
        { -22.9068, -43.1729 }, { 0.0, 0.0 }, { 90.0, 180.0 },
        { -90.0, -180.0 }, { 0.5, -0.25 },
    };
    for (size_t i = 0; i < MI_ARRAY_LEN(pts); i++) {
        fx_exif x;
        unsigned char *jpg;
        size_t len;
        mi_meta m;

        memset(&x, 0, sizeof x);
        x.has_gps = 1;
        x.lat = pts[i][0];
        x.lon = pts[i][1];
        CHECK_OK(fx_jpeg_buffer(&jpg, &len, 8, 8, 1, &x));
        if (!jpg)
            continue;
        CHECK_OK(read_exact(&m, jpg, len, type_of("jpg")));
        CHECK(m.has_gps);
        if (fabs(m.lat - pts[i][0]) > 1e-6 || fabs(m.lon - pts[i][1]) > 1e-6) {
            printf("# %f,%f read as %f,%f\n", pts[i][0], pts[i][1], m.lat, m.lon);
            mi_test_failed_now = 1;
        }
        free(jpg);
    }
}

static void test_make_model(void)
{
    char long_name[200];
    fx_exif x;
    unsigned char *jpg;
    size_t len;
    mi_meta m;

    memset(long_name, 'A', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    memset(&x, 0, sizeof x);
    x.make = "  Canon\t ";
    x.model = "EOS\x01" "40D\x7f  ";
    CHECK_OK(fx_jpeg_buffer(&jpg, &len, 8, 8, 1, &x));
    CHECK_OK(read_exact(&m, jpg, len, type_of("jpg")));
    CHECK_EQ_STR(m.make, "Canon");
    CHECK_EQ_STR(m.model, "EOS 40D");
    free(jpg);

    x.make = long_name;
    x.model = "Caf\xc3\xa9";
    CHECK_OK(fx_jpeg_buffer(&jpg, &len, 8, 8, 1, &x));
    CHECK_OK(read_exact(&m, jpg, len, type_of("jpg")));
    CHECK_EQ_INT(strlen(m.make), sizeof m.make - 1);
    CHECK(strspn(m.make, "A") == sizeof m.make - 1);
    CHECK_EQ_STR(m.model, "Caf??");
    free(jpg);

    x.make = "";
    x.model = "   ";
    CHECK_OK(fx_jpeg_buffer(&jpg, &len, 8, 8, 1, &x));
    CHECK_OK(read_exact(&m, jpg, len, type_of("jpg")));
    CHECK_EQ_STR(m.make, "");
    CHECK_EQ_STR(m.model, "");
    free(jpg);
}

/* ---------------------------------------------------------------------- */
/* Hand-made EXIF: a tiny TIFF writer                                     */

enum { T_BYTE = 1, T_ASCII = 2, T_SHORT = 3, T_LONG = 4, T_RATIONAL = 5,
       T_SRATIONAL = 10 };

typedef struct tent {
    uint16_t tag, type;
    uint32_t count;
    const void *data;  /* already in the block's byte order */
    size_t len;
} tent;

typedef struct tiffw {
    unsigned char b[4096];
    size_t data_end;
    bool be;
} tiffw;

static void put16(tiffw *w, size_t off, uint32_t v)
{
    w->b[off + (w->be ? 0 : 1)] = (unsigned char)(v >> 8);
    w->b[off + (w->be ? 1 : 0)] = (unsigned char)v;
}

static void put32(tiffw *w, size_t off, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        w->b[off + (size_t)(w->be ? i : 3 - i)] = (unsigned char)(v >> (24 - 8 * i));
}

/* Write an IFD at TIFF offset `at` (the block has a 6-byte Exif header);
 * returns the TIFF offset just after it. */
static size_t put_ifd(tiffw *w, size_t at, const tent *e, size_t n,
                      const uint16_t *ptr_tags, const uint32_t *ptr_vals,
                      size_t nptr)
{
    size_t p = 6 + at;

    put16(w, p, (uint32_t)(n + nptr));
    p += 2;
    for (size_t i = 0; i < n; i++, p += 12) {
        put16(w, p, e[i].tag);
        put16(w, p + 2, e[i].type);
        put32(w, p + 4, e[i].count);
        if (e[i].len <= 4) {
            memcpy(w->b + p + 8, e[i].data, e[i].len);
        } else {
            put32(w, p + 8, (uint32_t)(w->data_end - 6));
            memcpy(w->b + w->data_end, e[i].data, e[i].len);
            w->data_end += (e[i].len + 1) & ~(size_t)1;
        }
    }
    for (size_t i = 0; i < nptr; i++, p += 12) {
        put16(w, p, ptr_tags[i]);
        put16(w, p + 2, T_LONG);
        put32(w, p + 4, 1);
        put32(w, p + 8, ptr_vals[i]);
    }
    put32(w, p, 0);
    return p + 4 - 6;
}

/* "Exif\0\0" + TIFF with IFD0, an optional Exif IFD and GPS IFD.  The
 * data area starts at TIFF offset 1024. */
static size_t build_exif(tiffw *w, bool be, const tent *ifd0, size_t n0,
                         const tent *exif, size_t ne, const tent *gps, size_t ng)
{
    uint16_t tags[2] = { 0, 0 };
    uint32_t vals[2] = { 0, 0 };
    size_t np = 0, next;

    memset(w, 0, sizeof *w);
    w->be = be;
    memcpy(w->b, "Exif\0\0", 6);
    memcpy(w->b + 6, be ? "MM\0*" : "II*\0", 4);
    put32(w, 10, 8);
    w->data_end = 6 + 1024;
    /* IFD0 goes first; the sub-IFDs follow it. */
    next = 8 + 2 + 12 * (n0 + (ne ? 1 : 0) + (ng ? 1 : 0)) + 4;
    if (ne) {
        tags[np] = 0x8769;
        vals[np++] = (uint32_t)next;
        next += 2 + 12 * ne + 4;
    }
    if (ng) {
        tags[np] = 0x8825;
        vals[np++] = (uint32_t)next;
    }
    next = put_ifd(w, 8, ifd0, n0, tags, vals, np);
    if (ne)
        next = put_ifd(w, next, exif, ne, NULL, NULL, 0);
    if (ng)
        put_ifd(w, next, gps, ng, NULL, NULL, 0);
    return w->data_end;
}

static void rationals(unsigned char *out, bool be, const uint32_t *v, int n)
{
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 4; k++)
            out[4 * i + (be ? k : 3 - k)] = (unsigned char)(v[i] >> (24 - 8 * k));
}

static mi_status read_app1(mi_meta *m, const unsigned char *block, size_t len)
{
    unsigned char *jpg;
    size_t jlen;
    mi_status st;

    if (fx_jpeg_buffer_app1(&jpg, &jlen, 16, 8, 1, block, len) != 0)
        return MI_ERROR;
    st = read_exact(m, jpg, jlen, type_of("jpg"));
    free(jpg);
    return st;
}

/* A GPS IFD with the given latitude rationals, type and refs. */
static mi_meta gps_case(bool be, const uint32_t lat[6], uint16_t type,
                        uint32_t count, const char *lat_ref, const char *lon_ref)
{
    static const uint32_t lon[6] = { 11, 1, 53, 1, 630, 100 };
    unsigned char la[48], lo[48];
    tent g[4];
    size_t n = 0, len;
    tiffw w;
    mi_meta m;

    rationals(la, be, lat, 6);
    rationals(lo, be, lon, 6);
    if (lat_ref)
        g[n++] = (tent){ 1, T_ASCII, 2, lat_ref, 2 };
    g[n++] = (tent){ 2, type, count, la, 8 * count };
    if (lon_ref)
        g[n++] = (tent){ 3, T_ASCII, 2, lon_ref, 2 };
    g[n++] = (tent){ 4, T_RATIONAL, 3, lo, 24 };
    len = build_exif(&w, be, NULL, 0, NULL, 0, g, n);
    memset(&m, 0, sizeof m);
    read_app1(&m, w.b, len);
    return m;
}

static void test_gps_malformed(void)
{
    const uint32_t good[6] = { 43, 1, 28, 1, 260, 100 };
    double want = 43.0 + 28.0 / 60 + 2.6 / 3600;
    mi_meta m;

    for (int be = 0; be <= 1; be++) {
        m = gps_case(be, good, T_RATIONAL, 3, "N", "E");
        CHECK(m.has_gps);
        CHECK(fabs(m.lat - want) < 1e-9);
        CHECK(fabs(m.lon - (11 + 53.0 / 60 + 6.3 / 3600)) < 1e-9);
        m = gps_case(be, good, T_RATIONAL, 3, "s", "w");  /* lower case */
        CHECK(m.has_gps && m.lat < 0 && m.lon < 0);
        for (int i = 0; i < 3; i++) {  /* a zero denominator anywhere */
            uint32_t bad[6];
            memcpy(bad, good, sizeof bad);
            bad[2 * i + 1] = 0;
            m = gps_case(be, bad, T_RATIONAL, 3, "N", "E");
            CHECK(!m.has_gps);
        }
        /* SRATIONAL, as a Nokia 8.3 writes it: the same position; a
         * negative part (0xffffffd5 = -43) is no position. */
        m = gps_case(be, good, T_SRATIONAL, 3, "N", "E");
        CHECK(m.has_gps);
        CHECK(fabs(m.lat - want) < 1e-9);
        {
            const uint32_t neg[6] = { 0xffffffd5u, 1, 28, 1, 260, 100 };
            const uint32_t negden[6] = { 43, 0xffffffffu, 28, 1, 260, 100 };
            m = gps_case(be, neg, T_SRATIONAL, 3, "N", "E");
            CHECK(!m.has_gps);
            m = gps_case(be, negden, T_SRATIONAL, 3, "N", "E");
            CHECK(!m.has_gps);
            m = gps_case(be, neg, T_RATIONAL, 3, "N", "E");  /* 4.29e9 deg */
            CHECK(!m.has_gps);
        }
        m = gps_case(be, good, T_RATIONAL, 2, "N", "E");
        CHECK(!m.has_gps);
        m = gps_case(be, good, T_RATIONAL, 3, NULL, "E");
        CHECK(!m.has_gps);
        m = gps_case(be, good, T_RATIONAL, 3, "N", NULL);
        CHECK(!m.has_gps);
        m = gps_case(be, good, T_RATIONAL, 3, "X", "E");
        CHECK(!m.has_gps);
        {
            const uint32_t far[6] = { 91, 1, 0, 1, 0, 1 };
            const uint32_t huge[6] = { 4000000000u, 1, 0, 1, 0, 1 };
            const uint32_t edge[6] = { 89, 1, 59, 1, 6000, 100 };  /* = 90 */
            m = gps_case(be, far, T_RATIONAL, 3, "N", "E");
            CHECK(!m.has_gps);
            m = gps_case(be, huge, T_RATIONAL, 3, "N", "E");
            CHECK(!m.has_gps);
            m = gps_case(be, edge, T_RATIONAL, 3, "S", "E");
            CHECK(m.has_gps && fabs(m.lat + 90.0) < 1e-9);
        }
    }
}

static void test_handmade_tags(void)
{
    tiffw w;
    size_t len;
    mi_meta m;

    for (int be = 0; be <= 1; be++) {
        unsigned char o6[4] = { 0 }, o6l[4] = { 0 }, w32[4], h32[4];
        o6[be ? 1 : 0] = 6;
        o6l[be ? 3 : 0] = 6;
        {
            /* Orientation as SHORT; DateTime in IFD0 with OffsetTime in
             * the Exif IFD. */
            tent i0[] = {
                { 0x010f, T_ASCII, 5, "Sony", 5 },
                { 0x0112, T_SHORT, 1, o6, 2 },
                { 0x0132, T_ASCII, 20, "2010:06:01 12:00:00", 20 },
            };
            tent ex[] = { { 0x9010, T_ASCII, 7, "+09:00", 7 } };
            len = build_exif(&w, be, i0, MI_ARRAY_LEN(i0), ex, 1, NULL, 0);
            CHECK_OK(read_app1(&m, w.b, len));
            CHECK_EQ_STR(m.make, "Sony");
            CHECK_EQ_INT(m.orientation, 6);
            CHECK_EQ_INT(m.width, 8);   /* 16 x 8, turned */
            CHECK_EQ_INT(m.height, 16);
            CHECK(m.has_date);
            CHECK_EQ_INT(m.date_source, MI_DATE_EXIF_DATETIME);
            CHECK_EQ_INT(m.date, 1275393600 - 9 * 3600);
        }
        {
            tent i0[] = {
                { 0x0112, T_LONG, 1, o6l, 4 },   /* wrong type: ignored */
                { 0x9003, T_ASCII, 20, "2010:06:01 12:00:00", 20 },  /* wrong IFD */
                { 0x0110, T_SHORT, 1, "\0\0", 2 },  /* Model as SHORT */
            };
            len = build_exif(&w, be, i0, MI_ARRAY_LEN(i0), NULL, 0, NULL, 0);
            CHECK_OK(read_app1(&m, w.b, len));
            CHECK_EQ_INT(m.orientation, 0);
            /* libexif drops DateTimeOriginal outside the Exif IFD. */
            CHECK(!m.has_date);
            CHECK_EQ_STR(m.model, "");
        }
        {
            /* A bare TIFF file: dimensions from IFD0. */
            unsigned char *tif;
            w32[0] = w32[1] = w32[2] = w32[3] = 0;
            h32[0] = h32[1] = h32[2] = h32[3] = 0;
            w32[be ? 2 : 1] = 0x12;  /* 0x1234 as LONG */
            w32[be ? 3 : 0] = 0x34;
            h32[be ? 0 : 1] = 0x02;  /* 0x0201 as SHORT */
            h32[be ? 1 : 0] = 0x01;
            {
                tent i0[] = {
                    { 0x0100, T_LONG, 1, w32, 4 },
                    { 0x0101, T_SHORT, 1, h32, 2 },
                    { 0x0110, T_ASCII, 4, "X-1", 4 },
                };
                len = build_exif(&w, be, i0, MI_ARRAY_LEN(i0), NULL, 0, NULL, 0);
            }
            tif = w.b + 6;
            CHECK_OK(read_exact(&m, tif, len - 6, type_of("tif")));
            CHECK_EQ_INT(m.width, 0x1234);
            CHECK_EQ_INT(m.height, 0x0201);
            CHECK_EQ_STR(m.model, "X-1");
            /* Sniffed even under another name. */
            CHECK_OK(read_exact(&m, tif, len - 6, type_of("jpg")));
            CHECK_EQ_INT(m.width, 0x1234);
        }
    }
}

/* ---------------------------------------------------------------------- */
/* Other formats' headers                                                 */

static void test_png_gif_bmp(void)
{
    unsigned char *png, b[64];
    size_t len;
    mi_meta m;

    CHECK_OK(fx_png_buffer(&png, &len, 37, 21, 3));
    CHECK_OK(read_exact(&m, png, len, type_of("png")));
    CHECK_EQ_INT(m.width, 37);
    CHECK_EQ_INT(m.height, 21);
    CHECK(!m.has_date && m.orientation == 0);
    /* PNG under a .jpg name: the bytes decide. */
    CHECK_OK(read_exact(&m, png, len, type_of("jpg")));
    CHECK_EQ_INT(m.width, 37);
    /* Truncated in IHDR. */
    CHECK_EQ_INT(read_exact(&m, png, 20, type_of("png")), MI_EFORMAT);
    CHECK_EQ_INT(m.width, 0);
    free(png);

    CHECK_OK(read_exact(&m, "GIF89a\x2c\x01\xc8\x00\xf7\0\0", 13, type_of("gif")));
    CHECK_EQ_INT(m.width, 300);
    CHECK_EQ_INT(m.height, 200);
    CHECK_EQ_INT(read_exact(&m, "GIF89a\x2c\x01", 8, type_of("gif")), MI_EFORMAT);

    memset(b, 0, sizeof b);
    memcpy(b, "BM", 2);
    b[14] = 40;
    b[18] = 13;                     /* width 13 */
    b[22] = 0xF9; b[23] = b[24] = b[25] = 0xFF;  /* height -7: top-down */
    CHECK_OK(read_exact(&m, b, 54, type_of("bmp")));
    CHECK_EQ_INT(m.width, 13);
    CHECK_EQ_INT(m.height, 7);
    b[22] = 0; b[23] = 0; b[24] = 0; b[25] = 0x80;  /* INT32_MIN */
    CHECK_OK(read_exact(&m, b, 54, type_of("bmp")));
    CHECK_EQ_INT(m.height, 2147483648u);
    b[18] = 0xFF; b[19] = b[20] = b[21] = 0xFF;  /* width -1: invalid */
    CHECK_EQ_INT(read_exact(&m, b, 54, type_of("bmp")), MI_EFORMAT);
    memset(b + 14, 0, 16);
    b[14] = 12;                     /* OS/2 header, 16-bit sizes */
    b[18] = 0x10; b[19] = 1; b[20] = 9;
    CHECK_OK(read_exact(&m, b, 26, type_of("bmp")));
    CHECK_EQ_INT(m.width, 0x110);
    CHECK_EQ_INT(m.height, 9);
}

static void test_webp(void)
{
    /* Lossy: frame tag, start code, 14-bit width/height (+ scale bits). */
    unsigned char vp8[30] = { 'R', 'I', 'F', 'F', 22, 0, 0, 0, 'W', 'E', 'B', 'P',
                              'V', 'P', '8', ' ', 10, 0, 0, 0,
                              0, 0, 0, 0x9d, 0x01, 0x2a, 0x40, 0x41, 0x20, 0xC0 };
    /* Lossless: 0x2f, then (w-1) | (h-1) << 14. */
    unsigned char vp8l[25] = { 'R', 'I', 'F', 'F', 17, 0, 0, 0, 'W', 'E', 'B', 'P',
                               'V', 'P', '8', 'L', 5, 0, 0, 0, 0x2f, 0, 0, 0, 0 };
    /* Extended: canvas (w-1), (h-1) in 24 bits each. */
    unsigned char vp8x[30] = { 'R', 'I', 'F', 'F', 22, 0, 0, 0, 'W', 'E', 'B', 'P',
                               'V', 'P', '8', 'X', 10, 0, 0, 0,
                               0, 0, 0, 0, 0x3f, 0x42, 0x0f, 0x1f, 0x0, 0x0 };
    uint32_t bits = (999u - 1) | ((77u - 1) << 14);
    mi_meta m;

    CHECK_OK(read_exact(&m, vp8, sizeof vp8, type_of("webp")));
    CHECK_EQ_INT(m.width, 0x140);
    CHECK_EQ_INT(m.height, 0x20);
    vp8l[21] = (unsigned char)bits;
    vp8l[22] = (unsigned char)(bits >> 8);
    vp8l[23] = (unsigned char)(bits >> 16);
    vp8l[24] = (unsigned char)(bits >> 24);
    CHECK_OK(read_exact(&m, vp8l, sizeof vp8l, type_of("webp")));
    CHECK_EQ_INT(m.width, 999);
    CHECK_EQ_INT(m.height, 77);
    CHECK_OK(read_exact(&m, vp8x, sizeof vp8x, type_of("webp")));
    CHECK_EQ_INT(m.width, 0x0f423f + 1);
    CHECK_EQ_INT(m.height, 0x1f + 1);
    /* Broken start code; truncated chunks. */
    vp8[23] = 0;
    CHECK_EQ_INT(read_exact(&m, vp8, sizeof vp8, type_of("webp")), MI_EFORMAT);
    for (size_t n = 0; n < sizeof vp8l; n++)
        CHECK(read_exact(&m, vp8l, n, type_of("webp")) != MI_OK || n == sizeof vp8l);
}

/* A minimal HEIF: ftyp, meta (pitm, iinf, iloc, iprp), mdat with Exif. */
static size_t build_heif(unsigned char *out, const unsigned char *exif_tiff,
                         size_t tiff_len, int irot)
{
    unsigned char meta[512];
    size_t n = 0, m = 0, exif_at;
    size_t meta_start, iloc_off_field;

#define B8(buf, i, v) ((buf)[(i)++] = (unsigned char)(v))
#define B16(buf, i, v) (B8(buf, i, (v) >> 8), B8(buf, i, v))
#define B32(buf, i, v) (B16(buf, i, (v) >> 16), B16(buf, i, v))
#define TAG(buf, i, s) (memcpy((buf) + (i), s, 4), (i) += 4)
    /* ftyp */
    B32(out, n, 24); TAG(out, n, "ftyp"); TAG(out, n, "heic"); B32(out, n, 0);
    TAG(out, n, "mif1"); TAG(out, n, "heic");
    /* meta body, built in `meta` then wrapped */
    B32(meta, m, 0);                                   /* version, flags */
    B32(meta, m, 14); TAG(meta, m, "pitm"); B32(meta, m, 0); B16(meta, m, 1);
    /* iinf v0 with two infe v2: item 1 hvc1, item 2 Exif */
    B32(meta, m, 14 + 2 * 21); TAG(meta, m, "iinf"); B32(meta, m, 0); B16(meta, m, 2);
    B32(meta, m, 21); TAG(meta, m, "infe"); B32(meta, m, 0x02000000);
    B16(meta, m, 1); B16(meta, m, 0); TAG(meta, m, "hvc1"); B8(meta, m, 0);
    B32(meta, m, 21); TAG(meta, m, "infe"); B32(meta, m, 0x02000000);
    B16(meta, m, 2); B16(meta, m, 0); TAG(meta, m, "Exif"); B8(meta, m, 0);
    /* iloc v0, offset_size 4, length_size 4, base 0; item 2, one extent */
    B32(meta, m, 8 + 4 + 2 + 2 + 2 + 2 + 2 + 8); TAG(meta, m, "iloc");
    B32(meta, m, 0); B8(meta, m, 0x44); B8(meta, m, 0x00); B16(meta, m, 1);
    B16(meta, m, 2); B16(meta, m, 0); B16(meta, m, 1);
    iloc_off_field = m;
    B32(meta, m, 0); B32(meta, m, (uint32_t)(4 + 6 + tiff_len));
    /* iprp: ipco (ispe 640x480, irot), ipma item 1 -> 1, 2 */
    B32(meta, m, 8 + (8 + 20 + 9) + (8 + 4 + 4 + 2 + 1 + 2)); TAG(meta, m, "iprp");
    B32(meta, m, 8 + 20 + 9); TAG(meta, m, "ipco");
    B32(meta, m, 20); TAG(meta, m, "ispe"); B32(meta, m, 0); B32(meta, m, 640);
    B32(meta, m, 480);
    B32(meta, m, 9); TAG(meta, m, "irot"); B8(meta, m, irot);
    B32(meta, m, 8 + 4 + 4 + 2 + 1 + 2); TAG(meta, m, "ipma"); B32(meta, m, 0);
    B32(meta, m, 1); B16(meta, m, 1); B8(meta, m, 2); B8(meta, m, 0x81);
    B8(meta, m, 0x02);
    meta_start = n;
    B32(out, n, 8 + m); TAG(out, n, "meta");
    memcpy(out + n, meta, m);
    n += m;
    /* mdat: 4-byte offset (6), "Exif\0\0", TIFF */
    B32(out, n, 8 + 4 + 6 + tiff_len); TAG(out, n, "mdat");
    exif_at = n;
    B32(out, n, 6);
    memcpy(out + n, "Exif\0\0", 6);
    n += 6;
    memcpy(out + n, exif_tiff, tiff_len);
    n += tiff_len;
    {
        size_t at = meta_start + 8 + iloc_off_field;
        B32(out, at, (uint32_t)exif_at);
    }
#undef B8
#undef B16
#undef B32
#undef TAG
    return n;
}

static void test_heif(void)
{
    static unsigned char file[8192];
    unsigned char o6[2] = { 6, 0 };
    tent i0[] = {
        { 0x010f, T_ASCII, 6, "Apple", 6 },
        { 0x0112, T_SHORT, 1, o6, 2 },
    };
    tent ex[] = { { 0x9003, T_ASCII, 20, "2021:12:25 08:00:00", 20 },
                  { 0x9011, T_ASCII, 7, "+01:00", 7 } };
    tiffw w;
    size_t len = build_exif(&w, false, i0, 2, ex, 2, NULL, 0), n;
    mi_meta m;

    n = build_heif(file, w.b + 6, len - 6, 3);
    CHECK_OK(read_exact(&m, file, n, type_of("heic")));
    CHECK_EQ_STR(m.make, "Apple");
    CHECK_EQ_INT(m.orientation, 6);
    CHECK(m.has_date);
    CHECK_EQ_INT(m.date, 1640419200 - 3600);
    /* irot 3 (270 degrees): displayed 480 x 640. */
    CHECK_EQ_INT(m.width, 480);
    CHECK_EQ_INT(m.height, 640);
    /* Without irot the EXIF orientation does not turn a HEIF. */
    n = build_heif(file, w.b + 6, len - 6, 0);
    CHECK_OK(read_exact(&m, file, n, type_of("heif")));
    CHECK_EQ_INT(m.width, 640);
    CHECK_EQ_INT(m.height, 480);
    /* Every prefix, and through a descriptor. */
    for (size_t k = 0; k < n; k++) {
        mi_status st = read_exact(&m, file, k, type_of("heic"));
        CHECK(st == MI_OK || st == MI_EFORMAT);
    }
    {
        mi_meta a, b;
        read_exact(&a, file, n, type_of("heic"));
        CHECK_OK(read_via_fd(&b, file, n, type_of("heic")));
        CHECK(meta_equal(&a, &b));
    }
}

/* ---------------------------------------------------------------------- */
/* Hostile JPEGs                                                          */

static unsigned char *full_jpeg(size_t *len)
{
    fx_exif x = { "2008:10:22 16:28:39", "2008:10:22 16:30:00",
                  "2008:11:01 21:15:07", "+02:00", 6, 1, -43.4674, 11.8851,
                  "NIKON", "COOLPIX P6000" };
    unsigned char *jpg = NULL;

    fx_jpeg_buffer(&jpg, len, 24, 16, 5, &x);
    return jpg;
}

static void test_every_prefix(void)
{
    size_t len;
    unsigned char *jpg = full_jpeg(&len);
    mi_meta m, full;
    char *dir = fx_tempdir(), *path = dir ? fx_path(dir, "t.jpg") : NULL;
    int fd = -1;

    CHECK(jpg && path);
    if (!jpg || !path)
        goto out;
    CHECK_OK(read_exact(&full, jpg, len, type_of("jpg")));
    CHECK_EQ_INT(full.width, 16);
    CHECK_EQ_INT(full.height, 24);
    CHECK(fx_write_file(path, jpg, len) == 0);
    fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    for (size_t k = 0; k <= len; k++) {
        mi_status st = read_exact(&m, jpg, k, type_of("jpg"));
        CHECK(st == MI_OK || st == MI_EFORMAT);
        /* The dimensions come after the EXIF: complete once SOF is in. */
        if (m.width)
            CHECK(m.width == 16 && m.height == 24);
        if (m.has_gps)
            CHECK(m.lat == full.lat && m.lon == full.lon);
        /* The descriptor path agrees, told the file is shorter. */
        if (fd >= 0) {
            mi_meta f;
            st = mi_meta_read_fd(&f, fd, k, type_of("jpg"));
            CHECK(st == MI_OK || st == MI_EFORMAT);
            CHECK(meta_equal(&m, &f));
        }
    }
    CHECK(meta_equal(&m, &full));
out:
    if (fd >= 0)
        close(fd);
    if (dir)
        fx_rmtree(dir);
    free(dir);
    free(path);
    free(jpg);
}

static uint32_t rnd(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void test_mutations(void)
{
    size_t len;
    unsigned char *jpg = full_jpeg(&len), *copy;
    uint32_t seed = 0xC0FFEE;

    if (!jpg)
        return;
    copy = malloc(len);
    /* Flip bytes, mostly inside the APP1 (the first ~400 bytes), so that
     * libexif sees broken IFDs, counts, offsets and formats. */
    for (int round = 0; round < 4000; round++) {
        mi_meta m;
        mi_status st;
        int flips = 1 + (int)(rnd(&seed) % 8);
        size_t cut = len - rnd(&seed) % 64;

        memcpy(copy, jpg, len);
        for (int f = 0; f < flips; f++) {
            size_t at = 2 + rnd(&seed) % (round % 4 ? 400 : len - 2);
            copy[at] = (unsigned char)rnd(&seed);
        }
        st = read_exact(&m, copy, cut, type_of("jpg"));
        CHECK(st == MI_OK || st == MI_EFORMAT);
        CHECK(m.orientation >= 0 && m.orientation <= 8);
        CHECK(!m.has_gps || (fabs(m.lat) <= 90 && fabs(m.lon) <= 180));
        CHECK(strlen(m.make) < sizeof m.make && strlen(m.model) < sizeof m.model);
        for (const char *p = m.make; *p; p++)
            CHECK(*p >= 0x20 && *p < 0x7f);
    }
    free(copy);
    free(jpg);
}

static void test_random_bytes(void)
{
    static const char *const prefixes[] = {
        "\xff\xd8\xff", "\xff\xd8\xff\xe1\xff\xff" "Exif\0\0II*\0",
        "\x89PNG\r\n\x1a\n", "GIF89a", "BM", "RIFF\xff\xff\0\0WEBP", "II*\0",
        "MM\0*", "\0\0\0\x18" "ftypheic\0\0\0\0mif1heic",
    };
    static const size_t plen[] = { 3, 16, 8, 6, 2, 12, 4, 4, 24 };
    static const char *const exts[] = { "jpg", "jpg", "png", "gif", "bmp",
                                        "webp", "tif", "tif", "heic" };
    uint32_t seed = 42;
    unsigned char buf[2048];

    for (size_t p = 0; p < MI_ARRAY_LEN(prefixes); p++) {
        for (int round = 0; round < 1500; round++) {
            size_t n = plen[p] + rnd(&seed) % (sizeof buf - plen[p]);
            mi_meta m;
            mi_status st;

            memcpy(buf, prefixes[p], plen[p]);
            for (size_t i = plen[p]; i < n; i++)
                buf[i] = (unsigned char)rnd(&seed);
            /* Sprinkle plausible structure: markers, boxes. */
            if (round % 3 == 0 && n > 64) {
                buf[plen[p] + rnd(&seed) % 32] = 0xFF;
                memcpy(buf + 24 + rnd(&seed) % 32, "meta", 4);
            }
            st = read_exact(&m, buf, n, type_of(exts[p]));
            CHECK(st == MI_OK || st == MI_EFORMAT);
        }
    }
}

static void test_marker_walk(void)
{
    unsigned char *jpg, *big;
    size_t len, n = 0;
    mi_meta m;

    CHECK_OK(fx_jpeg_buffer(&jpg, &len, 21, 13, 1, NULL));
    if (!jpg)
        return;
    big = malloc(len + 3 * 65540 + 4096);
    /* SOI, three maximal APP2 segments, fill bytes, junk, then the rest. */
    memcpy(big, jpg, 2);
    n = 2;
    for (int i = 0; i < 3; i++) {
        big[n++] = 0xFF; big[n++] = 0xE2; big[n++] = 0xFF; big[n++] = 0xFF;
        memset(big + n, 0xFF, 65533);  /* looks like fill bytes: skipped */
        n += 65533;
    }
    big[n++] = 0xFF; big[n++] = 0xFF; big[n++] = 0xFF;  /* fill */
    memcpy(big + n, jpg + 2, len - 2);
    n += len - 2;
    CHECK_OK(read_exact(&m, big, n, type_of("jpg")));
    CHECK_EQ_INT(m.width, 21);
    CHECK_EQ_INT(m.height, 13);
    /* Junk between segments: resynchronised, as libjpeg does. */
    n = 2;
    memcpy(big + n, "junkjunk", 8);
    n += 8;
    memcpy(big + n, jpg + 2, len - 2);
    n += len - 2;
    CHECK_OK(read_exact(&m, big, n, type_of("jpg")));
    CHECK_EQ_INT(m.width, 21);
    /* Thousands of empty COM segments: the walk gives up, no hang. */
    n = 2;
    for (int i = 0; i < 5000; i++) {
        big[n++] = 0xFF; big[n++] = 0xFE; big[n++] = 0; big[n++] = 2;
    }
    memcpy(big + n, jpg + 2, len - 2);
    n += len - 2;
    CHECK_EQ_INT(read_exact(&m, big, n, type_of("jpg")), MI_EFORMAT);
    /* A segment length past the end, and a length below 2. */
    memcpy(big, "\xff\xd8\xff\xe1\xff\xf0" "Exif\0\0", 12);
    CHECK_EQ_INT(read_exact(&m, big, 12, type_of("jpg")), MI_EFORMAT);
    memcpy(big, "\xff\xd8\xff\xe0\x00\x01", 6);
    CHECK_EQ_INT(read_exact(&m, big, 6, type_of("jpg")), MI_EFORMAT);
    /* An APP1 that is not EXIF (XMP) is skipped. */
    n = 2;
    memcpy(big + n, "\xff\xe1\x00\x20http://ns.adobe.com/xap/1.0/\0..", 36);
    n += 36;
    memcpy(big + n, jpg + 2, len - 2);
    n += len - 2;
    CHECK_OK(read_exact(&m, big, n, type_of("jpg")));
    CHECK_EQ_INT(m.width, 21);
    free(big);
    free(jpg);
}

static void test_api_edges(void)
{
    mi_meta m;
    char *dir = fx_tempdir();
    int fd;

    CHECK_EQ_INT(mi_meta_read_fd(NULL, 0, 0, NULL), MI_EINVAL);
    CHECK_EQ_INT(mi_meta_read_fd(&m, -1, 10, type_of("jpg")), MI_EINVAL);
    CHECK_EQ_INT(mi_meta_read_buffer(&m, NULL, 0, type_of("jpg")), MI_EFORMAT);
    CHECK_EQ_INT(mi_meta_read_buffer(&m, NULL, 5, type_of("jpg")), MI_EINVAL);
    CHECK_EQ_INT(mi_meta_read_buffer(&m, "\xff\xd8\xff", 3, NULL), MI_EFORMAT);
    /* A video: nothing to read, zeros. */
    CHECK_EQ_INT(mi_meta_read_buffer(&m, "\0\0\0\x14" "ftypisom\0\0\0\0isom", 20,
                                     type_of("mp4")), MI_EFORMAT);
    CHECK(m.width == 0 && !m.has_date);
    /* A directory: pread() fails with EISDIR. */
    if (dir && (fd = open(dir, O_RDONLY | O_DIRECTORY)) >= 0) {
        CHECK_EQ_INT(mi_meta_read_fd(&m, fd, 4096, type_of("jpg")), MI_EIO);
        close(fd);
    }
    /* A size larger than the file: the end of the file ends the read. */
    if (dir) {
        char *path = fx_path(dir, "a.jpg");
        unsigned char *jpg;
        size_t len;
        if (path && fx_jpeg_buffer(&jpg, &len, 9, 9, 1, NULL) == 0) {
            fx_write_file(path, jpg, len);
            fd = open(path, O_RDONLY);
            CHECK_OK(mi_meta_read_fd(&m, fd, UINT64_MAX, type_of("jpg")));
            CHECK_EQ_INT(m.width, 9);
            close(fd);
            free(jpg);
        }
        free(path);
        fx_rmtree(dir);
    }
    free(dir);
}

/* ---------------------------------------------------------------------- */
/* The corpus (MI_TEST_CORPUS)                                            */

typedef struct corpus_file {
    char *rel;
    mi_meta meta;
    mi_status st;
} corpus_file;

typedef struct corpus {
    corpus_file *files;
    size_t n, cap;
    int failures;
} corpus;

static void corpus_walk(corpus *c, const char *root, const char *rel, int depth)
{
    char *dirpath = rel[0] ? fx_path(root, rel) : strdup(root);
    DIR *d = dirpath ? opendir(dirpath) : NULL;
    struct dirent *de;

    while (d && (de = readdir(d)) != NULL) {
        char *sub, *full;
        struct stat st;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        sub = rel[0] ? fx_path(rel, de->d_name) : strdup(de->d_name);
        full = fx_path(root, sub);
        if (lstat(full, &st) == 0 && S_ISDIR(st.st_mode) && depth < 16) {
            corpus_walk(c, root, sub, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            const mi_media_type *t = mi_media_from_name(de->d_name);
            corpus_file *f;
            unsigned char *buf;
            size_t len;
            int fd;

            if (c->n == c->cap) {
                c->cap = c->cap ? 2 * c->cap : 64;
                c->files = realloc(c->files, c->cap * sizeof *c->files);
            }
            f = &c->files[c->n++];
            memset(f, 0, sizeof *f);
            f->rel = sub;
            sub = NULL;
            if (!t)
                t = type_of("jpg");
            fd = open(full, O_RDONLY);
            if (fd < 0) {
                f->st = MI_EIO;
            } else {
                f->st = mi_meta_read_fd(&f->meta, fd, (uint64_t)st.st_size, t);
                close(fd);
            }
            /* The buffer path must agree with the descriptor path. */
            if (fx_read_file(full, &buf, &len) == 0) {
                mi_meta b;
                mi_status bs = read_exact(&b, buf, len, t);
                if (bs != f->st || !meta_equal(&b, &f->meta)) {
                    printf("# %s: buffer and fd reads differ\n", f->rel);
                    c->failures++;
                }
                free(buf);
            }
            if (f->st != MI_OK && f->st != MI_EFORMAT) {
                printf("# %s: status %d\n", f->rel, (int)f->st);
                c->failures++;
            }
            printf("# %-48s %2d %5ux%-5u o%d %s%-10" PRId64 " %s%.4f,%.4f [%s] [%s]\n",
                   f->rel, (int)f->st, f->meta.width, f->meta.height,
                   f->meta.orientation, f->meta.has_date ? "d" : "-",
                   f->meta.date, f->meta.has_gps ? "g" : "-", f->meta.lat,
                   f->meta.lon, f->meta.make, f->meta.model);
        }
        free(sub);
        free(full);
    }
    if (d)
        closedir(d);
    free(dirpath);
}

static corpus the_corpus;

static const corpus_file *corpus_get(const char *rel)
{
    for (size_t i = 0; i < the_corpus.n; i++)
        if (strcmp(the_corpus.files[i].rel, rel) == 0)
            return &the_corpus.files[i];
    printf("# corpus file %s missing\n", rel);
    mi_test_failed_now = 1;
    return NULL;
}

static void test_corpus_all_files(void)
{
    const char *root = fx_corpus();

    if (!root) {
        SKIP("MI_TEST_CORPUS not set");
        return;
    }
    corpus_walk(&the_corpus, root, "", 0);
    CHECK(the_corpus.n >= 90);
    CHECK_EQ_INT(the_corpus.failures, 0);
}

static void test_corpus_gps(void)
{
    const corpus_file *f;

    if (!fx_corpus()) {
        SKIP("MI_TEST_CORPUS not set");
        return;
    }
    f = corpus_get("jpg/gps/DSCN0010.jpg");
    if (!f)
        return;
    CHECK_EQ_INT(f->st, MI_OK);
    CHECK(f->meta.has_date);
    CHECK_EQ_INT(f->meta.date_source, MI_DATE_EXIF_ORIGINAL);
    CHECK_EQ_INT(f->meta.date, local_time(2008, 10, 22, 16, 28, 39));
    CHECK(f->meta.has_gps);
    CHECK(fabs(f->meta.lat - 43.4674) < 0.001);
    CHECK(fabs(f->meta.lon - 11.8851) < 0.001);
    CHECK_EQ_STR(f->meta.make, "NIKON");
    CHECK_EQ_STR(f->meta.model, "COOLPIX P6000");
    CHECK_EQ_INT(f->meta.width, 640);
    CHECK_EQ_INT(f->meta.height, 480);
    /* The Nokia 8.3 writes its position as SRATIONALs: Helsinki. */
    f = corpus_get("jpg/mobile/HMD_Nokia_8.3_5G.jpg");
    if (f) {
        CHECK(f->meta.has_gps);
        CHECK(fabs(f->meta.lat - 60.147) < 0.001);
        CHECK(fabs(f->meta.lon - 24.907) < 0.001);
    }
    /* Every photo of that set has a position in Tuscany. */
    for (size_t i = 0; i < the_corpus.n; i++) {
        const corpus_file *g = &the_corpus.files[i];
        if (strncmp(g->rel, "jpg/gps/DSCN", 12) != 0)
            continue;
        CHECK(g->meta.has_gps);
        CHECK(g->meta.lat > 43.0 && g->meta.lat < 44.0);
        CHECK(g->meta.lon > 11.0 && g->meta.lon < 12.0);
    }
}

static void test_corpus_orientation(void)
{
    if (!fx_corpus()) {
        SKIP("MI_TEST_CORPUS not set");
        return;
    }
    for (int o = 1; o <= 8; o++) {
        for (int portrait = 0; portrait <= 1; portrait++) {
            char rel[64];
            const corpus_file *f;

            snprintf(rel, sizeof rel, "jpg/orientation/%s_%d.jpg",
                     portrait ? "portrait" : "landscape", o);
            f = corpus_get(rel);
            if (!f)
                continue;
            CHECK_EQ_INT(f->meta.orientation, o);
            /* Displayed as the name says: the swap for 5..8 is right. */
            CHECK(f->meta.width && f->meta.height);
            if (portrait)
                CHECK(f->meta.width < f->meta.height);
            else
                CHECK(f->meta.width > f->meta.height);
        }
    }
}

static void test_corpus_cameras(void)
{
    static const struct { const char *rel, *make, *model; } cams[] = {
        { "jpg/Canon_40D.jpg", "Canon", "Canon EOS 40D" },
        { "jpg/Nikon_D70.jpg", "NIKON CORPORATION", "NIKON D70" },
        { "jpg/Fujifilm_FinePix_E500.jpg", "FUJIFILM", "FinePix E500" },
    };
    const corpus_file *f;

    if (!fx_corpus()) {
        SKIP("MI_TEST_CORPUS not set");
        return;
    }
    for (size_t i = 0; i < MI_ARRAY_LEN(cams); i++) {
        f = corpus_get(cams[i].rel);
        if (!f)
            continue;
        CHECK_EQ_STR(f->meta.make, cams[i].make);
        CHECK_EQ_STR(f->meta.model, cams[i].model);
        CHECK(f->meta.has_date);
    }
    f = corpus_get("jpg/Canon_40D.jpg");
    if (f)
        CHECK_EQ_INT(f->meta.date, local_time(2008, 5, 30, 15, 56, 1));
}

static void test_corpus_heic(void)
{
    const corpus_file *f;

    if (!fx_corpus()) {
        SKIP("MI_TEST_CORPUS not set");
        return;
    }
    f = corpus_get("heic/mobile/iphone_13_pro_max.HEIC");
    if (f) {
        CHECK_EQ_INT(f->st, MI_OK);
        CHECK_EQ_STR(f->meta.make, "Apple");
        CHECK(f->meta.has_date);
        CHECK(f->meta.width > 0 && f->meta.height > 0);
    }
    for (size_t i = 0; i < the_corpus.n; i++) {
        f = &the_corpus.files[i];
        if (strncmp(f->rel, "heic/", 5) == 0)
            CHECK(f->meta.width > 0 && f->meta.height > 0);
    }
}

static void corpus_free(void)
{
    for (size_t i = 0; i < the_corpus.n; i++)
        free(the_corpus.files[i].rel);
    free(the_corpus.files);
}

int main(void)
{
    RUN(test_parse_date_valid);
    RUN(test_parse_date_invalid);
    RUN(test_roundtrip_all_fields);
    RUN(test_date_fallback);
    RUN(test_orientation_and_size);
    RUN(test_gps_quadrants);
    RUN(test_make_model);
    RUN(test_gps_malformed);
    RUN(test_handmade_tags);
    RUN(test_png_gif_bmp);
    RUN(test_webp);
    RUN(test_heif);
    RUN(test_every_prefix);
    RUN(test_mutations);
    RUN(test_random_bytes);
    RUN(test_marker_walk);
    RUN(test_api_edges);
    RUN(test_corpus_all_files);
    RUN(test_corpus_gps);
    RUN(test_corpus_orientation);
    RUN(test_corpus_cameras);
    RUN(test_corpus_heic);
    corpus_free();
    return mi_test_done();
}
