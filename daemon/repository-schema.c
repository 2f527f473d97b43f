/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/stat.h>

#include "batch-error.h"
#include "log.h"
#include "repository-internal.h"
#include "schema.h"

/* ---- open, schema and migrations ---- */

/* PostgreSQL: the key of the transaction-level advisory lock every migration runs under, so that nodes starting
 * at once against one database migrate it once (the others wait, then find it done). Any constant will do as
 * long as it stays the same; this is "batchd" in ASCII. */
#define PG_MIGRATION_LOCK_KEY INT64_C(0x62617463686400)

static const char *const schema_sql[_SCHEMA_SQL_MAX] = {
        [SCHEMA_SQL_USER_VERSION] = "PRAGMA user_version",
        [SCHEMA_SQL_FOREIGN_TABLES] =
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'BATCH\\_%' ESCAPE '\\' "
                "AND name NOT LIKE 'BATCHD\\_%' ESCAPE '\\'",
        [SCHEMA_SQL_SPRING_TABLES] =
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'BATCH_JOB_INSTANCE'",
        /* Our version table, and Spring's instance table, in the schema the connection works in (unquoted
         * identifiers are folded to lower case by PostgreSQL). Other schemas on the search path do not count:
         * a database may hold several repositories, one per schema. */
        [SCHEMA_SQL_PG_TABLES] =
                "SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema()"
                " AND table_name = 'batchd_schema_version'),"
                " EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema()"
                " AND table_name = 'batch_job_instance')",
        [SCHEMA_SQL_PG_VERSION] =
                "SELECT COALESCE(MAX(VERSION), 0) FROM BATCHD_SCHEMA_VERSION",
};

static int schema_query_int(Repository *r, SchemaSql id, int64_t *ret, sd_bus_error *error) {
        DbStatement *s;
        int k;

        if (!r->schema_stmts[id]) {
                k = db_prepare(r->db, schema_sql[id], &r->schema_stmts[id]);
                if (k < 0)
                        return repository_error(r, k, error, "read the database");
        }
        s = r->schema_stmts[id];
        k = db_step(s);
        *ret = k == DB_ROW ? db_column_int64(s, 0) : 0;
        db_reset(s);
        if (k < 0)
                return repository_error(r, k, error, "read the database");
        return 0;
}

/* Brings a SQLite database to the schema this batchd knows (schema/, PRAGMA user_version). */
static int repository_migrate_sqlite(Repository *r, sd_bus_error *error) {
        int64_t version, foreign, spring;
        int k;

        k = schema_query_int(r, SCHEMA_SQL_USER_VERSION, &version, error);
        if (k < 0)
                return k;
        if (version > (int64_t) schema_migrations_count)
                return sd_bus_error_setf(error, BATCH_ERROR_DATABASE,
                                         "Database %s has schema version %" PRIi64 ", newer than the %zu this batchd "
                                         "knows; refusing to touch it.", db_location(r->db), version,
                                         schema_migrations_count),
                       -EPROTONOSUPPORT;

        if (version == 0) {
                /* A database we did not create: adopt one that Spring Batch created (same tables), refuse
                 * anything else rather than mixing our tables into someone else's data. */
                k = schema_query_int(r, SCHEMA_SQL_FOREIGN_TABLES, &foreign, error);
                if (k < 0)
                        return k;
                if (foreign > 0)
                        return sd_bus_error_setf(error, BATCH_ERROR_DATABASE,
                                                 "Database %s holds tables that are not Spring Batch's; refusing to "
                                                 "use a foreign database.", db_location(r->db)),
                               -EPROTONOSUPPORT;

                k = schema_query_int(r, SCHEMA_SQL_SPRING_TABLES, &spring, error);
                if (k < 0)
                        return k;
                if (spring > 0)
                        version = 1;
        }

        if (version == (int64_t) schema_migrations_count)
                return 0;
        if (r->read_only)
                return sd_bus_error_setf(error, BATCH_ERROR_DATABASE,
                                         "Database %s has schema version %" PRIi64 " but %zu is needed; start batchd "
                                         "once to upgrade it.", db_location(r->db), version, schema_migrations_count),
                       -EPROTONOSUPPORT;

        for (size_t i = (size_t) version; i < schema_migrations_count; i++) {
                _cleanup_free_ char *sql = NULL;

                if (asprintf(&sql, "BEGIN IMMEDIATE; %s; PRAGMA user_version = %zu; COMMIT;",
                             schema_migrations[i], i + 1) < 0)
                        return -ENOMEM;
                k = db_exec(r->db, sql);
                if (k < 0) {
                        k = repository_error(r, k, error, "upgrade the database schema");
                        if (db_in_transaction(r->db))
                                (void) db_rollback(r->db);
                        return k;
                }
        }
        return 0;
}

