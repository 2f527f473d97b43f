/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "batch-error.h"
#include "bus-creds.h"
#include "bus-names.h"
#include "cluster.h"
#include "db-retry.h"
#include "job-format.h"
#include "log.h"
#include "manager.h"
#include "metrics.h"
#include "schedule-store.h"

/* ---- authorization ---- */

/* Mutating calls: root, batchd's own user in --user mode, or a member of admin_group, decided from the
 * credentials the bus vouches for (bus-creds.h). Returns 0 when allowed, a negative errno (and error) when not,
 * and 1 when the bus was asked for the sender's credentials: the calling method handler then returns 1 at
 * once and is called again, with the same message, once they are in. Reads never come here. */
static int manager_authorize(Manager *m, sd_bus_message *msg, sd_bus_error *error) {
        const Config *c = m->config->config;
        const BusCreds *creds;
        int k;

        k = bus_creds_get(m->creds, msg, &creds);
        if (k < 0)
                return sd_bus_error_set_errnof(error, k, "Failed to get the caller's credentials: %m");
        if (k == 0)
                return 1;
        if (creds->uid == 0 || (m->user_mode && creds->uid == geteuid()))
                return 0;
        if (c->admin_group)
                for (size_t i = 0; i < creds->n_gids; i++)
                        if (creds->gids[i] == c->admin_gid)
                                return 0;

        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                 "Access denied: only root%s%s may do that.", c->admin_group ? " and members of " : "",
                                 strempty(c->admin_group));
}

/* ---- helpers ---- */

static int execution_path(int64_t id, char **ret) {
        return asprintf(ret, BATCH_EXECUTION_PATH_PREFIX "/%" PRIi64, id) < 0 ? -ENOMEM : 0;
}

static int job_path(const char *name, char **ret) {
        return sd_bus_path_encode(BATCH_JOB_PATH_PREFIX, name, ret);
}

static int read_parameters(sd_bus_message *msg, JobParameters *ret, sd_bus_error *error) {
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        const char *name, *type, *value;
        int identifying, k;

        k = sd_bus_message_enter_container(msg, 'a', "(sssb)");
        if (k < 0)
                return k;
        while ((k = sd_bus_message_read(msg, "(sssb)", &name, &type, &value, &identifying)) > 0) {
                _cleanup_free_ char *why = NULL;
                JobParameterType t;
                bool untyped;

                /* Spring Batch has no such limit, but nobody needs more, and unbounded input is a denial of
                 * service on a single-threaded daemon. */
                if (p.n >= JOB_PARAMETERS_MAX)
                        return sd_bus_error_setf(error, BATCH_ERROR_JOB_PARAMETERS_INVALID,
                                                 "Too many parameters: at most %d are accepted.", JOB_PARAMETERS_MAX),
                               -E2BIG;

                /* "": given by name only; the job's declaration gives the type (manager_launch()). */
                untyped = isempty(type);
                t = untyped ? JOB_PARAMETER_STRING : job_parameter_type_from_string(type);
                if (t < 0)
                        t = job_parameter_type_from_java(type);
                if (t < 0)
                        return sd_bus_error_setf(error, BATCH_ERROR_JOB_PARAMETERS_INVALID,
                                                 "Unknown type '%.64s' of parameter '%.100s'.", type, name), -EINVAL;
                if (job_parameters_get(&p, name))
                        return sd_bus_error_setf(error, BATCH_ERROR_JOB_PARAMETERS_INVALID,
                                                 "Parameter '%.100s' given twice.", name), -EINVAL;
                k = job_parameters_add(&p, name, t, value, identifying, &why);
                if (k < 0)
                        return sd_bus_error_set(error, BATCH_ERROR_JOB_PARAMETERS_INVALID,
                                                why ?: "Invalid parameter."), k;
                p.items[p.n - 1].untyped = untyped;
        }
        if (k < 0)
                return k;
        k = sd_bus_message_exit_container(msg);
        if (k < 0)
                return k;

        *ret = p;
        p = JOB_PARAMETERS_NULL;
        return 0;
}

static int append_parameters(sd_bus_message *reply, const JobParameters *p) {
        int k;

        k = sd_bus_message_open_container(reply, 'a', "(sssb)");
        if (k < 0)
                return k;
        for (size_t i = 0; i < p->n; i++) {
                k = sd_bus_message_append(reply, "(sssb)", p->items[i].name,
                                          job_parameter_type_to_string(p->items[i].type), p->items[i].value,
                                          (int) p->items[i].identifying);
                if (k < 0)
                        return k;
        }
        return sd_bus_message_close_container(reply);
}

static int append_execution_summary(sd_bus_message *reply, const JobExecution *e) {
        _cleanup_free_ char *path = NULL;
        int k;

        k = execution_path(e->id, &path);
        if (k < 0)
                return k;
        return sd_bus_message_append(reply, "(ttssssttto)", (uint64_t) e->id, (uint64_t) e->job_instance_id,
                                     e->job_name, batch_status_to_string(e->status), strempty(e->exit_code),
                                     strempty(e->exit_message), e->create_time, e->start_time, e->end_time, path);
}

static int reply_execution(sd_bus_message *msg, int64_t id) {
        _cleanup_free_ char *path = NULL;
        int k;

        k = execution_path(id, &path);
        if (k < 0)
                return k;
        return sd_bus_reply_method_return(msg, "to", (uint64_t) id, path);
}

static int check_id(uint64_t id, sd_bus_error *error) {
        if (id == 0 || id > INT64_MAX)
                return sd_bus_error_setf(error, BATCH_ERROR_NO_SUCH_JOB_EXECUTION,
                                         "No JobExecution found for id: [%" PRIu64 "]", id), -ENXIO;
        return 0;
}

/* ---- calls that wait for the database's write lock ---- */

/* A Start, Restart or Abandon that found the database locked by another process. The call is not answered yet:
 * it is tried again from a timer, with backoff, and answered when the launch is written, or with the named error
 * of its last attempt (DatabaseBusy) after DB_WAIT_MAX_USEC. The loop never waits for the lock itself. */
typedef enum PendingKind {
        PENDING_START,
        PENDING_RESTART,
        PENDING_ABANDON,
} PendingKind;

typedef struct PendingCall {
        struct PendingCall *next;
        Manager *manager;
        sd_bus_message *message;
        PendingKind kind;
        char *job;
        JobParameters parameters;
        LaunchMode mode;
        int64_t id;
        usec_t deadline;
        usec_t delay;
        sd_event_source *timer;
} PendingCall;

static PendingCall *pending_call_free(PendingCall *c) {
        if (!c)
                return NULL;
        sd_event_source_disable_unref(c->timer);
        sd_bus_message_unref(c->message);
        free(c->job);
        job_parameters_done(&c->parameters);
        return mfree(c);
}

static void pending_call_unlink(PendingCall *c) {
        for (PendingCall **p = &c->manager->pending_calls; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        return;
                }
}

void manager_pending_calls_free(Manager *m) {
        while (m->pending_calls) {
                PendingCall *c = m->pending_calls;

                m->pending_calls = c->next;
                pending_call_free(c);
        }
}

static int reply_execution(sd_bus_message *msg, int64_t id);

