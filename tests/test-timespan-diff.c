/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Differential test of timespan_parse() (daemon/time-util.c) against systemd-analyze timespan, which runs
 * systemd's own parse_sec(): durations in job files must mean what they mean in unit files.
 *
 * Random strings from a seeded PRNG, built from the grammar's pieces (digits, points, signs, units, whitespace,
 * "infinity") and some noise, go to systemd-analyze as many at a time as it takes: it prints one "μs: N" table
 * per argument it accepts and stops at the first it refuses. Acceptance and the number of microseconds must be
 * the same (the error code is not printed in a stable form, so only acceptance is compared for refusals).
 *
 * Environment: TIMESPAN_DIFF_SEED, TIMESPAN_DIFF_COUNT (strings, default 600), SYSTEMD_ANALYZE (path of the
 * binary). Exit status 77 (skip) if systemd-analyze is not there. */

#include <fcntl.h>
#include <inttypes.h>
#include <spawn.h>
#include <sys/wait.h>

#include "time-util.h"
#include "tests.h"

#define DEFAULT_SEED UINT64_C(20221101)
#define DEFAULT_COUNT 600
#define BATCH_MAX 100
#define EXIT_SKIP 77

extern char **environ;

static uint64_t rng_state;

static uint64_t rnd(void) {
        return test_random(&rng_state);
}

static unsigned rn(unsigned n) {
        return n == 0 ? 0 : (unsigned) (rnd() % n);
}

#define PICK(array) (array[rn(ELEMENTSOF(array))])

static const char *const units[] = {
        "s", "sec", "second", "seconds", "m", "min", "minute", "minutes", "h", "hr", "hour", "hours", "d", "day",
        "days", "w", "week", "weeks", "M", "month", "months", "y", "year", "years", "ms", "msec", "us", "usec",
        "\u00b5s", "\u03bcs", "", "", "",
};

/* Not units to systemd. */
static const char *const bad_units[] = { "ns", "S", "Min", "sek", "mins", "x", "\u00b5", "infinity" };

static const char *const spaces[] = { "", "", "", "", " ", " ", "  ", "\t", "\n", "\r", " \t" };
static const char *const bad_spaces[] = { "\v", "\f", "\xc2\xa0" };

static const char *const numbers[] = { "0", "1", "5", "23", "90", "007", "1000000", "365", "59" };

/* Around the limits: overflow of strtoll(), of the product with the unit, of the sum. */
static const char *const big_numbers[] = {
        "18446744073709551615", "9223372036854775807", "9223372036854775808", "11111111111111", "584542",
        "213503982", "5124095576", "307445734561", "18446744073709",
};

static const char *const noise[] = {
        ".", "..", "+", "-", "+-", "e3", "0x1", "infinity", "inf", "\xff", "\xce", ",", "_",
};

static void append(char *buf, size_t size, const char *s) {
        size_t n = strlen(buf);

        (void) snprintf(buf + n, size - n, "%s", s);
}

/* Mostly well-formed, so that most strings are accepted (each refusal costs a systemd-analyze process), with
 * every kind of mistake now and then. */
static void random_timespan(char *buf, size_t size) {
        unsigned terms = 1 + rn(3);

        buf[0] = '\0';
        if (rn(20) == 0) {
                append(buf, size, PICK(spaces));
                append(buf, size, "infinity");
                append(buf, size, PICK(spaces));
                if (rn(3) == 0)
                        append(buf, size, PICK(noise));
                return;
        }
        append(buf, size, PICK(spaces));
        for (unsigned i = 0; i < terms; i++) {
                if (rn(25) == 0)
                        append(buf, size, rn(3) ? "+" : "-");
                if (rn(12) != 0)
                        append(buf, size, rn(15) == 0 ? PICK(big_numbers) : PICK(numbers));
                if (rn(3) == 0) {
                        char digits[24];
                        unsigned n = rn(10) == 0 ? 0 : 1 + rn(11);

                        for (unsigned j = 0; j < n; j++)
                                digits[j] = (char) ('0' + rn(10));
                        digits[n] = '\0';
                        append(buf, size, ".");
                        append(buf, size, digits);
                }
                if (rn(40) == 0)
                        append(buf, size, PICK(noise));
                append(buf, size, rn(40) == 0 ? PICK(bad_spaces) : PICK(spaces));
                append(buf, size, rn(30) == 0 ? PICK(bad_units) : PICK(units));
                append(buf, size, i + 1 < terms ? " " : PICK(spaces));
        }
}

