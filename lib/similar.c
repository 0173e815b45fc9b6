/*
 * similar.c - near-duplicates: the contents whose perceptual hashes
 * (phash.c) are a few bits apart.
 *
 * Every hash is read from the catalog (with the pixels, bytes and date
 * that order a group) into memory, then:
 *  - for one content, each hash is compared with its own: n popcounts;
 *  - for the whole library, multi-index hashing: the 64 bits are cut in
 *    m bands (4 to 17, chosen for n and d by bands_for), and each band's
 *    values index the items (a counting sort: an offset per value).  Two
 *    hashes within d bits differ, by the pigeonhole principle, in at most
 *    d/m bits of one band at least, so the candidates of an item are those
 *    in the buckets of the values within d/m bits of each of its bands,
 *    and only those are compared.  A band of b bits spreads n hashes over
 *    2^b buckets: the work grows with n times the bucket size, not with n
 *    squared.  Pairs found are joined (union-find) into groups.
 */
#include "config.h"
#include "mi-private.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#define MIN_BANDS 4             /* bands of at most 16 bits */
#define MAX_BANDS 17            /* MI_SIMILAR_DISTANCE_MAX + 1: radius 0 */
#define MAX_ITEMS 20000000u     /* hashes loaded at once */

typedef struct item {
    uint8_t hash[MI_HASH_SIZE];
    uint64_t bits;
    uint64_t pixels, bytes;
    int64_t date;
} item;

