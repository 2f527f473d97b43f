/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>

#include "batch-error.h"
#include "repository-internal.h"

/* "batchctl purge": retention on demand (repository.h, repository_purge()). The executions to remove are
 * collected into a temporary table first, as repository_delete_old() does: that walks the history by design, so
 * it is not in the statement table (test_query_plans forbids walks there), and it refers to a table that exists
 * only on this connection. The non-run statements are in the table (SQL_PURGE_NONRUNS_*). */

static int purge_prepare(Repository *r) {
        int k;

        /* Outside the transaction: a dry run rolls back, and must not take the tables its cached statement
         * refers to with it. */
        k = db_exec(r->db, "CREATE TEMP TABLE IF NOT EXISTS purge_executions (ID BIGINT PRIMARY KEY);"
                           "CREATE TEMP TABLE IF NOT EXISTS purge_instances (ID BIGINT PRIMARY KEY);");
        if (k < 0)
                return k;
        if (r->purge_stmt)
                return 0;
        /* The executions of the job (?3 NULL: of every job) that ended before ?1 (a timestamp, '' for no such
         * rule) or are beyond the newest ?2 of their job (0: no such rule), and whose instance has nothing
         * running: a running execution, and the history its restart needs, are never touched. */
        /* PostgreSQL compares END_TIME, a TIMESTAMP, with a timestamp, and wants the parameters' types spelt
         * out (as repository_delete_old() does); SQLite compares the texts. */
#define PURGE(job, cutoff_set, before_cutoff, keep)                                                             \
                "INSERT INTO purge_executions SELECT E.JOB_EXECUTION_ID FROM BATCH_JOB_EXECUTION E "            \
                "JOIN BATCH_JOB_INSTANCE I ON I.JOB_INSTANCE_ID = E.JOB_INSTANCE_ID "                           \
                "WHERE (" job " IS NULL OR I.JOB_NAME = " job ") "                                              \
                "AND NOT EXISTS (SELECT 1 FROM BATCH_JOB_EXECUTION R WHERE R.JOB_INSTANCE_ID = E.JOB_INSTANCE_ID " \
                "                AND " RUNNING("R") ") "                                                        \
                "AND ((" cutoff_set " AND E.END_TIME IS NOT NULL AND E.END_TIME < " before_cutoff ") "          \
                "  OR (" keep " > 0 AND E.JOB_EXECUTION_ID IN ("                                                \
                "      SELECT ID FROM (SELECT E2.JOB_EXECUTION_ID AS ID, ROW_NUMBER() OVER ("                   \
                "          PARTITION BY I2.JOB_NAME ORDER BY E2.JOB_EXECUTION_ID DESC) AS RN "                  \
                "        FROM BATCH_JOB_EXECUTION E2 "                                                          \
                "        JOIN BATCH_JOB_INSTANCE I2 ON I2.JOB_INSTANCE_ID = E2.JOB_INSTANCE_ID "                \
                "        WHERE (" job " IS NULL OR I2.JOB_NAME = " job ")) RANKED WHERE RANKED.RN > " keep ")))"
        k = db_prepare(r->db,
                       db_backend(r->db) == DB_BACKEND_POSTGRESQL ?
                       PURGE("CAST(?3 AS VARCHAR)", "CAST(?1 AS VARCHAR) <> ''",
                             "CAST(NULLIF(CAST(?1 AS VARCHAR), '') AS TIMESTAMP)", "CAST(?2 AS BIGINT)") :
                       PURGE("?3", "?1 != ''", "?1", "?2"),
                       &r->purge_stmt);
#undef PURGE
        return k;
}

static int purge_nonruns(Repository *r, const char *job, usec_t older_than_cutoff, unsigned keep,
                         uint64_t *ret_n) {
        uint64_t n = 0;
        int k;

        if (older_than_cutoff > 0) {
                _cleanup_db_reset_ DbStatement *s = NULL;

                k = repository_statement(r, SQL_PURGE_NONRUNS_OLDER, &s);
                if (k < 0)
                        return k;
                db_bind_int64(s, 1, (int64_t) older_than_cutoff);
                db_bind_text(s, 2, job);
                k = db_step(s);
                if (k < 0)
                        return k;
                n += (uint64_t) db_changes(r->db);
        }
        if (keep > 0) {
                _cleanup_db_reset_ DbStatement *s = NULL;

                k = repository_statement(r, SQL_PURGE_NONRUNS_KEEP, &s);
                if (k < 0)
                        return k;
                db_bind_int64(s, 1, keep);
                db_bind_text(s, 2, job);
                k = db_step(s);
                if (k < 0)
                        return k;
                n += (uint64_t) db_changes(r->db);
        }
        *ret_n = n;
        return 0;
}

