/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <inttypes.h>
#include <limits.h>

#include "batch-error.h"
#include "db-retry.h"
#include "log.h"
#include "repository-internal.h"

#define ORPHAN_STEP_MESSAGE "The job execution ended while this step was on record as running; marked FAILED."

/* ---- errors ---- */

/* error is a negative errno of db.h. The database's own words go into the message. */
int repository_error(Repository *r, int error_code, sd_bus_error *error, const char *what) {
        assert(error_code < 0);

        if (error_code == -ENOMEM)
                return -ENOMEM;
        if (db_error_is_unavailable(error_code)) {
                (void) sd_bus_error_setf(error, BATCH_ERROR_DATABASE_UNAVAILABLE,
                                         "The job repository %s is unavailable (failed to %s): %s; batchd "
                                         "reconnects by itself.", r && r->db ? db_location(r->db) : "database",
                                         what, r && r->db ? db_errmsg(r->db) : strerror(-error_code));
                return error_code;
        }
        (void) sd_bus_error_setf(error, error_code == -EAGAIN ? BATCH_ERROR_DATABASE_BUSY : BATCH_ERROR_DATABASE,
                                 "Failed to %s in %s: %s", what,
                                 r && r->db ? db_location(r->db) : "database",
                                 r && r->db ? db_errmsg(r->db) : strerror(-error_code));
        return error_code;
}

/* ---- transactions ---- */

/* Transactions nest: the outermost level is BEGIN/COMMIT, inner levels are savepoints. So every function stays
 * atomic on its own, a caller can group several of them into one disk write (RepositoryTransaction), and an
 * inner failure undoes exactly its own part. */
static int repository_savepoint(Repository *r, const char *verb, unsigned level, sd_bus_error *error) {
        char sql[64];
        int k;

        (void) snprintf(sql, sizeof(sql), "%s batchd_%u", verb, level);
        k = db_exec(r->db, sql);
        if (k < 0)
                return repository_error(r, k, error, "manage a savepoint");
        return 0;
}

/* The database may roll the whole transaction back by itself after some errors (SQLite: a full disk, an I/O
 * error, no memory; PostgreSQL: a lost connection). A savepoint opened or released after that would
 * run outside any transaction and commit on its own, so a level that finds the transaction gone fails instead. */
static int repository_check_open(Repository *r, sd_bus_error *error) {
        if (r->tx_depth > 0 && !db_in_transaction(r->db))
                return sd_bus_error_setf(error, BATCH_ERROR_DATABASE,
                                         "The transaction in %s was rolled back after an error.",
                                         db_location(r->db)), -EIO;
        return 0;
}

int repository_begin(Repository *r, sd_bus_error *error) {
        int k;

        if (r->read_only)
                return sd_bus_error_setf(error, BATCH_ERROR_DATABASE, "Database %s is opened read-only.",
                                         db_location(r->db)), -EROFS;
        if (r->tx_depth > 0) {
                k = repository_check_open(r, error);
                if (k < 0)
                        return k;
                k = repository_savepoint(r, "SAVEPOINT", r->tx_depth, error);
                if (k < 0)
                        return k;
                r->tx_depth++;
                return 0;
        }
        k = repository_check_file(r, error);
        if (k < 0)
                return k;
        k = db_begin(r->db);
        if (k < 0)
                return repository_error(r, k, error, "begin a transaction");
        r->tx_depth = 1;
        return 0;
}

void repository_rollback(Repository *r) {
        assert(r->tx_depth > 0);

        if (r->tx_depth > 1) {
                r->tx_depth--;
                if (db_in_transaction(r->db)) {
                        (void) repository_savepoint(r, "ROLLBACK TO", r->tx_depth, NULL);
                        (void) repository_savepoint(r, "RELEASE", r->tx_depth, NULL);
                }
                return;
        }
        if (db_in_transaction(r->db))
                (void) db_rollback(r->db);
        r->tx_depth = 0;
}

/* Closes the innermost level. On failure the level stays open, for the caller's guard to roll back. */
int repository_commit(Repository *r, sd_bus_error *error) {
        int k;

        assert(r->tx_depth > 0);

        k = repository_check_open(r, error);
        if (k < 0)
                return k;
        if (r->tx_depth > 1) {
                k = repository_savepoint(r, "RELEASE", r->tx_depth - 1, error);
                if (k < 0)
                        return k;
                r->tx_depth--;
                return 0;
        }
        k = db_commit(r->db);
        if (k < 0) {
                if (db_error_is_unavailable(k)) {
                        r->unknown_commits++;
                        log_notice("A COMMIT to %s may or may not have been applied (%s); retried writes check "
                                   "first.", db_location(r->db), strerror(-k));
                }
                return repository_error(r, k, error, "commit");
        }
        r->tx_depth = 0;
        return 0;
}

int repository_transaction_open(Repository *r, RepositoryTransaction *ret, sd_bus_error *error) {
        int k;

        assert(r);
        assert(ret);

        *ret = (RepositoryTransaction) {};
        k = repository_begin(r, error);
        if (k < 0)
                return k;
        *ret = (RepositoryTransaction) { .repository = r, .depth = r->tx_depth };
        return 0;
}

/* Levels opened after this one and never closed are undone first: the guard's own level is what it closes. */
static void transaction_unwind(RepositoryTransaction *t) {
        while (t->repository->tx_depth > t->depth)
                repository_rollback(t->repository);
}

int repository_transaction_commit(RepositoryTransaction *t, sd_bus_error *error) {
        Repository *r;
        int k;

        assert(t);

        r = t->repository;
        if (!r || r->tx_depth < t->depth)
                /* Never opened, already closed, or an outer level went away under it. */
                return sd_bus_error_set(error, BATCH_ERROR_DATABASE, "No transaction is open."), -ENOTCONN;
        t->repository = NULL;
        transaction_unwind(&(RepositoryTransaction) { .repository = r, .depth = t->depth });
        k = repository_commit(r, error);
        if (k < 0)
                repository_rollback(r);
        return k;
}

void repository_transaction_done(RepositoryTransaction *t) {
        Repository *r;

        assert(t);

        r = TAKE_PTR(t->repository);
        if (!r || r->tx_depth < t->depth)
                return;
        transaction_unwind(&(RepositoryTransaction) { .repository = r, .depth = t->depth });
        repository_rollback(r);
}

static int bind_text(DbStatement *s, int i, const char *v) {
        return db_bind_text(s, i, v);
}

static int bind_time(Repository *r, DbStatement *s, int i, usec_t t) {
        char buf[TIMESTAMP_MAX];

        if (t == 0 || !repository_timestamp_format(r, t, buf))
                return db_bind_null(s, i);
        return db_bind_text(s, i, buf);
}

static usec_t column_time(Repository *r, DbStatement *s, int i) {
        const char *t = db_column_text(s, i);
        usec_t u;

        if (!t || repository_timestamp_parse(r, t, &u) < 0)
                return 0;
        return u;
}

static int column_strdup(DbStatement *s, int i, char **ret) {
        const char *t = db_column_text(s, i);

        if (!t) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(t);
        return *ret ? 0 : -ENOMEM;
}

/* Runs a statement expected to produce no rows; maps failure into *error. */
static int step_done(Repository *r, DbStatement *s, sd_bus_error *error, const char *what) {
        int k;

        k = db_step(s);
        if (k < 0)
                return repository_error(r, k, error, what);
        return 0;
}

static int repository_next_id(Repository *r, const char *sequence, int64_t *ret, sd_bus_error *error) {
        int k;

        k = db_next_id(r->db, sequence, ret);
        if (k < 0)
                return repository_error(r, k, error, "allocate an id");
        return 0;
}

/* Prepares statement id into s, or fails the calling function with a Database error. */
#define PREPARE(r, id, s, error)                                                                       \
        do {                                                                                           \
                int _k_ = repository_statement((r), (id), &(s));                                       \
                if (_k_ < 0)                                                                           \
                        return repository_error((r), _k_, (error), "prepare a statement");             \
        } while (0)

/* ---- object lifetimes ---- */

JobInstance *job_instance_free(JobInstance *i) {
        if (!i)
                return NULL;
        free(i->job_name);
        free(i->job_key);
        return mfree(i);
}

void job_instance_array_free(JobInstance *a, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(a[i].job_name);
                free(a[i].job_key);
        }
        free(a);
}

JobExecution *job_execution_free(JobExecution *e) {
        if (!e)
                return NULL;
        free(e->job_name);
        free(e->exit_code);
        free(e->exit_message);
        job_parameters_done(&e->parameters);
        execution_context_free(e->context);
        return mfree(e);
}

void job_execution_array_free(JobExecution **a, size_t n) {
        for (size_t i = 0; i < n; i++)
                job_execution_free(a[i]);
        free(a);
}

