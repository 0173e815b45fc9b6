/*
 * test-trash.c - the trash (mi_trash_*): files move by rename and back,
 * never over another file; scans leave the trash alone; storing trashed
 * bytes restores them; purge by age and for all; a move cut short by a
 * crash at each step is settled at the next open.  Public header (and
 * SQLite, to stage the crashes).
 */
#include <mediaindex.h>

#include "api-helpers.h"
#include "fixtures.h"
#include "mi-test.h"

#include <dirent.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void put(const char *dir, const char *rel, unsigned seed)
{
    fx_put_jpeg(dir, rel, 48, 32, seed);
}

static bool exists(const char *dir, const char *rel)
{
    char *p = fx_path(dir, rel);
    struct stat sb;
    bool ok = p && stat(p, &sb) == 0;

    free(p);
    return ok;
}

/* Files in the trash folder. */
static int in_trash(const char *dir)
{
    return fx_count_in(dir, ".mediaindex/trash");
}

static int trash_entries(mi_index *idx, int64_t *at)
{
    mi_cursor *c = NULL;
    int n = 0;

    if (mi_trash_cursor(&c, idx) != MI_OK)
        return -1;
    while (mi_cursor_next(c) == MI_ROW) {
        if (at)
            *at = mi_entry_trashed_at(mi_cursor_entry(c));
        n++;
    }
    mi_cursor_free(c);
    return n;
}

static int sql(const char *dir, const char *q)
{
    char *p = fx_path(dir, ".mediaindex/index.sqlite3");
    sqlite3 *db = NULL;
    int rc = sqlite3_open(p, &db);

    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, q, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        printf("# sql: %s: %s\n", q, sqlite3_errmsg(db));
    sqlite3_close(db);
    free(p);
    return rc;
}

/* ---------------------------------------------------------------------- */

