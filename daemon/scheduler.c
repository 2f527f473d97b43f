/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <sys/random.h>
#include <sys/timerfd.h>

#include "batch-error.h"
#include "cluster.h"
#include "db-retry.h"
#include "lifecycle-log.h"
#include "log.h"
#include "manager.h"
#include "metrics.h"
#include "schedule-store.h"
#include "scheduler.h"

/* Due fires that wait for the concurrency limit or an overlapping execution. Beyond this, fires are recorded as
 * non-runs instead of piling up in memory. */
#define QUEUE_MAX 10000U
/* After a long downtime a minutely job has thousands of missed fires; each is a non-run row up to this many,
 * the rest are summarized in one. */
#define MISSED_RECORD_MAX 1000U
/* Work a catch-up does per loop iteration: missed fires computed, or non-runs recorded and fires launched. A
 * slice costs milliseconds, so D-Bus calls, timers and steps wait at most that long behind a catch-up, however
 * long batchd was down (a week of a minutely schedule is 10,080 fires). */
#define CATCH_UP_COMPUTE_SLICE 64U
#define CATCH_UP_RECORD_SLICE 1U

/* The fires a job missed while batchd was down, worked through from a low-priority defer source after READY=1.
 * While it runs, the job's own timer is held (computed, not armed), so no new fire overtakes a missed one. */
typedef struct CatchUp {
        sd_event_source *source;
        usec_t cursor;                   /* the newest missed fire found so far (the last fire before, at first) */
        usec_t until;                    /* when batchd started: fires up to this were missed */
        usec_t *missed;                  /* the newest 'keep' missed fires: a ring while computing, then in order */
        size_t keep, total;              /* total: every missed fire found, also those that fell out of the ring */
        size_t n, run_from, next;        /* once computed: how many are kept, the first to run, the next to handle */
        bool computed;
        bool summary_claimed;            /* cluster: the summary non-run holds the claim of missed[0] */
} CatchUp;

struct JobTimer {
        Manager *manager;
        char *job_name;
        char *schedule;
        CalendarSpec *calendar;
        usec_t randomized_delay;
        usec_t next;                     /* the scheduled time of the next fire, without the random delay */
        usec_t armed_at;                 /* next plus the random delay; 0: never elapses again */
        CatchUp *catch_up;               /* a catch-up still in progress: the timer is held until it ends */
        usec_t last_fire;                /* the last due fire, run or not (list-timers' LAST); 0: none known */
};

typedef struct PendingFire {
        char *job_name;
        usec_t scheduled;
        bool catch_up;                   /* waits for the job to be idle whatever its overlap policy */
        usec_t first_try;                /* CLOCK_MONOTONIC of the first launch that found the database locked */
} PendingFire;

static CatchUp *catch_up_free(CatchUp *c) {
        if (!c)
                return NULL;
        sd_event_source_disable_unref(c->source);
        free(c->missed);
        return mfree(c);
}

static JobTimer *job_timer_free(JobTimer *t) {
        if (!t)
                return NULL;
        catch_up_free(t->catch_up);
        calendar_spec_free(t->calendar);
        free(t->job_name);
        free(t->schedule);
        return mfree(t);
}

static uint64_t random_below(uint64_t n) {
        uint64_t v = 0;

        if (n == 0)
                return 0;
        if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != sizeof(v))
                v = now_usec(CLOCK_MONOTONIC) * 6364136223846793005ULL;
        return v % n;
}

/* ---- claiming a fire (cluster) ---- */

/* Opens a transaction and claims the fire in it: 1 when this node has it, 0 when another node (or an earlier
 * attempt) claimed it, or a negative errno. What the fire leads to (an execution, a non-run) is written in the
 * same transaction, so a claim never exists without it, nor it without the claim. */
static int scheduler_claim(Manager *m, const char *job, usec_t scheduled, RepositoryTransaction *tx,
                           sd_bus_error *error) {
        char buf[TIMESTAMP_MAX];
        int k;

        k = manager_check_lease(m, error);
        if (k < 0)
                return k;
        k = repository_transaction_open(m->repository, tx, error);
        if (k < 0)
                return k;
        k = cluster_store_claim_fire(cluster_get_store(m->cluster), job, scheduled, cluster_node_name(m->cluster));
        if (k < 0)
                return sd_bus_error_setf(error, db_error_is_busy(k) ? BATCH_ERROR_DATABASE_BUSY : BATCH_ERROR_DATABASE,
                                         "Failed to claim the fire: %s", strerror(-k)), k;
        if (k == 0)
                log_debug("Job: [%s] fire scheduled for %s was claimed by another node.", job,
                          strna(timestamp_format(scheduled, buf)));
        return k;
}

/* ---- recording what did not run ---- */

