/*
 * trash.c - deleting that can be undone (mi_trash_*).
 *
 * A content's files move into DIR/.mediaindex/trash/ by rename (the same
 * file system: nothing is copied, nothing can be half-written) and come
 * back the same way.  Each move is three steps, so that a crash between
 * any two leaves every file in exactly one place and a catalog the next
 * open can settle (mi_trash_recover):
 *
 *   1. the trash rows are written with their move "going in" (0) or
 *      "coming out" (2) and committed;
 *   2. the files are renamed, one by one (each rename is atomic);
 *   3. the catalog is brought in line (rows leave or join `files`, trash
 *      rows become "in the trash" (1) or go) and committed.
 *
 * At open, a row still going in is in the trash when its file is there,
 * else it never left; one coming out is still in the trash when its file
 * is there, else it reached the folder and the next scan indexes it.
 *
 * The trash lives under .mediaindex/, which scans never enter, so a scan
 * neither indexes nor "restores" what is in it.
 */
#include "config.h"
#include "mi-private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The columns a trash row keeps of its files row. */
#define FILE_COLUMNS                                                        \
    "hash, path, size, mtime_ns, ctime_ns, inode, mime, kind, date, "       \
    "date_source, width, height, orientation, lat, lon, make, model, "      \
    "thumb, duration_ms, codec, live_id, place"
/* The same, with the path taken from ?2 (a restored file's new path). */
#define FILE_COLUMNS_NEW_PATH                                               \
    "hash, ?2, size, mtime_ns, ctime_ns, inode, mime, kind, date, "         \
    "date_source, width, height, orientation, lat, lon, make, model, "      \
    "thumb, duration_ms, codec, live_id, place"

#define MAX_SUFFIX 1000

enum { GOING_IN = 0, IN_TRASH = 1, COMING_OUT = 2 };

/* One file of a move. */
struct move {
    char path[MI_MAX_PATH + 1];     /* where it was (relative) */
    char to[MI_MAX_PATH + 1];       /* where it went back to (restore) */
    char name[MI_HASH_HEX_LEN + 48];/* its file in the trash */
    bool done, gone;
};

