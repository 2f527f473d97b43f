/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "batch-error.h"
#include "repository.h"
#include "repository-internal.h"   /* _SQL_MAX, to count the statements */
#include "schedule-store.h"
#include "schema.h"
#include "tests.h"

/* ---- a tiny SimpleJob, so the seed scenarios run against the repository the way the daemon drives it ---- */

typedef struct TestStep {
        const char *name;
        bool fail;                      /* the step "throws" */
        bool allow_start_if_complete;
        uint64_t start_limit;
} TestStep;

static int run_job(Repository *r, const char *job, const JobParameters *params, const TestStep *steps, size_t n,
                   JobExecution **ret, sd_bus_error *error) {
        _cleanup_(job_execution_freep) JobExecution *e = NULL;
        bool any = false;
        int k;

        k = repository_create_execution(r, job, params, 0, &e, error);
        if (k < 0)
                return k;

        e->status = BATCH_STATUS_STARTED;
        e->start_time = now_usec(CLOCK_REALTIME);
        assert_int_equal(repository_update_execution(r, e, NULL), 0);

        for (size_t i = 0; i < n; i++) {
                _cleanup_(step_execution_freep) StepExecution *last = NULL, *s = NULL;

                k = repository_should_start_step(r, e, steps[i].name, steps[i].allow_start_if_complete,
                                                 steps[i].start_limit, &last, error);
                if (k < 0) {
                        e->status = BATCH_STATUS_FAILED;
                        free(e->exit_code);
                        e->exit_code = strdup("FAILED");
                        break;
                }
                if (k == 0)
                        continue;

                assert_int_equal(repository_add_step_execution(r, e, steps[i].name, last, &s, NULL), 0);
                any = true;
                s->status = BATCH_STATUS_STARTED;
                s->start_time = now_usec(CLOCK_REALTIME);
                assert_int_equal(repository_update_step_execution(r, s, NULL), 0);

                s->status = steps[i].fail ? BATCH_STATUS_FAILED : BATCH_STATUS_COMPLETED;
                free(s->exit_code);
                s->exit_code = strdup(steps[i].fail ? "FAILED" : "COMPLETED");
                s->end_time = now_usec(CLOCK_REALTIME);
                assert_int_equal(repository_update_step_execution(r, s, NULL), 0);

                e->status = s->status;
                free(e->exit_code);
                e->exit_code = strdup(s->exit_code);
                if (steps[i].fail)
                        break;
        }

        if (!any && e->status != BATCH_STATUS_FAILED) {
                e->status = BATCH_STATUS_COMPLETED;
                free(e->exit_code);
                free(e->exit_message);
                e->exit_code = strdup("NOOP");
                e->exit_message = strdup("All steps already completed or no steps configured for this job.");
        }
        e->end_time = now_usec(CLOCK_REALTIME);
        assert_int_equal(repository_update_execution(r, e, NULL), 0);

        if (ret)
                *ret = TAKE_PTR(e);
        return 0;
}

/* The suite runs once per backend: on SQLite (files and ":memory:") and on the PostgreSQL of
 * $BATCHD_TEST_POSTGRESQL (a fresh database per case). */
static DbBackend backend;

/* A cases's fresh location: a file in dir (SQLite), or a new, empty database (PostgreSQL). */
static char *test_location(const char *dir, const char *name) {
        static unsigned counter;
        char db[32];

        if (backend == DB_BACKEND_SQLITE)
                return test_path(dir, name);
        (void) snprintf(db, sizeof(db), "repo_%u", counter++);
        return test_pg_database(db);
}

/* A case that is about SQLite itself (its files, PRAGMAs, query plans) says so on PostgreSQL and returns. */
#define SQLITE_ONLY(why)                                                                                \
        do {                                                                                            \
                if (backend != DB_BACKEND_SQLITE) {                                                     \
                        print_message("SKIP on PostgreSQL (SQLite only): %s\n", why);                   \
                        return;                                                                         \
                }                                                                                       \
        } while (0)
#define POSTGRESQL_ONLY(why)                                                                            \
        do {                                                                                            \
                if (backend != DB_BACKEND_POSTGRESQL) {                                                 \
                        print_message("SKIP on SQLite (PostgreSQL only): %s\n", why);                   \
                        return;                                                                         \
                }                                                                                       \
        } while (0)

static Repository *open_memory(void) {
        _cleanup_free_ char *location = NULL;
        Repository *r = NULL;

        if (backend == DB_BACKEND_POSTGRESQL)
                location = test_location(NULL, NULL);
        assert_int_equal(repository_open(location ?: REPOSITORY_MEMORY, 0, &r, NULL), 0);
        return r;
}

static void params_add(JobParameters *p, const char *arg) {
        _cleanup_free_ char *msg = NULL;

        if (job_parameters_parse_argument(p, arg, &msg) < 0)
                fail_msg("parameter '%s': %s", arg, strna(msg));
}

/* The number a query's first column yields, through the same database handle the repository wrote with. */
static int64_t query_int(const char *path, const char *sql) {
        sqlite3 *db = NULL;
        sqlite3_stmt *s = NULL;
        int64_t v = -1;

        if (backend == DB_BACKEND_POSTGRESQL)
                return test_query_int(path, sql);

        assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
        if (sqlite3_step(s) == SQLITE_ROW)
                v = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        sqlite3_close(db);
        return v;
}

static char *query_text(const char *path, const char *sql) {
        sqlite3 *db = NULL;
        sqlite3_stmt *s = NULL;
        char *v = NULL;

        if (backend == DB_BACKEND_POSTGRESQL)
                return test_query_text(path, sql);

        assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
        if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
                v = strdup((const char *) sqlite3_column_text(s, 0));
        sqlite3_finalize(s);
        sqlite3_close(db);
        return v;
}

static void test_open_creates_schema(void **state) {
        SQLITE_ONLY("sqlite_master, WAL (test_pg_open_creates_schema is its PostgreSQL form)");

        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_location(dir, "batch.db");
        _cleanup_(repository_freep) Repository *r = NULL;
        _cleanup_free_ char *mode = NULL;

        assert_int_equal(repository_open(path, 0, &r, NULL), 0);
        assert_int_equal(repository_schema_version(r), (int) schema_migrations_count);
        r = repository_free(r);

        /* Spring's tables, our indexes, WAL. Reopening applies nothing twice. */
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name LIKE 'BATCH\\_%' ESCAPE '\\'"), 9);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name LIKE 'BATCHD\\_%' ESCAPE '\\'"), 8);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'BATCH\\_%\\_IDX' ESCAPE '\\'"), 5);
        mode = query_text(path, "PRAGMA journal_mode");
        assert_string_equal(mode, "wal");
        assert_int_equal(repository_open(path, 0, &r, NULL), 0);
        assert_int_equal(repository_schema_version(r), (int) schema_migrations_count);
}

/* Seed 002: step2 fails → FAILED; the same parameters again → a new execution of the same instance; it succeeds
 * → COMPLETED; a third run is refused with Spring's message. */
static void test_seed_002(void **state) {
        _cleanup_(repository_freep) Repository *r = open_memory();
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        _cleanup_(job_execution_freep) JobExecution *e1 = NULL, *e2 = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        StepExecution **steps = NULL;
        size_t n = 0;
        TestStep failing[] = { { "step1" }, { "step2", .fail = true } };
        TestStep fixed[] = { { "step1" }, { "step2" } };

        params_add(&p, "name=testuser");

        assert_int_equal(run_job(r, "job", &p, failing, 2, &e1, NULL), 0);
        assert_int_equal(e1->status, BATCH_STATUS_FAILED);
        assert_string_equal(e1->exit_code, "FAILED");

        assert_int_equal(run_job(r, "job", &p, fixed, 2, &e2, NULL), 0);
        assert_int_equal(e2->status, BATCH_STATUS_COMPLETED);
        assert_string_equal(e2->exit_code, "COMPLETED");
        assert_true(e2->job_instance_id == e1->job_instance_id);
        assert_true(e2->id != e1->id);

        /* The restart skipped the completed step1 and re-ran step2 only. */
        assert_int_equal(repository_get_step_executions(r, e2->id, &steps, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(steps[0]->step_name, "step2");
        step_execution_array_free(steps, n);

        assert_int_equal(run_job(r, "job", &p, fixed, 2, NULL, &error), -EALREADY);
        assert_string_equal(error.name, BATCH_ERROR_JOB_INSTANCE_ALREADY_COMPLETE);
        assert_string_equal(error.message,
                            "A job instance already exists and is complete for identifying parameters="
                            "{'name':'{value=testuser, type=class java.lang.String, identifying=true}'}.  "
                            "If you want to run this job again, change the parameters.");
}

/* Seed 003: user1 succeeds; user2 fails, then succeeds: two instances, three executions, three parameter sets. */
static void test_seed_003(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_location(dir, "batch.db");
        _cleanup_(repository_freep) Repository *r = NULL;
        _cleanup_(job_parameters_done) JobParameters u1 = JOB_PARAMETERS_NULL, u2 = JOB_PARAMETERS_NULL;
        TestStep ok[] = { { "step1" } }, bad[] = { { "step1", .fail = true } };

        assert_int_equal(repository_open(path, 0, &r, NULL), 0);
        params_add(&u1, "name=user1");
        params_add(&u2, "name=user2");

        assert_int_equal(run_job(r, "Job", &u1, ok, 1, NULL, NULL), 0);
        assert_int_equal(run_job(r, "Job", &u2, bad, 1, NULL, NULL), 0);
        assert_int_equal(run_job(r, "Job", &u2, ok, 1, NULL, NULL), 0);

        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_INSTANCE"), 2);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION"), 3);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION_PARAMS"), 3);
        assert_int_equal(query_int(path, "SELECT COUNT(DISTINCT JOB_EXECUTION_ID) FROM BATCH_JOB_EXECUTION_PARAMS"), 3);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION WHERE STATUS = 'FAILED'"), 1);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_INSTANCE WHERE JOB_KEY = "
                                         "'d4f7873ac0b56ba89fdc69ba0dca032f'"), 0); /* that key is name=testuser */
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION_PARAMS WHERE "
                                         "PARAMETER_TYPE = 'java.lang.String' AND IDENTIFYING = 'Y'"), 3);
}

/* Seed 000: the run.id incrementer makes every launch a new instance; a job without identifying parameters may run
 * again after completing, and then has nothing to do (NOOP). */
static void test_seed_000(void **state) {
        _cleanup_(repository_freep) Repository *r = open_memory();
        _cleanup_(job_parameters_done) JobParameters none = JOB_PARAMETERS_NULL;
        TestStep steps[] = { { "step1" } };
        JobInstance *instances = NULL;
        size_t n = 0;

        for (int64_t i = 1; i <= 3; i++) {
                _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
                _cleanup_(job_execution_freep) JobExecution *e = NULL;
                const JobParameter *id;

                assert_int_equal(repository_next_parameters(r, "importUserJob", NULL, &p, NULL), 0);
                id = job_parameters_get(&p, "run.id");
                assert_non_null(id);
                assert_int_equal(id->type, JOB_PARAMETER_LONG);
                assert_true(id->identifying);
                assert_int_equal(id->long_value, i);
                assert_int_equal(run_job(r, "importUserJob", &p, steps, 1, &e, NULL), 0);
                assert_int_equal(e->status, BATCH_STATUS_COMPLETED);
        }
        assert_int_equal(repository_get_job_instances(r, "importUserJob", 0, 0, &instances, &n), 0);
        assert_int_equal(n, 3);
        /* newest first */
        assert_true(instances[0].id > instances[1].id && instances[1].id > instances[2].id);
        assert_string_equal(instances[2].job_key, "947cce338b790a4bb6cf8425e98bcf94");
        job_instance_array_free(instances, n);

        /* No identifying parameters: the completed instance runs again, every step is skipped → NOOP. */
        {
                _cleanup_(job_execution_freep) JobExecution *a = NULL, *b = NULL;

                assert_int_equal(run_job(r, "noParams", &none, steps, 1, &a, NULL), 0);
                assert_string_equal(a->exit_code, "COMPLETED");
                assert_int_equal(run_job(r, "noParams", &none, steps, 1, &b, NULL), 0);
                assert_true(a->job_instance_id == b->job_instance_id);
                assert_int_equal(b->status, BATCH_STATUS_COMPLETED);
                assert_string_equal(b->exit_code, "NOOP");
                assert_string_equal(b->exit_message, "All steps already completed or no steps configured for this job.");
        }
}

static void test_next_parameters_keeps_last_and_overrides(void **state) {
        _cleanup_(repository_freep) Repository *r = open_memory();
        _cleanup_(job_parameters_done) JobParameters first = JOB_PARAMETERS_NULL, next = JOB_PARAMETERS_NULL,
                                                     over = JOB_PARAMETERS_NULL;
        TestStep steps[] = { { "s" } };

        params_add(&first, "run.id(long)=41");
        params_add(&first, "region=eu");
        assert_int_equal(run_job(r, "j", &first, steps, 1, NULL, NULL), 0);

        params_add(&over, "region=us");
        assert_int_equal(repository_next_parameters(r, "j", &over, &next, NULL), 0);
        assert_string_equal(job_parameters_get(&next, "run.id")->value, "42");
        assert_string_equal(job_parameters_get(&next, "region")->value, "us");
}

