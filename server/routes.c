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
 *
 * Accounts (auth.c): before any route, gate() asks auth_check whether the
 * request may do what its route needs (route_need).  While no account
 * exists every route is open, as the origin's clients expect.
 *   GET|HEAD /login                  the login page (public)
 *   POST     /api/auth/login         {username, password} -> session cookie
 *   POST     /api/auth/setup         the first (admin) account; only from
 *                                    this machine, only while none exists
 *   POST     /api/auth/logout        end this session
 *   POST     /api/auth/logout-all    end every session of this user
 *   GET      /api/auth/me            who am I (or: open, may set up)
 *   GET|POST /api/keys               this user's API keys / a new one
 *   DELETE   /api/keys/<id>          revoke one
 */
#include "server.h"
#include "web-assets.h"
#include "tus.h"

#include <cjson/cJSON.h>
#include <sodium.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SEGS 4
/* Largest JSON body of the account routes. */
#define AUTH_BODY_MAX 4096

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
    {
        /* How changes on disk are seen: "inotify" (as they happen),
         * "polling" (a scan every minute, with why) or "off". */
        mi_watch_info wi = MI_WATCH_INFO_INIT;
        mi_watch_mode m = mi_watch_state(srv->watch, &wi);
        cJSON *w = cJSON_AddObjectToObject(o, "watch");
        if (w) {
            cJSON_AddStringToObject(w, "mode", m == MI_WATCH_INOTIFY ? "inotify"
                                               : m == MI_WATCH_POLLING ? "polling"
                                                                       : "off");
            if (m == MI_WATCH_POLLING)
                cJSON_AddStringToObject(w, "reason", wi.reason);
            cJSON_AddNumberToObject(w, "folders", (double)wi.folders);
            cJSON_AddNumberToObject(w, "scans", (double)wi.scans);
        }
    }
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

