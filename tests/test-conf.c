/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <sys/stat.h>

#include "conf.h"
#include "tests.h"

/* A scratch configuration: DIR/batchd.conf pointing at DIR/jobs.d. */
typedef struct Fixture {
        char *dir;
        char *main_path;
        char *jobs_dir;
} Fixture;

static void fixture_done(Fixture *f) {
        free(f->main_path);
        free(f->jobs_dir);
        test_dir_freep(&f->dir);
}

static void write_file_mode(const char *path, const char *contents, mode_t mode) {
        test_write_file(path, contents);
        assert_int_equal(chmod(path, mode), 0);
}

static void fixture_write_main(Fixture *f, const char *extra) {
        _cleanup_free_ char *text = NULL;

        assert_true(asprintf(&text, "jobs_dir = \"%s\";\n%s", f->jobs_dir, strempty(extra)) >= 0);
        write_file_mode(f->main_path, text, 0644);
}

static void fixture_init(Fixture *f) {
        f->dir = test_dir_new();
        f->main_path = test_path(f->dir, "batchd.conf");
        f->jobs_dir = test_path(f->dir, "jobs.d");
        assert_int_equal(mkdir(f->jobs_dir, 0755), 0);
        /* Whatever the umask: the loader refuses group-writable directories. */
        assert_int_equal(chmod(f->jobs_dir, 0755), 0);
        fixture_write_main(f, NULL);
}

/* Returns the path, for building expected messages. */
static char *fixture_job_file(Fixture *f, const char *name, const char *contents) {
        char *p = test_path(f->jobs_dir, name);

        write_file_mode(p, contents, 0644);
        return p;
}

/* Pretends to run as root, which is when the user rules matter, but checks ownership against the uid
 * really creating the files. */
static ConfigLoadOptions options_for_test(bool strict) {
        return (ConfigLoadOptions) {
                .strict = strict,
                .owner_uid = geteuid(),
                .daemon_uid = 0,
        };
}

static size_t strv_count(char **l) {
        size_t n = 0;

        while (l && l[n])
                n++;
        return n;
}

/* Asserts that errors is exactly the list of messages given as a NULL-terminated argument list. */
static void assert_errors(char **errors, ...) {
        const char *expected;
        size_t i = 0;
        va_list ap;

        va_start(ap, errors);
        while ((expected = va_arg(ap, const char *))) {
                if (i >= strv_count(errors))
                        fail_msg("missing error #%zu: %s", i, expected);
                assert_string_equal(errors[i], expected);
                i++;
        }
        va_end(ap);

        if (strv_count(errors) != i)
                fail_msg("unexpected error: %s", errors[i]);
}

static char *format(const char *fmt, ...) _printf_(1, 2);

static char *format(const char *fmt, ...) {
        va_list ap;
        char *s;

        va_start(ap, fmt);
        assert_true(vasprintf(&s, fmt, ap) >= 0);
        va_end(ap);
        return s;
}

/* The job that error cases vary: valid as it is. */
#define JOB_HEAD "jobs = (\n  {\n    name = \"x\";\n    user = \"root\";\n"
#define JOB_STEPS "    steps = ( { name = \"s\"; exec = [ \"/bin/true\" ]; } );\n"
#define JOB_TAIL "  }\n);\n"

/* Loads a jobs directory holding only bad.conf, in non-strict mode, and checks the messages: each
 * expected one is "bad.conf:<line>: <message>" (with @PATH@ standing for bad.conf's path), followed by the
 * "skipped" note. */
static void check_bad_job_file(const char *contents, const char *const *expected, size_t n) {
        _cleanup_(fixture_done) Fixture f = {};
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_strv_free_ char **errors = NULL;
        _cleanup_free_ char *path = NULL;
        ConfigLoadOptions o = options_for_test(false);

        fixture_init(&f);
        path = fixture_job_file(&f, "bad.conf", contents);

        assert_int_equal(config_load(f.main_path, &o, &c, &errors), 0);
        assert_int_equal(c->n_jobs, 0);
        if (strv_count(errors) != n + 1)
                for (size_t i = 0; errors && errors[i]; i++)
                        print_message("got: %s\n", errors[i]);
        assert_int_equal(strv_count(errors), n + 1);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *e = NULL, *tail = strdup(expected[i]);
                char *at;

                assert_non_null(tail);
                /* Messages naming another place in the same file. */
                at = strstr(tail, "@PATH@");
                if (at) {
                        *at = '\0';
                        e = format("%s:%s%s%s", path, tail, path, at + 6);
                } else
                        e = format("%s:%s", path, tail);

                assert_string_equal(errors[i], e);
        }
        _cleanup_free_ char *skipped = format("%s: skipped: none of its jobs were loaded", path);
        assert_string_equal(errors[n], skipped);
}

#define CHECK_BAD(contents, ...)                                                        \
        do {                                                                            \
                const char *const _e[] = { __VA_ARGS__ };                               \
                check_bad_job_file((contents), _e, ELEMENTSOF(_e));                     \
        } while (0)

static void test_missing_main_file(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = test_path(dir, "nonexistent.conf");
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_strv_free_ char **errors = NULL;
        ConfigLoadOptions o = options_for_test(true);

        assert_int_equal(config_load(path, &o, &c, &errors), 0);
        assert_null(errors);
        assert_string_equal(c->path, path);
        assert_false(c->main_file_found);
        assert_string_equal(c->database, LOCALSTATEDIR "/lib/batchd/batch.db");
        assert_string_equal(c->jobs_dir, SYSCONFDIR "/batchd/jobs.d");
        assert_int_equal(c->max_concurrent_executions, 0);
        assert_null(c->admin_group);
        assert_int_equal(c->keep_days, 0);
        assert_int_equal(c->keep_executions, 0);
        assert_true(c->stop_timeout_usec == 90 * USEC_PER_SEC);
        assert_true(c->kill_grace_usec == 10 * USEC_PER_SEC);
        assert_false(c->timestamps_utc);
        assert_int_equal(c->context_format, CONTEXT_FORMAT_JSON);
        assert_false(c->cluster);
        assert_null(c->node_name);
        assert_true(c->node_timeout_usec == 15 * USEC_PER_SEC);
        /* The default jobs_dir belongs to the machine; only when it is absent are there surely no jobs. */
        if (access(SYSCONFDIR "/batchd/jobs.d", F_OK) < 0)
                assert_int_equal(c->n_jobs, 0);
}

