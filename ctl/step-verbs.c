/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <getopt.h>
#include <inttypes.h>

#include "log.h"
#include "step-protocol.h"
#include "step-verbs.h"

/* "step get" follows grep: 0 found, 1 not found, 2 trouble. */
#define EXIT_GET_NOT_FOUND 1
#define EXIT_GET_ERROR 2

static int acquire_channel(int *ret_fd) {
        int r;

        r = step_channel_from_environment(ret_fd);
        if (r == -ENXIO)
                return log_error_errno(r, "Not running inside a batchd step ($%s is not set).", STEP_NOTIFY_FD_ENV);
        if (r < 0)
                return log_error_errno(r, "$%s=%s does not refer to a batchd step channel: %m",
                                       STEP_NOTIFY_FD_ENV, getenv(STEP_NOTIFY_FD_ENV));
        return 0;
}

/* Sends req and turns transport failures and ERR replies into logged errors. */
static int call(const StepRequest *req, StepReply *ret) {
        _cleanup_(step_reply_done) StepReply reply = {};
        const char *error = NULL;
        int fd, r;

        r = acquire_channel(&fd);
        if (r < 0)
                return r;

        r = step_channel_call(fd, req, &reply, &error);
        if (r < 0 && error)
                return log_error_errno(r, "Invalid request: %s", error);
        if (r == -ECONNRESET)
                return log_error_errno(r, "batchd closed the step channel without replying (is the step being torn down?).");
        if (r < 0)
                return log_error_errno(r, "Failed to talk to batchd over the step channel: %m");

        if (reply.type == STEP_REPLY_ERROR)
                return log_error_errno(reply.error, "batchd refused the request: %s", strempty(reply.text));

        *ret = reply;
        reply = (StepReply) {};
        return 0;
}

static int call_expect_ok(const StepRequest *req) {
        _cleanup_(step_reply_done) StepReply reply = {};
        int r;

        r = call(req, &reply);
        if (r < 0)
                return r;
        if (reply.type != STEP_REPLY_OK)
                return log_error_errno(EBADMSG, "Unexpected reply from batchd.");
        return 0;
}

enum {
        ARG_JOB = 0x100,
        ARG_READ,
        ARG_WRITE,
        ARG_FILTER,
        ARG_READ_SKIP,
        ARG_WRITE_SKIP,
        ARG_PROCESS_SKIP,
};

/* Parses [--job] for get and put. Returns the index of the first positional argument. */
static int parse_scope(int argc, char *argv[], StepScope *ret_scope) {
        static const struct option options[] = {
                { "job", no_argument, NULL, ARG_JOB },
                {}
        };
        StepScope scope = STEP_SCOPE_STEP;
        int c;

        /* "+": stop at the key, so a value such as "-5" is never taken for an option. */
        optind = 0;
        while ((c = getopt_long(argc, argv, "+", options, NULL)) >= 0)
                switch (c) {
                case ARG_JOB:
                        scope = STEP_SCOPE_JOB;
                        break;
                case '?':
                        return -EINVAL;
                default:
                        return log_error_errno(EINVAL, "Unhandled option");
                }

        *ret_scope = scope;
        return optind;
}

static int verb_step_get(int argc, char *argv[], void *userdata) {
        _cleanup_(step_reply_done) StepReply reply = {};
        StepRequest req = { .type = STEP_REQUEST_GET };
        int i, r;

        i = parse_scope(argc, argv, &req.scope);
        if (i < 0)
                return EXIT_GET_ERROR;
        if (argc - i != 1) {
                log_error("Usage: batchctl step get [--job] KEY");
                return EXIT_GET_ERROR;
        }
        req.key = argv[i];

        r = call(&req, &reply);
        if (r < 0)
                return EXIT_GET_ERROR;

        switch (reply.type) {
        case STEP_REPLY_VALUE:
                break;
        case STEP_REPLY_NOT_FOUND:
                return EXIT_GET_NOT_FOUND;      /* quietly, so "v=$(batchctl step get k) || v=default" works */
        default:
                log_error("Unexpected reply from batchd.");
                return EXIT_GET_ERROR;
        }

        if (fputs(reply.text, stdout) < 0 || fputc('\n', stdout) < 0 || fflush(stdout) != 0) {
                log_error_errno(errno, "Failed to write value: %m");
                return EXIT_GET_ERROR;
        }
        return 0;
}

static int verb_step_put(int argc, char *argv[], void *userdata) {
        StepRequest req = { .type = STEP_REQUEST_PUT };
        int i;

        i = parse_scope(argc, argv, &req.scope);
        if (i < 0)
                return i;
        if (argc - i != 2)
                return log_error_errno(EINVAL, "Usage: batchctl step put [--job] KEY VALUE");
        req.key = argv[i];
        req.value = argv[i + 1];

        return call_expect_ok(&req);
}

