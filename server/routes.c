/*
 * routes.c - one civetweb handler for every path: it splits the path,
 * picks the route, checks the method, and logs the request.
 *
 *   GET|HEAD /list                   every entry (list.c)
 *   GET|HEAD /status                 scan state, counts
 *   GET|HEAD /api/problems           files that could not be read or
 *                                    thumbnailed, and why
 *   GET|HEAD /api/formats            the file types the library indexes,
 *                                    accepts as uploads, makes previews of
 *   GET|HEAD /thumbnail/<sha256>     the 256x256 PNG (?size=512: a 512 px
 *                                    JPEG for HiDPI grids)
 *   GET|HEAD /preview/<sha256>       a 1600 px JPEG for the viewer (HEIC,
 *                                    TIFF, raw; large originals)
 *   GET|HEAD /image/<sha256>         the original bytes (Range, ETag)
 *   GET|HEAD /image/sha256/<sha256>  the same
 *   PUT      /image/<filename>       upload (upload.c)
 */
#include "server.h"
#include "web-assets.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SEGS 4

/* The request path, split at '/' and percent-decoded segment by segment,
 * so that "%2F" inside a file name stays inside that name. */
struct path {
    int n;                    /* segments; -1 when there are too many */
    char *seg[MAX_SEGS];
    bool nul[MAX_SEGS];       /* a decoded segment held a NUL byte */
};

static void path_free(struct path *p)
{
    int i;
    for (i = 0; i < MAX_SEGS; i++)
        free(p->seg[i]);
}

static bool path_split(struct path *p, const char *raw)
{
    const char *s = raw, *e;

    memset(p, 0, sizeof(*p));
    if (!s || *s != '/')
        return true;           /* no segments: 404 */
    s++;
    for (;;) {
        size_t len;
        int d;

        e = strchr(s, '/');
        len = e ? (size_t)(e - s) : strlen(s);
        if (p->n == MAX_SEGS) {
            p->n = -1;
            return true;
        }
        p->seg[p->n] = malloc(len + 1);
        if (!p->seg[p->n])
            return false;
        d = mg_url_decode(s, (int)len, p->seg[p->n], (int)len + 1, 0);
        if (d < 0)
            d = 0;
        p->seg[p->n][d] = '\0';
        p->nul[p->n] = strlen(p->seg[p->n]) != (size_t)d;
        p->n++;
        if (!e)
            break;
        s = e + 1;
    }
    return true;
}

static bool is(const struct path *p, int i, const char *name)
{
    return i < p->n && strcmp(p->seg[i], name) == 0;
}

static void method_not_allowed(struct req *r, const char *allow)
{
    char extra[64];
    snprintf(extra, sizeof(extra), "Allow: %s\r\n", allow);
    send_error(r, 405, extra, "method %s not allowed here (allowed: %s)",
               r->ri->request_method, allow);
}

static bool get_or_head(const struct req *r)
{
    return strcmp(r->ri->request_method, "GET") == 0 || r->head;
}

/* A hash from the URL, or a 400 reply. */
static bool url_hash(struct req *r, const struct path *p, int i,
                     uint8_t hash[MI_HASH_SIZE], char hex[MI_HASH_HEX_LEN + 1])
{
    if (p->nul[i] || mi_hash_from_hex(hash, p->seg[i]) != MI_OK) {
        send_error(r, 400, NULL,
                   "malformed hash: expected 64 hexadecimal characters");
        return false;
    }
    mi_hash_to_hex(hex, hash);
    return true;
}

/* ---------------------------------------------------------------------- */
/* GET /status                                                             */

