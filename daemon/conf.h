/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <limits.h>
#include <sys/types.h>

#include "calendar.h"
#include "context-format.h"
#include "job-parameters.h"
#include "repository.h"
#include "macro.h"
#include "time-util.h"

/* The configuration model: the main file (batchd.conf) and every job file in jobs_dir, parsed with
 * libconfig. Loading is pure data in, pure data out: the result is a Config nobody modifies afterwards; a
 * reload builds a new one and swaps it in. See docs/configuration.md for the meaning of every key. */

/* SYSCONFDIR and LOCALSTATEDIR are meson's configured directories (config.h): /etc and /var for a system
 * install (--prefix=/usr), /usr/local/etc and /usr/local/var with meson's default prefix. */
#define CONFIG_MAIN_PATH_DEFAULT SYSCONFDIR "/batchd/batchd.conf"
#define CONFIG_DATABASE_DEFAULT LOCALSTATEDIR "/lib/batchd/batch.db"
#define CONFIG_JOBS_DIR_DEFAULT SYSCONFDIR "/batchd/jobs.d"
#define CONFIG_STOP_TIMEOUT_DEFAULT (90 * USEC_PER_SEC)
#define CONFIG_KILL_GRACE_DEFAULT (10 * USEC_PER_SEC)
/* libconfig's parser takes time quadratic in the length of a string (1 MB: 0.6 s, 2 MB: 2.3 s), and it runs
 * in the event loop on a reload: files and string values over these sizes are refused before it sees them.
 * The main file always has the default limit; job_file_size_max in it sets the one of job files. */
#define CONFIG_FILE_SIZE_MAX_DEFAULT (UINT64_C(1) << 20)
#define CONFIG_VALUE_SIZE_MAX (64U << 10)
/* The total serialized size of one step's, or one job execution's, execution context (context_size_max). */
#define CONFIG_CONTEXT_SIZE_MAX_DEFAULT (UINT64_C(16) << 20)
/* How long a cluster node may go without a heartbeat before the others declare it dead (docs/cluster.md). */
#define CONFIG_NODE_TIMEOUT_DEFAULT (15 * USEC_PER_SEC)
#define CONFIG_NODE_TIMEOUT_MIN (1 * USEC_PER_SEC)

/* Column size of BATCH_STEP_EXECUTION.STEP_NAME, as JOB_NAME_MAX (repository.h) is that of JOB_NAME. */
#define STEP_NAME_MAX JOB_NAME_MAX

/* Spring Batch's default startLimit (Integer.MAX_VALUE) means "no limit"; keeping the same number lets the
 * step runner compare without a special case. */
#define STEP_START_LIMIT_UNLIMITED INT_MAX

/* What the scheduler does when a schedule fires while an execution of the job is still running. */
typedef enum JobOverlap {
        JOB_OVERLAP_SKIP,        /* drop this firing */
        JOB_OVERLAP_QUEUE,       /* start it once the running execution has ended */
        JOB_OVERLAP_ALLOW,       /* start it right away, next to the running one */
        _JOB_OVERLAP_MAX,
        _JOB_OVERLAP_INVALID = -EINVAL,
} JobOverlap;

typedef enum JobIncrementer {
        JOB_INCREMENTER_NONE,
        JOB_INCREMENTER_RUN_ID,  /* Spring Batch's RunIdIncrementer: identifying long "run.id", +1 per launch */
        _JOB_INCREMENTER_MAX,
        _JOB_INCREMENTER_INVALID = -EINVAL,
} JobIncrementer;

typedef struct StepConfig {
        char *name;
        char **exec;                     /* argv, NULL-terminated, at least one element; exec[0] is absolute */
        usec_t timeout_usec;             /* USEC_INFINITY: none */
        bool allow_start_if_complete;
        int start_limit;                 /* > 0; STEP_START_LIMIT_UNLIMITED by default */
        unsigned line;
} StepConfig;

/* on_failure/on_success: a command, or a systemd unit to start (docs/configuration.md, "Alerts"). */
#define CONFIG_ALERT_TIMEOUT_DEFAULT (60 * USEC_PER_SEC)
#define UNIT_NAME_MAX 255

typedef struct JobAlert {
        char **exec;                     /* argv, NULL-terminated, exec[0] absolute; or NULL */
        char *unit;                      /* "name.type" or a template "name@.type"; or NULL. Never both set */
} JobAlert;

