/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* job_parameters_parse_argument() (batchctl start JOB name=value..., Spring Batch 4 and 5 styles), one
 * argument a line. Whatever is accepted must format back (job_parameter_to_argument()) into arguments that
 * parse to the same name, type, value and identifying flag; the identifying string and ${name} expansion of
 * the input itself must not fail other than by refusing. */

#include "fuzz.h"
#include "job-parameters.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL, back = JOB_PARAMETERS_NULL;
        _cleanup_free_ char *s = NULL, *key = NULL, *expanded = NULL, *why = NULL;
        char *line, *save = NULL;

        if (size > 16384)
                return 0;
        s = fuzz_string(data, size);
        if (!s)
                return 0;

        for (line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                _cleanup_free_ char *error = NULL;

                (void) job_parameters_parse_argument(&p, line, &error);
        }

        for (size_t i = 0; i < p.n; i++) {
                _cleanup_free_ char *arg = NULL, *error = NULL;
                const JobParameter *q;

                fuzz_assert(job_parameter_to_argument(&p.items[i], &arg) == 0);
                if (job_parameters_parse_argument(&back, arg, &error) < 0) {
                        fprintf(stderr, "'%s' does not parse back: %s\n", arg, strna(error));
                        abort();
                }
                q = job_parameters_get(&back, p.items[i].name);
                fuzz_assert(q);
                fuzz_assert(q->type == p.items[i].type);
                fuzz_assert(q->identifying == p.items[i].identifying);
                fuzz_assert(streq(q->value, p.items[i].value));
        }

        (void) job_parameters_identifying_to_string(&p, &key);
        memcpy(s, data, size);   /* strtok_r() cut it up */
        (void) job_parameters_expand(&p, s, &expanded, &why);
        return 0;
}
