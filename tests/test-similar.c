/*
 * test-similar.c - near-duplicates: perceptual hashes (phash.c) and the
 * search (similar.c), on real files indexed by a real scan.
 *
 * A set is built here: distinct photo-like images (smooth colour fields,
 * shapes and grain, each from its own seed) and, of each, the copies
 * people make: JPEG at quality 90, 70 and 40, resized to 50% and 25%,
 * cropped by 3% and 5%, WebP (cwebp) and HEIC (heif-enc), and a messenger
 * copy (1280 pixels wide, quality 75).  Precision and recall of "within d
 * bits" over every pair are printed for d = 0..16 and asserted at the
 * default distance.  With MI_TEST_CORPUS, the corpus's real photos are
 * indexed too and the pairs of distinct photos within the default
 * distance are counted (false positives).
 */
#include "mi-private.h"

#include "api-helpers.h"
#include "fixtures.h"
#include "mi-test.h"

#include <dirent.h>
#include <math.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <turbojpeg.h>

#define BASES 12
#define W 1600
#define H 1200
#define MAX_ITEMS 256

/* ---------------------------------------------------------------------- */
/* The set                                                                 */

static uint32_t rnd_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static double rnd_unit(uint32_t *s)
{
    return (rnd_next(s) & 0xffffff) / (double)0x1000000;
}

/* A photo-like w x h RGBA image: smooth colour fields, a few shapes,
 * grain; each seed its own. */