/* A launch without run.id (a plain Start, or a Spring application sharing the tables) must not send the
 * incrementer back to run.id=1, which would restart that old failed instance. */
static void test_next_run_id_is_max_over_instances(void **state) {
        _cleanup_(repository_freep) Repository *r = open_memory();
        _cleanup_(job_parameters_done) JobParameters one = JOB_PARAMETERS_NULL, two = JOB_PARAMETERS_NULL,
                                                     none = JOB_PARAMETERS_NULL, next = JOB_PARAMETERS_NULL;
        TestStep failing[] = { { "s", .fail = true } }, ok[] = { { "s" } };
        int64_t run_id = 0;

        assert_int_equal(repository_next_run_id(r, "j", &run_id, NULL), 0);
        assert_int_equal(run_id, 1);

        params_add(&one, "run.id(long)=1");
        params_add(&two, "run.id(long)=2");
        params_add(&none, "region=eu");
        assert_int_equal(run_job(r, "j", &one, failing, 1, NULL, NULL), 0);
        assert_int_equal(run_job(r, "j", &two, ok, 1, NULL, NULL), 0);
        assert_int_equal(run_job(r, "j", &none, ok, 1, NULL, NULL), 0);
        /* another job's run.ids do not count */
        params_add(&one, "run.id(long)=7");
        assert_int_equal(run_job(r, "other", &one, ok, 1, NULL, NULL), 0);

        assert_int_equal(repository_next_run_id(r, "j", &run_id, NULL), 0);
        assert_int_equal(run_id, 3);
        assert_int_equal(repository_next_parameters(r, "j", NULL, &next, NULL), 0);
        assert_string_equal(job_parameters_get(&next, "run.id")->value, "3");
        /* the base is still the last instance's parameters, as Spring's */
        assert_string_equal(job_parameters_get(&next, "region")->value, "eu");

        /* More than 1000 higher run.ids of another job: the query's fallback path, still exact. */
        {
                _cleanup_(repository_transaction_done) RepositoryTransaction tx = {};

                assert_int_equal(repository_transaction_open(r, &tx, NULL), 0);
                for (int i = 0; i < 1001; i++) {
                        _cleanup_(job_parameters_done) JobParameters q = JOB_PARAMETERS_NULL;
                        _cleanup_(job_execution_freep) JobExecution *e = NULL;
                        char arg[64];

                        (void) snprintf(arg, sizeof(arg), "run.id(long)=%d", 100000 + i);
                        params_add(&q, arg);
                        assert_int_equal(repository_create_execution(r, "busy", &q, 0, &e, NULL), 0);
                }
                assert_int_equal(repository_transaction_commit(&tx, NULL), 0);
        }
        assert_int_equal(repository_next_run_id(r, "j", &run_id, NULL), 0);
        assert_int_equal(run_id, 3);
        assert_int_equal(repository_next_run_id(r, "busy", &run_id, NULL), 0);
        assert_int_equal(run_id, 101001);
        assert_int_equal(repository_next_run_id(r, "never-ran", &run_id, NULL), 0);
        assert_int_equal(run_id, 1);
}

static void test_already_running(void **state) {
        _cleanup_(repository_freep) Repository *r = open_memory();
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL, *again = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        params_add(&p, "day(date)=2026-11-21");
        assert_int_equal(repository_create_execution(r, "settlement", &p, 0, &e, NULL), 0);
        assert_int_equal(e->status, BATCH_STATUS_STARTING);
        assert_string_equal(e->exit_code, "UNKNOWN");
        assert_int_equal(e->version, 0);

        assert_int_equal(repository_create_execution(r, "settlement", &p, 0, &again, &error), -EBUSY);
        assert_string_equal(error.name, BATCH_ERROR_JOB_EXECUTION_ALREADY_RUNNING);
        assert_non_null(strstr(error.message, "A job execution for this job is already running: JobInstance: id="));
        assert_non_null(strstr(error.message, "Job=[settlement]"));
        assert_null(again);
}

static void test_unknown_and_not_restartable(void **state) {
        _cleanup_(repository_freep) Repository *r = open_memory();
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL, *x = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL, error2 = SD_BUS_ERROR_NULL;

        params_add(&p, "a=1");
        assert_int_equal(repository_create_execution(r, "j", &p, 0, &e, NULL), 0);
        e->status = BATCH_STATUS_UNKNOWN;
        assert_int_equal(repository_update_execution(r, e, NULL), 0);

        assert_int_equal(repository_create_execution(r, "j", &p, 0, &x, &error), -ENOTRECOVERABLE);
        assert_string_equal(error.name, BATCH_ERROR_JOB_RESTART);
        assert_string_equal(error.message, "Cannot restart job from UNKNOWN status. The last execution ended with a "
                                           "failure that could not be rolled back, so it may be dangerous to proceed. "
                                           "Manual intervention is probably necessary.");

        assert_int_equal(repository_create_execution(r, "j", &p, LAUNCH_NOT_RESTARTABLE, &x, &error2),
                         -ENOTRECOVERABLE);
        assert_string_equal(error2.message, "JobInstance already exists and is not restartable");
}

static void test_abandon(void **state) {
        _cleanup_(repository_freep) Repository *r = open_memory();
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL, *x = NULL, *y = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e1 = SD_BUS_ERROR_NULL, e2 = SD_BUS_ERROR_NULL,
                                                  e3 = SD_BUS_ERROR_NULL;
        TestStep bad[] = { { "s", .fail = true } };

        params_add(&p, "a=1");
        assert_int_equal(repository_create_execution(r, "j", &p, 0, &e, NULL), 0);
        assert_int_equal(repository_abandon_execution(r, e->id, &e1), -EBUSY);
        assert_string_equal(e1.message, "JobExecution is running or complete and therefore cannot be aborted");
        e->status = BATCH_STATUS_FAILED;
        assert_int_equal(repository_update_execution(r, e, NULL), 0);
        assert_int_equal(repository_abandon_execution(r, e->id, NULL), 0);
        assert_int_equal(repository_get_execution(r, e->id, &x, NULL), 0);
        assert_int_equal(x->status, BATCH_STATUS_ABANDONED);
        assert_true(x->end_time > 0);

        /* An abandoned instance with identifying parameters never runs again. */
        assert_int_equal(run_job(r, "j", &p, bad, 1, NULL, &e2), -EALREADY);
        assert_string_equal(e2.name, BATCH_ERROR_JOB_INSTANCE_ALREADY_COMPLETE);

        assert_int_equal(repository_abandon_execution(r, 999, &e3), -ENXIO);
        assert_string_equal(e3.name, BATCH_ERROR_NO_SUCH_JOB_EXECUTION);
        assert_null(y);
}

/* Seed 004 at the repository level: a chunk step commits current.index=2, fails at C; the restart resumes with that
 * context, and completed steps before it are skipped. */
static void test_step_restart_with_context(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_location(dir, "batch.db"), *ctx = NULL;
        _cleanup_(repository_freep) Repository *r = NULL;
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL, *e2 = NULL;
        _cleanup_(step_execution_freep) StepExecution *last = NULL, *s = NULL, *last2 = NULL, *s2 = NULL,
                                                      *prep_last = NULL;
        _cleanup_free_ char *index = NULL, *jobvalue = NULL;
        StepContribution chunk = { .read_count = 2, .write_count = 2 };

        assert_int_equal(repository_open(path, 0, &r, NULL), 0);
        params_add(&p, "targetDate(date)=2024-01-15");

        assert_int_equal(repository_create_execution(r, "transferNewUserJob", &p, 0, &e, NULL), 0);
        assert_int_equal(repository_should_start_step(r, e, "transferNewUserStep", false, 0, &last, NULL), 1);
        assert_null(last);
        assert_int_equal(repository_add_step_execution(r, e, "transferNewUserStep", NULL, &s, NULL), 0);
        assert_int_equal(s->status, BATCH_STATUS_STARTING);
        assert_string_equal(s->exit_code, "EXECUTING");

        /* chunk A,B committed */
        assert_int_equal(execution_context_put_int64(s->context, "current.index", 2), 0);
        assert_int_equal(execution_context_put_string(e->context, "job.note", "half way"), 0);
        assert_int_equal(repository_commit_step(r, s, &chunk, e, NULL), 0);
        assert_int_equal(s->commit_count, 1);
        assert_int_equal(s->read_count, 2);
        assert_int_equal(s->write_count, 2);

        /* C fails: counters of the failed chunk are not committed */
        s->status = BATCH_STATUS_FAILED;
        free(s->exit_code);
        s->exit_code = strdup("FAILED");
        s->end_time = now_usec(CLOCK_REALTIME);
        assert_int_equal(repository_update_step_execution(r, s, NULL), 0);
        e->status = BATCH_STATUS_FAILED;
        assert_int_equal(repository_update_execution(r, e, NULL), 0);

        assert_int_equal(query_int(path, "SELECT COMMIT_COUNT FROM BATCH_STEP_EXECUTION"), 1);
        ctx = query_text(path, "SELECT SHORT_CONTEXT FROM BATCH_STEP_EXECUTION_CONTEXT");
        assert_string_equal(ctx, "{\"current.index\":2}");
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION_CONTEXT WHERE "
                                         "SHORT_CONTEXT LIKE '%half way%'"), 1);

        /* restart: new execution of the same instance, job context carried over, step context restored */
        assert_int_equal(repository_create_execution(r, "transferNewUserJob", &p, 0, &e2, NULL), 0);
        assert_true(e2->job_instance_id == e->job_instance_id);
        assert_int_equal(execution_context_get_string(e2->context, "job.note", &jobvalue), 0);
        assert_string_equal(jobvalue, "half way");
        assert_int_equal(repository_should_start_step(r, e2, "transferNewUserStep", false, 0, &last2, NULL), 1);
        assert_non_null(last2);
        assert_int_equal(last2->status, BATCH_STATUS_FAILED);
        assert_int_equal(repository_add_step_execution(r, e2, "transferNewUserStep", last2, &s2, NULL), 0);
        assert_int_equal(execution_context_get_string(s2->context, "current.index", &index), 0);
        assert_string_equal(index, "2");
        assert_int_equal(s2->commit_count, 0);

        /* a step name that never ran in this instance starts fresh */
        assert_int_equal(repository_should_start_step(r, e2, "other", false, 0, &prep_last, NULL), 1);
        assert_null(prep_last);
}

/* Another process (an operator's sqlite3 shell, a Spring Batch application) writes through its own handle. */
static void exec_sql(const char *path, const char *sql) {
        sqlite3 *db = NULL;

        if (backend == DB_BACKEND_POSTGRESQL) {
                test_exec(path, sql);
                return;
        }
        assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
}

/* In the autumn DST hour local wall-clock times repeat: a later step execution can be stored with an equal or
 * an earlier CREATE_TIME than the one before it. "Last" must mean the highest id, never the latest text. */
static void test_last_step_is_newest_by_id(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_location(dir, "batch.db");
        _cleanup_(repository_freep) Repository *r = NULL;
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL;
        TestStep failing[] = { { "s", .fail = true } };
        int64_t newest;

        assert_int_equal(repository_open(path, 0, &r, NULL), 0);
        params_add(&p, "day(date)=2026-10-25");
        assert_int_equal(run_job(r, "j", &p, failing, 1, NULL, NULL), 0);
        assert_int_equal(run_job(r, "j", &p, failing, 1, NULL, NULL), 0);
        newest = query_int(path, "SELECT MAX(STEP_EXECUTION_ID) FROM BATCH_STEP_EXECUTION");
        assert_true(newest > 0);

        for (unsigned i = 0; i < 2; i++) {
                _cleanup_(step_execution_freep) StepExecution *last = NULL;

                /* equal, then inverted (the second attempt at 02:10 of the repeated hour, the first at 02:50) */
                exec_sql(path, i == 0 ?
                         "UPDATE BATCH_STEP_EXECUTION SET CREATE_TIME = '2026-10-25 02:30:00.000000'" :
                         "UPDATE BATCH_STEP_EXECUTION SET CREATE_TIME = '2026-10-25 02:50:00.000000'; "
                         "UPDATE BATCH_STEP_EXECUTION SET CREATE_TIME = '2026-10-25 02:10:00.000000' "
                         "WHERE STEP_EXECUTION_ID = (SELECT MAX(STEP_EXECUTION_ID) FROM BATCH_STEP_EXECUTION)");
                assert_int_equal(repository_get_last_step_execution(r, 1, "s", &last), 0);
                assert_non_null(last);
                assert_int_equal(last->id, newest);
        }

        /* and the restart (a third execution of the instance) resumes from that newest one */
        {
                _cleanup_(step_execution_freep) StepExecution *last = NULL;

                assert_int_equal(repository_create_execution(r, "j", &p, 0, &e, NULL), 0);
                assert_int_equal(repository_should_start_step(r, e, "s", false, 0, &last, NULL), 1);
                assert_non_null(last);
                assert_int_equal(last->id, newest);
        }
}

