/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>

#include <string.h>

#include "batch-error.h"
#include "db-retry.h"
#include "log.h"
#include "manager.h"
#include "schedule-store.h"

/* "batchctl enable/disable/revert JOB": the runtime switch of a job's schedule, kept in the database
 * (schedule_store_*_enabled()). It is read from there each time it matters rather than cached, so that a
 * restart, a reload or another node sharing the repository never sees a stale copy: one lookup by primary key,
 * as cheap as the last-execution lookup ListJobs already makes per job. */

int manager_job_enabled_override(Manager *m, const char *job, int *ret) {
        int k;

        assert(m);
        assert(job);
        assert(ret);

        if (!m->repository)
                return -ENOENT;
        k = schedule_store_get_enabled(m->repository, job, ret);
        return k;
}

bool manager_job_enabled(Manager *m, const JobConfig *j) {
        int enabled, k;

        assert(m);
        assert(j);

        k = manager_job_enabled_override(m, j->name, &enabled);
        if (k == -ENOENT)
                return j->enabled;
        if (k < 0) {
                /* The file's setting is the best guess while the database cannot answer; the fire that asks
                 * cannot be recorded either. */
                log_warning_errno(k, "Failed to read whether job %s is enabled, going by its file: %m", j->name);
                return j->enabled;
        }
        return enabled;
}

int manager_set_job_enabled(Manager *m, const char *job, int enabled, sd_bus_error *error) {
        int k;

        assert(m);
        assert(job);
        assert(enabled >= -1 && enabled <= 1);

        if (!config_find_job(m->config->config, job))
                return sd_bus_error_setf(error, BATCH_ERROR_NO_SUCH_JOB,
                                         "No job configuration with the name [%s] was registered", job);
        if (!m->repository)
                return sd_bus_error_setf(error, BATCH_ERROR_DATABASE, "The database is not available: %s",
                                         manager_database_error(m));
        k = schedule_store_set_enabled(m->repository, job, enabled);
        if (k < 0)
                return sd_bus_error_setf(error, db_error_is_busy(k) ? BATCH_ERROR_DATABASE_BUSY : BATCH_ERROR_DATABASE,
                                         "Failed to record the enabled switch of job %s: %s", job, strerror(-k)), k;
        log_info("Job %s: schedule %s.", job,
                 enabled < 0 ? "switch reverted, the job file's enabled decides" :
                 enabled ? "enabled" : "disabled");
        return 0;
}
