/*
 * upload.c - resumable uploads: partial files, offsets, locks, expiry,
 * then the commit of store.c.
 *
 * Each upload is two files in DIR/.mediaindex/uploads/:
 *   <id>.part  the bytes received so far; its size is the offset;
 *   <id>.info  what the creation said (length, owner, name, the client's
 *              hash...), a few lines of text, replaced whole by writing
 *              <id>.info.tmp, syncing it and renaming it.
 * Creation makes the .part first and the .info last; removal takes the
 * .info first.  A .part without .info is a creation or removal cut short:
 * nothing opens it and the sweep removes it once it is old.
 *
 * The lock of an upload is an flock() on its .part, taken without waiting:
 * a second opener, in this process or another, gets MI_EBUSY and never
 * interleaves its bytes.  The kernel drops it when the holder dies.  An
 * opener checks after locking that the name still leads to the file it
 * locked (a removal may have come between its open and its lock).
 *
 * Bytes are appended with pwrite at the offset and synced (fsync) before
 * an append returns; a failed write or sync truncates the file back.  The
 * offset is what was synced, never more: before the first unsynced byte
 * the synced size is written into an extended attribute of the .part
 * (SYNCED_XATTR, no sync needed: it reaches the disk no later than the
 * bytes after it), and the sync removes it in the same fsync as the size.
 * Whoever finds it (an open after kill -9 or a power cut, a stat during a
 * write) takes that size: bytes nobody synced, e.g. half of a chunk whose
 * checksum was never checked, are not kept.  Where the file system has no
 * user extended attributes the size of the file is the offset, as it was.
 * A handle hashes the bytes as they come, and a closed handle leaves its
 * hash state to the next one (a small cache on the mi_index, checked
 * against the file's inode, size and mtime), so that the commit only reads
 * again what no handle saw: nothing in the usual case, all of the file
 * after a restart.  A 4 GB video's last PATCH then answers at once instead
 * of after reading 4 GB.
 *
 * The reservations against upload_partial_max are counted per handle
 * (mi_uploads): read from the disk by the first call that needs them,
 * then kept up to date by every create, append (deferred length), length
 * set and removal.
 */
#include "config.h"
#include "mi-private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define STATE_DIR ".mediaindex/uploads"
#define INFO_MAX 4096          /* bytes in an .info file */
#define INFO_MAGIC "mediaindex-upload 1"
#define ORPHAN_AGE_S 3600      /* a lone .part or .info.tmp this old goes */
#define NAME_LEN (MI_UPLOAD_ID_LEN + 16) /* "<id>.info.tmp" and a NUL */
#define HASH_CACHE 64          /* hash states kept between handles */
#define SYNCED_XATTR "user.mediaindex.synced" /* see above */

/* The hash state a closed handle left: valid while the file is the same
 * (inode, size, mtime). */
typedef struct cached_hash {
    char id[MI_UPLOAD_ID_LEN + 1]; /* "" when the slot is free */
    mi_hasher *hasher;
    uint64_t hashed, ino;
    int64_t mtime_ns;
    uint64_t used;             /* for the least recently used to go */
} cached_hash;

struct mi_uploads {
    pthread_mutex_t lock;
    bool counted;
    uint64_t reserved;         /* bytes reserved by unfinished uploads */
    uint64_t count;            /* unfinished uploads */
    uint64_t creating_bytes;   /* of those, reserved by creations whose */
    uint64_t creating;         /* .info is not written yet: a recount
                                  from the disk cannot see them */
    cached_hash cache[HASH_CACHE];
    uint64_t tick;
};

/* What an .info file holds. */
typedef struct upload_meta {
    uint64_t length;           /* MI_UPLOAD_LENGTH_DEFERRED when unknown */
    uint64_t max_bytes;
    int64_t created;
    bool has_sha;
    uint8_t sha[MI_HASH_SIZE];
    char name[MI_MAX_NAME + 1];
    char owner[MI_UPLOAD_OWNER_MAX + 1];
} upload_meta;

struct mi_upload {
    mi_index *idx;
    char id[MI_UPLOAD_ID_LEN + 1];
    int dirfd;                 /* STATE_DIR */
    int fd;                    /* <id>.part, locked */
    upload_meta m;
    uint64_t size;             /* bytes in the file: the offset */
    uint64_t synced;           /* size at the last sync (or the open) */
    uint64_t behind;           /* written out from here (mi_write_behind) */
    bool marked;               /* SYNCED_XATTR says `synced` */
    bool no_xattr;             /* the file system has none */
    int64_t mtime;             /* of the .part: the last activity */
    mi_hasher *hasher;         /* fed bytes [0, hashed), or NULL */
    mi_hash_pipe *pipe;        /* feeding it on a thread (large chunks) */
    uint64_t hashed, fed;      /* fed: bytes written by this handle */
    bool gone;                 /* its files are removed */
    bool finished;             /* committed: the results below are set */
    int created;
    char hex[MI_HASH_HEX_LEN + 1];
    char path[MI_MAX_PATH + 1];
    const char *filename;      /* into path */
};

/* ---------------------------------------------------------------------- */
/* The handle's state                                                      */

mi_status mi_uploads_new(mi_uploads **out)
{
    mi_uploads *u = calloc(1, sizeof(*u));

    *out = NULL;
    if (!u)
        return MI_ENOMEM;
    if (pthread_mutex_init(&u->lock, NULL) != 0) {
        free(u);
        return MI_ENOMEM;
    }
    *out = u;
    return MI_OK;
}

void mi_uploads_free(mi_uploads *u)
{
    size_t i;

    if (!u)
        return;
    for (i = 0; i < HASH_CACHE; i++)
        mi_hasher_free(u->cache[i].hasher);
    pthread_mutex_destroy(&u->lock);
    free(u);
}