static void record_nonrun_claimed(Manager *m, const char *job, usec_t scheduled, const char *reason,
                                  const char *detail) {
        char buf[TIMESTAMP_MAX];
        char *fields[3] = {};
        _cleanup_free_ char *f_reason = NULL, *f_time = NULL;
        int k;

        metrics_nonrun(m, job, reason);
        k = schedule_store_add_nonrun(m->repository, job, scheduled, reason, detail);
        if (k < 0)
                log_warning_errno(k, "Failed to record that %s did not run: %m", job);

        if (asprintf(&f_reason, "BATCH_NONRUN_REASON=%s", reason) >= 0 &&
            asprintf(&f_time, "BATCH_SCHEDULED_USEC=%" PRIu64, scheduled) >= 0) {
                fields[0] = f_reason;
                fields[1] = f_time;
        }
        lifecycle_log_fields(MESSAGE_FIRE_NOT_STARTED, LOG_NOTICE, NULL, NULL, fields,
                             "Job: [%s] scheduled for %s did not run: %s%s%s", job,
                             strna(timestamp_format(scheduled, buf)), reason, detail ? ": " : "", strempty(detail));
}

/* In a cluster only the node that claims the fire records its non-run: every node evaluates every fire.
 * Returns whether this node recorded it. */
static bool record_nonrun(Manager *m, const char *job, usec_t scheduled, const char *reason, const char *detail) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(repository_transaction_done) RepositoryTransaction tx = {};
        int k;

        if (!m->cluster) {
                record_nonrun_claimed(m, job, scheduled, reason, detail);
                return true;
        }
        k = scheduler_claim(m, job, scheduled, &tx, &error);
        if (k < 0)
                log_full(k == -ESTALE ? LOG_DEBUG : LOG_WARNING, "Job: [%s] cannot record a non-run (%s): %s", job,
                         reason, error.message ?: strerror(-k));
        if (k <= 0)
                return false;
        record_nonrun_claimed(m, job, scheduled, reason, detail);
        if (repository_transaction_commit(&tx, &error) < 0) {
                log_warning("Job: [%s] failed to record a non-run (%s): %s", job, reason, error.message);
                return false;
        }
        return true;
}

/* ---- launching a fire ---- */

static int fire_parameters(const JobConfig *job, usec_t scheduled, JobParameters *ret) {
        JobParameters p = JOB_PARAMETERS_NULL;
        char value[64];
        time_t sec = (time_t) (scheduled / USEC_PER_SEC);
        struct tm tm;
        int k;

        if (!job->schedule_parameter) {
                *ret = p;
                return 0;
        }
        /* The fire time in local time, as Spring's LocalDate/LocalDateTime would hold it. */
        if (!localtime_r(&sec, &tm))
                return -EINVAL;
        if (job->schedule_parameter_type == JOB_PARAMETER_DATE)
                strftime(value, sizeof(value), "%Y-%m-%d", &tm);
        else
                strftime(value, sizeof(value), "%Y-%m-%dT%H:%M:%S", &tm);
        k = job_parameters_add(&p, job->schedule_parameter, job->schedule_parameter_type, value, true, NULL);
        if (k < 0) {
                job_parameters_done(&p);
                return k;
        }
        *ret = p;
        return 0;
}

static const char *nonrun_reason_for(const sd_bus_error *error) {
        if (sd_bus_error_has_name(error, BATCH_ERROR_JOB_INSTANCE_ALREADY_COMPLETE))
                return NONRUN_INSTANCE_COMPLETE;
        if (sd_bus_error_has_name(error, BATCH_ERROR_JOB_EXECUTION_ALREADY_RUNNING))
                return NONRUN_ALREADY_RUNNING;
        return NONRUN_LAUNCH_FAILED;
}

static int scheduler_enqueue(Manager *m, const char *job, usec_t scheduled, bool catch_up, usec_t first_try);
static void scheduler_arm_retry(Manager *m);

/* In a cluster the overlap and the concurrency limit are checked again inside the claim's transaction, under a
 * lock every node takes (cluster_store_lock()), so that two nodes launching at the same instant cannot both
 * find room for one more: the count and the launch it allows are one. 0: launch; 1: an overlap non-run was
 * recorded (the caller commits it with the claim); -EBUSY: not now, queue it; other negative errno: failure. */
static int scheduler_cluster_limits(Manager *m, const JobConfig *job, usec_t scheduled, bool catch_up) {
        ClusterStore *store = cluster_get_store(m->cluster);
        unsigned max = m->config->config->max_concurrent_executions, running;
        bool per_job = catch_up || job->overlap != JOB_OVERLAP_ALLOW;
        _cleanup_free_ char *key = NULL;
        int k;

        if (!per_job && max == 0)
                return 0;
        /* Always the job's lock before the global one, so two nodes never wait for each other in a circle. */
        if (per_job) {
                if (asprintf(&key, "batchd-job:%s", job->name) < 0)
                        return -ENOMEM;
                k = cluster_store_lock(store, key);
                if (k < 0)
                        return k;
                running = manager_count_running_everywhere(m, job->name);
                if (running > 0) {
                        _cleanup_free_ char *detail = NULL;

                        if (catch_up || job->overlap != JOB_OVERLAP_SKIP)
                                return -EBUSY;
                        if (asprintf(&detail, "%u execution(s) of the job still running", running) < 0)
                                detail = NULL;
                        record_nonrun_claimed(m, job->name, scheduled, NONRUN_OVERLAP, detail);
                        return 1;
                }
        }
        if (max > 0) {
                k = cluster_store_lock(store, "batchd-capacity");
                if (k < 0)
                        return k;
                if (manager_count_running_everywhere(m, NULL) >= max)
                        return -EBUSY;
        }
        return 0;
}

