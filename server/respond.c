/*
 * respond.c - writing HTTP replies: headers in one write, JSON bodies and
 * errors, files with HEAD / Range / ETag, the access log, UTF-8 repair.
 */
#include "server.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The one mapping from a library status to an HTTP status. */
int http_status_of(mi_status s)
{
    switch (s) {
    case MI_OK: case MI_ROW: case MI_DONE: return 200;
    case MI_EINVAL: return 400;
    case MI_EFORMAT: return 400;     /* not an image or video we accept */
    case MI_EABORTED: return 400;    /* the client stopped sending */
    case MI_ENOTFOUND: return 404;
    case MI_EEXISTS: return 409;
    case MI_ETOOBIG: return 413;
    case MI_EUNSUPPORTED: return 501;
    case MI_EBUSY: return 503;
    case MI_ENOSPACE: return 507;
    case MI_ERESET: return 410;      /* a change token too old */
    case MI_ERROR: case MI_ENOMEM: case MI_EIO: case MI_EACCES:
    case MI_ENOTDIR: case MI_EDB:
        return 500;
    }
    return 500;
}

double now_epoch(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Does the client want the connection kept open after this reply? */
static bool client_keeps_alive(const struct req *r)
{
    const char *c = mg_get_header(r->conn, "Connection");
    const char *v = r->ri->http_version;

    if (v && strcmp(v, "1.1") != 0 && strcmp(v, "2") != 0)
        return c && strcasestr(c, "keep-alive");
    return !(c && strcasestr(c, "close"));
}

/* Whether the connection closes after this answer: decided once, before
 * the head is written. */
static void decide_close(struct req *r)
{
    if (!r->close && (!client_keeps_alive(r) || atomic_load(&r->srv->closing)))
        r->close = true;
    if (r->close)
        mg_disable_connection_keep_alive(r->conn);
}

/* Status line and headers into buf (cap bytes, at least 1); their length.
 * content_length < 0 means chunked. */
static size_t format_head(const struct req *r, int status,
                          const char *content_type, int64_t content_length,
                          const char *extra, char *buf, size_t cap)
{
    size_t n;
    int w;

    w = snprintf(buf, cap,
                 "HTTP/1.1 %d %s\r\n"
                 "%s%s%s"
                 "Connection: %s\r\n%s%s",
                 status, status == 460 ? "Checksum Mismatch" /* tus */
                                       : mg_get_response_code_text(r->conn, status),
                 content_type ? "Content-Type: " : "",
                 content_type ? content_type : "",
                 content_type ? "\r\n" : "",
                 r->close ? "close" : "keep-alive",
                 /* How long an idle connection is kept (keep_alive_timeout_ms
                  * in main.c): clients that pool connections (Node's fetch
                  * keeps them 4-5 s) would otherwise reuse one the server
                  * has just closed. */
                 r->close ? "" : "Keep-Alive: timeout=2\r\n",
                 /* HTTPS through the trusted proxy: browsers keep to it */
                 r->https ? "Strict-Transport-Security: max-age=31536000\r\n"
                          : "");
    n = w > 0 ? (size_t)w : 0;
    if (n >= cap)
        n = cap - 1;
    if (status == 304 || status == 204 || (status >= 100 && status < 200))
        w = 0;         /* no body, no length */
    else if (content_length >= 0)
        w = snprintf(buf + n, cap - n, "Content-Length: %" PRId64 "\r\n",
                     content_length);
    else
        w = snprintf(buf + n, cap - n, "Transfer-Encoding: chunked\r\n");
    n += w > 0 ? (size_t)w : 0;
    if (n >= cap)
        n = cap - 1;
    w = snprintf(buf + n, cap - n, "%s\r\n", extra ? extra : "");
    n += w > 0 ? (size_t)w : 0;
    if (n >= cap)
        n = cap - 1;   /* cannot happen: extra is ours and bounded */
    return n;
}

/* Status line and headers, followed by up to body_len bytes of body, in as
 * few writes as possible: one for a body up to SMALL_FILE.
 * content_length < 0 means chunked. */
#define SMALL_FILE (256 << 10)
static void respond(struct req *r, int status, const char *content_type,
                    int64_t content_length, const char *extra,
                    const void *body, size_t body_len)
{
    char small[4096], *buf = small;
    size_t cap = sizeof(small), n;

    decide_close(r);
    if (body_len + 1024 + (extra ? strlen(extra) : 0) > cap &&
        body_len <= SMALL_FILE) {
        cap = body_len + 1024 + (extra ? strlen(extra) : 0);
        buf = malloc(cap);
        if (!buf) {
            buf = small;
            cap = sizeof(small);
        }
    }
    n = format_head(r, status, content_type, content_length, extra, buf, cap);
    r->status = status;
    if (body && body_len && !r->head && cap - n >= body_len) {
        memcpy(buf + n, body, body_len);
        if (mg_write(r->conn, buf, n + body_len) > 0)
            r->bytes += body_len;
    } else {
        mg_write(r->conn, buf, n);
        if (body && body_len && !r->head && mg_write(r->conn, body, body_len) > 0)
            r->bytes += body_len;
    }
    if (buf != small)
        free(buf);
}

void send_headers(struct req *r, int status, const char *content_type,
                  int64_t content_length, const char *extra)
{
    respond(r, status, content_type, content_length, extra, NULL, 0);
}

void send_body(struct req *r, const void *buf, size_t len)
{
    if (!r->head && len && mg_write(r->conn, buf, len) > 0)
        r->bytes += len;
}

void send_json(struct req *r, int status, const char *json, const char *extra)
{
    size_t len = strlen(json);
    respond(r, status, "application/json", (int64_t)len, extra, json, len);
}

/* The one writer of error bodies: {"error": "..."}. */
void send_error(struct req *r, int status, const char *extra,
                const char *fmt, ...)
{
    char msg[512], *text;
    cJSON *o;
    va_list ap;

    va_start(ap, fmt);
    if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
        msg[0] = '\0';
    va_end(ap);
    o = cJSON_CreateObject();
    text = o && json_add_string(o, "error", msg) ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    send_json(r, status, text ? text : "{\"error\":\"out of memory\"}", extra);
    cJSON_free(text);
}

/* Print o (consumed) and send it; NULL or a failed print is a 500. */
void send_cjson(struct req *r, int status, cJSON *o, const char *extra)
{
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;

    cJSON_Delete(o);
    if (!text) {
        send_error(r, 500, NULL, "out of memory");
        return;
    }
    send_json(r, status, text, extra);
    cJSON_free(text);
}

/* A library failure as an HTTP error.  Client errors carry the library's
 * detail; server faults say only what failed (the detail, which may name
 * paths on the server's disk, goes to the log). */
void send_mi_error(struct req *r, mi_status s, const char *what)
{
    int status = http_status_of(s);
    const char *detail = mi_index_errmsg(r->srv->idx);

    if (status >= 500) {
        fprintf(stderr, "media-server: %s: %s: %s\n", what, mi_strerror(s),
                detail);
        send_error(r, status, NULL, "%s: %s", what, mi_strerror(s));
    } else if (detail && *detail) {
        send_error(r, status, NULL, "%s", detail);
    } else {
        send_error(r, status, NULL, "%s: %s", what, mi_strerror(s));
    }
}

/* ---------------------------------------------------------------------- */
/* Files                                                                   */

/* Does an If-None-Match list name `etag` (quoted)?  Weak tags compare
 * equal too (RFC 9110 weak comparison for If-None-Match). */
static bool etag_matches(const char *list, const char *etag)
{
    size_t n = strlen(etag);
    const char *p = list;

    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        if (strncmp(p, etag, n) == 0 &&
            (p[n] == '\0' || p[n] == ',' || p[n] == ' ' || p[n] == '\t'))
            return true;
        p = strchr(p, ',');
    }
    return false;
}