static void add_stats(cJSON *o, const mi_scan_stats *st)
{
    cJSON_AddNumberToObject(o, "seen", (double)st->seen);
    cJSON_AddNumberToObject(o, "added", (double)st->added);
    cJSON_AddNumberToObject(o, "changed", (double)st->changed);
    cJSON_AddNumberToObject(o, "removed", (double)st->removed);
    cJSON_AddNumberToObject(o, "unchanged", (double)st->unchanged);
    cJSON_AddNumberToObject(o, "failed", (double)st->failed);
    cJSON_AddNumberToObject(o, "files_hashed", (double)st->files_hashed);
    cJSON_AddNumberToObject(o, "bytes_hashed", (double)st->bytes_hashed);
    cJSON_AddNumberToObject(o, "thumbs_made", (double)st->thumbs_made);
    cJSON_AddNumberToObject(o, "thumbs_failed", (double)st->thumbs_failed);
    cJSON_AddNumberToObject(o, "thumbs_unsupported",
                            (double)st->thumbs_unsupported);
    cJSON_AddNumberToObject(o, "thumbs_removed", (double)st->thumbs_removed);
}

static void route_status(struct req *r)
{
    struct server *srv = r->srv;
    mi_scan_stats progress, last;
    double started, finished;
    bool scanning, have_last;
    int last_status;
    uint64_t media = 0, files = 0, problems = 0;
    cJSON *o, *st;

    pthread_mutex_lock(&srv->lock);
    scanning = srv->scanning;
    progress = srv->progress;
    last = srv->last;
    have_last = srv->have_last;
    last_status = srv->last_status;
    started = srv->scan_started;
    finished = srv->scan_finished;
    pthread_mutex_unlock(&srv->lock);

    mi_index_count(srv->idx, &media, &files);
    mi_problems_count(&problems, srv->idx);
    o = cJSON_CreateObject();
    if (!o) {
        send_error(r, 500, NULL, "out of memory");
        return;
    }
    cJSON_AddStringToObject(o, "state", scanning ? "scanning" : "idle");
    cJSON_AddNumberToObject(o, "files_seen",
                            (double)(scanning ? progress.seen
                                              : have_last ? last.seen : 0));
    cJSON_AddNumberToObject(o, "media", (double)media);
    cJSON_AddNumberToObject(o, "files", (double)files);
    cJSON_AddNumberToObject(o, "problems", (double)problems);
    {
        char why[512];
        bool writable = mi_index_writable(srv->idx, why, sizeof(why)) == MI_OK;

        cJSON_AddBoolToObject(o, "writable", writable);
        if (!writable)
            json_add_string(o, "read_only_reason", why);
    }
    cJSON_AddNumberToObject(o, "generation",
                            (double)mi_index_generation(srv->idx));
    if (started > 0)
        cJSON_AddNumberToObject(o, "last_scan_started", started);
    else
        cJSON_AddNullToObject(o, "last_scan_started");
    if (have_last && finished > 0)
        cJSON_AddNumberToObject(o, "last_scan_finished", finished);
    else
        cJSON_AddNullToObject(o, "last_scan_finished");
    if (have_last && (st = cJSON_AddObjectToObject(o, "last_scan_stats"))) {
        add_stats(st, &last);
        cJSON_AddStringToObject(st, "result", mi_strerror(last_status));
    } else {
        cJSON_AddNullToObject(o, "last_scan_stats");
    }
    cJSON_AddNumberToObject(o, "rescan_interval", srv->rescan);
    cJSON_AddStringToObject(o, "version", mi_version());
    send_cjson(r, 200, o, "Cache-Control: no-store\r\n");
}

/* ---------------------------------------------------------------------- */
/* GET /thumbnail/<sha256>, GET /image/<sha256>                            */

static int open_in_root(struct server *srv, const char *rel)
{
    size_t n = strlen(srv->root) + strlen(rel) + 2;
    char *path = malloc(n);
    int fd;

    if (!path)
        return -1;
    snprintf(path, n, "%s/%s", srv->root, rel);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    return fd;
}

/* What the server makes from a file: the thumbnail, the large one, or the
 * preview for the viewer. */
struct derived {
    const char *suffix;      /* of the file in .thumbnails/ */
    mi_status (*get)(char *, size_t, mi_index *, const uint8_t *);
    const char *type, *what;
};

static const struct derived thumbnail = { ".png", mi_thumb_get, "image/png",
                                          "thumbnail" };
static const struct derived large = { "-512.jpg", mi_thumb_get_large,
                                      "image/jpeg", "large thumbnail" };
static const struct derived preview = { "-preview.jpg", mi_preview_get,
                                        "image/jpeg", "preview" };

