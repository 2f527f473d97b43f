/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* How fast the repository creates and completes one-step executions, on an empty database and on one with a long
 * history. Spring Batch's schema has no indexes, so launches slow down as history grows; the ratio between the two
 * runs shows whether ours do. Not a test: it prints figures for docs/BENCHMARKS.md. */

#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>

#include "log.h"
#include "repository.h"

static int run_one(Repository *r, const char *job, int64_t run_id) {
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        _cleanup_(job_execution_freep) JobExecution *e = NULL;
        _cleanup_(step_execution_freep) StepExecution *last = NULL, *s = NULL;
        StepContribution c = { .read_count = 10, .write_count = 10 };
        char arg[64];
        int k;

        snprintf(arg, sizeof(arg), "run.id(long)=%" PRIi64, run_id);
        k = job_parameters_parse_argument(&p, arg, NULL);
        if (k < 0)
                return k;
        /* As batchd does: the execution is created STARTED in one transaction, the step likewise, and the last
         * step's end and the job's end are one transaction. */
        k = repository_create_execution(r, job, &p, LAUNCH_MARK_STARTED, &e, NULL);
        if (k < 0)
                return k;
        k = repository_should_start_step(r, e, "step1", false, 0, &last, NULL);
        if (k <= 0)
                return k < 0 ? k : -EIO;
        k = repository_start_step_execution(r, e, "step1", last, &s, NULL);
        if (k < 0)
                return k;
        k = execution_context_put_int64(s->context, "current.index", 10);
        if (k < 0)
                return k;
        k = repository_commit_step(r, s, &c, e, NULL);
        if (k < 0)
                return k;
        s->status = BATCH_STATUS_COMPLETED;
        free(s->exit_code);
        s->exit_code = strdup("COMPLETED");
        s->end_time = now_usec(CLOCK_REALTIME);
        e->status = BATCH_STATUS_COMPLETED;
        free(e->exit_code);
        e->exit_code = strdup("COMPLETED");
        e->end_time = now_usec(CLOCK_REALTIME);
        return repository_finish_step_execution(r, s, e, NULL);
}

/* Writes history straight through SQL in one transaction: the point is a realistic table size, quickly. */
static int generate_history(const char *path, int64_t n, unsigned jobs) {
        sqlite3 *db = NULL;
        sqlite3_stmt *ins[7] = {};
        static const char *const sql[7] = {
                "INSERT INTO BATCH_JOB_INSTANCE VALUES (?1, 0, ?2, printf('%032x', ?1))",
                "INSERT INTO BATCH_JOB_EXECUTION VALUES (?1, 2, ?1, '2025-01-01 00:00:00.000000', "
                "'2025-01-01 00:00:00.000000', '2025-01-01 00:00:01.000000', 'COMPLETED', 'COMPLETED', '', "
                "'2025-01-01 00:00:01.000000')",
                "INSERT INTO BATCH_JOB_EXECUTION_PARAMS VALUES (?1, 'run.id', 'java.lang.Long', ?1, 'Y')",
                "INSERT INTO BATCH_STEP_EXECUTION VALUES (?1, 3, 'step1', ?1, '2025-01-01 00:00:00.000000', "
                "'2025-01-01 00:00:00.000000', '2025-01-01 00:00:01.000000', 'COMPLETED', 1, 10, 0, 10, 0, 0, 0, 0, "
                "'COMPLETED', '', '2025-01-01 00:00:01.000000')",
                "INSERT INTO BATCH_STEP_EXECUTION_CONTEXT VALUES (?1, '{\"current.index\":10}', "
                "'{\"current.index\":10}')",
                "INSERT INTO BATCH_JOB_EXECUTION_CONTEXT VALUES (?1, '{}', '{}')",
                NULL,
        };
        int rc = SQLITE_OK;

        if (sqlite3_open(path, &db) != SQLITE_OK)
                return -EIO;
        sqlite3_exec(db, "PRAGMA synchronous = OFF; BEGIN", NULL, NULL, NULL);
        for (size_t i = 0; sql[i]; i++)
                if (sqlite3_prepare_v2(db, sql[i], -1, &ins[i], NULL) != SQLITE_OK) {
                        fprintf(stderr, "%s\n", sqlite3_errmsg(db));
                        return -EIO;
                }
        for (int64_t id = 1; id <= n && rc == SQLITE_OK; id++) {
                char job[32];

                snprintf(job, sizeof(job), "history-%u", (unsigned) (id % jobs));
                for (size_t i = 0; ins[i]; i++) {
                        sqlite3_bind_int64(ins[i], 1, id);
                        if (i == 0)
                                sqlite3_bind_text(ins[i], 2, job, -1, SQLITE_TRANSIENT);
                        if (sqlite3_step(ins[i]) != SQLITE_DONE) {
                                fprintf(stderr, "%s\n", sqlite3_errmsg(db));
                                rc = SQLITE_ERROR;
                        }
                        sqlite3_reset(ins[i]);
                }
        }
        /* Keep the sequences ahead of the generated ids, as Spring's incrementer would have. */
        if (rc == SQLITE_OK) {
                char buf[256];

                snprintf(buf, sizeof(buf),
                         "INSERT INTO BATCH_JOB_SEQ VALUES (%1$" PRIi64 "); "
                         "INSERT INTO BATCH_JOB_EXECUTION_SEQ VALUES (%1$" PRIi64 "); "
                         "INSERT INTO BATCH_STEP_EXECUTION_SEQ VALUES (%1$" PRIi64 "); COMMIT; ANALYZE;", n);
                rc = sqlite3_exec(db, buf, NULL, NULL, NULL);
        }
        for (size_t i = 0; ins[i]; i++)
                sqlite3_finalize(ins[i]);
        sqlite3_close(db);
        return rc == SQLITE_OK ? 0 : -EIO;
}