static int64_t mtime_ns(const struct stat *sb)
{
    return (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
}

/* Keep the hash state of upload `id`, whose file is `sb` now. */
static void cache_put(mi_index *idx, const char *id, mi_hasher *h,
                      uint64_t hashed, const struct stat *sb)
{
    mi_uploads *u = mi_index_uploads(idx);
    cached_hash *slot;
    mi_hasher *old;
    size_t i;

    pthread_mutex_lock(&u->lock);
    slot = &u->cache[0];
    for (i = 0; i < HASH_CACHE; i++) {
        if (strcmp(u->cache[i].id, id) == 0 || !u->cache[i].id[0]) {
            slot = &u->cache[i];
            break;
        }
        if (u->cache[i].used < slot->used)
            slot = &u->cache[i];
    }
    old = slot->hasher;
    memcpy(slot->id, id, MI_UPLOAD_ID_LEN + 1);
    slot->hasher = h;
    slot->hashed = hashed;
    slot->ino = (uint64_t)sb->st_ino;
    slot->mtime_ns = mtime_ns(sb);
    slot->used = ++u->tick;
    pthread_mutex_unlock(&u->lock);
    mi_hasher_free(old);
}

/* Take the hash state of upload `id` if it still matches its file. */
static mi_hasher *cache_take(mi_index *idx, const char *id,
                             const struct stat *sb, uint64_t *hashed)
{
    mi_uploads *u = mi_index_uploads(idx);
    mi_hasher *h = NULL, *stale = NULL;
    size_t i;

    pthread_mutex_lock(&u->lock);
    for (i = 0; i < HASH_CACHE; i++) {
        cached_hash *c = &u->cache[i];

        if (strcmp(c->id, id) != 0)
            continue;
        if (c->hashed == (uint64_t)sb->st_size &&
            c->ino == (uint64_t)sb->st_ino && c->mtime_ns == mtime_ns(sb)) {
            h = c->hasher;
            *hashed = c->hashed;
        } else {
            stale = c->hasher;   /* the file changed under another handle */
        }
        c->hasher = NULL;
        c->id[0] = '\0';
        break;
    }
    pthread_mutex_unlock(&u->lock);
    mi_hasher_free(stale);
    return h;
}

/* ---------------------------------------------------------------------- */
/* Names and the .info file                                                */

static bool valid_id(const char *id)
{
    size_t i;

    if (!id)
        return false;
    for (i = 0; i < MI_UPLOAD_ID_LEN; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return id[MI_UPLOAD_ID_LEN] == '\0';
}

/* "<id><suffix>" */
static void file_name(char out[NAME_LEN], const char *id, const char *suffix)
{
    mi_bufprintf(out, NAME_LEN, "%.*s%s", MI_UPLOAD_ID_LEN, id, suffix);
}

static bool valid_owner(const char *owner)
{
    size_t n = strnlen(owner, MI_UPLOAD_OWNER_MAX + 1), i;

    if (n > MI_UPLOAD_OWNER_MAX)
        return false;
    for (i = 0; i < n; i++)
        if ((unsigned char)owner[i] < 0x20 || owner[i] == 0x7f)
            return false;
    return true;
}

/* The length of an upload's reservation against upload_partial_max. */
static uint64_t reservation(const upload_meta *m, uint64_t size)
{
    return m->length != MI_UPLOAD_LENGTH_DEFERRED ? m->length : size;
}

/* Open STATE_DIR (making it when `create`). */
static int open_state_dir(mi_index *idx, bool create, mi_status *s)
{
    int root = mi_index_root_fd(idx), fd;

    if (create && mkdirat(root, STATE_DIR, 0700) != 0 && errno != EEXIST) {
        *s = mi_index_fail(idx, mi_status_from_io_errno(errno),
                           "cannot create %s: %s", STATE_DIR, strerror(errno));
        return -1;
    }
    fd = openat(root, STATE_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        *s = errno == ENOENT
                 ? MI_ENOTFOUND
                 : mi_index_fail(idx, mi_status_from_errno(errno),
                                 "cannot open %s: %s", STATE_DIR,
                                 strerror(errno));
    return fd;
}

static mi_status write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            return mi_status_from_io_errno(errno);
        }
        p += w;
        n -= (size_t)w;
    }
    return MI_OK;
}

/* Replace <id>.info whole: a temporary file, synced, renamed, the folder
 * synced. */
static mi_status write_info(mi_index *idx, int dirfd, const char *id,
                            const upload_meta *m)
{
    char text[INFO_MAX + 1], tmp[NAME_LEN], info[NAME_LEN];
    char hex[MI_HASH_HEX_LEN + 1], len[32];
    mi_status s;
    int fd, n;

    if (m->length == MI_UPLOAD_LENGTH_DEFERRED)
        mi_bufprintf(len, sizeof(len), "deferred");
    else
        mi_bufprintf(len, sizeof(len), "%" PRIu64, m->length);
    if (m->has_sha)
        mi_hash_to_hex(hex, m->sha);
    n = snprintf(text, sizeof(text),
                 INFO_MAGIC "\nlength %s\nmax %" PRIu64 "\ncreated %" PRId64
                 "\n%s%s%sowner %s\nname %s\n",
                 len, m->max_bytes, m->created, m->has_sha ? "sha256 " : "",
                 m->has_sha ? hex : "", m->has_sha ? "\n" : "", m->owner,
                 m->name);
    if (n < 0 || (size_t)n >= sizeof(text))
        return mi_index_fail(idx, MI_ETOOBIG, "upload metadata too long");
    file_name(tmp, id, ".info.tmp");
    file_name(info, id, ".info");
    fd = openat(dirfd, tmp, O_CREAT | O_TRUNC | O_WRONLY | O_NOFOLLOW | O_CLOEXEC,
                0600);
    if (fd < 0)
        return mi_index_fail(idx, mi_status_from_io_errno(errno),
                             "cannot write %s/%s: %s", STATE_DIR, tmp,
                             strerror(errno));
    s = write_all(fd, text, (size_t)n);
    if (s == MI_OK && fsync(fd) != 0)
        s = mi_status_from_io_errno(errno);
    close(fd);
    if (s == MI_OK && renameat(dirfd, tmp, dirfd, info) != 0)
        s = mi_status_from_io_errno(errno);
    if (s == MI_OK && fsync(dirfd) != 0)
        s = mi_status_from_io_errno(errno);
    if (s != MI_OK) {
        unlinkat(dirfd, tmp, 0);
        return mi_index_fail(idx, s, "cannot write %s/%s: %s", STATE_DIR, info,
                             mi_strerror(s));
    }
    return MI_OK;
}

