/*
 * test-thumb-api.c - thumbnails through the public API: made by scans,
 * reused, regenerated when deleted, removed with their content, failed
 * ones not retried, unsupported types and videos recorded, mi_thumb_get,
 * MI_INDEX_NO_THUMBNAILS, temp-file cleanup, a catalog from before
 * thumbnails (schema version 1), and a file that hangs the decoder process
 * costing one deadline per scan and one per preview, however often asked;
 * a rescan trusting an unchanged .thumbnails folder.
 */
#include <mediaindex.h>

#include "api-helpers.h"
#include "fixtures.h"
#include "mi-test.h"

#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static mi_status scan(mi_index *idx, mi_scan_stats *st)
{
    mi_status s;

    *st = (mi_scan_stats)MI_SCAN_STATS_INIT;
    s = mi_scan(idx, NULL, st);
    if (s != MI_OK)
        printf("# scan: %s: %s\n", mi_strerror(s), mi_index_errmsg(idx));
    return s;
}

static char *thumb_path(const char *dir, const char *rel)
{
    uint8_t h[MI_HASH_SIZE];
    char hex[MI_HASH_HEX_LEN + 1], rel2[128];

    ta_hash_of(h, dir, rel);
    mi_hash_to_hex(hex, h);
    snprintf(rel2, sizeof(rel2), ".thumbnails/%s.png", hex);
    return fx_path(dir, rel2);
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static const char *entry_thumb(mi_index *idx, const char *dir, const char *rel,
                               char *buf, size_t len)
{
    uint8_t h[MI_HASH_SIZE];
    mi_entry *e = NULL;
    const char *t;

    ta_hash_of(h, dir, rel);
    if (mi_lookup(&e, idx, h) != MI_OK)
        return "(not found)";
    t = mi_entry_thumbnail(e);
    snprintf(buf, len, "%s", t ? t : "(null)");
    mi_entry_free(e);
    return buf;
}

static void write_tree(const char *dir)
{
    static const uint8_t heic[] = { 0, 0, 0, 24, 'f', 't', 'y', 'p', 'h', 'e',
                                    'i', 'c', 0, 0, 0, 0, 'm', 'i', 'f', '1',
                                    'h', 'e', 'i', 'c' };
    static const uint8_t mp4[] = { 0, 0, 0, 24, 'f', 't', 'y', 'p', 'i', 's',
                                   'o', 'm', 0, 0, 0, 0, 'i', 's', 'o', 'm',
                                   'm', 'p', '4', '1' };
    char *p;

    p = fx_path(dir, "a.jpg");
    CHECK_OK(fx_write_jpeg(p, 640, 480, 1, NULL));
    free(p);
    p = fx_path(dir, "b.png");
    CHECK_OK(fx_write_png(p, 300, 200, 2));
    free(p);
    p = fx_path(dir, "c.heic");
    CHECK_OK(fx_write_file(p, heic, sizeof(heic)));
    free(p);
    p = fx_path(dir, "d.mp4");
    CHECK_OK(fx_write_file(p, mp4, sizeof(mp4)));
    free(p);
    p = fx_path(dir, "e.jpg");
    {
        static const char bad[] = "\xff\xd8\xff\xe0 not really a JPEG";
        CHECK_OK(fx_write_file(p, bad, sizeof(bad) - 1));
    }
    free(p);
}

static void test_scan_lifecycle(void)
{
    char *dir = fx_tempdir(), *ta, *tb, *p, buf[128], out[128];
    mi_scan_stats st;
    mi_index *idx;
    uint8_t h[MI_HASH_SIZE];

    write_tree(dir);
    idx = ta_open(dir, 2);
    if (!idx)
        return;
    ta = thumb_path(dir, "a.jpg");
    tb = thumb_path(dir, "b.png");

    /* Made in the scan. */
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.added, 5);
    CHECK_EQ_INT(st.thumbs_made, 2);
    /* c.heic and d.mp4 are headers only: mi-decode cannot read them. */
    CHECK_EQ_INT(st.thumbs_unsupported, 0);
    CHECK_EQ_INT(st.thumbs_failed, 3);
    CHECK(exists(ta) && exists(tb));
    CHECK_EQ_STR(entry_thumb(idx, dir, "a.jpg", buf, sizeof(buf)),
                 strstr(ta, ".thumbnails/"));
    CHECK_EQ_STR(entry_thumb(idx, dir, "c.heic", buf, sizeof(buf)), "(null)");
    CHECK_EQ_STR(entry_thumb(idx, dir, "d.mp4", buf, sizeof(buf)), "(null)");
    CHECK_EQ_STR(entry_thumb(idx, dir, "e.jpg", buf, sizeof(buf)), "(null)");

    /* Nothing to do the second time; failed ones are not retried. */
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.unchanged, 5);
    CHECK_EQ_INT(st.thumbs_made + st.thumbs_failed + st.thumbs_unsupported, 0);

    /* A deleted thumbnail comes back with the next scan. */
    CHECK_OK(unlink(ta));
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.thumbs_made, 1);
    CHECK_EQ_INT(st.files_hashed, 0);
    CHECK(exists(ta));

    /* ... and on demand. */
    CHECK_OK(unlink(tb));
    ta_hash_of(h, dir, "b.png");
    CHECK_OK(mi_thumb_get(out, sizeof(out), idx, h));
    CHECK_EQ_STR(out, strstr(tb, ".thumbnails/"));
    CHECK(exists(tb));
    CHECK_OK(mi_thumb_get(out, sizeof(out), idx, h));
    ta_hash_of(h, dir, "d.mp4");
    CHECK_EQ_INT(mi_thumb_get(out, sizeof(out), idx, h), MI_EFORMAT);
    ta_hash_of(h, dir, "c.heic");
    CHECK_EQ_INT(mi_thumb_get(out, sizeof(out), idx, h), MI_EFORMAT);
    ta_hash_of(h, dir, "e.jpg");
    CHECK_EQ_INT(mi_thumb_get(out, sizeof(out), idx, h), MI_EFORMAT);
    memset(h, 0x42, sizeof(h));
    CHECK_EQ_INT(mi_thumb_get(out, sizeof(out), idx, h), MI_ENOTFOUND);
    CHECK_EQ_INT(mi_thumb_get(out, 10, idx, h), MI_EINVAL);

    /* The broken file changes: tried again (still broken). */
    p = fx_path(dir, "e.jpg");
    {
        static const char bad2[] = "\xff\xd8\xff\xe0 still not a JPEG, longer";
        CHECK_OK(fx_write_file(p, bad2, sizeof(bad2) - 1));
    }
    free(p);
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.changed, 1);
    CHECK_EQ_INT(st.thumbs_failed, 1);

    /* A second path of the same bytes shares the thumbnail; removing one
     * keeps it, removing both removes it. */
    p = fx_path(dir, "a2.jpg");
    CHECK_OK(fx_write_jpeg(p, 640, 480, 1, NULL));
    free(p);
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.added, 1);
    CHECK_EQ_INT(st.thumbs_made, 0);      /* reused */
    p = fx_path(dir, "a.jpg");
    CHECK_OK(unlink(p));
    free(p);
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.removed, 1);
    CHECK_EQ_INT(st.thumbs_removed, 0);
    CHECK(exists(ta));
    p = fx_path(dir, "a2.jpg");
    CHECK_OK(unlink(p));
    free(p);
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.removed, 1);
    CHECK_EQ_INT(st.thumbs_removed, 1);
    CHECK(!exists(ta));
    CHECK(exists(tb));

    mi_index_close(idx);
    free(ta);
    free(tb);
    fx_rmtree(dir);
    free(dir);
}

