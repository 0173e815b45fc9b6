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
    const char *upload; /* the format family an upload of this type may
                           have ("jpeg", "isobmff": phones name HEIF files
                           .heic and QuickTime files .mp4), NULL when
                           uploads of it are refused */
    bool raw;          /* a camera raw format (libraw, in mi-decode) */
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
 * they match no format we know.  `len` may be short; MI_SNIFF_LEN bytes
 * suffice (an MPEG transport stream shows its second sync byte at 188,
 * an .m2ts one at 196).
 */
#define MI_SNIFF_LEN 256
const mi_media_type *mi_media_sniff(const void *buf, size_t len);

/*
 * Why a video file of `size` bytes, whose first `len` bytes are in `buf`,
 * is cut short as its container's own framing tells (a Matroska segment
 * longer than the file, a transport stream ending inside a packet), or
 * NULL when it does not tell.  A static string.
 */
const char *mi_media_cut_short(const void *buf, size_t len, uint64_t size);

/* Whether browsers show images of this type themselves (JPEG, PNG, GIF,
 * WebP, AVIF...): no preview is made for those. */
bool mi_media_browser_shows(const mi_media_type *t);

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
    /* From the decoder process (mi_meta_from_decoder): */
    uint32_t duration_ms;     /* videos; 0 unknown */
    char codec[64];           /* "hevc", "h264", "heif", "raw"...; "" */
    char live_id[64];         /* Apple's content identifier (Live Photos) */
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
/* Read size for hashing: from 64 KiB up the time is within noise here
 * (bench/hash-1g.sh); 128 KiB matches the kernel's default readahead. */
#define MI_HASH_CHUNK (128u * 1024u)

mi_status mi_hash_fd(uint8_t out[MI_HASH_SIZE], int fd, mi_hasher *h,
                     void *buf, size_t buflen, uint64_t *bytes);

/* ---------------------------------------------------------------------- */
/* util.c                                                                 */

