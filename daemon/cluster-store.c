/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <inttypes.h>

#include "cluster-store.h"
#include "db.h"
#include "log.h"

/* The statements, each written once. "@NOW@" stands for the database's clock in microseconds since the epoch,
 * the only part spelled per dialect: heartbeats, claims and death are judged on the clock all nodes share, never
 * on a node's own (which may be skewed by any amount). */
#define NOW_TOKEN "@NOW@"
static const char *const now_sql[_DB_BACKEND_MAX] = {
        /* 'now' is fixed for the length of one statement, with millisecond precision. */
        [DB_BACKEND_SQLITE] = "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)",
        /* clock_timestamp(), not now(): now() is when the transaction began. */
        [DB_BACKEND_POSTGRESQL] = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT",
};

#define RUNNING_E "(E.STATUS = 'STARTING' OR E.STATUS = 'STARTED' OR E.STATUS = 'STOPPING')"
#define RUNNING_X "(STATUS = 'STARTING' OR STATUS = 'STARTED' OR STATUS = 'STOPPING')"
/* Every statement about running executions starts from them (the partial index of schema/004, which only
 * matches its own spelling, RUNNING_E/RUNNING_X) and looks their owner up by primary key: walking a node's
 * owner rows instead would walk its whole history. */
#define OWNED_BY(execution_id, node) \
        "EXISTS (SELECT 1 FROM BATCHD_EXECUTION_OWNER O WHERE O.JOB_EXECUTION_ID = " execution_id \
        " AND O.NODE_NAME = " node ")"

typedef enum ClusterSql {
        CS_NOW,
        CS_REGISTER,
        CS_HEARTBEAT,
        CS_STOP_NODE,
        CS_COUNT_STALE,
        CS_DECLARE_DEAD,
        CS_FAIL_NODE_STEPS,
        CS_FAIL_NODE_EXECUTIONS,
        CS_FAIL_UNOWNED_STEPS,
        CS_FAIL_UNOWNED_EXECUTIONS,
        CS_CLAIM_FIRE,
        CS_SET_FIRE_EXECUTION,
        CS_GET_FIRE,
        CS_SET_OWNER,
        CS_GET_OWNER,
        CS_COUNT_RUNNING,
        CS_COUNT_RUNNING_OF_JOB,
        CS_REQUEST_STOP,
        CS_NOTIFY_STOP,
        CS_GET_STOPPING,
        CS_LIST_NODES,
        CS_SET_JOBS_HASH,
        CS_DELETE_JOBS,
        CS_INSERT_JOB,
        CS_GET_DRIFT,
        CS_PRUNE_FIRES,
        CS_LOCK,
        _CS_MAX,
} ClusterSql;

