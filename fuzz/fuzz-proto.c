/*
 * fuzz-proto - mi-decode's side of the decoder protocol (decoder-proto.h,
 * lib/decoder/serve.c) on arbitrary messages, in process, without the
 * sandbox: the request bytes, what rides along with them (a descriptor of
 * some kind, several, or none; the message cut short) and the file.  A
 * thread plays the library: it sends the message over a socketpair and
 * reads the answer while the helper's code writes it, and checks it as
 * decoder.c's exchange() would: a helper that answers nonsense is killed
 * there, so here it is a crash.  Also checks that no descriptor is left
 * open in the helper.
 *
 *   input: [mode] [mi_dreq, or less of it] [file bytes]
 *   mode & 7: 0 a read-only regular file, 1 none, 2 the file writable,
 *             3 a pipe, 4 two descriptors, 5 the file and a socket,
 *             6-7 as 0
 *   mode & 8: cut the request to the bytes there are
 *   mode & 16: the request as it is (no fixing of magic)
 *
 *   fuzz/make-seeds.sh DECODE-SEEDS SEEDS
 *   LSAN_OPTIONS=suppressions=fuzz/lsan.supp \
 *   build-fuzz/fuzz/fuzz-proto -fork=1 -ignore_ooms=1 -ignore_crashes=1 \
 *       -runs=1000000 -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
 *       CORPUS SEEDS
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "decode.h"
#include "mediaindex.h"

/* Decodes in the harness stay small and fast; the helper's own limit is
 * RLIMIT_AS and the library's max_pixels.  (1 MP as in fuzz-decode: at
 * 4 MP a few bytes declaring a big TIFF or HEIF grid cost ~0.2 s each
 * under ASan; the refusal above the limit is the same code either way.) */
#define MAX_PIXELS (1000u * 1000u)

static int ready;

struct parent {
    int sock;
    mi_dreq req;
    size_t req_len;
    int fds[2];
    int nfds;
    int got;            /* 1: an answer came, 0: none */
};

static void recv_all(int sock, void *buf, size_t n)
{
    uint8_t *p = buf;

    while (n > 0) {
        ssize_t r = recv(sock, p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            __builtin_trap();    /* an answer cut short */
        p += r;
        n -= (size_t)r;
    }
}

/* The library: send, then read and check the answer. */
static void *parent_side(void *arg)
{
    struct parent *P = arg;
    char cbuf[CMSG_SPACE(2 * sizeof(int))];
    struct iovec iov = { &P->req, P->req_len };
    struct msghdr msg;
    mi_dres res;
    ssize_t r;

    memset(&msg, 0, sizeof msg);
    memset(cbuf, 0, sizeof cbuf);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (P->nfds > 0) {
        struct cmsghdr *c;
        msg.msg_control = cbuf;
        msg.msg_controllen = CMSG_SPACE((size_t)P->nfds * sizeof(int));
        c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)P->nfds * sizeof(int));
        memcpy(CMSG_DATA(c), P->fds, (size_t)P->nfds * sizeof(int));
    }
    /* (An empty request still carries its descriptors.) */
    if (P->req_len == 0)
        iov.iov_len = 0;
    r = sendmsg(P->sock, &msg, MSG_NOSIGNAL);
    (void)r;
    /* A request cut short: the helper sees the end of the stream. */
    shutdown(P->sock, SHUT_WR);
    r = recv(P->sock, &res, sizeof res, MSG_WAITALL);
    if (r == 0) {
        P->got = 0;
        return NULL;
    }
    if (r != (ssize_t)sizeof res)
        __builtin_trap();
    P->got = 1;
    /* What exchange() accepts. */
    if (res.magic != MI_DPROTO_MAGIC || res.w > 2 * P->req.box ||
        res.h > 2 * P->req.box || (res.w == 0) != (res.h == 0) ||
        (res.w && P->req.op != MI_DOP_PIXELS) || res.orientation > 8 ||
        res.status > 0 || res.status < -64)
        __builtin_trap();
    /* And what thumb.c's decode_helper() believes: the pixels are the
     * whole image, shrunk. */
    if (res.status == MI_OK && res.w &&
        (res.full_w < res.w || res.full_h < res.h || res.full_w > 65535 ||
         res.full_h > 65535))
        __builtin_trap();
    /* Text fields are terminated by the helper, not only by the library. */
    if (!memchr(res.reason, 0, sizeof res.reason) ||
        !memchr(res.codec, 0, sizeof res.codec) ||
        !memchr(res.make, 0, sizeof res.make) ||
        !memchr(res.model, 0, sizeof res.model) ||
        !memchr(res.content_id, 0, sizeof res.content_id))
        __builtin_trap();
    if (res.status == MI_OK && res.w) {
        size_t n = (size_t)res.w * res.h * 4;
        uint8_t *px = malloc(n);
        if (!px)
            __builtin_trap();
        recv_all(P->sock, px, n);
        free(px);
    }
    /* Nothing more may follow the answer. */
    {
        char extra;
        if (recv(P->sock, &extra, 1, MSG_DONTWAIT) > 0)
            __builtin_trap();
    }
    return NULL;
}

