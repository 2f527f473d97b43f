/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdio.h>

#include "batchctl.h"
#include "bus-util.h"
#include "log.h"
#include "verb-functions.h"

/* The exposition text as batchd renders it (Manager.GetMetrics): the same text metrics_textfile holds, so what
 * an operator reads here is what Prometheus scrapes. No --json: the text format is the machine format. */
int verb_metrics(int argc, char *argv[], void *userdata) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *text = NULL;
        int r;

        r = bus_connect(&bus);
        if (r < 0)
                return r;

        r = bus_call_manager(bus, "GetMetrics", &error, &reply, NULL);
        if (r < 0)
                return log_bus_error(r, &error, "Failed to get the metrics");
        r = sd_bus_message_read(reply, "s", &text);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply of GetMetrics: %m");

        fputs(text, stdout);
        if (fflush(stdout) != 0)
                return log_error_errno(EIO, "Failed to write the metrics.");
        return 0;
}
