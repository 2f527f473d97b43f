/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "macro.h"

/* on_failure and on_success (docs/configuration.md, "Alerts"): after an execution's end is announced, the job's
 * command runs as a step does (batchd-exec: as the job's user, no shell, nothing of it waited for in the loop)
 * with the execution in its environment, or the job's systemd unit is started (StartUnit, asynchronously) with
 * the execution id as its instance. The alert's own result is logged (MESSAGE_ALERT) and never changes the
 * execution's status; a command still running after alert_timeout is killed. */

typedef struct Manager Manager;
typedef struct JobRun JobRun;
typedef struct Alert Alert;

/* Starts the alert the end of run calls for, if any. Failures are logged, never returned. */
void alert_execution_ended(Manager *m, const JobRun *run);

/* Kills every alert command still running (their process groups) and frees them: batchd is going away. */
void alerts_free(Manager *m);
