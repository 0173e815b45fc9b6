/*
 * test-watch.c - the folder watcher through the public API: files written,
 * renamed in and out, deleted; new folders; a file still being written; a
 * burst; overflow; polling (asked for, or when the watches run out);
 * scans of others meanwhile; a clean stop.  Real files in a temporary
 * folder; every wait polls the index with a generous deadline.
 */
#include <mediaindex.h>

#include "api-helpers.h"
#include "fixtures.h"
#include "mi-test.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 15000   /* for one change: the watcher takes ~0.3 s */

static int64_t ms_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* An index (2 workers) on dir, thumbnails as asked. */
static mi_index *open_index(const char *dir, bool thumbs)
{
    mi_index_options opts = MI_INDEX_OPTIONS_INIT;
    char err[512] = "";
    mi_index *idx = NULL;
    mi_status s;

    opts.threads = 2;
    opts.flags = thumbs ? 0 : MI_INDEX_NO_THUMBNAILS;
    s = mi_index_open(&idx, dir, &opts, err, sizeof(err));
    if (s != MI_OK)
        printf("# open %s: %s: %s\n", dir, mi_strerror(s), err);
    return idx;
}

static mi_watch *start(mi_index *idx, const mi_watch_options *opts)
{
    mi_watch *w = NULL;
    mi_status s = mi_watch_start(&w, idx, opts);

    if (s != MI_OK)
        printf("# mi_watch_start: %s: %s\n", mi_strerror(s),
               mi_index_errmsg(idx));
    return w;
}

/* A JPEG at dir/rel (folders made), written and closed; its hash. */
static void put_jpeg(uint8_t hash[MI_HASH_SIZE], const char *dir,
                     const char *rel, unsigned seed)
{
    char *p = fx_path(dir, rel);
    char *slash = strrchr(p, '/');

    *slash = '\0';
    fx_mkdirs(p);
    *slash = '/';
    if (fx_write_jpeg(p, 32, 24, seed, NULL) != 0)
        printf("# cannot write %s\n", p);
    free(p);
    if (hash)
        ta_hash_of(hash, dir, rel);
}

/* Is rel one of the paths indexed for `hash`? */
static bool has_path(mi_index *idx, const uint8_t hash[MI_HASH_SIZE],
                     const char *rel)
{
    mi_entry *e = NULL;
    bool found = false;
    size_t i;

    if (mi_lookup(&e, idx, hash) != MI_OK)
        return false;
    found = strcmp(mi_entry_path(e), rel) == 0;
    for (i = 0; !found && i < mi_entry_dup_count(e); i++)
        found = strcmp(mi_entry_dup_path(e, i), rel) == 0;
    mi_entry_free(e);
    return found;
}

/* Wait until `rel` is (want) or is not (!want) indexed for `hash`. */
static bool wait_path(mi_index *idx, const uint8_t hash[MI_HASH_SIZE],
                      const char *rel, bool want, int timeout_ms)
{
    int64_t end = ms_now() + timeout_ms;

    for (;;) {
        if (has_path(idx, hash, rel) == want)
            return true;
        if (ms_now() > end) {
            printf("# %s: still %sindexed after %d ms\n", rel,
                   want ? "not " : "", timeout_ms);
            return false;
        }
        sleep_ms(20);
    }
}

static uint64_t count_files(mi_index *idx)
{
    uint64_t files = 0;

    mi_index_count(idx, NULL, &files);
    return files;
}

static bool wait_count(mi_index *idx, uint64_t want, int timeout_ms)
{
    int64_t end = ms_now() + timeout_ms;

    for (;;) {
        uint64_t n = count_files(idx);

        if (n == want)
            return true;
        if (ms_now() > end) {
            printf("# %" PRIu64 " files indexed after %d ms, not %" PRIu64 "\n",
                   n, timeout_ms, want);
            return false;
        }
        sleep_ms(20);
    }
}

/* Wait until the watcher has run `n` scans, `full` of them of
 * everything (its counts are raised just after a scan's commit shows). */
static bool wait_full_scans(mi_watch *w, uint64_t n, uint64_t full,
                            int timeout_ms)
{
    int64_t end = ms_now() + timeout_ms;
    mi_watch_info info = MI_WATCH_INFO_INIT;

    for (;;) {
        mi_watch_state(w, &info);
        if (info.scans >= n && info.full_scans >= full)
            return true;
        if (ms_now() > end) {
            printf("# %" PRIu64 " scans (%" PRIu64 " of everything) after %d "
                   "ms, not %" PRIu64 " (%" PRIu64 ")\n", info.scans,
                   info.full_scans, timeout_ms, n, full);
            return false;
        }
        sleep_ms(20);
    }
}