bool if_none_match(struct req *r, const char *etag)
{
    const char *h = mg_get_header(r->conn, "If-None-Match");
    return h && etag_matches(h, etag);
}

static bool read_u64(const char **pp, uint64_t *out)
{
    const char *p = *pp;
    uint64_t v = 0;

    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *pp = p;
    *out = v;
    return true;
}

/* One "bytes=a-b" range.  1: use [start, end]; 0: ignore the header and
 * send everything (malformed, several ranges); -1: unsatisfiable. */
static int parse_range(const char *h, uint64_t size, uint64_t *start,
                       uint64_t *end)
{
    const char *p = h;
    uint64_t a, b;

    while (*p == ' ')
        p++;
    if (strncasecmp(p, "bytes=", 6) != 0 || strchr(p, ','))
        return 0;
    p += 6;
    while (*p == ' ')
        p++;
    if (*p == '-') {
        p++;
        if (!read_u64(&p, &b))
            return 0;
        while (*p == ' ')
            p++;
        if (*p)
            return 0;
        if (b == 0 || size == 0)
            return -1;
        *start = b < size ? size - b : 0;
        *end = size - 1;
        return 1;
    }
    if (!read_u64(&p, &a) || *p++ != '-')
        return 0;
    if (*p >= '0' && *p <= '9') {
        if (!read_u64(&p, &b) || b < a)
            return 0;
    } else {
        b = UINT64_MAX;
    }
    while (*p == ' ')
        p++;
    if (*p)
        return 0;
    if (a >= size)
        return -1;
    *start = a;
    *end = b < size ? b : size - 1;
    return 1;
}

