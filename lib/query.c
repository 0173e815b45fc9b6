/*
 * query.c - the search language of /list?q= and the gallery's search box.
 *
 *   words          free words: each must start a word of the file's path,
 *                  place (city, region, country, code) or camera
 *   "two words"    a phrase, in the same places
 *   date:2021  date:2021-06  date:2021-06-03   (also bare: 2021, 2021-06)
 *   between:2021-05..2021-07-15   (either end may be left out)
 *   place:Helsinki  location:Finland  place:"New York"  place:Paris,FR
 *                  a city, region or country (name or ISO code), compared
 *                  without case or accents
 *   camera:pixel   make or model words
 *   type:photo  type:video
 *
 * Terms are combined with AND.  Dates are the server's local calendar, as
 * in /list/date/.  Everything a client can send is parsed here, bounded,
 * and turned into numbers, place runs and one FTS5 expression built only
 * of quoted strings: no text of the query reaches SQL unquoted.
 */
#include "mi-private.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUERY_MAX 1024          /* bytes of a query */
#define TERMS_MAX 32

static mi_status fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    char msg[256];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mi_bufprintf(err, errlen, "search: %s", msg);
    return MI_EINVAL;
}

/* Local midnight of y-m-d plus `days`. */
static int64_t midnight(int y, int m, int d)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm);
}

/* "YYYY", "YYYY-MM" or "YYYY-MM-DD": the instants [lo, hi) it covers. */
static bool parse_date(const char *s, size_t len, int64_t *lo, int64_t *hi)
{
    int y = 0, m = 0, d = 0;

    if (len != 4 && len != 7 && len != 10)
        return false;
    for (size_t i = 0; i < len; i++) {
        bool dash = i == 4 || i == 7;
        if (dash ? s[i] != '-' : !isdigit((unsigned char)s[i]))
            return false;
    }
    y = atoi(s);
    if (len >= 7)
        m = (s[5] - '0') * 10 + (s[6] - '0');
    if (len == 10)
        d = (s[8] - '0') * 10 + (s[9] - '0');
    if (y < 1000 || (len >= 7 && (m < 1 || m > 12)) ||
        (len == 10 && (d < 1 || d > 31)))
        return false;
    if (len == 4) {
        *lo = midnight(y, 1, 1);
        *hi = midnight(y + 1, 1, 1);
    } else if (len == 7) {
        *lo = midnight(y, m, 1);
        *hi = midnight(y, m + 1, 1);
    } else {
        *lo = midnight(y, m, d);
        *hi = midnight(y, m, d + 1);
    }
    return true;
}

static void narrow(mi_query *q, int64_t lo, int64_t hi)
{
    if (lo > q->date_from)
        q->date_from = lo;
    if (hi < q->date_to)
        q->date_to = hi;
}

/* Keep only the places in both run lists. */
static void intersect(mi_place_runs *a, const mi_place_runs *b)
{
    mi_place_runs out;
    size_t i = 0, j = 0;

    out.n = 0;
    while (i < a->n && j < b->n && out.n < MI_PLACE_RUNS_MAX) {
        uint32_t lo = a->run[i].first > b->run[j].first ? a->run[i].first
                                                        : b->run[j].first;
        uint32_t hi = a->run[i].last < b->run[j].last ? a->run[i].last
                                                      : b->run[j].last;
        if (lo <= hi) {
            out.run[out.n].first = lo;
            out.run[out.n].last = hi;
            out.n++;
        }
        if (a->run[i].last < b->run[j].last)
            i++;
        else
            j++;
    }
    *a = out;
}

mi_status mi_query_places(mi_query *q, const mi_place_runs *r)
{
    if (!q->has_places) {
        q->places = *r;
        q->has_places = true;
    } else {
        intersect(&q->places, r);
    }
    return MI_OK;
}

/* Append `s` to the FTS5 expression as a quoted string (a phrase of its
 * words), a prefix unless it is a quoted phrase; `column` NULL for all. */
static mi_status add_match(mi_query *q, const char *column, const char *s,
                           size_t len, bool prefix, char *err, size_t errlen)
{
    size_t need = len * 2 + 32, n = q->match ? strlen(q->match) : 0;
    bool word = false;
    char *m, *p;

    for (size_t i = 0; i < len; i++)
        if (isalnum((unsigned char)s[i]) || (unsigned char)s[i] >= 0x80)
            word = true;
    if (!word)
        return MI_OK;   /* punctuation alone matches everything */
    m = realloc(q->match, n + need);
    if (!m)
        return fail(err, errlen, "out of memory");
    q->match = m;
    p = m + n;
    if (n) {
        memcpy(p, " AND ", 5);
        p += 5;
    }
    if (column)
        p += sprintf(p, "%s : ", column);
    *p++ = '"';
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"')
            *p++ = '"';
        *p++ = s[i];
    }
    *p++ = '"';
    if (prefix)
        *p++ = '*';
    *p = 0;
    return MI_OK;
}

/* One token: the text, its length, whether it was quoted. */
typedef struct {
    const char *key;            /* "place" for place:..., else NULL */
    size_t key_len;
    char value[MI_PLACE_NAME_MAX];
    size_t len;
    bool quoted;
} term;

