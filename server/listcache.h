/*
 * listcache.h - GET /list served from a file rendered once per generation
 * (listcache.c).
 */
#ifndef MS_LISTCACHE_H
#define MS_LISTCACHE_H

#include "server.h"

struct list_cache;

/* Starts the renderer thread; NULL (and a line on stderr) when the cache
 * cannot be kept: /list then streams from the catalog, as it always can.
 * Files live in root/.mediaindex/cache/. */
struct list_cache *list_cache_start(mi_index *idx, const char *root);
/* Stops and frees it (NULL is fine). */
void list_cache_stop(struct list_cache *lc);
/* Answers a plain GET or HEAD /list from the file of the current
 * generation (gzip when the client takes it); false, having sent nothing,
 * when there is none yet. */
bool list_cache_send(struct list_cache *lc, struct req *r);
/* GET /api/timeline of the whole library at generation gen, counted as
 * the list was rendered: a copy to free(), or NULL when there is none of
 * gen (or no memory). */
char *list_cache_timeline(struct list_cache *lc, uint64_t gen);

#endif