StepExecution *step_execution_free(StepExecution *s) {
        if (!s)
                return NULL;
        free(s->step_name);
        free(s->exit_code);
        free(s->exit_message);
        execution_context_free(s->context);
        return mfree(s);
}

void step_execution_array_free(StepExecution **a, size_t n) {
        for (size_t i = 0; i < n; i++)
                step_execution_free(a[i]);
        free(a);
}

/* ---- contexts ---- */

static int context_bind(Repository *r, DbStatement *s, const ExecutionContext *c, char **ret_serialized,
                        char **ret_short) {
        _cleanup_free_ char *serialized = NULL, *shrt = NULL, *message = NULL;
        _cleanup_(execution_context_freep) ExecutionContext *empty = NULL;
        int k;

        if (!c) {
                k = execution_context_new(&empty);
                if (k < 0)
                        return k;
                c = empty;
        }
        k = execution_context_serialize_as(c, r->context_format, &serialized, &message);
        if (k < 0)
                return message ? log_warning_errno(k, "Cannot write an execution context as %s: %s",
                                                   context_format_to_string(r->context_format), message) : k;
        k = execution_context_short(serialized, &shrt);
        if (k < 0)
                return k;
        k = db_bind_text(s, 2, shrt);
        if (k >= 0)
                k = db_bind_text(s, 3, serialized);
        if (k < 0)
                return k;
        /* The binding is a copy; the caller measures the serialization against its limit. */
        *ret_serialized = TAKE_PTR(serialized);
        *ret_short = TAKE_PTR(shrt);
        return 0;
}

/* size_max 0: no limit. what names the context in the message. */
static int context_save_limited(Repository *r, Sql id, int64_t owner, const ExecutionContext *c, uint64_t size_max,
                                const char *what, sd_bus_error *error) {
        _cleanup_db_reset_ DbStatement *s = NULL;
        _cleanup_free_ char *serialized = NULL, *shrt = NULL;
        int k;

        PREPARE(r, id, s, error);
        db_bind_int64(s, 1, owner);
        k = context_bind(r, s, c, &serialized, &shrt);
        if (k < 0)
                return k;
        /* Measured on the serialization that is written anyway: the limit costs nothing. */
        if (size_max > 0 && strlen(serialized) > size_max)
                return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                         "The %s execution context would be %zu bytes, larger than the limit of "
                                         "%" PRIu64 " bytes (context_size_max)", what, strlen(serialized), size_max),
                       -E2BIG;
        k = step_done(r, s, error, "save an execution context");
        if (k < 0)
                return k;
        if (db_changes(r->db) == 0)
                return sd_bus_error_setf(error, BATCH_ERROR_DATABASE,
                                         "Execution context of %" PRIi64 " is missing in %s.", owner,
                                         db_location(r->db)), -EIO;
        return 0;
}

static int context_save(Repository *r, Sql id, int64_t owner, const ExecutionContext *c, sd_bus_error *error) {
        return context_save_limited(r, id, owner, c, 0, NULL, error);
}

void repository_set_context_size_max(Repository *r, uint64_t size_max) {
        assert(r);
        r->context_size_max = size_max;
}

/* A stored context that cannot be read (the reason is logged), told apart from database errors: no SQLite
 * error maps to it (db.h). */
#define CONTEXT_UNREADABLE (-EILSEQ)

/* SERIALIZED_CONTEXT is authoritative; SHORT_CONTEXT alone is enough when Spring left SERIALIZED_CONTEXT NULL.
 * Any format is read (context-format.h); what cannot be is logged with the reason, e.g. the Java class. */
static int context_from_columns(DbStatement *s, int short_col, int long_col, ExecutionContext **ret) {
        _cleanup_free_ char *message = NULL;
        int col = !db_column_is_null(s, long_col) ? long_col : short_col;
        const char *text = db_column_text(s, col);
        int k;

        k = execution_context_parse(text, text ? db_column_bytes(s, col) : 0, ret, &message);
        if (k == -ENOMEM)
                return k;
        if (k < 0) {
                log_warning_errno(k, "Unreadable execution context: %s", strna(message));
                return CONTEXT_UNREADABLE;
        }
        return 0;
}

static int context_load(Repository *r, Sql id, int64_t owner, ExecutionContext **ret) {
        _cleanup_db_reset_ DbStatement *s = NULL;
        int k, rc;

        k = repository_statement(r, id, &s);
        if (k < 0)
                return k;
        db_bind_int64(s, 1, owner);
        rc = db_step(s);
        if (rc == DB_DONE)
                return execution_context_new(ret);
        if (rc != DB_ROW)
                return rc;
        return context_from_columns(s, 0, 1, ret);
}

/* ---- reading rows ---- */

static int execution_from_row(Repository *r, DbStatement *s, JobExecution **ret) {
        _cleanup_(job_execution_freep) JobExecution *e = NULL;
        const char *status;
        int k;

        e = calloc(1, sizeof(JobExecution));
        if (!e)
                return -ENOMEM;
        e->id = db_column_int64(s, 0);
        e->version = db_column_int64(s, 1);
        e->job_instance_id = db_column_int64(s, 2);
        k = column_strdup(s, 3, &e->job_name);
        if (k < 0)
                return k;
        e->create_time = column_time(r, s, 4);
        e->start_time = column_time(r, s, 5);
        e->end_time = column_time(r, s, 6);
        e->last_updated = column_time(r, s, 7);
        status = db_column_text(s, 8);
        e->status = batch_status_from_string(status);
        if (e->status < 0)
                e->status = BATCH_STATUS_UNKNOWN;
        k = column_strdup(s, 9, &e->exit_code);
        if (k < 0)
                return k;
        k = column_strdup(s, 10, &e->exit_message);
        if (k < 0)
                return k;

        *ret = TAKE_PTR(e);
        return 0;
}

static int step_from_row(Repository *r, DbStatement *s, StepExecution **ret) {
        _cleanup_(step_execution_freep) StepExecution *x = NULL;
        int k;

        x = calloc(1, sizeof(StepExecution));
        if (!x)
                return -ENOMEM;
        x->id = db_column_int64(s, 0);
        x->version = db_column_int64(s, 1);
        x->job_execution_id = db_column_int64(s, 2);
        k = column_strdup(s, 3, &x->step_name);
        if (k < 0)
                return k;
        x->create_time = column_time(r, s, 4);
        x->start_time = column_time(r, s, 5);
        x->end_time = column_time(r, s, 6);
        x->last_updated = column_time(r, s, 7);
        x->status = batch_status_from_string(db_column_text(s, 8));
        if (x->status < 0)
                x->status = BATCH_STATUS_UNKNOWN;
        x->commit_count = db_column_int64(s, 9);
        x->read_count = db_column_int64(s, 10);
        x->filter_count = db_column_int64(s, 11);
        x->write_count = db_column_int64(s, 12);
        x->read_skip_count = db_column_int64(s, 13);
        x->write_skip_count = db_column_int64(s, 14);
        x->process_skip_count = db_column_int64(s, 15);
        x->rollback_count = db_column_int64(s, 16);
        k = column_strdup(s, 17, &x->exit_code);
        if (k < 0)
                return k;
        k = column_strdup(s, 18, &x->exit_message);
        if (k < 0)
                return k;
        k = context_from_columns(s, 19, 20, &x->context);
        if (k < 0)
                return k;

        *ret = TAKE_PTR(x);
        return 0;
}

static int params_load(Repository *r, int64_t execution_id, JobParameters *ret) {
        _cleanup_db_reset_ DbStatement *s = NULL;
        JobParameters p = JOB_PARAMETERS_NULL;
        int k, rc;

        k = repository_statement(r, SQL_GET_PARAMS, &s);
        if (k < 0)
                return k;
        db_bind_int64(s, 1, execution_id);
        while ((rc = db_step(s)) == DB_ROW) {
                const char *name = db_column_text(s, 0);
                const char *type = db_column_text(s, 1);
                const char *value = db_column_text(s, 2);
                const char *identifying = db_column_text(s, 3);
                JobParameterType t = job_parameter_type_from_java(type);

                if (t < 0) /* a row written by something else: keep it readable as a string */
                        t = JOB_PARAMETER_STRING;
                k = job_parameters_add(&p, strempty(name), t, strempty(value),
                                       identifying && streq(identifying, "Y"), NULL);
                if (k < 0 && t != JOB_PARAMETER_STRING)
                        k = job_parameters_add(&p, strempty(name), JOB_PARAMETER_STRING, strempty(value),
                                               identifying && streq(identifying, "Y"), NULL);
                if (k < 0) {
                        job_parameters_done(&p);
                        return k;
                }
        }
        if (rc != DB_DONE) {
                job_parameters_done(&p);
                return rc;
        }
        *ret = p;
        return 0;
}

/* ---- launching ---- */

