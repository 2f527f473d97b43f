/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "batch-status.h"
#include "lifecycle-log.h"
#include "log.h"
#include "manager.h"
#include "strv-util.h"

#define ALERT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* What is logged about an alert: the run, its configuration and its execution may all be gone by the time the
 * alert ends, so it keeps its own copies. */
struct Alert {
        Manager *manager;
        char *kind;                        /* "on_failure" or "on_success" */
        char *job_name;
        int64_t job_instance_id;
        int64_t execution_id;
        BatchStatus status;
        char *exit_code;
        char *target;                      /* the program, or the unit started */
        StepRunner *runner;                /* a command; NULL for a unit */
        Alert *next, *prev;                /* Manager.alerts: the commands running */
};

static Alert *alert_free(Alert *a) {
        if (!a)
                return NULL;
        step_runner_free(a->runner);       /* kills a command still running */
        free(a->kind);
        free(a->job_name);
        free(a->exit_code);
        free(a->target);
        return mfree(a);
}

static void alert_unlink(Alert *a) {
        Manager *m = a->manager;

        if (a->prev)
                a->prev->next = a->next;
        else if (m->alerts == a)
                m->alerts = a->next;
        if (a->next)
                a->next->prev = a->prev;
        a->next = a->prev = NULL;
}

void alerts_free(Manager *m) {
        assert(m);

        while (m->alerts) {
                Alert *a = m->alerts;

                alert_unlink(a);
                alert_free(a);
        }
}

static void alert_logv(const Alert *a, int priority, const char *result, const char *format, va_list ap)
        _printf_(4, 0);
static void alert_logv(const Alert *a, int priority, const char *result, const char *format, va_list ap) {
        _cleanup_free_ char *message = NULL, *f_kind = NULL, *f_target = NULL, *f_result = NULL;
        JobExecution e = {
                .id = a->execution_id,
                .job_instance_id = a->job_instance_id,
                .job_name = a->job_name,
                .status = a->status,
                .exit_code = a->exit_code,
        };
        char *fields[4] = {};

        if (vasprintf(&message, format, ap) < 0)
                return;
        if (asprintf(&f_kind, "BATCH_ALERT=%s", a->kind) < 0 ||
            asprintf(&f_target, "BATCH_ALERT_TARGET=%s", a->target) < 0 ||
            asprintf(&f_result, "BATCH_ALERT_RESULT=%s", result) < 0) {
                (void) log_oom();
                return;
        }
        fields[0] = f_kind;
        fields[1] = f_target;
        fields[2] = f_result;
        lifecycle_log_fields(MESSAGE_ALERT, priority, &e, NULL, fields, "%s", message);
}

static void alert_log(const Alert *a, int priority, const char *result, const char *format, ...) _printf_(4, 5);
static void alert_log(const Alert *a, int priority, const char *result, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        alert_logv(a, priority, result, format, ap);
        va_end(ap);
}

static void on_alert_finished(StepRunner *runner, const StepResult *result, void *userdata) {
        Manager *m;
        Alert *a = userdata;

        /* Logged, and nothing else: the execution's status is on record already and stays as it is. */
        if (result->outcome == STEP_OUTCOME_SUCCESS)
                alert_log(a, LOG_INFO, "success", "Alert %s of job [%s] execution %" PRIi64 " (%s) succeeded.",
                          a->kind, a->job_name, a->execution_id, a->target);
        else
                alert_log(a, LOG_WARNING, result->timed_out ? "timeout" : "failed",
                          "Alert %s of job [%s] execution %" PRIi64 " (%s) failed: %s", a->kind, a->job_name,
                          a->execution_id, a->target, strempty(result->message));

        m = a->manager;
        alert_unlink(a);
        alert_free(a);                     /* frees the runner: allowed from its finished callback */

        /* batchd is stopping and waited for this alert (manager_begin_stop()). */
        if (m->state == MANAGER_STOPPING && m->n_runs == 0 && !m->alerts)
                (void) sd_event_exit(m->event, 0);
}

/* As a step's: a sane PATH, the job's variables (which cannot be BATCH_*: the configuration refuses them), then
 * the execution's end. */