/* One attempt: > 0 when answered (either way), -EAGAIN when the database is still locked. */
static int pending_call_attempt(PendingCall *c) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Manager *m = c->manager;
        int64_t id = 0;
        int k;

        switch (c->kind) {
        case PENDING_START:
                k = manager_launch(m, c->job, &c->parameters, c->mode, &id, &error);
                break;
        case PENDING_RESTART:
                k = manager_restart(m, c->id, &id, &error);
                break;
        default:
                k = manager_abandon_execution(m, c->id, &error);
        }
        if (db_error_is_busy(k) && now_usec(CLOCK_MONOTONIC) < c->deadline)
                return -EAGAIN;

        if (k < 0) {
                if (!sd_bus_error_is_set(&error))
                        (void) sd_bus_error_set_errno(&error, k);
                (void) sd_bus_reply_method_error(c->message, &error);
        } else if (c->kind == PENDING_ABANDON)
                (void) sd_bus_reply_method_return(c->message, NULL);
        else
                (void) reply_execution(c->message, id);
        return 1;
}

static int on_pending_call(sd_event_source *s, uint64_t usec, void *userdata);

static int pending_call_arm(PendingCall *c) {
        int k;

        c->delay = db_retry_next(c->delay);
        if (!c->timer)
                return sd_event_add_time_relative(c->manager->event, &c->timer, CLOCK_MONOTONIC, c->delay, 0,
                                                  on_pending_call, c);
        k = sd_event_source_set_time_relative(c->timer, c->delay);
        if (k < 0)
                return k;
        return sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
}

static int on_pending_call(sd_event_source *s, uint64_t usec, void *userdata) {
        PendingCall *c = userdata;

        if (pending_call_attempt(c) == -EAGAIN && pending_call_arm(c) >= 0)
                return 0;
        pending_call_unlink(c);
        pending_call_free(c);
        return 0;
}

/* Takes over a call whose first attempt found the database locked. Returns 1: the reply follows later. */
static int pending_call_new(Manager *m, sd_bus_message *msg, PendingKind kind, const char *job,
                            const JobParameters *parameters, LaunchMode mode, int64_t id, sd_bus_error *error) {
        PendingCall *c;
        int k;

        c = calloc(1, sizeof(PendingCall));
        if (!c)
                return -ENOMEM;
        c->manager = m;
        c->message = sd_bus_message_ref(msg);
        c->kind = kind;
        c->mode = mode;
        c->id = id;
        c->deadline = now_usec(CLOCK_MONOTONIC) + DB_WAIT_MAX_USEC;
        k = job ? ((c->job = strdup(job)) ? 0 : -ENOMEM) : 0;
        if (k >= 0 && parameters)
                k = job_parameters_copy(parameters, &c->parameters);
        if (k >= 0)
                k = pending_call_arm(c);
        if (k < 0) {
                pending_call_free(c);
                return k;
        }
        c->next = m->pending_calls;
        m->pending_calls = c;
        log_debug("Call %s from %s waits for the database's write lock.", sd_bus_message_get_member(msg),
                  strna(sd_bus_message_get_sender(msg)));
        return 1;
}

/* ---- manager methods ---- */

static int method_start_common(sd_bus_message *msg, Manager *m, const char *job, LaunchMode mode,
                               sd_bus_error *error) {
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        int64_t id;
        int k;

        /* Authorization first: whoever may not launch learns nothing about their input. */
        k = manager_authorize(m, msg, error);
        if (k != 0)
                return k;
        k = read_parameters(msg, &p, error);
        if (k < 0)
                return k;
        k = manager_launch(m, job, &p, mode, &id, error);
        if (db_error_is_busy(k)) {
                sd_bus_error_free(error);
                return pending_call_new(m, msg, PENDING_START, job, &p, mode, 0, error);
        }
        if (k < 0)
                return k;
        return reply_execution(msg, id);
}

static int method_start(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        const char *job;
        int k;

        k = sd_bus_message_read(msg, "s", &job);
        if (k < 0)
                return k;
        return method_start_common(msg, userdata, job, LAUNCH_START, error);
}

static int method_start_next_instance(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        const char *job;
        int k;

        k = sd_bus_message_read(msg, "s", &job);
        if (k < 0)
                return k;
        return method_start_common(msg, userdata, job, LAUNCH_NEXT_INSTANCE, error);
}

static int restart_common(sd_bus_message *msg, Manager *m, uint64_t id, sd_bus_error *error) {
        int64_t new_id;
        int k;

        k = manager_authorize(m, msg, error);
        if (k != 0)
                return k;
        k = check_id(id, error);
        if (k < 0)
                return k;
        k = manager_restart(m, (int64_t) id, &new_id, error);
        if (db_error_is_busy(k)) {
                sd_bus_error_free(error);
                return pending_call_new(m, msg, PENDING_RESTART, NULL, NULL, LAUNCH_START, (int64_t) id, error);
        }
        if (k < 0)
                return k;
        return reply_execution(msg, new_id);
}

static int method_restart(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        uint64_t id;
        int k;

        k = sd_bus_message_read(msg, "t", &id);
        if (k < 0)
                return k;
        return restart_common(msg, userdata, id, error);
}