static void route_derived(struct req *r, const struct path *p,
                          const struct derived *d)
{
    uint8_t hash[MI_HASH_SIZE];
    char hex[MI_HASH_HEX_LEN + 1], rel[128], etag[96];
    mi_status s;
    int fd;

    if (!url_hash(r, p, 1, hash, hex))
        return;
    /* Fast path: the file is on disk (the scan removes those of contents
     * that are gone). */
    snprintf(rel, sizeof(rel), ".thumbnails/%s%s", hex, d->suffix);
    fd = open_in_root(r->srv, rel);
    if (fd < 0) {
        s = d->get(rel, sizeof(rel), r->srv->idx, hash);
        switch (s) {
        case MI_OK:
            fd = open_in_root(r->srv, rel);
            break;
        case MI_ENOTFOUND:
            send_error(r, 404, NULL, "no image with this hash");
            return;
        case MI_EUNSUPPORTED:
            send_error(r, 404, NULL, d == &preview
                           ? "no preview for this media (a video, or a "
                             "type without thumbnails)"
                           : "no thumbnail for this media (a type without "
                             "thumbnails)");
            return;
        case MI_EFORMAT: {
            /* The decoder's own reason ("no preview: the decoder took
             * longer than 30 s on this file"): names no path. */
            const char *why = mi_index_errmsg(r->srv->idx);
            if (*why)
                send_error(r, 404, NULL, "%s", why);
            else
                send_error(r, 404, NULL, "no %s: the file could not be decoded",
                           d->what);
            return;
        }
        case MI_ETOOBIG:
            send_error(r, 404, NULL, "no %s: the image is too large", d->what);
            return;
        default:
            send_mi_error(r, s, "cannot make the image");
            return;
        }
        if (fd < 0) {
            send_error(r, 404, NULL, "no %s for this hash", d->what);
            return;
        }
    }
    snprintf(etag, sizeof(etag), "\"%s%s\"", hex, d->suffix);
    send_file(r, fd, d->type, etag, "public, max-age=86400", false);
    close(fd);
}

/* Open the entry's file if it still holds the indexed bytes (same size;
 * the primary path also has the same mtime).  The primary path first, then
 * the other paths with the same bytes. */
static int open_entry(struct server *srv, const mi_entry *e)
{
    size_t i, n = mi_entry_dup_count(e);

    for (i = 0; i <= n; i++) {
        const char *rel = i == 0 ? mi_entry_path(e) : mi_entry_dup_path(e, i - 1);
        struct stat sb;
        int fd;

        if (!rel || (fd = open_in_root(srv, rel)) < 0)
            continue;
        if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
            (uint64_t)sb.st_size == mi_entry_size(e) &&
            (i > 0 || (int64_t)sb.st_mtim.tv_sec * 1000000000 +
                              sb.st_mtim.tv_nsec == mi_entry_mtime_ns(e)))
            return fd;
        close(fd);
    }
    return -1;
}

static void route_image(struct req *r, const struct path *p, int i)
{
    uint8_t hash[MI_HASH_SIZE];
    char hex[MI_HASH_HEX_LEN + 1], etag[80];
    mi_entry *e = NULL;
    mi_status s;
    int fd;

    if (!url_hash(r, p, i, hash, hex))
        return;
    s = mi_lookup(&e, r->srv->idx, hash);
    if (s == MI_ENOTFOUND) {
        send_error(r, 404, NULL, "no image with this hash");
        return;
    }
    if (s != MI_OK) {
        send_mi_error(r, s, "cannot look the hash up");
        return;
    }
    fd = open_entry(r->srv, e);
    if (fd < 0) {
        send_error(r, 404, NULL, "the file is gone from disk");
    } else {
        snprintf(etag, sizeof(etag), "\"%s\"", hex);
        send_file(r, fd, mi_entry_mime_type(e), etag,
                  "public, max-age=31536000, immutable", true);
        close(fd);
    }
    mi_entry_free(e);
}

/* ---------------------------------------------------------------------- */
/* GET /api/problems: what could not be read or thumbnailed                */

