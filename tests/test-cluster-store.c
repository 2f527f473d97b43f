/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* cluster-store.c on real databases: two Repository connections on one SQLite file stand for two nodes; with
 * $BATCHD_TEST_POSTGRESQL (a libpq URI, set by tests/pgserver.py) every case runs again on PostgreSQL. Names
 * carry a per-run suffix, so the cases never see each other's rows on a shared PostgreSQL database. */

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/random.h>
#include <unistd.h>
#include <cmocka.h>

#include "batch-error.h"
#include "cluster-store.h"
#include "cluster.h"
#include "repository.h"
#include "schedule-store.h"
#include "tests.h"

static const char *location;       /* SQLite: a fresh file per case; PostgreSQL: the URI */
static char run_suffix[32];
static char suffix[48];            /* run_suffix and the number of the case: names no earlier case used */
static unsigned n_case;

typedef struct Node {
        Repository *repository;
        ClusterStore *store;
        char name[64];
        int64_t epoch;
} Node;

static char *unique(const char *base) {
        char *s;

        assert_true(asprintf(&s, "%s-%s", base, suffix) >= 0);
        return s;
}

static void node_open(Node *n, const char *path, const char *name) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        *n = (Node) {};
        if (repository_open(path, 0, &n->repository, &error) < 0)
                fail_msg("cannot open %s: %s", path, error.message);
        assert_int_equal(cluster_store_new(n->repository, &n->store), 0);
        (void) snprintf(n->name, sizeof(n->name), "%s-%s", name, suffix);
        assert_int_equal(cluster_store_register(n->store, n->name, "00000000-0000-0000-0000-000000000000", "hash",
                                                &n->epoch), 0);
        assert_true(n->epoch >= 1);
}

static void node_close(Node *n) {
        /* STOPPED, so later cases on a shared PostgreSQL database never find it late (-ESTALE when it is dead
         * or stopped already). */
        (void) cluster_store_stop_node(n->store, n->name, n->epoch);
        n->store = cluster_store_free(n->store);
        n->repository = repository_free(n->repository);
}

/* Per case: a fresh SQLite file in dir, or the PostgreSQL database. */
static char *case_location(const char *dir) {
        (void) snprintf(suffix, sizeof(suffix), "%s-%u", run_suffix, ++n_case);
        return location ? strdup(location) : test_path(dir, "batch.db");
}

static void test_claim_once(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = case_location(dir), *job = unique("job"), *owner = NULL;
        Node a, b;
        int64_t id = -1;

        node_open(&a, path, "a");
        node_open(&b, path, "b");

        /* The first claim wins, the second (another node, or the same one again) finds the row. */
        assert_int_equal(cluster_store_claim_fire(a.store, job, 1000000, a.name), 1);
        assert_int_equal(cluster_store_claim_fire(b.store, job, 1000000, b.name), 0);
        assert_int_equal(cluster_store_claim_fire(a.store, job, 1000000, a.name), 0);
        /* Another scheduled time is another fire. */
        assert_int_equal(cluster_store_claim_fire(b.store, job, 2000000, b.name), 1);

        assert_int_equal(cluster_store_set_fire_execution(a.store, job, 1000000, 42), 0);
        assert_int_equal(cluster_store_get_fire(b.store, job, 1000000, &owner, &id), 0);
        assert_string_equal(owner, a.name);
        assert_int_equal(id, 42);
        assert_int_equal(cluster_store_get_fire(b.store, job, 3000000, NULL, NULL), -ENOENT);

        node_close(&a);
        node_close(&b);
}

/* A claim rolled back with the transaction of its execution leaves the fire free for the next node. */
static void test_claim_rolled_back(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = case_location(dir), *job = unique("job");
        Node a, b;

        node_open(&a, path, "a");
        node_open(&b, path, "b");
        {
                _cleanup_(repository_transaction_done) RepositoryTransaction tx = {};

                assert_int_equal(repository_transaction_open(a.repository, &tx, NULL), 0);
                assert_int_equal(cluster_store_claim_fire(a.store, job, 5000000, a.name), 1);
                /* not committed */
        }
        assert_int_equal(cluster_store_claim_fire(b.store, job, 5000000, b.name), 1);
        node_close(&a);
        node_close(&b);
}

