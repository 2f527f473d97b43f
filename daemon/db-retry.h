/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <errno.h>
#include <stdbool.h>

#include "macro.h"
#include "time-util.h"

/* How the daemon waits for the database without waiting in the loop (docs/reliability.md): SQLite's own busy
 * handler waits at most DB_BUSY_TIMEOUT_MSEC; a write that still finds the lock taken is tried again from an
 * sd-event timer, after DB_RETRY_FIRST_USEC, doubling up to DB_RETRY_MAX_USEC. */
#define DB_BUSY_TIMEOUT_MSEC 5
#define DB_RETRY_FIRST_USEC (10 * USEC_PER_MSEC)
#define DB_RETRY_MAX_USEC (1 * USEC_PER_SEC)
/* How long a D-Bus call or a scheduled fire waits for the lock before it is refused (DatabaseBusy) or becomes a
 * non-run. Records of executions that already run are retried without limit: they must be written. */
#define DB_WAIT_MAX_USEC (30 * USEC_PER_SEC)
/* PostgreSQL: the longest one call waits for the server's answer before the connection is given up
 * (db_set_response_deadline()). It bounds what a hung server or network can cost the loop; a server that is
 * down or restarting costs nothing, calls fail at once and the connection comes back by itself. */
#define DB_RESPONSE_DEADLINE_MSEC 2000

static inline usec_t db_retry_next(usec_t previous) {
        return previous == 0 ? DB_RETRY_FIRST_USEC : MIN(previous * 2, DB_RETRY_MAX_USEC);
}

/* The PostgreSQL server cannot be reached right now, or did not answer within the response deadline; the
 * connection is re-established by later calls, without waiting in them (db.h). */
static inline bool db_error_is_unavailable(int error) {
        return error == -ECONNRESET || error == -ETIMEDOUT;
}

/* Not now, try again later from a timer: another connection holds the lock, a serialization conflict (db.h maps
 * both to -EAGAIN), or the server is unavailable. Waits end as they do for a lock: a step's commit waits as long
 * as it takes, a D-Bus call or a fire DB_WAIT_MAX_USEC. */
static inline bool db_error_is_busy(int error) {
        return error == -EAGAIN || db_error_is_unavailable(error);
}

/* Failures that may pass: the lock, a full disk (space is freed), an I/O error, memory. A record that has to be
 * written (the end of a step or job) is retried on these; anything else (the file was replaced, a concurrent
 * writer changed the record, a read-only file) will not get better by waiting. */
static inline bool db_error_is_transient(int error) {
        return db_error_is_busy(error) || error == -ENOSPC || error == -EIO || error == -ENOMEM;
}
