/*
 * media-server - serve a folder of photos and videos over HTTP.
 *
 *   media-server --storage_dir DIR [--port 8000] [--rescan_interval N]
 *                [--listen ADDR] [--threads N] [--max-upload-bytes N]
 *                [--decode-memory N] [--decoder-timeout SECONDS]
 *                [--trusted-proxy LIST] [--upload-partial-max N]
 *                [--upload-expiry SECONDS]
 *   media-server --storage_dir DIR user add|passwd|del|list [NAME] [--role R]
 *   media-server --storage_dir DIR key create|list|revoke ...
 *
 * It listens at once and serves what the catalog holds; the first scan
 * runs in the background (GET /status says when it is done), then one
 * every N seconds when --rescan_interval is set.
 *
 * Signals: SIGINT and SIGTERM are blocked in every thread and the main
 * thread waits for them with sigwait(), so no handler and no global state
 * is needed; it then stops civetweb (in-flight requests finish, bounded),
 * stops the scanner and closes the index.
 */
#include "server.h"
#include "listcache.h"
#include "tus.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define SERVER_VERSION "0.1.0"
/* Stopping: requests in flight get STOP_GRACE_S to finish, then civetweb
 * and the scan get STOP_FORCE_S more (the systemd unit allows 15 s). */
#define STOP_GRACE_S 10
#define STOP_FORCE_S 2

struct options {
    const char *storage_dir;
    const char *listen;
    unsigned long port;
    unsigned long rescan;
    unsigned long threads;
    uint64_t max_upload;
    uint64_t decode_memory;
    unsigned long decoder_timeout;
    struct ip_net trusted[TRUSTED_PROXY_MAX]; /* --trusted-proxy */
    size_t ntrusted;
    int cmd;                     /* argv index of "user"/"key"; 0 = serve */
    uint64_t upload_partial_max; /* tus: 0 = the library's default */
    unsigned long upload_expiry; /* tus, seconds: 0 = the library's default */
    unsigned long trash_days;    /* 0: TRASH_DAYS_DEFAULT */
    bool no_watch;               /* --watch off */
};

static void usage(FILE *f)
{
    fprintf(f,
        "usage: media-server --storage_dir DIR [--port 8000] "
        "[--rescan_interval SECONDS]\n"
        "                    [--listen ADDR] [--threads N] "
        "[--max-upload-bytes N] [--decode-memory N]\n"
        "                    [--decoder-timeout SECONDS] "
        "[--trusted-proxy LIST]\n"
        "                    [--upload-partial-max N] [--upload-expiry SECONDS]\n"
        "                    [--trash-days N]\n"
        "                    [--watch on|off]\n"
        "       media-server --storage_dir DIR user add|passwd|del|list "
        "[NAME] [--role R]\n"
        "       media-server --storage_dir DIR key create --user NAME "
        "--name LABEL\n"
        "                    [--scope read,upload,admin] [--expires DAYS]\n"
        "       media-server --storage_dir DIR key list [--user NAME] | "
        "key revoke ID\n"
        "  --storage_dir DIR         the folder of photos and videos (required)\n"
        "  --port N                  TCP port (default 8000; 0 = any free port)\n"
        "  --listen ADDR             address to listen on (default: all IPv4)\n"
        "  --rescan_interval N       rescan every N seconds (default 0 = never)\n"
        "  --watch on|off            index what changes in the folder as it "
        "changes\n"
        "                            (inotify, else a scan every minute; "
        "default on)\n"
        "  --threads N               connections served at once (default 256)\n"
        "  --max-upload-bytes N      largest upload, bytes; K, M, G suffixes "
        "(default 8G)\n"
        "  --decode-memory N         memory all thumbnail decodes may hold at "
        "once (default 64M)\n"
        "  --decoder-timeout N       seconds the decoder process may spend on "
        "one HEIC,\n"
        "                            video or raw file (default 30)\n"
        "  --trusted-proxy LIST      reverse proxies (doing HTTPS) to believe\n"
        "                            X-Forwarded-For/-Proto from: addresses, "
        "ADDR/BITS\n"
        "                            networks or \"loopback\", "
        "comma-separated\n"
        "                            (default none); the client is the "
        "right-most\n"
        "                            X-Forwarded-For address not in the "
        "list\n"
        "  --upload-partial-max N    bytes all unfinished resumable uploads may "
        "hold\n"
        "                            together; K, M, G suffixes (default 8G)\n"
        "  --upload-expiry N         seconds an unfinished resumable upload is "
        "kept\n"
        "                            after its last bytes (default 86400)\n"
        "  --trash-days N            days a deleted photo or video stays in the "
        "trash\n"
        "                            before it is deleted for good (default 30)\n"
        "Accounts (while the server runs or not):\n"
        "  --role R                  user add: admin, member or viewer "
        "(default:\n"
        "                            admin for the first account, else "
        "member)\n"
        "  --user NAME               key create/list: whose key\n"
        "  --name LABEL              key create: what the key is for\n"
        "  --scope S                 key create: read, upload, admin, "
        "comma-separated\n"
        "                            (default read,upload)\n"
        "  --expires DAYS            key create: the key ends after DAYS "
        "(default never)\n"
        "A password is read from the terminal (not echoed), or from standard "
        "input\n"
        "when it is not a terminal.\n"
        "  --help, --version\n"
        "Flags take their value as --flag value or --flag=value.\n");
}