static void route_derived(struct req *r, const struct path *p, int i,
                          const struct derived *d)
{
    uint8_t hash[MI_HASH_SIZE];
    char hex[MI_HASH_HEX_LEN + 1], rel[128], etag[96];
    const struct hot_file *f;
    mi_status s;
    int fd;

    if (!url_hash(r, p, i, hash, hex))
        return;
    /* Fast path: the file is on disk (the scan removes those of contents
     * that are gone), its bytes often in memory already. */
    snprintf(rel, sizeof(rel), ".thumbnails/%s%s", hex, d->suffix);
    snprintf(etag, sizeof(etag), "\"%s%s\"", hex, d->suffix);
    if ((f = hot_get(r->srv->hot, rel)) != NULL) {
        send_hot(r, f, d->type, etag, "public, max-age=86400");
        hot_put(r->srv->hot, f);
        return;
    }
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
    if (d != &preview && (f = hot_load(r->srv->hot, rel, fd)) != NULL) {
        send_hot(r, f, d->type, etag, "public, max-age=86400");
        hot_put(r->srv->hot, f);
    } else {
        send_file(r, fd, d->type, etag, "public, max-age=86400", false);
    }
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

/* GET /thumbnail/<sha256>[?size=256|512]; the hash is segment i. */
static void route_thumbnail(struct req *r, const struct path *p, int i)
{
    char size[8];

    query_var(r, "size", size, sizeof(size));
    if (!*size || strcmp(size, "256") == 0)
        route_derived(r, p, i, &thumbnail);
    else if (strcmp(size, "512") == 0)
        route_derived(r, p, i, &large);
    else
        send_error(r, 400, NULL, "size must be 256 (the PNG thumbnail) or "
                                 "512 (a JPEG for HiDPI grids)");
}

/* GET /list, /list?from=D&to=D, /list/date/D, /list/daterange/A/B. */
/* A search parameter (q, place): false, with a 400 sent, when it is too
 * long or holds a NUL byte. */
static bool search_var(struct req *r, const char *name, char *buf, size_t len)
{
    const char *q = r->ri->query_string;
    int n = q ? mg_get_var(q, strlen(q), name, buf, len) : -1;

    if (n == -1) {
        buf[0] = '\0';
        return true;
    }
    if (n < 0 || strlen(buf) != (size_t)n) {
        send_error(r, 400, NULL, "%s: longer than %zu bytes or holds a NUL "
                   "byte", name, len - 1);
        return false;
    }
    return true;
}

/* GET /list, /list/date/D, /list/daterange/A/B, /list/location/CITY and
 * /list/location/CITY/COUNTRY (the origin's routes), each with ?q= (the
 * search language) and ?place=. */
static void route_list_filtered(struct req *r, const struct path *p)
{
    char from[32] = "", to[32] = "", format[16] = "", q[1100], place[256];
    struct list_query lq = { from, to, q, place, NULL, NULL, false, 0 };

    query_var(r, "format", format, sizeof(format));
    if (*format && strcmp(format, "json") != 0 && strcmp(format, "ndjson") != 0) {
        send_error(r, 400, NULL, "format must be json or ndjson");
        return;
    }
    if (!search_var(r, "q", q, sizeof(q)) ||
        !search_var(r, "place", place, sizeof(place)))
        return;
    if (p->n == 1) {
        query_var(r, "from", from, sizeof(from));
        query_var(r, "to", to, sizeof(to));
    } else if (p->n == 3 && is(p, 1, "date")) {
        snprintf(from, sizeof(from), "%s", p->seg[2]);
        snprintf(to, sizeof(to), "%s", p->seg[2]);
    } else if (is(p, 1, "location")) {
        if (p->nul[2] || (p->n == 4 && p->nul[3]) || !*p->seg[2]) {
            send_error(r, 400, NULL, "a place name must not be empty or "
                       "hold a NUL byte");
            return;
        }
        lq.city = p->seg[2];
        lq.country = p->n == 4 ? p->seg[3] : NULL;
    } else {
        snprintf(from, sizeof(from), "%s", p->seg[2]);
        snprintf(to, sizeof(to), "%s", p->seg[3]);
    }
    lq.ndjson = strcmp(format, "ndjson") == 0;
    route_list_query(r, &lq);
}

/* ---------------------------------------------------------------------- */
/* Accounts: who is asking, the gate, the account routes                   */

#define WWW_AUTHENTICATE "WWW-Authenticate: Bearer realm=\"mediaindex\"\r\n"

/* The client's address (client_address()), and whether it used TLS: only
 * a trusted proxy is asked. */
static void find_client(struct req *r)
{
    const char *proto;

    r->proxied = client_address(r->srv, r->ri, r->client, &r->client_ip);
    if (!r->proxied)
        return;
    proto = mg_get_header(r->conn, "X-Forwarded-Proto");
    r->https = proto && strcasecmp(proto, "https") == 0;
}

static bool is_loopback(const char *a)
{
    return strncmp(a, "127.", 4) == 0 || strcmp(a, "::1") == 0 ||
           strncmp(a, "::ffff:127.", 11) == 0;
}

/* From this machine, and not relayed by a proxy we were not told of (a
 * proxy on this machine makes every client look local). */
static bool local_client(const struct req *r)
{
    if (!is_loopback(r->client))
        return false;
    if (r->proxied)
        return true;
    return !mg_get_header(r->conn, "X-Forwarded-For") &&
           !mg_get_header(r->conn, "X-Real-IP") &&
           !mg_get_header(r->conn, "Forwarded");
}

static void send_asset_status(struct req *r, int status, const char *path,
                              const char *more)
{
    const struct mi_web_asset *a = mi_web_asset_find(path);
    char extra[1024];

    if (!a) {
        send_error(r, 500, NULL, "missing asset %s", path);
        return;
    }
    snprintf(extra, sizeof(extra), "%s" GALLERY_HEADERS, more ? more : "");
    send_headers(r, status, a->mime, (int64_t)a->len, extra);
    send_body(r, a->data, a->len);
}

/* The account store; while there is none, try to make it (every few
 * seconds).  NULL with *closed when a store exists but cannot be opened. */
static auth *server_auth(struct server *srv, bool *closed)
{
    auth *a = atomic_load(&srv->auth);
    char err[512];

    *closed = false;
    if (a)
        return a;
    pthread_mutex_lock(&srv->auth_lock);
    if (!(a = atomic_load(&srv->auth)) && now_mono() >= srv->auth_retry) {
        srv->auth_retry = now_mono() + 5;
        a = auth_open(srv->root, err, sizeof(err));
        if (a) {
            atomic_store(&srv->auth, a);
            fprintf(stderr, "media-server: the account store is open now\n");
        }
    }
    pthread_mutex_unlock(&srv->auth_lock);
    if (!a && auth_store_may_have_accounts(srv->root))
        *closed = true;
    return a;
}

/* May this request go on to its route?  Otherwise it has been answered. */
static bool gate(struct req *r, enum auth_need need)
{
    struct auth_request *q = &r->arq;
    char scopes[32];
    bool closed;
    auth *a = server_auth(r->srv, &closed);

    if (closed) {
        send_error(r, 503, "Retry-After: 5\r\n", "the account store cannot "
                   "be opened");
        return false;
    }

    q->method = r->ri->request_method;
    q->cookie = mg_get_header(r->conn, "Cookie");
    q->authorization = mg_get_header(r->conn, "Authorization");
    q->api_key = mg_get_header(r->conn, "X-Api-Key");
    q->sec_fetch_site = mg_get_header(r->conn, "Sec-Fetch-Site");
    q->origin = mg_get_header(r->conn, "Origin");
    q->host = mg_get_header(r->conn, "Host");
    r->verdict = auth_check(a, q, need, &r->who);
    r->authed = r->who.via != AUTH_VIA_NONE;
    switch (r->verdict) {
    case AUTH_OPEN:
    case AUTH_ALLOW:
        return true;
    case AUTH_UNAUTHENTICATED:
        if (strcmp(r->ri->local_uri, "/") == 0 && get_or_head(r) &&
            !q->authorization && !q->api_key) {
            /* The gallery without a session: the login page. */
            send_asset_status(r, 401, "/static/login.html", WWW_AUTHENTICATE);
            return false;
        }
        send_error(r, 401, WWW_AUTHENTICATE,
                   q->authorization || q->api_key
                       ? "invalid, expired or revoked API key"
                       : "log in first, or send an API key (Authorization: "
                         "Bearer <key>)");
        return false;
    case AUTH_FORBIDDEN:
        if (r->who.via == AUTH_VIA_KEY)
            send_error(r, 403, NULL, "this API key (scopes %s) of %s (%s) "
                       "may not do this",
                       auth_scopes_format(r->who.scopes, scopes, sizeof(scopes)),
                       r->who.user, auth_role_name(r->who.role));
        else
            send_error(r, 403, NULL, "%s (%s) may not do this", r->who.user,
                       auth_role_name(r->who.role));
        return false;
    case AUTH_CROSS_ORIGIN:
        fprintf(stderr, "media-server: cross-origin %s refused (Origin %s, "
                "Sec-Fetch-Site %s) from %s\n", q->method,
                q->origin && utf8_valid(q->origin) && strlen(q->origin) < 200
                    ? q->origin : "-",
                q->sec_fetch_site && strlen(q->sec_fetch_site) < 40 &&
                utf8_valid(q->sec_fetch_site) ? q->sec_fetch_site : "-",
                r->client);
        send_error(r, 403, NULL, "cross-origin request refused: a session "
                   "cookie is only good from this site's own pages");
        return false;
    case AUTH_FAILED:
        break;
    }
    send_error(r, 500, NULL, "cannot check the credentials");
    return false;
}

/* A JSON object body of at most `cap` bytes, or NULL (answered). */
static cJSON *read_json_max(struct req *r, size_t cap)
{
    const char *ct = mg_get_header(r->conn, "Content-Type");
    long long len = r->ri->content_length;
    char *buf;
    size_t got = 0;
    cJSON *o;

    r->close = true;
    if (!ct || strncasecmp(ct, "application/json", 16) != 0) {
        send_error(r, 415, NULL, "send a JSON body (Content-Type: "
                   "application/json)");
        return NULL;
    }
    if (len < 0) {
        send_error(r, 411, NULL, "a Content-Length is required");
        return NULL;
    }
    if ((unsigned long long)len > cap) {
        send_error(r, 413, NULL, "body larger than %zu bytes", cap);
        return NULL;
    }
    if (!(buf = malloc((size_t)len + 1))) {
        send_error(r, 500, NULL, "out of memory");
        return NULL;
    }
    while (got < (size_t)len) {
        int n = mg_read(r->conn, buf + got, (size_t)len - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got != (size_t)len) {
        free(buf);
        send_error(r, 400, NULL, "incomplete body");
        return NULL;
    }
    buf[got] = '\0';
    r->close = false;
    o = cJSON_ParseWithLength(buf, got);
    free(buf);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        send_error(r, 400, NULL, "the body is not a JSON object");
        return NULL;
    }
    return o;
}

static cJSON *read_json(struct req *r)
{
    return read_json_max(r, AUTH_BODY_MAX);
}

static const char *json_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

static void session_cookie(const struct req *r, char *buf, size_t len,
                           const char *token, long max_age)
{
    snprintf(buf, len, "Set-Cookie: " AUTH_COOKIE "=%s; Path=/; Max-Age=%ld; "
             "HttpOnly; SameSite=Lax%s\r\nCache-Control: no-store\r\n",
             token, max_age, r->https ? "; Secure" : "");
}

static cJSON *identity_object(const struct auth_identity *w)
{
    cJSON *o = cJSON_CreateObject(), *sc;
    char scopes[32];

    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "mode", "accounts");
    cJSON_AddStringToObject(o, "user", w->user);
    cJSON_AddStringToObject(o, "role", auth_role_name(w->role));
    cJSON_AddStringToObject(o, "via", w->via == AUTH_VIA_KEY ? "key" : "session");
    sc = cJSON_AddArrayToObject(o, "scopes");
    auth_scopes_format(w->scopes, scopes, sizeof(scopes));
    for (char *sv, *t = strtok_r(scopes, ",", &sv); sc && t;
         t = strtok_r(NULL, ",", &sv))
        cJSON_AddItemToArray(sc, cJSON_CreateString(t));
    return o;
}

/* POST /api/auth/login and (first run) POST /api/auth/setup. */
static void route_login(struct req *r, bool setup)
{
    char token[AUTH_TOKEN_TEXT + 1], extra[512], err[256];
    const char *user, *pw;
    struct auth_identity who;
    unsigned retry = 0;
    long max_age = 0;
    enum auth_login_result res;
    cJSON *body;

    /* No logging in from another site's page (login CSRF). */
    if (!auth_same_origin(&r->arq)) {
        send_error(r, 403, NULL, "cross-origin login refused");
        return;
    }
    if (setup) {
        if (r->verdict != AUTH_OPEN) {
            send_error(r, 409, NULL, "an account exists already: log in");
            return;
        }
        if (!r->srv->auth) {
            send_error(r, 503, NULL, "no account store: the storage folder "
                       "is read-only");
            return;
        }
        if (!local_client(r)) {
            send_error(r, 403, NULL, "the first account can only be created "
                       "from the server's own machine (or with media-server "
                       "user add)");
            return;
        }
    } else if (r->verdict == AUTH_OPEN) {
        send_error(r, 409, NULL, "there are no accounts yet: create the admin "
                   "account first");
        return;
    }
    if (!(body = read_json(r)))
        return;
    user = json_str(body, "username");
    pw = json_str(body, "password");
    if (!user || !pw) {
        cJSON_Delete(body);
        send_error(r, 400, NULL, "expected {\"username\": ..., \"password\": ...}");
        return;
    }
    if (setup) {
        if (auth_user_add_first(r->srv->auth, user, pw, err, sizeof(err)) != 0) {
            cJSON_Delete(body);
            send_error(r, 400, NULL, "%s", err);
            return;
        }
        fprintf(stderr, "media-server: admin account \"%s\" created from %s\n",
                user, r->client);
    }
    res = auth_login(r->srv->auth, user, pw, r->client, token, &max_age, &retry,
                     &who);
    cJSON_Delete(body);
    /* A failed login closes its connection: a flood of wrong passwords on
     * keep-alive connections would otherwise hold every worker thread
     * (one per connection) and lock logged-in users out. */
    r->close = res != AUTH_LOGIN_OK;
    switch (res) {
    case AUTH_LOGIN_OK:
        session_cookie(r, extra, sizeof(extra), token, max_age);
        sodium_memzero(token, sizeof(token));
        r->who = who;
        send_cjson(r, setup ? 201 : 200, identity_object(&who), extra);
        return;
    case AUTH_LOGIN_WRONG:
        send_error(r, 401, WWW_AUTHENTICATE, "wrong user name or password");
        return;
    case AUTH_LOGIN_THROTTLED:
        snprintf(extra, sizeof(extra), "Retry-After: %u\r\n", retry);
        send_error(r, 429, extra, "too many failed logins: try again in %u "
                   "seconds", retry);
        return;
    case AUTH_LOGIN_BUSY:
        send_error(r, 503, "Retry-After: 1\r\n", "too many logins at once: "
                   "try again in a moment");
        return;
    case AUTH_LOGIN_ERROR:
        break;
    }
    send_error(r, 500, NULL, "cannot log in: the account store failed");
}

