/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The conformance suite of db.h: every case runs against every backend available, SQLite on a temporary file
 * and PostgreSQL at $BATCHD_TEST_POSTGRESQL (tests/pgserver.py run starts one), and must see the same results.
 * A backend that is not available skips each of its cases with the reason. */

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/wait.h>
#include <time.h>
#include <cmocka.h>

#include "db-postgresql.h"
#include "db.h"
#include "schema.h"
#include "tests.h"

static DbBackend current;
static char *sqlite_dir;

typedef struct Fixture {
        Db *db;
        char *location;
} Fixture;

static uint64_t now_msec(void) {
        struct timespec ts;

        assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* A location of the current backend, or NULL with the reason printed. */
static char *backend_location(const char *name) {
        char *p;

        if (current == DB_BACKEND_POSTGRESQL) {
                const char *uri = getenv("BATCHD_TEST_POSTGRESQL");

                if (isempty(uri)) {
                        print_message("SKIP: no PostgreSQL: %s\n",
                                      getenv("BATCHD_TEST_POSTGRESQL_SKIP") ?:
                                      "$BATCHD_TEST_POSTGRESQL is not set (run through tests/pgserver.py run)");
                        return NULL;
                }
                return strdup(uri);
        }
        if (asprintf(&p, "%s/%s.db", sqlite_dir, name) < 0)
                abort();
        return p;
}

static int open_or_skip(const char *location, Db **ret) {
        _cleanup_free_ char *m = NULL;
        int r;

        r = db_open(location, 0, ret, &m);
        if (r == -EPROTONOSUPPORT) {
                print_message("SKIP: backend not available: %s\n", strna(m));
                return r;
        }
        if (r < 0)
                print_message("db_open(%s): %s: %s\n", location, strerror(-r), strna(m));
        assert_int_equal(r, 0);
        return 0;
}

static int fixture_setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        static unsigned counter;
        char name[32];

        assert_non_null(f);
        *state = f;
        snprintf(name, sizeof(name), "t%u", counter++);
        f->location = backend_location(name);
        return 0;
}

static int fixture_teardown(void **state) {
        Fixture *f = *state;

        db_free(f->db);
        free(f->location);
        free(f);
        return 0;
}

/* Opens the fixture's connection, or skips the case with the reason printed. */
static Db *fixture_db(void **state) {
        Fixture *f = *state;

        if (!f->location || open_or_skip(f->location, &f->db) < 0)
                skip();
        return f->db;
}

static void exec_ok(Db *db, const char *sql) {
        int r = db_exec(db, sql);

        if (r < 0)
                print_message("%s: %s: %s\n", sql, strerror(-r), db_errmsg(db));
        assert_int_equal(r, 0);
}

static int64_t count_rows(Db *db, const char *sql) {
        DbStatement *s;
        int64_t n;
        int r;

        assert_int_equal(db_prepare(db, sql, &s), 0);
        r = db_step(s);
        if (r != DB_ROW)
                print_message("%s: %s: %s\n", sql, strerror(-r), db_errmsg(db));
        assert_int_equal(r, DB_ROW);
        n = db_column_int64(s, 0);
        assert_int_equal(db_step(s), DB_DONE);
        db_reset(s);
        return n;
}

static int insert_kv(DbStatement *s, int64_t k, const char *v) {
        int r;

        assert_int_equal(db_bind_int64(s, 1, k), 0);
        assert_int_equal(db_bind_text(s, 2, v), 0);
        r = db_step(s);
        db_reset(s);
        return r;
}

/* ---- cases ---- */

