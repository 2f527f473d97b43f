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
        if (spec.identifier) {
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
