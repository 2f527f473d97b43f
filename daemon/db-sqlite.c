/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>

#include "db-internal.h"

/* The SQLite backend of db.h: the only file of batchd that calls sqlite3 (the repository's semantics are written
 * once, against db.h). */

typedef struct SqliteStatement SqliteStatement;

struct SqliteStatement {
        DbStatement base;
        sqlite3_stmt *stmt;
        SqliteStatement *next;  /* every statement of the connection, finalized with it */
};

/* db_next_id()'s two statements for one sequence table, prepared once. */
typedef struct SqliteSequence SqliteSequence;

struct SqliteSequence {
        char *name;
        DbStatement *next_id;
        DbStatement *trim;
        SqliteSequence *next;
};

typedef struct SqliteDb {
        Db base;
        sqlite3 *db;
        SqliteStatement *statements;
        SqliteSequence *sequences;
        /* BEGIN, COMMIT and ROLLBACK run around every write: prepared once, not parsed each time. */
        sqlite3_stmt *begin, *commit, *rollback;
} SqliteDb;

#define SQLITE_DB(d) ((SqliteDb *) (d))
#define SQLITE_STATEMENT(s) ((SqliteStatement *) (s))

static int errno_from_sqlite(int rc) {
        switch (rc & 0xff) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                /* Not EBUSY: that is JobExecutionAlreadyRunning. Another connection holds the lock; the caller
                 * tries again later (docs/reliability.md). */
                return -EAGAIN;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EBADMSG;
        case SQLITE_CANTOPEN:
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_NOMEM:
                return -ENOMEM;
        default:
                return -EIO;
        }
}

static void sqlite_free(Db *db);

_printf_(2, 3)
static void set_message(char **ret_message, const char *format, ...) {
        va_list ap;

        if (!ret_message)
                return;
        free(*ret_message);
        va_start(ap, format);
        if (vasprintf(ret_message, format, ap) < 0)
                *ret_message = NULL;
        va_end(ap);
}

/* One statement that must produce no error: the check that the file is SQLite at all, and the pragmas. */
static int sqlite_exec_raw(SqliteDb *d, const char *sql) {
        int rc = sqlite3_exec(d->db, sql, NULL, NULL, NULL);

        return rc == SQLITE_OK ? 0 : errno_from_sqlite(rc);
}

