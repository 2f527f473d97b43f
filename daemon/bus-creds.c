/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "bus-creds.h"
#include "log.h"

typedef struct CacheEntry {
        char *name;
        BusCreds creds;
} CacheEntry;

/* A method call waiting for its sender's credentials, and the handler that sd-bus was running for it. */
typedef struct Waiter {
        sd_bus_message *request;
        sd_bus_message_handler_t handler;
        void *userdata;
} Waiter;

/* One outstanding GetConnectionCredentials call, for one sender. */
typedef struct Query {
        BusCredsCache *cache;
        struct Query *prev, *next;
        char *name;
        sd_bus_slot *slot;
        Waiter *waiters;
        size_t n_waiters;
} Query;

struct BusCredsCache {
        sd_bus *bus;
        sd_bus_slot *match_slot;
        CacheEntry entries[BUS_CREDS_CACHE_MAX];
        size_t n_entries;
        size_t next_victim;
        Query *queries;
};

static void bus_creds_done(BusCreds *creds) {
        creds->gids = mfree(creds->gids);
        creds->n_gids = 0;
}

static CacheEntry *cache_find(BusCredsCache *c, const char *name) {
        for (size_t i = 0; i < c->n_entries; i++)
                if (streq(c->entries[i].name, name))
                        return c->entries + i;
        return NULL;
}

/* Takes the credentials' contents. When full, the oldest entry goes: the cache only saves round trips. */
static int cache_put(BusCredsCache *c, const char *name, BusCreds *creds) {
        CacheEntry *e;
        char *n;

        n = strdup(name);
        if (!n) {
                bus_creds_done(creds);
                return -ENOMEM;
        }
        e = cache_find(c, name);
        if (!e) {
                if (c->n_entries < BUS_CREDS_CACHE_MAX)
                        e = c->entries + c->n_entries++;
                else {
                        e = c->entries + c->next_victim;
                        c->next_victim = (c->next_victim + 1) % BUS_CREDS_CACHE_MAX;
                }
        }
        free(e->name);
        bus_creds_done(&e->creds);
        *e = (CacheEntry) { .name = n, .creds = *creds };
        *creds = (BusCreds) {};
        return 0;
}

static void cache_remove(BusCredsCache *c, const char *name) {
        CacheEntry *e = cache_find(c, name);

        if (!e)
                return;
        free(e->name);
        bus_creds_done(&e->creds);
        *e = c->entries[--c->n_entries];
        c->entries[c->n_entries] = (CacheEntry) {};
        if (c->next_victim >= c->n_entries)
                c->next_victim = 0;
}

static int creds_from_reply(sd_bus_message *reply, BusCreds *ret) {
        _cleanup_free_ gid_t *gids = NULL;
        bool have_uid = false;
        size_t n = 0;
        uid_t uid = 0;
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *key;

                r = sd_bus_message_read(reply, "s", &key);
                if (r < 0)
                        return r;
                if (streq(key, "UnixUserID")) {
                        uint32_t u;

                        r = sd_bus_message_read(reply, "v", "u", &u);
                        if (r < 0)
                                return r;
                        uid = u;
                        have_uid = true;
                } else if (streq(key, "UnixGroupIDs")) {
                        const void *a;
                        size_t size;

                        r = sd_bus_message_enter_container(reply, 'v', "au");
                        if (r >= 0)
                                r = sd_bus_message_read_array(reply, 'u', &a, &size);
                        if (r >= 0)
                                r = sd_bus_message_exit_container(reply);
                        if (r < 0)
                                return r;
                        free(gids);
                        n = size / sizeof(uint32_t);
                        gids = n > 0 ? malloc(n * sizeof(gid_t)) : NULL;
                        if (n > 0 && !gids)
                                return -ENOMEM;
                        for (size_t i = 0; i < n; i++)
                                gids[i] = ((const uint32_t *) a)[i];
                } else {
                        r = sd_bus_message_skip(reply, "v");
                        if (r < 0)
                                return r;
                }
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        if (!have_uid)
                return -ENODATA;

        *ret = (BusCreds) { .uid = uid, .gids = TAKE_PTR(gids), .n_gids = n };
        return 0;
}

static void query_unlink(Query *q) {
        if (!q->cache)
                return;
        if (q->prev)
                q->prev->next = q->next;
        else
                q->cache->queries = q->next;
        if (q->next)
                q->next->prev = q->prev;
        q->prev = q->next = NULL;
        q->cache = NULL;
}

