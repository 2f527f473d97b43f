/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "macro.h"
#include "time-util.h"

/* The command line of batchctl, parsed once in batchctl.c and read by the verbs. Process-wide like the
 * arg_ variables of systemd's tools: one invocation, one command line. */

typedef enum JsonMode {
        JSON_OFF,
        JSON_SHORT,     /* one line per document */
        JSON_PRETTY,    /* indented */
} JsonMode;

typedef enum OutputMode {
        OUTPUT_SHORT,   /* logs: like journalctl -o short */
        OUTPUT_CAT,     /* logs: the messages only */
        OUTPUT_JSON,    /* logs: JSON Lines (also with --json) */
} OutputMode;

extern bool arg_user;           /* session bus instead of the system bus */
extern JsonMode arg_json;
extern bool arg_pager;
extern bool arg_legend;         /* table headers and "N ... listed." footers */
extern bool arg_quiet;
extern bool arg_full;           /* never ellipsize table cells */
extern bool arg_wait;           /* start, next, restart: until the execution ends */
extern bool arg_follow;         /* logs -f */
extern bool arg_all;            /* list-timers --all */
extern unsigned arg_limit;      /* list-executions, status: 0 means the verb's default */
extern bool arg_limit_set;
extern unsigned arg_iterations; /* calendar */
extern usec_t arg_base_time;    /* calendar; USEC_INFINITY: now */
extern const char *arg_directory; /* logs: a journal directory instead of the local journal */
extern char **arg_states;       /* list-executions --state: BatchStatus names; NULL: any */
extern usec_t arg_since;        /* list-executions, logs --since; 0: none */
extern usec_t arg_until;        /* list-executions, logs --until; USEC_INFINITY: none */
extern unsigned arg_lines;      /* logs -n: only the last N entries */
extern bool arg_lines_set;
extern int arg_priority_min;    /* logs -p: entries with a PRIORITY in [min, max]; max -1: no filter */
extern int arg_priority_max;
extern OutputMode arg_output;   /* logs -o */
extern char **arg_properties;   /* show -p: the properties to show; NULL: all */
extern usec_t arg_older_than;   /* purge --older-than; 0: none */
extern unsigned arg_keep;       /* purge --keep; 0: none */
extern bool arg_dry_run;        /* purge --dry-run */
extern const char *arg_config;  /* verify: the main file; NULL: CONFIG_MAIN_PATH_DEFAULT */

/* Exit status of "start/next/restart --wait" for an execution that did not complete, and of every verb for a
 * failure of batchctl itself (EXIT_FAILURE). Documented in batchctl(1). */
#define EXIT_EXECUTION_FAILED    2      /* FAILED */
#define EXIT_EXECUTION_STOPPED   3      /* STOPPED (or still STOPPING) */
#define EXIT_EXECUTION_ABANDONED 4      /* ABANDONED */
#define EXIT_EXECUTION_UNKNOWN   5      /* UNKNOWN, or any status batchctl does not know */
