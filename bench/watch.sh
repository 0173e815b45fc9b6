#!/usr/bin/env bash
# watch.sh - the folder watcher (mi_watch_*): how soon a file copied into
# a big folder is indexed, and what watching costs at rest.
#
#   BUILD=./build bench/watch.sh [FILES=10000] [COPIES=50] [FOLDERS=1000]
#
#  1. A folder of FILES photos, indexed; the watcher started on it.  COPIES
#     12 MP JPEGs (~2 MB) are copied into that folder one at a time (each
#     written and closed, as cp does); each one's latency is from the start
#     of its copy until mi_index_has() finds its hash (polled every 1 ms).
#     p50 / p95 / max, with the default debounce (300 ms) and with 50 ms.
#  2. At rest: the process's CPU time and context switches over REST
#     seconds (default 10) with the watcher running and nothing changing.
#  3. FOLDERS empty folders: the time mi_watch_start takes to watch them
#     and the watcher's heap per folder (mallinfo2); the kernel's own cost
#     per watch from /proc/slabinfo when it is readable (root).
# The client is compiled here against the build's library (public API).
# Needs: cc, ffmpeg (the sources), python3.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build=$(cd "${BUILD:-./build}" && pwd)
files=${1:-10000}
copies=${2:-50}
folders=${3:-1000}
rest=${REST:-10}
for tool in cc ffmpeg python3; do
    command -v "$tool" >/dev/null || { echo "watch.sh: $tool not found" >&2; exit 1; }
