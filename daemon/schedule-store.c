/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <sqlite3.h>

#include "schedule-store.h"

void nonrun_array_free(NonRun *a, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(a[i].job_name);
                free(a[i].reason);
                free(a[i].detail);
        }
        free(a);
}

static int errno_from_rc(int rc) {
        return rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? -EBUSY : rc == SQLITE_READONLY ? -EROFS : -EIO;
}

int schedule_store_get_last_fire(Repository *r, const char *job, usec_t *ret) {
        sqlite3_stmt *s = NULL;
        int rc;

        rc = sqlite3_prepare_v2(repository_get_database(r),
                                "SELECT LAST_FIRE_USEC FROM BATCHD_JOB_SCHEDULE WHERE JOB_NAME = ?1", -1, &s, NULL);
        if (rc != SQLITE_OK)
                return errno_from_rc(rc);
        sqlite3_bind_text(s, 1, job, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
                *ret = (usec_t) sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        return rc == SQLITE_ROW ? 0 : errno_from_rc(rc);
}

int schedule_store_set_last_fire(Repository *r, const char *job, usec_t fire, int64_t execution_id) {
        char buf[TIMESTAMP_MAX];
        sqlite3_stmt *s = NULL;
        int rc;

        rc = sqlite3_prepare_v2(repository_get_database(r),
                                "INSERT INTO BATCHD_JOB_SCHEDULE (JOB_NAME, LAST_FIRE_TIME, LAST_FIRE_USEC, "
                                "LAST_EXECUTION_ID) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (JOB_NAME) DO UPDATE SET "
                                "LAST_FIRE_TIME = ?2, LAST_FIRE_USEC = ?3, LAST_EXECUTION_ID = ?4 "
                                /* Only forward: in a cluster a node that is late (skewed, or catching up)
                                 * must not move back what another node recorded. */
                                "WHERE BATCHD_JOB_SCHEDULE.LAST_FIRE_USEC <= ?3", -1, &s, NULL);
        if (rc != SQLITE_OK)
                return errno_from_rc(rc);
        sqlite3_bind_text(s, 1, job, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, strempty(repository_timestamp_format(r, fire, buf)), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 3, (int64_t) fire);
        if (execution_id > 0)
                sqlite3_bind_int64(s, 4, execution_id);
        rc = sqlite3_step(s);
        sqlite3_finalize(s);
        return rc == SQLITE_DONE ? 0 : errno_from_rc(rc);
}

int schedule_store_add_nonrun(Repository *r, const char *job, usec_t scheduled, const char *reason,
                              const char *detail) {
        char buf[TIMESTAMP_MAX], now[TIMESTAMP_MAX];
        sqlite3_stmt *s = NULL;
        int rc;

        rc = sqlite3_prepare_v2(repository_get_database(r),
                                "INSERT INTO BATCHD_JOB_NONRUN (JOB_NAME, SCHEDULED_TIME, SCHEDULED_USEC, "
                                "RECORDED_TIME, REASON, DETAIL) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1, &s, NULL);
        if (rc != SQLITE_OK)
                return errno_from_rc(rc);
        sqlite3_bind_text(s, 1, job, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, strempty(repository_timestamp_format(r, scheduled, buf)), -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, (int64_t) scheduled);
        sqlite3_bind_text(s, 4, strempty(repository_timestamp_format(r, now_usec(CLOCK_REALTIME), now)), -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 5, reason, -1, SQLITE_STATIC);
        if (detail)
                sqlite3_bind_text(s, 6, detail, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        sqlite3_finalize(s);
        return rc == SQLITE_DONE ? 0 : errno_from_rc(rc);
}

int schedule_store_list_nonruns(Repository *r, const char *job, size_t limit, NonRun **ret, size_t *ret_n) {
        sqlite3_stmt *s = NULL;
        NonRun *a = NULL;
        size_t n = 0;
        int rc;

        /* Two statements: a `(?1 IS NULL OR ...)` filter cannot use BATCHD_JOB_NONRUN_JOB_IDX. */
        rc = sqlite3_prepare_v2(repository_get_database(r),
                                job ? "SELECT NONRUN_ID, JOB_NAME, SCHEDULED_USEC, RECORDED_TIME, REASON, DETAIL "
                                      "FROM BATCHD_JOB_NONRUN WHERE JOB_NAME = ?1 "
                                      "ORDER BY NONRUN_ID DESC LIMIT ?2"
                                    : "SELECT NONRUN_ID, JOB_NAME, SCHEDULED_USEC, RECORDED_TIME, REASON, DETAIL "
                                      "FROM BATCHD_JOB_NONRUN ORDER BY NONRUN_ID DESC LIMIT ?2", -1, &s, NULL);
        if (rc != SQLITE_OK)
                return errno_from_rc(rc);
        if (job)
                sqlite3_bind_text(s, 1, job, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, limit == 0 || limit > REPOSITORY_PAGE_MAX ? REPOSITORY_PAGE_MAX : (int64_t) limit);

        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                NonRun *na = reallocarray(a, n + 1, sizeof(NonRun));
                const char *t;
                usec_t recorded = 0;

                if (!na)
                        goto oom;
                a = na;
                a[n] = (NonRun) { .id = sqlite3_column_int64(s, 0), .scheduled = (usec_t) sqlite3_column_int64(s, 2) };
                n++;
                t = (const char *) sqlite3_column_text(s, 3);
                if (t)
                        (void) repository_timestamp_parse(r, t, &recorded);
                a[n - 1].recorded = recorded;
                a[n - 1].job_name = strdup((const char *) sqlite3_column_text(s, 1) ?: "");
                a[n - 1].reason = strdup((const char *) sqlite3_column_text(s, 4) ?: "");
                t = (const char *) sqlite3_column_text(s, 5);
                a[n - 1].detail = t ? strdup(t) : NULL;
                if (!a[n - 1].job_name || !a[n - 1].reason || (t && !a[n - 1].detail))
                        goto oom;
        }
        sqlite3_finalize(s);
        if (rc != SQLITE_DONE) {
                nonrun_array_free(a, n);
                return errno_from_rc(rc);
        }
        *ret = a;
        *ret_n = n;
        return 0;

oom:
        sqlite3_finalize(s);
        nonrun_array_free(a, n);
        return -ENOMEM;
}
