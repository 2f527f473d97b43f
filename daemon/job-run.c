/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <inttypes.h>

#include "alert.h"
#include "batch-error.h"
#include "db-retry.h"
#include "lifecycle-log.h"
#include "log.h"
#include "manager.h"
#include "metrics.h"
#include "strv-util.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static void job_run_advance(JobRun *run);
static void job_run_write(JobRun *run, JobRunWrite what);
static void job_run_step_start_written(JobRun *run, bool restart);
static void on_step_finished(StepRunner *runner, const StepResult *result, void *userdata);

int job_run_new(Manager *m, ConfigRef *config, const JobConfig *job, JobExecution *execution, JobRun **ret) {
        JobRun *run;

        run = calloc(1, sizeof(JobRun));
        if (!run)
                return -ENOMEM;
        run->manager = m;
        run->config = config_ref_ref(config);
        run->job = job;
        run->execution = execution;
        *ret = run;
        return 0;
}

JobRun *job_run_free(JobRun *run) {
        if (!run)
                return NULL;
        step_runner_free(run->runner);
        step_execution_free(run->step);
        job_execution_free(run->execution);
        sd_event_source_disable_unref(run->timeout_source);
        sd_event_source_disable_unref(run->free_source);
        sd_event_source_disable_unref(run->retry_source);
        step_execution_free(run->starting_last);
        config_ref_unref(run->config);
        free(run->progress);
        free(run->custom_exit_code);
        free(run->custom_exit_description);
        return mfree(run);
}

static int free_run_handler(sd_event_source *s, void *userdata) {
        JobRun *run = userdata;
        Manager *m = run->manager;

        for (size_t i = 0; i < m->n_runs; i++)
                if (m->runs[i] == run) {
                        memmove(m->runs + i, m->runs + i + 1, (m->n_runs - i - 1) * sizeof(JobRun *));
                        m->n_runs--;
                        break;
                }
        manager_send_execution_removed(m, run->execution);
        job_run_free(run);

        scheduler_dispatch(m);
        manager_update_status(m);
        if (m->state == MANAGER_STOPPING && m->n_runs == 0 && !m->alerts)
                (void) sd_event_exit(m->event, 0);
        return 0;
}

static int set_string(char **p, const char *s) {
        char *c = NULL;

        if (s) {
                c = strdup(s);
                if (!c)
                        return -ENOMEM;
        }
        free(*p);
        *p = c;
        return 0;
}

/* The end of an execution, in memory: the record follows, alone (JOB_RUN_WRITE_JOB_END) or with the last step's
 * (JOB_RUN_WRITE_STEP_END). Status and exit status follow AbstractJob: the last step's, or COMPLETED/NOOP when no
 * step had anything to do. */
static void job_run_set_end(JobRun *run, BatchStatus status, const char *exit_code, const char *exit_message) {
        JobExecution *e = run->execution;

        if (status == BATCH_STATUS_COMPLETED && !run->any_step_ran) {
                exit_code = EXIT_CODE_NOOP;
                exit_message = "All steps already completed or no steps configured for this job.";
        }

        e->status = batch_status_upgrade(BATCH_STATUS_STARTED, status);
        if (set_string(&e->exit_code, exit_code ?: exit_code_from_batch_status(e->status)) < 0 ||
            set_string(&e->exit_message, strempty(exit_message)) < 0)
                (void) log_oom();
        e->end_time = now_usec(CLOCK_REALTIME);
}

