/*
 * store.c - upload ingest (placeholder; being written).
 */
#include "config.h"
#include "mi-private.h"

mi_status mi_store_begin(mi_store **out, mi_index *idx, const char *name,
                         const char *fallback_name, uint64_t max_bytes)
{
    MI_UNUSED(idx); MI_UNUSED(name); MI_UNUSED(fallback_name); MI_UNUSED(max_bytes);
    if (out)
        *out = NULL;
    return MI_EUNSUPPORTED;
}
mi_status mi_store_write(mi_store *st, const void *buf, size_t len)
{
    MI_UNUSED(st); MI_UNUSED(buf); MI_UNUSED(len);
    return MI_EUNSUPPORTED;
}
mi_status mi_store_commit(mi_store *st) { MI_UNUSED(st); return MI_EUNSUPPORTED; }
const char *mi_store_hash_hex(const mi_store *st) { MI_UNUSED(st); return ""; }
const char *mi_store_path(const mi_store *st) { MI_UNUSED(st); return ""; }
const char *mi_store_filename(const mi_store *st) { MI_UNUSED(st); return ""; }
int mi_store_created(const mi_store *st) { MI_UNUSED(st); return 0; }
const char *mi_store_errmsg(const mi_store *st) { MI_UNUSED(st); return ""; }
void mi_store_free(mi_store *st) { MI_UNUSED(st); }
mi_status mi_filename_sanitize(char *out, size_t out_size, const char *in)
{
    MI_UNUSED(in);
    if (out && out_size)
        out[0] = '\0';
    return MI_EUNSUPPORTED;
}