static int validate_name(const char *what, const char *name, sd_bus_error *error) {
        if (isempty(name))
                return sd_bus_error_setf(error, BATCH_ERROR_JOB_PARAMETERS_INVALID, "%s must not be empty.", what),
                       -EINVAL;
        if (!utf8_is_valid(name))
                return sd_bus_error_setf(error, BATCH_ERROR_JOB_PARAMETERS_INVALID, "%s is not valid UTF-8.", what),
                       -EINVAL;
        if (strlen(name) > JOB_NAME_MAX)
                return sd_bus_error_setf(error, BATCH_ERROR_JOB_PARAMETERS_INVALID,
                                         "%s is longer than %d bytes.", what, JOB_NAME_MAX), -EINVAL;
        return 0;
}

static int validate_parameters(const JobParameters *p, sd_bus_error *error) {
        for (size_t i = 0; i < p->n; i++) {
                const JobParameter *x = p->items + i;

                if (isempty(x->name) || strlen(x->name) > JOB_PARAMETER_NAME_MAX || !utf8_is_valid(x->name))
                        return sd_bus_error_setf(error, BATCH_ERROR_JOB_PARAMETERS_INVALID,
                                                 "Invalid parameter name '%s'.", strempty(x->name)), -EINVAL;
                if (!x->value || strlen(x->value) > JOB_PARAMETER_VALUE_MAX || !utf8_is_valid(x->value))
                        return sd_bus_error_setf(error, BATCH_ERROR_JOB_PARAMETERS_INVALID,
                                                 "Invalid value for parameter '%s'.", x->name), -EINVAL;
                if (x->type < 0 || x->type >= _JOB_PARAMETER_TYPE_MAX)
                        return sd_bus_error_setf(error, BATCH_ERROR_JOB_PARAMETERS_INVALID,
                                                 "Invalid type for parameter '%s'.", x->name), -EINVAL;
        }
        return 0;
}

static int execution_write(Repository *r, JobExecution *e, usec_t now, sd_bus_error *error);

/* Steps on record as running under an execution that ended (execution_id 0: under any) become FAILED. */
static int fail_orphan_steps(Repository *r, int64_t execution_id, usec_t now, sd_bus_error *error) {
        _cleanup_db_reset_ DbStatement *s = NULL;

        if (execution_id > 0) {
                PREPARE(r, SQL_FAIL_ORPHAN_STEPS, s, error);
                db_bind_int64(s, 1, execution_id);
        } else
                PREPARE(r, SQL_FAIL_ALL_ORPHAN_STEPS, s, error);
        bind_text(s, 2, ORPHAN_STEP_MESSAGE);
        bind_time(r, s, 3, now);
        return step_done(r, s, error, "fail steps left running");
}

/* SimpleJobLauncher's and SimpleJobRepository's refusals, for an instance that already has executions. */
static int check_existing_instance(Repository *r, int64_t instance_id, int64_t instance_version,
                                   const char *job_name, const JobParameters *params, LaunchFlags flags,
                                   int64_t *ret_last, sd_bus_error *error) {
        _cleanup_db_reset_ DbStatement *s = NULL, *l = NULL, *st = NULL;
        bool running = false, unknown = false, complete = false;
        int64_t last = 0;
        int rc;

        PREPARE(r, SQL_LAST_EXECUTION_OF_INSTANCE, l, error);
        db_bind_int64(l, 1, instance_id);
        rc = db_step(l);
        if (rc != DB_ROW && rc != DB_DONE)
                return repository_error(r, rc, error, "look up the last execution");
        if (rc == DB_ROW)
                last = db_column_int64(l, 0);
        if (last == 0) {
                *ret_last = 0;
                return 0;
        }

        if (flags & LAUNCH_NOT_RESTARTABLE)
                return sd_bus_error_set(error, BATCH_ERROR_JOB_RESTART,
                                        "JobInstance already exists and is not restartable"), -ENOTRECOVERABLE;

        /* A step still "running" under an execution that ended is a leftover, not a reason to refuse forever. */
        {
                int k = fail_orphan_steps(r, last, now_usec(CLOCK_REALTIME), error);

                if (k < 0)
                        return k;
        }

        PREPARE(r, SQL_STEP_STATUSES_OF_EXECUTION, st, error);
        db_bind_int64(st, 1, last);
        while ((rc = db_step(st)) == DB_ROW) {
                BatchStatus status = batch_status_from_string(db_column_text(st, 1));

                if (batch_status_is_running(status))
                        running = true;
                else if (status == BATCH_STATUS_UNKNOWN)
                        return sd_bus_error_setf(error, BATCH_ERROR_JOB_RESTART, "Step [%s] is of status UNKNOWN",
                                                 db_column_text(st, 0)), -ENOTRECOVERABLE;
        }
        if (rc != DB_DONE)
                return repository_error(r, rc, error, "read step statuses");

        PREPARE(r, SQL_INSTANCE_STATUSES, s, error);
        db_bind_int64(s, 1, instance_id);
        while ((rc = db_step(s)) == DB_ROW) {
                BatchStatus status = batch_status_from_string(db_column_text(s, 0));

                if (batch_status_is_running(status))
                        running = true;
                else if (status == BATCH_STATUS_UNKNOWN || status < 0)
                        unknown = true;
                else if (status == BATCH_STATUS_COMPLETED || status == BATCH_STATUS_ABANDONED)
                        complete = true;
        }
        if (rc != DB_DONE)
                return repository_error(r, rc, error, "read execution statuses");

        if (running)
                return sd_bus_error_setf(error, BATCH_ERROR_JOB_EXECUTION_ALREADY_RUNNING,
                                         "A job execution for this job is already running: JobInstance: id=%" PRIi64
                                         ", version=%" PRIi64 ", Job=[%s]", instance_id, instance_version, job_name),
                       -EBUSY;
        if (unknown)
                return sd_bus_error_set(error, BATCH_ERROR_JOB_RESTART,
                                        "Cannot restart job from UNKNOWN status. The last execution ended with a "
                                        "failure that could not be rolled back, so it may be dangerous to proceed. "
                                        "Manual intervention is probably necessary."), -ENOTRECOVERABLE;
        /* The key hashes the identifying parameters, so every execution of this instance has the same ones. */
        if (complete && job_parameters_has_identifying(params)) {
                _cleanup_free_ char *text = NULL;
                int k;

                k = job_parameters_identifying_to_string(params, &text);
                if (k < 0)
                        return k;
                return sd_bus_error_setf(error, BATCH_ERROR_JOB_INSTANCE_ALREADY_COMPLETE,
                                         "A job instance already exists and is complete for identifying "
                                         "parameters=%s.  If you want to run this job again, change the "
                                         "parameters.", text), -EALREADY;
        }

        *ret_last = last;
        return 0;
}

/* The instance of (job_name, key), locked until the transaction ends (SQL_LOCK_INSTANCE); *ret_id 0 if there is
 * none. */
static int lock_instance(Repository *r, const char *job_name, const char *key, int64_t *ret_id, int64_t *ret_version,
                         sd_bus_error *error) {
        _cleanup_db_reset_ DbStatement *find = NULL;
        int rc;

        PREPARE(r, SQL_LOCK_INSTANCE, find, error);
        bind_text(find, 1, job_name);
        bind_text(find, 2, key);
        rc = db_step(find);
        if (rc == DB_ROW) {
                *ret_id = db_column_int64(find, 0);
                *ret_version = db_column_int64(find, 1);
                return 0;
        }
        if (rc != DB_DONE)
                return repository_error(r, rc, error, "look up the job instance");
        *ret_id = 0;
        *ret_version = 0;
        return 0;
}

/* Creates the instance. On PostgreSQL a concurrent launcher may have inserted the same (JOB_NAME, JOB_KEY) since
 * lock_instance() found none: the insert then waits for that transaction and fails on JOB_INST_UN, which aborts
 * the whole transaction unless it ran inside a savepoint (a nested level). -EEXIST then means "it exists now",
 * with this transaction intact. */
static int insert_instance(Repository *r, const char *job_name, const char *key, int64_t *ret_id,
                           sd_bus_error *error) {
        _cleanup_transaction_ Repository *tx = NULL;
        _cleanup_db_reset_ DbStatement *ins = NULL;
        bool savepoint = db_backend(r->db) == DB_BACKEND_POSTGRESQL;
        int64_t id;
        int k;

        k = repository_next_id(r, "BATCH_JOB_SEQ", &id, error);
        if (k < 0)
                return k;
        if (savepoint) {
                k = repository_begin(r, error);
                if (k < 0)
                        return k;
                tx = r;
        }
        PREPARE(r, SQL_INSERT_INSTANCE, ins, error);
        db_bind_int64(ins, 1, id);
        bind_text(ins, 2, job_name);
        bind_text(ins, 3, key);
        k = step_done(r, ins, error, "create the job instance");
        if (k < 0)
                return k;       /* the guard rolls back to the savepoint */
        if (savepoint) {
                k = repository_commit(r, error);
                if (k < 0)
                        return k;
                tx = NULL;
        }
        *ret_id = id;
        return 0;
}

