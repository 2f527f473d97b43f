/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* batchd-exec: the first program every step process runs, like systemd's sd-executor. batchd's vfork() child
 * execs it right away (see exec-spec.h for the descriptors it gets), so batchd is suspended only until this
 * execve(); everything that can wait happens here, in the step's own process: the user lookup through NSS, the
 * switch to the user, chdir() into the working directory (a hung NFS mount), the connection to journald (a
 * stuck journald). A step that hangs here is a step that hangs: its timeout and "batchctl stop" end it.
 *
 * Failures are written as one ExecError to the error pipe and end the process with status 127; batchd reads
 * the error when it reaps the process and makes it the step's exit message. Nothing is printed: stdout and
 * stderr are not the step's yet. Deliberately small: it links exec-spec.c and libsystemd only. */

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>
#include <systemd/sd-journal.h>

#include "exec-spec.h"

_Noreturn static void fail(ExecStage stage, int error) {
        ExecError e = { .stage = stage, .error = abs(error) ?: EIO };

        (void) !write(EXEC_FD_ERROR, &e, sizeof(e));
        _exit(127);
}

static int move_fd(int fd) {
        /* Above the fixed descriptors: the targets 0..3 can then be dup2()ed to without clobbering a source.
         * CLOEXEC, so whatever close_fds() leaves behind goes at execve(). */
        return fcntl(fd, F_DUPFD_CLOEXEC, EXEC_FD_OUTPUT + 1);
}

static void close_fds(int from, int keep) {
        /* Everything from 'from' on but 'keep' (the error pipe, CLOEXEC: it goes at execve()). */
        if (keep > from && close_range((unsigned) from, (unsigned) keep - 1, 0) < 0 && errno == ENOSYS) {
                for (int fd = from; fd < keep; fd++)
                        (void) close(fd);
        }
        if (close_range((unsigned) keep + 1, ~0U, 0) < 0 && errno == ENOSYS) {
                struct rlimit rl;
                int max = getrlimit(RLIMIT_NOFILE, &rl) >= 0 && rl.rlim_cur != RLIM_INFINITY ?
                        (int) MIN(rl.rlim_cur, (rlim_t) (1 << 20)) : 65536;

                for (int fd = keep + 1; fd < max; fd++)
                        (void) close(fd);
        }
}

/* As batchd's log.c: without journald's socket (a container without it), native entries would be dropped. */
static bool journal_available(void) {
        struct stat st;

        return stat("/run/systemd/journal/socket", &st) >= 0 && S_ISSOCK(st.st_mode);
}

