/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>

#include "repository-internal.h"

/* Every statement of the repository, in one table so that each is prepared once per connection
 * (repository_statement()) and test_query_plans can plan them all. A statement SQLite and PostgreSQL spell
 * differently carries a second text (.postgresql); NULL means the SQLite text serves both. */

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

/* PostgreSQL must know the type of every parameter of a statement, also of one a statement does not use (the
 * forms of one query share their parameter numbers, so the callers bind the same way for each). This mentions
 * parameter n with its type and means nothing: the planner folds it to TRUE. */
#define PG_UNUSED(n, type) "(CAST(?" #n " AS " type ") IS NULL OR TRUE)"

static const struct {
        const char *sqlite;
        const char *postgresql;         /* NULL: the same text */
} sql_text[_SQL_MAX] = {
        [SQL_FIND_INSTANCE] = { .sqlite =
                "SELECT JOB_INSTANCE_ID, VERSION FROM BATCH_JOB_INSTANCE WHERE JOB_NAME = ?1 AND JOB_KEY = ?2" },
        /* The instance a launch continues, locked until the launch commits. SQLite's BEGIN IMMEDIATE has already
         * serialized every writer. PostgreSQL runs at READ COMMITTED (spring-batch #1497: Spring's SERIALIZABLE
         * create is what fails its concurrent launches there): the row lock makes a second launcher of the
         * instance wait for the first one's commit, and its next statement then sees the first one's execution. */
        [SQL_LOCK_INSTANCE] = { .sqlite =
                "SELECT JOB_INSTANCE_ID, VERSION FROM BATCH_JOB_INSTANCE WHERE JOB_NAME = ?1 AND JOB_KEY = ?2",
                .postgresql =
                "SELECT JOB_INSTANCE_ID, VERSION FROM BATCH_JOB_INSTANCE WHERE JOB_NAME = ?1 AND JOB_KEY = ?2 "
                "FOR UPDATE" },
        [SQL_INSERT_INSTANCE] = { .sqlite =
                "INSERT INTO BATCH_JOB_INSTANCE (JOB_INSTANCE_ID, VERSION, JOB_NAME, JOB_KEY) VALUES (?1, 0, ?2, ?3)" },
        [SQL_GET_INSTANCE] = { .sqlite =
                "SELECT JOB_INSTANCE_ID, VERSION, JOB_NAME, JOB_KEY FROM BATCH_JOB_INSTANCE WHERE JOB_INSTANCE_ID = ?1" },
        [SQL_INSTANCE_STATUSES] = { .sqlite =
                "SELECT STATUS, COUNT(*) FROM BATCH_JOB_EXECUTION WHERE JOB_INSTANCE_ID = ?1 GROUP BY STATUS" },
        [SQL_LAST_EXECUTION_OF_INSTANCE] = { .sqlite =
                "SELECT MAX(JOB_EXECUTION_ID) FROM BATCH_JOB_EXECUTION WHERE JOB_INSTANCE_ID = ?1" },
        [SQL_STEP_STATUSES_OF_EXECUTION] = { .sqlite =
                "SELECT STEP_NAME, STATUS FROM BATCH_STEP_EXECUTION WHERE JOB_EXECUTION_ID = ?1 "
                "ORDER BY STEP_EXECUTION_ID" },
        [SQL_INSERT_EXECUTION] = { .sqlite =
                "INSERT INTO BATCH_JOB_EXECUTION (JOB_EXECUTION_ID, VERSION, JOB_INSTANCE_ID, CREATE_TIME, "
                "START_TIME, END_TIME, STATUS, EXIT_CODE, EXIT_MESSAGE, LAST_UPDATED) "
                "VALUES (?1, 0, ?2, ?3, NULL, NULL, ?4, ?5, '', ?3)" },
        [SQL_INSERT_PARAM] = { .sqlite =
                "INSERT INTO BATCH_JOB_EXECUTION_PARAMS (JOB_EXECUTION_ID, PARAMETER_NAME, PARAMETER_TYPE, "
                "PARAMETER_VALUE, IDENTIFYING) VALUES (?1, ?2, ?3, ?4, ?5)" },
        [SQL_GET_PARAMS] = { .sqlite =
                "SELECT PARAMETER_NAME, PARAMETER_TYPE, PARAMETER_VALUE, IDENTIFYING "
                "FROM BATCH_JOB_EXECUTION_PARAMS WHERE JOB_EXECUTION_ID = ?1 ORDER BY rowid",
                /* Spring's table has no key to order by; the order of insertion is the order of the parameters.
                 * PostgreSQL has no rowid: ctid, the row's place in the heap, is that order for rows written in one
                 * transaction and never updated (parameters never are). It is not stable across VACUUM FULL or
                 * CLUSTER, which may reorder parameters (their meaning does not depend on the order). */
                .postgresql =
                "SELECT PARAMETER_NAME, PARAMETER_TYPE, PARAMETER_VALUE, IDENTIFYING "
                "FROM BATCH_JOB_EXECUTION_PARAMS WHERE JOB_EXECUTION_ID = ?1 ORDER BY ctid" },
        [SQL_INSERT_JOB_CONTEXT] = { .sqlite =
                "INSERT INTO BATCH_JOB_EXECUTION_CONTEXT (JOB_EXECUTION_ID, SHORT_CONTEXT, SERIALIZED_CONTEXT) "
                "VALUES (?1, ?2, ?3)" },
        [SQL_GET_JOB_CONTEXT] = { .sqlite =
                "SELECT SHORT_CONTEXT, SERIALIZED_CONTEXT FROM BATCH_JOB_EXECUTION_CONTEXT WHERE JOB_EXECUTION_ID = ?1" },
        [SQL_UPDATE_JOB_CONTEXT] = { .sqlite =
                "UPDATE BATCH_JOB_EXECUTION_CONTEXT SET SHORT_CONTEXT = ?2, SERIALIZED_CONTEXT = ?3 "
                "WHERE JOB_EXECUTION_ID = ?1" },
        [SQL_UPDATE_EXECUTION] = { .sqlite =
                "UPDATE BATCH_JOB_EXECUTION SET START_TIME = ?3, END_TIME = ?4, STATUS = ?5, EXIT_CODE = ?6, "
                "EXIT_MESSAGE = ?7, VERSION = ?2 + 1, LAST_UPDATED = ?8 "
                "WHERE JOB_EXECUTION_ID = ?1 AND VERSION = ?2" },
        [SQL_EXECUTION_VERSION] = { .sqlite =
                "SELECT VERSION FROM BATCH_JOB_EXECUTION WHERE JOB_EXECUTION_ID = ?1" },
        [SQL_GET_EXECUTION] = { .sqlite =
                "SELECT " EXECUTION_COLUMNS EXECUTION_FROM " WHERE E.JOB_EXECUTION_ID = ?1" },
        [SQL_INSERT_STEP] = { .sqlite =
                "INSERT INTO BATCH_STEP_EXECUTION (STEP_EXECUTION_ID, VERSION, STEP_NAME, JOB_EXECUTION_ID, "
                "CREATE_TIME, START_TIME, END_TIME, STATUS, COMMIT_COUNT, READ_COUNT, FILTER_COUNT, WRITE_COUNT, "
                "READ_SKIP_COUNT, WRITE_SKIP_COUNT, PROCESS_SKIP_COUNT, ROLLBACK_COUNT, EXIT_CODE, EXIT_MESSAGE, "
                "LAST_UPDATED) VALUES (?1, 0, ?2, ?3, ?4, NULL, NULL, 'STARTING', 0, 0, 0, 0, 0, 0, 0, 0, "
                "'EXECUTING', '', ?4)" },
        [SQL_INSERT_STEP_CONTEXT] = { .sqlite =
                "INSERT INTO BATCH_STEP_EXECUTION_CONTEXT (STEP_EXECUTION_ID, SHORT_CONTEXT, SERIALIZED_CONTEXT) "
                "VALUES (?1, ?2, ?3)" },
        [SQL_GET_STEP_CONTEXT] = { .sqlite =
                "SELECT SHORT_CONTEXT, SERIALIZED_CONTEXT FROM BATCH_STEP_EXECUTION_CONTEXT WHERE STEP_EXECUTION_ID = ?1" },
        [SQL_UPDATE_STEP_CONTEXT] = { .sqlite =
                "UPDATE BATCH_STEP_EXECUTION_CONTEXT SET SHORT_CONTEXT = ?2, SERIALIZED_CONTEXT = ?3 "
                "WHERE STEP_EXECUTION_ID = ?1" },
        [SQL_UPDATE_STEP] = { .sqlite =
                "UPDATE BATCH_STEP_EXECUTION SET START_TIME = ?3, END_TIME = ?4, STATUS = ?5, COMMIT_COUNT = ?6, "
                "READ_COUNT = ?7, FILTER_COUNT = ?8, WRITE_COUNT = ?9, READ_SKIP_COUNT = ?10, "
                "WRITE_SKIP_COUNT = ?11, PROCESS_SKIP_COUNT = ?12, ROLLBACK_COUNT = ?13, EXIT_CODE = ?14, "
                "EXIT_MESSAGE = ?15, VERSION = ?2 + 1, LAST_UPDATED = ?16 "
                "WHERE STEP_EXECUTION_ID = ?1 AND VERSION = ?2" },
        [SQL_STEP_VERSION] = { .sqlite =
                "SELECT VERSION FROM BATCH_STEP_EXECUTION WHERE STEP_EXECUTION_ID = ?1" },
        /* After a COMMIT whose outcome is unknown (repository_write_was_applied()). */
        [SQL_STEP_STATE] = { .sqlite =
                "SELECT VERSION, STATUS, COMMIT_COUNT, CASE WHEN END_TIME IS NULL THEN 0 ELSE 1 END "
                "FROM BATCH_STEP_EXECUTION WHERE STEP_EXECUTION_ID = ?1" },
        [SQL_EXECUTION_STATE] = { .sqlite =
                "SELECT VERSION, STATUS FROM BATCH_JOB_EXECUTION WHERE JOB_EXECUTION_ID = ?1" },
        [SQL_FIND_STARTED_STEP] = { .sqlite =
                "SELECT " STEP_COLUMNS STEP_FROM " WHERE S.JOB_EXECUTION_ID = ?1 AND S.STEP_NAME = ?2 "
                "AND S.STATUS = 'STARTED' ORDER BY S.STEP_EXECUTION_ID DESC LIMIT 1" },
        [SQL_GET_STEPS] = { .sqlite =
                "SELECT " STEP_COLUMNS STEP_FROM " WHERE S.JOB_EXECUTION_ID = ?1 ORDER BY S.STEP_EXECUTION_ID" },
        /* Spring's getLastStepExecution(): across all executions of the instance, newest first. Newest by id:
         * the stored times are wall-clock text that repeats in the autumn DST hour (and can be UTC or local,
         * see "timestamps"), while ids only ever grow. */
        /* CROSS JOIN pins the executions of the instance as the outer loop; left to itself the planner may
         * walk every step of that name in the whole history. */
        [SQL_LAST_STEP] = { .sqlite =
                "SELECT " STEP_COLUMNS " FROM BATCH_JOB_EXECUTION E"
                " CROSS JOIN BATCH_STEP_EXECUTION S ON S.JOB_EXECUTION_ID = E.JOB_EXECUTION_ID"
                " LEFT JOIN BATCH_STEP_EXECUTION_CONTEXT C ON C.STEP_EXECUTION_ID = S.STEP_EXECUTION_ID"
                " WHERE E.JOB_INSTANCE_ID = ?1 AND S.STEP_NAME = ?2"
                " ORDER BY S.STEP_EXECUTION_ID DESC LIMIT 1",
                /* PostgreSQL has no CROSS JOIN ... ON; its planner picks the join order by statistics. */
                .postgresql =
                "SELECT " STEP_COLUMNS " FROM BATCH_JOB_EXECUTION E"
                " JOIN BATCH_STEP_EXECUTION S ON S.JOB_EXECUTION_ID = E.JOB_EXECUTION_ID"
                " LEFT JOIN BATCH_STEP_EXECUTION_CONTEXT C ON C.STEP_EXECUTION_ID = S.STEP_EXECUTION_ID"
                " WHERE E.JOB_INSTANCE_ID = ?1 AND S.STEP_NAME = ?2"
                " ORDER BY S.STEP_EXECUTION_ID DESC LIMIT 1" },
        [SQL_STEP_COUNT] = { .sqlite =
                "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION E"
                " CROSS JOIN BATCH_STEP_EXECUTION S ON S.JOB_EXECUTION_ID = E.JOB_EXECUTION_ID"
                " WHERE E.JOB_INSTANCE_ID = ?1 AND S.STEP_NAME = ?2",
                .postgresql =
                "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION E"
                " JOIN BATCH_STEP_EXECUTION S ON S.JOB_EXECUTION_ID = E.JOB_EXECUTION_ID"
                " WHERE E.JOB_INSTANCE_ID = ?1 AND S.STEP_NAME = ?2" },
        [SQL_JOB_NAMES] = { .sqlite =
                "SELECT DISTINCT JOB_NAME FROM BATCH_JOB_INSTANCE ORDER BY JOB_NAME" },
        [SQL_INSTANCES_OF_JOB] = { .sqlite =
                "SELECT JOB_INSTANCE_ID, VERSION, JOB_NAME, JOB_KEY FROM BATCH_JOB_INSTANCE WHERE JOB_NAME = ?1 "
                "ORDER BY JOB_INSTANCE_ID DESC LIMIT ?3 OFFSET ?2" },
        [SQL_INSTANCE_COUNT] = { .sqlite =
                "SELECT COUNT(*) FROM BATCH_JOB_INSTANCE WHERE JOB_NAME = ?1" },
        /* The highest run.id any execution of the job was launched with (Spring stores canonical longs). First
         * among the 1000 highest run.ids of all jobs, from BATCHD_RUN_ID_IDX (schema/005): that is exact
         * whenever the job has one there, and about a millisecond at 200,000 executions. Only a job with none
         * there walks its own executions' parameters. */
        [SQL_MAX_RUN_ID] = { .sqlite =
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
                /* PostgreSQL: the first part orders by the very expression of BATCHD_RUN_ID_IDX (schema/postgresql/
                 * 002) under its condition, so it reads that index backwards; a row could only be in it if its value
                 * cast. The fallback walks rows no index vouches for (a database another writer filled): a value
                 * that is not a canonical long counts as none instead of failing the launch with a cast error. */
                .postgresql =
                "SELECT COALESCE("
                "(SELECT MAX(T.V) FROM (SELECT CAST(P.PARAMETER_VALUE AS BIGINT) AS V, P.JOB_EXECUTION_ID AS X"
                " FROM BATCH_JOB_EXECUTION_PARAMS P"
                " WHERE P.PARAMETER_NAME = 'run.id' AND P.PARAMETER_TYPE = 'java.lang.Long'"
                " ORDER BY CAST(P.PARAMETER_VALUE AS BIGINT) DESC LIMIT 1000) T"
                " JOIN BATCH_JOB_EXECUTION E ON E.JOB_EXECUTION_ID = T.X"
                " JOIN BATCH_JOB_INSTANCE I ON I.JOB_INSTANCE_ID = E.JOB_INSTANCE_ID WHERE I.JOB_NAME = CAST(?1 AS VARCHAR)),"
                "(SELECT MAX(CASE WHEN P.PARAMETER_VALUE ~ '^-?[0-9]{1,18}$' THEN CAST(P.PARAMETER_VALUE AS BIGINT) END)"
                " FROM BATCH_JOB_INSTANCE I"
                " JOIN BATCH_JOB_EXECUTION E ON E.JOB_INSTANCE_ID = I.JOB_INSTANCE_ID"
                " JOIN BATCH_JOB_EXECUTION_PARAMS P ON P.JOB_EXECUTION_ID = E.JOB_EXECUTION_ID"
                " WHERE I.JOB_NAME = CAST(?1 AS VARCHAR) AND P.PARAMETER_NAME = 'run.id'"
                " AND P.PARAMETER_TYPE = 'java.lang.Long'))" },
        /* One statement per filter: a `(?1 IS NULL OR ...)` filter cannot use an index, so the planner walks the
         * whole history. test-repository's test_query_plans checks each plan. Unfiltered, the walk backwards
         * along the primary key stops after offset + limit rows. */
        [SQL_LIST_EXECUTIONS] = { .sqlite =
                "SELECT " EXECUTION_COLUMNS EXECUTION_FROM
                " ORDER BY E.JOB_EXECUTION_ID DESC LIMIT ?4 OFFSET ?3",
                .postgresql =
                "SELECT " EXECUTION_COLUMNS EXECUTION_FROM
                " WHERE " PG_UNUSED(1, "VARCHAR") " AND " PG_UNUSED(2, "BIGINT")
                " ORDER BY E.JOB_EXECUTION_ID DESC LIMIT ?4 OFFSET ?3" },
        /* The page's ids come from the two covering indexes alone (by name, then by instance); only the rows of
         * the page are read. */
        [SQL_LIST_EXECUTIONS_OF_JOB] = { .sqlite =
                "SELECT " EXECUTION_COLUMNS EXECUTION_FROM
                " WHERE E.JOB_EXECUTION_ID IN (SELECT E2.JOB_EXECUTION_ID FROM BATCH_JOB_INSTANCE I2"
                "  CROSS JOIN BATCH_JOB_EXECUTION E2 ON E2.JOB_INSTANCE_ID = I2.JOB_INSTANCE_ID"
                "  WHERE I2.JOB_NAME = ?1 ORDER BY E2.JOB_EXECUTION_ID DESC LIMIT ?4 OFFSET ?3)"
                " ORDER BY E.JOB_EXECUTION_ID DESC",
                .postgresql =
                "SELECT " EXECUTION_COLUMNS EXECUTION_FROM
                " WHERE E.JOB_EXECUTION_ID IN (SELECT E2.JOB_EXECUTION_ID FROM BATCH_JOB_INSTANCE I2"
                "  JOIN BATCH_JOB_EXECUTION E2 ON E2.JOB_INSTANCE_ID = I2.JOB_INSTANCE_ID"
                "  WHERE I2.JOB_NAME = ?1 AND " PG_UNUSED(2, "BIGINT")
                "  ORDER BY E2.JOB_EXECUTION_ID DESC LIMIT ?4 OFFSET ?3)"
                " ORDER BY E.JOB_EXECUTION_ID DESC" },
        [SQL_LIST_EXECUTIONS_OF_INSTANCE] = { .sqlite =
                "SELECT " EXECUTION_COLUMNS EXECUTION_FROM
                " WHERE E.JOB_INSTANCE_ID = ?2 AND (?1 IS NULL OR I.JOB_NAME = ?1)"
                " ORDER BY E.JOB_EXECUTION_ID DESC LIMIT ?4 OFFSET ?3",
                /* PostgreSQL needs the type of a parameter that is only tested for NULL. */
                .postgresql =
                "SELECT " EXECUTION_COLUMNS EXECUTION_FROM
                " WHERE E.JOB_INSTANCE_ID = ?2 AND (CAST(?1 AS VARCHAR) IS NULL OR I.JOB_NAME = ?1)"
                " ORDER BY E.JOB_EXECUTION_ID DESC LIMIT ?4 OFFSET ?3" },
        /* ListJobs and the job objects' LastExecutionId/LastStatus: two primary-key lookups, whatever the history.
         * BATCHD_JOB_LAST_EXECUTION is kept by triggers (schema 009, postgresql 005). */
        [SQL_LAST_EXECUTION_OF_JOB] = { .sqlite =
                "SELECT " EXECUTION_COLUMNS EXECUTION_FROM
                " WHERE E.JOB_EXECUTION_ID = (SELECT L.JOB_EXECUTION_ID FROM BATCHD_JOB_LAST_EXECUTION L"
                "  WHERE L.JOB_NAME = ?1)" },
        [SQL_RUNNING_EXECUTIONS] = { .sqlite =
                "SELECT " EXECUTION_COLUMNS EXECUTION_FROM
                " WHERE " RUNNING("E") " AND (?1 IS NULL OR I.JOB_NAME = ?1)"
                " ORDER BY E.JOB_EXECUTION_ID LIMIT ?2",
                .postgresql =
                "SELECT " EXECUTION_COLUMNS EXECUTION_FROM
                " WHERE " RUNNING("E") " AND (CAST(?1 AS VARCHAR) IS NULL OR I.JOB_NAME = ?1)"
                /* SQLite's LIMIT -1 (no limit) is PostgreSQL's LIMIT NULL */
                " ORDER BY E.JOB_EXECUTION_ID LIMIT NULLIF(GREATEST(CAST(?2 AS BIGINT), -1), -1)" },
        [SQL_FAIL_RUNNING_STEPS] = { .sqlite =
                "UPDATE BATCH_STEP_EXECUTION SET STATUS = 'FAILED', EXIT_CODE = 'FAILED', EXIT_MESSAGE = ?2, "
                "END_TIME = ?3, LAST_UPDATED = ?3, VERSION = VERSION + 1 "
                "WHERE JOB_EXECUTION_ID = ?1 AND STATUS IN " RUNNING_STATUSES },
        /* A step on record as running under an execution that ended: left by a batchd that recorded the job's
         * end but not the step's. Nothing can be running it. One statement per case, each on an index (the
         * step executions of one job execution; the partial index of running steps, schema/006). */
        [SQL_FAIL_ORPHAN_STEPS] = { .sqlite =
                "UPDATE BATCH_STEP_EXECUTION SET STATUS = 'FAILED', EXIT_CODE = 'FAILED', EXIT_MESSAGE = ?2, "
                "END_TIME = COALESCE(END_TIME, ?3), LAST_UPDATED = ?3, VERSION = VERSION + 1 "
                "WHERE JOB_EXECUTION_ID = ?1 AND STATUS IN " RUNNING_STATUSES " "
                "AND NOT EXISTS (SELECT 1 FROM BATCH_JOB_EXECUTION E WHERE E.JOB_EXECUTION_ID = ?1 AND " RUNNING("E") ")" },
        [SQL_FAIL_ALL_ORPHAN_STEPS] = { .sqlite =
                "UPDATE BATCH_STEP_EXECUTION SET STATUS = 'FAILED', EXIT_CODE = 'FAILED', EXIT_MESSAGE = ?2, "
                "END_TIME = COALESCE(END_TIME, ?3), LAST_UPDATED = ?3, VERSION = VERSION + 1 "
                "WHERE " RUNNING("BATCH_STEP_EXECUTION") " AND NOT EXISTS (SELECT 1 FROM BATCH_JOB_EXECUTION E "
                "WHERE E.JOB_EXECUTION_ID = BATCH_STEP_EXECUTION.JOB_EXECUTION_ID AND " RUNNING("E") ")",
                .postgresql =
                "UPDATE BATCH_STEP_EXECUTION SET STATUS = 'FAILED', EXIT_CODE = 'FAILED', EXIT_MESSAGE = ?2, "
                "END_TIME = COALESCE(END_TIME, ?3), LAST_UPDATED = ?3, VERSION = VERSION + 1 "
                "WHERE " RUNNING("BATCH_STEP_EXECUTION") " AND NOT EXISTS (SELECT 1 FROM BATCH_JOB_EXECUTION E "
                "WHERE E.JOB_EXECUTION_ID = BATCH_STEP_EXECUTION.JOB_EXECUTION_ID AND " RUNNING("E") ") "
                "AND " PG_UNUSED(1, "BIGINT") },
        /* batchd's own tables (schedule-store.c, schema/003). Two statements for the non-runs: a
         * `(?1 IS NULL OR ...)` filter cannot use BATCHD_JOB_NONRUN_JOB_IDX. */
        [SQL_GET_LAST_FIRE] = { .sqlite =
                "SELECT LAST_FIRE_USEC FROM BATCHD_JOB_SCHEDULE WHERE JOB_NAME = ?1" },
        [SQL_SET_LAST_FIRE] = { .sqlite =
                "INSERT INTO BATCHD_JOB_SCHEDULE (JOB_NAME, LAST_FIRE_TIME, LAST_FIRE_USEC, LAST_EXECUTION_ID) "
                "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (JOB_NAME) DO UPDATE SET "
                "LAST_FIRE_TIME = ?2, LAST_FIRE_USEC = ?3, LAST_EXECUTION_ID = ?4 "
                /* Only forward: in a cluster a node that is late (skewed, or catching up) must not move back
                 * what another node recorded. */
                "WHERE BATCHD_JOB_SCHEDULE.LAST_FIRE_USEC <= ?3" },
        [SQL_ADD_NONRUN] = { .sqlite =
                "INSERT INTO BATCHD_JOB_NONRUN (JOB_NAME, SCHEDULED_TIME, SCHEDULED_USEC, RECORDED_TIME, REASON, "
                "DETAIL) VALUES (?1, ?2, ?3, ?4, ?5, ?6)" },
        [SQL_LIST_NONRUNS] = { .sqlite =
                "SELECT NONRUN_ID, JOB_NAME, SCHEDULED_USEC, RECORDED_TIME, REASON, DETAIL "
                "FROM BATCHD_JOB_NONRUN ORDER BY NONRUN_ID DESC LIMIT ?2",
                .postgresql =
                "SELECT NONRUN_ID, JOB_NAME, SCHEDULED_USEC, RECORDED_TIME, REASON, DETAIL "
                "FROM BATCHD_JOB_NONRUN WHERE " PG_UNUSED(1, "VARCHAR") " ORDER BY NONRUN_ID DESC LIMIT ?2" },
        [SQL_LIST_NONRUNS_OF_JOB] = { .sqlite =
                "SELECT NONRUN_ID, JOB_NAME, SCHEDULED_USEC, RECORDED_TIME, REASON, DETAIL "
                "FROM BATCHD_JOB_NONRUN WHERE JOB_NAME = ?1 ORDER BY NONRUN_ID DESC LIMIT ?2" },
        /* batchctl enable/disable/revert (schedule-store.c, schema/008). */
        [SQL_GET_JOB_ENABLED] = { .sqlite =
                "SELECT ENABLED FROM BATCHD_JOB_ENABLED WHERE JOB_NAME = ?1" },
        [SQL_SET_JOB_ENABLED] = { .sqlite =
                "INSERT INTO BATCHD_JOB_ENABLED (JOB_NAME, ENABLED, CHANGED_TIME) VALUES (?1, ?2, ?3) "
                "ON CONFLICT (JOB_NAME) DO UPDATE SET ENABLED = ?2, CHANGED_TIME = ?3" },
        [SQL_CLEAR_JOB_ENABLED] = { .sqlite =
                "DELETE FROM BATCHD_JOB_ENABLED WHERE JOB_NAME = ?1" },
        /* batchctl purge (repository-purge.c): non-runs scheduled before ?1 (µs), or beyond the newest ?1 of
         * their job; of job ?2, NULL for every job. */
        [SQL_PURGE_NONRUNS_OLDER] = { .sqlite =
                "DELETE FROM BATCHD_JOB_NONRUN WHERE SCHEDULED_USEC < ?1 AND (?2 IS NULL OR JOB_NAME = ?2)",
                .postgresql =
                "DELETE FROM BATCHD_JOB_NONRUN WHERE SCHEDULED_USEC < CAST(?1 AS BIGINT) "
                "AND (CAST(?2 AS VARCHAR) IS NULL OR JOB_NAME = CAST(?2 AS VARCHAR))" },
        [SQL_PURGE_NONRUNS_KEEP] = { .sqlite =
                "DELETE FROM BATCHD_JOB_NONRUN WHERE NONRUN_ID IN (SELECT ID FROM (SELECT NONRUN_ID AS ID, "
                "ROW_NUMBER() OVER (PARTITION BY JOB_NAME ORDER BY NONRUN_ID DESC) AS RN FROM BATCHD_JOB_NONRUN "
                "WHERE (?2 IS NULL OR JOB_NAME = ?2)) RANKED WHERE RANKED.RN > ?1)",
                .postgresql =
                "DELETE FROM BATCHD_JOB_NONRUN WHERE NONRUN_ID IN (SELECT ID FROM (SELECT NONRUN_ID AS ID, "
                "ROW_NUMBER() OVER (PARTITION BY JOB_NAME ORDER BY NONRUN_ID DESC) AS RN FROM BATCHD_JOB_NONRUN "
                "WHERE (CAST(?2 AS VARCHAR) IS NULL OR JOB_NAME = CAST(?2 AS VARCHAR))) RANKED "
                "WHERE RANKED.RN > CAST(?1 AS BIGINT))" },
};