int repository_create_execution(Repository *r, const char *job_name, const JobParameters *params, LaunchFlags flags,
                                JobExecution **ret, sd_bus_error *error) {
        _cleanup_transaction_ Repository *tx = NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL;
        _cleanup_db_reset_ DbStatement *exec = NULL;
        int64_t instance_id = 0, instance_version = 0, last = 0;
        bool existed;
        char key[33];
        usec_t now;
        int k;

        assert(r);
        assert(params);
        assert(ret);

        k = validate_name("Job name", job_name, error);
        if (k < 0)
                return k;
        k = validate_parameters(params, error);
        if (k < 0)
                return k;
        k = job_parameters_job_key(params, key);
        if (k < 0)
                return k;

        e = calloc(1, sizeof(JobExecution));
        if (!e)
                return -ENOMEM;
        e->job_name = strdup(job_name);
        e->exit_code = strdup(EXIT_CODE_UNKNOWN);
        e->exit_message = strdup("");
        if (!e->job_name || !e->exit_code || !e->exit_message)
                return -ENOMEM;
        k = job_parameters_copy(params, &e->parameters);
        if (k < 0)
                return k;

        /* SQLite: IMMEDIATE takes the write lock before reading, so two launchers of one instance serialize here
         * and the second one sees the first one's running execution. PostgreSQL: the instance's row lock does
         * that (lock_instance()), and JOB_INST_UN decides between launchers that both found no instance. */
        k = repository_begin(r, error);
        if (k < 0)
                return k;
        tx = r;

        k = lock_instance(r, job_name, key, &instance_id, &instance_version, error);
        if (k < 0)
                return k;
        existed = instance_id > 0;
        if (!existed) {
                k = insert_instance(r, job_name, key, &instance_id, error);
                if (k == -EEXIST) {
                        /* A concurrent launcher created it first and has committed: continue as for an instance
                         * that existed, which sees its execution (JobExecutionAlreadyRunning). */
                        sd_bus_error_free(error);
                        k = lock_instance(r, job_name, key, &instance_id, &instance_version, error);
                        if (k < 0)
                                return k;
                        if (instance_id == 0)
                                return sd_bus_error_setf(error, BATCH_ERROR_DATABASE,
                                                         "Failed to create the job instance in %s: another launcher "
                                                         "created it and it went away again.", db_location(r->db)),
                                       -EIO;
                        existed = true;
                } else if (k < 0)
                        return k;
        }
        if (existed) {
                k = check_existing_instance(r, instance_id, instance_version, job_name, params, flags, &last, error);
                if (k < 0)
                        return k;
        }

        /* A restart carries the job context of the execution it continues. */
        if (last > 0)
                k = context_load(r, SQL_GET_JOB_CONTEXT, last, &e->context);
        else
                k = execution_context_new(&e->context);
        if (k == CONTEXT_UNREADABLE)
                return sd_bus_error_setf(error, BATCH_ERROR_DATABASE, "The job execution context of execution %"
                                         PRIi64 " cannot be read; batchd's log says why.", last), k;
        if (k < 0)
                return repository_error(r, k, error, "load the job execution context");

        k = repository_next_id(r, "BATCH_JOB_EXECUTION_SEQ", &e->id, error);
        if (k < 0)
                return k;
        now = now_usec(CLOCK_REALTIME);
        e->job_instance_id = instance_id;
        e->status = BATCH_STATUS_STARTING;
        e->create_time = e->last_updated = now;

        PREPARE(r, SQL_INSERT_EXECUTION, exec, error);
        db_bind_int64(exec, 1, e->id);
        db_bind_int64(exec, 2, instance_id);
        bind_time(r, exec, 3, now);
        bind_text(exec, 4, batch_status_to_string(e->status));
        bind_text(exec, 5, e->exit_code);
        k = step_done(r, exec, error, "create the job execution");
        if (k < 0)
                return k;

        for (size_t i = 0; i < params->n; i++) {
                _cleanup_db_reset_ DbStatement *p = NULL;
                const JobParameter *x = params->items + i;

                PREPARE(r, SQL_INSERT_PARAM, p, error);
                db_bind_int64(p, 1, e->id);
                bind_text(p, 2, x->name);
                bind_text(p, 3, job_parameter_type_to_java(x->type));
                bind_text(p, 4, x->value);
                bind_text(p, 5, x->identifying ? "Y" : "N");
                k = step_done(r, p, error, "store the job parameters");
                if (k < 0)
                        return k;
        }

        {
                _cleanup_db_reset_ DbStatement *c = NULL;
                _cleanup_free_ char *serialized = NULL, *shrt = NULL;

                PREPARE(r, SQL_INSERT_JOB_CONTEXT, c, error);
                db_bind_int64(c, 1, e->id);
                k = context_bind(r, c, e->context, &serialized, &shrt);
                if (k < 0)
                        return k;
                k = step_done(r, c, error, "store the job execution context");
                if (k < 0)
                        return k;
        }

        if (flags & LAUNCH_MARK_STARTED) {
                e->status = BATCH_STATUS_STARTED;
                e->start_time = now;
                k = execution_write(r, e, now, error);
                if (k < 0)
                        return k;
                e->version++;
        }

        k = repository_commit(r, error);
        if (k < 0)
                return k;
        tx = NULL;

        *ret = TAKE_PTR(e);
        return 0;
}

/* Cuts at a character boundary so a long message never leaves broken UTF-8 in the column. */
static char *utf8_truncate(const char *s, size_t max, char buf[]) {
        size_t n = strlen(s);

        if (n <= max)
                return (char *) s;
        n = max;
        while (n > 0 && ((unsigned char) s[n] & 0xc0) == 0x80)
                n--;
        memcpy(buf, s, n);
        buf[n] = '\0';
        return buf;
}

/* A write found its record's VERSION moved on. After a COMMIT whose outcome was unknown (r->unknown_commits), that
 * may be this very write, applied by the earlier attempt: it was, when the record holds the next version and
 * what the write puts there (the status; for a step also its commit count and whether it ended). Nobody else
 * writes that combination: another node that fails an execution or a Stop changes the status, and a step's
 * commit count only ever grows by its own commits. Returns 1 when applied (and clears *error), 0 when not. */
static int step_write_was_applied(Repository *r, const StepExecution *x, sd_bus_error *error) {
        _cleanup_db_reset_ DbStatement *s = NULL;
        int rc;

        if (r->unknown_commits == 0)
                return 0;
        PREPARE(r, SQL_STEP_STATE, s, error);
        db_bind_int64(s, 1, x->id);
        rc = db_step(s);
        if (rc < 0)
                return repository_error(r, rc, error, "check the step execution");
        if (rc != DB_ROW || db_column_int64(s, 0) != x->version + 1 ||
            !streq(strempty(db_column_text(s, 1)), batch_status_to_string(x->status)) ||
            db_column_int64(s, 2) != x->commit_count || (db_column_int64(s, 3) != 0) != (x->end_time != 0))
                return 0;
        log_notice("Step execution %" PRIi64 ": the earlier attempt of this write was applied; not writing it twice.",
                   x->id);
        sd_bus_error_free(error);
        return 1;
}

static int execution_write_was_applied(Repository *r, const JobExecution *e, sd_bus_error *error) {
        _cleanup_db_reset_ DbStatement *s = NULL;
        int rc;

        if (r->unknown_commits == 0)
                return 0;
        PREPARE(r, SQL_EXECUTION_STATE, s, error);
        db_bind_int64(s, 1, e->id);
        rc = db_step(s);
        if (rc < 0)
                return repository_error(r, rc, error, "check the job execution");
        if (rc != DB_ROW || db_column_int64(s, 0) != e->version + 1 ||
            !streq(strempty(db_column_text(s, 1)), batch_status_to_string(e->status)))
                return 0;
        log_notice("Job execution %" PRIi64 ": the earlier attempt of this write was applied; not writing it twice.",
                   e->id);
        sd_bus_error_free(error);
        return 1;
}

static int version_conflict(Repository *r, Sql version_sql, const char *what, const char *missing_error,
                            int64_t id, int64_t version, sd_bus_error *error) {
        _cleanup_db_reset_ DbStatement *s = NULL;
        int rc;

        PREPARE(r, version_sql, s, error);
        db_bind_int64(s, 1, id);
        rc = db_step(s);
        if (rc == DB_DONE)
                return sd_bus_error_setf(error, missing_error, "No %s with id=%" PRIi64 " in the repository.",
                                         what, id), -ENXIO;
        if (rc != DB_ROW)
                return repository_error(r, rc, error, "check the record version");
        return sd_bus_error_setf(error, BATCH_ERROR_OPTIMISTIC_LOCKING_FAILURE,
                                 "Attempt to update %s id=%" PRIi64 " with wrong version (%" PRIi64 "), where "
                                 "current version is %" PRIi64, what, id, version, (int64_t) db_column_int64(s, 0)),
               -ESTALE;
}

