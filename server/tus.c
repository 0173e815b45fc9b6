/*
 * tus.c - resumable uploads: the tus 1.0 protocol (tus.io) at
 * /api/uploads/, over the library's mi_upload_* store, and POST
 * /api/check, "which of these do you already have?".
 *
 *   OPTIONS /api/uploads/        what we support (no credentials needed)
 *   POST    /api/uploads/        create (Upload-Length or
 *                                Upload-Defer-Length: 1, Upload-Metadata
 *                                with filename, optionally sha256), with
 *                                the first bytes in the body or not
 *   HEAD    /api/uploads/<id>    Upload-Offset, Upload-Length,
 *                                Upload-Expires
 *   PATCH   /api/uploads/<id>    append at Upload-Offset
 *                                (application/offset+octet-stream),
 *                                Upload-Checksum: sha1|sha256 <base64>
 *   DELETE  /api/uploads/<id>    terminate
 *   POST    /api/check           [sha256 hex | {id, sha256}, ...]
 *
 * Extensions: creation, creation-with-upload, creation-defer-length,
 * termination, expiration, checksum.
 *
 * Guarantees: a body is streamed to the upload's .part piece by piece
 * (TUS_READ_BUF at a time, never whole) and synced before the new offset
 * is answered, so an offset we said survives kill -9; a chunk whose
 * checksum does not match is rolled back (460); the library's flock makes
 * a second PATCH on a busy upload a 423 at once; a body cut short keeps
 * what arrived (synced) unless it carried a checksum; after kill -9 only
 * what was synced counts (lib/upload.c).  On the last byte
 * the upload is finished through mi_upload_finish (the same commit as a
 * PUT): the answer carries Mi-Sha256, Mi-File-Path (percent-encoded),
 * Mi-Created and a JSON body like the PUT's, 201 when the content is new,
 * 200 when it was already there.  A client that gave the file's sha256
 * at creation is told "already there" (200, no Location) without sending
 * a byte.
 *
 * Who: with accounts, an upload belongs to the user who made it (the
 * owner string is the user's id); another user's upload is a 404 as if
 * it did not exist.  In open mode there are no owners.
 */
#include "tus.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#ifdef MS_HAVE_OPENSSL
#include <openssl/evp.h>
#endif

#define TUS_VERSION "1.0.0"
#define TUS_EXTENSIONS "creation,creation-with-upload,creation-defer-length," \
                       "termination,expiration,checksum"
#ifdef MS_HAVE_OPENSSL
#define TUS_ALGORITHMS "sha1,sha256"
#else
#define TUS_ALGORITHMS "sha256"
#endif
#define TUS_CONTENT_TYPE "application/offset+octet-stream"
/* Every tus answer carries these. */
#define TUS_HEADERS "Tus-Resumable: " TUS_VERSION "\r\nCache-Control: no-store\r\n"
/* Body read size: large reads keep the per-byte cost down, as upload.c. */
#define TUS_READ_BUF (1u << 20)
/* Upload-Metadata, bytes (civetweb caps all headers at 16 KiB anyway). */
#define TUS_METADATA_MAX 8192
/* A percent-encoded path longer than this stays out of the headers (it is
 * in the JSON body). */
#define TUS_PATH_HEADER_MAX 2048

/* /api/check: at most this many items, this many bytes of body. */
#define CHECK_MAX_ITEMS 50000
#define CHECK_BODY_MAX ((size_t)CHECK_MAX_ITEMS * 96)
#define CHECK_ID_MAX 256

/* ---------------------------------------------------------------------- */
/* Small helpers                                                           */

static void tus_error(struct req *r, int status, const char *more,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void tus_error(struct req *r, int status, const char *more,
                      const char *fmt, ...)
{
    char msg[512], extra[512];
    va_list ap;

    va_start(ap, fmt);
    if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
        msg[0] = '\0';
    va_end(ap);
    snprintf(extra, sizeof(extra), TUS_HEADERS "%s", more ? more : "");
    send_error(r, status, extra, "%s", msg);
}

/* The HTTP status of a library failure, for tus: a busy upload is 423
 * Locked, another owner's upload does not exist (404), content we do not
 * take is 415, and at the finish a hash that does not match is 460. */
static int tus_status_of(mi_status s, bool finishing)
{
    switch (s) {
    case MI_EBUSY: return 423;
    case MI_EACCES: return 404;
    case MI_EFORMAT: return 415;
    case MI_EINVAL: return finishing ? 460 : 400;
    default: return http_status_of(s);
    }
}

/* Answer a library failure; `why` is the detail saved when it happened
 * (NULL: the thread's last). */
static void tus_fail(struct req *r, mi_status s, bool finishing,
                     const char *what, const char *why)
{
    int status = tus_status_of(s, finishing);

    if (!why)
        why = mi_index_errmsg(r->srv->idx);
    if (s == MI_EACCES || s == MI_ENOTFOUND)
        tus_error(r, 404, NULL, "no such upload (unknown, expired, finished "
                  "or terminated)");
    else if (s == MI_EBUSY)
        tus_error(r, 423, NULL, "this upload is receiving another request; "
                  "try again when it has ended");
    else if (status >= 500) {
        fprintf(stderr, "media-server: %s: %s: %s\n", what, mi_strerror(s),
                why);
        tus_error(r, status, s == MI_ENOSPACE ? "Retry-After: 60\r\n" : NULL,
                  "%s: %s", what, s == MI_ENOSPACE
                                      ? "no room for more unfinished uploads "
                                        "or a full disk: try again later"
                                      : mi_strerror(s));
    } else
        tus_error(r, status, NULL, "%s", *why ? why : mi_strerror(s));
}

static bool parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;

    if (!s)
        return false;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s)
        return false;
    *out = v;
    return true;
}

/* Standard base64 (padded or not) of at most `max` bytes; -1 if not. */
static long b64_decode(unsigned char *out, size_t max, const char *in,
                       size_t len)
{
    size_t n = 0;
    const char *end = NULL;

    if (sodium_base642bin(out, max, in, len, NULL, &n, &end,
                          sodium_base64_VARIANT_ORIGINAL) == 0 &&
        end == in + len)
        return (long)n;
    if (sodium_base642bin(out, max, in, len, NULL, &n, &end,
                          sodium_base64_VARIANT_ORIGINAL_NO_PADDING) == 0 &&
        end == in + len)
        return (long)n;
    return -1;
}

