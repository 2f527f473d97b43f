/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ctype.h>
#include <locale.h>

#include "batch-status.h"
#include "batchctl.h"
#include "conf.h"
#include "log.h"
#include "output.h"
#include "step-verbs.h"
#include "verb-functions.h"
#include "verbs.h"

bool arg_user = false;
JsonMode arg_json = JSON_OFF;
bool arg_pager = true;
bool arg_legend = true;
bool arg_quiet = false;
bool arg_full = false;
bool arg_wait = false;
bool arg_follow = false;
bool arg_all = false;
unsigned arg_limit = 0;
bool arg_limit_set = false;
unsigned arg_iterations = 1;
usec_t arg_base_time = USEC_INFINITY;
const char *arg_directory = NULL;
char **arg_properties = NULL;
char **arg_states = NULL;
usec_t arg_since = 0;
usec_t arg_until = USEC_INFINITY;
unsigned arg_lines = 0;
bool arg_lines_set = false;
int arg_priority_min = 0;
int arg_priority_max = -1;
OutputMode arg_output = OUTPUT_SHORT;
usec_t arg_older_than = 0;
unsigned arg_keep = 0;
bool arg_dry_run = false;

/* Defined in verb-calendar.c: the --base-time syntax belongs to the calendar verb. */
int parse_base_time(const char *s, usec_t *ret);

static int verb_help(int argc, char *argv[], void *userdata);

#define PARAMETER_SYNTAX                                                                                \
        "Parameters: NAME=VALUE (the type the job declares for NAME, else a string),\n"                 \
        "NAME(TYPE)=VALUE with TYPE one of string, long, double,\n"                                     \
        "date (2026-11-21) or datetime (2026-11-21T02:00:00); a leading '-' (-NAME=VALUE) makes\n"       \
        "the parameter non-identifying. Spring Batch 5's NAME=VALUE,java.lang.Long[,true|false] is\n"   \
        "accepted too. Parameters are merged over the job's configured defaults.\n"

#define WAIT_EXIT_STATUS                                                                                \
        "With --wait the exit status tells how the execution ended: 0 COMPLETED, 2 FAILED,\n"           \
        "3 STOPPED, 4 ABANDONED, 5 UNKNOWN; 1 means batchctl itself failed.\n"