typedef struct JobConfig {
        char *name;
        char *description;               /* NULL when not given */
        bool restartable;
        JobParameters parameters;        /* defaults, merged under the parameters of a launch */

        /* Who the steps run as. When batchd runs as root, user is always set (a job without "user" is
         * refused, so running as root is always an explicit user = "root") and steps switch to uid/gid.
         * An unprivileged batchd cannot switch: user is NULL unless given, loading refuses a user other
         * than batchd's own and any group, and steps simply inherit batchd's credentials. */
        char *user;
        uid_t uid;
        char *group;                     /* NULL when neither given nor resolvable from gid */
        gid_t gid;                       /* (gid_t) -1 when neither group nor user is set */

        char *working_directory;         /* absolute, or NULL */
        char **environment;              /* "NAME=value", NULL-terminated, never NULL */
        usec_t timeout_usec;             /* the whole execution; USEC_INFINITY: none */

        StepConfig *steps;
        size_t n_steps;                  /* >= 1 */

        /* Scheduling. schedule is NULL for jobs only ever started by hand; the other keys are refused
         * without it, so they hold their defaults then. */
        char *schedule;                  /* the expression as written */
        CalendarSpec *calendar;          /* parsed schedule */
        bool persistent;
        usec_t randomized_delay_usec;    /* 0: none */
        JobOverlap overlap;
        JobIncrementer incrementer;
        char *schedule_parameter;        /* NULL, or the parameter bound to the fire time */
        JobParameterType schedule_parameter_type;  /* JOB_PARAMETER_DATE or JOB_PARAMETER_DATETIME */
        unsigned catch_up;               /* missed fire times run after downtime (persistent only) */
        bool enabled;

        JobAlert on_failure;             /* after an execution ended FAILED */
        JobAlert on_success;             /* after an execution ended COMPLETED */
        usec_t alert_timeout_usec;       /* a command still running then is killed; USEC_INFINITY: never */

        char *source_file;
        unsigned source_line;
} JobConfig;

typedef struct Config {
        char *path;                      /* the main file this was loaded from */
        bool main_file_found;            /* false: the main file did not exist and defaults are in use */

        char *database;                  /* absolute path or ":memory:" */
        char *jobs_dir;
        unsigned max_concurrent_executions;  /* 0: unlimited */
        char *admin_group;               /* NULL: none */
        gid_t admin_gid;
        unsigned keep_days;              /* 0: keep forever */
        unsigned keep_executions;        /* 0: keep forever */
        usec_t stop_timeout_usec;        /* USEC_INFINITY: wait forever */
        usec_t kill_grace_usec;          /* USEC_INFINITY: never SIGKILL */
        uint64_t job_file_size_max;      /* bytes */
        uint64_t context_size_max;       /* bytes */
        bool timestamps_utc;             /* "timestamps": times in the database are UTC, not local time */
        ContextFormat context_format;    /* how execution contexts are written; any is read */
        bool cluster;                    /* cluster mode on a SQLite file too (always on with PostgreSQL) */
        char *node_name;                 /* NULL: the host name */
        usec_t node_timeout_usec;        /* finite, at least CONFIG_NODE_TIMEOUT_MIN */
        char *metrics_textfile;          /* absolute, or NULL: metrics are not written to a file */

        JobConfig **jobs;                /* in the order of the sorted file names, then of each file */
        size_t n_jobs;

        /* Valid settings that are probably a mistake, "<file>:<line>: <what>" as errors are; NULL when none.
         * The loader prints nothing: batchd logs them at warning level. */
        char **warnings;
} Config;

typedef struct ConfigLoadOptions {
        /* Reload: any invalid job file fails the whole load, so the caller keeps its old Config. Without
         * it (startup), an invalid job file is reported and skipped and the other jobs load. An invalid
         * main file fails the load either way. */
        bool strict;
        /* Who must own the main file, jobs_dir and every job file. */
        uid_t owner_uid;
        /* The uid batchd runs as. 0 means every job must say which user it runs as. */
        uid_t daemon_uid;
} ConfigLoadOptions;

/* Not strict; owner_uid and daemon_uid are geteuid(). */
void config_load_options_init(ConfigLoadOptions *ret);

/* A Config holding the built-in defaults and no jobs. */
int config_new(const char *main_path, Config **ret);
Config *config_free(Config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Config *, config_free);

/* Loads main_path (NULL: CONFIG_MAIN_PATH_DEFAULT; a missing main file means the built-in defaults) and
 * every *.conf file of its jobs_dir, in strcmp() order of their names; dotfiles and other names are
 * ignored. A job file is taken whole or not at all: any problem in it drops all of its jobs. A job name
 * defined a second time is a problem of the file defining it second. options NULL:
 * config_load_options_init().
 *
 * Returns 0 and a Config in *ret on success. In non-strict mode that includes the case where job files
 * were skipped. Returns -EINVAL when the main file is invalid or, in strict mode, when any job file is (or
 * jobs_dir is unusable); other negative errno on failures such as -ENOMEM. *ret is only set on success.
 *
 * *ret_errors (when ret_errors is non-NULL) receives every problem found, one message per entry, each of
 * the form "<file>:<line>: <what is wrong>" (without ":<line>" where no line applies), or NULL when there
 * is nothing to report. It is set on success and on failure. */
int config_load(const char *main_path, const ConfigLoadOptions *options, Config **ret, char ***ret_errors);

const JobConfig *config_find_job(const Config *c, const char *name);
const StepConfig *job_config_find_step(const JobConfig *j, const char *name);
/* The type j declares for the parameter called name: its schedule_parameter, run.id with the run.id
 * incrementer, or an entry of its "parameters". _JOB_PARAMETER_TYPE_INVALID when j declares none. */
JobParameterType job_config_declared_type(const JobConfig *j, const char *name);

/* [A-Za-z0-9_.-]+, at most JOB_NAME_MAX bytes, not "." or "..". Step names follow the same rule. */
bool config_job_name_is_valid(const char *name) _pure_;

const char *job_overlap_to_string(JobOverlap o) _pure_;
JobOverlap job_overlap_from_string(const char *s) _pure_;
const char *job_incrementer_to_string(JobIncrementer i) _pure_;
JobIncrementer job_incrementer_from_string(const char *s) _pure_;
