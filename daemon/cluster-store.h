/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "repository.h"

/* The cluster's records (schema/007-cluster.sql, schema/postgresql/003-cluster.sql), written once against db.h for
 * both backends: nodes and their heartbeats on the database's clock, who owns which execution, which node claimed
 * which scheduled fire, and the job definitions each node holds. docs/cluster.md has the contract.
 *
 * Every call runs on the repository's connection and joins an open RepositoryTransaction (a fire is claimed in
 * the same transaction as the execution it creates); sequences that must be atomic take their own. Statements
 * are prepared once per store. Results are negative errno as in db.h, plus:
 *   -ESTALE   the node's epoch moved or it is no longer ACTIVE: another node declared it dead. */

typedef struct ClusterStore ClusterStore;

#define NODE_NAME_MAX 100
/* How many fire claims one prune removes at most: a prune is one short transaction in the loop. */
#define CLUSTER_PRUNE_MAX 10000

typedef enum NodeState {
        NODE_ACTIVE,
        NODE_STOPPED,
        NODE_DEAD,
        _NODE_STATE_MAX,
        _NODE_STATE_INVALID = -EINVAL,
} NodeState;

const char *node_state_to_string(NodeState s) _pure_;
NodeState node_state_from_string(const char *s) _pure_;

typedef struct NodeInfo {
        char *name;
        char *boot_id;
        int64_t epoch;
        NodeState state;
        usec_t started;                 /* database clock */
        usec_t heartbeat;               /* database clock */
        char *jobs_hash;                /* NULL when never reported */
        char *dead_reason;              /* NULL unless DEAD */
        uint64_t n_running;             /* running executions it owns */
        bool drift;                     /* an ACTIVE node defines one of its jobs differently */
} NodeInfo;

void node_info_array_free(NodeInfo *a, size_t n);

/* A node another one declared dead, and the executions that were failed for it. */
typedef struct DeadNode {
        char *name;
        int64_t epoch;                  /* the new one, after the death */
        usec_t heartbeat;               /* its last heartbeat, database clock */
        int64_t *execution_ids;
        size_t n_executions;
} DeadNode;

void dead_node_array_free(DeadNode *a, size_t n);

/* A job that this node and another ACTIVE one define differently. */
typedef struct JobDrift {
        char *job_name;
        char *other_node;
} JobDrift;

void job_drift_array_free(JobDrift *a, size_t n);

int cluster_store_new(Repository *r, ClusterStore **ret);
ClusterStore *cluster_store_free(ClusterStore *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(ClusterStore *, cluster_store_free);

/* The database's clock, microseconds since the epoch. */
int cluster_store_now(ClusterStore *s, usec_t *ret);

/* Joins (or rejoins) the cluster: the row is created or taken over, EPOCH + 1, ACTIVE, heartbeat now. */
int cluster_store_register(ClusterStore *s, const char *node, const char *boot_id, const char *jobs_hash,
                           int64_t *ret_epoch);
/* Renews the lease. -ESTALE: the node is no longer ACTIVE at this epoch (declared dead). */
int cluster_store_heartbeat(ClusterStore *s, const char *node, int64_t epoch);
/* Clean shutdown: STOPPED, so nobody declares the node dead. -ESTALE as for a heartbeat. */
int cluster_store_stop_node(ClusterStore *s, const char *node, int64_t epoch);

/* Every ACTIVE node other than self whose heartbeat is older than timeout on the database's clock becomes DEAD
 * (EPOCH + 1), and its running executions and their running steps FAILED, with END_TIME, a message naming the
 * node and VERSION + 1 (so the zombie's next write of them is refused by the optimistic lock), in one
 * transaction. Concurrent callers on several nodes: each node dies once, by one of them. */
int cluster_store_declare_dead(ClusterStore *s, const char *self, usec_t timeout, DeadNode **ret, size_t *ret_n);

/* Reconciliation: the running executions owned by node under an epoch below below_epoch (INT64_MAX: any), and
 * with include_unowned those with no owner at all, and their running steps, become FAILED with message. One
 * transaction. The ids of the executions come back in *ret_ids (may be NULL). */
int cluster_store_fail_executions(ClusterStore *s, const char *node, int64_t below_epoch, bool include_unowned,
                                  const char *message, int64_t **ret_ids, size_t *ret_n);

/* Claims the fire (job, scheduled) for node. 1: claimed, the caller runs it or records its non-run. 0: another
 * node (or an earlier attempt) claimed it; record nothing. scheduled is the time from the calendar, never now. */
int cluster_store_claim_fire(ClusterStore *s, const char *job, usec_t scheduled, const char *node);
int cluster_store_set_fire_execution(ClusterStore *s, const char *job, usec_t scheduled, int64_t execution_id);
/* The node that claimed a fire: -ENOENT when nobody did. */
int cluster_store_get_fire(ClusterStore *s, const char *job, usec_t scheduled, char **ret_node,
                           int64_t *ret_execution_id);

int cluster_store_set_owner(ClusterStore *s, int64_t execution_id, const char *node, int64_t epoch);
/* -ENOENT when the execution has no owner on record (run by a batchd outside a cluster, or by Spring). */
int cluster_store_get_owner(ClusterStore *s, int64_t execution_id, char **ret_node, int64_t *ret_epoch);

/* Running executions (STARTING, STARTED, STOPPING) across the cluster; job_name NULL: of every job. */
int cluster_store_count_running(ClusterStore *s, const char *job_name, uint64_t *ret);
/* A stop of an execution another node runs: STOPPING on record, for its owner to find. -ESRCH when it is not
 * STARTING or STARTED. VERSION is left alone, so the owner's own next write of the execution is not refused. */
int cluster_store_request_stop(ClusterStore *s, int64_t execution_id);
/* The executions node owns that are STOPPING on record: stops requested elsewhere. At most
 * REPOSITORY_PAGE_MAX. */
int cluster_store_get_stopping(ClusterStore *s, const char *node, int64_t **ret_ids, size_t *ret_n);

/* Serializes, until the end of the open transaction (-ENOTCONN without one), everything of every node that
 * takes the same key: a count of running executions and the launch it allows happen as one. PostgreSQL: a
 * transaction-level advisory lock; SQLite: nothing to do, the transaction holds the write lock. */
int cluster_store_lock(ClusterStore *s, const char *key);

/* Nodes by name, at most limit (0 or more than REPOSITORY_PAGE_MAX: that many), from offset. */
int cluster_store_list_nodes(ClusterStore *s, size_t offset, size_t limit, NodeInfo **ret, size_t *ret_n);

/* Replaces node's job definition hashes (names[i] has hashes[i]) and its JOBS_HASH in one transaction. */
int cluster_store_set_jobs(ClusterStore *s, const char *node, const char *jobs_hash, char *const *names,
                           char *const *hashes, size_t n);
/* The jobs node defines differently from another ACTIVE node; at most REPOSITORY_PAGE_MAX. */
int cluster_store_get_drift(ClusterStore *s, const char *node, JobDrift **ret, size_t *ret_n);

/* Retention: fire claims older than keep (database clock), at most CLUSTER_PRUNE_MAX per call. (Owner rows go
 * with their executions, in repository_delete_old().) */
int cluster_store_prune(ClusterStore *s, usec_t keep, uint64_t *ret_deleted);
