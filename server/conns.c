/*
 * conns.c - the connections: which are in a request, and a reaper for the
 * ones that would hold a thread for nothing.
 *
 * civetweb gives one worker thread to each connection, for as long as the
 * connection is open, and offers no way to reach the sockets.  So we find
 * them ourselves: every connected socket on one of our listening ports
 * (/proc/self/fd, getsockname, getpeername).  A peer is "in a request"
 * from handle_request's start to its end (conns_enter/conns_leave).
 *
 * The reaper looks at them twice a second and shuts down:
 *  - a connection that has not been in a request for HEADER_DEADLINE_S:
 *    headers trickled byte by byte (civetweb's own request timeout counts
 *    only silences, so a slow sender is never cut off);
 *  - beyond OLD_IDLE_PER_ADDR connections of one address that have been
 *    out of a request for over a second (keep-alive connections between
 *    requests are younger than that, or civetweb closes them at 2 s): 500
 *    slow connections from one host no longer shut everybody out.  A
 *    --trusted-proxy peer is exempt: its sockets carry many clients (nginx
 *    keeps a pool of upstream keep-alive connections, and a reset one
 *    fails a client's request), it bounds its own connections, and it
 *    sends nothing upstream before a client's headers are complete, so a
 *    slow client is the proxy's to cut off, not ours;
 *  - an upload whose body arrives slower than MIN_BODY_RATE after
 *    SLOW_GRACE_S: its read side is shut, so the handler's read ends, and
 *    it answers 408 (conns_too_slow).
 * Sockets are known by their peer (getpeername); the per-address cap on
 * uploads counts the client_address() of each request instead, so that
 * clients behind a trusted proxy have one each.
 * And at stop, conns_close_idle ends every connection between requests at
 * once (a gallery left open held SIGTERM for 2 s).
 */
#include "server.h"

#include <dirent.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define HEADER_DEADLINE_S 10.0
#define OLD_IDLE_S 1.0
#define OLD_IDLE_PER_ADDR 8
#define MIN_BODY_RATE 4096.0      /* bytes per second, on average */
#define SLOW_GRACE_S 15.0
#define REAP_PERIOD_MS 500

/* A request's peer, as getpeername() gives it: address and port. */
static bool peer_of(const struct mg_request_info *ri, struct ip_addr *addr,
                    uint16_t *port)
{
    *port = (uint16_t)ri->remote_port;
    return ip_parse(ri->remote_addr, strlen(ri->remote_addr), addr);
}

/* A socket address (IPv4 or IPv6) as ours; false for other families. */
static bool sockaddr_ip(const struct sockaddr_storage *ss, struct ip_addr *addr,
                        uint16_t *port)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        *port = ntohs(in->sin_port);
        ip_from_v4(addr, &in->sin_addr);
        return true;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        *port = ntohs(in6->sin6_port);
        memcpy(addr->b, &in6->sin6_addr, sizeof(addr->b));
        return true;
    }
    return false;
}

/* Under conn_lock: the busy entry of a peer, or NULL. */
static struct conn_peer *find_busy(struct server *srv,
                                   const struct ip_addr *addr, uint16_t port)
{
    for (size_t i = 0; i < srv->nbusy; i++)
        if (srv->busy[i].port == port && ip_equal(&srv->busy[i].addr, addr))
            return &srv->busy[i];
    return NULL;
}

unsigned conns_enter(struct server *srv, const struct mg_request_info *ri,
                     const struct ip_addr *client, bool upload)
{
    struct conn_peer p;
    unsigned uploads = 0;

    memset(&p, 0, sizeof(p));
    if (!peer_of(ri, &p.addr, &p.port))
        return 0;
    p.client = client ? *client : p.addr;
    p.started = now_mono();
    p.upload = upload;
    pthread_mutex_lock(&srv->conn_lock);
    if (srv->nbusy == srv->busy_cap) {
        size_t cap = srv->busy_cap ? 2 * srv->busy_cap : 64;
        struct conn_peer *b = realloc(srv->busy, cap * sizeof(*b));
        if (!b) {
            pthread_mutex_unlock(&srv->conn_lock);
            return 0;   /* untracked: only the stop may wait a little */
        }
        srv->busy = b;
        srv->busy_cap = cap;
    }
    srv->busy[srv->nbusy++] = p;
    if (upload)
        for (size_t i = 0; i < srv->nbusy; i++)
            uploads += srv->busy[i].upload &&
                       ip_equal(&srv->busy[i].client, &p.client);
    pthread_mutex_unlock(&srv->conn_lock);
    return uploads;
}