/* The .thumbnails folder's mtime as t seconds before now. */
/* Set the thumbnails folder's mtime to `t` seconds before `base`: the
 * same t gives the same mtime however long the scans in between took
 * (from time(NULL) each time, a second boundary crossed between two calls
 * made "put back as it was" a change: 1 run in 30 failed). */
static void age_thumbs(const char *dir, time_t base, time_t t)
{
    char *p = fx_path(dir, ".thumbnails");
    struct timespec ts[2];

    ts[0].tv_sec = ts[1].tv_sec = base - t;
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
    CHECK_OK(utimensat(AT_FDCWD, p, ts, 0));
    free(p);
}

/* A rescan takes the catalog's word for the thumbnails while their folder
 * is as a clean scan left it (its mtime unchanged, and settled), and
 * looks again once anything was done to it; a content gone while trusted
 * is still swept. */
static void test_thumbs_stamp(void)
{
    char *dir = fx_tempdir(), *ta, *tb, *p;
    time_t base = time(NULL);
    mi_scan_stats st;
    mi_index *idx;

    p = fx_path(dir, "a.jpg");
    CHECK_OK(fx_write_jpeg(p, 64, 48, 1, NULL));
    free(p);
    p = fx_path(dir, "b.png");
    CHECK_OK(fx_write_png(p, 30, 20, 2));
    free(p);
    ta = thumb_path(dir, "a.jpg");
    tb = thumb_path(dir, "b.png");
    idx = ta_open(dir, 2);
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.thumbs_made, 2);
    mi_index_close(idx);

    /* A new handle's first scan sweeps and looks: clean, and the folder's
     * mtime is 100 s old: it is kept. */
    age_thumbs(dir, base, 100);
    idx = ta_open(dir, 2);
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.unchanged, 2);
    mi_index_close(idx);

    /* Deleted, the mtime put back as if in the same clock tick: trusted,
     * so not looked for (what the trust saves) ... */
    CHECK_OK(unlink(ta));
    age_thumbs(dir, base, 100);
    idx = ta_open(dir, 2);
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.thumbs_made, 0);
    CHECK(!exists(ta));
    /* ... and as a deletion leaves it: looked for and made again. */
    age_thumbs(dir, base, 50);
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.thumbs_made, 1);
    CHECK(exists(ta));
    mi_index_close(idx);

    /* Trusted again, then a content goes: its thumbnail is swept. */
    age_thumbs(dir, base, 100);
    idx = ta_open(dir, 2);
    CHECK_OK(scan(idx, &st));           /* sweeps, clean: kept */
    mi_index_close(idx);
    p = fx_path(dir, "b.png");
    CHECK_OK(unlink(p));
    free(p);
    idx = ta_open(dir, 2);
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.removed, 1);
    CHECK_EQ_INT(st.thumbs_removed, 1);
    CHECK(!exists(tb) && exists(ta));
    mi_index_close(idx);

    free(ta);
    free(tb);
    fx_rmtree(dir);
    free(dir);
}

