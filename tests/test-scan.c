/*
 * test-scan.c - scanning through the public API: incremental rescans,
 * restarts, odd files and names.  Real files in a temporary folder.
 */
#include <mediaindex.h>

#include "api-helpers.h"
#include "fixtures.h"
#include "mi-test.h"

#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static mi_status scan(mi_index *idx, mi_scan_stats *st)
{
    mi_scan_stats tmp = MI_SCAN_STATS_INIT;
    mi_status s;

    if (!st)
        st = &tmp;
    *st = (mi_scan_stats)MI_SCAN_STATS_INIT;
    s = mi_scan(idx, NULL, st);
    if (s != MI_OK)
        printf("# scan: %s: %s\n", mi_strerror(s), mi_index_errmsg(idx));
    return s;
}

static void write_jpeg(const char *dir, const char *rel, unsigned seed)
{
    char *p = fx_path(dir, rel);
    char *slash = strrchr(p, '/');

    *slash = '\0';
    fx_mkdirs(p);
    *slash = '/';
    if (fx_write_jpeg(p, 32, 24, seed, NULL) != 0)
        printf("# cannot write %s\n", p);
    free(p);
}

/* The primary path of the entry with the content of dir/rel, or "". */
static char *indexed_path(mi_index *idx, const uint8_t hash[MI_HASH_SIZE])
{
    mi_entry *e = NULL;
    char *p;

    if (mi_lookup(&e, idx, hash) != MI_OK)
        return strdup("");
    p = strdup(mi_entry_path(e));
    mi_entry_free(e);
    return p;
}

static uint64_t count_files(mi_index *idx)
{
    uint64_t files = 0;
    mi_index_count(idx, NULL, &files);
    return files;
}

static uint64_t count_media(mi_index *idx)
{
    uint64_t media = 0;
    mi_index_count(idx, &media, NULL);
    return media;
}

/* ---------------------------------------------------------------------- */