static int parse_count_argument(const char *name, const char *s, int64_t *ret) {
        char *end = NULL;
        uintmax_t v;

        if (isempty(s) || !strchr("0123456789", s[0]))
                return log_error_errno(EINVAL, "--%s needs a non-negative number, not '%s'.", name, s);

        errno = 0;
        v = strtoumax(s, &end, 10);
        if (errno != 0 || *end != '\0' || v > INT64_MAX)
                return log_error_errno(errno == ERANGE || v > INT64_MAX ? ERANGE : EINVAL,
                                       "--%s needs a non-negative number, not '%s'.", name, s);

        *ret = (int64_t) v;
        return 0;
}

static int verb_step_commit(int argc, char *argv[], void *userdata) {
        static const struct option options[] = {
                { "read",         required_argument, NULL, ARG_READ         },
                { "write",        required_argument, NULL, ARG_WRITE        },
                { "filter",       required_argument, NULL, ARG_FILTER       },
                { "read-skip",    required_argument, NULL, ARG_READ_SKIP    },
                { "write-skip",   required_argument, NULL, ARG_WRITE_SKIP   },
                { "process-skip", required_argument, NULL, ARG_PROCESS_SKIP },
                {}
        };
        StepRequest req = { .type = STEP_REQUEST_COMMIT };
        int64_t *field;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+", options, NULL)) >= 0) {
                switch (c) {
                case ARG_READ:          field = &req.counts.read_count;         break;
                case ARG_WRITE:         field = &req.counts.write_count;        break;
                case ARG_FILTER:        field = &req.counts.filter_count;       break;
                case ARG_READ_SKIP:     field = &req.counts.read_skip_count;    break;
                case ARG_WRITE_SKIP:    field = &req.counts.write_skip_count;   break;
                case ARG_PROCESS_SKIP:  field = &req.counts.process_skip_count; break;
                case '?':
                        return -EINVAL;
                default:
                        return log_error_errno(EINVAL, "Unhandled option");
                }

                r = parse_count_argument(options[c - ARG_READ].name, optarg, field);
                if (r < 0)
                        return r;
        }
        if (optind != argc)
                return log_error_errno(EINVAL, "Usage: batchctl step commit [--read N] [--write N] [--filter N] "
                                       "[--read-skip N] [--write-skip N] [--process-skip N]");

        return call_expect_ok(&req);
}

/* status and exit-code take no options, so their text goes verbatim even when it starts with "-". */
static int verb_step_status(int argc, char *argv[], void *userdata) {
        StepRequest req = {
                .type = STEP_REQUEST_STATUS,
                .text = argv[1],
        };

        return call_expect_ok(&req);
}

/* total N: how many items the step will read in all, for the progress batchctl status shows; 0 clears it. */
static int verb_step_total(int argc, char *argv[], void *userdata) {
        StepRequest req = {
                .type = STEP_REQUEST_TOTAL,
        };
        int r;

        r = parse_count_argument("total", argv[1], &req.total);
        if (r < 0)
                return r;
        return call_expect_ok(&req);
}

static int verb_step_exit_code(int argc, char *argv[], void *userdata) {
        StepRequest req = {
                .type = STEP_REQUEST_EXIT_CODE,
                .exit_code = argv[1],
                .text = argc > 2 ? argv[2] : NULL,
        };

        return call_expect_ok(&req);
}

const char step_verbs_help[] =
        "Step commands (only inside a running step):\n"
        "  step get [--job] KEY           Print a value of the step's (or job's) context;\n"
        "                                 exit status 1 if there is none\n"
        "  step put [--job] KEY VALUE     Stage a value for the next commit\n"
        "  step commit [--read N] [--write N] [--filter N]\n"
        "              [--read-skip N] [--write-skip N] [--process-skip N]\n"
        "                                 Add to the counts and commit everything staged;\n"
        "                                 returns once it is durable\n"
        "  step status TEXT               Set the step's status line\n"
        "  step total N                   Declare how many items the step reads in all,\n"
        "                                 for its progress (items done, rate, time left)\n"
        "  step exit-code CODE [DESCRIPTION]\n"
        "                                 Set the exit status to record for the step\n";

int verb_step(int argc, char *argv[], void *userdata) {
        static const Verb step_verbs[] = {
                { "get",       1, VERB_ANY, verb_step_get       },   /* checks its own usage: exit 2 */
                { "put",       3, VERB_ANY, verb_step_put       },
                { "commit",    1, VERB_ANY, verb_step_commit    },
                { "status",    2, 2,        verb_step_status    },
                { "total",     2, 2,        verb_step_total     },
                { "exit-code", 2, 3,        verb_step_exit_code },
        };

        /* Only directly after "step": anywhere else "--help" may be a key or a value. */
        if (argc == 2 && (streq(argv[1], "--help") || streq(argv[1], "-h"))) {
                fputs(step_verbs_help, stdout);
                return 0;
        }

        return verbs_dispatch(step_verbs, ELEMENTSOF(step_verbs), "step", argc - 1, argv + 1, userdata);
}
