/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ftw.h>
#include <sys/stat.h>

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
