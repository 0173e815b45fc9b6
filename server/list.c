/*
 * list.c - GET /list: every indexed image and video as one JSON object
 * keyed by SHA-256, streamed entry by entry in HTTP chunks of about
 * 64 KiB, never the whole index in memory.
 *
 * Each entry is printed by cJSON, from one object built per request and
 * re-pointed at each entry's values: the strings are references (no copy)
 * and the numbers raw text we format ourselves.  cJSON's own number
 * printer (sprintf, then sscanf to check the round trip) and the dozens of
 * allocations a fresh tree costs per entry were three quarters of the time
 * of a 100,000-entry list.
 */
#include "server.h"
#include "listcache.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIST_CHUNK (64u << 10)

/* Decimal digits of v into buf; returns the end.  */
static char *put_u64(char *buf, uint64_t v)
{
    char tmp[24];
    int n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *buf++ = tmp[--n];
    *buf = '\0';
    return buf;
}

static void put_i64(char *buf, int64_t v)
{
    if (v < 0) {
        *buf++ = '-';
        put_u64(buf, (uint64_t)0 - (uint64_t)v);
    } else {
        put_u64(buf, (uint64_t)v);
    }
}

/* Nanoseconds as exact decimal seconds: 1700000000.5, 1700000000. */
static void put_seconds(char *buf, int64_t ns)
{
    uint64_t a = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    uint64_t frac = a % 1000000000u;
    char *p = buf;
    int i;

    if (ns < 0)
        *p++ = '-';
    p = put_u64(p, a / 1000000000u);
    if (frac) {
        *p++ = '.';
        for (i = 8; i >= 0; i--) {
            p[i] = (char)('0' + frac % 10);
            frac /= 10;
        }
        p += 9;
        while (p[-1] == '0')
            p--;
        *p = '\0';
    }
}

/* One reusable object: the value of each member points into this struct
 * or into the current entry. */
struct tpl {
    cJSON *o;
    cJSON *sha, *filename, *last_modified, *file_path, *creation, *thumb, *size,
          *mime, *kind, *width, *height, *lat, *lon, *make, *model,
          *duration, *codec, *live, *city, *region, *country, *cc;
    bool has_wh, has_gps, has_make, has_model, has_duration, has_codec,
         has_live, has_city, has_region, has_country, has_cc;
    char lm[32], cd[24], sz[24], w[16], h[16], la[40], lo[40], du[24];
    char *fixed[11];       /* U+FFFD-repaired copies of this entry's strings */
    unsigned int hide;     /* LIST_NO_GPS, LIST_NO_PATH */
};

static cJSON *raw_ref(char *text)
{
    cJSON *it = cJSON_CreateNull();

    if (it) {
        it->type = cJSON_Raw | cJSON_IsReference;
        it->valuestring = text;
    }
    return it;
}

static bool add(cJSON *o, const char *key, cJSON *it)
{
    return it && cJSON_AddItemToObjectCS(o, key, it);
}

static void tpl_free(struct tpl *t)
{
    int i;

    if (!t->has_wh) {
        cJSON_Delete(t->width);
        cJSON_Delete(t->height);
    }
    if (!t->has_gps) {
        cJSON_Delete(t->lat);
        cJSON_Delete(t->lon);
    }
    if (!t->has_make)
        cJSON_Delete(t->make);
    if (!t->has_model)
        cJSON_Delete(t->model);
    if (!t->has_duration)
        cJSON_Delete(t->duration);
    if (!t->has_codec)
        cJSON_Delete(t->codec);
    if (!t->has_live)
        cJSON_Delete(t->live);
    if (!t->has_city)
        cJSON_Delete(t->city);
    if (!t->has_region)
        cJSON_Delete(t->region);
    if (!t->has_country)
        cJSON_Delete(t->country);
    if (!t->has_cc)
        cJSON_Delete(t->cc);
    cJSON_Delete(t->o);
    for (i = 0; i < 11; i++)
        free(t->fixed[i]);
}

static bool tpl_init(struct tpl *t, bool with_sha)
{
    memset(t, 0, sizeof(*t));
    t->o = cJSON_CreateObject();
    if (t->o && with_sha &&
        !add(t->o, "sha256", t->sha = cJSON_CreateStringReference("")))
        return false;
    t->width = raw_ref(t->w);
    t->height = raw_ref(t->h);
    t->lat = raw_ref(t->la);
    t->lon = raw_ref(t->lo);
    t->make = cJSON_CreateStringReference("");
    t->model = cJSON_CreateStringReference("");
    t->duration = raw_ref(t->du);
    t->codec = cJSON_CreateStringReference("");
    t->live = cJSON_CreateStringReference("");
    t->city = cJSON_CreateStringReference("");
    t->region = cJSON_CreateStringReference("");
    t->country = cJSON_CreateStringReference("");
    t->cc = cJSON_CreateStringReference("");
    return t->o && t->width && t->height && t->lat && t->lon && t->make &&
           t->model && t->duration && t->codec && t->live && t->city &&
           t->region && t->country && t->cc &&
           add(t->o, "filename", t->filename = cJSON_CreateStringReference("")) &&
           add(t->o, "last_modified", t->last_modified = raw_ref(t->lm)) &&
           add(t->o, "file_path", t->file_path = cJSON_CreateStringReference("")) &&
           add(t->o, "original_creation_date", t->creation = raw_ref(t->cd)) &&
           add(t->o, "thumbnail_file", t->thumb = cJSON_CreateStringReference("")) &&
           add(t->o, "size", t->size = raw_ref(t->sz)) &&
           add(t->o, "mime_type", t->mime = cJSON_CreateStringReference("")) &&
           add(t->o, "kind", t->kind = cJSON_CreateStringReference(""));
}