static void test_valid(void **state) {
        _cleanup_(fixture_done) Fixture f = {};
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_strv_free_ char **errors = NULL;
        _cleanup_free_ char *a = NULL, *b = NULL, *junk = NULL, *main_extra = NULL;
        ConfigLoadOptions o = options_for_test(true);
        const JobConfig *j;
        const JobParameter *p;
        struct passwd *pw;
        struct group *gr;

        fixture_init(&f);
        main_extra = format("database = \":memory:\";\n"
                            "max_concurrent_executions = 4;\n"
                            "admin_group = \"root\";\n"
                            "keep_days = 30;\n"
                            "keep_executions = 100;\n"
                            "stop_timeout = \"2min\";\n"
                            "kill_grace = \"1h 30min\";\n"
                            "timestamps = \"utc\";\n"
                            "context_format = \"java\";\n"
                            "cluster = true;\n"
                            "node_name = \"node-1.example\";\n"
                            "node_timeout = \"3s\";\n");
        fixture_write_main(&f, main_extra);

        a = fixture_job_file(&f, "a.conf",
                "# two jobs\n"
                "jobs = (\n"
                "  {\n"                                                         /* line 3 */
                "    name = \"nightly.report-1\";\n"
                "    description = \"The report\";\n"
                "    restartable = false;\n"
                "    parameters = [ \"input=/data/in.csv\", \"-chunk(long)=10\", \"day(date)=2026-11-21\" ];\n"
                "    user = \"nobody\";\n"
                "    group = \"root\";\n"
                "    working_directory = \"/var/tmp\";\n"
                "    environment = [ \"LANG=C.UTF-8\", \"EMPTY=\", \"_X1=a=b\" ];\n"
                "    timeout = \"1h 30min\";\n"
                "    schedule = \"*-*-* 02:00:00\";\n"
                "    persistent = true;\n"
                "    randomized_delay = \"5min\";\n"
                "    overlap = \"queue\";\n"
                "    incrementer = \"run.id\";\n"
                "    schedule_parameter = \"day\";\n"
                "    catch_up = 7;\n"
                "    enabled = false;\n"
                "    steps = (\n"
                "      { name = \"extract\"; exec = [ \"/usr/bin/env\", \"${input}\" ]; timeout = \"5min\"; },\n"
                "      {\n"                                                     /* line 23 */
                "        name = \"load\";\n"
                "        exec = ( \"/bin/sh\", \"-c\", \"echo hi\" );\n"
                "        timeout = \"0\";\n"
                "        allow_start_if_complete = true;\n"
                "        start_limit = 3;\n"
                "      }\n"
                "    );\n"
                "  },\n"
                "  {\n"                                                         /* line 32 */
                "    name = \"minimal\";\n"
                "    user = \"root\";\n"
                "    steps = ( { name = \"only\"; exec = [ \"/bin/true\" ]; } );\n"
                "  }\n"
                ");\n");
        b = fixture_job_file(&f, "b.conf",
                "jobs = ( { name = \"from-b\"; user = \"root\"; schedule = \"daily\";\n"
                "           schedule_parameter = \"fired(datetime)\";\n"
                "           steps = ( { name = \"s\"; exec = [ \"/bin/true\" ]; } ); } );\n");
        /* An empty (all commented out) file is fine. */
        junk = fixture_job_file(&f, "c.conf", "# nothing here yet\n");
        junk = mfree(junk);

        /* Ignored: dotfiles, other suffixes, editor leftovers. Their contents would not even parse. */
        junk = test_path(f.jobs_dir, ".hidden.conf");
        write_file_mode(junk, "garbage {", 0644);
        junk = mfree(junk);
        junk = test_path(f.jobs_dir, "notes.txt");
        write_file_mode(junk, "garbage {", 0644);
        junk = mfree(junk);
        junk = test_path(f.jobs_dir, "a.conf~");
        write_file_mode(junk, "garbage {", 0666);
        junk = mfree(junk);
        junk = test_path(f.jobs_dir, "a.conf.dpkg-old");
        write_file_mode(junk, "garbage {", 0644);

        assert_int_equal(config_load(f.main_path, &o, &c, &errors), 0);
        assert_null(errors);

        assert_true(c->main_file_found);
        assert_string_equal(c->database, ":memory:");
        assert_string_equal(c->jobs_dir, f.jobs_dir);
        assert_int_equal(c->max_concurrent_executions, 4);
        assert_string_equal(c->admin_group, "root");
        assert_int_equal(c->admin_gid, 0);
        assert_int_equal(c->keep_days, 30);
        assert_int_equal(c->keep_executions, 100);
        assert_true(c->stop_timeout_usec == 120 * USEC_PER_SEC);
        assert_true(c->kill_grace_usec == 5400 * USEC_PER_SEC);
        assert_true(c->timestamps_utc);
        assert_int_equal(c->context_format, CONTEXT_FORMAT_JAVA);
        assert_true(c->cluster);
        assert_string_equal(c->node_name, "node-1.example");
        assert_true(c->node_timeout_usec == 3 * USEC_PER_SEC);

        /* File order, then order within the file. */
        assert_int_equal(c->n_jobs, 3);
        assert_string_equal(c->jobs[0]->name, "nightly.report-1");
        assert_string_equal(c->jobs[1]->name, "minimal");
        assert_string_equal(c->jobs[2]->name, "from-b");

        j = config_find_job(c, "nightly.report-1");
        assert_ptr_equal(j, c->jobs[0]);
        assert_string_equal(j->source_file, a);
        assert_int_equal(j->source_line, 3);
        assert_string_equal(j->description, "The report");
        assert_false(j->restartable);

        assert_int_equal(j->parameters.n, 3);
        p = job_parameters_get(&j->parameters, "input");
        assert_non_null(p);
        assert_int_equal(p->type, JOB_PARAMETER_STRING);
        assert_string_equal(p->value, "/data/in.csv");
        assert_true(p->identifying);
        p = job_parameters_get(&j->parameters, "chunk");
        assert_non_null(p);
        assert_int_equal(p->type, JOB_PARAMETER_LONG);
        assert_true(p->long_value == 10);
        assert_false(p->identifying);

        pw = getpwnam("nobody");
        assert_non_null(pw);
        assert_string_equal(j->user, "nobody");
        assert_int_equal(j->uid, pw->pw_uid);
        assert_string_equal(j->group, "root");
        assert_int_equal(j->gid, 0);

        assert_string_equal(j->working_directory, "/var/tmp");
        assert_int_equal(strv_count(j->environment), 3);
        assert_string_equal(j->environment[0], "LANG=C.UTF-8");
        assert_string_equal(j->environment[1], "EMPTY=");
        assert_string_equal(j->environment[2], "_X1=a=b");
        assert_true(j->timeout_usec == 5400 * USEC_PER_SEC);

        assert_string_equal(j->schedule, "*-*-* 02:00:00");
        assert_non_null(j->calendar);
        assert_true(j->persistent);
        assert_true(j->randomized_delay_usec == 300 * USEC_PER_SEC);
        assert_int_equal(j->overlap, JOB_OVERLAP_QUEUE);
        assert_int_equal(j->incrementer, JOB_INCREMENTER_RUN_ID);
        assert_string_equal(j->schedule_parameter, "day");
        assert_int_equal(j->schedule_parameter_type, JOB_PARAMETER_DATE);
        assert_int_equal(j->catch_up, 7);
        assert_false(j->enabled);

        assert_int_equal(j->n_steps, 2);
        assert_string_equal(j->steps[0].name, "extract");
        assert_int_equal(strv_count(j->steps[0].exec), 2);
        assert_string_equal(j->steps[0].exec[0], "/usr/bin/env");
        assert_string_equal(j->steps[0].exec[1], "${input}");
        assert_true(j->steps[0].timeout_usec == 300 * USEC_PER_SEC);
        assert_false(j->steps[0].allow_start_if_complete);
        assert_int_equal(j->steps[0].start_limit, STEP_START_LIMIT_UNLIMITED);
        assert_ptr_equal(job_config_find_step(j, "load"), j->steps + 1);
        assert_null(job_config_find_step(j, "nope"));
        assert_int_equal(j->steps[1].line, 23);
        assert_int_equal(strv_count(j->steps[1].exec), 3);
        assert_string_equal(j->steps[1].exec[2], "echo hi");
        /* "0" turns a timeout off, as in systemd. */
        assert_true(j->steps[1].timeout_usec == USEC_INFINITY);
        assert_true(j->steps[1].allow_start_if_complete);
        assert_int_equal(j->steps[1].start_limit, 3);

        /* Defaults. */
        j = config_find_job(c, "minimal");
        assert_non_null(j);
        assert_int_equal(j->source_line, 32);
        assert_null(j->description);
        assert_true(j->restartable);
        assert_int_equal(j->parameters.n, 0);
        assert_string_equal(j->user, "root");
        assert_int_equal(j->uid, 0);
        assert_int_equal(j->gid, 0);
        gr = getgrgid(0);
        assert_non_null(gr);
        assert_string_equal(j->group, gr->gr_name);
        assert_null(j->working_directory);
        assert_non_null(j->environment);
        assert_null(j->environment[0]);
        assert_true(j->timeout_usec == USEC_INFINITY);
        assert_null(j->schedule);
        assert_null(j->calendar);
        assert_false(j->persistent);
        assert_true(j->randomized_delay_usec == 0);
        assert_int_equal(j->overlap, JOB_OVERLAP_SKIP);
        assert_int_equal(j->incrementer, JOB_INCREMENTER_NONE);
        assert_null(j->schedule_parameter);
        assert_true(j->enabled);
        assert_int_equal(j->n_steps, 1);
        assert_true(j->steps[0].timeout_usec == USEC_INFINITY);

        j = config_find_job(c, "from-b");
        assert_non_null(j);
        assert_string_equal(j->source_file, b);
        assert_string_equal(j->schedule_parameter, "fired");
        assert_int_equal(j->schedule_parameter_type, JOB_PARAMETER_DATETIME);

        assert_null(config_find_job(c, "nope"));
        assert_null(config_find_job(c, NULL));
}

