/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>

#include "batchctl.h"
#include "bus-util.h"
#include "log.h"
#include "output.h"
#include "verb-functions.h"

/* batchctl purge [JOB] --older-than AGE | --keep N [--dry-run]: Manager.Purge, and what it removed (or, with
 * --dry-run, would remove). */
int verb_purge(int argc, char *argv[], void *userdata) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *job = argc > 1 ? argv[1] : "";
        uint64_t executions, instances, non_runs;
        int r;

        if (arg_older_than == 0 && arg_keep == 0)
                return log_error_errno(EINVAL, "purge needs --older-than AGE, --keep N, or both.");

        r = bus_connect(&bus);
        if (r < 0)
                return r;
        r = bus_call_manager(bus, "Purge", &error, &reply, "stub", job, (uint64_t) arg_older_than, arg_keep,
                             (int) arg_dry_run);
        if (r < 0)
                return log_bus_error(r, &error, "Failed to purge %s%s", *job ? "job " : "the history",
                                     job);
        r = sd_bus_message_read(reply, "ttt", &executions, &instances, &non_runs);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply of Purge: %m");

        if (arg_json != JSON_OFF) {
                _cleanup_(json_object_putp) json_object *o = json_object_new_object();

                if (!o ||
                    json_add_uint(o, "executions", executions) < 0 ||
                    json_add_uint(o, "instances", instances) < 0 ||
                    json_add_uint(o, "non_runs", non_runs) < 0 ||
                    json_add_bool(o, "dry_run", arg_dry_run) < 0)
                        return log_oom();
                r = json_print(o, stdout);
                if (r < 0)
                        return log_error_errno(r, "Failed to write output: %m");
                return 0;
        }
        printf("%s %" PRIu64 " execution%s (%" PRIu64 " job instance%s) and %" PRIu64 " non-run%s%s%s.\n",
               arg_dry_run ? "Would remove" : "Removed",
               executions, executions == 1 ? "" : "s", instances, instances == 1 ? "" : "s",
               non_runs, non_runs == 1 ? "" : "s", *job ? " of job " : "", job);
        return 0;
}
