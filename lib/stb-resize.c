/*
 * stb-resize.c - the one place stb_image_resize is compiled (static).
 */
#include "config.h"
#include "mi-private.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_STATIC
#define STBIR_ASSERT(x) ((void)0)
#include <stb/stb_image_resize.h>
/* No "pop": some of these warnings are issued at the end of the file. */

bool mi_stbir_resize_rgba(const uint8_t *in, int iw, int ih, int istride,
                          uint8_t *out, int ow, int oh, int ostride,
                          bool alpha)
{
    /* Mitchell filter (stb's default for shrinking), on the sRGB values as
     * they are (like vipsthumbnail's default): converting to linear light
     * and back costs more than the rest of the resize.  Opaque images skip
     * the alpha weighting. */
    return stbir_resize_uint8_generic(in, iw, ih, istride, out, ow, oh, ostride,
                                      4, alpha ? 3 : STBIR_ALPHA_CHANNEL_NONE,
                                      0, STBIR_EDGE_CLAMP,
                                      STBIR_FILTER_DEFAULT,
                                      STBIR_COLORSPACE_LINEAR, NULL) == 1;
}