static int trash_fd(mi_index *idx, bool create)
{
    int root = mi_index_root_fd(idx);

    if (create && mkdirat(root, MI_TRASH_DIR, 0700) != 0 && errno != EEXIST)
        return -1;
    return openat(root, MI_TRASH_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* The writer, in a transaction; NULL with *s (and the handle's message)
 * set when the catalog cannot be written now. */
static mi_conn *write_begin(mi_index *idx, mi_status *s, const char *ctx)
{
    char err[256] = "";
    mi_conn *w = mi_index_writer_lock(idx);

    if (!w) {
        *s = mi_index_writer_error(idx, err, sizeof(err));
    } else if ((*s = mi_catalog_begin(w, err, sizeof(err))) != MI_OK) {
        mi_index_writer_abort(idx);
        w = NULL;
    }
    if (!w)
        mi_index_fail(idx, *s, "%s%s", err, ctx);
    return w;
}

static mi_status db_fail(mi_index *idx, mi_conn *w, const char *what)
{
    return mi_index_fail(idx, MI_EDB, "trash: %s: %s", what,
                         sqlite3_errmsg(w->db));
}

/* Run `sql` with ?1 = hash (and ?2 = text, ?3 = integer when given). */
static int exec_bound(mi_conn *c, const char *sql, const uint8_t *hash,
                      const char *text, int64_t num)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);

    if (rc == SQLITE_OK) {
        if (hash)
            sqlite3_bind_blob(st, 1, hash, MI_HASH_SIZE, SQLITE_STATIC);
        if (text)
            sqlite3_bind_blob(st, 2, text, (int)strlen(text), SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, num);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE || rc == SQLITE_ROW)
            rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* The rows of a hash in one state (or all states with state < 0): their
 * paths and trash names into a new array. */
static mi_status read_moves(mi_conn *c, const uint8_t hash[MI_HASH_SIZE],
                            int state, struct move **out, size_t *n)
{
    sqlite3_stmt *st = NULL;
    struct move *v = NULL;
    size_t cap = 0;
    int rc;

    *out = NULL;
    *n = 0;
    rc = sqlite3_prepare_v2(c->db,
                            "SELECT path, name FROM trash WHERE hash = ?1"
                            " AND (?2 < 0 OR state = ?2) ORDER BY path",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return MI_EDB;
    sqlite3_bind_blob(st, 1, hash, MI_HASH_SIZE, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, state);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *p = sqlite3_column_blob(st, 0);
        const unsigned char *name = sqlite3_column_text(st, 1);
        int plen = sqlite3_column_bytes(st, 0);

        if (!p || !name || plen <= 0 || plen > MI_MAX_PATH ||
            memchr(p, '\0', (size_t)plen) ||
            strlen((const char *)name) >= sizeof(v->name))
            continue;
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            struct move *g = realloc(v, ncap * sizeof(*g));

            if (!g) {
                sqlite3_finalize(st);
                free(v);
                return MI_ENOMEM;
            }
            v = g;
            cap = ncap;
        }
        memset(&v[*n], 0, sizeof(v[*n]));
        memcpy(v[*n].path, p, (size_t)plen);
        snprintf(v[*n].name, sizeof(v[*n].name), "%s", (const char *)name);
        (*n)++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(v);
        *n = 0;
        return MI_EDB;
    }
    *out = v;
    return MI_OK;
}

/* fsync the folder holding `rel` (best effort: the renames are done). */
static void sync_parent(int root, const char *rel)
{
    char dir[MI_MAX_PATH + 1];
    const char *slash = strrchr(rel, '/');
    int fd;

    if (slash)
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - rel), rel);
    else
        snprintf(dir, sizeof(dir), ".");
    fd = openat(root, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

bool mi_trash_has(mi_index *idx, const uint8_t hash[MI_HASH_SIZE])
{
    sqlite3_stmt *st = NULL;
    mi_conn *c;
    bool found = false;

    if (mi_index_reader(idx, &c) != MI_OK)
        return false;
    if (sqlite3_prepare_v2(c->db, "SELECT 1 FROM trash WHERE hash = ?1"
                           " AND state = 1 LIMIT 1", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_blob(st, 1, hash, MI_HASH_SIZE, SQLITE_STATIC);
        found = sqlite3_step(st) == SQLITE_ROW;
    }
    sqlite3_finalize(st);
    mi_index_release(idx, c);
    return found;
}

/* ---------------------------------------------------------------------- */

mi_status mi_trash_put(mi_index *idx, const uint8_t hash[MI_HASH_SIZE],
                       uint64_t *moved)
{
    char err[256] = "";
    struct move *v = NULL;
    size_t n = 0, i;
    int root, tfd;
    mi_status s;
    mi_conn *w;
    int rc;

    if (moved)
        *moved = 0;
    if (!idx || !hash)
        return MI_EINVAL;
    root = mi_index_root_fd(idx);
    tfd = trash_fd(idx, true);
    if (tfd < 0)
        return mi_index_fail(idx, mi_status_from_io_errno(errno),
                             "trash: cannot open %s: %s", MI_TRASH_DIR,
                             strerror(errno));
    mi_index_store_lock(idx, hash);

    /* 1. What will move, and where to. */
    if (!(w = write_begin(idx, &s, "")))
        goto out;
    /* Names: the hash, the time and a counter: unique in the trash. */
    rc = exec_bound(w,
                    "INSERT OR REPLACE INTO trash (" FILE_COLUMNS ", name, at,"
                    " state) SELECT " FILE_COLUMNS ", lower(hex(hash)) || '-'"
                    " || ?3 || '-' || (row_number() OVER (ORDER BY path)),"
                    " CAST(strftime('%s', 'now') AS INTEGER), 0"
                    " FROM files WHERE hash = ?1",
                    hash, NULL, mi_wall_ns());
    if (rc != SQLITE_OK) {
        s = db_fail(idx, w, "recording the move");
        mi_index_writer_abort(idx);
        goto out;
    }
    s = read_moves(w, hash, GOING_IN, &v, &n);
    if (s == MI_OK && n == 0) {
        char hex[MI_HASH_HEX_LEN + 1];

        mi_hash_to_hex(hex, hash);
        mi_index_writer_abort(idx);
        s = mi_index_fail(idx, MI_ENOTFOUND, "no media with hash %s", hex);
        goto out;
    }
    if (s == MI_OK)
        s = mi_index_writer_commit(idx, false, err, sizeof(err));
    else
        mi_index_writer_abort(idx);
    if (s != MI_OK) {
        mi_index_fail(idx, s, "trash: recording the move: %s", err);
        goto out;
    }

    /* 2. The renames. */
    for (i = 0; i < n; i++) {
        if (renameat(root, v[i].path, tfd, v[i].name) == 0)
            v[i].done = true;
        else if (errno == ENOENT)
            v[i].gone = true;       /* deleted meanwhile: nothing to keep */
    }
    fsync(tfd);
    for (i = 0; i < n; i++)
        if (v[i].done)
            sync_parent(root, v[i].path);

    /* 3. The catalog in line: moved files leave `files`; a file that
     * could not move (EACCES, EBUSY...) stays where it is, indexed. */
    if (!(w = write_begin(idx, &s, " (the next open settles the trash)")))
        goto out;
    for (i = 0; s == MI_OK && i < n; i++) {
        bool out_of_files = v[i].done || v[i].gone;

        rc = SQLITE_OK;
        if (out_of_files)
            rc = exec_bound(w, "DELETE FROM files WHERE hash = ?1 AND path = ?2",
                            hash, v[i].path, 0);
        if (rc == SQLITE_OK)
            rc = exec_bound(w, v[i].done
                                   ? "UPDATE trash SET state = 1"
                                     " WHERE hash = ?1 AND path = ?2"
                                   : "DELETE FROM trash"
                                     " WHERE hash = ?1 AND path = ?2",
                            hash, v[i].path, 0);
        if (rc != SQLITE_OK)
            s = db_fail(idx, w, "moving the rows");
        else if (v[i].done && moved)
            (*moved)++;
    }
    if (s == MI_OK)
        s = mi_index_writer_commit(idx, true, err, sizeof(err));
    else
        mi_index_writer_abort(idx);
    if (s != MI_OK && !*mi_index_errmsg(idx))
        mi_index_fail(idx, s, "%s", err);
    for (i = 0; s == MI_OK && i < n; i++)
        if (!v[i].done && !v[i].gone)
            s = mi_index_fail(idx, MI_EACCES, "trash: cannot move %s: it "
                              "stays where it is", v[i].path);
out:
    mi_index_store_unlock(idx, hash);
    close(tfd);
    free(v);
    return s;
}

/* `rel` with " (k)" before its extension (k > 0). */
static void suffixed(char *out, size_t n, const char *rel, unsigned int k)
{
    const char *slash = strrchr(rel, '/');
    const char *base = slash ? slash + 1 : rel;
    const char *dot = strrchr(base, '.');
    size_t stem = dot && dot != base ? (size_t)(dot - rel) : strlen(rel);

    if (k == 0)
        snprintf(out, n, "%s", rel);
    else
        snprintf(out, n, "%.*s (%u)%s", (int)stem, rel, k, rel + stem);
}

/* Make the folders of `rel` (a file's path) that are missing. */
static void make_parents(int root, const char *rel)
{
    char dir[MI_MAX_PATH + 1];
    char *p;

    snprintf(dir, sizeof(dir), "%s", rel);
    for (p = strchr(dir, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        mkdirat(root, dir, 0755);
        *p = '/';
    }
}

/* Move one trashed file back to its path or a free name beside it. */
static int move_back(int tfd, int root, struct move *m)
{
    unsigned int k;

    make_parents(root, m->path);
    for (k = 0; k < MAX_SUFFIX; k++) {
        suffixed(m->to, sizeof(m->to), m->path, k);
        if (strlen(m->to) > MI_MAX_PATH)
            return ENAMETOOLONG;
        if (renameat2(tfd, m->name, root, m->to, RENAME_NOREPLACE) == 0)
            return 0;
        if (errno != EEXIST)
            return errno;
    }
    return EEXIST;
}

mi_status mi_trash_restore(char *path, size_t path_size, mi_index *idx,
                           const uint8_t hash[MI_HASH_SIZE])
{
    mi_status s;

    if (path && path_size)
        path[0] = '\0';
    if (!idx || !hash || (path && !path_size))
        return MI_EINVAL;
    mi_index_store_lock(idx, hash);
    s = mi_trash_restore_locked(path, path_size, idx, hash);
    mi_index_store_unlock(idx, hash);
    return s;
}

mi_status mi_trash_restore_locked(char *path, size_t path_size, mi_index *idx,
                                  const uint8_t hash[MI_HASH_SIZE])
{
    char err[256] = "";
    struct move *v = NULL;
    size_t n = 0, i, back = 0;
    int root, tfd, rc;
    mi_status s;
    mi_conn *w;

    if (path && path_size)
        path[0] = '\0';
    if (!idx || !hash || (path && !path_size))
        return MI_EINVAL;
    root = mi_index_root_fd(idx);
    tfd = trash_fd(idx, false);
    if (tfd < 0) {
        char hex[MI_HASH_HEX_LEN + 1];

        mi_hash_to_hex(hex, hash);
        return mi_index_fail(idx, MI_ENOTFOUND, "%s is not in the trash", hex);
    }
    /* 1. Mark the move. */
    if (!(w = write_begin(idx, &s, "")))
        goto out;
    if (exec_bound(w, "UPDATE trash SET state = 2 WHERE hash = ?1"
                   " AND state = 1", hash, NULL, 0) != SQLITE_OK)
        s = db_fail(idx, w, "recording the move");
    if (s == MI_OK)
        s = read_moves(w, hash, COMING_OUT, &v, &n);
    if (s == MI_OK)
        s = mi_index_writer_commit(idx, false, err, sizeof(err));
    else
        mi_index_writer_abort(idx);
    if (s == MI_OK && n == 0) {
        char hex[MI_HASH_HEX_LEN + 1];

        mi_hash_to_hex(hex, hash);
        s = mi_index_fail(idx, MI_ENOTFOUND, "%s is not in the trash", hex);
    }
    if (s != MI_OK)
        goto out;

    /* 2. The renames, never over another file. */
    for (i = 0; i < n; i++) {
        int e = move_back(tfd, root, &v[i]);

        if (e == 0) {
            v[i].done = true;
            sync_parent(root, v[i].to);
        } else if (e == ENOENT) {
            v[i].gone = true;       /* its trash file is missing */
        }
    }

    /* 3. Restored files join `files` under the path they got; one that
     * could not move back stays in the trash. */
    if (!(w = write_begin(idx, &s, " (the next scan indexes the restored "
                                   "files)")))
        goto out;
    for (i = 0; s == MI_OK && i < n; i++) {
        rc = SQLITE_OK;
        if (v[i].done) {
            /* ?2 is the new path: bound by hand, then the old one. */
            sqlite3_stmt *st = NULL;

            rc = sqlite3_prepare_v2(w->db,
                                    "INSERT OR REPLACE INTO files (" FILE_COLUMNS
                                    ", seq) SELECT " FILE_COLUMNS_NEW_PATH
                                    ", mi_next_seq() FROM trash"
                                    " WHERE hash = ?1 AND path = ?3",
                                    -1, &st, NULL);
            if (rc == SQLITE_OK) {
                sqlite3_bind_blob(st, 1, hash, MI_HASH_SIZE, SQLITE_STATIC);
                sqlite3_bind_blob(st, 2, v[i].to, (int)strlen(v[i].to),
                                  SQLITE_STATIC);
                sqlite3_bind_blob(st, 3, v[i].path, (int)strlen(v[i].path),
                                  SQLITE_STATIC);
                rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
            }
            sqlite3_finalize(st);
        }
        if (rc == SQLITE_OK)
            rc = exec_bound(w, v[i].done || v[i].gone
                                   ? "DELETE FROM trash"
                                     " WHERE hash = ?1 AND path = ?2"
                                   : "UPDATE trash SET state = 1"
                                     " WHERE hash = ?1 AND path = ?2",
                            hash, v[i].path, 0);
        if (rc != SQLITE_OK)
            s = db_fail(idx, w, "restoring the rows");
        else if (v[i].done && back++ == 0 && path)
            snprintf(path, path_size, "%s", v[i].to);
    }
    if (s == MI_OK)
        s = mi_index_writer_commit(idx, true, err, sizeof(err));
    else
        mi_index_writer_abort(idx);
    if (s != MI_OK && !*mi_index_errmsg(idx))
        mi_index_fail(idx, s, "%s", err);
    if (s == MI_OK && back == 0)
        s = mi_index_fail(idx, MI_EIO, "trash: no file of it could be put "
                          "back");
out:
    close(tfd);
    free(v);
    return s;
}

mi_status mi_trash_purge(mi_index *idx, const uint8_t *hash, int64_t before,
                         uint64_t *purged)
{
    sqlite3_stmt *st = NULL;
    uint8_t (*hv)[MI_HASH_SIZE] = NULL;
    size_t nh = 0, cap = 0, i;
    mi_status s = MI_OK;
    mi_conn *c;
    int tfd, rc;

    if (purged)
        *purged = 0;
    if (!idx)
        return MI_EINVAL;
    tfd = trash_fd(idx, false);
    if (tfd < 0)
        return MI_OK;                   /* never used */
    /* The contents to purge, then each under its lock. */
    s = mi_index_reader(idx, &c);
    if (s != MI_OK) {
        close(tfd);
        return s;
    }
    rc = sqlite3_prepare_v2(c->db, "SELECT DISTINCT hash FROM trash"
                            " WHERE state = 1 AND at < ?2"
                            " AND (?1 IS NULL OR hash = ?1)", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        if (hash)
            sqlite3_bind_blob(st, 1, hash, MI_HASH_SIZE, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, before);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const void *h = sqlite3_column_blob(st, 0);

            if (!h || sqlite3_column_bytes(st, 0) != MI_HASH_SIZE)
                continue;
            if (nh == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                void *g = realloc(hv, ncap * MI_HASH_SIZE);

                if (!g) {
                    rc = SQLITE_NOMEM;
                    break;
                }
                hv = g;
                cap = ncap;
            }
            memcpy(hv[nh++], h, MI_HASH_SIZE);
        }
    }
    sqlite3_finalize(st);
    mi_index_release(idx, c);
    if (rc != SQLITE_DONE) {
        free(hv);
        close(tfd);
        return mi_index_fail(idx, rc == SQLITE_NOMEM ? MI_ENOMEM : MI_EDB,
                             "trash: listing what to purge");
    }
    for (i = 0; s == MI_OK && i < nh; i++) {
        struct move *v = NULL;
        size_t n = 0, k;
        char err[256] = "";
        mi_conn *w;

        mi_index_store_lock(idx, hv[i]);
        w = mi_index_writer_lock(idx);
        if (!w) {
            s = mi_index_writer_error(idx, err, sizeof(err));
            mi_index_fail(idx, s, "%s", err);
            mi_index_store_unlock(idx, hv[i]);
            break;
        }
        /* The rows go first: a crash then leaves an orphan file in the
         * trash folder (purged by the next empty), never a row whose file
         * is gone. */
        s = read_moves(w, hv[i], IN_TRASH, &v, &n);
        if (s == MI_OK)
            s = mi_catalog_begin(w, err, sizeof(err));
        if (s == MI_OK &&
            exec_bound(w, "DELETE FROM trash WHERE hash = ?1 AND state = 1"
                       " AND at < ?3", hv[i], NULL, before) != SQLITE_OK)
            s = db_fail(idx, w, "purging");
        if (s == MI_OK)
            s = mi_index_writer_commit(idx, false, err, sizeof(err));
        else
            mi_index_writer_abort(idx);
        if (s == MI_OK) {
            for (k = 0; k < n; k++)
                unlinkat(tfd, v[k].name, 0);
            if (!mi_trash_has(idx, hv[i])) {
                mi_entry *e = NULL;

                /* Not indexed again meanwhile: its tiles go too. */
                if (mi_lookup(&e, idx, hv[i]) == MI_ENOTFOUND)
                    mi_thumb_remove(idx, hv[i]);
                mi_entry_free(e);
            }
            if (purged)
                (*purged)++;
        }
        mi_index_store_unlock(idx, hv[i]);
        free(v);
    }
    /* Emptying all of it also clears files no row names (a crash between
     * a purge's commit and its unlinks). */
    if (s == MI_OK && !hash && before == INT64_MAX) {
        DIR *d = NULL;
        int fd = dup(tfd);
        struct dirent *de;

        if (fd >= 0 && !(d = fdopendir(fd)))
            close(fd);
        while (d && (de = readdir(d)) != NULL) {
            uint8_t h[MI_HASH_SIZE];
            char hex[MI_HASH_HEX_LEN + 1];

            if (strlen(de->d_name) <= MI_HASH_HEX_LEN)
                continue;
            memcpy(hex, de->d_name, MI_HASH_HEX_LEN);
            hex[MI_HASH_HEX_LEN] = '\0';
            if (de->d_name[MI_HASH_HEX_LEN] == '-' &&
                mi_hash_from_hex(h, hex) == MI_OK && !mi_trash_has(idx, h))
                unlinkat(tfd, de->d_name, 0);
        }
        if (d)
            closedir(d);
    }
    free(hv);
    close(tfd);
    return s;
}

/* ---------------------------------------------------------------------- */

void mi_trash_recover(mi_index *idx)
{
    sqlite3_stmt *st = NULL;
    char err[256];
    mi_conn *w;
    int tfd = trash_fd(idx, false);

    if (tfd < 0)
        return;                     /* never used */
    w = mi_index_writer_lock(idx);
    if (!w) {
        close(tfd);
        return;
    }
    if (mi_catalog_begin(w, err, sizeof(err)) != MI_OK) {
        mi_index_writer_abort(idx);
        close(tfd);
        return;
    }
    if (sqlite3_prepare_v2(w->db, "SELECT hash, path, name, state FROM trash"
                           " WHERE state <> 1", -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            const void *h = sqlite3_column_blob(st, 0);
            const char *p = sqlite3_column_blob(st, 1);
            const unsigned char *name = sqlite3_column_text(st, 2);
            int plen = sqlite3_column_bytes(st, 1), state = sqlite3_column_int(st, 3);
            char rel[MI_MAX_PATH + 1];
            bool in_trash;

            if (!h || sqlite3_column_bytes(st, 0) != MI_HASH_SIZE || !p ||
                !name || plen <= 0 || plen > MI_MAX_PATH)
                continue;
            memcpy(rel, p, (size_t)plen);
            rel[plen] = '\0';
            in_trash = faccessat(tfd, (const char *)name, F_OK, 0) == 0;
            if (in_trash) {
                /* Moved in (or never moved out): in the trash. */
                exec_bound(w, "DELETE FROM files WHERE hash = ?1 AND path = ?2",
                           h, rel, 0);
                exec_bound(w, "UPDATE trash SET state = 1 WHERE hash = ?1"
                           " AND path = ?2", h, rel, 0);
            } else {
                /* Never moved in, or back in the folder: the folder has
                 * it (a scan indexes a restored file). */
                exec_bound(w, "DELETE FROM trash WHERE hash = ?1 AND path = ?2",
                           h, rel, 0);
            }
            (void)state;
        }
    }
    sqlite3_finalize(st);
    if (mi_index_writer_commit(idx, true, err, sizeof(err)) != MI_OK)
        mi_index_clear_error(idx);
    close(tfd);
}