void conns_leave(struct server *srv, const struct mg_request_info *ri)
{
    struct ip_addr addr;
    uint16_t port;
    struct conn_peer *p;

    if (!peer_of(ri, &addr, &port))
        return;
    pthread_mutex_lock(&srv->conn_lock);
    p = find_busy(srv, &addr, port);
    if (p)
        *p = srv->busy[--srv->nbusy];
    pthread_mutex_unlock(&srv->conn_lock);
}

bool conns_progress(struct server *srv, const struct mg_request_info *ri,
                    uint64_t body)
{
    struct ip_addr addr;
    uint16_t port;
    struct conn_peer *p;
    bool slow = false;

    if (!peer_of(ri, &addr, &port))
        return false;
    pthread_mutex_lock(&srv->conn_lock);
    p = find_busy(srv, &addr, port);
    if (p) {
        p->body = body;
        slow = p->too_slow;
    }
    pthread_mutex_unlock(&srv->conn_lock);
    return slow;
}

/* ---------------------------------------------------------------------- */
/* Finding the sockets                                                     */

struct sock {
    int fd;
    struct ip_addr addr;
    uint16_t port;
    double idle_since;     /* out of a request since (monotonic) */
    bool busy;
    int cut;               /* shutdown() to do: SHUT_RD, SHUT_RDWR, or -1 */
};

static bool ours(uint16_t local_port, const struct mg_server_port *ports,
                 int nports)
{
    /* protocol: 1 IPv4, 2 IPv6, 3 both */
    for (int i = 0; i < nports; i++)
        if (ports[i].protocol >= 1 && ports[i].protocol <= 3 &&
            ports[i].port == local_port)
            return true;
    return false;
}

/* The connected sockets on our ports: a malloc'd array, *n of them. */
static struct sock *list_socks(const struct mg_server_port *ports, int nports,
                               size_t *n)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    struct sock *v = NULL;
    size_t cap = 0;

    *n = 0;
    if (!d)
        return NULL;
    while ((de = readdir(d)) != NULL) {
        struct sockaddr_storage local, peer;
        socklen_t ll = sizeof(local), pl = sizeof(peer);
        struct ip_addr laddr, paddr;
        uint16_t lport, pport;
        char *end;
        long fd = strtol(de->d_name, &end, 10);

        if (*end || end == de->d_name || fd == dirfd(d))
            continue;
        if (getsockname((int)fd, (struct sockaddr *)&local, &ll) != 0 ||
            !sockaddr_ip(&local, &laddr, &lport) ||
            !ours(lport, ports, nports) ||
            getpeername((int)fd, (struct sockaddr *)&peer, &pl) != 0 ||
            !sockaddr_ip(&peer, &paddr, &pport))
            continue;       /* not a socket of ours, or a listener */
        if (*n == cap) {
            size_t ncap = cap ? 2 * cap : 64;
            struct sock *nv = realloc(v, ncap * sizeof(*nv));
            if (!nv)
                break;
            v = nv;
            cap = ncap;
        }
        v[*n].fd = (int)fd;
        v[*n].addr = paddr;
        v[*n].port = pport;
        v[*n].idle_since = 0;
        v[*n].busy = false;
        v[*n].cut = -1;
        (*n)++;
    }
    closedir(d);
    return v;
}

/* Shut a socket down, if it still is the connection we saw. */
static void cut(const struct sock *s, int how)
{
    struct sockaddr_storage peer;
    socklen_t pl = sizeof(peer);
    struct ip_addr addr;
    uint16_t port;

    if (getpeername(s->fd, (struct sockaddr *)&peer, &pl) == 0 &&
        sockaddr_ip(&peer, &addr, &port) && ip_equal(&addr, &s->addr) &&
        port == s->port)
        shutdown(s->fd, how);
}

