/*
 * scan.c - walk the storage folder, detect changes, feed the workers.
 *
 * The walk and the catalog are merged like two sorted lists.  The catalog
 * yields its paths in byte order (an index, no sort, nothing loaded into
 * memory); the walk yields paths in the same order because each directory's
 * children are sorted by name, with "/" appended to directories' names (so
 * "a.txt" < "a/x", as the bytes of the full paths compare).  Each disk path
 * is then new, unchanged or changed, and each catalog path that the walk
 * steps over is gone.  Memory stays bounded by the largest directory, not
 * by the library.
 *
 * New and changed files go to a bounded queue served by worker threads,
 * which read metadata and hash; the scanning thread alone writes to the
 * catalog, in transactions of a few thousand rows, taking the writer lock
 * only for the length of one transaction.
 *
 * A scan may be limited to some paths (mi_scan_paths, for the folder
 * watcher): each is merged the same way, the walk of that one name (a
 * file, or a folder and everything under it) against the catalog's rows
 * of that name, read from a range of the same index.  Nothing outside
 * them is looked at, and nothing of a complete scan's cleanup is done.
 */
#include "config.h"
#include "mi-private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define QUEUE_CAP 64              /* jobs waiting for a worker */
#define BATCH_ROWS 4000           /* rows per transaction ... */
#define BATCH_NS 250000000LL      /* ... or this long, whichever first */
#define PROGRESS_NS 100000000LL   /* progress callback period */
/* The mtime of .thumbnails at the start of the last complete scan after
 * which every thumbnail the catalog counts as made was there and none was
 * left of a content no longer indexed (nor a perceptual hash missing or
 * left over).  While the folder keeps that mtime (nothing was added to it
 * or removed since), a rescan takes the catalog's word for each thumbnail
 * instead of looking (a lookup per file in a folder of two or three files
 * per item: a third of a no-change rescan), and neither the sweep of a new
 * handle's first scan nor the hashes' fill is needed.  Kept only when that
 * mtime is STAMP_SETTLED_NS old: a change in the same clock tick would not
 * move it. */
#define THUMBS_STAMP "thumbs_stamp"
#define STAMP_SETTLED_NS 2000000000LL

typedef struct job {
    char *path;
    size_t path_len;
    bool known;                   /* the catalog has this path */
    bool thumb_only;              /* unchanged: only make its thumbnail */
    bool thumb_tried, thumb_written;
    bool busy;                    /* open for writing elsewhere: skipped */
    const mi_media_type *type;
    mi_status status;             /* filled by the worker */
    char why[128];                /* and why it failed, in words */
    mi_status thumb_status;       /* the thumbnail's */
    char thumb_why[160];          /* the decoder process's reason, or "" */
    mi_file_row row;
    uint64_t bytes;
    struct job *next;
} job;

typedef struct scan {
    mi_index *idx;
    int root_fd;
    const char *root;
    size_t root_len;
    unsigned int flags;
    bool thumbs;                  /* make thumbnails */
    int thumbs_fd;                /* DIR/.thumbnails */
    int64_t thumbs_mtime;         /* its mtime when the scan began, or 0 */
    bool thumbs_trusted;          /* unchanged since a scan that matched
                                     it with the catalog (THUMBS_STAMP) */
    bool stamp_found, stamp_dropped;
    mi_scan_progress_cb progress;
    void *payload;
    mi_scan_stats *stats;
    bool skip_busy;               /* MI_SCAN_SKIP_BUSY */

    /* Work queue and results, under `lock`. */
    pthread_mutex_t lock;
    pthread_cond_t cv_work;       /* a job was queued, or stop */
    pthread_cond_t cv_room;       /* a job was taken, or finished */
    job *q_head, *q_tail;
    size_t q_len;
    job *done;                    /* finished jobs, any order */
    size_t busy;                  /* jobs queued or being worked on */
    bool stop;

    /* The catalog side of the merge: every row (by_path), or the rows of
     * one name in a limited scan, `range` stepped over ranges[] in turn. */
    mi_conn *reader;
    sqlite3_stmt *cat;
    bool cat_done;
    const char *cat_path;
    size_t cat_len;
    sqlite3_stmt *range;
    struct { const char *lo, *hi; size_t lo_len, hi_len; } ranges[2];
    size_t nranges, range_next;
    char below[MI_MAX_PATH + 2];  /* a name's folder range: "name/" ... */
    char above[MI_MAX_PATH + 2];  /* ... up to "name0" */

    /* The open write transaction, and what it adds, changes and removes:
     * counted in the stats only once committed. */
    mi_conn *writer;
    struct { uint64_t added, changed, removed; } pend;
    size_t batch_rows;
    bool batch_changed;
    int64_t batch_start;

    int64_t last_progress;
    int64_t started_ns;           /* wall clock, for the problems' times */
    bool problems;                /* the catalog may hold problems */
    bool cancelled;
    mi_status fatal;              /* first failure that stops the scan */
    char errbuf[512];

    char path[MI_MAX_PATH + 1];   /* the walk's current relative path */
} scan;

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t ts_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

static void job_free(job *j)
{
    if (j) {
        free(j->path);
        free(j);
    }
}

/* ---------------------------------------------------------------------- */
/* Workers                                                                 */

typedef struct worker {
    scan *sc;
    pthread_t thread;
    bool started;
} worker;

/* Read one file: its EXIF, then hash, then the thumbnail with what the
 * decoder process knows (or only the thumbnail of an unchanged file).
 * Never touches the catalog. */
