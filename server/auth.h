/*
 * auth.h - access control for media-server: accounts, sessions and API
 * keys, in their own SQLite store (DIR/.mediaindex/auth.sqlite3).
 *
 * The library (libmediaindex) knows nothing of people; this module knows
 * nothing of HTTP or civetweb.  The HTTP layer fills a struct auth_request
 * from the request's headers and asks auth_check() before any route runs:
 * who is this, and may it do this?
 *
 * Thread-safety: one struct auth is shared by every request thread; every
 * function may be called from any thread.  Password hashing (argon2id)
 * runs outside the store's lock, on AUTH_MAX_HASHES threads of its own at
 * the lowest CPU priority, so a login flood slows logins, not browsing.
 */
#ifndef MEDIA_SERVER_AUTH_H
#define MEDIA_SERVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* argon2id parameters (see auth.c for the measurements behind them). */
#define AUTH_PWHASH_OPSLIMIT 3
#define AUTH_PWHASH_MEMLIMIT (32u << 20)
/* Password hashes computed at once (each holds AUTH_PWHASH_MEMLIMIT), on
 * as many hasher threads. */
#define AUTH_MAX_HASHES 2

#define AUTH_NAME_MAX 64          /* user names and key labels, bytes */
#define AUTH_PASSWORD_MIN 8
#define AUTH_PASSWORD_MAX 1024
/* A session ends after this long unused, or this long after login. */
#define AUTH_SESSION_IDLE_S (7 * 86400)
#define AUTH_SESSION_MAX_S (30 * 86400)
/* Session cookie and API key texts (base64url of 32 random bytes). */
#define AUTH_COOKIE "mi_session"
#define AUTH_KEY_PREFIX "mik_"
#define AUTH_TOKEN_TEXT 43
#define AUTH_KEY_TEXT (4 + AUTH_TOKEN_TEXT)

typedef struct auth auth;

enum auth_role { AUTH_ROLE_NONE = 0, AUTH_ROLE_VIEWER, AUTH_ROLE_MEMBER,
                 AUTH_ROLE_ADMIN };

/* API key scopes, a bit set. */
#define AUTH_SCOPE_READ 1u
#define AUTH_SCOPE_UPLOAD 2u
#define AUTH_SCOPE_ADMIN 4u
#define AUTH_SCOPE_ALL 7u

/* How a request proved who it is. */
enum auth_kind { AUTH_VIA_NONE = 0, AUTH_VIA_SESSION, AUTH_VIA_KEY };

/* What a route needs. */
enum auth_need {
    AUTH_PUBLIC = 0,     /* anyone (the login page and its assets, login) */
    AUTH_ANY,            /* any valid session or key (GET /api/auth/me) */
    AUTH_READ,           /* browse: viewer, key scope read */
    AUTH_UPLOAD,         /* upload: member, key scope upload */
    AUTH_SELF,           /* manage one's own keys and sessions: a session,
                            or a key with scope admin */
    AUTH_SHARE,          /* make, list and revoke one's share links: member
                            (a key needs scope upload) */
    AUTH_ADMIN           /* admin role (and scope admin for a key) */
};

enum auth_verdict {
    AUTH_OPEN = 0,       /* no account exists: today's open server */
    AUTH_ALLOW,          /* identified, and allowed */
    AUTH_UNAUTHENTICATED,/* no credentials, or wrong/expired/revoked: 401 */
    AUTH_FORBIDDEN,      /* identified, but the role or scope is short: 403 */
    AUTH_CROSS_ORIGIN,   /* cookie-authenticated and not same-origin: 403 */
    AUTH_FAILED          /* the store failed: 500 */
};

/* What auth_check needs from a request; NULL for an absent header. */
struct auth_request {
    const char *method;
    const char *cookie;           /* Cookie */
    const char *authorization;    /* Authorization */
    const char *api_key;          /* X-Api-Key */
    const char *sec_fetch_site;   /* Sec-Fetch-Site */
    const char *origin;           /* Origin */
    const char *host;             /* Host */
};

/* Who a request is. */
struct auth_identity {
    enum auth_kind via;
    int64_t user_id;
    char user[AUTH_NAME_MAX + 1];
    enum auth_role role;
    unsigned int scopes;          /* a key's; AUTH_SCOPE_ALL for a session */
    int64_t token_id;             /* the session's or key's row id */
    uint8_t token_hash[32];       /* of the session token (for logout) */
};

