/*
 * store.c - upload ingest: temp file, hash while writing, fsync, place, index.
 *
 * Bytes go to an unnamed file (O_TMPFILE) in DIR/.mediaindex/tmp, on the
 * same file system as the uploads, and through the hasher as they come.
 * Nothing an upload writes has a name until the end, so a crash, a cut-off
 * client or a refused type leaves nothing behind.  On commit the file is
 * fsynced, checked by its magic bytes, looked up by hash, and given a name
 * with linkat(), which never replaces an existing file: a collision simply
 * tries the next "_N" suffix.  Then the folder is fsynced, and the file is
 * indexed through the same catalog insert as a scan.
 *
 * File systems without O_TMPFILE get a named temp file "upload-*.tmp",
 * linked the same way; mi_store_cleanup() removes those a crash left.
 *
 * A resumable upload (upload.c) hands over a file already complete on
 * disk (mi_store_adopt): it is hashed by reading it again, and then goes
 * through the very same commit.
 *
 * Commits of the same content are serialised by a lock chosen by the hash,
 * so two uploads of the same bytes store one file; different contents
 * commit in parallel.
 */
#include "config.h"
#include "mi-private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TMP_DIR ".mediaindex/tmp"
#define UPLOADS_DIR "uploads"
#define MAX_SUFFIX 100000     /* name_1 ... name_99999, then give up */

/*
 * Large uploads hash on a second thread: the uploading thread copies each
 * piece into one of two buffers for it, then writes the piece to disk, so
 * hashing (~1.4 GB/s) overlaps receiving and writing instead of adding to
 * them.  Small uploads (most photos) never start the thread.
 */
#define HASH_PIPE_START MI_HASH_PIPE_START /* bytes before the thread starts */
#define HASH_PIPE_BUF (1u << 20)       /* each of its two buffers */

struct mi_hash_pipe {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cv;
    mi_hasher *hasher;
    unsigned char *buf[2];
    size_t len[2];                /* 0: free for the writer */
    int next_fill, next_hash;
    bool stop;
    mi_status status;
};

static void *pipe_main(void *arg)
{
    mi_hash_pipe *hp = arg;

    pthread_mutex_lock(&hp->lock);
    for (;;) {
        int i = hp->next_hash;
        size_t n;

        while (!hp->len[i] && !hp->stop)
            pthread_cond_wait(&hp->cv, &hp->lock);
        if (!hp->len[i])
            break;                /* stopped, nothing left */
        n = hp->len[i];
        pthread_mutex_unlock(&hp->lock);
        if (mi_hasher_update(hp->hasher, hp->buf[i], n) != MI_OK)
            hp->status = MI_ERROR;
        pthread_mutex_lock(&hp->lock);
        hp->len[i] = 0;
        hp->next_hash = !i;
        pthread_cond_broadcast(&hp->cv);
    }
    pthread_mutex_unlock(&hp->lock);
    return NULL;
}

mi_hash_pipe *mi_hash_pipe_start(mi_hasher *h)
{
    mi_hash_pipe *hp = calloc(1, sizeof(*hp));

    if (!hp)
        return NULL;
    hp->hasher = h;
    hp->buf[0] = malloc(HASH_PIPE_BUF);
    hp->buf[1] = malloc(HASH_PIPE_BUF);
    pthread_mutex_init(&hp->lock, NULL);
    pthread_cond_init(&hp->cv, NULL);
    if (!hp->buf[0] || !hp->buf[1] ||
        pthread_create(&hp->thread, NULL, pipe_main, hp) != 0) {
        pthread_mutex_destroy(&hp->lock);
        pthread_cond_destroy(&hp->cv);
        free(hp->buf[0]);
        free(hp->buf[1]);
        free(hp);
        return NULL;
    }
    return hp;
}

/* Hand a piece (at most HASH_PIPE_BUF bytes) to the hashing thread. */
static void pipe_feed(mi_hash_pipe *hp, const void *p, size_t n)
{
    int i;

    pthread_mutex_lock(&hp->lock);
    i = hp->next_fill;
    while (hp->len[i])
        pthread_cond_wait(&hp->cv, &hp->lock);
    pthread_mutex_unlock(&hp->lock);
    memcpy(hp->buf[i], p, n);     /* the buffer is ours while len is 0 */
    pthread_mutex_lock(&hp->lock);
    hp->len[i] = n;
    hp->next_fill = !i;
    pthread_cond_broadcast(&hp->cv);
    pthread_mutex_unlock(&hp->lock);
}

