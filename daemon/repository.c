/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "batch-error.h"
#include "log.h"
#include "repository.h"
#include "schema.h"

/* Every statement the repository runs, prepared once per connection and reused: preparing dominates the cost of
 * the small statements a launch is made of. */
typedef enum Sql {
        SQL_BEGIN,
        SQL_COMMIT,
        SQL_ROLLBACK,
        SQL_NEXT_JOB_ID,
        SQL_TRIM_JOB_SEQ,
        SQL_NEXT_JOB_EXECUTION_ID,
        SQL_TRIM_JOB_EXECUTION_SEQ,
        SQL_NEXT_STEP_EXECUTION_ID,
        SQL_TRIM_STEP_EXECUTION_SEQ,
        SQL_FIND_INSTANCE,
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
        _SQL_MAX,
} Sql;

#define EXECUTION_COLUMNS                                                               \
        "E.JOB_EXECUTION_ID, E.VERSION, E.JOB_INSTANCE_ID, I.JOB_NAME, E.CREATE_TIME, " \
        "E.START_TIME, E.END_TIME, E.LAST_UPDATED, E.STATUS, E.EXIT_CODE, E.EXIT_MESSAGE"
#define EXECUTION_FROM \
        " FROM BATCH_JOB_EXECUTION E JOIN BATCH_JOB_INSTANCE I ON I.JOB_INSTANCE_ID = E.JOB_INSTANCE_ID"
#define STEP_COLUMNS                                                                            \
        "S.STEP_EXECUTION_ID, S.VERSION, S.JOB_EXECUTION_ID, S.STEP_NAME, S.CREATE_TIME, "      \
        "S.START_TIME, S.END_TIME, S.LAST_UPDATED, S.STATUS, S.COMMIT_COUNT, S.READ_COUNT, "    \
        "S.FILTER_COUNT, S.WRITE_COUNT, S.READ_SKIP_COUNT, S.WRITE_SKIP_COUNT, "                \
        "S.PROCESS_SKIP_COUNT, S.ROLLBACK_COUNT, S.EXIT_CODE, S.EXIT_MESSAGE, "                 \
        "C.SHORT_CONTEXT, C.SERIALIZED_CONTEXT"
#define STEP_FROM                                                                               \
        " FROM BATCH_STEP_EXECUTION S"                                                          \
        " LEFT JOIN BATCH_STEP_EXECUTION_CONTEXT C ON C.STEP_EXECUTION_ID = S.STEP_EXECUTION_ID"
#define RUNNING_STATUSES "('STARTING', 'STARTED', 'STOPPING')"
/* The same test spelled as the partial index BATCH_JOB_EXEC_RUNNING_IDX spells it (schema/004), so the planner can
 * use that index: it only matches its own expression. */
#define RUNNING(alias) "(" alias ".STATUS = 'STARTING' OR " alias ".STATUS = 'STARTED' OR " alias ".STATUS = 'STOPPING')"

static const char *const sql_text[_SQL_MAX] = {
        [SQL_BEGIN]    = "BEGIN IMMEDIATE",
        [SQL_COMMIT]   = "COMMIT",
        [SQL_ROLLBACK] = "ROLLBACK",
        /* Spring's SqliteMaxValueIncrementer: the sequence tables hand out ids and are trimmed behind. */
        [SQL_NEXT_JOB_ID]                = "INSERT INTO BATCH_JOB_SEQ VALUES (NULL)",
        [SQL_TRIM_JOB_SEQ]               = "DELETE FROM BATCH_JOB_SEQ WHERE ID < ?1",
        [SQL_NEXT_JOB_EXECUTION_ID]      = "INSERT INTO BATCH_JOB_EXECUTION_SEQ VALUES (NULL)",
        [SQL_TRIM_JOB_EXECUTION_SEQ]     = "DELETE FROM BATCH_JOB_EXECUTION_SEQ WHERE ID < ?1",
        [SQL_NEXT_STEP_EXECUTION_ID]     = "INSERT INTO BATCH_STEP_EXECUTION_SEQ VALUES (NULL)",
        [SQL_TRIM_STEP_EXECUTION_SEQ]    = "DELETE FROM BATCH_STEP_EXECUTION_SEQ WHERE ID < ?1",
        [SQL_FIND_INSTANCE] =
                "SELECT JOB_INSTANCE_ID, VERSION FROM BATCH_JOB_INSTANCE WHERE JOB_NAME = ?1 AND JOB_KEY = ?2",
        [SQL_INSERT_INSTANCE] =
                "INSERT INTO BATCH_JOB_INSTANCE (JOB_INSTANCE_ID, VERSION, JOB_NAME, JOB_KEY) VALUES (?1, 0, ?2, ?3)",
        [SQL_GET_INSTANCE] =
                "SELECT JOB_INSTANCE_ID, VERSION, JOB_NAME, JOB_KEY FROM BATCH_JOB_INSTANCE WHERE JOB_INSTANCE_ID = ?1",
        [SQL_INSTANCE_STATUSES] =
                "SELECT STATUS, COUNT(*) FROM BATCH_JOB_EXECUTION WHERE JOB_INSTANCE_ID = ?1 GROUP BY STATUS",
        [SQL_LAST_EXECUTION_OF_INSTANCE] =
                "SELECT MAX(JOB_EXECUTION_ID) FROM BATCH_JOB_EXECUTION WHERE JOB_INSTANCE_ID = ?1",
        [SQL_STEP_STATUSES_OF_EXECUTION] =
                "SELECT STEP_NAME, STATUS FROM BATCH_STEP_EXECUTION WHERE JOB_EXECUTION_ID = ?1 "
                "ORDER BY STEP_EXECUTION_ID",
        [SQL_INSERT_EXECUTION] =
                "INSERT INTO BATCH_JOB_EXECUTION (JOB_EXECUTION_ID, VERSION, JOB_INSTANCE_ID, CREATE_TIME, "
                "START_TIME, END_TIME, STATUS, EXIT_CODE, EXIT_MESSAGE, LAST_UPDATED) "
                "VALUES (?1, 0, ?2, ?3, NULL, NULL, ?4, ?5, '', ?3)",
        [SQL_INSERT_PARAM] =
                "INSERT INTO BATCH_JOB_EXECUTION_PARAMS (JOB_EXECUTION_ID, PARAMETER_NAME, PARAMETER_TYPE, "
                "PARAMETER_VALUE, IDENTIFYING) VALUES (?1, ?2, ?3, ?4, ?5)",
        [SQL_GET_PARAMS] =
                "SELECT PARAMETER_NAME, PARAMETER_TYPE, PARAMETER_VALUE, IDENTIFYING "
                "FROM BATCH_JOB_EXECUTION_PARAMS WHERE JOB_EXECUTION_ID = ?1 ORDER BY rowid",
        [SQL_INSERT_JOB_CONTEXT] =
                "INSERT INTO BATCH_JOB_EXECUTION_CONTEXT (JOB_EXECUTION_ID, SHORT_CONTEXT, SERIALIZED_CONTEXT) "
                "VALUES (?1, ?2, ?3)",
        [SQL_GET_JOB_CONTEXT] =
                "SELECT SHORT_CONTEXT, SERIALIZED_CONTEXT FROM BATCH_JOB_EXECUTION_CONTEXT WHERE JOB_EXECUTION_ID = ?1",
        [SQL_UPDATE_JOB_CONTEXT] =
                "UPDATE BATCH_JOB_EXECUTION_CONTEXT SET SHORT_CONTEXT = ?2, SERIALIZED_CONTEXT = ?3 "
                "WHERE JOB_EXECUTION_ID = ?1",
        [SQL_UPDATE_EXECUTION] =
                "UPDATE BATCH_JOB_EXECUTION SET START_TIME = ?3, END_TIME = ?4, STATUS = ?5, EXIT_CODE = ?6, "
                "EXIT_MESSAGE = ?7, VERSION = ?2 + 1, LAST_UPDATED = ?8 "
                "WHERE JOB_EXECUTION_ID = ?1 AND VERSION = ?2",
        [SQL_EXECUTION_VERSION] =
                "SELECT VERSION FROM BATCH_JOB_EXECUTION WHERE JOB_EXECUTION_ID = ?1",
        [SQL_GET_EXECUTION] =
                "SELECT " EXECUTION_COLUMNS EXECUTION_FROM " WHERE E.JOB_EXECUTION_ID = ?1",
        [SQL_INSERT_STEP] =
                "INSERT INTO BATCH_STEP_EXECUTION (STEP_EXECUTION_ID, VERSION, STEP_NAME, JOB_EXECUTION_ID, "
                "CREATE_TIME, START_TIME, END_TIME, STATUS, COMMIT_COUNT, READ_COUNT, FILTER_COUNT, WRITE_COUNT, "
                "READ_SKIP_COUNT, WRITE_SKIP_COUNT, PROCESS_SKIP_COUNT, ROLLBACK_COUNT, EXIT_CODE, EXIT_MESSAGE, "
                "LAST_UPDATED) VALUES (?1, 0, ?2, ?3, ?4, NULL, NULL, 'STARTING', 0, 0, 0, 0, 0, 0, 0, 0, "
                "'EXECUTING', '', ?4)",
        [SQL_INSERT_STEP_CONTEXT] =
                "INSERT INTO BATCH_STEP_EXECUTION_CONTEXT (STEP_EXECUTION_ID, SHORT_CONTEXT, SERIALIZED_CONTEXT) "
                "VALUES (?1, ?2, ?3)",
        [SQL_GET_STEP_CONTEXT] =
                "SELECT SHORT_CONTEXT, SERIALIZED_CONTEXT FROM BATCH_STEP_EXECUTION_CONTEXT WHERE STEP_EXECUTION_ID = ?1",
        [SQL_UPDATE_STEP_CONTEXT] =
                "UPDATE BATCH_STEP_EXECUTION_CONTEXT SET SHORT_CONTEXT = ?2, SERIALIZED_CONTEXT = ?3 "
                "WHERE STEP_EXECUTION_ID = ?1",
        [SQL_UPDATE_STEP] =
                "UPDATE BATCH_STEP_EXECUTION SET START_TIME = ?3, END_TIME = ?4, STATUS = ?5, COMMIT_COUNT = ?6, "
                "READ_COUNT = ?7, FILTER_COUNT = ?8, WRITE_COUNT = ?9, READ_SKIP_COUNT = ?10, "
                "WRITE_SKIP_COUNT = ?11, PROCESS_SKIP_COUNT = ?12, ROLLBACK_COUNT = ?13, EXIT_CODE = ?14, "
                "EXIT_MESSAGE = ?15, VERSION = ?2 + 1, LAST_UPDATED = ?16 "
                "WHERE STEP_EXECUTION_ID = ?1 AND VERSION = ?2",
        [SQL_STEP_VERSION] =
                "SELECT VERSION FROM BATCH_STEP_EXECUTION WHERE STEP_EXECUTION_ID = ?1",
        [SQL_GET_STEPS] =
                "SELECT " STEP_COLUMNS STEP_FROM " WHERE S.JOB_EXECUTION_ID = ?1 ORDER BY S.STEP_EXECUTION_ID",
        /* Spring's getLastStepExecution(): across all executions of the instance, newest first. Newest by id:
         * the stored times are wall-clock text that repeats in the autumn DST hour (and can be UTC or local,
         * see "timestamps"), while ids only ever grow. */
        /* CROSS JOIN pins the executions of the instance as the outer loop; left to itself the planner may
         * walk every step of that name in the whole history. */
        [SQL_LAST_STEP] =
                "SELECT " STEP_COLUMNS " FROM BATCH_JOB_EXECUTION E"
                " CROSS JOIN BATCH_STEP_EXECUTION S ON S.JOB_EXECUTION_ID = E.JOB_EXECUTION_ID"
                " LEFT JOIN BATCH_STEP_EXECUTION_CONTEXT C ON C.STEP_EXECUTION_ID = S.STEP_EXECUTION_ID"
                " WHERE E.JOB_INSTANCE_ID = ?1 AND S.STEP_NAME = ?2"
                " ORDER BY S.STEP_EXECUTION_ID DESC LIMIT 1",
        [SQL_STEP_COUNT] =
                "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION E"
                " CROSS JOIN BATCH_STEP_EXECUTION S ON S.JOB_EXECUTION_ID = E.JOB_EXECUTION_ID"
                " WHERE E.JOB_INSTANCE_ID = ?1 AND S.STEP_NAME = ?2",
        [SQL_JOB_NAMES] =
                "SELECT DISTINCT JOB_NAME FROM BATCH_JOB_INSTANCE ORDER BY JOB_NAME",
        [SQL_INSTANCES_OF_JOB] =
                "SELECT JOB_INSTANCE_ID, VERSION, JOB_NAME, JOB_KEY FROM BATCH_JOB_INSTANCE WHERE JOB_NAME = ?1 "
                "ORDER BY JOB_INSTANCE_ID DESC LIMIT ?3 OFFSET ?2",
        [SQL_INSTANCE_COUNT] =
                "SELECT COUNT(*) FROM BATCH_JOB_INSTANCE WHERE JOB_NAME = ?1",
        /* The highest run.id any execution of the job was launched with (Spring stores canonical longs). First
         * among the 1000 highest run.ids of all jobs, from BATCHD_RUN_ID_IDX (schema/005): that is exact
         * whenever the job has one there, and about a millisecond at 200,000 executions. Only a job with none
         * there walks its own executions' parameters. */
        [SQL_MAX_RUN_ID] =
                "SELECT COALESCE("
                "(SELECT MAX(T.V) FROM (SELECT CAST(P.PARAMETER_VALUE AS INTEGER) AS V, P.JOB_EXECUTION_ID AS X"
                " FROM BATCH_JOB_EXECUTION_PARAMS P INDEXED BY BATCHD_RUN_ID_IDX"
                " WHERE P.PARAMETER_NAME = 'run.id' AND P.PARAMETER_TYPE = 'java.lang.Long'"
                " ORDER BY CAST(P.PARAMETER_VALUE AS INTEGER) DESC LIMIT 1000) T"
                " CROSS JOIN BATCH_JOB_EXECUTION E ON E.JOB_EXECUTION_ID = T.X"
                " CROSS JOIN BATCH_JOB_INSTANCE I ON I.JOB_INSTANCE_ID = E.JOB_INSTANCE_ID WHERE I.JOB_NAME = ?1),"
                "(SELECT MAX(CAST(P.PARAMETER_VALUE AS INTEGER)) FROM BATCH_JOB_INSTANCE I"
                " CROSS JOIN BATCH_JOB_EXECUTION E ON E.JOB_INSTANCE_ID = I.JOB_INSTANCE_ID"
                " CROSS JOIN BATCH_JOB_EXECUTION_PARAMS P ON P.JOB_EXECUTION_ID = E.JOB_EXECUTION_ID"
                " WHERE I.JOB_NAME = ?1 AND P.PARAMETER_NAME = 'run.id' AND P.PARAMETER_TYPE = 'java.lang.Long'))",
        /* One statement per filter: a `(?1 IS NULL OR ...)` filter cannot use an index, so the planner walks the
         * whole history. test-repository's test_query_plans checks each plan. Unfiltered, the walk backwards
         * along the primary key stops after offset + limit rows. */
        [SQL_LIST_EXECUTIONS] =
                "SELECT " EXECUTION_COLUMNS EXECUTION_FROM
                " ORDER BY E.JOB_EXECUTION_ID DESC LIMIT ?4 OFFSET ?3",
        /* The page's ids come from the two covering indexes alone (by name, then by instance); only the rows of
         * the page are read. */
        [SQL_LIST_EXECUTIONS_OF_JOB] =
                "SELECT " EXECUTION_COLUMNS EXECUTION_FROM
                " WHERE E.JOB_EXECUTION_ID IN (SELECT E2.JOB_EXECUTION_ID FROM BATCH_JOB_INSTANCE I2"
                "  CROSS JOIN BATCH_JOB_EXECUTION E2 ON E2.JOB_INSTANCE_ID = I2.JOB_INSTANCE_ID"
                "  WHERE I2.JOB_NAME = ?1 ORDER BY E2.JOB_EXECUTION_ID DESC LIMIT ?4 OFFSET ?3)"
                " ORDER BY E.JOB_EXECUTION_ID DESC",
        [SQL_LIST_EXECUTIONS_OF_INSTANCE] =
                "SELECT " EXECUTION_COLUMNS EXECUTION_FROM
                " WHERE E.JOB_INSTANCE_ID = ?2 AND (?1 IS NULL OR I.JOB_NAME = ?1)"
                " ORDER BY E.JOB_EXECUTION_ID DESC LIMIT ?4 OFFSET ?3",
        /* ListJobs and the job objects' LastExecutionId/LastStatus: one index lookup per instance of the job. */
        [SQL_LAST_EXECUTION_OF_JOB] =
                "SELECT " EXECUTION_COLUMNS EXECUTION_FROM
                " WHERE E.JOB_EXECUTION_ID = (SELECT MAX(E2.JOB_EXECUTION_ID) FROM BATCH_JOB_INSTANCE I2"
                "  CROSS JOIN BATCH_JOB_EXECUTION E2 ON E2.JOB_INSTANCE_ID = I2.JOB_INSTANCE_ID"
                "  WHERE I2.JOB_NAME = ?1)",
        [SQL_RUNNING_EXECUTIONS] =
                "SELECT " EXECUTION_COLUMNS EXECUTION_FROM
                " WHERE " RUNNING("E") " AND (?1 IS NULL OR I.JOB_NAME = ?1)"
                " ORDER BY E.JOB_EXECUTION_ID LIMIT ?2",
        [SQL_FAIL_RUNNING_STEPS] =
                "UPDATE BATCH_STEP_EXECUTION SET STATUS = 'FAILED', EXIT_CODE = 'FAILED', EXIT_MESSAGE = ?2, "
                "END_TIME = ?3, LAST_UPDATED = ?3, VERSION = VERSION + 1 "
                "WHERE JOB_EXECUTION_ID = ?1 AND STATUS IN " RUNNING_STATUSES,
        /* A step on record as running under an execution that ended: left by a batchd that recorded the job's
         * end but not the step's. Nothing can be running it. One statement per case, each on an index (the
         * step executions of one job execution; the partial index of running steps, schema/006). */
        [SQL_FAIL_ORPHAN_STEPS] =
                "UPDATE BATCH_STEP_EXECUTION SET STATUS = 'FAILED', EXIT_CODE = 'FAILED', EXIT_MESSAGE = ?2, "
                "END_TIME = COALESCE(END_TIME, ?3), LAST_UPDATED = ?3, VERSION = VERSION + 1 "
                "WHERE JOB_EXECUTION_ID = ?1 AND STATUS IN " RUNNING_STATUSES " "
                "AND NOT EXISTS (SELECT 1 FROM BATCH_JOB_EXECUTION E WHERE E.JOB_EXECUTION_ID = ?1 AND " RUNNING("E") ")",
        [SQL_FAIL_ALL_ORPHAN_STEPS] =
                "UPDATE BATCH_STEP_EXECUTION SET STATUS = 'FAILED', EXIT_CODE = 'FAILED', EXIT_MESSAGE = ?2, "
                "END_TIME = COALESCE(END_TIME, ?3), LAST_UPDATED = ?3, VERSION = VERSION + 1 "
                "WHERE " RUNNING("BATCH_STEP_EXECUTION") " AND NOT EXISTS (SELECT 1 FROM BATCH_JOB_EXECUTION E "
                "WHERE E.JOB_EXECUTION_ID = BATCH_STEP_EXECUTION.JOB_EXECUTION_ID AND " RUNNING("E") ")",
};