#define PROBLEMS_DEFAULT 1000
#define PROBLEMS_MAX 100000

static const char *stage_name(mi_problem_stage s)
{
    switch (s) {
    case MI_PROBLEM_READ: return "read";
    case MI_PROBLEM_FOLDER: return "folder";
    case MI_PROBLEM_THUMBNAIL: return "thumbnail";
    default: return "other";
    }
}

/* {"count": N, "problems": [{path, stage, reason, error, first_seen,
 * time}, ...]}: most recently seen first, at most ?limit= of them (1000
 * by default); count is all of them, from the same snapshot. */
static void route_problems(struct req *r, const char *limit_arg)
{
    mi_problems *p = NULL;
    uint64_t count = 0, limit = PROBLEMS_DEFAULT;
    cJSON *o = NULL, *list;
    char *end;
    mi_status s;
    bool ok = true;

    if (*limit_arg) {
        unsigned long long v;

        errno = 0;
        v = strtoull(limit_arg, &end, 10);
        if (errno || *end || *limit_arg < '0' || *limit_arg > '9' ||
            v > PROBLEMS_MAX) {
            send_error(r, 400, NULL, "limit must be a number from 0 to %d",
                       PROBLEMS_MAX);
            return;
        }
        limit = v;
    }
    s = mi_problems_new(&p, r->srv->idx);
    if (s != MI_OK) {
        send_mi_error(r, s, "problems");
        return;
    }
    o = cJSON_CreateObject();
    list = o ? cJSON_AddArrayToObject(o, "problems") : NULL;
    ok = list != NULL;
    while (ok && (s = mi_problems_next(p)) == MI_ROW) {
        cJSON *e;

        if (count++ >= limit)
            continue;               /* counted, not listed */
        e = cJSON_CreateObject();
        ok = e && cJSON_AddItemToArray(list, e) &&
             json_add_string(e, "path", mi_problems_path(p, NULL)) &&
             cJSON_AddStringToObject(e, "stage",
                                     stage_name(mi_problems_stage(p))) &&
             json_add_string(e, "reason", mi_problems_reason(p)) &&
             cJSON_AddStringToObject(e, "error",
                                     mi_strerror(mi_problems_status(p))) &&
             cJSON_AddNumberToObject(e, "first_seen",
                                     (double)mi_problems_first_seen(p)) &&
             cJSON_AddNumberToObject(e, "time",
                                     (double)mi_problems_last_seen(p));
    }
    mi_problems_free(p);
    if (s < 0) {
        cJSON_Delete(o);
        send_mi_error(r, s, "problems");
        return;
    }
    if (ok && !cJSON_AddNumberToObject(o, "count", (double)count))
        ok = false;
    if (!ok) {
        cJSON_Delete(o);
        o = NULL;
    }
    send_cjson(r, 200, o, "Cache-Control: no-store\r\n");
}

/* ---------------------------------------------------------------------- */
/* GET /api/formats: the library's own table of media types                */

/* {"types": [{"ext", "mime", "video", "upload", "preview"}, ...]}: one
 * list for every client (the gallery's upload filter and viewer read it),
 * so none keeps a copy that drifts from what the server takes. */
static void route_formats(struct req *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *list = o ? cJSON_AddArrayToObject(o, "types") : NULL;
    bool ok = list != NULL;
    const char *ext, *mime;
    unsigned int flags;

    for (size_t i = 0; ok && (ext = mi_media_type_at(i, &mime, &flags)); i++) {
        cJSON *e = cJSON_CreateObject();

        ok = e && cJSON_AddItemToArray(list, e) &&
             cJSON_AddStringToObject(e, "ext", ext) &&
             cJSON_AddStringToObject(e, "mime", mime) &&
             cJSON_AddBoolToObject(e, "video", (flags & MI_MEDIA_VIDEO) != 0) &&
             cJSON_AddBoolToObject(e, "upload", (flags & MI_MEDIA_UPLOAD) != 0) &&
             cJSON_AddBoolToObject(e, "preview", (flags & MI_MEDIA_PREVIEW) != 0);
    }
    if (!ok) {
        cJSON_Delete(o);
        o = NULL;
    }
    send_cjson(r, 200, o, "Cache-Control: no-cache\r\n");
}

