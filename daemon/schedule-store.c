/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>

#include "repository-internal.h"
#include "schedule-store.h"

/* The statements are the repository's (SQL_GET_LAST_FIRE, ...): prepared once per connection like the others.
 * Errors are db.h's negative errno values. */

void nonrun_array_free(NonRun *a, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(a[i].job_name);
                free(a[i].reason);
                free(a[i].detail);
        }
        free(a);
}

int schedule_store_get_last_fire(Repository *r, const char *job, usec_t *ret) {
        _cleanup_db_reset_ DbStatement *s = NULL;
        int k;

        assert(r);
        assert(job);
        assert(ret);

        k = repository_statement(r, SQL_GET_LAST_FIRE, &s);
        if (k < 0)
                return k;
        db_bind_text(s, 1, job);
        k = db_step(s);
        if (k < 0)
                return k;
        if (k == DB_DONE)
                return -ENOENT;
        *ret = (usec_t) db_column_int64(s, 0);
        return 0;
}

int schedule_store_set_last_fire(Repository *r, const char *job, usec_t fire, int64_t execution_id) {
        _cleanup_db_reset_ DbStatement *s = NULL;
        char buf[TIMESTAMP_MAX];
        int k;

        assert(r);
        assert(job);

        k = repository_statement(r, SQL_SET_LAST_FIRE, &s);
        if (k < 0)
                return k;
        db_bind_text(s, 1, job);
        db_bind_text(s, 2, strempty(repository_timestamp_format(r, fire, buf)));
        db_bind_int64(s, 3, (int64_t) fire);
        if (execution_id > 0)
                db_bind_int64(s, 4, execution_id);
        k = db_step(s);
        return k < 0 ? k : 0;
}

int schedule_store_add_nonrun(Repository *r, const char *job, usec_t scheduled, const char *reason,
                              const char *detail) {
        _cleanup_db_reset_ DbStatement *s = NULL;
        char buf[TIMESTAMP_MAX], now[TIMESTAMP_MAX];
        int k;

        assert(r);
        assert(job);
        assert(reason);

        k = repository_statement(r, SQL_ADD_NONRUN, &s);
        if (k < 0)
                return k;
        db_bind_text(s, 1, job);
        db_bind_text(s, 2, strempty(repository_timestamp_format(r, scheduled, buf)));
        db_bind_int64(s, 3, (int64_t) scheduled);
        db_bind_text(s, 4, strempty(repository_timestamp_format(r, now_usec(CLOCK_REALTIME), now)));
        db_bind_text(s, 5, reason);
        db_bind_text(s, 6, detail);     /* NULL binds NULL */
        k = db_step(s);
        return k < 0 ? k : 0;
}

int schedule_store_list_nonruns(Repository *r, const char *job, size_t limit, NonRun **ret, size_t *ret_n) {
        _cleanup_db_reset_ DbStatement *s = NULL;
        NonRun *a = NULL;
        size_t n = 0;
        int k;

        assert(r);
        assert(ret);
        assert(ret_n);

        /* Two statements: a `(?1 IS NULL OR ...)` filter cannot use BATCHD_JOB_NONRUN_JOB_IDX. */
        k = repository_statement(r, job ? SQL_LIST_NONRUNS_OF_JOB : SQL_LIST_NONRUNS, &s);
        if (k < 0)
                return k;
        if (job)
                db_bind_text(s, 1, job);
        db_bind_int64(s, 2, limit == 0 || limit > REPOSITORY_PAGE_MAX ? REPOSITORY_PAGE_MAX : (int64_t) limit);

        while ((k = db_step(s)) == DB_ROW) {
                NonRun *na = reallocarray(a, n + 1, sizeof(NonRun));
                const char *t;
                usec_t recorded = 0;

                if (!na)
                        goto oom;
                a = na;
                a[n] = (NonRun) { .id = db_column_int64(s, 0), .scheduled = (usec_t) db_column_int64(s, 2) };
                n++;
                t = db_column_text(s, 3);
                if (t)
                        (void) repository_timestamp_parse(r, t, &recorded);
                a[n - 1].recorded = recorded;
                a[n - 1].job_name = strdup(db_column_text(s, 1) ?: "");
                a[n - 1].reason = strdup(db_column_text(s, 4) ?: "");
                t = db_column_text(s, 5);
                a[n - 1].detail = t ? strdup(t) : NULL;
                if (!a[n - 1].job_name || !a[n - 1].reason || (t && !a[n - 1].detail))
                        goto oom;
        }
        if (k < 0) {
                nonrun_array_free(a, n);
                return k;
        }
        *ret = a;
        *ret_n = n;
        return 0;

oom:
        nonrun_array_free(a, n);
        return -ENOMEM;
}

int schedule_store_get_enabled(Repository *r, const char *job, int *ret) {
        _cleanup_db_reset_ DbStatement *s = NULL;
        int k;

        assert(r);
        assert(job);
        assert(ret);

        k = repository_statement(r, SQL_GET_JOB_ENABLED, &s);
        if (k < 0)
                return k;
        db_bind_text(s, 1, job);
        k = db_step(s);
        if (k < 0)
                return k;
        if (k == DB_DONE)
                return -ENOENT;
        *ret = db_column_int64(s, 0) != 0;
        return 0;
}

int schedule_store_set_enabled(Repository *r, const char *job, int enabled) {
        _cleanup_db_reset_ DbStatement *s = NULL;
        char now[TIMESTAMP_MAX];
        int k;

        assert(r);
        assert(job);
        assert(enabled >= -1 && enabled <= 1);

        k = repository_statement(r, enabled < 0 ? SQL_CLEAR_JOB_ENABLED : SQL_SET_JOB_ENABLED, &s);
        if (k < 0)
                return k;
        db_bind_text(s, 1, job);
        if (enabled >= 0) {
                db_bind_int64(s, 2, enabled);
                db_bind_text(s, 3, strempty(repository_timestamp_format(r, now_usec(CLOCK_REALTIME), now)));
        }
        k = db_step(s);
        return k < 0 ? k : 0;
}
