/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "db-retry.h"
#include "exec-spec.h"
#include "log.h"
#include "step-protocol.h"
#include "step-runner.h"

/* Bytes of keys and values a step may stage between two commits, so a runaway step cannot eat the daemon's
 * memory: it has to COMMIT (and so hand the data to the database) before staging more. */
#define STAGED_MAX (16U * 1024U * 1024U)
/* Keys a context may grow to through PUT. Restored contexts may be larger; they just cannot grow. */
#define CONTEXT_KEYS_MAX 10000U
/* Messages still processed after the step exited: whatever it sent right before exiting, but no more than
 * this, in case a process that escaped the process group keeps sending. */
#define DRAIN_MAX 1024U

/* Everything the vfork() child needs, prepared by the parent, so the child only moves descriptors into place and
 * execs the helper. */
typedef struct ChildSetup {
        const char *helper;
        int notify_fd;
        int error_fd;
        int spec_fd;
        int output_fd;
} ChildSetup;

typedef enum Termination {
        TERMINATION_NONE,
        TERMINATION_TIMEOUT,
        TERMINATION_STOP,
} Termination;

struct StepRunner {
        sd_event *event;
        StepRunnerCallbacks callbacks;
        void *userdata;

        char *path;
        char *user;
        char *working_directory;
        usec_t timeout;
        usec_t kill_grace;

        pid_t pid;
        bool running;
        Termination termination;
        char *stop_reason;

        sd_event_source *child_source;
        sd_event_source *timeout_source;
        sd_event_source *kill_source;
        sd_event_source *notify_source;
        int notify_fd;
        int error_fd;

        /* Contexts as of the last commit, and what the step staged since. */
        ExecutionContext *step_context;
        ExecutionContext *job_context;
        ExecutionContext *staged_step;
        ExecutionContext *staged_job;
        size_t staged_size;
        StepContribution contribution;

        char *buffer;                   /* STEP_MESSAGE_MAX + 1 bytes, for one incoming packet */
        char *pending_reply;            /* a reply the full shared channel did not take yet */
        size_t pending_reply_size;
        bool draining;
        unsigned drained;

        /* A COMMIT the commit callback could not write yet (-EAGAIN): tried again from a timer, its reply
         * withheld and the channel not read meanwhile, so the step waits and its requests keep their order. */
        bool commit_deferred;
        bool final_commit_deferred;     /* the implicit commit at the end of a successful step */
        StepContribution deferred_contribution;
        int deferred_reply_fd;
        sd_event_source *commit_retry_source;
        usec_t commit_retry_delay;

        /* The main process is gone; its result waits for a deferred commit. */
        bool exited;
        siginfo_t exit_info;
        ExecError child_error;
        bool final_commit_done;
        int final_commit_result;
        char *final_commit_message;        /* why the final commit failed, for the step's exit message */
};

static const char *const step_outcome_table[_STEP_OUTCOME_MAX] = {
        [STEP_OUTCOME_SUCCESS] = "success",
        [STEP_OUTCOME_FAILED]  = "failed",
        [STEP_OUTCOME_STOPPED] = "stopped",
};

const char *step_outcome_to_string(StepOutcome o) {
        if (o < 0 || o >= _STEP_OUTCOME_MAX)
                return NULL;
        return step_outcome_table[o];
}

pid_t step_runner_get_pid(const StepRunner *runner) {
        return runner ? runner->pid : 0;
}

bool step_runner_is_running(const StepRunner *runner) {
        return runner && runner->running;
}

const ExecutionContext *step_runner_get_step_context(const StepRunner *runner) {
        return runner ? runner->step_context : NULL;
}

const ExecutionContext *step_runner_get_job_context(const StepRunner *runner) {
        return runner ? runner->job_context : NULL;
}

/* ---- the child ---- */

/* batchd-exec, the helper every step process runs first (exec-spec.h): compiled in from meson, overridable with
 * $BATCHD_EXEC_PATH for uninstalled builds and the tests. */
static const char *helper_path(void) {
        const char *e = getenv("BATCHD_EXEC_PATH");

        return isempty(e) ? BATCHD_EXEC_PATH : e;
}

_Noreturn static void child_fail(int fd, ExecStage stage, int error) {
        ExecError e = { .stage = stage, .error = abs(error) ?: EIO };

        (void) !write(fd, &e, sizeof(e));
        _exit(127);
}

/* Runs between vfork() and the helper's execve(), with the parent suspended: only system calls that cannot wait
 * (no NSS, no file system but the helper's own path, no sockets), no allocation, and it never returns. */
