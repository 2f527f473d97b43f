/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <systemd/sd-id128.h>
#include <unistd.h>

#include "batch-error.h"
#include "cluster.h"
#include "db-listen.h"
#include "db-retry.h"
#include "db.h"
#include "lifecycle-log.h"
#include "log.h"

/* Heartbeats per node_timeout. The lease is node_timeout minus two heartbeats, counted from when the last
 * successful heartbeat was SENT: the database stamps it later than that, so a node's lease always ends before
 * the others may find its heartbeat older than node_timeout, with two heartbeats to spare for a slow write. */
#define HEARTBEATS_PER_TIMEOUT 7
/* A heartbeat that found the database locked (SQLite) is tried again this soon. */
#define HEARTBEAT_BUSY_RETRY_USEC (100 * USEC_PER_MSEC)
/* Fire claims are kept this long: far beyond any second attempt at one fire (clock skew, catch-up, which only
 * ever looks at fires after the shared last fire), and short enough that a per-second job's claims stay a small
 * table (pg_cron's job_run_details grows without bound). */
#define FIRE_CLAIM_KEEP_USEC (7 * 24 * 3600 * USEC_PER_SEC)
#define PRUNE_INTERVAL_USEC (3600 * USEC_PER_SEC)

struct Cluster {
        sd_event *event;
        Repository *repository;
        ClusterStore *store;
        ClusterCallbacks callbacks;
        void *userdata;

        char *node_name;
        char *boot_id;
        char *jobs_hash;
        int64_t epoch;

        usec_t node_timeout;
        usec_t interval;                /* between heartbeats */
        usec_t lease;                   /* node_timeout - 2 heartbeats */

        /* CLOCK_BOOTTIME, not CLOCK_MONOTONIC: a suspended machine's lease must run out during the suspend,
         * as the other nodes' view of it does. */
        usec_t lease_end;
        bool fenced;                    /* from a fence until registered again */
        bool heartbeat_failing;         /* logged once per outage */
        bool reconcile_pending;         /* the executions of an older epoch still wait to be failed */
        usec_t last_prune;

        sd_event_source *heartbeat_source;
        sd_event_source *lease_source;
        DbListen *stop_listen;          /* PostgreSQL: stops requested on other nodes, at once */
};

static usec_t now_boottime(void) {
        return now_usec(CLOCK_BOOTTIME);
}

const char *cluster_error_name(int error) {
        if (db_error_is_unavailable(error))
                return BATCH_ERROR_DATABASE_UNAVAILABLE;
        return db_error_is_busy(error) ? BATCH_ERROR_DATABASE_BUSY : BATCH_ERROR_DATABASE;
}

bool cluster_is_wanted(const Config *config, Repository *r) {
        assert(config);
        assert(r);
        return config->cluster || db_backend(repository_get_db(r)) == DB_BACKEND_POSTGRESQL;
}

const char *cluster_node_name(Cluster *c) {
        assert(c);
        return c->node_name;
}

int64_t cluster_epoch(Cluster *c) {
        assert(c);
        return c->epoch;
}

ClusterStore *cluster_get_store(Cluster *c) {
        assert(c);
        return c->store;
}

bool cluster_lease_valid(Cluster *c) {
        assert(c);
        return !c->fenced && now_boottime() < c->lease_end;
}

/* ---- job definitions ---- */

static void hash_field(FILE *f, const char *tag, const char *value) {
        /* Tag and value NUL-terminated: no two different definitions serialize alike. */
        fputs(tag, f);
        fputc(0, f);
        if (value) {
                fputc('=', f);
                fputs(value, f);
        }
        fputc(0, f);
}

static void hash_number(FILE *f, const char *tag, uint64_t v) {
        char buf[32];

        (void) snprintf(buf, sizeof(buf), "%" PRIu64, v);
        hash_field(f, tag, buf);
}

