/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "batch-status.h"
#include "context-format.h"
#include "db.h"
#include "execution-context.h"
#include "job-parameters.h"
#include "time-util.h"

/* The job repository: Spring Batch's JobRepository and JobExplorer over one database (db.h) with Spring Batch
 * 5's schema. Every mutating call is one transaction; errors a user can cause come back as a negative errno
 * plus a named error (batch-error.h) with Spring's message in *error. */
typedef struct Repository Repository;

#define REPOSITORY_MEMORY ":memory:"
#define JOB_NAME_MAX 100
#define EXIT_MESSAGE_MAX 2500
#define EXIT_CODE_MAX 100
/* The most rows one list call returns (docs/dbus-api.md); a limit of 0 means this default page. */
#define REPOSITORY_PAGE_MAX 1000

typedef struct JobInstance {
        int64_t id;
        int64_t version;
        char *job_name;
        char *job_key;
} JobInstance;

typedef struct JobExecution {
        int64_t id;
        int64_t version;
        int64_t job_instance_id;
        char *job_name;
        usec_t create_time, start_time, end_time, last_updated;   /* 0 = NULL */
        BatchStatus status;
        char *exit_code;
        char *exit_message;
        JobParameters parameters;
        ExecutionContext *context;
} JobExecution;

typedef struct StepExecution {
        int64_t id;
        int64_t version;
        int64_t job_execution_id;
        char *step_name;
        usec_t create_time, start_time, end_time, last_updated;
        BatchStatus status;
        int64_t commit_count, read_count, filter_count, write_count;
        int64_t read_skip_count, write_skip_count, process_skip_count, rollback_count;
        char *exit_code;
        char *exit_message;
        ExecutionContext *context;
} StepExecution;

/* What a commit adds to a step execution's counters. */
typedef struct StepContribution {
        int64_t read_count, write_count, filter_count;
        int64_t read_skip_count, write_skip_count, process_skip_count;
} StepContribution;

typedef enum RepositoryOpenFlags {
        REPOSITORY_READ_ONLY = 1 << 0,   /* never migrates or writes; for batchctl and tools */
        REPOSITORY_TIMESTAMPS_UTC = 1 << 1, /* times are stored and read as UTC, not local time ("timestamps") */
} RepositoryOpenFlags;

typedef enum LaunchFlags {
        LAUNCH_NOT_RESTARTABLE = 1 << 0, /* the job says restartable = false */
        LAUNCH_MARK_STARTED    = 1 << 1, /* the execution is STARTED with its START_TIME in the same transaction */
} LaunchFlags;