static const Verb verbs[] = {
        { "start", 2, VERB_ANY, verb_start, "JOB [PARAMETER...] [--wait]",
          "Launch JOB with the given parameters (JobOperator.start). Prints the new execution id; with\n"
          "--wait follows the execution until it ends, showing the running step's progress on a\n"
          "terminal.\n\n" PARAMETER_SYNTAX "\n" WAIT_EXIT_STATUS },
        { "next", 2, VERB_ANY, verb_next, "JOB [PARAMETER...] [--wait]",
          "Launch the next instance of JOB: the parameters of its last instance with run.id + 1, the\n"
          "given parameters on top (JobOperator.startNextInstance).\n\n" PARAMETER_SYNTAX "\n" WAIT_EXIT_STATUS },
        { "restart", 2, 2, verb_restart, "EXECUTION_ID [--wait]",
          "Restart the instance of a failed or stopped execution with its stored parameters: completed\n"
          "steps are skipped, the failed step resumes from its last committed context.\n\n" WAIT_EXIT_STATUS },
        { "stop", 2, 2, verb_stop, "EXECUTION_ID",
          "Stop a running execution: its step gets SIGTERM (SIGKILL after kill_grace) and the execution\n"
          "ends STOPPED, which can be restarted.\n" },
        { "abandon", 2, 2, verb_abandon, "EXECUTION_ID",
          "Mark a stopped or failed execution ABANDONED: its instance is never restarted.\n" },
        { "metrics", 1, 1, verb_metrics, NULL,
          "Print the per-job metrics in the Prometheus text exposition format (the text metrics_textfile\n"
          "holds): executions by status, last success and failure, durations, running executions, items\n"
          "read and written, non-runs by reason, timer lateness.\n" },
        { "reload", 1, 1, verb_reload, NULL,
          "Make batchd re-read batchd.conf and every job file. If anything is invalid nothing changes\n"
          "and every problem is reported.\n" },
        { "enable", 2, VERB_ANY, verb_enable, "JOB...",
          "Switch the schedule of each JOB on, whatever its file's enabled says, until \"batchctl revert\";\n"
          "kept in batchd's database, so it survives reloads and restarts. Only the schedule: a job can\n"
          "always be started by hand.\n" },
        { "disable", 2, VERB_ANY, verb_disable, "JOB...",
          "Switch the schedule of each JOB off, whatever its file's enabled says, until \"batchctl\n"
          "revert\": its fires are recorded as not run (\"disabled\"). Kept in batchd's database, so it\n"
          "survives reloads and restarts. The job can still be started by hand.\n" },
        { "revert", 2, VERB_ANY, verb_revert, "JOB...",
          "Drop what enable or disable said for each JOB: its file's enabled decides again.\n" },
        { "status", 1, VERB_ANY, verb_status, "[JOB...] [--limit N]",
          "Without JOB: a summary of every job and of the running executions. With JOB: its\n"
          "description, schedule and next run, what runs now with its progress, and the last\n"
          "executions (5, or --limit N) with status, exit code and duration.\n" },
        { "purge", 1, 2, verb_purge, "[JOB] --older-than AGE | --keep N [--dry-run]",
          "Remove old history, of JOB or of every job: the executions that ended more than AGE ago (a\n"
          "time span such as 30d, 12h or \"2w 3d\") and/or all but the newest N executions of each job,\n"
          "the job instances left without executions, and the scheduled fires that did not run\n"
          "(non-runs) from before AGE and/or beyond the newest N of each job. Given both, whatever\n"
          "either rule selects goes, as with keep_days and keep_executions in batchd.conf. An instance\n"
          "with a running execution is never touched. Prints what was removed; with --dry-run, what\n"
          "would be, removing nothing. A JOB that is neither configured nor has executions is an error\n"
          "(NoSuchJob).\n" },
        { "list-jobs", 1, 1, verb_list_jobs, NULL,
          "List the configured jobs: schedule, next run, last execution and how many run now.\n" },
        { "list-timers", 1, 1, verb_list_timers, "[--all]",
          "List the schedules of the jobs as systemctl list-timers lists timers, soonest first: when each\n"
          "fires next (NEXT, LEFT), when it last fell due (LAST, PASSED; whether it ran or not), the job,\n"
          "and the result: the status of the job's last execution, or \"not run: REASON\" if the newest\n"
          "was a scheduled fire that did not run (see status). With --all also the jobs without a\n"
          "schedule.\n" },
        { "list-executions", 1, 2, verb_list_executions,
          "[JOB] [--limit N] [--state STATE,...] [--since TIME] [--until TIME]",
          "List executions, newest first, of every job or of JOB; only those in one of the given\n"
          "states (FAILED, COMPLETED, ...) with --state, and whose start (or creation, if they never\n"
          "started) is not before --since or after --until TIME; at most N of them with --limit. TIME\n"
          "is @UNIX_SECONDS, now, or 'YYYY-MM-DD[ HH:MM[:SS]][ ZONE]'. A JOB batchd neither has\n"
          "configured nor has executions of is an error (NoSuchJob).\n" },
        { "show", 2, 2, verb_show, "EXECUTION_ID|JOB [-p NAME...]",
          "With EXECUTION_ID (a number): the execution's status, times, parameters, job context, and\n"
          "every step with its counters, exit status and context; with -p, the properties of its D-Bus\n"
          "object as Key=value lines instead. With JOB: the job's properties as Key=value lines, as\n"
          "systemctl show prints a unit's: its settings as batchd loaded them, where it is defined, its\n"
          "next elapse and last execution. -p NAME (repeatable, or NAME,NAME...) shows only those.\n" },
        { "cat", 2, VERB_ANY, verb_cat, "JOB...",
          "Show the definition of each JOB as batchd loaded it, headed by \"# FILE:LINE\", where it is\n"
          "defined, as systemctl cat does. batchd writes it back from what it loaded: every setting with\n"
          "its value (defaults included), without the file's comments; edits to the file since the last\n"
          "reload are not in it. The definition of a job whose file is not readable by everyone is shown\n"
          "only to those allowed to start jobs.\n" },
        { "nodes", 1, 1, verb_nodes, NULL,
          "List the nodes of the cluster batchd belongs to (docs/cluster.md): state, last heartbeat on the\n"
          "database's clock, running executions, a hash of each node's job definitions, and whether\n"
          "another active node defines one of its jobs differently (drift).\n" },
        { "logs", 2, 2, verb_logs,
          "EXECUTION_ID|JOB [-f] [-n N] [-p PRIORITY] [--since TIME] [--until TIME] [-o MODE] [-D DIR]",
          "Show batchd's journal entries of an execution together with the output of its steps, in the\n"
          "journal's order. With JOB (a name, not a number): of every execution of the job. Step output\n"
          "carries BATCH_JOB_EXECUTION_ID and BATCH_STEP_NAME, as batchd's entries do.\n"
          "  -f           keep following: until the execution ends; with JOB, until interrupted\n"
          "  -n N         only the last N entries (with -f: then follow)\n"
          "  -p PRIORITY  only entries of this priority or a more important one (emerg, alert, crit,\n"
          "               err, warning, notice, info, debug or 0-7), or of a range FROM..TO\n"
          "  --since, --until TIME  only entries in this time range (TIME as for list-executions)\n"
          "  -o MODE      short (the default), cat (the messages only) or json (JSON Lines, as --json)\n"
          "  -D DIR       read the journal files in DIR instead of the local journal\n"
          "Exits 1 if the journal cannot be read (no journal files, or none the caller may read).\n" },
        { "calendar", 2, VERB_ANY, verb_calendar, "EXPRESSION... [--iterations N] [--base-time TIME]",
          "Normalize calendar expressions (systemd.time(7), as in a job's schedule) and show when they\n"
          "elapse next, exactly as \"systemd-analyze calendar\" does. Needs no daemon. TIME is\n"
          "@UNIX_SECONDS or 'YYYY-MM-DD HH:MM:SS [ZONE]' (ZONE: UTC or a zone name such as\n"
          "Europe/Berlin).\n" },
        { "verify", 1, VERB_ANY, verb_verify, "[FILE...] [--config FILE]",
          "Check batchd.conf and job files as batchd loads them, without a running batchd: every error\n"
          "and warning as \"<file>:<line>: <what>\", exactly as batchd logs it. Without FILE: the\n"
          "configuration batchd would load (--config FILE, else " CONFIG_MAIN_PATH_DEFAULT "),\n"
          "its jobs_dir included, with batchd's ownership and permission checks (root's with --system, the\n"
          "invoking user's with --user). A FILE named batchd.conf is a main file, checked the same way;\n"
          "any other FILE is a job file, checked for its content: together with the other job files\n"
          "given, with the job_file_size_max of the main file. Exits 1 if there is any error, 0 if\n"
          "there are only warnings or nothing at all.\n" },
        { "help", 1, 2, verb_help, "[COMMAND]",
          "Show the help of batchctl, or of one command.\n" },
        { "step", 1, VERB_ANY, verb_step, "COMMAND ...",
          NULL /* step_verbs_help */ },
};

