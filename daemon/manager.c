/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/file.h>
#include <systemd/sd-daemon.h>

#include "alert.h"
#include "batch-error.h"
#include "bus-creds.h"
#include "cluster.h"
#include "db-postgresql.h"
#include "db-retry.h"
#include "lifecycle-log.h"
#include "log.h"
#include "manager.h"
#include "metrics.h"

#define RECONCILE_MESSAGE \
        "batchd was restarted while this execution was running; it can be restarted from its last commit"
#define RETENTION_INTERVAL_USEC (3600 * USEC_PER_SEC)
#define LEAVE_MESSAGE \
        "batchd stopped on node %s while this execution was running; it can be restarted from its last commit"

ConfigRef *config_ref_new(Config *c) {
        ConfigRef *r = calloc(1, sizeof(ConfigRef));

        if (!r)
                return NULL;
        r->n_ref = 1;
        r->config = c;
        return r;
}

ConfigRef *config_ref_ref(ConfigRef *r) {
        if (r)
                r->n_ref++;
        return r;
}

ConfigRef *config_ref_unref(ConfigRef *r) {
        if (!r || --r->n_ref > 0)
                return NULL;
        config_free(r->config);
        return mfree(r);
}

int manager_new(const ManagerOptions *options, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int k;

        m = calloc(1, sizeof(Manager));
        if (!m)
                return -ENOMEM;
        m->output_fd = -EBADF;
        m->clock_fd = -EBADF;
        m->lock_fd = -EBADF;
        m->user_mode = options->user_mode;
        m->config_path = strdup(options->config_path ?: CONFIG_MAIN_PATH_DEFAULT);
        if (!m->config_path)
                return -ENOMEM;
        config_load_options_init(&m->load_options);

        k = sd_event_default(&m->event);
        if (k < 0)
                return k;
        (void) sd_event_set_watchdog(m->event, true);

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_runs; i++)
                job_run_free(m->runs[i]);
        free(m->runs);
        manager_pending_calls_free(m);
        sd_event_source_disable_unref(m->fire_retry_source);
        scheduler_free(m);
        sd_event_source_disable_unref(m->stop_timer);
        sd_event_source_disable_unref(m->retention_timer);
        bus_creds_cache_free(m->creds);
        sd_bus_flush_close_unref(m->bus);
        cluster_free(m->cluster);
        repository_free(m->repository);
        alerts_free(m);
        config_ref_unref(m->config);
        metrics_free(m->metrics);
        free(m->config_path);
        safe_close(m->output_fd);
        safe_close(m->lock_fd);
        sd_event_unref(m->event);
        return mfree(m);
}

static const Config *manager_config(Manager *m) {
        return m->config->config;
}

unsigned manager_count_running(Manager *m, const char *job_name) {
        unsigned n = 0;

        for (size_t i = 0; i < m->n_runs; i++)
                if (!m->runs[i]->free_source && (!job_name || streq(m->runs[i]->job->name, job_name)))
                        n++;
        return n;
}

unsigned manager_count_running_everywhere(Manager *m, const char *job_name) {
        unsigned local = manager_count_running(m, job_name);
        uint64_t n = 0;
        int k;

        if (!m->cluster)
                return local;
        /* The same connection: inside the scheduler's batch transaction this sees its own launches too. */
        k = cluster_store_count_running(cluster_get_store(m->cluster), job_name, &n);
        if (k < 0) {
                log_debug_errno(k, "Failed to count the cluster's running executions, counting this node's: %m");
                return local;
        }
        /* A run of ours whose end is being written is running here, whatever the record says. */
        return MAX(local, (unsigned) MIN(n, (uint64_t) UINT_MAX));
}

int manager_check_lease(Manager *m, sd_bus_error *error) {
        if (!m->cluster || cluster_lease_valid(m->cluster))
                return 0;
        return sd_bus_error_setf(error, BATCH_ERROR_DATABASE,
                                 "Node %s lost its cluster lease; it launches and records nothing until it has "
                                 "joined the cluster again.", cluster_node_name(m->cluster)), -ESTALE;
}

/* ---- cluster callbacks (cluster.h) ---- */

