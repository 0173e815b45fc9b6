/*
 * util.c - small helpers shared by the modules.
 */
#include "config.h"
#include "mi-private.h"

#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

const char *mi_version(void)
{
    return MI_VERSION_STRING;
}

const char *mi_strerror(int status)
{
    switch (status) {
#define MI__STATUS_CASE(name, value, message) \
    case MI_##name:                           \
        return message;
        MI_STATUS_MAP(MI__STATUS_CASE)
#undef MI__STATUS_CASE
    }
    return "unknown status";
}

mi_status mi_grow(void **v, size_t *cap, size_t n, size_t elem, size_t first,
                  size_t max)
{
    size_t ncap;
    void *p;

    if (n < *cap)
        return MI_OK;
    ncap = *cap ? *cap * 2 : first;
    if (ncap > max)
        ncap = max;
    if (ncap <= n || ncap > SIZE_MAX / elem)
        return MI_ETOOBIG;
    p = realloc(*v, ncap * elem);
    if (!p)
        return MI_ENOMEM;
    *v = p;
    *cap = ncap;
    return MI_OK;
}

void mi_bufprintf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;

    if (!buf || len == 0)
        return;
    va_start(ap, fmt);
    if (vsnprintf(buf, len, fmt, ap) < 0)
        buf[0] = '\0';
    va_end(ap);
}

mi_status mi_status_from_errno(int err)
{
    switch (err) {
    case 0:
        return MI_OK;
    case ENOENT:
        return MI_ENOTFOUND;
    case EACCES:
    case EPERM:
        return MI_EACCES;
    case ENOTDIR:
        return MI_ENOTDIR;
    case ENOMEM:
        return MI_ENOMEM;
    case EEXIST:
        return MI_EEXISTS;
    case EINVAL:
        return MI_EINVAL;
    case ENAMETOOLONG:
    case EFBIG:
        return MI_ETOOBIG;
    case EBUSY:
        return MI_EBUSY;
    case ENOSPC:
    case EDQUOT:
        return MI_ENOSPACE;
    default:
        return MI_EIO;
    }
}

int64_t mi_wall_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

mi_status mi_status_from_io_errno(int err)
{
    return err == ENOSPC || err == EDQUOT ? MI_ENOSPACE : MI_EIO;
}

void mi_write_behind(int fd, uint64_t *started, uint64_t written)
{
    if (written - *started < MI_WRITE_BEHIND)
        return;
    /* Advice: a failure changes nothing but the sync's wait. */
    (void)sync_file_range(fd, (off_t)*started, (off_t)(written - *started),
                          SYNC_FILE_RANGE_WRITE);
    *started = written;
}
