/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch-status.h"
#include "log.h"
#include "manager.h"
#include "metrics.h"
#include "schedule-store.h"

/* Upper bounds of the duration histogram, in seconds: a second to a day covers batch work. */
static const double duration_buckets[] = { 1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400 };
#define N_BUCKETS ELEMENTSOF(duration_buckets)

/* Every non-run reason schedule-store.h defines, so each job shows each of them (zero until it happens). */
static const char *const nonrun_reasons[] = {
        NONRUN_OVERLAP, NONRUN_MISSED, NONRUN_QUEUE_FULL, NONRUN_DISABLED, NONRUN_INSTANCE_COMPLETE,
        NONRUN_ALREADY_RUNNING, NONRUN_LAUNCH_FAILED, NONRUN_REMOVED,
};
#define N_REASONS ELEMENTSOF(nonrun_reasons)

/* The statuses an execution can end with. */
static const BatchStatus end_statuses[] = {
        BATCH_STATUS_COMPLETED, BATCH_STATUS_FAILED, BATCH_STATUS_STOPPED, BATCH_STATUS_ABANDONED,
};

typedef struct JobMetrics {
        char *job;
        uint64_t ended[_BATCH_STATUS_MAX];
        usec_t last_success, last_failure;          /* 0: none since batchd started */
        uint64_t buckets[N_BUCKETS];                /* non-cumulative; summed when rendered */
        uint64_t duration_count;
        double duration_sum;
        uint64_t items_read, items_written;
        uint64_t nonruns[N_REASONS];
        uint64_t nonruns_other;
        bool fired;
        double lateness;                            /* seconds, of the last fire launched */
} JobMetrics;

struct Metrics {
        usec_t start_time;
        JobMetrics *jobs;
        size_t n_jobs;
};

Metrics *metrics_free(Metrics *mt) {
        if (!mt)
                return NULL;
        for (size_t i = 0; i < mt->n_jobs; i++)
                free(mt->jobs[i].job);
        free(mt->jobs);
        return mfree(mt);
}

static Metrics *metrics_get(Manager *m) {
        if (!m->metrics) {
                m->metrics = calloc(1, sizeof(Metrics));
                if (!m->metrics) {
                        (void) log_oom();
                        return NULL;
                }
                m->metrics->start_time = now_usec(CLOCK_REALTIME);
        }
        return m->metrics;
}

/* Linear: the number of jobs is that of the configuration (plus the few removed since), and this runs once per
 * event, not per row of anything. */
static JobMetrics *metrics_find(Metrics *mt, const char *job) {
        for (size_t i = 0; i < mt->n_jobs; i++)
                if (streq(mt->jobs[i].job, job))
                        return mt->jobs + i;
        return NULL;
}

static JobMetrics *metrics_job(Manager *m, const char *job) {
        Metrics *mt;
        JobMetrics *j, *a;

        assert(job);

        mt = metrics_get(m);
        if (!mt)
                return NULL;
        j = metrics_find(mt, job);
        if (j)
                return j;

        a = reallocarray(mt->jobs, mt->n_jobs + 1, sizeof(JobMetrics));
        if (!a) {
                (void) log_oom();
                return NULL;
        }
        mt->jobs = a;
        j = mt->jobs + mt->n_jobs;
        *j = (JobMetrics) { .job = strdup(job) };
        if (!j->job) {
                (void) log_oom();
                return NULL;
        }
        mt->n_jobs++;
        return j;
}

void metrics_execution_ended(Manager *m, const JobExecution *e) {
        JobMetrics *j;

        assert(m);
        assert(e);

        j = metrics_job(m, e->job_name);
        if (!j)
                return;
        if (e->status >= 0 && e->status < _BATCH_STATUS_MAX)
                j->ended[e->status]++;
        if (e->status == BATCH_STATUS_COMPLETED)
                j->last_success = e->end_time;
        else if (e->status == BATCH_STATUS_FAILED)
                j->last_failure = e->end_time;

        if (e->start_time > 0 && e->end_time >= e->start_time) {
                double d = (double) (e->end_time - e->start_time) / USEC_PER_SEC;

                for (size_t i = 0; i < N_BUCKETS; i++)
                        if (d <= duration_buckets[i]) {
                                j->buckets[i]++;
                                break;
                        }
                j->duration_count++;
                j->duration_sum += d;
        }
}

void metrics_step_ended(Manager *m, const char *job, const StepExecution *s) {
        JobMetrics *j;

        assert(m);
        assert(s);

        j = metrics_job(m, job);
        if (!j)
                return;
        /* A restarted step's record starts from zero (a new step execution), so its counts add up. */
        if (s->read_count > 0)
                j->items_read += (uint64_t) s->read_count;
        if (s->write_count > 0)
                j->items_written += (uint64_t) s->write_count;
}

void metrics_nonrun(Manager *m, const char *job, const char *reason) {
        JobMetrics *j;

        assert(m);
        assert(reason);

        j = metrics_job(m, job);
        if (!j)
                return;
        for (size_t i = 0; i < N_REASONS; i++)
                if (streq(nonrun_reasons[i], reason)) {
                        j->nonruns[i]++;
                        return;
                }
        j->nonruns_other++;
}

