/*
 * auth.c - accounts, sessions and API keys (see auth.h).
 *
 * The store: DIR/.mediaindex/auth.sqlite3 (mode 0600, WAL, busy timeout),
 * written by the server and by the command line (`media-server user ...`,
 * `key ...`) while the server runs.  The server keeps one connection under
 * one mutex and notices other writers through PRAGMA data_version: when it
 * moves, everything cached from the store is dropped and read again.  It
 * is compared only after an inotify watcher saw the store written (and
 * once a second anyway), not on every request: see HOT_MS.
 *
 * Passwords: libsodium crypto_pwhash_str (argon2id).  Measured on this
 * machine (AMD EPYC, one core; verify of a correct password, mean of 5):
 *     t=2  m=19 MiB   34 ms      t=3  m=32 MiB   48 ms
 *     t=3  m=19 MiB   29 ms      t=4  m=64 MiB  139 ms
 * A Raspberry Pi 4 runs argon2 about 6-8x slower, so t=3, m=32 MiB costs
 * roughly 0.3-0.4 s there: slow enough for guessing, quick enough for a
 * login, and AUTH_MAX_HASHES (2) of them hold 64 MiB of a 1 GB board at
 * most.  Logins beyond that wait on a semaphore; beyond AUTH_MAX_QUEUE
 * waiting, they are refused at once (busy) rather than pile up threads.
 * A hash made with other parameters is re-made at the next good login
 * (crypto_pwhash_str_needs_rehash).  An unknown user is checked against a
 * dummy hash with the same parameters, so the time taken does not say
 * whether a user exists.
 *
 * Tokens: 32 bytes from randombytes_buf, sent as base64url (43 chars;
 * API keys prefixed "mik_"); the store keeps only their BLAKE2b hash
 * (crypto_generichash), so a copy of the store opens no door.  Verified
 * tokens are cached in memory by hash (compared with sodium_memcmp), so a
 * request costs a hash and a table probe, never argon2 and usually no
 * SQLite read; last-used times are written back at most once a minute.
 *
 * Failed logins are counted per client address and per user name (known
 * or not): beyond a few, each failure doubles a wait (429, Retry-After),
 * and each is logged on stderr with the address.
 */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#define AUTH_MAX_QUEUE 32         /* logins waiting for a hash slot */
#define CACHE_SLOTS 1024          /* direct-mapped, by token hash */
#define TOUCH_EVERY_S 60          /* last_seen / last_used write-back */
#define THROTTLE_SLOTS 2048
#define THROTTLE_FORGET_S 3600    /* a quiet hour forgets the failures */
#define IP_FREE_FAILS 5           /* the failure from which waits begin */
#define IP_MAX_WAIT_S 900
#define USER_FREE_FAILS 10
#define USER_MAX_WAIT_S 300
#define BUSY_TIMEOUT_MS 5000
/* How a request learns that another process (the command line, sqlite3)
 * changed the store: inotify on DIR/.mediaindex, read (without waiting)
 * by each request, says when auth.sqlite3* was written; it then compares
 * PRAGMA data_version, and keeps comparing for HOT_MS (a commit becomes
 * visible just after its last write).  Without a flag it is compared only
 * every CHECK_MS (WATCHLESS_MS when inotify is not available), so the
 * usual request takes no SQLite call at all. */
#define HOT_MS 200
#define CHECK_MS 1000
#define WATCHLESS_MS 100
/* The password hashers' nice value: a login flood's argon2 yields the CPU
 * to every other request (measured by bench/auth.sh: a logged-in user's
 * /thumbnail p99 under 100 wrong-password clients). */
#define HASH_NICE 19

/* One argon2 job, on its caller's stack, run by a hasher thread. */
struct hjob {
    bool verify;                  /* else hash */
    const char *pw, *hash_in;     /* verify: hash_in against pw */
    char *hash_out;               /* hash: crypto_pwhash_STRBYTES */
    int rc;
    bool done;
    struct hjob *next;
};

struct cache_entry {
    bool used;
    uint8_t hash[32];
    struct auth_identity who;
    int64_t expires;              /* absolute; 0 = never */
    int64_t last_seen;            /* sessions: idle expiry counts from it */
    int64_t written;              /* last write-back of last_seen/used */
};

struct throttle {
    char key[AUTH_NAME_MAX + 8];  /* "ip:ADDR" or "user:NAME" */
    unsigned int fails;
    int64_t last;
    int64_t until;                /* blocked before this time */
};

struct auth {
    pthread_mutex_t lock;         /* guards everything below but the
                                     hashers' queue (hq_lock) */
    sqlite3 *db;
    sqlite3_stmt *st_version, *st_accounts, *st_session, *st_key,
                 *st_touch_session, *st_touch_key, *st_share, *st_share_item;
    bool shares_ok;               /* the store has the share tables */
    uint8_t grant_key[crypto_generichash_KEYBYTES]; /* unlocked links'
                                     cookies; new at each start */
    int64_t data_version;
    bool have_accounts;
    int64_t checked_ms, hot_until_ms;  /* of data_version, monotonic */
    atomic_int watch;             /* 0 not started, 1 running, -1 failed */
    int watch_fd;                 /* inotify on DIR/.mediaindex, or -1 */
    char dir[4096];               /* DIR/.mediaindex */
    struct cache_entry cache[CACHE_SLOTS];
    struct throttle throttle[THROTTLE_SLOTS];

    /* argon2 runs in AUTH_MAX_HASHES threads of their own, at nice
     * HASH_NICE, fed by a queue (see struct hjob). */
    pthread_mutex_t hq_lock;
    pthread_cond_t hq_work, hq_done;
    struct hjob *hq_head, *hq_tail;
    pthread_t hashers[AUTH_MAX_HASHES];
    int nhashers;
    bool hq_stop;
    atomic_int waiting;           /* logins queued for one */
    pthread_mutex_t dummy_lock;
    bool dummy_ready;
    char dummy[crypto_pwhash_STRBYTES];
};

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_err(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;

    if (!err || !len)
        return;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------------- */
/* Names                                                                   */

const char *auth_role_name(enum auth_role r)
{
    switch (r) {
    case AUTH_ROLE_ADMIN: return "admin";
    case AUTH_ROLE_MEMBER: return "member";
    case AUTH_ROLE_VIEWER: return "viewer";
    case AUTH_ROLE_NONE: break;
    }
    return "none";
}

enum auth_role auth_role_parse(const char *s)
{
    if (!s)
        return AUTH_ROLE_NONE;
    if (strcmp(s, "admin") == 0)
        return AUTH_ROLE_ADMIN;
    if (strcmp(s, "member") == 0)
        return AUTH_ROLE_MEMBER;
    if (strcmp(s, "viewer") == 0)
        return AUTH_ROLE_VIEWER;
    return AUTH_ROLE_NONE;
}

unsigned int auth_scopes_parse(const char *s)
{
    unsigned int bits = 0;

    if (!s || !*s)
        return 0;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);

        if (n == 4 && strncmp(s, "read", 4) == 0)
            bits |= AUTH_SCOPE_READ;
        else if (n == 6 && strncmp(s, "upload", 6) == 0)
            bits |= AUTH_SCOPE_UPLOAD;
        else if (n == 5 && strncmp(s, "admin", 5) == 0)
            bits |= AUTH_SCOPE_ADMIN;
        else
            return 0;
        s += n;
        if (*s == ',')
            s++;
    }
    return bits;
}

const char *auth_scopes_format(unsigned int scopes, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s%s%s",
             scopes & AUTH_SCOPE_READ ? "read" : "",
             (scopes & AUTH_SCOPE_READ) && (scopes & ~AUTH_SCOPE_READ & 6u)
                 ? "," : "",
             scopes & AUTH_SCOPE_UPLOAD ? "upload" : "",
             (scopes & AUTH_SCOPE_UPLOAD) && (scopes & AUTH_SCOPE_ADMIN)
                 ? "," : "",
             scopes & AUTH_SCOPE_ADMIN ? "admin" : "");
    return buf;
}

/* 1 to AUTH_NAME_MAX of [A-Za-z0-9._@+-], not starting with '-'. */
bool auth_name_valid(const char *name)
{
    size_t n = 0;

    if (!name || !*name || *name == '-')
        return false;
    for (; name[n]; n++) {
        char c = name[n];
        if (n >= AUTH_NAME_MAX)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '@' ||
              c == '+' || c == '-'))
            return false;
    }
    return true;
}