static void test_syntax_errors(void **state) {
        /* libconfig's own messages, at libconfig's line. */
        CHECK_BAD("jobs = (\n  { name = \"x\"; user = ; }\n);\n", "2: syntax error");
        CHECK_BAD("jobs = ( { name = \"x\"; name = \"y\"; } );\n", "1: duplicate setting name");
        CHECK_BAD("# fine\njobs = ();\n  @include \"/etc/passwd\"\n",
                  "3: @include is not supported: included files would escape the ownership and permission checks");
        /* "@include" inside a string or a comment is no directive. */
        CHECK_BAD(JOB_HEAD "    description = \"@include \\\"a\\\"\"; /* @include \"x\"\n @include */ // @include\n"
                  "    sheduel = 1; # @include \"y\"\n" JOB_STEPS JOB_TAIL,
                  "7: job 'x': unknown key 'sheduel' (did you mean 'schedule'?); known keys: name, "
                  "description, restartable, parameters, user, group, working_directory, environment, timeout, "
                  "steps, schedule, persistent, randomized_delay, overlap, incrementer, schedule_parameter, "
                  "catch_up, enabled, on_failure, on_success, alert_timeout");
}

/* libconfig's parser is quadratic in the length of a string: big files and values are refused before it runs. */
static void test_sizes(void **state) {
        _cleanup_free_ char *big = NULL, *text = NULL;
        size_t n = CONFIG_VALUE_SIZE_MAX;

        big = malloc(n + 2);
        assert_non_null(big);
        memset(big, 'a', n + 1);
        big[n + 1] = '\0';

        /* One byte over the value limit, in a single literal and in two that libconfig would join. */
        text = format(JOB_HEAD JOB_STEPS "    description =\n  \"%s\";\n" JOB_TAIL, big);
        CHECK_BAD(text, "7: refusing to load: a string value is longer than the limit of 65536 bytes");
        text = mfree(text);
        text = format(JOB_HEAD JOB_STEPS "    description = \"%s\" # joined\n \"%s\";\n" JOB_TAIL, big + n / 2,
                      big + n / 2);
        CHECK_BAD(text, "6: refusing to load: a string value is longer than the limit of 65536 bytes");
        text = mfree(text);

        /* At the limit, and long strings that are separate values or comments, are fine. */
        big[n] = '\0';
        {
                _cleanup_(fixture_done) Fixture f = {};
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_strv_free_ char **errors = NULL;
                ConfigLoadOptions o = options_for_test(false);

                fixture_init(&f);
                text = format(JOB_HEAD "    description = \"%s\"; # %s\n"
                              "    steps = ( { name = \"s\"; exec = [ \"/bin/true\", \"%s\" ]; } );\n" JOB_TAIL,
                              big, big, big);
                free(fixture_job_file(&f, "ok.conf", text));
                text = mfree(text);
                assert_int_equal(config_load(f.main_path, &o, &c, &errors), 0);
                if (errors)
                        fail_msg("%s", errors[0]);
                assert_int_equal(c->n_jobs, 1);
                assert_int_equal(strlen(c->jobs[0]->description), n);
                assert_true(c->job_file_size_max == CONFIG_FILE_SIZE_MAX_DEFAULT);
        }

        /* A file over the default size, refused from fstat() before anything is read, and one over a
         * configured limit. */
        {
                _cleanup_(fixture_done) Fixture f = {};
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_strv_free_ char **errors = NULL;
                _cleanup_free_ char *path = NULL, *e1 = NULL, *e2 = NULL, *padded = NULL;
                ConfigLoadOptions o = options_for_test(false);
                size_t sz = CONFIG_FILE_SIZE_MAX_DEFAULT + 1;

                fixture_init(&f);
                padded = malloc(sz + 1);
                assert_non_null(padded);
                memset(padded, '\n', sz);
                padded[sz] = '\0';
                path = fixture_job_file(&f, "big.conf", padded);
                assert_int_equal(config_load(f.main_path, &o, &c, &errors), 0);
                assert_int_equal(c->n_jobs, 0);
                e1 = format("%s: refusing to load: file is 1048577 bytes, larger than the limit 1048576 "
                            "(job_file_size_max in batchd.conf)", path);
                e2 = format("%s: skipped: none of its jobs were loaded", path);
                assert_errors(errors, e1, e2, NULL);
                c = config_free(c);
                errors = strv_free(errors);
                e1 = mfree(e1);

                write_file_mode(path, JOB_HEAD JOB_STEPS JOB_TAIL, 0644);
                fixture_write_main(&f, "job_file_size_max = 1024;\n");
                assert_int_equal(config_load(f.main_path, &o, &c, &errors), 0);
                assert_null(errors);
                assert_int_equal(c->n_jobs, 1);
                c = config_free(c);

                fixture_write_main(&f, "job_file_size_max = 1025;\n");
                padded[1100] = '\0';
                memcpy(padded, JOB_HEAD JOB_STEPS JOB_TAIL, strlen(JOB_HEAD JOB_STEPS JOB_TAIL));
                write_file_mode(path, padded, 0644);
                assert_int_equal(config_load(f.main_path, &o, &c, &errors), 0);
                assert_int_equal(c->n_jobs, 0);
                e1 = format("%s: refusing to load: file is 1100 bytes, larger than the limit 1025 "
                            "(job_file_size_max in batchd.conf)", path);
                assert_errors(errors, e1, e2, NULL);
        }
}

static void test_unknown_keys(void **state) {
        CHECK_BAD(JOB_HEAD JOB_STEPS "    sheduel = \"daily\";\n" JOB_TAIL,
                  "6: job 'x': unknown key 'sheduel' (did you mean 'schedule'?); known keys: name, description, "
                  "restartable, parameters, user, group, working_directory, environment, timeout, steps, "
                  "schedule, persistent, randomized_delay, overlap, incrementer, schedule_parameter, catch_up, "
                  "enabled, on_failure, on_success, alert_timeout");
        CHECK_BAD(JOB_HEAD "    steps = ( { name = \"s\"; exec = [ \"/bin/true\" ]; retries = 3; } );\n" JOB_TAIL,
                  "5: job 'x': step 's': unknown key 'retries'; known keys: name, exec, timeout, "
                  "allow_start_if_complete, start_limit");
        CHECK_BAD("job = ( );\n", "1: unknown key 'job' (did you mean 'jobs'?); known keys: jobs");
}

static void test_wrong_types(void **state) {
        CHECK_BAD(JOB_HEAD JOB_STEPS "    description = 5;\n    restartable = \"yes\";\n" JOB_TAIL,
                  "6: job 'x': 'description': expected a string, got an integer",
                  "7: job 'x': 'restartable': expected a boolean (true or false), got a string");
        CHECK_BAD(JOB_HEAD JOB_STEPS "    environment = \"A=b\";\n    timeout = 5;\n" JOB_TAIL,
                  "6: job 'x': 'environment': expected an array of strings [ \"...\", ... ], got a string",
                  "7: job 'x': 'timeout': expected a string, got an integer");
        CHECK_BAD(JOB_HEAD "    steps = ( { name = \"s\"; exec = [ \"/bin/true\" ]; start_limit = 0; },\n"
                  "              { name = \"t\"; exec = ( \"/bin/true\", 1 ); start_limit = 1.5; } );\n" JOB_TAIL,
                  "5: job 'x': step 's': 'start_limit': 0 is out of range, expected 1…2147483647",
                  "6: job 'x': step 't': 'exec': element 2: expected a string, got an integer",
                  "6: job 'x': step 't': 'start_limit': expected an integer, got a floating-point number");
        CHECK_BAD("jobs = { name = \"x\"; };\n", "1: 'jobs': expected a list of groups ( { ... }, ... ), got a group");
        CHECK_BAD("jobs = ( \"x\" );\n", "1: 'jobs': element 1: expected a group { ... }, got a string");
        CHECK_BAD(JOB_HEAD "    steps = { name = \"s\"; };\n" JOB_TAIL,
                  "5: job 'x': 'steps': expected a list of groups ( { ... }, ... ), got a group");
}

