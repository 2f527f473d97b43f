/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* TEMPORARY (branch wt-cluster): a minimal SQLite backend for db.h so cluster-store.c can be built and tested
 * before the real one (branch wt-sqlite) lands; it wraps the repository's own sqlite3 handle
 * (repository_get_db()). Dropped when main has daemon/db-sqlite.c. */

#include <assert.h>
#include <sqlite3.h>

#include "db-internal.h"

typedef struct SqliteDb {
        Db db;
        sqlite3 *handle;
        bool owned;
        DbStatement **stmts;
        size_t n_stmts;
} SqliteDb;

typedef struct SqliteStatement {
        DbStatement s;
        sqlite3_stmt *stmt;
} SqliteStatement;

int db_sqlite_wrap(sqlite3 *handle, Db **ret);

static int errno_from_rc(int rc) {
        switch (rc & 0xff) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED: return -EAGAIN;
        case SQLITE_READONLY: return -EROFS;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB: return -EBADMSG;
        case SQLITE_FULL: return -ENOSPC;
        case SQLITE_CANTOPEN:
        case SQLITE_PERM:
        case SQLITE_AUTH: return -EACCES;
        case SQLITE_NOMEM: return -ENOMEM;
        case SQLITE_CONSTRAINT: return -EEXIST;
        default: return -EIO;
        }
}

#define SDB(d) ((SqliteDb *) (d))
#define SST(x) ((SqliteStatement *) (x))


int db_sqlite_wrap(sqlite3 *handle, Db **ret) {
        SqliteDb *d = calloc(1, sizeof(SqliteDb));
        int k;

        if (!d)
                return -ENOMEM;
        k = db_init(&d->db, &db_sqlite_ops, DB_BACKEND_SQLITE, sqlite3_db_filename(handle, "main"));
        if (k < 0) {
                free(d);
                return k;
        }
        d->handle = handle;
        *ret = &d->db;
        return 0;
}