/* A string member pointing at s, repaired when it is not UTF-8. */
static bool set_str(struct tpl *t, cJSON *it, int slot, const char *s)
{
    free(t->fixed[slot]);
    t->fixed[slot] = NULL;
    if (!utf8_valid(s)) {
        if (!(t->fixed[slot] = utf8_replace(s)))
            return false;
        s = t->fixed[slot];
    }
    it->valuestring = (char *)s;
    return true;
}

/* Attach or detach an optional member, keeping the item either way. */
static void attach(cJSON *o, bool *attached, bool want, cJSON *it,
                   const char *key)
{
    if (want && !*attached)
        cJSON_AddItemToObjectCS(o, key, it);
    else if (!want && *attached)
        cJSON_DetachItemViaPointer(o, it);
    *attached = want;
}

static void set_optional(cJSON *o, bool *attached, bool want, cJSON *a,
                         const char *ka, cJSON *b, const char *kb)
{
    bool second = *attached;

    attach(o, attached, want, a, ka);
    attach(o, &second, want, b, kb);
}

/* An optional string member: present when s is. */
static bool set_optional_str(struct tpl *t, bool *attached, cJSON *it,
                             int slot, const char *key, const char *s)
{
    attach(t->o, attached, s != NULL, it, key);
    return !s || set_str(t, it, slot, s);
}

/* Point the template at entry e; returns an upper bound of its printed
 * length, or 0 when out of memory. */
static size_t tpl_set(struct tpl *t, const mi_entry *e)
{
    const char *thumb = mi_entry_thumbnail(e), *slash;
    double lat, lon;
    uint32_t place;
    bool gps;

    if (!set_str(t, t->filename, 0, mi_entry_filename(e)) ||
        !set_str(t, t->file_path, 1, (t->hide & LIST_NO_PATH)
                                         ? mi_entry_filename(e)
                                         : mi_entry_path(e)))
        return 0;
    if (thumb) {
        /* The contract names the thumbnail by its bare file name,
         * "<sha256>.png", not by its path under the storage folder. */
        slash = strrchr(thumb, '/');
        if (slash)
            thumb = slash + 1;
        if (!set_str(t, t->thumb, 2, thumb))
            return 0;
        t->thumb->type = cJSON_String | cJSON_IsReference | cJSON_StringIsConst;
    } else {
        t->thumb->type = cJSON_NULL | cJSON_IsReference | cJSON_StringIsConst;
    }
    t->mime->valuestring = (char *)(mi_entry_mime_type(e) ? mi_entry_mime_type(e)
                                                         : "application/octet-stream");
    t->kind->valuestring = mi_entry_kind(e) == MI_KIND_VIDEO ? "video" : "image";
    put_seconds(t->lm, mi_entry_mtime_ns(e));
    put_i64(t->cd, mi_entry_creation_date(e));
    put_u64(t->sz, mi_entry_size(e));
    set_optional(t->o, &t->has_wh, mi_entry_width(e) && mi_entry_height(e),
                 t->width, "width", t->height, "height");
    if (t->has_wh) {
        put_u64(t->w, mi_entry_width(e));
        put_u64(t->h, mi_entry_height(e));
    }
    gps = !(t->hide & LIST_NO_GPS) && mi_entry_gps(e, &lat, &lon) != 0;
    set_optional(t->o, &t->has_gps, gps, t->lat, "latitude", t->lon,
                 "longitude");
    if (gps) {
        snprintf(t->la, sizeof(t->la), "%.8f", lat);
        snprintf(t->lo, sizeof(t->lo), "%.8f", lon);
    }
    if (!set_optional_str(t, &t->has_make, t->make, 3, "make", mi_entry_make(e)) ||
        !set_optional_str(t, &t->has_model, t->model, 4, "model",
                          mi_entry_model(e)))
        return 0;
    /* Videos: "duration" in seconds; "codec" ("hevc", "h264"...);
     * "live_photo_id", Apple's id that pairs a Live Photo's parts. */
    attach(t->o, &t->has_duration, mi_entry_duration_ms(e) > 0, t->duration,
           "duration");
    if (t->has_duration)
        snprintf(t->du, sizeof(t->du), "%.3f", mi_entry_duration_ms(e) / 1000.0);
    if (!set_optional_str(t, &t->has_codec, t->codec, 5, "codec", mi_entry_codec(e)) ||
        !set_optional_str(t, &t->has_live, t->live, 6, "live_photo_id",
                          mi_entry_live_id(e)))
        return 0;
    /* The nearest place to the GPS position (GeoNames, in the library):
     * hidden with the position, which it would betray. */
    place = (t->hide & LIST_NO_GPS) ? 0 : mi_entry_place(e);
    if (!set_optional_str(t, &t->has_city, t->city, 7, "city",
                          mi_place_city(place)) ||
        !set_optional_str(t, &t->has_region, t->region, 8, "region",
                          mi_place_region(place)) ||
        !set_optional_str(t, &t->has_country, t->country, 9, "country",
                          mi_place_country(place)) ||
        !set_optional_str(t, &t->has_cc, t->cc, 10, "country_code",
                          mi_place_country_code(place)))
        return 0;
    /* Escaping writes at most 6 bytes per input byte. */
    return 6 * (strlen(t->filename->valuestring) +
                strlen(t->file_path->valuestring) +
                (thumb ? strlen(t->thumb->valuestring) : 0) +
                strlen(t->mime->valuestring) +
                (t->has_make ? strlen(t->make->valuestring) : 0) +
                (t->has_model ? strlen(t->model->valuestring) : 0) +
                (t->has_codec ? strlen(t->codec->valuestring) : 0) +
                (t->has_live ? strlen(t->live->valuestring) : 0) +
                (place ? strlen(t->city->valuestring) +
                             strlen(t->country->valuestring) +
                             (t->has_region ? strlen(t->region->valuestring) : 0)
                       : 0)) + 512;
}

