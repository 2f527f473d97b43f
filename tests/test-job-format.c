/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pwd.h>
#include <sys/stat.h>

#include "conf.h"
#include "job-format.h"
#include "tests.h"

/* job_config_format() is what "batchctl cat" shows: it must be a job definition the loader takes back as the
 * same job. Each case is loaded, formatted, loaded again from the formatted text and formatted again: both texts
 * must be equal, and the reloaded job must run the same way (the fields compared below). */

static ConfigLoadOptions options_root(void) {
        return (ConfigLoadOptions) { .strict = true, .owner_uid = geteuid(), .daemon_uid = 0 };
}

/* Loads "jobs = ( <group> );" from a scratch jobs_dir; returns the Config (one job). */
static Config *load_one(const char *group) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *main_path = test_path(dir, "batchd.conf"), *jobs = test_path(dir, "jobs.d");
        _cleanup_free_ char *job = NULL, *main_text = NULL, *text = NULL;
        _cleanup_strv_free_ char **errors = NULL;
        ConfigLoadOptions o = options_root();
        Config *c = NULL;

        assert_int_equal(mkdir(jobs, 0755), 0);
        assert_int_equal(chmod(jobs, 0755), 0);
        job = test_path(jobs, "a.conf");
        assert_true(asprintf(&main_text, "jobs_dir = \"%s\";\n", jobs) >= 0);
        test_write_file(main_path, main_text);
        assert_int_equal(chmod(main_path, 0644), 0);
        assert_true(asprintf(&text, "jobs = (\n%s);\n", group) >= 0);
        test_write_file(job, text);
        assert_int_equal(chmod(job, 0644), 0);

        if (config_load(main_path, &o, &c, &errors) < 0 || c->n_jobs != 1) {
                for (char **e = errors; e && *e; e++)
                        fprintf(stderr, "%s\n", *e);
                fprintf(stderr, "of:\n%s", text);
                fail();
        }
        return c;
}

static void assert_round_trip(const char *group) {
        _cleanup_(config_freep) Config *a = load_one(group), *b = NULL;
        _cleanup_free_ char *text_a = NULL, *text_b = NULL;
        const JobConfig *ja, *jb;

        assert_int_equal(job_config_format(a->jobs[0], &text_a), 0);
        b = load_one(text_a);
        assert_int_equal(job_config_format(b->jobs[0], &text_b), 0);
        assert_string_equal(text_a, text_b);

        ja = a->jobs[0];
        jb = b->jobs[0];
        assert_string_equal(ja->name, jb->name);
        assert_int_equal(ja->n_steps, jb->n_steps);
        for (size_t i = 0; i < ja->n_steps; i++) {
                assert_string_equal(ja->steps[i].name, jb->steps[i].name);
                for (size_t k = 0; ja->steps[i].exec[k] || jb->steps[i].exec[k]; k++)
                        assert_string_equal(ja->steps[i].exec[k], jb->steps[i].exec[k]);
                assert_true(ja->steps[i].timeout_usec == jb->steps[i].timeout_usec);
                assert_int_equal(ja->steps[i].start_limit, jb->steps[i].start_limit);
                assert_int_equal(ja->steps[i].allow_start_if_complete, jb->steps[i].allow_start_if_complete);
        }
        assert_true(ja->timeout_usec == jb->timeout_usec);
        assert_true(ja->randomized_delay_usec == jb->randomized_delay_usec);
        assert_int_equal(ja->uid, jb->uid);
        assert_int_equal(ja->gid, jb->gid);
        assert_int_equal(ja->restartable, jb->restartable);
        assert_int_equal(ja->persistent, jb->persistent);
        assert_int_equal(ja->enabled, jb->enabled);
        assert_int_equal(ja->catch_up, jb->catch_up);
        assert_int_equal(ja->overlap, jb->overlap);
        assert_int_equal(ja->incrementer, jb->incrementer);
        for (size_t i = 0; i < 2; i++) {
                const JobAlert *aa = i == 0 ? &ja->on_failure : &ja->on_success,
                               *ab = i == 0 ? &jb->on_failure : &jb->on_success;

                assert_int_equal(!!aa->exec, !!ab->exec);
                for (size_t k = 0; aa->exec && (aa->exec[k] || ab->exec[k]); k++)
                        assert_string_equal(aa->exec[k], ab->exec[k]);
                assert_int_equal(!!aa->unit, !!ab->unit);
                if (aa->unit)
                        assert_string_equal(aa->unit, ab->unit);
        }
        assert_true(ja->alert_timeout_usec == jb->alert_timeout_usec);
        assert_int_equal(ja->parameters.n, jb->parameters.n);
        for (size_t i = 0; i < ja->parameters.n; i++) {
                assert_string_equal(ja->parameters.items[i].name, jb->parameters.items[i].name);
                assert_string_equal(ja->parameters.items[i].value, jb->parameters.items[i].value);
                assert_int_equal(ja->parameters.items[i].type, jb->parameters.items[i].type);
                assert_int_equal(ja->parameters.items[i].identifying, jb->parameters.items[i].identifying);
        }
}

