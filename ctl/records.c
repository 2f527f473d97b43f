/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "bus-names.h"
#include "bus-util.h"
#include "job-parameters.h"
#include "log.h"
#include "output.h"
#include "records.h"

static int strdup_to(char **dst, const char *src) {
        *dst = strdup(strempty(src));
        return *dst ? 0 : -ENOMEM;
}

static void job_info_done(JobInfo *j) {
        free(j->name);
        free(j->description);
        free(j->schedule);
        free(j->last_status);
        free(j->last_exit_code);
        free(j->path);
        free(j->enabled_override);
        *j = (JobInfo) {};
}

void job_info_array_free(JobInfo *a, size_t n) {
        for (size_t i = 0; a && i < n; i++)
                job_info_done(a + i);
        free(a);
}

void execution_info_done(ExecutionInfo *e) {
        free(e->job);
        free(e->status);
        free(e->exit_code);
        free(e->exit_message);
        free(e->path);
        free(e->current_step);
        free(e->progress);
        *e = (ExecutionInfo) {};
}

void execution_info_array_free(ExecutionInfo *a, size_t n) {
        for (size_t i = 0; a && i < n; i++)
                execution_info_done(a + i);
        free(a);
}

void step_info_array_free(StepInfo *a, size_t n) {
        for (size_t i = 0; a && i < n; i++) {
                free(a[i].name);
                free(a[i].status);
                free(a[i].exit_code);
                free(a[i].exit_message);
                free(a[i].context);
        }
        free(a);
}

void parameter_info_array_free(ParameterInfo *a, size_t n) {
        for (size_t i = 0; a && i < n; i++) {
                free(a[i].name);
                free(a[i].type);
                free(a[i].value);
        }
        free(a);
}

int bus_read_job_info(sd_bus_message *m, JobInfo *ret) {
        const char *name, *description, *schedule, *last_status, *last_exit_code, *path;
        JobInfo j = {};
        int r;

        r = sd_bus_message_read(m, "(sssttssuo)", &name, &description, &schedule, &j.next_elapse,
                                &j.last_execution_id, &last_status, &last_exit_code, &j.running, &path);
        if (r <= 0)
                return r;

        if (strdup_to(&j.name, name) < 0 || strdup_to(&j.description, description) < 0 ||
            strdup_to(&j.schedule, schedule) < 0 || strdup_to(&j.last_status, last_status) < 0 ||
            strdup_to(&j.last_exit_code, last_exit_code) < 0 || strdup_to(&j.path, path) < 0) {
                job_info_done(&j);
                return -ENOMEM;
        }

        *ret = j;
        return 1;
}

int bus_read_execution_info(sd_bus_message *m, ExecutionInfo *ret) {
        const char *job, *status, *exit_code, *exit_message, *path;
        ExecutionInfo e = {};
        int r;

        r = sd_bus_message_read(m, "(ttssssttto)", &e.id, &e.instance_id, &job, &status, &exit_code, &exit_message,
                                &e.create_time, &e.start_time, &e.end_time, &path);
        if (r <= 0)
                return r;

        if (strdup_to(&e.job, job) < 0 || strdup_to(&e.status, status) < 0 ||
            strdup_to(&e.exit_code, exit_code) < 0 || strdup_to(&e.exit_message, exit_message) < 0 ||
            strdup_to(&e.path, path) < 0) {
                execution_info_done(&e);
                return -ENOMEM;
        }

        *ret = e;
        return 1;
}

/* Grows *a by one zeroed element. */
static void *grow(void *a, size_t n, size_t size) {
        void *b = reallocarray(a, n + 1, size);

        if (b)
                memset((char *) b + n * size, 0, size);
        return b;
}

int bus_read_job_infos(sd_bus_message *m, JobInfo **ret, size_t *ret_n) {
        JobInfo *a = NULL;
        size_t n = 0;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "(sssttssuo)");
        if (r < 0)
                return r;
        for (;;) {
                JobInfo *b = grow(a, n, sizeof(JobInfo));

                if (!b) {
                        job_info_array_free(a, n);
                        return -ENOMEM;
                }
                a = b;
                r = bus_read_job_info(m, a + n);
                if (r < 0) {
                        job_info_array_free(a, n);
                        return r;
                }
                if (r == 0)
                        break;
                n++;
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0) {
                job_info_array_free(a, n);
                return r;
        }

        *ret = a;
        *ret_n = n;
        return 0;
}