#define ORPHAN_STEP_MESSAGE "The job execution ended while this step was on record as running; marked FAILED."

struct Repository {
        sqlite3 *db;
        char *path;
        bool read_only;
        bool timestamps_utc;
        unsigned tx_depth;
        uint64_t context_size_max;
        sqlite3_stmt *stmts[_SQL_MAX];

        /* The file we opened, to notice when the path names another one (deleted or replaced). */
        dev_t dev;
        ino_t ino;
        bool replaced;
        void (*replaced_callback)(Repository *r, void *userdata);
        void *replaced_userdata;

        /* Tests only (repository_inject_fault()): the nth execution of a statement whose SQL starts with
         * fault_sql fails with fault_rc instead of running. */
        char *fault_sql;
        unsigned fault_countdown;
        unsigned fault_count;           /* that many executions in a row */
        int fault_rc;

        ContextFormat context_format;    /* how contexts are written; reading takes any */
};

/* ---- errors ---- */

static int errno_from_sqlite(int rc) {
        switch (rc & 0xff) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                /* Not EBUSY: that is JobExecutionAlreadyRunning. Another connection holds the lock; the caller
                 * tries again later (docs/reliability.md). */
                return -EAGAIN;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EBADMSG;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_CANTOPEN:
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        default:
                return -EIO;
        }
}

static int repository_error(Repository *r, int rc, sd_bus_error *error, const char *what) {
        int e = errno_from_sqlite(rc);

        if (e == -ENOMEM)
                return -ENOMEM;
        (void) sd_bus_error_setf(error, e == -EAGAIN ? BATCH_ERROR_DATABASE_BUSY : BATCH_ERROR_DATABASE,
                                 "Failed to %s in %s: %s", what,
                                 r ? r->path : "database",
                                 /* The connection's message, when it is about this error (an injected fault is not). */
                                 r && r->db && (sqlite3_errcode(r->db) & 0xff) == (rc & 0xff) ?
                                 sqlite3_errmsg(r->db) : sqlite3_errstr(rc));
        return e;
}

/* ---- statements and transactions ---- */

static void stmt_resetp(sqlite3_stmt **s) {
        if (*s) {
                (void) sqlite3_reset(*s);
                (void) sqlite3_clear_bindings(*s);
        }
}

#define _cleanup_stmt_ _cleanup_(stmt_resetp)

/* Every statement runs through here, so tests can make any one of them fail (repository_inject_fault()). */
static int repository_sqlite_step(Repository *r, sqlite3_stmt *s) {
        if (r->fault_sql && strneq(sqlite3_sql(s), r->fault_sql, strlen(r->fault_sql)) && --r->fault_countdown == 0) {
                log_notice("Test fault injection: \"%s\" fails with %s.", r->fault_sql, sqlite3_errstr(r->fault_rc));
                if (--r->fault_count > 0)
                        r->fault_countdown = 1;
                else
                        r->fault_sql = mfree(r->fault_sql);
                return r->fault_rc;
        }
        return sqlite3_step(s);
}

static int repository_stmt(Repository *r, Sql id, sqlite3_stmt **ret) {
        int rc;

        if (!r->stmts[id]) {
                rc = sqlite3_prepare_v3(r->db, sql_text[id], -1, SQLITE_PREPARE_PERSISTENT, &r->stmts[id], NULL);
                if (rc != SQLITE_OK)
                        return errno_from_sqlite(rc);
        }
        *ret = r->stmts[id];
        return 0;
}

static int repository_exec_simple(Repository *r, Sql id) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int rc, k;

        k = repository_stmt(r, id, &s);
        if (k < 0)
                return k;
        rc = repository_sqlite_step(r, s);
        return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : rc;
}

/* Transactions nest: the outermost level is BEGIN IMMEDIATE/COMMIT, inner levels are savepoints. So every function
 * stays atomic on its own, a caller can group several of them into one disk write (RepositoryTransaction), and an
 * inner failure undoes exactly its own part. */
