/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>

#include "batch-error.h"
#include "batchctl.h"
#include "bus-names.h"
#include "bus-util.h"
#include "job-parameters.h"
#include "log.h"
#include "output.h"
#include "records.h"
#include "verb-functions.h"

/* An ExecutionFinished signal that arrived before we knew which execution is ours. */
typedef struct FinishedExecution {
        uint64_t id;
        char *status;
        char *exit_code;
} FinishedExecution;

typedef struct WaitState {
        uint64_t id;                    /* 0 until the reply to Start is in */
        char *path;

        FinishedExecution *early;
        size_t n_early;

        bool done;
        char *status;
        char *exit_code;

        bool daemon_gone;

        bool show_progress;
        bool tty;                       /* redraw one line in place; else plain lines, see progress_draw() */
        char *current_step;
        char *progress;
        uint64_t items_total, items_done;
        double items_per_second;
        uint64_t items_printed;         /* not a terminal: the items of the last line printed */
        usec_t printed_at;
        bool line_shown;
} WaitState;

static void wait_state_done(WaitState *w) {
        for (size_t i = 0; i < w->n_early; i++) {
                free(w->early[i].status);
                free(w->early[i].exit_code);
        }
        free(w->early);
        free(w->path);
        free(w->status);
        free(w->exit_code);
        free(w->current_step);
        free(w->progress);
}

static int wait_state_finish(WaitState *w, const char *status, const char *exit_code) {
        w->status = strdup(strempty(status));
        w->exit_code = strdup(strempty(exit_code));
        if (!w->status || !w->exit_code)
                return -ENOMEM;
        w->done = true;
        return 0;
}

/* The progress line on stderr: "● step2: 40 of 100 items (40/100 items, 40%, 12/s, about 5 s left)", redrawn in
 * place on a terminal. Elsewhere (a log, a pipe) no control codes: a plain line whenever a step that declared
 * its total (TOTAL) got further, at most one a second, so that a CI log shows the progress without flooding. */
static void progress_draw(WaitState *w) {
        char items[FORMAT_ITEMS_MAX];
        const char *it;

        if (!w->show_progress || w->done)
                return;
        it = w->current_step ? format_items_progress(items, w->items_done, w->items_total, w->items_per_second) :
                               NULL;

        if (!w->tty) {
                usec_t now = now_usec(CLOCK_MONOTONIC);

                if (w->items_total == 0 || !it || w->items_done == w->items_printed ||
                    (w->printed_at > 0 && now < w->printed_at + USEC_PER_SEC && w->items_done < w->items_total))
                        return;
                fprintf(stderr, "%s: %s\n", strempty(w->current_step), it);
                fflush(stderr);
                w->items_printed = w->items_done;
                w->printed_at = now;
                return;
        }

        if (isempty(w->current_step) && isempty(w->progress))
                return;
        fprintf(stderr, "\r\033[K%s%s%s %s%s%s%s%s%s", ansi_blue(), output_utf8() ? "●" : "*", ansi_normal(),
                strempty(w->current_step), isempty(w->progress) && !it ? "" : ": ", strempty(w->progress),
                it && !isempty(w->progress) ? " (" : "", strempty(it), it && !isempty(w->progress) ? ")" : "");
        fflush(stderr);
        w->line_shown = true;
}

static void progress_clear(WaitState *w) {
        if (!w->tty || !w->line_shown)
                return;
        fputs("\r\033[K", stderr);
        fflush(stderr);
        w->line_shown = false;
}

