/*
 * server.h - what the parts of media-server share.
 *
 * media-server is a client of the public API (mediaindex.h), civetweb and
 * cJSON; it holds no media logic of its own.
 */
#ifndef MEDIA_SERVER_H
#define MEDIA_SERVER_H

#include <mediaindex.h>

#include "auth.h"
#include "hot.h"

#include <civetweb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* An IP address, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d). */
struct ip_addr {
    uint8_t b[16];
};
/* A network: the first `bits` bits of addr (an address: 128). */
struct ip_net {
    struct ip_addr addr;
    unsigned bits;
};
#define IP_TEXT_MAX 48             /* an address as text, NUL included */
#define TRUSTED_PROXY_MAX 32       /* entries of --trusted-proxy */

/* Everything a handler needs; it reaches them as civetweb's cbdata. */
struct server {
    mi_index *idx;
    const char *root;          /* the storage folder, absolute */
    uint64_t max_upload;       /* cap on a PUT body, bytes */
    unsigned int rescan;       /* seconds between rescans; 0 = none */
    /* Accounts (auth.c).  NULL while no store could be made (a full or
     * read-only disk): no account exists, and gate() tries again every
     * few seconds, under auth_lock. */
    _Atomic(auth *) auth;
    pthread_mutex_t auth_lock;
    double auth_retry;         /* now_mono() of the next try */
    /* --trusted-proxy: X-Forwarded-* are believed from these peers. */
    struct ip_net trusted[TRUSTED_PROXY_MAX];
    size_t ntrusted;
    unsigned int trash_days;   /* trashed items are purged after this */
    struct list_cache *list_cache; /* /list from a file (listcache.c), or
                                      NULL */
    hot *hot;                  /* thumbnails' bytes (hot.c), or NULL */

    /* Scan state for GET /status, guarded by lock. */
    pthread_mutex_t lock;
    pthread_cond_t wake;       /* wakes the scanner (stop) */
    bool stopping;
    bool scanning;
    bool scan_asked;           /* POST /api/rescan: the scanner runs one */
    atomic_int event_streams;  /* GET /api/events open now */
    double scan_started;       /* epoch seconds; 0 = never */
    double scan_finished;
    mi_scan_stats progress;    /* the running scan's counts */
    mi_scan_stats last;        /* the last finished scan's counts */
    int last_status;           /* its mi_status */
    bool have_last;
    mi_watch *watch;           /* NULL: --watch off, or it could not start */
    mi_watch_mode watch_mode;  /* what the log last said */

    /* Connections in a request (conns.c), guarded by conn_lock. */
    pthread_mutex_t conn_lock;
    struct conn_peer *busy;
    size_t nbusy, busy_cap;
    atomic_bool closing;       /* stopping: every reply closes its connection */

    /* The reaper (conns.c): its own thread, stopped with `stopping`. */
    pthread_t reaper;
    struct mg_server_port ports[4];
    int nports;
    struct sock *seen;         /* the sockets of its last look */
    size_t nseen;
};

/* A request in flight: its peer's address and port, the client's address
 * (client_address(): another one behind a trusted proxy), since when, and
 * for an upload, its body so far. */
struct conn_peer {
    struct ip_addr addr;
    uint16_t port;
    struct ip_addr client;
    bool upload;
    bool too_slow;             /* the reaper cut its body off */
    double started;            /* now_mono() */
    uint64_t body;
};

/* At most this many uploads from one client address at once (503 beyond). */
#define MAX_UPLOADS_PER_ADDR 32

/* One request in flight: what the access log line needs. */
struct req {
    struct server *srv;
    struct mg_connection *conn;
    const struct mg_request_info *ri;
    int status;          /* sent status code */
    uint64_t bytes;      /* body bytes sent */
    bool head;           /* HEAD: headers only */
    bool close;          /* the connection must close after this reply */
    /* Who asked (routes.c gate(), before any route). */
    char client[IP_TEXT_MAX];   /* the client's address (client_address()) */
    struct ip_addr client_ip;   /* the same, to compare */
    bool proxied;        /* it came through a trusted proxy */
    bool https;          /* ... which says the client used TLS */
    bool authed;         /* a session or key (not open mode) */
    enum auth_verdict verdict;
    struct auth_identity who;
    struct auth_request arq;
};