static void route_auth(struct req *r, const struct path *p)
{
    bool post = strcmp(r->ri->request_method, "POST") == 0;
    const char *clear = "Set-Cookie: " AUTH_COOKIE "=; Path=/; Max-Age=0; "
                        "HttpOnly; SameSite=Lax\r\nCache-Control: no-store\r\n";

    if (is(p, 2, "me")) {
        cJSON *o;

        if (!get_or_head(r)) {
            method_not_allowed(r, "GET, HEAD");
            return;
        }
        if (r->verdict == AUTH_OPEN) {
            o = cJSON_CreateObject();
            if (o) {
                cJSON_AddStringToObject(o, "mode", "open");
                cJSON_AddBoolToObject(o, "can_setup",
                                      r->srv->auth && local_client(r));
            }
        } else {
            o = identity_object(&r->who);
        }
        send_cjson(r, 200, o, "Cache-Control: no-store\r\n");
        return;
    }
    if (!post) {
        method_not_allowed(r, "POST");
        return;
    }
    if (is(p, 2, "login") || is(p, 2, "setup")) {
        route_login(r, is(p, 2, "setup"));
    } else if (r->verdict == AUTH_OPEN) {
        send_error(r, 409, NULL, "there are no accounts: nothing to log out of");
    } else if (is(p, 2, "logout")) {
        if (r->who.via != AUTH_VIA_SESSION)
            send_error(r, 400, NULL, "not a session: an API key is revoked, "
                       "not logged out");
        else if (auth_logout(r->srv->auth, &r->who) != 0)
            send_error(r, 500, NULL, "cannot end the session");
        else
            send_json(r, 200, "{\"logged_out\":1}", clear);
    } else if (is(p, 2, "logout-all")) {
        if (auth_logout_all(r->srv->auth, r->who.user_id) != 0)
            send_error(r, 500, NULL, "cannot end the sessions");
        else
            send_json(r, 200, "{\"logged_out\":\"everywhere\"}",
                      r->who.via == AUTH_VIA_SESSION ? clear : NULL);
    } else {
        send_error(r, 404, NULL, "no such route");
    }
}

static void add_key_json(const struct auth_key_info *k, void *payload)
{
    cJSON *list = payload, *o = cJSON_CreateObject(), *sc;
    char scopes[32];

    if (!o || !cJSON_AddItemToArray(list, o)) {
        cJSON_Delete(o);
        return;
    }
    cJSON_AddNumberToObject(o, "id", (double)k->id);
    json_add_string(o, "name", k->name);
    cJSON_AddStringToObject(o, "prefix", k->prefix);
    sc = cJSON_AddArrayToObject(o, "scopes");
    auth_scopes_format(k->scopes, scopes, sizeof(scopes));
    for (char *sv, *t = strtok_r(scopes, ",", &sv); sc && t;
         t = strtok_r(NULL, ",", &sv))
        cJSON_AddItemToArray(sc, cJSON_CreateString(t));
    cJSON_AddNumberToObject(o, "created", (double)k->created);
    if (k->last_used)
        cJSON_AddNumberToObject(o, "last_used", (double)k->last_used);
    else
        cJSON_AddNullToObject(o, "last_used");
    if (k->expires)
        cJSON_AddNumberToObject(o, "expires", (double)k->expires);
    else
        cJSON_AddNullToObject(o, "expires");
}

/* GET /api/keys, POST /api/keys {name, scopes}, DELETE /api/keys/<id>:
 * the keys of the user asking. */
static void route_keys(struct req *r, const struct path *p)
{
    const char *m = r->ri->request_method;
    char err[256];

    if (r->verdict == AUTH_OPEN) {
        send_error(r, 409, NULL, "there are no accounts yet: API keys belong "
                   "to an account");
        return;
    }
    if (p->n == 2 && get_or_head(r)) {
        cJSON *o = cJSON_CreateObject();
        cJSON *list = o ? cJSON_AddArrayToObject(o, "keys") : NULL;

        if (!list || auth_key_list(r->srv->auth, r->who.user_id, add_key_json,
                                   list) != 0) {
            cJSON_Delete(o);
            o = NULL;
        }
        send_cjson(r, 200, o, "Cache-Control: no-store\r\n");
    } else if (p->n == 2 && strcmp(m, "POST") == 0) {
        cJSON *body = read_json(r), *sc, *o;
        const char *name;
        unsigned int scopes = 0;
        char key[AUTH_KEY_TEXT + 1];
        int64_t id = 0;

        if (!body)
            return;
        name = json_str(body, "name");
        sc = cJSON_GetObjectItemCaseSensitive(body, "scopes");
        if (!sc) {
            scopes = AUTH_SCOPE_READ |
                     (r->who.role >= AUTH_ROLE_MEMBER ? AUTH_SCOPE_UPLOAD : 0);
        } else if (cJSON_IsString(sc)) {
            scopes = auth_scopes_parse(sc->valuestring);
        } else if (cJSON_IsArray(sc) && cJSON_GetArraySize(sc) <= 3) {
            const cJSON *e;
            cJSON_ArrayForEach(e, sc) {
                unsigned int b = cJSON_IsString(e)
                                     ? auth_scopes_parse(e->valuestring) : 0;
                if (!b) {
                    scopes = 0;
                    break;
                }
                scopes |= b;
            }
        }
        if (!name || !utf8_valid(name) || !scopes) {
            cJSON_Delete(body);
            send_error(r, 400, NULL, "expected {\"name\": \"...\", \"scopes\": "
                       "[\"read\", \"upload\", \"admin\"]}");
            return;
        }
        if (auth_key_create(r->srv->auth, r->who.user, name, scopes, 0, key, &id,
                            err, sizeof(err)) != 0) {
            cJSON_Delete(body);
            send_error(r, 400, NULL, "%s", err);
            return;
        }
        /* The key itself, this once, beside what the list will show. */
        o = cJSON_CreateArray();
        {
            char prefix[16];
            struct auth_key_info k = { id, r->who.user, name, prefix, scopes,
                                       (int64_t)now_epoch(), 0, 0 };
            cJSON *e;

            snprintf(prefix, sizeof(prefix), "%.12s", key);
            if (o)
                add_key_json(&k, o);
            e = cJSON_DetachItemFromArray(o, 0);
            cJSON_Delete(o);
            o = e;
        }
        cJSON_Delete(body);
        if (o && !cJSON_AddStringToObject(o, "key", key)) {
            cJSON_Delete(o);
            o = NULL;
        }
        sodium_memzero(key, sizeof(key));
        send_cjson(r, 201, o, "Cache-Control: no-store\r\n");
    } else if (p->n == 3 && strcmp(m, "DELETE") == 0) {
        char *end;
        long long id;

        errno = 0;
        id = strtoll(p->seg[2], &end, 10);
        if (errno || *end || id <= 0 || p->nul[2]) {
            send_error(r, 400, NULL, "a key id is a positive number");
            return;
        }
        /* An admin (scope admin) may revoke anybody's key. */
        if (auth_key_revoke(r->srv->auth, id,
                            r->who.role == AUTH_ROLE_ADMIN ? 0 : r->who.user_id,
                            err, sizeof(err)) != 0)
            send_error(r, 404, NULL, "%s", err);
        else
            send_json(r, 200, "{\"revoked\":true}", NULL);
    } else if (p->n == 2) {
        method_not_allowed(r, "GET, HEAD, POST");
    } else if (p->n == 3) {
        method_not_allowed(r, "DELETE");
    } else {
        send_error(r, 404, NULL, "no such route");
    }
}