static const char *const cluster_sql[_CS_MAX] = {
        [CS_NOW] = "SELECT " NOW_TOKEN,
        [CS_REGISTER] =
                "INSERT INTO BATCHD_NODE (NODE_NAME, BOOT_ID, EPOCH, STATE, STARTED_USEC, HEARTBEAT_USEC, JOBS_HASH, "
                "DEAD_REASON) VALUES (?1, ?2, 1, 'ACTIVE', " NOW_TOKEN ", " NOW_TOKEN ", ?3, NULL) "
                "ON CONFLICT (NODE_NAME) DO UPDATE SET BOOT_ID = excluded.BOOT_ID, EPOCH = BATCHD_NODE.EPOCH + 1, "
                "STATE = 'ACTIVE', STARTED_USEC = excluded.STARTED_USEC, HEARTBEAT_USEC = excluded.HEARTBEAT_USEC, "
                "JOBS_HASH = excluded.JOBS_HASH, DEAD_REASON = NULL "
                "RETURNING EPOCH",
        /* No row changed: the epoch moved on or the node is no longer ACTIVE, i.e. it was declared dead. */
        [CS_HEARTBEAT] =
                "UPDATE BATCHD_NODE SET HEARTBEAT_USEC = " NOW_TOKEN " "
                "WHERE NODE_NAME = ?1 AND EPOCH = ?2 AND STATE = 'ACTIVE'",
        [CS_STOP_NODE] =
                "UPDATE BATCHD_NODE SET STATE = 'STOPPED', HEARTBEAT_USEC = " NOW_TOKEN " "
                "WHERE NODE_NAME = ?1 AND EPOCH = ?2 AND STATE = 'ACTIVE'",
        /* A read first: the write (and, on SQLite, the write lock) only when somebody is late. */
        [CS_COUNT_STALE] =
                "SELECT COUNT(*) FROM BATCHD_NODE "
                "WHERE STATE = 'ACTIVE' AND NODE_NAME <> ?1 AND HEARTBEAT_USEC < " NOW_TOKEN " - ?2",
        /* At READ COMMITTED two survivors race for the same row: the second one's UPDATE waits for the first,
         * then finds STATE = 'DEAD' and changes nothing, so each death (and what follows from it) happens once. */
        [CS_DECLARE_DEAD] =
                "UPDATE BATCHD_NODE SET STATE = 'DEAD', EPOCH = EPOCH + 1, DEAD_REASON = ?3 "
                "WHERE STATE = 'ACTIVE' AND NODE_NAME <> ?1 AND HEARTBEAT_USEC < " NOW_TOKEN " - ?2 "
                "RETURNING NODE_NAME, EPOCH, HEARTBEAT_USEC",
        /* Steps first, while their executions are still on record as running. VERSION + 1 fences the node
         * that ran them: whatever it still writes with the version it holds matches no row. */
        [CS_FAIL_NODE_STEPS] =
                "UPDATE BATCH_STEP_EXECUTION SET STATUS = 'FAILED', EXIT_CODE = 'FAILED', EXIT_MESSAGE = ?3, "
                "END_TIME = COALESCE(END_TIME, ?4), LAST_UPDATED = ?4, VERSION = VERSION + 1 "
                "WHERE " RUNNING_X " AND JOB_EXECUTION_ID IN (SELECT E.JOB_EXECUTION_ID FROM BATCH_JOB_EXECUTION E "
                "WHERE " RUNNING_E " AND EXISTS (SELECT 1 FROM BATCHD_EXECUTION_OWNER O "
                "WHERE O.JOB_EXECUTION_ID = E.JOB_EXECUTION_ID AND O.NODE_NAME = ?1 AND O.NODE_EPOCH < ?2))",
        [CS_FAIL_NODE_EXECUTIONS] =
                "UPDATE BATCH_JOB_EXECUTION SET STATUS = 'FAILED', EXIT_CODE = 'FAILED', EXIT_MESSAGE = ?3, "
                "END_TIME = COALESCE(END_TIME, ?4), LAST_UPDATED = ?4, VERSION = VERSION + 1 "
                "WHERE " RUNNING_X " AND EXISTS (SELECT 1 FROM BATCHD_EXECUTION_OWNER O "
                "WHERE O.JOB_EXECUTION_ID = BATCH_JOB_EXECUTION.JOB_EXECUTION_ID AND O.NODE_NAME = ?1 "
                "AND O.NODE_EPOCH < ?2) "
                "RETURNING JOB_EXECUTION_ID",
        [CS_FAIL_UNOWNED_STEPS] =
                "UPDATE BATCH_STEP_EXECUTION SET STATUS = 'FAILED', EXIT_CODE = 'FAILED', EXIT_MESSAGE = ?1, "
                "END_TIME = COALESCE(END_TIME, ?2), LAST_UPDATED = ?2, VERSION = VERSION + 1 "
                "WHERE " RUNNING_X " AND JOB_EXECUTION_ID IN (SELECT E.JOB_EXECUTION_ID FROM BATCH_JOB_EXECUTION E "
                "WHERE " RUNNING_E " AND NOT EXISTS (SELECT 1 FROM BATCHD_EXECUTION_OWNER O "
                "WHERE O.JOB_EXECUTION_ID = E.JOB_EXECUTION_ID))",
        [CS_FAIL_UNOWNED_EXECUTIONS] =
                "UPDATE BATCH_JOB_EXECUTION SET STATUS = 'FAILED', EXIT_CODE = 'FAILED', EXIT_MESSAGE = ?1, "
                "END_TIME = COALESCE(END_TIME, ?2), LAST_UPDATED = ?2, VERSION = VERSION + 1 "
                "WHERE " RUNNING_X " AND NOT EXISTS (SELECT 1 FROM BATCHD_EXECUTION_OWNER O "
                "WHERE O.JOB_EXECUTION_ID = BATCH_JOB_EXECUTION.JOB_EXECUTION_ID) "
                "RETURNING JOB_EXECUTION_ID",
        /* A concurrent claim of the same fire waits for the first transaction and then does nothing (or
         * inserts, when the first one rolled back): the primary key serializes, no lock of ours. */
        [CS_CLAIM_FIRE] =
                "INSERT INTO BATCHD_JOB_FIRE (JOB_NAME, SCHEDULED_USEC, NODE_NAME, CLAIMED_USEC, JOB_EXECUTION_ID) "
                "VALUES (?1, ?2, ?3, " NOW_TOKEN ", NULL) ON CONFLICT (JOB_NAME, SCHEDULED_USEC) DO NOTHING",
        [CS_SET_FIRE_EXECUTION] =
                "UPDATE BATCHD_JOB_FIRE SET JOB_EXECUTION_ID = ?3 WHERE JOB_NAME = ?1 AND SCHEDULED_USEC = ?2",
        [CS_GET_FIRE] =
                "SELECT NODE_NAME, JOB_EXECUTION_ID FROM BATCHD_JOB_FIRE WHERE JOB_NAME = ?1 AND SCHEDULED_USEC = ?2",
        [CS_SET_OWNER] =
                "INSERT INTO BATCHD_EXECUTION_OWNER (JOB_EXECUTION_ID, NODE_NAME, NODE_EPOCH) VALUES (?1, ?2, ?3) "
                "ON CONFLICT (JOB_EXECUTION_ID) DO UPDATE SET NODE_NAME = excluded.NODE_NAME, "
                "NODE_EPOCH = excluded.NODE_EPOCH",
        [CS_GET_OWNER] =
                "SELECT NODE_NAME, NODE_EPOCH FROM BATCHD_EXECUTION_OWNER WHERE JOB_EXECUTION_ID = ?1",
        /* From the partial index of running executions (schema/004), spelled as it is. */
        [CS_COUNT_RUNNING] =
                "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION E WHERE " RUNNING_E,
        [CS_COUNT_RUNNING_OF_JOB] =
                "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION E WHERE " RUNNING_E " AND EXISTS (SELECT 1 "
                "FROM BATCH_JOB_INSTANCE I WHERE I.JOB_INSTANCE_ID = E.JOB_INSTANCE_ID AND I.JOB_NAME = ?1)",
        [CS_REQUEST_STOP] =
                "UPDATE BATCH_JOB_EXECUTION SET STATUS = 'STOPPING' "
                "WHERE JOB_EXECUTION_ID = ?1 AND (STATUS = 'STARTING' OR STATUS = 'STARTED')",
        /* PostgreSQL only: the owner's listener (db-listen.c) wakes at once. Delivered at COMMIT, so never
         * before the STOPPING it announces is visible; lost while the owner is disconnected, when its
         * heartbeat's poll finds the stop instead. */
        [CS_NOTIFY_STOP] =
                "SELECT pg_notify('batchd_stop', O.NODE_NAME) FROM BATCHD_EXECUTION_OWNER O "
                "WHERE O.JOB_EXECUTION_ID = ?1",
        [CS_GET_STOPPING] =
                "SELECT E.JOB_EXECUTION_ID FROM BATCH_JOB_EXECUTION E WHERE " RUNNING_E " AND E.STATUS = 'STOPPING' "
                "AND " OWNED_BY("E.JOB_EXECUTION_ID", "?1") " ORDER BY E.JOB_EXECUTION_ID LIMIT ?2",
        [CS_LIST_NODES] =
                "SELECT N.NODE_NAME, N.BOOT_ID, N.EPOCH, N.STATE, N.STARTED_USEC, N.HEARTBEAT_USEC, N.JOBS_HASH, "
                "N.DEAD_REASON, "
                "(SELECT COUNT(*) FROM BATCH_JOB_EXECUTION E WHERE " RUNNING_E
                " AND " OWNED_BY("E.JOB_EXECUTION_ID", "N.NODE_NAME") "), "
                "(SELECT COUNT(*) FROM BATCHD_NODE_JOB J1 JOIN BATCHD_NODE_JOB J2 ON J2.JOB_NAME = J1.JOB_NAME "
                " JOIN BATCHD_NODE N2 ON N2.NODE_NAME = J2.NODE_NAME "
                " WHERE J1.NODE_NAME = N.NODE_NAME AND J2.NODE_NAME <> N.NODE_NAME "
                " AND J2.DEFINITION_HASH <> J1.DEFINITION_HASH AND N2.STATE = 'ACTIVE') "
                "FROM BATCHD_NODE N ORDER BY N.NODE_NAME LIMIT ?1 OFFSET ?2",
        [CS_SET_JOBS_HASH] =
                "UPDATE BATCHD_NODE SET JOBS_HASH = ?2 WHERE NODE_NAME = ?1",
        [CS_DELETE_JOBS] =
                "DELETE FROM BATCHD_NODE_JOB WHERE NODE_NAME = ?1",
        [CS_INSERT_JOB] =
                "INSERT INTO BATCHD_NODE_JOB (NODE_NAME, JOB_NAME, DEFINITION_HASH) VALUES (?1, ?2, ?3)",
        [CS_GET_DRIFT] =
                "SELECT J1.JOB_NAME, J2.NODE_NAME FROM BATCHD_NODE_JOB J1 JOIN BATCHD_NODE_JOB J2 "
                "ON J2.JOB_NAME = J1.JOB_NAME JOIN BATCHD_NODE N2 ON N2.NODE_NAME = J2.NODE_NAME "
                "WHERE J1.NODE_NAME = ?1 AND J2.NODE_NAME <> ?1 AND J2.DEFINITION_HASH <> J1.DEFINITION_HASH "
                "AND N2.STATE = 'ACTIVE' ORDER BY J1.JOB_NAME, J2.NODE_NAME LIMIT ?2",
        /* Bounded, oldest first, by the claim-time index. */
        [CS_PRUNE_FIRES] =
                "DELETE FROM BATCHD_JOB_FIRE WHERE (JOB_NAME, SCHEDULED_USEC) IN (SELECT JOB_NAME, SCHEDULED_USEC "
                "FROM BATCHD_JOB_FIRE WHERE CLAIMED_USEC < " NOW_TOKEN " - ?1 ORDER BY CLAIMED_USEC LIMIT ?2)",
        /* PostgreSQL only (a SQLite transaction holds the database's write lock already). Transaction-level:
         * released by COMMIT or ROLLBACK, never left behind by a lost session or a pooling proxy. */
        [CS_LOCK] = "SELECT pg_advisory_xact_lock(hashtext(?1))",
};

