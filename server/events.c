/*
 * events.c - GET /api/events: Server-Sent Events for the gallery and any
 * client that mirrors the library.
 *
 *   event: hello    data: {"token":"T"}   on connecting
 *   event: change   data: {"token":"T"}   the catalog changed: ask
 *                                         /api/changes from your token
 *   : keep-alive                          every 25 s, so that proxies and
 *                                         the client see the line alive
 *
 * The stream watches the index's generation (an atomic read, no query)
 * twice a second and reads the change token only when it moved; a burst
 * of commits is one event per half second at most.  Each stream holds a
 * request thread, so at most EVENT_STREAMS_MAX are open at once (503 with
 * Retry-After beyond); a stream ends when the client goes or the server
 * stops.
 */
#include "server.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define EVENT_STREAMS_MAX 64
#define EVENT_POLL_MS 500
#define EVENT_KEEPALIVE_S 25

static bool send_event(struct req *r, const char *name, uint64_t token)
{
    char buf[160];
    int n = snprintf(buf, sizeof(buf),
                     "event: %s\ndata: {\"token\":\"%" PRIu64 "\"}\n\n",
                     name, token);

    if (mg_send_chunk(r->conn, buf, (unsigned int)n) <= 0)
        return false;
    r->bytes += (uint64_t)n;
    return true;
}

void route_events(struct req *r)
{
    struct server *srv = r->srv;
    uint64_t gen, token = 0, now_token;
    double last_write;
    bool ok;

    if (atomic_fetch_add(&srv->event_streams, 1) >= EVENT_STREAMS_MAX) {
        atomic_fetch_sub(&srv->event_streams, 1);
        send_error(r, 503, "Retry-After: 30\r\n", "too many event streams "
                   "open (%d)", EVENT_STREAMS_MAX);
        return;
    }
    gen = mi_index_generation(srv->idx);
    mi_index_change_token(srv->idx, &token);
    /* No buffering by a proxy in front (nginx honours this header). */
    send_headers(r, 200, "text/event-stream", -1,
                 "Cache-Control: no-store\r\nX-Accel-Buffering: no\r\n");
    if (r->head) {
        atomic_fetch_sub(&srv->event_streams, 1);
        return;
    }
    r->close = true;   /* a stream is not a keep-alive connection */
    ok = mg_send_chunk(r->conn, "retry: 3000\n", 12) > 0 &&
         send_event(r, "hello", token);
    last_write = now_mono();
    while (ok && !atomic_load(&srv->closing)) {
        struct timespec ts = { 0, EVENT_POLL_MS * 1000000L };
        uint64_t g;

        nanosleep(&ts, NULL);
        g = mi_index_generation(srv->idx);
        if (g != gen) {
            gen = g;
            if (mi_index_change_token(srv->idx, &now_token) == MI_OK &&
                now_token != token) {
                token = now_token;
                ok = send_event(r, "change", token);
                last_write = now_mono();
            }
        } else if (now_mono() - last_write >= EVENT_KEEPALIVE_S) {
            ok = mg_send_chunk(r->conn, ": keep-alive\n\n", 14) > 0;
            last_write = now_mono();
        }
    }
    if (ok)
        mg_send_chunk(r->conn, "", 0);
    atomic_fetch_sub(&srv->event_streams, 1);
}