/* ---- lifecycle ---- */
int repository_open(const char *path, RepositoryOpenFlags flags, Repository **ret, sd_bus_error *error);
Repository *repository_free(Repository *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(Repository *, repository_free);
int repository_schema_version(Repository *r);
/* The format execution contexts are written in from now on (CONTEXT_FORMAT_JSON until set); contexts in
 * any format are read. */
void repository_set_context_format(Repository *r, ContextFormat f);

/* The connection (db.h), for batchd's own tables next to Spring's and for tests. */
Db *repository_get_db(Repository *r);
/* The text of a stored time and back, in the time zone the repository was opened with (local by default, as
 * Spring stores LocalDateTime; UTC with REPOSITORY_TIMESTAMPS_UTC). Every table uses the same one. */
char *repository_timestamp_format(Repository *r, usec_t t, char buf[static TIMESTAMP_MAX]);
int repository_timestamp_parse(Repository *r, const char *s, usec_t *ret);

/* Groups several repository calls into one transaction, i.e. one write to disk: a guard that rolls back when it
 * goes out of scope unless it was committed, so no path can leave a transaction open or commit one it never
 * began. Transactions nest: every repository call stays atomic by itself and joins an open transaction.
 * In-memory objects updated inside a transaction that is rolled back must be reloaded. Sequences the daemon
 * always writes together have their own functions instead (repository_start_step_execution(),
 * repository_finish_step_execution(), LAUNCH_MARK_STARTED).
 *
 *     _cleanup_(repository_transaction_done) RepositoryTransaction tx = {};
 *     r = repository_transaction_open(repo, &tx, error);
 *     ...
 *     r = repository_transaction_commit(&tx, error);    // -ENOTCONN if tx is not open
 */
typedef struct RepositoryTransaction {
        Repository *repository;   /* NULL: not open (never opened, committed or rolled back) */
        unsigned depth;
} RepositoryTransaction;

int repository_transaction_open(Repository *r, RepositoryTransaction *ret, sd_bus_error *error);
int repository_transaction_commit(RepositoryTransaction *t, sd_bus_error *error);
void repository_transaction_done(RepositoryTransaction *t);

/* Whether the database path still names the file we opened. Returns 0 when it does, -EIDRM (with
 * DatabaseReplaced in *error) once it was deleted or replaced: from then on every write is refused with that
 * error, because it would go to a file nobody will read again. Only reopening (a new Repository) clears it. */
int repository_check_file(Repository *r, sd_bus_error *error);
bool repository_is_replaced(Repository *r);
/* Called once, when repository_check_file() first finds the file deleted or replaced. */
void repository_set_replaced_callback(Repository *r, void (*callback)(Repository *r, void *userdata), void *userdata);

/* How long the database's busy handler (db_set_busy_timeout()) may wait for another connection's lock inside one
 * call. repository_open() sets 5 s, right for batchctl and tools; the daemon sets a few milliseconds and retries from its loop instead
 * (docs/reliability.md). */
void repository_set_busy_timeout(Repository *r, unsigned msec);
/* PostgreSQL: how long one call may wait for the server's answer (db_set_response_deadline()); 10 s after
 * repository_open(), DB_RESPONSE_DEADLINE_MSEC in the daemon. */
void repository_set_response_deadline(Repository *r, unsigned msec);

/* Tests only: the nth execution from now of a statement whose SQL starts with sql_prefix (e.g. "COMMIT",
 * "INSERT INTO BATCH_STEP_EXECUTION "), and the count - 1 executions after it, fail with error, a negative errno
 * of db.h, instead of running (db_inject_fault()). One fault at a time; NULL clears it.
 * repository_inject_fault_from_environment() reads "$BATCHD_TEST_FAULT" as
 * "<sql prefix>:<n>:<BUSY|FULL|IOERR|NOMEM>[:<count>]", which fail with -EAGAIN, -ENOSPC, -EIO, -ENOMEM (a test
 * hook of the daemon; unset in production). */
int repository_inject_fault(Repository *r, const char *sql_prefix, unsigned n, unsigned count, int error);
int repository_inject_fault_from_environment(Repository *r);

/* ---- objects ---- */
JobInstance *job_instance_free(JobInstance *i);
DEFINE_TRIVIAL_CLEANUP_FUNC(JobInstance *, job_instance_free);
void job_instance_array_free(JobInstance *a, size_t n);
JobExecution *job_execution_free(JobExecution *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(JobExecution *, job_execution_free);
void job_execution_array_free(JobExecution **a, size_t n);
StepExecution *step_execution_free(StepExecution *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(StepExecution *, step_execution_free);
void step_execution_array_free(StepExecution **a, size_t n);

/* ---- launching (SimpleJobLauncher.run + SimpleJobRepository.createJobExecution) ----
 * Finds or creates the instance for (job_name, identifying parameters) and creates a new execution in
 * STARTING with exit code UNKNOWN; a restart gets the last execution's job context. Fails with
 * JobExecutionAlreadyRunning, JobRestart, JobInstanceAlreadyComplete or JobParametersInvalid. */
int repository_create_execution(Repository *r, const char *job_name, const JobParameters *params, LaunchFlags flags,
                                JobExecution **ret, sd_bus_error *error);

/* Writes status, times, exit code and message; checks and bumps VERSION (OptimisticLockingFailure). */
int repository_update_execution(Repository *r, JobExecution *e, sd_bus_error *error);
int repository_update_execution_context(Repository *r, JobExecution *e, sd_bus_error *error);

/* ---- steps (SimpleStepHandler) ----
 * Decides whether step_name runs in execution e: returns 1 and the last step execution of this instance
 * (or NULL) when it must run, 0 when it is skipped (last one COMPLETED and not allow_start_if_complete, or
 * ABANDONED), or fails with JobRestart (UNKNOWN) or StartLimitExceeded. start_limit 0 means no limit. */
int repository_should_start_step(Repository *r, const JobExecution *e, const char *step_name,
                                 bool allow_start_if_complete, uint64_t start_limit,
                                 StepExecution **ret_last, sd_bus_error *error);
/* Creates a step execution in STARTING. A restart (last is given and not COMPLETED) gets last's context. */
int repository_add_step_execution(Repository *r, const JobExecution *e, const char *step_name,
                                  const StepExecution *last, StepExecution **ret, sd_bus_error *error);
int repository_update_step_execution(Repository *r, StepExecution *s, sd_bus_error *error);
/* context_size_max of batchd.conf; 0 (the default) means no limit. */
void repository_set_context_size_max(Repository *r, uint64_t size_max);
/* Creates the step execution and marks it STARTED with its START_TIME, in one transaction: no STARTING step is
 * left behind when the second write fails. */
int repository_start_step_execution(Repository *r, const JobExecution *e, const char *step_name,
                                    const StepExecution *last, StepExecution **ret, sd_bus_error *error);
/* The end of a step, and of its job execution when job is given (the last step), in one transaction: a job is
 * never on record as finished with its step still running. Nothing in memory changes unless it is written, so
 * a failed call can simply be repeated. */
int repository_finish_step_execution(Repository *r, StepExecution *s, JobExecution *job, sd_bus_error *error);
/* A chunk commit: adds the contribution to the counters, COMMIT_COUNT + 1, and saves the step's and (when
 * job is given) the job execution's context, all in one transaction. A context whose serialization is longer
 * than the limit of repository_set_context_size_max() is refused with -E2BIG, and nothing is written. */
int repository_commit_step(Repository *r, StepExecution *s, const StepContribution *contribution,
                           JobExecution *job, sd_bus_error *error);

/* ---- queries (JobExplorer) ---- */
int repository_get_job_names(Repository *r, char ***ret);
int repository_get_job_instance(Repository *r, int64_t id, JobInstance **ret, sd_bus_error *error);
int repository_get_job_instances(Repository *r, const char *job_name, size_t offset, size_t limit,
                                 JobInstance **ret, size_t *ret_n);
int repository_get_job_instance_count(Repository *r, const char *job_name, uint64_t *ret);
/* Loads parameters and the job context too. */
int repository_get_execution(Repository *r, int64_t id, JobExecution **ret, sd_bus_error *error);
/* The row alone: no parameters, no context (which may be megabytes), for properties and existence checks. */
int repository_get_execution_summary(Repository *r, int64_t id, JobExecution **ret, sd_bus_error *error);
/* Summaries (no parameters, no context), newest first, at most REPOSITORY_PAGE_MAX (limit 0: that many).
 * job_name and/or instance_id (0 = any) filter. */
int repository_list_executions(Repository *r, const char *job_name, int64_t instance_id, size_t offset, size_t limit,
                               JobExecution ***ret, size_t *ret_n);
int repository_get_last_execution(Repository *r, const char *job_name, const JobParameters *params,
                                  JobExecution **ret);
/* The summary of the newest execution of the job (NULL if it never ran), from the indexes. */
int repository_get_last_execution_of_job(Repository *r, const char *job_name, JobExecution **ret);
/* Summaries, oldest first, at most REPOSITORY_PAGE_MAX. */
int repository_get_running_executions(Repository *r, const char *job_name, JobExecution ***ret, size_t *ret_n);
int repository_get_step_executions(Repository *r, int64_t job_execution_id, StepExecution ***ret, size_t *ret_n);
int repository_get_last_step_execution(Repository *r, int64_t instance_id, const char *step_name, StepExecution **ret);
int repository_get_step_execution_count(Repository *r, int64_t instance_id, const char *step_name, uint64_t *ret);

/* For tests: calls cb with every row of the plan of every statement the repository uses (SQLite: EXPLAIN QUERY
 * PLAN, the detail column; PostgreSQL: EXPLAIN, one line of the plan each). */
int repository_query_plans(Repository *r, int (*cb)(const char *sql, const char *detail, void *userdata),
                           void *userdata);

/* ---- operations (JobOperator) ---- */
/* RunIdIncrementer: the last instance's last execution's parameters, with run.id set to the next one
 * (repository_next_run_id()), then the given overrides. */
int repository_next_parameters(Repository *r, const char *job_name, const JobParameters *overrides,
                               JobParameters *ret, sd_bus_error *error);
/* The highest run.id (an identifying or not long) over every execution of the job, + 1; 1 when none has one.
 * Not "the last instance's + 1": a launch without run.id must not make the next one start over at 1. */
int repository_next_run_id(Repository *r, const char *job_name, int64_t *ret, sd_bus_error *error);
/* Marks a finished execution ABANDONED so its instance is never restarted; running ones are refused. */
int repository_abandon_execution(Repository *r, int64_t id, sd_bus_error *error);
/* Crash reconciliation: every STARTING/STARTED/STOPPING execution and step execution becomes FAILED with
 * END_TIME and the given exit message, and so does a step execution left running under an execution that
 * already ended. Returns the ids of the executions in *ret_ids (may be NULL). */
int repository_fail_running_executions(Repository *r, const char *message, int64_t **ret_ids, size_t *ret_n);
/* Retention: removes executions that ended more than keep_days ago and/or beyond the newest keep_executions
 * per job (0 disables each rule), and instances left without executions; never touches an instance with a
 * running execution. One transaction. */
int repository_delete_old(Repository *r, unsigned keep_days, unsigned keep_executions, usec_t now,
                          uint64_t *ret_deleted);

/* What repository_purge() removed, or would remove. */
typedef struct RepositoryPurgeResult {
        uint64_t executions;
        uint64_t instances;
        uint64_t non_runs;
} RepositoryPurgeResult;

/* "batchctl purge": of job (NULL: every job), removes the executions that ended more than older_than ago and/or
 * those beyond the newest keep of their job (0 disables each rule; at least one must be given), the instances
 * left without executions, and the non-runs scheduled more than older_than ago and/or beyond the newest keep of
 * their job. Never touches an instance with a running execution. One transaction; with dry_run it is rolled
 * back, and *ret has exactly what would have gone. Call it outside any transaction. */
int repository_purge(Repository *r, const char *job, usec_t older_than, unsigned keep, bool dry_run, usec_t now,
                     RepositoryPurgeResult *ret, sd_bus_error *error);
