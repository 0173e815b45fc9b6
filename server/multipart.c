/*
 * multipart.c - streaming multipart/form-data.
 *
 * Reads the body in large blocks and finds each delimiter with memmem(),
 * handing a part's bytes to the caller straight from the read buffer:
 * civetweb's own form parser reads 8 KiB at a time and compares byte by
 * byte, which held 1 GiB uploads to about 100 MB/s.  It also keeps
 * civetweb's url-encoded form parser (which spins for ever on "a=%") out
 * of reach.
 *
 * Grammar accepted (RFC 2046 section 5.1.1, RFC 7578):
 *   preamble? "--" boundary *WSP CRLF
 *   ( headers CRLF data CRLF "--" boundary *WSP CRLF )*
 *   headers CRLF data CRLF "--" boundary "--" epilogue?
 */
#include "multipart.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int mp_boundary(char *out, const char *ct)
{
    const char *p;
    size_t n = 0;

    if (!ct || strncasecmp(ct, "multipart/form-data", 19) != 0)
        return -1;
    p = ct + 19;
    while (*p) {
        while (*p == ';' || *p == ' ' || *p == '\t')
            p++;
        if (strncasecmp(p, "boundary=", 9) == 0) {
            p += 9;
            if (*p == '"') {
                for (p++; *p && *p != '"' && n < MP_BOUNDARY_MAX; p++)
                    out[n++] = *p;
                if (*p != '"')
                    return -1;
            } else {
                for (; *p && *p != ';' && *p != ' ' && *p != '\t' &&
                       n < MP_BOUNDARY_MAX; p++)
                    out[n++] = *p;
                if (*p && *p != ';' && *p != ' ' && *p != '\t')
                    return -1;      /* too long */
            }
            out[n] = '\0';
            return n ? 0 : -1;
        }
        while (*p && *p != ';')
            p++;
    }
    return -1;
}

struct mp {
    const struct mp_callbacks *cb;
    void *ud;
    char *buf;
    size_t cap, len, pos;   /* buf[pos, len) is unparsed */
    bool eof;
};

/* Read more: keep buf[pos, len), moved to the front.  0 if nothing new
 * could be read. */
static int fill(struct mp *m)
{
    long n;

    if (m->pos) {
        memmove(m->buf, m->buf + m->pos, m->len - m->pos);
        m->len -= m->pos;
        m->pos = 0;
    }
    if (m->eof || m->len == m->cap)
        return 0;
    n = m->cb->read(m->ud, m->buf + m->len, m->cap - m->len);
    if (n <= 0) {
        m->eof = true;
        return 0;
    }
    m->len += (size_t)n;
    return 1;
}

/* Make at least n unparsed bytes available. */
static bool need(struct mp *m, size_t n)
{
    while (m->len - m->pos < n)
        if (!fill(m))
            return false;
    return true;
}

/* One parameter of a Content-Disposition value, unquoted, into out. */
static void disp_param(char out[1024], const char *v, const char *key)
{
    size_t kl = strlen(key), n = 0;
    const char *p = v;

    out[0] = '\0';
    while ((p = strchr(p, ';')) != NULL) {
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncasecmp(p, key, kl) != 0 || p[kl] != '=')
            continue;
        p += kl + 1;
        if (*p == '"') {
            for (p++; *p && *p != '"' && n < 1023; p++) {
                if (*p == '\\' && p[1])
                    p++;
                out[n++] = *p;
            }
        } else {
            for (; *p && *p != ';' && *p != ' ' && n < 1023; p++)
                out[n++] = *p;
        }
        out[n] = '\0';
        return;
    }
}

/* Parse a part's header block hdr[0, n) (ending in CRLF CRLF). */
static int part_headers(struct mp *m, char *hdr, size_t n)
{
    char name[1024], filename[1024], *line = hdr, *end = hdr + n, *eol;
    bool found = false;

    name[0] = filename[0] = '\0';
    while (line < end && (eol = memmem(line, (size_t)(end - line), "\r\n", 2))) {
        *eol = '\0';
        if (memchr(line, '\0', (size_t)(eol - line)))
            return MP_EMALFORMED;
        if (strncasecmp(line, "Content-Disposition:", 20) == 0) {
            const char *v = line + 20;
            while (*v == ' ' || *v == '\t')
                v++;
            if (strncasecmp(v, "form-data", 9) != 0)
                return MP_EMALFORMED;
            disp_param(name, v, "name");
            disp_param(filename, v, "filename");
            found = true;
        }
        line = eol + 2;
    }
    if (!found || !name[0])
        return MP_EMALFORMED;
    return m->cb->part_begin(m->ud, name, filename) ? MP_EABORTED : MP_OK;
}