/* Drops the runs launched since runs_before: their records were rolled back, so they never ran. */
static void scheduler_drop_runs(Manager *m, size_t runs_before) {
        while (m->n_runs > runs_before) {
                JobRun *run = m->runs[--m->n_runs];

                log_error("Job: [%s] scheduled launch dropped.", run->job->name);
                job_run_free(run);
        }
}

/* Returns -EAGAIN when the database was locked and the fire went back into the queue for another try. In a
 * cluster the fire is claimed first, in the same transaction as the execution or non-run it leads to; a fire
 * another node claimed is skipped without a trace. */
static int scheduler_launch(Manager *m, const JobConfig *job, usec_t scheduled, bool catch_up, usec_t first_try) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(job_parameters_done) JobParameters p = JOB_PARAMETERS_NULL;
        _cleanup_(repository_transaction_done) RepositoryTransaction tx = {};
        bool outer_defer = m->defer_starts, claimed = false;
        size_t runs_before = m->n_runs;
        int64_t id = 0;
        int k = 0;

        if (m->cluster) {
                k = scheduler_claim(m, job->name, scheduled, &tx, &error);
                if (k == 0)
                        return 0;
                claimed = k > 0;
                if (k == -ESTALE)
                        return log_debug("Job: [%s] not launched: %s", job->name, error.message), 0;
                if (k < 0 && !db_error_is_busy(k))
                        return log_warning("Job: [%s] not launched: %s", job->name, error.message), k;
                if (claimed) {
                        k = scheduler_cluster_limits(m, job, scheduled, catch_up);
                        if (k == -EBUSY) {
                                /* Another node's execution holds the job or the last free slot: this node
                                 * queues the fire as every node does; whoever dispatches it first claims it. */
                                repository_transaction_done(&tx);
                                (void) scheduler_enqueue(m, job->name, scheduled, catch_up, first_try);
                                return -EBUSY;
                        }
                        if (k == 1) {
                                k = schedule_store_set_last_fire(m->repository, job->name, scheduled, 0);
                                if (k < 0)
                                        log_warning_errno(k, "Failed to store the last fire time of %s: %m",
                                                          job->name);
                                if (repository_transaction_commit(&tx, &error) < 0)
                                        log_warning("Job: [%s] failed to record a non-run: %s", job->name,
                                                    error.message);
                                return 0;
                        }
                        if (k < 0 && !db_error_is_busy(k))
                                return log_warning_errno(k, "Job: [%s] not launched: %m", job->name);
                        if (k < 0)
                                claimed = false;   /* the lock is taken: the attempt goes, the claim with it */
                }
                /* The run starts only once the claim and its execution are committed together. */
                m->defer_starts = true;
        }

        if (k >= 0) {
                k = fire_parameters(job, scheduled, &p);
                if (k < 0) {
                        record_nonrun_claimed(m, job->name, scheduled, NONRUN_LAUNCH_FAILED,
                                              "cannot format the fire time");
                        m->defer_starts = outer_defer;
                        if (m->cluster && repository_transaction_commit(&tx, &error) < 0)
                                log_warning("Job: [%s] failed to record a non-run: %s", job->name, error.message);
                        return k;
                }

                k = manager_launch(m, job->name, &p,
                                   job->incrementer == JOB_INCREMENTER_RUN_ID ? LAUNCH_NEXT_INSTANCE : LAUNCH_START,
                                   &id, &error);
        }
        m->defer_starts = outer_defer;
        if (k < 0 && db_error_is_busy(k)) {
                usec_t now = now_usec(CLOCK_MONOTONIC);

                /* Another process holds the write lock: the fire waits for it from a timer, in the queue, and
                 * becomes a non-run only when the wait is over. */
                if (first_try == 0)
                        first_try = now;
                if (now - first_try < DB_WAIT_MAX_USEC) {
                        /* Nothing of this attempt stays: the claim goes with it. */
                        repository_transaction_done(&tx);
                        scheduler_drop_runs(m, runs_before);
                        k = scheduler_enqueue(m, job->name, scheduled, catch_up, first_try);
                        if (k < 0)
                                return k;       /* a full queue recorded its non-run already */
                        scheduler_arm_retry(m);
                        return -EAGAIN;
                }
        } else if (k >= 0) {
                m->fire_retry_delay = 0;
                if (!catch_up)
                        metrics_fired(m, job->name, scheduled, now_usec(CLOCK_REALTIME));
        }
        if (m->cluster && !claimed) {
                /* The database stayed locked before this node could claim the fire: whoever claims it
                 * records it; this node records nothing. */
                log_warning("Job: [%s] fire scheduled for %" PRIu64 " not claimed: %s", job->name, scheduled,
                            error.message ?: strerror(-k));
                return 0;
        }
        if (k < 0)
                record_nonrun_claimed(m, job->name, scheduled, nonrun_reason_for(&error),
                                      error.message ?: strerror(-k));
        else if (m->cluster) {
                k = cluster_store_set_fire_execution(cluster_get_store(m->cluster), job->name, scheduled, id);
                if (k < 0)
                        log_warning_errno(k, "Failed to record the execution of the fire of %s: %m", job->name);
        }

        k = schedule_store_set_last_fire(m->repository, job->name, scheduled, id);
        if (k < 0)
                log_warning_errno(k, "Failed to store the last fire time of %s: %m", job->name);

        if (!m->cluster)
                return 0;
        sd_bus_error_free(&error);
        k = repository_transaction_commit(&tx, &error);
        if (k < 0) {
                log_error("Job: [%s] failed to record the fire scheduled for %" PRIu64 ": %s", job->name, scheduled,
                          error.message);
                scheduler_drop_runs(m, runs_before);
                return k;
        }
        /* Inside the scheduler's batch the outer transaction is not committed yet: it starts the runs. */
        if (!outer_defer) {
                for (size_t i = runs_before; i < m->n_runs; i++)
                        if (!m->runs[i]->started)
                                job_run_start(m->runs[i]);
                if (m->n_runs > runs_before)
                        manager_update_status(m);
        }
        return 0;
}