/* Durations mean what they mean in a unit file: spellings systemd 252 accepts load, those it refuses do not. */
static void test_durations_as_systemd(void **state) {
        _cleanup_(fixture_done) Fixture f = {};
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_strv_free_ char **errors = NULL;
        _cleanup_free_ char *a = NULL;
        ConfigLoadOptions o = options_for_test(true);
        const JobConfig *j;

        fixture_init(&f);
        fixture_write_main(&f, "stop_timeout = \" infinity \";\nkill_grace = \"+3.1s\";\n");
        a = fixture_job_file(&f, "a.conf", JOB_HEAD
                             "    steps = ( { name = \"s\"; exec = [ \"/bin/true\" ]; timeout = \"23\u03bcs\"; } );\n"
                             "    timeout = \"infinity\";\n" JOB_TAIL);
        assert_int_equal(config_load(f.main_path, &o, &c, &errors), 0);
        assert_null(errors);
        assert_true(c->stop_timeout_usec == USEC_INFINITY);
        assert_true(c->kill_grace_usec == 3100 * USEC_PER_MSEC);
        j = config_find_job(c, "x");
        assert_non_null(j);
        assert_true(j->timeout_usec == USEC_INFINITY);      /* no timeout */
        assert_true(j->steps[0].timeout_usec == 23);

        CHECK_BAD(JOB_HEAD JOB_STEPS "    timeout = \"3.s\";\n" JOB_TAIL,
                  "6: job 'x': 'timeout': invalid duration '3.s' (expected a time span such as \"90s\", "
                  "\"5min\", \"1h 30min\" or \"infinity\")");
        CHECK_BAD(JOB_HEAD JOB_STEPS "    timeout = \" 5. \";\n" JOB_TAIL,
                  "6: job 'x': 'timeout': invalid duration ' 5. ' (expected a time span such as \"90s\", "
                  "\"5min\", \"1h 30min\" or \"infinity\")");
}

/* on_failure/on_success: the three forms, the default timeout, and what is refused. */
static void test_alerts(void **state) {
        _cleanup_(fixture_done) Fixture f = {};
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_strv_free_ char **errors = NULL;
        _cleanup_free_ char *a = NULL;
        ConfigLoadOptions o = options_for_test(true);
        const JobConfig *j;

        fixture_init(&f);
        a = fixture_job_file(&f, "a.conf",
                "jobs = (\n"
                "  { name = \"cmd\"; user = \"root\";\n"
                "    on_failure = [ \"/usr/bin/notify\", \"--failed\" ];\n"
                "    on_success = { exec = [ \"/bin/true\" ]; };\n"
                "    alert_timeout = \"5min\";\n" JOB_STEPS "  },\n"
                "  { name = \"unit\"; user = \"root\";\n"
                "    on_failure = { unit = \"notify-failure@.service\"; };\n"
                "    on_success = { unit = \"report.target\"; };\n" JOB_STEPS "  }\n"
                ");\n");
        assert_int_equal(config_load(f.main_path, &o, &c, &errors), 0);
        assert_null(errors);

        j = config_find_job(c, "cmd");
        assert_non_null(j);
        assert_string_equal(j->on_failure.exec[0], "/usr/bin/notify");
        assert_string_equal(j->on_failure.exec[1], "--failed");
        assert_null(j->on_failure.exec[2]);
        assert_null(j->on_failure.unit);
        assert_string_equal(j->on_success.exec[0], "/bin/true");
        assert_true(j->alert_timeout_usec == 5 * 60 * USEC_PER_SEC);

        j = config_find_job(c, "unit");
        assert_non_null(j);
        assert_string_equal(j->on_failure.unit, "notify-failure@.service");
        assert_null(j->on_failure.exec);
        assert_string_equal(j->on_success.unit, "report.target");
        assert_true(j->alert_timeout_usec == CONFIG_ALERT_TIMEOUT_DEFAULT);

        CHECK_BAD(JOB_HEAD JOB_STEPS "    on_failure = { unit = \"x@42.service\"; };\n"
                  "    on_success = { unit = \"noext\"; };\n" JOB_TAIL,
                  "6: job 'x': 'unit': 'x@42.service' is not a unit name (\"name.service\", or a template "
                  "\"name@.service\" started with the execution id as its instance)",
                  "7: job 'x': 'unit': 'noext' is not a unit name (\"name.service\", or a template "
                  "\"name@.service\" started with the execution id as its instance)");
        CHECK_BAD(JOB_HEAD JOB_STEPS "    on_failure = { };\n    on_success = [ ];\n" JOB_TAIL,
                  "6: job 'x': 'on_failure': needs exactly one of 'exec' and 'unit'",
                  "7: job 'x': 'on_success': must name at least the program to run");
        CHECK_BAD(JOB_HEAD JOB_STEPS "    on_failure = { uint = \"a.service\"; };\n" JOB_TAIL,
                  "6: job 'x': unknown key 'uint' (did you mean 'unit'?); known keys: exec, unit");
}

static void test_bad_values(void **state) {
        CHECK_BAD(JOB_HEAD JOB_STEPS "    timeout = \"5 parsecs\";\n" JOB_TAIL,
                  "6: job 'x': 'timeout': invalid duration '5 parsecs' (expected a time span such as \"90s\", "
                  "\"5min\", \"1h 30min\" or \"infinity\")");
        CHECK_BAD(JOB_HEAD JOB_STEPS "    working_directory = \"tmp\";\n    overlap = \"never\";\n"
                  "    schedule = \"daily\";\n" JOB_TAIL,
                  "6: job 'x': 'working_directory': 'tmp' is not an absolute path",
                  "7: job 'x': 'overlap': unknown value 'never' (expected \"skip\", \"queue\" or \"allow\")");
        CHECK_BAD(JOB_HEAD JOB_STEPS "    incrementer = \"date\";\n" JOB_TAIL,
                  "6: job 'x': 'incrementer': unknown incrementer 'date' (the only one is \"run.id\")");
        CHECK_BAD("jobs = ( { name = \"has space\"; user = \"root\";\n" JOB_STEPS JOB_TAIL,
                  "1: job #1: 'name': invalid name 'has space' (allowed: letters, digits, '_', '.', '-'; at most 100 bytes)");
        /* What the file says is quoted, but cannot forge log lines or break D-Bus' UTF-8. */
        CHECK_BAD("jobs = ( { name = \"a\\nb\\xff\"; user = \"root\";\n" JOB_STEPS JOB_TAIL,
                  "1: job #1: 'name': invalid name 'a?b?' (allowed: letters, digits, '_', '.', '-'; at most 100 bytes)");
        CHECK_BAD("jobs = ( { user = \"root\";\n" JOB_STEPS JOB_TAIL,
                  "1: job #1: missing 'name'");
        CHECK_BAD(JOB_HEAD JOB_TAIL,
                  "2: job 'x': missing 'steps'; a job needs at least one step, steps = ( { name = \"...\"; "
                  "exec = [ \"/path/to/program\" ]; } )");
        CHECK_BAD(JOB_HEAD "    steps = ( );\n" JOB_TAIL,
                  "5: job 'x': 'steps': is empty; a job needs at least one step");
        CHECK_BAD(JOB_HEAD "    steps = ( { exec = [ \"bin/true\" ]; }, { name = \"t\"; exec = [ ]; },\n"
                  "              { name = \"u\"; } );\n" JOB_TAIL,
                  "5: job 'x': step #1: missing 'name'",
                  "5: job 'x': step #1: 'exec': 'bin/true' is not an absolute path",
                  "5: job 'x': step 't': 'exec': must name at least the program to run",
                  "6: job 'x': step 'u': missing 'exec'");
        CHECK_BAD(JOB_HEAD JOB_STEPS
                  "    environment = [ \"NOVALUE\", \"1X=a\", \"BATCH_RESTART=1\", \"A=1\",\n"
                  "                    \"A=2\" ];\n" JOB_TAIL,
                  "6: job 'x': 'environment': 'NOVALUE' is not of the form NAME=value",
                  "6: job 'x': 'environment': invalid variable name '1X' (expected [A-Za-z_][A-Za-z0-9_]*)",
                  "6: job 'x': 'environment': variable 'BATCH_RESTART': names starting with BATCH_ are reserved for batchd",
                  "7: job 'x': 'environment': variable 'A' is set twice");
        CHECK_BAD(JOB_HEAD JOB_STEPS "    randomized_delay = \"infinity\";\n    schedule = \"daily\";\n" JOB_TAIL,
                  "6: job 'x': 'randomized_delay': must be finite");
}