static void test_bind_step_columns(void **state) {
        Db *db = fixture_db(state);
        DbStatement *ins, *sel;

        exec_ok(db, "CREATE TABLE t_cols (id BIGINT PRIMARY KEY, name VARCHAR(100), n BIGINT)");
        assert_int_equal(db_prepare(db, "INSERT INTO t_cols (id, name, n) VALUES (?1, ?2, ?3)", &ins), 0);

        assert_int_equal(db_bind_int64(ins, 1, 1), 0);
        assert_int_equal(db_bind_text(ins, 2, "eins ünicode"), 0);
        assert_int_equal(db_bind_int64(ins, 3, INT64_MAX), 0);
        assert_int_equal(db_step(ins), DB_DONE);
        db_reset(ins);

        assert_int_equal(db_bind_int64(ins, 1, 2), 0);
        assert_int_equal(db_bind_text(ins, 2, NULL), 0);
        assert_int_equal(db_bind_int64(ins, 3, INT64_MIN), 0);
        assert_int_equal(db_step(ins), DB_DONE);
        db_reset(ins);

        /* Reset forgets bindings: an unbound parameter is NULL. */
        assert_int_equal(db_bind_int64(ins, 1, 3), 0);
        assert_int_equal(db_step(ins), DB_DONE);
        db_reset(ins);

        assert_int_equal(db_prepare(db, "SELECT id, name, n FROM t_cols WHERE id >= ?1 ORDER BY id", &sel), 0);
        assert_int_equal(db_bind_int64(sel, 1, 1), 0);
        assert_int_equal(db_step(sel), DB_ROW);
        assert_int_equal(db_column_int64(sel, 0), 1);
        assert_string_equal(db_column_text(sel, 1), "eins ünicode");
        assert_int_equal(db_column_bytes(sel, 1), strlen("eins ünicode"));
        assert_false(db_column_is_null(sel, 1));
        assert_true(db_column_int64(sel, 2) == INT64_MAX);
        assert_string_equal(db_column_text(sel, 2), "9223372036854775807");
        assert_int_equal(db_step(sel), DB_ROW);
        assert_int_equal(db_column_int64(sel, 0), 2);
        assert_true(db_column_is_null(sel, 1));
        assert_null(db_column_text(sel, 1));
        assert_true(db_column_int64(sel, 2) == INT64_MIN);
        assert_int_equal(db_step(sel), DB_ROW);
        assert_int_equal(db_column_int64(sel, 0), 3);
        assert_true(db_column_is_null(sel, 1));
        assert_true(db_column_is_null(sel, 2));
        assert_int_equal(db_step(sel), DB_DONE);
        db_reset(sel);

        /* The statement runs again after a reset, with new bindings. */
        assert_int_equal(db_bind_int64(sel, 1, 3), 0);
        assert_int_equal(db_step(sel), DB_ROW);
        assert_int_equal(db_column_int64(sel, 0), 3);
        assert_int_equal(db_step(sel), DB_DONE);
        db_reset(sel);
        assert_string_equal(db_statement_sql(sel), "SELECT id, name, n FROM t_cols WHERE id >= ?1 ORDER BY id");
}

static void test_parameter_twice(void **state) {
        Db *db = fixture_db(state);
        DbStatement *ins, *sel;

        exec_ok(db, "CREATE TABLE t_twice (a BIGINT, b BIGINT, c VARCHAR(20))");
        assert_int_equal(db_prepare(db, "INSERT INTO t_twice (a, b, c) VALUES (?1, ?1, ?2)", &ins), 0);
        assert_int_equal(insert_kv(ins, 42, "x"), DB_DONE);
        assert_int_equal(db_prepare(db, "SELECT b, c FROM t_twice WHERE a = ?1 AND b = ?1", &sel), 0);
        assert_int_equal(db_bind_int64(sel, 1, 42), 0);
        assert_int_equal(db_step(sel), DB_ROW);
        assert_int_equal(db_column_int64(sel, 0), 42);
        assert_string_equal(db_column_text(sel, 1), "x");
        assert_int_equal(db_step(sel), DB_DONE);
        db_reset(sel);
}

static void test_question_mark_in_literal(void **state) {
        Db *db = fixture_db(state);
        DbStatement *s;

        exec_ok(db, "CREATE TABLE \"t_q?1\" (v VARCHAR(40))");
        assert_int_equal(db_prepare(db,
                                    "INSERT INTO \"t_q?1\" (v) VALUES ('it''s ?1 or ?'), (?1) -- ?2 in a comment\n", &s),
                         0);
        assert_int_equal(db_bind_text(s, 1, "bound"), 0);
        assert_int_equal(db_step(s), DB_DONE);
        db_reset(s);
        assert_int_equal(db_prepare(db, "SELECT v /* ?3 */ FROM \"t_q?1\" ORDER BY v", &s), 0);
        assert_int_equal(db_step(s), DB_ROW);
        assert_string_equal(db_column_text(s, 0), "bound");
        assert_int_equal(db_step(s), DB_ROW);
        assert_string_equal(db_column_text(s, 0), "it's ?1 or ?");
        assert_int_equal(db_step(s), DB_DONE);
        db_reset(s);
}