void metrics_fired(Manager *m, const char *job, usec_t scheduled, usec_t launched) {
        JobMetrics *j;

        assert(m);

        j = metrics_job(m, job);
        if (!j)
                return;
        j->fired = true;
        j->lateness = launched > scheduled ? (double) (launched - scheduled) / USEC_PER_SEC : 0;
}

void metrics_seed(Manager *m) {
        const Config *c;

        assert(m);

        c = m->config->config;
        for (size_t i = 0; i < c->n_jobs; i++) {
                JobExecution **l = NULL;
                JobMetrics *j;
                size_t n = 0;
                int k;

                k = repository_list_executions(m->repository, c->jobs[i]->name, 0, 0, METRICS_SEED_MAX, &l, &n);
                if (k < 0) {
                        log_warning_errno(k, "Failed to read the last executions of %s for the metrics: %m",
                                          c->jobs[i]->name);
                        continue;
                }
                j = n > 0 ? metrics_job(m, c->jobs[i]->name) : NULL;
                /* Newest first: the first of each status is the last one. */
                for (size_t e = 0; j && e < n; e++) {
                        if (l[e]->status == BATCH_STATUS_COMPLETED && j->last_success == 0)
                                j->last_success = l[e]->end_time;
                        else if (l[e]->status == BATCH_STATUS_FAILED && j->last_failure == 0)
                                j->last_failure = l[e]->end_time;
                }
                job_execution_array_free(l, n);
        }
}

/* ---- rendering ---- */

static void put_label_value(FILE *f, const char *v) {
        for (; *v; v++)
                switch (*v) {
                case '\\': fputs("\\\\", f); break;
                case '"':  fputs("\\\"", f); break;
                case '\n': fputs("\\n", f);  break;
                default:   fputc(*v, f);
                }
}

static void put_job(FILE *f, const char *name, const char *job) {
        fprintf(f, "%s{job=\"", name);
        put_label_value(f, job);
        fputc('"', f);
}

static void put_double(FILE *f, double v) {
        /* %.17g round-trips; integral values print without an exponent up to 2^53. */
        fprintf(f, " %.17g\n", v);
}

