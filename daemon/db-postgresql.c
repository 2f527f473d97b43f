/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The PostgreSQL backend of db.h, over libpq.
 *
 * The daemon's event loop calls this, so no call may wait without bound on the network: every query is sent on a
 * nonblocking socket and its answer awaited with poll() up to the connection's response deadline; past it the
 * connection is given up (the server rolls back what was open) and -ETIMEDOUT returned. A connection that broke
 * is re-established by later calls, one nonblocking PQconnectPoll() step per call, and until it is back every
 * call fails with -ECONNRESET at once. */

#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdarg.h>
#include <time.h>

#include "db-internal.h"
#include "db-postgresql.h"
#include "log.h"

#define PG_RESPONSE_DEADLINE_MSEC_DEFAULT 10000U
#define PG_BUSY_TIMEOUT_MSEC_DEFAULT 5000U
/* A client that vanished inside a transaction must not hold row locks for long: the server ends its session. */
#define PG_IDLE_IN_TRANSACTION_MSEC 60000U

typedef struct PgStatement PgStatement;

typedef struct PgDb {
        Db db;

        /* What PQconnectStartParams() gets on every reconnect: our defaults, then the user's URI (expanded, so
         * its keywords override ours). */
        const char **keywords;
        const char **values;
        char *uri;

        PGconn *conn;           /* NULL while there is none */
        bool connecting;        /* conn is a nonblocking connection attempt, not yet usable */
        PostgresPollingStatusType connect_wants;
        uint64_t connect_started_usec;

        bool read_only;
        unsigned busy_timeout_msec;
        unsigned deadline_msec;
        int64_t changes;
        char *errmsg;

        PgStatement **statements;
        size_t n_statements;
} PgDb;

struct PgStatement {
        DbStatement stmt;
        char *pg_sql;           /* with $N parameters */
        int n_params;
        char **params;          /* text of each parameter, NULL for NULL */
        PGresult *result;
        int row;
};

static PgDb *PG(Db *db) {
        return (PgDb *) db;
}

static PgStatement *PGS(DbStatement *s) {
        return (PgStatement *) s;
}

static uint64_t now_monotonic_usec(void) {
        struct timespec ts;

        if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
                abort();
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

/* Keeps the first line only: libpq's messages end in a newline and may carry DETAIL/HINT lines. */
static void pg_set_errmsg(PgDb *d, const char *msg) {
        free(d->errmsg);
        d->errmsg = strndup(strempty(msg), strcspn(strempty(msg), "\n"));
}

static void pg_set_errmsgf(PgDb *d, const char *fmt, ...) _printf_(2, 3);
static void pg_set_errmsgf(PgDb *d, const char *fmt, ...) {
        va_list ap;
        char *m = NULL;

        va_start(ap, fmt);
        if (vasprintf(&m, fmt, ap) < 0)
                m = NULL;
        va_end(ap);
        free(d->errmsg);
        d->errmsg = m;
}

/* The connection is gone (or given up): the server rolls back whatever was open; later calls reconnect. */
static void pg_drop_connection(PgDb *d) {
        if (d->conn)
                PQfinish(d->conn);
        d->conn = NULL;
        d->connecting = false;
}

static int pg_wait_socket(PgDb *d, short events, uint64_t deadline_usec) {
        for (;;) {
                struct pollfd p = { .fd = PQsocket(d->conn), .events = events };
                uint64_t n = now_monotonic_usec();
                int r;

                if (p.fd < 0)
                        return -ECONNRESET;
                if (n >= deadline_usec)
                        return -ETIMEDOUT;
                uint64_t left_msec = (deadline_usec - n + USEC_PER_MSEC - 1) / USEC_PER_MSEC;

                r = poll(&p, 1, (int) MIN(left_msec, (uint64_t) INT32_MAX));
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r > 0)
                        return 0;
        }
}

static int pg_lost(PgDb *d, int error) {
        if (error == -ETIMEDOUT)
                pg_set_errmsgf(d, "PostgreSQL did not answer within %u ms; the connection was given up",
                               d->deadline_msec);
        else
                pg_set_errmsg(d, d->conn ? PQerrorMessage(d->conn) : "the connection to PostgreSQL was lost");
        /* A lost connection is worth a warning once; each failed reconnect attempt of an outage is not. */
        if (d->connecting)
                log_debug("Reconnecting to PostgreSQL at %s failed: %s", d->db.location, strempty(d->errmsg));
        else
                log_warning("Connection to PostgreSQL at %s lost: %s", d->db.location, strempty(d->errmsg));
        pg_drop_connection(d);
        return error;
}