static int on_execution_finished(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        WaitState *w = userdata;
        const char *job, *status, *exit_code, *path;
        FinishedExecution *a;
        uint64_t id;
        int r;

        r = sd_bus_message_read(m, "tssso", &id, &job, &status, &exit_code, &path);
        if (r < 0) {
                log_debug_errno(r, "Ignoring malformed ExecutionFinished signal: %m");
                return 0;
        }

        if (w->id != 0) {
                if (id == w->id && !w->done)
                        (void) wait_state_finish(w, status, exit_code);
                return 0;
        }

        /* The reply to Start has not been dispatched yet; remember every ending until we know our id. */
        a = reallocarray(w->early, w->n_early + 1, sizeof(FinishedExecution));
        if (!a)
                return -ENOMEM;
        w->early = a;
        w->early[w->n_early] = (FinishedExecution) {
                .id = id,
                .status = strdup(status),
                .exit_code = strdup(exit_code),
        };
        w->n_early++;
        return 0;
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        WaitState *w = userdata;
        const char *interface;
        int r;

        if (!w->path || !streq_ptr_safe(sd_bus_message_get_path(m), w->path))
                return 0;

        r = sd_bus_message_read(m, "s", &interface);
        if (r < 0 || !streq(interface, BATCH_EXECUTION_INTERFACE))
                return 0;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return 0;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *name, *value;
                char **target;

                r = sd_bus_message_read(m, "s", &name);
                if (r < 0)
                        return 0;
                target = streq(name, "CurrentStep") ? &w->current_step :
                         streq(name, "Progress") ? &w->progress : NULL;
                if (streq(name, "ItemsTotal") || streq(name, "ItemsDone")) {
                        if (sd_bus_message_read(m, "v", "t", streq(name, "ItemsTotal") ? &w->items_total :
                                                                                          &w->items_done) < 0)
                                return 0;
                } else if (streq(name, "ItemsPerSecond")) {
                        if (sd_bus_message_read(m, "v", "d", &w->items_per_second) < 0)
                                return 0;
                } else if (target && sd_bus_message_read(m, "v", "s", &value) >= 0) {
                        char *copy = strdup(value);

                        if (copy) {
                                free(*target);
                                *target = copy;
                        }
                } else if (sd_bus_message_skip(m, "v") < 0)
                        return 0;
                if (sd_bus_message_exit_container(m) < 0)
                        return 0;
        }

        progress_draw(w);
        return 0;
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        WaitState *w = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (streq(name, BATCH_BUS_NAME) && isempty(new_owner))
                w->daemon_gone = true;
        return 0;
}

/* Installed before the method call, so that no ending can slip by between the reply and the subscription:
 * AddMatch is synchronous, and the bus delivers a sender's messages in order. */
static int wait_subscribe(sd_bus *bus, WaitState *w) {
        int r;

        r = sd_bus_match_signal(bus, NULL, BATCH_BUS_NAME, BATCH_MANAGER_PATH, BATCH_MANAGER_INTERFACE,
                                "ExecutionFinished", on_execution_finished, w);
        if (r < 0)
                return log_error_errno(r, "Failed to subscribe to ExecutionFinished: %m");

        r = sd_bus_add_match(bus, NULL,
                             "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                             "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" BATCH_BUS_NAME "'",
                             on_name_owner_changed, w);
        if (r < 0)
                return log_error_errno(r, "Failed to watch batchd's bus name: %m");

        if (w->show_progress) {
                r = sd_bus_add_match(bus, NULL,
                                     "type='signal',sender='" BATCH_BUS_NAME "',"
                                     "interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
                                     "path_namespace='" BATCH_EXECUTION_PATH_PREFIX "'",
                                     on_properties_changed, w);
                if (r < 0)
                        return log_error_errno(r, "Failed to subscribe to the execution's progress: %m");
        }
        return 0;
}

static int get_execution(sd_bus *bus, uint64_t id, ExecutionInfo *ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = bus_call_manager(bus, "GetExecution", &error, &reply, "t", id);
        if (r < 0)
                return log_bus_error(r, &error, "Failed to read execution %" PRIu64, id);
        r = bus_read_execution_info(reply, ret);
        if (r <= 0)
                return log_error_errno(r < 0 ? r : EBADMSG, "Failed to parse the reply of GetExecution: %m");
        return 0;
}

static bool status_is_running(const char *status) {
        return streq(status, "STARTING") || streq(status, "STARTED") || streq(status, "STOPPING");
}

static int exit_status_of(const char *status) {
        if (streq(status, "COMPLETED"))
                return EXIT_SUCCESS;
        if (streq(status, "FAILED"))
                return EXIT_EXECUTION_FAILED;
        if (streq(status, "STOPPED") || streq(status, "STOPPING"))
                return EXIT_EXECUTION_STOPPED;
        if (streq(status, "ABANDONED"))
                return EXIT_EXECUTION_ABANDONED;
        return EXIT_EXECUTION_UNKNOWN;
}