_Noreturn static void child_exec(const ChildSetup *s) {
        static char *const helper_envp[] = { NULL };
        const int sources[4] = { s->notify_fd, s->error_fd, s->spec_fd, s->output_fd };
        int moved[4], error_fd = s->error_fd;
        char *helper_argv[] = { (char *) "batchd-exec", NULL };

        _Static_assert(EXEC_FD_NOTIFY == STEP_NOTIFY_FD, "the helper's notify fd is the step's");
        _Static_assert(EXEC_FD_ERROR == EXEC_FD_NOTIFY + 1 && EXEC_FD_SPEC == EXEC_FD_NOTIFY + 2 &&
                       EXEC_FD_OUTPUT == EXEC_FD_NOTIFY + 3, "the helper's descriptors are consecutive");

        /* The parent does the same; whoever is first wins, and the parent can signal the group either way. */
        if (setpgid(0, 0) < 0)
                child_fail(error_fd, EXEC_STAGE_PROCESS_GROUP, errno);

        /* Above the targets first, so no dup2() clobbers a source. A closed output fd (batchd's stderr) is not
         * an error: the helper then mutes the step's output. */
        for (int i = 0; i < 4; i++) {
                moved[i] = fcntl(sources[i], F_DUPFD_CLOEXEC, EXEC_FD_OUTPUT + 1);
                if (moved[i] < 0 && i != 3)
                        child_fail(error_fd, EXEC_STAGE_FDS, errno);
                if (i == 1)
                        error_fd = moved[i];
        }
        for (int i = 0; i < 4; i++)
                if (moved[i] >= 0 && dup2(moved[i], EXEC_FD_NOTIFY + i) < 0)
                        child_fail(error_fd, EXEC_STAGE_FDS, errno);
        error_fd = EXEC_FD_ERROR;
        if (moved[3] < 0)
                (void) close(EXEC_FD_OUTPUT);

        /* Everything else is CLOEXEC or closed here, so nothing of batchd leaks into the helper. */
        if (close_range(EXEC_FD_OUTPUT + 1, ~0U, 0) < 0 && errno == ENOSYS) {
                struct rlimit rl;
                int max = getrlimit(RLIMIT_NOFILE, &rl) >= 0 && rl.rlim_cur != RLIM_INFINITY ?
                        (int) MIN(rl.rlim_cur, (rlim_t) (1 << 20)) : 65536;

                for (int fd = EXEC_FD_OUTPUT + 1; fd < max; fd++)
                        (void) close(fd);
        }

        execve(s->helper, helper_argv, helper_envp);
        child_fail(error_fd, EXEC_STAGE_HELPER, errno);
}

/* ---- the parent ---- */

static int environment_build(char **environment, char ***ret) {
        static char notify[] = STEP_NOTIFY_FD_ENV "=3";
        size_t n = 0, k = 0;
        char **l;

        _Static_assert(STEP_NOTIFY_FD == 3, "BATCH_NOTIFY_FD value out of sync");

        for (char **e = environment; e && *e; e++)
                n++;

        l = calloc(n + 2, sizeof(char *));
        if (!l)
                return -ENOMEM;

        /* Borrowed strings: the array only has to live until fork(). */
        for (char **e = environment; e && *e; e++)
                if (!strneq(*e, STEP_NOTIFY_FD_ENV "=", strlen(STEP_NOTIFY_FD_ENV "=")))
                        l[k++] = *e;
        l[k] = notify;

        *ret = l;
        return 0;
}

static int pidfd_open_child(pid_t pid) {
#ifdef SYS_pidfd_open
        /* pidfds are always O_CLOEXEC. */
        int fd = (int) syscall(SYS_pidfd_open, pid, 0);

        return fd >= 0 ? fd : -errno;
#else
        return -ENOSYS;
#endif
}

static void runner_signal(StepRunner *runner, int sig) {
        /* Only while the main process is unreaped: until then its PID names its process group and nothing
         * else, so a recycled PID can never be hit. */
        if (runner->running && runner->pid > 0)
                (void) kill(-runner->pid, sig);
}

static int on_kill_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        StepRunner *runner = userdata;

        log_debug("Step %s (PID %i) did not exit after SIGTERM, sending SIGKILL.", runner->path, runner->pid);
        runner_signal(runner, SIGKILL);
        return 0;
}

static int runner_terminate(StepRunner *runner, Termination t) {
        int r;

        if (!runner->running)
                return -ESRCH;
        if (runner->termination != TERMINATION_NONE)
                return 0;       /* already on its way down: the first reason stays */

        runner->termination = t;
        runner->timeout_source = sd_event_source_disable_unref(runner->timeout_source);

        if (runner->kill_grace == 0) {
                runner_signal(runner, SIGKILL);
                return 0;
        }

        runner_signal(runner, SIGTERM);
        /* A stopped (SIGSTOP) process would only see SIGTERM once continued. */
        runner_signal(runner, SIGCONT);

        if (runner->kill_grace == USEC_INFINITY)
                return 0;

        r = sd_event_add_time_relative(runner->event, &runner->kill_source, CLOCK_MONOTONIC, runner->kill_grace, USEC_PER_MSEC,
                                       on_kill_timer, runner);
        if (r < 0) {
                /* Without a timer there is no escalation later, so escalate now. */
                log_warning_errno(r, "Failed to arm kill timer, sending SIGKILL right away: %m");
                runner_signal(runner, SIGKILL);
        }
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        StepRunner *runner = userdata;

        log_debug("Step %s (PID %i) timed out.", runner->path, runner->pid);
        (void) runner_terminate(runner, TERMINATION_TIMEOUT);
        return 0;
}