static bool scheduler_has_capacity(Manager *m) {
        unsigned max = m->config->config->max_concurrent_executions;

        return max == 0 || manager_count_running_everywhere(m, NULL) < max;
}

static int on_fire_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        scheduler_dispatch(userdata);
        return 0;
}

static void scheduler_arm_retry(Manager *m) {
        int k;

        m->fire_retry_delay = db_retry_next(m->fire_retry_delay);
        if (!m->fire_retry_source)
                k = sd_event_add_time_relative(m->event, &m->fire_retry_source, CLOCK_MONOTONIC, m->fire_retry_delay,
                                               0, on_fire_retry, m);
        else {
                k = sd_event_source_set_time_relative(m->fire_retry_source, m->fire_retry_delay);
                if (k >= 0)
                        k = sd_event_source_set_enabled(m->fire_retry_source, SD_EVENT_ONESHOT);
        }
        if (k < 0)
                log_warning_errno(k, "Failed to arm the retry of scheduled launches: %m");
}

static int scheduler_enqueue(Manager *m, const char *job, usec_t scheduled, bool catch_up, usec_t first_try) {
        _cleanup_free_ char *name = NULL;
        PendingFire *q;
        size_t i;

        if (m->n_queue >= QUEUE_MAX) {
                record_nonrun(m, job, scheduled, NONRUN_QUEUE_FULL, "too many fires waiting");
                return -ENOBUFS;
        }
        name = strdup(job);
        if (!name)
                return -ENOMEM;
        q = reallocarray(m->queue, m->n_queue + 1, sizeof(PendingFire));
        if (!q)
                return -ENOMEM;
        m->queue = q;

        /* Due order: a late catch-up never overtakes an earlier fire. */
        for (i = m->n_queue; i > 0 && m->queue[i - 1].scheduled > scheduled; i--)
                m->queue[i] = m->queue[i - 1];
        m->queue[i] = (PendingFire) { .job_name = TAKE_PTR(name), .scheduled = scheduled, .catch_up = catch_up,
                                      .first_try = first_try };
        m->n_queue++;
        return 0;
}

static JobTimer *scheduler_find_timer(Manager *m, const char *job);

static void note_fire(Manager *m, const char *job, usec_t scheduled) {
        JobTimer *t = scheduler_find_timer(m, job);

        if (t && scheduled > t->last_fire)
                t->last_fire = scheduled;
}

/* A fire that is due now: run it, queue it, or record why not. */
static void scheduler_fire(Manager *m, const JobConfig *job, usec_t scheduled, bool catch_up) {
        unsigned running;

        if (m->state != MANAGER_RUNNING)
                return;
        note_fire(m, job->name, scheduled);
        if (manager_check_lease(m, NULL) < 0) {
                /* Fenced: the other nodes fire it; this one records nothing until it has joined again. */
                log_debug("Job: [%s] fire skipped: this node has no cluster lease.", job->name);
                return;
        }
        if (!manager_job_enabled(m, job)) {
                record_nonrun(m, job->name, scheduled, NONRUN_DISABLED, NULL);
                return;
        }

        running = manager_count_running_everywhere(m, job->name);
        if (running > 0 && (catch_up || job->overlap != JOB_OVERLAP_ALLOW)) {
                if (!catch_up && job->overlap == JOB_OVERLAP_SKIP) {
                        _cleanup_free_ char *detail = NULL;

                        if (asprintf(&detail, "%u execution(s) of the job still running", running) < 0)
                                detail = NULL;
                        record_nonrun(m, job->name, scheduled, NONRUN_OVERLAP, detail);
                        return;
                }
                (void) scheduler_enqueue(m, job->name, scheduled, catch_up, 0);
                return;
        }

        if (!scheduler_has_capacity(m) || m->n_queue > 0) {
                /* Behind whatever already waits, so the queue stays in due order. */
                (void) scheduler_enqueue(m, job->name, scheduled, catch_up, 0);
                scheduler_dispatch(m);
                return;
        }

        (void) scheduler_launch(m, job, scheduled, catch_up, 0);
}