/* The execution's end is on record (or could not be written at all): announce it and let the run go. */
static void job_run_ended(JobRun *run) {
        JobExecution *e = run->execution;
        Manager *m = run->manager;
        int k;

        lifecycle_log(MESSAGE_JOB_FINISHED, e->status == BATCH_STATUS_COMPLETED && !run->end_not_recorded ?
                      LOG_INFO : LOG_WARNING, e, NULL,
                      "Job: [%s] execution %" PRIi64 " finished: status %s, exit code %s%s%s%s",
                      e->job_name, e->id, batch_status_to_string(e->status), strempty(e->exit_code),
                      isempty(e->exit_message) ? "" : ": ", strempty(e->exit_message),
                      run->end_not_recorded ? " (not recorded in the database)" : "");
        manager_send_execution_finished(m, e);
        metrics_execution_ended(m, e);
        metrics_write_textfile(m);
        alert_execution_ended(m, run);

        run->timeout_source = sd_event_source_disable_unref(run->timeout_source);
        if (!run->free_source) {
                k = sd_event_add_defer(m->event, &run->free_source, free_run_handler, run);
                if (k < 0) {
                        log_error_errno(k, "Failed to schedule cleanup of execution %" PRIi64 ": %m", e->id);
                        return;
                }
                (void) sd_event_source_set_priority(run->free_source, SD_EVENT_PRIORITY_IDLE);
        }
}

static void job_run_finish(JobRun *run, BatchStatus status, const char *exit_code, const char *exit_message) {
        job_run_set_end(run, status, exit_code, exit_message);
        job_run_write(run, JOB_RUN_WRITE_JOB_END);
}

/* ---- records that must be written: tried now, and again from a timer while the database is busy ---- */

static const char *job_run_write_to_string(JobRunWrite w) {
        switch (w) {
        case JOB_RUN_WRITE_STEP_START: return "the start of a step";
        case JOB_RUN_WRITE_STEP_END:   return "the end of a step";
        case JOB_RUN_WRITE_JOB_END:    return "the end of the execution";
        default:                       return "a record";
        }
}

static int job_run_try_write(JobRun *run, sd_bus_error *error) {
        Manager *m = run->manager;
        int k;

        /* A cluster node without its lease writes nothing of what it ran: another node may already have failed
         * the execution, and may restart it. */
        k = manager_check_lease(m, error);
        if (k < 0)
                return k;

        switch (run->pending_write) {
        case JOB_RUN_WRITE_STEP_START:
                return repository_start_step_execution(m->repository, run->execution, run->starting_step->name,
                                                       run->starting_last, &run->step, error);
        case JOB_RUN_WRITE_STEP_END:
                return repository_finish_step_execution(m->repository, run->step,
                                                        run->step_end_is_last ? run->execution : NULL, error);
        case JOB_RUN_WRITE_JOB_END:
                return repository_update_execution(m->repository, run->execution, error);
        default:
                return 0;
        }
}

/* What follows a write, done or given up (error < 0). */
static void job_run_written(JobRun *run, JobRunWrite what, int error) {
        switch (what) {

        case JOB_RUN_WRITE_STEP_START: {
                bool restart = run->starting_last && run->starting_last->status != BATCH_STATUS_COMPLETED;

                run->starting_last = step_execution_free(run->starting_last);
                if (error < 0) {
                        run->step = step_execution_free(run->step);
                        job_run_finish(run, BATCH_STATUS_FAILED, EXIT_CODE_FAILED, "Failed to record the step's start");
                        return;
                }
                job_run_step_start_written(run, restart);
                return;
        }

        case JOB_RUN_WRITE_STEP_END: {
                StepExecution *st = run->step;
                bool last = run->step_end_is_last;

                lifecycle_log(MESSAGE_STEP_FINISHED, st->status == BATCH_STATUS_COMPLETED ? LOG_INFO : LOG_WARNING,
                              run->execution, st, "Step: [%s] of job [%s] execution %" PRIi64 " finished: %s%s%s",
                              st->step_name, run->execution->job_name, run->execution->id,
                              batch_status_to_string(st->status), isempty(st->exit_message) ? "" : ", ",
                              strempty(st->exit_message));

                metrics_step_ended(run->manager, run->execution->job_name, st);
                run->progress = mfree(run->progress);
                run->step = step_execution_free(run->step);
                run->items_total = 0;
                run->items_per_second = 0;
                manager_send_execution_changed(run->manager, run, "CurrentStep", "Progress", "ItemsTotal",
                                               "ItemsDone", "ItemsPerSecond", NULL);
                if (last) {
                        run->end_not_recorded = error < 0;
                        job_run_ended(run);
                } else if (error < 0)
                        /* Going on would run the next step on top of a record that says this one still runs. */
                        job_run_finish(run, BATCH_STATUS_FAILED, EXIT_CODE_FAILED, "Failed to record the end of a step");
                else
                        job_run_advance(run);
                return;
        }

        case JOB_RUN_WRITE_JOB_END:
                run->end_not_recorded = error < 0;
                job_run_ended(run);
                return;

        default:
                return;
        }
}