static int repository_savepoint(Repository *r, const char *verb, unsigned level, sd_bus_error *error) {
        char sql[64];
        int rc;

        (void) snprintf(sql, sizeof(sql), "%s batchd_%u", verb, level);
        rc = sqlite3_exec(r->db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                return repository_error(r, rc, error, "manage a savepoint");
        return 0;
}

/* SQLite rolls the whole transaction back by itself after some errors (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM).
 * A savepoint opened or released after that would run outside any transaction and commit on its own, so a
 * level that finds the transaction gone fails instead. */
static int repository_check_open(Repository *r, sd_bus_error *error) {
        if (r->tx_depth > 0 && sqlite3_get_autocommit(r->db))
                return sd_bus_error_setf(error, BATCH_ERROR_DATABASE,
                                         "The transaction in %s was rolled back after an error.", r->path), -EIO;
        return 0;
}

static int repository_begin(Repository *r, sd_bus_error *error) {
        int rc, k;

        if (r->read_only)
                return sd_bus_error_setf(error, BATCH_ERROR_DATABASE, "Database %s is opened read-only.", r->path),
                       -EROFS;
        if (r->tx_depth > 0) {
                k = repository_check_open(r, error);
                if (k < 0)
                        return k;
                k = repository_savepoint(r, "SAVEPOINT", r->tx_depth, error);
                if (k < 0)
                        return k;
                r->tx_depth++;
                return 0;
        }
        k = repository_check_file(r, error);
        if (k < 0)
                return k;
        rc = repository_exec_simple(r, SQL_BEGIN);
        if (rc < 0)
                return rc;
        if (rc != 0)
                return repository_error(r, rc, error, "begin a transaction");
        r->tx_depth = 1;
        return 0;
}

static void repository_rollback(Repository *r) {
        assert(r->tx_depth > 0);

        if (r->tx_depth > 1) {
                r->tx_depth--;
                if (!sqlite3_get_autocommit(r->db)) {
                        (void) repository_savepoint(r, "ROLLBACK TO", r->tx_depth, NULL);
                        (void) repository_savepoint(r, "RELEASE", r->tx_depth, NULL);
                }
                return;
        }
        if (!sqlite3_get_autocommit(r->db))
                (void) repository_exec_simple(r, SQL_ROLLBACK);
        r->tx_depth = 0;
}

/* Closes the innermost level. On failure the level stays open, for the caller's guard to roll back. */
static int repository_commit(Repository *r, sd_bus_error *error) {
        int rc, k;

        assert(r->tx_depth > 0);

        k = repository_check_open(r, error);
        if (k < 0)
                return k;
        if (r->tx_depth > 1) {
                k = repository_savepoint(r, "RELEASE", r->tx_depth - 1, error);
                if (k < 0)
                        return k;
                r->tx_depth--;
                return 0;
        }
        rc = repository_exec_simple(r, SQL_COMMIT);
        if (rc < 0)
                return rc;
        if (rc != 0)
                return repository_error(r, rc, error, "commit");
        r->tx_depth = 0;
        return 0;
}

int repository_transaction_open(Repository *r, RepositoryTransaction *ret, sd_bus_error *error) {
        int k;

        assert(r);
        assert(ret);

        *ret = (RepositoryTransaction) {};
        k = repository_begin(r, error);
        if (k < 0)
                return k;
        *ret = (RepositoryTransaction) { .repository = r, .depth = r->tx_depth };
        return 0;
}

/* Levels opened after this one and never closed are undone first: the guard's own level is what it closes. */
static void transaction_unwind(RepositoryTransaction *t) {
        while (t->repository->tx_depth > t->depth)
                repository_rollback(t->repository);
}

int repository_transaction_commit(RepositoryTransaction *t, sd_bus_error *error) {
        Repository *r;
        int k;

        assert(t);

        r = t->repository;
        if (!r || r->tx_depth < t->depth)
                /* Never opened, already closed, or an outer level went away under it. */
                return sd_bus_error_set(error, BATCH_ERROR_DATABASE, "No transaction is open."), -ENOTCONN;
        t->repository = NULL;
        transaction_unwind(&(RepositoryTransaction) { .repository = r, .depth = t->depth });
        k = repository_commit(r, error);
        if (k < 0)
                repository_rollback(r);
        return k;
}

void repository_transaction_done(RepositoryTransaction *t) {
        Repository *r;

        assert(t);

        r = TAKE_PTR(t->repository);
        if (!r || r->tx_depth < t->depth)
                return;
        transaction_unwind(&(RepositoryTransaction) { .repository = r, .depth = t->depth });
        repository_rollback(r);
}

int repository_check_file(Repository *r, sd_bus_error *error) {
        struct stat st;

        assert(r);

        if (r->ino == 0)        /* in memory */
                return 0;
        /* Only a missing file or another inode counts; a stat() that fails otherwise proves nothing. */
        if (!r->replaced) {
                if (stat(r->path, &st) < 0)
                        r->replaced = errno == ENOENT;
                else
                        r->replaced = st.st_dev != r->dev || st.st_ino != r->ino;
                if (r->replaced && r->replaced_callback)
                        r->replaced_callback(r, r->replaced_userdata);
        }
        if (r->replaced)
                return sd_bus_error_setf(error, BATCH_ERROR_DATABASE_REPLACED,
                                         "Database %s was deleted or replaced while batchd had it open; nothing "
                                         "is written to it until batchd is restarted or reloaded.", r->path),
                       -EIDRM;
        return 0;
}

bool repository_is_replaced(Repository *r) {
        return r && r->replaced;
}

void repository_set_replaced_callback(Repository *r, void (*callback)(Repository *r, void *userdata), void *userdata) {
        assert(r);
        r->replaced_callback = callback;
        r->replaced_userdata = userdata;
}

void repository_set_busy_timeout(Repository *r, unsigned msec) {
        assert(r);
        (void) sqlite3_busy_timeout(r->db, (int) MIN(msec, (unsigned) INT_MAX));
}

int repository_inject_fault(Repository *r, const char *sql_prefix, unsigned n, unsigned count, int rc) {
        assert(r);

        r->fault_sql = mfree(r->fault_sql);
        if (!sql_prefix || n == 0 || count == 0)
                return 0;
        r->fault_count = count;
        r->fault_sql = strdup(sql_prefix);
        if (!r->fault_sql)
                return -ENOMEM;
        r->fault_countdown = n;
        r->fault_rc = rc;
        return 0;
}

/* Cuts the last ":field" off spec and returns it. */
static char *split_last(char *spec) {
        char *colon = strrchr(spec, ':');

        if (!colon)
                return NULL;
        *colon = '\0';
        return colon + 1;
}

static bool parse_unsigned(const char *s, unsigned *ret) {
        unsigned long v;
        char *end;

        if (isempty(s) || !strchr("0123456789", s[0]))
                return false;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || *end != '\0' || v == 0 || v > UINT_MAX)
                return false;
        *ret = (unsigned) v;
        return true;
}

int repository_inject_fault_from_environment(Repository *r) {
        static const struct {
                const char *name;
                int rc;
        } codes[] = {
                { "BUSY",  SQLITE_BUSY  },
                { "FULL",  SQLITE_FULL  },
                { "IOERR", SQLITE_IOERR },
                { "NOMEM", SQLITE_NOMEM },
        };
        _cleanup_free_ char *spec = NULL;
        const char *e = getenv("BATCHD_TEST_FAULT");
        unsigned n, count = 1;
        char *field;
        int rc = -1;

        assert(r);

        if (isempty(e))
                return 0;
        spec = strdup(e);
        if (!spec)
                return -ENOMEM;
        /* "<sql prefix>:<n>:<code>[:<count>]"; the prefix may contain colons itself. */
        field = split_last(spec);
        if (field && parse_unsigned(field, &count))
                field = split_last(spec);
        for (size_t i = 0; field && i < ELEMENTSOF(codes); i++)
                if (streq(field, codes[i].name))
                        rc = codes[i].rc;
        field = rc >= 0 ? split_last(spec) : NULL;
        if (!field || !parse_unsigned(field, &n))
                return -EINVAL;
        log_warning("Test fault injection: executions %u to %u of \"%s...\" fail with %s.", n, n + count - 1, spec,
                    sqlite3_errstr(rc));
        return repository_inject_fault(r, spec, n, count, rc);
}

/* Rolls back whatever transaction level is still open when the guard goes out of scope. */
static void transaction_rollbackp(Repository **r) {
        if (*r)
                repository_rollback(*r);
}

#define _cleanup_transaction_ _cleanup_(transaction_rollbackp)

static int bind_text(sqlite3_stmt *s, int i, const char *v) {
        return sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

static int bind_time(Repository *r, sqlite3_stmt *s, int i, usec_t t) {
        char buf[TIMESTAMP_MAX];

        if (t == 0 || !repository_timestamp_format(r, t, buf))
                return sqlite3_bind_null(s, i);
        return sqlite3_bind_text(s, i, buf, -1, SQLITE_TRANSIENT);
}

static usec_t column_time(Repository *r, sqlite3_stmt *s, int i) {
        const char *t = (const char *) sqlite3_column_text(s, i);
        usec_t u;

        if (!t || repository_timestamp_parse(r, t, &u) < 0)
                return 0;
        return u;
}

static int column_strdup(sqlite3_stmt *s, int i, char **ret) {
        const char *t = (const char *) sqlite3_column_text(s, i);

        if (!t) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(t);
        return *ret ? 0 : -ENOMEM;
}

/* Runs a statement expected to produce no rows; maps failure into *error. */
static int step_done(Repository *r, sqlite3_stmt *s, sd_bus_error *error, const char *what) {
        int rc;

        rc = repository_sqlite_step(r, s);
        if (rc != SQLITE_DONE && rc != SQLITE_ROW)
                return repository_error(r, rc, error, what);
        return 0;
}

static int repository_next_id(Repository *r, Sql next, Sql trim, int64_t *ret, sd_bus_error *error) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL, *t = NULL;
        int64_t id;
        int k;

        k = repository_stmt(r, next, &s);
        if (k < 0)
                return repository_error(r, sqlite3_errcode(r->db), error, "prepare a statement");
        k = step_done(r, s, error, "allocate an id");
        if (k < 0)
                return k;
        id = sqlite3_last_insert_rowid(r->db);

        k = repository_stmt(r, trim, &t);
        if (k < 0)
                return repository_error(r, sqlite3_errcode(r->db), error, "prepare a statement");
        sqlite3_bind_int64(t, 1, id);
        k = step_done(r, t, error, "trim a sequence");
        if (k < 0)
                return k;

        *ret = id;
        return 0;
}

/* Prepares statement id into s, or fails the calling function with a Database error. */
#define PREPARE(r, id, s, error)                                                                       \
        do {                                                                                           \
                int _k_ = repository_stmt((r), (id), &(s));                                            \
                if (_k_ < 0)                                                                           \
                        return repository_error((r), sqlite3_errcode((r)->db), (error), "prepare a statement"); \
        } while (0)

/* ---- open, schema and migrations ---- */

