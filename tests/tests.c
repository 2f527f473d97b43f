/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ftw.h>
#include <sys/stat.h>

#include "db.h"
#include "tests.h"

char *test_dir_new(void) {
        char *p;

        if (asprintf(&p, "%s/batchd-test.XXXXXX", getenv("TMPDIR") ?: "/tmp") < 0)
                abort();
        if (!mkdtemp(p))
                abort();
        return p;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        /* Tests chmod things read-only; make them removable again first. */
        if (flag == FTW_DP)
                (void) chmod(path, 0700);
        (void) remove(path);
        return 0;
}

void test_dir_freep(char **dir) {
        if (!*dir)
                return;
        (void) chmod(*dir, 0700);
        (void) nftw(*dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
        *dir = mfree(*dir);
}

char *test_path(const char *dir, const char *name) {
        char *p;

        if (asprintf(&p, "%s/%s", dir, name) < 0)
                abort();
        return p;
}

void test_write_file(const char *path, const char *contents) {
        FILE *f = fopen(path, "we");

        if (!f || fputs(contents, f) < 0 || fclose(f) != 0)
                abort();
}

uint64_t test_random(uint64_t *state) {
        uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));

        z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
        return z ^ (z >> 31);
}

bool test_pg_available(void) {
        const char *uri = getenv("BATCHD_TEST_POSTGRESQL");

        if (isempty(uri)) {
                fprintf(stderr, "SKIP (PostgreSQL): %s\n",
                        getenv("BATCHD_TEST_POSTGRESQL_SKIP") ?:
                        "$BATCHD_TEST_POSTGRESQL is not set (run through tests/pgserver.py run)");
                return false;
        }
        return true;
}

char *test_pg_database(const char *name) {
        const char *uri = getenv("BATCHD_TEST_POSTGRESQL");
        _cleanup_free_ char *message = NULL, *sql = NULL;
        const char *tail;
        Db *db = NULL;
        char *p;

        /* The names the tests pass are plain identifiers; the URI is postgresql:///batchd?host=...&user=.... */
        if (isempty(uri) || !(tail = strstr(uri, "/batchd?")) || name[strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_")])
                abort();
        if (db_open(uri, 0, &db, &message) < 0) {
                fprintf(stderr, "test_pg_database: %s\n", strna(message));
                abort();
        }
        if (db_exec(db, "SET client_min_messages = warning") < 0)
                goto fail;
        if (asprintf(&sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name) < 0 || db_exec(db, sql) < 0)
                goto fail;
        sql = mfree(sql);
        if (asprintf(&sql, "CREATE DATABASE %s", name) < 0 || db_exec(db, sql) < 0)
                goto fail;
        db_free(db);
        if (asprintf(&p, "%.*s/%s?%s", (int) (tail - uri), uri, name, tail + strlen("/batchd?")) < 0)
                abort();
        return p;

fail:
        fprintf(stderr, "test_pg_database(%s): %s\n", name, db_errmsg(db));
        abort();
}

static Db *test_db_open(const char *location) {
        _cleanup_free_ char *message = NULL;
        Db *db = NULL;

        if (db_open(location, 0, &db, &message) < 0) {
                fprintf(stderr, "test: cannot open %s: %s\n", location, strna(message));
                abort();
        }
        return db;
}

static DbStatement *test_query(Db *db, const char *sql) {
        DbStatement *s = NULL;
        int k;

        if (db_prepare(db, sql, &s) < 0)
                abort();
        k = db_step(s);
        if (k < 0) {
                fprintf(stderr, "test: %s: %s\n", sql, db_errmsg(db));
                abort();
        }
        return k == DB_ROW ? s : NULL;
}

int64_t test_query_int(const char *location, const char *sql) {
        Db *db = test_db_open(location);
        DbStatement *s = test_query(db, sql);
        int64_t v = s ? db_column_int64(s, 0) : -1;

        db_free(db);
        return v;
}

char *test_query_text(const char *location, const char *sql) {
        Db *db = test_db_open(location);
        DbStatement *s = test_query(db, sql);
        char *v = NULL;

        if (s && db_column_text(s, 0) && !(v = strdup(db_column_text(s, 0))))
                abort();
        db_free(db);
        return v;
}

void test_exec(const char *location, const char *sql) {
        Db *db = test_db_open(location);

        if (db_exec(db, sql) < 0) {
                fprintf(stderr, "test: %s: %s\n", sql, db_errmsg(db));
                abort();
        }
        db_free(db);
}