static void test_minimal(void **state) {
        _cleanup_(config_freep) Config *c = load_one("{ name = \"m\"; user = \"root\"; steps = ( { name = \"s\"; "
                                                     "exec = [ \"/bin/true\" ]; } ); }\n");
        _cleanup_free_ char *text = NULL;

        assert_int_equal(job_config_format(c->jobs[0], &text), 0);
        /* Defaults are written out; scheduling settings only with a schedule. */
        assert_string_equal(text,
                            "{\n"
                            "        name = \"m\";\n"
                            "        user = \"root\";\n"
                            "        group = \"root\";\n"
                            "        restartable = true;\n"
                            "        timeout = \"infinity\";\n"
                            "        steps = (\n"
                            "                { name = \"s\"; exec = [ \"/bin/true\" ]; timeout = \"infinity\"; "
                            "allow_start_if_complete = false; }\n"
                            "        );\n"
                            "}\n");
        assert_round_trip("{ name = \"m\"; user = \"root\"; steps = ( { name = \"s\"; exec = [ \"/bin/true\" ]; } ); }\n");
}

static void test_everything(void **state) {
        assert_round_trip(
                "{\n"
                "  name = \"settle.v2\";\n"
                "  description = \"Quotes \\\" and \\\\ back\\\\slashes, tabs\\there, a\\nnewline\";\n"
                "  restartable = false;\n"
                "  parameters = [ \"region=eu\", \"count(long)=5\", \"-rate(double)=0.5\", \"when(datetime)=2026-11-21T02:00:00\" ];\n"
                "  user = \"root\";\n"
                "  working_directory = \"/tmp\";\n"
                "  environment = [ \"A=1\", \"B=two words\", \"C=x=y\" ];\n"
                "  timeout = \"1h 30min\";\n"
                "  on_failure = [ \"/usr/bin/notify\", \"a \\\"quoted\\\" word\" ];\n"
                "  on_success = { unit = \"report@.service\"; };\n"
                "  alert_timeout = \"2min\";\n"
                "  schedule = \"Mon..Fri *-*-* 02:00:00\";\n"
                "  persistent = true;\n"
                "  catch_up = 3;\n"
                "  randomized_delay = \"5min\";\n"
                "  overlap = \"queue\";\n"
                "  incrementer = \"run.id\";\n"
                "  schedule_parameter = \"day(date)\";\n"
                "  enabled = false;\n"
                "  steps = (\n"
                "    { name = \"load\"; exec = [ \"/bin/sh\", \"-c\", \"echo \\\"$1\\\"\", \"x\" ]; timeout = \"90s\"; start_limit = 3; },\n"
                "    { name = \"report\"; exec = [ \"/bin/true\" ]; allow_start_if_complete = true; timeout = \"0\"; }\n"
                "  );\n"
                "}\n");
}

static void test_schedule_without_persistence(void **state) {
        assert_round_trip("{ name = \"h\"; user = \"root\"; schedule = \"hourly\"; schedule_parameter = \"at(datetime)\"; "
                          "overlap = \"allow\"; steps = ( { name = \"s\"; exec = [ \"/bin/true\" ]; } ); }\n");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_minimal),
                cmocka_unit_test(test_everything),
                cmocka_unit_test(test_schedule_without_persistence),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
