/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "exec-spec.h"
#include "step-protocol.h"
#include "step-runner.h"
#include "tests.h"

/* Real processes on a real sd-event loop. The test binary doubles as a step ("--dump", "--raw") where a
 * shell cannot show what we need to see. */

static char self_path[PATH_MAX];

typedef struct Commit {
        StepContribution contribution;
        char *step_json;
        char *job_json;                 /* NULL: the runner passed no job context */
} Commit;

typedef struct Fixture {
        sd_event *event;
        StepRunner *runner;

        bool finished;
        StepOutcome outcome;
        int exit_status, signal, error;
        bool timed_out;
        bool rolled_back;
        char *message;
        usec_t started, ended;

        Commit commits[16];
        size_t n_commits;
        unsigned fail_commits;          /* fail this many commits with -EIO first */
        unsigned busy_each;             /* answer every commit -EAGAIN ("database locked") this often first */
        unsigned busy_left;
        unsigned commit_calls;

        char *status;
        char *exit_code, *exit_description;

        /* For the stop test: stop this long after the start. */
        usec_t stop_after;
        sd_event_source *stop_source;

        /* For the output test: a timer ticking while the step runs. */
        sd_event_source *tick_source;
        usec_t last_tick, max_gap;
        unsigned ticks;
} Fixture;

static char *context_json(const ExecutionContext *c) {
        char *s = NULL;

        assert_int_equal(execution_context_serialize(c, &s), 0);
        return s;
}

static int on_commit(StepRunner *r, const StepContribution *contribution, const ExecutionContext *step_context,
                     const ExecutionContext *job_context, sd_bus_error *error, void *userdata) {
        Fixture *f = userdata;
        Commit *c;

        f->commit_calls++;
        if (f->fail_commits > 0) {
                f->fail_commits--;
                return -EIO;
        }
        if (f->busy_left > 0) {
                f->busy_left--;
                return -EAGAIN;
        }
        f->busy_left = f->busy_each;

        assert_true(f->n_commits < ELEMENTSOF(f->commits));
        c = f->commits + f->n_commits++;
        c->contribution = *contribution;
        c->step_json = context_json(step_context);
        c->job_json = job_context ? context_json(job_context) : NULL;
        return 0;
}

static int on_status(StepRunner *r, const char *text, void *userdata) {
        Fixture *f = userdata;

        free(f->status);
        f->status = strdup(text);
        assert_non_null(f->status);
        return 0;
}

static int on_exit_code(StepRunner *r, const char *code, const char *description, void *userdata) {
        Fixture *f = userdata;

        free(f->exit_code);
        free(f->exit_description);
        f->exit_code = strdup(code);
        f->exit_description = description ? strdup(description) : NULL;
        return 0;
}

static void on_finished(StepRunner *r, const StepResult *result, void *userdata) {
        Fixture *f = userdata;

        assert_false(f->finished);      /* exactly once */
        assert_false(step_runner_is_running(r));
        f->finished = true;
        f->ended = now_usec(CLOCK_MONOTONIC);
        f->outcome = result->outcome;
        f->exit_status = result->exit_status;
        f->signal = result->signal;
        f->error = result->error;
        f->timed_out = result->timed_out;
        f->rolled_back = result->rolled_back;
        f->message = strdup(result->message);
        assert_non_null(f->message);
}

static const StepRunnerCallbacks callbacks = {
        .commit = on_commit,
        .status = on_status,
        .exit_code = on_exit_code,
        .finished = on_finished,
};

static void fixture_reset(Fixture *f) {
        f->runner = step_runner_free(f->runner);
        f->stop_source = sd_event_source_disable_unref(f->stop_source);
        f->tick_source = sd_event_source_disable_unref(f->tick_source);
        for (size_t i = 0; i < f->n_commits; i++) {
                free(f->commits[i].step_json);
                free(f->commits[i].job_json);
        }
        free(f->message);
        free(f->status);
        free(f->exit_code);
        free(f->exit_description);
        *f = (Fixture) { .event = f->event };
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));

        assert_non_null(f);
        assert_int_equal(sd_event_new(&f->event), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        fixture_reset(f);
        sd_event_unref(f->event);
        free(f);
        return 0;
}

static int on_stop(sd_event_source *s, uint64_t usec, void *userdata) {
        Fixture *f = userdata;

        assert_int_equal(step_runner_stop(f->runner, "operator request"), 0);
        assert_int_equal(step_runner_stop(f->runner, "again"), 0);     /* idempotent, first reason stays */
        return 0;
}

/* Starts the step and runs the loop until it finished. */
static void fixture_run(Fixture *f, const StepRunnerParameters *p) {
        usec_t deadline;

        f->started = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(step_runner_start(f->event, p, &callbacks, f, &f->runner), 0);
        assert_true(step_runner_get_pid(f->runner) > 0);
        assert_true(step_runner_is_running(f->runner));

        if (f->stop_after > 0)
                assert_int_equal(sd_event_add_time_relative(f->event, &f->stop_source, CLOCK_MONOTONIC, f->stop_after,
                                                            0, on_stop, f), 0);

        deadline = f->started + 60 * USEC_PER_SEC;
        while (!f->finished) {
                assert_true(now_usec(CLOCK_MONOTONIC) < deadline);
                assert_true(sd_event_run(f->event, 1 * USEC_PER_SEC) >= 0);
        }

        assert_int_equal(step_runner_stop(f->runner, NULL), -ESRCH);
}

static int open_null(void) {
        int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

        assert_true(fd >= 0);
        return fd;
}

static char *read_file(const char *path) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t size = 0;

        /* No NUL in these files: one getdelim() reads them whole. */
        assert_non_null(f);
        if (getdelim(&buf, &size, '\0', f) < 0) {
                assert_true(feof(f));
                free(buf);
                buf = strdup("");
        }
        assert_non_null(buf);
        return buf;
}

/* ---- simple outcomes ---- */

static void run_shell(Fixture *f, const char *script, int output_fd) {
        char *argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) script, (char *) "sh", NULL };
        char *env[] = { (char *) "PATH=/usr/bin:/bin", NULL };
        StepRunnerParameters p = {
                .argv = argv,
                .environment = env,
                .output_fd = output_fd,
                .kill_grace = 5 * USEC_PER_SEC,
        };

        fixture_run(f, &p);
}

