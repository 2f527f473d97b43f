/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <string.h>

#include "batch-error.h"

const sd_bus_error_map batch_error_map[] = {
        SD_BUS_ERROR_MAP(BATCH_ERROR_NO_SUCH_JOB,                   ENOENT),
        SD_BUS_ERROR_MAP(BATCH_ERROR_NO_SUCH_JOB_EXECUTION,         ENXIO),
        SD_BUS_ERROR_MAP(BATCH_ERROR_NO_SUCH_JOB_INSTANCE,          ENODATA),
        SD_BUS_ERROR_MAP(BATCH_ERROR_JOB_INSTANCE_ALREADY_COMPLETE, EALREADY),
        SD_BUS_ERROR_MAP(BATCH_ERROR_JOB_EXECUTION_ALREADY_RUNNING, EBUSY),
        SD_BUS_ERROR_MAP(BATCH_ERROR_JOB_RESTART,                   ENOTRECOVERABLE),
        SD_BUS_ERROR_MAP(BATCH_ERROR_JOB_PARAMETERS_INVALID,        EINVAL),
        SD_BUS_ERROR_MAP(BATCH_ERROR_JOB_EXECUTION_NOT_RUNNING,     ESRCH),
        SD_BUS_ERROR_MAP(BATCH_ERROR_START_LIMIT_EXCEEDED,          EDQUOT),
        SD_BUS_ERROR_MAP(BATCH_ERROR_OPTIMISTIC_LOCKING_FAILURE,    ESTALE),
        SD_BUS_ERROR_MAP(BATCH_ERROR_DATABASE,                      EIO),
        SD_BUS_ERROR_MAP(BATCH_ERROR_DATABASE_BUSY,                 EAGAIN),
        SD_BUS_ERROR_MAP(BATCH_ERROR_DATABASE_UNAVAILABLE,          ECONNRESET),
        SD_BUS_ERROR_MAP(BATCH_ERROR_DATABASE_REPLACED,             EIDRM),
        SD_BUS_ERROR_MAP(BATCH_ERROR_CONFIG_INVALID,                EBADMSG),
        SD_BUS_ERROR_MAP_END,
};

int batch_error_register(void) {
        return sd_bus_error_add_map(batch_error_map);
}

const char *batch_error_short_name(const char *name) {
        const char *dot;

        if (!name)
                return "";
        dot = strrchr(name, '.');
        return dot ? dot + 1 : name;
}
