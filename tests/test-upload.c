/*
 * test-upload.c - resumable uploads (mi_upload_*) and mi_index_has through
 * the public API: pieces, offsets, locks, restarts, kill -9, deferred
 * length, hashes, refused content, expiry, the partial-bytes cap, hostile
 * ids and owners.
 */
#include <mediaindex.h>

#include "api-helpers.h"
#include "fixtures.h"
#include "mi-test.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <errno.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static uint64_t files_indexed(mi_index *idx)
{
    uint64_t files = 99;
    mi_index_count(idx, NULL, &files);
    return files;
}

static mi_index *open_with(const char *dir, uint64_t partial_max,
                           unsigned int expiry_s)
{
    mi_index_options opts = MI_INDEX_OPTIONS_INIT;
    char err[512] = "";
    mi_index *idx = NULL;
    mi_status s;

    opts.threads = 2;
    opts.upload_partial_max = partial_max;
    opts.upload_expiry_s = expiry_s;
    s = mi_index_open(&idx, dir, &opts, err, sizeof(err));
    if (s != MI_OK)
        printf("# open %s: %s: %s\n", dir, mi_strerror(s), err);
    return idx;
}

/* A JPEG of about `min` bytes or more (noise compresses badly). */
static unsigned char *make_jpeg(size_t *len, int side, unsigned seed)
{
    unsigned char *jpg = NULL;

    *len = 0;
    if (fx_jpeg_buffer(&jpg, len, side, side, seed, NULL) != 0)
        return NULL;
    return jpg;
}

/* Append data[from, to) to an open upload in pieces of `chunk`. */
static mi_status append_range(mi_upload *up, const unsigned char *data,
                              size_t from, size_t to, size_t chunk)
{
    mi_status s = MI_OK;
    size_t off;

    for (off = from; s == MI_OK && off < to; off += chunk)
        s = mi_upload_append(up, off, data + off,
                             to - off < chunk ? to - off : chunk);
    return s;
}

static int same_file(const char *dir, const char *rel, const void *data,
                     size_t len)
{
    char *p = fx_path(dir, rel);
    unsigned char *back = NULL;
    size_t blen = 0;
    int same = fx_read_file(p, &back, &blen) == 0 && blen == len &&
               memcmp(back, data, len) == 0;

    free(back);
    free(p);
    return same;
}

static void today_dir(char *out, size_t len)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    snprintf(out, len, "uploads/%04d%02d%02d", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday);
}

/* ---------------------------------------------------------------------- */