/* Where a body goes: HTTP chunks to r, or (r NULL) sink(ctx, ...), which
 * returns false to stop. */
struct outbuf {
    struct req *r;
    char *buf;
    size_t cap, len;
    bool failed;          /* the client went away, or the sink failed */
    bool (*sink)(void *ctx, const char *p, size_t n);
    void *ctx;
};

static void out_flush(struct outbuf *b)
{
    if (b->len && !b->failed) {
        if (!b->r)
            b->failed = !b->sink(b->ctx, b->buf, b->len);
        else if (mg_send_chunk(b->r->conn, b->buf, (unsigned int)b->len) <= 0)
            b->failed = true;
        else
            b->r->bytes += b->len;
    }
    b->len = 0;
}

/* Make room for n more bytes. */
static bool out_room(struct outbuf *b, size_t n)
{
    if (b->len + n > LIST_CHUNK)
        out_flush(b);
    if (n > b->cap) {            /* one entry larger than a chunk */
        char *p = realloc(b->buf, n);
        if (!p)
            return false;
        b->buf = p;
        b->cap = n;
    }
    return true;
}

/* Local midnight starting the day "YYYY-MM-DD" plus `days`; false when
 * the text is not such a date. */
static bool local_midnight(const char *text, int days, int64_t *out)
{
    struct tm tm;
    int y, m, d, n = 0;

    if (sscanf(text, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 ||
        n != 10 || text[n] || m < 1 || m > 12 || d < 1 || d > 31 ||
        y < 1000)
        return false;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d + days;
    tm.tm_isdst = -1;
    *out = (int64_t)mktime(&tm);
    return true;
}

cJSON *list_entry_object(const mi_entry *e)
{
    struct tpl t;
    cJSON *o = NULL;

    /* A copy keeps the template's raw numbers as they are printed in
     * /list (printing and parsing the text back would give doubles, which
     * cJSON prints to within an epsilon: last_modified lost its last
     * digit now and then). */
    if (tpl_init(&t, false) && tpl_set(&t, e))
        o = cJSON_Duplicate(t.o, 1);
    tpl_free(&t);
    return o;
}

bool list_day_range(const char *from, const char *to, int64_t *lo,
                    int64_t *hi)
{
    *lo = INT64_MIN;
    *hi = INT64_MAX;
    return (!*from || local_midnight(from, 0, lo)) &&
           (!*to || local_midnight(to, 1, hi));
}

/* Print the entries of cur (s: its first step, MI_ROW or MI_DONE) into
 * out: an object keyed by hash, or NDJSON lines.  MI_DONE when all went
 * out; the body's end (the closing brace) is left to the caller. */
static mi_status list_entries(struct outbuf *out, struct tpl *t,
                              mi_cursor *cur, mi_status s, bool ndjson,
                              struct months *m)
{
    uint64_t n = 0;

    if (!ndjson)
        out->buf[out->len++] = '{';
    for (; s == MI_ROW && !out->failed; s = mi_cursor_next(cur)) {
        const mi_entry *e = mi_cursor_entry(cur);
        size_t need = tpl_set(t, e);

        if (m)
            months_add(m, mi_entry_creation_date(e));

        if (!need || !out_room(out, need + MI_HASH_HEX_LEN + 8)) {
            s = MI_ENOMEM;
            break;
        }
        if (ndjson) {
            /* One object per line, its hash inside: {"sha256":"...",...}.
             * The first lines can be shown before the rest arrive. */
            t->sha->valuestring = (char *)mi_entry_hash_hex(e);
        } else {
            if (n)
                out->buf[out->len++] = ',';
            out->buf[out->len++] = '"';
            memcpy(out->buf + out->len, mi_entry_hash_hex(e), MI_HASH_HEX_LEN);
            out->len += MI_HASH_HEX_LEN;
            out->buf[out->len++] = '"';
            out->buf[out->len++] = ':';
        }
        n++;
        if (!cJSON_PrintPreallocated(t->o, out->buf + out->len,
                                     (int)(out->cap - out->len), 0)) {
            s = MI_ENOMEM;
            break;
        }
        out->len += strlen(out->buf + out->len);
        if (ndjson) {
            out->buf[out->len++] = '\n';
            /* Send the newest entries at once: the first screenful. */
            if (n == 64)
                out_flush(out);
        }
    }
    return s;
}

mi_status list_render(mi_index *idx,
                      bool (*sink)(void *ctx, const char *p, size_t n),
                      void *ctx, struct months *m)
{
    struct outbuf out = { NULL, NULL, LIST_CHUNK, 0, false, sink, ctx };
    struct tpl t;
    mi_cursor *cur = NULL;
    mi_status s;

    if (!tpl_init(&t, false) || !(out.buf = malloc(LIST_CHUNK)))
        s = MI_ENOMEM;
    else
        s = mi_cursor_new(&cur, idx);
    if (s == MI_OK)
        s = mi_cursor_next(cur);
    if (s == MI_ROW || s == MI_DONE)
        s = list_entries(&out, &t, cur, s, false, m);
    if (s == MI_DONE && out_room(&out, 1)) {
        out.buf[out.len++] = '}';
        out_flush(&out);
    }
    if (s == MI_DONE && out.failed)
        s = MI_EIO;
    mi_cursor_free(cur);
    free(out.buf);
    tpl_free(&t);
    return s;
}

void route_list(struct req *r, const char *from, const char *to, bool ndjson)
{
    struct list_query lq = { from, to, NULL, NULL, NULL, NULL, ndjson, 0 };

    route_list_query(r, &lq);
}

void route_list_ex(struct req *r, const char *from, const char *to,
                   bool ndjson, unsigned int hide)
{
    struct list_query lq = { from, to, NULL, NULL, NULL, NULL, ndjson, hide };

    route_list_query(r, &lq);
}

/* NULL for "" (an empty query parameter is no filter). */
static const char *given(const char *s)
{
    return s && *s ? s : NULL;
}

/* A tag of the search filters, for the ETag: FNV-1a of each, 0 for none. */
static uint64_t filters_tag(const struct list_query *lq)
{
    const char *v[4] = { given(lq->q), given(lq->place), given(lq->city),
                         given(lq->country) };
    uint64_t h = 14695981039346656037u;
    bool any = false;

    for (int i = 0; i < 4; i++) {
        for (const char *c = v[i]; c && *c; c++)
            h = (h ^ (unsigned char)*c) * 1099511628211u;
        h = (h ^ (v[i] ? 0xfe : 0xff)) * 1099511628211u;
        any = any || v[i];
    }
    return any ? h | 1 : 0;
}

void route_list_query(struct req *r, const struct list_query *lq)
{
    const char *from = lq->from, *to = lq->to;
    bool ndjson = lq->ndjson;
    unsigned int hide = lq->hide;
    uint64_t ftag = filters_tag(lq);
    struct server *srv = r->srv;
    char etag[160], extra[224];
    mi_cursor_options co = MI_CURSOR_OPTIONS_INIT;
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    const char *ctype;
    struct outbuf out = { r, NULL, LIST_CHUNK, 0, false, NULL, NULL };
    struct tpl t;
    mi_cursor *cur = NULL;
    mi_status s;
    uint64_t gen;
    bool plain;

    /* The generation is read before the cursor takes its snapshot: a scan
     * committing in between makes the tag older than the body (the client
     * fetches again next time), never newer (a stale body kept for good). */
    if ((*from && !local_midnight(from, 0, &lo)) ||
        (*to && !local_midnight(to, 1, &hi))) {
        send_error(r, 400, NULL, "malformed date: expected YYYY-MM-DD");
        return;
    }
    if (*from || *to) {
        co.flags |= MI_CURSOR_DATE_RANGE;
        co.date_from = lo;
        co.date_to = hi;
    }
    if (ndjson)
        co.flags |= MI_CURSOR_NEWEST_FIRST;
    co.query = given(lq->q);
    co.place = given(lq->place);
    co.city = given(lq->city);
    co.country = given(lq->country);
    gen = mi_index_generation(srv->idx);
    snprintf(etag, sizeof(etag), "\"g%" PRIu64 "%s%s%s%s%s%s%s%.0" PRIx64 "\"",
             gen, *from ? "-f" : "", from,
             *to ? "-t" : "", to, ndjson ? "-n" : "", hide ? "-s" : "",
             ftag ? "-q" : "", ftag);
    plain = !*from && !*to && !ndjson && !hide && !ftag;
    snprintf(extra, sizeof(extra), "ETag: %s\r\nCache-Control: no-cache\r\n%s",
             etag, plain ? "Vary: Accept-Encoding\r\n" : "");
    if (if_none_match(r, etag)) {
        send_headers(r, 304, NULL, 0, extra);
        return;
    }
    if (plain) {
        /* The same generation's gzip copy (listcache.c) is the same list. */
        char ztag[40];

        snprintf(ztag, sizeof(ztag), "\"g%" PRIu64 "-z\"", gen);
        if (if_none_match(r, ztag)) {
            snprintf(extra, sizeof(extra), "ETag: %s\r\nCache-Control: "
                     "no-cache\r\nVary: Accept-Encoding\r\n", ztag);
            send_headers(r, 304, NULL, 0, extra);
            return;
        }
        if (list_cache_send(srv->list_cache, r))
            return;
    }
    ctype = ndjson ? "application/x-ndjson" : "application/json";
    if (r->head && !ftag) {
        send_headers(r, 200, ctype, -1, extra);
        return;
    }
    if (r->head) {
        /* A search is read first: HEAD answers 400 as GET would. */
        s = mi_cursor_new_with(&cur, srv->idx, &co);
        mi_cursor_free(cur);
        if (s != MI_OK)
            send_mi_error(r, s, "cannot list the index");
        else
            send_headers(r, 200, ctype, -1, extra);
        return;
    }
    if (!tpl_init(&t, ndjson) || !(out.buf = malloc(LIST_CHUNK)))
        s = MI_ENOMEM;
    else
        s = mi_cursor_new_with(&cur, srv->idx, &co);
    t.hide = hide;
    if (s == MI_OK)
        s = mi_cursor_next(cur);
    if (s != MI_ROW && s != MI_DONE) {
        send_mi_error(r, s, "cannot list the index");
        goto done;
    }
    send_headers(r, 200, ctype, -1, extra);
    s = list_entries(&out, &t, cur, s, ndjson, NULL);
    if (s == MI_DONE) {
        out_room(&out, 1);
        if (!ndjson)
            out.buf[out.len++] = '}';
        out_flush(&out);
        if (!out.failed)
            mg_send_chunk(r->conn, "", 0);   /* the last chunk */
    } else {
        /* The status line is gone: end without the last chunk, so the
         * client sees a truncated body rather than a short list. */
        if (!out.failed)
            fprintf(stderr, "media-server: /list cut short: %s: %s\n",
                    mi_strerror(s), mi_index_errmsg(srv->idx));
        r->close = true;
        mg_disable_connection_keep_alive(r->conn);
    }
done:
    mi_cursor_free(cur);
    free(out.buf);
    tpl_free(&t);
}

/* The entries of these hashes (a share link's items), as NDJSON, newest
 * first; hashes no longer indexed are left out. */
struct hrow {
    int64_t date;
    size_t i;
};

static int hrow_newest_first(const void *x, const void *y)
{
    const struct hrow *a = x, *b = y;

    return a->date < b->date ? 1 : a->date > b->date ? -1
         : a->i < b->i ? -1 : a->i > b->i;
}

void route_list_hashes(struct req *r, const uint8_t (*h)[32], size_t n,
                       unsigned int hide)
{
    struct outbuf out = { r, NULL, LIST_CHUNK, 0, false, NULL, NULL };
    struct hrow *rows = NULL;
    struct tpl t;
    size_t i, nr = 0;
    bool ok;

    if (r->head) {
        send_headers(r, 200, "application/x-ndjson", -1,
                     "Cache-Control: no-store\r\n");
        return;
    }
    ok = tpl_init(&t, true) && (out.buf = malloc(LIST_CHUNK)) &&
         (rows = malloc((n ? n : 1) * sizeof(*rows)));
    t.hide = hide;
    /* Dates first, to send the newest first as /list?format=ndjson does. */
    for (i = 0; ok && i < n; i++) {
        mi_entry *e = NULL;

        if (mi_lookup(&e, r->srv->idx, h[i]) != MI_OK)
            continue;
        rows[nr].date = mi_entry_creation_date(e);
        rows[nr++].i = i;
        mi_entry_free(e);
    }
    if (!ok) {
        send_error(r, 500, NULL, "out of memory");
        goto done;
    }
    qsort(rows, nr, sizeof(*rows), hrow_newest_first);
    send_headers(r, 200, "application/x-ndjson", -1,
                 "Cache-Control: no-store\r\n");
    for (i = 0; i < nr && !out.failed; i++) {
        mi_entry *e = NULL;
        size_t need;

        if (mi_lookup(&e, r->srv->idx, h[rows[i].i]) != MI_OK)
            continue;
        need = tpl_set(&t, e);
        if (!need || !out_room(&out, need + MI_HASH_HEX_LEN + 8)) {
            mi_entry_free(e);
            ok = false;
            break;
        }
        t.sha->valuestring = (char *)mi_entry_hash_hex(e);
        if (!cJSON_PrintPreallocated(t.o, out.buf + out.len,
                                     (int)(out.cap - out.len), 0)) {
            mi_entry_free(e);
            ok = false;
            break;
        }
        mi_entry_free(e);
        out.len += strlen(out.buf + out.len);
        out.buf[out.len++] = '\n';
    }
    if (ok) {
        out_flush(&out);
        if (!out.failed)
            mg_send_chunk(r->conn, "", 0);
    } else {
        r->close = true;
        mg_disable_connection_keep_alive(r->conn);
    }
done:
    free(rows);
    free(out.buf);
    tpl_free(&t);
}

/*
 * GET /api/changes?since=T&limit=N: what changed after token T, as NDJSON,
 * one line per content in the order of its last change:
 *   {"change":"upsert","seq":"S","entry":{...its /list NDJSON object...}}
 *   {"change":"delete","seq":"S","sha256":"..."}
 * and last {"change":"end","token":"T2","more":false}: ask from T2 next
 * (at once when "more").  A token of 0, one too old or of another catalog
 * gets the single line {"change":"reset","token":"T"}: read /list, then
 * ask from T.  Tokens are decimal strings, to be kept as they are.
 */
void route_changes(struct req *r, const char *since_arg, const char *limit_arg)
{
    struct outbuf out = { r, NULL, LIST_CHUNK, 0, false, NULL, NULL };
    unsigned long long since = 0, limit = CHANGES_LIMIT_DEFAULT;
    mi_changes *ch = NULL;
    struct tpl t;
    uint64_t token = 0;
    char *end, line[256];
    mi_status s;

    if (*since_arg) {
        errno = 0;
        since = strtoull(since_arg, &end, 10);
        if (errno || *end || since_arg[0] == '-') {
            send_error(r, 400, NULL, "since: a token from an earlier answer "
                       "(digits), or 0");
            return;
        }
    }
    if (*limit_arg) {
        limit = strtoull(limit_arg, &end, 10);
        if (*end || limit_arg[0] == '-' || limit < 1 ||
            limit > CHANGES_LIMIT_MAX) {
            send_error(r, 400, NULL, "limit: 1 to %u", CHANGES_LIMIT_MAX);
            return;
        }
    }
    s = mi_changes_new(&ch, r->srv->idx, (uint64_t)since, (size_t)limit);
    if (s == MI_ERESET) {
        s = mi_index_change_token(r->srv->idx, &token);
        if (s == MI_OK) {
            snprintf(line, sizeof(line), "{\"change\":\"reset\",\"token\":\""
                     "%" PRIu64 "\"}\n", token);
            send_headers(r, 200, "application/x-ndjson", (int64_t)strlen(line),
                         "Cache-Control: no-store\r\n");
            send_body(r, line, strlen(line));
            return;
        }
    }
    if (s != MI_OK) {
        send_mi_error(r, s, "cannot read the change feed");
        return;
    }
    if (!tpl_init(&t, true) || !(out.buf = malloc(LIST_CHUNK))) {
        send_mi_error(r, MI_ENOMEM, "cannot read the change feed");
        goto done;
    }
    send_headers(r, 200, "application/x-ndjson", -1, "Cache-Control: no-store\r\n");
    if (r->head)
        goto done;
    while (!out.failed && (s = mi_changes_next(ch)) == MI_ROW) {
        const mi_entry *e = mi_changes_entry(ch);
        size_t need;
        int n;

        if (!e) {
            n = snprintf(line, sizeof(line), "{\"change\":\"delete\",\"seq\":"
                         "\"%" PRIu64 "\",\"sha256\":\"%s\"}\n",
                         mi_changes_seq(ch), mi_changes_hash_hex(ch));
            if (!out_room(&out, (size_t)n)) {
                s = MI_ENOMEM;
                break;
            }
            memcpy(out.buf + out.len, line, (size_t)n);
            out.len += (size_t)n;
            continue;
        }
        need = tpl_set(&t, e);
        n = snprintf(line, sizeof(line), "{\"change\":\"upsert\",\"seq\":"
                     "\"%" PRIu64 "\",\"entry\":", mi_changes_seq(ch));
        if (!need || !out_room(&out, need + (size_t)n + 4)) {
            s = MI_ENOMEM;
            break;
        }
        memcpy(out.buf + out.len, line, (size_t)n);
        out.len += (size_t)n;
        t.sha->valuestring = (char *)mi_entry_hash_hex(e);
        if (!cJSON_PrintPreallocated(t.o, out.buf + out.len,
                                     (int)(out.cap - out.len), 0)) {
            s = MI_ENOMEM;
            break;
        }
        out.len += strlen(out.buf + out.len);
        out.buf[out.len++] = '}';
        out.buf[out.len++] = '\n';
    }
    if (s == MI_DONE) {
        int n = snprintf(line, sizeof(line), "{\"change\":\"end\",\"token\":"
                         "\"%" PRIu64 "\",\"more\":%s}\n",
                         mi_changes_token(ch),
                         mi_changes_more(ch) ? "true" : "false");

        out_room(&out, (size_t)n);
        memcpy(out.buf + out.len, line, (size_t)n);
        out.len += (size_t)n;
        out_flush(&out);
        if (!out.failed)
            mg_send_chunk(r->conn, "", 0);
    } else {
        /* No "end" line: the client sees the feed cut short, keeps its
         * token and asks again. */
        if (!out.failed)
            fprintf(stderr, "media-server: /api/changes cut short: %s: %s\n",
                    mi_strerror(s), mi_index_errmsg(r->srv->idx));
        r->close = true;
        mg_disable_connection_keep_alive(r->conn);
    }
done:
    mi_changes_free(ch);
    free(out.buf);
    tpl_free(&t);
}

/* GET /api/trash: what is in the trash, the most recently trashed first,
 * each with the /list fields (its paths where they were), sha256,
 * trashed_at and purge_at (seconds since the epoch). */
void route_trash_list(struct req *r)
{
    struct outbuf out = { r, NULL, LIST_CHUNK, 0, false, NULL, NULL };
    mi_cursor *cur = NULL;
    struct tpl t;
    uint64_t n = 0;
    char tail[96];
    mi_status s;

    if (!tpl_init(&t, true) || !(out.buf = malloc(LIST_CHUNK))) {
        send_mi_error(r, MI_ENOMEM, "cannot list the trash");
        goto done;
    }
    s = mi_trash_cursor(&cur, r->srv->idx);
    if (s == MI_OK)
        s = mi_cursor_next(cur);
    if (s != MI_ROW && s != MI_DONE) {
        send_mi_error(r, s, "cannot list the trash");
        goto done;
    }
    send_headers(r, 200, "application/json", -1, "Cache-Control: no-store\r\n");
    if (r->head)
        goto done;
    memcpy(out.buf, "{\"items\":[", 10);
    out.len = 10;
    for (; s == MI_ROW && !out.failed; s = mi_cursor_next(cur)) {
        const mi_entry *e = mi_cursor_entry(cur);
        int64_t at = mi_entry_trashed_at(e);
        size_t need = tpl_set(&t, e);
        int k;

        if (!need || !out_room(&out, need + 96)) {
            s = MI_ENOMEM;
            break;
        }
        if (n++)
            out.buf[out.len++] = ',';
        t.sha->valuestring = (char *)mi_entry_hash_hex(e);
        if (!cJSON_PrintPreallocated(t.o, out.buf + out.len,
                                     (int)(out.cap - out.len), 0)) {
            s = MI_ENOMEM;
            break;
        }
        out.len += strlen(out.buf + out.len) - 1;   /* drop the '}' */
        k = snprintf(out.buf + out.len, out.cap - out.len,
                     ",\"trashed_at\":%" PRId64 ",\"purge_at\":%" PRId64 "}",
                     at, at + (int64_t)r->srv->trash_days * 86400);
        out.len += (size_t)k;
    }
    if (s == MI_DONE) {
        int k = snprintf(tail, sizeof(tail), "],\"count\":%" PRIu64 "}", n);

        out_room(&out, (size_t)k);
        memcpy(out.buf + out.len, tail, (size_t)k);
        out.len += (size_t)k;
        out_flush(&out);
        if (!out.failed)
            mg_send_chunk(r->conn, "", 0);
    } else {
        r->close = true;
        mg_disable_connection_keep_alive(r->conn);
    }
done:
    mi_cursor_free(cur);
    free(out.buf);
    tpl_free(&t);
}

/* GET /api/places: the places of the library, by country, each with its
 * count and a cover (the newest content there), and the data's credit.
 * At most every place of the gazetteer (about 24,000). */
void route_places(struct req *r)
{
    struct server *srv = r->srv;
    char etag[64], extra[160];
    cJSON *o = cJSON_CreateObject(), *countries = NULL, *country = NULL,
          *cities = NULL;
    uint64_t country_count = 0;
    mi_places *p = NULL;
    mi_status s;
    bool ok;

    snprintf(etag, sizeof(etag), "\"g%" PRIu64 "-places\"",
             mi_index_generation(srv->idx));
    snprintf(extra, sizeof(extra), "ETag: %s\r\nCache-Control: no-cache\r\n",
             etag);
    if (if_none_match(r, etag)) {
        cJSON_Delete(o);
        send_headers(r, 304, NULL, 0, extra);
        return;
    }
    ok = o && cJSON_AddStringToObject(o, "data", mi_places_version()) &&
         cJSON_AddStringToObject(o, "credit", "Place names: GeoNames "
                                 "(geonames.org), CC BY 4.0") &&
         (countries = cJSON_AddArrayToObject(o, "countries"));
    s = ok ? mi_places_new(&p, srv->idx) : MI_ENOMEM;
    while (s != MI_ENOMEM && p && (s = mi_places_next(p)) == MI_ROW) {
        uint32_t place = mi_places_place(p);
        const char *cc = mi_place_country_code(place);
        cJSON *city = cJSON_CreateObject();
        double lat = 0, lon = 0;

        if (!country ||
            strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(country,
                                                            "country_code")),
                   cc) != 0) {
            if (country)
                cJSON_SetNumberValue(cJSON_GetObjectItem(country, "count"),
                                     (double)country_count);
            country_count = 0;
            country = cJSON_CreateObject();
            if (!country || !cJSON_AddItemToArray(countries, country) ||
                !cJSON_AddStringToObject(country, "country",
                                         mi_place_country(place)) ||
                !cJSON_AddStringToObject(country, "country_code", cc) ||
                !cJSON_AddNumberToObject(country, "count", 0) ||
                !cJSON_AddStringToObject(country, "cover",
                                         mi_places_cover_hex(p)) ||
                !(cities = cJSON_AddArrayToObject(country, "cities"))) {
                cJSON_Delete(city);
                s = MI_ENOMEM;
                break;
            }
        }
        country_count += mi_places_count(p);
        mi_place_coords(place, &lat, &lon);
        if (!city || !cJSON_AddItemToArray(cities, city) ||
            !cJSON_AddStringToObject(city, "city", mi_place_city(place)) ||
            (mi_place_region(place) &&
             !cJSON_AddStringToObject(city, "region", mi_place_region(place))) ||
            !cJSON_AddNumberToObject(city, "count",
                                     (double)mi_places_count(p)) ||
            !cJSON_AddStringToObject(city, "cover", mi_places_cover_hex(p)) ||
            !cJSON_AddNumberToObject(city, "latitude", lat) ||
            !cJSON_AddNumberToObject(city, "longitude", lon)) {
            s = MI_ENOMEM;
            break;
        }
    }
    mi_places_free(p);
    if (s != MI_DONE) {
        cJSON_Delete(o);
        send_mi_error(r, s, "cannot list the places");
        return;
    }
    if (country)
        cJSON_SetNumberValue(cJSON_GetObjectItem(country, "count"),
                             (double)country_count);
    if (r->head) {
        cJSON_Delete(o);
        send_headers(r, 200, "application/json", -1, extra);
        return;
    }
    send_cjson(r, 200, o, extra);
}