/* batchd.conf's timestamps: every table of one database is written and read in the zone it says. */
static void test_timestamps_zone(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_location(dir, "batch.db"), *created = NULL, *fired = NULL;
        _cleanup_free_ char *old_tz = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL, *back = NULL;
        char utc[TIMESTAMP_MAX], local[TIMESTAMP_MAX];
        /* 2026-10-25 00:30:00 UTC: 02:30 in Berlin, inside the hour the autumn change repeats */
        const usec_t t = 1792888200 * USEC_PER_SEC + 250000;
        usec_t fire = 0;

        /* A zone far from UTC, so that local and UTC text differ. */
        assert_int_equal(setenv("TZ", "Europe/Berlin", 1), 0);
        tzset();
        assert_non_null(timestamp_format_zone(t, true, utc));
        assert_non_null(timestamp_format_zone(t, false, local));
        assert_string_equal(utc, "2026-10-25 00:30:00.250000");
        assert_string_not_equal(utc, local);

        for (unsigned i = 0; i < 2; i++) {
                _cleanup_(repository_freep) Repository *r = NULL;
                bool as_utc = i == 1;

                if (backend == DB_BACKEND_POSTGRESQL) {
                        free(path);
                        path = test_location(dir, "batch.db");
                }
                assert_int_equal(unlink(path) < 0 && errno != ENOENT, false);
                assert_int_equal(repository_open(path, as_utc ? REPOSITORY_TIMESTAMPS_UTC : 0, &r, NULL), 0);
                job_parameters_done(&p);
                params_add(&p, "x=1");
                e = job_execution_free(e);
                back = job_execution_free(back);
                assert_int_equal(repository_create_execution(r, "j", &p, 0, &e, NULL), 0);
                e->status = BATCH_STATUS_STARTED;
                e->start_time = t;
                assert_int_equal(repository_update_execution(r, e, NULL), 0);
                assert_int_equal(schedule_store_set_last_fire(r, "j", t, e->id), 0);

                created = mfree(created);
                fired = mfree(fired);
                /* PostgreSQL's TIMESTAMP columns print without trailing zeros; the value is the same. */
                created = query_text(path, backend == DB_BACKEND_SQLITE ?
                                     "SELECT START_TIME FROM BATCH_JOB_EXECUTION" :
                                     "SELECT to_char(START_TIME, 'YYYY-MM-DD HH24:MI:SS.US') FROM BATCH_JOB_EXECUTION");
                fired = query_text(path, backend == DB_BACKEND_SQLITE ?
                                   "SELECT LAST_FIRE_TIME FROM BATCHD_JOB_SCHEDULE" :
                                   "SELECT to_char(LAST_FIRE_TIME, 'YYYY-MM-DD HH24:MI:SS.US') FROM BATCHD_JOB_SCHEDULE");
                assert_string_equal(created, as_utc ? utc : local);
                assert_string_equal(fired, as_utc ? utc : local);

                /* UTC reads back as the same instant even in the repeated hour; local text of that hour
                 * names two instants, which is why "last" is always decided by ids. */
                assert_int_equal(repository_get_execution(r, e->id, &back, NULL), 0);
                if (as_utc)
                        assert_true(back->start_time == t);
                else
                        assert_true(back->start_time == t || back->start_time == t + 3600 * USEC_PER_SEC);
                assert_int_equal(schedule_store_get_last_fire(r, "j", &fire), 0);
                assert_true(fire == t);
        }

        if (old_tz)
                assert_int_equal(setenv("TZ", old_tz, 1), 0);
        else
                assert_int_equal(unsetenv("TZ"), 0);
        tzset();
}

static void test_start_limit_and_allow_start_if_complete(void **state) {
        _cleanup_(repository_freep) Repository *r = open_memory();
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL;
        TestStep limited_fail[] = { { "s", .fail = true, .start_limit = 2 } };
        TestStep again[] = { { "always", .allow_start_if_complete = true }, { "s", .fail = true, .start_limit = 2 } };
        StepExecution **steps = NULL;
        size_t n;

        params_add(&p, "x=1");
        assert_int_equal(run_job(r, "j", &p, limited_fail, 1, NULL, NULL), 0);
        assert_int_equal(run_job(r, "j", &p, limited_fail, 1, NULL, NULL), 0);
        assert_int_equal(run_job(r, "j", &p, limited_fail, 1, &e, &error), 0);
        assert_int_equal(e->status, BATCH_STATUS_FAILED);
        assert_string_equal(error.name, BATCH_ERROR_START_LIMIT_EXCEEDED);
        assert_string_equal(error.message, "Maximum start limit exceeded for step: sStartMax: 2");

        /* allow_start_if_complete re-runs a completed step on every restart */
        {
                _cleanup_(job_parameters_done) JobParameters q = JOB_PARAMETERS_NULL;
                _cleanup_(job_execution_freep) JobExecution *a = NULL, *b = NULL;
                TestStep first[] = { { "always", .allow_start_if_complete = true }, { "s", .fail = true } };

                params_add(&q, "x=2");
                assert_int_equal(run_job(r, "j", &q, first, 2, &a, NULL), 0);
                assert_int_equal(run_job(r, "j", &q, again, 2, &b, NULL), 0);
                assert_int_equal(repository_get_step_executions(r, b->id, &steps, &n), 0);
                assert_int_equal(n, 2);
                assert_string_equal(steps[0]->step_name, "always");
                step_execution_array_free(steps, n);
        }
}

static void test_optimistic_locking(void **state) {
        _cleanup_(repository_freep) Repository *r = open_memory();
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL, *stale = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL, error2 = SD_BUS_ERROR_NULL;
        _cleanup_(step_execution_freep) StepExecution *s = NULL;
        StepExecution stale_step;

        assert_int_equal(repository_create_execution(r, "j", &p, 0, &e, NULL), 0);
        assert_int_equal(repository_get_execution(r, e->id, &stale, NULL), 0);
        e->status = BATCH_STATUS_STARTED;
        assert_int_equal(repository_update_execution(r, e, NULL), 0);
        assert_int_equal(e->version, 1);

        stale->status = BATCH_STATUS_COMPLETED;
        assert_int_equal(repository_update_execution(r, stale, &error), -ESTALE);
        assert_string_equal(error.name, BATCH_ERROR_OPTIMISTIC_LOCKING_FAILURE);
        assert_non_null(strstr(error.message, "with wrong version (0), where current version is 1"));
        assert_int_equal(stale->version, 0);

        assert_int_equal(repository_add_step_execution(r, e, "s", NULL, &s, NULL), 0);
        stale_step = *s;
        assert_int_equal(repository_update_step_execution(r, s, NULL), 0);
        assert_int_equal(repository_commit_step(r, &stale_step, NULL, NULL, &error2), -ESTALE);
        assert_string_equal(error2.name, BATCH_ERROR_OPTIMISTIC_LOCKING_FAILURE);
        /* the failed commit left the caller's counters as the database has them */
        assert_int_equal(stale_step.commit_count, 0);
}

static void test_short_context(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_location(dir, "batch.db"), *shrt = NULL, *full = NULL, *big = NULL;
        _cleanup_(repository_freep) Repository *r = NULL;
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL;
        _cleanup_(step_execution_freep) StepExecution *s = NULL;

        assert_int_equal(repository_open(path, 0, &r, NULL), 0);
        assert_int_equal(repository_create_execution(r, "j", &p, 0, &e, NULL), 0);
        assert_int_equal(repository_add_step_execution(r, e, "s", NULL, &s, NULL), 0);
        big = malloc(5001);
        memset(big, 'x', 5000);
        big[5000] = '\0';
        assert_int_equal(execution_context_put_string(s->context, "blob", big), 0);
        assert_int_equal(repository_commit_step(r, s, NULL, NULL, NULL), 0);

        shrt = query_text(path, "SELECT SHORT_CONTEXT FROM BATCH_STEP_EXECUTION_CONTEXT");
        full = query_text(path, "SELECT SERIALIZED_CONTEXT FROM BATCH_STEP_EXECUTION_CONTEXT");
        assert_int_equal(strlen(shrt), 2496);
        assert_string_equal(shrt + 2492, " ...");
        assert_true(strlen(full) > 5000);
}

