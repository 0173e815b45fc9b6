/*
 * watch.c - keep the catalog in step with the storage folder: inotify ->
 * the incremental scan of the paths that changed.
 *
 * Two threads per watcher.  The event thread owns the inotify descriptor
 * and the table of watched folders (wd -> relative path): it reads events
 * as they come, so that the kernel's queue is drained even while a scan
 * runs, and turns each into a path in the pending set.  The scan thread
 * waits until the changes settle (debounce), takes the whole set and runs
 * mi_scan_paths() on it: the scan's own walk and merge, limited to those
 * names.  The pending set is bounded (max_queued); past it, or when the
 * kernel's queue overflowed, every folder is watched again (a moved
 * folder's watches corrected, a gone one's given back) and one scan of
 * everything replaces the set.
 *
 * Folders are watched, not files: one watch per folder.  A file is queued
 * when it is closed after writing or moved in, out or deleted; not when it
 * is created (it is being written), except a hard link or a symlink, which
 * are complete when they appear.  A new folder is watched (and the folders
 * under it) before it is queued, so that what lands in it before its
 * watch exists is found by its scan and what lands after by its events.
 *
 * When inotify cannot be used, or its watches run out, the event thread
 * gives its watches back and ends, and the scan thread scans everything
 * every poll interval.
 */
#include "config.h"
#include "mi-private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/eventfd.h>
#include <sys/inotify.h>
#define HAVE_INOTIFY 1
#endif

#define DEBOUNCE_MS_DEFAULT 300u
#define POLL_S_DEFAULT 60u
#define SETTLE_FACTOR 5          /* a busy folder waits at most 5 debounces */
#define BUSY_RETRY_MS 250        /* another scan runs: try again */
#define FAIL_RETRY_MS 30000      /* a scan failed: everything again then */
#define EVENT_BUF (64 * 1024)

#ifdef HAVE_INOTIFY
#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | \
                    IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | \
                    IN_DONT_FOLLOW | IN_EXCL_UNLINK)
#endif

/* A watched folder. */
typedef struct wdir {
    int wd;                  /* 0: a free slot */
    unsigned int gen;        /* the resync that last saw it */
    char *path;              /* relative, "" for the root, no final "/" */
} wdir;

/* The paths waiting for a scan: a set of strings, open addressing. */
typedef struct pset {
    char **slot;
    size_t cap, n;
} pset;

struct mi_watch {
    mi_index *idx;
    const char *root;        /* mi_index_storage_dir: valid until close */
    size_t root_len;
    int root_fd;
    unsigned int flags, debounce_ms, poll_s, max_folders, max_queued;
    mi_watch_cb callback;
    void *payload;

    /* The event thread's own (mi_watch_start's before it starts). */
    int ifd;                 /* inotify, -1 without */
    int wake;                /* eventfd: wakes the event thread to stop */
    wdir *dirs;
    size_t dirs_cap, ndirs;
    unsigned int gen;
    char *evbuf;             /* EVENT_BUF bytes, aligned by malloc */
    char path[MI_MAX_PATH + 2]; /* add_tree's walk */
    char evpath[MI_MAX_PATH + 2]; /* an event's path */

    pthread_t ev_thread, scan_thread;
    bool ev_started, scan_started;
    atomic_bool stopping;
    atomic_size_t folders;