/* ---------------------------------------------------------------------- */
/* Share links                                                             */

/* Largest POST /api/shares body: a selection of AUTH_SHARE_ITEMS_MAX
 * hashes (67 bytes each in JSON) and the rest. */
#define SHARE_BODY_MAX ((size_t)AUTH_SHARE_ITEMS_MAX * 70 + 4096)
/* Longest expiry: about ten years. */
#define SHARE_EXPIRES_MAX ((int64_t)10 * 366 * 86400)

#define SHARE_AUTHENTICATE "WWW-Authenticate: SharePassword realm=\"mediaindex\"\r\n"

/* The link of /s/<token>/...: OK (its items may be shown), or answered
 * (404 no such link, 401 locked) unless `locked_ok` and it is locked. */
static enum auth_share_verdict share_open(struct req *r, const struct path *p,
                                          struct auth_share *sh, bool locked_ok)
{
    enum auth_share_verdict v = AUTH_SHARE_NONE;

    /* Nothing of a link may stay in a shared cache. */
    r->authed = true;
    if (!p->nul[1])
        v = auth_share_open(atomic_load(&r->srv->auth), p->seg[1],
                            mg_get_header(r->conn, "Cookie"), sh);
    switch (v) {
    case AUTH_SHARE_OK:
        return v;
    case AUTH_SHARE_LOCKED:
        if (!locked_ok)
            send_json(r, 401, "{\"error\":\"this link needs its password\","
                      "\"password_required\":true}", SHARE_AUTHENTICATE);
        return v;
    case AUTH_SHARE_NONE:
        send_error(r, 404, NULL, "no such link: it may have expired or been "
                   "revoked");
        return v;
    case AUTH_SHARE_ERROR:
        break;
    }
    send_error(r, 500, NULL, "cannot read the share link");
    return AUTH_SHARE_ERROR;
}

/* Is this hash one of the link's items?  (A range: the item's date.) */
static bool share_contains(struct req *r, const struct auth_share *sh,
                           const uint8_t hash[MI_HASH_SIZE])
{
    mi_entry *e = NULL;
    int64_t lo, hi, d;

    if (sh->kind == AUTH_SHARE_ITEMS)
        return auth_share_has(atomic_load(&r->srv->auth), sh, hash);
    if (!list_day_range(sh->from, sh->to, &lo, &hi) ||
        mi_lookup(&e, r->srv->idx, hash) != MI_OK)
        return false;
    d = mi_entry_creation_date(e);
    mi_entry_free(e);
    return d >= lo && d < hi;
}

static unsigned int share_hide(const struct auth_share *sh)
{
    return LIST_NO_PATH | ((sh->flags & AUTH_SHARE_GPS) ? 0 : LIST_NO_GPS);
}

/* GET /s/<token>: the gallery, which sees its path and shows the link. */
static void route_share_page(struct req *r, const struct path *p)
{
    struct auth_share sh;
    enum auth_share_verdict v = AUTH_SHARE_NONE;

    r->authed = true;
    if (!p->nul[1])
        v = auth_share_open(atomic_load(&r->srv->auth), p->seg[1], NULL, &sh);
    /* A link gone is said by the page itself (it asks /info). */
    send_asset_status(r, v == AUTH_SHARE_NONE ? 404 : 200, "/",
                      "Cache-Control: no-store\r\n");
}

static void route_share_info(struct req *r, const struct path *p)
{
    struct auth_share sh;
    enum auth_share_verdict v = share_open(r, p, &sh, true);
    cJSON *o;

    if (v != AUTH_SHARE_OK && v != AUTH_SHARE_LOCKED)
        return;
    o = cJSON_CreateObject();
    if (o && v == AUTH_SHARE_LOCKED) {
        cJSON_AddBoolToObject(o, "locked", true);
    } else if (o) {
        cJSON_AddBoolToObject(o, "locked", false);
        json_add_string(o, "name", sh.label);
        cJSON_AddStringToObject(o, "kind", sh.kind == AUTH_SHARE_ITEMS
                                               ? "items" : "range");
        if (sh.kind == AUTH_SHARE_RANGE) {
            cJSON_AddStringToObject(o, "from", sh.from);
            cJSON_AddStringToObject(o, "to", sh.to);
        } else {
            cJSON_AddNumberToObject(o, "count", (double)sh.nitems);
        }
        cJSON_AddBoolToObject(o, "gps", (sh.flags & AUTH_SHARE_GPS) != 0);
        cJSON_AddBoolToObject(o, "originals",
                              (sh.flags & AUTH_SHARE_ORIGINALS) != 0);
        if (sh.expires)
            cJSON_AddNumberToObject(o, "expires", (double)sh.expires);
        else
            cJSON_AddNullToObject(o, "expires");
    }
    send_cjson(r, 200, o, "Cache-Control: no-store\r\n");
}

static void route_share_list(struct req *r, const struct path *p)
{
    struct auth_share sh;
    uint8_t (*h)[32] = NULL;
    size_t n = 0;

    if (share_open(r, p, &sh, false) != AUTH_SHARE_OK)
        return;
    if (sh.kind == AUTH_SHARE_RANGE) {
        route_list_ex(r, sh.from, sh.to, true, share_hide(&sh));
        return;
    }
    if (auth_share_items(atomic_load(&r->srv->auth), &sh, &h, &n) != 0) {
        send_error(r, 500, NULL, "cannot read the share link");
        return;
    }
    route_list_hashes(r, (const uint8_t (*)[32])h, n, share_hide(&sh));
    free(h);
}

/* /s/<token>/thumbnail|preview|image/<sha256>: of the link's items only. */
static void route_share_media(struct req *r, const struct path *p)
{
    struct auth_share sh;
    uint8_t hash[MI_HASH_SIZE];
    char hex[MI_HASH_HEX_LEN + 1];

    if (share_open(r, p, &sh, false) != AUTH_SHARE_OK)
        return;
    if (!url_hash(r, p, 3, hash, hex))
        return;
    /* The same answer as for a hash nobody has: no oracle of the rest. */
    if (!share_contains(r, &sh, hash)) {
        send_error(r, 404, NULL, "no image with this hash");
        return;
    }
    if (is(p, 2, "thumbnail")) {
        route_thumbnail(r, p, 3);
    } else if (is(p, 2, "preview")) {
        route_derived(r, p, 3, &preview);
    } else if (!(sh.flags & AUTH_SHARE_ORIGINALS)) {
        send_error(r, 403, NULL, "the owner of this link did not share the "
                   "original files");
    } else {
        route_image(r, p, 3);
    }
}

static void route_share_formats(struct req *r, const struct path *p)
{
    struct auth_share sh;

    if (share_open(r, p, &sh, false) == AUTH_SHARE_OK)
        route_formats(r);
}

