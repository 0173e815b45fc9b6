/*
 * mediaindex.h - the public API of libmediaindex.
 *
 * libmediaindex indexes the photos and videos under one storage folder by
 * SHA-256, reads their metadata (EXIF dates, orientation, GPS, camera) and
 * keeps a persistent catalog in DIR/.mediaindex/index.sqlite3, so that a
 * restart re-reads nothing that did not change.
 *
 * Conventions
 *  - Every fallible call returns an mi_status: MI_OK (0) on success, a
 *    negative MI_E* code on failure.  mi_strerror() names any code.
 *  - Out-parameters come first.  On failure they are set to NULL / zero.
 *  - Strings are NUL-terminated bytes.  Paths are file system bytes: they are
 *    usually UTF-8 but need not be.
 *  - A `const char *` returned by a getter is borrowed; each getter says how
 *    long it stays valid.  What comes back through `**out` belongs to the
 *    caller and is released with the matching mi_*_free().
 *  - The library never prints, never exits and never aborts on bad input.
 *
 * Thread safety
 *  - One mi_index may be used by many threads at once.
 *  - A cursor or an entry belongs to the thread that uses it.
 *  - A hasher belongs to one thread at a time.
 */
#ifndef MEDIAINDEX_H
#define MEDIAINDEX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MI_VERSION_MAJOR 0
#define MI_VERSION_MINOR 1
#define MI_VERSION_PATCH 0

#if defined(MI_STATIC)
#define MI_EXTERN
#elif defined(__GNUC__)
#define MI_EXTERN __attribute__((visibility("default")))
#else
#define MI_EXTERN
#endif

/*
 * Status codes.  Codes are only ever appended to this table, never
 * renumbered.  X(name, value, message)
 */
#define MI_STATUS_MAP(X)                                                    \
    X(OK, 0, "success")                                                     \
    X(ROW, 1, "a row is available")                                         \
    X(DONE, 2, "no more rows")                                              \
    X(ERROR, -1, "internal error")                                          \
    X(EINVAL, -2, "invalid argument")                                       \
    X(ENOMEM, -3, "out of memory")                                          \
    X(ENOTFOUND, -4, "not found")                                           \
    X(EEXISTS, -5, "already exists")                                        \
    X(EIO, -6, "input/output error")                                        \
    X(EFORMAT, -7, "malformed or unsupported data")                         \
    X(ETOOBIG, -8, "too big")                                               \
    X(EBUSY, -9, "busy")                                                    \
    X(EABORTED, -10, "aborted by the caller")                               \
    X(EACCES, -11, "permission denied")                                     \
    X(ENOTDIR, -12, "not a directory")                                      \
    X(EDB, -13, "catalog database error")                                   \
    X(EUNSUPPORTED, -14, "not supported by this build")                    \
    X(ENOSPACE, -15, "no space left on device")                             \
    X(ERESET, -16, "the change token is too old or not of this catalog")

/** A status code: MI_OK, MI_ROW, MI_DONE, or a negative MI_E* failure. */
typedef enum mi_status {
#define MI__STATUS_ENUM(name, value, message) MI_##name = (value),
    MI_STATUS_MAP(MI__STATUS_ENUM)
#undef MI__STATUS_ENUM
} mi_status;

/** The library's version as "MAJOR.MINOR.PATCH"; a static string. */
MI_EXTERN const char *mi_version(void);

/**
 * A static, human-readable description of any status value (unknown values
 * included).  Never NULL, never allocates, safe from any thread.
 */
MI_EXTERN const char *mi_strerror(int status);

/* ---------------------------------------------------------------------- */
/* Hashing (SHA-256)                                                       */

#define MI_HASH_SIZE 32     /* bytes in a SHA-256 digest */
#define MI_HASH_HEX_LEN 64  /* hex characters, without the NUL */

/** The SHA-256 engine this build uses: "openssl" or "libsodium". */
MI_EXTERN const char *mi_hash_engine(void);

/** Hash `len` bytes at `buf` (buf may be NULL when len is 0). */
MI_EXTERN mi_status mi_hash_buffer(uint8_t out[MI_HASH_SIZE],
                                   const void *buf, size_t len);

/**
 * Hash the whole file at `path`.  MI_ENOTFOUND if it does not exist,
 * MI_EACCES if it cannot be read, MI_EIO on a read error, MI_EINVAL if it is
 * not a regular file.
 */
MI_EXTERN mi_status mi_hash_file(uint8_t out[MI_HASH_SIZE], const char *path);

/** A streaming SHA-256 state.  Thread safety: one thread at a time. */
typedef struct mi_hasher mi_hasher;

/** Allocate a hasher, ready for mi_hasher_update(). */
MI_EXTERN mi_status mi_hasher_new(mi_hasher **out);
/** Feed `len` bytes. */
MI_EXTERN mi_status mi_hasher_update(mi_hasher *h, const void *buf, size_t len);
/** Write the digest of everything fed so far and reset the hasher for reuse. */
MI_EXTERN mi_status mi_hasher_final(mi_hasher *h, uint8_t out[MI_HASH_SIZE]);
/** Free a hasher; NULL is a no-op. */
MI_EXTERN void mi_hasher_free(mi_hasher *h);

/** Write the 64 lower-case hex characters of `hash` and a NUL into `out`. */
MI_EXTERN void mi_hash_to_hex(char out[MI_HASH_HEX_LEN + 1],
                              const uint8_t hash[MI_HASH_SIZE]);

/**
 * Decode exactly 64 hex characters (either case) followed by a NUL.
 * Anything else (shorter, longer, a non-hex character) is MI_EINVAL and
 * leaves `out` zeroed.
 */
MI_EXTERN mi_status mi_hash_from_hex(uint8_t out[MI_HASH_SIZE], const char *hex);

/* ---------------------------------------------------------------------- */
/* Media types                                                             */

#define MI_MEDIA_VIDEO   0x1u /* a video (otherwise an image) */
#define MI_MEDIA_UPLOAD  0x2u /* accepted by mi_store_* (and thumbnailed) */
#define MI_MEDIA_PREVIEW 0x4u /* an image browsers cannot show themselves:
                                 mi_preview_get() makes a JPEG of it */

/**
 * The `i`-th file-name extension the library indexes (lower case, without
 * the dot), counting from 0; NULL past the last, so a client can list what
 * the library takes (a gallery's upload filter, say) without a copy of its
 * own.  `mime` and `flags` (MI_MEDIA_*) receive the type's MIME string and
 * properties; either may be NULL.  The strings are static.
 * Thread safety: any thread.
 */
MI_EXTERN const char *mi_media_type_at(size_t i, const char **mime,
                                       unsigned int *flags);

/* ---------------------------------------------------------------------- */
/* The index                                                               */

/**
 * An open index on one storage folder.  Thread safety: one handle may be
 * used by many threads at once; only one scan runs at a time.
 */
typedef struct mi_index mi_index;

/** Options for mi_index_open(); start from MI_INDEX_OPTIONS_INIT. */
typedef struct mi_index_options {
    unsigned int version;  /* MI_INDEX_OPTIONS_VERSION */
    unsigned int threads;  /* worker threads for scans; 0 = online cores */
    unsigned int flags;    /* MI_INDEX_* */
    uint64_t max_pixels;   /* largest image (w*h) to decode for a
                              thumbnail (for a sequential JPEG: as decoded,
                              DCT-scaled down to 1/8); 0 =
                              MI_THUMB_MAX_PIXELS_DEFAULT */
    /* Version 2: */
    uint64_t decode_memory; /* bytes that all thumbnail decodes of this
                               handle may hold at once (they wait for
                               each other beyond it); 0 =
                               MI_DECODE_MEMORY_DEFAULT */
    /* Version 3: */
    const char *decoder;    /* the mi-decode program that decodes HEIF,
                               WebP, TIFF, camera raw and video in a
                               sandboxed process; NULL = next to the
                               library, else where it is installed */
    unsigned int decoder_timeout_ms; /* per file; 0 = 30 s */
    /* Version 4: resumable uploads (mi_upload_*) */
    uint64_t upload_partial_max; /* bytes all unfinished uploads may
                                    reserve together; 0 =
                                    MI_UPLOAD_PARTIAL_MAX_DEFAULT */
    unsigned int upload_expiry_s; /* an unfinished upload that receives
                                     nothing for this long is removed;
                                     0 = MI_UPLOAD_EXPIRY_DEFAULT */
    /* Version 5: the change feed (mi_changes_*) */
    unsigned int changes_retention_s; /* contents gone this long leave
                                         the feed (checked when the index
                                         opens, once a day); 0 =
                                         MI_CHANGES_RETENTION_S */
} mi_index_options;