static bool parse_u64(const char *v, uint64_t *out)
{
    uint64_t x = 0;

    if (!*v)
        return false;
    for (; *v; v++) {
        if (*v < '0' || *v > '9' || x > (UINT64_MAX - 9) / 10)
            return false;
        x = x * 10 + (uint64_t)(*v - '0');
    }
    *out = x;
    return true;
}

/* Read and check <id>.info.  MI_ENOTFOUND when there is none, MI_EFORMAT
 * when it is not one this library wrote. */
static mi_status read_info(mi_index *idx, int dirfd, const char *id,
                           upload_meta *m)
{
    char text[INFO_MAX + 2], info[NAME_LEN], *line, *next;
    bool magic = false, has_len = false, has_name = false;
    size_t n = 0;
    int fd;

    memset(m, 0, sizeof(*m));
    file_name(info, id, ".info");
    fd = openat(dirfd, info, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? MI_ENOTFOUND
                               : mi_index_fail(idx, mi_status_from_errno(errno),
                                               "cannot read %s/%s: %s",
                                               STATE_DIR, info, strerror(errno));
    while (n < INFO_MAX + 1) {
        ssize_t r = read(fd, text + n, INFO_MAX + 1 - n);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int err = errno;
            close(fd);
            return mi_index_fail(idx, mi_status_from_io_errno(err),
                                 "cannot read %s/%s: %s", STATE_DIR, info,
                                 strerror(err));
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (n > INFO_MAX || memchr(text, '\0', n))
        return mi_index_fail(idx, MI_EFORMAT, "%s/%s: not upload metadata",
                             STATE_DIR, info);
    text[n] = '\0';
    for (line = text; line && *line; line = next) {
        char *sp, *val;

        next = strchr(line, '\n');
        if (!next)
            break;                   /* a last line without its newline */
        *next++ = '\0';
        if (!magic) {
            magic = strcmp(line, INFO_MAGIC) == 0;
            if (!magic)
                break;
            continue;
        }
        sp = strchr(line, ' ');
        if (!sp)
            continue;
        *sp = '\0';
        val = sp + 1;
        if (strcmp(line, "length") == 0) {
            if (strcmp(val, "deferred") == 0)
                m->length = MI_UPLOAD_LENGTH_DEFERRED;
            else if (!parse_u64(val, &m->length) ||
                     m->length == MI_UPLOAD_LENGTH_DEFERRED)
                break;
            has_len = true;
        } else if (strcmp(line, "max") == 0) {
            if (!parse_u64(val, &m->max_bytes))
                break;
        } else if (strcmp(line, "created") == 0) {
            uint64_t c;
            if (!parse_u64(val, &c) || c > INT64_MAX)
                break;
            m->created = (int64_t)c;
        } else if (strcmp(line, "sha256") == 0) {
            if (mi_hash_from_hex(m->sha, val) != MI_OK)
                break;
            m->has_sha = true;
        } else if (strcmp(line, "owner") == 0) {
            if (!valid_owner(val))
                break;
            mi_bufprintf(m->owner, sizeof(m->owner), "%s", val);
        } else if (strcmp(line, "name") == 0) {
            char clean[MI_MAX_NAME + 1];

            /* Only a name mi_filename_sanitize leaves as it is. */
            if (strlen(val) > MI_MAX_NAME ||
                mi_filename_sanitize(clean, sizeof(clean), val) != MI_OK ||
                strcmp(clean, val) != 0)
                break;
            mi_bufprintf(m->name, sizeof(m->name), "%s", val);
            has_name = true;
        }
        /* Other keys: from a later version, ignored. */
    }
    if (!magic || !has_len || !has_name || (line && *line))
        return mi_index_fail(idx, MI_EFORMAT, "%s/%s: not upload metadata",
                             STATE_DIR, info);
    return MI_OK;
}

/* ---------------------------------------------------------------------- */
/* Reservations                                                            */

/* Under u->lock: count what the disk holds, once per handle. */
static void count_locked(mi_index *idx, mi_uploads *u)
{
    mi_status s = MI_OK;
    struct dirent *de;
    int dirfd;
    DIR *d;

    if (u->counted)
        return;
    u->counted = true;
    dirfd = open_state_dir(idx, false, &s);
    if (dirfd < 0)
        return;
    d = fdopendir(dirfd);
    if (!d) {
        close(dirfd);
        return;
    }
    while ((de = readdir(d)) != NULL) {
        char id[MI_UPLOAD_ID_LEN + 1], part[NAME_LEN];
        upload_meta m;
        struct stat sb;

        if (strlen(de->d_name) != MI_UPLOAD_ID_LEN + 5 ||
            strcmp(de->d_name + MI_UPLOAD_ID_LEN, ".info") != 0)
            continue;
        memcpy(id, de->d_name, MI_UPLOAD_ID_LEN);
        id[MI_UPLOAD_ID_LEN] = '\0';
        if (!valid_id(id))
            continue;
        file_name(part, id, ".part");
        if (read_info(idx, dirfd, id, &m) != MI_OK ||
            fstatat(dirfd, part, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(sb.st_mode))
            continue;
        u->reserved += reservation(&m, (uint64_t)sb.st_size);
        u->count++;
    }
    closedir(d);
    mi_index_clear_error(idx);
}

/* Make sure the reservations are counted before any file changes. */
static void ensure_counted(mi_index *idx)
{
    mi_uploads *u = mi_index_uploads(idx);

    pthread_mutex_lock(&u->lock);
    count_locked(idx, u);
    pthread_mutex_unlock(&u->lock);
}

/* Reserve `bytes` more (and one upload more when `upload`). */
static mi_status reserve(mi_index *idx, uint64_t bytes, bool upload)
{
    mi_uploads *u = mi_index_uploads(idx);
    uint64_t cap = mi_index_upload_partial_max(idx);
    mi_status s = MI_OK;

    pthread_mutex_lock(&u->lock);
    count_locked(idx, u);
    if (upload && u->count >= MI_UPLOAD_MAX_COUNT)
        s = mi_index_fail(idx, MI_ENOSPACE,
                          "too many unfinished uploads (%u): finish or "
                          "delete some first", MI_UPLOAD_MAX_COUNT);
    else if (bytes > cap || u->reserved > cap - bytes)
        s = mi_index_fail(idx, MI_ENOSPACE,
                          "unfinished uploads already hold %" PRIu64 " of "
                          "the %" PRIu64 " bytes allowed; %" PRIu64
                          " more do not fit", u->reserved, cap, bytes);
    if (s == MI_OK) {
        u->reserved += bytes;
        u->count += upload;
        if (upload) {
            u->creating_bytes += bytes;
            u->creating++;
        }
    }
    pthread_mutex_unlock(&u->lock);
    return s;
}

/* A creation's reservation is on disk now (`written`), or given back. */
static void created(mi_index *idx, uint64_t bytes, bool written)
{
    mi_uploads *u = mi_index_uploads(idx);

    pthread_mutex_lock(&u->lock);
    u->creating_bytes -= bytes;
    u->creating--;
    if (!written) {
        u->reserved = u->reserved > bytes ? u->reserved - bytes : 0;
        if (u->count)
            u->count--;
    }
    pthread_mutex_unlock(&u->lock);
}

static void unreserve(mi_index *idx, uint64_t bytes, bool upload)
{
    mi_uploads *u = mi_index_uploads(idx);

    pthread_mutex_lock(&u->lock);
    u->reserved = u->reserved > bytes ? u->reserved - bytes : 0;
    if (upload && u->count)
        u->count--;
    pthread_mutex_unlock(&u->lock);
}

/* ---------------------------------------------------------------------- */
/* Create                                                                  */

static mi_status new_id(char id[MI_UPLOAD_ID_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char r[MI_UPLOAD_ID_LEN / 2];
    size_t i, got = 0;

    while (got < sizeof(r)) {
        ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return MI_EIO;
        got += (size_t)n;
    }
    for (i = 0; i < sizeof(r); i++) {
        id[2 * i] = digits[r[i] >> 4];
        id[2 * i + 1] = digits[r[i] & 15];
    }
    id[MI_UPLOAD_ID_LEN] = '\0';
    return MI_OK;
}

mi_status mi_upload_create(char id[MI_UPLOAD_ID_LEN + 1], mi_index *idx,
                           const char *name, uint64_t length,
                           const char *owner, const mi_upload_options *opts)
{
    char part[NAME_LEN];
    upload_meta m;
    mi_status s = MI_OK;
    int dirfd, fd = -1, tries;

    if (!id)
        return MI_EINVAL;
    id[0] = '\0';
    if (!idx || !name)
        return MI_EINVAL;
    if (opts && (opts->version < 1 || opts->version > MI_UPLOAD_OPTIONS_VERSION))
        return mi_index_fail(idx, MI_EINVAL, "unknown upload options version %u",
                             opts->version);
    if (!owner)
        owner = "";
    if (!valid_owner(owner))
        return mi_index_fail(idx, MI_EINVAL,
                             "an upload owner is at most %d bytes without "
                             "control characters", MI_UPLOAD_OWNER_MAX);
    memset(&m, 0, sizeof(m));
    m.length = length;
    m.max_bytes = opts ? opts->max_bytes : 0;
    m.created = (int64_t)time(NULL);
    if (opts && opts->sha256) {
        m.has_sha = true;
        memcpy(m.sha, opts->sha256, MI_HASH_SIZE);
    }
    mi_bufprintf(m.owner, sizeof(m.owner), "%s", owner);
    s = mi_store_check_name(m.name, idx, name, opts ? opts->fallback_name : NULL);
    if (s != MI_OK)
        return s;
    if (length == 0)
        return mi_index_fail(idx, MI_EFORMAT, "empty file");
    if (length != MI_UPLOAD_LENGTH_DEFERRED &&
        ((m.max_bytes && length > m.max_bytes) ||
         length > mi_index_upload_partial_max(idx)))
        return mi_index_fail(idx, MI_ETOOBIG,
                             "upload larger than %" PRIu64 " bytes",
                             m.max_bytes && m.max_bytes <
                                     mi_index_upload_partial_max(idx)
                                 ? m.max_bytes
                                 : mi_index_upload_partial_max(idx));

    s = reserve(idx, length == MI_UPLOAD_LENGTH_DEFERRED ? 0 : length, true);
    if (s != MI_OK)
        return s;
    dirfd = open_state_dir(idx, true, &s);
    if (dirfd < 0)
        goto fail;
    for (tries = 0; tries < 8 && fd < 0; tries++) {
        s = new_id(id);
        if (s != MI_OK) {
            mi_index_fail(idx, s, "no random id: %s", strerror(errno));
            goto fail;
        }
        file_name(part, id, ".part");
        fd = openat(dirfd, part,
                    O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        s = mi_index_fail(idx, mi_status_from_io_errno(errno),
                          "cannot create an upload in %s: %s", STATE_DIR,
                          strerror(errno));
        goto fail;
    }
    /* Locked while it has no .info, so that no sweep takes it. */
    flock(fd, LOCK_EX | LOCK_NB);
    s = write_info(idx, dirfd, id, &m);
    if (s != MI_OK) {
        unlinkat(dirfd, part, 0);
        goto fail;
    }
    close(fd);
    close(dirfd);
    created(idx, length == MI_UPLOAD_LENGTH_DEFERRED ? 0 : length, true);
    return MI_OK;

fail:
    if (fd >= 0)
        close(fd);
    if (dirfd >= 0)
        close(dirfd);
    id[0] = '\0';
    created(idx, length == MI_UPLOAD_LENGTH_DEFERRED ? 0 : length, false);
    return s;
}

/* ---------------------------------------------------------------------- */
/* Open, stat, remove                                                      */

static int64_t expires_at(mi_index *idx, int64_t mtime)
{
    return mtime + (int64_t)mi_index_upload_expiry_s(idx);
}

static void fill_info(mi_upload_info *info, const upload_meta *m,
                      uint64_t offset, int64_t expires)
{
    info->offset = offset;
    info->length = m->length;
    info->max_bytes = m->max_bytes;
    info->created = m->created;
    info->expires = expires;
    info->has_sha256 = m->has_sha;
    memcpy(info->sha256, m->sha, MI_HASH_SIZE);
    mi_bufprintf(info->name, sizeof(info->name), "%s", m->name);
    mi_bufprintf(info->owner, sizeof(info->owner), "%s", m->owner);
}

static mi_status check_owner(mi_index *idx, const upload_meta *m,
                             const char *id, const char *owner)
{
    if (owner && strcmp(owner, m->owner) != 0)
        return mi_index_fail(idx, MI_EACCES,
                             "upload %s belongs to another owner", id);
    return MI_OK;
}

/* Take the files of a locked upload away (the .info first) and its
 * reservation with them. */
static void remove_locked(mi_upload *up)
{
    char name[NAME_LEN];

    if (up->gone)
        return;
    file_name(name, up->id, ".info");
    unlinkat(up->dirfd, name, 0);
    file_name(name, up->id, ".part");
    unlinkat(up->dirfd, name, 0);
    fsync(up->dirfd);
    unreserve(up->idx, reservation(&up->m, up->size), true);
    up->gone = true;
}

/* Wait for the hashing thread; drop the hash state if it failed. */
static void stop_pipe(mi_upload *up)
{
    if (up->pipe && mi_hash_pipe_finish(up->pipe) != MI_OK) {
        mi_hasher_free(up->hasher);
        up->hasher = NULL;
        up->hashed = 0;
    }
    up->pipe = NULL;
}

/* The size a .part was synced at when bytes were written past it and not
 * synced (SYNCED_XATTR), or UINT64_MAX. */
static uint64_t synced_mark(int fd)
{
    char v[24];
    ssize_t n = fgetxattr(fd, SYNCED_XATTR, v, sizeof(v) - 1);
    unsigned long long x;
    char *end;

    if (n <= 0)
        return UINT64_MAX;
    v[n] = '\0';
    errno = 0;
    x = strtoull(v, &end, 10);
    if (errno || *end || end == v)
        return UINT64_MAX;
    return (uint64_t)x;
}

/* The offset of a .part that `sb` describes: its size, or less when the
 * end was never synced. */
static uint64_t part_offset(int fd, const struct stat *sb)
{
    uint64_t mark = synced_mark(fd);

    return mark < (uint64_t)sb->st_size ? mark : (uint64_t)sb->st_size;
}

/* Say "good up to up->synced" before the first unsynced byte. */
static void mark_unsynced(mi_upload *up)
{
    char v[24];
    int n;

    if (up->marked || up->no_xattr)
        return;
    n = snprintf(v, sizeof(v), "%" PRIu64, up->synced);
    if (fsetxattr(up->fd, SYNCED_XATTR, v, (size_t)n, 0) == 0)
        up->marked = true;
    else
        up->no_xattr = true;   /* ENOTSUP: the size is the offset */
}

/* Make everything written durable, and the mark gone with it. */
static int sync_part(mi_upload *up)
{
    if (up->marked) {
        if (fremovexattr(up->fd, SYNCED_XATTR) != 0 && errno != ENODATA)
            return -1;
        up->marked = false;
    }
    return fsync(up->fd);
}

static void free_handle(mi_upload *up)
{
    struct stat sb;

    if (!up)
        return;
    stop_pipe(up);
    /* Leave the hash state to the next handle, while the lock still
     * keeps the file as it is. */
    if (!up->gone && up->hasher && up->hashed == up->size &&
        fstat(up->fd, &sb) == 0 && (uint64_t)sb.st_size == up->size) {
        cache_put(up->idx, up->id, up->hasher, up->hashed, &sb);
        up->hasher = NULL;
    }
    if (up->fd >= 0)
        close(up->fd);         /* drops the lock */
    if (up->dirfd >= 0)
        close(up->dirfd);
    mi_hasher_free(up->hasher);
    free(up);
}

/* Open and lock an upload.  `now` > 0: one expired by then is removed
 * (MI_ENOTFOUND). */
static mi_status open_locked(mi_upload **out, mi_index *idx, const char *id,
                             const char *owner, int64_t now)
{
    char part[NAME_LEN];
    struct stat sb, named;
    mi_upload *up;
    mi_status s = MI_OK;

    *out = NULL;
    if (!valid_id(id))
        return mi_index_fail(idx, MI_ENOTFOUND, "no upload has that id");
    ensure_counted(idx);
    up = calloc(1, sizeof(*up));
    if (!up)
        return MI_ENOMEM;
    up->idx = idx;
    up->fd = -1;
    memcpy(up->id, id, MI_UPLOAD_ID_LEN + 1);
    up->dirfd = open_state_dir(idx, false, &s);
    if (up->dirfd < 0)
        goto fail;
    file_name(part, id, ".part");
    up->fd = openat(up->dirfd, part, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (up->fd < 0) {
        s = errno == ENOENT ? MI_ENOTFOUND
                            : mi_index_fail(idx, mi_status_from_errno(errno),
                                            "cannot open upload %s: %s", id,
                                            strerror(errno));
        goto fail;
    }
    if (flock(up->fd, LOCK_EX | LOCK_NB) != 0) {
        s = errno == EWOULDBLOCK
                ? mi_index_fail(idx, MI_EBUSY, "upload %s is in use", id)
                : mi_index_fail(idx, mi_status_from_errno(errno),
                                "cannot lock upload %s: %s", id,
                                strerror(errno));
        goto fail;
    }
    /* Removed between our open and our lock? */
    if (fstat(up->fd, &sb) != 0 ||
        fstatat(up->dirfd, part, &named, AT_SYMLINK_NOFOLLOW) != 0 ||
        sb.st_dev != named.st_dev || sb.st_ino != named.st_ino ||
        !S_ISREG(sb.st_mode)) {
        s = MI_ENOTFOUND;
        goto fail;
    }
    s = read_info(idx, up->dirfd, id, &up->m);
    if (s != MI_OK)
        goto fail;
    s = check_owner(idx, &up->m, id, owner);
    if (s != MI_OK)
        goto fail;
    if (part_offset(up->fd, &sb) < (uint64_t)sb.st_size) {
        /* Cut short by a crash: back to what was synced. */
        if (ftruncate(up->fd, (off_t)part_offset(up->fd, &sb)) != 0 ||
            fremovexattr(up->fd, SYNCED_XATTR) != 0 || fsync(up->fd) != 0 ||
            fstat(up->fd, &sb) != 0) {
            s = mi_index_fail(idx, mi_status_from_io_errno(errno),
                              "cannot cut upload %s back to its synced "
                              "size: %s", id, strerror(errno));
            goto fail;
        }
    }
    up->size = up->synced = (uint64_t)sb.st_size;
    up->mtime = (int64_t)sb.st_mtim.tv_sec;
    if (now > 0 && expires_at(idx, up->mtime) <= now) {
        remove_locked(up);
        free_handle(up);
        return mi_index_fail(idx, MI_ENOTFOUND, "upload %s has expired", id);
    }
    up->hasher = cache_take(idx, id, &sb, &up->hashed);
    if (!up->hasher && up->size == 0 && mi_hasher_new(&up->hasher) != MI_OK)
        up->hasher = NULL;     /* hashed at the end instead */
    *out = up;
    return MI_OK;

fail:
    if (s == MI_ENOTFOUND)
        mi_index_fail(idx, s, "no upload %s", id);
    free_handle(up);
    return s;
}

mi_status mi_upload_open(mi_upload **out, mi_index *idx, const char *id,
                         const char *owner)
{
    if (!out)
        return MI_EINVAL;
    *out = NULL;
    if (!idx)
        return MI_EINVAL;
    return open_locked(out, idx, id, owner, (int64_t)time(NULL));
}

mi_status mi_upload_stat(mi_upload_info *info, mi_index *idx, const char *id,
                         const char *owner)
{
    char part[NAME_LEN];
    upload_meta m;
    struct stat sb;
    uint64_t offset = 0;
    mi_status s = MI_OK;
    int dirfd;

    if (!info || info->version < 1 || !idx)
        return MI_EINVAL;
    if (!valid_id(id))
        return mi_index_fail(idx, MI_ENOTFOUND, "no upload has that id");
    dirfd = open_state_dir(idx, false, &s);
    if (dirfd < 0)
        return s == MI_ENOTFOUND ? mi_index_fail(idx, s, "no upload %s", id) : s;
    file_name(part, id, ".part");
    s = read_info(idx, dirfd, id, &m);
    if (s == MI_OK) {
        int fd = openat(dirfd, part, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

        if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
            s = MI_ENOTFOUND;
        else
            offset = part_offset(fd, &sb);
        if (fd >= 0)
            close(fd);
    }
    close(dirfd);
    if (s == MI_ENOTFOUND)
        return mi_index_fail(idx, s, "no upload %s", id);
    if (s == MI_OK)
        s = check_owner(idx, &m, id, owner);
    if (s != MI_OK)
        return s;
    if (expires_at(idx, (int64_t)sb.st_mtim.tv_sec) <= (int64_t)time(NULL))
        return mi_index_fail(idx, MI_ENOTFOUND, "upload %s has expired", id);
    fill_info(info, &m, offset, expires_at(idx, (int64_t)sb.st_mtim.tv_sec));
    return MI_OK;
}

mi_status mi_upload_info_get(mi_upload_info *info, const mi_upload *up)
{
    if (!info || info->version < 1 || !up)
        return MI_EINVAL;
    if (up->gone)
        return mi_index_fail(up->idx, MI_ENOTFOUND, "upload %s is gone",
                             up->id);
    fill_info(info, &up->m, up->size, expires_at(up->idx, up->mtime));
    return MI_OK;
}

uint64_t mi_upload_offset(const mi_upload *up)
{
    return up ? up->size : 0;
}

mi_status mi_upload_delete(mi_index *idx, const char *id, const char *owner)
{
    mi_upload *up = NULL;
    mi_status s;

    if (!idx)
        return MI_EINVAL;
    s = open_locked(&up, idx, id, owner, 0);
    if (s != MI_OK)
        return s;
    remove_locked(up);
    free_handle(up);
    return MI_OK;
}

void mi_upload_close(mi_upload *up)
{
    free_handle(up);
}

/* ---------------------------------------------------------------------- */
/* Bytes                                                                   */

/* Back to `offset` bytes (not below the file's): after a failed write or
 * sync, or a rollback. */
static mi_status truncate_to(mi_upload *up, uint64_t offset)
{
    uint64_t old = up->size;

    if (offset >= old)
        return MI_OK;
    if (ftruncate(up->fd, (off_t)offset) != 0)
        return mi_index_fail(up->idx, mi_status_from_io_errno(errno),
                             "cannot cut upload %s back: %s", up->id,
                             strerror(errno));
    up->size = offset;
    if (up->synced > offset)
        up->synced = offset;
    if (up->marked && up->size == up->synced &&
        fremovexattr(up->fd, SYNCED_XATTR) == 0)
        up->marked = false;    /* nothing unsynced left */
    if (up->m.length == MI_UPLOAD_LENGTH_DEFERRED)
        unreserve(up->idx, old - offset, false);
    stop_pipe(up);
    if (up->hasher && up->hashed > offset) {
        /* A hash cannot go back: the commit reads it all again. */
        mi_hasher_free(up->hasher);
        up->hasher = NULL;
        up->hashed = 0;
    }
    return MI_OK;
}

static mi_status usable(const mi_upload *up)
{
    if (up->gone)
        return mi_index_fail(up->idx, MI_ENOTFOUND, "upload %s is gone",
                             up->id);
    return MI_OK;
}

mi_status mi_upload_write(mi_upload *up, uint64_t offset, const void *buf,
                          size_t len)
{
    const unsigned char *p = buf;
    uint64_t start, done = 0;
    mi_status s;

    if (!up || (!buf && len))
        return MI_EINVAL;
    s = usable(up);
    if (s != MI_OK)
        return s;
    if (offset != up->size)
        return mi_index_fail(up->idx, MI_EEXISTS,
                             "upload %s is at offset %" PRIu64 ", not %" PRIu64,
                             up->id, up->size, offset);
    if (len == 0)
        return MI_OK;
    start = up->size;
    if (up->m.length != MI_UPLOAD_LENGTH_DEFERRED) {
        if (len > up->m.length - start)
            return mi_index_fail(up->idx, MI_ETOOBIG,
                                 "%zu bytes at %" PRIu64 " go past the upload's "
                                 "length, %" PRIu64, len, start, up->m.length);
    } else {
        uint64_t cap = up->m.max_bytes ? up->m.max_bytes
                                       : mi_index_upload_partial_max(up->idx);

        if (len > cap || start > cap - len)
            return mi_index_fail(up->idx, MI_ETOOBIG,
                                 "upload larger than %" PRIu64 " bytes", cap);
        s = reserve(up->idx, len, false);
        if (s != MI_OK)
            return s;
    }
    mark_unsynced(up);
    while (done < len) {
        ssize_t w = pwrite(up->fd, p + done, len - done, (off_t)(start + done));

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int err = w < 0 ? errno : EIO;

            if (up->m.length == MI_UPLOAD_LENGTH_DEFERRED)
                unreserve(up->idx, len, false);
            if (ftruncate(up->fd, (off_t)start) != 0) {
                /* Whatever is on disk past start is the client's bytes,
                 * or a part of them: the size says where to go on. */
            }
            return mi_index_fail(up->idx, mi_status_from_io_errno(err),
                                 "cannot write upload %s: %s", up->id,
                                 strerror(err));
        }
        done += (uint64_t)w;
    }
    /* Written out from the last sync on (or less after a rollback). */
    if (up->behind < up->synced || up->behind > start)
        up->behind = up->synced;
    mi_write_behind(up->fd, &up->behind, start + len);
    if (up->hasher && up->hashed == start) {
        /* Large chunks are hashed on a thread, overlapping the writes
         * (and syncs) that follow, as mi_store_write does. */
        up->fed += len;
        if (!up->pipe && up->fed > MI_HASH_PIPE_START)
            up->pipe = mi_hash_pipe_start(up->hasher);
        if (up->pipe) {
            mi_hash_pipe_feed(up->pipe, p, len);
            up->hashed += len;
        } else if (mi_hasher_update(up->hasher, p, len) == MI_OK) {
            up->hashed += len;
        } else {
            mi_hasher_free(up->hasher);
            up->hasher = NULL;
            up->hashed = 0;
        }
    }
    up->size = start + len;
    up->mtime = (int64_t)time(NULL);
    return MI_OK;
}

mi_status mi_upload_sync(mi_upload *up)
{
    mi_status s;

    if (!up)
        return MI_EINVAL;
    s = usable(up);
    if (s != MI_OK)
        return s;
    if (up->synced == up->size && !up->marked)
        return MI_OK;
    if (sync_part(up) != 0) {
        int err = errno;

        /* After a failed sync nothing unsynced can be trusted. */
        truncate_to(up, up->synced);
        return mi_index_fail(up->idx, mi_status_from_io_errno(err),
                             "cannot sync upload %s: %s", up->id,
                             strerror(err));
    }
    up->synced = up->size;
    return MI_OK;
}

mi_status mi_upload_rollback(mi_upload *up)
{
    mi_status s;

    if (!up)
        return MI_EINVAL;
    s = usable(up);
    if (s != MI_OK)
        return s;
    return truncate_to(up, up->synced);
}

mi_status mi_upload_append(mi_upload *up, uint64_t offset, const void *buf,
                           size_t len)
{
    mi_status s;

    if (!up)
        return MI_EINVAL;
    s = mi_upload_write(up, offset, buf, len);
    if (s != MI_OK)
        return s;
    if ((up->synced != up->size || up->marked) && sync_part(up) != 0) {
        int err = errno;

        truncate_to(up, offset);
        return mi_index_fail(up->idx, mi_status_from_io_errno(err),
                             "cannot sync upload %s: %s", up->id,
                             strerror(err));
    }
    up->synced = up->size;
    return MI_OK;
}

mi_status mi_upload_set_length(mi_upload *up, uint64_t length)
{
    uint64_t cap;
    mi_status s;

    if (!up)
        return MI_EINVAL;
    s = usable(up);
    if (s != MI_OK)
        return s;
    if (length == MI_UPLOAD_LENGTH_DEFERRED)
        return mi_index_fail(up->idx, MI_EINVAL, "no length given");
    if (up->m.length != MI_UPLOAD_LENGTH_DEFERRED)
        return length == up->m.length
                   ? MI_OK
                   : mi_index_fail(up->idx, MI_EINVAL,
                                   "upload %s already has a length, %" PRIu64,
                                   up->id, up->m.length);
    if (length < up->size)
        return mi_index_fail(up->idx, MI_EINVAL,
                             "a length of %" PRIu64 " is below the %" PRIu64
                             " bytes received", length, up->size);
    cap = up->m.max_bytes && up->m.max_bytes < mi_index_upload_partial_max(up->idx)
              ? up->m.max_bytes
              : mi_index_upload_partial_max(up->idx);
    if (length > cap)
        return mi_index_fail(up->idx, MI_ETOOBIG,
                             "upload larger than %" PRIu64 " bytes", cap);
    s = reserve(up->idx, length - up->size, false);
    if (s != MI_OK)
        return s;
    up->m.length = length;
    s = write_info(up->idx, up->dirfd, up->id, &up->m);
    if (s != MI_OK) {
        up->m.length = MI_UPLOAD_LENGTH_DEFERRED;
        unreserve(up->idx, length - up->size, false);
    }
    return s;
}

/* ---------------------------------------------------------------------- */
/* Finish                                                                  */

mi_status mi_upload_finish(mi_upload *up)
{
    char rel[sizeof(STATE_DIR) + NAME_LEN];
    char part[NAME_LEN];
    mi_store *st = NULL;
    const char *slash;
    mi_status s;

    if (!up)
        return MI_EINVAL;
    if (up->finished)
        return mi_index_fail(up->idx, MI_EINVAL, "upload %s already finished",
                             up->id);
    s = usable(up);
    if (s != MI_OK)
        return s;
    if (up->m.length == MI_UPLOAD_LENGTH_DEFERRED || up->size != up->m.length)
        return mi_index_fail(up->idx, MI_EINVAL,
                             "upload %s is not complete: %" PRIu64 " of %s bytes",
                             up->id, up->size,
                             up->m.length == MI_UPLOAD_LENGTH_DEFERRED
                                 ? "an unknown number of"
                                 : "its");
    s = mi_upload_sync(up);
    if (s != MI_OK)
        return s;
    file_name(part, up->id, ".part");
    mi_bufprintf(rel, sizeof(rel), STATE_DIR "/%s", part);
    stop_pipe(up);
    s = mi_store_adopt(&st, up->idx, up->m.name, up->fd, rel, up->hasher,
                       up->hashed, up->m.has_sha ? up->m.sha : NULL);
    up->hasher = NULL;         /* the store's now */
    up->hashed = 0;
    if (s == MI_OK)
        s = mi_store_commit(st);
    if (s == MI_OK) {
        mi_bufprintf(up->hex, sizeof(up->hex), "%s", mi_store_hash_hex(st));
        mi_bufprintf(up->path, sizeof(up->path), "%s", mi_store_path(st));
        slash = strrchr(up->path, '/');
        up->filename = slash ? slash + 1 : up->path;
        up->created = mi_store_created(st);
        up->finished = true;
    }
    mi_store_free(st);
    /* Kept or refused for good: the upload is over.  Anything else (a
     * full disk, an I/O error) may be tried again. */
    if (s == MI_OK || s == MI_EFORMAT || s == MI_EINVAL)
        remove_locked(up);
    return s;
}

const char *mi_upload_hash_hex(const mi_upload *up)
{
    return up && up->finished ? up->hex : "";
}

const char *mi_upload_path(const mi_upload *up)
{
    return up && up->finished ? up->path : "";
}

const char *mi_upload_filename(const mi_upload *up)
{
    return up && up->finished ? up->filename : "";
}

int mi_upload_created(const mi_upload *up)
{
    return up && up->finished ? up->created : 0;
}

/* ---------------------------------------------------------------------- */
/* Sweep                                                                   */

/* Remove the lone file `name` if it is older than ORPHAN_AGE_S and, for a
 * .part, nobody holds it. */
static bool remove_orphan(int dirfd, const char *name, bool lock, int64_t now)
{
    struct stat sb;
    bool removed = false;
    int fd;

    if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
        (int64_t)sb.st_mtim.tv_sec + ORPHAN_AGE_S > now)
        return false;
    if (!lock)
        return unlinkat(dirfd, name, 0) == 0;
    fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return false;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
        removed = unlinkat(dirfd, name, 0) == 0;
    close(fd);
    return removed;
}

mi_status mi_upload_sweep(mi_index *idx, int64_t now, uint64_t *removed)
{
    mi_status s = MI_OK;
    struct dirent *de;
    uint64_t n = 0;
    int dirfd;
    DIR *d;

    if (removed)
        *removed = 0;
    if (!idx)
        return MI_EINVAL;
    if (now <= 0)
        now = (int64_t)time(NULL);
    ensure_counted(idx);
    dirfd = open_state_dir(idx, false, &s);
    if (dirfd < 0)
        return s == MI_ENOTFOUND ? MI_OK : s;
    d = fdopendir(dirfd);
    if (!d) {
        close(dirfd);
        return mi_index_fail(idx, mi_status_from_errno(errno),
                             "cannot list %s: %s", STATE_DIR, strerror(errno));
    }
    while ((de = readdir(d)) != NULL) {
        char id[MI_UPLOAD_ID_LEN + 1], other[NAME_LEN];
        const char *suffix = de->d_name + MI_UPLOAD_ID_LEN;
        mi_upload *up = NULL;
        struct stat sb;

        if (strlen(de->d_name) < MI_UPLOAD_ID_LEN)
            continue;
        memcpy(id, de->d_name, MI_UPLOAD_ID_LEN);
        id[MI_UPLOAD_ID_LEN] = '\0';
        if (!valid_id(id))
            continue;
        if (strcmp(suffix, ".info") == 0) {
            file_name(other, id, ".part");
            if (fstatat(dirfd, other, &sb, AT_SYMLINK_NOFOLLOW) != 0 &&
                errno == ENOENT) {
                unlinkat(dirfd, de->d_name, 0);   /* a removal cut short */
                continue;
            }
            if (open_locked(&up, idx, id, NULL, 0) != MI_OK)
                continue;                         /* busy, or unreadable */
            if (up->m.length == up->size && up->size > 0) {
                /* Complete but never finished (the program stopped
                 * between the last sync and the finish): the client was
                 * told it has sent everything, so it is kept, not lost. */
                mi_upload_finish(up);
                n += up->gone;
            } else if (expires_at(idx, up->mtime) <= now) {
                remove_locked(up);
                n++;
            }
            free_handle(up);
        } else if (strcmp(suffix, ".part") == 0) {
            file_name(other, id, ".info");
            if (fstatat(dirfd, other, &sb, AT_SYMLINK_NOFOLLOW) != 0 &&
                errno == ENOENT)
                remove_orphan(dirfd, de->d_name, true, now);
        } else if (strcmp(suffix, ".info.tmp") == 0) {
            remove_orphan(dirfd, de->d_name, false, now);
        }
    }
    closedir(d);

    /* Count the reservations again from the disk: other handles and
     * processes may have changed it. */
    {
        mi_uploads *u = mi_index_uploads(idx);

        pthread_mutex_lock(&u->lock);
        u->counted = false;
        /* Creations under way are not on disk yet (one that has just
         * written its .info is counted twice until it says so: the cap
         * errs on the safe side). */
        u->reserved = u->creating_bytes;
        u->count = u->creating;
        count_locked(idx, u);
        pthread_mutex_unlock(&u->lock);
    }
    mi_index_clear_error(idx);
    if (removed)
        *removed = n;
    return MI_OK;
}
