/*
 * hot.c - recently served small files, in memory (see hot.h).
 *
 * Serving a thumbnail from its file took open, fstat, pread and close,
 * four of the eleven system calls of a request; from here it takes one
 * stat, which also keeps the answers exactly those of the files: a
 * thumbnail the sweep removed is not served, one made again is read
 * again.  The table is set-associative (HOT_SETS sets of HOT_WAYS, least
 * recently used out) under one mutex held only to find or place an entry;
 * the bytes are reference counted, so an entry replaced while a request
 * still sends it is freed by the last one to let go.
 */
#include "hot.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HOT_SETS 64
#define HOT_WAYS 4
#define HOT_REL_MAX 112           /* ".thumbnails/<64 hex>-preview.jpg" fits */

struct hot_buf {
    struct hot_file f;            /* first: hot_put gets it back */
    atomic_uint refs;             /* the table's one, and each user's */
    /* The response head in room's last head_len bytes (hot_head):
     * HEAD_NONE, HEAD_BUSY while one request writes it, HEAD_NEVER, or
     * HEAD_READY + the variant it is for. */
    atomic_uint head_state;
    size_t head_len;
    uint8_t room[HOT_HEAD_MAX];
    uint8_t data[];
};
enum { HEAD_NONE, HEAD_BUSY, HEAD_NEVER, HEAD_READY };

struct ident {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
};

struct hot_entry {
    char rel[HOT_REL_MAX];        /* "" when free */
    struct ident id;
    struct hot_buf *buf;
    uint64_t used;                /* tick of the last use */
};

struct hot {
    pthread_mutex_t lock;
    size_t max_bytes, max_file, bytes;
    uint64_t tick;
    char root[PATH_MAX];
    struct hot_entry e[HOT_SETS][HOT_WAYS];
};

static void ident_of(struct ident *id, const struct stat *sb)
{
    memset(id, 0, sizeof(*id));
    id->dev = sb->st_dev;
    id->ino = sb->st_ino;
    id->size = sb->st_size;
    id->mtime = sb->st_mtim;
    id->ctime = sb->st_ctim;
}