struct ClusterStore {
        Repository *repository;
        Db *db;
        DbStatement *stmts[_CS_MAX];
};

static const char *const node_state_table[_NODE_STATE_MAX] = {
        [NODE_ACTIVE] = "ACTIVE",
        [NODE_STOPPED] = "STOPPED",
        [NODE_DEAD] = "DEAD",
};

const char *node_state_to_string(NodeState s) {
        return s >= 0 && s < _NODE_STATE_MAX ? node_state_table[s] : NULL;
}

NodeState node_state_from_string(const char *s) {
        for (NodeState i = 0; s && i < _NODE_STATE_MAX; i++)
                if (streq(node_state_table[i], s))
                        return i;
        return _NODE_STATE_INVALID;
}

void node_info_array_free(NodeInfo *a, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(a[i].name);
                free(a[i].boot_id);
                free(a[i].jobs_hash);
                free(a[i].dead_reason);
        }
        free(a);
}

void dead_node_array_free(DeadNode *a, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(a[i].name);
                free(a[i].execution_ids);
        }
        free(a);
}

void job_drift_array_free(JobDrift *a, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(a[i].job_name);
                free(a[i].other_node);
        }
        free(a);
}

int cluster_store_new(Repository *r, ClusterStore **ret) {
        ClusterStore *s;

        assert(r);
        assert(ret);

        s = calloc(1, sizeof(ClusterStore));
        if (!s)
                return -ENOMEM;
        s->repository = r;
        s->db = repository_get_db(r);
        *ret = s;
        return 0;
}