/* Flags for mi_index_options. */
#define MI_INDEX_NO_THUMBNAILS 0x1u  /* scans and uploads make no thumbnails */

/* Sized for a 1 GB machine: the decoders of a whole server stay under it. */
#define MI_DECODE_MEMORY_DEFAULT (64u * 1024u * 1024u)

#define MI_INDEX_OPTIONS_VERSION 5
#define MI_INDEX_OPTIONS_INIT \
    { MI_INDEX_OPTIONS_VERSION, 0, 0, 0, 0, NULL, 0, 0, 0, 0 }

/**
 * Open (creating if needed) the index of the folder `storage_dir`.  The
 * catalog lives in storage_dir/.mediaindex/.  `opts` may be NULL for the
 * defaults.
 *
 * A catalog that is corrupt or from a newer version of the library is moved
 * aside (to index.sqlite3.broken-<time>, never deleted) and a new one is
 * started; the next scan rebuilds it from the disk, and mi_index_errmsg()
 * says what happened.
 *
 * On failure *out is NULL and, when errbuf is not NULL, a NUL-terminated
 * description is written to errbuf (at most errbuf_len bytes).  Errors:
 * MI_ENOTFOUND (no such folder), MI_ENOTDIR, MI_EACCES, MI_EDB, MI_ENOMEM.
 */
MI_EXTERN mi_status mi_index_open(mi_index **out, const char *storage_dir,
                                  const mi_index_options *opts,
                                  char *errbuf, size_t errbuf_len);

/** Close an index and free everything it holds.  NULL is a no-op. */
MI_EXTERN void mi_index_close(mi_index *idx);

/**
 * Can the catalog be written?  An index opens even when it cannot (the
 * disk is full, or mounted read-only): it then serves what the catalog
 * holds, and scans, uploads and thumbnails that would change it fail
 * (MI_ENOSPACE for a full disk).  This call (like any write) tries again
 * at most every few seconds, so the index becomes writable by itself once
 * space returns.  Returns MI_OK when writable; else why not (MI_ENOSPACE
 * for a full disk, MI_EACCES, MI_EIO), with the detail in `why` (may be
 * NULL).
 */
MI_EXTERN mi_status mi_index_writable(mi_index *idx, char *why,
                                      size_t why_len);

/**
 * The detail of the calling thread's most recent failure on this handle (or
 * a notice left by mi_index_open, such as a recovered catalog), or "" when
 * there is none.  Valid until the calling thread's next call on the handle.
 */
MI_EXTERN const char *mi_index_errmsg(mi_index *idx);

/** The absolute storage folder the index was opened on; valid until close. */
MI_EXTERN const char *mi_index_storage_dir(const mi_index *idx);

/**
 * Counts of what the catalog holds: `media` distinct contents (hashes) and
 * `files` paths.  Either out-parameter may be NULL.
 */
MI_EXTERN mi_status mi_index_count(mi_index *idx, uint64_t *media,
                                   uint64_t *files);

/**
 * A number that changes whenever the catalog's content changes, through
 * this handle or any other on the same folder (useful as an HTTP ETag).
 * It persists across restarts.
 */
MI_EXTERN uint64_t mi_index_generation(mi_index *idx);

/**
 * The creation date (as mi_entry_creation_date gives it) of every content
 * in the catalog, one call of fn(ctx, date) each, in no particular order;
 * fn returns nonzero to stop (then MI_DONE).  One snapshot, whose
 * generation (as mi_index_generation) goes to `generation` (may be NULL).
 * For counts by date (a timeline): it reads one column from the catalog's
 * own order, where a cursor builds every entry, about ten times the cost.
 */
MI_EXTERN mi_status mi_index_dates(mi_index *idx, uint64_t *generation,
                                   int (*fn)(void *ctx, int64_t date),
                                   void *ctx);

/* ---------------------------------------------------------------------- */
/* Scanning                                                                */

/** Scan counters.  Start from MI_SCAN_STATS_INIT; the library fills the
 *  fields that exist in the version the caller names. */
typedef struct mi_scan_stats {
    unsigned int version;  /* MI_SCAN_STATS_VERSION */
    uint64_t seen;         /* media files found on disk */
    uint64_t added;        /* new paths indexed */
    uint64_t changed;      /* known paths whose file changed, re-hashed */
    uint64_t removed;      /* paths gone from disk, dropped */
    uint64_t unchanged;    /* known paths not re-read */
    uint64_t failed;       /* files that could not be read */
    uint64_t files_hashed; /* files opened and read in full */
    uint64_t bytes_hashed; /* bytes read and hashed */
    uint64_t thumbs_made;        /* thumbnails written */
    uint64_t thumbs_failed;      /* images that could not be decoded */
    uint64_t thumbs_unsupported; /* media without thumbnails (yet) */
    uint64_t thumbs_removed;     /* thumbnails of contents gone */
} mi_scan_stats;

