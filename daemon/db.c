/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>

#include "db-internal.h"
#include "log.h"

bool db_location_is_postgresql(const char *location) {
        return location && (strneq(location, "postgresql://", strlen("postgresql://")) ||
                             strneq(location, "postgres://", strlen("postgres://")));
}

int db_init(Db *db, const DbOps *ops, DbBackend backend, const char *location) {
        assert(db);
        assert(ops);

        *db = (Db) { .ops = ops, .backend = backend };
        db->location = strdup(strempty(location));
        return db->location ? 0 : -ENOMEM;
}

void db_done(Db *db) {
        if (!db)
                return;
        db->location = mfree(db->location);
        db->fault_sql = mfree(db->fault_sql);
        db->fault_message = mfree(db->fault_message);
}

int db_statement_init(DbStatement *s, Db *db, const char *sql) {
        assert(s);
        assert(db);
        assert(sql);

        *s = (DbStatement) { .db = db };
        s->sql = strdup(sql);
        return s->sql ? 0 : -ENOMEM;
}

void db_statement_done(DbStatement *s) {
        if (s)
                s->sql = mfree(s->sql);
}

int db_open(const char *location, DbOpenFlags flags, Db **ret, char **ret_message) {
        assert(location);
        assert(ret);

        if (ret_message)
                *ret_message = NULL;
        return (db_location_is_postgresql(location) ? &db_postgresql_ops : &db_sqlite_ops)->open(location, flags, ret,
                                                                                                ret_message);
}

Db *db_free(Db *db) {
        if (db)
                db->ops->free(db);
        return NULL;
}

DbBackend db_backend(Db *db) {
        assert(db);
        return db->backend;
}

const char *db_location(Db *db) {
        assert(db);
        return db->location;
}

const char *db_errmsg(Db *db) {
        assert(db);
        if (db->fault_message)
                return db->fault_message;
        return db->ops->errmsg(db);
}

int db_prepare(Db *db, const char *sql, DbStatement **ret) {
        assert(db);
        assert(sql);
        assert(ret);
        return db->ops->prepare(db, sql, ret);
}

int db_bind_int64(DbStatement *s, int i, int64_t v) {
        assert(s);
        assert(i >= 1);
        return s->db->ops->bind_int64(s, i, v);
}

int db_bind_text(DbStatement *s, int i, const char *v) {
        assert(s);
        assert(i >= 1);
        if (!v)
                return s->db->ops->bind_null(s, i);
        return s->db->ops->bind_text(s, i, v);
}

int db_bind_null(DbStatement *s, int i) {
        assert(s);
        assert(i >= 1);
        return s->db->ops->bind_null(s, i);
}

/* A statement fails by injection only where it would start running, never between two of its rows. */
static bool db_fault_fires(DbStatement *s) {
        Db *db = s->db;

        if (!db->fault_sql || !strneq(s->sql, db->fault_sql, strlen(db->fault_sql)))
                return false;
        if (--db->fault_countdown > 0)
                return false;
        log_notice("Test fault injection: \"%s\" fails with %s.", db->fault_sql, strerror(-db->fault_error));
        free(db->fault_message);
        db->fault_message = NULL;
        if (asprintf(&db->fault_message, "test fault injection: %s", strerror(-db->fault_error)) < 0)
                db->fault_message = NULL;
        if (--db->fault_count > 0)
                db->fault_countdown = 1;
        else
                db->fault_sql = mfree(db->fault_sql);
        return true;
}

int db_step(DbStatement *s) {
        assert(s);

        if (!s->running) {
                s->db->fault_message = mfree(s->db->fault_message);
                if (db_fault_fires(s))
                        return s->db->fault_error;
                s->running = true;
        }
        return s->db->ops->step(s);
}

bool db_column_is_null(DbStatement *s, int i) {
        assert(s);
        return s->db->ops->column_is_null(s, i);
}

int64_t db_column_int64(DbStatement *s, int i) {
        assert(s);
        return s->db->ops->column_int64(s, i);
}

const char *db_column_text(DbStatement *s, int i) {
        assert(s);
        return s->db->ops->column_text(s, i);
}

size_t db_column_bytes(DbStatement *s, int i) {
        assert(s);
        return s->db->ops->column_bytes(s, i);
}

void db_reset(DbStatement *s) {
        assert(s);
        s->running = false;
        s->db->ops->reset(s);
}

const char *db_statement_sql(DbStatement *s) {
        assert(s);
        return s->sql;
}

int64_t db_changes(Db *db) {
        assert(db);
        return db->ops->changes(db);
}

/* Statements run by db_exec() and the transaction calls are injectable too, by their SQL text. */
static int db_fault_for_sql(Db *db, const char *sql) {
        DbStatement probe = { .db = db, .sql = (char *) sql };

        db->fault_message = mfree(db->fault_message);
        return db_fault_fires(&probe) ? db->fault_error : 0;
}

int db_exec(Db *db, const char *sql) {
        int r;

        assert(db);
        assert(sql);

        r = db_fault_for_sql(db, sql);
        if (r < 0)
                return r;
        return db->ops->exec(db, sql);
}

int db_begin(Db *db) {
        int r;

        assert(db);
        r = db_fault_for_sql(db, "BEGIN");
        if (r < 0)
                return r;
        return db->ops->begin(db);
}

int db_commit(Db *db) {
        int r;

        assert(db);
        r = db_fault_for_sql(db, "COMMIT");
        if (r < 0)
                return r;
        r = db->ops->commit(db);
        if (r >= 0 && db->lost_commit_countdown > 0 && --db->lost_commit_countdown == 0) {
                log_notice("Test fault injection: the answer to a COMMIT that was applied is lost.");
                free(db->fault_message);
                db->fault_message = strdup("test fault injection: the answer to the COMMIT was lost");
                return -ECONNRESET;
        }
        return r;
}

int db_rollback(Db *db) {
        assert(db);
        return db->ops->rollback(db);
}

bool db_in_transaction(Db *db) {
        assert(db);
        return db->ops->in_transaction(db);
}

int db_next_id(Db *db, const char *sequence, int64_t *ret) {
        assert(db);
        assert(sequence);
        assert(ret);
        return db->ops->next_id(db, sequence, ret);
}

void db_set_busy_timeout(Db *db, unsigned msec) {
        assert(db);
        db->ops->set_busy_timeout(db, msec);
}

void db_set_response_deadline(Db *db, unsigned msec) {
        assert(db);
        if (db->ops->set_response_deadline)
                db->ops->set_response_deadline(db, msec);
}

void db_inject_lost_commit_reply(Db *db, unsigned n) {
        assert(db);
        db->lost_commit_countdown = n;
}

int db_inject_fault(Db *db, const char *sql_prefix, unsigned n, unsigned count, int error) {
        assert(db);
        assert(error < 0);

        db->fault_sql = mfree(db->fault_sql);
        if (!sql_prefix || n == 0 || count == 0)
                return 0;
        db->fault_sql = strdup(sql_prefix);
        if (!db->fault_sql)
                return -ENOMEM;
        db->fault_countdown = n;
        db->fault_count = count;
        db->fault_error = error;
        return 0;
}