static int repository_pragma(Repository *r, const char *sql, sd_bus_error *error) {
        int rc;

        rc = sqlite3_exec(r->db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                return repository_error(r, rc, error, "configure the database");
        return 0;
}

static int repository_query_int(Repository *r, const char *sql, int64_t *ret, sd_bus_error *error) {
        sqlite3_stmt *s = NULL;
        int rc;

        rc = sqlite3_prepare_v2(r->db, sql, -1, &s, NULL);
        if (rc != SQLITE_OK)
                return repository_error(r, rc, error, "read the database");
        rc = repository_sqlite_step(r, s);
        if (rc == SQLITE_ROW)
                *ret = sqlite3_column_int64(s, 0);
        else if (rc == SQLITE_DONE)
                *ret = 0;
        sqlite3_finalize(s);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                return repository_error(r, rc, error, "read the database");
        return 0;
}

static int repository_migrate(Repository *r, sd_bus_error *error) {
        int64_t version, foreign, spring;
        int k, rc;

        k = repository_query_int(r, "PRAGMA user_version", &version, error);
        if (k < 0)
                return k;
        if (version > (int64_t) schema_migrations_count)
                return sd_bus_error_setf(error, BATCH_ERROR_DATABASE,
                                         "Database %s has schema version %" PRIi64 ", newer than the %zu this batchd "
                                         "knows; refusing to touch it.", r->path, version, schema_migrations_count),
                       -EPROTONOSUPPORT;

        if (version == 0) {
                /* A database we did not create: adopt one that Spring Batch created (same tables), refuse
                 * anything else rather than mixing our tables into someone else's data. */
                k = repository_query_int(r,
                                         "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
                                         "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'BATCH\\_%' ESCAPE '\\' "
                                         "AND name NOT LIKE 'BATCHD\\_%' ESCAPE '\\'",
                                         &foreign, error);
                if (k < 0)
                        return k;
                if (foreign > 0)
                        return sd_bus_error_setf(error, BATCH_ERROR_DATABASE,
                                                 "Database %s holds tables that are not Spring Batch's; refusing to "
                                                 "use a foreign database.", r->path),
                               -EPROTONOSUPPORT;

                k = repository_query_int(r,
                                         "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
                                         "AND name = 'BATCH_JOB_INSTANCE'", &spring, error);
                if (k < 0)
                        return k;
                if (spring > 0)
                        version = 1;
        }

        if (version == (int64_t) schema_migrations_count)
                return 0;
        if (r->read_only)
                return sd_bus_error_setf(error, BATCH_ERROR_DATABASE,
                                         "Database %s has schema version %" PRIi64 " but %zu is needed; start batchd "
                                         "once to upgrade it.", r->path, version, schema_migrations_count),
                       -EPROTONOSUPPORT;

        for (size_t i = (size_t) version; i < schema_migrations_count; i++) {
                _cleanup_free_ char *sql = NULL;

                if (asprintf(&sql, "BEGIN IMMEDIATE; %s; PRAGMA user_version = %zu; COMMIT;",
                             schema_migrations[i], i + 1) < 0)
                        return -ENOMEM;
                rc = sqlite3_exec(r->db, sql, NULL, NULL, NULL);
                if (rc != SQLITE_OK) {
                        k = repository_error(r, rc, error, "upgrade the database schema");
                        (void) sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
                        return k;
                }
        }
        return 0;
}

int repository_open(const char *path, RepositoryOpenFlags flags, Repository **ret, sd_bus_error *error) {
        _cleanup_(repository_freep) Repository *r = NULL;
        bool memory;
        int k, rc;

        assert(path);
        assert(ret);

        memory = streq(path, REPOSITORY_MEMORY);

        r = calloc(1, sizeof(Repository));
        if (!r)
                return -ENOMEM;
        r->path = strdup(path);
        if (!r->path)
                return -ENOMEM;
        r->read_only = (flags & REPOSITORY_READ_ONLY) && !memory;
        r->timestamps_utc = flags & REPOSITORY_TIMESTAMPS_UTC;

        rc = sqlite3_open_v2(path, &r->db,
                             (r->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                             SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, NULL);
        if (rc != SQLITE_OK)
                return repository_error(r, rc, error, "open the database");

        /* Other writers (batchctl, a second batchd by mistake, sqlite3 in a shell) wait instead of failing. */
        (void) sqlite3_busy_timeout(r->db, 5000);
        (void) sqlite3_extended_result_codes(r->db, 1);

        /* A file that is not SQLite at all only shows on the first read. */
        {
                int64_t dummy;

                k = repository_query_int(r, "SELECT COUNT(*) FROM sqlite_master", &dummy, NULL);
                if (k < 0)
                        return sd_bus_error_setf(error, BATCH_ERROR_DATABASE,
                                                 "%s is not a usable SQLite database: %s", path,
                                                 sqlite3_errmsg(r->db)), k;
        }
        k = repository_pragma(r, "PRAGMA foreign_keys = ON; PRAGMA cache_size = -16384", error);
        if (k < 0)
                return k;

        if (!r->read_only && sqlite3_db_readonly(r->db, "main") > 0)
                return sd_bus_error_setf(error, BATCH_ERROR_DATABASE,
                                         "Database %s is read-only (check its permissions and those of its "
                                         "directory).", path), -EROFS;

        if (!memory && !r->read_only) {
                /* WAL lets readers (batchctl, sqlite3) look at history while a step commits. NORMAL sync in WAL
                 * mode is crash-safe for the process; only the last commits may be lost on power failure. */
                k = repository_pragma(r, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL", error);
                if (k < 0)
                        return k;
        }

        k = repository_migrate(r, error);
        if (k < 0)
                return k;

        if (!memory) {
                struct stat st;

                if (stat(path, &st) < 0)
                        return sd_bus_error_setf(error, BATCH_ERROR_DATABASE, "Failed to stat %s: %m", path), -errno;
                r->dev = st.st_dev;
                r->ino = st.st_ino;
        }

        *ret = TAKE_PTR(r);
        return 0;
}

Repository *repository_free(Repository *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < _SQL_MAX; i++)
                sqlite3_finalize(r->stmts[i]);
        sqlite3_close_v2(r->db);
        free(r->path);
        free(r->fault_sql);
        return mfree(r);
}

char *repository_timestamp_format(Repository *r, usec_t t, char buf[static TIMESTAMP_MAX]) {
        assert(r);
        return timestamp_format_zone(t, r->timestamps_utc, buf);
}

int repository_timestamp_parse(Repository *r, const char *s, usec_t *ret) {
        assert(r);
        return timestamp_parse_zone(s, r->timestamps_utc, ret);
}

struct sqlite3 *repository_get_database(Repository *r) {
        return r->db;
}

void repository_set_context_format(Repository *r, ContextFormat f) {
        assert(r);
        assert(f >= 0 && f < _CONTEXT_FORMAT_MAX);
        r->context_format = f;
}

int repository_schema_version(Repository *r) {
        int64_t v;
        int k;

        k = repository_query_int(r, "PRAGMA user_version", &v, NULL);
        return k < 0 ? k : (int) v;
}

/* ---- object lifetimes ---- */

JobInstance *job_instance_free(JobInstance *i) {
        if (!i)
                return NULL;
        free(i->job_name);
        free(i->job_key);
        return mfree(i);
}

void job_instance_array_free(JobInstance *a, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(a[i].job_name);
                free(a[i].job_key);
        }
        free(a);
}

JobExecution *job_execution_free(JobExecution *e) {
        if (!e)
                return NULL;
        free(e->job_name);
        free(e->exit_code);
        free(e->exit_message);
        job_parameters_done(&e->parameters);
        execution_context_free(e->context);
        return mfree(e);
}

void job_execution_array_free(JobExecution **a, size_t n) {
        for (size_t i = 0; i < n; i++)
                job_execution_free(a[i]);
        free(a);
}

StepExecution *step_execution_free(StepExecution *s) {
        if (!s)
                return NULL;
        free(s->step_name);
        free(s->exit_code);
        free(s->exit_message);
        execution_context_free(s->context);
        return mfree(s);
}

void step_execution_array_free(StepExecution **a, size_t n) {
        for (size_t i = 0; i < n; i++)
                step_execution_free(a[i]);
        free(a);
}

/* ---- contexts ---- */

static int context_bind(Repository *r, sqlite3_stmt *s, const ExecutionContext *c, char **ret_serialized,
                        char **ret_short) {
        _cleanup_free_ char *serialized = NULL, *shrt = NULL, *message = NULL;
        _cleanup_(execution_context_freep) ExecutionContext *empty = NULL;
        int k;

        if (!c) {
                k = execution_context_new(&empty);
                if (k < 0)
                        return k;
                c = empty;
        }
        k = execution_context_serialize_as(c, r->context_format, &serialized, &message);
        if (k < 0)
                return message ? log_warning_errno(k, "Cannot write an execution context as %s: %s",
                                                   context_format_to_string(r->context_format), message) : k;
        k = execution_context_short(serialized, &shrt);
        if (k < 0)
                return k;
        sqlite3_bind_text(s, 2, shrt, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, serialized, -1, SQLITE_STATIC);
        /* The bindings point into these strings until the statement is reset. */
        *ret_serialized = TAKE_PTR(serialized);
        *ret_short = TAKE_PTR(shrt);
        return 0;
}

/* size_max 0: no limit. what names the context in the message. */
static int context_save_limited(Repository *r, Sql id, int64_t owner, const ExecutionContext *c, uint64_t size_max,
                                const char *what, sd_bus_error *error) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        _cleanup_free_ char *serialized = NULL, *shrt = NULL;
        int k;

        PREPARE(r, id, s, error);
        sqlite3_bind_int64(s, 1, owner);
        k = context_bind(r, s, c, &serialized, &shrt);
        if (k < 0)
                return k;
        /* Measured on the serialization that is written anyway: the limit costs nothing. */
        if (size_max > 0 && strlen(serialized) > size_max)
                return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                         "The %s execution context would be %zu bytes, larger than the limit of "
                                         "%" PRIu64 " bytes (context_size_max)", what, strlen(serialized), size_max),
                       -E2BIG;
        k = step_done(r, s, error, "save an execution context");
        if (k < 0)
                return k;
        if (sqlite3_changes(r->db) == 0)
                return sd_bus_error_setf(error, BATCH_ERROR_DATABASE,
                                         "Execution context of %" PRIi64 " is missing in %s.", owner, r->path), -EIO;
        return 0;
}

static int context_save(Repository *r, Sql id, int64_t owner, const ExecutionContext *c, sd_bus_error *error) {
        return context_save_limited(r, id, owner, c, 0, NULL, error);
}

void repository_set_context_size_max(Repository *r, uint64_t size_max) {
        assert(r);
        r->context_size_max = size_max;
}

/* A stored context that cannot be read (the reason is logged), told apart from database errors: no SQLite
 * error maps to it (errno_from_sqlite()). */
#define CONTEXT_UNREADABLE (-EILSEQ)

/* SERIALIZED_CONTEXT is authoritative; SHORT_CONTEXT alone is enough when Spring left SERIALIZED_CONTEXT NULL.
 * Any format is read (context-format.h); what cannot be is logged with the reason, e.g. the Java class. */
static int context_from_columns(sqlite3_stmt *s, int short_col, int long_col, ExecutionContext **ret) {
        _cleanup_free_ char *message = NULL;
        int col = sqlite3_column_type(s, long_col) != SQLITE_NULL ? long_col : short_col;
        const char *text = (const char *) sqlite3_column_text(s, col);
        int k;

        k = execution_context_parse(text, text ? (size_t) sqlite3_column_bytes(s, col) : 0, ret, &message);
        if (k == -ENOMEM)
                return k;
        if (k < 0) {
                log_warning_errno(k, "Unreadable execution context: %s", strna(message));
                return CONTEXT_UNREADABLE;
        }
        return 0;
}

static int context_load(Repository *r, Sql id, int64_t owner, ExecutionContext **ret) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int k, rc;

        k = repository_stmt(r, id, &s);
        if (k < 0)
                return k;
        sqlite3_bind_int64(s, 1, owner);
        rc = repository_sqlite_step(r, s);
        if (rc == SQLITE_DONE)
                return execution_context_new(ret);
        if (rc != SQLITE_ROW)
                return errno_from_sqlite(rc);
        return context_from_columns(s, 0, 1, ret);
}

/* ---- reading rows ---- */

static int execution_from_row(Repository *r, sqlite3_stmt *s, JobExecution **ret) {
        _cleanup_(job_execution_freep) JobExecution *e = NULL;
        const char *status;
        int k;

        e = calloc(1, sizeof(JobExecution));
        if (!e)
                return -ENOMEM;
        e->id = sqlite3_column_int64(s, 0);
        e->version = sqlite3_column_int64(s, 1);
        e->job_instance_id = sqlite3_column_int64(s, 2);
        k = column_strdup(s, 3, &e->job_name);
        if (k < 0)
                return k;
        e->create_time = column_time(r, s, 4);
        e->start_time = column_time(r, s, 5);
        e->end_time = column_time(r, s, 6);
        e->last_updated = column_time(r, s, 7);
        status = (const char *) sqlite3_column_text(s, 8);
        e->status = batch_status_from_string(status);
        if (e->status < 0)
                e->status = BATCH_STATUS_UNKNOWN;
        k = column_strdup(s, 9, &e->exit_code);
        if (k < 0)
                return k;
        k = column_strdup(s, 10, &e->exit_message);
        if (k < 0)
                return k;

        *ret = TAKE_PTR(e);
        return 0;
}

static int step_from_row(Repository *r, sqlite3_stmt *s, StepExecution **ret) {
        _cleanup_(step_execution_freep) StepExecution *x = NULL;
        int k;

        x = calloc(1, sizeof(StepExecution));
        if (!x)
                return -ENOMEM;
        x->id = sqlite3_column_int64(s, 0);
        x->version = sqlite3_column_int64(s, 1);
        x->job_execution_id = sqlite3_column_int64(s, 2);
        k = column_strdup(s, 3, &x->step_name);
        if (k < 0)
                return k;
        x->create_time = column_time(r, s, 4);
        x->start_time = column_time(r, s, 5);
        x->end_time = column_time(r, s, 6);
        x->last_updated = column_time(r, s, 7);
        x->status = batch_status_from_string((const char *) sqlite3_column_text(s, 8));
        if (x->status < 0)
                x->status = BATCH_STATUS_UNKNOWN;
        x->commit_count = sqlite3_column_int64(s, 9);
        x->read_count = sqlite3_column_int64(s, 10);
        x->filter_count = sqlite3_column_int64(s, 11);
        x->write_count = sqlite3_column_int64(s, 12);
        x->read_skip_count = sqlite3_column_int64(s, 13);
        x->write_skip_count = sqlite3_column_int64(s, 14);
        x->process_skip_count = sqlite3_column_int64(s, 15);
        x->rollback_count = sqlite3_column_int64(s, 16);
        k = column_strdup(s, 17, &x->exit_code);
        if (k < 0)
                return k;
        k = column_strdup(s, 18, &x->exit_message);
        if (k < 0)
                return k;
        k = context_from_columns(s, 19, 20, &x->context);
        if (k < 0)
                return k;

        *ret = TAKE_PTR(x);
        return 0;
}

static int params_load(Repository *r, int64_t execution_id, JobParameters *ret) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        JobParameters p = JOB_PARAMETERS_NULL;
        int k, rc;

        k = repository_stmt(r, SQL_GET_PARAMS, &s);
        if (k < 0)
                return k;
        sqlite3_bind_int64(s, 1, execution_id);
        while ((rc = repository_sqlite_step(r, s)) == SQLITE_ROW) {
                const char *name = (const char *) sqlite3_column_text(s, 0);
                const char *type = (const char *) sqlite3_column_text(s, 1);
                const char *value = (const char *) sqlite3_column_text(s, 2);
                const char *identifying = (const char *) sqlite3_column_text(s, 3);
                JobParameterType t = job_parameter_type_from_java(type);

                if (t < 0) /* a row written by something else: keep it readable as a string */
                        t = JOB_PARAMETER_STRING;
                k = job_parameters_add(&p, strempty(name), t, strempty(value),
                                       identifying && streq(identifying, "Y"), NULL);
                if (k < 0 && t != JOB_PARAMETER_STRING)
                        k = job_parameters_add(&p, strempty(name), JOB_PARAMETER_STRING, strempty(value),
                                               identifying && streq(identifying, "Y"), NULL);
                if (k < 0) {
                        job_parameters_done(&p);
                        return k;
                }
        }
        if (rc != SQLITE_DONE) {
                job_parameters_done(&p);
                return errno_from_sqlite(rc);
        }
        *ret = p;
        return 0;
}