int bus_read_execution_infos(sd_bus_message *m, ExecutionInfo **ret, size_t *ret_n) {
        ExecutionInfo *a = NULL;
        size_t n = 0;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "(ttssssttto)");
        if (r < 0)
                return r;
        for (;;) {
                ExecutionInfo *b = grow(a, n, sizeof(ExecutionInfo));

                if (!b) {
                        execution_info_array_free(a, n);
                        return -ENOMEM;
                }
                a = b;
                r = bus_read_execution_info(m, a + n);
                if (r < 0) {
                        execution_info_array_free(a, n);
                        return r;
                }
                if (r == 0)
                        break;
                n++;
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0) {
                execution_info_array_free(a, n);
                return r;
        }

        *ret = a;
        *ret_n = n;
        return 0;
}

int bus_read_step_infos(sd_bus_message *m, StepInfo **ret, size_t *ret_n) {
        StepInfo *a = NULL;
        size_t n = 0;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "(tsssstttttttttts)");
        if (r < 0)
                return r;
        for (;;) {
                const char *name, *status, *exit_code, *exit_message, *context;
                StepInfo *b = grow(a, n, sizeof(StepInfo)), *s;

                if (!b) {
                        step_info_array_free(a, n);
                        return -ENOMEM;
                }
                a = b;
                s = a + n;
                r = sd_bus_message_read(m, "(tsssstttttttttts)", &s->id, &name, &status, &exit_code, &exit_message,
                                        &s->start_time, &s->end_time, &s->commit_count, &s->read_count,
                                        &s->filter_count, &s->write_count, &s->read_skip_count,
                                        &s->write_skip_count, &s->process_skip_count, &s->rollback_count, &context);
                if (r < 0) {
                        step_info_array_free(a, n);
                        return r;
                }
                if (r == 0)
                        break;
                n++;    /* from here on the array frees s's strings too */
                if (strdup_to(&s->name, name) < 0 || strdup_to(&s->status, status) < 0 ||
                    strdup_to(&s->exit_code, exit_code) < 0 || strdup_to(&s->exit_message, exit_message) < 0 ||
                    strdup_to(&s->context, context) < 0) {
                        step_info_array_free(a, n);
                        return -ENOMEM;
                }
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0) {
                step_info_array_free(a, n);
                return r;
        }

        *ret = a;
        *ret_n = n;
        return 0;
}

int bus_read_parameter_infos(sd_bus_message *m, ParameterInfo **ret, size_t *ret_n) {
        ParameterInfo *a = NULL;
        size_t n = 0;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "(sssb)");
        if (r < 0)
                return r;
        for (;;) {
                const char *name, *type, *value;
                ParameterInfo *b = grow(a, n, sizeof(ParameterInfo)), *p;
                int identifying;

                if (!b) {
                        parameter_info_array_free(a, n);
                        return -ENOMEM;
                }
                a = b;
                p = a + n;
                r = sd_bus_message_read(m, "(sssb)", &name, &type, &value, &identifying);
                if (r < 0) {
                        parameter_info_array_free(a, n);
                        return r;
                }
                if (r == 0)
                        break;
                n++;
                p->identifying = identifying;
                if (strdup_to(&p->name, name) < 0 || strdup_to(&p->type, type) < 0 ||
                    strdup_to(&p->value, value) < 0) {
                        parameter_info_array_free(a, n);
                        return -ENOMEM;
                }
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0) {
                parameter_info_array_free(a, n);
                return r;
        }

        *ret = a;
        *ret_n = n;
        return 0;
}

int execution_info_load_progress(sd_bus *bus, ExecutionInfo *e) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *step = NULL, *progress = NULL;
        int r;

        r = sd_bus_get_property_string(bus, BATCH_BUS_NAME, e->path, BATCH_EXECUTION_INTERFACE, "CurrentStep", &error,
                                       &step);
        if (r < 0)
                return 0;
        r = sd_bus_get_property_string(bus, BATCH_BUS_NAME, e->path, BATCH_EXECUTION_INTERFACE, "Progress", &error,
                                       &progress);
        if (r < 0)
                return 0;

        free(e->current_step);
        free(e->progress);
        e->current_step = TAKE_PTR(step);
        e->progress = TAKE_PTR(progress);
        (void) sd_bus_get_property_trivial(bus, BATCH_BUS_NAME, e->path, BATCH_EXECUTION_INTERFACE, "ItemsTotal",
                                           NULL, 't', &e->items_total);
        (void) sd_bus_get_property_trivial(bus, BATCH_BUS_NAME, e->path, BATCH_EXECUTION_INTERFACE, "ItemsDone",
                                           NULL, 't', &e->items_done);
        (void) sd_bus_get_property_trivial(bus, BATCH_BUS_NAME, e->path, BATCH_EXECUTION_INTERFACE,
                                           "ItemsPerSecond", NULL, 'd', &e->items_per_second);
        return 0;
}

