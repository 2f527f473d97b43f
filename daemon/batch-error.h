/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

/* One named error per Spring Batch exception. They travel in an sd_bus_error from the repository up to the
 * D-Bus caller unchanged, and the errno map below lets both sides convert between names and errno values. */
#define BATCH_ERROR_NO_SUCH_JOB                     "org.batchd.Batch1.Error.NoSuchJob"
#define BATCH_ERROR_NO_SUCH_JOB_EXECUTION           "org.batchd.Batch1.Error.NoSuchJobExecution"
#define BATCH_ERROR_NO_SUCH_JOB_INSTANCE            "org.batchd.Batch1.Error.NoSuchJobInstance"
#define BATCH_ERROR_JOB_INSTANCE_ALREADY_COMPLETE   "org.batchd.Batch1.Error.JobInstanceAlreadyComplete"
#define BATCH_ERROR_JOB_EXECUTION_ALREADY_RUNNING   "org.batchd.Batch1.Error.JobExecutionAlreadyRunning"
#define BATCH_ERROR_JOB_RESTART                     "org.batchd.Batch1.Error.JobRestart"
#define BATCH_ERROR_JOB_PARAMETERS_INVALID          "org.batchd.Batch1.Error.JobParametersInvalid"
#define BATCH_ERROR_JOB_EXECUTION_NOT_RUNNING       "org.batchd.Batch1.Error.JobExecutionNotRunning"
#define BATCH_ERROR_START_LIMIT_EXCEEDED            "org.batchd.Batch1.Error.StartLimitExceeded"
#define BATCH_ERROR_OPTIMISTIC_LOCKING_FAILURE      "org.batchd.Batch1.Error.OptimisticLockingFailure"
#define BATCH_ERROR_DATABASE                        "org.batchd.Batch1.Error.Database"
/* Not Spring's: the PostgreSQL server cannot be reached or did not answer in time; batchd reconnects by itself
 * (docs/reliability.md). */
#define BATCH_ERROR_DATABASE_UNAVAILABLE            "org.batchd.Batch1.Error.DatabaseUnavailable"
/* Not Spring's: another process held the database's write lock for longer than batchd waits (docs/reliability.md). */
#define BATCH_ERROR_DATABASE_BUSY                   "org.batchd.Batch1.Error.DatabaseBusy"
/* Not Spring's: the database file was deleted or replaced under the running batchd; launches are refused until it
 * is restarted or reloaded. */
#define BATCH_ERROR_DATABASE_REPLACED               "org.batchd.Batch1.Error.DatabaseReplaced"
#define BATCH_ERROR_CONFIG_INVALID                  "org.batchd.Batch1.Error.ConfigInvalid"

extern const sd_bus_error_map batch_error_map[];

/* Registers batch_error_map with sd-bus; idempotent. */
int batch_error_register(void);

/* The part after the last dot, for messages like "JobRestart: ...". */
const char *batch_error_short_name(const char *name);
