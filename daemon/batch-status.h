/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "macro.h"

/* Spring Batch's BatchStatus, in its declaration order: the order upgrade decisions use. */
typedef enum BatchStatus {
        BATCH_STATUS_COMPLETED,
        BATCH_STATUS_STARTING,
        BATCH_STATUS_STARTED,
        BATCH_STATUS_STOPPING,
        BATCH_STATUS_STOPPED,
        BATCH_STATUS_FAILED,
        BATCH_STATUS_ABANDONED,
        BATCH_STATUS_UNKNOWN,
        _BATCH_STATUS_MAX,
        _BATCH_STATUS_INVALID = -EINVAL,
} BatchStatus;

const char *batch_status_to_string(BatchStatus s) _pure_;
BatchStatus batch_status_from_string(const char *s) _pure_;

bool batch_status_is_running(BatchStatus s) _pure_;
bool batch_status_is_unsuccessful(BatchStatus s) _pure_;
/* BatchStatus.upgradeTo(): a status only moves forward, and COMPLETED never overrides a failure. */
BatchStatus batch_status_upgrade(BatchStatus current, BatchStatus other) _pure_;

/* Spring's well-known ExitStatus codes. Any other string is a custom code, more severe than all of them. */
#define EXIT_CODE_UNKNOWN "UNKNOWN"
#define EXIT_CODE_EXECUTING "EXECUTING"
#define EXIT_CODE_COMPLETED "COMPLETED"
#define EXIT_CODE_NOOP "NOOP"
#define EXIT_CODE_FAILED "FAILED"
#define EXIT_CODE_STOPPED "STOPPED"

int exit_code_severity(const char *code) _pure_;
/* ExitStatus.compareTo(): severity first, then the code's string order. */
int exit_code_compare(const char *a, const char *b) _pure_;

/* ExitStatus.and(): the more severe code wins; descriptions are joined with "; ". Both outputs are newly allocated. */
int exit_status_and(const char *code_a, const char *desc_a, const char *code_b, const char *desc_b,
                    char **ret_code, char **ret_desc);

/* The exit code Spring's ExitStatus gives a finished BatchStatus (COMPLETED, FAILED, STOPPED, ...). */
const char *exit_code_from_batch_status(BatchStatus s) _pure_;
