/*
 * decoder.c - the library's side of mi-decode, its decoder processes.
 *
 * A handle keeps up to `procs` helper processes, each started on first
 * need (posix_spawn: safe in a threaded server) and reused; a thread that
 * needs one while all are busy waits.  A request is one message with the
 * file's descriptor attached; the answer is checked before it is trusted
 * (sizes against the request, the pixel count exact) and read under a
 * wall-clock deadline.  When the helper dies, hangs past the deadline or
 * answers nonsense, it is killed and reaped, the file fails with the
 * reason, and the next request starts a fresh one.  The helper is also
 * replaced after MAX_JOBS requests, which bounds what a slow leak in a
 * decoder library can grow to, and once it has used half its CPU time.
 */
#include "config.h"
#include "mi-private.h"
#include "decoder-proto.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 8
#define MAX_JOBS 1000

extern char **environ;

typedef struct helper {
    pid_t pid;        /* 0: not running */
    int sock;
    unsigned jobs;
    bool busy;
} helper;

struct mi_decoders {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    helper h[MAX_PROCS];
    unsigned procs;
    unsigned timeout_ms;
    uint64_t as_limit;
    char path[PATH_MAX];
    bool found;
};

/* The CPU time process `pid` has used, in seconds (0 when unknown). */
static uint64_t cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long long ut = 0, st = 0;
    const char *p;
    long tick = sysconf(_SC_CLK_TCK);
    ssize_t n;
    int fd;

    mi_bufprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0 || tick <= 0)
        return 0;
    buf[n] = '\0';
    /* After the command's closing parenthesis (field 2): utime and stime
     * are fields 14 and 15 of proc(5), the 12th and 13th from there. */
    p = strrchr(buf, ')');
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                     &ut, &st) != 2)
        return 0;
    return (ut + st) / (unsigned long long)tick;
}