static void job_run_attempt(JobRun *run);

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        job_run_attempt(userdata);
        return 0;
}

static void job_run_attempt(JobRun *run) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        JobRunWrite what = run->pending_write;
        bool retry;
        int k;

        k = job_run_try_write(run, &error);
        /* A step that has not started yet is not worth waiting out a full disk for; a record of something that
         * ran is. */
        retry = k < 0 && (what == JOB_RUN_WRITE_STEP_START ? db_error_is_busy(k) : db_error_is_transient(k));
        if (retry) {
                run->retry_delay = db_retry_next(run->retry_delay);
                if (!run->retry_logged) {
                        /* Once per record, not per attempt: a lock held for minutes must not flood the log. */
                        log_full(db_error_is_busy(k) ? LOG_NOTICE : LOG_ERR,
                                 "Execution %" PRIi64 ": cannot write %s yet, retrying: %s", run->execution->id,
                                 job_run_write_to_string(what), error.message ?: strerror(-k));
                        run->retry_logged = true;
                }
                if (!run->retry_source)
                        k = sd_event_add_time_relative(run->manager->event, &run->retry_source, CLOCK_MONOTONIC,
                                                       run->retry_delay, 0, on_retry, run);
                else {
                        k = sd_event_source_set_time_relative(run->retry_source, run->retry_delay);
                        if (k >= 0)
                                k = sd_event_source_set_enabled(run->retry_source, SD_EVENT_ONESHOT);
                }
                if (k >= 0)
                        return;
                log_error_errno(k, "Failed to arm a retry timer: %m");
                k = -EIO;
        } else if (k < 0)
                log_error("Execution %" PRIi64 ": failed to write %s, giving up: %s", run->execution->id,
                          job_run_write_to_string(what), error.message ?: strerror(-k));
        else if (run->retry_logged)
                log_notice("Execution %" PRIi64 ": wrote %s.", run->execution->id, job_run_write_to_string(what));

        run->pending_write = JOB_RUN_WRITE_NONE;
        run->retry_delay = 0;
        run->retry_logged = false;
        if (run->retry_source)
                (void) sd_event_source_set_enabled(run->retry_source, SD_EVENT_OFF);
        if (k >= 0 && run->manager->batch_writes) {
                /* Written into the open batch, not yet durable: nothing may follow before its commit. */
                run->batched_write = what;
                return;
        }
        job_run_written(run, what, k);
}

/* The manager's batch committed (error 0) or was rolled back: what the run wrote into it is now on record, or it
 * never was, as if its own write had failed. */
void job_run_batch_done(JobRun *run, int error) {
        JobRunWrite what = run->batched_write;

        if (what == JOB_RUN_WRITE_NONE)
                return;
        run->batched_write = JOB_RUN_WRITE_NONE;
        job_run_written(run, what, error);
}

static void job_run_write(JobRun *run, JobRunWrite what) {
        assert(run->pending_write == JOB_RUN_WRITE_NONE);

        run->pending_write = what;
        run->retry_delay = 0;
        run->retry_logged = false;
        job_run_attempt(run);
}