static void help_verb(const Verb *v) {
        printf("batchctl %s%s%s\n\n", v->name, v->usage ? " " : "", strempty(v->usage));
        if (streq(v->name, "step"))
                fputs(step_verbs_help, stdout);
        else
                fputs(strempty(v->help), stdout);
        printf("\nSee batchctl --help for the options every command takes.\n");
}

static int help(void) {
        printf("batchctl [OPTIONS...] COMMAND ...\n"
               "\n"
               "Control batchd, the batch job scheduler.\n"
               "\n"
               "Job commands:\n"
               "  start JOB [PARAMETER...]       Launch a job\n"
               "  next JOB [PARAMETER...]        Launch the next instance of a job (run.id + 1)\n"
               "  restart EXECUTION_ID           Restart a failed or stopped execution\n"
               "  stop EXECUTION_ID              Stop a running execution\n"
               "  abandon EXECUTION_ID           Mark a stopped or failed execution abandoned\n"
               "  reload                         Reload batchd's configuration\n"
               "  enable JOB...                  Switch the schedule of jobs on, until reverted\n"
               "  disable JOB...                 Switch the schedule of jobs off, until reverted\n"
               "  revert JOB...                  Let the job files say again whether schedules fire\n"
               "  purge [JOB] --older-than AGE|--keep N\n"
               "                                 Remove old executions and non-runs\n"
               "\n"
               "Query commands:\n"
               "  status [JOB...]                Show the status of jobs, or a summary of all\n"
               "  list-jobs                      List the configured jobs\n"
               "  list-executions [JOB]          List executions, newest first\n"
               "  list-timers                    List the job schedules, soonest first\n"
               "  show EXECUTION_ID              Show an execution with its steps and contexts\n"
               "  show JOB                       Show the properties of a job\n"
               "  cat JOB...                     Show the definition of jobs as batchd loaded them\n"
               "  logs EXECUTION_ID|JOB          Show the journal of an execution or a job, with its steps\n"
               "  nodes                          List the nodes of the cluster\n"
               "  calendar EXPRESSION...         Validate calendar expressions, show next elapses\n"
               "  verify [FILE...]               Check the configuration without a running batchd\n"
               "  metrics                        Print per-job metrics (Prometheus text format)\n"
               "  help [COMMAND]                 Show this help, or the help of a command\n"
               "\n"
               "%s"
               "\n"
               PARAMETER_SYNTAX
               "\n"
               "Options:\n"
               "  -h --help                      Show this help; after a command, its help\n"
               "     --version                   Show package version\n"
               "     --user                      Talk to batchd on the session bus (batchd --user)\n"
               "     --system                    Talk to batchd on the system bus (the default)\n"
               "     --json[=MODE]               JSON output: short (the default), pretty or off\n"
               "     --no-pager                  Do not pipe output into a pager\n"
               "     --no-legend                 Do not print table headers and footers\n"
               "  -q --quiet                     No confirmations and no progress\n"
               "  -l --full                      Do not ellipsize table cells on a terminal\n"
               "     --wait                      start, next, restart: wait until the execution ends\n"
               "  -n --limit=N                   list-executions, status: show at most N executions\n"
               "  -n --lines=N                   logs: show only the last N entries\n"
               "     --state=STATE[,STATE...]    list-executions: only executions in these states\n"
               "     --since=TIME, --until=TIME  list-executions: only executions started in this range;\n"
               "                                 logs: only entries in this range\n"
               "  -p --property=NAME             show: only this property (repeatable, or NAME,NAME)\n"
               "  -p --priority=PRIORITY         logs: only entries of this priority or more important\n"
               "  -o --output=MODE               logs: short, cat or json\n"
               "  -f --follow                    logs: follow until the execution ends\n"
               "  -a --all                       list-timers: also jobs without a schedule\n"
               "     --older-than=AGE            purge: what ended (or was due) more than AGE ago\n"
               "     --keep=N                    purge: all but the newest N executions of each job\n"
               "     --dry-run                   purge: only say what would be removed\n"
               "  -D --directory=DIR             logs: read the journal files in DIR\n"
               "     --iterations=N              calendar: show N elapses (default: 1)\n"
               "     --base-time=TIME            calendar: count from TIME instead of now\n"
               "     --config=FILE               verify: the main file (default: %s)\n"
               "\n"
               WAIT_EXIT_STATUS
               "\n"
               "See batchctl(1) for details.\n",
               step_verbs_help, CONFIG_MAIN_PATH_DEFAULT);
        return 0;
}