static void on_cluster_fence(Cluster *c, const char *reason, void *userdata) {
        _cleanup_free_ char *message = NULL;
        Manager *m = userdata;

        if (asprintf(&message, "Node %s lost its cluster lease (%s); the step was killed", cluster_node_name(c),
                     reason) < 0)
                message = NULL;
        for (size_t i = 0; i < m->n_runs; i++)
                job_run_fence(m->runs[i], message ?: "the node lost its cluster lease");
        manager_update_status(m);
}

static void on_cluster_rejoined(Cluster *c, void *userdata) {
        Manager *m = userdata;

        scheduler_dispatch(m);
        manager_update_status(m);
}

static void on_cluster_stop_requested(Cluster *c, int64_t execution_id, void *userdata) {
        Manager *m = userdata;
        JobRun *run = manager_find_run(m, execution_id);

        if (!run || run->free_source || run->stop_requested)
                return;
        log_info("Execution %" PRIi64 ": stop requested on another node.", execution_id);
        (void) job_run_stop(run, "stopped by request on another node");
}

static void on_cluster_tick(Cluster *c, void *userdata) {
        Manager *m = userdata;

        /* Executions that ended on other nodes free capacity and end overlaps only the database knows of. */
        if (m->n_queue > 0)
                scheduler_dispatch(m);
}

static const ClusterCallbacks cluster_callbacks = {
        .fence = on_cluster_fence,
        .rejoined = on_cluster_rejoined,
        .stop_requested = on_cluster_stop_requested,
        .tick = on_cluster_tick,
};

const char *manager_database_error(Manager *m) {
        if (m->repository && repository_is_replaced(m->repository))
                return "database file deleted or replaced; launches refused until batchd is restarted or reloaded";
        return "";
}

void manager_update_status(Manager *m) {
        if (!isempty(manager_database_error(m)))
                (void) sd_notifyf(false, "STATUS=Database %s: %s.", manager_config(m)->database,
                                  manager_database_error(m));
        else if (m->state == MANAGER_STOPPING)
                (void) sd_notifyf(false, "STATUS=Stopping, waiting for %u execution(s) to end.",
                                  manager_count_running(m, NULL));
        else
                (void) sd_notifyf(false, "STATUS=%zu job(s) loaded, %u execution(s) running.",
                                  manager_config(m)->n_jobs, manager_count_running(m, NULL));
}

JobRun *manager_find_run(Manager *m, int64_t execution_id) {
        for (size_t i = 0; i < m->n_runs; i++)
                if (m->runs[i]->execution->id == execution_id)
                        return m->runs[i];
        return NULL;
}

static void on_database_replaced(Repository *r, void *userdata) {
        Manager *m = userdata;

        log_error("Database %s was deleted or replaced while batchd had it open. Nothing more is written to it; "
                  "new launches are refused until batchd is restarted or reloaded (which reopens %s).",
                  manager_config(m)->database, manager_config(m)->database);
        manager_update_status(m);
        manager_send_database_error_changed(m);
}

static int manager_open_database(Manager *m, const Config *c, Repository **ret, sd_bus_error *error) {
        Repository *r = NULL;
        int k;

        k = repository_open(c->database, c->timestamps_utc ? REPOSITORY_TIMESTAMPS_UTC : 0, &r, error);
        if (k < 0)
                return k;
        repository_set_context_size_max(r, c->context_size_max);
        repository_set_context_format(r, c->context_format);
        repository_set_replaced_callback(r, on_database_replaced, m);
        *ret = r;
        return 0;
}