/* batchd is going away: a record still waiting for the database is left to the next start's reconciliation. */
static void job_run_give_up_write(JobRun *run) {
        if (run->pending_write == JOB_RUN_WRITE_NONE)
                return;
        log_error("Execution %" PRIi64 ": %s was not written before batchd stopped; the next start marks the "
                  "execution FAILED.", run->execution->id, job_run_write_to_string(run->pending_write));
        run->pending_write = JOB_RUN_WRITE_NONE;
        run->retry_source = sd_event_source_disable_unref(run->retry_source);
        run->starting_last = step_execution_free(run->starting_last);
        run->end_not_recorded = true;
        job_run_ended(run);
}

/* ---- the running step ---- */

static int on_commit(StepRunner *runner, const StepContribution *c, const ExecutionContext *step_context,
                     const ExecutionContext *job_context, sd_bus_error *error, void *userdata) {
        _cleanup_(execution_context_freep) ExecutionContext *new_step = NULL, *new_job = NULL;
        ExecutionContext *old_step, *old_job;
        JobRun *run = userdata;
        int k;

        /* Checked here, not only from a timer: after SIGSTOP/SIGCONT a step's queued commit may be read
         * before the lease timer runs. */
        k = manager_check_lease(run->manager, error);
        if (k < 0)
                return log_warning_errno(k, "Refusing the commit of step %s of execution %" PRIi64 ": %s",
                                         run->step->step_name, run->execution->id, error->message);

        /* The runner built these for this commit and never changes them again: share, do not copy. */
        k = execution_context_share(step_context, &new_step);
        if (k < 0)
                return k;
        if (job_context) {
                k = execution_context_share(job_context, &new_job);
                if (k < 0)
                        return k;
        }

        /* Swap the new contexts in for the write, and back out if it fails: memory mirrors the database. */
        old_step = run->step->context;
        run->step->context = new_step;
        old_job = run->execution->context;
        if (new_job)
                run->execution->context = new_job;

        k = repository_commit_step(run->manager->repository, run->step, c, new_job ? run->execution : NULL, error);
        if (k < 0) {
                run->step->context = old_step;
                run->execution->context = old_job;
                /* Busy or unreachable: the runner holds the step's reply and calls again from a timer
                 * (docs/reliability.md); it knows that as -EAGAIN. */
                (void) log_full_errno(db_error_is_busy(k) ? LOG_DEBUG : LOG_WARNING, k,
                                      "Failed to commit step %s of execution %" PRIi64 ": %s",
                                      run->step->step_name, run->execution->id, error->message ?: strerror(-k));
                return db_error_is_busy(k) ? -EAGAIN : k;
        }

        TAKE_PTR(new_step);
        execution_context_free(old_step);
        if (new_job) {
                TAKE_PTR(new_job);
                execution_context_free(old_job);
        }

        /* The rate since the step started, as of this commit: what "batchctl status" turns into an ETA. */
        if (run->step->start_time > 0) {
                usec_t now = now_usec(CLOCK_REALTIME);

                if (now > run->step->start_time)
                        run->items_per_second = (double) job_run_items_done(run) * USEC_PER_SEC /
                                                (double) (now - run->step->start_time);
        }
        manager_send_execution_changed(run->manager, run, "ItemsDone", "ItemsPerSecond", NULL);
        return 0;
}

/* The step's items done: what it read, and the reads it skipped; both are items consumed from its input. */
uint64_t job_run_items_done(const JobRun *run) {
        if (!run->step)
                return 0;
        return (uint64_t) MAX(run->step->read_count, 0) + (uint64_t) MAX(run->step->read_skip_count, 0);
}

static int on_total(StepRunner *runner, int64_t total, void *userdata) {
        JobRun *run = userdata;

        run->items_total = (uint64_t) total;
        manager_send_execution_changed(run->manager, run, "ItemsTotal", NULL);
        return 0;
}

static int on_status(StepRunner *runner, const char *text, void *userdata) {
        JobRun *run = userdata;
        int k;

        k = set_string(&run->progress, text);
        if (k < 0)
                return k;
        manager_send_execution_changed(run->manager, run, "Progress", NULL);
        return 0;
}

