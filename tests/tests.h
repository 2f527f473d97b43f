/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "log.h"
#include "macro.h"

#include <stdbool.h>
#include <stdint.h>

/* Helpers shared by the test programs (built once into libtests). Failures abort the test: a helper that
 * cannot do its job must never let a test pass by accident. */

/* A fresh directory under $TMPDIR (or /tmp); test_dir_freep removes it and everything below. */
char *test_dir_new(void);
void test_dir_freep(char **dir);
char *test_path(const char *dir, const char *name);
void test_write_file(const char *path, const char *contents);

/* splitmix64: a tiny pseudo-random generator that gives the same sequence on every platform, so a seeded
 * differential test (test-calendar-diff, test-timespan-diff) can be replayed anywhere from its seed. */
uint64_t test_random(uint64_t *state);

/* PostgreSQL for the tests (tests/pgserver.py run exports $BATCHD_TEST_POSTGRESQL, a URI of database "batchd").
 * test_pg_available() says whether there is one, else prints why once per call site's reason. test_pg_database()
 * (re)creates the empty database name on that server through a maintenance connection and returns its URI: each
 * case gets a database of its own, so cases stay independent. */
bool test_pg_available(void);
char *test_pg_database(const char *name);
/* The first column of the first row of sql on location (either backend), as a number; -1 without a row. */
int64_t test_query_int(const char *location, const char *sql);
/* The same as text (NULL without a row or for NULL); free() it. */
char *test_query_text(const char *location, const char *sql);
/* Runs sql (no rows, no parameters) on location; aborts on failure. */
void test_exec(const char *location, const char *sql);