int manager_reopen_database(Manager *m, sd_bus_error *error) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        Repository *r = NULL;
        int k;

        if (!repository_is_replaced(m->repository))
                return 0;
        /* Executions still running hold ids and versions of the old file. */
        if (m->n_runs > 0)
                return sd_bus_error_setf(error, BATCH_ERROR_DATABASE_REPLACED,
                                         "Database %s was replaced; it is reopened once the %zu running "
                                         "execution(s) ended.", manager_config(m)->database, m->n_runs), -EBUSY;
        k = manager_open_database(m, manager_config(m), &r, &e);
        if (k < 0) {
                log_error("Failed to reopen the job repository %s: %s", manager_config(m)->database,
                          e.message ?: strerror(-k));
                return sd_bus_error_copy(error, &e), k;
        }
        /* Nothing of ours runs: whatever the file (a restored copy, say) claims to run is a leftover, as at
         * startup; in a cluster, only what is ours. The node joins the new file's cluster afresh. */
        if (m->cluster) {
                Cluster *c = NULL;

                k = cluster_new(m->event, r, manager_config(m), &cluster_callbacks, m, RECONCILE_MESSAGE, NULL, NULL,
                                &c);
                if (k < 0) {
                        repository_free(r);
                        return sd_bus_error_setf(error, BATCH_ERROR_DATABASE, "Failed to join the cluster in the "
                                                 "reopened database %s: %s", manager_config(m)->database,
                                                 strerror(-k)), k;
                }
                cluster_free(m->cluster);
                m->cluster = c;
        } else {
                k = repository_fail_running_executions(r, RECONCILE_MESSAGE, NULL, NULL);
                if (k < 0)
                        log_warning_errno(k, "Failed to reconcile executions left running in the reopened "
                                          "database: %m");
        }
        repository_set_busy_timeout(r, DB_BUSY_TIMEOUT_MSEC);
        repository_set_response_deadline(r, DB_RESPONSE_DEADLINE_MSEC);
        (void) repository_inject_fault_from_environment(r);
        repository_free(m->repository);
        m->repository = r;
        log_notice("Reopened the job repository %s.", manager_config(m)->database);
        manager_update_status(m);
        manager_send_database_error_changed(m);
        return 0;
}

static void log_config_errors(char **errors) {
        for (char **e = errors; e && *e; e++)
                lifecycle_log(MESSAGE_CONFIG_ERROR, LOG_ERR, NULL, NULL, "%s", *e);
}

static int manager_load_config(Manager *m, bool strict, Config **ret, char ***ret_errors) {
        ConfigLoadOptions o = m->load_options;
        int k;

        o.strict = strict;
        k = config_load(m->config_path, &o, ret, ret_errors);
        if (k >= 0)
                for (char **w = (*ret)->warnings; w && *w; w++)
                        log_warning("%s", *w);
        return k;
}

static int on_retention(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        const Config *c = manager_config(m);
        uint64_t deleted = 0;
        int k;

        if (c->keep_days > 0 || c->keep_executions > 0) {
                k = repository_delete_old(m->repository, c->keep_days, c->keep_executions,
                                          now_usec(CLOCK_REALTIME), &deleted);
                if (k < 0)
                        log_warning_errno(k, "Failed to apply the retention settings: %m");
                else if (deleted > 0)
                        log_info("Retention: removed %" PRIu64 " old execution(s).", deleted);
        }
        (void) sd_event_source_set_time_relative(s, RETENTION_INTERVAL_USEC);
        return 0;
}

static int on_signal_stop(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        log_info("Received SIG%s, stopping.", sigabbrev_np((int) si->ssi_signo) ?: "?");
        manager_begin_stop(m);
        return 0;
}

static int on_signal_reload(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Manager *m = userdata;

        (void) manager_reload(m, &error);
        return 0;
}

