/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <getopt.h>

#include "log.h"
#include "manager.h"

static int help(void) {
        printf("batchd [OPTIONS...]\n"
               "\n"
               "Run batch jobs with Spring Batch semantics, on systemd.\n"
               "\n"
               "  -h --help             Show this help\n"
               "     --version          Show package version\n"
               "     --user             Serve on the session bus, for the invoking user\n"
               "     --config FILE      Main configuration file (default: %s)\n"
               "     --log-level LEVEL  debug, info, notice, warning or err (default: info)\n",
               CONFIG_MAIN_PATH_DEFAULT);
        return 0;
}

static int parse_log_level(const char *s) {
        static const char *const names[] = {
                [LOG_ERR] = "err", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
                [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
        };

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (names[i] && streq(names[i], s))
                        return (int) i;
        return -EINVAL;
}

int main(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_USER,
                ARG_CONFIG,
                ARG_LOG_LEVEL,
        };
        static const struct option options[] = {
                { "help",      no_argument,       NULL, 'h'           },
                { "version",   no_argument,       NULL, ARG_VERSION   },
                { "user",      no_argument,       NULL, ARG_USER      },
                { "config",    required_argument, NULL, ARG_CONFIG    },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                {}
        };
        _cleanup_(manager_freep) Manager *m = NULL;
        ManagerOptions o = {};
        int c, k;

        log_set_identifier("batchd");

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        return help(), EXIT_SUCCESS;
                case ARG_VERSION:
                        printf("batchd %s\n", PACKAGE_VERSION);
                        return EXIT_SUCCESS;
                case ARG_USER:
                        o.user_mode = true;
                        break;
                case ARG_CONFIG:
                        o.config_path = optarg;
                        break;
                case ARG_LOG_LEVEL:
                        k = parse_log_level(optarg);
                        if (k < 0) {
                                log_error("Unknown log level '%s'.", optarg);
                                return EXIT_FAILURE;
                        }
                        log_set_max_level(k);
                        break;
                default:
                        return EXIT_FAILURE;
                }
        if (optind < argc) {
                log_error("batchd takes no arguments.");
                return EXIT_FAILURE;
        }

        k = manager_new(&o, &m);
        if (k < 0) {
                log_error_errno(k, "Failed to set up: %m");
                return EXIT_FAILURE;
        }
        k = manager_startup(m);
        if (k < 0)
                return EXIT_FAILURE;
        k = manager_run(m);
        if (k < 0) {
                log_error_errno(k, "Event loop failed: %m");
                return EXIT_FAILURE;
        }
        log_info("batchd stopped.");
        return EXIT_SUCCESS;
}