static void test_queries(void **state) {
        _cleanup_(repository_freep) Repository *r = open_memory();
        _cleanup_strv_free_ char **names = NULL;
        JobExecution **list = NULL;
        JobInstance *inst = NULL;
        size_t n = 0;
        uint64_t count;
        TestStep ok[] = { { "s" } };

        for (int i = 0; i < 5; i++) {
                _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
                char arg[32];

                snprintf(arg, sizeof(arg), "n(long)=%d", i);
                params_add(&p, arg);
                assert_int_equal(run_job(r, i % 2 ? "beta" : "alpha", &p, ok, 1, NULL, NULL), 0);
        }

        assert_int_equal(repository_get_job_names(r, &names), 0);
        assert_string_equal(names[0], "alpha");
        assert_string_equal(names[1], "beta");
        assert_null(names[2]);

        assert_int_equal(repository_get_job_instance_count(r, "alpha", &count), 0);
        assert_int_equal(count, 3);
        assert_int_equal(repository_get_job_instances(r, "alpha", 1, 1, &inst, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(inst[0].id, 3); /* alpha's instances are 1, 3, 5: second newest */
        job_instance_array_free(inst, n);

        assert_int_equal(repository_list_executions(r, NULL, 0, 0, 0, &list, &n), 0);
        assert_int_equal(n, 5);
        assert_true(list[0]->id == 5 && list[4]->id == 1);
        job_execution_array_free(list, n);

        assert_int_equal(repository_list_executions(r, "beta", 0, 0, 10, &list, &n), 0);
        assert_int_equal(n, 2);
        job_execution_array_free(list, n);

        {
                _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
                _cleanup_(job_execution_freep) JobExecution *last = NULL, *running = NULL;
                JobExecution **rl = NULL;
                size_t rn;

                params_add(&p, "n(long)=2");
                assert_int_equal(repository_get_last_execution(r, "alpha", &p, &last), 0);
                assert_non_null(last);
                assert_int_equal(last->id, 3);

                assert_int_equal(repository_create_execution(r, "gamma", &p, 0, &running, NULL), 0);
                assert_int_equal(repository_get_running_executions(r, NULL, &rl, &rn), 0);
                assert_int_equal(rn, 1);
                assert_string_equal(rl[0]->job_name, "gamma");
                job_execution_array_free(rl, rn);
        }
}

typedef struct PlanCheck {
        unsigned rows, bad;
} PlanCheck;

static bool plan_scans(const char *detail, const char *const *tables) {
        const char *t = detail + strlen("SCAN ");
        size_t l;

        if (strncmp(detail, "SCAN ", strlen("SCAN ")) != 0)
                return false;
        l = strcspn(t, " ");
        for (size_t i = 0; tables[i]; i++)
                if (strlen(tables[i]) == l && strncmp(t, tables[i], l) == 0)
                        return true;
        return false;
}

static int plan_check(const char *sql, const char *detail, void *userdata) {
        /* The execution and step tables, by name and by every alias the repository's statements give them. */
        static const char *const big[] = { "BATCH_JOB_EXECUTION", "BATCH_STEP_EXECUTION", "E", "E2", "S", NULL };
        static const char *const instances[] = { "BATCH_JOB_INSTANCE", "I", "I2", NULL };
        PlanCheck *c = userdata;

        c->rows++;
        /* The one walk allowed: the unfiltered, newest-first page reads the primary key backwards and stops
         * after offset + limit rows, without sorting anything. */
        if (!strstr(sql, " WHERE ") && strstr(sql, " LIMIT ") && streq(detail, "SCAN E"))
                return 0;
        if (plan_scans(detail, big) || (plan_scans(detail, instances) && !strstr(detail, "INDEX"))) {
                fprintf(stderr, "full scan: %s\n  in: %s\n", detail, sql);
                c->bad++;
        }
        return 0;
}

/* Every statement of the repository, planned against a real database file: none walks the execution or step
 * history, which grows without bound, and the instance table is only walked along an index. */
static void test_query_plans(void **state) {
        SQLITE_ONLY("SQLite's EXPLAIN QUERY PLAN");

        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_location(dir, "batch.db");
        _cleanup_(repository_freep) Repository *r = NULL;
        PlanCheck c = {};
        TestStep ok[] = { { "s" } };

        assert_int_equal(repository_open(path, 0, &r, NULL), 0);
        for (int i = 0; i < 3; i++) {
                _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
                char arg[32];

                snprintf(arg, sizeof(arg), "n(long)=%d", i);
                params_add(&p, arg);
                assert_int_equal(run_job(r, "alpha", &p, ok, 1, NULL, NULL), 0);
        }
        assert_int_equal(repository_query_plans(r, plan_check, &c), 0);
        assert_true(c.rows > 20);
        assert_int_equal(c.bad, 0);
}

/* List calls return summaries: what a list reply shows, never each row's parameters and context. */
static void test_lists_are_summaries(void **state) {
        _cleanup_(repository_freep) Repository *r = open_memory();
        _cleanup_(job_execution_freep) JobExecution *last = NULL, *running = NULL;
        JobExecution **list = NULL;
        size_t n = 0;
        TestStep ok[] = { { "s" } };

        for (int i = 0; i < 3; i++) {
                _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
                char arg[32];

                snprintf(arg, sizeof(arg), "n(long)=%d", i);
                params_add(&p, arg);
                assert_int_equal(run_job(r, i == 1 ? "beta" : "alpha", &p, ok, 1, NULL, NULL), 0);
        }
        for (int v = 0; v < 3; v++) {
                assert_int_equal(v == 0 ? repository_list_executions(r, NULL, 0, 0, 0, &list, &n) :
                                 v == 1 ? repository_list_executions(r, "alpha", 0, 0, 0, &list, &n) :
                                          repository_list_executions(r, NULL, 1, 0, 0, &list, &n), 0);
                assert_true(n == (v == 0 ? 3u : v == 1 ? 2u : 1u));
                for (size_t i = 0; i < n; i++) {
                        assert_int_equal(list[i]->parameters.n, 0);
                        assert_null(list[i]->context);
                        assert_non_null(list[i]->job_name);
                }
                job_execution_array_free(list, n);
        }

        assert_int_equal(repository_get_execution_summary(r, 1, &last, NULL), 0);
        assert_int_equal(last->parameters.n, 0);
        assert_null(last->context);
        assert_string_equal(last->job_name, "alpha");
        last = job_execution_free(last);
        assert_int_equal(repository_get_last_execution_of_job(r, "alpha", &last), 0);
        assert_non_null(last);
        assert_int_equal(last->id, 3);
        assert_string_equal(last->job_name, "alpha");
        assert_int_equal(last->status, BATCH_STATUS_COMPLETED);
        last = job_execution_free(last);
        assert_int_equal(repository_get_last_execution_of_job(r, "gamma", &last), 0);
        assert_null(last);

        /* The last execution is kept by triggers (schema 009): an execution another writer (Spring Batch) inserts
         * counts, and deleting the last one falls back to the one before it. */
        assert_int_equal(db_exec(repository_get_db(r),
                                 "INSERT INTO BATCH_JOB_EXECUTION (JOB_EXECUTION_ID, VERSION, JOB_INSTANCE_ID, CREATE_TIME, "
                                 "STATUS, EXIT_CODE, EXIT_MESSAGE, LAST_UPDATED) SELECT 50, 0, JOB_INSTANCE_ID, "
                                 "'2026-01-01 00:00:00', 'FAILED', 'FAILED', '', '2026-01-01 00:00:00' "
                                 "FROM BATCH_JOB_INSTANCE WHERE JOB_NAME = 'beta'"), 0);
        assert_int_equal(repository_get_last_execution_of_job(r, "beta", &last), 0);
        assert_non_null(last);
        assert_int_equal(last->id, 50);
        assert_int_equal(last->status, BATCH_STATUS_FAILED);
        last = job_execution_free(last);
        assert_int_equal(db_exec(repository_get_db(r), "DELETE FROM BATCH_JOB_EXECUTION WHERE JOB_EXECUTION_ID = 50"), 0);
        assert_int_equal(repository_get_last_execution_of_job(r, "beta", &last), 0);
        assert_non_null(last);
        assert_int_equal(last->id, 2);
        last = job_execution_free(last);
        assert_int_equal(repository_get_last_execution_of_job(r, "alpha", &last), 0);
        assert_int_equal(last->id, 3);
        last = job_execution_free(last);
        /* A first page of one of a job's executions is that lookup too (`batchctl status`). */
        assert_int_equal(repository_list_executions(r, "alpha", 0, 0, 1, &list, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(list[0]->id, 3);
        assert_string_equal(list[0]->job_name, "alpha");
        assert_int_equal(list[0]->parameters.n, 0);
        job_execution_array_free(list, n);
        assert_int_equal(repository_list_executions(r, "gamma", 0, 0, 1, &list, &n), 0);
        assert_int_equal(n, 0);
        job_execution_array_free(list, n);

        {
                _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;

                params_add(&p, "n(long)=9");
                assert_int_equal(repository_create_execution(r, "gamma", &p, 0, &running, NULL), 0);
                assert_int_equal(repository_get_running_executions(r, NULL, &list, &n), 0);
                assert_int_equal(n, 1);
                assert_int_equal(list[0]->parameters.n, 0);
                assert_null(list[0]->context);
                job_execution_array_free(list, n);
        }
}

/* limit 0 is the default page, never "everything", and no page is larger than REPOSITORY_PAGE_MAX. */
static void test_page_limit(void **state) {
        _cleanup_(repository_freep) Repository *r = open_memory();
        Db *db = repository_get_db(r);
        JobExecution **list = NULL;
        JobInstance *inst = NULL;
        size_t n = 0;

        /* More rows than a page, written directly: the repository's launch path is not what is tested. */
        assert_int_equal(db_exec(db, backend == DB_BACKEND_POSTGRESQL ?
                "INSERT INTO BATCH_JOB_INSTANCE SELECT x, 0, 'alpha', lpad(x::text, 32, '0') "
                "FROM generate_series(1, 1500) AS c(x);"
                "INSERT INTO BATCH_JOB_EXECUTION (JOB_EXECUTION_ID, VERSION, JOB_INSTANCE_ID, CREATE_TIME, STATUS, "
                "EXIT_CODE, EXIT_MESSAGE) SELECT JOB_INSTANCE_ID, 0, JOB_INSTANCE_ID, '2026-01-01 00:00:00', "
                "'COMPLETED', 'COMPLETED', '' FROM BATCH_JOB_INSTANCE;" :
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1500) "
                "INSERT INTO BATCH_JOB_INSTANCE SELECT x, 0, 'alpha', printf('%032d', x) FROM c;"
                "INSERT INTO BATCH_JOB_EXECUTION (JOB_EXECUTION_ID, VERSION, JOB_INSTANCE_ID, CREATE_TIME, STATUS, "
                "EXIT_CODE, EXIT_MESSAGE) SELECT JOB_INSTANCE_ID, 0, JOB_INSTANCE_ID, '2026-01-01 00:00:00', "
                "'COMPLETED', 'COMPLETED', '' FROM BATCH_JOB_INSTANCE;"), 0);

        assert_int_equal(repository_list_executions(r, NULL, 0, 0, 0, &list, &n), 0);
        assert_int_equal(n, REPOSITORY_PAGE_MAX);
        assert_int_equal(list[0]->id, 1500);
        job_execution_array_free(list, n);
        assert_int_equal(repository_list_executions(r, "alpha", 0, 1000, UINT32_MAX, &list, &n), 0);
        assert_int_equal(n, 500);
        assert_int_equal(list[0]->id, 500);
        job_execution_array_free(list, n);
        assert_int_equal(repository_get_job_instances(r, "alpha", 0, 0, &inst, &n), 0);
        assert_int_equal(n, REPOSITORY_PAGE_MAX);
        job_instance_array_free(inst, n);
}

static void test_fail_running(void **state) {
        _cleanup_(repository_freep) Repository *r = open_memory();
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL, *after = NULL, *restart = NULL;
        _cleanup_(step_execution_freep) StepExecution *s = NULL;
        _cleanup_free_ int64_t *ids = NULL;
        StepExecution **steps = NULL;
        size_t n = 0, ns = 0;

        params_add(&p, "a=1");
        assert_int_equal(repository_create_execution(r, "j", &p, 0, &e, NULL), 0);
        e->status = BATCH_STATUS_STARTED;
        assert_int_equal(repository_update_execution(r, e, NULL), 0);
        assert_int_equal(repository_add_step_execution(r, e, "s", NULL, &s, NULL), 0);
        s->status = BATCH_STATUS_STARTED;
        assert_int_equal(repository_update_step_execution(r, s, NULL), 0);

        assert_int_equal(repository_fail_running_executions(r, "batchd was restarted", &ids, &n), 0);
        assert_int_equal(n, 1);
        assert_true(ids[0] == e->id);

        assert_int_equal(repository_get_execution(r, e->id, &after, NULL), 0);
        assert_int_equal(after->status, BATCH_STATUS_FAILED);
        assert_string_equal(after->exit_message, "batchd was restarted");
        assert_true(after->end_time > 0);
        assert_int_equal(repository_get_step_executions(r, e->id, &steps, &ns), 0);
        assert_int_equal(steps[0]->status, BATCH_STATUS_FAILED);
        step_execution_array_free(steps, ns);

        /* and now it can be restarted */
        assert_int_equal(repository_create_execution(r, "j", &p, 0, &restart, NULL), 0);
}

static void test_retention(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_location(dir, "batch.db");
        _cleanup_(repository_freep) Repository *r = NULL;
        _cleanup_(job_execution_freep) JobExecution *running = NULL;
        TestStep ok[] = { { "s" } };
        uint64_t deleted;

        assert_int_equal(repository_open(path, 0, &r, NULL), 0);
        for (int i = 0; i < 6; i++) {
                _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
                char arg[32];

                snprintf(arg, sizeof(arg), "n(long)=%d", i);
                params_add(&p, arg);
                assert_int_equal(run_job(r, "a", &p, ok, 1, NULL, NULL), 0);
        }
        {
                _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;

                params_add(&p, "n(long)=100");
                assert_int_equal(repository_create_execution(r, "b", &p, 0, &running, NULL), 0);
        }

        /* keep the newest 2 of "a"; "b" is running and untouched */
        assert_int_equal(repository_delete_old(r, 0, 2, now_usec(CLOCK_REALTIME), &deleted), 0);
        assert_int_equal(deleted, 4);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION"), 3);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_INSTANCE"), 3);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_STEP_EXECUTION"), 2);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION_PARAMS"), 3);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_STEP_EXECUTION_CONTEXT"), 2);

        /* by age: everything that ended is older than 0 days from 3 days ahead */
        assert_int_equal(repository_delete_old(r, 2, 0, now_usec(CLOCK_REALTIME) + 3 * 86400 * USEC_PER_SEC,
                                               &deleted), 0);
        assert_int_equal(deleted, 2);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION"), 1);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION WHERE STATUS = 'STARTING'"), 1);
}

/* repository_purge(): by job, by count and by age, non-runs too, a dry run that counts exactly and removes
 * nothing, and never an instance with a running execution. */
static void test_purge(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_location(dir, "batch.db");
        _cleanup_(repository_freep) Repository *r = NULL;
        _cleanup_(job_execution_freep) JobExecution *running = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        TestStep ok[] = { { "s" } };
        RepositoryPurgeResult res;
        usec_t now = now_usec(CLOCK_REALTIME);

        assert_int_equal(repository_open(path, 0, &r, NULL), 0);
        for (int i = 0; i < 8; i++) {
                _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
                char arg[32];

                snprintf(arg, sizeof(arg), "n(long)=%d", i);
                params_add(&p, arg);
                assert_int_equal(run_job(r, i < 5 ? "a" : "b", &p, ok, 1, NULL, NULL), 0);
        }
        {
                _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;

                params_add(&p, "n(long)=100");
                assert_int_equal(repository_create_execution(r, "b", &p, 0, &running, NULL), 0);
        }
        for (int i = 0; i < 4; i++) {
                assert_int_equal(schedule_store_add_nonrun(r, "a", now - (4 - i) * 86400 * USEC_PER_SEC, "overlap",
                                                           NULL), 0);
                assert_int_equal(schedule_store_add_nonrun(r, "b", now - (4 - i) * 86400 * USEC_PER_SEC, "disabled",
                                                           NULL), 0);
        }

        /* Nothing to purge by. */
        assert_int_equal(repository_purge(r, NULL, 0, 0, false, now, &res, &error), -EINVAL);
        assert_string_equal(error.name, SD_BUS_ERROR_INVALID_ARGS);
        sd_bus_error_free(&error);

        /* A dry run counts and keeps everything. */
        if (repository_purge(r, "a", 0, 2, true, now, &res, &error) < 0)
                fail_msg("purge: %s", error.message);
        assert_int_equal(res.executions, 3);
        assert_int_equal(res.instances, 3);
        assert_int_equal(res.non_runs, 2);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION"), 9);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCHD_JOB_NONRUN"), 8);

        /* Then for real: only job "a", its newest 2 executions and non-runs kept. */
        assert_int_equal(repository_purge(r, "a", 0, 2, false, now, &res, NULL), 0);
        assert_int_equal(res.executions, 3);
        assert_int_equal(res.instances, 3);
        assert_int_equal(res.non_runs, 2);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION"), 6);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_INSTANCE"), 6);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_STEP_EXECUTION"), 5);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCHD_JOB_NONRUN WHERE JOB_NAME = 'a'"), 2);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCHD_JOB_NONRUN WHERE JOB_NAME = 'b'"), 4);

        /* By age, every job: non-runs scheduled more than 2.5 days ago; executions that ended before a cutoff
         * in the future (everything ended), but never the running one of "b". */
        assert_int_equal(repository_purge(r, NULL, 60 * 60 * USEC_PER_SEC * 60, 0, false, now, &res, NULL), 0);
        assert_int_equal(res.executions, 0);
        assert_int_equal(res.non_runs, 2);       /* b's 4 and 3 days old ones; a kept its 2 and 1 days old ones */
        assert_int_equal(repository_purge(r, NULL, 1, 0, false, now + 10 * USEC_PER_SEC, &res, NULL), 0);
        assert_int_equal(res.executions, 5);
        assert_int_equal(res.instances, 5);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION"), 1);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION WHERE STATUS = 'STARTING'"), 1);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCHD_JOB_NONRUN"), 0);
}

