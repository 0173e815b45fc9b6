/*
 * test-places.c - offline reverse geocoding: known positions give known
 * places; the sea, the poles and bad input give none; names compare as
 * people type them.
 */
#include "mi-private.h"
#include "mi-test.h"

#include <math.h>
#include <time.h>

static void check_place(double lat, double lon, const char *city,
                        const char *cc)
{
    uint32_t p = mi_place_at(lat, lon);

    CHECK(p != 0);
    CHECK_EQ_STR(mi_place_city(p), city);
    CHECK_EQ_STR(mi_place_country_code(p), cc);
}

static void test_known_places(void)
{
    uint32_t p;

    /* The corpus's DSCN0010.jpg: 43.4674 N, 11.8851 E. */
    check_place(43.467448, 11.885127, "Arezzo", "IT");
    p = mi_place_at(43.467448, 11.885127);
    CHECK_EQ_STR(mi_place_country(p), "Italy");
    CHECK_EQ_STR(mi_place_region(p), "Tuscany");
    /* The Nokia 8.3's photos: 60.147 N, 24.907 E, the sea off Helsinki. */
    check_place(60.147, 24.907, "Helsinki", "FI");
    CHECK_EQ_STR(mi_place_region(mi_place_at(60.147, 24.907)), "Uusimaa");
    check_place(60.2052, 24.6522, "Espoo", "FI");
    /* The Eiffel Tower: Paris, not Neuilly-sur-Seine's nearer point. */
    check_place(48.8584, 2.2945, "Paris", "FR");
    check_place(48.8846, 2.2697, "Neuilly-sur-Seine", "FR");
    check_place(-33.8688, 151.2093, "Sydney", "AU");
    check_place(40.7128, -74.0060, "New York", "US");
    check_place(-54.8019, -68.3030, "Ushuaia", "AR");
    CHECK(mi_place_coords(p, NULL, NULL) == 1);
}

static void test_nowhere(void)
{
    CHECK_EQ_INT(mi_place_at(0.0, -30.0), 0);     /* mid-Atlantic */
    CHECK_EQ_INT(mi_place_at(0.0, 0.0), 0);       /* "null island" */
    CHECK_EQ_INT(mi_place_at(90.0, 0.0), 0);      /* North Pole */
    CHECK_EQ_INT(mi_place_at(-90.0, 123.0), 0);   /* South Pole */
    CHECK_EQ_INT(mi_place_at(89.999, 180.0), 0);
    CHECK_EQ_INT(mi_place_at(NAN, 10.0), 0);
    CHECK_EQ_INT(mi_place_at(10.0, INFINITY), 0);
    CHECK_EQ_INT(mi_place_at(91.0, 0.0), 0);
    CHECK_EQ_INT(mi_place_at(0.0, 180.5), 0);
    CHECK(mi_place_city(0) == NULL);
    CHECK(mi_place_city(UINT32_MAX) == NULL);
    CHECK(mi_place_country_code(0) == NULL);
    CHECK(mi_place_coords(0, NULL, NULL) == 0);
}

/* Across the antimeridian: Labasa (Fiji, 179.36 E) from 179.6 W. */
static void test_antimeridian(void)
{
    uint32_t a = mi_place_at(-16.43, 179.36), b = mi_place_at(-16.43, -179.6);

    CHECK(a != 0);
    CHECK_EQ_STR(mi_place_city(a), "Labasa");
    CHECK_EQ_INT(b, a);
    CHECK_EQ_INT(mi_place_at(-16.43, 180.0), mi_place_at(-16.43, -180.0));
    CHECK(mi_place_at(-16.43, 180.0) != 0);
}

/* Every place is found at its own position, or a larger one within 20 km
 * (a town beside a city counts as the city there). */
static void test_every_place_finds_itself(void)
{
    uint32_t bad = 0;

    for (uint32_t p = 1; mi_place_city(p); p++) {
        double lat, lon, la2, lo2, d;
        uint32_t q;

        mi_place_coords(p, &lat, &lon);
        q = mi_place_at(lat, lon);
        mi_place_coords(q, &la2, &lo2);
        d = fabs(la2 - lat) + fabs(lo2 - lon);
        if (q != p && d > 0.2)
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
}

static void test_fold(void)
{
    char b[MI_PLACE_NAME_MAX];

    mi_place_fold(b, sizeof(b), "Zürich", SIZE_MAX);
    CHECK_EQ_STR(b, "zurich");
    mi_place_fold(b, sizeof(b), "  SAINT-Étienne ", SIZE_MAX);
    CHECK_EQ_STR(b, "saint etienne");
    mi_place_fold(b, sizeof(b), "Łódź", SIZE_MAX);
    CHECK_EQ_STR(b, "lodz");
    mi_place_fold(b, sizeof(b), "Straße", SIZE_MAX);
    CHECK_EQ_STR(b, "strasse");
    mi_place_fold(b, sizeof(b), "東京", SIZE_MAX);
    CHECK_EQ_STR(b, "東京");
    mi_place_fold(b, 4, "Helsinki", SIZE_MAX);     /* cut, NUL kept */
    CHECK_EQ_STR(b, "hel");
    mi_place_fold(b, sizeof(b), "\xff\xc3", SIZE_MAX);   /* not UTF-8 */
    CHECK(strlen(b) == 2);
}

static void test_match(void)
{
    mi_place_runs r;

    CHECK_OK(mi_place_match(&r, "helsinki", NULL, MI_PLACE_CITY));
    CHECK_EQ_INT(r.n, 1);
    CHECK_EQ_STR(mi_place_city(r.run[0].first), "Helsinki");
    CHECK_OK(mi_place_match(&r, "AREZZO", "italy", MI_PLACE_CITY));
    CHECK_EQ_INT(r.n, 1);
    CHECK_OK(mi_place_match(&r, "Arezzo", "FR", MI_PLACE_CITY));
    CHECK_EQ_INT(r.n, 0);
    /* A country is one run. */
    CHECK_OK(mi_place_match(&r, "Finland", NULL, MI_PLACE_COUNTRY));
    CHECK_EQ_INT(r.n, 1);
    CHECK(r.run[0].last - r.run[0].first > 20);
    CHECK_OK(mi_place_match(&r, "fi", NULL, MI_PLACE_COUNTRY));
    CHECK_EQ_INT(r.n, 1);
    CHECK_OK(mi_place_match(&r, "Uusimaa", NULL, MI_PLACE_REGION));
    CHECK_EQ_INT(r.n, 1);
    CHECK_OK(mi_place_match(&r, "Springfield", NULL, MI_PLACE_CITY));
    CHECK(r.n >= 3);
    CHECK_OK(mi_place_match(&r, "", NULL, MI_PLACE_CITY));
    CHECK_EQ_INT(r.n, 0);
    CHECK_OK(mi_place_match(&r, "Xanadu", NULL,
                            MI_PLACE_CITY | MI_PLACE_REGION | MI_PLACE_COUNTRY));
    CHECK_EQ_INT(r.n, 0);
}

int main(void)
{
    RUN(test_known_places);
    RUN(test_nowhere);
    RUN(test_antimeridian);
    RUN(test_every_place_finds_itself);
    RUN(test_fold);
    RUN(test_match);
    return mi_test_done();
}