void scheduler_dispatch(Manager *m) {
        size_t i = 0;
        int k;

        if (m->state != MANAGER_RUNNING)
                return;

        while (i < m->n_queue && scheduler_has_capacity(m)) {
                PendingFire f = m->queue[i];
                const JobConfig *job = config_find_job(m->config->config, f.job_name);

                if (job && manager_count_running_everywhere(m, f.job_name) > 0 &&
                    (f.catch_up || job->overlap != JOB_OVERLAP_ALLOW)) {
                        /* This job is busy; later fires of other jobs may go first. */
                        i++;
                        continue;
                }

                memmove(m->queue + i, m->queue + i + 1, (m->n_queue - i - 1) * sizeof(PendingFire));
                m->n_queue--;
                if (job) {
                        k = scheduler_launch(m, job, f.scheduled, f.catch_up, f.first_try);
                        free(f.job_name);
                        if (k == -EAGAIN || k == -EBUSY)
                                break;  /* the database is locked (the retry timer dispatches again), or in a
                                         * cluster another node's execution holds the room (dispatched again
                                         * with the next heartbeat) */
                        continue;
                }
                record_nonrun(m, f.job_name, f.scheduled, NONRUN_REMOVED, NULL);
                free(f.job_name);
        }
}

/* ---- timers ---- */

/* Every fire that fell due in one loop iteration is launched from here, in one database transaction: a thousand
 * jobs due in the same second cost one disk write, not three thousand. Nothing of the batch starts or is announced
 * before that transaction committed; when the commit fails, nothing of it ran and no id of it was seen. */
static void scheduler_launch_due(Manager *m) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(repository_transaction_done) RepositoryTransaction tx = {};
        size_t runs_before = m->n_runs;
        bool batched;

        /* Without the batch (the database is locked), each launch takes its own transaction and a locked one
         * is retried (scheduler_launch()). */
        batched = repository_transaction_open(m->repository, &tx, &error) >= 0;
        m->defer_starts = batched;
        for (size_t i = 0; i < m->n_due; i++) {
                const JobConfig *job = config_find_job(m->config->config, m->due[i].job_name);

                if (job)
                        scheduler_fire(m, job, m->due[i].scheduled, false);
                free(m->due[i].job_name);
        }
        m->n_due = 0;
        m->defer_starts = false;
        if (!batched)
                return;

        if (repository_transaction_commit(&tx, &error) < 0) {
                log_error("Failed to record the launches of scheduled jobs: %s", error.message);
                while (m->n_runs > runs_before) {
                        JobRun *run = m->runs[--m->n_runs];

                        log_error("Job: [%s] scheduled launch dropped.", run->job->name);
                        job_run_free(run);
                }
                return;
        }

        /* The steps' starts as a second batch, one write instead of one per launch; each step's process starts
         * (and is announced) only once its record committed. Without it, each start is its own transaction. */
        batched = repository_transaction_open(m->repository, &tx, &error) >= 0;
        m->batch_writes = batched;
        for (size_t i = runs_before; i < m->n_runs; i++)
                if (!m->runs[i]->started)
                        job_run_start(m->runs[i]);
        m->batch_writes = false;
        if (batched) {
                int k = repository_transaction_commit(&tx, &error);

                if (k < 0)
                        log_error("Failed to record the step starts of scheduled jobs: %s", error.message);
                for (size_t i = runs_before; i < m->n_runs; i++)
                        job_run_batch_done(m->runs[i], k < 0 ? k : 0);
        }
        if (m->n_runs > runs_before)
                manager_update_status(m);
}

/* Computes the timer's next elapse strictly after the given time; none left disarms it. The manager's single
 * tick source is re-armed separately (scheduler_rearm()). */
static int job_timer_arm(JobTimer *t, usec_t after) {
        usec_t next;
        int k;

        k = calendar_spec_next_usec(t->calendar, after, &next);
        if (k == -ENOENT) {
                t->next = t->armed_at = 0;
                return 0;
        }
        if (k < 0)
                return k;
        t->next = next;
        t->armed_at = next + random_below(t->randomized_delay + 1);
        return 0;
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata);

/* One realtime timer for all jobs, armed for the earliest elapse: a thousand jobs due in the same second are one
 * wakeup and one dispatch, and nothing wakes batchd while nothing is due. */
