/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "db-listen.h"
#include "db-postgresql.h"
#include "log.h"
#include "time-util.h"

#define RETRY_FIRST_USEC (1 * USEC_PER_SEC)
#define RETRY_MAX_USEC (30 * USEC_PER_SEC)
/* PQconnectPoll() ignores connect_timeout: the connection attempt is bounded here instead. */
#define CONNECT_TIMEOUT_USEC (10 * USEC_PER_SEC)

typedef enum ListenState {
        LISTEN_DISCONNECTED,    /* the timer tries again */
        LISTEN_CONNECTING,      /* PQconnectPoll() until PGRES_POLLING_OK; the timer is the deadline */
        LISTEN_SUBSCRIBING,     /* LISTEN sent, its result awaited; the timer is the deadline */
        LISTEN_LISTENING,
} ListenState;

struct DbListen {
        sd_event *event;
        char *uri;
        char *redacted;         /* for messages */
        char *query;            /* "LISTEN channel" */
        DbListenCallback callback;
        void *userdata;

        PGconn *conn;
        ListenState state;
        usec_t retry;
        bool failing;           /* logged once per outage */
        sd_event_source *io_source;
        sd_event_source *timer_source;
};

static int dl_arm_timer(DbListen *l, usec_t delay) {
        usec_t now;
        int k;

        k = sd_event_now(l->event, CLOCK_MONOTONIC, &now);
        if (k < 0)
                return k;
        k = sd_event_source_set_time(l->timer_source, now + delay);
        if (k < 0)
                return k;
        return sd_event_source_set_enabled(l->timer_source, SD_EVENT_ONESHOT);
}

static void dl_close(DbListen *l) {
        l->io_source = sd_event_source_disable_unref(l->io_source);
        if (l->conn) {
                PQfinish(l->conn);
                l->conn = NULL;
        }
        l->state = LISTEN_DISCONNECTED;
}

static void dl_fail(DbListen *l, const char *why) {
        const char *m = why;
        int k;

        if (!m && l->conn)
                m = PQerrorMessage(l->conn);
        /* libpq's messages name host and user, never the password. */
        if (!l->failing)
                log_warning("Stop notifications from %s unavailable (%.*s); retrying, stops are polled meanwhile.",
                            l->redacted, (int) strcspn(strempty(m), "\n"), strempty(m));
        else
                log_debug("Stop notifications from %s still unavailable: %.*s", l->redacted,
                          (int) strcspn(strempty(m), "\n"), strempty(m));
        l->failing = true;
        dl_close(l);

        k = dl_arm_timer(l, l->retry);
        if (k < 0)
                log_error_errno(k, "Failed to arm the notification listener's retry: %m");
        l->retry = MIN(l->retry * 2, RETRY_MAX_USEC);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);

/* Watches the connection's socket for what libpq waits for. The socket may change while connecting (another
 * host or address of the URI is tried), hence a new source then. */
static int dl_watch(DbListen *l, uint32_t events) {
        int fd = PQsocket(l->conn), k;

        if (fd < 0)
                return -EBADF;
        if (l->io_source && sd_event_source_get_io_fd(l->io_source) != fd)
                l->io_source = sd_event_source_disable_unref(l->io_source);
        if (!l->io_source) {
                k = sd_event_add_io(l->event, &l->io_source, fd, events, on_io, l);
                if (k < 0)
                        return k;
                (void) sd_event_source_set_description(l->io_source, "db-listen");
                return 0;
        }
        return sd_event_source_set_io_events(l->io_source, events);
}

static void dl_connect(DbListen *l) {
        /* As the main connection's (db-postgresql.c); the URI last, overriding any it names. */
        const char *const keywords[] = { "application_name", "keepalives", "keepalives_idle", "keepalives_interval",
                                         "keepalives_count", "tcp_user_timeout", "dbname", NULL };
        const char *const values[] = { "batchd-listen", "1", "10", "3", "3", "20000", l->uri, NULL };
        int k;

        assert(!l->conn);

        l->conn = PQconnectStartParams(keywords, values, 1);
        if (!l->conn)
                return dl_fail(l, "out of memory");
        if (PQstatus(l->conn) == CONNECTION_BAD)
                return dl_fail(l, NULL);
        l->state = LISTEN_CONNECTING;
        /* Right after PQconnectStart*(), libpq waits as after PGRES_POLLING_WRITING. */
        k = dl_watch(l, EPOLLOUT);
        if (k < 0)
                return dl_fail(l, strerror(-k));
        k = dl_arm_timer(l, CONNECT_TIMEOUT_USEC);
        if (k < 0)
                return dl_fail(l, strerror(-k));
}