static double measure(Repository *r, const char *job, int64_t count) {
        usec_t start = now_usec(CLOCK_MONOTONIC), elapsed;

        for (int64_t i = 1; i <= count; i++)
                if (run_one(r, job, i) < 0) {
                        fprintf(stderr, "launch %" PRIi64 " failed\n", i);
                        exit(EXIT_FAILURE);
                }
        elapsed = now_usec(CLOCK_MONOTONIC) - start;
        return (double) count * USEC_PER_SEC / (double) elapsed;
}

int main(int argc, char *argv[]) {
        int64_t count = 20000, history = 1000000;
        const char *dir = getenv("TMPDIR") ?: "/var/tmp";
        char empty_path[PATH_MAX], history_path[PATH_MAX];
        double empty_rate, history_rate;
        int c;

        static const struct option options[] = {
                { "count",   required_argument, NULL, 'c' },
                { "history", required_argument, NULL, 'H' },
                { "dir",     required_argument, NULL, 'd' },
                {}
        };
        while ((c = getopt_long(argc, argv, "c:H:d:", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        count = strtoll(optarg, NULL, 10);
                        break;
                case 'H':
                        history = strtoll(optarg, NULL, 10);
                        break;
                case 'd':
                        dir = optarg;
                        break;
                default:
                        fprintf(stderr, "Usage: %s [--count N] [--history N] [--dir DIR]\n", argv[0]);
                        return EXIT_FAILURE;
                }
        if (count <= 0 || history < 0)
                return EXIT_FAILURE;

        log_set_max_level(LOG_WARNING);
        snprintf(empty_path, sizeof(empty_path), "%s/bench-empty-%d.db", dir, getpid());
        snprintf(history_path, sizeof(history_path), "%s/bench-history-%d.db", dir, getpid());

        for (int pass = 0; pass < 2; pass++) {
                const char *path = pass == 0 ? empty_path : history_path;
                _cleanup_(repository_freep) Repository *r = NULL;
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                double rate;

                if (repository_open(path, 0, &r, &error) < 0) {
                        fprintf(stderr, "%s\n", error.message);
                        return EXIT_FAILURE;
                }
                if (pass == 1) {
                        usec_t t = now_usec(CLOCK_MONOTONIC);

                        r = repository_free(r);
                        if (generate_history(path, history, 10) < 0)
                                return EXIT_FAILURE;
                        printf("generated %" PRIi64 " executions of history in %.1f s\n", history,
                               (double) (now_usec(CLOCK_MONOTONIC) - t) / USEC_PER_SEC);
                        if (repository_open(path, 0, &r, &error) < 0) {
                                fprintf(stderr, "%s\n", error.message);
                                return EXIT_FAILURE;
                        }
                }
                rate = measure(r, pass == 0 ? "bench" : "history-1", count);
                printf("%-28s %10.0f executions/s (%" PRIi64 " create+complete of one-step executions)\n",
                       pass == 0 ? "empty database:" : "with history:", rate, count);
                if (pass == 0)
                        empty_rate = rate;
                else
                        history_rate = rate;
        }
        printf("ratio empty/history: %.3f (goal <= 1.2); throughput goal >= 5000 executions/s\n",
               empty_rate / history_rate);

        for (int pass = 0; pass < 2; pass++)
                for (const char *suffix = ""; suffix; suffix = streq(suffix, "") ? "-wal" : streq(suffix, "-wal") ? "-shm" : NULL) {
                        char p[PATH_MAX + 8];

                        snprintf(p, sizeof(p), "%s%s", pass == 0 ? empty_path : history_path, suffix);
                        (void) unlink(p);
                }
        return EXIT_SUCCESS;
}
