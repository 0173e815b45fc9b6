/*
 * mi-decode - the decoder process of libmediaindex.
 *
 * HEIF/AVIF, WebP, TIFF, camera raw and video go through libraries with
 * long lists of memory-safety bugs, on files anybody may upload.  They run
 * here, in a process the library starts (decoder.c) and reuses, so that a
 * decoder that crashes, hangs or runs out of memory costs one file.
 *
 *   mi-decode AS_BYTES       (descriptor 3: the library's socket)
 *
 * Before the first request the process closes every other descriptor,
 * limits its address space to AS_BYTES (RLIMIT_AS), its CPU time
 * (RLIMIT_CPU) and its file writes (RLIMIT_FSIZE 0), and loads a seccomp
 * filter (libseccomp) that allows only what decoding needs: no open, no
 * socket, no exec, no executable memory, no new processes (threads only).
 * A file arrives as a descriptor over the socket and is read with pread
 * or mapped; the answer goes back over the same socket.  The library
 * holds the wall-clock deadline and kills the process when it passes.
 *
 * With MI_DECODE_FAULTS=1 in its environment, a file whose bytes 16..31
 * are "mi-decode:crash!" or "mi-decode:hang!!" makes the process crash or
 * hang: the tests use it to show that both are survived.
 */
#include "decode.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <seccomp.h>

#include "mediaindex.h"

#define SOCK 3

static bool faults;
static pid_t parent;

/* When the library's process is gone (killed while a decode hangs),
 * nobody reads the answer: stop. */
static void *watchdog(void *arg)
{
    (void)arg;
    for (;;) {
        struct timespec ts = { 1, 0 };
        nanosleep(&ts, NULL);
        if (getppid() != parent)
            _exit(1);
    }
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* The sandbox                                                            */

static void limit(int what, rlim_t n)
{
    struct rlimit r = { n, n };
    setrlimit(what, &r);
}

static int sandbox(void)
{
    static const int allowed[] = {
        SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
        SCMP_SYS(pread64), SCMP_SYS(lseek), SCMP_SYS(recvmsg),
        SCMP_SYS(sendmsg), SCMP_SYS(sendto), SCMP_SYS(recvfrom),
        SCMP_SYS(close), SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(fcntl),
        SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(brk), SCMP_SYS(madvise),
        SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(get_robust_list),
        SCMP_SYS(rseq), SCMP_SYS(sched_getaffinity), SCMP_SYS(sched_yield),
        SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getppid),
        SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(gettimeofday),
        SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep), SCMP_SYS(getrandom),
        SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask), SCMP_SYS(sigaltstack),
        SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(prctl),
        SCMP_SYS(sysinfo), SCMP_SYS(getrusage), SCMP_SYS(tgkill),
    };
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    int rc = 0;

    if (!ctx)
        return -1;
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
    /* Memory, never executable. */
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                           SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                           SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    /* Threads (libde265's, libgomp's), never processes.  clone3 passes
     * its flags in memory a filter cannot read: ENOSYS makes glibc fall
     * back to clone. */
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                           SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD,
                                   CLONE_THREAD));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    return rc;
}

int main(int argc, char **argv)
{
    unsigned long long as = argc > 1 ? strtoull(argv[1], NULL, 10) : 0;
    mi_dreq req;
    int fd;

    /* Not PR_SET_PDEATHSIG: that follows the thread that started us (a
     * scan's worker, gone when the scan ends), not the process. */
    parent = getppid();
    if (parent == 1)
        return 1;
    if (fcntl(SOCK, F_GETFD) < 0) {
        fprintf(stderr, "mi-decode: started by libmediaindex only\n");
        return 2;
    }
    close_range(SOCK + 1, ~0u, 0);
    faults = getenv("MI_DECODE_FAULTS") && strcmp(getenv("MI_DECODE_FAULTS"), "1") == 0;
    /* The local time zone, loaded while files can still be opened: libraw
     * makes raw files' dates with mktime(), which under the sandbox could
     * not read TZ's zone file or /etc/localtime and would silently use
     * UTC.  glibc keeps the zone in memory and, as long as TZ does not
     * change, never reads it again.  The library (exif.c) reads EXIF
     * times the same way, in this process's parent's zone: the helper
     * inherits its environment, TZ included. */
    tzset();
    decode_init();
    {
        pthread_t t;
        if (pthread_create(&t, NULL, watchdog, NULL) != 0)
            return 1;
        pthread_detach(t);
    }
#ifndef __SANITIZE_ADDRESS__
    /* (AddressSanitizer reserves terabytes of address space for its
     * shadow: under it, the deadline and seccomp remain.) */
    if (as)
        limit(RLIMIT_AS, (rlim_t)as);
#else
    (void)as;
#endif
    limit(RLIMIT_CPU, MI_DECODER_CPU_SECONDS);
    limit(RLIMIT_FSIZE, 0);
    limit(RLIMIT_CORE, 0);
    limit(RLIMIT_NOFILE, 16);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (sandbox() != 0)
        return 3;
    while (dserve_receive(SOCK, &req, &fd))
        dserve_handle(SOCK, &req, fd, faults);
    return 0;
}