int bus_list_jobs(sd_bus *bus, JobInfo **ret, size_t *ret_n) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = bus_call_manager(bus, "ListJobs", &error, &reply, NULL);
        if (r < 0)
                return log_bus_error(r, &error, "Failed to list jobs");
        r = bus_read_job_infos(reply, ret, ret_n);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply of ListJobs: %m");

        /* Whether each job's schedule is switched on: its Job object's properties, not in ListJobs' fixed
         * signature. A job gone in a reload since ListJobs keeps the default. */
        for (size_t i = 0; i < *ret_n; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                JobInfo *j = *ret + i;
                int b;

                j->enabled = true;
                if (sd_bus_get_property_trivial(bus, BATCH_BUS_NAME, j->path, BATCH_JOB_INTERFACE, "Enabled", &e,
                                                'b', &b) >= 0)
                        j->enabled = b;
                sd_bus_error_free(&e);
                (void) sd_bus_get_property_string(bus, BATCH_BUS_NAME, j->path, BATCH_JOB_INTERFACE,
                                                  "EnabledOverride", &e, &j->enabled_override);
        }
        return 0;
}

/* ListExecutions answers a page at a time (docs/dbus-api.md), so "all of them" (limit 0) and any limit larger
 * than a page are read page by page, until a page comes back empty. */
bool execution_filter_match(const ExecutionFilter *f, const ExecutionInfo *e) {
        usec_t t = e->start_time ?: e->create_time;
        bool found = false;

        if (!f)
                return true;
        for (char **s = f->states; s && *s && !found; s++)
                found = streq(*s, e->status);
        if (f->states && !found)
                return false;
        return t >= f->since && t <= f->until;
}

int bus_list_executions_filtered(sd_bus *bus, const char *job, uint32_t limit, const ExecutionFilter *filter,
                                 ExecutionInfo **ret, size_t *ret_n, size_t *ret_seen) {
        ExecutionInfo *a = NULL;
        uint64_t last_id = UINT64_MAX;
        uint32_t offset = 0;
        size_t n = 0, seen = 0;
        int r;

        for (;;) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                ExecutionInfo *page = NULL, *b;
                size_t n_page = 0, k = 0;
                /* With a filter a page may match nothing: full pages then. */
                uint32_t want = limit == 0 || filter ? 0 : limit - (uint32_t) n;

                r = bus_call_manager(bus, "ListExecutions", &error, &reply, "stuu", strempty(job), UINT64_C(0),
                                     offset, want);
                if (r < 0) {
                        execution_info_array_free(a, n);
                        return log_bus_error(r, &error, "Failed to list executions%s%s", job ? " of job " : "",
                                             strempty(job));
                }
                r = bus_read_execution_infos(reply, &page, &n_page);
                if (r < 0) {
                        execution_info_array_free(a, n);
                        return log_error_errno(r, "Failed to parse the reply of ListExecutions: %m");
                }
                if (n_page == 0) {
                        free(page);
                        break;
                }
                b = reallocarray(a, n + n_page, sizeof(ExecutionInfo));
                if (!b) {
                        execution_info_array_free(page, n_page);
                        execution_info_array_free(a, n);
                        return log_oom();
                }
                a = b;
                if (n_page > UINT32_MAX - offset) {
                        execution_info_array_free(page, n_page);
                        break;
                }
                offset += (uint32_t) n_page;
                /* Newest first: executions started while paging push older ones to later offsets; keep each id
                 * once. */
                for (size_t i = 0; i < n_page; i++) {
                        if (page[i].id >= last_id) {
                                execution_info_done(page + i);
                                continue;
                        }
                        last_id = page[i].id;
                        seen++;
                        if ((limit == 0 || n + k < limit) && execution_filter_match(filter, page + i))
                                a[n + k++] = page[i];
                        else
                                execution_info_done(page + i);
                }
                free(page);
                n += k;
                if (limit > 0 && n >= limit)
                        break;
        }

        *ret = a;
        *ret_n = n;
        if (ret_seen)
                *ret_seen = seen;
        return 0;
}

