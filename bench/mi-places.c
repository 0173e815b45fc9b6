/*
 * mi-places - benchmarks for places and search (issue 14), public API.
 *
 *   mi-places gen DIR N          N small JPEGs with dates, cameras and GPS
 *                                positions (nine in ten near one of 60
 *                                cities, one in ten anywhere) in DIR/dNNN/
 *   mi-places lookup N           N mi_place_at() lookups at such positions:
 *                                ns per lookup
 *   mi-places search DIR Q...    each query over DIR's index (already
 *                                made), 7 times: the count, the median
 *                                time to the whole answer and to its first
 *                                entry (what a streamed answer shows first)
 *
 * Positions are pseudo-random from a fixed seed: runs are comparable.
 */
#include <mediaindex.h>

#include "../tests/fixtures.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const double cities[][2] = {
    {60.17, 24.94}, {43.46, 11.88}, {48.86, 2.35}, {51.51, -0.13},
    {40.42, -3.70}, {41.90, 12.50}, {52.52, 13.40}, {59.33, 18.07},
    {55.68, 12.57}, {52.37, 4.90}, {50.85, 4.35}, {47.37, 8.54},
    {48.21, 16.37}, {50.08, 14.44}, {52.23, 21.01}, {47.50, 19.04},
    {37.98, 23.73}, {41.01, 28.98}, {38.72, -9.14}, {53.35, -6.26},
    {40.71, -74.01}, {34.05, -118.24}, {41.88, -87.63}, {37.77, -122.42},
    {47.61, -122.33}, {43.65, -79.38}, {45.50, -73.57}, {19.43, -99.13},
    {-23.55, -46.63}, {-34.60, -58.38}, {-33.45, -70.67}, {4.71, -74.07},
    {35.68, 139.69}, {37.57, 126.98}, {39.90, 116.41}, {31.23, 121.47},
    {22.32, 114.17}, {1.35, 103.82}, {13.76, 100.50}, {28.61, 77.21},
    {19.08, 72.88}, {25.20, 55.27}, {30.04, 31.24}, {-1.29, 36.82},
    {6.52, 3.38}, {-33.92, 18.42}, {-33.87, 151.21}, {-37.81, 144.96},
    {-36.85, 174.76}, {21.31, -157.86}, {64.15, -21.94}, {69.65, 18.96},
    {-17.71, 178.07}, {61.22, -149.90}, {55.76, 37.62}, {59.94, 30.31},
    {50.45, 30.52}, {45.46, 9.19}, {43.30, 5.37}, {39.47, -0.38},
};

static uint64_t rng = 88172645463325252u;

static double unit(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static void position(double *lat, double *lon)
{
    if (unit() < 0.9) {
        const double *c = cities[(size_t)(unit() * 60) % 60];
        *lat = c[0] + (unit() - 0.5) * 0.6;
        *lon = c[1] + (unit() - 0.5) * 0.6;
    } else {
        *lat = (unit() - 0.5) * 160.0;
        *lon = (unit() - 0.5) * 360.0;
    }
}

static int gen(const char *dir, long n)
{
    static const char *const makes[][2] = {
        {"Apple", "iPhone 12"}, {"Google", "Pixel 7"},
        {"samsung", "SM-G991B"}, {"HMD Global", "Nokia 8.3 5G"},
    };
    char path[4200], date[32];

    mkdir(dir, 0755);
    for (long k = 0; k < n; k++) {
        fx_exif ex;
        int y = 2005 + (int)(k % 20), mo = 1 + (int)(k % 12), d = 1 + (int)(k % 28);

        memset(&ex, 0, sizeof(ex));
        snprintf(date, sizeof(date), "%04d:%02d:%02d 12:%02d:%02d", y, mo, d,
                 (int)(k / 60 % 60), (int)(k % 60));
        ex.datetime_original = date;
        ex.make = makes[k % 4][0];
        ex.model = makes[k % 4][1];
        ex.has_gps = k % 5 != 4;      /* four in five have a position */
        position(&ex.lat, &ex.lon);
        snprintf(path, sizeof(path), "%s/d%03ld", dir, k / 1000);
        if (k % 1000 == 0)
            mkdir(path, 0755);
        snprintf(path, sizeof(path), "%s/d%03ld/IMG_%08ld.jpg", dir, k / 1000, k);
        if (fx_write_jpeg(path, 8, 8, (unsigned)k, &ex) != 0) {
            fprintf(stderr, "mi-places: cannot write %s\n", path);
            return 1;
        }
    }
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int lookup(long n)
{
    double *pts = malloc((size_t)n * 2 * sizeof(double)), t;
    long found = 0;

    if (!pts)
        return 1;
    for (long i = 0; i < n; i++)
        position(&pts[2 * i], &pts[2 * i + 1]);
    t = now_s();
    for (long i = 0; i < n; i++)
        found += mi_place_at(pts[2 * i], pts[2 * i + 1]) != 0;
    t = now_s() - t;
    printf("%ld lookups: %.0f ns each, %ld found a place\n", n, t / n * 1e9,
           found);
    free(pts);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int search(const char *dir, int nq, char **qs)
{
    mi_index_options o = MI_INDEX_OPTIONS_INIT;
    char err[512];
    mi_index *idx = NULL;

    if (mi_index_open(&idx, dir, &o, err, sizeof(err)) != MI_OK) {
        fprintf(stderr, "mi-places: %s\n", err);
        return 1;
    }
    for (int i = 0; i < nq; i++) {
        double ms[7], first[7];
        long count = 0;

        for (int r = 0; r < 7; r++) {
            mi_cursor_options co = MI_CURSOR_OPTIONS_INIT;
            mi_cursor *c = NULL;
            double t = now_s();

            co.query = qs[i];
            co.flags = MI_CURSOR_NEWEST_FIRST;
            if (mi_cursor_new_with(&c, idx, &co) != MI_OK) {
                fprintf(stderr, "mi-places: %s: %s\n", qs[i],
                        mi_index_errmsg(idx));
                mi_index_close(idx);
                return 1;
            }
            count = 0;
            first[r] = 0;
            while (mi_cursor_next(c) == MI_ROW)
                if (!count++)
                    first[r] = (now_s() - t) * 1e3;
            mi_cursor_free(c);
            ms[r] = (now_s() - t) * 1e3;
        }
        qsort(ms, 7, sizeof(double), cmp_double);
        qsort(first, 7, sizeof(double), cmp_double);
        printf("%-34s %8ld items  all: median %8.2f ms (min %.2f, max %.2f)"
               "  first: %.2f ms\n", qs[i], count, ms[3], ms[0], ms[6],
               first[3]);
    }
    mi_index_close(idx);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "gen") == 0)
        return gen(argv[2], atol(argv[3]));
    if (argc == 3 && strcmp(argv[1], "lookup") == 0)
        return lookup(atol(argv[2]));
    if (argc >= 4 && strcmp(argv[1], "search") == 0)
        return search(argv[2], argc - 3, argv + 3);
    fprintf(stderr, "usage: mi-places gen DIR N | lookup N | search DIR QUERY...\n");
    return 2;
}