static void make_running(Node *n, const char *job, JobExecution **ret_e, StepExecution **ret_s) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        char run[32];

        (void) snprintf(run, sizeof(run), "%" PRIu64, now_usec(CLOCK_REALTIME));
        assert_int_equal(job_parameters_add(&p, "run", JOB_PARAMETER_STRING, run, true, NULL), 0);
        if (repository_create_execution(n->repository, job, &p, LAUNCH_MARK_STARTED, ret_e, &error) < 0)
                fail_msg("launch: %s", error.message);
        assert_int_equal(cluster_store_set_owner(n->store, (*ret_e)->id, n->name, n->epoch), 0);
        if (ret_s && repository_start_step_execution(n->repository, *ret_e, "step", NULL, ret_s, &error) < 0)
                fail_msg("step: %s", error.message);
}

static void test_dead_node(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = case_location(dir), *job = unique("job"), *want = NULL;
        _cleanup_(job_execution_freep) JobExecution *ea = NULL, *eb = NULL, *after = NULL;
        _cleanup_(step_execution_freep) StepExecution *sa = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        StepExecution **steps = NULL;
        DeadNode *dead = NULL;
        size_t n_dead = 0, ns = 0;
        uint64_t running = 0;
        Node a, b;

        node_open(&a, path, "a");
        node_open(&b, path, "b");
        make_running(&a, job, &ea, &sa);
        make_running(&b, job, &eb, NULL);
        assert_int_equal(cluster_store_count_running(b.store, job, &running), 0);
        assert_int_equal(running, 2);

        /* Both alive: nobody dies. */
        assert_int_equal(cluster_store_declare_dead(b.store, b.name, 10 * USEC_PER_SEC, &dead, &n_dead), 0);
        assert_int_equal(n_dead, 0);
        dead_node_array_free(dead, n_dead);

        /* a stops heartbeating; b goes on. */
        usleep(300 * 1000);
        assert_int_equal(cluster_store_heartbeat(b.store, b.name, b.epoch), 0);
        assert_int_equal(cluster_store_declare_dead(b.store, b.name, 200 * USEC_PER_MSEC, &dead, &n_dead), 0);
        assert_int_equal(n_dead, 1);
        assert_string_equal(dead[0].name, a.name);
        assert_int_equal(dead[0].epoch, a.epoch + 1);
        assert_int_equal(dead[0].n_executions, 1);
        assert_true(dead[0].execution_ids[0] == ea->id);
        dead_node_array_free(dead, n_dead);

        /* A second survivor finds nothing left to do: each death happens once. */
        assert_int_equal(cluster_store_declare_dead(b.store, b.name, 200 * USEC_PER_MSEC, &dead, &n_dead), 0);
        assert_int_equal(n_dead, 0);
        dead_node_array_free(dead, n_dead);

        /* a's execution and step FAILED, naming the node; b's untouched. */
        assert_int_equal(repository_get_execution_summary(b.repository, ea->id, &after, NULL), 0);
        assert_int_equal(after->status, BATCH_STATUS_FAILED);
        assert_true(asprintf(&want, "Node %s stopped heartbeating at ", a.name) >= 0);
        assert_true(strneq(after->exit_message, want, strlen(want)));
        assert_non_null(strstr(after->exit_message, "marked FAILED."));
        assert_true(after->end_time > 0);
        assert_int_equal(repository_get_step_executions(b.repository, ea->id, &steps, &ns), 0);
        assert_int_equal(ns, 1);
        assert_int_equal(steps[0]->status, BATCH_STATUS_FAILED);
        step_execution_array_free(steps, ns);
        job_execution_free(after);
        assert_int_equal(repository_get_execution_summary(b.repository, eb->id, &after, NULL), 0);
        assert_int_equal(after->status, BATCH_STATUS_STARTED);

        /* The zombie: its heartbeat is refused, and so are its writes of what it ran (VERSION moved). */
        assert_int_equal(cluster_store_heartbeat(a.store, a.name, a.epoch), -ESTALE);
        sa->commit_count++;
        assert_true(repository_update_step_execution(a.repository, sa, &error) < 0);
        assert_true(sd_bus_error_has_name(&error, BATCH_ERROR_OPTIMISTIC_LOCKING_FAILURE));
        sd_bus_error_free(&error);
        ea->status = BATCH_STATUS_COMPLETED;
        assert_true(repository_update_execution(a.repository, ea, &error) < 0);
        assert_true(sd_bus_error_has_name(&error, BATCH_ERROR_OPTIMISTIC_LOCKING_FAILURE));

        /* It rejoins with a new epoch. */
        {
                int64_t old = a.epoch;

                assert_int_equal(cluster_store_register(a.store, a.name, "x", "hash", &a.epoch), 0);
                assert_int_equal(a.epoch, old + 2);
                assert_int_equal(cluster_store_heartbeat(a.store, a.name, a.epoch), 0);
        }
        node_close(&a);
        node_close(&b);
}

