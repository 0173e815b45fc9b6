/*
 * decode.h - inside mi-decode, the decoder process: what main.c gives the
 * format decoders (formats.c) and what they give back.
 */
#ifndef MI_DECODE_H
#define MI_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decoder-proto.h"

/* The file being decoded: an open descriptor, read with pread only. */
typedef struct dfile {
    int fd;
    uint64_t size;
    const uint8_t *map;   /* the whole file, mapped on first need */
    uint64_t pos;         /* for the libraries that read as a stream */
} dfile;

/* One job's answer: the reply header and the pixels that follow it. */
typedef struct djob {
    const mi_dreq *req;
    dfile *file;
    mi_dres *res;
    uint8_t *px;          /* malloc'd, res->w * res->h * 4 */
} djob;

/* The whole file mapped (read-only, private); NULL when it cannot be. */
const uint8_t *dfile_map(dfile *f);

/* Up to n bytes at off; -1 on an error. */
long dfile_pread(const dfile *f, void *buf, size_t n, uint64_t off);

/* As a stream, for libheif's, libtiff's and FFmpeg's reader callbacks:
 * up to n bytes at pos, advancing it; and a seek (SEEK_SET, SEEK_CUR,
 * SEEK_END) to a position in [0, size], or -1. */
long dfile_read(dfile *f, void *buf, size_t n);
int64_t dfile_seek(dfile *f, int64_t off, int whence);

/* Fail the job: status and a reason (printf-style). Returns status. */
int djob_fail(djob *j, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Answer with these RGBA (or RGB, channels = 3) rows, fitted to 2 * box:
 * the long side is exactly min(2 * box, its own), the other in
 * proportion (never enlarged).  Whole blocks are averaged first while the
 * result still covers that size, then a filtered resample makes it exact,
 * so the memory is a few times the answer's.  Returns MI_OK, MI_EFORMAT
 * (no pixels) or MI_ENOMEM. */
int djob_pixels(djob *j, const uint8_t *px, int w, int h, size_t stride,
                int channels);

/* Copy printable text into a fixed field, trimmed. */
void dtext(char *out, size_t n, const char *in);

/* Set the libraries up (before the sandbox: they may open files). */
void decode_init(void);

/* The decoder the request names (it resets the stream position). */
int decode_file(djob *j);

/* The request loop (serve.c): one request and its descriptor from
 * `sock`, false at the end of the stream or on a malformed message (any
 * descriptor that came with it closed); and its answer, written to `sock`
 * (the descriptor closed).  `faults`: MI_DECODE_FAULTS, see main.c. */
bool dserve_receive(int sock, mi_dreq *req, int *fd);
void dserve_handle(int sock, const mi_dreq *req, int fd, bool faults);

int decode_heif(djob *j);
int decode_webp(djob *j);
int decode_tiff(djob *j);
int decode_raw(djob *j);
int decode_video(djob *j);

#endif