const char *repository_sql(Repository *r, Sql id) {
        if (db_backend(r->db) == DB_BACKEND_POSTGRESQL && sql_text[id].postgresql)
                return sql_text[id].postgresql;
        return sql_text[id].sqlite;
}

int repository_statement(Repository *r, Sql id, DbStatement **ret) {
        int k;

        assert(r);
        assert(id >= 0 && id < _SQL_MAX);
        assert(ret);

        if (!r->stmts[id]) {
                k = db_prepare(r->db, repository_sql(r, id), &r->stmts[id]);
                if (k < 0)
                        return k;
        }
        *ret = r->stmts[id];
        return 0;
}

int repository_query_plans(Repository *r, int (*cb)(const char *sql, const char *detail, void *userdata),
                           void *userdata) {
        assert(r);
        assert(cb);

        /* SQLite's EXPLAIN QUERY PLAN gives a row per loop, its column 3 the detail ("SEARCH E USING INTEGER
         * PRIMARY KEY ..."). PostgreSQL's EXPLAIN gives a row per line of the plan, in column 0; it parses and
         * plans the statement with its parameters unbound, so it also proves that every parameter's type can be
         * determined, without running anything. */
        bool pg = db_backend(r->db) == DB_BACKEND_POSTGRESQL;

        for (Sql id = 0; id < _SQL_MAX; id++) {
                _cleanup_db_reset_ DbStatement *s = NULL;
                int k = 0, rc;

                if (!r->plan_stmts[id]) {
                        _cleanup_free_ char *q = NULL;

                        if (asprintf(&q, pg ? "EXPLAIN %s" : "EXPLAIN QUERY PLAN %s", repository_sql(r, id)) < 0)
                                return -ENOMEM;
                        rc = db_prepare(r->db, q, &r->plan_stmts[id]);
                        if (rc < 0)
                                return rc;
                }
                s = r->plan_stmts[id];
                while (k >= 0 && (rc = db_step(s)) == DB_ROW)
                        k = cb(repository_sql(r, id), db_column_text(s, pg ? 0 : 3), userdata);
                if (k < 0)
                        return k;
                if (rc < 0)
                        return rc;
        }
        return 0;
}
