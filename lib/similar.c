/*
 * similar.c - near-duplicates: the contents whose perceptual hashes
 * (phash.c) are a few bits apart.
 *
 * Every hash is read from the catalog (with the pixels, bytes and date
 * that order a group) into memory, then:
 *  - for one content, each hash is compared with its own: n popcounts;
 *  - for the whole library, multi-index hashing: the 64 bits are cut in
 *    four bands of 16, and each band's values index the items (a counting
 *    sort: an offset per value).  Two hashes within d bits differ, by the
 *    pigeonhole principle, in at most d/4 bits of one band at least, so
 *    the candidates of an item are those in the buckets of the values
 *    within d/4 bits of each of its bands (1 + 16 + 120 = 137 buckets a
 *    band at d < 12), and only those are compared.  A library's random-
 *    looking hashes fill a bucket with n / 65536 items: the work grows
 *    with n, not n squared.  Pairs found are joined (union-find) into
 *    groups.
 */
#include "config.h"
#include "mi-private.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#define BANDS 4
#define BAND_BITS 16
#define BAND_VALUES (1u << BAND_BITS)
#define MAX_ITEMS 20000000u     /* hashes loaded at once */

typedef struct item {
    uint8_t hash[MI_HASH_SIZE];
    uint64_t bits;
    uint64_t pixels, bytes;
    int64_t date;
} item;

typedef struct member {
    uint32_t item;
    int distance;
} member;

struct mi_similar {
    item *items;                /* the items the groups name */
    member *members;            /* the groups' items, group after group */
    size_t *start;              /* group g is members[start[g]..start[g+1]) */
    size_t *original;           /* per group */
    size_t ngroups;
    unsigned int max_distance;
};

/* ---------------------------------------------------------------------- */
/* Loading                                                                 */

static mi_status check_opts(const mi_similar_options *opts, unsigned *d)
{
    *d = MI_SIMILAR_DISTANCE_DEFAULT;
    if (!opts)
        return MI_OK;
    if (opts->version < 1 || opts->version > MI_SIMILAR_OPTIONS_VERSION ||
        opts->max_distance > MI_SIMILAR_DISTANCE_MAX)
        return MI_EINVAL;
    if (opts->max_distance)
        *d = opts->max_distance;
    return MI_OK;
}

/* Every indexed content that has a hash, in hash order. */
static mi_status load(mi_index *idx, item **out, size_t *n)
{
    static const char sql[] =
        "SELECT p.hash, p.phash, max(f.width * f.height), max(f.size), "
        "  max(coalesce(f.date, f.ctime_ns / 1000000000)) "
        "FROM phashes p JOIN files f ON f.hash = p.hash "
        "WHERE p.phash IS NOT NULL GROUP BY p.hash ORDER BY p.hash";
    sqlite3_stmt *st = NULL;
    item *v = NULL;
    size_t cap = 0;
    mi_conn *c;
    mi_status s;
    int rc;

    *out = NULL;
    *n = 0;
    s = mi_index_reader(idx, &c);
    if (s != MI_OK)
        return s;
    rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        item *it;

        if (sqlite3_column_bytes(st, 0) != MI_HASH_SIZE)
            continue;
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 1024;
            void *p;
            if (ncap > MAX_ITEMS) {
                s = mi_index_fail(idx, MI_ETOOBIG, "over %u perceptual hashes",
                                  MAX_ITEMS);
                break;
            }
            if (!(p = realloc(v, ncap * sizeof *v))) {
                s = MI_ENOMEM;
                break;
            }
            v = p;
            cap = ncap;
        }
        it = &v[(*n)++];
        memcpy(it->hash, sqlite3_column_blob(st, 0), MI_HASH_SIZE);
        it->bits = (uint64_t)sqlite3_column_int64(st, 1);
        it->pixels = (uint64_t)sqlite3_column_int64(st, 2);
        it->bytes = (uint64_t)sqlite3_column_int64(st, 3);
        it->date = sqlite3_column_int64(st, 4);
    }
    if (s == MI_OK && rc != SQLITE_DONE)
        s = mi_index_fail(idx, MI_EDB, "catalog: perceptual hashes: %s",
                          sqlite3_errmsg(c->db));
    sqlite3_finalize(st);
    mi_index_release(idx, c);
    if (s != MI_OK) {
        free(v);
        *n = 0;
        return s;
    }
    *out = v;
    return MI_OK;
}

/* Larger first: pixels, then bytes, then the older, then by hash. */
static int larger_first(const item *a, const item *b)
{
    if (a->pixels != b->pixels)
        return a->pixels > b->pixels ? -1 : 1;
    if (a->bytes != b->bytes)
        return a->bytes > b->bytes ? -1 : 1;
    if (a->date != b->date)
        return a->date < b->date ? -1 : 1;
    return memcmp(a->hash, b->hash, MI_HASH_SIZE);
}

static mi_status result_new(mi_similar **out, item *items, size_t nmembers,
                            size_t ngroups, unsigned d)
{
    mi_similar *s = calloc(1, sizeof *s);

    *out = NULL;
    if (!s)
        return MI_ENOMEM;
    s->items = items;
    s->max_distance = d;
    s->ngroups = ngroups;
    s->members = malloc((nmembers ? nmembers : 1) * sizeof *s->members);
    s->start = malloc((ngroups + 1) * sizeof *s->start);
    s->original = calloc(ngroups ? ngroups : 1, sizeof *s->original);
    if (!s->members || !s->start || !s->original) {
        s->items = NULL;          /* still the caller's */
        mi_similar_free(s);
        return MI_ENOMEM;
    }
    s->start[0] = 0;
    *out = s;
    return MI_OK;
}

/* ---------------------------------------------------------------------- */
/* One content                                                             */

/* The sort of mi_similar_find's group: nearest first, then larger. */
static const item *sort_items;
static int by_distance(const void *x, const void *y)
{
    const member *a = x, *b = y;

    if (a->distance != b->distance)
        return a->distance - b->distance;
    return larger_first(&sort_items[a->item], &sort_items[b->item]);
}

mi_status mi_similar_phash(uint64_t *out, mi_index *idx,
                           const uint8_t hash[MI_HASH_SIZE])
{
    static const char sql[] =
        "SELECT p.phash FROM phashes p WHERE p.hash = ?1 AND p.phash IS NOT "
        "NULL AND EXISTS (SELECT 1 FROM files f WHERE f.hash = ?1)";
    sqlite3_stmt *st = NULL;
    mi_conn *c;
    mi_status s;
    int rc;

    if (out)
        *out = 0;
    if (!out || !idx || !hash)
        return MI_EINVAL;
    s = mi_index_reader(idx, &c);
    if (s != MI_OK)
        return s;
    rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_blob(st, 1, hash, MI_HASH_SIZE, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    if (rc == SQLITE_ROW) {
        *out = (uint64_t)sqlite3_column_int64(st, 0);
        s = MI_OK;
    } else if (rc == SQLITE_DONE) {
        s = MI_ENOTFOUND;
    } else {
        s = mi_index_fail(idx, MI_EDB, "catalog: perceptual hash: %s",
                          sqlite3_errmsg(c->db));
    }
    sqlite3_finalize(st);
    mi_index_release(idx, c);
    return s;
}