static int pg_error_from_sqlstate(const char *state) {
        if (!state || strlen(state) != 5)
                return -EIO;
        if (streq(state, "23505") || streq(state, "23P01"))
                return -EEXIST;
        if (streq(state, "40001") || streq(state, "40P01") || streq(state, "55P03"))
                return -EAGAIN;
        if (streq(state, "53100"))
                return -ENOSPC;
        if (streq(state, "53200"))
                return -ENOMEM;
        if (streq(state, "25006"))
                return -EROFS;
        if (strneq(state, "28", 2) || streq(state, "42501"))
                return -EACCES;
        /* Connection exceptions, and the server shutting down or crashing under the session. */
        if (strneq(state, "08", 2) || strneq(state, "57P0", 4))
                return -ECONNRESET;
        /* statement_timeout: the server ended a statement that ran past the client's deadline. */
        if (streq(state, "57014"))
                return -ETIMEDOUT;
        return -EIO;
}

static int pg_result_error(PgDb *d, PGresult *res) {
        const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        int r;

        if (PQstatus(d->conn) == CONNECTION_BAD)
                return pg_lost(d, -ECONNRESET);

        r = pg_error_from_sqlstate(PQresultErrorField(res, PG_DIAG_SQLSTATE));
        pg_set_errmsg(d, primary ?: PQresultErrorMessage(res));
        if (r == -ECONNRESET)
                pg_drop_connection(d);
        return r;
}

/* Sends one query (extended protocol with text parameters when params_n >= 0, else the simple protocol, which
 * allows several statements) and collects its results within the response deadline. Returns the last result
 * in *ret (a successful one), or the first error. */
static int pg_query(PgDb *d, const char *sql, int params_n, const char *const *params, PGresult **ret) {
        uint64_t deadline = now_monotonic_usec() + (uint64_t) d->deadline_msec * USEC_PER_MSEC;
        PGresult *last = NULL;
        int r, error = 0;

        assert(d->conn && !d->connecting);

        if (params_n >= 0)
                r = PQsendQueryParams(d->conn, sql, params_n, NULL, params, NULL, NULL, 0);
        else
                r = PQsendQuery(d->conn, sql);
        if (r == 0) {
                if (PQstatus(d->conn) == CONNECTION_BAD)
                        return pg_lost(d, -ECONNRESET);
                pg_set_errmsg(d, PQerrorMessage(d->conn));
                return -EIO;
        }

        /* Nonblocking: the query may not all be written yet. */
        for (;;) {
                r = PQflush(d->conn);
                if (r < 0)
                        return pg_lost(d, -ECONNRESET);
                if (r == 0)
                        break;
                r = pg_wait_socket(d, POLLIN | POLLOUT, deadline);
                if (r < 0)
                        return pg_lost(d, r);
                if (PQconsumeInput(d->conn) == 0)
                        return pg_lost(d, -ECONNRESET);
        }

        for (;;) {
                PGresult *res;

                while (PQisBusy(d->conn)) {
                        r = pg_wait_socket(d, POLLIN, deadline);
                        if (r < 0) {
                                PQclear(last);
                                return pg_lost(d, r);
                        }
                        if (PQconsumeInput(d->conn) == 0) {
                                PQclear(last);
                                return pg_lost(d, -ECONNRESET);
                        }
                }

                res = PQgetResult(d->conn);
                if (!res)
                        break;

                switch (PQresultStatus(res)) {
                case PGRES_COMMAND_OK:
                case PGRES_TUPLES_OK:
                case PGRES_EMPTY_QUERY:
                        PQclear(last);
                        last = res;
                        break;
                default:
                        if (error == 0)
                                error = pg_result_error(d, res);
                        PQclear(res);
                        if (!d->conn) {
                                PQclear(last);
                                return error;
                        }
                }
        }

        if (error < 0) {
                PQclear(last);
                return error;
        }
        if (!last) {
                pg_set_errmsg(d, "PostgreSQL returned no result");
                return -EIO;
        }

        /* What sqlite3_changes() counts: rows written by the last INSERT/UPDATE/DELETE, RETURNING or not. */
        const char *status = PQcmdStatus(last);
        if (strneq(status, "INSERT ", 7) || strneq(status, "UPDATE ", 7) || strneq(status, "DELETE ", 7) ||
            strneq(status, "MERGE ", 6))
                d->changes = strtoll(PQcmdTuples(last), NULL, 10);

        if (ret)
                *ret = last;
        else
                PQclear(last);
        return 0;
}

