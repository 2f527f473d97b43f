/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "repository.h"
#include "time-util.h"

/* Per-job figures in the Prometheus text exposition format (version 0.0.4, which node_exporter's textfile
 * collector reads): see docs/configuration.md, "Metrics". Everything is kept in memory and updated where it
 * happens (an execution's end, a step's end, a fire that did not run, a fire launched), so rendering costs
 * O(jobs) and never touches the database: it runs in the event loop after every execution's end. Counters
 * start at zero when batchd starts, as Prometheus counters do after a restart (rate() handles the reset). */

typedef struct Manager Manager;
typedef struct Metrics Metrics;

Metrics *metrics_free(Metrics *m);

/* Each takes the manager and creates its Metrics on first use; failures to allocate are logged, never
 * returned: metrics must not change what happens to an execution. */
void metrics_execution_ended(Manager *m, const JobExecution *e);
void metrics_step_ended(Manager *m, const char *job, const StepExecution *s);
void metrics_nonrun(Manager *m, const char *job, const char *reason);
void metrics_fired(Manager *m, const char *job, usec_t scheduled, usec_t launched);

/* At startup: the last success and failure of every configured job, from its newest METRICS_SEED_MAX
 * executions (one bounded, indexed page per job: the existing ListExecutions query), so the timestamps an
 * alert rule watches survive a restart. Counters start at zero regardless. */
#define METRICS_SEED_MAX 200U
void metrics_seed(Manager *m);

/* The exposition text of everything, jobs of the current configuration first (each with all of its series,
 * zeros included), then jobs that left it but have figures. */
int metrics_render(Manager *m, char **ret);

/* Writes the exposition to metrics_textfile (when configured) atomically: a temporary file in the same
 * directory, then rename(). Logs failures. */
void metrics_write_textfile(Manager *m);

/* Manager.GetMetrics() → s */
int method_get_metrics(sd_bus_message *msg, void *userdata, sd_bus_error *error);