/* The user's identity variables, where the job's environment does not set them itself. */
static int add_user_environment(char ***envp, const struct passwd *pw) {
        const char *vars[][2] = {
                { "USER", pw->pw_name },
                { "LOGNAME", pw->pw_name },
                { "HOME", pw->pw_dir },
                { "SHELL", pw->pw_shell },
        };
        size_t n = 0;
        char **l;

        while ((*envp)[n])
                n++;
        l = reallocarray(*envp, n + ELEMENTSOF(vars) + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        *envp = l;

        for (size_t i = 0; i < ELEMENTSOF(vars); i++) {
                size_t len = strlen(vars[i][0]);
                bool set = false;

                for (size_t j = 0; j < n && !set; j++)
                        set = strneq(l[j], vars[i][0], len) && l[j][len] == '=';
                if (set || !vars[i][1])
                        continue;
                if (asprintf(&l[n], "%s=%s", vars[i][0], vars[i][1]) < 0)
                        return -ENOMEM;
                l[++n] = NULL;
        }
        return 0;
}

/* initgroups() semantics: the user's uid, primary gid and every group it is a member of. */
static int lookup_user(const char *user, bool want_environment, char ***envp, uid_t *ret_uid, gid_t *ret_gid,
                       gid_t **ret_groups, int *ret_n_groups) {
        _cleanup_free_ char *buf = NULL;
        _cleanup_free_ gid_t *groups = NULL;
        struct passwd pw, *result = NULL;
        size_t size = 1024;
        int n = 32, r;

        for (;;) {
                free(buf);
                buf = malloc(size);
                if (!buf)
                        return -ENOMEM;
                r = getpwnam_r(user, &pw, buf, size, &result);
                if (r != ERANGE)
                        break;
                if (size > 1024 * 1024)
                        return -ERANGE;
                size *= 2;
        }
        if (r != 0)
                return -r;
        if (!result)
                return -ESRCH;
        if (want_environment) {
                r = add_user_environment(envp, &pw);
                if (r < 0)
                        return r;
        }

        for (;;) {
                int k = n;

                groups = mfree(groups);
                groups = malloc(sizeof(gid_t) * (size_t) n);
                if (!groups)
                        return -ENOMEM;
                if (getgrouplist(user, pw.pw_gid, groups, &k) >= 0) {
                        n = k;
                        break;
                }
                /* k is now the number needed; insist on growth so a changing group database cannot loop us. */
                if (k > 65536)
                        return -E2BIG;
                n = MAX(k, n * 2);
        }

        *ret_uid = pw.pw_uid;
        *ret_gid = pw.pw_gid;
        *ret_groups = TAKE_PTR(groups);
        *ret_n_groups = n;
        return 0;
}

/* ---- the output relay ----
 *
 * A journal stream (sd_journal_stream_fd()) takes only an identifier, a priority and the level-prefix switch in
 * its header: journald gives its lines no other fields, and there is no per-line field API for a stream.
 * LogExtraFields= is a unit setting; steps are no units. So when batchd wants fields on the step's output
 * (ExecSpec.log_fields: the job, the execution and the step), stdout and stderr become a pipe to a relay that
 * sends each line as a native entry (sd_journal_sendv()) with those fields, the identifier and the priority of
 * a "<N>" prefix, as the stream would. The relay runs here, outside batchd: batchd's loop never writes a step's
 * output to journald.
 *
 * The relay is this process, the one batchd started and waits for; the step is its child. So batchd sees the
 * step end only after its last line went to the journal ("step finished" comes after the step's output, as
 * with a stream), _PID of the step's lines is the PID batchd logs as BATCH_STEP_PID, and the step has no
 * stray child to reap. The relay ignores SIGTERM (the step gets it from batchd's kill of the process group),
 * waits for the step, relays what it wrote, and ends the way the step ended: the same exit status, or killed
 * by the same signal. Output written after the step's end by processes it left behind is not waited for. */

/* Like journald's LineMax=: longer lines are split. */
#define RELAY_LINE_MAX (48U * 1024U)

typedef struct Relay {
        struct iovec *iov;      /* MESSAGE, PRIORITY, then the fixed fields */
        size_t n_iov;
        int fallback_fd;        /* where a line goes if the journal does not take it */
        char buf[RELAY_LINE_MAX];
        size_t n;
} Relay;

static void relay_line(Relay *r, const char *line, size_t length) {
        char priority[] = "PRIORITY=6";
        _cleanup_free_ char *message = NULL;

        /* The level prefix of sd-daemon(3), as a stream with level_prefix=1 reads it. */
        if (length >= 3 && line[0] == '<' && line[1] >= '0' && line[1] <= '7' && line[2] == '>') {
                priority[strlen("PRIORITY=")] = line[1];
                line += 3;
                length -= 3;
        }
        message = malloc(strlen("MESSAGE=") + length);
        if (!message)
                return;
        memcpy(message, "MESSAGE=", strlen("MESSAGE="));
        memcpy(message + strlen("MESSAGE="), line, length);
        r->iov[0] = (struct iovec) { .iov_base = message, .iov_len = strlen("MESSAGE=") + length };
        r->iov[1] = (struct iovec) { .iov_base = priority, .iov_len = strlen(priority) };
        if (sd_journal_sendv(r->iov, (int) r->n_iov) < 0 && r->fallback_fd >= 0) {
                struct iovec out[2] = {
                        { .iov_base = (char *) line, .iov_len = length },
                        { .iov_base = (char *) "\n", .iov_len = 1 },
                };

                (void) !writev(r->fallback_fd, out, 2);
        }
}

/* Reads what fd has; returns 0 at EOF, 1 if there may be more, negative errno (-EAGAIN: nothing now). */
static int relay_read(Relay *r, int fd) {
        size_t start = 0;
        ssize_t k;

        k = read(fd, r->buf + r->n, sizeof(r->buf) - r->n);
        if (k < 0)
                return -errno;
        if (k == 0) {
                if (r->n > 0)
                        relay_line(r, r->buf, r->n);
                r->n = 0;
                return 0;
        }
        r->n += (size_t) k;
        for (;;) {
                char *nl = memchr(r->buf + start, '\n', r->n - start);

                if (!nl)
                        break;
                relay_line(r, r->buf + start, (size_t) (nl - (r->buf + start)));
                start = (size_t) (nl - r->buf) + 1;
        }
        if (start == 0 && r->n == sizeof(r->buf))
                start = r->n, relay_line(r, r->buf, r->n);     /* a full buffer without a newline: split */
        memmove(r->buf, r->buf + start, r->n - start);
        r->n -= start;
        return 1;
}

_Noreturn static void relay_exit_like(int status) {
        if (WIFSIGNALED(status)) {
                struct rlimit no_core = {};
                sigset_t mask;
                int sig = WTERMSIG(status);

                /* Die of the same signal, so batchd sees the step's end as it was; the step dumped its own core. */
                (void) setrlimit(RLIMIT_CORE, &no_core);
                (void) signal(sig, SIG_DFL);
                if (sigemptyset(&mask) >= 0 && sigaddset(&mask, sig) >= 0)
                        (void) sigprocmask(SIG_UNBLOCK, &mask, NULL);
                (void) raise(sig);
                _exit(128 + sig);
        }
        _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 127);
}