done
ninja -C "$build" >/dev/null
work=$(mktemp -d "${TMPDIR:-/tmp}/mi-watch-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

cat >"$work/client.c" <<'EOF'
/* The watcher's latency and its cost at rest, through the public API. */
#define _GNU_SOURCE
#include <mediaindex.h>

#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int die(const char *what, const char *detail)
{
    fprintf(stderr, "client: %s: %s\n", what, detail);
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void copy_file(const char *from, const char *to)
{
    static char buf[1 << 16];
    int in = open(from, O_RDONLY), out;
    ssize_t n;

    out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0)
        die("copy", to);
    while ((n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n)
            die("write", to);
    close(in);
    if (close(out) != 0)
        die("close", to);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* latency DIR SUBDIR INCOMING COPIES DEBOUNCE_MS REST_S */
static int latency(char **argv)
{
    const char *dir = argv[0], *sub = argv[1], *incoming = argv[2];
    int copies = atoi(argv[3]), rest = atoi(argv[5]), i, n = 0;
    mi_watch_options wo = MI_WATCH_OPTIONS_INIT;
    mi_watch_info info = MI_WATCH_INFO_INIT;
    char err[512], *names[4096];
    double *lat = calloc((size_t)copies, sizeof(double)), t0;
    struct rusage r0, r1;
    mi_index *idx = NULL;
    mi_watch *w = NULL;
    struct dirent *de;
    DIR *d;

    if (mi_index_open(&idx, dir, NULL, err, sizeof(err)) != MI_OK)
        die("open", err);
    t0 = now_s();
    if (mi_scan(idx, NULL, NULL) != MI_OK)
        die("scan", mi_index_errmsg(idx));
    printf("  indexed the folder in %.1f s (not measured below)\n", now_s() - t0);
    wo.flags = MI_WATCH_NO_FIRST_SCAN;
    wo.debounce_ms = (unsigned)atoi(argv[4]);
    t0 = now_s();
    if (mi_watch_start(&w, idx, &wo) != MI_OK)
        die("watch", mi_index_errmsg(idx));
    mi_watch_state(w, &info);
    printf("  watching %llu folders (%s%s) after %.1f ms\n",
           (unsigned long long)info.folders,
           info.mode == MI_WATCH_INOTIFY ? "inotify" : "polling: ", info.reason,
           (now_s() - t0) * 1e3);

    d = opendir(incoming);
    if (!d)
        die("opendir", incoming);
    while ((de = readdir(d)) && n < 4096)
        if (de->d_name[0] != '.')
            names[n++] = strdup(de->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof(*names), by_name);
    if (n < copies)
        copies = n;
    for (i = 0; i < copies; i++) {
        char from[4096], to[4096];
        uint8_t h[MI_HASH_SIZE];

        snprintf(from, sizeof(from), "%s/%s", incoming, names[i]);
        snprintf(to, sizeof(to), "%s/%s/%s", dir, sub, names[i]);
        if (mi_hash_file(h, from) != MI_OK)
            die("hash", from);
        t0 = now_s();
        copy_file(from, to);
        for (;;) {
            if (mi_index_has(NULL, 0, idx, h, 0) == MI_OK)
                break;
            if (now_s() - t0 > 60)
                die("not indexed after 60 s", to);
            usleep(1000);
        }
        lat[i] = now_s() - t0;
        usleep(50000);  /* the next copy is a separate change */
    }
    qsort(lat, (size_t)copies, sizeof(double), cmp_double);
    printf("  %d copies: p50 %.0f ms, p95 %.0f ms, max %.0f ms\n", copies,
           lat[copies / 2] * 1e3, lat[(copies * 95 + 99) / 100 - 1] * 1e3,
           lat[copies - 1] * 1e3);

    if (rest > 0) {
        sleep(2);
        getrusage(RUSAGE_SELF, &r0);
        sleep((unsigned)rest);
        getrusage(RUSAGE_SELF, &r1);
        printf("  at rest for %d s: %.1f ms CPU (user+system, all threads), "
               "%ld voluntary / %ld involuntary context switches\n", rest,
               ((double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) +
                (double)(r1.ru_stime.tv_sec - r0.ru_stime.tv_sec)) * 1e3 +
                   ((double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) +
                    (double)(r1.ru_stime.tv_usec - r0.ru_stime.tv_usec)) / 1e3,
               r1.ru_nvcsw - r0.ru_nvcsw, r1.ru_nivcsw - r0.ru_nivcsw);
    }
    mi_watch_state(w, &info);
    printf("  the watcher ran %llu scans (%llu of everything), %llu overflows\n",
           (unsigned long long)info.scans, (unsigned long long)info.full_scans,
           (unsigned long long)info.overflows);
    mi_watch_stop(w);
    mi_index_close(idx);
    for (i = 0; i < n; i++)
        free(names[i]);
    free(lat);
    return 0;
}

/* folders DIR: the cost of watching every folder under DIR */
static int folders(char **argv)
{
    mi_index_options io = MI_INDEX_OPTIONS_INIT;
    mi_watch_options wo = MI_WATCH_OPTIONS_INIT;
    mi_watch_info info = MI_WATCH_INFO_INIT;
    struct mallinfo2 m0, m1;
    mi_index *idx = NULL;
    mi_watch *w = NULL;
    char err[512];
    double t0;

    io.flags = MI_INDEX_NO_THUMBNAILS;
    if (mi_index_open(&idx, argv[0], &io, err, sizeof(err)) != MI_OK)
        die("open", err);
    wo.flags = MI_WATCH_NO_FIRST_SCAN;
    m0 = mallinfo2();
    t0 = now_s();
    if (mi_watch_start(&w, idx, &wo) != MI_OK)
        die("watch", mi_index_errmsg(idx));
    t0 = now_s() - t0;
    m1 = mallinfo2();
    mi_watch_state(w, &info);
    printf("  mi_watch_start watched %llu folders in %.1f ms; heap +%zu bytes "
           "(64 KiB of it the event buffer): %.0f bytes per folder\n",
           (unsigned long long)info.folders, t0 * 1e3,
           m1.uordblks - m0.uordblks,
           ((double)(m1.uordblks - m0.uordblks) - 65536.0) /
               (double)(info.folders ? info.folders : 1));
    mi_watch_stop(w);
    mi_index_close(idx);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 8 && strcmp(argv[1], "latency") == 0)
        return latency(argv + 2);
    if (argc == 3 && strcmp(argv[1], "folders") == 0)
        return folders(argv + 2);
    fprintf(stderr, "usage: client latency DIR SUB INCOMING COPIES DEBOUNCE REST "
            "| folders DIR\n");
    return 2;
}
EOF
cc -std=c11 -O2 -Wall -Wextra -I"$src/include" "$work/client.c" -o "$work/client" \
    -L"$build/lib" -lmediaindex -Wl,-rpath,"$build/lib" -lpthread

echo "== 1. a 12 MP JPEG copied into a folder of $files photos"
ffmpeg -loglevel error -f lavfi -i "testsrc2=size=4000x3000" -frames:v 1 -q:v 3 "$work/big.jpg"
ffmpeg -loglevel error -f lavfi -i "testsrc2=size=640x480" -frames:v 1 -q:v 5 "$work/small.jpg"
# Unique copies: a number after the JPEG's end (decoders ignore it).
copies_of() { # SRC OUTDIR N PREFIX
    python3 - "$@" <<'PY'
import os, sys
src, out, n, prefix = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
data = open(src, 'rb').read()
os.makedirs(out, exist_ok=True)
for i in range(n):
    with open(os.path.join(out, '%s_%06d.jpg' % (prefix, i)), 'wb') as f:
        f.write(data + b'copy %06d' % i)
PY
}
copies_of "$work/small.jpg" "$work/lib/folder" "$files" IMG
copies_of "$work/big.jpg" "$work/incoming" "$copies" NEW
echo "  source: $(du -k "$work/big.jpg" | cut -f1) KiB, $(nproc) cores, $(stat -f -c %T "$work")"
for debounce in 300 50; do
    echo "-- debounce $debounce ms"
    r=0
    [ "$debounce" = 300 ] && r=$rest
    "$work/client" latency "$work/lib" folder "$work/incoming" "$copies" "$debounce" "$r"
    rm -f "$work/lib/folder"/NEW_*.jpg
done

echo "== 3. $folders empty folders"
mkdir -p "$work/tree"
for ((i = 0; i < folders; i++)); do printf '%s/tree/d%02d/e%04d\n' "$work" $((i % 50)) "$i"; done | xargs mkdir -p
"$work/client" folders "$work/tree"
if [ -r /proc/slabinfo ]; then
    awk '$1 == "inotify_inode_mark" { print "  kernel: inotify_inode_mark objects of " $4 " bytes (each watch also pins its folder'"'"'s inode and dentry in memory)" }' /proc/slabinfo
fi
