/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>

#include "batchctl.h"
#include "bus-names.h"
#include "bus-util.h"
#include "list-common.h"
#include "log.h"
#include "output.h"
#include "records.h"
#include "verb-functions.h"

/* batchctl list-timers: the schedules of the jobs as systemctl list-timers shows timers. Put together from what
 * batchd already offers, per job: ListJobs (schedule, next elapse, last execution), the Job's LastFireUSec
 * (the last due fire, run or not), ListNonRuns (the newest fire that did not run, and why) and GetExecution
 * (when the last execution was created). RESULT is whichever is newer: the last execution's status, or the
 * reason of the last non-run. */

typedef struct Timer {
        const JobInfo *job;
        usec_t last_fire;
        usec_t last_created;            /* of the last execution; 0: none */
        usec_t non_run_scheduled;       /* 0: none */
        char *non_run_reason;
        char *non_run_detail;
} Timer;

static void timers_free(Timer *t, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(t[i].non_run_reason);
                free(t[i].non_run_detail);
        }
        free(t);
}

static int timer_load(sd_bus *bus, Timer *t) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = NULL;
        const char *reason, *detail;
        uint64_t v;
        int r;

        r = sd_bus_path_encode(BATCH_JOB_PATH_PREFIX, t->job->name, &path);
        if (r < 0)
                return log_oom();
        r = sd_bus_get_property_trivial(bus, BATCH_BUS_NAME, path, BATCH_JOB_INTERFACE, "LastFireUSec", &error, 't',
                                        &v);
        if (r < 0)
                return log_bus_error(r, &error, "Failed to read the last fire of job %s", t->job->name);
        t->last_fire = v;

        reply = sd_bus_message_unref(reply);
        r = bus_call_manager(bus, "ListNonRuns", &error, &reply, "su", t->job->name, (uint32_t) 1);
        if (r < 0)
                return log_bus_error(r, &error, "Failed to list the non-runs of job %s", t->job->name);
        r = sd_bus_message_enter_container(reply, 'a', "(stss)");
        if (r >= 0)
                r = sd_bus_message_read(reply, "(stss)", NULL, &v, &reason, &detail);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply of ListNonRuns: %m");
        if (r > 0) {
                t->non_run_scheduled = v;
                t->non_run_reason = strdup(reason);
                t->non_run_detail = strdup(detail);
                if (!t->non_run_reason || !t->non_run_detail)
                        return log_oom();
        }

        if (t->job->last_execution_id > 0) {
                _cleanup_(execution_info_done) ExecutionInfo e = {};

                reply = sd_bus_message_unref(reply);
                r = bus_call_manager(bus, "GetExecution", &error, &reply, "t", t->job->last_execution_id);
                if (r < 0)
                        return log_bus_error(r, &error, "Failed to read execution %" PRIu64,
                                             t->job->last_execution_id);
                r = bus_read_execution_info(reply, &e);
                if (r <= 0)
                        return log_error_errno(r < 0 ? r : EBADMSG, "Failed to parse the reply of GetExecution: %m");
                t->last_created = e.create_time;
        }
        return 0;
}

/* Whether the last word is a fire that did not run rather than an execution. */
static bool timer_result_is_non_run(const Timer *t) {
        return t->non_run_reason && t->non_run_scheduled >= t->last_created;
}

static int timer_compare(const void *a, const void *b) {
        const Timer *x = a, *y = b;

        /* By next elapse; then those that never elapse again (disabled, or a schedule that has no more
         * elapses), then those without a schedule (--all); by name among equals. */
        if ((x->job->next_elapse == 0) != (y->job->next_elapse == 0))
                return x->job->next_elapse == 0 ? 1 : -1;
        if (x->job->next_elapse != y->job->next_elapse)
                return x->job->next_elapse < y->job->next_elapse ? -1 : 1;
        if (isempty(x->job->schedule) != isempty(y->job->schedule))
                return isempty(x->job->schedule) ? 1 : -1;
        return strcmp(x->job->name, y->job->name);
}