/* RFC 9110 date, for Upload-Expires. */
static void http_date(char *buf, size_t len, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (!gmtime_r(&tt, &tm) ||
        strftime(buf, len, "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
        snprintf(buf, len, "Thu, 01 Jan 1970 00:00:00 GMT");
}

/* s percent-encoded for a header value (unreserved and '/' stay). */
static bool pct_encode(char *out, size_t len, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                    c == '_' || c == '~' || c == '/';

        if (o + 4 > len)
            return false;
        if (keep) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return true;
}

static bool tus_resumable_ok(struct req *r)
{
    const char *v = mg_get_header(r->conn, "Tus-Resumable");

    if (v && strcmp(v, TUS_VERSION) == 0)
        return true;
    tus_error(r, 412, "Tus-Version: " TUS_VERSION "\r\n",
              "this server speaks tus %s: send Tus-Resumable: %s",
              TUS_VERSION, TUS_VERSION);
    return false;
}

/* ---------------------------------------------------------------------- */
/* Upload-Checksum                                                         */

enum { CK_NONE = 0, CK_SHA1, CK_SHA256 };

struct checksum;
static void checksum_free(struct checksum *ck);

struct checksum {
    int algo;
    unsigned char want[64];
    long want_len;
    mi_hasher *sha256;        /* the library's own (OpenSSL or libsodium) */
#ifdef MS_HAVE_OPENSSL
    EVP_MD_CTX *sha1;
#endif
};

/* Parse "algorithm base64" (no header: none).  0, or the HTTP status of
 * a refusal with its reason in why. */
static int checksum_parse(struct checksum *ck, const char *h, char *why,
                          size_t whylen)
{
    const char *sp;
    size_t alen;

    memset(ck, 0, sizeof(*ck));
    if (!h)
        return 0;
    while (*h == ' ')
        h++;
    sp = strchr(h, ' ');
    if (!sp) {
        snprintf(why, whylen, "Upload-Checksum: expected \"<algorithm> "
                 "<base64 digest>\"");
        return 400;
    }
    alen = (size_t)(sp - h);
#ifdef MS_HAVE_OPENSSL
    if (alen == 4 && strncasecmp(h, "sha1", 4) == 0)
        ck->algo = CK_SHA1;
#endif
    if (alen == 6 && strncasecmp(h, "sha256", 6) == 0)
        ck->algo = CK_SHA256;
    if (!ck->algo) {
        snprintf(why, whylen, "Upload-Checksum: algorithm %.*s not supported "
                 "(supported: " TUS_ALGORITHMS ")", (int)(alen > 20 ? 20 : alen),
                 h);
        return 400;
    }
    while (*sp == ' ')
        sp++;
    {
        size_t blen = strlen(sp);

        while (blen && sp[blen - 1] == ' ')
            blen--;
        ck->want_len = b64_decode(ck->want, sizeof(ck->want), sp, blen);
    }
    if (ck->want_len != (ck->algo == CK_SHA1 ? 20 : 32)) {
        snprintf(why, whylen, "Upload-Checksum: the digest is not the base64 "
                 "of a %s", ck->algo == CK_SHA1 ? "SHA-1" : "SHA-256");
        ck->algo = CK_NONE;
        return 400;
    }
    if (ck->algo == CK_SHA256 ? mi_hasher_new(&ck->sha256) != MI_OK
#ifdef MS_HAVE_OPENSSL
                              : !(ck->sha1 = EVP_MD_CTX_new()) ||
                                    EVP_DigestInit_ex(ck->sha1, EVP_sha1(), NULL) != 1
#else
                              : true
#endif
    ) {
        checksum_free(ck);
        ck->algo = CK_NONE;
        snprintf(why, whylen, "out of memory");
        return 500;
    }
    return 0;
}

static void checksum_update(struct checksum *ck, const void *p, size_t n)
{
    if (ck->algo == CK_SHA256)
        mi_hasher_update(ck->sha256, p, n);
#ifdef MS_HAVE_OPENSSL
    else if (ck->algo == CK_SHA1)
        EVP_DigestUpdate(ck->sha1, p, n);
#endif
}

static bool checksum_matches(struct checksum *ck)
{
    unsigned char got[64];
    unsigned int n = 0;

    if (!ck->algo)
        return true;
    if (ck->algo == CK_SHA256) {
        if (mi_hasher_final(ck->sha256, got) != MI_OK)
            return false;
        n = MI_HASH_SIZE;
    }
#ifdef MS_HAVE_OPENSSL
    else if (EVP_DigestFinal_ex(ck->sha1, got, &n) != 1)
        return false;
#endif
    return (long)n == ck->want_len && memcmp(got, ck->want, n) == 0;
}

static void checksum_free(struct checksum *ck)
{
    mi_hasher_free(ck->sha256);
    ck->sha256 = NULL;
#ifdef MS_HAVE_OPENSSL
    EVP_MD_CTX_free(ck->sha1);
    ck->sha1 = NULL;
#endif
}

/* ---------------------------------------------------------------------- */
/* Upload-Metadata                                                         */

struct meta {
    char filename[1024];
    bool has_filename;
    char fallback[64];         /* "upload.<ext>" from filetype, or "" */
    bool has_sha;
    uint8_t sha[MI_HASH_SIZE];
};

/* The client's sha256 as its decoded metadata value: 64 hex characters,
 * the base64 of the 32 bytes, or the 32 bytes themselves. */
static bool meta_sha(struct meta *m, const unsigned char *v, long n)
{
    char hex[MI_HASH_HEX_LEN + 1];

    if (n == MI_HASH_HEX_LEN) {
        memcpy(hex, v, MI_HASH_HEX_LEN);
        hex[MI_HASH_HEX_LEN] = '\0';
        for (int i = 0; i < MI_HASH_HEX_LEN; i++)
            if (hex[i] >= 'A' && hex[i] <= 'F')
                hex[i] = (char)(hex[i] - 'A' + 'a');
        return mi_hash_from_hex(m->sha, hex) == MI_OK;
    }
    if (n == 43 || n == 44)
        return b64_decode(m->sha, sizeof(m->sha), (const char *)v,
                          (size_t)n) == MI_HASH_SIZE;
    if (n == MI_HASH_SIZE) {
        memcpy(m->sha, v, MI_HASH_SIZE);
        return true;
    }
    return false;
}

/* The extension the library takes for a MIME type ("image/heic" ->
 * "upload.heic"), so a file name without one still says what it is. */
static void meta_filetype(struct meta *m, const char *mime)
{
    const char *ext, *t;
    unsigned int flags;

    for (size_t i = 0; (ext = mi_media_type_at(i, &t, &flags)); i++)
        if ((flags & MI_MEDIA_UPLOAD) && strcasecmp(t, mime) == 0) {
            snprintf(m->fallback, sizeof(m->fallback), "upload.%s", ext);
            return;
        }
}

/* "key base64,key base64,...": 0, or 400 with the reason. */
static int meta_parse(struct meta *m, const char *h, char *why, size_t whylen)
{
    unsigned char val[1024];
    const char *p = h;

    memset(m, 0, sizeof(*m));
    if (!h)
        return 0;
    if (strlen(h) > TUS_METADATA_MAX) {
        snprintf(why, whylen, "Upload-Metadata longer than %d bytes",
                 TUS_METADATA_MAX);
        return 400;
    }
    while (*p) {
        const char *e = strchr(p, ','), *k, *ke, *v;
        size_t len;
        long n = 0;

        e = e ? e : p + strlen(p);
        while (p < e && *p == ' ')
            p++;
        k = p;
        while (p < e && *p != ' ')
            p++;
        ke = p;
        while (p < e && *p == ' ')
            p++;
        v = p;
        len = (size_t)(e - v);
        while (len && v[len - 1] == ' ')
            len--;
        if (ke > k && len) {
            n = b64_decode(val, sizeof(val) - 1, v, len);
            if (n < 0) {
                snprintf(why, whylen, "Upload-Metadata: the value of %.*s is "
                         "not base64 (or longer than %zu bytes)",
                         (int)(ke - k > 40 ? 40 : ke - k), k, sizeof(val) - 1);
                return 400;
            }
            val[n] = '\0';
        }
#define KEY(s) ((size_t)(ke - k) == strlen(s) && strncmp(k, s, strlen(s)) == 0)
        if (KEY("filename") || (KEY("name") && !m->has_filename)) {
            if (n == 0 || memchr(val, '\0', (size_t)n) ||
                (size_t)n >= sizeof(m->filename)) {
                snprintf(why, whylen, "Upload-Metadata: filename must be a "
                         "non-empty name without NUL bytes");
                return 400;
            }
            memcpy(m->filename, val, (size_t)n + 1);
            m->has_filename = true;
        } else if ((KEY("filetype") || KEY("type")) && n > 0 &&
                   !memchr(val, '\0', (size_t)n)) {
            meta_filetype(m, (const char *)val);
        } else if (KEY("sha256")) {
            if (!meta_sha(m, val, n)) {
                snprintf(why, whylen, "Upload-Metadata: sha256 must be the "
                         "file's SHA-256 (64 hex characters or the base64 of "
                         "its 32 bytes)");
                return 400;
            }
            m->has_sha = true;
        }
#undef KEY
        p = *e ? e + 1 : e;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Answers                                                                 */

/* Expiry, offset and length of an upload, as tus headers. */
static void upload_headers(char *buf, size_t len, const mi_upload_info *info)
{
    char date[64], length[64];

    http_date(date, sizeof(date), info->expires);
    if (info->length == MI_UPLOAD_LENGTH_DEFERRED)
        snprintf(length, sizeof(length), "Upload-Defer-Length: 1\r\n");
    else
        snprintf(length, sizeof(length), "Upload-Length: %" PRIu64 "\r\n",
                 info->length);
    snprintf(buf, len, TUS_HEADERS "Upload-Offset: %" PRIu64 "\r\n%s"
             "Upload-Expires: %s\r\n", info->offset, length, date);
}

/* The stored content's headers: Mi-Sha256, Mi-File-Path, Mi-Created. */
static void stored_headers(char *buf, size_t len, const char *hex,
                           const char *path, bool created)
{
    char enc[TUS_PATH_HEADER_MAX + 1];
    bool has_path = pct_encode(enc, sizeof(enc), path);

    snprintf(buf, len, "Mi-Sha256: %s\r\n%s%s%sMi-Created: %s\r\n", hex,
             has_path ? "Mi-File-Path: " : "", has_path ? enc : "",
             has_path ? "\r\n" : "", created ? "true" : "false");
}

/* {message, sha256, filename, file_path, created, ...the entry's /list
 * fields}, as a PUT answers. */
static cJSON *stored_json(struct req *r, const char *hex, const char *name,
                          const char *path, bool created)
{
    uint8_t hash[MI_HASH_SIZE];
    mi_entry *e = NULL;
    cJSON *o;

    if (mi_hash_from_hex(hash, hex) == MI_OK &&
        mi_lookup(&e, r->srv->idx, hash) == MI_OK)
        o = list_entry_object(e);
    else
        o = cJSON_CreateObject();
    mi_entry_free(e);
    if (o) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, "filename");
        cJSON_DeleteItemFromObjectCaseSensitive(o, "file_path");
        if (!created)
            cJSON_DeleteItemFromObjectCaseSensitive(o, "thumbnail_file");
    }
    if (o && !(cJSON_AddStringToObject(o, "message",
                                       created ? "Image uploaded successfully."
                                               : "Image content already "
                                                 "exists.") &&
               cJSON_AddStringToObject(o, "sha256", hex) &&
               json_add_string(o, "filename", name) &&
               json_add_string(o, "file_path", path) &&
               cJSON_AddBoolToObject(o, "created", created))) {
        cJSON_Delete(o);
        o = NULL;
    }
    return o;
}

/* The answer to a request that finished an upload: 201 when the content
 * is new, else 200 (`status` > 0 forces it: a creation is always 201). */
static void reply_finished(struct req *r, mi_upload *up, uint64_t length,
                           int status, const char *more)
{
    char extra[TUS_PATH_HEADER_MAX + 1024], stored[TUS_PATH_HEADER_MAX + 256];
    bool created = mi_upload_created(up) != 0;

    stored_headers(stored, sizeof(stored), mi_upload_hash_hex(up),
                   mi_upload_path(up), created);
    snprintf(extra, sizeof(extra), TUS_HEADERS "Upload-Offset: %" PRIu64
             "\r\nUpload-Length: %" PRIu64 "\r\n%s%s", length, length, stored,
             more ? more : "");
    if (status <= 0)
        status = created ? 201 : 200;
    send_cjson(r, status,
               stored_json(r, mi_upload_hash_hex(up), mi_upload_filename(up),
                           mi_upload_path(up), created), extra);
}

/* Finish a complete upload and answer.  The handle stays the caller's. */
static void finish_and_reply(struct req *r, mi_upload *up, int status,
                             const char *more)
{
    uint64_t length = mi_upload_offset(up);
    mi_status s = mi_upload_finish(up);

    if (s != MI_OK) {
        char why[512];

        /* Unlocked before the answer: a client that tries again at once
         * must not meet its own last request (423). */
        snprintf(why, sizeof(why), "%s", mi_index_errmsg(r->srv->idx));
        mi_upload_close(up);
        if (s == MI_EINVAL)
            tus_error(r, 460, NULL, "the file's bytes do not hash to the "
                      "sha256 given at creation: the upload is discarded");
        else
            tus_fail(r, s, true, "cannot store the upload", why);
        return;
    }
    /* Finished, the upload is gone: nothing is left to meet. */
    reply_finished(r, up, length, status, more);
    mi_upload_close(up);
}

/* ---------------------------------------------------------------------- */
/* Receiving a body                                                        */

enum recv_result {
    RECV_OK,          /* all of it written and synced */
    RECV_SHORT,       /* the body ended early: what came is kept (synced)
                         unless a checksum was given */
    RECV_SLOW,        /* the reaper cut it off: likewise */
    RECV_MISMATCH,    /* the checksum did not match: rolled back */
    RECV_FAILED       /* the library refused or failed: rolled back */
};

/* Stream the request body into `up` at its offset.  *fail and why get the
 * library's status and detail for RECV_FAILED. */
static enum recv_result receive(struct req *r, mi_upload *up,
                                struct checksum *ck, mi_status *fail,
                                char *why, size_t whylen)
{
    const char *te = mg_get_header(r->conn, "Transfer-Encoding");
    const char *expect = mg_get_header(r->conn, "Expect");
    bool chunked = te && strcasestr(te, "chunked");
    long long clen = r->ri->content_length;
    uint64_t want, got = 0, off = mi_upload_offset(up);
    enum recv_result res = RECV_OK;
    char *buf = NULL;
    mi_status s = MI_OK;

    *fail = MI_OK;
    why[0] = '\0';
    if (clen < 0 && !chunked)
        clen = 0;                    /* no body */
    want = clen >= 0 ? (uint64_t)clen : UINT64_MAX;
    if (want > 0) {
        if (expect && strcasecmp(expect, "100-continue") == 0 &&
            strcmp(r->ri->http_version, "1.1") == 0)
            mg_write(r->conn, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        buf = malloc(TUS_READ_BUF);
        if (!buf) {
            *fail = MI_ENOMEM;
            snprintf(why, whylen, "out of memory");
            return RECV_FAILED;
        }
    }
    while (got < want) {
        size_t ask = want - got < TUS_READ_BUF ? (size_t)(want - got)
                                               : TUS_READ_BUF;
        int n = mg_read(r->conn, buf, ask);

        if (n > 0)
            got += (uint64_t)n;
        if (conns_progress(r->srv, r->ri, got)) {
            res = RECV_SLOW;
            break;
        }
        if (n <= 0) {
            if (clen >= 0 || n < 0)
                res = RECV_SHORT;
            break;
        }
        checksum_update(ck, buf, (size_t)n);
        s = mi_upload_write(up, off, buf, (size_t)n);
        if (s != MI_OK) {
            snprintf(why, whylen, "%s", mi_index_errmsg(r->srv->idx));
            res = RECV_FAILED;
            break;
        }
        off += (uint64_t)n;
    }
    free(buf);

    if (res == RECV_OK) {
        /* The whole body is read: the connection may carry another. */
        r->close = false;
        if (!checksum_matches(ck))
            res = RECV_MISMATCH;
    }
    if (res == RECV_FAILED || res == RECV_MISMATCH ||
        ((res == RECV_SHORT || res == RECV_SLOW) && ck->algo)) {
        mi_upload_rollback(up);
    } else {
        mi_status ss = mi_upload_sync(up);

        if (ss != MI_OK) {
            snprintf(why, whylen, "%s", mi_index_errmsg(r->srv->idx));
            s = ss;
            res = RECV_FAILED;
        }
    }
    if (res == RECV_SHORT || res == RECV_SLOW || res == RECV_FAILED)
        r->close = true;
    *fail = s;
    return res;
}

/* Answer a receive() that did not end in RECV_OK. */
static void reply_receive(struct req *r, enum recv_result res, mi_status s,
                          const char *why)
{
    switch (res) {
    case RECV_SHORT:
        tus_error(r, 400, NULL, "incomplete body: the request ended before "
                  "its Content-Length");
        break;
    case RECV_SLOW:
        tus_error(r, 408, NULL, "the body came too slowly (under 4 KB/s on "
                  "average) and was cut off");
        break;
    case RECV_MISMATCH:
        tus_error(r, 460, NULL, "Upload-Checksum does not match the bytes "
                  "received: the chunk is discarded");
        break;
    case RECV_FAILED:
        tus_fail(r, s, false, "cannot write the upload", why);
        break;
    case RECV_OK:
        break;
    }
}

/* ---------------------------------------------------------------------- */
/* The routes                                                              */

static void tus_options(struct req *r)
{
    char extra[512];

    snprintf(extra, sizeof(extra), "Tus-Resumable: " TUS_VERSION "\r\n"
             "Tus-Version: " TUS_VERSION "\r\nTus-Extension: " TUS_EXTENSIONS
             "\r\nTus-Max-Size: %" PRIu64 "\r\nTus-Checksum-Algorithm: "
             TUS_ALGORITHMS "\r\nAllow: OPTIONS, POST, HEAD, PATCH, DELETE\r\n",
             r->srv->max_upload);
    send_headers(r, 204, NULL, 0, extra);
}

/* Is there a body, and is it tus's type? 0, or the refusal's status. */
static int body_kind(struct req *r, bool *has_body)
{
    const char *te = mg_get_header(r->conn, "Transfer-Encoding");
    const char *ct = mg_get_header(r->conn, "Content-Type");

    *has_body = r->ri->content_length > 0 || (te && strcasestr(te, "chunked"));
    if (*has_body && (!ct || strncasecmp(ct, TUS_CONTENT_TYPE,
                                         strlen(TUS_CONTENT_TYPE)) != 0))
        return 415;
    return 0;
}

static void tus_create(struct req *r, const char *owner)
{
    const char *ul = mg_get_header(r->conn, "Upload-Length");
    const char *dl = mg_get_header(r->conn, "Upload-Defer-Length");
    mi_upload_options opts = MI_UPLOAD_OPTIONS_INIT;
    mi_upload_info info = MI_UPLOAD_INFO_INIT;
    char id[MI_UPLOAD_ID_LEN + 1], why[512], extra[1024], loc[128];
    struct checksum ck;
    struct meta m;
    uint64_t length = 0;
    mi_upload *up = NULL;
    bool has_body;
    mi_status s;
    int st;

    if ((ul != NULL) == (dl != NULL)) {
        tus_error(r, 400, NULL, "send either Upload-Length or "
                  "Upload-Defer-Length: 1");
        return;
    }
    if (dl && strcmp(dl, "1") != 0) {
        tus_error(r, 400, NULL, "Upload-Defer-Length must be 1");
        return;
    }
    if (ul && !parse_u64(ul, &length)) {
        tus_error(r, 400, NULL, "Upload-Length must be a number of bytes");
        return;
    }
    if (ul && length > r->srv->max_upload) {
        tus_error(r, 413, NULL, "upload larger than %" PRIu64 " bytes "
                  "(Tus-Max-Size)", r->srv->max_upload);
        return;
    }
    if ((st = meta_parse(&m, mg_get_header(r->conn, "Upload-Metadata"), why,
                         sizeof(why))) != 0) {
        tus_error(r, st, NULL, "%s", why);
        return;
    }
    if (!m.has_filename) {
        tus_error(r, 400, NULL, "Upload-Metadata must name the file: "
                  "filename <base64 of the name>");
        return;
    }
    if ((st = body_kind(r, &has_body)) != 0) {
        tus_error(r, st, NULL, "a body must be " TUS_CONTENT_TYPE);
        return;
    }
    if (m.has_sha) {
        char path[MI_MAX_PATH_LEN + 1], hex[MI_HASH_HEX_LEN + 1];
        char stored[TUS_PATH_HEADER_MAX + 256], more[TUS_PATH_HEADER_MAX + 512];

        s = mi_index_has(path, sizeof(path), r->srv->idx, m.sha,
                         MI_HAS_ON_DISK);
        if (s == MI_OK) {
            /* Already here: nothing to send. */
            const char *slash = strrchr(path, '/');

            mi_hash_to_hex(hex, m.sha);
            stored_headers(stored, sizeof(stored), hex, path, false);
            snprintf(more, sizeof(more), TUS_HEADERS "%s", stored);
            send_cjson(r, 200, stored_json(r, hex, slash ? slash + 1 : path,
                                           path, false), more);
            return;
        }
        if (s != MI_ENOTFOUND) {
            tus_fail(r, s, false, "cannot look the hash up", NULL);
            return;
        }
        opts.sha256 = m.sha;
    }
    if ((st = checksum_parse(&ck, mg_get_header(r->conn, "Upload-Checksum"),
                             why, sizeof(why))) != 0) {
        tus_error(r, st, NULL, "%s", why);
        return;
    }
    if (has_body && ul && r->ri->content_length > 0 &&
        (uint64_t)r->ri->content_length > length) {
        checksum_free(&ck);
        tus_error(r, 413, NULL, "the body is longer than Upload-Length");
        return;
    }
    opts.max_bytes = r->srv->max_upload;
    opts.fallback_name = m.fallback[0] ? m.fallback : NULL;
    s = mi_upload_create(id, r->srv->idx, m.filename,
                         ul ? length : MI_UPLOAD_LENGTH_DEFERRED, owner, &opts);
    if (s != MI_OK) {
        checksum_free(&ck);
        tus_fail(r, s, false, "cannot create the upload", NULL);
        return;
    }
    snprintf(loc, sizeof(loc), "Location: " TUS_PATH "%s\r\n", id);
    if (has_body) {
        /* creation-with-upload: the first bytes came along. */
        mi_status fs;
        enum recv_result res;

        s = mi_upload_open(&up, r->srv->idx, id, owner);
        if (s != MI_OK) {
            checksum_free(&ck);
            tus_fail(r, s, false, "cannot open the new upload", NULL);
            return;
        }
        res = receive(r, up, &ck, &fs, why, sizeof(why));
        checksum_free(&ck);
        if (res == RECV_OK && ul && mi_upload_offset(up) == length) {
            finish_and_reply(r, up, 201, loc);
            return;
        }
        if (res == RECV_FAILED && fs != MI_ENOSPACE && fs != MI_ETOOBIG &&
            tus_status_of(fs, false) >= 500) {
            mi_upload_close(up);
            reply_receive(r, res, fs, why);
            return;
        }
        /* Otherwise the upload exists with what was kept: say where it
         * is, and from where to go on. */
        if (res != RECV_OK)
            fprintf(stderr, "media-server: upload %s: its first chunk was "
                    "not kept whole (%s)\n", id,
                    res == RECV_MISMATCH ? "checksum mismatch"
                    : res == RECV_FAILED ? mi_strerror(fs) : "cut short");
        s = mi_upload_info_get(&info, up);
        mi_upload_close(up);
    } else {
        checksum_free(&ck);
        s = mi_upload_stat(&info, r->srv->idx, id, owner);
    }
    if (s != MI_OK) {
        tus_fail(r, s, false, "cannot read the new upload", NULL);
        return;
    }
    upload_headers(extra, sizeof(extra), &info);
    snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), "%s", loc);
    send_json(r, 201, "{\"created\":true}", extra);
}

static void tus_head(struct req *r, const char *id, const char *owner)
{
    mi_upload_info info = MI_UPLOAD_INFO_INIT;
    char extra[1024];
    mi_status s = mi_upload_stat(&info, r->srv->idx, id, owner);

    if (s != MI_OK) {
        tus_fail(r, s, false, "cannot read the upload", NULL);
        return;
    }
    if (info.length != MI_UPLOAD_LENGTH_DEFERRED && info.offset == info.length) {
        /* Complete but not finished (we stopped between the last byte and
         * the finish): finish it now, unless a request holds it. */
        mi_upload *up = NULL;

        if (mi_upload_open(&up, r->srv->idx, id, owner) == MI_OK) {
            if (mi_upload_offset(up) == info.length) {
                finish_and_reply(r, up, 200, NULL);
                mi_upload_close(up);
                return;
            }
            mi_upload_info_get(&info, up);
            mi_upload_close(up);
        }
    }
    upload_headers(extra, sizeof(extra), &info);
    send_headers(r, 200, NULL, 0, extra);
}

static void tus_patch(struct req *r, const char *id, const char *owner)
{
    const char *ho = mg_get_header(r->conn, "Upload-Offset");
    const char *hl = mg_get_header(r->conn, "Upload-Length");
    mi_upload_info info = MI_UPLOAD_INFO_INIT;
    uint64_t offset, length = 0;
    char why[512], extra[1024];
    struct checksum ck;
    enum recv_result res;
    mi_upload *up = NULL;
    bool has_body;
    mi_status s, fs;
    int st;

    if ((st = body_kind(r, &has_body)) != 0 ||
        !mg_get_header(r->conn, "Content-Type") ||
        strncasecmp(mg_get_header(r->conn, "Content-Type"), TUS_CONTENT_TYPE,
                    strlen(TUS_CONTENT_TYPE)) != 0) {
        tus_error(r, 415, NULL, "a PATCH body must be " TUS_CONTENT_TYPE);
        return;
    }
    if (!parse_u64(ho, &offset)) {
        tus_error(r, 400, NULL, "Upload-Offset must be a number of bytes");
        return;
    }
    if (hl && !parse_u64(hl, &length)) {
        tus_error(r, 400, NULL, "Upload-Length must be a number of bytes");
        return;
    }
    if ((st = checksum_parse(&ck, mg_get_header(r->conn, "Upload-Checksum"),
                             why, sizeof(why))) != 0) {
        tus_error(r, st, NULL, "%s", why);
        return;
    }
    s = mi_upload_open(&up, r->srv->idx, id, owner);
    if (s != MI_OK) {
        checksum_free(&ck);
        tus_fail(r, s, false, "cannot open the upload", NULL);
        return;
    }
    if (offset != mi_upload_offset(up)) {
        uint64_t at = mi_upload_offset(up);
        char more[64];

        /* Every answer below is sent once the upload is unlocked: a
         * client that goes on at once must not get 423 from its own last
         * request. */
        checksum_free(&ck);
        mi_upload_close(up);
        snprintf(more, sizeof(more), "Upload-Offset: %" PRIu64 "\r\n", at);
        tus_error(r, 409, more, "the upload is at offset %" PRIu64 ", not %"
                  PRIu64 ": nothing was written", at, offset);
        return;
    }
    if (hl) {
        if (length > r->srv->max_upload) {
            checksum_free(&ck);
            mi_upload_close(up);
            tus_error(r, 413, NULL, "upload larger than %" PRIu64 " bytes "
                      "(Tus-Max-Size)", r->srv->max_upload);
            return;
        }
        s = mi_upload_set_length(up, length);
        if (s != MI_OK) {
            char err[512];

            snprintf(err, sizeof(err), "%s", mi_index_errmsg(r->srv->idx));
            checksum_free(&ck);
            mi_upload_close(up);
            tus_fail(r, s, false, "cannot set the length", err);
            return;
        }
    }
    mi_upload_info_get(&info, up);
    if (info.length != MI_UPLOAD_LENGTH_DEFERRED &&
        r->ri->content_length > 0 &&
        (uint64_t)r->ri->content_length > info.length - offset) {
        checksum_free(&ck);
        mi_upload_close(up);
        tus_error(r, 413, NULL, "%lld bytes at %" PRIu64 " go past the "
                  "upload's length, %" PRIu64, r->ri->content_length, offset,
                  info.length);
        return;
    }
    res = receive(r, up, &ck, &fs, why, sizeof(why));
    checksum_free(&ck);
    if (res != RECV_OK) {
        mi_upload_close(up);
        reply_receive(r, res, fs, why);
        return;
    }
    mi_upload_info_get(&info, up);
    if (info.length != MI_UPLOAD_LENGTH_DEFERRED &&
        info.offset == info.length) {
        finish_and_reply(r, up, 0, NULL);
        return;
    }
    mi_upload_close(up);
    upload_headers(extra, sizeof(extra), &info);
    send_headers(r, 204, NULL, 0, extra);
}

static void tus_delete(struct req *r, const char *id, const char *owner)
{
    mi_status s = mi_upload_delete(r->srv->idx, id, owner);

    if (s != MI_OK) {
        tus_fail(r, s, false, "cannot terminate the upload", NULL);
        return;
    }
    send_headers(r, 204, NULL, 0, TUS_HEADERS);
}

void tus_route(struct req *r, const char *id)
{
    const char *m = r->ri->request_method;
    char owner_buf[32];
    const char *owner = NULL;

    if (strcmp(m, "OPTIONS") == 0) {
        tus_options(r);
        return;
    }
    if (!tus_resumable_ok(r))
        return;
    /* With accounts an upload is its maker's; in open mode nobody's. */
    if (r->verdict == AUTH_ALLOW && r->who.via != AUTH_VIA_NONE) {
        snprintf(owner_buf, sizeof(owner_buf), "%" PRId64, r->who.user_id);
        owner = owner_buf;
    }
    if (!id) {
        if (strcmp(m, "POST") == 0)
            tus_create(r, owner);
        else
            tus_error(r, 405, "Allow: OPTIONS, POST\r\n",
                      "method %s not allowed here (allowed: OPTIONS, POST)", m);
    } else if (strcmp(m, "HEAD") == 0) {
        tus_head(r, id, owner);
    } else if (strcmp(m, "PATCH") == 0) {
        tus_patch(r, id, owner);
    } else if (strcmp(m, "DELETE") == 0) {
        tus_delete(r, id, owner);
    } else {
        tus_error(r, 405, "Allow: OPTIONS, HEAD, PATCH, DELETE\r\n",
                  "method %s not allowed here (allowed: OPTIONS, HEAD, PATCH, "
                  "DELETE)", m);
    }
}

/* ---------------------------------------------------------------------- */
/* POST /api/check                                                         */

/* The answer is written in chunks of about this many bytes. */
#define CHECK_OUT_CHUNK (64u << 10)

struct out {
    struct req *r;
    char *buf;
    size_t len, cap;
    bool failed;
};

static void out_flush(struct out *o)
{
    if (o->len && !o->failed &&
        mg_send_chunk(o->r->conn, o->buf, (unsigned int)o->len) <= 0)
        o->failed = true;
    if (o->len && !o->failed)
        o->r->bytes += o->len;
    o->len = 0;
}

#define OUT_LIT(o, s) out_raw(o, s, sizeof(s) - 1)

static void out_raw(struct out *o, const char *s, size_t n)
{
    while (n) {
        size_t k = o->cap - o->len < n ? o->cap - o->len : n;

        memcpy(o->buf + o->len, s, k);
        o->len += k;
        s += k;
        n -= k;
        if (o->len == o->cap)
            out_flush(o);
    }
}

/* A JSON string (s valid UTF-8, or repaired first). */
static void out_str(struct out *o, const char *s)
{
    char *fixed = NULL, esc[8];

    if (!utf8_valid(s) && (fixed = utf8_replace(s)) != NULL)
        s = fixed;
    out_raw(o, "\"", 1);
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;

        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            out_raw(o, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            out_raw(o, esc, 6);
        } else {
            out_raw(o, p, 1);
        }
    }
    out_raw(o, "\"", 1);
    free(fixed);
}

