/*
 * test-search.c - places in the catalog and the search language, through
 * the public API: real JPEGs with EXIF positions, dates and cameras.
 */
#include <mediaindex.h>

#include "api-helpers.h"
#include "fixtures.h"
#include "mi-test.h"

#include <sqlite3.h>
#include <stdio.h>
#include <unistd.h>

static char *dir;
static mi_index *idx;

static void put(const char *rel, unsigned seed, const char *date, int gps,
                double lat, double lon, const char *make, const char *model)
{
    fx_exif ex = { 0 };
    char *p = fx_path(dir, rel), *slash;

    ex.datetime_original = date;
    ex.has_gps = gps;
    ex.lat = lat;
    ex.lon = lon;
    ex.make = make;
    ex.model = model;
    slash = strrchr(p, '/');
    *slash = 0;
    fx_mkdirs(p);
    *slash = '/';
    CHECK(fx_write_jpeg(p, 16, 16, seed, &ex) == 0);
    free(p);
}

static void setup(void)
{
    dir = fx_tempdir();
    put("trips/IMG_20210603.jpg", 1, "2021:06:03 12:00:00", 1, 60.147,
        24.907, "HMD Global", "Nokia 8.3 5G");
    put("old/DSCN0010.jpg", 2, "2008:10:22 16:29:49", 1, 43.467448,
        11.885127, "NIKON", "COOLPIX P6000");
    put("beach.jpg", 3, "2019:01:05 10:00:00", 1, -33.8688, 151.2093,
        "Apple", "iPhone 12");
    put("Zürich notes.jpg", 4, "2021:07:01 09:00:00", 0, 0, 0, "Canon",
        "EOS 5D");
    /* The first photo again, under a second name. */
    put("zz/copy of the sea.jpg", 1, "2021:06:03 12:00:00", 1, 60.147,
        24.907, "HMD Global", "Nokia 8.3 5G");
    idx = ta_open(dir, 0);
    CHECK(idx != NULL);
    CHECK_OK(mi_scan(idx, NULL, NULL));
}

/* The primary file names the cursor gives, in its order, joined by '|'. */
static mi_status names(char *out, size_t size, const mi_cursor_options *co)
{
    mi_cursor *c = NULL;
    mi_status s = mi_cursor_new_with(&c, idx, co);
    size_t n = 0;

    out[0] = 0;
    if (s != MI_OK)
        return s;
    while ((s = mi_cursor_next(c)) == MI_ROW)
        n += (size_t)snprintf(out + n, size - n, "%s%s", n ? "|" : "",
                              mi_entry_filename(mi_cursor_entry(c)));
    mi_cursor_free(c);
    return s == MI_DONE ? MI_OK : s;
}

/* The names a query finds, as a sorted set, compared with `want`. */
static void expect(const char *query, const char *want)
{
    mi_cursor_options co = MI_CURSOR_OPTIONS_INIT;
    char got[1024], *v[16], *save = NULL, sorted[1024] = "";
    int n = 0;

    co.query = query;
    co.flags = MI_CURSOR_NEWEST_FIRST;
    if (names(got, sizeof(got), &co) != MI_OK) {
        printf("# query '%s': %s\n", query, mi_index_errmsg(idx));
        CHECK(0);
        return;
    }
    for (char *t = strtok_r(got, "|", &save); t && n < 16;
         t = strtok_r(NULL, "|", &save))
        v[n++] = t;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(v[j], v[i]) < 0) {
                char *x = v[i];
                v[i] = v[j];
                v[j] = x;
            }
    for (int i = 0; i < n; i++)
        snprintf(sorted + strlen(sorted), sizeof(sorted) - strlen(sorted),
                 "%s%s", i ? "|" : "", v[i]);
    if (strcmp(sorted, want) != 0)
        printf("# query '%s': got '%s', want '%s'\n", query, sorted, want);
    CHECK(strcmp(sorted, want) == 0);
}

static void refused(const char *query, const char *reason)
{
    mi_cursor_options co = MI_CURSOR_OPTIONS_INIT;
    mi_cursor *c = NULL;

    co.query = query;
    CHECK_EQ_INT(mi_cursor_new_with(&c, idx, &co), MI_EINVAL);
    CHECK(c == NULL);
    if (!strstr(mi_index_errmsg(idx), reason))
        printf("# query '%s': '%s' lacks '%s'\n", query, mi_index_errmsg(idx),
               reason);
    CHECK(strstr(mi_index_errmsg(idx), reason) != NULL);
}