static bool wait_scans(mi_watch *w, uint64_t n, int timeout_ms)
{
    return wait_full_scans(w, n, 0, timeout_ms);
}

static bool wait_mode(mi_watch *w, mi_watch_mode mode, int timeout_ms)
{
    int64_t end = ms_now() + timeout_ms;

    while (mi_watch_state(w, NULL) != mode) {
        if (ms_now() > end) {
            printf("# mode %d after %d ms, not %d\n",
                   (int)mi_watch_state(w, NULL), timeout_ms, (int)mode);
            return false;
        }
        sleep_ms(20);
    }
    return true;
}

static bool wait_folders(mi_watch *w, uint64_t n, int timeout_ms)
{
    int64_t end = ms_now() + timeout_ms;
    mi_watch_info info = MI_WATCH_INFO_INIT;

    for (;;) {
        mi_watch_state(w, &info);
        if (info.folders >= n)
            return true;
        if (ms_now() > end) {
            printf("# %" PRIu64 " folders watched after %d ms, not %" PRIu64
                   "\n", (uint64_t)info.folders, timeout_ms, n);
            return false;
        }
        sleep_ms(20);
    }
}

static int rename_rel(const char *from_dir, const char *from,
                      const char *to_dir, const char *to)
{
    char *a = fx_path(from_dir, from), *b = fx_path(to_dir, to);
    int rc = rename(a, b);

    if (rc != 0)
        printf("# rename %s %s: %s\n", a, b, strerror(errno));
    free(a);
    free(b);
    return rc;
}

/* ---------------------------------------------------------------------- */