/* A statement the client gave up on at its deadline goes on running on the server, holding its locks, until it
 * tries to answer: the server ends it itself a little after the client's deadline. */
static unsigned pg_statement_timeout_msec(PgDb *d) {
        return d->deadline_msec + 1000;
}

static int pg_session_setup(PgDb *d) {
        _cleanup_free_ char *sql = NULL;
        int r;

        if (PQsetnonblocking(d->conn, 1) < 0) {
                pg_set_errmsg(d, PQerrorMessage(d->conn));
                return -EIO;
        }

        if (asprintf(&sql,
                     "SET client_encoding = 'UTF8'; "
                     "SET DateStyle = 'ISO, YMD'; "
                     "SET IntervalStyle = 'iso_8601'; "
                     "SET default_transaction_isolation = 'read committed'; "
                     "SET default_transaction_read_only = %s; "
                     "SET lock_timeout = %u; "
                     "SET statement_timeout = %u; "
                     "SET idle_in_transaction_session_timeout = %u",
                     d->read_only ? "on" : "off", d->busy_timeout_msec, pg_statement_timeout_msec(d),
                     PG_IDLE_IN_TRANSACTION_MSEC) < 0)
                return -ENOMEM;

        r = pg_query(d, sql, -1, NULL, NULL);
        if (r < 0 && d->conn)
                pg_drop_connection(d);
        return r;
}

/* Whether the connection is usable now. When it is not, advances the reconnect by one step without waiting:
 * starts a new attempt, or calls PQconnectPoll() once if the socket is ready for what it last asked (a poll()
 * with a zero timeout only looks). */
static bool pg_ready(PgDb *d) {
        if (d->conn && !d->connecting) {
                if (PQstatus(d->conn) == CONNECTION_OK)
                        return true;
                pg_lost(d, -ECONNRESET);
        }

        if (!d->conn) {
                d->conn = PQconnectStartParams(d->keywords, d->values, 1);
                if (!d->conn) {
                        pg_set_errmsg(d, "out of memory");
                        return false;
                }
                d->connecting = true;
                if (PQstatus(d->conn) == CONNECTION_BAD) {
                        pg_lost(d, -ECONNRESET);
                        return false;
                }
                d->connect_wants = PGRES_POLLING_WRITING;
                d->connect_started_usec = now_monotonic_usec();
                return false;
        }

        /* In nonblocking mode libpq does not enforce connect_timeout itself: an attempt that hangs (a server
         * that drops packets) is started over after the response deadline. */
        if (now_monotonic_usec() - d->connect_started_usec > (uint64_t) d->deadline_msec * USEC_PER_MSEC) {
                pg_set_errmsg(d, "reconnecting to PostgreSQL timed out");
                pg_drop_connection(d);
                return false;
        }

        struct pollfd p = {
                .fd = PQsocket(d->conn),
                .events = d->connect_wants == PGRES_POLLING_READING ? POLLIN : POLLOUT,
        };
        if (p.fd >= 0 && poll(&p, 1, 0) == 0)
                return false;

        d->connect_wants = PQconnectPoll(d->conn);
        switch (d->connect_wants) {
        case PGRES_POLLING_FAILED:
                pg_lost(d, -ECONNRESET);
                return false;
        case PGRES_POLLING_OK:
                d->connecting = false;
                if (pg_session_setup(d) < 0)
                        return false;
                log_info("Reconnected to PostgreSQL at %s.", d->db.location);
                return true;
        default:
                return false;
        }
}