/* ---------------------------------------------------------------------- */
/* The web gallery                                                         */

/* The page loads nothing from elsewhere and runs no inline code. */
#define GALLERY_HEADERS                                                      \
    "Cache-Control: no-cache\r\n"                                           \
    "X-Content-Type-Options: nosniff\r\n"                                   \
    "Referrer-Policy: no-referrer\r\n"                                      \
    "Content-Security-Policy: default-src 'self'; img-src 'self' data: "     \
    "blob:; media-src 'self' blob:; style-src 'self'; script-src 'self'; "  \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; "              \
    "frame-ancestors 'none'; form-action 'self'\r\n"

static void route_asset(struct req *r, const struct mi_web_asset *a)
{
    char extra[1024];

    snprintf(extra, sizeof(extra), "ETag: %s\r\n" GALLERY_HEADERS, a->etag);
    if (if_none_match(r, a->etag)) {
        send_headers(r, 304, NULL, 0, extra);
        return;
    }
    send_headers(r, 200, a->mime, (int64_t)a->len, extra);
    send_body(r, a->data, a->len);
}

/* ---------------------------------------------------------------------- */
/* Dispatch                                                                */

/* Read a query parameter into buf ("" when absent).  A value that is too
 * long or holds a NUL byte comes out as "?", which no parser accepts. */
static void query_var(const struct req *r, const char *name, char *buf,
                      size_t len)
{
    const char *q = r->ri->query_string;
    int n = q ? mg_get_var(q, strlen(q), name, buf, len) : -1;

    if (n == -1)
        buf[0] = '\0';
    else if (n < 0 || strlen(buf) != (size_t)n)
        snprintf(buf, len, "?");
}

/* GET /thumbnail/<sha256>[?size=256|512] */
static void route_thumbnail(struct req *r, const struct path *p)
{
    char size[8];

    query_var(r, "size", size, sizeof(size));
    if (!*size || strcmp(size, "256") == 0)
        route_derived(r, p, &thumbnail);
    else if (strcmp(size, "512") == 0)
        route_derived(r, p, &large);
    else
        send_error(r, 400, NULL, "size must be 256 (the PNG thumbnail) or "
                                 "512 (a JPEG for HiDPI grids)");
}

/* GET /list, /list?from=D&to=D, /list/date/D, /list/daterange/A/B. */
static void route_list_filtered(struct req *r, const struct path *p)
{
    char from[32] = "", to[32] = "", format[16] = "";

    query_var(r, "format", format, sizeof(format));
    if (*format && strcmp(format, "json") != 0 && strcmp(format, "ndjson") != 0) {
        send_error(r, 400, NULL, "format must be json or ndjson");
        return;
    }
    if (p->n == 1) {
        query_var(r, "from", from, sizeof(from));
        query_var(r, "to", to, sizeof(to));
    } else if (p->n == 3 && is(p, 1, "date")) {
        snprintf(from, sizeof(from), "%s", p->seg[2]);
        snprintf(to, sizeof(to), "%s", p->seg[2]);
    } else {
        snprintf(from, sizeof(from), "%s", p->seg[2]);
        snprintf(to, sizeof(to), "%s", p->seg[3]);
    }
    route_list(r, from, to, strcmp(format, "ndjson") == 0);
}