static void test_success(void **state) {
        Fixture *f = *state;

        run_shell(f, "exit 0", -1);
        assert_int_equal(f->outcome, STEP_OUTCOME_SUCCESS);
        assert_string_equal(f->message, "");
        assert_int_equal(f->exit_status, 0);
        assert_int_equal(f->signal, 0);
        assert_int_equal(f->error, 0);
        assert_int_equal(f->n_commits, 0);      /* nothing staged, no final commit */
}

static void test_exit_status(void **state) {
        Fixture *f = *state;

        run_shell(f, "exit 3", -1);
        assert_int_equal(f->outcome, STEP_OUTCOME_FAILED);
        assert_string_equal(f->message, "exited with status 3");
        assert_int_equal(f->exit_status, 3);
        assert_int_equal(f->signal, 0);
}

static void test_signal(void **state) {
        Fixture *f = *state;

        run_shell(f, "kill -9 $$", -1);
        assert_int_equal(f->outcome, STEP_OUTCOME_FAILED);
        assert_string_equal(f->message, "killed by signal 9 (KILL)");
        assert_int_equal(f->exit_status, -1);
        assert_int_equal(f->signal, SIGKILL);
}

static void test_exec_failure(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *script = test_path(dir, "script"), *expected = NULL;
        char *missing[] = { (char *) "/no/such/binary", NULL };
        char *noexec[] = { script, NULL };
        Fixture *f = *state;
        StepRunnerParameters p = { .argv = missing, .output_fd = -1 };

        fixture_run(f, &p);
        assert_int_equal(f->outcome, STEP_OUTCOME_FAILED);
        assert_string_equal(f->message, "Failed to execute /no/such/binary: No such file or directory");
        assert_int_equal(f->error, -ENOENT);
        fixture_reset(f);

        /* Not executable, for root too: no execute bit at all. */
        test_write_file(script, "#!/bin/sh\nexit 0\n");
        assert_int_equal(chmod(script, 0644), 0);
        p.argv = noexec;
        fixture_run(f, &p);
        assert_int_equal(f->outcome, STEP_OUTCOME_FAILED);
        assert_int_equal(asprintf(&expected, "Failed to execute %s: Permission denied", script) > 0, 1);
        assert_string_equal(f->message, expected);
        assert_int_equal(f->error, -EACCES);
        fixture_reset(f);

        p.argv = (char *[]) { (char *) "/bin/true", NULL };
        p.working_directory = "/no/such/directory";
        fixture_run(f, &p);
        assert_int_equal(f->outcome, STEP_OUTCOME_FAILED);
        assert_string_equal(f->message, "Failed to change to working directory /no/such/directory: No such file or directory");
}

static void test_invalid_parameters(void **state) {
        Fixture *f = *state;
        StepRunner *r = NULL;
        StepRunnerParameters p = {
                .argv = (char *[]) { (char *) "true", NULL },
                .output_fd = -1,
        };

        assert_int_equal(step_runner_start(f->event, &p, &callbacks, f, &r), -EINVAL);
        p.argv = (char *[]) { NULL };
        assert_int_equal(step_runner_start(f->event, &p, &callbacks, f, &r), -EINVAL);
        p.argv = (char *[]) { (char *) "/bin/true", NULL };
        p.working_directory = "relative";
        assert_int_equal(step_runner_start(f->event, &p, &callbacks, f, &r), -EINVAL);
        p.working_directory = NULL;
        p.user = "";
        assert_int_equal(step_runner_start(f->event, &p, &callbacks, f, &r), -EINVAL);
        assert_null(r);
}

/* The user is looked up by batchd-exec in the step's process, not by batchd (NSS may wait on the network): an
 * unknown user starts the step and fails it, with the words batchd used when it looked the user up itself.
 * Before the helper, step_runner_start() itself looked the user up and returned -ESRCH. */
static void test_unknown_user_fails_the_step(void **state) {
        Fixture *f = *state;
        StepRunnerParameters p = {
                .argv = (char *[]) { (char *) "/bin/true", NULL },
                .user = "no-such-user-batchd-test",
                .output_fd = -1,
        };

        fixture_run(f, &p);
        assert_int_equal(f->outcome, STEP_OUTCOME_FAILED);
        assert_string_equal(f->message, "Failed to start step: no such user");
        assert_int_equal(f->error, -ESRCH);
}

/* A helper that cannot be executed is the step's clear failure, not batchd's. */
static void test_missing_helper(void **state) {
        _cleanup_free_ char *saved = getenv("BATCHD_EXEC_PATH") ? strdup(getenv("BATCHD_EXEC_PATH")) : NULL;
        Fixture *f = *state;
        StepRunnerParameters p = {
                .argv = (char *[]) { (char *) "/bin/true", NULL },
                .output_fd = -1,
        };

        assert_int_equal(setenv("BATCHD_EXEC_PATH", "/no/such/batchd-exec", 1), 0);
        fixture_run(f, &p);
        assert_int_equal(f->outcome, STEP_OUTCOME_FAILED);
        assert_string_equal(f->message, "Failed to execute the helper /no/such/batchd-exec: No such file or directory");
        if (saved)
                assert_int_equal(setenv("BATCHD_EXEC_PATH", saved, 1), 0);
        else
                assert_int_equal(unsetenv("BATCHD_EXEC_PATH"), 0);
}

/* ---- timeouts and stops ---- */

static void test_timeout_ignoring_sigterm(void **state) {
        Fixture *f = *state;
        /* "trap '' TERM" is inherited by sleep as SIG_IGN, so the whole group ignores SIGTERM. */
        char *argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) "trap '' TERM; while :; do sleep 0.05; done", NULL };
        char *env[] = { (char *) "PATH=/usr/bin:/bin", NULL };
        StepRunnerParameters p = {
                .argv = argv,
                .environment = env,
                .output_fd = -1,
                .timeout = 200 * USEC_PER_MSEC,
                .kill_grace = 200 * USEC_PER_MSEC,
        };

        fixture_run(f, &p);
        assert_int_equal(f->outcome, STEP_OUTCOME_FAILED);
        assert_true(f->timed_out);
        assert_string_equal(f->message, "timed out after 200ms");
        assert_int_equal(f->signal, SIGKILL);
        /* timeout + grace, not earlier; and not much later either. */
        assert_true(f->ended - f->started >= 400 * USEC_PER_MSEC);
        assert_true(f->ended - f->started < 5 * USEC_PER_SEC);
}