/* The runtime switch of batchctl enable/disable/revert (schema 008, PostgreSQL 004). */
static void test_job_enabled_switch(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_location(dir, "batch.db");
        _cleanup_(repository_freep) Repository *r = NULL;
        int enabled = -1;

        assert_int_equal(repository_open(path, 0, &r, NULL), 0);
        assert_int_equal(schedule_store_get_enabled(r, "j", &enabled), -ENOENT);
        assert_int_equal(schedule_store_set_enabled(r, "j", 0), 0);
        assert_int_equal(schedule_store_get_enabled(r, "j", &enabled), 0);
        assert_int_equal(enabled, 0);
        assert_int_equal(schedule_store_set_enabled(r, "j", 1), 0);        /* an upsert */
        assert_int_equal(schedule_store_get_enabled(r, "j", &enabled), 0);
        assert_int_equal(enabled, 1);
        assert_int_equal(schedule_store_get_enabled(r, "other", &enabled), -ENOENT);
        assert_int_equal(schedule_store_set_enabled(r, "j", -1), 0);
        assert_int_equal(schedule_store_get_enabled(r, "j", &enabled), -ENOENT);
        assert_int_equal(schedule_store_set_enabled(r, "j", -1), 0);       /* nothing to revert: fine */
}

static void test_bad_input(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_location(dir, "batch.db");
        _cleanup_(repository_freep) Repository *r = NULL;
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        JobExecution *e = NULL;
        char longname[JOB_NAME_MAX + 2];
        struct {
                const char *name;
                const char *message;
        } names[] = {
                { "", "Job name must not be empty." },
                { "bad\xff", "Job name is not valid UTF-8." },
                { longname, "Job name is longer than 100 bytes." },
        };
        JobParameter bogus = { .name = (char *) "x", .type = JOB_PARAMETER_STRING, .value = (char *) "\xc3\x28" };
        JobParameters raw = { .items = &bogus, .n = 1 };

        memset(longname, 'n', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        assert_int_equal(repository_open(path, 0, &r, NULL), 0);

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

                assert_int_equal(repository_create_execution(r, names[i].name, &p, 0, &e, &error), -EINVAL);
                assert_string_equal(error.name, BATCH_ERROR_JOB_PARAMETERS_INVALID);
                assert_string_equal(error.message, names[i].message);
        }
        {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

                assert_int_equal(repository_create_execution(r, "j", &raw, 0, &e, &error), -EINVAL);
                assert_string_equal(error.message, "Invalid value for parameter 'x'.");
        }
        assert_null(e);
        /* nothing half-written */
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_INSTANCE"), 0);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION"), 0);

        {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_(step_execution_freep) StepExecution *s = NULL;
                _cleanup_(job_execution_freep) JobExecution *ok = NULL;
                StepContribution negative = { .read_count = -1 };

                assert_int_equal(repository_create_execution(r, "j", &p, 0, &ok, NULL), 0);
                assert_int_equal(repository_add_step_execution(r, ok, "s", NULL, &s, NULL), 0);
                assert_int_equal(repository_commit_step(r, s, &negative, NULL, &error), -EINVAL);
                assert_int_equal(query_int(path, "SELECT COMMIT_COUNT FROM BATCH_STEP_EXECUTION"), 0);
        }
}

static void test_bad_database_files(void **state) {
        SQLITE_ONLY("files that are not databases, PRAGMA user_version (test_pg_foreign_and_future is its PostgreSQL form)");

        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *garbage = test_path(dir, "garbage.db"), *foreign = test_path(dir, "foreign.db"),
                            *future = test_path(dir, "future.db"), *missing = test_path(dir, "no/such/dir.db");
        Repository *r = NULL;
        sqlite3 *db;

        test_write_file(garbage, "this is not a database, just some text that is long enough to matter..........."
                                 "................................................................................");
        {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

                assert_true(repository_open(garbage, 0, &r, &error) < 0);
                assert_string_equal(error.name, BATCH_ERROR_DATABASE);
                assert_non_null(strstr(error.message, "is not a usable SQLite database"));
        }

        assert_int_equal(sqlite3_open(foreign, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "CREATE TABLE customers (id INTEGER)", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

                assert_int_equal(repository_open(foreign, 0, &r, &error), -EPROTONOSUPPORT);
                assert_non_null(strstr(error.message, "refusing to use a foreign database"));
        }
        /* nothing was added to the foreign file */
        assert_int_equal(query_int(foreign, "SELECT COUNT(*) FROM sqlite_master"), 1);

        assert_int_equal(sqlite3_open(future, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

                assert_int_equal(repository_open(future, 0, &r, &error), -EPROTONOSUPPORT);
                assert_non_null(strstr(error.message, "schema version 99"));
        }
        {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

                assert_true(repository_open(missing, 0, &r, &error) < 0);
                assert_non_null(strstr(error.message, "Failed to open the database"));
        }
        assert_null(r);
}

/* A Spring Batch database (tables, no user_version) is adopted: the indexes are added, data kept. */
static void test_adopt_spring_database(void **state) {
        SQLITE_ONLY("Spring's SQLite schema (test_pg_adopt_spring_database is its PostgreSQL form)");

        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_path(dir, "spring.db");
        _cleanup_(repository_freep) Repository *r = NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL;
        sqlite3 *db;

        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, schema_migrations[0], NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db,
                "INSERT INTO BATCH_JOB_INSTANCE VALUES (7, 0, 'springJob', 'd41d8cd98f00b204e9800998ecf8427e');"
                "INSERT INTO BATCH_JOB_EXECUTION VALUES (9, 2, 7, '2024-01-15 10:00:00.000000', "
                "'2024-01-15 10:00:00.100000', '2024-01-15 10:00:01.000000', 'COMPLETED', 'COMPLETED', '', "
                "'2024-01-15 10:00:01.000000');"
                "INSERT INTO BATCH_JOB_EXECUTION_CONTEXT VALUES (9, '{}', NULL);",
                NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);

        assert_int_equal(repository_open(path, 0, &r, NULL), 0);
        assert_int_equal(repository_schema_version(r), (int) schema_migrations_count);
        assert_int_equal(repository_get_execution(r, 9, &e, NULL), 0);
        assert_string_equal(e->job_name, "springJob");
        assert_int_equal(e->status, BATCH_STATUS_COMPLETED);
        assert_true(e->end_time - e->start_time == 900000);
}

static void test_read_only(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_location(dir, "batch.db");
        _cleanup_(repository_freep) Repository *r = NULL, *ro = NULL;
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        JobExecution *e = NULL;
        pid_t pid;
        int status;

        assert_int_equal(repository_open(path, 0, &r, NULL), 0);
        r = repository_free(r);

        assert_int_equal(repository_open(path, REPOSITORY_READ_ONLY, &ro, NULL), 0);
        assert_int_equal(repository_create_execution(ro, "j", &p, 0, &e, &error), -EROFS);
        assert_non_null(strstr(error.message, "read-only"));

        /* A database file the caller may not write: refused at open with a clear message. As root, the check
         * needs an unprivileged process to mean anything. */
        SQLITE_ONLY("a database file without write permission");
        assert_int_equal(chmod(path, 0444), 0);
        assert_int_equal(chmod(dir, 0755), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                Repository *x = NULL;
                sd_bus_error err = SD_BUS_ERROR_NULL;
                int k;

                if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
                        _exit(2);
                k = repository_open(path, 0, &x, &err);
                _exit(k == -EROFS && strstr(err.message, "is read-only") ? 0 : 1);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

/* Several processes launch the same instance at once: exactly one gets an execution, the others get
 * JobExecutionAlreadyRunning; never a duplicate instance or a raw SQLite error. */
/* Nested transactions: an inner failure undoes its own part only; the outer commit keeps the rest. */
static void test_nested_transactions(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_location(dir, "batch.db");
        _cleanup_(repository_freep) Repository *r = NULL;
        _cleanup_(job_parameters_done) JobParameters a = JOB_PARAMETERS_NULL, b = JOB_PARAMETERS_NULL;
        _cleanup_(job_execution_freep) JobExecution *e1 = NULL, *e2 = NULL, *dup = NULL, *rolled = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        assert_int_equal(repository_open(path, 0, &r, NULL), 0);
        params_add(&a, "x=1");
        params_add(&b, "x=2");

        {
                _cleanup_(repository_transaction_done) RepositoryTransaction tx = {};

                assert_int_equal(repository_transaction_open(r, &tx, NULL), 0);
                assert_int_equal(repository_create_execution(r, "j", &a, 0, &e1, NULL), 0);
                /* refused inside the outer transaction: the instance of e1 is running */
                assert_int_equal(repository_create_execution(r, "j", &a, 0, &dup, &error), -EBUSY);
                assert_int_equal(repository_create_execution(r, "j", &b, 0, &e2, NULL), 0);
                /* nothing visible to another connection before the outer commit */
                assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION"), 0);
                assert_int_equal(repository_transaction_commit(&tx, NULL), 0);
                /* committed: a second commit or the cleanup does nothing */
                assert_int_equal(repository_transaction_commit(&tx, NULL), -ENOTCONN);
        }
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION"), 2);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_INSTANCE"), 2);

        /* a guard going out of scope uncommitted undoes everything inside */
        {
                _cleanup_(job_parameters_done) JobParameters c = JOB_PARAMETERS_NULL;
                _cleanup_(repository_transaction_done) RepositoryTransaction tx = {};

                params_add(&c, "x=3");
                assert_int_equal(repository_transaction_open(r, &tx, NULL), 0);
                assert_int_equal(repository_create_execution(r, "j", &c, 0, &rolled, NULL), 0);
        }
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION"), 2);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_INSTANCE"), 2);
}

static void test_concurrent_launchers(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_location(dir, "batch.db");
        _cleanup_(repository_freep) Repository *r = NULL;
        enum { N = 8 };
        pid_t pids[N];
        int go[2], won = 0, busy = 0;

        assert_int_equal(repository_open(path, 0, &r, NULL), 0);
        r = repository_free(r);
        assert_int_equal(pipe(go), 0);

        for (int i = 0; i < N; i++) {
                pids[i] = fork();
                assert_true(pids[i] >= 0);
                if (pids[i] == 0) {
                        JobParameters p = JOB_PARAMETERS_NULL;
                        Repository *x = NULL;
                        JobExecution *e = NULL;
                        sd_bus_error err = SD_BUS_ERROR_NULL;
                        char c;
                        int k;

                        close(go[1]);
                        if (repository_open(path, 0, &x, NULL) < 0)
                                _exit(3);
                        (void) job_parameters_parse_argument(&p, "day(date)=2026-11-21", NULL);
                        (void) read(go[0], &c, 1); /* all start together */
                        k = repository_create_execution(x, "settlement", &p, 0, &e, &err);
                        if (k == 0)
                                _exit(0);
                        if (k == -EBUSY && sd_bus_error_has_name(&err, BATCH_ERROR_JOB_EXECUTION_ALREADY_RUNNING))
                                _exit(1);
                        fprintf(stderr, "unexpected: %d %s: %s\n", k, strna(err.name), strna(err.message));
                        _exit(4);
                }
        }
        close(go[0]);
        close(go[1]); /* EOF releases every child at once */

        for (int i = 0; i < N; i++) {
                int status;

                assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
                assert_true(WIFEXITED(status));
                if (WEXITSTATUS(status) == 0)
                        won++;
                else if (WEXITSTATUS(status) == 1)
                        busy++;
        }
        assert_int_equal(won, 1);
        assert_int_equal(busy, N - 1);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_INSTANCE"), 1);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION"), 1);
}

/* Another connection holds the write lock: opening a transaction fails at once (nothing waits in a busy handler
 * longer than the timeout set), and committing the guard that never opened is an error, not an abort. The
 * daemon's on_step_finished used to commit after a failed begin and die on "Assertion 'r->tx_depth > 0'". */
