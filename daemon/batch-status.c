/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "batch-status.h"

static const char *const batch_status_table[_BATCH_STATUS_MAX] = {
        [BATCH_STATUS_COMPLETED] = "COMPLETED",
        [BATCH_STATUS_STARTING]  = "STARTING",
        [BATCH_STATUS_STARTED]   = "STARTED",
        [BATCH_STATUS_STOPPING]  = "STOPPING",
        [BATCH_STATUS_STOPPED]   = "STOPPED",
        [BATCH_STATUS_FAILED]    = "FAILED",
        [BATCH_STATUS_ABANDONED] = "ABANDONED",
        [BATCH_STATUS_UNKNOWN]   = "UNKNOWN",
};

const char *batch_status_to_string(BatchStatus s) {
        if (s < 0 || s >= _BATCH_STATUS_MAX)
                return NULL;
        return batch_status_table[s];
}

BatchStatus batch_status_from_string(const char *s) {
        if (!s)
                return _BATCH_STATUS_INVALID;
        for (BatchStatus i = 0; i < _BATCH_STATUS_MAX; i++)
                if (streq(batch_status_table[i], s))
                        return i;
        return _BATCH_STATUS_INVALID;
}

bool batch_status_is_running(BatchStatus s) {
        return s == BATCH_STATUS_STARTING || s == BATCH_STATUS_STARTED || s == BATCH_STATUS_STOPPING;
}

bool batch_status_is_unsuccessful(BatchStatus s) {
        return s == BATCH_STATUS_FAILED || s > BATCH_STATUS_FAILED;
}

BatchStatus batch_status_upgrade(BatchStatus current, BatchStatus other) {
        if (current > BATCH_STATUS_STARTED || other > BATCH_STATUS_STARTED)
                return MAX(current, other);
        if (current == BATCH_STATUS_COMPLETED || other == BATCH_STATUS_COMPLETED)
                return BATCH_STATUS_COMPLETED;
        return MAX(current, other);
}

int exit_code_severity(const char *code) {
        static const char *const order[] = {
                EXIT_CODE_EXECUTING, EXIT_CODE_COMPLETED, EXIT_CODE_NOOP,
                EXIT_CODE_STOPPED, EXIT_CODE_FAILED, EXIT_CODE_UNKNOWN,
        };

        if (code)
                for (size_t i = 0; i < ELEMENTSOF(order); i++)
                        if (streq(code, order[i]))
                                return (int) i + 1;
        return 7;
}

int exit_code_compare(const char *a, const char *b) {
        int sa = exit_code_severity(a), sb = exit_code_severity(b), c;

        if (sa != sb)
                return sa < sb ? -1 : 1;
        c = strcmp(strempty(a), strempty(b));
        return c < 0 ? -1 : c > 0;
}

int exit_status_and(const char *code_a, const char *desc_a, const char *code_b, const char *desc_b,
                    char **ret_code, char **ret_desc) {
        _cleanup_free_ char *code = NULL, *desc = NULL;

        code = strdup(exit_code_compare(code_a, code_b) < 0 ? strempty(code_b) : strempty(code_a));
        if (!code)
                return -ENOMEM;

        /* ExitStatus.addExitDescription(): skip empty and identical descriptions, join the rest. */
        if (isempty(desc_b) || streq_ptr_safe(desc_a, desc_b))
                desc = strdup(strempty(desc_a));
        else if (isempty(desc_a))
                desc = strdup(desc_b);
        else if (asprintf(&desc, "%s; %s", desc_a, desc_b) < 0)
                desc = NULL;
        if (!desc)
                return -ENOMEM;

        *ret_code = TAKE_PTR(code);
        *ret_desc = TAKE_PTR(desc);
        return 0;
}

const char *exit_code_from_batch_status(BatchStatus s) {
        switch (s) {
        case BATCH_STATUS_COMPLETED:
                return EXIT_CODE_COMPLETED;
        case BATCH_STATUS_STOPPED:
        case BATCH_STATUS_STOPPING:
                return EXIT_CODE_STOPPED;
        case BATCH_STATUS_FAILED:
                return EXIT_CODE_FAILED;
        case BATCH_STATUS_STARTING:
        case BATCH_STATUS_STARTED:
                return EXIT_CODE_EXECUTING;
        default:
                return EXIT_CODE_UNKNOWN;
        }
}
