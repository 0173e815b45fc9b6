/*
 * thumb-profile - where a JPEG thumbnail's time goes, per image (medians
 * would need more runs; these are means over the files given):
 *   decode  libjpeg-turbo at the DCT scale thumb.c picks (1/8 for photos)
 *   resize  stb_image_resize (Mitchell, opaque) to fit 256 x 256
 *   png     our writer (lib/png.c) vs stb_image_write (level 8, adaptive
 *           filter) on the same 256 x 256 canvas: time and bytes
 *
 *   ninja -C BUILD bench/thumb-profile && BUILD/bench/thumb-profile FILE.jpg...
 *
 * With -d first, only the decode, and no report: what every 256 px
 * thumbnailer of a JPEG pays at least (vipsthumbnail's shrink-on-load is
 * the same libjpeg-turbo call), for bench/thumbs.sh to time beside vips.
 *
 * Links the internal library (private header): a profiling tool, not a
 * client.
 */
#include "mi-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <turbojpeg.h>

#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_image_write.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    double td = 0, tr = 0, te = 0, ts = 0;
    size_t sz = 0, szs = 0;
    int n = 0, first = 1;
    bool decode_only = argc > 1 && strcmp(argv[1], "-d") == 0;

    if (decode_only)
        first = 2;
    for (int a = first; a < argc; a++) {
        FILE *f = fopen(argv[a], "rb");
        unsigned char *buf, *px, *canvas, *sp;
        long len;
        int w, h, ss, cs, sw, sh, rw, rh, sl = 0;
        tjscalingfactor sf = { 1, 8 };
        uint8_t *png;
        size_t pl;
        double t0, t1, t2, t3, t4;
        tjhandle tj;

        if (!f)
            continue;
        fseek(f, 0, SEEK_END);
        len = ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = malloc((size_t)len);
        if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
            fclose(f);
            free(buf);
            continue;
        }
        fclose(f);

        t0 = now();
        tj = tjInitDecompress();
        if (tjDecompressHeader3(tj, buf, (unsigned long)len, &w, &h, &ss, &cs) != 0) {
            tjDestroy(tj);
            free(buf);
            continue;
        }
        if (w >= h) {
            rw = 256;
            rh = (int)(((long)h * 512 + w) / (2L * w));
        } else {
            rh = 256;
            rw = (int)(((long)w * 512 + h) / (2L * h));
        }
        while (sf.denom > 1 && (TJSCALED(w, sf) < rw || TJSCALED(h, sf) < rh))
            sf.denom /= 2;
        sw = TJSCALED(w, sf);
        sh = TJSCALED(h, sf);
        px = malloc((size_t)sw * sh * 4);
        tjDecompress2(tj, buf, (unsigned long)len, px, sw, 0, sh, TJPF_RGBA,
                      TJFLAG_LIMITSCANS | TJFLAG_FASTDCT);
        tjDestroy(tj);
        t1 = now();
        if (decode_only) {
            free(px);
            free(buf);
            n++;
            continue;
        }
        canvas = calloc(256 * 256, 4);
        mi_stbir_resize_rgba(px, sw, sh, sw * 4,
                             canvas + ((256 - rh) / 2) * 1024 + ((256 - rw) / 2) * 4,
                             rw, rh, 1024, false);
        t2 = now();
        mi_png_encode_rgba(&png, &pl, canvas, 256, 256, 1024);
        t3 = now();
        sp = stbi_write_png_to_mem(canvas, 1024, 256, 256, 4, &sl);
        t4 = now();
        td += t1 - t0;
        tr += t2 - t1;
        te += t3 - t2;
        ts += t4 - t3;
        sz += pl;
        szs += (size_t)sl;
        n++;
        free(png);
        free(sp);
        free(px);
        free(canvas);
        free(buf);
    }
    if (!n)
        return 1;
    if (decode_only)
        return 0;
    printf("%d images: decode %.2f ms, resize %.2f ms, png (ours) %.2f ms %zu B,"
           " png (stb_image_write) %.2f ms %zu B\n", n, td * 1e3 / n,
           tr * 1e3 / n, te * 1e3 / n, sz / (size_t)n, ts * 1e3 / n,
           szs / (size_t)n);
    return 0;
}