static void test_transaction_guard_under_foreign_lock(void **state) {
        SQLITE_ONLY("a second sqlite3 handle's BEGIN IMMEDIATE");

        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_location(dir, "batch.db");
        _cleanup_(repository_freep) Repository *r = NULL;
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        sqlite3 *other = NULL;

        assert_int_equal(repository_open(path, 0, &r, NULL), 0);
        repository_set_busy_timeout(r, 0);
        params_add(&p, "x=1");

        assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
        assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
        {
                _cleanup_(repository_transaction_done) RepositoryTransaction tx = {};

                assert_int_equal(repository_transaction_open(r, &tx, &error), -EAGAIN);
                assert_true(sd_bus_error_has_name(&error, BATCH_ERROR_DATABASE_BUSY));
                sd_bus_error_free(&error);
                assert_int_equal(repository_transaction_commit(&tx, &error), -ENOTCONN);
                sd_bus_error_free(&error);
        }
        assert_int_equal(repository_create_execution(r, "j", &p, LAUNCH_MARK_STARTED, &e, &error), -EAGAIN);
        assert_true(sd_bus_error_has_name(&error, BATCH_ERROR_DATABASE_BUSY));
        sd_bus_error_free(&error);
        /* reads do not wait for the writer (WAL) */
        {
                JobExecution **list = NULL;
                size_t n = 1;

                assert_int_equal(repository_list_executions(r, NULL, 0, 0, 10, &list, &n), 0);
                assert_int_equal(n, 0);
                job_execution_array_free(list, n);
        }
        assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(other);

        /* the lock is gone: the same launch goes through, STARTED in the same transaction */
        assert_int_equal(repository_create_execution(r, "j", &p, LAUNCH_MARK_STARTED, &e, NULL), 0);
        assert_int_equal(e->status, BATCH_STATUS_STARTED);
        assert_true(e->start_time > 0);
        assert_int_equal(e->version, 1);
        assert_int_equal(query_int(path, "SELECT VERSION FROM BATCH_JOB_EXECUTION"), 1);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION WHERE STATUS = 'STARTED' "
                                         "AND START_TIME IS NOT NULL"), 1);
}

/* The counts of one table, to tell that a failed call left nothing behind. */
static char *table_counts(const char *path) {
        static const char *const tables[] = {
                "BATCH_JOB_INSTANCE", "BATCH_JOB_EXECUTION", "BATCH_JOB_EXECUTION_PARAMS",
                "BATCH_JOB_EXECUTION_CONTEXT", "BATCH_STEP_EXECUTION", "BATCH_STEP_EXECUTION_CONTEXT",
        };
        char *out = NULL;

        for (size_t i = 0; i < ELEMENTSOF(tables); i++) {
                _cleanup_free_ char *sql = NULL, *prev = out;

                assert_true(asprintf(&sql, "SELECT COUNT(*) FROM %s", tables[i]) > 0);
                assert_true(asprintf(&out, "%s%s=%" PRIi64 " ", strempty(prev), tables[i], query_int(path, sql)) > 0);
        }
        return out;
}

static char *row_text(const char *path, const char *table, const char *key, int64_t id) {
        _cleanup_free_ char *sql = NULL;

        assert_true(asprintf(&sql, "SELECT STATUS || '/' || VERSION || '/' || COALESCE(CAST(END_TIME AS VARCHAR), '-') FROM %s "
                             "WHERE %s = %" PRIi64, table, key, id) > 0);
        return query_text(path, sql);
}

/* Each write statement of a run fails in turn (BEGIN, COMMIT, each INSERT and UPDATE), once: the call that ran
 * it fails and leaves the database exactly as before (no half-written record), memory keeps the versions the
 * database has, and repeating the call succeeds. */
static void test_faults_leave_nothing_half_written(void **state) {
        static const char *const statements[] = {
                "BEGIN", "COMMIT", "INSERT INTO BATCH_JOB_SEQ", "INSERT INTO BATCH_JOB_INSTANCE ",
                "INSERT INTO BATCH_JOB_EXECUTION_SEQ", "INSERT INTO BATCH_JOB_EXECUTION ",
                "INSERT INTO BATCH_JOB_EXECUTION_PARAMS", "INSERT INTO BATCH_JOB_EXECUTION_CONTEXT",
                "INSERT INTO BATCH_STEP_EXECUTION_SEQ", "INSERT INTO BATCH_STEP_EXECUTION ",
                "INSERT INTO BATCH_STEP_EXECUTION_CONTEXT", "UPDATE BATCH_JOB_EXECUTION ",
                "UPDATE BATCH_STEP_EXECUTION ", "UPDATE BATCH_STEP_EXECUTION_CONTEXT",
        };
        static const int codes[] = { -EAGAIN, -ENOSPC, -EIO };

        for (size_t c = 0; c < ELEMENTSOF(codes); c++)
                for (size_t i = 0; i < ELEMENTSOF(statements); i++)
                        for (unsigned nth = 1; nth <= 3; nth++) {
                                /* PostgreSQL's ids come from nextval(), outside the statements db.h
                                 * can fail on purpose (and outside any transaction: a rollback does not
                                 * give an id back, as with Spring's sequences). */
                                if (backend == DB_BACKEND_POSTGRESQL && strstr(statements[i], "_SEQ"))
                                        continue;
                                _cleanup_(test_dir_freep) char *dir = test_dir_new();
                                _cleanup_free_ char *path = test_location(dir, "batch.db");
                                _cleanup_(repository_freep) Repository *r = NULL;
                                _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
                                _cleanup_(job_execution_freep) JobExecution *e = NULL;
                                _cleanup_(step_execution_freep) StepExecution *s1 = NULL, *s2 = NULL;
                                StepContribution contribution = { .read_count = 1, .write_count = 1 };
                                unsigned failures = 0;
                                int k;

                                assert_int_equal(repository_open(path, 0, &r, NULL), 0);
                                params_add(&p, "x=1");
                                params_add(&p, "y=2");
                                assert_int_equal(repository_inject_fault(r, statements[i], nth, 1, codes[c]), 0);

/* Runs one call; when it fails, checks that the database did not change and that the retry succeeds. */
#define STEP(call, before_text)                                                                          \
        do {                                                                                             \
                _cleanup_free_ char *_before = (before_text), *_after = NULL;                            \
                k = (call);                                                                              \
                if (k < 0) {                                                                             \
                        failures++;                                                                      \
                        _after = table_counts(path);                                                     \
                        assert_string_equal(_before, _after);                                            \
                        k = (call);                                                                      \
                }                                                                                        \
                assert_int_equal(k, 0);                                                                  \
        } while (0)

                                STEP(repository_create_execution(r, "j", &p, LAUNCH_MARK_STARTED, &e, NULL),
                                     table_counts(path));
                                STEP(repository_start_step_execution(r, e, "one", NULL, &s1, NULL), table_counts(path));
                                {
                                        int64_t v = s1->version;
                                        _cleanup_free_ char *before = row_text(path, "BATCH_STEP_EXECUTION",
                                                                               "STEP_EXECUTION_ID", s1->id);

                                        k = repository_commit_step(r, s1, &contribution, NULL, NULL);
                                        if (k < 0) {
                                                _cleanup_free_ char *after = row_text(path, "BATCH_STEP_EXECUTION",
                                                                                      "STEP_EXECUTION_ID", s1->id);

                                                failures++;
                                                assert_int_equal(s1->version, v);
                                                assert_string_equal(before, after);
                                                k = repository_commit_step(r, s1, &contribution, NULL, NULL);
                                        }
                                        assert_int_equal(k, 0);
                                }
                                s1->status = BATCH_STATUS_COMPLETED;
                                s1->end_time = now_usec(CLOCK_REALTIME);
                                STEP(repository_finish_step_execution(r, s1, NULL, NULL), table_counts(path));
                                STEP(repository_start_step_execution(r, e, "two", NULL, &s2, NULL), table_counts(path));

                                /* the last step's end and the job's end: both or neither */
                                s2->status = e->status = BATCH_STATUS_COMPLETED;
                                s2->end_time = e->end_time = now_usec(CLOCK_REALTIME);
                                {
                                        int64_t sv = s2->version, ev = e->version;
                                        _cleanup_free_ char *sb = row_text(path, "BATCH_STEP_EXECUTION",
                                                                           "STEP_EXECUTION_ID", s2->id),
                                                            *eb = row_text(path, "BATCH_JOB_EXECUTION",
                                                                           "JOB_EXECUTION_ID", e->id);

                                        k = repository_finish_step_execution(r, s2, e, NULL);
                                        if (k < 0) {
                                                _cleanup_free_ char *sa = row_text(path, "BATCH_STEP_EXECUTION",
                                                                                   "STEP_EXECUTION_ID", s2->id),
                                                                    *ea = row_text(path, "BATCH_JOB_EXECUTION",
                                                                                   "JOB_EXECUTION_ID", e->id);

                                                failures++;
                                                assert_int_equal(s2->version, sv);
                                                assert_int_equal(e->version, ev);
                                                assert_string_equal(sb, sa);
                                                assert_string_equal(eb, ea);
                                                k = repository_finish_step_execution(r, s2, e, NULL);
                                        }
                                        assert_int_equal(k, 0);
                                }
#undef STEP
                                /* Every statement in the list runs at least once in a run; the first three
                                 * executions of each are hit, or the run had fewer. */
                                assert_true(failures <= 1);
                                assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION WHERE "
                                                                 "STATUS = 'COMPLETED' AND VERSION = 2"), 1);
                                assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_STEP_EXECUTION WHERE "
                                                                 "STATUS = 'COMPLETED'"), 2);
                                assert_int_equal(query_int(path, "SELECT COMMIT_COUNT FROM BATCH_STEP_EXECUTION "
                                                                 "WHERE STEP_NAME = 'one'"), 1);
                                if (nth == 1)
                                        assert_int_equal(failures, 1);
                        }
}

/* A job on record as finished with its step still STARTED (what the tx_depth abort left behind): reconciliation
 * marks the step FAILED, and a restart of the instance is not refused as "already running". */
/* A COMMIT applied by the database whose answer is lost (the connection broke while it was under way): the call
 * fails with DatabaseUnavailable and is repeated, as the daemon does; the repeat finds its own earlier write and
 * does not apply it twice: one chunk commit counted once, one step execution started once, one end. */
static void test_lost_commit_reply_applied_once(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_location(dir, "batch.db"), *sql = NULL;
        _cleanup_(repository_freep) Repository *r = NULL;
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL;
        _cleanup_(step_execution_freep) StepExecution *one = NULL, *two = NULL;
        StepContribution c = { .read_count = 3, .write_count = 2 };
        int64_t v;

        assert_int_equal(repository_open(path, 0, &r, NULL), 0);
        assert_int_equal(repository_create_execution(r, "j", &p, LAUNCH_MARK_STARTED, &e, NULL), 0);
        assert_int_equal(repository_start_step_execution(r, e, "one", NULL, &one, NULL), 0);

        /* A chunk commit. */
        {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

                v = one->version;
                db_inject_lost_commit_reply(repository_get_db(r), 1);
                assert_int_equal(repository_commit_step(r, one, &c, e, &error), -ECONNRESET);
                assert_string_equal(error.name, BATCH_ERROR_DATABASE_UNAVAILABLE);
                assert_int_equal(one->version, v);      /* memory does not know it was applied */
                assert_int_equal(one->commit_count, 0);
        }
        assert_int_equal(repository_commit_step(r, one, &c, e, NULL), 0);
        assert_int_equal(one->version, v + 1);
        assert_int_equal(one->commit_count, 1);
        assert_int_equal(one->read_count, 3);
        assert_true(asprintf(&sql, "SELECT COMMIT_COUNT * 1000000 + READ_COUNT * 1000 + WRITE_COUNT FROM "
                             "BATCH_STEP_EXECUTION WHERE STEP_EXECUTION_ID = %" PRIi64, one->id) > 0);
        assert_int_equal(query_int(path, sql), 1003002);
        sql = mfree(sql);
        /* The next commit is an ordinary one again. */
        assert_int_equal(repository_commit_step(r, one, &c, e, NULL), 0);
        assert_true(asprintf(&sql, "SELECT COMMIT_COUNT * 1000000 + READ_COUNT * 1000 + WRITE_COUNT FROM "
                             "BATCH_STEP_EXECUTION WHERE STEP_EXECUTION_ID = %" PRIi64, one->id) > 0);
        assert_int_equal(query_int(path, sql), 2006004);
        sql = mfree(sql);

        /* The end of a step that is not the last. */
        one->status = BATCH_STATUS_COMPLETED;
        one->end_time = now_usec(CLOCK_REALTIME);
        db_inject_lost_commit_reply(repository_get_db(r), 1);
        assert_int_equal(repository_finish_step_execution(r, one, NULL, NULL), -ECONNRESET);
        assert_int_equal(repository_finish_step_execution(r, one, NULL, NULL), 0);

        /* The start of the next step: one step execution, not two. */
        db_inject_lost_commit_reply(repository_get_db(r), 1);
        assert_int_equal(repository_start_step_execution(r, e, "two", NULL, &two, NULL), -ECONNRESET);
        assert_null(two);
        assert_int_equal(repository_start_step_execution(r, e, "two", NULL, &two, NULL), 0);
        assert_int_equal(two->status, BATCH_STATUS_STARTED);
        assert_true(asprintf(&sql, "SELECT COUNT(*) FROM BATCH_STEP_EXECUTION WHERE JOB_EXECUTION_ID = %" PRIi64
                             " AND STEP_NAME = 'two'", e->id) > 0);
        assert_int_equal(query_int(path, sql), 1);
        sql = mfree(sql);

        /* The last step's end with the execution's. */
        two->status = BATCH_STATUS_COMPLETED;
        two->end_time = now_usec(CLOCK_REALTIME);
        e->status = BATCH_STATUS_COMPLETED;
        e->end_time = two->end_time;
        v = e->version;
        db_inject_lost_commit_reply(repository_get_db(r), 1);
        assert_int_equal(repository_finish_step_execution(r, two, e, NULL), -ECONNRESET);
        assert_int_equal(e->version, v);
        assert_int_equal(repository_finish_step_execution(r, two, e, NULL), 0);
        assert_int_equal(e->version, v + 1);
        assert_true(asprintf(&sql, "SELECT VERSION FROM BATCH_JOB_EXECUTION WHERE JOB_EXECUTION_ID = %" PRIi64,
                             e->id) > 0);
        assert_int_equal(query_int(path, sql), v + 1);
        sql = mfree(sql);

        /* A write that really conflicts is still refused. */
        {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

                e->version--;
                e->status = BATCH_STATUS_FAILED;
                assert_int_equal(repository_update_execution(r, e, &error), -ESTALE);
                assert_string_equal(error.name, BATCH_ERROR_OPTIMISTIC_LOCKING_FAILURE);
        }
}