static int on_exit_code(StepRunner *runner, const char *code, const char *description, void *userdata) {
        JobRun *run = userdata;
        int k;

        k = set_string(&run->custom_exit_code, code);
        if (k < 0)
                return k;
        return set_string(&run->custom_exit_description, description);
}

static void on_step_finished(StepRunner *runner, const StepResult *result, void *userdata) {
        _cleanup_free_ char *timeout_message = NULL;
        JobRun *run = userdata;
        StepExecution *s = run->step;
        const char *message = result->message;
        BatchStatus status;
        bool last;

        switch (result->outcome) {
        case STEP_OUTCOME_SUCCESS:
                status = BATCH_STATUS_COMPLETED;
                break;
        case STEP_OUTCOME_STOPPED:
                status = BATCH_STATUS_STOPPED;
                break;
        default:
                status = BATCH_STATUS_FAILED;
        }
        if (run->timed_out) {
                char buf[TIMESPAN_MAX];

                /* A timed-out job failed (and may be restarted); it was not stopped by anyone. */
                status = BATCH_STATUS_FAILED;
                if (asprintf(&timeout_message, "job timed out after %s",
                             timespan_format(run->job->timeout_usec, buf)) >= 0)
                        message = timeout_message;
        }

        s->status = status;
        s->end_time = now_usec(CLOCK_REALTIME);
        if (result->rolled_back)
                s->rollback_count++;
        if (set_string(&s->exit_code, run->custom_exit_code ?: exit_code_from_batch_status(status)) < 0 ||
            set_string(&s->exit_message, run->custom_exit_description ?: strempty(message)) < 0)
                (void) log_oom();
        run->custom_exit_code = mfree(run->custom_exit_code);
        run->custom_exit_description = mfree(run->custom_exit_description);

        last = status != BATCH_STATUS_COMPLETED || run->stop_requested || run->next_step >= run->job->n_steps;
        if (last) {
                BatchStatus job_status = run->stop_requested && status == BATCH_STATUS_COMPLETED ?
                                         BATCH_STATUS_STOPPED : status;

                job_run_set_end(run, job_status, job_status == status ? s->exit_code : EXIT_CODE_STOPPED,
                                s->exit_message);
        }

        /* The runner may be freed from its own finished callback; nothing runs any more. */
        run->runner = step_runner_free(run->runner);

        /* The step's end, and the job's with the last step, in one transaction, retried until written. */
        run->step_end_is_last = last;
        job_run_write(run, JOB_RUN_WRITE_STEP_END);
}

/* A clean environment: a sane PATH and the user's identity, the job's own variables, then ours, so a job cannot
 * fake BATCH_* (the configuration refuses those names anyway). */
static int step_environment(JobRun *run, bool restart, char ***ret) {
        const JobExecution *e = run->execution;
        _cleanup_strv_free_ char **env = NULL;
        size_t n = 0;
        int k = 0;

        k = strv_push_printf(&env, &n, "PATH=%s", DEFAULT_PATH);
        if (k >= 0)
                k = strv_push_printf(&env, &n, "LANG=C.UTF-8");
        /* USER, LOGNAME, HOME and SHELL come from batchd-exec, which looks the user up in the step's process
         * (StepRunnerParameters.user_environment): NSS may wait on the network, and batchd must not. */
        for (char **i = run->job->environment; k >= 0 && i && *i; i++) {
                size_t len = strcspn(*i, "=") + 1;
                char **existing = NULL;

                /* The job's value replaces our default: getenv() returns the first of duplicate names, so
                 * appending would leave programs (not shells) with our PATH. */
                for (size_t j = 0; j < n && !existing; j++)
                        if (strneq(env[j], *i, len))
                                existing = env + j;
                if (existing) {
                        char *copy = strdup(*i);

                        if (!copy)
                                return -ENOMEM;
                        free(*existing);
                        *existing = copy;
                } else
                        k = strv_push_printf(&env, &n, "%s", *i);
        }
        if (k >= 0)
                k = strv_push_printf(&env, &n, "BATCH_JOB_NAME=%s", e->job_name);
        if (k >= 0)
                k = strv_push_printf(&env, &n, "BATCH_JOB_INSTANCE_ID=%" PRIi64, e->job_instance_id);
        if (k >= 0)
                k = strv_push_printf(&env, &n, "BATCH_JOB_EXECUTION_ID=%" PRIi64, e->id);
        if (k >= 0)
                k = strv_push_printf(&env, &n, "BATCH_STEP_NAME=%s", run->step->step_name);
        if (k >= 0)
                k = strv_push_printf(&env, &n, "BATCH_STEP_EXECUTION_ID=%" PRIi64, run->step->id);
        if (k >= 0 && restart)
                k = strv_push_printf(&env, &n, "BATCH_RESTART=1");
        for (size_t i = 0; k >= 0 && i < e->parameters.n; i++) {
                _cleanup_free_ char *name = strdup(e->parameters.items[i].name);

                if (!name)
                        return -ENOMEM;
                for (char *c = name; *c; c++)
                        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
                              *c == '_'))
                                *c = '_';
                k = strv_push_printf(&env, &n, "BATCH_PARAM_%s=%s", name, e->parameters.items[i].value);
        }
        if (k < 0)
                return k;

        *ret = TAKE_PTR(env);
        return 0;
}

