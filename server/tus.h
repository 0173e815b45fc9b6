/*
 * tus.h - resumable uploads over HTTP (the tus 1.0 protocol) at
 * /api/uploads/, and POST /api/check ("which of these do you have?"),
 * both on the library's mi_upload_* and mi_index_has.
 */
#ifndef MEDIA_SERVER_TUS_H
#define MEDIA_SERVER_TUS_H

#include "server.h"

#include <pthread.h>
#include <stdbool.h>

/* The collection's path; an upload is TUS_PATH<id>. */
#define TUS_PATH "/api/uploads/"

/* A tus request on the collection (id NULL: OPTIONS, POST) or on one
 * upload (OPTIONS, HEAD, PATCH, DELETE).  The route's gate has run. */
void tus_route(struct req *r, const char *id);

/* POST /api/check. */
void check_route(struct req *r);

/* The sweeper: mi_upload_sweep() every period_s seconds, on a thread of
 * its own (expired uploads go, complete ones that were never finished are
 * finished).  The first sweep is tus_sweep(), called before the server
 * listens: a sweep counts the reservations again from the disk, and an
 * upload being created meanwhile would not be counted. */
struct tus_sweeper {
    mi_index *idx;
    unsigned int period_s;
    unsigned int trash_days;   /* the trash is purged of what is older */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop, started;
};

/* Also purges the trash of what was trashed over trash_days ago. */
void tus_sweep(mi_index *idx, unsigned int trash_days);
int tus_sweeper_start(struct tus_sweeper *sw, mi_index *idx,
                      unsigned int period_s, unsigned int trash_days);
void tus_sweeper_stop(struct tus_sweeper *sw);

#endif