static void test_pieces_and_finish(void)
{
    char *dir = fx_tempdir(), id[MI_UPLOAD_ID_LEN + 1], id2[MI_UPLOAD_ID_LEN + 1];
    char want[512], day[64], path[MI_MAX_PATH_LEN + 1], hex[MI_HASH_HEX_LEN + 1];
    mi_index *idx = ta_open(dir, 2);
    size_t len = 0;
    unsigned char *jpg = make_jpeg(&len, 96, 3);
    mi_upload *up = NULL;
    mi_upload_info info = MI_UPLOAD_INFO_INIT;
    uint8_t h[MI_HASH_SIZE];
    size_t i;

    CHECK(jpg != NULL && len > 300);
    today_dir(day, sizeof(day));
    CHECK_OK(mi_upload_create(id, idx, "holiday.jpg", len, "alice", NULL));
    CHECK_EQ_INT(strlen(id), MI_UPLOAD_ID_LEN);
    for (i = 0; i < MI_UPLOAD_ID_LEN; i++)
        CHECK(strchr("0123456789abcdef", id[i]) != NULL);
    CHECK_OK(mi_upload_stat(&info, idx, id, "alice"));
    CHECK_EQ_INT(info.offset, 0);
    CHECK(info.length == len);
    CHECK_EQ_STR(info.name, "holiday.jpg");
    CHECK_EQ_STR(info.owner, "alice");
    CHECK(!info.has_sha256);
    CHECK(info.expires > (int64_t)time(NULL) + 23 * 3600 &&
          info.expires <= (int64_t)time(NULL) + 24 * 3600);

    /* Pieces of uneven sizes, the first of one byte. */
    CHECK_OK(mi_upload_open(&up, idx, id, "alice"));
    CHECK_OK(mi_upload_append(up, 0, jpg, 1));
    CHECK_OK(append_range(up, jpg, 1, len / 3, 77));
    CHECK_EQ_INT(mi_upload_offset(up), len / 3);
    mi_upload_close(up);
    up = NULL;
    CHECK_OK(mi_upload_open(&up, idx, id, "alice"));
    CHECK_EQ_INT(mi_upload_offset(up), len / 3);
    CHECK_OK(append_range(up, jpg, len / 3, len, 1000));
    CHECK_OK(mi_upload_info_get(&info, up));
    CHECK(info.offset == len && info.length == len);
    /* Nothing past the length. */
    CHECK(mi_upload_append(up, len, jpg, 1) == MI_ETOOBIG);
    CHECK_OK(mi_upload_finish(up));
    CHECK_EQ_INT(mi_upload_created(up), 1);
    snprintf(want, sizeof(want), "%s/holiday.jpg", day);
    CHECK_EQ_STR(mi_upload_path(up), want);
    CHECK_EQ_STR(mi_upload_filename(up), "holiday.jpg");
    CHECK_OK(mi_hash_buffer(h, jpg, len));
    mi_hash_to_hex(hex, h);
    CHECK_EQ_STR(mi_upload_hash_hex(up), hex);
    /* Finished: the state is gone, the handle answers no more. */
    CHECK(mi_upload_finish(up) == MI_EINVAL);
    CHECK(mi_upload_append(up, len, jpg, 1) == MI_ENOTFOUND);
    mi_upload_close(up);
    up = NULL;
    CHECK(same_file(dir, want, jpg, len));
    CHECK_EQ_INT(fx_count_in(dir, ".mediaindex/uploads"), 0);
    CHECK_EQ_INT(fx_count_in(dir, ".mediaindex/tmp"), 0);
    CHECK(mi_upload_open(&up, idx, id, NULL) == MI_ENOTFOUND);
    CHECK(up == NULL);

    /* Indexed, and found by hash. */
    CHECK_OK(mi_index_has(path, sizeof(path), idx, h, 0));
    CHECK_EQ_STR(path, want);
    CHECK_OK(mi_index_has(path, sizeof(path), idx, h, MI_HAS_ON_DISK));
    CHECK_EQ_STR(path, want);
    CHECK_EQ_INT(files_indexed(idx), 1);

    /* The same bytes again, with the client's hash: already present. */
    {
        mi_upload_options o = MI_UPLOAD_OPTIONS_INIT;
        o.sha256 = h;
        CHECK_OK(mi_upload_create(id2, idx, "copy.jpg", len, NULL, &o));
        CHECK(strcmp(id, id2) != 0);
        CHECK_OK(mi_upload_stat(&info, idx, id2, NULL));
        CHECK(info.has_sha256 && memcmp(info.sha256, h, MI_HASH_SIZE) == 0);
        CHECK_OK(mi_upload_open(&up, idx, id2, ""));
        CHECK_OK(append_range(up, jpg, 0, len, len));
        CHECK_OK(mi_upload_finish(up));
        CHECK_EQ_INT(mi_upload_created(up), 0);
        CHECK_EQ_STR(mi_upload_path(up), want);
        mi_upload_close(up);
    }
    CHECK_EQ_INT(fx_count_in(dir, "uploads"), 1);
    CHECK_EQ_INT(fx_count_in(dir, ".mediaindex/uploads"), 0);
    free(jpg);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

static void test_wrong_offset(void)
{
    char *dir = fx_tempdir(), id[MI_UPLOAD_ID_LEN + 1];
    mi_index *idx = ta_open(dir, 2);
    size_t len = 0;
    unsigned char *jpg = make_jpeg(&len, 64, 4);
    mi_upload *up = NULL;
    mi_upload_info info = MI_UPLOAD_INFO_INIT;

    CHECK_OK(mi_upload_create(id, idx, "a.jpg", len, NULL, NULL));
    CHECK_OK(mi_upload_open(&up, idx, id, NULL));
    CHECK_OK(mi_upload_append(up, 0, jpg, 100));
    CHECK(mi_upload_append(up, 0, jpg, 100) == MI_EEXISTS);
    CHECK(strstr(mi_index_errmsg(idx), "offset 100") != NULL);
    CHECK(mi_upload_append(up, 101, jpg + 101, 10) == MI_EEXISTS);
    CHECK(mi_upload_append(up, 99, jpg + 99, 10) == MI_EEXISTS);
    CHECK(mi_upload_write(up, 200, jpg + 200, 10) == MI_EEXISTS);
    CHECK_EQ_INT(mi_upload_offset(up), 100);
    CHECK_OK(mi_upload_stat(&info, idx, id, NULL));
    CHECK_EQ_INT(info.offset, 100);
    /* Nothing changed: the rest completes a correct file. */
    CHECK_OK(append_range(up, jpg, 100, len, 4096));
    CHECK_OK(mi_upload_finish(up));
    CHECK(same_file(dir, mi_upload_path(up), jpg, len));
    mi_upload_close(up);
    free(jpg);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

typedef struct racer {
    mi_index *idx;
    const char *id;
    const unsigned char *data;
    size_t len;
    int appended, busy;
    mi_status fail;
} racer;

/* Open, append the next piece at the offset found, close; until done. */
static void *racer_main(void *arg)
{
    racer *r = arg;

    for (;;) {
        mi_upload *up = NULL;
        mi_status s = mi_upload_open(&up, r->idx, r->id, NULL);
        uint64_t off;

        if (s == MI_EBUSY) {
            r->busy++;
            sched_yield();
            continue;
        }
        if (s != MI_OK) {
            r->fail = s;
            return NULL;
        }
        off = mi_upload_offset(up);
        if (off == r->len) {
            mi_upload_close(up);
            return NULL;
        }
        s = mi_upload_append(up, off, r->data + off,
                             r->len - off < 333 ? r->len - off : 333);
        mi_upload_close(up);
        if (s != MI_OK) {
            r->fail = s;
            return NULL;
        }
        r->appended++;
    }
}

static void test_concurrent_open(void)
{
    char *dir = fx_tempdir(), id[MI_UPLOAD_ID_LEN + 1];
    mi_index *idx = ta_open(dir, 2), *idx2 = ta_open(dir, 2);
    size_t len = 0;
    unsigned char *jpg = make_jpeg(&len, 128, 5);
    mi_upload *up = NULL, *up2 = (mi_upload *)1;
    mi_upload_info info = MI_UPLOAD_INFO_INIT;
    racer r[6];
    pthread_t t[6];
    int i, appended = 0;

    CHECK_OK(mi_upload_create(id, idx, "busy.jpg", len, NULL, NULL));
    CHECK_OK(mi_upload_open(&up, idx, id, NULL));
    CHECK_OK(mi_upload_append(up, 0, jpg, 10));
    /* A second opener, through the same or another handle: busy at once. */
    CHECK(mi_upload_open(&up2, idx, id, NULL) == MI_EBUSY);
    CHECK(up2 == NULL);
    CHECK(strstr(mi_index_errmsg(idx), "in use") != NULL);
    CHECK(mi_upload_open(&up2, idx2, id, NULL) == MI_EBUSY);
    CHECK(mi_upload_delete(idx2, id, NULL) == MI_EBUSY);
    /* ...but it can be described (a tus HEAD). */
    CHECK_OK(mi_upload_stat(&info, idx2, id, NULL));
    CHECK_EQ_INT(info.offset, 10);
    mi_upload_close(up);
    up = NULL;

    /* Threads fighting over it: pieces never interleave. */
    for (i = 0; i < 6; i++) {
        memset(&r[i], 0, sizeof(r[i]));
        r[i].idx = i % 2 ? idx2 : idx;
        r[i].id = id;
        r[i].data = jpg;
        r[i].len = len;
        pthread_create(&t[i], NULL, racer_main, &r[i]);
    }
    for (i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        CHECK_OK(r[i].fail);
        appended += r[i].appended;
    }
    CHECK_EQ_INT(appended, (len - 10 + 332) / 333);
    CHECK_OK(mi_upload_open(&up, idx2, id, NULL));
    CHECK_EQ_INT(mi_upload_offset(up), len);
    CHECK_OK(mi_upload_finish(up));
    CHECK(same_file(dir, mi_upload_path(up), jpg, len));
    mi_upload_close(up);
    free(jpg);
    mi_index_close(idx2);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

/* Whether files in `dir` take user extended attributes, where the library
 * marks unsynced bytes (tmpfs before Linux 6.6 does not). */
static bool user_xattrs(const char *dir)
{
    char probe[4096];
    bool yes;
    int fd;

    snprintf(probe, sizeof(probe), "%s/xattr-probe", dir);
    fd = open(probe, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    yes = fd >= 0 && fsetxattr(fd, "user.probe", "1", 1, 0) == 0;
    if (fd >= 0)
        close(fd);
    unlink(probe);
    return yes;
}

static void test_resume_after_restart(void)
{
    char *dir = fx_tempdir(), id[MI_UPLOAD_ID_LEN + 1];
    mi_index *idx = ta_open(dir, 2);
    size_t len = 0;
    unsigned char *jpg = make_jpeg(&len, 128, 6);
    mi_upload *up = NULL;
    mi_upload_info info = MI_UPLOAD_INFO_INIT;
    pid_t pid;
    int status = 0;

    CHECK_OK(mi_upload_create(id, idx, "restart.jpg", len, "bob", NULL));
    CHECK_OK(mi_upload_open(&up, idx, id, "bob"));
    CHECK_OK(append_range(up, jpg, 0, len / 4, 500));
    mi_upload_close(up);
    up = NULL;
    mi_index_close(idx);

    /* A restart: a new handle finds the upload where it was. */
    idx = ta_open(dir, 2);
    CHECK_OK(mi_upload_stat(&info, idx, id, "bob"));
    CHECK_EQ_INT(info.offset, len / 4);
    CHECK_EQ_STR(info.name, "restart.jpg");
    mi_index_close(idx);

    /* kill -9 while holding the upload, right after an append. */
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        mi_index *cidx = ta_open(dir, 1);
        mi_upload *cup = NULL;

        if (!cidx || mi_upload_open(&cup, cidx, id, "bob") != MI_OK ||
            append_range(cup, jpg, len / 4, len / 2, 1000) != MI_OK)
            _exit(3);
        /* Written but not synced: not part of the offset (the page
         * cache survives kill -9, but a power cut would not keep it). */
        if (mi_upload_write(cup, len / 2, jpg + len / 2, 10) != MI_OK)
            _exit(4);
        kill(getpid(), SIGKILL);
        _exit(5);
    }
    CHECK(pid > 0);
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    idx = ta_open(dir, 2);
    CHECK_OK(mi_upload_open(&up, idx, id, "bob"));   /* the lock went */
    CHECK_EQ_INT(mi_upload_offset(up), len / 2 + (user_xattrs(dir) ? 0 : 10));
    CHECK_OK(append_range(up, jpg, mi_upload_offset(up), len, 3000));
    CHECK_OK(mi_upload_finish(up));
    CHECK_EQ_INT(mi_upload_created(up), 1);
    CHECK(same_file(dir, mi_upload_path(up), jpg, len));
    {
        uint8_t h[MI_HASH_SIZE];
        char hex[MI_HASH_HEX_LEN + 1];
        mi_hash_buffer(h, jpg, len);
        mi_hash_to_hex(hex, h);
        CHECK_EQ_STR(mi_upload_hash_hex(up), hex);
    }
    mi_upload_close(up);
    CHECK_EQ_INT(fx_count_in(dir, ".mediaindex/uploads"), 0);
    free(jpg);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

static void test_write_sync_rollback(void)
{
    char *dir = fx_tempdir(), id[MI_UPLOAD_ID_LEN + 1];
    mi_index *idx = ta_open(dir, 2);
    size_t len = 0;
    unsigned char *jpg = make_jpeg(&len, 64, 7), *junk;
    mi_upload *up = NULL;

    junk = malloc(len);
    memset(junk, 0x5a, len);
    CHECK_OK(mi_upload_create(id, idx, "chunks.jpg", len, NULL, NULL));
    CHECK_OK(mi_upload_open(&up, idx, id, NULL));
    /* A chunk in pieces, synced. */
    CHECK_OK(mi_upload_write(up, 0, jpg, 50));
    CHECK_OK(mi_upload_write(up, 50, jpg + 50, 50));
    CHECK_OK(mi_upload_sync(up));
    /* A chunk whose checksum the server finds wrong: rolled back. */
    CHECK_OK(mi_upload_write(up, 100, junk, 70));
    CHECK_OK(mi_upload_write(up, 170, junk, 30));
    CHECK_EQ_INT(mi_upload_offset(up), 200);
    CHECK_OK(mi_upload_rollback(up));
    CHECK_EQ_INT(mi_upload_offset(up), 100);
    CHECK_OK(mi_upload_rollback(up));             /* nothing to drop */
    CHECK_EQ_INT(mi_upload_offset(up), 100);
    mi_upload_close(up);
    up = NULL;
    CHECK_OK(mi_upload_open(&up, idx, id, NULL));
    CHECK_EQ_INT(mi_upload_offset(up), 100);
    CHECK_OK(mi_upload_write(up, 100, jpg + 100, len - 100));
    CHECK_OK(mi_upload_sync(up));
    CHECK_OK(mi_upload_finish(up));
    CHECK(same_file(dir, mi_upload_path(up), jpg, len));
    mi_upload_close(up);
    free(junk);
    free(jpg);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

/* Bytes written and never synced (the process killed mid-chunk, as a
 * handle closed without a sync or a rollback leaves them) are not part of
 * the offset: a stat says the synced size, and the next open cuts them. */
static void test_unsynced_dropped(void)
{
    char *dir = fx_tempdir(), id[MI_UPLOAD_ID_LEN + 1], v[8];
    mi_index *idx = ta_open(dir, 2);
    size_t len = 0;
    unsigned char *jpg = make_jpeg(&len, 64, 8);
    mi_upload_info info = MI_UPLOAD_INFO_INIT;
    mi_upload *up = NULL;
    char full[4096];
    bool xattrs;

    xattrs = user_xattrs(dir);
    CHECK_OK(mi_upload_create(id, idx, "cut.jpg", len, NULL, NULL));
    CHECK_OK(mi_upload_open(&up, idx, id, NULL));
    CHECK_OK(mi_upload_append(up, 0, jpg, 100));
    CHECK_OK(mi_upload_write(up, 100, jpg + 100, 70));
    CHECK_OK(mi_upload_stat(&info, idx, id, NULL));
    if (xattrs)
        CHECK_EQ_INT(info.offset, 100);           /* during the write too */
    mi_upload_close(up);                          /* no sync, no rollback */
    up = NULL;
    CHECK_OK(mi_upload_stat(&info, idx, id, NULL));
    CHECK_EQ_INT(info.offset, xattrs ? 100 : 170);
    CHECK_OK(mi_upload_open(&up, idx, id, NULL));
    CHECK_EQ_INT(mi_upload_offset(up), xattrs ? 100 : 170);
    /* Synced chunks stay, however the handle ends. */
    CHECK_OK(mi_upload_write(up, mi_upload_offset(up), jpg + mi_upload_offset(up), 10));
    CHECK_OK(mi_upload_sync(up));
    mi_upload_close(up);
    up = NULL;
    CHECK_OK(mi_upload_open(&up, idx, id, NULL));
    CHECK_EQ_INT(mi_upload_offset(up), xattrs ? 110 : 180);
    CHECK_OK(mi_upload_append(up, mi_upload_offset(up), jpg + mi_upload_offset(up),
                              len - mi_upload_offset(up)));
    CHECK_OK(mi_upload_finish(up));
    CHECK(same_file(dir, mi_upload_path(up), jpg, len));
    /* The mark does not follow the bytes into the library. */
    snprintf(full, sizeof(full), "%s/%s", dir, mi_upload_path(up));
    CHECK(getxattr(full, "user.mediaindex.synced", v, sizeof(v)) < 0 && errno == ENODATA);
    if (!xattrs)
        printf("# no user extended attributes in %s: the size is the offset\n", dir);
    mi_upload_close(up);
    free(jpg);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

static void test_defer_length(void)
{
    char *dir = fx_tempdir(), id[MI_UPLOAD_ID_LEN + 1];
    mi_index *idx = ta_open(dir, 2);
    size_t len = 0;
    unsigned char *jpg = make_jpeg(&len, 64, 8);
    mi_upload *up = NULL;
    mi_upload_info info = MI_UPLOAD_INFO_INIT;

    CHECK_OK(mi_upload_create(id, idx, "later.jpg", MI_UPLOAD_LENGTH_DEFERRED,
                              NULL, NULL));
    CHECK_OK(mi_upload_open(&up, idx, id, NULL));
    CHECK_OK(mi_upload_info_get(&info, up));
    CHECK(info.length == MI_UPLOAD_LENGTH_DEFERRED);
    CHECK_OK(append_range(up, jpg, 0, len / 2, 100));
    CHECK(mi_upload_finish(up) == MI_EINVAL);     /* not complete */
    CHECK(strstr(mi_index_errmsg(idx), "not complete") != NULL);
    CHECK(mi_upload_set_length(up, len / 2 - 1) == MI_EINVAL);
    CHECK(mi_upload_set_length(up, MI_UPLOAD_LENGTH_DEFERRED) == MI_EINVAL);
    CHECK_OK(mi_upload_set_length(up, len));
    CHECK_OK(mi_upload_set_length(up, len));      /* the same again */
    CHECK(mi_upload_set_length(up, len + 1) == MI_EINVAL);
    mi_upload_close(up);
    up = NULL;
    /* The length is kept on disk. */
    mi_index_close(idx);
    idx = ta_open(dir, 2);
    CHECK_OK(mi_upload_stat(&info, idx, id, NULL));
    CHECK(info.length == len);
    CHECK_EQ_INT(info.offset, len / 2);
    CHECK_OK(mi_upload_open(&up, idx, id, NULL));
    CHECK(mi_upload_finish(up) == MI_EINVAL);     /* still not complete */
    CHECK(mi_upload_append(up, len / 2, jpg + len / 2, len) == MI_ETOOBIG);
    CHECK_OK(append_range(up, jpg, len / 2, len, 999));
    CHECK_OK(mi_upload_finish(up));
    CHECK(same_file(dir, mi_upload_path(up), jpg, len));
    mi_upload_close(up);
    free(jpg);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

/* Refused: nothing in uploads/, no state, nothing indexed. */
static void check_nothing_kept(const char *dir, mi_index *idx)
{
    CHECK_EQ_INT(fx_count_in(dir, "uploads"), 0);
    CHECK_EQ_INT(fx_count_in(dir, ".mediaindex/uploads"), 0);
    CHECK_EQ_INT(fx_count_in(dir, ".mediaindex/tmp"), 0);
    CHECK_EQ_INT(files_indexed(idx), 0);
}

static void test_zero_and_one_byte(void)
{
    char *dir = fx_tempdir(), id[MI_UPLOAD_ID_LEN + 1];
    mi_index *idx = ta_open(dir, 2);
    size_t len = 0, i;
    unsigned char *jpg = make_jpeg(&len, 32, 9);
    mi_upload *up = NULL;

    /* Zero bytes: refused like an empty PUT, at creation... */
    CHECK(mi_upload_create(id, idx, "empty.jpg", 0, NULL, NULL) == MI_EFORMAT);
    CHECK_EQ_STR(id, "");
    CHECK(strstr(mi_index_errmsg(idx), "empty") != NULL);
    /* ...or at the end, when a deferred length turns out to be 0. */
    CHECK_OK(mi_upload_create(id, idx, "empty.jpg", MI_UPLOAD_LENGTH_DEFERRED,
                              NULL, NULL));
    CHECK_OK(mi_upload_open(&up, idx, id, NULL));
    CHECK_OK(mi_upload_set_length(up, 0));
    CHECK(mi_upload_finish(up) == MI_EFORMAT);
    mi_upload_close(up);
    up = NULL;
    CHECK(mi_upload_open(&up, idx, id, NULL) == MI_ENOTFOUND);
    check_nothing_kept(dir, idx);

    /* A one-byte file is no image. */
    CHECK_OK(mi_upload_create(id, idx, "one.jpg", 1, NULL, NULL));
    CHECK_OK(mi_upload_open(&up, idx, id, NULL));
    CHECK_OK(mi_upload_append(up, 0, jpg, 1));
    CHECK(mi_upload_finish(up) == MI_EFORMAT);
    mi_upload_close(up);
    up = NULL;
    check_nothing_kept(dir, idx);

    /* A real image, one byte per piece. */
    CHECK_OK(mi_upload_create(id, idx, "bytes.jpg", len, NULL, NULL));
    CHECK_OK(mi_upload_open(&up, idx, id, NULL));
    for (i = 0; i < len; i++) {
        mi_status s = i % 16 == 0 ? mi_upload_append(up, i, jpg + i, 1)
                                  : mi_upload_write(up, i, jpg + i, 1);
        if (s != MI_OK) {
            CHECK_OK(s);
            break;
        }
    }
    CHECK_OK(mi_upload_finish(up));
    CHECK(same_file(dir, mi_upload_path(up), jpg, len));
    mi_upload_close(up);
    free(jpg);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

static void test_sha_mismatch(void)
{
    char *dir = fx_tempdir(), id[MI_UPLOAD_ID_LEN + 1];
    mi_index *idx = ta_open(dir, 2);
    size_t len = 0;
    unsigned char *jpg = make_jpeg(&len, 64, 10);
    mi_upload_options o = MI_UPLOAD_OPTIONS_INIT;
    mi_upload *up = NULL;
    uint8_t wrong[MI_HASH_SIZE], right[MI_HASH_SIZE];

    mi_hash_buffer(right, jpg, len);
    memcpy(wrong, right, MI_HASH_SIZE);
    wrong[7] ^= 1;
    o.sha256 = wrong;
    CHECK_OK(mi_upload_create(id, idx, "lie.jpg", len, NULL, &o));
    CHECK_OK(mi_upload_open(&up, idx, id, NULL));
    CHECK_OK(append_range(up, jpg, 0, len, 200));
    CHECK(mi_upload_finish(up) == MI_EINVAL);
    CHECK(strstr(mi_index_errmsg(idx), "checksum mismatch") != NULL);
    CHECK_EQ_STR(mi_upload_path(up), "");
    mi_upload_close(up);
    up = NULL;
    CHECK(mi_upload_open(&up, idx, id, NULL) == MI_ENOTFOUND);
    check_nothing_kept(dir, idx);
    CHECK(mi_index_has(NULL, 0, idx, right, 0) == MI_ENOTFOUND);

    /* The right hash: kept. */
    o.sha256 = right;
    CHECK_OK(mi_upload_create(id, idx, "truth.jpg", len, NULL, &o));
    CHECK_OK(mi_upload_open(&up, idx, id, NULL));
    CHECK_OK(append_range(up, jpg, 0, len, len));
    CHECK_OK(mi_upload_finish(up));
    mi_upload_close(up);
    CHECK_OK(mi_index_has(NULL, 0, idx, right, MI_HAS_ON_DISK));
    free(jpg);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

static void test_type_not_allowed(void)
{
    char *dir = fx_tempdir(), id[MI_UPLOAD_ID_LEN + 1];
    mi_index *idx = ta_open(dir, 2);
    size_t plen = 0;
    unsigned char *png = NULL;
    const char text[] = "#!/bin/sh\necho not an image\n";
    mi_upload_options o = MI_UPLOAD_OPTIONS_INIT;
    mi_upload *up = NULL;

    CHECK(fx_png_buffer(&png, &plen, 8, 8, 1) == 0);
    /* By name, at creation: nothing is made. */
    CHECK(mi_upload_create(id, idx, "run.sh", 10, NULL, NULL) == MI_EFORMAT);
    CHECK(mi_upload_create(id, idx, "noext", 10, NULL, NULL) == MI_EFORMAT);
    CHECK(strstr(mi_index_errmsg(idx), "not allowed") != NULL);
    check_nothing_kept(dir, idx);

    /* By content, at the end. */
    CHECK_OK(mi_upload_create(id, idx, "script.jpg", sizeof(text), NULL, NULL));
    CHECK_OK(mi_upload_open(&up, idx, id, NULL));
    CHECK_OK(mi_upload_append(up, 0, text, sizeof(text)));
    CHECK(mi_upload_finish(up) == MI_EFORMAT);
    mi_upload_close(up);
    up = NULL;
    check_nothing_kept(dir, idx);
    CHECK_OK(mi_upload_create(id, idx, "fake.jpg", plen, NULL, NULL));
    CHECK_OK(mi_upload_open(&up, idx, id, NULL));
    CHECK_OK(mi_upload_append(up, 0, png, plen));
    CHECK(mi_upload_finish(up) == MI_EFORMAT);
    mi_upload_close(up);
    up = NULL;
    check_nothing_kept(dir, idx);

    /* The extension from the fallback name, as for mi_store_begin. */
    o.fallback_name = "IMG_0001.PNG";
    CHECK_OK(mi_upload_create(id, idx, "photo", plen, NULL, &o));
    CHECK_OK(mi_upload_open(&up, idx, id, NULL));
    CHECK_OK(mi_upload_append(up, 0, png, plen));
    CHECK_OK(mi_upload_finish(up));
    CHECK_EQ_STR(mi_upload_filename(up), "photo.PNG");
    mi_upload_close(up);
    free(png);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

/* Set the last activity of an upload `age` seconds back. */
static void age_upload(const char *dir, const char *id, int age)
{
    char rel[128], *p;
    struct timespec ts[2];

    snprintf(rel, sizeof(rel), ".mediaindex/uploads/%s.part", id);
    p = fx_path(dir, rel);
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= age;
    ts[1] = ts[0];
    CHECK(utimensat(AT_FDCWD, p, ts, 0) == 0);
    free(p);
}

static void test_expiry_sweep(void)
{
    char *dir = fx_tempdir(), a[MI_UPLOAD_ID_LEN + 1], b[MI_UPLOAD_ID_LEN + 1];
    char c[MI_UPLOAD_ID_LEN + 1];
    mi_index *idx = open_with(dir, 0, 100);
    mi_upload *up = NULL;
    mi_upload_info info = MI_UPLOAD_INFO_INIT;
    uint64_t removed = 99;
    int64_t now = (int64_t)time(NULL);
    size_t len = 0;
    unsigned char *jpg = make_jpeg(&len, 32, 11);

    CHECK_OK(mi_upload_create(a, idx, "a.jpg", len, NULL, NULL));
    CHECK_OK(mi_upload_create(b, idx, "b.jpg", len, NULL, NULL));
    CHECK_OK(mi_upload_create(c, idx, "c.jpg", len, NULL, NULL));
    CHECK_OK(mi_upload_stat(&info, idx, a, NULL));
    CHECK(info.expires >= now + 99 && info.expires <= now + 102);
    CHECK_OK(mi_upload_sweep(idx, 0, &removed));
    CHECK_EQ_INT(removed, 0);

    /* Activity moves the expiry on. */
    age_upload(dir, b, 50);
    CHECK_OK(mi_upload_stat(&info, idx, b, NULL));
    CHECK(info.expires <= now + 52);
    CHECK_OK(mi_upload_open(&up, idx, b, NULL));
    CHECK_OK(mi_upload_append(up, 0, jpg, 10));
    CHECK_OK(mi_upload_info_get(&info, up));
    CHECK(info.expires >= now + 100);

    /* Later: all expired, but the open one is left alone. */
    CHECK_OK(mi_upload_sweep(idx, now + 1000, &removed));
    CHECK_EQ_INT(removed, 2);
    mi_upload_close(up);
    up = NULL;
    CHECK(mi_upload_stat(&info, idx, a, NULL) == MI_ENOTFOUND);
    CHECK(mi_upload_stat(&info, idx, c, NULL) == MI_ENOTFOUND);
    CHECK_OK(mi_upload_stat(&info, idx, b, NULL));

    /* Expired but not swept yet: gone when opened. */
    age_upload(dir, b, 200);
    CHECK(mi_upload_stat(&info, idx, b, NULL) == MI_ENOTFOUND);
    CHECK(mi_upload_open(&up, idx, b, NULL) == MI_ENOTFOUND);
    CHECK(strstr(mi_index_errmsg(idx), "expired") != NULL);
    CHECK_EQ_INT(fx_count_in(dir, ".mediaindex/uploads"), 0);

    /* What a crash in the middle of a creation leaves: swept once old. */
    {
        char *p = fx_path(dir, ".mediaindex/uploads/"
                               "0123456789abcdef0123456789abcdef.part");
        char *q = fx_path(dir, ".mediaindex/uploads/"
                               "fedcba9876543210fedcba9876543210.info.tmp");
        char *keep = fx_path(dir, ".mediaindex/uploads/README");
        CHECK(fx_write_file(p, "xx", 2) == 0);
        CHECK(fx_write_file(q, "yy", 2) == 0);
        CHECK(fx_write_file(keep, "zz", 2) == 0);
        CHECK_OK(mi_upload_sweep(idx, 0, &removed));
        CHECK_EQ_INT(fx_count_in(dir, ".mediaindex/uploads"), 3);
        CHECK_OK(mi_upload_sweep(idx, now + 7200, &removed));
        CHECK_EQ_INT(removed, 0);
        CHECK_EQ_INT(fx_count_in(dir, ".mediaindex/uploads"), 1);
        free(p);
        free(q);
        free(keep);
    }
    free(jpg);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

static void test_sweep_finishes_and_recounts(void)
{
    char *dir = fx_tempdir(), a[MI_UPLOAD_ID_LEN + 1], b[MI_UPLOAD_ID_LEN + 1];
    mi_index *idx = open_with(dir, 100000, 0), *idx2 = open_with(dir, 100000, 0);
    size_t len = 0;
    unsigned char *jpg = make_jpeg(&len, 64, 14);
    mi_upload *up = NULL;
    uint64_t removed = 0;
    uint8_t h[MI_HASH_SIZE];
    char path[MI_MAX_PATH_LEN + 1];

    /* Complete, but the program stopped before finishing it. */
    CHECK_OK(mi_upload_create(a, idx, "done.jpg", len, NULL, NULL));
    CHECK_OK(mi_upload_open(&up, idx, a, NULL));
    CHECK_OK(mi_upload_append(up, 0, jpg, len));
    mi_upload_close(up);
    up = NULL;
    mi_hash_buffer(h, jpg, len);
    CHECK(mi_index_has(NULL, 0, idx, h, 0) == MI_ENOTFOUND);

    /* Another handle on the folder reserves 60000 bytes that this one
     * does not know of until it sweeps. */
    CHECK_OK(mi_upload_create(b, idx2, "other.jpg", 60000, NULL, NULL));
    CHECK_OK(mi_upload_sweep(idx, 0, &removed));
    CHECK_EQ_INT(removed, 1);
    CHECK_OK(mi_index_has(path, sizeof(path), idx, h, MI_HAS_ON_DISK));
    CHECK(same_file(dir, path, jpg, len));
    CHECK(mi_upload_stat(NULL, idx, a, NULL) == MI_EINVAL);
    {
        mi_upload_info info = MI_UPLOAD_INFO_INIT;
        CHECK(mi_upload_stat(&info, idx, a, NULL) == MI_ENOTFOUND);
        CHECK_OK(mi_upload_stat(&info, idx, b, NULL));
    }
    CHECK(mi_upload_create(a, idx, "c.jpg", 50000, NULL, NULL) == MI_ENOSPACE);
    CHECK_OK(mi_upload_create(a, idx, "c.jpg", 40000, NULL, NULL));
    free(jpg);
    mi_index_close(idx2);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

static void test_partial_cap(void)
{
    char *dir = fx_tempdir(), a[MI_UPLOAD_ID_LEN + 1], b[MI_UPLOAD_ID_LEN + 1];
    char c[MI_UPLOAD_ID_LEN + 1];
    mi_index *idx = open_with(dir, 10000, 0);
    mi_upload_options o = MI_UPLOAD_OPTIONS_INIT;
    mi_upload *up = NULL;
    unsigned char buf[6000];

    memset(buf, 0xff, sizeof(buf));
    CHECK_OK(mi_upload_create(a, idx, "a.jpg", 6000, NULL, NULL));
    /* Known lengths are reserved whole when created. */
    CHECK(mi_upload_create(c, idx, "c.jpg", 5000, NULL, NULL) == MI_ENOSPACE);
    CHECK(strstr(mi_index_errmsg(idx), "6000 of the 10000") != NULL);
    CHECK(mi_upload_create(c, idx, "c.jpg", 20000, NULL, NULL) == MI_ETOOBIG);
    o.max_bytes = 100;
    CHECK(mi_upload_create(c, idx, "c.jpg", 101, NULL, &o) == MI_ETOOBIG);

    /* A deferred length counts what arrives. */
    CHECK_OK(mi_upload_create(b, idx, "b.jpg", MI_UPLOAD_LENGTH_DEFERRED, NULL,
                              NULL));
    CHECK_OK(mi_upload_open(&up, idx, b, NULL));
    CHECK_OK(mi_upload_append(up, 0, buf, 3000));
    CHECK(mi_upload_append(up, 3000, buf, 2000) == MI_ENOSPACE);
    CHECK_EQ_INT(mi_upload_offset(up), 3000);
    CHECK(mi_upload_set_length(up, 5000) == MI_ENOSPACE);
    CHECK_OK(mi_upload_delete(idx, a, NULL));
    CHECK_OK(mi_upload_append(up, 3000, buf, 2000));
    mi_upload_close(up);
    up = NULL;

    /* Counted again from the disk by a new handle. */
    mi_index_close(idx);
    idx = open_with(dir, 10000, 0);
    CHECK(mi_upload_create(c, idx, "c.jpg", 5001, NULL, NULL) == MI_ENOSPACE);
    CHECK_OK(mi_upload_create(c, idx, "c.jpg", 5000, NULL, NULL));
    CHECK_OK(mi_upload_delete(idx, c, NULL));

    /* max_bytes caps a deferred length as it grows. */
    o.max_bytes = 100;
    CHECK_OK(mi_upload_create(c, idx, "c.jpg", MI_UPLOAD_LENGTH_DEFERRED, NULL,
                              &o));
    CHECK_OK(mi_upload_open(&up, idx, c, NULL));
    CHECK_OK(mi_upload_append(up, 0, buf, 100));
    CHECK(mi_upload_append(up, 100, buf, 1) == MI_ETOOBIG);
    CHECK(mi_upload_set_length(up, 101) == MI_ETOOBIG);
    CHECK_OK(mi_upload_set_length(up, 100));
    mi_upload_close(up);
    up = NULL;

    /* The count of unfinished uploads is capped too. */
    {
        int i;
        mi_status s = MI_OK;
        for (i = 0; i < 20000 && s == MI_OK; i++)
            s = mi_upload_create(a, idx, "n.jpg", MI_UPLOAD_LENGTH_DEFERRED,
                                 NULL, NULL);
        CHECK(s == MI_ENOSPACE);
        CHECK_EQ_INT(i - 1 + 2, MI_UPLOAD_MAX_COUNT);
    }
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

static void test_hostile(void)
{
    static const char *const ids[] = {
        "", "../x", "../../../../../../etc/passwd", "0123456789abcdef",
        "0123456789abcdef0123456789abcde",     /* 31 */
        "0123456789abcdef0123456789abcdef0",   /* 33 */
        "0123456789ABCDEF0123456789ABCDEF",    /* upper case */
        "0123456789abcdef0123456789abcdeg",
        "0123456789abcdef/123456789abcdef",
        "../ploads/0123456789abcdef012345678",
        "0123456789abcdef0123456789abcdef",    /* well formed, unknown */
    };
    char *dir = fx_tempdir(), id[MI_UPLOAD_ID_LEN + 1], owner[400], *p;
    mi_index *idx = ta_open(dir, 2);
    mi_upload *up = NULL;
    mi_upload_info info = MI_UPLOAD_INFO_INIT;
    size_t i;

    for (i = 0; i < MI_ARRAY_LEN_T(ids); i++) {
        CHECK(mi_upload_open(&up, idx, ids[i], NULL) == MI_ENOTFOUND);
        CHECK(up == NULL);
        CHECK(mi_upload_stat(&info, idx, ids[i], NULL) == MI_ENOTFOUND);
        CHECK(mi_upload_delete(idx, ids[i], NULL) == MI_ENOTFOUND);
    }
    CHECK(mi_upload_open(&up, idx, NULL, NULL) == MI_ENOTFOUND);
    CHECK(mi_upload_open(NULL, idx, ids[0], NULL) == MI_EINVAL);
    CHECK(mi_upload_create(NULL, idx, "a.jpg", 1, NULL, NULL) == MI_EINVAL);
    CHECK(mi_upload_create(id, NULL, "a.jpg", 1, NULL, NULL) == MI_EINVAL);
    CHECK(mi_upload_create(id, idx, NULL, 1, NULL, NULL) == MI_EINVAL);
    info.version = 0;
    CHECK(mi_upload_stat(&info, idx, ids[10], NULL) == MI_EINVAL);
    info.version = MI_UPLOAD_INFO_VERSION;

    /* Owners: bounded, no control characters; others are refused. */
    memset(owner, 'o', sizeof(owner) - 1);
    owner[sizeof(owner) - 1] = '\0';
    CHECK(mi_upload_create(id, idx, "a.jpg", 1, owner, NULL) == MI_EINVAL);
    owner[MI_UPLOAD_OWNER_MAX] = '\0';
    CHECK_OK(mi_upload_create(id, idx, "a.jpg", 1, owner, NULL));
    CHECK(mi_upload_create(id, idx, "a.jpg", 1, "eve\nlength 9", NULL) ==
          MI_EINVAL);
    CHECK_OK(mi_upload_create(id, idx, "../../evil\n.jpg", 10, "alice", NULL));
    CHECK_OK(mi_upload_stat(&info, idx, id, "alice"));
    CHECK_EQ_STR(info.name, "_.._evil_.jpg");
    CHECK(mi_upload_stat(&info, idx, id, "bob") == MI_EACCES);
    CHECK(mi_upload_stat(&info, idx, id, "") == MI_EACCES);
    CHECK(mi_upload_open(&up, idx, id, "bob") == MI_EACCES);
    CHECK(mi_upload_delete(idx, id, "bob") == MI_EACCES);
    CHECK_OK(mi_upload_open(&up, idx, id, NULL));   /* NULL: any owner */
    mi_upload_close(up);
    up = NULL;

    /* Metadata tampered with on disk: refused, never trusted. */
    {
        char rel[128], big[8000];
        snprintf(rel, sizeof(rel), ".mediaindex/uploads/%s.info", id);
        p = fx_path(dir, rel);
        memset(big, 'x', sizeof(big));
        CHECK(fx_write_file(p, big, sizeof(big)) == 0);
        CHECK(mi_upload_open(&up, idx, id, NULL) == MI_EFORMAT);
#define TAMPER(text) fx_write_file(p, text, strlen(text))
        CHECK(TAMPER("mediaindex-upload 1\nlength -1\nname a.jpg\n") == 0);
        CHECK(mi_upload_open(&up, idx, id, NULL) == MI_EFORMAT);
        CHECK(TAMPER("mediaindex-upload 1\nlength 5\nname ../../x.jpg\n") == 0);
        CHECK(mi_upload_open(&up, idx, id, NULL) == MI_EFORMAT);
        CHECK(TAMPER("mediaindex-upload 1\nlength 5\nname x.jpg") == 0);
        CHECK(mi_upload_open(&up, idx, id, NULL) == MI_EFORMAT);
        CHECK(TAMPER("mediaindex-upload 2\nlength 5\nname x.jpg\n") == 0);
        CHECK(mi_upload_open(&up, idx, id, NULL) == MI_EFORMAT);
        CHECK(TAMPER("mediaindex-upload 1\nlength 5\nname x.jpg\n"
                     "future 1\n") == 0);
        CHECK(mi_upload_open(&up, idx, id, NULL) == MI_OK);
        if (up) {
            CHECK_OK(mi_upload_info_get(&info, up));
            CHECK_EQ_INT(info.length, 5);
            CHECK_EQ_STR(info.name, "x.jpg");
            CHECK_EQ_STR(info.owner, "");
            mi_upload_close(up);
            up = NULL;
        }
#undef TAMPER
        free(p);
    }
    CHECK_OK(mi_upload_delete(idx, id, NULL));
    CHECK(mi_upload_delete(idx, id, NULL) == MI_ENOTFOUND);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_index_has(void)
{
    char *dir = fx_tempdir(), path[MI_MAX_PATH_LEN + 1], small[8], *p;
    mi_index *idx = ta_open(dir, 2);
    size_t len = 0;
    unsigned char *jpg = make_jpeg(&len, 32, 12);
    mi_store *st = NULL;
    uint8_t h[MI_HASH_SIZE], other[MI_HASH_SIZE];
    double t0, t;
    int i, found = 0;

    CHECK_OK(mi_store_begin(&st, idx, "known.jpg", NULL, 0));
    CHECK_OK(mi_store_write(st, jpg, len));
    CHECK_OK(mi_store_commit(st));
    mi_hash_buffer(h, jpg, len);
    memset(other, 0x42, sizeof(other));

    CHECK_OK(mi_index_has(path, sizeof(path), idx, h, 0));
    CHECK_EQ_STR(path, mi_store_path(st));
    CHECK_OK(mi_index_has(NULL, 0, idx, h, 0));
    CHECK(mi_index_has(path, sizeof(path), idx, other, 0) == MI_ENOTFOUND);
    CHECK_EQ_STR(path, "");
    CHECK(mi_index_has(small, sizeof(small), idx, h, 0) == MI_ETOOBIG);
    CHECK_EQ_STR(small, "");
    CHECK(mi_index_has(path, sizeof(path), NULL, h, 0) == MI_EINVAL);
    CHECK(mi_index_has(path, sizeof(path), idx, NULL, 0) == MI_EINVAL);
    CHECK(mi_index_has(path, sizeof(path), idx, h, 0x80) == MI_EINVAL);

    /* 50,000 questions, one at a time. */
    t0 = now_s();
    for (i = 0; i < 50000; i++) {
        other[0] = (uint8_t)i;
        other[1] = (uint8_t)(i >> 8);
        if (mi_index_has(path, sizeof(path), idx, i % 100 ? other : h,
                         MI_HAS_ON_DISK) == MI_OK)
            found++;
    }
    t = now_s() - t0;
    printf("# 50000 mi_index_has: %.3f s (%.2f us each)\n", t, t / 50000 * 1e6);
    CHECK_EQ_INT(found, 500);
    CHECK(t < 20.0);

    /* Deleted from disk, not yet rescanned: the catalog still has it,
     * the disk does not. */
    p = fx_path(dir, mi_store_path(st));
    CHECK(unlink(p) == 0);
    free(p);
    CHECK_OK(mi_index_has(path, sizeof(path), idx, h, 0));
    CHECK(mi_index_has(path, sizeof(path), idx, h, MI_HAS_ON_DISK) ==
          MI_ENOTFOUND);
    mi_store_free(st);
    free(jpg);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

/* Larger than the hashing thread's start: hashed while appended by one
 * handle (on a thread), by handles in turn (each leaving the hash state
 * to the next), and read again after a rollback. */
static void test_large(void)
{
    char *dir = fx_tempdir(), id[MI_UPLOAD_ID_LEN + 1];
    char hex[MI_HASH_HEX_LEN + 1];
    mi_index *idx = ta_open(dir, 2);
    size_t len = 9u * 1024 * 1024 + 4321, i, off;
    unsigned char *data = malloc(len);
    unsigned int seed = 13;
    uint8_t h[MI_HASH_SIZE];
    int pass;

    for (i = 0; i < len; i++)
        data[i] = (unsigned char)rand_r(&seed);
    memcpy(data, "\xff\xd8\xff\xe0", 4);
    for (pass = 0; pass < 3; pass++) {
        mi_upload *up = NULL;

        data[100] = (unsigned char)pass;
        mi_hash_buffer(h, data, len);
        mi_hash_to_hex(hex, h);
        CHECK_OK(mi_upload_create(id, idx, "big.jpg", len, NULL, NULL));
        for (off = 0; off < len;) {
            size_t n = len - off < 700000 ? len - off : 700000;
            if (!up)
                CHECK_OK(mi_upload_open(&up, idx, id, NULL));
            CHECK_OK(mi_upload_append(up, off, data + off, n));
            off += n;
            if (pass == 2 && off > 6u * 1024 * 1024 && off < 7u * 1024 * 1024) {
                CHECK_OK(mi_upload_write(up, off, data, 1024 * 1024));
                CHECK_OK(mi_upload_rollback(up));
                CHECK_EQ_INT(mi_upload_offset(up), off);
            }
            if (pass == 1 && off < len) {
                mi_upload_close(up);   /* a new request for each chunk */
                up = NULL;
            }
        }
        CHECK_OK(mi_upload_finish(up));
        CHECK_EQ_STR(mi_upload_hash_hex(up), hex);
        CHECK(same_file(dir, mi_upload_path(up), data, len));
        mi_upload_close(up);
    }
    free(data);
    mi_index_close(idx);
    fx_rmtree(dir);
    free(dir);
}

int main(void)
{
    RUN(test_pieces_and_finish);
    RUN(test_wrong_offset);
    RUN(test_concurrent_open);
    RUN(test_resume_after_restart);
    RUN(test_write_sync_rollback);
    RUN(test_unsynced_dropped);
    RUN(test_defer_length);
    RUN(test_zero_and_one_byte);
    RUN(test_sha_mismatch);
    RUN(test_type_not_allowed);
    RUN(test_expiry_sweep);
    RUN(test_sweep_finishes_and_recounts);
    RUN(test_partial_cap);
    RUN(test_hostile);
    RUN(test_index_has);
    RUN(test_large);
    return mi_test_done();
}