static void test_timeout_honouring_sigterm(void **state) {
        Fixture *f = *state;
        char *argv[] = { (char *) "/bin/sleep", (char *) "30", NULL };
        StepRunnerParameters p = {
                .argv = argv,
                .output_fd = -1,
                .timeout = 200 * USEC_PER_MSEC,
                .kill_grace = 10 * USEC_PER_SEC,
        };

        fixture_run(f, &p);
        assert_int_equal(f->outcome, STEP_OUTCOME_FAILED);
        assert_true(f->timed_out);
        assert_string_equal(f->message, "timed out after 200ms");
        assert_int_equal(f->signal, SIGTERM);
        assert_true(f->ended - f->started < 5 * USEC_PER_SEC);
}

static void test_stop(void **state) {
        _cleanup_close_ int null_fd = open_null();
        Fixture *f = *state;
        /* Exits 0 on SIGTERM, like a step with a graceful shutdown: still STOPPED, not COMPLETED. */
        char *argv[] = { (char *) "/bin/sh", (char *) "-c",
                         (char *) "trap 'exit 0' TERM; while :; do sleep 0.05; done", NULL };
        char *env[] = { (char *) "PATH=/usr/bin:/bin", NULL };
        StepRunnerParameters p = {
                .argv = argv,
                .environment = env,
                .output_fd = null_fd,   /* the shell reports its killed sleep */
                .timeout = 30 * USEC_PER_SEC,
                .kill_grace = 10 * USEC_PER_SEC,
        };

        f->stop_after = 200 * USEC_PER_MSEC;
        fixture_run(f, &p);
        assert_int_equal(f->outcome, STEP_OUTCOME_STOPPED);
        assert_string_equal(f->message, "stopped: operator request");
        assert_false(f->timed_out);
        assert_true(f->ended - f->started < 5 * USEC_PER_SEC);
        fixture_reset(f);

        /* A step ignoring SIGTERM gets SIGKILL after the grace. */
        argv[2] = (char *) "trap '' TERM; while :; do sleep 0.05; done";
        p.kill_grace = 200 * USEC_PER_MSEC;
        f->stop_after = 100 * USEC_PER_MSEC;
        fixture_run(f, &p);
        assert_int_equal(f->outcome, STEP_OUTCOME_STOPPED);
        assert_int_equal(f->signal, SIGKILL);
        assert_true(f->ended - f->started >= 300 * USEC_PER_MSEC);
}

static void test_leftovers_killed(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *pidfile = test_path(dir, "pid"), *script = NULL, *text = NULL;
        Fixture *f = *state;
        pid_t pid;
        int status;

        /* Orphans come to us rather than to PID 1, so we can see how they died. */
        assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);

        assert_int_equal(asprintf(&script, "sleep 30 & echo $! > %s; exit 0", pidfile) > 0, 1);
        run_shell(f, script, -1);
        assert_int_equal(f->outcome, STEP_OUTCOME_SUCCESS);

        text = read_file(pidfile);
        pid = (pid_t) atoi(text);
        assert_true(pid > 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGKILL);

        assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0), 0);
}

static void test_free_while_running(void **state) {
        Fixture *f = *state;
        char *argv[] = { (char *) "/bin/sleep", (char *) "30", NULL };
        StepRunnerParameters p = { .argv = argv, .output_fd = -1 };
        pid_t pid;

        assert_int_equal(step_runner_start(f->event, &p, &callbacks, f, &f->runner), 0);
        pid = step_runner_get_pid(f->runner);
        f->runner = step_runner_free(f->runner);

        /* Killed and reaped: the PID is gone, not a zombie. */
        assert_int_equal(kill(pid, 0), -1);
        assert_int_equal(errno, ESRCH);
        assert_false(f->finished);
}

/* ---- what the child sees ---- */

static void test_child_environment(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *out = test_path(dir, "out"), *script = NULL, *text = NULL;
        _cleanup_close_ int output_fd = -EBADF, leak_fd = -EBADF;
        Fixture *f = *state;
        sigset_t mask, saved;

        output_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(output_fd >= 0);
        /* Not CLOEXEC, as a careless library in the daemon might leave it. */
        leak_fd = open("/dev/null", O_RDONLY);
        assert_true(leak_fd > STEP_NOTIFY_FD);

        /* The daemon has blocked and ignored signals; the step must not inherit either. */
        assert_int_equal(sigemptyset(&mask), 0);
        assert_int_equal(sigaddset(&mask, SIGUSR1), 0);
        assert_int_equal(sigprocmask(SIG_BLOCK, &mask, &saved), 0);
        assert_true(signal(SIGPIPE, SIG_IGN) != SIG_ERR);

        assert_int_equal(asprintf(&script,
                                  "echo out; echo err >&2; "
                                  "if read x; then echo stdin-data; else echo stdin-eof; fi; "
                                  "[ -e /proc/$$/fd/%i ] && echo leaked || echo closed; "
                                  "[ -S /proc/$$/fd/3 ] && echo notify=$BATCH_NOTIFY_FD; "
                                  /* builtins only: while dash forks, it blocks all signals itself */
                                  "while read -r line; do case $line in SigBlk:*|SigIgn:*) echo \"$line\";; esac; done < /proc/$$/status; "
                                  "read -r _ _ _ _ pgid _ < /proc/$$/stat; [ $pgid -eq $$ ] && echo own-group; "
                                  "pwd",
                                  leak_fd) > 0, 1);
        run_shell(f, script, output_fd);

        assert_int_equal(sigprocmask(SIG_SETMASK, &saved, NULL), 0);
        assert_true(signal(SIGPIPE, SIG_DFL) != SIG_ERR);

        assert_int_equal(f->outcome, STEP_OUTCOME_SUCCESS);
        text = read_file(out);
        assert_string_equal(text,
                            "out\nerr\nstdin-eof\nclosed\nnotify=3\n"
                            "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
                            "own-group\n/\n");
}