static int scheduler_rearm(Manager *m) {
        usec_t earliest = 0;
        int k;

        for (size_t i = 0; i < m->n_timers; i++)
                if (m->timers[i]->armed_at > 0 && !m->timers[i]->catch_up &&
                    (earliest == 0 || m->timers[i]->armed_at < earliest))
                        earliest = m->timers[i]->armed_at;

        if (earliest == 0)
                return m->tick_source ? sd_event_source_set_enabled(m->tick_source, SD_EVENT_OFF) : 0;
        if (!m->tick_source) {
                /* One microsecond of accuracy: a timer that fires is worth its wakeup. */
                k = sd_event_add_time(m->event, &m->tick_source, CLOCK_REALTIME, earliest, 1, on_tick, m);
                if (k < 0)
                        return k;
                return sd_event_source_set_description(m->tick_source, "scheduler");
        }
        k = sd_event_source_set_time(m->tick_source, earliest);
        if (k < 0)
                return k;
        return sd_event_source_set_enabled(m->tick_source, SD_EVENT_ONESHOT);
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        usec_t now = now_usec(CLOCK_REALTIME);

        for (size_t i = 0; i < m->n_timers; i++) {
                JobTimer *t = m->timers[i];
                usec_t scheduled = t->next;
                PendingFire *a;
                char *name;

                if (t->armed_at == 0 || t->armed_at > now || t->catch_up)
                        continue;
                log_debug("Timer of %s fired %" PRIu64 " us late.", t->job_name, now - t->armed_at);
                (void) job_timer_arm(t, scheduled);

                name = strdup(t->job_name);
                a = name ? reallocarray(m->due, m->n_due + 1, sizeof(PendingFire)) : NULL;
                if (!a) {
                        free(name);
                        record_nonrun(m, t->job_name, scheduled, NONRUN_LAUNCH_FAILED, "out of memory");
                        continue;
                }
                m->due = a;
                m->due[m->n_due++] = (PendingFire) { .job_name = name, .scheduled = scheduled };
        }

        (void) scheduler_rearm(m);
        scheduler_launch_due(m);
        return 0;
}

static int job_timer_new(Manager *m, const JobConfig *job, JobTimer **ret) {
        JobTimer *t;
        int k;

        t = calloc(1, sizeof(JobTimer));
        if (!t)
                return -ENOMEM;
        t->manager = m;
        t->job_name = strdup(job->name);
        t->schedule = strdup(job->schedule);
        t->randomized_delay = job->randomized_delay_usec;
        if (!t->job_name || !t->schedule) {
                job_timer_free(t);
                return -ENOMEM;
        }
        /* Our own copy: the configuration that parsed it may be replaced by a reload. */
        k = calendar_spec_from_string(job->schedule, &t->calendar, NULL);
        if (k < 0) {
                job_timer_free(t);
                return k;
        }
        *ret = t;
        return 0;
}

static JobTimer *scheduler_find_timer(Manager *m, const char *job) {
        for (size_t i = 0; i < m->n_timers; i++)
                if (streq(m->timers[i]->job_name, job))
                        return m->timers[i];
        return NULL;
}

usec_t scheduler_next_elapse(Manager *m, const char *job) {
        JobTimer *t = scheduler_find_timer(m, job);

        return t ? t->next : 0;
}

usec_t scheduler_last_fire(Manager *m, const char *job) {
        JobTimer *t = scheduler_find_timer(m, job);

        return t ? t->last_fire : 0;
}

/* Fires that fell due while batchd was down. Persistent jobs catch up (systemd's Persistent=: the latest one; with a
 * schedule_parameter every missed fire, each its own instance, up to catch_up); the rest are non-runs.
 *
 * A slice per call: first the missed fires are computed CATCH_UP_COMPUTE_SLICE at a time (only the newest
 * max(catch_up, 1) + MISSED_RECORD_MAX are kept, older ones are counted), then the non-runs are recorded and the
 * fires launched CATCH_UP_RECORD_SLICE at a time. Returns true when the catch-up is complete. */
