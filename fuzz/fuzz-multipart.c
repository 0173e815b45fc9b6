/*
 * fuzz-multipart.c - libFuzzer harness for media-server's multipart parser
 * (server/multipart.c), with no socket: SECURITY.md's F3.
 *
 * Input: a Content-Type value, a newline, then the body.  The body is
 * handed to the parser in pieces whose sizes come from the input itself,
 * so boundaries split across reads are exercised.  Checks: the parser ends
 * (libFuzzer's -timeout), returns a known code, never hands out more bytes
 * than the body holds, and gives NUL-terminated names of at most 1023
 * bytes.
 */
#include "multipart.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct feed {
    const uint8_t *body;
    size_t len, off, served;
    unsigned int step;
};

static long feed_read(void *ud, char *buf, size_t len)
{
    struct feed *f = ud;
    size_t n = f->len - f->off;

    /* Piece sizes from 1 to 4096, varied by the bytes already read. */
    f->step = f->step * 1103515245u + 12345u +
              (f->off < f->len ? f->body[f->off] : 0);
    if (n > 1 + (f->step >> 8) % 4096)
        n = 1 + (f->step >> 8) % 4096;
    if (n > len)
        n = len;
    memcpy(buf, f->body + f->off, n);
    f->off += n;
    return (long)n;
}

static int on_begin(void *ud, const char *name, const char *filename)
{
    (void)ud;
    if (strlen(name) > 1023 || strlen(filename) > 1023)
        abort();
    return 0;
}

static int on_data(void *ud, const char *data, size_t len)
{
    struct feed *f = ud;

    (void)data;
    f->served += len;
    if (f->served > f->len)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size < 512 ? size : 512);
    char ctype[513], boundary[MP_BOUNDARY_MAX + 1];
    struct mp_callbacks cb = { feed_read, on_begin, on_data };
    struct feed f;
    size_t clen;
    int rc;

    if (!nl)
        return 0;
    clen = (size_t)(nl - data);
    memcpy(ctype, data, clen);
    ctype[clen] = '\0';
    if (mp_boundary(boundary, ctype) != 0)
        return 0;
    if (strlen(boundary) > MP_BOUNDARY_MAX)
        abort();
    memset(&f, 0, sizeof(f));
    f.body = nl + 1;
    f.len = size - clen - 1;
    rc = mp_parse(boundary, 64 * 1024, &cb, &f);
    if (rc != MP_OK && rc != MP_EMALFORMED && rc != MP_ETRUNCATED &&
        rc != MP_EABORTED && rc != MP_ENOMEM)
        abort();
    return 0;
}