/* The schema version of a PostgreSQL repository: the row of BATCHD_SCHEMA_VERSION; without that table, 1 if
 * Spring Batch's tables are there (a database Spring Batch's initializer created: migration 001 is exactly its
 * schema-postgresql.sql), else 0. */
static int pg_schema_version(Repository *r, int64_t *ret, sd_bus_error *error) {
        DbStatement *s;
        bool ours = false, spring = false;
        int k;

        if (!r->schema_stmts[SCHEMA_SQL_PG_TABLES]) {
                k = db_prepare(r->db, schema_sql[SCHEMA_SQL_PG_TABLES], &r->schema_stmts[SCHEMA_SQL_PG_TABLES]);
                if (k < 0)
                        return repository_error(r, k, error, "read the database");
        }
        s = r->schema_stmts[SCHEMA_SQL_PG_TABLES];
        k = db_step(s);
        if (k == DB_ROW) {
                /* booleans come as "t" / "f" */
                ours = streq_ptr_safe(db_column_text(s, 0), "t");
                spring = streq_ptr_safe(db_column_text(s, 1), "t");
        }
        db_reset(s);
        if (k < 0)
                return repository_error(r, k, error, "read the database");
        if (k != DB_ROW)
                return sd_bus_error_setf(error, BATCH_ERROR_DATABASE, "Failed to read the tables of %s.",
                                         db_location(r->db)), -EIO;

        if (ours)
                return schema_query_int(r, SCHEMA_SQL_PG_VERSION, ret, error);
        *ret = spring ? 1 : 0;
        return 0;
}

static int pg_refuse_newer(Repository *r, int64_t version, sd_bus_error *error) {
        if (version <= (int64_t) schema_migrations_postgresql_count)
                return 0;
        return sd_bus_error_setf(error, BATCH_ERROR_DATABASE,
                                 "Database %s has schema version %" PRIi64 ", newer than the %zu this batchd "
                                 "knows; refusing to touch it.", db_location(r->db), version,
                                 schema_migrations_postgresql_count),
               -EPROTONOSUPPORT;
}

/* One migration step in one transaction, under the advisory lock: reads the version again under the lock (another
 * node may have migrated meanwhile) and applies the next migration, if any. *ret_done is true when the schema is
 * current. */
static int pg_migrate_step(Repository *r, bool *ret_done, sd_bus_error *error) {
        _cleanup_free_ char *sql = NULL;
        int64_t version;
        int k;

        k = db_begin(r->db);
        if (k < 0)
                return repository_error(r, k, error, "begin a transaction");

        /* SET LOCAL: the notices of IF NOT EXISTS are noise in batchd's log, for this transaction only. */
        if (asprintf(&sql, "SET LOCAL client_min_messages = warning; SELECT pg_advisory_xact_lock(%" PRIi64 ")",
                     PG_MIGRATION_LOCK_KEY) < 0) {
                k = -ENOMEM;
                goto fail;
        }
        k = db_exec(r->db, sql);
        if (k < 0) {
                k = repository_error(r, k, error, "lock the database schema");
                goto fail;
        }
        sql = mfree(sql);

        k = pg_schema_version(r, &version, error);
        if (k < 0)
                goto fail;
        k = pg_refuse_newer(r, version, error);
        if (k < 0)
                goto fail;
        if (version == (int64_t) schema_migrations_postgresql_count) {
                k = db_commit(r->db);
                if (k < 0)
                        return repository_error(r, k, error, "commit");
                *ret_done = true;
                return 0;
        }

        log_info("Upgrading the schema of %s from version %" PRIi64 " to %" PRIi64 ".", db_location(r->db), version,
                 version + 1);
        /* The version table goes in with the first migration we apply, also over a schema Spring Batch created. */
        if (asprintf(&sql,
                     "CREATE TABLE IF NOT EXISTS BATCHD_SCHEMA_VERSION (VERSION INTEGER NOT NULL);\n"
                     "%s;\n"
                     "DELETE FROM BATCHD_SCHEMA_VERSION;\n"
                     "INSERT INTO BATCHD_SCHEMA_VERSION (VERSION) VALUES (%" PRIi64 ");",
                     schema_migrations_postgresql[version], version + 1) < 0) {
                k = -ENOMEM;
                goto fail;
        }
        k = db_exec(r->db, sql);
        if (k < 0) {
                k = repository_error(r, k, error, "upgrade the database schema");
                goto fail;
        }
        k = db_commit(r->db);
        if (k < 0)
                return repository_error(r, k, error, "commit the upgraded database schema");
        *ret_done = false;
        return 0;

fail:
        if (db_in_transaction(r->db))
                (void) db_rollback(r->db);
        return k;
}

