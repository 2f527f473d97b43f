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

/* How many past executions "status JOB" shows without --limit. */
#define STATUS_EXECUTIONS_DEFAULT 5

static const char *bullet(void) {
        return output_utf8() ? "●" : "*";
}

static const char *job_color(const JobInfo *j) {
        if (j->running > 0)
                return ansi_blue();
        return strempty(status_color(j->last_status));
}

/* The running executions of job (all when job is NULL), each with its CurrentStep and Progress. */
static int running_executions(sd_bus *bus, const char *job, ExecutionInfo **ret, size_t *ret_n) {
        ExecutionInfo *all = NULL;
        size_t n_all = 0, n = 0;
        int r;

        r = bus_get_running_executions(bus, &all, &n_all);
        if (r < 0)
                return r;

        /* Compacted in place; the rest is freed. */
        for (size_t i = 0; i < n_all; i++) {
                if (job && !streq(all[i].job, job)) {
                        execution_info_done(all + i);
                        continue;
                }
                if (i != n)
                        all[n] = all[i];
                (void) execution_info_load_progress(bus, all + n);
                n++;
        }

        *ret = all;
        *ret_n = n;
        return 0;
}

/* ---- status JOB ---- */

/* How many of the last fires that did not run "status JOB" shows. */
#define STATUS_NON_RUNS 5

typedef struct NonRunInfo {
        usec_t scheduled;
        char *reason;
        char *detail;
} NonRunInfo;

typedef struct JobDetails {
        bool restartable;
        char **steps;
        NonRunInfo *non_runs;
        size_t n_non_runs;
} JobDetails;

static void job_details_done(JobDetails *d) {
        strv_free(d->steps);
        for (size_t i = 0; i < d->n_non_runs; i++) {
                free(d->non_runs[i].reason);
                free(d->non_runs[i].detail);
        }
        free(d->non_runs);
}

/* The last scheduled fires of the job that did not start an execution, and why (ListNonRuns). */
static int job_details_load_non_runs(sd_bus *bus, const JobInfo *j, JobDetails *d) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *reason, *detail;
        uint64_t scheduled;
        int r;

        r = sd_bus_call_method(bus, BATCH_BUS_NAME, BATCH_MANAGER_PATH, BATCH_MANAGER_INTERFACE, "ListNonRuns",
                               &error, &reply, "su", j->name, (uint32_t) STATUS_NON_RUNS);
        if (r < 0)
                return log_bus_error(r, &error, "Failed to list the non-runs of job %s", j->name);
        r = sd_bus_message_enter_container(reply, 'a', "(stss)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(reply, "(stss)", NULL, &scheduled, &reason, &detail)) > 0) {
                NonRunInfo *a = reallocarray(d->non_runs, d->n_non_runs + 1, sizeof(NonRunInfo));

                if (!a)
                        return log_oom();
                d->non_runs = a;
                a[d->n_non_runs] = (NonRunInfo) {
                        .scheduled = scheduled,
                        .reason = strdup(reason),
                        .detail = strdup(detail),
                };
                if (!a[d->n_non_runs].reason || !a[d->n_non_runs].detail)
                        return log_oom();
                d->n_non_runs++;
        }
        return r;
}

static int job_details_load(sd_bus *bus, const JobInfo *j, JobDetails *ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        JobDetails d = {};
        int r;

        r = sd_bus_call_method(bus, BATCH_BUS_NAME, j->path, "org.freedesktop.DBus.Properties", "GetAll", &error,
                               &reply, "s", BATCH_JOB_INTERFACE);
        if (r < 0)
                return log_bus_error(r, &error, "Failed to read the properties of job %s", j->name);

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        if (r < 0)
                goto fail;
        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *name;

                r = sd_bus_message_read(reply, "s", &name);
                if (r < 0)
                        goto fail;
                if (streq(name, "Restartable")) {
                        int b;

                        r = sd_bus_message_read(reply, "v", "b", &b);
                        d.restartable = b;
                } else if (streq(name, "Steps")) {
                        r = sd_bus_message_enter_container(reply, 'v', "as");
                        if (r >= 0) {
                                strv_free(d.steps);
                                d.steps = NULL;
                                r = sd_bus_message_read_strv(reply, &d.steps);
                        }
                        if (r >= 0)
                                r = sd_bus_message_exit_container(reply);
                } else
                        r = sd_bus_message_skip(reply, "v");
                if (r < 0)
                        goto fail;
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        goto fail;
        }
        if (r < 0)
                goto fail;

        if (!isempty(j->schedule)) {
                r = job_details_load_non_runs(bus, j, &d);
                if (r < 0) {
                        job_details_done(&d);
                        return r;
                }
        }

        *ret = d;
        return 0;