static void test_unique_violation(void **state) {
        Db *db = fixture_db(state);
        DbStatement *ins;

        exec_ok(db, "CREATE TABLE t_uniq (k BIGINT PRIMARY KEY, v VARCHAR(20) UNIQUE)");
        assert_int_equal(db_prepare(db, "INSERT INTO t_uniq (k, v) VALUES (?1, ?2)", &ins), 0);

        /* Outside a transaction. */
        assert_int_equal(insert_kv(ins, 1, "a"), DB_DONE);
        assert_int_equal(insert_kv(ins, 1, "b"), -EEXIST);
        assert_true(strlen(db_errmsg(db)) > 0);
        assert_int_equal(insert_kv(ins, 2, "a"), -EEXIST);       /* a UNIQUE constraint, not the key */
        assert_false(db_in_transaction(db));

        /* Inside one: the caller rolls back, and the connection goes on. */
        assert_int_equal(db_begin(db), 0);
        assert_int_equal(insert_kv(ins, 3, "c"), DB_DONE);
        assert_int_equal(insert_kv(ins, 3, "d"), -EEXIST);
        assert_true(db_in_transaction(db));
        assert_int_equal(db_rollback(db), 0);
        assert_false(db_in_transaction(db));
        assert_int_equal(insert_kv(ins, 4, "e"), DB_DONE);
        assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t_uniq"), 2);
}

static void test_savepoint(void **state) {
        Db *db = fixture_db(state);
        DbStatement *ins;

        exec_ok(db, "CREATE TABLE t_sp (k BIGINT PRIMARY KEY, v VARCHAR(20))");
        assert_int_equal(db_prepare(db, "INSERT INTO t_sp (k, v) VALUES (?1, ?2)", &ins), 0);

        assert_int_equal(db_begin(db), 0);
        assert_int_equal(insert_kv(ins, 1, "a"), DB_DONE);
        exec_ok(db, "SAVEPOINT sp1");
        assert_int_equal(insert_kv(ins, 1, "again"), -EEXIST);
        assert_true(db_in_transaction(db));
        exec_ok(db, "ROLLBACK TO SAVEPOINT sp1");
        assert_true(db_in_transaction(db));
        assert_int_equal(insert_kv(ins, 2, "b"), DB_DONE);
        exec_ok(db, "RELEASE SAVEPOINT sp1");
        assert_int_equal(db_commit(db), 0);
        assert_false(db_in_transaction(db));
        assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t_sp"), 2);
}

static void test_in_transaction(void **state) {
        Db *db = fixture_db(state);

        exec_ok(db, "CREATE TABLE t_tx (k BIGINT)");
        assert_false(db_in_transaction(db));
        assert_int_equal(db_begin(db), 0);
        assert_true(db_in_transaction(db));
        exec_ok(db, "INSERT INTO t_tx (k) VALUES (1)");
        assert_int_equal(db_commit(db), 0);
        assert_false(db_in_transaction(db));
        assert_int_equal(db_begin(db), 0);
        exec_ok(db, "INSERT INTO t_tx (k) VALUES (2)");
        assert_int_equal(db_rollback(db), 0);
        assert_false(db_in_transaction(db));
        assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t_tx"), 1);
        assert_int_equal(count_rows(db, "SELECT MAX(k) FROM t_tx"), 1);
}

/* Spring Batch's schema of each backend, so db_next_id() runs on the sequences the repository uses. */
static void apply_schema(Db *db) {
        const char *const *m = db_backend(db) == DB_BACKEND_POSTGRESQL ? schema_migrations_postgresql
                                                                       : schema_migrations;
        size_t n = db_backend(db) == DB_BACKEND_POSTGRESQL ? schema_migrations_postgresql_count
                                                          : schema_migrations_count;

        assert_true(n >= 1);
        assert_int_equal(db_begin(db), 0);
        for (size_t i = 0; i < n; i++)
                exec_ok(db, m[i]);
        assert_int_equal(db_commit(db), 0);
}