/* A pre-check item: {id, name, size, date}, no hash. */
struct pre {
    uint64_t size;
    const char *name;          /* NULL: none */
    double date;               /* epoch seconds; < 0: none */
    size_t item;               /* its place in the request */
    char *path;                /* the match's (malloc'd), or NULL */
};

enum { ITEM_BAD = 0, ITEM_HASH, ITEM_PRE };

/* One item: a hash string, {id, sha256}, or {id, name, size, date} for
 * the pre-check.  ITEM_BAD with a reason. */
static int check_item(const cJSON *it, uint8_t hash[MI_HASH_SIZE],
                      const cJSON **id, char *why, size_t whylen, size_t i,
                      struct pre *pre)
{
    const cJSON *h = it;
    char hex[MI_HASH_HEX_LEN + 1];

    *id = NULL;
    if (cJSON_IsObject(it)) {
        *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (*id && !cJSON_IsString(*id) && !cJSON_IsNumber(*id)) {
            snprintf(why, whylen, "item %zu: id must be a string or a number",
                     i);
            return false;
        }
        if (*id && cJSON_IsString(*id) &&
            strlen((*id)->valuestring) > CHECK_ID_MAX) {
            snprintf(why, whylen, "item %zu: id longer than %d bytes", i,
                     CHECK_ID_MAX);
            return false;
        }
        h = cJSON_GetObjectItemCaseSensitive(it, "sha256");
        if (!h) {
            const cJSON *sz = cJSON_GetObjectItemCaseSensitive(it, "size");
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
            const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "date");

            if (!cJSON_IsNumber(sz) || sz->valuedouble < 0 ||
                sz->valuedouble > 9007199254740992.0 ||
                (nm && (!cJSON_IsString(nm) ||
                        strlen(nm->valuestring) > 1024)) ||
                (dt && (!cJSON_IsNumber(dt) || dt->valuedouble < 0)) ||
                (!nm && !dt)) {
                snprintf(why, whylen, "item %zu: a pre-check is {\"id\", "
                         "\"size\": bytes, \"name\": file name and/or "
                         "\"date\": capture time, epoch seconds}", i);
                return ITEM_BAD;
            }
            memset(pre, 0, sizeof(*pre));
            pre->size = (uint64_t)sz->valuedouble;
            pre->name = nm ? nm->valuestring : NULL;
            pre->date = dt ? dt->valuedouble : -1;
            pre->item = i;
            return ITEM_PRE;
        }
    }
    if (!cJSON_IsString(h) || strlen(h->valuestring) != MI_HASH_HEX_LEN) {
        snprintf(why, whylen, "item %zu: expected a SHA-256 (64 hexadecimal "
                 "characters) or {\"id\": ..., \"sha256\": ...}", i);
        return ITEM_BAD;
    }
    memcpy(hex, h->valuestring, sizeof(hex));
    for (int k = 0; k < MI_HASH_HEX_LEN; k++)
        if (hex[k] >= 'A' && hex[k] <= 'F')
            hex[k] = (char)(hex[k] - 'A' + 'a');
    if (mi_hash_from_hex(hash, hex) != MI_OK) {
        snprintf(why, whylen, "item %zu: not a SHA-256 (64 hexadecimal "
                 "characters)", i);
        return ITEM_BAD;
    }
    return ITEM_HASH;
}

