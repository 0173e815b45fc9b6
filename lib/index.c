/*
 * index.c - the opaque mi_index: open/close, locking, lookup, iteration.
 *
 * Connections: one writer, used under `wlock` by scans (and later uploads),
 * and a pool of readers that lookups and cursors borrow.  In WAL mode a
 * reader keeps its snapshot while the writer commits, so a cursor sees one
 * consistent catalog and never waits for a scan.
 */
#include "config.h"
#include "mi-private.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ERRMSG_LEN 512
#define MAX_IDLE_READERS 8

/* The calling thread's message for one handle (see mi_index_errmsg). */
typedef struct errslot {
    char msg[ERRMSG_LEN];
    struct errslot *next;  /* all slots of the handle, freed on close */
} errslot;

struct mi_index {
    char *root;            /* absolute, resolved storage folder */
    int root_fd;           /* O_DIRECTORY descriptor of root */
    char *db_path;
    unsigned int threads;
    unsigned int flags;    /* MI_INDEX_* */
    uint64_t max_pixels;   /* thumbnail decode cap */
    mi_budget *budget;     /* memory of all decodes at once */
    mi_decoders *decoders; /* mi-decode processes */
    pthread_mutex_t tlock; /* opening thumbs_fd */
    atomic_int thumbs_fd;  /* DIR/.thumbnails, -1 until opened */
    atomic_bool swept;     /* a scan swept the thumbnails folder */
    mi_uploads *uploads;   /* resumable uploads' reservations */
    uint64_t upload_partial_max;
    unsigned int upload_expiry_s;
    unsigned int changes_retention_s;

    pthread_mutex_t slock[16]; /* upload commits, by hash */
    pthread_mutex_t vlock; /* previews being made, and their waiters */
    pthread_cond_t vcv;
    mi_preview_slot *previews;
    pthread_mutex_t wlock; /* the writer connection */
    mi_conn *writer;
    pthread_mutex_t plock; /* the idle reader pool and the errslot list */
    mi_conn *idle;
    unsigned int n_idle;
    errslot *slots;
    pthread_key_t errkey;

    atomic_uint_fast64_t generation;
    /* mi_index_count's last answer and the catalog generation it was
     * read at (under plock): counting distinct hashes reads the whole
     * table, and servers ask on every status request. */
    bool count_valid;
    uint64_t count_gen, count_media, count_files;
    atomic_bool scanning;
    char notice[ERRMSG_LEN]; /* left by open, e.g. a recovered catalog */

    /* No writer (a full or read-only disk): readers read the catalog
     * frozen, writes fail with frozen_status, and a writer is tried again
     * every RETRY_WRITER_S (under wlock). */
    atomic_bool frozen;
    bool frozen_empty;     /* frozen with no catalog file: in memory */
    mi_status frozen_status;
    char frozen_why[ERRMSG_LEN];
    time_t retry_at;
};

#define RETRY_WRITER_S 5

/* ---------------------------------------------------------------------- */
/* Errors                                                                  */

static errslot *my_slot(mi_index *idx, bool create)
{
    errslot *slot = pthread_getspecific(idx->errkey);

    if (slot || !create)
        return slot;
    slot = calloc(1, sizeof(*slot));
    if (!slot)
        return NULL;
    if (pthread_setspecific(idx->errkey, slot) != 0) {
        free(slot);
        return NULL;
    }
    pthread_mutex_lock(&idx->plock);
    slot->next = idx->slots;
    idx->slots = slot;
    pthread_mutex_unlock(&idx->plock);
    return slot;
}

mi_status mi_index_fail(mi_index *idx, mi_status status, const char *fmt, ...)
{
    errslot *slot = my_slot(idx, true);
    va_list ap;

    if (slot) {
        va_start(ap, fmt);
        if (vsnprintf(slot->msg, sizeof(slot->msg), fmt, ap) < 0)
            slot->msg[0] = '\0';
        va_end(ap);
    }
    return status;
}

void mi_index_clear_error(mi_index *idx)
{
    errslot *slot = my_slot(idx, false);

    if (slot)
        slot->msg[0] = '\0';
}

const char *mi_index_errmsg(mi_index *idx)
{
    errslot *slot;

    if (!idx)
        return "";
    slot = my_slot(idx, false);
    if (slot && slot->msg[0])
        return slot->msg;
    return idx->notice;
}

/* ---------------------------------------------------------------------- */
/* Open and close                                                          */

/* Move a broken catalog (and its WAL) aside under a name with the time. */
static mi_status move_aside(const char *db_path, char *moved, size_t movedlen)
{
    static const char *const suffixes[] = { "", "-wal", "-shm" };
    char stamp[32], from[PATH_MAX], to[PATH_MAX];
    struct tm tm;
    time_t now = time(NULL);
    size_t i;

    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    mi_bufprintf(moved, movedlen, "%s.broken-%s", db_path, stamp);
    for (i = 0; i < MI_ARRAY_LEN(suffixes); i++) {
        mi_bufprintf(from, sizeof(from), "%s%s", db_path, suffixes[i]);
        mi_bufprintf(to, sizeof(to), "%s%s", moved, suffixes[i]);
        if (rename(from, to) != 0 && errno != ENOENT)
            return mi_status_from_errno(errno);
    }
    return MI_OK;
}

/* Failures of a writer that a frozen reader may survive: the disk is full
 * or read-only, or the file cannot be written. */
static bool may_freeze(mi_status s)
{
    return s == MI_EIO || s == MI_ENOSPACE || s == MI_EACCES;
}

static mi_status open_catalog(mi_index *idx, char *errbuf, size_t errlen)
{
    char detail[ERRMSG_LEN], moved[PATH_MAX];
    mi_status s;

    s = mi_catalog_open(&idx->writer, idx->db_path, MI_CATALOG_WRITER, detail,
                        sizeof(detail));
    if (may_freeze(s)) {
        /* Serve what the catalog holds rather than nothing. */
        mi_conn *r = NULL;
        char rdetail[ERRMSG_LEN];

        bool empty = false;

        struct stat dbst;

        /* None yet (or the empty file the writer's attempt left): an
         * empty catalog, in memory. */
        if (mi_catalog_open(&r, idx->db_path, MI_CATALOG_FROZEN, rdetail,
                            sizeof(rdetail)) != MI_OK &&
            (stat(idx->db_path, &dbst) != 0 ? errno == ENOENT : dbst.st_size == 0) &&
            mi_catalog_open(&r, NULL, MI_CATALOG_FROZEN, rdetail,
                            sizeof(rdetail)) == MI_OK)
            empty = true;
        if (r) {
            uint64_t gen = 0;

            mi_catalog_get_generation(r, &gen);
            atomic_store(&idx->generation, gen);
            idx->frozen_status = s;
            mi_bufprintf(idx->frozen_why, sizeof(idx->frozen_why), "%s", detail);
            atomic_store(&idx->frozen, true);
            idx->frozen_empty = empty;
            idx->retry_at = time(NULL) + RETRY_WRITER_S;
            idx->idle = r;
            idx->n_idle = 1;
            mi_bufprintf(idx->notice, sizeof(idx->notice),
                         "the catalog cannot be written (%s): serving it "
                         "read-only until it can", detail);
            return MI_OK;
        }
    }
    if (s == MI_EFORMAT) {
        /* The disk is the truth: keep the broken file for whoever wants to
         * look at it, start afresh and let the next scan rebuild. */
        s = move_aside(idx->db_path, moved, sizeof(moved));
        if (s != MI_OK) {
            mi_bufprintf(errbuf, errlen, "%s; and cannot move it aside: %s",
                         detail, mi_strerror(s));
            return s;
        }
        mi_bufprintf(idx->notice, sizeof(idx->notice),
                     "%s; moved it to %s and started a new catalog",
                     detail, moved);
        s = mi_catalog_open(&idx->writer, idx->db_path, MI_CATALOG_WRITER,
                            detail, sizeof(detail));
    }
    if (s != MI_OK) {
        mi_bufprintf(errbuf, errlen, "%s: %s", idx->db_path, detail);
        return s;
    }
    {
        uint64_t gen = 0;
        mi_catalog_get_generation(idx->writer, &gen);
        atomic_store(&idx->generation, gen);
    }
    return MI_OK;
}

