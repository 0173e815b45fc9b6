/*
 * catalog.c - persistence in SQLite: schema, migrations, prepared statements.
 *
 * One table holds every path.  Its key is (hash, path), so the rows of one
 * content are adjacent: a lookup is a range read and a cursor walks the
 * table in key order, grouping the paths of each hash without any sort.
 * The scan needs the rows in path order with the fields it compares; a
 * covering index gives exactly that without touching the table.
 *
 * Paths are stored as BLOBs: file names are bytes, not always UTF-8, and
 * BLOBs compare with memcmp, the order the scan walks the disk in.
 */
#include "config.h"
#include "mi-private.h"

#include "places-version.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char schema_v1[] =
    "CREATE TABLE IF NOT EXISTS files ("
    "  hash BLOB NOT NULL,"
    "  path BLOB NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  mtime_ns INTEGER NOT NULL,"
    "  ctime_ns INTEGER NOT NULL,"
    "  inode INTEGER NOT NULL,"
    "  mime TEXT NOT NULL,"
    "  kind INTEGER NOT NULL,"
    "  date INTEGER,"               /* NULL: no EXIF date, use ctime */
    "  date_source INTEGER NOT NULL DEFAULT 0,"
    "  width INTEGER NOT NULL DEFAULT 0,"
    "  height INTEGER NOT NULL DEFAULT 0,"
    "  orientation INTEGER NOT NULL DEFAULT 0,"
    "  lat REAL,"                   /* NULL together with lon: no GPS */
    "  lon REAL,"
    "  make TEXT,"
    "  model TEXT,"
    "  PRIMARY KEY (hash, path)"
    ") WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS files_by_path"
    "  ON files (path, size, mtime_ns, inode);"
    "CREATE TABLE IF NOT EXISTS meta ("
    "  key TEXT PRIMARY KEY,"
    "  value INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    /* Start the generation from the clock, so that a catalog rebuilt after
     * a loss does not repeat the generations (ETags) of the old one. */
    "INSERT OR IGNORE INTO meta (key, value)"
    "  VALUES ('generation', CAST(strftime('%s', 'now') AS INTEGER) * 1000);";

/* Version 2: the thumbnail state of each row (mi_thumb_state), also in
 * the scan's covering index so that a rescan sees it without touching the
 * table (the index holds the key, so the hash too). */
static const char schema_v2[] =
    "ALTER TABLE files ADD COLUMN thumb INTEGER NOT NULL DEFAULT 0;"
    "DROP INDEX IF EXISTS files_by_path;"
    "CREATE INDEX files_by_path"
    "  ON files (path, size, mtime_ns, inode, thumb);";

/* An index in the order of the gallery's timeline: each row's date as
 * mi_entry_creation_date() gives it (EXIF, else ctime in seconds). */
static const char schema_v3[] =
    "CREATE INDEX IF NOT EXISTS files_by_date"
    "  ON files (coalesce(date, ctime_ns / 1000000000) DESC, hash, path);";

/* Version 4: what could not be read, listed or thumbnailed, by path (a
 * folder's path ends in "/"), for the user to see (mi_problems_*).  Times
 * in nanoseconds since the epoch. */
static const char schema_v4[] =
    "CREATE TABLE IF NOT EXISTS problems ("
    "  path BLOB PRIMARY KEY,"
    "  stage INTEGER NOT NULL,"      /* mi_problem_stage */
    "  status INTEGER NOT NULL,"     /* mi_status */
    "  reason TEXT NOT NULL,"
    "  first_seen INTEGER NOT NULL,"
    "  last_seen INTEGER NOT NULL"
    ") WITHOUT ROWID;";

/* Version 5: what the decoder process reads from videos and the formats
 * it decodes (duration, codec, Apple's Live Photo id).  Rows that got no
 * thumbnail or are videos are marked changed (mtime_ns -1), so that the
 * next scan reads them again with the new decoders. */
static const char schema_v5[] =
    "ALTER TABLE files ADD COLUMN duration_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE files ADD COLUMN codec TEXT;"
    "ALTER TABLE files ADD COLUMN live_id TEXT;"
    "UPDATE files SET mtime_ns = -1 WHERE kind = 2 OR thumb IN (2, 3);";

/* Version 6: contents whose preview (mi_preview_get) the decoder could not
 * make, so that asking again does not run it again; forgotten when a row
 * of the content is written again (the file changed back, or was read
 * again), and swept once no row has the hash. */
static const char schema_v6[] =
    "CREATE TABLE IF NOT EXISTS preview_failures ("
    "  hash BLOB PRIMARY KEY,"
    "  status INTEGER NOT NULL,"     /* mi_status */
    "  reason TEXT NOT NULL"
    ") WITHOUT ROWID;";

/* Version 7: the change feed (mi_changes_*).  Every row carries the number
 * of its last change (seq), given by the writer's mi_next_seq() (a C
 * function on the writer's connection, reloaded from the catalog at each
 * write transaction, so numbers only grow, across restarts and processes),
 * and an index gives the rows changed after a token in order at the cost
 * of an append.  A deleted row leaves a tombstone (its hash and a new
 * number) in changes_gone, through a trigger: deletions are rare, and no
 * code path can forget one; indexed by hash too, so that the feed can
 * tell in one probe whether a content changed again later.  The numbers start from the generation (the
 * clock when the catalog was made) times 1000: a catalog made again after
 * a loss starts above the old one's tokens, and its floor refuses them.
 * `at`: seconds since the epoch, for forgetting tombstones long past. */
