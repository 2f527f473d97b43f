/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>

#include "batchctl.h"
#include "bus-util.h"
#include "list-common.h"
#include "log.h"
#include "output.h"
#include "verb-functions.h"

/* One page of ListNodes: the nodes of a cluster are few, REPOSITORY_PAGE_MAX of them is more than any has. */
typedef struct NodeRow {
        const char *name, *state, *boot_id, *jobs_hash;
        uint64_t heartbeat, running;
        int drift;
} NodeRow;

static json_object *node_to_json(const NodeRow *n) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();

        if (!o || json_add_string(o, "name", n->name) < 0 || json_add_string(o, "state", n->state) < 0 ||
            json_add_string_or_null(o, "boot_id", n->boot_id) < 0 ||
            json_add_usec(o, "heartbeat_usec", n->heartbeat) < 0 ||
            json_add_uint(o, "running_executions", n->running) < 0 ||
            json_add_string_or_null(o, "jobs_hash", n->jobs_hash) < 0 || json_add_bool(o, "drift", n->drift) < 0)
                return NULL;
        return TAKE_PTR(o);
}

static const char *state_color(const char *state) {
        if (streq(state, "ACTIVE"))
                return ansi_green();
        if (streq(state, "DEAD"))
                return ansi_red();
        return NULL;
}

int verb_nodes(int argc, char *argv[], void *userdata) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(json_object_putp) json_object *a = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        usec_t now = now_usec(CLOCK_REALTIME);
        int r;

        r = bus_connect(&bus);
        if (r < 0)
                return r;
        r = bus_call_manager(bus, "ListNodes", &error, &reply, "uu", UINT32_C(0), UINT32_C(0));
        if (r < 0)
                return log_bus_error(r, &error, "Failed to list the cluster's nodes");

        if (arg_json != JSON_OFF)
                a = json_object_new_array();
        else {
                t = table_new("NODE", "STATE", "LAST HEARTBEAT", "RUNNING", "JOBS HASH", "DRIFT", "BOOT ID", NULL);
                if (t) {
                        table_set_align_right(t, 3);
                        table_set_ellipsize(t, 6);
                }
        }
        if (!a && !t)
                return log_oom();

        r = sd_bus_message_enter_container(reply, 'a', "(sssttsb)");
        while (r >= 0) {
                NodeRow n = {};
                char ts[FORMAT_TIMESTAMP_MAX];

                r = sd_bus_message_read(reply, "(sssttsb)", &n.name, &n.state, &n.boot_id, &n.heartbeat, &n.running,
                                        &n.jobs_hash, &n.drift);
                if (r <= 0)
                        break;
                if (a) {
                        json_object *o = node_to_json(&n);

                        if (!o || json_object_array_add(a, o) < 0) {
                                json_object_put(o);
                                return log_oom();
                        }
                        continue;
                }
                r = table_add(t, n.name, ansi_highlight());
                if (r >= 0)
                        r = table_add(t, n.state, state_color(n.state));
                if (r >= 0)
                        r = table_add(t, format_timestamp_relative(ts, n.heartbeat, now), NULL);
                if (r >= 0)
                        r = table_addf(t, n.running > 0 ? ansi_blue() : NULL, "%" PRIu64, n.running);
                /* The first 12 hex digits tell two nodes' job sets apart; --json has the whole hash. */
                if (r >= 0)
                        r = isempty(n.jobs_hash) ? table_add(t, NULL, NULL) :
                                                   table_addf(t, NULL, "%.12s", n.jobs_hash);
                if (r >= 0)
                        r = table_add(t, n.drift ? "drift" : "", n.drift ? ansi_yellow() : NULL);
                if (r >= 0)
                        r = table_add(t, isempty(n.boot_id) ? NULL : n.boot_id, NULL);
                if (r < 0)
                        return log_oom();
        }
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply of ListNodes: %m");

        pager_open();
        if (a) {
                r = json_print(a, stdout);
                if (r < 0)
                        return log_error_errno(r, "Failed to write output: %m");
                return 0;
        }
        if (table_get_rows(t) == 0) {
                if (arg_legend)
                        printf("No nodes: batchd is not part of a cluster (see docs/cluster.md).\n");
                return 0;
        }
        r = table_print(t, stdout);
        if (r < 0)
                return log_error_errno(r, "Failed to write output: %m");
        print_footer(table_get_rows(t), "node", "nodes");
        return 0;
}
