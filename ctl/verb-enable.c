/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "batchctl.h"
#include "bus-util.h"
#include "log.h"
#include "verb-functions.h"

/* enable, disable, revert: SetJobEnabled for each JOB given. Quiet on success, like systemctl stop; every job
 * is tried, and any failure makes the exit status 1. */
static int set_enabled(int argc, char *argv[], const char *state, const char *what) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r, ret = 0;

        r = bus_connect(&bus);
        if (r < 0)
                return r;

        for (int i = 1; i < argc; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

                r = bus_call_manager(bus, "SetJobEnabled", &error, NULL, "ss", argv[i], state);
                if (r < 0)
                        ret = log_bus_error(r, &error, "Failed to %s job %s", what, argv[i]);
        }
        return ret;
}

int verb_enable(int argc, char *argv[], void *userdata) {
        return set_enabled(argc, argv, "enabled", "enable");
}

int verb_disable(int argc, char *argv[], void *userdata) {
        return set_enabled(argc, argv, "disabled", "disable");
}

int verb_revert(int argc, char *argv[], void *userdata) {
        return set_enabled(argc, argv, "", "revert");
}