static void work(scan *sc, job *j, mi_hasher *h, void *buf)
{
    struct stat st;
    int fd;

    fd = openat(sc->root_fd, j->path,
                O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        j->status = mi_status_from_errno(errno);
        mi_bufprintf(j->why, sizeof(j->why), "cannot open: %s",
                     strerror(errno));
        return;
    }
    if (j->thumb_only) {
        j->thumb_tried = true;
        j->thumb_status = mi_thumb_write_fd_oriented(
            sc->idx, j->row.hash, fd, j->type, -1, &j->row.thumb,
            &j->thumb_written, &j->row.phash, j->thumb_why,
            sizeof(j->thumb_why));
        j->status = MI_OK;
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        j->status = MI_EINVAL;
        mi_bufprintf(j->why, sizeof(j->why), "not a regular file");
        goto out;
    }
    /* Someone has it open for writing: a read lease cannot be taken
     * (EAGAIN).  Taken, it is given back at once (no signal is sent to
     * anyone: no owner was set).  Where leases are not allowed (another
     * user's file, a network file system) it cannot be told: read it. */
    if (sc->skip_busy) {
        if (fcntl(fd, F_SETLEASE, F_RDLCK) == 0) {
            fcntl(fd, F_SETLEASE, F_UNLCK);
        } else if (errno == EAGAIN) {
            j->busy = true;
            j->status = MI_EBUSY;
            goto out;
        }
    }
    /* What is recorded is the state before reading: a file still being
     * written has changed by the next scan and is read again then. */
    j->row.size = (uint64_t)st.st_size;
    j->row.mtime_ns = ts_ns(&st.st_mtim);
    j->row.ctime_ns = ts_ns(&st.st_ctim);
    j->row.inode = (uint64_t)st.st_ino;
    j->row.type = j->type;
    j->row.path = j->path;
    j->row.path_len = j->path_len;

    /* Bad metadata is not a failure: the file is still a photo to keep. */
    if (mi_meta_read_fd(&j->row.meta, fd, j->row.size, j->type) != MI_OK)
        memset(&j->row.meta, 0, sizeof(j->row.meta));
    errno = 0;
    j->status = mi_hash_fd(j->row.hash, fd, h, buf, MI_HASH_CHUNK, &j->bytes);
    if (j->status != MI_OK) {
        mi_bufprintf(j->why, sizeof(j->why), "cannot read: %s",
                     errno ? strerror(errno) : mi_strerror(j->status));
    } else if (sc->thumbs) {
        /* Videos and raw files: what the decoder process reads, from the
         * thumbnail's own request.  One that cannot be opened stays
         * indexed; its thumbnail records why. */
        j->thumb_tried = true;
        j->thumb_status = mi_thumb_write_fd_meta(
            sc->idx, j->row.hash, fd, j->type, &j->row.meta, &j->row.thumb,
            &j->thumb_written, &j->row.phash, j->thumb_why,
            sizeof(j->thumb_why));
    } else {
        mi_meta_from_decoder(sc->idx, fd, j->type, &j->row.meta, NULL, 0);
    }
out:
    close(fd);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    scan *sc = w->sc;
    mi_hasher *h = NULL;
    void *buf = malloc(MI_HASH_CHUNK);
    mi_status hs = mi_hasher_new(&h);

    for (;;) {
        job *j;

        pthread_mutex_lock(&sc->lock);
        while (!sc->q_head && !sc->stop)
            pthread_cond_wait(&sc->cv_work, &sc->lock);
        j = sc->q_head;
        if (!j) {
            pthread_mutex_unlock(&sc->lock);
            break;
        }
        sc->q_head = j->next;
        if (!sc->q_head)
            sc->q_tail = NULL;
        sc->q_len--;
        pthread_mutex_unlock(&sc->lock);

        if (hs != MI_OK || !buf)
            j->status = MI_ENOMEM;
        else
            work(sc, j, h, buf);

        pthread_mutex_lock(&sc->lock);
        j->next = sc->done;
        sc->done = j;
        sc->busy--;
        pthread_cond_signal(&sc->cv_room);
        pthread_mutex_unlock(&sc->lock);
    }
    mi_hasher_free(h);
    free(buf);
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Catalog writes                                                          */

static void set_fatal(scan *sc, mi_status s)
{
    if (sc->fatal == MI_OK)
        sc->fatal = s;
}

static bool batch_begin(scan *sc)
{
    mi_status s;

    if (sc->writer)
        return true;
    if (sc->fatal != MI_OK)
        return false;
    sc->writer = mi_index_writer_lock(sc->idx);
    if (!sc->writer) {
        set_fatal(sc, mi_index_writer_error(sc->idx, sc->errbuf,
                                            sizeof(sc->errbuf)));
        return false;
    }
    s = mi_catalog_begin(sc->writer, sc->errbuf, sizeof(sc->errbuf));
    if (s != MI_OK) {
        mi_index_writer_abort(sc->idx);
        sc->writer = NULL;
        set_fatal(sc, s);
        return false;
    }
    sc->batch_rows = 0;
    sc->batch_changed = false;
    sc->batch_start = now_ns();
    return true;
}

static void batch_commit(scan *sc)
{
    mi_status s;

    if (!sc->writer)
        return;
    s = mi_index_writer_commit(sc->idx, sc->batch_changed, sc->errbuf,
                               sizeof(sc->errbuf));
    if (s != MI_OK) {
        set_fatal(sc, s);
    } else {
        sc->stats->added += sc->pend.added;
        sc->stats->changed += sc->pend.changed;
        sc->stats->removed += sc->pend.removed;
    }
    memset(&sc->pend, 0, sizeof(sc->pend));
    sc->writer = NULL;
}

static void batch_maybe_commit(scan *sc)
{
    if (sc->writer && (sc->batch_rows >= BATCH_ROWS ||
                       now_ns() - sc->batch_start >= BATCH_NS))
        batch_commit(sc);
}

static void drop_path(scan *sc, const char *path, size_t len)
{
    bool deleted = false;
    mi_status s;

    if (!batch_begin(sc))
        return;
    s = mi_catalog_delete(sc->writer, path, len, &deleted, sc->errbuf,
                          sizeof(sc->errbuf));
    /* A content may have gone with it, its thumbnails not yet: should the
     * scan end before its sweep, the next one must not skip it. */
    if (s == MI_OK && sc->thumbs_trusted && !sc->stamp_dropped) {
        s = mi_catalog_meta_put(sc->writer, THUMBS_STAMP, NULL);
        sc->stamp_dropped = s == MI_OK;
    }
    if (s != MI_OK) {
        set_fatal(sc, s);
        return;
    }
    sc->batch_rows++;
    sc->batch_changed |= deleted;
}

/* Record what went wrong with a path, in the open batch. */
static void note_problem(scan *sc, const char *path, size_t len,
                         mi_problem_stage stage, mi_status status,
                         const char *reason)
{
    mi_status s;

    if (!batch_begin(sc))
        return;
    s = mi_catalog_set_problem(sc->writer, path, len, (int)stage, status,
                               reason, mi_wall_ns(), sc->errbuf,
                               sizeof(sc->errbuf));
    if (s != MI_OK) {
        set_fatal(sc, s);
        return;
    }
    sc->problems = true;
    sc->batch_rows++;
}

/* A path that was read (and thumbnailed) is fine: forget its problem.
 * Skipped while the catalog holds none, the common case. */
static void clear_problem(scan *sc, const char *path, size_t len)
{
    mi_status s;

    if (!sc->problems || !batch_begin(sc))
        return;
    s = mi_catalog_clear_problem(sc->writer, path, len, sc->errbuf,
                                 sizeof(sc->errbuf));
    if (s != MI_OK)
        set_fatal(sc, s);
}

/* After the row of a file read by a worker: its thumbnail's problem. */
static void note_thumb(scan *sc, const job *j)
{
    if (j->row.thumb == MI_THUMB_FAILED)
        note_problem(sc, j->path, j->path_len, MI_PROBLEM_THUMBNAIL,
                     j->thumb_status, j->thumb_why[0] ? j->thumb_why
                                                      : mi_thumb_reason(j->thumb_status));
    else
        clear_problem(sc, j->path, j->path_len);
}

static void count_thumb(scan *sc, const job *j)
{
    if (!j->thumb_tried)
        return;
    sc->stats->thumbs_made += j->thumb_written;
    sc->stats->thumbs_failed += j->row.thumb == MI_THUMB_FAILED;
    sc->stats->thumbs_unsupported += j->row.thumb == MI_THUMB_UNSUPPORTED;
}

/* Record the thumbnail made for an unchanged file. */
static void apply_thumb(scan *sc, job *j)
{
    mi_status s;

    if (j->status != MI_OK || j->row.thumb == MI_THUMB_NONE)
        return;     /* vanished, or a transient failure: next scan */
    count_thumb(sc, j);
    if (!batch_begin(sc))
        return;
    s = mi_catalog_set_thumb(sc->writer, j->row.hash, j->path, j->path_len,
                             j->row.thumb, sc->errbuf, sizeof(sc->errbuf));
    if (s == MI_OK && j->row.phash.tried)
        s = mi_catalog_set_phash(sc->writer, j->row.hash, &j->row.phash,
                                 sc->errbuf, sizeof(sc->errbuf));
    if (s != MI_OK) {
        set_fatal(sc, s);
        return;
    }
    sc->batch_rows++;
    sc->batch_changed = true;
    note_thumb(sc, j);
}

/* Record what a worker found. */
static void apply(scan *sc, job *j)
{
    mi_status s;

    if (j->thumb_only) {
        apply_thumb(sc, j);
        return;
    }
    if (j->busy)
        return;     /* its closing brings it back (the watcher) */
    sc->stats->files_hashed += j->status == MI_OK;
    sc->stats->bytes_hashed += j->bytes;
    if (j->status != MI_OK) {
        /* Unreadable, vanished, or no longer a regular file: whatever the
         * catalog knew of this path is stale. */
        sc->stats->failed++;
        if (j->known)
            drop_path(sc, j->path, j->path_len);
        note_problem(sc, j->path, j->path_len, MI_PROBLEM_READ, j->status,
                     j->why);
        return;
    }
    if (!batch_begin(sc))
        return;
    s = mi_catalog_put(sc->writer, &j->row, sc->errbuf, sizeof(sc->errbuf));
    if (s != MI_OK) {
        set_fatal(sc, s);
        return;
    }
    sc->batch_rows++;
    sc->batch_changed = true;
    count_thumb(sc, j);
    note_thumb(sc, j);
    if (j->known)
        sc->pend.changed++;
    else
        sc->pend.added++;
}

/* Apply every finished job; with `all`, wait for the busy ones first. */
static void drain(scan *sc, bool all)
{
    job *list, *next;

    pthread_mutex_lock(&sc->lock);
    if (all)
        while (sc->busy)
            pthread_cond_wait(&sc->cv_room, &sc->lock);
    list = sc->done;
    sc->done = NULL;
    pthread_mutex_unlock(&sc->lock);

    for (; list; list = next) {
        next = list->next;
        apply(sc, list);
        job_free(list);
    }
    batch_maybe_commit(sc);
}

/* Tell the caller how far we are: at the first file (so a caller can
 * cancel at once), then every PROGRESS_NS, and once at the end (`final`,
 * whose answer no longer matters). */
static void progress(scan *sc, bool final)
{
    int64_t t = now_ns();

    if (!sc->progress)
        return;
    if (!final && sc->stats->seen != 1 && t - sc->last_progress < PROGRESS_NS)
        return;
    sc->last_progress = t;
    if (sc->progress(sc->stats, sc->payload) != 0 && !final)
        sc->cancelled = true;
}

static bool scan_going(const scan *sc)
{
    return !sc->cancelled && sc->fatal == MI_OK;
}

static void enqueue(scan *sc, const char *path, size_t len, bool known,
                    const mi_media_type *type, const uint8_t *thumb_hash)
{
    job *j = calloc(1, sizeof(*j));

    if (j)
        j->path = malloc(len + 1);
    if (!j || !j->path) {
        job_free(j);
        set_fatal(sc, MI_ENOMEM);
        return;
    }
    memcpy(j->path, path, len + 1);
    j->path_len = len;
    j->known = known;
    j->type = type;
    if (thumb_hash) {
        j->thumb_only = true;
        memcpy(j->row.hash, thumb_hash, MI_HASH_SIZE);
    }

    pthread_mutex_lock(&sc->lock);
    while (sc->q_len >= QUEUE_CAP) {
        /* Apply results while the workers catch up. */
        pthread_mutex_unlock(&sc->lock);
        drain(sc, false);
        pthread_mutex_lock(&sc->lock);
        if (sc->q_len >= QUEUE_CAP && !sc->done)
            pthread_cond_wait(&sc->cv_room, &sc->lock);
    }
    if (sc->q_tail)
        sc->q_tail->next = j;
    else
        sc->q_head = j;
    sc->q_tail = j;
    sc->q_len++;
    sc->busy++;
    pthread_cond_signal(&sc->cv_work);
    pthread_mutex_unlock(&sc->lock);
}

/* ---------------------------------------------------------------------- */
/* The merge                                                               */

/* Point the range statement at the next of sc->ranges; false when none is
 * left. */
static bool cat_next_range(scan *sc)
{
    size_t i = sc->range_next;

    if (i >= sc->nranges)
        return false;
    sc->range_next++;
    sqlite3_reset(sc->range);
    sqlite3_bind_blob(sc->range, 1, sc->ranges[i].lo, (int)sc->ranges[i].lo_len,
                      SQLITE_STATIC);
    sqlite3_bind_blob(sc->range, 2, sc->ranges[i].hi, (int)sc->ranges[i].hi_len,
                      SQLITE_STATIC);
    return true;
}

static void cat_step(scan *sc)
{
    int rc;

    for (;;) {
        rc = sqlite3_step(sc->cat);
        if (rc == SQLITE_ROW) {
            sc->cat_path = sqlite3_column_blob(sc->cat, 0);
            sc->cat_len = (size_t)sqlite3_column_bytes(sc->cat, 0);
            if (!sc->cat_path)
                sc->cat_path = "";
            return;
        }
        if (rc != SQLITE_DONE || sc->cat != sc->range || !cat_next_range(sc))
            break;
    }
    sc->cat_done = true;
    sc->cat_path = NULL;
    sc->cat_len = 0;
    if (rc != SQLITE_DONE) {
        mi_bufprintf(sc->errbuf, sizeof(sc->errbuf), "catalog: reading: %s",
                     sqlite3_errmsg(sc->reader->db));
        set_fatal(sc, MI_EDB);
    }
}

static int pathcmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

/* Drop every catalog path before `path` (the disk no longer has them). */
static void cat_remove_before(scan *sc, const char *path, size_t len)
{
    while (!sc->cat_done && scan_going(sc) &&
           (!path || pathcmp(sc->cat_path, sc->cat_len, path, len) < 0)) {
        drop_path(sc, sc->cat_path, sc->cat_len);
        sc->pend.removed++;
        cat_step(sc);
    }
}

/* Step over the catalog paths under `prefix` (ending in "/") without
 * dropping them: a directory we could not read may be back next time. */
static void cat_keep_prefix(scan *sc, const char *prefix, size_t len)
{
    cat_remove_before(sc, prefix, len);
    while (!sc->cat_done && sc->cat_len >= len &&
           memcmp(sc->cat_path, prefix, len) == 0)
        cat_step(sc);
}

/* A media file found on disk, with the stat of what it points to. */
static void visit(scan *sc, size_t len, const struct stat *st,
                  const mi_media_type *type)
{
    const char *path = sc->path;
    bool known = false, unchanged = false, thumb = false;
    uint8_t hash[MI_HASH_SIZE];

    sc->stats->seen++;
    cat_remove_before(sc, path, len);
    if (!sc->cat_done && pathcmp(sc->cat_path, sc->cat_len, path, len) == 0) {
        known = true;
        unchanged = !(sc->flags & MI_SCAN_FULL) &&
                    (uint64_t)sqlite3_column_int64(sc->cat, 1) ==
                        (uint64_t)st->st_size &&
                    sqlite3_column_int64(sc->cat, 2) == ts_ns(&st->st_mtim) &&
                    (uint64_t)sqlite3_column_int64(sc->cat, 3) ==
                        (uint64_t)st->st_ino;
        if (unchanged && sc->thumbs) {
            /* Never tried (thumbnails were off, or a catalog from before
             * them), or made but deleted since: make it now.  Failed and
             * unsupported ones wait for the file to change. */
            int state = sqlite3_column_int(sc->cat, 4);
            const void *h = sqlite3_column_blob(sc->cat, 5);
            if (h && sqlite3_column_bytes(sc->cat, 5) == MI_HASH_SIZE &&
                (state == MI_THUMB_NONE ||
                 (state == MI_THUMB_OK && !sc->thumbs_trusted &&
                  !mi_thumb_exists(sc->thumbs_fd, h)))) {
                memcpy(hash, h, MI_HASH_SIZE);
                thumb = true;
            }
        }
        cat_step(sc);
    }
    if (unchanged)
        sc->stats->unchanged++;
    if (!unchanged || thumb)
        enqueue(sc, path, len, known, type, thumb ? hash : NULL);
    drain(sc, false);
    progress(sc, false);
}

/* After a complete scan, every thumbnail the catalog counts was looked for
 * (or trusted); when none is left over either (clean: swept now, or
 * trusted and nothing went), say so with the folder's mtime from before
 * the walk (anything done to it since moved it), once it is settled. */
static void keep_stamp(scan *sc, bool clean)
{
    int64_t stamp = sc->thumbs_mtime;
    bool want = clean && stamp && mi_wall_ns() - stamp >= STAMP_SETTLED_NS;
    mi_status s;

    if (sc->stamp_found && !sc->stamp_dropped
            ? want && sc->thumbs_trusted         /* it says so already */
            : !want)                             /* none, none wanted */
        return;
    if (!batch_begin(sc))
        return;
    s = mi_catalog_meta_put(sc->writer, THUMBS_STAMP, want ? &stamp : NULL);
    if (s != MI_OK)
        set_fatal(sc, s);
    else
        batch_commit(sc);
}

/* ---------------------------------------------------------------------- */
/* The walk                                                                */

typedef struct child {
    char *name;
    size_t len;
    bool is_dir;
} child;

/* The byte at position i of a child's sort key: its name, then "/" for a
 * directory. */
static int key_byte(const child *c, size_t i)
{
    return i < c->len ? (unsigned char)c->name[i] : '/';
}

static int child_cmp(const void *pa, const void *pb)
{
    const child *a = pa, *b = pb;
    size_t ka = a->len + a->is_dir, kb = b->len + b->is_dir;
    size_t n = a->len < b->len ? a->len : b->len;
    size_t i;
    int c = memcmp(a->name, b->name, n);

    if (c)
        return c;
    for (i = n; i < ka && i < kb; i++) {
        int x = key_byte(a, i), y = key_byte(b, i);
        if (x != y)
            return x < y ? -1 : 1;
    }
    return ka < kb ? -1 : ka > kb;
}

bool mi_scan_skipped_dir(const char *name)
{
    return strcmp(name, ".mediaindex") == 0 || strcmp(name, ".thumbnails") == 0;
}

/* Is the symlink at the current path a file inside the storage folder?
 * On success *st holds the target's stat. */
static bool symlink_inside(scan *sc, size_t len, struct stat *st)
{
    char full[PATH_MAX], *real;
    bool inside = false;

    if (sc->root_len + 1 + len >= sizeof(full))
        return false;
    memcpy(full, sc->root, sc->root_len);
    full[sc->root_len] = '/';
    memcpy(full + sc->root_len + 1, sc->path, len + 1);
    real = realpath(full, NULL);
    if (!real)
        return false;
    if (strncmp(real, sc->root, sc->root_len) == 0 &&
        (sc->root_len == 1 || real[sc->root_len] == '/') &&
        stat(real, st) == 0 && S_ISREG(st->st_mode))
        inside = true;
    free(real);
    return inside;
}

static void walk(scan *sc, int dirfd, size_t len, int depth);

static void walk_child(scan *sc, int dirfd, const child *ch, size_t len,
                       int depth)
{
    const mi_media_type *type;
    struct stat st;
    size_t n = len + ch->len;

    if (n + 1 > MI_MAX_PATH) {
        sc->stats->failed++;
        return;
    }
    memcpy(sc->path + len, ch->name, ch->len + 1);

    if (ch->is_dir) {
        int fd;

        if (mi_scan_skipped_dir(ch->name) || depth >= MI_MAX_DEPTH)
            return;
        fd = openat(dirfd, ch->name,
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        sc->path[n] = '/';
        sc->path[n + 1] = '\0';
        if (fd < 0) {
            char why[128];

            mi_bufprintf(why, sizeof(why), "cannot open the folder: %s",
                         strerror(errno));
            sc->stats->failed++;
            note_problem(sc, sc->path, n + 1, MI_PROBLEM_FOLDER,
                         mi_status_from_errno(errno), why);
            cat_keep_prefix(sc, sc->path, n + 1);
            return;
        }
        walk(sc, fd, n + 1, depth + 1);
        return;
    }

    type = mi_media_from_name(ch->name);
    if (!type)
        return;
    if (fstatat(dirfd, ch->name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return;                     /* vanished since readdir */
    if (S_ISLNK(st.st_mode)) {
        if (!symlink_inside(sc, n, &st))
            return;
    } else if (!S_ISREG(st.st_mode)) {
        return;                     /* FIFOs, sockets, devices */
    }
    visit(sc, n, &st, type);
}

/* Walk the directory open at `dirfd` (consumed), whose path is
 * sc->path[0..len) ("" or ending in "/"). */
static void walk(scan *sc, int dirfd, size_t len, int depth)
{
    child *kids = NULL;
    size_t nkids = 0, cap = 0, i;
    struct dirent *de;
    DIR *dir;

    dir = fdopendir(dirfd);
    if (!dir) {
        char why[128];
        int err = errno;

        mi_bufprintf(why, sizeof(why), "cannot list the folder: %s",
                     strerror(err));
        close(dirfd);
        sc->stats->failed++;
        if (len) {
            note_problem(sc, sc->path, len, MI_PROBLEM_FOLDER,
                         mi_status_from_errno(err), why);
            cat_keep_prefix(sc, sc->path, len);
        }
        return;
    }
    while ((de = readdir(dir)) != NULL && nkids < MI_MAX_DIR_ENTRIES) {
        const char *name = de->d_name;
        bool is_dir;

        if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))
            continue;
        if (de->d_type == DT_DIR) {
            is_dir = true;
        } else if (de->d_type == DT_UNKNOWN) {
            struct stat st;
            is_dir = fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                     S_ISDIR(st.st_mode);
            if (!is_dir && !mi_media_from_name(name))
                continue;
        } else {
            is_dir = false;
            if (!mi_media_from_name(name))
                continue;           /* not media: never looked at again */
        }
        if (nkids == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            child *p = realloc(kids, ncap * sizeof(*p));
            if (!p)
                break;
            kids = p;
            cap = ncap;
        }
        kids[nkids].len = strlen(name);
        kids[nkids].name = strdup(name);
        kids[nkids].is_dir = is_dir;
        if (!kids[nkids].name)
            break;
        nkids++;
    }
    if (de != NULL && nkids < MI_MAX_DIR_ENTRIES)
        set_fatal(sc, MI_ENOMEM);

    if (nkids)                      /* qsort(NULL, 0, ...) is undefined */
        qsort(kids, nkids, sizeof(*kids), child_cmp);
    for (i = 0; i < nkids && scan_going(sc); i++)
        walk_child(sc, dirfd, &kids[i], len, depth);
    for (i = 0; i < nkids; i++)
        free(kids[i].name);
    free(kids);
    closedir(dir);
    sc->path[len] = '\0';
}

/* ---------------------------------------------------------------------- */
/* A scan limited to some names                                            */

/* A name a limited scan takes: relative, no empty, "." or ".." component,
 * no component longer than a file name, room for "/" and a child. */
static bool target_ok(const char *t, size_t len)
{
    size_t i = 0;

    if (len == 0 || len + 2 > MI_MAX_PATH)
        return false;
    while (i < len) {
        const char *slash = memchr(t + i, '/', len - i);
        size_t n = slash ? (size_t)(slash - (t + i)) : len - i;

        if (n == 0 || n > MI_MAX_NAME ||
            (t[i] == '.' && (n == 1 || (n == 2 && t[i + 1] == '.'))))
            return false;
        i += n + 1;
    }
    return t[len - 1] != '/';
}

/* The byte at position i of a name's sort key: the name, then "/"; -1
 * past it. */
static int target_key(const char *t, size_t len, size_t i)
{
    return i < len ? (unsigned char)t[i] : i == len ? '/' : -1;
}

/* Names in the walk's order, each compared as if it ended in "/": a
 * folder comes right before everything under it. */
static int target_cmp(const void *pa, const void *pb)
{
    const char *a = *(const char *const *)pa, *b = *(const char *const *)pb;
    size_t alen = strlen(a), blen = strlen(b), i;

    for (i = 0;; i++) {
        int x = target_key(a, alen, i), y = target_key(b, blen, i);
        if (x != y)
            return x < y ? -1 : 1;
        if (x < 0)
            return 0;
    }
}

/* Scan one name `t` (len bytes, target_ok): the file or folder there on
 * disk against the catalog's rows of "t" and of everything under "t/". */
static void scan_target(scan *sc, const char *t, size_t len)
{
    char name[MI_MAX_NAME + 1];
    size_t plen = 0, i = 0;
    int depth = 0, dirfd, fd;
    bool gone = false, keep = false;
    struct stat st;
    child ch;

    for (i = 0; i < len; i++)
        if (t[i] == '/')
            plen = i + 1;

    /* Its folder, opened one component at a time as the walk reaches it:
     * no symlink followed, no skipped folder entered. */
    dirfd = openat(sc->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        set_fatal(sc, mi_status_from_errno(errno));
        mi_bufprintf(sc->errbuf, sizeof(sc->errbuf), "%s: cannot read: %s",
                     sc->root, strerror(errno));
        return;
    }
    for (i = 0; i < plen;) {
        size_t n = (size_t)((const char *)memchr(t + i, '/', plen - i) - (t + i));
        int err;

        memcpy(name, t + i, n);
        name[n] = '\0';
        if (mi_scan_skipped_dir(name) || depth >= MI_MAX_DEPTH) {
            gone = true;
            break;
        }
        fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        err = errno;
        if (fd < 0) {
            if (err == ENOENT || err == ENOTDIR || err == ELOOP) {
                gone = true;
            } else {
                /* As the walk does: what the catalog knows under a
                 * folder that cannot be opened stays. */
                char why[128];

                keep = true;
                memcpy(sc->path, t, i + n + 1);
                mi_bufprintf(why, sizeof(why), "cannot open the folder: %s",
                             strerror(err));
                sc->stats->failed++;
                note_problem(sc, sc->path, i + n + 1, MI_PROBLEM_FOLDER,
                             mi_status_from_errno(err), why);
            }
            break;
        }
        close(dirfd);
        dirfd = fd;
        depth++;
        i += n + 1;
    }
    if (keep) {
        close(dirfd);
        return;
    }

    /* The catalog's rows of the name: "t" itself (up to "t\0", the next
     * path), then "t/" up to "t0" ('0' follows '/'). */
    memcpy(sc->below, t, len);
    sc->below[len] = '/';
    memcpy(sc->above, t, len);
    sc->above[len] = '0';
    sc->ranges[0].lo = t;
    sc->ranges[0].lo_len = len;
    sc->ranges[0].hi = t;           /* t is NUL-terminated */
    sc->ranges[0].hi_len = len + 1;
    sc->ranges[1].lo = sc->below;
    sc->ranges[1].lo_len = len + 1;
    sc->ranges[1].hi = sc->above;
    sc->ranges[1].hi_len = len + 1;
    sc->nranges = 2;
    sc->range_next = 0;
    sc->cat = sc->range;
    sc->cat_done = false;
    cat_next_range(sc);
    cat_step(sc);

    if (!gone) {
        memcpy(name, t + plen, len - plen);
        name[len - plen] = '\0';
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            ch.name = name;
            ch.len = len - plen;
            ch.is_dir = S_ISDIR(st.st_mode);
            memcpy(sc->path, t, plen);
            sc->path[plen] = '\0';
            walk_child(sc, dirfd, &ch, plen, depth);
        } else if (errno != ENOENT && errno != ENOTDIR) {
            keep = true;            /* cannot tell: keep what is known */
        }
    }
    close(dirfd);
    if (!keep && scan_going(sc))
        cat_remove_before(sc, NULL, 0);
    sqlite3_reset(sc->range);
    sc->cat_done = true;
}

/* Copies of the names of `paths` that a limited scan takes, in the walk's
 * order, without those under another one; *all when one of them is ""
 * (everything).  NULL (with *n 0) when there is nothing to scan or no
 * memory (*nomem). */
static char **targets_new(const char *const *paths, size_t npaths,
                          size_t *n, bool *all, bool *nomem)
{
    char **t = NULL;
    size_t i, k = 0;

    *n = 0;
    *all = *nomem = false;
    if (npaths == 0)
        return NULL;
    t = calloc(npaths, sizeof(*t));
    if (!t) {
        *nomem = true;
        return NULL;
    }
    for (i = 0; i < npaths; i++) {
        size_t len;

        if (!paths[i])
            continue;
        len = strlen(paths[i]);
        if (len && paths[i][len - 1] == '/')
            len--;                  /* "folder/" names the folder */
        if (len == 0) {
            *all = true;
            break;
        }
        if (!target_ok(paths[i], len))
            continue;
        t[k] = malloc(len + 1);
        if (!t[k]) {
            *nomem = true;
            break;
        }
        memcpy(t[k], paths[i], len);
        t[k][len] = '\0';
        k++;
    }
    if (*all || *nomem || k == 0) {
        for (i = 0; i < k; i++)
            free(t[i]);
        free(t);
        return NULL;
    }
    qsort(t, k, sizeof(*t), target_cmp);
    /* Keep a name unless the last one kept is it or a folder above it. */
    {
        size_t kept = 0, klen = 0;

        for (i = 0; i < k; i++) {
            if (kept && strncmp(t[i], t[kept - 1], klen) == 0 &&
                (t[i][klen] == '\0' || t[i][klen] == '/')) {
                free(t[i]);
                continue;
            }
            t[kept++] = t[i];
            klen = strlen(t[i]);
        }
        k = kept;
    }
    *n = k;
    return t;
}

/* ---------------------------------------------------------------------- */
/* Entry points                                                            */

/* One scan: of everything when `targets` is NULL, else of those names
 * (from targets_new). */
static mi_status scan_run(mi_index *idx, const mi_scan_options *opts,
                          char *const *targets, size_t ntargets,
                          unsigned int private_flags,
                          mi_scan_stats *stats_out)
{
    mi_scan_stats stats = MI_SCAN_STATS_INIT;
    worker *workers = NULL;
    unsigned int nworkers, i;
    bool all = targets == NULL;
    scan *sc;
    mi_status s;
    int fd;

    s = mi_index_scan_begin(idx);
    if (s != MI_OK)
        return s;
    mi_index_clear_error(idx);

    sc = calloc(1, sizeof(*sc));
    if (!sc) {
        mi_index_scan_end(idx);
        return MI_ENOMEM;
    }
    sc->idx = idx;
    sc->root_fd = mi_index_root_fd(idx);
    sc->root = mi_index_storage_dir(idx);
    sc->root_len = strlen(sc->root);
    sc->flags = opts ? opts->flags : 0;
    sc->thumbs = !(mi_index_flags(idx) & MI_INDEX_NO_THUMBNAILS);
    sc->thumbs_fd = sc->thumbs ? mi_index_thumbs_fd(idx) : -1;
    sc->progress = opts ? opts->progress : NULL;
    sc->payload = opts ? opts->payload : NULL;
    sc->stats = &stats;
    sc->skip_busy = (private_flags & MI_SCAN_SKIP_BUSY) != 0;
    sc->last_progress = now_ns();
    sc->started_ns = mi_wall_ns();
    pthread_mutex_init(&sc->lock, NULL);
    pthread_cond_init(&sc->cv_work, NULL);
    pthread_cond_init(&sc->cv_room, NULL);

    /* The catalog's paths, from a snapshot that the scan's own commits do
     * not disturb. */
    s = mi_index_reader(idx, &sc->reader);
    if (s != MI_OK)
        goto out;
    {
        uint64_t n = 1;     /* when in doubt, clear problems as files pass */
        mi_catalog_count_problems(sc->reader, &n);
        sc->problems = n > 0;
    }
    if (all && sc->thumbs_fd >= 0) {
        struct stat tst;
        int64_t stamp = 0;
        bool found = false;

        if (fstat(sc->thumbs_fd, &tst) == 0)
            sc->thumbs_mtime = ts_ns(&tst.st_mtim);
        if (sc->thumbs_mtime &&
            mi_catalog_meta_get(sc->reader, THUMBS_STAMP, &stamp, &found) ==
                MI_OK) {
            sc->stamp_found = found;
            sc->thumbs_trusted = found && stamp == sc->thumbs_mtime;
        }
    }
    if (all) {
        sc->cat = sc->reader->by_path;
        cat_step(sc);
    } else {
        int rc = sqlite3_prepare_v2(
            sc->reader->db,
            "SELECT path, size, mtime_ns, inode, thumb, hash FROM files "
            "INDEXED BY files_by_path WHERE path >= ?1 AND path < ?2 "
            "ORDER BY path", -1, &sc->range, NULL);

        if (rc != SQLITE_OK) {
            mi_bufprintf(sc->errbuf, sizeof(sc->errbuf), "catalog: %s",
                         sqlite3_errmsg(sc->reader->db));
            set_fatal(sc, MI_EDB);
        }
        sc->cat = sc->range;
        sc->cat_done = true;
    }

    nworkers = mi_index_threads(idx);
    workers = calloc(nworkers, sizeof(*workers));
    if (!workers) {
        s = MI_ENOMEM;
        goto out;
    }
    for (i = 0; i < nworkers && scan_going(sc); i++) {
        workers[i].sc = sc;
        workers[i].started =
            pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) == 0;
    }
    if (scan_going(sc) && !workers[0].started) {
        set_fatal(sc, MI_ENOMEM);
        mi_bufprintf(sc->errbuf, sizeof(sc->errbuf),
                     "cannot start worker threads");
    }

    if (!all) {
        size_t k;

        for (k = 0; k < ntargets && scan_going(sc); k++)
            scan_target(sc, targets[k], strlen(targets[k]));
    } else {
        fd = scan_going(sc) ? openat(sc->root_fd, ".",
                                     O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                            : -1;
        if (fd >= 0) {
            sc->path[0] = '\0';
            walk(sc, fd, 0, 0);
        } else if (scan_going(sc)) {
            set_fatal(sc, mi_status_from_errno(errno));
            mi_bufprintf(sc->errbuf, sizeof(sc->errbuf), "%s: cannot read: %s",
                         sc->root, strerror(errno));
        }
    }

    /* Let the workers finish what they hold, then stop them. */
    drain(sc, true);
    pthread_mutex_lock(&sc->lock);
    sc->stop = true;
    pthread_cond_broadcast(&sc->cv_work);
    pthread_mutex_unlock(&sc->lock);
    for (i = 0; i < nworkers; i++)
        if (workers[i].started)
            pthread_join(workers[i].thread, NULL);
    drain(sc, true);

    /* Whatever the catalog still lists past the last disk path is gone;
     * but a cancelled or failed scan did not see the whole disk (a
     * limited one dropped each name's rows as it went). */
    if (all && scan_going(sc)) {
        cat_remove_before(sc, NULL, 0);
        if (sc->problems && batch_begin(sc)) {
            s = mi_catalog_sweep_problems(sc->writer, sc->started_ns,
                                          sc->errbuf, sizeof(sc->errbuf));
            if (s != MI_OK)
                set_fatal(sc, s);
        }
    }
    if (sc->fatal == MI_OK)
        batch_commit(sc);
    else if (sc->writer) {
        mi_index_writer_abort(idx);
        sc->writer = NULL;
    }
    /* After a complete scan: the thumbnails of contents no longer indexed
     * go (when something went, and once per handle for what a crash or a
     * rebuilt catalog left). */
    if (all && scan_going(sc) && sc->thumbs) {
        bool first = mi_index_take_first_sweep(idx);
        bool clean = sc->thumbs_trusted;   /* nothing left over */

        if ((first && !sc->thumbs_trusted) || stats.removed || stats.changed) {
            bool young;

            clean = mi_thumb_sweep(idx, &stats.thumbs_removed, &young) ==
                        MI_OK && !young;
        }
        /* The perceptual hashes missing (a catalog from before them, a
         * failed fill) and those of contents gone: a read of every row and
         * a write transaction (12 MB of page cache at 100,000 items), not
         * needed when nothing changed since a scan that did it.  A failure
         * costs only the hashes: the next scan tries, untrusted. */
        if (!sc->thumbs_trusted || stats.added || stats.changed ||
            stats.removed)
            clean = mi_phash_fill(idx, NULL) == MI_OK && clean;
        if (sc->fatal == MI_OK)
            keep_stamp(sc, clean);
    }
    if (scan_going(sc))
        progress(sc, true);

    if (sc->fatal != MI_OK)
        s = mi_index_fail(idx, sc->fatal, "scan: %s",
                          sc->errbuf[0] ? sc->errbuf : mi_strerror(sc->fatal));
    else if (sc->cancelled)
        s = mi_index_fail(idx, MI_EABORTED, "scan cancelled by the caller");
    else
        s = MI_OK;

out:
    if (sc->reader) {
        if (sc->range)
            sqlite3_finalize(sc->range);
        sqlite3_reset(sc->reader->by_path);
        mi_index_release(idx, sc->reader);
    }
    free(workers);
    pthread_mutex_destroy(&sc->lock);
    pthread_cond_destroy(&sc->cv_work);
    pthread_cond_destroy(&sc->cv_room);
    free(sc);
    if (stats_out) {
        unsigned int version = stats_out->version;
        *stats_out = stats;
        stats_out->version = version;
    }
    mi_index_scan_end(idx);
    return s;
}

static mi_status check_args(mi_index *idx, const mi_scan_options *opts,
                            const mi_scan_stats *stats_out)
{
    if (opts && (opts->version < 1 || opts->version > MI_SCAN_OPTIONS_VERSION))
        return mi_index_fail(idx, MI_EINVAL, "unknown scan options version %u",
                             opts->version);
    if (stats_out && (stats_out->version < 1 ||
                      stats_out->version > MI_SCAN_STATS_VERSION))
        return mi_index_fail(idx, MI_EINVAL, "unknown scan stats version %u",
                             stats_out->version);
    return MI_OK;
}

mi_status mi_scan(mi_index *idx, const mi_scan_options *opts,
                  mi_scan_stats *stats_out)
{
    mi_status s;

    if (!idx)
        return MI_EINVAL;
    s = check_args(idx, opts, stats_out);
    if (s != MI_OK)
        return s;
    return scan_run(idx, opts, NULL, 0, 0, stats_out);
}

mi_status mi_scan_paths(mi_index *idx, const char *const *paths,
                        size_t npaths, unsigned int private_flags,
                        const mi_scan_options *opts, mi_scan_stats *stats_out)
{
    char **t;
    size_t n = 0, i;
    bool all, nomem;
    mi_status s;

    if (!idx || (npaths && !paths))
        return MI_EINVAL;
    s = check_args(idx, opts, stats_out);
    if (s != MI_OK)
        return s;
    t = targets_new(paths, npaths, &n, &all, &nomem);
    if (nomem)
        return mi_index_fail(idx, MI_ENOMEM, "scan: out of memory");
    if (!all && n == 0) {
        if (stats_out) {
            unsigned int version = stats_out->version;
            *stats_out = (mi_scan_stats)MI_SCAN_STATS_INIT;
            stats_out->version = version;
        }
        return MI_OK;
    }
    s = scan_run(idx, opts, all ? NULL : t, n, private_flags, stats_out);
    for (i = 0; i < n; i++)
        free(t[i]);
    free(t);
    return s;
}