/* Brings a PostgreSQL database to the schema this batchd knows (schema/postgresql/, BATCHD_SCHEMA_VERSION).
 * Unlike a SQLite file, a PostgreSQL database often holds the application's own tables too: those are left
 * alone, not refused. */
static int repository_migrate_postgresql(Repository *r, sd_bus_error *error) {
        int64_t version;
        int k;

        /* Without the lock first: a current schema, the common case, costs one query and no waiting. */
        k = pg_schema_version(r, &version, error);
        if (k < 0)
                return k;
        k = pg_refuse_newer(r, version, error);
        if (k < 0)
                return k;
        if (version == (int64_t) schema_migrations_postgresql_count)
                return 0;
        if (r->read_only)
                return sd_bus_error_setf(error, BATCH_ERROR_DATABASE,
                                         "Database %s has schema version %" PRIi64 " but %zu is needed; start batchd "
                                         "once to upgrade it.", db_location(r->db), version,
                                         schema_migrations_postgresql_count),
                       -EPROTONOSUPPORT;

        /* A node that waited for another's migration longer than the lock timeout tries again: the other one
         * finishes in well under a second, so a few tries are plenty. */
        for (unsigned busy = 0;;) {
                bool done = false;

                sd_bus_error_free(error);
                k = pg_migrate_step(r, &done, error);
                if (k == -EAGAIN && ++busy < 10)
                        continue;
                if (k < 0)
                        return k;
                if (done)
                        return 0;
        }
}

static int repository_migrate(Repository *r, sd_bus_error *error) {
        if (db_backend(r->db) == DB_BACKEND_POSTGRESQL)
                return repository_migrate_postgresql(r, error);
        return repository_migrate_sqlite(r, error);
}

int repository_open(const char *path, RepositoryOpenFlags flags, Repository **ret, sd_bus_error *error) {
        _cleanup_(repository_freep) Repository *r = NULL;
        _cleanup_free_ char *message = NULL;
        bool memory;
        int k;

        assert(path);
        assert(ret);

        memory = streq(path, REPOSITORY_MEMORY);

        r = calloc(1, sizeof(Repository));
        if (!r)
                return -ENOMEM;
        r->read_only = (flags & REPOSITORY_READ_ONLY) && !memory;
        r->timestamps_utc = flags & REPOSITORY_TIMESTAMPS_UTC;

        /* The connection's set-up (busy timeout, foreign keys, WAL, the checks that the file is a writable
         * database) is the backend's (db-sqlite.c); its message says what went wrong, with the location. */
        k = db_open(path, r->read_only ? DB_OPEN_READ_ONLY : 0, &r->db, &message);
        if (k == -ENOMEM)
                return k;
        if (k < 0) {
                if (message)
                        return sd_bus_error_setf(error, k == -EAGAIN ? BATCH_ERROR_DATABASE_BUSY : BATCH_ERROR_DATABASE,
                                                 "%s", message), k;
                return sd_bus_error_setf(error, BATCH_ERROR_DATABASE, "Failed to open the database in %s: %s",
                                         path, strerror(-k)), k;
        }

        k = repository_migrate(r, error);
        if (k < 0)
                return k;

        if (!memory && db_backend(r->db) == DB_BACKEND_SQLITE) {
                struct stat st;

                if (stat(path, &st) < 0)
                        return sd_bus_error_setf(error, BATCH_ERROR_DATABASE, "Failed to stat %s: %m", path), -errno;
                r->dev = st.st_dev;
                r->ino = st.st_ino;
        }

        *ret = TAKE_PTR(r);
        return 0;
}

Repository *repository_free(Repository *r) {
        if (!r)
                return NULL;
        /* The statements belong to the connection and go with it. */
        db_free(r->db);
        return mfree(r);
}

char *repository_timestamp_format(Repository *r, usec_t t, char buf[static TIMESTAMP_MAX]) {
        assert(r);
        return timestamp_format_zone(t, r->timestamps_utc, buf);
}