/* An unsigned number with an optional K/M/G (binary) suffix. */
static bool parse_num(const char *s, uint64_t max, bool suffix, uint64_t *out)
{
    char *end;
    unsigned long long v;
    uint64_t mul = 1;

    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno)
        return false;
    if (suffix && *end) {
        switch (*end) {
        case 'k': case 'K': mul = 1ull << 10; break;
        case 'm': case 'M': mul = 1ull << 20; break;
        case 'g': case 'G': mul = 1ull << 30; break;
        default: return false;
        }
        end++;
        if (*end == 'i' && end[1] == 'B')
            end += 2;
        else if (*end == 'B')
            end++;
    }
    if (*end || v > max / mul)
        return false;
    *out = v * mul;
    return true;
}

/* 0: parsed; 1: --help/--version done; 2: bad usage (message printed). */
static int parse_args(int argc, char **argv, struct options *o)
{
    int i;

    for (i = 1; i < argc; i++) {
        char flag[64];
        const char *a = argv[i], *eq, *val = NULL;
        size_t n, k;
        uint64_t num;

        if (strncmp(a, "--", 2) != 0) {
            if (strcmp(a, "user") == 0 || strcmp(a, "key") == 0) {
                /* The command parses the rest (cli_main). */
                o->cmd = i;
                break;
            }
            fprintf(stderr, "media-server: unexpected argument \"%s\"\n", a);
            return 2;
        }
        a += 2;
        eq = strchr(a, '=');
        n = eq ? (size_t)(eq - a) : strlen(a);
        if (n >= sizeof(flag)) {
            fprintf(stderr, "media-server: unknown flag --%.*s\n", 60, a);
            return 2;
        }
        for (k = 0; k < n; k++)             /* --max-upload-bytes too */
            flag[k] = a[k] == '-' ? '_' : a[k];
        flag[n] = '\0';
        if (strcmp(flag, "help") == 0) {
            usage(stdout);
            return 1;
        }
        if (strcmp(flag, "version") == 0) {
            printf("media-server %s (libmediaindex %s, civetweb %s)\n",
                   SERVER_VERSION, mi_version(), mg_version());
            return 1;
        }
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else {
            fprintf(stderr, "media-server: --%s needs a value\n", flag);
            return 2;
        }
        if (strcmp(flag, "storage_dir") == 0 && *val) {
            o->storage_dir = val;
        } else if (strcmp(flag, "listen") == 0 && *val) {
            o->listen = val;
        } else if (strcmp(flag, "port") == 0 && parse_num(val, 65535, false, &num)) {
            o->port = (unsigned long)num;
        } else if (strcmp(flag, "rescan_interval") == 0 &&
                   parse_num(val, 365u * 86400u, false, &num)) {
            o->rescan = (unsigned long)num;
        } else if (strcmp(flag, "threads") == 0 &&
                   parse_num(val, 1024, false, &num) && num > 0) {
            o->threads = (unsigned long)num;
        } else if (strcmp(flag, "max_upload_bytes") == 0 &&
                   parse_num(val, UINT64_MAX / 2, true, &num) && num > 0) {
            o->max_upload = num;
        } else if (strcmp(flag, "decode_memory") == 0 &&
                   parse_num(val, UINT64_MAX / 2, true, &num) &&
                   num >= (1u << 20)) {
            o->decode_memory = num;
        } else if (strcmp(flag, "decoder_timeout") == 0 &&
                   parse_num(val, 3600, false, &num) && num > 0) {
            o->decoder_timeout = (unsigned long)num;
        } else if (strcmp(flag, "trusted_proxy") == 0 &&
                   trusted_proxy_parse(val, o->trusted, &o->ntrusted)) {
        } else if (strcmp(flag, "upload_partial_max") == 0 &&
                   parse_num(val, UINT64_MAX / 2, true, &num) && num > 0) {
            o->upload_partial_max = num;
        } else if (strcmp(flag, "upload_expiry") == 0 &&
                   parse_num(val, 365u * 86400u, false, &num) && num > 0) {
            o->upload_expiry = (unsigned long)num;
        } else if (strcmp(flag, "trash_days") == 0 &&
                   parse_num(val, 36500, false, &num) && num > 0) {
            o->trash_days = (unsigned long)num;
        } else if (strcmp(flag, "watch") == 0 &&
                   (strcmp(val, "on") == 0 || strcmp(val, "off") == 0)) {
            o->no_watch = strcmp(val, "off") == 0;
        } else if (strcmp(flag, "storage_dir") == 0 || strcmp(flag, "listen") == 0 ||
                   strcmp(flag, "port") == 0 || strcmp(flag, "rescan_interval") == 0 ||
                   strcmp(flag, "threads") == 0 ||
                   strcmp(flag, "max_upload_bytes") == 0 ||
                   strcmp(flag, "decode_memory") == 0 ||
                   strcmp(flag, "decoder_timeout") == 0 ||
                   strcmp(flag, "trusted_proxy") == 0 ||
                   strcmp(flag, "upload_partial_max") == 0 ||
                   strcmp(flag, "upload_expiry") == 0 ||
                   strcmp(flag, "trash_days") == 0 ||
                   strcmp(flag, "watch") == 0) {
            fprintf(stderr, "media-server: bad value for --%s: \"%s\"\n", flag, val);
            return 2;
        } else {
            fprintf(stderr, "media-server: unknown flag --%s\n", flag);
            return 2;
        }
    }
    if (!o->storage_dir && !o->cmd) {
        fprintf(stderr, "media-server: --storage_dir DIR is required "
                        "(see --help)\n");
        return 2;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Accounts on the command line                                            */

/* A password: from the terminal without echo (asked twice when `confirm`),
 * else one line of standard input.  0, or -1 (message printed). */
static int read_password(char *buf, size_t len, const char *prompt,
                         bool confirm)
{
    char again[AUTH_PASSWORD_MAX + 2];
    bool tty = isatty(STDIN_FILENO) != 0;
    struct termios old, quiet;
    size_t n;

    for (int round = 0; round < (tty && confirm ? 2 : 1); round++) {
        char *dst = round == 0 ? buf : again;
        size_t cap = round == 0 ? len : sizeof(again);

        if (tty) {
            fprintf(stderr, "%s", round == 0 ? prompt : "Again: ");
            fflush(stderr);
            if (tcgetattr(STDIN_FILENO, &old) != 0)
                return -1;
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            quiet.c_lflag |= ECHONL;
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        }
        if (!fgets(dst, (int)cap, stdin))
            dst[0] = '\0';
        if (tty)
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        n = strlen(dst);
        if (n && dst[n - 1] != '\n' && !feof(stdin)) {
            fprintf(stderr, "media-server: the password is too long (at most "
                    "%d bytes)\n", AUTH_PASSWORD_MAX);
            return -1;
        }
        while (n && (dst[n - 1] == '\n' || dst[n - 1] == '\r'))
            dst[--n] = '\0';
    }
    if (tty && confirm && strcmp(buf, again) != 0) {
        fprintf(stderr, "media-server: the passwords differ\n");
        return -1;
    }
    return 0;
}

static void print_user(const char *name, enum auth_role role, int64_t created,
                       unsigned nkeys, unsigned nsessions, void *payload)
{
    char when[32];
    time_t t = (time_t)created;
    struct tm tm;

    (void)payload;
    strftime(when, sizeof(when), "%Y-%m-%d", localtime_r(&t, &tm));
    printf("%-24s %-7s created %s  %u key%s, %u session%s\n", name,
           auth_role_name(role), when, nkeys, nkeys == 1 ? "" : "s",
           nsessions, nsessions == 1 ? "" : "s");
}

static void print_key(const struct auth_key_info *k, void *payload)
{
    char scopes[32], created[32], used[32] = "never", exp[32] = "never";
    const char *only = payload;     /* --user, or NULL */
    struct tm tm;
    time_t t;

    if (only && strcmp(only, k->user) != 0)
        return;
    t = (time_t)k->created;
    strftime(created, sizeof(created), "%Y-%m-%d", localtime_r(&t, &tm));
    if (k->last_used) {
        t = (time_t)k->last_used;
        strftime(used, sizeof(used), "%Y-%m-%d %H:%M", localtime_r(&t, &tm));
    }
    if (k->expires) {
        t = (time_t)k->expires;
        strftime(exp, sizeof(exp), "%Y-%m-%d %H:%M", localtime_r(&t, &tm));
    }
    printf("%-5" PRId64 " %-16s %-20s %s...  %-17s created %s, last used %s, "
           "expires %s\n", k->id, k->user, k->name, k->prefix,
           auth_scopes_format(k->scopes, scopes, sizeof(scopes)), created, used,
           exp);
}

/* media-server [--storage_dir DIR] user|key ... : exit status. */
static int cli_main(const char *dir, int argc, char **argv)
{
    const char *pos[4] = { NULL, NULL, NULL, NULL };
    const char *role = NULL, *user = NULL, *name = NULL, *scope = NULL;
    const char *expires = NULL;
    int npos = 0, rc = 0;
    char err[512], pw[AUTH_PASSWORD_MAX + 2];
    auth *a;

    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i], *val, *eq;
        const char **dst = NULL;
        size_t n;

        if (strncmp(arg, "--", 2) != 0) {
            if (npos == 4) {
                fprintf(stderr, "media-server: too many arguments\n");
                return 2;
            }
            pos[npos++] = arg;
            continue;
        }
        arg += 2;
        eq = strchr(arg, '=');
        n = eq ? (size_t)(eq - arg) : strlen(arg);
#define FLAG(s) (n == strlen(s) && strncmp(arg, s, n) == 0)
        if (FLAG("role")) dst = &role;
        else if (FLAG("user")) dst = &user;
        else if (FLAG("name")) dst = &name;
        else if (FLAG("scope") || FLAG("scopes")) dst = &scope;
        else if (FLAG("expires")) dst = &expires;
        else if (FLAG("storage_dir") || FLAG("storage-dir")) dst = &dir;
#undef FLAG
        if (!dst) {
            fprintf(stderr, "media-server: unknown flag --%.*s for %s\n",
                    (int)(n > 60 ? 60 : n), arg, pos[0]);
            return 2;
        }
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else {
            fprintf(stderr, "media-server: --%.*s needs a value\n", (int)n, arg);
            return 2;
        }
        *dst = val;
    }
    if (!dir) {
        fprintf(stderr, "media-server: --storage_dir DIR is required\n");
        return 2;
    }
    if (npos < 2) {
        fprintf(stderr, "media-server: %s what? (see --help)\n", pos[0]);
        return 2;
    }
    a = auth_open(dir, err, sizeof(err));
    if (!a) {
        fprintf(stderr, "media-server: %s\n", err);
        return 1;
    }
    err[0] = '\0';
    if (strcmp(pos[0], "user") == 0 && strcmp(pos[1], "list") == 0) {
        if (auth_user_list(a, print_user, NULL) != 0) {
            fprintf(stderr, "media-server: cannot list the users\n");
            rc = 1;
        } else if (!auth_has_accounts(a))
            fprintf(stderr, "media-server: no accounts: the server is open to "
                    "anyone who can reach it\n");
    } else if (strcmp(pos[0], "user") == 0 &&
               (strcmp(pos[1], "add") == 0 || strcmp(pos[1], "passwd") == 0 ||
                strcmp(pos[1], "del") == 0)) {
        bool add = strcmp(pos[1], "add") == 0;
        enum auth_role r = AUTH_ROLE_NONE;
        char prompt[128];

        if (npos != 3) {
            fprintf(stderr, "media-server: user %s NAME\n", pos[1]);
            auth_close(a);
            return 2;
        }
        if (add) {
            r = role ? auth_role_parse(role)
                     : auth_has_accounts(a) ? AUTH_ROLE_MEMBER : AUTH_ROLE_ADMIN;
            if (r == AUTH_ROLE_NONE) {
                fprintf(stderr, "media-server: --role must be admin, member or "
                        "viewer\n");
                auth_close(a);
                return 2;
            }
            if (!auth_name_valid(pos[2])) {
                fprintf(stderr, "media-server: bad user name \"%s\": 1 to %d "
                        "letters, digits, '.', '_', '@', '+' or '-'\n", pos[2],
                        AUTH_NAME_MAX);
                auth_close(a);
                return 2;
            }
        }
        if (strcmp(pos[1], "del") == 0) {
            rc = auth_user_del(a, pos[2], err, sizeof(err)) ? 1 : 0;
        } else {
            snprintf(prompt, sizeof(prompt), "Password for %s: ", pos[2]);
            if (read_password(pw, sizeof(pw), prompt, true) != 0)
                rc = 1;
            else if (add)
                rc = auth_user_add(a, pos[2], pw, r, err, sizeof(err)) ? 1 : 0;
            else
                rc = auth_user_passwd(a, pos[2], pw, err, sizeof(err)) ? 1 : 0;
            explicit_bzero(pw, sizeof(pw));
        }
        if (rc)
            fprintf(stderr, "media-server: %s\n", err[0] ? err : "failed");
        else if (add)
            fprintf(stderr, "media-server: user %s added (%s)\n", pos[2],
                    auth_role_name(r));
        else if (strcmp(pos[1], "del") == 0)
            fprintf(stderr, "media-server: user %s deleted, with their keys "
                    "and sessions\n", pos[2]);
        else
            fprintf(stderr, "media-server: password of %s changed; their "
                    "sessions are logged out\n", pos[2]);
    } else if (strcmp(pos[0], "key") == 0 && strcmp(pos[1], "create") == 0) {
        unsigned int scopes = auth_scopes_parse(scope ? scope : "read,upload");
        uint64_t days = 0;
        char key[AUTH_KEY_TEXT + 1];
        int64_t id = 0;

        if (!user || !name || npos != 2) {
            fprintf(stderr, "media-server: key create --user NAME --name LABEL "
                    "[--scope read,upload] [--expires DAYS]\n");
            auth_close(a);
            return 2;
        }
        if (!scopes) {
            fprintf(stderr, "media-server: --scope: read, upload and/or admin, "
                    "comma-separated\n");
            auth_close(a);
            return 2;
        }
        if (expires && (!parse_num(expires, 36500, false, &days) || !days)) {
            fprintf(stderr, "media-server: --expires: a number of days, 1 to "
                    "36500\n");
            auth_close(a);
            return 2;
        }
        if (auth_key_create(a, user, name, scopes,
                            days ? (int64_t)time(NULL) + (int64_t)days * 86400 : 0,
                            key, &id, err, sizeof(err)) != 0) {
            fprintf(stderr, "media-server: %s\n", err);
            rc = 1;
        } else {
            printf("%s\n", key);
            fprintf(stderr, "media-server: key %" PRId64 " for %s; it is shown "
                    "only now: send it as \"Authorization: Bearer <key>\"\n",
                    id, user);
            explicit_bzero(key, sizeof(key));
        }
    } else if (strcmp(pos[0], "key") == 0 && strcmp(pos[1], "list") == 0) {
        if (auth_key_list(a, 0, print_key, (void *)(uintptr_t)user) != 0) {
            fprintf(stderr, "media-server: cannot list the keys\n");
            rc = 1;
        }
    } else if (strcmp(pos[0], "key") == 0 && strcmp(pos[1], "revoke") == 0) {
        uint64_t id;

        if (npos != 3 || !parse_num(pos[2], INT64_MAX, false, &id)) {
            fprintf(stderr, "media-server: key revoke ID (the number key list "
                    "shows)\n");
            auth_close(a);
            return 2;
        }
        if (auth_key_revoke(a, (int64_t)id, 0, err, sizeof(err)) != 0) {
            fprintf(stderr, "media-server: %s\n", err);
            rc = 1;
        } else
            fprintf(stderr, "media-server: key %" PRIu64 " revoked\n", id);
    } else {
        fprintf(stderr, "media-server: unknown command \"%s %s\" (see --help)\n",
                pos[0], pos[1]);
        rc = 2;
    }
    auth_close(a);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Background scans                                                        */

static int scan_progress(const mi_scan_stats *st, void *payload)
{
    struct server *srv = payload;
    bool stop;

    pthread_mutex_lock(&srv->lock);
    srv->progress = *st;
    stop = srv->stopping;
    pthread_mutex_unlock(&srv->lock);
    return stop ? 1 : 0;
}

static void run_scan(struct server *srv)
{
    mi_scan_options opts = MI_SCAN_OPTIONS_INIT;
    mi_scan_stats st = MI_SCAN_STATS_INIT, zero = MI_SCAN_STATS_INIT;
    double t0;
    mi_status s;

    pthread_mutex_lock(&srv->lock);
    srv->scanning = true;
    srv->scan_started = t0 = now_epoch();
    srv->progress = zero;
    pthread_mutex_unlock(&srv->lock);

    opts.progress = scan_progress;
    opts.payload = srv;
    s = mi_scan(srv->idx, &opts, &st);

    pthread_mutex_lock(&srv->lock);
    srv->scanning = false;
    srv->scan_finished = now_epoch();
    srv->last = st;
    srv->last_status = s;
    srv->have_last = true;
    pthread_mutex_unlock(&srv->lock);
    /* A scan's decoders and workers leave tens of MiB free in malloc's
     * arenas (81 MiB RSS after thumbnailing 100,000 images, 13 MiB after
     * a restart): hand them back to the system. */
    malloc_trim(0);

    if (s == MI_OK)
        fprintf(stderr,
                "media-server: scan: %" PRIu64 " files, %" PRIu64 " new, %"
                PRIu64 " changed, %" PRIu64 " removed, %" PRIu64
                " failed, %" PRIu64 " thumbnails made (%.1fs)\n",
                st.seen, st.added, st.changed, st.removed, st.failed,
                st.thumbs_made, now_epoch() - t0);
    else
        fprintf(stderr, "media-server: scan: %s: %s\n", mi_strerror(s),
                mi_index_errmsg(srv->idx));
}

/* What the watch says of a scan it ran: only its mode's changes are
 * worth a line (a fallback to scans every minute, and why). */
static void on_watch_scan(mi_watch *w, mi_status status,
                          const mi_scan_stats *st, void *payload)
{
    struct server *srv = payload;
    mi_watch_info info = MI_WATCH_INFO_INIT;
    mi_watch_mode mode = mi_watch_state(w, &info);

    (void)status;
    (void)st;
    pthread_mutex_lock(&srv->lock);
    if (mode != srv->watch_mode) {
        srv->watch_mode = mode;
        if (mode == MI_WATCH_POLLING)
            fprintf(stderr, "media-server: watch: scanning every minute "
                    "instead: %s\n", info.reason);
    }
    pthread_mutex_unlock(&srv->lock);
}

static void start_watch(struct server *srv)
{
    mi_watch_options wo = MI_WATCH_OPTIONS_INIT;
    mi_watch_info info = MI_WATCH_INFO_INIT;
    mi_status s;

    wo.flags = MI_WATCH_NO_FIRST_SCAN;   /* the scanner's, with progress */
    wo.callback = on_watch_scan;
    wo.payload = srv;
    s = mi_watch_start(&srv->watch, srv->idx, &wo);
    if (s != MI_OK) {
        fprintf(stderr, "media-server: watch: %s: %s (changes are seen by "
                "rescans only)\n", mi_strerror(s), mi_index_errmsg(srv->idx));
        return;
    }
    pthread_mutex_lock(&srv->lock);
    srv->watch_mode = mi_watch_state(srv->watch, &info);
    pthread_mutex_unlock(&srv->lock);
    if (info.mode == MI_WATCH_POLLING)
        fprintf(stderr, "media-server: watch: scanning every minute: %s\n",
                info.reason);
    else
        fprintf(stderr, "media-server: watch: %" PRIu64 " folders watched\n",
                info.folders);
}

/* POST /api/rescan: one more incremental scan, at once or right after the
 * one running (*already: one was running or asked for already). */
void scanner_kick(struct server *srv, bool *already)
{
    pthread_mutex_lock(&srv->lock);
    *already = srv->scanning || srv->scan_asked;
    srv->scan_asked = true;
    pthread_cond_broadcast(&srv->wake);
    pthread_mutex_unlock(&srv->lock);
}

static void *scanner(void *arg)
{
    struct server *srv = arg;

    run_scan(srv);
    pthread_mutex_lock(&srv->lock);
    while (!srv->stopping) {
        if (srv->rescan == 0 && !srv->scan_asked) {
            pthread_cond_wait(&srv->wake, &srv->lock);
            continue;
        }
        if (!srv->scan_asked) {
            struct timespec until;
            int rc = 0;

            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_sec += (time_t)srv->rescan;
            while (!srv->stopping && !srv->scan_asked && rc != ETIMEDOUT)
                rc = pthread_cond_timedwait(&srv->wake, &srv->lock, &until);
        }
        if (srv->stopping)
            break;
        srv->scan_asked = false;
        pthread_mutex_unlock(&srv->lock);
        run_scan(srv);      /* one at a time: this thread is the only one */
        pthread_mutex_lock(&srv->lock);
    }
    pthread_mutex_unlock(&srv->lock);
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Start and stop                                                          */

static int log_message(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    fprintf(stderr, "media-server: civetweb: %s\n", message);
    return 1;
}

/*
 * civetweb calls this inside mg_start2, after the listening sockets are
 * open but before any worker or the accepting thread runs: routes set here
 * are in place before the first request is read (set after mg_start2, the
 * first requests of a busy client were answered 404).  The context is ours;
 * civetweb only hands it over const.
 */
/* Who may do what is ours (auth.c, asked by handle_request).  Without an
 * authorization handler of its own, civetweb looks for a .htpasswd file
 * for every request (a stat of /.htpasswd each time, and one placed there
 * would put its passwords in front of every route). */
static int civetweb_auth(struct mg_connection *conn, void *cbdata)
{
    (void)conn;
    (void)cbdata;
    return 1;
}

static void register_routes(const struct mg_context *ctx)
{
    struct mg_context *c = (struct mg_context *)(uintptr_t)ctx;

    mg_set_auth_handler(c, "/", civetweb_auth, NULL);
    mg_set_request_handler(c, "/", handle_request, mg_get_user_data(ctx));
}

/*
 * civetweb's accepting thread polls its sockets in 2 s quanta and only
 * then sees that mg_stop was called.  Once the stop flag is set, one
 * connection to each listening socket wakes it at once; it accepts nothing
 * more and closes them.
 */
static void wake_listeners(const struct mg_server_port *ports, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        struct sockaddr_in sa;
        int fd;

        if (ports[i].protocol != 1)     /* IPv4 only: civetweb has no IPv6 */
            continue;
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)ports[i].port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        (void)connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        close(fd);
    }
}