/* Off, then on: the unchanged files get theirs without being re-hashed. */
static void test_no_thumbnails_then_on(void)
{
    mi_index_options opts = MI_INDEX_OPTIONS_INIT;
    char *dir = fx_tempdir(), *ta, err[256], buf[128];
    mi_scan_stats st;
    mi_index *idx = NULL;

    write_tree(dir);
    ta = thumb_path(dir, "a.jpg");
    opts.flags = MI_INDEX_NO_THUMBNAILS;
    CHECK_OK(mi_index_open(&idx, dir, &opts, err, sizeof(err)));
    if (!idx)
        return;
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.thumbs_made + st.thumbs_failed + st.thumbs_unsupported, 0);
    CHECK(!exists(ta));
    CHECK_EQ_STR(entry_thumb(idx, dir, "a.jpg", buf, sizeof(buf)), "(null)");
    mi_index_close(idx);

    idx = ta_open(dir, 0);
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.files_hashed, 0);
    CHECK_EQ_INT(st.thumbs_made, 2);
    /* c.heic and d.mp4 are headers only: mi-decode cannot read them. */
    CHECK_EQ_INT(st.thumbs_unsupported, 0);
    CHECK_EQ_INT(st.thumbs_failed, 3);
    CHECK(exists(ta));
    CHECK_EQ_STR(entry_thumb(idx, dir, "a.jpg", buf, sizeof(buf)),
                 strstr(ta, ".thumbnails/"));
    mi_index_close(idx);
    free(ta);
    fx_rmtree(dir);
    free(dir);
}

/* Temp files of a writer that died go; fresh ones (a writer at work) and
 * foreign files stay; stray thumbnails go with the first scan. */