int manager_startup(Manager *m) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_strv_free_ char **errors = NULL;
        _cleanup_free_ int64_t *ids = NULL;
        Config *c = NULL;
        size_t n = 0;
        int k;

        /* Broken job files are reported and skipped; only a broken batchd.conf keeps us from starting. */
        k = manager_load_config(m, false, &c, &errors);
        log_config_errors(errors);
        if (k < 0)
                return log_error_errno(k, "Failed to load the configuration from %s.", m->config_path);
        m->config = config_ref_new(c);
        if (!m->config) {
                config_free(c);
                return log_oom();
        }

        /* One batchd per database: a second one would take the first one's running executions for leftovers of
         * a crash and mark them FAILED. Cluster nodes share the file (each reconciles only its own executions)
         * and hold the lock shared, so a batchd outside the cluster cannot start next to them, nor they next
         * to it. A PostgreSQL database has no file to lock, and is always a cluster's. */
        if (!streq(c->database, REPOSITORY_MEMORY) && !db_location_is_postgresql(c->database)) {
                _cleanup_free_ char *lock = NULL;

                if (asprintf(&lock, "%s.lock", c->database) < 0)
                        return log_oom();
                m->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (m->lock_fd < 0)
                        return log_error_errno(errno, "Failed to open %s: %m", lock);
                if (flock(m->lock_fd, (c->cluster ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0)
                        return log_error_errno(errno, "Database %s is in use by another batchd (%s is locked%s).",
                                               c->database, lock,
                                               c->cluster ? " by a batchd outside a cluster" :
                                                            "; several batchd share one file with cluster = true");
        }

        k = manager_open_database(m, c, &m->repository, &error);
        if (k < 0)
                return log_error_errno(k, "Failed to open the job repository: %s", error.message ?: strerror(-k));

        /* Spring Batch leaves the executions of a crashed JVM STARTED forever; nothing of ours is running yet,
         * so whatever claims to run was cut off, and is marked so it can be restarted. A cluster node does
         * that only for its own executions (and unowned ones): the other nodes' are running. */
        if (cluster_is_wanted(c, m->repository)) {
                k = cluster_new(m->event, m->repository, c, &cluster_callbacks, m, RECONCILE_MESSAGE, &ids, &n,
                                &m->cluster);
                if (k < 0)
                        return log_error_errno(k, "Failed to join the cluster: %m");
        } else {
                k = repository_fail_running_executions(m->repository, RECONCILE_MESSAGE, &ids, &n);
                if (k < 0)
                        return log_error_errno(k, "Failed to reconcile executions left running: %m");
        }
        for (size_t i = 0; i < n; i++) {
                _cleanup_(job_execution_freep) JobExecution *e = NULL;

                if (repository_get_execution(m->repository, ids[i], &e, NULL) >= 0)
                        lifecycle_log(MESSAGE_RECONCILED, LOG_WARNING, e, NULL,
                                      "Job: [%s] execution %" PRIi64 " was running when batchd stopped; marked FAILED.",
                                      e->job_name, e->id);
        }

        /* From here on the loop runs: a lock held by another process is waited out from timers, never in
         * SQLite's busy handler (docs/reliability.md). */
        repository_set_busy_timeout(m->repository, DB_BUSY_TIMEOUT_MSEC);
        repository_set_response_deadline(m->repository, DB_RESPONSE_DEADLINE_MSEC);
        k = repository_inject_fault_from_environment(m->repository);
        if (k < 0)
                return log_error_errno(k, "Invalid $BATCHD_TEST_FAULT.");

        k = sd_event_add_signal(m->event, NULL, SIGTERM | SD_EVENT_SIGNAL_PROCMASK, on_signal_stop, m);
        if (k >= 0)
                k = sd_event_add_signal(m->event, NULL, SIGINT | SD_EVENT_SIGNAL_PROCMASK, on_signal_stop, m);
        if (k >= 0)
                k = sd_event_add_signal(m->event, NULL, SIGHUP | SD_EVENT_SIGNAL_PROCMASK, on_signal_reload, m);
        if (k < 0)
                return log_error_errno(k, "Failed to set up signal handling: %m");

        /* sd_event_add_child() needs SIGCHLD blocked before the first step is forked. */
        {
                sigset_t mask;

                sigemptyset(&mask);
                sigaddset(&mask, SIGCHLD);
                if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                        return log_error_errno(errno, "Failed to block SIGCHLD: %m");
        }

        k = sd_event_add_time_relative(m->event, &m->retention_timer, CLOCK_MONOTONIC, 60 * USEC_PER_SEC,
                                       60 * USEC_PER_SEC, on_retention, m);
        if (k >= 0)
                (void) sd_event_source_set_enabled(m->retention_timer, SD_EVENT_ON);

        k = manager_connect_bus(m);
        if (k < 0)
                return k;

        m->state = MANAGER_RUNNING;
        k = scheduler_start(m);
        if (k < 0)
                return log_error_errno(k, "Failed to start the scheduler: %m");
        metrics_seed(m);
        metrics_write_textfile(m);
        (void) sd_notify(false, "READY=1");
        manager_update_status(m);
        lifecycle_log(MESSAGE_DAEMON_STATE, LOG_INFO, NULL, NULL, "batchd %s ready: %zu job(s) loaded from %s.",
                      PACKAGE_VERSION, c->n_jobs, c->jobs_dir);
        return 0;
}

int manager_run(Manager *m) {
        int k;

        k = sd_event_loop(m->event);
        (void) sd_notify(false, "STOPPING=1");
        if (m->cluster) {
                _cleanup_free_ char *message = NULL;

                /* Shutting down, nothing waits on the loop: the lock may be waited for as batchctl does. */
                repository_set_busy_timeout(m->repository, 5000);
                if (asprintf(&message, LEAVE_MESSAGE, cluster_node_name(m->cluster)) < 0)
                        return log_oom();
                cluster_leave(m->cluster, message);
        }
        return k;
}

int manager_reload(Manager *m, sd_bus_error *error) {
        _cleanup_strv_free_ char **errors = NULL;
        ConfigRef *ref, *old;
        Config *c = NULL;
        int k;

        (void) sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, now_usec(CLOCK_MONOTONIC));

        k = manager_load_config(m, true, &c, &errors);
        if (k < 0) {
                _cleanup_free_ char *joined = NULL;
                size_t len = 0;

                log_config_errors(errors);
                for (char **e = errors; e && *e; e++)
                        len += strlen(*e) + 1;
                joined = calloc(1, len + 1);
                if (joined)
                        for (char **e = errors; e && *e; e++) {
                                strcat(joined, *e);
                                if (e[1])
                                        strcat(joined, "\n");
                        }
                log_error("Reload failed, the previous configuration stays in force.");
                (void) sd_notify(false, "READY=1");
                return sd_bus_error_setf(error, BATCH_ERROR_CONFIG_INVALID,
                                         "Configuration not reloaded: %s", joined ?: "invalid configuration"), k;
        }

        if (!streq(c->database, manager_config(m)->database)) {
                /* A PostgreSQL URI may carry a password: the log gets them without. */
                _cleanup_free_ char *from = db_postgresql_redact_uri(manager_config(m)->database),
                                    *to = db_postgresql_redact_uri(c->database);

                log_warning("database changed from %s to %s; the change takes effect when batchd restarts.",
                            strna(from), strna(to));
        } else {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

                /* An operator's reload is the act that lets a replaced database be used again. */
                if (manager_reopen_database(m, &e) < 0)
                        log_warning("%s", e.message ?: "Failed to reopen the database.");
        }
        if (c->timestamps_utc != manager_config(m)->timestamps_utc)
                log_warning("timestamps changed to \"%s\"; the change takes effect when batchd restarts.",
                            c->timestamps_utc ? "utc" : "local");

        ref = config_ref_new(c);
        if (!ref) {
                config_free(c);
                (void) sd_notify(false, "READY=1");
                return -ENOMEM;
        }
        manager_send_jobs_removed(m, c);
        old = TAKE_PTR(m->config);
        m->config = ref;
        repository_set_context_size_max(m->repository, c->context_size_max);
        repository_set_context_format(m->repository, c->context_format);
        scheduler_reload(m);
        if (m->cluster)
                (void) cluster_set_jobs(m->cluster, c);
        manager_send_jobs_changed(m, old->config);
        config_ref_unref(old);
        metrics_write_textfile(m);

        lifecycle_log(MESSAGE_DAEMON_STATE, LOG_INFO, NULL, NULL, "Configuration reloaded: %zu job(s).", c->n_jobs);
        (void) sd_notify(false, "READY=1");
        manager_update_status(m);
        return 0;
}

