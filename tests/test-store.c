/*
 * test-store.c - uploads through the public API: names, types, dedup,
 * collisions, caps, concurrency, nothing left behind.
 */
#include <mediaindex.h>

#include "api-helpers.h"
#include "fixtures.h"
#include "mi-test.h"

#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void today_dir(char *out, size_t len)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    snprintf(out, len, "uploads/%04d%02d%02d", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday);
}

/* Upload `len` bytes in chunks of `chunk`; returns the commit status. */
static mi_status upload(mi_index *idx, const char *name, const void *data,
                        size_t len, size_t chunk, uint64_t max,
                        char *path_out, int *created)
{
    const unsigned char *p = data;
    mi_store *st = NULL;
    mi_status s = mi_store_begin(&st, idx, name, NULL, max);
    size_t off;

    for (off = 0; s == MI_OK && off < len; off += chunk)
        s = mi_store_write(st, p + off, len - off < chunk ? len - off : chunk);
    if (s == MI_OK)
        s = mi_store_commit(st);
    if (s == MI_OK) {
        if (path_out)
            snprintf(path_out, 512, "%s", mi_store_path(st));
        if (created)
            *created = mi_store_created(st);
    } else if (st) {
        printf("# upload %s: %s: %s\n", name, mi_strerror(s), mi_store_errmsg(st));
    }
    mi_store_free(st);
    return s;
}

/* ---------------------------------------------------------------------- */