static void test_orphan_step_repaired(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_location(dir, "batch.db");
        _cleanup_(repository_freep) Repository *r = NULL;
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL, *again = NULL;
        _cleanup_(step_execution_freep) StepExecution *s = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ int64_t *ids = NULL;
        size_t n = 0;

        assert_int_equal(repository_open(path, 0, &r, NULL), 0);
        params_add(&p, "x=1");
        assert_int_equal(repository_create_execution(r, "j", &p, LAUNCH_MARK_STARTED, &e, NULL), 0);
        assert_int_equal(repository_start_step_execution(r, e, "s", NULL, &s, NULL), 0);
        e->status = BATCH_STATUS_FAILED;
        e->end_time = now_usec(CLOCK_REALTIME);
        assert_int_equal(repository_update_execution(r, e, NULL), 0);

        /* the start path repairs it */
        assert_int_equal(repository_create_execution(r, "j", &p, 0, &again, &error), 0);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_STEP_EXECUTION WHERE STATUS = 'FAILED' AND "
                                         "END_TIME IS NOT NULL"), 1);
        again = job_execution_free(again);

        /* and reconciliation does, for a job that ended with its step STARTED */
        assert_int_equal(db_exec(repository_get_db(r),
                                 "UPDATE BATCH_STEP_EXECUTION SET STATUS = 'STARTED', END_TIME = NULL; "
                                 "UPDATE BATCH_JOB_EXECUTION SET STATUS = 'COMPLETED'"), 0);
        assert_int_equal(repository_fail_running_executions(r, "restarted", &ids, &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_STEP_EXECUTION WHERE STATUS = 'FAILED' AND "
                                         "END_TIME IS NOT NULL AND EXIT_CODE = 'FAILED'"), 1);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION WHERE STATUS = 'COMPLETED'"), 2);
}

static void on_replaced(Repository *r, void *userdata) {
        (*(unsigned *) userdata)++;
}

/* The database file is deleted, then replaced by another: writes are refused with DatabaseReplaced from the
 * first one on (the callback fires once), reads still work on the open file; a new Repository works again. */
static void test_replaced_file(void **state) {
        SQLITE_ONLY("a database file deleted or replaced under batchd");

        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_location(dir, "batch.db");
        _cleanup_free_ char *wal = test_path(dir, "batch.db-wal"), *shm = test_path(dir, "batch.db-shm");
        _cleanup_(repository_freep) Repository *r = NULL, *fresh = NULL;
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL, *e2 = NULL, *e3 = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        unsigned called = 0;

        assert_int_equal(repository_open(path, 0, &r, NULL), 0);
        repository_set_replaced_callback(r, on_replaced, &called);
        params_add(&p, "x=1");
        assert_int_equal(repository_create_execution(r, "j", &p, LAUNCH_MARK_STARTED, &e, NULL), 0);
        assert_int_equal(repository_check_file(r, NULL), 0);

        assert_int_equal(unlink(path), 0);
        (void) unlink(wal);
        (void) unlink(shm);
        e->status = BATCH_STATUS_COMPLETED;
        assert_int_equal(repository_update_execution(r, e, &error), -EIDRM);
        assert_true(sd_bus_error_has_name(&error, BATCH_ERROR_DATABASE_REPLACED));
        sd_bus_error_free(&error);
        assert_true(repository_is_replaced(r));
        assert_int_equal(called, 1);

        /* another database now at the path: still refused, no second report */
        assert_int_equal(repository_open(path, 0, &fresh, NULL), 0);
        assert_int_equal(repository_create_execution(r, "j", &p, 0, &e2, &error), -EIDRM);
        sd_bus_error_free(&error);
        assert_int_equal(called, 1);
        assert_int_equal(repository_create_execution(fresh, "j", &p, 0, &e3, NULL), 0);
}

/* batchd's own tables through the same statement table on both backends: the schedule's last fire (an upsert),
 * non-runs with ids the database assigns (SQLite's rowid, PostgreSQL's identity), newest first, per job or all,
 * their times read back to the microsecond. */