/* The test binary as a step: writes its arguments, working directory and environment, NUL-separated. */
static int dump(int argc, char *argv[]) {
        extern char **environ;
        char cwd[PATH_MAX];
        FILE *f;

        f = fopen(argv[2], "we");
        if (!f || !getcwd(cwd, sizeof(cwd)))
                return 1;
        for (int i = 3; i < argc; i++)
                fprintf(f, "arg:%s%c", argv[i], 0);
        fprintf(f, "cwd:%s%c", cwd, 0);
        for (char **e = environ; *e; e++)
                fprintf(f, "env:%s%c", *e, 0);
        return fclose(f) == 0 ? 0 : 1;
}

static void test_argv_verbatim(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *out = test_path(dir, "out"), *x = test_path(dir, "X"), *y = test_path(dir, "Y"),
                *buf = NULL;
        static const char *const args[] = { "; rm -rf /", "$(touch X)", "`touch Y`", "a b", "", "*", "\n", "'\"", "--" };
        char *argv[ELEMENTSOF(args) + 4] = { self_path, (char *) "--dump", out };
        char *env[] = { (char *) "FOO=bar $(touch X)", (char *) "BATCH_NOTIFY_FD=99", NULL };
        Fixture *f = *state;
        StepRunnerParameters p = {
                .argv = argv,
                .environment = env,
                .working_directory = dir,
                .output_fd = -1,
        };
        _cleanup_fclose_ FILE *in = NULL;
        size_t size = 0, i = 0;
        bool saw_notify = false, saw_foo = false, saw_cwd = false;

        for (size_t k = 0; k < ELEMENTSOF(args); k++)
                argv[3 + k] = (char *) args[k];

        fixture_run(f, &p);
        assert_int_equal(f->outcome, STEP_OUTCOME_SUCCESS);

        in = fopen(out, "re");
        assert_non_null(in);
        while (getdelim(&buf, &size, '\0', in) > 0) {
                if (strneq(buf, "arg:", 4)) {
                        assert_true(i < ELEMENTSOF(args));
                        assert_string_equal(buf + 4, args[i++]);
                } else if (strneq(buf, "cwd:", 4)) {
                        assert_string_equal(buf + 4, dir);
                        saw_cwd = true;
                } else if (streq(buf, "env:BATCH_NOTIFY_FD=3"))
                        saw_notify = true;
                else if (streq(buf, "env:FOO=bar $(touch X)"))
                        saw_foo = true;
                else
                        fail_msg("unexpected entry '%s'", buf);
        }
        assert_int_equal(i, ELEMENTSOF(args));
        assert_true(saw_notify && saw_foo && saw_cwd);

        /* Nothing was interpreted. */
        assert_int_equal(access(x, F_OK), -1);
        assert_int_equal(access(y, F_OK), -1);
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        Fixture *f = userdata;
        usec_t n = now_usec(CLOCK_MONOTONIC);

        if (f->last_tick > 0)
                f->max_gap = MAX(f->max_gap, n - f->last_tick);
        f->last_tick = n;
        f->ticks++;
        /* Enough ticks went by while the step wrote without pause: the loop never waited on its output. */
        if (f->ticks == 5 && f->runner && step_runner_is_running(f->runner))
                assert_int_equal(step_runner_stop(f->runner, "enough output"), 0);

        assert_int_equal(sd_event_source_set_time_relative(s, 5 * USEC_PER_MSEC), 0);
        assert_int_equal(sd_event_source_set_enabled(s, SD_EVENT_ONESHOT), 0);
        return 0;
}

static void test_big_output(void **state) {
        _cleanup_close_ int null_fd = open_null();
        Fixture *f = *state;
        /* A step that writes as fast as it can and never ends by itself: the loop has to keep ticking meanwhile,
         * and the tick handler stops the step after five ticks. A loop that waited on the step's output would
         * never tick and the test would hang (and fail at its deadline). No figure is asserted: how many bytes
         * pass between two ticks depends on the machine. */
        char *argv[] = { (char *) "/usr/bin/yes", (char *) "batchd", NULL };
        StepRunnerParameters p = { .argv = argv, .output_fd = null_fd, .identifier = NULL };
        usec_t deadline;

        f->started = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(step_runner_start(f->event, &p, &callbacks, f, &f->runner), 0);
        /* Accuracy 1µs: the default of 250ms would let sd-event coalesce the ticks away. */
        assert_int_equal(sd_event_add_time_relative(f->event, &f->tick_source, CLOCK_MONOTONIC, 5 * USEC_PER_MSEC, 1,
                                                    on_tick, f), 0);

        deadline = f->started + 60 * USEC_PER_SEC;
        while (!f->finished) {
                assert_true(now_usec(CLOCK_MONOTONIC) < deadline);
                assert_true(sd_event_run(f->event, 1 * USEC_PER_SEC) >= 0);
        }

        print_message("endless output stopped after %u ticks, %llu ms, largest gap %llu ms\n", f->ticks,
                      (unsigned long long) ((f->ended - f->started) / USEC_PER_MSEC),
                      (unsigned long long) (f->max_gap / USEC_PER_MSEC));
        assert_true(f->ticks >= 5);
        assert_int_equal(f->outcome, STEP_OUTCOME_STOPPED);
}

static void test_journal_fallback(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *out = test_path(dir, "out"), *text = NULL;
        _cleanup_close_ int output_fd = -EBADF;
        Fixture *f = *state;
        char *argv[] = { (char *) "/bin/echo", (char *) "hello", NULL };
        StepRunnerParameters p = { .argv = argv, .identifier = "test-job" };

        if (access("/run/systemd/journal/stdout", F_OK) >= 0)
                skip();         /* output goes to the real journal here; nothing to check in a file */

        output_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(output_fd >= 0);
        p.output_fd = output_fd;

        fixture_run(f, &p);
        assert_int_equal(f->outcome, STEP_OUTCOME_SUCCESS);
        text = read_file(out);
        assert_string_equal(text, "hello\n");
}