static void test_create_and_state(void)
{
    char *dir = fx_tempdir();
    uint8_t h0[MI_HASH_SIZE], h1[MI_HASH_SIZE];
    mi_watch_info info = MI_WATCH_INFO_INIT;
    mi_index *idx = open_index(dir, true);
    mi_watch *w;
    char *p;

    CHECK(mi_watch_state(NULL, &info) == MI_WATCH_STOPPED);
    {
        mi_watch *none = (mi_watch *)1;
        mi_watch_options bad = MI_WATCH_OPTIONS_INIT;

        bad.version = 99;
        CHECK(mi_watch_start(&none, idx, &bad) == MI_EINVAL);
        CHECK(none == NULL);
        CHECK(mi_watch_start(&none, NULL, NULL) == MI_EINVAL);
    }
    mi_watch_stop(NULL);

    put_jpeg(h0, dir, "before/old.jpg", 1);
    w = start(idx, NULL);
    CHECK(w != NULL);
    if (!w)
        goto out;
    CHECK(mi_watch_state(w, &info) == MI_WATCH_INOTIFY);
    CHECK_EQ_STR(info.reason, "");
    CHECK_EQ_INT(info.folders, 2);     /* the root and before/ */
    /* The first scan picks up what was there. */
    CHECK(wait_path(idx, h0, "before/old.jpg", true, WAIT_MS));

    /* Written, then closed: indexed. */
    put_jpeg(h1, dir, "new.jpg", 2);
    CHECK(wait_path(idx, h1, "new.jpg", true, WAIT_MS));
    /* Its thumbnail too. */
    p = fx_path(dir, ".thumbnails");
    {
        char hex[MI_HASH_HEX_LEN + 1], rel[128];
        struct stat st;
        char *t;

        mi_hash_to_hex(hex, h1);
        snprintf(rel, sizeof(rel), "%s.png", hex);
        t = fx_path(p, rel);
        CHECK(stat(t, &st) == 0);
        free(t);
    }
    free(p);
    /* Not media: never looked at. */
    p = fx_path(dir, "notes.txt");
    fx_write_file(p, "x", 1);
    free(p);

    CHECK(wait_scans(w, 2, WAIT_MS));
    mi_watch_state(w, &info);
    CHECK_EQ_INT(info.full_scans, 1);
    CHECK_EQ_INT(info.overflows, 0);
    CHECK_EQ_INT(info.last_status, MI_OK);
    mi_watch_stop(w);
out:
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

/* A file open for writing is left until it is closed, both where a change
 * names it and in a new folder scanned whole. */
static void test_slow_write(void)
{
    char *dir = fx_tempdir();
    mi_index *idx = open_index(dir, false);
    unsigned char *jpg = NULL;
    size_t len = 0;
    uint8_t h[MI_HASH_SIZE], h2[MI_HASH_SIZE], other[MI_HASH_SIZE];
    const char *rels[2] = { "slow.jpg", "fresh/slow.jpg" };
    mi_watch *w;
    int fds[2] = { -1, -1 };
    int i;

    w = start(idx, NULL);
    CHECK(w != NULL && fx_jpeg_buffer(&jpg, &len, 64, 48, 7, NULL) == 0);
    if (!w || !jpg)
        goto out;
    CHECK(wait_scans(w, 1, WAIT_MS));
    CHECK_OK(mi_hash_buffer(h, jpg, len));
    CHECK_OK(mi_hash_buffer(h2, jpg, len / 2));

    {
        char *p = fx_path(dir, "fresh");
        CHECK(mkdir(p, 0755) == 0);
        free(p);
    }
    for (i = 0; i < 2; i++) {
        char *p = fx_path(dir, rels[i]);

        fds[i] = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        CHECK(fds[i] >= 0);
        CHECK(write(fds[i], jpg, len / 2) == (ssize_t)(len / 2));
        free(p);
    }
    /* Something else changes next to them meanwhile. */
    put_jpeg(other, dir, "fresh/other.jpg", 8);
    CHECK(wait_path(idx, other, "fresh/other.jpg", true, WAIT_MS));
    sleep_ms(2000);     /* well past the debounce */
    for (i = 0; i < 2; i++) {
        CHECK(!has_path(idx, h2, rels[i]));
        CHECK(!has_path(idx, h, rels[i]));
    }
    CHECK_EQ_INT(count_files(idx), 1);

    for (i = 0; i < 2; i++) {
        CHECK(write(fds[i], jpg + len / 2, len - len / 2) ==
              (ssize_t)(len - len / 2));
        sleep_ms(100);
        CHECK(!has_path(idx, h, rels[i]));
        close(fds[i]);
        CHECK(wait_path(idx, h, rels[i], true, WAIT_MS));
    }
    CHECK_EQ_INT(count_files(idx), 3);
    mi_watch_stop(w);
out:
    free(jpg);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

static void test_rename_delete(void)
{
    char *dir = fx_tempdir(), *outside = fx_tempdir(), *p;
    uint8_t h1[MI_HASH_SIZE], h2[MI_HASH_SIZE], h3[MI_HASH_SIZE];
    mi_index *idx = open_index(dir, true);
    mi_watch *w = start(idx, NULL);

    CHECK(w != NULL);
    if (!w)
        goto out;
    CHECK(wait_scans(w, 1, WAIT_MS));

    /* Moved in from outside (as rsync and Syncthing place files). */
    put_jpeg(h1, outside, "in.jpg", 11);
    CHECK_OK(rename_rel(outside, "in.jpg", dir, "in.jpg"));
    CHECK(wait_path(idx, h1, "in.jpg", true, WAIT_MS));

    /* A temporary name renamed to a media name. */
    put_jpeg(h2, dir, "part.tmp", 12);
    sleep_ms(500);
    CHECK(!has_path(idx, h2, "part.tmp"));
    CHECK_OK(rename_rel(dir, "part.tmp", dir, "done.jpg"));
    CHECK(wait_path(idx, h2, "done.jpg", true, WAIT_MS));

    /* Renamed inside. */
    put_jpeg(NULL, dir, "sub/keep.jpg", 13);
    CHECK_OK(rename_rel(dir, "in.jpg", dir, "sub/renamed.jpg"));
    CHECK(wait_path(idx, h1, "sub/renamed.jpg", true, WAIT_MS));
    CHECK(wait_path(idx, h1, "in.jpg", false, WAIT_MS));

    /* Moved out. */
    CHECK_OK(rename_rel(dir, "sub/renamed.jpg", outside, "out.jpg"));
    CHECK(wait_path(idx, h1, "sub/renamed.jpg", false, WAIT_MS));

    /* Deleted. */
    put_jpeg(h3, dir, "gone.jpg", 14);
    CHECK(wait_path(idx, h3, "gone.jpg", true, WAIT_MS));
    p = fx_path(dir, "gone.jpg");
    CHECK(unlink(p) == 0);
    free(p);
    CHECK(wait_path(idx, h3, "gone.jpg", false, WAIT_MS));

    /* A hard link appears complete: indexed without a close. */
    {
        char *a = fx_path(dir, "done.jpg"), *b = fx_path(dir, "sub/link.jpg");
        CHECK(link(a, b) == 0);
        free(a);
        free(b);
        CHECK(wait_path(idx, h2, "sub/link.jpg", true, WAIT_MS));
    }
    /* Overwritten by a rename: the new content replaces the old. */
    put_jpeg(h3, outside, "new-done.jpg", 15);
    CHECK_OK(rename_rel(outside, "new-done.jpg", dir, "done.jpg"));
    CHECK(wait_path(idx, h3, "done.jpg", true, WAIT_MS));
    CHECK(wait_path(idx, h2, "done.jpg", false, WAIT_MS));
    CHECK(wait_count(idx, 3, WAIT_MS)); /* done, sub/keep, sub/link */

    mi_watch_stop(w);
out:
    mi_index_close(idx);
    fx_rmtree(dir);
    fx_rmtree(outside);
    free(dir);
    free(outside);
}

/* New folders, nested, made at once; a folder moved in, out and around. */
static void test_folders(void)
{
    char *dir = fx_tempdir(), *outside = fx_tempdir();
    uint8_t h[6][MI_HASH_SIZE];
    mi_watch_info info = MI_WATCH_INFO_INIT;
    mi_index *idx = open_index(dir, false);
    mi_watch *w = start(idx, NULL);

    CHECK(w != NULL);
    if (!w)
        goto out;
    CHECK(wait_scans(w, 1, WAIT_MS));

    /* mkdir -p and files at once: some land before their folder's watch. */
    put_jpeg(h[0], dir, "a/one.jpg", 21);
    put_jpeg(h[1], dir, "a/b/two.jpg", 22);
    put_jpeg(h[2], dir, "a/b/c/three.jpg", 23);
    CHECK(wait_path(idx, h[0], "a/one.jpg", true, WAIT_MS));
    CHECK(wait_path(idx, h[1], "a/b/two.jpg", true, WAIT_MS));
    CHECK(wait_path(idx, h[2], "a/b/c/three.jpg", true, WAIT_MS));
    mi_watch_state(w, &info);
    CHECK_EQ_INT(info.folders, 4);
    /* And their watches work: a later file in the deepest one. */
    put_jpeg(h[3], dir, "a/b/c/four.jpg", 24);
    CHECK(wait_path(idx, h[3], "a/b/c/four.jpg", true, WAIT_MS));

    /* A tree made outside, moved in whole. */
    put_jpeg(h[4], outside, "trip/day1/x.jpg", 25);
    put_jpeg(NULL, outside, "trip/day2/y.jpg", 26);
    CHECK_OK(rename_rel(outside, "trip", dir, "trip"));
    CHECK(wait_path(idx, h[4], "trip/day1/x.jpg", true, WAIT_MS));
    CHECK(wait_count(idx, 6, WAIT_MS));
    put_jpeg(h[5], dir, "trip/day2/z.jpg", 27);
    CHECK(wait_path(idx, h[5], "trip/day2/z.jpg", true, WAIT_MS));

    /* Renamed inside: the old paths go, the new come, and the watches
     * follow (a new file under the new name is seen). */
    CHECK_OK(rename_rel(dir, "trip", dir, "a/trip-2024"));
    CHECK(wait_path(idx, h[4], "a/trip-2024/day1/x.jpg", true, WAIT_MS));
    CHECK(wait_path(idx, h[4], "trip/day1/x.jpg", false, WAIT_MS));
    put_jpeg(h[5], dir, "a/trip-2024/day1/later.jpg", 28);
    CHECK(wait_path(idx, h[5], "a/trip-2024/day1/later.jpg", true, WAIT_MS));
    CHECK(wait_count(idx, 8, WAIT_MS));

    /* Moved out: all of it goes. */
    CHECK_OK(rename_rel(dir, "a/trip-2024", outside, "back"));
    CHECK(wait_count(idx, 4, WAIT_MS));
    /* Deleted: the files, then the folders. */
    {
        char *p = fx_path(dir, "a/b");
        CHECK(fx_rmtree(p) == 0);
        free(p);
    }
    CHECK(wait_count(idx, 1, WAIT_MS));
    CHECK(has_path(idx, h[0], "a/one.jpg"));
    mi_watch_state(w, &info);
    CHECK_EQ_INT(info.folders, 2);      /* the root and a/ */
    /* The hidden folders are neither watched nor scanned. */
    put_jpeg(NULL, dir, "a/.thumbnails/hidden.jpg", 29);
    put_jpeg(h[5], dir, "a/seen.jpg", 30);
    CHECK(wait_path(idx, h[5], "a/seen.jpg", true, WAIT_MS));
    CHECK_EQ_INT(count_files(idx), 2);
    mi_watch_state(w, &info);
    CHECK_EQ_INT(info.folders, 2);
    CHECK_EQ_INT(info.full_scans, 1);
    CHECK_EQ_INT(info.overflows, 0);

    mi_watch_stop(w);
out:
    mi_index_close(idx);
    fx_rmtree(dir);
    fx_rmtree(outside);
    free(dir);
    free(outside);
}

/* Without the first scan, only what changes is scanned: a file that was
 * there before stays unknown until a scan of everything. */
static void test_only_changes_scanned(void)
{
    char *dir = fx_tempdir();
    uint8_t h0[MI_HASH_SIZE], h1[MI_HASH_SIZE];
    mi_watch_options opts = MI_WATCH_OPTIONS_INIT;
    mi_index *idx = open_index(dir, false);
    mi_watch *w;

    put_jpeg(h0, dir, "old/before.jpg", 31);
    opts.flags = MI_WATCH_NO_FIRST_SCAN;
    w = start(idx, &opts);
    CHECK(w != NULL);
    if (!w)
        goto out;
    put_jpeg(h1, dir, "old/after.jpg", 32);
    CHECK(wait_path(idx, h1, "old/after.jpg", true, WAIT_MS));
    CHECK(!has_path(idx, h0, "old/before.jpg"));
    CHECK_EQ_INT(count_files(idx), 1);
    CHECK_OK(mi_scan(idx, NULL, NULL));
    CHECK_EQ_INT(count_files(idx), 2);
    mi_watch_stop(w);
out:
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

/* 2,000 files at once: all indexed, without a scan of everything. */
static void test_burst(void)
{
    char *dir = fx_tempdir();
    mi_watch_info info = MI_WATCH_INFO_INIT;
    mi_index *idx = open_index(dir, true);
    mi_watch *w = start(idx, NULL);
    unsigned char *jpg = NULL;
    size_t len = 0;
    int64_t t0;
    int i;

    CHECK(w != NULL);
    if (!w)
        goto out;
    CHECK(wait_scans(w, 1, WAIT_MS));
    t0 = ms_now();
    for (i = 0; i < 2000; i++) {
        char rel[64], *p;

        snprintf(rel, sizeof(rel), "burst/%02d/img%04d.jpg", i % 20, i);
        if (i < 20) {
            char d[32];
            snprintf(d, sizeof(d), "burst/%02d", i);
            p = fx_path(dir, d);
            fx_mkdirs(p);
            free(p);
        }
        CHECK(fx_jpeg_buffer(&jpg, &len, 16, 16, 1000u + (unsigned)i, NULL) == 0);
        p = fx_path(dir, rel);
        CHECK(fx_write_file(p, jpg, len) == 0);
        free(p);
        free(jpg);
        jpg = NULL;
    }
    CHECK(wait_count(idx, 2000, 180000));
    CHECK(wait_scans(w, 2, WAIT_MS));
    printf("# 2000 files indexed %.1f s after the first was written\n",
           (double)(ms_now() - t0) / 1000.0);
    mi_watch_state(w, &info);
    printf("# %" PRIu64 " scans\n", info.scans);
    CHECK_EQ_INT(info.full_scans, 1);
    CHECK_EQ_INT(info.overflows, 0);
    CHECK_EQ_INT(info.folders, 22);
    mi_watch_stop(w);
out:
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

/* A tiny queue overflows: one scan of everything, and nothing is lost. */
static void test_overflow(void)
{
    char *dir = fx_tempdir();
    mi_watch_options opts = MI_WATCH_OPTIONS_INIT;
    mi_watch_info info = MI_WATCH_INFO_INIT;
    mi_index *idx = open_index(dir, false);
    mi_watch *w;
    int i;

    opts.max_queued = 8;
    /* Long enough that the 100 files are all queued before the set is
     * taken, however slowly they are written (a loaded CI machine took
     * over 300 ms between two of them, and the set never filled). */
    opts.debounce_ms = 3000;
    w = start(idx, &opts);
    CHECK(w != NULL);
    if (!w)
        goto out;
    CHECK(wait_scans(w, 1, WAIT_MS));
    /* The folder first, watched before its files come: otherwise, on a
     * slow machine, the files may all be there before its watch, found by
     * the scan of the new folder without an event each, and no overflow
     * (CI under ASan once). */
    {
        char *many = fx_path(dir, "many");

        CHECK(fx_mkdirs(many) == 0);
        free(many);
    }
    CHECK(wait_folders(w, 2, WAIT_MS));
    for (i = 0; i < 100; i++) {
        char rel[32];

        snprintf(rel, sizeof(rel), "many/f%03d.jpg", i);
        put_jpeg(NULL, dir, rel, 2000u + (unsigned)i);
    }
    CHECK(wait_count(idx, 100, 60000));
    CHECK(wait_full_scans(w, 2, 2, WAIT_MS));
    mi_watch_state(w, &info);
    CHECK(info.overflows >= 1);
    CHECK(info.mode == MI_WATCH_INOTIFY);
    CHECK_EQ_INT(info.folders, 2);      /* watched again: root, many/ */
    /* Still watching afterwards. */
    put_jpeg(NULL, dir, "many/later.jpg", 2999);
    CHECK(wait_count(idx, 101, WAIT_MS));
    mi_watch_stop(w);
out:
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

/* Polling, asked for: still indexes what comes, and removes what goes. */
static void test_polling_forced(void)
{
    char *dir = fx_tempdir();
    uint8_t h[MI_HASH_SIZE];
    mi_watch_options opts = MI_WATCH_OPTIONS_INIT;
    mi_watch_info info = MI_WATCH_INFO_INIT;
    mi_index *idx = open_index(dir, false);
    mi_watch *w;
    char *p;

    opts.flags = MI_WATCH_POLL;
    opts.poll_interval_s = 1;
    w = start(idx, &opts);
    CHECK(w != NULL);
    if (!w)
        goto out;
    CHECK(mi_watch_state(w, &info) == MI_WATCH_POLLING);
    CHECK(strstr(info.reason, "asked") != NULL);
    CHECK_EQ_INT(info.folders, 0);
    put_jpeg(h, dir, "x/polled.jpg", 41);
    CHECK(wait_path(idx, h, "x/polled.jpg", true, WAIT_MS));
    p = fx_path(dir, "x/polled.jpg");
    CHECK(unlink(p) == 0);
    free(p);
    CHECK(wait_path(idx, h, "x/polled.jpg", false, WAIT_MS));
    CHECK(wait_full_scans(w, 3, 3, WAIT_MS));
    mi_watch_state(w, &info);
    CHECK_EQ_INT(info.scans, info.full_scans);
    mi_watch_stop(w);
out:
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

/* The watches run out (max_folders takes the path of the kernel's
 * ENOSPC), at the start or when a new folder comes: polling, and said. */
static void test_watches_run_out(void)
{
    char *dir = fx_tempdir();
    uint8_t h[MI_HASH_SIZE];
    mi_watch_options opts = MI_WATCH_OPTIONS_INIT;
    mi_watch_info info = MI_WATCH_INFO_INIT;
    mi_index *idx = open_index(dir, false);
    mi_watch *w;

    put_jpeg(NULL, dir, "a/1.jpg", 51);
    put_jpeg(NULL, dir, "b/2.jpg", 52);
    put_jpeg(NULL, dir, "c/3.jpg", 53);
    opts.max_folders = 2;
    opts.poll_interval_s = 1;
    w = start(idx, &opts);
    CHECK(w != NULL);
    if (!w)
        goto out;
    CHECK(mi_watch_state(w, &info) == MI_WATCH_POLLING);
    printf("# %s\n", info.reason);
    CHECK(strstr(info.reason, "max_user_watches") != NULL);
    CHECK_EQ_INT(info.folders, 0);      /* given back */
    CHECK(wait_count(idx, 3, WAIT_MS));
    put_jpeg(h, dir, "c/4.jpg", 54);
    CHECK(wait_path(idx, h, "c/4.jpg", true, WAIT_MS));
    mi_watch_stop(w);

    /* Enough at the start; a new folder is one too many. */
    opts.max_folders = 4;
    w = start(idx, &opts);
    CHECK(w != NULL);
    if (!w)
        goto out;
    CHECK(mi_watch_state(w, &info) == MI_WATCH_INOTIFY);
    CHECK_EQ_INT(info.folders, 4);
    CHECK(wait_scans(w, 1, WAIT_MS));
    put_jpeg(h, dir, "d/5.jpg", 55);
    CHECK(wait_mode(w, MI_WATCH_POLLING, WAIT_MS));
    CHECK(wait_path(idx, h, "d/5.jpg", true, WAIT_MS));
    mi_watch_state(w, &info);
    CHECK(strstr(info.reason, "max_user_watches") != NULL);
    put_jpeg(h, dir, "d/6.jpg", 56);
    CHECK(wait_path(idx, h, "d/6.jpg", true, WAIT_MS));
    mi_watch_stop(w);
out:
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

/* Other scans run meanwhile (a server's rescans): the watcher's wait for
 * them and nothing is lost. */
typedef struct rescanner {
    mi_index *idx;
    atomic_bool stop;
    int scans;
} rescanner;

static void *rescan_loop(void *arg)
{
    rescanner *r = arg;

    while (!atomic_load(&r->stop)) {
        if (mi_scan(r->idx, NULL, NULL) == MI_OK)
            r->scans++;
    }
    return NULL;
}

static void test_concurrent_scans(void)
{
    char *dir = fx_tempdir();
    mi_index *idx = open_index(dir, false);
    mi_watch *w = start(idx, NULL);
    rescanner r;
    pthread_t t;
    int i;

    CHECK(w != NULL);
    if (!w)
        goto out;
    for (i = 0; i < 200; i++) {
        char rel[32];

        snprintf(rel, sizeof(rel), "base/f%03d.jpg", i);
        put_jpeg(NULL, dir, rel, 3000u + (unsigned)i);
    }
    CHECK(wait_count(idx, 200, 60000));
    r.idx = idx;
    r.scans = 0;
    atomic_init(&r.stop, false);
    CHECK(pthread_create(&t, NULL, rescan_loop, &r) == 0);
    for (i = 0; i < 50; i++) {
        char rel[32];

        snprintf(rel, sizeof(rel), "more/g%03d.jpg", i);
        put_jpeg(NULL, dir, rel, 4000u + (unsigned)i);
        sleep_ms(10);
    }
    sleep_ms(500);
    atomic_store(&r.stop, true);
    pthread_join(t, NULL);
    printf("# %d rescans ran meanwhile\n", r.scans);
    CHECK(r.scans > 0);
    CHECK(wait_count(idx, 250, WAIT_MS));
    mi_watch_stop(w);
out:
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

/* Uploads meanwhile: stored once, indexed once, nothing read twice. */
typedef struct totals {
    pthread_mutex_t lock;
    mi_scan_stats sum;
    int bad;
} totals;

static void add_totals(mi_watch *w, mi_status status,
                       const mi_scan_stats *stats, void *payload)
{
    totals *t = payload;

    (void)w;
    pthread_mutex_lock(&t->lock);
    t->bad += status != MI_OK;
    t->sum.added += stats->added;
    t->sum.changed += stats->changed;
    t->sum.removed += stats->removed;
    t->sum.failed += stats->failed;
    t->sum.files_hashed += stats->files_hashed;
    pthread_mutex_unlock(&t->lock);
}

static void test_uploads_meanwhile(void)
{
    char *dir = fx_tempdir();
    mi_watch_options opts = MI_WATCH_OPTIONS_INIT;
    mi_index *idx = open_index(dir, true);
    totals t;
    mi_watch *w;
    int i;

    memset(&t, 0, sizeof(t));
    pthread_mutex_init(&t.lock, NULL);
    opts.callback = add_totals;
    opts.payload = &t;
    w = start(idx, &opts);
    CHECK(w != NULL);
    if (!w)
        goto out;
    CHECK(wait_scans(w, 1, WAIT_MS));
    for (i = 0; i < 20; i++) {
        unsigned char *jpg = NULL;
        size_t len = 0;
        mi_store *st = NULL;
        char name[32];

        snprintf(name, sizeof(name), "up%02d.jpg", i);
        CHECK(fx_jpeg_buffer(&jpg, &len, 40, 30, 6000u + (unsigned)i, NULL) == 0);
        CHECK_OK(mi_store_begin(&st, idx, name, NULL, 0));
        CHECK_OK(mi_store_write(st, jpg, len));
        CHECK_OK(mi_store_commit(st));
        CHECK_EQ_INT(mi_store_created(st), 1);
        mi_store_free(st);
        free(jpg);
    }
    CHECK_EQ_INT(count_files(idx), 20);
    sleep_ms(1500);     /* the watcher's scans of the placed files */
    CHECK_EQ_INT(count_files(idx), 20);
    pthread_mutex_lock(&t.lock);
    printf("# the watcher after 20 uploads: %" PRIu64 " added, %" PRIu64
           " changed, %" PRIu64 " hashed\n", t.sum.added, t.sum.changed,
           t.sum.files_hashed);
    CHECK_EQ_INT(t.bad, 0);
    CHECK_EQ_INT(t.sum.removed + t.sum.failed + t.sum.changed, 0);
    pthread_mutex_unlock(&t.lock);
    mi_watch_stop(w);
out:
    pthread_mutex_destroy(&t.lock);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

/* The callback comes after each scan; stop is quick, even mid-scan. */
typedef struct calls {
    atomic_int n;
    atomic_int bad;
} calls;

static void on_scan(mi_watch *w, mi_status status, const mi_scan_stats *stats,
                    void *payload)
{
    calls *c = payload;

    if (!w || !stats || status != MI_OK)
        atomic_fetch_add(&c->bad, 1);
    if (mi_watch_state(w, NULL) != MI_WATCH_INOTIFY)
        atomic_fetch_add(&c->bad, 1);
    atomic_fetch_add(&c->n, 1);
}

static void test_callback_and_stop(void)
{
    char *dir = fx_tempdir();
    mi_watch_options opts = MI_WATCH_OPTIONS_INIT;
    mi_index *idx = open_index(dir, true);
    calls c;
    mi_watch *w;
    int64_t t0;
    int i;

    atomic_init(&c.n, 0);
    atomic_init(&c.bad, 0);
    opts.callback = on_scan;
    opts.payload = &c;
    w = start(idx, &opts);
    CHECK(w != NULL);
    if (!w)
        goto out;
    CHECK(wait_scans(w, 1, WAIT_MS));
    put_jpeg(NULL, dir, "cb.jpg", 61);
    CHECK(wait_count(idx, 1, WAIT_MS));
    CHECK(wait_scans(w, 2, WAIT_MS));
    sleep_ms(100);
    CHECK(atomic_load(&c.n) >= 2);
    CHECK_EQ_INT(atomic_load(&c.bad), 0);
    mi_watch_stop(w);

    /* Started and stopped at once, many times. */
    for (i = 0; i < 20; i++) {
        w = start(idx, NULL);
        CHECK(w != NULL);
        mi_watch_stop(w);
    }

    /* Stopped in the middle of a long first scan. */
    for (i = 0; i < 300; i++) {
        char rel[32];

        snprintf(rel, sizeof(rel), "big/p%03d.jpg", i);
        put_jpeg(NULL, dir, rel, 5000u + (unsigned)i);
    }
    w = start(idx, NULL);
    CHECK(w != NULL);
    sleep_ms(100);
    t0 = ms_now();
    mi_watch_stop(w);
    printf("# stopped in %d ms with %" PRIu64 " files indexed\n",
           (int)(ms_now() - t0), count_files(idx));
    CHECK(ms_now() - t0 < 5000);
    /* What it committed is kept; a scan finishes the rest. */
    CHECK_OK(mi_scan(idx, NULL, NULL));
    CHECK_EQ_INT(count_files(idx), 301);
out:
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

int main(void)
{
    RUN(test_create_and_state);
    RUN(test_slow_write);
    RUN(test_rename_delete);
    RUN(test_folders);
    RUN(test_only_changes_scanned);
    RUN(test_burst);
    RUN(test_overflow);
    RUN(test_polling_forced);
    RUN(test_watches_run_out);
    RUN(test_concurrent_scans);
    RUN(test_uploads_meanwhile);
    RUN(test_callback_and_stop);
    return mi_test_done();
}