/* Runs the bus until our execution ended. Returns the exit status for how it ended. */
static int wait_for_execution(sd_bus *bus, WaitState *w) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *status = NULL;
        int r;

        /* Signals that came in while we waited for the reply are queued; let them through first. */
        for (;;) {
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return log_error_errno(r, "Failed to process bus messages: %m");
                if (r == 0)
                        break;
        }

        for (size_t i = 0; !w->done && i < w->n_early; i++)
                if (w->early[i].id == w->id) {
                        r = wait_state_finish(w, w->early[i].status, w->early[i].exit_code);
                        if (r < 0)
                                return log_oom();
                }

        /* Belt and braces: if the execution is over already, say so rather than wait for a signal. */
        if (!w->done) {
                r = sd_bus_get_property_string(bus, BATCH_BUS_NAME, w->path, BATCH_EXECUTION_INTERFACE, "Status",
                                               &error, &status);
                if (r >= 0 && !status_is_running(status)) {
                        _cleanup_free_ char *exit_code = NULL;

                        (void) sd_bus_get_property_string(bus, BATCH_BUS_NAME, w->path, BATCH_EXECUTION_INTERFACE,
                                                          "ExitCode", NULL, &exit_code);
                        r = wait_state_finish(w, status, exit_code);
                        if (r < 0)
                                return log_oom();
                }
        }

        if (!w->done && w->show_progress) {
                char *step = NULL, *progress = NULL;

                if (sd_bus_get_property_string(bus, BATCH_BUS_NAME, w->path, BATCH_EXECUTION_INTERFACE,
                                               "CurrentStep", NULL, &step) >= 0) {
                        free(w->current_step);
                        w->current_step = step;
                }
                if (sd_bus_get_property_string(bus, BATCH_BUS_NAME, w->path, BATCH_EXECUTION_INTERFACE,
                                               "Progress", NULL, &progress) >= 0) {
                        free(w->progress);
                        w->progress = progress;
                }
                (void) sd_bus_get_property_trivial(bus, BATCH_BUS_NAME, w->path, BATCH_EXECUTION_INTERFACE,
                                                   "ItemsTotal", NULL, 't', &w->items_total);
                (void) sd_bus_get_property_trivial(bus, BATCH_BUS_NAME, w->path, BATCH_EXECUTION_INTERFACE,
                                                   "ItemsDone", NULL, 't', &w->items_done);
                (void) sd_bus_get_property_trivial(bus, BATCH_BUS_NAME, w->path, BATCH_EXECUTION_INTERFACE,
                                                   "ItemsPerSecond", NULL, 'd', &w->items_per_second);
                progress_draw(w);
        }

        while (!w->done) {
                if (w->daemon_gone) {
                        progress_clear(w);
                        return log_error_errno(ECONNRESET, "batchd went away before execution %" PRIu64 " ended.",
                                               w->id);
                }

                r = sd_bus_process(bus, NULL);
                if (r < 0) {
                        progress_clear(w);
                        return log_error_errno(r, "Failed to process bus messages: %m");
                }
                if (r > 0)
                        continue;

                r = sd_bus_wait(bus, UINT64_MAX);
                if (r < 0 && r != -EINTR) {
                        progress_clear(w);
                        return log_error_errno(r, "Failed to wait for bus messages: %m");
                }
        }

        progress_clear(w);
        return exit_status_of(w->status);
}

typedef enum LaunchKind {
        LAUNCH_KIND_START,
        LAUNCH_KIND_NEXT,
        LAUNCH_KIND_RESTART,
} LaunchKind;

static int append_parameters(sd_bus_message *m, const JobParameters *p) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "(sssb)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < p->n; i++) {
                /* An empty type leaves it to the job's declaration (docs/dbus-api.md). */
                r = sd_bus_message_append(m, "(sssb)", p->items[i].name,
                                          p->items[i].untyped ? "" : job_parameter_type_to_string(p->items[i].type),
                                          p->items[i].value, (int) p->items[i].identifying);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}

