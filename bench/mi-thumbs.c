/*
 * mi-thumbs - make the thumbnail of each file named, public API only.
 *
 *   mi-thumbs [-o OUTDIR] FILE...
 *
 * Writes OUTDIR/<base name>.png (OUTDIR default "."), one file after the
 * other in one thread: run several with xargs -P for parallelism, the way
 * bench/thumbs.sh runs vipsthumbnail.  Exit status 1 if any file failed.
 */
#include <mediaindex.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *outdir = ".";
    int i = 1, failed = 0;

    if (argc > 2 && strcmp(argv[1], "-o") == 0) {
        outdir = argv[2];
        i = 3;
    }
    for (; i < argc; i++) {
        const char *base = strrchr(argv[i], '/');
        char out[4096];
        uint8_t *png = NULL;
        size_t len = 0;
        mi_status s = mi_thumb_make_file(&png, &len, argv[i], NULL);
        FILE *f;

        if (s != MI_OK) {
            fprintf(stderr, "%s: %s\n", argv[i], mi_strerror(s));
            failed = 1;
            continue;
        }
        snprintf(out, sizeof(out), "%s/%s.png", outdir, base ? base + 1 : argv[i]);
        f = fopen(out, "wb");
        if (!f || fwrite(png, 1, len, f) != len || fclose(f) != 0) {
            fprintf(stderr, "%s: cannot write\n", out);
            failed = 1;
        }
        mi_free(png);
    }
    return failed;
}
