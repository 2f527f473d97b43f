/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "macro.h"

/* The credentials of a method call's sender as the bus daemon vouches for them (GetConnectionCredentials:
 * UnixUserID and UnixGroupIDs, which dbus-daemon took from the kernel when the caller connected), never from
 * /proc after the fact. sd-bus 252 does not read UnixGroupIDs, hence the explicit call.
 *
 * Asking the bus is asynchronous, so a flood of calls from one user never holds up the loop for another: a
 * handler that needs the credentials of a sender not yet known gets 0, and sd-bus's current handler is
 * called again with the same message (rewound) once the answer is in; concurrent calls of one sender share
 * one question. Answers are kept per unique name, which the bus never hands out twice, until the bus
 * announces that the name is gone (NameOwnerChanged), and at most BUS_CREDS_CACHE_MAX of them. */

#define BUS_CREDS_CACHE_MAX 256U

typedef struct BusCreds {
        uid_t uid;
        gid_t *gids;
        size_t n_gids;
} BusCreds;

typedef struct BusCredsCache BusCredsCache;

/* Subscribes to NameOwnerChanged on bus. */
int bus_creds_cache_new(sd_bus *bus, BusCredsCache **ret);
/* Pending questions are cancelled; their calls get no reply from here. */
BusCredsCache *bus_creds_cache_free(BusCredsCache *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(BusCredsCache *, bus_creds_cache_free);

/* From inside a method handler: 1 and the sender's credentials (valid until the handler returns), 0 when
 * the bus was asked (the handler should return 1 without replying; it is called again with the answer), or
 * a negative errno. The handler's userdata must live as long as the cache (batchd's is the Manager), and a
 * handler called again must look its object up from the message's path, as it is not sd-bus that calls. */
int bus_creds_get(BusCredsCache *c, sd_bus_message *msg, const BusCreds **ret);
