/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "repository.h"

/* Message ids of batchd's structured journal entries; units/batchd.catalog explains each of them, so
 * "journalctl -x" shows the explanation next to the entry. */
#define MESSAGE_JOB_STARTED      "6c25bc09b2d041e1b7409d704f0e48a4"
#define MESSAGE_JOB_FINISHED     "d29faaa8bc6840fd9a86ad1f6fe351ef"
#define MESSAGE_STEP_STARTED     "d32fa771da42412cb86e9b22a89076d3"
#define MESSAGE_STEP_FINISHED    "f24d5df87e6044ac81fc910c089b8252"
#define MESSAGE_STEP_SKIPPED     "b70b621496bd445d9ebd669d2c44034f"
#define MESSAGE_RECONCILED       "3f891149adde4dcba6b8226a0280f16a"
#define MESSAGE_CONFIG_ERROR     "f9f65acc908949b3a6322bb01e72565d"
#define MESSAGE_FIRE_NOT_STARTED "192581bddf96436bac7c5877db665deb"
#define MESSAGE_DAEMON_STATE     "a4234fd1d63f404d8804f4a556e23591"
#define MESSAGE_ALERT            "7d1c5b0e3f8a4c2e9b6a41d8e0f3c527"

/* One structured entry: MESSAGE_ID, PRIORITY, MESSAGE and, from e and s when given, BATCH_JOB_NAME,
 * BATCH_JOB_INSTANCE_ID, BATCH_JOB_EXECUTION_ID, BATCH_STEP_NAME, BATCH_STEP_EXECUTION_ID, BATCH_STATUS and
 * BATCH_EXIT_CODE (of the step when s is given, else of the execution). Falls back to stderr where there is no
 * journal (containers), like every other log line. */
void lifecycle_log(const char *message_id, int priority, const JobExecution *e, const StepExecution *s,
                   const char *format, ...) _printf_(5, 6);
/* The same with extra "FIELD=value" entries (NULL-terminated list, may be NULL). */
void lifecycle_log_fields(const char *message_id, int priority, const JobExecution *e, const StepExecution *s,
                          char **fields, const char *format, ...) _printf_(6, 7);