static int pre_cmp(const void *a, const void *b)
{
    const struct pre *x = a, *y = b;

    return x->size < y->size ? -1 : x->size > y->size;
}

/* The pre-check: one walk over the catalog, each entry looked up by size
 * among the sorted items; same size and the same name (ignoring case) or
 * the same capture time (to 2 s) is "probably present".  -1 on failure
 * (answered). */
static int pre_match(struct req *r, struct pre *pre, size_t npre)
{
    mi_cursor *c = NULL;
    mi_status s;

    qsort(pre, npre, sizeof(*pre), pre_cmp);
    s = mi_cursor_new(&c, r->srv->idx);
    while (s >= 0 && (s = mi_cursor_next(c)) == MI_ROW) {
        const mi_entry *e = mi_cursor_entry(c);
        uint64_t size = mi_entry_size(e);
        size_t lo = 0, hi = npre;

        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (pre[mid].size < size)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (; lo < npre && pre[lo].size == size; lo++) {
            struct pre *p = &pre[lo];
            double d = (double)mi_entry_creation_date(e) - p->date;

            if (p->path)
                continue;
            if ((p->name && strcasecmp(p->name, mi_entry_filename(e)) == 0) ||
                (p->date >= 0 && d > -2.0 && d < 2.0))
                p->path = strdup(mi_entry_path(e));
        }
    }
    mi_cursor_free(c);
    if (s != MI_DONE) {
        send_mi_error(r, s, "cannot read the catalog");
        return -1;
    }
    return 0;
}

