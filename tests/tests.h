/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "log.h"
#include "macro.h"

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