/* The URI for messages: without the password of its user info or of a password= parameter. */
char *db_postgresql_redact_uri(const char *uri) {
        const char *scheme_end, *p, *at, *colon, *q;
        char *out, *o;

        out = o = malloc(strlen(uri) + 1);
        if (!out)
                return NULL;

        scheme_end = strstr(uri, "://");
        p = scheme_end ? scheme_end + 3 : uri;
        /* libpq's URI parser: user info ends at the first '@' before any '/'. */
        at = p + strcspn(p, "@/");
        colon = NULL;
        if (*at == '@') {
                colon = memchr(p, ':', at - p);
                if (colon) {
                        o = mempcpy(o, uri, colon - uri);
                        p = at;
                }
        }
        if (!colon) {
                o = mempcpy(o, uri, p - uri);
        }

        q = strchr(p, '?');
        if (!q) {
                strcpy(o, p);
                return out;
        }
        o = mempcpy(o, p, q - p);

        bool first = true;
        for (const char *k = q + 1; *k;) {
                size_t n = strcspn(k, "&");

                if (!(n >= 9 && strneq(k, "password=", 9))) {
                        *o++ = first ? '?' : '&';
                        o = mempcpy(o, k, n);
                        first = false;
                }
                k += n;
                if (*k == '&')
                        k++;
        }
        *o = 0;
        return out;
}

static void pg_free(Db *db) {
        PgDb *d = PG(db);

        if (!d)
                return;
        pg_drop_connection(d);
        for (size_t i = 0; i < d->n_statements; i++) {
                PgStatement *s = d->statements[i];

                PQclear(s->result);
                for (int j = 0; j < s->n_params; j++)
                        free(s->params[j]);
                free(s->params);
                free(s->pg_sql);
                db_statement_done(&s->stmt);
                free(s);
        }
        free(d->statements);
        free(d->keywords);
        free(d->values);
        free(d->uri);
        free(d->errmsg);
        db_done(&d->db);
        free(d);
}

static int pg_open(const char *location, DbOpenFlags flags, Db **ret, char **ret_message) {
        PQconninfoOption *options;
        char *err = NULL;
        _cleanup_free_ char *redacted = NULL;
        PgDb *d;
        int r;

        assert(location);
        assert(ret);

        options = PQconninfoParse(location, &err);
        if (!options) {
                r = err ? -EINVAL : -ENOMEM;
                if (ret_message)
                        *ret_message = strndup(err ?: "out of memory", strcspn(err ?: "out of memory", "\n"));
                PQfreemem(err);
                return r;
        }
        PQconninfoFree(options);

        redacted = db_postgresql_redact_uri(location);
        d = calloc(1, sizeof(PgDb));
        if (!redacted || !d) {
                free(d);
                return -ENOMEM;
        }
        r = db_init(&d->db, &db_postgresql_ops, DB_BACKEND_POSTGRESQL, redacted);
        if (r < 0) {
                pg_free(&d->db);
                return r;
        }
        d->read_only = flags & DB_OPEN_READ_ONLY;
        d->busy_timeout_msec = PG_BUSY_TIMEOUT_MSEC_DEFAULT;
        d->deadline_msec = PG_RESPONSE_DEADLINE_MSEC_DEFAULT;
        d->uri = strdup(location);

        /* Our defaults first: the URI comes last and, expanded (expand_dbname), overrides any it names. Keepalives
         * and tcp_user_timeout notice a vanished server within about 20 s even while idle; libpq ignores them on
         * a unix socket. Multi-host URIs with target_session_attrs=read-write pass through to libpq. */
        static const char *const defaults[][2] = {
                { "application_name", "batchd" },
                { "connect_timeout", "5" },
                { "keepalives", "1" },
                { "keepalives_idle", "10" },
                { "keepalives_interval", "3" },
                { "keepalives_count", "3" },
                { "tcp_user_timeout", "20000" },
        };
        size_t n = ELEMENTSOF(defaults);
        d->keywords = calloc(n + 2, sizeof(char *));
        d->values = calloc(n + 2, sizeof(char *));
        if (!d->uri || !d->keywords || !d->values) {
                pg_free(&d->db);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                d->keywords[i] = defaults[i][0];
                d->values[i] = defaults[i][1];
        }
        d->keywords[n] = "dbname";
        d->values[n] = d->uri;

        /* The first connection is made here, synchronously, bounded by connect_timeout. */
        d->conn = PQconnectdbParams(d->keywords, d->values, 1);
        if (!d->conn || PQstatus(d->conn) != CONNECTION_OK) {
                if (ret_message) {
                        const char *m = d->conn ? PQerrorMessage(d->conn) : "out of memory";
                        *ret_message = strndup(m, strcspn(m, "\n"));
                }
                pg_free(&d->db);
                return -ECONNRESET;
        }

        r = pg_session_setup(d);
        if (r < 0) {
                if (ret_message)
                        *ret_message = strdup(strempty(d->errmsg));
                pg_free(&d->db);
                return r;
        }

        *ret = &d->db;
        return 0;
}