void mi_hash_pipe_feed(mi_hash_pipe *hp, const void *buf, size_t len)
{
    const unsigned char *p = buf;

    while (len > 0) {
        size_t n = len < HASH_PIPE_BUF ? len : HASH_PIPE_BUF;

        pipe_feed(hp, p, n);
        p += n;
        len -= n;
    }
}

/* Wait for every piece to be hashed, stop the thread; its status. */
mi_status mi_hash_pipe_finish(mi_hash_pipe *hp)
{
    mi_status s;

    if (!hp)
        return MI_OK;
    pthread_mutex_lock(&hp->lock);
    hp->stop = true;
    pthread_cond_broadcast(&hp->cv);
    pthread_mutex_unlock(&hp->lock);
    pthread_join(hp->thread, NULL);
    s = hp->status;
    pthread_mutex_destroy(&hp->lock);
    pthread_cond_destroy(&hp->cv);
    free(hp->buf[0]);
    free(hp->buf[1]);
    free(hp);
    return s;
}

struct mi_store {
    mi_index *idx;
    int fd;                   /* the temporary file */
    char tmp_name[64];        /* "" for an O_TMPFILE */
    /* Adopted (mi_store_adopt): the caller's file, at adopted_rel relative
     * to the storage folder, neither closed nor removed here; hashed from
     * byte `hashed` on at commit. */
    bool adopted;
    char adopted_rel[128];
    uint64_t hashed;
    bool has_expect;
    uint8_t expect[MI_HASH_SIZE];
    mi_hasher *hasher;
    mi_hash_pipe *pipe;              /* large uploads: hashing on a thread */
    uint64_t bytes, max_bytes;
    uint64_t behind;          /* written out up to here (mi_write_behind) */
    /* The thumbnail, when it was made while the file was being synced
     * (sync_upload): its state and status, for index_placed. */
    bool has_early;
    mi_thumb_state early_state;
    mi_phash early_phash;     /* its perceptual hash, from those pixels */
    mi_status early_ts;
    char early_why[160];
    unsigned char head[MI_SNIFF_LEN];
    mi_meta meta;            /* read at commit, indexed when placed */
    const mi_media_type *type;   /* by the name's extension */
    char name[MI_MAX_NAME + 1];  /* sanitised */
    mi_status failed;
    bool committed, created;
    uint8_t hash[MI_HASH_SIZE];
    char hex[MI_HASH_HEX_LEN + 1];
    char path[MI_MAX_PATH + 1];  /* relative to the storage folder */
    const char *filename;        /* into path */
    char errmsg[256];
};

/* ---------------------------------------------------------------------- */
/* File names                                                              */

/* Length of the valid UTF-8 character at s (n bytes left), or 0. */
static size_t utf8_char(const unsigned char *s, size_t n, uint32_t *cp)
{
    uint32_t c;
    size_t len, i;

    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    } else if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        c = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        c = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        c = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    /* Overlong forms, surrogates and values past Unicode. */
    if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
        (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
        return 0;
    *cp = c;
    return len;
}

/* Characters that must not reach a file name: separators, controls (C0,
 * DEL, C1), and the bidirectional controls that can disguise an extension
 * ("photo<U+202E>gpj.exe"). */
static bool unwanted(uint32_t c)
{
    return c == '/' || c == '\\' || c < 0x20 || (c >= 0x7f && c <= 0x9f) ||
           (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) ||
           c == 0x200e || c == 0x200f || c == 0xfeff;
}

/* Trim leading dots and spaces, and trailing dots and spaces, in place. */
static size_t trim(char *s, size_t n)
{
    size_t start = 0;

    while (start < n && (s[start] == '.' || s[start] == ' '))
        start++;
    while (n > start && (s[n - 1] == '.' || s[n - 1] == ' '))
        n--;
    memmove(s, s + start, n - start);
    n -= start;
    s[n] = '\0';
    return n;
}

/* Back up from `cut` to the start of a UTF-8 character. */
static size_t char_boundary(const char *s, size_t cut)
{
    while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
        cut--;
    return cut;
}