static void test_temp_and_strays(void)
{
    char *dir = fx_tempdir(), *tdir = fx_path(dir, ".thumbnails"), *old, *young,
         *stray, *foreign;
    struct timespec times[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
    mi_scan_stats st;
    mi_index *idx;

    CHECK_OK(fx_mkdirs(tdir));
    old = fx_path(tdir, ".tmp-0123456789abcdef-1-2-0");
    young = fx_path(tdir, ".tmp-0123456789abcdef-1-3-0");
    stray = fx_path(tdir, "00000000000000000000000000000000"
                          "00000000000000000000000000000000.png");
    foreign = fx_path(tdir, "README");
    CHECK_OK(fx_write_file(old, "\x89PN", 3));
    CHECK_OK(utimensat(AT_FDCWD, old, times, 0));
    CHECK_OK(fx_write_file(young, "\x89PN", 3));
    CHECK_OK(fx_write_file(stray, "\x89PNG", 4));
    CHECK_OK(fx_write_file(foreign, "hi", 2));
    idx = ta_open(dir, 0);
    CHECK_OK(scan(idx, &st));          /* its sweep */
    CHECK(!exists(old));
    CHECK(exists(young));
    CHECK_EQ_INT(st.thumbs_removed, 1);
    CHECK(!exists(stray));
    CHECK(exists(foreign));
    mi_index_close(idx);
    free(old);
    free(young);
    free(stray);
    free(foreign);
    free(tdir);
    fx_rmtree(dir);
    free(dir);
}

/* A catalog written by a library from before thumbnails. */
static void test_catalog_v1(void)
{
    static const char v1[] =
        "CREATE TABLE files (hash BLOB NOT NULL, path BLOB NOT NULL,"
        " size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
        " ctime_ns INTEGER NOT NULL, inode INTEGER NOT NULL,"
        " mime TEXT NOT NULL, kind INTEGER NOT NULL, date INTEGER,"
        " date_source INTEGER NOT NULL DEFAULT 0,"
        " width INTEGER NOT NULL DEFAULT 0, height INTEGER NOT NULL DEFAULT 0,"
        " orientation INTEGER NOT NULL DEFAULT 0, lat REAL, lon REAL,"
        " make TEXT, model TEXT, PRIMARY KEY (hash, path)) WITHOUT ROWID;"
        "CREATE INDEX files_by_path ON files (path, size, mtime_ns, inode);"
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)"
        " WITHOUT ROWID;"
        "INSERT INTO meta VALUES ('generation', 7);"
        "PRAGMA user_version = 1;";
    char *dir = fx_tempdir(), *state = fx_path(dir, ".mediaindex"),
         *db = fx_path(dir, ".mediaindex/index.sqlite3"), *ta, buf[128];
    sqlite3 *s = NULL;
    mi_scan_stats st;
    mi_index *idx;
    uint64_t media = 0;

    write_tree(dir);
    ta = thumb_path(dir, "a.jpg");
    CHECK_OK(fx_mkdirs(state));
    CHECK_OK(sqlite3_open(db, &s));
    CHECK_OK(sqlite3_exec(s, v1, NULL, NULL, NULL));
    {
        /* A row for a.jpg as version 1 wrote it. */
        uint8_t h[MI_HASH_SIZE];
        struct stat sb;
        sqlite3_stmt *ins = NULL;
        char *p = fx_path(dir, "a.jpg");
        ta_hash_of(h, dir, "a.jpg");
        CHECK_OK(stat(p, &sb));
        free(p);
        CHECK_OK(sqlite3_prepare_v2(s,
            "INSERT INTO files (hash, path, size, mtime_ns, ctime_ns, inode,"
            " mime, kind) VALUES (?1, CAST('a.jpg' AS BLOB), ?2, ?3, ?4, ?5,"
            " 'image/jpeg', 1)",
            -1, &ins, NULL));
        sqlite3_bind_blob(ins, 1, h, MI_HASH_SIZE, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 2, sb.st_size);
        sqlite3_bind_int64(ins, 3, (sqlite3_int64)sb.st_mtim.tv_sec * 1000000000LL +
                                       sb.st_mtim.tv_nsec);
        sqlite3_bind_int64(ins, 4, 0);
        sqlite3_bind_int64(ins, 5, (sqlite3_int64)sb.st_ino);
        CHECK_EQ_INT(sqlite3_step(ins), SQLITE_DONE);
        sqlite3_finalize(ins);
    }
    sqlite3_close(s);

    idx = ta_open(dir, 0);
    if (!idx)
        return;
    CHECK(strstr(mi_index_errmsg(idx), "broken") == NULL);
    CHECK_OK(mi_index_count(idx, &media, NULL));
    CHECK_EQ_INT(media, 1);
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.unchanged, 1);   /* the v1 row was kept ... */
    CHECK_EQ_INT(st.added, 4);
    CHECK_EQ_INT(st.thumbs_made, 2); /* ... and got its thumbnail */
    CHECK(exists(ta));
    CHECK_EQ_STR(entry_thumb(idx, dir, "a.jpg", buf, sizeof(buf)),
                 strstr(ta, ".thumbnails/"));
    mi_index_close(idx);
    free(ta);
    free(db);
    free(state);
    fx_rmtree(dir);
    free(dir);
}

