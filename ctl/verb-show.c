/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>

#include "batchctl.h"
#include "bus-util.h"
#include "log.h"
#include "output.h"
#include "records.h"
#include "verb-functions.h"

typedef struct ExecutionDetails {
        ExecutionInfo execution;
        ParameterInfo *parameters;
        size_t n_parameters;
        char *job_context;
        StepInfo *steps;
        size_t n_steps;
        char *node;                     /* the cluster node that ran it; NULL outside a cluster */
} ExecutionDetails;

static void execution_details_done(ExecutionDetails *d) {
        execution_info_done(&d->execution);
        parameter_info_array_free(d->parameters, d->n_parameters);
        free(d->job_context);
        step_info_array_free(d->steps, d->n_steps);
        free(d->node);
}

static int execution_details_load(sd_bus *bus, uint64_t id, ExecutionDetails *d) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL, *steps = NULL;
        const char *context;
        int r;

        r = bus_call_manager(bus, "GetExecution", &error, &reply, "t", id);
        if (r < 0)
                return log_bus_error(r, &error, "Failed to show execution %" PRIu64, id);
        r = bus_read_execution_info(reply, &d->execution);
        if (r == 0)
                r = -EBADMSG;
        if (r >= 0)
                r = bus_read_parameter_infos(reply, &d->parameters, &d->n_parameters);
        if (r >= 0)
                r = sd_bus_message_read(reply, "s", &context);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply of GetExecution: %m");
        d->job_context = strdup(context);
        if (!d->job_context)
                return log_oom();

        r = bus_call_manager(bus, "GetStepExecutions", &error, &steps, "t", id);
        if (r < 0)
                return log_bus_error(r, &error, "Failed to show the steps of execution %" PRIu64, id);
        r = bus_read_step_infos(steps, &d->steps, &d->n_steps);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply of GetStepExecutions: %m");

        /* Where it ran, in a cluster (logs are in that node's journal). A batchd without the property, or
         * outside a cluster, has none to tell. */
        {
                _cleanup_free_ char *path = NULL;

                sd_bus_error_free(&error);
                r = execution_object_path(id, &path);
                if (r < 0)
                        return log_oom();
                r = sd_bus_get_property_string(bus, "org.batchd.Batch1", path, "org.batchd.Batch1.Execution", "Node",
                                               &error, &d->node);
                if (r < 0 || isempty(d->node))
                        d->node = mfree(d->node);
        }
        /* A running execution: its running step's STATUS line and progress in items, as status shows them. */
        if (streq_ptr_safe(d->execution.status, "STARTED") || streq_ptr_safe(d->execution.status, "STOPPING"))
                (void) execution_info_load_progress(bus, &d->execution);
        return 0;
}

static json_object *execution_details_to_json(const ExecutionDetails *d) {
        _cleanup_(json_object_putp) json_object *o = execution_info_to_json(&d->execution);
        json_object *a;

        if (!o)
                return NULL;

        a = json_object_new_array();
        if (!a || json_object_object_add(o, "parameters", a) < 0) {
                json_object_put(a);
                return NULL;
        }
        for (size_t i = 0; i < d->n_parameters; i++) {
                json_object *p = parameter_info_to_json(d->parameters + i);

                if (!p || json_object_array_add(a, p) < 0) {
                        json_object_put(p);
                        return NULL;
                }
        }

        if (json_add_parsed(o, "job_context", d->job_context) < 0 ||
            json_add_string_or_null(o, "node", d->node) < 0)
                return NULL;

        a = json_object_new_array();
        if (!a || json_object_object_add(o, "steps", a) < 0) {
                json_object_put(a);
                return NULL;
        }
        for (size_t i = 0; i < d->n_steps; i++) {
                json_object *s = step_info_to_json(d->steps + i);

                if (!s || json_object_array_add(a, s) < 0) {
                        json_object_put(s);
                        return NULL;
                }
        }

        return TAKE_PTR(o);
}

/* "      Started: Sun 2026-11-22 04:00:01 UTC", or nothing when the time is not set. */
static void print_time(const char *label, usec_t t) {
        char buf[FORMAT_TIMESTAMP_MAX];

        if (format_timestamp(buf, t))
                printf("%13s: %s\n", label, buf);
}