int step_runner_stop(StepRunner *runner, const char *reason) {
        if (!runner)
                return -EINVAL;
        if (!runner->running)
                return -ESRCH;

        if (runner->termination == TERMINATION_NONE && !isempty(reason)) {
                runner->stop_reason = strdup(reason);
                if (!runner->stop_reason)
                        return -ENOMEM;
        }
        return runner_terminate(runner, TERMINATION_STOP);
}

/* ---- the protocol ---- */

static int reply_error(StepReply *reply, int error, const char *text) {
        char *t = strdup(text ?: strerror(abs(error)));

        if (!t)
                return -ENOMEM;
        *reply = (StepReply) { .type = STEP_REPLY_ERROR, .error = -abs(error), .text = t };
        return 0;
}

static int runner_commit(StepRunner *runner, const StepContribution *contribution, sd_bus_error *error) {
        _cleanup_(execution_context_freep) ExecutionContext *step = NULL, *job = NULL, *staged_step = NULL,
                *staged_job = NULL;
        bool job_changed;
        int r;

        job_changed = execution_context_size(runner->staged_job) > 0;

        r = execution_context_copy(runner->step_context, &step);
        if (r < 0)
                return r;
        r = execution_context_merge(step, runner->staged_step);
        if (r < 0)
                return r;
        if (job_changed) {
                r = execution_context_copy(runner->job_context, &job);
                if (r < 0)
                        return r;
                r = execution_context_merge(job, runner->staged_job);
                if (r < 0)
                        return r;
        }
        /* Allocated before the commit, so nothing can fail between a durable commit and applying it here. */
        r = execution_context_new(&staged_step);
        if (r < 0)
                return r;
        r = execution_context_new(&staged_job);
        if (r < 0)
                return r;

        if (runner->callbacks.commit) {
                r = runner->callbacks.commit(runner, contribution, step, job, error, runner->userdata);
                if (r < 0)
                        return r;
        }

        execution_context_free(runner->step_context);
        runner->step_context = TAKE_PTR(step);
        if (job_changed) {
                execution_context_free(runner->job_context);
                runner->job_context = TAKE_PTR(job);
        }
        execution_context_free(runner->staged_step);
        runner->staged_step = TAKE_PTR(staged_step);
        execution_context_free(runner->staged_job);
        runner->staged_job = TAKE_PTR(staged_job);
        runner->staged_size = 0;
        runner->contribution = (StepContribution) {};
        return 0;
}

static bool runner_has_uncommitted(const StepRunner *runner) {
        return execution_context_size(runner->staged_step) > 0 || execution_context_size(runner->staged_job) > 0 ||
                !step_contribution_is_zero(&runner->contribution);
}

static int runner_handle_get(StepRunner *runner, const StepRequest *req, StepReply *reply) {
        const ExecutionContext *staged = req->scope == STEP_SCOPE_JOB ? runner->staged_job : runner->staged_step;
        const ExecutionContext *committed = req->scope == STEP_SCOPE_JOB ? runner->job_context : runner->step_context;
        _cleanup_free_ char *value = NULL;
        int r;

        /* The step reads its own writes, as it would from a Spring ExecutionContext. */
        r = execution_context_get_string(execution_context_contains(staged, req->key) ? staged : committed,
                                         req->key, &value);
        if (r == -ENOENT) {
                *reply = (StepReply) { .type = STEP_REPLY_NOT_FOUND };
                return 0;
        }
        if (r < 0)
                return reply_error(reply, r, NULL);
        if (strlen(value) > STEP_MESSAGE_MAX - strlen("VALUE "))
                return reply_error(reply, EMSGSIZE, "Value too large for the step protocol");

        *reply = (StepReply) { .type = STEP_REPLY_VALUE, .text = TAKE_PTR(value) };
        return 0;
}

static int runner_handle_put(StepRunner *runner, const StepRequest *req, StepReply *reply) {
        ExecutionContext *staged = req->scope == STEP_SCOPE_JOB ? runner->staged_job : runner->staged_step;
        const ExecutionContext *committed = req->scope == STEP_SCOPE_JOB ? runner->job_context : runner->step_context;
        size_t size = strlen(req->key) + strlen(req->value);
        int r;

        if (size > STAGED_MAX - runner->staged_size)
                return reply_error(reply, E2BIG, "Too much staged since the last commit, COMMIT first");
        if (!execution_context_contains(staged, req->key) && !execution_context_contains(committed, req->key) &&
            execution_context_size(staged) + execution_context_size(committed) >= CONTEXT_KEYS_MAX)
                return reply_error(reply, E2BIG, "Too many keys in the execution context");

        r = execution_context_put_string(staged, req->key, req->value);
        if (r < 0)
                return reply_error(reply, r, NULL);
        runner->staged_size += size;

        *reply = (StepReply) { .type = STEP_REPLY_OK };
        return 0;
}