static int launch(LaunchKind kind, int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        _cleanup_(job_parameters_done) JobParameters parameters = JOB_PARAMETERS_NULL;
        _cleanup_(execution_info_done) ExecutionInfo e = {};
        _cleanup_(wait_state_done) WaitState w = {};
        _cleanup_free_ char *what = NULL;
        const char *path;
        uint64_t restart_id = 0, id;
        int ret = EXIT_SUCCESS, r;

        if (kind == LAUNCH_KIND_RESTART) {
                r = parse_execution_id(argv[1], &restart_id);
                if (r < 0)
                        return r;
                r = asprintf(&what, "Failed to restart execution %" PRIu64, restart_id);
        } else
                r = asprintf(&what, "Failed to start %sjob %s", kind == LAUNCH_KIND_NEXT ? "the next instance of " : "",
                             argv[1]);
        if (r < 0)
                return log_oom();

        /* Parsed here with the daemon's own code, so a typo is reported before anything is sent, under the
         * same error name batchd would use. */
        for (int i = 2; kind != LAUNCH_KIND_RESTART && i < argc; i++) {
                _cleanup_free_ char *why = NULL;

                r = job_parameters_parse_argument(&parameters, argv[i], &why);
                if (r < 0)
                        return log_error_errno(r, "%s: %s: %s", what,
                                               batch_error_short_name(BATCH_ERROR_JOB_PARAMETERS_INVALID),
                                               why ?: "invalid parameter");
        }

        r = bus_connect(&bus);
        if (r < 0)
                return r;

        if (arg_wait) {
                w.show_progress = !arg_quiet;
                w.tty = isatty(STDERR_FILENO) > 0;
                r = wait_subscribe(bus, &w);
                if (r < 0)
                        return r;
        }

        r = sd_bus_message_new_method_call(bus, &call, BATCH_BUS_NAME, BATCH_MANAGER_PATH, BATCH_MANAGER_INTERFACE,
                                           kind == LAUNCH_KIND_START ? "Start" :
                                           kind == LAUNCH_KIND_NEXT ? "StartNextInstance" : "Restart");
        if (r < 0)
                return log_error_errno(r, "Failed to create the method call: %m");
        if (kind == LAUNCH_KIND_RESTART)
                r = sd_bus_message_append(call, "t", restart_id);
        else {
                r = sd_bus_message_append(call, "s", argv[1]);
                if (r >= 0)
                        r = append_parameters(call, &parameters);
        }
        if (r < 0)
                return log_error_errno(r, "Failed to create the method call: %m");

        r = sd_bus_call(bus, call, 0, &error, &reply);
        if (r < 0)
                return log_bus_error(r, &error, "%s", what);

        r = sd_bus_message_read(reply, "to", &id, &path);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply: %m");
        w.id = id;
        w.path = strdup(path);
        if (!w.path)
                return log_oom();

        /* The full record, for the job name of a restart. Signals that arrive meanwhile stay queued for
         * wait_for_execution(). */
        r = get_execution(bus, id, &e);
        if (r < 0)
                return r;

        if (arg_json == JSON_OFF && !arg_quiet) {
                if (kind == LAUNCH_KIND_RESTART)
                        printf("Restarted execution %" PRIu64 " of job %s as execution %" PRIu64 ".\n", restart_id,
                               e.job, id);
                else
                        printf("Started execution %" PRIu64 " of job %s.\n", id, e.job);
                fflush(stdout);
        }

        if (arg_wait) {
                ret = wait_for_execution(bus, &w);
                if (ret < 0)
                        return ret;

                /* Again, for the exit message and --json. */
                execution_info_done(&e);
                r = get_execution(bus, id, &e);
                if (r < 0)
                        return r;
        }

        if (arg_json != JSON_OFF) {
                _cleanup_(json_object_putp) json_object *o = execution_info_to_json(&e);

                if (!o)
                        return log_oom();
                r = json_print(o, stdout);
                if (r < 0)
                        return log_error_errno(r, "Failed to write output: %m");
                return ret;
        }

        if (arg_wait) {
                bool ok = ret == EXIT_SUCCESS;

                /* A run that did not complete is what the user needs to see, even with -q. */
                if (ok && !arg_quiet)
                        printf("Execution %" PRIu64 " of job %s finished: %s%s%s.\n", id, e.job,
                               strempty(status_color(w.status)), w.status, ansi_normal());
                else if (!ok) {
                        _cleanup_free_ char *message = one_line(e.exit_message);

                        log_error("Execution %" PRIu64 " of job %s finished: %s, exit code %s%s%s", id, e.job,
                                  w.status, isempty(w.exit_code) ? "-" : w.exit_code,
                                  isempty(message) ? "" : ": ", strempty(message));
                }
        }

        fflush(stdout);
        return ret;
}

int verb_start(int argc, char *argv[], void *userdata) {
        return launch(LAUNCH_KIND_START, argc, argv);
}

int verb_next(int argc, char *argv[], void *userdata) {
        return launch(LAUNCH_KIND_NEXT, argc, argv);
}

int verb_restart(int argc, char *argv[], void *userdata) {
        return launch(LAUNCH_KIND_RESTART, argc, argv);
}