/* With journal fields but no journald there is no relay: the output goes to the fallback, unchanged. */
static void test_journal_fallback_with_fields(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *out = test_path(dir, "out"), *text = NULL;
        _cleanup_close_ int output_fd = -EBADF;
        Fixture *f = *state;
        char *argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) "echo '<3>one'; echo two >&2; exit 3", NULL };
        char *fields[] = { (char *) "BATCH_JOB_EXECUTION_ID=7", (char *) "BATCH_STEP_NAME=s", NULL };
        StepRunnerParameters p = { .argv = argv, .identifier = "test-job", .log_fields = fields };

        if (access("/run/systemd/journal/socket", F_OK) >= 0)
                skip();         /* output goes to the real journal here; nothing to check in a file */

        output_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(output_fd >= 0);
        p.output_fd = output_fd;

        fixture_run(f, &p);
        assert_int_equal(f->outcome, STEP_OUTCOME_FAILED);
        assert_int_equal(f->exit_status, 3);
        text = read_file(out);
        assert_string_equal(text, "<3>one\ntwo\n");
}

/* The spec batchd hands to batchd-exec, journal fields included, comes back as it went. */
static void test_exec_spec_round_trip(void **state) {
        char *argv[] = { (char *) "/bin/true", (char *) "a b", NULL };
        char *envp[] = { (char *) "A=1", NULL };
        char *fields[] = { (char *) "BATCH_JOB_EXECUTION_ID=7", (char *) "BATCH_STEP_NAME=load data", NULL };
        ExecSpec in = {
                .user = (char *) "nobody",
                .working_directory = (char *) "/tmp",
                .identifier = (char *) "job",
                .argv = argv,
                .envp = envp,
                .log_fields = fields,
                .user_environment = true,
        };
        _cleanup_(exec_spec_done) ExecSpec out = {};
        _cleanup_close_ int fd = -EBADF;

        assert_int_equal(exec_spec_to_memfd(&in, &fd), 0);
        assert_int_equal(exec_spec_from_fd(fd, &out), 0);
        assert_string_equal(out.user, "nobody");
        assert_string_equal(out.working_directory, "/tmp");
        assert_string_equal(out.identifier, "job");
        assert_string_equal(out.argv[1], "a b");
        assert_null(out.argv[2]);
        assert_string_equal(out.envp[0], "A=1");
        assert_string_equal(out.log_fields[0], "BATCH_JOB_EXECUTION_ID=7");
        assert_string_equal(out.log_fields[1], "BATCH_STEP_NAME=load data");
        assert_null(out.log_fields[2]);
        assert_true(out.user_environment);

        /* Without fields: none come back. */
        exec_spec_done(&out);
        fd = safe_close(fd);
        in.log_fields = NULL;
        assert_int_equal(exec_spec_to_memfd(&in, &fd), 0);
        assert_int_equal(exec_spec_from_fd(fd, &out), 0);
        assert_null(out.log_fields);
}

static void test_user(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *out = test_path(dir, "out"), *text = NULL, *expected = NULL;
        _cleanup_close_ int output_fd = -EBADF;
        Fixture *f = *state;
        char *argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) "id -u; id -g; id -G; pwd", NULL };
        char *env[] = { (char *) "PATH=/usr/bin:/bin", NULL };
        StepRunnerParameters p = { .argv = argv, .environment = env };
        struct passwd *pw;

        if (geteuid() != 0 || !(pw = getpwnam("nobody")))
                skip();

        output_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(output_fd >= 0);
        p.output_fd = output_fd;
        p.user = "nobody";

        fixture_run(f, &p);
        assert_int_equal(f->outcome, STEP_OUTCOME_SUCCESS);
        text = read_file(out);
        /* No supplementary groups of root survive; nobody's own are its primary group only. */
        assert_int_equal(asprintf(&expected, "%u\n%u\n%u\n/\n", pw->pw_uid, pw->pw_gid, pw->pw_gid) > 0, 1);
        assert_string_equal(text, expected);
        fixture_reset(f);

        /* The user's permissions apply from chdir() on. */
        p.working_directory = dir;      /* 0700 root */
        fixture_run(f, &p);
        assert_int_equal(f->outcome, STEP_OUTCOME_FAILED);
        assert_int_equal(f->error, -EACCES);
}

/* ---- the protocol, through batchctl ---- */

static const char *batchctl(void) {
        const char *b = getenv("BATCHCTL");

        return b && access(b, X_OK) >= 0 ? b : NULL;
}

static void run_batchctl_script(Fixture *f, const char *script, const ExecutionContext *step_context,
                                const ExecutionContext *job_context, int output_fd) {
        _cleanup_free_ char *b = NULL;
        char *argv[] = { (char *) "/bin/sh", (char *) "-ec", (char *) script, (char *) "sh", NULL };
        char *env[] = { (char *) "PATH=/usr/bin:/bin", NULL, NULL };
        StepRunnerParameters p = {
                .argv = argv,
                .environment = env,
                .output_fd = output_fd,
                .step_context = step_context,
                .job_context = job_context,
                .timeout = 60 * USEC_PER_SEC,
                .kill_grace = 1 * USEC_PER_SEC,
        };

        assert_int_equal(asprintf(&b, "B=%s", batchctl()) > 0, 1);
        env[1] = b;
        fixture_run(f, &p);
}

