/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "batch-status.h"

static void test_round_trip(void **state) {
        for (BatchStatus s = 0; s < _BATCH_STATUS_MAX; s++)
                assert_int_equal(batch_status_from_string(batch_status_to_string(s)), s);
        assert_int_equal(batch_status_from_string("completed"), _BATCH_STATUS_INVALID);
        assert_int_equal(batch_status_from_string(NULL), _BATCH_STATUS_INVALID);
        assert_null(batch_status_to_string(_BATCH_STATUS_MAX));
}

static void test_upgrade(void **state) {
        /* BatchStatusTests in Spring Batch */
        assert_int_equal(batch_status_upgrade(BATCH_STATUS_FAILED, BATCH_STATUS_COMPLETED), BATCH_STATUS_FAILED);
        assert_int_equal(batch_status_upgrade(BATCH_STATUS_COMPLETED, BATCH_STATUS_FAILED), BATCH_STATUS_FAILED);
        assert_int_equal(batch_status_upgrade(BATCH_STATUS_STARTING, BATCH_STATUS_COMPLETED), BATCH_STATUS_COMPLETED);
        assert_int_equal(batch_status_upgrade(BATCH_STATUS_COMPLETED, BATCH_STATUS_STARTING), BATCH_STATUS_COMPLETED);
        assert_int_equal(batch_status_upgrade(BATCH_STATUS_STARTED, BATCH_STATUS_STARTING), BATCH_STATUS_STARTED);
        assert_int_equal(batch_status_upgrade(BATCH_STATUS_STARTING, BATCH_STATUS_STARTED), BATCH_STATUS_STARTED);
        assert_int_equal(batch_status_upgrade(BATCH_STATUS_STOPPED, BATCH_STATUS_FAILED), BATCH_STATUS_FAILED);
        assert_int_equal(batch_status_upgrade(BATCH_STATUS_ABANDONED, BATCH_STATUS_COMPLETED), BATCH_STATUS_ABANDONED);
        assert_int_equal(batch_status_upgrade(BATCH_STATUS_UNKNOWN, BATCH_STATUS_FAILED), BATCH_STATUS_UNKNOWN);
}

static void test_running(void **state) {
        assert_true(batch_status_is_running(BATCH_STATUS_STARTING));
        assert_true(batch_status_is_running(BATCH_STATUS_STARTED));
        assert_true(batch_status_is_running(BATCH_STATUS_STOPPING));
        assert_false(batch_status_is_running(BATCH_STATUS_STOPPED));
        assert_false(batch_status_is_running(BATCH_STATUS_COMPLETED));
        assert_true(batch_status_is_unsuccessful(BATCH_STATUS_FAILED));
        assert_true(batch_status_is_unsuccessful(BATCH_STATUS_UNKNOWN));
        assert_false(batch_status_is_unsuccessful(BATCH_STATUS_STOPPED));
}

static void test_exit_code_order(void **state) {
        /* EXECUTING < COMPLETED < NOOP < STOPPED < FAILED < UNKNOWN < custom */
        const char *order[] = { "EXECUTING", "COMPLETED", "NOOP", "STOPPED", "FAILED", "UNKNOWN", "CUSTOM" };

        for (size_t i = 0; i + 1 < ELEMENTSOF(order); i++) {
                assert_int_equal(exit_code_compare(order[i], order[i + 1]), -1);
                assert_int_equal(exit_code_compare(order[i + 1], order[i]), 1);
                assert_int_equal(exit_code_compare(order[i], order[i]), 0);
        }
        /* Two custom codes compare by their text. */
        assert_int_equal(exit_code_compare("AAA", "BBB"), -1);
}

static void test_exit_status_and(void **state) {
        char *code, *desc;

        assert_int_equal(exit_status_and("COMPLETED", "", "FAILED", "boom", &code, &desc), 0);
        assert_string_equal(code, "FAILED");
        assert_string_equal(desc, "boom");
        free(code), free(desc);

        assert_int_equal(exit_status_and("FAILED", "first", "COMPLETED", "second", &code, &desc), 0);
        assert_string_equal(code, "FAILED");
        assert_string_equal(desc, "first; second");
        free(code), free(desc);

        assert_int_equal(exit_status_and("NOOP", "same", "COMPLETED", "same", &code, &desc), 0);
        assert_string_equal(code, "NOOP");
        assert_string_equal(desc, "same");
        free(code), free(desc);
}

static void test_exit_code_from_status(void **state) {
        assert_string_equal(exit_code_from_batch_status(BATCH_STATUS_COMPLETED), "COMPLETED");
        assert_string_equal(exit_code_from_batch_status(BATCH_STATUS_FAILED), "FAILED");
        assert_string_equal(exit_code_from_batch_status(BATCH_STATUS_STOPPED), "STOPPED");
        assert_string_equal(exit_code_from_batch_status(BATCH_STATUS_UNKNOWN), "UNKNOWN");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_upgrade),
                cmocka_unit_test(test_running),
                cmocka_unit_test(test_exit_code_order),
                cmocka_unit_test(test_exit_status_and),
                cmocka_unit_test(test_exit_code_from_status),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