/* A key's label: 1 to AUTH_NAME_MAX bytes, no control characters. */
static bool label_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > AUTH_NAME_MAX)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* A link's label: no control characters (UTF-8 checked by the caller). */
static bool label_valid_long(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

static bool role_allows_scopes(enum auth_role role, unsigned int scopes)
{
    if ((scopes & AUTH_SCOPE_ADMIN) && role < AUTH_ROLE_ADMIN)
        return false;
    if ((scopes & AUTH_SCOPE_UPLOAD) && role < AUTH_ROLE_MEMBER)
        return false;
    return role >= AUTH_ROLE_VIEWER;
}

/* ---------------------------------------------------------------------- */
/* The store                                                               */

static const char *const schema =
    "CREATE TABLE IF NOT EXISTS users("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  role TEXT NOT NULL CHECK (role IN ('admin','member','viewer')),"
    "  pwhash TEXT NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  pw_changed INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS sessions("
    "  id INTEGER PRIMARY KEY,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  token_hash BLOB NOT NULL UNIQUE,"
    "  created INTEGER NOT NULL,"
    "  last_seen INTEGER NOT NULL,"
    "  expires INTEGER NOT NULL,"
    "  client TEXT);"
    "CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user_id);"
    "CREATE TABLE IF NOT EXISTS api_keys("
    "  id INTEGER PRIMARY KEY,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  token_hash BLOB NOT NULL UNIQUE,"
    "  prefix TEXT NOT NULL,"
    "  scopes INTEGER NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  last_used INTEGER,"
    "  expires INTEGER);"
    "CREATE INDEX IF NOT EXISTS api_keys_user ON api_keys(user_id);"
    "PRAGMA user_version = 1;";

/* Version 2: share links. */
static const char *const schema2 =
    "CREATE TABLE IF NOT EXISTS shares("
    "  id INTEGER PRIMARY KEY,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  token_hash BLOB NOT NULL UNIQUE,"
    "  label TEXT NOT NULL DEFAULT '',"
    "  kind INTEGER NOT NULL CHECK (kind IN (1, 2)),"
    "  date_from TEXT NOT NULL DEFAULT '',"
    "  date_to TEXT NOT NULL DEFAULT '',"
    "  nitems INTEGER NOT NULL DEFAULT 0,"
    "  pwhash TEXT,"
    "  flags INTEGER NOT NULL DEFAULT 0,"
    "  created INTEGER NOT NULL,"
    "  expires INTEGER);"
    "CREATE INDEX IF NOT EXISTS shares_user ON shares(user_id);"
    "CREATE TABLE IF NOT EXISTS share_items("
    "  share_id INTEGER NOT NULL REFERENCES shares(id) ON DELETE CASCADE,"
    "  sha BLOB NOT NULL,"
    "  PRIMARY KEY (share_id, sha)) WITHOUT ROWID;"
    "PRAGMA user_version = 2;";

/* Version 3: secrets kept across restarts (the key of unlocked links'
 * grants, so that a restart does not lock out whoever unlocked one). */
static const char *const schema3 =
    "CREATE TABLE IF NOT EXISTS secrets("
    "  name TEXT PRIMARY KEY,"
    "  value BLOB NOT NULL) WITHOUT ROWID;"
    "PRAGMA user_version = 3;";

static void refresh(auth *a);

static int schema_version(auth *a)
{
    sqlite3_stmt *st;
    int v = -1;

    if (sqlite3_prepare_v2(a->db, "PRAGMA user_version", -1, &st, NULL) ==
        SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int prep(auth *a, sqlite3_stmt **st, const char *sql)
{
    return sqlite3_prepare_v3(a->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st,
                              NULL) == SQLITE_OK ? 0 : -1;
}

/* Run `sql` in one write transaction (a schema step): SQLITE_OK, or the
 * failure, rolled back, with SQLite's message in *msg (sqlite3_free). */
static int in_transaction(auth *a, const char *sql, char **msg)
{
    int rc = sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, msg);

    if (rc == SQLITE_OK)
        rc = sqlite3_exec(a->db, sql, NULL, NULL, msg);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(a->db, "COMMIT", NULL, NULL, msg);
    if (rc != SQLITE_OK)
        sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* The stored grant key into a->grant_key: true when there is one. */
static bool read_grant_key(auth *a)
{
    sqlite3_stmt *st = NULL;
    bool have = false;

    if (sqlite3_prepare_v2(a->db, "SELECT value FROM secrets"
                           " WHERE name = 'share_grant'", -1, &st,
                           NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_bytes(st, 0) == (int)sizeof(a->grant_key)) {
        memcpy(a->grant_key, sqlite3_column_blob(st, 0), sizeof(a->grant_key));
        have = true;
    }
    sqlite3_finalize(st);
    return have;
}

/* The key of unlocked links' grants: the store's, only read once it is
 * there (a store made already opens on a full disk); made once, by
 * whoever opens the store first (the server or the command line, the
 * first insert winning); when the store cannot keep one (full,
 * read-only), one for this process only. */
static void load_grant_key(auth *a)
{
    sqlite3_stmt *st = NULL;

    if (schema_version(a) >= 3 && read_grant_key(a))
        return;
    randombytes_buf(a->grant_key, sizeof(a->grant_key));
    if (schema_version(a) < 3 && in_transaction(a, schema3, NULL) != SQLITE_OK)
        return;
    if (sqlite3_prepare_v2(a->db, "INSERT OR IGNORE INTO secrets (name, value)"
                           " VALUES ('share_grant', ?1)", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_blob(st, 1, a->grant_key, sizeof(a->grant_key),
                          SQLITE_STATIC);
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
    read_grant_key(a);           /* another opener's, if it came first */
}

auth *auth_open(const char *storage_dir, char *err, size_t errlen)
{
    auth *a;
    char path[4096];
    int fd;
    char *msg = NULL;

    if (sodium_init() < 0) {
        set_err(err, errlen, "libsodium failed to start");
        return NULL;
    }
    if ((size_t)snprintf(path, sizeof(path), "%s/.mediaindex", storage_dir) >=
        sizeof(path)) {
        set_err(err, errlen, "storage folder path too long");
        return NULL;
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        set_err(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return NULL;
    }
    strcat(path, "/auth.sqlite3");
    /* Created private before SQLite sees it (its -wal and -shm files take
     * the same mode). */
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        set_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    close(fd);

    a = calloc(1, sizeof(*a));
    if (!a) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&a->lock, NULL);
    pthread_mutex_init(&a->dummy_lock, NULL);
    pthread_mutex_init(&a->hq_lock, NULL);
    pthread_cond_init(&a->hq_work, NULL);
    pthread_cond_init(&a->hq_done, NULL);
    atomic_init(&a->waiting, 0);
    a->data_version = -1;
    a->watch_fd = -1;
    atomic_init(&a->watch, 0);
    snprintf(a->dir, sizeof(a->dir), "%s/.mediaindex", storage_dir);

    if (sqlite3_open_v2(path, &a->db, SQLITE_OPEN_READWRITE |
                        SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        set_err(err, errlen, "cannot open %s: %s", path,
                a->db ? sqlite3_errmsg(a->db) : "out of memory");
        auth_close(a);
        return NULL;
    }
    sqlite3_busy_timeout(a->db, BUSY_TIMEOUT_MS);
    /* A store made already is only read here: it opens on a full disk. */
    if (sqlite3_exec(a->db, "PRAGMA foreign_keys=ON;", NULL, NULL, &msg) !=
            SQLITE_OK ||
        (schema_version(a) < 1 &&
         (sqlite3_exec(a->db, "PRAGMA journal_mode=WAL; "
                       "PRAGMA synchronous=NORMAL;", NULL, NULL, &msg) != SQLITE_OK ||
          sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK ||
          sqlite3_exec(a->db, schema, NULL, NULL, &msg) != SQLITE_OK ||
          sqlite3_exec(a->db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK)) ||
        sqlite3_exec(a->db, "PRAGMA synchronous=NORMAL;", NULL, NULL, &msg) !=
            SQLITE_OK) {
        set_err(err, errlen, "%s: %s", path, msg ? msg : sqlite3_errmsg(a->db));
        sqlite3_free(msg);
        auth_close(a);
        return NULL;
    }
    if (prep(a, &a->st_version, "PRAGMA data_version") ||
        prep(a, &a->st_accounts, "SELECT EXISTS(SELECT 1 FROM users)") ||
        prep(a, &a->st_session,
             "SELECT s.id, s.user_id, u.name, u.role, s.last_seen, s.expires "
             "FROM sessions s JOIN users u ON u.id = s.user_id "
             "WHERE s.token_hash = ?1") ||
        prep(a, &a->st_key,
             "SELECT k.id, k.user_id, u.name, u.role, k.scopes, "
             "coalesce(k.expires, 0), coalesce(k.last_used, 0) "
             "FROM api_keys k JOIN users u ON u.id = k.user_id "
             "WHERE k.token_hash = ?1") ||
        prep(a, &a->st_touch_session,
             "UPDATE sessions SET last_seen = ?2 WHERE id = ?1") ||
        prep(a, &a->st_touch_key,
             "UPDATE api_keys SET last_used = ?2 WHERE id = ?1")) {
        set_err(err, errlen, "%s: %s", path, sqlite3_errmsg(a->db));
        auth_close(a);
        return NULL;
    }
    /* Share links came with version 2.  A store that cannot take them (a
     * full disk) still opens: accounts work, links answer 503. */
    if (schema_version(a) < 2 && in_transaction(a, schema2, &msg) != SQLITE_OK) {
        fprintf(stderr, "media-server: %s: no share links: %s\n", path,
                msg ? msg : sqlite3_errmsg(a->db));
        sqlite3_free(msg);
        msg = NULL;
    }
    a->shares_ok = schema_version(a) >= 2 &&
        prep(a, &a->st_share,
             "SELECT id, user_id, kind, date_from, date_to, label, "
             "pwhash IS NOT NULL, flags, created, coalesce(expires, 0), "
             "nitems FROM shares WHERE token_hash = ?1") == 0 &&
        prep(a, &a->st_share_item,
             "SELECT 1 FROM share_items WHERE share_id = ?1 AND sha = ?2") == 0;
    load_grant_key(a);
    refresh(a);                   /* whether accounts exist, quietly */
    return a;
}

bool auth_store_may_have_accounts(const char *storage_dir)
{
    char path[4096], uri[4200];
    struct stat sb;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    bool may = true;

    snprintf(path, sizeof(path), "%s/.mediaindex/auth.sqlite3", storage_dir);
    if (stat(path, &sb) != 0)
        return errno != ENOENT;   /* cannot tell: assume it may */
    if (sb.st_size == 0)
        return false;
    /* Committed transactions not yet checkpointed: cannot tell. */
    snprintf(uri, sizeof(uri), "%s-wal", path);
    if (stat(uri, &sb) == 0 && sb.st_size > 0)
        return true;
    /* Read the file as it is, without the WAL's shared memory (which a
     * full disk may refuse). */
    {
        char *u = sqlite3_mprintf("file:%s?immutable=1", path);

        if (u && sqlite3_open_v2(u, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
                                 NULL) == SQLITE_OK &&
            sqlite3_prepare_v2(db, "SELECT EXISTS(SELECT 1 FROM users)", -1,
                               &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            may = sqlite3_column_int(st, 0) != 0;
        sqlite3_free(u);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return may;
}

void auth_close(auth *a)
{
    if (!a)
        return;
    if (a->watch_fd >= 0)
        close(a->watch_fd);
    sqlite3_finalize(a->st_version);
    sqlite3_finalize(a->st_accounts);
    sqlite3_finalize(a->st_session);
    sqlite3_finalize(a->st_key);
    sqlite3_finalize(a->st_touch_session);
    sqlite3_finalize(a->st_touch_key);
    sqlite3_finalize(a->st_share);
    sqlite3_finalize(a->st_share_item);
    sqlite3_close(a->db);
    pthread_mutex_lock(&a->hq_lock);
    a->hq_stop = true;
    pthread_cond_broadcast(&a->hq_work);
    pthread_mutex_unlock(&a->hq_lock);
    for (int i = 0; i < a->nhashers; i++)
        pthread_join(a->hashers[i], NULL);
    pthread_cond_destroy(&a->hq_work);
    pthread_cond_destroy(&a->hq_done);
    pthread_mutex_destroy(&a->hq_lock);
    pthread_mutex_destroy(&a->lock);
    pthread_mutex_destroy(&a->dummy_lock);
    sodium_memzero(a->cache, sizeof(a->cache));
    sodium_memzero(a->grant_key, sizeof(a->grant_key));
    free(a);
}

/* Under lock: forget what was read from the store. */
static void cache_clear(auth *a)
{
    memset(a->cache, 0, sizeof(a->cache));
}

/* Under lock: has another connection (the command line) changed the
 * store?  Then drop the cache and re-read whether accounts exist. */
static void refresh(auth *a)
{
    int64_t v = -2, before = a->data_version;

    if (sqlite3_step(a->st_version) == SQLITE_ROW)
        v = sqlite3_column_int64(a->st_version, 0);
    sqlite3_reset(a->st_version);
    if (v == a->data_version && v != -2)
        return;
    a->data_version = v;
    cache_clear(a);
    if (sqlite3_step(a->st_accounts) == SQLITE_ROW) {
        bool had = a->have_accounts;

        a->have_accounts = sqlite3_column_int(a->st_accounts, 0) != 0;
        if (had != a->have_accounts && before != -1)
            fprintf(stderr, "media-server: %s\n", a->have_accounts
                    ? "accounts exist now: every request needs a login or "
                      "an API key"
                    : "the last account is gone: the server is OPEN again "
                      "(anyone who can reach it can browse and upload)");
    }
    sqlite3_reset(a->st_accounts);
}

/* Under lock: after our own change of users, re-read as if another
 * connection had written. */
static void changed(auth *a)
{
    a->data_version = -3;
    refresh(a);
}

/* Under lock: has DIR/.mediaindex/auth.sqlite3* been written since the
 * last look?  The kernel queues the event during the writer's own write
 * call, before the command line that wrote can return: a request that
 * comes after it finds the event here, never later.  A watch that fails
 * falls back to comparing often. */
static bool watch_read(auth *a)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool written = false;

    for (;;) {
        ssize_t n = read(a->watch_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return written;
        if (n <= 0) {
            atomic_store(&a->watch, -1);
            return true;
        }
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if ((ev->mask & IN_Q_OVERFLOW) ||
                (ev->len && strncmp(ev->name, "auth.sqlite3", 12) == 0))
                written = true;
            p += sizeof(*ev) + ev->len;
        }
    }
}

/* Under lock, once: start watching the store's folder. */
static void watch_start(auth *a)
{
    int ok = -1;

    a->watch_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (a->watch_fd >= 0 &&
        inotify_add_watch(a->watch_fd, a->dir, IN_MODIFY | IN_CLOSE_WRITE |
                          IN_CREATE | IN_DELETE | IN_MOVED_TO) >= 0)
        ok = 1;
    if (ok != 1)
        fprintf(stderr, "media-server: cannot watch %s (%s): changes by the "
                "command line are seen within %d ms\n", a->dir,
                strerror(errno), WATCHLESS_MS);
    atomic_store(&a->watch, ok);
}

/* Under lock: refresh() when the store may have changed (see HOT_MS). */
static void refresh_maybe(auth *a)
{
    int64_t now = now_ms();
    int w = atomic_load(&a->watch);

    if (w == 0) {
        watch_start(a);
        w = atomic_load(&a->watch);
    }
    if (w == 1 && watch_read(a))
        a->hot_until_ms = now + HOT_MS;
    w = atomic_load(&a->watch);
    if (now < a->hot_until_ms ||
        now - a->checked_ms >= (w == 1 ? CHECK_MS : WATCHLESS_MS)) {
        a->checked_ms = now;
        refresh(a);
    }
}

bool auth_has_accounts(auth *a)
{
    bool yes;

    if (!a)
        return false;
    pthread_mutex_lock(&a->lock);
    refresh(a);
    yes = a->have_accounts;
    pthread_mutex_unlock(&a->lock);
    return yes;
}

/* ---------------------------------------------------------------------- */
/* Tokens                                                                  */

static void token_new(uint8_t raw[32], char text[AUTH_TOKEN_TEXT + 1])
{
    randombytes_buf(raw, 32);
    sodium_bin2base64(text, AUTH_TOKEN_TEXT + 1, raw, 32,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static void token_hash(uint8_t out[32], const uint8_t raw[32])
{
    crypto_generichash(out, 32, raw, 32, NULL, 0);
}

/* Exactly AUTH_TOKEN_TEXT base64url characters -> hash of the 32 bytes. */
static bool token_parse(const char *text, size_t len, uint8_t hash[32])
{
    uint8_t raw[32];
    size_t n = 0;
    const char *end = NULL;

    if (len != AUTH_TOKEN_TEXT)
        return false;
    if (sodium_base642bin(raw, sizeof(raw), text, len, NULL, &n, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        n != 32 || end != text + len)
        return false;
    token_hash(hash, raw);
    sodium_memzero(raw, sizeof(raw));
    return true;
}

/* An API key text ("mik_" + token), surrounded by spaces or not. */
static bool key_parse(const char *s, uint8_t hash[32])
{
    size_t n;

    while (*s == ' ' || *s == '\t')
        s++;
    n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n != AUTH_KEY_TEXT || strncmp(s, AUTH_KEY_PREFIX, 4) != 0)
        return false;
    return token_parse(s + 4, n - 4, hash);
}

/* The next value of cookie `name` in the Cookie header *c (trailing
 * blanks trimmed; *c moves past it); false when there is no other. */
static bool cookie_next(const char **c, const char *name, const char **v,
                        size_t *len)
{
    const size_t nlen = strlen(name);

    while (*c && **c) {
        const char *p = *c, *e;

        while (*p == ' ' || *p == ';')
            p++;
        e = strchr(p, ';');
        *c = e;
        if (strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            *v = p + nlen + 1;
            *len = e ? (size_t)(e - *v) : strlen(*v);
            while (*len && (*v)[*len - 1] == ' ')
                (*len)--;
            return true;
        }
    }
    return false;
}

/* The session cookie's value in a Cookie header. */
static bool cookie_parse(const char *c, uint8_t hash[32])
{
    const char *v;
    size_t len;

    while (cookie_next(&c, AUTH_COOKIE, &v, &len))
        if (token_parse(v, len, hash))
            return true;
    return false;
}

/* ---------------------------------------------------------------------- */
/* Who is this request                                                     */

static struct cache_entry *cache_slot(auth *a, const uint8_t hash[32])
{
    uint32_t i;

    memcpy(&i, hash, sizeof(i));
    return &a->cache[i % CACHE_SLOTS];
}

/* Under lock: look a session or key up, cache first.  true and *who
 * filled when valid now. */
static bool identify(auth *a, enum auth_kind via, const uint8_t hash[32],
                     struct auth_identity *who)
{
    struct cache_entry *c = cache_slot(a, hash);
    int64_t now = now_s();
    sqlite3_stmt *st;

    if (c->used && c->who.via == via && sodium_memcmp(c->hash, hash, 32) == 0) {
        if ((c->expires && now >= c->expires) ||
            (via == AUTH_VIA_SESSION &&
             now - c->last_seen >= AUTH_SESSION_IDLE_S)) {
            c->used = false;
            return false;
        }
        c->last_seen = now;
        if (now - c->written >= TOUCH_EVERY_S) {
            st = via == AUTH_VIA_SESSION ? a->st_touch_session : a->st_touch_key;
            sqlite3_bind_int64(st, 1, c->who.token_id);
            sqlite3_bind_int64(st, 2, now);
            (void)sqlite3_step(st);
            sqlite3_reset(st);
            c->written = now;
        }
        *who = c->who;
        return true;
    }

    st = via == AUTH_VIA_SESSION ? a->st_session : a->st_key;
    sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return false;
    }
    memset(who, 0, sizeof(*who));
    who->via = via;
    who->token_id = sqlite3_column_int64(st, 0);
    who->user_id = sqlite3_column_int64(st, 1);
    snprintf(who->user, sizeof(who->user), "%s",
             (const char *)sqlite3_column_text(st, 2));
    who->role = auth_role_parse((const char *)sqlite3_column_text(st, 3));
    memcpy(who->token_hash, hash, 32);
    {
        struct cache_entry e;

        memset(&e, 0, sizeof(e));
        if (via == AUTH_VIA_SESSION) {
            who->scopes = AUTH_SCOPE_ALL;
            e.last_seen = sqlite3_column_int64(st, 4);
            e.expires = sqlite3_column_int64(st, 5);
        } else {
            who->scopes = (unsigned int)sqlite3_column_int(st, 4) & AUTH_SCOPE_ALL;
            e.expires = sqlite3_column_int64(st, 5);
            e.last_seen = sqlite3_column_int64(st, 6);
        }
        sqlite3_reset(st);
        if ((e.expires && now >= e.expires) || who->role == AUTH_ROLE_NONE ||
            (via == AUTH_VIA_SESSION &&
             now - e.last_seen >= AUTH_SESSION_IDLE_S))
            return false;
        e.used = true;
        memcpy(e.hash, hash, 32);
        e.who = *who;
        e.written = 0;            /* write the first use back at once */
        *c = e;
    }
    return identify(a, via, hash, who);    /* counts the use */
}

static bool safe_method(const char *m)
{
    return !m || strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 ||
           strcmp(m, "OPTIONS") == 0;
}

bool auth_same_origin(const struct auth_request *rq)
{
    const char *o = rq->origin, *h = rq->host;

    if (rq->sec_fetch_site)
        return strcmp(rq->sec_fetch_site, "same-origin") == 0 ||
               strcmp(rq->sec_fetch_site, "none") == 0;
    if (!o)
        return true;              /* no browser sends neither on a POST */
    if (strncasecmp(o, "http://", 7) == 0)
        o += 7;
    else if (strncasecmp(o, "https://", 8) == 0)
        o += 8;
    else
        return false;             /* "null", or nonsense */
    return h && strcasecmp(o, h) == 0;
}

static bool allowed(const struct auth_identity *w, enum auth_need need)
{
    bool key = w->via == AUTH_VIA_KEY;

    switch (need) {
    case AUTH_PUBLIC:
    case AUTH_ANY:
        return true;
    case AUTH_READ:
        return w->role >= AUTH_ROLE_VIEWER &&
               (!key || (w->scopes & AUTH_SCOPE_READ));
    case AUTH_UPLOAD:
        return w->role >= AUTH_ROLE_MEMBER &&
               (!key || (w->scopes & AUTH_SCOPE_UPLOAD));
    case AUTH_SELF:
        return !key || (w->scopes & AUTH_SCOPE_ADMIN);
    case AUTH_SHARE:
        return w->role >= AUTH_ROLE_MEMBER &&
               (!key || (w->scopes & AUTH_SCOPE_UPLOAD));
    case AUTH_ADMIN:
        return w->role >= AUTH_ROLE_ADMIN &&
               (!key || (w->scopes & AUTH_SCOPE_ADMIN));
    }
    return false;
}

enum auth_verdict auth_check(auth *a, const struct auth_request *rq,
                             enum auth_need need, struct auth_identity *who)
{
    uint8_t hash[32];
    enum auth_kind via = AUTH_VIA_NONE;
    bool ok, bad = false;

    memset(who, 0, sizeof(*who));
    if (!a)
        return AUTH_OPEN;         /* no store could be made: no accounts */
    /* The credential first, outside the lock (base64 and BLAKE2b).  A
     * key, when one is sent, decides alone: a wrong key is a 401 even
     * beside a good cookie. */
    if (need != AUTH_PUBLIC) {
        if (rq->authorization) {
            const char *s = rq->authorization;

            while (*s == ' ')
                s++;
            if (strncasecmp(s, "Bearer ", 7) == 0 && key_parse(s + 7, hash))
                via = AUTH_VIA_KEY;
            else
                bad = true;
        } else if (rq->api_key) {
            if (key_parse(rq->api_key, hash))
                via = AUTH_VIA_KEY;
            else
                bad = true;
        } else if (rq->cookie && cookie_parse(rq->cookie, hash)) {
            via = AUTH_VIA_SESSION;
        }
    }
    pthread_mutex_lock(&a->lock);
    refresh_maybe(a);
    if (!a->have_accounts) {
        pthread_mutex_unlock(&a->lock);
        return AUTH_OPEN;
    }
    if (need == AUTH_PUBLIC) {
        pthread_mutex_unlock(&a->lock);
        return AUTH_ALLOW;
    }
    ok = !bad && via != AUTH_VIA_NONE && identify(a, via, hash, who);
    pthread_mutex_unlock(&a->lock);
    if (!ok) {
        memset(who, 0, sizeof(*who));
        return AUTH_UNAUTHENTICATED;
    }
    if (via == AUTH_VIA_SESSION && !safe_method(rq->method) &&
        !auth_same_origin(rq))
        return AUTH_CROSS_ORIGIN;
    return allowed(who, need) ? AUTH_ALLOW : AUTH_FORBIDDEN;
}

/* ---------------------------------------------------------------------- */
/* Passwords                                                               */

static void hjob_run(struct hjob *j)
{
    if (j->verify)
        j->rc = crypto_pwhash_str_verify(j->hash_in, j->pw, strlen(j->pw));
    else
        j->rc = crypto_pwhash_str(j->hash_out, j->pw, strlen(j->pw),
                                  AUTH_PWHASH_OPSLIMIT, AUTH_PWHASH_MEMLIMIT);
}

static void *hasher_main(void *arg)
{
    auth *a = arg;

    /* Raising one's own nice value needs no privilege; it is never
     * lowered again, so these threads do nothing else. */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), HASH_NICE);
    pthread_mutex_lock(&a->hq_lock);
    for (;;) {
        struct hjob *j;

        while (!a->hq_head && !a->hq_stop)
            pthread_cond_wait(&a->hq_work, &a->hq_lock);
        if (!a->hq_head)
            break;
        j = a->hq_head;
        a->hq_head = j->next;
        if (!a->hq_head)
            a->hq_tail = NULL;
        pthread_mutex_unlock(&a->hq_lock);
        hjob_run(j);
        pthread_mutex_lock(&a->hq_lock);
        j->done = true;
        pthread_cond_broadcast(&a->hq_done);
    }
    pthread_mutex_unlock(&a->hq_lock);
    return NULL;
}

/* Run an argon2 job on a hasher thread (AUTH_MAX_HASHES at once, in
 * order), waiting for it; in this thread if none can be started. */
static int hash_run(auth *a, struct hjob *j)
{
    pthread_mutex_lock(&a->hq_lock);
    while (a->nhashers < AUTH_MAX_HASHES &&
           pthread_create(&a->hashers[a->nhashers], NULL, hasher_main, a) == 0)
        a->nhashers++;
    if (!a->nhashers) {
        pthread_mutex_unlock(&a->hq_lock);
        hjob_run(j);
        return j->rc;
    }
    j->done = false;
    j->next = NULL;
    if (a->hq_tail)
        a->hq_tail->next = j;
    else
        a->hq_head = j;
    a->hq_tail = j;
    pthread_cond_signal(&a->hq_work);
    while (!j->done)
        pthread_cond_wait(&a->hq_done, &a->hq_lock);
    pthread_mutex_unlock(&a->hq_lock);
    return j->rc;
}

/* Hash a password (on a hasher thread). */
static int pw_hash(auth *a, char out[crypto_pwhash_STRBYTES], const char *pw)
{
    struct hjob j = { .verify = false, .pw = pw, .hash_out = out };

    return hash_run(a, &j);
}

/* 0 when pw matches hash (on a hasher thread). */
static int pw_verify(auth *a, const char *hash, const char *pw)
{
    struct hjob j = { .verify = true, .pw = pw, .hash_in = hash };

    return hash_run(a, &j);
}

static const char *dummy_hash(auth *a)
{
    pthread_mutex_lock(&a->dummy_lock);
    if (!a->dummy_ready) {
        char pw[AUTH_TOKEN_TEXT + 1];
        uint8_t raw[32];

        token_new(raw, pw);
        if (pw_hash(a, a->dummy, pw) == 0)
            a->dummy_ready = true;
    }
    pthread_mutex_unlock(&a->dummy_lock);
    return a->dummy_ready ? a->dummy : NULL;
}

static bool password_ok_length(const char *pw, char *err, size_t errlen)
{
    size_t n = strlen(pw);

    if (n < AUTH_PASSWORD_MIN) {
        set_err(err, errlen, "the password is too short (at least %d "
                "characters)", AUTH_PASSWORD_MIN);
        return false;
    }
    if (n > AUTH_PASSWORD_MAX) {
        set_err(err, errlen, "the password is too long (at most %d bytes)",
                AUTH_PASSWORD_MAX);
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------------- */
/* Throttling failed logins                                                */

/* Under lock: the entry for key, made if `make` (in a free slot, else
 * in the one whose last failure is oldest). */
static struct throttle *throttle_find(auth *a, const char *key, bool make)
{
    struct throttle *victim = NULL;
    int64_t now = now_s();

    for (size_t i = 0; i < THROTTLE_SLOTS; i++) {
        struct throttle *t = &a->throttle[i];

        if (t->key[0] && now - t->last > THROTTLE_FORGET_S && now >= t->until)
            t->key[0] = '\0';
        if (!t->key[0]) {
            if (!victim || victim->key[0])
                victim = t;
            continue;
        }
        if (strcmp(t->key, key) == 0)
            return t;
        if (!victim || (victim->key[0] && t->last < victim->last))
            victim = t;
    }
    if (!make || !victim)
        return NULL;
    memset(victim, 0, sizeof(*victim));
    snprintf(victim->key, sizeof(victim->key), "%s", key);
    return victim;
}

static void throttle_keys(char ip[AUTH_NAME_MAX + 8], char us[AUTH_NAME_MAX + 8],
                          const char *client, const char *user)
{
    snprintf(ip, AUTH_NAME_MAX + 8, "ip:%.60s", client ? client : "?");
    snprintf(us, AUTH_NAME_MAX + 8, "user:%s",
             auth_name_valid(user) ? user : "?");
}

/* Under lock: seconds until key may try again, 0 = now. */
static unsigned throttle_wait(auth *a, const char *key)
{
    struct throttle *t = throttle_find(a, key, false);
    int64_t now = now_s();

    return t && t->until > now ? (unsigned)(t->until - now) : 0;
}

static void throttle_fail(auth *a, const char *key, unsigned free_fails,
                          unsigned max_wait)
{
    struct throttle *t = throttle_find(a, key, true);
    int64_t now = now_s();

    if (!t)
        return;
    t->fails++;
    t->last = now;
    if (t->fails >= free_fails) {
        unsigned shift = t->fails - free_fails;
        int64_t wait = shift >= 20 ? max_wait : (int64_t)1 << shift;

        t->until = now + (wait > max_wait ? max_wait : wait);
    }
}

static void throttle_forget(auth *a, const char *key)
{
    struct throttle *t = throttle_find(a, key, false);

    if (t)
        memset(t, 0, sizeof(*t));
}

/* ---------------------------------------------------------------------- */
/* Logins and sessions                                                     */

static int exec_bind(auth *a, const char *sql, const char *fmt, ...);

enum auth_login_result auth_login(auth *a, const char *user,
                                  const char *password, const char *client,
                                  char token_out[AUTH_TOKEN_TEXT + 1],
                                  long *max_age, unsigned *retry_after,
                                  struct auth_identity *who)
{
    char ipkey[AUTH_NAME_MAX + 8], ukey[AUTH_NAME_MAX + 8];
    char stored[crypto_pwhash_STRBYTES];
    const char *against;
    bool found = false, good = false, rehash = false;
    int64_t uid = 0;
    enum auth_role role = AUTH_ROLE_NONE;
    unsigned w1, w2;
    sqlite3_stmt *st = NULL;
    int64_t now;

    memset(who, 0, sizeof(*who));
    *retry_after = 0;
    throttle_keys(ipkey, ukey, client, user);
    pthread_mutex_lock(&a->lock);
    w1 = throttle_wait(a, ipkey);
    w2 = throttle_wait(a, ukey);
    pthread_mutex_unlock(&a->lock);
    if (w1 || w2) {
        *retry_after = w1 > w2 ? w1 : w2;
        fprintf(stderr, "media-server: login throttled: user \"%s\" from %s "
                "(retry in %u s)\n", auth_name_valid(user) ? user : "?",
                client ? client : "?", *retry_after);
        return AUTH_LOGIN_THROTTLED;
    }

    if (atomic_fetch_add(&a->waiting, 1) >= AUTH_MAX_QUEUE) {
        atomic_fetch_sub(&a->waiting, 1);
        return AUTH_LOGIN_BUSY;
    }
    if (auth_name_valid(user)) {
        pthread_mutex_lock(&a->lock);
        if (sqlite3_prepare_v2(a->db, "SELECT id, role, pwhash FROM users "
                               "WHERE name = ?1", -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW) {
                const char *h = (const char *)sqlite3_column_text(st, 2);

                uid = sqlite3_column_int64(st, 0);
                role = auth_role_parse((const char *)sqlite3_column_text(st, 1));
                if (h && strlen(h) < sizeof(stored)) {
                    snprintf(stored, sizeof(stored), "%s", h);
                    found = true;
                }
            }
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&a->lock);
    }
    against = found ? stored : dummy_hash(a);
    if (against && password && strlen(password) <= AUTH_PASSWORD_MAX) {
        good = pw_verify(a, against, password) == 0 && found;
        if (good && crypto_pwhash_str_needs_rehash(stored, AUTH_PWHASH_OPSLIMIT,
                                                   AUTH_PWHASH_MEMLIMIT) != 0)
            rehash = pw_hash(a, stored, password) == 0;
    }
    atomic_fetch_sub(&a->waiting, 1);

    pthread_mutex_lock(&a->lock);
    if (!good || role == AUTH_ROLE_NONE) {
        struct throttle *t;

        throttle_fail(a, ipkey, IP_FREE_FAILS, IP_MAX_WAIT_S);
        throttle_fail(a, ukey, USER_FREE_FAILS, USER_MAX_WAIT_S);
        t = throttle_find(a, ipkey, false);
        fprintf(stderr, "media-server: login failed: user \"%s\" from %s "
                "(%u failures from there)\n", auth_name_valid(user) ? user : "?",
                client ? client : "?", t ? t->fails : 0);
        pthread_mutex_unlock(&a->lock);
        return AUTH_LOGIN_WRONG;
    }
    throttle_forget(a, ipkey);
    throttle_forget(a, ukey);
    now = now_s();
    if (rehash)
        exec_bind(a, "UPDATE users SET pwhash = ?2 WHERE id = ?1", "is",
                  uid, stored);
    /* Sweep sessions that have ended, anybody's. */
    exec_bind(a, "DELETE FROM sessions WHERE expires <= ?1 OR last_seen <= ?2",
              "ii", now, now - AUTH_SESSION_IDLE_S);
    {
        uint8_t raw[32], hash[32];

        token_new(raw, token_out);
        token_hash(hash, raw);
        sodium_memzero(raw, sizeof(raw));
        if (sqlite3_prepare_v2(a->db, "INSERT INTO sessions(user_id, token_hash, "
                               "created, last_seen, expires, client) "
                               "VALUES (?1, ?2, ?3, ?3, ?4, ?5)", -1, &st,
                               NULL) != SQLITE_OK) {
            pthread_mutex_unlock(&a->lock);
            return AUTH_LOGIN_ERROR;
        }
        sqlite3_bind_int64(st, 1, uid);
        sqlite3_bind_blob(st, 2, hash, 32, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, now);
        sqlite3_bind_int64(st, 4, now + AUTH_SESSION_MAX_S);
        sqlite3_bind_text(st, 5, client ? client : "", -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_DONE) {
            fprintf(stderr, "media-server: cannot store a session: %s\n",
                    sqlite3_errmsg(a->db));
            sqlite3_finalize(st);
            pthread_mutex_unlock(&a->lock);
            return AUTH_LOGIN_ERROR;
        }
        who->token_id = sqlite3_last_insert_rowid(a->db);
        sqlite3_finalize(st);
        memcpy(who->token_hash, hash, 32);
    }
    pthread_mutex_unlock(&a->lock);
    who->via = AUTH_VIA_SESSION;
    who->user_id = uid;
    snprintf(who->user, sizeof(who->user), "%s", user);
    who->role = role;
    who->scopes = AUTH_SCOPE_ALL;
    *max_age = AUTH_SESSION_MAX_S;
    sodium_memzero(stored, sizeof(stored));
    return AUTH_LOGIN_OK;
}

int auth_logout(auth *a, const struct auth_identity *who)
{
    int rc;

    if (who->via != AUTH_VIA_SESSION)
        return -1;
    pthread_mutex_lock(&a->lock);
    rc = exec_bind(a, "DELETE FROM sessions WHERE id = ?1", "i", who->token_id);
    cache_clear(a);
    pthread_mutex_unlock(&a->lock);
    return rc;
}

int auth_logout_all(auth *a, int64_t user_id)
{
    int rc;

    pthread_mutex_lock(&a->lock);
    rc = exec_bind(a, "DELETE FROM sessions WHERE user_id = ?1", "i", user_id);
    cache_clear(a);
    pthread_mutex_unlock(&a->lock);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Accounts and keys                                                       */

/* Under lock: run sql with parameters ?1.. from fmt ('i' int64, 's'
 * text); 0, or -1.  Changed rows in sqlite3_changes(). */
static int exec_bind(auth *a, const char *sql, const char *fmt, ...)
{
    sqlite3_stmt *st;
    va_list ap;
    int i, rc;

    if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    va_start(ap, fmt);
    for (i = 0; fmt[i]; i++) {
        if (fmt[i] == 'i')
            sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
        else
            sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1,
                              SQLITE_TRANSIENT);
    }
    va_end(ap);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

static int user_add(auth *a, const char *name, const char *password,
                    enum auth_role role, bool first, char *err, size_t errlen)
{
    char h[crypto_pwhash_STRBYTES];
    int rc;

    if (!auth_name_valid(name)) {
        set_err(err, errlen, "bad user name: 1 to %d letters, digits, '.', "
                "'_', '@', '+' or '-' (not first)", AUTH_NAME_MAX);
        return -1;
    }
    if (role == AUTH_ROLE_NONE) {
        set_err(err, errlen, "bad role: admin, member or viewer");
        return -1;
    }
    if (!password_ok_length(password, err, errlen))
        return -1;
    if (pw_hash(a, h, password) != 0) {
        set_err(err, errlen, "out of memory hashing the password");
        return -1;
    }
    pthread_mutex_lock(&a->lock);
    rc = exec_bind(a, first
                   ? "INSERT INTO users(name, role, pwhash, created, pw_changed) "
                     "SELECT ?1, ?2, ?3, ?4, ?4 WHERE NOT EXISTS "
                     "(SELECT 1 FROM users)"
                   : "INSERT INTO users(name, role, pwhash, created, "
                     "pw_changed) VALUES (?1, ?2, ?3, ?4, ?4)", "sssi", name,
                   auth_role_name(role), h, now_s());
    if (rc == 0 && first && sqlite3_changes(a->db) == 0) {
        set_err(err, errlen, "an account exists already");
        rc = -1;
    } else if (rc != 0) {
        if (sqlite3_extended_errcode(a->db) == SQLITE_CONSTRAINT_UNIQUE)
            set_err(err, errlen, "user \"%s\" already exists", name);
        else
            set_err(err, errlen, "cannot add the user: %s",
                    sqlite3_errmsg(a->db));
    }
    changed(a);
    pthread_mutex_unlock(&a->lock);
    return rc;
}

int auth_user_add(auth *a, const char *name, const char *password,
                  enum auth_role role, char *err, size_t errlen)
{
    return user_add(a, name, password, role, false, err, errlen);
}

int auth_user_add_first(auth *a, const char *name, const char *password,
                        char *err, size_t errlen)
{
    return user_add(a, name, password, AUTH_ROLE_ADMIN, true, err, errlen);
}

int auth_user_passwd(auth *a, const char *name, const char *password,
                     char *err, size_t errlen)
{
    char h[crypto_pwhash_STRBYTES];
    int rc;

    if (!password_ok_length(password, err, errlen))
        return -1;
    if (pw_hash(a, h, password) != 0) {
        set_err(err, errlen, "out of memory hashing the password");
        return -1;
    }
    pthread_mutex_lock(&a->lock);
    rc = exec_bind(a, "UPDATE users SET pwhash = ?2, pw_changed = ?3 "
                   "WHERE name = ?1", "ssi", name, h, now_s());
    if (rc == 0 && sqlite3_changes(a->db) == 0) {
        set_err(err, errlen, "no user \"%s\"", name);
        rc = -1;
    } else if (rc != 0) {
        set_err(err, errlen, "cannot change the password: %s",
                sqlite3_errmsg(a->db));
    } else {
        /* A new password logs out every session (keys stay). */
        exec_bind(a, "DELETE FROM sessions WHERE user_id = "
                  "(SELECT id FROM users WHERE name = ?1)", "s", name);
    }
    changed(a);
    pthread_mutex_unlock(&a->lock);
    return rc;
}

int auth_user_del(auth *a, const char *name, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    bool last_admin = false;

    pthread_mutex_lock(&a->lock);
    /* The last admin goes only with the last account. */
    if (sqlite3_prepare_v2(a->db,
            "SELECT role = 'admin' AND "
            "(SELECT count(*) FROM users WHERE role = 'admin') = 1 AND "
            "(SELECT count(*) FROM users) > 1 FROM users WHERE name = ?1",
            -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            last_admin = sqlite3_column_int(st, 0) != 0;
    }
    sqlite3_finalize(st);
    if (last_admin) {
        set_err(err, errlen, "\"%s\" is the last admin: make another user "
                "admin first (or delete the others)", name);
    } else if (exec_bind(a, "DELETE FROM users WHERE name = ?1", "s", name)) {
        set_err(err, errlen, "cannot delete the user: %s", sqlite3_errmsg(a->db));
    } else if (sqlite3_changes(a->db) == 0) {
        set_err(err, errlen, "no user \"%s\"", name);
    } else {
        rc = 0;
    }
    changed(a);
    pthread_mutex_unlock(&a->lock);
    return rc;
}

int auth_user_list(auth *a,
                   void (*fn)(const char *name, enum auth_role role,
                              int64_t created, unsigned nkeys,
                              unsigned nsessions, void *payload),
                   void *payload)
{
    sqlite3_stmt *st = NULL;
    int rc;

    pthread_mutex_lock(&a->lock);
    if (sqlite3_prepare_v2(a->db,
            "SELECT name, role, created, "
            "(SELECT count(*) FROM api_keys k WHERE k.user_id = u.id), "
            "(SELECT count(*) FROM sessions s WHERE s.user_id = u.id AND "
            " s.expires > ?1 AND s.last_seen > ?2) "
            "FROM users u ORDER BY name", -1, &st, NULL) != SQLITE_OK) {
        pthread_mutex_unlock(&a->lock);
        return -1;
    }
    sqlite3_bind_int64(st, 1, now_s());
    sqlite3_bind_int64(st, 2, now_s() - AUTH_SESSION_IDLE_S);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn((const char *)sqlite3_column_text(st, 0),
           auth_role_parse((const char *)sqlite3_column_text(st, 1)),
           sqlite3_column_int64(st, 2), (unsigned)sqlite3_column_int(st, 3),
           (unsigned)sqlite3_column_int(st, 4), payload);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    return rc == SQLITE_DONE ? 0 : -1;
}

int auth_key_create(auth *a, const char *user, const char *label,
                    unsigned int scopes, int64_t expires,
                    char key_out[AUTH_KEY_TEXT + 1], int64_t *id,
                    char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int64_t uid = 0;
    enum auth_role role = AUTH_ROLE_NONE;
    uint8_t raw[32], hash[32];
    char text[AUTH_TOKEN_TEXT + 1], prefix[16];
    int rc = -1;

    if (!label || !label_valid(label)) {
        set_err(err, errlen, "bad key name: 1 to %d characters, no control "
                "characters", AUTH_NAME_MAX);
        return -1;
    }
    if (!scopes || (scopes & ~AUTH_SCOPE_ALL)) {
        set_err(err, errlen, "bad scopes: read, upload and/or admin");
        return -1;
    }
    pthread_mutex_lock(&a->lock);
    if (sqlite3_prepare_v2(a->db, "SELECT id, role FROM users WHERE name = ?1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            uid = sqlite3_column_int64(st, 0);
            role = auth_role_parse((const char *)sqlite3_column_text(st, 1));
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    if (!uid) {
        set_err(err, errlen, "no user \"%s\"", user);
        goto out;
    }
    if (!role_allows_scopes(role, scopes)) {
        char s[32];
        set_err(err, errlen, "a key of %s \"%s\" cannot have the scopes %s",
                auth_role_name(role), user,
                auth_scopes_format(scopes, s, sizeof(s)));
        goto out;
    }
    token_new(raw, text);
    token_hash(hash, raw);
    sodium_memzero(raw, sizeof(raw));
    snprintf(key_out, AUTH_KEY_TEXT + 1, "%s%s", AUTH_KEY_PREFIX, text);
    snprintf(prefix, sizeof(prefix), "%.12s", key_out);
    if (sqlite3_prepare_v2(a->db, "INSERT INTO api_keys(user_id, name, "
                           "token_hash, prefix, scopes, created, expires) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", -1, &st,
                           NULL) != SQLITE_OK) {
        set_err(err, errlen, "cannot add the key: %s", sqlite3_errmsg(a->db));
        goto out;
    }
    sqlite3_bind_int64(st, 1, uid);
    sqlite3_bind_text(st, 2, label, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, hash, 32, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, prefix, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, (int)scopes);
    sqlite3_bind_int64(st, 6, now_s());
    if (expires > 0)
        sqlite3_bind_int64(st, 7, expires);
    else
        sqlite3_bind_null(st, 7);
    if (sqlite3_step(st) != SQLITE_DONE) {
        set_err(err, errlen, "cannot add the key: %s", sqlite3_errmsg(a->db));
        goto out;
    }
    if (id)
        *id = sqlite3_last_insert_rowid(a->db);
    rc = 0;
out:
    sqlite3_finalize(st);
    if (rc != 0 && key_out)
        key_out[0] = '\0';
    pthread_mutex_unlock(&a->lock);
    return rc;
}

int auth_key_list(auth *a, int64_t user_id,
                  void (*fn)(const struct auth_key_info *k, void *payload),
                  void *payload)
{
    sqlite3_stmt *st = NULL;
    int rc;

    pthread_mutex_lock(&a->lock);
    if (sqlite3_prepare_v2(a->db,
            "SELECT k.id, u.name, k.name, k.prefix, k.scopes, k.created, "
            "coalesce(k.last_used, 0), coalesce(k.expires, 0) "
            "FROM api_keys k JOIN users u ON u.id = k.user_id "
            "WHERE ?1 = 0 OR k.user_id = ?1 ORDER BY k.id", -1, &st,
            NULL) != SQLITE_OK) {
        pthread_mutex_unlock(&a->lock);
        return -1;
    }
    sqlite3_bind_int64(st, 1, user_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct auth_key_info k;

        k.id = sqlite3_column_int64(st, 0);
        k.user = (const char *)sqlite3_column_text(st, 1);
        k.name = (const char *)sqlite3_column_text(st, 2);
        k.prefix = (const char *)sqlite3_column_text(st, 3);
        k.scopes = (unsigned int)sqlite3_column_int(st, 4);
        k.created = sqlite3_column_int64(st, 5);
        k.last_used = sqlite3_column_int64(st, 6);
        k.expires = sqlite3_column_int64(st, 7);
        fn(&k, payload);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    return rc == SQLITE_DONE ? 0 : -1;
}

int auth_key_revoke(auth *a, int64_t id, int64_t user_id, char *err,
                    size_t errlen)
{
    int rc;

    pthread_mutex_lock(&a->lock);
    rc = exec_bind(a, "DELETE FROM api_keys WHERE id = ?1 AND "
                   "(?2 = 0 OR user_id = ?2)", "ii", id, user_id);
    if (rc != 0)
        set_err(err, errlen, "cannot revoke the key: %s", sqlite3_errmsg(a->db));
    else if (sqlite3_changes(a->db) == 0) {
        set_err(err, errlen, "no key %" PRId64, id);
        rc = -1;
    }
    cache_clear(a);
    pthread_mutex_unlock(&a->lock);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Share links                                                             */

static bool day_valid(const char *d)
{
    int y, m, dd, n = 0;

    if (!*d)
        return true;
    return sscanf(d, "%4d-%2d-%2d%n", &y, &m, &dd, &n) == 3 && n == 10 &&
           !d[n] && y >= 1000 && m >= 1 && m <= 12 && dd >= 1 && dd <= 31;
}

int auth_share_create(auth *a, int64_t user_id, const struct auth_share_new *n,
                      char token_out[AUTH_TOKEN_TEXT + 1], int64_t *id,
                      char *err, size_t errlen)
{
    char h[crypto_pwhash_STRBYTES];
    uint8_t raw[32], hash[32];
    sqlite3_stmt *st = NULL;
    const char *label = n->label ? n->label : "";
    int64_t sid = 0;
    int rc = -1;

    token_out[0] = '\0';
    if (!a || !a->shares_ok) {
        set_err(err, errlen, "the account store has no share links (is the "
                "disk full?)");
        return -1;
    }
    if (strlen(label) > AUTH_NAME_MAX * 4 || (*label && !label_valid_long(label))) {
        set_err(err, errlen, "bad link name: at most %d bytes, no control "
                "characters", AUTH_NAME_MAX * 4);
        return -1;
    }
    if (n->kind == AUTH_SHARE_ITEMS) {
        if (n->nitems == 0 || n->nitems > AUTH_SHARE_ITEMS_MAX) {
            set_err(err, errlen, "a link shares 1 to %d items",
                    AUTH_SHARE_ITEMS_MAX);
            return -1;
        }
    } else if (n->kind == AUTH_SHARE_RANGE) {
        if (!n->from || !n->to || !day_valid(n->from) || !day_valid(n->to) ||
            (!*n->from && !*n->to)) {
            set_err(err, errlen, "a date range is from and/or to, YYYY-MM-DD");
            return -1;
        }
        if (*n->from && *n->to && strcmp(n->from, n->to) > 0) {
            set_err(err, errlen, "the range ends before it starts");
            return -1;
        }
    } else {
        set_err(err, errlen, "share items or a date range");
        return -1;
    }
    if (n->flags & ~(AUTH_SHARE_GPS | AUTH_SHARE_ORIGINALS)) {
        set_err(err, errlen, "unknown share options");
        return -1;
    }
    if (n->expires && n->expires <= now_s()) {
        set_err(err, errlen, "the expiry is in the past");
        return -1;
    }
    if (n->password) {
        if (!password_ok_length(n->password, err, errlen))
            return -1;
        if (pw_hash(a, h, n->password) != 0) {
            set_err(err, errlen, "out of memory hashing the password");
            return -1;
        }
    }
    token_new(raw, token_out);
    token_hash(hash, raw);
    sodium_memzero(raw, sizeof(raw));

    pthread_mutex_lock(&a->lock);
    if (sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        set_err(err, errlen, "cannot add the link: %s", sqlite3_errmsg(a->db));
        goto out;
    }
    if (sqlite3_prepare_v2(a->db, "INSERT INTO shares(user_id, token_hash, "
                           "label, kind, date_from, date_to, nitems, pwhash, "
                           "flags, created, expires) VALUES (?1, ?2, ?3, ?4, "
                           "?5, ?6, ?7, ?8, ?9, ?10, ?11)", -1, &st,
                           NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_blob(st, 2, hash, 32, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, label, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, (int)n->kind);
    sqlite3_bind_text(st, 5, n->kind == AUTH_SHARE_RANGE ? n->from : "", -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(st, 6, n->kind == AUTH_SHARE_RANGE ? n->to : "", -1,
                      SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, n->kind == AUTH_SHARE_ITEMS ? (int64_t)n->nitems
                                                          : 0);
    if (n->password)
        sqlite3_bind_text(st, 8, h, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 8);
    sqlite3_bind_int(st, 9, (int)n->flags);
    sqlite3_bind_int64(st, 10, now_s());
    if (n->expires)
        sqlite3_bind_int64(st, 11, n->expires);
    else
        sqlite3_bind_null(st, 11);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(st);
    st = NULL;
    sid = sqlite3_last_insert_rowid(a->db);
    if (n->kind == AUTH_SHARE_ITEMS) {
        size_t i, added = 0;

        if (sqlite3_prepare_v2(a->db, "INSERT OR IGNORE INTO share_items("
                               "share_id, sha) VALUES (?1, ?2)", -1, &st,
                               NULL) != SQLITE_OK)
            goto fail;
        for (i = 0; i < n->nitems; i++) {
            sqlite3_bind_int64(st, 1, sid);
            sqlite3_bind_blob(st, 2, n->items[i], 32, SQLITE_STATIC);
            if (sqlite3_step(st) != SQLITE_DONE)
                goto fail;
            added += (size_t)sqlite3_changes(a->db);
            sqlite3_reset(st);
        }
        sqlite3_finalize(st);
        st = NULL;
        if (exec_bind(a, "UPDATE shares SET nitems = ?2 WHERE id = ?1", "ii",
                      sid, (int64_t)added) != 0)
            goto fail;
    }
    if (sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    if (id)
        *id = sid;
    rc = 0;
    goto out;
fail:
    set_err(err, errlen, "cannot add the link: %s", sqlite3_errmsg(a->db));
    sqlite3_finalize(st);
    st = NULL;
    sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
out:
    pthread_mutex_unlock(&a->lock);
    sodium_memzero(h, sizeof(h));
    if (rc != 0)
        sodium_memzero(token_out, AUTH_TOKEN_TEXT + 1);
    return rc;
}

/* Under lock: the share row st is on -> *s. */
static void share_row(sqlite3_stmt *st, struct auth_share *s)
{
    memset(s, 0, sizeof(*s));
    s->id = sqlite3_column_int64(st, 0);
    s->user_id = sqlite3_column_int64(st, 1);
    s->kind = sqlite3_column_int(st, 2) == 2 ? AUTH_SHARE_RANGE
                                             : AUTH_SHARE_ITEMS;
    snprintf(s->from, sizeof(s->from), "%s",
             (const char *)sqlite3_column_text(st, 3));
    snprintf(s->to, sizeof(s->to), "%s",
             (const char *)sqlite3_column_text(st, 4));
    snprintf(s->label, sizeof(s->label), "%s",
             (const char *)sqlite3_column_text(st, 5));
    s->password = sqlite3_column_int(st, 6) != 0;
    s->flags = (unsigned int)sqlite3_column_int(st, 7);
    s->created = sqlite3_column_int64(st, 8);
    s->expires = sqlite3_column_int64(st, 9);
    s->nitems = (size_t)sqlite3_column_int64(st, 10);
}

int auth_share_list(auth *a, int64_t user_id,
                    void (*fn)(const struct auth_share *s, const char *owner,
                               void *payload),
                    void *payload)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (!a || !a->shares_ok)
        return -1;
    pthread_mutex_lock(&a->lock);
    if (sqlite3_prepare_v2(a->db,
            "SELECT s.id, s.user_id, s.kind, s.date_from, s.date_to, s.label, "
            "s.pwhash IS NOT NULL, s.flags, s.created, coalesce(s.expires, 0), "
            "s.nitems, u.name FROM shares s JOIN users u ON u.id = s.user_id "
            "WHERE ?1 = 0 OR s.user_id = ?1 ORDER BY s.id DESC", -1, &st,
            NULL) != SQLITE_OK) {
        pthread_mutex_unlock(&a->lock);
        return -1;
    }
    sqlite3_bind_int64(st, 1, user_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct auth_share s;

        share_row(st, &s);
        fn(&s, (const char *)sqlite3_column_text(st, 11), payload);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    return rc == SQLITE_DONE ? 0 : -1;
}

int auth_share_revoke(auth *a, int64_t id, int64_t user_id, char *err,
                      size_t errlen)
{
    int rc;

    if (!a || !a->shares_ok) {
        set_err(err, errlen, "no share links in this store");
        return -1;
    }
    pthread_mutex_lock(&a->lock);
    rc = exec_bind(a, "DELETE FROM shares WHERE id = ?1 AND "
                   "(?2 = 0 OR user_id = ?2)", "ii", id, user_id);
    if (rc != 0)
        set_err(err, errlen, "cannot revoke the link: %s", sqlite3_errmsg(a->db));
    else if (sqlite3_changes(a->db) == 0) {
        set_err(err, errlen, "no link %" PRId64, id);
        rc = -1;
    }
    pthread_mutex_unlock(&a->lock);
    return rc;
}

/* A grant: 8 bytes of expiry (big-endian) and a keyed BLAKE2b of the
 * link's token hash and that expiry. */
static void grant_mac(const auth *a, uint8_t mac[32], const uint8_t th[32],
                      const uint8_t exp[8])
{
    crypto_generichash_state g;

    crypto_generichash_init(&g, a->grant_key, sizeof(a->grant_key), 32);
    crypto_generichash_update(&g, (const uint8_t *)"mi-share-grant", 14);
    crypto_generichash_update(&g, th, 32);
    crypto_generichash_update(&g, exp, 8);
    crypto_generichash_final(&g, mac, 32);
}

static bool grant_ok(const auth *a, const uint8_t th[32], const char *v,
                     size_t len)
{
    uint8_t raw[40], mac[32];
    size_t n = 0;
    const char *end = NULL;
    int64_t exp = 0;
    int i;

    if (len != AUTH_GRANT_TEXT ||
        sodium_base642bin(raw, sizeof(raw), v, len, NULL, &n, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        n != 40 || end != v + len)
        return false;
    grant_mac(a, mac, th, raw);
    if (sodium_memcmp(mac, raw + 8, 32) != 0)
        return false;
    for (i = 0; i < 8; i++)
        exp = (exp << 8) | raw[i];
    return exp > now_s();
}

/* Any mi_share cookie in the header that unlocks the link th. */
static bool grant_in_cookie(const auth *a, const uint8_t th[32], const char *c)
{
    const char *v;
    size_t len;

    while (cookie_next(&c, AUTH_SHARE_COOKIE, &v, &len))
        if (grant_ok(a, th, v, len))
            return true;
    return false;
}

/* Under lock: the link of this token, valid now. */
static enum auth_share_verdict share_find(auth *a, const char *token,
                                          struct auth_share *out)
{
    uint8_t th[32];
    int rc;

    memset(out, 0, sizeof(*out));
    if (!a || !a->shares_ok || !token ||
        !token_parse(token, strlen(token), th))
        return AUTH_SHARE_NONE;
    sqlite3_bind_blob(a->st_share, 1, th, 32, SQLITE_STATIC);
    rc = sqlite3_step(a->st_share);
    if (rc == SQLITE_ROW)
        share_row(a->st_share, out);
    sqlite3_reset(a->st_share);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? AUTH_SHARE_NONE : AUTH_SHARE_ERROR;
    memcpy(out->token_hash, th, 32);
    if (out->expires && now_s() >= out->expires)
        return AUTH_SHARE_NONE;
    return AUTH_SHARE_OK;
}

enum auth_share_verdict auth_share_open(auth *a, const char *token,
                                        const char *cookie,
                                        struct auth_share *out)
{
    enum auth_share_verdict v;

    if (!a) {
        memset(out, 0, sizeof(*out));
        return AUTH_SHARE_NONE;
    }
    pthread_mutex_lock(&a->lock);
    v = share_find(a, token, out);
    pthread_mutex_unlock(&a->lock);
    if (v == AUTH_SHARE_OK && out->password &&
        !grant_in_cookie(a, out->token_hash, cookie))
        v = AUTH_SHARE_LOCKED;
    return v;
}

bool auth_share_has(auth *a, const struct auth_share *s, const uint8_t sha[32])
{
    bool yes;

    if (!a || !a->shares_ok || s->kind != AUTH_SHARE_ITEMS)
        return false;
    pthread_mutex_lock(&a->lock);
    sqlite3_bind_int64(a->st_share_item, 1, s->id);
    sqlite3_bind_blob(a->st_share_item, 2, sha, 32, SQLITE_STATIC);
    yes = sqlite3_step(a->st_share_item) == SQLITE_ROW;
    sqlite3_reset(a->st_share_item);
    pthread_mutex_unlock(&a->lock);
    return yes;
}

int auth_share_items(auth *a, const struct auth_share *s,
                     uint8_t (**out)[32], size_t *n)
{
    sqlite3_stmt *st = NULL;
    uint8_t (*v)[32];
    size_t cap = s->nitems < AUTH_SHARE_ITEMS_MAX ? s->nitems
                                                  : AUTH_SHARE_ITEMS_MAX;
    int rc;

    *out = NULL;
    *n = 0;
    if (!a || !a->shares_ok || s->kind != AUTH_SHARE_ITEMS)
        return -1;
    v = malloc((cap ? cap : 1) * sizeof(*v));
    if (!v)
        return -1;
    pthread_mutex_lock(&a->lock);
    if (sqlite3_prepare_v2(a->db, "SELECT sha FROM share_items WHERE "
                           "share_id = ?1", -1, &st, NULL) != SQLITE_OK) {
        pthread_mutex_unlock(&a->lock);
        free(v);
        return -1;
    }
    sqlite3_bind_int64(st, 1, s->id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < cap)
        if (sqlite3_column_bytes(st, 0) == 32)
            memcpy(v[(*n)++], sqlite3_column_blob(st, 0), 32);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        free(v);
        *n = 0;
        return -1;
    }
    *out = v;
    return 0;
}

enum auth_login_result auth_share_unlock(auth *a, const char *token,
                                         const char *password,
                                         const char *client,
                                         char grant_out[AUTH_GRANT_TEXT + 1],
                                         long *max_age, unsigned *retry_after)
{
    char ipkey[AUTH_NAME_MAX + 8], skey[AUTH_NAME_MAX + 8], unused[AUTH_NAME_MAX + 8];
    char stored[crypto_pwhash_STRBYTES];
    struct auth_share s;
    enum auth_share_verdict v;
    bool good = false, found = false;
    unsigned w1, w2;
    sqlite3_stmt *st = NULL;
    int64_t exp;
    uint8_t raw[40];
    int i;

    *retry_after = 0;
    grant_out[0] = '\0';
    pthread_mutex_lock(&a->lock);
    v = share_find(a, token, &s);
    if (v != AUTH_SHARE_OK) {
        pthread_mutex_unlock(&a->lock);
        return v == AUTH_SHARE_ERROR ? AUTH_LOGIN_ERROR : AUTH_LOGIN_WRONG;
    }
    throttle_keys(ipkey, unused, client, NULL);
    snprintf(skey, sizeof(skey), "share:%" PRId64, s.id);
    w1 = throttle_wait(a, ipkey);
    w2 = throttle_wait(a, skey);
    if (!w1 && !w2 && s.password &&
        sqlite3_prepare_v2(a->db, "SELECT pwhash FROM shares WHERE id = ?1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, s.id);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) &&
            strlen((const char *)sqlite3_column_text(st, 0)) < sizeof(stored)) {
            snprintf(stored, sizeof(stored), "%s",
                     (const char *)sqlite3_column_text(st, 0));
            found = true;
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    if (w1 || w2) {
        *retry_after = w1 > w2 ? w1 : w2;
        return AUTH_LOGIN_THROTTLED;
    }
    if (!s.password) {
        good = true;              /* nothing to unlock */
    } else if (found && password && strlen(password) <= AUTH_PASSWORD_MAX) {
        if (atomic_fetch_add(&a->waiting, 1) >= AUTH_MAX_QUEUE) {
            atomic_fetch_sub(&a->waiting, 1);
            return AUTH_LOGIN_BUSY;
        }
        good = pw_verify(a, stored, password) == 0;
        atomic_fetch_sub(&a->waiting, 1);
    }
    sodium_memzero(stored, sizeof(stored));
    pthread_mutex_lock(&a->lock);
    if (!good) {
        struct throttle *t;

        throttle_fail(a, ipkey, IP_FREE_FAILS, IP_MAX_WAIT_S);
        throttle_fail(a, skey, USER_FREE_FAILS, USER_MAX_WAIT_S);
        t = throttle_find(a, ipkey, false);
        fprintf(stderr, "media-server: share link password wrong: link %"
                PRId64 " from %s (%u failures from there)\n", s.id,
                client ? client : "?", t ? t->fails : 0);
        pthread_mutex_unlock(&a->lock);
        return AUTH_LOGIN_WRONG;
    }
    throttle_forget(a, skey);
    pthread_mutex_unlock(&a->lock);
    exp = now_s() + AUTH_SHARE_GRANT_S;
    if (s.expires && s.expires < exp)
        exp = s.expires;
    *max_age = (long)(exp - now_s());
    for (i = 7; i >= 0; i--) {
        raw[i] = (uint8_t)(exp & 0xff);
        exp >>= 8;
    }
    grant_mac(a, raw + 8, s.token_hash, raw);
    sodium_bin2base64(grant_out, AUTH_GRANT_TEXT + 1, raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return AUTH_LOGIN_OK;
}
