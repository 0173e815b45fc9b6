/*
 * upload.c - PUT /image/<filename>: a multipart/form-data body whose part
 * "file" is streamed, as it arrives, into the library's mi_store_* upload
 * (a temp file under DIR/.mediaindex/tmp/, hashed while written).
 *
 * The body is parsed by multipart.c, not by civetweb's
 * mg_handle_form_request: civetweb's parser reads 8 KiB at a time and
 * scans byte by byte (about 100 MB/s here, against 1 GB/s for hashing),
 * and its url-encoded branch spins for ever on "a=%" (SECURITY.md).
 *
 * Guards:
 *  - only PUT with a multipart/form-data Content-Type and a boundary is
 *    read at all; anything else is a 400 before the body;
 *  - civetweb's max_request_size does not limit bodies: a Content-Length
 *    over the cap is a 413 before the body (and before "100 Continue"),
 *    and every byte read counts against the cap (chunked bodies);
 *  - anything short of a complete, well-formed body is discarded
 *    (mi_store_free without commit removes the temp file).
 */
#include "multipart.h"
#include "server.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>

/* Room for the multipart framing around the file: boundaries, part
 * headers, small extra fields. */
#define FRAMING_SLACK (64u << 10)
/* Read buffer: big reads keep the per-byte cost down (1 MiB measured). */
#define READ_BUF (1u << 20)
/* Free space an upload must leave on the disk, for the catalog and the
 * thumbnails. */
#define SPACE_RESERVE (16u << 20)

struct upload {
    struct server *srv;
    struct mg_connection *conn;
    const char *name;       /* the URL's file name, decoded */
    mi_store *st;
    bool in_file;           /* the current part is our file */
    bool seen_file;
    bool expect_continue;   /* the client waits for "100 Continue" */
    bool too_slow;          /* the body came too slowly: cut off */
    uint64_t body;          /* body bytes read */
    uint64_t cap;
    mi_status failed;       /* first failure, or MI_OK */
    char msg[320];          /* its detail */
};

static long body_read(void *ud, char *buf, size_t len)
{
    struct upload *u = ud;
    int n;

    if (u->expect_continue) {
        u->expect_continue = false;
        mg_write(u->conn, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    if (u->failed != MI_OK)
        return -1;
    n = mg_read(u->conn, buf, len);
    if (n > 0)
        u->body += (uint64_t)n;
    if (conns_progress(u->srv, mg_get_request_info(u->conn), u->body)) {
        u->failed = MI_EABORTED;    /* the reaper cut it off */
        u->too_slow = true;
        return -1;
    }
    if (n <= 0)
        return n < 0 ? -1 : 0;
    if (u->body > u->cap) {
        u->failed = MI_ETOOBIG;
        return -1;
    }
    return n;
}

static int part_begin(void *ud, const char *name, const char *filename)
{
    struct upload *u = ud;
    mi_status s;

    u->in_file = false;
    if (strcmp(name, "file") != 0 || u->seen_file)
        return 0;           /* read and counted, not kept */
    u->seen_file = true;
    if (!*filename) {
        /* A form submitted with no file chosen: the origin's "no selected
         * file", and nothing is stored. */
        u->failed = MI_EINVAL;
        snprintf(u->msg, sizeof(u->msg), "no selected file: the \"file\" "
                 "part has an empty filename");
        return 1;
    }
    s = mi_store_begin(&u->st, u->srv->idx, u->name, filename,
                       u->srv->max_upload);
    if (s != MI_OK) {
        u->failed = s;
        snprintf(u->msg, sizeof(u->msg), "%s", mi_index_errmsg(u->srv->idx));
        return 1;
    }
    u->in_file = true;
    return 0;
}

static int part_data(void *ud, const char *data, size_t len)
{
    struct upload *u = ud;
    mi_status s;

    if (!u->in_file)
        return 0;
    s = mi_store_write(u->st, data, len);
    if (s != MI_OK) {
        u->failed = s;
        snprintf(u->msg, sizeof(u->msg), "%s", mi_store_errmsg(u->st));
        return 1;
    }
    return 0;
}

/*
 * 201 {message, sha256, filename, file_path, thumbnail_file, ...} or
 * 200 {message, sha256, filename, file_path, ...}: the contract's fields,
 * plus the entry's /list fields so a client (the gallery) can show the new
 * item without fetching the whole list again.
 */
static void reply_stored(struct req *r, mi_store *st)
{
    bool created = mi_store_created(st) != 0;
    const char *hex = mi_store_hash_hex(st);
    uint8_t hash[MI_HASH_SIZE];
    mi_entry *e = NULL;
    cJSON *o = NULL;
    bool ok;

    if (mi_hash_from_hex(hash, hex) == MI_OK &&
        mi_lookup(&e, r->srv->idx, hash) == MI_OK)
        o = list_entry_object(e);
    else
        o = cJSON_CreateObject();
    mi_entry_free(e);

    /* The stored name and path are the upload's (the entry's primary path
     * may be another copy); only a new file names its thumbnail. */
    if (o) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, "filename");
        cJSON_DeleteItemFromObjectCaseSensitive(o, "file_path");
        if (!created)
            cJSON_DeleteItemFromObjectCaseSensitive(o, "thumbnail_file");
        else if (!cJSON_GetObjectItemCaseSensitive(o, "thumbnail_file"))
            cJSON_AddNullToObject(o, "thumbnail_file");
    }
    ok = o &&
         cJSON_AddStringToObject(o, "message",
                                 created ? "Image uploaded successfully."
                                         : "Image content already exists.") &&
         cJSON_AddStringToObject(o, "sha256", hex) &&
         json_add_string(o, "filename", mi_store_filename(st)) &&
         json_add_string(o, "file_path", mi_store_path(st));
    if (!ok) {
        cJSON_Delete(o);
        o = NULL;
    }
    send_cjson(r, created ? 201 : 200, o, NULL);
}

