/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>

#include "batch-error.h"
#include "batchctl.h"
#include "bus-names.h"
#include "bus-util.h"
#include "list-common.h"
#include "log.h"
#include "output.h"
#include "records.h"
#include "verb-functions.h"

int print_jobs_json(const JobInfo *jobs, size_t n) {
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();
        int r;

        if (!a)
                return log_oom();
        for (size_t i = 0; i < n; i++) {
                json_object *o = job_info_to_json(jobs + i);

                if (!o || json_object_array_add(a, o) < 0) {
                        json_object_put(o);
                        return log_oom();
                }
        }
        r = json_print(a, stdout);
        if (r < 0)
                return log_error_errno(r, "Failed to write output: %m");
        return 0;
}

int print_executions_json(const ExecutionInfo *executions, size_t n) {
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();
        int r;

        if (!a)
                return log_oom();
        r = add_executions_json(a, executions, n);
        if (r < 0)
                return r;
        r = json_print(a, stdout);
        if (r < 0)
                return log_error_errno(r, "Failed to write output: %m");
        return 0;
}

int add_executions_json(json_object *a, const ExecutionInfo *executions, size_t n) {
        for (size_t i = 0; i < n; i++) {
                json_object *o = execution_info_to_json(executions + i);

                if (!o || json_object_array_add(a, o) < 0) {
                        json_object_put(o);
                        return log_oom();
                }
        }
        return 0;
}

void print_footer(size_t n, const char *one, const char *many) {
        if (arg_legend)
                printf("\n%zu %s listed.\n", n, n == 1 ? one : many);
}

int verb_list_jobs(int argc, char *argv[], void *userdata) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        JobInfo *jobs = NULL;
        size_t n = 0;
        int r;

        r = bus_connect(&bus);
        if (r < 0)
                return r;
        r = bus_list_jobs(bus, &jobs, &n);
        if (r < 0)
                return r;

        pager_open();

        if (arg_json != JSON_OFF) {
                r = print_jobs_json(jobs, n);
                job_info_array_free(jobs, n);
                return r;
        }

        t = table_new("JOB", "SCHEDULE", "NEXT", "LAST", "STATUS", "EXIT CODE", "RUNNING", "DESCRIPTION", NULL);
        if (!t) {
                job_info_array_free(jobs, n);
                return log_oom();
        }
        table_set_align_right(t, 3);
        table_set_align_right(t, 6);
        table_set_ellipsize(t, 7);

        for (size_t i = 0; i < n; i++) {
                const JobInfo *j = jobs + i;
                char ts[FORMAT_TIMESTAMP_MAX];

                r = table_add(t, j->name, ansi_highlight());
                if (r >= 0)
                        r = table_add(t, isempty(j->schedule) ? NULL : j->schedule, NULL);
                if (r >= 0)
                        r = table_add(t, job_info_format_next(j, ts), NULL);
                if (r >= 0)
                        r = j->last_execution_id > 0 ? table_addf(t, NULL, "%" PRIu64, j->last_execution_id) :
                                                       table_add(t, NULL, NULL);
                if (r >= 0)
                        r = table_add(t, isempty(j->last_status) ? NULL : j->last_status, status_color(j->last_status));
                if (r >= 0)
                        r = table_add(t, isempty(j->last_exit_code) ? NULL : j->last_exit_code, NULL);
                if (r >= 0)
                        r = table_addf(t, j->running > 0 ? ansi_blue() : NULL, "%" PRIu32, j->running);
                if (r >= 0)
                        r = table_add(t, j->description, NULL);
                if (r < 0) {
                        job_info_array_free(jobs, n);
                        return log_oom();
                }
        }
        job_info_array_free(jobs, n);

        r = table_print(t, stdout);
        if (r < 0)
                return log_error_errno(r, "Failed to write output: %m");
        print_footer(table_get_rows(t), "job", "jobs");
        return 0;
}