static bool catch_up_step(Manager *m, JobTimer *t) {
        CatchUp *c = t->catch_up;
        const JobConfig *job;
        unsigned budget;

        if (!c->computed) {
                for (unsigned i = 0; i < CATCH_UP_COMPUTE_SLICE; i++) {
                        usec_t next;

                        if (calendar_spec_next_usec(t->calendar, c->cursor, &next) < 0 || next > c->until) {
                                c->computed = true;
                                break;
                        }
                        c->missed[c->total++ % c->keep] = next;
                        c->cursor = next;
                }
                if (!c->computed)
                        return false;
                if (c->total == 0)
                        return true;

                /* Unroll the ring, oldest first. */
                c->n = MIN(c->total, c->keep);
                if (c->total > c->keep) {
                        _cleanup_free_ usec_t *ordered = calloc(c->n, sizeof(usec_t));
                        size_t first = c->total % c->keep;

                        if (!ordered) {
                                log_oom();
                                return true;
                        }
                        memcpy(ordered, c->missed + first, (c->keep - first) * sizeof(usec_t));
                        memcpy(ordered + c->keep - first, c->missed, first * sizeof(usec_t));
                        free(c->missed);
                        c->missed = TAKE_PTR(ordered);
                }
                return false;   /* recording starts with the next slice */
        }

        /* The timer exists, so a reload kept the job with this schedule; its other settings may have changed. */
        job = config_find_job(m->config->config, t->job_name);
        if (!job)
                return true;

        if (c->next == 0) {
                if (!job->persistent)
                        c->run_from = c->n;
                else if (job->schedule_parameter)
                        c->run_from = c->n - MIN(c->n, (size_t) MAX(job->catch_up, 1u));
                else
                        c->run_from = c->n - 1;

                if (c->total > c->n) {
                        _cleanup_free_ char *detail = NULL;

                        if (asprintf(&detail, "%zu earlier fire(s) were missed while batchd was down", c->total - c->n) < 0)
                                detail = NULL;
                        c->summary_claimed = record_nonrun(m, job->name, c->missed[0], NONRUN_MISSED, detail);
                }
        }

        for (budget = CATCH_UP_RECORD_SLICE; budget > 0 && c->next < c->n; budget--, c->next++) {
                note_fire(m, job->name, c->missed[c->next]);
                if (c->next < c->run_from) {
                        const char *why = job->persistent ? "batchd was down; beyond the catch_up limit" :
                                                            "batchd was down and the job is not persistent";

                        /* The summary is keyed by missed[0] too: in a cluster it claimed that fire already. */
                        if (c->next == 0 && m->cluster && c->summary_claimed)
                                record_nonrun_claimed(m, job->name, c->missed[0], NONRUN_MISSED, why);
                        else
                                (void) record_nonrun(m, job->name, c->missed[c->next], NONRUN_MISSED, why);
                } else
                        scheduler_fire(m, job, c->missed[c->next], true);
        }
        if (c->next < c->n)
                return false;

        /* Recorded even when nothing ran, so the same fires are not reported again at the next start. */
        if (c->run_from == c->n)
                (void) schedule_store_set_last_fire(m->repository, job->name, c->missed[c->n - 1], 0);
        return true;
}

static int on_catch_up(sd_event_source *s, void *userdata) {
        JobTimer *t = userdata;
        Manager *m = t->manager;

        /* Stopping: what is left is caught up at the next start (the last fire on record did not move). */
        if (m->state != MANAGER_RUNNING)
                return sd_event_source_set_enabled(s, SD_EVENT_OFF);

        if (!catch_up_step(m, t))
                return 0;

        log_debug("Catch-up of %s done: %zu missed fire(s).", t->job_name, t->catch_up->total);
        t->catch_up = catch_up_free(t->catch_up);
        /* The held timer: if its elapse passed meanwhile, it fires right away, after every missed fire. */
        (void) scheduler_rearm(m);
        return 0;
}

/* Starts the catch-up of a job that has fired before. The work happens in on_catch_up(), after READY=1. */
static int scheduler_catch_up(Manager *m, const JobConfig *job, JobTimer *t, usec_t now) {
        CatchUp *c;
        usec_t last;
        int k;

        k = schedule_store_get_last_fire(m->repository, job->name, &last);
        if (k < 0)
                return 0; /* never fired: nothing can have been missed */
        t->last_fire = last;

        c = calloc(1, sizeof(CatchUp));
        if (!c)
                return -ENOMEM;
        c->cursor = last;
        c->until = now;
        c->keep = (size_t) MAX(job->catch_up, 1u) + MISSED_RECORD_MAX;
        c->missed = calloc(c->keep, sizeof(usec_t));
        if (!c->missed) {
                catch_up_free(c);
                return -ENOMEM;
        }

        /* Below everything else: D-Bus calls, signals, timers and steps go first, and so does the idle cleanup of
         * finished executions (job-run.c), which dispatches queued fires. A defer source stays pending, and
         * sd-event picks the longest-pending source among equals, so at equal priority a catch-up would keep
         * that cleanup waiting until it ended. */
        k = sd_event_add_defer(m->event, &c->source, on_catch_up, t);
        if (k >= 0)
                k = sd_event_source_set_priority(c->source, SD_EVENT_PRIORITY_IDLE + 10);
        if (k >= 0)
                k = sd_event_source_set_enabled(c->source, SD_EVENT_ON);
        if (k >= 0)
                (void) sd_event_source_set_description(c->source, "catch-up");
        if (k < 0) {
                catch_up_free(c);
                return k;
        }
        t->catch_up = c;
        return 0;
}

