/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "time-util.h"

static void test_timespan_parse(void **state) {
        static const struct {
                const char *text;
                usec_t usec;
        } good[] = {
                { "90s", 90 * USEC_PER_SEC },
                { "5min", 300 * USEC_PER_SEC },
                { "1h 30min", 5400 * USEC_PER_SEC },
                { "1h30min", 5400 * USEC_PER_SEC },
                { "2", 2 * USEC_PER_SEC },
                { "1.5h", 5400 * USEC_PER_SEC },
                { "250ms", 250 * USEC_PER_MSEC },
                { "1d", 86400 * USEC_PER_SEC },
                { "1w 1d", 8 * 86400 * USEC_PER_SEC },
                { " 10 min ", 600 * USEC_PER_SEC },
                { "infinity", USEC_INFINITY },
                /* systemd 252's test_parse_sec() (src/test/test-time-util.c), checked against systemd-analyze. */
                { "5s", 5 * USEC_PER_SEC },
                { "5s500ms", 5500 * USEC_PER_MSEC },
                { " 5s 500ms  ", 5500 * USEC_PER_MSEC },
                { " 5.5s  ", 5500 * USEC_PER_MSEC },
                { " 5.5s 0.5ms ", 5500 * USEC_PER_MSEC + 500 },
                { " .22s ", 220 * USEC_PER_MSEC },
                { " .50y ", 31557600 * USEC_PER_SEC / 2 },
                { "2.5", 2500 * USEC_PER_MSEC },
                { ".7", 700 * USEC_PER_MSEC },
                { "23us", 23 },
                { "23\u00b5s", 23 },         /* MICRO SIGN */
                { "23\u03bcs", 23 },         /* GREEK SMALL LETTER MU, as systemd prints it */
                { " infinity ", USEC_INFINITY },
                { "+3.1s", 3100 * USEC_PER_MSEC },
                { "3.1s.2", 3300 * USEC_PER_MSEC },
                { "3.1 .2", 3300 * USEC_PER_MSEC },
                { "3.1 sec .2 sec", 3300 * USEC_PER_MSEC },
                { "3.1 sec 1.2 sec", 4300 * USEC_PER_MSEC },
                { "1.1111111111111y", 35063999999997 },  /* digits past the microsecond are dropped, not rounded */
                /* More of the same grammar, also checked against systemd-analyze timespan. */
                { "3s+4s", 7 * USEC_PER_SEC },
                { "0", 0 },
                { "1.0000009s", USEC_PER_SEC },
                { "5m30s", 330 * USEC_PER_SEC },
                { "2M", 2 * 2629800 * USEC_PER_SEC },
                { "\t1\tmin\n", 60 * USEC_PER_SEC },
                { "1 usec 1 msec", 1001 },
                { "584541y", UINT64_C(584541) * 31557600 * USEC_PER_SEC },
                { "18446744073255", UINT64_C(18446744073255) * USEC_PER_SEC },  /* found by fuzz-timespan */
        };
        static const struct {
                const char *text;
                int error;
        } bad[] = {
                { "", -EINVAL },
                { "abc", -EINVAL },
                { "5 parsecs", -EINVAL },
                { "-5s", -ERANGE },
                { "5s x", -EINVAL },
                { "min", -EINVAL },
                { "1.2.3s", -EINVAL },
                /* systemd 252's test_parse_sec(). */
                { " xyz ", -EINVAL },
                { " . ", -EINVAL },
                { " 5. ", -EINVAL },
                { ".s ", -EINVAL },
                { "-5s ", -ERANGE },
                { "-0.3s ", -ERANGE },
                { "-0.0s ", -ERANGE },
                { "-0.-0s ", -ERANGE },
                { "0.-0s ", -EINVAL },
                { "3.-0s ", -EINVAL },
                { " infinity .7", -EINVAL },
                { ".3 infinity", -EINVAL },
                { "3.+1s", -EINVAL },
                { "3. 1s", -EINVAL },
                { "3.s", -EINVAL },
                { "12.34.56", -EINVAL },
                { "12..34", -EINVAL },
                { "..1234", -EINVAL },
                { "1234..", -EINVAL },
                { "11111111111111y", -ERANGE },
                /* More, checked against systemd-analyze timespan. */
                { "infinityx", -EINVAL },
                { "+ 3s", -EINVAL },
                { "5\v s", -EINVAL },        /* \v is not whitespace to systemd */
                { "5ss", -EINVAL },
                { "0x10", -EINVAL },
                { "18446744073709551615us", -ERANGE },
                { "99999999999999999999", -ERANGE },
                /* What timespan_format() makes of 18446744073255s starts with this, which systemd refuses
                 * (found by tests/fuzz/fuzz-timespan.c): a parsed value need not format into a parsable one. */
                { "584542y", -ERANGE },
                { "584542y 2w 2d 19h 54min 15s", -ERANGE },
        };
        usec_t u;

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                u = 0;
                if (timespan_parse(good[i].text, &u) != 0 || u != good[i].usec)
                        fail_msg("'%s': expected %" PRIu64 ", got %" PRIu64, good[i].text, good[i].usec, u);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int r = timespan_parse(bad[i].text, &u);

                if (r != bad[i].error)
                        fail_msg("'%s': expected %d, got %d", bad[i].text, bad[i].error, r);
        }
}

static void test_timespan_format(void **state) {
        char buf[TIMESPAN_MAX];

        assert_string_equal(timespan_format(600 * USEC_PER_SEC, buf), "10min");
        assert_string_equal(timespan_format(5400 * USEC_PER_SEC, buf), "1h 30min");
        assert_string_equal(timespan_format(90 * USEC_PER_SEC + 500 * USEC_PER_MSEC, buf), "1min 30s 500ms");
        assert_string_equal(timespan_format(0, buf), "0");
        assert_string_equal(timespan_format(USEC_INFINITY, buf), "infinity");
}

static void test_timestamp(void **state) {
        char buf[TIMESTAMP_MAX];
        usec_t t = 1732233600 * USEC_PER_SEC + 123456, u;

        assert_non_null(timestamp_format(t, buf));
        assert_int_equal(strlen(buf), 26);
        assert_int_equal(timestamp_parse(buf, &u), 0);
        assert_true(u == t);

        assert_int_equal(timestamp_parse("2024-01-15 10:30:05", &u), 0);
        assert_int_equal(timestamp_parse("2024-01-15 10:30:05.5", &u), 0);
        assert_true(u % USEC_PER_SEC == 500000);
        assert_int_equal(timestamp_parse("2024-01-15", &u), -EINVAL);
        assert_int_equal(timestamp_parse("2024-01-15 10:30:05.", &u), -EINVAL);
        assert_int_equal(timestamp_parse("2024-01-15 10:30:05 junk", &u), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_timespan_parse),
                cmocka_unit_test(test_timespan_format),
                cmocka_unit_test(test_timestamp),
        };

        /* The timestamp test must not depend on the machine's zone. */
        setenv("TZ", "UTC", 1);
        tzset();
        return cmocka_run_group_tests(tests, NULL, NULL);
}