static void test_incremental(void)
{
    char *dir = fx_tempdir();
    mi_index *idx;
    mi_scan_stats st;
    uint8_t h1[MI_HASH_SIZE], h2[MI_HASH_SIZE], h3[MI_HASH_SIZE];
    char *a, *b, *p;
    mi_entry *e = NULL;

    write_jpeg(dir, "2019/one.jpg", 1);
    write_jpeg(dir, "2019/two.JPG", 2);
    write_jpeg(dir, "three.png.jpeg", 3);
    a = fx_path(dir, "notes.txt");
    fx_write_file(a, "hello", 5);
    free(a);

    idx = ta_open(dir, 2);
    CHECK(idx != NULL);
    if (!idx)
        goto out;
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.seen, 3);
    CHECK_EQ_INT(st.added, 3);
    CHECK_EQ_INT(st.files_hashed, 3);
    CHECK_EQ_INT(count_files(idx), 3);
    CHECK_EQ_INT(count_media(idx), 3);

    /* Nothing changed: nothing read. */
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.unchanged, 3);
    CHECK_EQ_INT(st.files_hashed, 0);
    CHECK_EQ_INT(st.added + st.changed + st.removed + st.failed, 0);

    /* Add one, modify one, delete one. */
    write_jpeg(dir, "2020/four.jpg", 4);
    a = fx_path(dir, "2019/one.jpg");
    ta_hash_of(h1, dir, "2019/one.jpg");
    CHECK(fx_write_jpeg(a, 40, 30, 11, NULL) == 0);
    ta_hash_of(h2, dir, "2019/one.jpg");
    CHECK(memcmp(h1, h2, MI_HASH_SIZE) != 0);
    ta_hash_of(h3, dir, "three.png.jpeg");
    b = fx_path(dir, "three.png.jpeg");
    CHECK(unlink(b) == 0);
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.added, 1);
    CHECK_EQ_INT(st.changed, 1);
    CHECK_EQ_INT(st.removed, 1);
    CHECK_EQ_INT(st.unchanged, 1);
    CHECK_EQ_INT(st.files_hashed, 2);
    CHECK(mi_lookup(&e, idx, h1) == MI_ENOTFOUND);   /* old content gone */
    CHECK(mi_lookup(&e, idx, h3) == MI_ENOTFOUND);   /* deleted file gone */
    p = indexed_path(idx, h2);
    CHECK_EQ_STR(p, "2019/one.jpg");
    free(p);
    CHECK_EQ_INT(count_files(idx), 3);

    /* Rename: the old path goes, the new one comes, same content. */
    ta_hash_of(h1, dir, "2020/four.jpg");
    free(b);
    b = fx_path(dir, "2020/renamed.jpg");
    free(a);
    a = fx_path(dir, "2020/four.jpg");
    CHECK(rename(a, b) == 0);
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.added, 1);
    CHECK_EQ_INT(st.removed, 1);
    p = indexed_path(idx, h1);
    CHECK_EQ_STR(p, "2020/renamed.jpg");
    free(p);

    /* Duplicate: a copy under another name is one entry with two paths;
     * deleting one path keeps the content. */
    {
        FILE *in = fopen(b, "rb");
        char *copy = fx_path(dir, "backup/copy.jpg");
        char buf[65536];
        size_t n = in ? fread(buf, 1, sizeof(buf), in) : 0;
        char *bdir = fx_path(dir, "backup");

        if (in)
            fclose(in);
        fx_mkdirs(bdir);
        CHECK(fx_write_file(copy, buf, n) == 0);
        CHECK_OK(scan(idx, &st));
        CHECK_EQ_INT(st.added, 1);
        CHECK_EQ_INT(count_files(idx), 4);
        CHECK_EQ_INT(count_media(idx), 3);
        CHECK_OK(mi_lookup(&e, idx, h1));
        if (e) {
            CHECK_EQ_STR(mi_entry_path(e), "2020/renamed.jpg");
            CHECK_EQ_INT(mi_entry_dup_count(e), 1);
            CHECK_EQ_STR(mi_entry_dup_path(e, 0), "backup/copy.jpg");
            CHECK(mi_entry_dup_path(e, 1) == NULL);
            mi_entry_free(e);
            e = NULL;
        }
        CHECK(unlink(b) == 0);
        CHECK_OK(scan(idx, &st));
        CHECK_EQ_INT(st.removed, 1);
        p = indexed_path(idx, h1);
        CHECK_EQ_STR(p, "backup/copy.jpg");
        free(p);
        CHECK(unlink(copy) == 0);
        CHECK_OK(scan(idx, &st));
        CHECK(mi_lookup(&e, idx, h1) == MI_ENOTFOUND);
        free(copy);
        free(bdir);
    }
    free(a);
    free(b);
    mi_index_close(idx);
out:
    fx_rmtree(dir);
    free(dir);
}

/* A restart reads nothing that did not change; a full scan reads all. */
static void test_restart_no_rehash(void)
{
    char *dir = fx_tempdir();
    mi_scan_options opts = MI_SCAN_OPTIONS_INIT;
    mi_scan_stats st;
    mi_index *idx;
    uint64_t gen;
    int i;
    char name[64];

    for (i = 0; i < 50; i++) {
        snprintf(name, sizeof(name), "d%d/img%03d.jpg", i % 5, i);
        write_jpeg(dir, name, 100 + (unsigned)i);
    }
    idx = ta_open(dir, 3);
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.added, 50);
    gen = mi_index_generation(idx);
    mi_index_close(idx);

    idx = ta_open(dir, 3);
    CHECK(idx != NULL);
    if (!idx)
        goto out;
    CHECK_EQ_INT(mi_index_generation(idx), gen);   /* persisted */
    CHECK_EQ_INT(count_files(idx), 50);            /* served at once */
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.seen, 50);
    CHECK_EQ_INT(st.unchanged, 50);
    CHECK_EQ_INT(st.files_hashed, 0);
    CHECK_EQ_INT(st.bytes_hashed, 0);
    CHECK_EQ_INT(mi_index_generation(idx), gen);   /* nothing changed */

    opts.flags = MI_SCAN_FULL;
    st = (mi_scan_stats)MI_SCAN_STATS_INIT;
    CHECK_OK(mi_scan(idx, &opts, &st));
    CHECK_EQ_INT(st.files_hashed, 50);
    CHECK_EQ_INT(st.changed, 50);
    mi_index_close(idx);
out:
    fx_rmtree(dir);
    free(dir);
}

/* Names whose order on disk and in the catalog could disagree: a rescan
 * must find every one unchanged (a disagreement would drop and re-add). */
