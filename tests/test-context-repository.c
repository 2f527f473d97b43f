/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The repository and Spring Batch's context formats: contexts a Spring Batch 5 application wrote into the
 * shared tables are read, and contexts are written in the configured format (context-format.h). */

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "batch-error.h"
#include "db.h"
#include "jdk-context-vectors.h"
#include "repository.h"
#include "tests.h"

/* The suite runs once per backend: SQLite files, then a fresh database per case on the PostgreSQL of
 * $BATCHD_TEST_POSTGRESQL. */
static DbBackend backend;

static char *test_location(const char *dir) {
        static unsigned counter;
        char name[32];

        if (backend == DB_BACKEND_SQLITE)
                return test_path(dir, "batch.db");
        (void) snprintf(name, sizeof(name), "ctx_%u", counter++);
        return test_pg_database(name);
}

static Db *open_db(const char *location, DbOpenFlags flags) {
        _cleanup_free_ char *message = NULL;
        Db *db = NULL;

        if (db_open(location, flags, &db, &message) < 0)
                fail_msg("db_open(%s): %s", location, strna(message));
        return db;
}

/* What a Spring application does: its own connection, SHORT_CONTEXT only when the text is short. */
static void spring_writes(const char *path, const char *table, const char *id_column, int64_t id, const char *text) {
        _cleanup_free_ char *sql = NULL;
        _cleanup_(db_freep) Db *db = open_db(path, 0);
        DbStatement *s = NULL;

        assert_true(asprintf(&sql, "UPDATE %s SET SHORT_CONTEXT = ?1, SERIALIZED_CONTEXT = NULL WHERE %s = ?2",
                             table, id_column) > 0);
        assert_int_equal(db_prepare(db, sql, &s), 0);
        assert_int_equal(db_bind_text(s, 1, text), 0);
        assert_int_equal(db_bind_int64(s, 2, id), 0);
        assert_int_equal(db_step(s), DB_DONE);
        assert_int_equal(db_changes(db), 1);
        db_reset(s);
}

static char *column(const char *path, const char *sql, int64_t id) {
        _cleanup_(db_freep) Db *db = open_db(path, DB_OPEN_READ_ONLY);
        DbStatement *s = NULL;
        char *v = NULL;

        assert_int_equal(db_prepare(db, sql, &s), 0);
        assert_int_equal(db_bind_int64(s, 1, id), 0);
        assert_int_equal(db_step(s), DB_ROW);
        if (db_column_text(s, 0))
                v = strdup(db_column_text(s, 0));
        db_reset(s);
        return v;
}

static void assert_context(const ExecutionContext *c, const char *expected) {
        _cleanup_free_ char *s = NULL;

        assert_int_equal(execution_context_serialize(c, &s), 0);
        assert_string_equal(s, expected);
}

static JobExecution *new_execution(Repository *r, StepExecution **ret_step) {
        JobExecution *e = NULL;
        JobParameters p = {};

        assert_int_equal(repository_create_execution(r, "j", &p, 0, &e, NULL), 0);
        if (ret_step)
                assert_int_equal(repository_add_step_execution(r, e, "s", NULL, ret_step, NULL), 0);
        return e;
}