/* respond.c */
int http_status_of(mi_status s);
void send_headers(struct req *r, int status, const char *content_type,
                  int64_t content_length, const char *extra);
void send_body(struct req *r, const void *buf, size_t len);
void send_json(struct req *r, int status, const char *json, const char *extra);
void send_error(struct req *r, int status, const char *extra,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));
bool if_none_match(struct req *r, const char *etag);
void send_mi_error(struct req *r, mi_status s, const char *what);
struct cJSON;
/* Print o (consumed; NULL = out of memory) and send it. */
void send_cjson(struct req *r, int status, struct cJSON *o, const char *extra);
/* Cached bytes (hot.c), as send_file sends a file (ETag, 304), in one
 * write with a head kept beside them when it can. */
void send_hot(struct req *r, const struct hot_file *f,
              const char *content_type, const char *etag,
              const char *cache_control);
int send_file(struct req *r, int fd, const char *content_type,
              const char *etag, const char *cache_control, bool ranges);
/* The same with more header lines ("Name: value\r\n"...). */
int send_file_ex(struct req *r, int fd, const char *content_type,
                 const char *etag, const char *cache_control, bool ranges,
                 const char *more);
bool utf8_valid(const char *s);
char *utf8_replace(const char *s);
struct cJSON;
bool json_add_string(struct cJSON *o, const char *key, const char *value);
double now_epoch(void);
double now_mono(void);
void access_log(const struct req *r, double started);

/* routes.c */
int handle_request(struct mg_connection *conn, void *cbdata);
int handle_http_error(struct mg_connection *conn, int status, const char *msg);

/* list.c */
/* GET /list, keeping entries created from the local day `from` to the
 * local day `to`, both included ("" = open end; YYYY-MM-DD).  With
 * `ndjson`, newest first, one {"sha256":...,...} object per line. */
void route_list(struct req *r, const char *from, const char *to, bool ndjson);
/* The same with some metadata left out (a share link's view). */
#define LIST_NO_GPS 1u     /* no latitude/longitude */
#define LIST_NO_PATH 2u    /* file_path is the file name, no folders */
void route_list_ex(struct req *r, const char *from, const char *to,
                   bool ndjson, unsigned int hide);
/* The same with every filter: dates as above, and the search language
 * (`q`), a place (city, region or country), a city in a country; NULL or
 * "" for none.  A query that does not parse gets 400 with the reason. */
struct list_query {
    const char *from, *to;
    const char *q, *place, *city, *country;
    bool ndjson;
    unsigned int hide;
};
void route_list_query(struct req *r, const struct list_query *lq);
/* Items counted by local calendar month (GET /api/timeline). */
struct month_span {           /* [lo, hi) is local month `slot` */
    int64_t lo, hi;
    size_t slot;
};
struct months {
    uint32_t *count;          /* by year * 12 + month, years 0000-9999 */
    struct month_span *spans; /* by the date's day (MONTH_SPANS of them):
                                 dates in no order find their month
                                 without localtime and mktime */
    uint64_t total;
};
bool months_init(struct months *m);
void months_add(struct months *m, int64_t date);
/* {"months":[{"month":"YYYY-MM","count":N},...],"total":N}, newest
 * first; NULL when out of memory. */
struct cJSON *months_json(const struct months *m);
void months_free(struct months *m);
/* The whole of GET /list (JSON, every entry) through sink, 64 KiB at a
 * time (the list cache's renderer); sink returns false to stop.  MI_DONE
 * when it all went out.  m, when given, counts the entries' months. */
mi_status list_render(mi_index *idx,
                      bool (*sink)(void *ctx, const char *p, size_t n),
                      void *ctx, struct months *m);
/* GET /api/timeline: the months of the entries lq selects (from, to, q,
 * place), newest first, with their counts. */