static int stop_common(sd_bus_message *msg, Manager *m, uint64_t id, bool abandon, sd_bus_error *error) {
        int k;

        k = manager_authorize(m, msg, error);
        if (k != 0)
                return k;
        k = check_id(id, error);
        if (k < 0)
                return k;
        k = abandon ? manager_abandon_execution(m, (int64_t) id, error) :
                      manager_stop_execution(m, (int64_t) id, error);
        if (abandon && db_error_is_busy(k)) {
                sd_bus_error_free(error);
                return pending_call_new(m, msg, PENDING_ABANDON, NULL, NULL, LAUNCH_START, (int64_t) id, error);
        }
        if (k < 0)
                return k;
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_stop(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        uint64_t id;
        int k;

        k = sd_bus_message_read(msg, "t", &id);
        if (k < 0)
                return k;
        return stop_common(msg, userdata, id, false, error);
}

static int method_abandon(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        uint64_t id;
        int k;

        k = sd_bus_message_read(msg, "t", &id);
        if (k < 0)
                return k;
        return stop_common(msg, userdata, id, true, error);
}

static int job_last_execution(Manager *m, const char *name, JobExecution **ret) {
        return repository_get_last_execution_of_job(m->repository, name, ret);
}

static uint64_t job_next_elapse(Manager *m, const JobConfig *j) {
        return manager_job_enabled(m, j) ? scheduler_next_elapse(m, j->name) : 0;
}

static int method_list_jobs(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        const Config *c = m->config->config;
        int k;

        k = sd_bus_message_new_method_return(msg, &reply);
        if (k < 0)
                return k;
        k = sd_bus_message_open_container(reply, 'a', "(sssttssuo)");
        if (k < 0)
                return k;
        for (size_t i = 0; i < c->n_jobs; i++) {
                const JobConfig *j = c->jobs[i];
                _cleanup_(job_execution_freep) JobExecution *last = NULL;
                _cleanup_free_ char *path = NULL;

                k = job_last_execution(m, j->name, &last);
                if (k < 0)
                        return k;
                k = job_path(j->name, &path);
                if (k < 0)
                        return k;
                k = sd_bus_message_append(reply, "(sssttssuo)", j->name, strempty(j->description),
                                          strempty(j->schedule), job_next_elapse(m, j),
                                          last ? (uint64_t) last->id : 0,
                                          last ? batch_status_to_string(last->status) : "",
                                          last ? strempty(last->exit_code) : "",
                                          manager_count_running(m, j->name), path);
                if (k < 0)
                        return k;
        }
        k = sd_bus_message_close_container(reply);
        if (k < 0)
                return k;
        return sd_bus_send(NULL, reply, NULL);
}

/* The definition of a job as batchd loaded it (job-format.h), with the file and line it came from. A job file
 * may hold secrets in its environment, and only its mode decides who can read it: a file others cannot read now
 * is served only to those who may change batchd's state. */
static int method_get_job_definition(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *text = NULL;
        Manager *m = userdata;
        const JobConfig *j;
        const char *name;
        struct stat st;
        int k;

        k = sd_bus_message_read(msg, "s", &name);
        if (k < 0)
                return k;
        j = config_find_job(m->config->config, name);
        if (!j)
                return sd_bus_error_setf(error, BATCH_ERROR_NO_SUCH_JOB, "No job configuration with the name [%s] "
                                         "was registered", name);
        if (stat(j->source_file, &st) < 0 || !(st.st_mode & S_IROTH)) {
                k = manager_authorize(m, msg, error);
                if (k != 0)
                        return k;
        }
        k = job_config_format(j, &text);
        if (k < 0)
                return k;
        return sd_bus_reply_method_return(msg, "sus", j->source_file, j->source_line, text);
}

static int method_list_job_instances(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        JobInstance *a = NULL;
        const char *job;
        uint32_t offset, limit;
        size_t n = 0;
        int k;

        k = sd_bus_message_read(msg, "suu", &job, &offset, &limit);
        if (k < 0)
                return k;
        k = repository_get_job_instances(m->repository, job, offset, limit, &a, &n);
        if (k < 0)
                return sd_bus_error_set_errnof(error, k, "Failed to read job instances: %m");
        k = sd_bus_message_new_method_return(msg, &reply);
        if (k >= 0)
                k = sd_bus_message_open_container(reply, 'a', "(tss)");
        for (size_t i = 0; k >= 0 && i < n; i++)
                k = sd_bus_message_append(reply, "(tss)", (uint64_t) a[i].id, a[i].job_name, a[i].job_key);
        job_instance_array_free(a, n);
        if (k >= 0)
                k = sd_bus_message_close_container(reply);
        if (k < 0)
                return k;
        return sd_bus_send(NULL, reply, NULL);
}

static int reply_execution_list(sd_bus_message *msg, JobExecution **list, size_t n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int k;

        k = sd_bus_message_new_method_return(msg, &reply);
        if (k >= 0)
                k = sd_bus_message_open_container(reply, 'a', "(ttssssttto)");
        for (size_t i = 0; k >= 0 && i < n; i++)
                k = append_execution_summary(reply, list[i]);
        if (k >= 0)
                k = sd_bus_message_close_container(reply);
        if (k < 0)
                return k;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_list_executions(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        JobExecution **list = NULL;
        const char *job;
        uint64_t instance;
        uint32_t offset, limit;
        size_t n = 0;
        int k;

        k = sd_bus_message_read(msg, "stuu", &job, &instance, &offset, &limit);
        if (k < 0)
                return k;
        if (instance > INT64_MAX)
                instance = INT64_MAX;
        k = repository_list_executions(m->repository, isempty(job) ? NULL : job, (int64_t) instance, offset, limit,
                                       &list, &n);
        if (k < 0)
                return sd_bus_error_set_errnof(error, k, "Failed to read executions: %m");
        k = reply_execution_list(msg, list, n);
        job_execution_array_free(list, n);
        return k;
}

static int method_get_running_executions(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        JobExecution **list = NULL;
        size_t n = 0;
        int k;

        k = repository_get_running_executions(m->repository, NULL, &list, &n);
        if (k < 0)
                return sd_bus_error_set_errnof(error, k, "Failed to read executions: %m");
        k = reply_execution_list(msg, list, n);
        job_execution_array_free(list, n);
        return k;
}

static int method_get_execution(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL;
        _cleanup_free_ char *context = NULL;
        Manager *m = userdata;
        uint64_t id;
        int k;

        k = sd_bus_message_read(msg, "t", &id);
        if (k < 0)
                return k;
        k = check_id(id, error);
        if (k < 0)
                return k;
        k = repository_get_execution(m->repository, (int64_t) id, &e, error);
        if (k < 0)
                return k;
        k = execution_context_serialize(e->context, &context);
        if (k < 0)
                return k;

        k = sd_bus_message_new_method_return(msg, &reply);
        if (k >= 0)
                k = append_execution_summary(reply, e);
        if (k >= 0)
                k = append_parameters(reply, &e->parameters);
        if (k >= 0)
                k = sd_bus_message_append(reply, "s", context);
        if (k < 0)
                return k;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_get_step_executions(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL;
        Manager *m = userdata;
        StepExecution **steps = NULL;
        uint64_t id;
        size_t n = 0;
        int k;

        k = sd_bus_message_read(msg, "t", &id);
        if (k < 0)
                return k;
        k = check_id(id, error);
        if (k < 0)
                return k;
        k = repository_get_execution_summary(m->repository, (int64_t) id, &e, error);
        if (k < 0)
                return k;
        k = repository_get_step_executions(m->repository, (int64_t) id, &steps, &n);
        if (k < 0)
                return k == -EILSEQ ? sd_bus_error_setf(error, BATCH_ERROR_DATABASE,
                                                        "The execution context of a step of execution %" PRIu64
                                                        " cannot be read; batchd's log says why.", id), k
                                    : sd_bus_error_set_errnof(error, k, "Failed to read step executions: %m");

        k = sd_bus_message_new_method_return(msg, &reply);
        if (k >= 0)
                k = sd_bus_message_open_container(reply, 'a', "(tsssstttttttttts)");
        for (size_t i = 0; k >= 0 && i < n; i++) {
                const StepExecution *s = steps[i];
                _cleanup_free_ char *context = NULL;

                k = execution_context_serialize(s->context, &context);
                if (k >= 0)
                        k = sd_bus_message_append(reply, "(tsssstttttttttts)", (uint64_t) s->id, s->step_name,
                                                  batch_status_to_string(s->status), strempty(s->exit_code),
                                                  strempty(s->exit_message), s->start_time, s->end_time,
                                                  (uint64_t) s->commit_count, (uint64_t) s->read_count,
                                                  (uint64_t) s->filter_count, (uint64_t) s->write_count,
                                                  (uint64_t) s->read_skip_count, (uint64_t) s->write_skip_count,
                                                  (uint64_t) s->process_skip_count, (uint64_t) s->rollback_count,
                                                  context);
        }
        step_execution_array_free(steps, n);
        if (k >= 0)
                k = sd_bus_message_close_container(reply);
        if (k < 0)
                return k;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_list_non_runs(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        NonRun *a = NULL;
        const char *job;
        uint32_t limit;
        size_t n = 0;
        int k;

        k = sd_bus_message_read(msg, "su", &job, &limit);
        if (k < 0)
                return k;
        k = schedule_store_list_nonruns(m->repository, isempty(job) ? NULL : job, limit, &a, &n);
        if (k < 0)
                return sd_bus_error_set_errnof(error, k, "Failed to read non-runs: %m");
        k = sd_bus_message_new_method_return(msg, &reply);
        if (k >= 0)
                k = sd_bus_message_open_container(reply, 'a', "(stss)");
        for (size_t i = 0; k >= 0 && i < n; i++)
                k = sd_bus_message_append(reply, "(stss)", a[i].job_name, a[i].scheduled, a[i].reason,
                                          strempty(a[i].detail));
        nonrun_array_free(a, n);
        if (k >= 0)
                k = sd_bus_message_close_container(reply);
        if (k < 0)
                return k;
        return sd_bus_send(NULL, reply, NULL);
}

/* The cluster's nodes as the database has them; empty when this batchd is not a cluster node. */
static int method_list_nodes(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        NodeInfo *a = NULL;
        uint32_t offset, limit;
        size_t n = 0;
        int k;

        k = sd_bus_message_read(msg, "uu", &offset, &limit);
        if (k < 0)
                return k;
        if (m->cluster) {
                k = cluster_store_list_nodes(cluster_get_store(m->cluster), offset, limit, &a, &n);
                if (k < 0)
                        return sd_bus_error_setf(error, db_error_is_busy(k) ? BATCH_ERROR_DATABASE_BUSY :
                                                 BATCH_ERROR_DATABASE, "Failed to read the cluster's nodes: %s",
                                                 strerror(-k)), k;
        }
        k = sd_bus_message_new_method_return(msg, &reply);
        if (k >= 0)
                k = sd_bus_message_open_container(reply, 'a', "(sssttsb)");
        for (size_t i = 0; k >= 0 && i < n; i++)
                k = sd_bus_message_append(reply, "(sssttsb)", a[i].name, strna(node_state_to_string(a[i].state)),
                                          strempty(a[i].boot_id), a[i].heartbeat, a[i].n_running,
                                          strempty(a[i].jobs_hash), a[i].drift);
        node_info_array_free(a, n);
        if (k >= 0)
                k = sd_bus_message_close_container(reply);
        if (k < 0)
                return k;
        return sd_bus_send(NULL, reply, NULL);
}

/* batchctl enable/disable/revert JOB: state "enabled" or "disabled" switches the job's schedule on or off until
 * reverted, "" reverts to the job file's `enabled` (job-enable.c). */
static int method_set_job_enabled(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *path = NULL;
        Manager *m = userdata;
        const char *job, *state;
        int enabled, k;

        k = manager_authorize(m, msg, error);
        if (k != 0)
                return k;
        k = sd_bus_message_read(msg, "ss", &job, &state);
        if (k < 0)
                return k;
        if (streq(state, "enabled"))
                enabled = 1;
        else if (streq(state, "disabled"))
                enabled = 0;
        else if (isempty(state))
                enabled = -1;
        else
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "The state must be \"enabled\", \"disabled\" or \"\", not \"%s\".", state);
        k = manager_set_job_enabled(m, job, enabled, error);
        if (k < 0)
                return k;
        if (job_path(job, &path) >= 0)
                (void) sd_bus_emit_properties_changed(sd_bus_message_get_bus(msg), path, BATCH_JOB_INTERFACE,
                                                      "Enabled", "EnabledOverride", NULL);
        return sd_bus_reply_method_return(msg, NULL);
}

/* batchctl purge: retention on demand (repository_purge()). A job batchd neither has configured nor has
 * executions of is NoSuchJob, as with ListExecutions; one that left the configuration can still be purged. */
static int method_purge(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        RepositoryPurgeResult res = {};
        const char *job;
        uint64_t older_than;
        uint32_t keep;
        int dry_run, k;

        k = manager_authorize(m, msg, error);
        if (k != 0)
                return k;
        k = sd_bus_message_read(msg, "stub", &job, &older_than, &keep, &dry_run);
        if (k < 0)
                return k;
        if (!isempty(job) && !config_find_job(m->config->config, job)) {
                _cleanup_(job_execution_freep) JobExecution *last = NULL;

                k = job_last_execution(m, job, &last);
                if (k < 0)
                        return sd_bus_error_set_errnof(error, k, "Failed to look up job %s: %m", job);
                if (!last)
                        return sd_bus_error_setf(error, BATCH_ERROR_NO_SUCH_JOB, "No job configuration with the name "
                                                 "[%s] was registered, and there are no executions of it", job);
        }
        k = repository_purge(m->repository, isempty(job) ? NULL : job, older_than, keep, dry_run,
                             now_usec(CLOCK_REALTIME), &res, error);
        if (k < 0)
                return k;
        if (!dry_run)
                log_info("Purged %s%s: %" PRIu64 " execution(s), %" PRIu64 " job instance(s), %" PRIu64
                         " non-run(s).", isempty(job) ? "every job" : "job ", strempty(job), res.executions,
                         res.instances, res.non_runs);
        return sd_bus_reply_method_return(msg, "ttt", res.executions, res.instances, res.non_runs);
}

static int method_reload(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        int k;

        k = manager_authorize(m, msg, error);
        if (k != 0)
                return k;
        k = manager_reload(m, error);
        if (k < 0)
                return k;
        return sd_bus_reply_method_return(msg, NULL);
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", PACKAGE_VERSION);
}

static int property_get_running(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "u", manager_count_running(userdata, NULL));
}

static int property_get_database_error(sd_bus *bus, const char *path, const char *interface, const char *property,
                                       sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", manager_database_error(userdata));
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("RunningExecutions", "u", property_get_running, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("DatabaseError", "s", property_get_database_error, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Start",
                                SD_BUS_ARGS("s", job, "a(sssb)", parameters),
                                SD_BUS_RESULT("t", execution_id, "o", execution),
                                method_start, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("StartNextInstance",
                                SD_BUS_ARGS("s", job, "a(sssb)", parameters),
                                SD_BUS_RESULT("t", execution_id, "o", execution),
                                method_start_next_instance, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Restart",
                                SD_BUS_ARGS("t", execution_id),
                                SD_BUS_RESULT("t", new_execution_id, "o", execution),
                                method_restart, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Stop",
                                SD_BUS_ARGS("t", execution_id),
                                SD_BUS_NO_RESULT,
                                method_stop, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Abandon",
                                SD_BUS_ARGS("t", execution_id),
                                SD_BUS_NO_RESULT,
                                method_abandon, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListJobs",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(sssttssuo)", jobs),
                                method_list_jobs, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetJobDefinition",
                                SD_BUS_ARGS("s", job),
                                SD_BUS_RESULT("s", file, "u", line, "s", definition),
                                method_get_job_definition, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListJobInstances",
                                SD_BUS_ARGS("s", job, "u", offset, "u", limit),
                                SD_BUS_RESULT("a(tss)", instances),
                                method_list_job_instances, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListExecutions",
                                SD_BUS_ARGS("s", job, "t", instance_id, "u", offset, "u", limit),
                                SD_BUS_RESULT("a(ttssssttto)", executions),
                                method_list_executions, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetExecution",
                                SD_BUS_ARGS("t", execution_id),
                                SD_BUS_RESULT("(ttssssttto)", execution, "a(sssb)", parameters, "s", job_context),
                                method_get_execution, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetStepExecutions",
                                SD_BUS_ARGS("t", execution_id),
                                SD_BUS_RESULT("a(tsssstttttttttts)", steps),
                                method_get_step_executions, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetRunningExecutions",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(ttssssttto)", executions),
                                method_get_running_executions, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListNonRuns",
                                SD_BUS_ARGS("s", job, "u", limit),
                                SD_BUS_RESULT("a(stss)", non_runs),
                                method_list_non_runs, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListNodes",
                                SD_BUS_ARGS("u", offset, "u", limit),
                                SD_BUS_RESULT("a(sssttsb)", nodes),
                                method_list_nodes, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetMetrics",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("s", text),
                                method_get_metrics, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Purge",
                                SD_BUS_ARGS("s", job, "t", older_than_usec, "u", keep, "b", dry_run),
                                SD_BUS_RESULT("t", executions, "t", instances, "t", non_runs),
                                method_purge, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetJobEnabled",
                                SD_BUS_ARGS("s", job, "s", state),
                                SD_BUS_NO_RESULT,
                                method_set_job_enabled, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Reload",
                                SD_BUS_NO_ARGS,
                                SD_BUS_NO_RESULT,
                                method_reload, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("ExecutionStarted",
                                SD_BUS_ARGS("t", execution_id, "s", job, "o", execution), 0),
        SD_BUS_SIGNAL_WITH_ARGS("ExecutionFinished",
                                SD_BUS_ARGS("t", execution_id, "s", job, "s", status, "s", exit_code,
                                            "o", execution), 0),
        SD_BUS_VTABLE_END
};

/* ---- job objects ---- */

static int job_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                           sd_bus_error *error) {
        _cleanup_free_ char *name = NULL;
        Manager *m = userdata;
        const JobConfig *j;
        int k;

        k = sd_bus_path_decode(path, BATCH_JOB_PATH_PREFIX, &name);
        if (k <= 0)
                return 0;
        j = config_find_job(m->config->config, name);
        if (!j)
                return 0;
        *found = m;
        return 1;
}

static int job_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        _cleanup_strv_free_ char **l = NULL;
        Manager *m = userdata;
        const Config *c = m->config->config;
        int k;

        l = calloc(c->n_jobs + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_jobs; i++) {
                k = job_path(c->jobs[i]->name, &l[i]);
                if (k < 0)
                        return k;
        }
        *nodes = TAKE_PTR(l);
        return 1;
}

/* Looked up on every access: a reload may have replaced or removed the job since the object was found. */
static const JobConfig *job_from_path(Manager *m, const char *path, sd_bus_error *error) {
        _cleanup_free_ char *name = NULL;
        const JobConfig *j = NULL;

        if (sd_bus_path_decode(path, BATCH_JOB_PATH_PREFIX, &name) > 0)
                j = config_find_job(m->config->config, name);
        if (!j)
                sd_bus_error_setf(error, BATCH_ERROR_NO_SUCH_JOB, "No job configuration with the name [%s] was "
                                  "registered", strna(name));
        return j;
}

#define JOB_STRING_PROPERTY(fn, expr)                                                                   \
        static int fn(sd_bus *bus, const char *path, const char *interface, const char *property,       \
                      sd_bus_message *reply, void *userdata, sd_bus_error *error) {                     \
                const JobConfig *j = job_from_path(userdata, path, error);                              \
                if (!j)                                                                                 \
                        return -ENOENT;                                                                 \
                return sd_bus_message_append(reply, "s", strempty(expr));                               \
        }

JOB_STRING_PROPERTY(property_job_name, j->name)
JOB_STRING_PROPERTY(property_job_description, j->description)
JOB_STRING_PROPERTY(property_job_schedule, j->schedule)

static int property_job_next_elapse(sd_bus *bus, const char *path, const char *interface, const char *property,
                                    sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const JobConfig *j = job_from_path(userdata, path, error);

        if (!j)
                return -ENOENT;
        return sd_bus_message_append(reply, "t", job_next_elapse(userdata, j));
}

static int property_job_last_fire(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const JobConfig *j = job_from_path(userdata, path, error);

        if (!j)
                return -ENOENT;
        return sd_bus_message_append(reply, "t", (uint64_t) scheduler_last_fire(userdata, j->name));
}

static int property_job_restartable(sd_bus *bus, const char *path, const char *interface, const char *property,
                                    sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const JobConfig *j = job_from_path(userdata, path, error);

        if (!j)
                return -ENOENT;
        return sd_bus_message_append(reply, "b", (int) j->restartable);
}

static int property_job_steps(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const JobConfig *j = job_from_path(userdata, path, error);
        int k;

        if (!j)
                return -ENOENT;
        k = sd_bus_message_open_container(reply, 'a', "s");
        for (size_t i = 0; k >= 0 && i < j->n_steps; i++)
                k = sd_bus_message_append(reply, "s", j->steps[i].name);
        if (k < 0)
                return k;
        return sd_bus_message_close_container(reply);
}

static int property_job_last(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        _cleanup_(job_execution_freep) JobExecution *last = NULL;
        const JobConfig *j = job_from_path(userdata, path, error);
        const JobExecution *e;
        Manager *m = userdata;
        int k;

        if (!j)
                return -ENOENT;
        if (m->job_last_known && streq(m->job_last_known->job_name, j->name))
                e = m->job_last_known;
        else {
                k = job_last_execution(m, j->name, &last);
                if (k < 0)
                        return k;
                e = last;
        }
        if (streq(property, "LastExecutionId"))
                return sd_bus_message_append(reply, "t", e ? (uint64_t) e->id : 0);
        return sd_bus_message_append(reply, "s", e ? batch_status_to_string(e->status) : "");
}

static int property_job_running(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const JobConfig *j = job_from_path(userdata, path, error);

        if (!j)
                return -ENOENT;
        return sd_bus_message_append(reply, "u", manager_count_running(userdata, j->name));
}

/* The settings of the loaded job that "batchctl show JOB" prints, as systemctl show prints a unit's. Only a
 * reload changes them, and nothing announces it (EmitsChangedSignal false): read them when needed. The
 * environment is left out: it may hold secrets, and GetJobDefinition decides who reads it. */
static int property_job_config(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const JobConfig *j = job_from_path(userdata, path, error);

        if (!j)
                return -ENOENT;
        if (streq(property, "SourcePath"))
                return sd_bus_message_append(reply, "s", j->source_file);
        if (streq(property, "SourceLine"))
                return sd_bus_message_append(reply, "u", j->source_line);
        if (streq(property, "User"))
                return sd_bus_message_append(reply, "s", strempty(j->user));
        if (streq(property, "Group"))
                return sd_bus_message_append(reply, "s", strempty(j->group));
        if (streq(property, "WorkingDirectory"))
                return sd_bus_message_append(reply, "s", strempty(j->working_directory));
        if (streq(property, "Parameters"))
                return append_parameters(reply, &j->parameters);
        if (streq(property, "TimeoutUSec"))
                return sd_bus_message_append(reply, "t", j->timeout_usec);
        if (streq(property, "Incrementer"))
                return sd_bus_message_append(reply, "s", job_incrementer_to_string(j->incrementer));
        if (streq(property, "Persistent"))
                return sd_bus_message_append(reply, "b", (int) j->persistent);
        if (streq(property, "CatchUp"))
                return sd_bus_message_append(reply, "u", j->catch_up);
        if (streq(property, "RandomizedDelayUSec"))
                return sd_bus_message_append(reply, "t", j->randomized_delay_usec);
        if (streq(property, "Overlap"))
                return sd_bus_message_append(reply, "s", job_overlap_to_string(j->overlap));
        if (streq(property, "ScheduleParameter")) {
                _cleanup_free_ char *p = NULL;

                if (j->schedule_parameter &&
                    asprintf(&p, "%s(%s)", j->schedule_parameter,
                             job_parameter_type_to_string(j->schedule_parameter_type)) < 0)
                        return -ENOMEM;
                return sd_bus_message_append(reply, "s", strempty(p));
        }
        if (streq(property, "Enabled"))
                return sd_bus_message_append(reply, "b", (int) manager_job_enabled(userdata, j));
        if (streq(property, "EnabledInFile"))
                return sd_bus_message_append(reply, "b", (int) j->enabled);
        if (streq(property, "EnabledOverride")) {
                int enabled;

                if (manager_job_enabled_override(userdata, j->name, &enabled) < 0)
                        return sd_bus_message_append(reply, "s", "");
                return sd_bus_message_append(reply, "s", enabled ? "enabled" : "disabled");
        }
        return -EINVAL;
}

static int method_job_start(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *name = NULL;
        const JobConfig *j = job_from_path(userdata, sd_bus_message_get_path(msg), error);

        if (!j)
                return -ENOENT;
        /* The launch may reload nothing, but keep the name independent of the configuration's lifetime. */
        name = strdup(j->name);
        if (!name)
                return -ENOMEM;
        return method_start_common(msg, userdata, name, LAUNCH_START, error);
}

static const sd_bus_vtable job_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", property_job_name, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        /* A reload changes these: manager_send_jobs_changed() says so. */
        SD_BUS_PROPERTY("Description", "s", property_job_description, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Schedule", "s", property_job_schedule, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("NextElapseUSec", "t", property_job_next_elapse, 0, 0),
        SD_BUS_PROPERTY("LastFireUSec", "t", property_job_last_fire, 0, 0),
        SD_BUS_PROPERTY("Restartable", "b", property_job_restartable, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Steps", "as", property_job_steps, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        /* An execution of the job starting, changing status or ending changes these: send_job_status_changed(). */
        SD_BUS_PROPERTY("LastExecutionId", "t", property_job_last, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastStatus", "s", property_job_last, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("RunningExecutions", "u", property_job_running, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        /* The rest of the loaded settings: property_job_config(). */
        SD_BUS_PROPERTY("SourcePath", "s", property_job_config, 0, 0),
        SD_BUS_PROPERTY("SourceLine", "u", property_job_config, 0, 0),
        SD_BUS_PROPERTY("User", "s", property_job_config, 0, 0),
        SD_BUS_PROPERTY("Group", "s", property_job_config, 0, 0),
        SD_BUS_PROPERTY("WorkingDirectory", "s", property_job_config, 0, 0),
        SD_BUS_PROPERTY("Parameters", "a(sssb)", property_job_config, 0, 0),
        SD_BUS_PROPERTY("TimeoutUSec", "t", property_job_config, 0, 0),
        SD_BUS_PROPERTY("Incrementer", "s", property_job_config, 0, 0),
        SD_BUS_PROPERTY("Persistent", "b", property_job_config, 0, 0),
        SD_BUS_PROPERTY("CatchUp", "u", property_job_config, 0, 0),
        SD_BUS_PROPERTY("RandomizedDelayUSec", "t", property_job_config, 0, 0),
        SD_BUS_PROPERTY("Overlap", "s", property_job_config, 0, 0),
        SD_BUS_PROPERTY("ScheduleParameter", "s", property_job_config, 0, 0),
        /* Enabled is the effective setting: EnabledOverride ("enabled", "disabled", or "" for none) if set by
         * SetJobEnabled, else EnabledInFile; SetJobEnabled announces both. */
        SD_BUS_PROPERTY("Enabled", "b", property_job_config, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("EnabledOverride", "s", property_job_config, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("EnabledInFile", "b", property_job_config, 0, 0),
        SD_BUS_METHOD_WITH_ARGS("Start",
                                SD_BUS_ARGS("a(sssb)", parameters),
                                SD_BUS_RESULT("t", execution_id, "o", execution),
                                method_job_start, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

/* ---- execution objects ---- */

static int execution_id_from_path(const char *path, int64_t *ret) {
        _cleanup_free_ char *s = NULL;
        char *end;
        long long v;
        int k;

        k = sd_bus_path_decode(path, BATCH_EXECUTION_PATH_PREFIX, &s);
        if (k <= 0)
                return -ENXIO;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno != 0 || *end != '\0' || v <= 0 || s[0] == '+' || s[0] == '0')
                return -ENXIO;
        *ret = v;
        return 0;
}

static int execution_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                                 void **found, sd_bus_error *error) {
        _cleanup_(job_execution_freep) JobExecution *e = NULL;
        Manager *m = userdata;
        int64_t id;

        if (execution_id_from_path(path, &id) < 0)
                return 0;
        if (manager_find_run(m, id)) {
                *found = m;
                return 1;
        }
        if (repository_get_execution_summary(m->repository, id, &e, NULL) < 0)
                return 0;
        *found = m;
        return 1;
}

static int execution_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes,
                                     sd_bus_error *error) {
        _cleanup_strv_free_ char **l = NULL;
        Manager *m = userdata;
        size_t n = 0;
        int k;

        l = calloc(m->n_runs + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_runs; i++) {
                k = execution_path(m->runs[i]->execution->id, &l[n]);
                if (k < 0)
                        return k;
                n++;
        }
        *nodes = TAKE_PTR(l);
        return 1;
}

/* Loads what the property needs: the live object for a running execution, the database otherwise. */
static int execution_for_path(Manager *m, const char *path, JobRun **ret_run, JobExecution **ret_loaded,
                              sd_bus_error *error) {
        int64_t id;
        int k;

        k = execution_id_from_path(path, &id);
        if (k < 0)
                return sd_bus_error_setf(error, BATCH_ERROR_NO_SUCH_JOB_EXECUTION, "No such execution object %s",
                                         path), k;
        *ret_run = manager_find_run(m, id);
        *ret_loaded = NULL;
        if (*ret_run)
                return 0;
        return repository_get_execution_summary(m->repository, id, ret_loaded, error);
}

static int property_execution(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        _cleanup_(job_execution_freep) JobExecution *loaded = NULL;
        JobRun *run;
        const JobExecution *e;
        const JobRun *live;
        int k;

        k = execution_for_path(userdata, path, &run, &loaded, error);
        if (k < 0)
                return k;
        e = run ? run->execution : loaded;
        /* A run that ended stays around until it is freed, with its last step and progress: from the end on it
         * has neither, as when read from the database, so that the signals of the end carry "". */
        live = run && batch_status_is_running(e->status) ? run : NULL;

        if (streq(property, "Id"))
                return sd_bus_message_append(reply, "t", (uint64_t) e->id);
        if (streq(property, "InstanceId"))
                return sd_bus_message_append(reply, "t", (uint64_t) e->job_instance_id);
        if (streq(property, "JobName"))
                return sd_bus_message_append(reply, "s", e->job_name);
        if (streq(property, "Status"))
                return sd_bus_message_append(reply, "s", batch_status_to_string(e->status));
        if (streq(property, "ExitCode"))
                return sd_bus_message_append(reply, "s", strempty(e->exit_code));
        if (streq(property, "ExitMessage"))
                return sd_bus_message_append(reply, "s", strempty(e->exit_message));
        if (streq(property, "CreateTimestamp"))
                return sd_bus_message_append(reply, "t", e->create_time);
        if (streq(property, "StartTimestamp"))
                return sd_bus_message_append(reply, "t", e->start_time);
        if (streq(property, "EndTimestamp"))
                return sd_bus_message_append(reply, "t", e->end_time);
        if (streq(property, "CurrentStep"))
                return sd_bus_message_append(reply, "s",
                                             live && live->step && batch_status_is_running(live->step->status) ?
                                             live->step->step_name : "");
        if (streq(property, "Progress"))
                return sd_bus_message_append(reply, "s", live ? strempty(live->progress) : "");
        if (streq(property, "Node")) {
                Manager *m = userdata;
                _cleanup_free_ char *node = NULL;

                if (!m->cluster)
                        return sd_bus_message_append(reply, "s", "");
                if (run)
                        return sd_bus_message_append(reply, "s", cluster_node_name(m->cluster));
                k = cluster_store_get_owner(cluster_get_store(m->cluster), e->id, &node, NULL);
                if (k < 0 && k != -ENOENT)
                        return sd_bus_error_setf(error, BATCH_ERROR_DATABASE, "Failed to read the node of execution "
                                                 "%" PRIi64 ": %s", e->id, strerror(-k)), k;
                return sd_bus_message_append(reply, "s", strempty(node));
        }
        /* The running step's progress in items (docs/step-protocol.md, TOTAL): 0 without a running step. */
        if (streq(property, "ItemsTotal"))
                return sd_bus_message_append(reply, "t", live ? live->items_total : UINT64_C(0));
        if (streq(property, "ItemsDone"))
                return sd_bus_message_append(reply, "t", live ? job_run_items_done(live) : UINT64_C(0));
        if (streq(property, "ItemsPerSecond"))
                return sd_bus_message_append(reply, "d", live ? live->items_per_second : 0.0);
        return -ENOENT;
}

static int method_execution_stop(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        int64_t id;

        if (execution_id_from_path(sd_bus_message_get_path(msg), &id) < 0)
                return -ENXIO;
        return stop_common(msg, userdata, (uint64_t) id, false, error);
}

static int method_execution_abandon(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        int64_t id;

        if (execution_id_from_path(sd_bus_message_get_path(msg), &id) < 0)
                return -ENXIO;
        return stop_common(msg, userdata, (uint64_t) id, true, error);
}

static int method_execution_restart(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        int64_t id;

        if (execution_id_from_path(sd_bus_message_get_path(msg), &id) < 0)
                return -ENXIO;
        return restart_common(msg, userdata, (uint64_t) id, error);
}

static const sd_bus_vtable execution_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "t", property_execution, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("InstanceId", "t", property_execution, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("JobName", "s", property_execution, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Status", "s", property_execution, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ExitCode", "s", property_execution, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ExitMessage", "s", property_execution, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CreateTimestamp", "t", property_execution, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("StartTimestamp", "t", property_execution, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("EndTimestamp", "t", property_execution, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CurrentStep", "s", property_execution, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Progress", "s", property_execution, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Node", "s", property_execution, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ItemsTotal", "t", property_execution, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ItemsDone", "t", property_execution, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ItemsPerSecond", "d", property_execution, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD("Stop", NULL, NULL, method_execution_stop, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Abandon", NULL, NULL, method_execution_abandon, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Restart",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("t", new_execution_id, "o", execution),
                                method_execution_restart, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

/* ---- signals ---- */

/* The job's status properties after an execution of the job started, changed status or ended, and the counts of
 * running executions (the job's and the manager's). Only what changed is named: each of LastExecutionId and
 * LastStatus costs a query, unless the caller knows the job's newest execution (known). A job that a reload
 * removed while its execution ran has no object any more. */
static void send_job_status_changed(Manager *m, const char *job_name, const JobExecution *known, bool last_id,
                                    bool last_status, bool running) {
        _cleanup_free_ char *path = NULL;
        const char *names[4] = {};
        size_t n = 0;
        int k;

        if (!m->bus)
                return;
        if (last_id)
                names[n++] = "LastExecutionId";
        if (last_status)
                names[n++] = "LastStatus";
        if (running)
                names[n++] = "RunningExecutions";
        if (config_find_job(m->config->config, job_name) && job_path(job_name, &path) >= 0) {
                /* The lookup walks every instance of the job; a launch need not pay for it. */
                m->job_last_known = known;
                k = sd_bus_emit_properties_changed_strv(m->bus, path, BATCH_JOB_INTERFACE, (char **) names);
                m->job_last_known = NULL;
                if (k < 0)
                        log_debug_errno(k, "Failed to emit PropertiesChanged for job %s: %m", job_name);
        }
        if (!running)
                return;
        k = sd_bus_emit_properties_changed(m->bus, BATCH_MANAGER_PATH, BATCH_MANAGER_INTERFACE, "RunningExecutions",
                                           NULL);
        if (k < 0)
                log_debug_errno(k, "Failed to emit PropertiesChanged for the manager: %m");
}

void manager_send_execution_started(Manager *m, const JobExecution *e) {
        _cleanup_free_ char *path = NULL;
        int k;

        if (!m->bus || execution_path(e->id, &path) < 0)
                return;
        k = sd_bus_emit_signal(m->bus, BATCH_MANAGER_PATH, BATCH_MANAGER_INTERFACE, "ExecutionStarted", "tso",
                               (uint64_t) e->id, e->job_name, path);
        if (k < 0)
                log_debug_errno(k, "Failed to emit ExecutionStarted: %m");
        k = sd_bus_emit_object_added(m->bus, path);
        if (k < 0)
                log_debug_errno(k, "Failed to emit InterfacesAdded for %s: %m", path);
        /* Just created: its id is the newest of all, so it is the job's last execution. */
        send_job_status_changed(m, e->job_name, e, /* last_id= */ true, /* last_status= */ true, /* running= */ true);
}

void manager_send_execution_finished(Manager *m, const JobExecution *e) {
        _cleanup_free_ char *path = NULL;
        int k;

        if (!m->bus || execution_path(e->id, &path) < 0)
                return;
        (void) sd_bus_emit_properties_changed(m->bus, path, BATCH_EXECUTION_INTERFACE, "Status", "ExitCode",
                                              "ExitMessage", "EndTimestamp", "CurrentStep", "Progress", NULL);
        k = sd_bus_emit_signal(m->bus, BATCH_MANAGER_PATH, BATCH_MANAGER_INTERFACE, "ExecutionFinished", "tssso",
                               (uint64_t) e->id, e->job_name, batch_status_to_string(e->status),
                               strempty(e->exit_code), path);
        if (k < 0)
                log_debug_errno(k, "Failed to emit ExecutionFinished: %m");
        /* The counts change when the run is gone: manager_send_execution_removed(). */
        send_job_status_changed(m, e->job_name, NULL, /* last_id= */ false,
                                /* last_status= */ true, /* running= */ false);
}

/* The execution's run is gone, and with it the object from GetManagedObjects (execution_node_enumerator() lists
 * running executions only): tell ObjectManager clients. The path still resolves from the database, so the
 * InterfacesRemoved names the same interfaces as the InterfacesAdded did. */
void manager_send_execution_removed(Manager *m, const JobExecution *e) {
        _cleanup_free_ char *path = NULL;
        int k;

        if (!m->bus || execution_path(e->id, &path) < 0)
                return;
        k = sd_bus_emit_object_removed(m->bus, path);
        if (k < 0)
                log_debug_errno(k, "Failed to emit InterfacesRemoved for %s: %m", path);
        /* RunningExecutions counts the runs that have not ended yet (manager_count_running()): the run that ended
         * counted until now. */
        send_job_status_changed(m, e->job_name, NULL, /* last_id= */ false,
                                /* last_status= */ false, /* running= */ true);
}

/* An execution that is not running was abandoned: its object (reachable by path, though not listed) and its job
 * changed. */
void manager_send_execution_abandoned(Manager *m, int64_t id) {
        _cleanup_(job_execution_freep) JobExecution *e = NULL;
        _cleanup_free_ char *path = NULL;

        if (!m->bus || execution_path(id, &path) < 0 || repository_get_execution(m->repository, id, &e, NULL) < 0)
                return;
        (void) sd_bus_emit_properties_changed(m->bus, path, BATCH_EXECUTION_INTERFACE, "Status", "ExitCode",
                                              "ExitMessage", "EndTimestamp", NULL);
        send_job_status_changed(m, e->job_name, NULL, /* last_id= */ false,
                                /* last_status= */ true, /* running= */ false);
}

static bool job_steps_equal(const JobConfig *a, const JobConfig *b) {
        if (a->n_steps != b->n_steps)
                return false;
        for (size_t i = 0; i < a->n_steps; i++)
                if (!streq(a->steps[i].name, b->steps[i].name))
                        return false;
        return true;
}

/* Before a reload puts next in force: jobs it drops leave the tree. Sent while the current configuration still
 * resolves them, so that InterfacesRemoved names their interfaces. */
void manager_send_jobs_removed(Manager *m, const Config *next) {
        const Config *c = m->config->config;
        int k;

        if (!m->bus)
                return;
        for (size_t i = 0; i < c->n_jobs; i++) {
                _cleanup_free_ char *path = NULL;

                if (config_find_job(next, c->jobs[i]->name) || job_path(c->jobs[i]->name, &path) < 0)
                        continue;
                k = sd_bus_emit_object_removed(m->bus, path);
                if (k < 0)
                        log_debug_errno(k, "Failed to emit InterfacesRemoved for %s: %m", path);
        }
}

/* After a reload: jobs new to it enter the tree, and the properties that differ from previous change. */
void manager_send_jobs_changed(Manager *m, const Config *previous) {
        const Config *c = m->config->config;
        int k;

        if (!m->bus)
                return;
        for (size_t i = 0; i < c->n_jobs; i++) {
                const JobConfig *j = c->jobs[i], *p = config_find_job(previous, j->name);
                _cleanup_free_ char *path = NULL;
                const char *names[5] = {};
                size_t n = 0;

                if (job_path(j->name, &path) < 0)
                        continue;
                if (!p) {
                        k = sd_bus_emit_object_added(m->bus, path);
                        if (k < 0)
                                log_debug_errno(k, "Failed to emit InterfacesAdded for %s: %m", path);
                        continue;
                }
                if (!streq(strempty(j->description), strempty(p->description)))
                        names[n++] = "Description";
                if (!streq(strempty(j->schedule), strempty(p->schedule)))
                        names[n++] = "Schedule";
                if (j->restartable != p->restartable)
                        names[n++] = "Restartable";
                if (!job_steps_equal(j, p))
                        names[n++] = "Steps";
                if (n == 0)
                        continue;
                k = sd_bus_emit_properties_changed_strv(m->bus, path, BATCH_JOB_INTERFACE, (char **) names);
                if (k < 0)
                        log_debug_errno(k, "Failed to emit PropertiesChanged for %s: %m", path);
        }
}

void manager_send_execution_changed(Manager *m, const JobRun *run, const char *property, ...) {
        _cleanup_free_ char *path = NULL;
        const char *names[8] = {};
        size_t n = 0;
        va_list ap;

        if (!m->bus || execution_path(run->execution->id, &path) < 0)
                return;
        va_start(ap, property);
        for (const char *p = property; p && n < ELEMENTSOF(names) - 1; p = va_arg(ap, const char *))
                names[n++] = p;
        va_end(ap);
        (void) sd_bus_emit_properties_changed_strv(m->bus, path, BATCH_EXECUTION_INTERFACE, (char **) names);
        for (size_t i = 0; i < n; i++)
                if (streq(names[i], "Status"))
                        send_job_status_changed(m, run->execution->job_name, NULL, /* last_id= */ false,
                                                /* last_status= */ true, /* running= */ false);
}

void manager_send_database_error_changed(Manager *m) {
        if (m->bus)
                (void) sd_bus_emit_properties_changed(m->bus, BATCH_MANAGER_PATH, BATCH_MANAGER_INTERFACE,
                                                      "DatabaseError", NULL);
}

/* ---- connection ---- */

int manager_connect_bus(Manager *m) {
        int k;

        k = batch_error_register();
        if (k < 0)
                return log_error_errno(k, "Failed to register D-Bus errors: %m");

        k = m->user_mode ? sd_bus_open_user(&m->bus) : sd_bus_open_system(&m->bus);
        if (k < 0)
                return log_error_errno(k, "Failed to connect to the %s bus: %m", m->user_mode ? "user" : "system");
        (void) sd_bus_set_description(m->bus, "batchd");
        k = bus_creds_cache_new(m->bus, &m->creds);
        if (k < 0)
                return log_error_errno(k, "Failed to watch the bus's names: %m");

        k = sd_bus_add_object_vtable(m->bus, NULL, BATCH_MANAGER_PATH, BATCH_MANAGER_INTERFACE, manager_vtable, m);
        if (k >= 0)
                k = sd_bus_add_fallback_vtable(m->bus, NULL, BATCH_JOB_PATH_PREFIX, BATCH_JOB_INTERFACE, job_vtable,
                                               job_object_find, m);
        if (k >= 0)
                k = sd_bus_add_node_enumerator(m->bus, NULL, BATCH_JOB_PATH_PREFIX, job_node_enumerator, m);
        if (k >= 0)
                k = sd_bus_add_fallback_vtable(m->bus, NULL, BATCH_EXECUTION_PATH_PREFIX, BATCH_EXECUTION_INTERFACE,
                                               execution_vtable, execution_object_find, m);
        if (k >= 0)
                k = sd_bus_add_node_enumerator(m->bus, NULL, BATCH_EXECUTION_PATH_PREFIX, execution_node_enumerator,
                                               m);
        if (k >= 0)
                k = sd_bus_add_object_manager(m->bus, NULL, BATCH_MANAGER_PATH);
        if (k < 0)
                return log_error_errno(k, "Failed to register D-Bus objects: %m");

        k = sd_bus_request_name(m->bus, BATCH_BUS_NAME, 0);
        if (k < 0)
                return log_error_errno(k, "Failed to acquire the bus name %s: %m", BATCH_BUS_NAME);

        k = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (k < 0)
                return log_error_errno(k, "Failed to attach the bus to the event loop: %m");
        return 0;
}