    /* Under lock. */
    pthread_mutex_t lock;
    pthread_cond_t cv;       /* work for the scan thread, or stop */
    mi_watch_mode mode;
    char reason[256];
    pset pending;
    int64_t first_ms, last_ms; /* first and last change pending */
    int64_t retry_at;        /* pending paths wait until then */
    bool full_due;           /* a scan of everything is due at full_at */
    int64_t full_at;
    int64_t next_poll;
    uint64_t scans, full_scans, overflows;
    mi_status last_status;
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------------- */
/* The pending set                                                         */

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void pset_clear(pset *p)
{
    size_t i;

    for (i = 0; i < p->cap; i++)
        free(p->slot[i]);
    free(p->slot);
    p->slot = NULL;
    p->cap = p->n = 0;
}

/* Put `s` (owned by the set from now on) into slot array `slot` of `cap`
 * (a power of two) unless it is there: false when it was (and s freed). */
static bool pset_place(char **slot, size_t cap, char *s)
{
    size_t i = (size_t)fnv1a(s) & (cap - 1);

    while (slot[i]) {
        if (strcmp(slot[i], s) == 0) {
            free(s);
            return false;
        }
        i = (i + 1) & (cap - 1);
    }
    slot[i] = s;
    return true;
}

/* Add a copy of `s`: MI_OK (also when it was there) or MI_ENOMEM. */
static mi_status pset_add(pset *p, const char *s)
{
    char *copy;

    if ((p->n + 1) * 2 > p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 64, i;
        char **ns = calloc(ncap, sizeof(*ns));

        if (!ns)
            return MI_ENOMEM;
        for (i = 0; i < p->cap; i++)
            if (p->slot[i])
                pset_place(ns, ncap, p->slot[i]);
        free(p->slot);
        p->slot = ns;
        p->cap = ncap;
    }
    copy = strdup(s);
    if (!copy)
        return MI_ENOMEM;
    if (pset_place(p->slot, p->cap, copy))
        p->n++;
    return MI_OK;
}

/* Take every path out (a malloc'd array of *n strings; NULL and 0 when
 * empty), leaving the set empty. */
static char **pset_take(pset *p, size_t *n)
{
    char **out = p->slot;
    size_t i, k = 0;

    *n = 0;
    if (!p->n) {
        pset_clear(p);
        return NULL;
    }
    for (i = 0; i < p->cap; i++)   /* compacted in place */
        if (out[i])
            out[k++] = out[i];
    *n = k;
    p->slot = NULL;
    p->cap = p->n = 0;
    return out;
}

static void paths_free(char **paths, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

/* ---------------------------------------------------------------------- */
/* State shared by the threads (under w->lock)                             */

static void wake_scanner_locked(mi_watch *w)
{
    pthread_cond_broadcast(&w->cv);
}

/* A scan of everything, `delay_ms` from now; the pending paths go. */
static void want_full_locked(mi_watch *w, int64_t delay_ms)
{
    int64_t at = now_ms() + delay_ms;

    pset_clear(&w->pending);
    if (!w->full_due || at < w->full_at)
        w->full_at = at;
    w->full_due = true;
    wake_scanner_locked(w);
}

/* A path changed: queue it (relative, no final "/").  false when the
 * set is full (or memory short): the caller then resyncs, as after the
 * kernel's own overflow. */
static bool queue_path(mi_watch *w, const char *path)
{
    int64_t now = now_ms();
    bool ok = true;

    pthread_mutex_lock(&w->lock);
    if (!w->full_due) {
        bool was_empty = w->pending.n == 0;

        if (w->pending.n >= w->max_queued ||
            pset_add(&w->pending, path) != MI_OK) {
            ok = false;
        } else {
            if (was_empty)
                w->first_ms = now;
            w->last_ms = now;
            if (was_empty)
                wake_scanner_locked(w);
        }
    }
    pthread_mutex_unlock(&w->lock);
    return ok;
}

/* From now on, poll: say why (printf-style), and scan everything now. */
static void set_polling(mi_watch *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_polling(mi_watch *w, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&w->lock);
    w->mode = MI_WATCH_POLLING;
    va_start(ap, fmt);
    if (vsnprintf(w->reason, sizeof(w->reason), fmt, ap) < 0)
        w->reason[0] = '\0';
    va_end(ap);
    w->next_poll = now_ms() + (int64_t)w->poll_s * 1000;
    want_full_locked(w, 0);
    pthread_mutex_unlock(&w->lock);
}

#ifdef HAVE_INOTIFY
/* ---------------------------------------------------------------------- */
/* Network file systems                                                    */

/* The name of a network file system type (statfs f_type), or NULL: there
 * the changes made by other machines are not reported. */
static const char *network_fs(long type)
{
    static const struct { unsigned long magic; const char *name; } fs[] = {
        { 0x6969UL, "nfs" },
        { 0x517BUL, "smb" },
        { 0xFF534D42UL, "cifs" },
        { 0xFE534D42UL, "smb2" },
        { 0x73757245UL, "coda" },
        { 0x5346414FUL, "afs" },
        { 0x6B414653UL, "afs" },
        { 0x00C36400UL, "ceph" },
        { 0x01021997UL, "9p" },
        { 0x0BD00BD0UL, "lustre" },
    };
    size_t i;

    for (i = 0; i < MI_ARRAY_LEN(fs); i++)
        if ((unsigned long)(unsigned int)type == fs[i].magic)
            return fs[i].name;
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* The table of watched folders (event thread)                             */

static size_t wd_slot(int wd, size_t cap)
{
    return ((size_t)(unsigned int)wd * 2654435761u) & (cap - 1);
}

static wdir *dir_find(mi_watch *w, int wd)
{
    size_t i;

    if (!w->dirs_cap || wd <= 0)
        return NULL;
    for (i = wd_slot(wd, w->dirs_cap); w->dirs[i].wd; i = (i + 1) & (w->dirs_cap - 1))
        if (w->dirs[i].wd == wd)
            return &w->dirs[i];
    return NULL;
}

/* Remove the entry `d` (backward-shift deletion keeps probes whole). */
static void dir_remove(mi_watch *w, wdir *d)
{
    size_t cap = w->dirs_cap, i = (size_t)(d - w->dirs), j = i;

    free(d->path);
    for (;;) {
        size_t k;

        w->dirs[i].wd = 0;
        w->dirs[i].path = NULL;
        for (;;) {
            j = (j + 1) & (cap - 1);
            if (!w->dirs[j].wd)
                goto done;
            k = wd_slot(w->dirs[j].wd, cap);
            /* Move j back to i unless its home k lies cyclically in
             * (i, j]. */
            if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
                continue;
            break;
        }
        w->dirs[i] = w->dirs[j];
        i = j;
    }
done:
    w->ndirs--;
    atomic_store(&w->folders, w->ndirs);
}

/* Record wd -> path (a new watch, or one whose folder has moved). */
static mi_status dir_set(mi_watch *w, int wd, const char *path)
{
    wdir *d = dir_find(w, wd);
    char *copy;
    size_t i;

    if (d && strcmp(d->path, path) == 0) {
        d->gen = w->gen;
        return MI_OK;
    }
    copy = strdup(path);
    if (!copy)
        return MI_ENOMEM;
    if (d) {
        free(d->path);
        d->path = copy;
        d->gen = w->gen;
        return MI_OK;
    }
    if ((w->ndirs + 1) * 2 > w->dirs_cap) {
        size_t ncap = w->dirs_cap ? w->dirs_cap * 2 : 64;
        wdir *nd = calloc(ncap, sizeof(*nd));

        if (!nd) {
            free(copy);
            return MI_ENOMEM;
        }
        for (i = 0; i < w->dirs_cap; i++) {
            size_t k;

            if (!w->dirs[i].wd)
                continue;
            for (k = wd_slot(w->dirs[i].wd, ncap); nd[k].wd; k = (k + 1) & (ncap - 1))
                ;
            nd[k] = w->dirs[i];
        }
        free(w->dirs);
        w->dirs = nd;
        w->dirs_cap = ncap;
    }
    for (i = wd_slot(wd, w->dirs_cap); w->dirs[i].wd; i = (i + 1) & (w->dirs_cap - 1))
        ;
    w->dirs[i].wd = wd;
    w->dirs[i].gen = w->gen;
    w->dirs[i].path = copy;
    w->ndirs++;
    atomic_store(&w->folders, w->ndirs);
    return MI_OK;
}

/* Give every watch back and forget them. */
static void dirs_free(mi_watch *w)
{
    size_t i;

    for (i = 0; i < w->dirs_cap; i++)
        free(w->dirs[i].path);
    free(w->dirs);
    w->dirs = NULL;
    w->dirs_cap = w->ndirs = 0;
    atomic_store(&w->folders, 0);
}

/* Stop using inotify: close it (the kernel drops its watches), poll. */
static void inotify_give_up(mi_watch *w)
{
    if (w->ifd >= 0)
        close(w->ifd);
    w->ifd = -1;
    dirs_free(w);
}

static unsigned long read_sysctl(const char *path)
{
    unsigned long v = 0;
    FILE *f = fopen(path, "re");

    if (f) {
        if (fscanf(f, "%lu", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v;
}

/* ---------------------------------------------------------------------- */
/* Watching a tree of folders (event thread)                               */

/* Watch the folder open at `fd` (consumed) whose relative path is
 * w->path[0..len), then the folders in it.  false when the watcher gave
 * inotify up (it then polls). */
static bool add_dir(mi_watch *w, int fd, size_t len, int depth, dev_t pdev)
{
    char abs[PATH_MAX];
    struct dirent *de;
    struct stat st;
    struct statfs sf;
    bool ok = true;
    DIR *dir;
    int wd;

    w->path[len] = '\0';
    if (fstat(fd, &st) != 0) {
        close(fd);
        return true;
    }
    if (st.st_dev != pdev && fstatfs(fd, &sf) == 0 && network_fs((long)sf.f_type)) {
        close(fd);
        inotify_give_up(w);
        set_polling(w, "%s%s is on a network file system (%s), whose changes "
                    "made elsewhere are not reported: polling every %u s",
                    len ? "the folder " : "the storage folder",
                    len ? w->path : "", network_fs((long)sf.f_type), w->poll_s);
        return false;
    }
    if (w->root_len + 1 + len + 1 > sizeof(abs)) {
        close(fd);
        return true;
    }
    memcpy(abs, w->root, w->root_len);
    abs[w->root_len] = '/';
    memcpy(abs + w->root_len + 1, w->path, len + 1);
    if (w->max_folders && w->ndirs >= w->max_folders) {
        wd = -1;
        errno = ENOSPC;
    } else {
        wd = inotify_add_watch(w->ifd, abs, WATCH_MASK);
    }
    if (wd < 0) {
        int err = errno;

        close(fd);
        if (err == ENOENT || err == ENOTDIR || err == EACCES || err == ELOOP)
            return true;    /* gone, or not ours to read: scans say so */
        inotify_give_up(w);
        if (err == ENOSPC)
            set_polling(w, "no inotify watch left for more than %zu folders "
                        "(fs.inotify.max_user_watches is %lu%s): polling "
                        "every %u s", w->ndirs ? w->ndirs : (size_t)w->max_folders,
                        read_sysctl("/proc/sys/fs/inotify/max_user_watches"),
                        w->max_folders ? ", max_folders is set" : "", w->poll_s);
        else
            set_polling(w, "cannot watch %s: %s: polling every %u s",
                        len ? w->path : "the storage folder", strerror(err),
                        w->poll_s);
        return false;
    }
    if (dir_set(w, wd, w->path) != MI_OK) {
        close(fd);
        inotify_give_up(w);
        set_polling(w, "out of memory for the watches: polling every %u s",
                    w->poll_s);
        return false;
    }
    if (depth >= MI_MAX_DEPTH) {
        close(fd);
        return true;
    }

    dir = fdopendir(fd);
    if (!dir) {
        close(fd);
        return true;
    }
    while (ok && !atomic_load(&w->stopping) && (de = readdir(dir)) != NULL) {
        const char *name = de->d_name;
        size_t n = strlen(name);
        int cfd;

        if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))
            continue;
        if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
            continue;
        if (mi_scan_skipped_dir(name) || len + (len > 0) + n + 1 > MI_MAX_PATH)
            continue;
        cfd = openat(dirfd(dir), name,
                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (cfd < 0)
            continue;       /* a file (DT_UNKNOWN), gone, or unreadable */
        if (len)
            w->path[len] = '/';
        memcpy(w->path + len + (len > 0), name, n + 1);
        ok = add_dir(w, cfd, len + (len > 0) + n, depth + 1, st.st_dev);
        w->path[len] = '\0';
    }
    closedir(dir);
    return ok;
}

/* Watch the folder `rel` ("" for the root) and every folder under it. */
static bool add_tree(mi_watch *w, const char *rel)
{
    size_t len = strlen(rel), depth = 0, i;
    struct stat st;
    int fd;

    if (len + 1 > MI_MAX_PATH)
        return true;
    for (i = 0; i < len; i++)
        depth += rel[i] == '/';
    fd = openat(w->root_fd, len ? rel : ".",
                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return true;
    /* The parent's device, for add_dir's check of a mount point. */
    if (len) {
        const char *slash = strrchr(rel, '/');
        char parent[MI_MAX_PATH + 1];

        if (slash) {
            memcpy(parent, rel, (size_t)(slash - rel));
            parent[slash - rel] = '\0';
        } else {
            parent[0] = '.';
            parent[1] = '\0';
        }
        if (fstatat(w->root_fd, parent, &st, 0) != 0)
            st.st_dev = 0;
    } else {
        st.st_dev = 0;      /* the root is always checked */
    }
    memcpy(w->path, rel, len + 1);
    return add_dir(w, fd, len, (int)depth + (len > 0), st.st_dev);
}

/* Stop watching the folder `rel` and those under it (moved away). */
static void forget_tree(mi_watch *w, const char *rel)
{
    size_t len = strlen(rel), i, n = 0;
    int *wds;

    if (!w->ndirs)
        return;
    wds = malloc(w->ndirs * sizeof(*wds));
    if (!wds)
        return;     /* their events name old paths: scanned for nothing */
    for (i = 0; i < w->dirs_cap; i++) {
        const char *p = w->dirs[i].path;

        if (w->dirs[i].wd && strncmp(p, rel, len) == 0 &&
            (p[len] == '\0' || p[len] == '/'))
            wds[n++] = w->dirs[i].wd;
    }
    for (i = 0; i < n; i++) {
        wdir *d = dir_find(w, wds[i]);

        inotify_rm_watch(w->ifd, wds[i]);
        if (d)
            dir_remove(w, d);
    }
    free(wds);
}

/* After lost events (the kernel's queue overflowed) or paths not kept
 * (ours did): watch every folder again (correcting the paths of folders
 * that moved), forget the watches of folders no longer there, and scan
 * everything. */
static bool resync(mi_watch *w)
{
    size_t i;

    w->gen++;
    if (!add_tree(w, ""))
        return false;
    for (i = 0; i < w->dirs_cap;) {
        if (w->dirs[i].wd && w->dirs[i].gen != w->gen) {
            inotify_rm_watch(w->ifd, w->dirs[i].wd);
            dir_remove(w, &w->dirs[i]);
            continue;       /* another entry may have moved into slot i */
        }
        i++;
    }
    pthread_mutex_lock(&w->lock);
    w->overflows++;
    want_full_locked(w, w->debounce_ms);
    pthread_mutex_unlock(&w->lock);
    return true;
}

/* ---------------------------------------------------------------------- */
/* Events (event thread)                                                   */

/* One event; false when the watcher gave inotify up. */
static bool on_event(mi_watch *w, const struct inotify_event *ev)
{
    const char *name = ev->len ? ev->name : "";
    size_t dlen, n;
    wdir *d;

    if (ev->mask & IN_Q_OVERFLOW)
        return resync(w);
    d = dir_find(w, ev->wd);
    if (ev->mask & IN_IGNORED) {
        if (d) {
            bool root = d->path[0] == '\0';

            dir_remove(w, d);
            if (root && !atomic_load(&w->stopping)) {
                inotify_give_up(w);
                set_polling(w, "the storage folder was deleted, moved or "
                            "unmounted: polling every %u s", w->poll_s);
                return false;
            }
        }
        return true;
    }
    if (!d)
        return true;        /* a watch given back: its last events */
    if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) {
        if (d->path[0] == '\0') {
            inotify_give_up(w);
            set_polling(w, "the storage folder was deleted, moved or "
                        "unmounted: polling every %u s", w->poll_s);
            return false;
        }
        if ((ev->mask & IN_UNMOUNT) && !queue_path(w, d->path))
            return resync(w);
        return true;        /* its parent's events tell the rest */
    }
    if (!name[0])
        return true;

    dlen = strlen(d->path);
    n = strlen(name);
    if (dlen + 1 + n + 1 > MI_MAX_PATH)
        return true;        /* too long for a scan to take */
    memcpy(w->evpath, d->path, dlen);
    if (dlen)
        w->evpath[dlen++] = '/';
    memcpy(w->evpath + dlen, name, n + 1);

    if (ev->mask & IN_ISDIR) {
        if (mi_scan_skipped_dir(name))
            return true;
        if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
            /* Watched before it is scanned: nothing falls in between. */
            if (!add_tree(w, w->evpath))
                return false;
        } else if (ev->mask & IN_MOVED_FROM) {
            forget_tree(w, w->evpath);
        } else if (!(ev->mask & IN_DELETE)) {
            return true;
        }
        return queue_path(w, w->evpath) || resync(w);
    }
    if (!mi_media_from_name(name))
        return true;
    if (ev->mask & IN_CREATE) {
        /* Being written (its close will come), unless a hard link or a
         * symlink, complete as they appear. */
        struct stat st;

        if (fstatat(w->root_fd, w->evpath, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !(S_ISLNK(st.st_mode) || (S_ISREG(st.st_mode) && st.st_nlink > 1)))
            return true;
    }
    return queue_path(w, w->evpath) || resync(w);
}

/* Read what the kernel has; false when the watcher gave inotify up. */
static bool read_events(mi_watch *w)
{
    for (;;) {
        ssize_t got = read(w->ifd, w->evbuf, EVENT_BUF);
        size_t off = 0;

        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return true;
            {
                int err = errno;

                inotify_give_up(w);
                set_polling(w, "cannot read inotify events: %s: polling every "
                            "%u s", strerror(err), w->poll_s);
            }
            return false;
        }
        if (got == 0)
            return true;
        while (off + sizeof(struct inotify_event) <= (size_t)got) {
            struct inotify_event ev;
            const struct inotify_event *p =
                (const struct inotify_event *)(void *)(w->evbuf + off);

            memcpy(&ev, p, sizeof(ev));
            if (off + sizeof(ev) + ev.len > (size_t)got)
                break;
            if (!on_event(w, p))
                return false;
            if (atomic_load(&w->stopping))
                return true;
            off += sizeof(ev) + ev.len;
        }
    }
}

static void *events_main(void *arg)
{
    mi_watch *w = arg;
    struct pollfd p[2];

    while (!atomic_load(&w->stopping) && w->ifd >= 0) {
        p[0].fd = w->ifd;
        p[0].events = POLLIN;
        p[1].fd = w->wake;
        p[1].events = POLLIN;
        p[0].revents = p[1].revents = 0;
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            inotify_give_up(w);
            set_polling(w, "cannot wait for inotify events: %s: polling "
                        "every %u s", strerror(errno), w->poll_s);
            break;
        }
        if (atomic_load(&w->stopping))
            break;
        if ((p[0].revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL)) &&
            !read_events(w))
            break;
    }
    return NULL;
}
#endif /* HAVE_INOTIFY */

/* ---------------------------------------------------------------------- */
/* Scans (scan thread)                                                     */

static int scan_progress(const mi_scan_stats *stats, void *payload)
{
    mi_watch *w = payload;

    MI_UNUSED(stats);
    return atomic_load(&w->stopping) ? 1 : 0;
}

/* Wait on w->cv (locked) until `due` (CLOCK_MONOTONIC ms; INT64_MAX:
 * until woken). */
static void wait_until(mi_watch *w, int64_t due)
{
    struct timespec ts;

    if (due == INT64_MAX) {
        pthread_cond_wait(&w->cv, &w->lock);
        return;
    }
    ts.tv_sec = (time_t)(due / 1000);
    ts.tv_nsec = (long)(due % 1000) * 1000000L;
    pthread_cond_timedwait(&w->cv, &w->lock, &ts);
}

static void *scan_main(void *arg)
{
    static const char *const everything[] = { "" };
    mi_watch *w = arg;

    pthread_mutex_lock(&w->lock);
    while (!atomic_load(&w->stopping)) {
        mi_scan_options opts = MI_SCAN_OPTIONS_INIT;
        mi_scan_stats stats = MI_SCAN_STATS_INIT;
        int64_t now = now_ms(), due = INT64_MAX;
        char **paths = NULL;
        size_t n = 0, i;
        bool full = false;
        mi_status s;

        if (w->mode == MI_WATCH_POLLING && !w->full_due && now >= w->next_poll) {
            w->full_due = true;
            w->full_at = now;
        }
        if (w->full_due) {
            if (now >= w->full_at)
                full = true;
            else
                due = w->full_at;
        } else if (w->pending.n) {
            int64_t t = w->last_ms + w->debounce_ms;
            int64_t cap = w->first_ms + (int64_t)w->debounce_ms * SETTLE_FACTOR;

            if (t > cap)
                t = cap;
            if (t < w->retry_at)
                t = w->retry_at;
            if (now >= t)
                paths = pset_take(&w->pending, &n);
            else
                due = t;
        }
        if (!full && !n) {
            if (w->mode == MI_WATCH_POLLING && w->next_poll < due)
                due = w->next_poll;
            wait_until(w, due);
            continue;
        }
        if (full) {
            w->full_due = false;
            pset_clear(&w->pending);
        }
        pthread_mutex_unlock(&w->lock);

        opts.progress = scan_progress;
        opts.payload = w;
        s = mi_scan_paths(w->idx, full ? everything : (const char *const *)paths,
                          full ? 1 : n, MI_SCAN_SKIP_BUSY, &opts, &stats);

        pthread_mutex_lock(&w->lock);
        now = now_ms();
        if (s == MI_EBUSY) {
            /* Another scan runs: ours waits for it. */
            if (full) {
                want_full_locked(w, BUSY_RETRY_MS);
            } else if (!w->full_due) {
                bool was_empty = w->pending.n == 0;

                for (i = 0; i < n && !w->full_due; i++)
                    if (w->pending.n >= w->max_queued ||
                        pset_add(&w->pending, paths[i]) != MI_OK)
                        want_full_locked(w, BUSY_RETRY_MS);
                if (was_empty)
                    w->first_ms = w->last_ms = now;
                w->retry_at = now + BUSY_RETRY_MS;
            }
            paths_free(paths, n);
            continue;
        }
        paths_free(paths, n);
        if (s == MI_EABORTED && atomic_load(&w->stopping))
            break;
        w->scans++;
        w->full_scans += full;
        w->last_status = s;
        if (s != MI_OK)
            want_full_locked(w, FAIL_RETRY_MS);
        if (full && w->mode == MI_WATCH_POLLING)
            w->next_poll = now + (int64_t)w->poll_s * 1000;
        if (w->callback) {
            pthread_mutex_unlock(&w->lock);
            w->callback(w, s, &stats, w->payload);
            pthread_mutex_lock(&w->lock);
        }
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Start, state, stop                                                      */

static void watch_free(mi_watch *w)
{
#ifdef HAVE_INOTIFY
    inotify_give_up(w);
#endif
    if (w->wake >= 0)
        close(w->wake);
    pset_clear(&w->pending);
    free(w->evbuf);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cv);
    free(w);
}

/* Set up inotify and watch every folder; otherwise poll (and say why). */
static void start_inotify(mi_watch *w)
{
#ifdef HAVE_INOTIFY
    struct statfs sf;
    const char *net;

    if (fstatfs(w->root_fd, &sf) == 0 && (net = network_fs((long)sf.f_type))) {
        set_polling(w, "the storage folder is on a network file system (%s), "
                    "whose changes made elsewhere are not reported: polling "
                    "every %u s", net, w->poll_s);
        return;
    }
    w->evbuf = malloc(EVENT_BUF);
    w->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!w->evbuf || w->wake < 0) {
        set_polling(w, "cannot set up inotify: %s: polling every %u s",
                    strerror(w->evbuf ? errno : ENOMEM), w->poll_s);
        return;
    }
    w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->ifd < 0) {
        int err = errno;

        if (err == EMFILE)
            set_polling(w, "no inotify instance left (fs.inotify."
                        "max_user_instances is %lu): polling every %u s",
                        read_sysctl("/proc/sys/fs/inotify/max_user_instances"),
                        w->poll_s);
        else
            set_polling(w, "inotify is not available: %s: polling every %u s",
                        strerror(err), w->poll_s);
        return;
    }
    if (!add_tree(w, ""))
        return;             /* add_tree said why */
    pthread_mutex_lock(&w->lock);
    w->mode = MI_WATCH_INOTIFY;
    pthread_mutex_unlock(&w->lock);
#else
    set_polling(w, "inotify is not available on this system: polling every "
                "%u s", w->poll_s);
#endif
}

mi_status mi_watch_start(mi_watch **out, mi_index *idx,
                         const mi_watch_options *opts)
{
    mi_watch_options o = MI_WATCH_OPTIONS_INIT;
    pthread_condattr_t ca;
    mi_watch *w;
    bool first;

    if (out)
        *out = NULL;
    if (!out || !idx)
        return MI_EINVAL;
    if (opts && (opts->version < 1 || opts->version > MI_WATCH_OPTIONS_VERSION))
        return mi_index_fail(idx, MI_EINVAL, "unknown watch options version %u",
                             opts->version);
    if (opts)
        o = *opts;

    w = calloc(1, sizeof(*w));
    if (!w)
        return MI_ENOMEM;
    w->idx = idx;
    w->root = mi_index_storage_dir(idx);
    w->root_len = strlen(w->root);
    w->root_fd = mi_index_root_fd(idx);
    w->flags = o.flags;
    w->debounce_ms = o.debounce_ms ? o.debounce_ms : DEBOUNCE_MS_DEFAULT;
    w->poll_s = o.poll_interval_s ? o.poll_interval_s : POLL_S_DEFAULT;
    w->max_folders = o.max_folders;
    w->max_queued = o.max_queued ? o.max_queued : MI_WATCH_MAX_QUEUED_DEFAULT;
    w->callback = o.callback;
    w->payload = o.payload;
    w->ifd = w->wake = -1;
    w->mode = MI_WATCH_STOPPED;
    w->last_status = MI_OK;
    atomic_init(&w->stopping, false);
    atomic_init(&w->folders, 0);
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);