fail:
        job_details_done(&d);
        return log_error_errno(r, "Failed to parse the properties of job %s: %m", j->name);
}

static int print_job_status(sd_bus *bus, const JobInfo *j, const JobDetails *d, const ExecutionInfo *running,
                            size_t n_running, const ExecutionInfo *executions, size_t n_executions) {
        _cleanup_(table_freep) Table *t = NULL;
        char ts[FORMAT_TIMESTAMP_BOTH_MAX];
        usec_t now = now_usec(CLOCK_REALTIME);
        int r;

        printf("%s%s%s %s%s%s%s%s\n", job_color(j), bullet(), ansi_normal(), ansi_highlight(), j->name, ansi_normal(),
               isempty(j->description) ? "" : " - ", strempty(j->description));
        printf("     Schedule: %s\n", isempty(j->schedule) ? "none (started by hand)" : j->schedule);
        if (!isempty(j->schedule) && !j->enabled)
                printf("     Next run: none, disabled %s\n",
                       streq(strempty(j->enabled_override), "disabled") ? "by batchctl disable (batchctl revert undoes it)" :
                                                                    "in its job file (batchctl enable overrides it)");
        else if (!isempty(j->schedule))
                printf("     Next run: %s%s\n", format_timestamp_both(ts, j->next_elapse, now) ?: "never",
                       streq(strempty(j->enabled_override), "enabled") ? " (enabled by batchctl enable)" : "");
        if (d->steps) {
                printf("        Steps:");
                for (char **s = d->steps; *s; s++)
                        printf("%s %s", s == d->steps ? "" : ",", *s);
                printf("\n");
        }
        printf("  Restartable: %s\n", d->restartable ? "yes" : "no");

        if (n_running == 0)
                printf("      Running: no\n");
        for (size_t i = 0; i < n_running; i++) {
                const ExecutionInfo *e = running + i;
                char items[FORMAT_ITEMS_MAX];

                printf("      Running: %sexecution %" PRIu64 "%s (instance %" PRIu64 ") since %s\n", ansi_blue(),
                       e->id, ansi_normal(), e->instance_id,
                       format_timestamp_both(ts, e->start_time ?: e->create_time, now) ?: "-");
                if (!isempty(e->current_step))
                        printf("         Step: %s\n", e->current_step);
                if (!isempty(e->progress))
                        printf("     Progress: %s\n", e->progress);
                if (format_items_progress(items, e->items_done, e->items_total, e->items_per_second))
                        printf("        Items: %s\n", items);
        }

        for (size_t i = 0; i < d->n_non_runs; i++)
                printf("%s %s%s%s: %s%s%s\n", i == 0 ? "      Not run:" : "              ", ansi_highlight(),
                       format_timestamp_both(ts, d->non_runs[i].scheduled, now) ?: "-", ansi_normal(),
                       d->non_runs[i].reason, isempty(d->non_runs[i].detail) ? "" : ", ",
                       strempty(d->non_runs[i].detail));

        if (n_executions == 0) {
                printf("   Executions: none\n");
                return 0;
        }

        printf("\n");
        t = table_new("ID", "INSTANCE", "STATUS", "EXIT CODE", "STARTED", "DURATION", NULL);
        if (!t)
                return log_oom();
        table_set_align_right(t, 0);
        table_set_align_right(t, 1);
        r = add_execution_rows(t, executions, n_executions, false);
        if (r < 0)
                return r;
        r = table_print(t, stdout);
        if (r < 0)
                return log_error_errno(r, "Failed to write output: %m");
        return 0;
}