ClusterStore *cluster_store_free(ClusterStore *s) {
        /* The statements belong to the connection (db.h). */
        return mfree(s);
}

/* The statement's text for this backend: the clock token replaced by its spelling. */
static int cluster_sql_text(ClusterStore *s, ClusterSql id, char **ret) {
        const char *sql = cluster_sql[id], *now = now_sql[db_backend(s->db)];
        size_t l = 0, n = strlen(NOW_TOKEN), m = strlen(now);
        const char *p;
        char *t, *q;

        for (p = sql; (p = strstr(p, NOW_TOKEN)); p += n)
                l++;
        t = malloc(strlen(sql) + l * m + 1);
        if (!t)
                return -ENOMEM;
        for (p = sql, q = t; *p;) {
                if (strneq(p, NOW_TOKEN, n)) {
                        q = stpcpy(q, now);
                        p += n;
                } else
                        *q++ = *p++;
        }
        *q = 0;
        *ret = t;
        return 0;
}

static int cs_stmt(ClusterStore *s, ClusterSql id, DbStatement **ret) {
        int k;

        if (!s->stmts[id]) {
                _cleanup_free_ char *sql = NULL;

                k = cluster_sql_text(s, id, &sql);
                if (k < 0)
                        return k;
                k = db_prepare(s->db, sql, &s->stmts[id]);
                if (k < 0) {
                        log_debug("Failed to prepare \"%s\": %s", sql, db_errmsg(s->db));
                        return k;
                }
        }
        *ret = s->stmts[id];
        return 0;
}

/* Runs a statement that returns no rows (or whose rows do not matter). */
static int cs_run(DbStatement *st) {
        int k;

        do
                k = db_step(st);
        while (k == DB_ROW);
        return k;
}

static int column_strdup(DbStatement *st, int i, char **ret) {
        const char *t = db_column_text(st, i);

        if (!t) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(t);
        return *ret ? 0 : -ENOMEM;
}

static int append_id(int64_t **a, size_t *n, int64_t id) {
        int64_t *b = reallocarray(*a, *n + 1, sizeof(int64_t));

        if (!b)
                return -ENOMEM;
        b[(*n)++] = id;
        *a = b;
        return 0;
}

int cluster_store_now(ClusterStore *s, usec_t *ret) {
        _cleanup_db_reset_ DbStatement *st = NULL;
        int k;

        assert(s);
        assert(ret);

        k = cs_stmt(s, CS_NOW, &st);
        if (k < 0)
                return k;
        k = db_step(st);
        if (k < 0)
                return k;
        if (k != DB_ROW)
                return -EIO;
        *ret = (usec_t) db_column_int64(st, 0);
        return 0;
}