static const char *pg_errmsg(Db *db) {
        return strempty(PG(db)->errmsg);
}

/* SQLite's ?N parameters to PostgreSQL's $N, outside string literals ('...', E'...' with backslash escapes,
 * $tag$...$tag$), quoted identifiers and comments (-- to the end of the line, nested block comments). */
int db_postgresql_translate(const char *sql, char **ret, int *ret_n_params) {
        _cleanup_free_ char *out = NULL;
        const char *p = sql;
        char *o;
        int max = 0;

        assert(sql);
        assert(ret);

        out = o = malloc(strlen(sql) + 1);      /* "?N" and "$N" have the same length */
        if (!out)
                return -ENOMEM;

        while (*p) {
                if (*p == '\'' || *p == '"') {
                        char quote = *p;
                        bool backslash = quote == '\'' && p > sql && (p[-1] == 'E' || p[-1] == 'e') &&
                                         (p - 1 == sql || !(isalnum((unsigned char) p[-2]) || p[-2] == '_'));

                        *o++ = *p++;
                        while (*p) {
                                if (backslash && *p == '\\' && p[1]) {
                                        *o++ = *p++;
                                        *o++ = *p++;
                                        continue;
                                }
                                if (*p == quote) {
                                        *o++ = *p++;
                                        if (*p != quote)        /* '' inside is an escaped quote */
                                                break;
                                }
                                *o++ = *p++;
                        }
                } else if (p[0] == '-' && p[1] == '-') {
                        size_t n = strcspn(p, "\n");

                        o = mempcpy(o, p, n);
                        p += n;
                } else if (p[0] == '/' && p[1] == '*') {
                        unsigned depth = 0;

                        while (*p) {
                                if (p[0] == '/' && p[1] == '*') {
                                        depth++;
                                        *o++ = *p++;
                                } else if (p[0] == '*' && p[1] == '/') {
                                        depth--;
                                        *o++ = *p++;
                                        if (depth == 0) {
                                                *o++ = *p++;
                                                break;
                                        }
                                }
                                *o++ = *p++;
                        }
                } else if (*p == '$' && (p == sql || !(isalnum((unsigned char) p[-1]) || p[-1] == '_')) &&
                           !isdigit((unsigned char) p[1])) {
                        /* A dollar quote $tag$ ... $tag$ (the tag may be empty). */
                        size_t t = 1 + strspn(p + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789");
                        if (p[t] != '$') {
                                *o++ = *p++;
                                continue;
                        }
                        t++;
                        const char *end = NULL;
                        for (const char *k = p + t; *k; k++)
                                if (strneq(k, p, t)) {
                                        end = k;
                                        break;
                                }
                        size_t n = end ? (size_t) (end - p) + t : strlen(p);
                        o = mempcpy(o, p, n);
                        p += n;
                } else if (*p == '?') {
                        char *e;
                        long v;

                        if (!isdigit((unsigned char) p[1]))
                                return -EINVAL;         /* only numbered parameters */
                        errno = 0;
                        v = strtol(p + 1, &e, 10);
                        if (errno != 0 || v < 1 || v > 65535)
                                return -EINVAL;
                        max = MAX(max, (int) v);
                        *o++ = '$';
                        o = mempcpy(o, p + 1, e - (p + 1));
                        p = e;
                } else
                        *o++ = *p++;
        }
        *o = 0;

        *ret = TAKE_PTR(out);
        if (ret_n_params)
                *ret_n_params = max;
        return 0;
}

static int pg_prepare(Db *db, const char *sql, DbStatement **ret) {
        PgDb *d = PG(db);
        PgStatement *s, **l;
        int r;

        s = calloc(1, sizeof(PgStatement));
        if (!s)
                return -ENOMEM;
        r = db_statement_init(&s->stmt, db, sql);
        if (r < 0) {
                free(s);
                return r;
        }
        r = db_postgresql_translate(sql, &s->pg_sql, &s->n_params);
        if (r < 0) {
                pg_set_errmsgf(d, "unsupported parameter in SQL (only ?1, ?2, ...): %s", sql);
                goto fail;
        }
        s->params = calloc(MAX(s->n_params, 1), sizeof(char *));
        l = reallocarray(d->statements, d->n_statements + 1, sizeof(PgStatement *));
        if (!s->params || !l) {
                if (l)
                        d->statements = l;
                r = -ENOMEM;
                goto fail;
        }
        d->statements = l;
        d->statements[d->n_statements++] = s;
        s->row = -1;
        *ret = &s->stmt;
        return 0;

fail:
        free(s->params);
        free(s->pg_sql);
        db_statement_done(&s->stmt);
        free(s);
        return r;
}

static int pg_bind_take(DbStatement *stmt, int i, char *v) {
        PgStatement *s = PGS(stmt);

        if (i < 1 || i > s->n_params) {
                free(v);
                pg_set_errmsgf(PG(stmt->db), "parameter %i out of range (the statement has %i)", i, s->n_params);
                return -ERANGE;
        }
        free(s->params[i - 1]);
        s->params[i - 1] = v;
        return 0;
}

static int pg_bind_int64(DbStatement *s, int i, int64_t v) {
        char *t;

        if (asprintf(&t, "%" PRIi64, v) < 0)
                return -ENOMEM;
        return pg_bind_take(s, i, t);
}

static int pg_bind_text(DbStatement *s, int i, const char *v) {
        char *t = strdup(v);

        if (!t)
                return -ENOMEM;
        return pg_bind_take(s, i, t);
}

static int pg_bind_null(DbStatement *s, int i) {
        return pg_bind_take(s, i, NULL);
}

static int pg_step(DbStatement *stmt) {
        PgStatement *s = PGS(stmt);
        PgDb *d = PG(stmt->db);
        int r;

        if (!s->result) {
                if (!pg_ready(d))
                        return -ECONNRESET;     /* at once; errmsg keeps why */
                r = pg_query(d, s->pg_sql, s->n_params, (const char *const *) s->params, &s->result);
                if (r < 0)
                        return r;
                s->row = -1;
        }

        if (PQresultStatus(s->result) != PGRES_TUPLES_OK)
                return DB_DONE;
        if (s->row < PQntuples(s->result))
                s->row++;
        return s->row < PQntuples(s->result) ? DB_ROW : DB_DONE;
}

static bool pg_column_valid(PgStatement *s, int i) {
        return s->result && PQresultStatus(s->result) == PGRES_TUPLES_OK && s->row >= 0 &&
               s->row < PQntuples(s->result) && i >= 0 && i < PQnfields(s->result);
}

static bool pg_column_is_null(DbStatement *stmt, int i) {
        PgStatement *s = PGS(stmt);

        return !pg_column_valid(s, i) || PQgetisnull(s->result, s->row, i);
}

static int64_t pg_column_int64(DbStatement *stmt, int i) {
        PgStatement *s = PGS(stmt);
        const char *v;

        if (pg_column_is_null(stmt, i))
                return 0;
        v = PQgetvalue(s->result, s->row, i);
        /* A boolean reads as SQLite's 1/0. */
        if (streq(v, "t"))
                return 1;
        if (streq(v, "f"))
                return 0;
        return strtoll(v, NULL, 10);
}

static const char *pg_column_text(DbStatement *stmt, int i) {
        PgStatement *s = PGS(stmt);

        if (pg_column_is_null(stmt, i))
                return NULL;
        return PQgetvalue(s->result, s->row, i);
}

static size_t pg_column_bytes(DbStatement *stmt, int i) {
        PgStatement *s = PGS(stmt);

        if (pg_column_is_null(stmt, i))
                return 0;
        return (size_t) PQgetlength(s->result, s->row, i);
}

static void pg_reset(DbStatement *stmt) {
        PgStatement *s = PGS(stmt);

        PQclear(s->result);
        s->result = NULL;
        s->row = -1;
        for (int j = 0; j < s->n_params; j++)
                s->params[j] = mfree(s->params[j]);
}

static int64_t pg_changes(Db *db) {
        return PG(db)->changes;
}

static int pg_exec(Db *db, const char *sql) {
        PgDb *d = PG(db);

        if (!pg_ready(d))
                return -ECONNRESET;     /* at once; errmsg keeps why */
        return pg_query(d, sql, -1, NULL, NULL);
}

static int pg_begin(Db *db) {
        return pg_exec(db, "BEGIN ISOLATION LEVEL READ COMMITTED");
}

static int pg_commit(Db *db) {
        PgDb *d = PG(db);
        PGresult *res = NULL;
        int r;

        if (!pg_ready(d))
                return -ECONNRESET;     /* at once; errmsg keeps why */
        r = pg_query(d, "COMMIT", 0, NULL, &res);
        if (r < 0)
                return r;
        /* COMMIT of a transaction an earlier error aborted succeeds as a ROLLBACK: nothing was written. */
        if (streq(PQcmdStatus(res), "ROLLBACK")) {
                PQclear(res);
                pg_set_errmsg(d, "the transaction was aborted by an earlier error and rolled back");
                return -EIO;
        }
        PQclear(res);
        return 0;
}

static int pg_rollback(Db *db) {
        PgDb *d = PG(db);

        /* Without a connection there is nothing to roll back: the server rolled back when it went away. */
        if (!d->conn || d->connecting || PQstatus(d->conn) != CONNECTION_OK)
                return 0;
        return pg_query(d, "ROLLBACK", 0, NULL, NULL);
}

static bool pg_in_transaction(Db *db) {
        PgDb *d = PG(db);
        PGTransactionStatusType t;

        if (!d->conn || d->connecting)
                return false;
        t = PQtransactionStatus(d->conn);
        /* An aborted transaction is still open: it needs its ROLLBACK (or ROLLBACK TO SAVEPOINT). */
        return t == PQTRANS_INTRANS || t == PQTRANS_INERROR;
}

static int pg_next_id(Db *db, const char *sequence, int64_t *ret) {
        PgDb *d = PG(db);
        _cleanup_free_ char *sql = NULL;
        PGresult *res = NULL;
        int r;

        if (isempty(sequence) || sequence[strspn(sequence, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_")] != 0) {
                pg_set_errmsgf(d, "invalid sequence name: %s", sequence);
                return -EINVAL;
        }
        if (asprintf(&sql, "SELECT nextval('%s')", sequence) < 0)
                return -ENOMEM;
        if (!pg_ready(d))
                return -ECONNRESET;     /* at once; errmsg keeps why */
        r = pg_query(d, sql, 0, NULL, &res);
        if (r < 0)
                return r;
        if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
                PQclear(res);
                pg_set_errmsg(d, "nextval() returned no value");
                return -EIO;
        }
        *ret = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        return 0;
}

/* Applies a setting now if the connection is up; a reconnect applies it in its session setup anyway. A failure
 * (an aborted transaction refuses SET) is left to that: the setting is a bound, not a result. */
static void pg_set_now(PgDb *d, const char *name, unsigned msec) {
        char sql[80];

        if (!d->conn || d->connecting || PQstatus(d->conn) != CONNECTION_OK)
                return;
        (void) snprintf(sql, sizeof(sql), "SET %s = %u", name, msec);
        if (pg_query(d, sql, -1, NULL, NULL) < 0)
                log_debug("Could not set %s on %s: %s", name, d->db.location, strempty(d->errmsg));
}

static void pg_set_busy_timeout(Db *db, unsigned msec) {
        PgDb *d = PG(db);

        d->busy_timeout_msec = msec;
        pg_set_now(d, "lock_timeout", msec);
}

static void pg_set_response_deadline(Db *db, unsigned msec) {
        PgDb *d = PG(db);

        d->deadline_msec = msec;
        pg_set_now(d, "statement_timeout", pg_statement_timeout_msec(d));
}

const DbOps db_postgresql_ops = {
        .open = pg_open,
        .free = pg_free,
        .errmsg = pg_errmsg,
        .prepare = pg_prepare,
        .bind_int64 = pg_bind_int64,
        .bind_text = pg_bind_text,
        .bind_null = pg_bind_null,
        .step = pg_step,
        .column_is_null = pg_column_is_null,
        .column_int64 = pg_column_int64,
        .column_text = pg_column_text,
        .column_bytes = pg_column_bytes,
        .reset = pg_reset,
        .changes = pg_changes,
        .exec = pg_exec,
        .begin = pg_begin,
        .commit = pg_commit,
        .rollback = pg_rollback,
        .in_transaction = pg_in_transaction,
        .next_id = pg_next_id,
        .set_busy_timeout = pg_set_busy_timeout,
        .set_response_deadline = pg_set_response_deadline,
};
