/*
 * conns.c - which connections are in the middle of a request, so that a
 * stopping server can close the idle ones at once.
 *
 * civetweb gives one worker thread to each connection.  Between requests
 * a worker waits for the next one for up to keep_alive_timeout_ms, and
 * looks at civetweb's stop flag only every 2 s: an idle keep-alive
 * connection (a gallery left open) held every SIGTERM for up to 2 s.
 * civetweb offers no way to reach those sockets, so at stop we find them
 * ourselves: every connected socket on one of our listening ports whose
 * peer is not in a request gets shutdown(SHUT_RD); its worker reads end of
 * file and returns.  Requests in flight are left alone; their replies say
 * "Connection: close" (respond.c), so they end when they are done.
 */
#include "server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* A peer as getpeername() gives it: IPv4 address and port. */
static bool peer_of(const struct mg_request_info *ri, struct conn_peer *out)
{
    struct in_addr a;

    if (inet_pton(AF_INET, ri->remote_addr, &a) != 1)
        return false;
    out->addr = a.s_addr;
    out->port = (uint16_t)ri->remote_port;
    return true;
}

void conns_enter(struct server *srv, const struct mg_request_info *ri)
{
    struct conn_peer p;

    if (!peer_of(ri, &p))
        return;
    pthread_mutex_lock(&srv->conn_lock);
    if (srv->nbusy == srv->busy_cap) {
        size_t cap = srv->busy_cap ? 2 * srv->busy_cap : 64;
        struct conn_peer *b = realloc(srv->busy, cap * sizeof(*b));
        if (!b) {
            pthread_mutex_unlock(&srv->conn_lock);
            return;     /* untracked: only the stop may wait a little */
        }
        srv->busy = b;
        srv->busy_cap = cap;
    }
    srv->busy[srv->nbusy++] = p;
    pthread_mutex_unlock(&srv->conn_lock);
}

void conns_leave(struct server *srv, const struct mg_request_info *ri)
{
    struct conn_peer p;
    size_t i;

    if (!peer_of(ri, &p))
        return;
    pthread_mutex_lock(&srv->conn_lock);
    for (i = 0; i < srv->nbusy; i++) {
        if (srv->busy[i].addr == p.addr && srv->busy[i].port == p.port) {
            srv->busy[i] = srv->busy[--srv->nbusy];
            break;
        }
    }
    pthread_mutex_unlock(&srv->conn_lock);
}

static bool busy(const struct server *srv, const struct sockaddr_in *peer)
{
    size_t i;

    for (i = 0; i < srv->nbusy; i++)
        if (srv->busy[i].addr == peer->sin_addr.s_addr &&
            srv->busy[i].port == ntohs(peer->sin_port))
            return true;
    return false;
}

static bool ours(const struct sockaddr_in *local,
                 const struct mg_server_port *ports, int nports)
{
    int i;

    for (i = 0; i < nports; i++)
        if (ports[i].protocol == 1 && ports[i].port == ntohs(local->sin_port))
            return true;
    return false;
}

size_t conns_close_idle(struct server *srv, const struct mg_server_port *ports,
                        int nports)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    size_t n;

    pthread_mutex_lock(&srv->conn_lock);
    n = srv->nbusy;
    if (!d) {
        pthread_mutex_unlock(&srv->conn_lock);
        return n;
    }
    while ((de = readdir(d)) != NULL) {
        struct sockaddr_in local, peer;
        socklen_t ll = sizeof(local), pl = sizeof(peer);
        char *end;
        long fd = strtol(de->d_name, &end, 10);

        if (*end || end == de->d_name || fd == dirfd(d))
            continue;
        if (getsockname((int)fd, (struct sockaddr *)&local, &ll) != 0 ||
            local.sin_family != AF_INET || !ours(&local, ports, nports) ||
            getpeername((int)fd, (struct sockaddr *)&peer, &pl) != 0 ||
            peer.sin_family != AF_INET || busy(srv, &peer))
            continue;       /* not a socket, a listener, or in a request */
        shutdown((int)fd, SHUT_RD);
    }
    pthread_mutex_unlock(&srv->conn_lock);
    closedir(d);
    return n;
}