int cluster_store_register(ClusterStore *s, const char *node, const char *boot_id, const char *jobs_hash,
                           int64_t *ret_epoch) {
        _cleanup_db_reset_ DbStatement *st = NULL;
        int k;

        assert(s);
        assert(node);
        assert(boot_id);
        assert(ret_epoch);

        k = cs_stmt(s, CS_REGISTER, &st);
        if (k < 0)
                return k;
        db_bind_text(st, 1, node);
        db_bind_text(st, 2, boot_id);
        db_bind_text(st, 3, jobs_hash);
        k = db_step(st);
        if (k < 0)
                return k;
        if (k != DB_ROW)
                return -EIO;
        *ret_epoch = db_column_int64(st, 0);
        return cs_run(st);
}

static int node_update(ClusterStore *s, ClusterSql id, const char *node, int64_t epoch) {
        _cleanup_db_reset_ DbStatement *st = NULL;
        int k;

        assert(s);
        assert(node);

        k = cs_stmt(s, id, &st);
        if (k < 0)
                return k;
        db_bind_text(st, 1, node);
        db_bind_int64(st, 2, epoch);
        k = cs_run(st);
        if (k < 0)
                return k;
        return db_changes(s->db) > 0 ? 0 : -ESTALE;
}

int cluster_store_heartbeat(ClusterStore *s, const char *node, int64_t epoch) {
        return node_update(s, CS_HEARTBEAT, node, epoch);
}

int cluster_store_stop_node(ClusterStore *s, const char *node, int64_t epoch) {
        return node_update(s, CS_STOP_NODE, node, epoch);
}

/* Collects the JOB_EXECUTION_ID rows of an UPDATE ... RETURNING. */
static int collect_ids(DbStatement *st, int64_t **ids, size_t *n) {
        int k;

        while ((k = db_step(st)) == DB_ROW) {
                k = append_id(ids, n, db_column_int64(st, 0));
                if (k < 0)
                        return k;
        }
        return k;
}

/* The body of cluster_store_fail_executions(), inside the caller's transaction. */
static int fail_executions(ClusterStore *s, const char *node, int64_t below_epoch, bool include_unowned,
                           const char *message, int64_t **ids, size_t *n) {
        char end[TIMESTAMP_MAX];
        const char *end_text;
        int k;

        /* END_TIME is display data in Spring's format and time zone, like every other time of these tables; the
         * decision itself was taken on the database's clock. */
        end_text = repository_timestamp_format(s->repository, now_usec(CLOCK_REALTIME), end);

        if (node) {
                _cleanup_db_reset_ DbStatement *steps = NULL, *execs = NULL;

                k = cs_stmt(s, CS_FAIL_NODE_STEPS, &steps);
                if (k < 0)
                        return k;
                db_bind_text(steps, 1, node);
                db_bind_int64(steps, 2, below_epoch);
                db_bind_text(steps, 3, message);
                db_bind_text(steps, 4, end_text);
                k = cs_run(steps);
                if (k < 0)
                        return k;

                k = cs_stmt(s, CS_FAIL_NODE_EXECUTIONS, &execs);
                if (k < 0)
                        return k;
                db_bind_text(execs, 1, node);
                db_bind_int64(execs, 2, below_epoch);
                db_bind_text(execs, 3, message);
                db_bind_text(execs, 4, end_text);
                k = collect_ids(execs, ids, n);
                if (k < 0)
                        return k;
        }

        if (include_unowned) {
                _cleanup_db_reset_ DbStatement *steps = NULL, *execs = NULL;

                k = cs_stmt(s, CS_FAIL_UNOWNED_STEPS, &steps);
                if (k < 0)
                        return k;
                db_bind_text(steps, 1, message);
                db_bind_text(steps, 2, end_text);
                k = cs_run(steps);
                if (k < 0)
                        return k;

                k = cs_stmt(s, CS_FAIL_UNOWNED_EXECUTIONS, &execs);
                if (k < 0)
                        return k;
                db_bind_text(execs, 1, message);
                db_bind_text(execs, 2, end_text);
                k = collect_ids(execs, ids, n);
                if (k < 0)
                        return k;
        }
        return 0;
}

int cluster_store_fail_executions(ClusterStore *s, const char *node, int64_t below_epoch, bool include_unowned,
                                  const char *message, int64_t **ret_ids, size_t *ret_n) {
        _cleanup_(repository_transaction_done) RepositoryTransaction tx = {};
        _cleanup_free_ int64_t *ids = NULL;
        size_t n = 0;
        int k;

        assert(s);
        assert(message);

        k = repository_transaction_open(s->repository, &tx, NULL);
        if (k < 0)
                return k;
        k = fail_executions(s, node, below_epoch, include_unowned, message, &ids, &n);
        if (k < 0)
                return k;
        k = repository_transaction_commit(&tx, NULL);
        if (k < 0)
                return k;

        if (ret_ids)
                *ret_ids = TAKE_PTR(ids);
        if (ret_n)
                *ret_n = n;
        return 0;
}