static void test_schedule_store(void **state) {
        _cleanup_(repository_freep) Repository *r = open_memory();
        NonRun *a = NULL;
        size_t n = 0;
        usec_t fire = 0;
        const usec_t t = 1792888200 * USEC_PER_SEC + 123456;

        assert_int_equal(schedule_store_get_last_fire(r, "j", &fire), -ENOENT);
        assert_int_equal(schedule_store_set_last_fire(r, "j", t, 0), 0);
        assert_int_equal(schedule_store_set_last_fire(r, "j", t + 1, 7), 0);
        assert_int_equal(schedule_store_get_last_fire(r, "j", &fire), 0);
        assert_true(fire == t + 1);

        assert_int_equal(schedule_store_add_nonrun(r, "j", t, NONRUN_OVERLAP, "execution 7 was running"), 0);
        assert_int_equal(schedule_store_add_nonrun(r, "k", t + 1, NONRUN_MISSED, NULL), 0);
        assert_int_equal(schedule_store_add_nonrun(r, "j", t + 2, NONRUN_DISABLED, NULL), 0);

        assert_int_equal(schedule_store_list_nonruns(r, NULL, 0, &a, &n), 0);
        assert_int_equal(n, 3);
        assert_true(a[0].id > a[1].id && a[1].id > a[2].id);
        assert_string_equal(a[0].reason, NONRUN_DISABLED);
        assert_string_equal(a[1].job_name, "k");
        assert_null(a[1].detail);
        assert_string_equal(a[2].detail, "execution 7 was running");
        assert_true(a[2].scheduled == t);
        assert_true(a[2].recorded > 0);
        nonrun_array_free(a, n);

        assert_int_equal(schedule_store_list_nonruns(r, "j", 1, &a, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(a[0].reason, NONRUN_DISABLED);
        assert_true(a[0].scheduled == t + 2);
        nonrun_array_free(a, n);
}

/* Launchers of an instance that exists (its last execution FAILED, so each would restart it) from N connections
 * at once: exactly one restart, the others JobExecutionAlreadyRunning; a lock wait that ran out (DatabaseBusy) is
 * tried again, as the daemon does. On PostgreSQL this is the instance row's lock at READ COMMITTED. */
static void test_restart_launchers(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_location(dir, "batch.db");
        _cleanup_(repository_freep) Repository *r = NULL;
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        TestStep failing[] = { { "s", .fail = true } };
        enum { N = 6 };
        pid_t pids[N];
        int go[2], won = 0, busy = 0;

        assert_int_equal(repository_open(path, 0, &r, NULL), 0);
        params_add(&p, "day(date)=2026-11-21");
        assert_int_equal(run_job(r, "settlement", &p, failing, 1, NULL, NULL), 0);
        r = repository_free(r);
        assert_int_equal(pipe(go), 0);

        for (int i = 0; i < N; i++) {
                pids[i] = fork();
                assert_true(pids[i] >= 0);
                if (pids[i] == 0) {
                        Repository *x = NULL;
                        JobExecution *e = NULL;
                        char c;
                        int k;

                        close(go[1]);
                        if (repository_open(path, 0, &x, NULL) < 0)
                                _exit(3);
                        (void) read(go[0], &c, 1);
                        for (unsigned attempt = 0; attempt < 100; attempt++) {
                                sd_bus_error err = SD_BUS_ERROR_NULL;

                                k = repository_create_execution(x, "settlement", &p, 0, &e, &err);
                                if (k == 0)
                                        _exit(0);
                                if (k == -EBUSY && sd_bus_error_has_name(&err, BATCH_ERROR_JOB_EXECUTION_ALREADY_RUNNING))
                                        _exit(1);
                                if (k == -EAGAIN && sd_bus_error_has_name(&err, BATCH_ERROR_DATABASE_BUSY)) {
                                        sd_bus_error_free(&err);
                                        (void) usleep(10000);
                                        continue;
                                }
                                fprintf(stderr, "unexpected: %d %s: %s\n", k, strna(err.name), strna(err.message));
                                _exit(4);
                        }
                        _exit(5);
                }
        }
        close(go[0]);
        close(go[1]);

        for (int i = 0; i < N; i++) {
                int status;

                assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
                assert_true(WIFEXITED(status));
                if (WEXITSTATUS(status) == 0)
                        won++;
                else if (WEXITSTATUS(status) == 1)
                        busy++;
        }
        assert_int_equal(won, 1);
        assert_int_equal(busy, N - 1);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_INSTANCE"), 1);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION"), 2);
        assert_int_equal(query_int(path, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION WHERE STATUS = 'STARTING'"), 1);
}

/* ---- PostgreSQL only ---- */

typedef struct PgPlans {
        unsigned statements, rows;
        const char *last_sql;
} PgPlans;

static int pg_plan_collect(const char *sql, const char *detail, void *userdata) {
        PgPlans *c = userdata;

        if (c->last_sql != sql) {
                c->statements++;
                c->last_sql = sql;
        }
        c->rows++;
        return 0;
}

/* Every statement of the table parses and plans on PostgreSQL, with every parameter's type determined; the
 * run.id query reads BATCHD_RUN_ID_IDX (its ORDER BY is the index's expression under the index's condition). */
static void test_pg_every_statement_plans(void **state) {
        POSTGRESQL_ONLY("PostgreSQL's EXPLAIN of every statement (test_query_plans is SQLite's)");

        _cleanup_(repository_freep) Repository *r = open_memory();
        PgPlans c = {};

        /* On empty tables a scan is cheapest; this asks whether the index can be used at all. */
        assert_int_equal(db_exec(repository_get_db(r), "SET enable_seqscan = off"), 0);
        assert_int_equal(repository_query_plans(r, pg_plan_collect, &c), 0);
        assert_int_equal(c.statements, _SQL_MAX);
        assert_true(c.rows >= c.statements);

        /* Unbound, JOB_NAME = NULL folds the run.id query to nothing; with a job name it reads the index. */
        {
                _cleanup_free_ char *q = NULL;
                DbStatement *s = NULL;
                bool index = false;
                int k;

                assert_true(asprintf(&q, "EXPLAIN %s", repository_sql(r, SQL_MAX_RUN_ID)) > 0);
                assert_int_equal(db_prepare(repository_get_db(r), q, &s), 0);
                assert_int_equal(db_bind_text(s, 1, "alpha"), 0);
                while ((k = db_step(s)) == DB_ROW)
                        index = index || strstr(db_column_text(s, 0), "batchd_run_id_idx");
                assert_int_equal(k, DB_DONE);
                db_reset(s);
                assert_true(index);
        }
}

/* Spring's tables, ours, the version table; reopening applies nothing twice. */
static void test_pg_open_creates_schema(void **state) {
        POSTGRESQL_ONLY("the PostgreSQL schema and BATCHD_SCHEMA_VERSION");

        _cleanup_free_ char *uri = test_location(NULL, NULL);
        _cleanup_(repository_freep) Repository *r = NULL;

        assert_int_equal(repository_open(uri, 0, &r, NULL), 0);
        assert_int_equal(repository_schema_version(r), (int) schema_migrations_postgresql_count);
        r = repository_free(r);

        assert_int_equal(test_query_int(uri, "SELECT COUNT(*) FROM information_schema.tables WHERE "
                                             "table_schema = current_schema() AND table_name LIKE 'batch\\_%'"), 6);
        /* Ours by name: later migrations add more (the cluster's, ...). */
        assert_int_equal(test_query_int(uri, "SELECT COUNT(*) FROM information_schema.tables WHERE "
                                             "table_schema = current_schema() AND table_name IN "
                                             "('batchd_job_schedule', 'batchd_job_nonrun', 'batchd_schema_version', '"
                                             "batchd_job_last_execution')"),
                         4);
        assert_int_equal(test_query_int(uri, "SELECT COUNT(*) FROM information_schema.sequences WHERE "
                                             "sequence_schema = current_schema() AND sequence_name LIKE 'batch\\_%\\_seq'"), 3);
        assert_int_equal(test_query_int(uri, "SELECT VERSION FROM BATCHD_SCHEMA_VERSION"),
                         (int64_t) schema_migrations_postgresql_count);
        assert_int_equal(repository_open(uri, 0, &r, NULL), 0);
        assert_int_equal(repository_schema_version(r), (int) schema_migrations_postgresql_count);
        assert_int_equal(test_query_int(uri, "SELECT COUNT(*) FROM BATCHD_SCHEMA_VERSION"), 1);
}

/* The application's own tables beside ours are fine on PostgreSQL; a newer schema is refused, untouched; a
 * read-only opener migrates nothing and says what to do. */
static void test_pg_foreign_and_future(void **state) {
        POSTGRESQL_ONLY("PostgreSQL's version table and shared databases");

        _cleanup_free_ char *shared = test_location(NULL, NULL), *future = test_location(NULL, NULL),
                            *behind = test_location(NULL, NULL);
        _cleanup_(repository_freep) Repository *r = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL;

        test_exec(shared, "CREATE TABLE customers (id INTEGER); INSERT INTO customers VALUES (1)");
        assert_int_equal(repository_open(shared, 0, &r, NULL), 0);
        params_add(&p, "x=1");
        assert_int_equal(repository_create_execution(r, "j", &p, 0, &e, NULL), 0);
        r = repository_free(r);
        assert_int_equal(test_query_int(shared, "SELECT COUNT(*) FROM customers"), 1);

        test_exec(future, "CREATE TABLE BATCHD_SCHEMA_VERSION (VERSION INTEGER NOT NULL); "
                          "INSERT INTO BATCHD_SCHEMA_VERSION VALUES (99)");
        assert_int_equal(repository_open(future, 0, &r, &error), -EPROTONOSUPPORT);
        assert_string_equal(error.name, BATCH_ERROR_DATABASE);
        assert_non_null(strstr(error.message, "has schema version 99, newer than the"));
        assert_int_equal(test_query_int(future, "SELECT COUNT(*) FROM information_schema.tables WHERE "
                                                "table_schema = current_schema()"), 1);
        sd_bus_error_free(&error);
        assert_int_equal(repository_open(future, REPOSITORY_READ_ONLY, &r, &error), -EPROTONOSUPPORT);
        sd_bus_error_free(&error);

        assert_int_equal(repository_open(behind, REPOSITORY_READ_ONLY, &r, &error), -EPROTONOSUPPORT);
        assert_non_null(strstr(error.message, "has schema version 0 but"));
        assert_non_null(strstr(error.message, "start batchd once to upgrade it"));
        assert_int_equal(test_query_int(behind, "SELECT COUNT(*) FROM information_schema.tables WHERE "
                                                "table_schema = current_schema()"), 0);
        assert_int_equal(repository_open(behind, 0, &r, NULL), 0);
        r = repository_free(r);
        assert_int_equal(repository_open(behind, REPOSITORY_READ_ONLY, &r, NULL), 0);
        assert_int_equal(repository_create_execution(r, "j", &p, 0, &e, &error), -EROFS);
}

/* A database Spring Batch's initializer created: schema/postgresql/001 applied by hand, as
 * spring.batch.jdbc.initialize-schema would, and a row Spring wrote. batchd adopts it (ours from 002 on) and
 * reads the row; its own ids continue Spring's sequences. */
static void test_pg_adopt_spring_database(void **state) {
        POSTGRESQL_ONLY("Spring Batch's schema-postgresql.sql");

        _cleanup_free_ char *uri = test_location(NULL, NULL);
        _cleanup_(repository_freep) Repository *r = NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL, *mine = NULL;
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;

        test_exec(uri, schema_migrations_postgresql[0]);
        test_exec(uri,
                "INSERT INTO BATCH_JOB_INSTANCE VALUES (nextval('BATCH_JOB_SEQ'), 0, 'springJob', "
                "'d41d8cd98f00b204e9800998ecf8427e');"
                "INSERT INTO BATCH_JOB_EXECUTION VALUES (nextval('BATCH_JOB_EXECUTION_SEQ'), 2, 1, "
                "'2024-01-15 10:00:00', '2024-01-15 10:00:00.1', '2024-01-15 10:00:01', 'COMPLETED', 'COMPLETED', "
                "'', '2024-01-15 10:00:01');"
                "INSERT INTO BATCH_JOB_EXECUTION_PARAMS VALUES (1, 'run.id', 'java.lang.Long', '41', 'Y');"
                "INSERT INTO BATCH_JOB_EXECUTION_CONTEXT VALUES (1, '{}', NULL);");

        assert_int_equal(repository_open(uri, 0, &r, NULL), 0);
        assert_int_equal(repository_schema_version(r), (int) schema_migrations_postgresql_count);
        assert_int_equal(repository_get_execution(r, 1, &e, NULL), 0);
        assert_string_equal(e->job_name, "springJob");
        assert_int_equal(e->status, BATCH_STATUS_COMPLETED);
        assert_true(e->end_time - e->start_time == 900000);
        assert_int_equal(e->parameters.n, 1);

        /* the run.id incrementer continues Spring's, and the ids its sequences */
        assert_int_equal(repository_next_parameters(r, "springJob", NULL, &p, NULL), 0);
        assert_int_equal(repository_create_execution(r, "springJob", &p, 0, &mine, NULL), 0);
        assert_int_equal(mine->id, 2);
        assert_int_equal(test_query_int(uri, "SELECT MAX(CAST(PARAMETER_VALUE AS BIGINT)) FROM "
                                             "BATCH_JOB_EXECUTION_PARAMS WHERE PARAMETER_NAME = 'run.id'"), 42);
}

/* A launcher that finds the instance row locked by another node's launch waits no longer than its lock timeout
 * (the daemon sets a few milliseconds: nothing waits in its event loop) and gets DatabaseBusy, which the daemon
 * retries from a timer (db-retry.h); once the other launch committed, the retry sees its execution. */
static void test_pg_lock_wait_is_busy(void **state) {
        POSTGRESQL_ONLY("the instance row lock at READ COMMITTED");

        _cleanup_free_ char *uri = test_location(NULL, NULL);
        _cleanup_(repository_freep) Repository *a = NULL, *b = NULL;
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL, *other = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        TestStep failing[] = { { "s", .fail = true } };
        RepositoryTransaction t;
        usec_t start;

        assert_int_equal(repository_open(uri, 0, &a, NULL), 0);
        assert_int_equal(repository_open(uri, 0, &b, NULL), 0);
        repository_set_busy_timeout(b, 50);
        params_add(&p, "x=1");
        assert_int_equal(run_job(a, "j", &p, failing, 1, NULL, NULL), 0);

        /* a's restart is under way: its transaction holds the instance row */
        assert_int_equal(repository_transaction_open(a, &t, NULL), 0);
        assert_int_equal(repository_create_execution(a, "j", &p, 0, &e, NULL), 0);

        start = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(repository_create_execution(b, "j", &p, 0, &other, &error), -EAGAIN);
        assert_true(now_usec(CLOCK_MONOTONIC) - start < 2 * USEC_PER_SEC);
        assert_string_equal(error.name, BATCH_ERROR_DATABASE_BUSY);
        assert_null(other);
        sd_bus_error_free(&error);

        assert_int_equal(repository_transaction_commit(&t, NULL), 0);
        assert_int_equal(repository_create_execution(b, "j", &p, 0, &other, &error), -EBUSY);
        assert_string_equal(error.name, BATCH_ERROR_JOB_EXECUTION_ALREADY_RUNNING);
        assert_int_equal(test_query_int(uri, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION"), 2);
}

/* Three nodes start at once against an empty database: the schema is created once, every opener succeeds. */
static void test_pg_migration_race(void **state) {
        POSTGRESQL_ONLY("concurrent migrations under pg_advisory_xact_lock");

        _cleanup_free_ char *uri = test_location(NULL, NULL);
        enum { N = 3 };
        pid_t pids[N];
        int go[2];

        assert_int_equal(pipe(go), 0);
        for (int i = 0; i < N; i++) {
                pids[i] = fork();
                assert_true(pids[i] >= 0);
                if (pids[i] == 0) {
                        Repository *x = NULL;
                        sd_bus_error err = SD_BUS_ERROR_NULL;
                        char c;
                        int k;

                        close(go[1]);
                        (void) read(go[0], &c, 1);
                        k = repository_open(uri, 0, &x, &err);
                        if (k < 0)
                                fprintf(stderr, "open: %d %s\n", k, strna(err.message));
                        _exit(k < 0 ? 1 : repository_schema_version(x) == (int) schema_migrations_postgresql_count ? 0 : 2);
                }
        }
        close(go[0]);
        close(go[1]);
        for (int i = 0; i < N; i++) {
                int status;

                assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
                assert_true(WIFEXITED(status));
                assert_int_equal(WEXITSTATUS(status), 0);
        }
        assert_int_equal(test_query_int(uri, "SELECT COUNT(*) FROM BATCHD_SCHEMA_VERSION"), 1);
        assert_int_equal(test_query_int(uri, "SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'batchd_run_id_idx'"), 1);
}

int main(void) {
        int failed;
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_open_creates_schema),
                cmocka_unit_test(test_seed_002),
                cmocka_unit_test(test_seed_003),
                cmocka_unit_test(test_seed_000),
                cmocka_unit_test(test_next_parameters_keeps_last_and_overrides),
                cmocka_unit_test(test_next_run_id_is_max_over_instances),
                cmocka_unit_test(test_already_running),
                cmocka_unit_test(test_unknown_and_not_restartable),
                cmocka_unit_test(test_abandon),
                cmocka_unit_test(test_step_restart_with_context),
                cmocka_unit_test(test_last_step_is_newest_by_id),
                cmocka_unit_test(test_timestamps_zone),
                cmocka_unit_test(test_start_limit_and_allow_start_if_complete),
                cmocka_unit_test(test_optimistic_locking),
                cmocka_unit_test(test_short_context),
                cmocka_unit_test(test_queries),
                cmocka_unit_test(test_query_plans),
                cmocka_unit_test(test_lists_are_summaries),
                cmocka_unit_test(test_page_limit),
                cmocka_unit_test(test_fail_running),
                cmocka_unit_test(test_retention),
                cmocka_unit_test(test_purge),
                cmocka_unit_test(test_job_enabled_switch),
                cmocka_unit_test(test_bad_input),
                cmocka_unit_test(test_bad_database_files),
                cmocka_unit_test(test_adopt_spring_database),
                cmocka_unit_test(test_read_only),
                cmocka_unit_test(test_nested_transactions),
                cmocka_unit_test(test_concurrent_launchers),
                cmocka_unit_test(test_transaction_guard_under_foreign_lock),
                cmocka_unit_test(test_faults_leave_nothing_half_written),
                cmocka_unit_test(test_lost_commit_reply_applied_once),
                cmocka_unit_test(test_orphan_step_repaired),
                cmocka_unit_test(test_replaced_file),
                cmocka_unit_test(test_restart_launchers),
                cmocka_unit_test(test_schedule_store),
                cmocka_unit_test(test_pg_every_statement_plans),
                cmocka_unit_test(test_pg_open_creates_schema),
                cmocka_unit_test(test_pg_foreign_and_future),
                cmocka_unit_test(test_pg_adopt_spring_database),
                cmocka_unit_test(test_pg_migration_race),
                cmocka_unit_test(test_pg_lock_wait_is_busy),
        };

        /* Timestamps are local time, as Spring stores them; make the tests independent of the machine's zone. */
        setenv("TZ", "UTC", 1);
        tzset();
        log_set_max_level(LOG_WARNING);

        backend = DB_BACKEND_SQLITE;
        failed = cmocka_run_group_tests_name("sqlite", tests, NULL, NULL);
        if (!test_pg_available())
                return failed;
        backend = DB_BACKEND_POSTGRESQL;
        failed += cmocka_run_group_tests_name("postgresql", tests, NULL, NULL);
        return failed;
}
