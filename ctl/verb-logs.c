/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <dirent.h>
#include <inttypes.h>
#include <signal.h>
#include <syslog.h>
#include <systemd/sd-event.h>
#include <systemd/sd-journal.h>

#include "batch-error.h"
#include "batchctl.h"
#include "bus-names.h"
#include "bus-util.h"
#include "lifecycle-log.h"
#include "log.h"
#include "output.h"
#include "records.h"
#include "verb-functions.h"

/* What "logs" shows of an execution: batchd's own entries, which carry BATCH_JOB_EXECUTION_ID=<id>, and the
 * output of the execution's step processes, which batchd-exec's relay sends with the same fields (and
 * SYSLOG_IDENTIFIER=<job name>). Of a job ("logs JOB"): every entry with BATCH_JOB_NAME=<job>, which batchd's
 * entries about the job and its executions and the relayed step output all carry.
 *
 * Step output written before the relay existed came as a journal stream, with SYSLOG_IDENTIFIER=<job name>
 * and _PID=<the step's pid> but no BATCH_ fields; batchd puts BATCH_STEP_PID=<pid> on each "step started"
 * entry, and that is how such output is still tied to its execution. */

/* Step output may reach the journal a little before batchd's "step started" entry (the child runs as soon
 * as it is forked) and a little after the execution ended (journald reads the stream when it gets to it). */
#define STEP_OUTPUT_EARLY_USEC (10 * USEC_PER_SEC)
#define STEP_OUTPUT_LATE_USEC (60 * USEC_PER_SEC)

/* -f: how long to keep reading after ExecutionFinished, for the last entries to arrive. */
#define FOLLOW_LINGER_USEC (3 * USEC_PER_SEC)
#define FOLLOW_QUIET_USEC (300 * USEC_PER_MSEC)

/* Step output held back because its step is not known yet (-f only). */
#define PENDING_MAX 4096

typedef struct StepProcess {
        int pid;
        usec_t since;
        char *step;
        char *execution;
} StepProcess;

typedef struct LogEntry {
        usec_t time;
        int priority;           /* -1: not given */
        int pid;                /* 0: not given */
        char *identifier;
        char *message;
        char *step;
        char *message_id;
        char *execution;        /* BATCH_JOB_EXECUTION_ID; NULL: not given */
} LogEntry;

typedef struct Logs {
        sd_journal *journal;
        uint64_t id;            /* 0: of a job */
        char *id_match;         /* "BATCH_JOB_EXECUTION_ID=<id>" or "BATCH_JOB_NAME=<job>" */
        const char *id_field;   /* the field of id_match */
        const char *id_value;   /* its value */
        char *job;
        usec_t end_time;        /* 0 while running */

        StepProcess *steps;
        size_t n_steps;

        LogEntry *pending;
        size_t n_pending;

        /* -n: the last entries, printed once the journal is read up to its end */
        LogEntry *tail;
        size_t n_tail, tail_start;
        bool collecting_tail;

        /* -f */
        sd_event *event;
        sd_event_source *linger;
        bool finished;
        usec_t finished_at;     /* CLOCK_MONOTONIC */
        bool saw_job_finished;
        int exit_status;
} Logs;

static void log_entry_done(LogEntry *e) {
        free(e->identifier);
        free(e->message);
        free(e->step);
        free(e->message_id);
        free(e->execution);
}

static void logs_done(Logs *l) {
        sd_journal_close(l->journal);
        free(l->id_match);
        free(l->job);
        for (size_t i = 0; i < l->n_steps; i++) {
                free(l->steps[i].step);
                free(l->steps[i].execution);
        }
        free(l->steps);
        for (size_t i = 0; i < l->n_pending; i++)
                log_entry_done(l->pending + i);
        free(l->pending);
        for (size_t i = 0; i < l->n_tail; i++)
                log_entry_done(l->tail + i);
        free(l->tail);
        sd_event_source_unref(l->linger);
        sd_event_unref(l->event);
}

/* The value of field in the current entry, copied; NULL if absent. */
static char *entry_field(sd_journal *j, const char *field) {
        const void *data;
        size_t length, l = strlen(field);

        if (sd_journal_get_data(j, field, &data, &length) < 0 || length <= l || ((const char *) data)[l] != '=')
                return NULL;
        return strndup((const char *) data + l + 1, length - l - 1);
}