int cluster_store_declare_dead(ClusterStore *s, const char *self, usec_t timeout, DeadNode **ret, size_t *ret_n) {
        _cleanup_(repository_transaction_done) RepositoryTransaction tx = {};
        DeadNode *dead = NULL;
        size_t n = 0;
        int k;

        assert(s);
        assert(self);
        assert(ret);
        assert(ret_n);

        {
                _cleanup_db_reset_ DbStatement *st = NULL;

                k = cs_stmt(s, CS_COUNT_STALE, &st);
                if (k < 0)
                        return k;
                db_bind_text(st, 1, self);
                db_bind_int64(st, 2, (int64_t) MIN(timeout, (usec_t) INT64_MAX));
                k = db_step(st);
                if (k < 0)
                        return k;
                if (k == DB_ROW && db_column_int64(st, 0) == 0) {
                        *ret = NULL;
                        *ret_n = 0;
                        return 0;
                }
        }

        k = repository_transaction_open(s->repository, &tx, NULL);
        if (k < 0)
                return k;

        {
                _cleanup_db_reset_ DbStatement *st = NULL;

                k = cs_stmt(s, CS_DECLARE_DEAD, &st);
                if (k < 0)
                        return k;
                db_bind_text(st, 1, self);
                db_bind_int64(st, 2, (int64_t) MIN(timeout, (usec_t) INT64_MAX));
                db_bind_text(st, 3, "stopped heartbeating");
                /* All rows first: the executions are failed with other statements. */
                while ((k = db_step(st)) == DB_ROW) {
                        DeadNode *a = reallocarray(dead, n + 1, sizeof(DeadNode));

                        if (!a) {
                                k = -ENOMEM;
                                break;
                        }
                        dead = a;
                        dead[n] = (DeadNode) {
                                .epoch = db_column_int64(st, 1),
                                .heartbeat = (usec_t) db_column_int64(st, 2),
                        };
                        k = column_strdup(st, 0, &dead[n].name);
                        n++;
                        if (k < 0)
                                break;
                }
        }

        for (size_t i = 0; k >= 0 && i < n; i++) {
                _cleanup_free_ char *message = NULL;
                char buf[TIMESTAMP_MAX];

                if (asprintf(&message, "Node %s stopped heartbeating at %s; marked FAILED.", dead[i].name,
                             strna(timestamp_format(dead[i].heartbeat, buf))) < 0) {
                        k = -ENOMEM;
                        break;
                }
                k = fail_executions(s, dead[i].name, dead[i].epoch, false, message, &dead[i].execution_ids,
                                    &dead[i].n_executions);
        }
        if (k >= 0)
                k = repository_transaction_commit(&tx, NULL);
        if (k < 0) {
                dead_node_array_free(dead, n);
                return k;
        }

        *ret = dead;
        *ret_n = n;
        return 0;
}

int cluster_store_claim_fire(ClusterStore *s, const char *job, usec_t scheduled, const char *node) {
        _cleanup_db_reset_ DbStatement *st = NULL;
        int k;

        assert(s);
        assert(job);
        assert(node);

        k = cs_stmt(s, CS_CLAIM_FIRE, &st);
        if (k < 0)
                return k;
        db_bind_text(st, 1, job);
        db_bind_int64(st, 2, (int64_t) scheduled);
        db_bind_text(st, 3, node);
        k = cs_run(st);
        if (k < 0)
                return k;
        return db_changes(s->db) > 0;
}

int cluster_store_set_fire_execution(ClusterStore *s, const char *job, usec_t scheduled, int64_t execution_id) {
        _cleanup_db_reset_ DbStatement *st = NULL;
        int k;

        assert(s);
        assert(job);

        k = cs_stmt(s, CS_SET_FIRE_EXECUTION, &st);
        if (k < 0)
                return k;
        db_bind_text(st, 1, job);
        db_bind_int64(st, 2, (int64_t) scheduled);
        db_bind_int64(st, 3, execution_id);
        return cs_run(st);
}

int cluster_store_get_fire(ClusterStore *s, const char *job, usec_t scheduled, char **ret_node,
                           int64_t *ret_execution_id) {
        _cleanup_db_reset_ DbStatement *st = NULL;
        int k;

        assert(s);
        assert(job);

        k = cs_stmt(s, CS_GET_FIRE, &st);
        if (k < 0)
                return k;
        db_bind_text(st, 1, job);
        db_bind_int64(st, 2, (int64_t) scheduled);
        k = db_step(st);
        if (k < 0)
                return k;
        if (k != DB_ROW)
                return -ENOENT;
        if (ret_execution_id)
                *ret_execution_id = db_column_is_null(st, 1) ? 0 : db_column_int64(st, 1);
        if (ret_node)
                return column_strdup(st, 0, ret_node);
        return 0;
}