/* Read the next term at *p; false at the end. */
static bool next_term(const char **p, term *t, bool *too_long, bool *open_quote)
{
    const char *s = *p;
    size_t n = 0;

    while (*s && isspace((unsigned char)*s))
        s++;
    if (!*s)
        return false;
    t->key = NULL;
    t->key_len = 0;
    t->quoted = false;
    /* key: letters then ':' */
    {
        const char *k = s;
        while (isalpha((unsigned char)*k))
            k++;
        if (k > s && *k == ':') {
            t->key = s;
            t->key_len = (size_t)(k - s);
            s = k + 1;
        }
    }
    if (*s == '"') {
        t->quoted = true;
        s++;
        while (*s && *s != '"') {
            if (n + 1 < sizeof(t->value))
                t->value[n++] = *s;
            else
                *too_long = true;
            s++;
        }
        if (*s == '"')
            s++;
        else
            *open_quote = true;
    } else {
        while (*s && !isspace((unsigned char)*s)) {
            if (n + 1 < sizeof(t->value))
                t->value[n++] = *s;
            else
                *too_long = true;
            s++;
        }
    }
    t->value[n] = 0;
    t->len = n;
    *p = s;
    return true;
}

static bool key_is(const term *t, const char *k)
{
    return t->key_len == strlen(k) && strncasecmp(t->key, k, t->key_len) == 0;
}

static mi_status place_term(mi_query *q, const term *t, char *err,
                            size_t errlen)
{
    mi_place_runs *r = malloc(sizeof(*r));
    char *comma = strchr(t->value, ',');
    mi_status s;

    if (!r)
        return fail(err, errlen, "out of memory");
    if (comma) {
        /* "city, country" (or region, country) */
        *comma = 0;
        s = mi_place_match(r, t->value, comma + 1,
                           MI_PLACE_CITY | MI_PLACE_REGION);
        *comma = ',';
    } else {
        s = mi_place_match(r, t->value, NULL,
                           MI_PLACE_CITY | MI_PLACE_REGION | MI_PLACE_COUNTRY);
    }
    if (s == MI_OK)
        s = mi_query_places(q, r);
    else
        s = fail(err, errlen, "place:%s names too many places", t->value);
    free(r);
    return s;
}

mi_status mi_query_parse(mi_query *q, const char *text, char *err,
                         size_t errlen)
{
    const char *p = text ? text : "";
    bool too_long = false, open_quote = false;
    term t;
    int terms = 0;
    mi_status s = MI_OK;

    memset(q, 0, sizeof(*q));
    q->date_from = INT64_MIN;
    q->date_to = INT64_MAX;
    if (strlen(p) > QUERY_MAX)
        return fail(err, errlen, "the query is longer than %d bytes",
                    QUERY_MAX);
    while (s == MI_OK && next_term(&p, &t, &too_long, &open_quote)) {
        int64_t lo, hi;

        if (too_long)
            s = fail(err, errlen, "a term is longer than %d bytes",
                     MI_PLACE_NAME_MAX - 1);
        else if (open_quote)
            s = fail(err, errlen, "a quote is not closed");
        else if (++terms > TERMS_MAX)
            s = fail(err, errlen, "more than %d terms", TERMS_MAX);
        else if (!t.key) {
            if (!t.quoted && parse_date(t.value, t.len, &lo, &hi))
                narrow(q, lo, hi);
            else
                s = add_match(q, NULL, t.value, t.len, !t.quoted, err, errlen);
        } else if (!t.len) {
            s = fail(err, errlen, "%.*s: needs a value", (int)t.key_len, t.key);
        } else if (key_is(&t, "date")) {
            if (!parse_date(t.value, t.len, &lo, &hi))
                s = fail(err, errlen, "date:%s: expected YYYY, YYYY-MM or "
                         "YYYY-MM-DD", t.value);
            else
                narrow(q, lo, hi);
        } else if (key_is(&t, "between")) {
            const char *dots = strstr(t.value, "..");
            int64_t lo2 = INT64_MIN, hi2 = INT64_MAX, x;

            if (!dots ||
                (dots > t.value &&
                 !parse_date(t.value, (size_t)(dots - t.value), &lo2, &x)) ||
                (dots[2] && !parse_date(dots + 2, strlen(dots + 2), &x, &hi2)))
                s = fail(err, errlen, "between:%s: expected A..B, each "
                         "YYYY, YYYY-MM or YYYY-MM-DD (one may be left out)",
                         t.value);
            else if (lo2 >= hi2)
                s = fail(err, errlen, "between:%s: the range is empty",
                         t.value);
            else
                narrow(q, lo2, hi2);
        } else if (key_is(&t, "place") || key_is(&t, "location")) {
            s = place_term(q, &t, err, errlen);
        } else if (key_is(&t, "camera")) {
            s = add_match(q, "camera", t.value, t.len, !t.quoted, err, errlen);
        } else if (key_is(&t, "type")) {
            int kind = strcasecmp(t.value, "video") == 0 ? MI_KIND_VIDEO
                       : strcasecmp(t.value, "photo") == 0 ||
                               strcasecmp(t.value, "image") == 0
                           ? MI_KIND_IMAGE
                           : 0;
            if (!kind)
                s = fail(err, errlen, "type:%s: expected photo or video",
                         t.value);
            else if (q->kind && q->kind != kind)
                q->nothing = true;
            else
                q->kind = kind;
        } else {
            s = fail(err, errlen, "unknown filter %.*s: (known: date:, "
                     "between:, place:, location:, camera:, type:)",
                     (int)t.key_len, t.key);
        }
    }
    if (s == MI_OK && too_long)
        s = fail(err, errlen, "a term is longer than %d bytes",
                 MI_PLACE_NAME_MAX - 1);
    if (s == MI_OK && open_quote)
        s = fail(err, errlen, "a quote is not closed");
    if (s == MI_OK && q->date_from >= q->date_to)
        q->nothing = true;
    if (s == MI_OK && q->has_places && q->places.n == 0)
        q->nothing = true;
    if (s != MI_OK)
        mi_query_free(q);
    return s;
}

void mi_query_free(mi_query *q)
{
    if (q) {
        free(q->match);
        q->match = NULL;
    }
}