/* The descriptors open in the process: the entries of /proc/self/fd (the
 * directory's own descriptor among them, the same each time).  Was a
 * fcntl() on each of 0..1023, twice a run: 2048 system calls, more than
 * the rest of a run that stops at the request. */
static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    if (!d)
        __builtin_trap();
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct parent P;
    pthread_t t;
    int sv[2], file = -1, extra = -1, before, mode;
    size_t take;

    if (!ready) {
        decode_init();
        ready = 1;
    }
    if (size < 1)
        return 0;
    mode = data[0];
    data++;
    size--;
    memset(&P, 0, sizeof P);
    take = size < sizeof P.req ? size : sizeof P.req;
    memcpy(&P.req, data, take);
    P.req_len = (mode & 8) ? take : sizeof P.req;
    if (!(mode & 16))
        P.req.magic = MI_DPROTO_MAGIC;
    if (P.req.max_pixels > MAX_PIXELS)
        P.req.max_pixels = MAX_PIXELS;
    data += take;
    size -= take;

    before = open_fds();
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return 0;
    file = memfd_create("fuzz", MFD_CLOEXEC);
    if (file < 0 || write(file, data, size) != (ssize_t)size)
        goto out;
    {
        /* The library hands over a read-only descriptor. */
        char proc[64];
        int ro;
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", file);
        ro = open(proc, O_RDONLY | O_CLOEXEC);
        if (ro < 0)
            goto out;
        switch (mode & 7) {
        case 1:
            break;
        case 2:
            P.fds[P.nfds++] = file;
            break;
        case 3: {
            int pp[2];
            if (pipe2(pp, O_CLOEXEC) == 0) {
                close(pp[1]);
                extra = pp[0];
                P.fds[P.nfds++] = extra;
            }
            break;
        }
        case 4:
            P.fds[P.nfds++] = ro;
            P.fds[P.nfds++] = ro;
            break;
        case 5:
            P.fds[P.nfds++] = ro;
            P.fds[P.nfds++] = sv[0];
            break;
        default:
            P.fds[P.nfds++] = ro;
            break;
        }
        extra = extra >= 0 ? extra : -1;
        P.sock = sv[0];
        if (pthread_create(&t, NULL, parent_side, &P) != 0) {
            close(ro);
            goto out;
        }
        {
            mi_dreq req;
            int fd;
            if (dserve_receive(sv[1], &req, &fd))
                dserve_handle(sv[1], &req, fd, false);
        }
        /* The helper's end closes as the process would end. */
        close(sv[1]);
        sv[1] = -1;
        pthread_join(t, NULL);
        close(ro);
    }
out:
    if (extra >= 0)
        close(extra);
    if (file >= 0)
        close(file);
    close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    /* Every descriptor the helper received is closed by now. */
    if (open_fds() != before)
        __builtin_trap();
    return 0;
}