/*
 * [sha256 | {id, sha256} | {id, name, size, date}, ...] -> {"results":
 * [{"id"?, "sha256", "present", "file_path"?}, ...], "count": N,
 * "present": K, "probably_present": P} in the same order, streamed.  A
 * hash counts while a file of its content is on disk; an item without a
 * hash (a client that cannot hash a 4 GB video before deciding) gets
 * "probably_present" from its size and name or capture date.
 */
void check_route(struct req *r)
{
    const char *ct = mg_get_header(r->conn, "Content-Type");
    long long len = r->ri->content_length;
    char *body = NULL, why[256], path[MI_MAX_PATH_LEN + 1];
    size_t got = 0, n, present = 0, probably = 0, i, npre = 0;
    struct pre *pre = NULL;
    size_t *pre_of = NULL;
    cJSON *arr = NULL, *it;
    struct out o;
    mi_status s;

    r->close = true;
    if (!ct || strncasecmp(ct, "application/json", 16) != 0) {
        send_error(r, 415, NULL, "send a JSON array (Content-Type: "
                   "application/json)");
        return;
    }
    if (len < 0) {
        send_error(r, 411, NULL, "a Content-Length is required");
        return;
    }
    if ((unsigned long long)len > CHECK_BODY_MAX) {
        send_error(r, 413, NULL, "body larger than %zu bytes (at most %d "
                   "hashes)", CHECK_BODY_MAX, CHECK_MAX_ITEMS);
        return;
    }
    if (!(body = malloc((size_t)len + 1))) {
        send_error(r, 503, NULL, "out of memory");
        return;
    }
    while (got < (size_t)len) {
        int k = mg_read(r->conn, body + got, (size_t)len - got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    if (got != (size_t)len) {
        free(body);
        send_error(r, 400, NULL, "incomplete body");
        return;
    }
    r->close = false;
    arr = cJSON_ParseWithLength(body, got);
    free(body);
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        send_error(r, 400, NULL, "the body is not a JSON array");
        return;
    }
    n = (size_t)cJSON_GetArraySize(arr);
    if (n > CHECK_MAX_ITEMS) {
        cJSON_Delete(arr);
        send_error(r, 413, NULL, "at most %d hashes in one request",
                   CHECK_MAX_ITEMS);
        return;
    }
    /* Every item is checked before the answer starts. */
    pre = malloc((n ? n : 1) * sizeof(*pre));
    pre_of = malloc((n ? n : 1) * sizeof(*pre_of));
    memset(&o, 0, sizeof(o));
    if (!pre || !pre_of) {
        send_error(r, 503, NULL, "out of memory");
        goto out;
    }
    i = 0;
    cJSON_ArrayForEach(it, arr) {
        uint8_t hash[MI_HASH_SIZE];
        const cJSON *id;
        int kind = check_item(it, hash, &id, why, sizeof(why), i, &pre[npre]);

        if (kind == ITEM_BAD) {
            send_error(r, 400, NULL, "%s", why);
            goto out;
        }
        pre_of[i++] = kind == ITEM_PRE ? npre++ : SIZE_MAX;
    }
    if (npre && pre_match(r, pre, npre) != 0)
        goto out;
    /* Sorted by size now: where did each item's record go? */
    for (size_t k = 0; k < npre; k++)
        pre_of[pre[k].item] = k;
    o.r = r;
    o.cap = CHECK_OUT_CHUNK;
    if (!(o.buf = malloc(o.cap))) {
        send_error(r, 503, NULL, "out of memory");
        goto out;
    }
    send_headers(r, 200, "application/json", -1, "Cache-Control: no-store\r\n");
    OUT_LIT(&o, "{\"results\":[");
    i = 0;
    cJSON_ArrayForEach(it, arr) {
        uint8_t hash[MI_HASH_SIZE];
        char hex[MI_HASH_HEX_LEN + 1], num[64];
        const cJSON *id;
        struct pre scratch;

        check_item(it, hash, &id, why, sizeof(why), i, &scratch);
        if (i)
            OUT_LIT(&o, ",");
        OUT_LIT(&o, "{");
        if (id && cJSON_IsString(id)) {
            OUT_LIT(&o, "\"id\":");
            out_str(&o, id->valuestring);
            OUT_LIT(&o, ",");
        } else if (id) {
            snprintf(num, sizeof(num), "\"id\":%.17g,", id->valuedouble);
            out_raw(&o, num, strlen(num));
        }
        if (pre_of[i] != SIZE_MAX) {
            /* A pre-check: a guess, never a promise. */
            const struct pre *p = &pre[pre_of[i]];

            if (p->path) {
                probably++;
                OUT_LIT(&o, "\"present\":false,\"probably_present\":true,"
                            "\"file_path\":");
                out_str(&o, p->path);
            } else {
                OUT_LIT(&o, "\"present\":false,\"probably_present\":false");
            }
            OUT_LIT(&o, "}");
            i++;
            continue;
        }
        mi_hash_to_hex(hex, hash);
        s = mi_index_has(path, sizeof(path), r->srv->idx, hash,
                         MI_HAS_ON_DISK);
        OUT_LIT(&o, "\"sha256\":\"");
        out_raw(&o, hex, MI_HASH_HEX_LEN);
        OUT_LIT(&o, "\"");
        if (s == MI_OK) {
            present++;
            OUT_LIT(&o, ",\"present\":true,\"file_path\":");
            out_str(&o, path);
        } else {
            if (s != MI_ENOTFOUND)
                fprintf(stderr, "media-server: check: %s: %s\n", mi_strerror(s),
                        mi_index_errmsg(r->srv->idx));
            OUT_LIT(&o, ",\"present\":false");
        }
        OUT_LIT(&o, "}");
        i++;
    }
    {
        char tail[96];

        snprintf(tail, sizeof(tail), "],\"count\":%zu,\"present\":%zu,"
                 "\"probably_present\":%zu}", i, present, probably);
        out_raw(&o, tail, strlen(tail));
    }
    out_flush(&o);
    if (!o.failed)
        mg_send_chunk(r->conn, "", 0);
    else
        r->close = true;
out:
    for (size_t k = 0; pre && k < npre; k++)
        free(pre[k].path);
    free(pre);
    free(pre_of);
    free(o.buf);
    cJSON_Delete(arr);
}

/* ---------------------------------------------------------------------- */
/* The sweeper                                                             */

void tus_sweep(mi_index *idx, unsigned int trash_days)
{
    uint64_t removed = 0, purged = 0;
    mi_status s = mi_trash_purge(idx, NULL,
                                 (int64_t)time(NULL) - (int64_t)trash_days * 86400,
                                 &purged);

    if (s != MI_OK)
        fprintf(stderr, "media-server: trash: %s: %s\n", mi_strerror(s),
                mi_index_errmsg(idx));
    else if (purged)
        fprintf(stderr, "media-server: trash: %" PRIu64 " item%s trashed over "
                "%u days ago deleted for good\n", purged,
                purged == 1 ? "" : "s", trash_days);
    s = mi_upload_sweep(idx, 0, &removed);

    if (s != MI_OK)
        fprintf(stderr, "media-server: upload sweep: %s: %s\n",
                mi_strerror(s), mi_index_errmsg(idx));
    else if (removed)
        fprintf(stderr, "media-server: upload sweep: %" PRIu64 " expired "
                "or complete upload%s done with\n", removed,
                removed == 1 ? "" : "s");
}

static void *sweeper(void *arg)
{
    struct tus_sweeper *sw = arg;

    pthread_mutex_lock(&sw->lock);
    while (!sw->stop) {
        struct timespec until;
        int rc = 0;

        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += (time_t)sw->period_s;
        while (!sw->stop && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&sw->wake, &sw->lock, &until);
        if (sw->stop)
            break;
        pthread_mutex_unlock(&sw->lock);
        tus_sweep(sw->idx, sw->trash_days);
        pthread_mutex_lock(&sw->lock);
    }
    pthread_mutex_unlock(&sw->lock);
    return NULL;
}

int tus_sweeper_start(struct tus_sweeper *sw, mi_index *idx,
                      unsigned int period_s, unsigned int trash_days)
{
    pthread_condattr_t ca;

    memset(sw, 0, sizeof(*sw));
    sw->idx = idx;
    sw->trash_days = trash_days;
    sw->period_s = period_s ? period_s : 3600;
    pthread_mutex_init(&sw->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sw->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&sw->thread, NULL, sweeper, sw) != 0)
        return -1;
    sw->started = true;
    return 0;
}

void tus_sweeper_stop(struct tus_sweeper *sw)
{
    if (!sw->started)
        return;
    pthread_mutex_lock(&sw->lock);
    sw->stop = true;
    pthread_cond_broadcast(&sw->wake);
    pthread_mutex_unlock(&sw->lock);
    pthread_join(sw->thread, NULL);
    sw->started = false;
    pthread_mutex_destroy(&sw->lock);
    pthread_cond_destroy(&sw->wake);
}
