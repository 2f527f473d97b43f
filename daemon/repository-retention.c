/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>

#include "repository-internal.h"

/* Retention (batchd.conf keep_days, keep_executions): history that may go, in one transaction. */

int repository_delete_old(Repository *r, unsigned keep_days, unsigned keep_executions, usec_t now,
                          uint64_t *ret_deleted) {
        _cleanup_transaction_ Repository *tx = NULL;
        _cleanup_db_reset_ DbStatement *s = NULL;
        char cutoff[TIMESTAMP_MAX] = "";
        int64_t deleted;
        bool pg;
        int k;

        assert(r);

        pg = db_backend(r->db) == DB_BACKEND_POSTGRESQL;
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

        k = db_exec(r->db, pg ? "SET LOCAL client_min_messages = warning; "     /* not "already exists" every time */
                                "CREATE TEMP TABLE IF NOT EXISTS doomed (ID BIGINT PRIMARY KEY); DELETE FROM doomed;" :
                                "CREATE TEMP TABLE IF NOT EXISTS doomed (ID INTEGER PRIMARY KEY); DELETE FROM doomed;");
        if (k < 0)
                return k;

        /* Not in the statement table: it walks the history by design (test_query_plans forbids that there), and
         * its table only exists once the statement above ran on this connection. */
        if (!r->retention_stmt) {
                /* PostgreSQL compares END_TIME, a TIMESTAMP, with a timestamp: the cutoff is text, '' for none. */
#define DOOMED(cutoff_set, before_cutoff, keep)                                                                 \
                        "INSERT INTO doomed SELECT E.JOB_EXECUTION_ID FROM BATCH_JOB_EXECUTION E "              \
                        "JOIN BATCH_JOB_INSTANCE I ON I.JOB_INSTANCE_ID = E.JOB_INSTANCE_ID "                   \
                        "WHERE NOT EXISTS (SELECT 1 FROM BATCH_JOB_EXECUTION R WHERE R.JOB_INSTANCE_ID = E.JOB_INSTANCE_ID " \
                        "                  AND " RUNNING("R") ") "                                              \
                        "AND ((" cutoff_set " AND E.END_TIME IS NOT NULL AND E.END_TIME < " before_cutoff ") "  \
                        "  OR (" keep " > 0 AND E.JOB_EXECUTION_ID IN ("                                        \
                        "      SELECT ID FROM (SELECT E2.JOB_EXECUTION_ID AS ID, ROW_NUMBER() OVER ("           \
                        "          PARTITION BY I2.JOB_NAME ORDER BY E2.JOB_EXECUTION_ID DESC) AS RN "          \
                        "        FROM BATCH_JOB_EXECUTION E2 "                                                  \
                        "        JOIN BATCH_JOB_INSTANCE I2 ON I2.JOB_INSTANCE_ID = E2.JOB_INSTANCE_ID) T "     \
                        "      WHERE T.RN > " keep ")))"
                k = db_prepare(r->db,
                               pg ? DOOMED("CAST(?1 AS VARCHAR) <> ''", "CAST(NULLIF(CAST(?1 AS VARCHAR), '') AS TIMESTAMP)",
                                           "CAST(?2 AS BIGINT)") :
                                    DOOMED("?1 != ''", "?1", "?2"),
                               &r->retention_stmt);
#undef DOOMED
                if (k < 0)
                        return k;
        }
        s = r->retention_stmt;
        db_bind_text(s, 1, cutoff);
        db_bind_int64(s, 2, keep_executions);
        k = db_step(s);
        if (k < 0)
                return k;
        deleted = db_changes(r->db);

        k = db_exec(r->db,
                "DELETE FROM BATCH_STEP_EXECUTION_CONTEXT WHERE STEP_EXECUTION_ID IN "
                "  (SELECT STEP_EXECUTION_ID FROM BATCH_STEP_EXECUTION WHERE JOB_EXECUTION_ID IN (SELECT ID FROM doomed));"
                "DELETE FROM BATCH_STEP_EXECUTION WHERE JOB_EXECUTION_ID IN (SELECT ID FROM doomed);"
                "DELETE FROM BATCH_JOB_EXECUTION_CONTEXT WHERE JOB_EXECUTION_ID IN (SELECT ID FROM doomed);"
                "DELETE FROM BATCH_JOB_EXECUTION_PARAMS WHERE JOB_EXECUTION_ID IN (SELECT ID FROM doomed);"
                /* The cluster's record of who ran it (schema/007-cluster.sql) goes with it. */
                "DELETE FROM BATCHD_EXECUTION_OWNER WHERE JOB_EXECUTION_ID IN (SELECT ID FROM doomed);"
                "DELETE FROM BATCH_JOB_EXECUTION WHERE JOB_EXECUTION_ID IN (SELECT ID FROM doomed);"
                "DELETE FROM BATCH_JOB_INSTANCE WHERE NOT EXISTS "
                "  (SELECT 1 FROM BATCH_JOB_EXECUTION E WHERE E.JOB_INSTANCE_ID = BATCH_JOB_INSTANCE.JOB_INSTANCE_ID);"
                "DELETE FROM doomed;");
        if (k < 0)
                return k;

        k = repository_commit(r, NULL);
        if (k < 0)
                return k;
        tx = NULL;

        if (ret_deleted)
                *ret_deleted = (uint64_t) deleted;
        return 0;
}