static void test_bad_parameters(void **state) {
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        _cleanup_free_ char *error = NULL, *expected = NULL;

        assert_int_equal(job_parameters_parse_argument(&p, "n(long)=abc", &error), -EINVAL);
        assert_non_null(error);
        expected = format("7: job 'x': 'parameters': %s", error);

        CHECK_BAD(JOB_HEAD JOB_STEPS "    parameters = [ \"a=1\",\n      \"n(long)=abc\" ];\n" JOB_TAIL,
                  expected);
        CHECK_BAD(JOB_HEAD JOB_STEPS "    parameters = [ \"a=1\", \"a(long)=2\" ];\n" JOB_TAIL,
                  "6: job 'x': 'parameters': parameter 'a' is given twice");
}

static void test_bad_calendar(void **state) {
        _cleanup_free_ char *error = NULL, *expected = NULL;

        assert_int_equal(calendar_spec_from_string("Mon..Fry 10:00", NULL, &error), -EINVAL);
        assert_non_null(error);
        expected = format("6: job 'x': 'schedule': invalid calendar expression 'Mon..Fry 10:00': %s", error);

        CHECK_BAD(JOB_HEAD JOB_STEPS "    schedule = \"Mon..Fry 10:00\";\n" JOB_TAIL, expected);
}

static void test_schedule_rules(void **state) {
        /* Scheduling keys without a schedule are most likely a misspelt "schedule". */
        CHECK_BAD(JOB_HEAD JOB_STEPS "    schedul = \"daily\";\n    persistent = true;\n    enabled = false;\n" JOB_TAIL,
                  "6: job 'x': unknown key 'schedul' (did you mean 'schedule'?); known keys: name, description, "
                  "restartable, parameters, user, group, working_directory, environment, timeout, steps, "
                  "schedule, persistent, randomized_delay, overlap, incrementer, schedule_parameter, catch_up, "
                  "enabled, on_failure, on_success, alert_timeout",
                  "7: job 'x': 'persistent': only applies to scheduled jobs, but there is no 'schedule'",
                  "8: job 'x': 'enabled': only applies to scheduled jobs, but there is no 'schedule'");
        CHECK_BAD(JOB_HEAD JOB_STEPS "    schedule = \"daily\";\n    catch_up = 2;\n" JOB_TAIL,
                  "7: job 'x': 'catch_up': only applies with persistent = true");
        CHECK_BAD(JOB_HEAD JOB_STEPS "    schedule = \"daily\";\n    schedule_parameter = \"day\";\n"
                  "    parameters = [ \"day(datetime)=2026-01-01T00:00:00\" ];\n" JOB_TAIL,
                  "7: job 'x': 'schedule_parameter': 'day' is bound to the fire time as an identifying date, "
                  "but 'parameters' declares it as an identifying datetime");
        CHECK_BAD(JOB_HEAD JOB_STEPS "    schedule = \"daily\";\n    schedule_parameter = \"-day\";\n" JOB_TAIL,
                  "7: job 'x': 'schedule_parameter': invalid parameter name '-day' (allowed: letters, digits, "
                  "'_', '.', '-' but not first; at most 100 bytes)");
        CHECK_BAD(JOB_HEAD JOB_STEPS "    schedule = \"daily\";\n    schedule_parameter = \"day(long)\";\n" JOB_TAIL,
                  "7: job 'x': 'schedule_parameter': 'day(long)': the fire time can only be bound as (date) or (datetime)");
        CHECK_BAD(JOB_HEAD JOB_STEPS "    incrementer = \"run.id\";\n    parameters = [ \"run.id=abc\" ];\n" JOB_TAIL,
                  "6: job 'x': 'incrementer': run.id is a long, but 'parameters' declares it as a string");
}

/* Loads one valid job file and checks the warnings: exactly the expected ones, "<path>:<tail>". */
static void check_warnings(const char *contents, const char *expected_tail) {
        _cleanup_(fixture_done) Fixture f = {};
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_strv_free_ char **errors = NULL;
        _cleanup_free_ char *path = NULL, *expected = NULL;
        ConfigLoadOptions o = options_for_test(true);

        fixture_init(&f);
        path = fixture_job_file(&f, "w.conf", contents);
        assert_int_equal(config_load(f.main_path, &o, &c, &errors), 0);
        assert_null(errors);
        assert_int_equal(c->n_jobs, 1);
        if (!expected_tail) {
                if (c->warnings)
                        fail_msg("unexpected warning: %s", c->warnings[0]);
                return;
        }
        expected = format("%s:%s", path, expected_tail);
        assert_errors(c->warnings, expected, NULL);
}

/* A date schedule_parameter with a schedule firing more than once a day: all fires after the first of a day
 * are non-runs. Valid and documented, but a trap: a warning with file:line, the job still loads. */
static void test_sub_daily_date_warning(void **state) {
        check_warnings(JOB_HEAD JOB_STEPS "    schedule = \"hourly\";\n    schedule_parameter = \"day\";\n" JOB_TAIL,
                       "7: job 'x': 'schedule_parameter': 'day' is a date, but schedule 'hourly' fires more than "
                       "once a day: every fire after the first of a day finds that day's instance complete and "
                       "does not run; bind the fire time as 'day(datetime)' to run every fire");
        check_warnings(JOB_HEAD JOB_STEPS "    schedule = \"*-*-* 08,20:00\";\n    schedule_parameter = \"d(date)\";\n"
                       JOB_TAIL,
                       "7: job 'x': 'schedule_parameter': 'd' is a date, but schedule '*-*-* 08,20:00' fires more "
                       "than once a day: every fire after the first of a day finds that day's instance complete "
                       "and does not run; bind the fire time as 'd(datetime)' to run every fire");
        /* once a day, a datetime, or no schedule_parameter: nothing to say */
        check_warnings(JOB_HEAD JOB_STEPS "    schedule = \"*-*-* 02:00:00\";\n    schedule_parameter = \"day\";\n"
                       JOB_TAIL, NULL);
        check_warnings(JOB_HEAD JOB_STEPS "    schedule = \"Mon..Fri 10:30\";\n    schedule_parameter = \"day\";\n"
                       JOB_TAIL, NULL);
        check_warnings(JOB_HEAD JOB_STEPS "    schedule = \"hourly\";\n    schedule_parameter = \"at(datetime)\";\n"
                       JOB_TAIL, NULL);
        check_warnings(JOB_HEAD JOB_STEPS "    schedule = \"hourly\";\n" JOB_TAIL, NULL);
}

static void test_duplicates(void **state) {
        /* Steps within a job. */
        CHECK_BAD(JOB_HEAD "    steps = (\n      { name = \"s\"; exec = [ \"/bin/true\" ]; },\n"
                  "      { name = \"s\"; exec = [ \"/bin/false\" ]; } );\n" JOB_TAIL,
                  "7: job 'x': step 's': duplicate step name, first defined at line 6");
        /* Jobs within a file. */
        CHECK_BAD(JOB_HEAD JOB_STEPS "  },\n  {\n    name = \"x\";\n    user = \"root\";\n" JOB_STEPS JOB_TAIL,
                  "7: job 'x': duplicate job name, first defined at @PATH@:2");
}