static void dl_connect_poll(DbListen *l) {
        int k;

        switch (PQconnectPoll(l->conn)) {
        case PGRES_POLLING_READING:
                k = dl_watch(l, EPOLLIN);
                break;
        case PGRES_POLLING_WRITING:
                k = dl_watch(l, EPOLLOUT);
                break;
        case PGRES_POLLING_OK:
                if (PQsetnonblocking(l->conn, 1) < 0 || !PQsendQuery(l->conn, l->query))
                        return dl_fail(l, NULL);
                l->state = LISTEN_SUBSCRIBING;
                /* A short query: flushed at once but for a full socket buffer, which POLLOUT then drains. */
                k = PQflush(l->conn);
                if (k < 0)
                        return dl_fail(l, NULL);
                k = dl_watch(l, k > 0 ? EPOLLIN | EPOLLOUT : EPOLLIN);
                break;
        default:
                return dl_fail(l, NULL);
        }
        if (k < 0)
                return dl_fail(l, strerror(-k));
}

static void dl_input(DbListen *l, uint32_t revents) {
        PGnotify *n;
        int k;

        if (revents & EPOLLOUT) {
                k = PQflush(l->conn);
                if (k < 0)
                        return dl_fail(l, NULL);
                if (k == 0 && dl_watch(l, EPOLLIN) < 0)
                        return dl_fail(l, "cannot watch the connection");
        }
        if (!PQconsumeInput(l->conn))
                return dl_fail(l, NULL);

        /* The LISTEN's result; no other query is ever sent on this connection. */
        while (!PQisBusy(l->conn)) {
                PGresult *res = PQgetResult(l->conn);
                bool ok;

                if (!res)
                        break;
                ok = PQresultStatus(res) == PGRES_COMMAND_OK;
                PQclear(res);
                if (!ok)
                        return dl_fail(l, NULL);
                if (l->state == LISTEN_SUBSCRIBING) {
                        l->state = LISTEN_LISTENING;
                        (void) sd_event_source_set_enabled(l->timer_source, SD_EVENT_OFF);
                        if (l->failing)
                                log_notice("Stop notifications from %s are back.", l->redacted);
                        else
                                log_info("Listening for stop notifications on %s.", l->redacted);
                        l->failing = false;
                        l->retry = RETRY_FIRST_USEC;
                }
        }

        while ((n = PQnotifies(l->conn))) {
                l->callback(l, strempty(n->extra), l->userdata);
                PQfreemem(n);
        }
        if (PQstatus(l->conn) == CONNECTION_BAD)
                return dl_fail(l, NULL);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        DbListen *l = userdata;

        if (l->state == LISTEN_CONNECTING)
                dl_connect_poll(l);
        else
                dl_input(l, revents);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        DbListen *l = userdata;

        if (l->state == LISTEN_DISCONNECTED)
                dl_connect(l);
        else if (l->state != LISTEN_LISTENING)
                dl_fail(l, "timed out");
        return 0;
}

int db_listen_new(sd_event *event, const char *uri, const char *channel, DbListenCallback callback, void *userdata,
                  DbListen **ret) {
        _cleanup_(db_listen_freep) DbListen *l = NULL;
        int k;

        assert(event);
        assert(uri);
        assert(channel);
        assert(callback);
        assert(ret);

        l = calloc(1, sizeof(DbListen));
        if (!l)
                return -ENOMEM;
        l->event = sd_event_ref(event);
        l->callback = callback;
        l->userdata = userdata;
        l->retry = RETRY_FIRST_USEC;
        l->uri = strdup(uri);
        l->redacted = db_postgresql_redact_uri(uri);
        if (!l->uri || !l->redacted || asprintf(&l->query, "LISTEN %s", channel) < 0)
                return -ENOMEM;

        /* Connecting starts from the loop, at once: nothing here waits for the server. */
        k = sd_event_add_time(event, &l->timer_source, CLOCK_MONOTONIC, 0, 0, on_timer, l);
        if (k < 0)
                return k;
        (void) sd_event_source_set_description(l->timer_source, "db-listen-timer");

        *ret = TAKE_PTR(l);
        return 0;
}

DbListen *db_listen_free(DbListen *l) {
        if (!l)
                return NULL;
        dl_close(l);
        sd_event_source_disable_unref(l->timer_source);
        sd_event_unref(l->event);
        free(l->uri);
        free(l->redacted);
        free(l->query);
        return mfree(l);
}
