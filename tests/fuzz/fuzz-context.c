/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* execution_context_parse(): the SERIALIZED_CONTEXT/SHORT_CONTEXT text of any stored execution context, which a
 * Spring Batch application sharing the database may have written (Base64 of a Java-serialized HashMap, Jackson's
 * typed JSON) or batchd (plain JSON). Whatever it accepts must be written again in every format batchd writes,
 * and what a Spring format writes must read back and write again byte for byte: a restart rewrites contexts it
 * read, and must not change what a Java reader gets. */

#include "context-format.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(execution_context_freep) ExecutionContext *c = NULL;
        _cleanup_free_ char *error = NULL;

        if (execution_context_parse((const char *) data, size, &c, &error) < 0) {
                fuzz_assert(error);     /* a refusal says why */
                return 0;
        }

        for (ContextFormat f = 0; f < _CONTEXT_FORMAT_MAX; f++) {
                _cleanup_(execution_context_freep) ExecutionContext *again = NULL;
                _cleanup_free_ char *text = NULL, *text2 = NULL, *e1 = NULL, *e2 = NULL, *e3 = NULL;

                /* Nested values read from plain JSON cannot be written in a Spring format: a clean refusal. */
                if (execution_context_serialize_as(c, f, &text, &e1) < 0) {
                        fuzz_assert(f != CONTEXT_FORMAT_JSON);
                        fuzz_assert(e1);
                        continue;
                }
                fuzz_assert(execution_context_parse(text, strlen(text), &again, &e2) == 0);
                fuzz_assert(execution_context_serialize_as(again, f, &text2, &e3) == 0);
                fuzz_assert(streq(text, text2));
        }
        return 0;
}
