/*
 * test-api.c - the public API: status codes, open/close, metadata through
 * lookups and cursors, snapshots, catalog recovery.  Public header only.
 */
#include <mediaindex.h>

#include "api-helpers.h"
#include "fixtures.h"
#include "mi-test.h"

#include <math.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static time_t local_time(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = { 0 };
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    tm.tm_isdst = -1;
    return mktime(&tm);
}

/* ---------------------------------------------------------------------- */

static void test_version_and_errors(void)
{
    char v[32];
    int codes[] = { MI_OK, MI_ROW, MI_DONE, MI_ERROR, MI_EINVAL, MI_ENOMEM,
                    MI_ENOTFOUND, MI_EEXISTS, MI_EIO, MI_EFORMAT, MI_ETOOBIG,
                    MI_EBUSY, MI_EABORTED, MI_EACCES, MI_ENOTDIR, MI_EDB,
                    MI_EUNSUPPORTED };
    size_t i;

    snprintf(v, sizeof(v), "%d.%d.%d", MI_VERSION_MAJOR, MI_VERSION_MINOR,
             MI_VERSION_PATCH);
    CHECK_EQ_STR(mi_version(), v);
    for (i = 0; i < MI_ARRAY_LEN_T(codes); i++) {
        CHECK(mi_strerror(codes[i]) != NULL);
        CHECK(strcmp(mi_strerror(codes[i]), "unknown status") != 0);
    }
    CHECK_EQ_STR(mi_strerror(-9999), "unknown status");
    CHECK_EQ_STR(mi_strerror(12345), "unknown status");
    CHECK_EQ_STR(mi_strerror(MI_ENOTFOUND), "not found");
    /* NULL-safety of the whole surface. */
    mi_index_close(NULL);
    mi_entry_free(NULL);
    mi_cursor_free(NULL);
    mi_hasher_free(NULL);
    CHECK_EQ_STR(mi_index_errmsg(NULL), "");
    CHECK(mi_cursor_next(NULL) == MI_EINVAL);
    CHECK(mi_cursor_entry(NULL) == NULL);
    CHECK(mi_scan(NULL, NULL, NULL) == MI_EINVAL);
    CHECK(mi_index_count(NULL, NULL, NULL) == MI_EINVAL);
    CHECK(mi_entry_path(NULL) == NULL);
}