#define NOW_S "CAST(strftime('%s', 'now') AS INTEGER)"
static const char schema_v7[] =
    "ALTER TABLE files ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX IF NOT EXISTS files_by_seq ON files (seq);"
    "CREATE TABLE IF NOT EXISTS changes_gone ("
    "  seq INTEGER PRIMARY KEY,"
    "  hash BLOB NOT NULL,"
    "  at INTEGER NOT NULL"
    ");"
    "CREATE INDEX IF NOT EXISTS changes_gone_by_hash"
    "  ON changes_gone (hash, seq);"
    "INSERT OR IGNORE INTO meta (key, value)"
    "  SELECT 'changes_floor', value * 1000 FROM meta"
    "  WHERE key = 'generation';"
    "CREATE TRIGGER IF NOT EXISTS files_gone AFTER DELETE ON files"
    " BEGIN INSERT INTO changes_gone (seq, hash, at)"
    "  VALUES (mi_next_seq(), OLD.hash, " NOW_S "); END;"
    /* The trash (trash.c): each trashed file's row as it was, the name of
     * its file in .mediaindex/trash/, when, and where its move stands
     * (0 going in, 1 in the trash, 2 coming out), so that a crash between
     * the catalog and the rename is settled at the next open. */
    "CREATE TABLE IF NOT EXISTS trash ("
    "  hash BLOB NOT NULL,"
    "  path BLOB NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  mtime_ns INTEGER NOT NULL,"
    "  ctime_ns INTEGER NOT NULL,"
    "  inode INTEGER NOT NULL,"
    "  mime TEXT NOT NULL,"
    "  kind INTEGER NOT NULL,"
    "  date INTEGER,"
    "  date_source INTEGER NOT NULL DEFAULT 0,"
    "  width INTEGER NOT NULL DEFAULT 0,"
    "  height INTEGER NOT NULL DEFAULT 0,"
    "  orientation INTEGER NOT NULL DEFAULT 0,"
    "  lat REAL,"
    "  lon REAL,"
    "  make TEXT,"
    "  model TEXT,"
    "  thumb INTEGER NOT NULL DEFAULT 0,"
    "  duration_ms INTEGER NOT NULL DEFAULT 0,"
    "  codec TEXT,"
    "  live_id TEXT,"
    "  name TEXT NOT NULL,"
    "  at INTEGER NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  PRIMARY KEY (hash, path)"
    ") WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS trash_by_time ON trash (at);";

/* Version 8: places and words (issue 14).  `place` is the nearest
 * populated place to (lat, lon) (places.c), set by the writer, recomputed
 * when the gazetteer changes (meta 'places_data'); indexed, so that a
 * place, a region or a country (runs of place numbers) is a range scan.
 * `place_words` holds each place's names for the word index, written with
 * the places.  `words` is the full-text index that free words and camera:
 * search: one row per file row, numbered by the row's seq (its last
 * change, unique), written in bulk by the writer as it commits (rows
 * whose seq is above meta 'words_seq'; words_catch_up()), which costs a
 * quarter of what a trigger per row does.  A row that changes or goes
 * leaves its old number in `words_gone` through a trigger, and the same
 * catch-up deletes those; a search joins words to files by seq, so a
 * word of a row changed since is never found.  videos_by_date serves
 * type:video without walking every photo. */
static const char schema_v8[] =
    "ALTER TABLE files ADD COLUMN place INTEGER;"
    "ALTER TABLE trash ADD COLUMN place INTEGER;"
    "CREATE INDEX IF NOT EXISTS files_by_place ON files (place)"
    "  WHERE place IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS videos_by_date"
    "  ON files (coalesce(date, ctime_ns / 1000000000) DESC, hash, path)"
    "  WHERE kind = 2;"
    "CREATE TABLE IF NOT EXISTS place_words ("
    "  id INTEGER PRIMARY KEY,"
    "  words TEXT NOT NULL"
    ");"
    "CREATE VIRTUAL TABLE IF NOT EXISTS words USING fts5("
    "  hash UNINDEXED, name, place, camera,"
    "  tokenize = 'unicode61 remove_diacritics 2');"
    "CREATE TABLE IF NOT EXISTS words_gone (seq INTEGER PRIMARY KEY);"
    "CREATE TRIGGER IF NOT EXISTS words_row_gone AFTER DELETE ON files"
    " BEGIN INSERT OR IGNORE INTO words_gone (seq) VALUES (OLD.seq); END;"
    "CREATE TRIGGER IF NOT EXISTS words_row_changed AFTER UPDATE OF seq"
    " ON files WHEN OLD.seq IS NOT NEW.seq"
    " BEGIN INSERT OR IGNORE INTO words_gone (seq) VALUES (OLD.seq); END;"
    "INSERT OR IGNORE INTO meta (key, value) VALUES ('words_seq', 0);";

/* Version 8 too (one step, both new in one release): the perceptual hash of each image content (phash.c), for
 * near-duplicates (similar.c): NULL when the image has none (no visible
 * pixel, or flat).  Kept apart from `files`, one row per content; rows of
 * contents neither indexed nor in the trash are swept by mi_phash_fill.
 * A catalog from before gets its hashes from the thumbnails already made
 * (mi_phash_fill, at the end of the next complete scan). */
static const char schema_v8_phash[] =
    "CREATE TABLE IF NOT EXISTS phashes ("
    "  hash BLOB PRIMARY KEY,"
    "  phash INTEGER"
    ") WITHOUT ROWID;";

/* The newest change number (the floor when nothing changed yet). */
#define CHANGES_HEAD_SQL                                                   \
    "SELECT max(coalesce((SELECT max(seq) FROM files), 0),"                 \
    " coalesce((SELECT max(seq) FROM changes_gone), 0),"                   \
    " coalesce((SELECT value FROM meta WHERE key = 'changes_floor'), 0)),"  \
    " coalesce((SELECT value FROM meta WHERE key = 'changes_floor'), 0)"

/* Columns of an entry row, shared by the lookup and the cursor. */
#define ROW_COLUMNS                                                        \
    "hash, path, size, mtime_ns, ctime_ns, mime, kind, date, date_source, " \
    "width, height, orientation, lat, lon, make, model, thumb, "           \
    "duration_ms, codec, live_id, place"

static void next_seq_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv);
static void reload_seq(mi_conn *c);
static mi_status db_error(sqlite3 *db, int rc, const char *what,
                          char *errbuf, size_t errlen);
static int words_catch_up(sqlite3 *db);

/* mi_place_of(lat, lon): mi_place_at(), NULL for none. */
static void place_of_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    uint32_t place = 0;

    if (sqlite3_value_type(argv[0]) != SQLITE_NULL &&
        sqlite3_value_type(argv[1]) != SQLITE_NULL)
        place = mi_place_at(sqlite3_value_double(argv[0]),
                            sqlite3_value_double(argv[1]));
    if (place)
        sqlite3_result_int64(ctx, place);
    else
        sqlite3_result_null(ctx);
}