/* Format into a fixed buffer, always NUL-terminated, truncating. */
void mi_bufprintf(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Room for element n of the array *v of *cap elements of `elem` bytes:
 * grown (doubled, from `first`) when n == *cap; MI_ETOOBIG beyond `max`
 * elements, MI_ENOMEM. */
mi_status mi_grow(void **v, size_t *cap, size_t n, size_t elem, size_t first,
                  size_t max);

/* Map an errno value to a status. */
mi_status mi_status_from_errno(int err);
/* Now, in nanoseconds since the epoch. */
int64_t mi_wall_ns(void);

/* The same for a failed write, fsync or create: MI_ENOSPACE for a full
 * disk or quota, MI_EIO for anything else. */
mi_status mi_status_from_io_errno(int err);

/* Start writing out what was written to fd since *started, once it is
 * MI_WRITE_BEHIND bytes or more (up to `written`), without waiting: the
 * disk then works while the next bytes arrive, and the fsync that makes
 * them durable waits for the last stretch only. */
#define MI_WRITE_BEHIND (8u << 20)
void mi_write_behind(int fd, uint64_t *started, uint64_t written);

/* ---------------------------------------------------------------------- */
/* phash.c: perceptual hashes                                             */

/* What the thumbnail pipeline learnt of a content's look. */
typedef struct mi_phash {
    bool tried;      /* its pixels were hashed: a row for the catalog */
    bool has;        /* ... and gave a hash (not for an image without
                        visible pixels, or a flat one) */
    uint64_t bits;
} mi_phash;

/*
 * The 64-bit DCT hash of w x h RGBA pixels (rows `stride` bytes apart),
 * upright: *has false (and MI_OK) when they have no visible pixel or are
 * flat.  MI_EINVAL for no pixels or a size over 65535, MI_ENOMEM.
 */
mi_status mi_phash_rgba(uint64_t *out, bool *has, const uint8_t *px, int w,
                        int h, size_t stride);
/* The same from a thumbnail PNG (256 x 256, the image centred on a
 * transparent canvas): the hash the pipeline gave.  MI_EFORMAT, MI_ETOOBIG
 * (over 1024 pixels a side), MI_ENOMEM. */
mi_status mi_phash_png(uint64_t *out, bool *has, const void *png, size_t len);
/* The bits in which two hashes differ (inline: the group search makes
 * millions of these; a portable popcount, the build targets no CPU with
 * an instruction for it). */
/* The whole seconds of a time in nanoseconds, rounded down (a negative
 * ctime too): a content's date when it has none of its own. */
static inline int64_t mi_ns_to_s_floor(int64_t ns)
{
    return ns / 1000000000 - (ns % 1000000000 < 0);
}

static inline unsigned mi_phash_distance(uint64_t a, uint64_t b)
{
    uint64_t x = a ^ b;

    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return (unsigned)((x * 0x0101010101010101ull) >> 56);
}
/* Hash, from their thumbnail PNG, the images that have one and no hash in
 * the catalog (a catalog from before hashes; a copy indexed while its
 * thumbnail existed already).  *filled (may be NULL) counts them.  For
 * the end of a complete scan. */
mi_status mi_phash_fill(mi_index *idx, uint64_t *filled);

/* ---------------------------------------------------------------------- */
/* thumb.c: thumbnails                                                    */

/* The state of a content's thumbnail, kept in the catalog per path. */
typedef enum mi_thumb_state {
    MI_THUMB_NONE = 0,         /* not tried (thumbnails off, or old row) */
    MI_THUMB_OK = 1,           /* DIR/.thumbnails/<hex>.png exists */
    MI_THUMB_UNSUPPORTED = 2,  /* a type without thumbnails (yet) */
    MI_THUMB_FAILED = 3        /* could not decode; retried when the file
                                  changes */
} mi_thumb_state;

/*
 * Make DIR/.thumbnails/<hex>.png for the content of the open file `fd`
 * (of media type `type`), written atomically (temp file + rename); reuse
 * a valid existing one.  Returns MI_OK, MI_EUNSUPPORTED, MI_EFORMAT,
 * MI_ETOOBIG or MI_EIO; *state (may be NULL) gets the state to record.
 * Thread-safe; called by scan workers and by uploads.
 */
mi_status mi_thumb_write_fd(mi_index *idx, const uint8_t hash[MI_HASH_SIZE],
                            int fd, const mi_media_type *type,
                            mi_thumb_state *state, mi_phash *phash,
                            char *why, size_t why_len);

/*
 * The same with the EXIF orientation already known (1..8; 0 = none,
 * -1 = read it from the file).  *written (may be NULL) tells whether a new
 * file was written (false when a valid one was reused).  On failure `why`
 * (may be NULL) gets the decoder process's own reason when it gave one
 * (a crash, its deadline, "the file ends before its video does"), else "".
 * *phash (may be NULL) gets the perceptual hash of an image whose
 * thumbnail was made now (phash.c), from the same pixels; nothing (tried
 * false) for videos and when a valid thumbnail was reused.
 */
mi_status mi_thumb_write_fd_oriented(mi_index *idx,
                                     const uint8_t hash[MI_HASH_SIZE], int fd,
                                     const mi_media_type *type,
                                     int orientation, mi_thumb_state *state,
                                     bool *written, mi_phash *phash,
                                     char *why, size_t why_len);

/*
 * For a scan: the thumbnail as mi_thumb_write_fd_oriented() makes it,
 * turned by meta->orientation, and what the decoder process knows of the
 * file added to `meta` (mi_meta_from_decoder).  A file of a decoder
 * format whose thumbnail is missing gets both from one request, so that
 * a file which crashes or hangs the decoder costs it once; its failure
 * is the thumbnail's (status, `why`).  With MI_INDEX_NO_THUMBNAILS only
 * the metadata.
 */
mi_status mi_thumb_write_fd_meta(mi_index *idx, const uint8_t hash[MI_HASH_SIZE],
                                 int fd, const mi_media_type *type,
                                 mi_meta *meta, mi_thumb_state *state,
                                 bool *written, mi_phash *phash, char *why,
                                 size_t why_len);

/* The thumbnail state that a status of mi_thumb_write_fd() records:
 * transient failures (I/O, memory) record NONE, to be tried again. */
mi_thumb_state mi_thumb_state_of(mi_status s);

/* Why a thumbnail could not be made, in words, for a status of
 * mi_thumb_write_fd() (a static string). */
const char *mi_thumb_reason(mi_status s);

/* Is DIR/.thumbnails/<hex>.png (open at dirfd) there? */
bool mi_thumb_exists(int dirfd, const uint8_t hash[MI_HASH_SIZE]);

/* Remove the thumbnails of contents the catalog no longer holds (and temp
 * files ten minutes old); *removed counts them, *young says temp files
 * too new to remove were left.  For the end of a complete scan. */
mi_status mi_thumb_sweep(mi_index *idx, uint64_t *removed, bool *young);

/* ---------------------------------------------------------------------- */
/* budget.c: the memory all decodes of a handle may hold at once           */

typedef struct mi_budget mi_budget;

mi_status mi_budget_new(mi_budget **out, uint64_t total);
void mi_budget_free(mi_budget *b);
/* Reserve `bytes`, waiting while other decodes hold too much; MI_ETOOBIG
 * when it is more than the whole budget.  A NULL budget allows anything. */
mi_status mi_budget_acquire(mi_budget *b, uint64_t bytes);
void mi_budget_release(mi_budget *b, uint64_t bytes);
uint64_t mi_budget_total(const mi_budget *b);
uint64_t mi_budget_used(mi_budget *b);

/* ---------------------------------------------------------------------- */
/* Decoding for thumbnails (thumb.c, decode-jpeg.c, decode-png.c)          */

/* Where the encoded bytes are: a buffer (buf, len), or an open file (fd,
 * size; read with pread, never whole). */
typedef struct mi_src {
    const uint8_t *buf;
    size_t len;
    int fd;                   /* -1 for a buffer */
    uint64_t size;
} mi_src;

/* Up to n bytes at `off`: how many were read (0 at the end), -1 on error. */
long mi_src_pread(const mi_src *s, void *out, size_t n, uint64_t off);

/* A decoded image, already box-shrunk to at most about 4x what is made of it,
 * in the stored orientation; its pixels stay reserved in `budget`. */
typedef struct mi_image {
    uint8_t *px;              /* w x h RGBA, no padding */
    int w, h;
    int full_w, full_h;       /* of the encoded image */
    bool alpha;               /* may have non-opaque pixels */
    int orientation;          /* 1..8 the decoder knows better (HEIF's own
                                 transforms, a video's display matrix); 0:
                                 the caller's (EXIF) */
    mi_budget *budget;
    uint64_t reserved;
} mi_image;

void mi_image_free(mi_image *im);

/* Rows in, fx x fy box averages out (alpha-weighted colour), so that no
 * decoder holds more than a row of the full image. */
typedef struct mi_shrink {
    int w, h, fx, fy, ow, oh, y;
    uint64_t *acc;
    uint8_t *out;
} mi_shrink;

/* What mi_shrink_begin allocates for w x h rows shrunk fx x fy. */
uint64_t mi_shrink_bytes(int w, int h, int fx, int fy);
mi_status mi_shrink_begin(mi_shrink *k, int w, int h, int fx, int fy);
/* One row of w RGBA pixels; rows past the last whole block are ignored. */
void mi_shrink_row(mi_shrink *k, const uint8_t *row);
/* Hand the result to `im` (px, w, h), and with it its share of the
 * `reserved` bytes the decoder holds in `budget`: returns what is left
 * for the decoder to release. */
uint64_t mi_shrink_end(mi_shrink *k, mi_image *im, mi_budget *budget,
                       uint64_t reserved);
void mi_shrink_free(mi_shrink *k);

/* The box factors for an image of full size fw x fh, decoded at dw x dh,
 * shown turned by EXIF `orientation`: down to between 2x and 4x its fit
 * into box x box, then the filtered resize does the rest. */
void mi_thumb_factors(int fw, int fh, int dw, int dh, int orientation,
                      int box, int *fx, int *fy);
/* The smallest of the denominators 8, 4, 2 whose scaling of w x h still
 * covers its fit into box x box as shown turned by `orientation`; 1 when
 * none does. */
int mi_thumb_jpeg_denom(int w, int h, int orientation, int box);

/* The decoders, for pixels that cover the image's fit into box x box:
 * MI_OK, MI_EFORMAT (broken), MI_ETOOBIG (over the pixel cap or the whole
 * budget), MI_ENOMEM, MI_EIO. */
mi_status mi_decode_jpeg(mi_image *im, const mi_src *src, int orientation,
                         int box, uint64_t max_pixels, mi_budget *budget);
mi_status mi_decode_png(mi_image *im, const mi_src *src, int orientation,
                        int box, uint64_t max_pixels, mi_budget *budget);

/* ---------------------------------------------------------------------- */
/* decoder.c: the decoder processes (mi-decode)                            */

#define MI_DECODER_TIMEOUT_DEFAULT_MS 30000u
/* Each helper's address space (RLIMIT_AS): a 48 MP HEIC decodes in it. */
#define MI_DECODER_MEMORY_DEFAULT (1024ull * 1024 * 1024)

typedef struct mi_decoders mi_decoders;
struct mi_dreq;
struct mi_dres;

/* Up to `procs` helpers, started on first need.  `path` NULL: found next
 * to the library, else where it is installed.  Never fails for a missing
 * helper: requests then fail with MI_EUNSUPPORTED. */
mi_status mi_decoders_new(mi_decoders **out, const char *path,
                          unsigned procs, unsigned timeout_ms,
                          uint64_t as_limit);
void mi_decoders_free(mi_decoders *d);
/* The helper in use, or NULL when none was found. */
const char *mi_decoders_path(const mi_decoders *d);

/* One request on the open file `fd`.  On MI_OK, *px (when the answer has
 * pixels) is malloc'd and holds *reserved bytes of `budget`.  On failure
 * `why` says why (a crash, the deadline, the decoder's own reason), and
 * res->magic tells who: MI_DPROTO_MAGIC when the helper itself answered
 * (what it read before failing is in *res), 0 when it crashed, hung,
 * answered nonsense or could not be started (*res all zero). */
mi_status mi_decoders_run(mi_decoders *d, int fd, const struct mi_dreq *req,
                          struct mi_dres *res, uint8_t **px,
                          mi_budget *budget, uint64_t *reserved, char *why,
                          size_t why_len);

/* The mi-decode format of a file (MI_DFMT_*), or 0 when it is one the
 * library decodes itself or not at all. */
int mi_decoder_format(const uint8_t *head, size_t n, const mi_media_type *named);

/* Add what the decoder process knows of the open file `fd` to `meta`
 * (videos: dimensions as displayed, date, place, duration, codec, make;
 * camera raw: what EXIF did not give).  MI_EFORMAT (with `why`) when the
 * file is of a decoder format but cannot be opened: a truncated or fake
 * video.  MI_OK and nothing added for other formats. */
mi_status mi_meta_from_decoder(mi_index *idx, int fd, const mi_media_type *type,
                               mi_meta *meta, char *why, size_t why_len);

/* Whether a file of mi-decode format `format` (0: none) has metadata to
 * take from the decoder once EXIF gave `meta`: videos and raw files
 * always, HEIF/WebP/TIFF only for a size EXIF did not give. */
bool mi_meta_wants_decoder(int format, const mi_meta *meta);

/* Add to `meta` what an answer of the decoder (either op) says, the way
 * mi_meta_from_decoder does; nothing when the helper did not answer
 * (res->magic 0) or mi_meta_wants_decoder says no. */
void mi_meta_add_decoded(mi_meta *meta, int format, const struct mi_dres *res);

/* The handle's decoder processes. */
mi_decoders *mi_index_decoders(mi_index *idx);

/* RGBA rows (alpha dropped) as a baseline JPEG, malloc'd. */
mi_status mi_jpeg_encode_rgba(uint8_t **out, size_t *out_len,
                              const uint8_t *px, int w, int h, size_t stride,
                              int quality);

/* The handle's decode budget. */
mi_budget *mi_index_budget(mi_index *idx);

/* Thumbnail temp files are named TEMP_PREFIX... */
#define MI_THUMB_TEMP_PREFIX ".tmp-"

/* png.c: an RGBA PNG of w x h pixels (rows `stride` bytes apart), malloc'd. */
mi_status mi_png_encode_rgba(uint8_t **out, size_t *out_len,
                             const uint8_t *px, int w, int h, size_t stride);

/* stb-image.c: stb_image, PNG/GIF/BMP, from memory. */
bool mi_stbi_info(const void *buf, size_t len, int *w, int *h);
uint8_t *mi_stbi_load_rgba(const void *buf, size_t len, int *w, int *h);
void mi_stbi_free(void *p);

/* stb-resize.c: resize 8-bit RGBA, alpha-weighted when `alpha`. */
bool mi_stbir_resize_rgba(const uint8_t *in, int iw, int ih, int istride,
                          uint8_t *out, int ow, int oh, int ostride,
                          bool alpha);

/* ---------------------------------------------------------------------- */
/* catalog.c: persistence in SQLite                                       */

typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;

/* One file row: a path and what the scan learnt of it. */
typedef struct mi_file_row {
    const char *path;         /* relative to the storage folder */
    size_t path_len;
    uint8_t hash[MI_HASH_SIZE];
    uint64_t size;
    int64_t mtime_ns, ctime_ns;
    uint64_t inode;
    const mi_media_type *type;
    mi_meta meta;
    mi_thumb_state thumb;
    mi_phash phash;           /* recorded per content when tried */
} mi_file_row;

/* A connection and its prepared statements. */
typedef struct mi_conn {
    sqlite3 *db;
    sqlite3_stmt *lookup;     /* rows of one hash, by path */
    sqlite3_stmt *all;        /* every row, by hash then path */
    sqlite3_stmt *count;      /* distinct hashes, rows */
    sqlite3_stmt *by_path;    /* path, size, mtime, inode, thumb, hash in
                                 path order */
    sqlite3_stmt *insert;     /* writer only */
    sqlite3_stmt *del_path;   /* writer only */
    sqlite3_stmt *set_gen;    /* writer only */
    sqlite3_stmt *set_thumb;  /* writer only: thumb state of a hash/path */
    sqlite3_stmt *hashes;     /* distinct hashes, in order */
    sqlite3_stmt *set_problem; /* writer only */
    sqlite3_stmt *del_problem; /* writer only */
    sqlite3_stmt *set_preview; /* writer only: a preview failure */
    sqlite3_stmt *del_preview; /* writer only */
    sqlite3_stmt *set_phash;  /* writer only: a content's perceptual hash */
    bool frozen;              /* opened MI_CATALOG_FROZEN */
    uint64_t next_seq;        /* writer: the last change number given */
    struct mi_conn *next;     /* in the idle pool */
} mi_conn;

typedef struct mi_query mi_query;   /* query.c */

#define MI_CATALOG_SCHEMA_VERSION 8
/* Columns of an entry row (catalog.c's ROW_COLUMNS). */
#define MI_CATALOG_ROW_COLUMNS 21

/*
 * Open the catalog file at `path` (creating it, WAL mode).  `writer` also
 * prepares the write statements.  A corrupt file or one from a newer schema
 * gives MI_EFORMAT (the caller moves it aside); detail in errbuf.
 */
typedef enum mi_catalog_mode {
    MI_CATALOG_READER = 0,    /* WAL reader */
    MI_CATALOG_WRITER,        /* also the write statements; migrates */
    MI_CATALOG_FROZEN         /* read-only and immutable: for a disk that
                                 is full or mounted read-only */
} mi_catalog_mode;

/* The change feed's newest number and the floor below which tokens are
 * too old (MI_ERESET when the catalog has no feed), and its compaction. */
mi_status mi_catalog_change_bounds(mi_conn *c, uint64_t *head, uint64_t *floor);
mi_status mi_catalog_compact_changes(mi_conn *c, int64_t now,
                                     int64_t retention_s);
/* The change feed's statements: rows (seq, hash) changed after ?1, in
 * order, less those with a later tombstone; look, a content's entry rows
 * (the lookup's columns) then each row's seq.  The caller finalizes both,
 * also on failure. */
mi_status mi_catalog_changes_query(mi_conn *c, sqlite3_stmt **rows,
                                   sqlite3_stmt **look);

mi_status mi_catalog_open(mi_conn **out, const char *path, mi_catalog_mode mode,
                          char *errbuf, size_t errlen);
void mi_catalog_close(mi_conn *c);

mi_status mi_catalog_begin(mi_conn *c, char *errbuf, size_t errlen);
mi_status mi_catalog_commit(mi_conn *c, char *errbuf, size_t errlen);
void mi_catalog_rollback(mi_conn *c);
/* Insert or replace the row of row->path (and forget the preview failure
 * of its content). */
mi_status mi_catalog_put(mi_conn *c, const mi_file_row *row,
                         char *errbuf, size_t errlen);
/* Delete the row of a path; *deleted tells whether there was one. */
mi_status mi_catalog_delete(mi_conn *c, const char *path, size_t path_len,
                            bool *deleted, char *errbuf, size_t errlen);
mi_status mi_catalog_get_generation(mi_conn *c, uint64_t *gen);
/* Add one to the stored generation, in the open transaction; *gen gets
 * the new value. */
mi_status mi_catalog_bump_generation(mi_conn *c, uint64_t *gen,
                                     char *errbuf, size_t errlen);
mi_status mi_catalog_count(mi_conn *c, uint64_t *media, uint64_t *files);
/* Each content's creation date, by its primary path, in hash order. */
mi_status mi_catalog_dates(mi_conn *c, int (*fn)(void *ctx, int64_t date),
                           void *ctx);
/* A statement over the primary rows of the contents in the order and date
 * range of `opts` that match `q` (NULL: all), with a last column telling whether the content has
 * more paths; the caller finalizes it. */
mi_status mi_catalog_query(mi_conn *c, sqlite3_stmt **out,
                           const mi_cursor_options *opts, const mi_query *q);
/* Set the thumbnail state of the rows of `hash` (all of them, or only the
 * one of `path` when path is not NULL). */
mi_status mi_catalog_set_thumb(mi_conn *c, const uint8_t hash[MI_HASH_SIZE],
                               const char *path, size_t path_len,
                               mi_thumb_state state,
                               char *errbuf, size_t errlen);

/* Record the perceptual hash of a content (NULL in the catalog when
 * ph->has is false: looked at, none), in the open transaction. */
mi_status mi_catalog_set_phash(mi_conn *c, const uint8_t hash[MI_HASH_SIZE],
                               const mi_phash *ph, char *errbuf, size_t errlen);

/* Record (insert or update) the problem of a path, seen at `now_ns`
 * (nanoseconds since the epoch; first_seen is kept while the stage stays
 * the same).  `reason` NULL or "" records mi_strerror(status). */
mi_status mi_catalog_set_problem(mi_conn *c, const char *path, size_t path_len,
                                 int stage, mi_status status,
                                 const char *reason, int64_t now_ns,
                                 char *errbuf, size_t errlen);
/* The path is fine now. */
mi_status mi_catalog_clear_problem(mi_conn *c, const char *path,
                                   size_t path_len, char *errbuf,
                                   size_t errlen);
/* After a complete scan that started at scan_start_ns: drop the read and
 * folder problems it did not meet again, thumbnail problems of paths no
 * longer indexed, and preview failures of contents no longer indexed. */
mi_status mi_catalog_sweep_problems(mi_conn *c, int64_t scan_start_ns,
                                    char *errbuf, size_t errlen);
mi_status mi_catalog_count_problems(mi_conn *c, uint64_t *out);
/* A number kept under key in the catalog's meta table (*found false when
 * none is); put NULL removes it.  A put belongs in a write transaction. */
mi_status mi_catalog_meta_get(mi_conn *c, const char *key, int64_t *value,
                              bool *found);
mi_status mi_catalog_meta_put(mi_conn *c, const char *key,
                              const int64_t *value);
/* The problem recorded for a path: MI_OK, or MI_ENOTFOUND. */
mi_status mi_catalog_get_problem(mi_conn *c, const char *path, size_t path_len,
                                 int *stage, mi_status *status, char *reason,
                                 size_t reason_len);

/* The failure remembered for the preview of a content (mi_preview_get):
 * MI_OK with its status and reason, or MI_ENOTFOUND. */
mi_status mi_catalog_get_preview_failure(mi_conn *c,
                                         const uint8_t hash[MI_HASH_SIZE],
                                         mi_status *status, char *reason,
                                         size_t reason_len);
/* Remember it, in the open transaction. */
mi_status mi_catalog_set_preview_failure(mi_conn *c,
                                         const uint8_t hash[MI_HASH_SIZE],
                                         mi_status status, const char *reason,
                                         char *errbuf, size_t errlen);

/* ---------------------------------------------------------------------- */
/* index.c: the handle                                                    */

/* Record the detail of a failure on the handle, for the calling thread;
 * returns `status` so callers can `return mi_index_fail(...)`. */
mi_status mi_index_fail(mi_index *idx, mi_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Clear the calling thread's message. */
void mi_index_clear_error(mi_index *idx);

/* Take an idle reader connection (opening one if none is idle) / give it
 * back. */
mi_status mi_index_reader(mi_index *idx, mi_conn **out);
void mi_index_release(mi_index *idx, mi_conn *c);
/* Run `sql` (no parameters) on a reader, calling `row` for each row until
 * it returns other than MI_OK (that status is returned); MI_EDB, detail
 * on the handle naming `what`, when the catalog fails. */
mi_status mi_index_each_row(mi_index *idx, const char *sql, const char *what,
                            mi_status (*row)(sqlite3_stmt *st, void *payload),
                            void *payload);

/* The writer connection, under the writer lock; NULL (and no lock held)
 * while the catalog cannot be written: mi_index_writer_error says why. */
mi_conn *mi_index_writer_lock(mi_index *idx);
mi_status mi_index_writer_error(mi_index *idx, char *errbuf, size_t errlen);
/* End the writer's transaction and give the lock back: commit (bumping
 * the generation when `changed`), or, on any failure, roll back. */
mi_status mi_index_writer_commit(mi_index *idx, bool changed,
                                 char *errbuf, size_t errlen);
/* Roll back whatever the writer holds and give the lock back. */
void mi_index_writer_abort(mi_index *idx);

/* Serialise the commits of one content (uploads of the same bytes);
 * contents with other hashes mostly take other locks. */
void mi_index_store_lock(mi_index *idx, const uint8_t hash[MI_HASH_SIZE]);
void mi_index_store_unlock(mi_index *idx, const uint8_t hash[MI_HASH_SIZE]);

/* One preview of a content is made at a time: a thread that asks for one
 * being made waits for it (and then finds the file, or the remembered
 * failure) rather than giving the decoder the same file again.  `slot`
 * is the caller's, registered until mi_index_preview_end. */
typedef struct mi_preview_slot {
    uint8_t hash[MI_HASH_SIZE];
    struct mi_preview_slot *next;
} mi_preview_slot;

void mi_index_preview_begin(mi_index *idx, mi_preview_slot *slot,
                            const uint8_t hash[MI_HASH_SIZE]);
void mi_index_preview_end(mi_index *idx, mi_preview_slot *slot);

/* store.c: remove the named temporary files a crash left (at open). */
void mi_store_cleanup(mi_index *idx);

/* store.c: the name an upload called `name` (or `fallback_name`'s
 * extension) is stored under, sanitised, into `out`; MI_EFORMAT (detail
 * on the handle) when it is not that of a type uploads accept. */
mi_status mi_store_check_name(char out[MI_MAX_NAME + 1], mi_index *idx,
                              const char *name, const char *fallback_name);

/*
 * store.c: an upload whose bytes are already complete in the open file
 * `fd` (readable, at `rel` relative to the storage folder, on its file
 * system), to be committed by mi_store_commit() exactly as a streamed
 * one: the bytes from `hashed` on are fed to `hasher` (taken over, may be
 * NULL: all of them to a new one) by reading the file again, checked
 * against `expect` (may be NULL: MI_EINVAL on a mismatch), and the file
 * is linked to its place.  mi_store_free() neither closes fd nor removes
 * rel.
 */
mi_status mi_store_adopt(mi_store **out, mi_index *idx, const char *name,
                         int fd, const char *rel, mi_hasher *hasher,
                         uint64_t hashed, const uint8_t *expect);

/* store.c: hashing on a second thread, overlapping the writes (two
 * buffers of 1 MiB).  start gives NULL when no thread could be made (hash
 * in the caller then); feed copies the bytes and returns; finish waits
 * for them to be hashed, stops the thread (NULL: no-op) and gives its
 * status.  MI_HASH_PIPE_START: bytes worth starting one for. */
#define MI_HASH_PIPE_START (4u << 20)
typedef struct mi_hash_pipe mi_hash_pipe;
mi_hash_pipe *mi_hash_pipe_start(mi_hasher *h);
void mi_hash_pipe_feed(mi_hash_pipe *hp, const void *buf, size_t len);
mi_status mi_hash_pipe_finish(mi_hash_pipe *hp);

/* upload.c: the state of a handle's resumable uploads (the reservations
 * against upload_partial_max), made by mi_index_open. */
typedef struct mi_uploads mi_uploads;
mi_status mi_uploads_new(mi_uploads **out);
void mi_uploads_free(mi_uploads *u);
mi_uploads *mi_index_uploads(mi_index *idx);
uint64_t mi_index_upload_partial_max(const mi_index *idx);
unsigned int mi_index_upload_expiry_s(const mi_index *idx);

/* Internal accessors for scan.c. */
int mi_index_root_fd(const mi_index *idx);
unsigned int mi_index_threads(const mi_index *idx);
unsigned int mi_index_flags(const mi_index *idx);       /* MI_INDEX_* */
uint64_t mi_index_max_pixels(const mi_index *idx);
/* DIR/.thumbnails, opened (and created) by mi_index_open; -1 if it could
 * not be, or with MI_INDEX_NO_THUMBNAILS until first needed. */
int mi_index_thumbs_fd(mi_index *idx);
/* Remove the files made from a content (thumbnail, 512, preview); true
 * when there was one. */
bool mi_thumb_remove(mi_index *idx, const uint8_t hash[MI_HASH_SIZE]);
/* trash.c: is this content in the trash (a reader query)?  Settle the
 * moves a crash interrupted (at open, under the writer). */
bool mi_trash_has(mi_index *idx, const uint8_t hash[MI_HASH_SIZE]);
void mi_trash_recover(mi_index *idx);
/* mi_trash_restore() with the content's store lock already held. */
mi_status mi_trash_restore_locked(char *path, size_t path_size, mi_index *idx,
                                  const uint8_t hash[MI_HASH_SIZE]);
/* The trash's entries, newest trashed first, for a cursor. */
mi_status mi_catalog_trash_query(mi_conn *c, sqlite3_stmt **out);
#define MI_TRASH_DIR ".mediaindex/trash"

/* True once per handle: the first scan sweeps stale thumbnails. */
bool mi_index_take_first_sweep(mi_index *idx);
/* Only one scan at a time: MI_EBUSY if one runs. */
mi_status mi_index_scan_begin(mi_index *idx);
void mi_index_scan_end(mi_index *idx);

/* ---------------------------------------------------------------------- */
/* scan.c: scans limited to some paths (for watch.c)                       */

/* Leave the files someone has open for writing (their closing is seen). */
#define MI_SCAN_SKIP_BUSY 0x1u

/*
 * mi_scan() limited to `paths`, relative to the storage folder: each names
 * a file or a folder, with everything under it, and is brought up to date
 * alone (new, changed, gone), without the cleanup of a complete scan
 * (problems not met again, thumbnails of contents gone).  "" means
 * everything: a complete scan.  Names that are not plain relative paths
 * are ignored; npaths 0 scans nothing.  `private_flags`: MI_SCAN_SKIP_BUSY.
 */
mi_status mi_scan_paths(mi_index *idx, const char *const *paths,
                        size_t npaths, unsigned int private_flags,
                        const mi_scan_options *opts, mi_scan_stats *stats);

/* The folders every scan skips (.mediaindex, .thumbnails), by name. */
bool mi_scan_skipped_dir(const char *name);

/* ---------------------------------------------------------------------- */
/* Places (places.c)                                                       */

#define MI_PLACE_RADIUS_KM 150.0   /* farther from any place: none */
#define MI_PLACE_NAME_MAX 256      /* bytes of a folded name, NUL included */
#define MI_PLACE_RUNS_MAX 256
#define MI_STRINGIFY_(x) #x
#define MI_STRINGIFY(x) MI_STRINGIFY_(x)

#define MI_PLACE_CITY 0x1u
#define MI_PLACE_REGION 0x2u
#define MI_PLACE_COUNTRY 0x4u     /* its name or ISO code */

/* Places as runs of consecutive numbers (first..last, inclusive). */
typedef struct mi_place_runs {
    size_t n;
    struct { uint32_t first, last; } run[MI_PLACE_RUNS_MAX];
} mi_place_runs;

/*
 * The form names are compared in: lower case, Latin letters without their
 * accents (GLib's transliteration, at build time), hyphens, dots, commas
 * and apostrophes as one space, no space at the ends.  Reads at most `len`
 * bytes of `in` (up to a NUL); writes at most out_size bytes, NUL included;
 * returns the length written.
 */
size_t mi_place_fold(char *out, size_t out_size, const char *in, size_t len);

/*
 * The places whose name in one of `fields` (MI_PLACE_*) folds to the same
 * as `name`, in `country` (its name or ISO code) unless that is NULL.
 * MI_ETOOBIG past MI_PLACE_RUNS_MAX runs.
 */
mi_status mi_place_match(mi_place_runs *out, const char *name,
                         const char *country, unsigned fields);

/* ---------------------------------------------------------------------- */
/* Search (query.c)                                                        */

/* A parsed query: every part must hold. */
struct mi_query {
    int64_t date_from, date_to;   /* [from, to); INT64_MIN/MAX: open */
    int kind;                     /* MI_KIND_*, 0: any */
    bool has_places;
    mi_place_runs places;         /* with has_places: one of these */
    char *match;                  /* an FTS5 expression over `words`, or NULL */
    bool nothing;                 /* nothing can match (an empty range) */
};

/* Parse the search language (see query.c); MI_EINVAL with the reason in
 * err.  Free with mi_query_free() after success. */
mi_status mi_query_parse(mi_query *q, const char *text, char *err,
                         size_t errlen);
void mi_query_free(mi_query *q);
/* AND one place filter more (runs of places) into the query. */
mi_status mi_query_places(mi_query *q, const mi_place_runs *r);

#endif /* MI_PRIVATE_H */
