/*
 * thumb.c - thumbnails (placeholder until the thumbnail module lands).
 */
#include "config.h"
#include "mi-private.h"

#include <stdlib.h>

mi_status mi_thumb_make_buffer(uint8_t **png, size_t *png_len,
                               const void *buf, size_t len,
                               const mi_thumb_options *opts)
{
    MI_UNUSED(buf);
    MI_UNUSED(len);
    MI_UNUSED(opts);
    if (png)
        *png = NULL;
    if (png_len)
        *png_len = 0;
    return MI_EUNSUPPORTED;
}

mi_status mi_thumb_make_file(uint8_t **png, size_t *png_len, const char *path,
                             const mi_thumb_options *opts)
{
    MI_UNUSED(path);
    return mi_thumb_make_buffer(png, png_len, NULL, 0, opts);
}

void mi_free(void *p)
{
    free(p);
}

mi_status mi_thumb_get(char *out, size_t out_size, mi_index *idx,
                       const uint8_t hash[MI_HASH_SIZE])
{
    MI_UNUSED(idx);
    MI_UNUSED(hash);
    if (out && out_size)
        out[0] = '\0';
    return MI_EUNSUPPORTED;
}

mi_status mi_thumb_write_fd(mi_index *idx, const uint8_t hash[MI_HASH_SIZE],
                            int fd, const mi_media_type *type,
                            mi_thumb_state *state)
{
    MI_UNUSED(idx);
    MI_UNUSED(hash);
    MI_UNUSED(fd);
    MI_UNUSED(type);
    if (state)
        *state = MI_THUMB_UNSUPPORTED;
    return MI_EUNSUPPORTED;
}