/* The scan's thumbnails are the bytes mi_thumb_make_file makes. */
static void test_same_as_make_file(void)
{
    char *dir = fx_tempdir(), *ta, *pa;
    uint8_t *png = NULL, *disk = NULL;
    size_t len = 0, dlen = 0;
    mi_scan_stats st;
    mi_index *idx;
    fx_exif x = { 0 };

    x.orientation = 8;
    pa = fx_path(dir, "a.jpg");
    CHECK_OK(fx_write_jpeg(pa, 900, 300, 4, &x));
    idx = ta_open(dir, 0);
    CHECK_OK(scan(idx, &st));
    ta = thumb_path(dir, "a.jpg");
    CHECK_OK(mi_thumb_make_file(&png, &len, pa, NULL));
    CHECK_OK(fx_read_file(ta, &disk, &dlen));
    CHECK(png && disk && len == dlen && memcmp(png, disk, len) == 0);
    mi_free(png);
    free(disk);
    mi_index_close(idx);
    free(ta);
    free(pa);
    fx_rmtree(dir);
    free(dir);
}

/* ---------------------------------------------------------------------- */
/* A file that hangs mi-decode                                             */

#define DEADLINE_MS 1000

/* A HEIC-looking file whose bytes 16..31 make mi-decode hang (with
 * MI_DECODE_FAULTS=1 in its environment; tests/server/test_formats.py
 * uses the same). `salt` makes contents differ. */
