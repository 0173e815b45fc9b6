/*
 * test-changes.c - the change feed (mi_changes_*): every kind of change
 * once, in order, across pages and restarts; tokens of 0, of another
 * catalog and from before a compaction get MI_ERESET.  Public header only.
 */
#include <mediaindex.h>

#include "api-helpers.h"
#include "fixtures.h"
#include "mi-test.h"

#include <inttypes.h>
#include <stdbool.h>
#include <unistd.h>

#define MAXC 64

/* One page as read: hashes (hex), whether present, the token after. */
struct page {
    char hex[MAXC][MI_HASH_HEX_LEN + 1];
    bool present[MAXC];
    size_t ndups[MAXC];
    uint64_t seq[MAXC];
    size_t n;
    uint64_t token;
    int more;
};

static mi_status read_page(mi_index *idx, uint64_t since, size_t limit,
                           struct page *p)
{
    mi_changes *ch = NULL;
    mi_status s = mi_changes_new(&ch, idx, since, limit);

    memset(p, 0, sizeof(*p));
    if (s != MI_OK)
        return s;
    while ((s = mi_changes_next(ch)) == MI_ROW && p->n < MAXC) {
        const mi_entry *e = mi_changes_entry(ch);

        snprintf(p->hex[p->n], sizeof(p->hex[0]), "%s", mi_changes_hash_hex(ch));
        p->present[p->n] = e != NULL;
        p->ndups[p->n] = e ? mi_entry_dup_count(e) : 0;
        p->seq[p->n] = mi_changes_seq(ch);
        if (e && strcmp(mi_entry_hash_hex(e), p->hex[p->n]) != 0)
            s = MI_ERROR;
        p->n++;
    }
    p->token = mi_changes_token(ch);
    p->more = mi_changes_more(ch);
    mi_changes_free(ch);
    return s == MI_DONE ? MI_OK : s;
}

static int find(const struct page *p, const char *hex)
{
    size_t i;

    for (i = 0; i < p->n; i++)
        if (strcmp(p->hex[i], hex) == 0)
            return (int)i;
    return -1;
}

static void hex_of(char out[MI_HASH_HEX_LEN + 1], const char *dir,
                   const char *rel)
{
    uint8_t h[MI_HASH_SIZE];

    ta_hash_of(h, dir, rel);
    mi_hash_to_hex(out, h);
}

static void put(const char *dir, const char *rel, unsigned seed)
{
    fx_put_jpeg(dir, rel, 32, 24, seed);
}

static void rm(const char *dir, const char *rel)
{
    char *p = fx_path(dir, rel);

    unlink(p);
    free(p);
}

static mi_index *open_ret(const char *dir, unsigned int retention)
{
    mi_index_options o = MI_INDEX_OPTIONS_INIT;
    char err[512];
    mi_index *idx = NULL;

    o.changes_retention_s = retention;
    if (mi_index_open(&idx, dir, &o, err, sizeof(err)) != MI_OK)
        printf("# open: %s\n", err);
    return idx;
}

/* ---------------------------------------------------------------------- */