    if (w->flags & MI_WATCH_POLL)
        set_polling(w, "polling was asked for: every %u s", w->poll_s);
    else
        start_inotify(w);

    /* set_polling asked for a scan of everything at once; the first one
     * is the caller's to skip. */
    first = !(w->flags & MI_WATCH_NO_FIRST_SCAN);
    pthread_mutex_lock(&w->lock);
    w->full_due = first;
    w->full_at = now_ms();
    if (w->mode == MI_WATCH_POLLING)
        w->next_poll = now_ms() + (int64_t)w->poll_s * 1000;
    pthread_mutex_unlock(&w->lock);

    w->scan_started = pthread_create(&w->scan_thread, NULL, scan_main, w) == 0;
#ifdef HAVE_INOTIFY
    if (w->scan_started && w->ifd >= 0)
        w->ev_started = pthread_create(&w->ev_thread, NULL, events_main, w) == 0;
    if (w->scan_started && w->ifd >= 0 && !w->ev_started) {
        mi_watch_stop(w);
        return mi_index_fail(idx, MI_ENOMEM, "cannot start the watcher's threads");
    }
#endif
    if (!w->scan_started) {
        watch_free(w);
        return mi_index_fail(idx, MI_ENOMEM, "cannot start the watcher's threads");
    }
    *out = w;
    return MI_OK;
}