void route_timeline(struct req *r, const struct list_query *lq);
/* GET /api/places. */
void route_places(struct req *r);
/* GET /api/items/<sha256>: one entry's /list NDJSON object, or 404. */
void route_item(struct req *r, const uint8_t hash[MI_HASH_SIZE]);
/* The entries of n hashes, NDJSON, newest first (a share link's items). */
void route_list_hashes(struct req *r, const uint8_t (*h)[32], size_t n,
                       unsigned int hide);
/* [lo, hi) in epoch seconds of the local days from..to ("" = open end);
 * false when one is not YYYY-MM-DD. */
bool list_day_range(const char *from, const char *to, int64_t *lo,
                    int64_t *hi);
/* GET /api/changes (the arguments as given, "" when absent). */
#define CHANGES_LIMIT_DEFAULT 1000u
#define CHANGES_LIMIT_MAX 10000u
void route_changes(struct req *r, const char *since, const char *limit);
/* GET /api/trash: {"count", "items": [the /list fields, sha256,
 * trashed_at, purge_at]}, the most recently trashed first. */
void route_trash_list(struct req *r);
/* GET /api/events: Server-Sent Events, "change" when the feed moves. */
void route_events(struct req *r);
/* POST /api/rescan: an incremental scan now (main.c's scanner). */
void scanner_kick(struct server *srv, bool *already);

/* similar.c: GET /api/similar/<sha> (hash) or /api/similar (hash NULL);
 * `distance` is the ?distance= argument as given ("" when absent). */
void route_similar(struct req *r, const uint8_t *hash, const char *distance);

/* One entry as its /list JSON object (the caller's), or NULL. */
struct cJSON *list_entry_object(const mi_entry *e);

/* proxy.c */
/* The address in s[0..n) (IPv4 or IPv6, no port); false if it is none. */
bool ip_parse(const char *s, size_t n, struct ip_addr *out);
/* An IPv4 address (4 bytes, network order) as ours. */
void ip_from_v4(struct ip_addr *out, const void *v4);
/* As text: dotted IPv4 for an IPv4(-mapped) address, else IPv6. */
void ip_text(const struct ip_addr *a, char out[IP_TEXT_MAX]);
bool ip_equal(const struct ip_addr *a, const struct ip_addr *b);
/* Add the entries of a --trusted-proxy list to nets[*count...]:
 * comma-separated addresses, networks (ADDR/BITS) and "loopback"; false
 * when one is none of them or there are more than TRUSTED_PROXY_MAX. */
bool trusted_proxy_parse(const char *list, struct ip_net nets[TRUSTED_PROXY_MAX],
                         size_t *count);
/* Is a in one of --trusted-proxy's networks? */
bool trusted_proxy(const struct server *srv, const struct ip_addr *a);
/* The client address of this request, the one everything per address
 * counts against and the log names: the TCP peer's, or, when the peer is
 * a trusted proxy, the right-most X-Forwarded-For hop that is not one
 * (the peer's when the header is missing or malformed).  As text and as
 * an address (all zero when remote_addr is none); returns whether a
 * trusted proxy relayed the request. */
bool client_address(const struct server *srv, const struct mg_request_info *ri,
                    char text[IP_TEXT_MAX], struct ip_addr *ip);

/* conns.c */
/* A request starts (an upload when `upload`) from `client` (its
 * client_address()); returns how many uploads that address has in flight,
 * this one included (0 for other requests). */
unsigned conns_enter(struct server *srv, const struct mg_request_info *ri,
                     const struct ip_addr *client, bool upload);
void conns_leave(struct server *srv, const struct mg_request_info *ri);
/* An upload's body so far; true when the reaper found it too slow and
 * cut it off (answer 408). */
bool conns_progress(struct server *srv, const struct mg_request_info *ri,
                    uint64_t body);
int conns_start_reaper(struct server *srv, const struct mg_server_port *ports,
                       int nports);
void conns_stop_reaper(struct server *srv);
/* Stopping: end every connection on these ports that is between requests;
 * returns how many are in one. */
size_t conns_close_idle(struct server *srv, const struct mg_server_port *ports,
                      int nports);

/* upload.c */
void handle_put(struct req *r, const char *name);

#endif