static int entry_field_int(sd_journal *j, const char *field, int fallback) {
        _cleanup_free_ char *s = entry_field(j, field);
        char *end;
        long v;

        if (!s)
                return fallback;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno != 0 || *end != '\0' || end == s || v < 0 || v > INT32_MAX)
                return fallback;
        return (int) v;
}

static StepProcess *find_step(Logs *l, int pid) {
        for (size_t i = 0; i < l->n_steps; i++)
                if (l->steps[i].pid == pid)
                        return l->steps + i;
        return NULL;
}

static int add_step(Logs *l, int pid, usec_t since, const char *step, const char *execution) {
        StepProcess *a;

        if (pid <= 0 || find_step(l, pid))
                return 0;
        a = reallocarray(l->steps, l->n_steps + 1, sizeof(StepProcess));
        if (!a)
                return -ENOMEM;
        l->steps = a;
        l->steps[l->n_steps++] = (StepProcess) {
                .pid = pid,
                .since = since,
                .step = step ? strdup(step) : NULL,
                .execution = execution ? strdup(execution) : NULL,
        };
        return 0;
}

static bool step_output_belongs(const Logs *l, const StepProcess *s, usec_t t) {
        /* A later execution's step may get the same PID again; the time window tells them apart. */
        if (t + STEP_OUTPUT_EARLY_USEC < s->since)
                return false;
        if (l->end_time > 0 && t > l->end_time + STEP_OUTPUT_LATE_USEC)
                return false;
        return true;
}

static const char *priority_color(int priority) {
        if (priority < 0)
                return "";
        if (priority <= LOG_ERR)
                return ansi_red();
        if (priority == LOG_WARNING)
                return ansi_yellow();
        if (priority == LOG_NOTICE)
                return ansi_highlight();
        if (priority >= LOG_DEBUG)
                return ansi_grey();
        return "";
}

static int print_entry(const LogEntry *e) {
        if (arg_json != JSON_OFF) {
                _cleanup_(json_object_putp) json_object *o = json_object_new_object();

                if (!o ||
                    json_add_uint(o, "time_usec", e->time) < 0 ||
                    (e->priority >= 0 ? json_add_uint(o, "priority", (uint64_t) e->priority)
                                      : json_add_usec(o, "priority", 0)) < 0 ||
                    json_add_string_or_null(o, "identifier", e->identifier) < 0 ||
                    json_add_usec(o, "pid", (usec_t) e->pid) < 0 ||
                    json_add_string_or_null(o, "step", e->step) < 0 ||
                    json_add_string_or_null(o, "message_id", e->message_id) < 0 ||
                    (e->execution ? json_add_uint(o, "execution_id", strtoull(e->execution, NULL, 10))
                                  : json_add_string_or_null(o, "execution_id", NULL)) < 0 ||
                    json_add_string(o, "message", e->message) < 0)
                        return log_oom();
                /* Always one line per entry, so that -f can be read line by line. */
                if (json_print_line(o, stdout) < 0)
                        return -EIO;
        } else if (arg_output == OUTPUT_CAT) {
                const char *color = priority_color(e->priority);

                printf("%s%s%s\n", color, strempty(e->message), isempty(color) ? "" : ansi_normal());
        } else {
                static const char *const months[12] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
                time_t sec = (time_t) (e->time / USEC_PER_SEC);
                const char *color = priority_color(e->priority);
                struct tm tm;

                if (!localtime_r(&sec, &tm))
                        return -EINVAL;
                printf("%s %02d %02d:%02d:%02d %s", months[tm.tm_mon], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                       strna(e->identifier));
                if (e->pid > 0)
                        printf("[%d]", e->pid);
                printf(": %s%s%s\n", color, strempty(e->message), isempty(color) ? "" : ansi_normal());
        }

        if (arg_follow)
                fflush(stdout);
        return ferror(stdout) ? -EIO : 0;
}

static bool entry_selected(const LogEntry *e) {
        if (e->time < arg_since || e->time > arg_until)
                return false;
        if (arg_priority_max >= 0 && (e->priority < arg_priority_min || e->priority > arg_priority_max))
                return false;
        return true;
}

/* Prints the entry if the filters let it through, or keeps it for -n; takes its fields. */
static int emit(Logs *l, LogEntry *e) {
        if (!entry_selected(e))
                return 0;
        if (!l->collecting_tail)
                return print_entry(e);
        if (arg_lines == 0)
                return 0;
        if (l->n_tail < arg_lines) {
                LogEntry *a = reallocarray(l->tail, l->n_tail + 1, sizeof(LogEntry));

                if (!a)
                        return -ENOMEM;
                l->tail = a;
                l->tail[l->n_tail++] = *e;
        } else {
                /* A ring: the oldest goes. */
                log_entry_done(l->tail + l->tail_start);
                l->tail[l->tail_start] = *e;
                l->tail_start = (l->tail_start + 1) % l->n_tail;
        }
        *e = (LogEntry) {};
        return 0;
}

