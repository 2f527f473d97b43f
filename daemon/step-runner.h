/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sys/types.h>
#include <systemd/sd-event.h>

#include "execution-context.h"
#include "macro.h"
#include "repository.h"
#include "time-util.h"

/* Runs one step as a child process of the daemon, on the daemon's sd-event loop, without ever blocking it.
 *
 * The child gets its own process group, default signal dispositions and an empty signal mask, stdin from
 * /dev/null, stdout and stderr connected straight to journald (or to a fallback descriptor), and nothing else
 * but its end of the step protocol channel on fd 3 ($BATCH_NOTIFY_FD, see docs/step-protocol.md). Its output
 * never passes through the daemon.
 *
 * The runner keeps the step's view of its execution contexts: the contexts the caller restored, plus the
 * changes the step staged with PUT, plus the counts it added since its last COMMIT. A COMMIT hands all of that
 * to the commit callback and answers the step only once the callback returned, so the step continues after
 * its checkpoint is durable.
 *
 * sd_event_add_child() needs SIGCHLD blocked in the thread running the loop; the caller blocks it before
 * starting any step. */
typedef struct StepRunner StepRunner;

typedef enum StepOutcome {
        STEP_OUTCOME_SUCCESS,   /* exited with status 0 (and the final commit, if one was due, succeeded) */
        STEP_OUTCOME_FAILED,    /* anything else: failed to start, non-zero status, signal, timeout */
        STEP_OUTCOME_STOPPED,   /* step_runner_stop() was called, whatever the process did afterwards */
        _STEP_OUTCOME_MAX,
        _STEP_OUTCOME_INVALID = -EINVAL,
} StepOutcome;

typedef struct StepResult {
        StepOutcome outcome;
        int exit_status;        /* exit status of the main process, -1 when it was killed by a signal */
        int signal;             /* the signal that killed it, 0 when it exited */
        int error;              /* negative errno when the child could not be set up or exec'd, else 0 */
        bool timed_out;
        /* The step did not succeed and had reported work since its last commit (PUTs, or counts from ADD or
         * a failed final commit), which was discarded: a chunk was rolled back (docs/step-protocol.md). */
        bool rolled_back;
        /* "" on success; otherwise one of
         *   "exited with status 3"
         *   "killed by signal 9 (KILL)"           (", core dumped" appended when it did)
         *   "timed out after 10min"
         *   "stopped" or "stopped: <reason>"
         *   "Failed to execute /no/such/binary: No such file or directory" (and similar for the set-up steps)
         *   "Failed to commit: <strerror>"        (the implicit final commit failed)
         * Valid only during the finished callback. */
        const char *message;
} StepResult;

typedef struct StepRunnerCallbacks {
        /* A COMMIT, or the implicit final commit of a successful step. contribution holds the counts added
         * since the previous successful commit; step_context is the complete step context to save (restored +
         * everything committed + this commit's changes); job_context likewise, or NULL when the step staged no
         * job context change for this commit. Neither context is modified afterwards, so the callback may keep
         * them with execution_context_share() instead of copying. Return 0 once everything is durable, or a
         * negative errno and, optionally, a message for the step in error: the step then gets an ERR reply and
         * nothing of this commit is applied, so it may retry. -EAGAIN means "not now" (the database is locked):
         * nothing is applied, the step gets no reply yet and its channel is not read meanwhile, and the runner
         * calls again from a timer with backoff until the callback returns something else; the step's end waits
         * for that too. NULL means the commit is applied in memory only. */
        int (*commit)(StepRunner *runner, const StepContribution *contribution, const ExecutionContext *step_context,
                      const ExecutionContext *job_context, sd_bus_error *error, void *userdata);
        /* STATUS: a free-text progress line ("" clears it). A negative return is passed on to the step. */
        int (*status)(StepRunner *runner, const char *text, void *userdata);
        /* TOTAL: how many items the step will read in all (0: not known). A negative return is passed on. */
        int (*total)(StepRunner *runner, int64_t total, void *userdata);
        /* EXIT_CODE: the exit status the step wants recorded; description may be NULL. */
        int (*exit_code)(StepRunner *runner, const char *code, const char *description, void *userdata);
        /* Called exactly once, when the main process is gone and its process group has been killed. The
         * runner may be freed from here, and only from here (or outside any callback). */
        void (*finished)(StepRunner *runner, const StepResult *result, void *userdata);
} StepRunnerCallbacks;