static void test_next_id(void **state) {
        Db *db = fixture_db(state);
        int64_t a = 0, b = 0, c = 0;

        apply_schema(db);
        assert_int_equal(db_next_id(db, "BATCH_JOB_SEQ", &a), 0);
        assert_int_equal(db_next_id(db, "BATCH_JOB_SEQ", &b), 0);
        assert_true(a >= 1);
        assert_true(b > a);
        /* Each sequence counts on its own, inside a transaction too. */
        assert_int_equal(db_begin(db), 0);
        assert_int_equal(db_next_id(db, "BATCH_STEP_EXECUTION_SEQ", &c), 0);
        assert_int_equal(db_commit(db), 0);
        assert_true(c >= 1);
        assert_int_equal(db_next_id(db, "BATCH_JOB_EXECUTION_SEQ", &c), 0);
        assert_int_equal(db_next_id(db, "BATCH_JOB_SEQ", &c), 0);
        assert_true(c > b);
        assert_int_equal(db_next_id(db, "BATCH_JOB_SEQ'); DROP TABLE X; --", &c), -EINVAL);
        assert_int_equal(db_next_id(db, "batch_job_seq", &c), -EINVAL);
}

static void test_changes(void **state) {
        Db *db = fixture_db(state);
        DbStatement *s;

        exec_ok(db, "CREATE TABLE t_changes (k BIGINT, v BIGINT)");
        exec_ok(db, "INSERT INTO t_changes (k, v) VALUES (1, 0), (2, 0), (3, 0)");
        assert_int_equal(db_changes(db), 3);
        assert_int_equal(db_prepare(db, "UPDATE t_changes SET v = ?1 WHERE k >= ?2", &s), 0);
        assert_int_equal(db_bind_int64(s, 1, 7), 0);
        assert_int_equal(db_bind_int64(s, 2, 2), 0);
        assert_int_equal(db_step(s), DB_DONE);
        db_reset(s);
        assert_int_equal(db_changes(db), 2);
        assert_int_equal(db_bind_int64(s, 1, 7), 0);
        assert_int_equal(db_bind_int64(s, 2, 99), 0);
        assert_int_equal(db_step(s), DB_DONE);
        db_reset(s);
        assert_int_equal(db_changes(db), 0);
        exec_ok(db, "DELETE FROM t_changes WHERE k = 1");
        assert_int_equal(db_changes(db), 1);
        /* A SELECT changes nothing. */
        assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t_changes"), 2);
        assert_int_equal(db_changes(db), 1);
}

static void test_fault_injection(void **state) {
        Db *db = fixture_db(state);
        DbStatement *ins;

        exec_ok(db, "CREATE TABLE t_fault (k BIGINT PRIMARY KEY, v VARCHAR(20))");
        assert_int_equal(db_prepare(db, "INSERT INTO t_fault (k, v) VALUES (?1, ?2)", &ins), 0);

        /* The 2nd and 3rd insert fail, the rest run. */
        assert_int_equal(db_inject_fault(db, "INSERT INTO t_fault", 2, 2, -EIO), 0);
        assert_int_equal(insert_kv(ins, 1, "a"), DB_DONE);
        assert_int_equal(insert_kv(ins, 2, "b"), -EIO);
        assert_non_null(strstr(db_errmsg(db), "test fault injection"));
        assert_int_equal(insert_kv(ins, 3, "c"), -EIO);
        assert_int_equal(insert_kv(ins, 4, "d"), DB_DONE);
        assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t_fault"), 2);

        /* BEGIN and COMMIT by their text; a failed COMMIT leaves the transaction to roll back. */
        assert_int_equal(db_inject_fault(db, "BEGIN", 1, 1, -EAGAIN), 0);
        assert_int_equal(db_begin(db), -EAGAIN);
        assert_false(db_in_transaction(db));
        assert_int_equal(db_inject_fault(db, "COMMIT", 1, 1, -ENOSPC), 0);
        assert_int_equal(db_begin(db), 0);
        assert_int_equal(insert_kv(ins, 5, "e"), DB_DONE);
        assert_int_equal(db_commit(db), -ENOSPC);
        assert_true(db_in_transaction(db));
        assert_int_equal(db_rollback(db), 0);
        assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t_fault"), 2);

        /* Cleared: nothing fails. */
        assert_int_equal(db_inject_fault(db, "INSERT", 1, 1, -EIO), 0);
        assert_int_equal(db_inject_fault(db, NULL, 0, 0, -EIO), 0);
        assert_int_equal(insert_kv(ins, 6, "f"), DB_DONE);
}

/* Another connection's lock: -EAGAIN after the busy timeout, on both backends (SQLite's busy handler,
 * PostgreSQL's lock_timeout). */