static void test_read_spring_contexts(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_location(dir);
        _cleanup_(repository_freep) Repository *r = NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL, *back = NULL;
        _cleanup_(step_execution_freep) StepExecution *s = NULL;
        StepExecution **steps = NULL;
        size_t n = 0;

        assert_int_equal(repository_open(path, 0, &r, NULL), 0);
        e = new_execution(r, &s);

        /* The job context from DefaultExecutionContextSerializer, the step's from the Jackson serializer. */
        spring_writes(path, "BATCH_JOB_EXECUTION_CONTEXT", "JOB_EXECUTION_ID", e->id, JDK_CONTEXT_SCALARS);
        spring_writes(path, "BATCH_STEP_EXECUTION_CONTEXT", "STEP_EXECUTION_ID", s->id,
                      "{\"@class\":\"java.util.HashMap\",\"FlatFileItemReader.read.count\":25000,"
                      "\"batch.taskletType\":\"chunk\",\"total\":[\"java.lang.Long\",5]}");

        assert_int_equal(repository_get_execution(r, e->id, &back, NULL), 0);
        assert_context(back->context,
                       "{\"bool\":true,\"double\":1.5,\"int\":42,\"long\":5000000000,\"string\":\"Hello, wörld\"}");
        assert_int_equal(execution_context_get_java_type(back->context, "int"), JAVA_TYPE_INTEGER);

        assert_int_equal(repository_get_step_executions(r, e->id, &steps, &n), 0);
        assert_int_equal(n, 1);
        assert_context(steps[0]->context,
                       "{\"FlatFileItemReader.read.count\":25000,\"batch.taskletType\":\"chunk\",\"total\":5}");
        assert_int_equal(execution_context_get_java_type(steps[0]->context, "total"), JAVA_TYPE_LONG);
        step_execution_array_free(steps, n);
}

static void test_unreadable_context(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_location(dir);
        _cleanup_(repository_freep) Repository *r = NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL, *back = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        assert_int_equal(repository_open(path, 0, &r, NULL), 0);
        e = new_execution(r, NULL);
        /* A java.util.Date is beyond what batchd reads: a named error, not a crash or a wrong context. */
        spring_writes(path, "BATCH_JOB_EXECUTION_CONTEXT", "JOB_EXECUTION_ID", e->id, JDK_CONTEXT_DATE);
        assert_int_equal(repository_get_execution(r, e->id, &back, &error), -EILSEQ);
        assert_null(back);
        assert_string_equal(error.name, BATCH_ERROR_DATABASE);
        assert_non_null(strstr(error.message, "cannot be read"));
}

/* A restart never resumes from part of a context: it fails, saying which context. */
static void test_restart_from_unreadable_context(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_location(dir);
        _cleanup_(repository_freep) Repository *r = NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL, *again = NULL;
        _cleanup_(step_execution_freep) StepExecution *s = NULL, *last = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        JobParameters p = {};

        assert_int_equal(repository_open(path, 0, &r, NULL), 0);
        e = new_execution(r, &s);
        s->status = BATCH_STATUS_FAILED;
        assert_int_equal(repository_update_step_execution(r, s, NULL), 0);
        e->status = BATCH_STATUS_FAILED;
        e->end_time = now_usec(CLOCK_REALTIME);
        assert_int_equal(repository_update_execution(r, e, NULL), 0);

        /* The step's context holds a class batchd does not read. */
        spring_writes(path, "BATCH_STEP_EXECUTION_CONTEXT", "STEP_EXECUTION_ID", s->id, JDK_CONTEXT_DATE);
        assert_int_equal(repository_create_execution(r, "j", &p, 0, &again, NULL), 0);
        assert_int_equal(repository_should_start_step(r, again, "s", false, 0, &last, &error), -EILSEQ);
        assert_string_equal(error.name, BATCH_ERROR_DATABASE);
        assert_non_null(strstr(error.message, "of step s cannot be read"));
        sd_bus_error_free(&error);
        again->status = BATCH_STATUS_FAILED;
        again->end_time = now_usec(CLOCK_REALTIME);
        assert_int_equal(repository_update_execution(r, again, NULL), 0);

        /* The job's context too: the launch itself fails. */
        spring_writes(path, "BATCH_JOB_EXECUTION_CONTEXT", "JOB_EXECUTION_ID", again->id,
                      "{\"@class\":\"java.util.HashMap\",\"when\":[\"java.util.Date\",0]}");
        again = job_execution_free(again);
        assert_int_equal(repository_create_execution(r, "j", &p, 0, &again, &error), -EILSEQ);
        assert_null(again);
        assert_string_equal(error.name, BATCH_ERROR_DATABASE);
        assert_non_null(strstr(error.message, "cannot be read"));
}