static void test_merge_order(void)
{
    static const char *const names[] = {
        "a.jpg", "a/b.jpg", "a/c/d.jpg", "a-b.jpg", "a0.jpg", "ab.jpg",
        "a.b/x.jpg", "A.jpg", "z.jpg", "\xc3\xa9t\xc3\xa9.jpg", "\xff.jpg",
        "a b.jpg", "a/b/c.jpg", "ab/c.jpg", "a.jpg.d/e.jpg", "~.jpg",
        "x/\x01y.jpg", "0/0.jpg", "0.jpg", "0-/0.jpg",
    };
    char *dir = fx_tempdir();
    mi_scan_stats st;
    mi_index *idx;
    size_t i;

    for (i = 0; i < MI_ARRAY_LEN_T(names); i++)
        write_jpeg(dir, names[i], 200 + (unsigned)i);
    idx = ta_open(dir, 2);
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.added, MI_ARRAY_LEN_T(names));
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.unchanged, MI_ARRAY_LEN_T(names));
    CHECK_EQ_INT(st.added + st.removed + st.changed, 0);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

static void test_skips_state_and_non_media(void)
{
    char *dir = fx_tempdir();
    mi_scan_stats st;
    mi_index *idx;
    char *p;

    write_jpeg(dir, ".thumbnails/x.jpg", 1);
    write_jpeg(dir, "sub/.thumbnails/y.jpg", 2);
    write_jpeg(dir, ".mediaindex/z.jpg", 3);
    write_jpeg(dir, "readme.txt", 4);
    write_jpeg(dir, "noext", 5);
    write_jpeg(dir, "keep.JpG", 6);
    write_jpeg(dir, ".hidden/movie.MOV", 7);
    p = fx_path(dir, "fifo.jpg");
    CHECK(mkfifo(p, 0644) == 0);     /* must be skipped, never opened */
    free(p);

    idx = ta_open(dir, 2);
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.seen, 2);
    CHECK_EQ_INT(st.added, 2);
    CHECK_EQ_INT(st.failed, 0);
    {
        mi_cursor *c = NULL;
        int n = 0, videos = 0;
        CHECK_OK(mi_cursor_new(&c, idx));
        while (mi_cursor_next(c) == MI_ROW) {
            const mi_entry *e = mi_cursor_entry(c);
            n++;
            if (mi_entry_kind(e) == MI_KIND_VIDEO) {
                videos++;
                CHECK_EQ_STR(mi_entry_mime_type(e), "video/quicktime");
                CHECK_EQ_STR(mi_entry_path(e), ".hidden/movie.MOV");
            } else {
                CHECK_EQ_STR(mi_entry_path(e), "keep.JpG");
                CHECK_EQ_STR(mi_entry_mime_type(e), "image/jpeg");
            }
        }
        mi_cursor_free(c);
        CHECK_EQ_INT(n, 2);
        CHECK_EQ_INT(videos, 1);
    }
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

static void test_symlinks(void)
{
    char *dir = fx_tempdir(), *outside = fx_tempdir();
    mi_scan_stats st;
    mi_index *idx;
    uint8_t h[MI_HASH_SIZE];
    mi_entry *e = NULL;
    char *p, *t;

    write_jpeg(dir, "real/in.jpg", 1);
    write_jpeg(outside, "out.jpg", 2);
    write_jpeg(outside, "tree/deep.jpg", 3);

    p = fx_path(dir, "link-in.jpg");
    CHECK(symlink("real/in.jpg", p) == 0);             /* inside: indexed */
    free(p);
    p = fx_path(dir, "link-out.jpg");
    t = fx_path(outside, "out.jpg");
    CHECK(symlink(t, p) == 0);                         /* outside: not */
    free(p);
    free(t);
    p = fx_path(dir, "escape.jpg");
    CHECK(symlink("../../../../../../../../etc/passwd.jpg", p) == 0);
    free(p);
    p = fx_path(dir, "dangling.jpg");
    CHECK(symlink("nowhere.jpg", p) == 0);
    free(p);
    p = fx_path(dir, "dirlink");
    t = fx_path(outside, "tree");
    CHECK(symlink(t, p) == 0);                         /* dir: not followed */
    free(p);
    free(t);
    p = fx_path(dir, "loop");
    CHECK(symlink(".", p) == 0);                       /* would loop */
    free(p);

    idx = ta_open(dir, 2);
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.added, 2);
    CHECK_EQ_INT(count_files(idx), 2);
    CHECK_EQ_INT(count_media(idx), 1);
    ta_hash_of(h, dir, "real/in.jpg");
    CHECK_OK(mi_lookup(&e, idx, h));
    if (e) {
        CHECK_EQ_STR(mi_entry_path(e), "link-in.jpg");
        CHECK_EQ_INT(mi_entry_dup_count(e), 1);
        CHECK_EQ_STR(mi_entry_dup_path(e, 0), "real/in.jpg");
        mi_entry_free(e);
    }
    mi_index_close(idx);
    fx_rmtree(dir);
    fx_rmtree(outside);
    free(dir);
    free(outside);
}

