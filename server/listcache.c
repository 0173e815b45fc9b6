/*
 * listcache.c - GET /list from a file: the body of the current generation
 * rendered once, kept on disk, sent as a file (see listcache.h).
 *
 * The catalog changes rarely compared with how often clients read the
 * whole list (a phone app asks at every start; at 100,000 items the body
 * is 40 MB and took 120 ms of catalog reads and JSON printing per
 * request).  A thread of its own watches the index's generation; once it
 * has stood still for QUIET_MS, it renders the list into
 * DIR/.mediaindex/cache/list-G.json, and the same bytes through zlib into
 * list-G.json.gz, in the same pass, then renames them into place and
 * deletes the previous generation's.  Memory stays flat: the body goes to
 * disk 64 KiB at a time.
 *
 * A request for the plain /list (no filter, JSON) gets the file only when
 * it is of the generation the index has now; otherwise it is streamed from
 * the catalog as before.  The generation is read before the renderer's
 * cursor takes its snapshot and again after the last entry: a body whose
 * generation moved meanwhile is thrown away, so a file is never older than
 * its name.  A client that accepts gzip gets the .gz file (ETag with -z,
 * Vary: Accept-Encoding).  The same pass counts the entries by month: the
 * body of GET /api/timeline for the whole library, kept in memory (a few
 * dozen bytes a month).
 *
 * The files outlive the server: beside them, list-G.meta holds what made
 * them (this executable's identity and the time zone: the months follow
 * local time) and the timeline.  A server that starts on a library whose
 * generation is still G, made by the same executable in the same zone,
 * takes them as they are, so the first visit after a restart does not
 * wait for a render or a walk of the catalog (6.5 s at 1,000,000 items).
 * Anything else there is removed.
 *
 * On a library that keeps changing (a scan, a stream of uploads) renders
 * would follow one another: after one that took T, the next waits at least
 * REST_FACTOR x T, so that rendering takes a bounded share of a core.
 */
#include "listcache.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>
#include <zlib.h>
#include <cjson/cJSON.h>

#define QUIET_MS 1000          /* the generation stood still this long */
#define POLL_MS 250
#define REST_FACTOR 4          /* after a render of T, rest 4 T */
#define RENDER_NICE 10         /* rendering yields to requests */

struct list_cache {
    mi_index *idx;
    char dir[4096];            /* DIR/.mediaindex/cache */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
    uint64_t gen;              /* of the files in place; 0 none */
    bool have_gz;
    char *timeline;            /* GET /api/timeline of gen, or NULL */
};

/* ---------------------------------------------------------------------- */
/* Rendering                                                               */

struct render {
    struct list_cache *lc;
    int fd, zfd;
    z_stream z;
    bool z_ok;
    unsigned char zbuf[64 << 10];
    uint64_t bytes;
};

static bool write_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

static bool deflate_out(struct render *rd, int flush)
{
    int zrc;

    do {
        rd->z.next_out = rd->zbuf;
        rd->z.avail_out = sizeof(rd->zbuf);
        zrc = deflate(&rd->z, flush);
        if (zrc == Z_STREAM_ERROR)
            return false;
        if (!write_all(rd->zfd, rd->zbuf, sizeof(rd->zbuf) - rd->z.avail_out))
            return false;
    } while (rd->z.avail_out == 0);
    return flush != Z_FINISH || zrc == Z_STREAM_END;
}

static bool stopping(struct list_cache *lc)
{
    bool stop;

    pthread_mutex_lock(&lc->lock);
    stop = lc->stop;
    pthread_mutex_unlock(&lc->lock);
    return stop;
}

static bool render_sink(void *ctx, const char *p, size_t n)
{
    struct render *rd = ctx;

    if (stopping(rd->lc) || !write_all(rd->fd, p, n))
        return false;
    rd->bytes += n;
    if (rd->z_ok) {
        rd->z.next_in = (unsigned char *)(uintptr_t)p;
        rd->z.avail_in = (uInt)n;
        rd->z_ok = deflate_out(rd, Z_NO_FLUSH);
    }
    return true;
}

static void cache_path(const struct list_cache *lc, char *out, size_t cap,
                       uint64_t gen, const char *ext)
{
    snprintf(out, cap, "%s/list-%" PRIu64 ".json%s", lc->dir, gen, ext);
}

/* DIR/.mediaindex/cache/list-G.meta */
static void meta_path(const struct list_cache *lc, char *out, size_t cap,
                      uint64_t gen)
{
    snprintf(out, cap, "%s/list-%" PRIu64 ".meta", lc->dir, gen);
}

