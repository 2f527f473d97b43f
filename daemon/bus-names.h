/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The D-Bus names of batchd, shared by the daemon and batchctl. docs/dbus-api.md describes the API. */
#define BATCH_BUS_NAME "org.batchd.Batch1"
#define BATCH_MANAGER_PATH "/org/batchd/Batch1"
#define BATCH_MANAGER_INTERFACE "org.batchd.Batch1.Manager"
#define BATCH_JOB_PATH_PREFIX "/org/batchd/Batch1/job"
#define BATCH_JOB_INTERFACE "org.batchd.Batch1.Job"
#define BATCH_EXECUTION_PATH_PREFIX "/org/batchd/Batch1/execution"
#define BATCH_EXECUTION_INTERFACE "org.batchd.Batch1.Execution"
