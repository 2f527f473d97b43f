/* SPDX-License-Identifier: LGPL-2.1-or-later */

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
        };
        static const char *const bad[] = { "", "abc", "5 parsecs", "-5s", "5s x", "min", "1.2.3s" };
        usec_t u;

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                assert_int_equal(timespan_parse(good[i].text, &u), 0);
                assert_true(u == good[i].usec);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(timespan_parse(bad[i], &u), -EINVAL);
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