static int on_stop_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        log_warning("Executions still running after the stop timeout; killing them.");
        for (size_t i = 0; i < m->n_runs; i++)
                job_run_abort(m->runs[i], "batchd stopped before the step ended");
        if (manager_count_running(m, NULL) == 0)
                (void) sd_event_exit(m->event, 0);
        return 0;
}

void manager_begin_stop(Manager *m) {
        const Config *c = manager_config(m);
        int k;

        if (m->state == MANAGER_STOPPING)
                return;
        m->state = MANAGER_STOPPING;
        (void) sd_notify(false, "STOPPING=1");

        for (size_t i = 0; i < m->n_runs; i++)
                (void) job_run_stop(m->runs[i], "batchd is stopping");
        manager_update_status(m);

        /* Alerts still running are waited for too (up to stop_timeout, as steps are): a failure's alert
         * should not be lost to a stop that happened to follow it. */
        if (manager_count_running(m, NULL) == 0 && !m->alerts) {
                (void) sd_event_exit(m->event, 0);
                return;
        }
        if (c->stop_timeout_usec != USEC_INFINITY) {
                k = sd_event_add_time_relative(m->event, &m->stop_timer, CLOCK_MONOTONIC, c->stop_timeout_usec, 0,
                                               on_stop_timeout, m);
                if (k < 0)
                        log_warning_errno(k, "Failed to arm the stop timeout: %m");
        }
}

