/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* calendar_spec_from_string() (a job's schedule). An accepted expression's normalized form must parse again
 * to the same normalized form, and computing elapses from a fixed base must not fail other than with
 * -ENOENT (never elapses again). Expressions with a time zone switch $TZ in-process: the test command
 * runs this harness with -rss_limit_mb=0, so libFuzzer starts no thread and that is safe. */

#include "calendar.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(calendar_spec_freep) CalendarSpec *c = NULL, *again = NULL;
        _cleanup_free_ char *s = NULL, *normalized = NULL, *normalized_again = NULL, *error = NULL;
        usec_t next[4];
        int r;

        /* Longer expressions add nothing but time. */
        if (size > 512)
                return 0;
        s = fuzz_string(data, size);
        if (!s)
                return 0;

        r = calendar_spec_from_string(s, &c, &error);
        if (r < 0) {
                fuzz_assert(r == -EINVAL || r == -ENOMEM);
                return 0;
        }
        if (calendar_spec_to_string(c, &normalized) < 0)
                return 0;
        fuzz_assert(calendar_spec_from_string(normalized, &again, NULL) == 0);
        fuzz_assert(calendar_spec_to_string(again, &normalized_again) == 0);
        fuzz_assert(streq(normalized, normalized_again));

        /* 2024-02-29 12:34:56 UTC, a leap day. */
        r = calendar_spec_next_usec_many(c, UINT64_C(1709210096) * USEC_PER_SEC, ELEMENTSOF(next), next);
        fuzz_assert(r >= 0 || r == -ENOENT || r == -ENOMEM);
        for (int i = 1; i < r; i++)
                fuzz_assert(next[i] > next[i - 1]);
        return 0;
}
