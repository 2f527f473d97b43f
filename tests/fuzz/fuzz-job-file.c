/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* config_load() on a job file: libconfig's parser and everything conf.c checks after it. conf.c reads paths
 * (it must check the owner and mode of every file), so each input is written to DIR/jobs.d/fuzz.conf, next
 * to a fixed DIR/batchd.conf, and the whole configuration is loaded strictly, as a reload does. Accepted or
 * refused, nothing may crash or leak, and a refusal must come with at least one message. */

#include <fcntl.h>
#include <sys/stat.h>

#include "conf.h"
#include "fuzz.h"

/* A job file over this adds only time (libconfig is quadratic in the length of a string). */
#define FUZZ_JOB_FILE_MAX (64U * 1024U)

int LLVMFuzzerInitialize(int *argc, char ***argv);

static char dir[] = "/tmp/batchd-fuzz-job-file-XXXXXX";
static char main_path[sizeof dir + 32], jobs_dir[sizeof dir + 32], job_path[sizeof dir + 32];

static void write_all(const char *path, const void *data, size_t size) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        if (fd < 0 || (size > 0 && write(fd, data, size) != (ssize_t) size) || fchmod(fd, 0644) < 0) {
                fprintf(stderr, "%s: %m\n", path);
                abort();
        }
        close(fd);
}

static void cleanup(void) {
        (void) unlink(job_path);
        (void) unlink(main_path);
        (void) rmdir(jobs_dir);
        (void) rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        char text[sizeof jobs_dir + 64];

        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                abort();
        }
        /* The loader refuses directories writable by others, whatever the umask made them. */
        (void) chmod(dir, 0755);
        snprintf(main_path, sizeof main_path, "%s/batchd.conf", dir);
        snprintf(jobs_dir, sizeof jobs_dir, "%s/jobs.d", dir);
        snprintf(job_path, sizeof job_path, "%s/fuzz.conf", jobs_dir);
        if (mkdir(jobs_dir, 0755) < 0 || chmod(jobs_dir, 0755) < 0) {
                perror("mkdir");
                abort();
        }
        snprintf(text, sizeof text, "jobs_dir = \"%s\";\n", jobs_dir);
        write_all(main_path, text, strlen(text));
        atexit(cleanup);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_strv_free_ char **errors = NULL;
        _cleanup_(config_freep) Config *c = NULL;
        ConfigLoadOptions options = {
                .strict = true,
                .owner_uid = geteuid(),
                .daemon_uid = geteuid(),
        };
        int r;

        if (size > FUZZ_JOB_FILE_MAX)
                return 0;
        write_all(job_path, data, size);

        r = config_load(main_path, &options, &c, &errors);
        if (r < 0) {
                fuzz_assert(r == -EINVAL || r == -ENOMEM);
                fuzz_assert(r == -ENOMEM || (errors && errors[0]));
        } else
                fuzz_assert(c);
        return 0;
}
