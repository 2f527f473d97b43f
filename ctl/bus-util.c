/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <stdarg.h>

#include "batch-error.h"
#include "batchctl.h"
#include "bus-names.h"
#include "bus-util.h"
#include "log.h"
#include "output.h"

int bus_connect(sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = batch_error_register();
        if (r < 0)
                return log_error_errno(r, "Failed to register batchd's D-Bus errors: %m");

        r = arg_user ? sd_bus_open_user(&bus) : sd_bus_open_system(&bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the %s bus: %m", arg_user ? "user" : "system");
        (void) sd_bus_set_description(bus, "batchctl");

        *ret = TAKE_PTR(bus);
        return 0;
}

int log_bus_error(int r, const sd_bus_error *error, const char *format, ...) {
        _cleanup_free_ char *what = NULL, *message = NULL;
        va_list ap;

        va_start(ap, format);
        if (vasprintf(&what, format, ap) < 0)
                what = NULL;
        va_end(ap);

        if (error && sd_bus_error_is_set(error)) {
                /* One line, whatever the daemon put in: a reload error lists every problem on a line of its
                 * own. */
                message = one_line(error->message);
                return log_error_errno(r, "%s: %s: %s", strna(what), batch_error_short_name(error->name),
                                       message ? message : strempty(error->message));
        }

        return log_error_errno(r, "%s: %s", strna(what), strerror(r < 0 ? -r : r));
}

int bus_call_manager(sd_bus *bus, const char *method, sd_bus_error *error, sd_bus_message **ret_reply,
                     const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, BATCH_BUS_NAME, BATCH_MANAGER_PATH, BATCH_MANAGER_INTERFACE,
                                           method);
        if (r < 0)
                return r;

        if (!isempty(types)) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
                if (r < 0)
                        return r;
        }

        return sd_bus_call(bus, m, 0, error, ret_reply);
}

int parse_execution_id(const char *s, uint64_t *ret) {
        char *end = NULL;
        uintmax_t v;

        if (isempty(s) || !strchr("0123456789", s[0]))
                goto invalid;
        errno = 0;
        v = strtoumax(s, &end, 10);
        if (errno != 0 || *end != '\0' || v == 0 || v > INT64_MAX)
                goto invalid;

        *ret = (uint64_t) v;
        return 0;

invalid:
        return log_error_errno(EINVAL, "Invalid execution id '%s': expected a positive number.", s);
}

int execution_object_path(uint64_t id, char **ret) {
        return asprintf(ret, BATCH_EXECUTION_PATH_PREFIX "/%" PRIu64, id) < 0 ? -ENOMEM : 0;
}
