/*
 * places-gen.c - writes places-data.h, the library's offline gazetteer, at
 * build time from the GeoNames cities that Debian's libgeonames carries
 * (populated places of 15,000 people or more; GeoNames, CC BY 4.0).
 *
 * The library itself never links libgeonames (nor GLib): this program
 * runs once in the build and its output is compiled in, so a lookup needs
 * no file, no allocation and no start-up work.
 *
 *   mi-places-gen VERSION OUT.h VERSION-OUT.h
 *
 * VERSION-OUT.h has MI_PLACES_VERSION (a string) and MI_PLACES_DATA (a
 * checksum of the places, as a number) for the catalog to compare.
 *
 * Output, all `static const`:
 *   mi_place_recs[]    records sorted by (country code, region, city), so
 *                      that one country, or one region, is one run of ids
 *   mi_places_cells[]  1-degree cells: the first position in
 *                      mi_places_by_cell of each cell (and one past the end)
 *   mi_places_by_cell[] record numbers ordered by cell
 *   mi_places_pool[]   the names, NUL-terminated, each once
 *   mi_places_fold[]   the ASCII lower-case form of U+00C0..U+024F
 *                      (GLib's transliteration), "" where there is none
 */
#include <geonames.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CELLS (180 * 360)
#define FOLD_FIRST 0xC0
#define FOLD_END 0x250

typedef struct {
    char *name, *region, *country;
    char cc[3];
    int32_t lat, lon;   /* degrees * 1e5 */
    uint32_t pop;
    uint32_t name_off, region_off, country_off;
    int cell;
} rec;

typedef struct {
    char *data;
    size_t len, cap;
} pool;

static rec *recs;

static char *dup_or_empty(const char *s)
{
    char *d = g_strdup(s ? s : "");
    if (!d) {
        perror("mi-places-gen");
        exit(1);
    }
    return d;
}

static int cmp_rec(const void *a, const void *b)
{
    const rec *x = a, *y = b;
    int c = strcmp(x->cc, y->cc);
    if (!c)
        c = strcmp(x->region, y->region);
    if (!c)
        c = strcmp(x->name, y->name);
    if (!c)
        c = x->lat < y->lat ? -1 : x->lat > y->lat;
    if (!c)
        c = x->lon < y->lon ? -1 : x->lon > y->lon;
    return c;
}

static int cmp_cell(const void *a, const void *b)
{
    uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
    if (recs[i].cell != recs[j].cell)
        return recs[i].cell < recs[j].cell ? -1 : 1;
    return i < j ? -1 : i > j;
}

/* The offset of `s` in the pool, adding it unless the last strings added
 * hold it already (names repeat in runs: the records are sorted). */
static uint32_t pool_add(pool *p, const char *s, uint32_t *last_off,
                         const char **last)
{
    size_t n = strlen(s) + 1;

    if (*last && strcmp(*last, s) == 0)
        return *last_off;
    if (p->len + n > p->cap) {
        p->cap = (p->len + n) * 2;
        p->data = realloc(p->data, p->cap);
        if (!p->data) {
            perror("mi-places-gen");
            exit(1);
        }
    }
    memcpy(p->data + p->len, s, n);
    *last_off = (uint32_t)p->len;
    *last = s;
    p->len += n;
    return *last_off;
}

static int cell_of(double lat, double lon)
{
    int r = (int)floor(lat + 90.0), c = (int)floor(lon + 180.0);
    if (r < 0)
        r = 0;
    if (r > 179)
        r = 179;
    c = ((c % 360) + 360) % 360;
    return r * 360 + c;
}

static uint32_t fnv(uint32_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n--)
        h = (h ^ *b++) * 16777619u;
    return h;
}

static void utf8_of(unsigned cp, char out[5])
{
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    } else {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        out[3] = 0;
    }
}

