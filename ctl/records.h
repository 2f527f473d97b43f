/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <systemd/sd-bus.h>

#include "macro.h"
#include "time-util.h"

/* What batchd's replies carry, read into plain structs (the strings copied, so they outlive the message),
 * and their JSON form (docs/batchctl-json.md). */

/* One entry of ListJobs: (sssttssuo). */
typedef struct JobInfo {
        char *name;
        char *description;
        char *schedule;
        usec_t next_elapse;
        uint64_t last_execution_id;
        char *last_status;
        char *last_exit_code;
        uint32_t running;
        char *path;
        bool enabled;                   /* the Job's Enabled: whether its schedule fires */
        char *enabled_override;         /* EnabledOverride: "enabled", "disabled" (batchctl enable/disable), "" */
} JobInfo;

/* An execution summary: (ttssssttto). current_step and progress come from the execution object's
 * properties and are only filled in where a verb asks for them. */
typedef struct ExecutionInfo {
        uint64_t id;
        uint64_t instance_id;
        char *job;
        char *status;
        char *exit_code;
        char *exit_message;
        usec_t create_time, start_time, end_time;
        char *path;
        char *current_step;
        char *progress;
        uint64_t items_total, items_done;   /* ItemsTotal, ItemsDone of the running step */
        double items_per_second;            /* ItemsPerSecond */
} ExecutionInfo;

/* One entry of GetStepExecutions: (tsssstttttttttts). */
typedef struct StepInfo {
        uint64_t id;
        char *name;
        char *status;
        char *exit_code;
        char *exit_message;
        usec_t start_time, end_time;
        uint64_t commit_count, read_count, filter_count, write_count;
        uint64_t read_skip_count, write_skip_count, process_skip_count, rollback_count;
        char *context;
} StepInfo;

/* A job parameter as it travels: (sssb). */
typedef struct ParameterInfo {
        char *name;
        char *type;
        char *value;
        bool identifying;
} ParameterInfo;

void job_info_array_free(JobInfo *a, size_t n);

#define FORMAT_ITEMS_MAX 160
/* A running step's progress in items: "1,234/10,000 items, 12%, 410/s, about 21 s left", fewer parts when the
 * step declared no total or nothing was read yet; NULL when there is nothing to say (no items, no total). */
char *format_items_progress(char buf[static FORMAT_ITEMS_MAX], uint64_t done, uint64_t total, double per_second);
/* The NEXT cell of a job: "disabled" for a schedule switched off, else its next elapse. */
const char *job_info_format_next(const JobInfo *j, char buf[static FORMAT_TIMESTAMP_MAX]);
void execution_info_done(ExecutionInfo *e);
void execution_info_array_free(ExecutionInfo *a, size_t n);
void step_info_array_free(StepInfo *a, size_t n);
void parameter_info_array_free(ParameterInfo *a, size_t n);

/* Read one struct; return 0 at the end of the enclosing array, 1 when one was read. */
int bus_read_job_info(sd_bus_message *m, JobInfo *ret);
int bus_read_execution_info(sd_bus_message *m, ExecutionInfo *ret);

/* Read a whole array of the respective structs. */
int bus_read_job_infos(sd_bus_message *m, JobInfo **ret, size_t *ret_n);
int bus_read_execution_infos(sd_bus_message *m, ExecutionInfo **ret, size_t *ret_n);
int bus_read_step_infos(sd_bus_message *m, StepInfo **ret, size_t *ret_n);
int bus_read_parameter_infos(sd_bus_message *m, ParameterInfo **ret, size_t *ret_n);

/* Fills in current_step and progress from the execution object (Properties.GetAll). Quietly leaves them
 * NULL if the object cannot be read: the execution may have ended in between. */
int execution_info_load_progress(sd_bus *bus, ExecutionInfo *e);

/* ListJobs, ListExecutions and GetRunningExecutions. Log on failure. */
int bus_list_jobs(sd_bus *bus, JobInfo **ret, size_t *ret_n);
int bus_list_executions(sd_bus *bus, const char *job, uint32_t limit, ExecutionInfo **ret, size_t *ret_n);

/* list-executions --state, --since, --until. batchd's ListExecutions has no filters: batchctl pages through
 * the executions (of JOB) and keeps those that match, at most limit of them (0: all). */
typedef struct ExecutionFilter {
        char **states;          /* BatchStatus names; NULL: any */
        usec_t since;           /* 0: no lower bound */
        usec_t until;           /* USEC_INFINITY: no upper bound */
} ExecutionFilter;

/* Whether e matches: its status is one of states, and the time list-executions shows for it (its start, or its
 * creation if it never started) lies within [since, until]. */
bool execution_filter_match(const ExecutionFilter *f, const ExecutionInfo *e);

/* bus_list_executions() keeping only what filter matches (NULL: everything). *ret_seen (if not NULL) is how many
 * executions batchd listed before filtering: 0 means JOB has none at all. */
int bus_list_executions_filtered(sd_bus *bus, const char *job, uint32_t limit, const ExecutionFilter *filter,
                                 ExecutionInfo **ret, size_t *ret_n, size_t *ret_seen);
int bus_get_running_executions(sd_bus *bus, ExecutionInfo **ret, size_t *ret_n);

json_object *job_info_to_json(const JobInfo *j);
json_object *execution_info_to_json(const ExecutionInfo *e);
json_object *step_info_to_json(const StepInfo *s);
json_object *parameter_info_to_json(const ParameterInfo *p);

/* The parameter in the syntax "batchctl start" accepts: "name=value", "name(long)=5", "-name=value". */
int parameter_info_to_argument(const ParameterInfo *p, char **ret);

/* The duration of a finished execution or step; 0 if it has not both started and ended. */
usec_t duration_of(usec_t start, usec_t end);