/* Each place's names, for the word index: "city region country code". */
static int place_words_fill(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_exec(db, "DELETE FROM place_words", NULL, NULL, NULL);

    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "INSERT INTO place_words (id, words)"
                                    " VALUES (?1, ?2)", -1, &st, NULL);
    for (uint32_t p = 1; rc == SQLITE_OK && mi_place_city(p); p++) {
        const char *region = mi_place_region(p);
        char buf[4 * MI_PLACE_NAME_MAX];

        mi_bufprintf(buf, sizeof(buf), "%s %s %s %s", mi_place_city(p),
                     region ? region : "", mi_place_country(p),
                     mi_place_country_code(p));
        sqlite3_bind_int64(st, 1, p);
        sqlite3_bind_text(st, 2, buf, -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

/* When the gazetteer compiled in is not the one the places were computed
 * with (or they never were: schema v8 on an older catalog), compute them
 * again: every row with a place loses it (its words too), the names are
 * written anew, and every row with a position gets its place; each row
 * changed gets a change number, and the generation moves (the /list
 * bodies change). */
static mi_status places_update(mi_conn *c, char *errbuf, size_t errlen)
{
    int64_t data = 0;
    bool found;
    int rc;

    if (mi_catalog_meta_get(c, "places_data", &data, &found) != MI_OK)
        return db_error(c->db, sqlite3_errcode(c->db),
                        "reading the places' version", errbuf, errlen);
    if (found && (uint64_t)data == MI_PLACES_DATA)
        return MI_OK;
    rc = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
        reload_seq(c);
        rc = sqlite3_exec(c->db,
                          "UPDATE files SET place = NULL, seq = mi_next_seq()"
                          " WHERE place IS NOT NULL",
                          NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK)
        rc = place_words_fill(c->db);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(
            c->db,
            "UPDATE files SET place = mi_place_of(lat, lon),"
            " seq = mi_next_seq()"
            " WHERE mi_place_of(lat, lon) IS NOT NULL;"
            "UPDATE trash SET place = mi_place_of(lat, lon);"
            "UPDATE meta SET value = value + 1 WHERE key = 'generation';"
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('places_data', "
            MI_STRINGIFY(MI_PLACES_DATA) ");",
            NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = words_catch_up(c->db);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        mi_status s = db_error(c->db, rc, "computing places", errbuf, errlen);
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        return s;
    }
    return MI_OK;
}

static mi_status db_error(sqlite3 *db, int rc, const char *what,
                          char *errbuf, size_t errlen)
{
    mi_bufprintf(errbuf, errlen, "catalog: %s: %s", what,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return MI_ENOMEM;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return MI_EFORMAT;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return MI_EBUSY;
    case SQLITE_FULL:
        return MI_ENOSPACE;
    case SQLITE_IOERR:
        /* A WAL or shared-memory file that cannot grow on a full disk. */
        return db ? mi_status_from_io_errno(sqlite3_system_errno(db)) : MI_EIO;
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
        return MI_EACCES;
    default:
        return MI_EDB;
    }
}

static int prepare(sqlite3 *db, sqlite3_stmt **st, const char *sql)
{
    return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
}

/* Bring the schema to the current version.  Version 0 is an empty file. */
static mi_status migrate(sqlite3 *db, bool writer, char *errbuf, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int version = -1;
    int rc;

    rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    rc = sqlite3_finalize(st);
    if (rc != SQLITE_OK || version < 0)
        return db_error(db, rc, "reading the schema version", errbuf, errlen);

    if (version > MI_CATALOG_SCHEMA_VERSION) {
        mi_bufprintf(errbuf, errlen,
                     "catalog: schema version %d is newer than this "
                     "library's (%d)", version, MI_CATALOG_SCHEMA_VERSION);
        return MI_EFORMAT;
    }
    if (version == MI_CATALOG_SCHEMA_VERSION || !writer)
        return MI_OK;

    /* Migrations run in one transaction, each step from version n to n+1. */
    rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK && version < 1)
        rc = sqlite3_exec(db, schema_v1, NULL, NULL, NULL);
    if (rc == SQLITE_OK && version < 2)
        rc = sqlite3_exec(db, schema_v2, NULL, NULL, NULL);
    if (rc == SQLITE_OK && version < 3)
        rc = sqlite3_exec(db, schema_v3, NULL, NULL, NULL);
    if (rc == SQLITE_OK && version < 4)
        rc = sqlite3_exec(db, schema_v4, NULL, NULL, NULL);
    if (rc == SQLITE_OK && version < 5)
        rc = sqlite3_exec(db, schema_v5, NULL, NULL, NULL);
    if (rc == SQLITE_OK && version < 6)
        rc = sqlite3_exec(db, schema_v6, NULL, NULL, NULL);
    if (rc == SQLITE_OK && version < 7)
        rc = sqlite3_exec(db, schema_v7, NULL, NULL, NULL);
    if (rc == SQLITE_OK && version < 8)
        rc = sqlite3_exec(db, schema_v8, NULL, NULL, NULL);
    if (rc == SQLITE_OK && version < 8)
        rc = sqlite3_exec(db, schema_v8_phash, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "PRAGMA user_version = 8", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        mi_status s = db_error(db, rc, "creating the schema", errbuf, errlen);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return s;
    }
    return MI_OK;
}

/*
 * Read something from every table so that a file that is not a database, or
 * whose schema is damaged, fails here rather than in the middle of a scan.
 * A full integrity check would read the whole file and break the promise of
 * a fast restart; pages damaged later are reported by the statement that
 * meets them.
 */
static mi_status probe(mi_conn *c, char *errbuf, size_t errlen)
{
    int rc = sqlite3_exec(c->db,
                          "SELECT count(*) FROM sqlite_schema;"
                          "SELECT hash FROM files LIMIT 1;"
                          "SELECT path FROM problems LIMIT 1;"
                          "SELECT value FROM meta WHERE key='generation'",
                          NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        mi_status s = db_error(c->db, rc, "reading", errbuf, errlen);
        return s == MI_EDB ? MI_EFORMAT : s;
    }
    return MI_OK;
}

/* "file:" + path with the URI's reserved characters escaped, for an
 * immutable open. */
static char *immutable_uri(const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(path);
    char *u = malloc(3 * n + sizeof("file:?immutable=1"));
    char *p = u;

    if (!u)
        return NULL;
    memcpy(p, "file:", 5);
    p += 5;
    for (const unsigned char *q = (const unsigned char *)path; *q; q++) {
        if (*q == '%' || *q == '?' || *q == '#' || *q < 0x21 || *q > 0x7e) {
            *p++ = '%';
            *p++ = hex[*q >> 4];
            *p++ = hex[*q & 15];
        } else {
            *p++ = (char)*q;
        }
    }
    strcpy(p, "?immutable=1");
    return u;
}

mi_status mi_catalog_open(mi_conn **out, const char *path, mi_catalog_mode mode,
                          char *errbuf, size_t errlen)
{
    bool writer = mode == MI_CATALOG_WRITER;
    mi_conn *c;
    mi_status s;
    int rc;

    *out = NULL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return MI_ENOMEM;

    /* The handle serialises the use of each connection itself. */
    if (mode == MI_CATALOG_FROZEN && !path) {
        /* No catalog at all, and none can be made (a new folder on a
         * full disk): an empty one in memory, so that the folder can
         * still be served. */
        writer = true;
        rc = sqlite3_open_v2(":memory:", &c->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                 SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                             NULL);
    } else if (mode == MI_CATALOG_FROZEN) {
        /* The disk is full or read-only: no -wal or -shm file can be
         * made, so read the file as it is, as if nobody wrote to it. */
        char *uri = immutable_uri(path);

        if (!uri) {
            free(c);
            return MI_ENOMEM;
        }
        rc = sqlite3_open_v2(uri, &c->db,
                             SQLITE_OPEN_READONLY | SQLITE_OPEN_URI |
                                 SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                             NULL);
        free(uri);
    } else {
        rc = sqlite3_open_v2(path, &c->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                 SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                             NULL);
    }
    if (rc != SQLITE_OK) {
        s = db_error(c->db, rc, "opening", errbuf, errlen);
        goto fail;
    }
    sqlite3_busy_timeout(c->db, 10000);
    sqlite3_extended_result_codes(c->db, 1);

    /* WAL: readers never wait for the writer.  synchronous=NORMAL in WAL
     * keeps the database consistent after a power cut; the last
     * transactions may roll back, and the next scan redoes them from the
     * disk, which is the truth. */
    /* temp_store=FILE: a sort larger than the page cache (a filtered
     * list of every item, ORDER BY hash) spills to a temporary file,
     * unlinked at once, instead of memory: with MEMORY one such request
     * held about 400 bytes per item (40 MB at 100,000 items, 400 MB at a
     * million), each concurrent one as much again. */
    rc = sqlite3_exec(c->db,
                      mode == MI_CATALOG_FROZEN
                          ? "PRAGMA cache_size=-4096;"
                            "PRAGMA temp_store=FILE"
                          : "PRAGMA journal_mode=WAL;"
                            "PRAGMA synchronous=NORMAL;"
                            "PRAGMA foreign_keys=OFF;"
                            "PRAGMA cache_size=-4096;"
                            "PRAGMA temp_store=FILE",
                      NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        s = db_error(c->db, rc, "setting up", errbuf, errlen);
        if (s == MI_EDB)
            s = MI_EFORMAT;
        goto fail;
    }

    /* The writer numbers its changes (schema v7) and computes places
     * (v8) with C functions; before the schema. */
    if (writer &&
        ((rc = sqlite3_create_function(c->db, "mi_next_seq", 0, SQLITE_UTF8,
                                       c, next_seq_fn, NULL, NULL)) != SQLITE_OK ||
         (rc = sqlite3_create_function(c->db, "mi_place_of", 2,
                                       SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                       NULL, place_of_fn, NULL, NULL)) != SQLITE_OK)) {
        s = db_error(c->db, rc, "setting up", errbuf, errlen);
        goto fail;
    }
    s = migrate(c->db, writer, errbuf, errlen);
    if (s != MI_OK)
        goto fail;
    s = probe(c, errbuf, errlen);
    if (s != MI_OK)
        goto fail;
    /* The writer keeps 16 MiB of pages (readers 4): the word index's
     * segments are merged as it grows, and with 4 MiB a cold index of
     * 100,000 geotagged files took 23.6 s instead of 12.5 s (8 MiB: 15.9 s;
     * bench/places.sh).  Peak RSS of that index: 32 MiB. */
    if (writer && mode != MI_CATALOG_FROZEN)
        sqlite3_exec(c->db, "PRAGMA cache_size=-16384", NULL, NULL, NULL);
    if (writer) {
        reload_seq(c);
        if (!c->frozen && (s = places_update(c, errbuf, errlen)) != MI_OK)
            goto fail;
    }

    rc = prepare(c->db, &c->lookup,
                 "SELECT " ROW_COLUMNS " FROM files WHERE hash = ?1 "
                 "ORDER BY path");
    if (rc == SQLITE_OK)
        rc = prepare(c->db, &c->all,
                     "SELECT " ROW_COLUMNS " FROM files ORDER BY hash, path");
    if (rc == SQLITE_OK)
        rc = prepare(c->db, &c->count,
                     "SELECT (SELECT count(*) FROM (SELECT DISTINCT hash "
                     "FROM files)), (SELECT count(*) FROM files)");
    if (rc == SQLITE_OK)
        rc = prepare(c->db, &c->by_path,
                     "SELECT path, size, mtime_ns, inode, thumb, hash FROM files "
                     "INDEXED BY files_by_path ORDER BY path");
    if (rc == SQLITE_OK && writer)
        rc = prepare(c->db, &c->insert,
                     "INSERT OR REPLACE INTO files (hash, path, size, "
                     "mtime_ns, ctime_ns, inode, mime, kind, date, "
                     "date_source, width, height, orientation, lat, lon, "
                     "make, model, thumb, duration_ms, codec, live_id, place, "
                     "seq) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
                     "?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, "
                     "mi_next_seq())");
    if (rc == SQLITE_OK && writer)
        rc = prepare(c->db, &c->del_path,
                     "DELETE FROM files WHERE path = ?1");
    if (rc == SQLITE_OK)
        rc = prepare(c->db, &c->hashes,
                     "SELECT DISTINCT hash FROM files ORDER BY hash");
    if (rc == SQLITE_OK && writer)
        rc = prepare(c->db, &c->set_thumb,
                     "UPDATE files SET thumb = ?1, seq = mi_next_seq() "
                     "WHERE hash = ?2 "
                     "AND (?3 IS NULL OR path = ?3)");
    if (rc == SQLITE_OK && writer)
        rc = prepare(c->db, &c->set_gen,
                     "UPDATE meta SET value = value + 1 "
                     "WHERE key = 'generation' RETURNING value");
    if (rc == SQLITE_OK && writer)
        rc = prepare(c->db, &c->set_problem,
                     "INSERT INTO problems (path, stage, status, reason, "
                     "first_seen, last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?5) "
                     "ON CONFLICT (path) DO UPDATE SET "
                     "first_seen = CASE WHEN stage = excluded.stage "
                     "THEN first_seen ELSE excluded.first_seen END, "
                     "stage = excluded.stage, status = excluded.status, "
                     "reason = excluded.reason, last_seen = excluded.last_seen");
    if (rc == SQLITE_OK && writer)
        rc = prepare(c->db, &c->del_problem,
                     "DELETE FROM problems WHERE path = ?1");
    if (rc == SQLITE_OK && writer)
        rc = prepare(c->db, &c->set_preview,
                     "INSERT OR REPLACE INTO preview_failures (hash, status, "
                     "reason) VALUES (?1, ?2, ?3)");
    if (rc == SQLITE_OK && writer)
        rc = prepare(c->db, &c->del_preview,
                     "DELETE FROM preview_failures WHERE hash = ?1");
    if (rc == SQLITE_OK && writer)
        rc = prepare(c->db, &c->set_phash,
                     "INSERT OR REPLACE INTO phashes (hash, phash) "
                     "VALUES (?1, ?2)");
    if (rc != SQLITE_OK) {
        s = db_error(c->db, rc, "preparing statements", errbuf, errlen);
        if (s == MI_EDB)
            s = MI_EFORMAT;
        goto fail;
    }
    c->frozen = mode == MI_CATALOG_FROZEN;
    *out = c;
    return MI_OK;

fail:
    mi_catalog_close(c);
    return s;
}

void mi_catalog_close(mi_conn *c)
{
    if (!c)
        return;
    sqlite3_finalize(c->lookup);
    sqlite3_finalize(c->all);
    sqlite3_finalize(c->count);
    sqlite3_finalize(c->by_path);
    sqlite3_finalize(c->insert);
    sqlite3_finalize(c->del_path);
    sqlite3_finalize(c->set_gen);
    sqlite3_finalize(c->set_thumb);
    sqlite3_finalize(c->hashes);
    sqlite3_finalize(c->set_problem);
    sqlite3_finalize(c->del_problem);
    sqlite3_finalize(c->set_preview);
    sqlite3_finalize(c->del_preview);
    sqlite3_finalize(c->set_phash);
    sqlite3_close_v2(c->db);
    free(c);
}

mi_status mi_catalog_begin(mi_conn *c, char *errbuf, size_t errlen)
{
    int rc = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);

    if (rc != SQLITE_OK)
        return db_error(c->db, rc, "begin", errbuf, errlen);
    reload_seq(c);
    return MI_OK;
}

/* Bring the word index up to the rows: forget the numbers of rows changed
 * or gone, add the rows changed since the last catch-up.  In the writer's
 * open transaction. */
static int words_catch_up(sqlite3 *db)
{
    return sqlite3_exec(
        db,
        "DELETE FROM words WHERE rowid IN (SELECT seq FROM words_gone);"
        "DELETE FROM words_gone;"
        "INSERT INTO words (rowid, hash, name, place, camera)"
        " SELECT seq, hash, path,"
        "  (SELECT words FROM place_words WHERE id = files.place),"
        "  coalesce(make, '') || ' ' || coalesce(model, '')"
        " FROM files WHERE seq > (SELECT value FROM meta"
        "  WHERE key = 'words_seq');"
        "UPDATE meta SET value = max(value, coalesce((SELECT max(seq)"
        " FROM files), 0)) WHERE key = 'words_seq';",
        NULL, NULL, NULL);
}

mi_status mi_catalog_commit(mi_conn *c, char *errbuf, size_t errlen)
{
    int rc = words_catch_up(c->db);

    if (rc != SQLITE_OK) {
        mi_status s = db_error(c->db, rc, "the word index", errbuf, errlen);
        mi_catalog_rollback(c);
        return s;
    }
    rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        mi_status s = db_error(c->db, rc, "commit", errbuf, errlen);
        mi_catalog_rollback(c);
        return s;
    }
    return MI_OK;
}