static int verb_help(int argc, char *argv[], void *userdata) {
        const Verb *v;

        if (argc < 2)
                return help();
        v = verbs_find(verbs, ELEMENTSOF(verbs), argv[1]);
        if (!v) {
                const Verb *s = verbs_suggest(verbs, ELEMENTSOF(verbs), argv[1]);

                if (s)
                        return log_error_errno(EINVAL, "Unknown verb '%s', did you mean '%s'? See --help.", argv[1],
                                               s->name);
                return log_error_errno(EINVAL, "Unknown verb '%s', see --help.", argv[1]);
        }
        help_verb(v);
        return 0;
}

/* ---- the command line ---- */

typedef enum OptionId {
        OPT_HELP,
        OPT_VERSION,
        OPT_USER,
        OPT_SYSTEM,
        OPT_JSON,
        OPT_NO_PAGER,
        OPT_NO_LEGEND,
        OPT_QUIET,
        OPT_FULL,
        OPT_WAIT,
        OPT_LIMIT,
        OPT_FOLLOW,
        OPT_DIRECTORY,
        OPT_ITERATIONS,
        OPT_BASE_TIME,
        OPT_CONFIG,
        OPT_PROPERTY,
        OPT_STATE,
        OPT_SINCE,
        OPT_UNTIL,
        OPT_LINES,
        OPT_PRIORITY,
        OPT_OUTPUT,
        OPT_ALL,
        OPT_OLDER_THAN,
        OPT_KEEP,
        OPT_DRY_RUN,
} OptionId;

typedef enum OptionArgument {
        OPTION_NO_ARGUMENT,
        OPTION_REQUIRED_ARGUMENT,
        OPTION_OPTIONAL_ARGUMENT,       /* only as --name=value */
} OptionArgument;