/* POST /s/<token>/unlock {"password": ...}: a cookie for this link's path. */
static void route_share_unlock(struct req *r, const struct path *p)
{
    char grant[AUTH_GRANT_TEXT + 1], extra[512];
    struct auth_share sh;
    unsigned retry = 0;
    long max_age = 0;
    const char *pw;
    cJSON *body;
    enum auth_login_result res;

    if (share_open(r, p, &sh, true) == AUTH_SHARE_NONE ||
        sh.id == 0)
        return;
    if (!auth_same_origin(&r->arq)) {
        send_error(r, 403, NULL, "cross-origin request refused");
        return;
    }
    if (!(body = read_json(r)))
        return;
    pw = json_str(body, "password");
    if (!pw) {
        cJSON_Delete(body);
        send_error(r, 400, NULL, "expected {\"password\": ...}");
        return;
    }
    res = auth_share_unlock(atomic_load(&r->srv->auth), p->seg[1], pw,
                            r->client, grant, &max_age, &retry);
    cJSON_Delete(body);
    r->close = res != AUTH_LOGIN_OK;       /* as for logins */
    switch (res) {
    case AUTH_LOGIN_OK:
        snprintf(extra, sizeof(extra), "Set-Cookie: " AUTH_SHARE_COOKIE
                 "=%s; Path=/s/%s; Max-Age=%ld; HttpOnly; SameSite=Lax%s\r\n"
                 "Cache-Control: no-store\r\n", grant, p->seg[1], max_age,
                 r->https ? "; Secure" : "");
        sodium_memzero(grant, sizeof(grant));
        send_json(r, 200, "{\"unlocked\":true}", extra);
        return;
    case AUTH_LOGIN_WRONG:
        send_error(r, 401, SHARE_AUTHENTICATE, "wrong password");
        return;
    case AUTH_LOGIN_THROTTLED:
        snprintf(extra, sizeof(extra), "Retry-After: %u\r\n", retry);
        send_error(r, 429, extra, "too many wrong passwords: try again in %u "
                   "seconds", retry);
        return;
    case AUTH_LOGIN_BUSY:
        send_error(r, 503, "Retry-After: 1\r\n", "too many at once: try again "
                   "in a moment");
        return;
    case AUTH_LOGIN_ERROR:
        break;
    }
    send_error(r, 500, NULL, "cannot check the password");
}

static void add_share_json(const struct auth_share *sh, const char *owner,
                           void *payload)
{
    cJSON *list = payload, *o = cJSON_CreateObject();

    if (!o || !cJSON_AddItemToArray(list, o)) {
        cJSON_Delete(o);
        return;
    }
    cJSON_AddNumberToObject(o, "id", (double)sh->id);
    json_add_string(o, "name", sh->label);
    json_add_string(o, "owner", owner);
    cJSON_AddStringToObject(o, "kind", sh->kind == AUTH_SHARE_ITEMS ? "items"
                                                                     : "range");
    if (sh->kind == AUTH_SHARE_RANGE) {
        cJSON_AddStringToObject(o, "from", sh->from);
        cJSON_AddStringToObject(o, "to", sh->to);
    } else {
        cJSON_AddNumberToObject(o, "count", (double)sh->nitems);
    }
    cJSON_AddBoolToObject(o, "password", sh->password);
    cJSON_AddBoolToObject(o, "gps", (sh->flags & AUTH_SHARE_GPS) != 0);
    cJSON_AddBoolToObject(o, "originals",
                          (sh->flags & AUTH_SHARE_ORIGINALS) != 0);
    cJSON_AddNumberToObject(o, "created", (double)sh->created);
    if (sh->expires)
        cJSON_AddNumberToObject(o, "expires", (double)sh->expires);
    else
        cJSON_AddNullToObject(o, "expires");
    cJSON_AddBoolToObject(o, "expired",
                          sh->expires && sh->expires <= (int64_t)now_epoch());
}

static int hash_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

static bool json_flag(const cJSON *o, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* POST /api/shares: {"items": [sha256...]} or {"from": D, "to": D}, and
 * optionally "name", "expires" (epoch seconds) or "expires_in" (seconds),
 * "password", "gps", "originals" (false by default). */
static void route_share_create(struct req *r)
{
    struct auth_share_new n = { 0 };
    cJSON *body = read_json_max(r, SHARE_BODY_MAX), *items, *v, *o;
    uint8_t (*h)[32] = NULL;
    char token[AUTH_TOKEN_TEXT + 1], err[256], url[AUTH_TOKEN_TEXT + 8];
    const char *pw;
    int64_t id = 0, now = (int64_t)now_epoch();
    size_t i = 0;

    if (!body)
        return;
    items = cJSON_GetObjectItemCaseSensitive(body, "items");
    if (items) {
        int count = cJSON_GetArraySize(items);

        if (!cJSON_IsArray(items) || count < 1 ||
            count > AUTH_SHARE_ITEMS_MAX) {
            send_error(r, 400, NULL, "items: an array of 1 to %d sha256 "
                       "hashes", AUTH_SHARE_ITEMS_MAX);
            goto out;
        }
        if (!(h = malloc((size_t)count * sizeof(*h)))) {
            send_error(r, 500, NULL, "out of memory");
            goto out;
        }
        cJSON_ArrayForEach(v, items) {
            mi_entry *e = NULL;
            mi_status s;

            if (!cJSON_IsString(v) || !v->valuestring ||
                mi_hash_from_hex(h[i], v->valuestring) != MI_OK) {
                send_error(r, 400, NULL, "items: a malformed hash (64 "
                           "hexadecimal characters)");
                goto out;
            }
            s = mi_lookup(&e, r->srv->idx, h[i]);
            mi_entry_free(e);
            if (s == MI_ENOTFOUND) {
                char hex[MI_HASH_HEX_LEN + 1];
                mi_hash_to_hex(hex, h[i]);
                send_error(r, 400, NULL, "no item %s", hex);
                goto out;
            }
            if (s != MI_OK) {
                send_mi_error(r, s, "cannot look the items up");
                goto out;
            }
            i++;
        }
        /* Each item once. */
        qsort(h, i, sizeof(*h), hash_cmp);
        n.nitems = i ? 1 : 0;
        for (size_t k = 1; k < i; k++)
            if (memcmp(h[k], h[n.nitems - 1], 32) != 0)
                memcpy(h[n.nitems++], h[k], 32);
        n.kind = AUTH_SHARE_ITEMS;
        n.items = (const uint8_t (*)[32])h;
    } else {
        n.kind = AUTH_SHARE_RANGE;
        n.from = json_str(body, "from") ? json_str(body, "from") : "";
        n.to = json_str(body, "to") ? json_str(body, "to") : "";
    }
    n.label = json_str(body, "name");
    if (n.label && !utf8_valid(n.label)) {
        send_error(r, 400, NULL, "name: not UTF-8");
        goto out;
    }
    pw = json_str(body, "password");
    n.password = pw && *pw ? pw : NULL;
    n.flags = (json_flag(body, "gps") ? AUTH_SHARE_GPS : 0) |
              (json_flag(body, "originals") ? AUTH_SHARE_ORIGINALS : 0);
    if ((v = cJSON_GetObjectItemCaseSensitive(body, "expires_in")) &&
        !cJSON_IsNull(v)) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 1 ||
            v->valuedouble > (double)SHARE_EXPIRES_MAX) {
            send_error(r, 400, NULL, "expires_in: seconds, 1 to %" PRId64,
                       SHARE_EXPIRES_MAX);
            goto out;
        }
        n.expires = now + (int64_t)v->valuedouble;
    } else if ((v = cJSON_GetObjectItemCaseSensitive(body, "expires")) &&
               !cJSON_IsNull(v)) {
        if (!cJSON_IsNumber(v) || v->valuedouble <= (double)now ||
            v->valuedouble > (double)(now + SHARE_EXPIRES_MAX)) {
            send_error(r, 400, NULL, "expires: a time (epoch seconds) in the "
                       "next ten years");
            goto out;
        }
        n.expires = (int64_t)v->valuedouble;
    }
    if (auth_share_create(atomic_load(&r->srv->auth), r->who.user_id, &n,
                          token, &id, err, sizeof(err)) != 0) {
        send_error(r, 400, NULL, "%s", err);
        goto out;
    }
    /* The link itself, this once, beside what the list will show. */
    o = cJSON_CreateArray();
    {
        struct auth_share sh;

        memset(&sh, 0, sizeof(sh));
        sh.id = id;
        sh.kind = n.kind;
        snprintf(sh.from, sizeof(sh.from), "%s", n.kind == AUTH_SHARE_RANGE
                                                      ? n.from : "");
        snprintf(sh.to, sizeof(sh.to), "%s", n.kind == AUTH_SHARE_RANGE
                                                  ? n.to : "");
        snprintf(sh.label, sizeof(sh.label), "%s", n.label ? n.label : "");
        sh.flags = n.flags;
        sh.password = n.password != NULL;
        sh.created = now;
        sh.expires = n.expires;
        sh.nitems = n.nitems;
        if (o)
            add_share_json(&sh, r->who.user, o);
        v = cJSON_DetachItemFromArray(o, 0);
        cJSON_Delete(o);
        o = v;
    }
    snprintf(url, sizeof(url), "/s/%s", token);
    if (o && (!cJSON_AddStringToObject(o, "token", token) ||
              !cJSON_AddStringToObject(o, "url", url))) {
        cJSON_Delete(o);
        o = NULL;
    }
    sodium_memzero(token, sizeof(token));
    sodium_memzero(url, sizeof(url));
    fprintf(stderr, "media-server: %s shared %s (link %" PRId64 ")\n",
            r->who.user, n.kind == AUTH_SHARE_ITEMS ? "items" : "a date range",
            id);
    send_cjson(r, 201, o, "Cache-Control: no-store\r\n");