static void test_places_in_entries(void)
{
    uint8_t h[MI_HASH_SIZE];
    mi_entry *e = NULL;

    ta_hash_of(h, dir, "old/DSCN0010.jpg");
    CHECK_OK(mi_lookup(&e, idx, h));
    CHECK_EQ_STR(mi_place_city(mi_entry_place(e)), "Arezzo");
    CHECK_EQ_STR(mi_place_country(mi_entry_place(e)), "Italy");
    mi_entry_free(e);
    ta_hash_of(h, dir, "trips/IMG_20210603.jpg");
    CHECK_OK(mi_lookup(&e, idx, h));
    CHECK_EQ_STR(mi_place_city(mi_entry_place(e)), "Helsinki");
    CHECK_EQ_STR(mi_place_country_code(mi_entry_place(e)), "FI");
    mi_entry_free(e);
    ta_hash_of(h, dir, "Zürich notes.jpg");
    CHECK_OK(mi_lookup(&e, idx, h));
    CHECK_EQ_INT(mi_entry_place(e), 0);
    mi_entry_free(e);
}

static void test_words(void)
{
    expect("", "DSCN0010.jpg|IMG_20210603.jpg|Zürich notes.jpg|beach.jpg");
    expect("helsinki", "IMG_20210603.jpg");
    expect("HELSINKI 2021", "IMG_20210603.jpg");
    expect("Helsinki 2020", "");
    expect("hels", "IMG_20210603.jpg");
    expect("finland", "IMG_20210603.jpg");
    expect("zurich", "Zürich notes.jpg");
    expect("\"zürich notes\"", "Zürich notes.jpg");
    expect("\"notes zürich\"", "");
    expect("sea", "IMG_20210603.jpg");          /* its other path */
    expect("dscn0010", "DSCN0010.jpg");
    expect("old", "DSCN0010.jpg");              /* a folder */
    expect("coolpix", "DSCN0010.jpg");
    expect("nosuchword", "");
    expect("-", "DSCN0010.jpg|IMG_20210603.jpg|Zürich notes.jpg|beach.jpg");
    expect("a\"b", "");
}

static void test_filters(void)
{
    expect("place:finland", "IMG_20210603.jpg");
    expect("location:FI", "IMG_20210603.jpg");
    expect("place:uusimaa", "IMG_20210603.jpg");
    expect("place:\"new south wales\"", "beach.jpg");
    expect("place:Arezzo,Italy", "DSCN0010.jpg");
    expect("place:arezzo,fr", "");
    expect("place:Xanadu", "");
    expect("place:finland place:italy", "");
    expect("camera:nikon", "DSCN0010.jpg");
    expect("camera:iphone", "beach.jpg");
    expect("camera:helsinki", "");
    expect("type:photo camera:canon", "Zürich notes.jpg");
    expect("type:video", "");
    expect("type:photo type:video", "");
    expect("date:2021", "IMG_20210603.jpg|Zürich notes.jpg");
    expect("2021-06", "IMG_20210603.jpg");
    expect("date:2021-06-03", "IMG_20210603.jpg");
    expect("date:2021-06-04", "");
    expect("between:2019..2021-06", "IMG_20210603.jpg|beach.jpg");
    expect("between:..2010", "DSCN0010.jpg");
    expect("between:2021-07..", "Zürich notes.jpg");
    expect("date:2021 between:2021-06-10..", "Zürich notes.jpg");
}

static void test_bad_queries(void)
{
    refused("date:2021-13", "date:2021-13");
    refused("date:yesterday", "expected YYYY");
    refused("between:2021", "expected A..B");
    refused("between:2022..2021", "empty");
    refused("foo:bar", "unknown filter foo:");
    refused("type:audio", "photo or video");
    refused("place:", "needs a value");
    refused("\"open", "not closed");
    {
        char q[2048];
        memset(q, 'a', sizeof(q) - 1);
        q[sizeof(q) - 1] = 0;
        refused(q, "longer than");
        memset(q, 0, sizeof(q));
        for (int i = 0; i < 40; i++)
            strcat(q, "w ");
        refused(q, "more than 32 terms");
    }
}