static int sha256_hex(const void *data, size_t size, char **ret) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned md_len = 0;
        char *hex;

        if (EVP_Digest(data, size, md, &md_len, EVP_sha256(), NULL) != 1)
                return -EIO;
        hex = malloc(md_len * 2 + 1);
        if (!hex)
                return -ENOMEM;
        for (unsigned i = 0; i < md_len; i++)
                (void) sprintf(hex + 2 * i, "%02x", md[i]);
        *ret = hex;
        return 0;
}

int job_config_hash(const JobConfig *job, char **ret) {
        _cleanup_free_ char *text = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t size = 0;

        assert(job);
        assert(ret);

        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;

        /* What decides what runs and when; not the description, file or line. */
        hash_field(f, "name", job->name);
        hash_number(f, "restartable", job->restartable);
        for (size_t i = 0; i < job->parameters.n; i++) {
                const JobParameter *p = job->parameters.items + i;

                hash_field(f, "parameter", p->name);
                hash_field(f, "type", job_parameter_type_to_string(p->type));
                hash_field(f, "value", p->value);
                hash_number(f, "identifying", p->identifying);
        }
        hash_field(f, "user", job->user);
        hash_field(f, "group", job->group);
        hash_field(f, "working_directory", job->working_directory);
        for (char **e = job->environment; e && *e; e++)
                hash_field(f, "environment", *e);
        hash_number(f, "timeout", job->timeout_usec);
        for (size_t i = 0; i < job->n_steps; i++) {
                const StepConfig *s = job->steps + i;

                hash_field(f, "step", s->name);
                for (char **a = s->exec; a && *a; a++)
                        hash_field(f, "exec", *a);
                hash_number(f, "step_timeout", s->timeout_usec);
                hash_number(f, "allow_start_if_complete", s->allow_start_if_complete);
                hash_number(f, "start_limit", (uint64_t) s->start_limit);
        }
        hash_field(f, "schedule", job->schedule);
        hash_number(f, "persistent", job->persistent);
        hash_number(f, "randomized_delay", job->randomized_delay_usec);
        hash_number(f, "overlap", (uint64_t) job->overlap);
        hash_number(f, "incrementer", (uint64_t) job->incrementer);
        hash_field(f, "schedule_parameter", job->schedule_parameter);
        hash_number(f, "schedule_parameter_type", (uint64_t) job->schedule_parameter_type);
        hash_number(f, "catch_up", job->catch_up);
        hash_number(f, "enabled", job->enabled);

        if (fflush(f) != 0 || ferror(f))
                return -ENOMEM;
        return sha256_hex(text, size, ret);
}

static int compare_names(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

typedef struct JobHashes {
        char **names;                   /* sorted; NULL-terminated */
        char **hashes;
        size_t n;
        char *all;                      /* the hash of every (name, hash) pair, in name order */
} JobHashes;

static void job_hashes_done(JobHashes *h) {
        strv_free(h->names);
        strv_free(h->hashes);
        free(h->all);
}

static int job_hashes_compute(const Config *config, JobHashes *ret) {
        _cleanup_(job_hashes_done) JobHashes h = {};
        _cleanup_free_ char *text = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t size = 0;
        int k;

        h.names = calloc(config->n_jobs + 1, sizeof(char *));
        h.hashes = calloc(config->n_jobs + 1, sizeof(char *));
        if (!h.names || !h.hashes)
                return -ENOMEM;
        for (size_t i = 0; i < config->n_jobs; i++) {
                h.names[i] = strdup(config->jobs[i]->name);
                if (!h.names[i])
                        return -ENOMEM;
        }
        h.n = config->n_jobs;
        qsort(h.names, h.n, sizeof(char *), compare_names);

        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < h.n; i++) {
                k = job_config_hash(config_find_job(config, h.names[i]), &h.hashes[i]);
                if (k < 0)
                        return k;
                hash_field(f, h.names[i], h.hashes[i]);
        }
        if (fflush(f) != 0 || ferror(f))
                return -ENOMEM;
        k = sha256_hex(text, size, &h.all);
        if (k < 0)
                return k;

        *ret = h;
        h = (JobHashes) {};
        return 0;
}