int cluster_store_set_owner(ClusterStore *s, int64_t execution_id, const char *node, int64_t epoch) {
        _cleanup_db_reset_ DbStatement *st = NULL;
        int k;

        assert(s);
        assert(node);

        k = cs_stmt(s, CS_SET_OWNER, &st);
        if (k < 0)
                return k;
        db_bind_int64(st, 1, execution_id);
        db_bind_text(st, 2, node);
        db_bind_int64(st, 3, epoch);
        return cs_run(st);
}

int cluster_store_get_owner(ClusterStore *s, int64_t execution_id, char **ret_node, int64_t *ret_epoch) {
        _cleanup_db_reset_ DbStatement *st = NULL;
        int k;

        assert(s);

        k = cs_stmt(s, CS_GET_OWNER, &st);
        if (k < 0)
                return k;
        db_bind_int64(st, 1, execution_id);
        k = db_step(st);
        if (k < 0)
                return k;
        if (k != DB_ROW)
                return -ENOENT;
        if (ret_epoch)
                *ret_epoch = db_column_int64(st, 1);
        if (ret_node)
                return column_strdup(st, 0, ret_node);
        return 0;
}

int cluster_store_count_running(ClusterStore *s, const char *job_name, uint64_t *ret) {
        _cleanup_db_reset_ DbStatement *st = NULL;
        int k;

        assert(s);
        assert(ret);

        /* Two statements: a "?1 IS NULL OR" filter cannot use an index (nor be typed by PostgreSQL). */
        k = cs_stmt(s, job_name ? CS_COUNT_RUNNING_OF_JOB : CS_COUNT_RUNNING, &st);
        if (k < 0)
                return k;
        if (job_name)
                db_bind_text(st, 1, job_name);
        k = db_step(st);
        if (k < 0)
                return k;
        if (k != DB_ROW)
                return -EIO;
        *ret = (uint64_t) db_column_int64(st, 0);
        return 0;
}

int cluster_store_request_stop(ClusterStore *s, int64_t execution_id) {
        _cleanup_(repository_transaction_done) RepositoryTransaction tx = {};
        int k;

        assert(s);

        k = repository_transaction_open(s->repository, &tx, NULL);
        if (k < 0)
                return k;
        {
                _cleanup_db_reset_ DbStatement *st = NULL;

                k = cs_stmt(s, CS_REQUEST_STOP, &st);
                if (k < 0)
                        return k;
                db_bind_int64(st, 1, execution_id);
                k = cs_run(st);
                if (k < 0)
                        return k;
                if (db_changes(s->db) <= 0)
                        return -ESRCH;   /* rolled back: nothing written */
        }
        if (db_backend(s->db) == DB_BACKEND_POSTGRESQL) {
                _cleanup_db_reset_ DbStatement *st = NULL;

                k = cs_stmt(s, CS_NOTIFY_STOP, &st);
                if (k < 0)
                        return k;
                db_bind_int64(st, 1, execution_id);
                k = cs_run(st);
                if (k < 0)
                        return k;
        }
        return repository_transaction_commit(&tx, NULL);
}

int cluster_store_get_stopping(ClusterStore *s, const char *node, int64_t **ret_ids, size_t *ret_n) {
        _cleanup_db_reset_ DbStatement *st = NULL;
        _cleanup_free_ int64_t *ids = NULL;
        size_t n = 0;
        int k;

        assert(s);
        assert(node);
        assert(ret_ids);
        assert(ret_n);

        k = cs_stmt(s, CS_GET_STOPPING, &st);
        if (k < 0)
                return k;
        db_bind_text(st, 1, node);
        db_bind_int64(st, 2, REPOSITORY_PAGE_MAX);
        k = collect_ids(st, &ids, &n);
        if (k < 0)
                return k;
        *ret_ids = TAKE_PTR(ids);
        *ret_n = n;
        return 0;
}

