/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-event.h>

#include "cluster-store.h"
#include "conf.h"

/* This batchd as a node of a cluster (docs/cluster.md): it registers, renews its lease with heartbeats on the
 * database's clock, declares nodes that stopped heartbeating dead (failing their running executions), picks up
 * stops requested on other nodes, and fences itself when it cannot renew its own lease: before anyone may take
 * its executions for dead, it has stopped them and writes nothing more of them.
 *
 * Active only with a PostgreSQL repository, or with cluster = true in batchd.conf (several batchd on one SQLite
 * file): a lone batchd on SQLite has no Cluster and no periodic wakeups. Cluster never calls into the manager:
 * what it finds is reported through the callbacks the manager installs. */

typedef struct Cluster Cluster;

typedef struct ClusterCallbacks {
        /* The lease ran out (or another node declared this one dead): stop launching, kill every step, and
         * write nothing more about the running executions; they are ended-not-recorded. */
        void (*fence)(Cluster *c, const char *reason, void *userdata);
        /* Registered again under a new epoch after a fence: launching may go on. */
        void (*rejoined)(Cluster *c, void *userdata);
        /* Another node recorded a stop of an execution this node runs. */
        void (*stop_requested)(Cluster *c, int64_t execution_id, void *userdata);
        /* After every heartbeat: executions may have ended on other nodes, so queued fires may go now. */
        void (*tick)(Cluster *c, void *userdata);
} ClusterCallbacks;

/* Whether batchd with this configuration and repository runs as a cluster node. */
bool cluster_is_wanted(const Config *config, Repository *r);

/* Registers the node (a new epoch) and fails the executions it left running under earlier epochs, and those
 * with no owner at all (reconcile_message), before anything of its own runs; then arms the heartbeat. */
int cluster_new(sd_event *event, Repository *r, const Config *config, const ClusterCallbacks *callbacks,
                void *userdata, const char *reconcile_message, int64_t **ret_failed_ids, size_t *ret_n_failed,
                Cluster **ret);
/* Clean shutdown, nothing of ours runs any more: the executions this node still owns as running become FAILED
 * with message, and the node STOPPED, so no other node declares it dead. */
void cluster_leave(Cluster *c, const char *message);
Cluster *cluster_free(Cluster *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Cluster *, cluster_free);

const char *cluster_node_name(Cluster *c);
int64_t cluster_epoch(Cluster *c);
ClusterStore *cluster_get_store(Cluster *c);

/* Whether this node may write records of what it runs and launch: false once its lease ran out, whether or
 * not the timer noticed yet (after SIGSTOP/SIGCONT, a step's queued commit may be read before any timer). */
bool cluster_lease_valid(Cluster *c);

/* Records the definition hash of every job of config, and logs the jobs another ACTIVE node defines
 * differently. At startup and after every reload. */
int cluster_set_jobs(Cluster *c, const Config *config);
/* The hash of one job's definition: hex SHA-256 of everything that decides what it runs and when. */
int job_config_hash(const JobConfig *job, char **ret);
