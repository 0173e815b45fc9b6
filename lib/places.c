/*
 * places.c - offline reverse geocoding: the nearest populated place to a
 * coordinate, from the gazetteer compiled into the library
 * (places-data.h, written at build time by places-gen.c from GeoNames).
 *
 * A place is a number: 1 + its record's position.  The records are sorted
 * by (country code, region, city), so the places of one country or one
 * region are one run of numbers and a filter on them is a range.  Numbers
 * are only meaningful for one data version (mi_places_version()); the
 * catalog stores that version and recomputes its places when it changes.
 *
 * Lookup: the records are also listed by 1-degree cell; a lookup scans the
 * cells that can hold a place within MI_PLACE_RADIUS_KM, with
 * equirectangular distances (exact enough at that range), so it allocates
 * nothing and costs a few microseconds.  A place is a point but a city is
 * not: the nearest point would put the Eiffel Tower in Neuilly-sur-Seine
 * (3.4 km, against 4.2 km to the point GeoNames gives Paris).  So each
 * place counts as a disc of sqrt(people / 60,000) km (the area of its
 * people at 19,000 per km2, a dense city: Paris 5.9 km, a town of 20,000
 * 0.6 km), and the place whose disc's edge is nearest wins.
 */
#include "mi-private.h"

#include <math.h>
#include <string.h>

typedef struct {
    int32_t lat, lon;          /* degrees * 1e5 */
    uint32_t pop;              /* people */
    uint32_t name, region, country;   /* offsets in mi_places_pool */
    char cc[3];                /* ISO 3166-1 alpha-2, NUL-terminated */
} mi_place_rec;

#include "places-data.h"
#include "places-version.h"

#define KM_PER_DEGREE 111.195

const char *mi_places_version(void)
{
    return MI_PLACES_VERSION;
}

static const mi_place_rec *rec_of(uint32_t place)
{
    return place >= 1 && place <= MI_PLACES_COUNT ? &mi_place_recs[place - 1]
                                                   : NULL;
}

uint32_t mi_place_at(double lat, double lon)
{
    double radius_deg = MI_PLACE_RADIUS_KM / KM_PER_DEGREE;
    double best = INFINITY, coslat;
    uint32_t found = 0;
    int r0, r1;

    if (!(lat >= -90.0 && lat <= 90.0 && lon >= -180.0 && lon <= 180.0))
        return 0;
    coslat = cos(lat * M_PI / 180.0);
    r0 = (int)floor(lat - radius_deg + 90.0);
    r1 = (int)floor(lat + radius_deg + 90.0);
    if (r0 < 0)
        r0 = 0;
    if (r1 > 179)
        r1 = 179;
    for (int r = r0; r <= r1; r++) {
        /* The row's edge nearest a pole has the narrowest degrees. */
        double edge = fmax(fabs(r - 90.0), fabs(r + 1 - 90.0));
        double c = cos(fmin(edge, 90.0) * M_PI / 180.0);
        double half = c > 1e-6 ? radius_deg / c : 360.0;
        int c0, c1;

        if (half >= 180.0) {
            c0 = 0;
            c1 = 359;
        } else {
            c0 = (int)floor(lon - half + 180.0);
            c1 = (int)floor(lon + half + 180.0);
        }
        for (int col = c0; col <= c1; col++) {
            int cell = r * 360 + ((col % 360) + 360) % 360;

            for (uint32_t k = mi_places_cells[cell];
                 k < mi_places_cells[cell + 1]; k++) {
                const mi_place_rec *p = &mi_place_recs[mi_places_by_cell[k]];
                double dy = p->lat / 1e5 - lat;
                double dx = p->lon / 1e5 - lon;
                double d2, d;

                if (dx > 180.0)
                    dx -= 360.0;
                else if (dx < -180.0)
                    dx += 360.0;
                /* The mean latitude's cosine: right across a pole too. */
                dx *= (coslat + cos(p->lat / 1e5 * M_PI / 180.0)) / 2.0;
                d2 = dx * dx + dy * dy;
                if (d2 > radius_deg * radius_deg)
                    continue;
                d = sqrt(d2) * KM_PER_DEGREE - sqrt(p->pop / 60000.0);
                if (d < best) {
                    best = d;
                    found = (uint32_t)mi_places_by_cell[k] + 1;
                }
            }
        }
    }
    return found;
}

const char *mi_place_city(uint32_t place)
{
    const mi_place_rec *p = rec_of(place);
    return p ? mi_places_pool + p->name : NULL;
}

const char *mi_place_region(uint32_t place)
{
    const mi_place_rec *p = rec_of(place);
    return p && mi_places_pool[p->region] ? mi_places_pool + p->region : NULL;
}

const char *mi_place_country(uint32_t place)
{
    const mi_place_rec *p = rec_of(place);
    return p ? mi_places_pool + p->country : NULL;
}

