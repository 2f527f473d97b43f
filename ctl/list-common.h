/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "output.h"
#include "records.h"

/* Pieces the listing verbs (list-jobs, list-executions, status) share; in verb-list.c. */

/* A JSON array of job_info_to_json()/execution_info_to_json() objects on stdout. Log on failure. */
int print_jobs_json(const JobInfo *jobs, size_t n);
int print_executions_json(const ExecutionInfo *executions, size_t n);
int add_executions_json(json_object *array, const ExecutionInfo *executions, size_t n);

/* Rows for a table with the columns ID, [JOB,] INSTANCE, STATUS, EXIT CODE, STARTED, DURATION. */
int add_execution_rows(Table *t, const ExecutionInfo *executions, size_t n, bool with_job);

/* "\n3 executions listed." unless --no-legend. */
void print_footer(size_t n, const char *one, const char *many);