/* Send [off, off+len) of fd.  A small file (a thumbnail) is read whole
 * and goes out in one write; anything larger in 256 KiB pieces, so a file
 * that shrinks while we send it just ends the body early.  (Not mmap: on
 * this VM kind each munmap's TLB shootdown cost more than the copy, 76% of
 * the server's time at 64 connections.) */
static int send_range(struct req *r, int fd, uint64_t off, uint64_t len,
                      bool whole)
{
    size_t chunk = whole && len <= (4u << 20) ? (size_t)len
                 : len < (256u << 10) ? (size_t)len : (256u << 10);
    char *buf = malloc(chunk ? chunk : 1);

    if (!buf)
        return -1;
    while (len > 0) {
        size_t want = len < chunk ? (size_t)len : chunk, got = 0;

        while (got < want) {
            ssize_t n = pread(fd, buf + got, want - got, (off_t)(off + got));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        if (got == 0 || mg_write(r->conn, buf, got) <= 0)
            break;
        r->bytes += got;
        off += got;
        len -= got;
    }
    free(buf);
    if (len > 0) {      /* shrank, or the client went away */
        r->close = true;
        mg_disable_connection_keep_alive(r->conn);
        return -1;
    }
    return 0;
}

/* Send an open file: 200, 206 for one satisfiable Range, 304 when
 * If-None-Match names etag, 416 for a Range past the end.  etag is quoted
 * or NULL. */
int send_file(struct req *r, int fd, const char *content_type,
              const char *etag, const char *cache_control, bool ranges)
{
    return send_file_ex(r, fd, content_type, etag, cache_control, ranges,
                        NULL);
}

/* The header lines of a file's answer (ETag, Cache-Control, ...) into
 * extra. */
static void format_file_extra(const struct req *r, char *extra, size_t cap,
                              const char *etag, const char *cache_control,
                              bool ranges, const char *more)
{
    char cc[128];
    int n;

    /* Behind a login, no shared cache may keep a copy. */
    if (r->authed && cache_control && strncmp(cache_control, "public", 6) == 0) {
        snprintf(cc, sizeof(cc), "private%s", cache_control + 6);
        cache_control = cc;
    }
    n = snprintf(extra, cap, "%s%s%s%s%s%s%s%s",
                 etag ? "ETag: " : "", etag ? etag : "", etag ? "\r\n" : "",
                 cache_control ? "Cache-Control: " : "",
                 cache_control ? cache_control : "",
                 cache_control ? "\r\n" : "",
                 ranges ? "Accept-Ranges: bytes\r\n" : "", more ? more : "");
    if (n < 0 || (size_t)n >= cap)
        extra[0] = '\0';
}

/* A 304 when If-None-Match names etag (true: sent). */
static bool send_not_modified(struct req *r, const char *etag,
                              const char *cache_control, bool ranges,
                              const char *more)
{
    char extra[512];

    if (!etag || !if_none_match(r, etag))
        return false;
    format_file_extra(r, extra, sizeof(extra), etag, cache_control, ranges,
                      more);
    respond(r, 304, NULL, 0, extra, NULL, 0);
    return true;
}

struct hot_ctx {
    const struct req *r;
    const char *type, *etag, *cache_control;
    size_t len;
};

static size_t hot_build(char *buf, size_t cap, void *arg)
{
    const struct hot_ctx *c = arg;
    char extra[512];

    format_file_extra(c->r, extra, sizeof(extra), c->etag, c->cache_control,
                      false, NULL);
    return format_head(c->r, 200, c->type, (int64_t)c->len, extra, buf, cap);
}

void send_hot(struct req *r, const struct hot_file *f,
              const char *content_type, const char *etag,
              const char *cache_control)
{
    struct hot_ctx c = { r, content_type, etag, cache_control, f->len };
    char extra[512];
    size_t n;

    if (send_not_modified(r, etag, cache_control, false, NULL))
        return;
    /* The header lines are formatted only when the kept head is not
     * used: once per file, or for another variant. */
    decide_close(r);
    /* The head depends on the request only through these (the file gives
     * the type, the ETag and the length). */
    if (!r->head && (n = hot_head(f, (unsigned)r->close | (unsigned)r->https << 1 |
                                         (unsigned)r->authed << 2,
                                  hot_build, &c)) > 0) {
        r->status = 200;
        if (mg_write(r->conn, f->data - n, n + f->len) > 0)
            r->bytes += f->len;
        return;
    }
    format_file_extra(r, extra, sizeof(extra), etag, cache_control, false,
                      NULL);
    respond(r, 200, content_type, (int64_t)f->len, extra, f->data, f->len);
}

int send_file_ex(struct req *r, int fd, const char *content_type,
                 const char *etag, const char *cache_control, bool ranges,
                 const char *more)
{
    char extra[512];
    struct stat sb;
    uint64_t size, start = 0, end = 0;
    int rng = 0;
    const char *h;

    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        send_error(r, 404, NULL, "file not found");
        return -1;
    }
    size = (uint64_t)sb.st_size;
    if (send_not_modified(r, etag, cache_control, ranges, more))
        return 0;
    format_file_extra(r, extra, sizeof(extra), etag, cache_control, ranges,
                      more);
    if (ranges && (h = mg_get_header(r->conn, "Range")) != NULL) {
        const char *ir = mg_get_header(r->conn, "If-Range");
        if (!ir || (etag && strcmp(ir, etag) == 0))
            rng = parse_range(h, size, &start, &end);
    }
    if (rng < 0) {
        char e2[600];
        snprintf(e2, sizeof(e2), "%sContent-Range: bytes */%" PRIu64 "\r\n",
                 extra, size);
        send_error(r, 416, e2, "range not satisfiable (size %" PRIu64 ")", size);
        return 0;
    }
    if (rng > 0) {
        size_t len = strlen(extra);
        snprintf(extra + len, sizeof(extra) - len,
                 "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n",
                 start, end, size);
        send_headers(r, 206, content_type, (int64_t)(end - start + 1), extra);
        return r->head ? 0 : send_range(r, fd, start, end - start + 1, false);
    }
    /* A small file (a thumbnail) goes out with its headers in one write. */
    if (!r->head && size > 0 && size <= SMALL_FILE) {
        char *body = malloc((size_t)size);
        size_t got = 0;

        while (body && got < size) {
            ssize_t k = pread(fd, body + got, (size_t)size - got, (off_t)got);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                break;
            got += (size_t)k;
        }
        if (body && got == size) {
            respond(r, 200, content_type, (int64_t)size, extra, body, got);
            free(body);
            return 0;
        }
        free(body);             /* shrank meanwhile: as any other file */
    }
    send_headers(r, 200, content_type, (int64_t)size, extra);
    if (r->head || size == 0)
        return 0;
    return send_range(r, fd, 0, size, !ranges);
}