static void test_place_options(void)
{
    mi_cursor_options co = MI_CURSOR_OPTIONS_INIT;
    char got[512];

    co.city = "AREZZO";
    CHECK_OK(names(got, sizeof(got), &co));
    CHECK_EQ_STR(got, "DSCN0010.jpg");
    co.country = "Italy";
    CHECK_OK(names(got, sizeof(got), &co));
    CHECK_EQ_STR(got, "DSCN0010.jpg");
    co.country = "it";
    CHECK_OK(names(got, sizeof(got), &co));
    CHECK_EQ_STR(got, "DSCN0010.jpg");
    co.country = "Finland";
    CHECK_OK(names(got, sizeof(got), &co));
    CHECK_EQ_STR(got, "");
    co.city = "Tuscany";            /* a region is not a city */
    co.country = NULL;
    CHECK_OK(names(got, sizeof(got), &co));
    CHECK_EQ_STR(got, "");
    co.city = NULL;
    co.place = "tuscany";
    CHECK_OK(names(got, sizeof(got), &co));
    CHECK_EQ_STR(got, "DSCN0010.jpg");
}

static void test_places_list(void)
{
    mi_places *p = NULL;
    char got[256] = "";
    uint8_t h[MI_HASH_SIZE];
    char hex[MI_HASH_HEX_LEN + 1];
    int n = 0;

    CHECK_OK(mi_places_new(&p, idx));
    while (mi_places_next(p) == MI_ROW) {
        snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s=%llu",
                 n++ ? " " : "", mi_place_city(mi_places_place(p)),
                 (unsigned long long)mi_places_count(p));
        if (strcmp(mi_place_city(mi_places_place(p)), "Helsinki") == 0) {
            ta_hash_of(h, dir, "trips/IMG_20210603.jpg");
            mi_hash_to_hex(hex, h);
            CHECK_EQ_STR(mi_places_cover_hex(p), hex);
        }
    }
    mi_places_free(p);
    /* By country code: AU, FI, IT; the second path is not counted. */
    CHECK_EQ_STR(got, "Sydney=1 Helsinki=1 Arezzo=1");
    CHECK_EQ_INT(mi_places_new(NULL, idx), MI_EINVAL);
    mi_places_free(NULL);
}

/* A catalog whose places were made with other data gets them again. */
static void test_places_recomputed(void)
{
    char *p = fx_path(dir, ".mediaindex/index.sqlite3");
    sqlite3 *db = NULL;
    uint64_t gen;

    mi_index_close(idx);
    CHECK(sqlite3_open(p, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "UPDATE files SET place = 1;"
                           "UPDATE meta SET value = 1 WHERE key = 'places_data'",
                       NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    free(p);
    idx = ta_open(dir, 0);
    CHECK(idx != NULL);
    gen = mi_index_generation(idx);
    test_places_in_entries();
    expect("helsinki", "IMG_20210603.jpg");
    expect("place:AD", "");
    mi_index_close(idx);
    idx = ta_open(dir, 0);
    CHECK_EQ_INT(mi_index_generation(idx), gen);   /* once only */
}

/* Words follow the files: a copy deleted, a file renamed. */
static void test_words_follow_changes(void)
{
    char *a = fx_path(dir, "zz/copy of the sea.jpg");
    char *b = fx_path(dir, "old/DSCN0010.jpg");
    char *c = fx_path(dir, "old/renamed arezzo.jpg");

    CHECK(unlink(a) == 0);
    CHECK(rename(b, c) == 0);
    CHECK_OK(mi_scan(idx, NULL, NULL));
    expect("sea", "");
    expect("helsinki", "IMG_20210603.jpg");
    expect("dscn0010", "");
    expect("renamed", "renamed arezzo.jpg");
    expect("arezzo", "renamed arezzo.jpg");
    free(a);
    free(b);
    free(c);
}

int main(void)
{
    setup();
    RUN(test_places_in_entries);
    RUN(test_words);
    RUN(test_filters);
    RUN(test_bad_queries);
    RUN(test_place_options);
    RUN(test_places_list);
    RUN(test_places_recomputed);
    RUN(test_words_follow_changes);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
    return mi_test_done();
}