mi_watch_mode mi_watch_state(mi_watch *w, mi_watch_info *info)
{
    mi_watch_mode mode;

    if (!w) {
        if (info && info->version >= 1) {
            unsigned int version = info->version;

            *info = (mi_watch_info)MI_WATCH_INFO_INIT;
            info->version = version;
        }
        return MI_WATCH_STOPPED;
    }
    pthread_mutex_lock(&w->lock);
    mode = w->mode;
    if (info && info->version >= 1) {
        unsigned int version = info->version;

        info->mode = mode;
        memcpy(info->reason, w->reason, sizeof(info->reason));
        info->folders = atomic_load(&w->folders);
        info->scans = w->scans;
        info->full_scans = w->full_scans;
        info->overflows = w->overflows;
        info->last_status = w->last_status;
        info->version = version;
    }
    pthread_mutex_unlock(&w->lock);
    return mode;
}

void mi_watch_stop(mi_watch *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    atomic_store(&w->stopping, true);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->lock);
#ifdef HAVE_INOTIFY
    if (w->ev_started) {
        uint64_t one = 1;

        if (write(w->wake, &one, sizeof(one)) < 0) {
            /* The counter cannot overflow from one write: never here. */
        }
        pthread_join(w->ev_thread, NULL);
    }
#endif
    if (w->scan_started)
        pthread_join(w->scan_thread, NULL);
    watch_free(w);
}