static void test_odd_names(void)
{
    char *dir = fx_tempdir();
    char longname[256], deep[1200];
    mi_scan_stats st;
    mi_index *idx;
    uint8_t h[MI_HASH_SIZE];
    mi_entry *e = NULL;
    int i;

    /* 255 bytes, the longest a name can be. */
    memset(longname, 'n', sizeof(longname));
    memcpy(longname + 251, ".jpg", 5);
    write_jpeg(dir, longname, 1);
    write_jpeg(dir, "bad-\xff\xfe-utf8.jpg", 2);
    write_jpeg(dir, "\xe6\x97\xa5\xe6\x9c\xac.jpg", 3);    /* 日本.jpg */
    write_jpeg(dir, "with\nnewline.jpg", 4);
    /* A deep path, 60 levels. */
    deep[0] = '\0';
    for (i = 0; i < 60; i++)
        strcat(deep, "dd/");
    strcat(deep, "deep.jpg");
    write_jpeg(dir, deep, 5);

    idx = ta_open(dir, 2);
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.added, 5);
    CHECK_EQ_INT(st.failed, 0);
    ta_hash_of(h, dir, "bad-\xff\xfe-utf8.jpg");
    CHECK_OK(mi_lookup(&e, idx, h));
    if (e) {
        CHECK_EQ_STR(mi_entry_filename(e), "bad-\xff\xfe-utf8.jpg");
        mi_entry_free(e);
        e = NULL;
    }
    ta_hash_of(h, dir, longname);
    CHECK_OK(mi_lookup(&e, idx, h));
    if (e) {
        CHECK_EQ_INT(strlen(mi_entry_path(e)), 255);
        mi_entry_free(e);
    }
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.unchanged, 5);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

static void test_empty_and_missing(void)
{
    char *dir = fx_tempdir(), *missing, *file;
    char err[256];
    mi_scan_stats st;
    mi_index *idx = (mi_index *)1;
    mi_cursor *c = NULL;

    idx = ta_open(dir, 0);
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.seen, 0);
    CHECK_OK(mi_cursor_new(&c, idx));
    CHECK(mi_cursor_next(c) == MI_DONE);
    CHECK(mi_cursor_entry(c) == NULL);
    CHECK(mi_cursor_next(c) == MI_DONE);
    mi_cursor_free(c);
    mi_index_close(idx);

    missing = fx_path(dir, "does/not/exist");
    idx = (mi_index *)1;
    CHECK(mi_index_open(&idx, missing, NULL, err, sizeof(err)) == MI_ENOTFOUND);
    CHECK(idx == NULL);
    CHECK(strstr(err, "does/not/exist") != NULL);
    printf("# missing folder: %s\n", err);

    file = fx_path(dir, "plain.jpg");
    fx_write_file(file, "x", 1);
    CHECK(mi_index_open(&idx, file, NULL, err, sizeof(err)) == MI_ENOTDIR);
    CHECK(idx == NULL);
    CHECK(mi_index_open(&idx, "", NULL, err, sizeof(err)) == MI_EINVAL);
    CHECK(mi_index_open(&idx, NULL, NULL, NULL, 0) == MI_EINVAL);
    CHECK(mi_index_open(NULL, dir, NULL, NULL, 0) == MI_EINVAL);
    free(missing);
    free(file);
    fx_rmtree(dir);
    free(dir);
}

/*
 * Run body(dir) in a child that cannot read what it is denied: root reads
 * everything, so as root the child first gives the tree to "nobody", makes
 * it its root directory and drops to nobody (body then gets "/").  Returns the child's exit status (0 = body returned 0).
 */