/* Runs systemd-analyze timespan on args[0..n): returns how many it accepted, in order, with their values. */
static size_t run_analyze(const char *analyze, char **args, size_t n, usec_t *values) {
        char *argv[BATCH_MAX + 4];
        posix_spawn_file_actions_t fa;
        int pipefd[2], status;
        size_t accepted = 0;
        char line[4096];
        FILE *f;
        pid_t pid;

        argv[0] = (char *) analyze;
        argv[1] = (char *) "timespan";
        argv[2] = (char *) "--";       /* "-5s" is an argument, not an option */
        for (size_t i = 0; i < n; i++)
                argv[3 + i] = args[i];
        argv[3 + n] = NULL;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                abort();
        if (posix_spawn_file_actions_init(&fa) != 0 ||
            posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO) != 0 ||
            posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0) != 0)
                abort();
        if (posix_spawn(&pid, analyze, &fa, NULL, argv, environ) != 0)
                abort();
        posix_spawn_file_actions_destroy(&fa);
        close(pipefd[1]);

        f = fdopen(pipefd[0], "r");
        if (!f)
                abort();
        while (fgets(line, sizeof line, f)) {
                const char *p = line + strspn(line, " "), *mu = "\u03bcs: ";
                unsigned long long v;

                /* "μs:" in a UTF-8 locale, "us:" otherwise. */
                if ((strncmp(p, mu, strlen(mu)) == 0 && sscanf(p + strlen(mu), "%llu", &v) == 1) ||
                    (strncmp(p, "us: ", 4) == 0 && sscanf(p + 4, "%llu", &v) == 1)) {
                        if (accepted >= n)
                                abort();
                        values[accepted++] = v;
                }
        }
        fclose(f);
        if (waitpid(pid, &status, 0) < 0)
                abort();
        /* It exits 0 exactly when it accepted everything. */
        if ((accepted == n) != (WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
                fprintf(stderr, "systemd-analyze accepted %zu of %zu but exited with status %d\n", accepted, n, status);
                exit(EXIT_FAILURE);
        }
        return accepted;
}

static void print_quoted(FILE *f, const char *s) {
        fputc('\'', f);
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || (unsigned char) *s >= 0x7f)
                        fprintf(f, "\\x%02x", (unsigned char) *s);
                else
                        fputc(*s, f);
        fputc('\'', f);
}

int main(void) {
        const char *analyze = getenv("SYSTEMD_ANALYZE") ?: "/usr/bin/systemd-analyze";
        const char *e;
        unsigned count = DEFAULT_COUNT, failures = 0, n_accepted = 0;
        char **strings;

        if (access(analyze, X_OK) < 0) {
                printf("SKIP: %s not found, nothing to compare with\n", analyze);
                return EXIT_SKIP;
        }
        rng_state = DEFAULT_SEED;
        e = getenv("TIMESPAN_DIFF_SEED");
        if (e)
                rng_state = strtoull(e, NULL, 0);
        e = getenv("TIMESPAN_DIFF_COUNT");
        if (e)
                count = (unsigned) strtoul(e, NULL, 0);
        printf("seed %" PRIu64 ", %u strings, %s\n", rng_state, count, analyze);

        strings = calloc(count, sizeof(char *));
        if (!strings)
                abort();
        for (unsigned i = 0; i < count; i++) {
                char buf[256];

                random_timespan(buf, sizeof buf);
                strings[i] = strdup(buf);
                if (!strings[i])
                        abort();
        }

        for (size_t i = 0; i < count;) {
                usec_t values[BATCH_MAX];
                size_t n = MIN((size_t) BATCH_MAX, count - i), accepted;

                accepted = run_analyze(analyze, strings + i, n, values);
                /* The first `accepted` were accepted; the one after them, if any, was refused. */
                for (size_t j = 0; j <= accepted && j < n; j++) {
                        bool theirs = j < accepted;
                        usec_t ours = 0;
                        int r = timespan_parse(strings[i + j], &ours);

                        n_accepted += theirs;
                        if ((r >= 0) != theirs || (theirs && ours != values[j])) {
                                fputs("MISMATCH ", stderr);
                                print_quoted(stderr, strings[i + j]);
                                if (theirs)
                                        fprintf(stderr, ": systemd %" PRIu64 ", batchd ", values[j]);
                                else
                                        fputs(": systemd refuses, batchd ", stderr);
                                if (r >= 0)
                                        fprintf(stderr, "%" PRIu64 "\n", ours);
                                else
                                        fprintf(stderr, "refuses (%s)\n", strerror(-r));
                                failures++;
                        }
                }
                i += MIN(accepted + 1, n);
        }

        printf("%u strings, %u accepted by systemd, %u mismatches\n", count, n_accepted, failures);
        for (unsigned i = 0; i < count; i++)
                free(strings[i]);
        free(strings);
        return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
