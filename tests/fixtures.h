/*
 * fixtures.h - test fixtures shared by the test programs: small JPEG and
 * PNG files with chosen EXIF, temporary directories, the optional corpus.
 *
 * Only for tests: these helpers may print nothing, and return non-zero /
 * NULL on failure so the test can CHECK it.
 */
#ifndef MI_FIXTURES_H
#define MI_FIXTURES_H

#include <stddef.h>

typedef struct fx_exif {
    const char *datetime_original;    /* "YYYY:MM:DD HH:MM:SS" or NULL */
    const char *datetime_digitized;
    const char *datetime;
    const char *offset_time_original; /* "+02:00" or NULL */
    int orientation;                  /* 0 = no tag */
    int has_gps;
    double lat, lon;                  /* signed degrees */
    const char *make, *model;         /* NULL = no tag */
} fx_exif;

/*
 * Write a w x h baseline JPEG (greyscale, a gradient of flat 8x8 blocks
 * varied by `seed`, so different seeds give different bytes) with the
 * given EXIF (NULL = no APP1, else an APP1 right after SOI) to `path`.
 * At most 8192 x 8192.  0 on success.
 */
int fx_write_jpeg(const char *path, int w, int h, unsigned seed,
                  const fx_exif *exif);

/* fx_write_jpeg() at dir/rel, making the folders of rel first. */
int fx_put_jpeg(const char *dir, const char *rel, int w, int h, unsigned seed);

/* The same into a malloc'd buffer (*out, *len); the caller frees. */
int fx_jpeg_buffer(unsigned char **out, size_t *len, int w, int h,
                   unsigned seed, const fx_exif *exif);

/*
 * The same, but with a raw APP1 payload (it should start "Exif\0\0"; at
 * most 65533 bytes) instead of one built from an fx_exif: for hand-made,
 * malformed EXIF.  app1 NULL = no APP1.
 */
int fx_jpeg_buffer_app1(unsigned char **out, size_t *len, int w, int h,
                        unsigned seed, const void *app1, size_t app1_len);

/* The EXIF block ("Exif\0\0" + TIFF) libexif makes for `exif`, malloc'd. */
int fx_exif_block(unsigned char **out, size_t *len, const fx_exif *exif);

/* A w x h RGB PNG, a gradient varied by `seed`. */
int fx_write_png(const char *path, int w, int h, unsigned seed);
int fx_png_buffer(unsigned char **out, size_t *len, int w, int h,
                  unsigned seed);

/* Write `len` bytes to `path` (created or truncated).  0 on success. */
int fx_write_file(const char *path, const void *data, size_t len);

/* Read a whole file (at most 256 MiB) into a malloc'd buffer. */
int fx_read_file(const char *path, unsigned char **out, size_t *len);

/* A new directory made by mkdtemp() under $TMPDIR or /tmp; caller frees. */
char *fx_tempdir(void);

/* mkdir -p; 0 on success (also when it exists). */
int fx_mkdirs(const char *path);

/* rm -rf; does not follow symlinks.  0 on success (also when absent). */
int fx_rmtree(const char *path);

/* dir + "/" + rel, malloc'd; the caller frees. */
char *fx_path(const char *dir, const char *rel);

/* How many files (not directories) dir/rel holds, recursively. */
int fx_count_in(const char *dir, const char *rel);

/* getenv("MI_TEST_CORPUS") if it names a directory, else NULL. */
const char *fx_corpus(void);

#endif
