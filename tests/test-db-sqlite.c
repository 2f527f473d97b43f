/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The SQLite backend of db.h (db-sqlite.c) on real database files: the errno values db.h promises, statements
 * that are prepared once and reused, Spring's id sequences, transactions and fault injection. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "db.h"
#include "log.h"
#include "tests.h"

static Db *open_path(const char *path) {
        _cleanup_free_ char *message = NULL;
        Db *db = NULL;

        assert_int_equal(db_open(path, 0, &db, &message), 0);
        assert_null(message);
        assert_int_equal(db_backend(db), DB_BACKEND_SQLITE);
        assert_string_equal(db_location(db), path);
        return db;
}

static int64_t query_int(Db *db, const char *sql) {
        _cleanup_db_reset_ DbStatement *s = NULL;

        assert_int_equal(db_prepare(db, sql, &s), 0);
        assert_int_equal(db_step(s), DB_ROW);
        return db_column_int64(s, 0);
}

static void test_rows_and_parameters(void **state) {
        _cleanup_(db_freep) Db *db = open_path(":memory:");
        DbStatement *ins = NULL, *sel = NULL;
        char buf[16];

        assert_int_equal(db_exec(db, "CREATE TABLE T (ID INTEGER PRIMARY KEY, NAME TEXT, N INTEGER)"), 0);
        assert_int_equal(db_prepare(db, "INSERT INTO T VALUES (?1, ?2, ?3)", &ins), 0);
        assert_string_equal(db_statement_sql(ins), "INSERT INTO T VALUES (?1, ?2, ?3)");
        for (int i = 1; i <= 3; i++) {
                /* The text is copied at bind time: the buffer is reused before the statement runs. */
                snprintf(buf, sizeof(buf), "name-%d", i);
                assert_int_equal(db_bind_int64(ins, 1, i), 0);
                assert_int_equal(db_bind_text(ins, 2, i == 2 ? NULL : buf), 0);
                strcpy(buf, "overwritten");
                if (i != 3)
                        assert_int_equal(db_bind_int64(ins, 3, INT64_MAX - i), 0);
                assert_int_equal(db_step(ins), DB_DONE);
                assert_int_equal(db_changes(db), 1);
                db_reset(ins);
        }

        assert_int_equal(db_prepare(db, "SELECT ID, NAME, N FROM T WHERE ID >= ?1 ORDER BY ID", &sel), 0);
        /* The same statement twice: reset forgets rows and bindings. */
        for (int round = 0; round < 2; round++) {
                assert_int_equal(db_bind_int64(sel, 1, 1), 0);
                assert_int_equal(db_step(sel), DB_ROW);
                assert_int_equal(db_column_int64(sel, 0), 1);
                assert_string_equal(db_column_text(sel, 1), "name-1");
                assert_int_equal(db_column_bytes(sel, 1), strlen("name-1"));
                assert_true(db_column_int64(sel, 2) == INT64_MAX - 1);
                assert_int_equal(db_step(sel), DB_ROW);
                assert_true(db_column_is_null(sel, 1));
                assert_null(db_column_text(sel, 1));
                assert_int_equal(db_step(sel), DB_ROW);
                assert_true(db_column_is_null(sel, 2));
                assert_false(db_column_is_null(sel, 1));
                assert_int_equal(db_step(sel), DB_DONE);
                db_reset(sel);
        }
}

