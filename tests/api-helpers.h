/*
 * api-helpers.h - small helpers the public-API tests share.
 */
#ifndef MI_API_HELPERS_H
#define MI_API_HELPERS_H

#include <mediaindex.h>

#include "fixtures.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Open an index on dir with `threads` workers (0 = default), printing
 * the reason as a TAP comment on failure. */
static inline mi_index *ta_open(const char *dir, unsigned int threads)
{
    mi_index_options opts = MI_INDEX_OPTIONS_INIT;
    char err[512] = "";
    mi_index *idx = NULL;
    mi_status s;

    opts.threads = threads;
    s = mi_index_open(&idx, dir, &opts, err, sizeof(err));
    if (s != MI_OK)
        printf("# open %s: %s: %s\n", dir, mi_strerror(s), err);
    return idx;
}

/* The SHA-256 of dir/rel (zeros if it cannot be read). */
static inline void ta_hash_of(uint8_t out[MI_HASH_SIZE], const char *dir,
                              const char *rel)
{
    char *p = fx_path(dir, rel);

    if (!p || mi_hash_file(out, p) != MI_OK)
        memset(out, 0, MI_HASH_SIZE);
    free(p);
}

#endif