static int as_nobody(const char *dir, int (*body)(const char *dir))
{
    int status = 0;
    pid_t pid;

    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        int rc;

        if (geteuid() == 0) {
            char cmd[PATH_MAX + 64];
            snprintf(cmd, sizeof(cmd), "chown -R 65534:65534 '%s'", dir);
            /* Inside its own root: nobody may not be able to pass through
             * the folders above the fixtures (a chroot whose "/" is 0700,
             * a checkout under /root). */
            if (system(cmd) != 0 || chroot(dir) != 0 || chdir("/") != 0 ||
                setgroups(0, NULL) != 0 || setgid(65534) != 0 ||
                setuid(65534) != 0) {
                printf("# cannot become nobody: %s\n", strerror(errno));
                fflush(stdout);
                _exit(3);
            }
            dir = "/";
        }
        rc = body(dir) ? 1 : 0;
        fflush(stdout);     /* _exit does not flush the body's diagnostics */
        _exit(rc);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

/* The problems recorded, as "stage:path" lines in the cursor's order,
 * and each one's fields checked on the way. */
static int problems_text(mi_index *idx, char *out, size_t out_size)
{
    mi_problems *p = NULL;
    int64_t now = (int64_t)time(NULL);
    size_t n = 0;
    int bad = 0;
    uint64_t count = 0, rows = 0;
    mi_status s;

    out[0] = '\0';
    if (mi_problems_new(&p, idx) != MI_OK)
        return 1;
    while ((s = mi_problems_next(p)) == MI_ROW) {
        size_t len = 0;
        const char *path = mi_problems_path(p, &len);
        const char *why = mi_problems_reason(p);

        bad |= !path || len != strlen(path) || !why || !*why;
        bad |= mi_problems_status(p) >= 0;
        bad |= mi_problems_first_seen(p) > mi_problems_last_seen(p) ||
               mi_problems_last_seen(p) < now - 60 ||
               mi_problems_last_seen(p) > now + 60;
        if (bad)
            printf("# bad problem row: %s: %s\n", path ? path : "(null)",
                   why ? why : "(null)");
        rows++;
        n += (size_t)snprintf(out + n, n < out_size ? out_size - n : 0,
                              "%d:%s;", (int)mi_problems_stage(p),
                              path ? path : "");
    }
    bad |= s != MI_DONE;
    bad |= mi_problems_path(p, NULL) != NULL;   /* no current row */
    mi_problems_free(p);
    bad |= mi_problems_count(&count, idx) != MI_OK || count != rows;
    return bad;
}

static int scan_unreadable(const char *dir)
{
    mi_scan_stats st;
    mi_index *idx = ta_open(dir, 2);
    char text[512], *p;
    int bad;

    if (!idx)
        return 1;
    bad = scan(idx, &st) != MI_OK || st.added != 2 ||
          st.failed != 2;         /* the file and the directory */
    if (bad)
        printf("# added %d failed %d\n", (int)st.added, (int)st.failed);
    /* Both are listed, with why: the folder and the file. */
    bad |= problems_text(idx, text, sizeof(text));
    if (!strstr(text, "2:locked/;") || !strstr(text, "1:secret.jpg;") ||
        strlen(text) != strlen("2:locked/;1:secret.jpg;")) {
        printf("# problems: %s\n", text);
        bad = 1;
    }
    /* Readable again: the next scan indexes them and forgets the problems. */
    p = fx_path(dir, "secret.jpg");
    chmod(p, 0644);
    free(p);
    p = fx_path(dir, "locked");
    chmod(p, 0755);
    free(p);
    bad |= scan(idx, &st) != MI_OK || st.added != 2 || st.failed != 0;
    bad |= problems_text(idx, text, sizeof(text));
    if (*text) {
        printf("# problems left: %s\n", text);
        bad = 1;
    }
    mi_index_close(idx);
    return bad;
}

/* An image that cannot be decoded is indexed, and its thumbnail's problem
 * is listed until the file is mended or goes. */
static void test_problems(void)
{
    static const char junk[] = "\xff\xd8\xff\xe0 not really a JPEG";
    static const char junk2[] = "\xff\xd8\xff\xe0 broken once more!";
    char *dir = fx_tempdir(), *p, text[512];
    mi_index *idx;
    mi_scan_stats st;
    mi_problems *pr = NULL;
    uint64_t n = 9;

    write_jpeg(dir, "good.jpg", 1);
    p = fx_path(dir, "broken.jpg");
    fx_write_file(p, junk, sizeof(junk) - 1);
    idx = ta_open(dir, 2);
    CHECK(idx != NULL);
    CHECK(mi_problems_count(&n, idx) == MI_OK && n == 0);
    CHECK(scan(idx, &st) == MI_OK && st.added == 2 && st.failed == 0);
    CHECK(problems_text(idx, text, sizeof(text)) == 0);
    CHECK_EQ_STR(text, "3:broken.jpg;");
    CHECK(mi_problems_new(&pr, idx) == MI_OK);
    CHECK(mi_problems_next(pr) == MI_ROW);
    CHECK(mi_problems_status(pr) == MI_EFORMAT);
    CHECK(strstr(mi_problems_reason(pr), "decoded") != NULL);
    CHECK(mi_problems_next(pr) == MI_DONE);
    CHECK(mi_problems_next(pr) == MI_DONE);
    mi_problems_free(pr);
    mi_problems_free(NULL);
    CHECK(mi_problems_new(NULL, idx) == MI_EINVAL);
    CHECK(mi_problems_new(&pr, NULL) == MI_EINVAL && pr == NULL);
    CHECK(mi_problems_next(NULL) == MI_EINVAL);
    CHECK(mi_problems_count(NULL, idx) == MI_EINVAL);

    /* Unchanged, it stays listed (and is not decoded again). */
    CHECK(scan(idx, &st) == MI_OK && st.unchanged == 2);
    CHECK(problems_text(idx, text, sizeof(text)) == 0);
    CHECK_EQ_STR(text, "3:broken.jpg;");
    /* Persisted: another handle sees it. */
    mi_index_close(idx);
    idx = ta_open(dir, 2);
    CHECK(problems_text(idx, text, sizeof(text)) == 0);
    CHECK_EQ_STR(text, "3:broken.jpg;");

    /* Mended: gone. */
    write_jpeg(dir, "broken.jpg", 2);
    CHECK(scan(idx, &st) == MI_OK && st.changed == 1);
    CHECK(problems_text(idx, text, sizeof(text)) == 0);
    CHECK_EQ_STR(text, "");

    /* Broken again, then deleted: gone with it. */
    fx_write_file(p, junk2, sizeof(junk2) - 1);
    CHECK(scan(idx, &st) == MI_OK && st.changed == 1);
    CHECK(problems_text(idx, text, sizeof(text)) == 0);
    CHECK_EQ_STR(text, "3:broken.jpg;");
    unlink(p);
    CHECK(scan(idx, &st) == MI_OK && st.removed == 1);
    CHECK(problems_text(idx, text, sizeof(text)) == 0);
    CHECK_EQ_STR(text, "");
    mi_index_close(idx);
    free(p);
    fx_rmtree(dir);
    free(dir);
}

/* Unreadable files are counted as failed and the scan goes on. */
static void test_unreadable(void)
{
    char *dir = fx_tempdir(), *p;

    write_jpeg(dir, "ok1.jpg", 1);
    write_jpeg(dir, "secret.jpg", 2);
    write_jpeg(dir, "ok2.jpg", 3);
    write_jpeg(dir, "locked/inner.jpg", 4);
    p = fx_path(dir, "secret.jpg");
    chmod(p, 0);
    free(p);
    p = fx_path(dir, "locked");
    chmod(p, 0);
    CHECK_EQ_INT(as_nobody(dir, scan_unreadable), 0);
    chmod(p, 0755);
    free(p);
    fx_rmtree(dir);
    free(dir);
}

static int scan_locked_dir(const char *dir)
{
    mi_scan_stats st;
    mi_index *idx = ta_open(dir, 2);
    char *p = fx_path(dir, "sub");
    int bad = !idx || scan(idx, &st) != MI_OK || st.added != 4;

    chmod(p, 0);
    bad |= scan(idx, &st) != MI_OK;
    bad |= st.removed != 0 || st.failed != 1 || st.unchanged != 2;
    bad |= count_files(idx) != 4;
    chmod(p, 0755);
    bad |= scan(idx, &st) != MI_OK || st.unchanged != 4;
    free(p);
    mi_index_close(idx);
    return bad;
}

/* A directory that cannot be read keeps its catalog rows. */
static void test_unreadable_dir_keeps_rows(void)
{
    char *dir = fx_tempdir();

    write_jpeg(dir, "top.jpg", 1);
    write_jpeg(dir, "sub/a.jpg", 2);
    write_jpeg(dir, "sub/b.jpg", 3);
    write_jpeg(dir, "zz.jpg", 4);
    CHECK_EQ_INT(as_nobody(dir, scan_locked_dir), 0);
    fx_rmtree(dir);
    free(dir);
}

static int cancel_now(const mi_scan_stats *st, void *payload)
{
    int *calls = payload;
    (*calls)++;
    return st->seen > 0;
}

static void test_cancel(void)
{
    char *dir = fx_tempdir();
    mi_scan_options opts = MI_SCAN_OPTIONS_INIT;
    mi_scan_stats st = MI_SCAN_STATS_INIT;
    mi_index *idx;
    int calls = 0, i;
    char name[64];

    for (i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "f%03d.jpg", i);
        write_jpeg(dir, name, 300 + (unsigned)i);
    }
    idx = ta_open(dir, 2);
    /* The callback comes with the first file, then every 100 ms. */
    opts.progress = cancel_now;
    opts.payload = &calls;
    CHECK(mi_scan(idx, &opts, &st) == MI_EABORTED);
    CHECK_EQ_INT(calls, 1);
    CHECK(st.seen < 300);
    CHECK(strstr(mi_index_errmsg(idx), "cancel") != NULL);
    CHECK(count_files(idx) < 300);
    /* Whatever was committed is kept, and a new scan completes. */
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(count_files(idx), 300);
    CHECK_EQ_INT(st.removed, 0);
    CHECK_EQ_INT(st.added + st.unchanged, 300);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

typedef struct busy_ctx {
    mi_index *idx;
    pthread_mutex_t m;
    pthread_cond_t cv;
    int in_scan, release;
    mi_status result;
} busy_ctx;

static int block_progress(const mi_scan_stats *st, void *payload)
{
    busy_ctx *b = payload;
    (void)st;
    pthread_mutex_lock(&b->m);
    b->in_scan = 1;
    pthread_cond_broadcast(&b->cv);
    while (!b->release)
        pthread_cond_wait(&b->cv, &b->m);
    pthread_mutex_unlock(&b->m);
    return 0;
}

static void *busy_thread(void *arg)
{
    busy_ctx *b = arg;
    mi_scan_options opts = MI_SCAN_OPTIONS_INIT;
    opts.progress = block_progress;
    opts.payload = b;
    b->result = mi_scan(b->idx, &opts, NULL);
    return NULL;
}

/* One scan at a time; lookups and cursors go on during a scan. */
static void test_concurrent(void)
{
    char *dir = fx_tempdir();
    busy_ctx b = { 0 };
    pthread_t t;
    mi_cursor *c = NULL;
    int n = 0, i;
    char name[64];

    for (i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "f%d.jpg", i);
        write_jpeg(dir, name, 500 + (unsigned)i);
    }
    b.idx = ta_open(dir, 2);
    CHECK_OK(scan(b.idx, NULL));
    for (i = 5; i < 8; i++) {
        snprintf(name, sizeof(name), "f%d.jpg", i);
        write_jpeg(dir, name, 500 + (unsigned)i);
    }
    pthread_mutex_init(&b.m, NULL);
    pthread_cond_init(&b.cv, NULL);
    pthread_create(&t, NULL, busy_thread, &b);
    pthread_mutex_lock(&b.m);
    while (!b.in_scan)
        pthread_cond_wait(&b.cv, &b.m);
    pthread_mutex_unlock(&b.m);

    /* The final progress call holds the scan open: it is "running". */
    CHECK(mi_scan(b.idx, NULL, NULL) == MI_EBUSY);
    CHECK(strstr(mi_index_errmsg(b.idx), "already") != NULL);
    CHECK_OK(mi_cursor_new(&c, b.idx));
    while (mi_cursor_next(c) == MI_ROW)
        n++;
    mi_cursor_free(c);
    CHECK(n == 5 || n == 8);

    pthread_mutex_lock(&b.m);
    b.release = 1;
    pthread_cond_broadcast(&b.cv);
    pthread_mutex_unlock(&b.m);
    pthread_join(t, NULL);
    CHECK_OK(b.result);
    CHECK_EQ_INT(count_files(b.idx), 8);
    pthread_mutex_destroy(&b.m);
    pthread_cond_destroy(&b.cv);
    mi_index_close(b.idx);
    fx_rmtree(dir);
    free(dir);
}

