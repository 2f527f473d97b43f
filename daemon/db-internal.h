/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What a backend implements (db-sqlite.c, db-postgresql.c); only db*.c include this. A backend's connection
 * and statement structs start with Db and DbStatement, so db.c can hand them out as those. */

#include "db.h"

typedef struct DbOps {
        int (*open)(const char *location, DbOpenFlags flags, Db **ret, char **ret_message);
        void (*free)(Db *db);
        const char *(*errmsg)(Db *db);
        int (*prepare)(Db *db, const char *sql, DbStatement **ret);
        int (*bind_int64)(DbStatement *s, int i, int64_t v);
        int (*bind_text)(DbStatement *s, int i, const char *v);
        int (*bind_null)(DbStatement *s, int i);
        int (*step)(DbStatement *s);
        bool (*column_is_null)(DbStatement *s, int i);
        int64_t (*column_int64)(DbStatement *s, int i);
        const char *(*column_text)(DbStatement *s, int i);
        size_t (*column_bytes)(DbStatement *s, int i);
        void (*reset)(DbStatement *s);
        int64_t (*changes)(Db *db);
        int (*exec)(Db *db, const char *sql);
        int (*begin)(Db *db);
        int (*commit)(Db *db);
        int (*rollback)(Db *db);
        bool (*in_transaction)(Db *db);
        int (*next_id)(Db *db, const char *sequence, int64_t *ret);
        void (*set_busy_timeout)(Db *db, unsigned msec);
        void (*set_response_deadline)(Db *db, unsigned msec);   /* may be NULL */
} DbOps;

struct Db {
        const DbOps *ops;
        DbBackend backend;
        char *location;         /* for messages: a path, or the URI without its password */

        /* db_inject_fault() */
        char *fault_sql;
        unsigned fault_countdown;
        unsigned fault_count;
        int fault_error;
        char *fault_message;
        unsigned lost_commit_countdown;        /* db_inject_lost_commit_reply() */
};

struct DbStatement {
        Db *db;
        char *sql;              /* as the caller wrote it (?N parameters) */
        bool running;           /* db_step() ran it and rows may follow; cleared by db_reset() */
};

extern const DbOps db_sqlite_ops;
extern const DbOps db_postgresql_ops;

/* For backends: fills the common part of a new connection / statement. */
int db_init(Db *db, const DbOps *ops, DbBackend backend, const char *location);
void db_done(Db *db);
int db_statement_init(DbStatement *s, Db *db, const char *sql);
void db_statement_done(DbStatement *s);