static Query *query_free(Query *q) {
        if (!q)
                return NULL;
        query_unlink(q);
        sd_bus_slot_unref(q->slot);
        for (size_t i = 0; i < q->n_waiters; i++)
                sd_bus_message_unref(q->waiters[i].request);
        free(q->waiters);
        free(q->name);
        return mfree(q);
}

static int on_credentials(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Query *q = userdata;
        BusCredsCache *c = q->cache;
        BusCreds creds = {};
        int r;

        q->slot = sd_bus_slot_unref(q->slot);
        if (sd_bus_message_is_method_error(reply, NULL))
                r = -(sd_bus_message_get_errno(reply) ?: EIO);
        else {
                r = creds_from_reply(reply, &creds);
                if (r >= 0)
                        r = cache_put(c, q->name, &creds);
        }
        /* Off the list first: the handlers may ask about this sender again, and must find the cache. */
        query_unlink(q);

        for (size_t i = 0; i < q->n_waiters; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                Waiter *w = q->waiters + i;
                int k;

                if (r < 0) {
                        (void) sd_bus_reply_method_errnof(w->request, r, "Failed to get the caller's credentials: %m");
                        continue;
                }
                k = sd_bus_message_rewind(w->request, true);
                if (k >= 0)
                        k = w->handler(w->request, w->userdata, &error);
                if (k < 0 || sd_bus_error_is_set(&error))
                        (void) sd_bus_reply_method_errno(w->request, k, &error);
        }

        query_free(q);
        return 0;
}

static int on_name_owner_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        BusCredsCache *c = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(msg, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        /* A unique name that goes away never comes back. */
        if (name[0] == ':' && isempty(new_owner))
                cache_remove(c, name);
        return 0;
}

int bus_creds_cache_new(sd_bus *bus, BusCredsCache **ret) {
        _cleanup_(bus_creds_cache_freep) BusCredsCache *c = NULL;
        int r;

        assert(bus);
        assert(ret);

        c = calloc(1, sizeof(BusCredsCache));
        if (!c)
                return -ENOMEM;
        c->bus = sd_bus_ref(bus);
        r = sd_bus_match_signal_async(bus, &c->match_slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                      "org.freedesktop.DBus", "NameOwnerChanged", on_name_owner_changed, NULL, c);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(c);
        return 0;
}

BusCredsCache *bus_creds_cache_free(BusCredsCache *c) {
        if (!c)
                return NULL;
        while (c->queries)
                query_free(c->queries);
        for (size_t i = 0; i < c->n_entries; i++) {
                free(c->entries[i].name);
                bus_creds_done(&c->entries[i].creds);
        }
        sd_bus_slot_unref(c->match_slot);
        sd_bus_unref(c->bus);
        return mfree(c);
}

int bus_creds_get(BusCredsCache *c, sd_bus_message *msg, const BusCreds **ret) {
        sd_bus *bus = sd_bus_message_get_bus(msg);
        const char *sender = sd_bus_message_get_sender(msg);
        sd_bus_message_handler_t handler;
        CacheEntry *e;
        Waiter *w;
        Query *q;
        int r;

        assert(c);
        assert(msg);
        assert(ret);

        if (!sender)
                return -ENXIO;
        e = cache_find(c, sender);
        if (e) {
                *ret = &e->creds;
                return 1;
        }

        handler = sd_bus_get_current_handler(bus);
        if (!handler)
                return -EINVAL;

        for (q = c->queries; q; q = q->next)
                if (streq(q->name, sender))
                        break;
        if (!q) {
                q = calloc(1, sizeof(Query));
                if (!q)
                        return -ENOMEM;
                q->name = strdup(sender);
                if (!q->name) {
                        free(q);
                        return -ENOMEM;
                }
                r = sd_bus_call_method_async(bus, &q->slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                             "org.freedesktop.DBus", "GetConnectionCredentials", on_credentials, q,
                                             "s", sender);
                if (r < 0) {
                        query_free(q);
                        return r;
                }
                q->cache = c;
                q->next = c->queries;
                if (c->queries)
                        c->queries->prev = q;
                c->queries = q;
        }

        w = reallocarray(q->waiters, q->n_waiters + 1, sizeof(Waiter));
        if (!w)
                return -ENOMEM;   /* the query stays for the others; this call gets an error */
        q->waiters = w;
        q->waiters[q->n_waiters++] = (Waiter) {
                .request = sd_bus_message_ref(msg),
                .handler = handler,
                .userdata = sd_bus_get_current_userdata(bus),
        };
        return 0;
}
