/*
 * fixture-tool - write the test fixtures' JPEG and PNG files, for the
 * Python server tests (which have no image encoder of their own).
 *
 *   fixture-tool jpeg|png PATH WIDTH HEIGHT SEED [DATETIME [MAKE MODEL
 *                [LAT LON]]]
 *
 * DATETIME ("YYYY:MM:DD HH:MM:SS") becomes the JPEG's EXIF
 * DateTimeOriginal; MAKE and MODEL its camera; LAT LON (signed degrees)
 * its GPS position.
 */
#include "../fixtures.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    int w, h, rc;
    unsigned seed;

    fx_exif ex;

    if (argc != 6 && argc != 7 && argc != 9 && argc != 11) {
        fprintf(stderr, "usage: fixture-tool jpeg|png PATH W H SEED "
                        "[DATE [MAKE MODEL [LAT LON]]]\n");
        return 2;
    }
    memset(&ex, 0, sizeof(ex));
    if (argc >= 7)
        ex.datetime_original = argv[6];
    if (argc >= 9) {
        ex.make = argv[7];
        ex.model = argv[8];
    }
    if (argc == 11) {
        ex.has_gps = 1;
        ex.lat = strtod(argv[9], NULL);
        ex.lon = strtod(argv[10], NULL);
    }
    w = atoi(argv[3]);
    h = atoi(argv[4]);
    seed = (unsigned)strtoul(argv[5], NULL, 10);
    if (strcmp(argv[1], "jpeg") == 0)
        rc = fx_write_jpeg(argv[2], w, h, seed, argc >= 7 ? &ex : NULL);
    else if (strcmp(argv[1], "png") == 0)
        rc = fx_write_png(argv[2], w, h, seed);
    else
        rc = 2;
    return rc ? 1 : 0;
}
