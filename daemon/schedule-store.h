/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "repository.h"

/* batchd's own tables next to Spring's (schema/003-schedule.sql): when each job's schedule last fired, and every
 * due fire that did not start an execution, with its reason. */

/* Reasons a due fire did not start an execution. */
#define NONRUN_OVERLAP            "overlap"            /* overlap = skip and an execution was running */
#define NONRUN_MISSED             "missed"             /* due while batchd was down, not caught up */
#define NONRUN_QUEUE_FULL         "queue-full"         /* the wait queue of the concurrency limit was full */
#define NONRUN_DISABLED           "disabled"           /* enabled = false */
#define NONRUN_INSTANCE_COMPLETE  "instance-complete"  /* the instance of that fire already completed */
#define NONRUN_ALREADY_RUNNING    "already-running"    /* the instance of that fire is running */
#define NONRUN_LAUNCH_FAILED      "launch-failed"      /* anything else the launch refused */
#define NONRUN_REMOVED            "removed"            /* the job left the configuration while its fire waited */

typedef struct NonRun {
        int64_t id;
        char *job_name;
        usec_t scheduled;
        usec_t recorded;
        char *reason;
        char *detail;
} NonRun;

void nonrun_array_free(NonRun *a, size_t n);

/* -ENOENT when the job never fired. */
int schedule_store_get_last_fire(Repository *r, const char *job, usec_t *ret);
/* Never moves the last fire back: an earlier fire than the one on record changes nothing. */
int schedule_store_set_last_fire(Repository *r, const char *job, usec_t fire, int64_t execution_id);
int schedule_store_add_nonrun(Repository *r, const char *job, usec_t scheduled, const char *reason,
                              const char *detail);
/* Newest first; job NULL means every job; at most REPOSITORY_PAGE_MAX, limit 0 means that many. */
int schedule_store_list_nonruns(Repository *r, const char *job, size_t limit, NonRun **ret, size_t *ret_n);

/* The runtime switch of "batchctl enable/disable" (schema/008-job-enabled.sql): *ret 1 enabled, 0 disabled;
 * -ENOENT when there is none and the job file's `enabled` decides. */
int schedule_store_get_enabled(Repository *r, const char *job, int *ret);
/* enabled 1 or 0 sets the switch, -1 removes it (batchctl revert). */
int schedule_store_set_enabled(Repository *r, const char *job, int enabled);