typedef struct StepRunnerParameters {
        /* Already expanded; argv[0] is an absolute path, executed with execve(), never through a shell. */
        char **argv;
        /* The complete environment of the step (NULL for none). The runner appends BATCH_NOTIFY_FD=3 and
         * drops any BATCH_NOTIFY_FD the caller passed. */
        char **environment;
        /* Run as this user: its uid, primary gid and supplementary groups (initgroups() semantics, looked up
         * by batchd-exec in the step's process, never by the daemon: NSS may wait on the network). NULL runs as
         * the daemon. Whether root is acceptable is the caller's decision. */
        const char *user;
        /* With user: batchd-exec adds USER, LOGNAME, HOME and SHELL from the user's passwd entry, each unless
         * environment has it. */
        bool user_environment;
        /* Absolute; NULL means "/". */
        const char *working_directory;
        usec_t timeout;                 /* 0 or USEC_INFINITY: none */
        /* Time between SIGTERM and SIGKILL when the step is stopped or times out. 0: SIGKILL right away;
         * USEC_INFINITY: never escalate. */
        usec_t kill_grace;
        /* SYSLOG_IDENTIFIER of the step's output in the journal: the job name. NULL: do not use the journal. */
        const char *identifier;
        /* With identifier: "NAME=value" journal fields for every line of the step's output (batchd-exec relays
         * it line by line then). NULL: none. */
        char **log_fields;
        /* Where stdout/stderr go when the journal is not used or not reachable. Negative: the daemon's own
         * stderr. */
        int output_fd;
        /* The restored contexts; copied. NULL means empty. */
        const ExecutionContext *step_context;
        const ExecutionContext *job_context;
} StepRunnerParameters;

/* Starts the step: vfork() and execve() of batchd-exec (exec-spec.h), which sets the step up in its own process and
 * execs it. We are suspended only until the helper's execve(). Errors found here are returned: -EINVAL (bad
 * parameters), -ENOMEM, or whatever memfd_create()/socketpair()/vfork() said. Anything that fails in the child or
 * the helper (looking up the user, changing credentials, chdir, execve) is reported through the finished callback
 * instead, as a FAILED result; an unknown user as "Failed to start step: no such user". */
int step_runner_start(sd_event *event, const StepRunnerParameters *parameters, const StepRunnerCallbacks *callbacks,
                      void *userdata, StepRunner **ret);

/* Operator stop: SIGTERM (and SIGCONT) to the process group, SIGKILL after the kill grace. The result will be
 * STOPPED even if the step then exits 0, because a step that handled SIGTERM did not finish its work. The
 * step may still COMMIT while it winds down. Idempotent; -ESRCH once the step has finished. */
int step_runner_stop(StepRunner *runner, const char *reason);

/* Frees the runner. A step still running is SIGKILLed with its process group, and sd-event reaps it. */
StepRunner *step_runner_free(StepRunner *runner);
DEFINE_TRIVIAL_CLEANUP_FUNC(StepRunner *, step_runner_free);

pid_t step_runner_get_pid(const StepRunner *runner) _pure_;
bool step_runner_is_running(const StepRunner *runner) _pure_;
/* The contexts as of the last successful commit (restored ones before the first). */
const ExecutionContext *step_runner_get_step_context(const StepRunner *runner) _pure_;
const ExecutionContext *step_runner_get_job_context(const StepRunner *runner) _pure_;

const char *step_outcome_to_string(StepOutcome o) _pure_;