mi_status mi_filename_sanitize(char *out, size_t out_size, const char *in)
{
    /* Room for the worst case before capping: every byte replaced. */
    char buf[4 * MI_MAX_PATH];
    size_t n = 0, i = 0, len;

    if (!out || out_size < MI_MAX_NAME + 1)
        return MI_EINVAL;
    out[0] = '\0';
    if (!in)
        return MI_EINVAL;
    len = strnlen(in, MI_MAX_PATH * 2);

    while (i < len && n + 4 < sizeof(buf)) {
        uint32_t cp;
        size_t k = utf8_char((const unsigned char *)in + i, len - i, &cp);

        if (k == 0) {
            buf[n++] = '_';         /* an invalid byte */
            i++;
        } else if (unwanted(cp)) {
            buf[n++] = '_';
            i += k;
        } else {
            memcpy(buf + n, in + i, k);
            n += k;
            i += k;
        }
    }
    buf[n] = '\0';
    n = trim(buf, n);

    if (n > MI_MAX_NAME) {
        /* Keep the extension (if short) and cut the stem. */
        const char *dot = strrchr(buf, '.');
        size_t ext = dot ? n - (size_t)(dot - buf) : 0;
        size_t stem;

        if (ext > 16)
            ext = 0;
        stem = char_boundary(buf, MI_MAX_NAME - ext);
        memmove(buf + stem, buf + n - ext, ext);
        n = stem + ext;
        buf[n] = '\0';
        n = trim(buf, n);
    }
    if (n == 0) {
        memcpy(buf, "upload", 7);
        n = 6;
    }
    memcpy(out, buf, n + 1);
    return MI_OK;
}

/* The extension of a name, with its dot, or "". */
static const char *extension(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && dot != name ? dot : "";
}

/* The family of formats an upload may claim (see mi_media_type.upload),
 * or NULL when the type is not accepted for uploads.  A name and the
 * magic bytes must agree on the family. */
static const char *upload_family(const mi_media_type *t)
{
    return t ? t->upload : NULL;
}

/* ---------------------------------------------------------------------- */
/* Begin, write                                                            */