struct stopper {
    struct mg_context *ctx;
    pthread_mutex_t lock;
    pthread_cond_t done_cond;
    bool done;
};

static void *stop_civetweb(void *arg)
{
    struct stopper *s = arg;

    mg_stop(s->ctx);
    pthread_mutex_lock(&s->lock);
    s->done = true;
    pthread_cond_signal(&s->done_cond);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int main(int argc, char **argv)
{
    struct options o = { .port = 8000, .threads = 256,
                         .max_upload = 8ull << 30 };
    struct server srv;
    mi_index_options iopts = MI_INDEX_OPTIONS_INIT;
    struct mg_callbacks cb;
    struct mg_init_data init;
    struct mg_error_data merr;
    struct mg_server_port ports[4];
    struct mg_context *ctx;
    struct stopper stopper;
    struct tus_sweeper sweeper;
    pthread_condattr_t ca;
    pthread_t scan_thread, stop_thread;
    sigset_t sigs;
    char err[512], listen_spec[300], threads[16], errtext[256];
    unsigned errcode = 0;
    const char *copts[32];
    struct stat sb;
    struct timespec deadline, scan_deadline;
    int rc, sig, nports, k = 0;
    mi_status s;

    /* glibc gives each thread that frees and allocates under contention
     * an arena of its own, up to 8 per core, and each keeps what it freed:
     * with 256 request threads taking turns at big bodies, the peak RSS
     * grew with every different thread that served one (43 MB after five
     * of each /list request at 100,000 items, 30 MB for one).  Two arenas
     * serve two cores; MALLOC_ARENA_MAX in the environment still wins. */
    if (!getenv("MALLOC_ARENA_MAX"))
        mallopt(M_ARENA_MAX, 2);
    rc = parse_args(argc, argv, &o);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (o.cmd)
        return cli_main(o.storage_dir, argc - o.cmd, argv + o.cmd);

    /* The folder must exist and be a writable directory: say so in one
     * line, before listening. */
    if (stat(o.storage_dir, &sb) != 0) {
        fprintf(stderr, "media-server: storage folder %s: %s\n", o.storage_dir,
                strerror(errno));
        return 2;
    }
    if (!S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "media-server: storage folder %s: not a directory\n",
                o.storage_dir);
        return 2;
    }
    if (access(o.storage_dir, R_OK | X_OK) != 0) {
        fprintf(stderr, "media-server: storage folder %s: %s\n", o.storage_dir,
                strerror(errno));
        return 2;
    }
    if (access(o.storage_dir, W_OK) != 0)      /* served read-only */
        fprintf(stderr, "media-server: note: storage folder %s: %s: no "
                        "uploads or new thumbnails\n", o.storage_dir,
                strerror(errno));

    /* Every thread started from here on inherits this mask. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    iopts.decode_memory = o.decode_memory;
    iopts.decoder_timeout_ms = (unsigned)o.decoder_timeout * 1000u;
    iopts.upload_partial_max = o.upload_partial_max;
    iopts.upload_expiry_s = (unsigned)o.upload_expiry;
    s = mi_index_open(&srv.idx, o.storage_dir, &iopts, err, sizeof(err));
    if (s != MI_OK) {
        fprintf(stderr, "media-server: storage folder %s: %s\n", o.storage_dir,
                err);
        return 2;
    }
    if (*mi_index_errmsg(srv.idx))
        fprintf(stderr, "media-server: note: %s\n", mi_index_errmsg(srv.idx));
    srv.root = mi_index_storage_dir(srv.idx);
    memcpy(srv.trusted, o.trusted, sizeof(srv.trusted));
    srv.ntrusted = o.ntrusted;
    srv.trash_days = o.trash_days ? (unsigned int)o.trash_days : 30;
    /* GET /list from a file per generation, rendered in the background;
     * before the first request can be read. */
    srv.list_cache = list_cache_start(srv.idx, srv.root);
    /* The thumbnails most asked for, in memory: 16 MiB of PNGs of ~90 KB
     * and 512 px JPEGs (a gallery's screenful many times over). */
    srv.hot = hot_new(srv.root, HOT_BYTES, HOT_FILE_MAX);
    pthread_mutex_init(&srv.auth_lock, NULL);
    srv.auth_retry = 0;
    atomic_init(&srv.auth, auth_open(srv.root, err, sizeof(err)));
    if (!srv.auth) {
        /* No store, and none can be made now (a full or read-only disk):
         * no account can exist, so the server is open; it tries again
         * while it runs.  A store with accounts in it that cannot be
         * opened must not open the doors. */
        if (auth_store_may_have_accounts(srv.root))
            fprintf(stderr, "media-server: accounts: %s: every request is "
                    "refused (503) until the store opens\n", err);
        else
            fprintf(stderr, "media-server: note: no account store yet (%s)\n",
                    err);
    }
    srv.max_upload = o.max_upload;
    srv.rescan = (unsigned int)o.rescan;
    srv.stopping = srv.scanning = srv.have_last = false;
    srv.watch = NULL;
    srv.watch_mode = MI_WATCH_STOPPED;
    srv.scan_started = srv.scan_finished = 0;
    srv.last_status = MI_OK;
    {
        mi_scan_stats zero = MI_SCAN_STATS_INIT;
        srv.progress = srv.last = zero;
    }
    pthread_mutex_init(&srv.lock, NULL);
    pthread_mutex_init(&srv.conn_lock, NULL);
    srv.busy = NULL;
    srv.nbusy = srv.busy_cap = 0;
    srv.seen = NULL;
    srv.nseen = 0;
    atomic_init(&srv.closing, false);
    atomic_init(&srv.event_streams, 0);
    srv.scan_asked = false;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&srv.wake, &ca);
    pthread_condattr_destroy(&ca);

    if (o.listen && strchr(o.listen, ':'))
        snprintf(listen_spec, sizeof(listen_spec), "[%s]:%lu", o.listen, o.port);
    else if (o.listen)
        snprintf(listen_spec, sizeof(listen_spec), "%s:%lu", o.listen, o.port);
    else
        snprintf(listen_spec, sizeof(listen_spec), "%lu", o.port);
    snprintf(threads, sizeof(threads), "%lu", o.threads);
    copts[k++] = "listening_ports";       copts[k++] = listen_spec;
    copts[k++] = "num_threads";           copts[k++] = threads;
    copts[k++] = "enable_keep_alive";     copts[k++] = "yes";
    copts[k++] = "keep_alive_timeout_ms"; copts[k++] = "2000";
    copts[k++] = "request_timeout_ms";    copts[k++] = "30000";
    copts[k++] = "tcp_nodelay";           copts[k++] = "1";
    copts[k++] = "decode_url";            copts[k++] = "no";   /* routes.c */
    copts[k++] = "max_request_size";      copts[k++] = "16384";
    copts[k++] = "listen_backlog";        copts[k++] = "256";
    copts[k] = NULL;

    memset(&cb, 0, sizeof(cb));
    cb.log_message = log_message;
    cb.http_error = handle_http_error;
    cb.init_context = register_routes;
    memset(&init, 0, sizeof(init));
    init.callbacks = &cb;
    init.user_data = &srv;
    init.configuration_options = copts;
    memset(&merr, 0, sizeof(merr));
    merr.code = &errcode;
    merr.text = errtext;
    merr.text_buffer_size = sizeof(errtext);
    errtext[0] = '\0';

    /* Unfinished resumable uploads: the first sweep before any request
     * (see tus.h), then the sweeper's. */
    tus_sweep(srv.idx, srv.trash_days);
    mg_init_library(0);
    ctx = mg_start2(&init, &merr);
    if (!ctx) {
        fprintf(stderr, "media-server: cannot listen on %s: %s\n", listen_spec,
                errtext[0] ? errtext : "failed to start");
        list_cache_stop(srv.list_cache);
        hot_free(srv.hot);
        mi_index_close(srv.idx);
        mg_exit_library();
        return 1;
    }
    nports = mg_get_server_ports(ctx, 4, ports);
    fprintf(stderr, "media-server: serving %s on http://%s:%d/ (%lu threads)\n",
            srv.root, o.listen ? o.listen : "0.0.0.0",
            nports > 0 ? ports[0].port : (int)o.port, o.threads);
    if (!auth_has_accounts(srv.auth))
        fprintf(stderr,
                "media-server: WARNING: NO ACCOUNTS: anyone who can reach this "
                "port can browse, download and upload%s.  Create the admin "
                "account in the gallery from this machine "
                "(http://127.0.0.1:%d/login), or with: media-server "
                "--storage_dir %s user add NAME --role admin\n",
                !o.listen || strcmp(o.listen, "0.0.0.0") == 0
                    ? " (listening on every interface; --listen 127.0.0.1 "
                      "keeps it to this machine)" : "",
                nports > 0 ? ports[0].port : (int)o.port, srv.root);
    else
        fprintf(stderr, "media-server: accounts exist: every request needs a "
                "login or an API key\n");

    if (conns_start_reaper(&srv, ports, nports) != 0) {
        fprintf(stderr, "media-server: cannot start the connection reaper\n");
        mg_stop(ctx);
        list_cache_stop(srv.list_cache);
        hot_free(srv.hot);
        mi_index_close(srv.idx);
        return 1;
    }
    /* The watch first: once it returns, every folder is watched, so the
     * first scan below leaves no gap for a file copied meanwhile. */
    if (!o.no_watch)
        start_watch(&srv);
    if (pthread_create(&scan_thread, NULL, scanner, &srv) != 0) {
        fprintf(stderr, "media-server: cannot start the scanner\n");
        mg_stop(ctx);
        mi_watch_stop(srv.watch);
        list_cache_stop(srv.list_cache);
        hot_free(srv.hot);
        mi_index_close(srv.idx);
        return 1;
    }

    /* Unfinished resumable uploads: swept hourly (or as often as they
     * expire, when that is sooner). */
    if (tus_sweeper_start(&sweeper, srv.idx,
                          o.upload_expiry && o.upload_expiry < 3600
                              ? (unsigned)o.upload_expiry : 3600,
                          srv.trash_days) != 0)
        fprintf(stderr, "media-server: cannot start the upload sweeper\n");

    while (sigwait(&sigs, &sig) != 0)
        ;
    fprintf(stderr, "media-server: %s: shutting down\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM");

    pthread_mutex_lock(&srv.lock);
    srv.stopping = true;             /* a running scan stops at its next step */
    atomic_store(&srv.closing, true);
    pthread_cond_broadcast(&srv.wake);
    pthread_mutex_unlock(&srv.lock);

    /* Drain first: new requests get 503, connections between requests are
     * closed, and requests in flight run to their end, for at most
     * STOP_GRACE_S.  Only then stop civetweb: mg_stop also cuts the body
     * reads of requests still running. */
    {
        double until = now_mono() + STOP_GRACE_S;
        struct timespec pause = { 0, 50 * 1000000L };

        while (conns_close_idle(&srv, ports, nports) > 0) {
            if (now_mono() >= until) {
                fprintf(stderr, "media-server: requests still running after "
                                "%ds; stopping them\n", STOP_GRACE_S);
                break;
            }
            nanosleep(&pause, NULL);
        }
    }
    stopper.ctx = ctx;
    stopper.done = false;
    pthread_mutex_init(&stopper.lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&stopper.done_cond, &ca);
    pthread_condattr_destroy(&ca);
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += STOP_FORCE_S;
    clock_gettime(CLOCK_REALTIME, &scan_deadline);    /* for the join */
    scan_deadline.tv_sec += STOP_FORCE_S;
    if (pthread_create(&stop_thread, NULL, stop_civetweb, &stopper) != 0)
        stop_civetweb(&stopper);
    pthread_mutex_lock(&stopper.lock);
    rc = 0;
    while (!stopper.done && rc != ETIMEDOUT) {
        /* mg_stop sets its flag first thing: from 50 ms on, wake the
         * listener (and end what connected meanwhile) every 50 ms until
         * civetweb has stopped. */
        struct timespec soon;
        bool last;

        clock_gettime(CLOCK_MONOTONIC, &soon);
        soon.tv_nsec += 50 * 1000000L;
        soon.tv_sec += soon.tv_nsec / 1000000000L;
        soon.tv_nsec %= 1000000000L;
        last = soon.tv_sec > deadline.tv_sec ||
               (soon.tv_sec == deadline.tv_sec && soon.tv_nsec >= deadline.tv_nsec);
        rc = pthread_cond_timedwait(&stopper.done_cond, &stopper.lock,
                                    last ? &deadline : &soon);
        if (rc == ETIMEDOUT && !last && !stopper.done) {
            pthread_mutex_unlock(&stopper.lock);
            wake_listeners(ports, nports);
            conns_close_idle(&srv, ports, nports);
            pthread_mutex_lock(&stopper.lock);
            rc = 0;
        }
    }
    pthread_mutex_unlock(&stopper.lock);
    if (!stopper.done) {
        fprintf(stderr, "media-server: civetweb did not stop in %ds; "
                        "exiting without waiting\n", STOP_FORCE_S);
        _exit(1);
    }
    pthread_join(stop_thread, NULL);
    conns_stop_reaper(&srv);
    list_cache_stop(srv.list_cache);
    hot_free(srv.hot);
    tus_sweeper_stop(&sweeper);
    mi_watch_stop(srv.watch);
    if (pthread_timedjoin_np(scan_thread, NULL, &scan_deadline) != 0) {
        fprintf(stderr, "media-server: the scan did not stop in time; "
                        "exiting without waiting\n");
        _exit(1);
    }
    mi_index_close(srv.idx);
    auth_close(srv.auth);
    mg_exit_library();
    pthread_mutex_destroy(&stopper.lock);
    pthread_cond_destroy(&stopper.done_cond);
    pthread_mutex_destroy(&srv.lock);
    pthread_mutex_destroy(&srv.conn_lock);
    pthread_mutex_destroy(&srv.auth_lock);
    free(srv.busy);
    pthread_cond_destroy(&srv.wake);
    fprintf(stderr, "media-server: stopped\n");
    return 0;
}