/* Creates the execution, STARTED, in one transaction, then hands it to a JobRun. */
static int manager_check_expansions(const JobConfig *job, const JobParameters *params, sd_bus_error *error);

static int manager_execute(Manager *m, const JobConfig *job, const JobParameters *params,
                           int64_t *ret_execution_id, sd_bus_error *error) {
        _cleanup_(job_run_freep) JobRun *run = NULL;
        JobExecution *e = NULL;
        JobRun **a;
        int k;

        k = manager_check_expansions(job, params, error);
        if (k < 0)
                return k;

        /* Everything that can fail is allocated first: once the execution is on record as STARTED, it runs. */
        k = job_run_new(m, m->config, job, NULL, &run);
        if (k < 0)
                return k;
        a = reallocarray(m->runs, m->n_runs + 1, sizeof(JobRun *));
        if (!a)
                return -ENOMEM;
        m->runs = a;

        k = manager_check_lease(m, error);
        if (k < 0)
                return k;

        /* Created and STARTED in one transaction, with its owner when this node is part of a cluster. */
        {
                _cleanup_(repository_transaction_done) RepositoryTransaction tx = {};

                if (m->cluster) {
                        k = repository_transaction_open(m->repository, &tx, error);
                        if (k < 0)
                                return k;
                }
                k = repository_create_execution(m->repository, job->name, params,
                                                (job->restartable ? 0 : LAUNCH_NOT_RESTARTABLE) | LAUNCH_MARK_STARTED,
                                                &e, error);
                if (k < 0)
                        return k;
                if (m->cluster) {
                        k = cluster_store_set_owner(cluster_get_store(m->cluster), e->id,
                                                    cluster_node_name(m->cluster), cluster_epoch(m->cluster));
                        if (k < 0) {
                                job_execution_free(e);
                                return sd_bus_error_setf(error, db_error_is_busy(k) ? BATCH_ERROR_DATABASE_BUSY :
                                                         BATCH_ERROR_DATABASE, "Failed to record the owner of the "
                                                         "execution: %s", strerror(-k)), k;
                        }
                        k = repository_transaction_commit(&tx, error);
                        if (k < 0) {
                                job_execution_free(e);
                                return k;
                        }
                }
        }
        run->execution = e;
        m->runs[m->n_runs++] = run;
        *ret_execution_id = e->id;

        /* Inside the scheduler's batch the record is not committed yet: the scheduler starts the run after
         * the commit. */
        if (!m->defer_starts) {
                job_run_start(TAKE_PTR(run));
                manager_update_status(m);
        } else
                TAKE_PTR(run);
        return 0;
}

static int manager_check_accepting(Manager *m, sd_bus_error *error) {
        if (m->state != MANAGER_RUNNING)
                return sd_bus_error_set(error, SD_BUS_ERROR_NO_SERVER, "batchd is shutting down."), -ESHUTDOWN;
        /* A launch into a deleted file would run and be forgotten: refused until an operator acts. */
        return repository_check_file(m->repository, error);
}