_Noreturn static void relay_run(Relay *r, int fd, pid_t step) {
        int pidfd = (int) syscall(SYS_pidfd_open, step, 0), status = 0;
        bool open = true;

        for (;;) {
                struct pollfd p[2] = {
                        { .fd = open ? fd : -1, .events = POLLIN },
                        { .fd = pidfd, .events = POLLIN },
                };
                pid_t w;

                if (!open || pidfd < 0) {
                        /* Without a pidfd (an old kernel): until EOF, then wait. After EOF: just wait. */
                        while (open) {
                                int k = relay_read(r, fd);

                                if (k == 0 || (k < 0 && k != -EINTR))
                                        open = false;
                        }
                        while ((w = waitpid(step, &status, 0)) < 0 && errno == EINTR)
                                ;
                        break;
                }
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        pidfd = safe_close(pidfd);
                        continue;
                }
                if (p[0].revents != 0) {
                        int k = relay_read(r, fd);

                        /* EOF, or a pipe that cannot be read: from now on only wait for the step. */
                        if (k == 0 || (k < 0 && k != -EINTR && k != -EAGAIN))
                                open = false;
                }
                if (p[1].revents != 0) {
                        while ((w = waitpid(step, &status, 0)) < 0 && errno == EINTR)
                                ;
                        /* The step is gone: what it wrote is in the pipe. Take that, not what processes it left
                         * behind may still write. */
                        if (open && fcntl(fd, F_SETFL, O_NONBLOCK) >= 0)
                                while (relay_read(r, fd) > 0)
                                        ;
                        break;
                }
        }
        relay_exit_like(status);
}

/* Forks the step off. Returns in the child, the step, with the write end of the relay's pipe in *ret_fd for its
 * stdout and stderr; the parent becomes the relay and never returns. Negative errno if no relay could be set
 * up: then nothing was forked and the caller falls back to a plain stream. */
static int relay_fork(const ExecSpec *spec, int null_fd, int *ret_fd) {
        static Relay relay;
        int p[2];
        size_t n = 0;
        pid_t pid;

        for (char **f = spec->log_fields; *f; f++)
                n++;
        relay.n_iov = 2 + 1 + n;
        relay.iov = calloc(relay.n_iov, sizeof(struct iovec));
        if (!relay.iov)
                return -ENOMEM;
        {
                char *ident = NULL;

                if (asprintf(&ident, "SYSLOG_IDENTIFIER=%s", spec->identifier) < 0) {
                        relay.iov = mfree(relay.iov);
                        return -ENOMEM;
                }
                relay.iov[2] = (struct iovec) { .iov_base = ident, .iov_len = strlen(ident) };
        }
        for (size_t i = 0; i < n; i++)
                relay.iov[3 + i] = (struct iovec) { .iov_base = spec->log_fields[i],
                                                    .iov_len = strlen(spec->log_fields[i]) };

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;

        pid = fork();
        if (pid < 0) {
                int k = -errno;

                (void) close(p[0]);
                (void) close(p[1]);
                return k;
        }
        if (pid == 0) {
                (void) close(p[0]);
                *ret_fd = p[1];
                return 0;
        }

        /* The relay. The step has its own copies of what it needs; ours of the protocol channel and of the
         * error pipe must go, or batchd would not see the step close them. */
        (void) signal(SIGTERM, SIG_IGN);
        (void) signal(SIGINT, SIG_IGN);
        (void) signal(SIGHUP, SIG_IGN);
        (void) signal(SIGPIPE, SIG_IGN);
        (void) close(p[1]);
        relay.fallback_fd = -EBADF;
        if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(null_fd, STDOUT_FILENO) < 0 ||
            dup2(null_fd, STDERR_FILENO) < 0 || dup2(p[0], EXEC_FD_NOTIFY) < 0)
                _exit(127);
        if (fcntl(EXEC_FD_OUTPUT, F_GETFD) >= 0 && dup2(EXEC_FD_OUTPUT, EXEC_FD_ERROR) >= 0)
                relay.fallback_fd = EXEC_FD_ERROR;
        else
                (void) close(EXEC_FD_ERROR);
        close_fds(EXEC_FD_ERROR + 1, EXEC_FD_ERROR + 1);    /* fd 5, the spec, is closed already */
        relay_run(&relay, EXEC_FD_NOTIFY, pid);
}