int mp_parse(const char *boundary, size_t bufsize,
             const struct mp_callbacks *cb, void *ud)
{
    char delim[MP_BOUNDARY_MAX + 8];
    size_t dl, bl = strlen(boundary);
    struct mp m;
    int rc = MP_OK;

    if (bl == 0 || bl > MP_BOUNDARY_MAX || bufsize < (64u << 10))
        return MP_EMALFORMED;
    memset(&m, 0, sizeof(m));
    m.cb = cb;
    m.ud = ud;
    m.cap = bufsize;
    m.buf = malloc(bufsize);
    if (!m.buf)
        return MP_ENOMEM;
    /* delim = CRLF "--" boundary; the first one may lack its CRLF. */
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, boundary, bl);
    dl = bl + 4;

    /* Preamble, then the first delimiter. */
    if (!need(&m, dl - 2)) {
        rc = MP_ETRUNCATED;
        goto out;
    }
    if (memcmp(m.buf, delim + 2, dl - 2) == 0) {
        m.pos = dl - 2;
    } else {
        char *d;
        for (;;) {
            d = memmem(m.buf + m.pos, m.len - m.pos, delim, dl);
            if (d) {
                m.pos = (size_t)(d - m.buf) + dl;
                break;
            }
            if (m.len >= (64u << 10)) {   /* a preamble that long: no */
                rc = MP_EMALFORMED;
                goto out;
            }
            if (!fill(&m)) {
                rc = MP_ETRUNCATED;
                goto out;
            }
        }
    }

    for (;;) {
        char *h, *d;

        /* After a delimiter: "--" ends the body; else *WSP CRLF. */
        if (!need(&m, 2)) {
            rc = MP_ETRUNCATED;
            goto out;
        }
        if (m.buf[m.pos] == '-' && m.buf[m.pos + 1] == '-')
            break;                                   /* the epilogue */
        for (;;) {
            if (!need(&m, 2)) {
                rc = MP_ETRUNCATED;
                goto out;
            }
            if (m.buf[m.pos] == ' ' || m.buf[m.pos] == '\t') {
                m.pos++;
                continue;
            }
            break;
        }
        if (m.buf[m.pos] != '\r' || m.buf[m.pos + 1] != '\n') {
            rc = MP_EMALFORMED;
            goto out;
        }
        m.pos += 2;

        /* The part's headers: up to an empty line. */
        if (!need(&m, 2)) {
            rc = MP_ETRUNCATED;
            goto out;
        }
        if (m.buf[m.pos] == '\r' && m.buf[m.pos + 1] == '\n') {
            rc = MP_EMALFORMED;                      /* no headers at all */
            goto out;
        }
        while (!(h = memmem(m.buf + m.pos, m.len - m.pos, "\r\n\r\n", 4))) {
            if (m.len - m.pos > MP_HEADERS_MAX) {
                rc = MP_EMALFORMED;
                goto out;
            }
            if (!fill(&m)) {
                rc = MP_ETRUNCATED;
                goto out;
            }
        }
        if ((size_t)(h - (m.buf + m.pos)) > MP_HEADERS_MAX) {
            rc = MP_EMALFORMED;
            goto out;
        }
        rc = part_headers(&m, m.buf + m.pos, (size_t)(h - (m.buf + m.pos)) + 2);
        if (rc != MP_OK)
            goto out;
        m.pos = (size_t)(h - m.buf) + 4;

        /* The part's bytes, up to the next delimiter.  Everything but the
         * last dl-1 bytes (which could start a delimiter) goes out at
         * once. */
        for (;;) {
            size_t avail = m.len - m.pos;

            d = memmem(m.buf + m.pos, avail, delim, dl);
            if (d) {
                size_t n = (size_t)(d - (m.buf + m.pos));
                if (n && cb->part_data(ud, m.buf + m.pos, n)) {
                    rc = MP_EABORTED;
                    goto out;
                }
                m.pos += n + dl;
                break;
            }
            if (avail >= dl) {
                size_t n = avail - (dl - 1);
                if (cb->part_data(ud, m.buf + m.pos, n)) {
                    rc = MP_EABORTED;
                    goto out;
                }
                m.pos += n;
            }
            if (!fill(&m)) {
                rc = MP_ETRUNCATED;
                goto out;
            }
        }
    }
out:
    free(m.buf);
    return rc;
}