static int execution_write(Repository *r, JobExecution *e, usec_t now, sd_bus_error *error) {
        _cleanup_db_reset_ DbStatement *s = NULL;
        char msgbuf[EXIT_MESSAGE_MAX + 1], codebuf[EXIT_CODE_MAX + 1];
        int k;

        PREPARE(r, SQL_UPDATE_EXECUTION, s, error);
        db_bind_int64(s, 1, e->id);
        db_bind_int64(s, 2, e->version);
        bind_time(r, s, 3, e->start_time);
        bind_time(r, s, 4, e->end_time);
        bind_text(s, 5, batch_status_to_string(e->status));
        bind_text(s, 6, utf8_truncate(strempty(e->exit_code), EXIT_CODE_MAX, codebuf));
        bind_text(s, 7, utf8_truncate(strempty(e->exit_message), EXIT_MESSAGE_MAX, msgbuf));
        bind_time(r, s, 8, now);
        k = step_done(r, s, error, "update the job execution");
        if (k < 0)
                return k;
        if (db_changes(r->db) == 0) {
                db_reset(s);
                return version_conflict(r, SQL_EXECUTION_VERSION, "job execution",
                                        BATCH_ERROR_NO_SUCH_JOB_EXECUTION, e->id, e->version, error);
        }
        return 0;
}

int repository_update_execution(Repository *r, JobExecution *e, sd_bus_error *error) {
        usec_t now = now_usec(CLOCK_REALTIME);
        int k;

        assert(r);
        assert(e);

        if (r->read_only)
                return repository_begin(r, error);
        if (r->tx_depth == 0) {
                k = repository_check_file(r, error);
                if (k < 0)
                        return k;
        }
        k = execution_write(r, e, now, error);
        if (k == -ESTALE && r->tx_depth == 0)
                k = execution_write_was_applied(r, e, error) > 0 ? 0 : k;
        if (k < 0)
                return k;
        e->version++;
        e->last_updated = now;
        return 0;
}

int repository_update_execution_context(Repository *r, JobExecution *e, sd_bus_error *error) {
        assert(r);
        assert(e);

        if (r->read_only)
                return repository_begin(r, error);
        if (r->tx_depth == 0) {
                int k = repository_check_file(r, error);

                if (k < 0)
                        return k;
        }
        return context_save(r, SQL_UPDATE_JOB_CONTEXT, e->id, e->context, error);
}

/* ---- steps ---- */

int repository_get_last_step_execution(Repository *r, int64_t instance_id, const char *step_name, StepExecution **ret) {
        _cleanup_db_reset_ DbStatement *s = NULL;
        int k, rc;

        k = repository_statement(r, SQL_LAST_STEP, &s);
        if (k < 0)
                return k;
        db_bind_int64(s, 1, instance_id);
        bind_text(s, 2, step_name);
        rc = db_step(s);
        if (rc == DB_DONE) {
                *ret = NULL;
                return 0;
        }
        if (rc != DB_ROW)
                return rc;
        return step_from_row(r, s, ret);
}

int repository_get_step_execution_count(Repository *r, int64_t instance_id, const char *step_name, uint64_t *ret) {
        _cleanup_db_reset_ DbStatement *s = NULL;
        int k, rc;

        k = repository_statement(r, SQL_STEP_COUNT, &s);
        if (k < 0)
                return k;
        db_bind_int64(s, 1, instance_id);
        bind_text(s, 2, step_name);
        rc = db_step(s);
        if (rc != DB_ROW)
                return rc < 0 ? rc : -EIO;     /* an aggregate always has its row */
        *ret = (uint64_t) db_column_int64(s, 0);
        return 0;
}

int repository_should_start_step(Repository *r, const JobExecution *e, const char *step_name,
                                 bool allow_start_if_complete, uint64_t start_limit,
                                 StepExecution **ret_last, sd_bus_error *error) {
        _cleanup_(step_execution_freep) StepExecution *last = NULL;
        uint64_t count;
        int k;

        assert(r);
        assert(e);
        assert(ret_last);

        k = repository_get_last_step_execution(r, e->job_instance_id, step_name, &last);
        if (k == CONTEXT_UNREADABLE)
                return sd_bus_error_setf(error, BATCH_ERROR_DATABASE, "The execution context of the last execution "
                                         "of step %s cannot be read; batchd's log says why.", step_name), k;
        if (k < 0)
                return repository_error(r, k, error, "look up the last step execution");

        if (last && last->status == BATCH_STATUS_UNKNOWN)
                return sd_bus_error_set(error, BATCH_ERROR_JOB_RESTART,
                                        "Cannot restart step from UNKNOWN status. The last execution ended with a "
                                        "failure that could not be rolled back, so it may be dangerous to proceed. "
                                        "Manual intervention is probably necessary."), -ENOTRECOVERABLE;

        if (last && ((last->status == BATCH_STATUS_COMPLETED && !allow_start_if_complete) ||
                     last->status == BATCH_STATUS_ABANDONED)) {
                log_info("Step already complete or not restartable, so no action to execute: StepExecution: id=%"
                         PRIi64 ", version=%" PRIi64 ", name=%s, status=%s, exitStatus=%s, readCount=%" PRIi64
                         ", filterCount=%" PRIi64 ", writeCount=%" PRIi64 " readSkipCount=%" PRIi64
                         ", writeSkipCount=%" PRIi64 ", processSkipCount=%" PRIi64 ", commitCount=%" PRIi64
                         ", rollbackCount=%" PRIi64 ", exitDescription=%s",
                         last->id, last->version, last->step_name, batch_status_to_string(last->status),
                         strempty(last->exit_code), last->read_count, last->filter_count, last->write_count,
                         last->read_skip_count, last->write_skip_count, last->process_skip_count,
                         last->commit_count, last->rollback_count, strempty(last->exit_message));
                *ret_last = TAKE_PTR(last);
                return 0;
        }

        if (start_limit > 0) {
                k = repository_get_step_execution_count(r, e->job_instance_id, step_name, &count);
                if (k < 0)
                        return repository_error(r, k, error, "count step executions");
                /* SimpleStepHandler's message byte for byte, missing space included. */
                if (count >= start_limit)
                        return sd_bus_error_setf(error, BATCH_ERROR_START_LIMIT_EXCEEDED,
                                                 "Maximum start limit exceeded for step: %sStartMax: %" PRIu64,
                                                 step_name, start_limit), -EDQUOT;
        }

        *ret_last = TAKE_PTR(last);
        return 1;
}

int repository_add_step_execution(Repository *r, const JobExecution *e, const char *step_name,
                                  const StepExecution *last, StepExecution **ret, sd_bus_error *error) {
        _cleanup_transaction_ Repository *tx = NULL;
        _cleanup_(step_execution_freep) StepExecution *x = NULL;
        _cleanup_db_reset_ DbStatement *s = NULL, *c = NULL;
        _cleanup_free_ char *serialized = NULL, *shrt = NULL;
        int k;

        assert(r);
        assert(e);
        assert(ret);

        k = validate_name("Step name", step_name, error);
        if (k < 0)
                return k;

        x = calloc(1, sizeof(StepExecution));
        if (!x)
                return -ENOMEM;
        x->job_execution_id = e->id;
        x->step_name = strdup(step_name);
        x->exit_code = strdup(EXIT_CODE_EXECUTING);
        x->exit_message = strdup("");
        if (!x->step_name || !x->exit_code || !x->exit_message)
                return -ENOMEM;
        x->status = BATCH_STATUS_STARTING;

        /* SimpleStepHandler: a step that did not complete resumes from its last saved context. */
        if (last && last->status != BATCH_STATUS_COMPLETED && last->context) {
                k = execution_context_copy(last->context, &x->context);
                if (k >= 0)
                        (void) execution_context_remove(x->context, "batch.executed");
        } else
                k = execution_context_new(&x->context);
        if (k < 0)
                return k;

        k = repository_begin(r, error);
        if (k < 0)
                return k;
        tx = r;

        k = repository_next_id(r, "BATCH_STEP_EXECUTION_SEQ", &x->id, error);
        if (k < 0)
                return k;
        x->create_time = x->last_updated = now_usec(CLOCK_REALTIME);

        PREPARE(r, SQL_INSERT_STEP, s, error);
        db_bind_int64(s, 1, x->id);
        bind_text(s, 2, step_name);
        db_bind_int64(s, 3, e->id);
        bind_time(r, s, 4, x->create_time);
        k = step_done(r, s, error, "create the step execution");
        if (k < 0)
                return k;

        PREPARE(r, SQL_INSERT_STEP_CONTEXT, c, error);
        db_bind_int64(c, 1, x->id);
        k = context_bind(r, c, x->context, &serialized, &shrt);
        if (k < 0)
                return k;
        k = step_done(r, c, error, "store the step execution context");
        if (k < 0)
                return k;

        k = repository_commit(r, error);
        if (k < 0)
                return k;
        tx = NULL;

        *ret = TAKE_PTR(x);
        return 0;
}