/* Reconciliation at start: only this node's executions (and unowned ones), never another node's. */
static void test_fail_own_executions(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = case_location(dir), *job = unique("job");
        _cleanup_(job_execution_freep) JobExecution *ea = NULL, *eb = NULL, *after = NULL;
        _cleanup_free_ int64_t *ids = NULL;
        size_t n = 0;
        Node a, b;

        node_open(&a, path, "a");
        node_open(&b, path, "b");
        make_running(&a, job, &ea, NULL);
        make_running(&b, job, &eb, NULL);

        /* a restarts: a new epoch; its old executions are leftovers. */
        assert_int_equal(cluster_store_register(a.store, a.name, "x", "hash", &a.epoch), 0);
        assert_int_equal(cluster_store_fail_executions(a.store, a.name, a.epoch, false, "restarted", &ids, &n), 0);
        assert_int_equal(n, 1);
        assert_true(ids[0] == ea->id);

        assert_int_equal(repository_get_execution_summary(a.repository, ea->id, &after, NULL), 0);
        assert_int_equal(after->status, BATCH_STATUS_FAILED);
        assert_string_equal(after->exit_message, "restarted");
        job_execution_free(after);
        assert_int_equal(repository_get_execution_summary(a.repository, eb->id, &after, NULL), 0);
        assert_int_equal(after->status, BATCH_STATUS_STARTED);

        node_close(&a);
        node_close(&b);
}

