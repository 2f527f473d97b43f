/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>

#include "batch-error.h"
#include "batchctl.h"
#include "bus-names.h"
#include "bus-util.h"
#include "log.h"
#include "output.h"
#include "records.h"
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

/* ---- show JOB, show -p ---- */

static bool property_selected(const char *name) {
        if (!arg_properties)
                return true;
        for (char **p = arg_properties; *p; p++)
                if (streq(*p, name))
                        return true;
        return false;
}

/* A "t" property: timestamps (the next elapse, the last fire, the Execution's *Timestamp) as systemctl show prints them,
 * time spans (*USec) as "1min 30s" or "infinity", anything else (ids) as a number. */
static void print_uint64_property(const char *name, uint64_t v) {
        size_t l = strlen(name);

        if (strstr(name, "Timestamp") || streq(name, "NextElapseUSec") || streq(name, "LastFireUSec")) {
                char buf[FORMAT_TIMESTAMP_MAX];

                printf("%s=%s\n", name, strempty(format_timestamp(buf, v)));
        } else if (l > 4 && streq(name + l - 4, "USec")) {
                char buf[TIMESPAN_MAX];

                printf("%s=%s\n", name, timespan_format(v, buf));
        } else
                printf("%s=%" PRIu64 "\n", name, v);
}

/* Reads one property value (the variant's contents) and prints it as Key=value, or adds it to o. */
static int show_property(sd_bus_message *reply, const char *name, const char *contents, json_object *o) {
        int r;

        if (streq(contents, "s") || streq(contents, "o")) {
                const char *s;

                r = sd_bus_message_read_basic(reply, contents[0], &s);
                if (r < 0)
                        return r;
                if (o)
                        return json_add_string(o, name, s);
                printf("%s=%s\n", name, s);
                return 0;
        }
        if (streq(contents, "b")) {
                int b;

                r = sd_bus_message_read_basic(reply, 'b', &b);
                if (r < 0)
                        return r;
                if (o)
                        return json_add_bool(o, name, b);
                printf("%s=%s\n", name, b ? "yes" : "no");
                return 0;
        }
        if (streq(contents, "u") || streq(contents, "t")) {
                uint64_t v;

                if (contents[0] == 'u') {
                        uint32_t u;

                        r = sd_bus_message_read_basic(reply, 'u', &u);
                        v = u;
                } else
                        r = sd_bus_message_read_basic(reply, 't', &v);
                if (r < 0)
                        return r;
                if (o)
                        return json_add_uint(o, name, v);
                print_uint64_property(name, v);
                return 0;
        }
        if (streq(contents, "as")) {
                _cleanup_strv_free_ char **l = NULL;

                r = sd_bus_message_read_strv(reply, &l);
                if (r < 0)
                        return r;
                if (o) {
                        json_object *a = json_object_new_array();

                        if (!a || json_object_object_add(o, name, a) < 0) {
                                json_object_put(a);
                                return -ENOMEM;
                        }
                        for (char **s = l; s && *s; s++)
                                if (json_object_array_add(a, json_object_new_string(*s)) < 0)
                                        return -ENOMEM;
                        return 0;
                }
                printf("%s=", name);
                for (char **s = l; s && *s; s++)
                        printf("%s%s", s == l ? "" : " ", *s);
                putchar('\n');
                return 0;
        }
        if (streq(contents, "a(sssb)")) {
                ParameterInfo *p = NULL;
                size_t n = 0;

                r = bus_read_parameter_infos(reply, &p, &n);
                if (r < 0)
                        return r;
                if (o) {
                        json_object *a = json_object_new_array();

                        if (!a || json_object_object_add(o, name, a) < 0) {
                                json_object_put(a);
                                parameter_info_array_free(p, n);
                                return -ENOMEM;
                        }
                        for (size_t i = 0; i < n && r >= 0; i++)
                                r = json_object_array_add(a, parameter_info_to_json(p + i)) < 0 ? -ENOMEM : 0;
                        parameter_info_array_free(p, n);
                        return r;
                }
                /* In the syntax "start" takes, as "show EXECUTION_ID" prints parameters. */
                printf("%s=", name);
                for (size_t i = 0; i < n && r >= 0; i++) {
                        _cleanup_free_ char *a = NULL;

                        r = parameter_info_to_argument(p + i, &a);
                        if (r >= 0)
                                printf("%s%s", i == 0 ? "" : " ", a);
                }
                putchar('\n');
                parameter_info_array_free(p, n);
                return r;
        }
        /* A type this batchctl does not know yet (a newer batchd): skipped, as systemctl skips what it cannot
         * show. */
        return sd_bus_message_skip(reply, contents);
}