/* What made the files, as text: this executable (a rebuilt server may
 * print another format) and the time zone (the timeline's months). */
static void stamp(char *out, size_t cap)
{
    struct stat exe, tz;
    const char *zone = getenv("TZ");

    if (stat("/proc/self/exe", &exe) != 0)
        memset(&exe, 0, sizeof(exe));
    if (stat("/etc/localtime", &tz) != 0)
        memset(&tz, 0, sizeof(tz));
    snprintf(out, cap,
             "media-server list cache 1; exe %ju %jd %jd.%09ld; "
             "TZ=%.200s; localtime %jd %jd.%09ld",
             (uintmax_t)exe.st_ino, (intmax_t)exe.st_size,
             (intmax_t)exe.st_mtim.tv_sec, exe.st_mtim.tv_nsec,
             zone ? zone : "(unset)", (intmax_t)tz.st_size,
             (intmax_t)tz.st_mtim.tv_sec, tz.st_mtim.tv_nsec);
}

/* list-G.meta: the stamp's line, then the timeline.  Written last, so
 * that it names complete files. */
static bool write_meta(struct list_cache *lc, uint64_t gen,
                       const char *timeline)
{
    char tmp[4200], path[4200], st[512];
    int fd;
    bool ok;

    snprintf(tmp, sizeof(tmp), "%s/list.meta.part", lc->dir);
    meta_path(lc, path, sizeof(path), gen);
    stamp(st, sizeof(st));
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return false;
    ok = write_all(fd, st, strlen(st)) && write_all(fd, "\n", 1) &&
         write_all(fd, timeline, strlen(timeline)) && fsync(fd) == 0;
    close(fd);
    if (ok && rename(tmp, path) == 0)
        return true;
    unlink(tmp);
    return false;
}

/* At start: the files of generation gen, if this executable in this zone
 * made them; true when they were taken. */
static bool adopt(struct list_cache *lc, uint64_t gen)
{
    char path[4200], st[512], *buf = NULL, *nl, *timeline;
    struct stat sb;
    ssize_t got;
    bool ok = false;
    int fd;

    cache_path(lc, path, sizeof(path), gen, "");
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return false;
    meta_path(lc, path, sizeof(path), gen);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    /* A timeline is a few dozen bytes a month: 1 MiB is centuries. */
    if (fd < 0 || fstat(fd, &sb) != 0 || sb.st_size <= 0 ||
        sb.st_size > (1 << 20) || !(buf = malloc((size_t)sb.st_size + 1)))
        goto out;
    got = pread(fd, buf, (size_t)sb.st_size, 0);
    if (got != sb.st_size)
        goto out;
    buf[got] = '\0';
    stamp(st, sizeof(st));
    nl = strchr(buf, '\n');
    if (!nl || (size_t)(nl - buf) != strlen(st) ||
        memcmp(buf, st, strlen(st)) != 0)
        goto out;
    nl++;
    timeline = cJSON_malloc(strlen(nl) + 1);   /* freed as render's are */
    if (!timeline)
        goto out;
    memcpy(timeline, nl, strlen(nl) + 1);
    cache_path(lc, path, sizeof(path), gen, ".gz");
    pthread_mutex_lock(&lc->lock);
    lc->gen = gen;
    lc->have_gz = stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
    lc->timeline = timeline;
    pthread_mutex_unlock(&lc->lock);
    ok = true;
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return ok;
}

