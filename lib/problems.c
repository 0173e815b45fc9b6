/*
 * problems.c - the cursor over what could not be read, listed or
 * thumbnailed (the catalog's problems table, written by scan.c and
 * store.c).
 */
#include "config.h"
#include "mi-private.h"

#include <sqlite3.h>
#include <stdlib.h>

struct mi_problems {
    mi_index *idx;
    mi_conn *conn;
    sqlite3_stmt *st;
    bool has_row, done;
};

mi_status mi_problems_new(mi_problems **out, mi_index *idx)
{
    mi_problems *p;
    mi_status s;
    int rc;

    if (!out)
        return MI_EINVAL;
    *out = NULL;
    if (!idx)
        return MI_EINVAL;
    p = calloc(1, sizeof(*p));
    if (!p)
        return MI_ENOMEM;
    p->idx = idx;
    s = mi_index_reader(idx, &p->conn);
    if (s != MI_OK) {
        free(p);
        return s;
    }
    rc = sqlite3_prepare_v2(p->conn->db,
                            "SELECT path, stage, status, reason, first_seen, "
                            "last_seen FROM problems "
                            "ORDER BY last_seen DESC, path",
                            -1, &p->st, NULL);
    if (rc != SQLITE_OK) {
        s = mi_index_fail(idx, MI_EDB, "problems: %s",
                          sqlite3_errmsg(p->conn->db));
        mi_index_release(idx, p->conn);
        free(p);
        return s;
    }
    *out = p;
    return MI_OK;
}

mi_status mi_problems_next(mi_problems *p)
{
    int rc;

    if (!p)
        return MI_EINVAL;
    p->has_row = false;
    if (p->done)
        return MI_DONE;
    rc = sqlite3_step(p->st);
    if (rc == SQLITE_ROW) {
        p->has_row = true;
        return MI_ROW;
    }
    p->done = true;
    if (rc == SQLITE_DONE)
        return MI_DONE;
    return mi_index_fail(p->idx, MI_EDB, "problems: %s",
                         sqlite3_errmsg(p->conn->db));
}

const char *mi_problems_path(const mi_problems *p, size_t *len)
{
    const char *path;

    if (len)
        *len = 0;
    if (!p || !p->has_row)
        return NULL;
    /* Text, so that SQLite adds the terminating NUL; bytes as stored. */
    path = (const char *)sqlite3_column_text(p->st, 0);
    if (len && path)
        *len = (size_t)sqlite3_column_bytes(p->st, 0);
    return path ? path : "";
}

mi_problem_stage mi_problems_stage(const mi_problems *p)
{
    return p && p->has_row ? (mi_problem_stage)sqlite3_column_int(p->st, 1)
                           : (mi_problem_stage)0;
}

mi_status mi_problems_status(const mi_problems *p)
{
    return p && p->has_row ? (mi_status)sqlite3_column_int(p->st, 2) : MI_OK;
}

const char *mi_problems_reason(const mi_problems *p)
{
    const char *r;

    if (!p || !p->has_row)
        return NULL;
    r = (const char *)sqlite3_column_text(p->st, 3);
    return r ? r : "";
}

int64_t mi_problems_first_seen(const mi_problems *p)
{
    return p && p->has_row ? sqlite3_column_int64(p->st, 4) / 1000000000 : 0;
}

int64_t mi_problems_last_seen(const mi_problems *p)
{
    return p && p->has_row ? sqlite3_column_int64(p->st, 5) / 1000000000 : 0;
}

void mi_problems_free(mi_problems *p)
{
    if (!p)
        return;
    sqlite3_finalize(p->st);
    mi_index_release(p->idx, p->conn);
    free(p);
}

mi_status mi_problems_count(uint64_t *out, mi_index *idx)
{
    mi_conn *c;
    mi_status s;

    if (!out)
        return MI_EINVAL;
    *out = 0;
    if (!idx)
        return MI_EINVAL;
    s = mi_index_reader(idx, &c);
    if (s != MI_OK)
        return s;
    s = mi_catalog_count_problems(c, out);
    if (s != MI_OK)
        s = mi_index_fail(idx, s, "problems: %s", sqlite3_errmsg(c->db));
    mi_index_release(idx, c);
    return s;
}