/* ---- launching ---- */

static int validate_name(const char *what, const char *name, sd_bus_error *error) {
        if (isempty(name))
                return sd_bus_error_setf(error, BATCH_ERROR_JOB_PARAMETERS_INVALID, "%s must not be empty.", what),
                       -EINVAL;
        if (!utf8_is_valid(name))
                return sd_bus_error_setf(error, BATCH_ERROR_JOB_PARAMETERS_INVALID, "%s is not valid UTF-8.", what),
                       -EINVAL;
        if (strlen(name) > JOB_NAME_MAX)
                return sd_bus_error_setf(error, BATCH_ERROR_JOB_PARAMETERS_INVALID,
                                         "%s is longer than %d bytes.", what, JOB_NAME_MAX), -EINVAL;
        return 0;
}

static int validate_parameters(const JobParameters *p, sd_bus_error *error) {
        for (size_t i = 0; i < p->n; i++) {
                const JobParameter *x = p->items + i;

                if (isempty(x->name) || strlen(x->name) > JOB_PARAMETER_NAME_MAX || !utf8_is_valid(x->name))
                        return sd_bus_error_setf(error, BATCH_ERROR_JOB_PARAMETERS_INVALID,
                                                 "Invalid parameter name '%s'.", strempty(x->name)), -EINVAL;
                if (!x->value || strlen(x->value) > JOB_PARAMETER_VALUE_MAX || !utf8_is_valid(x->value))
                        return sd_bus_error_setf(error, BATCH_ERROR_JOB_PARAMETERS_INVALID,
                                                 "Invalid value for parameter '%s'.", x->name), -EINVAL;
                if (x->type < 0 || x->type >= _JOB_PARAMETER_TYPE_MAX)
                        return sd_bus_error_setf(error, BATCH_ERROR_JOB_PARAMETERS_INVALID,
                                                 "Invalid type for parameter '%s'.", x->name), -EINVAL;
        }
        return 0;
}

static int execution_write(Repository *r, JobExecution *e, usec_t now, sd_bus_error *error);

/* Steps on record as running under an execution that ended (execution_id 0: under any) become FAILED. */
static int fail_orphan_steps(Repository *r, int64_t execution_id, usec_t now, sd_bus_error *error) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;

        if (execution_id > 0) {
                PREPARE(r, SQL_FAIL_ORPHAN_STEPS, s, error);
                sqlite3_bind_int64(s, 1, execution_id);
        } else
                PREPARE(r, SQL_FAIL_ALL_ORPHAN_STEPS, s, error);
        bind_text(s, 2, ORPHAN_STEP_MESSAGE);
        bind_time(r, s, 3, now);
        return step_done(r, s, error, "fail steps left running");
}

/* SimpleJobLauncher's and SimpleJobRepository's refusals, for an instance that already has executions. */
static int check_existing_instance(Repository *r, int64_t instance_id, int64_t instance_version,
                                   const char *job_name, const JobParameters *params, LaunchFlags flags,
                                   int64_t *ret_last, sd_bus_error *error) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL, *l = NULL, *st = NULL;
        bool running = false, unknown = false, complete = false;
        int64_t last = 0;
        int rc;

        PREPARE(r, SQL_LAST_EXECUTION_OF_INSTANCE, l, error);
        sqlite3_bind_int64(l, 1, instance_id);
        rc = repository_sqlite_step(r, l);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                return repository_error(r, rc, error, "look up the last execution");
        if (rc == SQLITE_ROW)
                last = sqlite3_column_int64(l, 0);
        if (last == 0) {
                *ret_last = 0;
                return 0;
        }

        if (flags & LAUNCH_NOT_RESTARTABLE)
                return sd_bus_error_set(error, BATCH_ERROR_JOB_RESTART,
                                        "JobInstance already exists and is not restartable"), -ENOTRECOVERABLE;

        /* A step still "running" under an execution that ended is a leftover, not a reason to refuse forever. */
        {
                int k = fail_orphan_steps(r, last, now_usec(CLOCK_REALTIME), error);

                if (k < 0)
                        return k;
        }

        PREPARE(r, SQL_STEP_STATUSES_OF_EXECUTION, st, error);
        sqlite3_bind_int64(st, 1, last);
        while ((rc = repository_sqlite_step(r, st)) == SQLITE_ROW) {
                BatchStatus status = batch_status_from_string((const char *) sqlite3_column_text(st, 1));

                if (batch_status_is_running(status))
                        running = true;
                else if (status == BATCH_STATUS_UNKNOWN)
                        return sd_bus_error_setf(error, BATCH_ERROR_JOB_RESTART, "Step [%s] is of status UNKNOWN",
                                                 (const char *) sqlite3_column_text(st, 0)), -ENOTRECOVERABLE;
        }
        if (rc != SQLITE_DONE)
                return repository_error(r, rc, error, "read step statuses");

        PREPARE(r, SQL_INSTANCE_STATUSES, s, error);
        sqlite3_bind_int64(s, 1, instance_id);
        while ((rc = repository_sqlite_step(r, s)) == SQLITE_ROW) {
                BatchStatus status = batch_status_from_string((const char *) sqlite3_column_text(s, 0));

                if (batch_status_is_running(status))
                        running = true;
                else if (status == BATCH_STATUS_UNKNOWN || status < 0)
                        unknown = true;
                else if (status == BATCH_STATUS_COMPLETED || status == BATCH_STATUS_ABANDONED)
                        complete = true;
        }
        if (rc != SQLITE_DONE)
                return repository_error(r, rc, error, "read execution statuses");

        if (running)
                return sd_bus_error_setf(error, BATCH_ERROR_JOB_EXECUTION_ALREADY_RUNNING,
                                         "A job execution for this job is already running: JobInstance: id=%" PRIi64
                                         ", version=%" PRIi64 ", Job=[%s]", instance_id, instance_version, job_name),
                       -EBUSY;
        if (unknown)
                return sd_bus_error_set(error, BATCH_ERROR_JOB_RESTART,
                                        "Cannot restart job from UNKNOWN status. The last execution ended with a "
                                        "failure that could not be rolled back, so it may be dangerous to proceed. "
                                        "Manual intervention is probably necessary."), -ENOTRECOVERABLE;
        /* The key hashes the identifying parameters, so every execution of this instance has the same ones. */
        if (complete && job_parameters_has_identifying(params)) {
                _cleanup_free_ char *text = NULL;
                int k;

                k = job_parameters_identifying_to_string(params, &text);
                if (k < 0)
                        return k;
                return sd_bus_error_setf(error, BATCH_ERROR_JOB_INSTANCE_ALREADY_COMPLETE,
                                         "A job instance already exists and is complete for identifying "
                                         "parameters=%s.  If you want to run this job again, change the "
                                         "parameters.", text), -EALREADY;
        }

        *ret_last = last;
        return 0;
}

int repository_create_execution(Repository *r, const char *job_name, const JobParameters *params, LaunchFlags flags,
                                JobExecution **ret, sd_bus_error *error) {
        _cleanup_transaction_ Repository *tx = NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL;
        _cleanup_stmt_ sqlite3_stmt *find = NULL, *ins = NULL, *exec = NULL;
        int64_t instance_id = 0, instance_version = 0, last = 0;
        char key[33];
        usec_t now;
        int k, rc;

        assert(r);
        assert(params);
        assert(ret);

        k = validate_name("Job name", job_name, error);
        if (k < 0)
                return k;
        k = validate_parameters(params, error);
        if (k < 0)
                return k;
        k = job_parameters_job_key(params, key);
        if (k < 0)
                return k;

        e = calloc(1, sizeof(JobExecution));
        if (!e)
                return -ENOMEM;
        e->job_name = strdup(job_name);
        e->exit_code = strdup(EXIT_CODE_UNKNOWN);
        e->exit_message = strdup("");
        if (!e->job_name || !e->exit_code || !e->exit_message)
                return -ENOMEM;
        k = job_parameters_copy(params, &e->parameters);
        if (k < 0)
                return k;

        /* IMMEDIATE takes the write lock before reading, so two launchers of one instance serialize here and
         * the second one sees the first one's running execution. */
        k = repository_begin(r, error);
        if (k < 0)
                return k;
        tx = r;

        PREPARE(r, SQL_FIND_INSTANCE, find, error);
        bind_text(find, 1, job_name);
        bind_text(find, 2, key);
        rc = repository_sqlite_step(r, find);
        if (rc == SQLITE_ROW) {
                instance_id = sqlite3_column_int64(find, 0);
                instance_version = sqlite3_column_int64(find, 1);
        } else if (rc != SQLITE_DONE)
                return repository_error(r, rc, error, "look up the job instance");

        if (instance_id > 0) {
                k = check_existing_instance(r, instance_id, instance_version, job_name, params, flags, &last, error);
                if (k < 0)
                        return k;
        } else {
                k = repository_next_id(r, SQL_NEXT_JOB_ID, SQL_TRIM_JOB_SEQ, &instance_id, error);
                if (k < 0)
                        return k;
                PREPARE(r, SQL_INSERT_INSTANCE, ins, error);
                sqlite3_bind_int64(ins, 1, instance_id);
                bind_text(ins, 2, job_name);
                bind_text(ins, 3, key);
                k = step_done(r, ins, error, "create the job instance");
                if (k < 0)
                        return k;
        }

        /* A restart carries the job context of the execution it continues. */
        if (last > 0)
                k = context_load(r, SQL_GET_JOB_CONTEXT, last, &e->context);
        else
                k = execution_context_new(&e->context);
        if (k == CONTEXT_UNREADABLE)
                return sd_bus_error_setf(error, BATCH_ERROR_DATABASE, "The job execution context of execution %"
                                         PRIi64 " cannot be read; batchd's log says why.", last), k;
        if (k < 0)
                return repository_error(r, sqlite3_errcode(r->db), error, "load the job execution context");

        k = repository_next_id(r, SQL_NEXT_JOB_EXECUTION_ID, SQL_TRIM_JOB_EXECUTION_SEQ, &e->id, error);
        if (k < 0)
                return k;
        now = now_usec(CLOCK_REALTIME);
        e->job_instance_id = instance_id;
        e->status = BATCH_STATUS_STARTING;
        e->create_time = e->last_updated = now;

        PREPARE(r, SQL_INSERT_EXECUTION, exec, error);
        sqlite3_bind_int64(exec, 1, e->id);
        sqlite3_bind_int64(exec, 2, instance_id);
        bind_time(r, exec, 3, now);
        bind_text(exec, 4, batch_status_to_string(e->status));
        bind_text(exec, 5, e->exit_code);
        k = step_done(r, exec, error, "create the job execution");
        if (k < 0)
                return k;

        for (size_t i = 0; i < params->n; i++) {
                _cleanup_stmt_ sqlite3_stmt *p = NULL;
                const JobParameter *x = params->items + i;

                PREPARE(r, SQL_INSERT_PARAM, p, error);
                sqlite3_bind_int64(p, 1, e->id);
                bind_text(p, 2, x->name);
                bind_text(p, 3, job_parameter_type_to_java(x->type));
                bind_text(p, 4, x->value);
                bind_text(p, 5, x->identifying ? "Y" : "N");
                k = step_done(r, p, error, "store the job parameters");
                if (k < 0)
                        return k;
        }

        {
                _cleanup_stmt_ sqlite3_stmt *c = NULL;
                _cleanup_free_ char *serialized = NULL, *shrt = NULL;

                PREPARE(r, SQL_INSERT_JOB_CONTEXT, c, error);
                sqlite3_bind_int64(c, 1, e->id);
                k = context_bind(r, c, e->context, &serialized, &shrt);
                if (k < 0)
                        return k;
                k = step_done(r, c, error, "store the job execution context");
                if (k < 0)
                        return k;
        }

        if (flags & LAUNCH_MARK_STARTED) {
                e->status = BATCH_STATUS_STARTED;
                e->start_time = now;
                k = execution_write(r, e, now, error);
                if (k < 0)
                        return k;
                e->version++;
        }

        k = repository_commit(r, error);
        if (k < 0)
                return k;
        tx = NULL;

        *ret = TAKE_PTR(e);
        return 0;
}

/* Cuts at a character boundary so a long message never leaves broken UTF-8 in the column. */
static char *utf8_truncate(const char *s, size_t max, char buf[]) {
        size_t n = strlen(s);

        if (n <= max)
                return (char *) s;
        n = max;
        while (n > 0 && ((unsigned char) s[n] & 0xc0) == 0x80)
                n--;
        memcpy(buf, s, n);
        buf[n] = '\0';
        return buf;
}