static int flush_tail(Logs *l) {
        int r = 0;

        l->collecting_tail = false;
        for (size_t i = 0; i < l->n_tail; i++) {
                LogEntry *e = l->tail + (l->tail_start + i) % l->n_tail;

                if (r >= 0)
                        r = print_entry(e);
                log_entry_done(e);
        }
        l->n_tail = l->tail_start = 0;
        return r;
}

/* Releases held-back output of pid, in the order it came. */
static int flush_pending(Logs *l, const StepProcess *s) {
        size_t kept = 0;
        int r = 0;

        for (size_t i = 0; i < l->n_pending; i++) {
                LogEntry *e = l->pending + i;

                if (e->pid == s->pid && step_output_belongs(l, s, e->time)) {
                        if (!e->step && s->step)
                                e->step = strdup(s->step);
                        if (!e->execution && s->execution)
                                e->execution = strdup(s->execution);
                        if (r >= 0)
                                r = emit(l, e);
                        log_entry_done(e);
                } else
                        l->pending[kept++] = *e;
        }
        l->n_pending = kept;
        return r;
}

static int hold_back(Logs *l, LogEntry *e) {
        LogEntry *a;
        size_t kept = 0;

        /* Whatever is much older than this entry will never find its step. */
        for (size_t i = 0; i < l->n_pending; i++) {
                if (l->pending[i].time + STEP_OUTPUT_EARLY_USEC < e->time || l->n_pending - i >= PENDING_MAX)
                        log_entry_done(l->pending + i);
                else
                        l->pending[kept++] = l->pending[i];
        }
        l->n_pending = kept;

        a = reallocarray(l->pending, l->n_pending + 1, sizeof(LogEntry));
        if (!a)
                return -ENOMEM;
        l->pending = a;
        l->pending[l->n_pending++] = *e;
        *e = (LogEntry) {};
        return 0;
}

/* Handles the journal's current entry. */
static int process_entry(Logs *l) {
        _cleanup_free_ char *value = NULL;
        LogEntry e = { .priority = -1 };
        int r = 0;

        if (sd_journal_get_realtime_usec(l->journal, &e.time) < 0)
                return 0;
        e.identifier = entry_field(l->journal, "SYSLOG_IDENTIFIER");
        e.message = entry_field(l->journal, "MESSAGE");
        e.priority = entry_field_int(l->journal, "PRIORITY", -1);
        e.pid = entry_field_int(l->journal, "_PID", 0);
        e.execution = entry_field(l->journal, "BATCH_JOB_EXECUTION_ID");
        value = entry_field(l->journal, l->id_field);

        if (value && streq(value, l->id_value)) {
                int step_pid = entry_field_int(l->journal, "BATCH_STEP_PID", 0);

                e.step = entry_field(l->journal, "BATCH_STEP_NAME");
                e.message_id = entry_field(l->journal, "MESSAGE_ID");
                if (e.message_id && streq(e.message_id, MESSAGE_JOB_FINISHED))
                        l->saw_job_finished = true;

                if (step_pid > 0 && !find_step(l, step_pid)) {
                        r = add_step(l, step_pid, e.time, e.step, e.execution);
                        if (r >= 0)
                                r = emit(l, &e);
                        if (r >= 0)
                                r = flush_pending(l, find_step(l, step_pid));
                } else
                        r = emit(l, &e);
        } else if (!value && !e.execution && e.identifier && streq(e.identifier, l->job) && e.pid > 0) {
                /* A step's output from a journal stream (before batchd-exec relayed it with fields). */
                const StepProcess *s = find_step(l, e.pid);

                if (s && step_output_belongs(l, s, e.time)) {
                        if (s->step)
                                e.step = strdup(s->step);
                        if (s->execution)
                                e.execution = strdup(s->execution);
                        r = emit(l, &e);
                } else if (!s && arg_follow && !l->finished)
                        r = hold_back(l, &e);
        }

        log_entry_done(&e);
        return r;
}

