/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* The top-level verbs of batchctl, one file each (or one per group of closely related verbs). Each returns
 * a negative errno on failure (already logged) or the exit status to use. */

/* verb-start.c */
int verb_start(int argc, char *argv[], void *userdata);
int verb_next(int argc, char *argv[], void *userdata);
int verb_restart(int argc, char *argv[], void *userdata);

/* verb-control.c */
int verb_stop(int argc, char *argv[], void *userdata);
int verb_abandon(int argc, char *argv[], void *userdata);
int verb_reload(int argc, char *argv[], void *userdata);

/* verb-enable.c */
int verb_enable(int argc, char *argv[], void *userdata);
int verb_disable(int argc, char *argv[], void *userdata);
int verb_revert(int argc, char *argv[], void *userdata);

/* verb-purge.c */
int verb_purge(int argc, char *argv[], void *userdata);

/* verb-list.c */
int verb_list_jobs(int argc, char *argv[], void *userdata);
int verb_list_executions(int argc, char *argv[], void *userdata);

/* verb-status.c */
int verb_status(int argc, char *argv[], void *userdata);

/* verb-show.c */
int verb_show(int argc, char *argv[], void *userdata);

/* verb-metrics.c */
int verb_metrics(int argc, char *argv[], void *userdata);

/* verb-logs.c */
int verb_logs(int argc, char *argv[], void *userdata);

/* verb-nodes.c */
int verb_nodes(int argc, char *argv[], void *userdata);

/* verb-calendar.c */
int verb_calendar(int argc, char *argv[], void *userdata);

/* verb-verify.c */
int verb_verify(int argc, char *argv[], void *userdata);

/* verb-job.c */
int verb_cat(int argc, char *argv[], void *userdata);
int verb_list_timers(int argc, char *argv[], void *userdata);
/* show JOB, and show EXECUTION_ID -p: the object's properties as Key=value lines (-p selects). */
int show_job(const char *name);
int show_execution_properties(uint64_t id);