static mi_status store_fail(mi_store *st, mi_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static mi_status store_fail(mi_store *st, mi_status s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (vsnprintf(st->errmsg, sizeof(st->errmsg), fmt, ap) < 0)
        st->errmsg[0] = '\0';
    va_end(ap);
    if (st->failed == MI_OK)
        st->failed = s;
    mi_index_fail(st->idx, s, "%s", st->errmsg);
    return s;
}

static mi_status random_name(char *out, size_t len)
{
    unsigned char r[12];
    size_t i;

    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        return MI_EIO;
    mi_bufprintf(out, len, "upload-");
    for (i = 0; i < sizeof(r); i++)
        mi_bufprintf(out + 7 + 2 * i, len - 7 - 2 * i, "%02x", r[i]);
    strncat(out, ".tmp", len - strlen(out) - 1);
    return MI_OK;
}

static mi_status open_temp(mi_store *st)
{
    int root = mi_index_root_fd(st->idx);
    int tries;

    if (mkdirat(root, TMP_DIR, 0700) != 0 && errno != EEXIST)
        return store_fail(st, mi_status_from_errno(errno),
                          "cannot create %s: %s", TMP_DIR, strerror(errno));
    st->fd = openat(root, TMP_DIR, O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
    if (st->fd >= 0)
        return MI_OK;
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
        return store_fail(st, mi_status_from_errno(errno),
                          "cannot create a temporary file: %s", strerror(errno));

    /* No O_TMPFILE here: a named file, cleaned at the next open if a
     * crash leaves it. */
    for (tries = 0; tries < 16; tries++) {
        char rel[128];

        if (random_name(st->tmp_name, sizeof(st->tmp_name)) != MI_OK)
            break;
        mi_bufprintf(rel, sizeof(rel), TMP_DIR "/%s", st->tmp_name);
        st->fd = openat(root, rel, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC,
                        0644);
        if (st->fd >= 0)
            return MI_OK;
        if (errno != EEXIST)
            break;
    }
    st->tmp_name[0] = '\0';
    return store_fail(st, mi_status_from_io_errno(errno),
                      "cannot create a temporary file: %s", strerror(errno));
}

/* The sanitised name an upload is stored under, and its type by that
 * name; NULL when it is not an accepted type. */
static const mi_media_type *resolve_name(char out[MI_MAX_NAME + 1],
                                         const char *name,
                                         const char *fallback_name)
{
    const mi_media_type *type;
    char fallback[MI_MAX_NAME + 1];

    mi_filename_sanitize(out, MI_MAX_NAME + 1, name);
    type = mi_media_from_name(out);
    if (!type && fallback_name && *fallback_name && !*extension(out)) {
        /* "photo" uploaded from "IMG_0001.HEIC": keep the URL's name and
         * take the extension the client's file had. */
        char joined[2 * (MI_MAX_NAME + 1)];

        mi_filename_sanitize(fallback, sizeof(fallback), fallback_name);
        mi_bufprintf(joined, sizeof(joined), "%s%s", out, extension(fallback));
        mi_filename_sanitize(out, MI_MAX_NAME + 1, joined);
        type = mi_media_from_name(out);
    }
    return upload_family(type) ? type : NULL;
}

mi_status mi_store_check_name(char out[MI_MAX_NAME + 1], mi_index *idx,
                              const char *name, const char *fallback_name)
{
    if (!resolve_name(out, name, fallback_name))
        return mi_index_fail(idx, MI_EFORMAT,
                             "file type not allowed: \"%s\" is not a "
                             "supported image or video name", out);
    return MI_OK;
}

mi_status mi_store_begin(mi_store **out, mi_index *idx, const char *name,
                         const char *fallback_name, uint64_t max_bytes)
{
    mi_store *st;
    mi_status s;

    if (!out)
        return MI_EINVAL;
    *out = NULL;
    if (!idx || !name)
        return MI_EINVAL;
    st = calloc(1, sizeof(*st));
    if (!st)
        return MI_ENOMEM;
    st->idx = idx;
    st->fd = -1;
    st->max_bytes = max_bytes;

    st->type = resolve_name(st->name, name, fallback_name);
    if (!st->type) {
        s = store_fail(st, MI_EFORMAT,
                       "file type not allowed: \"%s\" is not a supported "
                       "image or video name", st->name);
        goto fail;
    }
    s = mi_hasher_new(&st->hasher);
    if (s != MI_OK)
        goto fail;
    s = open_temp(st);
    if (s != MI_OK)
        goto fail;
    *out = st;
    return MI_OK;

fail:
    mi_store_free(st);
    return s;
}

mi_status mi_store_adopt(mi_store **out, mi_index *idx, const char *name,
                         int fd, const char *rel, mi_hasher *hasher,
                         uint64_t hashed, const uint8_t *expect)
{
    mi_store *st;
    struct stat sb;
    mi_status s;
    ssize_t n;

    *out = NULL;
    st = calloc(1, sizeof(*st));
    if (!st) {
        mi_hasher_free(hasher);
        return MI_ENOMEM;
    }
    st->idx = idx;
    st->fd = fd;
    st->adopted = true;
    st->hasher = hasher;
    st->hashed = hasher ? hashed : 0;
    mi_bufprintf(st->adopted_rel, sizeof(st->adopted_rel), "%s", rel);
    if (expect) {
        st->has_expect = true;
        memcpy(st->expect, expect, MI_HASH_SIZE);
    }
    st->type = resolve_name(st->name, name, NULL);
    if (!st->type) {
        s = store_fail(st, MI_EFORMAT,
                       "file type not allowed: \"%s\" is not a supported "
                       "image or video name", st->name);
        goto fail;
    }
    if (!st->hasher) {
        s = mi_hasher_new(&st->hasher);
        if (s != MI_OK)
            goto fail;
    }
    if (fstat(fd, &sb) != 0) {
        s = store_fail(st, mi_status_from_errno(errno),
                       "cannot stat the upload: %s", strerror(errno));
        goto fail;
    }
    st->bytes = (uint64_t)sb.st_size;
    if (st->hashed > st->bytes) {
        s = store_fail(st, MI_ERROR, "hashed past the end of the upload");
        goto fail;
    }
    do
        n = pread(fd, st->head, MI_SNIFF_LEN, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        s = store_fail(st, mi_status_from_io_errno(errno),
                       "cannot read the upload: %s", strerror(errno));
        goto fail;
    }
    *out = st;
    return MI_OK;

fail:
    mi_store_free(st);
    return s;
}

/* An adopted file: hash what the hasher has not seen, reading it again
 * in MI_HASH_CHUNK pieces. */
static mi_status hash_adopted(mi_store *st)
{
    unsigned char *buf = malloc(MI_HASH_CHUNK);
    uint64_t off = st->hashed;
    mi_status s = MI_OK;

    if (!buf)
        return MI_ENOMEM;
    while (s == MI_OK && off < st->bytes) {
        size_t want = st->bytes - off < MI_HASH_CHUNK ? (size_t)(st->bytes - off)
                                                       : MI_HASH_CHUNK;
        ssize_t n = pread(st->fd, buf, want, (off_t)off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            s = n < 0 ? mi_status_from_io_errno(errno) : MI_EIO;
            break;
        }
        s = mi_hasher_update(st->hasher, buf, (size_t)n);
        off += (uint64_t)n;
    }
    free(buf);
    st->hashed = off;
    return s;
}

mi_status mi_store_write(mi_store *st, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    mi_status s;

    if (!st || (!buf && len))
        return MI_EINVAL;
    if (st->failed != MI_OK)
        return st->failed;
    if (st->committed)
        return store_fail(st, MI_EINVAL, "upload already committed");
    if (st->adopted)
        return store_fail(st, MI_EINVAL, "an adopted upload is complete");
    if (st->max_bytes && (len > st->max_bytes || st->bytes > st->max_bytes - len))
        return store_fail(st, MI_ETOOBIG, "upload larger than %llu bytes",
                          (unsigned long long)st->max_bytes);
    if (st->bytes < MI_SNIFF_LEN) {
        size_t k = len < MI_SNIFF_LEN - st->bytes ? len : MI_SNIFF_LEN - st->bytes;
        memcpy(st->head + st->bytes, p, k);
    }
    if (!st->pipe && st->bytes + len > HASH_PIPE_START)
        st->pipe = mi_hash_pipe_start(st->hasher);   /* NULL: hash here instead */
    while (len > 0) {
        size_t n = len < HASH_PIPE_BUF ? len : HASH_PIPE_BUF, done = 0;

        if (st->pipe) {
            pipe_feed(st->pipe, p, n);
        } else {
            s = mi_hasher_update(st->hasher, p, n);
            if (s != MI_OK)
                return store_fail(st, s, "hashing failed");
        }
        while (done < n) {
            ssize_t w = write(st->fd, p + done, n - done);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                return store_fail(st, mi_status_from_io_errno(errno),
                                  "cannot write the upload: %s",
                                  strerror(errno));
            }
            done += (size_t)w;
        }
        p += n;
        len -= n;
        st->bytes += n;
    }
    mi_write_behind(st->fd, &st->behind, st->bytes);
    return MI_OK;
}

/* ---------------------------------------------------------------------- */
/* Commit                                                                  */

/* Does the index hold these bytes in a file that is still on disk?  On
 * success the path goes into st->path. */
static bool find_existing(mi_store *st)
{
    int root = mi_index_root_fd(st->idx);
    mi_entry *e = NULL;
    bool found = false;
    size_t i, n;

    if (mi_lookup(&e, st->idx, st->hash) != MI_OK)
        return false;
    n = mi_entry_dup_count(e);
    for (i = 0; i <= n && !found; i++) {
        const char *p = i == 0 ? mi_entry_path(e) : mi_entry_dup_path(e, i - 1);
        struct stat sb;

        /* The catalog may be behind the disk: a file deleted since the
         * last scan must not swallow this upload. */
        if (p && fstatat(root, p, &sb, 0) == 0 && S_ISREG(sb.st_mode) &&
            (uint64_t)sb.st_size == st->bytes) {
            mi_bufprintf(st->path, sizeof(st->path), "%s", p);
            found = true;
        }
    }
    mi_entry_free(e);
    return found;
}

static mi_status fsync_dir(int root, const char *rel)
{
    int fd = openat(root, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    mi_status s = MI_OK;

    if (fd < 0)
        return mi_status_from_errno(errno);
    if (fsync(fd) != 0)
        s = mi_status_from_io_errno(errno);
    close(fd);
    return s;
}

/* Make dir (relative to root) if needed; fsync its parent when made. */
static mi_status make_dir(int root, const char *dir, const char *parent)
{
    if (mkdirat(root, dir, 0755) == 0)
        return fsync_dir(root, parent);
    if (errno == EEXIST)
        return MI_OK;
    return mi_status_from_errno(errno);
}

/* "name.ext" -> "name_N.ext", within MI_MAX_NAME bytes. */
static void suffixed(char *out, size_t len, const char *name, unsigned int n)
{
    const char *ext = extension(name);
    size_t stem = (size_t)(ext - name) + (*ext ? 0 : strlen(name));
    char sfx[16];
    size_t room;

    if (n == 0) {
        mi_bufprintf(out, len, "%s", name);
        return;
    }
    mi_bufprintf(sfx, sizeof(sfx), "_%u", n);
    room = MI_MAX_NAME - strlen(sfx) - strlen(ext);
    if (stem > room)
        stem = char_boundary(name, room);
    mi_bufprintf(out, len, "%.*s%s%s", (int)stem, name, sfx, ext);
}

/* Give the temporary file its name, never replacing another file. */
static mi_status place(mi_store *st, const char *dir)
{
    int root = mi_index_root_fd(st->idx);
    int dirfd = openat(root, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char name[MI_MAX_NAME + 1], proc[64], tmp_rel[128];
    unsigned int n;
    int rc = -1;

    if (dirfd < 0)
        return store_fail(st, mi_status_from_errno(errno), "cannot open %s: %s",
                          dir, strerror(errno));
    mi_bufprintf(proc, sizeof(proc), "/proc/self/fd/%d", st->fd);
    if (st->adopted)
        mi_bufprintf(tmp_rel, sizeof(tmp_rel), "%s", st->adopted_rel);
    else if (st->tmp_name[0])
        mi_bufprintf(tmp_rel, sizeof(tmp_rel), TMP_DIR "/%s", st->tmp_name);
    else
        tmp_rel[0] = '\0';
    for (n = 0; n < MAX_SUFFIX; n++) {
        suffixed(name, sizeof(name), st->name, n);
        if (tmp_rel[0])
            rc = linkat(root, tmp_rel, dirfd, name, 0);
        else
            rc = linkat(AT_FDCWD, proc, dirfd, name, AT_SYMLINK_FOLLOW);
        if (rc == 0 || errno != EEXIST)
            break;
    }
    if (rc != 0) {
        int err = errno;
        close(dirfd);
        return store_fail(st, n == MAX_SUFFIX ? MI_EEXISTS
                                              : mi_status_from_errno(err),
                          "cannot store %s/%s: %s", dir, name, strerror(err));
    }
    if (fsync(dirfd) != 0) {
        int err = errno;
        unlinkat(dirfd, name, 0);
        close(dirfd);
        return store_fail(st, mi_status_from_io_errno(err), "cannot sync %s: %s",
                          dir, strerror(err));
    }
    close(dirfd);
    mi_bufprintf(st->path, sizeof(st->path), "%s/%s", dir, name);
    return MI_OK;
}

/* fsync on a thread: its errno, or 0. */
struct sync_job {
    int fd;
    int err;
};

static void *sync_main(void *arg)
{
    struct sync_job *j = arg;

    j->err = fsync(j->fd) == 0 ? 0 : errno;
    return NULL;
}

/*
 * Make the bytes durable before they are placed.  For a large upload whose
 * content is not here yet, its thumbnail is made meanwhile: the sync waits
 * for the disk, the thumbnail for the CPU, and an upload's answer waited
 * for one then the other (a 300 MB JPEG: a 0.30 s sync, then 2.45 s of
 * thumbnail).  Made before the content is placed, a thumbnail whose
 * upload then fails is one the next sweep removes.
 */
static mi_status sync_upload(mi_store *st)
{
    struct sync_job job = { .fd = st->fd, .err = 0 };
    pthread_t t;

    if (st->bytes >= HASH_PIPE_START && st->type &&
        mi_index_has(NULL, 0, st->idx, st->hash, MI_HAS_ON_DISK) ==
            MI_ENOTFOUND &&
        pthread_create(&t, NULL, sync_main, &job) == 0) {
        st->early_state = MI_THUMB_NONE;
        st->early_why[0] = '\0';
        st->early_ts = mi_thumb_write_fd(st->idx, st->hash, st->fd, st->type,
                                         &st->early_state, &st->early_phash,
                                         st->early_why, sizeof(st->early_why));
        st->has_early = true;
        pthread_join(t, NULL);
    } else if (fsync(st->fd) != 0) {
        job.err = errno;
    }
    if (job.err)
        return store_fail(st, mi_status_from_io_errno(job.err),
                          "cannot sync the upload: %s", strerror(job.err));
    return MI_OK;
}

/* Index the placed file, as a scan would. */
static mi_status index_placed(mi_store *st)
{
    char why[160];
    mi_file_row row;
    struct stat sb;
    mi_conn *w;
    mi_status s, ts;
    char err[256] = "";

    memset(&row, 0, sizeof(row));
    if (fstat(st->fd, &sb) != 0)
        return store_fail(st, MI_EIO, "cannot stat the upload: %s",
                          strerror(errno));
    row.path = st->path;
    row.path_len = strlen(st->path);
    memcpy(row.hash, st->hash, MI_HASH_SIZE);
    row.size = (uint64_t)sb.st_size;
    row.mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
    row.ctime_ns = (int64_t)sb.st_ctim.tv_sec * 1000000000LL + sb.st_ctim.tv_nsec;
    row.inode = (uint64_t)sb.st_ino;
    row.type = st->type;
    row.meta = st->meta;
    row.thumb = MI_THUMB_NONE;
    if (st->has_early) {
        row.thumb = st->early_state;
        row.phash = st->early_phash;
        ts = st->early_ts;
        mi_bufprintf(why, sizeof(why), "%s", st->early_why);
    } else {
        ts = mi_thumb_write_fd(st->idx, st->hash, st->fd, st->type,
                               &row.thumb, &row.phash, why, sizeof(why));
    }

    w = mi_index_writer_lock(st->idx);
    if (!w)
        return store_fail(st, mi_index_writer_error(st->idx, err, sizeof(err)),
                          "%s", err);
    s = mi_catalog_begin(w, err, sizeof(err));
    if (s == MI_OK)
        s = mi_catalog_put(w, &row, err, sizeof(err));
    if (s == MI_OK && row.thumb == MI_THUMB_FAILED)
        s = mi_catalog_set_problem(w, row.path, row.path_len,
                                   MI_PROBLEM_THUMBNAIL, ts,
                                   why[0] ? why : mi_thumb_reason(ts), mi_wall_ns(),
                                   err, sizeof(err));
    if (s == MI_OK)
        s = mi_index_writer_commit(st->idx, true, err, sizeof(err));
    else
        mi_index_writer_abort(st->idx);
    if (s != MI_OK)
        return store_fail(st, s, "%s", err);
    return MI_OK;
}

static mi_status commit_locked(mi_store *st)
{
    int root = mi_index_root_fd(st->idx);
    char dir[64];
    struct tm tm;
    time_t now = time(NULL);
    mi_status s;

    if (find_existing(st)) {
        st->created = false;
        return MI_OK;
    }
    /* Bytes that are in the trash: they come back from there (the same
     * content, its old place and metadata) rather than a second copy. */
    if (mi_trash_has(st->idx, st->hash) &&
        mi_trash_restore_locked(st->path, sizeof(st->path), st->idx,
                                st->hash) == MI_OK) {
        st->created = false;
        return MI_OK;
    }
    localtime_r(&now, &tm);
    mi_bufprintf(dir, sizeof(dir), UPLOADS_DIR "/%04d%02d%02d",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    s = make_dir(root, UPLOADS_DIR, ".");
    if (s == MI_OK)
        s = make_dir(root, dir, UPLOADS_DIR);
    if (s != MI_OK)
        return store_fail(st, s, "cannot create %s: %s", dir, mi_strerror(s));
    s = place(st, dir);
    if (s != MI_OK)
        return s;
    s = index_placed(st);
    if (s != MI_OK) {
        /* Not indexed: take the name back, leave nothing behind. */
        unlinkat(root, st->path, 0);
        fsync_dir(root, dir);
        st->path[0] = '\0';
        return s;
    }
    st->created = true;
    return MI_OK;
}

mi_status mi_store_commit(mi_store *st)
{
    const mi_media_type *sniffed;
    const char *slash;
    char why[160];
    mi_status s;

    if (!st)
        return MI_EINVAL;
    if (st->failed != MI_OK)
        return st->failed;
    if (st->committed)
        return store_fail(st, MI_EINVAL, "upload already committed");
    if (st->bytes == 0)
        return store_fail(st, MI_EFORMAT, "empty file");
    sniffed = mi_media_sniff(st->head, st->bytes < MI_SNIFF_LEN
                                           ? (size_t)st->bytes : MI_SNIFF_LEN);
    if (!upload_family(sniffed) ||
        strcmp(upload_family(sniffed), upload_family(st->type)) != 0)
        return store_fail(st, MI_EFORMAT,
                          "file type not allowed: the content of \"%s\" is %s",
                          st->name,
                          sniffed ? sniffed->mime : "not a known image or video");

    if (st->type->kind == MI_KIND_VIDEO) {
        const char *cut = mi_media_cut_short(st->head, st->bytes < MI_SNIFF_LEN
                                                           ? (size_t)st->bytes
                                                           : MI_SNIFF_LEN,
                                             st->bytes);
        if (cut)
            return store_fail(st, MI_EFORMAT, "the video is cut short: %s",
                              cut);
    }

    if (st->adopted) {
        s = hash_adopted(st);
        if (s != MI_OK)
            return store_fail(st, s, "cannot read the upload again: %s",
                              mi_strerror(s));
    } else {
        s = mi_hash_pipe_finish(st->pipe);
        st->pipe = NULL;
    }
    if (s == MI_OK)
        s = mi_hasher_final(st->hasher, st->hash);
    if (s != MI_OK)
        return store_fail(st, s, "hashing failed");
    mi_hash_to_hex(st->hex, st->hash);
    if (st->has_expect && memcmp(st->expect, st->hash, MI_HASH_SIZE) != 0) {
        char want[MI_HASH_HEX_LEN + 1];

        mi_hash_to_hex(want, st->expect);
        return store_fail(st, MI_EINVAL,
                          "checksum mismatch: the bytes received hash to %s, "
                          "not to the client's %s", st->hex, want);
    }

    /* The metadata, now: a video (or raw file) the decoder cannot open
     * is refused rather than kept as a file nobody can play. */
    if (mi_meta_read_fd(&st->meta, st->fd, st->bytes, st->type) != MI_OK)
        memset(&st->meta, 0, sizeof(st->meta));
    s = mi_meta_from_decoder(st->idx, st->fd, st->type, &st->meta, why,
                             sizeof why);
    if (s == MI_EFORMAT || s == MI_ETOOBIG)
        return store_fail(st, MI_EFORMAT, "the %s cannot be opened: %s",
                          st->type->kind == MI_KIND_VIDEO ? "video" : "file",
                          why[0] ? why : mi_strerror(s));
    s = sync_upload(st);
    if (s != MI_OK)
        return s;

    mi_index_store_lock(st->idx, st->hash);
    s = commit_locked(st);
    mi_index_store_unlock(st->idx, st->hash);
    if (s != MI_OK)
        return s;
    st->committed = true;
    slash = strrchr(st->path, '/');
    st->filename = slash ? slash + 1 : st->path;
    return MI_OK;
}

/* ---------------------------------------------------------------------- */
/* Results, free, cleanup                                                  */

const char *mi_store_hash_hex(const mi_store *st)
{
    return st && st->committed ? st->hex : "";
}

const char *mi_store_path(const mi_store *st)
{
    return st && st->committed ? st->path : "";
}

const char *mi_store_filename(const mi_store *st)
{
    return st && st->committed ? st->filename : "";
}

int mi_store_created(const mi_store *st)
{
    return st && st->committed && st->created;
}

const char *mi_store_errmsg(const mi_store *st)
{
    return st ? st->errmsg : "";
}

void mi_store_free(mi_store *st)
{
    if (!st)
        return;
    mi_hash_pipe_finish(st->pipe);
    if (st->fd >= 0 && !st->adopted)
        close(st->fd);
    if (st->tmp_name[0] && !st->adopted) {
        char rel[128];
        mi_bufprintf(rel, sizeof(rel), TMP_DIR "/%s", st->tmp_name);
        unlinkat(mi_index_root_fd(st->idx), rel, 0);
    }
    mi_hasher_free(st->hasher);
    free(st);
}

void mi_store_cleanup(mi_index *idx)
{
    int fd = openat(mi_index_root_fd(idx), TMP_DIR,
                    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct dirent *de;
    DIR *d;

    if (fd < 0)
        return;
    d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, "upload-", 7) == 0 &&
            strlen(de->d_name) > 11 &&
            strcmp(de->d_name + strlen(de->d_name) - 4, ".tmp") == 0)
            unlinkat(fd, de->d_name, 0);
    closedir(d);
}