static void test_lock_conflict(void **state) {
        Fixture *f = *state;
        Db *db = fixture_db(state);
        _cleanup_(db_freep) Db *other = NULL;
        uint64_t t;

        exec_ok(db, "CREATE TABLE t_lock (k BIGINT PRIMARY KEY, v BIGINT)");
        exec_ok(db, "INSERT INTO t_lock (k, v) VALUES (1, 0)");
        assert_int_equal(open_or_skip(f->location, &other), 0);
        db_set_busy_timeout(other, 200);

        assert_int_equal(db_begin(db), 0);
        exec_ok(db, "UPDATE t_lock SET v = 1 WHERE k = 1");
        t = now_msec();
        assert_int_equal(db_exec(other, "UPDATE t_lock SET v = 2 WHERE k = 1"), -EAGAIN);
        print_message("lock conflict reported after %" PRIu64 " ms (busy timeout 200 ms)\n", now_msec() - t);
        assert_false(db_in_transaction(other));
        assert_int_equal(db_commit(db), 0);
        exec_ok(other, "UPDATE t_lock SET v = 2 WHERE k = 1");
        assert_int_equal(count_rows(db, "SELECT v FROM t_lock WHERE k = 1"), 2);
}

static void test_read_only(void **state) {
        Fixture *f = *state;
        Db *db = fixture_db(state);
        _cleanup_(db_freep) Db *ro = NULL;
        _cleanup_free_ char *m = NULL;

        exec_ok(db, "CREATE TABLE t_ro (k BIGINT)");
        assert_int_equal(db_open(f->location, DB_OPEN_READ_ONLY, &ro, &m), 0);
        assert_int_equal(count_rows(ro, "SELECT COUNT(*) FROM t_ro"), 0);
        assert_int_equal(db_exec(ro, "INSERT INTO t_ro (k) VALUES (1)"), -EROFS);
}

/* ---- PostgreSQL only ---- */

/* These cases run in the PostgreSQL group only (CASE_PG). */
static Db *pg_db_or_skip(void **state) {
        assert_int_equal(current, DB_BACKEND_POSTGRESQL);
        return fixture_db(state);
}

static void test_pg_location_without_password(void **state) {
        Fixture *f = *state;
        _cleanup_(db_freep) Db *db = NULL;
        _cleanup_free_ char *uri = NULL, *m = NULL;

        pg_db_or_skip(state);
        /* Trust authentication ignores the password, so the connection works and only the message matters. */
        assert_true(asprintf(&uri, "%s&password=s3cret", f->location) > 0);
        assert_int_equal(db_open(uri, 0, &db, &m), 0);
        assert_null(strstr(db_location(db), "s3cret"));
        assert_non_null(strstr(db_location(db), "batchd"));
        db = db_free(db);

        /* A server that is not there: an error with libpq's reason, quickly. */
        assert_true(db_open("postgresql:///batchd?host=/nonexistent-dir&connect_timeout=2", 0, &db, &m) < 0);
        assert_non_null(m);
        print_message("unreachable server: %s\n", m);
        m = mfree(m);
        assert_int_equal(db_open("postgresql://[::1", 0, &db, &m), -EINVAL);
        assert_non_null(m);
}

static void test_pg_translate(void **state) {
        static const struct {
                const char *in, *out;
                int n;
        } cases[] = {
                { "SELECT ?1, ?2", "SELECT $1, $2", 2 },
                { "SELECT ?12 + ?3", "SELECT $12 + $3", 12 },
                { "SELECT '?1', ?1", "SELECT '?1', $1", 1 },
                { "SELECT 'a''?1', ?1", "SELECT 'a''?1', $1", 1 },
                { "SELECT E'\\'?1', ?1", "SELECT E'\\'?1', $1", 1 },
                { "SELECT \"c?1\" FROM t WHERE x = ?1", "SELECT \"c?1\" FROM t WHERE x = $1", 1 },
                { "SELECT 1 -- ?1\n, ?2", "SELECT 1 -- ?1\n, $2", 2 },
                { "SELECT /* ?1 /* ?2 */ ?3 */ ?4", "SELECT /* ?1 /* ?2 */ ?3 */ $4", 4 },
                { "SELECT $$?1$$, $q$ ?2 $q$, ?3", "SELECT $$?1$$, $q$ ?2 $q$, $3", 3 },
                { "SELECT 1", "SELECT 1", 0 },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *out = NULL;
                int n = -1;

                assert_int_equal(db_postgresql_translate(cases[i].in, &out, &n), 0);
                assert_string_equal(out, cases[i].out);
                assert_int_equal(n, cases[i].n);
        }
        char *out = NULL;
        assert_int_equal(db_postgresql_translate("SELECT ?", &out, NULL), -EINVAL);
        assert_int_equal(db_postgresql_translate("SELECT ?0", &out, NULL), -EINVAL);
        assert_null(out);
}