static void write_hang(const char *dir, const char *rel, unsigned char salt)
{
    uint8_t b[32 + 64] = { 0, 0, 0, 32, 'f', 't', 'y', 'p', 'h', 'e', 'i', 'c' };
    char *p = fx_path(dir, rel);

    memcpy(b + 16, "mi-decode:hang!!", 16);
    b[sizeof(b) - 1] = salt;
    CHECK_OK(fx_write_file(p, b, sizeof(b)));
    free(p);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static mi_index *open_faulty(const char *dir, unsigned flags)
{
    mi_index_options opts = MI_INDEX_OPTIONS_INIT;
    char err[256] = "";
    mi_index *idx = NULL;

    opts.threads = 2;
    opts.flags = flags;
    opts.decoder_timeout_ms = DEADLINE_MS;
    if (mi_index_open(&idx, dir, &opts, err, sizeof(err)) != MI_OK)
        printf("# open: %s\n", err);
    return idx;
}

/* The reason recorded for the thumbnail of `rel`, or "". */
static void thumb_problem(mi_index *idx, const char *rel, char *out, size_t len)
{
    mi_problems *p = NULL;

    out[0] = '\0';
    if (mi_problems_new(&p, idx) != MI_OK)
        return;
    while (mi_problems_next(p) == MI_ROW)
        if (strcmp(mi_problems_path(p, NULL), rel) == 0 &&
            mi_problems_stage(p) == MI_PROBLEM_THUMBNAIL)
            snprintf(out, len, "%d %s", (int)mi_problems_status(p),
                     mi_problems_reason(p));
    mi_problems_free(p);
}

/* mi_preview_get, timed: its status, message and seconds. */
static mi_status timed_preview(mi_index *idx, const uint8_t h[MI_HASH_SIZE],
                               char *msg, size_t msg_len, double *took)
{
    char out[128];
    double t0 = now_s();
    mi_status s = mi_preview_get(out, sizeof(out), idx, h);

    *took = now_s() - t0;
    snprintf(msg, msg_len, "%s", s == MI_OK ? "" : mi_index_errmsg(idx));
    printf("# preview: %s in %.2f s: %s\n", mi_strerror(s), *took, msg);
    return s;
}

typedef struct asker {
    mi_index *idx;
    const uint8_t *hash;
    mi_status s;
} asker;

static void *ask_preview(void *arg)
{
    asker *a = arg;
    char out[128];

    a->s = mi_preview_get(out, sizeof(out), a->idx, a->hash);
    return NULL;
}

/* Before: one hanging file cost a scan two deadlines (the metadata
 * request, then the thumbnail's), and every mi_preview_get of it one
 * more, each holding one of the two decoder processes. */
static void test_hang_costs_one_deadline(void)
{
    const double d = DEADLINE_MS / 1000.0;
    char *dir = fx_tempdir(), *dir2 = fx_tempdir(), why[256], msg[256],
         msg2[256];
    mi_scan_options so = MI_SCAN_OPTIONS_INIT;
    uint8_t h[MI_HASH_SIZE];
    mi_scan_stats st;
    mi_index *idx;
    double t0, took;
    asker ask[4];
    pthread_t th[4];

    setenv("MI_DECODE_FAULTS", "1", 1);
    write_hang(dir, "hang.heic", 0);
    {
        char *p = fx_path(dir, "ok.jpg");
        CHECK_OK(fx_write_jpeg(p, 64, 48, 1, NULL));
        free(p);
    }
    idx = open_faulty(dir, 0);
    if (!idx)
        goto out;

    /* The scan: one deadline, the thumbnail failed with its reason. */
    t0 = now_s();
    CHECK_OK(scan(idx, &st));
    took = now_s() - t0;
    thumb_problem(idx, "hang.heic", why, sizeof(why));
    printf("# scan with a hanging file: %.2f s (deadline %.1f s): %s\n", took,
           d, why);
    if (strstr(why, "not installed")) {
        SKIP("mi-decode is not built");
        mi_index_close(idx);
        goto out;
    }
    CHECK_EQ_INT(st.added, 2);
    CHECK_EQ_INT(st.thumbs_failed, 1);
    CHECK(strstr(why, "longer than 1 s") != NULL);
    CHECK(took >= 0.9 * d && took < 1.6 * d);

    /* Its preview: at once, with the thumbnail's failure. */
    ta_hash_of(h, dir, "hang.heic");
    CHECK_EQ_INT(timed_preview(idx, h, msg, sizeof(msg), &took), MI_EFORMAT);
    CHECK(took < 0.5 * d);
    CHECK(strstr(msg, "longer than 1 s") != NULL);
    mi_index_close(idx);

    /* No thumbnail tried: the preview asks the decoder once, and a repeat
     * gets the same answer at once, from this handle or another. */
    write_hang(dir2, "hang.heic", 1);
    idx = open_faulty(dir2, MI_INDEX_NO_THUMBNAILS);
    if (!idx)
        goto out;
    t0 = now_s();
    CHECK_OK(scan(idx, &st));
    took = now_s() - t0;
    CHECK(took < 1.6 * d);
    ta_hash_of(h, dir2, "hang.heic");
    CHECK_EQ_INT(timed_preview(idx, h, msg, sizeof(msg), &took), MI_EFORMAT);
    CHECK(took >= 0.9 * d && took < 1.6 * d);
    CHECK(strstr(msg, "longer than 1 s") != NULL);
    CHECK_EQ_INT(timed_preview(idx, h, msg2, sizeof(msg2), &took), MI_EFORMAT);
    CHECK(took < 0.5 * d);
    CHECK_EQ_STR(msg2, msg);
    mi_index_close(idx);
    idx = open_faulty(dir2, MI_INDEX_NO_THUMBNAILS);
    if (!idx)
        goto out;
    CHECK_EQ_INT(timed_preview(idx, h, msg2, sizeof(msg2), &took), MI_EFORMAT);
    CHECK(took < 0.5 * d);
    CHECK_EQ_STR(msg2, msg);

    /* Read again (a full rescan): forgotten, tried once more; four
     * clients at once cost one deadline between them, not two (two
     * decoder processes), and all get the failure. */
    so.flags = MI_SCAN_FULL;
    CHECK_OK(mi_scan(idx, &so, NULL));
    t0 = now_s();
    for (int i = 0; i < 4; i++) {
        ask[i].idx = idx;
        ask[i].hash = h;
        ask[i].s = MI_OK;
        CHECK_OK(pthread_create(&th[i], NULL, ask_preview, &ask[i]));
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(ask[i].s, MI_EFORMAT);
    }
    took = now_s() - t0;
    printf("# four previews at once after a full rescan: %.2f s\n", took);
    CHECK(took >= 0.9 * d && took < 1.6 * d);
    mi_index_close(idx);
out:
    unsetenv("MI_DECODE_FAULTS");
    fx_rmtree(dir);
    fx_rmtree(dir2);
    free(dir);
    free(dir2);
}

int main(void)
{
    RUN(test_scan_lifecycle);
    RUN(test_thumbs_stamp);
    RUN(test_no_thumbnails_then_on);
    RUN(test_temp_and_strays);
    RUN(test_catalog_v1);
    RUN(test_same_as_make_file);
    RUN(test_hang_costs_one_deadline);
    return mi_test_done();
}