out:
    free(h);
    cJSON_Delete(body);
}

static void add_user_json(const char *name, enum auth_role role,
                          int64_t created, unsigned nkeys, unsigned nsessions,
                          void *payload)
{
    cJSON *list = payload, *o = cJSON_CreateObject();

    if (!o || !cJSON_AddItemToArray(list, o)) {
        cJSON_Delete(o);
        return;
    }
    json_add_string(o, "name", name);
    cJSON_AddStringToObject(o, "role", auth_role_name(role));
    cJSON_AddNumberToObject(o, "created", (double)created);
    cJSON_AddNumberToObject(o, "keys", nkeys);
    cJSON_AddNumberToObject(o, "sessions", nsessions);
}

/* GET /api/users, POST /api/users {name, role, password},
 * PATCH /api/users/<name> {password}, DELETE /api/users/<name>: what
 * `media-server user ...` does, for an admin in the gallery.  An admin may
 * not delete their own account here (the command line can). */
static void route_users(struct req *r, const struct path *p)
{
    const char *m = r->ri->request_method;
    auth *a = atomic_load(&r->srv->auth);
    char err[256];

    if (r->verdict == AUTH_OPEN) {
        send_error(r, 409, NULL, "there are no accounts yet: make the first "
                   "one (the admin) from this machine");
        return;
    }
    if (p->n == 2 && get_or_head(r)) {
        cJSON *o = cJSON_CreateObject();
        cJSON *list = o ? cJSON_AddArrayToObject(o, "users") : NULL;

        if (!list || auth_user_list(a, add_user_json, list) != 0) {
            cJSON_Delete(o);
            send_error(r, 503, NULL, "the accounts cannot be read");
            return;
        }
        send_cjson(r, 200, o, "Cache-Control: no-store\r\n");
    } else if (p->n == 2) {
        cJSON *body = read_json(r), *o;
        const char *name, *role, *pw;
        enum auth_role ro;

        if (!body)
            return;
        name = json_str(body, "name");
        role = json_str(body, "role");
        pw = json_str(body, "password");
        ro = auth_role_parse(role ? role : "member");
        if (!name || !pw || ro == AUTH_ROLE_NONE) {
            cJSON_Delete(body);
            send_error(r, 400, NULL, "expected {\"name\": \"...\", \"role\": "
                       "\"admin|member|viewer\", \"password\": \"...\"}");
            return;
        }
        if (auth_user_add(a, name, pw, ro, err, sizeof(err)) != 0) {
            cJSON_Delete(body);
            send_error(r, strstr(err, "already exists") ? 409 : 400, NULL,
                       "%s", err);
            return;
        }
        o = cJSON_CreateObject();
        if (o) {
            json_add_string(o, "name", name);
            cJSON_AddStringToObject(o, "role", auth_role_name(ro));
        }
        cJSON_Delete(body);
        send_cjson(r, 201, o, "Cache-Control: no-store\r\n");
    } else if (p->nul[2]) {
        send_error(r, 400, NULL, "a user name holds no NUL byte");
    } else if (strcmp(m, "PATCH") == 0) {
        cJSON *body = read_json(r);
        const char *pw;

        if (!body)
            return;
        pw = json_str(body, "password");
        if (!pw) {
            cJSON_Delete(body);
            send_error(r, 400, NULL, "expected {\"password\": \"...\"}");
            return;
        }
        if (auth_user_passwd(a, p->seg[2], pw, err, sizeof(err)) != 0) {
            cJSON_Delete(body);
            send_error(r, strncmp(err, "no user", 7) == 0 ? 404 : 400, NULL,
                       "%s", err);
            return;
        }
        cJSON_Delete(body);
        send_json(r, 200, "{\"changed\":true}", NULL);
    } else {
        if (strcmp(p->seg[2], r->who.user) == 0) {
            send_error(r, 409, NULL, "you cannot delete your own account "
                       "here (media-server user del can)");
            return;
        }
        if (auth_user_del(a, p->seg[2], err, sizeof(err)) != 0) {
            send_error(r, strncmp(err, "no user", 7) == 0 ? 404 : 409, NULL,
                       "%s", err);
            return;
        }
        send_json(r, 200, "{\"deleted\":true}", NULL);
    }
}

/* GET /api/shares, POST /api/shares, DELETE /api/shares/<id>: the links
 * of the user asking (an admin may list, with ?all=1, and revoke
 * anybody's). */
static void route_shares(struct req *r, const struct path *p)
{
    char err[256];

    if (r->verdict == AUTH_OPEN) {
        /* Open mode: everything is visible to whoever reaches the server,
         * so a link would add nothing but a false sense of privacy. */
        send_error(r, 409, NULL, "there are no accounts: the server is open "
                   "to everyone who reaches it; share links need accounts");
        return;
    }
    if (p->n == 2 && get_or_head(r)) {
        cJSON *o, *list;
        char all[8];

        /* ?all=1: everybody's links, each with its owner (admins). */
        query_var(r, "all", all, sizeof(all));
        if (all[0] && strcmp(all, "1") != 0 && strcmp(all, "0") != 0) {
            send_error(r, 400, NULL, "all is 1 or 0");
            return;
        }
        if (strcmp(all, "1") == 0 && (r->who.role != AUTH_ROLE_ADMIN ||
                                      !(r->who.scopes & AUTH_SCOPE_ADMIN))) {
            send_error(r, 403, NULL, "only an admin (a key: with the admin "
                       "scope) sees everybody's links");
            return;
        }
        o = cJSON_CreateObject();
        list = o ? cJSON_AddArrayToObject(o, "shares") : NULL;
        if (!list || auth_share_list(atomic_load(&r->srv->auth),
                                     strcmp(all, "1") == 0 ? 0
                                                           : r->who.user_id,
                                     add_share_json, list) != 0) {
            cJSON_Delete(o);
            send_error(r, 503, NULL, "share links are not available");
            return;
        }
        send_cjson(r, 200, o, "Cache-Control: no-store\r\n");
    } else if (p->n == 2) {
        route_share_create(r);
    } else {
        char *end;
        long long id;

        errno = 0;
        id = strtoll(p->seg[2], &end, 10);
        if (errno || *end || id <= 0 || p->nul[2]) {
            send_error(r, 400, NULL, "a link id is a positive number");
            return;
        }
        if (auth_share_revoke(atomic_load(&r->srv->auth), id,
                              r->who.role == AUTH_ROLE_ADMIN ? 0
                                                             : r->who.user_id,
                              err, sizeof(err)) != 0)
            send_error(r, 404, NULL, "%s", err);
        else
            send_json(r, 200, "{\"revoked\":true}", NULL);
    }
}