const char *mi_place_country_code(uint32_t place)
{
    const mi_place_rec *p = rec_of(place);
    return p ? p->cc : NULL;
}

int mi_place_coords(uint32_t place, double *lat, double *lon)
{
    const mi_place_rec *p = rec_of(place);

    if (!p)
        return 0;
    if (lat)
        *lat = p->lat / 1e5;
    if (lon)
        *lon = p->lon / 1e5;
    return 1;
}

/* ---------------------------------------------------------------------- */
/* Names compared as people type them                                      */

/* The next code point of a UTF-8 string, or the byte itself when it is not
 * well formed; *n is its length. */
static uint32_t next_cp(const unsigned char *s, size_t len, size_t *n)
{
    if (s[0] < 0x80 || len < 2 || (s[1] & 0xC0) != 0x80) {
        *n = 1;
        return s[0];
    }
    if ((s[0] & 0xE0) == 0xC0) {
        *n = 2;
        return ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
    }
    if ((s[0] & 0xF0) == 0xE0 && len >= 3 && (s[2] & 0xC0) == 0x80) {
        *n = 3;
        return ((uint32_t)(s[0] & 0x0F) << 12) |
               ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    }
    *n = 1;
    return s[0];
}

size_t mi_place_fold(char *out, size_t out_size, const char *in, size_t len)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0, i = 0;
    bool space = true;         /* drops leading and repeated spaces */

    if (!out_size)
        return 0;
    while (i < len && s[i]) {
        size_t n;
        uint32_t cp = next_cp(s + i, len - i, &n);
        const char *rep = NULL;
        char one[2] = {0, 0};

        if (cp < 0x80) {
            char ch = (char)cp;
            if (ch == '-' || ch == '_' || ch == ' ' || ch == '\t' ||
                ch == '\'' || ch == '.' || ch == ',')
                ch = ' ';
            else if (ch >= 'A' && ch <= 'Z')
                ch = (char)(ch - 'A' + 'a');
            one[0] = ch;
            rep = one;
        } else if (cp >= MI_FOLD_FIRST && cp < MI_FOLD_END &&
                   mi_places_fold[cp - MI_FOLD_FIRST][0]) {
            rep = mi_places_fold[cp - MI_FOLD_FIRST];
        }
        if (rep) {
            for (; *rep; rep++) {
                if (*rep == ' ' && space)
                    continue;
                if (o + 1 >= out_size)
                    goto full;
                out[o++] = *rep;
                space = *rep == ' ';
            }
        } else {
            if (o + n >= out_size)
                goto full;
            memcpy(out + o, s + i, n);
            o += n;
            space = false;
        }
        i += n;
    }
full:
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = 0;
    return o;
}

static bool same_name(const char *folded, uint32_t off)
{
    char buf[MI_PLACE_NAME_MAX];

    mi_place_fold(buf, sizeof(buf), mi_places_pool + off, SIZE_MAX);
    return strcmp(buf, folded) == 0;
}

/* Add place `id` to the runs, extending the last one when it follows. */
static mi_status add_id(mi_place_runs *r, uint32_t id)
{
    if (r->n && r->run[r->n - 1].last + 1 == id) {
        r->run[r->n - 1].last = id;
        return MI_OK;
    }
    if (r->n == MI_PLACE_RUNS_MAX)
        return MI_ETOOBIG;
    r->run[r->n].first = r->run[r->n].last = id;
    r->n++;
    return MI_OK;
}

mi_status mi_place_match(mi_place_runs *out, const char *name,
                         const char *country, unsigned fields)
{
    char want[MI_PLACE_NAME_MAX], in[MI_PLACE_NAME_MAX];
    mi_status s = MI_OK;

    out->n = 0;
    mi_place_fold(want, sizeof(want), name, SIZE_MAX);
    if (country)
        mi_place_fold(in, sizeof(in), country, SIZE_MAX);
    if (!want[0])
        return MI_OK;
    for (uint32_t i = 0; i < MI_PLACES_COUNT && s == MI_OK; i++) {
        const mi_place_rec *p = &mi_place_recs[i];
        bool hit = false;

        if (country && !(same_name(in, p->country) ||
                         (strlen(in) == 2 &&
                          in[0] == (p->cc[0] | 0x20) &&
                          in[1] == (p->cc[1] | 0x20))))
            continue;
        if ((fields & MI_PLACE_CITY) && same_name(want, p->name))
            hit = true;
        else if ((fields & MI_PLACE_REGION) && mi_places_pool[p->region] &&
                 same_name(want, p->region))
            hit = true;
        else if ((fields & MI_PLACE_COUNTRY) &&
                 (same_name(want, p->country) ||
                  (strlen(want) == 2 && want[0] == (p->cc[0] | 0x20) &&
                   want[1] == (p->cc[1] | 0x20))))
            hit = true;
        if (hit)
            s = add_id(out, i + 1);
    }
    return s;
}
