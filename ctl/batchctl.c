/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <getopt.h>

#include "log.h"
#include "step-verbs.h"

static int help(void) {
        printf("batchctl [OPTIONS...] COMMAND ...\n"
               "\n"
               "Control batchd.\n"
               "\n"
               "Step commands (only inside a running step):\n"
               "  step get [--job] KEY           Print a value of the step's (or job's) context;\n"
               "                                 exit status 1 if there is none\n"
               "  step put [--job] KEY VALUE     Stage a value for the next commit\n"
               "  step commit [--read N] [--write N] [--filter N]\n"
               "              [--read-skip N] [--write-skip N] [--process-skip N]\n"
               "                                 Add to the counts and commit everything staged;\n"
               "                                 returns once it is durable\n"
               "  step status TEXT               Set the step's status line\n"
               "  step exit-code CODE [DESCRIPTION]\n"
               "                                 Set the exit status to record for the step\n"
               "\n"
               "Options:\n"
               "  -h --help                      Show this help\n"
               "     --version                   Show package version\n");
        return 0;
}

enum {
        ARG_VERSION = 0x100,
};

static int parse_argv(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help",    no_argument, NULL, 'h'         },
                { "version", no_argument, NULL, ARG_VERSION },
                {}
        };
        int c;

        /* "+": options after the verb belong to the verb. */
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        return help();
                case ARG_VERSION:
                        printf("batchctl %s\n", PACKAGE_VERSION);
                        return 0;
                case '?':
                        return -EINVAL;
                default:
                        return log_error_errno(EINVAL, "Unhandled option");
                }

        return 1;
}

int main(int argc, char *argv[]) {
        static const Verb verbs[] = {
                { "step", 1, VERB_ANY, verb_step },
        };
        int r;

        /* Inside a step our stderr already is the step's journal stream: plain lines are right. */
        log_set_target(LOG_TARGET_STDERR);

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        r = verbs_dispatch(verbs, ELEMENTSOF(verbs), NULL, argc - optind, argv + optind, NULL);
        return r < 0 ? EXIT_FAILURE : r;
}