static json_object *job_status_to_json(const JobInfo *j, const JobDetails *d, const ExecutionInfo *running,
                                       size_t n_running, const ExecutionInfo *executions, size_t n_executions) {
        _cleanup_(json_object_putp) json_object *o = job_info_to_json(j);
        json_object *steps = NULL, *a = NULL;

        if (!o)
                return NULL;
        if (json_add_bool(o, "restartable", d->restartable) < 0)
                return NULL;

        steps = json_object_new_array();
        if (!steps || json_object_object_add(o, "steps", steps) < 0) {
                json_object_put(steps);
                return NULL;
        }
        for (char **s = d->steps; s && *s; s++)
                if (json_object_array_add(steps, json_object_new_string(*s)) < 0)
                        return NULL;

        a = json_object_new_array();
        if (!a || json_object_object_add(o, "non_runs", a) < 0) {
                json_object_put(a);
                return NULL;
        }
        for (size_t i = 0; i < d->n_non_runs; i++) {
                json_object *n = json_object_new_object();

                if (!n || json_object_array_add(a, n) < 0) {
                        json_object_put(n);
                        return NULL;
                }
                if (json_add_usec(n, "scheduled_usec", d->non_runs[i].scheduled) < 0 ||
                    json_add_string(n, "reason", d->non_runs[i].reason) < 0 ||
                    json_add_string_or_null(n, "detail", isempty(d->non_runs[i].detail) ? NULL : d->non_runs[i].detail) < 0)
                        return NULL;
        }

        a = json_object_new_array();
        if (!a || json_object_object_add(o, "running", a) < 0) {
                json_object_put(a);
                return NULL;
        }
        if (add_executions_json(a, running, n_running) < 0)
                return NULL;

        a = json_object_new_array();
        if (!a || json_object_object_add(o, "executions", a) < 0) {
                json_object_put(a);
                return NULL;
        }
        if (add_executions_json(a, executions, n_executions) < 0)
                return NULL;

        return TAKE_PTR(o);
}

static int status_jobs(sd_bus *bus, char **names, size_t n_names) {
        _cleanup_(json_object_putp) json_object *array = NULL;
        JobInfo *jobs = NULL;
        size_t n_jobs = 0, shown = 0;
        int ret = 0, r;

        r = bus_list_jobs(bus, &jobs, &n_jobs);
        if (r < 0)
                return r;

        if (arg_json != JSON_OFF) {
                array = json_object_new_array();
                if (!array) {
                        job_info_array_free(jobs, n_jobs);
                        return log_oom();
                }
        }

        pager_open();

        for (size_t k = 0; k < n_names; k++) {
                _cleanup_(job_details_done) JobDetails d = {};
                ExecutionInfo *running = NULL, *executions = NULL;
                size_t n_running = 0, n_executions = 0;
                const JobInfo *j = NULL;

                for (size_t i = 0; i < n_jobs; i++)
                        if (streq(jobs[i].name, names[k])) {
                                j = jobs + i;
                                break;
                        }
                if (!j) {
                        /* The message batchd gives for launching it, so scripts see one wording. */
                        ret = log_error_errno(ENOENT, "Failed to get status of job %s: %s: No job configuration with "
                                              "the name [%s] was registered", names[k],
                                              batch_error_short_name(BATCH_ERROR_NO_SUCH_JOB), names[k]);
                        continue;
                }

                r = job_details_load(bus, j, &d);
                if (r >= 0)
                        r = running_executions(bus, j->name, &running, &n_running);
                if (r >= 0)
                        r = bus_list_executions(bus, j->name,
                                                arg_limit_set ? arg_limit : STATUS_EXECUTIONS_DEFAULT,
                                                &executions, &n_executions);
                if (r >= 0) {
                        if (array) {
                                json_object *o = job_status_to_json(j, &d, running, n_running, executions,
                                                                    n_executions);

                                if (!o || json_object_array_add(array, o) < 0) {
                                        json_object_put(o);
                                        r = log_oom();
                                }
                        } else {
                                if (shown++ > 0)
                                        printf("\n");
                                r = print_job_status(bus, j, &d, running, n_running, executions, n_executions);
                        }
                }
                execution_info_array_free(running, n_running);
                execution_info_array_free(executions, n_executions);
                if (r < 0)
                        ret = r;
        }
        job_info_array_free(jobs, n_jobs);

        if (array) {
                r = json_print(array, stdout);
                if (r < 0)
                        return log_error_errno(r, "Failed to write output: %m");
        }
        return ret;
}

