/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "batch-status.h"
#include "context-format.h"
#include "execution-context.h"
#include "job-parameters.h"
#include "time-util.h"

/* The job repository: Spring Batch's JobRepository and JobExplorer over one SQLite database with Spring Batch
 * 5's schema. Every mutating call is one transaction; errors a user can cause come back as a negative errno
 * plus a named error (batch-error.h) with Spring's message in *error. */
typedef struct Repository Repository;

#define REPOSITORY_MEMORY ":memory:"
#define JOB_NAME_MAX 100
#define EXIT_MESSAGE_MAX 2500
#define EXIT_CODE_MAX 100

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
} RepositoryOpenFlags;

typedef enum LaunchFlags {
        LAUNCH_NOT_RESTARTABLE = 1 << 0, /* the job says restartable = false */
} LaunchFlags;

/* ---- lifecycle ---- */
int repository_open(const char *path, RepositoryOpenFlags flags, Repository **ret, sd_bus_error *error);
Repository *repository_free(Repository *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(Repository *, repository_free);
int repository_schema_version(Repository *r);
/* The format execution contexts are written in from now on (CONTEXT_FORMAT_JSON until set); contexts in
 * any format are read. */
void repository_set_context_format(Repository *r, ContextFormat f);

/* The connection, for batchd's own tables next to Spring's (schedule-store.c). */
struct sqlite3 *repository_get_database(Repository *r);

/* Groups several updates into one transaction, i.e. one write to disk. Transactions nest: every repository
 * call stays atomic by itself and joins an open transaction. In-memory objects updated inside a transaction
 * that is rolled back must be reloaded. */
int repository_transaction_begin(Repository *r, sd_bus_error *error);
int repository_transaction_commit(Repository *r, sd_bus_error *error);
void repository_transaction_rollback(Repository *r);

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
/* A chunk commit: adds the contribution to the counters, COMMIT_COUNT + 1, and saves the step's and (when
 * job is given) the job execution's context, all in one transaction. */
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
/* Newest first. job_name and/or instance_id (0 = any) filter. */
int repository_list_executions(Repository *r, const char *job_name, int64_t instance_id, size_t offset, size_t limit,
                               JobExecution ***ret, size_t *ret_n);
int repository_get_last_execution(Repository *r, const char *job_name, const JobParameters *params,
                                  JobExecution **ret);
int repository_get_running_executions(Repository *r, const char *job_name, JobExecution ***ret, size_t *ret_n);
int repository_get_step_executions(Repository *r, int64_t job_execution_id, StepExecution ***ret, size_t *ret_n);
int repository_get_last_step_execution(Repository *r, int64_t instance_id, const char *step_name, StepExecution **ret);
int repository_get_step_execution_count(Repository *r, int64_t instance_id, const char *step_name, uint64_t *ret);

/* ---- operations (JobOperator) ---- */
/* RunIdIncrementer: the last instance's last execution's parameters with run.id + 1 (1 when absent), then
 * the given overrides. */
int repository_next_parameters(Repository *r, const char *job_name, const JobParameters *overrides,
                               JobParameters *ret, sd_bus_error *error);
/* Marks a finished execution ABANDONED so its instance is never restarted; running ones are refused. */
int repository_abandon_execution(Repository *r, int64_t id, sd_bus_error *error);
/* Crash reconciliation: every STARTING/STARTED/STOPPING execution and step execution becomes FAILED with
 * END_TIME and the given exit message. Returns the ids in *ret_ids (may be NULL). */
int repository_fail_running_executions(Repository *r, const char *message, int64_t **ret_ids, size_t *ret_n);
/* Retention: removes executions that ended more than keep_days ago and/or beyond the newest keep_executions
 * per job (0 disables each rule), and instances left without executions; never touches an instance with a
 * running execution. One transaction. */
int repository_delete_old(Repository *r, unsigned keep_days, unsigned keep_executions, usec_t now,
                          uint64_t *ret_deleted);