#define MI_SCAN_STATS_VERSION 1
#define MI_SCAN_STATS_INIT \
    { MI_SCAN_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/**
 * Progress callback: called from the scanning thread now and then with the
 * counts so far.  Return 0 to go on, anything else to cancel the scan (it
 * then returns MI_EABORTED, keeping what it had committed).
 */
typedef int (*mi_scan_progress_cb)(const mi_scan_stats *stats, void *payload);

/** Scan flags. */
#define MI_SCAN_FULL 0x1u  /* re-hash every file, even unchanged ones */

/** Options for mi_scan(); start from MI_SCAN_OPTIONS_INIT. */
typedef struct mi_scan_options {
    unsigned int version;          /* MI_SCAN_OPTIONS_VERSION */
    unsigned int flags;            /* MI_SCAN_* */
    mi_scan_progress_cb progress;  /* may be NULL */
    void *payload;                 /* passed to progress */
} mi_scan_options;

#define MI_SCAN_OPTIONS_VERSION 1
#define MI_SCAN_OPTIONS_INIT { MI_SCAN_OPTIONS_VERSION, 0, NULL, NULL }

/**
 * Walk the storage folder and bring the catalog up to date.  Incremental by
 * default: a file whose size, mtime and inode did not change is not re-read.
 * Directory symlinks are not followed; a file symlink is indexed only when it
 * resolves inside the storage folder.  A file that cannot be read is counted
 * in `failed` and the scan goes on.
 *
 * `opts` and `stats` may be NULL.  Runs in the calling thread plus a pool of
 * worker threads; lookups and cursors on other threads are not blocked.
 * MI_EBUSY if another scan on this handle is running.
 */
MI_EXTERN mi_status mi_scan(mi_index *idx, const mi_scan_options *opts,
                            mi_scan_stats *stats);

/* ---------------------------------------------------------------------- */
/* Entries: one per distinct content (hash)                                */

/** What an entry is. */
typedef enum mi_kind {
    MI_KIND_IMAGE = 1,
    MI_KIND_VIDEO = 2
} mi_kind;

/** Where an entry's original_creation_date came from. */
typedef enum mi_date_source {
    MI_DATE_CTIME = 0,             /* the file's ctime (no usable EXIF date) */
    MI_DATE_EXIF_ORIGINAL = 1,     /* EXIF DateTimeOriginal */
    MI_DATE_EXIF_DIGITIZED = 2,    /* EXIF DateTimeDigitized */
    MI_DATE_EXIF_DATETIME = 3,     /* EXIF DateTime */
    MI_DATE_CONTAINER = 4          /* a video's own creation date (QuickTime
                                      creationdate, else creation_time) */
} mi_date_source;

/**
 * One indexed content.  Its getters read fields; strings they return stay
 * valid as long as the entry (for a cursor's entry: until the next
 * mi_cursor_next or mi_cursor_free).
 */
typedef struct mi_entry mi_entry;

/**
 * Look up the content with this hash.  MI_ENOTFOUND if none is indexed.
 * On success *out belongs to the caller: free it with mi_entry_free().
 */
MI_EXTERN mi_status mi_lookup(mi_entry **out, mi_index *idx,
                              const uint8_t hash[MI_HASH_SIZE]);

/**
 * Is the content `hash` indexed?  MI_OK when it is, and then its primary
 * path (relative to the storage folder) goes into `path` when `path` is not
 * NULL (MI_ETOOBIG, and "", when path_size is too small: MI_MAX_PATH_LEN + 1
 * always suffices); MI_ENOTFOUND when it is not (a normal answer: no detail
 * is recorded).  With MI_HAS_ON_DISK, a path counts only while a regular
 * file of the indexed size is still there (the content's other paths are
 * tried in turn), the test an upload's de-duplication makes.  Cheap enough
 * to answer "which of these 50,000 do you have?" one hash at a time: one
 * read of the catalog's hash index (plus one stat with MI_HAS_ON_DISK),
 * no allocation.
 */
MI_EXTERN mi_status mi_index_has(char *path, size_t path_size, mi_index *idx,
                                 const uint8_t hash[MI_HASH_SIZE],
                                 unsigned int flags);

#define MI_HAS_ON_DISK 0x1u   /* only a file still on disk counts */
#define MI_MAX_PATH_LEN 4096  /* bytes in a relative path, without the NUL */

/** Free an entry from mi_lookup(); NULL is a no-op. */
MI_EXTERN void mi_entry_free(mi_entry *e);

MI_EXTERN const uint8_t *mi_entry_hash(const mi_entry *e);  /* 32 bytes */
MI_EXTERN const char *mi_entry_hash_hex(const mi_entry *e);  /* lower case */
/** The base name of the primary path. */
MI_EXTERN const char *mi_entry_filename(const mi_entry *e);
/** The primary path, relative to the storage folder (the smallest path). */
MI_EXTERN const char *mi_entry_path(const mi_entry *e);
MI_EXTERN uint64_t mi_entry_size(const mi_entry *e);
/** Modification time of the primary path, nanoseconds since the epoch. */
MI_EXTERN int64_t mi_entry_mtime_ns(const mi_entry *e);
/** Status-change time of the primary path, nanoseconds since the epoch. */
MI_EXTERN int64_t mi_entry_ctime_ns(const mi_entry *e);
/** Seconds since the epoch; see mi_entry_creation_source(). */
MI_EXTERN int64_t mi_entry_creation_date(const mi_entry *e);
MI_EXTERN mi_date_source mi_entry_creation_source(const mi_entry *e);
MI_EXTERN mi_kind mi_entry_kind(const mi_entry *e);
/** MIME type from the file name, e.g. "image/jpeg". */
MI_EXTERN const char *mi_entry_mime_type(const mi_entry *e);
/** Width and height as displayed (after EXIF orientation); 0 if unknown. */
MI_EXTERN uint32_t mi_entry_width(const mi_entry *e);
MI_EXTERN uint32_t mi_entry_height(const mi_entry *e);
/** EXIF orientation 1..8; 0 when the file has none. */
MI_EXTERN int mi_entry_orientation(const mi_entry *e);
/**
 * GPS position in signed decimal degrees (north and east positive).
 * Returns 1 and fills lat/lon when the file has one, else 0.
 */
MI_EXTERN int mi_entry_gps(const mi_entry *e, double *lat, double *lon);
/** Camera make and model from EXIF, or NULL when absent. */
MI_EXTERN const char *mi_entry_make(const mi_entry *e);
MI_EXTERN const char *mi_entry_model(const mi_entry *e);
/** A video's duration in milliseconds; 0 for images and when unknown. */
MI_EXTERN uint32_t mi_entry_duration_ms(const mi_entry *e);
/** The codec the decoder named ("hevc", "h264", "heif", "raw"), or NULL. */
MI_EXTERN const char *mi_entry_codec(const mi_entry *e);
/** Apple's content identifier, shared by the photo (its maker note's tag
 *  0x0011) and the video (com.apple.quicktime.content.identifier) of a
 *  Live Photo, or NULL: equal ids pair the two halves. */
MI_EXTERN const char *mi_entry_live_id(const mi_entry *e);
/** The nearest populated place to the entry's GPS position (see
 *  mi_place_at()); 0 when it has none. */
MI_EXTERN uint32_t mi_entry_place(const mi_entry *e);
/** The thumbnail's path relative to the storage folder
 *  (".thumbnails/<sha256>.png") when the content has one, else NULL
 *  (videos, types without thumbnails, undecodable images). */
MI_EXTERN const char *mi_entry_thumbnail(const mi_entry *e);
/** The other paths that hold the same bytes (relative, sorted). */
MI_EXTERN size_t mi_entry_dup_count(const mi_entry *e);
MI_EXTERN const char *mi_entry_dup_path(const mi_entry *e, size_t i);

/* ---------------------------------------------------------------------- */
/* Watching the folder                                                     */

/*
 * A watcher keeps the catalog in step with the storage folder while it
 * runs: what is copied, moved, renamed or deleted there is indexed within
 * about a second, by the same incremental scan as mi_scan() limited to the
 * paths that changed.  On Linux it uses inotify, one watch per folder
 * (.mediaindex and .thumbnails excepted); a file is read once it is
 * complete: closed after writing, or moved into place.  A file still open
 * for writing when a scan meets it (in a new folder, say) is left until
 * it is closed, where the system can tell: a file of the watcher's own
 * user, on a local file system (a read lease).  When the kernel's
 * event queue or the watcher's own overflows, it runs one incremental scan
 * of everything.  Without inotify (another system, no instance left, the
 * folder on a network file system) or once the watches run out
 * (fs.inotify.max_user_watches), it falls back to an incremental scan of
 * everything every poll_interval_s, and says so in mi_watch_state().
 *
 * A watcher runs in threads of its own and scans like any other caller:
 * while another scan runs (MI_EBUSY) its own waits; uploads and lookups go
 * on meanwhile.  Stop it (mi_watch_stop) before closing its index.
 * Thread safety: mi_watch_state() may be called from any thread;
 * mi_watch_stop() once, from one thread (not from the callback).
 */
typedef struct mi_watch mi_watch;

/** How a watcher works now. */
typedef enum mi_watch_mode {
    MI_WATCH_STOPPED = 0,  /* not running (stopped, or failed: see reason) */
    MI_WATCH_INOTIFY = 1,  /* events from the kernel */
    MI_WATCH_POLLING = 2   /* a scan of everything now and then */
} mi_watch_mode;

/**
 * Called from the watcher's thread after each scan it ran, with the
 * scan's status and counts (mi_watch_state() may be called from it, e.g.
 * to log a fall back to polling once).  Keep it short; it must not call
 * mi_watch_stop().
 */
typedef void (*mi_watch_cb)(mi_watch *w, mi_status status,
                            const mi_scan_stats *stats, void *payload);

/* Flags for mi_watch_options. */
#define MI_WATCH_POLL 0x1u          /* poll, never use inotify */
#define MI_WATCH_NO_FIRST_SCAN 0x2u /* no scan of everything at the start:
                                       the caller runs mi_scan() itself
                                       after mi_watch_start() returns */

/** Options for mi_watch_start(); start from MI_WATCH_OPTIONS_INIT. */
typedef struct mi_watch_options {
    unsigned int version;         /* MI_WATCH_OPTIONS_VERSION */
    unsigned int flags;           /* MI_WATCH_* */
    unsigned int debounce_ms;     /* changes are scanned once nothing more
                                     changed for this long (and at most
                                     5 times this after the first);
                                     0 = 300 */
    unsigned int poll_interval_s; /* polling: seconds between scans;
                                     0 = 60 */
    unsigned int max_folders;     /* watch at most this many folders, then
                                     poll as when the kernel's watches run
                                     out; 0 = as many as the kernel
                                     allows */
    unsigned int max_queued;      /* changed paths waiting for a scan;
                                     beyond it, one scan of everything;
                                     0 = MI_WATCH_MAX_QUEUED_DEFAULT */
    mi_watch_cb callback;         /* may be NULL */
    void *payload;                /* passed to callback */
} mi_watch_options;

#define MI_WATCH_MAX_QUEUED_DEFAULT 16384u
#define MI_WATCH_OPTIONS_VERSION 1
#define MI_WATCH_OPTIONS_INIT \
    { MI_WATCH_OPTIONS_VERSION, 0, 0, 0, 0, 0, NULL, NULL }

/** What a watcher is doing.  Start from MI_WATCH_INFO_INIT; the library
 *  fills the fields of the version the caller names. */
typedef struct mi_watch_info {
    unsigned int version;     /* MI_WATCH_INFO_VERSION */
    mi_watch_mode mode;
    char reason[256];         /* why it polls (or stopped), else "" */
    uint64_t folders;         /* folders watched */
    uint64_t scans;           /* scans run */
    uint64_t full_scans;      /* of which of everything (start, overflow,
                                 polling) */
    uint64_t overflows;       /* event queue overflows */
    mi_status last_status;    /* of the last scan; MI_OK before any */
} mi_watch_info;

#define MI_WATCH_INFO_VERSION 1
#define MI_WATCH_INFO_INIT \
    { MI_WATCH_INFO_VERSION, MI_WATCH_STOPPED, "", 0, 0, 0, 0, MI_OK }

/**
 * Start watching the storage folder of `idx`.  Returns once every folder
 * is watched, or the watcher has fallen back to polling (mi_watch_state()
 * tells which and why); then, unless MI_WATCH_NO_FIRST_SCAN, its thread
 * runs one incremental scan of everything, to catch what changed before.
 * `opts` may be NULL.  MI_ENOMEM when its threads cannot be started.
 */
MI_EXTERN mi_status mi_watch_start(mi_watch **out, mi_index *idx,
                                   const mi_watch_options *opts);

/**
 * How the watcher works now (MI_WATCH_STOPPED for NULL); `info` (may be
 * NULL) receives the detail.
 */
MI_EXTERN mi_watch_mode mi_watch_state(mi_watch *w, mi_watch_info *info);

/** Stop watching: a scan under way is cancelled (what it committed is
 *  kept), the threads are joined, everything is freed.  NULL is a
 *  no-op. */
MI_EXTERN void mi_watch_stop(mi_watch *w);

/* ---------------------------------------------------------------------- */
/* Thumbnails                                                              */

/*
 * A thumbnail is a 256x256 RGBA PNG: the image with its EXIF orientation
 * applied, fitted inside the square with its aspect ratio kept (never
 * enlarged) and centred on a transparent canvas.  The index keeps them at
 * DIR/.thumbnails/<sha256>.png.  Same input, same bytes.
 */
#define MI_THUMB_SIZE 256
#define MI_THUMB_MAX_PIXELS_DEFAULT 100000000u  /* 100 MP */

/** Options for mi_thumb_make_*(); start from MI_THUMB_OPTIONS_INIT. */
typedef struct mi_thumb_options {
    unsigned int version;   /* MI_THUMB_OPTIONS_VERSION */
    uint64_t max_pixels;    /* 0 = MI_THUMB_MAX_PIXELS_DEFAULT */
} mi_thumb_options;

#define MI_THUMB_OPTIONS_VERSION 1
#define MI_THUMB_OPTIONS_INIT { MI_THUMB_OPTIONS_VERSION, 0 }

/**
 * Make the thumbnail PNG of an image held in memory.  On success *png is a
 * buffer the caller frees with mi_free().  MI_EUNSUPPORTED for a type we do
 * not thumbnail (yet: HEIC, WebP, TIFF, AVIF, SVG, videos), MI_ETOOBIG for
 * an image over the pixel cap, MI_EFORMAT for a broken image.
 * Thread safety: any thread.
 */
MI_EXTERN mi_status mi_thumb_make_buffer(uint8_t **png, size_t *png_len,
                                         const void *buf, size_t len,
                                         const mi_thumb_options *opts);

/** The same from a file (at most 512 MiB is read). */
MI_EXTERN mi_status mi_thumb_make_file(uint8_t **png, size_t *png_len,
                                       const char *path,
                                       const mi_thumb_options *opts);

/** Free a buffer the library allocated for the caller; NULL is a no-op. */
MI_EXTERN void mi_free(void *p);

/**
 * The thumbnail of the indexed content `hash`: writes its path relative to
 * the storage folder (".thumbnails/<sha256>.png") into `out` (at least 96
 * bytes), making the file first if it is missing (a video's is its poster
 * frame).  MI_ENOTFOUND for an unknown hash, MI_EUNSUPPORTED for a type
 * without thumbnails,
 * MI_EFORMAT for an image that could not be decoded (not retried until the
 * file changes), MI_ETOOBIG over the pixel cap.
 */
MI_EXTERN mi_status mi_thumb_get(char *out, size_t out_size, mi_index *idx,
                                 const uint8_t hash[MI_HASH_SIZE]);

/** The long side of a large thumbnail, in pixels (never enlarged). */
#define MI_THUMB_LARGE_SIZE 512

/**
 * The large thumbnail of content `hash`, for grids on HiDPI screens and
 * large tiles: a JPEG of the image (a video's poster frame) as displayed,
 * fitted into MI_THUMB_LARGE_SIZE x MI_THUMB_LARGE_SIZE without padding
 * (what is transparent shown over white), at DIR/.thumbnails/<hex>-512.jpg;
 * its path relative to the storage folder is written to `out` (at least
 * 96 bytes).  Scans and uploads make it from the thumbnail's own decode
 * when that covers it (videos, WebP, TIFF; not a phone's JPEG, decoded
 * at 1/8, nor a HEIC's 320 px embedded thumbnail); else it is made on the
 * first request.  MI_ENOTFOUND, MI_EUNSUPPORTED (a type
 * without thumbnails), MI_EFORMAT (could not be decoded: not retried until
 * the file changes; the reason is in mi_index_errmsg), MI_ETOOBIG.
 */
MI_EXTERN mi_status mi_thumb_get_large(char *out, size_t out_size,
                                       mi_index *idx,
                                       const uint8_t hash[MI_HASH_SIZE]);

/** The long side of a preview, in pixels (never enlarged). */
#define MI_PREVIEW_SIZE 1600

/**
 * A JPEG preview of the image `hash` for the viewer: fitted into
 * MI_PREVIEW_SIZE as displayed, oriented (what is transparent shown over
 * white), made on first request and kept at
 * DIR/.thumbnails/<hex>-preview.jpg, whose path relative to the storage
 * folder is written to `out` (at least 96 bytes).  What a browser shows of
 * a format it cannot show itself (mi_media_type_at's MI_MEDIA_PREVIEW:
 * HEIC/HEIF, TIFF, camera raw), and a lighter stand-in for a large
 * original of any other (a GIF's is its first frame).  MI_EUNSUPPORTED for
 * videos and types without thumbnails (SVG...), MI_ENOTFOUND, MI_EFORMAT,
 * MI_ETOOBIG.
 */
MI_EXTERN mi_status mi_preview_get(char *out, size_t out_size, mi_index *idx,
                                   const uint8_t hash[MI_HASH_SIZE]);

/* ---------------------------------------------------------------------- */
/* Storing uploads                                                         */

/*
 * An upload in progress: bytes are streamed into a temporary file under
 * DIR/.mediaindex/tmp/ while they are hashed; mi_store_commit() then keeps
 * them at DIR/uploads/YYYYMMDD/<sanitised name> (local date) unless the
 * index already holds the same bytes.  Belongs to one thread.
 */
typedef struct mi_store mi_store;

/**
 * Start an upload.  `name` is the client's file name (sanitised with
 * mi_filename_sanitize()); `fallback_name` (may be NULL) gives the
 * extension when `name` has none.  `max_bytes` caps the upload (0 = no
 * cap).  MI_EFORMAT when neither name has the extension of a type we
 * accept (the detail says why).
 */
MI_EXTERN mi_status mi_store_begin(mi_store **out, mi_index *idx,
                                   const char *name, const char *fallback_name,
                                   uint64_t max_bytes);

/** Append bytes.  MI_ETOOBIG past max_bytes, MI_EIO on a disk error; after
 *  a failure the upload can only be freed. */
MI_EXTERN mi_status mi_store_write(mi_store *st, const void *buf, size_t len);

/**
 * Finish the upload: fsync, check that the content really is an allowed
 * image or video (magic bytes, not only the name; else MI_EFORMAT), then
 * either find the same bytes already indexed (nothing is written;
 * mi_store_created() is 0) or place the file under a name no other file has
 * (name_1.ext, name_2.ext ... on collision, never overwriting), fsync its
 * folder, index it and make its thumbnail (mi_store_created() is 1).
 * Concurrent commits of the same bytes keep exactly one file.
 */
MI_EXTERN mi_status mi_store_commit(mi_store *st);

/** After a successful commit: the content's hash (lower-case hex), the
 *  stored (or already present) path relative to the storage folder, its
 *  file name, and whether this upload created it.  Valid until
 *  mi_store_free(). */
MI_EXTERN const char *mi_store_hash_hex(const mi_store *st);
MI_EXTERN const char *mi_store_path(const mi_store *st);
MI_EXTERN const char *mi_store_filename(const mi_store *st);
MI_EXTERN int mi_store_created(const mi_store *st);

/** The detail of the upload's last failure, or "". */
MI_EXTERN const char *mi_store_errmsg(const mi_store *st);

/** Free an upload; one not committed is discarded and its temporary file
 *  removed.  NULL is a no-op. */
MI_EXTERN void mi_store_free(mi_store *st);

/**
 * Make a client's file name safe to use as one file name: no path
 * separators, no ".." or ".", no control characters, invalid UTF-8 bytes
 * replaced, leading dots and trailing spaces and dots removed, at most 255
 * bytes (cut at a character boundary, keeping the extension), and
 * "upload" when nothing is left.  Writes a NUL-terminated name into `out`
 * (out_size >= 256).  Idempotent.
 */
MI_EXTERN mi_status mi_filename_sanitize(char *out, size_t out_size,
                                         const char *in);

/* ---------------------------------------------------------------------- */
/* Resumable uploads                                                       */

/*
 * An upload that may arrive in many pieces, over many connections and
 * across restarts of the program (the tus protocol's model): created with
 * its client's file name and length, given an id, then appended to at its
 * current offset until complete, and finished through exactly the commit
 * of mi_store_commit() (magic bytes, de-duplication, dated folder,
 * no-overwrite placement, fsync, index, thumbnail).
 *
 * State lives in DIR/.mediaindex/uploads/: <id>.part holds the bytes
 * received, <id>.info the rest (written whole to a temporary name, synced
 * and renamed).  The offset of an upload is the size of its .part file:
 * bytes are synced before mi_upload_append() (or mi_upload_sync()) returns,
 * so after a crash or kill -9 the upload resumes from what is on disk.
 *
 * Limits: an upload may not grow past its length, nor past the max_bytes
 * it was created with; all unfinished uploads of a folder together reserve
 * at most mi_index_options.upload_partial_max bytes (an upload of known
 * length reserves its whole length when created; one of deferred length
 * reserves what it has received), and at most MI_UPLOAD_MAX_COUNT of them
 * exist at once; one that receives nothing for upload_expiry_s is removed
 * (by mi_upload_sweep(), or when it is next opened).  The reservations are
 * counted per mi_index handle, from the disk when first needed and again
 * by each mi_upload_sweep() (other handles and processes count only then).
 *
 * Statuses, and what an HTTP (tus) server may answer:
 *   MI_ENOTFOUND  no such upload: unknown, malformed id, expired, finished
 *                 or deleted (404; 410 if the server remembers it);
 *   MI_EACCES     the upload belongs to another owner (403, or 404);
 *   MI_EBUSY      another handle has it open (423 Locked, or 409);
 *   MI_EEXISTS    the offset given is not the upload's offset: nothing was
 *                 written (409 Conflict);
 *   MI_ETOOBIG    past the upload's length or max_bytes (413);
 *   MI_ENOSPACE   the partial-bytes cap or the count cap is reached, or
 *                 the disk is full (507; retry later);
 *   MI_EFORMAT    not an accepted image or video name (at creation), or
 *                 content (at the end: the upload is removed) (400/415);
 *   MI_EINVAL     at mi_upload_finish(): the bytes do not hash to the
 *                 client's sha256 (the upload is removed) (460), or the
 *                 upload is not complete; elsewhere a misuse (400).
 * The detail is in mi_index_errmsg().
 *
 * Thread safety: an mi_upload belongs to one thread.  Different uploads
 * may be used from many threads at once (and from other processes on the
 * same folder: the lock is an flock() on the .part file).
 */

#define MI_UPLOAD_ID_LEN 32  /* lower-case hex characters, without the NUL */
#define MI_UPLOAD_LENGTH_DEFERRED UINT64_MAX /* length not known yet */
#define MI_UPLOAD_OWNER_MAX 255  /* bytes in an owner string */
#define MI_UPLOAD_MAX_COUNT 10000u /* unfinished uploads per folder */
#define MI_UPLOAD_EXPIRY_DEFAULT (24u * 3600u)  /* seconds */
#define MI_UPLOAD_PARTIAL_MAX_DEFAULT (8ull * 1024 * 1024 * 1024)

/** An open upload, holding its lock.  Belongs to one thread. */
typedef struct mi_upload mi_upload;

/** Options for mi_upload_create(); start from MI_UPLOAD_OPTIONS_INIT. */
typedef struct mi_upload_options {
    unsigned int version;      /* MI_UPLOAD_OPTIONS_VERSION */
    uint64_t max_bytes;        /* the largest length this upload may have
                                  (checked at creation, and as bytes arrive
                                  while the length is deferred); 0 = none
                                  but upload_partial_max */
    const char *fallback_name; /* gives the extension when the name has
                                  none, as for mi_store_begin(); may be
                                  NULL */
    const uint8_t *sha256;     /* the client's SHA-256 of the whole file,
                                  MI_HASH_SIZE bytes, checked at the end;
                                  NULL = none */
} mi_upload_options;

#define MI_UPLOAD_OPTIONS_VERSION 1
#define MI_UPLOAD_OPTIONS_INIT { MI_UPLOAD_OPTIONS_VERSION, 0, NULL, NULL }

/** What is known of an upload.  Start from MI_UPLOAD_INFO_INIT; the library
 *  fills the fields of the version the caller names. */
typedef struct mi_upload_info {
    unsigned int version;      /* MI_UPLOAD_INFO_VERSION */
    uint64_t offset;           /* bytes received: where the next one goes */
    uint64_t length;           /* MI_UPLOAD_LENGTH_DEFERRED until known */
    uint64_t max_bytes;        /* as created; 0 = none */
    int64_t created;           /* seconds since the epoch */
    int64_t expires;           /* removed at this time (seconds since the
                                  epoch) unless more bytes arrive first */
    int has_sha256;            /* the client gave its hash */
    uint8_t sha256[MI_HASH_SIZE];
    char name[256];            /* the sanitised file name */
    char owner[MI_UPLOAD_OWNER_MAX + 1];
} mi_upload_info;

#define MI_UPLOAD_INFO_VERSION 1
#define MI_UPLOAD_INFO_INIT \
    { MI_UPLOAD_INFO_VERSION, 0, 0, 0, 0, 0, 0, { 0 }, "", "" }

/**
 * Create an upload of `length` bytes (or MI_UPLOAD_LENGTH_DEFERRED) under
 * the client's file `name` (sanitised with mi_filename_sanitize()),
 * belonging to `owner` (NULL or "" for none; at most MI_UPLOAD_OWNER_MAX
 * bytes, no control characters).  Its new id, 32 random lower-case hex
 * characters, is written to `id`.  MI_EFORMAT when the name (or
 * fallback_name) is not that of an accepted image or video, or the length
 * is 0 (an empty file); MI_ETOOBIG when the length is over max_bytes or
 * upload_partial_max; MI_ENOSPACE when the other unfinished uploads leave
 * no room for it now.  `opts` may be NULL.
 */
MI_EXTERN mi_status mi_upload_create(char id[MI_UPLOAD_ID_LEN + 1],
                                     mi_index *idx, const char *name,
                                     uint64_t length, const char *owner,
                                     const mi_upload_options *opts);

/**
 * Describe an upload without opening it (no lock: for a tus HEAD while a
 * PATCH holds the upload; the offset may then include bytes being
 * written).  `owner` NULL skips the owner check; otherwise it must be the
 * upload's (else MI_EACCES).
 */
MI_EXTERN mi_status mi_upload_stat(mi_upload_info *info, mi_index *idx,
                                   const char *id, const char *owner);

/**
 * Open an upload and take its lock: MI_EBUSY at once if another handle
 * (of this process or another) has it.  `owner` as for mi_upload_stat().
 * An upload past its expiry is removed here (MI_ENOTFOUND).
 */
MI_EXTERN mi_status mi_upload_open(mi_upload **out, mi_index *idx,
                                   const char *id, const char *owner);

/** The open upload's state (as mi_upload_stat()). */
MI_EXTERN mi_status mi_upload_info_get(mi_upload_info *info,
                                       const mi_upload *up);

/** Where the next byte goes: the bytes received so far. */
MI_EXTERN uint64_t mi_upload_offset(const mi_upload *up);

/**
 * Append `len` bytes at `offset`, which must be the upload's offset (else
 * MI_EEXISTS and nothing is written), and sync them: when it returns
 * MI_OK, the offset has advanced and the bytes survive a crash.  On any
 * failure the upload is as it was.
 */
MI_EXTERN mi_status mi_upload_append(mi_upload *up, uint64_t offset,
                                     const void *buf, size_t len);

/**
 * The same for a chunk that arrives in pieces (a request body): each piece
 * is written at `offset` (which must be the upload's offset) without being
 * synced; mi_upload_sync() then makes the chunk durable, or
 * mi_upload_rollback() discards everything written since the last sync
 * (or the open), e.g. when the chunk's checksum does not match.  Until
 * synced, bytes are not part of the offset (mi_upload_stat() from another
 * handle says the synced one): a handle closed without either, or a crash,
 * leaves them to be discarded at the next open.  (On a file system without
 * user extended attributes, where the mark that records this cannot be
 * kept, they count once written.)
 */
MI_EXTERN mi_status mi_upload_write(mi_upload *up, uint64_t offset,
                                    const void *buf, size_t len);
MI_EXTERN mi_status mi_upload_sync(mi_upload *up);
MI_EXTERN mi_status mi_upload_rollback(mi_upload *up);

/**
 * Set the length of an upload created with MI_UPLOAD_LENGTH_DEFERRED:
 * MI_EINVAL if it is already known (unless equal) or below the offset,
 * MI_ETOOBIG over max_bytes, MI_ENOSPACE over the partial-bytes cap.
 */
MI_EXTERN mi_status mi_upload_set_length(mi_upload *up, uint64_t length);

/**
 * Finish a complete upload (offset == length): the bytes are hashed again
 * from the disk (streaming), checked against the client's sha256 when it
 * gave one, and committed exactly as mi_store_commit() commits a stored
 * upload.  On MI_OK the upload's state is gone and the getters below tell
 * the result.  After MI_EFORMAT (content not accepted) or MI_EINVAL for a
 * hash mismatch nothing is kept and the upload is gone too; after a
 * transient failure (MI_EIO, MI_ENOSPACE, MI_EDB...) it stays, to be
 * finished again.  The handle is still closed with mi_upload_close().
 */
MI_EXTERN mi_status mi_upload_finish(mi_upload *up);

/** After a successful finish, as mi_store_hash_hex(), mi_store_path(),
 *  mi_store_filename() and mi_store_created(); "" or 0 before.  Valid
 *  until mi_upload_close(). */
MI_EXTERN const char *mi_upload_hash_hex(const mi_upload *up);
MI_EXTERN const char *mi_upload_path(const mi_upload *up);
MI_EXTERN const char *mi_upload_filename(const mi_upload *up);
MI_EXTERN int mi_upload_created(const mi_upload *up);

/** Release the lock and free the handle; the upload stays, to be opened
 *  again.  NULL is a no-op. */
MI_EXTERN void mi_upload_close(mi_upload *up);

/**
 * Remove an unfinished upload and its bytes (tus termination).  `owner`
 * as for mi_upload_stat(); MI_EBUSY while a handle has it open.
 */
MI_EXTERN mi_status mi_upload_delete(mi_index *idx, const char *id,
                                     const char *owner);

/**
 * Remove the uploads that received nothing for upload_expiry_s before
 * `now` (seconds since the epoch; 0 = the current time), skipping those
 * open, and what an interrupted creation left; finish (as
 * mi_upload_finish()) those complete but never finished, e.g. when the
 * program stopped between the last byte and the finish.  *removed (may be
 * NULL) counts the uploads gone either way.  A server calls it at start
 * and now and then (hourly).
 */
MI_EXTERN mi_status mi_upload_sweep(mi_index *idx, int64_t now,
                                    uint64_t *removed);

/* ---------------------------------------------------------------------- */
/* Places: offline reverse geocoding                                       */

/**
 * The nearest populated place to a position (decimal degrees), from the
 * gazetteer compiled into the library: GeoNames' places of 15,000 people
 * or more (about 24,000; GeoNames, geonames.org, CC BY 4.0), taken from
 * Debian's libgeonames when the library is built.  0 when no place lies
 * within 150 km (the open sea, the poles) or the position is not valid.
 * A lookup allocates nothing and takes microseconds; thread-safe.
 *
 * A place is a number valid for one version of the data
 * (mi_places_version()); the catalog recomputes its places when the
 * version changes.  The names are in English, borrowed for the life of
 * the process; NULL for 0 or an unknown number.
 */
MI_EXTERN uint32_t mi_place_at(double lat, double lon);
MI_EXTERN const char *mi_place_city(uint32_t place);
/** The first-level region (state, province); NULL when GeoNames has none. */
MI_EXTERN const char *mi_place_region(uint32_t place);
MI_EXTERN const char *mi_place_country(uint32_t place);
/** ISO 3166-1 alpha-2, upper case ("FI"). */
MI_EXTERN const char *mi_place_country_code(uint32_t place);
/** The place's own position: 1 and lat/lon, or 0 for an unknown number. */
MI_EXTERN int mi_place_coords(uint32_t place, double *lat, double *lon);
/** Names the data and its version ("GeoNames via libgeonames 0.3.0, ..."). */
MI_EXTERN const char *mi_places_version(void);

/**
 * The places of the library: each place with contents, in place number
 * order (by country code, region, city), with how many contents it has
 * and the newest of them (a cover).  One snapshot; belongs to one thread.
 * mi_places_next() returns MI_ROW, MI_DONE or a failure.
 */
typedef struct mi_places mi_places;
MI_EXTERN mi_status mi_places_new(mi_places **out, mi_index *idx);
MI_EXTERN mi_status mi_places_next(mi_places *p);
MI_EXTERN uint32_t mi_places_place(const mi_places *p);
MI_EXTERN uint64_t mi_places_count(const mi_places *p);
/** The cover's hash, lower-case hex; borrowed until the next call. */
MI_EXTERN const char *mi_places_cover_hex(const mi_places *p);
MI_EXTERN void mi_places_free(mi_places *p);

/* ---------------------------------------------------------------------- */
/* Cursors: iterate over every entry                                       */

/**
 * A cursor over all entries, ordered by hash.  It reads a consistent
 * snapshot taken by its first mi_cursor_next(): scans and uploads that commit
 * meanwhile are not seen, and do not wait for it.  Belongs to one thread.
 */
typedef struct mi_cursor mi_cursor;

MI_EXTERN mi_status mi_cursor_new(mi_cursor **out, mi_index *idx);

/** Options for mi_cursor_new_with(); start from MI_CURSOR_OPTIONS_INIT. */
typedef struct mi_cursor_options {
    unsigned int version;   /* MI_CURSOR_OPTIONS_VERSION */
    unsigned int flags;     /* MI_CURSOR_* */
    int64_t date_from;      /* with MI_CURSOR_DATE_RANGE: entries whose */
    int64_t date_to;        /* creation date d has from <= d < to */
    /* Version 2; each NULL when unused, all of them must hold: */
    const char *query;      /* the search language (below) */
    const char *place;      /* a city, region or country (name or code) */
    const char *city;       /* a city by name ... */
    const char *country;    /* ... in this country (name or code) */
} mi_cursor_options;

#define MI_CURSOR_NEWEST_FIRST 0x1u  /* by creation date, newest first
                                        (then by hash); else by hash */
#define MI_CURSOR_DATE_RANGE 0x2u    /* only dates in [date_from, date_to) */

#define MI_CURSOR_OPTIONS_VERSION 2
#define MI_CURSOR_OPTIONS_INIT \
    { MI_CURSOR_OPTIONS_VERSION, 0, 0, 0, NULL, NULL, NULL, NULL }

/*
 * The search language of `query`: terms separated by spaces, all of which
 * must hold.  Free words (or "a quoted phrase") start words of a path, of
 * the place's names or of the camera's make and model, without regard to
 * case or accents; date:YYYY[-MM[-DD]] (a bare YYYY, YYYY-MM or
 * YYYY-MM-DD is a date too); between:A..B (dates; either end may be left
 * out); place:X or location:X (a city, region or country, by name or ISO
 * code; "City, Country" narrows a city); camera:X; type:photo|video.
 * Dates are local calendar days.  A query that does not parse gets
 * MI_EINVAL from mi_cursor_new_with(), with the reason in
 * mi_index_errmsg(); names of no known place match nothing.  Names are
 * compared as for place: without case or accents, and `city`/`country`
 * only name cities and countries.
 */

/**
 * A cursor with a chosen order and date range (see mi_cursor_options);
 * `opts` NULL is mi_cursor_new().  An entry's date is that of its primary
 * path (mi_entry_creation_date).  A sorted or filtered cursor first sorts
 * in the catalog, so its first mi_cursor_next() costs about 2 us per entry.
 */
MI_EXTERN mi_status mi_cursor_new_with(mi_cursor **out, mi_index *idx,
                                       const mi_cursor_options *opts);

/** Advance: MI_ROW when an entry is available, MI_DONE at the end, or a
 *  negative failure. */
MI_EXTERN mi_status mi_cursor_next(mi_cursor *c);

/** The current entry, borrowed until the next mi_cursor_next/mi_cursor_free;
 *  NULL unless the last mi_cursor_next returned MI_ROW. */
MI_EXTERN const mi_entry *mi_cursor_entry(const mi_cursor *c);

/** Free a cursor; NULL is a no-op. */
MI_EXTERN void mi_cursor_free(mi_cursor *c);

/* ---------------------------------------------------------------------- */
/* Trash: deleting that can be undone                                      */

/**
 * Move every file of a content into DIR/.mediaindex/trash/ (a rename on
 * the same file system, never a copy), remembering where each was; the
 * content leaves the catalog (lookups, cursors, the change feed's
 * "gone") and its thumbnails stay for a trash view.  A crash at any point
 * leaves each file in exactly one place, and the next mi_index_open()
 * settles the catalog.  MI_ENOTFOUND when the content is not indexed.
 * `moved` (may be NULL): files moved.
 */
MI_EXTERN mi_status mi_trash_put(mi_index *idx,
                                 const uint8_t hash[MI_HASH_SIZE],
                                 uint64_t *moved);

/**
 * Put a trashed content's files back where they were (a file now at that
 * path is never replaced: " (1)", " (2)"... is added before the
 * extension) and index them again.  The first restored path, relative to
 * the storage folder, goes to `path` (may be NULL).  MI_ENOTFOUND when the
 * content is not in the trash.  Storing bytes that are in the trash
 * (mi_store_commit, mi_upload_finish) restores them this way.
 */
MI_EXTERN mi_status mi_trash_restore(char *path, size_t path_size,
                                     mi_index *idx,
                                     const uint8_t hash[MI_HASH_SIZE]);

/**
 * Delete for good what was trashed before `before` (seconds since the
 * epoch; INT64_MAX: all of it), of one content (`hash`) or of all (NULL),
 * with its thumbnails.  `purged` (may be NULL): contents deleted.
 */
MI_EXTERN mi_status mi_trash_purge(mi_index *idx, const uint8_t *hash,
                                   int64_t before, uint64_t *purged);

/** A cursor over the trash, most recently trashed first; its entries'
 *  paths are where the files were, mi_entry_trashed_at() when. */
MI_EXTERN mi_status mi_trash_cursor(mi_cursor **out, mi_index *idx);

/** When the entry was trashed (seconds since the epoch); 0 for an entry
 *  that is not in the trash. */
MI_EXTERN int64_t mi_entry_trashed_at(const mi_entry *e);

/* ---------------------------------------------------------------------- */
/* Changes: what changed since a client last asked                         */

/**
 * Every change to the catalog (a content appears or goes, a path of it is
 * added or removed, its metadata or thumbnail changes) is numbered in one
 * sequence that only grows and survives restarts; the catalog keeps the
 * latest number of each content.  A client keeps a token (a number this
 * API gave it) and asks for what changed after it: each content changed
 * since, once, in the order of its last change, with its entry as it is
 * now, or none when it is gone.  Applying them in order brings a copy of
 * the library up to date.
 *
 * Contents gone for longer than MI_CHANGES_RETENTION_S are forgotten; a
 * token from before that, 0, or one of another catalog (rebuilt, moved)
 * gets MI_ERESET: read everything again (a cursor) after taking
 * mi_index_change_token().
 */
#define MI_CHANGES_RETENTION_S (30u * 24u * 3600u)

typedef struct mi_changes mi_changes;

/** The current token: where a client that has just read everything
 *  continues from. */
MI_EXTERN mi_status mi_index_change_token(mi_index *idx, uint64_t *token);

/**
 * What changed after `since`, at most `limit` contents (0: no limit), read
 * in one snapshot.  MI_ERESET as above.  Free with mi_changes_free().
 */
MI_EXTERN mi_status mi_changes_new(mi_changes **out, mi_index *idx,
                                   uint64_t since, size_t limit);

/** MI_ROW for the next changed content, MI_DONE at the end of the page. */
MI_EXTERN mi_status mi_changes_next(mi_changes *ch);

/** The content's hash (lower-case hex) and its change number. */
MI_EXTERN const char *mi_changes_hash_hex(const mi_changes *ch);
MI_EXTERN uint64_t mi_changes_seq(const mi_changes *ch);

/** Its entry now (borrowed until the next call), or NULL: it is gone. */
MI_EXTERN const mi_entry *mi_changes_entry(const mi_changes *ch);

/** After MI_DONE: the token to ask with next, and whether the page was
 *  full (1: more may follow at once). */
MI_EXTERN uint64_t mi_changes_token(const mi_changes *ch);
MI_EXTERN int mi_changes_more(const mi_changes *ch);

/** Free; NULL is a no-op. */
MI_EXTERN void mi_changes_free(mi_changes *ch);

/* ---------------------------------------------------------------------- */
/* Problems: what could not be indexed, and why                            */

/**
 * A scan records each file it could not read, each folder it could not
 * list and each image it indexed but could not make a thumbnail of (an
 * upload records its thumbnail too), so that a user can learn why a photo
 * is missing or grey.  A record goes when the file is read (or
 * thumbnailed), or when a complete scan no longer meets the problem (the
 * file is gone, the folder readable again).
 */
typedef enum mi_problem_stage {
    MI_PROBLEM_READ = 1,       /* the file could not be read: not indexed */
    MI_PROBLEM_FOLDER = 2,     /* a folder could not be listed: the files
                                  under it keep what the catalog knew */
    MI_PROBLEM_THUMBNAIL = 3   /* indexed, but no thumbnail could be made */
} mi_problem_stage;

/** A cursor over the recorded problems, most recently seen first (then by
 *  path).  Like mi_cursor, it reads one snapshot and belongs to one
 *  thread. */
typedef struct mi_problems mi_problems;

MI_EXTERN mi_status mi_problems_new(mi_problems **out, mi_index *idx);

/** Advance: MI_ROW, MI_DONE at the end, or a negative failure. */
MI_EXTERN mi_status mi_problems_next(mi_problems *p);

/** The current problem's path relative to the storage folder (a folder's
 *  ends in "/"), and its length in bytes when `len` is not NULL; borrowed
 *  until the next mi_problems_next/mi_problems_free.  NULL without a
 *  current row. */
MI_EXTERN const char *mi_problems_path(const mi_problems *p, size_t *len);
MI_EXTERN mi_problem_stage mi_problems_stage(const mi_problems *p);
/** The failure, e.g. MI_EACCES, MI_EFORMAT. */
MI_EXTERN mi_status mi_problems_status(const mi_problems *p);
/** The reason in words ("Permission denied", "the image could not be
 *  decoded"); borrowed like the path. */
MI_EXTERN const char *mi_problems_reason(const mi_problems *p);
/** When the problem was first and last met, seconds since the epoch. */
MI_EXTERN int64_t mi_problems_first_seen(const mi_problems *p);
MI_EXTERN int64_t mi_problems_last_seen(const mi_problems *p);

/** Free a problems cursor; NULL is a no-op. */
MI_EXTERN void mi_problems_free(mi_problems *p);

/** How many problems are recorded. */
MI_EXTERN mi_status mi_problems_count(uint64_t *out, mi_index *idx);

/* ---------------------------------------------------------------------- */
/* Near-duplicates: copies that SHA-256 cannot tell                        */

/*
 * Each image gets a 64-bit perceptual hash when its thumbnail is made,
 * from the same pixels (a DCT hash of the image upright, as a 32 x 32
 * grey grid): a re-encoded, resized or slightly cropped copy, or the same
 * photo as WebP or HEIC, has a hash a few bits away, while distinct photos
 * differ in about half of the bits.  Videos and flat images (one colour)
 * have none.  A catalog from before the hashes gets them from its
 * thumbnails at the end of the next complete mi_scan().
 *
 * Thread safety: a result (mi_similar) belongs to the thread that got it;
 * the calls that make one may run on many threads at once.
 */
typedef struct mi_similar mi_similar;

/* Distances (differing bits) that count as near-duplicates. */
#define MI_SIMILAR_DISTANCE_DEFAULT 10u
#define MI_SIMILAR_DISTANCE_MAX 16u

/** Options for mi_similar_*(); start from MI_SIMILAR_OPTIONS_INIT. */
typedef struct mi_similar_options {
    unsigned int version;       /* MI_SIMILAR_OPTIONS_VERSION */
    unsigned int max_distance;  /* items at most this many bits apart;
                                   0 = MI_SIMILAR_DISTANCE_DEFAULT; over
                                   MI_SIMILAR_DISTANCE_MAX: MI_EINVAL */
} mi_similar_options;

#define MI_SIMILAR_OPTIONS_VERSION 1
#define MI_SIMILAR_OPTIONS_INIT { MI_SIMILAR_OPTIONS_VERSION, 0 }

/**
 * The perceptual hash of an indexed content into *out: MI_OK, or
 * MI_ENOTFOUND when it has none (not indexed, a video, a flat image, or
 * not hashed yet).
 */
MI_EXTERN mi_status mi_similar_phash(uint64_t *out, mi_index *idx,
                                     const uint8_t hash[MI_HASH_SIZE]);

/**
 * The contents that look like the content `hash`: one group whose item 0
 * is that content (distance 0), then the others within max_distance, the
 * nearest first (ties: the largest first); none when it has no perceptual
 * hash.  MI_ENOTFOUND when it is not indexed.  Looks at every hash: about
 * the cost of reading them (tens of ms at 100,000 items).
 */
MI_EXTERN mi_status mi_similar_find(mi_similar **out, mi_index *idx,
                                    const uint8_t hash[MI_HASH_SIZE],
                                    const mi_similar_options *opts);

/**
 * Every group of near-duplicates in the library: the contents linked by
 * distances within max_distance (a chain of links makes one group), each
 * group with its largest item first (by pixels, then bytes: the original
 * the others were made from), the groups with the newest original first.
 * Trashed contents are left out.  Found by multi-index hashing (the hash
 * cut in m bands, one of which at least is within max_distance/m bits of
 * a near-duplicate's; m chosen for the library's size), not by comparing
 * every pair: about 1.3 s for 100,000 photos at the default distance.
 */
MI_EXTERN mi_status mi_similar_groups(mi_similar **out, mi_index *idx,
                                      const mi_similar_options *opts);

/** Groups in a result; items in a group (0 out of range). */
MI_EXTERN size_t mi_similar_count(const mi_similar *s);
MI_EXTERN size_t mi_similar_size(const mi_similar *s, size_t group);
/** An item's content hash (32 bytes, borrowed until mi_similar_free), or
 *  NULL out of range. */
MI_EXTERN const uint8_t *mi_similar_hash(const mi_similar *s, size_t group,
                                         size_t i);
/** Its distance in bits to item 0 of its group (mi_similar_find: to the
 *  content asked about), or -1 out of range. */
MI_EXTERN int mi_similar_distance(const mi_similar *s, size_t group,
                                  size_t i);
/** The item of a group that is the largest (pixels, then bytes): 0 for
 *  mi_similar_groups. */
MI_EXTERN size_t mi_similar_original(const mi_similar *s, size_t group);
/** The max_distance the result was made with. */
MI_EXTERN unsigned int mi_similar_max_distance(const mi_similar *s);
/** Free a result; NULL is a no-op. */
MI_EXTERN void mi_similar_free(mi_similar *s);

#ifdef __cplusplus
}
#endif

#endif /* MEDIAINDEX_H */