/* A step that could not even start fails like one that exited non-zero. */
static void job_run_fail_step(JobRun *run, const char *message) {
        StepResult result = {
                .outcome = STEP_OUTCOME_FAILED,
                .exit_status = -1,
                .message = message,
        };

        on_step_finished(NULL, &result, run);
}

/* The step is on record as STARTED: start its process. Every failure from here on ends the step (and with it the
 * execution) on record, so nothing stays STARTED with no process behind it. */
static void job_run_step_start_written(JobRun *run, bool restart) {
        _cleanup_strv_free_ char **argv = NULL, **env = NULL, **log_fields = NULL;
        _cleanup_free_ char *message = NULL;
        const StepConfig *sc = run->starting_step;
        Manager *m = run->manager;
        StepRunnerParameters p;
        StepRunnerCallbacks callbacks = {
                .commit = on_commit,
                .status = on_status,
                .total = on_total,
                .exit_code = on_exit_code,
                .finished = on_step_finished,
        };
        size_t n = 0;
        int k;

        run->any_step_ran = true;
        manager_send_execution_changed(m, run, "CurrentStep", NULL);

        if (run->stop_requested || run->timed_out) {
                /* Stopped (or timed out) while the start was being written. */
                StepResult result = { .outcome = STEP_OUTCOME_STOPPED, .exit_status = -1, .message = "stopped" };

                on_step_finished(NULL, &result, run);
                return;
        }

        /* ${name} is replaced inside one argument and never re-split: a value cannot become a new argument or
         * reach a shell unless the job itself runs one. */
        for (char **i = sc->exec; *i; i++) {
                _cleanup_free_ char *expanded = NULL, *why = NULL;
                char **na;

                k = job_parameters_expand(&run->execution->parameters, *i, &expanded, &why);
                if (k < 0) {
                        if (asprintf(&message, "Failed to expand argument '%s': %s", *i, why ?: strerror(-k)) < 0)
                                message = NULL;
                        job_run_fail_step(run, message ?: "Failed to expand an argument");
                        return;
                }
                na = reallocarray(argv, n + 2, sizeof(char *));
                if (!na) {
                        job_run_fail_step(run, "Out of memory");
                        return;
                }
                argv = na;
                argv[n++] = TAKE_PTR(expanded);
                argv[n] = NULL;
        }

        k = step_environment(run, restart, &env);
        if (k < 0) {
                job_run_fail_step(run, "Failed to build the step's environment");
                return;
        }

        /* The step's own output carries the execution and the step as fields, as batchd's entries about them
         * do: journalctl BATCH_JOB_EXECUTION_ID=N shows both. batchd-exec puts them on each line. */
        {
                size_t nf = 0;

                k = strv_push_printf(&log_fields, &nf, "BATCH_JOB_NAME=%s", run->execution->job_name);
                if (k >= 0)
                        k = strv_push_printf(&log_fields, &nf, "BATCH_JOB_INSTANCE_ID=%" PRIi64,
                                             run->execution->job_instance_id);
                if (k >= 0)
                        k = strv_push_printf(&log_fields, &nf, "BATCH_JOB_EXECUTION_ID=%" PRIi64, run->execution->id);
                if (k >= 0)
                        k = strv_push_printf(&log_fields, &nf, "BATCH_STEP_NAME=%s", run->step->step_name);
                if (k >= 0)
                        k = strv_push_printf(&log_fields, &nf, "BATCH_STEP_EXECUTION_ID=%" PRIi64, run->step->id);
                if (k < 0) {
                        job_run_fail_step(run, "Out of memory");
                        return;
                }
        }

        p = (StepRunnerParameters) {
                .argv = argv,
                .environment = env,
                .user = run->job->user,
                .user_environment = true,
                .working_directory = run->job->working_directory,
                .timeout = sc->timeout_usec,
                .kill_grace = run->config->config->kill_grace_usec,
                .identifier = run->job->name,
                .log_fields = log_fields,
                .output_fd = m->output_fd,
                .step_context = run->step->context,
                .job_context = run->execution->context,
        };
        k = step_runner_start(m->event, &p, &callbacks, run, &run->runner);
        if (k < 0) {
                if (asprintf(&message, "Failed to start step: %s", k == -ESRCH ? "no such user" : strerror(-k)) < 0)
                        message = NULL;
                job_run_fail_step(run, message ?: "Failed to start step");
                return;
        }

        /* The step's output reaches the journal under the job's identifier and the step's PID; logging the PID
         * here lets "batchctl logs" find that output for this execution. */
        {
                char pidfield[64];
                char *fields[] = { pidfield, NULL };

                (void) snprintf(pidfield, sizeof(pidfield), "BATCH_STEP_PID=%i", (int) step_runner_get_pid(run->runner));
                lifecycle_log_fields(MESSAGE_STEP_STARTED, LOG_INFO, run->execution, run->step, fields,
                                     "Executing step: [%s] of job [%s] execution %" PRIi64 "%s", sc->name,
                                     run->execution->job_name, run->execution->id, restart ? " (restart)" : "");
        }
}