typedef struct Option {
        const char *name;
        char short_name;
        OptionArgument argument;
        OptionId id;
        const char *verbs;              /* the verbs it applies to, space-separated; NULL: all */
} Option;

static const Option options[] = {
        { "help",       'h', OPTION_NO_ARGUMENT,       OPT_HELP       },
        { "version",    0,   OPTION_NO_ARGUMENT,       OPT_VERSION    },
        { "user",       0,   OPTION_NO_ARGUMENT,       OPT_USER       },
        { "system",     0,   OPTION_NO_ARGUMENT,       OPT_SYSTEM     },
        { "json",       0,   OPTION_OPTIONAL_ARGUMENT, OPT_JSON       },
        { "no-pager",   0,   OPTION_NO_ARGUMENT,       OPT_NO_PAGER   },
        { "no-legend",  0,   OPTION_NO_ARGUMENT,       OPT_NO_LEGEND  },
        { "quiet",      'q', OPTION_NO_ARGUMENT,       OPT_QUIET      },
        { "full",       'l', OPTION_NO_ARGUMENT,       OPT_FULL       },
        { "wait",       0,   OPTION_NO_ARGUMENT,       OPT_WAIT,       "start next restart" },
        /* A letter may mean different things to different verbs, as -n and -p do (the verbs decide, see
         * resolve_option()); each meaning takes an argument or none alike, so the words parse the same. */
        { "limit",      'n', OPTION_REQUIRED_ARGUMENT, OPT_LIMIT,      "list-executions status" },
        { "lines",      'n', OPTION_REQUIRED_ARGUMENT, OPT_LINES,      "logs" },
        { "follow",     'f', OPTION_NO_ARGUMENT,       OPT_FOLLOW,     "logs" },
        { "directory",  'D', OPTION_REQUIRED_ARGUMENT, OPT_DIRECTORY,  "logs" },
        { "iterations", 0,   OPTION_REQUIRED_ARGUMENT, OPT_ITERATIONS, "calendar" },
        { "base-time",  0,   OPTION_REQUIRED_ARGUMENT, OPT_BASE_TIME,  "calendar" },
        { "config",     0,   OPTION_REQUIRED_ARGUMENT, OPT_CONFIG,     "verify" },
        { "property",   'p', OPTION_REQUIRED_ARGUMENT, OPT_PROPERTY,   "show" },
        { "priority",   'p', OPTION_REQUIRED_ARGUMENT, OPT_PRIORITY,   "logs" },
        { "output",     'o', OPTION_REQUIRED_ARGUMENT, OPT_OUTPUT,     "logs" },
        { "all",        'a', OPTION_NO_ARGUMENT,       OPT_ALL,        "list-timers" },
        { "state",      0,   OPTION_REQUIRED_ARGUMENT, OPT_STATE,      "list-executions" },
        { "since",      0,   OPTION_REQUIRED_ARGUMENT, OPT_SINCE,      "list-executions logs" },
        { "until",      0,   OPTION_REQUIRED_ARGUMENT, OPT_UNTIL,      "list-executions logs" },
        { "older-than", 0,   OPTION_REQUIRED_ARGUMENT, OPT_OLDER_THAN, "purge" },
        { "keep",       0,   OPTION_REQUIRED_ARGUMENT, OPT_KEEP,       "purge" },
        { "dry-run",    0,   OPTION_NO_ARGUMENT,       OPT_DRY_RUN,    "purge" },
};

static bool word_in_list(const char *list, const char *word) {
        size_t l = strlen(word);

        for (const char *p = list; p && *p; ) {
                size_t n = strcspn(p, " ");

                if (n == l && strneq(p, word, l))
                        return true;
                p += n;
                p += strspn(p, " ");
        }
        return false;
}

static int parse_unsigned(const char *option, const char *s, unsigned *ret) {
        char *end = NULL;
        unsigned long v;

        if (isempty(s) || !strchr("0123456789", s[0]))
                return log_error_errno(EINVAL, "--%s needs a non-negative number, not '%s'.", option, strempty(s));
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || *end != '\0' || v > UINT_MAX)
                return log_error_errno(ERANGE, "--%s needs a non-negative number, not '%s'.", option, s);
        *ret = (unsigned) v;
        return 0;
}

/* --property and --state: repeatable, each a comma-separated list; adds the names to *l. With status, each must
 * be a BatchStatus name (any case, kept upper case). */