static uint8_t *make_photo(int w, int h, unsigned seed)
{
    uint8_t *px = malloc((size_t)w * h * 4);
    uint32_t r = seed * 2654435761u + 1;
    double fx[3][3], fy[3][3], ph[3][3], amp[3][3];
    struct { int kind, x, y, rx, ry; uint8_t c[3]; } shape[7];

    if (!px)
        return NULL;
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < 3; k++) {
            fx[c][k] = (rnd_unit(&r) - 0.5) * 12 * M_PI / w;
            fy[c][k] = (rnd_unit(&r) - 0.5) * 12 * M_PI / h;
            ph[c][k] = rnd_unit(&r) * 2 * M_PI;
            amp[c][k] = 20 + 40 * rnd_unit(&r);
        }
    for (int i = 0; i < 7; i++) {
        shape[i].kind = (int)(rnd_next(&r) % 2);
        shape[i].x = (int)(rnd_unit(&r) * w);
        shape[i].y = (int)(rnd_unit(&r) * h);
        shape[i].rx = (int)(w / 20 + rnd_unit(&r) * w / 6);
        shape[i].ry = (int)(h / 20 + rnd_unit(&r) * h / 6);
        for (int c = 0; c < 3; c++)
            shape[i].c[c] = (uint8_t)(rnd_next(&r) & 255);
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = px + ((size_t)y * w + x) * 4;
            for (int c = 0; c < 3; c++) {
                double v = 128;
                for (int k = 0; k < 3; k++)
                    v += amp[c][k] * sin(fx[c][k] * x + fy[c][k] * y + ph[c][k]);
                p[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
            p[3] = 255;
            for (int i = 0; i < 7; i++) {
                double dx = (double)(x - shape[i].x) / shape[i].rx;
                double dy = (double)(y - shape[i].y) / shape[i].ry;
                bool in = shape[i].kind ? dx * dx + dy * dy <= 1
                                        : fabs(dx) <= 1 && fabs(dy) <= 1;
                if (in)
                    for (int c = 0; c < 3; c++)
                        p[c] = (uint8_t)((p[c] + 3 * shape[i].c[c]) / 4);
            }
            for (int c = 0; c < 3; c++) {
                int v = p[c] + (int)(rnd_next(&r) % 13) - 6;
                p[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    return px;
}

static int write_jpeg(const char *path, const uint8_t *px, int w, int h,
                      size_t stride, int quality)
{
    tjhandle tj = tjInitCompress();
    unsigned char *jpg = NULL;
    unsigned long len = 0;
    int rc = -1;

    if (tj && tjCompress2(tj, px, w, (int)stride, h, TJPF_RGBA, &jpg, &len,
                          TJSAMP_420, quality, 0) == 0)
        rc = fx_write_file(path, jpg, len);
    tjFree(jpg);
    if (tj)
        tjDestroy(tj);
    return rc;
}

static int write_png(const char *path, const uint8_t *px, int w, int h)
{
    uint8_t *png = NULL;
    size_t len = 0;
    int rc = -1;

    if (mi_png_encode_rgba(&png, &len, px, w, h, (size_t)w * 4) == MI_OK)
        rc = fx_write_file(path, png, len);
    free(png);
    return rc;
}

static uint8_t *resized(const uint8_t *px, int w, int h, int ow, int oh)
{
    uint8_t *out = malloc((size_t)ow * oh * 4);

    if (out && !mi_stbir_resize_rgba(px, w, h, w * 4, out, ow, oh, ow * 4,
                                     false)) {
        free(out);
        return NULL;
    }
    return out;
}

static bool have(const char *tool)
{
    char cmd[128];

    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
    return system(cmd) == 0;
}

/* Convert the PNG `in` to `out` with cwebp or heif-enc. */
static int convert_to(const char *tool, const char *in, const char *out)
{
    char cmd[4096];

    if (strcmp(tool, "cwebp") == 0)
        snprintf(cmd, sizeof cmd, "cwebp -quiet -q 75 '%s' -o '%s'", in, out);
    else
        snprintf(cmd, sizeof cmd, "heif-enc -q 50 -p preset=ultrafast -o '%s' '%s' "
                 ">/dev/null 2>&1",
                 out, in);
    return system(cmd);
}

typedef struct item {
    char rel[64];
    int base;                 /* the photo it is a copy of; -1: corpus */
    uint8_t hash[MI_HASH_SIZE];
    uint64_t phash;
    bool has;
} item;

static item items[MAX_ITEMS];
static size_t nitems;
static char *dir;
static mi_index *idx;
static bool built;

static void add(const char *rel, int base)
{
    if (nitems < MAX_ITEMS) {
        snprintf(items[nitems].rel, sizeof items[nitems].rel, "%s", rel);
        items[nitems++].base = base;
    }
}

/* Photo b and its copies in dir/set/. */
static bool make_set_of(int b, bool webp, bool heic)
{
    char rel[64], *path, *png;
    uint8_t *px = make_photo(W, H, (unsigned)b + 1), *half, *quarter, *msg;
    bool ok = px != NULL;
    static const int qualities[] = { 90, 70, 40 };
    int cx = W * 3 / 100, cy = H * 3 / 100;      /* 3%: from the left/top */
    int fx = W * 5 / 200, fy = H * 5 / 200;      /* 5%: around the centre */

#define PUT(name, stmt)                                                     \
    do {                                                                    \
        snprintf(rel, sizeof rel, "set/p%02d-%s", b, name);                 \
        path = fx_path(dir, rel);                                           \
        ok = ok && path && (stmt) == 0;                                     \
        free(path);                                                         \
        add(rel, b);                                                        \
    } while (0)

    PUT("original.jpg", write_jpeg(path, px, W, H, W * 4, 95));
    for (size_t i = 0; i < MI_ARRAY_LEN_T(qualities); i++) {
        char name[32];
        snprintf(name, sizeof name, "q%d.jpg", qualities[i]);
        PUT(name, write_jpeg(path, px, W, H, W * 4, qualities[i]));
    }
    half = ok ? resized(px, W, H, W / 2, H / 2) : NULL;
    quarter = ok ? resized(px, W, H, W / 4, H / 4) : NULL;
    msg = ok ? resized(px, W, H, 1280, 1280 * H / W) : NULL;
    ok = ok && half && quarter && msg;
    PUT("half.jpg", write_jpeg(path, half, W / 2, H / 2, W / 2 * 4, 85));
    PUT("quarter.jpg", write_jpeg(path, quarter, W / 4, H / 4, W / 4 * 4, 85));
    PUT("messenger.jpg", write_jpeg(path, msg, 1280, 1280 * H / W, 1280 * 4, 75));
    PUT("crop3.jpg", write_jpeg(path, px + ((size_t)cy * W + cx) * 4, W - cx,
                                H - cy, W * 4, 90));
    PUT("crop5.jpg", write_jpeg(path, px + ((size_t)fy * W + fx) * 4,
                                W - 2 * fx, H - 2 * fy, W * 4, 90));
    free(half);
    free(quarter);
    free(msg);
    snprintf(rel, sizeof rel, "src/p%02d.png", b);
    png = fx_path(dir, rel);
    ok = ok && png && write_png(png, px, W, H) == 0;
    if (webp)
        PUT("webp.webp", convert_to("cwebp", png, path));
    if (heic)
        PUT("heic.heic", convert_to("heif-enc", png, path));
    free(png);
    free(px);
#undef PUT
    return ok;
}

static void test_build_set(void)
{
    bool webp = have("cwebp"), heic = have("heif-enc");
    char *p;

    dir = fx_tempdir();
    CHECK(dir != NULL);
    if (!dir)
        return;
    p = fx_path(dir, "set");
    CHECK_OK(fx_mkdirs(p));
    free(p);
    p = fx_path(dir, "src");
    CHECK_OK(fx_mkdirs(p));
    free(p);
    if (!webp || !heic)
        printf("# %s%s missing: the set has no copies of that format\n",
               webp ? "" : "cwebp ", heic ? "" : "heif-enc");
    if (getenv("CI") && (!webp || !heic)) {
        printf("# CI: cwebp and heif-enc must be there "
               "(scripts/install-deps.sh --tests)\n");
        mi_test_failed_now = 1;
    }
    for (int b = 0; b < BASES; b++)
        CHECK(make_set_of(b, webp, heic));
    /* The sources of WebP and HEIC are not part of the library. */
    p = fx_path(dir, "src");
    CHECK_OK(fx_rmtree(p));
    free(p);

    idx = ta_open(dir, 2);
    CHECK(idx != NULL);
    if (!idx)
        return;
    CHECK_OK(mi_scan(idx, NULL, NULL));
    for (size_t i = 0; i < nitems; i++) {
        ta_hash_of(items[i].hash, dir, items[i].rel);
        items[i].has = mi_similar_phash(&items[i].phash, idx, items[i].hash) == MI_OK;
        if (!items[i].has)
            printf("# no perceptual hash for %s\n", items[i].rel);
        CHECK(items[i].has);
    }
    built = !mi_test_failed_now;
}

/* ---------------------------------------------------------------------- */
/* Precision and recall                                                    */

static void test_precision_recall(void)
{
    uint64_t same = 0, tp[MI_SIMILAR_DISTANCE_MAX + 1] = { 0 },
             fp[MI_SIMILAR_DISTANCE_MAX + 1] = { 0 };
    unsigned dmax_same = 0, dmin_diff = 64;
    const unsigned d = MI_SIMILAR_DISTANCE_DEFAULT;

    if (!built) {
        SKIP("no set");
        return;
    }
    for (size_t i = 0; i < nitems; i++)
        for (size_t j = i + 1; j < nitems; j++) {
            unsigned dist = mi_phash_distance(items[i].phash, items[j].phash);
            bool dup = items[i].base == items[j].base;

            same += dup;
            if (dup && dist > dmax_same)
                dmax_same = dist;
            if (!dup && dist < dmin_diff)
                dmin_diff = dist;
            if (dup && dist > d)
                printf("# missed at %u: %s %s (%u bits)\n", d, items[i].rel,
                       items[j].rel, dist);
            for (unsigned t = dist; t <= MI_SIMILAR_DISTANCE_MAX; t++)
                (dup ? tp : fp)[t]++;
        }
    printf("# %zu items, %d photos, %" PRIu64 " pairs of copies, %zu pairs\n",
           nitems, BASES, same, nitems * (nitems - 1) / 2);
    printf("# farthest copies: %u bits; nearest distinct photos: %u bits\n",
           dmax_same, dmin_diff);
    printf("# d   precision  recall   (true pos, false pos)\n");
    for (unsigned t = 0; t <= MI_SIMILAR_DISTANCE_MAX; t++)
        printf("# %2u  %8.4f  %8.4f   (%" PRIu64 ", %" PRIu64 ")\n", t,
               tp[t] + fp[t] ? (double)tp[t] / (double)(tp[t] + fp[t]) : 1.0,
               (double)tp[t] / (double)same, tp[t], fp[t]);
    /* At the default distance: every copy found but a few, no distinct
     * photo taken for one. */
    CHECK(same > 0);
    CHECK((double)tp[d] / (double)(tp[d] + fp[d]) >= 0.99);
    CHECK((double)tp[d] / (double)same >= 0.97);
}

/* For comparison, the gradient hash (dHash) of the same pixels: the
 * thumbnail's visible part, grey, area-averaged to 9 x 8, a bit per
 * horizontal neighbours (left brighter than right).  Not asserted: the
 * table says why the library uses the DCT hash. */
static bool dhash_of(uint64_t *out, const char *root,
                     const uint8_t hash[MI_HASH_SIZE])
{
    char hex[MI_HASH_HEX_LEN + 1], rel[128], *path;
    unsigned char *png = NULL;
    size_t len = 0;
    uint8_t *px, small[9 * 8 * 4];
    int w, h, x0, y0, x1 = -1, y1 = -1;

    mi_hash_to_hex(hex, hash);
    snprintf(rel, sizeof rel, ".thumbnails/%s.png", hex);
    path = fx_path(root, rel);
    if (!path || fx_read_file(path, &png, &len) != 0) {
        free(path);
        return false;
    }
    free(path);
    px = mi_stbi_load_rgba(png, len, &w, &h);
    free(png);
    if (!px)
        return false;
    x0 = w;
    y0 = h;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (px[((size_t)y * w + x) * 4 + 3]) {
                x0 = x < x0 ? x : x0;
                x1 = x > x1 ? x : x1;
                y0 = y < y0 ? y : y0;
                y1 = y > y1 ? y : y1;
            }
    if (x1 < 0 || !mi_stbir_resize_rgba(px + ((size_t)y0 * w + x0) * 4,
                                        x1 - x0 + 1, y1 - y0 + 1, w * 4,
                                        small, 9, 8, 9 * 4, false)) {
        mi_stbi_free(px);
        return false;
    }
    mi_stbi_free(px);
    *out = 0;
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++) {
            const uint8_t *a = small + (y * 9 + x) * 4, *b = a + 4;
            int ga = 299 * a[0] + 587 * a[1] + 114 * a[2];
            int gb = 299 * b[0] + 587 * b[1] + 114 * b[2];
            if (ga > gb)
                *out |= 1ull << (y * 8 + x);
        }
    return true;
}

static void test_dhash_for_comparison(void)
{
    uint64_t d[MAX_ITEMS], same = 0, tp[17] = { 0 }, fp[17] = { 0 };
    unsigned dmax_same = 0, dmin_diff = 64;

    if (!built) {
        SKIP("no set");
        return;
    }
    for (size_t i = 0; i < nitems; i++)
        CHECK(dhash_of(&d[i], dir, items[i].hash));
    for (size_t i = 0; i < nitems; i++)
        for (size_t j = i + 1; j < nitems; j++) {
            unsigned dist = mi_phash_distance(d[i], d[j]);
            bool dup = items[i].base == items[j].base;

            same += dup;
            if (dup && dist > dmax_same)
                dmax_same = dist;
            if (!dup && dist < dmin_diff)
                dmin_diff = dist;
            for (unsigned t = dist; t <= 16; t++)
                (dup ? tp : fp)[t]++;
        }
    printf("# dHash of the same pixels: farthest copies %u bits, nearest "
           "distinct photos %u bits\n", dmax_same, dmin_diff);
    printf("# d   precision  recall   (dHash)\n");
    for (unsigned t = 0; t <= 16; t++)
        printf("# %2u  %8.4f  %8.4f\n", t,
               tp[t] + fp[t] ? (double)tp[t] / (double)(tp[t] + fp[t]) : 1.0,
               (double)tp[t] / (double)same);
}

/* ---------------------------------------------------------------------- */
/* Groups                                                                  */

static int item_of(const uint8_t *h)
{
    for (size_t i = 0; i < nitems; i++)
        if (memcmp(items[i].hash, h, MI_HASH_SIZE) == 0)
            return (int)i;
    return -1;
}

/* Every group is the copies of one photo, the JPEG at quality 95 (the
 * largest in pixels, then bytes) first. */
static void test_groups(void)
{
    mi_similar *s = NULL;

    if (!built) {
        SKIP("no set");
        return;
    }
    CHECK_OK(mi_similar_groups(&s, idx, NULL));
    CHECK_EQ_INT(mi_similar_count(s), BASES);
    CHECK_EQ_INT(mi_similar_max_distance(s), MI_SIMILAR_DISTANCE_DEFAULT);
    for (size_t g = 0; g < mi_similar_count(s); g++) {
        int first = item_of(mi_similar_hash(s, g, 0));

        CHECK(first >= 0 && strstr(items[first].rel, "original"));
        CHECK_EQ_INT(mi_similar_original(s, g), 0);
        CHECK_EQ_INT(mi_similar_distance(s, g, 0), 0);
        for (size_t i = 0; i < mi_similar_size(s, g); i++) {
            int k = item_of(mi_similar_hash(s, g, i));
            CHECK(k >= 0 && first >= 0 && items[k].base == items[first].base);
        }
    }
    CHECK(mi_similar_hash(s, mi_similar_count(s), 0) == NULL);
    CHECK_EQ_INT(mi_similar_distance(s, 0, 999), -1);
    mi_similar_free(s);
}

/* Multi-index hashing finds what comparing every pair finds, at every
 * distance (the pigeonhole bound at each d / 4). */
static void test_groups_match_brute_force(void)
{
    if (!built) {
        SKIP("no set");
        return;
    }
    for (unsigned d = 1; d <= MI_SIMILAR_DISTANCE_MAX; d++) {
        mi_similar_options o = MI_SIMILAR_OPTIONS_INIT;
        mi_similar *s = NULL;
        int parent[MAX_ITEMS], grouped = 0, members = 0;

        for (size_t i = 0; i < nitems; i++)
            parent[i] = (int)i;
        for (size_t i = 0; i < nitems; i++)
            for (size_t j = i + 1; j < nitems; j++)
                if (mi_phash_distance(items[i].phash, items[j].phash) <= d) {
                    int a = (int)i, b = (int)j;
                    while (parent[a] != a)
                        a = parent[a];
                    while (parent[b] != b)
                        b = parent[b];
                    if (a != b)
                        parent[a > b ? a : b] = a < b ? a : b;
                }
        for (size_t i = 0; i < nitems; i++) {
            int root = (int)i, n = 0;
            while (parent[root] != root)
                root = parent[root];
            for (size_t j = 0; j < nitems; j++) {
                int r2 = (int)j;
                while (parent[r2] != r2)
                    r2 = parent[r2];
                n += r2 == root;
            }
            if (n > 1) {
                members++;
                grouped += root == (int)i;
            }
        }
        o.max_distance = d;
        CHECK_OK(mi_similar_groups(&s, idx, &o));
        {
            int got = 0;
            for (size_t g = 0; g < mi_similar_count(s); g++) {
                got += (int)mi_similar_size(s, g);
                /* Each group's members share the brute force's root. */
                int r0 = item_of(mi_similar_hash(s, g, 0));
                while (r0 >= 0 && parent[r0] != r0)
                    r0 = parent[r0];
                for (size_t i = 1; i < mi_similar_size(s, g); i++) {
                    int k = item_of(mi_similar_hash(s, g, i));
                    while (k >= 0 && parent[k] != k)
                        k = parent[k];
                    CHECK(k == r0);
                }
            }
            if ((int)mi_similar_count(s) != grouped || got != members)
                printf("# d %u: %zu groups of %d, brute force %d of %d\n", d,
                       mi_similar_count(s), got, grouped, members);
            CHECK_EQ_INT(mi_similar_count(s), grouped);
            CHECK_EQ_INT(got, members);
        }
        mi_similar_free(s);
    }
}

/* One content: itself first, then its copies, the nearest first. */
static void test_find(void)
{
    mi_similar_options bad = MI_SIMILAR_OPTIONS_INIT;
    mi_similar *s = NULL;
    uint8_t unknown[MI_HASH_SIZE] = { 0 };
    int prev = 0;

    if (!built) {
        SKIP("no set");
        return;
    }
    CHECK_OK(mi_similar_find(&s, idx, items[1].hash, NULL));
    CHECK_EQ_INT(mi_similar_count(s), 1);
    CHECK(memcmp(mi_similar_hash(s, 0, 0), items[1].hash, MI_HASH_SIZE) == 0);
    CHECK(mi_similar_size(s, 0) >= 9);
    for (size_t i = 0; i < mi_similar_size(s, 0); i++) {
        int k = item_of(mi_similar_hash(s, 0, i));
        CHECK(k >= 0 && items[k].base == items[1].base);
        CHECK(mi_similar_distance(s, 0, i) >= prev);
        prev = mi_similar_distance(s, 0, i);
    }
    /* The original is the JPEG at quality 95. */
    {
        int k = item_of(mi_similar_hash(s, 0, mi_similar_original(s, 0)));
        CHECK(k >= 0 && strstr(items[k].rel, "original"));
    }
    mi_similar_free(s);

    s = (mi_similar *)1;
    CHECK_EQ_INT(mi_similar_find(&s, idx, unknown, NULL), MI_ENOTFOUND);
    CHECK(s == NULL);
    bad.max_distance = MI_SIMILAR_DISTANCE_MAX + 1;
    CHECK_EQ_INT(mi_similar_find(&s, idx, items[0].hash, &bad), MI_EINVAL);
    CHECK_EQ_INT(mi_similar_groups(&s, idx, &bad), MI_EINVAL);
    bad.max_distance = 0;
    bad.version = 99;
    CHECK_EQ_INT(mi_similar_groups(&s, idx, &bad), MI_EINVAL);
    CHECK_EQ_INT(mi_similar_groups(NULL, idx, NULL), MI_EINVAL);
    CHECK_EQ_INT(mi_similar_phash(NULL, idx, items[0].hash), MI_EINVAL);
    mi_similar_free(NULL);
}

/* A catalog from before the hashes: the next complete scan gives every
 * image the hash the pipeline gave, from its thumbnail PNG. */
static void test_fill_from_thumbnails(void)
{
    char *db;
    sqlite3 *sq = NULL;

    if (!built) {
        SKIP("no set");
        return;
    }
    db = fx_path(dir, ".mediaindex/index.sqlite3");
    CHECK(sqlite3_open(db, &sq) == SQLITE_OK);
    CHECK(sqlite3_exec(sq, "DELETE FROM phashes", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(sq);
    free(db);
    for (size_t i = 0; i < nitems; i++) {
        uint64_t v;
        CHECK_EQ_INT(mi_similar_phash(&v, idx, items[i].hash), MI_ENOTFOUND);
    }
    CHECK_OK(mi_scan(idx, NULL, NULL));
    for (size_t i = 0; i < nitems; i++) {
        uint64_t v = 0;
        CHECK_OK(mi_similar_phash(&v, idx, items[i].hash));
        if (v != items[i].phash)
            printf("# %s: %016" PRIx64 " from the PNG, %016" PRIx64
                   " from the decode\n", items[i].rel, v, items[i].phash);
        CHECK(v == items[i].phash);
    }
}

/* Turned pixels with the EXIF orientation that turns them back look like
 * the upright original; the same turned pixels without it do not. */
static void test_orientation(void)
{
    uint8_t *px = make_photo(640, 480, 77), *rot = malloc(640 * 480 * 4);
    unsigned char *jpg = NULL, *app1 = NULL;
    size_t app1_len = 0;
    fx_exif ex;
    uint8_t h[3][MI_HASH_SIZE];
    uint64_t v[3] = { 0, 0, 0 };
    char *p;
    mi_index *ix;
    char *d2 = fx_tempdir();

    CHECK(px && rot && d2);
    if (!px || !rot || !d2)
        goto out;
    /* Turned 90 degrees clockwise; orientation 8 shows it turned back. */
    for (int y = 0; y < 480; y++)
        for (int x = 0; x < 640; x++)
            memcpy(rot + ((size_t)x * 480 + (479 - y)) * 4,
                   px + ((size_t)y * 640 + x) * 4, 4);
    p = fx_path(d2, "upright.jpg");
    CHECK_OK(write_jpeg(p, px, 640, 480, 640 * 4, 90));
    free(p);
    p = fx_path(d2, "turned.jpg");
    CHECK_OK(write_jpeg(p, rot, 480, 640, 480 * 4, 90));
    free(p);
    memset(&ex, 0, sizeof ex);
    ex.orientation = 8;
    {
        /* The turned JPEG again, with an APP1 of orientation 8 after SOI. */
        unsigned char *t = NULL;
        size_t tlen = 0;
        p = fx_path(d2, "turned.jpg");
        CHECK_OK(fx_read_file(p, &t, &tlen));
        free(p);
        CHECK_OK(fx_exif_block(&app1, &app1_len, &ex));
        if (t && app1) {
            size_t n = 2 + 4 + app1_len + tlen - 2;
            jpg = malloc(n);
            memcpy(jpg, t, 2);
            jpg[2] = 0xff;
            jpg[3] = 0xe1;
            jpg[4] = (unsigned char)((app1_len + 2) >> 8);
            jpg[5] = (unsigned char)((app1_len + 2) & 255);
            memcpy(jpg + 6, app1, app1_len);
            memcpy(jpg + 6 + app1_len, t + 2, tlen - 2);
            p = fx_path(d2, "turned-exif.jpg");
            CHECK_OK(fx_write_file(p, jpg, n));
            free(p);
        }
        free(t);
    }
    ix = ta_open(d2, 1);
    CHECK(ix != NULL);
    if (ix) {
        CHECK_OK(mi_scan(ix, NULL, NULL));
        ta_hash_of(h[0], d2, "upright.jpg");
        ta_hash_of(h[1], d2, "turned-exif.jpg");
        ta_hash_of(h[2], d2, "turned.jpg");
        for (int i = 0; i < 3; i++)
            CHECK_OK(mi_similar_phash(&v[i], ix, h[i]));
        printf("# upright vs turned back by EXIF: %u bits; vs turned: %u\n",
               mi_phash_distance(v[0], v[1]), mi_phash_distance(v[0], v[2]));
        CHECK(mi_phash_distance(v[0], v[1]) <= 4);
        CHECK(mi_phash_distance(v[0], v[2]) > MI_SIMILAR_DISTANCE_MAX);
        mi_index_close(ix);
    }
out:
    free(px);
    free(rot);
    free(jpg);
    free(app1);
    if (d2)
        fx_rmtree(d2);
    free(d2);
}

/* Transparent pixels count as white, as a page shows them; an image with
 * nothing visible, or of one colour, has no hash. */
static void test_alpha_and_flat(void)
{
    uint8_t *px = make_photo(200, 150, 5), *over = malloc(200 * 150 * 4);
    uint64_t a = 0, b = 0;
    bool ha = false, hb = false;

    CHECK(px && over);
    if (!px || !over)
        goto out;
    memcpy(over, px, 200 * 150 * 4);
    /* Left half: transparent in one, white in the other. */
    for (int y = 0; y < 150; y++)
        for (int x = 0; x < 100; x++) {
            px[((size_t)y * 200 + x) * 4 + 3] = 0;
            memset(over + ((size_t)y * 200 + x) * 4, 255, 4);
        }
    /* A visible pixel in the corners keeps the crop the same. */
    px[3] = 1;
    px[((size_t)149 * 200) * 4 + 3] = 1;
    over[0] = over[1] = over[2] = 254;
    CHECK_OK(mi_phash_rgba(&a, &ha, px, 200, 150, 200 * 4));
    CHECK_OK(mi_phash_rgba(&b, &hb, over, 200, 150, 200 * 4));
    CHECK(ha && hb);
    CHECK(mi_phash_distance(a, b) <= 2);
    memset(px, 0, 200 * 150 * 4);
    CHECK_OK(mi_phash_rgba(&a, &ha, px, 200, 150, 200 * 4));
    CHECK(!ha);
    memset(px, 200, 200 * 150 * 4);
    CHECK_OK(mi_phash_rgba(&a, &ha, px, 200, 150, 200 * 4));
    CHECK(!ha);
    CHECK_EQ_INT(mi_phash_rgba(&a, &ha, NULL, 200, 150, 200 * 4), MI_EINVAL);
out:
    free(px);
    free(over);
}

/* ---------------------------------------------------------------------- */
/* The corpus: distinct real photos should not meet                         */

static bool same_picture(const char *a, const char *b)
{
    /* The corpus's own sets of one picture: one photo in eight EXIF
     * orientations, and HDR on/off shots of one scene. */
    static const char *const sets[] = { "orientation/landscape_",
                                        "orientation/portrait_",
                                        "hdr/canon_hdr", "hdr/iphone_hdr" };
    for (size_t i = 0; i < MI_ARRAY_LEN_T(sets); i++)
        if (strstr(a, sets[i]) && strstr(b, sets[i]))
            return true;
    return false;
}

static void test_corpus(void)
{
    const char *corpus = fx_corpus();
    char *d2, cmd[4096];
    mi_index *ix;
    mi_cursor *cur = NULL;
    struct { char path[256]; uint64_t v, dh; bool has_dh; } *ph = NULL;
    unsigned dh_nearest = 64, dh_orient_max = 0;
    unsigned nearest = 64;
    size_t n = 0, fp = 0, orient_max = 0, fp_at[MI_SIMILAR_DISTANCE_MAX + 1] = { 0 };
    const unsigned d = MI_SIMILAR_DISTANCE_DEFAULT;

    if (!corpus) {
        SKIP("MI_TEST_CORPUS not set");
        return;
    }
    d2 = fx_tempdir();
    snprintf(cmd, sizeof cmd, "cp -R '%s/.' '%s/'", corpus, d2);
    CHECK(system(cmd) == 0);
    ix = ta_open(d2, 2);
    CHECK(ix != NULL);
    ph = calloc(4096, sizeof *ph);
    if (ix && ph) {
        CHECK_OK(mi_scan(ix, NULL, NULL));
        CHECK_OK(mi_cursor_new(&cur, ix));
        while (cur && mi_cursor_next(cur) == MI_ROW && n < 4096) {
            const mi_entry *e = mi_cursor_entry(cur);
            if (mi_similar_phash(&ph[n].v, ix, mi_entry_hash(e)) == MI_OK) {
                ph[n].has_dh = dhash_of(&ph[n].dh, d2, mi_entry_hash(e));
                snprintf(ph[n].path, sizeof ph[n].path, "%s", mi_entry_path(e));
                n++;
            }
        }
        mi_cursor_free(cur);
        for (size_t i = 0; i < n; i++)
            for (size_t j = i + 1; j < n; j++) {
                unsigned dist = mi_phash_distance(ph[i].v, ph[j].v);
                if (ph[i].has_dh && ph[j].has_dh) {
                    unsigned dd = mi_phash_distance(ph[i].dh, ph[j].dh);
                    if (!same_picture(ph[i].path, ph[j].path) && dd < dh_nearest)
                        dh_nearest = dd;
                    if (strstr(ph[i].path, "orientation/") &&
                        same_picture(ph[i].path, ph[j].path) && dd > dh_orient_max)
                        dh_orient_max = dd;
                }
                if (!same_picture(ph[i].path, ph[j].path) && dist < nearest)
                    nearest = dist;
                if (strstr(ph[i].path, "hdr/") && same_picture(ph[i].path, ph[j].path))
                    printf("# corpus: HDR on/off, %s and %s: %u bits\n",
                           ph[i].path, ph[j].path, dist);
                if (same_picture(ph[i].path, ph[j].path)) {
                    if (strstr(ph[i].path, "orientation/") && dist > orient_max)
                        orient_max = dist;
                    continue;
                }
                for (unsigned t = dist; t <= MI_SIMILAR_DISTANCE_MAX; t++)
                    fp_at[t]++;
                if (dist <= d) {
                    fp++;
                    printf("# corpus: %s and %s are %u bits apart\n",
                           ph[i].path, ph[j].path, dist);
                }
            }
        printf("# corpus: %zu photos with a hash, %zu pairs, %zu pairs of "
               "distinct photos within %u bits; one photo in 8 orientations: "
               "at most %zu bits apart\n", n, n * (n - 1) / 2, fp, d,
               orient_max);
        printf("# corpus: pairs of distinct photos within d bits, d = 0..%u:",
               MI_SIMILAR_DISTANCE_MAX);
        for (unsigned t = 0; t <= MI_SIMILAR_DISTANCE_MAX; t++)
            printf(" %zu", fp_at[t]);
        printf("; the nearest two: %u bits\n", nearest);
        printf("# corpus, dHash for comparison: the nearest distinct photos "
               "%u bits apart, one photo in 8 orientations at most %u\n",
               dh_nearest, dh_orient_max);
        CHECK(n >= 40);
        CHECK(fp <= 2);
        CHECK(orient_max <= d);
    }
    free(ph);
    mi_index_close(ix);
    fx_rmtree(d2);
    free(d2);
}

int main(void)
{
    RUN(test_alpha_and_flat);
    RUN(test_build_set);
    RUN(test_precision_recall);
    RUN(test_dhash_for_comparison);
    RUN(test_groups);
    RUN(test_groups_match_brute_force);
    RUN(test_find);
    RUN(test_fill_from_thumbnails);
    RUN(test_orientation);
    RUN(test_corpus);
    mi_index_close(idx);
    if (dir)
        fx_rmtree(dir);
    free(dir);
    return mi_test_done();
}