static int version_conflict(Repository *r, Sql version_sql, const char *what, const char *missing_error,
                            int64_t id, int64_t version, sd_bus_error *error) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int rc;

        PREPARE(r, version_sql, s, error);
        sqlite3_bind_int64(s, 1, id);
        rc = repository_sqlite_step(r, s);
        if (rc == SQLITE_DONE)
                return sd_bus_error_setf(error, missing_error, "No %s with id=%" PRIi64 " in the repository.",
                                         what, id), -ENXIO;
        if (rc != SQLITE_ROW)
                return repository_error(r, rc, error, "check the record version");
        return sd_bus_error_setf(error, BATCH_ERROR_OPTIMISTIC_LOCKING_FAILURE,
                                 "Attempt to update %s id=%" PRIi64 " with wrong version (%" PRIi64 "), where "
                                 "current version is %" PRIi64, what, id, version, (int64_t) sqlite3_column_int64(s, 0)),
               -ESTALE;
}

static int execution_write(Repository *r, JobExecution *e, usec_t now, sd_bus_error *error) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        char msgbuf[EXIT_MESSAGE_MAX + 1], codebuf[EXIT_CODE_MAX + 1];
        int k;

        PREPARE(r, SQL_UPDATE_EXECUTION, s, error);
        sqlite3_bind_int64(s, 1, e->id);
        sqlite3_bind_int64(s, 2, e->version);
        bind_time(r, s, 3, e->start_time);
        bind_time(r, s, 4, e->end_time);
        bind_text(s, 5, batch_status_to_string(e->status));
        bind_text(s, 6, utf8_truncate(strempty(e->exit_code), EXIT_CODE_MAX, codebuf));
        bind_text(s, 7, utf8_truncate(strempty(e->exit_message), EXIT_MESSAGE_MAX, msgbuf));
        bind_time(r, s, 8, now);
        k = step_done(r, s, error, "update the job execution");
        if (k < 0)
                return k;
        if (sqlite3_changes(r->db) == 0) {
                (void) sqlite3_reset(s);
                return version_conflict(r, SQL_EXECUTION_VERSION, "job execution",
                                        BATCH_ERROR_NO_SUCH_JOB_EXECUTION, e->id, e->version, error);
        }
        return 0;
}

int repository_update_execution(Repository *r, JobExecution *e, sd_bus_error *error) {
        usec_t now = now_usec(CLOCK_REALTIME);
        int k;

        assert(r);
        assert(e);

        if (r->read_only)
                return repository_begin(r, error);
        if (r->tx_depth == 0) {
                k = repository_check_file(r, error);
                if (k < 0)
                        return k;
        }
        k = execution_write(r, e, now, error);
        if (k < 0)
                return k;
        e->version++;
        e->last_updated = now;
        return 0;
}

int repository_update_execution_context(Repository *r, JobExecution *e, sd_bus_error *error) {
        assert(r);
        assert(e);

        if (r->read_only)
                return repository_begin(r, error);
        if (r->tx_depth == 0) {
                int k = repository_check_file(r, error);

                if (k < 0)
                        return k;
        }
        return context_save(r, SQL_UPDATE_JOB_CONTEXT, e->id, e->context, error);
}

/* ---- steps ---- */

int repository_get_last_step_execution(Repository *r, int64_t instance_id, const char *step_name, StepExecution **ret) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int k, rc;

        k = repository_stmt(r, SQL_LAST_STEP, &s);
        if (k < 0)
                return k;
        sqlite3_bind_int64(s, 1, instance_id);
        bind_text(s, 2, step_name);
        rc = repository_sqlite_step(r, s);
        if (rc == SQLITE_DONE) {
                *ret = NULL;
                return 0;
        }
        if (rc != SQLITE_ROW)
                return errno_from_sqlite(rc);
        return step_from_row(r, s, ret);
}

int repository_get_step_execution_count(Repository *r, int64_t instance_id, const char *step_name, uint64_t *ret) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int k, rc;

        k = repository_stmt(r, SQL_STEP_COUNT, &s);
        if (k < 0)
                return k;
        sqlite3_bind_int64(s, 1, instance_id);
        bind_text(s, 2, step_name);
        rc = repository_sqlite_step(r, s);
        if (rc != SQLITE_ROW)
                return errno_from_sqlite(rc);
        *ret = (uint64_t) sqlite3_column_int64(s, 0);
        return 0;
}

int repository_should_start_step(Repository *r, const JobExecution *e, const char *step_name,
                                 bool allow_start_if_complete, uint64_t start_limit,
                                 StepExecution **ret_last, sd_bus_error *error) {
        _cleanup_(step_execution_freep) StepExecution *last = NULL;
        uint64_t count;
        int k;

        assert(r);
        assert(e);
        assert(ret_last);

        k = repository_get_last_step_execution(r, e->job_instance_id, step_name, &last);
        if (k == CONTEXT_UNREADABLE)
                return sd_bus_error_setf(error, BATCH_ERROR_DATABASE, "The execution context of the last execution "
                                         "of step %s cannot be read; batchd's log says why.", step_name), k;
        if (k < 0)
                return repository_error(r, sqlite3_errcode(r->db), error, "look up the last step execution");

        if (last && last->status == BATCH_STATUS_UNKNOWN)
                return sd_bus_error_set(error, BATCH_ERROR_JOB_RESTART,
                                        "Cannot restart step from UNKNOWN status. The last execution ended with a "
                                        "failure that could not be rolled back, so it may be dangerous to proceed. "
                                        "Manual intervention is probably necessary."), -ENOTRECOVERABLE;

        if (last && ((last->status == BATCH_STATUS_COMPLETED && !allow_start_if_complete) ||
                     last->status == BATCH_STATUS_ABANDONED)) {
                log_info("Step already complete or not restartable, so no action to execute: StepExecution: id=%"
                         PRIi64 ", version=%" PRIi64 ", name=%s, status=%s, exitStatus=%s, readCount=%" PRIi64
                         ", filterCount=%" PRIi64 ", writeCount=%" PRIi64 " readSkipCount=%" PRIi64
                         ", writeSkipCount=%" PRIi64 ", processSkipCount=%" PRIi64 ", commitCount=%" PRIi64
                         ", rollbackCount=%" PRIi64 ", exitDescription=%s",
                         last->id, last->version, last->step_name, batch_status_to_string(last->status),
                         strempty(last->exit_code), last->read_count, last->filter_count, last->write_count,
                         last->read_skip_count, last->write_skip_count, last->process_skip_count,
                         last->commit_count, last->rollback_count, strempty(last->exit_message));
                *ret_last = TAKE_PTR(last);
                return 0;
        }

        if (start_limit > 0) {
                k = repository_get_step_execution_count(r, e->job_instance_id, step_name, &count);
                if (k < 0)
                        return repository_error(r, sqlite3_errcode(r->db), error, "count step executions");
                /* SimpleStepHandler's message byte for byte, missing space included. */
                if (count >= start_limit)
                        return sd_bus_error_setf(error, BATCH_ERROR_START_LIMIT_EXCEEDED,
                                                 "Maximum start limit exceeded for step: %sStartMax: %" PRIu64,
                                                 step_name, start_limit), -EDQUOT;
        }

        *ret_last = TAKE_PTR(last);
        return 1;
}

int repository_add_step_execution(Repository *r, const JobExecution *e, const char *step_name,
                                  const StepExecution *last, StepExecution **ret, sd_bus_error *error) {
        _cleanup_transaction_ Repository *tx = NULL;
        _cleanup_(step_execution_freep) StepExecution *x = NULL;
        _cleanup_stmt_ sqlite3_stmt *s = NULL, *c = NULL;
        _cleanup_free_ char *serialized = NULL, *shrt = NULL;
        int k;

        assert(r);
        assert(e);
        assert(ret);

        k = validate_name("Step name", step_name, error);
        if (k < 0)
                return k;

        x = calloc(1, sizeof(StepExecution));
        if (!x)
                return -ENOMEM;
        x->job_execution_id = e->id;
        x->step_name = strdup(step_name);
        x->exit_code = strdup(EXIT_CODE_EXECUTING);
        x->exit_message = strdup("");
        if (!x->step_name || !x->exit_code || !x->exit_message)
                return -ENOMEM;
        x->status = BATCH_STATUS_STARTING;

        /* SimpleStepHandler: a step that did not complete resumes from its last saved context. */
        if (last && last->status != BATCH_STATUS_COMPLETED && last->context) {
                k = execution_context_copy(last->context, &x->context);
                if (k >= 0)
                        (void) execution_context_remove(x->context, "batch.executed");
        } else
                k = execution_context_new(&x->context);
        if (k < 0)
                return k;

        k = repository_begin(r, error);
        if (k < 0)
                return k;
        tx = r;

        k = repository_next_id(r, SQL_NEXT_STEP_EXECUTION_ID, SQL_TRIM_STEP_EXECUTION_SEQ, &x->id, error);
        if (k < 0)
                return k;
        x->create_time = x->last_updated = now_usec(CLOCK_REALTIME);

        PREPARE(r, SQL_INSERT_STEP, s, error);
        sqlite3_bind_int64(s, 1, x->id);
        bind_text(s, 2, step_name);
        sqlite3_bind_int64(s, 3, e->id);
        bind_time(r, s, 4, x->create_time);
        k = step_done(r, s, error, "create the step execution");
        if (k < 0)
                return k;

        PREPARE(r, SQL_INSERT_STEP_CONTEXT, c, error);
        sqlite3_bind_int64(c, 1, x->id);
        k = context_bind(r, c, x->context, &serialized, &shrt);
        if (k < 0)
                return k;
        k = step_done(r, c, error, "store the step execution context");
        if (k < 0)
                return k;

        k = repository_commit(r, error);
        if (k < 0)
                return k;
        tx = NULL;

        *ret = TAKE_PTR(x);
        return 0;
}

static int step_write(Repository *r, const StepExecution *x, usec_t now, sd_bus_error *error) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        char msgbuf[EXIT_MESSAGE_MAX + 1], codebuf[EXIT_CODE_MAX + 1];
        int k;

        PREPARE(r, SQL_UPDATE_STEP, s, error);
        sqlite3_bind_int64(s, 1, x->id);
        sqlite3_bind_int64(s, 2, x->version);
        bind_time(r, s, 3, x->start_time);
        bind_time(r, s, 4, x->end_time);
        bind_text(s, 5, batch_status_to_string(x->status));
        sqlite3_bind_int64(s, 6, x->commit_count);
        sqlite3_bind_int64(s, 7, x->read_count);
        sqlite3_bind_int64(s, 8, x->filter_count);
        sqlite3_bind_int64(s, 9, x->write_count);
        sqlite3_bind_int64(s, 10, x->read_skip_count);
        sqlite3_bind_int64(s, 11, x->write_skip_count);
        sqlite3_bind_int64(s, 12, x->process_skip_count);
        sqlite3_bind_int64(s, 13, x->rollback_count);
        bind_text(s, 14, utf8_truncate(strempty(x->exit_code), EXIT_CODE_MAX, codebuf));
        bind_text(s, 15, utf8_truncate(strempty(x->exit_message), EXIT_MESSAGE_MAX, msgbuf));
        bind_time(r, s, 16, now);
        k = step_done(r, s, error, "update the step execution");
        if (k < 0)
                return k;
        if (sqlite3_changes(r->db) == 0) {
                (void) sqlite3_reset(s);
                return version_conflict(r, SQL_STEP_VERSION, "step execution", BATCH_ERROR_NO_SUCH_JOB_EXECUTION,
                                        x->id, x->version, error);
        }
        return 0;
}

int repository_update_step_execution(Repository *r, StepExecution *s, sd_bus_error *error) {
        usec_t now = now_usec(CLOCK_REALTIME);
        int k;

        assert(r);
        assert(s);

        if (r->read_only)
                return repository_begin(r, error);
        if (r->tx_depth == 0) {
                k = repository_check_file(r, error);
                if (k < 0)
                        return k;
        }
        k = step_write(r, s, now, error);
        if (k < 0)
                return k;
        s->version++;
        s->last_updated = now;
        return 0;
}

int repository_start_step_execution(Repository *r, const JobExecution *e, const char *step_name,
                                    const StepExecution *last, StepExecution **ret, sd_bus_error *error) {
        _cleanup_transaction_ Repository *tx = NULL;
        _cleanup_(step_execution_freep) StepExecution *x = NULL;
        usec_t now;
        int k;

        assert(r);
        assert(e);
        assert(ret);

        k = repository_begin(r, error);
        if (k < 0)
                return k;
        tx = r;

        k = repository_add_step_execution(r, e, step_name, last, &x, error);
        if (k < 0)
                return k;
        now = now_usec(CLOCK_REALTIME);
        x->status = BATCH_STATUS_STARTED;
        x->start_time = now;
        k = step_write(r, x, now, error);
        if (k < 0)
                return k;

        k = repository_commit(r, error);
        if (k < 0)
                return k;
        tx = NULL;

        x->version++;
        x->last_updated = now;
        *ret = TAKE_PTR(x);
        return 0;
}