/* ---------------------------------------------------------------------- */
/* Months                                                                  */

#define MONTH_SLOTS (10000 * 12)  /* years 0000 to 9999 */
#define MONTH_SPANS 16384         /* 45 years of days; 384 KiB */

bool months_init(struct months *m)
{
    memset(m, 0, sizeof(*m));
    m->count = calloc(MONTH_SLOTS, sizeof(*m->count));
    m->spans = calloc(MONTH_SPANS, sizeof(*m->spans));
    if (m->count && m->spans)
        return true;
    months_free(m);
    return false;
}

void months_free(struct months *m)
{
    free(m->count);
    free(m->spans);
    m->count = NULL;
    m->spans = NULL;
}

/* Counts d in its local calendar month.  Dates come in any order (the
 * catalog's is by hash): the month found for a day is kept as its bounds
 * [lo, hi) in that day's span, so the calendar (localtime_r, two mktime:
 * about 5 us, most of a timeline's time at 1,000,000 items) is asked about
 * once a day of the library rather than once per date.  Days are UTC: a
 * local month's edge may fall inside one, and a date on the other side of
 * it is looked up again. */
void months_add(struct months *m, int64_t d)
{
    int64_t day = d / 86400 - (d % 86400 < 0);
    struct month_span *sp = &m->spans[(uint64_t)day % MONTH_SPANS];

    if (!(d >= sp->lo && d < sp->hi)) {
        time_t tt = (time_t)d;
        struct tm tm;
        int year;

        sp->lo = sp->hi = 0;
        if ((int64_t)tt != d || !localtime_r(&tt, &tm) ||
            tm.tm_year < -1900 || tm.tm_year > 9999 - 1900) {
            /* Beyond the calendar: counted in January 1970, as the
             * gallery shows it, and not cached. */
            sp->slot = 1970 * 12;
        } else {
            year = tm.tm_year + 1900;
            sp->slot = (size_t)year * 12 + (size_t)tm.tm_mon;
            tm.tm_mday = 1;
            tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
            tm.tm_isdst = -1;
            tt = mktime(&tm);
            if (tt != (time_t)-1 && (int64_t)tt <= d) {
                sp->lo = (int64_t)tt;
                tm.tm_mon++;      /* mktime carries it into the year */
                tm.tm_mday = 1;
                tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
                tm.tm_isdst = -1;
                tt = mktime(&tm);
                sp->hi = tt != (time_t)-1 && (int64_t)tt > d ? (int64_t)tt
                                                             : sp->lo;
            }
        }
    }
    m->count[sp->slot]++;
    m->total++;
}

