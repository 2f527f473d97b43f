/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* timespan_parse() (durations in batchd.conf and job files). Every value it accepts must survive
 * timespan_format() and a second parse unchanged, except from 584542 years on: like systemd, the parser
 * refuses a number of years that large (tests/test-time-util.c), so "584542y 2w ..." does not parse back. */

#include "fuzz.h"
#include "time-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *s = fuzz_string(data, size);
        char buf[TIMESPAN_MAX];
        usec_t u, v;

        if (!s || timespan_parse(s, &u) < 0)
                return 0;
        fuzz_assert(timespan_format(u, buf));
        if (u >= UINT64_C(584542) * 31557600 * USEC_PER_SEC)
                return 0;
        fuzz_assert(timespan_parse(buf, &v) == 0);
        fuzz_assert(u == v);
        return 0;
}
