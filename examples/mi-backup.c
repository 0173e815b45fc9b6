/*
 * mi-backup - back a folder of photos and videos up to a media-server.
 *
 *   mi-backup [--key KEY] [--chunk MIB] [--limit-rate BYTES[K|M]]
 *             [--cacert FILE] [--quiet] FOLDER URL
 *
 * 1. Indexes FOLDER with libmediaindex (its catalog lives in
 *    FOLDER/.mediaindex/, so a second run re-hashes only what changed).
 * 2. Asks the server which of those contents it already holds, in one
 *    POST /api/check per 10,000 hashes.
 * 3. Sends each missing one with tus 1.0 (POST /api/uploads/, then PATCH
 *    in chunks, each with its Upload-Checksum), giving the file's SHA-256
 *    at creation so the server verifies the whole file before keeping it.
 *    An upload's address is remembered in FOLDER/.mediaindex/mi-backup.state
 *    until it completes: an interrupted run resumes it where the server
 *    says it stands.  A dropped connection is retried (five times, waiting
 *    longer each time) from the server's offset; a proxy that refuses a
 *    chunk as too large (413) gets smaller ones.
 *
 * Shows a progress line when stderr is a terminal, a summary at the end,
 * and exits 0 when everything is on the server, 1 when something failed,
 * 2 when it could not start.  The key may also come from MI_BACKUP_KEY (so
 * that it does not show in the process list).
 *
 * Build against an installed libmediaindex:
 *   cc mi-backup.c $(pkg-config --cflags --libs mediaindex libcjson libcurl)
 */
#include <mediaindex.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHECK_BATCH 10000        /* hashes per /api/check */
#define CHUNK_DEFAULT_MIB 16
#define CHUNK_MIN (256u * 1024u) /* smaller than this: give up on 413 */
#define RETRIES 7                /* 0.5 s, then doubling to 32 s */
#define BODY_MAX (4u << 20)      /* an answer's body we keep */
#define STATE_NAME "mi-backup.state"

/* One content to back up. */
struct item {
    char sha[MI_HASH_HEX_LEN + 1];
    char *path;                  /* relative to the folder */
    char *name;                  /* its file name */
    uint64_t size;
    bool present;                /* the server has it */
};

/* An upload in progress, remembered across runs: sha -> location. */
struct pending {
    char sha[MI_HASH_HEX_LEN + 1];
    char *url;                   /* absolute */
};

/* One HTTP exchange's answer. */
struct answer {
    long status;
    char *body;
    size_t body_len;
    char location[2048];
    uint64_t offset;
    bool has_offset;
    char file_path[1024];        /* Mi-File-Path, still percent-encoded */
};

struct backup {
    const char *folder, *base;   /* base: the server's URL, no final '/' */
    char *auth_header;           /* "Authorization: Bearer ..." or NULL */
    const char *cacert;
    curl_off_t max_rate;         /* bytes/s sent at most; 0 = no limit */
    char user_agent[64];
    CURL *curl;
    size_t chunk;
    bool tty, quiet;

    struct item *items;
    size_t n_items, cap_items;
    struct pending *pend;
    size_t n_pend;
    char state_path[PATH_MAX];

    /* progress */
    uint64_t bytes_total, bytes_done, bytes_now;
    size_t files_total, files_done;
    time_t started;
    double last_draw;

    /* the summary */
    size_t sent, already, failed, resumed;
    uint64_t bytes_sent;
};