int repository_purge(Repository *r, const char *job, usec_t older_than, unsigned keep, bool dry_run, usec_t now,
                     RepositoryPurgeResult *ret, sd_bus_error *error) {
        _cleanup_transaction_ Repository *tx = NULL;
        _cleanup_db_reset_ DbStatement *s = NULL;
        RepositoryPurgeResult result = {};
        char cutoff[TIMESTAMP_MAX] = "";
        usec_t cutoff_usec = 0;
        int k;

        assert(r);
        assert(ret);

        if (older_than == 0 && keep == 0)
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS,
                                        "Nothing to purge by: give an age, a number of executions to keep, or both."),
                       -EINVAL;
        /* An age beyond now purges everything that ended; 1 µs keeps "older than" meaning strictly older. */
        if (older_than > 0) {
                cutoff_usec = now > older_than ? now - older_than : 1;
                (void) repository_timestamp_format(r, cutoff_usec, cutoff);
        }

        if (r->read_only)
                return sd_bus_error_setf(error, BATCH_ERROR_DATABASE, "Database %s is opened read-only.",
                                         db_location(r->db)), -EROFS;
        if (r->tx_depth == 0) {
                k = purge_prepare(r);
                if (k < 0)
                        return repository_error(r, k, error, "prepare the purge");
        } else if (!r->purge_stmt)
                return -EBUSY;  /* only ever called outside a transaction */

        k = repository_begin(r, error);
        if (k < 0)
                return k;
        tx = r;

        k = db_exec(r->db, "DELETE FROM purge_executions; DELETE FROM purge_instances;");
        if (k < 0)
                return repository_error(r, k, error, "purge");
        s = r->purge_stmt;
        db_bind_text(s, 1, cutoff);
        db_bind_int64(s, 2, keep);
        db_bind_text(s, 3, job);
        k = db_step(s);
        if (k < 0)
                return repository_error(r, k, error, "select the executions to purge");
        result.executions = (uint64_t) db_changes(r->db);

        k = db_exec(r->db,
                "INSERT INTO purge_instances SELECT DISTINCT JOB_INSTANCE_ID FROM BATCH_JOB_EXECUTION "
                "  WHERE JOB_EXECUTION_ID IN (SELECT ID FROM purge_executions);"
                "DELETE FROM BATCH_STEP_EXECUTION_CONTEXT WHERE STEP_EXECUTION_ID IN (SELECT STEP_EXECUTION_ID "
                "  FROM BATCH_STEP_EXECUTION WHERE JOB_EXECUTION_ID IN (SELECT ID FROM purge_executions));"
                "DELETE FROM BATCH_STEP_EXECUTION WHERE JOB_EXECUTION_ID IN (SELECT ID FROM purge_executions);"
                "DELETE FROM BATCH_JOB_EXECUTION_CONTEXT WHERE JOB_EXECUTION_ID IN (SELECT ID FROM purge_executions);"
                "DELETE FROM BATCH_JOB_EXECUTION_PARAMS WHERE JOB_EXECUTION_ID IN (SELECT ID FROM purge_executions);"
                "DELETE FROM BATCH_JOB_EXECUTION WHERE JOB_EXECUTION_ID IN (SELECT ID FROM purge_executions);");
        if (k < 0)
                return repository_error(r, k, error, "purge executions");
        /* Only the instances of the purged executions, and only once none of their executions is left. */
        k = db_exec(r->db,
                "DELETE FROM BATCH_JOB_INSTANCE WHERE JOB_INSTANCE_ID IN (SELECT ID FROM purge_instances) "
                "AND NOT EXISTS (SELECT 1 FROM BATCH_JOB_EXECUTION E "
                "                WHERE E.JOB_INSTANCE_ID = BATCH_JOB_INSTANCE.JOB_INSTANCE_ID);");
        if (k < 0)
                return repository_error(r, k, error, "purge job instances");
        result.instances = (uint64_t) db_changes(r->db);

        k = purge_nonruns(r, job, cutoff_usec, keep, &result.non_runs);
        if (k < 0)
                return repository_error(r, k, error, "purge non-runs");

        k = db_exec(r->db, "DELETE FROM purge_executions; DELETE FROM purge_instances;");
        if (k < 0)
                return repository_error(r, k, error, "purge");

        if (dry_run) {
                /* Everything counted exactly as it would be removed, and nothing removed. */
                repository_rollback(r);
                tx = NULL;
        } else {
                k = repository_commit(r, error);
                if (k < 0)
                        return k;
                tx = NULL;
        }

        *ret = result;
        return 0;
}