int add_execution_rows(Table *t, const ExecutionInfo *executions, size_t n, bool with_job) {
        int r = 0;

        for (size_t i = 0; r >= 0 && i < n; i++) {
                const ExecutionInfo *e = executions + i;
                char ts[FORMAT_TIMESTAMP_MAX], d[FORMAT_DURATION_MAX];

                r = table_addf(t, NULL, "%" PRIu64, e->id);
                if (r >= 0 && with_job)
                        r = table_add(t, e->job, NULL);
                if (r >= 0)
                        r = table_addf(t, NULL, "%" PRIu64, e->instance_id);
                if (r >= 0)
                        r = table_add(t, e->status, status_color(e->status));
                if (r >= 0)
                        r = table_add(t, isempty(e->exit_code) ? NULL : e->exit_code, NULL);
                if (r >= 0)
                        r = table_add(t, format_timestamp(ts, e->start_time ?: e->create_time), NULL);
                if (r >= 0)
                        r = table_add(t, e->end_time > 0 ? format_duration(d, duration_of(e->start_time, e->end_time))
                                                         : NULL, NULL);
        }
        return r < 0 ? log_oom() : 0;
}

/* Whether batchd has the job configured; logs NoSuchJob if not. */
static int check_job_exists(sd_bus *bus, const char *job) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL, *name = NULL;
        int r;

        r = sd_bus_path_encode(BATCH_JOB_PATH_PREFIX, job, &path);
        if (r < 0)
                return log_oom();
        r = sd_bus_get_property_string(bus, BATCH_BUS_NAME, path, BATCH_JOB_INTERFACE, "Name", &error, &name);
        if (r >= 0)
                return 0;
        if (sd_bus_error_has_names(&error, SD_BUS_ERROR_UNKNOWN_OBJECT, SD_BUS_ERROR_UNKNOWN_INTERFACE,
                                   SD_BUS_ERROR_UNKNOWN_PROPERTY, BATCH_ERROR_NO_SUCH_JOB)) {
                _cleanup_(sd_bus_error_free) sd_bus_error not_found = SD_BUS_ERROR_NULL;

                /* The words of the manager's NoSuchJob, which the object tree cannot give. */
                (void) sd_bus_error_setf(&not_found, BATCH_ERROR_NO_SUCH_JOB, "No job configuration with the name "
                                         "[%s] was registered, and it has no executions", job);
                return log_bus_error(-ENOENT, &not_found, "Failed to list executions of job %s", job);
        }
        return log_bus_error(r, &error, "Failed to list executions of job %s", job);
}

int verb_list_executions(int argc, char *argv[], void *userdata) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        const char *job = argc > 1 ? argv[1] : NULL;
        ExecutionFilter filter = {
                .states = arg_states,
                .since = arg_since,
                .until = arg_until,
        };
        bool filtered = arg_states || arg_since > 0 || arg_until != USEC_INFINITY;
        ExecutionInfo *executions = NULL;
        size_t n = 0, seen = 0;
        int r;

        if (arg_since > arg_until)
                return log_error_errno(EINVAL, "--since is later than --until: nothing can match.");

        r = bus_connect(&bus);
        if (r < 0)
                return r;
        r = bus_list_executions_filtered(bus, job, arg_limit, filtered ? &filter : NULL, &executions, &n, &seen);
        if (r < 0)
                return r;
        /* batchd lists nothing for a name it never heard of: a typo must not look like a job that never ran. A job
         * no longer configured still has its history. */
        if (job && seen == 0) {
                r = check_job_exists(bus, job);
                if (r < 0) {
                        execution_info_array_free(executions, n);
                        return r;
                }
        }

        pager_open();

        if (arg_json != JSON_OFF) {
                r = print_executions_json(executions, n);
                execution_info_array_free(executions, n);
                return r;
        }

        t = table_new("ID", "JOB", "INSTANCE", "STATUS", "EXIT CODE", "STARTED", "DURATION", NULL);
        if (!t) {
                execution_info_array_free(executions, n);
                return log_oom();
        }
        table_set_align_right(t, 0);
        table_set_align_right(t, 2);
        table_set_ellipsize(t, 1);

        r = add_execution_rows(t, executions, n, true);
        execution_info_array_free(executions, n);
        if (r < 0)
                return r;

        r = table_print(t, stdout);
        if (r < 0)
                return log_error_errno(r, "Failed to write output: %m");
        print_footer(table_get_rows(t), "execution", "executions");
        return 0;
}