static void check_safe(const char *in)
{
    char out[256], again[256];
    size_t i, n;

    CHECK_OK(mi_filename_sanitize(out, sizeof(out), in));
    n = strlen(out);
    CHECK(n > 0 && n <= 255);
    CHECK(strchr(out, '/') == NULL);
    CHECK(strchr(out, '\\') == NULL);
    CHECK(strcmp(out, ".") != 0 && strcmp(out, "..") != 0);
    CHECK(out[0] != '.');
    for (i = 0; i < n; i++)
        CHECK((unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
    CHECK_OK(mi_filename_sanitize(again, sizeof(again), out));
    CHECK_EQ_STR(again, out);    /* idempotent */
}

static void test_sanitize(void)
{
    static const struct { const char *in, *out; } cases[] = {
        { "photo.jpg", "photo.jpg" },
        { "../x.jpg", "_x.jpg" },
        { "../../etc/passwd", "_.._etc_passwd" },
        { "/tmp/x.jpg", "_tmp_x.jpg" },
        { "a\\b.jpg", "a_b.jpg" },
        { "..", "upload" },
        { ".", "upload" },
        { "", "upload" },
        { "...jpg", "jpg" },
        { ".hidden.jpg", "hidden.jpg" },
        { "name. . ", "name" },
        { "\xe6\x97\xa5\xe6\x9c\xac.jpg", "\xe6\x97\xa5\xe6\x9c\xac.jpg" },
        { "bad\xff\xfe.jpg", "bad__.jpg" },
        { "ctl\x01\x1f\x7f.jpg", "ctl___.jpg" },
        { "evil\xe2\x80\xaegpj.exe", "evil_gpj.exe" },     /* U+202E */
        { "over\xc0\xaflong.jpg", "over__long.jpg" },      /* overlong "/" */
        { "surrogate\xed\xa0\x80.jpg", "surrogate___.jpg" },
        { "c1\xc2\x85.jpg", "c1_.jpg" },                   /* U+0085 */
    };
    char out[256], big[4096];
    size_t i;
    unsigned int seed = 1;

    for (i = 0; i < MI_ARRAY_LEN_T(cases); i++) {
        CHECK_OK(mi_filename_sanitize(out, sizeof(out), cases[i].in));
        CHECK_EQ_STR(out, cases[i].out);
        check_safe(cases[i].in);
    }
    CHECK(mi_filename_sanitize(out, 10, "x") == MI_EINVAL);
    CHECK(mi_filename_sanitize(out, sizeof(out), NULL) == MI_EINVAL);

    /* Long names keep their extension and stay whole characters. */
    memset(big, 'a', 1000);
    strcpy(big + 1000, ".jpeg");
    CHECK_OK(mi_filename_sanitize(out, sizeof(out), big));
    CHECK_EQ_INT(strlen(out), 255);
    CHECK(strcmp(out + 250, ".jpeg") == 0);
    for (i = 0; i + 3 <= 1200; i += 3)
        memcpy(big + i, "\xe6\x97\xa5", 3);
    strcpy(big + 1200, ".jpg");
    CHECK_OK(mi_filename_sanitize(out, sizeof(out), big));
    CHECK(strlen(out) <= 255);
    CHECK(strcmp(out + strlen(out) - 4, ".jpg") == 0);
    CHECK_EQ_INT((strlen(out) - 4) % 3, 0);
    check_safe(big);

    /* Random bytes: the properties always hold. */
    for (i = 0; i < 20000; i++) {
        size_t len = (size_t)(rand_r(&seed) % 400), k;
        for (k = 0; k < len; k++) {
            int r = rand_r(&seed);
            big[k] = (char)(r % 5 == 0 ? "./\\\xe2\xc3"[r % 5] : r % 256);
            if (big[k] == 0)
                big[k] = '.';
        }
        big[len] = '\0';
        check_safe(big);
    }
}

static void test_store_and_dedup(void)
{
    char *dir = fx_tempdir(), path[512], path2[512], day[64], *p;
    unsigned char *jpg = NULL, *back = NULL;
    size_t len = 0, blen = 0;
    int created = -1;
    mi_index *idx = ta_open(dir, 0);
    mi_scan_stats st = MI_SCAN_STATS_INIT;
    uint8_t h[MI_HASH_SIZE];
    mi_entry *e = NULL;
    fx_exif ex = { 0 };

    ex.datetime_original = "2020:02:02 10:00:00";
    CHECK(fx_jpeg_buffer(&jpg, &len, 64, 48, 5, &ex) == 0);
    today_dir(day, sizeof(day));

    CHECK_OK(upload(idx, "holiday.jpg", jpg, len, 1000, 0, path, &created));
    CHECK_EQ_INT(created, 1);
    snprintf(path2, sizeof(path2), "%s/holiday.jpg", day);
    CHECK_EQ_STR(path, path2);
    p = fx_path(dir, path);
    CHECK(fx_read_file(p, &back, &blen) == 0);
    CHECK(blen == len && back && memcmp(back, jpg, len) == 0);
    free(back);
    free(p);

    /* Indexed like a scanned file, with its metadata. */
    CHECK_OK(mi_hash_buffer(h, jpg, len));
    CHECK_OK(mi_lookup(&e, idx, h));
    if (e) {
        CHECK_EQ_STR(mi_entry_path(e), path);
        CHECK_EQ_INT(mi_entry_creation_source(e), MI_DATE_EXIF_ORIGINAL);
        CHECK_EQ_INT(mi_entry_width(e), 64);
        mi_entry_free(e);
    }

    /* The same bytes again, under another name: nothing written. */
    CHECK_OK(upload(idx, "copy.jpg", jpg, len, 333, 0, path2, &created));
    CHECK_EQ_INT(created, 0);
    CHECK_EQ_STR(path2, path);
    CHECK_EQ_INT(fx_count_in(dir, "uploads"), 1);
    CHECK_EQ_INT(fx_count_in(dir, ".mediaindex/tmp"), 0);

    /* A scan agrees with what the upload recorded. */
    CHECK_OK(mi_scan(idx, NULL, &st));
    CHECK_EQ_INT(st.unchanged, 1);
    CHECK_EQ_INT(st.added + st.changed + st.removed, 0);

    /* Deleted from disk but not yet rescanned: a new upload is kept. */
    p = fx_path(dir, path);
    CHECK(unlink(p) == 0);
    free(p);
    CHECK_OK(upload(idx, "again.jpg", jpg, len, 4096, 0, path2, &created));
    CHECK_EQ_INT(created, 1);
    CHECK_EQ_INT(fx_count_in(dir, "uploads"), 1);
    free(jpg);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

static void test_collisions_and_names(void)
{
    char *dir = fx_tempdir(), path[512], want[512], day[64];
    mi_index *idx = ta_open(dir, 0);
    unsigned char *jpg = NULL;
    size_t len = 0;
    int i, created;
    mi_store *st = NULL;

    today_dir(day, sizeof(day));
    for (i = 0; i < 3; i++) {
        CHECK(fx_jpeg_buffer(&jpg, &len, 16, 16, 100 + (unsigned)i, NULL) == 0);
        CHECK_OK(upload(idx, "same.jpg", jpg, len, len, 0, path, &created));
        if (i == 0)
            snprintf(want, sizeof(want), "%s/same.jpg", day);
        else
            snprintf(want, sizeof(want), "%s/same_%d.jpg", day, i);
        CHECK_EQ_STR(path, want);
        free(jpg);
    }

    /* Traversal in the name never leaves uploads/YYYYMMDD. */
    CHECK(fx_jpeg_buffer(&jpg, &len, 16, 16, 200, NULL) == 0);
    CHECK_OK(upload(idx, "../../../evil.jpg", jpg, len, len, 0, path, &created));
    snprintf(want, sizeof(want), "%s/_.._.._evil.jpg", day);
    CHECK_EQ_STR(path, want);
    free(jpg);

    /* No extension in the URL name: the part's file name gives it. */
    CHECK(fx_jpeg_buffer(&jpg, &len, 16, 16, 201, NULL) == 0);
    CHECK_OK(mi_store_begin(&st, idx, "photo", "IMG_0001.JPG", 0));
    CHECK_OK(mi_store_write(st, jpg, len));
    CHECK_OK(mi_store_commit(st));
    snprintf(want, sizeof(want), "%s/photo.JPG", day);
    CHECK_EQ_STR(mi_store_path(st), want);
    CHECK_EQ_STR(mi_store_filename(st), "photo.JPG");
    CHECK_EQ_INT(strlen(mi_store_hash_hex(st)), 64);
    mi_store_free(st);
    free(jpg);
    CHECK_EQ_INT(fx_count_in(dir, "uploads"), 5);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

static void test_refused(void)
{
    char *dir = fx_tempdir();
    mi_index *idx = ta_open(dir, 0);
    unsigned char *png = NULL, *jpg = NULL;
    size_t plen = 0, jlen = 0;
    mi_store *st = (mi_store *)1;
    const char text[] = "#!/bin/sh\necho not an image\n";

    CHECK(fx_png_buffer(&png, &plen, 8, 8, 1) == 0);
    CHECK(fx_jpeg_buffer(&jpg, &jlen, 8, 8, 1, NULL) == 0);

    /* Names we do not accept. */
    CHECK(mi_store_begin(&st, idx, "run.sh", NULL, 0) == MI_EFORMAT);
    CHECK(st == NULL);
    CHECK(strstr(mi_index_errmsg(idx), "not allowed") != NULL);
    CHECK(mi_store_begin(&st, idx, "noext", "also-none", 0) == MI_EFORMAT);
    CHECK(mi_store_begin(&st, idx, "vector.svg", NULL, 0) == MI_EFORMAT);
    /* Content that does not match its name. */
    CHECK(upload(idx, "fake.jpg", png, plen, plen, 0, NULL, NULL) == MI_EFORMAT);
    CHECK(upload(idx, "script.jpg", text, sizeof(text), 7, 0, NULL, NULL) ==
          MI_EFORMAT);
    CHECK(upload(idx, "pic.png", jpg, jlen, jlen, 0, NULL, NULL) == MI_EFORMAT);
    /* Too big: refused while streaming. */
    CHECK(upload(idx, "big.jpg", jpg, jlen, 100, jlen - 1, NULL, NULL) ==
          MI_ETOOBIG);
    /* Empty. */
    CHECK_OK(mi_store_begin(&st, idx, "empty.jpg", NULL, 0));
    CHECK(mi_store_commit(st) == MI_EFORMAT);
    mi_store_free(st);
    /* Abandoned half-way. */
    CHECK_OK(mi_store_begin(&st, idx, "half.jpg", NULL, 0));
    CHECK_OK(mi_store_write(st, jpg, jlen / 2));
    mi_store_free(st);

    CHECK_EQ_INT(fx_count_in(dir, "uploads"), 0);
    CHECK_EQ_INT(fx_count_in(dir, ".mediaindex/tmp"), 0);
    {
        uint64_t files = 1;
        mi_index_count(idx, NULL, &files);
        CHECK_EQ_INT(files, 0);
    }
    /* Accepted: a PNG named .png. */
    CHECK_OK(upload(idx, "pic.png", png, plen, plen, 0, NULL, NULL));
    free(png);
    free(jpg);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

typedef struct race {
    mi_index *idx;
    const unsigned char *data;
    size_t len;
    mi_status s;
    int created;
    char path[512];
} race;

static void *race_main(void *arg)
{
    race *r = arg;
    r->s = upload(r->idx, "race.jpg", r->data, r->len, 512, 0, r->path,
                  &r->created);
    return NULL;
}

static void test_concurrent_uploads(void)
{
    char *dir = fx_tempdir();
    mi_index *idx = ta_open(dir, 0);
    race r[20];
    pthread_t t[20];
    unsigned char *same = NULL, *diff[20];
    size_t slen = 0, dlen[20];
    int i, created = 0;

    /* 20 uploads of the same bytes: one file, one "created". */
    CHECK(fx_jpeg_buffer(&same, &slen, 32, 32, 7, NULL) == 0);
    for (i = 0; i < 20; i++) {
        memset(&r[i], 0, sizeof(r[i]));
        r[i].idx = idx;
        r[i].data = same;
        r[i].len = slen;
        pthread_create(&t[i], NULL, race_main, &r[i]);
    }
    for (i = 0; i < 20; i++) {
        pthread_join(t[i], NULL);
        CHECK_OK(r[i].s);
        created += r[i].created;
        CHECK_EQ_STR(r[i].path, r[0].path);
    }
    CHECK_EQ_INT(created, 1);
    CHECK_EQ_INT(fx_count_in(dir, "uploads"), 1);

    /* 20 different contents under one name: all kept. */
    for (i = 0; i < 20; i++) {
        CHECK(fx_jpeg_buffer(&diff[i], &dlen[i], 32, 32, 1000 + (unsigned)i,
                             NULL) == 0);
        memset(&r[i], 0, sizeof(r[i]));
        r[i].idx = idx;
        r[i].data = diff[i];
        r[i].len = dlen[i];
        pthread_create(&t[i], NULL, race_main, &r[i]);
    }
    created = 0;
    for (i = 0; i < 20; i++) {
        pthread_join(t[i], NULL);
        CHECK_OK(r[i].s);
        created += r[i].created;
        free(diff[i]);
    }
    CHECK_EQ_INT(created, 20);
    CHECK_EQ_INT(fx_count_in(dir, "uploads"), 21);
    CHECK_EQ_INT(fx_count_in(dir, ".mediaindex/tmp"), 0);
    {
        uint64_t media = 0;
        mi_index_count(idx, &media, NULL);
        CHECK_EQ_INT(media, 21);
    }
    free(same);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

/* A large upload (hashed on a second thread) in uneven pieces: the same
 * hash as hashing the bytes at once, the same bytes on disk. */
static void test_large_upload(void)
{
    char *dir = fx_tempdir(), *p;
    mi_index *idx = ta_open(dir, 0);
    size_t len = 13u * 1024 * 1024 + 12345, off, i;
    unsigned char *data = malloc(len), *back = NULL;
    size_t blen = 0, pieces[] = { 1, 700 * 1024, 3 << 20, 1 << 20, 65536, 17 };
    uint8_t h[MI_HASH_SIZE];
    char hex[MI_HASH_HEX_LEN + 1];
    unsigned int seed = 9;
    mi_store *st = NULL;

    CHECK(data != NULL);
    if (!data)
        return;
    for (i = 0; i < len; i++)
        data[i] = (unsigned char)rand_r(&seed);
    /* A JPEG's first bytes: uploads of JPEGs are not decoded before
     * they are kept (videos are: random bytes would be refused). */
    memcpy(data, "\xff\xd8\xff\xe0", 4);
    CHECK_OK(mi_store_begin(&st, idx, "big.jpg", NULL, 0));
    for (off = 0, i = 0; off < len; i++) {
        size_t n = pieces[i % MI_ARRAY_LEN_T(pieces)];
        if (n > len - off)
            n = len - off;
        CHECK_OK(mi_store_write(st, data + off, n));
        off += n;
    }
    CHECK_OK(mi_store_commit(st));
    CHECK_OK(mi_hash_buffer(h, data, len));
    mi_hash_to_hex(hex, h);
    CHECK_EQ_STR(mi_store_hash_hex(st), hex);
    p = fx_path(dir, mi_store_path(st));
    CHECK(fx_read_file(p, &back, &blen) == 0);
    CHECK(blen == len && back && memcmp(back, data, len) == 0);
    free(back);
    free(p);
    /* Random bytes after a JPEG's first ones: indexed, no thumbnail (it
     * was tried while the file was synced), the reason listed. */
    {
        mi_entry *e = NULL;
        mi_problems *pr = NULL;
        int thumb_problems = 0;

        CHECK_OK(mi_lookup(&e, idx, h));
        CHECK(e && mi_entry_thumbnail(e) == NULL);
        mi_entry_free(e);
        CHECK_OK(mi_problems_new(&pr, idx));
        while (pr && mi_problems_next(pr) == MI_ROW)
            thumb_problems += mi_problems_stage(pr) == MI_PROBLEM_THUMBNAIL;
        mi_problems_free(pr);
        CHECK_EQ_INT(thumb_problems, 1);
    }
    mi_store_free(st);

    /* A real JPEG of over 4 MiB (padding after its end): its thumbnail
     * is there when the commit returns. */
    {
        unsigned char *jpg = NULL;
        size_t jlen = 0;
        mi_entry *e = NULL;
        char *tp;
        struct stat sb;

        CHECK(fx_jpeg_buffer(&jpg, &jlen, 640, 480, 77, NULL) == 0);
        st = NULL;
        CHECK_OK(mi_store_begin(&st, idx, "padded.jpg", NULL, 0));
        CHECK_OK(mi_store_write(st, jpg, jlen));
        memset(data, 0, 5u << 20);
        CHECK_OK(mi_store_write(st, data, 5u << 20));
        CHECK_OK(mi_store_commit(st));
        CHECK(mi_store_created(st));
        CHECK_OK(mi_hash_from_hex(h, mi_store_hash_hex(st)));
        CHECK_OK(mi_lookup(&e, idx, h));
        CHECK(e && mi_entry_thumbnail(e) != NULL);
        tp = fx_path(dir, e && mi_entry_thumbnail(e) ? mi_entry_thumbnail(e)
                                                     : "none");
        CHECK(stat(tp, &sb) == 0 && sb.st_size > 0);
        free(tp);
        mi_entry_free(e);
        mi_store_free(st);
        free(jpg);
    }

    /* Abandoned half-way with the thread running: nothing left. */
    st = NULL;
    CHECK_OK(mi_store_begin(&st, idx, "half.jpg", NULL, 0));
    CHECK_OK(mi_store_write(st, data, 9u << 20));
    mi_store_free(st);
    CHECK_EQ_INT(fx_count_in(dir, ".mediaindex/tmp"), 0);
    CHECK_EQ_INT(fx_count_in(dir, "uploads"), 2);   /* big, padded */
    free(data);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

int main(void)
{
    RUN(test_sanitize);
    RUN(test_store_and_dedup);
    RUN(test_collisions_and_names);
    RUN(test_refused);
    RUN(test_concurrent_uploads);
    RUN(test_large_upload);
    return mi_test_done();
}