int bus_list_executions(sd_bus *bus, const char *job, uint32_t limit, ExecutionInfo **ret, size_t *ret_n) {
        return bus_list_executions_filtered(bus, job, limit, NULL, ret, ret_n, NULL);
}

int bus_get_running_executions(sd_bus *bus, ExecutionInfo **ret, size_t *ret_n) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = bus_call_manager(bus, "GetRunningExecutions", &error, &reply, NULL);
        if (r < 0)
                return log_bus_error(r, &error, "Failed to list running executions");
        r = bus_read_execution_infos(reply, ret, ret_n);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply of GetRunningExecutions: %m");
        return 0;
}

usec_t duration_of(usec_t start, usec_t end) {
        return start > 0 && end >= start ? end - start : 0;
}

/* 1234567 as "1,234,567": numbers in operators' lines, independent of the locale like every number we print. */
static char *format_thousands(char buf[static 32], uint64_t v) {
        char digits[32];
        size_t n, k = 0;

        n = (size_t) snprintf(digits, sizeof(digits), "%" PRIu64, v);
        for (size_t i = 0; i < n; i++) {
                if (i > 0 && (n - i) % 3 == 0)
                        buf[k++] = ',';
                buf[k++] = digits[i];
        }
        buf[k] = '\0';
        return buf;
}

char *format_items_progress(char buf[static FORMAT_ITEMS_MAX], uint64_t done, uint64_t total, double per_second) {
        char d[32], t[32], left[64] = "";
        size_t k;

        if (done == 0 && total == 0)
                return NULL;
        if (total > 0)
                k = (size_t) snprintf(buf, FORMAT_ITEMS_MAX, "%s/%s items, %u%%", format_thousands(d, done),
                                      format_thousands(t, total),
                                      (unsigned) (done >= total ? 100 : done * 100 / total));
        else
                k = (size_t) snprintf(buf, FORMAT_ITEMS_MAX, "%s items", format_thousands(d, done));
        if (per_second > 0) {
                if (per_second >= 10)
                        k += (size_t) snprintf(buf + k, FORMAT_ITEMS_MAX - k, ", %s/s",
                                               format_thousands(d, (uint64_t) (per_second + 0.5)));
                else
                        k += (size_t) snprintf(buf + k, FORMAT_ITEMS_MAX - k, ", %.1f/s", per_second);
                if (total > done) {
                        double s = (double) (total - done) / per_second;

                        if (s < 60)
                                (void) snprintf(left, sizeof(left), "about %.0f s left", s < 1 ? 1 : s);
                        else if (s < 3600)
                                (void) snprintf(left, sizeof(left), "about %.0f min left", s / 60);
                        else if (s < 100 * 3600)
                                (void) snprintf(left, sizeof(left), "about %.1f h left", s / 3600);
                        else
                                (void) snprintf(left, sizeof(left), "about %.0f days left", s / 86400);
                        (void) snprintf(buf + k, FORMAT_ITEMS_MAX - k, ", %s", left);
                }
        }
        return buf;
}

const char *job_info_format_next(const JobInfo *j, char buf[static FORMAT_TIMESTAMP_MAX]) {
        if (!isempty(j->schedule) && !j->enabled)
                return "disabled";
        return format_timestamp(buf, j->next_elapse);
}

json_object *job_info_to_json(const JobInfo *j) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        if (json_add_string(o, "name", j->name) < 0 ||
            json_add_string(o, "description", j->description) < 0 ||
            json_add_string_or_null(o, "schedule", j->schedule) < 0 ||
            json_add_usec(o, "next_elapse_usec", j->next_elapse) < 0 ||
            json_add_id(o, "last_execution_id", j->last_execution_id) < 0 ||
            json_add_string_or_null(o, "last_status", j->last_status) < 0 ||
            json_add_string_or_null(o, "last_exit_code", j->last_exit_code) < 0 ||
            json_add_uint(o, "running_executions", j->running) < 0 ||
            json_add_string(o, "object_path", j->path) < 0 ||
            json_add_bool(o, "enabled", j->enabled) < 0 ||
            json_add_string_or_null(o, "enabled_override", j->enabled_override) < 0)
                return NULL;
        return TAKE_PTR(o);
}