/* ---------------------------------------------------------------------- */
/* The route table                                                         */

static void r_login_page(struct req *r, const struct path *p)
{
    (void)p;
    send_asset_status(r, 200, "/static/login.html", NULL);
}

static void r_list(struct req *r, const struct path *p)
{
    route_list_filtered(r, p);
}

static void r_problems(struct req *r, const struct path *p)
{
    char limit[24];

    (void)p;
    query_var(r, "limit", limit, sizeof(limit));
    route_problems(r, limit);
}

static void r_formats(struct req *r, const struct path *p)
{
    (void)p;
    route_formats(r);
}

static void r_status(struct req *r, const struct path *p)
{
    (void)p;
    route_status(r);
}

static void r_thumbnail(struct req *r, const struct path *p)
{
    route_thumbnail(r, p, 1);
}

static void r_preview(struct req *r, const struct path *p)
{
    route_derived(r, p, 1, &preview);
}

static void r_image(struct req *r, const struct path *p)
{
    route_image(r, p, p->n - 1);
}

static void r_put(struct req *r, const struct path *p)
{
    if (p->nul[1]) {
        r->close = true;
        send_error(r, 400, NULL, "file name contains a NUL byte");
    } else {
        handle_put(r, p->seg[1]);
    }
}

/* tus (tus.c): the collection, or one upload ("-" for a NUL: no such id). */
static void r_tus(struct req *r, const struct path *p)
{
    tus_route(r, p->n < 3 ? NULL : p->nul[2] ? "-" : *p->seg[2] ? p->seg[2]
                                                                : NULL);
}

static void r_check(struct req *r, const struct path *p)
{
    (void)p;
    check_route(r);
}

/* DELETE /image/<sha>: to the trash.  Only a content's whole: every
 * path of it moves. */
static void r_trash_put(struct req *r, const struct path *p)
{
    uint8_t hash[MI_HASH_SIZE];
    char hex[MI_HASH_HEX_LEN + 1], body[160];
    uint64_t moved = 0;
    mi_status s;

    if (!url_hash(r, p, p->n - 1, hash, hex))
        return;
    s = mi_trash_put(r->srv->idx, hash, &moved);
    if (s == MI_ENOTFOUND) {
        send_error(r, 404, NULL, "no image with this hash");
        return;
    }
    if (s != MI_OK) {
        send_mi_error(r, s, "cannot move it to the trash");
        return;
    }
    snprintf(body, sizeof(body), "{\"trashed\":\"%s\",\"files\":%" PRIu64 "}",
             hex, moved);
    send_json(r, 200, body, NULL);
}

/* GET /api/trash; DELETE /api/trash (empty it). */
static void r_trash(struct req *r, const struct path *p)
{
    char body[96];
    uint64_t n = 0;
    mi_status s;

    (void)p;
    if (strcmp(r->ri->request_method, "DELETE") != 0) {
        route_trash_list(r);
        return;
    }
    s = mi_trash_purge(r->srv->idx, NULL, INT64_MAX, &n);
    if (s != MI_OK) {
        send_mi_error(r, s, "cannot empty the trash");
        return;
    }
    snprintf(body, sizeof(body), "{\"purged\":%" PRIu64 "}", n);
    send_json(r, 200, body, NULL);
}

/* DELETE /api/trash/<sha>: for good.  POST /api/trash/<sha>/restore. */
static void r_trash_item(struct req *r, const struct path *p)
{
    uint8_t hash[MI_HASH_SIZE];
    char hex[MI_HASH_HEX_LEN + 1], where[MI_MAX_PATH_LEN + 1];
    uint64_t n = 0;
    cJSON *o;
    mi_status s;

    if (!url_hash(r, p, 2, hash, hex))
        return;
    if (strcmp(r->ri->request_method, "DELETE") == 0) {
        char body[160];

        s = mi_trash_purge(r->srv->idx, hash, INT64_MAX, &n);
        if (s == MI_OK && n == 0) {
            send_error(r, 404, NULL, "not in the trash");
        } else if (s != MI_OK) {
            send_mi_error(r, s, "cannot delete it");
        } else {
            snprintf(body, sizeof(body), "{\"purged\":\"%s\"}", hex);
            send_json(r, 200, body, NULL);
        }
        return;
    }
    s = mi_trash_restore(where, sizeof(where), r->srv->idx, hash);
    if (s == MI_ENOTFOUND) {
        send_error(r, 404, NULL, "not in the trash");
        return;
    }
    if (s != MI_OK) {
        send_mi_error(r, s, "cannot restore it");
        return;
    }
    o = cJSON_CreateObject();
    if (o && !(json_add_string(o, "restored", hex) &&
               json_add_string(o, "file_path", where))) {
        cJSON_Delete(o);
        o = NULL;
    }
    send_cjson(r, 200, o, NULL);
}

/* GET /api/timeline[?from=&to=&q=&place=]: months and their counts. */
static void r_timeline(struct req *r, const struct path *p)
{
    char from[32] = "", to[32] = "", q[1100], place[256];
    struct list_query lq = { from, to, q, place, NULL, NULL, false, 0 };

    (void)p;
    if (!search_var(r, "q", q, sizeof(q)) ||
        !search_var(r, "place", place, sizeof(place)))
        return;
    query_var(r, "from", from, sizeof(from));
    query_var(r, "to", to, sizeof(to));
    route_timeline(r, &lq);
}

/* GET /api/items/<sha256>: one item, as its /list NDJSON line holds it. */
static void r_item(struct req *r, const struct path *p)
{
    uint8_t hash[MI_HASH_SIZE];
    char hex[MI_HASH_HEX_LEN + 1];

    if (url_hash(r, p, 2, hash, hex))
        route_item(r, hash);
}

static void r_places(struct req *r, const struct path *p)
{
    (void)p;
    route_places(r);
}

/* GET /api/similar[/<sha>]: near-duplicates (similar.c). */
static void r_similar(struct req *r, const struct path *p)
{
    uint8_t hash[MI_HASH_SIZE];
    char hex[MI_HASH_HEX_LEN + 1], distance[8];

    if (p->n > 2 && !url_hash(r, p, 2, hash, hex))
        return;
    query_var(r, "distance", distance, sizeof(distance));
    route_similar(r, p->n > 2 ? hash : NULL, distance);
}

static void r_changes(struct req *r, const struct path *p)
{
    char since[32], limit[24];

    (void)p;
    query_var(r, "since", since, sizeof(since));
    query_var(r, "limit", limit, sizeof(limit));
    route_changes(r, since, limit);
}

static void r_events(struct req *r, const struct path *p)
{
    (void)p;
    route_events(r);
}

static void r_rescan(struct req *r, const struct path *p)
{
    bool already;

    (void)p;
    scanner_kick(r->srv, &already);
    send_json(r, 202, already ? "{\"scan\":\"queued\",\"message\":\"a scan "
                                "is running: another follows it\"}"
                              : "{\"scan\":\"started\"}", NULL);
}

/* A route: its path ("*" is any one segment), the methods it answers
 * (space-separated) and what it needs (auth.h).  The first row whose path
 * and method match runs; a path that matches with no method is a 405,
 * after the need of its first row is checked (401 before 405). */
struct route {
    const char *path;
    const char *methods;
    enum auth_need need;
    void (*fn)(struct req *r, const struct path *p);
};

