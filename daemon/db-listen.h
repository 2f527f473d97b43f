/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-event.h>

#include "macro.h"

/* A PostgreSQL LISTEN on its own connection, driven entirely by the event loop: connecting, LISTEN and every
 * notification are non-blocking libpq calls from an io source; a lost or refused connection is closed and tried
 * again from a timer (1 s, doubling up to 30 s). Notifications sent while it is disconnected are lost: callers
 * keep a poll as the fallback. */

typedef struct DbListen DbListen;

/* payload is the notification's payload (never NULL). */
typedef void (*DbListenCallback)(DbListen *l, const char *payload, void *userdata);

/* uri: a libpq connection URI (it may carry a password; never logged). channel: a plain lowercase identifier.
 * Returns at once; the first connection is made from the event loop. */
int db_listen_new(sd_event *event, const char *uri, const char *channel, DbListenCallback callback, void *userdata,
                  DbListen **ret);
DbListen *db_listen_free(DbListen *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(DbListen *, db_listen_free);