static int commit_reply(StepRunner *runner, int result, const char *message, StepReply *reply) {
        _cleanup_free_ char *text = NULL;

        if (result >= 0) {
                *reply = (StepReply) { .type = STEP_REPLY_OK };
                return 0;
        }
        log_debug_errno(result, "Commit of step %s failed: %m", runner->path);
        if (asprintf(&text, "Commit failed: %s", message ?: strerror(-result)) < 0)
                return -ENOMEM;
        return reply_error(reply, result, text);
}

/* Fills *reply and returns 0, or returns 1 for a COMMIT that was deferred (no reply yet). */
static int runner_handle(StepRunner *runner, const StepRequest *req, StepReply *reply) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        StepContribution sum;
        int r;

        switch (req->type) {

        case STEP_REQUEST_GET:
                return runner_handle_get(runner, req, reply);

        case STEP_REQUEST_PUT:
                return runner_handle_put(runner, req, reply);

        case STEP_REQUEST_ADD:
        case STEP_REQUEST_COMMIT:
                sum = runner->contribution;
                if (step_contribution_add(&sum, &req->counts) < 0)
                        return reply_error(reply, ERANGE, "Count out of range");
                if (req->type == STEP_REQUEST_ADD) {
                        runner->contribution = sum;
                        break;
                }

                /* A failed COMMIT changes nothing, not even the counts it carried: the step may simply retry. */
                r = runner_commit(runner, &sum, &error);
                if (r == -EAGAIN) {
                        /* Not now (the database is locked): answered once it went through. */
                        runner->deferred_contribution = sum;
                        return 1;
                }
                return commit_reply(runner, r, error.message, reply);

        case STEP_REQUEST_STATUS:
                if (runner->callbacks.status) {
                        r = runner->callbacks.status(runner, req->text, runner->userdata);
                        if (r < 0)
                                return reply_error(reply, r, NULL);
                }
                break;

        case STEP_REQUEST_TOTAL:
                if (runner->callbacks.total) {
                        r = runner->callbacks.total(runner, req->total, runner->userdata);
                        if (r < 0)
                                return reply_error(reply, r, NULL);
                }
                break;

        case STEP_REQUEST_EXIT_CODE:
                if (runner->callbacks.exit_code) {
                        r = runner->callbacks.exit_code(runner, req->exit_code, req->text, runner->userdata);
                        if (r < 0)
                                return reply_error(reply, r, NULL);
                }
                break;

        default:
                return reply_error(reply, EINVAL, "Unknown request");
        }

        *reply = (StepReply) { .type = STEP_REPLY_OK };
        return 0;
}

static void runner_send_reply(StepRunner *runner, int reply_fd, const StepReply *reply) {
        _cleanup_free_ char *msg = NULL;
        size_t size;
        ssize_t n;
        int r;

        r = step_reply_format(reply, &msg, &size);
        if (r < 0) {
                log_debug_errno(r, "Failed to format reply to step %s, dropping it: %m", runner->path);
                return;
        }

        if (reply_fd >= 0) {
                /* A fresh private socket: it has room, and if it does not, that is its owner's problem. */
                (void) send(reply_fd, msg, size, MSG_DONTWAIT | MSG_NOSIGNAL);
                return;
        }

        n = send(runner->notify_fd, msg, size, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0 || errno != EAGAIN || runner->draining || !runner->notify_source)
                return;

        /* The step does not read its replies. Stop reading its requests until it does, rather than queueing
         * without bound or blocking. */
        runner->pending_reply = TAKE_PTR(msg);
        runner->pending_reply_size = size;
        r = sd_event_source_set_io_events(runner->notify_source, EPOLLOUT);
        if (r < 0)
                log_warning_errno(r, "Failed to wait for step channel to become writable: %m");
}

static void runner_finish_continue(StepRunner *runner);
static int on_commit_retry(sd_event_source *s, uint64_t usec, void *userdata);

