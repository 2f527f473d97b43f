/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the repository's files share (repository.c, schedule-store.c): the statements, by id. */

#include "db.h"
#include "repository.h"

/* Every statement the repository runs, prepared once per connection and reused: preparing dominates the cost of
 * the small statements a launch is made of. */
typedef enum Sql {
        SQL_FIND_INSTANCE,
        SQL_INSERT_INSTANCE,
        SQL_GET_INSTANCE,
        SQL_INSTANCE_STATUSES,
        SQL_LAST_EXECUTION_OF_INSTANCE,
        SQL_STEP_STATUSES_OF_EXECUTION,
        SQL_INSERT_EXECUTION,
        SQL_INSERT_PARAM,
        SQL_GET_PARAMS,
        SQL_INSERT_JOB_CONTEXT,
        SQL_GET_JOB_CONTEXT,
        SQL_UPDATE_JOB_CONTEXT,
        SQL_UPDATE_EXECUTION,
        SQL_EXECUTION_VERSION,
        SQL_GET_EXECUTION,
        SQL_INSERT_STEP,
        SQL_INSERT_STEP_CONTEXT,
        SQL_GET_STEP_CONTEXT,
        SQL_UPDATE_STEP_CONTEXT,
        SQL_UPDATE_STEP,
        SQL_STEP_VERSION,
        SQL_GET_STEPS,
        SQL_LAST_STEP,
        SQL_STEP_COUNT,
        SQL_JOB_NAMES,
        SQL_INSTANCES_OF_JOB,
        SQL_INSTANCE_COUNT,
        SQL_MAX_RUN_ID,
        SQL_LIST_EXECUTIONS,
        SQL_LIST_EXECUTIONS_OF_JOB,
        SQL_LIST_EXECUTIONS_OF_INSTANCE,
        SQL_LAST_EXECUTION_OF_JOB,
        SQL_RUNNING_EXECUTIONS,
        SQL_FAIL_RUNNING_STEPS,
        SQL_FAIL_ORPHAN_STEPS,
        SQL_FAIL_ALL_ORPHAN_STEPS,
        /* batchd's own tables (schedule-store.c) */
        SQL_GET_LAST_FIRE,
        SQL_SET_LAST_FIRE,
        SQL_ADD_NONRUN,
        SQL_LIST_NONRUNS,
        SQL_LIST_NONRUNS_OF_JOB,
        _SQL_MAX,
} Sql;

/* The connection's prepared statement for id: prepared on first use, then reused. Reset it when done
 * (_cleanup_db_reset_). */
int repository_statement(Repository *r, Sql id, DbStatement **ret);