int main(int argc, char **argv)
{
    int n = geonames_get_n_cities(), kept = 0;
    uint32_t *by_cell, *cells, h = 2166136261u;
    const char *last_name = NULL, *last_region = NULL, *last_country = NULL;
    uint32_t lo_name = 0, lo_region = 0, lo_country = 0;
    pool p = {0};
    FILE *f;

    if (argc != 4) {
        fprintf(stderr, "usage: mi-places-gen VERSION OUT.h VERSION-OUT.h\n");
        return 2;
    }
    if (n <= 0 || n > 65535) {
        fprintf(stderr, "mi-places-gen: libgeonames holds %d places\n", n);
        return 1;
    }
    recs = calloc((size_t)n, sizeof(*recs));
    by_cell = calloc((size_t)n, sizeof(*by_cell));
    cells = calloc(CELLS + 1, sizeof(*cells));
    if (!recs || !by_cell || !cells) {
        perror("mi-places-gen");
        return 1;
    }
    for (int i = 0; i < n; i++) {
        GeonamesCity *c = geonames_get_city(i);
        const char *cc = geonames_city_get_country_code(c);
        double lat = geonames_city_get_latitude(c);
        double lon = geonames_city_get_longitude(c);
        rec *r = &recs[kept];

        if (!cc || strlen(cc) != 2 || !(lat >= -90 && lat <= 90) ||
            !(lon >= -180 && lon <= 180) || !geonames_city_get_name(c) ||
            !*geonames_city_get_name(c)) {
            geonames_city_free(c);
            continue;
        }
        r->name = dup_or_empty(geonames_city_get_name(c));
        r->region = dup_or_empty(geonames_city_get_state(c));
        r->country = dup_or_empty(geonames_city_get_country(c));
        memcpy(r->cc, cc, 3);
        r->lat = (int32_t)lround(lat * 1e5);
        r->lon = (int32_t)lround(lon * 1e5);
        r->pop = geonames_city_get_population(c);
        r->cell = cell_of(r->lat / 1e5, r->lon / 1e5);
        geonames_city_free(c);
        kept++;
    }
    qsort(recs, (size_t)kept, sizeof(*recs), cmp_rec);
    for (int i = 0; i < kept; i++) {
        rec *r = &recs[i];
        r->name_off = pool_add(&p, r->name, &lo_name, &last_name);
        r->region_off = pool_add(&p, r->region, &lo_region, &last_region);
        r->country_off = pool_add(&p, r->country, &lo_country, &last_country);
        h = fnv(h, r->name, strlen(r->name) + 1);
        h = fnv(h, r->region, strlen(r->region) + 1);
        h = fnv(h, r->cc, 2);
        h = fnv(h, &r->lat, sizeof(r->lat));
        h = fnv(h, &r->lon, sizeof(r->lon));
        h = fnv(h, &r->pop, sizeof(r->pop));
        by_cell[i] = (uint32_t)i;
        cells[r->cell + 1]++;
    }
    qsort(by_cell, (size_t)kept, sizeof(*by_cell), cmp_cell);
    for (int i = 1; i <= CELLS; i++)
        cells[i] += cells[i - 1];

    f = fopen(argv[2], "w");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    fprintf(f, "/* Generated by mi-places-gen from libgeonames %s: do not edit.\n"
               " * Place names: GeoNames (geonames.org), CC BY 4.0. */\n",
            argv[1]);
    fprintf(f, "#define MI_PLACES_COUNT %d\n", kept);
    fprintf(f, "static const mi_place_rec mi_place_recs[%d] = {\n", kept);
    for (int i = 0; i < kept; i++)
        fprintf(f, "{%d,%d,%u,%u,%u,%u,\"%c%c\"},\n", recs[i].lat, recs[i].lon,
                recs[i].pop, recs[i].name_off, recs[i].region_off, recs[i].country_off,
                recs[i].cc[0], recs[i].cc[1]);
    fprintf(f, "};\nstatic const uint32_t mi_places_cells[%d] = {", CELLS + 1);
    for (int i = 0; i <= CELLS; i++)
        fprintf(f, "%s%u,", i % 16 ? "" : "\n", cells[i]);
    fprintf(f, "\n};\nstatic const uint16_t mi_places_by_cell[%d] = {", kept);
    for (int i = 0; i < kept; i++)
        fprintf(f, "%s%u,", i % 16 ? "" : "\n", by_cell[i]);
    fprintf(f, "\n};\nstatic const char mi_places_pool[%zu] = {", p.len);
    for (size_t i = 0; i < p.len; i++)
        fprintf(f, "%s%d,", i % 24 ? "" : "\n", (signed char)p.data[i]);
    fprintf(f, "\n};\n#define MI_FOLD_FIRST 0x%X\n#define MI_FOLD_END 0x%X\n",
            FOLD_FIRST, FOLD_END);
    fprintf(f, "static const char mi_places_fold[%d][4] = {\n",
            FOLD_END - FOLD_FIRST);
    for (unsigned cp = FOLD_FIRST; cp < FOLD_END; cp++) {
        char u[5], out[4] = "";
        gchar *a;

        utf8_of(cp, u);
        a = g_str_to_ascii(u, "C");
        if (a && strlen(a) <= 3) {
            for (size_t k = 0; a[k]; k++) {
                if (!g_ascii_isalpha(a[k])) {
                    out[0] = 0;     /* "?": no ASCII form */
                    break;
                }
                out[k] = g_ascii_tolower(a[k]);
            }
        }
        g_free(a);
        fprintf(f, "\"%s\",%s", out, (cp - FOLD_FIRST) % 12 == 11 ? "\n" : "");
    }
    fprintf(f, "};\n");
    if (fclose(f) != 0) {
        perror(argv[2]);
        return 1;
    }
    f = fopen(argv[3], "w");
    if (!f) {
        perror(argv[3]);
        return 1;
    }
    fprintf(f, "/* Generated by mi-places-gen: do not edit. */\n"
               "#define MI_PLACES_VERSION \"GeoNames via libgeonames %s, "
               "%d places, data %08x\"\n#define MI_PLACES_DATA %u\n",
            argv[1], kept, (unsigned)h, (unsigned)h);
    if (fclose(f) != 0) {
        perror(argv[3]);
        return 1;
    }
    for (int i = 0; i < kept; i++) {
        g_free(recs[i].name);
        g_free(recs[i].region);
        g_free(recs[i].country);
    }
    free(recs);
    free(by_cell);
    free(cells);
    free(p.data);
    return 0;
}
