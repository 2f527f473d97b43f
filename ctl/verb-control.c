/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>

#include "batchctl.h"
#include "bus-util.h"
#include "log.h"
#include "verb-functions.h"

/* Stop and Abandon: one id in, nothing out. Quiet on success, like systemctl stop. */
static int execution_call(const char *method, const char *verb, const char *id_text) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        uint64_t id;
        int r;

        r = parse_execution_id(id_text, &id);
        if (r < 0)
                return r;

        r = bus_connect(&bus);
        if (r < 0)
                return r;

        r = bus_call_manager(bus, method, &error, NULL, "t", id);
        if (r < 0)
                return log_bus_error(r, &error, "Failed to %s execution %" PRIu64, verb, id);
        return 0;
}

int verb_stop(int argc, char *argv[], void *userdata) {
        return execution_call("Stop", "stop", argv[1]);
}

int verb_abandon(int argc, char *argv[], void *userdata) {
        return execution_call("Abandon", "abandon", argv[1]);
}

int verb_reload(int argc, char *argv[], void *userdata) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = bus_connect(&bus);
        if (r < 0)
                return r;

        r = bus_call_manager(bus, "Reload", &error, NULL, NULL);
        if (r < 0)
                return log_bus_error(r, &error, "Failed to reload batchd");
        return 0;
}