static void say(struct backup *b, const char *fmt, ...)
{
    va_list ap;

    if (b->tty)
        fputs("\r\033[K", stderr);
    fputs("mi-backup: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void human(char *out, size_t n, double v)
{
    static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    size_t u = 0;

    while (v >= 1024.0 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
        v /= 1024.0;
        u++;
    }
    snprintf(out, n, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

/* The progress line, at most ten times a second. */
static void draw(struct backup *b, bool force)
{
    char done[32], total[32], rate[32];
    double t = now_s(), el, pct;
    uint64_t d = b->bytes_done + b->bytes_now;
    int bar, i;

    if (!b->tty || b->quiet || (!force && t - b->last_draw < 0.1))
        return;
    b->last_draw = t;
    el = difftime(time(NULL), b->started);
    pct = b->bytes_total ? 100.0 * (double)d / (double)b->bytes_total : 100.0;
    bar = (int)(pct / 5.0);
    human(done, sizeof(done), (double)d);
    human(total, sizeof(total), (double)b->bytes_total);
    human(rate, sizeof(rate), el > 0 ? (double)(b->bytes_sent + b->bytes_now) / el : 0);
    fputs("\r\033[K[", stderr);
    for (i = 0; i < 20; i++)
        fputc(i < bar ? '#' : '.', stderr);
    fprintf(stderr, "] %3.0f%%  %s / %s  %zu / %zu files  %s/s", pct, done,
            total, b->files_done, b->files_total, rate);
}

/* ---- HTTP ------------------------------------------------------------ */

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    struct answer *a = ud;
    size_t len = sz * n;
    char *grown;

    if (a->body_len + len > BODY_MAX)
        return len;              /* keep the start; the rest is dropped */
    grown = realloc(a->body, a->body_len + len + 1);
    if (!grown)
        return 0;
    memcpy(grown + a->body_len, p, len);
    a->body = grown;
    a->body_len += len;
    a->body[a->body_len] = '\0';
    return len;
}

/* Copy a header's value (trimmed) when `line` is that header. */
static bool header_value(const char *line, size_t len, const char *name,
                         char *out, size_t outlen)
{
    size_t nl = strlen(name), k;

    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return false;
    line += nl + 1;
    len -= nl + 1;
    while (len && (*line == ' ' || *line == '\t')) {
        line++;
        len--;
    }
    while (len && (line[len - 1] == '\r' || line[len - 1] == '\n' ||
                   line[len - 1] == ' '))
        len--;
    k = len < outlen - 1 ? len : outlen - 1;
    memcpy(out, line, k);
    out[k] = '\0';
    return true;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    struct answer *a = ud;
    size_t len = sz * n;
    char v[64];

    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* A new answer (after a 100 Continue or a redirect): start over. */
        a->location[0] = a->file_path[0] = '\0';
        a->has_offset = false;
    } else if (header_value(p, len, "Upload-Offset", v, sizeof(v))) {
        char *end;

        errno = 0;
        a->offset = strtoull(v, &end, 10);
        a->has_offset = errno == 0 && end != v && *end == '\0';
    } else if (!header_value(p, len, "Location", a->location,
                             sizeof(a->location))) {
        header_value(p, len, "Mi-File-Path", a->file_path, sizeof(a->file_path));
    }
    return len;
}

/* The sent bytes of a PATCH, for the progress line. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow,
                       curl_off_t ultotal, curl_off_t ulnow)
{
    struct backup *b = ud;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    b->bytes_now = (uint64_t)ulnow;
    draw(b, false);
    return 0;
}

static void answer_free(struct answer *a)
{
    free(a->body);
    memset(a, 0, sizeof(*a));
}

/*
 * One request: `method` to `url` with `headers` (NULL-terminated) and a
 * body of `len` bytes (NULL: none).  The answer in *a.  Returns the curl
 * code (CURLE_OK when an HTTP answer came, whatever its status).
 */
static CURLcode request(struct backup *b, const char *method, const char *url,
                        const char *const *headers, const void *body,
                        size_t len, struct answer *a)
{
    struct curl_slist *hl = NULL, *t;
    CURLcode rc;
    size_t i;

    memset(a, 0, sizeof(*a));
    for (i = 0; headers && headers[i]; i++) {
        if (!(t = curl_slist_append(hl, headers[i])))
            goto nomem;
        hl = t;
    }
    if (!(t = curl_slist_append(hl, "Tus-Resumable: 1.0.0")))
        goto nomem;
    hl = t;
    /* No "Expect: 100-continue" wait before each chunk. */
    if (!(t = curl_slist_append(hl, "Expect:")))
        goto nomem;
    hl = t;
    if (b->auth_header) {
        if (!(t = curl_slist_append(hl, b->auth_header)))
            goto nomem;
        hl = t;
    }
    curl_easy_reset(b->curl);
    curl_easy_setopt(b->curl, CURLOPT_URL, url);
    curl_easy_setopt(b->curl, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(b->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(b->curl, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(b->curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(b->curl, CURLOPT_HEADERDATA, a);
    curl_easy_setopt(b->curl, CURLOPT_CONNECTTIMEOUT, 20L);
    /* A connection that moves less than 1 KB/s for a minute is dead. */
    curl_easy_setopt(b->curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(b->curl, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(b->curl, CURLOPT_USERAGENT, b->user_agent);
    if (b->cacert)
        curl_easy_setopt(b->curl, CURLOPT_CAINFO, b->cacert);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(b->curl, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(b->curl, CURLOPT_CUSTOMREQUEST, method);
        if (body || strcmp(method, "GET") != 0) {
            curl_easy_setopt(b->curl, CURLOPT_POSTFIELDS, body ? body : "");
            curl_easy_setopt(b->curl, CURLOPT_POSTFIELDSIZE_LARGE,
                             (curl_off_t)len);
        }
    }
    if (strcmp(method, "PATCH") == 0) {
        if (b->max_rate)
            curl_easy_setopt(b->curl, CURLOPT_MAX_SEND_SPEED_LARGE, b->max_rate);
        curl_easy_setopt(b->curl, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(b->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(b->curl, CURLOPT_XFERINFODATA, b);
    }
    rc = curl_easy_perform(b->curl);
    if (rc == CURLE_OK)
        curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &a->status);
    curl_slist_free_all(hl);
    return rc;
nomem:
    curl_slist_free_all(hl);
    return CURLE_OUT_OF_MEMORY;
}

/* The server's message in a JSON error body, or the status line. */
static const char *why_of(const struct answer *a, char *out, size_t n)
{
    cJSON *j = a->body ? cJSON_Parse(a->body) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");

    if (cJSON_IsString(e))
        snprintf(out, n, "%ld %s", a->status, e->valuestring);
    else
        snprintf(out, n, "HTTP %ld", a->status);
    cJSON_Delete(j);
    return out;
}

/* `rel` (a Location) made absolute against the server's URL. */
static char *absolute(const struct backup *b, const char *rel)
{
    CURLU *u = curl_url();
    char *abs = NULL, *out = NULL;

    if (u && curl_url_set(u, CURLUPART_URL, b->base, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_URL, rel, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_URL, &abs, 0) == CURLUE_OK)
        out = strdup(abs);
    curl_free(abs);
    curl_url_cleanup(u);
    return out;
}

/* ---- base64 (Upload-Metadata, Upload-Checksum) ------------------------ */

static void b64(char *out, const unsigned char *in, size_t n)
{
    static const char t[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i;

    for (i = 0; i + 2 < n; i += 3) {
        *out++ = t[in[i] >> 2];
        *out++ = t[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
        *out++ = t[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
        *out++ = t[in[i + 2] & 63];
    }
    if (i < n) {
        *out++ = t[in[i] >> 2];
        if (i + 1 < n) {
            *out++ = t[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
            *out++ = t[(in[i + 1] & 15) << 2];
        } else {
            *out++ = t[(in[i] & 3) << 4];
            *out++ = '=';
        }
        *out++ = '=';
    }
    *out = '\0';
}

/* ---- the state file: uploads begun and not finished ------------------- */

static struct pending *pending_find(struct backup *b, const char *sha)
{
    size_t i;

    for (i = 0; i < b->n_pend; i++)
        if (strcmp(b->pend[i].sha, sha) == 0)
            return &b->pend[i];
    return NULL;
}

/* Lines "<sha256> <upload URL>"; those of another server are kept as they
 * are (their URL does not start with ours) and simply never match. */
static void state_load(struct backup *b)
{
    FILE *f = fopen(b->state_path, "r");
    char line[4096];

    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        char *sp = strchr(line, ' '), *nl = strchr(line, '\n');
        struct pending *grown;

        if (!sp || sp - line != MI_HASH_HEX_LEN || !nl)
            continue;
        *sp = *nl = '\0';
        grown = realloc(b->pend, (b->n_pend + 1) * sizeof(*grown));
        if (!grown)
            break;
        b->pend = grown;
        memcpy(b->pend[b->n_pend].sha, line, MI_HASH_HEX_LEN + 1);
        if (!(b->pend[b->n_pend].url = strdup(sp + 1)))
            break;
        b->n_pend++;
    }
    fclose(f);
}

/* Written whole to a temporary file, synced, then renamed over. */
static int state_save(struct backup *b)
{
    char tmp[PATH_MAX + 8];
    FILE *f;
    size_t i;
    int ok;

    snprintf(tmp, sizeof(tmp), "%s.tmp", b->state_path);
    if (!(f = fopen(tmp, "w")))
        return -1;
    for (i = 0; i < b->n_pend; i++)
        fprintf(f, "%s %s\n", b->pend[i].sha, b->pend[i].url);
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, b->state_path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void pending_set(struct backup *b, const char *sha, const char *url)
{
    struct pending *p = pending_find(b, sha), *grown;
    char *u = strdup(url);

    if (!u)
        return;
    if (p) {
        free(p->url);
        p->url = u;
    } else if ((grown = realloc(b->pend, (b->n_pend + 1) * sizeof(*grown)))) {
        b->pend = grown;
        memcpy(b->pend[b->n_pend].sha, sha, MI_HASH_HEX_LEN + 1);
        b->pend[b->n_pend++].url = u;
    } else {
        free(u);
        return;
    }
    if (state_save(b) != 0)
        say(b, "warning: cannot write %s: %s (an interruption will "
            "restart this upload)", b->state_path, strerror(errno));
}

static void pending_drop(struct backup *b, const char *sha)
{
    struct pending *p = pending_find(b, sha);

    if (!p)
        return;
    free(p->url);
    *p = b->pend[--b->n_pend];
    state_save(b);
}

/* ---- 1. what the folder holds ---------------------------------------- */

static int show_scan(const mi_scan_stats *st, void *payload)
{
    (void)payload;
    fprintf(stderr, "\r\033[Kindexing: %" PRIu64 " files seen, %" PRIu64
            " new, %" PRIu64 " changed", st->seen, st->added, st->changed);
    return 0;
}

static int collect(struct backup *b, mi_index *idx)
{
    mi_cursor *c;
    mi_status s;

    if ((s = mi_cursor_new(&c, idx)) != MI_OK)
        return -1;
    while ((s = mi_cursor_next(c)) == MI_ROW) {
        const mi_entry *e = mi_cursor_entry(c);
        struct item *it;

        if (b->n_items == b->cap_items) {
            size_t cap = b->cap_items ? 2 * b->cap_items : 1024;
            struct item *grown = realloc(b->items, cap * sizeof(*grown));

            if (!grown)
                break;
            b->items = grown;
            b->cap_items = cap;
        }
        it = &b->items[b->n_items];
        memset(it, 0, sizeof(*it));
        memcpy(it->sha, mi_entry_hash_hex(e), MI_HASH_HEX_LEN + 1);
        it->path = strdup(mi_entry_path(e));
        it->name = strdup(mi_entry_filename(e));
        it->size = mi_entry_size(e);
        if (!it->path || !it->name) {
            free(it->path);
            free(it->name);
            break;
        }
        b->n_items++;
    }
    mi_cursor_free(c);
    return s == MI_DONE ? 0 : -1;
}

/* ---- 2. which of them the server has --------------------------------- */

static int check_batch(struct backup *b, size_t from, size_t to)
{
    cJSON *arr = cJSON_CreateArray(), *res = NULL, *r;
    const cJSON *results;
    const char *hdr[] = { "Content-Type: application/json", NULL };
    struct answer a;
    char url[4096], why[512], *body;
    size_t i = from;
    CURLcode rc;

    for (size_t k = from; arr && k < to; k++)
        if (!cJSON_AddItemToArray(arr, cJSON_CreateString(b->items[k].sha)))
            break;
    body = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    if (!body) {
        say(b, "out of memory");
        return -1;
    }
    snprintf(url, sizeof(url), "%s/api/check", b->base);
    rc = request(b, "POST", url, hdr, body, strlen(body), &a);
    cJSON_free(body);
    if (rc != CURLE_OK) {
        say(b, "%s: %s", url, curl_easy_strerror(rc));
        return -1;
    }
    if (a.status != 200) {
        say(b, "%s: %s", url, why_of(&a, why, sizeof(why)));
        answer_free(&a);
        return -1;
    }
    res = a.body ? cJSON_Parse(a.body) : NULL;
    results = cJSON_GetObjectItemCaseSensitive(res, "results");
    cJSON_ArrayForEach(r, results) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(r, "present");
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(r, "sha256");

        if (i >= to || !cJSON_IsString(h) || strcmp(h->valuestring, b->items[i].sha))
            break;
        b->items[i++].present = cJSON_IsTrue(p);
    }
    cJSON_Delete(res);
    answer_free(&a);
    if (i != to) {
        say(b, "%s: the answer does not list what was asked", url);
        return -1;
    }
    return 0;
}

/* ---- 3. one upload with tus ------------------------------------------ */

/* A new upload: its absolute URL in *url, or "already there" (*url NULL,
 * returns 1).  -1 on failure (said). */
static int create(struct backup *b, const struct item *it, char **url)
{
    char meta[1200], name64[700], sha64[100], len[64], url_c[4096], why[512];
    const char *hdr[] = { len, meta, NULL };
    struct answer a;
    CURLcode rc;
    size_t nl = strlen(it->name);

    *url = NULL;
    if (nl > 500) {
        say(b, "%s: the file name is too long", it->path);
        return -1;
    }
    b64(name64, (const unsigned char *)it->name, nl);
    b64(sha64, (const unsigned char *)it->sha, MI_HASH_HEX_LEN);
    snprintf(meta, sizeof(meta), "Upload-Metadata: filename %s,sha256 %s",
             name64, sha64);
    snprintf(len, sizeof(len), "Upload-Length: %" PRIu64, it->size);
    snprintf(url_c, sizeof(url_c), "%s/api/uploads/", b->base);
    rc = request(b, "POST", url_c, hdr, NULL, 0, &a);
    if (rc != CURLE_OK) {
        say(b, "%s: %s", it->path, curl_easy_strerror(rc));
        return -1;
    }
    if (a.status == 200) {        /* it is already there */
        answer_free(&a);
        return 1;
    }
    if (a.status != 201 || !a.location[0] || !(*url = absolute(b, a.location))) {
        say(b, "%s: creating the upload: %s", it->path, why_of(&a, why, sizeof(why)));
        answer_free(&a);
        return -1;
    }
    answer_free(&a);
    return 0;
}

/* Where the server stands on an upload: 0 and *offset, 1 when it is gone
 * (expired, removed, another server's), -1 when the server cannot say. */
static int stand(struct backup *b, const char *url, uint64_t *offset)
{
    struct answer a;
    CURLcode rc = request(b, "HEAD", url, NULL, NULL, 0, &a);
    int r = -1;

    if (rc == CURLE_OK && a.status >= 200 && a.status < 300 && a.has_offset) {
        *offset = a.offset;
        r = 0;
    } else if (rc == CURLE_OK && (a.status == 404 || a.status == 410 ||
                                  a.status == 403)) {
        r = 1;
    }
    answer_free(&a);
    return r;
}

static bool retry_wait(struct backup *b, int attempt, const char *path,
                       const char *why)
{
    /* 0.5, 1, 2 ... 32 s: a restarted server is back in well under a
     * second, a network that went away takes longer. */
    unsigned int ms = 500u << (attempt - 1);
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

    if (attempt > RETRIES)
        return false;
    say(b, "%s: %s; trying again in %u.%u s", path, why, ms / 1000,
        ms % 1000 / 100);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return true;
}

/* Every byte of an upload reached the server but its answer was lost:
 * whether the server kept the file decides.  Either way the upload is
 * done with. */
static int arrived(struct backup *b, struct item *it)
{
    size_t i = (size_t)(it - b->items);

    pending_drop(b, it->sha);
    if (check_batch(b, i, i + 1) == 0 && it->present) {
        b->sent++;
        return 0;
    }
    say(b, "%s: the server received every byte but did not keep the file",
        it->path);
    return -1;
}

/* Send one item.  0: on the server; -1: failed (said). */
static int upload(struct backup *b, struct item *it, unsigned char *buf)
{
    struct pending *p = pending_find(b, it->sha);
    char *url = NULL, abspath[PATH_MAX], why[512];
    uint64_t off = 0;
    int fd, r, attempt = 0;
    bool resumed = false;

    if (p && strncmp(p->url, b->base, strlen(b->base)) == 0) {
        r = stand(b, p->url, &off);
        if (r == 0 && off == it->size) {
            /* Every byte arrived last time: kept, or refused then. */
            if (arrived(b, it) == 0)
                return 0;
        } else if (r == 0 && off < it->size) {
            url = strdup(p->url);
            resumed = off > 0;
        } else if (r < 0) {
            say(b, "%s: the server cannot say where its upload stands",
                it->path);
            return -1;
        }
    }
    if (!url) {
        off = 0;
        r = create(b, it, &url);
        if (r == 1) {
            pending_drop(b, it->sha);
            b->already++;
            return 0;
        }
        if (r < 0)
            return -1;
        pending_set(b, it->sha, url);
    }
    if (resumed) {
        b->resumed++;
        if (!b->quiet)
            say(b, "%s: resuming at %" PRIu64 " of %" PRIu64 " bytes",
                it->path, off, it->size);
    }
    snprintf(abspath, sizeof(abspath), "%s/%s", b->folder, it->path);
    if ((fd = open(abspath, O_RDONLY | O_CLOEXEC)) < 0) {
        say(b, "%s: %s", abspath, strerror(errno));
        free(url);
        return -1;
    }
    b->bytes_done += off;
    for (;;) {
        size_t want = it->size - off < b->chunk ? (size_t)(it->size - off) : b->chunk;
        ssize_t got = want ? pread(fd, buf, want, (off_t)off) : 0;
        unsigned char digest[MI_HASH_SIZE];
        char offs[64], ck[128], d64[64];
        const char *hdr[] = { "Content-Type: application/offset+octet-stream",
                              offs, ck, NULL };
        struct answer a;
        CURLcode rc;

        if (got < 0 || (size_t)got != want) {
            say(b, "%s: %s", abspath, got < 0 ? strerror(errno)
                                              : "the file got shorter");
            break;
        }
        mi_hash_buffer(digest, buf, want);
        b64(d64, digest, sizeof(digest));
        snprintf(ck, sizeof(ck), "Upload-Checksum: sha256 %s", d64);
        snprintf(offs, sizeof(offs), "Upload-Offset: %" PRIu64, off);
        b->bytes_now = 0;
        rc = request(b, "PATCH", url, hdr, buf, want, &a);
        b->bytes_now = 0;
        if (rc == CURLE_OK && (a.status == 204 || a.status == 200 ||
                               a.status == 201) && a.has_offset &&
            a.offset == off + want) {
            b->bytes_done += want;
            b->bytes_sent += want;
            off += want;
            attempt = 0;
            draw(b, true);
            if (off == it->size) {
                /* The final answer: 201 new, 200 it was already there. */
                answer_free(&a);
                close(fd);
                free(url);
                pending_drop(b, it->sha);
                b->sent++;
                return 0;
            }
            answer_free(&a);
            continue;
        }
        if (rc == CURLE_OK && a.status == 413 && b->chunk / 2 >= CHUNK_MIN) {
            /* A proxy caps request bodies: smaller chunks from now on. */
            b->chunk /= 2;
            say(b, "the server or a proxy refused a chunk as too large: "
                "sending %zu KiB chunks", b->chunk / 1024);
            answer_free(&a);
            continue;
        }
        if (rc == CURLE_OK && a.status >= 400 && a.status < 500 &&
            a.status != 409 && a.status != 423 && a.status != 408 &&
            a.status != 429 && a.status != 460) {
            /* Refused for good (not a media file, gone, not allowed). */
            say(b, "%s: %s", it->path, why_of(&a, why, sizeof(why)));
            if (a.status != 401 && a.status != 403)
                pending_drop(b, it->sha);
            answer_free(&a);
            break;
        }
        /* Cut off, a conflict, the server busy, or a chunk damaged on
         * the way (460; a whole file whose hash is wrong is 460 too, and
         * then the upload is gone): ask where it stands, go on from there. */
        if (rc != CURLE_OK)
            snprintf(why, sizeof(why), "%s", curl_easy_strerror(rc));
        else
            why_of(&a, why, sizeof(why));
        answer_free(&a);
        for (;;) {
            uint64_t at;

            if (!retry_wait(b, ++attempt, it->path, why))
                goto fail;
            r = stand(b, url, &at);
            if (r == 0 && at <= it->size) {
                b->bytes_done -= off;
                b->bytes_done += at;
                off = at;
                break;
            }
            if (r == 1) {
                say(b, "%s: the upload is gone from the server (%s)",
                    it->path, why);
                pending_drop(b, it->sha);
                goto fail;
            }
            snprintf(why, sizeof(why), "the server cannot be reached");
        }
        if (off == it->size) {
            /* Every byte arrived but the answer was lost. */
            close(fd);
            free(url);
            return arrived(b, it);
        }
    }
fail:
    close(fd);
    free(url);
    return -1;
}

/* ---- main ------------------------------------------------------------ */

static int usage(FILE *f)
{
    fprintf(f,
            "usage: mi-backup [--key KEY] [--chunk MIB] [--limit-rate "
            "BYTES[K|M]]\n"
            "                 [--cacert FILE] [--quiet] FOLDER URL\n"
            "  Backs up the photos and videos of FOLDER to the media-server "
            "at URL\n"
            "  (e.g. http://nas.local:8080), sending only what it does not "
            "have,\n"
            "  resuming what was interrupted.  The key may also be given in "
            "MI_BACKUP_KEY.\n");
    return f == stderr ? 2 : 0;
}

int main(int argc, char **argv)
{
    struct backup b;
    mi_index_options io = MI_INDEX_OPTIONS_INIT;
    mi_scan_options so = MI_SCAN_OPTIONS_INIT;
    mi_scan_stats st = MI_SCAN_STATS_INIT;
    const char *key = getenv("MI_BACKUP_KEY");
    char err[512], total[32], *base = NULL;
    unsigned char *buf = NULL;
    unsigned long chunk_mib = CHUNK_DEFAULT_MIB;
    mi_index *idx = NULL;
    mi_status s;
    size_t i, missing = 0;
    int rc = 2;

    memset(&b, 0, sizeof(b));
    for (i = 1; i < (size_t)argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--key") == 0 && i + 1 < (size_t)argc) {
            key = argv[++i];
        } else if (strcmp(a, "--cacert") == 0 && i + 1 < (size_t)argc) {
            b.cacert = argv[++i];
        } else if (strcmp(a, "--chunk") == 0 && i + 1 < (size_t)argc) {
            char *end;

            chunk_mib = strtoul(argv[++i], &end, 10);
            if (*end || chunk_mib < 1 || chunk_mib > 1024) {
                fprintf(stderr, "mi-backup: --chunk takes 1 to 1024 (MiB)\n");
                return 2;
            }
        } else if (strcmp(a, "--limit-rate") == 0 && i + 1 < (size_t)argc) {
            char *end;
            unsigned long long v = strtoull(argv[++i], &end, 10);

            if (*end == 'K' || *end == 'k')
                v <<= 10, end++;
            else if (*end == 'M' || *end == 'm')
                v <<= 20, end++;
            if (*end || v < 1024 || v > (1ull << 40)) {
                fprintf(stderr, "mi-backup: --limit-rate takes bytes per "
                        "second, at least 1K (e.g. 500K, 2M)\n");
                return 2;
            }
            b.max_rate = (curl_off_t)v;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            b.quiet = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            return usage(stdout);
        } else if (a[0] == '-' || (b.folder && base)) {
            return usage(stderr);
        } else if (!b.folder) {
            b.folder = a;
        } else {
            base = strdup(a);
        }
    }
    if (!b.folder || !base)
        return usage(stderr);
    for (i = strlen(base); i > 0 && base[i - 1] == '/'; i--)
        base[i - 1] = '\0';
    b.base = base;
    b.chunk = (size_t)chunk_mib << 20;
    b.tty = isatty(STDERR_FILENO);
    snprintf(b.user_agent, sizeof(b.user_agent), "mi-backup/%s", mi_version());
    b.started = time(NULL);
    if (key && *key) {
        size_t n = strlen("Authorization: Bearer ") + strlen(key) + 1;

        if (!(b.auth_header = malloc(n)))
            goto out;
        snprintf(b.auth_header, n, "Authorization: Bearer %s", key);
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
        !(b.curl = curl_easy_init())) {
        fprintf(stderr, "mi-backup: cannot start libcurl\n");
        goto out;
    }

    /* 1. Index the folder; only what changed since last time is read. */
    io.flags = MI_INDEX_NO_THUMBNAILS;
    if ((s = mi_index_open(&idx, b.folder, &io, err, sizeof(err))) != MI_OK) {
        fprintf(stderr, "mi-backup: %s\n", err);
        goto out;
    }
    if (b.tty && !b.quiet)
        so.progress = show_scan;
    s = mi_scan(idx, &so, &st);
    if (so.progress)
        fputs("\r\033[K", stderr);
    if (s != MI_OK) {
        fprintf(stderr, "mi-backup: indexing %s: %s: %s\n", b.folder,
                mi_strerror(s), mi_index_errmsg(idx));
        goto out;
    }
    if (!b.quiet)
        say(&b, "%s: %" PRIu64 " files, %" PRIu64 " new or changed since "
            "the last run", b.folder, st.seen, st.added + st.changed);
    if (st.failed)
        say(&b, "%" PRIu64 " files of %s could not be read (see "
            "mi-scan or the server's /problems)", st.failed, b.folder);
    if (collect(&b, idx) != 0) {
        fprintf(stderr, "mi-backup: reading the index: %s\n",
                mi_index_errmsg(idx));
        goto out;
    }
    snprintf(b.state_path, sizeof(b.state_path), "%s/.mediaindex/" STATE_NAME,
             b.folder);
    state_load(&b);

    /* 2. Which of them the server has. */
    for (i = 0; i < b.n_items; i += CHECK_BATCH)
        if (check_batch(&b, i, i + CHECK_BATCH < b.n_items ? i + CHECK_BATCH
                                                           : b.n_items) != 0)
            goto out;
    for (i = 0; i < b.n_items; i++)
        if (!b.items[i].present) {
            missing++;
            b.bytes_total += b.items[i].size;
        }
    b.files_total = missing;
    human(total, sizeof(total), (double)b.bytes_total);
    if (!b.quiet)
        say(&b, "%zu of %zu on the server already; %zu to send (%s)",
            b.n_items - missing, b.n_items, missing, total);

    /* 3. Send what is missing. */
    if (missing && !(buf = malloc(b.chunk))) {
        say(&b, "out of memory");
        goto out;
    }
    for (i = 0; i < b.n_items; i++) {
        if (b.items[i].present)
            continue;
        if (upload(&b, &b.items[i], buf) != 0)
            b.failed++;
        b.files_done++;
        draw(&b, true);
    }
    if (b.tty && !b.quiet && missing)
        fputs("\r\033[K", stderr);
    {
        char sent[32];

        human(sent, sizeof(sent), (double)b.bytes_sent);
        if (!b.quiet || b.failed)
            say(&b, "%zu sent (%s: %" PRIu64 " bytes, %zu resumed), %zu "
                "already there, %zu failed", b.sent, sent, b.bytes_sent,
                b.resumed, b.n_items - missing + b.already, b.failed);
    }
    rc = b.failed ? 1 : 0;
out:
    for (i = 0; i < b.n_items; i++) {
        free(b.items[i].path);
        free(b.items[i].name);
    }
    free(b.items);
    for (i = 0; i < b.n_pend; i++)
        free(b.pend[i].url);
    free(b.pend);
    free(buf);
    free(b.auth_header);
    free(base);
    if (b.curl)
        curl_easy_cleanup(b.curl);
    curl_global_cleanup();
    mi_index_close(idx);
    return rc;
}