static int sqlite_open(const char *location, DbOpenFlags flags, Db **ret, char **ret_message) {
        SqliteDb *d;
        bool memory, read_only;
        int k, rc;

        assert(location);
        assert(ret);

        memory = streq(location, ":memory:");
        /* A database in memory is new and private: nothing to protect by opening it read-only. */
        read_only = (flags & DB_OPEN_READ_ONLY) && !memory;

        d = calloc(1, sizeof(SqliteDb));
        if (!d)
                return -ENOMEM;
        k = db_init(&d->base, &db_sqlite_ops, DB_BACKEND_SQLITE, location);
        if (k < 0) {
                free(d);
                return k;
        }

        rc = sqlite3_open_v2(location, &d->db,
                             (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                             SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, NULL);
        if (rc != SQLITE_OK) {
                set_message(ret_message, "Failed to open the database in %s: %s", location,
                            d->db ? sqlite3_errmsg(d->db) : sqlite3_errstr(rc));
                k = errno_from_sqlite(rc);
                goto fail;
        }

        /* Other writers (batchctl, a second batchd by mistake, sqlite3 in a shell) wait instead of failing. */
        (void) sqlite3_busy_timeout(d->db, 5000);
        (void) sqlite3_extended_result_codes(d->db, 1);

        /* A file that is not SQLite at all only shows on the first read. */
        k = sqlite_exec_raw(d, "SELECT COUNT(*) FROM sqlite_master");
        if (k < 0) {
                set_message(ret_message, "%s is not a usable SQLite database: %s", location, sqlite3_errmsg(d->db));
                goto fail;
        }

        k = sqlite_exec_raw(d, "PRAGMA foreign_keys = ON; PRAGMA cache_size = -16384");
        if (k < 0) {
                set_message(ret_message, "Failed to configure the database in %s: %s", location,
                            sqlite3_errmsg(d->db));
                goto fail;
        }

        if (!read_only && sqlite3_db_readonly(d->db, "main") > 0) {
                set_message(ret_message, "Database %s is read-only (check its permissions and those of its "
                            "directory).", location);
                k = -EROFS;
                goto fail;
        }

        if (!memory && !read_only) {
                /* WAL lets readers (batchctl, sqlite3) look at history while a step commits. NORMAL sync in WAL
                 * mode is crash-safe for the process; only the last commits may be lost on power failure. */
                k = sqlite_exec_raw(d, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL");
                if (k < 0) {
                        set_message(ret_message, "Failed to configure the database in %s: %s", location,
                                    sqlite3_errmsg(d->db));
                        goto fail;
                }
        }

        *ret = &d->base;
        return 0;

fail:
        sqlite_free(&d->base);
        return k;
}

static void sqlite_free(Db *db) {
        SqliteDb *d = SQLITE_DB(db);

        while (d->sequences) {
                SqliteSequence *q = d->sequences;

                d->sequences = q->next;
                free(q->name);
                free(q);
        }
        while (d->statements) {
                SqliteStatement *s = d->statements;

                d->statements = s->next;
                sqlite3_finalize(s->stmt);
                db_statement_done(&s->base);
                free(s);
        }
        sqlite3_finalize(d->begin);
        sqlite3_finalize(d->commit);
        sqlite3_finalize(d->rollback);
        sqlite3_close_v2(d->db);
        db_done(db);
        free(d);
}

static const char *sqlite_errmsg(Db *db) {
        SqliteDb *d = SQLITE_DB(db);

        return d->db ? sqlite3_errmsg(d->db) : "not connected";
}

static int sqlite_prepare(Db *db, const char *sql, DbStatement **ret) {
        SqliteDb *d = SQLITE_DB(db);
        SqliteStatement *s;
        int k, rc;

        s = calloc(1, sizeof(SqliteStatement));
        if (!s)
                return -ENOMEM;
        k = db_statement_init(&s->base, db, sql);
        if (k < 0) {
                free(s);
                return k;
        }
        /* PERSISTENT: these live as long as the connection, and SQLite allocates them accordingly. */
        rc = sqlite3_prepare_v3(d->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->stmt, NULL);
        if (rc != SQLITE_OK || !s->stmt) {
                sqlite3_finalize(s->stmt);
                db_statement_done(&s->base);
                free(s);
                /* No statement at all (only a comment or white space) is the caller's mistake. */
                return rc != SQLITE_OK ? errno_from_sqlite(rc) : -EINVAL;
        }
        s->next = d->statements;
        d->statements = s;
        *ret = &s->base;
        return 0;
}

static int sqlite_bind_int64(DbStatement *s, int i, int64_t v) {
        int rc = sqlite3_bind_int64(SQLITE_STATEMENT(s)->stmt, i, v);

        return rc == SQLITE_OK ? 0 : errno_from_sqlite(rc);
}

static int sqlite_bind_text(DbStatement *s, int i, const char *v) {
        /* TRANSIENT: SQLite copies it, so the caller's buffer may go before the statement runs. */
        int rc = sqlite3_bind_text(SQLITE_STATEMENT(s)->stmt, i, v, -1, SQLITE_TRANSIENT);

        return rc == SQLITE_OK ? 0 : errno_from_sqlite(rc);
}

static int sqlite_bind_null(DbStatement *s, int i) {
        int rc = sqlite3_bind_null(SQLITE_STATEMENT(s)->stmt, i);

        return rc == SQLITE_OK ? 0 : errno_from_sqlite(rc);
}

static int sqlite_step(DbStatement *s) {
        int rc = sqlite3_step(SQLITE_STATEMENT(s)->stmt);

        if (rc == SQLITE_ROW)
                return DB_ROW;
        if (rc == SQLITE_DONE)
                return DB_DONE;
        return errno_from_sqlite(rc);
}

static bool sqlite_column_is_null(DbStatement *s, int i) {
        return sqlite3_column_type(SQLITE_STATEMENT(s)->stmt, i) == SQLITE_NULL;
}

static int64_t sqlite_column_int64(DbStatement *s, int i) {
        return sqlite3_column_int64(SQLITE_STATEMENT(s)->stmt, i);
}

static const char *sqlite_column_text(DbStatement *s, int i) {
        return (const char *) sqlite3_column_text(SQLITE_STATEMENT(s)->stmt, i);
}

static size_t sqlite_column_bytes(DbStatement *s, int i) {
        return (size_t) sqlite3_column_bytes(SQLITE_STATEMENT(s)->stmt, i);
}

static void sqlite_reset(DbStatement *s) {
        sqlite3_stmt *stmt = SQLITE_STATEMENT(s)->stmt;

        (void) sqlite3_reset(stmt);
        (void) sqlite3_clear_bindings(stmt);
}

static int64_t sqlite_changes(Db *db) {
        return sqlite3_changes(SQLITE_DB(db)->db);
}

static int sqlite_exec(Db *db, const char *sql) {
        return sqlite_exec_raw(SQLITE_DB(db), sql);
}

/* Runs one of the transaction statements, prepared on first use. */
static int sqlite_run_cached(SqliteDb *d, sqlite3_stmt **stmt, const char *sql) {
        int rc;

        if (!*stmt) {
                rc = sqlite3_prepare_v3(d->db, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, NULL);
                if (rc != SQLITE_OK)
                        return errno_from_sqlite(rc);
        }
        rc = sqlite3_step(*stmt);
        (void) sqlite3_reset(*stmt);
        return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : errno_from_sqlite(rc);
}

static int sqlite_begin(Db *db) {
        /* IMMEDIATE takes the write lock up front, so two writers serialize at BEGIN instead of one of them
         * failing at its first write after having read. */
        return sqlite_run_cached(SQLITE_DB(db), &SQLITE_DB(db)->begin, "BEGIN IMMEDIATE");
}

static int sqlite_commit(Db *db) {
        return sqlite_run_cached(SQLITE_DB(db), &SQLITE_DB(db)->commit, "COMMIT");
}

static int sqlite_rollback(Db *db) {
        return sqlite_run_cached(SQLITE_DB(db), &SQLITE_DB(db)->rollback, "ROLLBACK");
}

static bool sqlite_in_transaction(Db *db) {
        return !sqlite3_get_autocommit(SQLITE_DB(db)->db);
}

/* The sequence name goes into the SQL text: only names a Spring Batch sequence can have. */
static bool sequence_name_is_valid(const char *name) {
        if (isempty(name))
                return false;
        for (const char *p = name; *p; p++)
                if (!((*p >= 'A' && *p <= 'Z') || *p == '_'))
                        return false;
        return true;
}

static int sqlite_sequence(SqliteDb *d, const char *name, SqliteSequence **ret) {
        _cleanup_free_ char *next_sql = NULL, *trim_sql = NULL;
        SqliteSequence *q;
        int k;

        for (q = d->sequences; q; q = q->next)
                if (streq(q->name, name)) {
                        *ret = q;
                        return 0;
                }

        if (asprintf(&next_sql, "INSERT INTO %s VALUES (NULL)", name) < 0 ||
            asprintf(&trim_sql, "DELETE FROM %s WHERE ID < ?1", name) < 0)
                return -ENOMEM;
        q = calloc(1, sizeof(SqliteSequence));
        if (!q)
                return -ENOMEM;
        q->name = strdup(name);
        if (!q->name) {
                free(q);
                return -ENOMEM;
        }
        /* Through db_prepare()/db_step(), so tests can make them fail like any statement (db_inject_fault()).
         * The statements belong to the connection's list; only the lookup entry is ours. */
        k = db_prepare(&d->base, next_sql, &q->next_id);
        if (k >= 0)
                k = db_prepare(&d->base, trim_sql, &q->trim);
        if (k < 0) {
                free(q->name);
                free(q);
                return k;
        }
        q->next = d->sequences;
        d->sequences = q;
        *ret = q;
        return 0;
}

/* Spring's SqliteMaxValueIncrementer: a row inserted into the sequence table hands out its rowid as the id, and
 * the rows behind it are trimmed so the table stays one row long. */
static int sqlite_next_id(Db *db, const char *sequence, int64_t *ret) {
        SqliteDb *d = SQLITE_DB(db);
        SqliteSequence *q;
        int64_t id;
        int k;

        if (!sequence_name_is_valid(sequence))
                return -EINVAL;
        k = sqlite_sequence(d, sequence, &q);
        if (k < 0)
                return k;

        k = db_step(q->next_id);
        db_reset(q->next_id);
        if (k < 0)
                return k;
        id = sqlite3_last_insert_rowid(d->db);

        k = db_bind_int64(q->trim, 1, id);
        if (k >= 0)
                k = db_step(q->trim);
        db_reset(q->trim);
        if (k < 0)
                return k;

        *ret = id;
        return 0;
}

static void sqlite_set_busy_timeout(Db *db, unsigned msec) {
        (void) sqlite3_busy_timeout(SQLITE_DB(db)->db, (int) MIN(msec, (unsigned) INT_MAX));
}

const DbOps db_sqlite_ops = {
        .open = sqlite_open,
        .free = sqlite_free,
        .errmsg = sqlite_errmsg,
        .prepare = sqlite_prepare,
        .bind_int64 = sqlite_bind_int64,
        .bind_text = sqlite_bind_text,
        .bind_null = sqlite_bind_null,
        .step = sqlite_step,
        .column_is_null = sqlite_column_is_null,
        .column_int64 = sqlite_column_int64,
        .column_text = sqlite_column_text,
        .column_bytes = sqlite_column_bytes,
        .reset = sqlite_reset,
        .changes = sqlite_changes,
        .exec = sqlite_exec,
        .begin = sqlite_begin,
        .commit = sqlite_commit,
        .rollback = sqlite_rollback,
        .in_transaction = sqlite_in_transaction,
        .next_id = sqlite_next_id,
        .set_busy_timeout = sqlite_set_busy_timeout,
        .set_response_deadline = NULL,  /* a local file answers or fails; nothing to bound */
};
