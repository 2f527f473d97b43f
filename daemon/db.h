/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

/* One database connection, SQLite or PostgreSQL, behind the few calls the repository needs: prepared statements
 * with numbered parameters, rows, transactions. The repository's semantics (repository.c, schedule-store.c,
 * cluster-store.c) are written once against this; what differs per backend is only how statements reach the
 * database (db-sqlite.c, db-postgresql.c) and the SQL dialect (the few statements that must be spelled
 * differently carry a second text).
 *
 * Errors are negative errno values, the same for both backends, so callers decide without knowing the backend:
 *   -EAGAIN        another connection holds a lock, or a serialization conflict: try again later (db-retry.h)
 *   -EEXIST        a unique or primary key constraint refused the row
 *   -ECONNRESET    the connection to the server is gone or not yet back (PostgreSQL); it is re-established by
 *                  later calls without waiting in them; the transaction that was open is lost
 *   -ETIMEDOUT     the server did not answer within the connection's deadline; treated as -ECONNRESET
 *   -ENOSPC, -EIO, -ENOMEM, -EROFS, -EACCES, -EBADMSG (not a database / corrupt)
 * db_errmsg() has the database's own words for the last error. */

typedef struct Db Db;
typedef struct DbStatement DbStatement;

typedef enum DbBackend {
        DB_BACKEND_SQLITE,
        DB_BACKEND_POSTGRESQL,
        _DB_BACKEND_MAX,
} DbBackend;

typedef enum DbOpenFlags {
        DB_OPEN_READ_ONLY = 1 << 0,
} DbOpenFlags;

/* db_step() results besides negative errno. */
#define DB_DONE 0
#define DB_ROW  1

/* Whether a `database =` value names a PostgreSQL server (a "postgresql://" or "postgres://" URI) rather than
 * a SQLite file. */
bool db_location_is_postgresql(const char *location);

/* Opens location: a SQLite path (or ":memory:"), or a libpq connection URI. *ret_message gets a one-line
 * reason on failure (may be NULL). For PostgreSQL the first connection is made here, synchronously, bounded by
 * connect_timeout; later reconnects never wait. */
int db_open(const char *location, DbOpenFlags flags, Db **ret, char **ret_message);
Db *db_free(Db *db);
DEFINE_TRIVIAL_CLEANUP_FUNC(Db *, db_free);

DbBackend db_backend(Db *db);
/* The location for messages: a path, or the URI with any password removed. */
const char *db_location(Db *db);
/* The database's words for the last error on this connection. */
const char *db_errmsg(Db *db);

/* Prepares sql, written with SQLite's numbered parameters ?1, ?2, ... (translated to $1, $2, ... for
 * PostgreSQL). Statements are owned by the connection and live as long as it does: prepare once, reuse. */
int db_prepare(Db *db, const char *sql, DbStatement **ret);
/* Parameter i counts from 1. Text is copied. */
int db_bind_int64(DbStatement *s, int i, int64_t v);
int db_bind_text(DbStatement *s, int i, const char *v);   /* NULL binds NULL */
int db_bind_null(DbStatement *s, int i);
/* Runs the statement on the first call, then steps through its rows: DB_ROW while there is one, DB_DONE
 * after the last, or a negative errno. */
int db_step(DbStatement *s);
/* Columns count from 0 and are valid until the next db_step() or db_reset(). */
bool db_column_is_null(DbStatement *s, int i);
int64_t db_column_int64(DbStatement *s, int i);
const char *db_column_text(DbStatement *s, int i);   /* NULL for NULL */
size_t db_column_bytes(DbStatement *s, int i);
/* Forgets rows and bindings, ready to run again. Always call it when done (the _cleanup_db_reset_ guard). */
void db_reset(DbStatement *s);
const char *db_statement_sql(DbStatement *s);

static inline void db_resetp(DbStatement **s) {
        if (*s)
                db_reset(*s);
}
#define _cleanup_db_reset_ _cleanup_(db_resetp)

/* Rows changed by the last INSERT/UPDATE/DELETE run on this connection. */
int64_t db_changes(Db *db);

/* Runs one or more statements without parameters or rows (migrations, savepoints, SET). */
int db_exec(Db *db, const char *sql);

/* Transactions: BEGIN (SQLite: BEGIN IMMEDIATE, so the write lock is taken up front; PostgreSQL: READ
 * COMMITTED, constraints serialize), COMMIT, ROLLBACK; SAVEPOINT levels are db_exec() of "SAVEPOINT name".
 * db_in_transaction() is false again when the database rolled back by itself after an error. */
int db_begin(Db *db);
int db_commit(Db *db);
int db_rollback(Db *db);
bool db_in_transaction(Db *db);

/* The next value of a Spring Batch id sequence (BATCH_JOB_SEQ, BATCH_JOB_EXECUTION_SEQ,
 * BATCH_STEP_EXECUTION_SEQ): SQLite's sequence tables (SqliteMaxValueIncrementer) or PostgreSQL's sequences. */
int db_next_id(Db *db, const char *sequence, int64_t *ret);

/* SQLite: how long the busy handler waits for another connection's lock. PostgreSQL: lock_timeout, and the
 * deadline of a whole statement on the client side (so a hung server cannot hold the caller longer). */
void db_set_busy_timeout(Db *db, unsigned msec);
/* PostgreSQL: the longest one call waits for the server's answer before it gives the connection up (-ETIMEDOUT;
 * the server then rolls back what was open) and reconnects later; bounds how long a hung server or network can
 * hold the caller. SQLite: nothing (a local file answers or fails). db_open() sets 10 s. */
void db_set_response_deadline(Db *db, unsigned msec);

/* Tests only: the nth execution from now of a statement whose SQL starts with sql_prefix, and the count - 1
 * after it, fail with error (a negative errno from the list above) instead of running. One fault at a time;
 * NULL clears it. Works the same on both backends. */
int db_inject_fault(Db *db, const char *sql_prefix, unsigned n, unsigned count, int error);
/* Tests only: the nth COMMIT from now runs, and then its answer is lost: the caller gets -ECONNRESET as when the
 * connection breaks while a COMMIT is under way, not knowing it was applied. 0 clears it. */
void db_inject_lost_commit_reply(Db *db, unsigned n);