/* Open (creating) DIR/.mediaindex/auth.sqlite3; NULL and a message in
 * err on failure. */
auth *auth_open(const char *storage_dir, char *err, size_t errlen);
void auth_close(auth *a);
/* When auth_open fails: might DIR's store hold an account?  (No file, an
 * empty one, or one read as it is that holds no user: false.) */
bool auth_store_may_have_accounts(const char *storage_dir);

/* Does any account exist?  (Re-read when the store changed.) */
bool auth_has_accounts(auth *a);   /* false for a NULL store */

/* The one question: who is this request, and may it do `need`?
 * `who` is filled for AUTH_ALLOW, AUTH_FORBIDDEN and AUTH_CROSS_ORIGIN.
 * A NULL store (none could be made: a read-only folder) is AUTH_OPEN. */
enum auth_verdict auth_check(auth *a, const struct auth_request *rq,
                             enum auth_need need, struct auth_identity *who);

/* Is a cookie-authenticated state-changing request same-origin?
 * (Sec-Fetch-Site, else Origin against Host; neither: not a browser.) */
bool auth_same_origin(const struct auth_request *rq);

/* Logins. */
enum auth_login_result {
    AUTH_LOGIN_OK = 0,
    AUTH_LOGIN_WRONG,        /* unknown user or wrong password */
    AUTH_LOGIN_THROTTLED,    /* too many failures: *retry_after seconds */
    AUTH_LOGIN_BUSY,         /* too many hashes queued: try again soon */
    AUTH_LOGIN_ERROR
};
/* Check a password and, when right, open a session: its cookie value
 * (AUTH_TOKEN_TEXT + 1 bytes) and lifetime in seconds.  `client` is the
 * address throttling counts against (and the log names). */
enum auth_login_result auth_login(auth *a, const char *user,
                                  const char *password, const char *client,
                                  char token_out[AUTH_TOKEN_TEXT + 1],
                                  long *max_age, unsigned *retry_after,
                                  struct auth_identity *who);
/* End one session, or every session of a user. */
int auth_logout(auth *a, const struct auth_identity *who);
int auth_logout_all(auth *a, int64_t user_id);

/* Accounts.  0 on success, -1 with a message in err. */
int auth_user_add(auth *a, const char *name, const char *password,
                  enum auth_role role, char *err, size_t errlen);
/* The first account, an admin, only while no account exists. */
int auth_user_add_first(auth *a, const char *name, const char *password,
                        char *err, size_t errlen);
int auth_user_passwd(auth *a, const char *name, const char *password,
                     char *err, size_t errlen);
int auth_user_del(auth *a, const char *name, char *err, size_t errlen);
/* Call fn for each user, by name. */
int auth_user_list(auth *a,
                   void (*fn)(const char *name, enum auth_role role,
                              int64_t created, unsigned nkeys,
                              unsigned nsessions, void *payload),
                   void *payload);

/* API keys.  Create: the key text (AUTH_KEY_TEXT + 1 bytes) shown once;
 * expires 0 = never.  A key may not have a scope beyond its user's role. */
int auth_key_create(auth *a, const char *user, const char *label,
                    unsigned int scopes, int64_t expires,
                    char key_out[AUTH_KEY_TEXT + 1], int64_t *id,
                    char *err, size_t errlen);
struct auth_key_info {
    int64_t id;
    const char *user, *name, *prefix;
    unsigned int scopes;
    int64_t created, last_used, expires;   /* 0 = never */
};
/* Keys of one user (user_id > 0) or of everybody (0). */
int auth_key_list(auth *a, int64_t user_id,
                  void (*fn)(const struct auth_key_info *k, void *payload),
                  void *payload);
/* Revoke key `id`; when user_id > 0 only if it is that user's.
 * 0, or -1 (no such key: message in err). */
int auth_key_revoke(auth *a, int64_t id, int64_t user_id, char *err,
                    size_t errlen);

/* ---------------------------------------------------------------------- */
/* Share links: read-only access to some items for someone without an
 * account.  The token (AUTH_TOKEN_TEXT base64url characters) travels in
 * the URL path, /s/<token>/...; the store keeps its BLAKE2b hash.  A link
 * shows one or more items (by hash) or a range of days, optionally ends,
 * optionally needs a password (argon2id, as accounts), and goes with its
 * owner's account. */