int cluster_set_jobs(Cluster *c, const Config *config) {
        _cleanup_(job_hashes_done) JobHashes h = {};
        JobDrift *drift = NULL;
        size_t n = 0;
        int k;

        assert(c);
        assert(config);

        k = job_hashes_compute(config, &h);
        if (k < 0)
                return k;
        k = cluster_store_set_jobs(c->store, c->node_name, h.all, h.names, h.hashes, h.n);
        if (k < 0)
                return log_warning_errno(k, "Failed to record the job definitions of node %s: %m", c->node_name);
        free(c->jobs_hash);
        c->jobs_hash = TAKE_PTR(h.all);

        k = cluster_store_get_drift(c->store, c->node_name, &drift, &n);
        if (k < 0)
                return log_warning_errno(k, "Failed to compare the job definitions with the other nodes: %m");
        for (size_t i = 0; i < n; i++)
                log_warning("Job %s is defined differently on node %s than on this node (%s): the nodes drift; "
                            "fires of it run as the node that claims them defines it.",
                            drift[i].job_name, drift[i].other_node, c->node_name);
        job_drift_array_free(drift, n);
        return 0;
}

/* ---- lease and heartbeat ---- */

/* A structured entry per failed execution, with its BATCH_JOB_EXECUTION_ID, so "batchctl logs ID" on this node
 * shows why it ended. */
static void log_failed_execution(Cluster *c, int64_t id, const char *why) {
        _cleanup_(job_execution_freep) JobExecution *e = NULL;

        if (repository_get_execution_summary(c->repository, id, &e, NULL) < 0) {
                log_warning("Execution %" PRIi64 " %s; marked FAILED.", id, why);
                return;
        }
        lifecycle_log(MESSAGE_RECONCILED, LOG_WARNING, e, NULL, "Job: [%s] execution %" PRIi64 " %s; marked FAILED.",
                      e->job_name, e->id, why);
}