static int print_json(const Timer *timers, size_t n) {
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();
        int r;

        if (!a)
                return log_oom();
        for (size_t i = 0; i < n; i++) {
                const Timer *t = timers + i;
                json_object *o = json_object_new_object(), *nr = NULL;

                if (!o || json_object_array_add(a, o) < 0) {
                        json_object_put(o);
                        return log_oom();
                }
                if (json_add_string(o, "job", t->job->name) < 0 ||
                    json_add_string_or_null(o, "schedule", t->job->schedule) < 0 ||
                    json_add_usec(o, "next_usec", t->job->next_elapse) < 0 ||
                    json_add_bool(o, "enabled", t->job->enabled) < 0 ||
                    json_add_usec(o, "last_usec", t->last_fire) < 0 ||
                    json_add_id(o, "last_execution_id", t->job->last_execution_id) < 0 ||
                    json_add_string_or_null(o, "last_status", t->job->last_status) < 0 ||
                    json_add_string_or_null(o, "result",
                                            timer_result_is_non_run(t) ? "non-run" :
                                            t->job->last_execution_id > 0 ? "execution" : NULL) < 0)
                        return log_oom();
                if (t->non_run_reason) {
                        nr = json_object_new_object();
                        if (!nr || json_object_object_add(o, "last_non_run", nr) < 0) {
                                json_object_put(nr);
                                return log_oom();
                        }
                        if (json_add_usec(nr, "scheduled_usec", t->non_run_scheduled) < 0 ||
                            json_add_string(nr, "reason", t->non_run_reason) < 0 ||
                            json_add_string_or_null(nr, "detail", t->non_run_detail) < 0)
                                return log_oom();
                } else if (json_object_object_add(o, "last_non_run", NULL) < 0)
                        return log_oom();
        }
        r = json_print(a, stdout);
        if (r < 0)
                return log_error_errno(r, "Failed to write output: %m");
        return 0;
}

int verb_list_timers(int argc, char *argv[], void *userdata) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(table_freep) Table *table = NULL;
        JobInfo *jobs = NULL;
        Timer *timers = NULL;
        size_t n_jobs = 0, n = 0;
        usec_t now = now_usec(CLOCK_REALTIME);
        int r;

        r = bus_connect(&bus);
        if (r < 0)
                return r;
        r = bus_list_jobs(bus, &jobs, &n_jobs);
        if (r < 0)
                return r;

        timers = calloc(MAX(n_jobs, (size_t) 1), sizeof(Timer));
        if (!timers) {
                r = log_oom();
                goto finish;
        }
        for (size_t i = 0; i < n_jobs; i++) {
                if (isempty(jobs[i].schedule) && !arg_all)
                        continue;
                timers[n].job = jobs + i;
                r = timer_load(bus, timers + n++);
                if (r < 0)
                        goto finish;
        }
        qsort(timers, n, sizeof(Timer), timer_compare);

        pager_open();

        if (arg_json != JSON_OFF) {
                r = print_json(timers, n);
                goto finish;
        }

        table = table_new("NEXT", "LEFT", "LAST", "PASSED", "JOB", "RESULT", NULL);
        if (!table) {
                r = log_oom();
                goto finish;
        }
        table_set_ellipsize(table, 5);
        for (size_t i = 0; i < n && r >= 0; i++) {
                const Timer *t = timers + i;
                char next[FORMAT_TIMESTAMP_MAX], left[FORMAT_TIMESTAMP_MAX], last[FORMAT_TIMESTAMP_MAX],
                        passed[FORMAT_TIMESTAMP_MAX];

                r = table_add(table, job_info_format_next(t->job, next), NULL);
                if (r >= 0)
                        r = table_add(table, format_timestamp_relative(left, t->job->next_elapse, now), NULL);
                if (r >= 0)
                        r = table_add(table, format_timestamp(last, t->last_fire), NULL);
                if (r >= 0)
                        r = table_add(table, format_timestamp_relative(passed, t->last_fire, now), NULL);
                if (r >= 0)
                        r = table_add(table, t->job->name, NULL);
                if (r < 0)
                        break;
                if (timer_result_is_non_run(t))
                        r = isempty(t->non_run_detail) ?
                                table_addf(table, ansi_yellow(), "not run: %s", t->non_run_reason) :
                                table_addf(table, ansi_yellow(), "not run: %s (%s)", t->non_run_reason,
                                           t->non_run_detail);
                else
                        r = table_add(table, t->job->last_execution_id > 0 ? t->job->last_status : NULL,
                                      t->job->last_execution_id > 0 ? status_color(t->job->last_status) : NULL);
        }
        if (r < 0) {
                r = log_oom();
                goto finish;
        }

        r = table_print(table, stdout);
        if (r < 0) {
                r = log_error_errno(r, "Failed to write output: %m");
                goto finish;
        }
        if (arg_legend) {
                print_footer(n, "timer", "timers");
                if (!arg_all)
                        printf("Pass --all to see jobs without a schedule too.\n");
        }
        r = 0;

finish:
        timers_free(timers, n);
        job_info_array_free(jobs, n_jobs);
        return r;
}