typedef struct member {
    const struct item *it;
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
typedef struct loaded {
    item *v;
    size_t n, cap;
} loaded;

static mi_status add_item(sqlite3_stmt *st, void *payload)
{
    loaded *l = payload;
    item *it;
    mi_status s;

    if (sqlite3_column_bytes(st, 0) != MI_HASH_SIZE)
        return MI_OK;
    s = mi_grow((void **)&l->v, &l->cap, l->n, sizeof *l->v, 1024, MAX_ITEMS);
    if (s != MI_OK)
        return s;
    it = &l->v[l->n++];
    memcpy(it->hash, sqlite3_column_blob(st, 0), MI_HASH_SIZE);
    it->bits = (uint64_t)sqlite3_column_int64(st, 1);
    it->pixels = (uint64_t)sqlite3_column_int64(st, 2);
    it->bytes = (uint64_t)sqlite3_column_int64(st, 3);
    it->date = sqlite3_column_int64(st, 4);
    return MI_OK;
}

static mi_status load(mi_index *idx, item **out, size_t *n)
{
    loaded l = { NULL, 0, 0 };
    mi_status s = mi_index_each_row(
        idx,
        "SELECT p.hash, p.phash, max(f.width * f.height), max(f.size), "
        "  max(coalesce(f.date, f.ctime_ns / 1000000000)) "
        "FROM phashes p JOIN files f ON f.hash = p.hash "
        "WHERE p.phash IS NOT NULL GROUP BY p.hash ORDER BY p.hash",
        "perceptual hashes", add_item, &l);

    if (s == MI_ETOOBIG)
        mi_index_fail(idx, s, "over %u perceptual hashes", MAX_ITEMS);
    if (s != MI_OK) {
        free(l.v);
        l.v = NULL;
        l.n = 0;
    }
    *out = l.v;
    *n = l.n;
    return s;
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

/* The order of mi_similar_find's group after its item 0: nearest first,
 * then larger. */
static int by_distance(const void *x, const void *y)
{
    const member *a = x, *b = y;

    if (a->distance != b->distance)
        return a->distance - b->distance;
    return larger_first(a->it, b->it);
}

/* The order of a group of mi_similar_groups: larger first. */
static int by_size(const void *x, const void *y)
{
    const member *a = x, *b = y;

    return larger_first(a->it, b->it);
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

/* The largest item of group g. */
static size_t largest(const mi_similar *s, size_t g)
{
    size_t best = s->start[g];

    for (size_t i = s->start[g] + 1; i < s->start[g + 1]; i++)
        if (larger_first(s->members[i].it, s->members[best].it) < 0)
            best = i;
    return best - s->start[g];
}

static int item_cmp_hash(const void *key, const void *elem)
{
    return memcmp(key, ((const item *)elem)->hash, MI_HASH_SIZE);
}

mi_status mi_similar_find(mi_similar **out, mi_index *idx,
                          const uint8_t hash[MI_HASH_SIZE],
                          const mi_similar_options *opts)
{
    item *items = NULL;
    const item *me;
    size_t n = 0, k = 0;
    unsigned d;
    mi_similar *s;
    mi_status st;

    if (out)
        *out = NULL;
    if (!out || !idx || !hash)
        return MI_EINVAL;
    st = check_opts(opts, &d);
    if (st != MI_OK)
        return st;
    st = mi_index_has(NULL, 0, idx, hash, 0);
    if (st != MI_OK)
        return st;
    st = load(idx, &items, &n);
    if (st != MI_OK)
        return st;
    me = bsearch(hash, items, n, sizeof *items, item_cmp_hash);
    if (!me) {
        st = result_new(out, items, 0, 0, d);
        if (st != MI_OK)
            free(items);
        return st;
    }
    for (size_t i = 0; i < n; i++)
        k += mi_phash_distance(items[i].bits, me->bits) <= d;
    st = result_new(&s, items, k, 1, d);
    if (st != MI_OK) {
        free(items);
        return st;
    }
    s->members[0].it = me;
    s->members[0].distance = 0;
    k = 1;
    for (size_t i = 0; i < n; i++) {
        unsigned dist = mi_phash_distance(items[i].bits, me->bits);
        if (dist <= d && &items[i] != me) {
            s->members[k].it = &items[i];
            s->members[k++].distance = (int)dist;
        }
    }
    qsort(s->members + 1, k - 1, sizeof *s->members, by_distance);
    s->start[1] = k;
    s->original[0] = largest(s, 0);
    *out = s;
    return MI_OK;
}

/* ---------------------------------------------------------------------- */
/* The whole library                                                       */

static uint32_t find_root(uint32_t *parent, uint32_t i)
{
    while (parent[i] != i) {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    return i;
}

static void unite(uint32_t *parent, uint32_t a, uint32_t b)
{
    a = find_root(parent, a);
    b = find_root(parent, b);
    if (a != b)
        parent[a > b ? a : b] = a < b ? a : b;
}

/* One band's index: the items whose band (bits shift.. shift + nbits - 1
 * of the hash) has value v are ent[off[v]..off[v + 1]), in item order,
 * each with its whole hash so that a bucket is read in one sweep. */
typedef struct entry {
    uint64_t bits;
    uint32_t id;
} entry;

typedef struct band {
    int shift, nbits;
    uint32_t *off;
    entry *ent;
} band;

static unsigned band_of(uint64_t bits, const band *bd)
{
    return (unsigned)(bits >> bd->shift) & ((1u << bd->nbits) - 1);
}

/* Values within r bits of one of `nbits` bits. */
static double probes_of(int nbits, unsigned r)
{
    double sum = 0, c = 1;

    for (unsigned k = 0; k <= r && (int)k <= nbits; k++) {
        sum += c;
        c = c * (nbits - (int)k) / (k + 1);
    }
    return sum;
}

/* How many bands for n hashes and distance d: more bands mean fewer
 * values to probe (a smaller radius d / m) but fuller buckets.  A probe
 * costs about a cache miss (~40 comparisons' time), a bucket's item one
 * comparison; the cheapest m of MIN_BANDS..MAX_BANDS wins.  (n = 100,000,
 * d = 10: six bands of 10 or 11 bits, 12 values each.) */
static int bands_for(size_t n, unsigned d)
{
    double best = 0;
    int m_best = MIN_BANDS;

    for (int m = MIN_BANDS; m <= MAX_BANDS; m++) {
        int nbits = 64 / m;
        double cost = m * probes_of(nbits, d / (unsigned)m) *
                      (40.0 + (double)n / (double)(1u << nbits));
        if (m == MIN_BANDS || cost < best) {
            best = cost;
            m_best = m;
        }
    }
    return m_best;
}

static mi_status bands_build(band *bands, int m, const item *items, size_t n)
{
    int shift = 0;

    for (int b = 0; b < m; b++) {
        band *bd = &bands[b];
        int nbits = 64 / m + (b < 64 % m);
        unsigned values = 1u << nbits;
        uint32_t *off = calloc(values + 1, sizeof *off);
        entry *ent = malloc((n ? n : 1) * sizeof *ent);

        bd->shift = shift;
        bd->nbits = nbits;
        bd->off = off;
        bd->ent = ent;
        shift += nbits;
        if (!off || !ent)
            return MI_ENOMEM;
        for (size_t i = 0; i < n; i++)
            off[band_of(items[i].bits, bd) + 1]++;
        for (unsigned v = 0; v < values; v++)
            off[v + 1] += off[v];
        /* Fill, then shift the offsets back. */
        for (size_t i = 0; i < n; i++) {
            entry *e = &ent[off[band_of(items[i].bits, bd)]++];
            e->bits = items[i].bits;
            e->id = (uint32_t)i;
        }
        memmove(off + 1, off, values * sizeof *off);
        off[0] = 0;
    }
    return MI_OK;
}

/* The search of item i's near-duplicates with a higher index, through
 * the bucket of every value within `left` more flipped bits (from bit
 * `from` on) of band bd's value v. */
typedef struct probe {
    const band *bd;
    uint32_t *parent;
    uint64_t bits;
    uint32_t i;
    unsigned d;
} probe;

static void probe_bucket(const probe *p, unsigned v)
{
    const entry *lo = p->bd->ent + p->bd->off[v];

    /* Items in order: the higher ones are at the end. */
    for (const entry *e = p->bd->ent + p->bd->off[v + 1]; e-- > lo;) {
        if (e->id <= p->i)
            break;
        if (mi_phash_distance(e->bits, p->bits) <= p->d)
            unite(p->parent, p->i, e->id);
    }
}

static void probe_near(const probe *p, unsigned v, int from, unsigned left)
{
    probe_bucket(p, v);
    if (left == 0)
        return;
    for (int bit = from; bit < p->bd->nbits; bit++)
        probe_near(p, v ^ (1u << bit), bit + 1, left - 1);
}

/* Put the groups in order: the newest original first (then by hash). */
static int newest_first(const item *a, const item *b)
{
    if (a->date != b->date)
        return a->date > b->date ? -1 : 1;
    return memcmp(a->hash, b->hash, MI_HASH_SIZE);
}

typedef struct keyed {
    size_t start, len;
    const item *orig;           /* the group's first */
} keyed;

static int keyed_cmp(const void *x, const void *y)
{
    return newest_first(((const keyed *)x)->orig, ((const keyed *)y)->orig);
}

static mi_status sort_groups(mi_similar *s)
{
    size_t total = s->start[s->ngroups], at = 0;
    keyed *k = malloc((s->ngroups ? s->ngroups : 1) * sizeof *k);
    member *m = malloc((total ? total : 1) * sizeof *m);

    if (!k || !m) {
        free(k);
        free(m);
        return MI_ENOMEM;
    }
    for (size_t g = 0; g < s->ngroups; g++) {
        k[g].start = s->start[g];
        k[g].len = s->start[g + 1] - s->start[g];
        k[g].orig = s->members[k[g].start].it;
    }
    qsort(k, s->ngroups, sizeof *k, keyed_cmp);
    for (size_t g = 0; g < s->ngroups; g++) {
        memcpy(m + at, s->members + k[g].start, k[g].len * sizeof *m);
        s->start[g] = at;
        s->original[g] = 0;
        at += k[g].len;
    }
    s->start[s->ngroups] = at;
    free(s->members);
    s->members = m;
    free(k);
    return MI_OK;
}

mi_status mi_similar_groups(mi_similar **out, mi_index *idx,
                            const mi_similar_options *opts)
{
    band bands[MAX_BANDS];
    int nbands;
    item *items = NULL;
    uint32_t *parent = NULL, *count = NULL;
    size_t n = 0, ngroups = 0, nmembers = 0;
    mi_similar *s = NULL;
    unsigned d;
    mi_status st;

    if (out)
        *out = NULL;
    if (!out || !idx)
        return MI_EINVAL;
    st = check_opts(opts, &d);
    if (st != MI_OK)
        return st;
    memset(bands, 0, sizeof bands);
    st = load(idx, &items, &n);
    if (st != MI_OK)
        return st;
    if (n > UINT32_MAX - 1) {
        free(items);
        return MI_ETOOBIG;
    }
    parent = malloc((n ? n : 1) * sizeof *parent);
    count = calloc(n ? n : 1, sizeof *count);
    nbands = bands_for(n, d);
    st = parent && count ? bands_build(bands, nbands, items, n) : MI_ENOMEM;
    if (st != MI_OK)
        goto out;
    for (size_t i = 0; i < n; i++)
        parent[i] = (uint32_t)i;
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < nbands; b++) {
            probe p = { &bands[b], parent, items[i].bits, (uint32_t)i, d };
            probe_near(&p, band_of(items[i].bits, &bands[b]), 0,
                       d / (unsigned)nbands);
        }

    /* Groups of two or more: sizes by root, then the members. */
    for (size_t i = 0; i < n; i++)
        count[find_root(parent, (uint32_t)i)]++;
    for (size_t i = 0; i < n; i++)
        if (count[i] > 1) {
            ngroups++;
            nmembers += count[i];
        }
    st = result_new(&s, items, nmembers, ngroups, d);
    if (st != MI_OK)
        goto out;
    items = NULL;                 /* the result's now */
    {
        /* count[root] becomes the root's group's next free slot + 1. */
        size_t g = 0, at = 0;
        for (size_t i = 0; i < n; i++)
            if (count[i] > 1) {
                s->start[g++] = at;
                at += count[i];
                count[i] = (uint32_t)(at - count[i]) + 1;
            } else {
                count[i] = 0;
            }
        s->start[g] = at;
        for (size_t i = 0; i < n; i++) {
            uint32_t r = find_root(parent, (uint32_t)i);
            if (count[r])
                s->members[count[r]++ - 1].it = &s->items[i];
        }
    }
    for (size_t g = 0; g < ngroups; g++) {
        member *m = s->members + s->start[g];
        size_t k = s->start[g + 1] - s->start[g];

        qsort(m, k, sizeof *m, by_size);
        for (size_t i = 0; i < k; i++)
            m[i].distance = (int)mi_phash_distance(m[i].it->bits, m[0].it->bits);
    }
    st = sort_groups(s);
    if (st != MI_OK) {
        mi_similar_free(s);
        s = NULL;
    }

out:
    for (int b = 0; b < MAX_BANDS; b++) {
        free(bands[b].off);
        free(bands[b].ent);
    }
    free(parent);
    free(count);
    free(items);
    *out = s;
    return st;
}

/* ---------------------------------------------------------------------- */
/* Results                                                                 */

size_t mi_similar_count(const mi_similar *s)
{
    return s ? s->ngroups : 0;
}

size_t mi_similar_size(const mi_similar *s, size_t group)
{
    return s && group < s->ngroups ? s->start[group + 1] - s->start[group] : 0;
}

static const member *member_at(const mi_similar *s, size_t group, size_t i)
{
    if (i >= mi_similar_size(s, group))
        return NULL;
    return &s->members[s->start[group] + i];
}

const uint8_t *mi_similar_hash(const mi_similar *s, size_t group, size_t i)
{
    const member *m = member_at(s, group, i);

    return m ? m->it->hash : NULL;
}

int mi_similar_distance(const mi_similar *s, size_t group, size_t i)
{
    const member *m = member_at(s, group, i);

    return m ? m->distance : -1;
}

size_t mi_similar_original(const mi_similar *s, size_t group)
{
    return s && group < s->ngroups ? s->original[group] : 0;
}

unsigned int mi_similar_max_distance(const mi_similar *s)
{
    return s ? s->max_distance : 0;
}

void mi_similar_free(mi_similar *s)
{
    if (!s)
        return;
    free(s->items);
    free(s->members);
    free(s->start);
    free(s->original);
    free(s);
}