static void test_duplicate_across_files(void **state) {
        _cleanup_(fixture_done) Fixture f = {};
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_strv_free_ char **errors = NULL;
        _cleanup_free_ char *a = NULL, *b = NULL, *e1 = NULL, *e2 = NULL;
        ConfigLoadOptions o = options_for_test(false);

        fixture_init(&f);
        a = fixture_job_file(&f, "a.conf", "\n" JOB_HEAD JOB_STEPS JOB_TAIL);
        b = fixture_job_file(&f, "b.conf",
                             "jobs = (\n"
                             "  { name = \"y\"; user = \"root\"; steps = ( { name = \"s\"; exec = [ \"/bin/true\" ]; } ); },\n"
                             "  { name = \"x\"; user = \"root\"; steps = ( { name = \"s\"; exec = [ \"/bin/true\" ]; } ); }\n"
                             ");\n");

        assert_int_equal(config_load(f.main_path, &o, &c, &errors), 0);
        e1 = format("%s:3: job 'x': duplicate job name, first defined at %s:3", b, a);
        e2 = format("%s: skipped: none of its jobs were loaded", b);
        assert_errors(errors, e1, e2, NULL);
        /* The first definition wins, and b.conf is taken whole or not at all: y is not loaded either. */
        assert_int_equal(c->n_jobs, 1);
        assert_string_equal(c->jobs[0]->source_file, a);
        assert_null(config_find_job(c, "y"));
}

static void test_users(void **state) {
        _cleanup_(fixture_done) Fixture f = {};
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_strv_free_ char **errors = NULL;
        _cleanup_free_ char *path = NULL, *e1 = NULL;
        ConfigLoadOptions o = options_for_test(true);

        CHECK_BAD("jobs = ( {\n  name = \"x\";\n  user = \"batchd-no-such-user\";\n  group = \"batchd-no-such-group\";\n"
                  JOB_STEPS JOB_TAIL,
                  "3: job 'x': 'user': unknown user 'batchd-no-such-user'");
        CHECK_BAD(JOB_HEAD "    group = \"batchd-no-such-group\";\n" JOB_STEPS JOB_TAIL,
                  "5: job 'x': 'group': unknown group 'batchd-no-such-group'");
        /* As root, running a job as root must be asked for. */
        CHECK_BAD("jobs = ( {\n  name = \"x\";\n" JOB_STEPS JOB_TAIL,
                  "1: job 'x': no 'user' set; batchd runs as root and does not pick one: set user = \"root\" to "
                  "run the job as root, or name an unprivileged user");

        /* An unprivileged batchd runs jobs as itself, and cannot be asked for anything else. */
        fixture_init(&f);
        o.daemon_uid = 4242;
        path = fixture_job_file(&f, "a.conf",
                                "jobs = ( { name = \"mine\";\n" JOB_STEPS " } );\n");
        assert_int_equal(config_load(f.main_path, &o, &c, &errors), 0);
        assert_null(errors);
        assert_int_equal(c->n_jobs, 1);
        assert_null(c->jobs[0]->user);
        assert_int_equal(c->jobs[0]->uid, 4242);
        assert_int_equal(c->jobs[0]->gid, (gid_t) -1);
        c = config_free(c);

        write_file_mode(path, "jobs = ( { name = \"mine\";\n  user = \"root\";\n  group = \"root\";\n" JOB_STEPS " } );\n",
                        0644);
        assert_int_equal(config_load(f.main_path, &o, &c, &errors), -EINVAL);
        assert_null(c);
        e1 = format("%s:2: job 'mine': 'user': cannot run as 'root' (uid 0): batchd runs unprivileged as uid 4242 "
                    "and cannot switch users", path);
        assert_errors(errors, e1, NULL);
}

static void test_main_file_errors(void **state) {
        _cleanup_(fixture_done) Fixture f = {};
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_strv_free_ char **errors = NULL;
        _cleanup_free_ char *e1 = NULL, *e2 = NULL, *e3 = NULL, *e4 = NULL, *e5 = NULL, *e6 = NULL, *missing = NULL, *text = NULL;
        ConfigLoadOptions o = options_for_test(false);

        fixture_init(&f);
        fixture_write_main(&f, "database = \"batch.db\";\n"
                               "max_concurrent_executions = -1;\n"
                               "admin_group = \"batchd-no-such-group\";\n"
                               "keep_day = 3;\n"
                               "stop_timeout = 90;\n"
                               "timestamps = \"UTC+1\";\n"
                               "context_format = \"xml\";\n");
        /* Even when not strict: a wrong database or jobs_dir must not be replaced by a default. */
        assert_int_equal(config_load(f.main_path, &o, &c, &errors), -EINVAL);
        assert_null(c);
        e1 = format("%s:2: 'database': 'batch.db' is neither an absolute path, \":memory:\" nor a postgresql:// URI", f.main_path);
        e2 = format("%s:3: 'max_concurrent_executions': -1 is out of range, expected 0…2147483647", f.main_path);
        e3 = format("%s:5: unknown key 'keep_day' (did you mean 'keep_days'?); known keys: database, jobs_dir, "
                    "max_concurrent_executions, admin_group, keep_days, keep_executions, stop_timeout, kill_grace, "
                    "job_file_size_max, context_size_max, timestamps, context_format, cluster, node_name, node_timeout, metrics_textfile",
                    f.main_path);
        e4 = format("%s:6: 'stop_timeout': expected a string, got an integer", f.main_path);
        e5 = format("%s:7: 'timestamps': unknown value 'UTC+1' (expected \"local\" or \"utc\")", f.main_path);
        e6 = format("%s:8: 'context_format': unknown format 'xml' (expected \"json\", \"java\" or \"jackson\")",
                    f.main_path);
        assert_errors(errors, e1, e2, e3, e4, e5, e6, NULL);
        errors = strv_free(errors);

        /* The cluster settings. */
        fixture_write_main(&f, "cluster = \"yes\";\n"
                               "node_name = \"a b\";\n"
                               "node_timeout = \"500ms\";\n");
        assert_int_equal(config_load(f.main_path, &o, &c, &errors), -EINVAL);
        e1 = mfree(e1);
        e2 = mfree(e2);
        e3 = mfree(e3);
        e1 = format("%s:2: 'cluster': expected a boolean (true or false), got a string", f.main_path);
        e2 = format("%s:3: 'node_name': invalid node name 'a b' (1 to 100 characters of [A-Za-z0-9_.-], not \".\" "
                    "or \"..\")", f.main_path);
        e3 = format("%s:4: 'node_timeout': must be finite and at least 1s", f.main_path);
        assert_errors(errors, e1, e2, e3, NULL);
        errors = strv_free(errors);
        fixture_write_main(&f, "node_timeout = \"infinity\";\n");
        assert_int_equal(config_load(f.main_path, &o, &c, &errors), -EINVAL);
        e1 = mfree(e1);
        e1 = format("%s:2: 'node_timeout': must be finite and at least 1s", f.main_path);
        assert_errors(errors, e1, NULL);
        errors = strv_free(errors);

        /* Looked up only once everything else is right. */
        fixture_write_main(&f, "admin_group = \"batchd-no-such-group\";\n");
        assert_int_equal(config_load(f.main_path, &o, &c, &errors), -EINVAL);
        e1 = mfree(e1);
        e1 = format("%s:2: 'admin_group': unknown group 'batchd-no-such-group'", f.main_path);
        assert_errors(errors, e1, NULL);
        errors = strv_free(errors);

        write_file_mode(f.main_path, "database = ;\n", 0644);
        assert_int_equal(config_load(f.main_path, &o, &c, &errors), -EINVAL);
        e1 = mfree(e1);
        e1 = format("%s:1: syntax error", f.main_path);
        assert_errors(errors, e1, NULL);
        errors = strv_free(errors);

        /* A jobs_dir that was set but does not exist is most likely a typo. */
        missing = test_path(f.dir, "jobz.d");
        text = format("# comment\njobs_dir = \"%s\";\n", missing);
        write_file_mode(f.main_path, text, 0644);
        assert_int_equal(config_load(f.main_path, &o, &c, &errors), 0);
        assert_int_equal(c->n_jobs, 0);
        e1 = mfree(e1);
        e1 = format("%s:2: 'jobs_dir': %s does not exist", f.main_path, missing);
        assert_errors(errors, e1, NULL);
        errors = strv_free(errors);
        c = config_free(c);
        o.strict = true;
        assert_int_equal(config_load(f.main_path, &o, &c, &errors), -EINVAL);
        assert_errors(errors, e1, NULL);
}

