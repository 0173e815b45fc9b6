/*
 * mi-private.h - what the modules of libmediaindex share.  Not installed.
 */
#ifndef MI_PRIVATE_H
#define MI_PRIVATE_H

#include "mediaindex.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MI_UNUSED(x) ((void)(x))
#define MI_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Caps on sizes that come from outside. */
#define MI_MAX_PATH 4096        /* bytes in a path relative to the folder */
#define MI_MAX_NAME 255         /* bytes in one file name */
#define MI_MAX_DEPTH 64         /* directory depth of a scan */
#define MI_MAX_DIR_ENTRIES 10000000u /* entries read from one directory */

/* ---------------------------------------------------------------------- */
/* media.c: media types                                                   */

typedef struct mi_media_type {
    const char *ext;   /* lower case, without the dot: "jpg" */
    const char *mime;  /* "image/jpeg" */
    mi_kind kind;
} mi_media_type;

/*
 * The media type of a file name, judged by its extension (case-insensitive)
 * the way Python's mimetypes module classifies image/ and video/ types.
 * NULL when the name is not an image or video we index.  The result is
 * static.
 */
const mi_media_type *mi_media_from_name(const char *name);

/*
 * The media type that the first bytes of a file say it has, or NULL when
 * they match no format we know.  `len` may be short; 64 bytes suffice.
 */
const mi_media_type *mi_media_sniff(const void *buf, size_t len);

/* ---------------------------------------------------------------------- */
/* exif.c: metadata                                                       */

typedef struct mi_meta {
    bool has_date;
    int64_t date;             /* seconds since the epoch */
    mi_date_source date_source;
    int orientation;          /* 1..8, 0 when absent */
    uint32_t width, height;   /* as displayed (after orientation), 0 unknown */
    bool has_gps;
    double lat, lon;          /* signed decimal degrees */
    char make[64];            /* "" when absent; printable, trimmed */
    char model[64];
} mi_meta;

/*
 * Read the metadata of the open file `fd` (of `size` bytes, of media type
 * `type`) with pread(), never reading more than needed: the EXIF block
 * (at most 64 KiB, handed to libexif) and the image header for the pixel
 * dimensions.  Never crashes or hangs on hostile input; fills what it
 * finds and leaves the rest zero.  Returns MI_OK, or MI_EFORMAT when
 * nothing could be read (out is still valid, zeroed), or MI_EIO.
 */
mi_status mi_meta_read_fd(mi_meta *out, int fd, uint64_t size,
                          const mi_media_type *type);

/* The same from a buffer holding a whole file. */
mi_status mi_meta_read_buffer(mi_meta *out, const void *buf, size_t len,
                              const mi_media_type *type);

/*
 * Parse an EXIF date "YYYY:MM:DD HH:MM:SS" and an optional offset "+HH:MM"
 * (NULL or "" = local time) into seconds since the epoch.  False for an
 * invalid date (0000:00:00, out-of-range fields, garbage).
 */
bool mi_exif_parse_date(int64_t *out, const char *date, const char *offset);

/* ---------------------------------------------------------------------- */
/* hash.c                                                                 */

/*
 * Hash the rest of the open file `fd` with hasher `h` (reset first), using
 * `buf` of `buflen` bytes.  Adds the number of bytes read to *bytes.
 * MI_EIO on a read error.
 */
mi_status mi_hash_fd(uint8_t out[MI_HASH_SIZE], int fd, mi_hasher *h,
                     void *buf, size_t buflen, uint64_t *bytes);

/* ---------------------------------------------------------------------- */
/* util.c                                                                 */

/* Format into a fixed buffer, always NUL-terminated, truncating. */
void mi_bufprintf(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Map an errno value to a status. */
mi_status mi_status_from_errno(int err);

#endif /* MI_PRIVATE_H */