/* {"months":[{"month":"YYYY-MM","count":N},...],"total":N}, newest first. */
cJSON *months_json(const struct months *m)
{
    cJSON *o = cJSON_CreateObject(), *a;
    char key[16];

    if (!o || !(a = cJSON_AddArrayToObject(o, "months")))
        goto fail;
    for (size_t i = MONTH_SLOTS; i-- > 0;) {
        cJSON *it;

        if (!m->count[i])
            continue;
        snprintf(key, sizeof(key), "%04u-%02u", (unsigned)(i / 12),
                 (unsigned)(i % 12 + 1));
        if (!(it = cJSON_CreateObject()) || !cJSON_AddItemToArray(a, it) ||
            !json_add_string(it, "month", key) ||
            !cJSON_AddNumberToObject(it, "count", (double)m->count[i]))
            goto fail;
    }
    if (!cJSON_AddNumberToObject(o, "total", (double)m->total))
        goto fail;
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

/* GET /api/timeline: how many items each local calendar month holds,
 * newest first, with the filters of /list (dates, q, place): what a
 * gallery needs to lay out a library it has not downloaded, then fetch
 * each month with /list?format=ndjson&from=Y-M-01&to=Y-M-L as it comes
 * into view.  The whole library's comes from the list cache (counted as
 * it renders /list); before the cache has the current generation (a
 * change, until the render that follows it), from the dates alone
 * (mi_index_dates: at 1,000,000 items 0.2-0.3 s where walking the entries
 * took 3.7-5.9 s); filtered ones walk their query's entries. */
static int timeline_date(void *ctx, int64_t date)
{
    months_add(ctx, date);
    return 0;
}

void route_timeline(struct req *r, const struct list_query *lq)
{
    struct server *srv = r->srv;
    uint64_t ftag = filters_tag(lq), gen;
    char etag[160], extra[224], *cached;
    mi_cursor_options co = MI_CURSOR_OPTIONS_INIT;
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    bool filtered = *lq->from || *lq->to || ftag;
    struct months m;
    mi_cursor *cur = NULL;
    cJSON *o = NULL;
    mi_status s;

    if (!list_day_range(lq->from, lq->to, &lo, &hi)) {
        send_error(r, 400, NULL, "malformed date: expected YYYY-MM-DD");
        return;
    }
    gen = mi_index_generation(srv->idx);
    snprintf(etag, sizeof(etag), "\"g%" PRIu64 "-timeline%s%s%s%s%s%.0" PRIx64
             "\"", gen, *lq->from ? "-f" : "", lq->from, *lq->to ? "-t" : "",
             lq->to, ftag ? "-q" : "", ftag);
    snprintf(extra, sizeof(extra), "ETag: %s\r\nCache-Control: no-cache\r\n",
             etag);
    if (if_none_match(r, etag)) {
        send_headers(r, 304, NULL, 0, extra);
        return;
    }
    if (!filtered && (cached = list_cache_timeline(srv->list_cache, gen))) {
        send_json(r, 200, cached, extra);
        free(cached);
        return;
    }
    if (!months_init(&m)) {
        send_error(r, 500, NULL, "out of memory");
        return;
    }
    if (!filtered) {
        uint64_t seen;

        s = mi_index_dates(srv->idx, &seen, timeline_date, &m);
        if (s == MI_OK) {
            s = MI_DONE;                     /* all of them, as a cursor's */
            if (seen != gen)  /* a commit since: name what was counted */
                snprintf(extra, sizeof(extra), "ETag: \"g%" PRIu64
                         "-timeline\"\r\nCache-Control: no-cache\r\n", seen);
        }
    } else {
        co.flags = MI_CURSOR_NEWEST_FIRST;   /* walks files_by_date */
        if (*lq->from || *lq->to) {
            co.flags |= MI_CURSOR_DATE_RANGE;
            co.date_from = lo;
            co.date_to = hi;
        }
        co.query = given(lq->q);
        co.place = given(lq->place);
        s = mi_cursor_new_with(&cur, srv->idx, &co);
        while (s == MI_OK && (s = mi_cursor_next(cur)) == MI_ROW) {
            months_add(&m, mi_entry_creation_date(mi_cursor_entry(cur)));
            s = MI_OK;
        }
        mi_cursor_free(cur);
    }
    if (s == MI_DONE && !(o = months_json(&m)))
        s = MI_ENOMEM;
    months_free(&m);
    if (s != MI_DONE) {
        send_mi_error(r, s, "cannot read the timeline");
        return;
    }
    send_cjson(r, 200, o, extra);
}

/* GET /api/items/<sha256>: one entry, the object its /list NDJSON line
 * holds (with "sha256"); 404 when no indexed content has this hash (a
 * trashed one has left the catalog).  A gallery opened on a link to an
 * item whose month it has not fetched asks for it here. */
void route_item(struct req *r, const uint8_t hash[MI_HASH_SIZE])
{
    struct tpl t;
    mi_entry *e = NULL;
    char *text = NULL;
    mi_status s;

    s = mi_lookup(&e, r->srv->idx, hash);
    if (s == MI_ENOTFOUND) {
        send_error(r, 404, NULL, "no item with this hash");
        return;
    }
    if (s != MI_OK) {
        send_mi_error(r, s, "cannot read the item");
        return;
    }
    if (tpl_init(&t, true) && tpl_set(&t, e)) {
        t.sha->valuestring = (char *)mi_entry_hash_hex(e);
        text = cJSON_PrintUnformatted(t.o);
    }
    if (text)
        send_json(r, 200, text, "Cache-Control: no-cache\r\n");
    else
        send_error(r, 500, NULL, "out of memory");
    cJSON_free(text);
    tpl_free(&t);
    mi_entry_free(e);
}