static const struct route routes[] = {
    { "/login",                 "GET HEAD", AUTH_PUBLIC, r_login_page },
    { "/api/auth/login",        "POST",     AUTH_PUBLIC, route_auth },
    { "/api/auth/setup",        "POST",     AUTH_PUBLIC, route_auth },
    { "/api/auth/me",           "GET HEAD", AUTH_ANY,    route_auth },
    { "/api/auth/logout",       "POST",     AUTH_SELF,   route_auth },
    { "/api/auth/logout-all",   "POST",     AUTH_SELF,   route_auth },
    { "/api/keys",              "GET HEAD POST", AUTH_SELF, route_keys },
    { "/api/keys/*",            "DELETE",   AUTH_SELF,   route_keys },
    { "/api/users",             "GET HEAD POST", AUTH_ADMIN, route_users },
    { "/api/users/*",           "PATCH DELETE", AUTH_ADMIN,  route_users },
    { "/api/shares",            "GET HEAD POST", AUTH_SHARE, route_shares },
    { "/api/shares/*",          "DELETE",   AUTH_SHARE,  route_shares },
    { "/list",                  "GET HEAD", AUTH_READ,   r_list },
    { "/list/date/*",           "GET HEAD", AUTH_READ,   r_list },
    { "/list/daterange/*/*",    "GET HEAD", AUTH_READ,   r_list },
    { "/list/location/*",       "GET HEAD", AUTH_READ,   r_list },
    { "/list/location/*/*",     "GET HEAD", AUTH_READ,   r_list },
    { "/api/problems",          "GET HEAD", AUTH_READ,   r_problems },
    { "/api/formats",           "GET HEAD", AUTH_READ,   r_formats },
    { "/status",                "GET HEAD", AUTH_READ,   r_status },
    { "/thumbnail/*",           "GET HEAD", AUTH_READ,   r_thumbnail },
    { "/preview/*",             "GET HEAD", AUTH_READ,   r_preview },
    { "/image/sha256/*",        "GET HEAD", AUTH_READ,   r_image },
    { "/image/*",               "GET HEAD", AUTH_READ,   r_image },
    { "/image/*",               "PUT",      AUTH_UPLOAD, r_put },
    /* The trash: members and admins (the upload need). */
    { "/image/*",               "DELETE",   AUTH_UPLOAD, r_trash_put },
    { "/api/trash",             "GET HEAD", AUTH_UPLOAD, r_trash },
    { "/api/trash",             "DELETE",   AUTH_UPLOAD, r_trash },
    { "/api/trash/*",           "DELETE",   AUTH_UPLOAD, r_trash_item },
    { "/api/trash/*/restore",   "POST",     AUTH_UPLOAD, r_trash_item },
    /* Resumable uploads (tus.c); OPTIONS tells a client what we speak. */
    { "/api/uploads",           "POST",     AUTH_UPLOAD, r_tus },
    { "/api/uploads/*",         "POST HEAD PATCH DELETE", AUTH_UPLOAD, r_tus },
    { "/api/uploads",           "OPTIONS",  AUTH_PUBLIC, r_tus },
    { "/api/uploads/*",         "OPTIONS",  AUTH_PUBLIC, r_tus },
    { "/api/check",             "POST",     AUTH_READ,   r_check },
    /* Near-duplicates: read access, like /list. */
    { "/api/similar",           "GET HEAD", AUTH_READ,   r_similar },
    { "/api/similar/*",         "GET HEAD", AUTH_READ,   r_similar },
    /* The live library: what changed since a token, and a stream that
     * says when to ask; a scan now. */
    { "/api/changes",           "GET HEAD", AUTH_READ,   r_changes },
    { "/api/places",            "GET HEAD", AUTH_READ,   r_places },
    { "/api/timeline",          "GET HEAD", AUTH_READ,   r_timeline },
    { "/api/items/*",           "GET HEAD", AUTH_READ,   r_item },
    { "/api/events",            "GET HEAD", AUTH_READ,   r_events },
    { "/api/rescan",            "POST",     AUTH_UPLOAD, r_rescan },
    /* Share links: public here, the token checked by each route. */
    { "/s/*",                   "GET HEAD", AUTH_PUBLIC, route_share_page },
    { "/s/*/",                  "GET HEAD", AUTH_PUBLIC, route_share_page },
    { "/s/*/info",              "GET HEAD", AUTH_PUBLIC, route_share_info },
    { "/s/*/unlock",            "POST",     AUTH_PUBLIC, route_share_unlock },
    { "/s/*/list",              "GET HEAD", AUTH_PUBLIC, route_share_list },
    { "/s/*/formats",           "GET HEAD", AUTH_PUBLIC, route_share_formats },
    { "/s/*/thumbnail/*",       "GET HEAD", AUTH_PUBLIC, route_share_media },
    { "/s/*/preview/*",         "GET HEAD", AUTH_PUBLIC, route_share_media },
    { "/s/*/image/*",           "GET HEAD", AUTH_PUBLIC, route_share_media },
};

/* The gallery's files anyone may load: the login page's, and the script
 * a share link's page runs (it holds no data). */
static bool public_asset(const char *u)
{
    return strcmp(u, "/static/login.html") == 0 ||
           strcmp(u, "/static/login.js") == 0 ||
           strcmp(u, "/static/style.css") == 0 ||
           strcmp(u, "/static/app.js") == 0;
}

static bool path_matches(const char *pat, const struct path *p)
{
    int i = 0;

    if (*pat++ != '/')
        return false;
    for (;;) {
        const char *e = strchr(pat, '/');
        size_t len = e ? (size_t)(e - pat) : strlen(pat);

        if (i >= p->n)
            return false;
        if (!(len == 1 && *pat == '*') &&
            (strlen(p->seg[i]) != len || memcmp(p->seg[i], pat, len) != 0 ||
             p->nul[i]))
            return false;
        i++;
        if (!e)
            return i == p->n;
        pat = e + 1;
    }
}

static bool method_in(const char *methods, const char *m)
{
    size_t n = strlen(m);

    for (const char *s = methods; (s = strstr(s, m)) != NULL; s += n)
        if ((s == methods || s[-1] == ' ') && (s[n] == ' ' || !s[n]))
            return true;
    return false;
}

static void dispatch(struct req *r, const struct path *p)
{
    const char *m = r->ri->request_method;
    const struct route *hit = NULL, *first = NULL;
    const struct mi_web_asset *asset;
    char allow[64] = "";
    size_t i;

    if (p->n < 0) {
        if (gate(r, AUTH_READ))
            send_error(r, 404, NULL, "no such route");
        return;
    }
    /* The gallery's own files: "/" and "/static/...". */
    asset = mi_web_asset_find(r->ri->local_uri);
    if (asset) {
        if (!gate(r, public_asset(r->ri->local_uri) ? AUTH_PUBLIC : AUTH_READ))
            return;
        if (get_or_head(r))
            route_asset(r, asset);
        else
            method_not_allowed(r, "GET, HEAD");
        return;
    }
    for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const struct route *rt = &routes[i];

        if (!path_matches(rt->path, p))
            continue;
        if (!first)
            first = rt;
        if (method_in(rt->methods, m)) {
            hit = rt;
            break;
        }
        /* Allow: the union of the rows' methods, comma-separated. */
        for (const char *s = rt->methods; *s;) {
            size_t n = strcspn(s, " ");
            char one[16];

            snprintf(one, sizeof(one), "%.*s", (int)n, s);
            if (!strstr(allow, one) && strlen(allow) + n + 3 < sizeof(allow))
                snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow),
                         "%s%s", *allow ? ", " : "", one);
            s += n;
            while (*s == ' ')
                s++;
        }
    }
    /* Unknown paths need a reader: 401 before saying 404. */
    if (!gate(r, hit ? hit->need : first ? first->need : AUTH_READ))
        return;
    if (hit)
        hit->fn(r, p);
    else if (first)
        method_not_allowed(r, allow);
    else
        send_error(r, 404, NULL, "no such route");
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
    find_client(&r);
    uploads = conns_enter(r.srv, r.ri, &r.client_ip,
                          strcmp(r.ri->request_method, "PUT") == 0 ||
                          strcmp(r.ri->request_method, "PATCH") == 0);
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
                   r.client, MAX_UPLOADS_PER_ADDR);
    } else if (!path_split(&p, r.ri->local_uri))
        send_error(&r, 500, NULL, "out of memory");
    else
        dispatch(&r, &p);
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
    client_address(r.srv, r.ri, r.client, &r.client_ip);
    send_error(&r, status, NULL, "%s",
               msg && *msg ? msg : mg_get_response_code_text(conn, status));
    access_log(&r, now_mono());
    return 0;
}