static void test_errors(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_path(dir, "db.sqlite"), *garbage = test_path(dir, "garbage"),
                            *missing = test_path(dir, "no/such/dir.db");
        _cleanup_(db_freep) Db *db = open_path(path), *other = open_path(path);
        _cleanup_free_ char *message = NULL;
        DbStatement *s = NULL;
        Db *x = NULL;

        assert_int_equal(db_exec(db, "CREATE TABLE T (ID INTEGER PRIMARY KEY)"), 0);
        assert_int_equal(db_exec(db, "INSERT INTO T VALUES (1)"), 0);
        /* A constraint */
        assert_int_equal(db_exec(db, "INSERT INTO T VALUES (1)"), -EEXIST);
        assert_non_null(strstr(db_errmsg(db), "UNIQUE constraint failed"));
        assert_int_equal(db_prepare(db, "INSERT INTO T VALUES (?1)", &s), 0);
        assert_int_equal(db_bind_int64(s, 1, 1), 0);
        assert_int_equal(db_step(s), -EEXIST);
        db_reset(s);
        /* A syntax error is not something a caller can retry: EIO. */
        assert_int_equal(db_prepare(db, "SELEKT 1", &s), -EIO);
        assert_int_equal(db_prepare(db, "  ", &s), -EINVAL);

        /* Another connection holds the write lock: EAGAIN, after the busy timeout. */
        assert_int_equal(db_begin(other), 0);
        assert_true(db_in_transaction(other));
        db_set_busy_timeout(db, 10);
        assert_int_equal(db_begin(db), -EAGAIN);
        assert_false(db_in_transaction(db));
        assert_non_null(strstr(db_errmsg(db), "locked"));
        assert_int_equal(db_rollback(other), 0);
        assert_false(db_in_transaction(other));
        assert_int_equal(db_begin(db), 0);
        assert_int_equal(db_commit(db), 0);

        /* Not a database */
        test_write_file(garbage, "this is not a database, just some text that is long enough to matter..........."
                                 "................................................................................");
        assert_int_equal(db_open(garbage, 0, &x, &message), -EBADMSG);
        assert_non_null(strstr(message, "is not a usable SQLite database"));
        message = mfree(message);
        assert_null(x);
        assert_int_equal(db_open(missing, 0, &x, &message), -EACCES);
        assert_non_null(strstr(message, "Failed to open the database in"));
        message = mfree(message);
        assert_int_equal(db_open(missing, DB_OPEN_READ_ONLY, &x, NULL), -EACCES);
        assert_null(x);
}