/* Properties.GetAll on object path's interface, printed as Key=value lines in the order batchd lists them (or
 * one JSON object), only those named with -p if any. what names the object in messages. */
static int show_properties(sd_bus *bus, const char *path, const char *interface, const char *what,
                           const sd_bus_error *not_found) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        const char *name, *contents;
        int r;

        r = sd_bus_call_method(bus, BATCH_BUS_NAME, path, "org.freedesktop.DBus.Properties", "GetAll", &error,
                               &reply, "s", interface);
        if (r < 0) {
                /* An unknown name has no object: say so with the error the manager's methods give. */
                if (sd_bus_error_has_names(&error, SD_BUS_ERROR_UNKNOWN_OBJECT, SD_BUS_ERROR_UNKNOWN_INTERFACE))
                        return log_bus_error(r, not_found, "Failed to show %s", what);
                return log_bus_error(r, &error, "Failed to show %s", what);
        }

        if (arg_json != JSON_OFF) {
                o = json_object_new_object();
                if (!o)
                        return log_oom();
        } else
                pager_open();

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r > 0) {
                r = sd_bus_message_enter_container(reply, 'e', "sv");
                if (r <= 0)
                        break;
                r = sd_bus_message_read(reply, "s", &name);
                if (r >= 0)
                        r = sd_bus_message_peek_type(reply, NULL, &contents);
                if (r < 0)
                        break;
                if (!property_selected(name))
                        r = sd_bus_message_skip(reply, "v");
                else {
                        r = sd_bus_message_enter_container(reply, 'v', contents);
                        if (r >= 0)
                                r = show_property(reply, name, contents, o);
                        if (r >= 0)
                                r = sd_bus_message_exit_container(reply);
                }
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r >= 0)
                        r = 1;
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the properties of %s: %m", what);

        if (o) {
                r = json_print(o, stdout);
                if (r < 0)
                        return log_error_errno(r, "Failed to write output: %m");
        }
        return 0;
}

int show_job(const char *name) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error not_found = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL, *what = NULL;
        int r;

        r = sd_bus_path_encode(BATCH_JOB_PATH_PREFIX, name, &path);
        if (r < 0 || asprintf(&what, "job %s", name) < 0)
                return log_oom();
        /* The words of the manager's NoSuchJob, which the object tree cannot give. */
        (void) sd_bus_error_setf(&not_found, BATCH_ERROR_NO_SUCH_JOB, "No job configuration with the name [%s] was "
                                 "registered", name);
        r = bus_connect(&bus);
        if (r < 0)
                return r;
        return show_properties(bus, path, BATCH_JOB_INTERFACE, what, &not_found);
}

int show_execution_properties(uint64_t id) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error not_found = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL, *what = NULL;
        int r;

        r = execution_object_path(id, &path);
        if (r < 0 || asprintf(&what, "execution %" PRIu64, id) < 0)
                return log_oom();
        (void) sd_bus_error_setf(&not_found, BATCH_ERROR_NO_SUCH_JOB_EXECUTION, "No JobExecution found for id: [%" PRIu64 "]",
                                 id);
        r = bus_connect(&bus);
        if (r < 0)
                return r;
        return show_properties(bus, path, BATCH_EXECUTION_INTERFACE, what, &not_found);
}