/* Render generation `gen` into place; true when it was. */
static bool render(struct list_cache *lc, uint64_t gen)
{
    char tmp[4200], ztmp[4200], path[4200], zpath[4200];
    struct render *rd = calloc(1, sizeof(*rd));
    struct months m;
    char *timeline = NULL;
    mi_status s;
    bool ok = false, gz = false;

    if (!rd)
        return false;
    if (!months_init(&m)) {
        free(rd);
        return false;
    }
    rd->lc = lc;
    snprintf(tmp, sizeof(tmp), "%s/list.json.part", lc->dir);
    snprintf(ztmp, sizeof(ztmp), "%s/list.json.gz.part", lc->dir);
    rd->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    rd->zfd = open(ztmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    /* gzip (windowBits 16 + 15): what Content-Encoding: gzip names. */
    rd->z_ok = rd->zfd >= 0 &&
               deflateInit2(&rd->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + 15,
                            8, Z_DEFAULT_STRATEGY) == Z_OK;
    if (rd->fd < 0) {
        fprintf(stderr, "media-server: list cache: cannot write %s: %s\n",
                tmp, strerror(errno));
        goto out;
    }
    s = list_render(lc->idx, render_sink, rd, &m);
    if (s != MI_OK && s != MI_DONE) {
        if (!stopping(lc))
            fprintf(stderr, "media-server: list cache: cannot render: %s\n",
                    mi_strerror(s));
        goto out;
    }
    if (rd->z_ok)
        gz = deflate_out(rd, Z_FINISH);
    /* A commit meanwhile: the body may hold part of it; it is not gen's. */
    if (mi_index_generation(lc->idx) != gen)
        goto out;
    cache_path(lc, path, sizeof(path), gen, "");
    cache_path(lc, zpath, sizeof(zpath), gen, ".gz");
    if (fsync(rd->fd) != 0 || (gz && fsync(rd->zfd) != 0) ||
        rename(tmp, path) != 0) {
        fprintf(stderr, "media-server: list cache: cannot write %s: %s\n",
                path, strerror(errno));
        goto out;
    }
    if (gz && rename(ztmp, zpath) != 0)
        gz = false;
    {
        cJSON *o = months_json(&m);

        timeline = o ? cJSON_PrintUnformatted(o) : NULL;
        cJSON_Delete(o);
    }
    /* Without its meta the files serve this run only. */
    if (timeline)
        (void)write_meta(lc, gen, timeline);
    ok = true;
out:
    if (rd->z_ok || gz)
        deflateEnd(&rd->z);
    if (rd->fd >= 0)
        close(rd->fd);
    if (rd->zfd >= 0)
        close(rd->zfd);
    unlink(tmp);
    unlink(ztmp);
    if (ok) {
        uint64_t old;

        pthread_mutex_lock(&lc->lock);
        old = lc->gen;
        lc->gen = gen;
        lc->have_gz = gz;
        cJSON_free(lc->timeline);
        lc->timeline = timeline;
        timeline = NULL;
        pthread_mutex_unlock(&lc->lock);
        /* A request still sending the old files holds them open. */
        if (old && old != gen) {
            cache_path(lc, path, sizeof(path), old, "");
            unlink(path);
            cache_path(lc, path, sizeof(path), old, ".gz");
            unlink(path);
            meta_path(lc, path, sizeof(path), old);
            unlink(path);
        }
    }
    cJSON_free(timeline);
    months_free(&m);
    free(rd);
    return ok;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits POLL_MS (or until stopped); false once stopped. */
static bool nap(struct list_cache *lc, int64_t ms)
{
    struct timespec until;
    bool stop;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&lc->lock);
    while (!lc->stop &&
           pthread_cond_timedwait(&lc->wake, &lc->lock, &until) == 0)
        ;
    stop = lc->stop;
    pthread_mutex_unlock(&lc->lock);
    return !stop;
}

/* Removes what an earlier run left, but the files of generation keep
 * (0: none) when they were adopted. */
static void clear_dir(struct list_cache *lc, uint64_t keep)
{
    char path[4400], mine[64];
    struct dirent *de;
    DIR *d = opendir(lc->dir);
    size_t n;

    if (!d)
        return;
    n = (size_t)snprintf(mine, sizeof(mine), "list-%" PRIu64 ".", keep);
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "list", 4) != 0 ||
            (keep && strncmp(de->d_name, mine, n) == 0 &&
             (strcmp(de->d_name + n, "json") == 0 ||
              strcmp(de->d_name + n, "json.gz") == 0 ||
              strcmp(de->d_name + n, "meta") == 0)))
            continue;
        snprintf(path, sizeof(path), "%s/%s", lc->dir, de->d_name);
        unlink(path);
    }
    closedir(d);
}

static void *renderer_main(void *arg)
{
    struct list_cache *lc = arg;
    uint64_t seen = mi_index_generation(lc->idx), failed = 0, keep;
    int64_t since = now_ms(), rest_until = 0;

    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), RENDER_NICE);
    /* Here rather than before the server listens: unlinking a 360 MB body
     * (1,000,000 items) took a quarter of a second. */
    pthread_mutex_lock(&lc->lock);
    keep = lc->gen;
    pthread_mutex_unlock(&lc->lock);
    clear_dir(lc, keep);
    while (nap(lc, POLL_MS)) {
        uint64_t g = mi_index_generation(lc->idx), have;
        int64_t t0 = now_ms();

        if (g != seen) {
            seen = g;
            since = t0;
            continue;
        }
        pthread_mutex_lock(&lc->lock);
        have = lc->gen;
        pthread_mutex_unlock(&lc->lock);
        if (have == g || failed == g || t0 - since < QUIET_MS ||
            t0 < rest_until)
            continue;
        if (!render(lc, g))
            failed = g;        /* tried once; the next change tries again */
        rest_until = now_ms() + REST_FACTOR * (now_ms() - t0);
    }
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* The public side                                                         */

