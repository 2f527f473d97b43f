/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared by the libFuzzer harnesses of tests/fuzz (README.md there). */

#include <stddef.h>
#include <stdint.h>

#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whatever a parser may legitimately refuse, a harness ends in abort() only for a broken invariant, which
 * libFuzzer then reports as a crash with the input that caused it. */
#define fuzz_assert(expr)                                                                               \
        do {                                                                                            \
                if (!(expr)) {                                                                          \
                        fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #expr);    \
                        abort();                                                                        \
                }                                                                                       \
        } while (0)

/* The input as a C string: parsers of text take NUL-terminated strings. Inputs with a NUL inside are cut
 * there, as they would be by any caller. NULL on out of memory (libFuzzer's malloc limit). */
static inline char *fuzz_string(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);

        if (!s)
                return NULL;
        memcpy(s, data, size);
        s[size] = '\0';
        return s;
}
