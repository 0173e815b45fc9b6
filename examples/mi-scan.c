/*
 * mi-scan - index a folder and print one JSON line per media item.
 *
 *   mi-scan [--full] [--threads N] DIR
 *
 * Opens (or creates) the index in DIR/.mediaindex, brings it up to date
 * (showing a progress line when stderr is a terminal), then prints every
 * indexed photo and video as a JSON object on its own line.
 *
 * Build against an installed libmediaindex:
 *   cc mi-scan.c $(pkg-config --cflags --libs mediaindex libcjson)
 */
#include <mediaindex.h>

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int show_progress(const mi_scan_stats *st, void *payload)
{
    (void)payload;
    fprintf(stderr,
            "\rscanning: %" PRIu64 " seen, %" PRIu64 " new, %" PRIu64
            " changed, %" PRIu64 " removed, %" PRIu64 " failed",
            st->seen, st->added, st->changed, st->removed, st->failed);
    return 0;
}

static const char *source_name(mi_date_source s)
{
    switch (s) {
    case MI_DATE_EXIF_ORIGINAL: return "exif:DateTimeOriginal";
    case MI_DATE_EXIF_DIGITIZED: return "exif:DateTimeDigitized";
    case MI_DATE_EXIF_DATETIME: return "exif:DateTime";
    default: return "ctime";
    }
}

/* One entry as a JSON object, printed on one line.  Returns 0 on success. */
static int print_entry(const mi_entry *e)
{
    cJSON *o = cJSON_CreateObject(), *dups;
    double lat, lon;
    size_t i;
    char *text;

    if (!o)
        return -1;
    cJSON_AddStringToObject(o, "sha256", mi_entry_hash_hex(e));
    cJSON_AddStringToObject(o, "filename", mi_entry_filename(e));
    cJSON_AddStringToObject(o, "file_path", mi_entry_path(e));
    cJSON_AddNumberToObject(o, "size", (double)mi_entry_size(e));
    cJSON_AddNumberToObject(o, "last_modified", (double)mi_entry_mtime_ns(e) / 1e9);
    cJSON_AddNumberToObject(o, "original_creation_date",
                            (double)mi_entry_creation_date(e));
    cJSON_AddStringToObject(o, "date_source",
                            source_name(mi_entry_creation_source(e)));
    cJSON_AddStringToObject(o, "kind",
                            mi_entry_kind(e) == MI_KIND_VIDEO ? "video" : "image");
    cJSON_AddStringToObject(o, "mime_type", mi_entry_mime_type(e));
    if (mi_entry_width(e)) {
        cJSON_AddNumberToObject(o, "width", mi_entry_width(e));
        cJSON_AddNumberToObject(o, "height", mi_entry_height(e));
    }
    if (mi_entry_orientation(e))
        cJSON_AddNumberToObject(o, "orientation", mi_entry_orientation(e));
    if (mi_entry_gps(e, &lat, &lon)) {
        cJSON_AddNumberToObject(o, "latitude", lat);
        cJSON_AddNumberToObject(o, "longitude", lon);
    }
    if (mi_entry_make(e))
        cJSON_AddStringToObject(o, "make", mi_entry_make(e));
    if (mi_entry_model(e))
        cJSON_AddStringToObject(o, "model", mi_entry_model(e));
    if (mi_entry_dup_count(e)) {
        dups = cJSON_AddArrayToObject(o, "duplicates");
        for (i = 0; dups && i < mi_entry_dup_count(e); i++)
            cJSON_AddItemToArray(dups, cJSON_CreateString(mi_entry_dup_path(e, i)));
    }
    text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text)
        return -1;
    puts(text);
    cJSON_free(text);
    return 0;
}

static int usage(FILE *f)
{
    fprintf(f, "usage: mi-scan [--full] [--threads N] DIR\n");
    return f == stderr ? 2 : 0;
}

int main(int argc, char **argv)
{
    mi_index_options opts = MI_INDEX_OPTIONS_INIT;
    mi_scan_options sopts = MI_SCAN_OPTIONS_INIT;
    mi_scan_stats stats = MI_SCAN_STATS_INIT;
    const char *dir = NULL;
    char err[512];
    mi_index *idx;
    mi_cursor *cur;
    mi_status s;
    int i, tty = isatty(STDERR_FILENO);

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--full") == 0)
            sopts.flags |= MI_SCAN_FULL;
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            opts.threads = (unsigned int)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return usage(stdout);
        else if (argv[i][0] == '-' || dir)
            return usage(stderr);
        else
            dir = argv[i];
    }
    if (!dir)
        return usage(stderr);

    s = mi_index_open(&idx, dir, &opts, err, sizeof(err));
    if (s != MI_OK) {
        fprintf(stderr, "mi-scan: %s\n", err);
        return 1;
    }
    if (*mi_index_errmsg(idx))
        fprintf(stderr, "mi-scan: note: %s\n", mi_index_errmsg(idx));

    if (tty)
        sopts.progress = show_progress;
    s = mi_scan(idx, &sopts, &stats);
    if (tty)
        fputc('\n', stderr);
    if (s != MI_OK) {
        fprintf(stderr, "mi-scan: %s: %s\n", mi_strerror(s), mi_index_errmsg(idx));
        mi_index_close(idx);
        return 1;
    }
    fprintf(stderr,
            "mi-scan: %" PRIu64 " media files: %" PRIu64 " new, %" PRIu64
            " changed, %" PRIu64 " unchanged, %" PRIu64 " removed, %" PRIu64
            " failed (%s)\n",
            stats.seen, stats.added, stats.changed, stats.unchanged,
            stats.removed, stats.failed, mi_hash_engine());

    s = mi_cursor_new(&cur, idx);
    while (s == MI_OK && (s = mi_cursor_next(cur)) == MI_ROW) {
        if (print_entry(mi_cursor_entry(cur)) != 0) {
            s = MI_ENOMEM;
            break;
        }
        s = MI_OK;
    }
    mi_cursor_free(cur);
    if (s != MI_DONE) {
        fprintf(stderr, "mi-scan: listing: %s: %s\n", mi_strerror(s),
                mi_index_errmsg(idx));
        mi_index_close(idx);
        return 1;
    }
    mi_index_close(idx);
    return 0;
}
