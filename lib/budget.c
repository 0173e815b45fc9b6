/*
 * budget.c - the memory that decoding may use, for the whole handle.
 *
 * Every thumbnail decode reserves what it will allocate (decoder state,
 * rows, the shrunk image) before it allocates it, and gives it back when
 * done.  Uploads and scan workers that would go over the budget wait for
 * others to finish instead of multiplying it: with 64 request threads and
 * a worker per core, the decoders together never hold more than the
 * budget.  A single decode that needs more than the whole budget can never
 * run: MI_ETOOBIG at once.
 */
#include "mi-private.h"

#include <pthread.h>
#include <stdlib.h>

struct mi_budget {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    uint64_t total, used;
};

mi_status mi_budget_new(mi_budget **out, uint64_t total)
{
    mi_budget *b = calloc(1, sizeof(*b));

    *out = NULL;
    if (!b)
        return MI_ENOMEM;
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->freed, NULL);
    b->total = total;
    *out = b;
    return MI_OK;
}

void mi_budget_free(mi_budget *b)
{
    if (!b)
        return;
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->freed);
    free(b);
}

mi_status mi_budget_acquire(mi_budget *b, uint64_t bytes)
{
    if (!b || bytes == 0)
        return MI_OK;
    if (bytes > b->total)
        return MI_ETOOBIG;
    pthread_mutex_lock(&b->lock);
    while (b->total - b->used < bytes)
        pthread_cond_wait(&b->freed, &b->lock);
    b->used += bytes;
    pthread_mutex_unlock(&b->lock);
    return MI_OK;
}

void mi_budget_release(mi_budget *b, uint64_t bytes)
{
    if (!b || bytes == 0)
        return;
    pthread_mutex_lock(&b->lock);
    b->used = bytes > b->used ? 0 : b->used - bytes;
    pthread_cond_broadcast(&b->freed);
    pthread_mutex_unlock(&b->lock);
}

uint64_t mi_budget_total(const mi_budget *b)
{
    return b ? b->total : 0;
}

uint64_t mi_budget_used(mi_budget *b)
{
    uint64_t n;

    if (!b)
        return 0;
    pthread_mutex_lock(&b->lock);
    n = b->used;
    pthread_mutex_unlock(&b->lock);
    return n;
}
