/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "macro.h"
#include "time-util.h"

typedef struct Manager Manager;
typedef struct JobTimer JobTimer;

/* Fires jobs on their calendar schedules: one realtime sd-event timer per scheduled job, nothing polled, no wakeup
 * when nothing is due. Catches up after downtime (persistent jobs), applies the overlap policy and the concurrency
 * limit (a queue in due order), and records every due fire that did not start an execution, with its reason. */
int scheduler_start(Manager *m);
/* After a configuration reload: timers of changed jobs are recomputed, removed jobs stop firing. */
void scheduler_reload(Manager *m);
/* Launches queued fires that may run now; called whenever an execution ends. */
void scheduler_dispatch(Manager *m);
void scheduler_free(Manager *m);
/* 0 when the job has no timer or never elapses again. */
usec_t scheduler_next_elapse(Manager *m, const char *job);
/* The scheduled time of the job's last due fire, whether it ran or not; 0 when none is known (no timer, or
 * never fired). */
usec_t scheduler_last_fire(Manager *m, const char *job);
