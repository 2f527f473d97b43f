/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the files of the job repository share; nothing outside them includes this (but schedule-store.c, whose
 * statements are the repository's):
 *   repository.c            launching, steps, queries, operations; errors and transactions
 *   repository-sql.c        the statements (one text per dialect) and their cache per connection
 *   repository-schema.c     opening the connection, the schema and its migrations, the file-replaced check
 *   repository-retention.c  repository_delete_old()
 *   repository-purge.c      repository_purge() */

#include <sys/types.h>

#include "db.h"
#include "repository.h"

/* Every statement the repository runs, prepared once per connection and reused: preparing dominates the cost of
 * the small statements a launch is made of. */
typedef enum Sql {
        SQL_FIND_INSTANCE,
        SQL_LOCK_INSTANCE,
        SQL_INSERT_INSTANCE,
        SQL_GET_INSTANCE,
        SQL_INSTANCE_STATUSES,
        SQL_LAST_EXECUTION_OF_INSTANCE,
        SQL_STEP_STATUSES_OF_EXECUTION,
        SQL_INSERT_EXECUTION,
        SQL_INSERT_PARAM,
        SQL_GET_PARAMS,
        SQL_INSERT_JOB_CONTEXT,
        SQL_GET_JOB_CONTEXT,
        SQL_UPDATE_JOB_CONTEXT,
        SQL_UPDATE_EXECUTION,
        SQL_EXECUTION_VERSION,
        SQL_GET_EXECUTION,
        SQL_INSERT_STEP,
        SQL_INSERT_STEP_CONTEXT,
        SQL_GET_STEP_CONTEXT,
        SQL_UPDATE_STEP_CONTEXT,
        SQL_UPDATE_STEP,
        SQL_STEP_VERSION,
        SQL_STEP_STATE,
        SQL_EXECUTION_STATE,
        SQL_FIND_STARTED_STEP,
        SQL_GET_STEPS,
        SQL_LAST_STEP,
        SQL_STEP_COUNT,
        SQL_JOB_NAMES,
        SQL_INSTANCES_OF_JOB,
        SQL_INSTANCE_COUNT,
        SQL_MAX_RUN_ID,
        SQL_LIST_EXECUTIONS,
        SQL_LIST_EXECUTIONS_OF_JOB,
        SQL_LIST_EXECUTIONS_OF_INSTANCE,
        SQL_LAST_EXECUTION_OF_JOB,
        SQL_RUNNING_EXECUTIONS,
        SQL_FAIL_RUNNING_STEPS,
        SQL_FAIL_ORPHAN_STEPS,
        SQL_FAIL_ALL_ORPHAN_STEPS,
        /* batchd's own tables (schedule-store.c) */
        SQL_GET_LAST_FIRE,
        SQL_SET_LAST_FIRE,
        SQL_ADD_NONRUN,
        SQL_LIST_NONRUNS,
        SQL_LIST_NONRUNS_OF_JOB,
        SQL_GET_JOB_ENABLED,
        SQL_SET_JOB_ENABLED,
        SQL_CLEAR_JOB_ENABLED,
        SQL_PURGE_NONRUNS_OLDER,
        SQL_PURGE_NONRUNS_KEEP,
        _SQL_MAX,
} Sql;

#define RUNNING_STATUSES "('STARTING', 'STARTED', 'STOPPING')"
/* The same test spelled as the partial index BATCH_JOB_EXEC_RUNNING_IDX spells it (schema/004), so the planner can
 * use that index: it only matches its own expression. */
#define RUNNING(alias) "(" alias ".STATUS = 'STARTING' OR " alias ".STATUS = 'STARTED' OR " alias ".STATUS = 'STOPPING')"

/* The connection's schema queries (repository_migrate()), prepared once like the others. */
typedef enum SchemaSql {
        /* SQLite */
        SCHEMA_SQL_USER_VERSION,
        SCHEMA_SQL_FOREIGN_TABLES,
        SCHEMA_SQL_SPRING_TABLES,
        /* PostgreSQL */
        SCHEMA_SQL_PG_TABLES,
        SCHEMA_SQL_PG_VERSION,
        _SCHEMA_SQL_MAX,
} SchemaSql;

struct Repository {
        Db *db;
        bool read_only;
        bool timestamps_utc;
        unsigned tx_depth;
        uint64_t context_size_max;
        DbStatement *stmts[_SQL_MAX];
        DbStatement *schema_stmts[_SCHEMA_SQL_MAX];
        DbStatement *plan_stmts[_SQL_MAX];      /* repository_query_plans() */
        DbStatement *retention_stmt;            /* repository_delete_old() */
        DbStatement *purge_stmt;                /* repository_purge() */

        /* The file we opened, to notice when the path names another one (deleted or replaced). */
        dev_t dev;
        ino_t ino;
        bool replaced;
        void (*replaced_callback)(Repository *r, void *userdata);
        void *replaced_userdata;

        ContextFormat context_format;    /* how contexts are written; reading takes any */

        /* COMMITs whose outcome is unknown: the connection to the server broke while one was under way
         * (-ECONNRESET, -ETIMEDOUT), so it may or may not have been applied. From the first one on, a retried
         * write checks whether its earlier attempt went through before it writes again (never applied twice). */
        unsigned unknown_commits;
};

/* The statement's text in the connection's dialect. */
const char *repository_sql(Repository *r, Sql id);
/* The connection's prepared statement for id: prepared on first use, then reused for the connection's life.
 * Reset it when done (_cleanup_db_reset_). */
int repository_statement(Repository *r, Sql id, DbStatement **ret);

/* error_code is a negative errno of db.h: puts "Failed to <what> in <location>: <the database's words>" into
 * *error (DatabaseBusy for -EAGAIN, Database otherwise) and returns error_code. */
int repository_error(Repository *r, int error_code, sd_bus_error *error, const char *what);

/* One level of a nested transaction (RepositoryTransaction in repository.h is the public guard). */
int repository_begin(Repository *r, sd_bus_error *error);
int repository_commit(Repository *r, sd_bus_error *error);
void repository_rollback(Repository *r);

/* Rolls back whatever transaction level is still open when the guard goes out of scope. */
static inline void transaction_rollbackp(Repository **r) {
        if (*r)
                repository_rollback(*r);
}

#define _cleanup_transaction_ _cleanup_(transaction_rollbackp)