static int manager_get_job(Manager *m, const char *job_name, const JobConfig **ret, sd_bus_error *error) {
        const JobConfig *job;

        if (!config_job_name_is_valid(job_name))
                return sd_bus_error_setf(error, BATCH_ERROR_JOB_PARAMETERS_INVALID,
                                         "Invalid job name '%.100s%s': a job name is 1 to %d characters of "
                                         "[A-Za-z0-9_.-], not \".\" or \"..\".", job_name,
                                         strlen(job_name) > 100 ? "..." : "", JOB_NAME_MAX), -EINVAL;
        job = config_find_job(manager_config(m), job_name);

        if (!job)
                return sd_bus_error_setf(error, BATCH_ERROR_NO_SUCH_JOB,
                                         "No job configuration with the name [%s] was registered", job_name), -ENOENT;
        *ret = job;
        return 0;
}

/* The types the job declares for parameters given by name only (batchctl start JOB day=2026-12-01): without
 * this the day would be a string, a different JobInstance from the scheduled date one, and run twice. */
static int manager_apply_declared_types(const JobConfig *job, const JobParameters *params, JobParameters *ret,
                                        sd_bus_error *error) {
        _cleanup_(job_parameters_done) JobParameters typed = JOB_PARAMETERS_NULL;
        int k;

        if (!params)
                return 0;
        k = job_parameters_copy(params, &typed);
        if (k < 0)
                return k;
        for (size_t i = 0; i < typed.n; i++) {
                JobParameter *p = typed.items + i;
                JobParameterType declared = job_config_declared_type(job, p->name);
                _cleanup_free_ char *msg = NULL;

                if (declared < 0) {
                        p->untyped = false;  /* undeclared: a string, as always */
                        continue;
                }
                k = job_parameter_apply_declared_type(p, declared, &msg);
                if (k == -ENOMEM)
                        return k;
                if (k < 0)
                        return sd_bus_error_setf(error, BATCH_ERROR_JOB_PARAMETERS_INVALID, "Job [%s]: %s",
                                                 job->name, msg ?: "invalid parameter"), k;
        }

        *ret = typed;
        typed = JOB_PARAMETERS_NULL;
        return 0;
}

int manager_launch(Manager *m, const char *job_name, const JobParameters *params, LaunchMode mode,
                   int64_t *ret_execution_id, sd_bus_error *error) {
        _cleanup_(job_parameters_done) JobParameters merged = JOB_PARAMETERS_NULL, typed = JOB_PARAMETERS_NULL;
        const JobConfig *job;
        int k;

        k = manager_check_accepting(m, error);
        if (k < 0)
                return k;
        k = manager_get_job(m, job_name, &job, error);
        if (k < 0)
                return k;

        k = manager_apply_declared_types(job, params, &typed, error);
        if (k < 0)
                return k;
        if (params)
                params = &typed;

        /* The job's defaults, then what the caller passed. */
        k = job_parameters_copy(&job->parameters, &merged);
        if (k < 0)
                return k;
        if (mode == LAUNCH_NEXT_INSTANCE) {
                _cleanup_(job_parameters_done) JobParameters next = JOB_PARAMETERS_NULL;

                k = repository_next_parameters(m->repository, job->name, params, &next, error);
                if (k < 0)
                        return k;
                params = &next;
                for (size_t i = 0; i < params->n; i++) {
                        const JobParameter *p = params->items + i;
                        _cleanup_free_ char *msg = NULL;

                        k = job_parameters_add(&merged, p->name, p->type, p->value, p->identifying, &msg);
                        if (k < 0)
                                return sd_bus_error_set(error, BATCH_ERROR_JOB_PARAMETERS_INVALID, msg), k;
                }
        } else {
                /* A job with the run.id incrementer gets the next run.id on every launch, a plain Start
                 * included, unless the caller names one: otherwise this instance would have none, and
                 * the incrementer could never tell which run.id comes next. */
                if (job->incrementer == JOB_INCREMENTER_RUN_ID && !(params && job_parameters_get(params, "run.id"))) {
                        int64_t run_id;
                        char buf[32];

                        k = repository_next_run_id(m->repository, job->name, &run_id, error);
                        if (k < 0)
                                return k;
                        (void) snprintf(buf, sizeof(buf), "%" PRIi64, run_id);
                        k = job_parameters_add(&merged, "run.id", JOB_PARAMETER_LONG, buf, true, NULL);
                        if (k < 0)
                                return k;
                }
                for (size_t i = 0; params && i < params->n; i++) {
                        const JobParameter *p = params->items + i;
                        _cleanup_free_ char *msg = NULL;

                        k = job_parameters_add(&merged, p->name, p->type, p->value, p->identifying, &msg);
                        if (k < 0)
                                return sd_bus_error_set(error, BATCH_ERROR_JOB_PARAMETERS_INVALID, msg), k;
                }
        }

        return manager_execute(m, job, &merged, ret_execution_id, error);
}