static void test_permissions(void **state) {
        _cleanup_(fixture_done) Fixture f = {};
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_strv_free_ char **errors = NULL;
        _cleanup_free_ char *a = NULL, *b = NULL, *link = NULL, *e1 = NULL, *e2 = NULL, *e3 = NULL, *e4 = NULL;
        ConfigLoadOptions o = options_for_test(false);

        fixture_init(&f);
        a = fixture_job_file(&f, "a.conf", JOB_HEAD JOB_STEPS JOB_TAIL);
        b = fixture_job_file(&f, "b.conf", "jobs = ( { name = \"y\"; user = \"root\";\n" JOB_STEPS JOB_TAIL);
        link = test_path(f.jobs_dir, "c.conf");
        assert_int_equal(symlink(b, link), 0);

        /* Group-writable: anyone in the group could make batchd run anything as the job's user. */
        assert_int_equal(chmod(b, 0664), 0);
        assert_int_equal(config_load(f.main_path, &o, &c, &errors), 0);
        e1 = format("%s: refusing to load: file is writable by group/others (mode 0664)", b);
        e2 = format("%s: skipped: none of its jobs were loaded", b);
        e3 = format("%s: refusing to load: file is a symbolic link", link);
        e4 = format("%s: skipped: none of its jobs were loaded", link);
        assert_errors(errors, e1, e2, e3, e4, NULL);
        assert_int_equal(c->n_jobs, 1);
        assert_string_equal(c->jobs[0]->name, "x");
        c = config_free(c);
        errors = strv_free(errors);

        /* The same in strict mode fails the whole load, with no "skipped" notes. */
        o.strict = true;
        assert_int_equal(config_load(f.main_path, &o, &c, &errors), -EINVAL);
        assert_null(c);
        assert_errors(errors, e1, e3, NULL);
        errors = strv_free(errors);
        o.strict = false;
        assert_int_equal(unlink(link), 0);
        assert_int_equal(chmod(b, 0644), 0);

        /* World-writable directory: any file in it might have been swapped. */
        assert_int_equal(chmod(f.jobs_dir, 0757), 0);
        assert_int_equal(config_load(f.main_path, &o, &c, &errors), 0);
        assert_int_equal(c->n_jobs, 0);
        e1 = mfree(e1);
        e1 = format("%s: refusing to load: directory is writable by group/others (mode 0757)", f.jobs_dir);
        assert_errors(errors, e1, NULL);
        c = config_free(c);
        errors = strv_free(errors);
        assert_int_equal(chmod(f.jobs_dir, 0755), 0);

        /* Owned by someone else than expected: the main file is refused, and with it the whole load. */
        o.owner_uid = geteuid() + 4242;
        assert_int_equal(config_load(f.main_path, &o, &c, &errors), -EINVAL);
        e1 = mfree(e1);
        e1 = format("%s: refusing to load: file is owned by uid %u, not by uid %u", f.main_path,
                    (unsigned) geteuid(), (unsigned) geteuid() + 4242);
        assert_errors(errors, e1, NULL);
        errors = strv_free(errors);
        o.owner_uid = geteuid();

        /* A job file owned by another user. Only root can hand a file to someone else. */
        if (geteuid() == 0) {
                assert_int_equal(chown(b, 4242, (gid_t) -1), 0);
                assert_int_equal(config_load(f.main_path, &o, &c, &errors), 0);
                e1 = mfree(e1);
                e2 = mfree(e2);
                e1 = format("%s: refusing to load: file is owned by uid 4242, not by root", b);
                e2 = format("%s: skipped: none of its jobs were loaded", b);
                assert_errors(errors, e1, e2, NULL);
                assert_int_equal(c->n_jobs, 1);
        }
}

static void test_strict_reload(void **state) {
        _cleanup_(fixture_done) Fixture f = {};
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_strv_free_ char **errors = NULL;
        _cleanup_free_ char *a = NULL, *b = NULL, *e1 = NULL, *e2 = NULL;
        ConfigLoadOptions o = options_for_test(false);

        fixture_init(&f);
        a = fixture_job_file(&f, "a.conf", JOB_HEAD JOB_STEPS JOB_TAIL);
        b = fixture_job_file(&f, "b.conf", "jobs = ( { name = \"y\"; user = \"root\";\n" JOB_STEPS
                             "  timeout = \"soon\";\n" JOB_TAIL);
        e1 = format("%s:3: job 'y': 'timeout': invalid duration 'soon' (expected a time span such as \"90s\", "
                    "\"5min\", \"1h 30min\" or \"infinity\")", b);
        e2 = format("%s: skipped: none of its jobs were loaded", b);

        /* Startup: the broken file is reported and skipped, the others load. */
        assert_int_equal(config_load(f.main_path, &o, &c, &errors), 0);
        assert_non_null(c);
        assert_int_equal(c->n_jobs, 1);
        assert_non_null(config_find_job(c, "x"));
        assert_null(config_find_job(c, "y"));
        assert_errors(errors, e1, e2, NULL);
        c = config_free(c);
        errors = strv_free(errors);

        /* Reload: nothing is returned, so the caller keeps what it has. */
        o.strict = true;
        assert_int_equal(config_load(f.main_path, &o, &c, &errors), -EINVAL);
        assert_null(c);
        assert_errors(errors, e1, NULL);
        errors = strv_free(errors);

        /* Fixed: the reload succeeds, and reports nothing. */
        write_file_mode(b, "jobs = ( { name = \"y\"; user = \"root\";\n" JOB_STEPS JOB_TAIL, 0644);
        assert_int_equal(config_load(f.main_path, &o, &c, &errors), 0);
        assert_null(errors);
        assert_int_equal(c->n_jobs, 2);

        /* Errors may be ignored. */
        c = config_free(c);
        assert_int_equal(config_load(f.main_path, &o, &c, NULL), 0);
}

static char *source_root(void) {
        _cleanup_free_ char *file = strdup(__FILE__);
        char exe[PATH_MAX];
        ssize_t n;

        /* __FILE__ is "<source root>/tests/test-conf.c" as the compiler was given it: absolute, or relative
         * to the build directory, whose tests/ holds this binary. */
        assert_non_null(file);
        if (file[0] == '/')
                return format("%s/..", dirname(file));
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        assert_true(n > 0);
        exe[n] = '\0';
        return format("%s/../%s/..", dirname(exe), dirname(file));
}

static void test_examples(void **state) {
        _cleanup_(fixture_done) Fixture f = {};
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_strv_free_ char **errors = NULL;
        _cleanup_free_ char *root = source_root(), *examples = NULL, *cmd = NULL;
        ConfigLoadOptions o = options_for_test(true);
        const JobConfig *j;
        const JobParameter *p;

        examples = format("%s/conf/examples", root);
        if (access(examples, F_OK) < 0) {
                /* skip() jumps out: the cleanup attributes never run. */
                root = mfree(root);
                examples = mfree(examples);
                skip();
        }

        /* Installed the documented way: setup.sh puts jobs.d/ and scripts/ into the fixture directory,
         * whose jobs.d/ the main file points at. */
        fixture_init(&f);
        cmd = format("sh '%s/setup.sh' '%s' root >/dev/null", examples, f.dir);
        assert_int_equal(system(cmd), 0);

        assert_int_equal(config_load(f.main_path, &o, &c, &errors), 0);
        assert_errors(errors, NULL);
        assert_int_equal(c->n_jobs, 3);

        for (size_t i = 0; i < c->n_jobs; i++) {
                assert_string_equal(c->jobs[i]->user, "root");
                for (size_t k = 0; k < c->jobs[i]->n_steps; k++) {
                        assert_true(strneq(c->jobs[i]->steps[k].exec[0], f.dir, strlen(f.dir)));
                        assert_int_equal(access(c->jobs[i]->steps[k].exec[0], X_OK), 0);
                }
        }

        j = config_find_job(c, "chunk-demo");
        assert_non_null(j);
        assert_int_equal(j->n_steps, 1);
        assert_true(j->restartable);
        p = job_parameters_get(&j->parameters, "output");
        assert_non_null(p);
        assert_true(p->identifying);
        p = job_parameters_get(&j->parameters, "fail_at");
        assert_non_null(p);
        assert_false(p->identifying);

        j = config_find_job(c, "two-step");
        assert_non_null(j);
        assert_int_equal(j->n_steps, 2);
        assert_string_equal(j->steps[1].exec[3], "${fail}");

        j = config_find_job(c, "settlement");
        assert_non_null(j);
        assert_string_equal(j->schedule, "*-*-* 02:00:00");
        assert_true(j->persistent);
        assert_string_equal(j->schedule_parameter, "day");
        assert_int_equal(j->schedule_parameter_type, JOB_PARAMETER_DATE);
}