static int strv_extend_comma_list(const char *option, const char *value, bool status, char ***l) {
        size_t n = 0, added = 0;

        while (*l && (*l)[n])
                n++;
        for (const char *p = strempty(value); *p; ) {
                size_t k = strcspn(p, ",");

                if (k > 0) {
                        char **t = reallocarray(*l, n + 2, sizeof(char *)), *w;

                        if (!t)
                                return log_oom();
                        *l = t;
                        w = strndup(p, k);
                        if (!w)
                                return log_oom();
                        (*l)[n++] = w;
                        (*l)[n] = NULL;
                        added++;
                        if (status) {
                                for (char *c = w; *c; c++)
                                        *c = (char) toupper((unsigned char) *c);
                                if (batch_status_from_string(w) < 0)
                                        return log_error_errno(EINVAL, "--%s: unknown state '%.*s'; states are "
                                                               "STARTING, STARTED, STOPPING, STOPPED, FAILED, "
                                                               "COMPLETED, ABANDONED and UNKNOWN.", option,
                                                               (int) k, p);
                        }
                }
                p += k;
                p += strspn(p, ",");
        }
        if (added == 0)
                return log_error_errno(EINVAL, "--%s needs a %s.", option, status ? "state" : "property name");
        return 0;
}

/* journalctl's -p: a level name or number, or FROM..TO. */
static int parse_priority_level(const char *s, size_t n, int *ret) {
        static const char *const names[] = { "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug" };

        if (n == 1 && s[0] >= '0' && s[0] <= '7') {
                *ret = s[0] - '0';
                return 0;
        }
        for (int i = 0; i < (int) ELEMENTSOF(names); i++)
                if (strlen(names[i]) == n && strncasecmp(names[i], s, n) == 0) {
                        *ret = i;
                        return 0;
                }
        return -EINVAL;
}

static int parse_priority(const char *s) {
        const char *dots = strstr(strempty(s), "..");
        int from, to;

        if (dots) {
                if (parse_priority_level(s, (size_t) (dots - s), &from) < 0 ||
                    parse_priority_level(dots + 2, strlen(dots + 2), &to) < 0)
                        goto invalid;
        } else {
                from = 0;
                if (parse_priority_level(strempty(s), strlen(strempty(s)), &to) < 0)
                        goto invalid;
        }
        arg_priority_min = MIN(from, to);
        arg_priority_max = MAX(from, to);
        return 0;

invalid:
        return log_error_errno(EINVAL, "--priority takes emerg, alert, crit, err, warning, notice, info, debug, "
                               "0-7, or a range FROM..TO of them, not '%s'.", strempty(s));
}

