/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>

#include "batchctl.h"
#include "bus-util.h"
#include "log.h"
#include "output.h"
#include "verb-functions.h"

/* batchctl cat JOB...: what batchd loaded for each job, as systemctl cat shows a unit's files. batchd answers
 * from its loaded configuration (Manager.GetJobDefinition): the file may have changed since, only a reload
 * makes batchd read it again. */
int verb_cat(int argc, char *argv[], void *userdata) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(json_object_putp) json_object *array = NULL;
        bool printed = false;
        int r, ret = 0;

        r = bus_connect(&bus);
        if (r < 0)
                return r;
        if (arg_json != JSON_OFF) {
                array = json_object_new_array();
                if (!array)
                        return log_oom();
        }

        for (int i = 1; i < argc; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                const char *file, *text;
                uint32_t line;

                r = bus_call_manager(bus, "GetJobDefinition", &error, &reply, "s", argv[i]);
                if (r < 0) {
                        /* As systemctl cat: the others are still shown, the exit status says one failed. */
                        ret = log_bus_error(r, &error, "Failed to show the definition of job %s", argv[i]);
                        continue;
                }
                r = sd_bus_message_read(reply, "sus", &file, &line, &text);
                if (r < 0)
                        return log_error_errno(r, "Failed to parse the reply of GetJobDefinition: %m");

                if (array) {
                        json_object *o = json_object_new_object();

                        if (!o || json_object_array_add(array, o) < 0) {
                                json_object_put(o);
                                return log_oom();
                        }
                        if (json_add_string(o, "name", argv[i]) < 0 || json_add_string(o, "file", file) < 0 ||
                            json_add_uint(o, "line", line) < 0 || json_add_string(o, "definition", text) < 0)
                                return log_oom();
                        continue;
                }

                if (!printed)
                        pager_open();
                else
                        putchar('\n');
                printed = true;
                printf("%s# %s:%" PRIu32 "%s\n%s", ansi_blue(), file, line, ansi_normal(), text);
        }

        if (array && json_object_array_length(array) > 0) {
                r = json_print(array, stdout);
                if (r < 0)
                        return log_error_errno(r, "Failed to write output: %m");
        }
        return ret;
}
