/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

/* What batchd hands to batchd-exec, its step-starting helper, and what the helper reports back.
 *
 * batchd's vfork() child only moves descriptors into place and execs the helper: the parent is suspended in
 * vfork() until then, so nothing that can wait (NSS, a journald connect(), chdir() into a hung NFS mount) may
 * happen before that execve(). The helper does all of it in its own process, which becomes the step:
 *
 *   fd 3 (EXEC_FD_NOTIFY)  the step's end of the step protocol channel; stays fd 3 in the step
 *   fd 4 (EXEC_FD_ERROR)   write end of the error pipe: one ExecError if set-up or execve() fails
 *   fd 5 (EXEC_FD_SPEC)    a sealed memfd with the serialized ExecSpec, read and closed by the helper
 *   fd 6 (EXEC_FD_OUTPUT)  where stdout/stderr go when the journal is not used or not reachable
 *
 * The helper looks up the user (getpwnam_r(), getgrouplist()), switches to it (setgroups(), setresgid(),
 * setresuid()), changes to the working directory, opens /dev/null for stdin, connects stdout/stderr to journald
 * as the step's user, closes every other descriptor and execve()s the step with exactly the given environment. */

#define EXEC_FD_NOTIFY 3
#define EXEC_FD_ERROR  4
#define EXEC_FD_SPEC   5
#define EXEC_FD_OUTPUT 6

/* Where the set-up failed; batchd turns it into the step's exit message (step-runner.c). */
typedef enum ExecStage {
        EXEC_STAGE_SIGNALS,
        EXEC_STAGE_PROCESS_GROUP,
        EXEC_STAGE_FDS,
        EXEC_STAGE_USER,                /* setgroups()/setresgid()/setresuid() */
        EXEC_STAGE_WORKING_DIRECTORY,
        EXEC_STAGE_STDIN,
        EXEC_STAGE_EXEC,
        EXEC_STAGE_HELPER,              /* batchd's vfork() child could not execute the helper */
        EXEC_STAGE_SPEC,                /* the helper could not read its spec */
        EXEC_STAGE_LOOKUP_USER,         /* getpwnam_r()/getgrouplist(); ESRCH: no such user */
} ExecStage;

/* Smaller than PIPE_BUF, so one write() is atomic. */
typedef struct ExecError {
        int32_t stage;
        int32_t error;
} ExecError;

typedef struct ExecSpec {
        char *user;                     /* NULL: stay who we are */
        char *working_directory;        /* absolute */
        char *identifier;               /* SYSLOG_IDENTIFIER in the journal; NULL: do not use the journal */
        char **argv;                    /* argv[0] absolute */
        char **envp;                    /* may be empty */
        /* "NAME=value" journal fields put on every line of the step's output (with identifier only): the
         * helper then relays the output line by line, see batchd-exec.c. NULL: a plain journal stream. */
        char **log_fields;
        /* Add USER, LOGNAME, HOME and SHELL from the user's passwd entry where envp has no such entry. */
        bool user_environment;
} ExecSpec;

void exec_spec_done(ExecSpec *s);

/* Writes the spec to a new sealed memfd (CLOEXEC) positioned at 0 and returns it. */
int exec_spec_to_memfd(const ExecSpec *s, int *ret_fd);

/* Reads a spec written by exec_spec_to_memfd() from fd. -EBADMSG when it is not one. */
int exec_spec_from_fd(int fd, ExecSpec *ret);