static void header(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The jobs to show, in order: those of the configuration, then those with figures that left it. The returned
 * array points into the configuration and into mt; freed by the caller (not its strings). */
static int metrics_job_names(Manager *m, const Metrics *mt, const char ***ret, size_t *ret_n) {
        const Config *c = m->config->config;
        const char **l;
        size_t n = 0;

        l = calloc(c->n_jobs + (mt ? mt->n_jobs : 0) + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_jobs; i++)
                l[n++] = c->jobs[i]->name;
        for (size_t i = 0; mt && i < mt->n_jobs; i++)
                if (!config_find_job(c, mt->jobs[i].job))
                        l[n++] = mt->jobs[i].job;
        *ret = l;
        *ret_n = n;
        return 0;
}

int metrics_render(Manager *m, char **ret) {
        _cleanup_free_ char *buf = NULL;
        _cleanup_free_ const char **names = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        static const JobMetrics zero = {};
        const Metrics *mt;
        size_t sz = 0, n = 0;
        int k;

        assert(m);
        assert(ret);

        mt = metrics_get(m);
        if (!mt)
                return -ENOMEM;
        k = metrics_job_names(m, mt, &names, &n);
        if (k < 0)
                return k;

        f = open_memstream(&buf, &sz);
        if (!f)
                return -ENOMEM;

#define FOR_JOBS(j, name) \
        for (size_t _i = 0; _i < n && ((name) = names[_i], (j) = metrics_find((Metrics *) mt, names[_i]) ?: &zero, 1); _i++)

        const JobMetrics *j;
        const char *name;

        header(f, "batchd_start_time_seconds", "gauge", "When batchd started; counters count from then.");
        fprintf(f, "batchd_start_time_seconds");
        put_double(f, (double) mt->start_time / USEC_PER_SEC);

        header(f, "batchd_job_executions_total", "counter", "Executions that ended, by final status.");
        FOR_JOBS(j, name)
                for (size_t i = 0; i < ELEMENTSOF(end_statuses); i++) {
                        put_job(f, "batchd_job_executions_total", name);
                        fprintf(f, ",status=\"%s\"} %" PRIu64 "\n", batch_status_to_string(end_statuses[i]),
                                j->ended[end_statuses[i]]);
                }

        header(f, "batchd_job_last_success_timestamp_seconds", "gauge",
               "End of the last execution that COMPLETED (of the newest 200 at startup), 0 when none.");
        FOR_JOBS(j, name) {
                put_job(f, "batchd_job_last_success_timestamp_seconds", name);
                fputc('}', f);
                put_double(f, (double) j->last_success / USEC_PER_SEC);
        }

        header(f, "batchd_job_last_failure_timestamp_seconds", "gauge",
               "End of the last execution that FAILED (of the newest 200 at startup), 0 when none.");
        FOR_JOBS(j, name) {
                put_job(f, "batchd_job_last_failure_timestamp_seconds", name);
                fputc('}', f);
                put_double(f, (double) j->last_failure / USEC_PER_SEC);
        }

        header(f, "batchd_job_duration_seconds", "histogram", "Duration of the executions that ended.");
        FOR_JOBS(j, name) {
                uint64_t cumulative = 0;

                for (size_t i = 0; i < N_BUCKETS; i++) {
                        cumulative += j->buckets[i];
                        put_job(f, "batchd_job_duration_seconds_bucket", name);
                        fprintf(f, ",le=\"%g\"} %" PRIu64 "\n", duration_buckets[i], cumulative);
                }
                put_job(f, "batchd_job_duration_seconds_bucket", name);
                fprintf(f, ",le=\"+Inf\"} %" PRIu64 "\n", j->duration_count);
                put_job(f, "batchd_job_duration_seconds_sum", name);
                fputc('}', f);
                put_double(f, j->duration_sum);
                put_job(f, "batchd_job_duration_seconds_count", name);
                fprintf(f, "} %" PRIu64 "\n", j->duration_count);
        }

        header(f, "batchd_job_running_executions", "gauge", "Executions running now.");
        FOR_JOBS(j, name) {
                put_job(f, "batchd_job_running_executions", name);
                fprintf(f, "} %u\n", manager_count_running(m, name));
        }

        header(f, "batchd_job_items_read_total", "counter", "Items the job's steps read (READ_COUNT).");
        FOR_JOBS(j, name) {
                put_job(f, "batchd_job_items_read_total", name);
                fprintf(f, "} %" PRIu64 "\n", j->items_read);
        }

        header(f, "batchd_job_items_written_total", "counter", "Items the job's steps wrote (WRITE_COUNT).");
        FOR_JOBS(j, name) {
                put_job(f, "batchd_job_items_written_total", name);
                fprintf(f, "} %" PRIu64 "\n", j->items_written);
        }

        header(f, "batchd_job_nonruns_total", "counter", "Scheduled fires that did not run, by reason.");
        FOR_JOBS(j, name) {
                for (size_t i = 0; i < N_REASONS; i++) {
                        put_job(f, "batchd_job_nonruns_total", name);
                        fprintf(f, ",reason=\"%s\"} %" PRIu64 "\n", nonrun_reasons[i], j->nonruns[i]);
                }
                if (j->nonruns_other > 0) {
                        put_job(f, "batchd_job_nonruns_total", name);
                        fprintf(f, ",reason=\"other\"} %" PRIu64 "\n", j->nonruns_other);
                }
        }

        header(f, "batchd_job_timer_lateness_seconds", "gauge",
               "How late the last scheduled fire was launched, after its calendar time.");
        FOR_JOBS(j, name)
                if (j->fired) {
                        put_job(f, "batchd_job_timer_lateness_seconds", name);
                        fputc('}', f);
                        put_double(f, j->lateness);
                }
#undef FOR_JOBS

        if (fflush(f) != 0 || ferror(f) || fclose(TAKE_PTR(f)) != 0 || !buf)
                return -ENOMEM;
        *ret = TAKE_PTR(buf);
        return 0;
}

void metrics_write_textfile(Manager *m) {
        _cleanup_free_ char *text = NULL, *tmp = NULL;
        const char *path;
        size_t len;
        int fd, k;

        assert(m);

        path = m->config->config->metrics_textfile;
        if (!path)
                return;

        k = metrics_render(m, &text);
        if (k < 0) {
                log_warning_errno(k, "Failed to format the metrics: %m");
                return;
        }
        /* node_exporter ignores files not ending in .prom, so the temporary file is never read half-written;
         * rename() replaces the old one atomically. */
        if (asprintf(&tmp, "%s.tmp", path) < 0) {
                (void) log_oom();
                return;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) {
                log_warning_errno(errno, "Failed to write metrics to %s: %m", tmp);
                return;
        }
        len = strlen(text);
        for (size_t done = 0; done < len;) {
                ssize_t w = write(fd, text + done, len - done);

                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        k = -errno;
                        (void) close(fd);
                        (void) unlink(tmp);
                        log_warning_errno(k, "Failed to write metrics to %s: %m", tmp);
                        return;
                }
                done += (size_t) w;
        }
        if (close(fd) < 0) {
                k = -errno;
                (void) unlink(tmp);
                log_warning_errno(k, "Failed to write metrics to %s: %m", tmp);
                return;
        }
        if (rename(tmp, path) < 0) {
                k = -errno;
                (void) unlink(tmp);
                log_warning_errno(k, "Failed to replace %s: %m", path);
        }
}

int method_get_metrics(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *text = NULL;
        Manager *m = userdata;
        int k;

        k = metrics_render(m, &text);
        if (k < 0)
                return k;
        return sd_bus_reply_method_return(msg, "s", text);
}