static void test_batchctl(void **state) {
        _cleanup_(execution_context_freep) ExecutionContext *step_context = NULL, *job_context = NULL;
        Fixture *f = *state;

        if (!batchctl())
                skip();

        assert_int_equal(execution_context_deserialize("{\"restored\":\"yes\"}", &step_context), 0);
        assert_int_equal(execution_context_deserialize("{\"shared.before\":1}", &job_context), 0);

        run_batchctl_script(f,
                "test \"$($B step get restored)\" = yes\n"
                "test \"$($B step get --job shared.before)\" = 1\n"
                "rc=0; $B step get missing || rc=$?; test $rc -eq 1\n"
                "$B step put counter 5\n"
                "$B step put --job shared 'hello world'\n"
                "test \"$($B step get counter)\" = 5\n"          /* the step reads its own writes */
                "$B step commit --read 10 --write 8 --filter 2\n"
                "$B step status 'halfway there'\n"
                "$B step put counter -6\n"                       /* a value that looks like an option */
                "$B step commit --read-skip 1 --write-skip 2 --process-skip 3\n"
                "$B step exit-code COMPLETED_WITH_SKIPS '3 items skipped'\n"
                "$B step put 'x;y' '$(touch X); rm -rf /'\n"
                "test \"$($B step get 'x;y')\" = '$(touch X); rm -rf /'\n"
                "$B step commit\n"
                /* Concurrent callers share the channel and still get their own replies. */
                "for i in 1 2 3 4 5 6 7 8; do $B step put k$i v$i; done\n"
                "pids=\n"
                "for i in 1 2 3 4 5 6 7 8; do\n"
                "  (for j in 1 2 3 4 5; do test \"$($B step get k$i)\" = v$i; done) & pids=\"$pids $!\"\n"
                "done\n"
                "for p in $pids; do wait $p; done\n"
                "$B step commit --write 1\n",
                step_context, job_context, -1);

        assert_int_equal(f->outcome, STEP_OUTCOME_SUCCESS);
        assert_int_equal(f->n_commits, 4);

        assert_int_equal(f->commits[0].contribution.read_count, 10);
        assert_int_equal(f->commits[0].contribution.write_count, 8);
        assert_int_equal(f->commits[0].contribution.filter_count, 2);
        assert_int_equal(f->commits[0].contribution.read_skip_count, 0);
        assert_string_equal(f->commits[0].step_json, "{\"counter\":\"5\",\"restored\":\"yes\"}");
        assert_non_null(f->commits[0].job_json);
        assert_string_equal(f->commits[0].job_json, "{\"shared\":\"hello world\",\"shared.before\":1}");

        assert_int_equal(f->commits[1].contribution.read_count, 0);
        assert_int_equal(f->commits[1].contribution.read_skip_count, 1);
        assert_int_equal(f->commits[1].contribution.write_skip_count, 2);
        assert_int_equal(f->commits[1].contribution.process_skip_count, 3);
        assert_string_equal(f->commits[1].step_json, "{\"counter\":\"-6\",\"restored\":\"yes\"}");
        assert_null(f->commits[1].job_json);   /* no job change staged */

        assert_true(step_contribution_is_zero(&f->commits[2].contribution));
        assert_string_equal(f->commits[2].step_json,
                            "{\"counter\":\"-6\",\"restored\":\"yes\",\"x;y\":\"$(touch X); rm -rf /\"}");

        assert_int_equal(f->commits[3].contribution.write_count, 1);
        assert_non_null(strstr(f->commits[3].step_json, "\"k8\":\"v8\""));

        assert_string_equal(f->status, "halfway there");
        assert_string_equal(f->exit_code, "COMPLETED_WITH_SKIPS");
        assert_string_equal(f->exit_description, "3 items skipped");

        /* The runner's own view matches the last commit. */
        _cleanup_free_ char *last = context_json(step_runner_get_step_context(f->runner));
        assert_string_equal(last, f->commits[3].step_json);
        _cleanup_free_ char *job = context_json(step_runner_get_job_context(f->runner));
        assert_string_equal(job, f->commits[0].job_json);
}

static void test_batchctl_commit_semantics(void **state) {
        Fixture *f = *state;

        if (!batchctl())
                skip();

        /* A failed COMMIT applies nothing (not even its own counts) and keeps what was staged before it. */
        f->fail_commits = 1;
        run_batchctl_script(f,
                "$B step put a 1\n"
                "if $B step commit --read 5 2>/dev/null; then exit 10; fi\n"
                "$B step commit --read 2\n"
                "$B step put b 2\n",    /* left for the implicit final commit of a successful step */
                NULL, NULL, -1);
        assert_int_equal(f->outcome, STEP_OUTCOME_SUCCESS);
        assert_int_equal(f->commit_calls, 3);
        assert_int_equal(f->n_commits, 2);
        assert_int_equal(f->commits[0].contribution.read_count, 2);
        assert_string_equal(f->commits[0].step_json, "{\"a\":\"1\"}");
        assert_string_equal(f->commits[1].step_json, "{\"a\":\"1\",\"b\":\"2\"}");
        assert_false(f->rolled_back);
        fixture_reset(f);

        /* A failing step's uncommitted work is rolled back, and that is a rollback (Spring's TaskletStep
         * counts the failing chunk's). */
        run_batchctl_script(f, "$B step put a 1\nexit 4\n", NULL, NULL, -1);
        assert_int_equal(f->outcome, STEP_OUTCOME_FAILED);
        assert_int_equal(f->commit_calls, 0);
        assert_true(f->rolled_back);
        _cleanup_free_ char *json = context_json(step_runner_get_step_context(f->runner));
        assert_string_equal(json, "{}");
        fixture_reset(f);

        /* Failing right after a commit discards nothing: no rollback. */
        run_batchctl_script(f, "$B step put a 1\n$B step commit --read 2\nexit 4\n", NULL, NULL, -1);
        assert_int_equal(f->outcome, STEP_OUTCOME_FAILED);
        assert_int_equal(f->n_commits, 1);
        assert_false(f->rolled_back);
        fixture_reset(f);

        /* A final commit that fails fails the step, and its chunk is rolled back. */
        f->fail_commits = 1;
        run_batchctl_script(f, "$B step put a 1\n", NULL, NULL, -1);
        assert_int_equal(f->outcome, STEP_OUTCOME_FAILED);
        assert_string_equal(f->message, "Failed to commit: Input/output error");
        assert_true(f->rolled_back);
}

/* The database is locked (the commit callback says -EAGAIN): the step's COMMIT is answered only once the callback
 * took it, the step waits meanwhile, nothing is applied twice, and the final commit of a successful step waits
 * the same way before the step is reported finished. */
static void test_batchctl_commit_deferred(void **state) {
        Fixture *f = *state;

        if (!batchctl())
                skip();

        f->busy_each = f->busy_left = 3;
        run_batchctl_script(f,
                "$B step put a 1\n"
                "$B step commit --read 2\n"
                "$B step put b 2\n",
                NULL, NULL, -1);
        assert_int_equal(f->outcome, STEP_OUTCOME_SUCCESS);
        assert_int_equal(f->commit_calls, 8);
        assert_int_equal(f->n_commits, 2);
        assert_int_equal(f->commits[0].contribution.read_count, 2);
        assert_string_equal(f->commits[0].step_json, "{\"a\":\"1\"}");
        assert_true(step_contribution_is_zero(&f->commits[1].contribution));
        assert_string_equal(f->commits[1].step_json, "{\"a\":\"1\",\"b\":\"2\"}");
}