static void test_open_options(void)
{
    char *dir = fx_tempdir();
    mi_index_options opts = MI_INDEX_OPTIONS_INIT;
    mi_scan_options sopts = MI_SCAN_OPTIONS_INIT;
    mi_scan_stats stats = MI_SCAN_STATS_INIT;
    mi_index *idx = NULL;
    char err[256];
    struct stat st;
    char *state;

    opts.version = 99;
    CHECK(mi_index_open(&idx, dir, &opts, err, sizeof(err)) == MI_EINVAL);
    CHECK(idx == NULL);
    CHECK(strstr(err, "version") != NULL);
    opts.version = MI_INDEX_OPTIONS_VERSION;
    opts.threads = 1;
    CHECK_OK(mi_index_open(&idx, dir, &opts, err, sizeof(err)));
    CHECK_EQ_STR(mi_index_errmsg(idx), "");
    state = fx_path(dir, ".mediaindex/index.sqlite3");
    CHECK(stat(state, &st) == 0);
    free(state);
    sopts.version = 0;
    CHECK(mi_scan(idx, &sopts, NULL) == MI_EINVAL);
    stats.version = 42;
    CHECK(mi_scan(idx, NULL, &stats) == MI_EINVAL);
    CHECK(strstr(mi_index_errmsg(idx), "version") != NULL);
    /* A relative folder is resolved. */
    CHECK(mi_index_storage_dir(idx)[0] == '/');
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

static void test_metadata(void)
{
    char *dir = fx_tempdir(), *p;
    fx_exif ex = { 0 };
    uint8_t h[MI_HASH_SIZE];
    mi_entry *e = NULL;
    mi_index *idx;
    double lat = 0, lon = 0;
    struct stat st;

    ex.datetime_original = "2008:10:22 16:28:39";
    ex.datetime = "2010:01:01 00:00:00";
    ex.orientation = 6;          /* rotate 90: displayed size swaps */
    ex.has_gps = 1;
    ex.lat = -33.8568;
    ex.lon = 151.2153;
    ex.make = "NIKON";
    ex.model = "COOLPIX P6000";
    p = fx_path(dir, "a.jpg");
    CHECK(fx_write_jpeg(p, 64, 48, 7, &ex) == 0);
    free(p);

    memset(&ex, 0, sizeof(ex));
    ex.datetime_original = "2021:06:01 12:00:00";
    ex.offset_time_original = "+02:00";
    p = fx_path(dir, "zoned.jpg");
    CHECK(fx_write_jpeg(p, 10, 20, 8, &ex) == 0);
    free(p);

    memset(&ex, 0, sizeof(ex));
    ex.datetime_original = "0000:00:00 00:00:00";   /* invalid: ignored */
    ex.datetime_digitized = "2015:03:04 05:06:07";
    p = fx_path(dir, "digitized.jpg");
    CHECK(fx_write_jpeg(p, 10, 20, 9, &ex) == 0);
    free(p);

    p = fx_path(dir, "plain.jpg");
    CHECK(fx_write_jpeg(p, 10, 20, 10, NULL) == 0);
    CHECK(stat(p, &st) == 0);
    free(p);

    idx = ta_open(dir, 0);
    CHECK_OK(mi_scan(idx, NULL, NULL));

    ta_hash_of(h, dir, "a.jpg");
    CHECK_OK(mi_lookup(&e, idx, h));
    if (e) {
        char hex[MI_HASH_HEX_LEN + 1];
        mi_hash_to_hex(hex, h);
        CHECK_EQ_STR(mi_entry_hash_hex(e), hex);
        CHECK(memcmp(mi_entry_hash(e), h, MI_HASH_SIZE) == 0);
        CHECK_EQ_STR(mi_entry_filename(e), "a.jpg");
        CHECK_EQ_STR(mi_entry_path(e), "a.jpg");
        CHECK_EQ_INT(mi_entry_creation_date(e),
                     local_time(2008, 10, 22, 16, 28, 39));
        CHECK_EQ_INT(mi_entry_creation_source(e), MI_DATE_EXIF_ORIGINAL);
        CHECK_EQ_INT(mi_entry_orientation(e), 6);
        CHECK_EQ_INT(mi_entry_width(e), 48);
        CHECK_EQ_INT(mi_entry_height(e), 64);
        CHECK(mi_entry_gps(e, &lat, &lon) == 1);
        CHECK(fabs(lat - -33.8568) < 1e-3);
        CHECK(fabs(lon - 151.2153) < 1e-3);
        CHECK_EQ_STR(mi_entry_make(e), "NIKON");
        CHECK_EQ_STR(mi_entry_model(e), "COOLPIX P6000");
        CHECK_EQ_STR(mi_entry_mime_type(e), "image/jpeg");
        CHECK_EQ_INT(mi_entry_kind(e), MI_KIND_IMAGE);
        CHECK(mi_entry_size(e) > 0);
        CHECK(mi_entry_mtime_ns(e) > 0);
        CHECK(mi_entry_ctime_ns(e) > 0);
        mi_entry_free(e);
        e = NULL;
    }

    ta_hash_of(h, dir, "zoned.jpg");
    CHECK_OK(mi_lookup(&e, idx, h));
    if (e) {
        /* 12:00 at +02:00 is 10:00 UTC. */
        struct tm tm = { 0 };
        tm.tm_year = 121; tm.tm_mon = 5; tm.tm_mday = 1; tm.tm_hour = 10;
        CHECK_EQ_INT(mi_entry_creation_date(e), timegm(&tm));
        CHECK_EQ_INT(mi_entry_width(e), 10);
        CHECK_EQ_INT(mi_entry_height(e), 20);
        CHECK(mi_entry_gps(e, NULL, NULL) == 0);
        CHECK(mi_entry_make(e) == NULL);
        CHECK_EQ_INT(mi_entry_orientation(e), 0);
        mi_entry_free(e);
        e = NULL;
    }

    ta_hash_of(h, dir, "digitized.jpg");
    CHECK_OK(mi_lookup(&e, idx, h));
    if (e) {
        CHECK_EQ_INT(mi_entry_creation_source(e), MI_DATE_EXIF_DIGITIZED);
        CHECK_EQ_INT(mi_entry_creation_date(e),
                     local_time(2015, 3, 4, 5, 6, 7));
        mi_entry_free(e);
        e = NULL;
    }

    ta_hash_of(h, dir, "plain.jpg");
    CHECK_OK(mi_lookup(&e, idx, h));
    if (e) {
        CHECK_EQ_INT(mi_entry_creation_source(e), MI_DATE_CTIME);
        CHECK_EQ_INT(mi_entry_creation_date(e), st.st_ctim.tv_sec);
        mi_entry_free(e);
        e = NULL;
    }

    memset(h, 0xab, sizeof(h));
    e = (mi_entry *)1;
    CHECK(mi_lookup(&e, idx, h) == MI_ENOTFOUND);
    CHECK(e == NULL);
    CHECK(strstr(mi_index_errmsg(idx), "abababab") != NULL);
    CHECK(mi_lookup(&e, idx, NULL) == MI_EINVAL);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

/* A cursor reads one snapshot even while scans commit. */
static void test_cursor_snapshot(void)
{
    char *dir = fx_tempdir(), *p;
    char name[64];
    mi_cursor *c = NULL;
    mi_index *idx;
    uint8_t prev[MI_HASH_SIZE];
    uint64_t gen;
    int i, n = 0;

    for (i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "f%02d.jpg", i);
        p = fx_path(dir, name);
        fx_write_jpeg(p, 8, 8, 1000 + (unsigned)i, NULL);
        free(p);
    }
    idx = ta_open(dir, 0);
    CHECK_OK(mi_scan(idx, NULL, NULL));
    gen = mi_index_generation(idx);

    CHECK_OK(mi_cursor_new(&c, idx));
    CHECK(mi_cursor_entry(c) == NULL);
    CHECK(mi_cursor_next(c) == MI_ROW);
    memcpy(prev, mi_entry_hash(mi_cursor_entry(c)), MI_HASH_SIZE);
    n = 1;

    /* Meanwhile: 10 new files and 5 deleted, committed by a scan. */
    for (i = 20; i < 30; i++) {
        snprintf(name, sizeof(name), "f%02d.jpg", i);
        p = fx_path(dir, name);
        fx_write_jpeg(p, 8, 8, 1000 + (unsigned)i, NULL);
        free(p);
    }
    for (i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "f%02d.jpg", i);
        p = fx_path(dir, name);
        unlink(p);
        free(p);
    }
    CHECK_OK(mi_scan(idx, NULL, NULL));
    CHECK(mi_index_generation(idx) != gen);

    while (mi_cursor_next(c) == MI_ROW) {
        const mi_entry *e = mi_cursor_entry(c);
        CHECK(memcmp(prev, mi_entry_hash(e), MI_HASH_SIZE) < 0);  /* ordered */
        memcpy(prev, mi_entry_hash(e), MI_HASH_SIZE);
        n++;
    }
    CHECK_EQ_INT(n, 20);            /* the old snapshot, whole */
    mi_cursor_free(c);

    CHECK_OK(mi_cursor_new(&c, idx));
    n = 0;
    while (mi_cursor_next(c) == MI_ROW)
        n++;
    CHECK_EQ_INT(n, 25);
    mi_cursor_free(c);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

/* Cursors by date, newest first, and over a date range. */
static void test_cursor_order_and_range(void)
{
    static const char *const dates[] = {
        "2015:07:04 12:00:00", "2019:12:31 23:30:00", "2020:01:01 00:30:00",
        "2012:02:29 08:00:00", "2024:11:25 18:00:00",
    };
    char *dir = fx_tempdir(), *p, name[64];
    mi_cursor_options co = MI_CURSOR_OPTIONS_INIT;
    mi_cursor *c = NULL;
    mi_index *idx;
    int64_t prev = INT64_MAX;
    int i, n = 0, dups = 0;

    for (i = 0; i < 5; i++) {
        fx_exif ex = { 0 };
        ex.datetime_original = dates[i];
        snprintf(name, sizeof(name), "p%d.jpg", i);
        p = fx_path(dir, name);
        CHECK(fx_write_jpeg(p, 8, 8, 2000 + (unsigned)i, &ex) == 0);
        free(p);
    }
    /* A second path of the 2015 photo, under a later name. */
    {
        fx_exif ex = { 0 };
        ex.datetime_original = dates[0];
        p = fx_path(dir, "zz-copy.jpg");
        CHECK(fx_write_jpeg(p, 8, 8, 2000, &ex) == 0);
        free(p);
    }
    idx = ta_open(dir, 0);
    CHECK_OK(mi_scan(idx, NULL, NULL));

    co.flags = MI_CURSOR_NEWEST_FIRST;
    CHECK_OK(mi_cursor_new_with(&c, idx, &co));
    while (mi_cursor_next(c) == MI_ROW) {
        const mi_entry *e = mi_cursor_entry(c);
        CHECK(mi_entry_creation_date(e) <= prev);
        prev = mi_entry_creation_date(e);
        dups += (int)mi_entry_dup_count(e);
        if (mi_entry_dup_count(e))
            CHECK_EQ_STR(mi_entry_dup_path(e, 0), "zz-copy.jpg");
        n++;
    }
    mi_cursor_free(c);
    CHECK_EQ_INT(n, 5);
    CHECK_EQ_INT(dups, 1);
    CHECK_EQ_INT(prev, local_time(2012, 2, 29, 8, 0, 0));

    /* 2019-12-31 00:00 to 2020-01-01 00:00 local: one photo. */
    co.flags = MI_CURSOR_DATE_RANGE;
    co.date_from = local_time(2019, 12, 31, 0, 0, 0);
    co.date_to = local_time(2020, 1, 1, 0, 0, 0);
    CHECK_OK(mi_cursor_new_with(&c, idx, &co));
    n = 0;
    while (mi_cursor_next(c) == MI_ROW) {
        CHECK_EQ_STR(mi_entry_filename(mi_cursor_entry(c)), "p1.jpg");
        n++;
    }
    mi_cursor_free(c);
    CHECK_EQ_INT(n, 1);

    /* Newest first within a range, bounds included/excluded exactly. */
    co.flags = MI_CURSOR_DATE_RANGE | MI_CURSOR_NEWEST_FIRST;
    co.date_from = local_time(2015, 7, 4, 12, 0, 0);   /* included */
    co.date_to = local_time(2024, 11, 25, 18, 0, 0);   /* excluded */
    CHECK_OK(mi_cursor_new_with(&c, idx, &co));
    n = 0;
    while (mi_cursor_next(c) == MI_ROW) {
        static const char *const want[] = { "p2.jpg", "p1.jpg", "p0.jpg" };
        if (n < 3)
            CHECK_EQ_STR(mi_entry_filename(mi_cursor_entry(c)), want[n]);
        n++;
    }
    mi_cursor_free(c);
    CHECK_EQ_INT(n, 3);

    co.version = 7;
    CHECK(mi_cursor_new_with(&c, idx, &co) == MI_EINVAL);
    co.version = MI_CURSOR_OPTIONS_VERSION;
    co.flags = 0x80;
    CHECK(mi_cursor_new_with(&c, idx, &co) == MI_EINVAL);
    CHECK(c == NULL);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

struct dates {
    int64_t d[16];
    int n, stop_after;
};

static int collect_date(void *ctx, int64_t date)
{
    struct dates *ds = ctx;

    if (ds->n < 16)
        ds->d[ds->n] = date;
    ds->n++;
    return ds->stop_after && ds->n >= ds->stop_after;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* mi_index_dates gives what a cursor's entries say, one date a content
 * (a second path of a content adds none), in one snapshot. */
static void test_dates(void)
{
    char *dir = fx_tempdir(), *p, name[64];
    struct dates got = { { 0 }, 0, 0 }, want = { { 0 }, 0, 0 };
    mi_cursor *c = NULL;
    mi_index *idx;
    uint64_t gen = 7;

    for (int i = 0; i < 4; i++) {
        fx_exif ex = { 0 };
        ex.datetime_original = i == 3 ? NULL : i == 2 ? "2019:12:31 23:30:00"
                                                      : "2012:02:29 08:00:00";
        snprintf(name, sizeof(name), "d%d.jpg", i);
        p = fx_path(dir, name);
        CHECK(fx_write_jpeg(p, 8, 8, 3000 + (unsigned)i, i == 3 ? NULL : &ex) == 0);
        free(p);
    }
    p = fx_path(dir, "zz-second-path.jpg");      /* the bytes of d2.jpg */
    {
        fx_exif ex = { 0 };
        ex.datetime_original = "2019:12:31 23:30:00";
        CHECK(fx_write_jpeg(p, 8, 8, 3002, &ex) == 0);
    }
    free(p);
    idx = ta_open(dir, 0);
    CHECK_OK(mi_index_dates(idx, &gen, collect_date, &got));
    CHECK_EQ_INT(got.n, 0);
    CHECK_EQ_INT(gen, mi_index_generation(idx));
    CHECK_OK(mi_scan(idx, NULL, NULL));

    CHECK_OK(mi_cursor_new(&c, idx));
    while (mi_cursor_next(c) == MI_ROW)
        collect_date(&want, mi_entry_creation_date(mi_cursor_entry(c)));
    mi_cursor_free(c);
    CHECK_EQ_INT(want.n, 4);
    CHECK_OK(mi_index_dates(idx, &gen, collect_date, &got));
    CHECK_EQ_INT(gen, mi_index_generation(idx));
    CHECK_EQ_INT(got.n, want.n);
    qsort(got.d, (size_t)got.n, sizeof(got.d[0]), cmp_i64);
    qsort(want.d, (size_t)want.n, sizeof(want.d[0]), cmp_i64);
    for (int i = 0; i < got.n && i < 16; i++)
        CHECK_EQ_INT(got.d[i], want.d[i]);
    CHECK_EQ_INT(got.d[0], local_time(2012, 2, 29, 8, 0, 0));

    got.n = 0;
    got.stop_after = 1;                           /* fn says stop */
    CHECK(mi_index_dates(idx, NULL, collect_date, &got) == MI_DONE);
    CHECK_EQ_INT(got.n, 1);
    CHECK(mi_index_dates(idx, &gen, NULL, NULL) == MI_EINVAL);
    CHECK_EQ_INT(gen, 0);
    CHECK(mi_index_dates(NULL, NULL, collect_date, &got) == MI_EINVAL);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

/* Counts follow commits, this handle's and another's. */
static void test_counts_follow_commits(void)
{
    char *dir = fx_tempdir(), *p;
    mi_index *a = ta_open(dir, 0), *b = ta_open(dir, 0);
    uint64_t media = 9, files = 9, gen;

    CHECK_OK(mi_index_count(a, &media, &files));
    CHECK_EQ_INT(media, 0);
    CHECK_EQ_INT(files, 0);
    p = fx_path(dir, "one.jpg");
    CHECK(fx_write_jpeg(p, 8, 8, 77, NULL) == 0);
    free(p);
    gen = mi_index_generation(a);
    CHECK_OK(mi_scan(b, NULL, NULL));              /* the other handle */
    CHECK(mi_index_generation(a) != gen);
    CHECK_OK(mi_index_count(a, &media, &files));
    CHECK_EQ_INT(media, 1);
    CHECK_EQ_INT(files, 1);
    p = fx_path(dir, "copy.jpg");
    CHECK(fx_write_jpeg(p, 8, 8, 77, NULL) == 0);
    free(p);
    CHECK_OK(mi_scan(a, NULL, NULL));
    CHECK_OK(mi_index_count(a, &media, &files));
    CHECK_EQ_INT(media, 1);
    CHECK_EQ_INT(files, 2);
    mi_index_close(a);
    mi_index_close(b);
    fx_rmtree(dir);
    free(dir);
}

static int file_exists_with_prefix(const char *dir, const char *prefix)
{
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "ls '%s' | grep -q '^%s'", dir, prefix);
    return system(cmd) == 0;
}

/* A corrupt catalog is moved aside (kept) and rebuilt from the disk. */
static void test_corrupt_catalog(void)
{
    char *dir = fx_tempdir(), *p, *db, *state;
    mi_scan_stats st = MI_SCAN_STATS_INIT;
    mi_index *idx;
    char junk[8192];

    p = fx_path(dir, "x.jpg");
    fx_write_jpeg(p, 8, 8, 1, NULL);
    free(p);
    idx = ta_open(dir, 0);
    CHECK_OK(mi_scan(idx, NULL, NULL));
    mi_index_close(idx);

    db = fx_path(dir, ".mediaindex/index.sqlite3");
    state = fx_path(dir, ".mediaindex");
    memset(junk, 'J', sizeof(junk));
    CHECK(fx_write_file(db, junk, sizeof(junk)) == 0);
    unlink(p = fx_path(dir, ".mediaindex/index.sqlite3-wal"));
    free(p);

    idx = ta_open(dir, 0);
    CHECK(idx != NULL);
    if (idx) {
        printf("# notice: %s\n", mi_index_errmsg(idx));
        CHECK(strstr(mi_index_errmsg(idx), "moved") != NULL);
        CHECK(file_exists_with_prefix(state, "index.sqlite3.broken-"));
        CHECK_OK(mi_scan(idx, NULL, &st));
        CHECK_EQ_INT(st.added, 1);
        mi_index_close(idx);
    }
    free(db);
    free(state);
    fx_rmtree(dir);
    free(dir);
}

/* A catalog from a newer library is kept aside, not misread. */
static void test_newer_schema(void)
{
    char *dir = fx_tempdir(), *db, *state;
    sqlite3 *s = NULL;
    mi_index *idx;

    idx = ta_open(dir, 0);
    mi_index_close(idx);
    db = fx_path(dir, ".mediaindex/index.sqlite3");
    state = fx_path(dir, ".mediaindex");
    CHECK(sqlite3_open(db, &s) == SQLITE_OK);
    CHECK(sqlite3_exec(s, "PRAGMA user_version = 99", NULL, NULL, NULL) ==
          SQLITE_OK);
    sqlite3_close(s);

    idx = ta_open(dir, 0);
    CHECK(idx != NULL);
    if (idx) {
        CHECK(strstr(mi_index_errmsg(idx), "newer") != NULL);
        CHECK(file_exists_with_prefix(state, "index.sqlite3.broken-"));
        mi_index_close(idx);
    }
    free(db);
    free(state);
    fx_rmtree(dir);
    free(dir);
}

static void test_hash_api(void)
{
    uint8_t h[MI_HASH_SIZE], h2[MI_HASH_SIZE];
    char hex[MI_HASH_HEX_LEN + 1];
    mi_hasher *hs = NULL;

    CHECK_OK(mi_hash_buffer(h, "abc", 3));
    mi_hash_to_hex(hex, h);
    CHECK_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK_OK(mi_hash_from_hex(h2, "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
    CHECK(memcmp(h, h2, MI_HASH_SIZE) == 0);
    CHECK(mi_hash_from_hex(h2, "ba78") == MI_EINVAL);
    CHECK_OK(mi_hasher_new(&hs));
    CHECK_OK(mi_hasher_update(hs, "a", 1));
    CHECK_OK(mi_hasher_update(hs, "bc", 2));
    CHECK_OK(mi_hasher_final(hs, h2));
    CHECK(memcmp(h, h2, MI_HASH_SIZE) == 0);
    mi_hasher_free(hs);
    CHECK(strcmp(mi_hash_engine(), "openssl") == 0 ||
          strcmp(mi_hash_engine(), "libsodium") == 0);
    printf("# hash engine: %s\n", mi_hash_engine());
}

int main(void)
{
    RUN(test_version_and_errors);
    RUN(test_open_options);
    RUN(test_hash_api);
    RUN(test_metadata);
    RUN(test_cursor_snapshot);
    RUN(test_cursor_order_and_range);
    RUN(test_dates);
    RUN(test_counts_follow_commits);
    RUN(test_corrupt_catalog);
    RUN(test_newer_schema);
    return mi_test_done();
}