void mi_catalog_rollback(mi_conn *c)
{
    if (!sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
    if (s && *s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

mi_status mi_catalog_put(mi_conn *c, const mi_file_row *row,
                         char *errbuf, size_t errlen)
{
    sqlite3_stmt *st = c->insert;
    const mi_meta *m = &row->meta;
    bool deleted;
    mi_status s;
    int rc;

    /* The key is (hash, path): a path whose content changed has a row under
     * its old hash that REPLACE would not meet. */
    s = mi_catalog_delete(c, row->path, row->path_len, &deleted, errbuf, errlen);
    if (s != MI_OK)
        return s;

    sqlite3_bind_blob(st, 1, row->hash, MI_HASH_SIZE, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, row->path, (int)row->path_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)row->size);
    sqlite3_bind_int64(st, 4, row->mtime_ns);
    sqlite3_bind_int64(st, 5, row->ctime_ns);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)row->inode);
    sqlite3_bind_text(st, 7, row->type->mime, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 8, (int)row->type->kind);
    if (m->has_date)
        sqlite3_bind_int64(st, 9, m->date);
    else
        sqlite3_bind_null(st, 9);
    sqlite3_bind_int(st, 10, m->has_date ? (int)m->date_source : MI_DATE_CTIME);
    sqlite3_bind_int64(st, 11, m->width);
    sqlite3_bind_int64(st, 12, m->height);
    sqlite3_bind_int(st, 13, m->orientation);
    if (m->has_gps) {
        uint32_t place = mi_place_at(m->lat, m->lon);

        sqlite3_bind_double(st, 14, m->lat);
        sqlite3_bind_double(st, 15, m->lon);
        if (place)
            sqlite3_bind_int64(st, 22, place);
    } else {
        sqlite3_bind_null(st, 14);
        sqlite3_bind_null(st, 15);
    }
    bind_text_or_null(st, 16, m->make);
    bind_text_or_null(st, 17, m->model);
    sqlite3_bind_int(st, 18, (int)row->thumb);
    sqlite3_bind_int64(st, 19, m->duration_ms);
    bind_text_or_null(st, 20, m->codec);
    bind_text_or_null(st, 21, m->live_id);

    rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        return db_error(c->db, rc, "insert", errbuf, errlen);
    /* Read again: its preview may be tried again. */
    sqlite3_bind_blob(c->del_preview, 1, row->hash, MI_HASH_SIZE, SQLITE_STATIC);
    rc = sqlite3_step(c->del_preview);
    sqlite3_reset(c->del_preview);
    sqlite3_clear_bindings(c->del_preview);
    if (rc != SQLITE_DONE)
        return db_error(c->db, rc, "forgetting a preview failure", errbuf,
                        errlen);
    if (row->phash.tried)
        return mi_catalog_set_phash(c, row->hash, &row->phash, errbuf, errlen);
    return MI_OK;
}