/* Reads everything from the current position on. */
static int drain(Logs *l) {
        int r;

        for (;;) {
                r = sd_journal_next(l->journal);
                if (r < 0)
                        return log_error_errno(r, "Failed to read the journal: %m");
                if (r == 0)
                        return 0;
                r = process_entry(l);
                if (r < 0)
                        return r == -ENOMEM ? log_oom() : log_error_errno(r, "Failed to write output: %m");
        }
}

/* Learns the step PIDs known so far, so that their output is shown in order rather than held back. */
static int collect_steps(Logs *l) {
        int r;

        r = sd_journal_add_match(l->journal, l->id_match, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to add a journal match: %m");

        SD_JOURNAL_FOREACH(l->journal) {
                int pid = entry_field_int(l->journal, "BATCH_STEP_PID", 0);
                _cleanup_free_ char *step = NULL, *execution = NULL;
                usec_t t;

                if (pid <= 0 || sd_journal_get_realtime_usec(l->journal, &t) < 0)
                        continue;
                step = entry_field(l->journal, "BATCH_STEP_NAME");
                execution = entry_field(l->journal, "BATCH_JOB_EXECUTION_ID");
                r = add_step(l, pid, t, step, execution);
                if (r < 0)
                        return log_oom();
        }

        sd_journal_flush_matches(l->journal);
        return 0;
}

static int setup_matches(Logs *l) {
        _cleanup_free_ char *ident = NULL;
        int r;

        if (asprintf(&ident, "SYSLOG_IDENTIFIER=%s", l->job) < 0)
                return log_oom();

        /* batchd's entries of this execution, or anything the job's processes wrote; process_entry() picks
         * the step output of this execution out of the latter. */
        r = sd_journal_add_match(l->journal, l->id_match, 0);
        if (r >= 0)
                r = sd_journal_add_disjunction(l->journal);
        if (r >= 0)
                r = sd_journal_add_match(l->journal, ident, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to add a journal match: %m");
        return 0;
}

/* ---- -f ---- */

static int on_linger_done(sd_event_source *s, uint64_t usec, void *userdata) {
        Logs *l = userdata;

        return sd_event_exit(l->event, l->exit_status);
}

static int arm_linger(Logs *l, usec_t after) {
        int r;

        l->linger = sd_event_source_unref(l->linger);
        r = sd_event_add_time_relative(l->event, &l->linger, CLOCK_MONOTONIC, after, 0, on_linger_done, l);
        if (r < 0)
                return sd_event_exit(l->event, log_error_errno(r, "Failed to arm a timer: %m"));
        return 0;
}

static int on_journal(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Logs *l = userdata;
        int r;

        r = sd_journal_process(l->journal);
        if (r < 0)
                return sd_event_exit(l->event, log_error_errno(r, "Failed to process the journal: %m"));
        r = drain(l);
        if (r < 0)
                return sd_event_exit(l->event, r);

        /* After the end: once batchd's last entry is in, give the step output a moment more, not the full
         * linger time. */
        if (l->finished && l->saw_job_finished &&
            now_usec(CLOCK_MONOTONIC) < l->finished_at + FOLLOW_LINGER_USEC)
                return arm_linger(l, FOLLOW_QUIET_USEC);
        return 0;
}

static int on_execution_finished(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Logs *l = userdata;
        const char *job, *status, *exit_code, *path;
        uint64_t id;

        if (sd_bus_message_read(m, "tssso", &id, &job, &status, &exit_code, &path) < 0 || id != l->id ||
            l->finished)
                return 0;
        l->finished = true;
        l->finished_at = now_usec(CLOCK_MONOTONIC);
        l->end_time = now_usec(CLOCK_REALTIME);
        return arm_linger(l, l->saw_job_finished ? FOLLOW_QUIET_USEC : FOLLOW_LINGER_USEC);
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Logs *l = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 || !streq(name, BATCH_BUS_NAME) ||
            !isempty(new_owner) || l->finished)
                return 0;
        log_error("batchd went away before execution %" PRIu64 " ended.", l->id);
        l->finished = true;
        l->finished_at = now_usec(CLOCK_MONOTONIC);
        l->exit_status = -ECONNRESET;
        return arm_linger(l, FOLLOW_LINGER_USEC);
}

static int follow(Logs *l, sd_bus *bus) {
        sigset_t mask;
        int fd, events, r;

        r = sd_event_default(&l->event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate an event loop: %m");
        if (bus) {
                r = sd_bus_attach_event(bus, l->event, SD_EVENT_PRIORITY_NORMAL);
                if (r < 0)
                        return log_error_errno(r, "Failed to attach the bus to the event loop: %m");
        }
        /* Of a job there is no end to wait for: until interrupted, as journalctl -f, and that is no failure. */
        if (sigemptyset(&mask) < 0 || sigaddset(&mask, SIGINT) < 0 || sigaddset(&mask, SIGTERM) < 0 ||
            sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "Failed to block signals: %m");
        r = sd_event_add_signal(l->event, NULL, SIGINT, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(l->event, NULL, SIGTERM, NULL, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to handle signals: %m");

        fd = sd_journal_get_fd(l->journal);
        if (fd < 0)
                return log_error_errno(fd, "Failed to watch the journal: %m");
        events = sd_journal_get_events(l->journal);
        if (events < 0)
                return log_error_errno(events, "Failed to watch the journal: %m");
        r = sd_event_add_io(l->event, NULL, fd, (uint32_t) events, on_journal, l);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the journal: %m");

        r = sd_event_loop(l->event);
        if (r < 0)
                return r;
        /* Whatever came in with the last wake-up. */
        (void) sd_journal_process(l->journal);
        r = drain(l);
        if (r < 0)
                return r;
        return l->exit_status;
}

/* Whether any journal file is there at all: to tell "not allowed to read" from "nothing to read". */
static bool journal_files_exist(void) {
        static const char *const dirs[] = { "/run/log/journal", "/var/log/journal" };

        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                DIR *d = opendir(dirs[i]);
                struct dirent *de;
                bool found = false;

                if (!d)
                        continue;
                while (!found && (de = readdir(d)))
                        found = de->d_name[0] != '.';   /* a machine directory, or files we may not list */
                closedir(d);
                if (found)
                        return true;
        }
        return false;
}

/* journalctl's check: sd_journal_open() succeeds even if it could open no file at all, as for a user who may
 * not read the system journal; then say so, rather than show nothing and look like there is nothing. */
static int check_journal_access(sd_journal *j) {
        if (sd_journal_has_runtime_files(j) > 0 || sd_journal_has_persistent_files(j) > 0)
                return 0;
        if (arg_directory)
                return log_error_errno(ENOENT, "No journal files were found in %s.", arg_directory);
        if (geteuid() != 0 && journal_files_exist())
                return log_error_errno(EACCES, "No journal files were opened due to insufficient permissions. "
                                       "Users in the groups 'adm', 'systemd-journal' and 'wheel' can read the "
                                       "system journal.");
        return log_error_errno(ENOENT, "No journal files were found.");
}

/* Whether batchd knows the job: configured, or with executions on record. Logs NoSuchJob if not. */
static int check_job(sd_bus *bus, const char *job) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL, not_found = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL, *name = NULL;
        ExecutionInfo *executions = NULL;
        size_t n = 0;
        int r;

        r = sd_bus_path_encode(BATCH_JOB_PATH_PREFIX, job, &path);
        if (r < 0)
                return log_oom();
        r = sd_bus_get_property_string(bus, BATCH_BUS_NAME, path, BATCH_JOB_INTERFACE, "Name", &error, &name);
        if (r >= 0)
                return 0;
        if (!sd_bus_error_has_names(&error, SD_BUS_ERROR_UNKNOWN_OBJECT, SD_BUS_ERROR_UNKNOWN_INTERFACE,
                                    SD_BUS_ERROR_UNKNOWN_PROPERTY, BATCH_ERROR_NO_SUCH_JOB))
                return log_bus_error(r, &error, "Failed to show the logs of job %s", job);

        /* No longer configured: its history still counts. */
        r = bus_list_executions(bus, job, 1, &executions, &n);
        if (r < 0)
                return r;
        execution_info_array_free(executions, n);
        if (n > 0)
                return 0;
        (void) sd_bus_error_setf(&not_found, BATCH_ERROR_NO_SUCH_JOB, "No job configuration with the name [%s] was "
                                 "registered, and it has no executions", job);
        return log_bus_error(-ENOENT, &not_found, "Failed to show the logs of job %s", job);
}

static bool is_execution_id(const char *s) {
        return !isempty(s) && s[strspn(s, "0123456789")] == '\0';
}

int verb_logs(int argc, char *argv[], void *userdata) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(execution_info_done) ExecutionInfo e = {};
        _cleanup_(logs_done) Logs l = {};
        usec_t start = 0;
        int r;

        if (arg_since > arg_until)
                return log_error_errno(EINVAL, "--since is later than --until: nothing can match.");
        if (arg_follow && arg_until != USEC_INFINITY)
                return log_error_errno(EINVAL, "--follow cannot be used with --until.");

        if (is_execution_id(argv[1])) {
                r = parse_execution_id(argv[1], &l.id);
                if (r < 0)
                        return r;
                if (asprintf(&l.id_match, "BATCH_JOB_EXECUTION_ID=%" PRIu64, l.id) < 0)
                        return log_oom();
        } else {
                l.job = strdup(argv[1]);
                if (!l.job || asprintf(&l.id_match, "BATCH_JOB_NAME=%s", argv[1]) < 0)
                        return log_oom();
        }
        l.id_field = l.id > 0 ? "BATCH_JOB_EXECUTION_ID" : "BATCH_JOB_NAME";
        l.id_value = l.id_match + strlen(l.id_field) + 1;

        /* The journal first: without it there is nothing to show, whatever batchd says. */
        r = arg_directory ? sd_journal_open_directory(&l.journal, arg_directory, 0)
                          : sd_journal_open(&l.journal, SD_JOURNAL_LOCAL_ONLY);
        if (r < 0)
                return log_error_errno(r, "Failed to open the journal%s%s: %m", arg_directory ? " in " : "",
                                       strempty(arg_directory));
        r = check_journal_access(l.journal);
        if (r < 0)
                return r;
        if (arg_follow) {
                /* The inotify watch exists from here on, before the first read: an entry written between the
                 * end of what is read now and the start of following still wakes follow() (as journalctl -f). */
                r = sd_journal_get_fd(l.journal);
                if (r < 0)
                        return log_error_errno(r, "Failed to watch the journal: %m");
        }

        r = bus_connect(&bus);
        if (r < 0)
                return r;

        if (l.id > 0) {
                /* Subscribed before looking at the execution, so that it cannot end unnoticed in between. */
                if (arg_follow) {
                        r = sd_bus_match_signal(bus, NULL, BATCH_BUS_NAME, BATCH_MANAGER_PATH,
                                                BATCH_MANAGER_INTERFACE, "ExecutionFinished", on_execution_finished,
                                                &l);
                        if (r >= 0)
                                r = sd_bus_add_match(bus, NULL,
                                                     "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                                                     "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
                                                     "arg0='" BATCH_BUS_NAME "'",
                                                     on_name_owner_changed, &l);
                        if (r < 0)
                                return log_error_errno(r, "Failed to subscribe to batchd's signals: %m");
                }

                r = bus_call_manager(bus, "GetExecution", &error, &reply, "t", l.id);
                if (r < 0)
                        return log_bus_error(r, &error, "Failed to show the logs of execution %" PRIu64, l.id);
                r = bus_read_execution_info(reply, &e);
                if (r <= 0)
                        return log_error_errno(r < 0 ? r : EBADMSG, "Failed to parse the reply of GetExecution: %m");
                l.job = strdup(e.job);
                if (!l.job)
                        return log_oom();
                l.end_time = e.end_time;
                if (e.end_time > 0 || !(streq(e.status, "STARTING") || streq(e.status, "STARTED") ||
                                        streq(e.status, "STOPPING")))
                        l.finished = true;
                /* Nothing of this execution is older than its creation, less the slack for early step output. */
                start = e.create_time > STEP_OUTPUT_EARLY_USEC ? e.create_time - STEP_OUTPUT_EARLY_USEC : 0;
        } else {
                r = check_job(bus, l.job);
                if (r < 0)
                        return r;
                /* Following a job has no end: batchd's signals are of no use, the bus no longer needed. */
                bus = sd_bus_flush_close_unref(bus);
        }

        r = collect_steps(&l);
        if (r < 0)
                return r;
        r = setup_matches(&l);
        if (r < 0)
                return r;

        start = MAX(start, arg_since);
        r = start > 0 ? sd_journal_seek_realtime_usec(l.journal, start) : sd_journal_seek_head(l.journal);
        if (r < 0)
                return log_error_errno(r, "Failed to seek in the journal: %m");

        if (!arg_follow || l.finished)
                pager_open();

        l.collecting_tail = arg_lines_set;
        r = drain(&l);
        if (r >= 0 && l.collecting_tail)
                r = flush_tail(&l);
        if (r < 0)
                return r == -ENOMEM ? log_oom() : r;

        if (arg_follow && !l.finished)
                return follow(&l, bus);
        return 0;
}