static void test_batchctl_outside_step(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *out = test_path(dir, "out"), *text = NULL;
        _cleanup_close_ int output_fd = -EBADF;
        Fixture *f = *state;

        if (!batchctl())
                skip();

        output_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(output_fd >= 0);
        run_batchctl_script(f,
                "rc=0; env -u BATCH_NOTIFY_FD $B step commit || rc=$?; echo rc=$rc\n"
                "rc=0; BATCH_NOTIFY_FD=0 $B step status x || rc=$?; echo rc=$rc\n"
                "rc=0; $B step get 'two words' || rc=$?; echo rc=$rc\n"
                "rc=0; $B step frobnicate || rc=$?; echo rc=$rc\n",
                NULL, NULL, output_fd);
        assert_int_equal(f->outcome, STEP_OUTCOME_SUCCESS);
        text = read_file(out);
        assert_string_equal(text,
                            "Not running inside a batchd step ($BATCH_NOTIFY_FD is not set).\n"
                            "rc=1\n"
                            "$BATCH_NOTIFY_FD=0 does not refer to a batchd step channel: Socket operation on non-socket\n"
                            "rc=1\n"
                            "Invalid request: Key must be a non-empty word without whitespace or control characters\n"
                            "rc=2\n"
                            "Unknown step verb 'frobnicate', see --help.\n"
                            "rc=1\n");
}

/* The Python client of docs/step-protocol.md, taken from the document itself so the two cannot drift apart. */
static void test_python_client_from_docs(void **state) {
        _cleanup_(execution_context_freep) ExecutionContext *step_context = NULL;
        _cleanup_free_ char *doc = NULL, *program = NULL;
        const char *path = getenv("STEP_PROTOCOL_DOC"), *start, *end;
        Fixture *f = *state;
        char *argv[] = { (char *) "/usr/bin/python3", (char *) "-c", NULL, NULL };
        StepRunnerParameters p = { .argv = argv, .output_fd = -1, .timeout = 60 * USEC_PER_SEC };

        if (!path || access(path, R_OK) < 0 || access(argv[0], X_OK) < 0)
                skip();

        doc = read_file(path);
        start = strstr(doc, "```python\n");
        assert_non_null(start);
        start += strlen("```python\n");
        end = strstr(start, "\nstep = Step()");        /* the class, without the document's usage example */
        assert_non_null(end);

        assert_int_equal(asprintf(&program,
                "%.*s\n"
                "step = Step()\n"
                "assert step.get('missing') is None\n"
                "assert step.get('restored') == 'yes'\n"
                "step.put('py.key', 'spaces and\\na newline')\n"
                "assert step.get('py.key') == 'spaces and\\na newline'\n"
                "step.put('shared', '1', scope='job')\n"
                "step.commit(read=7, write=6, filter=1)\n"
                "step.status('from python')\n"
                "step.exit_code('PY_DONE', 'described')\n"
                "try:\n"
                "    step.put('bad\\nkey', 'x')\n"
                "except OSError as e:\n"
                "    assert e.errno == 22, e\n"
                "else:\n"
                "    raise AssertionError('bad key accepted')\n",
                (int) (end - start), start) > 0, 1);
        argv[2] = program;

        assert_int_equal(execution_context_deserialize("{\"restored\":\"yes\"}", &step_context), 0);
        p.step_context = step_context;

        fixture_run(f, &p);
        assert_string_equal(f->message, "");
        assert_int_equal(f->outcome, STEP_OUTCOME_SUCCESS);
        assert_int_equal(f->n_commits, 1);
        assert_int_equal(f->commits[0].contribution.read_count, 7);
        assert_int_equal(f->commits[0].contribution.write_count, 6);
        assert_int_equal(f->commits[0].contribution.filter_count, 1);
        assert_string_equal(f->commits[0].step_json, "{\"py.key\":\"spaces and\\na newline\",\"restored\":\"yes\"}");
        assert_string_equal(f->commits[0].job_json, "{\"shared\":\"1\"}");
        assert_string_equal(f->status, "from python");
        assert_string_equal(f->exit_code, "PY_DONE");
        assert_string_equal(f->exit_description, "described");
}

/* ---- the protocol, raw: malformed input, descriptor games, a client that does not read its replies ---- */

#define RAW_FLOOD 3000

static int raw_send(const void *buf, size_t n, const int *fds, size_t n_fds, int flags) {
        union {
                struct cmsghdr cmsghdr;
                uint8_t buf[CMSG_SPACE(sizeof(int) * 4)];
        } control = {};
        struct iovec iov = { .iov_base = (void *) buf, .iov_len = n };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (n_fds > 0) {
                struct cmsghdr *c;

                mh.msg_control = &control;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
        }

        return sendmsg(STEP_NOTIFY_FD, &mh, MSG_NOSIGNAL | flags) < 0 ? -errno : 0;
}

static bool raw_expect(int fd, const char *expected) {
        char buf[256];
        ssize_t n;

        n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n < 0)
                return false;
        buf[n] = '\0';
        if (!strneq(buf, expected, strlen(expected))) {
                fprintf(stderr, "raw: expected '%s', got '%s'\n", expected, buf);
                return false;
        }
        return true;
}