static int step_write(Repository *r, const StepExecution *x, usec_t now, sd_bus_error *error) {
        _cleanup_db_reset_ DbStatement *s = NULL;
        char msgbuf[EXIT_MESSAGE_MAX + 1], codebuf[EXIT_CODE_MAX + 1];
        int k;

        PREPARE(r, SQL_UPDATE_STEP, s, error);
        db_bind_int64(s, 1, x->id);
        db_bind_int64(s, 2, x->version);
        bind_time(r, s, 3, x->start_time);
        bind_time(r, s, 4, x->end_time);
        bind_text(s, 5, batch_status_to_string(x->status));
        db_bind_int64(s, 6, x->commit_count);
        db_bind_int64(s, 7, x->read_count);
        db_bind_int64(s, 8, x->filter_count);
        db_bind_int64(s, 9, x->write_count);
        db_bind_int64(s, 10, x->read_skip_count);
        db_bind_int64(s, 11, x->write_skip_count);
        db_bind_int64(s, 12, x->process_skip_count);
        db_bind_int64(s, 13, x->rollback_count);
        bind_text(s, 14, utf8_truncate(strempty(x->exit_code), EXIT_CODE_MAX, codebuf));
        bind_text(s, 15, utf8_truncate(strempty(x->exit_message), EXIT_MESSAGE_MAX, msgbuf));
        bind_time(r, s, 16, now);
        k = step_done(r, s, error, "update the step execution");
        if (k < 0)
                return k;
        if (db_changes(r->db) == 0) {
                db_reset(s);
                return version_conflict(r, SQL_STEP_VERSION, "step execution", BATCH_ERROR_NO_SUCH_JOB_EXECUTION,
                                        x->id, x->version, error);
        }
        return 0;
}

int repository_update_step_execution(Repository *r, StepExecution *s, sd_bus_error *error) {
        usec_t now = now_usec(CLOCK_REALTIME);
        int k;

        assert(r);
        assert(s);

        if (r->read_only)
                return repository_begin(r, error);
        if (r->tx_depth == 0) {
                k = repository_check_file(r, error);
                if (k < 0)
                        return k;
        }
        k = step_write(r, s, now, error);
        if (k < 0)
                return k;
        s->version++;
        s->last_updated = now;
        return 0;
}

int repository_start_step_execution(Repository *r, const JobExecution *e, const char *step_name,
                                    const StepExecution *last, StepExecution **ret, sd_bus_error *error) {
        _cleanup_transaction_ Repository *tx = NULL;
        _cleanup_(step_execution_freep) StepExecution *x = NULL;
        usec_t now;
        int k;

        assert(r);
        assert(e);
        assert(ret);

        if (r->unknown_commits > 0) {
                /* The earlier attempt of this start may have been applied: one step of an execution runs at a
                 * time, so a STARTED one of this name is that attempt's, not a second copy to make. */
                _cleanup_db_reset_ DbStatement *f = NULL;

                PREPARE(r, SQL_FIND_STARTED_STEP, f, error);
                db_bind_int64(f, 1, e->id);
                bind_text(f, 2, step_name);
                k = db_step(f);
                if (k < 0)
                        return repository_error(r, k, error, "look for the step execution");
                if (k == DB_ROW) {
                        k = step_from_row(r, f, &x);
                        if (k < 0)
                                return k;
                        log_notice("Step execution %" PRIi64 ": the earlier attempt of its start was applied; "
                                   "not starting it twice.", x->id);
                        *ret = TAKE_PTR(x);
                        return 0;
                }
        }

        k = repository_begin(r, error);
        if (k < 0)
                return k;
        tx = r;

        k = repository_add_step_execution(r, e, step_name, last, &x, error);
        if (k < 0)
                return k;
        now = now_usec(CLOCK_REALTIME);
        x->status = BATCH_STATUS_STARTED;
        x->start_time = now;
        k = step_write(r, x, now, error);
        if (k < 0)
                return k;

        k = repository_commit(r, error);
        if (k < 0)
                return k;
        tx = NULL;

        x->version++;
        x->last_updated = now;
        *ret = TAKE_PTR(x);
        return 0;
}

int repository_finish_step_execution(Repository *r, StepExecution *s, JobExecution *job, sd_bus_error *error) {
        _cleanup_transaction_ Repository *tx = NULL;
        usec_t now = now_usec(CLOCK_REALTIME);
        int k;

        assert(r);
        assert(s);

        k = repository_begin(r, error);
        if (k < 0)
                return k;
        tx = r;

        k = step_write(r, s, now, error);
        if (k == -ESTALE && r->tx_depth == 1) {
                /* Both records were one transaction: the step's end applied means the job's end did too. */
                k = step_write_was_applied(r, s, error);
                if (k > 0 && job)
                        k = execution_write_was_applied(r, job, error);
                if (k > 0) {
                        /* Nothing was written at this level: close it without a COMMIT. */
                        tx = NULL;
                        repository_rollback(r);
                        goto written;
                }
                if (k == 0)
                        k = -ESTALE;
        }
        if (k < 0)
                return k;
        if (job) {
                k = execution_write(r, job, now, error);
                if (k < 0)
                        return k;
        }

        k = repository_commit(r, error);
        if (k < 0)
                return k;
        tx = NULL;
written:

        /* Only now: a failed attempt leaves the versions as the database has them, for the next one. */
        s->version++;
        s->last_updated = now;
        if (job) {
                job->version++;
                job->last_updated = now;
        }
        return 0;
}

static bool counter_add(int64_t *counter, int64_t n) {
        if (n < 0 || __builtin_add_overflow(*counter, n, counter))
                return false;
        return true;
}

int repository_commit_step(Repository *r, StepExecution *s, const StepContribution *c,
                           JobExecution *job, sd_bus_error *error) {
        _cleanup_transaction_ Repository *tx = NULL;
        StepExecution updated;
        usec_t now = now_usec(CLOCK_REALTIME);
        int k;

        assert(r);
        assert(s);

        /* Work on a copy of the counters so a failed commit leaves the caller's view as the database has it. */
        updated = *s;
        if (c && !(counter_add(&updated.read_count, c->read_count) &&
                   counter_add(&updated.write_count, c->write_count) &&
                   counter_add(&updated.filter_count, c->filter_count) &&
                   counter_add(&updated.read_skip_count, c->read_skip_count) &&
                   counter_add(&updated.write_skip_count, c->write_skip_count) &&
                   counter_add(&updated.process_skip_count, c->process_skip_count)))
                return sd_bus_error_set(error, BATCH_ERROR_JOB_PARAMETERS_INVALID,
                                        "Step counts must be non-negative and fit in 64 bits."), -EINVAL;
        if (!counter_add(&updated.commit_count, 1))
                return -EOVERFLOW;

        k = repository_begin(r, error);
        if (k < 0)
                return k;
        tx = r;

        k = step_write(r, &updated, now, error);
        if (k == -ESTALE && r->tx_depth == 1) {
                /* The contexts were part of the same transaction as the counters. */
                k = step_write_was_applied(r, &updated, error);
                if (k > 0) {
                        tx = NULL;
                        repository_rollback(r);
                        goto written;
                }
                if (k == 0)
                        k = -ESTALE;
        }
        if (k < 0)
                return k;
        k = context_save_limited(r, SQL_UPDATE_STEP_CONTEXT, s->id, s->context, r->context_size_max, "step", error);
        if (k < 0)
                return k;
        if (job) {
                k = context_save_limited(r, SQL_UPDATE_JOB_CONTEXT, job->id, job->context, r->context_size_max,
                                         "job", error);
                if (k < 0)
                        return k;
        }

        k = repository_commit(r, error);
        if (k < 0)
                return k;
        tx = NULL;
written:
        updated.version++;
        updated.last_updated = now;
        *s = updated;
        return 0;
}

/* ---- queries ---- */

/* A page: 0 means the default page, and no page is larger than REPOSITORY_PAGE_MAX. */
static int64_t page_limit(size_t limit) {
        return limit == 0 || limit > REPOSITORY_PAGE_MAX ? REPOSITORY_PAGE_MAX : (int64_t) limit;
}