static void test_read_only(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_path(dir, "db.sqlite");
        _cleanup_(db_freep) Db *db = open_path(path);
        pid_t pid;
        int status;

        assert_int_equal(db_exec(db, "CREATE TABLE T (ID INTEGER PRIMARY KEY)"), 0);
        db = db_free(db);

        {
                _cleanup_(db_freep) Db *ro = NULL;

                assert_int_equal(db_open(path, DB_OPEN_READ_ONLY, &ro, NULL), 0);
                assert_int_equal(query_int(ro, "SELECT COUNT(*) FROM T"), 0);
                assert_int_equal(db_exec(ro, "INSERT INTO T VALUES (1)"), -EROFS);
        }

        /* A file the caller may not write, opened for writing: refused at open. As root that needs an
         * unprivileged process. */
        assert_int_equal(chmod(path, 0444), 0);
        assert_int_equal(chmod(dir, 0755), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                _cleanup_free_ char *message = NULL;
                Db *x = NULL;
                int k;

                if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
                        _exit(2);
                k = db_open(path, 0, &x, &message);
                _exit(k == -EROFS && message && strstr(message, "is read-only") && !x ? 0 : 1);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_wal_and_pragmas(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_path(dir, "db.sqlite");
        _cleanup_(db_freep) Db *db = open_path(path), *memory = open_path(":memory:");
        _cleanup_db_reset_ DbStatement *s = NULL;

        assert_int_equal(query_int(db, "PRAGMA foreign_keys"), 1);
        assert_int_equal(query_int(db, "PRAGMA synchronous"), 1);     /* NORMAL */
        assert_int_equal(db_prepare(db, "PRAGMA journal_mode", &s), 0);
        assert_int_equal(db_step(s), DB_ROW);
        assert_string_equal(db_column_text(s, 0), "wal");
        assert_int_equal(query_int(memory, "PRAGMA foreign_keys"), 1);
}

static void test_next_id(void **state) {
        _cleanup_(db_freep) Db *db = open_path(":memory:");
        int64_t id = 0;

        assert_int_equal(db_exec(db, "CREATE TABLE BATCH_JOB_SEQ (ID INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL)"), 0);
        for (int64_t i = 1; i <= 5; i++) {
                assert_int_equal(db_next_id(db, "BATCH_JOB_SEQ", &id), 0);
                assert_int_equal(id, i);
                /* Spring's SqliteMaxValueIncrementer keeps one row */
                assert_int_equal(query_int(db, "SELECT COUNT(*) FROM BATCH_JOB_SEQ"), 1);
        }
        /* The name goes into SQL text: nothing but a sequence's name is accepted. */
        assert_int_equal(db_next_id(db, "BATCH_JOB_SEQ; DROP TABLE X", &id), -EINVAL);
        assert_int_equal(db_next_id(db, "batch_job_seq", &id), -EINVAL);
        assert_int_equal(db_next_id(db, "", &id), -EINVAL);
        assert_int_equal(db_next_id(db, "NO_SUCH_SEQ", &id), -EIO);
        assert_int_equal(id, 5);

        /* Its statements fail by injection like any other. */
        assert_int_equal(db_inject_fault(db, "INSERT INTO BATCH_JOB_SEQ", 2, 1, -ENOSPC), 0);
        assert_int_equal(db_next_id(db, "BATCH_JOB_SEQ", &id), 0);
        assert_int_equal(id, 6);
        assert_int_equal(db_next_id(db, "BATCH_JOB_SEQ", &id), -ENOSPC);
        assert_non_null(strstr(db_errmsg(db), "test fault injection"));
        assert_int_equal(db_next_id(db, "BATCH_JOB_SEQ", &id), 0);
        assert_int_equal(id, 7);
}

static void test_fault_injection(void **state) {
        _cleanup_(db_freep) Db *db = open_path(":memory:");

        assert_int_equal(db_exec(db, "CREATE TABLE T (ID INTEGER PRIMARY KEY)"), 0);
        assert_int_equal(db_inject_fault(db, "BEGIN", 1, 2, -EAGAIN), 0);
        assert_int_equal(db_begin(db), -EAGAIN);
        assert_int_equal(db_begin(db), -EAGAIN);
        assert_false(db_in_transaction(db));
        assert_int_equal(db_begin(db), 0);
        assert_true(db_in_transaction(db));
        assert_int_equal(db_inject_fault(db, "COMMIT", 1, 1, -EIO), 0);
        assert_int_equal(db_commit(db), -EIO);
        assert_true(db_in_transaction(db));
        assert_int_equal(db_commit(db), 0);
        assert_false(db_in_transaction(db));
}

/* A PostgreSQL URI is never taken for a file name: with no server behind it, the open fails with a reason. */
static void test_postgresql_location(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *message = NULL, *uri = NULL;
        Db *db = NULL;

        assert_true(db_location_is_postgresql("postgresql://localhost/batch"));
        assert_true(db_location_is_postgresql("postgres://u@h/db"));
        assert_false(db_location_is_postgresql("/var/lib/batchd/batch.db"));
        assert_false(db_location_is_postgresql(":memory:"));
        assert_true(asprintf(&uri, "postgresql:///batch?host=%s&connect_timeout=1", dir) > 0);
        assert_true(db_open(uri, 0, &db, &message) < 0);
        assert_non_null(message);
        assert_null(db);
        /* and no SQLite file of that name was created */
        assert_int_equal(access("postgresql:", F_OK), -1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rows_and_parameters),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_read_only),
                cmocka_unit_test(test_wal_and_pragmas),
                cmocka_unit_test(test_next_id),
                cmocka_unit_test(test_fault_injection),
                cmocka_unit_test(test_postgresql_location),
        };

        log_set_max_level(LOG_CRIT);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