static int s_open(const char *location, DbOpenFlags flags, Db **ret, char **ret_message) {
        sqlite3 *h = NULL;
        int rc, k;

        rc = sqlite3_open_v2(location, &h, flags & DB_OPEN_READ_ONLY ? SQLITE_OPEN_READONLY :
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
        if (rc != SQLITE_OK) {
                sqlite3_close_v2(h);
                return errno_from_rc(rc);
        }
        k = db_sqlite_wrap(h, ret);
        if (k < 0) {
                sqlite3_close_v2(h);
                return k;
        }
        SDB(*ret)->owned = true;
        return 0;
}

static void s_free(Db *db) {
        SqliteDb *d = SDB(db);

        for (size_t i = 0; i < d->n_stmts; i++) {
                sqlite3_finalize(SST(d->stmts[i])->stmt);
                db_statement_done(d->stmts[i]);
                free(d->stmts[i]);
        }
        free(d->stmts);
        if (d->owned)
                sqlite3_close_v2(d->handle);
        db_done(db);
        free(d);
}

static const char *s_errmsg(Db *db) {
        return sqlite3_errmsg(SDB(db)->handle);
}

static int s_prepare(Db *db, const char *sql, DbStatement **ret) {
        SqliteDb *d = SDB(db);
        SqliteStatement *s;
        DbStatement **a;
        int rc, k;

        a = reallocarray(d->stmts, d->n_stmts + 1, sizeof(DbStatement *));
        if (!a)
                return -ENOMEM;
        d->stmts = a;
        s = calloc(1, sizeof(SqliteStatement));
        if (!s)
                return -ENOMEM;
        k = db_statement_init(&s->s, db, sql);
        if (k < 0) {
                free(s);
                return k;
        }
        rc = sqlite3_prepare_v3(d->handle, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->stmt, NULL);
        if (rc != SQLITE_OK) {
                db_statement_done(&s->s);
                free(s);
                return errno_from_rc(rc);
        }
        d->stmts[d->n_stmts++] = &s->s;
        *ret = &s->s;
        return 0;
}

static int s_bind_int64(DbStatement *s, int i, int64_t v) {
        return sqlite3_bind_int64(SST(s)->stmt, i, v) == SQLITE_OK ? 0 : -EINVAL;
}

static int s_bind_text(DbStatement *s, int i, const char *v) {
        return sqlite3_bind_text(SST(s)->stmt, i, v, -1, SQLITE_TRANSIENT) == SQLITE_OK ? 0 : -ENOMEM;
}

static int s_bind_null(DbStatement *s, int i) {
        return sqlite3_bind_null(SST(s)->stmt, i) == SQLITE_OK ? 0 : -EINVAL;
}

static int s_step(DbStatement *s) {
        int rc = sqlite3_step(SST(s)->stmt);

        if (rc == SQLITE_ROW)
                return DB_ROW;
        if (rc == SQLITE_DONE)
                return DB_DONE;
        return errno_from_rc(rc);
}

static bool s_column_is_null(DbStatement *s, int i) {
        return sqlite3_column_type(SST(s)->stmt, i) == SQLITE_NULL;
}

static int64_t s_column_int64(DbStatement *s, int i) {
        return sqlite3_column_int64(SST(s)->stmt, i);
}

static const char *s_column_text(DbStatement *s, int i) {
        return (const char *) sqlite3_column_text(SST(s)->stmt, i);
}

static size_t s_column_bytes(DbStatement *s, int i) {
        return (size_t) sqlite3_column_bytes(SST(s)->stmt, i);
}

static void s_reset(DbStatement *s) {
        (void) sqlite3_reset(SST(s)->stmt);
        (void) sqlite3_clear_bindings(SST(s)->stmt);
}

static int64_t s_changes(Db *db) {
        return sqlite3_changes64(SDB(db)->handle);
}

static int s_exec(Db *db, const char *sql) {
        int rc = sqlite3_exec(SDB(db)->handle, sql, NULL, NULL, NULL);

        return rc == SQLITE_OK ? 0 : errno_from_rc(rc);
}

static int s_begin(Db *db) {
        return s_exec(db, "BEGIN IMMEDIATE");
}

static int s_commit(Db *db) {
        return s_exec(db, "COMMIT");
}

static int s_rollback(Db *db) {
        return s_exec(db, "ROLLBACK");
}

static bool s_in_transaction(Db *db) {
        return !sqlite3_get_autocommit(SDB(db)->handle);
}

static int s_next_id(Db *db, const char *sequence, int64_t *ret) {
        char sql[128];
        int k;

        (void) snprintf(sql, sizeof(sql), "INSERT INTO %s VALUES (NULL)", sequence);
        k = s_exec(db, sql);
        if (k < 0)
                return k;
        *ret = sqlite3_last_insert_rowid(SDB(db)->handle);
        return 0;
}

static void s_set_busy_timeout(Db *db, unsigned msec) {
        (void) sqlite3_busy_timeout(SDB(db)->handle, (int) msec);
}

const DbOps db_sqlite_ops = {
        .open = s_open,
        .free = s_free,
        .errmsg = s_errmsg,
        .prepare = s_prepare,
        .bind_int64 = s_bind_int64,
        .bind_text = s_bind_text,
        .bind_null = s_bind_null,
        .step = s_step,
        .column_is_null = s_column_is_null,
        .column_int64 = s_column_int64,
        .column_text = s_column_text,
        .column_bytes = s_column_bytes,
        .reset = s_reset,
        .changes = s_changes,
        .exec = s_exec,
        .begin = s_begin,
        .commit = s_commit,
        .rollback = s_rollback,
        .in_transaction = s_in_transaction,
        .next_id = s_next_id,
        .set_busy_timeout = s_set_busy_timeout,
};

static int pg_stub_open(const char *location, DbOpenFlags flags, Db **ret, char **ret_message) {
        if (ret_message)
                *ret_message = strdup("the PostgreSQL backend is not on this branch yet");
        return -EPROTONOSUPPORT;
}

/* Weak: the real backend (branch wt-pg) replaces it. */
__attribute__((weak)) const DbOps db_postgresql_ops = {
        .open = pg_stub_open,
};