int repository_finish_step_execution(Repository *r, StepExecution *s, JobExecution *job, sd_bus_error *error) {
        _cleanup_transaction_ Repository *tx = NULL;
        usec_t now = now_usec(CLOCK_REALTIME);
        int k;

        assert(r);
        assert(s);

        k = repository_begin(r, error);
        if (k < 0)
                return k;
        tx = r;

        k = step_write(r, s, now, error);
        if (k < 0)
                return k;
        if (job) {
                k = execution_write(r, job, now, error);
                if (k < 0)
                        return k;
        }

        k = repository_commit(r, error);
        if (k < 0)
                return k;
        tx = NULL;

        /* Only now: a failed attempt leaves the versions as the database has them, for the next one. */
        s->version++;
        s->last_updated = now;
        if (job) {
                job->version++;
                job->last_updated = now;
        }
        return 0;
}

static bool counter_add(int64_t *counter, int64_t n) {
        if (n < 0 || __builtin_add_overflow(*counter, n, counter))
                return false;
        return true;
}

int repository_commit_step(Repository *r, StepExecution *s, const StepContribution *c,
                           JobExecution *job, sd_bus_error *error) {
        _cleanup_transaction_ Repository *tx = NULL;
        StepExecution updated;
        usec_t now = now_usec(CLOCK_REALTIME);
        int k;

        assert(r);
        assert(s);

        /* Work on a copy of the counters so a failed commit leaves the caller's view as the database has it. */
        updated = *s;
        if (c && !(counter_add(&updated.read_count, c->read_count) &&
                   counter_add(&updated.write_count, c->write_count) &&
                   counter_add(&updated.filter_count, c->filter_count) &&
                   counter_add(&updated.read_skip_count, c->read_skip_count) &&
                   counter_add(&updated.write_skip_count, c->write_skip_count) &&
                   counter_add(&updated.process_skip_count, c->process_skip_count)))
                return sd_bus_error_set(error, BATCH_ERROR_JOB_PARAMETERS_INVALID,
                                        "Step counts must be non-negative and fit in 64 bits."), -EINVAL;
        if (!counter_add(&updated.commit_count, 1))
                return -EOVERFLOW;

        k = repository_begin(r, error);
        if (k < 0)
                return k;
        tx = r;

        k = step_write(r, &updated, now, error);
        if (k < 0)
                return k;
        k = context_save_limited(r, SQL_UPDATE_STEP_CONTEXT, s->id, s->context, r->context_size_max, "step", error);
        if (k < 0)
                return k;
        if (job) {
                k = context_save_limited(r, SQL_UPDATE_JOB_CONTEXT, job->id, job->context, r->context_size_max,
                                         "job", error);
                if (k < 0)
                        return k;
        }

        k = repository_commit(r, error);
        if (k < 0)
                return k;
        tx = NULL;

        updated.version++;
        updated.last_updated = now;
        *s = updated;
        return 0;
}

/* ---- queries ---- */

/* A page: 0 means the default page, and no page is larger than REPOSITORY_PAGE_MAX. */
static int64_t page_limit(size_t limit) {
        return limit == 0 || limit > REPOSITORY_PAGE_MAX ? REPOSITORY_PAGE_MAX : (int64_t) limit;
}

int repository_get_job_names(Repository *r, char ***ret) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;
        int k, rc;

        k = repository_stmt(r, SQL_JOB_NAMES, &s);
        if (k < 0)
                return k;
        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        while ((rc = repository_sqlite_step(r, s)) == SQLITE_ROW) {
                char **nl = reallocarray(l, n + 2, sizeof(char *));

                if (!nl)
                        return -ENOMEM;
                l = nl;
                l[n] = strdup((const char *) sqlite3_column_text(s, 0));
                if (!l[n])
                        return -ENOMEM;
                l[++n] = NULL;
        }
        if (rc != SQLITE_DONE)
                return errno_from_sqlite(rc);
        *ret = TAKE_PTR(l);
        return 0;
}

static int instance_from_row(sqlite3_stmt *s, JobInstance *i) {
        i->id = sqlite3_column_int64(s, 0);
        i->version = sqlite3_column_int64(s, 1);
        if (column_strdup(s, 2, &i->job_name) < 0 || column_strdup(s, 3, &i->job_key) < 0)
                return -ENOMEM;
        return 0;
}

int repository_get_job_instance(Repository *r, int64_t id, JobInstance **ret, sd_bus_error *error) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        _cleanup_(job_instance_freep) JobInstance *i = NULL;
        int rc;

        PREPARE(r, SQL_GET_INSTANCE, s, error);
        sqlite3_bind_int64(s, 1, id);
        rc = repository_sqlite_step(r, s);
        if (rc == SQLITE_DONE)
                return sd_bus_error_setf(error, BATCH_ERROR_NO_SUCH_JOB_INSTANCE,
                                         "No job instance with id=%" PRIi64 ".", id), -ENODATA;
        if (rc != SQLITE_ROW)
                return repository_error(r, rc, error, "read the job instance");
        i = calloc(1, sizeof(JobInstance));
        if (!i || instance_from_row(s, i) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(i);
        return 0;
}

int repository_get_job_instances(Repository *r, const char *job_name, size_t offset, size_t limit,
                                 JobInstance **ret, size_t *ret_n) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        JobInstance *a = NULL;
        size_t n = 0;
        int k, rc;

        k = repository_stmt(r, SQL_INSTANCES_OF_JOB, &s);
        if (k < 0)
                return k;
        bind_text(s, 1, job_name);
        sqlite3_bind_int64(s, 2, (int64_t) MIN(offset, (size_t) INT64_MAX));
        sqlite3_bind_int64(s, 3, page_limit(limit));
        while ((rc = repository_sqlite_step(r, s)) == SQLITE_ROW) {
                JobInstance *na = reallocarray(a, n + 1, sizeof(JobInstance));

                if (!na) {
                        job_instance_array_free(a, n);
                        return -ENOMEM;
                }
                a = na;
                a[n] = (JobInstance) {};
                k = instance_from_row(s, a + n++);
                if (k < 0) {
                        job_instance_array_free(a, n);
                        return k;
                }
        }
        if (rc != SQLITE_DONE) {
                job_instance_array_free(a, n);
                return errno_from_sqlite(rc);
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

int repository_get_job_instance_count(Repository *r, const char *job_name, uint64_t *ret) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int k, rc;

        k = repository_stmt(r, SQL_INSTANCE_COUNT, &s);
        if (k < 0)
                return k;
        bind_text(s, 1, job_name);
        rc = repository_sqlite_step(r, s);
        if (rc != SQLITE_ROW)
                return errno_from_sqlite(rc);
        *ret = (uint64_t) sqlite3_column_int64(s, 0);
        return 0;
}

static int execution_load_details(Repository *r, JobExecution *e) {
        int k;

        k = params_load(r, e->id, &e->parameters);
        if (k < 0)
                return k;
        return context_load(r, SQL_GET_JOB_CONTEXT, e->id, &e->context);
}

int repository_get_execution_summary(Repository *r, int64_t id, JobExecution **ret, sd_bus_error *error) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int rc;

        PREPARE(r, SQL_GET_EXECUTION, s, error);
        sqlite3_bind_int64(s, 1, id);
        rc = repository_sqlite_step(r, s);
        if (rc == SQLITE_DONE)
                return sd_bus_error_setf(error, BATCH_ERROR_NO_SUCH_JOB_EXECUTION,
                                         "No JobExecution found for id: [%" PRIi64 "]", id), -ENXIO;
        if (rc != SQLITE_ROW)
                return repository_error(r, rc, error, "read the job execution");
        return execution_from_row(r, s, ret);
}

int repository_get_execution(Repository *r, int64_t id, JobExecution **ret, sd_bus_error *error) {
        _cleanup_(job_execution_freep) JobExecution *e = NULL;
        int k;

        k = repository_get_execution_summary(r, id, &e, error);
        if (k < 0)
                return k;

        k = execution_load_details(r, e);
        if (k == CONTEXT_UNREADABLE)
                return sd_bus_error_setf(error, BATCH_ERROR_DATABASE, "The execution context of job execution %"
                                         PRIi64 " cannot be read; batchd's log says why.", id), k;
        if (k < 0)
                return k == -ENOMEM ? k : repository_error(r, sqlite3_errcode(r->db), error,
                                                           "read the job execution's parameters");
        *ret = TAKE_PTR(e);
        return 0;
}

static int executions_collect(Repository *r, sqlite3_stmt *s, bool details, JobExecution ***ret, size_t *ret_n) {
        JobExecution **a = NULL;
        size_t n = 0;
        int k, rc;

        while ((rc = repository_sqlite_step(r, s)) == SQLITE_ROW) {
                JobExecution **na = reallocarray(a, n + 1, sizeof(JobExecution *));

                if (!na) {
                        job_execution_array_free(a, n);
                        return -ENOMEM;
                }
                a = na;
                k = execution_from_row(r, s, a + n);
                if (k < 0) {
                        job_execution_array_free(a, n);
                        return k;
                }
                n++;
        }
        (void) sqlite3_reset(s);
        if (rc != SQLITE_DONE) {
                job_execution_array_free(a, n);
                return errno_from_sqlite(rc);
        }
        for (size_t i = 0; details && i < n; i++) {
                k = execution_load_details(r, a[i]);
                if (k < 0) {
                        job_execution_array_free(a, n);
                        return k;
                }
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

int repository_list_executions(Repository *r, const char *job_name, int64_t instance_id, size_t offset, size_t limit,
                               JobExecution ***ret, size_t *ret_n) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int k;

        k = repository_stmt(r, instance_id != 0 ? SQL_LIST_EXECUTIONS_OF_INSTANCE :
                               job_name ? SQL_LIST_EXECUTIONS_OF_JOB : SQL_LIST_EXECUTIONS, &s);
        if (k < 0)
                return k;
        if (job_name)
                bind_text(s, 1, job_name);
        if (instance_id != 0)
                sqlite3_bind_int64(s, 2, instance_id);
        sqlite3_bind_int64(s, 3, (int64_t) MIN(offset, (size_t) INT64_MAX));
        sqlite3_bind_int64(s, 4, page_limit(limit));
        return executions_collect(r, s, false, ret, ret_n);
}

int repository_get_last_execution_of_job(Repository *r, const char *job_name, JobExecution **ret) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int k, rc;

        assert(r);
        assert(job_name);
        assert(ret);

        k = repository_stmt(r, SQL_LAST_EXECUTION_OF_JOB, &s);
        if (k < 0)
                return k;
        bind_text(s, 1, job_name);
        rc = repository_sqlite_step(r, s);
        if (rc == SQLITE_DONE) {
                *ret = NULL;
                return 0;
        }
        if (rc != SQLITE_ROW)
                return errno_from_sqlite(rc);
        return execution_from_row(r, s, ret);
}

int repository_get_last_execution(Repository *r, const char *job_name, const JobParameters *params,
                                  JobExecution **ret) {
        _cleanup_stmt_ sqlite3_stmt *find = NULL, *last = NULL;
        int64_t instance_id, id;
        char key[33];
        int k, rc;

        k = job_parameters_job_key(params, key);
        if (k < 0)
                return k;
        k = repository_stmt(r, SQL_FIND_INSTANCE, &find);
        if (k < 0)
                return k;
        bind_text(find, 1, job_name);
        bind_text(find, 2, key);
        rc = repository_sqlite_step(r, find);
        if (rc == SQLITE_DONE) {
                *ret = NULL;
                return 0;
        }
        if (rc != SQLITE_ROW)
                return errno_from_sqlite(rc);
        instance_id = sqlite3_column_int64(find, 0);

        k = repository_stmt(r, SQL_LAST_EXECUTION_OF_INSTANCE, &last);
        if (k < 0)
                return k;
        sqlite3_bind_int64(last, 1, instance_id);
        rc = repository_sqlite_step(r, last);
        if (rc != SQLITE_ROW)
                return errno_from_sqlite(rc);
        id = sqlite3_column_int64(last, 0);
        if (id == 0) {
                *ret = NULL;
                return 0;
        }
        return repository_get_execution(r, id, ret, NULL);
}

/* limit -1: all of them, for reconciliation at start-up, before anything is served. */
static int running_executions(Repository *r, const char *job_name, int64_t limit, JobExecution ***ret, size_t *ret_n) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int k;

        k = repository_stmt(r, SQL_RUNNING_EXECUTIONS, &s);
        if (k < 0)
                return k;
        if (job_name)
                bind_text(s, 1, job_name);
        sqlite3_bind_int64(s, 2, limit);
        return executions_collect(r, s, false, ret, ret_n);
}