static void runner_arm_commit_retry(StepRunner *runner) {
        int r;

        runner->commit_retry_delay = db_retry_next(runner->commit_retry_delay);
        if (!runner->commit_retry_source)
                r = sd_event_add_time_relative(runner->event, &runner->commit_retry_source, CLOCK_MONOTONIC,
                                               runner->commit_retry_delay, 0, on_commit_retry, runner);
        else {
                r = sd_event_source_set_time_relative(runner->commit_retry_source, runner->commit_retry_delay);
                if (r >= 0)
                        r = sd_event_source_set_enabled(runner->commit_retry_source, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                /* Without a timer the step would wait forever: better let the next event retry. */
                log_warning_errno(r, "Failed to arm the retry of step %s's commit: %m", runner->path);
}

static int on_commit_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(step_reply_done) StepReply reply = {};
        _cleanup_close_ int reply_fd = -EBADF;
        StepRunner *runner = userdata;
        int r;

        r = runner_commit(runner, &runner->deferred_contribution, &error);
        if (r == -EAGAIN) {
                runner_arm_commit_retry(runner);
                return 0;
        }
        runner->commit_retry_delay = 0;

        if (runner->final_commit_deferred) {
                runner->final_commit_deferred = false;
                runner->final_commit_done = true;
                runner->final_commit_result = r;
                if (r < 0 && error.message)
                        runner->final_commit_message = strdup(error.message);
                runner_finish_continue(runner);         /* may free the runner */
                return 0;
        }

        runner->commit_deferred = false;
        reply_fd = TAKE_FD(runner->deferred_reply_fd);
        if (commit_reply(runner, r, error.message, &reply) >= 0)
                runner_send_reply(runner, reply_fd, &reply);
        if (runner->exited) {
                runner_finish_continue(runner);         /* may free the runner */
                return 0;
        }
        if (runner->notify_source)
                (void) sd_event_source_set_enabled(runner->notify_source, SD_EVENT_ON);
        return 0;
}

/* Receives and answers one packet. Returns 1 when one was handled, 0 when none was waiting, -EPIPE at EOF. */
static int runner_receive_one(StepRunner *runner, bool hup) {
        union {
                struct cmsghdr cmsghdr;
                uint8_t buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct iovec iov = { .iov_base = runner->buffer, .iov_len = STEP_MESSAGE_MAX + 1 };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof(control),
        };
        _cleanup_(step_request_done) StepRequest req = {};
        _cleanup_(step_reply_done) StepReply reply = {};
        _cleanup_close_ int reply_fd = -EBADF;
        const char *error = NULL;
        bool bad_fds = false;
        struct stat st;
        ssize_t n;
        int r;

        n = recvmsg(runner->notify_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0) {
                /* ECONNRESET: the peer died with unread replies. Reported once; queued packets stay readable. */
                if (errno == ECONNRESET)
                        return 1;
                if (errno == EAGAIN || errno == EINTR)
                        return 0;
                return -errno;
        }

        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;

                size_t n_fds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                int *fds = (int *) CMSG_DATA(c);

                for (size_t i = 0; i < n_fds; i++) {
                        if (reply_fd < 0 && n_fds == 1)
                                reply_fd = fds[i];
                        else {
                                safe_close(fds[i]);
                                bad_fds = true;
                        }
                }
        }
        if (mh.msg_flags & MSG_CTRUNC)
                bad_fds = true;         /* the kernel dropped descriptors that did not fit */

        if (n == 0 && reply_fd < 0 && !bad_fds && hup)
                return -EPIPE;

        if (reply_fd >= 0 && (fstat(reply_fd, &st) < 0 || !S_ISSOCK(st.st_mode))) {
                log_debug("Step %s passed a reply descriptor that is not a socket, dropping its request.", runner->path);
                return 1;
        }

        if (bad_fds)
                r = reply_error(&reply, EBADMSG, "At most one file descriptor, the reply socket, may be passed");
        else if ((size_t) n > STEP_MESSAGE_MAX || (mh.msg_flags & MSG_TRUNC))
                r = reply_error(&reply, EMSGSIZE, "Message too long");
        else {
                r = step_request_parse(runner->buffer, (size_t) n, &req, &error);
                if (r < 0) {
                        log_debug_errno(r, "Step %s sent a malformed message: %s", runner->path, error);
                        r = reply_error(&reply, r, error);
                } else
                        r = runner_handle(runner, &req, &reply);
        }
        if (r < 0) {
                log_debug_errno(r, "Failed to handle message from step %s: %m", runner->path);
                return 1;       /* no memory for a reply: a private reply socket at least sees EOF */
        }
        if (r > 0) {
                runner->commit_deferred = true;
                runner->deferred_reply_fd = TAKE_FD(reply_fd);
                if (runner->notify_source)
                        (void) sd_event_source_set_enabled(runner->notify_source, SD_EVENT_OFF);
                runner_arm_commit_retry(runner);
                return 1;
        }

        runner_send_reply(runner, reply_fd, &reply);
        return 1;
}

static int on_notify(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        StepRunner *runner = userdata;
        int r;

        if (runner->pending_reply) {
                ssize_t n;

                n = send(runner->notify_fd, runner->pending_reply, runner->pending_reply_size, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0 && errno == EAGAIN)
                        return 0;

                /* Sent, or never will be (the step closed its end): either way, read again. */
                runner->pending_reply = mfree(runner->pending_reply);
                r = sd_event_source_set_io_events(s, EPOLLIN);
                if (r < 0)
                        log_warning_errno(r, "Failed to resume reading the step channel: %m");
                return 0;
        }

        /* One packet per dispatch: the loop stays fair to other steps and to the bus. */
        r = runner_receive_one(runner, revents & (EPOLLHUP | EPOLLERR));
        if (r < 0) {
                if (r != -EPIPE)
                        log_debug_errno(r, "Failed to read from the channel of step %s, closing it: %m", runner->path);
                /* Nobody can write to us any more (or we cannot read); a level-triggered HUP would spin. */
                runner->notify_source = sd_event_source_disable_unref(runner->notify_source);
        }
        return 0;
}