static void test_pg_redact_uri(void **state) {
        static const char *const cases[][2] = {
                { "postgresql://u:pw@h/db", "postgresql://u@h/db" },
                { "postgresql://u@h:5432,h2:5433/db?target_session_attrs=read-write",
                  "postgresql://u@h:5432,h2:5433/db?target_session_attrs=read-write" },
                { "postgres://u:p%40ss@h1,h2/db?password=x&sslmode=require&password=y",
                  "postgres://u@h1,h2/db?sslmode=require" },
                { "postgresql:///batchd?host=/tmp/pg&user=nobody", "postgresql:///batchd?host=/tmp/pg&user=nobody" },
                { "postgresql://h/db?password=only", "postgresql://h/db" },
                { "postgresql://h:5432/db", "postgresql://h:5432/db" },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *r = db_postgresql_redact_uri(cases[i][0]);

                assert_non_null(r);
                assert_string_equal(r, cases[i][1]);
        }
}

static int run_argv(char *const argv[]) {
        pid_t pid = fork();
        int status;

        assert_true(pid >= 0);
        if (pid == 0) {
                execvp(argv[0], argv);
                _exit(127);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* pg_ctl as the server's owner: "restart -m immediate" (a crash, for every client), "stop -m immediate",
 * "start". */
static void pg_ctl(const char *action) {
        const char *pgdata = getenv("BATCHD_TEST_PGDATA"), *bin = getenv("BATCHD_TEST_PG_BIN");
        const char *setpriv = getenv("BATCHD_TEST_PG_SETPRIV"), *options = getenv("BATCHD_TEST_PG_OPTIONS");
        _cleanup_free_ char *cmd = NULL;

        if (!pgdata || !bin || !options) {
                print_message("SKIP: $BATCHD_TEST_PGDATA, $BATCHD_TEST_PG_BIN or $BATCHD_TEST_PG_OPTIONS not set: "
                              "cannot restart the server (run through tests/pgserver.py run)\n");
                skip();
        }
        assert_true(asprintf(&cmd, "%s %s/pg_ctl %s -w -D '%s' -l '%s/../log' -o \"%s\" >/dev/null",
                             strempty(setpriv), bin, action, pgdata, pgdata, options) > 0);
        assert_int_equal(run_argv((char *[]) { (char *) "/bin/sh", (char *) "-c", cmd, NULL }), 0);
}

static void pg_restart_immediate(void) {
        pg_ctl("restart -m immediate");
}

/* Steps "SELECT 1" until it works again; each call must fail at once with -ECONNRESET/-ETIMEDOUT meanwhile. */
static unsigned wait_recovered(Db *db, DbStatement *s, uint64_t *ret_slowest_msec) {
        uint64_t slowest = 0, start = now_msec();
        unsigned calls = 0;

        for (;;) {
                uint64_t t = now_msec();
                int r = db_step(s);

                slowest = MAX(slowest, now_msec() - t);
                calls++;
                if (r == DB_ROW) {
                        assert_int_equal(db_column_int64(s, 0), 1);
                        db_reset(s);
                        break;
                }
                db_reset(s);
                if (r != -ECONNRESET)
                        print_message("while reconnecting: %s: %s\n", strerror(-r), db_errmsg(db));
                assert_int_equal(r, -ECONNRESET);
                assert_false(db_in_transaction(db));
                assert_true(now_msec() - start < 30000);
                (void) usleep(20 * 1000);
        }
        *ret_slowest_msec = slowest;
        return calls;
}

static void assert_show(Db *db, const char *setting, const char *expected) {
        _cleanup_free_ char *sql = NULL;
        DbStatement *s;

        assert_true(asprintf(&sql, "SHOW %s", setting) > 0);
        assert_int_equal(db_prepare(db, sql, &s), 0);
        assert_int_equal(db_step(s), DB_ROW);
        assert_string_equal(db_column_text(s, 0), expected);
        db_reset(s);
}

static void test_pg_restart_immediate(void **state) {
        Db *db = pg_db_or_skip(state);
        DbStatement *one, *ins;
        uint64_t t, slowest;
        unsigned calls;
        int r;

        db_set_busy_timeout(db, 1200);
        assert_show(db, "lock_timeout", "1200ms");

        /* pgserver.py runs the server with synchronous_commit=off, which may lose the last commits in a crash:
         * this session's commits must survive it. */
        exec_ok(db, "SET synchronous_commit = on");
        exec_ok(db, "CREATE TABLE t_restart (k BIGINT PRIMARY KEY)");
        assert_int_equal(db_prepare(db, "SELECT 1", &one), 0);
        assert_int_equal(db_prepare(db, "INSERT INTO t_restart (k) VALUES (?1)", &ins), 0);
        assert_int_equal(db_bind_int64(ins, 1, 1), 0);
        assert_int_equal(db_step(ins), DB_DONE);
        db_reset(ins);

        /* A transaction open when the server goes away is lost. */
        assert_int_equal(db_begin(db), 0);
        assert_int_equal(db_bind_int64(ins, 1, 2), 0);
        assert_int_equal(db_step(ins), DB_DONE);
        db_reset(ins);

        pg_restart_immediate();

        t = now_msec();
        r = db_step(one);
        db_reset(one);
        print_message("first call after the restart: %s in %" PRIu64 " ms (%s)\n", strerror(-r), now_msec() - t,
                      db_errmsg(db));
        assert_int_equal(r, -ECONNRESET);
        assert_false(db_in_transaction(db));
        calls = wait_recovered(db, one, &slowest);
        print_message("recovered after %u calls, the slowest took %" PRIu64 " ms (deadline 10000 ms)\n", calls,
                      slowest);

        assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t_restart"), 1);
        /* The session setup ran again on the new connection, with the busy timeout set before the restart. */
        assert_show(db, "default_transaction_isolation", "read committed");
        assert_show(db, "lock_timeout", "1200ms");
        assert_show(db, "idle_in_transaction_session_timeout", "1min");
        assert_show(db, "DateStyle", "ISO, YMD");
        assert_int_equal(db_begin(db), 0);
        assert_int_equal(db_bind_int64(ins, 1, 2), 0);
        assert_int_equal(db_step(ins), DB_DONE);
        db_reset(ins);
        assert_int_equal(db_commit(db), 0);
        assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t_restart"), 2);
}

/* A server that stays away: every call fails at once, none waits for it, and the connection comes back by
 * itself once the server does. */
static void test_pg_server_down(void **state) {
        Db *db = pg_db_or_skip(state);
        DbStatement *one;
        uint64_t slowest = 0, t;
        unsigned calls;

        assert_int_equal(db_prepare(db, "SELECT 1", &one), 0);
        assert_int_equal(db_step(one), DB_ROW);
        db_reset(one);
        assert_int_equal(db_begin(db), 0);

        pg_ctl("stop -m immediate");
        for (unsigned i = 0; i < 50; i++) {
                int r;

                t = now_msec();
                r = db_step(one);
                slowest = MAX(slowest, now_msec() - t);
                db_reset(one);
                assert_int_equal(r, -ECONNRESET);
                assert_false(db_in_transaction(db));
                assert_true(strlen(db_errmsg(db)) > 0);
                assert_int_equal(db_begin(db), -ECONNRESET);
                assert_int_equal(db_rollback(db), 0);   /* nothing to roll back: the server did */
                (void) usleep(10 * 1000);
        }
        print_message("50 calls with the server down, the slowest took %" PRIu64 " ms (%s)\n", slowest,
                      db_errmsg(db));
        pg_ctl("start");
        calls = wait_recovered(db, one, &slowest);
        print_message("recovered after %u calls, the slowest took %" PRIu64 " ms\n", calls, slowest);
}

static void test_pg_response_deadline(void **state) {
        Db *db = pg_db_or_skip(state);
        DbStatement *sleep2, *one;
        uint64_t t, took, slowest;
        unsigned calls;
        int r;

        assert_int_equal(db_prepare(db, "SELECT pg_sleep(2)", &sleep2), 0);
        assert_int_equal(db_prepare(db, "SELECT 1", &one), 0);
        db_set_response_deadline(db, 200);

        t = now_msec();
        r = db_step(sleep2);
        took = now_msec() - t;
        db_reset(sleep2);
        print_message("pg_sleep(2) with a 200 ms deadline: %s after %" PRIu64 " ms (%s)\n", strerror(-r), took,
                      db_errmsg(db));
        assert_int_equal(r, -ETIMEDOUT);
        assert_false(db_in_transaction(db));

        calls = wait_recovered(db, one, &slowest);
        print_message("recovered after %u calls, the slowest took %" PRIu64 " ms\n", calls, slowest);
        /* The server ends a statement the client gave up on by itself, a little after the client's deadline. */
        assert_show(db, "statement_timeout", "1200ms");
        db_set_response_deadline(db, 10000);
        assert_show(db, "statement_timeout", "11s");
        assert_int_equal(db_step(sleep2), DB_ROW);
        db_reset(sleep2);
}

/* A server error that is none of the mapped classes: -EIO with the server's words, the connection usable. */
static void test_pg_errors(void **state) {
        Db *db = pg_db_or_skip(state);

        assert_int_equal(db_exec(db, "SELECT * FROM no_such_table"), -EIO);
        assert_non_null(strstr(db_errmsg(db), "no_such_table"));
        assert_null(strchr(db_errmsg(db), '\n'));
        assert_int_equal(db_exec(db, "SELECT 1/0"), -EIO);
        assert_int_equal(db_exec(db, "CREATE ROLE batchd_test_nologin"), 0);
        assert_int_equal(db_exec(db, "SET ROLE batchd_test_nologin; CREATE TABLE t_denied (k BIGINT)"), -EACCES);
        exec_ok(db, "RESET ROLE");

        /* COMMIT of a transaction an error aborted is no success. */
        assert_int_equal(db_begin(db), 0);
        assert_int_equal(db_exec(db, "SELECT 1/0"), -EIO);
        assert_true(db_in_transaction(db));
        assert_int_equal(db_commit(db), -EIO);
        assert_false(db_in_transaction(db));
        assert_int_equal(count_rows(db, "SELECT 1"), 1);
}

/* ---- the runs ---- */

#define CASE(name) { #name, name, false }
#define CASE_PG(name) { #name, name, true }

static const struct {
        const char *name;
        CMUnitTestFunction f;
        bool postgresql_only;
} cases[] = {
        CASE(test_bind_step_columns),
        CASE(test_parameter_twice),
        CASE(test_question_mark_in_literal),
        CASE(test_unique_violation),
        CASE(test_savepoint),
        CASE(test_in_transaction),
        CASE(test_next_id),
        CASE(test_changes),
        CASE(test_fault_injection),
        CASE(test_lock_conflict),
        CASE(test_read_only),
        CASE_PG(test_pg_location_without_password),
        CASE_PG(test_pg_restart_immediate),
        CASE_PG(test_pg_server_down),
        CASE_PG(test_pg_response_deadline),
        CASE_PG(test_pg_errors),
};

/* One group per backend, of the cases that apply to it; each case named after its backend, so the runs count
 * as separate cases. */
static int run_backend(DbBackend b, const char *prefix) {
        struct CMUnitTest tests[ELEMENTSOF(cases)];
        char *names[ELEMENTSOF(cases)];
        size_t n = 0;
        int r;

        current = b;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                if (cases[i].postgresql_only && b != DB_BACKEND_POSTGRESQL)
                        continue;
                if (asprintf(&names[n], "%s_%s", prefix, cases[i].name + strlen("test_")) < 0)
                        abort();
                tests[n] = (struct CMUnitTest) {
                        .name = names[n],
                        .test_func = cases[i].f,
                        .setup_func = fixture_setup,
                        .teardown_func = fixture_teardown,
                };
                n++;
        }
        r = _cmocka_run_group_tests(prefix, tests, n, NULL, NULL);
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        return r;
}

int main(void) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        const struct CMUnitTest common[] = {
                cmocka_unit_test(test_pg_translate),
                cmocka_unit_test(test_pg_redact_uri),
        };
        int r = 0;

        sqlite_dir = dir;
        r += cmocka_run_group_tests(common, NULL, NULL);
        r += run_backend(DB_BACKEND_SQLITE, "sqlite");
        r += run_backend(DB_BACKEND_POSTGRESQL, "postgresql");
        return r;
}