mi_status mi_catalog_set_phash(mi_conn *c, const uint8_t hash[MI_HASH_SIZE],
                               const mi_phash *ph, char *errbuf, size_t errlen)
{
    sqlite3_stmt *st = c->set_phash;
    int rc;

    sqlite3_bind_blob(st, 1, hash, MI_HASH_SIZE, SQLITE_STATIC);
    if (ph->has)
        sqlite3_bind_int64(st, 2, (sqlite3_int64)ph->bits);
    else
        sqlite3_bind_null(st, 2);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        return db_error(c->db, rc, "recording a perceptual hash", errbuf,
                        errlen);
    return MI_OK;
}

/* Run a write statement whose one parameter is a path. */
static mi_status step_path(mi_conn *c, sqlite3_stmt *st, const char *path,
                           size_t path_len, const char *what, char *errbuf,
                           size_t errlen)
{
    int rc;

    sqlite3_bind_blob(st, 1, path, (int)path_len, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        return db_error(c->db, rc, what, errbuf, errlen);
    return MI_OK;
}

mi_status mi_catalog_delete(mi_conn *c, const char *path, size_t path_len,
                            bool *deleted, char *errbuf, size_t errlen)
{
    mi_status s = step_path(c, c->del_path, path, path_len, "delete", errbuf,
                            errlen);

    if (s == MI_OK && deleted)
        *deleted = sqlite3_changes(c->db) > 0;
    return s;
}

mi_status mi_catalog_get_generation(mi_conn *c, uint64_t *gen)
{
    sqlite3_stmt *st = NULL;
    int rc;

    *gen = 0;
    rc = sqlite3_prepare_v2(c->db,
                            "SELECT value FROM meta WHERE key='generation'",
                            -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        *gen = (uint64_t)sqlite3_column_int64(st, 0);
    rc = sqlite3_finalize(st);
    return rc == SQLITE_OK ? MI_OK : MI_EDB;
}

mi_status mi_catalog_bump_generation(mi_conn *c, uint64_t *gen,
                                     char *errbuf, size_t errlen)
{
    /* In SQL, not from a counter in memory: another handle on the same
     * folder may have committed since this one last looked. */
    int rc = sqlite3_step(c->set_gen);

    if (rc == SQLITE_ROW) {
        *gen = (uint64_t)sqlite3_column_int64(c->set_gen, 0);
        rc = sqlite3_step(c->set_gen);
    }
    sqlite3_reset(c->set_gen);
    if (rc != SQLITE_DONE)
        return db_error(c->db, rc, "generation", errbuf, errlen);
    return MI_OK;
}

mi_status mi_catalog_query(mi_conn *c, sqlite3_stmt **out,
                           const mi_cursor_options *opts, const mi_query *q)
{
    /* One row per content: its primary (smallest) path, found through the
     * (hash, path) key; the column after the row's
     * (MI_CATALOG_ROW_COLUMNS) says whether other paths follow (the
     * cursor then reads them with the lookup statement).  A content's date
     * is its primary path's.  Newest first walks files_by_date: no sort,
     * so the first rows come at once even for a large library.  A query
     * adds its conditions: numbers are bound, place runs are numbers
     * written in, words are one bound FTS5 expression. */
#define EFF "coalesce(date, ctime_ns / 1000000000)"
    static const char head[] =
        "SELECT " ROW_COLUMNS ", EXISTS (SELECT 1 FROM files AS o"
        "  WHERE o.hash = files.hash AND o.path > files.path)"
        " FROM files%s WHERE " EFF " >= ?1 AND " EFF " < ?2"
        " AND NOT EXISTS (SELECT 1 FROM files AS o"
        "  WHERE o.hash = files.hash AND o.path < files.path)";
    bool newest = opts && (opts->flags & MI_CURSOR_NEWEST_FIRST);
    bool range = opts && (opts->flags & MI_CURSOR_DATE_RANGE);
    int64_t from = range ? opts->date_from : INT64_MIN;
    int64_t to = range ? opts->date_to : INT64_MAX;
    size_t cap = sizeof(head) + 256 +
                 (q && q->has_places ? q->places.n * 64 : 0);
    char *sql = malloc(cap);
    size_t n;
    int rc;

    if (!sql)
        return MI_ENOMEM;
    /* A place names few of the library's items: read them from
     * files_by_place and sort them, rather than walking every date. */
    n = (size_t)snprintf(sql, cap, head,
                         q && q->has_places && q->places.n
                             ? " INDEXED BY files_by_place" : "");
    if (q) {
        if (q->date_from > from)
            from = q->date_from;
        if (q->date_to < to)
            to = q->date_to;
        if (q->nothing || (q->has_places && !q->places.n))
            n += (size_t)snprintf(sql + n, cap - n, " AND 0");
        if (q->kind)   /* a constant: videos_by_date's WHERE must match */
            n += (size_t)snprintf(sql + n, cap - n, " AND kind = %d", q->kind);
        if (q->has_places && q->places.n) {
            /* Terms SQLite's OR optimisation reads each from
             * files_by_place: a few places out of many are found without
             * walking the library. */
            n += (size_t)snprintf(sql + n, cap - n, " AND (");
            for (size_t i = 0; i < q->places.n; i++)
                n += (size_t)snprintf(sql + n, cap - n,
                                      "%splace BETWEEN %u AND %u",
                                      i ? " OR " : "",
                                      (unsigned)q->places.run[i].first,
                                      (unsigned)q->places.run[i].last);
            n += (size_t)snprintf(sql + n, cap - n, ")");
        }
        if (q->match)
            n += (size_t)snprintf(sql + n, cap - n,
                                  " AND hash IN (SELECT f.hash FROM words"
                                  " JOIN files AS f ON f.seq = words.rowid"
                                  " WHERE words MATCH ?3)");
    }
    snprintf(sql + n, cap - n, " ORDER BY %s",
             newest ? EFF " DESC, hash" : "hash");
#undef EFF
    rc = sqlite3_prepare_v2(c->db, sql, -1, out, NULL);
    free(sql);
    if (rc != SQLITE_OK)
        return MI_EDB;
    sqlite3_bind_int64(*out, 1, from);
    sqlite3_bind_int64(*out, 2, to);
    if (q && q->match)
        sqlite3_bind_text(*out, 3, q->match, -1, SQLITE_TRANSIENT);
    return MI_OK;
}

mi_status mi_catalog_dates(mi_conn *c, int (*fn)(void *ctx, int64_t date),
                           void *ctx)
{
    /* The table's own order (hash, path): a content's first row is its
     * primary path, whose date is the content's. */
    sqlite3_stmt *st = NULL;
    uint8_t prev[MI_HASH_SIZE];
    bool have = false;
    mi_status s = MI_OK;
    int rc;

    rc = sqlite3_prepare_v2(c->db, "SELECT hash, date, ctime_ns FROM files "
                            "ORDER BY hash, path", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return MI_EDB;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const void *h = sqlite3_column_blob(st, 0);
        int64_t date;

        if (!h || sqlite3_column_bytes(st, 0) != MI_HASH_SIZE ||
            (have && memcmp(h, prev, MI_HASH_SIZE) == 0))
            continue;
        memcpy(prev, h, MI_HASH_SIZE);
        have = true;
        date = sqlite3_column_type(st, 1) != SQLITE_NULL
                   ? sqlite3_column_int64(st, 1)
                   : mi_ns_to_s_floor(sqlite3_column_int64(st, 2));
        if (fn(ctx, date)) {
            s = MI_DONE;
            break;
        }
    }
    if (s == MI_OK && rc != SQLITE_DONE)
        s = MI_EDB;
    sqlite3_finalize(st);
    return s;
}

mi_status mi_catalog_count(mi_conn *c, uint64_t *media, uint64_t *files)
{
    int rc = sqlite3_step(c->count);
    mi_status s = MI_EDB;

    if (rc == SQLITE_ROW) {
        if (media)
            *media = (uint64_t)sqlite3_column_int64(c->count, 0);
        if (files)
            *files = (uint64_t)sqlite3_column_int64(c->count, 1);
        s = MI_OK;
    }
    sqlite3_reset(c->count);
    return s;
}

mi_status mi_catalog_set_thumb(mi_conn *c, const uint8_t hash[MI_HASH_SIZE],
                               const char *path, size_t path_len,
                               mi_thumb_state state,
                               char *errbuf, size_t errlen)
{
    sqlite3_stmt *st = c->set_thumb;
    int rc;

    sqlite3_bind_int(st, 1, (int)state);
    sqlite3_bind_blob(st, 2, hash, MI_HASH_SIZE, SQLITE_STATIC);
    if (path)
        sqlite3_bind_blob(st, 3, path, (int)path_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 3);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        return db_error(c->db, rc, "thumbnail state", errbuf, errlen);
    return MI_OK;
}

/* ---------------------------------------------------------------------- */
/* Problems                                                                */

mi_status mi_catalog_set_problem(mi_conn *c, const char *path, size_t path_len,
                                 int stage, mi_status status,
                                 const char *reason, int64_t now_ns,
                                 char *errbuf, size_t errlen)
{
    sqlite3_stmt *st = c->set_problem;
    int rc;

    sqlite3_bind_blob(st, 1, path, (int)path_len, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, stage);
    sqlite3_bind_int(st, 3, (int)status);
    sqlite3_bind_text(st, 4, reason && *reason ? reason : mi_strerror(status),
                      -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now_ns);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        return db_error(c->db, rc, "recording a problem", errbuf, errlen);
    return MI_OK;
}

mi_status mi_catalog_clear_problem(mi_conn *c, const char *path,
                                   size_t path_len, char *errbuf,
                                   size_t errlen)
{
    return step_path(c, c->del_problem, path, path_len, "clearing a problem",
                     errbuf, errlen);
}

mi_status mi_catalog_sweep_problems(mi_conn *c, int64_t scan_start_ns,
                                    char *errbuf, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc;

    /* Files and folders the complete scan did not fail on again are fine
     * now (or gone); a thumbnail's problem lasts as long as its row. */
    rc = sqlite3_prepare_v2(c->db,
                            "DELETE FROM problems WHERE (stage <> ?2 AND "
                            "last_seen < ?1) OR (stage = ?2 AND NOT EXISTS "
                            "(SELECT 1 FROM files WHERE files.path = "
                            "problems.path))",
                            -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, scan_start_ns);
        sqlite3_bind_int(st, 2, MI_PROBLEM_THUMBNAIL);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(c->db,
                          "DELETE FROM preview_failures WHERE NOT EXISTS "
                          "(SELECT 1 FROM files WHERE files.hash = "
                          "preview_failures.hash)",
                          NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return db_error(c->db, rc, "sweeping problems", errbuf, errlen);
    return MI_OK;
}

mi_status mi_catalog_count_problems(mi_conn *c, uint64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc;

    *out = 0;
    rc = sqlite3_prepare_v2(c->db, "SELECT count(*) FROM problems", -1, &st,
                            NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *out = (uint64_t)sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? MI_OK : MI_EDB;
}

mi_status mi_catalog_meta_get(mi_conn *c, const char *key, int64_t *value,
                              bool *found)
{
    sqlite3_stmt *st = NULL;
    int rc;

    *found = false;
    rc = sqlite3_prepare_v2(c->db, "SELECT value FROM meta WHERE key = ?1",
                            -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *value = sqlite3_column_int64(st, 0);
            *found = true;
        }
        rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? MI_OK : MI_EDB;
}

mi_status mi_catalog_meta_put(mi_conn *c, const char *key,
                              const int64_t *value)
{
    sqlite3_stmt *st = NULL;
    int rc;

    rc = sqlite3_prepare_v2(c->db, value
                                ? "INSERT OR REPLACE INTO meta (key, value)"
                                  " VALUES (?1, ?2)"
                                : "DELETE FROM meta WHERE key = ?1",
                            -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        if (value)
            sqlite3_bind_int64(st, 2, *value);
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? MI_OK : MI_EDB;
}

mi_status mi_catalog_get_problem(mi_conn *c, const char *path, size_t path_len,
                                 int *stage, mi_status *status, char *reason,
                                 size_t reason_len)
{
    sqlite3_stmt *st = NULL;
    mi_status s = MI_ENOTFOUND;

    if (sqlite3_prepare_v2(c->db,
                           "SELECT stage, status, reason FROM problems "
                           "WHERE path = ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return MI_EDB;
    }
    sqlite3_bind_blob(st, 1, path, (int)path_len, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *r = sqlite3_column_text(st, 2);
        *stage = sqlite3_column_int(st, 0);
        *status = (mi_status)sqlite3_column_int(st, 1);
        mi_bufprintf(reason, reason_len, "%s", r ? (const char *)r : "");
        s = MI_OK;
    }
    sqlite3_finalize(st);
    return s;
}

/* ---------------------------------------------------------------------- */
/* Preview failures                                                        */

mi_status mi_catalog_get_preview_failure(mi_conn *c,
                                         const uint8_t hash[MI_HASH_SIZE],
                                         mi_status *status, char *reason,
                                         size_t reason_len)
{
    sqlite3_stmt *st = NULL;
    mi_status s = MI_ENOTFOUND;

    /* Prepared here, not at open: a frozen catalog of an older schema
     * has no such table, and then has nothing to say. */
    if (sqlite3_prepare_v2(c->db,
                           "SELECT status, reason FROM preview_failures "
                           "WHERE hash = ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return MI_ENOTFOUND;
    }
    sqlite3_bind_blob(st, 1, hash, MI_HASH_SIZE, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *r = sqlite3_column_text(st, 1);
        *status = (mi_status)sqlite3_column_int(st, 0);
        mi_bufprintf(reason, reason_len, "%s", r ? (const char *)r : "");
        s = MI_OK;
    }
    sqlite3_finalize(st);
    return s;
}

mi_status mi_catalog_set_preview_failure(mi_conn *c,
                                         const uint8_t hash[MI_HASH_SIZE],
                                         mi_status status, const char *reason,
                                         char *errbuf, size_t errlen)
{
    sqlite3_stmt *st = c->set_preview;
    int rc;

    if (!st)
        return MI_EACCES;
    sqlite3_bind_blob(st, 1, hash, MI_HASH_SIZE, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, (int)status);
    sqlite3_bind_text(st, 3, reason && *reason ? reason : mi_strerror(status),
                      -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        return db_error(c->db, rc, "recording a preview failure", errbuf,
                        errlen);
    return MI_OK;
}

/* ---------------------------------------------------------------------- */
/* The change feed                                                         */

mi_status mi_catalog_change_bounds(mi_conn *c, uint64_t *head, uint64_t *floor)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, CHANGES_HEAD_SQL, -1, &st, NULL);

    *head = *floor = 0;
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *head = (uint64_t)sqlite3_column_int64(st, 0);
        *floor = (uint64_t)sqlite3_column_int64(st, 1);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    /* A catalog from before the feed (frozen, not migrated): no token. */
    return rc == SQLITE_OK ? MI_OK : MI_ERESET;
}

/* mi_next_seq(): the writer's next change number. */
static void next_seq_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    mi_conn *c = sqlite3_user_data(ctx);

    (void)argc;
    (void)argv;
    sqlite3_result_int64(ctx, (sqlite3_int64)++c->next_seq);
}

/* The counter from the catalog (never backwards): at open and at the start
 * of each write transaction, so that another process's writes count. */
static void reload_seq(mi_conn *c)
{
    uint64_t head, floor;

    if (mi_catalog_change_bounds(c, &head, &floor) == MI_OK &&
        head > c->next_seq)
        c->next_seq = head;
}

/*
 * Forget the tombstones older than `now - retention`, at most once a day
 * (at every open when the retention is shorter): their numbers go below
 * the floor, and a token older than the floor is answered MI_ERESET (the
 * client could have missed a removal).
 */
mi_status mi_catalog_compact_changes(mi_conn *c, int64_t now,
                                     int64_t retention_s)
{
    sqlite3_stmt *st = NULL;
    int64_t day = -1;
    char sql[512];
    int rc;

    rc = sqlite3_prepare_v2(c->db, "SELECT value FROM meta"
                            " WHERE key = 'changes_compacted'", -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        day = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return MI_EDB;
    if (day == now / 86400 && retention_s >= 86400)
        return MI_OK;
    snprintf(sql, sizeof(sql),
             "SAVEPOINT compact;"
             "INSERT OR REPLACE INTO meta (key, value) SELECT 'changes_floor',"
             "  max(coalesce((SELECT value FROM meta"
             "  WHERE key = 'changes_floor'), 0), max(seq)) FROM changes_gone"
             "  WHERE at < %lld HAVING count(*) > 0;"
             "DELETE FROM changes_gone WHERE at < %lld;"
             "INSERT OR REPLACE INTO meta (key, value)"
             "  VALUES ('changes_compacted', %lld);"
             "RELEASE compact;",
             (long long)(now - retention_s), (long long)(now - retention_s),
             (long long)(now / 86400));
    rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_exec(c->db, "ROLLBACK TO compact; RELEASE compact", NULL,
                     NULL, NULL);
        return MI_EDB;
    }
    return MI_OK;
}

mi_status mi_catalog_changes_query(mi_conn *c, sqlite3_stmt **rows,
                                   sqlite3_stmt **look)
{
    /* rows: those changed after ?1, in order, merged from the two indexes
     * as they are read (no sort: a page costs its own rows, not the rest
     * of the feed), without those whose content has a later tombstone.
     * look: a content's rows as the lookup gives them, then their seq,
     * which tells whether one of its files changed later. */
    int rc = sqlite3_prepare_v2(c->db,
                                "SELECT seq, hash FROM files AS c"
                                " WHERE seq > ?1 AND NOT EXISTS (SELECT 1"
                                "  FROM changes_gone AS g"
                                "  WHERE g.hash = c.hash AND g.seq > c.seq)"
                                " UNION ALL "
                                "SELECT seq, hash FROM changes_gone AS c"
                                " WHERE seq > ?1 AND NOT EXISTS (SELECT 1"
                                "  FROM changes_gone AS g"
                                "  WHERE g.hash = c.hash AND g.seq > c.seq)"
                                " ORDER BY 1", -1, rows, NULL);

    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(c->db,
                                "SELECT " ROW_COLUMNS ", seq FROM files"
                                " WHERE hash = ?1 ORDER BY path",
                                -1, look, NULL);
    return rc == SQLITE_OK ? MI_OK : MI_EDB;
}

mi_status mi_catalog_trash_query(mi_conn *c, sqlite3_stmt **out)
{
    /* A content's rows together, the most recently trashed first. */
    int rc = sqlite3_prepare_v2(c->db,
                                "SELECT " ROW_COLUMNS ", at FROM trash"
                                " WHERE state = 1 ORDER BY"
                                " max(at) OVER (PARTITION BY hash) DESC,"
                                " hash, path", -1, out, NULL);

    return rc == SQLITE_OK ? MI_OK : MI_EDB;
}