/* ---- completion ---- */

static const char *exec_stage_to_string(ExecStage stage) {
        switch (stage) {
        case EXEC_STAGE_SIGNALS:           return "Failed to reset signal mask";
        case EXEC_STAGE_PROCESS_GROUP:     return "Failed to create process group";
        case EXEC_STAGE_FDS:               return "Failed to set up file descriptors";
        case EXEC_STAGE_USER:              return "Failed to change to user";
        case EXEC_STAGE_WORKING_DIRECTORY: return "Failed to change to working directory";
        case EXEC_STAGE_STDIN:             return "Failed to open /dev/null";
        case EXEC_STAGE_EXEC:              return "Failed to execute";
        case EXEC_STAGE_HELPER:            return "Failed to execute the helper";
        case EXEC_STAGE_SPEC:              return "Failed to read the step's set-up";
        case EXEC_STAGE_LOOKUP_USER:       return "Failed to look up user";
        default:                           return "Failed to set up step";
        }
}

static void runner_finish(StepRunner *runner, const siginfo_t *si) {
        ExecError ce = {};
        ssize_t n;

        runner->timeout_source = sd_event_source_disable_unref(runner->timeout_source);
        runner->kill_source = sd_event_source_disable_unref(runner->kill_source);

        /* The error pipe is closed by execve() or by the child's exit, so this never blocks. */
        n = read(runner->error_fd, &ce, sizeof(ce));
        runner->error_fd = safe_close(runner->error_fd);
        if (n != (ssize_t) sizeof(ce))
                ce = (ExecError) {};

        /* Nothing may be signalled any more: sd-event reaps the process once we return. */
        runner->exited = true;
        runner->running = false;
        runner->exit_info = *si;
        runner->child_error = ce;
        runner->draining = true;
        runner->pending_reply = mfree(runner->pending_reply);
        runner_finish_continue(runner);
}

/* The rest of the end of a step; resumed by on_commit_retry() while a commit waits for the database. */
static void runner_finish_continue(StepRunner *runner) {
        StepResult result = { .exit_status = -1 };
        _cleanup_free_ char *message = NULL;
        const siginfo_t *si = &runner->exit_info;
        ExecError ce = runner->child_error;
        char buf[TIMESPAN_MAX];
        int r;

        if (runner->commit_deferred || runner->final_commit_deferred)
                return;

        /* Requests the step sent right before exiting are still honoured, in order. */
        while (runner->notify_fd >= 0 && runner->drained < DRAIN_MAX) {
                runner->drained++;
                r = runner_receive_one(runner, /* hup= */ true);
                if (runner->commit_deferred)
                        return;
                if (r <= 0)
                        break;
        }
        runner->notify_source = sd_event_source_disable_unref(runner->notify_source);
        runner->notify_fd = safe_close(runner->notify_fd);

        if (si->si_code == CLD_EXITED)
                result.exit_status = si->si_status;
        else
                result.signal = si->si_status;

        if (ce.error > 0 && ce.stage == EXEC_STAGE_LOOKUP_USER && ce.error == ESRCH) {
                /* The words batchd used when it looked the user up itself. */
                result.outcome = STEP_OUTCOME_FAILED;
                result.error = -ce.error;
                r = asprintf(&message, "Failed to start step: no such user");
        } else if (ce.error > 0) {
                const char *what = ce.stage == EXEC_STAGE_USER || ce.stage == EXEC_STAGE_LOOKUP_USER ? runner->user :
                        ce.stage == EXEC_STAGE_WORKING_DIRECTORY ? runner->working_directory :
                        ce.stage == EXEC_STAGE_EXEC ? runner->path :
                        ce.stage == EXEC_STAGE_HELPER ? helper_path() : NULL;

                result.outcome = STEP_OUTCOME_FAILED;
                result.error = -ce.error;
                r = asprintf(&message, "%s%s%s: %s", exec_stage_to_string(ce.stage), what ? " " : "",
                             strempty(what), strerror(ce.error));
        } else if (runner->termination == TERMINATION_STOP) {
                result.outcome = STEP_OUTCOME_STOPPED;
                r = asprintf(&message, "stopped%s%s", runner->stop_reason ? ": " : "", strempty(runner->stop_reason));
        } else if (runner->termination == TERMINATION_TIMEOUT) {
                result.outcome = STEP_OUTCOME_FAILED;
                result.timed_out = true;
                r = asprintf(&message, "timed out after %s", timespan_format(runner->timeout, buf));
        } else if (si->si_code == CLD_EXITED && si->si_status == 0) {
                result.outcome = STEP_OUTCOME_SUCCESS;
                r = asprintf(&message, "%s", "");
        } else if (si->si_code == CLD_EXITED) {
                result.outcome = STEP_OUTCOME_FAILED;
                r = asprintf(&message, "exited with status %i", si->si_status);
        } else {
                const char *name = sigabbrev_np(si->si_status);

                result.outcome = STEP_OUTCOME_FAILED;
                r = asprintf(&message, "killed by signal %i%s%s%s%s", si->si_status, name ? " (" : "", strempty(name),
                             name ? ")" : "", si->si_code == CLD_DUMPED ? ", core dumped" : "");
        }
        if (r < 0)
                message = NULL;

        /* Like the last transaction of a tasklet: whatever a successful step left uncommitted is committed
         * now. A failed or stopped step's uncommitted work is rolled back. */
        if (result.outcome == STEP_OUTCOME_SUCCESS) {
                if (!runner->final_commit_done && runner_has_uncommitted(runner)) {
                        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

                        r = runner_commit(runner, &runner->contribution, &error);
                        if (r == -EAGAIN) {
                                runner->final_commit_deferred = true;
                                runner->deferred_contribution = runner->contribution;
                                runner_arm_commit_retry(runner);
                                return;
                        }
                        runner->final_commit_done = true;
                        runner->final_commit_result = r;
                        if (r < 0 && error.message)
                                runner->final_commit_message = strdup(error.message);
                }
                if (runner->final_commit_done && runner->final_commit_result < 0) {
                        result.outcome = STEP_OUTCOME_FAILED;
                        message = mfree(message);
                        if (asprintf(&message, "Failed to commit: %s",
                                     runner->final_commit_message ?: strerror(-runner->final_commit_result)) < 0)
                                message = NULL;
                }
        }

        /* Spring's TaskletStep counts a rollback whenever a chunk transaction is rolled back, the failing chunk
         * included; here that chunk is whatever the step reported since its last commit. */
        result.rolled_back = result.outcome != STEP_OUTCOME_SUCCESS && runner_has_uncommitted(runner);

        result.message = message ?: (result.outcome == STEP_OUTCOME_SUCCESS ? "" : "failed");

        log_debug("Step %s (PID %i) finished: %s%s%s", runner->path, runner->pid, step_outcome_to_string(result.outcome),
                  isempty(result.message) ? "" : ", ", result.message);

        /* Last: the callback may free the runner. */
        if (runner->callbacks.finished)
                runner->callbacks.finished(runner, &result, runner->userdata);
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        StepRunner *runner = userdata;

        /* sd-event reaps the main process only after we return, so its process group cannot have been
         * recycled: whatever is left in it (a forgotten "&", a daemonized helper) is killed now. Processes that
         * left the group with setsid() or setpgid() escape this; the step's cgroup is the place to catch those. */
        runner_signal(runner, SIGKILL);
        runner_finish(runner, si);
        return 0;
}

