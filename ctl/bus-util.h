/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "macro.h"

/* Talking to batchd: the connection, method calls on the manager and the one-line error messages. */

/* The session bus with --user, else the system bus; $DBUS_SESSION_BUS_ADDRESS and $DBUS_SYSTEM_BUS_ADDRESS
 * are honoured by sd-bus. Registers batchd's error map. Logs on failure. */
int bus_connect(sd_bus **ret);

/* Logs "<what>: <ShortName>: <message>" for a D-Bus error, or "<what>: <strerror>" for a local failure, as
 * one line, and returns r (negative). what is printf-formatted. */
int log_bus_error(int r, const sd_bus_error *error, const char *format, ...) _printf_(3, 4);

/* sd_bus_call_method() on batchd's manager object. */
int bus_call_manager(sd_bus *bus, const char *method, sd_bus_error *error, sd_bus_message **ret_reply,
                     const char *types, ...);

/* A positive execution id as batchd prints it. Logs on failure. */
int parse_execution_id(const char *s, uint64_t *ret);

/* "/org/batchd/Batch1/execution/42" */
int execution_object_path(uint64_t id, char **ret);