int repository_get_job_names(Repository *r, char ***ret) {
        _cleanup_db_reset_ DbStatement *s = NULL;
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;
        int k, rc;

        k = repository_statement(r, SQL_JOB_NAMES, &s);
        if (k < 0)
                return k;
        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        while ((rc = db_step(s)) == DB_ROW) {
                char **nl = reallocarray(l, n + 2, sizeof(char *));

                if (!nl)
                        return -ENOMEM;
                l = nl;
                l[n] = strdup(db_column_text(s, 0));
                if (!l[n])
                        return -ENOMEM;
                l[++n] = NULL;
        }
        if (rc != DB_DONE)
                return rc;
        *ret = TAKE_PTR(l);
        return 0;
}

static int instance_from_row(DbStatement *s, JobInstance *i) {
        i->id = db_column_int64(s, 0);
        i->version = db_column_int64(s, 1);
        if (column_strdup(s, 2, &i->job_name) < 0 || column_strdup(s, 3, &i->job_key) < 0)
                return -ENOMEM;
        return 0;
}

int repository_get_job_instance(Repository *r, int64_t id, JobInstance **ret, sd_bus_error *error) {
        _cleanup_db_reset_ DbStatement *s = NULL;
        _cleanup_(job_instance_freep) JobInstance *i = NULL;
        int rc;

        PREPARE(r, SQL_GET_INSTANCE, s, error);
        db_bind_int64(s, 1, id);
        rc = db_step(s);
        if (rc == DB_DONE)
                return sd_bus_error_setf(error, BATCH_ERROR_NO_SUCH_JOB_INSTANCE,
                                         "No job instance with id=%" PRIi64 ".", id), -ENODATA;
        if (rc != DB_ROW)
                return repository_error(r, rc, error, "read the job instance");
        i = calloc(1, sizeof(JobInstance));
        if (!i || instance_from_row(s, i) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(i);
        return 0;
}

int repository_get_job_instances(Repository *r, const char *job_name, size_t offset, size_t limit,
                                 JobInstance **ret, size_t *ret_n) {
        _cleanup_db_reset_ DbStatement *s = NULL;
        JobInstance *a = NULL;
        size_t n = 0;
        int k, rc;

        k = repository_statement(r, SQL_INSTANCES_OF_JOB, &s);
        if (k < 0)
                return k;
        bind_text(s, 1, job_name);
        db_bind_int64(s, 2, (int64_t) MIN(offset, (size_t) INT64_MAX));
        db_bind_int64(s, 3, page_limit(limit));
        while ((rc = db_step(s)) == DB_ROW) {
                JobInstance *na = reallocarray(a, n + 1, sizeof(JobInstance));

                if (!na) {
                        job_instance_array_free(a, n);
                        return -ENOMEM;
                }
                a = na;
                a[n] = (JobInstance) {};
                k = instance_from_row(s, a + n++);
                if (k < 0) {
                        job_instance_array_free(a, n);
                        return k;
                }
        }
        if (rc != DB_DONE) {
                job_instance_array_free(a, n);
                return rc;
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

int repository_get_job_instance_count(Repository *r, const char *job_name, uint64_t *ret) {
        _cleanup_db_reset_ DbStatement *s = NULL;
        int k, rc;

        k = repository_statement(r, SQL_INSTANCE_COUNT, &s);
        if (k < 0)
                return k;
        bind_text(s, 1, job_name);
        rc = db_step(s);
        if (rc != DB_ROW)
                return rc < 0 ? rc : -EIO;     /* an aggregate always has its row */
        *ret = (uint64_t) db_column_int64(s, 0);
        return 0;
}

static int execution_load_details(Repository *r, JobExecution *e) {
        int k;

        k = params_load(r, e->id, &e->parameters);
        if (k < 0)
                return k;
        return context_load(r, SQL_GET_JOB_CONTEXT, e->id, &e->context);
}

int repository_get_execution_summary(Repository *r, int64_t id, JobExecution **ret, sd_bus_error *error) {
        _cleanup_db_reset_ DbStatement *s = NULL;
        int rc;

        PREPARE(r, SQL_GET_EXECUTION, s, error);
        db_bind_int64(s, 1, id);
        rc = db_step(s);
        if (rc == DB_DONE)
                return sd_bus_error_setf(error, BATCH_ERROR_NO_SUCH_JOB_EXECUTION,
                                         "No JobExecution found for id: [%" PRIi64 "]", id), -ENXIO;
        if (rc != DB_ROW)
                return repository_error(r, rc, error, "read the job execution");
        return execution_from_row(r, s, ret);
}

int repository_get_execution(Repository *r, int64_t id, JobExecution **ret, sd_bus_error *error) {
        _cleanup_(job_execution_freep) JobExecution *e = NULL;
        int k;

        k = repository_get_execution_summary(r, id, &e, error);
        if (k < 0)
                return k;

        k = execution_load_details(r, e);
        if (k == CONTEXT_UNREADABLE)
                return sd_bus_error_setf(error, BATCH_ERROR_DATABASE, "The execution context of job execution %"
                                         PRIi64 " cannot be read; batchd's log says why.", id), k;
        if (k < 0)
                return k == -ENOMEM ? k : repository_error(r, k, error,
                                                           "read the job execution's parameters");
        *ret = TAKE_PTR(e);
        return 0;
}

static int executions_collect(Repository *r, DbStatement *s, bool details, JobExecution ***ret, size_t *ret_n) {
        JobExecution **a = NULL;
        size_t n = 0;
        int k, rc;

        while ((rc = db_step(s)) == DB_ROW) {
                JobExecution **na = reallocarray(a, n + 1, sizeof(JobExecution *));

                if (!na) {
                        job_execution_array_free(a, n);
                        return -ENOMEM;
                }
                a = na;
                k = execution_from_row(r, s, a + n);
                if (k < 0) {
                        job_execution_array_free(a, n);
                        return k;
                }
                n++;
        }
        db_reset(s);
        if (rc != DB_DONE) {
                job_execution_array_free(a, n);
                return rc;
        }
        for (size_t i = 0; details && i < n; i++) {
                k = execution_load_details(r, a[i]);
                if (k < 0) {
                        job_execution_array_free(a, n);
                        return k;
                }
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

int repository_list_executions(Repository *r, const char *job_name, int64_t instance_id, size_t offset, size_t limit,
                               JobExecution ***ret, size_t *ret_n) {
        _cleanup_db_reset_ DbStatement *s = NULL;
        int k;

        /* The newest execution of a job (`batchctl status` asks for it for every job) is kept by triggers: two
         * primary-key lookups, where the page query walks every instance of the job. */
        if (job_name && instance_id == 0 && offset == 0 && limit == 1) {
                JobExecution *e = NULL, **a;

                k = repository_get_last_execution_of_job(r, job_name, &e);
                if (k < 0)
                        return k;
                if (!e) {
                        *ret = NULL;
                        *ret_n = 0;
                        return 0;
                }
                a = calloc(1, sizeof(JobExecution *));
                if (!a) {
                        job_execution_free(e);
                        return -ENOMEM;
                }
                a[0] = e;
                *ret = a;
                *ret_n = 1;
                return 0;
        }

        k = repository_statement(r, instance_id != 0 ? SQL_LIST_EXECUTIONS_OF_INSTANCE :
                               job_name ? SQL_LIST_EXECUTIONS_OF_JOB : SQL_LIST_EXECUTIONS, &s);
        if (k < 0)
                return k;
        if (job_name)
                bind_text(s, 1, job_name);
        if (instance_id != 0)
                db_bind_int64(s, 2, instance_id);
        db_bind_int64(s, 3, (int64_t) MIN(offset, (size_t) INT64_MAX));
        db_bind_int64(s, 4, page_limit(limit));
        return executions_collect(r, s, false, ret, ret_n);
}

int repository_get_last_execution_of_job(Repository *r, const char *job_name, JobExecution **ret) {
        _cleanup_db_reset_ DbStatement *s = NULL;
        int k, rc;

        assert(r);
        assert(job_name);
        assert(ret);

        k = repository_statement(r, SQL_LAST_EXECUTION_OF_JOB, &s);
        if (k < 0)
                return k;
        bind_text(s, 1, job_name);
        rc = db_step(s);
        if (rc == DB_DONE) {
                *ret = NULL;
                return 0;
        }
        if (rc != DB_ROW)
                return rc;
        return execution_from_row(r, s, ret);
}

int repository_get_last_execution(Repository *r, const char *job_name, const JobParameters *params,
                                  JobExecution **ret) {
        _cleanup_db_reset_ DbStatement *find = NULL, *last = NULL;
        int64_t instance_id, id;
        char key[33];
        int k, rc;

        k = job_parameters_job_key(params, key);
        if (k < 0)
                return k;
        k = repository_statement(r, SQL_FIND_INSTANCE, &find);
        if (k < 0)
                return k;
        bind_text(find, 1, job_name);
        bind_text(find, 2, key);
        rc = db_step(find);
        if (rc == DB_DONE) {
                *ret = NULL;
                return 0;
        }
        if (rc != DB_ROW)
                return rc;
        instance_id = db_column_int64(find, 0);

        k = repository_statement(r, SQL_LAST_EXECUTION_OF_INSTANCE, &last);
        if (k < 0)
                return k;
        db_bind_int64(last, 1, instance_id);
        rc = db_step(last);
        if (rc != DB_ROW)
                return rc < 0 ? rc : -EIO;     /* an aggregate always has its row */
        id = db_column_int64(last, 0);
        if (id == 0) {
                *ret = NULL;
                return 0;
        }
        return repository_get_execution(r, id, ret, NULL);
}

/* limit -1: all of them, for reconciliation at start-up, before anything is served. */
static int running_executions(Repository *r, const char *job_name, int64_t limit, JobExecution ***ret, size_t *ret_n) {
        _cleanup_db_reset_ DbStatement *s = NULL;
        int k;

        k = repository_statement(r, SQL_RUNNING_EXECUTIONS, &s);
        if (k < 0)
                return k;
        if (job_name)
                bind_text(s, 1, job_name);
        db_bind_int64(s, 2, limit);
        return executions_collect(r, s, false, ret, ret_n);
}

int repository_get_running_executions(Repository *r, const char *job_name, JobExecution ***ret, size_t *ret_n) {
        return running_executions(r, job_name, REPOSITORY_PAGE_MAX, ret, ret_n);
}

int repository_get_step_executions(Repository *r, int64_t job_execution_id, StepExecution ***ret, size_t *ret_n) {
        _cleanup_db_reset_ DbStatement *s = NULL;
        StepExecution **a = NULL;
        size_t n = 0;
        int k, rc;

        k = repository_statement(r, SQL_GET_STEPS, &s);
        if (k < 0)
                return k;
        db_bind_int64(s, 1, job_execution_id);
        while ((rc = db_step(s)) == DB_ROW) {
                StepExecution **na = reallocarray(a, n + 1, sizeof(StepExecution *));

                if (!na) {
                        step_execution_array_free(a, n);
                        return -ENOMEM;
                }
                a = na;
                k = step_from_row(r, s, a + n);
                if (k < 0) {
                        step_execution_array_free(a, n);
                        return k;
                }
                n++;
        }
        if (rc != DB_DONE) {
                step_execution_array_free(a, n);
                return rc;
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

/* ---- operations ---- */

int repository_next_run_id(Repository *r, const char *job_name, int64_t *ret, sd_bus_error *error) {
        _cleanup_db_reset_ DbStatement *s = NULL;
        int64_t max = 0;
        int k, rc;

        assert(r);
        assert(job_name);
        assert(ret);

        k = repository_statement(r, SQL_MAX_RUN_ID, &s);
        if (k < 0)
                return repository_error(r, k, error, "read the last run.id");
        bind_text(s, 1, job_name);
        rc = db_step(s);
        if (rc != DB_ROW)
                return repository_error(r, rc < 0 ? rc : -EIO, error, "read the last run.id");
        if (!db_column_is_null(s, 0))
                max = db_column_int64(s, 0);
        if (max == INT64_MAX)
                return sd_bus_error_set(error, BATCH_ERROR_JOB_PARAMETERS_INVALID,
                                        "Invalid value for parameter run.id"), -EOVERFLOW;

        *ret = MAX(max, (int64_t) 0) + 1;
        return 0;
}

int repository_next_parameters(Repository *r, const char *job_name, const JobParameters *overrides,
                               JobParameters *ret, sd_bus_error *error) {
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        JobInstance *instances = NULL;
        size_t n = 0;
        int64_t run_id;
        char buf[32];
        int k;

        k = repository_get_job_instances(r, job_name, 0, 1, &instances, &n);
        if (k < 0)
                return repository_error(r, k, error, "read the last job instance");
        if (n > 0) {
                JobExecution **executions = NULL;
                size_t m = 0;

                k = repository_list_executions(r, NULL, instances[0].id, 0, 1, &executions, &m);
                job_instance_array_free(instances, n);
                if (k < 0)
                        return repository_error(r, k, error, "read the last job execution");
                if (m > 0) {
                        _cleanup_(job_execution_freep) JobExecution *last = NULL;

                        /* Lists carry summaries; the parameters come with the single execution. */
                        k = repository_get_execution(r, executions[0]->id, &last, error);
                        job_execution_array_free(executions, m);
                        if (k < 0)
                                return k;
                        k = job_parameters_copy(&last->parameters, &p);
                        if (k < 0)
                                return k;
                } else
                        free(executions);
        }

        /* RunIdIncrementer, made robust: Spring adds 1 to the last instance's run.id, which goes back to 1
         * after any launch without one (a plain Start) and then restarts an old instance. The highest
         * run.id of all the job's instances + 1 is always a new instance. */
        k = repository_next_run_id(r, job_name, &run_id, error);
        if (k < 0)
                return k;
        (void) snprintf(buf, sizeof(buf), "%" PRIi64, run_id);
        k = job_parameters_add(&p, "run.id", JOB_PARAMETER_LONG, buf, true, NULL);
        if (k < 0)
                return k;

        for (size_t i = 0; overrides && i < overrides->n; i++) {
                const JobParameter *x = overrides->items + i;
                _cleanup_free_ char *msg = NULL;

                k = job_parameters_add(&p, x->name, x->type, x->value, x->identifying, &msg);
                if (k < 0)
                        return sd_bus_error_set(error, BATCH_ERROR_JOB_PARAMETERS_INVALID, msg), k;
        }

        *ret = p;
        p = JOB_PARAMETERS_NULL;
        return 0;
}

int repository_abandon_execution(Repository *r, int64_t id, sd_bus_error *error) {
        _cleanup_(job_execution_freep) JobExecution *e = NULL;
        int k;

        k = repository_get_execution(r, id, &e, error);
        if (k < 0)
                return k;
        /* SimpleJobOperator.abandon(): STARTING, STARTED and COMPLETED are below STOPPING and stay as they are. */
        if (e->status < BATCH_STATUS_STOPPING)
                return sd_bus_error_set(error, BATCH_ERROR_JOB_EXECUTION_ALREADY_RUNNING,
                                        "JobExecution is running or complete and therefore cannot be aborted"),
                       -EBUSY;
        e->status = batch_status_upgrade(e->status, BATCH_STATUS_ABANDONED);
        if (e->end_time == 0)
                e->end_time = now_usec(CLOCK_REALTIME);
        return repository_update_execution(r, e, error);
}

int repository_fail_running_executions(Repository *r, const char *message, int64_t **ret_ids, size_t *ret_n) {
        _cleanup_transaction_ Repository *tx = NULL;
        _cleanup_free_ int64_t *ids = NULL;
        JobExecution **running = NULL;
        usec_t now = now_usec(CLOCK_REALTIME);
        size_t n = 0;
        int k;

        k = repository_begin(r, NULL);
        if (k < 0)
                return k;
        tx = r;

        k = running_executions(r, NULL, -1, &running, &n);
        if (k < 0)
                return k;
        ids = calloc(MAX(n, 1u), sizeof(int64_t));
        if (!ids) {
                job_execution_array_free(running, n);
                return -ENOMEM;
        }

        for (size_t i = 0; i < n; i++) {
                JobExecution *e = running[i];
                _cleanup_db_reset_ DbStatement *s = NULL;

                k = repository_statement(r, SQL_FAIL_RUNNING_STEPS, &s);
                if (k >= 0) {
                        db_bind_int64(s, 1, e->id);
                        bind_text(s, 2, message);
                        bind_time(r, s, 3, now);
                        k = step_done(r, s, NULL, "fail running steps");
                }
                if (k >= 0) {
                        e->status = BATCH_STATUS_FAILED;
                        free(e->exit_code);
                        free(e->exit_message);
                        e->exit_code = strdup(EXIT_CODE_FAILED);
                        e->exit_message = strdup(message);
                        if (!e->exit_code || !e->exit_message)
                                k = -ENOMEM;
                        if (e->end_time == 0)
                                e->end_time = now;
                }
                if (k >= 0)
                        k = execution_write(r, e, now, NULL);
                if (k < 0) {
                        job_execution_array_free(running, n);
                        return k;
                }
                ids[i] = e->id;
        }
        job_execution_array_free(running, n);

        k = fail_orphan_steps(r, 0, now, NULL);
        if (k < 0)
                return k;

        k = repository_commit(r, NULL);
        if (k < 0)
                return k;
        tx = NULL;

        if (ret_ids)
                *ret_ids = TAKE_PTR(ids);
        if (ret_n)
                *ret_n = n;
        return 0;
}
