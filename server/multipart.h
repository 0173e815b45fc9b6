/*
 * multipart.h - a streaming multipart/form-data parser (RFC 7578) with no
 * dependency on the HTTP server, so that it can be fuzzed on its own.
 */
#ifndef MEDIA_SERVER_MULTIPART_H
#define MEDIA_SERVER_MULTIPART_H

#include <stddef.h>

#define MP_BOUNDARY_MAX 200      /* RFC 2046 allows 70 */
#define MP_HEADERS_MAX 16384     /* one part's header block */

enum {
    MP_OK = 0,
    MP_EMALFORMED = -1,   /* not a well-formed multipart body */
    MP_ETRUNCATED = -2,   /* the body ended (or the read failed) early */
    MP_EABORTED = -3,     /* a callback said stop */
    MP_ENOMEM = -4
};

struct mp_callbacks {
    /* Read up to len bytes of body: > 0 bytes read, 0 at the end of the
     * body, < 0 on error. */
    long (*read)(void *ud, char *buf, size_t len);
    /* A part starts: its form name and file name ("" when absent, at most
     * 1023 bytes each).  Return 0 to go on, non-zero to abort. */
    int (*part_begin)(void *ud, const char *name, const char *filename);
    /* Bytes of the current part, in order, in pieces of any size. */
    int (*part_data)(void *ud, const char *data, size_t len);
};

/* The boundary of a "multipart/form-data; boundary=..." Content-Type into
 * out (at least MP_BOUNDARY_MAX + 1 bytes); 0, or -1 if there is none. */
int mp_boundary(char *out, const char *content_type);

/* Parse a whole body with `boundary`, reading through cb->read into a
 * buffer of bufsize bytes (at least 64 KiB).  MP_OK once the closing
 * delimiter has been read; the epilogue is not read. */
int mp_parse(const char *boundary, size_t bufsize,
             const struct mp_callbacks *cb, void *ud);

#endif