static int cluster_arm(sd_event_source *s, usec_t when) {
        int k;

        k = sd_event_source_set_time(s, when);
        if (k < 0)
                return k;
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static void cluster_renewed(Cluster *c, usec_t sent) {
        int k;

        c->lease_end = sent + c->lease;
        k = cluster_arm(c->lease_source, c->lease_end);
        if (k < 0)
                log_warning_errno(k, "Failed to arm the lease timer: %m");
}

static void cluster_fence(Cluster *c, const char *reason) {
        if (c->fenced)
                return;
        c->fenced = true;
        (void) sd_event_source_set_enabled(c->lease_source, SD_EVENT_OFF);
        log_error("Node %s: %s. It stops every step it runs, records nothing more of them and launches nothing "
                  "until it has joined the cluster again.", c->node_name, reason);
        if (c->callbacks.fence)
                c->callbacks.fence(c, reason, c->userdata);
}

/* What this node ran under older epochs was stopped by the fence: failed here, unless another node did already.
 * Tried again with every heartbeat until it is written: left STARTED, those executions would count against the
 * limits for ever, as nobody else fails the executions of a live node. */
static void cluster_reconcile(Cluster *c) {
        _cleanup_free_ int64_t *ids = NULL;
        _cleanup_free_ char *message = NULL;
        size_t n = 0;
        int k;

        if (asprintf(&message, "Node %s lost its cluster lease while this execution was running; marked FAILED.",
                     c->node_name) < 0) {
                log_oom();
                return;
        }
        k = cluster_store_fail_executions(c->store, c->node_name, c->epoch, false, message, &ids, &n);
        if (k < 0) {
                if (!c->reconcile_pending)
                        log_warning_errno(k, "Failed to mark the executions node %s stopped when it lost its lease, "
                                          "retrying: %m", c->node_name);
                c->reconcile_pending = true;
                return;
        }
        c->reconcile_pending = false;
        for (size_t i = 0; i < n; i++)
                log_failed_execution(c, ids[i], "was running on this node when it lost its cluster lease");
}

/* A new epoch, then the executions of the old ones. */
static int cluster_rejoin(Cluster *c) {
        usec_t sent = now_boottime();
        int k;

        k = cluster_store_register(c->store, c->node_name, c->boot_id, c->jobs_hash, &c->epoch);
        if (k < 0)
                return log_debug_errno(k, "Node %s cannot register yet: %m", c->node_name);
        cluster_reconcile(c);

        c->fenced = false;
        cluster_renewed(c, sent);
        log_notice("Node %s joined the cluster again (epoch %" PRIi64 ").", c->node_name, c->epoch);
        if (c->callbacks.rejoined)
                c->callbacks.rejoined(c, c->userdata);
        return 0;
}

static void cluster_declare_dead(Cluster *c) {
        DeadNode *dead = NULL;
        size_t n = 0;
        int k;

        k = cluster_store_declare_dead(c->store, c->node_name, c->node_timeout, &dead, &n);
        if (k < 0) {
                log_debug_errno(k, "Failed to look for dead nodes: %m");
                return;
        }
        for (size_t i = 0; i < n; i++) {
                char buf[TIMESTAMP_MAX];

                log_warning("Node %s stopped heartbeating at %s; declared dead, %zu of its execution(s) marked "
                            "FAILED.", dead[i].name, strna(timestamp_format(dead[i].heartbeat, buf)),
                            dead[i].n_executions);
                for (size_t j = 0; j < dead[i].n_executions; j++) {
                        _cleanup_free_ char *why = NULL;

                        if (asprintf(&why, "was running on node %s, which stopped heartbeating", dead[i].name) < 0)
                                why = NULL;
                        log_failed_execution(c, dead[i].execution_ids[j], why ?: "was running on a dead node");
                }
        }
        dead_node_array_free(dead, n);
}

/* Stops requested on other nodes. Polled with every heartbeat; on PostgreSQL the requesting node also sends a
 * notification (cluster_store_request_stop()) that runs this at once, with the poll kept as the fallback: a
 * notification is lost while the listener is disconnected. how says which path found the stop. */
static void cluster_find_stops(Cluster *c, const char *how) {
        _cleanup_free_ int64_t *ids = NULL;
        size_t n = 0;
        int k;

        if (!c->callbacks.stop_requested)
                return;
        k = cluster_store_get_stopping(c->store, c->node_name, &ids, &n);
        if (k < 0) {
                log_debug_errno(k, "Failed to look for stop requests: %m");
                return;
        }
        for (size_t i = 0; i < n; i++) {
                log_info("Execution %" PRIi64 ": stop request found (%s).", ids[i], how);
                c->callbacks.stop_requested(c, ids[i], c->userdata);
        }
}

static void on_stop_notified(DbListen *l, const char *payload, void *userdata) {
        Cluster *c = userdata;

        /* Every node hears every stop: only the owner named in the payload looks. A fenced node owns nothing. */
        if (!streq(payload, c->node_name) || !cluster_lease_valid(c))
                return;
        cluster_find_stops(c, "notified");
}

static void cluster_prune(Cluster *c, usec_t now) {
        uint64_t deleted = 0;
        int k;

        if (c->last_prune != 0 && now - c->last_prune < PRUNE_INTERVAL_USEC)
                return;
        c->last_prune = now;
        k = cluster_store_prune(c->store, FIRE_CLAIM_KEEP_USEC, &deleted);
        if (k < 0)
                log_debug_errno(k, "Failed to prune old fire claims: %m");
        else if (deleted > 0)
                log_info("Removed %" PRIu64 " fire claim(s) older than 7 days.", deleted);
}

static int on_heartbeat(sd_event_source *s, uint64_t usec, void *userdata) {
        Cluster *c = userdata;
        usec_t sent = now_boottime(), next = c->interval;
        int k;

        if (!c->fenced && sent >= c->lease_end)
                cluster_fence(c, "its lease ran out before a heartbeat renewed it");

        if (c->fenced) {
                (void) cluster_rejoin(c);
                goto rearm;
        }

        k = cluster_store_heartbeat(c->store, c->node_name, c->epoch);
        if (k == -ESTALE) {
                cluster_fence(c, "another node declared it dead");
                (void) cluster_rejoin(c);
                goto rearm;
        }
        if (k < 0) {
                if (!c->heartbeat_failing)
                        log_warning_errno(k, "Node %s failed to heartbeat, retrying: %m", c->node_name);
                c->heartbeat_failing = true;
                if (db_error_is_busy(k))
                        next = HEARTBEAT_BUSY_RETRY_USEC;
                goto rearm;
        }
        if (c->heartbeat_failing)
                log_notice("Node %s heartbeats again.", c->node_name);
        c->heartbeat_failing = false;
        cluster_renewed(c, sent);

        if (c->reconcile_pending)
                cluster_reconcile(c);
        /* Only a node that holds its own lease judges others. */
        cluster_declare_dead(c);
        cluster_find_stops(c, "polled");
        cluster_prune(c, sent);
        if (c->callbacks.tick)
                c->callbacks.tick(c, c->userdata);

rearm:
        k = cluster_arm(s, now_boottime() + next);
        if (k < 0)
                log_error_errno(k, "Failed to arm the heartbeat: %m");
        return 0;
}

static int on_lease(sd_event_source *s, uint64_t usec, void *userdata) {
        Cluster *c = userdata;

        if (c->fenced)
                return 0;
        if (now_boottime() < c->lease_end)
                return cluster_arm(s, c->lease_end);
        cluster_fence(c, "its lease ran out before a heartbeat renewed it");
        return 0;
}

/* ---- lifecycle ---- */

static int node_name_default(char **ret) {
        char buf[HOST_NAME_MAX + 1] = {};

        /* The kernel's name, not a lookup through NSS (which may block on the network). */
        if (gethostname(buf, sizeof(buf) - 1) < 0)
                return -errno;
        if (!config_job_name_is_valid(buf))
                return -EINVAL;
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

int cluster_new(sd_event *event, Repository *r, const Config *config, const ClusterCallbacks *callbacks,
                void *userdata, const char *reconcile_message, int64_t **ret_failed_ids, size_t *ret_n_failed,
                Cluster **ret) {
        _cleanup_(cluster_freep) Cluster *c = NULL;
        _cleanup_(job_hashes_done) JobHashes h = {};
        sd_id128_t boot;
        usec_t sent;
        int k;

        assert(event);
        assert(r);
        assert(config);
        assert(reconcile_message);
        assert(ret);

        c = calloc(1, sizeof(Cluster));
        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(event);
        c->repository = r;
        if (callbacks)
                c->callbacks = *callbacks;
        c->userdata = userdata;
        c->node_timeout = config->node_timeout_usec;
        c->interval = c->node_timeout / HEARTBEATS_PER_TIMEOUT;
        c->lease = c->node_timeout - 2 * c->interval;

        if (config->node_name)
                c->node_name = strdup(config->node_name);
        else {
                k = node_name_default(&c->node_name);
                if (k == -EINVAL)
                        return log_error_errno(k, "The host name is not a valid node name; set node_name in %s.",
                                               config->path);
                if (k < 0)
                        return log_error_errno(k, "Failed to get the host name: %m");
        }
        k = sd_id128_get_boot(&boot);
        if (k < 0)
                boot = SD_ID128_NULL;
        if (asprintf(&c->boot_id, SD_ID128_UUID_FORMAT_STR, SD_ID128_FORMAT_VAL(boot)) < 0 || !c->node_name)
                return log_oom();

        k = cluster_store_new(r, &c->store);
        if (k < 0)
                return k;
        k = job_hashes_compute(config, &h);
        if (k < 0)
                return k;

        sent = now_boottime();
        k = cluster_store_register(c->store, c->node_name, c->boot_id, h.all, &c->epoch);
        if (k < 0)
                return log_error_errno(k, "Failed to register node %s in the cluster: %s", c->node_name,
                                       db_errmsg(repository_get_db(r)));
        c->lease_end = sent + c->lease;

        /* Nothing of ours runs yet: what this node left running under an earlier epoch was cut off. Other
         * nodes' executions are theirs. What nobody owns is a lone batchd's from before the cluster on a
         * SQLite file; on PostgreSQL it is a Spring Batch application's sharing the repository (every batchd
         * execution there gets its owner in the transaction that creates it), which may well be running:
         * recovering it is that application's business (JobOperator.recover()), not ours. */
        k = cluster_store_fail_executions(c->store, c->node_name, c->epoch,
                                          db_backend(repository_get_db(r)) == DB_BACKEND_SQLITE, reconcile_message,
                                          ret_failed_ids, ret_n_failed);
        if (k < 0)
                return log_error_errno(k, "Failed to reconcile executions node %s left running: %m", c->node_name);

        k = cluster_set_jobs(c, config);
        if (k < 0 && k != -ENOMEM)
                k = 0;   /* logged; drift is advice */
        if (k < 0)
                return k;

        k = sd_event_add_time(event, &c->heartbeat_source, CLOCK_BOOTTIME, sent + c->interval,
                              c->interval / 20, on_heartbeat, c);
        if (k < 0)
                return k;
        (void) sd_event_source_set_description(c->heartbeat_source, "cluster-heartbeat");
        /* Above the steps and D-Bus: a busy loop must not make a live node look dead. */
        (void) sd_event_source_set_priority(c->heartbeat_source, SD_EVENT_PRIORITY_IMPORTANT);
        k = sd_event_add_time(event, &c->lease_source, CLOCK_BOOTTIME, c->lease_end, USEC_PER_MSEC, on_lease, c);
        if (k < 0)
                return k;
        (void) sd_event_source_set_description(c->lease_source, "cluster-lease");
        (void) sd_event_source_set_priority(c->lease_source, SD_EVENT_PRIORITY_IMPORTANT);

        if (db_backend(repository_get_db(r)) == DB_BACKEND_POSTGRESQL) {
                k = db_listen_new(event, config->database, "batchd_stop", on_stop_notified, c, &c->stop_listen);
                if (k < 0)
                        return k;
        }

        {
                char buf[TIMESPAN_MAX];

                log_info("Node %s joined the cluster (epoch %" PRIi64 ", node_timeout %s).", c->node_name,
                         c->epoch, strna(timespan_format(c->node_timeout, buf)));
        }
        *ret = TAKE_PTR(c);
        return 0;
}

void cluster_leave(Cluster *c, const char *message) {
        _cleanup_free_ int64_t *ids = NULL;
        size_t n = 0;
        int k;

        if (!c)
                return;
        c->heartbeat_source = sd_event_source_disable_unref(c->heartbeat_source);
        c->lease_source = sd_event_source_disable_unref(c->lease_source);
        c->stop_listen = db_listen_free(c->stop_listen);
        if (!cluster_lease_valid(c))
                return;   /* another node fails what is left, once it finds this one dead */
        k = cluster_store_fail_executions(c->store, c->node_name, INT64_MAX, false, message, &ids, &n);
        if (k < 0)
                log_warning_errno(k, "Failed to mark the executions left on node %s: %m", c->node_name);
        for (size_t i = 0; i < n; i++)
                log_failed_execution(c, ids[i], "was still on record as running when this node left the cluster");
        k = cluster_store_stop_node(c->store, c->node_name, c->epoch);
        if (k < 0)
                log_warning_errno(k, "Failed to record that node %s left the cluster: %m", c->node_name);
        else
                log_info("Node %s left the cluster.", c->node_name);
        c->fenced = true;
}

Cluster *cluster_free(Cluster *c) {
        if (!c)
                return NULL;
        sd_event_source_disable_unref(c->heartbeat_source);
        sd_event_source_disable_unref(c->lease_source);
        db_listen_free(c->stop_listen);
        cluster_store_free(c->store);
        sd_event_unref(c->event);
        free(c->node_name);
        free(c->boot_id);
        free(c->jobs_hash);
        return mfree(c);
}