int repository_get_running_executions(Repository *r, const char *job_name, JobExecution ***ret, size_t *ret_n) {
        return running_executions(r, job_name, REPOSITORY_PAGE_MAX, ret, ret_n);
}

int repository_get_step_executions(Repository *r, int64_t job_execution_id, StepExecution ***ret, size_t *ret_n) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        StepExecution **a = NULL;
        size_t n = 0;
        int k, rc;

        k = repository_stmt(r, SQL_GET_STEPS, &s);
        if (k < 0)
                return k;
        sqlite3_bind_int64(s, 1, job_execution_id);
        while ((rc = repository_sqlite_step(r, s)) == SQLITE_ROW) {
                StepExecution **na = reallocarray(a, n + 1, sizeof(StepExecution *));

                if (!na) {
                        step_execution_array_free(a, n);
                        return -ENOMEM;
                }
                a = na;
                k = step_from_row(r, s, a + n);
                if (k < 0) {
                        step_execution_array_free(a, n);
                        return k;
                }
                n++;
        }
        if (rc != SQLITE_DONE) {
                step_execution_array_free(a, n);
                return errno_from_sqlite(rc);
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

int repository_query_plans(Repository *r, int (*cb)(const char *sql, const char *detail, void *userdata),
                           void *userdata) {
        assert(r);
        assert(cb);

        for (Sql id = 0; id < _SQL_MAX; id++) {
                _cleanup_free_ char *q = NULL;
                sqlite3_stmt *s = NULL;
                int k = 0, rc;

                if (asprintf(&q, "EXPLAIN QUERY PLAN %s", sql_text[id]) < 0)
                        return -ENOMEM;
                rc = sqlite3_prepare_v2(r->db, q, -1, &s, NULL);
                if (rc != SQLITE_OK)
                        return errno_from_sqlite(rc);
                while (k >= 0 && (rc = sqlite3_step(s)) == SQLITE_ROW)
                        k = cb(sql_text[id], (const char *) sqlite3_column_text(s, 3), userdata);
                sqlite3_finalize(s);
                if (k < 0)
                        return k;
                if (rc != SQLITE_DONE)
                        return errno_from_sqlite(rc);
        }
        return 0;
}

/* ---- operations ---- */

int repository_next_run_id(Repository *r, const char *job_name, int64_t *ret, sd_bus_error *error) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int64_t max = 0;
        int k, rc;

        assert(r);
        assert(job_name);
        assert(ret);

        k = repository_stmt(r, SQL_MAX_RUN_ID, &s);
        if (k < 0)
                return repository_error(r, sqlite3_errcode(r->db), error, "read the last run.id");
        bind_text(s, 1, job_name);
        rc = repository_sqlite_step(r, s);
        if (rc != SQLITE_ROW)
                return repository_error(r, rc, error, "read the last run.id");
        if (sqlite3_column_type(s, 0) != SQLITE_NULL)
                max = sqlite3_column_int64(s, 0);
        if (max == INT64_MAX)
                return sd_bus_error_set(error, BATCH_ERROR_JOB_PARAMETERS_INVALID,
                                        "Invalid value for parameter run.id"), -EOVERFLOW;

        *ret = MAX(max, (int64_t) 0) + 1;
        return 0;
}

int repository_next_parameters(Repository *r, const char *job_name, const JobParameters *overrides,
                               JobParameters *ret, sd_bus_error *error) {
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        JobInstance *instances = NULL;
        size_t n = 0;
        int64_t run_id;
        char buf[32];
        int k;

        k = repository_get_job_instances(r, job_name, 0, 1, &instances, &n);
        if (k < 0)
                return repository_error(r, sqlite3_errcode(r->db), error, "read the last job instance");
        if (n > 0) {
                JobExecution **executions = NULL;
                size_t m = 0;

                k = repository_list_executions(r, NULL, instances[0].id, 0, 1, &executions, &m);
                job_instance_array_free(instances, n);
                if (k < 0)
                        return repository_error(r, sqlite3_errcode(r->db), error, "read the last job execution");
                if (m > 0) {
                        _cleanup_(job_execution_freep) JobExecution *last = NULL;

                        /* Lists carry summaries; the parameters come with the single execution. */
                        k = repository_get_execution(r, executions[0]->id, &last, error);
                        job_execution_array_free(executions, m);
                        if (k < 0)
                                return k;
                        k = job_parameters_copy(&last->parameters, &p);
                        if (k < 0)
                                return k;
                } else
                        free(executions);
        }

        /* RunIdIncrementer, made robust: Spring adds 1 to the last instance's run.id, which goes back to 1
         * after any launch without one (a plain Start) and then restarts an old instance. The highest
         * run.id of all the job's instances + 1 is always a new instance. */
        k = repository_next_run_id(r, job_name, &run_id, error);
        if (k < 0)
                return k;
        (void) snprintf(buf, sizeof(buf), "%" PRIi64, run_id);
        k = job_parameters_add(&p, "run.id", JOB_PARAMETER_LONG, buf, true, NULL);
        if (k < 0)
                return k;

        for (size_t i = 0; overrides && i < overrides->n; i++) {
                const JobParameter *x = overrides->items + i;
                _cleanup_free_ char *msg = NULL;

                k = job_parameters_add(&p, x->name, x->type, x->value, x->identifying, &msg);
                if (k < 0)
                        return sd_bus_error_set(error, BATCH_ERROR_JOB_PARAMETERS_INVALID, msg), k;
        }

        *ret = p;
        p = JOB_PARAMETERS_NULL;
        return 0;
}

int repository_abandon_execution(Repository *r, int64_t id, sd_bus_error *error) {
        _cleanup_(job_execution_freep) JobExecution *e = NULL;
        int k;

        k = repository_get_execution(r, id, &e, error);
        if (k < 0)
                return k;
        /* SimpleJobOperator.abandon(): STARTING, STARTED and COMPLETED are below STOPPING and stay as they are. */
        if (e->status < BATCH_STATUS_STOPPING)
                return sd_bus_error_set(error, BATCH_ERROR_JOB_EXECUTION_ALREADY_RUNNING,
                                        "JobExecution is running or complete and therefore cannot be aborted"),
                       -EBUSY;
        e->status = batch_status_upgrade(e->status, BATCH_STATUS_ABANDONED);
        if (e->end_time == 0)
                e->end_time = now_usec(CLOCK_REALTIME);
        return repository_update_execution(r, e, error);
}

int repository_fail_running_executions(Repository *r, const char *message, int64_t **ret_ids, size_t *ret_n) {
        _cleanup_transaction_ Repository *tx = NULL;
        _cleanup_free_ int64_t *ids = NULL;
        JobExecution **running = NULL;
        usec_t now = now_usec(CLOCK_REALTIME);
        size_t n = 0;
        int k;

        k = repository_begin(r, NULL);
        if (k < 0)
                return k;
        tx = r;

        k = running_executions(r, NULL, -1, &running, &n);
        if (k < 0)
                return k;
        ids = calloc(MAX(n, 1u), sizeof(int64_t));
        if (!ids) {
                job_execution_array_free(running, n);
                return -ENOMEM;
        }

        for (size_t i = 0; i < n; i++) {
                JobExecution *e = running[i];
                _cleanup_stmt_ sqlite3_stmt *s = NULL;

                k = repository_stmt(r, SQL_FAIL_RUNNING_STEPS, &s);
                if (k >= 0) {
                        sqlite3_bind_int64(s, 1, e->id);
                        bind_text(s, 2, message);
                        bind_time(r, s, 3, now);
                        k = step_done(r, s, NULL, "fail running steps");
                }
                if (k >= 0) {
                        e->status = BATCH_STATUS_FAILED;
                        free(e->exit_code);
                        free(e->exit_message);
                        e->exit_code = strdup(EXIT_CODE_FAILED);
                        e->exit_message = strdup(message);
                        if (!e->exit_code || !e->exit_message)
                                k = -ENOMEM;
                        if (e->end_time == 0)
                                e->end_time = now;
                }
                if (k >= 0)
                        k = execution_write(r, e, now, NULL);
                if (k < 0) {
                        job_execution_array_free(running, n);
                        return k;
                }
                ids[i] = e->id;
        }
        job_execution_array_free(running, n);

        k = fail_orphan_steps(r, 0, now, NULL);
        if (k < 0)
                return k;

        k = repository_commit(r, NULL);
        if (k < 0)
                return k;
        tx = NULL;

        if (ret_ids)
                *ret_ids = TAKE_PTR(ids);
        if (ret_n)
                *ret_n = n;
        return 0;
}

int repository_delete_old(Repository *r, unsigned keep_days, unsigned keep_executions, usec_t now,
                          uint64_t *ret_deleted) {
        _cleanup_transaction_ Repository *tx = NULL;
        char cutoff[TIMESTAMP_MAX] = "";
        sqlite3_stmt *s = NULL;
        int64_t deleted;
        int k, rc;

        if (keep_days == 0 && keep_executions == 0) {
                if (ret_deleted)
                        *ret_deleted = 0;
                return 0;
        }
        if (keep_days > 0 && now > (usec_t) keep_days * 86400 * USEC_PER_SEC)
                (void) repository_timestamp_format(r, now - (usec_t) keep_days * 86400 * USEC_PER_SEC, cutoff);

        k = repository_begin(r, NULL);
        if (k < 0)
                return k;
        tx = r;

        rc = sqlite3_exec(r->db,
                          "CREATE TEMP TABLE IF NOT EXISTS doomed (ID INTEGER PRIMARY KEY); DELETE FROM doomed;",
                          NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                return errno_from_sqlite(rc);

        rc = sqlite3_prepare_v2(r->db,
                "INSERT INTO doomed SELECT E.JOB_EXECUTION_ID FROM BATCH_JOB_EXECUTION E "
                "JOIN BATCH_JOB_INSTANCE I ON I.JOB_INSTANCE_ID = E.JOB_INSTANCE_ID "
                "WHERE NOT EXISTS (SELECT 1 FROM BATCH_JOB_EXECUTION R WHERE R.JOB_INSTANCE_ID = E.JOB_INSTANCE_ID "
                "                  AND " RUNNING("R") ") "
                "AND ((?1 != '' AND E.END_TIME IS NOT NULL AND E.END_TIME < ?1) "
                "  OR (?2 > 0 AND E.JOB_EXECUTION_ID IN ("
                "      SELECT ID FROM (SELECT E2.JOB_EXECUTION_ID AS ID, ROW_NUMBER() OVER ("
                "          PARTITION BY I2.JOB_NAME ORDER BY E2.JOB_EXECUTION_ID DESC) AS RN "
                "        FROM BATCH_JOB_EXECUTION E2 "
                "        JOIN BATCH_JOB_INSTANCE I2 ON I2.JOB_INSTANCE_ID = E2.JOB_INSTANCE_ID) WHERE RN > ?2)))",
                -1, &s, NULL);
        if (rc != SQLITE_OK)
                return errno_from_sqlite(rc);
        sqlite3_bind_text(s, 1, cutoff, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, keep_executions);
        rc = repository_sqlite_step(r, s);
        sqlite3_finalize(s);
        if (rc != SQLITE_DONE)
                return errno_from_sqlite(rc);
        deleted = sqlite3_changes(r->db);

        rc = sqlite3_exec(r->db,
                "DELETE FROM BATCH_STEP_EXECUTION_CONTEXT WHERE STEP_EXECUTION_ID IN "
                "  (SELECT STEP_EXECUTION_ID FROM BATCH_STEP_EXECUTION WHERE JOB_EXECUTION_ID IN (SELECT ID FROM doomed));"
                "DELETE FROM BATCH_STEP_EXECUTION WHERE JOB_EXECUTION_ID IN (SELECT ID FROM doomed);"
                "DELETE FROM BATCH_JOB_EXECUTION_CONTEXT WHERE JOB_EXECUTION_ID IN (SELECT ID FROM doomed);"
                "DELETE FROM BATCH_JOB_EXECUTION_PARAMS WHERE JOB_EXECUTION_ID IN (SELECT ID FROM doomed);"
                "DELETE FROM BATCH_JOB_EXECUTION WHERE JOB_EXECUTION_ID IN (SELECT ID FROM doomed);"
                "DELETE FROM BATCH_JOB_INSTANCE WHERE NOT EXISTS "
                "  (SELECT 1 FROM BATCH_JOB_EXECUTION E WHERE E.JOB_INSTANCE_ID = BATCH_JOB_INSTANCE.JOB_INSTANCE_ID);"
                "DELETE FROM doomed;",
                NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                return errno_from_sqlite(rc);

        k = repository_commit(r, NULL);
        if (k < 0)
                return k;
        tx = NULL;

        if (ret_deleted)
                *ret_deleted = (uint64_t) deleted;
        return 0;
}