/* Records the step's execution (STARTED), then starts it: now, or once the database takes the write. */
static void job_run_start_step(JobRun *run, const StepConfig *sc, StepExecution *last) {
        run->starting_step = sc;
        run->starting_last = last;
        job_run_write(run, JOB_RUN_WRITE_STEP_START);
}

/* SimpleJob.doExecute(): steps in order, skipping what is already complete, until one does not complete. */
static void job_run_advance(JobRun *run) {
        Manager *m = run->manager;

        while (run->next_step < run->job->n_steps) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_(step_execution_freep) StepExecution *last = NULL;
                const StepConfig *sc = run->job->steps + run->next_step++;
                int k;

                if (run->stop_requested) {
                        job_run_finish(run, BATCH_STATUS_STOPPED, EXIT_CODE_STOPPED, "stopped before the next step");
                        return;
                }

                k = repository_should_start_step(m->repository, run->execution, sc->name, sc->allow_start_if_complete,
                                                 sc->start_limit == STEP_START_LIMIT_UNLIMITED ? 0 :
                                                 (uint64_t) sc->start_limit, &last, &error);
                if (k < 0) {
                        log_warning("Step [%s] of job [%s] execution %" PRIi64 " cannot start: %s", sc->name,
                                    run->execution->job_name, run->execution->id, error.message);
                        job_run_finish(run, BATCH_STATUS_FAILED, EXIT_CODE_FAILED, error.message);
                        return;
                }
                if (k == 0) {
                        lifecycle_log(MESSAGE_STEP_SKIPPED, LOG_INFO, run->execution, last,
                                      "Step already complete or not restartable, so no action to execute: "
                                      "StepExecution: id=%" PRIi64 ", name=%s, status=%s, commitCount=%" PRIi64,
                                      last->id, last->step_name, batch_status_to_string(last->status),
                                      last->commit_count);
                        continue;
                }

                job_run_start_step(run, sc, TAKE_PTR(last));
                return;
        }

        job_run_finish(run, BATCH_STATUS_COMPLETED, EXIT_CODE_COMPLETED, NULL);
}

