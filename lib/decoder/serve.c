/*
 * serve.c - inside mi-decode: one request from the library's socket, and
 * its answer (decoder-proto.h).  Shared by main.c and fuzz/fuzz-proto.c.
 */
#include "decode.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mediaindex.h"

/* The most descriptors one message may carry that we close unread. */
#define MAX_FDS 8

static bool send_all(int sock, const void *buf, size_t n)
{
    const uint8_t *p = buf;

    while (n > 0) {
        ssize_t r = send(sock, p, n, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

bool dserve_receive(int sock, mi_dreq *req, int *fd)
{
    /* Room for more than the one descriptor a request has: any extra
     * ones are closed, never left open in this process. */
    union {
        char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
        struct cmsghdr align;
    } cbuf;
    struct iovec iov = { req, sizeof *req };
    struct msghdr msg;
    struct cmsghdr *c;
    ssize_t r;

    *fd = -1;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.buf;
    msg.msg_controllen = sizeof cbuf.buf;
    do
        r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return false;
    for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        size_t n;
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
            c->cmsg_len < CMSG_LEN(0))
            continue;
        n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int one;
            memcpy(&one, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (*fd < 0)
                *fd = one;
            else
                close(one);
        }
    }
    if (r != (ssize_t)sizeof *req || req->magic != MI_DPROTO_MAGIC ||
        (msg.msg_flags & MSG_CTRUNC)) {
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        return false;
    }
    return true;
}

static void injected_fault(const dfile *f)
{
    char mark[16];

    if (dfile_pread(f, mark, sizeof mark, 16) != sizeof mark)
        return;
    if (memcmp(mark, "mi-decode:crash!", 16) == 0)
        raise(SIGSEGV);
    if (memcmp(mark, "mi-decode:hang!!", 16) == 0)
        for (;;)
            sched_yield();
}

void dserve_handle(int sock, const mi_dreq *req, int fd, bool faults)
{
    mi_dres res;
    dfile file;
    djob job = { req, &file, &res, NULL };
    struct stat st;

    memset(&res, 0, sizeof res);
    res.magic = MI_DPROTO_MAGIC;
    memset(&file, 0, sizeof file);
    file.fd = fd;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDONLY) {
        djob_fail(&job, MI_EINVAL, "no file came with the request");
    } else if ((req->op != MI_DOP_META && req->op != MI_DOP_PIXELS) ||
               (req->op == MI_DOP_PIXELS &&
                (req->box < 1 || req->box > MI_DREQ_MAX_BOX))) {
        djob_fail(&job, MI_EINVAL, "a request the decoder does not know");
    } else {
        file.size = (uint64_t)st.st_size;
        if (faults)
            injected_fault(&file);
        decode_file(&job);
    }
    if (res.status != MI_OK || req->op != MI_DOP_PIXELS) {
        res.w = res.h = 0;
        res.flags &= ~MI_DRES_ALPHA;
    }
    if (send_all(sock, &res, sizeof res) && res.w)
        send_all(sock, job.px, (size_t)res.w * res.h * 4);
    free(job.px);
    if (file.map)
        munmap((void *)file.map, (size_t)file.size);
    if (fd >= 0)
        close(fd);
}