static void route(struct req *r, const struct path *p)
{
    const char *m = r->ri->request_method;
    const struct mi_web_asset *asset = mi_web_asset_find(r->ri->local_uri);

    if (asset) {
        if (get_or_head(r))
            route_asset(r, asset);
        else
            method_not_allowed(r, "GET, HEAD");
    } else if (is(p, 0, "list") &&
               (p->n == 1 || (p->n == 3 && is(p, 1, "date")) ||
                (p->n == 4 && is(p, 1, "daterange")))) {
        if (get_or_head(r))
            route_list_filtered(r, p);
        else
            method_not_allowed(r, "GET, HEAD");
    } else if (p->n == 2 && is(p, 0, "api") && is(p, 1, "problems")) {
        if (get_or_head(r)) {
            char limit[24];
            query_var(r, "limit", limit, sizeof(limit));
            route_problems(r, limit);
        } else
            method_not_allowed(r, "GET, HEAD");
    } else if (p->n == 2 && is(p, 0, "api") && is(p, 1, "formats")) {
        if (get_or_head(r))
            route_formats(r);
        else
            method_not_allowed(r, "GET, HEAD");
    } else if (p->n == 1 && is(p, 0, "status")) {
        if (get_or_head(r))
            route_status(r);
        else
            method_not_allowed(r, "GET, HEAD");
    } else if (p->n == 2 && is(p, 0, "thumbnail")) {
        if (get_or_head(r))
            route_thumbnail(r, p);
        else
            method_not_allowed(r, "GET, HEAD");
    } else if (p->n == 2 && is(p, 0, "preview")) {
        if (get_or_head(r))
            route_derived(r, p, &preview);
        else
            method_not_allowed(r, "GET, HEAD");
    } else if (p->n == 3 && is(p, 0, "image") && is(p, 1, "sha256")) {
        if (get_or_head(r))
            route_image(r, p, 2);
        else
            method_not_allowed(r, "GET, HEAD");
    } else if (p->n == 2 && is(p, 0, "image")) {
        if (get_or_head(r))
            route_image(r, p, 1);
        else if (strcmp(m, "PUT") == 0) {
            if (p->nul[1]) {
                r->close = true;
                send_error(r, 400, NULL, "file name contains a NUL byte");
            } else {
                handle_put(r, p->seg[1]);
            }
        } else
            method_not_allowed(r, "GET, HEAD, PUT");
    } else {
        send_error(r, 404, NULL, "no such route");
    }
}

int handle_request(struct mg_connection *conn, void *cbdata)
{
    struct req r;
    struct path p;
    double t0 = now_mono();
    unsigned uploads;

    memset(&r, 0, sizeof(r));
    r.srv = cbdata;
    r.conn = conn;
    r.ri = mg_get_request_info(conn);
    r.head = strcmp(r.ri->request_method, "HEAD") == 0;
    uploads = conns_enter(r.srv, r.ri, strcmp(r.ri->request_method, "PUT") == 0);
    /* A body nobody reads is not worth draining: close after replying.
     * The upload route reads its body and decides for itself. */
    if (r.ri->content_length > 0 || mg_get_header(conn, "Transfer-Encoding"))
        r.close = true;

    if (atomic_load(&r.srv->closing)) {
        r.close = true;
        memset(&p, 0, sizeof(p));
        send_error(&r, 503, "Retry-After: 5\r\n", "the server is stopping");
    } else if (uploads > MAX_UPLOADS_PER_ADDR) {
        r.close = true;
        memset(&p, 0, sizeof(p));
        send_error(&r, 503, "Retry-After: 5\r\n",
                   "too many uploads at once from %s (at most %d)",
                   r.ri->remote_addr, MAX_UPLOADS_PER_ADDR);
    } else if (!path_split(&p, r.ri->local_uri))
        send_error(&r, 500, NULL, "out of memory");
    else if (p.n < 0)
        send_error(&r, 404, NULL, "no such route");
    else
        route(&r, &p);
    path_free(&p);
    if (!r.status)
        send_error(&r, 500, NULL, "no reply");
    access_log(&r, t0);
    conns_leave(r.srv, r.ri);
    return r.status;
}

/* Errors civetweb answers itself (a malformed request line, headers too
 * large): JSON too. */
int handle_http_error(struct mg_connection *conn, int status, const char *msg)
{
    struct req r;

    memset(&r, 0, sizeof(r));
    r.srv = mg_get_user_data(mg_get_context(conn));
    r.conn = conn;
    r.ri = mg_get_request_info(conn);
    r.close = true;
    if (r.ri->request_method)
        r.head = strcmp(r.ri->request_method, "HEAD") == 0;
    send_error(&r, status, NULL, "%s",
               msg && *msg ? msg : mg_get_response_code_text(conn, status));
    access_log(&r, now_mono());
    return 0;
}