static int scheduler_add_job(Manager *m, const JobConfig *job, bool startup) {
        JobTimer *t = NULL, **a;
        usec_t now = now_usec(CLOCK_REALTIME);
        int k;

        k = job_timer_new(m, job, &t);
        if (k < 0)
                return log_error_errno(k, "Failed to set up the timer of %s: %m", job->name);
        a = reallocarray(m->timers, m->n_timers + 1, sizeof(JobTimer *));
        if (!a) {
                job_timer_free(t);
                return log_oom();
        }
        m->timers = a;
        m->timers[m->n_timers++] = t;

        if (startup) {
                k = scheduler_catch_up(m, job, t, now);
                if (k < 0)
                        log_error_errno(k, "Failed to catch up the fires %s missed: %m", job->name);
        } else
                /* A job added or changed by a reload: its last fire on record, one row by key. */
                (void) schedule_store_get_last_fire(m->repository, job->name, &t->last_fire);

        k = job_timer_arm(t, now);
        if (k < 0)
                return log_error_errno(k, "Failed to compute the next elapse of %s: %m", job->name);
        return 0;
}

/* ---- wall clock changes ---- */

static int clock_watch_arm(Manager *m);

static int on_clock_change(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        usec_t now = now_usec(CLOCK_REALTIME);

        log_info("The system clock changed; recomputing schedules.");
        /* A jump back may put an earlier elapse ahead of us; a jump forward lets the armed timers fire at once,
         * so fires skipped over are not lost. */
        for (size_t i = 0; i < m->n_timers; i++) {
                JobTimer *t = m->timers[i];
                usec_t next;

                if (calendar_spec_next_usec(t->calendar, now, &next) >= 0 && (t->next == 0 || next < t->next))
                        (void) job_timer_arm(t, now);
        }
        (void) scheduler_rearm(m);
        return clock_watch_arm(m);
}

static int clock_watch_arm(Manager *m) {
        /* Far in the future: only the cancellation on a clock change matters. */
        struct itimerspec its = { .it_value.tv_sec = INT32_MAX };
        uint64_t dummy;

        /* Reading acknowledges the change; ECANCELED is what a clock change reports, EAGAIN that there was none. */
        if (read(m->clock_fd, &dummy, sizeof(dummy)) < 0 && errno != ECANCELED && errno != EAGAIN)
                log_debug_errno(errno, "Failed to read the clock-change timer: %m");
        if (timerfd_settime(m->clock_fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL) < 0)
                return -errno;
        return 0;
}

static int clock_watch_setup(Manager *m) {
        int k;

        m->clock_fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
        if (m->clock_fd < 0)
                return -errno;
        k = clock_watch_arm(m);
        if (k < 0)
                return k;
        return sd_event_add_io(m->event, &m->clock_source, m->clock_fd, EPOLLIN, on_clock_change, m);
}

/* ---- lifecycle ---- */

int scheduler_start(Manager *m) {
        const Config *c = m->config->config;
        int k;

        k = clock_watch_setup(m);
        if (k < 0)
                log_warning_errno(k, "Failed to watch for clock changes, schedules will not follow them: %m");

        for (size_t i = 0; i < c->n_jobs; i++)
                if (c->jobs[i]->schedule)
                        (void) scheduler_add_job(m, c->jobs[i], true);
        k = scheduler_rearm(m);
        if (k < 0)
                return log_error_errno(k, "Failed to arm the scheduler's timer: %m");
        scheduler_dispatch(m);
        return 0;
}

static bool timer_matches(const JobTimer *t, const JobConfig *job) {
        return job->schedule && streq(t->schedule, job->schedule) &&
               t->randomized_delay == job->randomized_delay_usec;
}

void scheduler_reload(Manager *m) {
        const Config *c = m->config->config;
        size_t i = 0;

        /* Timers of removed jobs or changed schedules go; unchanged ones keep their next elapse. A removed job
         * keeps its history. */
        while (i < m->n_timers) {
                const JobConfig *job = config_find_job(c, m->timers[i]->job_name);

                if (job && timer_matches(m->timers[i], job)) {
                        i++;
                        continue;
                }
                job_timer_free(m->timers[i]);
                memmove(m->timers + i, m->timers + i + 1, (m->n_timers - i - 1) * sizeof(JobTimer *));
                m->n_timers--;
        }
        for (size_t j = 0; j < c->n_jobs; j++)
                if (c->jobs[j]->schedule && !scheduler_find_timer(m, c->jobs[j]->name))
                        (void) scheduler_add_job(m, c->jobs[j], false);
        (void) scheduler_rearm(m);
        scheduler_dispatch(m);
}

void scheduler_free(Manager *m) {
        for (size_t i = 0; i < m->n_timers; i++)
                job_timer_free(m->timers[i]);
        m->timers = mfree(m->timers);
        m->n_timers = 0;
        for (size_t i = 0; i < m->n_queue; i++)
                free(m->queue[i].job_name);
        m->queue = mfree(m->queue);
        m->n_queue = 0;
        for (size_t i = 0; i < m->n_due; i++)
                free(m->due[i].job_name);
        m->due = mfree(m->due);
        m->n_due = 0;
        m->tick_source = sd_event_source_disable_unref(m->tick_source);
        m->clock_source = sd_event_source_disable_unref(m->clock_source);
        m->clock_fd = safe_close(m->clock_fd);
}