/* conf/batchd.conf shows every key commented out with its default: uncommented, it must load and change
 * nothing. The copy checked is the one meson installs (conf/meson.build), with this build's directories. */
static void test_packaged_main_file(void **state) {
        _cleanup_(fixture_done) Fixture f = {};
        _cleanup_(config_freep) Config *c = NULL, *defaults = NULL;
        _cleanup_strv_free_ char **errors = NULL;
        _cleanup_free_ char *root = source_root(), *path = NULL, *text = NULL, *line = NULL;
        _cleanup_fclose_ FILE *in = NULL, *out = NULL;
        ConfigLoadOptions o = options_for_test(true);
        size_t sz = 0, n_keys = 0;

        path = format("%s/conf/batchd.conf", BUILD_ROOT);
        in = fopen(path, "re");
        if (!in) {
                root = mfree(root);
                path = mfree(path);
                skip();
        }

        /* As shipped: all comments. */
        fixture_init(&f);
        {
                _cleanup_free_ char *shipped = NULL;
                long l;

                assert_int_equal(fseek(in, 0, SEEK_END), 0);
                l = ftell(in);
                assert_true(l > 0);
                rewind(in);
                shipped = calloc(1, l + 1);
                assert_non_null(shipped);
                assert_int_equal(fread(shipped, 1, l, in), l);
                rewind(in);
                /* Only to keep the machine's own /etc/batchd/jobs.d out of the test. */
                fixture_write_main(&f, shipped);
        }
        assert_int_equal(config_load(f.main_path, &o, &c, &errors), 0);
        assert_null(errors);
        assert_true(c->main_file_found);
        c = config_free(c);

        out = open_memstream(&text, &sz);
        assert_non_null(out);
        /* jobs_dir points at the fixture's; admin_group's example group need not exist here; node_name's
         * default is the host name, which no value spells. */
        fprintf(out, "jobs_dir = \"%s\";\n", f.jobs_dir);
        for (;;) {
                size_t n = 0;

                if (getline(&line, &n, in) < 0)
                        break;
                if (line[0] == '#' && line[1] >= 'a' && line[1] <= 'z' && strstr(line, " = ")) {
                        n_keys++;
                        if (!strneq(line, "#jobs_dir ", 10) && !strneq(line, "#admin_group ", 13) &&
                            !strneq(line, "#node_name ", 11))
                                fputs(line + 1, out);
                }
                line = mfree(line);
        }
        assert_int_equal(fclose(TAKE_PTR(out)), 0);
        assert_int_equal(n_keys, 16);
        write_file_mode(f.main_path, text, 0644);

        assert_int_equal(config_load(f.main_path, &o, &c, &errors), 0);
        assert_null(errors);
        assert_int_equal(config_new(NULL, &defaults), 0);
        assert_string_equal(c->database, defaults->database);
        assert_int_equal(c->max_concurrent_executions, defaults->max_concurrent_executions);
        assert_int_equal(c->keep_days, defaults->keep_days);
        assert_int_equal(c->keep_executions, defaults->keep_executions);
        assert_true(c->stop_timeout_usec == defaults->stop_timeout_usec);
        assert_true(c->kill_grace_usec == defaults->kill_grace_usec);
        assert_true(c->job_file_size_max == defaults->job_file_size_max);
        assert_true(c->context_size_max == defaults->context_size_max);
        assert_true(c->timestamps_utc == defaults->timestamps_utc);
        assert_string_equal(defaults->jobs_dir, SYSCONFDIR "/batchd/jobs.d");
        assert_string_equal(defaults->path, SYSCONFDIR "/batchd/batchd.conf");
        assert_int_equal(c->context_format, defaults->context_format);
        assert_true(c->cluster == defaults->cluster);
        assert_true(c->node_timeout_usec == defaults->node_timeout_usec);
}

static void test_names(void **state) {
        char long_name[JOB_NAME_MAX + 2];

        assert_true(config_job_name_is_valid("a"));
        assert_true(config_job_name_is_valid("A-b_c.9"));
        assert_true(config_job_name_is_valid("-x"));
        assert_false(config_job_name_is_valid(""));
        assert_false(config_job_name_is_valid(NULL));
        assert_false(config_job_name_is_valid("."));
        assert_false(config_job_name_is_valid(".."));
        assert_false(config_job_name_is_valid("a/b"));
        assert_false(config_job_name_is_valid("a b"));
        assert_false(config_job_name_is_valid("ä"));

        memset(long_name, 'x', sizeof(long_name));
        long_name[JOB_NAME_MAX] = '\0';
        assert_true(config_job_name_is_valid(long_name));
        long_name[JOB_NAME_MAX] = 'x';
        long_name[JOB_NAME_MAX + 1] = '\0';
        assert_false(config_job_name_is_valid(long_name));

        for (JobOverlap o = 0; o < _JOB_OVERLAP_MAX; o++)
                assert_int_equal(job_overlap_from_string(job_overlap_to_string(o)), o);
        assert_int_equal(job_overlap_from_string("Skip"), _JOB_OVERLAP_INVALID);
        assert_null(job_overlap_to_string(_JOB_OVERLAP_MAX));
        assert_int_equal(job_incrementer_from_string("run.id"), JOB_INCREMENTER_RUN_ID);
        assert_int_equal(job_incrementer_from_string(NULL), _JOB_INCREMENTER_INVALID);
}

/* A PostgreSQL URI is a database too (db.h selects the backend from it); a relative path still is not. */
static void test_database_postgresql(void **state) {
        static const char *const good[] = {
                "postgresql://batchd@db.example.com/batch?sslmode=verify-full",
                "postgres:///batch?host=/run/postgresql",
                "postgresql://db1,db2/batch?target_session_attrs=read-write",
        };

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_(fixture_done) Fixture f = {};
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_strv_free_ char **errors = NULL;
                _cleanup_free_ char *text = format("database = \"%s\";\n", good[i]);
                ConfigLoadOptions o = options_for_test(true);

                fixture_init(&f);
                fixture_write_main(&f, text);
                assert_int_equal(config_load(f.main_path, &o, &c, &errors), 0);
                assert_string_equal(c->database, good[i]);
        }
        {
                _cleanup_(fixture_done) Fixture f = {};
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_strv_free_ char **errors = NULL;
                ConfigLoadOptions o = options_for_test(true);

                fixture_init(&f);
                fixture_write_main(&f, "database = \"mysql://x/y\";\n");
                assert_int_equal(config_load(f.main_path, &o, &c, &errors), -EINVAL);
                assert_non_null(errors);
                assert_non_null(strstr(errors[0], "nor a postgresql:// URI"));
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_database_postgresql),
                cmocka_unit_test(test_missing_main_file),
                cmocka_unit_test(test_valid),
                cmocka_unit_test(test_syntax_errors),
                cmocka_unit_test(test_sizes),
                cmocka_unit_test(test_unknown_keys),
                cmocka_unit_test(test_wrong_types),
                cmocka_unit_test(test_durations_as_systemd),
                cmocka_unit_test(test_alerts),
                cmocka_unit_test(test_bad_values),
                cmocka_unit_test(test_bad_parameters),
                cmocka_unit_test(test_bad_calendar),
                cmocka_unit_test(test_schedule_rules),
                cmocka_unit_test(test_sub_daily_date_warning),
                cmocka_unit_test(test_duplicates),
                cmocka_unit_test(test_duplicate_across_files),
                cmocka_unit_test(test_users),
                cmocka_unit_test(test_main_file_errors),
                cmocka_unit_test(test_permissions),
                cmocka_unit_test(test_strict_reload),
                cmocka_unit_test(test_examples),
                cmocka_unit_test(test_packaged_main_file),
                cmocka_unit_test(test_names),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