/* Is there an executable helper at `p`? */
static bool usable(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

/* The helper: the option; else next to this library (a build tree, or an
 * executable linked with the static library); else where it is
 * installed; else this build tree's. */
static const char anchor[] = "libmediaindex";

static void find_helper(mi_decoders *d, const char *opt)
{
    Dl_info info;

    d->found = false;
    if (opt && *opt) {
        mi_bufprintf(d->path, sizeof d->path, "%s", opt);
        d->found = usable(d->path);
        return;
    }
    if (dladdr(anchor, &info) && info.dli_fname) {
        char dir[PATH_MAX];
        const char *slash = strrchr(info.dli_fname, '/');
        if (slash && (size_t)(slash - info.dli_fname) < sizeof dir) {
            memcpy(dir, info.dli_fname, (size_t)(slash - info.dli_fname));
            dir[slash - info.dli_fname] = '\0';
            mi_bufprintf(d->path, sizeof d->path, "%s/decoder/mi-decode", dir);
            if ((d->found = usable(d->path)))
                return;
        }
    }
    mi_bufprintf(d->path, sizeof d->path, "%s", MI_DECODER_PATH);
    if ((d->found = usable(d->path)))
        return;
    mi_bufprintf(d->path, sizeof d->path, "%s", MI_DECODER_BUILD_PATH);
    d->found = usable(d->path);
}

mi_status mi_decoders_new(mi_decoders **out, const char *path,
                          unsigned procs, unsigned timeout_ms,
                          uint64_t as_limit)
{
    mi_decoders *d;

    *out = NULL;
    d = calloc(1, sizeof *d);
    if (!d)
        return MI_ENOMEM;
    if (pthread_mutex_init(&d->mu, NULL) != 0) {
        free(d);
        return MI_ENOMEM;
    }
    if (pthread_cond_init(&d->cv, NULL) != 0) {
        pthread_mutex_destroy(&d->mu);
        free(d);
        return MI_ENOMEM;
    }
    d->procs = procs < 1 ? 1 : procs > MAX_PROCS ? MAX_PROCS : procs;
    d->timeout_ms = timeout_ms ? timeout_ms : MI_DECODER_TIMEOUT_DEFAULT_MS;
    d->as_limit = as_limit ? as_limit : MI_DECODER_MEMORY_DEFAULT;
    for (unsigned i = 0; i < MAX_PROCS; i++)
        d->h[i].sock = -1;
    find_helper(d, path);
    *out = d;
    return MI_OK;
}

static void stop(helper *h)
{
    if (h->sock >= 0)
        close(h->sock);
    h->sock = -1;
    if (h->pid > 0) {
        kill(h->pid, SIGKILL);
        while (waitpid(h->pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    h->pid = 0;
    h->jobs = 0;
}

void mi_decoders_free(mi_decoders *d)
{
    if (!d)
        return;
    for (unsigned i = 0; i < MAX_PROCS; i++)
        stop(&d->h[i]);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

const char *mi_decoders_path(const mi_decoders *d)
{
    return d && d->found ? d->path : NULL;
}

static mi_status start(mi_decoders *d, helper *h, char *why, size_t why_len)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    char as[32], *argv[3];
    int sv[2], rc;

    if (!d->found) {
        mi_bufprintf(why, why_len, "the decoder process (mi-decode) is not installed");
        return MI_EUNSUPPORTED;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        mi_bufprintf(why, why_len, "cannot make a socket for the decoder: %s", strerror(errno));
        return mi_status_from_errno(errno);
    }
    /* dup2 onto itself would keep close-on-exec: keep sv[1] off 3. */
    if (sv[1] == 3) {
        int n = fcntl(sv[1], F_DUPFD_CLOEXEC, 4);
        close(sv[1]);
        sv[1] = n;
    }
    mi_bufprintf(as, sizeof as, "%llu", (unsigned long long)d->as_limit);
    argv[0] = d->path;
    argv[1] = as;
    argv[2] = NULL;
    rc = posix_spawn_file_actions_init(&fa);
    if (rc == 0) {
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
        /* Not the caller's signal mask or ignored signals (a server
         * blocks SIGTERM in its threads and ignores SIGPIPE). */
        rc = posix_spawnattr_init(&attr);
        if (rc == 0) {
            sigemptyset(&none);
            sigfillset(&all);
            posix_spawnattr_setsigmask(&attr, &none);
            posix_spawnattr_setsigdefault(&attr, &all);
            posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
                                                POSIX_SPAWN_SETSIGDEF);
            rc = posix_spawn(&h->pid, d->path, &fa, &attr, argv, environ);
            posix_spawnattr_destroy(&attr);
        }
        posix_spawn_file_actions_destroy(&fa);
    }
    close(sv[1]);
    if (rc != 0) {
        close(sv[0]);
        h->pid = 0;
        mi_bufprintf(why, why_len, "cannot start %s: %s", d->path, strerror(rc));
        return mi_status_from_errno(rc);
    }
    h->sock = sv[0];
    h->jobs = 0;
    return MI_OK;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read exactly n bytes before the deadline: 0, or -1 (end of stream or
 * error), or -2 (deadline). */
static int read_by(int sock, void *buf, size_t n, int64_t deadline)
{
    uint8_t *p = buf;

    while (n > 0) {
        struct pollfd pf = { sock, POLLIN, 0 };
        int64_t left = deadline - now_ms();
        ssize_t r;
        int pr;

        if (left <= 0)
            return -2;
        pr = poll(&pf, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0)
            return -2;
        if (pr < 0)
            return -1;
        r = recv(sock, p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static bool send_request(int sock, const mi_dreq *req, int fd)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { (void *)req, sizeof *req };
    struct msghdr msg;
    struct cmsghdr *c;
    ssize_t r;

    memset(&msg, 0, sizeof msg);
    memset(cbuf, 0, sizeof cbuf);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof cbuf;
    c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    do
        r = sendmsg(sock, &msg, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    return r == (ssize_t)sizeof *req;
}

/* How the helper ended, for the reason. */
/* The helper is gone (killed here if it was not): its answer, whatever
 * of it arrived, is void, and `why` says what happened. */
static void death(helper *h, mi_dres *res, char *why, size_t why_len,
                  const char *what)
{
    int st = 0;
    pid_t pid = h->pid;

    memset(res, 0, sizeof *res);

    if (h->sock >= 0)
        close(h->sock);
    h->sock = -1;
    /* It may still be running (nonsense, or the deadline): kill first. */
    kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    h->pid = 0;
    if (WIFSIGNALED(st) && WTERMSIG(st) != SIGKILL)
        mi_bufprintf(why, why_len, "the decoder crashed on this file (signal %d, %s)",
                     WTERMSIG(st), strsignal(WTERMSIG(st)));
    else if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
        /* A sanitizer's report ends this way too. */
        mi_bufprintf(why, why_len, "the decoder crashed on this file (exit status %d)",
                     WEXITSTATUS(st));
    else
        mi_bufprintf(why, why_len, "%s", what);
}

static mi_status exchange(mi_decoders *d, helper *h, int fd, const mi_dreq *req,
                          mi_dres *res, uint8_t **px, mi_budget *budget,
                          uint64_t *reserved, char *why, size_t why_len)
{
    int64_t deadline = now_ms() + d->timeout_ms;
    uint64_t bytes;
    mi_status s;
    int r;

    if (!send_request(h->sock, req, fd) ||
        (r = read_by(h->sock, res, sizeof *res, deadline)) == -1) {
        death(h, res, why, why_len, "the decoder stopped (out of memory or CPU time)");
        return MI_EFORMAT;
    }
    if (r == -2) {
        char what[96];
        mi_bufprintf(what, sizeof what, "the decoder took longer than %u s on this file",
                     d->timeout_ms / 1000);
        death(h, res, why, why_len, what);
        return MI_EFORMAT;
    }
    res->reason[sizeof res->reason - 1] = '\0';
    res->codec[sizeof res->codec - 1] = '\0';
    res->make[sizeof res->make - 1] = '\0';
    res->model[sizeof res->model - 1] = '\0';
    res->content_id[sizeof res->content_id - 1] = '\0';
    if (res->magic != MI_DPROTO_MAGIC || res->w > 2 * req->box ||
        res->h > 2 * req->box || (res->w == 0) != (res->h == 0) ||
        (res->w && req->op != MI_DOP_PIXELS) || res->orientation > 8 ||
        res->status > 0 || res->status < -64) {
        death(h, res, why, why_len, "the decoder answered nonsense");
        return MI_EFORMAT;
    }
    if (res->status != MI_OK) {
        mi_bufprintf(why, why_len, "%s", res->reason);
        return (mi_status)res->status;
    }
    if (res->w == 0)
        return req->op == MI_DOP_PIXELS ? MI_EFORMAT : MI_OK;
    bytes = (uint64_t)res->w * res->h * 4;
    s = mi_budget_acquire(budget, bytes);
    if (s == MI_OK) {
        *px = malloc((size_t)bytes);
        if (!*px) {
            mi_budget_release(budget, bytes);
            s = MI_ENOMEM;
        }
    }
    if (s != MI_OK) {
        /* The pixels are on their way: this helper's stream is lost. */
        death(h, res, why, why_len, "no memory for the decoded pixels");
        return s;
    }
    r = read_by(h->sock, *px, (size_t)bytes, deadline);
    if (r != 0) {
        free(*px);
        *px = NULL;
        mi_budget_release(budget, bytes);
        death(h, res, why, why_len, r == -2 ? "the decoder took too long" : "the decoder stopped");
        return MI_EFORMAT;
    }
    *reserved = bytes;
    return MI_OK;
}

mi_status mi_decoders_run(mi_decoders *d, int fd, const mi_dreq *req,
                          mi_dres *res, uint8_t **px, mi_budget *budget,
                          uint64_t *reserved, char *why, size_t why_len)
{
    helper *h = NULL;
    mi_status s;

    *px = NULL;
    *reserved = 0;
    memset(res, 0, sizeof *res);
    if (why_len)
        why[0] = '\0';
    pthread_mutex_lock(&d->mu);
    for (;;) {
        for (unsigned i = 0; i < d->procs && !h; i++)
            if (!d->h[i].busy)
                h = &d->h[i];
        if (h)
            break;
        pthread_cond_wait(&d->cv, &d->mu);
    }
    h->busy = true;
    pthread_mutex_unlock(&d->mu);

    /* Replaced after MAX_JOBS or half its CPU time; and one that died
     * meanwhile (the kernel's OOM killer) is reaped, not handed this
     * file. */
    if (h->pid) {
        if (waitpid(h->pid, NULL, WNOHANG) == h->pid) {
            h->pid = 0;      /* reaped just now */
            stop(h);
        } else if (h->jobs >= MAX_JOBS ||
                   cpu_seconds(h->pid) >= MI_DECODER_CPU_SECONDS / 2) {
            stop(h);
        }
    }
    s = h->pid ? MI_OK : start(d, h, why, why_len);
    if (s == MI_OK) {
        /* The helper gets the file read-only: a writable descriptor (an
         * upload's temp file) would let a compromised decoder change the
         * bytes after they were hashed. */
        int ro = fd, fl = fcntl(fd, F_GETFL);
        if (fl < 0 || (fl & O_ACCMODE) != O_RDONLY) {
            char proc[64];
            mi_bufprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
            ro = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        }
        if (ro < 0) {
            mi_bufprintf(why, why_len, "cannot reopen the file read-only for the decoder");
            s = MI_EIO;
        } else {
            h->jobs++;
            s = exchange(d, h, ro, req, res, px, budget, reserved, why, why_len);
            if (ro != fd)
                close(ro);
        }
    }

    pthread_mutex_lock(&d->mu);
    h->busy = false;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    return s;
}

/* ---------------------------------------------------------------------- */
/* Which files go to the decoder, and what it says of them                */

static bool family_is(const mi_media_type *t, const char *ext)
{
    return t && strcmp(t->ext, ext) == 0;
}

int mi_decoder_format(const uint8_t *head, size_t n, const mi_media_type *named)
{
    const mi_media_type *t = mi_media_sniff(head, n);
    bool raw_name = named && named->raw;

    if (t) {
        if (t->kind == MI_KIND_VIDEO)
            return MI_DFMT_VIDEO;
        if (t->raw)
            return MI_DFMT_RAW;
        if (family_is(t, "heic") || family_is(t, "avif"))
            return MI_DFMT_HEIF;
        if (family_is(t, "webp"))
            return MI_DFMT_WEBP;
        if (family_is(t, "tif"))
            return raw_name ? MI_DFMT_RAW : MI_DFMT_TIFF;
        return 0;
    }
    /* Bytes we do not know, under a name that says raw or video: the
     * decoder is the judge (raw formats without a magic of their own). */
    if (raw_name)
        return MI_DFMT_RAW;
    if (named && named->kind == MI_KIND_VIDEO)
        return MI_DFMT_VIDEO;
    return 0;
}

bool mi_meta_wants_decoder(int format, const mi_meta *m)
{
    /* HEIF, WebP and TIFF metadata is EXIF's, read in process; the
     * decoder only adds a size EXIF did not give. */
    return format == MI_DFMT_VIDEO || format == MI_DFMT_RAW ||
           (format != 0 && !(m->width && m->height));
}

void mi_meta_add_decoded(mi_meta *m, int format, const struct mi_dres *res)
{
    if (res->magic != MI_DPROTO_MAGIC || !mi_meta_wants_decoder(format, m))
        return;
    if (res->full_w && res->full_h && res->full_w <= 65535 && res->full_h <= 65535) {
        int o = res->orientation ? (int)res->orientation : m->orientation;
        bool turned = o >= 5 && o <= 8;
        m->width = turned ? res->full_h : res->full_w;
        m->height = turned ? res->full_w : res->full_h;
    }
    if (format == MI_DFMT_RAW && res->orientation && !m->orientation)
        m->orientation = (int)res->orientation;
    if ((res->flags & MI_DRES_DATE) && !m->has_date) {
        m->has_date = true;
        m->date = res->date;
        m->date_source = format == MI_DFMT_VIDEO ? MI_DATE_CONTAINER
                                                 : MI_DATE_EXIF_ORIGINAL;
    }
    if ((res->flags & MI_DRES_GPS) && !m->has_gps && res->lat >= -90 &&
        res->lat <= 90 && res->lon >= -180 && res->lon <= 180) {
        m->has_gps = true;
        m->lat = res->lat;
        m->lon = res->lon;
    }
    if (!m->make[0])
        mi_bufprintf(m->make, sizeof m->make, "%s", res->make);
    if (!m->model[0])
        mi_bufprintf(m->model, sizeof m->model, "%s", res->model);
    if (format != MI_DFMT_VIDEO && format != MI_DFMT_RAW)
        return;
    m->duration_ms = res->duration_ms;
    mi_bufprintf(m->codec, sizeof m->codec, "%s", res->codec);
    mi_bufprintf(m->live_id, sizeof m->live_id, "%s", res->content_id);
}

mi_status mi_meta_from_decoder(mi_index *idx, int fd, const mi_media_type *type,
                               mi_meta *m, char *why, size_t why_len)
{
    mi_dreq req = { MI_DPROTO_MAGIC, MI_DOP_META, 0, 0,
                    mi_index_max_pixels(idx) };
    uint8_t head[MI_SNIFF_LEN], *px = NULL;
    uint64_t reserved = 0;
    mi_dres res;
    ssize_t n;
    mi_status s;

    if (why_len)
        why[0] = '\0';
    n = pread(fd, head, sizeof head, 0);
    if (n <= 0)
        return MI_OK;
    req.format = (uint32_t)mi_decoder_format(head, (size_t)n, type);
    if (!mi_meta_wants_decoder((int)req.format, m))
        return MI_OK;
    s = mi_decoders_run(mi_index_decoders(idx), fd, &req, &res, &px, NULL,
                        &reserved, why, why_len);
    free(px);
    if (s == MI_EUNSUPPORTED)
        return MI_OK;      /* no decoder installed: index what EXIF says */
    if (s != MI_OK)
        return s;
    mi_meta_add_decoded(m, (int)req.format, &res);
    return MI_OK;
}