static void test_put_restore(void)
{
    char *dir = fx_tempdir();
    uint8_t h[MI_HASH_SIZE], other[MI_HASH_SIZE];
    char path[512];
    mi_index *idx = ta_open(dir, 1);
    mi_entry *e = NULL;
    uint64_t moved = 0, n = 0;
    int64_t at = 0;

    CHECK(idx != NULL);
    if (!idx)
        goto out;
    put(dir, "a/x.jpg", 1);
    put(dir, "b/copy of x.jpg", 1);
    put(dir, "y.jpg", 2);
    ta_hash_of(h, dir, "a/x.jpg");
    ta_hash_of(other, dir, "y.jpg");
    CHECK_EQ_INT(mi_scan(idx, NULL, NULL), MI_OK);

    CHECK_EQ_INT(mi_trash_put(idx, h, &moved), MI_OK);
    CHECK_EQ_INT(moved, 2);
    CHECK(!exists(dir, "a/x.jpg") && !exists(dir, "b/copy of x.jpg"));
    CHECK_EQ_INT(in_trash(dir), 2);
    CHECK_EQ_INT(mi_lookup(&e, idx, h), MI_ENOTFOUND);
    CHECK_EQ_INT(trash_entries(idx, &at), 1);
    CHECK(at > 0 && at <= (int64_t)time(NULL));
    CHECK_EQ_INT(mi_trash_put(idx, h, NULL), MI_ENOTFOUND);   /* not indexed now */
    /* Its thumbnail stays for the trash view. */
    CHECK_EQ_INT(mi_thumb_get(path, sizeof(path), idx, h), MI_OK);

    /* A scan neither indexes the trash nor brings anything back. */
    CHECK_EQ_INT(mi_scan(idx, NULL, NULL), MI_OK);
    CHECK_EQ_INT(mi_lookup(&e, idx, h), MI_ENOTFOUND);
    CHECK_EQ_INT(trash_entries(idx, NULL), 1);

    /* Restore, with a new file at one of the paths: never replaced. */
    put(dir, "a/x.jpg", 3);
    CHECK_EQ_INT(mi_trash_restore(path, sizeof(path), idx, h), MI_OK);
    CHECK(exists(dir, "a/x (1).jpg") && exists(dir, "b/copy of x.jpg"));
    CHECK_EQ_INT(in_trash(dir), 0);
    CHECK_EQ_INT(trash_entries(idx, NULL), 0);
    CHECK_EQ_INT(mi_lookup(&e, idx, h), MI_OK);
    if (e) {
        CHECK_EQ_INT(mi_entry_dup_count(e), 1);
        CHECK_EQ_STR(mi_entry_path(e), "a/x (1).jpg");
        CHECK_EQ_INT(mi_entry_trashed_at(e), 0);
    }
    mi_entry_free(e);
    e = NULL;
    CHECK_EQ_INT(mi_trash_restore(NULL, 0, idx, h), MI_ENOTFOUND);
    {
        uint8_t h3[MI_HASH_SIZE];

        ta_hash_of(h3, dir, "a/x.jpg");   /* the newcomer, untouched */
        CHECK(memcmp(h3, h, MI_HASH_SIZE) != 0);
    }
    /* The restored rows are as the scan would make them: nothing new. */
    {
        mi_scan_stats st = MI_SCAN_STATS_INIT;

        CHECK_EQ_INT(mi_scan(idx, NULL, &st), MI_OK);
        CHECK_EQ_INT(st.added, 1);          /* a/x.jpg, the newcomer */
        CHECK_EQ_INT(st.changed, 0);
        CHECK_EQ_INT(st.removed, 0);
    }

    /* Purge: by age (nothing that young), then for good. */
    CHECK_EQ_INT(mi_trash_put(idx, other, NULL), MI_OK);
    CHECK_EQ_INT(mi_trash_purge(idx, NULL, (int64_t)time(NULL) - 3600, &n), MI_OK);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(in_trash(dir), 1);
    CHECK_EQ_INT(mi_trash_purge(idx, other, INT64_MAX, &n), MI_OK);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(in_trash(dir), 0);
    CHECK_EQ_INT(trash_entries(idx, NULL), 0);
    CHECK_EQ_INT(mi_thumb_get(path, sizeof(path), idx, other), MI_ENOTFOUND);
    CHECK_EQ_INT(mi_trash_restore(NULL, 0, idx, other), MI_ENOTFOUND);
out:
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

/* Storing bytes that are in the trash brings the trashed file back. */
static void test_store_restores(void)
{
    char *dir = fx_tempdir();
    uint8_t h[MI_HASH_SIZE];
    unsigned char *buf = NULL;
    size_t len = 0;
    mi_index *idx = ta_open(dir, 1);
    mi_store *st = NULL;
    char *p;

    CHECK(idx != NULL);
    if (!idx)
        goto out;
    put(dir, "old/photo.jpg", 7);
    ta_hash_of(h, dir, "old/photo.jpg");
    p = fx_path(dir, "old/photo.jpg");
    fx_read_file(p, &buf, &len);
    free(p);
    CHECK_EQ_INT(mi_scan(idx, NULL, NULL), MI_OK);
    CHECK_EQ_INT(mi_trash_put(idx, h, NULL), MI_OK);
    CHECK_EQ_INT(mi_store_begin(&st, idx, "again.jpg", NULL, 0), MI_OK);
    if (st) {
        CHECK_EQ_INT(mi_store_write(st, buf, len), MI_OK);
        CHECK_EQ_INT(mi_store_commit(st), MI_OK);
        CHECK_EQ_INT(mi_store_created(st), 0);
        CHECK_EQ_STR(mi_store_path(st), "old/photo.jpg");
    }
    mi_store_free(st);
    CHECK(exists(dir, "old/photo.jpg"));
    CHECK_EQ_INT(fx_count_in(dir, "uploads"), 0);
    CHECK_EQ_INT(in_trash(dir), 0);
    CHECK_EQ_INT(trash_entries(idx, NULL), 0);
out:
    free(buf);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

/* A crash at each step of a move, staged in the catalog: the next open
 * leaves every file in one place and the catalog saying where. */
static void test_recover(void)
{
    char *dir = fx_tempdir();
    uint8_t a[MI_HASH_SIZE], b[MI_HASH_SIZE], c[MI_HASH_SIZE];
    mi_index *idx = ta_open(dir, 1);
    mi_entry *e = NULL;
    char hex[MI_HASH_HEX_LEN + 1], q[1024], *from = NULL, *to = NULL;
    struct dirent *de;
    DIR *d;

    CHECK(idx != NULL);
    if (!idx)
        goto out;
    put(dir, "a.jpg", 11);
    put(dir, "b.jpg", 12);
    put(dir, "c.jpg", 13);
    ta_hash_of(a, dir, "a.jpg");
    ta_hash_of(b, dir, "b.jpg");
    ta_hash_of(c, dir, "c.jpg");
    CHECK_EQ_INT(mi_scan(idx, NULL, NULL), MI_OK);
    CHECK_EQ_INT(mi_trash_put(idx, a, NULL), MI_OK);
    CHECK_EQ_INT(mi_trash_put(idx, b, NULL), MI_OK);
    CHECK_EQ_INT(mi_trash_put(idx, c, NULL), MI_OK);
    mi_index_close(idx);
    idx = NULL;

    /* a: renamed into the trash, the catalog not yet settled (its files
     * row still there, the move "going in"). */
    mi_hash_to_hex(hex, a);
    snprintf(q, sizeof(q),
             "UPDATE trash SET state = 0 WHERE hash = x'%s';"
             "INSERT INTO files (hash, path, size, mtime_ns, ctime_ns, inode,"
             " mime, kind) VALUES (x'%s', CAST('a.jpg' AS BLOB), 1, 1, 1, 1,"
             " 'image/jpeg', 1);", hex, hex);
    CHECK_EQ_INT(sql(dir, q), SQLITE_OK);
    /* b: recorded, not renamed (its file back at its path). */
    mi_hash_to_hex(hex, b);
    d = opendir(from = fx_path(dir, ".mediaindex/trash"));
    while (d && (de = readdir(d)) != NULL)
        if (strncmp(de->d_name, hex, MI_HASH_HEX_LEN) == 0) {
            char *f = fx_path(from, de->d_name);

            to = fx_path(dir, "b.jpg");
            CHECK(rename(f, to) == 0);
            free(f);
        }
    if (d)
        closedir(d);
    snprintf(q, sizeof(q),
             "UPDATE trash SET state = 0 WHERE hash = x'%s';"
             "INSERT INTO files (hash, path, size, mtime_ns, ctime_ns, inode,"
             " mime, kind) VALUES (x'%s', CAST('b.jpg' AS BLOB), 1, 1, 1, 1,"
             " 'image/jpeg', 1);", hex, hex);
    CHECK_EQ_INT(sql(dir, q), SQLITE_OK);
    /* c: being restored, not renamed yet. */
    mi_hash_to_hex(hex, c);
    snprintf(q, sizeof(q), "UPDATE trash SET state = 2 WHERE hash = x'%s';", hex);
    CHECK_EQ_INT(sql(dir, q), SQLITE_OK);

    idx = ta_open(dir, 1);
    CHECK(idx != NULL);
    if (!idx)
        goto out;
    CHECK_EQ_INT(mi_lookup(&e, idx, a), MI_ENOTFOUND);   /* in the trash */
    CHECK_EQ_INT(mi_lookup(&e, idx, b), MI_OK);          /* never left */
    mi_entry_free(e);
    e = NULL;
    CHECK_EQ_INT(trash_entries(idx, NULL), 2);           /* a and c */
    CHECK_EQ_INT(in_trash(dir), 2);
    CHECK(exists(dir, "b.jpg") && !exists(dir, "a.jpg") && !exists(dir, "c.jpg"));
    CHECK_EQ_INT(mi_trash_restore(NULL, 0, idx, c), MI_OK);
    CHECK(exists(dir, "c.jpg"));
    CHECK_EQ_INT(mi_trash_restore(NULL, 0, idx, a), MI_OK);
    CHECK(exists(dir, "a.jpg"));
    CHECK_EQ_INT(in_trash(dir), 0);
out:
    free(from);
    free(to);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

int main(void)
{
    RUN(test_put_restore);
    RUN(test_store_restores);
    RUN(test_recover);
    return mi_test_done();
}