/* ---- lifecycle ---- */

StepRunner *step_runner_free(StepRunner *runner) {
        if (!runner)
                return NULL;

        if (runner->running) {
                runner_signal(runner, SIGKILL);
                /* Let sd-event reap it when the source goes; it is SIGKILLed, so that wait is short. */
                if (runner->child_source)
                        (void) sd_event_source_set_child_process_own(runner->child_source, true);
        }

        sd_event_source_disable_unref(runner->child_source);
        sd_event_source_disable_unref(runner->timeout_source);
        sd_event_source_disable_unref(runner->kill_source);
        sd_event_source_disable_unref(runner->notify_source);
        safe_close(runner->notify_fd);
        safe_close(runner->error_fd);
        sd_event_source_disable_unref(runner->commit_retry_source);
        safe_close(runner->deferred_reply_fd);

        execution_context_free(runner->step_context);
        execution_context_free(runner->job_context);
        execution_context_free(runner->staged_step);
        execution_context_free(runner->staged_job);

        free(runner->path);
        free(runner->user);
        free(runner->working_directory);
        free(runner->stop_reason);
        free(runner->buffer);
        free(runner->final_commit_message);
        free(runner->pending_reply);
        sd_event_unref(runner->event);
        return mfree(runner);
}

static int context_copy_or_new(const ExecutionContext *c, ExecutionContext **ret) {
        return c ? execution_context_copy(c, ret) : execution_context_new(ret);
}

static void reap_now(pid_t pid) {
        /* Only for a child we failed to hand to sd-event, right after SIGKILL. */
        (void) kill(-pid, SIGKILL);
        (void) kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
}

/* vfork(): the child borrows our memory until execve(), so none of our pages become copy-on-write. With fork(),
 * every page batchd touched after a launch faulted and flushed the TLB of every CPU, which made launching a burst
 * of steps several times slower. child_exec() is written for this: no allocation, only system calls that cannot
 * wait, everything prepared in the parent, and it never returns. We are suspended until it execs the helper,
 * which does everything that can wait (NSS, chdir(), journald) in the step's process instead. Its own function,
 * so no caller's locals live across vfork(). */
__attribute__((noinline)) static pid_t spawn_child(const ChildSetup *setup) {
        pid_t pid = vfork();

        if (pid == 0)
                child_exec(setup);
        return pid < 0 ? -errno : pid;
}

