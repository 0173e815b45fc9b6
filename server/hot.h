/*
 * hot.h - the bytes of recently served small files (thumbnails), kept in
 * memory and checked against the file with one stat before each use.
 */
#ifndef MEDIA_SERVER_HOT_H
#define MEDIA_SERVER_HOT_H

#include <stddef.h>
#include <stdint.h>

typedef struct hot hot;

/* media-server's budget: all the bytes, and the largest file kept. */
#define HOT_BYTES (16u << 20)
#define HOT_FILE_MAX (256u << 10)

/* A file's bytes as cached: shared, read-only, released with hot_put.
 * HOT_HEAD_MAX bytes of room precede data, for hot_head. */
struct hot_file {
    size_t len;
    const uint8_t *data;
};
#define HOT_HEAD_MAX 512

/* A cache of at most max_bytes in files of at most max_file each, for
 * files under root; NULL when out of memory (the server then reads every
 * file, as without one). */
hot *hot_new(const char *root, size_t max_bytes, size_t max_file);
void hot_free(hot *h);

/* The bytes of root/rel if they are cached and the file still has the
 * identity (device, inode, size, change time) it had when they were read:
 * one stat.  NULL otherwise; then the caller reads the file and may offer
 * it with hot_load.  Each non-NULL result is released with hot_put. */
const struct hot_file *hot_get(hot *h, const char *rel);
void hot_put(hot *h, const struct hot_file *f);

/* Read root/rel through fd (open on it) and keep its bytes if they fit.
 * Returns them (release with hot_put), or NULL: too large, unreadable or
 * out of memory, and then the caller sends the file itself. */
const struct hot_file *hot_load(hot *h, const char *rel, int fd);

/* A response head kept just before f->data, for one variant of the
 * answer (the first asked for: keep-alive or not, say), so that head and
 * bytes go out in one write without a copy.  Returns the length of the
 * head that precedes f->data, made by build(buf, HOT_HEAD_MAX, arg) the
 * first time; 0 when another variant is kept, or it is being made, or
 * build returned 0 (the caller then sends the bytes otherwise). */
size_t hot_head(const struct hot_file *f, unsigned variant,
                size_t (*build)(char *buf, size_t cap, void *arg), void *arg);

#endif