size_t conns_close_idle(struct server *srv, const struct mg_server_port *ports,
                        int nports)
{
    size_t n = 0, nbusy;
    struct sock *v = list_socks(ports, nports, &n);

    pthread_mutex_lock(&srv->conn_lock);
    nbusy = srv->nbusy;
    for (size_t i = 0; i < n; i++)
        if (!find_busy(srv, &v[i].addr, v[i].port))
            cut(&v[i], SHUT_RD);
    pthread_mutex_unlock(&srv->conn_lock);
    free(v);
    return nbusy;
}

/* ---------------------------------------------------------------------- */
/* The reaper                                                              */

static int by_idle_since(const void *a, const void *b)
{
    const struct sock *x = *(const struct sock *const *)a;
    const struct sock *y = *(const struct sock *const *)b;

    return x->idle_since < y->idle_since ? -1 : x->idle_since > y->idle_since;
}

/* One look at every connection (see the top of the file). */
static void reap(struct server *srv, double now)
{
    size_t n = 0, nold = 0;
    struct sock *v = list_socks(srv->ports, srv->nports, &n);
    struct sock **old = v ? malloc(n * sizeof(*old)) : NULL;

    /* When each has been out of a request since: carried over from the
     * last look at the same connection. */
    for (size_t i = 0; i < n; i++) {
        v[i].idle_since = now;
        for (size_t k = 0; k < srv->nseen; k++)
            if (srv->seen[k].fd == v[i].fd && srv->seen[k].port == v[i].port &&
                ip_equal(&srv->seen[k].addr, &v[i].addr)) {
                v[i].idle_since = srv->seen[k].idle_since;
                break;
            }
    }
    pthread_mutex_lock(&srv->conn_lock);
    for (size_t i = 0; i < n; i++) {
        struct conn_peer *p = find_busy(srv, &v[i].addr, v[i].port);

        if (p) {
            double t = now - p->started;
            v[i].busy = true;
            v[i].idle_since = now;
            if (p->upload && !p->too_slow && t > SLOW_GRACE_S &&
                (double)p->body < t * MIN_BODY_RATE) {
                p->too_slow = true;
                v[i].cut = SHUT_RD;
            }
        } else if (now - v[i].idle_since > HEADER_DEADLINE_S) {
            v[i].cut = SHUT_RDWR;
        } else if (old && now - v[i].idle_since > OLD_IDLE_S &&
                   !trusted_proxy(srv, &v[i].addr)) {
            old[nold++] = &v[i];
        }
    }
    pthread_mutex_unlock(&srv->conn_lock);
    /* The system calls outside the lock every request takes. */
    for (size_t i = 0; i < n; i++)
        if (v[i].cut >= 0)
            cut(&v[i], v[i].cut);

    /* Per address, only the newest OLD_IDLE_PER_ADDR old idle ones stay. */
    if (nold > OLD_IDLE_PER_ADDR) {
        qsort(old, nold, sizeof(*old), by_idle_since);
        for (size_t i = 0; i < nold; i++) {
            size_t newer = 0;
            for (size_t k = i + 1; k < nold; k++)
                newer += ip_equal(&old[k]->addr, &old[i]->addr);
            if (newer >= OLD_IDLE_PER_ADDR)
                cut(old[i], SHUT_RDWR);
        }
    }
    free(old);
    free(srv->seen);
    srv->seen = v;
    srv->nseen = v ? n : 0;
}

static void *reaper_main(void *arg)
{
    struct server *srv = arg;

    pthread_mutex_lock(&srv->lock);
    while (!srv->stopping) {
        struct timespec until;

        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += REAP_PERIOD_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&srv->wake, &srv->lock, &until);
        if (srv->stopping)
            break;
        pthread_mutex_unlock(&srv->lock);
        reap(srv, now_mono());
        pthread_mutex_lock(&srv->lock);
    }
    pthread_mutex_unlock(&srv->lock);
    return NULL;
}

int conns_start_reaper(struct server *srv, const struct mg_server_port *ports,
                       int nports)
{
    srv->nports = nports < 0 ? 0 : nports > 4 ? 4 : nports;
    memcpy(srv->ports, ports, (size_t)srv->nports * sizeof(*ports));
    return pthread_create(&srv->reaper, NULL, reaper_main, srv);
}

void conns_stop_reaper(struct server *srv)
{
    pthread_join(srv->reaper, NULL);
    free(srv->seen);
    srv->seen = NULL;
    srv->nseen = 0;
}
