/*
 * upload.c - PUT /image/<filename>: a multipart/form-data body whose part
 * "file" is streamed by civetweb's form parser (GET mode: chunks handed to
 * us, nothing stored by civetweb) into the library's mi_store_* upload.
 *
 * Guards (see SECURITY.md, civetweb):
 *  - only PUT with a multipart/form-data Content-Type reaches
 *    mg_handle_form_request, so its url-encoded parser (which spins for
 *    ever on "a=%") is unreachable;
 *  - civetweb's max_request_size does not limit bodies: we refuse a
 *    Content-Length over the cap before reading, and count every byte the
 *    parser hands us (all parts, the file's and others) for chunked bodies;
 *  - anything short of a complete, well-formed body is discarded
 *    (mi_store_free without commit removes the temp file).
 */
#include "server.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Room for the multipart framing around the file: boundaries, part
 * headers, small extra fields. */
#define FRAMING_SLACK (64u << 10)

struct upload {
    struct server *srv;
    const char *name;       /* the URL's file name, decoded */
    mi_store *st;
    bool in_file;           /* the current part is our file */
    bool seen_file;
    uint64_t body;          /* bytes the parser handed us */
    uint64_t cap;
    mi_status failed;       /* first failure, or MI_OK */
    char msg[320];          /* its detail */
};

static int field_found(const char *key, const char *filename, char *path,
                       size_t pathlen, void *user_data)
{
    struct upload *u = user_data;
    mi_status s;

    (void)path;
    (void)pathlen;
    u->in_file = false;
    if (u->failed != MI_OK)
        return MG_FORM_FIELD_STORAGE_ABORT;
    if (strcmp(key, "file") != 0 || u->seen_file)
        return MG_FORM_FIELD_STORAGE_GET;  /* read and count, not kept */
    u->seen_file = true;
    s = mi_store_begin(&u->st, u->srv->idx, u->name, filename, u->srv->max_upload);
    if (s != MI_OK) {
        u->failed = s;
        snprintf(u->msg, sizeof(u->msg), "%s", mi_index_errmsg(u->srv->idx));
        return MG_FORM_FIELD_STORAGE_ABORT;
    }
    u->in_file = true;
    return MG_FORM_FIELD_STORAGE_GET;
}

static int field_get(const char *key, const char *value, size_t len,
                     void *user_data)
{
    struct upload *u = user_data;
    mi_status s;

    (void)key;      /* NULL after a part's first block */
    if (u->failed != MI_OK)
        return MG_FORM_FIELD_HANDLE_ABORT;
    u->body += len;
    if (u->body > u->cap) {
        u->failed = MI_ETOOBIG;
        snprintf(u->msg, sizeof(u->msg), "upload larger than %llu bytes",
                 (unsigned long long)u->cap);
        return MG_FORM_FIELD_HANDLE_ABORT;
    }
    if (u->in_file && len) {
        s = mi_store_write(u->st, value, len);
        if (s != MI_OK) {
            u->failed = s;
            snprintf(u->msg, sizeof(u->msg), "%s", mi_store_errmsg(u->st));
            return MG_FORM_FIELD_HANDLE_ABORT;
        }
    }
    return MG_FORM_FIELD_HANDLE_GET;
}

/* "multipart/form-data; boundary=..." exactly as civetweb's parser wants
 * it (it compares the first 20 bytes, then expects "boundary="). */
static bool is_multipart(const char *ct)
{
    const char *p;

    if (!ct || strncasecmp(ct, "multipart/form-data;", 20) != 0)
        return false;
    for (p = ct + 20; *p == ' '; p++)
        ;
    return strncasecmp(p, "boundary=", 9) == 0 && p[9] != '\0';
}

static void reply_stored(struct req *r, mi_store *st)
{
    bool created = mi_store_created(st) != 0;
    const char *hex = mi_store_hash_hex(st);
    uint8_t hash[MI_HASH_SIZE];
    mi_entry *e = NULL;
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;
    bool ok;

    ok = o &&
         cJSON_AddStringToObject(o, "message",
                                 created ? "Image uploaded successfully."
                                         : "Image content already exists.") &&
         cJSON_AddStringToObject(o, "sha256", hex) &&
         json_add_string(o, "filename", mi_store_filename(st)) &&
         json_add_string(o, "file_path", mi_store_path(st));
    if (ok && created) {
        const char *thumb = NULL;
        if (mi_hash_from_hex(hash, hex) == MI_OK &&
            mi_lookup(&e, r->srv->idx, hash) == MI_OK)
            thumb = mi_entry_thumbnail(e);
        ok = thumb ? json_add_string(o, "thumbnail_file", thumb)
                   : cJSON_AddNullToObject(o, "thumbnail_file") != NULL;
        mi_entry_free(e);
    }
    if (ok)
        text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text) {
        send_error(r, 500, NULL, "out of memory");
        return;
    }
    send_json(r, created ? 201 : 200, text, NULL);
    cJSON_free(text);
}

void handle_put(struct req *r, const char *name)
{
    struct upload u;
    struct mg_form_data_handler fdh;
    const char *te = mg_get_header(r->conn, "Transfer-Encoding");
    long long clen = r->ri->content_length;
    mi_status s;
    int n;

    memset(&u, 0, sizeof(u));
    u.srv = r->srv;
    u.name = name;
    u.cap = r->srv->max_upload + FRAMING_SLACK;
    /* Until the body has been read to its end, the connection cannot carry
     * another request. */
    r->close = true;

    if (!is_multipart(mg_get_header(r->conn, "Content-Type"))) {
        send_error(r, 400, NULL, "no file part: expected a multipart/form-data "
                                 "body with a part named \"file\"");
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

    memset(&fdh, 0, sizeof(fdh));
    fdh.field_found = field_found;
    fdh.field_get = field_get;
    fdh.user_data = &u;
    n = mg_handle_form_request(r->conn, &fdh);

    if (u.failed != MI_OK) {
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
    } else if (n < 0) {
        send_error(r, 400, NULL,
                   "malformed or incomplete multipart/form-data body");
    } else if (!u.st) {
        send_error(r, 400, NULL, "no file part: expected a part named \"file\"");
    } else {
        /* The whole body has been read: the connection may live on. */
        r->close = false;
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