static bool ident_same(const struct ident *a, const struct ident *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec &&
           a->mtime.tv_nsec == b->mtime.tv_nsec &&
           a->ctime.tv_sec == b->ctime.tv_sec &&
           a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static unsigned set_of(const char *rel)
{
    uint32_t x = 2166136261u;     /* FNV-1a */

    for (; *rel; rel++)
        x = (x ^ (unsigned char)*rel) * 16777619u;
    return x % HOT_SETS;
}

hot *hot_new(const char *root, size_t max_bytes, size_t max_file)
{
    hot *h;

    if (strlen(root) >= sizeof(h->root) - HOT_REL_MAX - 2)
        return NULL;
    h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    if (pthread_mutex_init(&h->lock, NULL) != 0) {
        free(h);
        return NULL;
    }
    snprintf(h->root, sizeof(h->root), "%s", root);
    h->max_bytes = max_bytes;
    h->max_file = max_file < max_bytes ? max_file : max_bytes;
    return h;
}

void hot_put(hot *h, const struct hot_file *f)
{
    struct hot_buf *b = (struct hot_buf *)f;

    (void)h;
    if (b && atomic_fetch_sub(&b->refs, 1) == 1)
        free(b);
}

/* Under lock: drop an entry, its bytes freed once nobody sends them. */
static void evict(hot *h, struct hot_entry *e)
{
    if (!e->rel[0])
        return;
    h->bytes -= e->buf->f.len;
    hot_put(h, &e->buf->f);
    e->buf = NULL;
    e->rel[0] = '\0';
}

void hot_free(hot *h)
{
    if (!h)
        return;
    for (unsigned s = 0; s < HOT_SETS; s++)
        for (unsigned w = 0; w < HOT_WAYS; w++)
            evict(h, &h->e[s][w]);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

static struct hot_entry *find(hot *h, const char *rel)
{
    struct hot_entry *set = h->e[set_of(rel)];

    for (unsigned w = 0; w < HOT_WAYS; w++)
        if (set[w].rel[0] && strcmp(set[w].rel, rel) == 0)
            return &set[w];
    return NULL;
}

const struct hot_file *hot_get(hot *h, const char *rel)
{
    char path[PATH_MAX];
    struct hot_entry *e;
    struct hot_buf *b;
    struct ident was, now;
    struct stat sb;

    int n;

    if (!h || strlen(rel) >= HOT_REL_MAX)
        return NULL;
    n = snprintf(path, sizeof(path), "%s/%s", h->root, rel);
    if (n < 0 || (size_t)n >= sizeof(path))
        return NULL;
    pthread_mutex_lock(&h->lock);
    e = find(h, rel);
    if (!e) {
        pthread_mutex_unlock(&h->lock);
        return NULL;
    }
    b = e->buf;
    atomic_fetch_add(&b->refs, 1);
    was = e->id;
    e->used = ++h->tick;
    pthread_mutex_unlock(&h->lock);

    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
        ident_of(&now, &sb);
        if (ident_same(&was, &now))
            return &b->f;
    }
    /* Gone or changed: forget it, unless another request already has. */
    pthread_mutex_lock(&h->lock);
    e = find(h, rel);
    if (e && e->buf == b)
        evict(h, e);
    pthread_mutex_unlock(&h->lock);
    hot_put(h, &b->f);
    return NULL;
}

const struct hot_file *hot_load(hot *h, const char *rel, int fd)
{
    struct hot_entry *set, *e;
    struct hot_buf *b;
    struct stat sb;
    size_t len, got = 0;

    if (!h || strlen(rel) >= HOT_REL_MAX || fstat(fd, &sb) != 0 ||
        !S_ISREG(sb.st_mode) || sb.st_size < 0 ||
        (uint64_t)sb.st_size > h->max_file)
        return NULL;
    len = (size_t)sb.st_size;
    b = malloc(sizeof(*b) + (len ? len : 1));
    if (!b)
        return NULL;
    while (got < len) {
        ssize_t n = pread(fd, b->data + got, len - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got != len) {             /* shrank meanwhile */
        free(b);
        return NULL;
    }
    b->f.len = len;
    b->f.data = b->data;
    atomic_init(&b->refs, 2);     /* the table's and the caller's */
    atomic_init(&b->head_state, HEAD_NONE);
    b->head_len = 0;

    pthread_mutex_lock(&h->lock);
    e = find(h, rel);
    if (!e) {                     /* a free way, else the set's oldest */
        set = h->e[set_of(rel)];
        e = &set[0];
        for (unsigned w = 0; w < HOT_WAYS && e->rel[0]; w++)
            if (!set[w].rel[0] || set[w].used < e->used)
                e = &set[w];
    }
    evict(h, e);
    /* Over the budget: the oldest anywhere go first. */
    while (h->bytes + len > h->max_bytes) {
        struct hot_entry *old = NULL;

        for (unsigned s = 0; s < HOT_SETS; s++)
            for (unsigned w = 0; w < HOT_WAYS; w++)
                if (h->e[s][w].rel[0] && (!old || h->e[s][w].used < old->used))
                    old = &h->e[s][w];
        if (!old)
            break;
        evict(h, old);
    }
    snprintf(e->rel, sizeof(e->rel), "%s", rel);
    ident_of(&e->id, &sb);
    e->buf = b;
    e->used = ++h->tick;
    h->bytes += len;
    pthread_mutex_unlock(&h->lock);
    return &b->f;
}

size_t hot_head(const struct hot_file *f, unsigned variant,
                size_t (*build)(char *buf, size_t cap, void *arg), void *arg)
{
    struct hot_buf *b = (struct hot_buf *)f;
    unsigned want = HEAD_READY + variant, st;
    char head[HOT_HEAD_MAX];
    size_t n;

    st = atomic_load_explicit(&b->head_state, memory_order_acquire);
    if (st == want)
        return b->head_len;
    if (st != HEAD_NONE ||
        !atomic_compare_exchange_strong(&b->head_state, &st, HEAD_BUSY))
        return 0;
    n = build(head, sizeof(head), arg);
    if (n == 0 || n > sizeof(head)) {
        atomic_store(&b->head_state, HEAD_NEVER);
        return 0;
    }
    memcpy(b->room + sizeof(b->room) - n, head, n);
    b->head_len = n;
    atomic_store_explicit(&b->head_state, want, memory_order_release);
    return n;
}