json_object *execution_info_to_json(const ExecutionInfo *e) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        usec_t d = duration_of(e->start_time, e->end_time);

        if (!o)
                return NULL;
        if (json_add_uint(o, "id", e->id) < 0 ||
            json_add_id(o, "instance_id", e->instance_id) < 0 ||
            json_add_string(o, "job", e->job) < 0 ||
            json_add_string(o, "status", e->status) < 0 ||
            json_add_string(o, "exit_code", e->exit_code) < 0 ||
            json_add_string(o, "exit_message", e->exit_message) < 0 ||
            json_add_usec(o, "create_usec", e->create_time) < 0 ||
            json_add_usec(o, "start_usec", e->start_time) < 0 ||
            json_add_usec(o, "end_usec", e->end_time) < 0 ||
            (d > 0 || e->end_time > 0 ? json_add_uint(o, "duration_usec", d) : json_add_usec(o, "duration_usec", 0)) < 0 ||
            json_add_string(o, "object_path", e->path) < 0)
                return NULL;
        /* Only where the verb loaded them: running executions in "status". */
        if (e->current_step && json_add_string_or_null(o, "current_step", e->current_step) < 0)
                return NULL;
        if (e->progress && json_add_string_or_null(o, "progress", e->progress) < 0)
                return NULL;
        if (e->current_step &&
            (json_add_uint(o, "items_done", e->items_done) < 0 ||
             json_add_usec(o, "items_total", e->items_total) < 0 ||
             json_object_object_add(o, "items_per_second", json_object_new_double(e->items_per_second)) < 0))
                return NULL;
        return TAKE_PTR(o);
}

json_object *step_info_to_json(const StepInfo *s) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        usec_t d = duration_of(s->start_time, s->end_time);

        if (!o)
                return NULL;
        if (json_add_uint(o, "id", s->id) < 0 ||
            json_add_string(o, "name", s->name) < 0 ||
            json_add_string(o, "status", s->status) < 0 ||
            json_add_string(o, "exit_code", s->exit_code) < 0 ||
            json_add_string(o, "exit_message", s->exit_message) < 0 ||
            json_add_usec(o, "start_usec", s->start_time) < 0 ||
            json_add_usec(o, "end_usec", s->end_time) < 0 ||
            (s->end_time > 0 ? json_add_uint(o, "duration_usec", d) : json_add_usec(o, "duration_usec", 0)) < 0 ||
            json_add_uint(o, "commit_count", s->commit_count) < 0 ||
            json_add_uint(o, "read_count", s->read_count) < 0 ||
            json_add_uint(o, "filter_count", s->filter_count) < 0 ||
            json_add_uint(o, "write_count", s->write_count) < 0 ||
            json_add_uint(o, "read_skip_count", s->read_skip_count) < 0 ||
            json_add_uint(o, "write_skip_count", s->write_skip_count) < 0 ||
            json_add_uint(o, "process_skip_count", s->process_skip_count) < 0 ||
            json_add_uint(o, "rollback_count", s->rollback_count) < 0 ||
            json_add_parsed(o, "context", s->context) < 0)
                return NULL;
        return TAKE_PTR(o);
}

json_object *parameter_info_to_json(const ParameterInfo *p) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        if (json_add_string(o, "name", p->name) < 0 ||
            json_add_string(o, "type", p->type) < 0 ||
            json_add_string(o, "value", p->value) < 0 ||
            json_add_bool(o, "identifying", p->identifying) < 0)
                return NULL;
        return TAKE_PTR(o);
}

int parameter_info_to_argument(const ParameterInfo *p, char **ret) {
        _cleanup_(job_parameters_done) JobParameters one = JOB_PARAMETERS_NULL;
        JobParameterType t;
        int r;

        /* Through the daemon's own code, so what is printed is exactly what "batchctl start" parses back. */
        t = job_parameter_type_from_string(p->type);
        if (t < 0)
                t = job_parameter_type_from_java(p->type);
        if (t >= 0) {
                r = job_parameters_add(&one, p->name, t, p->value, p->identifying, NULL);
                if (r >= 0)
                        return job_parameter_to_argument(one.items, ret);
        }

        /* A type or value this batchctl does not know: show it as it came. */
        return asprintf(ret, "%s%s(%s)=%s", p->identifying ? "" : "-", p->name, p->type, p->value) < 0 ? -ENOMEM : 0;
}