#define AUTH_SHARE_ITEMS_MAX 10000  /* hashes in one link */
#define AUTH_SHARE_COOKIE "mi_share"/* an unlocked link's grant, Path=/s/<t> */
#define AUTH_SHARE_GRANT_S (12 * 3600) /* how long an unlock lasts */
#define AUTH_GRANT_TEXT 54          /* base64url of 40 bytes */

enum auth_share_kind { AUTH_SHARE_ITEMS = 1, AUTH_SHARE_RANGE = 2 };
/* What a link shows beyond the pictures, a bit set. */
#define AUTH_SHARE_GPS 1u        /* latitude/longitude in its list */
#define AUTH_SHARE_ORIGINALS 2u  /* the original files (download, video,
                                    full size): they keep their embedded
                                    metadata, GPS included */

struct auth_share_new {
    enum auth_share_kind kind;
    const uint8_t (*items)[32];   /* AUTH_SHARE_ITEMS: nitems hashes */
    size_t nitems;
    const char *from, *to;        /* AUTH_SHARE_RANGE: YYYY-MM-DD, "" open */
    const char *label;            /* NULL or "": none */
    const char *password;         /* NULL: none */
    unsigned int flags;
    int64_t expires;              /* epoch seconds; 0 = never */
};

/* A link as its page sees it. */
struct auth_share {
    int64_t id, user_id;
    enum auth_share_kind kind;
    char from[16], to[16];
    char label[AUTH_NAME_MAX * 4 + 1];
    unsigned int flags;
    bool password;
    int64_t created, expires;     /* 0 = never */
    size_t nitems;
    uint8_t token_hash[32];
};

/* Make a link for user_id: its token (shown once).  0, or -1 with a
 * message in err. */
int auth_share_create(auth *a, int64_t user_id, const struct auth_share_new *n,
                      char token_out[AUTH_TOKEN_TEXT + 1], int64_t *id,
                      char *err, size_t errlen);
/* Links of one user (user_id > 0) or everybody's (0), newest first. */
int auth_share_list(auth *a, int64_t user_id,
                    void (*fn)(const struct auth_share *s, const char *owner,
                               void *payload),
                    void *payload);
/* Revoke link `id`; when user_id > 0 only if it is that user's. */
int auth_share_revoke(auth *a, int64_t id, int64_t user_id, char *err,
                      size_t errlen);

enum auth_share_verdict {
    AUTH_SHARE_NONE = 0,     /* no such link (wrong, revoked, expired): 404 */
    AUTH_SHARE_OK,
    AUTH_SHARE_LOCKED,       /* it needs its password first: 401 */
    AUTH_SHARE_ERROR         /* the store failed: 500 */
};
/* The link whose token is `token` (from the URL), if it is valid now; a
 * password link is OK only with a grant for it in `cookie`. */
enum auth_share_verdict auth_share_open(auth *a, const char *token,
                                        const char *cookie,
                                        struct auth_share *out);
/* Is item `sha` in link `s` (AUTH_SHARE_ITEMS)? */
bool auth_share_has(auth *a, const struct auth_share *s, const uint8_t sha[32]);
/* The hashes of link `s`, malloc'd (the caller frees), at most
 * AUTH_SHARE_ITEMS_MAX; -1 on failure. */
int auth_share_items(auth *a, const struct auth_share *s,
                     uint8_t (**out)[32], size_t *n);
/* Check a link's password; when right, a grant for the cookie
 * (AUTH_GRANT_TEXT + 1 bytes) good for *max_age seconds.  Throttled like
 * logins (per address, and per link). */
enum auth_login_result auth_share_unlock(auth *a, const char *token,
                                         const char *password,
                                         const char *client,
                                         char grant_out[AUTH_GRANT_TEXT + 1],
                                         long *max_age, unsigned *retry_after);

/* Names. */
const char *auth_role_name(enum auth_role r);
enum auth_role auth_role_parse(const char *s);
/* "read,upload" -> bits; 0 if malformed. */
unsigned int auth_scopes_parse(const char *s);
/* bits -> "read,upload" into buf. */
const char *auth_scopes_format(unsigned int scopes, char *buf, size_t len);
bool auth_name_valid(const char *name);

#endif