/* Is there room on the storage folder's disk for `bytes` more (the
 * body's length when known) and SPACE_RESERVE besides, so that an upload
 * never takes the last blocks the catalog needs? */
static bool room_for(const struct server *srv, uint64_t bytes)
{
    struct statvfs v;

    if (statvfs(srv->root, &v) != 0)
        return true;            /* cannot tell: let the write say */
    return (uint64_t)v.f_bavail * v.f_frsize >= bytes + SPACE_RESERVE;
}

void handle_put(struct req *r, const char *name)
{
    struct upload u;
    struct mp_callbacks cb = { body_read, part_begin, part_data };
    const char *te = mg_get_header(r->conn, "Transfer-Encoding");
    const char *expect = mg_get_header(r->conn, "Expect");
    char boundary[MP_BOUNDARY_MAX + 1];
    long long clen = r->ri->content_length;
    mi_status s;
    int rc;

    memset(&u, 0, sizeof(u));
    u.srv = r->srv;
    u.conn = r->conn;
    u.name = name;
    u.cap = r->srv->max_upload + FRAMING_SLACK;
    /* Until the body has been read to its end, the connection cannot carry
     * another request. */
    r->close = true;

    if (mp_boundary(boundary, mg_get_header(r->conn, "Content-Type")) != 0) {
        send_error(r, 400, NULL, "no file part: expected a multipart/form-data "
                                 "body (with a boundary) and a part named "
                                 "\"file\"");
        return;
    }
    if (!*name) {
        send_error(r, 400, NULL, "empty file name");
        return;
    }
    if (clen < 0 && !(te && strcasestr(te, "chunked"))) {
        send_error(r, 411, NULL, "a Content-Length is required");
        return;
    }
    if (clen == 0) {
        send_error(r, 400, NULL, "no file part: the body is empty");
        return;
    }
    if (clen > 0 && (unsigned long long)clen > u.cap) {
        send_error(r, 413, NULL, "upload larger than %llu bytes",
                   (unsigned long long)r->srv->max_upload);
        return;
    }
    {
        char why[512];
        mi_status ws = mi_index_writable(r->srv->idx, why, sizeof(why));

        if (ws != MI_OK) {
            /* Before the body: the catalog could not take it anyway. */
            send_error(r, ws == MI_ENOSPACE ? 507 : 503, "Retry-After: 60\r\n",
                       "%s", why);
            return;
        }
    }
    if (!room_for(r->srv, clen > 0 ? (uint64_t)clen : 0)) {
        send_error(r, 507, NULL, "no space left on device: the storage "
                                 "folder's disk cannot take this upload");
        return;
    }
    u.expect_continue = expect && strcasecmp(expect, "100-continue") == 0 &&
                        strcmp(r->ri->http_version, "1.1") == 0;

    rc = mp_parse(boundary, READ_BUF, &cb, &u);
    if (rc == MP_OK) {
        char rest[256];
        /* Read what follows the closing delimiter (a CRLF, usually):
         * all of it, and the connection may carry another request. */
        if (mg_read(r->conn, rest, sizeof(rest)) == 0)
            r->close = false;
    }

    if (u.too_slow) {
        send_error(r, 408, NULL, "the upload came too slowly (under 4 KB/s "
                                 "on average) and was cut off");
    } else if (u.failed != MI_OK) {
        if (u.failed == MI_ETOOBIG)
            send_error(r, 413, NULL, "upload larger than %llu bytes",
                       (unsigned long long)r->srv->max_upload);
        else if (http_status_of(u.failed) >= 500) {
            fprintf(stderr, "media-server: upload failed: %s: %s\n",
                    mi_strerror(u.failed), u.msg);
            send_error(r, http_status_of(u.failed), NULL,
                       "cannot store the upload: %s", mi_strerror(u.failed));
        } else
            send_error(r, http_status_of(u.failed), NULL, "%s",
                       u.msg[0] ? u.msg : mi_strerror(u.failed));
    } else if (rc == MP_ETRUNCATED) {
        send_error(r, 400, NULL, "incomplete body: the upload was cut off");
    } else if (rc == MP_ENOMEM) {
        send_error(r, 503, NULL, "out of memory");
    } else if (rc != MP_OK) {
        send_error(r, 400, NULL, "malformed multipart/form-data body");
    } else if (!u.st) {
        send_error(r, 400, NULL, "no file part: expected a part named \"file\"");
    } else {
        s = mi_store_commit(u.st);
        if (s == MI_OK)
            reply_stored(r, u.st);
        else if (http_status_of(s) >= 500) {
            fprintf(stderr, "media-server: upload commit failed: %s: %s\n",
                    mi_strerror(s), mi_store_errmsg(u.st));
            send_error(r, http_status_of(s), NULL,
                       "cannot store the upload: %s", mi_strerror(s));
        } else
            send_error(r, http_status_of(s), NULL, "%s",
                       *mi_store_errmsg(u.st) ? mi_store_errmsg(u.st)
                                              : mi_strerror(s));
    }
    mi_store_free(u.st);   /* not committed: the temp file goes */
}