int step_runner_start(sd_event *event, const StepRunnerParameters *p, const StepRunnerCallbacks *callbacks,
                      void *userdata, StepRunner **ret) {
        _cleanup_(step_runner_freep) StepRunner *runner = NULL;
        _cleanup_free_ char **envp = NULL;
        _cleanup_close_ int child_notify_fd = -EBADF, child_error_fd = -EBADF, spec_fd = -EBADF, pidfd = -EBADF;
        ExecSpec spec;
        ChildSetup setup = {};
        int pair[2], pipefd[2];
        pid_t pid;
        int r;

        if (!event || !p || !ret)
                return -EINVAL;
        if (!p->argv || !p->argv[0] || p->argv[0][0] != '/')
                return -EINVAL;
        if (p->working_directory && p->working_directory[0] != '/')
                return -EINVAL;
        if (p->user && isempty(p->user))
                return -EINVAL;

        runner = calloc(1, sizeof(StepRunner));
        if (!runner)
                return -ENOMEM;
        *runner = (StepRunner) {
                .event = sd_event_ref(event),
                .userdata = userdata,
                .timeout = p->timeout,
                .kill_grace = p->kill_grace,
                .notify_fd = -EBADF,
                .error_fd = -EBADF,
                .deferred_reply_fd = -EBADF,
        };
        if (callbacks)
                runner->callbacks = *callbacks;

        runner->path = strdup(p->argv[0]);
        runner->working_directory = strdup(p->working_directory ?: "/");
        runner->user = p->user ? strdup(p->user) : NULL;
        runner->buffer = malloc(STEP_MESSAGE_MAX + 1);
        if (!runner->path || !runner->working_directory || (p->user && !runner->user) || !runner->buffer)
                return -ENOMEM;

        if ((r = context_copy_or_new(p->step_context, &runner->step_context)) < 0 ||
            (r = context_copy_or_new(p->job_context, &runner->job_context)) < 0 ||
            (r = execution_context_new(&runner->staged_step)) < 0 ||
            (r = execution_context_new(&runner->staged_job)) < 0)
                return r;

        setup = (ChildSetup) {
                .helper = helper_path(),
                .output_fd = p->output_fd >= 0 ? p->output_fd : STDERR_FILENO,
        };

        r = environment_build(p->environment, &envp);
        if (r < 0)
                return r;

        /* The user is looked up by the helper, in the step's process: NSS may wait on the network. */
        spec = (ExecSpec) {
                .user = runner->user,
                .working_directory = runner->working_directory,
                .identifier = (char *) p->identifier,
                .log_fields = p->log_fields,
                .argv = p->argv,
                .envp = envp,
                .user_environment = p->user && p->user_environment,
        };
        r = exec_spec_to_memfd(&spec, &spec_fd);
        if (r < 0)
                return r;
        setup.spec_fd = spec_fd;

        /* Blocking for the step (it is a simple client), non-blocking for us. */
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
                return -errno;
        runner->notify_fd = pair[0];
        child_notify_fd = pair[1];
        if (fcntl(runner->notify_fd, F_SETFL, O_NONBLOCK) < 0)
                return -errno;

        /* execve() closes the write end, so a read that returns nothing means the exec succeeded. */
        if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        runner->error_fd = pipefd[0];
        child_error_fd = pipefd[1];

        setup.notify_fd = child_notify_fd;
        setup.error_fd = child_error_fd;

        pid = spawn_child(&setup);
        if (pid < 0)
                return pid;

        /* Also here, so a kill(-pid) right after fork() cannot miss. EACCES once the child exec'd is fine. */
        (void) setpgid(pid, pid);
        runner->pid = pid;
        runner->running = true;

        child_notify_fd = safe_close(child_notify_fd);
        child_error_fd = safe_close(child_error_fd);
        spec_fd = safe_close(spec_fd);

        pidfd = pidfd_open_child(pid);
        if (pidfd >= 0) {
                r = sd_event_add_child_pidfd(event, &runner->child_source, pidfd, WEXITED, on_child, runner);
                if (r >= 0) {
                        TAKE_FD(pidfd);
                        (void) sd_event_source_set_child_pidfd_own(runner->child_source, true);
                }
        } else
                r = sd_event_add_child(event, &runner->child_source, pid, WEXITED, on_child, runner);
        if (r < 0) {
                /* -EBUSY: SIGCHLD is not blocked. */
                log_debug_errno(r, "Failed to watch step process %i: %m", pid);
                reap_now(pid);
                runner->running = false;
                return r;
        }

        /* On any failure from here on, step_runner_free() SIGKILLs the step and reaps it via the child source. */
        r = sd_event_add_io(event, &runner->notify_source, runner->notify_fd, EPOLLIN, on_notify, runner);
        if (r < 0)
                return r;

        if (runner->timeout > 0 && runner->timeout != USEC_INFINITY) {
                r = sd_event_add_time_relative(event, &runner->timeout_source, CLOCK_MONOTONIC, runner->timeout,
                                               USEC_PER_MSEC, on_timeout, runner);
                if (r < 0)
                        return r;
        }

        log_debug("Started step %s as PID %i.", runner->path, pid);
        *ret = TAKE_PTR(runner);
        return 0;
}