static unsigned int online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 64 ? 64 : (unsigned int)n;
}

mi_status mi_index_open(mi_index **out, const char *storage_dir,
                        const mi_index_options *opts,
                        char *errbuf, size_t errbuf_len)
{
    mi_index *idx = NULL;
    char state[PATH_MAX];
    struct stat st;
    mi_status s;

    if (errbuf && errbuf_len)
        errbuf[0] = '\0';
    if (!out)
        return MI_EINVAL;
    *out = NULL;
    if (!storage_dir || !*storage_dir) {
        mi_bufprintf(errbuf, errbuf_len, "no storage folder given");
        return MI_EINVAL;
    }
    if (opts && (opts->version < 1 || opts->version > MI_INDEX_OPTIONS_VERSION)) {
        mi_bufprintf(errbuf, errbuf_len, "unknown options version %u",
                     opts->version);
        return MI_EINVAL;
    }

    idx = calloc(1, sizeof(*idx));
    if (!idx)
        return MI_ENOMEM;
    idx->root_fd = -1;
    for (size_t i = 0; i < MI_ARRAY_LEN(idx->slock); i++)
        pthread_mutex_init(&idx->slock[i], NULL);
    pthread_mutex_init(&idx->wlock, NULL);
    pthread_mutex_init(&idx->vlock, NULL);
    pthread_cond_init(&idx->vcv, NULL);
    pthread_mutex_init(&idx->plock, NULL);
    pthread_mutex_init(&idx->tlock, NULL);
    atomic_store(&idx->thumbs_fd, -1);
    if (pthread_key_create(&idx->errkey, NULL) != 0) {
        pthread_mutex_destroy(&idx->wlock);
        pthread_mutex_destroy(&idx->vlock);
        pthread_cond_destroy(&idx->vcv);
        pthread_mutex_destroy(&idx->plock);
        pthread_mutex_destroy(&idx->tlock);
        free(idx);
        mi_bufprintf(errbuf, errbuf_len, "out of thread-specific keys");
        return MI_ENOMEM;
    }
    idx->threads = opts && opts->threads ? opts->threads : online_cores();
    if (idx->threads > 256)
        idx->threads = 256;
    idx->flags = opts ? opts->flags : 0;
    idx->max_pixels = opts && opts->max_pixels ? opts->max_pixels
                                               : MI_THUMB_MAX_PIXELS_DEFAULT;
    s = mi_budget_new(&idx->budget,
                      opts && opts->version >= 2 && opts->decode_memory
                          ? opts->decode_memory
                          : MI_DECODE_MEMORY_DEFAULT);
    idx->upload_partial_max = opts && opts->version >= 4 &&
                                      opts->upload_partial_max
                                  ? opts->upload_partial_max
                                  : MI_UPLOAD_PARTIAL_MAX_DEFAULT;
    idx->upload_expiry_s = opts && opts->version >= 4 && opts->upload_expiry_s
                               ? opts->upload_expiry_s
                               : MI_UPLOAD_EXPIRY_DEFAULT;
    idx->changes_retention_s = opts && opts->version >= 5 &&
                                       opts->changes_retention_s
                                   ? opts->changes_retention_s
                                   : MI_CHANGES_RETENTION_S;
    if (s == MI_OK)
        s = mi_uploads_new(&idx->uploads);
    if (s == MI_OK) {
        bool v3 = opts && opts->version >= 3;
        unsigned procs = idx->threads < 2 ? idx->threads : 2;
        s = mi_decoders_new(&idx->decoders, v3 ? opts->decoder : NULL, procs,
                            v3 ? opts->decoder_timeout_ms : 0, 0);
    }
    if (s != MI_OK)
        goto fail;

    idx->root = realpath(storage_dir, NULL);
    if (!idx->root) {
        s = mi_status_from_errno(errno);
        mi_bufprintf(errbuf, errbuf_len, "storage folder %s: %s", storage_dir,
                     strerror(errno));
        goto fail;
    }
    if (stat(idx->root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        s = MI_ENOTDIR;
        mi_bufprintf(errbuf, errbuf_len, "storage folder %s: not a directory",
                     storage_dir);
        goto fail;
    }
    idx->root_fd = open(idx->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (idx->root_fd < 0) {
        s = mi_status_from_errno(errno);
        mi_bufprintf(errbuf, errbuf_len, "storage folder %s: %s", storage_dir,
                     strerror(errno));
        goto fail;
    }
    /* A full disk cannot make it: the catalog is then served from memory
     * (open_catalog) until there is room. */
    if (mkdirat(idx->root_fd, ".mediaindex", 0755) != 0 && errno != EEXIST &&
        errno != ENOSPC && errno != EDQUOT) {
        s = mi_status_from_errno(errno);
        mi_bufprintf(errbuf, errbuf_len, "cannot create %s/.mediaindex: %s",
                     idx->root, strerror(errno));
        goto fail;
    }
    mi_bufprintf(state, sizeof(state), "%s/.mediaindex/index.sqlite3", idx->root);
    idx->db_path = strdup(state);
    if (!idx->db_path) {
        s = MI_ENOMEM;
        goto fail;
    }
    s = open_catalog(idx, errbuf, errbuf_len);
    if (s != MI_OK)
        goto fail;
    /* Forget contents long gone from the change feed (once a day); a
     * failure costs only a larger feed. */
    if (idx->writer) {
        mi_catalog_compact_changes(idx->writer, (int64_t)time(NULL),
                                   (int64_t)idx->changes_retention_s);
        /* Settle the trash moves a crash interrupted. */
        mi_trash_recover(idx);
    }
    /* The thumbnails folder; a read-only storage folder still opens (its
     * thumbnails then fail with MI_EIO or MI_EACCES). */
    if (!(idx->flags & MI_INDEX_NO_THUMBNAILS))
        mi_index_thumbs_fd(idx);
    mi_store_cleanup(idx);
    *out = idx;
    return MI_OK;

fail:
    mi_index_close(idx);
    return s;
}

void mi_index_close(mi_index *idx)
{
    mi_conn *c, *next;
    errslot *slot, *snext;

    if (!idx)
        return;
    for (c = idx->idle; c; c = next) {
        next = c->next;
        mi_catalog_close(c);
    }
    mi_catalog_close(idx->writer);
    for (slot = idx->slots; slot; slot = snext) {
        snext = slot->next;
        free(slot);
    }
    pthread_key_delete(idx->errkey);
    for (size_t i = 0; i < MI_ARRAY_LEN(idx->slock); i++)
        pthread_mutex_destroy(&idx->slock[i]);
    pthread_mutex_destroy(&idx->wlock);
    pthread_mutex_destroy(&idx->vlock);
    pthread_cond_destroy(&idx->vcv);
    pthread_mutex_destroy(&idx->plock);
    pthread_mutex_destroy(&idx->tlock);
    if (atomic_load(&idx->thumbs_fd) >= 0)
        close(atomic_load(&idx->thumbs_fd));
    if (idx->root_fd >= 0)
        close(idx->root_fd);
    mi_decoders_free(idx->decoders);
    mi_budget_free(idx->budget);
    mi_uploads_free(idx->uploads);
    free(idx->root);
    free(idx->db_path);
    free(idx);
}

const char *mi_index_storage_dir(const mi_index *idx)
{
    return idx ? idx->root : NULL;
}

int mi_index_root_fd(const mi_index *idx)
{
    return idx->root_fd;
}

unsigned int mi_index_threads(const mi_index *idx)
{
    return idx->threads;
}

unsigned int mi_index_flags(const mi_index *idx)
{
    return idx->flags;
}

uint64_t mi_index_max_pixels(const mi_index *idx)
{
    return idx->max_pixels;
}

mi_uploads *mi_index_uploads(mi_index *idx)
{
    return idx->uploads;
}

uint64_t mi_index_upload_partial_max(const mi_index *idx)
{
    return idx->upload_partial_max;
}

unsigned int mi_index_upload_expiry_s(const mi_index *idx)
{
    return idx->upload_expiry_s;
}

mi_decoders *mi_index_decoders(mi_index *idx)
{
    return idx->decoders;
}

mi_budget *mi_index_budget(mi_index *idx)
{
    return idx->budget;
}

int mi_index_thumbs_fd(mi_index *idx)
{
    int fd = atomic_load(&idx->thumbs_fd);

    if (fd >= 0)
        return fd;
    pthread_mutex_lock(&idx->tlock);
    fd = atomic_load(&idx->thumbs_fd);
    if (fd < 0) {
        if (mkdirat(idx->root_fd, ".thumbnails", 0755) != 0 && errno != EEXIST)
            mi_index_fail(idx, mi_status_from_errno(errno),
                          "cannot create %s/.thumbnails: %s", idx->root,
                          strerror(errno));
        fd = openat(idx->root_fd, ".thumbnails",
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        /* Thumbnails half written by a process that died are never served
         * (not named <hash>.png); a scan's sweep removes them.  Not here:
         * reading the folder (two or three names per item) took 2.2 s of
         * a server's start at 1,000,000 items. */
        if (fd >= 0)
            atomic_store(&idx->thumbs_fd, fd);
    }
    pthread_mutex_unlock(&idx->tlock);
    return fd;
}

bool mi_index_take_first_sweep(mi_index *idx)
{
    bool expected = false;

    return atomic_compare_exchange_strong(&idx->swept, &expected, true);
}

void mi_index_store_lock(mi_index *idx, const uint8_t hash[MI_HASH_SIZE])
{
    pthread_mutex_lock(&idx->slock[hash[0] % MI_ARRAY_LEN(idx->slock)]);
}

void mi_index_store_unlock(mi_index *idx, const uint8_t hash[MI_HASH_SIZE])
{
    pthread_mutex_unlock(&idx->slock[hash[0] % MI_ARRAY_LEN(idx->slock)]);
}

void mi_index_preview_begin(mi_index *idx, mi_preview_slot *slot,
                            const uint8_t hash[MI_HASH_SIZE])
{
    bool busy;

    memcpy(slot->hash, hash, MI_HASH_SIZE);
    pthread_mutex_lock(&idx->vlock);
    do {
        busy = false;
        for (mi_preview_slot *o = idx->previews; o && !busy; o = o->next)
            busy = memcmp(o->hash, hash, MI_HASH_SIZE) == 0;
        if (busy)
            pthread_cond_wait(&idx->vcv, &idx->vlock);
    } while (busy);
    slot->next = idx->previews;
    idx->previews = slot;
    pthread_mutex_unlock(&idx->vlock);
}

void mi_index_preview_end(mi_index *idx, mi_preview_slot *slot)
{
    pthread_mutex_lock(&idx->vlock);
    for (mi_preview_slot **p = &idx->previews; *p; p = &(*p)->next)
        if (*p == slot) {
            *p = slot->next;
            break;
        }
    pthread_cond_broadcast(&idx->vcv);
    pthread_mutex_unlock(&idx->vlock);
}

mi_status mi_index_scan_begin(mi_index *idx)
{
    bool expected = false;

    if (!atomic_compare_exchange_strong(&idx->scanning, &expected, true))
        return mi_index_fail(idx, MI_EBUSY, "a scan is already running");
    return MI_OK;
}

void mi_index_scan_end(mi_index *idx)
{
    atomic_store(&idx->scanning, false);
}

/* ---------------------------------------------------------------------- */
/* Connections                                                             */

mi_status mi_index_reader(mi_index *idx, mi_conn **out)
{
    char detail[ERRMSG_LEN];
    mi_conn *c;
    mi_status s;
    bool empty;

    pthread_mutex_lock(&idx->plock);
    c = idx->idle;
    if (c) {
        idx->idle = c->next;
        idx->n_idle--;
    }
    pthread_mutex_unlock(&idx->plock);
    if (c) {
        *out = c;
        return MI_OK;
    }
    pthread_mutex_lock(&idx->plock);
    empty = atomic_load(&idx->frozen) && idx->frozen_empty;
    pthread_mutex_unlock(&idx->plock);
    s = mi_catalog_open(&c, empty ? NULL : idx->db_path,
                        atomic_load(&idx->frozen) ? MI_CATALOG_FROZEN
                                                  : MI_CATALOG_READER,
                        detail, sizeof(detail));
    if (s != MI_OK) {
        *out = NULL;
        return mi_index_fail(idx, s, "%s", detail);
    }
    *out = c;
    return MI_OK;
}

void mi_index_release(mi_index *idx, mi_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&idx->plock);
    /* A frozen reader never sees new commits: not kept once writable. */
    if (idx->n_idle < MAX_IDLE_READERS &&
        c->frozen == atomic_load(&idx->frozen)) {
        c->next = idx->idle;
        idx->idle = c;
        idx->n_idle++;
        c = NULL;
    }
    pthread_mutex_unlock(&idx->plock);
    mi_catalog_close(c);
}

mi_status mi_index_each_row(mi_index *idx, const char *sql, const char *what,
                            mi_status (*row)(sqlite3_stmt *st, void *payload),
                            void *payload)
{
    sqlite3_stmt *st = NULL;
    mi_conn *c;
    mi_status s;
    int rc;

    s = mi_index_reader(idx, &c);
    if (s != MI_OK)
        return s;
    rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    for (; rc == SQLITE_ROW && s == MI_OK; rc = sqlite3_step(st))
        s = row(st, payload);
    if (s == MI_OK && rc != SQLITE_DONE)
        s = mi_index_fail(idx, MI_EDB, "catalog: %s: %s", what,
                          sqlite3_errmsg(c->db));
    sqlite3_finalize(st);
    mi_index_release(idx, c);
    return s;
}

/* Under wlock: a writer, opening one again (at most every RETRY_WRITER_S)
 * when the catalog was frozen.  Once there is one, the frozen readers
 * go. */
static bool writer_ready(mi_index *idx)
{
    char detail[ERRMSG_LEN];
    mi_conn *w = NULL, *c, *next;
    mi_status s;

    if (idx->writer)
        return true;
    if (time(NULL) < idx->retry_at)
        return false;
    /* A folder first opened on a full disk may have no .mediaindex/. */
    mkdirat(idx->root_fd, ".mediaindex", 0755);
    s = mi_catalog_open(&w, idx->db_path, MI_CATALOG_WRITER, detail,
                        sizeof(detail));
    if (s != MI_OK) {
        idx->retry_at = time(NULL) + RETRY_WRITER_S;
        pthread_mutex_lock(&idx->plock);
        idx->frozen_status = s;
        mi_bufprintf(idx->frozen_why, sizeof(idx->frozen_why), "%s", detail);
        pthread_mutex_unlock(&idx->plock);
        return false;
    }
    idx->writer = w;
    pthread_mutex_lock(&idx->plock);
    atomic_store(&idx->frozen, false);
    idx->frozen_empty = false;
    c = idx->idle;
    idx->idle = NULL;
    idx->n_idle = 0;
    idx->notice[0] = '\0';
    pthread_mutex_unlock(&idx->plock);
    for (; c; c = next) {
        next = c->next;
        mi_catalog_close(c);
    }
    return true;
}

mi_conn *mi_index_writer_lock(mi_index *idx)
{
    pthread_mutex_lock(&idx->wlock);
    if (writer_ready(idx))
        return idx->writer;
    pthread_mutex_unlock(&idx->wlock);
    return NULL;
}

mi_status mi_index_writer_error(mi_index *idx, char *errbuf, size_t errlen)
{
    mi_status s;

    pthread_mutex_lock(&idx->plock);
    s = idx->frozen_status != MI_OK ? idx->frozen_status : MI_EIO;
    mi_bufprintf(errbuf, errlen, "%s: the catalog is read-only: %s",
                 mi_strerror(s), idx->frozen_why);
    pthread_mutex_unlock(&idx->plock);
    return s;
}

mi_status mi_index_writable(mi_index *idx, char *why, size_t why_len)
{
    mi_status s = MI_OK;

    if (why && why_len)
        why[0] = '\0';
    if (!idx)
        return MI_EINVAL;
    if (!atomic_load(&idx->frozen))
        return MI_OK;       /* no lock: a scan may hold it for a batch */
    pthread_mutex_lock(&idx->wlock);
    if (!writer_ready(idx))
        s = mi_index_writer_error(idx, why, why_len);
    pthread_mutex_unlock(&idx->wlock);
    return s;
}

mi_status mi_index_writer_commit(mi_index *idx, bool changed,
                                 char *errbuf, size_t errlen)
{
    uint64_t gen = 0;
    mi_status s = MI_OK;

    if (changed)
        s = mi_catalog_bump_generation(idx->writer, &gen, errbuf, errlen);
    if (s == MI_OK)
        s = mi_catalog_commit(idx->writer, errbuf, errlen);
    else
        mi_catalog_rollback(idx->writer);
    if (s == MI_OK && changed)
        atomic_store(&idx->generation, gen);
    pthread_mutex_unlock(&idx->wlock);
    return s;
}

void mi_index_writer_abort(mi_index *idx)
{
    mi_catalog_rollback(idx->writer);
    pthread_mutex_unlock(&idx->wlock);
}

uint64_t mi_index_generation(mi_index *idx)
{
    uint64_t gen;
    mi_conn *c;

    if (!idx)
        return 0;
    /* From the catalog, so that another handle's commits count too; the
     * last value this handle knew if the catalog cannot be read. */
    if (mi_index_reader(idx, &c) == MI_OK) {
        if (mi_catalog_get_generation(c, &gen) == MI_OK)
            atomic_store(&idx->generation, gen);
        mi_index_release(idx, c);
    }
    return atomic_load(&idx->generation);
}

mi_status mi_index_dates(mi_index *idx, uint64_t *generation,
                         int (*fn)(void *ctx, int64_t date), void *ctx)
{
    uint64_t gen = 0;
    mi_conn *c;
    mi_status s;

    if (generation)
        *generation = 0;
    if (!idx || !fn)
        return MI_EINVAL;
    s = mi_index_reader(idx, &c);
    if (s != MI_OK)
        return s;
    /* One snapshot for the generation and the dates. */
    if (sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        s = mi_index_fail(idx, MI_EDB, "dates: %s", sqlite3_errmsg(c->db));
        mi_index_release(idx, c);
        return s;
    }
    s = mi_catalog_get_generation(c, &gen);
    if (s == MI_OK)
        s = mi_catalog_dates(c, fn, ctx);
    if (s == MI_EDB)
        mi_index_fail(idx, s, "dates: %s", sqlite3_errmsg(c->db));
    sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    mi_index_release(idx, c);
    if (generation && (s == MI_OK || s == MI_DONE))
        *generation = gen;
    return s;
}

mi_status mi_index_count(mi_index *idx, uint64_t *media, uint64_t *files)
{
    uint64_t gen, m = 0, f = 0;
    mi_conn *c;
    mi_status s;
    bool hit;

    if (media)
        *media = 0;
    if (files)
        *files = 0;
    if (!idx)
        return MI_EINVAL;
    /* Keyed by the generation stored in the catalog (another handle's
     * commits change it too), read before counting: a commit in between
     * leaves an old key, so the next call counts again. */
    s = mi_index_reader(idx, &c);
    if (s != MI_OK)
        return s;
    s = mi_catalog_get_generation(c, &gen);
    pthread_mutex_lock(&idx->plock);
    hit = s == MI_OK && idx->count_valid && idx->count_gen == gen;
    m = idx->count_media;
    f = idx->count_files;
    pthread_mutex_unlock(&idx->plock);
    if (!hit) {
        s = mi_catalog_count(c, &m, &f);
        if (s != MI_OK) {
            mi_index_fail(idx, s, "counting: %s", sqlite3_errmsg(c->db));
            mi_index_release(idx, c);
            return s;
        }
        pthread_mutex_lock(&idx->plock);
        idx->count_valid = true;
        idx->count_gen = gen;
        idx->count_media = m;
        idx->count_files = f;
        pthread_mutex_unlock(&idx->plock);
    }
    mi_index_release(idx, c);
    if (media)
        *media = m;
    if (files)
        *files = f;
    return MI_OK;
}

/* ---------------------------------------------------------------------- */
/* Entries                                                                 */

struct mi_entry {
    uint8_t hash[MI_HASH_SIZE];
    int64_t trashed_at;     /* a trash cursor's entries only */
    char hex[MI_HASH_HEX_LEN + 1];
    uint64_t size;
    int64_t mtime_ns, ctime_ns, date;
    mi_date_source date_source;
    mi_kind kind;
    uint32_t width, height;
    int orientation;
    bool has_gps;
    double lat, lon;
    uint32_t place;         /* mi_place_at(lat, lon); 0: none */

    /* Strings live in one buffer, reused by a cursor from row to row:
     * offsets are kept while it grows, pointers made at the end. */
    char *buf;
    size_t len, cap;
    size_t off_path, off_filename, off_mime, off_make, off_model;
    size_t off_codec, off_live;
    bool has_make, has_model, has_codec, has_live;
    uint32_t duration_ms;
    size_t *dup_off;
    const char **dups;
    size_t ndups, dup_cap;
    bool has_thumb;
    char thumb[sizeof(".thumbnails/.png") + MI_HASH_HEX_LEN];
};

static mi_status buf_add(mi_entry *e, const void *data, size_t n, size_t *off)
{
    if (n > SIZE_MAX / 2 - e->len - 1)
        return MI_ETOOBIG;
    if (e->len + n + 1 > e->cap) {
        size_t cap = e->cap ? e->cap : 256;
        char *p;

        while (cap < e->len + n + 1)
            cap *= 2;
        p = realloc(e->buf, cap);
        if (!p)
            return MI_ENOMEM;
        e->buf = p;
        e->cap = cap;
    }
    *off = e->len;
    if (n)
        memcpy(e->buf + e->len, data, n);
    e->buf[e->len + n] = '\0';
    e->len += n + 1;
    return MI_OK;
}

static mi_status buf_add_column(mi_entry *e, sqlite3_stmt *st, int col,
                                size_t *off, bool *present)
{
    const void *p;
    int n;

    if (present)
        *present = sqlite3_column_type(st, col) != SQLITE_NULL;
    p = sqlite3_column_blob(st, col);
    n = sqlite3_column_bytes(st, col);
    return buf_add(e, p, p ? (size_t)n : 0, off);
}

/* Fill `e` from the current row: its main path and fields. */
static mi_status entry_from_row(mi_entry *e, sqlite3_stmt *st)
{
    const void *hash = sqlite3_column_blob(st, 0);
    const char *path, *slash;
    mi_status s;

    if (!hash || sqlite3_column_bytes(st, 0) != MI_HASH_SIZE)
        return MI_EFORMAT;
    memcpy(e->hash, hash, MI_HASH_SIZE);
    mi_hash_to_hex(e->hex, e->hash);
    e->len = 0;
    e->ndups = 0;
    e->trashed_at = 0;

    s = buf_add_column(e, st, 1, &e->off_path, NULL);
    if (s == MI_OK) {
        path = e->buf + e->off_path;
        slash = strrchr(path, '/');
        e->off_filename = e->off_path + (slash ? (size_t)(slash + 1 - path) : 0);
        s = buf_add_column(e, st, 5, &e->off_mime, NULL);
    }
    if (s == MI_OK)
        s = buf_add_column(e, st, 14, &e->off_make, &e->has_make);
    if (s == MI_OK)
        s = buf_add_column(e, st, 15, &e->off_model, &e->has_model);
    if (s == MI_OK)
        s = buf_add_column(e, st, 18, &e->off_codec, &e->has_codec);
    if (s == MI_OK)
        s = buf_add_column(e, st, 19, &e->off_live, &e->has_live);
    if (s != MI_OK)
        return s;

    e->size = (uint64_t)sqlite3_column_int64(st, 2);
    e->mtime_ns = sqlite3_column_int64(st, 3);
    e->ctime_ns = sqlite3_column_int64(st, 4);
    e->kind = sqlite3_column_int(st, 6) == MI_KIND_VIDEO ? MI_KIND_VIDEO
                                                         : MI_KIND_IMAGE;
    if (sqlite3_column_type(st, 7) != SQLITE_NULL) {
        e->date = sqlite3_column_int64(st, 7);
        e->date_source = (mi_date_source)sqlite3_column_int(st, 8);
    } else {
        e->date = mi_ns_to_s_floor(e->ctime_ns);
        e->date_source = MI_DATE_CTIME;
    }
    e->width = (uint32_t)sqlite3_column_int64(st, 9);
    e->height = (uint32_t)sqlite3_column_int64(st, 10);
    e->orientation = sqlite3_column_int(st, 11);
    e->has_gps = sqlite3_column_type(st, 12) != SQLITE_NULL &&
                 sqlite3_column_type(st, 13) != SQLITE_NULL;
    e->lat = e->has_gps ? sqlite3_column_double(st, 12) : 0.0;
    e->lon = e->has_gps ? sqlite3_column_double(st, 13) : 0.0;
    e->duration_ms = (uint32_t)sqlite3_column_int64(st, 17);
    e->place = (uint32_t)sqlite3_column_int64(st, 20);
    e->has_thumb = sqlite3_column_int(st, 16) == MI_THUMB_OK;
    if (e->has_thumb)
        mi_bufprintf(e->thumb, sizeof(e->thumb), ".thumbnails/%s.png", e->hex);
    return MI_OK;
}

/* Add the path of the current row as another path of the same content. */
static mi_status entry_add_dup(mi_entry *e, sqlite3_stmt *st)
{
    size_t off;
    mi_status s;

    if (e->ndups == e->dup_cap) {
        size_t cap = e->dup_cap ? e->dup_cap * 2 : 4;
        size_t *p = realloc(e->dup_off, cap * sizeof(*p));

        if (!p)
            return MI_ENOMEM;
        e->dup_off = p;
        e->dup_cap = cap;
    }
    s = buf_add_column(e, st, 1, &off, NULL);
    if (s == MI_OK)
        e->dup_off[e->ndups++] = off;
    return s;
}

/* Make the pointers of the dup list once the buffer has stopped moving. */
static mi_status entry_finish(mi_entry *e)
{
    size_t i;

    if (e->ndups) {
        const char **p = realloc(e->dups, e->ndups * sizeof(*p));

        if (!p)
            return MI_ENOMEM;
        e->dups = p;
        for (i = 0; i < e->ndups; i++)
            e->dups[i] = e->buf + e->dup_off[i];
    }
    return MI_OK;
}

void mi_entry_free(mi_entry *e)
{
    if (!e)
        return;
    free(e->buf);
    free(e->dup_off);
    free(e->dups);
    free(e);
}

mi_status mi_lookup(mi_entry **out, mi_index *idx,
                    const uint8_t hash[MI_HASH_SIZE])
{
    mi_entry *e = NULL;
    mi_conn *c;
    mi_status s;
    int rc;

    if (!out)
        return MI_EINVAL;
    *out = NULL;
    if (!idx || !hash)
        return MI_EINVAL;
    s = mi_index_reader(idx, &c);
    if (s != MI_OK)
        return s;

    sqlite3_bind_blob(c->lookup, 1, hash, MI_HASH_SIZE, SQLITE_STATIC);
    rc = sqlite3_step(c->lookup);
    if (rc == SQLITE_DONE) {
        char hex[MI_HASH_HEX_LEN + 1];
        mi_hash_to_hex(hex, hash);
        s = mi_index_fail(idx, MI_ENOTFOUND, "no media with hash %s", hex);
        goto out;
    }
    e = calloc(1, sizeof(*e));
    if (!e) {
        s = MI_ENOMEM;
        goto out;
    }
    s = rc == SQLITE_ROW ? entry_from_row(e, c->lookup) : MI_EDB;
    while (s == MI_OK && (rc = sqlite3_step(c->lookup)) == SQLITE_ROW)
        s = entry_add_dup(e, c->lookup);
    if (s == MI_OK && rc != SQLITE_DONE)
        s = MI_EDB;
    if (s == MI_OK)
        s = entry_finish(e);
    if (s != MI_OK)
        mi_index_fail(idx, s, "lookup: %s", sqlite3_errmsg(c->db));
out:
    sqlite3_reset(c->lookup);
    sqlite3_clear_bindings(c->lookup);
    mi_index_release(idx, c);
    if (s != MI_OK) {
        mi_entry_free(e);
        return s;
    }
    *out = e;
    return MI_OK;
}

/* The lookup statement's rows of one hash, in path order, read only as
 * far as the first that counts. */
mi_status mi_index_has(char *path, size_t path_size, mi_index *idx,
                       const uint8_t hash[MI_HASH_SIZE], unsigned int flags)
{
    mi_status s = MI_ENOTFOUND;
    mi_conn *c;
    int rc;

    if (path && path_size)
        path[0] = '\0';
    if (!idx || !hash || (path && !path_size) || (flags & ~MI_HAS_ON_DISK))
        return MI_EINVAL;
    s = mi_index_reader(idx, &c);
    if (s != MI_OK)
        return s;
    s = MI_ENOTFOUND;
    sqlite3_bind_blob(c->lookup, 1, hash, MI_HASH_SIZE, SQLITE_STATIC);
    while ((rc = sqlite3_step(c->lookup)) == SQLITE_ROW) {
        const char *p = sqlite3_column_blob(c->lookup, 1);
        int n = sqlite3_column_bytes(c->lookup, 1);
        char rel[MI_MAX_PATH + 1];

        if (!p || n <= 0 || n > MI_MAX_PATH)
            continue;
        memcpy(rel, p, (size_t)n);
        rel[n] = '\0';
        if (flags & MI_HAS_ON_DISK) {
            /* As an upload's de-duplication judges: the catalog may be
             * behind the disk. */
            struct stat sb;

            if (memchr(rel, '\0', (size_t)n) ||
                fstatat(idx->root_fd, rel, &sb, 0) != 0 ||
                !S_ISREG(sb.st_mode) ||
                (uint64_t)sb.st_size !=
                    (uint64_t)sqlite3_column_int64(c->lookup, 2))
                continue;
        }
        s = MI_OK;
        if (path) {
            if ((size_t)n < path_size)
                memcpy(path, rel, (size_t)n + 1);
            else
                s = mi_index_fail(idx, MI_ETOOBIG,
                                  "a path of %d bytes does not fit in %zu",
                                  n, path_size);
        }
        break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        s = mi_index_fail(idx, MI_EDB, "lookup: %s", sqlite3_errmsg(c->db));
    sqlite3_reset(c->lookup);
    sqlite3_clear_bindings(c->lookup);
    mi_index_release(idx, c);
    return s;
}

/* ---------------------------------------------------------------------- */
/* Cursors                                                                 */

struct mi_cursor {
    mi_index *idx;
    mi_conn *conn;
    sqlite3_stmt *st;       /* conn->all, or a statement of its own */
    bool own_st;
    bool trash;             /* own_st grouped like conn->all: the trash */
    mi_entry entry;
    bool started, has_row, pending, done;
};

mi_status mi_cursor_new(mi_cursor **out, mi_index *idx)
{
    return mi_cursor_new_with(out, idx, NULL);
}

/* A new cursor on a reader connection of its own. */
static mi_status cursor_alloc(mi_cursor **out, mi_index *idx)
{
    mi_cursor *c = calloc(1, sizeof(*c));
    mi_status s;

    *out = NULL;
    if (!c)
        return MI_ENOMEM;
    c->idx = idx;
    s = mi_index_reader(idx, &c->conn);
    if (s != MI_OK) {
        free(c);
        return s;
    }
    *out = c;
    return MI_OK;
}

static mi_status cursor_query(mi_query *q, const mi_cursor_options *opts,
                              mi_index *idx);
static mi_status cursor_with(mi_cursor **out, mi_index *idx,
                             const mi_cursor_options *opts, const mi_query *q);

mi_status mi_cursor_new_with(mi_cursor **out, mi_index *idx,
                             const mi_cursor_options *opts)
{
    mi_status s;

    if (!out)
        return MI_EINVAL;
    *out = NULL;
    if (!idx)
        return MI_EINVAL;
    if (opts && (opts->version < 1 || opts->version > MI_CURSOR_OPTIONS_VERSION ||
                 (opts->flags & ~(MI_CURSOR_NEWEST_FIRST | MI_CURSOR_DATE_RANGE))))
        return mi_index_fail(idx, MI_EINVAL, "invalid cursor options");
    if (opts && opts->version >= 2 &&
        (opts->query || opts->place || opts->city || opts->country)) {
        mi_query *q = malloc(sizeof(*q));

        if (!q)
            return MI_ENOMEM;
        s = cursor_query(q, opts, idx);
        if (s == MI_OK)
            s = cursor_with(out, idx, opts, q);
        mi_query_free(q);
        free(q);
        return s;
    }
    return cursor_with(out, idx, opts, NULL);
}

/* The query of a cursor's version 2 options. */
static mi_status cursor_query(mi_query *q, const mi_cursor_options *opts,
                              mi_index *idx)
{
    char err[512];
    mi_place_runs *r;
    mi_status s;

    s = mi_query_parse(q, opts->query, err, sizeof(err));
    if (s != MI_OK)
        return mi_index_fail(idx, s, "%s", err);
    if (!opts->place && !opts->city && !opts->country)
        return MI_OK;
    if (!(r = malloc(sizeof(*r)))) {
        mi_query_free(q);
        return MI_ENOMEM;
    }
    if (opts->place)
        s = mi_place_match(r, opts->place, NULL,
                           MI_PLACE_CITY | MI_PLACE_REGION | MI_PLACE_COUNTRY);
    if (s == MI_OK && opts->place)
        s = mi_query_places(q, r);
    if (s == MI_OK && opts->city)
        s = mi_place_match(r, opts->city, opts->country, MI_PLACE_CITY);
    else if (s == MI_OK && opts->country)
        s = mi_place_match(r, opts->country, NULL, MI_PLACE_COUNTRY);
    if (s == MI_OK && (opts->city || opts->country))
        s = mi_query_places(q, r);
    free(r);
    if (s != MI_OK) {
        mi_query_free(q);
        return mi_index_fail(idx, s, "search: the place names too many places");
    }
    return MI_OK;
}

static mi_status cursor_with(mi_cursor **out, mi_index *idx,
                             const mi_cursor_options *opts, const mi_query *q)
{
    mi_cursor *c;
    mi_status s;

    if ((s = cursor_alloc(&c, idx)) != MI_OK)
        return s;
    c->st = c->conn->all;
    if ((opts && opts->flags) || q) {
        s = mi_catalog_query(c->conn, &c->st, opts, q);
        if (s != MI_OK) {
            mi_index_fail(idx, s, "cursor: %s", sqlite3_errmsg(c->conn->db));
            mi_index_release(idx, c->conn);
            free(c);
            return s;
        }
        c->own_st = true;
    }
    *out = c;
    return MI_OK;
}

/* A sorted or filtered cursor's statement gives one primary row per
 * content; the other paths, when there are any, come from the lookup
 * statement, in the same read transaction. */
static mi_status cursor_next_primary(mi_cursor *c)
{
    sqlite3_stmt *look = c->conn->lookup;
    mi_status s;
    int rc = sqlite3_step(c->st);

    if (rc == SQLITE_DONE) {
        c->done = true;
        return MI_DONE;
    }
    if (rc != SQLITE_ROW)
        goto db_fail;
    s = entry_from_row(&c->entry, c->st);
    if (s == MI_OK && sqlite3_column_int(c->st, MI_CATALOG_ROW_COLUMNS)) {
        sqlite3_bind_blob(look, 1, c->entry.hash, MI_HASH_SIZE, SQLITE_STATIC);
        rc = sqlite3_step(look);              /* the primary row itself */
        while (s == MI_OK && rc == SQLITE_ROW &&
               (rc = sqlite3_step(look)) == SQLITE_ROW)
            s = entry_add_dup(&c->entry, look);
        sqlite3_reset(look);
        sqlite3_clear_bindings(look);
        if (s == MI_OK && rc != SQLITE_DONE)
            goto db_fail;
    }
    if (s == MI_OK)
        s = entry_finish(&c->entry);
    if (s != MI_OK)
        return mi_index_fail(c->idx, s, "cursor: %s", mi_strerror(s));
    c->has_row = true;
    return MI_ROW;

db_fail:
    c->done = true;
    return mi_index_fail(c->idx, MI_EDB, "cursor: %s",
                         sqlite3_errmsg(c->conn->db));
}

/*
 * The statement walks rows grouped by hash, primary path first; an entry is
 * the first row of a hash plus the paths of the following rows with the
 * same hash.  So the cursor reads one row ahead: `pending` means the
 * statement stands on the first row of the next entry.
 */
mi_status mi_cursor_next(mi_cursor *c)
{
    sqlite3_stmt *st;
    mi_status s;
    int rc;

    if (!c)
        return MI_EINVAL;
    c->has_row = false;
    if (c->done)
        return MI_DONE;
    if (c->own_st && !c->trash)
        return cursor_next_primary(c);
    st = c->st;
    if (!c->pending) {
        rc = sqlite3_step(st);
        c->started = true;
        if (rc == SQLITE_DONE) {
            c->done = true;
            return MI_DONE;
        }
        if (rc != SQLITE_ROW)
            goto db_fail;
    }
    s = entry_from_row(&c->entry, st);
    if (c->trash)
        c->entry.trashed_at = sqlite3_column_int64(st, MI_CATALOG_ROW_COLUMNS);
    c->pending = false;
    while (s == MI_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const void *h = sqlite3_column_blob(st, 0);
        if (!h || sqlite3_column_bytes(st, 0) != MI_HASH_SIZE ||
            memcmp(h, c->entry.hash, MI_HASH_SIZE) != 0) {
            c->pending = true;
            break;
        }
        s = entry_add_dup(&c->entry, st);
    }
    if (s != MI_OK)
        return mi_index_fail(c->idx, s, "cursor: %s", mi_strerror(s));
    if (!c->pending) {
        if (rc != SQLITE_DONE)
            goto db_fail;
        c->done = true;
    }
    s = entry_finish(&c->entry);
    if (s != MI_OK)
        return s;
    c->has_row = true;
    return MI_ROW;

db_fail:
    c->done = true;
    return mi_index_fail(c->idx, MI_EDB, "cursor: %s",
                         sqlite3_errmsg(c->conn->db));
}

mi_status mi_trash_cursor(mi_cursor **out, mi_index *idx)
{
    mi_cursor *c;
    mi_status s;

    if (!out)
        return MI_EINVAL;
    *out = NULL;
    if (!idx)
        return MI_EINVAL;
    if ((s = cursor_alloc(&c, idx)) != MI_OK)
        return s;
    if ((s = mi_catalog_trash_query(c->conn, &c->st)) != MI_OK) {
        mi_index_fail(idx, s, "trash: %s", sqlite3_errmsg(c->conn->db));
        mi_index_release(idx, c->conn);
        free(c);
        return s;
    }
    c->own_st = c->trash = true;
    *out = c;
    return MI_OK;
}

const mi_entry *mi_cursor_entry(const mi_cursor *c)
{
    return c && c->has_row ? &c->entry : NULL;
}

void mi_cursor_free(mi_cursor *c)
{
    if (!c)
        return;
    if (c->own_st)
        sqlite3_finalize(c->st);
    else
        sqlite3_reset(c->st);
    mi_index_release(c->idx, c->conn);
    free(c->entry.buf);
    free(c->entry.dup_off);
    free(c->entry.dups);
    free(c);
}

/* ---------------------------------------------------------------------- */
/* Getters                                                                 */

const uint8_t *mi_entry_hash(const mi_entry *e) { return e ? e->hash : NULL; }
int64_t mi_entry_trashed_at(const mi_entry *e) { return e ? e->trashed_at : 0; }
const char *mi_entry_hash_hex(const mi_entry *e) { return e ? e->hex : NULL; }
const char *mi_entry_filename(const mi_entry *e)
{
    return e ? e->buf + e->off_filename : NULL;
}
const char *mi_entry_path(const mi_entry *e)
{
    return e ? e->buf + e->off_path : NULL;
}
uint64_t mi_entry_size(const mi_entry *e) { return e ? e->size : 0; }
int64_t mi_entry_mtime_ns(const mi_entry *e) { return e ? e->mtime_ns : 0; }
int64_t mi_entry_ctime_ns(const mi_entry *e) { return e ? e->ctime_ns : 0; }
int64_t mi_entry_creation_date(const mi_entry *e) { return e ? e->date : 0; }
mi_date_source mi_entry_creation_source(const mi_entry *e)
{
    return e ? e->date_source : MI_DATE_CTIME;
}
mi_kind mi_entry_kind(const mi_entry *e) { return e ? e->kind : MI_KIND_IMAGE; }
const char *mi_entry_mime_type(const mi_entry *e)
{
    return e ? e->buf + e->off_mime : NULL;
}
uint32_t mi_entry_width(const mi_entry *e) { return e ? e->width : 0; }
uint32_t mi_entry_height(const mi_entry *e) { return e ? e->height : 0; }
int mi_entry_orientation(const mi_entry *e) { return e ? e->orientation : 0; }

int mi_entry_gps(const mi_entry *e, double *lat, double *lon)
{
    if (!e || !e->has_gps)
        return 0;
    if (lat)
        *lat = e->lat;
    if (lon)
        *lon = e->lon;
    return 1;
}

uint32_t mi_entry_place(const mi_entry *e)
{
    return e ? e->place : 0;
}

const char *mi_entry_make(const mi_entry *e)
{
    return e && e->has_make ? e->buf + e->off_make : NULL;
}
const char *mi_entry_model(const mi_entry *e)
{
    return e && e->has_model ? e->buf + e->off_model : NULL;
}
uint32_t mi_entry_duration_ms(const mi_entry *e)
{
    return e ? e->duration_ms : 0;
}
const char *mi_entry_codec(const mi_entry *e)
{
    return e && e->has_codec ? e->buf + e->off_codec : NULL;
}
const char *mi_entry_live_id(const mi_entry *e)
{
    return e && e->has_live ? e->buf + e->off_live : NULL;
}
const char *mi_entry_thumbnail(const mi_entry *e)
{
    return e && e->has_thumb ? e->thumb : NULL;
}
size_t mi_entry_dup_count(const mi_entry *e) { return e ? e->ndups : 0; }
const char *mi_entry_dup_path(const mi_entry *e, size_t i)
{
    return e && i < e->ndups ? e->dups[i] : NULL;
}

/* ---------------------------------------------------------------------- */
/* Changes                                                                 */

struct mi_changes {
    mi_index *idx;
    mi_conn *conn;
    sqlite3_stmt *st, *look;
    uint64_t head, seq, token;
    size_t limit, n;
    bool has_entry, done;
    char hex[MI_HASH_HEX_LEN + 1];
    mi_entry entry;
};

mi_status mi_index_change_token(mi_index *idx, uint64_t *token)
{
    uint64_t floor;
    mi_conn *c;
    mi_status s;

    if (!token)
        return MI_EINVAL;
    *token = 0;
    if (!idx)
        return MI_EINVAL;
    s = mi_index_reader(idx, &c);
    if (s != MI_OK)
        return s;
    s = mi_catalog_change_bounds(c, token, &floor);
    mi_index_release(idx, c);
    /* A catalog without a feed: 0, which every request answers with a
     * reset. */
    return s == MI_ERESET ? MI_OK : s;
}

mi_status mi_changes_new(mi_changes **out, mi_index *idx, uint64_t since,
                         size_t limit)
{
    mi_changes *ch;
    uint64_t floor = 0;
    mi_status s;
    int rc;

    if (!out)
        return MI_EINVAL;
    *out = NULL;
    if (!idx)
        return MI_EINVAL;
    ch = calloc(1, sizeof(*ch));
    if (!ch)
        return MI_ENOMEM;
    ch->idx = idx;
    ch->limit = limit;
    s = mi_index_reader(idx, &ch->conn);
    if (s != MI_OK) {
        free(ch);
        return s;
    }
    /* One snapshot for the bounds, the page and each content's rows. */
    rc = sqlite3_exec(ch->conn->db, "BEGIN", NULL, NULL, NULL);
    s = rc == SQLITE_OK ? mi_catalog_change_bounds(ch->conn, &ch->head, &floor)
                        : MI_EDB;
    if (s == MI_OK && (since == 0 || since < floor || since > ch->head))
        s = MI_ERESET;
    if (s == MI_OK)
        s = mi_catalog_changes_query(ch->conn, &ch->st, &ch->look);
    if (s != MI_OK) {
        if (s == MI_ERESET)
            mi_index_fail(idx, s, "change token %" PRIu64 ": read everything "
                          "again (the feed holds %" PRIu64 " to %" PRIu64 ")",
                          since, floor, ch->head);
        else
            mi_index_fail(idx, s, "changes: %s", sqlite3_errmsg(ch->conn->db));
        mi_changes_free(ch);
        return s;
    }
    sqlite3_bind_int64(ch->st, 1, (sqlite3_int64)since);
    ch->token = since;
    *out = ch;
    return MI_OK;
}

mi_status mi_changes_next(mi_changes *ch)
{
    sqlite3_stmt *look;
    const void *h;
    uint64_t seq;
    mi_status s;
    int rc;

    if (!ch)
        return MI_EINVAL;
    ch->has_entry = false;
    if (ch->done)
        return MI_DONE;
    if (ch->limit && ch->n == ch->limit) {
        /* A full page: the token stays at its last row, and more is
         * said. */
        ch->done = true;
        return MI_DONE;
    }
    look = ch->look;
    for (;;) {
        bool found = false, later = false;

        rc = sqlite3_step(ch->st);
        if (rc == SQLITE_DONE) {
            /* A page that was not full saw everything up to the head. */
            ch->done = true;
            ch->token = ch->head;
            return MI_DONE;
        }
        h = rc == SQLITE_ROW ? sqlite3_column_blob(ch->st, 1) : NULL;
        if (!h || sqlite3_column_bytes(ch->st, 1) != MI_HASH_SIZE) {
            ch->done = true;
            return mi_index_fail(ch->idx, MI_EDB, "changes: %s",
                                 sqlite3_errmsg(ch->conn->db));
        }
        seq = (uint64_t)sqlite3_column_int64(ch->st, 0);
        s = MI_OK;
        sqlite3_bind_blob(look, 1, h, MI_HASH_SIZE, SQLITE_TRANSIENT);
        while (s == MI_OK && (rc = sqlite3_step(look)) == SQLITE_ROW) {
            later = later || (uint64_t)sqlite3_column_int64(
                                 look, MI_CATALOG_ROW_COLUMNS) > seq;
            s = found ? entry_add_dup(&ch->entry, look)
                      : entry_from_row(&ch->entry, look);
            found = true;
        }
        if (s == MI_OK && found)
            s = entry_finish(&ch->entry);
        sqlite3_reset(look);
        sqlite3_clear_bindings(look);
        if (s == MI_OK && rc != SQLITE_DONE)
            s = MI_EDB;
        if (s != MI_OK) {
            ch->done = true;
            return mi_index_fail(ch->idx, s, "changes: %s", mi_strerror(s));
        }
        /* A content with a file changed later is given there, once. */
        if (!later) {
            ch->has_entry = found;
            break;
        }
    }
    ch->seq = seq;
    ch->token = seq;
    ch->n++;
    mi_hash_to_hex(ch->hex, h);
    return MI_ROW;
}

const char *mi_changes_hash_hex(const mi_changes *ch)
{
    return ch ? ch->hex : NULL;
}

uint64_t mi_changes_seq(const mi_changes *ch)
{
    return ch ? ch->seq : 0;
}

const mi_entry *mi_changes_entry(const mi_changes *ch)
{
    return ch && ch->has_entry ? &ch->entry : NULL;
}

uint64_t mi_changes_token(const mi_changes *ch)
{
    return ch ? ch->token : 0;
}

int mi_changes_more(const mi_changes *ch)
{
    return ch && ch->done && ch->limit && ch->n == ch->limit;
}

void mi_changes_free(mi_changes *ch)
{
    if (!ch)
        return;
    sqlite3_finalize(ch->st);
    sqlite3_finalize(ch->look);
    if (ch->conn) {
        sqlite3_exec(ch->conn->db, "COMMIT", NULL, NULL, NULL);
        mi_index_release(ch->idx, ch->conn);
    }
    free(ch->entry.buf);
    free(ch->entry.dup_off);
    free(ch->entry.dups);
    free(ch);
}

/* ---------------------------------------------------------------------- */
/* Places in the library                                                   */

struct mi_places {
    mi_index *idx;
    mi_conn *conn;
    sqlite3_stmt *st;
    uint32_t place;
    uint64_t count;
    char cover[MI_HASH_HEX_LEN + 1];
};

mi_status mi_places_new(mi_places **out, mi_index *idx)
{
    /* Contents by their primary path, as in a cursor; the cover is the
     * newest (a bare column beside max() comes from max()'s row). */
    static const char sql[] =
        "SELECT place, count(*), hash,"
        " max(coalesce(date, ctime_ns / 1000000000))"
        " FROM files WHERE place IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM files AS o"
        "  WHERE o.hash = files.hash AND o.path < files.path)"
        " GROUP BY place ORDER BY place";
    mi_places *p;
    mi_status s;

    if (!out)
        return MI_EINVAL;
    *out = NULL;
    if (!idx)
        return MI_EINVAL;
    if (!(p = calloc(1, sizeof(*p))))
        return MI_ENOMEM;
    p->idx = idx;
    if ((s = mi_index_reader(idx, &p->conn)) != MI_OK) {
        free(p);
        return s;
    }
    if (sqlite3_prepare_v2(p->conn->db, sql, -1, &p->st, NULL) != SQLITE_OK) {
        s = mi_index_fail(idx, MI_EDB, "places: %s",
                          sqlite3_errmsg(p->conn->db));
        mi_places_free(p);
        return s;
    }
    *out = p;
    return MI_OK;
}

mi_status mi_places_next(mi_places *p)
{
    int rc;

    if (!p)
        return MI_EINVAL;
    rc = sqlite3_step(p->st);
    if (rc == SQLITE_DONE)
        return MI_DONE;
    if (rc != SQLITE_ROW)
        return mi_index_fail(p->idx, MI_EDB, "places: %s",
                             sqlite3_errmsg(p->conn->db));
    p->place = (uint32_t)sqlite3_column_int64(p->st, 0);
    p->count = (uint64_t)sqlite3_column_int64(p->st, 1);
    if (sqlite3_column_bytes(p->st, 2) == MI_HASH_SIZE)
        mi_hash_to_hex(p->cover, sqlite3_column_blob(p->st, 2));
    else
        p->cover[0] = 0;
    return MI_ROW;
}

uint32_t mi_places_place(const mi_places *p)
{
    return p ? p->place : 0;
}

uint64_t mi_places_count(const mi_places *p)
{
    return p ? p->count : 0;
}

const char *mi_places_cover_hex(const mi_places *p)
{
    return p ? p->cover : NULL;
}

void mi_places_free(mi_places *p)
{
    if (!p)
        return;
    sqlite3_finalize(p->st);
    if (p->conn)
        mi_index_release(p->idx, p->conn);
    free(p);
}