static int raw(void) {
        static char big[STEP_MESSAGE_MAX + 100];
        char err[64];
        int pipefd[2], pair[2];
        unsigned sent = 0, received = 0;

#define SEND(s) raw_send((s), strlen(s), NULL, 0, 0)
#define CHECK(expr) do { if (!(expr)) { fprintf(stderr, "raw: line %i failed\n", __LINE__); return __LINE__ % 200 + 1; } } while (0)

        CHECK(SEND("FROB") == 0);
        snprintf(err, sizeof(err), "ERR %i ", EINVAL);
        CHECK(raw_expect(STEP_NOTIFY_FD, err));

        CHECK(SEND("GET step \xff") == 0);
        snprintf(err, sizeof(err), "ERR %i ", EBADMSG);
        CHECK(raw_expect(STEP_NOTIFY_FD, err));

        memset(big, 'A', sizeof(big));
        CHECK(raw_send(big, sizeof(big), NULL, 0, 0) == 0);
        snprintf(err, sizeof(err), "ERR %i ", EMSGSIZE);
        CHECK(raw_expect(STEP_NOTIFY_FD, err));

        CHECK(raw_send("", 0, NULL, 0, 0) == 0);
        snprintf(err, sizeof(err), "ERR %i Empty message", EINVAL);
        CHECK(raw_expect(STEP_NOTIFY_FD, err));

        /* Two descriptors: refused on the shared channel. */
        CHECK(pipe2(pipefd, O_CLOEXEC) == 0);
        CHECK(raw_send("GET step k", 10, pipefd, 2, 0) == 0);
        snprintf(err, sizeof(err), "ERR %i ", EBADMSG);
        CHECK(raw_expect(STEP_NOTIFY_FD, err));

        /* A reply descriptor that is no socket: the request is dropped, unanswered and not applied. */
        CHECK(raw_send("PUT step bad yes", 16, pipefd, 1, 0) == 0);
        CHECK(SEND("PUT step after yes") == 0);
        CHECK(raw_expect(STEP_NOTIFY_FD, "OK"));
        CHECK(SEND("GET step bad") == 0);
        CHECK(raw_expect(STEP_NOTIFY_FD, "NOTFOUND"));
        close(pipefd[0]);
        close(pipefd[1]);

        /* A private reply socket gets the reply; the shared channel stays quiet. */
        CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) == 0);
        CHECK(raw_send("GET step after", 14, pair + 1, 1, 0) == 0);
        close(pair[1]);
        CHECK(raw_expect(pair[0], "VALUE yes"));
        close(pair[0]);
        CHECK(recv(STEP_NOTIFY_FD, err, sizeof(err), MSG_DONTWAIT) < 0 && errno == EAGAIN);

        /* Flood without reading replies until the channel pushes back; every request gets its reply. */
        while (received < RAW_FLOOD) {
                while (sent < RAW_FLOOD) {
                        int r = raw_send("ADD read=1", 10, NULL, 0, MSG_DONTWAIT);

                        if (r == -EAGAIN)
                                break;
                        CHECK(r == 0);
                        sent++;
                }
                CHECK(received < sent);
                CHECK(raw_expect(STEP_NOTIFY_FD, "OK"));
                received++;
        }
        CHECK(SEND("COMMIT write=1") == 0);
        CHECK(raw_expect(STEP_NOTIFY_FD, "OK"));

        CHECK(SEND("ADD read=9223372036854775807") == 0);
        CHECK(raw_expect(STEP_NOTIFY_FD, "OK"));
        CHECK(SEND("ADD read=1") == 0);
        snprintf(err, sizeof(err), "ERR %i ", ERANGE);
        CHECK(raw_expect(STEP_NOTIFY_FD, err));

        return 0;
#undef SEND
#undef CHECK
}

static void test_raw_protocol(void **state) {
        Fixture *f = *state;
        char *argv[] = { self_path, (char *) "--raw", NULL };
        StepRunnerParameters p = { .argv = argv, .output_fd = -1, .timeout = 60 * USEC_PER_SEC };

        fixture_run(f, &p);
        assert_string_equal(f->message, "");
        assert_int_equal(f->outcome, STEP_OUTCOME_SUCCESS);
        assert_int_equal(f->n_commits, 2);
        assert_int_equal(f->commits[0].contribution.read_count, RAW_FLOOD);
        assert_int_equal(f->commits[0].contribution.write_count, 1);
        assert_string_equal(f->commits[0].step_json, "{\"after\":\"yes\"}");
        /* The overflowing ADD was refused, the one before it is in the final commit. */
        assert_int_equal(f->commits[1].contribution.read_count, INT64_MAX);
}

int main(int argc, char *argv[]) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_success, setup, teardown),
                cmocka_unit_test_setup_teardown(test_exit_status, setup, teardown),
                cmocka_unit_test_setup_teardown(test_signal, setup, teardown),
                cmocka_unit_test_setup_teardown(test_exec_failure, setup, teardown),
                cmocka_unit_test_setup_teardown(test_invalid_parameters, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unknown_user_fails_the_step, setup, teardown),
                cmocka_unit_test_setup_teardown(test_missing_helper, setup, teardown),
                cmocka_unit_test_setup_teardown(test_timeout_ignoring_sigterm, setup, teardown),
                cmocka_unit_test_setup_teardown(test_timeout_honouring_sigterm, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
                cmocka_unit_test_setup_teardown(test_leftovers_killed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_free_while_running, setup, teardown),
                cmocka_unit_test_setup_teardown(test_child_environment, setup, teardown),
                cmocka_unit_test_setup_teardown(test_argv_verbatim, setup, teardown),
                cmocka_unit_test_setup_teardown(test_big_output, setup, teardown),
                cmocka_unit_test_setup_teardown(test_journal_fallback, setup, teardown),
                cmocka_unit_test_setup_teardown(test_journal_fallback_with_fields, setup, teardown),
                cmocka_unit_test(test_exec_spec_round_trip),
                cmocka_unit_test_setup_teardown(test_user, setup, teardown),
                cmocka_unit_test_setup_teardown(test_batchctl, setup, teardown),
                cmocka_unit_test_setup_teardown(test_batchctl_commit_semantics, setup, teardown),
                cmocka_unit_test_setup_teardown(test_batchctl_commit_deferred, setup, teardown),
                cmocka_unit_test_setup_teardown(test_batchctl_outside_step, setup, teardown),
                cmocka_unit_test_setup_teardown(test_python_client_from_docs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_raw_protocol, setup, teardown),
        };
        sigset_t mask;
        ssize_t n;

        if (argc > 2 && streq(argv[1], "--dump"))
                return dump(argc, argv);
        if (argc > 1 && streq(argv[1], "--raw"))
                return raw();

        n = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);
        if (n < 0)
                return EXIT_FAILURE;
        self_path[n] = '\0';

        /* sd_event_add_child() insists, as it must in the daemon. */
        if (sigemptyset(&mask) < 0 || sigaddset(&mask, SIGCHLD) < 0 || sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return EXIT_FAILURE;

        log_set_max_level(getenv("BATCHD_TEST_DEBUG") ? LOG_DEBUG : LOG_INFO);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