static int alert_environment(const JobRun *run, const char *kind, char ***ret) {
        const JobExecution *e = run->execution;
        _cleanup_strv_free_ char **env = NULL;
        size_t n = 0;
        int k;

        k = strv_push_printf(&env, &n, "PATH=%s", ALERT_PATH);
        if (k >= 0)
                k = strv_push_printf(&env, &n, "LANG=C.UTF-8");
        for (char **i = run->job->environment; k >= 0 && i && *i; i++) {
                size_t len = strcspn(*i, "=") + 1;
                bool replaced = false;

                for (size_t j = 0; j < n && !replaced; j++)
                        if (strneq(env[j], *i, len)) {
                                char *copy = strdup(*i);

                                if (!copy)
                                        return -ENOMEM;
                                free(env[j]);
                                env[j] = copy;
                                replaced = true;
                        }
                if (!replaced)
                        k = strv_push_printf(&env, &n, "%s", *i);
        }
        if (k >= 0)
                k = strv_push_printf(&env, &n, "BATCH_ALERT=%s", kind);
        if (k >= 0)
                k = strv_push_printf(&env, &n, "BATCH_JOB_NAME=%s", e->job_name);
        if (k >= 0)
                k = strv_push_printf(&env, &n, "BATCH_JOB_INSTANCE_ID=%" PRIi64, e->job_instance_id);
        if (k >= 0)
                k = strv_push_printf(&env, &n, "BATCH_JOB_EXECUTION_ID=%" PRIi64, e->id);
        if (k >= 0)
                k = strv_push_printf(&env, &n, "BATCH_STATUS=%s", batch_status_to_string(e->status));
        if (k >= 0)
                k = strv_push_printf(&env, &n, "BATCH_EXIT_CODE=%s", strempty(e->exit_code));
        if (k >= 0)
                k = strv_push_printf(&env, &n, "BATCH_EXIT_MESSAGE=%s", strempty(e->exit_message));
        if (k < 0)
                return k;
        *ret = TAKE_PTR(env);
        return 0;
}

static void alert_run_command(Manager *m, const JobRun *run, Alert *a, char **argv) {
        _cleanup_strv_free_ char **env = NULL, **log_fields = NULL;
        StepRunnerParameters p;
        StepRunnerCallbacks callbacks = { .finished = on_alert_finished };
        size_t nf = 0;
        int k;

        k = alert_environment(run, a->kind, &env);
        if (k >= 0)
                k = strv_push_printf(&log_fields, &nf, "BATCH_JOB_NAME=%s", a->job_name);
        if (k >= 0)
                k = strv_push_printf(&log_fields, &nf, "BATCH_JOB_EXECUTION_ID=%" PRIi64, a->execution_id);
        if (k >= 0)
                k = strv_push_printf(&log_fields, &nf, "BATCH_ALERT=%s", a->kind);
        if (k < 0) {
                alert_log(a, LOG_WARNING, "failed", "Alert %s of job [%s] execution %" PRIi64 " not started: %s",
                          a->kind, a->job_name, a->execution_id, strerror(-k));
                alert_free(a);
                return;
        }

        /* Exactly as a step starts (step-runner.h): batchd-exec looks the user up and switches to it in the
         * alert's own process; its output goes to the journal under the job's name, with the execution. */
        p = (StepRunnerParameters) {
                .argv = argv,
                .environment = env,
                .user = run->job->user,
                .user_environment = true,
                .working_directory = run->job->working_directory,
                .timeout = run->job->alert_timeout_usec,
                .kill_grace = run->config->config->kill_grace_usec,
                .identifier = run->job->name,
                .log_fields = log_fields,
                .output_fd = m->output_fd,
        };
        k = step_runner_start(m->event, &p, &callbacks, a, &a->runner);
        if (k < 0) {
                alert_log(a, LOG_WARNING, "failed", "Alert %s of job [%s] execution %" PRIi64 " (%s) not started: %s",
                          a->kind, a->job_name, a->execution_id, a->target,
                          k == -ESRCH ? "no such user" : strerror(-k));
                alert_free(a);
                return;
        }

        a->next = m->alerts;
        if (m->alerts)
                m->alerts->prev = a;
        m->alerts = a;
        alert_log(a, LOG_INFO, "started", "Alert %s of job [%s] execution %" PRIi64 " started: %s (PID %i)",
                  a->kind, a->job_name, a->execution_id, a->target, (int) step_runner_get_pid(a->runner));
}

