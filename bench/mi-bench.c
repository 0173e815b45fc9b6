/*
 * mi-bench - time the library's index operations, public API only.
 *
 *   mi-bench open DIR                  open the index and count: "ready"
 *   mi-bench scan [--full] [--no-thumbs] [-j N] DIR
 *                                      open and scan, print the stats
 *   mi-bench list DIR                  open and walk every entry
 *
 * Wall time goes to stderr; run it under hyperfine or /usr/bin/time -v.
 */
#include <mediaindex.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    mi_index_options opts = MI_INDEX_OPTIONS_INIT;
    mi_scan_options sopts = MI_SCAN_OPTIONS_INIT;
    mi_scan_stats st = MI_SCAN_STATS_INIT;
    const char *cmd, *dir = NULL;
    uint64_t media = 0, files = 0;
    double t0 = now();
    char err[512];
    mi_index *idx;
    mi_status s = MI_OK;
    int i;

    if (argc < 3) {
        fprintf(stderr, "usage: mi-bench open|scan|list [--full] [--no-thumbs] "
                        "[-j N] DIR\n");
        return 2;
    }
    cmd = argv[1];
    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--full") == 0)
            sopts.flags |= MI_SCAN_FULL;
        else if (strcmp(argv[i], "--no-thumbs") == 0)
            opts.flags |= MI_INDEX_NO_THUMBNAILS;
        else if (strcmp(argv[i], "-j") == 0 && i + 1 < argc)
            opts.threads = (unsigned int)atoi(argv[++i]);
        else
            dir = argv[i];
    }
    if (!dir)
        return 2;
    if (mi_index_open(&idx, dir, &opts, err, sizeof(err)) != MI_OK) {
        fprintf(stderr, "mi-bench: %s\n", err);
        return 1;
    }
    if (strcmp(cmd, "scan") == 0) {
        s = mi_scan(idx, &sopts, &st);
        fprintf(stderr,
                "scan: %s, seen %" PRIu64 " added %" PRIu64 " changed %" PRIu64
                " unchanged %" PRIu64 " removed %" PRIu64 " failed %" PRIu64
                ", %" PRIu64 " files / %.1f MB hashed, %" PRIu64
                " thumbnails\n",
                mi_strerror(s), st.seen, st.added, st.changed, st.unchanged,
                st.removed, st.failed, st.files_hashed,
                (double)st.bytes_hashed / 1e6, st.thumbs_made);
    } else if (strcmp(cmd, "list") == 0) {
        mi_cursor *c = NULL;
        uint64_t n = 0, bytes = 0;
        s = mi_cursor_new(&c, idx);
        while (s == MI_OK && mi_cursor_next(c) == MI_ROW) {
            n++;
            bytes += strlen(mi_entry_path(mi_cursor_entry(c)));
        }
        mi_cursor_free(c);
        fprintf(stderr, "list: %" PRIu64 " entries (%" PRIu64 " path bytes)\n",
                n, bytes);
    }
    mi_index_count(idx, &media, &files);
    fprintf(stderr, "%s: %" PRIu64 " media, %" PRIu64 " files, %.3f s\n", cmd,
            media, files, now() - t0);
    mi_index_close(idx);
    return s == MI_OK ? 0 : 1;
}