static void print_status_lines(const char *status, const char *exit_code, const char *exit_message,
                               usec_t start, usec_t end) {
        char d[FORMAT_DURATION_MAX];

        printf("%13s: %s%s%s\n", "Status", strempty(status_color(status)), status, ansi_normal());
        printf("%13s: %s\n", "Exit code", isempty(exit_code) ? "-" : exit_code);
        if (!isempty(exit_message)) {
                /* Multi-line messages (a stack trace) stay readable under the label. */
                printf("%13s: ", "Exit message");
                for (const char *p = exit_message; *p; p++) {
                        fputc(*p, stdout);
                        if (*p == '\n' && p[1])
                                printf("%15s", "");
                }
                printf("\n");
        }
        print_time("Started", start);
        print_time("Ended", end);
        if (end > 0)
                printf("%13s: %s\n", "Duration", format_duration(d, duration_of(start, end)));
}

static int print_execution_details(const ExecutionDetails *d) {
        const ExecutionInfo *e = &d->execution;

        printf("%s%s%s %sExecution %" PRIu64 "%s of job %s%s%s\n", strempty(status_color(e->status)),
               output_utf8() ? "●" : "*", ansi_normal(), ansi_highlight(), e->id, ansi_normal(), ansi_highlight(),
               e->job, ansi_normal());
        printf("%13s: %" PRIu64 "\n", "Instance", e->instance_id);
        if (d->node)
                printf("%13s: %s\n", "Node", d->node);
        print_time("Created", e->create_time);
        print_status_lines(e->status, e->exit_code, e->exit_message, e->start_time, e->end_time);

        if (d->n_parameters == 0)
                printf("%13s: none\n", "Parameters");
        for (size_t i = 0; i < d->n_parameters; i++) {
                _cleanup_free_ char *arg = NULL;

                if (parameter_info_to_argument(d->parameters + i, &arg) < 0)
                        return log_oom();
                printf("%13s%s %s\n", i == 0 ? "Parameters" : "", i == 0 ? ":" : " ", arg);
        }
        printf("%13s: %s\n", "Job context", isempty(d->job_context) ? "{}" : d->job_context);

        for (size_t i = 0; i < d->n_steps; i++) {
                const StepInfo *s = d->steps + i;

                printf("\n%s%s%s Step %s%s%s (step execution %" PRIu64 ")\n", strempty(status_color(s->status)),
                       output_utf8() ? "●" : "*", ansi_normal(), ansi_highlight(), s->name, ansi_normal(), s->id);
                print_status_lines(s->status, s->exit_code, s->exit_message, s->start_time, s->end_time);
                printf("%13s: read %" PRIu64 ", written %" PRIu64 ", filtered %" PRIu64 "\n", "Items",
                       s->read_count, s->write_count, s->filter_count);
                printf("%13s: read %" PRIu64 ", write %" PRIu64 ", process %" PRIu64 "\n", "Skips",
                       s->read_skip_count, s->write_skip_count, s->process_skip_count);
                if (!isempty(e->current_step) && streq(e->current_step, s->name) &&
                    (streq(s->status, "STARTED") || streq(s->status, "STOPPING"))) {
                        char items[FORMAT_ITEMS_MAX];

                        if (!isempty(e->progress))
                                printf("%13s: %s\n", "Status line", e->progress);
                        if (format_items_progress(items, e->items_done, e->items_total, e->items_per_second))
                                printf("%13s: %s\n", "Progress", items);
                }
                printf("%13s: %" PRIu64 ", rollbacks %" PRIu64 "\n", "Commits", s->commit_count, s->rollback_count);
                printf("%13s: %s\n", "Context", isempty(s->context) ? "{}" : s->context);
        }

        return 0;
}

int verb_show(int argc, char *argv[], void *userdata) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(execution_details_done) ExecutionDetails d = {};
        uint64_t id;
        int r;

        /* A number is an execution id, as "show" always took; anything else is a job name. */
        if (isempty(argv[1]) || argv[1][strspn(argv[1], "0123456789")] != '\0')
                return show_job(argv[1]);
        r = parse_execution_id(argv[1], &id);
        if (r < 0)
                return r;
        if (arg_properties)
                return show_execution_properties(id);

        r = bus_connect(&bus);
        if (r < 0)
                return r;
        r = execution_details_load(bus, id, &d);
        if (r < 0)
                return r;

        pager_open();

        if (arg_json != JSON_OFF) {
                _cleanup_(json_object_putp) json_object *o = execution_details_to_json(&d);

                if (!o)
                        return log_oom();
                r = json_print(o, stdout);
                if (r < 0)
                        return log_error_errno(r, "Failed to write output: %m");
                return 0;
        }

        return print_execution_details(&d);
}