static int apply_option(const Option *o, const char *value, bool *help_requested) {
        int r;

        switch (o->id) {
        case OPT_HELP:
                *help_requested = true;
                return 0;
        case OPT_VERSION:
                printf("batchctl %s\n", PACKAGE_VERSION);
                return 1;       /* done */
        case OPT_USER:
                arg_user = true;
                return 0;
        case OPT_SYSTEM:
                arg_user = false;
                return 0;
        case OPT_JSON:
                if (!value || streq(value, "short"))
                        arg_json = JSON_SHORT;
                else if (streq(value, "pretty"))
                        arg_json = JSON_PRETTY;
                else if (streq(value, "off"))
                        arg_json = JSON_OFF;
                else
                        return log_error_errno(EINVAL, "--json= takes short, pretty or off, not '%s'.", value);
                return 0;
        case OPT_NO_PAGER:
                arg_pager = false;
                return 0;
        case OPT_NO_LEGEND:
                arg_legend = false;
                return 0;
        case OPT_QUIET:
                arg_quiet = true;
                return 0;
        case OPT_FULL:
                arg_full = true;
                return 0;
        case OPT_WAIT:
                arg_wait = true;
                return 0;
        case OPT_LIMIT:
                r = parse_unsigned("limit", value, &arg_limit);
                if (r < 0)
                        return r;
                arg_limit_set = true;
                return 0;
        case OPT_FOLLOW:
                arg_follow = true;
                return 0;
        case OPT_ALL:
                arg_all = true;
                return 0;
        case OPT_DIRECTORY:
                if (isempty(value))
                        return log_error_errno(EINVAL, "--directory needs a directory.");
                arg_directory = value;
                return 0;
        case OPT_ITERATIONS:
                return parse_unsigned("iterations", value, &arg_iterations);
        case OPT_BASE_TIME:
                r = parse_base_time(value, &arg_base_time);
                if (r < 0)
                        return log_error_errno(r, "Failed to parse --base-time= parameter: %s", value);
                return 0;
        case OPT_PROPERTY:
                return strv_extend_comma_list("property", value, false, &arg_properties);
        case OPT_STATE:
                return strv_extend_comma_list("state", value, true, &arg_states);
        case OPT_SINCE:
        case OPT_UNTIL:
                r = parse_base_time(value, o->id == OPT_SINCE ? &arg_since : &arg_until);
                if (r < 0)
                        return log_error_errno(r, "Failed to parse --%s= parameter: %s", o->name, strempty(value));
                return 0;
        case OPT_LINES:
                r = parse_unsigned("lines", value, &arg_lines);
                if (r < 0)
                        return r;
                arg_lines_set = true;
                return 0;
        case OPT_PRIORITY:
                return parse_priority(value);
        case OPT_OUTPUT:
                if (streq(strempty(value), "short"))
                        arg_output = OUTPUT_SHORT;
                else if (streq(strempty(value), "cat"))
                        arg_output = OUTPUT_CAT;
                else if (streq(strempty(value), "json")) {
                        arg_output = OUTPUT_JSON;
                        if (arg_json == JSON_OFF)
                                arg_json = JSON_SHORT;
                } else
                        return log_error_errno(EINVAL, "--output takes short, cat or json, not '%s'.", strempty(value));
                return 0;
        case OPT_OLDER_THAN:
                r = timespan_parse(strempty(value), &arg_older_than);
                if (r < 0 || arg_older_than == 0 || arg_older_than == USEC_INFINITY)
                        return log_error_errno(r < 0 ? r : EINVAL, "--older-than needs a finite, non-zero time span "
                                               "such as 30d or \"2w 3d\", not '%s'.", strempty(value));
                return 0;
        case OPT_KEEP:
                r = parse_unsigned("keep", value, &arg_keep);
                if (r < 0)
                        return r;
                if (arg_keep == 0)
                        return log_error_errno(EINVAL, "--keep needs at least 1: to remove everything, use "
                                               "--older-than.");
                return 0;
        case OPT_DRY_RUN:
                arg_dry_run = true;
                return 0;
        case OPT_CONFIG:
                if (isempty(value))
                        return log_error_errno(EINVAL, "--config needs a file.");
                arg_config = value;
                return 0;
        }
        return log_error_errno(EINVAL, "Unhandled option");
}

static const Option *short_option_with_argument(char c) {
        for (size_t k = 0; k < ELEMENTSOF(options); k++)
                if (options[k].short_name == c && options[k].argument == OPTION_REQUIRED_ARGUMENT)
                        return options + k;
        return NULL;
}

/* The meaning of an option word for the verb: a letter may stand for different options of different verbs (-p is
 * show's --property and logs' --priority). Falls back to the first option with the letter, so that using it with
 * another verb gets the usual "cannot be used with" error. */
static const Option *resolve_option(const Option *o, bool by_letter, const char *verb) {
        if (!by_letter || !verb || !o->verbs || word_in_list(o->verbs, verb))
                return o;
        for (size_t k = 0; k < ELEMENTSOF(options); k++)
                if (options[k].short_name == o->short_name && options[k].verbs &&
                    word_in_list(options[k].verbs, verb))
                        return options + k;
        return o;
}

typedef struct OptionWord {
        const Option *option;
        bool by_letter;
        const char *value;
} OptionWord;

/* Our own parser rather than getopt_long(): options may stand anywhere on the line, as with systemctl, but
 * job parameters such as "-fail=true" start with a dash too. So a word is an option only if it starts with
 * "--", is a dash and a single letter, or is a dash, the letter of an option taking a value and that value
 * ("-n5", never with a '='); every other word, "-name=value" included, is an argument. "--" ends the options. Everything after "step" goes to the step verbs untouched: there a key or value may
 * look like anything. Returns the arguments (verb first) in *ret_args, 0 to go on, 1 if done (--version,
 * --help), negative on error. */