/* Many files over many transactions and workers. */
static void test_many(void)
{
    char *dir = fx_tempdir();
    mi_scan_stats st;
    mi_index *idx;
    char name[64];
    int i;

    for (i = 0; i < 6000; i++) {
        char *p;
        unsigned char buf[16];
        snprintf(name, sizeof(name), "d%02d/f%05d.gif", i % 37, i);
        memcpy(buf, "GIF89a", 6);
        memcpy(buf + 6, &i, sizeof(i));
        memset(buf + 6 + sizeof(i), 0, sizeof(buf) - 6 - sizeof(i));
        p = fx_path(dir, name);
        if (i < 37) {
            char *d = fx_path(dir, name);
            *strrchr(d, '/') = '\0';
            fx_mkdirs(d);
            free(d);
        }
        fx_write_file(p, buf, sizeof(buf));
        free(p);
    }
    idx = ta_open(dir, 4);
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.added, 6000);
    CHECK_EQ_INT(count_files(idx), 6000);
    CHECK_EQ_INT(count_media(idx), 6000);
    CHECK_OK(scan(idx, &st));
    CHECK_EQ_INT(st.unchanged, 6000);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

/* The corpus tier: every real photo, broken ones included, scanned
 * through the public API; every file indexed, nothing failed. */
static void test_corpus_scan(void)
{
    const char *corpus = fx_corpus();
    char *dir, cmd[8192];
    mi_scan_stats st;
    mi_index *idx;
    mi_cursor *c = NULL;
    int n = 0, with_date = 0, with_gps = 0;
    FILE *f;
    int want = 0;

    if (!corpus) {
        SKIP("MI_TEST_CORPUS not set");
        return;
    }
    dir = fx_tempdir();
    snprintf(cmd, sizeof(cmd), "cp -R '%s/.' '%s/'", corpus, dir);
    CHECK(system(cmd) == 0);
    /* What find(1) says is media by name, for comparison. */
    snprintf(cmd, sizeof(cmd),
             "find '%s' -type f \\( -iname '*.jpg' -o -iname '*.jpeg' "
             "-o -iname '*.heic' -o -iname '*.heif' \\) | wc -l", dir);
    f = popen(cmd, "r");
    if (f) {
        if (fscanf(f, "%d", &want) != 1)
            want = -1;
        pclose(f);
    }
    idx = ta_open(dir, 0);
    CHECK_OK(scan(idx, &st));
    CHECK(want > 0);
    CHECK_EQ_INT(st.seen, want);
    CHECK_EQ_INT(st.added, want);
    CHECK_EQ_INT(st.failed, 0);
    CHECK_OK(mi_cursor_new(&c, idx));
    while (mi_cursor_next(c) == MI_ROW) {
        const mi_entry *e = mi_cursor_entry(c);
        n++;
        with_date += mi_entry_creation_source(e) != MI_DATE_CTIME;
        with_gps += mi_entry_gps(e, NULL, NULL);
    }
    mi_cursor_free(c);
    printf("# corpus: %d files, %d contents, %d with an EXIF date, %d with GPS\n",
           want, n, with_date, with_gps);
    CHECK(n > 0 && n <= want);
    CHECK(with_date > n / 2);
    CHECK(with_gps >= 9);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

int main(void)
{
    RUN(test_incremental);
    RUN(test_restart_no_rehash);
    RUN(test_merge_order);
    RUN(test_skips_state_and_non_media);
    RUN(test_symlinks);
    RUN(test_odd_names);
    RUN(test_empty_and_missing);
    RUN(test_unreadable);
    RUN(test_unreadable_dir_keeps_rows);
    RUN(test_problems);
    RUN(test_cancel);
    RUN(test_concurrent);
    RUN(test_many);
    RUN(test_corpus_scan);
    return mi_test_done();
}
