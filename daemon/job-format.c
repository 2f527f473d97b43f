/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <stdio.h>

#include "job-format.h"

/* A libconfig string literal: the escapes its scanner knows (\\ \" \f \n \r \t \xNN). */
static void fput_string(FILE *f, const char *s) {
        fputc('"', f);
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                switch (*p) {
                case '"':
                case '\\':
                        fputc('\\', f);
                        fputc(*p, f);
                        break;
                case '\n':
                        fputs("\\n", f);
                        break;
                case '\t':
                        fputs("\\t", f);
                        break;
                case '\r':
                        fputs("\\r", f);
                        break;
                case '\f':
                        fputs("\\f", f);
                        break;
                default:
                        if (*p < 0x20 || *p == 0x7f)
                                fprintf(f, "\\x%02x", *p);
                        else
                                fputc(*p, f);
                }
        fputc('"', f);
}

static void fput_key_string(FILE *f, const char *indent, const char *key, const char *value) {
        fprintf(f, "%s%s = ", indent, key);
        fput_string(f, value);
        fputs(";\n", f);
}

static void fput_key_bool(FILE *f, const char *indent, const char *key, bool value) {
        fprintf(f, "%s%s = %s;\n", indent, key, value ? "true" : "false");
}

static void fput_key_timespan(FILE *f, const char *indent, const char *key, usec_t value) {
        char buf[TIMESPAN_MAX];

        fput_key_string(f, indent, key, timespan_format(value, buf));
}

static void fput_strv(FILE *f, char * const *l) {
        fputs("[ ", f);
        for (size_t i = 0; l && l[i]; i++) {
                if (i > 0)
                        fputs(", ", f);
                fput_string(f, l[i]);
        }
        fputs(" ]", f);
}

int job_config_format(const JobConfig *j, char **ret) {
        _cleanup_free_ char *buf = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        const char *in = "        ";
        size_t size = 0;

        assert(j);
        assert(ret);

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;

        fputs("{\n", f);
        fput_key_string(f, in, "name", j->name);
        if (j->description)
                fput_key_string(f, in, "description", j->description);
        if (j->user)
                fput_key_string(f, in, "user", j->user);
        if (j->user && j->group)
                fput_key_string(f, in, "group", j->group);
        if (j->working_directory)
                fput_key_string(f, in, "working_directory", j->working_directory);
        if (j->environment && j->environment[0]) {
                fprintf(f, "%senvironment = ", in);
                fput_strv(f, j->environment);
                fputs(";\n", f);
        }
        if (j->parameters.n > 0) {
                fprintf(f, "%sparameters = [ ", in);
                for (size_t i = 0; i < j->parameters.n; i++) {
                        _cleanup_free_ char *a = NULL;
                        int r;

                        r = job_parameter_to_argument(j->parameters.items + i, &a);
                        if (r < 0)
                                return r;
                        if (i > 0)
                                fputs(", ", f);
                        fput_string(f, a);
                }
                fputs(" ];\n", f);
        }
        fput_key_bool(f, in, "restartable", j->restartable);
        fput_key_timespan(f, in, "timeout", j->timeout_usec);
        for (size_t i = 0; i < 2; i++) {
                const JobAlert *al = i == 0 ? &j->on_failure : &j->on_success;
                const char *key = i == 0 ? "on_failure" : "on_success";

                if (al->exec) {
                        fprintf(f, "%s%s = ", in, key);
                        fput_strv(f, al->exec);
                        fputs(";\n", f);
                } else if (al->unit) {
                        fprintf(f, "%s%s = { unit = ", in, key);
                        fput_string(f, al->unit);
                        fputs("; };\n", f);
                }
        }
        if (j->on_failure.exec || j->on_success.exec)
                fput_key_timespan(f, in, "alert_timeout", j->alert_timeout_usec);
        /* The loader knows no name for "none": no incrementer is no key. */
        if (j->incrementer != JOB_INCREMENTER_NONE)
                fput_key_string(f, in, "incrementer", job_incrementer_to_string(j->incrementer));

        if (j->schedule) {
                fput_key_string(f, in, "schedule", j->schedule);
                fput_key_bool(f, in, "enabled", j->enabled);
                fput_key_bool(f, in, "persistent", j->persistent);
                if (j->persistent)
                        fprintf(f, "%scatch_up = %u;\n", in, j->catch_up);
                fput_key_timespan(f, in, "randomized_delay", j->randomized_delay_usec);
                fput_key_string(f, in, "overlap", job_overlap_to_string(j->overlap));
                if (j->schedule_parameter) {
                        _cleanup_free_ char *p = NULL;

                        if (asprintf(&p, "%s(%s)", j->schedule_parameter,
                                     job_parameter_type_to_string(j->schedule_parameter_type)) < 0)
                                return -ENOMEM;
                        fput_key_string(f, in, "schedule_parameter", p);
                }
        }

        fprintf(f, "%ssteps = (\n", in);
        for (size_t i = 0; i < j->n_steps; i++) {
                const StepConfig *s = j->steps + i;
                char span[TIMESPAN_MAX];

                fprintf(f, "%s%s{ name = ", in, in);
                fput_string(f, s->name);
                fputs("; exec = ", f);
                fput_strv(f, s->exec);
                fputs("; timeout = ", f);
                fput_string(f, timespan_format(s->timeout_usec, span));
                fprintf(f, "; allow_start_if_complete = %s;", s->allow_start_if_complete ? "true" : "false");
                if (s->start_limit != STEP_START_LIMIT_UNLIMITED)
                        fprintf(f, " start_limit = %i;", s->start_limit);
                fprintf(f, " }%s\n", i + 1 < j->n_steps ? "," : "");
        }
        fprintf(f, "%s);\n}\n", in);

        /* buf is complete only once the stream is closed. */
        if (fclose(TAKE_PTR(f)) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(buf);
        return 0;
}