/* ---------------------------------------------------------------------- */
/* UTF-8                                                                   */

/* Length of the valid UTF-8 sequence at p, or 0 if p starts an invalid
 * one (overlong forms, surrogates and code points past U+10FFFF are
 * invalid). */
static size_t utf8_seq(const unsigned char *p)
{
    unsigned char c = p[0];

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if ((p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F))
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if ((p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
            (p[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F))
            return 0;
        return 4;
    }
    return 0;
}

bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        size_t n;
        if (*p < 0x80) {
            p++;
            continue;
        }
        if ((n = utf8_seq(p)) == 0)
            return false;
        p += n;
    }
    return true;
}

/* A copy of s with every byte that does not start a valid sequence
 * replaced by U+FFFD (malloc'd; NULL when out of memory). */
char *utf8_replace(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    char *out = malloc(strlen(s) * 3 + 1), *o = out;

    if (!out)
        return NULL;
    while (*p) {
        size_t n = utf8_seq(p);
        if (n == 0) {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
            p++;
        } else {
            memcpy(o, p, n);
            o += n;
            p += n;
        }
    }
    *o = '\0';
    return out;
}

/* Add a string to a JSON object; file names that are not UTF-8 get
 * U+FFFD for each bad byte, so the document stays valid JSON. */
bool json_add_string(cJSON *o, const char *key, const char *value)
{
    char *fixed;
    bool ok;

    if (utf8_valid(value))
        return cJSON_AddStringToObject(o, key, value) != NULL;
    fixed = utf8_replace(value);
    if (!fixed)
        return false;
    ok = cJSON_AddStringToObject(o, key, fixed) != NULL;
    free(fixed);
    return ok;
}