static int parse_argv(int argc, char *argv[], char ***ret_args, int *ret_n) {
        _cleanup_free_ char **args = NULL;
        _cleanup_free_ OptionWord *words = NULL;
        size_t n_words = 0;
        bool help_requested = false, no_more_options = false;
        const Verb *verb;
        int n = 0, r;

        args = calloc(argc + 1, sizeof(char *));
        words = calloc(argc + 1, sizeof(OptionWord));
        if (!args || !words)
                return log_oom();

        /* First the words: which are options (and their values), which are arguments. Options are applied once
         * the verb is known, since a letter's meaning depends on it. */
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *value = NULL;
                const Option *o = NULL;
                bool by_letter = false;

                if (no_more_options || (n > 0 && streq(args[0], "step"))) {
                        args[n++] = argv[i];
                        continue;
                }
                if (streq(a, "--")) {
                        no_more_options = true;
                        continue;
                }

                if (a[0] == '-' && a[1] == '-') {
                        const char *eq = strchr(a + 2, '=');
                        size_t l = eq ? (size_t) (eq - a - 2) : strlen(a + 2);

                        for (size_t k = 0; k < ELEMENTSOF(options); k++)
                                if (strlen(options[k].name) == l && strneq(options[k].name, a + 2, l)) {
                                        o = options + k;
                                        break;
                                }
                        if (!o)
                                return log_error_errno(EINVAL, "Unknown option '%.*s', see --help.", (int) (l + 2), a);
                        if (eq) {
                                if (o->argument == OPTION_NO_ARGUMENT)
                                        return log_error_errno(EINVAL, "Option '--%s' takes no argument.", o->name);
                                value = eq + 1;
                        } else if (o->argument == OPTION_REQUIRED_ARGUMENT) {
                                if (i + 1 >= argc)
                                        return log_error_errno(EINVAL, "Option '--%s' needs an argument.", o->name);
                                value = argv[++i];
                        }
                } else if (a[0] == '-' && a[1] != '\0' && a[1] != '-' && a[2] != '\0' && !strchr(a, '=') &&
                           (o = short_option_with_argument(a[1]))) {
                        /* "-n5", as getopt takes it. A job parameter ("-name=value") always has a '='. */
                        value = a + 2;
                        by_letter = true;
                } else if (a[0] == '-' && a[1] != '\0' && a[2] == '\0') {
                        for (size_t k = 0; k < ELEMENTSOF(options); k++)
                                if (options[k].short_name == a[1]) {
                                        o = options + k;
                                        break;
                                }
                        if (!o)
                                return log_error_errno(EINVAL, "Unknown option '%s', see --help.", a);
                        if (o->argument == OPTION_REQUIRED_ARGUMENT) {
                                if (i + 1 >= argc)
                                        return log_error_errno(EINVAL, "Option '-%c' needs an argument.", a[1]);
                                value = argv[++i];
                        }
                        by_letter = true;
                } else {
                        args[n++] = argv[i];
                        continue;
                }

                words[n_words++] = (OptionWord) { .option = o, .by_letter = by_letter, .value = value };
        }

        verb = n > 0 ? verbs_find(verbs, ELEMENTSOF(verbs), args[0]) : NULL;

        for (size_t k = 0; k < n_words; k++) {
                words[k].option = resolve_option(words[k].option, words[k].by_letter, verb ? verb->name : NULL);
                r = apply_option(words[k].option, words[k].value, &help_requested);
                if (r != 0)
                        return r;
        }

        if (help_requested) {
                if (verb)
                        help_verb(verb);
                else
                        help();
                return 1;
        }

        /* An option that means nothing to the verb is a mistake worth pointing out, not something to ignore. */
        if (verb)
                for (size_t k = 0; k < n_words; k++)
                        if (words[k].option->verbs && !word_in_list(words[k].option->verbs, verb->name))
                                return log_error_errno(EINVAL, "Option '--%s' cannot be used with '%s'.",
                                                       words[k].option->name, verb->name);

        *ret_args = TAKE_PTR(args);
        *ret_n = n;
        return 0;
}

int main(int argc, char *argv[]) {
        _cleanup_free_ char **args = NULL;
        int n = 0, r;

        /* Only the character set: numbers and times must not change with LC_NUMERIC or LC_TIME. */
        (void) setlocale(LC_CTYPE, "");

        /* Inside a step our stderr already is the step's journal stream; elsewhere it is the user's terminal.
         * Either way plain lines are right. */
        log_set_target(LOG_TARGET_STDERR);

        r = parse_argv(argc, argv, &args, &n);
        if (r != 0) {
                arg_properties = strv_free(arg_properties);
                arg_states = strv_free(arg_states);
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        }

        output_init();

        r = verbs_dispatch(verbs, ELEMENTSOF(verbs), NULL, n, args, NULL);
        pager_close();
        arg_properties = strv_free(arg_properties);
        arg_states = strv_free(arg_states);
        return r < 0 ? EXIT_FAILURE : r;
}