static int on_start_unit_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        Alert *a = userdata;

        if (e)
                alert_log(a, LOG_WARNING, "failed", "Alert %s of job [%s] execution %" PRIi64 ": failed to start %s: %s",
                          a->kind, a->job_name, a->execution_id, a->target, e->message ?: e->name);
        else
                alert_log(a, LOG_INFO, "success", "Alert %s of job [%s] execution %" PRIi64 ": started %s.",
                          a->kind, a->job_name, a->execution_id, a->target);
        return 0;
}

static void alert_destroy(void *userdata) {
        alert_free(userdata);
}

/* "notify@.service" → "notify@42.service"; a plain name is started as it is. */
static int alert_unit_instance(const char *unit, int64_t id, char **ret) {
        const char *at = strchr(unit, '@');

        if (!at) {
                *ret = strdup(unit);
                return *ret ? 0 : -ENOMEM;
        }
        return asprintf(ret, "%.*s@%" PRIi64 "%s", (int) (at - unit), unit, id, at + 1) < 0 ? -ENOMEM : 0;
}

static void alert_start_unit(Manager *m, Alert *a) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        int k;

        if (!m->bus) {
                alert_log(a, LOG_WARNING, "failed", "Alert %s of job [%s] execution %" PRIi64 ": cannot start %s: "
                          "no bus connection", a->kind, a->job_name, a->execution_id, a->target);
                alert_free(a);
                return;
        }

        /* Asynchronous: systemd answers once the start job is queued; nothing waits for it in the loop. The slot
         * floats (owned by the bus) and frees the alert with it, reply or not. */
        k = sd_bus_call_method_async(m->bus, &slot, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                     "org.freedesktop.systemd1.Manager", "StartUnit", on_start_unit_reply, a,
                                     "ss", a->target, "replace");
        if (k >= 0)
                k = sd_bus_slot_set_destroy_callback(slot, alert_destroy);
        if (k < 0) {
                alert_log(a, LOG_WARNING, "failed", "Alert %s of job [%s] execution %" PRIi64 ": cannot start %s: %s",
                          a->kind, a->job_name, a->execution_id, a->target, strerror(-k));
                if (slot)
                        (void) sd_bus_slot_set_destroy_callback(slot, NULL);
                alert_free(a);
                return;
        }
        (void) sd_bus_slot_set_floating(slot, 1);
}

void alert_execution_ended(Manager *m, const JobRun *run) {
        const JobExecution *e;
        const JobAlert *ja;
        const char *kind;
        Alert *a;
        int k;

        assert(m);
        assert(run);

        e = run->execution;
        if (e->status == BATCH_STATUS_FAILED) {
                ja = &run->job->on_failure;
                kind = "on_failure";
        } else if (e->status == BATCH_STATUS_COMPLETED) {
                ja = &run->job->on_success;
                kind = "on_success";
        } else
                return;
        if (!ja->exec && !ja->unit)
                return;

        a = calloc(1, sizeof(Alert));
        if (!a) {
                (void) log_oom();
                return;
        }
        *a = (Alert) {
                .manager = m,
                .kind = strdup(kind),
                .job_name = strdup(e->job_name),
                .job_instance_id = e->job_instance_id,
                .execution_id = e->id,
                .status = e->status,
                .exit_code = strdup(strempty(e->exit_code)),
        };
        if (ja->exec)
                a->target = strdup(ja->exec[0]);
        else {
                k = alert_unit_instance(ja->unit, e->id, &a->target);
                if (k < 0)
                        a->target = NULL;
        }
        if (!a->kind || !a->job_name || !a->exit_code || !a->target) {
                (void) log_oom();
                alert_free(a);
                return;
        }

        if (ja->exec)
                alert_run_command(m, run, a, ja->exec);
        else
                alert_start_unit(m, a);
}