static int on_job_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        JobRun *run = userdata;

        run->timed_out = true;
        if (run->runner)
                (void) step_runner_stop(run->runner, "job timed out");
        return 0;
}

void job_run_start(JobRun *run) {
        Manager *m = run->manager;
        int k;

        run->started = true;
        lifecycle_log(MESSAGE_JOB_STARTED, LOG_INFO, run->execution, NULL,
                      "Job: [%s] execution %" PRIi64 " (instance %" PRIi64 ") launched", run->execution->job_name,
                      run->execution->id, run->execution->job_instance_id);
        manager_send_execution_started(m, run->execution);

        if (run->job->timeout_usec != USEC_INFINITY && run->job->timeout_usec > 0) {
                k = sd_event_add_time_relative(m->event, &run->timeout_source, CLOCK_MONOTONIC,
                                               run->job->timeout_usec, 0, on_job_timeout, run);
                if (k < 0)
                        log_warning_errno(k, "Failed to arm the timeout of execution %" PRIi64 ", running without: %m",
                                          run->execution->id);
        }

        job_run_advance(run);
}

int job_run_stop(JobRun *run, const char *reason) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int k;

        /* A run that already ended only waits to be freed (or for its end to be written): there is nothing to
         * stop, and its record is final. */
        if (run->stop_requested || run->free_source || run->pending_write == JOB_RUN_WRITE_JOB_END ||
            (run->pending_write == JOB_RUN_WRITE_STEP_END && run->step_end_is_last))
                return 0;
        run->stop_requested = true;

        /* JobOperator.stop(): STOPPING until the step has wound down. */
        run->execution->status = BATCH_STATUS_STOPPING;
        k = manager_check_lease(run->manager, &error);
        if (k >= 0)
                k = repository_update_execution(run->manager->repository, run->execution, &error);
        if (k < 0)
                log_warning_errno(k, "Failed to record STOPPING for execution %" PRIi64 ": %s", run->execution->id,
                                  error.message ?: strerror(-k));
        manager_send_execution_changed(run->manager, run, "Status", NULL);

        /* -ESRCH: the process already exited and its end waits for a commit; the stop is noted all the same. */
        if (run->runner && step_runner_stop(run->runner, reason) == -ENOMEM)
                return -ENOMEM;
        return 0;
}

void job_run_abort(JobRun *run, const char *reason) {
        StepResult result = {
                .outcome = STEP_OUTCOME_STOPPED,
                .exit_status = -1,
                .message = reason,
        };

        if (run->free_source)
                return;
        if (run->runner) {
                /* Kills the process group; no callback follows, so finish the step here. */
                run->runner = step_runner_free(run->runner);
                run->stop_requested = true;
                on_step_finished(NULL, &result, run);
        }
        job_run_give_up_write(run);
}

void job_run_fence(JobRun *run, const char *reason) {
        if (run->free_source)
                return;
        /* SIGKILL to the step's process group; no callback follows, and nothing is written: the node lost its
         * lease, so the execution may already be another node's to fail and restart. */
        run->runner = step_runner_free(run->runner);
        run->stop_requested = true;
        run->pending_write = JOB_RUN_WRITE_NONE;
        run->retry_source = sd_event_source_disable_unref(run->retry_source);
        run->starting_last = step_execution_free(run->starting_last);
        run->step = step_execution_free(run->step);
        job_run_set_end(run, BATCH_STATUS_FAILED, EXIT_CODE_FAILED, reason);
        run->end_not_recorded = true;
        job_run_ended(run);
}