/* A ${name} with no value would only fail once the step is due; refuse the launch instead, before an execution
 * exists for it. */
static int manager_check_expansions(const JobConfig *job, const JobParameters *params, sd_bus_error *error) {
        for (size_t i = 0; i < job->n_steps; i++)
                for (char **a = job->steps[i].exec; *a; a++) {
                        _cleanup_free_ char *expanded = NULL, *why = NULL;

                        if (job_parameters_expand(params, *a, &expanded, &why) < 0)
                                return sd_bus_error_setf(error, BATCH_ERROR_JOB_PARAMETERS_INVALID,
                                                         "Step [%s] of job [%s]: %s", job->steps[i].name, job->name,
                                                         why ?: "invalid argument"), -EINVAL;
                }
        return 0;
}

int manager_restart(Manager *m, int64_t execution_id, int64_t *ret_execution_id, sd_bus_error *error) {
        _cleanup_(job_execution_freep) JobExecution *old = NULL;
        const JobConfig *job;
        int k;

        k = manager_check_accepting(m, error);
        if (k < 0)
                return k;
        k = repository_get_execution(m->repository, execution_id, &old, error);
        if (k < 0)
                return k;
        k = manager_get_job(m, old->job_name, &job, error);
        if (k < 0)
                return k;

        /* JobOperator.restart(): the same parameters, hence the same instance. */
        return manager_execute(m, job, &old->parameters, ret_execution_id, error);
}

int manager_stop_execution(Manager *m, int64_t execution_id, sd_bus_error *error) {
        _cleanup_(job_execution_freep) JobExecution *e = NULL;
        JobRun *run;
        int k;

        run = manager_find_run(m, execution_id);
        if (run && !run->free_source)
                return job_run_stop(run, "stopped by request");

        /* Running on another node: STOPPING on record, which its owner finds with its next heartbeat and
         * stops as a local stop does. */
        if (m->cluster) {
                k = cluster_store_request_stop(cluster_get_store(m->cluster), execution_id);
                if (k >= 0) {
                        log_info("Execution %" PRIi64 ": stop requested; its node stops it.", execution_id);
                        return 0;
                }
                if (k != -ESRCH)
                        return sd_bus_error_setf(error, db_error_is_busy(k) ? BATCH_ERROR_DATABASE_BUSY :
                                                 BATCH_ERROR_DATABASE, "Failed to record the stop of execution "
                                                 "%" PRIi64 ": %s", execution_id, strerror(-k)), k;
        }

        k = repository_get_execution(m->repository, execution_id, &e, error);
        if (k < 0)
                return k;
        return sd_bus_error_setf(error, BATCH_ERROR_JOB_EXECUTION_NOT_RUNNING,
                                 "JobExecution must be running so that it can be stopped: JobExecution: id=%" PRIi64
                                 ", version=%" PRIi64 ", status=%s, exitStatus=%s, job=[%s]",
                                 e->id, e->version, batch_status_to_string(e->status), strempty(e->exit_code),
                                 e->job_name), -ESRCH;
}

int manager_abandon_execution(Manager *m, int64_t execution_id, sd_bus_error *error) {
        JobRun *run = manager_find_run(m, execution_id);
        int k;

        if (run && !run->free_source)
                return sd_bus_error_set(error, BATCH_ERROR_JOB_EXECUTION_ALREADY_RUNNING,
                                        "JobExecution is running or complete and therefore cannot be aborted"),
                       -EBUSY;
        k = repository_abandon_execution(m->repository, execution_id, error);
        if (k < 0)
                return k;
        manager_send_execution_abandoned(m, execution_id);
        return 0;
}