static void test_nodes_and_drift(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = case_location(dir), *job = unique("job"), *job2 = unique("other");
        _cleanup_(job_execution_freep) JobExecution *ea = NULL;
        char *names[] = { job, job2 }, *ha[] = { "h1", "h2" }, *hb[] = { "h1", "h3" }, *owner = NULL;
        NodeInfo *nodes = NULL;
        JobDrift *drift = NULL;
        size_t n = 0, found = 0;
        int64_t epoch = 0;
        Node a, b;

        node_open(&a, path, "a");
        node_open(&b, path, "b");
        make_running(&a, job, &ea, NULL);
        assert_int_equal(cluster_store_get_owner(b.store, ea->id, &owner, &epoch), 0);
        assert_string_equal(owner, a.name);
        assert_int_equal(epoch, a.epoch);
        free(owner);
        assert_int_equal(cluster_store_get_owner(b.store, ea->id + 1000000, NULL, NULL), -ENOENT);

        assert_int_equal(cluster_store_set_jobs(a.store, a.name, "ja", names, ha, 2), 0);
        assert_int_equal(cluster_store_set_jobs(b.store, b.name, "jb", names, hb, 2), 0);
        assert_int_equal(cluster_store_get_drift(a.store, a.name, &drift, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(drift[0].job_name, job2);
        assert_string_equal(drift[0].other_node, b.name);
        job_drift_array_free(drift, n);

        assert_int_equal(cluster_store_list_nodes(a.store, 0, 0, &nodes, &n), 0);
        for (size_t i = 0; i < n; i++) {
                if (streq(nodes[i].name, a.name)) {
                        assert_int_equal(nodes[i].state, NODE_ACTIVE);
                        assert_int_equal(nodes[i].n_running, 1);
                        assert_true(nodes[i].drift);
                        assert_string_equal(nodes[i].jobs_hash, "ja");
                        assert_true(nodes[i].heartbeat > 0);
                        found++;
                } else if (streq(nodes[i].name, b.name)) {
                        assert_int_equal(nodes[i].n_running, 0);
                        assert_true(nodes[i].drift);
                        found++;
                }
        }
        assert_int_equal(found, 2);
        node_info_array_free(nodes, n);

        /* b stops cleanly: no longer drift for a (only ACTIVE nodes count), STOPPED in the list, and its
         * heartbeat from the old epoch is refused. */
        assert_int_equal(cluster_store_stop_node(b.store, b.name, b.epoch), 0);
        assert_int_equal(cluster_store_heartbeat(b.store, b.name, b.epoch), -ESTALE);
        assert_int_equal(cluster_store_get_drift(a.store, a.name, &drift, &n), 0);
        assert_int_equal(n, 0);
        job_drift_array_free(drift, n);

        /* Paged. */
        assert_int_equal(cluster_store_list_nodes(a.store, 0, 1, &nodes, &n), 0);
        assert_int_equal(n, 1);
        node_info_array_free(nodes, n);

        node_close(&a);
        node_close(&b);
}

static void test_remote_stop(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = case_location(dir), *job = unique("job");
        _cleanup_(job_execution_freep) JobExecution *ea = NULL;
        _cleanup_free_ int64_t *ids = NULL;
        size_t n = 0;
        Node a, b;

        node_open(&a, path, "a");
        node_open(&b, path, "b");
        make_running(&a, job, &ea, NULL);

        assert_int_equal(cluster_store_get_stopping(a.store, a.name, &ids, &n), 0);
        assert_int_equal(n, 0);
        ids = mfree(ids);

        assert_int_equal(cluster_store_request_stop(b.store, ea->id), 0);
        assert_int_equal(cluster_store_request_stop(b.store, ea->id), -ESRCH);   /* already STOPPING */
        assert_int_equal(cluster_store_get_stopping(a.store, a.name, &ids, &n), 0);
        assert_int_equal(n, 1);
        assert_true(ids[0] == ea->id);

        /* The owner's own write is not refused: the version did not move. */
        ea->status = BATCH_STATUS_STOPPED;
        ea->end_time = now_usec(CLOCK_REALTIME);
        assert_int_equal(repository_update_execution(a.repository, ea, NULL), 0);

        node_close(&a);
        node_close(&b);
}

static void test_clock_and_prune(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = case_location(dir), *job = unique("job");
        usec_t t1 = 0, t2 = 0, local = now_usec(CLOCK_REALTIME);
        uint64_t deleted = 0;
        Node a;

        node_open(&a, path, "a");
        assert_int_equal(cluster_store_now(a.store, &t1), 0);
        /* The database's clock is a real clock: on this machine within a few seconds of ours. */
        assert_true(t1 + 5 * USEC_PER_SEC > local && t1 < local + 5 * USEC_PER_SEC);
        assert_int_equal(cluster_store_claim_fire(a.store, job, 1, a.name), 1);
        usleep(20 * 1000);
        assert_int_equal(cluster_store_now(a.store, &t2), 0);
        assert_true(t2 > t1);

        /* Kept while younger than keep, then pruned. */
        assert_int_equal(cluster_store_prune(a.store, 3600 * USEC_PER_SEC, &deleted), 0);
        assert_int_equal(cluster_store_claim_fire(a.store, job, 1, a.name), 0);
        assert_int_equal(cluster_store_prune(a.store, 1, &deleted), 0);
        assert_true(deleted >= 1);
        assert_int_equal(cluster_store_get_fire(a.store, job, 1, NULL, NULL), -ENOENT);
        node_close(&a);
}

/* A node that is late (skewed, or catching up) never moves the shared last fire back. */
static void test_last_fire_only_forward(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = case_location(dir), *job = unique("job");
        usec_t last = 0;
        Node a, b;

        node_open(&a, path, "a");
        node_open(&b, path, "b");
        assert_int_equal(schedule_store_set_last_fire(a.repository, job, 20 * USEC_PER_SEC, 7), 0);
        assert_int_equal(schedule_store_set_last_fire(b.repository, job, 10 * USEC_PER_SEC, 3), 0);
        assert_int_equal(schedule_store_get_last_fire(a.repository, job, &last), 0);
        assert_true(last == 20 * USEC_PER_SEC);
        assert_int_equal(schedule_store_set_last_fire(b.repository, job, 30 * USEC_PER_SEC, 9), 0);
        assert_int_equal(schedule_store_get_last_fire(a.repository, job, &last), 0);
        assert_true(last == 30 * USEC_PER_SEC);
        node_close(&a);
        node_close(&b);
}

/* Retention removes an execution's owner row with the execution. */
static void test_retention_removes_owner(void **state) {
        _cleanup_(test_dir_freep) char *dir = test_dir_new();
        _cleanup_free_ char *path = case_location(dir), *job = unique("job");
        JobExecution *e[2] = {};
        uint64_t deleted = 0;
        Node a;

        node_open(&a, path, "a");
        for (size_t i = 0; i < 2; i++) {
                make_running(&a, job, &e[i], NULL);
                e[i]->status = BATCH_STATUS_COMPLETED;
                e[i]->end_time = now_usec(CLOCK_REALTIME);
                assert_int_equal(repository_update_execution(a.repository, e[i], NULL), 0);
        }
        assert_int_equal(repository_delete_old(a.repository, 0, 1, now_usec(CLOCK_REALTIME), &deleted), 0);
        assert_true(deleted >= 1);
        assert_int_equal(cluster_store_get_owner(a.store, e[0]->id, NULL, NULL), -ENOENT);
        assert_int_equal(cluster_store_get_owner(a.store, e[1]->id, NULL, NULL), 0);
        for (size_t i = 0; i < 2; i++)
                job_execution_free(e[i]);
        node_close(&a);
}

/* The drift hash covers what decides what runs and when, not the description. */
static void test_job_hash(void **state) {
        char *argv1[] = { (char *) "/bin/true", NULL }, *argv2[] = { (char *) "/bin/false", NULL };
        char *env[] = { NULL };
        StepConfig step = { .name = (char *) "s", .exec = argv1, .timeout_usec = USEC_INFINITY, .start_limit = 1 };
        JobConfig job = { .name = (char *) "j", .restartable = true, .steps = &step, .n_steps = 1,
                          .environment = env, .timeout_usec = USEC_INFINITY, .enabled = true };
        _cleanup_free_ char *h1 = NULL, *h2 = NULL, *h3 = NULL, *h4 = NULL, *h5 = NULL;

        assert_int_equal(job_config_hash(&job, &h1), 0);
        assert_int_equal(strlen(h1), 64);
        job.description = (char *) "only words";
        assert_int_equal(job_config_hash(&job, &h2), 0);
        assert_string_equal(h1, h2);
        step.exec = argv2;
        assert_int_equal(job_config_hash(&job, &h3), 0);
        assert_string_not_equal(h1, h3);
        step.exec = argv1;
        job.schedule = (char *) "daily";
        assert_int_equal(job_config_hash(&job, &h4), 0);
        assert_string_not_equal(h1, h4);
        job.schedule = NULL;
        job.overlap = JOB_OVERLAP_ALLOW;
        assert_int_equal(job_config_hash(&job, &h5), 0);
        assert_string_not_equal(h1, h5);
}

static void test_node_state_strings(void **state) {
        for (NodeState s = 0; s < _NODE_STATE_MAX; s++)
                assert_int_equal(node_state_from_string(node_state_to_string(s)), s);
        assert_int_equal(node_state_from_string("BOGUS"), _NODE_STATE_INVALID);
        assert_null(node_state_to_string(_NODE_STATE_MAX));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_node_state_strings),
                cmocka_unit_test(test_job_hash),
                cmocka_unit_test(test_claim_once),
                cmocka_unit_test(test_claim_rolled_back),
                cmocka_unit_test(test_dead_node),
                cmocka_unit_test(test_fail_own_executions),
                cmocka_unit_test(test_nodes_and_drift),
                cmocka_unit_test(test_remote_stop),
                cmocka_unit_test(test_clock_and_prune),
                cmocka_unit_test(test_last_fire_only_forward),
                cmocka_unit_test(test_retention_removes_owner),
        };
        uint64_t r = 0;
        int failed;

        setenv("TZ", "UTC", 1);
        tzset();
        log_set_max_level(LOG_WARNING);
        (void) getrandom(&r, sizeof(r), 0);

        (void) snprintf(run_suffix, sizeof(run_suffix), "%d-%" PRIx64, (int) getpid(), r & 0xffffff);
        location = NULL;
        printf("# cluster-store on SQLite\n");
        failed = cmocka_run_group_tests_name("sqlite", tests, NULL, NULL);

        location = getenv("BATCHD_TEST_POSTGRESQL");
        if (isempty(location)) {
                printf("# cluster-store on PostgreSQL skipped: $BATCHD_TEST_POSTGRESQL is not set "
                       "(tests/pgserver.py sets it)\n");
                return failed;
        }
        {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_(repository_freep) Repository *repo = NULL;
                int k;

                /* Until the repository opens PostgreSQL, it says so (and nothing else fails this way). */
                k = repository_open(location, 0, &repo, &error);
                if (k == -EPROTONOSUPPORT && error.message && strstr(error.message, "does not support yet")) {
                        printf("# cluster-store on PostgreSQL skipped: %s\n", error.message);
                        return failed;
                }
                if (k < 0) {
                        printf("# cannot open %s: %s\n", location, error.message ?: strerror(-k));
                        return failed + 1;
                }
        }
        printf("# cluster-store on PostgreSQL (%s)\n", location);
        return failed + cmocka_run_group_tests_name("postgresql", tests, NULL, NULL);
}
