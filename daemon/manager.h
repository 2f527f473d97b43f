/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "conf.h"
#include "repository.h"
#include "scheduler.h"
#include "step-runner.h"

/* A loaded configuration, shared by the manager and every execution started under it: a reload swaps the
 * manager's reference, and executions keep running on the configuration they started with. */
typedef struct ConfigRef {
        unsigned n_ref;
        Config *config;
} ConfigRef;

ConfigRef *config_ref_new(Config *c);
ConfigRef *config_ref_ref(ConfigRef *r);
ConfigRef *config_ref_unref(ConfigRef *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(ConfigRef *, config_ref_unref);

typedef struct Manager Manager;

/* A record a JobRun has to write before it can go on; retried from a timer while the database is busy
 * (docs/reliability.md). */
typedef enum JobRunWrite {
        JOB_RUN_WRITE_NONE,
        JOB_RUN_WRITE_STEP_START,          /* the next step's execution, STARTED; then its process starts */
        JOB_RUN_WRITE_STEP_END,            /* the step's end, and the job's end with it after the last step */
        JOB_RUN_WRITE_JOB_END,             /* the job's end alone (no step was running) */
} JobRunWrite;

/* One running job execution: its steps run one after the other, each as a child process. */
typedef struct JobRun {
        Manager *manager;
        ConfigRef *config;
        const JobConfig *job;              /* points into config */

        JobExecution *execution;
        size_t next_step;
        bool any_step_ran;

        StepExecution *step;               /* the step running now, if any */
        StepRunner *runner;
        char *progress;                    /* the step's last STATUS line */
        uint64_t items_total;              /* the step's TOTAL, 0 if it declared none */
        double items_per_second;           /* items read per second of the step, as of its last commit */
        char *custom_exit_code;            /* from EXIT_CODE, for the running step */
        char *custom_exit_description;

        bool stop_requested;
        bool timed_out;
        sd_event_source *timeout_source;
        sd_event_source *free_source;      /* frees the run outside of the runner's callbacks */

        bool started;                      /* job_run_start() was called: announced, steps under way */
        JobRunWrite pending_write;         /* what is being written, NONE when nothing */
        bool step_end_is_last;             /* JOB_RUN_WRITE_STEP_END carries the job's end too */
        const StepConfig *starting_step;          /* JOB_RUN_WRITE_STEP_START: the step and its last execution */
        StepExecution *starting_last;
        sd_event_source *retry_source;     /* the next attempt of pending_write */
        usec_t retry_delay;
        bool retry_logged;
        bool end_not_recorded;             /* the end could not be written: said so when it is logged */
        JobRunWrite batched_write;         /* written in the manager's open batch; acted on once it committed */
} JobRun;

typedef enum ManagerState {
        MANAGER_STARTING,
        MANAGER_RUNNING,
        MANAGER_STOPPING,
} ManagerState;

typedef struct ManagerOptions {
        const char *config_path;           /* NULL: CONFIG_MAIN_PATH_DEFAULT */
        bool user_mode;                    /* session bus; the invoking user is an administrator */
        bool no_bus;                       /* do not connect to any bus (tests of the core) */
} ManagerOptions;

struct Manager {
        sd_event *event;
        sd_bus *bus;
        struct BusCredsCache *creds;       /* the senders' credentials, for authorization */
        ManagerState state;
        bool user_mode;
        char *config_path;
        ConfigLoadOptions load_options;
        ConfigRef *config;
        Repository *repository;
        struct Cluster *cluster;           /* NULL unless a cluster node (cluster.h) */

        JobRun **runs;
        size_t n_runs;

        sd_event_source *stop_timer;
        sd_event_source *retention_timer;

        /* scheduler.c */
        JobTimer **timers;
        size_t n_timers;
        struct PendingFire *queue;
        size_t n_queue;
        struct PendingFire *due;           /* elapsed timers, launched together */
        size_t n_due;
        sd_event_source *tick_source;      /* one realtime timer, armed for the earliest elapse of all jobs */
        int clock_fd;
        sd_event_source *clock_source;
        int output_fd;                     /* where step output goes without a journal; -1: our stderr */
        int lock_fd;                       /* flock()ed "<database>.lock" */

        /* Set while the scheduler's batch transaction is open: launches are recorded but their runs start
         * (and are announced) only once it committed (scheduler.c). */
        bool defer_starts;
        /* Set while the scheduler's second batch (the steps' starts) is open: a run's write joins it, and what
         * follows the write (the step's process, announcements) waits for its commit (job_run_batch_done()). */
        bool batch_writes;
        /* Launches and scheduled fires waiting for the database's write lock (manager-dbus.c, scheduler.c). */
        struct PendingCall *pending_calls;
        sd_event_source *fire_retry_source;
        usec_t fire_retry_delay;
        /* Set only while a job's PropertiesChanged is built: the execution known to be the job's newest, so
         * LastExecutionId and LastStatus need no query (manager-dbus.c). */
        const JobExecution *job_last_known;

        struct Metrics *metrics;           /* metrics.c; NULL until the first figure */
        struct Alert *alerts;              /* alert.c: the alert commands running */
};

int manager_new(const ManagerOptions *options, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Loads the configuration, opens the database, reconciles executions a previous batchd left running,
 * connects to the bus and takes the name. */
int manager_startup(Manager *m);
/* Runs the loop until SIGTERM/SIGINT and every execution has wound down. */
int manager_run(Manager *m);

/* Re-reads the configuration; on any error the old one stays in force and the errors come back in *error. */
int manager_reload(Manager *m, sd_bus_error *error);
/* Stops accepting launches, stops every running execution and exits the loop once they ended (or after
 * stop_timeout). */
void manager_begin_stop(Manager *m);

typedef enum LaunchMode {
        LAUNCH_START,            /* the given parameters over the job's defaults */
        LAUNCH_NEXT_INSTANCE,    /* the run.id incrementer */
} LaunchMode;

int manager_launch(Manager *m, const char *job_name, const JobParameters *params, LaunchMode mode,
                   int64_t *ret_execution_id, sd_bus_error *error);
int manager_restart(Manager *m, int64_t execution_id, int64_t *ret_execution_id, sd_bus_error *error);
int manager_stop_execution(Manager *m, int64_t execution_id, sd_bus_error *error);
int manager_abandon_execution(Manager *m, int64_t execution_id, sd_bus_error *error);

JobRun *manager_find_run(Manager *m, int64_t execution_id);
/* Reopens the database when its file was deleted or replaced and nothing runs; part of a reload. */
int manager_reopen_database(Manager *m, sd_bus_error *error);
/* "" while the database is usable, else why launches are refused (Manager.DatabaseError). */
const char *manager_database_error(Manager *m);
unsigned manager_count_running(Manager *m, const char *job_name);
/* Running executions of the job (NULL: of all jobs) as the scheduler counts them: on this node, or across the
 * cluster from the database when this node is part of one. */
unsigned manager_count_running_everywhere(Manager *m, const char *job_name);
/* 0 when this node may launch and write records of what it runs; -ESTALE with an error when it is a cluster
 * node that lost its lease (cluster_lease_valid()). */
int manager_check_lease(Manager *m, sd_bus_error *error);
void manager_update_status(Manager *m);

/* job-run.c */
int job_run_new(Manager *m, ConfigRef *config, const JobConfig *job, JobExecution *execution, JobRun **ret);
JobRun *job_run_free(JobRun *run);
DEFINE_TRIVIAL_CLEANUP_FUNC(JobRun *, job_run_free);
/* Runs the steps. The execution must already be STARTED in the database, committed. */
void job_run_start(JobRun *run);
/* The batch the run's last write joined (Manager.batch_writes) committed (0) or failed (a negative errno). */
void job_run_batch_done(JobRun *run, int error);
int job_run_stop(JobRun *run, const char *reason);
/* batchd is going away now: the step is killed and the execution ends STOPPED at once. */
void job_run_abort(JobRun *run, const char *reason);
/* The cluster lease is gone: the step is SIGKILLed and nothing more of the run is written. */
void job_run_fence(JobRun *run, const char *reason);
/* The running step's items done (read + read skips), 0 without one. */
uint64_t job_run_items_done(const JobRun *run);

/* job-enable.c: "batchctl enable/disable/revert". Whether the job's schedule fires: the runtime switch in the
 * database if there is one, else the job file's `enabled`. */
bool manager_job_enabled(Manager *m, const JobConfig *j);
/* -ENOENT: no switch, the file decides; else *ret 1 or 0. */
int manager_job_enabled_override(Manager *m, const char *job, int *ret);
/* enabled 1 or 0 sets the switch, -1 removes it. */
int manager_set_job_enabled(Manager *m, const char *job, int enabled, sd_bus_error *error);

/* manager-dbus.c */
int manager_connect_bus(Manager *m);
void manager_send_execution_started(Manager *m, const JobExecution *e);
void manager_send_execution_finished(Manager *m, const JobExecution *e);
/* The run of the execution was freed: its object leaves GetManagedObjects. */
void manager_send_execution_removed(Manager *m, const JobExecution *e);
void manager_send_execution_abandoned(Manager *m, int64_t execution_id);
/* manager_reload() calls the first before the new configuration replaces the current one, the second after. */
void manager_send_jobs_removed(Manager *m, const Config *next);
void manager_send_jobs_changed(Manager *m, const Config *previous);
void manager_send_execution_changed(Manager *m, const JobRun *run, const char *property, ...);
void manager_send_database_error_changed(Manager *m);
/* Start/Restart that found the database locked: answered from a timer once the launch is written, or with
 * DatabaseBusy after DB_WAIT_MAX_USEC. */
void manager_pending_calls_free(Manager *m);