static void check_write(ContextFormat f, const char *prefix) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_location(dir), *serialized = NULL, *shrt = NULL,
                              *expected = NULL;
        _cleanup_(repository_freep) Repository *r = NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL, *back = NULL;
        _cleanup_(step_execution_freep) StepExecution *s = NULL;
        StepContribution contribution = { .read_count = 2 };

        assert_int_equal(repository_open(path, 0, &r, NULL), 0);
        repository_set_context_format(r, f);
        e = new_execution(r, &s);

        /* The new rows carry the empty context in the format already. */
        serialized = column(path, "SELECT SERIALIZED_CONTEXT FROM BATCH_JOB_EXECUTION_CONTEXT WHERE JOB_EXECUTION_ID = ?1",
                            e->id);
        assert_true(strneq(serialized, prefix, strlen(prefix)));
        serialized = mfree(serialized);

        assert_int_equal(execution_context_put_int64(e->context, "count", 5), 0);
        assert_int_equal(execution_context_put_string(e->context, "name", "x"), 0);
        assert_int_equal(execution_context_put_typed(e->context, "small", json_object_new_int(7), JAVA_TYPE_INTEGER), 0);
        assert_int_equal(execution_context_put_string(s->context, "current.index", "3"), 0);
        assert_int_equal(repository_commit_step(r, s, &contribution, e, NULL), 0);

        assert_int_equal(execution_context_serialize_as(e->context, f, &expected, NULL), 0);
        serialized = column(path, "SELECT SERIALIZED_CONTEXT FROM BATCH_JOB_EXECUTION_CONTEXT WHERE JOB_EXECUTION_ID = ?1",
                            e->id);
        shrt = column(path, "SELECT SHORT_CONTEXT FROM BATCH_JOB_EXECUTION_CONTEXT WHERE JOB_EXECUTION_ID = ?1", e->id);
        assert_string_equal(serialized, expected);
        assert_string_equal(shrt, expected);
        serialized = mfree(serialized);
        serialized = column(path, "SELECT SERIALIZED_CONTEXT FROM BATCH_STEP_EXECUTION_CONTEXT WHERE STEP_EXECUTION_ID = ?1",
                            s->id);
        assert_true(strneq(serialized, prefix, strlen(prefix)));

        /* Read back, whatever the format: same values, same classes. */
        assert_int_equal(repository_get_execution(r, e->id, &back, NULL), 0);
        assert_context(back->context, "{\"count\":5,\"name\":\"x\",\"small\":7}");
        if (f != CONTEXT_FORMAT_JSON) {
                assert_int_equal(execution_context_get_java_type(back->context, "count"), JAVA_TYPE_LONG);
                assert_int_equal(execution_context_get_java_type(back->context, "small"), JAVA_TYPE_INTEGER);
        }
}

static void test_write_formats(void **state) {
        check_write(CONTEXT_FORMAT_JSON, "{");
        check_write(CONTEXT_FORMAT_JAVA, "rO0ABXNyABFqYXZhLnV0aWwuSGFzaE1hcA");
        check_write(CONTEXT_FORMAT_JACKSON, "{\"@class\":\"java.util.HashMap\"");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_read_spring_contexts),
                cmocka_unit_test(test_unreadable_context),
                cmocka_unit_test(test_restart_from_unreadable_context),
                cmocka_unit_test(test_write_formats),
        };

        int failed;

        log_set_max_level(LOG_CRIT);
        backend = DB_BACKEND_SQLITE;
        failed = cmocka_run_group_tests_name("sqlite", tests, NULL, NULL);
        if (!test_pg_available())
                return failed;
        backend = DB_BACKEND_POSTGRESQL;
        failed += cmocka_run_group_tests_name("postgresql", tests, NULL, NULL);
        return failed;
}
