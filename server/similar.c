/*
 * similar.c - near-duplicates over HTTP (the library's mi_similar_*):
 *   GET /api/similar/<sha>[?distance=N]  the contents that look like one
 *   GET /api/similar[?distance=N]        every group in the library
 * Each item is its /list entry (list_entry_object) plus sha256, distance
 * (bits) and original (the largest of its group: by pixels, then bytes).
 */
#include "server.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ?distance=: "" is the library's default; else 1..MAX, or false. */
static bool parse_distance(const char *arg, mi_similar_options *opts)
{
    char *end;
    unsigned long v;

    if (!*arg)
        return true;
    if (arg[0] < '0' || arg[0] > '9' || strlen(arg) > 2)
        return false;
    v = strtoul(arg, &end, 10);
    if (*end || v < 1 || v > MI_SIMILAR_DISTANCE_MAX)
        return false;
    opts->max_distance = (unsigned)v;
    return true;
}

/* Item i of group g as its /list object plus sha256, distance and
 * original, added to `items`; false when out of memory.  A content gone
 * since the result was made is left out. */
static bool add_item(cJSON *items, mi_index *idx, const mi_similar *s,
                     size_t g, size_t i)
{
    const uint8_t *h = mi_similar_hash(s, g, i);
    mi_entry *e = NULL;
    cJSON *o;
    bool ok;

    if (mi_lookup(&e, idx, h) != MI_OK)
        return true;
    o = list_entry_object(e);
    ok = o && json_add_string(o, "sha256", mi_entry_hash_hex(e)) &&
         cJSON_AddNumberToObject(o, "distance", mi_similar_distance(s, g, i)) &&
         cJSON_AddBoolToObject(o, "original", mi_similar_original(s, g) == i);
    mi_entry_free(e);
    if (ok)
        ok = cJSON_AddItemToArray(items, o);
    if (!ok)
        cJSON_Delete(o);
    return ok;
}

/* The items of group g from item `from` on, into a new array at o.key. */
static bool add_items(cJSON *o, const char *key, mi_index *idx,
                      const mi_similar *s, size_t g, size_t from)
{
    cJSON *items = cJSON_AddArrayToObject(o, key);

    if (!items)
        return false;
    for (size_t i = from; i < mi_similar_size(s, g); i++)
        if (!add_item(items, idx, s, g, i))
            return false;
    return true;
}

static bool add_hex(cJSON *o, const char *key, const uint8_t *h)
{
    char hex[MI_HASH_HEX_LEN + 1];

    mi_hash_to_hex(hex, h);
    return json_add_string(o, key, hex);
}

void route_similar(struct req *r, const uint8_t *hash, const char *distance)
{
    mi_similar_options opts = MI_SIMILAR_OPTIONS_INIT;
    mi_similar *s = NULL;
    cJSON *o;
    mi_status st;
    bool ok;

    if (!parse_distance(distance, &opts)) {
        send_error(r, 400, NULL, "distance: expected a whole number from 1 "
                   "to %u", MI_SIMILAR_DISTANCE_MAX);
        return;
    }
    st = hash ? mi_similar_find(&s, r->srv->idx, hash, &opts)
              : mi_similar_groups(&s, r->srv->idx, &opts);
    if (st == MI_ENOTFOUND) {
        send_error(r, 404, NULL, "no such content");
        return;
    }
    if (st != MI_OK) {
        send_mi_error(r, st, "cannot find near-duplicates");
        return;
    }
    o = cJSON_CreateObject();
    ok = o && cJSON_AddNumberToObject(o, "max_distance",
                                      mi_similar_max_distance(s));
    if (ok && hash) {
        /* The content asked about is item 0; the others follow. */
        ok = add_hex(o, "sha256", hash) &&
             (mi_similar_count(s) == 0
                  ? cJSON_AddNullToObject(o, "original") != NULL
                  : add_hex(o, "original",
                            mi_similar_hash(s, 0, mi_similar_original(s, 0)))) &&
             (mi_similar_count(s) == 0 ? cJSON_AddArrayToObject(o, "items") != NULL
                                       : add_items(o, "items", r->srv->idx, s, 0, 1));
    } else if (ok) {
        cJSON *groups = cJSON_AddArrayToObject(o, "groups");

        ok = groups && cJSON_AddNumberToObject(o, "count",
                                               (double)mi_similar_count(s));
        for (size_t g = 0; ok && g < mi_similar_count(s); g++) {
            cJSON *go = cJSON_CreateObject();

            ok = go && cJSON_AddItemToArray(groups, go);
            if (!ok) {
                cJSON_Delete(go);
                break;
            }
            ok = add_hex(go, "original", mi_similar_hash(s, g, 0)) &&
                 add_items(go, "items", r->srv->idx, s, g, 0);
        }
    }
    mi_similar_free(s);
    if (!ok) {
        cJSON_Delete(o);
        o = NULL;
    }
    send_cjson(r, 200, o, "Cache-Control: no-store\r\n");
}