int cluster_store_list_nodes(ClusterStore *s, size_t offset, size_t limit, NodeInfo **ret, size_t *ret_n) {
        _cleanup_db_reset_ DbStatement *st = NULL;
        NodeInfo *a = NULL;
        size_t n = 0;
        int k;

        assert(s);
        assert(ret);
        assert(ret_n);

        k = cs_stmt(s, CS_LIST_NODES, &st);
        if (k < 0)
                return k;
        db_bind_int64(st, 1, limit == 0 || limit > REPOSITORY_PAGE_MAX ? REPOSITORY_PAGE_MAX : (int64_t) limit);
        db_bind_int64(st, 2, (int64_t) MIN(offset, (size_t) INT64_MAX));

        while ((k = db_step(st)) == DB_ROW) {
                NodeInfo *b = reallocarray(a, n + 1, sizeof(NodeInfo));

                if (!b) {
                        k = -ENOMEM;
                        break;
                }
                a = b;
                a[n] = (NodeInfo) {
                        .epoch = db_column_int64(st, 2),
                        .state = node_state_from_string(db_column_text(st, 3)),
                        .started = (usec_t) db_column_int64(st, 4),
                        .heartbeat = (usec_t) db_column_int64(st, 5),
                        .n_running = (uint64_t) db_column_int64(st, 8),
                        .drift = db_column_int64(st, 9) > 0,
                };
                n++;
                if (column_strdup(st, 0, &a[n - 1].name) < 0 || column_strdup(st, 1, &a[n - 1].boot_id) < 0 ||
                    column_strdup(st, 6, &a[n - 1].jobs_hash) < 0 || column_strdup(st, 7, &a[n - 1].dead_reason) < 0) {
                        k = -ENOMEM;
                        break;
                }
        }
        if (k < 0) {
                node_info_array_free(a, n);
                return k;
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

int cluster_store_set_jobs(ClusterStore *s, const char *node, const char *jobs_hash, char *const *names,
                           char *const *hashes, size_t n) {
        _cleanup_(repository_transaction_done) RepositoryTransaction tx = {};
        int k;

        assert(s);
        assert(node);
        assert(n == 0 || (names && hashes));

        k = repository_transaction_open(s->repository, &tx, NULL);
        if (k < 0)
                return k;
        {
                _cleanup_db_reset_ DbStatement *st = NULL;

                k = cs_stmt(s, CS_SET_JOBS_HASH, &st);
                if (k < 0)
                        return k;
                db_bind_text(st, 1, node);
                db_bind_text(st, 2, jobs_hash);
                k = cs_run(st);
                if (k < 0)
                        return k;
        }
        {
                _cleanup_db_reset_ DbStatement *st = NULL;

                k = cs_stmt(s, CS_DELETE_JOBS, &st);
                if (k < 0)
                        return k;
                db_bind_text(st, 1, node);
                k = cs_run(st);
                if (k < 0)
                        return k;
        }
        for (size_t i = 0; i < n; i++) {
                _cleanup_db_reset_ DbStatement *st = NULL;

                k = cs_stmt(s, CS_INSERT_JOB, &st);
                if (k < 0)
                        return k;
                db_bind_text(st, 1, node);
                db_bind_text(st, 2, names[i]);
                db_bind_text(st, 3, hashes[i]);
                k = cs_run(st);
                if (k < 0)
                        return k;
        }
        return repository_transaction_commit(&tx, NULL);
}

int cluster_store_get_drift(ClusterStore *s, const char *node, JobDrift **ret, size_t *ret_n) {
        _cleanup_db_reset_ DbStatement *st = NULL;
        JobDrift *a = NULL;
        size_t n = 0;
        int k;

        assert(s);
        assert(node);
        assert(ret);
        assert(ret_n);

        k = cs_stmt(s, CS_GET_DRIFT, &st);
        if (k < 0)
                return k;
        db_bind_text(st, 1, node);
        db_bind_int64(st, 2, REPOSITORY_PAGE_MAX);
        while ((k = db_step(st)) == DB_ROW) {
                JobDrift *b = reallocarray(a, n + 1, sizeof(JobDrift));

                if (!b) {
                        k = -ENOMEM;
                        break;
                }
                a = b;
                a[n++] = (JobDrift) {};
                if (column_strdup(st, 0, &a[n - 1].job_name) < 0 || column_strdup(st, 1, &a[n - 1].other_node) < 0) {
                        k = -ENOMEM;
                        break;
                }
        }
        if (k < 0) {
                job_drift_array_free(a, n);
                return k;
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

int cluster_store_prune(ClusterStore *s, usec_t keep, uint64_t *ret_deleted) {
        _cleanup_(repository_transaction_done) RepositoryTransaction tx = {};
        uint64_t deleted = 0;
        int k;

        assert(s);

        k = repository_transaction_open(s->repository, &tx, NULL);
        if (k < 0)
                return k;
        {
                _cleanup_db_reset_ DbStatement *st = NULL;

                k = cs_stmt(s, CS_PRUNE_FIRES, &st);
                if (k < 0)
                        return k;
                db_bind_int64(st, 1, (int64_t) MIN(keep, (usec_t) INT64_MAX));
                db_bind_int64(st, 2, CLUSTER_PRUNE_MAX);
                k = cs_run(st);
                if (k < 0)
                        return k;
                deleted += (uint64_t) db_changes(s->db);
        }
        k = repository_transaction_commit(&tx, NULL);
        if (k < 0)
                return k;
        if (ret_deleted)
                *ret_deleted = deleted;
        return 0;
}

int cluster_store_lock(ClusterStore *s, const char *key) {
        _cleanup_db_reset_ DbStatement *st = NULL;
        int k;

        assert(s);
        assert(key);

        if (!db_in_transaction(s->db))
                return -ENOTCONN;
        if (db_backend(s->db) == DB_BACKEND_SQLITE)
                return 0;   /* BEGIN IMMEDIATE took the write lock: everything in the transaction is serialized */
        k = cs_stmt(s, CS_LOCK, &st);
        if (k < 0)
                return k;
        db_bind_text(st, 1, key);
        return cs_run(st);
}