/* ---- status ---- */

/* Manager.DatabaseError: "" while batchd can use its database. A batchd without the property has nothing to say. */
static char *database_error(sd_bus *bus) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        char *s = NULL;

        if (sd_bus_get_property_string(bus, BATCH_BUS_NAME, BATCH_MANAGER_PATH, BATCH_MANAGER_INTERFACE,
                                       "DatabaseError", &error, &s) < 0 || isempty(s))
                return mfree(s);
        return s;
}

static int status_summary(sd_bus *bus) {
        _cleanup_(table_freep) Table *t = NULL, *rt = NULL;
        _cleanup_free_ char *dberror = NULL;
        JobInfo *jobs = NULL;
        ExecutionInfo *running = NULL, *last = NULL;
        size_t n_jobs = 0, n_running = 0;
        usec_t now = now_usec(CLOCK_REALTIME);
        int r;

        r = bus_list_jobs(bus, &jobs, &n_jobs);
        if (r < 0)
                return r;
        r = running_executions(bus, NULL, &running, &n_running);
        if (r < 0)
                goto finish;
        dberror = database_error(bus);

        /* The last execution of each job, for when it ran. One call per job: job counts are small. */
        last = calloc(n_jobs + 1, sizeof(ExecutionInfo));
        if (!last) {
                r = log_oom();
                goto finish;
        }
        for (size_t i = 0; i < n_jobs; i++) {
                ExecutionInfo *one = NULL;
                size_t n_one = 0;

                if (jobs[i].last_execution_id == 0)
                        continue;
                r = bus_list_executions(bus, jobs[i].name, 1, &one, &n_one);
                if (r < 0)
                        goto finish;
                if (n_one > 0) {
                        last[i] = one[0];
                        one[0] = (ExecutionInfo) {};
                }
                execution_info_array_free(one, n_one);
        }

        pager_open();

        if (arg_json != JSON_OFF) {
                _cleanup_(json_object_putp) json_object *o = json_object_new_object();
                json_object *a = json_object_new_array(), *ra = json_object_new_array();

                if (!o || !a || !ra || json_object_object_add(o, "jobs", a) < 0) {
                        json_object_put(a);
                        json_object_put(ra);
                        r = log_oom();
                        goto finish;
                }
                if (json_object_object_add(o, "running", ra) < 0) {
                        json_object_put(ra);
                        r = log_oom();
                        goto finish;
                }
                if (dberror && json_object_object_add(o, "database_error", json_object_new_string(dberror)) < 0) {
                        r = log_oom();
                        goto finish;
                }
                for (size_t i = 0; i < n_jobs; i++) {
                        json_object *j = job_info_to_json(jobs + i), *l = NULL;

                        if (j && last[i].id > 0)
                                l = execution_info_to_json(last + i);
                        if (!j || (last[i].id > 0 && !l) || json_object_object_add(j, "last_execution", l) < 0 ||
                            json_object_array_add(a, j) < 0) {
                                json_object_put(j);
                                r = log_oom();
                                goto finish;
                        }
                }
                r = add_executions_json(ra, running, n_running);
                if (r >= 0)
                        r = json_print(o, stdout);
                if (r < 0)
                        log_error_errno(r, "Failed to write output: %m");
                goto finish;
        }

        if (arg_legend)
                printf("%s%s%s %sbatchd%s: %zu %s configured, %zu %s running\n\n",
                       n_running > 0 ? ansi_blue() : ansi_green(), bullet(), ansi_normal(), ansi_highlight(),
                       ansi_normal(), n_jobs, n_jobs == 1 ? "job" : "jobs", n_running,
                       n_running == 1 ? "execution" : "executions");
        if (dberror)
                printf("%s%s%s %sDatabase: %s%s\n\n", ansi_red(), bullet(), ansi_normal(), ansi_red(), dberror,
                       ansi_normal());

        t = table_new("JOB", "RUNNING", "LAST", "STATUS", "EXIT CODE", "LAST RUN", "NEXT RUN", "DESCRIPTION", NULL);
        if (!t) {
                r = log_oom();
                goto finish;
        }
        table_set_align_right(t, 1);
        table_set_align_right(t, 2);
        table_set_ellipsize(t, 7);
        for (size_t i = 0; i < n_jobs; i++) {
                const JobInfo *j = jobs + i;
                char a[FORMAT_TIMESTAMP_MAX], b[FORMAT_TIMESTAMP_MAX];

                r = table_add(t, j->name, job_color(j));
                if (r >= 0)
                        r = table_addf(t, j->running > 0 ? ansi_blue() : NULL, "%" PRIu32, j->running);
                if (r >= 0)
                        r = j->last_execution_id > 0 ? table_addf(t, NULL, "%" PRIu64, j->last_execution_id) :
                                                       table_add(t, NULL, NULL);
                if (r >= 0)
                        r = table_add(t, isempty(j->last_status) ? NULL : j->last_status, status_color(j->last_status));
                if (r >= 0)
                        r = table_add(t, isempty(j->last_exit_code) ? NULL : j->last_exit_code, NULL);
                if (r >= 0)
                        r = table_add(t, format_timestamp_relative(a, last[i].start_time ?: last[i].create_time, now),
                                      NULL);
                if (r >= 0)
                        r = table_add(t, job_info_format_next(j, b), NULL);
                if (r >= 0)
                        r = table_add(t, j->description, NULL);
                if (r < 0) {
                        r = log_oom();
                        goto finish;
                }
        }
        r = table_print(t, stdout);
        if (r < 0) {
                log_error_errno(r, "Failed to write output: %m");
                goto finish;
        }

        if (n_running > 0) {
                rt = table_new("ID", "JOB", "STEP", "STARTED", "PROGRESS", NULL);
                if (!rt) {
                        r = log_oom();
                        goto finish;
                }
                table_set_align_right(rt, 0);
                table_set_ellipsize(rt, 4);
                for (size_t i = 0; i < n_running; i++) {
                        const ExecutionInfo *e = running + i;
                        char a[FORMAT_TIMESTAMP_MAX];

                        r = table_addf(rt, ansi_blue(), "%" PRIu64, e->id);
                        if (r >= 0)
                                r = table_add(rt, e->job, NULL);
                        if (r >= 0)
                                r = table_add(rt, isempty(e->current_step) ? NULL : e->current_step, NULL);
                        if (r >= 0)
                                r = table_add(rt, format_timestamp_relative(a, e->start_time ?: e->create_time, now),
                                              NULL);
                        if (r >= 0)
                                r = table_add(rt, isempty(e->progress) ? NULL : e->progress, NULL);
                        if (r < 0) {
                                r = log_oom();
                                goto finish;
                        }
                }
                printf("\n");
                r = table_print(rt, stdout);
                if (r < 0) {
                        log_error_errno(r, "Failed to write output: %m");
                        goto finish;
                }
        }

        print_footer(n_jobs, "job", "jobs");
        r = 0;

finish:
        job_info_array_free(jobs, n_jobs);
        execution_info_array_free(running, n_running);
        execution_info_array_free(last, n_jobs);
        return r;
}

int verb_status(int argc, char *argv[], void *userdata) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = bus_connect(&bus);
        if (r < 0)
                return r;

        if (argc > 1)
                return status_jobs(bus, argv + 1, (size_t) argc - 1);
        return status_summary(bus);
}