/* ---------------------------------------------------------------------- */
/* Access log                                                              */

/* One line per request on stderr: client, method, path, status, body
 * bytes, duration.  Bytes outside printable ASCII in the path are written
 * as \xNN, so a request cannot forge log lines. */
void access_log(const struct req *r, double started)
{
    const char *u = r->ri->request_uri ? r->ri->request_uri : "?";
    char path[1024], *o = path;
    size_t room = sizeof(path) - 8;

    /* A share link's token is a password: the log keeps 6 characters. */
    if (strncmp(u, "/s/", 3) == 0) {
        const char *e = u + 3 + strcspn(u + 3, "/?");

        const char *t = u + 3;

        memcpy(o, "/s/", 3);
        o += 3;
        for (; t < e && t < u + 9; t++) {
            char c = *t;
            *o++ = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   (c >= '0' && c <= '9') || c == '-' || c == '_' ? c : '?';
        }
        if (t < e) {
            memcpy(o, "...", 3);
            o += 3;
        }
        room -= (size_t)(o - path);
        u = e;
    }
    for (; *u && room > 4; u++) {
        unsigned char c = (unsigned char)*u;
        if (c < 0x20 || c >= 0x7F || c == '\\') {
            snprintf(o, 5, "\\x%02x", c);
            o += 4;
            room -= 4;
        } else {
            *o++ = (char)c;
            room--;
        }
    }
    *o = '\0';
    fprintf(stderr, "%s %s %s %d %" PRIu64 " %.1fms\n",
            r->client[0] ? r->client : r->ri->remote_addr,
            r->ri->request_method ? r->ri->request_method : "?", path,
            r->status, r->bytes, (now_mono() - started) * 1e3);
}