static void test_kinds_in_order(void)
{
    char *dir = fx_tempdir();
    char a[MI_HASH_HEX_LEN + 1], b[MI_HASH_HEX_LEN + 1], c[MI_HASH_HEX_LEN + 1];
    mi_index *idx = ta_open(dir, 1);
    struct page p;
    uint64_t t0 = 0, t1, t2;

    CHECK(idx != NULL);
    if (!idx)
        goto out;
    CHECK(mi_changes_new(NULL, idx, 1, 0) == MI_EINVAL);
    CHECK(read_page(idx, 0, 0, &p) == MI_ERESET);
    CHECK_EQ_INT(mi_index_change_token(idx, &t0), MI_OK);
    CHECK(t0 > 0);
    /* Nothing yet: an empty page, the same token. */
    CHECK_EQ_INT(read_page(idx, t0, 0, &p), MI_OK);
    CHECK_EQ_INT(p.n, 0);
    CHECK(p.token == t0);
    CHECK(read_page(idx, t0 + 1, 0, &p) == MI_ERESET);   /* from the future */

    /* Three new contents. */
    put(dir, "a.jpg", 1);
    put(dir, "sub/b.jpg", 2);
    put(dir, "c.jpg", 3);
    hex_of(a, dir, "a.jpg");
    hex_of(b, dir, "sub/b.jpg");
    hex_of(c, dir, "c.jpg");
    CHECK_EQ_INT(mi_scan(idx, NULL, NULL), MI_OK);
    CHECK_EQ_INT(read_page(idx, t0, 0, &p), MI_OK);
    CHECK_EQ_INT(p.n, 3);
    CHECK(find(&p, a) >= 0 && find(&p, b) >= 0 && find(&p, c) >= 0);
    CHECK(p.present[0] && p.present[1] && p.present[2]);
    CHECK(p.seq[0] < p.seq[1] && p.seq[1] < p.seq[2]);
    CHECK(p.token == p.seq[2] && !p.more);
    t1 = p.token;
    CHECK_EQ_INT(mi_index_change_token(idx, &t2), MI_OK);
    CHECK(t2 == t1);

    /* A second path of a; b deleted; nothing else. */
    put(dir, "copy-of-a.jpg", 1);
    rm(dir, "sub/b.jpg");
    CHECK_EQ_INT(mi_scan(idx, NULL, NULL), MI_OK);
    CHECK_EQ_INT(read_page(idx, t1, 0, &p), MI_OK);
    CHECK_EQ_INT(p.n, 2);
    CHECK(find(&p, a) >= 0 && p.present[find(&p, a)] &&
          p.ndups[find(&p, a)] == 1);
    CHECK(find(&p, b) >= 0 && !p.present[find(&p, b)]);
    CHECK(find(&p, c) < 0);
    t2 = p.token;

    /* A rescan of nothing changed: no change. */
    CHECK_EQ_INT(mi_scan(idx, NULL, NULL), MI_OK);
    CHECK_EQ_INT(read_page(idx, t2, 0, &p), MI_OK);
    CHECK_EQ_INT(p.n, 0);
    CHECK(p.token == t2);

    /* The path of a's copy removed: a changed (one path fewer); b back. */
    rm(dir, "copy-of-a.jpg");
    put(dir, "b-again.jpg", 2);
    CHECK_EQ_INT(mi_scan(idx, NULL, NULL), MI_OK);
    CHECK_EQ_INT(read_page(idx, t2, 0, &p), MI_OK);
    CHECK_EQ_INT(p.n, 2);
    CHECK(find(&p, a) >= 0 && p.present[find(&p, a)] &&
          p.ndups[find(&p, a)] == 0);
    CHECK(find(&p, b) >= 0 && p.present[find(&p, b)]);
    t2 = p.token;

    /* Restart: the token still holds; new changes number above it. */
    mi_index_close(idx);
    idx = ta_open(dir, 1);
    CHECK(idx != NULL);
    if (!idx)
        goto out;
    CHECK_EQ_INT(read_page(idx, t2, 0, &p), MI_OK);
    CHECK_EQ_INT(p.n, 0);
    rm(dir, "c.jpg");
    CHECK_EQ_INT(mi_scan(idx, NULL, NULL), MI_OK);
    CHECK_EQ_INT(read_page(idx, t2, 0, &p), MI_OK);
    CHECK_EQ_INT(p.n, 1);
    CHECK(find(&p, c) == 0 && !p.present[0] && p.seq[0] > t2);
    /* From the first token: every content once, c as gone. */
    CHECK_EQ_INT(read_page(idx, t0, 0, &p), MI_OK);
    CHECK_EQ_INT(p.n, 3);
    CHECK(find(&p, c) == 2 && !p.present[2]);
out:
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

/* Pages of 2 over 7 changes: each once, in order, "more" until the last;
 * a change between two pages comes in a later page. */
static void test_pages(void)
{
    char *dir = fx_tempdir();
    mi_index *idx = ta_open(dir, 1);
    char seen[16][MI_HASH_HEX_LEN + 1];
    size_t nseen = 0, i, j;
    uint64_t t0 = 0, t, last = 0;
    struct page p;
    int pages = 0;

    CHECK(idx != NULL);
    if (!idx)
        goto out;
    mi_index_change_token(idx, &t0);
    for (i = 0; i < 7; i++) {
        char rel[16];

        snprintf(rel, sizeof(rel), "p%zu.jpg", i);
        put(dir, rel, 100 + (unsigned)i);
    }
    CHECK_EQ_INT(mi_scan(idx, NULL, NULL), MI_OK);
    t = t0;
    do {
        CHECK_EQ_INT(read_page(idx, t, 2, &p), MI_OK);
        for (i = 0; i < p.n && nseen < 16; i++) {
            CHECK(p.seq[i] > last);
            last = p.seq[i];
            snprintf(seen[nseen++], sizeof(seen[0]), "%s", p.hex[i]);
        }
        if (pages == 1) {
            /* Meanwhile: one more. */
            put(dir, "late.jpg", 200);
            CHECK_EQ_INT(mi_scan(idx, NULL, NULL), MI_OK);
        }
        t = p.token;
        pages++;
    } while (p.more && pages < 10);
    CHECK_EQ_INT(nseen, 8);
    CHECK_EQ_INT(pages, 5);        /* 2, 2, 2, 2 full, then an empty one */
    for (i = 0; i < nseen; i++)
        for (j = i + 1; j < nseen; j++)
            CHECK(strcmp(seen[i], seen[j]) != 0);
    CHECK_EQ_INT(read_page(idx, t, 2, &p), MI_OK);
    CHECK_EQ_INT(p.n, 0);
out:
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

/* Contents gone longer than the retention are forgotten: a token from
 * before gets MI_ERESET; a newer one still works.  A catalog made anew
 * refuses the old catalog's tokens. */
static void test_reset(void)
{
    char *dir = fx_tempdir();
    mi_index *idx = open_ret(dir, 1);
    uint64_t t0 = 0, t1 = 0, t2 = 0;
    struct page p;
    char *db;

    CHECK(idx != NULL);
    if (!idx)
        goto out;
    mi_index_change_token(idx, &t0);
    put(dir, "x.jpg", 300);
    put(dir, "y.jpg", 301);
    CHECK_EQ_INT(mi_scan(idx, NULL, NULL), MI_OK);
    mi_index_change_token(idx, &t1);
    rm(dir, "x.jpg");
    CHECK_EQ_INT(mi_scan(idx, NULL, NULL), MI_OK);
    mi_index_change_token(idx, &t2);
    mi_index_close(idx);
    sleep(2);                       /* x gone for longer than 1 s */
    idx = open_ret(dir, 1);         /* compacts */
    CHECK(idx != NULL);
    if (!idx)
        goto out;
    CHECK(read_page(idx, t0, 0, &p) == MI_ERESET);
    CHECK(read_page(idx, t1, 0, &p) == MI_ERESET);
    CHECK(strstr(mi_index_errmsg(idx), "read everything again") != NULL);
    CHECK_EQ_INT(read_page(idx, t2, 0, &p), MI_OK);
    CHECK_EQ_INT(p.n, 0);
    /* The present content stays in the feed. */
    mi_index_close(idx);
    idx = NULL;

    /* The catalog lost and made again: the old token is refused. */
    db = fx_path(dir, ".mediaindex/index.sqlite3");
    unlink(db);
    free(db);
    sleep(1);                       /* a later generation */
    idx = ta_open(dir, 1);
    CHECK(idx != NULL);
    if (!idx)
        goto out;
    CHECK_EQ_INT(mi_scan(idx, NULL, NULL), MI_OK);
    CHECK(read_page(idx, t2, 0, &p) == MI_ERESET);
out:
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

/* A content is given once, at its last change (a second path, a path
 * removed), in pages too: x, y and y's copy, then x's copy, then y's copy
 * removed give x (two paths), then y (one), in pages of one as at once. */
static void test_last_change_only(void)
{
    char *dir = fx_tempdir();
    mi_index *idx = ta_open(dir, 1);
    char x[MI_HASH_HEX_LEN + 1], y[MI_HASH_HEX_LEN + 1];
    const char *want[2] = { x, y };
    uint64_t t0 = 0, t;
    struct page p;
    int pages = 0;

    CHECK(idx != NULL);
    if (!idx)
        goto out;
    mi_index_change_token(idx, &t0);
    put(dir, "x.jpg", 400);
    CHECK_EQ_INT(mi_scan(idx, NULL, NULL), MI_OK);
    put(dir, "y.jpg", 401);
    put(dir, "y-copy.jpg", 401);
    CHECK_EQ_INT(mi_scan(idx, NULL, NULL), MI_OK);
    put(dir, "x-copy.jpg", 400);
    CHECK_EQ_INT(mi_scan(idx, NULL, NULL), MI_OK);
    rm(dir, "y-copy.jpg");
    CHECK_EQ_INT(mi_scan(idx, NULL, NULL), MI_OK);
    hex_of(x, dir, "x.jpg");
    hex_of(y, dir, "y.jpg");

    /* All at once: x then y, each once, y with its one path left. */
    CHECK_EQ_INT(read_page(idx, t0, 0, &p), MI_OK);
    CHECK_EQ_INT(p.n, 2);
    CHECK(find(&p, x) == 0 && p.ndups[0] == 1);
    CHECK(find(&p, y) == 1 && p.present[1] && p.ndups[1] == 0);
    /* A page at a time: the same, then an empty page. */
    t = t0;
    do {
        CHECK_EQ_INT(read_page(idx, t, 1, &p), MI_OK);
        if (pages < 2) {
            CHECK_EQ_INT(p.n, 1);
            CHECK(p.n == 1 && strcmp(p.hex[0], want[pages]) == 0);
            CHECK(p.more && p.token == p.seq[0]);
        } else {
            CHECK_EQ_INT(p.n, 0);
        }
        t = p.token;
        pages++;
    } while (p.more && pages < 10);
    CHECK_EQ_INT(pages, 3);
out:
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

int main(void)
{
    RUN(test_kinds_in_order);
    RUN(test_pages);
    RUN(test_last_change_only);
    RUN(test_reset);
    return mi_test_done();
}
