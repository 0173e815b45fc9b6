/*
 * mi-similar - time mi_similar_groups() and mi_similar_find() on a library
 * of N items (public API, plus SQLite to fill the catalog).
 *
 *   mi-similar [-n N] [-d DISTANCE] [-r RUNS] [DIR]
 *
 * DIR (default: a new folder under /tmp, removed after) gets an index
 * whose catalog is filled with N contents (default 100000) without files:
 * 10% of them are copies (1 to 3 of a photo, each 0..8 bits away), the
 * rest distinct.  The hashes are not uniform: each bit is set with its
 * own probability (0.25..0.75), as real photos' hashes lean (skies are
 * bright on top), which makes the multi-index buckets uneven.  Prints the
 * best of RUNS (default 3) wall times for all groups, then the time to
 * look up each grouped item's entry (what GET /api/similar adds), and for
 * one content's neighbours.
 */
#include <mediaindex.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int fill(const char *dir, size_t n, size_t *copies)
{
    char path[4096];
    sqlite3 *db = NULL;
    sqlite3_stmt *f = NULL, *p = NULL;
    double prob[64];
    uint64_t s = 88172645463325252ull, base = 0;
    size_t left = 0;
    int rc;

    snprintf(path, sizeof path, "%s/.mediaindex/index.sqlite3", dir);
    if (sqlite3_open(path, &db) != SQLITE_OK)
        return -1;
    for (int b = 0; b < 64; b++)
        prob[b] = 0.25 + 0.5 * (double)(rnd(&s) % 1000) / 1000.0;
    rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db,
            "INSERT INTO files (hash, path, size, mtime_ns, ctime_ns, inode, "
            "mime, kind, date, width, height, thumb) VALUES (?1, ?2, ?3, 0, "
            "0, ?4, 'image/jpeg', 1, ?5, ?6, ?7, 1)", -1, &f, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "INSERT INTO phashes (hash, phash) "
                                    "VALUES (?1, ?2)", -1, &p, NULL);
    *copies = 0;
    for (size_t i = 0; rc == SQLITE_OK && i < n; i++) {
        uint8_t h[32];
        char name[64];
        uint64_t v = 0;

        for (int k = 0; k < 4; k++) {
            uint64_t r = rnd(&s);
            memcpy(h + 8 * k, &r, 8);
        }
        if (left) {
            /* A copy of the last photo, 0..8 bits away. */
            v = base;
            for (int k = (int)(rnd(&s) % 9); k > 0; k--)
                v ^= 1ull << (rnd(&s) % 64);
            left--;
            (*copies)++;
        } else {
            for (int b = 0; b < 64; b++)
                if ((double)(rnd(&s) % 1000) / 1000.0 < prob[b])
                    v |= 1ull << b;
            base = v;
            if (rnd(&s) % 100 < 5)
                left = 1 + rnd(&s) % 3;
        }
        snprintf(name, sizeof name, "p/%08zu.jpg", i);
        sqlite3_bind_blob(f, 1, h, 32, SQLITE_STATIC);
        sqlite3_bind_text(f, 2, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(f, 3, 100000 + (sqlite3_int64)(rnd(&s) % 5000000));
        sqlite3_bind_int64(f, 4, (sqlite3_int64)i + 1);
        sqlite3_bind_int64(f, 5, 1500000000 + (sqlite3_int64)i * 60);
        sqlite3_bind_int64(f, 6, 4000);
        sqlite3_bind_int64(f, 7, 3000);
        rc = sqlite3_step(f) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_reset(f);
        sqlite3_bind_blob(p, 1, h, 32, SQLITE_STATIC);
        sqlite3_bind_int64(p, 2, (sqlite3_int64)v);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(p) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_reset(p);
    }
    sqlite3_finalize(f);
    sqlite3_finalize(p);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        fprintf(stderr, "mi-similar: filling the catalog: %s\n",
                sqlite3_errmsg(db));
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -1;
}

int main(int argc, char **argv)
{
    mi_similar_options opts = MI_SIMILAR_OPTIONS_INIT;
    size_t n = 100000, copies = 0;
    int runs = 3, opt;
    char tmp[] = "/tmp/mi-similar-XXXXXX", err[512] = "", cmd[4200];
    const char *dir = NULL;
    double best_all = 1e9, best_one = 1e9;
    mi_index *idx = NULL;
    mi_similar *s = NULL;
    size_t grouped = 0;
    double lookups = 0;
    uint8_t one[32];
    mi_status st;

    while ((opt = getopt(argc, argv, "n:d:r:")) != -1) {
        if (opt == 'n')
            n = strtoul(optarg, NULL, 10);
        else if (opt == 'd')
            opts.max_distance = (unsigned)strtoul(optarg, NULL, 10);
        else if (opt == 'r')
            runs = atoi(optarg);
        else {
            fprintf(stderr, "usage: mi-similar [-n N] [-d DISTANCE] [-r RUNS] [DIR]\n");
            return 2;
        }
    }
    dir = optind < argc ? argv[optind] : mkdtemp(tmp);
    if (!dir || mi_index_open(&idx, dir, NULL, err, sizeof err) != MI_OK) {
        fprintf(stderr, "mi-similar: cannot open an index: %s\n", err);
        return 1;
    }
    if (fill(dir, n, &copies) != 0)
        return 1;
    for (int r = 0; r < runs; r++) {
        double t = now();
        mi_similar_free(s);
        st = mi_similar_groups(&s, idx, &opts);
        t = now() - t;
        if (st != MI_OK) {
            fprintf(stderr, "mi-similar: %s: %s\n", mi_strerror(st),
                    mi_index_errmsg(idx));
            return 1;
        }
        if (t < best_all)
            best_all = t;
    }
    {
        /* What GET /api/similar adds: each grouped item's entry. */
        double t = now();
        for (size_t g = 0; g < mi_similar_count(s); g++)
            for (size_t i = 0; i < mi_similar_size(s, g); i++) {
                mi_entry *e = NULL;
                if (mi_lookup(&e, idx, mi_similar_hash(s, g, i)) == MI_OK)
                    grouped++;
                mi_entry_free(e);
            }
        lookups = now() - t;
    }
    memcpy(one, mi_similar_count(s) ? mi_similar_hash(s, 0, 0) : one, 32);
    printf("%zu items, %zu copies made; distance %u: %zu groups of %zu items\n",
           n, copies, mi_similar_max_distance(s), mi_similar_count(s), grouped);
    mi_similar_free(s);
    s = NULL;
    for (int r = 0; r < runs && grouped; r++) {
        double t = now();
        st = mi_similar_find(&s, idx, one, &opts);
        t = now() - t;
        mi_similar_free(s);
        s = NULL;
        if (st == MI_OK && t < best_one)
            best_one = t;
    }
    printf("all groups: %.3f s (best of %d); the entries of their items "
           "(mi_lookup each, as the server does): %.3f s\n", best_all, runs,
           lookups);
    if (grouped)
        printf("one content's neighbours: %.3f s (best of %d)\n", best_one, runs);
    mi_index_close(idx);
    if (dir == tmp) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0)
            return 1;
    }
    return 0;
}