int repository_timestamp_parse(Repository *r, const char *s, usec_t *ret) {
        assert(r);
        return timestamp_parse_zone(s, r->timestamps_utc, ret);
}

Db *repository_get_db(Repository *r) {
        assert(r);
        return r->db;
}

void repository_set_context_format(Repository *r, ContextFormat f) {
        assert(r);
        assert(f >= 0 && f < _CONTEXT_FORMAT_MAX);
        r->context_format = f;
}

int repository_schema_version(Repository *r) {
        int64_t v;
        int k;

        assert(r);

        if (db_backend(r->db) == DB_BACKEND_POSTGRESQL)
                k = pg_schema_version(r, &v, NULL);
        else
                k = schema_query_int(r, SCHEMA_SQL_USER_VERSION, &v, NULL);
        return k < 0 ? k : (int) v;
}

/* ---- the file we opened ---- */

int repository_check_file(Repository *r, sd_bus_error *error) {
        struct stat st;

        assert(r);

        if (r->ino == 0)        /* in memory */
                return 0;
        /* Only a missing file or another inode counts; a stat() that fails otherwise proves nothing. */
        if (!r->replaced) {
                if (stat(db_location(r->db), &st) < 0)
                        r->replaced = errno == ENOENT;
                else
                        r->replaced = st.st_dev != r->dev || st.st_ino != r->ino;
                if (r->replaced && r->replaced_callback)
                        r->replaced_callback(r, r->replaced_userdata);
        }
        if (r->replaced)
                return sd_bus_error_setf(error, BATCH_ERROR_DATABASE_REPLACED,
                                         "Database %s was deleted or replaced while batchd had it open; nothing "
                                         "is written to it until batchd is restarted or reloaded.", db_location(r->db)),
                       -EIDRM;
        return 0;
}

bool repository_is_replaced(Repository *r) {
        return r && r->replaced;
}

void repository_set_replaced_callback(Repository *r, void (*callback)(Repository *r, void *userdata), void *userdata) {
        assert(r);
        r->replaced_callback = callback;
        r->replaced_userdata = userdata;
}

/* ---- connection settings ---- */

void repository_set_response_deadline(Repository *r, unsigned msec) {
        assert(r);
        db_set_response_deadline(r->db, msec);
}

void repository_set_busy_timeout(Repository *r, unsigned msec) {
        assert(r);
        db_set_busy_timeout(r->db, msec);
}

int repository_inject_fault(Repository *r, const char *sql_prefix, unsigned n, unsigned count, int error) {
        assert(r);
        assert(error < 0);

        return db_inject_fault(r->db, sql_prefix, n, count, error);
}

/* Cuts the last ":field" off spec and returns it. */
static char *split_last(char *spec) {
        char *colon = strrchr(spec, ':');

        if (!colon)
                return NULL;
        *colon = '\0';
        return colon + 1;
}

static bool parse_unsigned(const char *s, unsigned *ret) {
        unsigned long v;
        char *end;

        if (isempty(s) || !strchr("0123456789", s[0]))
                return false;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || *end != '\0' || v == 0 || v > UINT_MAX)
                return false;
        *ret = (unsigned) v;
        return true;
}

int repository_inject_fault_from_environment(Repository *r) {
        /* The names stay SQLite's, as the tests and docs spell them; what fails is the errno of db.h. */
        static const struct {
                const char *name;
                int error;
        } codes[] = {
                { "BUSY",  -EAGAIN },
                { "FULL",  -ENOSPC },
                { "IOERR", -EIO    },
                { "NOMEM", -ENOMEM },
        };
        _cleanup_free_ char *spec = NULL;
        const char *e = getenv("BATCHD_TEST_FAULT");
        unsigned n, count = 1;
        char *field;
        int error = 0;

        assert(r);

        if (isempty(e))
                return 0;
        spec = strdup(e);
        if (!spec)
                return -ENOMEM;
        /* "<sql prefix>:<n>:<code>[:<count>]"; the prefix may contain colons itself. */
        field = split_last(spec);
        if (field && parse_unsigned(field, &count))
                field = split_last(spec);
        for (size_t i = 0; field && i < ELEMENTSOF(codes); i++)
                if (streq(field, codes[i].name))
                        error = codes[i].error;
        field = error < 0 ? split_last(spec) : NULL;
        if (!field || !parse_unsigned(field, &n))
                return -EINVAL;
        log_warning("Test fault injection: executions %u to %u of \"%s...\" fail with %s.", n, n + count - 1, spec,
                    strerror(-error));
        return repository_inject_fault(r, spec, n, count, error);
}