struct list_cache *list_cache_start(mi_index *idx, const char *root)
{
    struct list_cache *lc = calloc(1, sizeof(*lc));
    char parent[4200];

    if (!lc)
        return NULL;
    lc->idx = idx;
    snprintf(parent, sizeof(parent), "%s/.mediaindex", root);
    if ((size_t)snprintf(lc->dir, sizeof(lc->dir), "%s/cache", parent) >=
            sizeof(lc->dir) ||
        (mkdir(lc->dir, 0700) != 0 && errno != EEXIST)) {
        fprintf(stderr, "media-server: list cache off: cannot make %s: %s\n",
                lc->dir, strerror(errno));
        free(lc);
        return NULL;
    }
    pthread_mutex_init(&lc->lock, NULL);
    {
        pthread_condattr_t ca;

        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&lc->wake, &ca);
        pthread_condattr_destroy(&ca);
    }
    /* Before the server listens, so that its first answers have them. */
    (void)adopt(lc, mi_index_generation(idx));
    if (pthread_create(&lc->thread, NULL, renderer_main, lc) != 0) {
        fprintf(stderr, "media-server: list cache off: no thread\n");
        pthread_mutex_destroy(&lc->lock);
        pthread_cond_destroy(&lc->wake);
        free(lc);
        return NULL;
    }
    return lc;
}

void list_cache_stop(struct list_cache *lc)
{
    if (!lc)
        return;
    pthread_mutex_lock(&lc->lock);
    lc->stop = true;
    pthread_cond_broadcast(&lc->wake);
    pthread_mutex_unlock(&lc->lock);
    pthread_join(lc->thread, NULL);
    pthread_mutex_destroy(&lc->lock);
    pthread_cond_destroy(&lc->wake);
    cJSON_free(lc->timeline);
    free(lc);
}

char *list_cache_timeline(struct list_cache *lc, uint64_t gen)
{
    char *copy = NULL;

    if (!lc)
        return NULL;
    pthread_mutex_lock(&lc->lock);
    if (lc->gen == gen && lc->timeline)
        copy = strdup(lc->timeline);
    pthread_mutex_unlock(&lc->lock);
    return copy;
}

/* Whether Accept-Encoding takes gzip: the token, without q=0. */
static bool accepts_gzip(const char *h)
{
    while (h && *h) {
        const char *end = strchr(h, ','), *semi;
        size_t len;

        while (*h == ' ' || *h == '\t')
            h++;
        len = end ? (size_t)(end - h) : strlen(h);
        if (len >= 4 && strncasecmp(h, "gzip", 4) == 0 &&
            (len == 4 || h[4] == ';' || h[4] == ' ')) {
            semi = memchr(h, ';', len);
            if (!semi)
                return true;
            while (++semi < h + len && (*semi == ' ' || *semi == '\t'))
                ;
            /* q=0, q=0.0, q=0.000: refused */
            if (semi + 2 <= h + len && (semi[0] == 'q' || semi[0] == 'Q') &&
                semi[1] == '=') {
                const char *v = semi + 2;

                if (*v != '0')
                    return true;
                for (v++; v < h + len && (*v == '.' || *v == '0'); v++)
                    ;
                return v < h + len && *v >= '1' && *v <= '9';
            }
            return true;
        }
        h = end ? end + 1 : NULL;
    }
    return false;
}

bool list_cache_send(struct list_cache *lc, struct req *r)
{
    char path[4200], etag[64];
    uint64_t gen;
    bool gz;
    int fd = -1;

    if (!lc)
        return false;
    gen = mi_index_generation(lc->idx);
    gz = accepts_gzip(mg_get_header(r->conn, "Accept-Encoding"));
    pthread_mutex_lock(&lc->lock);
    if (lc->gen == gen) {
        gz = gz && lc->have_gz;
        cache_path(lc, path, sizeof(path), gen, gz ? ".gz" : "");
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    pthread_mutex_unlock(&lc->lock);
    if (fd < 0)
        return false;
    snprintf(etag, sizeof(etag), "\"g%" PRIu64 "%s\"", gen, gz ? "-z" : "");
    send_file_ex(r, fd, "application/json", etag, "no-cache", false,
                 gz ? "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n"
                    : "Vary: Accept-Encoding\r\n");
    close(fd);
    return true;
}