int main(int argc, char *argv[]) {
        _cleanup_(exec_spec_done) ExecSpec spec = {};
        int null_fd, output_fd = -EBADF, r;
        sigset_t mask;

        /* Run by hand, there is no error pipe or spec to work with. */
        if (argc != 1 || fcntl(EXEC_FD_ERROR, F_GETFD) < 0 || fcntl(EXEC_FD_SPEC, F_GETFD) < 0) {
                fprintf(stderr, "%s: batchd's helper for starting steps; it is not meant to be run by hand.\n",
                        argc > 0 ? argv[0] : "batchd-exec");
                return EXIT_FAILURE;
        }
        /* The error pipe must not reach the step: its closing at execve() is how batchd knows the step runs. */
        if (fcntl(EXEC_FD_ERROR, F_SETFD, FD_CLOEXEC) < 0)
                _exit(127);

        /* batchd blocks the signals sd-event handles and may ignore others; both would survive execve(). */
        for (int sig = 1; sig < _NSIG; sig++) {
                struct sigaction sa = { .sa_handler = SIG_DFL };

                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) sigaction(sig, &sa, NULL);
        }
        if (sigemptyset(&mask) < 0 || sigprocmask(SIG_SETMASK, &mask, NULL) < 0)
                fail(EXEC_STAGE_SIGNALS, errno);

        r = exec_spec_from_fd(EXEC_FD_SPEC, &spec);
        if (r < 0)
                fail(EXEC_STAGE_SPEC, r);
        (void) close(EXEC_FD_SPEC);

        if (spec.user) {
                _cleanup_free_ gid_t *groups = NULL;
                int n_groups = 0;
                uid_t uid = 0;
                gid_t gid = 0;

                r = lookup_user(spec.user, spec.user_environment, &spec.envp, &uid, &gid, &groups, &n_groups);
                if (r < 0)
                        fail(EXEC_STAGE_LOOKUP_USER, r);
                /* An unprivileged batchd can still run steps as itself. */
                if (geteuid() == 0 || uid != geteuid() || gid != getegid()) {
                        if (setgroups((size_t) n_groups, groups) < 0 ||
                            setresgid(gid, gid, gid) < 0 ||
                            setresuid(uid, uid, uid) < 0)
                                fail(EXEC_STAGE_USER, errno);
                }
        }

        /* After the user change, so the step cannot enter a directory its user may not. */
        if (chdir(spec.working_directory) < 0)
                fail(EXEC_STAGE_WORKING_DIRECTORY, errno);

        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null_fd < 0)
                fail(EXEC_STAGE_STDIN, errno);
        null_fd = move_fd(null_fd);
        if (null_fd < 0)
                fail(EXEC_STAGE_FDS, errno);

        /* Connected here, as the step's user and in the step's process: journald takes _PID, _UID and the cgroup
         * of the stream from the peer credentials at connect() time, so they name the step, not batchd. */
        if (spec.identifier && spec.log_fields && journal_available()) {
                int fd = -EBADF;

                if (relay_fork(&spec, null_fd, &fd) >= 0)
                        output_fd = move_fd(fd);
        }
        if (spec.identifier && output_fd < 0) {
                int fd = sd_journal_stream_fd(spec.identifier, LOG_INFO, /* level_prefix= */ 1);

                if (fd >= 0)
                        output_fd = move_fd(fd);
        }
        if (output_fd < 0)
                output_fd = move_fd(EXEC_FD_OUTPUT);
        if (output_fd < 0)
                output_fd = null_fd;    /* batchd's stderr is closed: better mute than not at all */

        if (dup2(null_fd, STDIN_FILENO) < 0 ||
            dup2(output_fd, STDOUT_FILENO) < 0 ||
            dup2(output_fd, STDERR_FILENO) < 0)
                fail(EXEC_STAGE_FDS, errno);

        close_fds(EXEC_FD_NOTIFY + 1, EXEC_FD_ERROR);

        execve(spec.argv[0], spec.argv, spec.envp);
        fail(EXEC_STAGE_EXEC, errno);
}
